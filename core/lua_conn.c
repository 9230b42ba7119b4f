/*
 * lua_conn.c: connections as Lua objects (class "tp.conn"): their methods
 * and fields, the encoding of reply frames into a connection's output, and
 * attaching and detaching a connection's object as it opens and closes.
 *
 * Invariants: a connection's object is a full userdata (a conn_box) held
 * by a registry reference (c->lua_ref) while the connection is open; when
 * it closes, the box is cleared, so the object outlives the connection
 * safely: send answers false, "closed"; close, resume, produce and
 * set_logged_in do nothing; the other methods raise "connection is
 * closed". A frame is encoded under the connection's frame cap
 * (c->out.max) and raises when it does not fit or does not encode (a
 * frame table with a string _body is sent as that body, encoded before
 * for this connection's version and padding);
 * rolling the output back to a savepoint is the caller's business.
 */
#include "bridge.h"

#include <stdbool.h>
#include <string.h>

#include "log.h"
#include "stats.h"

#define CONN_MT "tp.conn"

/* ------------------------------------------------------------ encoding */

/* The frame's version is c's (4 until the first frame settled it); its
 * bytes are counted as sent here, even if a rollback drops them later. */
void tp_lua_encode_frame(lua_State *L, int idx, tp_conn_t *c, uint32_t seq)
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
            if (code >= 0 && code <= 4294967295.0)
                code = tp_frame_fail_code(3, (uint32_t)code);
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
    /* A frame encoded before (tp.views' cache of Object frames) carries
     * its body as bytes: they go out as they are. */
    lua_getfield(L, idx, "_body");
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *b = lua_tolstring(L, -1, &n);
        if (!tp_buf_append(&c->out, b, n))
            luaL_error(L, "tp.codec: too big");
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        tp_codec_encode(L, idx, def->layout, &c->out, c->pad);
    }
    c->out.max = 0;
    size_t body = c->out.len - start - TP_HEADER_SIZE;
    tp_frame_write_header(c->out.data + start, version, seq, def->type,
                          (uint32_t)body);
    c->frames_out++;
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

/* Tells one frame from an array of frames by its _type field. */
void tp_lua_encode_replies(lua_State *L, int idx, tp_conn_t *c,
                           uint32_t seq)
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
        tp_lua_encode_frame(L, idx, c, seq);
        return;
    }
    size_t n = lua_objlen(L, idx);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        tp_lua_encode_frame(L, -1, c, seq);
        lua_pop(L, 1);
    }
}

/* ------------------------------------------------------------ tp.conn */

typedef struct conn_box {
    tp_conn_t *c;        /* NULL once the connection is gone */
} conn_box_t;

/* The connection of the object at idx: NULL when it has closed, or a
 * raise then if must_be_open. Raises on anything but a tp.conn. */
tp_conn_t *tp_lua_check_conn(lua_State *L, int idx, bool must_be_open)
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
    lua_pushcfunction(L, tp_lua_errhandler);
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
    tp_conn_t *c = tp_lua_check_conn(L, 1, true);
    tp_lua_encode_replies(L, 2, c, (uint32_t)luaL_checknumber(L, 3));
    return 0;
}

/* conn:close([reason]): flushes what is buffered, then closes. */
static int l_conn_close(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, false);
    const char *reason = luaL_optstring(L, 2, "closed by server");
    if (c)
        tp_conn_close(c, reason);
    return 0;
}

/* conn:set_padding(on): the string padding filter of the codec. */
static int l_conn_set_padding(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, true);
    c->pad = lua_toboolean(L, 2);
    return 0;
}

/* conn:pause(): holds frame processing until conn:resume() (a deferred
 * request answers later). */
static int l_conn_pause(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, true);
    c->paused = true;
    return 0;
}

/* Drops c's producer (conn:produce): the reply is complete, or gone. */
static void drop_producer(lua_State *L, tp_conn_t *c)
{
    if (c->more_ref >= 0)
        luaL_unref(L, LUA_REGISTRYINDEX, c->more_ref);
    c->more_ref = -2;
    c->more = false;
}

/* conn:produce(fn | nil): fn() makes the next part of the reply being
 * sent (conn:send with the request's sequence number), called once per
 * loop iteration while the connection's output is under its high mark,
 * the other connections served in between, until conn:produce(nil) says
 * the reply is complete; until then the connection's later requests wait.
 * Replaces an earlier fn; does nothing on a closed connection (the
 * producer is dropped when the connection closes). fn must not raise
 * (an error out of it closes the connection: see bridge.c). */
static int l_conn_produce(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, false);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!c)
        return 0;
    drop_producer(L, c);
    if (lua_isfunction(L, 2) && !c->closing) {
        lua_pushvalue(L, 2);
        c->more_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        c->more = true;
    }
    return 0;
}

/* conn:set_logged_in(): the login succeeded, so the deadline for logging
 * in (limits.login_ms) no longer applies. */
static int l_conn_set_logged_in(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, false);
    if (c)
        tp_conn_set_logged_in(c);
    return 0;
}

/* Resumes on the next loop iteration, never from inside another call. */
static int l_conn_resume(lua_State *L)
{
    tp_conn_t *c = tp_lua_check_conn(L, 1, false);
    if (c)
        tp_conn_resume_soon(c);
    return 0;
}

/* __tostring: "tp.conn#<id> (<peer>)". */
static int l_conn_tostring(lua_State *L)
{
    conn_box_t *box = luaL_checkudata(L, 1, CONN_MT);
    if (box->c)
        lua_pushfstring(L, "tp.conn#%d (%s)", (int)box->c->id, box->c->peer);
    else
        lua_pushliteral(L, "tp.conn (closed)");
    return 1;
}

/* The computed fields, by the index their name has in the key table (the
 * second upvalue of __index): one table lookup, not a string compare per
 * field, on every access from Lua. */
enum conn_key {
    K_NONE,
    K_ID,
    K_VERSION,
    K_PEER,
    K_KIND,
    K_TLS,
    K_ADMIN,
    K_TUNNELLED,
    K_PADDING,
    K_PENDING_OUTPUT,
    K_OUTPUT_HIGH,
    K_MAX_FRAME,
    K_TIME_LIMIT,
    K_FRAMES_OUT,
    K_IDLE,
    K_AGE,
    K_LISTENER,
    K_CLOSED,
    K_COUNT
};

static const char *const conn_keys[K_COUNT] = {
    NULL, "id", "version", "peer", "kind", "tls", "admin", "tunnelled",
    "padding", "pending_output", "output_high", "max_frame", "time_limit",
    "frames_out", "idle", "age", "listener", "closed"
};

/* Read-only fields computed from the C side, then the attribute table. */
static int l_conn_index(lua_State *L)
{
    conn_box_t *box = luaL_checkudata(L, 1, CONN_MT);
    if (tp_lua_object_method(L))
        return 1;
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(2));
    int k = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    tp_conn_t *c = box->c;
    if (k == K_CLOSED) {
        lua_pushboolean(L, !c || c->closing);
        return 1;
    }
    if (!c || k == K_NONE)
        return tp_lua_object_attr(L);
    switch (k) {
    case K_ID: {
        lua_pushnumber(L, (lua_Number)c->id);
        return 1;
    }
    case K_VERSION: {
        lua_pushinteger(L, c->version);
        return 1;
    }
    case K_PEER: {
        lua_pushstring(L, c->peer);
        return 1;
    }
    case K_KIND: {
        lua_pushstring(L, c->lst ? c->lst->kind : "?");
        return 1;
    }
    case K_TLS: {
        lua_pushboolean(L, c->tr->encrypted);
        return 1;
    }
    case K_ADMIN: {
        lua_pushboolean(L, c->set == TP_SET_ADMIN);
        return 1;
    }
    case K_TUNNELLED: {
        lua_pushboolean(L, c->tunnelled);
        return 1;
    }
    case K_PADDING: {
        lua_pushboolean(L, c->pad);
        return 1;
    }
    case K_PENDING_OUTPUT: {
        lua_pushnumber(L, (lua_Number)(c->out.len + c->write_pending));
        return 1;
    }
    case K_OUTPUT_HIGH: {
        /* Past it the connection is not read, nor its reply made. */
        lua_pushnumber(L, (lua_Number)c->lim->output_high);
        return 1;
    }
    case K_MAX_FRAME: {
        lua_pushnumber(L, (lua_Number)c->lim->max_frame);
        return 1;
    }
    case K_TIME_LIMIT: {
        /* Seconds a request may take (0: none), as bridge.c applies
         * it: admin connections are not limited. */
        lua_pushnumber(L, c->set == TP_SET_PLAYER ? c->lim->request_s
                                                  : 0);
        return 1;
    }
    case K_FRAMES_OUT: {
        lua_pushnumber(L, (lua_Number)c->frames_out);
        return 1;
    }
    case K_IDLE: {
        /* Seconds since the peer last sent anything. */
        uint64_t now = uv_now(c->timer.loop);
        uint64_t last = c->last_input_ms > c->accepted_ms
                        ? c->last_input_ms : c->accepted_ms;
        lua_pushnumber(L, now > last ? (lua_Number)(now - last) / 1000
                                     : 0);
        return 1;
    }
    case K_AGE: {
        uint64_t now = uv_now(c->timer.loop);
        lua_pushnumber(L, now > c->accepted_ms
                       ? (lua_Number)(now - c->accepted_ms) / 1000 : 0);
        return 1;
    }
    case K_LISTENER: {
        /* "host:port" of the listener it came in on. */
        if (!c->lst)
            lua_pushliteral(L, "?");
        else
            lua_pushfstring(L, "%s:%d", c->lst->host, c->lst->port);
        return 1;
    }
    default:
        break;
    }
    return tp_lua_object_attr(L);
}

/* tp.conn metatable: methods are an upvalue of __index. Also registers
 * the encoder conn:send calls under protection. */
void tp_lua_open_conn(lua_State *L)
{
    static const luaL_Reg conn_methods[] = {
        { "send", l_conn_send },
        { "close", l_conn_close },
        { "set_padding", l_conn_set_padding },
        { "pause", l_conn_pause },
        { "resume", l_conn_resume },
        { "produce", l_conn_produce },
        { "set_logged_in", l_conn_set_logged_in },
        { "http_respond", tp_lua_conn_http_respond },
        { "http_write", tp_lua_conn_http_write },
        { NULL, NULL }
    };
    tp_lua_object_class(L, CONN_MT, conn_methods, l_conn_index, NULL,
                        l_conn_tostring);
    /* __index again, with the key table as its second upvalue. */
    luaL_getmetatable(L, CONN_MT);
    lua_getfield(L, -1, "__index");
    lua_getupvalue(L, -1, 1);             /* the methods table */
    lua_createtable(L, 0, K_COUNT);
    for (int i = 1; i < K_COUNT; i++) {
        lua_pushinteger(L, i);
        lua_setfield(L, -2, conn_keys[i]);
    }
    lua_pushcclosure(L, l_conn_index, 2);
    lua_setfield(L, -3, "__index");
    lua_pop(L, 2);
    lua_pushcfunction(L, l_encode_replies);
    lua_setfield(L, LUA_REGISTRYINDEX, "tp.bridge.encode_replies");
}

/* ------------------------------------------------------------ lifecycle */

/* Pushes c's object (nil once it has been detached). */
void tp_lua_push_conn(lua_State *L, tp_conn_t *c)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->lua_ref);
}

/* The object is anchored by c->lua_ref until tp_lua_conn_closed. */
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
    tp_lua_push_hook(lx, "on_open");
    if (lua_isfunction(L, -1)) {
        tp_lua_push_conn(L, c);
        tp_lua_pcall_logged(L, 1, "on_open");
    }
    lua_settop(L, top);
}

/* The box forgets c, so a script holding the object sees a closed
 * connection instead of freed memory. */
void tp_lua_conn_closed(tp_lua_t *lx, tp_conn_t *c, const char *reason)
{
    lua_State *L = lx->L;
    if (c->lua_ref < 0)
        return;
    int top = lua_gettop(L);
    tp_lua_push_hook(lx, "on_close");
    if (lua_isfunction(L, -1)) {
        tp_lua_push_conn(L, c);
        lua_pushstring(L, reason ? reason : "");
        tp_lua_pcall_logged(L, 2, "on_close");
    }
    lua_settop(L, top);
    drop_producer(L, c);
    tp_lua_push_conn(L, c);
    conn_box_t *box = lua_touserdata(L, -1);
    if (box)
        box->c = NULL;
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, c->lua_ref);
    c->lua_ref = -2;
}

