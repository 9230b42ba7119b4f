/*
 * listener.h: the server, its listeners and the limits every connection
 * is held to.
 *
 * The server owns every listener and connection (conn.h). A listener binds
 * and accepts, picks the connection's transport (plain or TLS) and counts
 * it against max_conns: past it, connections get Fail "server full" and
 * are closed (at most a few of those are kept open at once to say so).
 *
 * Listener kinds: "tp" (plain TP), "tps" (TLS, then TP), "http" (raw TP or
 * an HTTP POST preamble, then TP: PROTOCOL.md 1.2), "https" (TLS, then the
 * same as http), "web" (HTTP/1.1: the JSON API and the page, http.h),
 * "webs" (TLS, then the same as web) and "admin" (the TP admin protocol).
 *
 * What the connections carry is the business of whoever registers the
 * handlers (the Lua bridge): the network side calls it only through them.
 */
#ifndef TP_LISTENER_H
#define TP_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "conn.h"
#include "frame.h"

typedef struct tp_tls_ctx tp_tls_ctx_t;
struct tp_http;

/* Statistics kept per listener. */
typedef struct tp_listener_stats {
    uint64_t accepted;   /* connections accepted */
    uint64_t refused;    /* connections refused (limits, errors) */
    uint32_t open;       /* connections open now */
    uint64_t tls_done;   /* TLS handshakes completed */
    uint64_t tls_failed; /* TLS handshakes failed or timed out */
} tp_listener_stats_t;

struct tp_listener {
    uv_tcp_t tcp;              /* the listening socket */
    tp_server_t *srv;          /* owner */
    int set;                   /* TP_SET_PLAYER or TP_SET_ADMIN */
    char kind[16];             /* "tp", "tps", "http", "https", "web", ... */
    char host[64];             /* address as configured */
    int port;                  /* port actually bound */
    bool tls;                  /* tps, https: TLS first */
    bool http;                 /* http, https: an HTTP preamble may come */
    bool web;                  /* web, webs: HTTP/1.1 (http.h) */
    tp_tls_ctx_t *tls_ctx;     /* certificate and key (TLS kinds only) */
    tp_listener_stats_t stats; /* counters */
    struct tp_listener *next;  /* server's list */
};

/* Limits, set from the configuration. */
typedef struct tp_limits {
    uint32_t max_frame;        /* largest frame incl. header, both ways */
    size_t output_high;        /* stop reading a connection past this */
    size_t output_max;         /* disconnect a connection past this */
    size_t output_total;       /* unsent output of all connections past
                                  which those over output_high go; 0: none */
    uint64_t stall_ms;         /* disconnect a connection whose output has
                                  stayed over output_high this long; 0:
                                  never (the console's own limits) */
    uint32_t max_conns;        /* open player connections; more are refused */
    uint64_t handshake_ms;     /* a TLS handshake must complete in this */
    uint64_t login_ms;         /* a connection must log in within this of
                                  being accepted; 0: no deadline */
    double rate;               /* requests a second per connection; 0: off */
    double burst;              /* requests a connection may send at once */
    double request_s;          /* Lua time one player request may take
                                  (interpreted code only); 0: no limit */
    uint64_t idle_ms;          /* close a logged-in connection that sent
                                  nothing this long; 0: never */
    uint64_t frame_ms;         /* close a connection whose frame, once
                                  begun, is not whole after this; 0: never */
    uint32_t per_addr;         /* player connections from one address;
                                  0: no cap */
    size_t http_header_max;    /* HTTP request line and headers (431) */
    size_t http_body_max;      /* HTTP request body (413) */
    uint64_t http_request_ms;  /* an HTTP request must be whole in this
                                  once begun (408); 0: no limit */
    uint64_t http_keepalive_ms; /* close an idle keep-alive connection
                                  after this; 0: never */
} tp_limits_t;

/* Rate-limits one kind of log line to one a second. */
typedef struct tp_ratelog {
    uint64_t last_ms;          /* loop time of the last line logged */
    uint64_t held;             /* lines held back since then */
} tp_ratelog_t;

/* What the network side calls (registered by the Lua bridge). */
typedef struct tp_conn_handlers {
    void *ud;                  /* passed back to each */
    /* A connection was accepted (not one being refused). */
    void (*open)(void *ud, tp_conn_t *c);
    /* One whole request frame, version settled (frame.c). */
    void (*frame)(void *ud, tp_conn_t *c, const tp_header_t *h,
                  const uint8_t *body);
    /* The next part of a reply made in parts (c->more is set): clears
     * c->more with the last part. */
    void (*more)(void *ud, tp_conn_t *c);
    /* The connection is closing (called once, before the last flush). */
    void (*closed)(void *ud, tp_conn_t *c, const char *reason);
    /* One whole HTTP request on a web connection (http.h): answered with
     * tp_http_respond, now or later. */
    void (*http)(void *ud, tp_conn_t *c, struct tp_http *h);
} tp_conn_handlers_t;

struct tp_server {
    uv_loop_t *loop;           /* the one loop */
    tp_conn_handlers_t handlers; /* what connections hand their frames to */
    tp_limits_t limits;        /* current limits */
    tp_listener_t *listeners;  /* all listeners */
    tp_conn_t *conns;          /* all open connections */
    uint64_t next_conn_id;     /* ids handed to connections, from 1 */
    uint32_t num_conns;        /* open connections */
    uint32_t num_refusing;     /* over-limit connections being told so */
    tp_ratelog_t full_log;     /* "connection limit reached" lines */
    tp_ratelog_t accept_log;   /* accept errors (EMFILE ...) */
    bool stopping;             /* tp_server_stop was called */
    uv_signal_t sig_int;       /* SIGINT: clean stop */
    uv_signal_t sig_term;      /* SIGTERM: clean stop */
    uv_signal_t sig_hup;       /* SIGHUP: reload (the Lua on_hup hook) */
    uv_timer_t sweep;          /* once a second: idle and unfinished
                                  frames (limits.idle_ms, frame_ms) */
};

/* Initialises srv on loop with default limits and no handlers. */
void tp_server_init(tp_server_t *srv, uv_loop_t *loop);

/* Binds and listens. Returns 0, or a negative libuv error with a message
 * naming the address in err. kind "tps" and "https" need a certificate
 * and key (tp_server_listen_tls). An IPv6 address listens to IPv6 only, so
 * that "::" and "0.0.0.0" can be configured side by side. */
/* The address to bind for host (an IPv4 or IPv6 address, or a name
 * resolved at start) and port; -1 with a message in err when there is
 * none. Also for the SSH console's listener. */
int tp_listen_address(const char *host, int port,
                      struct sockaddr_storage *ss, char *err, size_t errlen);
/* The port a listening handle got (port 0 picks one); port when unknown. */
int tp_bound_port(uv_tcp_t *tcp, int port);

int tp_server_listen(tp_server_t *srv, const char *host, int port,
                     const char *kind, int set, char *err, size_t errlen);

/* The same with the certificate chain and key files of a TLS kind (both
 * NULL for the others). A certificate that cannot be loaded, does not
 * match its key, or has expired is an error naming the file. */
int tp_server_listen_tls(tp_server_t *srv, const char *host, int port,
                         const char *kind, int set, const char *cert,
                         const char *key, char *err, size_t errlen);

/* Loads every TLS listener's certificate and key again; the next
 * handshake uses them, open connections are not touched. Returns the
 * number of listeners that failed (they keep their old certificate); the
 * messages are joined in err. */
int tp_server_tls_reload(tp_server_t *srv, char *err, size_t errlen);

/* Installs new limits. Raises the open-file limit to fit max_conns when it
 * can, and logs a warning when it cannot. */
void tp_server_set_limits(tp_server_t *srv, const tp_limits_t *lim);

/* Stops accepting, closes every connection after flushing what it has, and
 * closes the signal handles, so that uv_run returns once all is written. */
void tp_server_stop(tp_server_t *srv);

/* Takes c off the server's list and its counts (once). */
void tp_server_unlink(tp_server_t *srv, tp_conn_t *c);

/* What every player connection's protocol does as it starts closing
 * (after logging why): the failed-handshake count, the server's closed
 * handler; and once its handles go: off the server's list. */
void tp_server_conn_closed(tp_conn_t *c, const char *reason);
void tp_server_conn_gone(tp_conn_t *c);

#endif
