/*
 * ssh.c: the admin console's SSH listener (module tp.ssh; ssh.h has the
 * design and the Lua API).
 *
 * Why a thread per connection: libssh's server side is written around
 * blocking calls (ssh_handle_key_exchange, channel writes that wait for
 * the peer's window) and its own poll loop; driving it from libuv would
 * mean re-implementing when libssh wants to write. Its documented
 * threading rule is one session per thread at a time, which this keeps:
 * a session is set up on the loop (ssh_bind_accept_fd does no I/O) and
 * from then on used only by its thread. Sessions at once are capped
 * (max_sessions), so threads are too.
 *
 * Ownership: a session is a Lua userdata (SESSION_MT), anchored by a
 * registry reference from the accept until its thread has been joined and
 * Lua's close handler has run. The thread owns the libssh objects and
 * frees them (which closes the socket) before it posts its last event.
 * The listener is a userdata anchored until its handles' close callbacks
 * have run; closing it stops and joins every session's thread first.
 *
 * Shared state (between a session's thread and the loop) is under the
 * listener's mutex: the event queue, the output buffer, the requests to
 * exit or close, the pending authentication and its answer, fd_closed.
 * The loop wakes the thread with a byte on the session's pipe; stopping
 * a thread that is blocked inside libssh is shutdown(2) on its socket,
 * done under the mutex while the socket is still the thread's.
 */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <uv.h>

#include "console.h"
#include "listener.h"
#include "lua_util.h"
#include "log.h"

#define LISTENER_MT "tp.ssh.listener"
#define SESSION_MT "tp.ssh.session"

#define EVENT_BACKLOG (4u << 20)   /* input bytes queued for the loop */
#define OUT_BACKLOG (16u << 20)    /* output bytes waiting for the peer */
#define WRITE_CHUNK 32768          /* one channel write */
#define POLL_MS 500                /* the thread's poll, at most */
#define MAX_AUTH_TRIES 6           /* refused attempts per connection */

enum ev_type {
    EV_AUTH, EV_PTY, EV_RESIZE, EV_SHELL, EV_EXEC, EV_DATA, EV_EOF,
    EV_INTERRUPT, EV_CLOSED
};

typedef struct event {
    struct event *next;
    int type;
    int a, b;                  /* pty/resize: cols, rows */
    size_t len;
    char data[];               /* term, command, bytes, why */
} event_t;

typedef struct listener listener_t;
typedef struct sess sess_t;

struct listener {
    uv_tcp_t tcp;
    uv_async_t async;
    lua_State *L;
    ssh_bind bind;
    pthread_mutex_t mu;
    int handlers_ref;
    int self_ref;
    int open_handles;          /* tcp and async, until their close cbs */
    bool closed;
    bool passwords;
    int max_sessions;
    int login_timeout;         /* seconds */
    int port;
    char host[256];
    uint64_t next_id;
    sess_t *sessions;          /* every session not yet released */
    int nsessions;             /* of which live (thread not joined) */
};

struct sess {
    listener_t *lst;           /* NULL once released from it */
    uint64_t id;
    char peer[80];
    int fd;
    int wake[2];               /* loop -> thread */
    ssh_session session;       /* the thread's */
    ssh_channel channel;       /* the thread's */
    struct ssh_server_callbacks_struct scb;
    struct ssh_channel_callbacks_struct ccb;
    pthread_t thread;
    bool thread_started, joined;
    /* Under lst->mu: */
    event_t *evq, *evq_tail;
    size_t evq_bytes;
    char *out;
    size_t out_len, out_cap;
    char *err;                 /* the same for stderr */
    size_t err_len, err_cap;
    bool want_exit, want_close, quit, fd_closed, done;
    int exit_status;
    int auth_pending;          /* 0 none, 1 waiting, 2 answered */
    bool auth_ok;
    double auth_delay;
    pthread_cond_t cond;
    /* The thread's own: */
    bool authenticated, pty, got_request;
    int refused;
    /* Either side, atomics: */
    tp_interrupt_t intr;
    atomic_int busy;
    /* The loop's: */
    int self_ref;
    bool close_notified;
    bool lua_closed;           /* Lua's close handler has run */
    char user[128];
    char fingerprint[128];
    char why[256];             /* why the thread ended */
    sess_t *prev, *next;
};

/* ------------------------------------------------------------ helpers */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "SHA256:..." of a public key; false when libssh cannot say. */
static bool key_fingerprint(ssh_key key, char *out, size_t outlen)
{
    unsigned char *hash = NULL;
    size_t hlen = 0;
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
                               &hlen) != 0)
        return false;
    char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash,
                                        hlen);
    ssh_clean_pubkey_hash(&hash);
    if (!fp)
        return false;
    snprintf(out, outlen, "%s", fp);
    ssh_string_free_char(fp);
    return true;
}

/* Queues an event for the loop (the thread's side). Data events wait
 * while the queue is over its backlog, unless the thread must stop. */
static bool post(sess_t *s, int type, int a, int b, const void *data,
                 size_t len)
{
    listener_t *lst = s->lst;
    event_t *e = malloc(sizeof *e + len + 1);
    if (!e)
        return false;
    e->next = NULL;
    e->type = type;
    e->a = a;
    e->b = b;
    e->len = len;
    if (len)
        memcpy(e->data, data, len);
    e->data[len] = '\0';
    pthread_mutex_lock(&lst->mu);
    if (s->evq_tail)
        s->evq_tail->next = e;
    else
        s->evq = e;
    s->evq_tail = e;
    s->evq_bytes += len;
    pthread_mutex_unlock(&lst->mu);
    uv_async_send(&lst->async);
    return true;
}

static bool should_quit(sess_t *s)
{
    pthread_mutex_lock(&s->lst->mu);
    bool q = s->quit;
    pthread_mutex_unlock(&s->lst->mu);
    return q;
}

/* Waits up to seconds, or until the thread must stop. */
static void nap(sess_t *s, double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)seconds;
    until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lst->mu);
    while (!s->quit &&
           pthread_cond_timedwait(&s->cond, &s->lst->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&s->lst->mu);
}

/* ------------------------------------------------------------ thread */

/* Asks the loop (Lua) whether to let the client in; waits for the
 * answer. A refusal counts against the connection's attempts. */
static int ask_auth(sess_t *s, const char *method, const char *user,
                    ssh_key key, bool probe, const char *password)
{
    char buf[16384];
    size_t n = 0;
    char *b64 = NULL;
    char fp[128] = "";
    const char *ktype = "";
    if (key) {
        if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
            return SSH_AUTH_DENIED;
        ktype = ssh_key_type_to_char(ssh_key_type(key));
        if (!ktype)
            ktype = "unknown";
        key_fingerprint(key, fp, sizeof fp);
    }
    /* method \0 user \0 key type \0 key \0 fingerprint \0 password */
    const char *parts[] = { method, user ? user : "", ktype,
                            b64 ? b64 : "", fp, password ? password : "" };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t l = strlen(parts[i]);
        if (n + l + 1 > sizeof buf) {
            ssh_string_free_char(b64);
            return SSH_AUTH_DENIED;
        }
        memcpy(buf + n, parts[i], l + 1);
        n += l + 1;
    }
    ssh_string_free_char(b64);
    pthread_mutex_lock(&s->lst->mu);
    s->auth_pending = 1;
    pthread_mutex_unlock(&s->lst->mu);
    bool posted = post(s, EV_AUTH, probe, 0, buf, n);
    memset(buf, 0, sizeof buf);      /* the password */
    if (!posted)
        return SSH_AUTH_DENIED;
    pthread_mutex_lock(&s->lst->mu);
    while (s->auth_pending == 1 && !s->quit)
        pthread_cond_wait(&s->cond, &s->lst->mu);
    bool ok = s->auth_pending == 2 && s->auth_ok;
    double delay = s->auth_delay;
    s->auth_pending = 0;
    pthread_mutex_unlock(&s->lst->mu);
    nap(s, delay);
    if (ok && !should_quit(s))
        return SSH_AUTH_SUCCESS;
    if (!probe || !ok)
        s->refused++;
    return SSH_AUTH_DENIED;
}

static int on_auth_pubkey(ssh_session session, const char *user,
                          struct ssh_key_struct *pubkey, char state,
                          void *ud)
{
    sess_t *s = ud;
    if (s->refused >= MAX_AUTH_TRIES)
        return SSH_AUTH_DENIED;
    if (state == SSH_PUBLICKEY_STATE_WRONG) {
        s->refused++;
        return SSH_AUTH_DENIED;
    }
    bool probe = state == SSH_PUBLICKEY_STATE_NONE;
    int rc = ask_auth(s, "publickey", user, pubkey, probe, NULL);
    if (rc == SSH_AUTH_SUCCESS && !probe) {
        s->authenticated = true;
        snprintf(s->user, sizeof s->user, "%s", user);
    }
    return rc;
}

static int on_auth_password(ssh_session session, const char *user,
                            const char *password, void *ud)
{
    sess_t *s = ud;
    if (!s->lst->passwords || s->refused >= MAX_AUTH_TRIES) {
        s->refused++;
        return SSH_AUTH_DENIED;
    }
    int rc = ask_auth(s, "password", user, NULL, false, password);
    if (rc == SSH_AUTH_SUCCESS) {
        s->authenticated = true;
        snprintf(s->user, sizeof s->user, "%s", user);
    }
    return rc;
}

static int on_auth_none(ssh_session session, const char *user, void *ud)
{
    return SSH_AUTH_DENIED;
}

static int on_data(ssh_session session, ssh_channel channel, void *data,
                   uint32_t len, int is_stderr, void *ud)
{
    sess_t *s = ud;
    pthread_mutex_lock(&s->lst->mu);
    bool full = s->evq_bytes > EVENT_BACKLOG;
    pthread_mutex_unlock(&s->lst->mu);
    if (full)
        return 0;      /* libssh keeps it; the window stays shut */
    char *p = data;
    uint32_t n = len;
    if (s->pty && atomic_load(&s->busy)) {
        /* Ctrl-C while a command runs: an interrupt, not input. */
        uint32_t w = 0;
        bool hit = false;
        for (uint32_t i = 0; i < len; i++) {
            if (p[i] == 3)
                hit = true;
            else
                p[w++] = p[i];
        }
        n = w;
        if (hit) {
            atomic_store(&s->intr.pending, 1);
            post(s, EV_INTERRUPT, 0, 0, NULL, 0);
        }
    }
    if (n)
        post(s, EV_DATA, 0, 0, p, n);
    return (int)len;
}

static void on_eof(ssh_session session, ssh_channel channel, void *ud)
{
    post(ud, EV_EOF, 0, 0, NULL, 0);
}

static void on_close(ssh_session session, ssh_channel channel, void *ud)
{
    sess_t *s = ud;
    atomic_store(&s->intr.gone, 1);
}

static int on_pty(ssh_session session, ssh_channel channel,
                  const char *term, int cols, int rows, int pxw, int pxh,
                  void *ud)
{
    sess_t *s = ud;
    if (s->got_request)
        return -1;
    s->pty = true;
    post(s, EV_PTY, cols, rows, term, strlen(term));
    return 0;
}

static int on_resize(ssh_session session, ssh_channel channel, int cols,
                     int rows, int pxw, int pxh, void *ud)
{
    post(ud, EV_RESIZE, cols, rows, NULL, 0);
    return 0;
}

static int on_shell(ssh_session session, ssh_channel channel, void *ud)
{
    sess_t *s = ud;
    if (s->got_request)
        return -1;
    s->got_request = true;
    post(s, EV_SHELL, 0, 0, NULL, 0);
    return 0;
}

static int on_exec(ssh_session session, ssh_channel channel,
                   const char *command, void *ud)
{
    sess_t *s = ud;
    if (s->got_request)
        return -1;
    s->got_request = true;
    post(s, EV_EXEC, 0, 0, command, strlen(command));
    return 0;
}

static int on_env(ssh_session session, ssh_channel channel,
                  const char *name, const char *value, void *ud)
{
    return 0;   /* accepted and ignored (OpenSSH sends LANG) */
}

static int on_subsystem(ssh_session session, ssh_channel channel,
                        const char *subsystem, void *ud)
{
    return -1;  /* no sftp */
}

static ssh_channel on_channel_open(ssh_session session, void *ud)
{
    sess_t *s = ud;
    if (s->channel || !s->authenticated)
        return NULL;    /* one session channel per connection */
    s->channel = ssh_channel_new(session);
    if (!s->channel)
        return NULL;
    s->ccb = (struct ssh_channel_callbacks_struct){
        .userdata = s,
        .channel_data_function = on_data,
        .channel_eof_function = on_eof,
        .channel_close_function = on_close,
        .channel_pty_request_function = on_pty,
        .channel_pty_window_change_function = on_resize,
        .channel_shell_request_function = on_shell,
        .channel_exec_request_function = on_exec,
        .channel_env_request_function = on_env,
        .channel_subsystem_request_function = on_subsystem,
    };
    ssh_callbacks_init(&s->ccb);
    ssh_set_channel_callbacks(s->channel, &s->ccb);
    return s->channel;
}

static int on_wake(socket_t fd, int revents, void *ud)
{
    char b[64];
    while (read(fd, b, sizeof b) > 0)
        ;
    return 0;
}

/* Writes what Lua queued, as far as the peer's window allows; then an
 * exit or a close that was asked for. Returns false when the thread is
 * to end (why set). */
static bool flush_out(sess_t *s, const char **why)
{
    listener_t *lst = s->lst;
    for (;;) {
        pthread_mutex_lock(&lst->mu);
        bool close_now = s->want_close || s->quit;
        bool use_err = s->out_len == 0;
        size_t have = use_err ? s->err_len : s->out_len;
        bool exit_now = s->want_exit && have == 0;
        int status = s->exit_status;
        pthread_mutex_unlock(&lst->mu);
        if (close_now) {
            *why = "closed by server";
            return false;
        }
        if (!s->channel) {
            return true;
        }
        if (have == 0) {
            if (exit_now) {
                ssh_channel_request_send_exit_status(s->channel, status);
                ssh_channel_send_eof(s->channel);
                ssh_channel_close(s->channel);
                *why = "session ended";
                return false;
            }
            return true;
        }
        uint32_t win = ssh_channel_window_size(s->channel);
        if (win == 0)
            return true;
        size_t n = have < WRITE_CHUNK ? have : WRITE_CHUNK;
        if (n > win)
            n = win;
        char chunk[WRITE_CHUNK];
        pthread_mutex_lock(&lst->mu);
        char *buf = use_err ? s->err : s->out;
        size_t *len = use_err ? &s->err_len : &s->out_len;
        memcpy(chunk, buf, n);
        memmove(buf, buf + n, *len - n);
        *len -= n;
        pthread_mutex_unlock(&lst->mu);
        int rc = use_err
                 ? ssh_channel_write_stderr(s->channel, chunk, (uint32_t)n)
                 : ssh_channel_write(s->channel, chunk, (uint32_t)n);
        if (rc < 0) {
            *why = ssh_get_error(s->session);
            return false;
        }
    }
}

static void *session_thread(void *arg)
{
    sess_t *s = arg;
    listener_t *lst = s->lst;
    const char *why = "closed";
    char whybuf[256];
    ssh_event ev = NULL;
    uint64_t login_deadline = mono_ms() + (uint64_t)lst->login_timeout *
                                          1000u;
    long kex_timeout = lst->login_timeout;
    ssh_options_set(s->session, SSH_OPTIONS_TIMEOUT, &kex_timeout);
    if (ssh_handle_key_exchange(s->session) != SSH_OK) {
        snprintf(whybuf, sizeof whybuf, "key exchange failed: %s",
                 ssh_get_error(s->session));
        why = whybuf;
        goto out;
    }
    ev = ssh_event_new();
    if (!ev || ssh_event_add_session(ev, s->session) != SSH_OK ||
        ssh_event_add_fd(ev, s->wake[0], POLLIN, on_wake, s) != SSH_OK) {
        why = "out of memory";
        goto out;
    }
    for (;;) {
        int rc = ssh_event_dopoll(ev, POLL_MS);
        if (rc == SSH_ERROR) {
            snprintf(whybuf, sizeof whybuf, "%s",
                     ssh_get_error(s->session));
            why = whybuf[0] ? whybuf : "connection lost";
            break;
        }
        if (ssh_get_status(s->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) {
            why = "client disconnected";
            break;
        }
        if (s->refused >= MAX_AUTH_TRIES) {
            why = "too many refused authentication attempts";
            break;
        }
        if (!s->got_request && mono_ms() > login_deadline) {
            why = s->authenticated ? "no session requested in time"
                                   : "login timeout";
            break;
        }
        if (s->channel && ssh_channel_is_closed(s->channel)) {
            why = "client closed the session";
            break;
        }
        if (!flush_out(s, &why)) {
            /* Let the client see the end of the channel and hang up
             * itself (a second at most). */
            for (int i = 0; i < 10 && !should_quit(s); i++)
                if (ssh_event_dopoll(ev, 100) == SSH_ERROR ||
                    (ssh_get_status(s->session) &
                     (SSH_CLOSED | SSH_CLOSED_ERROR)))
                    break;
            break;
        }
    }
out:
    pthread_mutex_lock(&lst->mu);
    if (s->quit && !s->want_exit)
        why = s->want_close ? "closed by server" : "server stopping";
    pthread_mutex_unlock(&lst->mu);
    atomic_store(&s->intr.gone, 1);
    if (ev) {
        ssh_event_remove_fd(ev, s->wake[0]);
        ssh_event_remove_session(ev, s->session);
        ssh_event_free(ev);
    }
    snprintf(s->why, sizeof s->why, "%s", why);
    pthread_mutex_lock(&lst->mu);
    s->fd_closed = true;
    pthread_mutex_unlock(&lst->mu);
    ssh_disconnect(s->session);
    ssh_free(s->session);      /* closes the socket */
    s->session = NULL;
    s->channel = NULL;
    post(s, EV_CLOSED, 0, 0, s->why, strlen(s->why));
    return NULL;
}

/* ------------------------------------------------------------ loop side */

static sess_t *check_sess(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SESSION_MT);
}

/* Asks a session's thread to stop (under lst->mu). */
static void stop_locked(sess_t *s)
{
    s->quit = true;
    pthread_cond_broadcast(&s->cond);
    if (s->fd >= 0 && !s->fd_closed)
        shutdown(s->fd, SHUT_RDWR);
}

static void wake(sess_t *s)
{
    char b = 1;
    ssize_t n = write(s->wake[1], &b, 1);
    (void)n;   /* full: the thread is already woken */
}

static void join(sess_t *s)
{
    if (s->thread_started && !s->joined) {
        pthread_join(s->thread, NULL);
        s->joined = true;
        if (s->lst)
            s->lst->nsessions--;
    }
}

static void free_events(sess_t *s)
{
    event_t *e = s->evq;
    while (e) {
        event_t *next = e->next;
        memset(e->data, 0, e->len);
        free(e);
        e = next;
    }
    s->evq = s->evq_tail = NULL;
    s->evq_bytes = 0;
}

/* Drops the session from its listener's list; after both the thread's
 * end and Lua's close, lets Lua collect it. */
static void release(lua_State *L, sess_t *s)
{
    if (!s->joined || !s->lua_closed)
        return;
    listener_t *lst = s->lst;
    if (lst) {
        if (s->prev)
            s->prev->next = s->next;
        else
            lst->sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->prev = s->next = NULL;
        s->lst = NULL;
    }
    if (s->self_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, s->self_ref);
        s->self_ref = LUA_NOREF;
    }
}

static bool push_handler(lua_State *L, listener_t *lst, const char *name)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, lst->handlers_ref);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return false;
    }
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return false;
    }
    return true;
}

static void answer(sess_t *s, bool ok, double delay)
{
    pthread_mutex_lock(&s->lst->mu);
    if (s->auth_pending == 1) {
        s->auth_pending = 2;
        s->auth_ok = ok;
        s->auth_delay = delay;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lst->mu);
}

/* One event of session s to Lua; the event is freed by the caller. */
static void deliver(lua_State *L, listener_t *lst, sess_t *s, event_t *e)
{
    static const char *names[] = { "auth", "pty", "resize", "shell", "exec",
                                   "data", "eof", "interrupt", "close" };
    const char *name = names[e->type];
    if (s->lua_closed)
        return;
    if (e->type == EV_CLOSED) {
        join(s);
        s->close_notified = true;
    }
    if (!push_handler(L, lst, name)) {
        if (e->type == EV_AUTH)
            answer(s, false, 0);
        goto after;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
    int nargs = 1;
    switch (e->type) {
    case EV_AUTH: {
        const char *p = e->data;
        const char *f[6];
        for (int i = 0; i < 6; i++) {
            f[i] = p;
            p += strlen(p) + 1;
        }
        lua_createtable(L, 0, 7);
        lua_pushstring(L, f[0]);
        lua_setfield(L, -2, "method");
        lua_pushstring(L, f[1]);
        lua_setfield(L, -2, "user");
        if (strcmp(f[0], "publickey") == 0) {
            lua_pushstring(L, f[2]);
            lua_setfield(L, -2, "key_type");
            lua_pushstring(L, f[3]);
            lua_setfield(L, -2, "key");
            lua_pushstring(L, f[4]);
            lua_setfield(L, -2, "fingerprint");
            lua_pushboolean(L, e->a);
            lua_setfield(L, -2, "probe");
            if (!e->a)
                snprintf(s->fingerprint, sizeof s->fingerprint, "%s", f[4]);
        } else if (strcmp(f[0], "password") == 0) {
            lua_pushstring(L, f[5]);
            lua_setfield(L, -2, "password");
        }
        snprintf(s->user, sizeof s->user, "%s", f[1]);
        nargs = 2;
        int top = lua_gettop(L) - nargs - 1;
        lua_pushcfunction(L, tp_lua_errhandler);
        lua_insert(L, top + 1);
        int rc = lua_pcall(L, nargs, 2, top + 1);
        if (rc != 0) {
            tp_log_error("ssh", "auth handler: %s",
                         lua_isstring(L, -1) ? lua_tostring(L, -1)
                                             : "error");
            answer(s, false, 0);
        } else if (!lua_isnil(L, -2)) {
            answer(s, lua_toboolean(L, -2), lua_tonumber(L, -1));
        }
        lua_settop(L, top);
        goto after;
    }
    case EV_PTY:
        lua_pushlstring(L, e->data, e->len);
        lua_pushinteger(L, e->a);
        lua_pushinteger(L, e->b);
        nargs = 4;
        break;
    case EV_RESIZE:
        lua_pushinteger(L, e->a);
        lua_pushinteger(L, e->b);
        nargs = 3;
        break;
    case EV_EXEC:
    case EV_DATA:
    case EV_CLOSED:
        lua_pushlstring(L, e->data, e->len);
        nargs = 2;
        break;
    default:
        break;
    }
    tp_lua_pcall_logged(L, nargs, "ssh handler");
after:
    if (e->type == EV_CLOSED) {
        s->lua_closed = true;
        release(L, s);
    }
}

static void on_async(uv_async_t *a)
{
    listener_t *lst = a->data;
    lua_State *L = lst->L;
    /* Sessions can be released (unlinked) while their events are handed
     * over: walk by taking one event at a time from any session. */
    for (;;) {
        event_t *e = NULL;
        sess_t *from = NULL;
        pthread_mutex_lock(&lst->mu);
        for (sess_t *s = lst->sessions; s; s = s->next) {
            if (s->evq) {
                e = s->evq;
                s->evq = e->next;
                if (!s->evq)
                    s->evq_tail = NULL;
                s->evq_bytes -= e->len;
                from = s;
                break;
            }
        }
        pthread_mutex_unlock(&lst->mu);
        if (!e)
            break;
        deliver(L, lst, from, e);
        memset(e->data, 0, e->len);
        free(e);
    }
}

static void listener_handle_closed(uv_handle_t *h)
{
    listener_t *lst = h->data;
    if (--lst->open_handles == 0 && lst->self_ref != LUA_NOREF) {
        luaL_unref(lst->L, LUA_REGISTRYINDEX, lst->handlers_ref);
        lst->handlers_ref = LUA_NOREF;
        luaL_unref(lst->L, LUA_REGISTRYINDEX, lst->self_ref);
        lst->self_ref = LUA_NOREF;
    }
}

static void accepted_closed(uv_handle_t *h)
{
    free(h);
}

static void peer_name(uv_tcp_t *t, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    snprintf(out, outlen, "?");
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%d", ip, port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%d", ip, port);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    listener_t *lst = server->data;
    lua_State *L = lst->L;
    if (status < 0 || lst->closed)
        return;
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(server->loop, t);
    if (uv_accept(server, (uv_stream_t *)t) != 0) {
        uv_close((uv_handle_t *)t, accepted_closed);
        return;
    }
    char peer[80];
    peer_name(t, peer, sizeof peer);
    uv_os_fd_t ufd;
    int fd = -1;
    if (lst->nsessions >= lst->max_sessions) {
        tp_log_warn("ssh", "refused %s: %d SSH sessions at once "
                       "(ssh_max_sessions)", peer, lst->nsessions);
    } else if (uv_fileno((uv_handle_t *)t, &ufd) == 0) {
        fd = fcntl(ufd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            tp_log_error("ssh", "refused %s: %s", peer, strerror(errno));
    }
    uv_close((uv_handle_t *)t, accepted_closed);
    if (fd < 0)
        return;
    sess_t *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->wake[0] = s->wake[1] = -1;
    s->self_ref = LUA_NOREF;
    luaL_getmetatable(L, SESSION_MT);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setfenv(L, -2);
    pthread_cond_init(&s->cond, NULL);
    s->lst = lst;
    s->id = ++lst->next_id;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->next = lst->sessions;
    if (lst->sessions)
        lst->sessions->prev = s;
    lst->sessions = s;
    const char *fail = NULL;
    bool owned = false;        /* the libssh session holds fd */
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        fail = "no pipe";
    } else if (!(s->session = ssh_new())) {
        fail = "out of memory";
    } else if (ssh_bind_accept_fd(lst->bind, s->session, fd) != SSH_OK) {
        fail = ssh_get_error(lst->bind);
    } else {
        owned = true;
    }
    if (!fail) {
        s->scb = (struct ssh_server_callbacks_struct){
            .userdata = s,
            .auth_pubkey_function = on_auth_pubkey,
            .auth_password_function = on_auth_password,
            .auth_none_function = on_auth_none,
            .channel_open_request_session_function = on_channel_open,
        };
        ssh_callbacks_init(&s->scb);
        ssh_set_server_callbacks(s->session, &s->scb);
        ssh_set_auth_methods(s->session, SSH_AUTH_METHOD_PUBLICKEY |
                             (lst->passwords ? SSH_AUTH_METHOD_PASSWORD : 0));
        int rc = pthread_create(&s->thread, NULL, session_thread, s);
        if (rc != 0)
            fail = strerror(rc);
        else
            s->thread_started = true;
    }
    if (fail) {
        tp_log_error("ssh", "refused %s: %s", peer, fail);
        if (s->session) {
            ssh_free(s->session);     /* closes fd once it holds it */
            s->session = NULL;
        }
        if (!owned)
            close(fd);
        s->fd_closed = true;
        s->joined = true;
        s->lua_closed = true;
        release(L, s);
        return;
    }
    lst->nsessions++;
    tp_log_info("ssh", "connection id=%llu from %s",
                (unsigned long long)s->id, peer);
}

/* ------------------------------------------------------------ Lua API */

static listener_t *check_listener(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LISTENER_MT);
}

static void listener_shutdown(lua_State *L, listener_t *lst)
{
    if (lst->closed)
        return;
    lst->closed = true;
    pthread_mutex_lock(&lst->mu);
    for (sess_t *s = lst->sessions; s; s = s->next)
        stop_locked(s);
    pthread_mutex_unlock(&lst->mu);
    for (sess_t *s = lst->sessions; s; s = s->next) {
        if (s->wake[1] >= 0)
            wake(s);
        join(s);
    }
    /* What the threads posted last (their close) goes to Lua now. */
    on_async(&lst->async);
    uv_close((uv_handle_t *)&lst->tcp, listener_handle_closed);
    uv_close((uv_handle_t *)&lst->async, listener_handle_closed);
}

static int l_listener_close(lua_State *L)
{
    listener_shutdown(L, check_listener(L, 1));
    return 0;
}

/* At lua_close: the handles were closed by main.c's final walk; the
 * threads may still run. */
static int l_listener_gc(lua_State *L)
{
    listener_t *lst = check_listener(L, 1);
    if (!lst->closed) {
        lst->closed = true;
        pthread_mutex_lock(&lst->mu);
        for (sess_t *s = lst->sessions; s; s = s->next)
            stop_locked(s);
        pthread_mutex_unlock(&lst->mu);
        for (sess_t *s = lst->sessions; s; s = s->next)
            join(s);
    }
    for (sess_t *s = lst->sessions; s; s = s->next)
        s->lst = NULL;
    if (lst->bind) {
        ssh_bind_free(lst->bind);
        lst->bind = NULL;
    }
    return 0;
}

static int l_listener_index(lua_State *L)
{
    listener_t *lst = check_listener(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "close") == 0)
        lua_pushcfunction(L, l_listener_close);
    else if (strcmp(key, "port") == 0)
        lua_pushinteger(L, lst->port);
    else if (strcmp(key, "host") == 0)
        lua_pushstring(L, lst->host);
    else if (strcmp(key, "closed") == 0)
        lua_pushboolean(L, lst->closed);
    else
        lua_pushnil(L);
    return 1;
}

static int opt_int(lua_State *L, const char *key, int def, int lo, int hi)
{
    lua_getfield(L, 1, key);
    int v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1))
            return luaL_error(L, "ssh.listen: %s must be a number", key);
        lua_Number n = lua_tonumber(L, -1);
        if (n < lo || n > hi)
            return luaL_error(L, "ssh.listen: %s must be %d to %d", key, lo,
                              hi);
        v = (int)n;
    }
    lua_pop(L, 1);
    return v;
}

/* ssh.listen{ ... } -> listener | nil, err */
static int l_listen(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "host_key");
    const char *key_path = luaL_checkstring(L, -1);
    lua_getfield(L, 1, "handlers");
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_getfield(L, 1, "passwords");
    bool passwords = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int port = opt_int(L, "port", 0, 0, 65535);
    int max_sessions = opt_int(L, "max_sessions", 8, 1, 1000);
    int login_timeout = opt_int(L, "login_timeout", 60, 1, 3600);
    char err[512];
    struct sockaddr_storage ss;
    if (tp_listen_address(host, port, &ss, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    ssh_key key = NULL;
    if (ssh_pki_import_privkey_file(key_path, NULL, NULL, NULL, &key) !=
        SSH_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read the SSH host key %s", key_path);
        return 2;
    }
    ssh_bind bind = ssh_bind_new();
    if (!bind || ssh_bind_options_set(bind, SSH_BIND_OPTIONS_IMPORT_KEY,
                                      key) != SSH_OK) {
        if (bind)
            ssh_bind_free(bind);
        ssh_key_free(key);
        lua_pushnil(L);
        lua_pushliteral(L, "cannot set up the SSH host key");
        return 2;
    }
    listener_t *lst = lua_newuserdata(L, sizeof *lst);
    memset(lst, 0, sizeof *lst);
    lst->L = tp_lua_main(L);
    lst->bind = bind;
    lst->passwords = passwords;
    lst->max_sessions = max_sessions;
    lst->login_timeout = login_timeout;
    lst->self_ref = LUA_NOREF;
    snprintf(lst->host, sizeof lst->host, "%s", host);
    pthread_mutex_init(&lst->mu, NULL);
    luaL_getmetatable(L, LISTENER_MT);
    lua_setmetatable(L, -2);
    uv_loop_t *loop = tp_lua_loop(L);
    uv_tcp_init(loop, &lst->tcp);
    lst->tcp.data = lst;
    uv_async_init(loop, &lst->async, on_async);
    lst->async.data = lst;
    lst->open_handles = 2;
    /* Like the console's socket, neither keeps the loop going: the stop
     * ends the loop, and then on_stop closes the listener. */
    uv_unref((uv_handle_t *)&lst->tcp);
    uv_unref((uv_handle_t *)&lst->async);
    lua_pushvalue(L, -1);
    lst->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 4);
    lst->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int rc = uv_tcp_bind(&lst->tcp, (struct sockaddr *)&ss,
                         ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&lst->tcp, 64, on_connection);
    if (rc != 0) {
        snprintf(err, sizeof err, "cannot listen on %s port %d (ssh): %s",
                 host, port, uv_strerror(rc));
        listener_shutdown(L, lst);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lst->port = tp_bound_port(&lst->tcp, port);
    return 1;
}

/* s:write(bytes [, "stderr"]) -> true | false, why */
static int l_write(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    bool to_err = lua_isstring(L, 3) && strcmp(lua_tostring(L, 3),
                                               "stderr") == 0;
    listener_t *lst = s->lst;
    if (!lst || s->close_notified) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "closed");
        return 2;
    }
    pthread_mutex_lock(&lst->mu);
    char **buf = to_err ? &s->err : &s->out;
    size_t *len = to_err ? &s->err_len : &s->out_len;
    size_t *cap = to_err ? &s->err_cap : &s->out_cap;
    const char *why = NULL;
    if (s->quit || s->want_close || s->want_exit) {
        why = "closed";
    } else if (s->out_len + s->err_len + n > OUT_BACKLOG) {
        why = "output backlog full";
    } else if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b) {
            why = "out of memory";
        } else {
            *buf = b;
            *cap = c;
        }
    }
    if (!why && n) {
        memcpy(*buf + *len, p, n);
        *len += n;
    }
    pthread_mutex_unlock(&lst->mu);
    if (why) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, why);
        return 2;
    }
    wake(s);
    lua_pushboolean(L, 1);
    return 1;
}

/* s:exit(status): the exit status once the output is written, then the
 * channel's end. */
static int l_exit(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    int status = (int)luaL_optinteger(L, 2, 0);
    if (!s->lst)
        return 0;
    pthread_mutex_lock(&s->lst->mu);
    s->want_exit = true;
    s->exit_status = status;
    pthread_mutex_unlock(&s->lst->mu);
    wake(s);
    return 0;
}

static int l_close(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    if (!s->lst)
        return 0;
    pthread_mutex_lock(&s->lst->mu);
    s->want_close = true;
    stop_locked(s);
    pthread_mutex_unlock(&s->lst->mu);
    wake(s);
    return 0;
}

static int l_answer(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    if (s->lst)
        answer(s, lua_toboolean(L, 2), luaL_optnumber(L, 3, 0));
    return 0;
}

static int l_busy(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    atomic_store(&s->busy, lua_toboolean(L, 2));
    return 0;
}

static int l_interrupt(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    lua_pushlightuserdata(L, &s->intr);
    return 1;
}

/* __gc: at lua_close, or once released. The thread has been joined by
 * then (release needs it; the listener's gc joins the rest). */
static int l_sess_gc(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    if (s->thread_started && !s->joined) {
        if (s->lst) {
            pthread_mutex_lock(&s->lst->mu);
            stop_locked(s);
            pthread_mutex_unlock(&s->lst->mu);
        }
        pthread_join(s->thread, NULL);
        s->joined = true;
    }
    if (s->lst && s->lst->sessions) {
        if (s->prev)
            s->prev->next = s->next;
        else
            s->lst->sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
    }
    free_events(s);
    free(s->out);
    s->out = NULL;
    free(s->err);
    s->err = NULL;
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0) {
            close(s->wake[i]);
            s->wake[i] = -1;
        }
    pthread_cond_destroy(&s->cond);
    return 0;
}

static int l_sess_tostring(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    lua_pushfstring(L, "ssh session #%d (%s)", (int)s->id, s->peer);
    return 1;
}

static int l_sess_index(lua_State *L)
{
    sess_t *s = check_sess(L, 1);
    const char *key = lua_tostring(L, 2);
    if (tp_lua_object_method(L))
        return 1;
    if (key) {
        if (strcmp(key, "id") == 0) {
            lua_pushnumber(L, (lua_Number)s->id);
            return 1;
        } else if (strcmp(key, "peer") == 0) {
            lua_pushstring(L, s->peer);
            return 1;
        } else if (strcmp(key, "user") == 0) {
            lua_pushstring(L, s->user);
            return 1;
        } else if (strcmp(key, "fingerprint") == 0) {
            lua_pushstring(L, s->fingerprint);
            return 1;
        } else if (strcmp(key, "closed") == 0) {
            lua_pushboolean(L, s->close_notified || !s->lst);
            return 1;
        }
    }
    return tp_lua_object_attr(L);
}

/* ssh.host_key(path) -> fingerprint, made | nil, err */
static int l_host_key(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ssh_key key = NULL;
    bool made = false;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            lua_pushnil(L);
            lua_pushfstring(L, "%s: %s", path, strerror(errno));
            return 2;
        }
        if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
            lua_pushnil(L);
            lua_pushliteral(L, "cannot make an Ed25519 key");
            return 2;
        }
        mode_t old = umask(077);
        int rc = ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path);
        umask(old);
        if (rc != SSH_OK) {
            ssh_key_free(key);
            lua_pushnil(L);
            lua_pushfstring(L, "cannot write the SSH host key %s", path);
            return 2;
        }
        chmod(path, 0600);
        made = true;
    } else if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) !=
               SSH_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read the SSH host key %s", path);
        return 2;
    }
    char fp[128];
    bool ok = key_fingerprint(key, fp, sizeof fp);
    ssh_key_free(key);
    if (!ok) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot fingerprint %s", path);
        return 2;
    }
    lua_pushstring(L, fp);
    lua_pushboolean(L, made);
    return 2;
}

/* ssh.fingerprint(path) -> fingerprint | nil, err: of a private key file
 * (or its .pub). */
static int l_fingerprint(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ssh_key key = NULL;
    if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) !=
            SSH_OK &&
        ssh_pki_import_pubkey_file(path, &key) != SSH_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read the key %s", path);
        return 2;
    }
    char fp[128];
    bool ok = key_fingerprint(key, fp, sizeof fp);
    ssh_key_free(key);
    if (!ok) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot fingerprint %s", path);
        return 2;
    }
    lua_pushstring(L, fp);
    return 1;
}

/* ssh.parse_key(type, base64) -> fingerprint, type | nil, err: checks a
 * public key as written in authorized_keys. */
static int l_parse_key(lua_State *L)
{
    const char *type = luaL_checkstring(L, 1);
    const char *b64 = luaL_checkstring(L, 2);
    enum ssh_keytypes_e kt = ssh_key_type_from_name(type);
    ssh_key key = NULL;
    if (kt == SSH_KEYTYPE_UNKNOWN ||
        ssh_pki_import_pubkey_base64(b64, kt, &key) != SSH_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "not a public key of type %s", type);
        return 2;
    }
    char fp[128];
    bool ok = key_fingerprint(key, fp, sizeof fp);
    const char *canon = ssh_key_type_to_char(ssh_key_type(key));
    lua_pushstring(L, ok ? fp : "?");
    lua_pushstring(L, canon ? canon : type);
    ssh_key_free(key);
    return 2;
}

int luaopen_tp_ssh(lua_State *L)
{
    ssh_init();
    ssh_set_log_level(SSH_LOG_NOLOG);
    if (luaL_newmetatable(L, LISTENER_MT)) {
        lua_pushcfunction(L, l_listener_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_listener_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    static const luaL_Reg methods[] = {
        { "write", l_write },
        { "exit", l_exit },
        { "close", l_close },
        { "answer", l_answer },
        { "busy", l_busy },
        { "interrupt", l_interrupt },
        { NULL, NULL }
    };
    tp_lua_object_class(L, SESSION_MT, methods, l_sess_index, l_sess_gc,
                        l_sess_tostring);
    static const luaL_Reg fns[] = {
        { "listen", l_listen },
        { "host_key", l_host_key },
        { "fingerprint", l_fingerprint },
        { "parse_key", l_parse_key },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
