/*
 * net.c: listeners, connections, frame cutting and the version rules of
 * PROTOCOL.md 3.5 (see net.h for the invariants).
 */
#include "net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "codec.h"
#include "log.h"

#define READ_CHUNK 65536
#define LINGER_MS 5000

static const char MSG_NOT_TP[] = "You are not running the correct protocol\n";
static const char MSG_TOO_OLD[] =
    "You are not running the right version of TP, please upgrade\n";

void tp_server_init(tp_server_t *srv, uv_loop_t *loop)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->limits.max_frame = TP_FRAME_MAX_DEFAULT;
    srv->limits.output_high = 4u << 20;
    srv->limits.output_max = 16u << 20;
    srv->limits.stall_ms = 60000;
    srv->next_conn_id = 1;
}

size_t tp_conn_output_room(const tp_conn_t *c)
{
    size_t used = c->out.len + c->write_pending;
    size_t max = c->srv->limits.output_max;
    return used >= max ? 0 : max - used;
}

/* ------------------------------------------------------------ closing */

static void conn_free_if_done(tp_conn_t *c)
{
    if (c->handles_open > 0)
        return;
    tp_buf_free(&c->in);
    tp_buf_free(&c->out);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    tp_conn_t *c = h->data;
    c->handles_open--;
    conn_free_if_done(c);
}

/* Takes c off the server's list (once) and closes its handles; the memory
 * goes when the last close callback has run. */
static void conn_destroy(tp_conn_t *c)
{
    tp_server_t *srv = c->srv;
    if (c->linked) {
        if (c->prev)
            c->prev->next = c->next;
        else
            srv->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
        c->linked = false;
        srv->num_conns--;
        c->lst->stats.open--;
    }
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->stall))
        uv_close((uv_handle_t *)&c->stall, on_handle_closed);
    /* Closing the stream cancels a pending shutdown: its callback then runs
     * first, sees the handle closing and only frees its request. */
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    tp_conn_t *c = req->data;
    free(req);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        conn_destroy(c);
}

static void on_linger_timeout(uv_timer_t *t)
{
    tp_conn_t *c = t->data;
    tp_log_debug("net", "conn=%llu linger timeout, closing",
                 (unsigned long long)c->id);
    conn_destroy(c);
}

void tp_conn_close(tp_conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    tp_log(TP_LOG_INFO, "net", "conn=%llu peer=%s closed reason=\"%s\"",
           (unsigned long long)c->id, c->peer, reason ? reason : "");
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    tp_lua_conn_closed(c->srv->lx, c, reason);
    c->in.len = 0;
    bool was_in_batch = c->in_batch;
    c->in_batch = false;
    tp_conn_flush(c);
    c->in_batch = was_in_batch;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        conn_destroy(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp,
                    on_shutdown) != 0) {
        free(req);
        conn_destroy(c);
        return;
    }
    uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

/* ------------------------------------------------------------ writing */

typedef struct write_req {
    uv_write_t req;      /* libuv request */
    tp_conn_t *conn;     /* owner */
    uint8_t *data;       /* owned bytes being written */
    size_t len;          /* their length */
} write_req_t;

static void conn_start_reading(tp_conn_t *c);
static void process_input(tp_conn_t *c);

static void on_stall(uv_timer_t *t)
{
    tp_conn_t *c = t->data;
    if (c->closing || c->write_pending + c->out.len <=
        c->srv->limits.output_high)
        return;
    tp_log_warn("net", "conn=%llu peer=%s has not read its replies for %llu "
                "ms (%zu bytes waiting): disconnecting",
                (unsigned long long)c->id, c->peer,
                (unsigned long long)c->srv->limits.stall_ms,
                c->write_pending + c->out.len);
    tp_conn_close(c, "client not reading");
}

/* Starts the stall clock when the output passes the high mark. */
static void watch_output(tp_conn_t *c)
{
    if (c->write_pending + c->out.len > c->srv->limits.output_high) {
        if (!uv_is_active((uv_handle_t *)&c->stall))
            uv_timer_start(&c->stall, on_stall, c->srv->limits.stall_ms, 0);
    } else {
        uv_timer_stop(&c->stall);
    }
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    tp_conn_t *c = w->conn;
    c->write_pending -= w->len;
    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
        tp_conn_close(c, uv_strerror(status));
        return;
    }
    if (!c->closing)
        watch_output(c);
    /* Below the high mark again: take up the requests that waited. */
    if (!c->closing && !c->reading &&
        c->write_pending + c->out.len < c->srv->limits.output_high / 2) {
        process_input(c);
        if (!c->closing)
            conn_start_reading(c);
    }
}

void tp_conn_flush(tp_conn_t *c)
{
    if (c->in_batch || c->out.len == 0 ||
        uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    write_req_t *w = malloc(sizeof *w);
    if (!w) {
        c->out.len = 0;
        return;
    }
    w->conn = c;
    w->data = c->out.data;
    w->len = c->out.len;
    size_t max = c->out.max;
    tp_buf_init(&c->out, max);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    c->write_pending += w->len;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->write_pending -= w->len;
        free(w->data);
        free(w);
        tp_conn_close(c, uv_strerror(rc));
        return;
    }
    watch_output(c);
    if (c->write_pending > c->srv->limits.output_max && !c->closing) {
        tp_log_warn("net", "conn=%llu peer=%s output over %zu bytes: the "
                    "client is not reading, disconnecting",
                    (unsigned long long)c->id, c->peer,
                    c->srv->limits.output_max);
        tp_conn_close(c, "output limit");
    }
}

static void send_text_and_close(tp_conn_t *c, const char *text,
                                const char *reason)
{
    tp_buf_append(&c->out, text, strlen(text));
    tp_log_info("net", "conn=%llu peer=%s %s", (unsigned long long)c->id,
                c->peer, reason);
    tp_conn_close(c, reason);
}

/* ------------------------------------------------------------ reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tp_conn_t *c = h->data;
    /* The input cap is one largest frame plus one chunk: while frames are
     * processed it is never reached; while processing is held (pause,
     * output backpressure) reading stops there (see on_read). */
    size_t room = c->in.max - c->in.len;
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;
    if (want == 0 || !tp_buf_reserve(&c->in, want)) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->in.data + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

/* Handles one complete frame whose header is h and body follows. */
static void handle_frame(tp_conn_t *c, const tp_header_t *h,
                         const uint8_t *body)
{
    tp_lua_t *lx = c->srv->lx;
    int hv = h->cls == TP_HDR_TP03 ? 3 : h->cls == TP_HDR_TP04 ? 4 : 0;
    if (c->version == 0) {
        if (hv == 0) {
            /* A version we do not speak: answer in the best version the
             * client may understand, echoing its sequence number. */
            int fv = h->cls == TP_HDR_UNSUP_BIN ? 4 : 3;
            tp_log_info("net", "conn=%llu peer=%s unsupported protocol "
                        "version, seq=%u", (unsigned long long)c->id,
                        c->peer, h->seq);
            tp_lua_send_fail(lx, c, fv, h->seq, TP_FAIL_PROTOCOL,
                             "unsupported protocol version; this server "
                             "speaks TP03 and TP04");
            return;
        }
        c->version = hv;
        tp_log_debug("net", "conn=%llu protocol TP0%d",
                     (unsigned long long)c->id, hv);
    } else if (hv != c->version) {
        tp_log_info("net", "conn=%llu frame with another protocol version",
                    (unsigned long long)c->id);
        tp_lua_send_fail(lx, c, c->version, h->seq, TP_FAIL_PROTOCOL,
                         "Protocol Error, wrong version number");
        return;
    }
    if (h->frame_version != 0) {
        tp_lua_send_fail(lx, c, c->version, h->seq, TP_FAIL_FRAME_VERSION,
                         "frame version not supported (only 0)");
        return;
    }
    tp_lua_request(lx, c, h, body);
}

static void process_input(tp_conn_t *c)
{
    tp_server_t *srv = c->srv;
    size_t off = 0;
    bool held = false;     /* stopped with whole frames possibly left */
    c->in_batch = true;
    while (!c->closing) {
        if (c->paused) {
            held = true;
            if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = false;
            }
            break;
        }
        if (c->write_pending + c->out.len > srv->limits.output_high) {
            /* The client is not reading its answers: stop reading its
             * requests until the output drains (on_write resumes). */
            if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = false;
            }
            held = true;
            break;
        }
        const uint8_t *p = c->in.data + off;
        size_t n = c->in.len - off;
        if (n == 0)
            break;
        if (c->version == 0) {
            tp_hdr_class_t cls = tp_frame_classify(p, n);
            if (cls == TP_HDR_NOT_TP) {
                send_text_and_close(c, MSG_NOT_TP, "not TP");
                break;
            }
            if (cls == TP_HDR_TOO_OLD) {
                send_text_and_close(c, MSG_TOO_OLD, "TP version too old");
                break;
            }
        } else if (n >= 2 && (p[0] != 'T' || p[1] != 'P')) {
            /* Framing lost: nothing after this can be trusted. */
            tp_lua_send_fail(srv->lx, c, c->version, 0, TP_FAIL_PROTOCOL,
                             "Protocol Error, bad frame header");
            tp_conn_close(c, "bad frame header");
            break;
        }
        if (n < TP_HEADER_SIZE)
            break;
        tp_header_t h;
        tp_frame_parse(p, &h);
        if (h.len > srv->limits.max_frame - TP_HEADER_SIZE) {
            tp_log_warn("net", "conn=%llu peer=%s frame length %u over the "
                        "limit", (unsigned long long)c->id, c->peer, h.len);
            tp_lua_send_fail(srv->lx, c, c->version ? c->version :
                             (h.cls == TP_HDR_TP04 ||
                              h.cls == TP_HDR_UNSUP_BIN ? 4 : 3),
                             h.seq, TP_FAIL_PROTOCOL,
                             "Protocol Error, frame length too large");
            tp_conn_close(c, "frame too large");
            break;
        }
        if (n < TP_HEADER_SIZE + (size_t)h.len)
            break;
        off += TP_HEADER_SIZE + h.len;
        handle_frame(c, &h, p + TP_HEADER_SIZE);
    }
    if (!c->closing)
        tp_buf_consume(&c->in, off);
    c->in_batch = false;
    tp_conn_flush(c);
    if (c->eof && !held && !c->paused && !c->closing)
        tp_conn_close(c, "peer closed");
}

static void on_resume_timer(uv_timer_t *t)
{
    tp_conn_t *c = t->data;
    if (c->closing || c->paused)
        return;
    process_input(c);
    if (!c->closing && c->write_pending + c->out.len <=
        c->srv->limits.output_high)
        conn_start_reading(c);
}

void tp_conn_resume_soon(tp_conn_t *c)
{
    if (c->closing)
        return;
    c->paused = false;
    uv_timer_start(&c->timer, on_resume_timer, 0, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tp_conn_t *c = s->data;
    if (nread == UV_ENOBUFS) {
        /* Input full while processing is held: stop reading until the
         * connection is resumed or its output drains. */
        uv_read_stop(s);
        c->reading = false;
        return;
    }
    if (nread == UV_EOF) {
        /* The peer will send no more, but every whole request it sent is
         * still answered (some may be waiting on a deferred reply). */
        c->eof = true;
        uv_read_stop(s);
        c->reading = false;
        process_input(c);
        return;
    }
    if (nread < 0) {
        tp_conn_close(c, uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->closing)
        return;
    c->in.len += (size_t)nread;
    process_input(c);
}

static void conn_start_reading(tp_conn_t *c)
{
    if (c->reading || c->closing || c->eof || c->paused)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

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

static void on_connection(uv_stream_t *server, int status)
{
    tp_listener_t *lst = server->data;
    tp_server_t *srv = lst->srv;
    if (status < 0) {
        tp_log_warn("net", "accept on %s:%d failed: %s", lst->host, lst->port,
                    uv_strerror(status));
        return;
    }
    tp_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        lst->stats.refused++;
        return;
    }
    c->srv = srv;
    c->lst = lst;
    c->set = lst->set;
    c->lua_ref = -2;
    tp_buf_init(&c->in, srv->limits.max_frame + READ_CHUNK);
    tp_buf_init(&c->out, 0);
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    uv_timer_init(srv->loop, &c->stall);
    c->tcp.data = c;
    c->timer.data = c;
    c->stall.data = c;
    c->handles_open = 3;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        lst->stats.refused++;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->stall, on_handle_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->id = srv->next_conn_id++;
    format_peer(&c->tcp, c->peer, sizeof c->peer);
    c->linked = true;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->num_conns++;
    lst->stats.accepted++;
    lst->stats.open++;
    tp_log_info("net", "conn=%llu peer=%s accepted on %s %s:%d",
                (unsigned long long)c->id, c->peer, lst->kind, lst->host,
                lst->port);
    tp_lua_conn_open(srv->lx, c);
    conn_start_reading(c);
}

int tp_server_listen(tp_server_t *srv, const char *host, int port,
                     const char *kind, int set, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int rc;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0 || !res) {
            snprintf(err, errlen, "cannot resolve listen address %s: %s",
                     host, gai_strerror(rc));
            return UV_EINVAL;
        }
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        freeaddrinfo(res);
    }
    tp_listener_t *lst = calloc(1, sizeof *lst);
    if (!lst) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    lst->srv = srv;
    lst->set = set;
    snprintf(lst->kind, sizeof lst->kind, "%s", kind);
    snprintf(lst->host, sizeof lst->host, "%s", host);
    uv_tcp_init(srv->loop, &lst->tcp);
    lst->tcp.data = lst;
    rc = uv_tcp_bind(&lst->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&lst->tcp, 511, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s port %d (%s): %s", host,
                 port, kind, uv_strerror(rc));
        uv_close((uv_handle_t *)&lst->tcp, (uv_close_cb)free);
        return rc;
    }
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    lst->port = port;
    if (uv_tcp_getsockname(&lst->tcp, (struct sockaddr *)&bound, &bl) == 0)
        lst->port = ntohs(bound.ss_family == AF_INET6 ?
                          ((struct sockaddr_in6 *)&bound)->sin6_port :
                          ((struct sockaddr_in *)&bound)->sin_port);
    lst->next = srv->listeners;
    srv->listeners = lst;
    tp_log_info("net", "listening on %s %s:%d", kind, host, lst->port);
    return 0;
}

void tp_server_stop(tp_server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    for (tp_listener_t *l = srv->listeners, *next; l; l = next) {
        next = l->next;
        uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
    }
    srv->listeners = NULL;
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
