/*
 * console_client.c: "tpserver console" and "tpserver backup", the client
 * end of the admin console (protocol in console.h).
 *
 *   tpserver console [options]           an interactive Lua REPL in the
 *                                        running server (a terminal), or
 *                                        the script on stdin (otherwise)
 *   tpserver console [options] -e CODE   one chunk; prints its results
 *   tpserver console --hash-password     a password hash for the admins
 *                                        list of tpserver.lua
 *   tpserver backup [options] DIR        a consistent copy of the game's
 *                                        database into DIR; waits for it
 * Options: -c FILE, --data DIR, --socket PATH (how to find the server's
 * console socket), -q (no banner). The exit status is 0 when the command
 * succeeded, 1 when it failed or the server could not be reached, 2 for a
 * usage error, 130 when given up with Ctrl-C.
 *
 * The REPL: libedit line editing, history in ~/.tpserver_history (or
 * $TPSERVER_HISTORY), a statement left incomplete continues on the next
 * line (judged locally with LuaJIT's parser, as lua.c does), Tab completes
 * names (asked from the server), Ctrl-C clears the input or, while a
 * command runs, asks the server to stop it; Ctrl-D leaves.
 *
 * Everything read from the socket is bounded: a message longer than
 * TP_CONSOLE_MAX_OUT ends the session.
 */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <histedit.h>
#include <lauxlib.h>
#include <lualib.h>

#include "bridge.h"
#include "buf.h"

#define HISTORY_SIZE 1000
/* 128 + SIGINT: what a shell reports for a command ended by Ctrl-C. */
#define EXIT_GAVE_UP 130

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
    /* Only a flag, which the waits look at: little else is safe here. */
    got_sigint = 1;
}

/* One connection to the server's console. */
typedef struct client {
    int fd;                    /* the socket, -1 when closed */
    tp_buf_t in;               /* bytes received, not yet taken */
    size_t consumed;           /* the message recv_msg handed out last */
    lua_State *L;              /* local state: paths, completeness */
    bool interactive;          /* a person at a terminal */
    bool continuing;           /* the prompt continues a statement */
    char *hist_path;           /* history file, or NULL */
} client_t;

static void complain(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void complain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tpserver: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------ messages */

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_msg(client_t *c, char type, const char *p, size_t n)
{
    /* The server would end the session over it: say why here instead. */
    if (n > TP_CONSOLE_MAX_IN) {
        complain("the code is too long (%zu bytes; at most %u)", n,
                 TP_CONSOLE_MAX_IN);
        return -1;
    }
    uint8_t hdr[TP_CONSOLE_HEADER];
    hdr[0] = (uint8_t)type;
    tp_put_u32(hdr + 1, (uint32_t)n);
    if (send_all(c->fd, hdr, sizeof hdr) != 0 ||
        (n && send_all(c->fd, p, n) != 0))
        return -1;
    return 0;
}

enum { MSG_OK = 0, MSG_CLOSED = -1, MSG_SIGINT = -2 };

/* Waits for the next message: its type in *type, its payload at *p
 * (valid until the next call) with length *n. Returns MSG_OK, MSG_CLOSED
 * (the server closed the console, or sent something unreadable) or
 * MSG_SIGINT (Ctrl-C while waiting: nothing consumed). */
static int recv_msg(client_t *c, char *type, const char **p, size_t *n)
{
    /* The last message goes only now: its payload (*p) was valid until this
     * call. */
    tp_buf_consume(&c->in, c->consumed);
    c->consumed = 0;
    for (;;) {
        if (c->in.len >= TP_CONSOLE_HEADER) {
            uint32_t len = tp_get_u32(c->in.data + 1);
            /* Never wait for, or buffer, more than the protocol allows. */
            if (len > TP_CONSOLE_MAX_OUT) {
                complain("the server sent a message of %u bytes", len);
                return MSG_CLOSED;
            }
            if (c->in.len - TP_CONSOLE_HEADER >= len) {
                *type = (char)c->in.data[0];
                *p = (const char *)c->in.data + TP_CONSOLE_HEADER;
                *n = len;
                c->consumed = TP_CONSOLE_HEADER + (size_t)len;
                return MSG_OK;
            }
        }
        /* After the check above, so a message that has come whole is not lost
         * to a Ctrl-C. */
        if (got_sigint)
            return MSG_SIGINT;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        int r = poll(&pfd, 1, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;       /* got_sigint is looked at above */
            return MSG_CLOSED;
        }
        /* Fails only when memory is short: see the cap of c->in. */
        if (!tp_buf_reserve(&c->in, 65536))
            return MSG_CLOSED;
        ssize_t got = recv(c->fd, c->in.data + c->in.len,
                           c->in.cap - c->in.len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return MSG_CLOSED;
        c->in.len += (size_t)got;
    }
}

static void write_text(FILE *f, const char *p, size_t n, bool newline)
{
    fwrite(p, 1, n, f);
    if (newline && n > 0 && p[n - 1] != '\n')
        fputc('\n', f);
    fflush(f);
}

/* Sends a chunk and prints what comes back until its result. Ctrl-C
 * asks the server to stop the command; the third one gives up waiting.
 * Returns 0 (it succeeded), 1 (it failed), MSG_CLOSED or EXIT_GAVE_UP. */
static int run_chunk(client_t *c, char type, const char *code, size_t len)
{
    if (send_msg(c, type, code, len) != 0) {
        complain("cannot send to the server: %s", strerror(errno));
        return MSG_CLOSED;
    }
    int interrupts = 0;
    for (;;) {
        char t;
        const char *p;
        size_t n;
        int rc = recv_msg(c, &t, &p, &n);
        if (rc == MSG_SIGINT) {
            got_sigint = 0;
            if (++interrupts >= 3) {
                fputs("\n(gave up waiting; the server may still be "
                      "running the command)\n", stderr);
                return EXIT_GAVE_UP;
            }
            if (c->interactive)
                fputs(interrupts == 1 ? "\n(stopping...)\n"
                      : "\n(stopping... Ctrl-C once more gives up "
                        "waiting)\n", stderr);
            if (send_msg(c, TP_CONSOLE_INTERRUPT, "", 0) != 0)
                return MSG_CLOSED;
            continue;
        }
        if (rc == MSG_CLOSED)
            return MSG_CLOSED;
        switch (t) {
        case TP_CONSOLE_OUTPUT:
            write_text(stdout, p, n, false);
            break;
        case TP_CONSOLE_RESULT:
            write_text(stdout, p, n, true);
            return 0;
        case TP_CONSOLE_ERROR:
            write_text(stderr, p, n, true);
            return 1;
        default:
            break;      /* a late completion or banner: not ours */
        }
    }
}

/* ------------------------------------------------------------ local Lua */

/* The local state: the server's Lua modules on package.path (to read the
 * configuration) and tp.crypto (for --hash-password). */
static lua_State *local_state(const char *home)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua", home, home,
                    home);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tp_crypto);
    lua_setfield(L, -2, "tp.crypto");
    lua_pop(L, 2);
    return L;
}

/* Calls require("admin.client")[fn] with the table of options on top of
 * the stack (popped); leaves its one or two results. Returns the status
 * of lua_pcall (the message is then on the stack). */
static int call_client_lua(lua_State *L, const char *fn)
{
    int args = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "admin.client");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        lua_remove(L, args);
        return 1;
    }
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lua_insert(L, args);       /* [fn, opts] */
    return lua_pcall(L, 1, 2, 0);
}

/* Whether chunk (the lines typed so far) is an unfinished statement: its
 * only error is at the end of the input (lua.c's rule). */
static bool incomplete(lua_State *L, const char *chunk, size_t len)
{
    const char *code = chunk;
    size_t n = len;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    /* As an expression first, as the server tries a line: what loads that
     * way is complete. */
    luaL_addstring(&b, "return ");
    if (n > 0 && code[0] == '=') {
        code++;
        n--;
    }
    luaL_addlstring(&b, code, n);
    luaL_pushresult(&b);
    size_t rl;
    const char *ret = lua_tolstring(L, -1, &rl);
    int rc = luaL_loadbuffer(L, ret, rl, "=console");
    lua_pop(L, 2);
    if (rc == 0)
        return false;
    if (chunk[0] == '=')
        return false;          /* "=expr" is an expression or an error */
    rc = luaL_loadbuffer(L, chunk, len, "=console");
    if (rc == 0) {
        lua_pop(L, 1);
        return false;
    }
    size_t ml;
    const char *msg = lua_tolstring(L, -1, &ml);
    static const char eof[] = "'<eof>'";
    bool more = rc == LUA_ERRSYNTAX && msg && ml >= sizeof eof - 1 &&
                strcmp(msg + ml - (sizeof eof - 1), eof) == 0;
    lua_pop(L, 1);
    return more;
}

/* ------------------------------------------------------------ REPL */

static char *prompt_fn(EditLine *el)
{
    client_t *c = NULL;
    el_get(el, EL_CLIENTDATA, &c);
    return (char *)(c && c->continuing ? "     ...> " : "tpserver> ");
}

static bool is_word(int ch)
{
    /* '.' and ':' too, so that a.b and a:b complete as one name. */
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':';
}

/* Tab: asks the server for the names that complete the word before the
 * cursor; inserts what they share, or lists them. */
static unsigned char complete_fn(EditLine *el, int ch)
{
    client_t *c = NULL;
    el_get(el, EL_CLIENTDATA, &c);
    const LineInfo *li = el_line(el);
    const char *start = li->cursor;
    while (start > li->buffer && is_word((unsigned char)start[-1]))
        start--;
    size_t wl = (size_t)(li->cursor - start);
    if (!c || send_msg(c, TP_CONSOLE_COMPLETE, start, wl) != 0)
        return CC_ERROR;
    char t = 0;
    const char *p = NULL;
    size_t n = 0;
    /* Anything before the candidates (a late answer to a command given up
     * on) is not ours: skipped. */
    do {
        int rc = recv_msg(c, &t, &p, &n);
        if (rc == MSG_SIGINT) {
            got_sigint = 0;
            return CC_REFRESH;
        }
        if (rc != MSG_OK)
            return CC_ERROR;
    } while (t != TP_CONSOLE_CANDIDATES);
    /* Candidates: whole words, one per line, sorted. */
    char *list = malloc(n + 1);
    if (!list)
        return CC_ERROR;
    /* A copy: p lasts until the next recv_msg, and strchr wants a NUL. */
    memcpy(list, p, n);
    list[n] = '\0';
    size_t count = 0, common = 0, widest = 0;
    const char *first = NULL;
    for (char *line = list; *line; ) {
        char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (!first) {
            first = line;
            common = ll;
        } else {
            size_t k = 0;
            while (k < common && k < ll && first[k] == line[k])
                k++;
            common = k;
        }
        if (ll > widest)
            widest = ll;
        count++;
        line += ll + (end ? 1 : 0);
    }
    unsigned char ret = CC_REFRESH_BEEP;
    if (count > 0 && common > wl) {
        char *ins = strndup(first + wl, common - wl);
        if (ins) {
            el_insertstr(el, ins);
            free(ins);
        }
        ret = CC_REFRESH;
    } else if (count > 1) {
        fputc('\n', stdout);
        /* For an 80-column terminal: its real width is not asked for. */
        size_t cols = widest + 2 < 80 ? 80 / (widest + 2) : 1, col = 0;
        for (char *line = list; *line; ) {
            char *end = strchr(line, '\n');
            size_t ll = end ? (size_t)(end - line) : strlen(line);
            fprintf(stdout, "%-*.*s", (int)(widest + 2), (int)ll, line);
            if (++col == cols) {
                fputc('\n', stdout);
                col = 0;
            }
            line += ll + (end ? 1 : 0);
        }
        if (col)
            fputc('\n', stdout);
        ret = CC_REDISPLAY;
    }
    free(list);
    return ret;
}

static char *history_path(void)
{
    const char *env = getenv("TPSERVER_HISTORY");
    if (env)
        return *env ? strdup(env) : NULL;   /* "" turns history off */
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + sizeof "/.tpserver_history";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/.tpserver_history", home);
    return p;
}

/* Whether the server has closed the console already (after shutdown()
 * or quit()); does not wait. */
static bool server_gone(client_t *c)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    /* Bytes still buffered, or nothing waiting: the server is there. */
    if (c->in.len > c->consumed || poll(&pfd, 1, 0) <= 0)
        return false;
    char byte;
    /* Peeked: a byte that is there belongs to the next recv_msg. */
    ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                      errno != EINTR);
}

static int repl(client_t *c, const char *banner, size_t banner_len)
{
    if (banner_len)
        write_text(stdout, banner, banner_len, true);
    EditLine *el = el_init("tpserver", stdin, stdout, stderr);
    if (!el) {
        complain("cannot start line editing");
        return 1;
    }
    HistEvent ev;
    History *hist = history_init();
    history(hist, &ev, H_SETSIZE, HISTORY_SIZE);
    history(hist, &ev, H_SETUNIQUE, 1);
    c->hist_path = history_path();
    if (c->hist_path) {
        /* The history holds what was typed: only its owner reads it. */
        int fd = open(c->hist_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        history(hist, &ev, H_LOAD, c->hist_path);
    }
    el_set(el, EL_CLIENTDATA, c);
    el_set(el, EL_EDITOR, "emacs");
    /* libedit's handlers put the terminal back, then call ours (SIGINT). */
    el_set(el, EL_SIGNAL, 1);
    el_set(el, EL_PROMPT, prompt_fn);
    el_set(el, EL_HIST, history, hist);
    /* The wide form: the narrow one copies the two names and never frees
     * them (libedit's own "XXX" in eln.c). */
    el_wset(el, EL_ADDFN, L"tp-complete", L"Complete a name", complete_fn);
    el_set(el, EL_BIND, "^I", "tp-complete", NULL);
    el_source(el, NULL);        /* the user's ~/.editrc, if any */

    tp_buf_t chunk;
    /* No more than the server takes in one message. */
    tp_buf_init(&chunk, TP_CONSOLE_MAX_IN);
    int status = 0;
    for (;;) {
        c->continuing = chunk.len > 0;
        int count = 0;
        /* Cleared, to tell an interrupted read from the end of input below. */
        errno = 0;
        const char *line = el_gets(el, &count);
        if (!line) {
            if (count < 0 && (got_sigint || errno == EINTR)) {
                /* Ctrl-C at the prompt drops what was typed. */
                got_sigint = 0;
                chunk.len = 0;
                el_reset(el);
                fputc('\n', stdout);
                continue;
            }
            fputc('\n', stdout);     /* Ctrl-D */
            break;
        }
        if (!tp_buf_append(&chunk, line, (size_t)count)) {
            complain("input too long; dropped");
            chunk.len = 0;
            continue;
        }
        size_t start = 0;
        while (start < chunk.len &&
               (chunk.data[start] == ' ' || chunk.data[start] == '\t' ||
                chunk.data[start] == '\n' || chunk.data[start] == '\r'))
            start++;
        if (start == chunk.len) {
            chunk.len = 0;
            continue;
        }
        size_t len = chunk.len;
        while (len > 0 && (chunk.data[len - 1] == '\n' ||
                           chunk.data[len - 1] == '\r'))
            len--;
        /* Terminate for the history and the parser. */
        if (!tp_buf_reserve(&chunk, 1)) {
            chunk.len = 0;
            continue;
        }
        chunk.data[len] = '\0';
        if (incomplete(c->L, (const char *)chunk.data, len)) {
            chunk.len = len;
            tp_buf_append(&chunk, "\n", 1);
            continue;
        }
        history(hist, &ev, H_ENTER, (const char *)chunk.data);
        /* Saved after every line: a session that dies with its terminal keeps
         * what was typed. */
        if (c->hist_path)
            history(hist, &ev, H_SAVE, c->hist_path);
        const char *typed = (const char *)chunk.data + start;
        if (strcmp(typed, "quit()") == 0 || strcmp(typed, "exit()") == 0 ||
            strcmp(typed, "quit") == 0 || strcmp(typed, "exit") == 0)
            break;      /* leaving needs no server */
        int rc = run_chunk(c, TP_CONSOLE_EVAL, (const char *)chunk.data,
                           len);
        chunk.len = 0;
        if (rc == MSG_CLOSED) {
            fputs("(the server closed the console)\n", stderr);
            status = 1;
            break;
        }
        if (rc == EXIT_GAVE_UP) {
            status = EXIT_GAVE_UP;
            break;
        }
        /* shutdown() or quit() closed the console: notice now, not after the
         * next line is typed. */
        if (server_gone(c)) {
            fputs("(the server closed the console)\n", stderr);
            break;
        }
    }
    tp_buf_free(&chunk);
    if (c->hist_path)
        history(hist, &ev, H_SAVE, c->hist_path);
    history_end(hist);
    el_end(el);
    return status;
}

/* ------------------------------------------------------------ commands */

static int connect_console(client_t *c, const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        complain("console socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path));
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        complain("socket: %s", strerror(errno));
        return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        if (e == ENOENT)
            complain("no console socket at %s: is the server running with "
                     "this data directory? (--data DIR, --socket PATH or "
                     "-c FILE)", path);
        else if (e == ECONNREFUSED)
            complain("nothing answers on %s: the server is not running "
                     "(or did not stop cleanly)", path);
        else if (e == EACCES || e == EPERM)
            complain("permission denied on %s: the console belongs to the "
                     "user the server runs as", path);
        else
            complain("cannot connect to %s: %s", path, strerror(e));
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

/* Reads a whole stream (the script on stdin). NULL on error. */
static char *read_all(FILE *f, size_t *len)
{
    tp_buf_t b;
    /* +1 for the NUL appended below: a script of MAX_IN bytes still fits. */
    tp_buf_init(&b, TP_CONSOLE_MAX_IN + 1);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (!tp_buf_append(&b, tmp, n)) {
            tp_buf_free(&b);
            complain("the script is too long (at most %u bytes)",
                     TP_CONSOLE_MAX_IN);
            return NULL;
        }
    }
    if (ferror(f) || !tp_buf_append(&b, "", 1)) {
        tp_buf_free(&b);
        complain("cannot read the script: %s", strerror(errno));
        return NULL;
    }
    *len = b.len - 1;
    return (char *)b.data;
}

/* Reads a password without echo (twice on a terminal). */
static char *read_password(void)
{
    bool tty = isatty(STDIN_FILENO);
    char first[1024], second[1024];
    /* Twice on a terminal, since a typo cannot be seen without echo; once
     * from a pipe. */
    for (int round = 0; round < (tty ? 2 : 1); round++) {
        char *buf = round == 0 ? first : second;
        struct termios old, quiet;
        if (tty) {
            fputs(round == 0 ? "password: " : "again: ", stderr);
            fflush(stderr);
            tcgetattr(STDIN_FILENO, &old);
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            /* TCSAFLUSH drops what was typed (and echoed) before the
             * prompt. */
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        char *got = fgets(buf, sizeof first, stdin);
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fputc('\n', stderr);
        }
        if (!got)
            return NULL;
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    if (tty && strcmp(first, second) != 0) {
        complain("the passwords differ");
        return NULL;
    }
    return strdup(first);
}

static int hash_password(lua_State *L)
{
    char *pw = read_password();
    if (!pw)
        return 1;
    if (!*pw) {
        complain("an empty password is not allowed");
        free(pw);
        return 1;
    }
    lua_newtable(L);
    lua_pushstring(L, pw);
    lua_setfield(L, -2, "password");
    /* The C copy is wiped; the Lua string cannot be, and is left to the
     * collector. */
    memset(pw, 0, strlen(pw));
    free(pw);
    if (call_client_lua(L, "hash_password") != 0 || lua_isnil(L, -2)) {
        complain("%s", lua_tostring(L, -1));
        return 1;
    }
    printf("%s\n", lua_tostring(L, -2));
    return 0;
}

static void usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "backup") == 0) {
        fprintf(out,
"usage: tpserver backup [options] DIR\n"
"\n"
"Copies the running server's game (a consistent snapshot) into DIR, a new\n"
"data directory (the database goes to DIR/db), and waits until it is done.\n"
"  -c, --config FILE   the server's configuration (to find its socket)\n"
"      --data DIR      the server's data directory\n"
"      --socket PATH   the console socket (default DATA/console.sock)\n");
        return;
    }
    fprintf(out,
"usage: tpserver console [options]           interactive (a terminal), or\n"
"                                            run the script on stdin\n"
"       tpserver console [options] -e CODE   run one chunk, print the result\n"
"       tpserver console --hash-password     hash a password for admins = {}\n"
"\n"
"Attaches to the running server's admin console: Lua evaluated inside the\n"
"server, with the admin commands in scope (help() lists them).\n"
"  -c, --config FILE   the server's configuration (to find its socket)\n"
"      --data DIR      the server's data directory\n"
"      --socket PATH   the console socket (default DATA/console.sock)\n"
"  -e, --eval CODE     run CODE and exit (status 1 if it fails)\n"
"  -q, --quiet         no banner\n"
"      --hash-password read a password, print its hash, exit\n"
"  -h, --help          this text\n");
}

/* Writes a Lua string literal for s into b. */
static void add_quoted(luaL_Buffer *b, const char *s)
{
    luaL_addchar(b, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            luaL_addchar(b, '\\');
            luaL_addchar(b, (char)ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            char esc[8];
            /* Three digits always, so that a digit after the escape is
             * not read as part of it. */
            snprintf(esc, sizeof esc, "\\%03u", ch);
            luaL_addstring(b, esc);
        } else {
            luaL_addchar(b, (char)ch);
        }
    }
    luaL_addchar(b, '"');
}

int tp_console_client_main(int argc, char **argv, const char *home)
{
    const char *cmd = argv[0];
    bool is_backup = strcmp(cmd, "backup") == 0;
    enum { OPT_DATA = 256, OPT_SOCKET, OPT_HASH };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "data", required_argument, NULL, OPT_DATA },
        { "socket", required_argument, NULL, OPT_SOCKET },
        { "eval", required_argument, NULL, 'e' },
        { "quiet", no_argument, NULL, 'q' },
        { "hash-password", no_argument, NULL, OPT_HASH },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *config = NULL, *data = NULL, *sock = NULL, *eval = NULL;
    bool quiet = false, hash = false;
    int ch;
    /* getopt's state is global: start afresh on this argv, whose argv[0]
     * is the subcommand. */
    optind = 1;
    while ((ch = getopt_long(argc, argv, is_backup ? "c:h" : "c:e:qh",
                             opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case OPT_DATA: data = optarg; break;
        case OPT_SOCKET: sock = optarg; break;
        case 'e': eval = optarg; break;
        case 'q': quiet = true; break;
        case OPT_HASH: hash = true; break;
        case 'h':
            usage(stdout, cmd);
            return 0;
        default:
            usage(stderr, cmd);
            return 2;
        }
    }
    const char *backup_dir = NULL;
    if (is_backup) {
        if (optind != argc - 1 || eval || hash) {
            usage(stderr, cmd);
            return 2;
        }
        backup_dir = argv[optind];
    } else if (optind < argc) {
        complain("unexpected argument '%s'", argv[optind]);
        usage(stderr, cmd);
        return 2;
    }

    client_t c = { .fd = -1 };
    /* The largest message plus one read: recv_msg reserves 64 KiB while a
     * message is incomplete, which then only fails when memory is short. */
    tp_buf_init(&c.in, TP_CONSOLE_MAX_OUT + TP_CONSOLE_HEADER + 65536);
    c.L = local_state(home);
    if (!c.L) {
        complain("cannot create a Lua state");
        return 1;
    }
    lua_State *L = c.L;
    int status = 1;
    char *script = NULL;
    if (hash) {
        status = hash_password(L);
        goto done;
    }

    /* Where the server listens. */
    char *path = NULL;
    if (sock) {
        path = strdup(sock);
    } else {
        lua_newtable(L);
        lua_pushstring(L, home);
        lua_setfield(L, -2, "home");
        if (config) {
            lua_pushstring(L, config);
            lua_setfield(L, -2, "config");
        }
        if (data) {
            lua_pushstring(L, data);
            lua_setfield(L, -2, "data");
        }
        if (call_client_lua(L, "socket_path") != 0 || lua_isnil(L, -2)) {
            complain("%s", lua_tostring(L, -1));
            goto done;
        }
        path = strdup(lua_tostring(L, -2));
        lua_pop(L, 2);
    }
    if (!path)
        goto done;
    int crc = connect_console(&c, path);
    free(path);
    if (crc != 0)
        goto done;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);      /* no SA_RESTART: poll wakes up */

    /* The banner comes first; it also tells that the server accepted us
     * (a refusal is an error message). */
    char t;
    const char *p;
    size_t n;
    int rc = recv_msg(&c, &t, &p, &n);
    if (rc == MSG_SIGINT) {
        status = EXIT_GAVE_UP;
        goto done;
    }
    if (rc != MSG_OK || t == TP_CONSOLE_ERROR) {
        if (rc == MSG_OK)
            write_text(stderr, p, n, true);
        else
            complain("the server closed the console");
        goto done;
    }

    if (backup_dir) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "return backup(");
        /* Made absolute here: the server would resolve a relative path
         * from its own folder (a daemon's is /), not ours. */
        if (backup_dir[0] != '/') {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd)) {
                complain("getcwd: %s", strerror(errno));
                goto done;
            }
            lua_pushfstring(L, "%s/%s", cwd, backup_dir);
            add_quoted(&b, lua_tostring(L, -1));
            lua_pop(L, 1);
        } else {
            add_quoted(&b, backup_dir);
        }
        luaL_addstring(&b, ")");
        luaL_pushresult(&b);
        size_t len;
        const char *code = lua_tolstring(L, -1, &len);
        rc = run_chunk(&c, TP_CONSOLE_EVAL, code, len);
    } else if (eval) {
        rc = run_chunk(&c, TP_CONSOLE_EVAL, eval, strlen(eval));
    } else if (!isatty(STDIN_FILENO)) {
        size_t len;
        script = read_all(stdin, &len);
        if (!script)
            goto done;
        rc = run_chunk(&c, TP_CONSOLE_SCRIPT, script, len);
    } else {
        c.interactive = true;
        status = repl(&c, quiet ? "" : p, quiet ? 0 : n);
        goto done;
    }
    if (rc == MSG_CLOSED) {
        complain("the server closed the console before answering");
        status = 1;
    } else {
        status = rc;
    }
done:
    free(script);
    free(c.hist_path);
    if (c.fd >= 0)
        close(c.fd);
    tp_buf_free(&c.in);
    lua_close(L);
    return status;
}
