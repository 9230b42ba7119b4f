/*
 * frame.h: the 16-byte TP frame header.
 *
 * TP04: 'T' 'P' <version byte 4> <frame version> u32 seq, u32 type, u32 len.
 * TP03: 'T' 'P' '0' '3' u32 seq, u32 type, u32 len.
 * Sequence, type and length sit at the same offsets in every version, so a
 * reader can skip any frame it cannot serve. This module only classifies and
 * writes headers and frame-level Fails (the ones the core sends before or
 * without Lua: bad versions, oversized frames, a full server); what to do
 * about each class is the connection's business (framing.c).
 */
#ifndef TP_FRAME_H
#define TP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TP_HEADER_SIZE 16
/* The largest frame, header included, in either direction. */
#define TP_FRAME_MAX_DEFAULT (1024u * 1024u)

/* What the first bytes of a header say. */
typedef enum tp_hdr_class {
    TP_HDR_NEED_MORE,   /* too few bytes to tell */
    TP_HDR_NOT_TP,      /* does not start with "TP" */
    TP_HDR_TOO_OLD,     /* ASCII TP00, TP01, TP02 */
    TP_HDR_TP03,        /* ASCII TP03 */
    TP_HDR_TP04,        /* "TP" + binary 4 */
    TP_HDR_UNSUP_ASCII, /* ASCII TP04..TP09: a version we do not speak */
    TP_HDR_UNSUP_BIN,   /* "TP" + binary 5..0x2F */
    TP_HDR_UNSUP_OTHER  /* "TP" + anything else */
} tp_hdr_class_t;

typedef struct tp_header {
    tp_hdr_class_t cls;    /* classification of bytes 0..3 */
    uint8_t frame_version; /* byte 3 of a TP04 header, else 0 */
    uint32_t seq;          /* sequence number */
    uint32_t type;         /* frame type */
    uint32_t len;          /* body length */
} tp_header_t;

/* Classifies the first min(n, 4) bytes. TP_HDR_NEED_MORE until it can. */
tp_hdr_class_t tp_frame_classify(const uint8_t *p, size_t n);

/* Parses a whole header (n >= 16) into h. */
void tp_frame_parse(const uint8_t *p, tp_header_t *h);

/* Writes a header for version 3 or 4 (frame version 0) into out[16]. */
void tp_frame_write_header(uint8_t *out, int version, uint32_t seq,
                           uint32_t type, uint32_t len);

/* Fail codes (PROTOCOL.md 5.4). */
enum {
    TP_FAIL_PROTOCOL = 0,
    TP_FAIL_FRAME = 1,
    TP_FAIL_UNAVAILABLE_PERM = 2,
    TP_FAIL_UNAVAILABLE_TEMP = 3,
    TP_FAIL_NO_SUCH_THING = 4,
    TP_FAIL_PERMISSION = 5,
    TP_FAIL_GONE = 6,
    TP_FAIL_FRAME_VERSION = 7,
    TP_FAIL_TOO_BIG = 8
};

/* The Fail code as version knows it: TP03 has codes 0-5 only (Gone
 * becomes NoSuchThing, the others Frame; PROTOCOL.md 15.4). */
uint32_t tp_frame_fail_code(int version, uint32_t code);

/* Appends a Fail frame (version 3 or 4, without references) with seq,
 * code (mapped for TP03) and msg to out; pad: the string padding filter
 * (TP04). Returns false, out unchanged, when out's cap refuses it. */
bool tp_frame_write_fail(tp_buf_t *out, int version, uint32_t seq,
                         uint32_t code, const char *msg, bool pad);

#endif
