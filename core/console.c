/*
 * console.c: the admin console's socket, sessions and interruptible runs
 * (module tp.console; see console.h for the protocol and the Lua API).
 *
 * Sessions are connections of the connection layer (conn.h): a pipe over
 * the plain transport, with the console's message framing as their
 * protocol (console_proto). conn.c reads, writes, bounds the buffers and
 * closes (shutdown, then a linger timer); what is left here is the socket
 * file, the peer check, the framing, the Lua handlers and the runs.
 *
 * Ownership: the listener lives in a Lua userdata that holds its pipe; a
 * registry reference anchors it until the pipe's close callback has run.
 * A session is a Lua userdata (SESSION_MT) and a tp_conn_t: the conn's ud
 * points at the session, the session at its conn until conn.c frees it.
 * A registry reference anchors the session's userdata from the accept
 * until the conn's memory goes (console_freed), so a conn never points at
 * a collected session. If the conn's handles are closed by someone else
 * (main.c's final walk closes every handle with no callback), conn.c never
 * frees it: the session's __gc does, when main.c closes the Lua state
 * after the loop has run those closes.
 *
 * Invariants:
 *  - The socket file is created with mode 0600 before listen(2), so no one
 *    but the server's user (and root) can ever connect; peers are checked
 *    again by SO_PEERCRED and refused when they are anyone else. The file
 *    is removed when the listener closes, if it is still the one made here.
 *  - Every length read from a peer is checked against TP_CONSOLE_MAX_IN
 *    before the payload is buffered; the input buffer is capped at one
 *    largest message plus one read.
 *  - A message's payload is copied into Lua and consumed from the input
 *    buffer before its handler runs, so the handler (and the hook, which
 *    appends to the same buffer) never sees a stale pointer.
 *  - Output is written at once, even while input is being handled (a
 *    command's output streams while it runs); at most WRITE_BACKLOG bytes
 *    wait to be written, a message past that is refused.
 *  - Lua is entered from libuv callbacks only through lua_cpcall plus
 *    tp_lua_pcall_logged: an error is a log line, never a stopped server.
 *  - One run at a time (console.run refuses to nest). While it runs a
 *    count hook reads the session's socket itself (the loop is not
 *    running), keeps any bytes for later, and acts on an interrupt
 *    message; it also watches the time slice. A stop yields the coroutine
 *    out from under the code (so pcall cannot swallow it) when nothing but
 *    Lua functions, pcall and xpcall are on its stack; otherwise it raises,
 *    and raises again at every later hook until the code gives up.
 */
#include "console.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <lauxlib.h>
#include <uv.h>

#include "lua_util.h"
#include "budget.h"
#include "buf.h"
#include "conn.h"
#include "listener.h"
#include "log.h"

#define LISTENER_MT "tp.console.listener"
#define SESSION_MT "tp.console.session"
#define PCALL_KEY "tp.console.pcall"
#define XPCALL_KEY "tp.console.xpcall"

#define HOOK_EVERY 1000                 /* instructions between hooks */
#define POLL_EVERY_NS (20 * 1000000ull) /* socket checks while running */
#define WRITE_BACKLOG (64u << 20)       /* unsent bytes before refusing */

typedef struct session session_t;

typedef struct listener {
    uv_pipe_t pipe;            /* the listening socket */
    lua_State *L;              /* the main Lua state */
    int handlers_ref;          /* registry ref of { open, message, close } */
    int self_ref;              /* anchors the userdata until closed */
    bool closed;               /* close started */
    bool unlinked;             /* the socket file is gone */
    dev_t dev;                 /* identity of the socket file made here */
    ino_t ino;
    uint64_t next_id;          /* session ids, from 1 */
    session_t *sessions;       /* open sessions */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* socket file */
} listener_t;

struct session {
    tp_conn_t *conn;           /* its connection; NULL once freed */
    lua_State *L;              /* the main Lua state */
    listener_t *lst;           /* owner while listed, else NULL */
    int handlers_ref;          /* registry ref of the handlers table */
    int self_ref;              /* anchors the userdata until conn is freed */
    uint64_t id;               /* listener-unique id, for logs */
    uid_t uid;                 /* peer credentials */
    gid_t gid;
    pid_t pid;
    char user[64];             /* the uid's login name */
    bool close_notified;       /* the close handler has run (or must not:
                                  Lua never saw the session) */
    bool in_process;           /* handlers running for this session */
    bool interrupt;            /* an interrupt message arrived */
    session_t *prev, *next;    /* listener's list */
};

/* The run in progress (console.run); NULL between runs. */
typedef struct run {
    session_t *s;              /* whose Ctrl-C stops it, or NULL */
    tp_interrupt_t *intr;      /* or this flag's (the SSH console) */
    lua_State *co;             /* the coroutine being resumed */
    uint64_t start_ns;         /* start of the slice */
    uint64_t slice_ns;         /* 0: no limit */
    uint64_t next_poll_ns;     /* next socket check */
    const char *reason;        /* why it is being stopped, or NULL */
    bool yielded_out;          /* the hook yielded co away */
    tp_budget_t budget;        /* its budget; check: run_check */
} run_t;

static run_t *running;

/* What a session is held to on the connection layer: one largest message
 * in (plus one read), WRITE_BACKLOG bytes out (more is refused before it
 * is queued: session_write), no login deadline, and no stall disconnect:
 * a command's output may wait on a slow terminal, bounded by the backlog,
 * and a session that only reads nothing costs nothing. */
static const tp_limits_t console_limits = {
    .max_frame = TP_CONSOLE_MAX_IN + TP_CONSOLE_HEADER,
    .output_high = WRITE_BACKLOG,
    .output_max = WRITE_BACKLOG,
};

/* ------------------------------------------------------------ helpers */

static lua_State *main_state(lua_State *L)
{
    return tp_lua_main(L);
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* Whether the session's connection is closing or gone. */
static bool session_closed(const session_t *s)
{
    return !s->conn || s->conn->closing;
}

/* ------------------------------------------------------------ writing */

/* Queues one message and writes it at once, even while the session's
 * input is being handled (the output of a command streams while it
 * runs). Returns 0, or -1 when the session is closing, its backlog is
 * full or memory is short. */
static int session_write(session_t *s, char type, const char *p, size_t n)
{
    tp_conn_t *c = s->conn;
    if (session_closed(s) || uv_is_closing((uv_handle_t *)&c->stream))
        return -1;
    if (n > TP_CONSOLE_MAX_OUT ||
        tp_conn_output_room(c) < TP_CONSOLE_HEADER + n)
        return -1;
    if (!tp_buf_reserve(&c->out, TP_CONSOLE_HEADER + n))
        return -1;
    uint8_t *m = c->out.data + c->out.len;
    m[0] = (uint8_t)type;
    tp_put_u32(m + 1, (uint32_t)n);
    if (n)
        memcpy(m + TP_CONSOLE_HEADER, p, n);
    c->out.len += TP_CONSOLE_HEADER + n;
    tp_conn_flush_now(c);
    return c->closing ? -1 : 0;
}

/* ------------------------------------------------------------ closing */

/* Takes s off its listener's list (once). */
static void session_unlink(session_t *s)
{
    listener_t *lst = s->lst;
    if (!lst)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        lst->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->lst = NULL;
}

/* Drops the registry references: the userdata may go now. */
static void session_unanchor(session_t *s)
{
    lua_State *L = s->L;
    luaL_unref(L, LUA_REGISTRYINDEX, s->handlers_ref);
    s->handlers_ref = LUA_NOREF;
    int ref = s->self_ref;
    s->self_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

/* Runs handlers.close(session) (protected; called once). */
static int close_trampoline(lua_State *L)
{
    session_t *s = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
    lua_pushliteral(L, "close");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1))
        return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
    tp_lua_pcall_logged(L, 1, "console close handler");
    return 0;
}

/* The connection starts closing (conn.c; once): the log line, off the
 * listener's list, the Lua close handler (unless Lua never saw it).
 * conn.c then writes what is queued and shuts the socket down. */
static void console_closed(tp_conn_t *c, const char *reason)
{
    session_t *s = c->ud;
    tp_log_info("console", "session=%llu user=%s closed reason=\"%s\"",
                (unsigned long long)s->id, s->user, reason ? reason : "");
    session_unlink(s);
    if (!s->close_notified) {
        s->close_notified = true;
        if (lua_cpcall(s->L, close_trampoline, s) != 0) {
            tp_log_error("console", "session=%llu close handler: %s",
                         (unsigned long long)s->id,
                         lua_tostring(s->L, -1));
            lua_pop(s->L, 1);
        }
    }
}

/* The connection's memory goes (conn.c): so may the session's. */
static void console_freed(tp_conn_t *c)
{
    session_t *s = c->ud;
    s->conn = NULL;
    session_unlink(s);
    session_unanchor(s);
}

/* ------------------------------------------------------------ input */

/* Runs handlers.message(session, type, payload) for the message at the
 * head of the input, consuming it first. */
static int message_trampoline(lua_State *L)
{
    session_t *s = lua_touserdata(L, 1);
    tp_buf_t *in = &s->conn->in;
    uint32_t len = tp_get_u32(in->data + 1);
    char type = (char)in->data[0];
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
    lua_pushliteral(L, "message");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
    lua_pushlstring(L, &type, 1);
    lua_pushlstring(L, (const char *)in->data + TP_CONSOLE_HEADER, len);
    tp_buf_consume(in, TP_CONSOLE_HEADER + (size_t)len);
    tp_lua_pcall_logged(L, 3, "console message handler");
    return 0;
}

/* The protocol's input (conn.c): hands every whole message in the input
 * to Lua, in order, each consumed before its handler runs (a run's hook
 * appends to the input meanwhile), so nothing is left for conn.c to
 * consume. conn.c closes the session at the end of its input. */
static size_t console_input(tp_conn_t *c, bool *held)
{
    session_t *s = c->ud;
    if (s->in_process) {
        *held = true;
        return 0;
    }
    s->in_process = true;
    while (!c->closing && c->in.len >= TP_CONSOLE_HEADER) {
        uint32_t len = tp_get_u32(c->in.data + 1);
        if (len > TP_CONSOLE_MAX_IN) {
            tp_log_warn("console", "session=%llu sent a message of %u "
                        "bytes (at most %u): closing",
                        (unsigned long long)s->id, len, TP_CONSOLE_MAX_IN);
            static const char msg[] = "message too big";
            session_write(s, TP_CONSOLE_ERROR, msg, sizeof msg - 1);
            tp_conn_close(c, "message too big");
            break;
        }
        if (c->in.len - TP_CONSOLE_HEADER < len)
            break;
        if (lua_cpcall(s->L, message_trampoline, s) != 0) {
            tp_log_error("console", "session=%llu: %s",
                         (unsigned long long)s->id,
                         lua_tostring(s->L, -1));
            lua_pop(s->L, 1);
            tp_conn_close(c, "internal error");
            break;
        }
    }
    s->in_process = false;
    return 0;
}

/* What console sessions carry on the connection layer. */
static const tp_conn_proto_t console_proto = {
    .name = "console", .stats = false, .input = console_input,
    .closed = console_closed, .freed = console_freed,
};

/* ------------------------------------------------------------ accept */

typedef struct accept_call {
    listener_t *lst;           /* where it came from */
    session_t *s;              /* the new session, once created */
} accept_call_t;

/* Creates the session userdata, anchored. Protected: the only things that
 * can raise are allocations, before any handle exists. */
static int accept_trampoline(lua_State *L)
{
    accept_call_t *ac = lua_touserdata(L, 1);
    listener_t *lst = ac->lst;
    session_t *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->self_ref = LUA_NOREF;
    s->handlers_ref = LUA_NOREF;
    luaL_getmetatable(L, SESSION_MT);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setfenv(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lst->handlers_ref);
    s->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* pops the userdata */
    s->L = lst->L;
    ac->s = s;
    return 0;
}

static void set_peer(session_t *s)
{
    s->uid = (uid_t)-1;
    s->gid = (gid_t)-1;
    snprintf(s->user, sizeof s->user, "?");
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->conn->stream, &fd) != 0)
        return;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        len != sizeof cred)
        return;
    s->uid = cred.uid;
    s->gid = cred.gid;
    s->pid = cred.pid;
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(cred.uid, &pw, buf, sizeof buf, &found) == 0 && found)
        snprintf(s->user, sizeof s->user, "%s", found->pw_name);
    else
        snprintf(s->user, sizeof s->user, "uid%u", (unsigned)cred.uid);
}

static int open_trampoline(lua_State *L)
{
    session_t *s = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
    lua_pushliteral(L, "open");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1))
        return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
    tp_lua_pcall_logged(L, 1, "console open handler");
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    listener_t *lst = server->data;
    if (status < 0) {
        tp_log_warn("console", "accept on %s failed: %s", lst->path,
                    uv_strerror(status));
        return;
    }
    if (lst->closed)
        return;
    tp_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        tp_log_error("console", "cannot accept a console session: out of "
                     "memory");
        return;
    }
    accept_call_t ac = { lst, NULL };
    if (lua_cpcall(lst->L, accept_trampoline, &ac) != 0) {
        tp_log_error("console", "cannot accept a console session: %s",
                     lua_tostring(lst->L, -1));
        lua_pop(lst->L, 1);
        free(c);
        return;
    }
    session_t *s = ac.s;
    int rc = tp_conn_init(c, server->loop, TP_CONN_PIPE, &tp_transport_tcp,
                          &console_proto, &console_limits);
    if (rc != 0) {
        tp_log_error("console", "cannot accept a console session: %s",
                     uv_strerror(rc));
        free(c);
        session_unanchor(s);
        return;
    }
    c->ud = s;
    s->conn = c;
    if (uv_accept(server, &c->stream) != 0) {
        s->close_notified = true;
        tp_conn_abort(c);          /* console_freed unanchors s */
        return;
    }
    /* A session must not keep the loop alive: the server stops when its
     * players' side is done, then closes the console (on_stop). */
    tp_conn_unref(c);
    s->id = ++lst->next_id;
    c->id = s->id;
    c->accepted_ms = uv_now(server->loop);
    set_peer(s);
    snprintf(c->peer, sizeof c->peer, "console pid %d", (int)s->pid);
    s->lst = lst;
    s->next = lst->sessions;
    if (lst->sessions)
        lst->sessions->prev = s;
    lst->sessions = s;
    if (s->uid != geteuid() && s->uid != 0) {
        tp_log_warn("console", "session=%llu refused: peer uid=%d "
                    "(%s) pid=%d is not the server's user",
                    (unsigned long long)s->id, (int)s->uid, s->user,
                    (int)s->pid);
        static const char msg[] = "permission denied: the console is "
                                  "for the server's own user";
        session_write(s, TP_CONSOLE_ERROR, msg, sizeof msg - 1);
        s->close_notified = true;   /* Lua never saw it */
        tp_conn_close(c, "permission denied");
        return;
    }
    tp_log_info("console", "session=%llu user=%s uid=%d pid=%d opened",
                (unsigned long long)s->id, s->user, (int)s->uid,
                (int)s->pid);
    tp_conn_start(c);              /* no deadline: reading */
    if (lua_cpcall(s->L, open_trampoline, s) != 0) {
        tp_log_error("console", "session=%llu open handler: %s",
                     (unsigned long long)s->id, lua_tostring(s->L, -1));
        lua_pop(s->L, 1);
        tp_conn_close(c, "internal error");
    }
}

/* ------------------------------------------------------------ listener */

static void on_listener_closed(uv_handle_t *h)
{
    listener_t *lst = h->data;
    lua_State *L = lst->L;
    luaL_unref(L, LUA_REGISTRYINDEX, lst->handlers_ref);
    lst->handlers_ref = LUA_NOREF;
    int ref = lst->self_ref;
    lst->self_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

/* Removes the socket file if it is still the one this listener made. */
static void listener_unlink(listener_t *lst)
{
    if (lst->unlinked)
        return;
    lst->unlinked = true;
    struct stat st;
    if (lstat(lst->path, &st) == 0 && st.st_dev == lst->dev &&
        st.st_ino == lst->ino)
        unlink(lst->path);
}

static void listener_close(listener_t *lst)
{
    if (lst->closed)
        return;
    lst->closed = true;
    while (lst->sessions) {
        session_t *s = lst->sessions;
        session_unlink(s);
        tp_conn_close(s->conn, "console closed");
    }
    listener_unlink(lst);
    if (!uv_is_closing((uv_handle_t *)&lst->pipe))
        uv_close((uv_handle_t *)&lst->pipe, on_listener_closed);
    tp_log_info("console", "console socket %s closed", lst->path);
}

static int push_fail(lua_State *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int push_fail(lua_State *L, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* Whether a server answers on the socket at path. */
static bool socket_is_live(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    bool live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return live;
}

/* console.listen(path, handlers) -> listener | nil, err */
static int l_listen(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t plen = strlen(path);
    if (plen == 0 || plen >= sizeof(((listener_t *)0)->path))
        return push_fail(L, "console socket path %s is too long (%zu "
                         "bytes; at most %zu)", path, plen,
                         sizeof(((listener_t *)0)->path) - 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return push_fail(L, "%s exists and is not a socket; remove it "
                             "or set console_socket", path);
        if (socket_is_live(path))
            return push_fail(L, "another server answers on the console "
                             "socket %s", path);
        if (unlink(path) != 0 && errno != ENOENT)
            return push_fail(L, "cannot remove the stale console socket "
                             "%s: %s", path, strerror(errno));
        tp_log_info("console", "removed the stale console socket %s",
                    path);
    }
    /* Copy the handlers so that later changes to the caller's table do
     * not matter. */
    lua_newtable(L);
    int handlers = lua_gettop(L);
    static const char *const names[] = { "open", "message", "close" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lua_getfield(L, 2, names[i]);
        if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
            return luaL_error(L, "handlers.%s must be a function",
                              names[i]);
        lua_setfield(L, handlers, names[i]);
    }
    listener_t *lst = lua_newuserdata(L, sizeof *lst);
    memset(lst, 0, sizeof *lst);
    lst->handlers_ref = LUA_NOREF;
    lst->self_ref = LUA_NOREF;
    lst->closed = true;           /* until listening */
    lst->unlinked = true;
    memcpy(lst->path, path, plen + 1);
    lst->L = main_state(L);
    luaL_getmetatable(L, LISTENER_MT);
    lua_setmetatable(L, -2);
    uv_loop_t *loop = tp_lua_loop(L);
    uv_pipe_init(loop, &lst->pipe, 0);
    lst->pipe.data = lst;
    lua_pushvalue(L, -1);
    lst->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, handlers);
    lst->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* Until it has its final mode, the socket cannot be connected to:
     * connect(2) fails before listen(2). */
    int rc = uv_pipe_bind(&lst->pipe, path);
    const char *step = "bind";
    if (rc == 0) {
        lst->unlinked = false;
        step = "chmod";
        if (chmod(path, 0600) != 0)
            rc = uv_translate_sys_error(errno);
    }
    if (rc == 0) {
        step = "stat";
        if (stat(path, &st) != 0) {
            rc = uv_translate_sys_error(errno);
        } else {
            lst->dev = st.st_dev;
            lst->ino = st.st_ino;
        }
    }
    if (rc == 0) {
        step = "listen";
        rc = uv_listen((uv_stream_t *)&lst->pipe, 128, on_connection);
    }
    if (rc != 0) {
        listener_unlink(lst);
        uv_close((uv_handle_t *)&lst->pipe, on_listener_closed);
        return push_fail(L, "cannot open the console socket %s (%s): %s",
                         path, step, uv_strerror(rc));
    }
    lst->closed = false;
    uv_unref((uv_handle_t *)&lst->pipe);
    tp_log_info("console", "console socket %s (mode 0600)", path);
    return 1;
}

static listener_t *check_listener(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LISTENER_MT);
}

static int l_listener_close(lua_State *L)
{
    listener_close(check_listener(L, 1));
    return 0;
}

/* __gc: only at lua_close, when the loop has closed every handle. */
static int l_listener_gc(lua_State *L)
{
    listener_t *lst = check_listener(L, 1);
    listener_unlink(lst);
    return 0;
}

static int l_listener_index(lua_State *L)
{
    listener_t *lst = check_listener(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "close") == 0) {
        lua_pushcfunction(L, l_listener_close);
    } else if (strcmp(key, "path") == 0) {
        lua_pushstring(L, lst->path);
    } else if (strcmp(key, "closed") == 0) {
        lua_pushboolean(L, lst->closed);
    } else {
        lua_pushnil(L);
    }
    return 1;
}

/* ------------------------------------------------------------ sessions */

static session_t *check_session(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SESSION_MT);
}

/* session:send(type, text) -> true | false, why */
static int l_session_send(lua_State *L)
{
    session_t *s = check_session(L, 1);
    size_t tl, n;
    const char *type = luaL_checklstring(L, 2, &tl);
    const char *text = luaL_checklstring(L, 3, &n);
    if (tl != 1)
        return luaL_argerror(L, 2, "one character");
    if (session_closed(s)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (n > TP_CONSOLE_MAX_OUT)
        return luaL_argerror(L, 3, "message too big");
    if (session_write(s, type[0], text, n) != 0) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "output backlog full");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_session_close(lua_State *L)
{
    session_t *s = check_session(L, 1);
    if (!session_closed(s) && s->handlers_ref != LUA_NOREF)
        tp_conn_close(s->conn, luaL_optstring(L, 2, "closed by server"));
    return 0;
}

/* __gc: only at lua_close when the connection is still there: main.c's
 * final walk closed its handles with no callback, so conn.c never freed
 * it (see the file comment). */
static int l_session_gc(lua_State *L)
{
    session_t *s = check_session(L, 1);
    if (s->conn && tp_conn_free_closed(s->conn))
        s->conn = NULL;
    return 0;
}

static int l_session_tostring(lua_State *L)
{
    session_t *s = check_session(L, 1);
    lua_pushfstring(L, "console session #%d (%s)", (int)s->id, s->user);
    return 1;
}

static int l_session_index(lua_State *L)
{
    session_t *s = check_session(L, 1);
    const char *key = lua_tostring(L, 2);
    if (tp_lua_object_method(L))
        return 1;
    if (key) {
        if (strcmp(key, "id") == 0) {
            lua_pushnumber(L, (lua_Number)s->id);
            return 1;
        } else if (strcmp(key, "uid") == 0) {
            lua_pushnumber(L, (lua_Number)(int)s->uid);
            return 1;
        } else if (strcmp(key, "gid") == 0) {
            lua_pushnumber(L, (lua_Number)(int)s->gid);
            return 1;
        } else if (strcmp(key, "pid") == 0) {
            lua_pushnumber(L, (lua_Number)s->pid);
            return 1;
        } else if (strcmp(key, "user") == 0) {
            lua_pushstring(L, s->user);
            return 1;
        } else if (strcmp(key, "closed") == 0) {
            lua_pushboolean(L, session_closed(s));
            return 1;
        }
    }
    return tp_lua_object_attr(L);
}


/* ------------------------------------------------------------ runs */

/* Reads what the peer sent while the loop is held up by a run, keeps it
 * for later, and takes out any interrupt message. End of input or an
 * error counts as an interrupt: no one is waiting for the result. */
static void poll_session(session_t *s)
{
    if (session_closed(s))
        return;
    tp_conn_t *c = s->conn;
    tp_buf_t *in = &c->in;
    uv_os_fd_t fd;
    if (!c->eof && uv_fileno((uv_handle_t *)&c->stream, &fd) == 0) {
        for (;;) {
            if (!tp_buf_reserve(in, 4096))
                break;      /* full: the rest waits in the socket */
            ssize_t n = recv(fd, in->data + in->len, in->cap - in->len,
                             MSG_DONTWAIT);
            if (n > 0) {
                in->len += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                c->eof = true;
                s->interrupt = true;
            }
            break;
        }
    }
    /* Take interrupts out; leave everything else in order. A message
     * over the cap stops the scan: console_input refuses it later. */
    size_t off = 0;
    while (in->len - off >= TP_CONSOLE_HEADER) {
        uint32_t len = tp_get_u32(in->data + off + 1);
        if (len > TP_CONSOLE_MAX_IN ||
            in->len - off - TP_CONSOLE_HEADER < len)
            break;
        size_t whole = TP_CONSOLE_HEADER + (size_t)len;
        if (in->data[off] == TP_CONSOLE_INTERRUPT) {
            s->interrupt = true;
            memmove(in->data + off, in->data + off + whole,
                    in->len - off - whole);
            in->len -= whole;
        } else {
            off += whole;
        }
    }
}

/* Whether co can be yielded from the hook: only Lua functions, pcall and
 * xpcall (which LuaJIT can unwind) between the hook and the resume. */
static bool can_yield(lua_State *co)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(co, level, &ar); level++) {
        if (!lua_getinfo(co, "Sf", &ar))
            return false;
        bool ok = true;
        if (strcmp(ar.what, "C") == 0) {
            lua_getfield(co, LUA_REGISTRYINDEX, PCALL_KEY);
            lua_getfield(co, LUA_REGISTRYINDEX, XPCALL_KEY);
            ok = lua_rawequal(co, -1, -3) || lua_rawequal(co, -2, -3);
            lua_pop(co, 2);
        }
        lua_pop(co, 1);
        if (!ok)
            return false;
    }
    return true;
}

/* The run's budget check (budget.h): Ctrl-C, the session gone, the time
 * slice. A stop yields co out from under the code when it can (pcall
 * cannot swallow that); otherwise the budget raises, at every instruction
 * from then on. */
static tp_budget_verdict_t run_check(tp_budget_t *b, lua_State *L)
{
    run_t *r = b->ud;
    uint64_t now = now_ns();
    if (!r->reason) {
        if (r->s && now >= r->next_poll_ns) {
            r->next_poll_ns = now + POLL_EVERY_NS;
            poll_session(r->s);
        }
        if (r->s && r->s->interrupt)
            r->reason = !r->s->conn || r->s->conn->eof
                        ? "the console went away" : "interrupted (Ctrl-C)";
        else if (r->intr && atomic_load(&r->intr->gone))
            r->reason = "the console went away";
        else if (r->intr && atomic_load(&r->intr->pending))
            r->reason = "interrupted (Ctrl-C)";
        else if (r->slice_ns && now - r->start_ns > r->slice_ns)
            r->reason = "time slice";
        if (!r->reason)
            return TP_BUDGET_GO_ON;
    }
    if (L == r->co && can_yield(L)) {
        r->yielded_out = true;
        lua_yield(L, 0);
        return TP_BUDGET_YIELDED;
    }
    if (strcmp(r->reason, "time slice") == 0)
        snprintf(b->why, sizeof b->why, "interrupted: the command ran for "
                 "more than %.1f s while the server waited (see "
                 "timeslice())", (double)r->slice_ns / 1e9);
    else
        snprintf(b->why, sizeof b->why, "%s", r->reason);
    return TP_BUDGET_STOP;
}

static void run_budget_push(run_t *r)
{
    r->budget = (tp_budget_t){ .every = HOOK_EVERY, .check = run_check,
                               .ud = r, .what = "console command" };
    tp_budget_push(r->co, &r->budget);
}

/* console.run(session | nil, co, slice, ...) -> status, ... */
static int l_run(lua_State *L)
{
    tp_interrupt_t *intr = lua_islightuserdata(L, 1)
                           ? lua_touserdata(L, 1) : NULL;
    session_t *s = lua_isnil(L, 1) || intr ? NULL : check_session(L, 1);
    luaL_checktype(L, 2, LUA_TTHREAD);
    lua_State *co = lua_tothread(L, 2);
    lua_Number slice = luaL_checknumber(L, 3);
    if (slice < 0 || slice > 1e6)
        return luaL_argerror(L, 3, "0 to 1e6 seconds");
    if (running)
        return luaL_error(L, "a console command is already running");
    if (co == L)
        return luaL_argerror(L, 2, "cannot run the running coroutine");
    int st = lua_status(co);
    if (st != 0 && st != LUA_YIELD)
        return luaL_argerror(L, 2, "dead coroutine");
    if (st == 0 && lua_gettop(co) == 0)
        return luaL_argerror(L, 2, "dead coroutine");
    int nargs = lua_gettop(L) - 3;
    if (!lua_checkstack(co, nargs + LUA_MINSTACK))
        return luaL_error(L, "stack overflow");
    lua_xmove(L, co, nargs);
    uint64_t now = now_ns();
    run_t run = { .s = s, .intr = intr, .co = co, .start_ns = now,
                  .slice_ns = (uint64_t)(slice * 1e9),
                  .next_poll_ns = now + POLL_EVERY_NS };
    if (s)
        s->interrupt = false;   /* a late Ctrl-C for the last command */
    if (intr)
        atomic_store(&intr->pending, 0);
    running = &run;
    run_budget_push(&run);
    int rc = lua_resume(co, nargs);
    tp_budget_pop(co, &run.budget);
    running = NULL;
    int base = lua_gettop(L);
    if (rc == LUA_YIELD && run.yielded_out) {
        lua_pushliteral(L, "interrupted");
        char msg[160];
        if (strcmp(run.reason, "time slice") == 0)
            snprintf(msg, sizeof msg, "interrupted: the command ran for "
                     "more than %.1f s while the server waited (see "
                     "timeslice())", (double)run.slice_ns / 1e9);
        else
            snprintf(msg, sizeof msg, "%s", run.reason);
        lua_pushstring(L, msg);
    } else if (rc != 0 && rc != LUA_YIELD) {
        /* Only the error object: the rest of co's stack is its frames. */
        lua_pushliteral(L, "error");
        lua_xmove(co, L, 1);
    } else {
        int n = lua_gettop(co);
        if (!lua_checkstack(L, n + 1)) {
            lua_settop(co, 0);
            return luaL_error(L, "stack overflow");
        }
        lua_pushstring(L, rc == 0 ? "ok" : "yield");
        lua_xmove(co, L, n);
    }
    /* What the hook read meanwhile is handled from the loop, not from
     * inside this call. */
    if (s && !session_closed(s) && (s->conn->in.len > 0 || s->conn->eof))
        tp_conn_resume_soon(s->conn);
    return lua_gettop(L) - base;
}

/* console.unhooked(fn, ...) -> fn's results: fn runs without the run's
 * budget (an empty budget suspends it), and its time is not counted
 * against the slice. */
static int l_unhooked(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    run_t *r = running;
    uint64_t paused = now_ns();
    tp_budget_t none = { .what = "unhooked" };
    tp_budget_push(L, &none);
    int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    tp_budget_pop(L, &none);
    if (r && running == r)
        r->start_ns += now_ns() - paused;
    if (rc != 0)
        return lua_error(L);
    return lua_gettop(L);
}

/* console.set_slice(seconds): changes the slice of the run in progress
 * (0: no limit); nothing when none runs. */
static int l_set_slice(lua_State *L)
{
    lua_Number slice = luaL_checknumber(L, 1);
    if (slice < 0 || slice > 1e6)
        return luaL_argerror(L, 1, "0 to 1e6 seconds");
    if (running)
        running->slice_ns = (uint64_t)(slice * 1e9);
    return 0;
}

/* ------------------------------------------------------------ log hook */

#define LOGQ_SIZE 256
#define LOG_TEXT_MAX 1024

typedef struct log_line {
    double time;                 /* Unix time of the line */
    int level;                   /* tp_log_level_t */
    char module[24];             /* module name */
    char text[LOG_TEXT_MAX];     /* message, cut to fit */
} log_line_t;

static struct {
    pthread_mutex_t lock;        /* guards everything below */
    bool active;                 /* the sink is installed */
    uv_async_t async;            /* wakes the loop; closed by main.c's
                                    final walk (static memory) */
    bool async_open;             /* async initialised */
    lua_State *L;                /* the main state */
    int fn_ref;                  /* the Lua function */
    unsigned head, count;        /* ring of pending lines */
    uint64_t dropped;            /* lines lost since the last delivery */
    log_line_t lines[LOGQ_SIZE];
} logq = { .lock = PTHREAD_MUTEX_INITIALIZER, .fn_ref = LUA_NOREF };

/* Set while this thread delivers lines to Lua: what is logged meanwhile
 * (for instance by sending a LogMessage) is not queued again. */
static _Thread_local bool delivering;

static void log_sink(tp_log_level_t level, const char *module,
                     const char *text, size_t len, void *arg)
{
    if (delivering)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    pthread_mutex_lock(&logq.lock);
    if (logq.active) {
        if (logq.count == LOGQ_SIZE) {
            logq.dropped++;
        } else {
            log_line_t *l = &logq.lines[(logq.head + logq.count) %
                                        LOGQ_SIZE];
            l->time = (double)tv.tv_sec + tv.tv_usec / 1e6;
            l->level = (int)level;
            snprintf(l->module, sizeof l->module, "%s",
                     module ? module : "-");
            if (len >= sizeof l->text)
                len = sizeof l->text - 1;
            memcpy(l->text, text, len);
            l->text[len] = '\0';
            logq.count++;
        }
        uv_async_send(&logq.async);
    }
    pthread_mutex_unlock(&logq.lock);
}

static int log_deliver_trampoline(lua_State *L)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, logq.fn_ref);
    if (!lua_isfunction(L, -1))
        return 0;
    lua_newtable(L);
    int t = lua_gettop(L);
    int n = 0;
    uint64_t dropped;
    log_line_t line;
    for (;;) {
        pthread_mutex_lock(&logq.lock);
        bool any = logq.count > 0;
        if (any) {
            line = logq.lines[logq.head];
            logq.head = (logq.head + 1) % LOGQ_SIZE;
            logq.count--;
        }
        dropped = logq.dropped;
        if (!any)
            logq.dropped = 0;
        pthread_mutex_unlock(&logq.lock);
        if (!any)
            break;
        lua_createtable(L, 0, 4);
        lua_pushnumber(L, line.time);
        lua_setfield(L, -2, "time");
        lua_pushstring(L, tp_log_level_name((tp_log_level_t)line.level));
        lua_setfield(L, -2, "level");
        lua_pushstring(L, line.module);
        lua_setfield(L, -2, "module");
        lua_pushstring(L, line.text);
        lua_setfield(L, -2, "text");
        lua_rawseti(L, t, ++n);
    }
    lua_pushnumber(L, (lua_Number)dropped);
    tp_lua_pcall_logged(L, 2, "console log hook");
    return 0;
}

static void on_log_async(uv_async_t *a)
{
    if (logq.fn_ref == LUA_NOREF)
        return;
    delivering = true;
    if (lua_cpcall(logq.L, log_deliver_trampoline, NULL) != 0)
        lua_pop(logq.L, 1);    /* out of memory: the lines are gone */
    delivering = false;
}

/* console.log_hook(fn | nil) */
static int l_log_hook(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TFUNCTION);
    if (logq.fn_ref != LUA_NOREF) {
        tp_log_set_sink_fn(NULL, NULL);
        pthread_mutex_lock(&logq.lock);
        logq.active = false;
        logq.count = 0;
        logq.dropped = 0;
        pthread_mutex_unlock(&logq.lock);
        luaL_unref(L, LUA_REGISTRYINDEX, logq.fn_ref);
        logq.fn_ref = LUA_NOREF;
    }
    if (lua_isnoneornil(L, 1))
        return 0;
    if (!logq.async_open) {
        if (uv_async_init(tp_lua_loop(L), &logq.async, on_log_async) != 0)
            return luaL_error(L, "cannot create the log hook's async "
                              "handle");
        uv_unref((uv_handle_t *)&logq.async);
        logq.async_open = true;
    }
    lua_pushvalue(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    logq.L = main_state(L);
    logq.fn_ref = ref;
    pthread_mutex_lock(&logq.lock);
    logq.active = true;
    logq.head = logq.count = 0;
    logq.dropped = 0;
    pthread_mutex_unlock(&logq.lock);
    tp_log_set_sink_fn(log_sink, NULL);
    return 0;
}

/* ------------------------------------------------------------ module */

int luaopen_tp_console(lua_State *L)
{
    if (luaL_newmetatable(L, LISTENER_MT)) {
        lua_pushcfunction(L, l_listener_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_listener_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    static const luaL_Reg methods[] = {
        { "send", l_session_send },
        { "close", l_session_close },
        { NULL, NULL }
    };
    tp_lua_object_class(L, SESSION_MT, methods, l_session_index,
                        l_session_gc, l_session_tostring);
    /* The real pcall and xpcall, whatever the console does to _G. */
    lua_getglobal(L, "pcall");
    lua_setfield(L, LUA_REGISTRYINDEX, PCALL_KEY);
    lua_getglobal(L, "xpcall");
    lua_setfield(L, LUA_REGISTRYINDEX, XPCALL_KEY);
    static const luaL_Reg fns[] = {
        { "listen", l_listen },
        { "run", l_run },
        { "unhooked", l_unhooked },
        { "set_slice", l_set_slice },
        { "log_hook", l_log_hook },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_pushinteger(L, TP_CONSOLE_MAX_IN);
    lua_setfield(L, -2, "MAX_IN");
    return 1;
}
