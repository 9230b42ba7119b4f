/*
 * http.c: HTTP/1.1 connections on libhttp-parser (see http.h).
 */
#include "http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "listener.h"
#include "log.h"

/* Requests one connection is served in a row before the others go. */
#define FAIR_REQUESTS 32

/* A connection's HTTP state and the connection (the parser's data). */
typedef struct http_box {
    tp_http_t http;
    tp_conn_t *conn;
} http_box_t;

static tp_conn_t *conn_of(http_parser *p)
{
    return ((http_box_t *)p->data)->conn;
}

static tp_http_t *state(http_parser *p)
{
    return &((http_box_t *)p->data)->http;
}

/* ------------------------------------------------------------ parsing */

static void reset_request(tp_http_t *h)
{
    tp_buf_truncate(&h->url, 0);
    tp_buf_truncate(&h->hdr, 0);
    tp_buf_truncate(&h->body, 0);
    h->nheaders = 0;
    h->head_bytes = 0;
    h->in_value = false;
    h->too_many = false;
}

static int on_message_begin(http_parser *p)
{
    tp_http_t *h = state(p);
    reset_request(h);
    h->in_message = true;
    h->begun_ms = uv_now(conn_of(p)->timer.loop);
    return 0;
}

/* Counts head bytes against the limit: 431 past it. */
static bool head_room(tp_http_t *h, const tp_limits_t *lim, size_t n)
{
    h->head_bytes += n;
    if (lim->http_header_max && h->head_bytes > lim->http_header_max) {
        h->refuse = 431;
        return false;
    }
    return true;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    tp_http_t *h = state(p);
    if (!head_room(h, conn_of(p)->lim, n))
        return 1;
    if (!tp_buf_append(&h->url, at, n)) {
        h->refuse = 431;
        return 1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    tp_http_t *h = state(p);
    if (!head_room(h, conn_of(p)->lim, n))
        return 1;
    if (h->in_value || h->nheaders == 0) {
        if (h->nheaders >= TP_HTTP_MAX_HEADERS) {
            h->refuse = 431;
            return 1;
        }
        tp_http_header_t *e = &h->headers[h->nheaders++];
        e->name = (uint32_t)h->hdr.len;
        e->name_len = 0;
        e->value = 0;
        e->value_len = 0;
        h->in_value = false;
    }
    tp_http_header_t *e = &h->headers[h->nheaders - 1];
    size_t start = h->hdr.len;
    if (!tp_buf_append(&h->hdr, at, n)) {
        h->refuse = 431;
        return 1;
    }
    for (size_t i = start; i < h->hdr.len; i++)
        h->hdr.data[i] = (uint8_t)tolower(h->hdr.data[i]);
    e->name_len += (uint32_t)n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    tp_http_t *h = state(p);
    if (!head_room(h, conn_of(p)->lim, n))
        return 1;
    if (h->nheaders == 0)
        return 1;
    tp_http_header_t *e = &h->headers[h->nheaders - 1];
    if (!h->in_value) {
        h->in_value = true;
        e->value = (uint32_t)h->hdr.len;
        e->value_len = 0;
    }
    if (!tp_buf_append(&h->hdr, at, n)) {
        h->refuse = 431;
        return 1;
    }
    e->value_len += (uint32_t)n;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    tp_http_t *h = state(p);
    const tp_limits_t *lim = conn_of(p)->lim;
    if (lim->http_body_max && p->content_length != ULLONG_MAX &&
        p->content_length > lim->http_body_max) {
        h->refuse = 413;
        return -1;
    }
    h->head_only = p->method == HTTP_HEAD;
    /* A client waiting to be told to send its body (curl does for a
     * large one) is told at once: it fits. */
    for (unsigned i = 0; i < h->nheaders; i++) {
        const tp_http_header_t *e = &h->headers[i];
        if (e->name_len == 6 && e->value_len == 12 &&
            memcmp(h->hdr.data + e->name, "expect", 6) == 0 &&
            strncasecmp((const char *)h->hdr.data + e->value,
                        "100-continue", 12) == 0 &&
            p->content_length != ULLONG_MAX && p->content_length > 0) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            tp_conn_send_text(conn_of(p), cont, sizeof cont - 1, NULL);
            tp_conn_flush_now(conn_of(p));
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    tp_http_t *h = state(p);
    const tp_limits_t *lim = conn_of(p)->lim;
    if (lim->http_body_max && h->body.len + n > lim->http_body_max) {
        h->refuse = 413;
        return 1;
    }
    if (!tp_buf_append(&h->body, at, n)) {
        h->refuse = 413;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    tp_http_t *h = state(p);
    h->in_message = false;
    h->complete = true;
    h->keep_alive = http_should_keep_alive(p) != 0;
    /* One request at a time: the parser stops right after it. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------ writing */

const char *tp_http_reason(int status)
{
    if (status < 100 || status > 599)
        return "Unknown";
    const char *s = http_status_str((enum http_status)status);
    return s && *s && strcmp(s, "<unknown>") != 0 ? s : "Unknown";
}

const char *tp_http_method(const tp_http_t *h)
{
    return http_method_str((enum http_method)h->parser.method);
}

/* An answer the core gives by itself (a limit, malformed HTTP): a JSON
 * error, and the connection closed. */
static void refuse(tp_conn_t *c, int status, const char *why)
{
    tp_http_t *h = c->ud;
    tp_log_info("http", "conn=%llu peer=%s %d %s: %s",
                (unsigned long long)c->id, c->peer, status,
                tp_http_reason(status), why);
    char body[256];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":\"%s\",\"code\":null,\"status\":%d}\n",
                      why, status);
    const char *hdrs[] = { "Content-Type", "application/json",
                           "X-Content-Type-Options", "nosniff" };
    size_t lens[] = { 12, 16, 22, 7 };
    h->waiting = true;
    h->keep_alive = false;
    h->head_only = false;
    tp_http_respond(c, status, hdrs, lens, 2, body, (size_t)bl, false);
    if (!c->closing)
        tp_conn_close(c, why);
}

static void append(tp_buf_t *b, bool *ok, const void *p, size_t n)
{
    if (*ok && !tp_buf_append(b, p, n))
        *ok = false;
}

static void appendf(tp_buf_t *b, bool *ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void appendf(tp_buf_t *b, bool *ok, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        *ok = false;
        return;
    }
    append(b, ok, tmp, (size_t)n);
}

bool tp_http_respond(tp_conn_t *c, int status, const char *const *hdrs,
                     const size_t *lens, size_t n, const char *body,
                     size_t body_len, bool stream)
{
    tp_http_t *h = c->ud;
    if (!h || !h->waiting || h->streaming)
        return false;
    h->waiting = false;
    if (c->closing)
        return true;
    bool keep = h->keep_alive && !h->closing_after && !stream &&
                !c->srv->stopping;
    bool chunked = stream && (h->parser.http_major > 1 ||
                              (h->parser.http_major == 1 &&
                               h->parser.http_minor >= 1));
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    tp_buf_t out;
    tp_buf_init(&out, 0);
    bool ok = true;
    appendf(&out, &ok, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
            tp_http_reason(status), date);
    if (!stream)
        appendf(&out, &ok, "Content-Length: %zu\r\n", body_len);
    else if (chunked)
        appendf(&out, &ok, "Transfer-Encoding: chunked\r\n");
    appendf(&out, &ok, "Connection: %s\r\n", keep ? "keep-alive" :
            stream ? "keep-alive" : "close");
    for (size_t i = 0; i < 2 * n; i += 2) {
        append(&out, &ok, hdrs[i], lens[i]);
        append(&out, &ok, ": ", 2);
        append(&out, &ok, hdrs[i + 1], lens[i + 1]);
        append(&out, &ok, "\r\n", 2);
    }
    append(&out, &ok, "\r\n", 2);
    if (!h->head_only && !stream && body_len)
        append(&out, &ok, body, body_len);
    if (ok)
        tp_conn_send_text(c, (const char *)out.data, out.len, NULL);
    tp_buf_free(&out);
    if (!ok) {
        tp_conn_close(c, "out of memory");
        return true;
    }
    h->idle_ms = uv_now(c->timer.loop);
    if (stream) {
        h->streaming = true;
        h->chunked = chunked;
        if (body_len && !h->head_only)
            tp_http_write(c, body, body_len);   /* the first chunk */
        else
            tp_conn_flush_now(c);
        return true;
    }
    if (!keep) {
        tp_conn_close(c, "HTTP connection done");
        return true;
    }
    tp_conn_flush(c);
    return true;
}

bool tp_http_write(tp_conn_t *c, const char *p, size_t n)
{
    tp_http_t *h = c->ud;
    if (!h || !h->streaming || c->closing)
        return false;
    if (tp_conn_output(c) + n > c->lim->output_max)
        return false;
    bool ok = true;
    if (h->chunked) {
        char len[24];
        int l = snprintf(len, sizeof len, "%zx\r\n", n);
        ok = n == 0 || (tp_buf_append(&c->out, len, (size_t)l) &&
                        tp_buf_append(&c->out, p, n) &&
                        tp_buf_append(&c->out, "\r\n", 2));
    } else {
        ok = tp_buf_append(&c->out, p, n);
    }
    c->out_text = c->out.len;
    if (!ok)
        return false;
    tp_conn_flush_now(c);
    return true;
}

/* ------------------------------------------------------------ input */

static size_t http_input(tp_conn_t *c, bool *held)
{
    tp_http_t *h = c->ud;
    size_t off = 0;
    unsigned served = 0;
    if (c->refusing) {
        /* Over a connection limit (listener.c): told so, and closed. */
        refuse(c, 503, c->refuse_why ? c->refuse_why :
               "server full: too many connections, try again later");
        return c->in.len;
    }
    while (!c->closing) {
        if (h->streaming)
            return c->in.len;        /* nothing more is read: dropped */
        if (h->waiting || c->paused) {
            *held = true;
            tp_conn_stop_reading(c);
            break;
        }
        if (tp_conn_output(c) > c->lim->output_high) {
            tp_conn_stop_reading(c);
            *held = true;
            break;
        }
        if (off >= c->in.len)
            break;
        if (served >= FAIR_REQUESTS) {
            tp_conn_yield(c);
            *held = true;
            break;
        }
        size_t left = c->in.len - off;
        size_t used = http_parser_execute(&h->parser, &settings,
                                          (const char *)c->in.data + off,
                                          left);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        off += used;
        if (h->refuse) {
            int st = h->refuse;
            h->refuse = 0;
            refuse(c, st, st == 431 ? "request header fields too large" :
                   st == 413 ? "request body too large" : "bad request");
            break;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->parser, 0);
        } else if (e == HPE_HEADER_OVERFLOW) {
            refuse(c, 431, "request header fields too large");
            break;
        } else if (e != HPE_OK) {
            char why[160];
            snprintf(why, sizeof why, "bad request: %s",
                     http_errno_description(e));
            refuse(c, 400, why);
            break;
        } else if (used < left) {
            refuse(c, 400, "bad request");
            break;
        }
        if (h->complete) {
            h->complete = false;
            h->waiting = true;
            h->requests++;
            served++;
            if (h->parser.upgrade)
                h->closing_after = true;  /* nothing is upgraded here */
            tp_server_t *srv = c->srv;
            if (srv->handlers.http)
                srv->handlers.http(srv->handlers.ud, c, h);
            else
                refuse(c, 503, "no HTTP handler");
        }
    }
    return off;
}

static void http_closed(tp_conn_t *c, const char *reason)
{
    tp_log(TP_LOG_DEBUG, "http",
           "conn=%llu peer=%s closed reason=\"%s\"",
           (unsigned long long)c->id, c->peer, reason ? reason : "");
    tp_server_conn_closed(c, reason);
}

static void http_freed(tp_conn_t *c)
{
    http_box_t *box = c->ud;
    if (!box)
        return;
    tp_buf_free(&box->http.url);
    tp_buf_free(&box->http.hdr);
    tp_buf_free(&box->http.body);
    free(box);
    c->ud = NULL;
}

const tp_conn_proto_t tp_http_proto = {
    .name = "http", .stats = false, .input = http_input,
    .closed = http_closed, .gone = tp_server_conn_gone,
    .freed = http_freed,
};

bool tp_http_attach(tp_conn_t *c)
{
    http_box_t *box = calloc(1, sizeof *box);
    if (!box)
        return false;
    box->conn = c;
    tp_http_t *h = &box->http;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = box;
    tp_buf_init(&h->url, 0);
    tp_buf_init(&h->hdr, 0);
    tp_buf_init(&h->body, 0);
    h->idle_ms = uv_now(c->timer.loop);
    c->ud = h;
    return true;
}

void tp_http_sweep(tp_conn_t *c, uint64_t now)
{
    tp_http_t *h = c->ud;
    const tp_limits_t *lim = c->lim;
    if (!h || h->streaming || h->waiting || c->closing)
        return;
    if (h->in_message) {
        if (lim->http_request_ms && now - h->begun_ms > lim->http_request_ms)
            refuse(c, 408, "request not complete in time");
    } else if (lim->http_keepalive_ms &&
               now - h->idle_ms > lim->http_keepalive_ms) {
        tp_log_debug("http", "conn=%llu peer=%s idle keep-alive "
                     "connection closed", (unsigned long long)c->id,
                     c->peer);
        tp_conn_close(c, "keep-alive timeout");
    }
}

/* ------------------------------------------------------------ preamble */

typedef struct preamble {
    size_t head;               /* bytes parsed */
    size_t max;
    bool done;
    bool too_long;
} preamble_t;

static int pre_count(http_parser *p, const char *at, size_t n)
{
    (void)at;
    preamble_t *pr = p->data;
    pr->head += n;
    if (pr->head > pr->max) {
        pr->too_long = true;
        return 1;
    }
    return 0;
}

static int pre_headers_complete(http_parser *p)
{
    (void)p;
    return 1;                  /* no body: what follows is TP */
}

static int pre_message_complete(http_parser *p)
{
    preamble_t *pr = p->data;
    pr->done = true;
    http_parser_pause(p, 1);   /* counted up to the head's last byte */
    return 0;
}

static const http_parser_settings pre_settings = {
    .on_url = pre_count,
    .on_header_field = pre_count,
    .on_header_value = pre_count,
    .on_headers_complete = pre_headers_complete,
    .on_message_complete = pre_message_complete,
};

tp_http_preamble_t tp_http_preamble(const uint8_t *p, size_t n, size_t max,
                                    size_t *used)
{
    http_parser parser;
    preamble_t pr = { .max = max };
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &pr;
    size_t len = n < max ? n : max;
    size_t got = http_parser_execute(&parser, &pre_settings,
                                     (const char *)p, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&parser);
    if (pr.too_long || e == HPE_HEADER_OVERFLOW)
        return TP_PRE_TOO_LONG;
    if (pr.done) {
        *used = got;
        if (parser.method == HTTP_POST)
            return TP_PRE_POST;
        if (parser.method == HTTP_GET || parser.method == HTTP_HEAD)
            return TP_PRE_GET;
        return TP_PRE_OTHER;
    }
    if (e != HPE_OK)
        return TP_PRE_BAD;
    return n >= max ? TP_PRE_TOO_LONG : TP_PRE_MORE;
}
