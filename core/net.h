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

/* Statistics kept per listener. */
typedef struct tp_listener_stats {
    uint64_t accepted;   /* connections accepted */
    uint64_t refused;    /* connections refused (limits, errors) */
    uint32_t open;       /* connections open now */
} tp_listener_stats_t;

typedef struct tp_listener {
    uv_tcp_t tcp;              /* the listening socket */
    tp_server_t *srv;          /* owner */
    int set;                   /* TP_SET_PLAYER or TP_SET_ADMIN */
    char kind[16];             /* "tp", "admin", ... */
    char host[64];             /* address as configured */
    int port;                  /* port actually bound */
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
} tp_limits_t;

struct tp_server {
    uv_loop_t *loop;           /* the one loop */
    tp_lua_t *lx;              /* the Lua bridge */
    tp_limits_t limits;        /* current limits */
    tp_listener_t *listeners;  /* all listeners */
    tp_conn_t *conns;          /* all open connections */
    uint64_t next_conn_id;     /* ids handed to connections, from 1 */
    uint32_t num_conns;        /* open connections */
    bool stopping;             /* tp_server_stop was called */
    uv_signal_t sig_int;       /* SIGINT: clean stop */
    uv_signal_t sig_term;      /* SIGTERM: clean stop */
    uv_signal_t sig_hup;       /* SIGHUP: reload (the Lua on_hup hook) */
};

struct tp_conn {
    uv_tcp_t tcp;              /* the socket */
    uv_timer_t timer;          /* resume soon; linger timer while closing */
    uv_timer_t stall;          /* runs while output is over the high mark */
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
    int handles_open;          /* handles still to be closed before free */
    tp_buf_t in;               /* unprocessed input */
    tp_buf_t out;              /* encoded output not yet handed to libuv */
    size_t write_pending;      /* bytes handed to libuv, not yet written */
    int lua_ref;               /* registry ref of the Lua object, or -2 */
    char peer[64];             /* "ip:port" of the peer */
    tp_conn_t *prev, *next;    /* server's list */
};

/* Initialises srv on loop with default limits. */
void tp_server_init(tp_server_t *srv, uv_loop_t *loop);

/* Binds and listens. Returns 0, or a negative libuv error with a message
 * naming the address in err. */
int tp_server_listen(tp_server_t *srv, const char *host, int port,
                     const char *kind, int set, char *err, size_t errlen);

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

#endif
