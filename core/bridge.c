/*
 * bridge.c: the Lua state, the tp.core module, connection objects, and the
 * protected path from a decoded request to its encoded replies.
 *
 * Invariants: one lua_State, touched only by the loop thread; every call
 * into Lua goes through lua_pcall with errhandler() as message handler and
 * leaves the stack as it found it; a request's output is rolled back to its
 * savepoint when anything fails, and replaced by one Fail frame.
 */
#include "bridge.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "budget.h"
#include "console.h"
#include "crash.h"
#include "log.h"
#include "stats.h"
#include "store.h"
#include "version.h"

#define CONN_MT "tp.conn"
#define TIMER_MT "tp.timer"
#define LX_KEY "tp.bridge"

extern int luaopen_cjson(lua_State *L);

/* ------------------------------------------------------------ helpers */

static tp_lua_t *get_lx(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LX_KEY);
    tp_lua_t *lx = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lx;
}

/* Message handler for every protected call. A fail.raise() table passes
 * through untouched; anything else is a bug and becomes a record
 * { bug = true, message = ..., trace = ... }. Uses raw access only, so an
 * error value with a hostile metatable cannot raise again here. */
static int errhandler(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_pushliteral(L, "tp_fail");
        lua_rawget(L, 1);
        bool is_fail = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (is_fail) {
            lua_settop(L, 1);
            return 1;
        }
    }
    const char *msg;
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        msg = lua_tostring(L, 1);
    else
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              lua_typename(L, t));
    luaL_traceback(L, L, msg, 1);
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "bug");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "trace");
    return 1;
}

/* Reads a string field of the record at idx without metamethods. */
static const char *rec_string(lua_State *L, int idx, const char *key)
{
    lua_pushstring(L, key);
    lua_rawget(L, idx);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                   : NULL;
    lua_pop(L, 1); /* the string stays alive in the record */
    return s;
}

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

/* Protected call of the function under nargs arguments; logs a failure
 * with its traceback under what. Returns the pcall status; on success the
 * nresults results are left on the stack. */
static int pcall_logged(lua_State *L, int nargs, int nresults,
                        const char *what)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, errhandler);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    if (rc != 0) {
        const char *msg = "?";
        if (lua_type(L, -1) == LUA_TTABLE) {
            msg = rec_string(L, lua_gettop(L), "trace");
            if (!msg)
                msg = rec_string(L, lua_gettop(L), "message");
            if (!msg)
                msg = "error";
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            msg = lua_tostring(L, -1);
        }
        tp_log_error("lua", "%s failed: %s", what, msg ? msg : "?");
        lua_pop(L, 1);
    }
    lua_remove(L, base);
    return rc;
}

/* Pushes hooks[name] (a function or nil). */
static void push_hook(tp_lua_t *lx, const char *name)
{
    lua_State *L = lx->L;
    if (lx->hooks_ref == LUA_NOREF || lx->hooks_ref == LUA_REFNIL) {
        lua_pushnil(L);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, lx->hooks_ref);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

/* ------------------------------------------------------------ encoding */

/* Encodes the frame table at idx into c's output with seq. Raises on a
 * frame that does not encode (missing field, unknown type, too big). */
static void encode_frame(lua_State *L, int idx, tp_conn_t *c, uint32_t seq)
{
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "reply frame must be a table, got %s",
                   luaL_typename(L, idx));
    lua_getfield(L, idx, "_type");
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "reply frame without a numeric _type");
    lua_Number tn = lua_tonumber(L, -1);
    lua_pop(L, 1);
    int version = c->version ? c->version : 4;
    const tp_frame_def_t *def = tn >= 0 && tn <= 4294967295.0 ?
        tp_codec_lookup(L, c->set, version, (uint32_t)tn) : NULL;
    if (!def)
        luaL_error(L, "frame type %d does not exist in TP0%d", (int)tn,
                   version);
    if (def->type == 1 && version == 3) {
        /* TP03 knows Fail codes 0-5 only (PROTOCOL.md 15.4). */
        lua_getfield(L, idx, "code");
        if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number code = lua_tonumber(L, -1);
            if (code == TP_FAIL_GONE)
                code = TP_FAIL_NO_SUCH_THING;
            else if (code > TP_FAIL_PERMISSION)
                code = TP_FAIL_FRAME;
            lua_pushnumber(L, code);
            lua_setfield(L, idx, "code");
        }
        lua_pop(L, 1);
    }
    size_t start = c->out.len;
    uint8_t hdr[TP_HEADER_SIZE] = { 0 };
    c->out.max = start + c->srv->limits.max_frame;
    if (!tp_buf_append(&c->out, hdr, sizeof hdr))
        luaL_error(L, "tp.codec: too big");
    tp_codec_encode(L, idx, def->layout, &c->out, c->pad);
    c->out.max = 0;
    size_t body = c->out.len - start - TP_HEADER_SIZE;
    tp_frame_write_header(c->out.data + start, version, seq, def->type,
                          (uint32_t)body);
    tp_stats_frame_out(def->type);
    if (def->type == 1) {
        /* Every Fail sent, whoever built it, is counted and logged here. */
        lua_getfield(L, idx, "code");
        lua_getfield(L, idx, "result");
        uint32_t code = (uint32_t)lua_tonumber(L, -2);
        tp_stats_fail_out(code);
        tp_log_debug("net", "conn=%llu seq=%u Fail code=%u result=\"%s\"",
                     (unsigned long long)c->id, seq, code,
                     lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
        lua_pop(L, 2);
    }
}

/* Encodes nil (nothing), one frame (a table with _type), or an array of
 * frames, at idx. */
static void encode_replies(lua_State *L, int idx, tp_conn_t *c, uint32_t seq)
{
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    if (lua_isnil(L, idx))
        return;
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "handler returned a %s, not frames",
                   luaL_typename(L, idx));
    lua_getfield(L, idx, "_type");
    bool single = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (single) {
        encode_frame(L, idx, c, seq);
        return;
    }
    size_t n = lua_objlen(L, idx);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        encode_frame(L, -1, c, seq);
        lua_pop(L, 1);
    }
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
    encode_frame(L, -1, fc->c, fc->seq);
    fc->c->version = saved;
    return 0;
}

static uint32_t map_code(int version, uint32_t code)
{
    if (version == 3) {
        if (code == TP_FAIL_GONE)
            return TP_FAIL_NO_SUCH_THING;
        if (code > TP_FAIL_PERMISSION)
            return TP_FAIL_FRAME;
    }
    return code;
}

static void send_fail(tp_lua_t *lx, tp_conn_t *c, int version, uint32_t seq,
                      uint32_t code, const char *msg, int refs_idx)
{
    lua_State *L = lx->L;
    int top = lua_gettop(L);
    size_t mark = c->out.len;
    fail_call_t fc = { c, version, seq, map_code(version, code), msg,
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

void tp_lua_send_fail(tp_lua_t *lx, tp_conn_t *c, int version, uint32_t seq,
                      uint32_t code, const char *msg)
{
    send_fail(lx, c, version, seq, code, msg, 0);
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

static void push_conn(lua_State *L, tp_conn_t *c)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->lua_ref);
}

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
    push_hook(rc->lx, "dispatch");
    push_conn(L, rc->c);
    lua_pushvalue(L, req);
    lua_call(L, 2, 1);
    encode_replies(L, -1, rc->c, rc->h->seq);
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
    lua_pushcfunction(L, errhandler);
    int eh = lua_gettop(L);
    push_hook(lx, "request_failed");
    if (lua_isfunction(L, -1)) {
        push_conn(L, c);
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
        const char *msg = rec_string(L, rec, "message");
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
            rec_string(L, rec, "message") : lua_tostring(L, rec);
        const char *trace = lua_type(L, rec) == LUA_TTABLE ?
            rec_string(L, rec, "trace") : NULL;
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

void tp_lua_request(tp_lua_t *lx, tp_conn_t *c, const tp_header_t *h,
                    const uint8_t *body)
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
    lua_pushcfunction(L, errhandler);
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
    /* A deferred request (the handler paused the connection) is timed by
     * tp.dispatch when its reply goes out. */
    if (!c->paused || c->closing)
        tp_histogram_observe(&tp_stats.request_seconds,
                             (double)(uv_hrtime() - started) / 1e9);
    lua_settop(L, top);
}

/* ------------------------------------------------------------ tp.conn */

typedef struct conn_box {
    tp_conn_t *c;        /* NULL once the connection is gone */
} conn_box_t;

static tp_conn_t *check_conn(lua_State *L, int idx, bool must_be_open)
{
    conn_box_t *box = luaL_checkudata(L, idx, CONN_MT);
    if (!box->c && must_be_open)
        luaL_error(L, "connection is closed");
    return box->c;
}

/* conn:send(frames [, seq]) -> true | false, "closed": encodes one frame
 * or an array of frames (seq 0 unless given: a server push). */
static int l_conn_send(lua_State *L)
{
    conn_box_t *box = luaL_checkudata(L, 1, CONN_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Number seq = luaL_optnumber(L, 3, 0);
    tp_conn_t *c = box->c;
    if (!c || c->closing) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "closed");
        return 2;
    }
    size_t mark = c->out.len;
    /* Use a protected inner call so a bad frame leaves no partial bytes. */
    lua_pushcfunction(L, errhandler);
    int eh = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "tp.bridge.encode_replies");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushnumber(L, seq);
    int rc = lua_pcall(L, 3, 0, eh);
    if (rc != 0) {
        c->out.len = mark;
        c->out.max = 0;
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_getfield(L, -1, "message");
            lua_replace(L, -2);
        }
        return lua_error(L);
    }
    lua_pop(L, 1);
    tp_conn_flush(c);
    lua_pushboolean(L, 1);
    return 1;
}

/* Registered as "tp.bridge.encode_replies": (conn, frames, seq). */
static int l_encode_replies(lua_State *L)
{
    tp_conn_t *c = check_conn(L, 1, true);
    encode_replies(L, 2, c, (uint32_t)luaL_checknumber(L, 3));
    return 0;
}

static int l_conn_close(lua_State *L)
{
    tp_conn_t *c = check_conn(L, 1, false);
    const char *reason = luaL_optstring(L, 2, "closed by server");
    if (c)
        tp_conn_close(c, reason);
    return 0;
}

static int l_conn_set_padding(lua_State *L)
{
    tp_conn_t *c = check_conn(L, 1, true);
    c->pad = lua_toboolean(L, 2);
    return 0;
}

static int l_conn_pause(lua_State *L)
{
    tp_conn_t *c = check_conn(L, 1, true);
    c->paused = true;
    return 0;
}

/* conn:set_logged_in(): the login succeeded, so the deadline for logging
 * in (limits.login_ms) no longer applies. */
static int l_conn_set_logged_in(lua_State *L)
{
    tp_conn_t *c = check_conn(L, 1, false);
    if (c)
        tp_conn_set_logged_in(c);
    return 0;
}

/* Resumes on the next loop iteration, never from inside another call. */
static int l_conn_resume(lua_State *L)
{
    tp_conn_t *c = check_conn(L, 1, false);
    if (c)
        tp_conn_resume_soon(c);
    return 0;
}

static int l_conn_tostring(lua_State *L)
{
    conn_box_t *box = luaL_checkudata(L, 1, CONN_MT);
    if (box->c)
        lua_pushfstring(L, "tp.conn#%d (%s)", (int)box->c->id, box->c->peer);
    else
        lua_pushliteral(L, "tp.conn (closed)");
    return 1;
}

/* Read-only fields computed from the C side, then the attribute table. */
static int l_conn_index(lua_State *L)
{
    conn_box_t *box = luaL_checkudata(L, 1, CONN_MT);
    const char *key = lua_tostring(L, 2);
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1)); /* methods */
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    tp_conn_t *c = box->c;
    if (key && c) {
        if (strcmp(key, "id") == 0) {
            lua_pushnumber(L, (lua_Number)c->id);
            return 1;
        } else if (strcmp(key, "version") == 0) {
            lua_pushinteger(L, c->version);
            return 1;
        } else if (strcmp(key, "peer") == 0) {
            lua_pushstring(L, c->peer);
            return 1;
        } else if (strcmp(key, "kind") == 0) {
            lua_pushstring(L, c->lst ? c->lst->kind : "?");
            return 1;
        } else if (strcmp(key, "tls") == 0) {
            lua_pushboolean(L, c->tls != NULL);
            return 1;
        } else if (strcmp(key, "admin") == 0) {
            lua_pushboolean(L, c->set == TP_SET_ADMIN);
            return 1;
        } else if (strcmp(key, "tunnelled") == 0) {
            lua_pushboolean(L, c->tunnelled);
            return 1;
        } else if (strcmp(key, "padding") == 0) {
            lua_pushboolean(L, c->pad);
            return 1;
        } else if (strcmp(key, "pending_output") == 0) {
            lua_pushnumber(L, (lua_Number)(c->out.len + c->write_pending));
            return 1;
        }
    }
    if (key && strcmp(key, "closed") == 0) {
        lua_pushboolean(L, !c || c->closing);
        return 1;
    }
    return tp_lua_object_attr(L);
}

int tp_lua_object_attr(lua_State *L)
{
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

/* __newindex of every object class: it is only ever called with an object
 * of its own metatable, so the type needs no check. */
static int object_newindex(lua_State *L)
{
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

void tp_lua_object_class(lua_State *L, const char *name,
                         const luaL_Reg *methods, lua_CFunction index,
                         lua_CFunction gc, lua_CFunction tostring)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_register(L, NULL, methods);
        lua_pushcclosure(L, index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, object_newindex);
        lua_setfield(L, -2, "__newindex");
        if (gc) {
            lua_pushcfunction(L, gc);
            lua_setfield(L, -2, "__gc");
        }
        if (tostring) {
            lua_pushcfunction(L, tostring);
            lua_setfield(L, -2, "__tostring");
        }
    }
    lua_pop(L, 1);
}

void tp_lua_conn_open(tp_lua_t *lx, tp_conn_t *c)
{
    lua_State *L = lx->L;
    int top = lua_gettop(L);
    conn_box_t *box = lua_newuserdata(L, sizeof *box);
    box->c = c;
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setfenv(L, -2);
    c->lua_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    push_hook(lx, "on_open");
    if (lua_isfunction(L, -1)) {
        push_conn(L, c);
        pcall_logged(L, 1, 0, "on_open");
    }
    lua_settop(L, top);
}

void tp_lua_conn_closed(tp_lua_t *lx, tp_conn_t *c, const char *reason)
{
    lua_State *L = lx->L;
    if (c->lua_ref < 0)
        return;
    int top = lua_gettop(L);
    push_hook(lx, "on_close");
    if (lua_isfunction(L, -1)) {
        push_conn(L, c);
        lua_pushstring(L, reason ? reason : "");
        pcall_logged(L, 2, 0, "on_close");
    }
    lua_settop(L, top);
    push_conn(L, c);
    conn_box_t *box = lua_touserdata(L, -1);
    if (box)
        box->c = NULL;
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, c->lua_ref);
    c->lua_ref = -2;
}

/* ------------------------------------------------------------ timers */

typedef struct ltimer {
    uv_timer_t t;          /* the timer */
    tp_lua_t *lx;          /* bridge */
    int fn_ref;            /* callback */
    bool repeating;        /* repeat interval > 0 */
    bool closed;           /* uv_close called */
    uint64_t serial;       /* unique: a freed timer's address may be reused */
    struct ltimer *prev, *next; /* bridge's list of live timers */
} ltimer_t;

typedef struct timer_box {
    ltimer_t *t;           /* NULL once stopped; may point to a freed one */
    uint64_t serial;       /* t's serial */
} timer_box_t;

static ltimer_t *live_timers;
static uint64_t timer_serial;

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void timer_close(ltimer_t *t)
{
    if (t->closed)
        return;
    t->closed = true;
    if (t->prev)
        t->prev->next = t->next;
    else
        live_timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    luaL_unref(t->lx->L, LUA_REGISTRYINDEX, t->fn_ref);
    t->fn_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&t->t, timer_closed);
}

static void on_timer(uv_timer_t *h)
{
    ltimer_t *t = h->data;
    lua_State *L = t->lx->L;
    int top = lua_gettop(L);
    bool repeating = t->repeating;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
    if (!repeating)
        timer_close(t); /* before the call: the callback may start anew */
    pcall_logged(L, 0, 0, "timer callback");
    lua_settop(L, top);
}

/* core.timer(after_ms, repeat_ms, fn) -> timer; timer:stop(). */
static int l_core_timer(lua_State *L)
{
    tp_lua_t *lx = get_lx(L);
    lua_Number after = luaL_checknumber(L, 1);
    lua_Number rep = luaL_optnumber(L, 2, 0);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    if (after < 0 || rep < 0)
        return luaL_argerror(L, 1, "negative time");
    timer_box_t *box = lua_newuserdata(L, sizeof *box);
    box->t = NULL;
    luaL_getmetatable(L, TIMER_MT);
    lua_setmetatable(L, -2);
    ltimer_t *t = calloc(1, sizeof *t);
    if (!t)
        return luaL_error(L, "out of memory");
    uv_timer_init(lx->srv->loop, &t->t);
    t->t.data = t;
    t->lx = lx;
    t->repeating = rep > 0;
    t->serial = ++timer_serial;
    lua_pushvalue(L, 3);
    t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->next = live_timers;
    if (live_timers)
        live_timers->prev = t;
    live_timers = t;
    uv_timer_start(&t->t, on_timer, (uint64_t)after, (uint64_t)rep);
    box->t = t;
    box->serial = t->serial;
    return 1;
}

static int l_timer_stop(lua_State *L)
{
    timer_box_t *box = luaL_checkudata(L, 1, TIMER_MT);
    ltimer_t *t = box->t;
    /* A one-shot timer that fired is closed and freed: the box must not
     * touch it, so look for it in the live list, by address and serial
     * (another timer may have been given the freed one's address). */
    for (ltimer_t *p = live_timers; p; p = p->next) {
        if (p == t && p->serial == box->serial) {
            timer_close(t);
            break;
        }
    }
    box->t = NULL;
    return 0;
}

static void close_all_timers(void)
{
    while (live_timers)
        timer_close(live_timers);
}

/* ------------------------------------------------------------ tp.core */

/* core.listen(host, port [, kind [, set [, opts]]]) -> bound port.
 * kind: tp, tps, http, https (or another name for a plain listener);
 * opts.cert and opts.key are the PEM files of a TLS kind. Raises with a
 * message naming the address (or the file) when it cannot listen. */
static int l_core_listen(lua_State *L)
{
    tp_lua_t *lx = get_lx(L);
    const char *host = luaL_checkstring(L, 1);
    int port = luaL_checkint(L, 2);
    const char *kind = luaL_optstring(L, 3, "tp");
    static const char *const sets[] = { "player", "admin", NULL };
    int set = luaL_checkoption(L, 4, "player", sets);
    if (port < 0 || port > 65535)
        return luaL_argerror(L, 2, "port out of range");
    const char *cert = NULL, *key = NULL;
    if (lua_type(L, 5) == LUA_TTABLE) {
        lua_getfield(L, 5, "cert");
        cert = lua_tostring(L, -1);
        lua_getfield(L, 5, "key");
        key = lua_tostring(L, -1);  /* both stay on the stack */
    }
    char err[1024];
    int rc = tp_server_listen_tls(lx->srv, host, port, kind, set, cert, key,
                                  err, sizeof err);
    if (rc != 0)
        return luaL_error(L, "%s", err);
    lua_pushinteger(L, lx->srv->listeners->port);
    return 1;
}

static int check_level(lua_State *L, int idx)
{
    int lvl = tp_log_level_parse(luaL_checkstring(L, idx));
    if (lvl < 0)
        return luaL_argerror(L, idx,
                             "level must be error, warning, info, debug "
                             "or trace");
    return lvl;
}

/* core.log(level, module, message) */
static int l_core_log(lua_State *L)
{
    int lvl = check_level(L, 1);
    const char *mod = luaL_checkstring(L, 2);
    const char *msg = luaL_checkstring(L, 3);
    tp_log((tp_log_level_t)lvl, mod, "%s", msg);
    return 0;
}

static int l_core_log_enabled(lua_State *L)
{
    int lvl = check_level(L, 1);
    lua_pushboolean(L, tp_log_enabled((tp_log_level_t)lvl,
                                      luaL_optstring(L, 2, NULL)));
    return 1;
}

/* core.set_log_level(level [, module]) */
static int l_core_set_log_level(lua_State *L)
{
    int lvl = check_level(L, 1);
    if (lua_isnoneornil(L, 2))
        tp_log_set_level((tp_log_level_t)lvl);
    else if (!tp_log_set_module_level(luaL_checkstring(L, 2), lvl))
        return luaL_error(L, "too many per-module log levels");
    return 0;
}

static int l_core_now(lua_State *L)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lua_pushnumber(L, (lua_Number)tv.tv_sec + tv.tv_usec / 1e6);
    return 1;
}

static int l_core_hrtime(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e6);
    return 1;
}

void tp_lua_request_stop(tp_lua_t *lx)
{
    tp_server_stop(lx->srv);
    close_all_timers();
}

static int l_core_stop(lua_State *L)
{
    tp_lua_request_stop(get_lx(L));
    return 0;
}

/* core.set_limits{ max_frame=, output_max=, stall_ms=, max_connections=,
 *                  handshake_ms=, login_ms=, request_rate=,
 *                  request_burst= }: absent keys keep their value. */
static int l_core_set_limits(lua_State *L)
{
    tp_lua_t *lx = get_lx(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    tp_limits_t lim = lx->srv->limits;
    lua_getfield(L, 1, "max_frame");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (v < 1024 || v > 64.0 * 1024 * 1024)
            return luaL_error(L, "max_frame must be 1 KiB to 64 MiB");
        lim.max_frame = (uint32_t)v;
    }
    lua_getfield(L, 1, "output_max");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (v < 2 * lim.max_frame)
            return luaL_error(L, "output_max must be at least twice "
                              "max_frame");
        lim.output_max = (size_t)v;
        lim.output_high = lim.output_max / 4;
    }
    lua_getfield(L, 1, "stall_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (v < 100)
            return luaL_error(L, "stall time must be at least 100 ms");
        lim.stall_ms = (uint64_t)v;
    }
    lua_getfield(L, 1, "max_connections");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (v < 1 || v > 1000000)
            return luaL_error(L, "max_connections must be 1 to 1000000");
        lim.max_conns = (uint32_t)v;
    }
    lua_getfield(L, 1, "handshake_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (v < 100)
            return luaL_error(L, "the TLS handshake timeout must be at "
                              "least 100 ms");
        lim.handshake_ms = (uint64_t)v;
    }
    lua_getfield(L, 1, "login_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (v < 0)
            return luaL_error(L, "the login timeout must not be negative");
        lim.login_ms = (uint64_t)v;
    }
    lua_getfield(L, 1, "request_rate");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0))
            return luaL_error(L, "request_rate must not be negative");
        lim.rate = v;
    }
    lua_getfield(L, 1, "request_burst");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 1))
            return luaL_error(L, "request_burst must be at least 1");
        lim.burst = v;
    }
    lua_getfield(L, 1, "request_s");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0 && v <= 86400))
            return luaL_error(L, "the request time limit must be 0 to "
                              "86400 s");
        lim.request_s = v;
    }
    tp_server_set_limits(lx->srv, &lim);
    return 0;
}

/* core.tls_reload() -> true | nil, err: loads every TLS listener's
 * certificate and key again (SIGHUP); a listener whose files fail keeps
 * the old ones. */
static int l_core_tls_reload(lua_State *L)
{
    tp_lua_t *lx = get_lx(L);
    char err[2048];
    if (tp_server_tls_reload(lx->srv, err, sizeof err) > 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.mkdir(path [, mode]) -> true | nil, err; an existing folder is
 * fine. */
static int l_core_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int mode = luaL_optint(L, 2, 0750);
    uv_fs_t req;
    int rc = uv_fs_mkdir(NULL, &req, path, mode, NULL);
    uv_fs_req_cleanup(&req);
    if (rc < 0 && rc != UV_EEXIST) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create %s: %s", path, uv_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

lua_State *tp_lua_main(lua_State *L)
{
    return get_lx(L)->L;
}

uv_loop_t *tp_lua_loop(lua_State *L)
{
    return get_lx(L)->srv->loop;
}

/* Calls the function at the top of the stack (with nargs arguments below
 * it... pushed after it) under the traceback handler; logs failures. */
int tp_lua_pcall_logged(lua_State *L, int nargs, const char *what)
{
    return pcall_logged(L, nargs, 0, what);
}

/* core.set_hooks(t): replaces the hooks table (dispatch, on_open, on_close,
 * on_stop), for scripts run with "tpserver script" that serve clients. */
static int l_core_set_hooks(lua_State *L)
{
    tp_lua_t *lx = get_lx(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (lx->hooks_ref != LUA_NOREF && lx->hooks_ref != LUA_REFNIL)
        luaL_unref(L, LUA_REGISTRYINDEX, lx->hooks_ref);
    lx->hooks_ref = ref;
    return 0;
}

static int l_core_stats(lua_State *L)
{
    tp_lua_t *lx = get_lx(L);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, lx->srv->num_conns);
    lua_setfield(L, -2, "connections");
    lua_pushnumber(L, lx->srv->num_refusing);
    lua_setfield(L, -2, "refusing");
    lua_newtable(L);
    int i = 1;
    for (tp_listener_t *l = lx->srv->listeners; l; l = l->next) {
        lua_createtable(L, 0, 9);
        lua_pushboolean(L, l->tls);
        lua_setfield(L, -2, "tls");
        lua_pushnumber(L, (lua_Number)l->stats.tls_done);
        lua_setfield(L, -2, "tls_done");
        lua_pushnumber(L, (lua_Number)l->stats.tls_failed);
        lua_setfield(L, -2, "tls_failed");
        lua_pushstring(L, l->kind);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, l->host);
        lua_setfield(L, -2, "host");
        lua_pushinteger(L, l->port);
        lua_setfield(L, -2, "port");
        lua_pushnumber(L, (lua_Number)l->stats.accepted);
        lua_setfield(L, -2, "accepted");
        lua_pushnumber(L, (lua_Number)l->stats.refused);
        lua_setfield(L, -2, "refused");
        lua_pushnumber(L, l->stats.open);
        lua_setfield(L, -2, "open");
        lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "listeners");
    lua_pushnumber(L, lua_gc(L, LUA_GCCOUNT, 0) * 1024.0 +
                   lua_gc(L, LUA_GCCOUNTB, 0));
    lua_setfield(L, -2, "lua_memory");
    return 1;
}

/* core.connections() -> array of connection objects */
static int l_core_connections(lua_State *L)
{
    tp_lua_t *lx = get_lx(L);
    lua_newtable(L);
    int i = 1;
    for (tp_conn_t *c = lx->srv->conns; c; c = c->next) {
        if (c->lua_ref < 0 || c->closing)
            continue;
        push_conn(L, c);
        lua_rawseti(L, -2, i++);
    }
    return 1;
}

int luaopen_tp_core(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "listen", l_core_listen },
        { "log", l_core_log },
        { "log_enabled", l_core_log_enabled },
        { "set_log_level", l_core_set_log_level },
        { "now", l_core_now },
        { "hrtime", l_core_hrtime },
        { "timer", l_core_timer },
        { "stop", l_core_stop },
        { "set_limits", l_core_set_limits },
        { "time_limit", tp_budget_l_time_limit },
        { "stats", l_core_stats },
        { "connections", l_core_connections },
        { "mkdir", l_core_mkdir },
        { "set_hooks", l_core_set_hooks },
        { "tls_reload", l_core_tls_reload },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_pushliteral(L, TP_VERSION_STRING);
    lua_setfield(L, -2, "version");
    return 1;
}

/* ------------------------------------------------------------ set-up */

static void preload(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
    lua_pop(L, 2);
}

int tp_lua_init(tp_lua_t *lx, tp_server_t *srv)
{
    memset(lx, 0, sizeof *lx);
    lx->srv = srv;
    lx->hooks_ref = LUA_NOREF;
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
    /* The trace compiler starts off; boot turns it on when the
     * configuration says jit = true. With it on, Debian 12's LuaJIT (a
     * 2.1 snapshot of 2022) was seen to free a live table about once in
     * a few hundred starts (a crash, or a corrupt game state, while the
     * universe is made); with it off, never. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_pushlightuserdata(L, lx);
    lua_setfield(L, LUA_REGISTRYINDEX, LX_KEY);

    /* tp.conn metatable: methods are an upvalue of __index. */
    static const luaL_Reg conn_methods[] = {
        { "send", l_conn_send },
        { "close", l_conn_close },
        { "set_padding", l_conn_set_padding },
        { "pause", l_conn_pause },
        { "resume", l_conn_resume },
        { "set_logged_in", l_conn_set_logged_in },
        { NULL, NULL }
    };
    tp_lua_object_class(L, CONN_MT, conn_methods, l_conn_index, NULL,
                        l_conn_tostring);

    luaL_newmetatable(L, TIMER_MT);
    lua_newtable(L);
    lua_pushcfunction(L, l_timer_stop);
    lua_setfield(L, -2, "stop");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_encode_replies);
    lua_setfield(L, LUA_REGISTRYINDEX, "tp.bridge.encode_replies");

    preload(L, "tp.core", luaopen_tp_core);
    preload(L, "tp.codec", luaopen_tp_codec);
    preload(L, "tp.store", luaopen_tp_store);
    preload(L, "tp.crypto", luaopen_tp_crypto);
    preload(L, "tp.tls", luaopen_tp_tls);
    preload(L, "tp.console", luaopen_tp_console);
    preload(L, "cjson", luaopen_cjson);
    /* The codec registry must exist before the network needs it. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tp.codec");
    lua_call(L, 1, 0);
    return 0;
}

int tp_lua_boot(tp_lua_t *lx, const char *path)
{
    lua_State *L = lx->L;
    int args = lua_gettop(L);
    lua_pushcfunction(L, errhandler);
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
            msg = rec_string(L, lua_gettop(L), "message");
            const char *trace = rec_string(L, lua_gettop(L), "trace");
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

void tp_lua_hup(tp_lua_t *lx)
{
    lua_State *L = lx->L;
    int top = lua_gettop(L);
    push_hook(lx, "on_hup");
    if (lua_isfunction(L, -1))
        pcall_logged(L, 0, 0, "on_hup");
    lua_settop(L, top);
}

void tp_lua_stop(tp_lua_t *lx)
{
    lua_State *L = lx->L;
    int top = lua_gettop(L);
    close_all_timers();
    push_hook(lx, "on_stop");
    if (lua_isfunction(L, -1))
        pcall_logged(L, 0, 0, "on_stop");
    lua_settop(L, top);
    close_all_timers();
}

void tp_lua_close(tp_lua_t *lx)
{
    if (lx->L)
        lua_close(lx->L);
    lx->L = NULL;
}
