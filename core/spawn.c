/*
 * spawn.c: programs run from Lua without waiting for them (see spawn.h).
 * One record per program: the process handle, a pipe for each of stdin,
 * stdout and stderr, and the timeout timer. The record goes when libuv
 * has closed all of its handles.
 */
#include "spawn.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <uv.h>

#include "log.h"
#include "lua_util.h"

#define MAX_ARGS 64

struct child;

typedef struct output {
    uv_pipe_t pipe;
    char *buf;
    size_t len, cap;
    bool open;                 /* reading; closed at the end of its data */
    struct child *c;
} output_t;

typedef struct child {
    uv_process_t proc;
    uv_pipe_t in;
    output_t out[2];           /* stdout, stderr */
    uv_timer_t timer;
    uv_write_t wreq;
    lua_State *L;              /* main state */
    int fn_ref;
    uint64_t id;
    char *input;
    size_t input_len, max_output;
    int64_t status;
    int term_signal;
    int handles;               /* handles not yet closed */
    bool in_open, input_done, exited, timed_out, truncated, done, live;
    struct child *prev, *next;
} child_t;

static struct {
    child_t *live;
    uint64_t next_id;
    int npending;
} g;

/* ------------------------------------------------------------ records */

static void unlink_child(child_t *c)
{
    if (!c->live)
        return;
    c->live = false;
    if (c->prev)
        c->prev->next = c->next;
    else
        g.live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g.npending--;
}

static void on_closed(uv_handle_t *h)
{
    child_t *c = h->data;
    if (--c->handles > 0)
        return;
    free(c->out[0].buf);
    free(c->out[1].buf);
    free(c->input);
    free(c);
}

static void close_handle(child_t *c, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

static void close_input(child_t *c)
{
    if (c->in_open) {
        c->in_open = false;
        close_handle(c, (uv_handle_t *)&c->in);
    }
}

static void close_output(output_t *o)
{
    if (o->open) {
        o->open = false;
        uv_read_stop((uv_stream_t *)&o->pipe);
        close_handle(o->c, (uv_handle_t *)&o->pipe);
    }
}

/* Closes what is still open; the record goes in the last close. */
static void close_all_handles(child_t *c)
{
    close_input(c);
    close_output(&c->out[0]);
    close_output(&c->out[1]);
    close_handle(c, (uv_handle_t *)&c->timer);
    close_handle(c, (uv_handle_t *)&c->proc);
}

/* Calls the callback once the program has exited and its output ended. */
static void maybe_finish(child_t *c)
{
    if (c->done || !c->exited || c->out[0].open || c->out[1].open)
        return;
    c->done = true;
    unlink_child(c);
    uv_timer_stop(&c->timer);
    lua_State *L = c->L;
    int fn_ref = c->fn_ref;
    c->fn_ref = LUA_NOREF;
    if (fn_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
        lua_createtable(L, 0, 6);
        if (c->term_signal) {
            lua_pushinteger(L, c->term_signal);
            lua_setfield(L, -2, "signal");
        } else {
            lua_pushnumber(L, (lua_Number)c->status);
            lua_setfield(L, -2, "status");
        }
        lua_pushlstring(L, c->out[0].buf ? c->out[0].buf : "", c->out[0].len);
        lua_setfield(L, -2, "stdout");
        lua_pushlstring(L, c->out[1].buf ? c->out[1].buf : "", c->out[1].len);
        lua_setfield(L, -2, "stderr");
        if (c->truncated) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "truncated");
        }
        if (c->timed_out) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "timed_out");
            lua_pushliteral(L, "killed after its timeout");
            lua_setfield(L, -2, "error");
        }
        close_all_handles(c);
        tp_lua_pcall_logged(L, 1, "spawn callback");
        return;
    }
    close_all_handles(c);
}

/* ------------------------------------------------------------ the loop */

static void on_child_exit(uv_process_t *p, int64_t status, int term_signal)
{
    child_t *c = p->data;
    c->exited = true;
    c->status = status;
    c->term_signal = term_signal;
    maybe_finish(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[65536];   /* the loop is one thread */
    buf->base = scratch;
    buf->len = sizeof scratch;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    child_t *c = s->data;
    output_t *o = (uv_pipe_t *)s == &c->out[0].pipe ? &c->out[0] : &c->out[1];
    if (n < 0) {                 /* UV_EOF or an error: its data ended */
        close_output(o);
        maybe_finish(c);
        return;
    }
    size_t len = (size_t)n;
    if (o->len + len > c->max_output) {
        c->truncated = true;
        len = c->max_output - o->len;
    }
    if (len == 0)
        return;
    if (o->len + len > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + len)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b) {
            c->truncated = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, buf->base, len);
    o->len += len;
}

static void on_written(uv_write_t *w, int status)
{
    child_t *c = w->data;
    if (status < 0 && status != UV_ECANCELED)
        tp_log_debug("spawn", "program %d: its input was not all taken: %s",
                     (int)c->id, uv_strerror(status));
    c->input_done = true;
    free(c->input);
    c->input = NULL;
    close_input(c);              /* the program reads its end of input */
}

static void on_timeout(uv_timer_t *t)
{
    child_t *c = t->data;
    c->timed_out = true;
    if (!c->exited) {
        uv_process_kill(&c->proc, SIGKILL);
        return;                  /* on_child_exit follows */
    }
    /* Exited, but something it started holds its output open. */
    close_output(&c->out[0]);
    close_output(&c->out[1]);
    maybe_finish(c);
}

/* ------------------------------------------------------------ Lua */

/* spawn.run(opts, fn) -> id | nil, err */
static int l_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_getfield(L, 1, "file");
    const char *file = lua_tostring(L, -1);
    if (!file || !*file)
        return luaL_error(L, "file missing");
    const char *argv[MAX_ARGS + 2];
    argv[0] = file;
    int argc = 1;
    lua_getfield(L, 1, "args");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        size_t n = lua_objlen(L, -1);
        if (n > MAX_ARGS)
            return luaL_error(L, "more than %d arguments", MAX_ARGS);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, (int)i);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "argument %d is not a string", (int)i);
            argv[argc++] = lua_tostring(L, -1);
            lua_pop(L, 1);     /* still anchored in the table */
        }
    }
    argv[argc] = NULL;
    size_t input_len = 0;
    lua_getfield(L, 1, "input");
    const char *input = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "input must be a string");
        input = lua_tolstring(L, -1, &input_len);
    }
    lua_getfield(L, 1, "timeout");
    lua_Number timeout = lua_isnil(L, -1) ? 30 : luaL_checknumber(L, -1);
    lua_getfield(L, 1, "max_output");
    lua_Number max_output = lua_isnil(L, -1) ? 65536
                                             : luaL_checknumber(L, -1);
    if (!(timeout > 0 && timeout <= 86400) ||
        !(max_output >= 0 && max_output <= 64 * 1048576))
        return luaL_error(L, "timeout must be in (0, 86400] and max_output "
                          "in [0, 64 MiB]");

    child_t *c = calloc(1, sizeof *c);
    if (!c)
        return luaL_error(L, "out of memory");
    if (input_len > 0) {
        c->input = malloc(input_len);
        if (!c->input) {
            free(c);
            return luaL_error(L, "out of memory");
        }
        memcpy(c->input, input, input_len);
        c->input_len = input_len;
    }
    uv_loop_t *loop = tp_lua_loop(L);
    c->L = tp_lua_main(L);
    c->fn_ref = LUA_NOREF;
    c->max_output = (size_t)max_output;
    c->id = ++g.next_id;
    uv_pipe_init(loop, &c->in, 0);
    c->in.data = c;
    c->in_open = true;
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(loop, &c->out[i].pipe, 0);
        c->out[i].pipe.data = c;
        c->out[i].c = c;
        c->out[i].open = true;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 5;            /* in, out[0], out[1], timer, proc */

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&c->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&c->out[0].pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&c->out[1].pipe;
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = file;
    o.args = (char **)argv;
    o.exit_cb = on_child_exit;
    o.stdio_count = 3;
    o.stdio = stdio;
    c->proc.data = c;
    int rc = uv_spawn(loop, &c->proc, &o);
    c->proc.data = c;
    if (rc != 0) {
        /* The handles are closed (the process one too, as libuv wants);
         * no callback. */
        c->exited = true;
        c->out[0].open = c->out[1].open = false;
        close_handle(c, (uv_handle_t *)&c->out[0].pipe);
        close_handle(c, (uv_handle_t *)&c->out[1].pipe);
        close_input(c);
        close_handle(c, (uv_handle_t *)&c->timer);
        close_handle(c, (uv_handle_t *)&c->proc);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot run %s: %s", file, uv_strerror(rc));
        return 2;
    }
    /* From here on nothing raises. */
    lua_pushvalue(L, 2);
    c->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->live = true;
    c->next = g.live;
    if (g.live)
        g.live->prev = c;
    g.live = c;
    g.npending++;
    uv_unref((uv_handle_t *)&c->proc);
    uv_unref((uv_handle_t *)&c->in);
    uv_unref((uv_handle_t *)&c->timer);
    for (int i = 0; i < 2; i++) {
        uv_unref((uv_handle_t *)&c->out[i].pipe);
        uv_read_start((uv_stream_t *)&c->out[i].pipe, on_alloc, on_read);
    }
    uv_timer_start(&c->timer, on_timeout, (uint64_t)(timeout * 1000), 0);
    if (c->input_len > 0) {
        uv_buf_t b = uv_buf_init(c->input, (unsigned)c->input_len);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->in, &b, 1,
                     on_written) != 0) {
            c->input_done = true;
            close_input(c);
        }
    } else {
        c->input_done = true;
        close_input(c);
    }
    lua_pushnumber(L, (lua_Number)c->id);
    return 1;
}

static int l_kill(lua_State *L)
{
    uint64_t id = (uint64_t)luaL_checknumber(L, 1);
    for (child_t *c = g.live; c; c = c->next) {
        if (c->id == id && !c->exited) {
            uv_process_kill(&c->proc, SIGKILL);
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    lua_pushboolean(L, 0);
    return 1;
}

static int l_pending(lua_State *L)
{
    lua_pushinteger(L, g.npending);
    return 1;
}

void tp_spawn_close_all(void)
{
    while (g.live) {
        child_t *c = g.live;
        unlink_child(c);
        c->done = true;
        if (c->fn_ref != LUA_NOREF) {
            luaL_unref(c->L, LUA_REGISTRYINDEX, c->fn_ref);
            c->fn_ref = LUA_NOREF;
        }
        /* A program still being fed would act on part of its input. */
        if (!c->exited && !c->input_done)
            uv_process_kill(&c->proc, SIGKILL);
        close_all_handles(c);
    }
}

int luaopen_tp_spawn(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "run", l_run },
        { "kill", l_kill },
        { "pending", l_pending },
        { NULL, NULL },
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
