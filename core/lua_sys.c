/*
 * lua_sys.c: the tp.sys module, thin bindings for running as a service:
 * the logger's sinks, lock files, signals to another instance, systemd
 * notification, the core's counters, and a few file-system helpers. The
 * logic that uses them is in lua/tp/service.lua and lua/tp/stats.lua.
 *
 * Misuse (a wrong argument type) raises; expected failures return
 * nil, message (and more values where documented).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "lua_util.h"
#include "daemon.h"
#include "log.h"
#include "stats.h"

int luaopen_tp_sys(lua_State *L);

static int push_fail(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* Reads an optional string field of the table at idx (NULL if absent). */
static const char *opt_field_string(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "field '%s' must be a string", key);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);   /* the string stays alive in the table */
    return s;
}

static bool opt_field_bool(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    bool b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

/* sys.log_configure{ stderr=, file=, syslog=, facility=, ident=, socket= }
 * -> true | nil, err. Raises on a bad facility name. */
static int l_log_configure(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    tp_log_sinks_t s = {
        .to_stderr = opt_field_bool(L, 1, "stderr"),
        .file = opt_field_string(L, 1, "file"),
        .to_syslog = opt_field_bool(L, 1, "syslog"),
        .syslog_ident = opt_field_string(L, 1, "ident"),
        .syslog_socket = opt_field_string(L, 1, "socket"),
    };
    const char *facility = opt_field_string(L, 1, "facility");
    s.syslog_facility = tp_log_facility_parse(facility ? facility
                                                       : "daemon");
    if (s.syslog_facility < 0)
        return luaL_error(L, "unknown syslog facility '%s'", facility);
    char err[512];
    if (tp_log_configure(&s, err, sizeof err) != 0)
        return push_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* sys.log_reopen() -> true | nil, err */
static int l_log_reopen(lua_State *L)
{
    char err[512];
    if (tp_log_reopen(err, sizeof err) != 0)
        return push_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_log_clear_modules(lua_State *L)
{
    tp_log_clear_module_levels();
    return 0;
}

/* sys.cwd() -> path | nil, err */
static int l_cwd(lua_State *L)
{
    char buf[4096];
    size_t len = sizeof buf;
    int rc = uv_cwd(buf, &len);
    if (rc != 0)
        return push_fail(L, uv_strerror(rc));
    lua_pushlstring(L, buf, len);
    return 1;
}

/* sys.lock(path, remove_at_exit) -> true | nil, err, holder_pid */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bool remove = lua_toboolean(L, 2);
    char err[512];
    pid_t holder = 0;
    int rc = tp_daemon_lock(path, remove, &holder, err, sizeof err);
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, err);
    /* The holder only when another process has the lock: service.lua
     * names it in the message for the terminal. */
    if (rc == -EAGAIN) {
        lua_pushinteger(L, holder);
        return 3;
    }
    return 2;
}

/* sys.probe(path) -> "running"|"stale"|"absent", pid | nil, err */
static int l_probe(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    pid_t pid = 0;
    int state = tp_daemon_probe(path, &pid);
    if (state < 0)
        return push_fail(L, strerror(-state));
    /* Indexed by tp_daemon_state_t: absent 0, stale 1, running 2. */
    static const char *const names[] = { "absent", "stale", "running" };
    lua_pushstring(L, names[state]);
    lua_pushinteger(L, pid);
    return 2;
}

/* sys.kill(pid, "TERM"|"INT"|"HUP"|"USR1"|0) -> true | nil, err */
static int l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    static const char *const names[] = { "TERM", "INT", "HUP", "USR1",
                                         "ZERO", NULL };
    /* Signal 0 sends nothing: it asks whether the process is there. */
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, 0 };
    int which = luaL_checkoption(L, 2, NULL, names);
    /* kill() with 0 or less signals a process group or every process we
     * may reach: never from here. */
    if (pid <= 0)
        return luaL_argerror(L, 1, "pid must be positive");
    if (kill((pid_t)pid, sigs[which]) != 0)
        return push_fail(L, strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_sleep(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    /* Blocks the thread: for the waits of --stop and --stats, which serve
     * nothing. */
    if (ms > 0)
        uv_sleep((unsigned int)ms);
    return 0;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

/* sys.notify(state) -> true | nil, err (systemd sd_notify protocol) */
static int l_notify(lua_State *L)
{
    int rc = tp_daemon_notify(luaL_checkstring(L, 1));
    if (rc != 0)
        return push_fail(L, strerror(-rc));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_set_exit_status(lua_State *L)
{
    tp_daemon_set_exit_status(luaL_checkint(L, 1));
    return 0;
}

/* sys.dir_size(path) -> bytes in the regular files directly in path |
 * nil, err */
static int l_dir_size(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d)
        return push_fail(L, strerror(errno));
    double total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        /* A link is not counted, and a failure is skipped: LevelDB's
         * compaction may delete a file between readdir and fstatat. */
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
            total += (double)st.st_size;
    }
    closedir(d);
    lua_pushnumber(L, total);
    return 1;
}

/* Sets t[k] = v for every non-zero v[k] of an array of counters. */
static void push_counts(lua_State *L, const uint64_t *v, int n)
{
    lua_newtable(L);
    for (int i = 0; i < n; i++) {
        /* Zeros are left out: of the 1025 frame type slots few ever count. */
        if (v[i] == 0)
            continue;
        lua_pushnumber(L, (lua_Number)v[i]);
        lua_rawseti(L, -2, i);
    }
}

/* sys.stats() -> { frames_in = { [type] = n }, frames_out = {...},
 *   fails = { [code] = n }, other_type = <slot index of larger types>,
 *   other_code = <slot of larger codes>, bytes_in, bytes_out,
 *   request = { bounds = {...}, counts = {...}, count, sum },
 *   log_lines = { error = n, ... }, syslog_dropped, log_write_errors } */
static int l_stats(lua_State *L)
{
    lua_createtable(L, 0, 12);
    push_counts(L, tp_stats.frames_in, TP_STATS_TYPES + 1);
    lua_setfield(L, -2, "frames_in");
    push_counts(L, tp_stats.frames_out, TP_STATS_TYPES + 1);
    lua_setfield(L, -2, "frames_out");
    push_counts(L, tp_stats.fails_out, TP_STATS_FAIL_CODES + 1);
    lua_setfield(L, -2, "fails");
    lua_pushinteger(L, TP_STATS_TYPES);
    lua_setfield(L, -2, "other_type");
    lua_pushinteger(L, TP_STATS_FAIL_CODES);
    lua_setfield(L, -2, "other_code");
    lua_pushnumber(L, (lua_Number)tp_stats.bytes_in);
    lua_setfield(L, -2, "bytes_in");
    lua_pushnumber(L, (lua_Number)tp_stats.bytes_out);
    lua_setfield(L, -2, "bytes_out");

    const tp_histogram_t *h = &tp_stats.request_seconds;
    lua_createtable(L, 0, 4);
    lua_createtable(L, TP_STATS_BUCKETS, 0);
    for (int i = 0; i < TP_STATS_BUCKETS; i++) {
        lua_pushnumber(L, tp_stats_bounds[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "bounds");
    lua_createtable(L, TP_STATS_BUCKETS + 1, 0);
    for (int i = 0; i <= TP_STATS_BUCKETS; i++) {
        lua_pushnumber(L, (lua_Number)h->counts[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "counts");
    lua_pushnumber(L, (lua_Number)h->count);
    lua_setfield(L, -2, "count");
    lua_pushnumber(L, h->sum);
    lua_setfield(L, -2, "sum");
    lua_setfield(L, -2, "request");

    tp_log_counts_t lc;
    tp_log_get_counts(&lc);
    lua_createtable(L, 0, TP_LOG_NUM_LEVELS);
    for (int i = 0; i < TP_LOG_NUM_LEVELS; i++) {
        lua_pushnumber(L, (lua_Number)lc.lines[i]);
        lua_setfield(L, -2, tp_log_level_name((tp_log_level_t)i));
    }
    lua_setfield(L, -2, "log_lines");
    lua_pushnumber(L, (lua_Number)lc.syslog_dropped);
    lua_setfield(L, -2, "syslog_dropped");
    lua_pushnumber(L, (lua_Number)lc.write_errors);
    lua_setfield(L, -2, "log_write_errors");
    return 1;
}

/* sys.observe_request(seconds): a request answered later (deferred). */
static int l_observe_request(lua_State *L)
{
    tp_histogram_observe(&tp_stats.request_seconds, luaL_checknumber(L, 1));
    return 0;
}

/* ------------------------------------------------------------ signals */

/* SIGUSR1 and SIGUSR2 run a Lua function each. The handles do not keep
 * the loop alive and are closed with every other handle at exit. */
typedef struct sig_slot {
    uv_signal_t h;       /* the handle, once started */
    lua_State *L;        /* the state */
    int fn_ref;          /* the function to run, or LUA_NOREF */
    bool started;        /* h is initialised */
} sig_slot_t;

static sig_slot_t slots[2] = {
    { .fn_ref = LUA_NOREF }, { .fn_ref = LUA_NOREF }
};

static void on_user_signal(uv_signal_t *h, int signum)
{
    sig_slot_t *slot = h->data;
    if (slot->fn_ref == LUA_NOREF)
        return;
    lua_State *L = slot->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, slot->fn_ref);
    tp_lua_pcall_logged(L, 0, signum == SIGUSR1 ? "SIGUSR1 handler"
                                                : "SIGUSR2 handler");
    lua_settop(L, top);
}

/* sys.on_signal("USR1"|"USR2", fn | nil) */
static int l_on_signal(lua_State *L)
{
    static const char *const names[] = { "USR1", "USR2", NULL };
    int which = luaL_checkoption(L, 1, NULL, names);
    sig_slot_t *slot = &slots[which];
    if (!lua_isnil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    if (slot->fn_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, slot->fn_ref);
    slot->fn_ref = LUA_NOREF;
    if (lua_isnil(L, 2)) {
        if (slot->started && !uv_is_closing((uv_handle_t *)&slot->h))
            uv_signal_stop(&slot->h);
        /* Stopping restored the default action (the end of the process). */
        signal(which == 0 ? SIGUSR1 : SIGUSR2, SIG_IGN);
        return 0;
    }
    lua_pushvalue(L, 2);
    slot->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* The main state: a coroutine that set the handler may be dead when
     * the signal comes. */
    slot->L = tp_lua_main(L);
    if (!slot->started || uv_is_closing((uv_handle_t *)&slot->h)) {
        /* The handle is closing with every other one (the stop): it cannot be
         * started again. */
        if (slot->started)
            return luaL_error(L, "the server is stopping");
        uv_signal_init(tp_lua_loop(L), &slot->h);
        slot->h.data = slot;
        slot->started = true;
        uv_unref((uv_handle_t *)&slot->h);
    }
    uv_signal_start(&slot->h, on_user_signal,
                    which == 0 ? SIGUSR1 : SIGUSR2);
    return 0;
}

int luaopen_tp_sys(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "log_configure", l_log_configure },
        { "log_reopen", l_log_reopen },
        { "log_clear_modules", l_log_clear_modules },
        { "cwd", l_cwd },
        { "lock", l_lock },
        { "probe", l_probe },
        { "kill", l_kill },
        { "sleep", l_sleep },
        { "getpid", l_getpid },
        { "notify", l_notify },
        { "set_exit_status", l_set_exit_status },
        { "dir_size", l_dir_size },
        { "stats", l_stats },
        { "observe_request", l_observe_request },
        { "on_signal", l_on_signal },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
