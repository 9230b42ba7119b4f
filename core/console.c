/*
 * console.c: the admin console's socket, sessions and interruptible runs
 * (module tp.console; see console.h for the protocol and the Lua API).
 *
 * Ownership: a listener and each session live in a Lua userdata that
 * holds their libuv handles; a registry reference anchors the userdata
 * from the moment the handles are initialised until their last close
 * callback has run, so libuv never sees freed memory. If the handles are
 * closed by someone else (main.c's final walk closes every handle with no
 * callback) the memory simply goes with the Lua state, which main.c closes
 * after the loop has run those closes; __gc then frees the input buffer.
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
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <lauxlib.h>
#include <uv.h>

#include "bridge.h"
#include "budget.h"
#include "buf.h"
#include "log.h"

#define LISTENER_MT "tp.console.listener"
#define SESSION_MT "tp.console.session"
#define PCALL_KEY "tp.console.pcall"
#define XPCALL_KEY "tp.console.xpcall"
/* bridge.c keeps its tp_lua_t under this registry key. */
#define BRIDGE_KEY "tp.bridge"

#define READ_CHUNK 65536
#define LINGER_MS 5000
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
    uv_pipe_t pipe;            /* the connection */
    uv_timer_t timer;          /* deferred input processing; linger */
    lua_State *L;              /* the main Lua state */
    listener_t *lst;           /* owner while listed, else NULL */
    int handlers_ref;          /* registry ref of the handlers table */
    int self_ref;              /* anchors the userdata until closed */
    int handles_open;          /* handles not yet closed */
    uint64_t id;               /* listener-unique id, for logs */
    uid_t uid;                 /* peer credentials */
    gid_t gid;
    pid_t pid;
    char user[64];             /* the uid's login name */
    tp_buf_t in;               /* unprocessed input */
    size_t write_pending;      /* bytes handed to libuv, not yet written */
    bool reading;              /* uv_read_start in effect */
    bool eof;                  /* the peer will send no more */
    bool closing;              /* close started */
    bool close_notified;       /* the close handler has run */
    bool in_process;           /* handlers running for this session */
    bool interrupt;            /* an interrupt message arrived */
    session_t *prev, *next;    /* listener's list */
};

typedef struct write_req {
    uv_write_t req;            /* libuv request */
    session_t *s;              /* owner */
    size_t len;                /* bytes in data */
    uint8_t data[];            /* the message */
} write_req_t;

/* The run in progress (console.run); NULL between runs. */
typedef struct run {
    session_t *s;              /* whose Ctrl-C stops it, or NULL */
    lua_State *co;             /* the coroutine being resumed */
    uint64_t start_ns;         /* start of the slice */
    uint64_t slice_ns;         /* 0: no limit */
    uint64_t next_poll_ns;     /* next socket check */
    const char *reason;        /* why it is being stopped, or NULL */
    bool yielded_out;          /* the hook yielded co away */
    tp_budget_t budget;        /* its budget; check: run_check */
} run_t;

static run_t *running;

/* ------------------------------------------------------------ helpers */

static lua_State *main_state(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, BRIDGE_KEY);
    tp_lua_t *lx = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lx && lx->L ? lx->L : L;
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ------------------------------------------------------------ writing */

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    w->s->write_pending -= w->len;
    free(w);
}

/* Queues one message. Returns 0, or -1 when the session is closing, its
 * backlog is full or memory is short. */
static int session_write(session_t *s, char type, const char *p, size_t n)
{
    if (s->closing || uv_is_closing((uv_handle_t *)&s->pipe))
        return -1;
    if (n > TP_CONSOLE_MAX_OUT || s->write_pending + n > WRITE_BACKLOG)
        return -1;
    write_req_t *w = malloc(sizeof *w + TP_CONSOLE_HEADER + n);
    if (!w)
        return -1;
    w->s = s;
    w->len = TP_CONSOLE_HEADER + n;
    w->data[0] = (uint8_t)type;
    tp_put_u32(w->data + 1, (uint32_t)n);
    if (n)
        memcpy(w->data + TP_CONSOLE_HEADER, p, n);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    s->write_pending += w->len;
    if (uv_write(&w->req, (uv_stream_t *)&s->pipe, &b, 1, on_write) != 0) {
        s->write_pending -= w->len;
        free(w);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ closing */

static void session_unanchor(session_t *s)
{
    if (s->handles_open > 0)
        return;
    tp_buf_free(&s->in);
    lua_State *L = s->L;
    luaL_unref(L, LUA_REGISTRYINDEX, s->handlers_ref);
    s->handlers_ref = LUA_NOREF;
    int ref = s->self_ref;
    s->self_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, ref);  /* the userdata may go now */
}

static void on_session_handle_closed(uv_handle_t *h)
{
    session_t *s = h->data;
    s->handles_open--;
    session_unanchor(s);
}

static void session_destroy(session_t *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, on_session_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->pipe))
        uv_close((uv_handle_t *)&s->pipe, on_session_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    session_t *s = req->data;
    free(req);
    if (!uv_is_closing((uv_handle_t *)&s->pipe))
        session_destroy(s);
}

static void on_linger(uv_timer_t *t)
{
    session_destroy(t->data);
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

/* Closes the session after what is queued has been written. The Lua close
 * handler runs first (once). Safe to call more than once. */
static void session_close(session_t *s, const char *why)
{
    if (s->closing)
        return;
    s->closing = true;
    tp_log_info("console", "session=%llu user=%s closed reason=\"%s\"",
                (unsigned long long)s->id, s->user, why);
    if (s->reading) {
        uv_read_stop((uv_stream_t *)&s->pipe);
        s->reading = false;
    }
    if (s->lst) {
        listener_t *lst = s->lst;
        if (s->prev)
            s->prev->next = s->next;
        else
            lst->sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->prev = s->next = NULL;
        s->lst = NULL;
    }
    if (!s->close_notified) {
        s->close_notified = true;
        if (lua_cpcall(s->L, close_trampoline, s) != 0) {
            tp_log_error("console", "session=%llu close handler: %s",
                         (unsigned long long)s->id,
                         lua_tostring(s->L, -1));
            lua_pop(s->L, 1);
        }
    }
    if (uv_is_closing((uv_handle_t *)&s->pipe))
        return;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        session_destroy(s);
        return;
    }
    req->data = s;
    if (uv_shutdown(req, (uv_stream_t *)&s->pipe, on_shutdown) != 0) {
        free(req);
        session_destroy(s);
        return;
    }
    uv_timer_start(&s->timer, on_linger, LINGER_MS, 0);
}

/* ------------------------------------------------------------ input */

static void session_process(session_t *s);

/* Runs handlers.message(session, type, payload) for the message at the
 * head of the input, consuming it first. */
static int message_trampoline(lua_State *L)
{
    session_t *s = lua_touserdata(L, 1);
    uint32_t len = tp_get_u32(s->in.data + 1);
    char type = (char)s->in.data[0];
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
    lua_pushliteral(L, "message");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
    lua_pushlstring(L, &type, 1);
    lua_pushlstring(L, (const char *)s->in.data + TP_CONSOLE_HEADER, len);
    tp_buf_consume(&s->in, TP_CONSOLE_HEADER + (size_t)len);
    tp_lua_pcall_logged(L, 3, "console message handler");
    return 0;
}

/* Hands every whole message in the input to Lua, in order. */
static void session_process(session_t *s)
{
    if (s->in_process)
        return;
    s->in_process = true;
    while (!s->closing && s->in.len >= TP_CONSOLE_HEADER) {
        uint32_t len = tp_get_u32(s->in.data + 1);
        if (len > TP_CONSOLE_MAX_IN) {
            tp_log_warn("console", "session=%llu sent a message of %u "
                        "bytes (at most %u): closing",
                        (unsigned long long)s->id, len, TP_CONSOLE_MAX_IN);
            static const char msg[] = "message too big";
            session_write(s, TP_CONSOLE_ERROR, msg, sizeof msg - 1);
            session_close(s, "message too big");
            break;
        }
        if (s->in.len - TP_CONSOLE_HEADER < len)
            break;
        if (lua_cpcall(s->L, message_trampoline, s) != 0) {
            tp_log_error("console", "session=%llu: %s",
                         (unsigned long long)s->id,
                         lua_tostring(s->L, -1));
            lua_pop(s->L, 1);
            session_close(s, "internal error");
            break;
        }
    }
    s->in_process = false;
    if (s->eof && !s->closing)
        session_close(s, "peer closed");
}

static void on_process_timer(uv_timer_t *t)
{
    session_t *s = t->data;
    if (!s->closing)
        session_process(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    session_t *s = h->data;
    size_t room = s->in.max - s->in.len;
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;
    if (want == 0 || !tp_buf_reserve(&s->in, want)) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)s->in.data + s->in.len;
    buf->len = want;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    session_t *s = st->data;
    if (nread == UV_ENOBUFS) {
        /* Only reachable while a handler holds messages back: a message
         * bigger than the cap is refused before that. */
        session_close(s, "input buffer full");
        return;
    }
    if (nread == UV_EOF) {
        s->eof = true;
        uv_read_stop(st);
        s->reading = false;
        session_process(s);
        return;
    }
    if (nread < 0) {
        session_close(s, uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || s->closing)
        return;
    s->in.len += (size_t)nread;
    session_process(s);
}

/* ------------------------------------------------------------ accept */

typedef struct accept_call {
    listener_t *lst;           /* where it came from */
    session_t *s;              /* the new session, once created */
} accept_call_t;

/* Creates the session userdata and accepts into it. Protected: the only
 * things that can raise are allocations, before any handle exists. */
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
    tp_buf_init(&s->in, TP_CONSOLE_MAX_IN + TP_CONSOLE_HEADER + READ_CHUNK);
    uv_loop_t *loop = lst->pipe.loop;
    uv_pipe_init(loop, &s->pipe, 0);
    uv_timer_init(loop, &s->timer);
    s->pipe.data = s;
    s->timer.data = s;
    s->handles_open = 2;
    ac->s = s;
    return 0;
}

static void set_peer(session_t *s)
{
    s->uid = (uid_t)-1;
    s->gid = (gid_t)-1;
    snprintf(s->user, sizeof s->user, "?");
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->pipe, &fd) != 0)
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
    accept_call_t ac = { lst, NULL };
    if (lua_cpcall(lst->L, accept_trampoline, &ac) != 0) {
        tp_log_error("console", "cannot accept a console session: %s",
                     lua_tostring(lst->L, -1));
        lua_pop(lst->L, 1);
        return;
    }
    session_t *s = ac.s;
    if (uv_accept(server, (uv_stream_t *)&s->pipe) != 0) {
        s->closing = true;
        s->close_notified = true;
        session_destroy(s);
        return;
    }
    /* A session must not keep the loop alive: the server stops when its
     * players' side is done, then closes the console (on_stop). */
    uv_unref((uv_handle_t *)&s->pipe);
    uv_unref((uv_handle_t *)&s->timer);
    s->id = ++lst->next_id;
    set_peer(s);
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
        session_close(s, "permission denied");
        return;
    }
    tp_log_info("console", "session=%llu user=%s uid=%d pid=%d opened",
                (unsigned long long)s->id, s->user, (int)s->uid,
                (int)s->pid);
    if (uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read) == 0)
        s->reading = true;
    if (lua_cpcall(s->L, open_trampoline, s) != 0) {
        tp_log_error("console", "session=%llu open handler: %s",
                     (unsigned long long)s->id, lua_tostring(s->L, -1));
        lua_pop(s->L, 1);
        session_close(s, "internal error");
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
    while (lst->sessions)
        session_close(lst->sessions, "console closed");
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
    if (s->closing) {
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
    if (!s->closing && s->handlers_ref != LUA_NOREF)
        session_close(s, luaL_optstring(L, 2, "closed by server"));
    return 0;
}

/* __gc: frees the input buffer when the handles were closed by someone
 * else (see the file comment); otherwise it is already free. */
static int l_session_gc(lua_State *L)
{
    session_t *s = check_session(L, 1);
    tp_buf_free(&s->in);
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
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));          /* methods */
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
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
            lua_pushboolean(L, s->closing);
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
    if (s->closing)
        return;
    uv_os_fd_t fd;
    if (!s->eof && uv_fileno((uv_handle_t *)&s->pipe, &fd) == 0) {
        for (;;) {
            if (!tp_buf_reserve(&s->in, 4096))
                break;      /* full: the rest waits in the socket */
            ssize_t n = recv(fd, s->in.data + s->in.len,
                             s->in.cap - s->in.len, MSG_DONTWAIT);
            if (n > 0) {
                s->in.len += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                s->eof = true;
                s->interrupt = true;
            }
            break;
        }
    }
    /* Take interrupts out; leave everything else in order. A message
     * over the cap stops the scan: session_process refuses it later. */
    size_t off = 0;
    while (s->in.len - off >= TP_CONSOLE_HEADER) {
        uint32_t len = tp_get_u32(s->in.data + off + 1);
        if (len > TP_CONSOLE_MAX_IN ||
            s->in.len - off - TP_CONSOLE_HEADER < len)
            break;
        size_t whole = TP_CONSOLE_HEADER + (size_t)len;
        if (s->in.data[off] == TP_CONSOLE_INTERRUPT) {
            s->interrupt = true;
            memmove(s->in.data + off, s->in.data + off + whole,
                    s->in.len - off - whole);
            s->in.len -= whole;
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
            r->reason = r->s->eof ? "the console went away"
                                  : "interrupted (Ctrl-C)";
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
    session_t *s = lua_isnil(L, 1) ? NULL : check_session(L, 1);
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
    run_t run = { .s = s, .co = co, .start_ns = now,
                  .slice_ns = (uint64_t)(slice * 1e9),
                  .next_poll_ns = now + POLL_EVERY_NS };
    if (s)
        s->interrupt = false;   /* a late Ctrl-C for the last command */
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
    if (s && !s->closing && (s->in.len > 0 || s->eof))
        uv_timer_start(&s->timer, on_process_timer, 0, 0);
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
