/*
 * main.c: the command line, finding the server's Lua files, and wiring the
 * loop, the network and the Lua state together.
 *
 *   tpserver [options]           run the server (see usage())
 *   tpserver script FILE [ARGS]  run a Lua file with the server's modules
 *                                (tests, maintenance); exit 1 on error
 *
 * Everything about the game, the configuration file and the listeners is
 * decided by lua/tp/boot.lua; this file only collects the command line into
 * a table for it.
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "bridge.h"
#include "log.h"
#include "net.h"
#include "version.h"

#ifndef TP_DATADIR
#define TP_DATADIR "/usr/local/share/tpserver"
#endif

static void usage(FILE *out)
{
    fprintf(out,
"usage: tpserver [options]\n"
"       tpserver script FILE [ARGS...]\n"
"\n"
"Runs a Thousand Parsec game server. Options override tpserver.lua:\n"
"  -f, --foreground       stay in the foreground (logs to stderr)\n"
"  -c, --config FILE      configuration file (default: tpserver.lua)\n"
"      --data DIR         data directory (LevelDB database), default ./var\n"
"      --port N           TP port (default 6923)\n"
"      --bind ADDR        listen address (default 127.0.0.1)\n"
"      --ruleset NAME     ruleset folder under rulesets/ (default minisec)\n"
"      --log-level LEVEL  error, warning, info, debug or trace\n"
"      --set KEY=VALUE    set any configuration key (repeatable)\n"
"      --check-config     validate the configuration, print it, exit\n"
"  -h, --help             this text\n"
"  -V, --version          print the version\n");
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Finds the folder holding lua/tp/boot.lua: $TPSERVER_HOME, the binary's
 * folder (a source tree), two folders up (build/asan/tpserver), the
 * installed share folder next to bin/, then the compiled-in default. */
static bool find_home(char *out, size_t len)
{
    char probe[PATH_MAX + 32];
    const char *env = getenv("TPSERVER_HOME");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return true;
    }
    char exe[PATH_MAX];
    size_t n = sizeof exe;
    if (uv_exepath(exe, &n) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        static const char *const rel[] = { "", "/../..", "/../share/tpserver",
                                           "/.." };
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(probe, sizeof probe, "%s%s/lua/tp/boot.lua", exe,
                     rel[i]);
            if (file_exists(probe)) {
                char joined[PATH_MAX + 32];
                snprintf(joined, sizeof joined, "%s%s", exe, rel[i]);
                char *real = realpath(joined, NULL);
                snprintf(out, len, "%s", real ? real : joined);
                free(real);
                return true;
            }
        }
    }
    snprintf(probe, sizeof probe, "%s/lua/tp/boot.lua", TP_DATADIR);
    if (file_exists(probe)) {
        snprintf(out, len, "%s", TP_DATADIR);
        return true;
    }
    return false;
}

static void set_package_path(lua_State *L, const char *home)
{
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua", home, home,
                    home);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

static tp_lua_t lx;

static void on_hup(uv_signal_t *h, int signum)
{
    tp_log_info("main", "signal HUP: reloading");
    tp_lua_hup(&lx);
}

static void on_signal(uv_signal_t *h, int signum)
{
    tp_log_info("main", "signal %s: stopping",
                signum == SIGINT ? "INT" : "TERM");
    tp_lua_request_stop(&lx);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* SIGINT and SIGTERM stop the server cleanly. The handles do not keep the
 * loop alive by themselves (a script that serves nothing just ends). */
static void watch_signals(tp_server_t *srv)
{
    uv_signal_init(srv->loop, &srv->sig_int);
    uv_signal_init(srv->loop, &srv->sig_term);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_init(srv->loop, &srv->sig_hup);
    uv_signal_start(&srv->sig_hup, on_hup, SIGHUP);
    uv_unref((uv_handle_t *)&srv->sig_int);
    uv_unref((uv_handle_t *)&srv->sig_term);
    uv_unref((uv_handle_t *)&srv->sig_hup);
}

static int run_script(tp_server_t *srv, const char *home, int argc,
                      char **argv)
{
    lua_State *L = lx.L;
    watch_signals(srv);
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    lua_pushstring(L, home);
    lua_setglobal(L, "TP_HOME");
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_remove(L, -2);
    if (luaL_loadfile(L, argv[0]) != 0) {
        fprintf(stderr, "tpserver: %s\n", lua_tostring(L, -1));
        return 1;
    }
    if (lua_pcall(L, 0, 1, -2) != 0) {
        fprintf(stderr, "tpserver: %s\n", lua_tostring(L, -1));
        return 1;
    }
    int status = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_settop(L, 0);
    /* Scripts may have started timers or listeners. */
    uv_run(srv->loop, UV_RUN_DEFAULT);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "foreground", no_argument, NULL, 'f' },
        { "config", required_argument, NULL, 'c' },
        { "data", required_argument, NULL, 'd' },
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "ruleset", required_argument, NULL, 'r' },
        { "log-level", required_argument, NULL, 'l' },
        { "set", required_argument, NULL, 's' },
        { "check-config", no_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    signal(SIGPIPE, SIG_IGN);

    char home[PATH_MAX + 64];
    if (!find_home(home, sizeof home)) {
        fprintf(stderr, "tpserver: cannot find the server's Lua files "
                "(lua/tp/boot.lua); set TPSERVER_HOME\n");
        return 1;
    }

    uv_loop_t *loop = uv_default_loop();
    tp_server_t srv;
    tp_server_init(&srv, loop);
    srv.lx = &lx;
    if (tp_lua_init(&lx, &srv) != 0) {
        fprintf(stderr, "tpserver: cannot create the Lua state\n");
        return 1;
    }
    lua_State *L = lx.L;
    set_package_path(L, home);

    if (argc >= 2 && strcmp(argv[1], "script") == 0) {
        if (argc < 3) {
            usage(stderr);
            return 2;
        }
        int rc = run_script(&srv, home, argc - 2, argv + 2);
        tp_lua_stop(&lx);
        uv_walk(loop, close_walk, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        tp_lua_close(&lx);
        uv_loop_close(loop);
        return rc;
    }

    /* args = { home=, config=, foreground=, check_config=,
     *          overrides = { data=, port=, bind=, ruleset=, log_level= },
     *          set = { "key=value", ... } } */
    lua_newtable(L);
    int args = lua_gettop(L);
    lua_pushstring(L, home);
    lua_setfield(L, args, "home");
    lua_newtable(L);
    int over = lua_gettop(L);
    lua_newtable(L);
    int sets = lua_gettop(L);
    int nsets = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "fc:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            lua_pushboolean(L, 1);
            lua_setfield(L, args, "foreground");
            break;
        case 'c':
            lua_pushstring(L, optarg);
            lua_setfield(L, args, "config");
            break;
        case 'd':
            lua_pushstring(L, optarg);
            lua_setfield(L, over, "data");
            break;
        case 'p': {
            char *end;
            long port = strtol(optarg, &end, 10);
            if (*end || port < 1 || port > 65535) {
                fprintf(stderr, "tpserver: --port wants 1-65535, got %s\n",
                        optarg);
                return 2;
            }
            lua_pushinteger(L, port);
            lua_setfield(L, over, "port");
            break;
        }
        case 'b':
            lua_pushstring(L, optarg);
            lua_setfield(L, over, "bind");
            break;
        case 'r':
            lua_pushstring(L, optarg);
            lua_setfield(L, over, "ruleset");
            break;
        case 'l':
            lua_pushstring(L, optarg);
            lua_setfield(L, over, "log_level");
            break;
        case 's':
            lua_pushstring(L, optarg);
            lua_rawseti(L, sets, ++nsets);
            break;
        case 'C':
            lua_pushboolean(L, 1);
            lua_setfield(L, args, "check_config");
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tpserver %s\n", TP_VERSION_STRING);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tpserver: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    lua_pushvalue(L, sets);
    lua_setfield(L, args, "set");
    lua_pushvalue(L, over);
    lua_setfield(L, args, "overrides");
    lua_settop(L, args);

    char boot[PATH_MAX + 128];
    snprintf(boot, sizeof boot, "%s/lua/tp/boot.lua", home);
    int status = 0;
    if (tp_lua_boot(&lx, boot) != 0) {
        status = 1;
        tp_lua_request_stop(&lx);
    } else if (srv.listeners) {
        watch_signals(&srv);
        uv_run(loop, UV_RUN_DEFAULT);
        tp_log_info("main", "stopped");
    }
    tp_lua_stop(&lx);
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    tp_lua_close(&lx);
    if (uv_loop_close(loop) != 0)
        tp_log_warn("main", "loop closed with handles still open");
    return status;
}
