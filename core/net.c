/*
 * net.c: listeners, connections, the transports under them (plain, TLS,
 * HTTP preamble), frame cutting, the version rules of PROTOCOL.md 3.5 and
 * the connection limits (see net.h for the invariants).
 */
#include "net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bridge.h"
#include "codec.h"
#include "log.h"
#include "stats.h"
#include "tls.h"

#define READ_CHUNK 65536
#define LINGER_MS 5000
/* TLS reads: about one record, so a session's incoming BIO stays small;
 * reading stops while this much is waiting to be decrypted. */
#define TLS_READ_CHUNK (17 * 1024)
/* Plaintext encrypted per step of a flush (one record). */
#define TLS_WRITE_CHUNK 16384
/* An output block larger than this is not kept for reuse. */
#define OUT_KEEP 65536
/* The HTTP request header before a tunnel, at most. */
#define PREAMBLE_MAX 8192
/* Over-limit connections kept open at once to be told "server full";
 * more are closed as soon as they are accepted. */
#define REFUSE_SLOTS 64

static const char MSG_NOT_TP[] = "You are not running the correct protocol\n";
static const char MSG_TOO_OLD[] =
    "You are not running the right version of TP, please upgrade\n";
/* PROTOCOL.md 1.2: the exact answer to a tunnel's POST. */
static const char HTTP_TUNNEL_OK[] =
    "HTTP/1.0 200 OK\r\n"
    "Cache-Control: no-store, no-cache, must-revalidate, post-check=0, "
    "pre-check=0\r\n"
    "Pragma: no-cache\r\n\r\n";
#define HTTP_PAGE_BODY                                                     \
    "<html><head><title>Thousand Parsec server</title></head><body>"       \
    "<p>This is a Thousand Parsec game server. Connect to it with a "      \
    "Thousand Parsec client.</p></body></html>\n"
static const char HTTP_PAGE[] =
    "HTTP/1.0 200 OK\r\n"
    "Cache-Control: no-store, no-cache, must-revalidate, post-check=0, "
    "pre-check=0\r\n"
    "Pragma: no-cache\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Length: %zu\r\n\r\n%s";

/* Ciphertext of TLS reads lands here and goes straight into the session:
 * one loop thread, and libuv calls alloc and read back to back. */
static char tls_read_buf[TLS_READ_CHUNK];

void tp_server_init(tp_server_t *srv, uv_loop_t *loop)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->limits.max_frame = TP_FRAME_MAX_DEFAULT;
    srv->limits.output_high = 4u << 20;
    srv->limits.output_max = 16u << 20;
    srv->limits.stall_ms = 60000;
    srv->limits.max_conns = 4096;
    srv->limits.handshake_ms = 10000;
    srv->limits.login_ms = 120000;
    srv->limits.rate = 0;
    srv->limits.burst = 100;
    srv->next_conn_id = 1;
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
    tp_tls_free(c->tls);
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
        if (c->refusing) {
            srv->num_refusing--;
        } else {
            srv->num_conns--;
            c->lst->stats.open--;
        }
    }
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->stall))
        uv_close((uv_handle_t *)&c->stall, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->deadline))
        uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
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
    /* Refused connections were counted and logged (rate-limited) when
     * they came in. */
    tp_log(c->refusing ? TP_LOG_DEBUG : TP_LOG_INFO, "net",
           "conn=%llu peer=%s closed reason=\"%s\"",
           (unsigned long long)c->id, c->peer, reason ? reason : "");
    if (c->tls && !c->tls_ready && !c->srv->stopping)
        c->lst->stats.tls_failed++;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    uv_timer_stop(&c->deadline);
    tp_lua_conn_closed(c->srv->lx, c, reason);
    c->in.len = 0;
    c->close_notify = true;
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
    if (status >= 0)
        tp_stats.bytes_out += w->len;
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

/* Hands len bytes at data (a heap block; ownership passes) to libuv. */
static void write_block(tp_conn_t *c, uint8_t *data, size_t len)
{
    write_req_t *w = malloc(sizeof *w);
    if (!w) {
        free(data);
        tp_conn_close(c, "out of memory");
        return;
    }
    w->conn = c;
    w->data = data;
    w->len = len;
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

/* Appends text that is not a TP frame (HTTP answers), before any frame. */
static void conn_append_text(tp_conn_t *c, const char *p, size_t n)
{
    if (c->out.len == c->out_text && tp_buf_append(&c->out, p, n))
        c->out_text += n;
}

/* TLS: encrypts the output (once the handshake is done; before it there
 * is none), adds close_notify when the connection is closing, and writes
 * the ciphertext, with whatever the session produced by itself
 * (handshake messages, alerts, session tickets). */
static void tls_flush(tp_conn_t *c)
{
    tp_buf_t cipher;
    tp_buf_init(&cipher, 0);
    bool ok = true;
    if (c->out.len > 0) {
        if (tp_tls_ready(c->tls)) {
            ok = tp_buf_reserve(&cipher, c->out.len + c->out.len / 64 +
                                4096);
            /* One TP frame per TLS record (several records for a frame
             * over 16 KiB): libtpproto-cpp reads one frame per readable
             * socket and never drains what its TLS layer holds, so frames
             * packed into one record would wait forever (PROTOCOL.md 1.3).
             * Text written before the frames (the HTTP tunnel's answer)
             * is a unit of its own. */
            size_t off = 0;
            while (ok && off < c->out.len) {
                size_t unit = c->out.len - off;
                if (off < c->out_text) {
                    unit = c->out_text - off;
                } else if (unit >= TP_HEADER_SIZE) {
                    uint64_t flen = (uint64_t)TP_HEADER_SIZE +
                        tp_get_u32(c->out.data + off + 12);
                    if (flen < unit)
                        unit = (size_t)flen;
                }
                for (size_t done = 0; ok && done < unit;) {
                    size_t n = unit - done;
                    if (n > TLS_WRITE_CHUNK)
                        n = TLS_WRITE_CHUNK;
                    ok = tp_tls_write(c->tls, c->out.data + off + done, n) ==
                         0 && tp_tls_drain(c->tls, &cipher);
                    done += n;
                }
                off += unit;
            }
        }
        c->out.len = 0;
        c->out_text = 0;
        if (c->out.cap > OUT_KEEP)
            tp_buf_free(&c->out);
    }
    if (ok && c->close_notify)
        tp_tls_close_notify(c->tls);
    if (ok)
        ok = tp_tls_drain(c->tls, &cipher);
    if (cipher.len > 0)
        write_block(c, cipher.data, cipher.len);
    else
        tp_buf_free(&cipher);
    if (!ok && !c->closing) {
        tp_log_info("net", "conn=%llu peer=%s TLS write failed: %s",
                    (unsigned long long)c->id, c->peer,
                    tp_tls_reason(c->tls));
        tp_conn_close(c, "TLS error");
    }
}

void tp_conn_flush(tp_conn_t *c)
{
    if (c->in_batch || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->tls) {
        tls_flush(c);
        return;
    }
    if (c->out.len == 0)
        return;
    uint8_t *data = c->out.data;
    size_t len = c->out.len;
    size_t max = c->out.max;
    tp_buf_init(&c->out, max);
    write_block(c, data, len);
}

static void send_text_and_close(tp_conn_t *c, const char *text,
                                const char *reason)
{
    conn_append_text(c, text, strlen(text));
    tp_log_info("net", "conn=%llu peer=%s %s", (unsigned long long)c->id,
                c->peer, reason);
    tp_conn_close(c, reason);
}

/* ------------------------------------------------------------ reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tp_conn_t *c = h->data;
    if (c->tls) {
        /* Ciphertext goes into the session at once (tls_on_read); the
         * backlog check there bounds what the session holds. */
        buf->base = tls_read_buf;
        buf->len = sizeof tls_read_buf;
        return;
    }
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

static void stop_reading(tp_conn_t *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
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

/* 1 when the n bytes at p start with word, 0 when they are a proper
 * prefix of it (more needed), -1 when they differ. */
static int starts_with(const uint8_t *p, size_t n, const char *word)
{
    size_t wl = strlen(word);
    size_t m = n < wl ? n : wl;
    if (memcmp(p, word, m) != 0)
        return -1;
    return n >= wl ? 1 : 0;
}

/* The first bytes on an http or https listener (PROTOCOL.md 1.2): raw TP
 * goes on as it is; a POST is answered with the tunnel's 200 and the bytes
 * after its header are TP; a GET gets a small page and the connection is
 * closed; anything else is closed. Returns true when TP may follow in
 * c->in, false while waiting for more or after closing. */
static bool http_sniff(tp_conn_t *c)
{
    const uint8_t *p = c->in.data;
    size_t n = c->in.len;
    if (n == 0)
        return false;
    int tp = starts_with(p, n, "TP");
    int post = starts_with(p, n, "POST");
    int get = starts_with(p, n, "GET ");
    if (tp == 1) {
        c->sniff = false;
        return true;
    }
    if (tp < 0 && post < 0 && get < 0) {
        send_text_and_close(c, MSG_NOT_TP, "neither TP nor HTTP");
        return false;
    }
    if (post != 1 && get != 1)
        return false;
    size_t lim = n < PREAMBLE_MAX ? n : PREAMBLE_MAX;
    const uint8_t *end = memmem(p, lim, "\r\n\r\n", 4);
    if (!end) {
        if (n >= PREAMBLE_MAX) {
            tp_log_info("net", "conn=%llu peer=%s HTTP request header over "
                        "%d bytes", (unsigned long long)c->id, c->peer,
                        PREAMBLE_MAX);
            tp_conn_close(c, "HTTP header too long");
        }
        return false;
    }
    size_t hlen = (size_t)(end - p) + 4;
    if (get == 1) {
        char page[1024];
        int len = snprintf(page, sizeof page, HTTP_PAGE,
                           sizeof HTTP_PAGE_BODY - 1, HTTP_PAGE_BODY);
        conn_append_text(c, page, (size_t)len);
        tp_log_info("net", "conn=%llu peer=%s HTTP GET answered with the "
                    "information page", (unsigned long long)c->id, c->peer);
        tp_conn_close(c, "HTTP GET answered");
        return false;
    }
    conn_append_text(c, HTTP_TUNNEL_OK, sizeof HTTP_TUNNEL_OK - 1);
    tp_buf_consume(&c->in, hlen);
    c->sniff = false;
    c->tunnelled = true;
    tp_log_info("net", "conn=%llu peer=%s HTTP tunnel open (%zu header "
                "bytes)", (unsigned long long)c->id, c->peer, hlen);
    return true;
}

/* An over-limit connection: once its first header is in, answer Fail
 * "server full" in its version with its sequence number, and close. */
static void refuse_input(tp_conn_t *c)
{
    const uint8_t *p = c->in.data;
    size_t n = c->in.len;
    tp_hdr_class_t cls = tp_frame_classify(p, n);
    if (cls == TP_HDR_NEED_MORE)
        return;
    if (cls != TP_HDR_NOT_TP && cls != TP_HDR_TOO_OLD) {
        if (n < TP_HEADER_SIZE)
            return;
        tp_header_t h;
        tp_frame_parse(p, &h);
        int v = cls == TP_HDR_TP04 || cls == TP_HDR_UNSUP_BIN ? 4 : 3;
        tp_lua_send_fail(c->srv->lx, c, v, h.seq, TP_FAIL_UNAVAILABLE_TEMP,
                         "server full: too many connections, try again "
                         "later");
    }
    tp_conn_close(c, "server full");
}

static void on_resume_timer(uv_timer_t *t);

/* Takes one request from c's token bucket. When it is empty, holds the
 * connection (no reading, no processing) until a token is due. */
static bool take_token(tp_conn_t *c)
{
    const tp_limits_t *lim = &c->srv->limits;
    uint64_t now = uv_now(c->srv->loop);
    c->tokens += (double)(now - c->tokens_ms) * lim->rate / 1000.0;
    c->tokens_ms = now;
    if (c->tokens > lim->burst)
        c->tokens = lim->burst;
    if (c->tokens >= 1.0) {
        c->tokens -= 1.0;
        return true;
    }
    if (!c->throttled && (c->rate_log_ms == 0 ||
                          now - c->rate_log_ms >= 10000)) {
        c->rate_log_ms = now;
        tp_log_warn("net", "conn=%llu peer=%s over the request rate limit "
                    "(%g a second, bursts of %g): its requests wait",
                    (unsigned long long)c->id, c->peer, lim->rate,
                    lim->burst);
    }
    c->throttled = true;
    stop_reading(c);
    uint64_t wait = (uint64_t)((1.0 - c->tokens) * 1000.0 / lim->rate) + 1;
    uv_timer_start(&c->timer, on_resume_timer, wait, 0);
    return false;
}

/* Cuts whole frames off the front of c->in and handles them in order,
 * until the input runs out or processing is held. Returns the bytes used
 * (the caller drops them); sets *held when it stopped with whole frames
 * possibly left for later. */
static size_t cut_frames(tp_conn_t *c, bool *held)
{
    tp_server_t *srv = c->srv;
    size_t off = 0;
    if (c->sniff && !http_sniff(c))
        return 0;
    if (c->refusing) {
        refuse_input(c);
        return 0;
    }
    while (!c->closing) {
        if (c->paused) {
            *held = true;
            stop_reading(c);
            break;
        }
        if (c->write_pending + c->out.len > srv->limits.output_high) {
            /* The client is not reading its answers: stop reading its
             * requests until the output drains (on_write resumes). */
            stop_reading(c);
            *held = true;
            break;
        }
        const uint8_t *p = c->in.data + off;
        size_t n = c->in.len - off;
        if (n == 0)
            break;
        if (c->version == 0) {
            tp_hdr_class_t cls = tp_frame_classify(p, n);
            if (cls == TP_HDR_NOT_TP) {
                send_text_and_close(c, MSG_NOT_TP, p[0] == 0x16 && !c->tls ?
                                    "TLS handshake on a plain port" :
                                    "not TP");
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
        if (srv->limits.rate > 0 && !take_token(c)) {
            *held = true;
            break;
        }
        off += TP_HEADER_SIZE + h.len;
        tp_stats_frame_in(h.type);
        handle_frame(c, &h, p + TP_HEADER_SIZE);
    }
    return off;
}

/* TLS: moves decrypted bytes into c->in while there is room. Returns false
 * when the session failed (the connection is then closing). */
static bool tls_pull(tp_conn_t *c)
{
    if (!c->tls_ready)
        return true;
    for (;;) {
        size_t room = c->in.max - c->in.len;
        if (room == 0)
            return true;
        if (room > TLS_READ_CHUNK)
            room = TLS_READ_CHUNK;
        if (!tp_buf_reserve(&c->in, room)) {
            tp_conn_close(c, "out of memory");
            return false;
        }
        long n = tp_tls_read(c->tls, c->in.data + c->in.len, room);
        if (n > 0) {
            c->in.len += (size_t)n;
            continue;
        }
        if (n == 0)
            return true;
        if (n == TP_TLS_EOF) {
            /* close_notify: like a TCP end of stream. */
            c->eof = true;
            stop_reading(c);
            return true;
        }
        tp_log_info("net", "conn=%llu peer=%s TLS error: %s",
                    (unsigned long long)c->id, c->peer,
                    tp_tls_reason(c->tls));
        tp_conn_close(c, "TLS error");
        return false;
    }
}

static void process_input(tp_conn_t *c)
{
    bool held = false;     /* stopped with whole frames possibly left */
    c->in_batch = true;
    for (;;) {
        if (c->tls && !tls_pull(c))
            break;
        size_t used = cut_frames(c, &held);
        if (c->closing)
            break;
        tp_buf_consume(&c->in, used);
        /* A TLS session may hold more plaintext than c->in had room for. */
        if (!c->tls || held || used == 0 || tp_tls_backlog(c->tls) == 0)
            break;
    }
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
    c->throttled = false;
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

/* ------------------------------------------------------------ deadlines */

static void on_deadline(uv_timer_t *t)
{
    tp_conn_t *c = t->data;
    if (c->closing)
        return;
    uint64_t waited = uv_now(c->srv->loop) - c->accepted_ms;
    if (c->tls && !c->tls_ready) {
        tp_log_info("net", "conn=%llu peer=%s TLS handshake not done after "
                    "%llu ms: closing", (unsigned long long)c->id, c->peer,
                    (unsigned long long)waited);
        tp_conn_close(c, "TLS handshake timeout");
    } else if (c->refusing) {
        tp_conn_close(c, "server full");
    } else if (!c->logged_in) {
        tp_log_info("net", "conn=%llu peer=%s did not log in within %llu "
                    "s: closing", (unsigned long long)c->id, c->peer,
                    (unsigned long long)(c->srv->limits.login_ms / 1000));
        tp_conn_close(c, "login timeout");
    }
}

/* Starts the login deadline, counted from the accept. */
static void arm_login_deadline(tp_conn_t *c)
{
    uint64_t limit = c->srv->limits.login_ms;
    if (limit == 0 || c->logged_in) {
        uv_timer_stop(&c->deadline);
        return;
    }
    uint64_t spent = uv_now(c->srv->loop) - c->accepted_ms;
    uv_timer_start(&c->deadline, on_deadline,
                   limit > spent ? limit - spent : 1, 0);
}

void tp_conn_set_logged_in(tp_conn_t *c)
{
    c->logged_in = true;
    if (!c->refusing)
        uv_timer_stop(&c->deadline);
}

/* ------------------------------------------------------------ TLS input */

static void tls_on_read(tp_conn_t *c, const char *p, size_t n)
{
    if (tp_tls_feed(c->tls, p, n) != 0) {
        tp_conn_close(c, "out of memory");
        return;
    }
    if (!c->tls_ready) {
        int rc = tp_tls_handshake(c->tls);
        if (rc != 1) {
            tp_conn_flush(c); /* the handshake's next flight, or an alert */
            if (rc < 0 && !c->closing) {
                tp_log_info("net", "conn=%llu peer=%s TLS handshake failed: "
                            "%s", (unsigned long long)c->id, c->peer,
                            tp_tls_reason(c->tls));
                tp_conn_close(c, "TLS handshake failed");
            }
            return;
        }
        c->tls_ready = true;
        c->lst->stats.tls_done++;
        tp_log_debug("net", "conn=%llu TLS handshake done: %s %s",
                     (unsigned long long)c->id, tp_tls_protocol(c->tls),
                     tp_tls_cipher(c->tls));
        if (!c->refusing)
            arm_login_deadline(c);
    }
    process_input(c);
    if (!c->closing && tp_tls_backlog(c->tls) >= TLS_READ_CHUNK)
        stop_reading(c); /* processing is held: resumed by its release */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tp_conn_t *c = s->data;
    if (nread == UV_ENOBUFS) {
        /* Input full while processing is held: stop reading until the
         * connection is resumed or its output drains. */
        stop_reading(c);
        return;
    }
    if (nread == UV_EOF) {
        /* The peer will send no more, but every whole request it sent is
         * still answered (some may be waiting on a deferred reply). */
        c->eof = true;
        stop_reading(c);
        process_input(c);
        return;
    }
    if (nread < 0) {
        tp_conn_close(c, uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->closing)
        return;
    tp_stats.bytes_in += (uint64_t)nread;
    if (c->tls) {
        tls_on_read(c, buf->base, (size_t)nread);
        return;
    }
    c->in.len += (size_t)nread;
    process_input(c);
}

static void conn_start_reading(tp_conn_t *c)
{
    if (c->reading || c->closing || c->eof || c->paused || c->throttled)
        return;
    if (c->tls && tp_tls_backlog(c->tls) >= TLS_READ_CHUNK)
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
    c->srv = srv;
    c->lst = lst;
    c->set = lst->set;
    c->lua_ref = -2;
    tp_buf_init(&c->in, srv->limits.max_frame + READ_CHUNK);
    tp_buf_init(&c->out, 0);
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    uv_timer_init(srv->loop, &c->stall);
    uv_timer_init(srv->loop, &c->deadline);
    c->tcp.data = c;
    c->timer.data = c;
    c->stall.data = c;
    c->deadline.data = c;
    c->handles_open = 4;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        lst->stats.refused++;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->stall, on_handle_closed);
        uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->id = srv->next_conn_id++;
    c->refusing = over;
    c->sniff = lst->http;
    c->accepted_ms = now;
    c->tokens = srv->limits.burst;
    c->tokens_ms = now;
    format_peer(&c->tcp, c->peer, sizeof c->peer);
    c->linked = true;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    if (over) {
        srv->num_refusing++;
        lst->stats.refused++;
        log_full(lst, c->peer);
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
            tp_conn_close(c, "out of memory");
            return;
        }
    }
    uint64_t limit = c->tls || over ? srv->limits.handshake_ms
                                    : srv->limits.login_ms;
    if (limit > 0)
        uv_timer_start(&c->deadline, on_deadline, limit, 0);
    if (!over)
        tp_lua_conn_open(srv->lx, c);
    conn_start_reading(c);
}

static void listener_closed(uv_handle_t *h)
{
    tp_listener_t *lst = h->data;
    tp_tls_ctx_free(lst->tls_ctx);
    free(lst);
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
    bool tls = strcmp(kind, "tps") == 0 || strcmp(kind, "https") == 0;
    bool http = strcmp(kind, "http") == 0 || strcmp(kind, "https") == 0;
    if (tls && (!cert || !*cert || !key || !*key)) {
        snprintf(err, errlen, "the %s listener on %s port %d needs a TLS "
                 "certificate and key", kind, host, port);
        return UV_EINVAL;
    }
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
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    lst->port = port;
    if (uv_tcp_getsockname(&lst->tcp, (struct sockaddr *)&bound, &bl) == 0)
        lst->port = ntohs(bound.ss_family == AF_INET6 ?
                          ((struct sockaddr_in6 *)&bound)->sin6_port :
                          ((struct sockaddr_in *)&bound)->sin_port);
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
