/*
 * http.h: HTTP/1.1 on a connection (the web and webs listeners), and the
 * one HTTP parser of the project (libhttp-parser): the tunnel preamble of
 * the http and https listeners (http_sniff.c) is read with it too.
 *
 * The C side parses, limits and writes; what to answer is Lua's (the
 * server's http handler, listener.h). Requests are handled strictly in
 * order, one at a time: a request's answer is written before the next
 * pipelined request is handed on, so answers come in request order. A
 * handler may answer later (it pauses the connection, as TP's deferred
 * requests do, and calls tp_http_respond when it has the answer), or
 * answer with a stream (Server-Sent Events): the head goes out without a
 * length, the handler writes chunks with tp_http_write, and the
 * connection carries nothing else until it closes.
 *
 * Bounds (c->lim): the request line and headers (http_header_max: 431),
 * the body (http_body_max: 413, refused from Content-Length before it is
 * read), a request begun and not complete in http_request_ms (408), an
 * idle keep-alive connection (http_keepalive_ms: closed). Malformed HTTP
 * is answered 400 and the connection closed. Each refusal is logged.
 */
#ifndef TP_HTTP_H
#define TP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "buf.h"
#include "conn.h"

/* One header of a request: offsets into tp_http_t.hdr. */
typedef struct tp_http_header {
    uint32_t name, name_len;   /* lower-cased */
    uint32_t value, value_len;
} tp_http_header_t;

#define TP_HTTP_MAX_HEADERS 100

typedef struct tp_http {
    http_parser parser;
    tp_buf_t url;              /* the request target */
    tp_buf_t hdr;              /* header names and values, back to back */
    tp_buf_t body;             /* the body */
    tp_http_header_t headers[TP_HTTP_MAX_HEADERS];
    unsigned nheaders;
    size_t head_bytes;         /* request line and header bytes so far */
    bool in_value;             /* the last header callback was a value */
    bool in_message;           /* a request has begun */
    bool complete;             /* a whole request is ready */
    bool too_many;             /* more headers than TP_HTTP_MAX_HEADERS */
    bool keep_alive;           /* the request allows keep-alive */
    bool waiting;              /* handed on; its answer is not written */
    bool streaming;            /* answered with a stream: nothing more */
    bool chunked;              /* the stream is sent in chunks */
    bool closing_after;        /* close once the answer is written */
    bool head_only;            /* HEAD: no body in the answer */
    int refuse;                /* a limit hit inside a callback: status */
    uint64_t begun_ms;         /* loop time the request began */
    uint64_t idle_ms;          /* loop time the last answer was written */
    uint64_t requests;         /* requests handed on */
} tp_http_t;

/* What a web listener's connections carry. */
extern const tp_conn_proto_t tp_http_proto;

/* Sets up c's HTTP state (c->ud); false when out of memory. */
bool tp_http_attach(tp_conn_t *c);

/* The request being handled: method ("GET"), the target, the HTTP
 * version, the body. */
const char *tp_http_method(const tp_http_t *h);

/* Writes the answer to the request being handled: the status line, a
 * Date, Content-Length (not for a stream), Connection, the given headers
 * (n name/value pairs; none may hold CR, LF or NUL: the caller checks),
 * then the body (not for HEAD). Then handles the next pipelined request,
 * unless the answer is a stream. Returns false when there is no request
 * waiting for an answer. */
bool tp_http_respond(tp_conn_t *c, int status, const char *const *hdrs,
                     const size_t *lens, size_t n, const char *body,
                     size_t body_len, bool stream);

/* Writes a chunk of a stream's body at once. False when c is not
 * streaming, or closing, or its output is over the hard cap (the caller
 * may close it). */
bool tp_http_write(tp_conn_t *c, const char *p, size_t n);

/* The sweep (once a second): a request too slow (408), an idle keep-alive
 * connection (closed). */
void tp_http_sweep(tp_conn_t *c, uint64_t now);

/* The reason phrase of a status ("Not Found"), or "Unknown". */
const char *tp_http_reason(int status);

/* ---- The tunnel preamble of http/https listeners (http_sniff.c). */

/* What the first bytes of an http listener's connection are. */
typedef enum tp_http_preamble {
    TP_PRE_MORE,               /* need more bytes */
    TP_PRE_POST,               /* a POST: *used bytes are its head */
    TP_PRE_GET,                /* a GET (or HEAD): *used bytes are its head */
    TP_PRE_OTHER,              /* another method: answered 405 */
    TP_PRE_BAD,                /* not HTTP */
    TP_PRE_TOO_LONG            /* the head is over max bytes */
} tp_http_preamble_t;

/* Parses the request head at p (n bytes) with the project's parser, up to
 * max bytes of head. */
tp_http_preamble_t tp_http_preamble(const uint8_t *p, size_t n, size_t max,
                                    size_t *used);

#endif
