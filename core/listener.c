/*
 * listener.c: the server's listeners: binding, accepting, the connection
 * limit and its refusals, certificate reloads, the clean stop (see
 * listener.h).
 */
#include "listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "codec.h"
#include "framing.h"
#include "http.h"
#include "log.h"
#include "tls.h"

/* Over-limit connections kept open at once to be told "server full";
 * more are closed as soon as they are accepted. */
#define REFUSE_SLOTS 64

/* Once a second: logged-in connections idle past limits.idle_ms, and
 * frames begun but not whole after limits.frame_ms (a client holding a
 * slot with half a frame), are closed. */
static void on_sweep(uv_timer_t *t)
{
    tp_server_t *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    const tp_limits_t *lim = &srv->limits;
    for (tp_conn_t *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing || c->refusing)
            continue;
        if (c->proto == &tp_http_proto) {
            tp_http_sweep(c, now);
            continue;
        }
        if (lim->idle_ms && c->logged_in &&
            now - c->last_input_ms > lim->idle_ms) {
            tp_log_info("net", "conn=%llu peer=%s sent nothing for %llu s: "
                        "closing", (unsigned long long)c->id, c->peer,
                        (unsigned long long)(lim->idle_ms / 1000));
            tp_conn_close(c, "idle timeout");
        } else if (lim->frame_ms && c->partial_ms &&
                   now - c->partial_ms > lim->frame_ms) {
            tp_log_info("net", "conn=%llu peer=%s left a frame unfinished "
                        "for %llu s: closing", (unsigned long long)c->id,
                        c->peer, (unsigned long long)(lim->frame_ms / 1000));
            tp_conn_close(c, "frame not finished");
        }
    }
}

/* Whether peers a and b ("ip:port", "[ip6]:port") share the address. */
static bool same_address(const char *a, const char *b)
{
    const char *ea = strrchr(a, ':'), *eb = strrchr(b, ':');
    if (!ea || !eb || ea - a != eb - b)
        return false;
    return memcmp(a, b, (size_t)(ea - a)) == 0;
}

void tp_server_init(tp_server_t *srv, uv_loop_t *loop)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->limits.max_frame = TP_FRAME_MAX_DEFAULT;
    srv->limits.output_high = 4u << 20;
    srv->limits.output_max = 16u << 20;
    srv->limits.output_total = (size_t)256 << 20;
    srv->limits.stall_ms = 60000;
    srv->limits.max_conns = 4096;
    srv->limits.handshake_ms = 10000;
    srv->limits.login_ms = 120000;
    srv->limits.rate = 0;
    srv->limits.burst = 100;
    srv->limits.idle_ms = 3600000;
    srv->limits.frame_ms = 60000;
    srv->limits.per_addr = 1024;
    srv->limits.http_header_max = 16384;
    srv->limits.http_body_max = 1u << 20;
    srv->limits.http_request_ms = 30000;
    srv->limits.http_keepalive_ms = 60000;
    srv->next_conn_id = 1;
    /* The sweep never keeps the loop alive by itself. */
    uv_timer_init(loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_timer_start(&srv->sweep, on_sweep, 1000, 1000);
    uv_unref((uv_handle_t *)&srv->sweep);
}

/* True when a line may be logged now (at most one a second); *held is
 * then the number of lines held back since the previous one. */
static bool ratelog_allow(tp_ratelog_t *r, uint64_t now, uint64_t *held)
{
    if (r->last_ms != 0 && now - r->last_ms < 1000) {
        r->held++;
        return false;
    }
    *held = r->held;
    r->held = 0;
    r->last_ms = now ? now : 1;
    return true;
}

static void format_utc(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) ||
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

/* Raises the soft open-file limit to what max_conns connections need
 * (plus room for the listeners, the database and the refusing slots). */
static void fit_nofile(uint32_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)max_conns + REFUSE_SLOTS + 256;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    rlim_t cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ?
                 want : rl.rlim_max;
    rl.rlim_cur = cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || cur < want)
        tp_log_warn("net", "the open-file limit (%llu) is below what "
                    "max_connections=%u needs (%llu): connections past it "
                    "cannot be accepted; raise it (ulimit -n)",
                    (unsigned long long)cur, max_conns,
                    (unsigned long long)want);
}

void tp_server_set_limits(tp_server_t *srv, const tp_limits_t *lim)
{
    srv->limits = *lim;
    fit_nofile(lim->max_conns);
}

void tp_server_unlink(tp_server_t *srv, tp_conn_t *c)
{
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->linked = false;
    if (c->refusing) {
        srv->num_refusing--;
    } else {
        srv->num_conns--;
        c->lst->stats.open--;
    }
}

/* ------------------------------------------------------------ TP */

void tp_server_conn_closed(tp_conn_t *c, const char *reason)
{
    tp_server_t *srv = c->srv;
    if (c->tr->encrypted && !c->tr->ready(c) && !srv->stopping && c->lst)
        c->lst->stats.tls_failed++;
    if (srv->handlers.closed)
        srv->handlers.closed(srv->handlers.ud, c, reason);
}

void tp_server_conn_gone(tp_conn_t *c)
{
    tp_server_unlink(c->srv, c);
}

/* A TP connection starts closing: the log line, then the server's part. */
static void tp_closed(tp_conn_t *c, const char *reason)
{
    /* Refused connections were counted and logged (rate-limited) when
     * they came in. */
    tp_log(c->refusing ? TP_LOG_DEBUG : TP_LOG_INFO, "net",
           "conn=%llu peer=%s closed reason=\"%s\"",
           (unsigned long long)c->id, c->peer, reason ? reason : "");
    tp_server_conn_closed(c, reason);
}

/* What TP connections carry: frames (framing.c). */
static const tp_conn_proto_t tp_proto = {
    .name = "tp", .stats = true, .input = tp_framing_input,
    .closed = tp_closed, .gone = tp_server_conn_gone,
};

/* ------------------------------------------------------------ accepting */

static void format_peer(uv_tcp_t *tcp, char *out, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    snprintf(out, len, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl) != 0)
        return;
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, len, "%s:%d", ip, port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, len, "[%s]:%d", ip, port);
    }
}

/* "connection limit reached", at most once a second. */
static void log_full(tp_listener_t *lst, const char *peer)
{
    tp_server_t *srv = lst->srv;
    uint64_t held;
    if (!ratelog_allow(&srv->full_log, uv_now(srv->loop), &held))
        return;
    char more[64] = "";
    if (held)
        snprintf(more, sizeof more, " (%llu more refused since the last "
                 "message)", (unsigned long long)held);
    tp_log_warn("net", "connection limit (%u) reached: refusing %s on %s "
                "%s:%d%s", srv->limits.max_conns, peer, lst->kind,
                lst->host, lst->port, more);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Over the limit with every refusing slot taken: accept and close at once
 * (leaving it in the backlog would stall the listener). */
static void refuse_now(uv_stream_t *server, tp_listener_t *lst)
{
    lst->stats.refused++;
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(lst->srv->loop, t);
    char peer[64] = "?";
    if (uv_accept(server, (uv_stream_t *)t) == 0)
        format_peer(t, peer, sizeof peer);
    uv_close((uv_handle_t *)t, free_handle);
    log_full(lst, peer);
}

static void on_connection(uv_stream_t *server, int status)
{
    tp_listener_t *lst = server->data;
    tp_server_t *srv = lst->srv;
    uint64_t now = uv_now(srv->loop);
    if (status < 0) {
        uint64_t held;
        if (ratelog_allow(&srv->accept_log, now, &held))
            tp_log_warn("net", "accept on %s:%d failed: %s (%llu more "
                        "since the last message)", lst->host, lst->port,
                        uv_strerror(status), (unsigned long long)held);
        return;
    }
    /* Admin connections are never counted against the players' limit. */
    bool over = lst->set != TP_SET_ADMIN &&
                srv->num_conns >= srv->limits.max_conns;
    if (over && srv->num_refusing >= REFUSE_SLOTS) {
        refuse_now(server, lst);
        return;
    }
    tp_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        refuse_now(server, lst);
        return;
    }
    /* The transport is the listener's kind: the one place it is picked. */
    if (tp_conn_init(c, srv->loop, TP_CONN_TCP,
                     lst->tls ? &tp_transport_tls : &tp_transport_tcp,
                     lst->web ? &tp_http_proto : &tp_proto,
                     &srv->limits) != 0) {
        free(c);
        refuse_now(server, lst);
        return;
    }
    c->srv = srv;
    c->lst = lst;
    c->set = lst->set;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        lst->stats.refused++;
        tp_conn_abort(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (lst->web) {
        if (!tp_http_attach(c)) {
            lst->stats.refused++;
            tp_conn_abort(c);
            return;
        }
        c->logged_in = true;    /* no TP login deadline; http.h's own */
    }
    c->id = srv->next_conn_id++;
    c->sniff = lst->http;
    c->accepted_ms = now;
    c->tokens = srv->limits.burst;
    c->tokens_ms = now;
    format_peer(&c->tcp, c->peer, sizeof c->peer);
    c->last_input_ms = now;
    /* One address may not take every slot (limits.per_addr). */
    if (!over && lst->set != TP_SET_ADMIN && srv->limits.per_addr) {
        uint32_t same = 0;
        for (tp_conn_t *o = srv->conns; o; o = o->next)
            if (!o->refusing && same_address(o->peer, c->peer))
                same++;
        if (same >= srv->limits.per_addr &&
            srv->num_refusing < REFUSE_SLOTS) {
            over = true;
            c->refuse_why = "too many connections from your address, "
                            "try again later";
        }
    }
    c->refusing = over;
    c->linked = true;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    if (over) {
        srv->num_refusing++;
        lst->stats.refused++;
        uint64_t held;
        if (!c->refuse_why)
            log_full(lst, c->peer);
        else if (ratelog_allow(&srv->full_log, now, &held))
            tp_log_warn("net", "refusing %s on %s %s:%d: %u connections "
                        "from that address already (%llu more refused "
                        "since the last message)", c->peer, lst->kind,
                        lst->host, lst->port, srv->limits.per_addr,
                        (unsigned long long)held);
    } else {
        srv->num_conns++;
        lst->stats.accepted++;
        lst->stats.open++;
        tp_log_info("net", "conn=%llu peer=%s accepted on %s %s:%d",
                    (unsigned long long)c->id, c->peer, lst->kind, lst->host,
                    lst->port);
    }
    if (lst->tls) {
        c->tls = tp_tls_new(lst->tls_ctx);
        if (!c->tls) {
            c->tr = &tp_transport_tcp;   /* nothing of TLS to free */
            tp_conn_close(c, "out of memory");
            return;
        }
    }
    if (!over && srv->handlers.open)
        srv->handlers.open(srv->handlers.ud, c);
    tp_conn_start(c);
}

static void listener_closed(uv_handle_t *h)
{
    tp_listener_t *lst = h->data;
    tp_tls_ctx_free(lst->tls_ctx);
    free(lst);
}

int tp_listen_address(const char *host, int port,
                      struct sockaddr_storage *ss, char *err, size_t errlen)
{
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

int tp_bound_port(uv_tcp_t *tcp, int port)
{
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&bound, &bl) != 0)
        return port;
    return ntohs(bound.ss_family == AF_INET6 ?
                 ((struct sockaddr_in6 *)&bound)->sin6_port :
                 ((struct sockaddr_in *)&bound)->sin_port);
}

int tp_server_listen(tp_server_t *srv, const char *host, int port,
                     const char *kind, int set, char *err, size_t errlen)
{
    return tp_server_listen_tls(srv, host, port, kind, set, NULL, NULL, err,
                                errlen);
}

int tp_server_listen_tls(tp_server_t *srv, const char *host, int port,
                         const char *kind, int set, const char *cert,
                         const char *key, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int rc;
    bool tls = strcmp(kind, "tps") == 0 || strcmp(kind, "https") == 0 ||
               strcmp(kind, "webs") == 0;
    bool http = strcmp(kind, "http") == 0 || strcmp(kind, "https") == 0;
    bool web = strcmp(kind, "web") == 0 || strcmp(kind, "webs") == 0;
    if (tls && (!cert || !*cert || !key || !*key)) {
        snprintf(err, errlen, "the %s listener on %s port %d needs a TLS "
                 "certificate and key", kind, host, port);
        return UV_EINVAL;
    }
    if (tp_listen_address(host, port, &ss, err, errlen) != 0)
        return UV_EINVAL;
    tp_tls_ctx_t *ctx = NULL;
    if (tls) {
        char why[512];
        ctx = tp_tls_ctx_new(cert, key, why, sizeof why);
        if (!ctx) {
            snprintf(err, errlen, "cannot start the %s listener on %s port "
                     "%d: %s", kind, host, port, why);
            return UV_EINVAL;
        }
    }
    tp_listener_t *lst = calloc(1, sizeof *lst);
    if (!lst) {
        tp_tls_ctx_free(ctx);
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    lst->srv = srv;
    lst->set = set;
    lst->tls = tls;
    lst->http = http;
    lst->web = web;
    lst->tls_ctx = ctx;
    snprintf(lst->kind, sizeof lst->kind, "%s", kind);
    snprintf(lst->host, sizeof lst->host, "%s", host);
    uv_tcp_init(srv->loop, &lst->tcp);
    lst->tcp.data = lst;
    /* IPv6 only on an IPv6 address: "::" and "0.0.0.0" can both be
     * configured on one port. */
    rc = uv_tcp_bind(&lst->tcp, (struct sockaddr *)&ss,
                     ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&lst->tcp, 511, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s port %d (%s): %s", host,
                 port, kind, uv_strerror(rc));
        uv_close((uv_handle_t *)&lst->tcp, listener_closed);
        return rc;
    }
    lst->port = tp_bound_port(&lst->tcp, port);
    lst->next = srv->listeners;
    srv->listeners = lst;
    if (ctx) {
        char when[48];
        format_utc(tp_tls_ctx_not_after(ctx), when, sizeof when);
        tp_log_info("net", "listening on %s %s:%d (certificate %s, valid "
                    "until %s)", kind, host, lst->port, tp_tls_ctx_cert(ctx),
                    when);
    } else {
        tp_log_info("net", "listening on %s %s:%d", kind, host, lst->port);
    }
    return 0;
}

int tp_server_tls_reload(tp_server_t *srv, char *err, size_t errlen)
{
    int failed = 0;
    size_t used = 0;
    if (errlen)
        err[0] = '\0';
    for (tp_listener_t *l = srv->listeners; l; l = l->next) {
        if (!l->tls_ctx)
            continue;
        char why[512];
        if (tp_tls_ctx_reload(l->tls_ctx, why, sizeof why) != 0) {
            failed++;
            tp_log_error("net", "%s listener %s:%d keeps its old "
                         "certificate: %s", l->kind, l->host, l->port, why);
            if (used < errlen) {
                int w = snprintf(err + used, errlen - used, "%s%s",
                                 used ? "; " : "", why);
                if (w > 0)
                    used += (size_t)w;
            }
            continue;
        }
        char when[48];
        format_utc(tp_tls_ctx_not_after(l->tls_ctx), when, sizeof when);
        tp_log_info("net", "%s listener %s:%d: certificate %s loaded again "
                    "(valid until %s)", l->kind, l->host, l->port,
                    tp_tls_ctx_cert(l->tls_ctx), when);
    }
    return failed;
}

void tp_server_stop(tp_server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    for (tp_listener_t *l = srv->listeners, *next; l; l = next) {
        next = l->next;
        tp_log_info("net", "listener %s %s:%d: accepted=%llu refused=%llu "
                    "open=%u tls_done=%llu tls_failed=%llu", l->kind,
                    l->host, l->port,
                    (unsigned long long)l->stats.accepted,
                    (unsigned long long)l->stats.refused, l->stats.open,
                    (unsigned long long)l->stats.tls_done,
                    (unsigned long long)l->stats.tls_failed);
        uv_close((uv_handle_t *)&l->tcp, listener_closed);
    }
    srv->listeners = NULL;
    if (!uv_is_closing((uv_handle_t *)&srv->sweep))
        uv_close((uv_handle_t *)&srv->sweep, NULL);
    for (tp_conn_t *c = srv->conns, *next; c; c = next) {
        next = c->next;
        tp_conn_close(c, "server stopping");
    }
    if (srv->sig_int.loop && !uv_is_closing((uv_handle_t *)&srv->sig_int))
        uv_close((uv_handle_t *)&srv->sig_int, NULL);
    if (srv->sig_term.loop && !uv_is_closing((uv_handle_t *)&srv->sig_term))
        uv_close((uv_handle_t *)&srv->sig_term, NULL);
    if (srv->sig_hup.loop && !uv_is_closing((uv_handle_t *)&srv->sig_hup))
        uv_close((uv_handle_t *)&srv->sig_hup, NULL);
}
