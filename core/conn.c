/*
 * conn.c: a connection's buffers, reading and writing, closing, output
 * stalls, deadlines and request rate, and the plain transport (see conn.h
 * for the invariants). Whatever is particular to a protocol or an owner
 * (the TP server, the console) goes through c->proto and c->lim.
 */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"
#include "log.h"
#include "stats.h"

#define READ_CHUNK 65536
#define LINGER_MS 5000

static void start_reading(tp_conn_t *c);

/* Every connection whose memory has not gone yet, for tp_conn_memory():
 * what closed connections leave behind is checked, not assumed. */
static tp_conn_t *live_head;
static size_t live_count;

static void live_link(tp_conn_t *c)
{
    c->live_prev = NULL;
    c->live_next = live_head;
    if (live_head)
        live_head->live_prev = c;
    live_head = c;
    live_count++;
}

static void live_unlink(tp_conn_t *c)
{
    if (c->live_prev)
        c->live_prev->live_next = c->live_next;
    else
        live_head = c->live_next;
    if (c->live_next)
        c->live_next->live_prev = c->live_prev;
    live_count--;
}

/* ------------------------------------------------------------ set-up */

int tp_conn_init(tp_conn_t *c, uv_loop_t *loop, tp_conn_kind_t kind,
                 const tp_transport_t *tr, const tp_conn_proto_t *proto,
                 const tp_limits_t *lim)
{
    c->tr = tr;
    c->proto = proto;
    c->lim = lim;
    c->lua_ref = -2;
    c->more_ref = -2;
    tp_buf_init(&c->in, lim->max_frame + READ_CHUNK);
    tp_buf_init(&c->out, 0);
    int rc = kind == TP_CONN_PIPE ? uv_pipe_init(loop, &c->pipe, 0)
                                  : uv_tcp_init(loop, &c->tcp);
    if (rc != 0)
        return rc;
    uv_timer_init(loop, &c->timer);
    uv_idle_init(loop, &c->idle);
    uv_timer_init(loop, &c->stall);
    uv_timer_init(loop, &c->deadline);
    c->stream.data = c;
    c->timer.data = c;
    c->idle.data = c;
    c->stall.data = c;
    c->deadline.data = c;
    c->handles_open = 5;
    live_link(c);
    return 0;
}

/* The shared read buffer of the plain transport: see tcp_alloc. */
static uint8_t tcp_read_buf[READ_CHUNK];

void tp_conn_memory(size_t *count, size_t *bytes)
{
    size_t n = 0;
    for (const tp_conn_t *c = live_head; c; c = c->live_next) {
        n += sizeof *c + c->out.cap + c->write_pending;
        if (c->in.data != tcp_read_buf)
            n += c->in.cap;
    }
    *count = live_count;
    *bytes = n;
}

/* An input block left larger than this and four times its bytes is
 * shrunk: a connection keeps about what it holds, not its largest read. */
#define IN_KEEP 4096

/* After input was processed: the shared read block goes back (what is
 * left of it copied into c's own block), an emptied own block is freed
 * and one much larger than what it holds is shrunk. */
static void settle_input(tp_conn_t *c)
{
    tp_buf_t *in = &c->in;
    if (in->data == tcp_read_buf) {
        size_t n = in->len;
        in->data = NULL;
        in->len = in->cap = 0;
        if (n > 0 && !tp_buf_append(in, tcp_read_buf, n)) {
            /* Memory is short: the bytes are lost, so is the stream. */
            if (!c->closing)
                tp_conn_close(c, "out of memory");
        }
        return;
    }
    if (in->len == 0) {
        if (in->cap > 0)
            tp_buf_free(in);
        return;
    }
    if (in->cap > IN_KEEP && in->cap / 4 > in->len) {
        size_t cap = 256;
        while (cap < in->len)
            cap *= 2;
        uint8_t *p = realloc(in->data, cap);
        if (p) {
            in->data = p;
            in->cap = cap;
        }
    }
}

void tp_conn_unref(tp_conn_t *c)
{
    uv_unref((uv_handle_t *)&c->stream);
    uv_unref((uv_handle_t *)&c->timer);
    uv_unref((uv_handle_t *)&c->idle);
    uv_unref((uv_handle_t *)&c->stall);
    uv_unref((uv_handle_t *)&c->deadline);
}

/* ------------------------------------------------------------ closing */

static void free_now(tp_conn_t *c)
{
    live_unlink(c);
    if (c->in.data == tcp_read_buf)
        c->in.data = NULL;   /* the shared block, not c's */
    c->tr->free(c);
    tp_buf_free(&c->in);
    tp_buf_free(&c->out);
    free(c);
}

static void free_if_done(tp_conn_t *c)
{
    if (c->handles_open > 0)
        return;
    if (c->proto->freed)
        c->proto->freed(c);
    free_now(c);
}

bool tp_conn_free_closed(tp_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->stream) ||
        !uv_is_closing((uv_handle_t *)&c->timer) ||
        !uv_is_closing((uv_handle_t *)&c->idle) ||
        !uv_is_closing((uv_handle_t *)&c->stall) ||
        !uv_is_closing((uv_handle_t *)&c->deadline))
        return false;
    free_now(c);
    return true;
}

static void on_handle_closed(uv_handle_t *h)
{
    tp_conn_t *c = h->data;
    c->handles_open--;
    free_if_done(c);
}

static void close_handles(tp_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->idle))
        uv_close((uv_handle_t *)&c->idle, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->stall))
        uv_close((uv_handle_t *)&c->stall, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->deadline))
        uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
    /* Closing the stream cancels a pending shutdown: its callback then runs
     * first, sees the handle closing and only frees its request. */
    if (!uv_is_closing((uv_handle_t *)&c->stream))
        uv_close((uv_handle_t *)&c->stream, on_handle_closed);
}

void tp_conn_abort(tp_conn_t *c)
{
    close_handles(c);
}

/* Takes c off its owner's lists (once) and closes its handles; the memory
 * goes when the last close callback has run. */
static void destroy(tp_conn_t *c)
{
    if (c->proto->gone)
        c->proto->gone(c);
    close_handles(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    tp_conn_t *c = req->data;
    free(req);
    if (!uv_is_closing((uv_handle_t *)&c->stream))
        destroy(c);
}

static void on_linger_timeout(uv_timer_t *t)
{
    tp_conn_t *c = t->data;
    tp_log_debug("net", "conn=%llu linger timeout, closing",
                 (unsigned long long)c->id);
    destroy(c);
}

void tp_conn_close(tp_conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    tp_conn_stop_reading(c);
    uv_timer_stop(&c->deadline);
    c->proto->closed(c, reason);
    c->in.len = 0;
    /* What was answered so far still goes out, even mid-batch, then the
     * transport's own end (TLS close_notify). */
    bool was_in_batch = c->in_batch;
    c->in_batch = false;
    tp_conn_flush(c);
    c->in_batch = was_in_batch;
    if (!uv_is_closing((uv_handle_t *)&c->stream))
        c->tr->shutdown(c);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        destroy(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, &c->stream, on_shutdown) != 0) {
        free(req);
        destroy(c);
        return;
    }
    /* A peer that never reads cannot hold the connection open forever. */
    uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

/* ------------------------------------------------------------ writing */

typedef struct write_req {
    uv_write_t req;      /* libuv request */
    tp_conn_t *conn;     /* owner */
    uint8_t *data;       /* owned bytes being written */
    size_t len;          /* their length */
} write_req_t;

size_t tp_conn_output_room(const tp_conn_t *c)
{
    size_t used = tp_conn_output(c);
    size_t max = c->lim->output_max;
    return used >= max ? 0 : max - used;
}

static void on_stall(uv_timer_t *t)
{
    tp_conn_t *c = t->data;
    if (c->closing || tp_conn_output(c) <= c->lim->output_high)
        return;
    tp_log_warn("net", "conn=%llu peer=%s has not read its replies for %llu "
                "ms (%zu bytes waiting): disconnecting",
                (unsigned long long)c->id, c->peer,
                (unsigned long long)c->lim->stall_ms,
                tp_conn_output(c));
    tp_conn_close(c, "client not reading");
}

/* Starts the stall clock when the output passes the high mark (no clock
 * when the limits have no stall time). */
static void watch_output(tp_conn_t *c)
{
    if (tp_conn_output(c) > c->lim->output_high && c->lim->stall_ms > 0) {
        if (!uv_is_active((uv_handle_t *)&c->stall))
            uv_timer_start(&c->stall, on_stall, c->lim->stall_ms, 0);
    } else {
        uv_timer_stop(&c->stall);
    }
}

/* Bytes handed to libuv and not yet written, over every connection held
 * to a total (limits.output_total): thousands of clients that never read
 * must not add up to gigabytes. */
static size_t total_pending;

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    tp_conn_t *c = w->conn;
    c->write_pending -= w->len;
    if (c->lim->output_total)
        total_pending -= w->len;
    if (status >= 0 && c->proto->stats)
        tp_stats.bytes_out += w->len;
    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
        tp_conn_close(c, uv_strerror(status));
        return;
    }
    if (!c->closing)
        watch_output(c);
    /* Below the high mark again: take up the requests that waited (a
     * throttled or yielded connection has its resume due already). */
    if (!c->closing && !c->reading && !c->throttled &&
        tp_conn_output(c) < c->lim->output_high / 2) {
        tp_conn_process(c);
        if (!c->closing)
            start_reading(c);
    }
}

void tp_conn_write_block(tp_conn_t *c, uint8_t *data, size_t len)
{
    /* Nothing queued before it: the socket most often takes the whole
     * block at once, with no request, no callback and no block held. */
    size_t off = 0;
    if (c->write_pending == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(&c->stream, &b, 1);
        if (n > 0) {
            off = (size_t)n;
            if (c->proto->stats)
                tp_stats.bytes_out += (uint64_t)n;
        } else if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
            free(data);
            tp_conn_close(c, uv_strerror(n));
            return;
        }
        if (off == len) {
            free(data);
            return;
        }
    }
    write_req_t *w = malloc(sizeof *w);
    if (!w) {
        free(data);
        tp_conn_close(c, "out of memory");
        return;
    }
    w->conn = c;
    w->data = data;
    w->len = len - off;
    uv_buf_t b = uv_buf_init((char *)w->data + off, (unsigned)w->len);
    c->write_pending += w->len;
    int rc = uv_write(&w->req, &c->stream, &b, 1, on_write);
    if (rc < 0) {
        c->write_pending -= w->len;
        free(w->data);
        free(w);
        tp_conn_close(c, uv_strerror(rc));
        return;
    }
    if (c->lim->output_total)
        total_pending += w->len;
    watch_output(c);
    /* Over the total, a client over its own high mark goes first: those
     * that read their replies are not the ones holding the memory. */
    if (c->lim->output_total && total_pending > c->lim->output_total &&
        c->write_pending > c->lim->output_high && !c->closing) {
        tp_log_warn("net", "conn=%llu peer=%s: all clients' unsent output "
                    "is over %zu bytes and this one holds %zu unread: "
                    "disconnecting", (unsigned long long)c->id, c->peer,
                    c->lim->output_total, c->write_pending);
        tp_conn_close(c, "total output limit");
        return;
    }
    if (c->write_pending > c->lim->output_max && !c->closing) {
        tp_log_warn("net", "conn=%llu peer=%s output over %zu bytes: the "
                    "client is not reading, disconnecting",
                    (unsigned long long)c->id, c->peer,
                    c->lim->output_max);
        tp_conn_close(c, "output limit");
    }
}

void tp_conn_send_text(tp_conn_t *c, const char *p, size_t n,
                       const char *reason)
{
    /* Text goes before any frame (the transport writes it as a unit). */
    if (c->out.len == c->out_text && tp_buf_append(&c->out, p, n))
        c->out_text += n;
    if (reason) {
        tp_log_info("net", "conn=%llu peer=%s %s",
                    (unsigned long long)c->id, c->peer, reason);
        tp_conn_close(c, reason);
    }
}

void tp_conn_flush(tp_conn_t *c)
{
    if (c->in_batch || uv_is_closing((uv_handle_t *)&c->stream))
        return;
    c->tr->flush(c);
}

void tp_conn_flush_now(tp_conn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->stream))
        return;
    c->tr->flush(c);
}

/* ------------------------------------------------------------ reading */

void tp_conn_stop_reading(tp_conn_t *c)
{
    if (c->reading) {
        uv_read_stop(&c->stream);
        c->reading = false;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tp_conn_t *c = h->data;
    c->tr->alloc(c, buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tp_conn_t *c = s->data;
    if (nread == UV_ENOBUFS) {
        /* Input full while processing is held: stop reading until the
         * connection is resumed or its output drains. */
        tp_conn_stop_reading(c);
        return;
    }
    if (nread == UV_EOF) {
        /* The peer will send no more, but every whole request it sent is
         * still answered (some may be waiting on a deferred reply). */
        c->eof = true;
        tp_conn_stop_reading(c);
        tp_conn_process(c);
        return;
    }
    if (nread < 0) {
        tp_conn_close(c, uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (c->proto->stats)
        tp_stats.bytes_in += (uint64_t)nread;
    c->last_input_ms = uv_now(c->timer.loop);
    if (c->tr->received(c, buf->base, (size_t)nread))
        tp_conn_process(c);
    settle_input(c);
}

/* Reading waits while the transport holds more than one read (TLS). */
#define BACKLOG_MAX (17 * 1024)

static void start_reading(tp_conn_t *c)
{
    if (c->reading || c->closing || c->eof || c->paused || c->throttled)
        return;
    if (c->tr->backlog(c) >= BACKLOG_MAX)
        return;
    if (uv_read_start(&c->stream, on_alloc, on_read) == 0)
        c->reading = true;
}

void tp_conn_process(tp_conn_t *c)
{
    bool held = false;     /* stopped with whole frames possibly left */
    c->in_batch = true;
    for (;;) {
        if (!c->tr->pull(c))
            break;
        size_t used = c->proto->input(c, &held);
        if (c->closing)
            break;
        tp_buf_consume(&c->in, used);
        /* The transport may hold more than c->in had room for. */
        if (held || used == 0 || c->tr->backlog(c) == 0)
            break;
    }
    c->in_batch = false;
    /* Bytes left with nothing holding them back are a frame not yet
     * whole: the server's sweep closes it if it stays so (frame_ms). */
    if (!c->closing && !held && !c->paused && c->in.len > 0) {
        if (!c->partial_ms)
            c->partial_ms = uv_now(c->timer.loop);
    } else {
        c->partial_ms = 0;
    }
    tp_conn_flush(c);
    settle_input(c);
    if (c->eof && !held && !c->paused && !c->closing)
        tp_conn_close(c, "peer closed");
    else if (!c->closing && c->tr->backlog(c) >= BACKLOG_MAX)
        tp_conn_stop_reading(c); /* processing is held: resumed later */
}

/* Processing goes on after a pause, a throttle or a yield. */
static void resume(tp_conn_t *c)
{
    if (c->closing || c->paused)
        return;
    c->throttled = false;
    tp_conn_process(c);
    if (!c->closing && tp_conn_output(c) <= c->lim->output_high)
        start_reading(c);
}

static void on_resume_timer(uv_timer_t *t)
{
    resume(t->data);
}

static void on_yield(uv_idle_t *h)
{
    uv_idle_stop(h);
    resume(h->data);
}

void tp_conn_yield(tp_conn_t *c)
{
    /* Held like a throttled connection, for one loop iteration: the other
     * connections' input is read and served before this one goes on. An
     * idle handle, not a 0 ms timer: one started from a timer callback
     * runs again in the same pass of the loop's timers (libuv before
     * 1.45), before any I/O; an active idle handle makes the loop poll
     * without blocking, and runs at the next iteration. */
    c->throttled = true;
    tp_conn_stop_reading(c);
    uv_idle_start(&c->idle, on_yield);
}

void tp_conn_resume_soon(tp_conn_t *c)
{
    if (c->closing)
        return;
    c->paused = false;
    uv_timer_start(&c->timer, on_resume_timer, 0, 0);
}

bool tp_conn_take_token(tp_conn_t *c)
{
    const tp_limits_t *lim = c->lim;
    uint64_t now = uv_now(c->timer.loop);
    c->tokens += (double)(now - c->tokens_ms) * lim->rate / 1000.0;
    c->tokens_ms = now;
    if (c->tokens > lim->burst)
        c->tokens = lim->burst;
    if (c->tokens >= 1.0) {
        c->tokens -= 1.0;
        return true;
    }
    /* One line per connection every 10 s at most: a flood stays quiet. */
    if (!c->throttled && (c->rate_log_ms == 0 ||
                          now - c->rate_log_ms >= 10000)) {
        c->rate_log_ms = now;
        tp_log_warn("net", "conn=%llu peer=%s over the request rate limit "
                    "(%g a second, bursts of %g): its requests wait",
                    (unsigned long long)c->id, c->peer, lim->rate,
                    lim->burst);
    }
    c->throttled = true;
    tp_conn_stop_reading(c);
    uint64_t wait = (uint64_t)((1.0 - c->tokens) * 1000.0 / lim->rate) + 1;
    uv_timer_start(&c->timer, on_resume_timer, wait, 0);
    return false;
}

/* ------------------------------------------------------------ deadlines */

static void on_deadline(uv_timer_t *t)
{
    tp_conn_t *c = t->data;
    if (c->closing)
        return;
    uint64_t waited = uv_now(c->timer.loop) - c->accepted_ms;
    if (!c->tr->ready(c)) {
        tp_log_info("net", "conn=%llu peer=%s TLS handshake not done after "
                    "%llu ms: closing", (unsigned long long)c->id, c->peer,
                    (unsigned long long)waited);
        tp_conn_close(c, "TLS handshake timeout");
    } else if (c->refusing) {
        tp_conn_close(c, "server full");
    } else if (!c->logged_in) {
        tp_log_info("net", "conn=%llu peer=%s did not log in within %llu "
                    "s: closing", (unsigned long long)c->id, c->peer,
                    (unsigned long long)(c->lim->login_ms / 1000));
        tp_conn_close(c, "login timeout");
    }
}

void tp_conn_transport_ready(tp_conn_t *c)
{
    if (c->refusing)
        return;
    /* The login deadline is counted from the accept, handshake included. */
    uint64_t limit = c->lim->login_ms;
    if (limit == 0 || c->logged_in) {
        uv_timer_stop(&c->deadline);
        return;
    }
    uint64_t spent = uv_now(c->timer.loop) - c->accepted_ms;
    uv_timer_start(&c->deadline, on_deadline,
                   limit > spent ? limit - spent : 1, 0);
}

void tp_conn_set_logged_in(tp_conn_t *c)
{
    c->logged_in = true;
    if (!c->refusing)
        uv_timer_stop(&c->deadline);
}

void tp_conn_start(tp_conn_t *c)
{
    const tp_limits_t *lim = c->lim;
    /* A handshake (or a refusal) has its own, shorter deadline. */
    uint64_t limit = !c->tr->ready(c) || c->refusing ? lim->handshake_ms
                                                     : lim->login_ms;
    if (limit > 0)
        uv_timer_start(&c->deadline, on_deadline, limit, 0);
    start_reading(c);
}

/* ------------------------------------------------------------ plain */

/* Plain reads all land in tcp_read_buf (one loop thread; libuv calls
 * alloc and read back to back). A connection with nothing waiting takes
 * the read where it is: c->in points at the shared block while the read
 * is processed, and settle_input() gives the block back afterwards, the
 * bytes of an unfinished frame (or of requests held back) copied into a
 * block of the connection's own, about their size. So an idle
 * connection holds no input buffer, and the common read (whole frames)
 * costs no allocation and no copy. */
static void tcp_alloc(tp_conn_t *c, uv_buf_t *buf)
{
    /* The input cap is one largest frame plus one chunk: while frames are
     * processed it is never reached; while processing is held (pause,
     * output backpressure) reading stops there (see on_read). */
    settle_input(c);   /* never c's here: on_read settles */
    size_t room = c->in.max - c->in.len;
    buf->base = (char *)tcp_read_buf;
    buf->len = room < READ_CHUNK ? room : READ_CHUNK;
    if (buf->len == 0)
        buf->base = NULL;
}

static bool tcp_received(tp_conn_t *c, const char *p, size_t n)
{
    if (c->in.len == 0 && c->in.data != tcp_read_buf) {
        tp_buf_free(&c->in);
        c->in.data = tcp_read_buf;
        c->in.cap = sizeof tcp_read_buf;
        c->in.len = n;
        return true;
    }
    if (!tp_buf_append(&c->in, p, n)) {
        tp_conn_close(c, "out of memory");
        return false;
    }
    return true;
}
static bool tcp_pull(tp_conn_t *c)
{
    (void)c;
    return true;
}

static size_t tcp_backlog(const tp_conn_t *c)
{
    (void)c;
    return 0;
}

static void tcp_flush(tp_conn_t *c)
{
    if (c->out.len == 0)
        return;
    /* The block goes to libuv as it is; a fresh one takes the output. */
    uint8_t *data = c->out.data;
    size_t len = c->out.len;
    size_t max = c->out.max;
    tp_buf_init(&c->out, max);
    c->out_text = 0;
    tp_conn_write_block(c, data, len);
}

static void tcp_shutdown(tp_conn_t *c)
{
    (void)c;
}

static bool tcp_ready(const tp_conn_t *c)
{
    (void)c;
    return true;
}

static void tcp_free(tp_conn_t *c)
{
    (void)c;
}

const tp_transport_t tp_transport_tcp = {
    .name = "tcp", .encrypted = false, .alloc = tcp_alloc,
    .received = tcp_received, .pull = tcp_pull, .backlog = tcp_backlog,
    .flush = tcp_flush, .shutdown = tcp_shutdown, .ready = tcp_ready,
    .free = tcp_free,
};
