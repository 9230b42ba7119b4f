/*
 * codec.c: compiles layout strings and walks them to decode and encode TP
 * frame bodies (the language is described in codec.h).
 *
 * Invariants: a compiled layout is immutable and owned by whoever compiled
 * it (a Lua userdata, or the frame registry). The decoder checks every
 * length against the bytes that remain before it allocates anything, so a
 * hostile count cannot make it allocate more than the body could hold. The
 * encoder only appends through tp_buf_*, which enforces the output cap.
 */
#include "codec.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

/* Bounds on one layout: the walkers recurse once per level (12 is far
 * more than TP nests), and compiling a layout built at run time
 * (params.lua) stays small. */
#define MAX_DEPTH 12
#define MAX_OPS 4096

enum op_kind {
    OP_U32, OP_I32, OP_S32, OP_U64, OP_I64, OP_S64, OP_STR,
    OP_PAD, OP_LIST, OP_GROUP, OP_RAW, OP_OPT
};

typedef struct op {
    enum op_kind kind;   /* what is on the wire */
    char *name;          /* Lua field name; NULL for a plain list element */
    uint32_t count;      /* OP_PAD: number of zero bytes */
    tp_layout_t *sub;    /* OP_LIST, OP_GROUP: element layout */
} op_t;

struct tp_layout {
    op_t *ops;           /* items in wire order */
    size_t nops;         /* number of items */
    size_t min_size;     /* fewest bytes an encoding can take */
    bool scalar;         /* a single unnamed item: list of plain values */
};

/* ------------------------------------------------------------ compiler */

typedef struct parser {
    const char *src;     /* the whole layout string */
    const char *p;       /* read position */
    char *err;           /* message buffer */
    size_t errlen;       /* its size */
    int nops;            /* items compiled so far, all levels */
} parser_t;

__attribute__((format(printf, 2, 3)))
static void perr(parser_t *ps, const char *fmt, ...)
{
    if (!ps->err || !ps->errlen || ps->err[0])
        return;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "layout \"%.60s\" at offset %d: %s",
             ps->src, (int)(ps->p - ps->src), msg);
}

void tp_layout_free(tp_layout_t *lay)
{
    if (!lay)
        return;
    for (size_t i = 0; i < lay->nops; i++) {
        free(lay->ops[i].name);
        tp_layout_free(lay->ops[i].sub);
    }
    free(lay->ops);
    free(lay);
}

static void skip_space(parser_t *ps)
{
    while (*ps->p && isspace((unsigned char)*ps->p))
        ps->p++;
}

/* Reads ":name". Returns a heap copy, or NULL with an error set. */
static char *parse_name(parser_t *ps)
{
    if (*ps->p != ':') {
        perr(ps, "expected ':name'");
        return NULL;
    }
    ps->p++;
    const char *start = ps->p;
    while (isalnum((unsigned char)*ps->p) || *ps->p == '_')
        ps->p++;
    size_t n = (size_t)(ps->p - start);
    /* 64: longer than any protocol.xml name, and a bound on the copy. */
    if (n == 0 || n > 64) {
        perr(ps, "bad field name");
        return NULL;
    }
    char *name = malloc(n + 1);
    if (!name) {
        perr(ps, "out of memory");
        return NULL;
    }
    memcpy(name, start, n);
    name[n] = '\0';
    return name;
}

static tp_layout_t *parse_seq(parser_t *ps, char close, int depth);

static bool push_op(parser_t *ps, tp_layout_t *lay, op_t op)
{
    if (++ps->nops > MAX_OPS) {
        perr(ps, "layout too long");
        return false;
    }
    /* One realloc per item: a layout is compiled once, not per frame. */
    op_t *ops = realloc(lay->ops, (lay->nops + 1) * sizeof *ops);
    if (!ops) {
        perr(ps, "out of memory");
        return false;
    }
    lay->ops = ops;
    lay->ops[lay->nops++] = op;
    return true;
}

static size_t op_min_size(const op_t *op)
{
    switch (op->kind) {
    /* An empty string or list is its u32 length alone. */
    case OP_U32: case OP_I32: case OP_S32: case OP_STR: case OP_LIST:
        return 4;
    case OP_U64: case OP_I64: case OP_S64:
        return 8;
    case OP_PAD:
        return op->count;
    case OP_GROUP:
        return op->sub->min_size;
    case OP_RAW: case OP_OPT:
        return 0;
    }
    return 0;
}

/* Parses items until close (']' , '}' or '\0'). */
static tp_layout_t *parse_seq(parser_t *ps, char close, int depth)
{
    if (depth > MAX_DEPTH) {
        perr(ps, "nested too deeply");
        return NULL;
    }
    tp_layout_t *lay = calloc(1, sizeof *lay);
    if (!lay) {
        perr(ps, "out of memory");
        return NULL;
    }
    bool optional = false;
    for (;;) {
        skip_space(ps);
        char c = *ps->p;
        if (c == close)
            break;
        if (c == '\0' || c == ']' || c == '}') {
            perr(ps, "unbalanced brackets");
            goto fail;
        }
        op_t op = { .kind = OP_U32 };
        ps->p++;
        switch (c) {
        case 'I': op.kind = OP_U32; break;
        case 'i': op.kind = OP_I32; break;
        case 'j': op.kind = OP_S32; break;
        case 'Q': op.kind = OP_U64; break;
        case 'q': op.kind = OP_I64; break;
        case 'J': op.kind = OP_S64; break;
        case 'S': op.kind = OP_STR; break;
        case '*': op.kind = OP_RAW; break;
        case '?': op.kind = OP_OPT; break;
        case 'x': {
            op.kind = OP_PAD;
            char *end;
            unsigned long n = strtoul(ps->p, &end, 10);
            /* TP pads by a few bytes; the bound keeps min_size small. */
            if (end == ps->p || n == 0 || n > 1024) {
                perr(ps, "bad padding count");
                goto fail;
            }
            ps->p = end;
            op.count = (uint32_t)n;
            break;
        }
        case '[': case '{':
            op.kind = c == '[' ? OP_LIST : OP_GROUP;
            op.sub = parse_seq(ps, c == '[' ? ']' : '}', depth + 1);
            if (!op.sub)
                goto fail;
            ps->p++; /* the closing bracket */
            /* Elements of no fixed size would let a hostile count (2^32) pass
             * the decoder's count * min_size check, and loop that often. */
            if (op.kind == OP_LIST && op.sub->min_size == 0) {
                tp_layout_free(op.sub);
                perr(ps, "list element with no fixed bytes");
                goto fail;
            }
            break;
        default:
            ps->p--;
            perr(ps, "unknown item '%c'", c);
            goto fail;
        }
        /* A plain list element is a lone scalar with no name. */
        bool unnamed_ok = close == ']' && lay->nops == 0 &&
                          op.kind != OP_PAD && op.kind != OP_OPT &&
                          op.kind != OP_RAW && op.kind != OP_LIST &&
                          op.kind != OP_GROUP && *ps->p == ']';
        if (op.kind == OP_OPT) {
            if (optional) {
                perr(ps, "'?' given twice");
                goto fail;
            }
            optional = true;
        } else if (op.kind != OP_PAD && !unnamed_ok) {
            op.name = parse_name(ps);
            if (!op.name) {
                tp_layout_free(op.sub);
                goto fail;
            }
            for (size_t k = 0; k < lay->nops; k++) {
                if (lay->ops[k].name &&
                    strcmp(lay->ops[k].name, op.name) == 0) {
                    perr(ps, "field '%s' given twice", op.name);
                    free(op.name);
                    tp_layout_free(op.sub);
                    goto fail;
                }
            }
        }
        if (unnamed_ok)
            lay->scalar = true;
        if (!push_op(ps, lay, op)) {
            free(op.name);
            tp_layout_free(op.sub);
            goto fail;
        }
        if (op.kind == OP_RAW) {
            skip_space(ps);
            /* '*' takes the rest of the body, so nothing can follow it,
             * and in a list or group there is no rest of its own. */
            if (*ps->p != close || close != '\0') {
                perr(ps, "'*' must be the last item of a frame");
                goto fail;
            }
        }
        /* Items after '?' may be absent: they add nothing to the minimum. */
        if (!optional)
            lay->min_size += op_min_size(&op);
    }
    return lay;
fail:
    tp_layout_free(lay);
    return NULL;
}

tp_layout_t *tp_layout_compile(const char *src, char *err, size_t errlen)
{
    parser_t ps = { .src = src, .p = src, .err = err, .errlen = errlen };
    if (err && errlen)
        err[0] = '\0';
    return parse_seq(&ps, '\0', 0);
}

/* ------------------------------------------------------------ decoder */

typedef struct reader {
    const uint8_t *p;    /* body start */
    size_t n;            /* body length */
    size_t off;          /* read offset */
    bool pad;            /* string padding filter */
    char *err;           /* message buffer */
    size_t errlen;       /* its size */
} reader_t;

static int rfail(reader_t *r, const op_t *op, const char *what)
{
    snprintf(r->err, r->errlen, "%s at field '%s' (byte %zu of %zu)", what,
             op && op->name ? op->name : "?", r->off, r->n);
    return -1;
}

static void push_u64(lua_State *L, uint64_t v)
{
    /* A double: exact below 2^53, where ids and modtimes (Unix seconds)
     * stay. */
    lua_pushnumber(L, (lua_Number)v);
}

/* Decodes one value of op and pushes it. */
static int decode_items(lua_State *L, reader_t *r, const tp_layout_t *lay,
                        bool into_table);

static int decode_value(lua_State *L, reader_t *r, const op_t *op)
{
    size_t left = r->n - r->off;
    const uint8_t *p = r->p + r->off;
    switch (op->kind) {
    case OP_U32: case OP_I32: case OP_S32: {
        if (left < 4)
            return rfail(r, op, "frame too short");
        uint32_t v = tp_get_u32(p);
        r->off += 4;
        /* Semisigned is unsigned but for all ones, which is -1
         * (PROTOCOL.md 2.1). */
        if (op->kind == OP_U32)
            lua_pushnumber(L, (lua_Number)v);
        else if (op->kind == OP_I32)
            lua_pushnumber(L, (lua_Number)(int32_t)v);
        else
            lua_pushnumber(L, v == UINT32_MAX ? -1 : (lua_Number)v);
        return 0;
    }
    case OP_U64: case OP_I64: case OP_S64: {
        if (left < 8)
            return rfail(r, op, "frame too short");
        uint64_t v = tp_get_u64(p);
        r->off += 8;
        if (op->kind == OP_U64)
            push_u64(L, v);
        else if (op->kind == OP_I64)
            lua_pushnumber(L, (lua_Number)(int64_t)v);
        else if (v == UINT64_MAX)
            lua_pushnumber(L, -1);
        else
            push_u64(L, v);
        return 0;
    }
    case OP_STR: {
        if (left < 4)
            return rfail(r, op, "frame too short");
        uint32_t len = tp_get_u32(p);
        /* The padding filter pads the data to 4 bytes (PROTOCOL.md 2.7). */
        size_t padn = r->pad ? (4 - len % 4) % 4 : 0;
        /* In 64 bits: a length near 2^32 must not wrap past the check. */
        if ((uint64_t)len + padn > left - 4)
            return rfail(r, op, "string runs past the end of the frame");
        lua_pushlstring(L, (const char *)p + 4, len);
        r->off += 4 + len + padn;
        return 0;
    }
    case OP_LIST: {
        if (left < 4)
            return rfail(r, op, "frame too short");
        uint32_t count = tp_get_u32(p);
        r->off += 4;
        /* Before the table is made: a hostile count cannot ask for more than
         * the body could hold. */
        if ((uint64_t)count * op->sub->min_size > left - 4)
            return rfail(r, op, "list runs past the end of the frame");
        lua_createtable(L, (int)count, 0);
        for (uint32_t i = 0; i < count; i++) {
            if (op->sub->scalar) {
                if (decode_value(L, r, &op->sub->ops[0]) < 0) {
                    lua_pop(L, 1);
                    return -1;
                }
            } else if (decode_items(L, r, op->sub, false) < 0) {
                lua_pop(L, 1);
                return -1;
            }
            lua_rawseti(L, -2, (int)i + 1);
        }
        return 0;
    }
    case OP_GROUP:
        return decode_items(L, r, op->sub, false);
    case OP_RAW:
        lua_pushlstring(L, (const char *)p, left);
        r->off = r->n;
        return 0;
    case OP_PAD: case OP_OPT:
        break;
    }
    return rfail(r, op, "internal: bad op");
}

/* Decodes lay's items into a new table (or the table on top when
 * into_table). Leaves the table pushed on success, nothing on failure. */
static int decode_items(lua_State *L, reader_t *r, const tp_layout_t *lay,
                        bool into_table)
{
    if (!into_table)
        lua_createtable(L, 0, (int)lay->nops);
    for (size_t i = 0; i < lay->nops; i++) {
        const op_t *op = &lay->ops[i];
        if (op->kind == OP_OPT) {
            if (r->off == r->n)
                break;
            continue;
        }
        if (op->kind == OP_PAD) {
            if (r->n - r->off < op->count) {
                rfail(r, op, "frame too short");
                goto fail;
            }
            r->off += op->count;
            continue;
        }
        if (decode_value(L, r, op) < 0)
            goto fail;
        lua_setfield(L, -2, op->name);
    }
    return 0;
fail:
    if (!into_table)
        lua_pop(L, 1);
    return -1;
}

int tp_codec_decode(lua_State *L, const tp_layout_t *lay, const uint8_t *body,
                    size_t n, bool pad, size_t *used, char *err,
                    size_t errlen)
{
    /* Never a NULL base: NULL + 0 is undefined behaviour in C. */
    static const uint8_t empty[1];
    reader_t r = { .p = body ? body : empty, .n = body ? n : 0, .pad = pad,
                   .err = err, .errlen = errlen };
    /* Two slots per level (a table and a value), and a few for the calls. */
    luaL_checkstack(L, 2 * MAX_DEPTH + 8, "tp.codec: decode");
    if (decode_items(L, &r, lay, false) < 0)
        return -1;
    if (used)
        *used = r.off;
    return 0;
}

/* ------------------------------------------------------------ encoder */

typedef struct writer {
    tp_buf_t *out;       /* destination */
    bool pad;            /* string padding filter */
} writer_t;

static void put_bytes(lua_State *L, writer_t *w, const void *p, size_t n)
{
    if (!tp_buf_append(w->out, p, n))
        luaL_error(L, "tp.codec: too big");
}

static lua_Number get_int(lua_State *L, const op_t *op, lua_Number lo,
                          lua_Number hi)
{
    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "tp.codec: field '%s' must be a number, got %s",
                   op->name ? op->name : "(element)",
                   luaL_typename(L, -1));
    }
    lua_Number v = lua_tonumber(L, -1);
    /* NaN fails v == floor(v) too, so it is refused as well. */
    if (v != floor(v) || v < lo || v > hi) {
        luaL_error(L, "tp.codec: field '%s' out of range (%f)",
                   op->name ? op->name : "(element)", (double)v);
    }
    return v;
}

static void encode_items(lua_State *L, writer_t *w, const tp_layout_t *lay);

/* Encodes the value on top of the stack (and pops it). */
static void encode_value(lua_State *L, writer_t *w, const op_t *op)
{
    uint8_t tmp[8];
    switch (op->kind) {
    case OP_U32:
        tp_put_u32(tmp, (uint32_t)get_int(L, op, 0, 4294967295.0));
        put_bytes(L, w, tmp, 4);
        break;
    case OP_I32:
        tp_put_u32(tmp, (uint32_t)(int32_t)get_int(L, op, -2147483648.0,
                                                   2147483647.0));
        put_bytes(L, w, tmp, 4);
        break;
    case OP_S32: {
        /* All ones stands for -1, so the largest value is one less. */
        lua_Number v = get_int(L, op, -1, 4294967294.0);
        tp_put_u32(tmp, v < 0 ? UINT32_MAX : (uint32_t)v);
        put_bytes(L, w, tmp, 4);
        break;
    }
    case OP_U64:
        /* The largest double below 2^64 (2^64 - 2048): the cast stays
         * defined. */
        tp_put_u64(tmp, (uint64_t)get_int(L, op, 0, 18446744073709549568.0));
        put_bytes(L, w, tmp, 8);
        break;
    case OP_I64:
        /* Likewise up to the largest double below 2^63. */
        tp_put_u64(tmp, (uint64_t)(int64_t)get_int(L, op,
                   -9223372036854775808.0, 9223372036854774784.0));
        put_bytes(L, w, tmp, 8);
        break;
    case OP_S64: {
        lua_Number v = get_int(L, op, -1, 18446744073709549568.0);
        tp_put_u64(tmp, v < 0 ? UINT64_MAX : (uint64_t)v);
        put_bytes(L, w, tmp, 8);
        break;
    }
    case OP_STR: case OP_RAW: {
        /* A number goes as Lua prints it; lua_tolstring converting it in
         * place is harmless here, the slot is a copy popped at the end. */
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "tp.codec: field '%s' must be a string, got %s",
                       op->name ? op->name : "(element)",
                       luaL_typename(L, -1));
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (op->kind == OP_RAW) {
            put_bytes(L, w, s, len);
            break;
        }
        if (len > UINT32_MAX)
            luaL_error(L, "tp.codec: too big");
        tp_put_u32(tmp, (uint32_t)len);
        put_bytes(L, w, tmp, 4);
        put_bytes(L, w, s, len);
        /* Padded by the string's length, which agrees with [srv]'s
         * offset rule as every other field is 4 or 8 bytes
         * (PROTOCOL.md 2.7). */
        if (w->pad && len % 4) {
            static const uint8_t zeros[4];
            put_bytes(L, w, zeros, 4 - len % 4);
        }
        break;
    }
    case OP_LIST: {
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "tp.codec: field '%s' must be a list, got %s",
                       op->name, luaL_typename(L, -1));
        size_t count = lua_objlen(L, -1);
        if (count > UINT32_MAX)
            luaL_error(L, "tp.codec: too big");
        tp_put_u32(tmp, (uint32_t)count);
        put_bytes(L, w, tmp, 4);
        for (size_t i = 1; i <= count; i++) {
            lua_rawgeti(L, -1, (int)i);
            if (op->sub->scalar) {
                encode_value(L, w, &op->sub->ops[0]);
            } else {
                if (lua_type(L, -1) != LUA_TTABLE)
                    luaL_error(L, "tp.codec: element %d of '%s' must be a "
                               "table", (int)i, op->name);
                encode_items(L, w, op->sub);
                lua_pop(L, 1);
            }
        }
        break;
    }
    case OP_GROUP:
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "tp.codec: field '%s' must be a table, got %s",
                       op->name, luaL_typename(L, -1));
        encode_items(L, w, op->sub);
        break;
    case OP_PAD: case OP_OPT:
        break;
    }
    lua_pop(L, 1);
}

/* Encodes lay's items from the table on top of the stack (left there). */
static void encode_items(lua_State *L, writer_t *w, const tp_layout_t *lay)
{
    static const uint8_t zeros[64];
    for (size_t i = 0; i < lay->nops; i++) {
        const op_t *op = &lay->ops[i];
        if (op->kind == OP_OPT) {
            /* The optional tail is written only when its first field is
             * there (decoding stops at the same point). */
            if (i + 1 < lay->nops && lay->ops[i + 1].name) {
                lua_getfield(L, -1, lay->ops[i + 1].name);
                bool absent = lua_isnil(L, -1);
                lua_pop(L, 1);
                if (absent)
                    break;
            }
            continue;
        }
        if (op->kind == OP_PAD) {
            for (uint32_t left = op->count; left;) {
                uint32_t n = left < sizeof zeros ? left : sizeof zeros;
                put_bytes(L, w, zeros, n);
                left -= n;
            }
            continue;
        }
        lua_getfield(L, -1, op->name);
        if (lua_isnil(L, -1)) {
            /* A missing raw tail is an empty one (no parameters). */
            if (op->kind == OP_RAW) {
                lua_pop(L, 1);
                continue;
            }
            luaL_error(L, "tp.codec: missing field '%s'", op->name);
        }
        encode_value(L, w, op);
    }
}

void tp_codec_encode(lua_State *L, int idx, const tp_layout_t *lay,
                     tp_buf_t *out, bool pad)
{
    writer_t w = { .out = out, .pad = pad };
    luaL_checkstack(L, 2 * MAX_DEPTH + 8, "tp.codec: encode");
    lua_pushvalue(L, idx);
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "tp.codec: frame must be a table, got %s",
                   luaL_typename(L, -1));
    encode_items(L, &w, lay);
    lua_pop(L, 1);
}

/* ------------------------------------------------------------ Lua API */

#define LAYOUT_MT "tp.codec.layout"
#define BUF_MT "tp.codec.buf"
#define REGISTRY_KEY "tp.codec.registry"

typedef struct layout_box {
    tp_layout_t *lay;    /* owned */
} layout_box_t;

static int l_layout_gc(lua_State *L)
{
    layout_box_t *box = luaL_checkudata(L, 1, LAYOUT_MT);
    tp_layout_free(box->lay);
    box->lay = NULL;
    return 0;
}

static int l_buf_gc(lua_State *L)
{
    tp_buf_t *b = luaL_checkudata(L, 1, BUF_MT);
    tp_buf_free(b);
    return 0;
}

/* Compiles src into a new layout userdata pushed on the stack. */
static layout_box_t *push_compiled(lua_State *L, const char *src)
{
    /* The userdata and its __gc first: the layout is owned from the moment
     * it exists, and a failed allocation leaks nothing. */
    layout_box_t *box = lua_newuserdata(L, sizeof *box);
    box->lay = NULL;
    luaL_getmetatable(L, LAYOUT_MT);
    lua_setmetatable(L, -2);
    char err[256];
    box->lay = tp_layout_compile(src, err, sizeof err);
    if (!box->lay)
        luaL_error(L, "tp.codec: %s", err);
    return box;
}

static const tp_layout_t *check_layout(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        layout_box_t *box = push_compiled(L, lua_tostring(L, idx));
        /* The compiled userdata takes the string's slot, which keeps it alive
         * for the rest of the call. */
        lua_replace(L, idx);
        return box->lay;
    }
    layout_box_t *box = luaL_checkudata(L, idx, LAYOUT_MT);
    if (!box->lay)
        luaL_argerror(L, idx, "freed layout");
    return box->lay;
}

static int l_compile(lua_State *L)
{
    push_compiled(L, luaL_checkstring(L, 1));
    return 1;
}

static int l_encode(lua_State *L)
{
    const tp_layout_t *lay = check_layout(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    bool pad = lua_toboolean(L, 3);
    /* In a userdata whose __gc frees it: encoding may raise midway. */
    tp_buf_t *b = lua_newuserdata(L, sizeof *b);
    /* 64 MiB: the largest max_frame_size (config.lua) can be. */
    tp_buf_init(b, 64u << 20);
    luaL_getmetatable(L, BUF_MT);
    lua_setmetatable(L, -2);
    tp_codec_encode(L, 2, lay, b, pad);
    lua_pushlstring(L, (const char *)b->data, b->len);
    tp_buf_free(b);
    return 1;
}

static int l_decode(lua_State *L)
{
    const tp_layout_t *lay = check_layout(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    bool pad = lua_toboolean(L, 3);
    lua_Integer off = luaL_optinteger(L, 4, 0);
    if (off < 0 || (size_t)off > n)
        return luaL_argerror(L, 4, "offset out of range");
    char err[256];
    size_t used = 0;
    if (tp_codec_decode(L, lay, (const uint8_t *)s + off, n - (size_t)off,
                        pad, &used, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, off + (lua_Integer)used);
    return 2;
}

/* The frame registry: per set and version, an array indexed by a small
 * hash of the frame type, with the layouts anchored in a Lua table. */
#define REG_SLOTS 256

typedef struct registry {
    tp_frame_def_t defs[TP_SET_COUNT][2][REG_SLOTS]; /* [set][v3,v4][slot] */
    bool used[TP_SET_COUNT][2][REG_SLOTS];           /* slot taken */
} registry_t;

static unsigned reg_slot(uint32_t type)
{
    /* 0-127 to slots 0-127, 1000-1127 to 128-255: l_register takes no other
     * types, so no two registered frames share a slot. */
    return (type >= 1000 ? type - 1000 + 128 : type) % REG_SLOTS;
}

static registry_t *get_registry(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    registry_t *reg = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return reg;
}

const tp_frame_def_t *tp_codec_lookup(lua_State *L, int set, int version,
                                      uint32_t type)
{
    registry_t *reg = get_registry(L);
    if (!reg || set < 0 || set >= TP_SET_COUNT ||
        (version != 3 && version != 4))
        return NULL;
    unsigned s = reg_slot(type);
    int v = version - 3;
    /* Other types fold onto used slots (256 onto 0): compare the type. */
    if (!reg->used[set][v][s] || reg->defs[set][v][s].type != type)
        return NULL;
    return &reg->defs[set][v][s];
}

static int check_set(lua_State *L, int idx)
{
    static const char *const sets[] = { "player", "admin", NULL };
    return luaL_checkoption(L, idx, NULL, sets);
}

static int l_register(lua_State *L)
{
    int set = check_set(L, 1);
    int version = luaL_checkint(L, 2);
    lua_Number tn = luaL_checknumber(L, 3);
    const char *name = luaL_checkstring(L, 4);
    if (version != 3 && version != 4)
        return luaL_argerror(L, 2, "version must be 3 or 4");
    if (tn < 0 || tn > 4294967295.0 || tn != floor(tn))
        return luaL_argerror(L, 3, "bad frame type");
    uint32_t type = (uint32_t)tn;
    /* The ranges reg_slot maps without collisions: the player frames and
     * the admin frames (1000-1007). */
    if (type >= 128 && (type < 1000 || type >= 1000 + 128))
        return luaL_argerror(L, 3, "frame type outside 0-127, 1000-1127");
    const tp_layout_t *lay = check_layout(L, 5);
    registry_t *reg = get_registry(L);
    unsigned s = reg_slot(type);
    int v = version - 3;
    /* Anchor layout and name in the registry's environment table. */
    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    lua_getfenv(L, -1);
    char key[48];
    snprintf(key, sizeof key, "%d/%d/%u", set, version, (unsigned)type);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 4);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 5);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, key);
    lua_pop(L, 2);
    reg->defs[set][v][s].type = type;
    reg->defs[set][v][s].name = name;   /* anchored above */
    reg->defs[set][v][s].layout = lay;  /* anchored above */
    reg->used[set][v][s] = true;
    return 0;
}

static int l_lookup(lua_State *L)
{
    int set = check_set(L, 1);
    int version = luaL_checkint(L, 2);
    lua_Number tn = luaL_checknumber(L, 3);
    /* No such frame, not misuse; written so that NaN fails too. */
    if (!(tn >= 0 && tn <= 4294967295.0) || tn != floor(tn))
        return 0;
    const tp_frame_def_t *def = tp_codec_lookup(L, set, version,
                                                (uint32_t)tn);
    if (!def)
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    lua_getfenv(L, -1);
    char key[48];
    snprintf(key, sizeof key, "%d/%d/%u", set, version, (unsigned)tn);
    lua_getfield(L, -1, key);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    return 2;
}

int luaopen_tp_codec(lua_State *L)
{
    luaL_newmetatable(L, LAYOUT_MT);
    lua_pushcfunction(L, l_layout_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, BUF_MT);
    lua_pushcfunction(L, l_buf_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    /* Once per state: opening the module again keeps the frames already
     * registered. */
    if (lua_isnil(L, -1)) {
        registry_t *reg = lua_newuserdata(L, sizeof *reg);
        memset(reg, 0, sizeof *reg);
        lua_newtable(L);
        lua_setfenv(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    }
    lua_pop(L, 1);

    static const luaL_Reg fns[] = {
        { "compile", l_compile },
        { "encode", l_encode },
        { "decode", l_decode },
        { "register", l_register },
        { "lookup", l_lookup },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
