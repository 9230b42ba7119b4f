/*
 * avahi.c: Zeroconf through avahi-daemon on the loop (see avahi.h).
 *
 * The AvahiPoll below maps Avahi's watches to uv_poll handles and its
 * timeouts to uv_timer handles; every handle is unref'd and its memory
 * goes in its close callback. Avahi calls back from those handles; the
 * callbacks here call Lua under protection and never free the client
 * they run for (a close asked for from inside one is done from a timer).
 */
#include "avahi.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/timeval.h>
#include <avahi-common/watch.h>
#include <lauxlib.h>
#include <uv.h>

#include "log.h"
#include "lua_util.h"

#define PUB_MT "tp.avahi.publisher"
#define BROWSER_MT "tp.avahi.browser"

/* Seconds before a failed client is made again: doubles up to the max. */
#define RETRY_FIRST_MS 2000
#define RETRY_MAX_MS 60000

/* ------------------------------------------------------------ AvahiPoll */

struct AvahiWatch {
    uv_poll_t poll;
    AvahiWatchCallback cb;
    void *userdata;
    AvahiWatchEvent revents;   /* of the callback running, for get_events */
    int fd;
};

struct AvahiTimeout {
    uv_timer_t timer;
    AvahiTimeoutCallback cb;
    void *userdata;
};

static uv_loop_t *poll_loop;

static void handle_freed(uv_handle_t *h)
{
    free(h->data);
}

static void on_watch(uv_poll_t *p, int status, int events)
{
    AvahiWatch *w = p->data;
    AvahiWatchEvent ev = 0;
    if (status < 0)
        ev |= AVAHI_WATCH_ERR;
    if (events & UV_READABLE)
        ev |= AVAHI_WATCH_IN;
    if (events & UV_WRITABLE)
        ev |= AVAHI_WATCH_OUT;
    if (events & UV_DISCONNECT)
        ev |= AVAHI_WATCH_HUP;
    w->revents = ev;
    w->cb(w, w->fd, ev, w->userdata);
    /* w may be freed (closing) by now: its memory lives until the close
     * callback, so this write is safe. */
    w->revents = 0;
}

static void watch_start(AvahiWatch *w, AvahiWatchEvent event)
{
    int events = 0;
    if (event & AVAHI_WATCH_IN)
        events |= UV_READABLE;
    if (event & AVAHI_WATCH_OUT)
        events |= UV_WRITABLE;
    if (event & AVAHI_WATCH_HUP)
        events |= UV_DISCONNECT;
    if (events)
        uv_poll_start(&w->poll, events, on_watch);
    else
        uv_poll_stop(&w->poll);
}

static AvahiWatch *watch_new(const AvahiPoll *api, int fd,
                             AvahiWatchEvent event, AvahiWatchCallback cb,
                             void *userdata)
{
    AvahiWatch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (uv_poll_init(poll_loop, &w->poll, fd) != 0) {
        free(w);
        return NULL;
    }
    w->poll.data = w;
    w->cb = cb;
    w->userdata = userdata;
    w->fd = fd;
    uv_unref((uv_handle_t *)&w->poll);
    watch_start(w, event);
    return w;
}

static void watch_update(AvahiWatch *w, AvahiWatchEvent event)
{
    watch_start(w, event);
}

static AvahiWatchEvent watch_get_events(AvahiWatch *w)
{
    return w->revents;
}

static void watch_free(AvahiWatch *w)
{
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, handle_freed);
}

static void on_timeout(uv_timer_t *t)
{
    AvahiTimeout *to = t->data;
    to->cb(to, to->userdata);
}

static void timeout_start(AvahiTimeout *t, const struct timeval *tv)
{
    uv_timer_stop(&t->timer);
    if (!tv)
        return;
    AvahiUsec age = avahi_age(tv);       /* negative: in the future */
    uint64_t ms = age >= 0 ? 0 : (uint64_t)((-age + 999) / 1000);
    uv_timer_start(&t->timer, on_timeout, ms, 0);
}

static AvahiTimeout *timeout_new(const AvahiPoll *api,
                                 const struct timeval *tv,
                                 AvahiTimeoutCallback cb, void *userdata)
{
    AvahiTimeout *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    uv_timer_init(poll_loop, &t->timer);
    uv_unref((uv_handle_t *)&t->timer);
    t->timer.data = t;
    t->cb = cb;
    t->userdata = userdata;
    timeout_start(t, tv);
    return t;
}

static void timeout_update(AvahiTimeout *t, const struct timeval *tv)
{
    timeout_start(t, tv);
}

static void timeout_free(AvahiTimeout *t)
{
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, handle_freed);
}

static const AvahiPoll poll_api = {
    .userdata = NULL,
    .watch_new = watch_new,
    .watch_update = watch_update,
    .watch_get_events = watch_get_events,
    .watch_free = watch_free,
    .timeout_new = timeout_new,
    .timeout_update = timeout_update,
    .timeout_free = timeout_free,
};

/* ------------------------------------------------------------ objects */

typedef struct svc {
    char *type;
    uint16_t port;
    AvahiIfIndex ifindex;
    AvahiProtocol proto;
} svc_t;

typedef struct obj {
    bool is_pub;
    lua_State *L;              /* main state */
    int fn_ref;
    AvahiClient *client;
    int in_cb;                 /* Avahi callbacks running for this object */
    bool closing;              /* close asked for inside a callback */
    bool failed;               /* the client failed: made again later */
    struct obj **box;          /* the Lua box's pointer, or NULL */
    struct obj *prev, *next;   /* live objects */
    uv_timer_t timer;          /* retries, deferred close */
    unsigned retry_ms;
    const char *state;
    /* publisher */
    AvahiEntryGroup *group;
    char *name;                /* in use (Avahi's alternative after a
                                * collision) */
    char *want_name;           /* as Lua gave it */
    svc_t *svcs;
    int nsvcs;
    AvahiStringList *txt;
    bool published;            /* the group holds the services */
} obj_t;

static obj_t *live;

static void obj_link(obj_t *o)
{
    o->next = live;
    if (live)
        live->prev = o;
    live = o;
}

static void obj_unlink(obj_t *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else if (live == o)
        live = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
}

static void free_svcs(obj_t *o)
{
    for (int i = 0; i < o->nsvcs; i++)
        free(o->svcs[i].type);
    free(o->svcs);
    o->svcs = NULL;
    o->nsvcs = 0;
}

/* Calls the Lua callback with (event, detail string or nil). */
static void emit(obj_t *o, const char *event, const char *detail)
{
    if (o->fn_ref == LUA_NOREF)
        return;
    lua_State *L = o->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, o->fn_ref);
    lua_pushstring(L, event);
    if (detail)
        lua_pushstring(L, detail);
    else
        lua_pushnil(L);
    o->in_cb++;
    tp_lua_pcall_logged(L, 2, "zeroconf callback");
    o->in_cb--;
}

static void obj_freed(uv_handle_t *h)
{
    obj_t *o = h->data;
    free(o);
}

/* Frees the client (which frees its groups, browsers and resolvers). */
static void obj_drop_client(obj_t *o)
{
    if (o->client) {
        avahi_client_free(o->client);
        o->client = NULL;
    }
    o->group = NULL;
    o->published = false;
}

static void obj_destroy(obj_t *o)
{
    obj_unlink(o);
    if (o->box)
        *o->box = NULL;
    o->box = NULL;
    obj_drop_client(o);
    if (o->fn_ref != LUA_NOREF)
        luaL_unref(o->L, LUA_REGISTRYINDEX, o->fn_ref);
    o->fn_ref = LUA_NOREF;
    free(o->name);
    free(o->want_name);
    free_svcs(o);
    avahi_string_list_free(o->txt);
    o->txt = NULL;
    uv_timer_stop(&o->timer);
    uv_close((uv_handle_t *)&o->timer, obj_freed);
}

static void on_obj_timer(uv_timer_t *t);

/* Closes now, or from the timer when an Avahi callback is running. */
static void obj_close(obj_t *o)
{
    if (o->in_cb > 0) {
        o->closing = true;
        if (o->fn_ref != LUA_NOREF)
            luaL_unref(o->L, LUA_REGISTRYINDEX, o->fn_ref);
        o->fn_ref = LUA_NOREF;
        uv_timer_start(&o->timer, on_obj_timer, 0, 0);
        return;
    }
    obj_destroy(o);
}

void tp_avahi_close_all(void)
{
    while (live) {
        live->in_cb = 0;
        obj_destroy(live);
    }
}

/* ------------------------------------------------------------ publisher */

static void publish(obj_t *o);

/* Takes Avahi's alternative to the name in use ("Name #2"); false when
 * there is none. */
static bool next_name(obj_t *o)
{
    char *alt = avahi_alternative_service_name(o->name);
    if (!alt)
        return false;
    free(o->name);
    o->name = strdup(alt);
    avahi_free(alt);
    return true;
}

/* Makes the client again later: 2 s, doubling up to the max. */
static void schedule_retry(obj_t *o)
{
    if (o->closing)
        return;
    o->retry_ms = o->retry_ms ? o->retry_ms * 2 : RETRY_FIRST_MS;
    if (o->retry_ms > RETRY_MAX_MS)
        o->retry_ms = RETRY_MAX_MS;
    uv_timer_start(&o->timer, on_obj_timer, o->retry_ms, 0);
}

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state,
                     void *userdata)
{
    obj_t *o = userdata;
    o->group = g;
    if (o->closing)
        return;
    switch (state) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        o->state = "established";
        emit(o, "established", o->name);
        break;
    case AVAHI_ENTRY_GROUP_COLLISION: {
        next_name(o);
        emit(o, "collision", o->name);
        if (o->closing || !o->group)
            break;
        avahi_entry_group_reset(o->group);
        o->published = false;
        publish(o);
        break;
    }
    case AVAHI_ENTRY_GROUP_FAILURE:
        emit(o, "error", avahi_strerror(avahi_client_errno(
                              avahi_entry_group_get_client(g))));
        break;
    default:
        break;
    }
}

/* Adds the services to the group and commits it, when the daemon is
 * there and they are not published yet; else updates their TXT. */
static void publish(obj_t *o)
{
    if (o->closing || !o->client || !o->name || o->nsvcs == 0 ||
        avahi_client_get_state(o->client) != AVAHI_CLIENT_S_RUNNING)
        return;
    if (!o->group) {
        o->group = avahi_entry_group_new(o->client, group_cb, o);
        if (!o->group) {
            emit(o, "error", avahi_strerror(avahi_client_errno(o->client)));
            return;
        }
        o->published = false;
    }
    if (o->published) {
        for (int i = 0; i < o->nsvcs; i++) {
            svc_t *s = &o->svcs[i];
            int rc = avahi_entry_group_update_service_txt_strlst(
                o->group, s->ifindex, s->proto, 0, o->name, s->type, NULL,
                o->txt);
            if (rc < 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "cannot update the TXT of %s: %s",
                         s->type, avahi_strerror(rc));
                emit(o, "error", msg);
            }
        }
        return;
    }
    int added = 0;
    for (int i = 0; i < o->nsvcs && !o->closing; i++) {
        svc_t *s = &o->svcs[i];
        int rc;
        for (int tries = 0; tries < 20; tries++) {
            rc = avahi_entry_group_add_service_strlst(
                o->group, s->ifindex, s->proto, 0, o->name, s->type, NULL,
                NULL, s->port, o->txt);
            if (rc != AVAHI_ERR_COLLISION)
                break;
            /* Taken on this host already: the next name, everything
             * again under it. */
            if (!next_name(o))
                break;
            emit(o, "collision", o->name);
            if (o->closing || !o->group)
                return;
            avahi_entry_group_reset(o->group);
            i = 0;
            added = 0;
            s = &o->svcs[0];
        }
        if (rc < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "cannot publish %s on port %u: %s",
                     s->type, (unsigned)s->port, avahi_strerror(rc));
            emit(o, "error", msg);
            if (o->closing || !o->group)
                return;
        } else {
            added++;
        }
    }
    if (added == 0 || o->closing || !o->group)
        return;
    int rc = avahi_entry_group_commit(o->group);
    if (rc < 0) {
        emit(o, "error", avahi_strerror(rc));
        return;
    }
    o->published = true;
}

static void client_new(obj_t *o);

static void client_cb(AvahiClient *c, AvahiClientState state,
                      void *userdata)
{
    obj_t *o = userdata;
    o->client = c;             /* may run inside avahi_client_new */
    if (o->closing)
        return;
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        o->retry_ms = 0;
        o->state = "running";
        emit(o, "running", avahi_client_get_host_name_fqdn(c));
        publish(o);
        break;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The host name changes: publish again once it is running. */
        if (o->group)
            avahi_entry_group_reset(o->group);
        o->published = false;
        break;
    case AVAHI_CLIENT_CONNECTING:
        /* No daemon (yet, or any more): what it had is gone. */
        if (o->group)
            avahi_entry_group_free(o->group);
        o->group = NULL;
        o->published = false;
        if (!o->state || strcmp(o->state, "waiting") != 0) {
            o->state = "waiting";
            emit(o, "waiting", "avahi-daemon is not running");
        }
        break;
    case AVAHI_CLIENT_FAILURE: {
        o->state = "failed";
        o->failed = true;
        o->group = NULL;
        o->published = false;
        char msg[256];
        snprintf(msg, sizeof msg, "%s", avahi_strerror(avahi_client_errno(c)));
        emit(o, "failure", msg);
        schedule_retry(o);
        break;
    }
    default:
        break;
    }
}

static void client_new(obj_t *o)
{
    int err = 0;
    o->failed = false;
    o->in_cb++;
    AvahiClient *c = avahi_client_new(&poll_api,
                                      o->is_pub ? AVAHI_CLIENT_NO_FAIL : 0,
                                      client_cb, o, &err);
    o->in_cb--;
    if (o->closing)
        return;
    if (c) {
        o->client = c;
        return;
    }
    o->client = NULL;
    o->state = "failed";
    emit(o, "failure", avahi_strerror(err));
    schedule_retry(o);
}

/* The deferred close, or the retry of a failed client. */
static void on_obj_timer(uv_timer_t *t)
{
    obj_t *o = t->data;
    if (o->closing) {
        obj_destroy(o);
        return;
    }
    if (o->client && o->failed)
        obj_drop_client(o);
    if (!o->client && o->is_pub)
        client_new(o);
}

static obj_t *obj_new(lua_State *L, bool is_pub, const char *mt)
{
    obj_t *o = calloc(1, sizeof *o);
    if (!o)
        luaL_error(L, "out of memory");
    poll_loop = tp_lua_loop(L);
    o->is_pub = is_pub;
    o->L = tp_lua_main(L);
    o->fn_ref = LUA_NOREF;
    uv_timer_init(poll_loop, &o->timer);
    uv_unref((uv_handle_t *)&o->timer);
    o->timer.data = o;
    obj_link(o);
    obj_t **box = lua_newuserdata(L, sizeof *box);
    *box = o;
    o->box = box;
    luaL_getmetatable(L, mt);
    lua_setmetatable(L, -2);
    return o;
}

static obj_t *check_obj(lua_State *L, const char *mt)
{
    obj_t **box = luaL_checkudata(L, 1, mt);
    if (!*box || (*box)->closing)
        luaL_error(L, "the object is closed");
    return *box;
}

/* avahi.publisher(fn) -> p */
static int l_publisher(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    obj_t *o = obj_new(L, true, PUB_MT);
    lua_pushvalue(L, 1);
    o->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    client_new(o);
    return 1;
}

static bool same_services(obj_t *o, const svc_t *svcs, int n)
{
    if (n != o->nsvcs)
        return false;
    for (int i = 0; i < n; i++) {
        if (strcmp(svcs[i].type, o->svcs[i].type) != 0 ||
            svcs[i].port != o->svcs[i].port ||
            svcs[i].ifindex != o->svcs[i].ifindex ||
            svcs[i].proto != o->svcs[i].proto)
            return false;
    }
    return true;
}

/* p:set(name, services, txt) */
static int l_pub_set(lua_State *L)
{
    obj_t *o = check_obj(L, PUB_MT);
    const char *name = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    if (!avahi_is_valid_service_name(name))
        return luaL_error(L, "not a valid service name: %s", name);
    int n = (int)lua_objlen(L, 3);
    if (n > 64)
        return luaL_error(L, "too many services");
    /* Everything read (and checked) before anything is changed. */
    svc_t svcs[64];
    memset(svcs, 0, sizeof svcs);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 3, i + 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "service %d is not a table", i + 1);
        lua_getfield(L, -1, "type");
        const char *type = lua_tostring(L, -1);
        if (!type || !avahi_is_valid_service_type_strict(type))
            return luaL_error(L, "service %d: bad type", i + 1);
        svcs[i].type = (char *)type;
        lua_pop(L, 1);
        lua_getfield(L, -1, "port");
        int port = (int)lua_tointeger(L, -1);
        if (port <= 0 || port > 65535)
            return luaL_error(L, "service %d: bad port", i + 1);
        svcs[i].port = (uint16_t)port;
        lua_pop(L, 1);
        lua_getfield(L, -1, "interface");
        svcs[i].ifindex = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1)
                                              : AVAHI_IF_UNSPEC;
        lua_pop(L, 1);
        lua_getfield(L, -1, "protocol");
        const char *proto = lua_tostring(L, -1);
        svcs[i].proto = !proto ? AVAHI_PROTO_UNSPEC
                        : strcmp(proto, "inet6") == 0 ? AVAHI_PROTO_INET6
                        : strcmp(proto, "inet") == 0 ? AVAHI_PROTO_INET
                        : AVAHI_PROTO_UNSPEC;
        lua_pop(L, 2);
    }
    AvahiStringList *txt = NULL;
    int nt = (int)lua_objlen(L, 4);
    for (int i = nt; i >= 1; i--) {   /* prepend: keeps the order */
        lua_rawgeti(L, 4, i);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (s && len > 0 && len <= 255) {
            AvahiStringList *l = avahi_string_list_add_arbitrary(
                txt, (const uint8_t *)s, len);
            if (l)
                txt = l;
        }
        lua_pop(L, 1);
    }
    bool changed = !o->want_name || strcmp(o->want_name, name) != 0 ||
                   !same_services(o, svcs, n);
    if (!changed && avahi_string_list_equal(txt, o->txt)) {
        avahi_string_list_free(txt);
        return 0;
    }
    avahi_string_list_free(o->txt);
    o->txt = txt;
    if (changed) {
        free(o->want_name);
        free(o->name);
        o->want_name = strdup(name);
        o->name = strdup(name);
        free_svcs(o);
        if (n > 0) {
            o->svcs = calloc((size_t)n, sizeof *o->svcs);
            if (!o->svcs)
                return luaL_error(L, "out of memory");
            for (int i = 0; i < n; i++) {
                o->svcs[i] = svcs[i];
                o->svcs[i].type = strdup(svcs[i].type);
            }
            o->nsvcs = n;
        }
        if (o->group) {
            avahi_entry_group_reset(o->group);
            o->published = false;
        }
    }
    publish(o);
    return 0;
}

static int l_obj_close(lua_State *L)
{
    obj_t **box = lua_touserdata(L, 1);
    if (box && *box && !(*box)->closing) {
        obj_t *o = *box;
        *box = NULL;
        o->box = NULL;
        obj_close(o);
    }
    return 0;
}

static int l_pub_index(lua_State *L)
{
    obj_t **box = luaL_checkudata(L, 1, PUB_MT);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "set") == 0) {
        lua_pushcfunction(L, l_pub_set);
        return 1;
    }
    if (strcmp(k, "close") == 0) {
        lua_pushcfunction(L, l_obj_close);
        return 1;
    }
    obj_t *o = *box;
    if (strcmp(k, "name") == 0 && o && o->name) {
        lua_pushstring(L, o->name);
        return 1;
    }
    if (strcmp(k, "state") == 0) {
        lua_pushstring(L, !o ? "closed" : o->state ? o->state : "starting");
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* ------------------------------------------------------------ browser */

static void resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface,
                       AvahiProtocol proto, AvahiResolverEvent event,
                       const char *name, const char *type,
                       const char *domain, const char *host,
                       const AvahiAddress *address, uint16_t port,
                       AvahiStringList *txt, AvahiLookupResultFlags flags,
                       void *userdata)
{
    obj_t *o = userdata;
    if (event == AVAHI_RESOLVER_FOUND && !o->closing &&
        o->fn_ref != LUA_NOREF) {
        lua_State *L = o->L;
        lua_rawgeti(L, LUA_REGISTRYINDEX, o->fn_ref);
        lua_pushliteral(L, "found");
        lua_createtable(L, 0, 9);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, type);
        lua_setfield(L, -2, "type");
        lua_pushstring(L, domain);
        lua_setfield(L, -2, "domain");
        lua_pushstring(L, host);
        lua_setfield(L, -2, "host");
        char addr[AVAHI_ADDRESS_STR_MAX];
        if (address) {
            avahi_address_snprint(addr, sizeof addr, address);
            lua_pushstring(L, addr);
            lua_setfield(L, -2, "address");
        }
        lua_pushinteger(L, port);
        lua_setfield(L, -2, "port");
        lua_pushinteger(L, iface);
        lua_setfield(L, -2, "interface");
        lua_pushstring(L, proto == AVAHI_PROTO_INET6 ? "inet6" : "inet");
        lua_setfield(L, -2, "protocol");
        lua_newtable(L);
        for (AvahiStringList *l = txt; l; l = avahi_string_list_get_next(l)) {
            char *key = NULL, *value = NULL;
            size_t vlen = 0;
            if (avahi_string_list_get_pair(l, &key, &value, &vlen) == 0) {
                lua_pushstring(L, key);
                if (value)
                    lua_pushlstring(L, value, vlen);
                else
                    lua_pushboolean(L, 1);
                lua_rawset(L, -3);
                avahi_free(key);
                avahi_free(value);
            }
        }
        lua_setfield(L, -2, "txt");
        o->in_cb++;
        tp_lua_pcall_logged(L, 2, "zeroconf browse callback");
        o->in_cb--;
    }
    avahi_service_resolver_free(r);
}

static void browse_cb(AvahiServiceBrowser *b, AvahiIfIndex iface,
                      AvahiProtocol proto, AvahiBrowserEvent event,
                      const char *name, const char *type,
                      const char *domain, AvahiLookupResultFlags flags,
                      void *userdata)
{
    obj_t *o = userdata;
    if (o->closing)
        return;
    switch (event) {
    case AVAHI_BROWSER_NEW:
        if (!avahi_service_resolver_new(o->client, iface, proto, name, type,
                                        domain, AVAHI_PROTO_UNSPEC, 0,
                                        resolve_cb, o))
            tp_log_warn("zeroconf", "cannot resolve %s: %s", name,
                        avahi_strerror(avahi_client_errno(o->client)));
        break;
    case AVAHI_BROWSER_ALL_FOR_NOW:
        emit(o, "all_for_now", type);
        break;
    case AVAHI_BROWSER_FAILURE:
        emit(o, "failure", avahi_strerror(avahi_client_errno(o->client)));
        break;
    default:
        break;
    }
}

/* avahi.browse(types, fn) -> b | nil, err */
static int l_browse(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    obj_t *o = obj_new(L, false, BROWSER_MT);
    int err = 0;
    o->in_cb++;
    o->client = avahi_client_new(&poll_api, 0, client_cb, o, &err);
    o->in_cb--;
    if (!o->client) {
        lua_pushnil(L);
        lua_pushstring(L, avahi_strerror(err));
        obj_close(o);
        return 2;
    }
    lua_pushvalue(L, 2);
    o->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int n = (int)lua_objlen(L, 1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        const char *type = lua_tostring(L, -1);
        if (type && !avahi_service_browser_new(o->client, AVAHI_IF_UNSPEC,
                                               AVAHI_PROTO_UNSPEC, type,
                                               NULL, 0, browse_cb, o)) {
            lua_pushnil(L);
            lua_pushfstring(L, "cannot browse %s: %s", type,
                            avahi_strerror(avahi_client_errno(o->client)));
            return 2;
        }
        lua_pop(L, 1);
    }
    return 1;
}

static int l_browser_index(lua_State *L)
{
    luaL_checkudata(L, 1, BROWSER_MT);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "close") == 0) {
        lua_pushcfunction(L, l_obj_close);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* ------------------------------------------------------------ interfaces */

/* avahi.interface_of(address) -> index, protocol, loopback */
static int l_interface_of(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    unsigned char want[16];
    int family = 0;
    size_t alen = 0;
    if (inet_pton(AF_INET, host, want) == 1) {
        family = AF_INET;
        alen = 4;
    } else if (inet_pton(AF_INET6, host, want) == 1) {
        family = AF_INET6;
        alen = 16;
    }
    static const unsigned char zero[16];
    if (!family || memcmp(want, zero, alen) == 0) {
        /* A wildcard (every interface) or a name. */
        lua_pushinteger(L, AVAHI_IF_UNSPEC);
        if (family == AF_INET)
            lua_pushliteral(L, "inet");
        else
            lua_pushnil(L);
        return 2;
    }
    struct ifaddrs *all;
    if (getifaddrs(&all) == 0) {
        for (struct ifaddrs *a = all; a; a = a->ifa_next) {
            if (!a->ifa_addr || a->ifa_addr->sa_family != family)
                continue;
            const void *got = family == AF_INET
                ? (const void *)&((struct sockaddr_in *)a->ifa_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)a->ifa_addr)
                      ->sin6_addr;
            if (memcmp(got, want, alen) == 0) {
                lua_pushinteger(L, (lua_Integer)if_nametoindex(a->ifa_name));
                lua_pushstring(L, family == AF_INET ? "inet" : "inet6");
                lua_pushboolean(L, (a->ifa_flags & IFF_LOOPBACK) != 0);
                freeifaddrs(all);
                return 3;
            }
        }
        freeifaddrs(all);
    }
    lua_pushinteger(L, AVAHI_IF_UNSPEC);
    lua_pushstring(L, family == AF_INET ? "inet" : "inet6");
    lua_pushboolean(L, (family == AF_INET && want[0] == 127) ||
                           (family == AF_INET6 && want[15] == 1 &&
                            memcmp(want, zero, 15) == 0));
    return 3;
}

static int l_obj_gc(lua_State *L)
{
    return l_obj_close(L);
}

int luaopen_tp_avahi(lua_State *L)
{
    luaL_newmetatable(L, PUB_MT);
    lua_pushcfunction(L, l_pub_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_obj_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, BROWSER_MT);
    lua_pushcfunction(L, l_browser_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_obj_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        { "publisher", l_publisher },
        { "browse", l_browse },
        { "interface_of", l_interface_of },
        { NULL, NULL },
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
