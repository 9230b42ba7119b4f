/*
 * httpload.c: tphttpload, the load generator of tpserver's web side
 * (docs/http.md), one libuv loop.  Two modes:
 *
 * Requests (the default): opens --conns keep-alive HTTP/1.1 connections
 * (at most --ramp of them setting up at once), logs each in with POST
 * /api/login as <prefix><n> / pw when --login is given (the session
 * cookie then goes with every request), and keeps --pipeline GETs of
 * --path in flight on every connection (pipelining: answers come in
 * request order), sending the next as each answer is read.  After a
 * warm-up it counts answers for --duration seconds, keeps their latencies
 * (request queued to answer read) in a log-linear histogram, and prints
 * one line of key=value pairs:
 *
 *   conns=100 ready=100 pipeline=4 mix=http path=/api/game seconds=5.000
 *   replies=123456 rps=24691 p50_us=210 p90_us=400 p99_us=950
 *   p999_us=1800 max_us=4000 bytes=434 errors=0
 *
 * (on one line; bytes= is the mean body length).  The answer reader is
 * minimal: a status line, headers, a Content-Length body; a chunked
 * answer is refused.  A status that is not 2xx, an answer without
 * --expect's text in its body (bodies longer than the read buffer are not
 * searched), a `Connection: close`, a dropped connection or one that
 * could not log in is an error: described on stderr, exit status 1.
 *
 * Events (--events N): opens N event streams (GET /api/events, not logged
 * in) and, as a reference, --tp-clients TP connections to --tp-port that
 * do Connect, CreateAccount (an existing account is fine) and Login.
 * Once every stream has had its hello event and every TP client is logged
 * in, it runs the command after `--` (which ends the turn, e.g. `tpserver
 * console -e 'turn.now()'`) and times, from starting it, the arrival of
 * turn_end and turn_start on every stream and of the two TimeRemaining
 * pushes (the turn ending, the next turn's timer) on every TP client.
 * --rounds times, one line per round:
 *
 *   round=1 turn=3 subscribers=1000 sse_ready=1000 tp_clients=1000
 *   tp_ready=1000 cmd_ms=30.1 sse_first_ms=9.2 sse_p50_ms=12.0
 *   sse_end_ms=15.3 sse_start_ms=40.2 tp_first_ms=8.1 tp_p50_ms=9.0
 *   tp_end_ms=10.3 tp_start_ms=39.0 errors=0
 *
 * (on one line): *_first, *_p50 and *_end are the first, median and last
 * arrival of the end of the turn, *_start the last arrival of the new
 * turn, cmd_ms when the command exited.  An event for the wrong turn, a
 * stream or client that misses one within --event-timeout, a dropped
 * connection or a command that fails is an error.
 *
 * Exit status: 0 when the run completed without errors, 1 otherwise, 2 on
 * a usage error.
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
#include <strings.h>
#include <sys/resource.h>
#include <uv.h>

#include "hist.h"

/* ---------------------------------------------------------------- limits */

#define HEAD_MAX       16384u           /* longest answer head accepted */
#define LOAD_RBUF      (64u * 1024u)    /* read buffer, request mode */
#define STREAM_RBUF    4096u            /* read buffer, events mode */
#define MAX_PIPELINE   1024u            /* largest --pipeline */
#define MAX_CONNS      100000u          /* largest --conns, --events */
#define MAX_ERR_SHOWN  20u              /* errors described on stderr */
#define PATH_LEN_MAX   2048u            /* longest --path */
#define COOKIE_MAX     200u             /* longest session cookie kept */
#define EXPECT_MAX     200u             /* longest --expect */
#define PREFIX_MAX     40u              /* longest --user-prefix */
#define LINE_CAP       512u             /* event-stream line kept */
#define NAME_CAP       32u              /* event name kept */
#define DATA_CAP       256u             /* event data kept */
#define SHOW_MAX       160              /* bytes of a body shown */
#define FAILED_GRACE_MS 2000u           /* a round after its command failed */

/* TP04, for the reference clients of the events mode. */
#define TP_HDR         16u              /* bytes of a frame header */
#define TP_MAX_BODY    (1u << 24)       /* longest frame body accepted */
#define TP_PREFIX      64u              /* body bytes kept of a long frame */
#define FT_OKAY        0u
#define FT_FAIL        1u
#define FT_CONNECT     3u
#define FT_LOGIN       4u
#define FT_TIME        15u              /* TimeRemaining: j time, I reason,
                                           I turn, S name, [I] waiting */
#define FT_CREATE_ACC  62u
#define REASON_STARTED 1u               /* TimerStarted: a new turn */
#define REASON_ALLDONE 3u               /* AllFinished: the turn ends */
#define REASON_ENDING  5u               /* EndOfTurnStarted */

/* ---------------------------------------------------------------- state */

enum phase {
    PH_SETUP,       /* connections are being opened (and logged in) */
    PH_WARMUP,      /* requests: load runs, answers not counted */
    PH_MEASURE,     /* requests: answers and latencies counted */
    PH_SETTLE,      /* events: everyone ready, waiting before a round */
    PH_ROUND,       /* events: the command runs, arrivals are timed */
    PH_DONE         /* everything is being closed */
};

enum kind { K_HTTP, K_STREAM, K_TP };

enum cstate {
    CS_IDLE,        /* not started yet (waiting for the ramp) */
    CS_CONNECTING,  /* TCP connect in progress */
    CS_LOGIN,       /* HTTP: POST /api/login sent */
    CS_SUBSCRIBE,   /* stream: GET /api/events sent, no hello yet */
    CS_TP_HELLO,    /* TP: Connect sent */
    CS_TP_ACCOUNT,  /* TP: CreateAccount sent */
    CS_TP_LOGIN,    /* TP: Login sent */
    CS_READY,       /* set up, waiting for the load or the rounds */
    CS_LOAD,        /* HTTP: sending requests */
    CS_DEAD         /* failed or closed */
};

/* Chunked transfer coding of a stream. */
enum chunk { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END };

struct run;

struct conn {
    uv_tcp_t tcp;               /* the socket (tcp.data points here) */
    uv_connect_t creq;          /* the pending TCP connect */
    struct run *run;            /* the run this connection belongs to */
    unsigned idx;               /* number among its kind, names accounts */
    enum kind kind;             /* what it speaks */
    enum cstate state;          /* where it is */
    int started;                /* tcp was initialised (needs uv_close) */
    int closing;                /* uv_close was called */
    unsigned char *rbuf;        /* bytes read, not yet parsed */
    size_t rcap;                /* size of rbuf */
    size_t rlen;                /* bytes used in rbuf */
    unsigned char *out;         /* bytes queued, not yet written */
    size_t out_len;             /* bytes used in out */
    size_t out_cap;             /* size of out */
    /* HTTP answers */
    int have_head;              /* the head of the next answer is parsed */
    int status;                 /* its status */
    int close_after;            /* it said Connection: close */
    size_t body_len;            /* its Content-Length */
    size_t body_skip;           /* body bytes still to discard */
    uint64_t *sent;             /* ring: uv_hrtime() of requests in flight */
    unsigned sent_head;         /* oldest entry of sent */
    unsigned inflight;          /* entries in sent */
    char cookie[COOKIE_MAX];    /* "tp_session=..." once logged in */
    char *req;                  /* the request sent under load */
    size_t req_len;             /* its length */
    /* event stream */
    int chunked;                /* the stream is chunked */
    enum chunk ch;              /* where the chunk decoder is */
    uint64_t ch_left;           /* bytes left of the current chunk */
    int ch_digits;              /* hex digits of the size line */
    char line[LINE_CAP];        /* the line being read */
    size_t line_len;            /* its length (longer lines are cut) */
    char ev_name[NAME_CAP];     /* event: of the event being read */
    char ev_data[DATA_CAP];     /* data: of it (the first line) */
    /* TP */
    uint32_t next_seq;          /* sequence number of the next frame */
    uint32_t tp_skip;           /* frame body bytes still to discard */
    /* a round (events mode) */
    uint64_t t_end;             /* arrival of the end of the turn, or 0 */
    uint64_t t_start;           /* arrival of the new turn, or 0 */
};

/* A uv_write whose data is copied after the request itself. */
struct wreq {
    uv_write_t req;             /* the libuv request */
    size_t len;                 /* bytes of data following */
    unsigned char data[];       /* the bytes written */
};

struct options {
    const char *host;           /* server address (numeric IPv4/IPv6) */
    int port;                   /* the web listener */
    unsigned conns;             /* HTTP connections (requests mode) */
    unsigned pipeline;          /* requests in flight per connection */
    double duration;            /* measured seconds */
    double warmup;              /* seconds of load before measuring */
    double setup_timeout;       /* seconds allowed for all set-ups */
    unsigned ramp;              /* connections setting up at once */
    const char *path;           /* request target */
    int login;                  /* log in first */
    const char *user_prefix;    /* account names are prefix + number */
    const char *expect;         /* text every answer body must hold */
    unsigned events;            /* event streams (events mode), or 0 */
    int tp_port;                /* TP listener of the reference clients */
    unsigned tp_clients;        /* TP reference clients */
    unsigned rounds;            /* turn ends timed */
    double settle;              /* seconds of quiet before a round */
    double event_timeout;       /* seconds a round may take */
    char **trigger;             /* the command ending the turn */
};

struct run {
    uv_loop_t *loop;            /* the event loop */
    uv_timer_t timer;           /* drives the phases */
    struct options opt;         /* command-line options */
    enum phase phase;           /* where the run is */
    struct conn *conns;         /* every connection */
    unsigned nconns;            /* entries in conns */
    unsigned next_start;        /* next connection to start */
    unsigned setting_up;        /* connections started, not ready/dead */
    unsigned finished;          /* connections ready or failed in set-up */
    unsigned ready;             /* connections that completed set-up */
    int starting;               /* start_next is running */
    struct sockaddr_storage web_addr; /* the web listener */
    struct sockaddr_storage tp_addr;  /* the TP listener */
    char host_hdr[96];          /* the Host header's value */
    uint64_t errors;            /* errors of any kind */
    /* requests mode */
    uint64_t t_start;           /* uv_hrtime() when measuring began */
    uint64_t t_end;             /* uv_hrtime() when measuring ended */
    uint64_t replies;           /* answers in the measured phase */
    uint64_t body_bytes;        /* their body bytes */
    struct histogram hist;      /* their latencies */
    /* events mode */
    long turn;                  /* the game's turn as last seen */
    long expect_end;            /* the turn this round ends */
    unsigned round;             /* rounds started */
    uint64_t t0;                /* uv_hrtime() when the command started */
    uint64_t t_exit;            /* when it exited, or 0 */
    int cmd_running;            /* the command's handle is open */
    uv_process_t proc;          /* the command */
    unsigned waiting;           /* ready connections not done this round */
    uint64_t *arrivals;         /* scratch for the percentiles */
};

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

static const char *kind_name(enum kind k)
{
    return k == K_HTTP ? "http" : k == K_STREAM ? "stream" : "tp";
}

static void run_error(struct run *r, const struct conn *c,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void run_error(struct run *r, const struct conn *c,
                      const char *fmt, ...)
{
    r->errors++;
    if (r->errors > MAX_ERR_SHOWN) {
        if (r->errors == MAX_ERR_SHOWN + 1)
            fprintf(stderr, "tphttpload: more errors, not shown\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    if (c)
        fprintf(stderr, "tphttpload: %s conn %u: ", kind_name(c->kind),
                c->idx);
    else
        fprintf(stderr, "tphttpload: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Copies up to SHOW_MAX bytes of p into buf as printable text. */
static void show_bytes(const unsigned char *p, size_t n, char *buf,
                       size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && i < SHOW_MAX && j + 1 < cap; i++)
        buf[j++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
    buf[j] = '\0';
}

static void start_next(struct run *r);
static void setup_done(struct run *r);
static void finish(struct run *r);
static void round_check(struct run *r);

/* ---------------------------------------------------------------- closing */

/* A connection left the set-up phase (ready or failed). */
static void setup_left(struct conn *c)
{
    struct run *r = c->run;
    r->setting_up--;
    r->finished++;
    if (r->phase == PH_SETUP)
        start_next(r);      /* also ends the set-up when all are done */
}

static void conn_close(struct conn *c)
{
    if (!c->started || c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, NULL);
}

/* The connection failed: count an error (unless the run is over), close
 * it, and let the ramp or the round go on. */
static void conn_fail(struct conn *c, const char *what, int err)
{
    struct run *r = c->run;
    enum cstate was = c->state;
    if (was == CS_DEAD)
        return;
    c->state = CS_DEAD;
    if (r->phase != PH_DONE) {
        if (err)
            run_error(r, c, "%s: %s", what, uv_strerror(err));
        else
            run_error(r, c, "%s", what);
    }
    conn_close(c);
    if (was >= CS_CONNECTING && was < CS_READY) {
        setup_left(c);
    } else if (was == CS_READY || was == CS_LOAD) {
        r->ready--;
        if (r->phase == PH_ROUND && !(c->t_end && c->t_start)) {
            r->waiting--;
            round_check(r);
        }
    }
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

/* Writes what is queued on c: directly if the socket takes it, the rest
 * through a copied uv_write. */
static void conn_flush(struct conn *c)
{
    size_t len = c->out_len;
    if (len == 0 || c->closing || c->state == CS_DEAD)
        return;
    c->out_len = 0;
    uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)len);
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
    memcpy(w->data, c->out + done, rest);
    buf = uv_buf_init((char *)w->data, (unsigned)rest);
    int e = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written);
    if (e < 0) {
        free(w);
        conn_fail(c, "write", e);
    }
}

/* Queues len bytes on c; -1 (and the connection failed) when they do not
 * fit, which the buffer sizes rule out. */
static int queue_bytes(struct conn *c, const void *p, size_t len)
{
    if (c->out_cap - c->out_len < len) {
        conn_fail(c, "internal: output buffer full", 0);
        return -1;
    }
    memcpy(c->out + c->out_len, p, len);
    c->out_len += len;
    return 0;
}

/* An HTTP request, remembered as in flight. */
static int queue_request(struct conn *c, const char *p, size_t len)
{
    if (c->inflight >= c->run->opt.pipeline + 1u) {
        conn_fail(c, "internal: too many requests in flight", 0);
        return -1;
    }
    if (queue_bytes(c, p, len) < 0)
        return -1;
    unsigned slot = (c->sent_head + c->inflight) % (c->run->opt.pipeline + 1u);
    c->sent[slot] = uv_hrtime();
    c->inflight++;
    return 0;
}

/* A TP frame of the given type and body. */
static int queue_frame(struct conn *c, uint32_t type,
                       const unsigned char *body, size_t body_len)
{
    unsigned char h[TP_HDR];
    uint32_t seq = c->next_seq++;
    h[0] = 'T';
    h[1] = 'P';
    h[2] = 4;
    h[3] = 0;
    put_u32(h + 4, seq);
    put_u32(h + 8, type);
    put_u32(h + 12, (uint32_t)body_len);
    if (c->out_cap - c->out_len < TP_HDR + body_len) {
        conn_fail(c, "internal: output buffer full", 0);
        return -1;
    }
    queue_bytes(c, h, TP_HDR);
    if (body_len)
        queue_bytes(c, body, body_len);
    return 0;
}

/* Appends a TP string (u32 length, bytes) at p; returns its size. */
static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    put_u32(p, (uint32_t)n);
    memcpy(p + 4, s, n);
    return 4 + n;
}

/* ---------------------------------------------------------------- set-up */

static void became_ready(struct conn *c)
{
    c->state = CS_READY;
    c->run->ready++;
    setup_left(c);
}

static void send_login(struct conn *c)
{
    struct run *r = c->run;
    char body[128], head[256 + sizeof r->host_hdr];
    int bl = snprintf(body, sizeof body,
                      "{\"username\":\"%s%u\",\"password\":\"pw\"}",
                      r->opt.user_prefix, c->idx);
    int hl = snprintf(head, sizeof head,
                      "POST /api/login HTTP/1.1\r\nHost: %s\r\n"
                      "User-Agent: tphttpload\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n", r->host_hdr, bl);
    if (bl < 0 || (size_t)bl >= sizeof body || hl < 0 ||
        (size_t)hl >= sizeof head) {
        conn_fail(c, "internal: login request too long", 0);
        return;
    }
    c->state = CS_LOGIN;
    if (queue_request(c, head, (size_t)hl) == 0)
        queue_bytes(c, body, (size_t)bl);
}

/* The request sent under load, with the session cookie if there is one. */
static int build_request(struct conn *c)
{
    struct run *r = c->run;
    size_t cap = strlen(r->opt.path) + sizeof r->host_hdr + COOKIE_MAX + 128;
    c->req = malloc(cap);
    if (!c->req)
        return -1;
    int n = snprintf(c->req, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: tphttpload\r\n%s%s%s\r\n", r->opt.path,
                     r->host_hdr, c->cookie[0] ? "Cookie: " : "",
                     c->cookie, c->cookie[0] ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return -1;
    c->req_len = (size_t)n;
    size_t need = (size_t)r->opt.pipeline * c->req_len;
    if (need > c->out_cap) {
        unsigned char *o = realloc(c->out, need);
        if (!o)
            return -1;
        c->out = o;
        c->out_cap = need;
    }
    return 0;
}

static void send_subscribe(struct conn *c)
{
    char head[128 + sizeof c->run->host_hdr];
    int n = snprintf(head, sizeof head, "GET /api/events HTTP/1.1\r\n"
                     "Host: %s\r\nUser-Agent: tphttpload\r\n"
                     "Accept: text/event-stream\r\n\r\n", c->run->host_hdr);
    if (n < 0 || (size_t)n >= sizeof head) {
        conn_fail(c, "internal: request too long", 0);
        return;
    }
    c->state = CS_SUBSCRIBE;
    queue_bytes(c, head, (size_t)n);
}

static void tp_send_hello(struct conn *c)
{
    unsigned char body[64];
    size_t n = put_str(body, "tphttpload");
    c->state = CS_TP_HELLO;
    queue_frame(c, FT_CONNECT, body, n);
}

static void tp_send_account(struct conn *c)
{
    unsigned char body[4 * (PREFIX_MAX + 64)];
    char user[PREFIX_MAX + 16], mail[PREFIX_MAX + 32];
    snprintf(user, sizeof user, "%s%u", c->run->opt.user_prefix, c->idx);
    snprintf(mail, sizeof mail, "%s@localhost", user);
    size_t n = put_str(body, user);
    n += put_str(body + n, "pw");
    n += put_str(body + n, mail);
    n += put_str(body + n, "tphttpload");
    c->state = CS_TP_ACCOUNT;
    queue_frame(c, FT_CREATE_ACC, body, n);
}

static void tp_send_login(struct conn *c)
{
    unsigned char body[2 * (PREFIX_MAX + 32)];
    char user[PREFIX_MAX + 16];
    snprintf(user, sizeof user, "%s%u", c->run->opt.user_prefix, c->idx);
    size_t n = put_str(body, user);
    n += put_str(body + n, "pw");
    c->state = CS_TP_LOGIN;
    queue_frame(c, FT_LOGIN, body, n);
}

/* ---------------------------------------------------------------- HTTP */

/* Parses the head at p (len bytes, ending in the blank line) into c's
 * answer fields.  Returns 0, or -1 with *why set. */
static int parse_head(struct conn *c, const char *p, size_t len,
                      long *content_length, const char **why)
{
    *content_length = -1;
    c->chunked = 0;
    c->close_after = 0;
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9') {
        *why = "answer without an HTTP/1.x status line";
        return -1;
    }
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *end = p + len;
    const char *ln = memchr(p, '\n', len);
    while (ln && ln + 1 < end) {
        const char *s = ln + 1;
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e)
            break;
        ln = e;
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (!colon)
            continue;
        size_t nlen = (size_t)(colon - s);
        const char *v = colon + 1;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        size_t vlen = (size_t)(e - v);
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
            vlen--;
        if (nlen == 14 && strncasecmp(s, "content-length", 14) == 0) {
            long n = 0;
            if (vlen == 0 || vlen > 12) {
                *why = "bad Content-Length";
                return -1;
            }
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    *why = "bad Content-Length";
                    return -1;
                }
                n = n * 10 + (v[i] - '0');
            }
            *content_length = n;
        } else if (nlen == 17 &&
                   strncasecmp(s, "transfer-encoding", 17) == 0) {
            c->chunked = vlen >= 7 &&
                         strncasecmp(v + vlen - 7, "chunked", 7) == 0;
        } else if (nlen == 10 && strncasecmp(s, "connection", 10) == 0) {
            c->close_after = vlen == 5 && strncasecmp(v, "close", 5) == 0;
        } else if (nlen == 10 && strncasecmp(s, "set-cookie", 10) == 0 &&
                   vlen > 11 && memcmp(v, "tp_session=", 11) == 0) {
            size_t n = 0;
            while (n < vlen && v[n] != ';')
                n++;
            if (n >= sizeof c->cookie) {
                *why = "session cookie too long";
                return -1;
            }
            memcpy(c->cookie, v, n);
            c->cookie[n] = '\0';
        }
    }
    return 0;
}

/* Finds the end of a head in c->rbuf from off: the offset after the blank
 * line, or 0 when it is not all there yet. */
static size_t head_end(const struct conn *c, size_t off)
{
    const unsigned char *p = c->rbuf + off;
    size_t n = c->rlen - off;
    for (size_t i = 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
            p[i - 3] == '\r')
            return off + i + 1;
    return 0;
}

static void send_more(struct conn *c)
{
    struct run *r = c->run;
    while (c->state == CS_LOAD && c->inflight < r->opt.pipeline &&
           (r->phase == PH_WARMUP || r->phase == PH_MEASURE))
        if (queue_request(c, c->req, c->req_len) < 0)
            return;
}

/* One whole answer; body is NULL when it was too long to keep. */
static void http_answer(struct conn *c, const unsigned char *body,
                        size_t len)
{
    struct run *r = c->run;
    char shown[SHOW_MAX + 1];
    if (c->inflight == 0) {
        conn_fail(c, "an answer to no request", 0);
        return;
    }
    uint64_t sent = c->sent[c->sent_head];
    c->sent_head = (c->sent_head + 1) % (r->opt.pipeline + 1u);
    c->inflight--;
    show_bytes(body ? body : (const unsigned char *)"", body ? len : 0,
               shown, sizeof shown);

    if (c->state == CS_LOGIN) {
        if (c->status != 200 || !c->cookie[0]) {
            char msg[SHOW_MAX + 64];
            snprintf(msg, sizeof msg, "login: status %d%s: %s", c->status,
                     c->cookie[0] ? "" : " without a session cookie", shown);
            conn_fail(c, msg, 0);
            return;
        }
        if (build_request(c) < 0) {
            conn_fail(c, "out of memory", 0);
            return;
        }
        became_ready(c);
        return;
    }
    if (c->state != CS_LOAD) {
        conn_fail(c, "an answer while not expecting one", 0);
        return;
    }
    int good = c->status >= 200 && c->status < 300;
    if (!good) {
        run_error(r, c, "GET %s: status %d: %s", r->opt.path, c->status,
                  shown);
    } else if (r->opt.expect && body &&
               !memmem(body, len, r->opt.expect, strlen(r->opt.expect))) {
        run_error(r, c, "GET %s: the body lacks \"%s\": %s", r->opt.path,
                  r->opt.expect, shown);
        good = 0;
    }
    if (good && r->phase == PH_MEASURE) {
        r->replies++;
        r->body_bytes += len;
        hist_add(&r->hist, uv_hrtime() - sent);
    }
    if (c->close_after) {
        conn_fail(c, "the server closes the connection (Connection: close)",
                  0);
        return;
    }
    send_more(c);
}

/* Parses every whole answer in c->rbuf; keeps the partial rest. */
static void http_parse(struct conn *c)
{
    size_t off = 0;
    while (c->state != CS_DEAD) {
        size_t avail = c->rlen - off;
        if (c->body_skip > 0) {
            size_t n = avail < c->body_skip ? avail : c->body_skip;
            off += n;
            c->body_skip -= n;
            if (c->body_skip > 0)
                break;
            c->have_head = 0;
            http_answer(c, NULL, c->body_len);
            continue;
        }
        if (!c->have_head) {
            size_t e = head_end(c, off);
            if (e == 0) {
                if (avail >= HEAD_MAX || avail >= c->rcap)
                    conn_fail(c, "answer head too long", 0);
                break;
            }
            long clen;
            const char *why = NULL;
            if (parse_head(c, (const char *)c->rbuf + off, e - off, &clen,
                           &why) < 0) {
                conn_fail(c, why, 0);
                return;
            }
            if (c->chunked || clen < 0) {
                conn_fail(c, "answer without a Content-Length (chunked "
                          "answers are not read)", 0);
                return;
            }
            off = e;
            c->have_head = 1;
            c->body_len = (size_t)clen;
            continue;
        }
        if (avail >= c->body_len) {
            const unsigned char *b = c->rbuf + off;
            off += c->body_len;
            c->have_head = 0;
            http_answer(c, b, c->body_len);
            continue;
        }
        if (c->body_len > c->rcap) {
            /* Too long to keep: count it, drop its bytes. */
            c->body_skip = c->body_len - avail;
            off += avail;
        }
        break;
    }
    if (c->state == CS_DEAD)
        return;
    c->rlen -= off;
    if (c->rlen && off)
        memmove(c->rbuf, c->rbuf + off, c->rlen);
}

/* ---------------------------------------------------------------- streams */

/* The number after "turn": in an event's data, or -1. */
static long data_turn(const char *data)
{
    const char *p = strstr(data, "\"turn\":");
    if (!p)
        return -1;
    char *end;
    long v = strtol(p + 7, &end, 10);
    return end == p + 7 ? -1 : v;
}

static void stream_event(struct conn *c)
{
    struct run *r = c->run;
    long turn = data_turn(c->ev_data);
    if (strcmp(c->ev_name, "hello") == 0) {
        if (c->state != CS_SUBSCRIBE) {
            conn_fail(c, "a second hello", 0);
            return;
        }
        if (turn < 0) {
            conn_fail(c, "hello without a turn", 0);
            return;
        }
        if (turn > r->turn)
            r->turn = turn;
        became_ready(c);
        return;
    }
    int is_end = strcmp(c->ev_name, "turn_end") == 0;
    int is_start = strcmp(c->ev_name, "turn_start") == 0;
    if (!is_end && !is_start)
        return;
    if (c->state == CS_SUBSCRIBE) {
        conn_fail(c, "an event before hello", 0);
        return;
    }
    if (r->phase != PH_ROUND) {
        /* A turn that ended by itself (its timer): follow it. */
        if (is_start && turn > r->turn)
            r->turn = turn;
        return;
    }
    long want = is_end ? r->expect_end : r->expect_end + 1;
    if (turn != want) {
        run_error(r, c, "%s of turn %ld, expected turn %ld", c->ev_name,
                  turn, want);
        return;
    }
    uint64_t now = uv_hrtime();
    int was_done = c->t_end && c->t_start;
    if (is_end && !c->t_end)
        c->t_end = now;
    if (is_start && !c->t_start) {
        c->t_start = now;
        if (!c->t_end)
            run_error(r, c, "turn_start before turn_end");
    }
    if (!was_done && c->t_end && c->t_start) {
        r->waiting--;
        round_check(r);
    }
}

static void stream_line(struct conn *c)
{
    char *l = c->line;
    size_t n = c->line_len;
    if (n && l[n - 1] == '\r')
        n--;
    l[n] = '\0';
    if (n == 0) {
        if (c->ev_name[0])
            stream_event(c);
        c->ev_name[0] = '\0';
        c->ev_data[0] = '\0';
        return;
    }
    if (l[0] == ':')                /* a comment (keep-alive ping) */
        return;
    const char *v = strchr(l, ':');
    size_t flen = v ? (size_t)(v - l) : n;
    v = v ? v + 1 : l + n;
    if (*v == ' ')
        v++;
    if (flen == 5 && memcmp(l, "event", 5) == 0)
        snprintf(c->ev_name, sizeof c->ev_name, "%s", v);
    else if (flen == 4 && memcmp(l, "data", 4) == 0 && !c->ev_data[0])
        snprintf(c->ev_data, sizeof c->ev_data, "%s", v);
}

/* Event-stream bytes (the transfer coding removed). */
static void stream_bytes(struct conn *c, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n && c->state != CS_DEAD; i++) {
        if (p[i] == '\n') {
            stream_line(c);
            c->line_len = 0;
        } else if (c->line_len + 1 < sizeof c->line) {
            c->line[c->line_len++] = (char)p[i];
        }
    }
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Body bytes of the stream's answer: undo the chunked coding. */
static void stream_body(struct conn *c, const unsigned char *p, size_t n)
{
    if (!c->chunked) {
        stream_bytes(c, p, n);
        return;
    }
    size_t i = 0;
    while (i < n && c->state != CS_DEAD) {
        unsigned char ch = p[i];
        switch (c->ch) {
        case CH_SIZE: {
            int h = hexval(ch);
            i++;
            if (h >= 0) {
                if (c->ch_left > (1u << 24)) {
                    conn_fail(c, "chunk too long", 0);
                    return;
                }
                c->ch_left = c->ch_left * 16 + (unsigned)h;
                c->ch_digits++;
            } else if (ch == ';') {
                c->ch = CH_EXT;
            } else if (ch == '\n') {
                if (c->ch_digits == 0) {
                    conn_fail(c, "bad chunk size line", 0);
                    return;
                }
                if (c->ch_left == 0) {
                    conn_fail(c, "the event stream ended", 0);
                    return;
                }
                c->ch = CH_DATA;
            } else if (ch != '\r') {
                conn_fail(c, "bad chunk size line", 0);
                return;
            }
            break;
        }
        case CH_EXT:
            i++;
            if (ch == '\n')
                c->ch = CH_DATA;
            break;
        case CH_DATA: {
            size_t take = n - i;
            if (take > c->ch_left)
                take = (size_t)c->ch_left;
            stream_bytes(c, p + i, take);
            i += take;
            c->ch_left -= take;
            if (c->ch_left == 0)
                c->ch = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            i++;
            if (ch == '\n') {
                c->ch = CH_SIZE;
                c->ch_digits = 0;
            } else if (ch != '\r') {
                conn_fail(c, "chunk not followed by CRLF", 0);
                return;
            }
            break;
        }
    }
}

static void stream_parse(struct conn *c)
{
    size_t off = 0;
    if (!c->have_head) {
        size_t e = head_end(c, 0);
        if (e == 0) {
            if (c->rlen >= c->rcap)
                conn_fail(c, "answer head too long", 0);
            return;
        }
        long clen;
        const char *why = NULL;
        if (parse_head(c, (const char *)c->rbuf, e, &clen, &why) < 0) {
            conn_fail(c, why, 0);
            return;
        }
        if (c->status != 200) {
            char shown[SHOW_MAX + 1], msg[SHOW_MAX + 64];
            show_bytes(c->rbuf + e, c->rlen - e, shown, sizeof shown);
            snprintf(msg, sizeof msg, "GET /api/events: status %d: %s",
                     c->status, shown);
            conn_fail(c, msg, 0);
            return;
        }
        if (!memmem(c->rbuf, e, "text/event-stream", 17)) {
            conn_fail(c, "GET /api/events: not text/event-stream", 0);
            return;
        }
        c->have_head = 1;
        c->ch = CH_SIZE;
        c->ch_left = 0;
        c->ch_digits = 0;
        off = e;
    }
    stream_body(c, c->rbuf + off, c->rlen - off);
    c->rlen = 0;
}

/* ---------------------------------------------------------------- TP */

/* A TP frame; body holds have bytes of its len. */
static void tp_frame(struct conn *c, uint32_t seq, uint32_t type,
                     const unsigned char *body, uint32_t have, uint32_t len)
{
    struct run *r = c->run;
    if (seq == 0) {
        if (type != FT_TIME || have < 12 || c->state != CS_READY)
            return;
        uint32_t reason = get_u32(body + 4);
        long turn = (long)get_u32(body + 8);
        int is_end = reason == REASON_ENDING || reason == REASON_ALLDONE;
        int is_start = reason == REASON_STARTED;
        if (r->phase != PH_ROUND || !(is_end || is_start))
            return;
        long want = is_end ? r->expect_end : r->expect_end + 1;
        if (turn != want) {
            if (is_start || turn > want)
                run_error(r, c, "TimeRemaining (reason %" PRIu32 ") of "
                          "turn %ld, expected turn %ld", reason, turn, want);
            return;
        }
        uint64_t now = uv_hrtime();
        int was_done = c->t_end && c->t_start;
        if (is_end && !c->t_end)
            c->t_end = now;
        if (is_start && !c->t_start)
            c->t_start = now;
        if (!was_done && c->t_end && c->t_start) {
            r->waiting--;
            round_check(r);
        }
        return;
    }
    char msg[SHOW_MAX + 64], shown[SHOW_MAX + 1];
    if (type == FT_FAIL && have >= 8) {
        uint32_t slen = get_u32(body + 4);
        show_bytes(body + 8, slen < have - 8 ? slen : have - 8, shown,
                   sizeof shown);
    } else {
        shown[0] = '\0';
    }
    switch (c->state) {
    case CS_TP_HELLO:
        if (type != FT_OKAY) {
            snprintf(msg, sizeof msg, "Connect: reply type %" PRIu32 " %s",
                     type, shown);
            conn_fail(c, msg, 0);
        } else {
            tp_send_account(c);
        }
        return;
    case CS_TP_ACCOUNT:         /* Fail: the account exists, fine */
        if (type != FT_OKAY && type != FT_FAIL)
            conn_fail(c, "CreateAccount: unexpected reply", 0);
        else
            tp_send_login(c);
        return;
    case CS_TP_LOGIN:
        if (type != FT_OKAY) {
            snprintf(msg, sizeof msg, "Login: reply type %" PRIu32 " %s",
                     type, shown);
            conn_fail(c, msg, 0);
        } else {
            became_ready(c);
        }
        return;
    default:
        conn_fail(c, "a reply while not expecting one", 0);
        return;
    }
}

/* Parses every whole frame in c->rbuf (acting on the first TP_PREFIX
 * bytes of a body too long to keep); keeps the partial rest. */
static void tp_parse(struct conn *c)
{
    size_t off = 0;
    while (c->state != CS_DEAD) {
        size_t avail = c->rlen - off;
        if (c->tp_skip > 0) {
            size_t n = avail < c->tp_skip ? avail : c->tp_skip;
            off += n;
            c->tp_skip -= (uint32_t)n;
            if (c->tp_skip > 0)
                break;
            continue;
        }
        if (avail < TP_HDR)
            break;
        const unsigned char *h = c->rbuf + off;
        if (h[0] != 'T' || h[1] != 'P' || h[2] != 4) {
            conn_fail(c, "a frame with a bad header", 0);
            return;
        }
        uint32_t len = get_u32(h + 12);
        if (len > TP_MAX_BODY) {
            conn_fail(c, "a frame body longer than 16 MiB", 0);
            return;
        }
        uint32_t want = TP_HDR + (size_t)len <= c->rcap ? len
                        : (len < TP_PREFIX ? len : TP_PREFIX);
        if (avail < TP_HDR + (size_t)want)
            break;
        off += TP_HDR + want;
        c->tp_skip = len - want;
        tp_frame(c, get_u32(h + 4), get_u32(h + 8), h + TP_HDR, want, len);
    }
    if (c->state == CS_DEAD)
        return;
    c->rlen -= off;
    if (c->rlen && off)
        memmove(c->rbuf, c->rbuf + off, c->rlen);
}

/* ---------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf + c->rlen,
                       (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n < 0) {
        conn_fail(c, n == UV_EOF ? "connection closed by the server"
                                 : "read", n == UV_EOF ? 0 : (int)n);
        return;
    }
    if (c->state == CS_DEAD || n == 0)
        return;
    c->rlen += (size_t)n;
    if (c->kind == K_HTTP)
        http_parse(c);
    else if (c->kind == K_STREAM)
        stream_parse(c);
    else
        tp_parse(c);
    if (c->state != CS_DEAD && c->rlen >= c->rcap)
        conn_fail(c, "internal: read buffer full", 0);
    if (c->state != CS_DEAD)
        conn_flush(c);
}

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
    int e = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (e < 0) {
        conn_fail(c, "read start", e);
        return;
    }
    if (c->kind == K_STREAM) {
        send_subscribe(c);
    } else if (c->kind == K_TP) {
        tp_send_hello(c);
    } else if (c->run->opt.login) {
        send_login(c);
    } else {
        if (build_request(c) < 0) {
            conn_fail(c, "out of memory", 0);
            return;
        }
        became_ready(c);
        return;
    }
    conn_flush(c);
}

/* Start connections while fewer than --ramp are setting up. */
static void start_next(struct run *r)
{
    if (r->starting)
        return;
    r->starting = 1;
    while (r->phase == PH_SETUP && r->next_start < r->nconns &&
           r->setting_up < r->opt.ramp) {
        struct conn *c = &r->conns[r->next_start++];
        int e = uv_tcp_init(r->loop, &c->tcp);
        if (e < 0) {
            run_error(r, c, "tcp init: %s", uv_strerror(e));
            c->state = CS_DEAD;
            r->finished++;
            continue;
        }
        c->started = 1;
        c->tcp.data = c;
        c->creq.data = c;
        c->state = CS_CONNECTING;
        r->setting_up++;
        const struct sockaddr *to = (const struct sockaddr *)
            (c->kind == K_TP ? &r->tp_addr : &r->web_addr);
        e = uv_tcp_connect(&c->creq, &c->tcp, to, on_connected);
        if (e < 0)
            conn_fail(c, "connect", e);
    }
    r->starting = 0;
    if (r->phase == PH_SETUP && r->finished == r->nconns)
        setup_done(r);
}

/* ---------------------------------------------------------------- phases */

static uint64_t ms_of(double seconds)
{
    return (uint64_t)(seconds * 1000.0 + 0.5);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* First, median and last of the arrivals of the turn's end on the
 * connections of kind k, and the last arrival of the new turn, in ms
 * after the command started (-1: none arrived). */
static void arrivals(struct run *r, enum kind k, double out[4])
{
    size_t n = 0;
    uint64_t last_start = 0;
    for (unsigned i = 0; i < r->nconns; i++) {
        const struct conn *c = &r->conns[i];
        if (c->kind != k)
            continue;
        if (c->t_end)
            r->arrivals[n++] = c->t_end - r->t0;
        if (c->t_start && c->t_start - r->t0 > last_start)
            last_start = c->t_start - r->t0;
    }
    for (int i = 0; i < 4; i++)
        out[i] = -1.0;
    if (n) {
        qsort(r->arrivals, n, sizeof *r->arrivals, cmp_u64);
        out[0] = (double)r->arrivals[0] / 1e6;
        out[1] = (double)r->arrivals[n / 2] / 1e6;
        out[2] = (double)r->arrivals[n - 1] / 1e6;
    }
    if (last_start)
        out[3] = (double)last_start / 1e6;
}

static unsigned count_ready(const struct run *r, enum kind k)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nconns; i++)
        if (r->conns[i].kind == k && r->conns[i].state == CS_READY)
            n++;
    return n;
}

static void round_report(struct run *r, int timed_out)
{
    double s[4], t[4];
    if (timed_out) {
        unsigned miss_s = 0, miss_t = 0;
        for (unsigned i = 0; i < r->nconns; i++) {
            const struct conn *c = &r->conns[i];
            if (c->state == CS_READY && !(c->t_end && c->t_start)) {
                if (c->kind == K_STREAM)
                    miss_s++;
                else
                    miss_t++;
            }
        }
        run_error(r, NULL, "round %u: %u streams and %u TP clients did not "
                  "get the end and the start of the turn in %.1f s%s",
                  r->round, miss_s, miss_t,
                  (double)(uv_hrtime() - r->t0) / 1e9,
                  r->cmd_running ? " (the command is still running)" : "");
    }
    arrivals(r, K_STREAM, s);
    arrivals(r, K_TP, t);
    printf("round=%u turn=%ld subscribers=%u sse_ready=%u tp_clients=%u "
           "tp_ready=%u cmd_ms=%.1f sse_first_ms=%.1f sse_p50_ms=%.1f "
           "sse_end_ms=%.1f sse_start_ms=%.1f tp_first_ms=%.1f "
           "tp_p50_ms=%.1f tp_end_ms=%.1f tp_start_ms=%.1f errors=%" PRIu64
           "\n", r->round, r->expect_end, r->opt.events,
           count_ready(r, K_STREAM), r->opt.tp_clients,
           count_ready(r, K_TP),
           r->t_exit ? (double)(r->t_exit - r->t0) / 1e6 : -1.0,
           s[0], s[1], s[2], s[3], t[0], t[1], t[2], t[3], r->errors);
    fflush(stdout);
}

static void on_timer(uv_timer_t *t);

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct run *r = p->data;
    r->t_exit = uv_hrtime();
    uv_close((uv_handle_t *)p, NULL);
    r->cmd_running = 0;
    if (status != 0 || sig != 0) {
        run_error(r, NULL, "the command %s exited with status %" PRId64
                  " (signal %d)", r->opt.trigger[0], status, sig);
        /* The turn may not end at all: give what is on its way a moment,
         * then end the round. */
        if (r->phase == PH_ROUND && r->waiting > 0)
            uv_timer_start(&r->timer, on_timer, FAILED_GRACE_MS, 0);
    }
    round_check(r);
}

static void round_start(struct run *r)
{
    r->round++;
    r->expect_end = r->turn;
    r->waiting = 0;
    for (unsigned i = 0; i < r->nconns; i++) {
        struct conn *c = &r->conns[i];
        c->t_end = c->t_start = 0;
        if (c->state == CS_READY)
            r->waiting++;
    }
    r->t_exit = 0;
    r->phase = PH_ROUND;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;     /* its output goes to our stderr */
    stdio[1].data.fd = 2;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t po;
    memset(&po, 0, sizeof po);
    po.file = r->opt.trigger[0];
    po.args = r->opt.trigger;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 3;
    r->proc.data = r;
    uv_timer_start(&r->timer, on_timer, ms_of(r->opt.event_timeout), 0);
    r->t0 = uv_hrtime();
    int e = uv_spawn(r->loop, &r->proc, &po);
    if (e < 0) {
        run_error(r, NULL, "cannot run %s: %s", r->opt.trigger[0],
                  uv_strerror(e));
        uv_close((uv_handle_t *)&r->proc, NULL);
        r->t_exit = r->t0;
        finish(r);
        return;
    }
    r->cmd_running = 1;
}

/* A round is over when every ready connection has had both events and the
 * command has exited. */
static void round_check(struct run *r)
{
    if (r->phase != PH_ROUND || r->waiting > 0 || r->cmd_running)
        return;
    uv_timer_stop(&r->timer);
    round_report(r, 0);
    r->turn = r->expect_end + 1;
    if (r->round >= r->opt.rounds || r->ready == 0) {
        finish(r);
        return;
    }
    r->phase = PH_SETTLE;
    uv_timer_start(&r->timer, on_timer, ms_of(r->opt.settle), 0);
}

static void on_timer(uv_timer_t *t)
{
    struct run *r = t->data;
    switch (r->phase) {
    case PH_SETUP: {
        /* Set-up took too long: give up the stragglers. */
        unsigned late = 0;
        for (unsigned i = r->next_start; i < r->nconns; i++) {
            r->conns[i].state = CS_DEAD;
            r->finished++;
            late++;
        }
        r->next_start = r->nconns;
        if (late)
            run_error(r, NULL, "%u connections not started before the "
                      "set-up timeout", late);
        for (unsigned i = 0; i < r->nconns && r->phase == PH_SETUP; i++) {
            struct conn *c = &r->conns[i];
            if (c->state >= CS_CONNECTING && c->state < CS_READY)
                conn_fail(c, "set-up timed out", 0);
        }
        if (r->phase == PH_SETUP)
            setup_done(r);
        break;
    }
    case PH_WARMUP:
        r->phase = PH_MEASURE;
        r->t_start = uv_hrtime();
        uv_timer_start(&r->timer, on_timer, ms_of(r->opt.duration), 0);
        break;
    case PH_MEASURE:
        r->t_end = uv_hrtime();
        finish(r);
        break;
    case PH_SETTLE:
        round_start(r);
        break;
    case PH_ROUND:
        round_report(r, 1);
        if (r->cmd_running)
            uv_process_kill(&r->proc, SIGTERM);
        finish(r);
        break;
    case PH_DONE:
        break;
    }
}

/* Every connection is ready or dead: start the load or the rounds. */
static void setup_done(struct run *r)
{
    uv_timer_stop(&r->timer);
    if (r->ready == 0) {
        run_error(r, NULL, "no connection could be set up");
        r->t_start = r->t_end = uv_hrtime();
        finish(r);
        return;
    }
    if (r->opt.events) {
        r->phase = PH_SETTLE;
        uv_timer_start(&r->timer, on_timer, ms_of(r->opt.settle), 0);
        return;
    }
    r->phase = PH_WARMUP;
    for (unsigned i = 0; i < r->nconns; i++) {
        struct conn *c = &r->conns[i];
        if (c->state != CS_READY)
            continue;
        c->state = CS_LOAD;
        send_more(c);
        conn_flush(c);
    }
    uv_timer_start(&r->timer, on_timer, ms_of(r->opt.warmup), 0);
}

/* The run is over: close every handle; the loop then runs dry (a command
 * still running is waited for). */
static void finish(struct run *r)
{
    r->phase = PH_DONE;
    uv_timer_stop(&r->timer);
    for (unsigned i = 0; i < r->nconns; i++) {
        struct conn *c = &r->conns[i];
        c->state = CS_DEAD;
        conn_close(c);
    }
    if (!uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, NULL);
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
"usage: tphttpload [options]                      (requests)\n"
"       tphttpload --events N [options] -- COMMAND [ARGS...]  (events)\n"
"  --host ADDR          server address, numeric (default 127.0.0.1)\n"
"  --port N             the web listener (required)\n"
"requests:\n"
"  --path PATH          the GET's target (default /api/game)\n"
"  --login              log every connection in first (POST /api/login as\n"
"                       PREFIXn / pw) and send its session cookie\n"
"  --expect TEXT        every answer body must contain TEXT\n"
"  --conns N            connections to open (default 1)\n"
"  --pipeline N         requests in flight per connection, 1..%u "
"(default 4)\n"
"  --duration SECONDS   measured time (default 5)\n"
"  --warmup SECONDS     load before measuring (default 1)\n"
"events:\n"
"  --events N           event streams to open (GET /api/events)\n"
"  --tp-port N          the TP listener of the reference clients\n"
"  --tp-clients N       TP clients logged in as PREFIXn / pw (default 0)\n"
"  --rounds N           turn ends timed, one COMMAND each (default 1)\n"
"  --settle SECONDS     quiet time before each round (default 0.5)\n"
"  --event-timeout SEC  time allowed for one round (default 120)\n"
"both:\n"
"  --user-prefix S      account names are S0, S1, ... (default bench)\n"
"  --ramp N             connections setting up at once (default 64)\n"
"  --setup-timeout SEC  time allowed for all set-ups (default 30)\n"
"  --help               this text\n"
"Requests print one line: conns= ready= pipeline= mix=http path= seconds=\n"
"replies= rps= p50_us= p90_us= p99_us= p999_us= max_us= bytes= errors=.\n"
"Events print one line a round: round= turn= subscribers= sse_ready=\n"
"tp_clients= tp_ready= cmd_ms= sse_first_ms= sse_p50_ms= sse_end_ms=\n"
"sse_start_ms= tp_first_ms= tp_p50_ms= tp_end_ms= tp_start_ms= errors=\n"
"(ms after COMMAND started).  Exit 0 when the run completed without\n"
"errors, 1 otherwise, 2 on a usage error.\n", MAX_PIPELINE);
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
    enum { OPT_HOST = 256, OPT_PORT, OPT_CONNS, OPT_PIPE, OPT_DUR,
           OPT_WARM, OPT_PATH, OPT_LOGIN, OPT_EXPECT, OPT_PREFIX, OPT_RAMP,
           OPT_SETUP, OPT_EVENTS, OPT_TPPORT, OPT_TPCLIENTS, OPT_ROUNDS,
           OPT_SETTLE, OPT_EVTIMEOUT, OPT_HELP };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, OPT_HOST },
        { "port", required_argument, NULL, OPT_PORT },
        { "conns", required_argument, NULL, OPT_CONNS },
        { "pipeline", required_argument, NULL, OPT_PIPE },
        { "duration", required_argument, NULL, OPT_DUR },
        { "warmup", required_argument, NULL, OPT_WARM },
        { "path", required_argument, NULL, OPT_PATH },
        { "login", no_argument, NULL, OPT_LOGIN },
        { "expect", required_argument, NULL, OPT_EXPECT },
        { "user-prefix", required_argument, NULL, OPT_PREFIX },
        { "ramp", required_argument, NULL, OPT_RAMP },
        { "setup-timeout", required_argument, NULL, OPT_SETUP },
        { "events", required_argument, NULL, OPT_EVENTS },
        { "tp-port", required_argument, NULL, OPT_TPPORT },
        { "tp-clients", required_argument, NULL, OPT_TPCLIENTS },
        { "rounds", required_argument, NULL, OPT_ROUNDS },
        { "settle", required_argument, NULL, OPT_SETTLE },
        { "event-timeout", required_argument, NULL, OPT_EVTIMEOUT },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 }
    };
    *o = (struct options){
        .host = "127.0.0.1", .conns = 1, .pipeline = 4, .duration = 5.0,
        .warmup = 1.0, .setup_timeout = 30.0, .ramp = 64,
        .path = "/api/game", .user_prefix = "bench", .rounds = 1,
        .settle = 0.5, .event_timeout = 120.0,
    };
    unsigned port = 0, tp_port = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case OPT_HOST:
            o->host = optarg;
            bad = strlen(optarg) > 64;
            break;
        case OPT_PORT:
            bad = parse_uint(optarg, 1, 65535, &port);
            break;
        case OPT_TPPORT:
            bad = parse_uint(optarg, 1, 65535, &tp_port);
            break;
        case OPT_CONNS:
            bad = parse_uint(optarg, 1, MAX_CONNS, &o->conns);
            break;
        case OPT_PIPE:
            bad = parse_uint(optarg, 1, MAX_PIPELINE, &o->pipeline);
            break;
        case OPT_DUR:
            bad = parse_seconds(optarg, 0.1, &o->duration);
            break;
        case OPT_WARM:
            bad = parse_seconds(optarg, 0.0, &o->warmup);
            break;
        case OPT_SETUP:
            bad = parse_seconds(optarg, 0.1, &o->setup_timeout);
            break;
        case OPT_SETTLE:
            bad = parse_seconds(optarg, 0.0, &o->settle);
            break;
        case OPT_EVTIMEOUT:
            bad = parse_seconds(optarg, 0.1, &o->event_timeout);
            break;
        case OPT_RAMP:
            bad = parse_uint(optarg, 1, MAX_CONNS, &o->ramp);
            break;
        case OPT_EVENTS:
            bad = parse_uint(optarg, 1, MAX_CONNS, &o->events);
            break;
        case OPT_TPCLIENTS:
            bad = parse_uint(optarg, 0, MAX_CONNS, &o->tp_clients);
            break;
        case OPT_ROUNDS:
            bad = parse_uint(optarg, 1, 1000, &o->rounds);
            break;
        case OPT_PATH:
            o->path = optarg;
            /* A target of printable characters, no spaces. */
            bad = optarg[0] != '/' || strlen(optarg) > PATH_LEN_MAX;
            for (const char *p = optarg; !bad && *p; p++)
                bad = *p <= ' ' || *p >= 0x7f;
            break;
        case OPT_LOGIN:
            o->login = 1;
            break;
        case OPT_EXPECT:
            o->expect = optarg;
            bad = optarg[0] == '\0' || strlen(optarg) > EXPECT_MAX;
            break;
        case OPT_PREFIX:
            o->user_prefix = optarg;
            bad = strlen(optarg) > PREFIX_MAX;
            for (const char *p = optarg; !bad && *p; p++)
                bad = *p == '"' || *p == '\\' || *p < ' ' || *p >= 0x7f;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "tphttpload: bad value for option: %s\n",
                    optarg);
            return -1;
        }
    }
    if (port == 0) {
        fprintf(stderr, "tphttpload: --port is required\n");
        usage(stderr);
        return -1;
    }
    o->port = (int)port;
    o->tp_port = (int)tp_port;
    if (o->events) {
        if (optind >= argc) {
            fprintf(stderr, "tphttpload: --events needs a command after "
                    "--\n");
            return -1;
        }
        if (o->tp_clients && !tp_port) {
            fprintf(stderr, "tphttpload: --tp-clients needs --tp-port\n");
            return -1;
        }
        o->trigger = argv + optind;     /* argv[argc] is NULL */
    } else if (optind != argc) {
        fprintf(stderr, "tphttpload: unexpected argument\n");
        usage(stderr);
        return -1;
    }
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
        fprintf(stderr, "tphttpload: warning: open-file limit %llu is low "
                "for %u connections\n", (unsigned long long)rl.rlim_cur,
                need);
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
}

int main(int argc, char **argv)
{
    static struct run r;            /* large (histogram): not on the stack */
    if (parse_options(argc, argv, &r.opt) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    struct options *o = &r.opt;
    if (resolve(o->host, o->port, &r.web_addr) != 0 ||
        (o->tp_port && resolve(o->host, o->tp_port, &r.tp_addr) != 0)) {
        fprintf(stderr, "tphttpload: --host must be a numeric address\n");
        return 2;
    }
    snprintf(r.host_hdr, sizeof r.host_hdr, strchr(o->host, ':') ?
             "[%s]:%d" : "%s:%d", o->host, o->port);

    r.nconns = o->events ? o->events + o->tp_clients : o->conns;
    raise_nofile(r.nconns);
    r.conns = calloc(r.nconns, sizeof *r.conns);
    r.arrivals = calloc(r.nconns, sizeof *r.arrivals);
    int oom = !r.conns || !r.arrivals;
    for (unsigned i = 0; i < r.nconns && !oom; i++) {
        struct conn *c = &r.conns[i];
        c->run = &r;
        c->state = CS_IDLE;
        c->next_seq = 1;
        if (!o->events) {
            c->kind = K_HTTP;
            c->idx = i;
            c->rcap = LOAD_RBUF;
            c->sent = calloc(o->pipeline + 1u, sizeof *c->sent);
            oom = !c->sent;
        } else if (i < o->events) {
            c->kind = K_STREAM;
            c->idx = i;
            c->rcap = STREAM_RBUF;
        } else {
            c->kind = K_TP;
            c->idx = i - o->events;
            c->rcap = STREAM_RBUF;
        }
        c->out_cap = 1024;          /* set-up; grown for the load */
        c->out = malloc(c->out_cap);
        c->rbuf = malloc(c->rcap);
        oom = oom || !c->out || !c->rbuf;
    }
    r.turn = -1;
    r.loop = uv_default_loop();
    if (!oom) {
        uv_timer_init(r.loop, &r.timer);
        r.timer.data = &r;
        r.phase = PH_SETUP;
        uv_timer_start(&r.timer, on_timer, ms_of(o->setup_timeout), 0);
        start_next(&r);
        uv_run(r.loop, UV_RUN_DEFAULT);
    } else {
        fprintf(stderr, "tphttpload: out of memory\n");
    }
    int e = uv_loop_close(r.loop);
    if (e != 0) {
        fprintf(stderr, "tphttpload: uv_loop_close: %s\n", uv_strerror(e));
        r.errors++;
    }
    for (unsigned i = 0; r.conns && i < r.nconns; i++) {
        free(r.conns[i].rbuf);
        free(r.conns[i].out);
        free(r.conns[i].sent);
        free(r.conns[i].req);
    }
    free(r.conns);
    free(r.arrivals);
    if (oom)
        return 1;
    if (o->events)
        return r.errors == 0 && r.round >= o->rounds ? 0 : 1;

    double secs = (double)(r.t_end - r.t_start) / 1e9;
    double rps = secs > 0 ? (double)r.replies / secs : 0.0;
    printf("conns=%u ready=%u pipeline=%u mix=http path=%s seconds=%.3f "
           "replies=%" PRIu64 " rps=%.0f p50_us=%" PRIu64 " p90_us=%" PRIu64
           " p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64
           " bytes=%" PRIu64 " errors=%" PRIu64 "\n",
           o->conns, r.ready, o->pipeline, o->path, secs, r.replies, rps,
           hist_quantile(&r.hist, 0.50) / 1000,
           hist_quantile(&r.hist, 0.90) / 1000,
           hist_quantile(&r.hist, 0.99) / 1000,
           hist_quantile(&r.hist, 0.999) / 1000,
           r.hist.max_ns / 1000,
           r.replies ? r.body_bytes / r.replies : 0, r.errors);
    fflush(stdout);
    return r.errors == 0 && r.replies > 0 ? 0 : 1;
}
