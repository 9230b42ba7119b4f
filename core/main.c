/*
 * main.c: the command line, finding the server's Lua files, detaching
 * from the terminal, and wiring the loop, the network and the Lua state
 * together.
 *
 *   tpserver [options]           run the server: as a daemon, or in the
 *                                foreground with -f (see usage())
 *   tpserver --stop | --status | --stats | --check-config [options]
 *                                act on the server the options name
 *   tpserver script FILE [ARGS]  run a Lua file with the server's modules
 *                                (tests, maintenance); exit 1 on error
 *   tpserver check|repair DIR    check or repair a game database offline
 *                                (lua/tp/dbtool.lua, run as a script)
 *   tpserver restore DIR | new-game  put a backup back, or archive the
 *                                game for a new one, offline
 *                                (lua/tp/gametool.lua, run as a script)
 *
 * Everything about the game, the configuration file and the listeners is
 * decided by lua/tp/boot.lua; this file collects the command line into a
 * table for it. A daemon forks before the loop exists (daemon.h) and
 * reports to the waiting terminal once boot.lua has succeeded, so every
 * start-up error is printed there with a non-zero exit. Signals: INT and
 * TERM stop cleanly, HUP reopens the log files and runs the Lua reloaders;
 * the pid file is removed after the database is closed.
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
#include "console.h"
#include "crash.h"
#include "daemon.h"
#include "log.h"
#include "net.h"
#include "version.h"

int luaopen_tp_sys(lua_State *L);

#ifndef TP_DATADIR
#define TP_DATADIR "/usr/local/share/tpserver"
#endif

static void usage(FILE *out)
{
    fprintf(out,
"usage: tpserver [options]             run the server (a daemon unless -f)\n"
"       tpserver --stop|--status|--stats [options]\n"
"       tpserver --check-config [options]\n"
"       tpserver script FILE [ARGS...]\n"
"       tpserver check DIR     check a game database (a data directory)\n"
"       tpserver repair DIR    repair a damaged one (keeps a copy)\n"
"       tpserver restore [-c FILE] [--data DIR] BACKUP\n"
"                              put a backup back (server stopped; the\n"
"                              current database is moved aside)\n"
"       tpserver new-game [-c FILE] [--data DIR] [--keep-accounts]\n"
"                              archive the game in DIR/archive/; the next\n"
"                              start makes a new one\n"
"       tpserver find [--metaserver URL] [--timeout S] [--no-local]\n"
"                              list the TP games on the local network\n"
"                              (Zeroconf) and on metaservers\n"
"       tpserver console [--data DIR|--socket PATH] [-e CODE]  (see --help)\n"
"       tpserver backup [--data DIR|--socket PATH] DIR\n"
"\n"
"Runs a Thousand Parsec game server. Options override tpserver.lua:\n"
"  -f, --foreground       stay in the foreground (logs to stderr)\n"
"  -c, --config FILE      configuration file (default: tpserver.lua)\n"
"      --data DIR         data directory (LevelDB database), default ./var\n"
"      --pid-file FILE    pid file (default: DIR/tpserver.pid)\n"
"      --port N           TP port (default 6923)\n"
"      --bind ADDR        listen address (default 127.0.0.1)\n"
"      --tls-port N       TP over TLS (tps) listener on ADDR (0: none)\n"
"      --http-port N      HTTP tunnel listener on ADDR (0: none)\n"
"      --https-port N     HTTP tunnel over TLS listener on ADDR (0: none)\n"
"      --web-port N       web side (HTTP: JSON API, page) on ADDR (0: none)\n"
"      --cert FILE        TLS certificate chain, PEM (default: a\n"
"                         self-signed one made in DIR/tls/)\n"
"      --key FILE         its private key, PEM\n"
"      --admin-port N     TP admin protocol listener on 127.0.0.1 (0: none)\n"
"      --ssh-port N       the admin console over SSH, on ssh_bind (0: none)\n"
"      --ruleset NAME     ruleset folder under rulesets/ (default minisec)\n"
"      --log-level LEVEL  error, warning, info, debug or trace\n"
"      --set KEY=VALUE    set any configuration key (repeatable)\n"
"      --check-config     validate the configuration, print it, exit\n"
"      --stop             stop the running server and wait until it is gone\n"
"      --status           exit 0 if the server runs, 1 if it died, 3 if not\n"
"      --stats            print the running server's statistics\n"
"                         (Prometheus text format)\n"
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
        /* Absolute, since a daemon leaves its start folder. */
        char *real = realpath(env, NULL);
        snprintf(out, len, "%s", real ? real : env);
        free(real);
        return true;
    }
    char exe[PATH_MAX];
    size_t n = sizeof exe;
    if (uv_exepath(exe, &n) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        /* The binary's own tree first: a build in a source tree must not pick
         * up an installed copy. */
        static const char *const rel[] = { "", "/../..", "/../share/tpserver",
                                           "/.." };
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(probe, sizeof probe, "%s%s/lua/tp/boot.lua", exe,
                     rel[i]);
            if (file_exists(probe)) {
                char joined[PATH_MAX + 32];
                snprintf(joined, sizeof joined, "%s%s", exe, rel[i]);
                /* Absolute and without '..', as for TPSERVER_HOME above. */
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
    /* home/?.lua: the admin/ modules, required as admin.<name>. */
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua", home, home,
                    home);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

static tp_lua_t lx;

static void on_hup(uv_signal_t *h, int signum)
{
    tp_log_info("main", "signal=HUP reopening log files, reloading the "
                "configuration");
    /* RELOADING=1 and READY=1 bracket a reload for systemd (sd_notify). */
    tp_daemon_notify("RELOADING=1");
    char err[512];
    /* Reopened first, so what the reload logs goes to the new file. */
    if (tp_log_reopen(err, sizeof err) != 0)
        tp_log_error("log", "%s", err);
    tp_lua_hup(&lx);
    tp_daemon_notify("READY=1");
}

static void on_signal(uv_signal_t *h, int signum)
{
    tp_log_info("main", "signal=%s stopping",
                signum == SIGINT ? "INT" : "TERM");
    tp_daemon_notify("STOPPING=1");
    tp_lua_request_stop(&lx);
    /* Closing the HUP handle restored the default action, which would
     * end the process before the database is closed. */
    signal(SIGHUP, SIG_IGN);
}

/* Closes whatever is left at the end, so that uv_loop_close succeeds. */
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

/* Registers the C modules this file adds to the ones of tp_lua_init. */
static void preload_modules(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tp_sys);
    lua_setfield(L, -2, "tp.sys");
    lua_pop(L, 2);
}

static int run_script(tp_server_t *srv, const char *home, int argc,
                      char **argv)
{
    lua_State *L = lx.L;
    watch_signals(srv);
    /* arg[0] is the script and arg[1..] its arguments, as lua(1) has them. */
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    lua_pushstring(L, home);
    lua_setglobal(L, "TP_HOME");
    /* debug.traceback under the chunk: lua_pcall's handler at -2. */
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
    /* One that finishes on the loop says how it went with
     * sys.set_exit_status. */
    if (status == 0)
        status = tp_daemon_exit_status();
    return status;
}

/* The command line, parsed before anything else happens (the daemon forks
 * before the loop and the Lua state exist). Strings point into argv. */
typedef struct options {
    bool foreground;            /* -f */
    bool check_config;          /* --check-config */
    const char *command;        /* "stop", "status", "stats" or NULL */
    const char *config;         /* -c FILE */
    const char *data;           /* --data DIR */
    const char *pid_file;       /* --pid-file FILE */
    const char *bind;           /* --bind ADDR */
    const char *ruleset;        /* --ruleset NAME */
    const char *log_level;      /* --log-level LEVEL */
    long port;                  /* --port N, 0 when not given */
    const char *tls_port;       /* --tls-port N (checked), or NULL */
    const char *http_port;      /* --http-port N (checked), or NULL */
    const char *https_port;     /* --https-port N (checked), or NULL */
    const char *web_port;       /* --web-port N (checked), or NULL */
    const char *cert;           /* --cert FILE */
    const char *key;            /* --key FILE */
    const char *admin_port;     /* --admin-port N (checked), or NULL */
    const char *ssh_port;       /* --ssh-port N (checked), or NULL */
    const char **sets;          /* --set items (argc slots) */
    int num_sets;
} options_t;

/* Returns -1 to go on, else the exit status (help, version, misuse). */
static int parse_options(int argc, char **argv, options_t *o)
{
    /* Above 255: a long-only option cannot clash with a short one's char. */
    enum { OPT_STOP = 256, OPT_STATUS, OPT_STATS, OPT_PID_FILE };
    enum { OPT_TLS_PORT = 320, OPT_HTTP_PORT, OPT_HTTPS_PORT, OPT_WEB_PORT,
           OPT_CERT,
           OPT_KEY };
    enum { OPT_ADMIN_PORT = 340, OPT_SSH_PORT };
    static const struct option opts[] = {
        { "foreground", no_argument, NULL, 'f' },
        { "config", required_argument, NULL, 'c' },
        { "data", required_argument, NULL, 'd' },
        { "pid-file", required_argument, NULL, OPT_PID_FILE },
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "ruleset", required_argument, NULL, 'r' },
        { "log-level", required_argument, NULL, 'l' },
        { "set", required_argument, NULL, 's' },
        { "check-config", no_argument, NULL, 'C' },
        { "stop", no_argument, NULL, OPT_STOP },
        { "status", no_argument, NULL, OPT_STATUS },
        { "stats", no_argument, NULL, OPT_STATS },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "tls-port", required_argument, NULL, OPT_TLS_PORT },
        { "http-port", required_argument, NULL, OPT_HTTP_PORT },
        { "https-port", required_argument, NULL, OPT_HTTPS_PORT },
        { "web-port", required_argument, NULL, OPT_WEB_PORT },
        { "cert", required_argument, NULL, OPT_CERT },
        { "key", required_argument, NULL, OPT_KEY },
        { "admin-port", required_argument, NULL, OPT_ADMIN_PORT },
        { "ssh-port", required_argument, NULL, OPT_SSH_PORT },
        { NULL, 0, NULL, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "fc:hV", opts, NULL)) != -1) {
        const char *command = NULL;
        switch (ch) {
        case 'f': o->foreground = true; break;
        case 'c': o->config = optarg; break;
        case 'd': o->data = optarg; break;
        case OPT_PID_FILE: o->pid_file = optarg; break;
        case 'b': o->bind = optarg; break;
        case 'r': o->ruleset = optarg; break;
        case 'l': o->log_level = optarg; break;
        case 's': o->sets[o->num_sets++] = optarg; break;
        case 'C': o->check_config = true; break;
        case OPT_STOP: command = "stop"; break;
        case OPT_STATUS: command = "status"; break;
        case OPT_STATS: command = "stats"; break;
        case 'p': {
            char *end;
            long port = strtol(optarg, &end, 10);
            /* At least 1: the TP port has no "none", and o->port 0 is
             * "not given". */
            if (*end || port < 1 || port > 65535) {
                fprintf(stderr, "tpserver: --port wants 1-65535, got %s\n",
                        optarg);
                return 2;
            }
            o->port = port;
            break;
        }
        case OPT_TLS_PORT:
        case OPT_HTTP_PORT:
        case OPT_HTTPS_PORT:
        case OPT_WEB_PORT: {
            char *end;
            long port = strtol(optarg, &end, 10);
            const char *name = ch == OPT_TLS_PORT ? "tls-port" :
                               ch == OPT_HTTP_PORT ? "http-port" :
                               ch == OPT_WEB_PORT ? "web-port" :
                               "https-port";
            /* !*optarg: strtol reads "" as 0, which here means no listener. */
            if (!*optarg || *end || port < 0 || port > 65535) {
                fprintf(stderr, "tpserver: --%s wants 0-65535 (0: no such "
                        "listener), got %s\n", name, optarg);
                return 2;
            }
            /* Kept as a string: NULL (not given) must differ from 0 (none). */
            *(ch == OPT_TLS_PORT ? &o->tls_port : ch == OPT_HTTP_PORT ?
              &o->http_port : ch == OPT_WEB_PORT ? &o->web_port :
              &o->https_port) = optarg;
            break;
        }
        case OPT_ADMIN_PORT:
        case OPT_SSH_PORT: {
            const char *name = ch == OPT_SSH_PORT ? "ssh" : "admin";
            char *end;
            long port = strtol(optarg, &end, 10);
            if (!*optarg || *end || port < 0 || port > 65535) {
                fprintf(stderr, "tpserver: --%s-port wants 0-65535 (0: "
                        "no %s listener), got %s\n", name, name, optarg);
                return 2;
            }
            *(ch == OPT_SSH_PORT ? &o->ssh_port : &o->admin_port) = optarg;
            break;
        }
        case OPT_CERT: o->cert = optarg; break;
        case OPT_KEY: o->key = optarg; break;
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
        if (command) {
            if (o->command && strcmp(o->command, command) != 0) {
                fprintf(stderr, "tpserver: --%s and --%s exclude each "
                        "other\n", o->command, command);
                return 2;
            }
            o->command = command;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tpserver: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

static void set_string(lua_State *L, int t, const char *key, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, t, key);
    }
}

/* t[key] = v as an integer (v was checked by parse_options), when given. */
static void set_port(lua_State *L, int t, const char *key, const char *v)
{
    if (v) {
        lua_pushinteger(L, strtol(v, NULL, 10));
        lua_setfield(L, t, key);
    }
}

/* Pushes the table boot.lua receives:
 *   { home=, config=, foreground=, daemon=, check_config=, command=,
 *     overrides = { data=, port=, bind=, ruleset=, log_level=, pid_file= },
 *     set = { "key=value", ... } } */
static void push_args(lua_State *L, const options_t *o, const char *home,
                      bool daemon)
{
    lua_newtable(L);
    int args = lua_gettop(L);
    set_string(L, args, "home", home);
    set_string(L, args, "config", o->config);
    set_string(L, args, "command", o->command);
    lua_pushboolean(L, o->foreground);
    lua_setfield(L, args, "foreground");
    lua_pushboolean(L, daemon);
    lua_setfield(L, args, "daemon");
    lua_pushboolean(L, o->check_config);
    lua_setfield(L, args, "check_config");
    lua_newtable(L);
    int over = lua_gettop(L);
    set_string(L, over, "data", o->data);
    set_string(L, over, "bind", o->bind);
    set_string(L, over, "ruleset", o->ruleset);
    set_string(L, over, "log_level", o->log_level);
    set_string(L, over, "pid_file", o->pid_file);
    if (o->port) {
        lua_pushinteger(L, o->port);
        lua_setfield(L, over, "port");
    }
    set_port(L, over, "tls_port", o->tls_port);
    set_port(L, over, "http_port", o->http_port);
    set_port(L, over, "https_port", o->https_port);
    set_port(L, over, "web_port", o->web_port);
    set_string(L, over, "tls_cert", o->cert);
    set_string(L, over, "tls_key", o->key);
    set_port(L, over, "admin_port", o->admin_port);
    set_port(L, over, "ssh_port", o->ssh_port);
    lua_setfield(L, args, "overrides");
    lua_createtable(L, o->num_sets, 0);
    for (int i = 0; i < o->num_sets; i++) {
        lua_pushstring(L, o->sets[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, args, "set");
}

int main(int argc, char **argv)
{
    /* A peer that closes while we write gives EPIPE, not our end. */
    signal(SIGPIPE, SIG_IGN);
    tp_crash_install();
    bool script = argc >= 2 && strcmp(argv[1], "script") == 0;
    /* "check" and "repair" are scripts shipped with the server. */
    bool dbtool = argc >= 2 && (strcmp(argv[1], "check") == 0 ||
                                strcmp(argv[1], "repair") == 0);
    /* "restore" and "new-game" too (lua/tp/gametool.lua); new-game may
     * come without arguments. */
    bool gametool = argc >= 2 && (strcmp(argv[1], "restore") == 0 ||
                                  strcmp(argv[1], "new-game") == 0);
    script = script || dbtool || gametool;
    /* "find" is one too (lua/tp/find.lua), with optional arguments. */
    bool finder = argc >= 2 && strcmp(argv[1], "find") == 0;
    /* "console" and "backup" are clients of a running server. */
    bool console = argc >= 2 && (strcmp(argv[1], "console") == 0 ||
                                 strcmp(argv[1], "backup") == 0);
    if (finder)
        script = true;
    if (script && !finder && !gametool && argc < 3) {
        usage(stderr);
        return 2;
    }

    /* One slot per argument: --set cannot come more often than that. */
    options_t opt = { .sets = calloc((size_t)argc, sizeof(char *)) };
    if (!opt.sets)
        return 1;
    /* A script's arguments are its own (arg), and console_client.c reads
     * the console's and backup's. */
    if (!script && !console) {
        int rc = parse_options(argc, argv, &opt);
        if (rc >= 0) {
            free(opt.sets);
            return rc;
        }
        /* A HUP or USR1 that comes while booting must not kill the
         * server; the loop's handlers replace these. */
        signal(SIGHUP, SIG_IGN);
        signal(SIGUSR1, SIG_IGN);
        /* Everything the server makes is its own: the data directory holds
         * the password hashes (files 0600, folders 0700). */
        umask(077);
    }

    char home[PATH_MAX + 64];
    if (!find_home(home, sizeof home)) {
        fprintf(stderr, "tpserver: cannot find the server's Lua files "
                "(lua/tp/boot.lua); set TPSERVER_HOME\n");
        free(opt.sets);
        return 1;
    }
    if (console) {
        free(opt.sets);
        return tp_console_client_main(argc - 1, argv + 1, home);
    }

    /* Without -f (and not for a command) the server detaches now, before
     * the loop and its thread pool exist; the original process waits and
     * exits with the outcome of the start. */
    bool daemon = !script && !opt.foreground && !opt.check_config &&
                  !opt.command;
    if (daemon) {
        char err[256];
        if (tp_daemon_detach(err, sizeof err) != 0) {
            fprintf(stderr, "tpserver: %s\n", err);
            free(opt.sets);
            return 1;
        }
    }

    uv_loop_t *loop = uv_default_loop();
    tp_server_t srv;
    tp_server_init(&srv, loop);
    if (tp_lua_init(&lx, &srv) != 0) {
        fprintf(stderr, "tpserver: cannot create the Lua state\n");
        /* 'F': the message is printed, so the parent only exits 1. */
        tp_daemon_failed();
        free(opt.sets);
        return 1;
    }
    lua_State *L = lx.L;
    set_package_path(L, home);
    preload_modules(L);

    int status = 0;
    bool served = false;
    if (dbtool) {
        /* arg[0] = the tool, arg[1] = "check" | "repair", then DIR... */
        char tool[PATH_MAX + 128];
        snprintf(tool, sizeof tool, "%s/lua/tp/dbtool.lua", home);
        argv[0] = tool;
        status = run_script(&srv, home, argc, argv);
        tp_lua_stop(&lx);
    } else if (gametool) {
        /* arg[0] = the tool, arg[1] = "restore" | "new-game", then its
         * options. */
        char tool[PATH_MAX + 128];
        snprintf(tool, sizeof tool, "%s/lua/tp/gametool.lua", home);
        argv[0] = tool;
        status = run_script(&srv, home, argc, argv);
        tp_lua_stop(&lx);
    } else if (finder) {
        /* arg[0] = the tool, then its options. */
        char tool[PATH_MAX + 128];
        snprintf(tool, sizeof tool, "%s/lua/tp/find.lua", home);
        argv[1] = tool;
        status = run_script(&srv, home, argc - 1, argv + 1);
        tp_lua_stop(&lx);
    } else if (script) {
        status = run_script(&srv, home, argc - 2, argv + 2);
        tp_lua_stop(&lx);
    } else {
        push_args(L, &opt, home, daemon);
        /* Before boot opens the ports: a signal that comes while it runs
         * waits for the loop and stops the server cleanly. */
        watch_signals(&srv);
        char boot[PATH_MAX + 128];
        snprintf(boot, sizeof boot, "%s/lua/tp/boot.lua", home);
        tp_crash_phase("boot");
        if (tp_lua_boot(&lx, boot) != 0) {
            status = 1;
            tp_daemon_failed();
            /* Boot may have bound ports or started timers before it failed. */
            tp_lua_request_stop(&lx);
        } else if (srv.listeners) {
            tp_daemon_ready();
            tp_daemon_notify("READY=1");
            served = true;
            tp_crash_phase("serve");
            uv_run(loop, UV_RUN_DEFAULT);
            tp_crash_phase("stop");
            /* The stop closed the HUP handle, restoring the default
             * action: a HUP would end us before tp_lua_stop closes the
             * database. on_signal did this, a stop from Lua did not. */
            signal(SIGHUP, SIG_IGN);
            /* A stop from Lua may say it failed (the database cannot go
             * on: tp.db's on_fatal). */
            status = tp_daemon_exit_status();
        } else {
            /* --check-config, --stop, --status, --stats, or nothing to
             * serve. */
            status = tp_daemon_exit_status();
            tp_daemon_ready();
        }
        tp_lua_stop(&lx);
    }
    /* Closes every handle still open, and runs until all closes are done,
     * before the Lua state and the loop go. */
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    tp_lua_close(&lx);
    if (uv_loop_close(loop) != 0)
        tp_log_warn("main", "loop closed with handles still open");
    /* The database is closed: now the pid file may go. */
    tp_daemon_release_all();
    if (served)
        tp_log_info("main", "stopped pid=%d status=%d", (int)getpid(),
                    status);
    free(opt.sets);
    /* Last: everything above may still log. */
    tp_log_close();
    return status;
}
