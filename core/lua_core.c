/*
 * lua_core.c: the tp.core module: listeners, limits, hooks, logging,
 * clocks, timers, statistics and the clean stop, for boot.lua and the
 * scripts run with "tpserver script".
 *
 * Timers: each core.timer() is a libuv timer on the loop with its Lua
 * callback anchored in the registry, on one list of live timers. A timer
 * is closed when a one-shot one fires, when timer:stop() is called, or at
 * a stop (tp_lua_close_timers); its memory goes in libuv's close callback.
 * The Lua object (a timer_box) never owns the timer: it finds it on the
 * live list by address and serial, or not at all.
 */
#include "bridge.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/time.h>

#include "budget.h"
#include "log.h"
#include "version.h"

#define TIMER_MT "tp.timer"

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

/* libuv is done with the handle: now its memory may go. */
static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Takes t off the live list and drops its callback; idempotent. */
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

/* Runs the callback; an error in it is logged (a repeating timer goes
 * on). */
static void on_timer(uv_timer_t *h)
{
    ltimer_t *t = h->data;
    lua_State *L = t->lx->L;
    int top = lua_gettop(L);
    bool repeating = t->repeating;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
    if (!repeating)
        timer_close(t); /* before the call: the callback may start anew */
    tp_lua_pcall_logged(L, 0, "timer callback");
    lua_settop(L, top);
}

/* core.timer(after_ms, repeat_ms, fn) -> timer; timer:stop(). */
static int l_core_timer(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
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

/* timer:stop(): harmless on a timer that fired or was stopped. */
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

/* Every live timer, for a stop: its callback never runs again. */
void tp_lua_close_timers(void)
{
    while (live_timers)
        timer_close(live_timers);
}

/* The tp.timer metatable, made before any script can ask for a timer. */
void tp_lua_open_timers(lua_State *L)
{
    luaL_newmetatable(L, TIMER_MT);
    lua_newtable(L);
    lua_pushcfunction(L, l_timer_stop);
    lua_setfield(L, -2, "stop");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* ------------------------------------------------------------ tp.core */

/* core.listen(host, port [, kind [, set [, opts]]]) -> bound port.
 * kind: tp, tps, http, https (or another name for a plain listener);
 * opts.cert and opts.key are the PEM files of a TLS kind. Raises with a
 * message naming the address (or the file) when it cannot listen. */
static int l_core_listen(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
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

/* The log level named by the string at idx; raises on another name. */
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

/* core.log_enabled(level [, module]) -> whether such a line is kept. */
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

/* core.now() -> wall-clock time in seconds (with microseconds). */
static int l_core_now(lua_State *L)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lua_pushnumber(L, (lua_Number)tv.tv_sec + tv.tv_usec / 1e6);
    return 1;
}

/* core.hrtime() -> a monotonic clock in milliseconds, for durations. */
static int l_core_hrtime(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e6);
    return 1;
}

/* Timers go too: a timer left running would keep uv_run going. */
void tp_lua_request_stop(tp_lua_t *lx)
{
    tp_server_stop(lx->srv);
    tp_lua_close_timers();
}

/* core.stop(): the clean stop (tp_lua_request_stop). */
static int l_core_stop(lua_State *L)
{
    tp_lua_request_stop(tp_lua_get(L));
    return 0;
}

/* core.set_limits{ max_frame=, output_max=, stall_ms=, max_connections=,
 *                  handshake_ms=, login_ms=, request_rate=,
 *                  request_burst=, request_s= }: absent keys keep their
 * value. The range checks are sanity checks (validated by tp.config):
 * they stay as a guard for scripts that call core.set_limits directly,
 * and raise. */
static int l_core_set_limits(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
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
    lua_getfield(L, 1, "output_total");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0 && v <= 1e15))
            return luaL_error(L, "max_output_total must not be negative");
        lim.output_total = (size_t)v;
    }
    lua_getfield(L, 1, "idle_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0))
            return luaL_error(L, "the idle timeout must not be negative");
        lim.idle_ms = (uint64_t)v;
    }
    lua_getfield(L, 1, "frame_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0))
            return luaL_error(L, "the frame timeout must not be negative");
        lim.frame_ms = (uint64_t)v;
    }
    lua_getfield(L, 1, "per_address");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0 && v <= 1000000))
            return luaL_error(L, "max_connections_per_address must be 0 "
                              "to 1000000");
        lim.per_addr = (uint32_t)v;
    }
    lua_getfield(L, 1, "http_header_max");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 1024 && v <= 1048576))
            return luaL_error(L, "http_max_header must be 1024 to 1048576");
        lim.http_header_max = (size_t)v;
    }
    lua_getfield(L, 1, "http_body_max");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0 && v <= 1073741824))
            return luaL_error(L, "http_max_body must be 0 to 1 GiB");
        lim.http_body_max = (size_t)v;
    }
    lua_getfield(L, 1, "http_request_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0))
            return luaL_error(L, "http_request_timeout must not be "
                              "negative");
        lim.http_request_ms = (uint64_t)v;
    }
    lua_getfield(L, 1, "http_keepalive_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number v = luaL_checknumber(L, -1);
        if (!(v >= 0))
            return luaL_error(L, "http_keepalive_timeout must not be "
                              "negative");
        lim.http_keepalive_ms = (uint64_t)v;
    }
    tp_server_set_limits(lx->srv, &lim);
    return 0;
}

/* core.tls_reload() -> true | nil, err: loads every TLS listener's
 * certificate and key again (SIGHUP); a listener whose files fail keeps
 * the old ones. */
static int l_core_tls_reload(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
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

/* core.mode(path) -> permission bits (e.g. 0700 as 448) | nil, err */
static int l_core_mode(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uv_fs_t req;
    int rc = uv_fs_stat(NULL, &req, path, NULL);
    if (rc < 0) {
        uv_fs_req_cleanup(&req);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot stat %s: %s", path, uv_strerror(rc));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)(req.statbuf.st_mode & 07777));
    uv_fs_req_cleanup(&req);
    return 1;
}

/* core.set_hooks(t): replaces the hooks table (dispatch, on_open, on_close,
 * on_stop), for scripts run with "tpserver script" that serve clients. */
static int l_core_set_hooks(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (lx->hooks_ref != LUA_NOREF && lx->hooks_ref != LUA_REFNIL)
        luaL_unref(L, LUA_REGISTRYINDEX, lx->hooks_ref);
    lx->hooks_ref = ref;
    return 0;
}

/* core.stats() -> { connections, refusing, listeners = { ... },
 *                  lua_memory, conn_objects, conn_bytes } */
static int l_core_stats(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
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
    size_t conn_objects, conn_bytes;
    tp_conn_memory(&conn_objects, &conn_bytes);
    lua_pushnumber(L, (lua_Number)conn_objects);
    lua_setfield(L, -2, "conn_objects");
    lua_pushnumber(L, (lua_Number)conn_bytes);
    lua_setfield(L, -2, "conn_bytes");
    return 1;
}

/* core.connections() -> array of connection objects */
static int l_core_connections(lua_State *L)
{
    tp_lua_t *lx = tp_lua_get(L);
    lua_newtable(L);
    int i = 1;
    for (tp_conn_t *c = lx->srv->conns; c; c = c->next) {
        if (c->lua_ref < 0 || c->closing)
            continue;
        tp_lua_push_conn(L, c);
        lua_rawseti(L, -2, i++);
    }
    return 1;
}

/* require "tp.core": a table of the functions above and the version. */
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
        { "mode", l_core_mode },
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

