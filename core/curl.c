/*
 * curl.c: outgoing HTTP(S) on libcurl's multi interface, driven by the
 * loop (see curl.h). One multi handle for the process, made at the first
 * request; one uv_poll per socket curl asks to watch, one uv_timer for
 * curl's timeouts. Callbacks run after curl_multi_socket_action returns,
 * never inside a curl callback, so a Lua callback may start a request.
 */
#include "curl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <uv.h>

#include "log.h"
#include "lua_util.h"
#include "version.h"

typedef struct request {
    CURL *easy;
    lua_State *L;              /* main state */
    int fn_ref;                /* callback */
    uint64_t id;
    char *body;                /* reply body so far */
    size_t len, cap, max_size;
    bool too_big;
    char *post;                /* request body (a copy) */
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    struct request *prev, *next;
} request_t;

typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct sock *prev, *next;  /* g.socks */
} sock_t;

static struct {
    CURLM *multi;
    uv_loop_t *loop;
    uv_timer_t timer;
    bool timer_open;
    request_t *live;           /* requests running */
    sock_t *socks;             /* sockets watched */
    uint64_t next_id;
    int npending;
} g;

/* ------------------------------------------------------------ requests */

static void request_free(request_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        g.live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    g.npending--;
    if (r->easy) {
        if (g.multi)
            curl_multi_remove_handle(g.multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    if (r->fn_ref != LUA_NOREF)
        luaL_unref(r->L, LUA_REGISTRYINDEX, r->fn_ref);
    free(r->post);
    free(r->body);
    free(r);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    request_t *r = arg;
    size_t len = size * n;
    if (r->len + len > r->max_size) {
        r->too_big = true;
        return 0;              /* CURLE_WRITE_ERROR: the request ends */
    }
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, len);
    r->len += len;
    return len;
}

/* Calls the request's callback with its result, then frees it. */
static void request_done(request_t *r, CURLcode code)
{
    lua_State *L = r->L;
    int fn_ref = r->fn_ref;
    r->fn_ref = LUA_NOREF;
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
    lua_createtable(L, 0, 6);
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, r->body ? r->body : "", r->len);
    lua_setfield(L, -2, "body");
    if (code != CURLE_OK) {
        if (r->too_big)
            lua_pushfstring(L, "the reply is longer than %d bytes",
                            (int)r->max_size);
        else if (r->errbuf[0])
            lua_pushstring(L, r->errbuf);
        else
            lua_pushstring(L, curl_easy_strerror(code));
        lua_setfield(L, -2, "error");
    }
    char *url = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
    if (url) {
        lua_pushstring(L, url);
        lua_setfield(L, -2, "url");
    }
    char *ctype = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ctype);
    if (ctype) {
        lua_pushstring(L, ctype);
        lua_setfield(L, -2, "content_type");
    }
    double total = 0;
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &total);
    lua_pushnumber(L, total);
    lua_setfield(L, -2, "seconds");
    request_free(r);
    if (lua_isfunction(L, -2))
        tp_lua_pcall_logged(L, 1, "http request callback");
    else
        lua_pop(L, 2);
}

/* Hands every finished transfer to its callback. */
static void check_done(void)
{
    CURLMsg *msg;
    int left;
    while (g.multi && (msg = curl_multi_info_read(g.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        request_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode code = msg->data.result;
        if (r) {
            curl_multi_remove_handle(g.multi, r->easy);
            request_done(r, code);
        }
    }
}

/* ------------------------------------------------------------ the loop */

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_close(sock_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        g.socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *s = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(g.multi, s->fd, flags, &running);
    check_done();
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            curl_multi_assign(g.multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        if (uv_poll_init_socket(g.loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        uv_unref((uv_handle_t *)&s->poll);
        s->next = g.socks;
        if (g.socks)
            g.socks->prev = s;
        g.socks = s;
        curl_multi_assign(g.multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    int running;
    curl_multi_socket_action(g.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

static int on_timer(CURLM *multi, long ms, void *userp)
{
    if (ms < 0)
        uv_timer_stop(&g.timer);
    else
        uv_timer_start(&g.timer, on_timeout, (uint64_t)ms, 0);
    return 0;
}

static int ensure_multi(lua_State *L)
{
    if (g.multi)
        return 0;
    g.loop = tp_lua_loop(L);
    g.multi = curl_multi_init();
    if (!g.multi)
        return -1;
    curl_multi_setopt(g.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(g.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    uv_timer_init(g.loop, &g.timer);
    uv_unref((uv_handle_t *)&g.timer);
    g.timer_open = true;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
}

void tp_curl_close_all(void)
{
    while (g.live)
        request_free(g.live);
    if (g.multi) {
        /* The socket callbacks of the last transfers ran at their
         * removal above. */
        curl_multi_cleanup(g.multi);
        g.multi = NULL;
    }
    while (g.socks)           /* any the cleanup did not remove */
        sock_close(g.socks);
    if (g.timer_open) {
        g.timer_open = false;
        uv_close((uv_handle_t *)&g.timer, timer_closed);
    }
}

/* ------------------------------------------------------------ Lua */

static lua_Number opt_number(lua_State *L, int t, const char *key,
                             lua_Number def)
{
    lua_getfield(L, t, key);
    lua_Number v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static const char *opt_string(lua_State *L, int t, const char *key,
                              const char *def, size_t *len)
{
    lua_getfield(L, t, key);
    const char *s = def;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s must be a string", key);
        s = lua_tolstring(L, -1, len);
    } else if (len) {
        *len = def ? strlen(def) : 0;
    }
    lua_pop(L, 1);         /* the string stays alive in the table */
    return s;
}

/* curl.request(opts, fn) -> id | nil, err */
static int l_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    const char *url = opt_string(L, 1, "url", NULL, NULL);
    if (!url)
        return luaL_error(L, "url missing");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "not an http or https URL: %s", url);
        return 2;
    }
    const char *method = opt_string(L, 1, "method", "GET", NULL);
    size_t body_len = 0;
    const char *body = opt_string(L, 1, "body", NULL, &body_len);
    lua_Number timeout = opt_number(L, 1, "timeout", 30);
    lua_Number connect_timeout = opt_number(L, 1, "connect_timeout", 10);
    lua_Number max_size = opt_number(L, 1, "max_size", 1048576);
    const char *agent = opt_string(L, 1, "user_agent",
                                   "tpserver/" TP_VERSION_STRING, NULL);
    if (timeout <= 0 || connect_timeout <= 0 || max_size < 0)
        return luaL_error(L, "timeouts must be > 0 and max_size >= 0");
    if (ensure_multi(L) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "cannot start libcurl");
        return 2;
    }
    request_t *r = calloc(1, sizeof *r);
    if (!r)
        return luaL_error(L, "out of memory");
    r->L = tp_lua_main(L);
    r->fn_ref = LUA_NOREF;
    r->max_size = (size_t)max_size;
    r->id = ++g.next_id;
    r->next = g.live;
    if (g.live)
        g.live->prev = r;
    g.live = r;
    g.npending++;
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    /* Headers: built before anything can raise without freeing r. */
    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        size_t n = lua_objlen(L, -1);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, (int)i);
            const char *h = lua_tostring(L, -1);
            if (h && !strpbrk(h, "\r\n")) {
                struct curl_slist *l = curl_slist_append(r->headers, h);
                if (!l) {
                    lua_pop(L, 2);
                    goto fail;
                }
                r->headers = l;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, agent);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(connect_timeout * 1000));
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (r->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    if (body) {
        r->post = malloc(body_len + 1);
        if (!r->post)
            goto fail;
        memcpy(r->post, body, body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->post);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (strcmp(method, "GET") != 0 && !(body && strcmp(method, "POST") == 0))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (curl_multi_add_handle(g.multi, e) != CURLM_OK)
        goto fail;
    lua_pushvalue(L, 2);
    r->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushnumber(L, (lua_Number)r->id);
    return 1;
fail:
    request_free(r);
    lua_pushnil(L);
    lua_pushliteral(L, "cannot start the request");
    return 2;
}

static int l_cancel(lua_State *L)
{
    uint64_t id = (uint64_t)luaL_checknumber(L, 1);
    for (request_t *r = g.live; r; r = r->next) {
        if (r->id == id) {
            request_free(r);
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

static int l_escape(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            luaL_addchar(&b, (char)c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[c >> 4]);
            luaL_addchar(&b, hex[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

int luaopen_tp_curl(lua_State *L)
{
    static bool inited;
    if (!inited) {
        /* Once, on the loop thread, before any other thread uses curl. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = true;
    }
    static const luaL_Reg fns[] = {
        { "request", l_request },
        { "cancel", l_cancel },
        { "pending", l_pending },
        { "escape", l_escape },
        { NULL, NULL },
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    lua_pushstring(L, v->version);
    lua_setfield(L, -2, "version");
    lua_pushboolean(L, (v->features & CURL_VERSION_ASYNCHDNS) != 0);
    lua_setfield(L, -2, "async_dns");
    return 1;
}
