/*
 * lua_http.c: HTTP requests handed to Lua (the http hook) and the answers
 * Lua gives (conn:http_respond, conn:http_write).
 *
 * A request becomes a table { method, target, version, keep_alive,
 * headers = { lower-case name = value }, body } and the hook
 * http(conn, req) returns the answer: { status, headers = { {name,
 * value}, ... } or { name = value }, body, stream }, or nil after pausing
 * the connection to answer later with conn:http_respond(answer) (then
 * conn:resume()). The hook runs in one protected call under the request
 * time limit, as TP requests do; when it raises or runs out of time, the
 * http_failed(conn, err, timed_out, why) hook throws its changes away and
 * returns the answer (a 500 or 503 of its making); if even that fails the
 * answer is a plain 500. Header names and values holding CR, LF or NUL
 * are refused (they would split the answer).
 */
#include "bridge.h"

#include <string.h>

#include "budget.h"
#include "crash.h"
#include "http.h"
#include "listener.h"
#include "log.h"

#define MAX_ANSWER_HEADERS 64

static bool clean(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
            return false;
    return true;
}

/* Writes the answer table at idx for c; raises when it is not one. */
static void respond_from(lua_State *L, int idx, tp_conn_t *c)
{
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "status");
    int status = lua_isnil(L, -1) ? 200 : (int)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (status < 100 || status > 599)
        luaL_error(L, "HTTP status %d out of range", status);
    const char *names[2 * MAX_ANSWER_HEADERS];
    size_t lens[2 * MAX_ANSWER_HEADERS];
    size_t n = 0;
    lua_getfield(L, idx, "headers");
    int hi = lua_gettop(L);
    if (lua_istable(L, hi)) {
        size_t arr = lua_objlen(L, hi);
        if (arr > 0) {
            for (size_t i = 1; i <= arr; i++) {
                lua_rawgeti(L, hi, (int)i);
                lua_rawgeti(L, -1, 1);
                lua_rawgeti(L, -2, 2);
                if (n >= MAX_ANSWER_HEADERS)
                    luaL_error(L, "too many answer headers");
                names[2 * n] = luaL_checklstring(L, -2, &lens[2 * n]);
                names[2 * n + 1] = luaL_checklstring(L, -1,
                                                     &lens[2 * n + 1]);
                lua_remove(L, -3);     /* name and value stay pinned */
                n++;
            }
        } else {
            lua_pushnil(L);
            while (lua_next(L, hi)) {
                if (n >= MAX_ANSWER_HEADERS)
                    luaL_error(L, "too many answer headers");
                lua_pushvalue(L, -2);
                lua_insert(L, -2);    /* key copy, value: pinned */
                names[2 * n] = luaL_checklstring(L, -2, &lens[2 * n]);
                names[2 * n + 1] = luaL_checklstring(L, -1,
                                                     &lens[2 * n + 1]);
                n++;
                lua_pushvalue(L, -2); /* the key again for lua_next */
            }
        }
    }
    for (size_t i = 0; i < 2 * n; i++)
        if (!clean(names[i], lens[i]) || (i % 2 == 0 && lens[i] == 0))
            luaL_error(L, "bad answer header (empty, or CR, LF or NUL)");
    lua_getfield(L, idx, "body");
    size_t blen = 0;
    const char *body = lua_isnil(L, -1) ? "" : luaL_checklstring(L, -1,
                                                                 &blen);
    lua_getfield(L, idx, "stream");
    bool stream = lua_toboolean(L, -1);
    if (!tp_http_respond(c, status, names, lens, n, body, blen, stream))
        luaL_error(L, "no HTTP request is waiting for an answer");
    lua_settop(L, idx);
}

/* conn:http_respond(answer): the answer to the request the connection
 * waits on (after the hook returned nil). */
int tp_lua_conn_http_respond(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, false);
    if (!c)
        return 0;
    if (c->lst == NULL || !c->lst->web)
        return luaL_error(L, "not an HTTP connection");
    respond_from(L, 2, c);
    return 0;
}

/* conn:http_write(s) -> true | false: a chunk of a stream answer, sent at
 * once; false when the connection is closed, not streaming, or its
 * output is full (the caller closes it). */
int tp_lua_conn_http_write(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, false);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    lua_pushboolean(L, c && c->lst && c->lst->web &&
                    tp_http_write(c, p, n));
    return 1;
}

int tp_lua_http_respond_table(lua_State *L);

typedef struct http_call {
    tp_lua_t *lx;
    tp_conn_t *c;
    tp_http_t *h;
    bool answered_later;
} http_call_t;

/* Under lua_pcall with the request's budget: builds the request table,
 * calls the hook, writes what it returns. */
static int http_trampoline(lua_State *L)
{
    http_call_t *hc = lua_touserdata(L, 1);
    tp_http_t *h = hc->h;
    lua_createtable(L, 0, 8);
    int req = lua_gettop(L);
    lua_pushstring(L, tp_http_method(h));
    lua_setfield(L, req, "method");
    lua_pushlstring(L, (const char *)h->url.data, h->url.len);
    lua_setfield(L, req, "target");
    lua_pushfstring(L, "HTTP/%d.%d", (int)h->parser.http_major,
                    (int)h->parser.http_minor);
    lua_setfield(L, req, "version");
    lua_pushboolean(L, h->keep_alive);
    lua_setfield(L, req, "keep_alive");
    lua_createtable(L, 0, (int)h->nheaders);
    for (unsigned i = 0; i < h->nheaders; i++) {
        const tp_http_header_t *e = &h->headers[i];
        lua_pushlstring(L, (const char *)h->hdr.data + e->name,
                        e->name_len);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isstring(L, -1)) {
            /* Repeated headers are joined, as HTTP allows. */
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, (const char *)h->hdr.data + e->value,
                            e->value_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, (const char *)h->hdr.data + e->value,
                            e->value_len);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, req, "headers");
    lua_pushlstring(L, (const char *)h->body.data, h->body.len);
    lua_setfield(L, req, "body");
    tp_lua_push_hook(hc->lx, "http");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "no http hook");
    tp_lua_push_conn(L, hc->c);
    lua_pushvalue(L, req);
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1)) {
        if (!hc->c->paused && h->waiting)
            return luaL_error(L, "the http hook gave no answer and did "
                              "not pause the connection");
        hc->answered_later = true;
        return 0;
    }
    respond_from(L, -1, hc->c);
    return 0;
}

/* A plain 500 when even the failure hook failed. */
static void plain_500(tp_conn_t *c, const char *msg)
{
    static const char *const hdrs[] = { "Content-Type", "application/json" };
    static const size_t lens[] = { 12, 16 };
    char body[160];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"code\":null,"
                     "\"status\":500}\n", msg);
    tp_http_respond(c, 500, hdrs, lens, 1, body, (size_t)n, false);
}

void tp_lua_http(tp_lua_t *lx, tp_conn_t *c, tp_http_t *h)
{
    lua_State *L = lx->L;
    if (lx->in_dispatch) {
        plain_500(c, "server busy (nested request)");
        return;
    }
    int top = lua_gettop(L);
    http_call_t hc = { .lx = lx, .c = c, .h = h };
    lx->in_dispatch = true;
    tp_crash_request(c->id, -2);
    tp_budget_t budget = { .seconds = lx->srv->limits.request_s,
                           .what = "request" };
    bool limited = budget.seconds > 0;
    if (limited)
        tp_budget_push(L, &budget);
    lua_pushcfunction(L, tp_lua_errhandler);
    lua_pushcfunction(L, http_trampoline);
    lua_pushlightuserdata(L, &hc);
    int status = lua_pcall(L, 1, 0, top + 1);
    if (limited)
        tp_budget_pop(L, &budget);
    bool timed_out = limited && tp_budget_expired(&budget);
    if (status == LUA_ERRMEM) {
        tp_log_error("lua", "conn=%llu HTTP request: out of memory",
                     (unsigned long long)c->id);
        lua_settop(L, top);
        lua_gc(L, LUA_GCCOLLECT, 0);
        tp_crash_request(0, -1);
        lx->in_dispatch = false;
        tp_conn_close(c, "out of memory");
        return;
    }
    if (status != 0 || timed_out) {
        if (status == 0)
            lua_pushnil(L);
        if (timed_out)
            tp_log_error("lua", "conn=%llu HTTP %s %.*s: %s",
                         (unsigned long long)c->id, tp_http_method(h),
                         (int)(h->url.len > 200 ? 200 : h->url.len),
                         (const char *)h->url.data, budget.why);
        /* The failure hook throws the changes away and says what to
         * answer; it runs unlimited, as TP's request_failed does. */
        int err = lua_gettop(L);
        lua_pushcfunction(L, tp_lua_errhandler);
        int eh = lua_gettop(L);
        tp_lua_push_hook(lx, "http_failed");
        bool answered = false;
        if (lua_isfunction(L, -1)) {
            tp_lua_push_conn(L, c);
            lua_pushvalue(L, err);
            lua_pushboolean(L, timed_out);
            if (timed_out)
                lua_pushstring(L, budget.why);
            else
                lua_pushnil(L);
            if (lua_pcall(L, 4, 1, eh) == 0 && lua_istable(L, -1) &&
                h->waiting) {
                /* Written under protection: a bad table is a 500. */
                lua_pushcfunction(L, tp_lua_errhandler);
                lua_pushcfunction(L, tp_lua_http_respond_table);
                tp_lua_push_conn(L, c);
                lua_pushvalue(L, -4);
                answered = lua_pcall(L, 2, 0, -4) == 0;
            } else if (!lua_istable(L, -1)) {
                tp_log_error("lua", "conn=%llu the http_failed hook "
                             "failed: %s", (unsigned long long)c->id,
                             lua_tostring(L, -1) ? lua_tostring(L, -1)
                                                 : "?");
            }
        }
        if (!answered && h->waiting)
            plain_500(c, "internal error");
    }
    tp_crash_request(0, -1);
    lx->in_dispatch = false;
    lua_settop(L, top);
}

/* respond_from as a Lua function (conn, answer), for protected calls. */
int tp_lua_http_respond_table(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, true);
    respond_from(L, 2, c);
    return 0;
}
