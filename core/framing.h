/*
 * framing.h: TP frames on a connection. Cuts whole frames off the front of
 * the input by their 16-byte header, settles the protocol version from the
 * first frame (PROTOCOL.md 3.5: unsupported versions answered in the best
 * version the client may understand, echoing its sequence number; a later
 * frame of another version refused), refuses frames over the size limit
 * before their payload is buffered, applies the request rate, answers
 * over-limit connections "server full", and hands each request frame to
 * the server's frame handler, strictly in order. A reply made in parts
 * (c->more) goes first: the server's more handler makes one part per loop
 * iteration, while the output is under the high mark, and the next frame
 * waits for the whole reply.
 */
#ifndef TP_FRAMING_H
#define TP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* What a client that does not speak TP, or too old a TP, is told. */
#define TP_MSG_NOT_TP "You are not running the correct protocol\n"
#define TP_MSG_TOO_OLD \
    "You are not running the right version of TP, please upgrade\n"

/* Handles the whole frames at the front of c->in, until the input runs
 * out or processing is held. Returns the bytes used (the caller drops
 * them); sets *held when it stopped with whole frames possibly left. */
size_t tp_framing_input(tp_conn_t *c, bool *held);

/* Appends a frame-level Fail to c's output (counted and logged like every
 * Fail); closes c if even that does not fit. */
void tp_framing_fail(tp_conn_t *c, int version, uint32_t seq, uint32_t code,
                     const char *msg);

#endif
