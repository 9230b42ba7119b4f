/*
 * budget_lib.c: the functions of the standard library that can work for a
 * long time inside C, written again so that budgets hold in them
 * (budget.h): string.find, string.match, string.gmatch, string.gsub,
 * string.rep, table.concat and table.sort.
 *
 * LuaJIT's own versions run to the end once called: a backtracking
 * pattern (string.rep("a*", 30) .. "b" against thirty a's) takes longer
 * than the universe has, string.rep of a huge count or table.concat of a
 * table holding one big string many times builds gigabytes, and
 * table.sort's quicksort has inputs that make it quadratic. No hook runs
 * inside a C function and no signal can safely unwind one, so these count
 * their work and call tp_budget_poll() every FUEL units; a stopped budget
 * raises from there, with nothing malloc'd to leak (buffers are userdata,
 * captures live on the C stack).
 *
 * They behave as LuaJIT 2.1's do (the same results, the same error
 * messages; tests/unit/test_budget.c compares them on generated cases),
 * with these differences, all written down in rulesets/README.md:
 *  - string.rep, string.gsub and table.concat raise for a result over
 *    TP_BUDGET_MAX_STRING bytes;
 *  - table.sort never raises "invalid order function": an inconsistent
 *    comparison gives some order. Its order of equal elements is its own
 *    (the sort is no more stable than LuaJIT's), the same on every run.
 *    It runs in O(n log n) comparisons whatever the input (introsort:
 *    quicksort, heapsort past a depth), and the table holds its own
 *    elements at every moment, so an error in a comparison or a stop
 *    leaves them all there, in some order;
 *  - patterns: what LuaJIT has, with the same nesting cap ("pattern too
 *    complex" past 200 nested items), the ASCII classes of the C locale,
 *    and a pattern read up to its first NUL (use %z for a zero byte).
 * Plain searches (string.find with plain, or a pattern without magic
 * characters) use memmem, which is linear in the two lengths.
 */
#include "budget.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#define FUEL 4096             /* units of work between two polls */
#define MAX_CAPTURES 32       /* as LuaJIT (LUA_MAXCAPTURES) */
#define MAX_DEPTH 200         /* nested matching calls, as LuaJIT */
#define CAP_OPEN (-1)         /* a capture begun and not yet closed */
#define CAP_POSITION (-2)     /* a () capture */
#define COPY_CHUNK (1u << 20) /* bytes copied between two polls */

/* A number argument as LuaJIT's lj_lib_checkint reads it on x86-64: cut
 * towards zero; out of the int32 range (or NaN) it is INT32_MIN. */
static int32_t to_int32(lua_Number n)
{
    if (n >= -2147483648.0 && n < 2147483648.0)
        return (int32_t)n;
    return INT32_MIN;
}

static int32_t check_int32(lua_State *L, int idx)
{
    return to_int32(luaL_checknumber(L, idx));
}

static int32_t opt_int32(lua_State *L, int idx, int32_t dflt)
{
    return lua_isnoneornil(L, idx) ? dflt : check_int32(L, idx);
}

static void too_big(lua_State *L, const char *fn, uint64_t bytes)
{
    luaL_error(L, "%s: a result of %f bytes is over the limit of %d MiB",
               fn, (double)bytes, (int)(TP_BUDGET_MAX_STRING >> 20));
}

/* ------------------------------------------------------------ buffers */

/* Bytes being built, in a userdata at a fixed stack slot (so a raise
 * leaves nothing to free). Never longer than TP_BUDGET_MAX_STRING. */
typedef struct strbuf {
    lua_State *L;         /* the state whose stack holds it */
    const char *fn;       /* the function building it, for errors */
    int slot;             /* stack index of the userdata */
    char *data;           /* the userdata's bytes */
    size_t len;           /* bytes used */
    size_t cap;           /* bytes the userdata has */
    size_t unpolled;      /* bytes added since the last poll */
} strbuf_t;

/* Pushes the userdata (cap bytes, at least 1). */
static void sb_init(strbuf_t *b, lua_State *L, const char *fn, size_t cap)
{
    *b = (strbuf_t){ .L = L, .fn = fn, .cap = cap ? cap : 1 };
    b->data = lua_newuserdata(L, b->cap);
    b->slot = lua_gettop(L);
}

static void sb_reserve(strbuf_t *b, size_t more)
{
    if (more > TP_BUDGET_MAX_STRING - b->len)
        too_big(b->L, b->fn, (uint64_t)b->len + more);
    size_t need = b->len + more;
    if (need <= b->cap)
        return;
    size_t cap = b->cap;
    while (cap < need)
        cap = cap > TP_BUDGET_MAX_STRING / 2 ? TP_BUDGET_MAX_STRING
                                             : cap * 2;
    char *data = lua_newuserdata(b->L, cap);
    memcpy(data, b->data, b->len);
    lua_replace(b->L, b->slot);
    b->data = data;
    b->cap = cap;
}

/* Appends n bytes. p must stay valid across an allocation: it points
 * into a string the stack holds. */
static void sb_add(strbuf_t *b, const char *p, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->unpolled += n;
    if (b->unpolled >= COPY_CHUNK) {
        b->unpolled = 0;
        tp_budget_poll(b->L);
    }
}

static void sb_add_char(strbuf_t *b, char c)
{
    if (b->len < b->cap) {
        b->data[b->len++] = c;
        return;
    }
    sb_add(b, &c, 1);
}

/* ------------------------------------------------------------ classes */

static int uc(char c)
{
    return (unsigned char)c;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_alnum(int c)
{
    return is_lower(c) || is_upper(c) || is_digit(c);
}

static bool is_graph(int c)
{
    return c > ' ' && c < 127;
}

/* Whether c is in the class named by the lower-case letter cl; *known is
 * false when cl names no class. */
static bool in_class(int c, int cl, bool *known)
{
    *known = true;
    switch (cl) {
    case 'a': return is_lower(c) || is_upper(c);
    case 'c': return c < ' ' || c == 127;
    case 'd': return is_digit(c);
    case 'g': return is_graph(c);
    case 'l': return is_lower(c);
    case 'p': return is_graph(c) && !is_alnum(c);
    case 's': return c == ' ' || (c >= '\t' && c <= '\r');
    case 'u': return is_upper(c);
    case 'w': return is_alnum(c);
    case 'x': return is_digit(c) || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F');
    case 'z': return c == 0;
    default:
        *known = false;
        return false;
    }
}

/* What "%" followed by cl matches: a class (upper case: its complement),
 * or cl itself. */
static bool escape_match(int c, int cl)
{
    if (is_lower(cl) || is_upper(cl)) {
        bool known;
        bool in = in_class(c, cl | 0x20, &known);
        if (known)
            return is_lower(cl) ? in : !in;
    }
    return c == cl;
}

/* Whether c is in the set that opens at p ('[') and closes at close
 * (its ']'). */
static bool set_match(int c, const char *p, const char *close)
{
    bool want = true;
    p++;
    if (*p == '^') {
        want = false;
        p++;
    }
    while (p < close) {
        if (*p == '%') {   /* item_end made sure a character follows */
            if (escape_match(c, uc(p[1])))
                return want;
            p += 2;
        } else if (p + 2 < close && p[1] == '-') {
            if (uc(p[0]) <= c && c <= uc(p[2]))
                return want;
            p += 3;
        } else {
            if (uc(*p) == c)
                return want;
            p++;
        }
    }
    return !want;
}

/* ------------------------------------------------------------ matching */

typedef struct matcher {
    lua_State *L;              /* for errors and polls */
    const char *src;           /* the subject */
    const char *src_end;       /* one past its last byte */
    const char *pat_end;       /* the pattern's end: its first NUL */
    int depth;                 /* nested do_match calls */
    int level;                 /* captures opened so far */
    int32_t fuel;              /* work left until the next poll */
    struct {
        const char *init;      /* where it starts in the subject */
        ptrdiff_t len;         /* its length, CAP_OPEN or CAP_POSITION */
    } capture[MAX_CAPTURES];
} matcher_t;

static void refuel(matcher_t *m)
{
    m->fuel = FUEL;
    tp_budget_poll(m->L);
}

static inline void burn(matcher_t *m, int32_t units)
{
    m->fuel -= units;
    if (m->fuel <= 0)
        refuel(m);
}

/* The end of the single-character class at p (p < pat_end): past "%x",
 * past a set's ']', or past one character. */
static const char *item_end(matcher_t *m, const char *p)
{
    const char *end = m->pat_end;
    char c = *p++;
    if (c == '%') {
        if (p >= end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c != '[')
        return p;
    const char *start = p;
    if (p < end && *p == '^')
        p++;
    /* The first character is part of the set even when it is ']'. */
    for (;;) {
        if (p >= end)
            luaL_error(m->L, "malformed pattern (missing ']')");
        if (*p++ == '%' && p < end)
            p++;
        if (p < end && *p == ']')
            break;
    }
    burn(m, (int32_t)((p - start) >> 4));
    return p + 1;
}

/* The cost of testing one character against the class p..ep. */
static int32_t item_cost(const char *p, const char *ep)
{
    return 1 + (int32_t)((ep - p) >> 4);
}

static bool single_match(int c, const char *p, const char *ep)
{
    switch (*p) {
    case '.':
        return true;
    case '%':
        return escape_match(c, uc(p[1]));
    case '[':
        return set_match(c, p, ep - 1);
    default:
        return uc(*p) == c;
    }
}

static const char *do_match(matcher_t *m, const char *s, const char *p);

/* Greedy: as many as match, then fewer until the rest matches. */
static const char *expand_max(matcher_t *m, const char *s, const char *p,
                              const char *ep)
{
    int32_t cost = item_cost(p, ep);
    ptrdiff_t n = 0;
    while (s + n < m->src_end && single_match(uc(s[n]), p, ep)) {
        n++;
        burn(m, cost);
    }
    for (; n >= 0; n--) {
        const char *r = do_match(m, s + n, ep + 1);
        if (r)
            return r;
    }
    return NULL;
}

/* Lazy: as few as let the rest match. */
static const char *expand_min(matcher_t *m, const char *s, const char *p,
                              const char *ep)
{
    int32_t cost = item_cost(p, ep);
    for (;;) {
        const char *r = do_match(m, s, ep + 1);
        if (r)
            return r;
        if (s >= m->src_end || !single_match(uc(*s), p, ep))
            return NULL;
        s++;
        burn(m, cost);
    }
}

static const char *open_capture(matcher_t *m, const char *s, const char *p,
                                ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->capture[m->level].init = s;
    m->capture[m->level].len = what;
    m->level++;
    const char *r = do_match(m, s, p);
    if (!r)
        m->level--;
    return r;
}

static const char *close_capture(matcher_t *m, const char *s, const char *p)
{
    int l = m->level - 1;
    while (l >= 0 && m->capture[l].len != CAP_OPEN)
        l--;
    if (l < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->capture[l].len = s - m->capture[l].init;
    const char *r = do_match(m, s, p);
    if (!r)
        m->capture[l].len = CAP_OPEN;
    return r;
}

/* %bxy at p (p points at x). */
static const char *balance(matcher_t *m, const char *s, const char *p)
{
    if (m->pat_end - p < 2)
        luaL_error(m->L, "unbalanced pattern");
    if (s >= m->src_end || *s != *p)
        return NULL;
    char open = p[0], close = p[1];
    int nest = 1;
    while (++s < m->src_end) {
        burn(m, 1);
        if (*s == close) {
            if (--nest == 0)
                return s + 1;
        } else if (*s == open) {
            nest++;
        }
    }
    return NULL;
}

/* %1 to %9 in a pattern: the text of that capture again. */
static const char *back_ref(matcher_t *m, const char *s, int digit)
{
    int l = digit - '1';
    if (l < 0 || l >= m->level || m->capture[l].len == CAP_OPEN)
        luaL_error(m->L, "invalid capture index");
    ptrdiff_t len = m->capture[l].len;
    if (len == CAP_POSITION || m->src_end - s < len)
        return NULL;
    burn(m, (int32_t)(len >> 6));
    return memcmp(m->capture[l].init, s, (size_t)len) == 0 ? s + len : NULL;
}

/* Matches the pattern from p against the subject from s: the end of the
 * match, or NULL. Items that end the pattern loop here instead of
 * recursing; the rest recurse, at most MAX_DEPTH deep. */
static const char *do_match(matcher_t *m, const char *s, const char *p)
{
    if (++m->depth > MAX_DEPTH)
        luaL_error(m->L, "pattern too complex");
    const char *end = m->pat_end;
    for (;;) {
        burn(m, 1);
        if (p == end)
            break;                         /* the whole pattern matched */
        if (*p == '(') {
            if (p + 1 < end && p[1] == ')')
                s = open_capture(m, s, p + 2, CAP_POSITION);
            else
                s = open_capture(m, s, p + 1, CAP_OPEN);
            break;
        }
        if (*p == ')') {
            s = close_capture(m, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == end) {
            if (s != m->src_end)
                s = NULL;
            break;
        }
        if (*p == '%' && p + 1 < end) {
            if (p[1] == 'b') {
                s = balance(m, s, p + 2);
                if (!s)
                    break;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (p >= end || *p != '[')
                    luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = item_end(m, p);
                int prev = s == m->src ? 0 : uc(s[-1]);
                int here = s < m->src_end ? uc(*s) : 0;
                if (set_match(prev, p, ep - 1) ||
                    !set_match(here, p, ep - 1)) {
                    s = NULL;
                    break;
                }
                p = ep;
                continue;
            }
            if (is_digit(uc(p[1]))) {
                s = back_ref(m, s, uc(p[1]));
                if (!s)
                    break;
                p += 2;
                continue;
            }
        }
        /* One character class, maybe with ?, *, + or - after it. */
        const char *ep = item_end(m, p);
        bool hit = s < m->src_end && single_match(uc(*s), p, ep);
        char suffix = ep < end ? *ep : '\0';
        if (suffix == '?') {
            const char *r;
            if (hit && (r = do_match(m, s + 1, ep + 1)) != NULL) {
                s = r;
                break;
            }
            p = ep + 1;
            continue;
        }
        if (suffix == '*') {
            s = expand_max(m, s, p, ep);
            break;
        }
        if (suffix == '+') {
            s = hit ? expand_max(m, s + 1, p, ep) : NULL;
            break;
        }
        if (suffix == '-') {
            s = expand_min(m, s, p, ep);
            break;
        }
        if (!hit) {
            s = NULL;
            break;
        }
        s++;
        p = ep;
    }
    m->depth--;
    return s;
}

static void matcher_init(matcher_t *m, lua_State *L, const char *s,
                         size_t len, const char *p)
{
    m->L = L;
    m->src = s;
    m->src_end = s + len;
    m->pat_end = p + strlen(p);
    m->depth = 0;
    m->level = 0;
    m->fuel = FUEL;
}

/* Pushes capture i (the whole match s..e when there are none and i is
 * 0). */
static void push_capture(matcher_t *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index");
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->capture[i].len;
    if (len == CAP_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(m->L, m->capture[i].init - m->src + 1);
    else
        lua_pushlstring(m->L, m->capture[i].init, (size_t)len);
}

/* Pushes every capture, or the whole match when there are none and s is
 * not NULL; returns how many. */
static int push_captures(matcher_t *m, const char *s, const char *e)
{
    int n = m->level == 0 && s ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

/* Whether p has any of the characters that make a pattern. */
static bool has_magic(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (uc(p[i]) < 128 && p[i] && strchr("^$*+?.([%-", p[i]))
            return true;
    return false;
}

/* ------------------------------------------------------------ string */

static int find_aux(lua_State *L, bool find)
{
    size_t len, plen;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *p = luaL_checklstring(L, 2, &plen);
    int64_t start = opt_int32(L, 3, 1);
    start = start < 0 ? start + (int64_t)len : start - 1;
    if (start < 0)
        start = 0;
    if ((uint64_t)start > len)
        start = (int64_t)len;
    if (find && (lua_toboolean(L, 4) || !has_magic(p, plen))) {
        const char *q = memmem(s + start, len - (size_t)start, p, plen);
        if (q) {
            lua_pushinteger(L, q - s + 1);
            lua_pushinteger(L, q - s + (ptrdiff_t)plen);
            return 2;
        }
        lua_pushnil(L);
        return 1;
    }
    matcher_t m;
    matcher_init(&m, L, s, len, p);
    bool anchor = *p == '^';
    if (anchor)
        p++;
    const char *at = s + start;
    do {
        m.level = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e) {
            if (!find)
                return push_captures(&m, at, e);
            lua_pushinteger(L, at - s + 1);
            lua_pushinteger(L, e - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
    } while (at++ < m.src_end && !anchor);
    lua_pushnil(L);
    return 1;
}

/* string.find(s, pattern [, init [, plain]]) */
static int l_find(lua_State *L)
{
    return find_aux(L, true);
}

/* string.match(s, pattern [, init]) */
static int l_match(lua_State *L)
{
    return find_aux(L, false);
}

/* The iterator string.gmatch returns; upvalues: the subject, the
 * pattern, where to go on from. */
static int gmatch_next(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &len);
    const char *p = lua_tostring(L, lua_upvalueindex(2));
    lua_Number from = lua_tonumber(L, lua_upvalueindex(3));
    if (!(from >= 0 && from <= (lua_Number)len))
        return 0;
    matcher_t m;
    matcher_init(&m, L, s, len, p);
    for (const char *at = s + (size_t)from; at <= m.src_end; at++) {
        m.level = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e) {
            /* An empty match moves on by one, so the loop ends. */
            lua_pushnumber(L, (lua_Number)(e - s + (e == at)));
            lua_replace(L, lua_upvalueindex(3));
            return push_captures(&m, at, e);
        }
    }
    return 0;
}

/* string.gmatch(s, pattern): '^' is no anchor here, as in LuaJIT. */
static int l_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushnumber(L, 0);
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* Adds the replacement string (at 3) for the match s..e: %0 to %9 are
 * captures, % before anything else is that character. */
static void add_template(matcher_t *m, strbuf_t *b, const char *s,
                         const char *e, const char *r, size_t rlen)
{
    lua_State *L = m->L;
    for (size_t i = 0; i < rlen; i++) {
        if (r[i] != '%') {
            sb_add_char(b, r[i]);
            continue;
        }
        i++;   /* a '%' at the end takes the string's terminating NUL */
        if (!is_digit(uc(r[i]))) {
            sb_add_char(b, r[i]);
        } else if (r[i] == '0') {
            sb_add(b, s, (size_t)(e - s));
        } else {
            push_capture(m, r[i] - '1', s, e);
            size_t clen;
            const char *c = lua_tolstring(L, -1, &clen);
            sb_add(b, c, clen);
            lua_pop(L, 1);
        }
    }
    burn(m, (int32_t)(rlen >> 4));
}

/* Adds what replaces the match s..e: repl at 3, of type kind; a string
 * (or number) is r, rlen long. */
static void add_value(matcher_t *m, strbuf_t *b, const char *s,
                      const char *e, int kind, const char *r, size_t rlen)
{
    lua_State *L = m->L;
    if (kind == LUA_TSTRING || kind == LUA_TNUMBER) {
        add_template(m, b, s, e, r, rlen);
        return;
    }
    if (kind == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    }
    if (!lua_toboolean(L, -1)) {
        sb_add(b, s, (size_t)(e - s));   /* nil or false: keep the text */
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)",
                   luaL_typename(L, -1));
    } else {
        size_t vlen;
        const char *v = lua_tolstring(L, -1, &vlen);
        sb_add(b, v, vlen);
    }
    lua_pop(L, 1);
}

/* string.gsub(s, pattern, repl [, n]) */
static int l_gsub(lua_State *L)
{
    size_t len;
    const char *src = luaL_checklstring(L, 1, &len);
    const char *p = luaL_checkstring(L, 2);
    int kind = lua_type(L, 3);
    int64_t max_n = lua_isnoneornil(L, 4) ? (int64_t)len + 1
                                          : check_int32(L, 4);
    if (kind != LUA_TNUMBER && kind != LUA_TSTRING &&
        kind != LUA_TFUNCTION && kind != LUA_TTABLE)
        luaL_argerror(L, 3, "string/function/table expected");
    lua_settop(L, 4);
    size_t rlen = 0;
    const char *r = kind == LUA_TSTRING || kind == LUA_TNUMBER ?
                    lua_tolstring(L, 3, &rlen) : NULL;
    strbuf_t b;
    sb_init(&b, L, "string.gsub", len < 256 ? 256 :
                  len > TP_BUDGET_MAX_STRING ? TP_BUDGET_MAX_STRING : len);
    matcher_t m;
    matcher_init(&m, L, src, len, p);
    bool anchor = *p == '^';
    if (anchor)
        p++;
    const char *at = src;
    int64_t n = 0;
    while (n < max_n) {
        m.level = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e) {
            n++;
            add_value(&m, &b, at, e, kind, r, rlen);
        }
        if (e && e > at)
            at = e;
        else if (at < m.src_end)
            sb_add_char(&b, *at++);
        else
            break;
        if (anchor)
            break;
    }
    sb_add(&b, at, (size_t)(m.src_end - at));
    lua_pushlstring(L, b.data, b.len);
    lua_pushinteger(L, (lua_Integer)n);
    return 2;
}

/* string.rep(s, n [, sep]) */
static int l_rep(lua_State *L)
{
    size_t len, seplen = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    int32_t n = check_int32(L, 2);
    const char *sep = luaL_optlstring(L, 3, NULL, &seplen);
    if (!sep)
        seplen = 0;
    if (n <= 0 || (len == 0 && (seplen == 0 || n == 1))) {
        lua_pushliteral(L, "");
        return 1;
    }
    /* s, then n - 1 units of sep .. s. */
    uint64_t unit = (uint64_t)seplen + len;
    uint64_t total = (uint64_t)len + unit * (uint64_t)(n - 1);
    if (total > TP_BUDGET_MAX_STRING)
        too_big(L, "string.rep", total);
    char *out = lua_newuserdata(L, (size_t)total);
    memcpy(out, s, len);
    size_t done = len;
    if (n > 1) {
        if (seplen)
            memcpy(out + done, sep, seplen);
        memcpy(out + done + seplen, s, len);
        done += (size_t)unit;
    }
    /* out[len..done) is whole units: copy from it, at the same offset in
     * the unit, as much as is written and fits. */
    while (done < total) {
        size_t filled = done - len;
        size_t phase = filled % (size_t)unit;
        size_t chunk = filled - phase;
        if (chunk > total - done)
            chunk = (size_t)total - done;
        if (chunk > COPY_CHUNK)
            chunk = COPY_CHUNK;
        memcpy(out + done, out + len + phase, chunk);
        done += chunk;
        if (done < total)
            tp_budget_poll(L);
    }
    lua_pushlstring(L, out, (size_t)total);
    return 1;
}

/* ------------------------------------------------------------ concat */

/* Writes n as LuaJIT's tostring does ("%.14g", "nan", "inf", "-0") into
 * buf; returns the length. */
static size_t format_number(lua_Number n, char buf[32])
{
    if (n != n)
        return (size_t)snprintf(buf, 32, "nan");
    if (n == 0)
        return (size_t)snprintf(buf, 32, signbit(n) ? "-0" : "0");
    if (n > -1e14 && n < 1e14 && n == (lua_Number)(int64_t)n) {
        /* Integers of up to 14 digits, the common case, without printf. */
        char digits[24];
        int64_t v = (int64_t)n;
        bool negative = v < 0;
        uint64_t u = negative ? (uint64_t)-v : (uint64_t)v;
        size_t k = 0;
        while (u) {
            digits[k++] = (char)('0' + u % 10);
            u /= 10;
        }
        size_t len = 0;
        if (negative)
            buf[len++] = '-';
        while (k)
            buf[len++] = digits[--k];
        buf[len] = '\0';
        return len;
    }
    return (size_t)snprintf(buf, 32, "%.14g", n);
}

/* table.concat(t [, sep [, i [, j]]]) */
static int l_concat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t seplen = 0;
    const char *sep = luaL_optlstring(L, 2, "", &seplen);
    int64_t first = opt_int32(L, 3, 1);
    int64_t last = lua_isnoneornil(L, 4) ? (int64_t)lua_objlen(L, 1)
                                         : check_int32(L, 4);
    lua_settop(L, 4);
    if (first > last) {
        lua_pushliteral(L, "");
        return 1;
    }
    strbuf_t b;
    sb_init(&b, L, "table.concat", 256);
    int32_t items = 0;
    for (int64_t i = first; i <= last; i++) {
        lua_rawgeti(L, 1, (int)i);
        int type = lua_type(L, -1);
        if (type == LUA_TSTRING) {
            size_t len;
            const char *item = lua_tolstring(L, -1, &len);
            sb_add(&b, item, len);
        } else if (type == LUA_TNUMBER) {
            char num[32];
            size_t len = format_number(lua_tonumber(L, -1), num);
            sb_add(&b, num, len);
        } else {
            luaL_error(L, "invalid value (%s) at index %d in table for "
                       "'concat'", luaL_typename(L, -1), (int)i);
        }
        lua_pop(L, 1);
        if (i < last)
            sb_add(&b, sep, seplen);
        if (++items == FUEL) {
            items = 0;
            tp_budget_poll(L);
        }
    }
    lua_pushlstring(L, b.data, b.len);
    return 1;
}

/* ------------------------------------------------------------ sort */

/* One introsort over three kinds of storage: the Lua table at 1 (with the
 * comparison function at 2, or Lua's <), a C array of numbers, a C array
 * of references to strings. Elements move only by swaps, so the storage
 * holds all of them at every moment. Every index stays in lo..hi whatever
 * the comparisons say, and depth bounds the quicksort levels (heapsort
 * below them), so the work is O(n log n) comparisons for any input. */
typedef struct sorter sorter_t;

typedef struct sort_ops {
    bool (*less)(sorter_t *so, int64_t i, int64_t j);    /* a[i] < a[j] */
    void (*swap)(sorter_t *so, int64_t i, int64_t j);
    void (*take_pivot)(sorter_t *so, int64_t i);         /* keep a[i] */
    bool (*below_pivot)(sorter_t *so, int64_t i);        /* a[i] < pivot */
    bool (*above_pivot)(sorter_t *so, int64_t i);        /* pivot < a[i] */
    void (*drop_pivot)(sorter_t *so);
} sort_ops_t;

/* A reference to a string the table holds (the string sort). */
typedef struct str_ref {
    const char *data;  /* its bytes */
    size_t len;        /* its length */
    int64_t at;        /* its index in the table */
} str_ref_t;

struct sorter {
    lua_State *L;              /* the state; the table is at 1 */
    const sort_ops_t *ops;     /* how to compare and move */
    int32_t fuel;              /* work until the next poll */
    lua_Number *nums;          /* the number sort's array */
    lua_Number num_pivot;      /* its pivot */
    str_ref_t *strs;           /* the string sort's array */
    str_ref_t str_pivot;       /* its pivot */
    int lua_pivot;             /* the table sort's pivot: a stack slot */
};

static void sort_burn(sorter_t *so, int32_t units)
{
    so->fuel -= units;
    if (so->fuel <= 0) {
        so->fuel = FUEL;
        tp_budget_poll(so->L);
    }
}

static void insertion_sort(sorter_t *so, int64_t lo, int64_t hi)
{
    for (int64_t i = lo + 1; i <= hi; i++)
        for (int64_t j = i; j > lo && so->ops->less(so, j, j - 1); j--)
            so->ops->swap(so, j, j - 1);
}

static void sift_down(sorter_t *so, int64_t base, int64_t root,
                      int64_t count)
{
    const sort_ops_t *op = so->ops;
    for (;;) {
        int64_t child = 2 * root + 1;
        if (child >= count)
            return;
        if (child + 1 < count && op->less(so, base + child, base + child + 1))
            child++;
        if (!op->less(so, base + root, base + child))
            return;
        op->swap(so, base + root, base + child);
        root = child;
    }
}

static void heap_sort(sorter_t *so, int64_t lo, int64_t hi)
{
    int64_t count = hi - lo + 1;
    for (int64_t root = count / 2 - 1; root >= 0; root--)
        sift_down(so, lo, root, count);
    for (int64_t end = count - 1; end > 0; end--) {
        so->ops->swap(so, lo, lo + end);
        sift_down(so, lo, 0, end);
    }
}

/* Quicksort (median of three, Hoare's partition): the smaller part
 * recursively, the larger in this loop; heapsort past depth levels;
 * insertion sort for short runs. */
static void intro_sort(sorter_t *so, int64_t lo, int64_t hi, int depth)
{
    const sort_ops_t *op = so->ops;
    while (hi - lo >= 16) {
        sort_burn(so, 1);
        if (depth-- == 0) {
            heap_sort(so, lo, hi);
            return;
        }
        int64_t mid = lo + (hi - lo) / 2;
        if (op->less(so, mid, lo))
            op->swap(so, mid, lo);
        if (op->less(so, hi, mid)) {
            op->swap(so, hi, mid);
            if (op->less(so, mid, lo))
                op->swap(so, mid, lo);
        }
        op->take_pivot(so, mid);
        int64_t i = lo - 1, j = hi + 1;
        for (;;) {
            do
                i++;
            while (op->below_pivot(so, i) && i < hi);
            do
                j--;
            while (op->above_pivot(so, j) && j > lo);
            if (i >= j)
                break;
            op->swap(so, i, j);
        }
        op->drop_pivot(so);
        /* lo..j and j+1..hi, neither empty even for a comparison that
         * contradicts itself. */
        if (j >= hi)
            j = hi - 1;
        if (j - lo < hi - j - 1) {
            intro_sort(so, lo, j, depth);
            lo = j + 1;
        } else {
            intro_sort(so, j + 1, hi, depth);
            hi = j;
        }
    }
    insertion_sort(so, lo, hi);
}

static int depth_for(int64_t n)
{
    int d = 0;
    while (n > 1) {
        n >>= 1;
        d += 2;
    }
    return d;
}

/* The table itself: values fetched with lua_rawgeti, as LuaJIT does. */

/* Pops the two values on top, a (below) and b; returns a < b. */
static bool lua_less_top(sorter_t *so)
{
    lua_State *L = so->L;
    if (!lua_isnil(L, 2)) {
        lua_pushvalue(L, 2);
        lua_insert(L, -3);
        lua_call(L, 2, 1);
        bool r = lua_toboolean(L, -1);
        lua_pop(L, 1);
        sort_burn(so, 16);
        return r;
    }
    /* Two long strings may take long to compare. */
    int32_t cost = 1;
    if (lua_type(L, -1) == LUA_TSTRING && lua_type(L, -2) == LUA_TSTRING) {
        size_t a = lua_objlen(L, -2), b = lua_objlen(L, -1);
        size_t shorter = (a < b ? a : b) >> 8;
        cost += (int32_t)(shorter < FUEL ? shorter : FUEL);
    }
    bool r = lua_lessthan(L, -2, -1);
    lua_pop(L, 2);
    sort_burn(so, cost);
    return r;
}

static bool lua_less(sorter_t *so, int64_t i, int64_t j)
{
    lua_rawgeti(so->L, 1, (int)i);
    lua_rawgeti(so->L, 1, (int)j);
    return lua_less_top(so);
}

static void lua_swap(sorter_t *so, int64_t i, int64_t j)
{
    lua_State *L = so->L;
    lua_rawgeti(L, 1, (int)i);
    lua_rawgeti(L, 1, (int)j);
    lua_rawseti(L, 1, (int)i);
    lua_rawseti(L, 1, (int)j);
}

static void lua_take_pivot(sorter_t *so, int64_t i)
{
    lua_rawgeti(so->L, 1, (int)i);
    so->lua_pivot = lua_gettop(so->L);
}

static bool lua_below_pivot(sorter_t *so, int64_t i)
{
    lua_rawgeti(so->L, 1, (int)i);
    lua_pushvalue(so->L, so->lua_pivot);
    return lua_less_top(so);
}

static bool lua_above_pivot(sorter_t *so, int64_t i)
{
    lua_pushvalue(so->L, so->lua_pivot);
    lua_rawgeti(so->L, 1, (int)i);
    return lua_less_top(so);
}

static void lua_drop_pivot(sorter_t *so)
{
    lua_pop(so->L, 1);
}

static const sort_ops_t lua_ops = {
    lua_less, lua_swap, lua_take_pivot, lua_below_pivot, lua_above_pivot,
    lua_drop_pivot
};

/* Numbers, in a C array (0-based). */

static bool num_less(sorter_t *so, int64_t i, int64_t j)
{
    sort_burn(so, 1);
    return so->nums[i] < so->nums[j];
}

static void num_swap(sorter_t *so, int64_t i, int64_t j)
{
    lua_Number t = so->nums[i];
    so->nums[i] = so->nums[j];
    so->nums[j] = t;
}

static void num_take_pivot(sorter_t *so, int64_t i)
{
    so->num_pivot = so->nums[i];
}

static bool num_below_pivot(sorter_t *so, int64_t i)
{
    sort_burn(so, 1);
    return so->nums[i] < so->num_pivot;
}

static bool num_above_pivot(sorter_t *so, int64_t i)
{
    sort_burn(so, 1);
    return so->num_pivot < so->nums[i];
}

static void no_drop(sorter_t *so)
{
    (void)so;
}

static const sort_ops_t num_ops = {
    num_less, num_swap, num_take_pivot, num_below_pivot, num_above_pivot,
    no_drop
};

/* Strings, as LuaJIT orders them: bytes compared unsigned, then the
 * shorter first. */

static bool str_ref_less(sorter_t *so, const str_ref_t *a,
                         const str_ref_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    sort_burn(so, 1 + (int32_t)((n >> 8) < FUEL ? n >> 8 : FUEL));
    int c = memcmp(a->data, b->data, n);
    return c < 0 || (c == 0 && a->len < b->len);
}

static bool str_less(sorter_t *so, int64_t i, int64_t j)
{
    return str_ref_less(so, &so->strs[i], &so->strs[j]);
}

static void str_swap(sorter_t *so, int64_t i, int64_t j)
{
    str_ref_t t = so->strs[i];
    so->strs[i] = so->strs[j];
    so->strs[j] = t;
}

static void str_take_pivot(sorter_t *so, int64_t i)
{
    so->str_pivot = so->strs[i];
}

static bool str_below_pivot(sorter_t *so, int64_t i)
{
    return str_ref_less(so, &so->strs[i], &so->str_pivot);
}

static bool str_above_pivot(sorter_t *so, int64_t i)
{
    return str_ref_less(so, &so->str_pivot, &so->strs[i]);
}

static const sort_ops_t str_ops = {
    str_less, str_swap, str_take_pivot, str_below_pivot, str_above_pivot,
    no_drop
};

/* Sorts a table of only numbers (as a C array, written back) or only
 * strings (references sorted, then the table rearranged in two passes
 * through a copy, which cannot fail: no Lua code, no allocation, every
 * slot exists). Returns false, with the stack as it was, for any other
 * table. */
static bool sort_in_c(sorter_t *so, int64_t n)
{
    lua_State *L = so->L;
    lua_rawgeti(L, 1, 1);
    int kind = lua_type(L, -1);
    lua_pop(L, 1);
    if (kind != LUA_TNUMBER && kind != LUA_TSTRING)
        return false;
    size_t size = kind == LUA_TNUMBER ? sizeof *so->nums : sizeof *so->strs;
    void *array = lua_newuserdata(L, (size_t)n * size);
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)i);
        if (lua_type(L, -1) != kind) {
            lua_pop(L, 2);
            return false;
        }
        if (kind == LUA_TNUMBER) {
            ((lua_Number *)array)[i - 1] = lua_tonumber(L, -1);
        } else {
            str_ref_t *r = (str_ref_t *)array + (i - 1);
            r->data = lua_tolstring(L, -1, &r->len);
            r->at = i;
        }
        lua_pop(L, 1);
    }
    if (kind == LUA_TNUMBER) {
        so->ops = &num_ops;
        so->nums = array;
        intro_sort(so, 0, n - 1, depth_for(n));
        for (int64_t i = 1; i <= n; i++) {
            lua_pushnumber(L, so->nums[i - 1]);
            lua_rawseti(L, 1, (int)i);
        }
        return true;
    }
    so->ops = &str_ops;
    so->strs = array;
    intro_sort(so, 0, n - 1, depth_for(n));
    lua_createtable(L, (int)n, 0);
    int copy = lua_gettop(L);
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)so->strs[i - 1].at);
        lua_rawseti(L, copy, (int)i);
    }
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, copy, (int)i);
        lua_rawseti(L, 1, (int)i);
    }
    return true;
}

/* table.sort(t [, comp]) */
static int l_sort(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t n = (int64_t)lua_objlen(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    if (n < 2)
        return 0;
    sorter_t so = { .L = L, .ops = &lua_ops, .fuel = FUEL };
    if (lua_isnil(L, 2) && sort_in_c(&so, n))
        return 0;
    so.ops = &lua_ops;
    intro_sort(&so, 1, n, depth_for(n));
    return 0;
}

/* ------------------------------------------------------------ install */

/* Sets the functions into package.loaded[lib]. */
/* LuaJIT's own functions that replace() took out, by name, kept in the
 * registry under this key for the tests that compare the two. */
#define NATIVE_KEY "tp.budget.native"

static void replace(lua_State *L, const char *lib, const luaL_Reg *fns)
{
    lua_getfield(L, LUA_REGISTRYINDEX, NATIVE_KEY);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, NATIVE_KEY);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    lua_getfield(L, -1, lib);
    if (lua_istable(L, -1)) {
        for (; fns->name; fns++) {
            lua_getfield(L, -1, fns->name);
            lua_setfield(L, -4, fns->name);
            lua_pushcfunction(L, fns->func);
            lua_setfield(L, -2, fns->name);
        }
    }
    lua_pop(L, 3);
}

void tp_budget_open_lib(lua_State *L)
{
    static const luaL_Reg string_fns[] = {
        { "find", l_find },
        { "match", l_match },
        { "gmatch", l_gmatch },
        { "gsub", l_gsub },
        { "rep", l_rep },
        { NULL, NULL }
    };
    static const luaL_Reg table_fns[] = {
        { "concat", l_concat },
        { "sort", l_sort },
        { NULL, NULL }
    };
    replace(L, "string", string_fns);
    replace(L, "table", table_fns);
    /* The Lua 5.0 name, where LuaJIT was built with it. */
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    lua_getfield(L, -1, "string");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "gfind");
        bool has = lua_isfunction(L, -1);
        lua_pop(L, 1);
        if (has) {
            lua_pushcfunction(L, l_gmatch);
            lua_setfield(L, -2, "gfind");
        }
    }
    lua_pop(L, 2);
}
