/*
 * http_sniff.h: the first bytes on an http or https listener
 * (PROTOCOL.md 1.2). Raw TP goes on as it is; an HTTP request head is
 * read by the project's HTTP parser (http.h): a POST is answered with the
 * tunnel's 200 and the bytes after its head are TP; a GET gets a small
 * page and the connection is closed; another method gets 405; anything
 * else is closed. Bounded: a request head over 8 KiB is refused.
 */
#ifndef TP_HTTP_SNIFF_H
#define TP_HTTP_SNIFF_H

#include <stdbool.h>

#include "conn.h"

/* Judges c->in. Returns true when TP may follow in c->in (c->sniff is then
 * off), false while waiting for more or after closing. */
bool tp_http_sniff(tp_conn_t *c);

#endif
