/*
 * loadgen.c: tploadgen, a load generator for Thousand Parsec (TP04) servers.
 *
 * Opens --conns TCP connections to --host:--port (at most --ramp of them
 * setting up at once), performs Connect, CreateAccount and Login on each
 * (only Connect with --no-login, for the frame-echo server), then keeps
 * --pipeline requests (Ping, GetTimeRemaining or both, see --mix) in flight
 * on every connection, sending a new one as each reply arrives (--mix
 * objects: GetObjectsByID asking --ids times for object 0, a reply of a
 * Sequence and that many Object frames, timed to its last frame).  After a
 * warm-up it counts replies for --duration seconds, keeps their latencies in
 * a log-linear histogram, and prints one line of key=value pairs:
 *
 *   conns=64 ready=64 pipeline=16 mix=ping seconds=5.000 replies=123456
 *   rps=24691 p50_us=210 p90_us=400 p99_us=950 p999_us=1800 max_us=4000
 *   errors=0
 *
 * (on one line).  Any Fail reply or connection drop after set-up, and any
 * connection that could not be set up, is an error, described on stderr.
 *
 * --tls speaks TLS (OpenSSL through memory BIOs, certificate not checked)
 * to a tps listener.  --handshakes measures connection set-up instead of
 * requests: each of --conns connections connects, does the TLS handshake
 * (with --tls) and a TP Connect, closes, and starts again, for the measured
 * time; the line then has handshakes= (completed set-ups) and hps= (per
 * second).
 * Exit status: 0 when the run completed without errors, 1 otherwise, 2 on a
 * usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hist.h"

/* ---------------------------------------------------------------- protocol */

#define HDR_LEN        16u              /* bytes of a TP04 frame header */
#define MAX_BODY       (1u << 20)       /* longest reply body accepted */
#define FT_OKAY        0u               /* Okay: str result */
#define FT_FAIL        1u               /* Fail: u32 code, str result, refs */
#define FT_SEQUENCE    2u               /* Sequence: u32 frames to follow */
#define FT_GET_OBJECTS 5u               /* GetObjectsByID: list of u32 ids */
#define FT_OBJECT      7u               /* Object (an item of a Sequence) */
#define FT_CONNECT     3u               /* Connect: str client id */
#define FT_LOGIN       4u               /* Login: str user, str password */
#define FT_GET_TIME    14u              /* GetTimeRemaining: empty */
#define FT_TIME        15u              /* TimeRemaining (reply) */
#define FT_PING        27u              /* Ping: empty, answered Okay */
#define FT_CREATE_ACC  62u              /* CreateAccount: four strings */

/* ---------------------------------------------------------------- limits */

#define RBUF_CAP       (16u * 1024u)    /* read buffer of one connection */
#define SETUP_MAX      512u             /* room for one set-up frame */
#define MAX_PIPELINE   1024u            /* largest --pipeline */
#define MAX_CONNS      100000u          /* largest --conns */
#define MAX_ERR_SHOWN  20u              /* errors described on stderr */
#define STR_MAX        64u              /* longest string we send */
#define MAX_IDS        87378u           /* largest --ids (server bound) */

/* ---------------------------------------------------------------- state */

enum mix { MIX_PING, MIX_TIME, MIX_BOTH, MIX_OBJECTS };

enum phase {
    PH_SETUP,       /* connections are being opened and logged in */
    PH_WARMUP,      /* load runs, replies not counted */
    PH_MEASURE,     /* load runs, replies and latencies counted */
    PH_DONE         /* everything is being closed */
};

enum cstate {
    CS_IDLE,        /* not started yet (waiting for the ramp) */
    CS_CONNECTING,  /* TCP connect in progress */
    CS_HELLO,       /* Connect frame sent */
    CS_ACCOUNT,     /* CreateAccount sent */
    CS_LOGIN,       /* Login sent */
    CS_READY,       /* set up, waiting for the load to start */
    CS_LOAD,        /* sending requests */
    CS_DEAD         /* failed or closed */
};

/* One request awaiting its reply; indexed by seq & (nslots - 1). */
struct slot {
    uint32_t seq;       /* sequence number in flight, 0 when free */
    uint32_t type;      /* frame type of the request */
    uint64_t sent_ns;   /* uv_hrtime() when it was queued */
    uint32_t left;      /* frames of a Sequence answer still to come */
};

struct loadgen;

struct conn {
    uv_tcp_t tcp;               /* the socket (tcp.data points here) */
    uv_connect_t creq;          /* the pending TCP connect */
    struct loadgen *lg;         /* the run this connection belongs to */
    unsigned idx;               /* connection number, names the account */
    enum cstate state;          /* where the connection is */
    int started;                /* tcp was initialised (needs uv_close) */
    int closing;                /* uv_close was called */
    uint32_t next_seq;          /* sequence number of the next request */
    unsigned toggle;            /* alternates the request type for "both" */
    struct slot *slots;         /* requests in flight */
    unsigned nslots;            /* entries in slots, a power of two */
    unsigned inflight;          /* occupied entries in slots */
    unsigned char rbuf[RBUF_CAP]; /* bytes read, not yet parsed */
    size_t rlen;                /* bytes used in rbuf */
    uint32_t skip;              /* body bytes still to discard */
    unsigned char *out;         /* frames queued, not yet written */
    size_t out_len;             /* bytes used in out */
    size_t out_cap;             /* size of out */
    SSL *ssl;                   /* TLS session (--tls), NULL otherwise */
    int tls_ready;              /* its handshake is complete */
};

/* A uv_write whose data is copied after the request itself. */
struct wreq {
    uv_write_t req;             /* the libuv request */
    size_t len;                 /* bytes of data following */
    unsigned char data[];       /* the bytes written */
};

struct options {
    const char *host;           /* server address (numeric IPv4/IPv6) */
    int port;                   /* server port */
    unsigned conns;             /* connections to open */
    unsigned pipeline;          /* requests in flight per connection */
    double duration;            /* measured seconds */
    double warmup;              /* seconds of load before measuring */
    double setup_timeout;       /* seconds allowed for all set-ups */
    unsigned ramp;              /* connections setting up at once */
    enum mix mix;               /* which requests to send */
    unsigned ids;               /* ids in one GetObjectsByID (objects) */
    int no_login;               /* skip CreateAccount and Login */
    const char *user_prefix;    /* account names are prefix + number */
    int tls;                    /* TLS to the server */
    int handshakes;             /* measure connection set-ups */
};

struct loadgen {
    uv_loop_t *loop;            /* the event loop */
    uv_timer_t timer;           /* drives the phases */
    struct options opt;         /* command-line options */
    enum phase phase;           /* where the run is */
    struct conn *conns;         /* opt.conns connections */
    unsigned next_start;        /* next connection to start */
    unsigned setting_up;        /* connections started, not ready/dead */
    unsigned ready;             /* connections that completed set-up */
    unsigned finished;          /* connections ready or failed in set-up */
    int starting;               /* start_next is running */
    struct sockaddr_storage addr; /* the server */
    uint64_t t_start;           /* uv_hrtime() when measuring began */
    uint64_t t_end;             /* uv_hrtime() when measuring ended */
    uint64_t replies;           /* replies in the measured phase */
    uint64_t async_frames;      /* frames with sequence 0 (ignored) */
    uint64_t errors;            /* errors of any kind */
    struct histogram hist;      /* latencies in the measured phase */
    SSL_CTX *ssl_ctx;           /* client context (--tls) */
    uint64_t hs_done;           /* set-ups completed while measuring */
    unsigned char *objects_body; /* the GetObjectsByID body (objects) */
    size_t objects_len;         /* its length */
};

/* Ciphertext read from a TLS connection; it goes into the session at once
 * (one loop thread, alloc and read callbacks back to back). */
static unsigned char tls_in[RBUF_CAP];

static const char *mix_name(enum mix m)
{
    return m == MIX_PING ? "ping" : m == MIX_TIME ? "timeremaining" :
           m == MIX_OBJECTS ? "objects" : "both";
}

/* ---------------------------------------------------------------- helpers */

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

static void lg_error(struct loadgen *lg, const struct conn *c,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lg_error(struct loadgen *lg, const struct conn *c,
                     const char *fmt, ...)
{
    lg->errors++;
    if (lg->errors > MAX_ERR_SHOWN) {
        if (lg->errors == MAX_ERR_SHOWN + 1)
            fprintf(stderr, "tploadgen: more errors, not shown\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    if (c)
        fprintf(stderr, "tploadgen: conn %u: ", c->idx);
    else
        fprintf(stderr, "tploadgen: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void start_load(struct loadgen *lg);
static void finish(struct loadgen *lg);
static void hs_cycle_done(struct conn *c);
static void start_next(struct loadgen *lg);

/* ---------------------------------------------------------------- closing */

/* Note that a connection left the set-up phase (ready or failed). */
static void setup_finished(struct conn *c)
{
    struct loadgen *lg = c->lg;
    if (lg->opt.handshakes)     /* no set-up phase in that mode */
        return;
    lg->setting_up--;
    lg->finished++;
    if (lg->phase == PH_SETUP)
        start_next(lg);     /* also starts the load when all are done */
}

static void conn_close(struct conn *c)
{
    if (!c->started || c->closing)
        return;
    c->closing = 1;
    SSL_free(c->ssl);
    c->ssl = NULL;
    uv_close((uv_handle_t *)&c->tcp, NULL);
}

/* The connection failed: count an error (unless the run is over), close it,
 * and let the ramp go on if it was still setting up. */
static void conn_fail(struct conn *c, const char *what, int err)
{
    struct loadgen *lg = c->lg;
    enum cstate was = c->state;
    if (was == CS_DEAD)
        return;
    c->state = CS_DEAD;
    if (lg->phase != PH_DONE) {
        if (err)
            lg_error(lg, c, "%s: %s", what, uv_strerror(err));
        else
            lg_error(lg, c, "%s", what);
    }
    conn_close(c);
    if (was >= CS_CONNECTING && was < CS_READY)
        setup_finished(c);
    else if (was == CS_READY)
        lg->ready--;
}

/* ---------------------------------------------------------------- writing */

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->handle->data;
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        conn_fail(c, "write", status);
}

/* Writes len bytes at data: directly if the socket takes them, the rest
 * through a copied uv_write. */
static void raw_write(struct conn *c, const unsigned char *data, size_t len)
{
    if (len == 0 || c->closing || c->state == CS_DEAD)
        return;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
        conn_fail(c, "write", n);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    size_t rest = len - done;
    if (rest == 0)
        return;
    struct wreq *w = malloc(sizeof *w + rest);
    if (!w) {
        conn_fail(c, "out of memory", 0);
        return;
    }
    w->len = rest;
    memcpy(w->data, data + done, rest);
    buf = uv_buf_init((char *)w->data, (unsigned)rest);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written);
    if (r < 0) {
        free(w);
        conn_fail(c, "write", r);
    }
}

/* TLS: sends the ciphertext the session has produced. */
static void tls_push(struct conn *c)
{
    unsigned char buf[RBUF_CAP];
    int n;
    while (c->ssl && (n = BIO_read(SSL_get_wbio(c->ssl), buf,
                                   (int)sizeof buf)) > 0)
        raw_write(c, buf, (size_t)n);
}

/* Write out everything queued on c (encrypted first with --tls; before the
 * handshake is done nothing is queued). */
static void conn_flush(struct conn *c)
{
    if (c->out_len == 0 || c->closing)
        return;
    if (c->ssl) {
        if (!c->tls_ready)
            return;
        int n = SSL_write(c->ssl, c->out, (int)c->out_len);
        c->out_len = 0;
        if (n <= 0) {
            ERR_clear_error();
            conn_fail(c, "TLS write failed", 0);
            return;
        }
        tls_push(c);
        return;
    }
    size_t len = c->out_len;
    c->out_len = 0;
    raw_write(c, c->out, len);
}

/* Append a string (u32 length + bytes) at p; returns the bytes written. */
static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    put_u32(p, (uint32_t)n);
    memcpy(p + 4, s, n);
    return 4 + n;
}

/* Queue a frame of the given type and body on c, remembering it as in
 * flight.  Returns 0, or -1 when there is no room (a bug: out is sized for
 * the pipeline). */
static int queue_frame(struct conn *c, uint32_t type,
                       const unsigned char *body, size_t body_len)
{
    struct loadgen *lg = c->lg;
    if (c->out_cap - c->out_len < HDR_LEN + body_len)
        return -1;
    uint32_t seq = c->next_seq++;
    if (c->next_seq == 0)
        c->next_seq = 1;
    struct slot *s = &c->slots[seq & (c->nslots - 1u)];
    if (s->seq != 0) {
        /* A reply more than nslots requests late: give it up. */
        lg_error(lg, c, "no reply to request %" PRIu32, s->seq);
        c->inflight--;
    }
    s->seq = seq;
    s->type = type;
    s->sent_ns = uv_hrtime();
    s->left = 0;
    c->inflight++;

    unsigned char *p = c->out + c->out_len;
    p[0] = 'T';
    p[1] = 'P';
    p[2] = 4;
    p[3] = 0;
    put_u32(p + 4, seq);
    put_u32(p + 8, type);
    put_u32(p + 12, (uint32_t)body_len);
    if (body_len)
        memcpy(p + HDR_LEN, body, body_len);
    c->out_len += HDR_LEN + body_len;
    return 0;
}

static void send_request(struct conn *c)
{
    uint32_t type;
    switch (c->lg->opt.mix) {
    case MIX_OBJECTS:
        if (queue_frame(c, FT_GET_OBJECTS, c->lg->objects_body,
                        c->lg->objects_len) < 0)
            conn_fail(c, "internal: output buffer full", 0);
        return;
    case MIX_PING:
        type = FT_PING;
        break;
    case MIX_TIME:
        type = FT_GET_TIME;
        break;
    default:
        type = (c->toggle++ & 1u) ? FT_GET_TIME : FT_PING;
        break;
    }
    if (queue_frame(c, type, NULL, 0) < 0)
        conn_fail(c, "internal: output buffer full", 0);
}

static void send_hello(struct conn *c)
{
    unsigned char body[SETUP_MAX];
    size_t n = put_str(body, "tploadgen");
    c->state = CS_HELLO;
    if (queue_frame(c, FT_CONNECT, body, n) < 0)
        conn_fail(c, "internal: output buffer full", 0);
}

static void send_account(struct conn *c)
{
    unsigned char body[SETUP_MAX];
    char user[STR_MAX], mail[STR_MAX + 16];
    snprintf(user, sizeof user, "%s%u", c->lg->opt.user_prefix, c->idx);
    snprintf(mail, sizeof mail, "%s@localhost", user);
    size_t n = put_str(body, user);
    n += put_str(body + n, "pw");
    n += put_str(body + n, mail);
    n += put_str(body + n, "tploadgen");
    c->state = CS_ACCOUNT;
    if (queue_frame(c, FT_CREATE_ACC, body, n) < 0)
        conn_fail(c, "internal: output buffer full", 0);
}

static void send_login(struct conn *c)
{
    unsigned char body[SETUP_MAX];
    char user[STR_MAX];
    snprintf(user, sizeof user, "%s%u", c->lg->opt.user_prefix, c->idx);
    size_t n = put_str(body, user);
    n += put_str(body + n, "pw");
    c->state = CS_LOGIN;
    if (queue_frame(c, FT_LOGIN, body, n) < 0)
        conn_fail(c, "internal: output buffer full", 0);
}

static void became_ready(struct conn *c)
{
    c->state = CS_READY;
    c->lg->ready++;
    setup_finished(c);
}

/* ---------------------------------------------------------------- reading */

/* Describe a Fail body (u32 code, str message) into buf. */
static void describe_fail(const unsigned char *body, uint32_t len,
                          char *buf, size_t cap)
{
    if (!body || len < 8) {
        snprintf(buf, cap, "Fail (no readable body)");
        return;
    }
    uint32_t code = get_u32(body);
    uint32_t slen = get_u32(body + 4);
    if (slen > len - 8) {
        snprintf(buf, cap, "Fail code %" PRIu32 " (bad string length)", code);
        return;
    }
    int show = slen > 200 ? 200 : (int)slen;
    snprintf(buf, cap, "Fail code %" PRIu32 ": %.*s", code, show,
             (const char *)(body + 8));
}

/* One whole reply frame (body is NULL when it was too long to keep). */
static void handle_frame(struct conn *c, uint32_t seq, uint32_t type,
                         const unsigned char *body, uint32_t len)
{
    struct loadgen *lg = c->lg;
    char msg[300];

    if (seq == 0) {             /* unsolicited, e.g. a turn notice */
        lg->async_frames++;
        return;
    }
    struct slot *s = &c->slots[seq & (c->nslots - 1u)];
    if (s->seq != seq) {
        conn_fail(c, "reply to a sequence number not in flight", 0);
        return;
    }
    if (s->left > 0) {
        /* An item of a Sequence answer: the answer is done with its last
         * item, and judged as the Sequence it began with. */
        s->left--;
        if (type != FT_OBJECT) {
            describe_fail(type == FT_FAIL ? body : NULL, len, msg,
                          sizeof msg);
            lg_error(lg, c, "item of a Sequence: %s", type == FT_FAIL ? msg :
                     "not an Object");
        }
        if (s->left > 0)
            return;
        type = FT_SEQUENCE;
    } else if (type == FT_SEQUENCE && s->type == FT_GET_OBJECTS && body &&
               len >= 4 && get_u32(body) > 0) {
        s->left = get_u32(body);
        return;
    }
    uint32_t req_type = s->type;
    uint64_t sent = s->sent_ns;
    s->seq = 0;
    c->inflight--;

    switch (c->state) {
    case CS_HELLO:
        if (type != FT_OKAY) {
            describe_fail(type == FT_FAIL ? body : NULL, len, msg, sizeof msg);
            conn_fail(c, type == FT_FAIL ? msg : "Connect: unexpected reply",
                      0);
        } else if (lg->opt.handshakes) {
            hs_cycle_done(c);
        } else if (lg->opt.no_login) {
            became_ready(c);
        } else {
            send_account(c);
        }
        return;
    case CS_ACCOUNT:            /* Fail: the account exists, fine */
        if (type != FT_OKAY && type != FT_FAIL)
            conn_fail(c, "CreateAccount: unexpected reply", 0);
        else
            send_login(c);
        return;
    case CS_LOGIN:
        if (type != FT_OKAY) {
            describe_fail(type == FT_FAIL ? body : NULL, len, msg, sizeof msg);
            conn_fail(c, type == FT_FAIL ? msg : "Login: unexpected reply", 0);
        } else {
            became_ready(c);
        }
        return;
    case CS_LOAD:
        break;
    default:
        conn_fail(c, "reply while not expecting one", 0);
        return;
    }

    /* Under load: check the reply, count it, send the next request. */
    int good;
    if (lg->opt.no_login)       /* the echo server answers Okay to all */
        good = type == FT_OKAY;
    else if (req_type == FT_GET_TIME)
        good = type == FT_TIME;
    else if (req_type == FT_GET_OBJECTS)
        good = type == FT_SEQUENCE;
    else
        good = type == FT_OKAY;
    if (!good) {
        if (type == FT_FAIL) {
            describe_fail(body, len, msg, sizeof msg);
            lg_error(lg, c, "request type %" PRIu32 ": %s", req_type, msg);
        } else {
            lg_error(lg, c, "request type %" PRIu32 ": reply type %" PRIu32,
                     req_type, type);
        }
    } else if (lg->phase == PH_MEASURE) {
        lg->replies++;
        hist_add(&lg->hist, uv_hrtime() - sent);
    }
    if (lg->phase == PH_WARMUP || lg->phase == PH_MEASURE)
        send_request(c);
}

/* Parse every whole frame in c->rbuf; keep the partial rest. */
static void parse_frames(struct conn *c)
{
    size_t off = 0;
    while (c->state != CS_DEAD) {
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
        if (h[0] != 'T' || h[1] != 'P' || h[2] != 4) {
            conn_fail(c, "reply with a bad header", 0);
            return;
        }
        uint32_t seq = get_u32(h + 4);
        uint32_t type = get_u32(h + 8);
        uint32_t len = get_u32(h + 12);
        if (len > MAX_BODY) {
            conn_fail(c, "reply body longer than 1 MiB", 0);
            return;
        }
        if (HDR_LEN + (size_t)len > RBUF_CAP) {
            /* Too long to keep: act on the header, drop the body. */
            off += HDR_LEN;
            c->skip = len;
            handle_frame(c, seq, type, NULL, len);
            continue;
        }
        if (avail < HDR_LEN + (size_t)len)
            break;
        off += HDR_LEN + len;
        handle_frame(c, seq, type, h + HDR_LEN, len);
    }
    if (c->state == CS_DEAD)
        return;
    c->rlen -= off;
    if (c->rlen && off)
        memmove(c->rbuf, c->rbuf + off, c->rlen);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    if (c->ssl) {
        *buf = uv_buf_init((char *)tls_in, sizeof tls_in);
        return;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen,
                       (unsigned)(RBUF_CAP - c->rlen));
}

/* TLS: ciphertext in, handshake or plaintext out into rbuf. */
static void tls_input(struct conn *c, const unsigned char *p, size_t n)
{
    BIO_write(SSL_get_rbio(c->ssl), p, (int)n);
    if (!c->tls_ready) {
        int r = SSL_do_handshake(c->ssl);
        tls_push(c);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                char why[160];
                ERR_error_string_n(ERR_get_error(), why, sizeof why);
                ERR_clear_error();
                conn_fail(c, why, 0);
            }
            return;
        }
        c->tls_ready = 1;
        send_hello(c);
    }
    while (c->state != CS_DEAD && c->ssl) {
        size_t room = RBUF_CAP - c->rlen;
        if (room == 0) {
            conn_fail(c, "internal: read buffer full", 0);
            return;
        }
        int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)room);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ)
                break;
            conn_fail(c, e == SSL_ERROR_ZERO_RETURN ?
                      "connection closed by the server" : "TLS read", 0);
            return;
        }
        c->rlen += (size_t)r;
        parse_frames(c);
    }
    if (c->state != CS_DEAD)
        conn_flush(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n < 0) {
        conn_fail(c, n == UV_EOF ? "connection closed by the server"
                                 : "read", n == UV_EOF ? 0 : (int)n);
        return;
    }
    if (c->state == CS_DEAD)
        return;
    if (c->ssl) {
        tls_input(c, (const unsigned char *)buf->base, (size_t)n);
        return;
    }
    c->rlen += (size_t)n;
    parse_frames(c);
    if (c->state != CS_DEAD)
        conn_flush(c);
}

/* ---------------------------------------------------------------- setup */

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_fail(c, "connect", status);
        return;
    }
    if (c->state != CS_CONNECTING)
        return;
    uv_tcp_nodelay(&c->tcp, 1);
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        conn_fail(c, "read start", r);
        return;
    }
    if (c->lg->ssl_ctx) {
        /* The Connect frame goes out when the handshake is done. */
        c->ssl = SSL_new(c->lg->ssl_ctx);
        BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
        if (!c->ssl || !rb || !wb) {
            BIO_free(rb);
            BIO_free(wb);
            conn_fail(c, "out of memory", 0);
            return;
        }
        BIO_set_mem_eof_return(rb, -1);
        SSL_set_bio(c->ssl, rb, wb);
        SSL_set_connect_state(c->ssl);
        c->tls_ready = 0;
        SSL_do_handshake(c->ssl);
        ERR_clear_error();
        tls_push(c);
        return;
    }
    send_hello(c);
    conn_flush(c);
}

/* ---------------------------------------------------------------- set-ups
 * --handshakes: every connection connects, shakes hands, sends Connect,
 * closes when it is answered, and starts over while the run lasts. */

static void hs_start(struct conn *c);

static void hs_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->closing = 0;
    c->started = 0;
    if (c->state != CS_DEAD &&
        (c->lg->phase == PH_WARMUP || c->lg->phase == PH_MEASURE))
        hs_start(c);
}

static void hs_start(struct conn *c)
{
    struct loadgen *lg = c->lg;
    int r = uv_tcp_init(lg->loop, &c->tcp);
    if (r < 0) {
        lg_error(lg, c, "tcp init: %s", uv_strerror(r));
        c->state = CS_DEAD;
        return;
    }
    c->started = 1;
    c->tcp.data = c;
    c->creq.data = c;
    c->state = CS_CONNECTING;
    c->rlen = 0;
    c->skip = 0;
    c->out_len = 0;
    c->inflight = 0;
    memset(c->slots, 0, c->nslots * sizeof *c->slots);
    r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&lg->addr,
                       on_connected);
    if (r < 0)
        conn_fail(c, "connect", r);
}

/* Connect was answered: one set-up done; close (with close_notify) and go
 * again. */
static void hs_cycle_done(struct conn *c)
{
    struct loadgen *lg = c->lg;
    if (lg->phase == PH_MEASURE)
        lg->hs_done++;
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        tls_push(c);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    c->state = CS_IDLE;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, hs_closed);
}

/* Start connections while fewer than --ramp are setting up. */
static void start_next(struct loadgen *lg)
{
    if (lg->starting)       /* a connect failed at once, inside the loop */
        return;
    lg->starting = 1;
    while (lg->phase == PH_SETUP && lg->next_start < lg->opt.conns &&
           lg->setting_up < lg->opt.ramp) {
        struct conn *c = &lg->conns[lg->next_start++];
        int r = uv_tcp_init(lg->loop, &c->tcp);
        if (r < 0) {
            lg_error(lg, c, "tcp init: %s", uv_strerror(r));
            c->state = CS_DEAD;
            lg->finished++;
            continue;
        }
        c->started = 1;
        c->tcp.data = c;
        c->creq.data = c;
        c->state = CS_CONNECTING;
        lg->setting_up++;
        r = uv_tcp_connect(&c->creq, &c->tcp,
                           (const struct sockaddr *)&lg->addr, on_connected);
        if (r < 0)
            conn_fail(c, "connect", r);
    }
    lg->starting = 0;
    if (lg->phase == PH_SETUP && lg->finished == lg->opt.conns)
        start_load(lg);
}

/* ---------------------------------------------------------------- phases */

static uint64_t ms_of(double seconds)
{
    return (uint64_t)(seconds * 1000.0 + 0.5);
}

static void on_timer(uv_timer_t *t)
{
    struct loadgen *lg = t->data;
    switch (lg->phase) {
    case PH_SETUP: {
        /* Set-up took too long: give up the stragglers. */
        unsigned late = 0;
        for (unsigned i = lg->next_start; i < lg->opt.conns; i++) {
            lg->conns[i].state = CS_DEAD;
            lg->finished++;
            late++;
        }
        lg->next_start = lg->opt.conns;
        if (late)
            lg_error(lg, NULL, "%u connections not started before the "
                     "set-up timeout", late);
        for (unsigned i = 0; i < lg->opt.conns && lg->phase == PH_SETUP; i++) {
            struct conn *c = &lg->conns[i];
            if (c->state >= CS_CONNECTING && c->state < CS_READY)
                conn_fail(c, "set-up timed out", 0);
        }
        if (lg->phase == PH_SETUP)
            start_load(lg);
        break;
    }
    case PH_WARMUP:
        lg->phase = PH_MEASURE;
        lg->t_start = uv_hrtime();
        lg->hs_done = 0;
        uv_timer_start(&lg->timer, on_timer, ms_of(lg->opt.duration), 0);
        break;
    case PH_MEASURE:
        lg->t_end = uv_hrtime();
        finish(lg);
        break;
    case PH_DONE:
        break;
    }
}

/* Every connection is ready or dead: put the ready ones under load. */
static void start_load(struct loadgen *lg)
{
    uv_timer_stop(&lg->timer);
    if (lg->ready == 0) {
        lg_error(lg, NULL, "no connection could be set up");
        lg->t_start = lg->t_end = uv_hrtime();
        finish(lg);
        return;
    }
    lg->phase = PH_WARMUP;
    for (unsigned i = 0; i < lg->opt.conns; i++) {
        struct conn *c = &lg->conns[i];
        if (c->state != CS_READY)
            continue;
        c->state = CS_LOAD;
        for (unsigned k = 0; k < lg->opt.pipeline && c->state == CS_LOAD; k++)
            send_request(c);
        conn_flush(c);
    }
    uv_timer_start(&lg->timer, on_timer, ms_of(lg->opt.warmup), 0);
}

/* The run is over: close every handle; the loop then runs dry. */
static void finish(struct loadgen *lg)
{
    lg->phase = PH_DONE;
    uv_timer_stop(&lg->timer);
    for (unsigned i = 0; i < lg->opt.conns; i++) {
        struct conn *c = &lg->conns[i];
        c->state = CS_DEAD;
        conn_close(c);
    }
    if (!uv_is_closing((uv_handle_t *)&lg->timer))
        uv_close((uv_handle_t *)&lg->timer, NULL);
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
"usage: tploadgen [options]\n"
"  --host ADDR          server address, numeric (default 127.0.0.1)\n"
"  --port N             server port (required)\n"
"  --conns N            connections to open (default 1)\n"
"  --pipeline N         requests in flight per connection, 1..%u "
"(default 16)\n"
"  --duration SECONDS   measured time (default 5)\n"
"  --warmup SECONDS     load before measuring (default 1)\n"
"  --mix ping|timeremaining|both|objects\n"
"                       requests to send: Ping, GetTimeRemaining, the\n"
"                       two alternately, or GetObjectsByID (default ping)\n"
"  --ids N              ids in each GetObjectsByID (objects), 1..%u\n"
"                       (default 1000; all of them object 0)\n"
"  --no-login           send only Connect before the load (for tpecho);\n"
"                       every reply must then be Okay\n"
"  --user-prefix S      account names are S0, S1, ... (default bench)\n"
"  --ramp N             connections setting up at once (default 64)\n"
"  --setup-timeout SEC  time allowed for all set-ups (default 30)\n"
"  --tls                TLS to the server (a tps listener)\n"
"  --handshakes         measure set-ups: connect, (TLS handshake,) Connect,\n"
"                       close, again; prints handshakes= and hps=\n"
"  --help               this text\n"
"Prints one line: conns= ready= pipeline= mix= seconds= replies= rps=\n"
"p50_us= p90_us= p99_us= p999_us= max_us= errors=.  Exit 0 when the run\n"
"completed without errors, 1 otherwise, 2 on a usage error.\n",
            MAX_PIPELINE, MAX_IDS);
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_seconds(const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo) || v > 86400.0)
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    enum { O_HOST = 256, O_PORT, O_CONNS, O_PIPE, O_DUR, O_WARM, O_MIX,
           O_NOLOGIN, O_PREFIX, O_RAMP, O_SETUP, O_HELP, O_TLS, O_HS,
           O_IDS };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "conns", required_argument, NULL, O_CONNS },
        { "pipeline", required_argument, NULL, O_PIPE },
        { "duration", required_argument, NULL, O_DUR },
        { "warmup", required_argument, NULL, O_WARM },
        { "mix", required_argument, NULL, O_MIX },
        { "no-login", no_argument, NULL, O_NOLOGIN },
        { "user-prefix", required_argument, NULL, O_PREFIX },
        { "ramp", required_argument, NULL, O_RAMP },
        { "setup-timeout", required_argument, NULL, O_SETUP },
        { "help", no_argument, NULL, O_HELP },
        { "tls", no_argument, NULL, O_TLS },
        { "handshakes", no_argument, NULL, O_HS },
        { "ids", required_argument, NULL, O_IDS },
        { NULL, 0, NULL, 0 }
    };
    *o = (struct options){
        .host = "127.0.0.1", .port = 0, .conns = 1, .pipeline = 16,
        .duration = 5.0, .warmup = 1.0, .setup_timeout = 30.0, .ramp = 64,
        .mix = MIX_PING, .ids = 1000, .no_login = 0,
        .user_prefix = "bench",
    };
    unsigned port = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case O_HOST:
            o->host = optarg;
            break;
        case O_PORT:
            bad = parse_uint(optarg, 1, 65535, &port);
            break;
        case O_CONNS:
            bad = parse_uint(optarg, 1, MAX_CONNS, &o->conns);
            break;
        case O_PIPE:
            bad = parse_uint(optarg, 1, MAX_PIPELINE, &o->pipeline);
            break;
        case O_DUR:
            bad = parse_seconds(optarg, 0.1, &o->duration);
            break;
        case O_WARM:
            bad = parse_seconds(optarg, 0.0, &o->warmup);
            break;
        case O_SETUP:
            bad = parse_seconds(optarg, 0.1, &o->setup_timeout);
            break;
        case O_RAMP:
            bad = parse_uint(optarg, 1, MAX_CONNS, &o->ramp);
            break;
        case O_MIX:
            if (strcmp(optarg, "ping") == 0)
                o->mix = MIX_PING;
            else if (strcmp(optarg, "timeremaining") == 0)
                o->mix = MIX_TIME;
            else if (strcmp(optarg, "both") == 0)
                o->mix = MIX_BOTH;
            else if (strcmp(optarg, "objects") == 0)
                o->mix = MIX_OBJECTS;
            else
                bad = 1;
            break;
        case O_NOLOGIN:
            o->no_login = 1;
            break;
        case O_IDS:
            bad = parse_uint(optarg, 1, MAX_IDS, &o->ids);
            break;
        case O_TLS:
            o->tls = 1;
            break;
        case O_HS:
            o->handshakes = 1;
            break;
        case O_PREFIX:
            o->user_prefix = optarg;
            if (strlen(optarg) > STR_MAX - 24)
                bad = 1;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "tploadgen: bad value for option: %s\n", optarg);
            return -1;
        }
    }
    if (optind != argc || port == 0) {
        fprintf(stderr, "tploadgen: %s\n", port == 0 ? "--port is required"
                                                     : "unexpected argument");
        usage(stderr);
        return -1;
    }
    o->port = (int)port;
    return 0;
}

/* Allow as many open files as the hard limit permits. */
static void raise_nofile(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 32)
        fprintf(stderr, "tploadgen: warning: open-file limit %llu is low for "
                "%u connections\n", (unsigned long long)rl.rlim_cur, need);
}

static unsigned pow2_at_least(unsigned n)
{
    unsigned p = 8;
    while (p < n)
        p <<= 1;
    return p;
}

int main(int argc, char **argv)
{
    static struct loadgen lg;       /* large (histogram): not on the stack */
    if (parse_options(argc, argv, &lg.opt) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(lg.opt.conns);

    int r;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&lg.addr;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&lg.addr;
    if (uv_ip4_addr(lg.opt.host, lg.opt.port, a4) != 0 &&
        uv_ip6_addr(lg.opt.host, lg.opt.port, a6) != 0) {
        fprintf(stderr, "tploadgen: --host must be a numeric address\n");
        return 2;
    }

    lg.conns = calloc(lg.opt.conns, sizeof *lg.conns);
    unsigned nslots = pow2_at_least(2 * lg.opt.pipeline);
    size_t out_cap = (size_t)lg.opt.pipeline * HDR_LEN + SETUP_MAX;
    if (lg.opt.mix == MIX_OBJECTS) {
        /* u32 count, then the ids: all 0 (the universe, seen by all). */
        lg.objects_len = 4 + 4 * (size_t)lg.opt.ids;
        lg.objects_body = calloc(1, lg.objects_len);
        if (lg.objects_body)
            put_u32(lg.objects_body, lg.opt.ids);
        out_cap += (size_t)lg.opt.pipeline * lg.objects_len;
    }
    if (!lg.conns || (lg.opt.mix == MIX_OBJECTS && !lg.objects_body)) {
        fprintf(stderr, "tploadgen: out of memory\n");
        return 1;
    }
    int oom = 0;
    for (unsigned i = 0; i < lg.opt.conns && !oom; i++) {
        struct conn *c = &lg.conns[i];
        c->lg = &lg;
        c->idx = i;
        c->state = CS_IDLE;
        c->next_seq = 1;
        c->nslots = nslots;
        c->slots = calloc(nslots, sizeof *c->slots);
        c->out_cap = out_cap;
        c->out = malloc(out_cap);
        oom = !c->slots || !c->out;
    }

    if (lg.opt.tls) {
        lg.ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!lg.ssl_ctx) {
            fprintf(stderr, "tploadgen: cannot create a TLS context\n");
            return 1;
        }
        SSL_CTX_set_min_proto_version(lg.ssl_ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(lg.ssl_ctx, SSL_VERIFY_NONE, NULL);
        /* Every connection a full handshake: no session resumption. */
        SSL_CTX_set_session_cache_mode(lg.ssl_ctx, SSL_SESS_CACHE_OFF);
    }

    lg.loop = uv_default_loop();
    if (!oom && lg.opt.handshakes) {
        uv_timer_init(lg.loop, &lg.timer);
        lg.timer.data = &lg;
        lg.phase = PH_WARMUP;
        uv_timer_start(&lg.timer, on_timer, ms_of(lg.opt.warmup), 0);
        for (unsigned i = 0; i < lg.opt.conns; i++)
            hs_start(&lg.conns[i]);
        uv_run(lg.loop, UV_RUN_DEFAULT);
    } else if (!oom) {
        uv_timer_init(lg.loop, &lg.timer);
        lg.timer.data = &lg;
        uv_timer_start(&lg.timer, on_timer, ms_of(lg.opt.setup_timeout), 0);
        start_next(&lg);
        uv_run(lg.loop, UV_RUN_DEFAULT);
    } else {
        fprintf(stderr, "tploadgen: out of memory\n");
    }
    r = uv_loop_close(lg.loop);
    if (r != 0) {
        fprintf(stderr, "tploadgen: uv_loop_close: %s\n", uv_strerror(r));
        lg.errors++;
    }
    for (unsigned i = 0; i < lg.opt.conns; i++) {
        SSL_free(lg.conns[i].ssl);
        free(lg.conns[i].slots);
        free(lg.conns[i].out);
    }
    free(lg.conns);
    free(lg.objects_body);
    SSL_CTX_free(lg.ssl_ctx);
    if (oom)
        return 1;

    double secs = (double)(lg.t_end - lg.t_start) / 1e9;
    if (lg.opt.handshakes) {
        printf("conns=%u tls=%d seconds=%.3f handshakes=%" PRIu64
               " hps=%.0f errors=%" PRIu64 "\n", lg.opt.conns, lg.opt.tls,
               secs, lg.hs_done, secs > 0 ? (double)lg.hs_done / secs : 0.0,
               lg.errors);
        fflush(stdout);
        return lg.errors == 0 && lg.hs_done > 0 ? 0 : 1;
    }
    double rps = secs > 0 ? (double)lg.replies / secs : 0.0;
    printf("conns=%u ready=%u pipeline=%u mix=%s seconds=%.3f "
           "replies=%" PRIu64 " rps=%.0f p50_us=%" PRIu64 " p90_us=%" PRIu64
           " p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64
           " errors=%" PRIu64 "\n",
           lg.opt.conns, lg.ready, lg.opt.pipeline, mix_name(lg.opt.mix),
           secs, lg.replies, rps,
           hist_quantile(&lg.hist, 0.50) / 1000,
           hist_quantile(&lg.hist, 0.90) / 1000,
           hist_quantile(&lg.hist, 0.99) / 1000,
           hist_quantile(&lg.hist, 0.999) / 1000,
           lg.hist.max_ns / 1000, lg.errors);
    fflush(stdout);
    return lg.errors == 0 && lg.replies > 0 ? 0 : 1;
}
