/*
 * bridge.c: the Lua state and the protected path from a decoded request to
 * its encoded replies: creating and booting the VM, the handlers the
 * network side calls (open, frame, more, closed), the request's one error
 * path and the Fail frames it sends. The bindings are elsewhere: tp.conn
 * in lua_conn.c, tp.core and its timers in lua_core.c, what they share in
 * lua_util.c.
 *
 * Invariants: one lua_State, touched only by the loop thread; every call
 * into Lua goes through lua_pcall with tp_lua_errhandler() as message
 * handler and leaves the stack as it found it; a request's output is
 * rolled back to its savepoint when anything fails, and replaced by one
 * Fail frame.
 */
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "budget.h"
#include "console.h"
#include "ssh.h"
#include "avahi.h"
#include "curl.h"
#include "spawn.h"
#include "crash.h"
#include "log.h"
#include "stats.h"
#include "store.h"

extern int luaopen_cjson(lua_State *L);

/* ------------------------------------------------------------ helpers */

/* Reads a number field of the record at idx without metamethods; dflt
 * when it is not a number. */
static lua_Number rec_number(lua_State *L, int idx, const char *key,
                             lua_Number dflt)
{
    lua_pushstring(L, key);
    lua_rawget(L, idx);
    lua_Number v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1)
                                                  : dflt;
    lua_pop(L, 1);
    return v;
}

/* ------------------------------------------------------------ Fail */

typedef struct fail_call {
    tp_conn_t *c;        /* destination */
    int version;         /* 3 or 4 */
    uint32_t seq;        /* sequence number */
    uint32_t code;       /* Fail code (mapped for TP03 already) */
    const char *msg;     /* human-readable reason */
    int refs_idx;        /* caller's stack index of references, or 0 */
} fail_call_t;

/* Runs under lua_pcall: builds the Fail table and encodes it in the
 * version asked for (the connection's own may not be settled yet). */
static int fail_trampoline(lua_State *L)
{
    fail_call_t *fc = lua_touserdata(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, 1);
    lua_setfield(L, -2, "_type");
    lua_pushnumber(L, fc->code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, fc->msg);
    lua_setfield(L, -2, "result");
    if (lua_type(L, 2) == LUA_TTABLE)
        lua_pushvalue(L, 2);       /* the references, passed as argument */
    else
        lua_newtable(L);
    lua_setfield(L, -2, "references");
    int saved = fc->c->version;
    fc->c->version = fc->version;
    tp_lua_encode_frame(L, -1, fc->c, fc->seq);
    fc->c->version = saved;
    return 0;
}

/* Appends one Fail to c's output, all or nothing: references that do not
 * encode are dropped; a Fail that cannot be encoded at all closes c. */
static void send_fail(tp_lua_t *lx, tp_conn_t *c, int version, uint32_t seq,
                      uint32_t code, const char *msg, int refs_idx)
{
    lua_State *L = lx->L;
    int top = lua_gettop(L);
    size_t mark = c->out.len;
    fail_call_t fc = { c, version, seq, tp_frame_fail_code(version, code), msg,
                       refs_idx };
    lua_pushcfunction(L, fail_trampoline);
    lua_pushlightuserdata(L, &fc);
    if (refs_idx)
        lua_pushvalue(L, refs_idx);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 2, 0, 0) != 0 && refs_idx) {
        /* Bad references from a handler: send the Fail without them. */
        lua_settop(L, top);
        c->out.len = mark;
        c->out.max = 0;
        fc.refs_idx = 0;
        lua_pushcfunction(L, fail_trampoline);
        lua_pushlightuserdata(L, &fc);
        if (lua_pcall(L, 1, 0, 0) == 0)
            goto done;
    } else {
        goto done;
    }
    tp_log_error("net", "conn=%llu cannot encode a Fail frame: %s",
                 (unsigned long long)c->id, lua_tostring(L, -1));
    c->out.len = mark;
    tp_conn_close(c, "cannot encode Fail");
done:
    c->out.max = 0;
    lua_settop(L, top);
}

/* ------------------------------------------------------------ requests */

typedef struct request_call {
    tp_lua_t *lx;                /* bridge */
    tp_conn_t *c;                /* connection */
    const tp_header_t *h;        /* header */
    const uint8_t *body;         /* borrowed body bytes */
    const tp_frame_def_t *def;   /* frame layout */
    bool malformed;              /* decode failed: err holds why */
    char err[256];               /* decode error */
} request_call_t;

/* Runs under lua_pcall with the request's budget: decodes the body (a
 * malformed one is flagged, not raised), calls the dispatch hook and
 * encodes what it returns. */
static int request_trampoline(lua_State *L)
{
    request_call_t *rc = lua_touserdata(L, 1);
    size_t used = 0;
    if (tp_codec_decode(L, rc->def->layout, rc->body, rc->h->len,
                        rc->c->pad, &used, rc->err, sizeof rc->err) < 0) {
        rc->malformed = true;
        return 0;
    }
    if (used < rc->h->len)
        tp_log(TP_LOG_DEBUG, "net", "conn=%llu seq=%u %s: %zu trailing "
               "bytes ignored", (unsigned long long)rc->c->id, rc->h->seq,
               rc->def->name, (size_t)rc->h->len - used);
    int req = lua_gettop(L);
    lua_pushnumber(L, rc->h->type);
    lua_setfield(L, req, "_type");
    lua_pushnumber(L, rc->h->seq);
    lua_setfield(L, req, "_seq");
    lua_pushstring(L, rc->def->name);
    lua_setfield(L, req, "_name");
    tp_lua_push_hook(rc->lx, "dispatch");
    tp_lua_push_conn(L, rc->c);
    lua_pushvalue(L, req);
    lua_call(L, 2, 1);
    tp_lua_encode_replies(L, -1, rc->c, rc->h->seq);
    return 0;
}

/* The one error path of a request, after its budget was popped: the
 * dispatcher's request_failed hook throws away what the request changed
 * (unlimited) and says what to answer; then the answer is a Fail from a
 * fail.raise record, or, for anything else, a logged bug. The error object
 * is on top of the stack (nil when the request was stopped but its code
 * went on); top is the stack level to return to. */
static void request_failed(tp_lua_t *lx, tp_conn_t *c, const tp_header_t *h,
                           const tp_frame_def_t *def, int top,
                           bool timed_out, const char *why, bool too_big)
{
    lua_State *L = lx->L;
    if (timed_out)
        tp_log_error("lua", "conn=%llu seq=%u frame=%s: %s",
                     (unsigned long long)c->id, h->seq, def->name, why);
    int err = lua_gettop(L);
    lua_pushcfunction(L, tp_lua_errhandler);
    int eh = lua_gettop(L);
    tp_lua_push_hook(lx, "request_failed");
    if (lua_isfunction(L, -1)) {
        tp_lua_push_conn(L, c);
        lua_pushvalue(L, err);
        lua_pushboolean(L, timed_out);
        if (why)
            lua_pushstring(L, why);
        else
            lua_pushnil(L);
        lua_pushboolean(L, too_big);
        if (lua_pcall(L, 5, 1, eh) != 0) {
            /* The recovery itself failed: a bug, reported as such. */
            lua_replace(L, err);
        } else if (!lua_isnil(L, -1)) {
            lua_replace(L, err);
        } else {
            lua_pop(L, 1);
        }
    } else {
        lua_pop(L, 1);
    }
    lua_settop(L, err);
    int rec = err;
    if (lua_type(L, rec) == LUA_TTABLE &&
        !lua_toboolean(L, (lua_pushliteral(L, "bug"), lua_rawget(L, rec),
                           -1))) {
        lua_pop(L, 1);
        /* fail.raise(code, msg, refs), or the hook's answer. */
        uint32_t code = (uint32_t)rec_number(L, rec, "code",
                                             TP_FAIL_UNAVAILABLE_TEMP);
        const char *msg = tp_lua_rec_string(L, rec, "message");
        lua_pushliteral(L, "refs");
        lua_rawget(L, rec);
        int refs = lua_type(L, -1) == LUA_TTABLE ? lua_gettop(L) : 0;
        send_fail(lx, c, c->version, h->seq, code, msg ? msg : "failed",
                  refs);
    } else if (too_big) {
        tp_log_warn("net", "conn=%llu seq=%u %s: reply over the frame "
                    "limit", (unsigned long long)c->id, h->seq, def->name);
        send_fail(lx, c, c->version, h->seq, TP_FAIL_TOO_BIG,
                  "reply too large for one frame; ask for fewer items", 0);
    } else {
        if (lua_type(L, rec) == LUA_TTABLE)
            lua_pop(L, 1); /* the "bug" flag */
        const char *emsg = lua_type(L, rec) == LUA_TTABLE ?
            tp_lua_rec_string(L, rec, "message") : lua_tostring(L, rec);
        const char *trace = lua_type(L, rec) == LUA_TTABLE ?
            tp_lua_rec_string(L, rec, "trace") : NULL;
        unsigned long long id = ++lx->next_error_id;
        tp_log_error("lua", "internal error #%llu conn=%llu seq=%u "
                     "frame=%s: %s", id, (unsigned long long)c->id, h->seq,
                     def->name, trace ? trace : emsg ? emsg : "?");
        char msg[64];
        snprintf(msg, sizeof msg, "internal error #%llu", id);
        send_fail(lx, c, c->version, h->seq, TP_FAIL_UNAVAILABLE_TEMP, msg,
                  0);
    }
    lua_settop(L, top);
}

/* One whole request frame (the frame handler): unknown types and nested
 * requests are answered at once; anything else runs in one protected
 * call, and every failure ends in exactly one Fail (or, out of memory, a
 * closed connection). */
static void tp_lua_request(tp_lua_t *lx, tp_conn_t *c,
                           const tp_header_t *h, const uint8_t *body)
{
    lua_State *L = lx->L;
    const tp_frame_def_t *def = tp_codec_lookup(L, c->set, c->version,
                                                h->type);
    if (!def) {
        if (c->version == 3 && tp_codec_lookup(L, c->set, 4, h->type)) {
            send_fail(lx, c, c->version, h->seq, TP_FAIL_FRAME,
                      "frame type not supported in this protocol version",
                      0);
        } else {
            char msg[80];
            snprintf(msg, sizeof msg, "unknown frame type %u", h->type);
            tp_log_info("net", "conn=%llu peer=%s %s",
                        (unsigned long long)c->id, c->peer, msg);
            send_fail(lx, c, c->version, h->seq, TP_FAIL_PROTOCOL, msg, 0);
        }
        return;
    }
    if (lx->in_dispatch) {
        send_fail(lx, c, c->version, h->seq, TP_FAIL_UNAVAILABLE_TEMP,
                  "server busy (nested request)", 0);
        return;
    }
    int top = lua_gettop(L);
    size_t mark = c->out.len;
    request_call_t rc = { .lx = lx, .c = c, .h = h, .body = body,
                          .def = def };
    uint64_t started = uv_hrtime();
    lx->in_dispatch = true;
    tp_crash_request(c->id, (int)h->type);
    /* Player requests run under request_time_limit; admin commands are
     * the admin's own business. */
    tp_budget_t budget = { .seconds = c->set == TP_SET_PLAYER ?
                                      lx->srv->limits.request_s : 0,
                           .what = "request" };
    bool limited = budget.seconds > 0;
    if (limited)
        tp_budget_push(L, &budget);
    c->out.refused = false;
    lua_pushcfunction(L, tp_lua_errhandler);
    lua_pushcfunction(L, request_trampoline);
    lua_pushlightuserdata(L, &rc);
    int status = lua_pcall(L, 1, 0, top + 1);
    if (limited)
        tp_budget_pop(L, &budget);
    bool timed_out = limited && tp_budget_expired(&budget);
    bool too_big = c->out.refused;
    c->out.max = 0;
    c->out.refused = false;
    if (status == 0 && !timed_out && rc.malformed) {
        tp_crash_request(0, -1);
        lx->in_dispatch = false;
        tp_log_info("net", "conn=%llu peer=%s seq=%u malformed %s: %s",
                    (unsigned long long)c->id, c->peer, h->seq, def->name,
                    rc.err);
        char msg[320];
        snprintf(msg, sizeof msg, "malformed %s frame: %s", def->name,
                 rc.err);
        send_fail(lx, c, c->version, h->seq, TP_FAIL_FRAME, msg, 0);
    } else if (status != 0 || timed_out) {
        c->out.len = mark; /* never a half answer */
        if (status == LUA_ERRMEM) {
            tp_crash_request(0, -1);
            lx->in_dispatch = false;
            tp_log_error("lua", "conn=%llu seq=%u %s: out of memory",
                         (unsigned long long)c->id, h->seq, def->name);
            lua_settop(L, top);
            lua_gc(L, LUA_GCCOLLECT, 0);
            tp_conn_close(c, "out of memory");
        } else {
            if (status == 0)
                lua_pushnil(L);   /* stopped, though the code went on */
            request_failed(lx, c, h, def, top, timed_out,
                           timed_out ? budget.why : NULL, too_big);
            tp_crash_request(0, -1);
            lx->in_dispatch = false;
        }
    } else {
        tp_crash_request(0, -1);
        lx->in_dispatch = false;
    }
    /* A deferred request (the handler paused the connection) and a reply
     * made in parts are timed by tp.dispatch when the reply is done. */
    if (c->more)
        c->more_type = h->type;
    if ((!c->paused && !c->more) || c->closing)
        tp_histogram_observe(&tp_stats.request_seconds,
                             (double)(uv_hrtime() - started) / 1e9);
    lua_settop(L, top);
}

/* The next part of a reply made in parts (the more handler): one
 * protected call of the function conn:produce registered, which answers
 * its own errors and time limit (tp.dispatch). An error out of it is a bug
 * that leaves the reply unfinishable: logged, and the connection closed,
 * since its client waits for frames that will not come. */
static void tp_lua_more(tp_lua_t *lx, tp_conn_t *c)
{
    lua_State *L = lx->L;
    if (lx->in_dispatch)
        return;             /* cannot happen: the loop calls, not Lua */
    if (c->more_ref < 0) {
        c->more = false;
        return;
    }
    int top = lua_gettop(L);
    lx->in_dispatch = true;
    tp_crash_request(c->id, (int)c->more_type);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->more_ref);
    int rc = tp_lua_pcall_logged(L, 0, "reply part");
    tp_crash_request(0, -1);
    lx->in_dispatch = false;
    lua_settop(L, top);
    if (rc != 0 && !c->closing) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->more_ref);
        c->more_ref = -2;
        c->more = false;
        tp_conn_close(c, "internal error in a reply");
    }
}

/* ------------------------------------------------------------ set-up */

/* package.preload[name] = fn: opened on the first require. */
static void preload(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
    lua_pop(L, 2);
}

/* The handlers the network side calls (listener.h). */
static void on_conn_open(void *ud, tp_conn_t *c)
{
    tp_lua_conn_open(ud, c);
}

static void on_conn_frame(void *ud, tp_conn_t *c, const tp_header_t *h,
                          const uint8_t *body)
{
    tp_lua_request(ud, c, h, body);
}

static void on_conn_more(void *ud, tp_conn_t *c)
{
    tp_lua_more(ud, c);
}

static void on_conn_http(void *ud, tp_conn_t *c, struct tp_http *h)
{
    tp_lua_http(ud, c, h);
}

static void on_conn_closed(void *ud, tp_conn_t *c, const char *reason)
{
    tp_lua_conn_closed(ud, c, reason);
}

/* Returns 0, or -1 when the state cannot be made. */
int tp_lua_init(tp_lua_t *lx, tp_server_t *srv)
{
    memset(lx, 0, sizeof *lx);
    lx->srv = srv;
    lx->hooks_ref = LUA_NOREF;
    /* The network side reaches Lua only through these. */
    srv->handlers = (tp_conn_handlers_t){ .ud = lx, .open = on_conn_open,
                                          .frame = on_conn_frame,
                                          .more = on_conn_more,
                                          .closed = on_conn_closed,
                                          .http = on_conn_http };
    lua_State *L = luaL_newstate();
    if (!L)
        return -1;
    lx->L = L;
    /* TPSERVER_GC_STRESS=1: a garbage collector that never rests, so
     * that a C binding using an object it did not anchor fails at once
     * (for testing; very slow). */
    const char *stress = getenv("TPSERVER_GC_STRESS");
    if (stress && *stress && strcmp(stress, "0") != 0) {
        lua_gc(L, LUA_GCSETPAUSE, 0);
        lua_gc(L, LUA_GCSETSTEPMUL, 400);
    }
    luaL_openlibs(L);
    /* The standard functions that can run long in C count against the
     * time limits (budget_lib.c). */
    tp_budget_open_lib(L);
    /* The trace compiler starts off; boot turns it on when the
     * configuration says jit = true. With it on, Debian 12's LuaJIT (a
     * 2.1 snapshot of 2022) was seen to free a live table about once in
     * a few hundred starts (a crash, or a corrupt game state, while the
     * universe is made); with it off, never. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_pushlightuserdata(L, lx);
    lua_setfield(L, LUA_REGISTRYINDEX, TP_LUA_KEY);

    tp_lua_open_conn(L);
    tp_lua_open_timers(L);

    preload(L, "tp.core", luaopen_tp_core);
    preload(L, "tp.codec", luaopen_tp_codec);
    preload(L, "tp.store", luaopen_tp_store);
    preload(L, "tp.crypto", luaopen_tp_crypto);
    preload(L, "tp.text", luaopen_tp_text);
    preload(L, "tp.tls", luaopen_tp_tls);
    preload(L, "tp.console", luaopen_tp_console);
    preload(L, "tp.ssh", luaopen_tp_ssh);
    preload(L, "tp.avahi", luaopen_tp_avahi);
    preload(L, "tp.curl", luaopen_tp_curl);
    preload(L, "tp.spawn", luaopen_tp_spawn);
    preload(L, "cjson", luaopen_cjson);
    /* The codec registry must exist before the network needs it. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tp.codec");
    lua_call(L, 1, 0);
    return 0;
}

/* The message goes to stderr (the terminal waiting on a daemon), the
 * traceback to the debug log. */
int tp_lua_boot(tp_lua_t *lx, const char *path)
{
    lua_State *L = lx->L;
    int args = lua_gettop(L);
    lua_pushcfunction(L, tp_lua_errhandler);
    lua_insert(L, args);           /* [eh, args] */
    if (luaL_loadfile(L, path) != 0) {
        fprintf(stderr, "tpserver: %s\n", lua_tostring(L, -1));
        lua_settop(L, args - 1);
        return -1;
    }
    lua_insert(L, args + 1);       /* [eh, fn, args] */
    if (lua_pcall(L, 1, 1, args) != 0) {
        const char *msg = NULL;
        if (lua_type(L, -1) == LUA_TTABLE) {
            msg = tp_lua_rec_string(L, lua_gettop(L), "message");
            const char *trace = tp_lua_rec_string(L, lua_gettop(L), "trace");
            if (trace)
                tp_log_debug("lua", "boot failed: %s", trace);
        } else {
            msg = lua_tostring(L, -1);
        }
        fprintf(stderr, "tpserver: %s\n", msg ? msg : "start-up failed");
        lua_settop(L, args - 1);
        return -1;
    }
    if (lua_type(L, -1) == LUA_TTABLE) {
        lx->hooks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        lua_pop(L, 1);
    }
    lua_settop(L, args - 1);
    return 0;
}

/* A failing on_hup is logged; the server goes on. */
void tp_lua_hup(tp_lua_t *lx)
{
    lua_State *L = lx->L;
    int top = lua_gettop(L);
    tp_lua_push_hook(lx, "on_hup");
    if (lua_isfunction(L, -1))
        tp_lua_pcall_logged(L, 0, "on_hup");
    lua_settop(L, top);
}

/* Timers are closed before on_stop, and again after it: it may have
 * started some. */
void tp_lua_stop(tp_lua_t *lx)
{
    lua_State *L = lx->L;
    int top = lua_gettop(L);
    tp_lua_close_timers();
    tp_lua_push_hook(lx, "on_stop");
    if (lua_isfunction(L, -1))
        tp_lua_pcall_logged(L, 0, "on_stop");
    lua_settop(L, top);
    tp_lua_close_timers();
    /* Withdraws what Zeroconf published; drops outgoing requests. */
    tp_avahi_close_all();
    tp_curl_close_all();
    tp_spawn_close_all();
}

/* Safe to call twice, or after a failed tp_lua_init. */
void tp_lua_close(tp_lua_t *lx)
{
    if (lx->L)
        lua_close(lx->L);
    lx->L = NULL;
}
