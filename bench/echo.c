/*
 * echo.c: tpecho, the smallest TP04 "server", for calibrating benchmarks.
 *
 * Listens on 127.0.0.1:--port and answers every whole frame it receives with
 * an Okay frame carrying the request's sequence number and an empty string,
 * without looking at the request any further.  It does only the framing, so
 * tploadgen --no-login against it measures what loopback TCP and libuv can
 * do on this machine: the ceiling for tpserver.
 *
 * Frames split across reads and many frames in one read are handled; read
 * buffers are fixed, bodies too long for them are skipped as they stream
 * in, a body length over 1 MiB or a bad header closes the connection, and
 * reading stops while a client does not take its replies.  SIGTERM or
 * SIGINT closes everything and exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#define HDR_LEN      16u                /* bytes of a TP04 frame header */
#define REPLY_LEN    (HDR_LEN + 4u)     /* Okay with an empty string */
#define MAX_BODY     (1u << 20)         /* longest request body accepted */
#define RBUF_CAP     (16u * 1024u)      /* read buffer of one connection */
#define OUT_CAP      ((RBUF_CAP / HDR_LEN + 1u) * REPLY_LEN) /* one read's */
#define MAX_QUEUED   (1u << 20)         /* unwritten bytes before pausing */
#define BACKLOG      1024               /* listen backlog */

struct client {
    uv_tcp_t tcp;                   /* the socket (tcp.data points here) */
    struct client *prev;            /* previous in the list of clients */
    struct client *next;            /* next in the list of clients */
    int closing;                    /* uv_close was called */
    int paused;                     /* reading stopped for backpressure */
    unsigned char rbuf[RBUF_CAP];   /* bytes read, not yet parsed */
    size_t rlen;                    /* bytes used in rbuf */
    uint32_t skip;                  /* body bytes still to discard */
    unsigned char out[OUT_CAP];     /* replies not yet written */
    size_t out_len;                 /* bytes used in out */
};

/* A uv_write whose data is copied after the request itself. */
struct wreq {
    uv_write_t req;                 /* the libuv request */
    unsigned char data[];           /* the bytes written */
};

static uv_loop_t *loop;             /* the event loop */
static uv_tcp_t server;             /* the listening socket */
static uv_signal_t sig_term;        /* SIGTERM watcher */
static uv_signal_t sig_int;         /* SIGINT watcher */
static struct client *clients;      /* every open client */
static int stopping;                /* a signal asked us to stop */

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void on_client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    if (c->prev)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf + c->rlen,
                       (unsigned)(RBUF_CAP - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    struct client *c = req->handle->data;
    free(req);
    if (status < 0) {
        client_close(c);
        return;
    }
    if (c->paused && !c->closing &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <
            MAX_QUEUED / 2) {
        c->paused = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
            client_close(c);
    }
}

/* Send the queued replies: directly if the socket takes them, the rest
 * through a copied uv_write; pause reading when too much is unwritten. */
static void client_flush(struct client *c)
{
    if (c->out_len == 0 || c->closing)
        return;
    uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
        client_close(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    size_t rest = c->out_len - done;
    c->out_len = 0;
    if (rest == 0)
        return;
    struct wreq *w = malloc(sizeof *w + rest);
    if (!w) {
        client_close(c);
        return;
    }
    memcpy(w->data, c->out + done, rest);
    buf = uv_buf_init((char *)w->data, (unsigned)rest);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0) {
        free(w);
        client_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >
        MAX_QUEUED) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = 1;
    }
}

/* Queue the Okay reply to a frame whose header is h. */
static void reply(struct client *c, const unsigned char *h)
{
    if (OUT_CAP - c->out_len < REPLY_LEN)
        client_flush(c);        /* cannot happen with OUT_CAP, but bounded */
    if (c->closing || OUT_CAP - c->out_len < REPLY_LEN)
        return;
    unsigned char *p = c->out + c->out_len;
    memcpy(p, h, 8);            /* magic, versions, sequence */
    put_u32(p + 8, 0);          /* Okay */
    put_u32(p + 12, 4);         /* body: one string */
    put_u32(p + 16, 0);         /* of length 0 */
    c->out_len += REPLY_LEN;
}

/* Answer every whole frame in c->rbuf; keep the partial rest. */
static void parse_frames(struct client *c)
{
    size_t off = 0;
    while (!c->closing) {
        size_t avail = c->rlen - off;
        if (c->skip > 0) {
            size_t n = avail < c->skip ? avail : c->skip;
            off += n;
            c->skip -= (uint32_t)n;
            if (c->skip > 0)
                break;
            continue;
        }
        if (avail < HDR_LEN)
            break;
        const unsigned char *h = c->rbuf + off;
        uint32_t len = get_u32(h + 12);
        if (h[0] != 'T' || h[1] != 'P' || len > MAX_BODY) {
            client_close(c);
            return;
        }
        if (HDR_LEN + (size_t)len > RBUF_CAP) {
            reply(c, h);        /* answer now, drop the body as it comes */
            off += HDR_LEN;
            c->skip = len;
            continue;
        }
        if (avail < HDR_LEN + (size_t)len)
            break;
        reply(c, h);
        off += HDR_LEN + len;
    }
    if (c->closing)
        return;
    c->rlen -= off;
    if (c->rlen && off)
        memmove(c->rbuf, c->rbuf + off, c->rlen);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (n < 0) {
        client_close(c);
        return;
    }
    c->rlen += (size_t)n;
    parse_frames(c);
    client_flush(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0 || stopping)
        return;
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    if (uv_tcp_init(loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->next = clients;
    if (clients)
        clients->prev = c;
    clients = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        client_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
}

static void on_signal(uv_signal_t *s, int signum)
{
    if (stopping)
        return;
    stopping = 1;
    uv_close((uv_handle_t *)&server, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    for (struct client *c = clients; c; c = c->next)
        client_close(c);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tpecho --port N\n"
               "  Answers every TP04 frame on 127.0.0.1:N with Okay (same\n"
               "  sequence, empty string).  SIGTERM or SIGINT stops it.\n");
}

int main(int argc, char **argv)
{
    unsigned long port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            port = strtoul(argv[++i], &end, 10);
            if (errno || *end || port == 0 || port > 65535) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (port == 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    loop = uv_default_loop();
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", (int)port, &addr);
    uv_tcp_init(loop, &server);
    int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&server, BACKLOG, on_connection);
    if (r < 0) {
        fprintf(stderr, "tpecho: port %lu: %s\n", port, uv_strerror(r));
        uv_close((uv_handle_t *)&server, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
        return 1;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    fprintf(stderr, "tpecho: listening on 127.0.0.1:%lu\n", port);

    uv_run(loop, UV_RUN_DEFAULT);
    r = uv_loop_close(loop);
    if (r != 0) {
        fprintf(stderr, "tpecho: uv_loop_close: %s\n", uv_strerror(r));
        return 1;
    }
    return 0;
}
