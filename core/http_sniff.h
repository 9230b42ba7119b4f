/*
 * http_sniff.h: the first bytes on an http or https listener
 * (PROTOCOL.md 1.2). Raw TP goes on as it is; a POST is answered with the
 * tunnel's 200 and the bytes after its header are TP; a GET gets a small
 * page and the connection is closed; anything else is closed. Bounded: a
 * request header over 8 KiB is refused.
 */
#ifndef TP_HTTP_SNIFF_H
#define TP_HTTP_SNIFF_H

#include <stdbool.h>

#include "conn.h"

/* Judges c->in. Returns true when TP may follow in c->in (c->sniff is then
 * off), false while waiting for more or after closing. */
bool tp_http_sniff(tp_conn_t *c);

#endif
