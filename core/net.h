/*
 * net.h: listeners and connections on the libuv loop.
 *
 * The server owns every listener and connection. A connection reads bytes
 * into a bounded input buffer, cuts them into frames by the 16-byte header,
 * settles the protocol version from the first frame, and hands each whole
 * frame to the Lua bridge, strictly in arrival order. Replies are appended
 * to the connection's output buffer and written once per read batch.
 *
 * Bounds: the input buffer never holds more than one largest frame plus one
 * read; a header announcing a body past the frame cap is refused before its
 * payload is buffered. Output is bounded: past a high mark the connection
 * stops being read (pipelined requests wait); when it stays there for the
 * stall time, or passes the hard cap (frames pushed to a client that never
 * reads), it is disconnected and logged.
 *
 * Listener kinds: "tp" (plain TP), "tps" (TLS, then TP), "http" (raw TP or
 * an HTTP POST preamble, then TP: PROTOCOL.md 1.2) and "https" (TLS, then
 * the same as http). TLS sits under the connection (tls.h): ciphertext read
 * from the socket is decrypted into the same input buffer the plain path
 * reads into directly, and the output buffer is encrypted as it is written,
 * so everything above the transport is the same for all kinds. A TLS
 * connection stops reading while its undecrypted backlog is over one read.
 *
 * Limits that keep the server up under hostile clients, each logged when it
 * acts: at most max_conns player connections (more get Fail "server full"
 * and are closed; at most a few of those are kept open at once to say so),
 * a TLS handshake deadline, a deadline for logging in, and an optional
 * per-connection request rate (a token bucket: a client over it is read
 * more slowly, its requests wait, nothing is dropped).
 */
#ifndef TP_NET_H
#define TP_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "frame.h"

typedef struct tp_lua tp_lua_t;
typedef struct tp_server tp_server_t;
typedef struct tp_conn tp_conn_t;

typedef struct tp_tls_ctx tp_tls_ctx_t;
typedef struct tp_tls tp_tls_t;

/* Statistics kept per listener. */
typedef struct tp_listener_stats {
    uint64_t accepted;   /* connections accepted */
    uint64_t refused;    /* connections refused (limits, errors) */
    uint32_t open;       /* connections open now */
    uint64_t tls_done;   /* TLS handshakes completed */
    uint64_t tls_failed; /* TLS handshakes failed or timed out */
} tp_listener_stats_t;

typedef struct tp_listener {
    uv_tcp_t tcp;              /* the listening socket */
    tp_server_t *srv;          /* owner */
    int set;                   /* TP_SET_PLAYER or TP_SET_ADMIN */
    char kind[16];             /* "tp", "tps", "http", "https", "admin" */
    char host[64];             /* address as configured */
    int port;                  /* port actually bound */
    bool tls;                  /* tps, https: TLS first */
    bool http;                 /* http, https: an HTTP preamble may come */
    tp_tls_ctx_t *tls_ctx;     /* certificate and key (TLS kinds only) */
    tp_listener_stats_t stats; /* counters */
    struct tp_listener *next;  /* server's list */
} tp_listener_t;

/* Limits, set from the configuration. */
typedef struct tp_limits {
    uint32_t max_frame;        /* largest frame incl. header, both ways */
    size_t output_high;        /* stop reading a connection past this */
    size_t output_max;         /* disconnect a connection past this */
    uint64_t stall_ms;         /* disconnect a connection whose output has
                                  stayed over output_high this long */
    uint32_t max_conns;        /* open player connections; more are refused */
    uint64_t handshake_ms;     /* a TLS handshake must complete in this */
    uint64_t login_ms;         /* a connection must log in within this of
                                  being accepted; 0: no deadline */
    double rate;               /* requests a second per connection; 0: off */
    double burst;              /* requests a connection may send at once */
    double request_s;          /* Lua time one player request may take
                                  (interpreted code only); 0: no limit */
} tp_limits_t;

/* Rate-limits one kind of log line to one a second. */
typedef struct tp_ratelog {
    uint64_t last_ms;          /* loop time of the last line logged */
    uint64_t held;             /* lines held back since then */
} tp_ratelog_t;

struct tp_server {
    uv_loop_t *loop;           /* the one loop */
    tp_lua_t *lx;              /* the Lua bridge */
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
};

struct tp_conn {
    uv_tcp_t tcp;              /* the socket */
    uv_timer_t timer;          /* resume soon; linger timer while closing */
    uv_timer_t stall;          /* runs while output is over the high mark */
    uv_timer_t deadline;       /* TLS handshake, then login deadline */
    tp_server_t *srv;          /* owner */
    tp_listener_t *lst;        /* where it came from */
    uint64_t id;               /* server-unique id, for logs */
    int set;                   /* protocol set of the listener */
    int version;               /* 0 until the first frame, then 3 or 4 */
    bool pad;                  /* string padding filter on */
    bool closing;              /* close requested; ignore further input */
    bool reading;              /* uv_read_start is in effect */
    bool in_batch;             /* processing input; flush at the end */
    bool paused;               /* Lua asked to hold frame processing */
    bool linked;               /* on the server's list */
    bool eof;                  /* the peer has shut its side down */
    bool sniff;                /* http kinds: first bytes not judged yet */
    bool tunnelled;            /* came in through an HTTP POST preamble */
    bool logged_in;            /* Lua reported a login: no deadline */
    bool refusing;             /* over max_conns: answer Fail, close */
    bool throttled;            /* over the request rate: reading held */
    bool close_notify;         /* TLS: send close_notify after the output */
    bool tls_ready;            /* TLS: the handshake completed */
    tp_tls_t *tls;             /* TLS session, NULL on plain connections */
    uint64_t accepted_ms;      /* loop time of the accept */
    double tokens;             /* request-rate bucket */
    uint64_t tokens_ms;        /* loop time the bucket was last filled */
    uint64_t rate_log_ms;      /* loop time of the last throttling line */
    int handles_open;          /* handles still to be closed before free */
    tp_buf_t in;               /* unprocessed input */
    tp_buf_t out;              /* encoded output not yet handed to libuv */
    size_t out_text;           /* leading bytes of out that are not TP
                                  frames (HTTP answers) */
    size_t write_pending;      /* bytes handed to libuv, not yet written */
    int lua_ref;               /* registry ref of the Lua object, or -2 */
    char peer[64];             /* "ip:port" of the peer */
    tp_conn_t *prev, *next;    /* server's list */
};

/* Initialises srv on loop with default limits. */
void tp_server_init(tp_server_t *srv, uv_loop_t *loop);

/* Binds and listens. Returns 0, or a negative libuv error with a message
 * naming the address in err. kind "tps" and "https" need a certificate
 * and key (tp_server_listen_tls). An IPv6 address listens to IPv6 only, so
 * that "::" and "0.0.0.0" can be configured side by side. */
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

/* Writes out what is buffered (when not inside a read batch). */
void tp_conn_flush(tp_conn_t *c);

/* Closes the connection: flushes what is buffered, then shuts the socket
 * down. reason is logged. Safe to call more than once. */
void tp_conn_close(tp_conn_t *c, const char *reason);

/* Resumes frame processing after a pause, on the next loop iteration. */
void tp_conn_resume_soon(tp_conn_t *c);

/* Room left in the output before the hard cap. */
size_t tp_conn_output_room(const tp_conn_t *c);

/* The login succeeded: the login deadline no longer applies. */
void tp_conn_set_logged_in(tp_conn_t *c);

#endif
