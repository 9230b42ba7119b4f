/*
 * conn.h: one client connection on the libuv loop, over a transport, for a
 * protocol.
 *
 * A connection is a stream socket (TCP for TP, a Unix-domain pipe for the
 * admin console) that reads bytes into a bounded input buffer and hands
 * them to its protocol (tp_conn_proto_t), strictly in arrival order. For
 * TP that is framing.c, which cuts TP frames (http_sniff.c judges the
 * first bytes of an HTTP listener); for the console it is console.c's
 * message framing. Replies are appended to the output buffer and written
 * once per read batch (tp_conn_flush_now writes at once, for output that
 * streams while a request runs).
 *
 * The transport (tp_transport_t) is how bytes get between the socket and
 * those buffers: plain (here, TCP or a pipe) or TLS (conn_tls.c), which
 * decrypts what is read into the same input buffer and encrypts the
 * output as it is written, so everything above the transport is the same
 * for all kinds. A new transport is one file implementing tp_transport_t
 * and a line where the listener picks it (listener.c).
 *
 * The protocol is told when the connection starts closing (closed: it
 * logs why and tells its owner), when it is gone (gone: off its owner's
 * lists) and just before its memory goes (freed). conn.c knows nothing of
 * the server: every limit comes from c->lim (TP connections point at the
 * server's limits, the console has its own).
 *
 * Memory: plain reads share one block (conn.c); a connection keeps input
 * of its own only while it holds an unfinished frame or requests held
 * back, about their size, and output only until the socket takes it.
 *
 * Bounds: the input buffer never holds more than one largest frame plus
 * one read; a header announcing a body past the frame cap is refused before
 * its payload is buffered. Output is bounded: past a high mark the
 * connection stops being read (pipelined requests wait, and so does the
 * rest of a reply made in parts); when it stays there for the stall time,
 * or passes the hard cap (frames pushed to a client that never reads), it
 * is disconnected and logged. Deadlines: a
 * TLS handshake, then logging in. An optional request rate (a token
 * bucket: a client over it is read more slowly, nothing is dropped).
 */
#ifndef TP_CONN_H
#define TP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "frame.h"

typedef struct tp_server tp_server_t;
typedef struct tp_listener tp_listener_t;
typedef struct tp_conn tp_conn_t;
typedef struct tp_tls tp_tls_t;
typedef struct tp_limits tp_limits_t;   /* listener.h */

/* What a connection carries: the protocol above the transport. */
typedef struct tp_conn_proto {
    const char *name;          /* "tp", "console": for logs */
    bool stats;                /* its bytes count in tp_stats */
    /* Handles what is in c->in; returns the bytes used at its head, which
     * conn.c consumes (a protocol may consume them itself and return 0).
     * *held: stopped with whole requests possibly left (a pause, output
     * backpressure). */
    size_t (*input)(tp_conn_t *c, bool *held);
    /* The connection starts closing (once, before the last flush): log
     * why, tell the owner. */
    void (*closed)(tp_conn_t *c, const char *reason);
    /* Its handles are being closed: off the owner's lists. May be NULL. */
    void (*gone)(tp_conn_t *c);
    /* Its memory goes right after this. May be NULL. */
    void (*freed)(tp_conn_t *c);
} tp_conn_proto_t;

/* The socket kinds a connection can be. */
typedef enum tp_conn_kind {
    TP_CONN_TCP,               /* a TCP socket (TP) */
    TP_CONN_PIPE               /* a Unix-domain socket (the console) */
} tp_conn_kind_t;

/* How bytes get between the socket and a connection's buffers. */
typedef struct tp_transport {
    const char *name;          /* "tcp", "tls": for logs */
    bool encrypted;            /* for connection lists and logs */
    /* Where libuv reads the next bytes into (len 0: no room now). */
    void (*alloc)(tp_conn_t *c, uv_buf_t *buf);
    /* n bytes arrived where alloc said; false when c is closing. */
    bool (*received)(tp_conn_t *c, const char *p, size_t n);
    /* Moves what the transport holds for the reader into c->in (TLS
     * plaintext); false when it failed (c is then closing). */
    bool (*pull)(tp_conn_t *c);
    /* Bytes it holds that the reader has not taken yet. */
    size_t (*backlog)(const tp_conn_t *c);
    /* Writes c->out (one TLS record per unit: see out_text) and whatever
     * the transport sends by itself (handshake, alerts). */
    void (*flush)(tp_conn_t *c);
    /* Its own end of stream (TLS close_notify), after the last flush and
     * before the socket's shutdown. */
    void (*shutdown)(tp_conn_t *c);
    /* Whether it is ready to carry the protocol (TLS: handshake done). */
    bool (*ready)(const tp_conn_t *c);
    /* Frees what it holds for c. */
    void (*free)(tp_conn_t *c);
} tp_transport_t;

/* Plain bytes over the stream, TCP or a pipe (conn.c). */
extern const tp_transport_t tp_transport_tcp;
/* An output block larger than this is not kept for reuse. */
#define TP_CONN_OUT_KEEP 65536
extern const tp_transport_t tp_transport_tls;   /* conn_tls.c */

struct tp_conn {
    union {                    /* the socket (kind: see tp_conn_init) */
        uv_stream_t stream;    /* either, as a stream */
        uv_tcp_t tcp;          /* TP_CONN_TCP */
        uv_pipe_t pipe;        /* TP_CONN_PIPE */
    };
    uv_timer_t timer;          /* resume soon; linger timer while closing */
    uv_idle_t idle;            /* a yield: processing goes on at the next
                                  loop iteration, after the poll for I/O */
    uv_timer_t stall;          /* runs while output is over the high mark */
    uv_timer_t deadline;       /* TLS handshake, then login deadline */
    tp_server_t *srv;          /* TP: the server; NULL for the console */
    tp_listener_t *lst;        /* TP: where it came from; else NULL */
    const tp_transport_t *tr;  /* its transport */
    const tp_conn_proto_t *proto; /* its protocol */
    const tp_limits_t *lim;    /* the limits it is held to */
    void *ud;                  /* the protocol's own data */
    uint64_t id;               /* owner-unique id, for logs */
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
    bool throttled;            /* over the request rate, or yielded:
                                  reading held, a resume is due */
    bool more;                 /* the reply being sent is not complete:
                                  the protocol makes the rest, a part per
                                  loop iteration, before the next request */
    tp_tls_t *tls;             /* TLS session (tls transport), else NULL */
    uint64_t accepted_ms;      /* loop time of the accept */
    uint64_t last_input_ms;    /* loop time of the last bytes read */
    uint64_t partial_ms;       /* loop time an unfinished frame began to
                                  wait in the input, or 0 */
    const char *refuse_why;    /* refusing: the Fail's text */
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
    int more_ref;              /* registry ref of the Lua function making
                                  the rest of the reply (more), or -2 */
    uint32_t more_type;        /* frame type of the request it answers */
    uint64_t frames_out;       /* frames encoded into out by Lua (a
                                  rollback does not uncount them) */
    char peer[64];             /* "ip:port" of the peer */
    tp_conn_t *prev, *next;    /* server's list (TP) */
    tp_conn_t *live_prev, *live_next; /* every connection not yet freed
                                         (conn.c, for tp_conn_memory) */
};

/* Sets up c (zeroed) for a socket of that kind to be accepted on loop,
 * over transport tr, carrying proto, held to lim (kept: it may change
 * later): buffers, timers. The owner fills in srv, lst, ud and the rest.
 * Returns 0, or a libuv error with no handle made (the owner frees c). */
int tp_conn_init(tp_conn_t *c, uv_loop_t *loop, tp_conn_kind_t kind,
                 const tp_transport_t *tr, const tp_conn_proto_t *proto,
                 const tp_limits_t *lim);

/* Connections whose memory has not gone yet (every kind, closing ones
 * too) and the bytes they hold: the structures, their input and output
 * blocks, their writes in libuv's hands. A closed connection leaves
 * nothing: both come back to where they were. */
void tp_conn_memory(size_t *count, size_t *bytes);

/* Its handles no longer keep the loop alive (the console's sessions). */
void tp_conn_unref(tp_conn_t *c);

/* Frees c whose handles were all closed by someone else (main.c's final
 * walk closes every handle with no callback, so conn.c never frees it),
 * once the loop has run those closes; proto->freed is not called. Returns
 * false, and does nothing, while a handle is still open. */
bool tp_conn_free_closed(tp_conn_t *c);

/* After the accept: starts the first deadline and reading. */
void tp_conn_start(tp_conn_t *c);

/* Closes the handles of a connection whose accept failed. */
void tp_conn_abort(tp_conn_t *c);

/* Writes out what is buffered (when not inside a read batch). */
void tp_conn_flush(tp_conn_t *c);

/* Writes out what is buffered now, even inside a read batch (output that
 * streams while a request runs: the console). */
void tp_conn_flush_now(tp_conn_t *c);

/* Closes the connection: proto->closed (which logs reason), flushes what
 * is buffered, then shuts the socket down. Safe to call more than once. */
void tp_conn_close(tp_conn_t *c, const char *reason);

/* Appends text that is not a TP frame (an HTTP answer), before any frame;
 * sends it and closes when reason is given. */
void tp_conn_send_text(tp_conn_t *c, const char *p, size_t n,
                       const char *reason);

/* Lets the other connections go first: processing of c goes on at the
 * next loop iteration, after the loop has polled for I/O (fair service of
 * a client that pipelines, and between the parts of a long reply). */
void tp_conn_yield(tp_conn_t *c);

/* Resumes frame processing after a pause, on the next loop iteration. */
void tp_conn_resume_soon(tp_conn_t *c);

/* Stops reading (input held); reading starts again when processing goes
 * on. */
void tp_conn_stop_reading(tp_conn_t *c);

/* Room left in the output before the hard cap. */
size_t tp_conn_output_room(const tp_conn_t *c);

/* Bytes in the output and in libuv's hands. */
static inline size_t tp_conn_output(const tp_conn_t *c)
{
    return c->out.len + c->write_pending;
}

/* The login succeeded: the login deadline no longer applies. */
void tp_conn_set_logged_in(tp_conn_t *c);

/* The transport is ready (TLS handshake done): the login deadline, counted
 * from the accept, starts. */
void tp_conn_transport_ready(tp_conn_t *c);

/* Processes what is in the input (the transport calls it after reading). */
void tp_conn_process(tp_conn_t *c);

/* Hands len bytes at data (a heap block; ownership passes) to libuv. */
void tp_conn_write_block(tp_conn_t *c, uint8_t *data, size_t len);

/* Takes one request from the token bucket; false (and the connection held
 * until a token is due) when it is empty. */
bool tp_conn_take_token(tp_conn_t *c);

#endif
