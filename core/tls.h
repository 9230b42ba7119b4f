/*
 * tls.h: TLS for the tps and https listeners, OpenSSL driven through memory
 * BIOs (the uv_ssl_t model), so that no OpenSSL call ever touches a socket
 * or blocks the loop.
 *
 * A tp_tls_ctx_t is one listener's server context: certificate chain and
 * key loaded from files, TLS 1.2 and 1.3 only, ECDHE + AEAD ciphers, no
 * renegotiation, no compression, no client certificates. Reloading builds a
 * new SSL_CTX and swaps it in only when it loaded completely; connections
 * already open keep a reference to the context they started with.
 *
 * A tp_tls_t is one connection's session. The connection feeds the
 * ciphertext it reads (tp_tls_feed), advances the handshake, pulls
 * plaintext (tp_tls_read), pushes plaintext (tp_tls_write) and drains the
 * ciphertext to send (tp_tls_drain). Bounds: the caller feeds at most one
 * read at a time and stops reading while tp_tls_backlog() is large; the
 * outgoing BIO stays bounded because the caller drains it whenever it
 * holds 64 KiB or more (and at the end of every flush).
 *
 * Nothing here logs; failures come back as codes with a reason string.
 */
#ifndef TP_TLS_H
#define TP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct tp_tls_ctx tp_tls_ctx_t;
typedef struct tp_tls tp_tls_t;

/* Results of tp_tls_read besides a byte count. */
#define TP_TLS_FAILED (-1) /* fatal TLS error: see tp_tls_reason */
#define TP_TLS_EOF (-2)    /* the peer sent close_notify */

/* Loads cert (a PEM chain, leaf first) and key (PEM) into a new server
 * context. Returns NULL with a message naming the file in err when a file
 * is missing or unreadable, is not PEM, the key does not match, or the
 * certificate has expired. */
tp_tls_ctx_t *tp_tls_ctx_new(const char *cert, const char *key, char *err,
                             size_t errlen);

/* Loads the same files again; on success the new context serves every
 * later handshake. Returns 0, or -1 with err set (the old context stays). */
int tp_tls_ctx_reload(tp_tls_ctx_t *ctx, char *err, size_t errlen);

/* Drops the listener's reference; live sessions keep theirs. NULL is
 * fine. */
void tp_tls_ctx_free(tp_tls_ctx_t *ctx);

/* The certificate file, and its expiry time (Unix seconds) as loaded. */
const char *tp_tls_ctx_cert(const tp_tls_ctx_t *ctx);
int64_t tp_tls_ctx_not_after(const tp_tls_ctx_t *ctx);

/* A server session on ctx, waiting for the client's hello. NULL when out
 * of memory. */
tp_tls_t *tp_tls_new(tp_tls_ctx_t *ctx);
void tp_tls_free(tp_tls_t *t);

/* Hands n bytes of ciphertext read from the socket to the session.
 * Returns 0, or TP_TLS_FAILED when out of memory. */
int tp_tls_feed(tp_tls_t *t, const void *p, size_t n);

/* Advances the handshake with what was fed. Returns 1 when it is complete
 * (also on later calls), 0 when it needs more from the peer, TP_TLS_FAILED
 * when it failed. Drain afterwards in every case: alerts go out too. */
int tp_tls_handshake(tp_tls_t *t);

/* True once the handshake is complete. */
bool tp_tls_ready(const tp_tls_t *t);

/* Decrypts up to room bytes into out. Returns the count (> 0), 0 when no
 * whole record is waiting, TP_TLS_EOF after the peer's close_notify, or
 * TP_TLS_FAILED. Only after the handshake. */
long tp_tls_read(tp_tls_t *t, void *out, size_t room);

/* Bytes fed but not yet turned into plaintext, plus decrypted bytes not
 * yet read. */
size_t tp_tls_backlog(const tp_tls_t *t);

/* Encrypts n bytes (only after the handshake). Returns 0 or
 * TP_TLS_FAILED. */
int tp_tls_write(tp_tls_t *t, const void *p, size_t n);

/* Appends the ciphertext waiting to be sent to dst. Returns false when dst
 * could not take it (out of memory, or its cap); the bytes are then
 * dropped and the session is failed. */
bool tp_tls_drain(tp_tls_t *t, tp_buf_t *dst);

/* Bytes of ciphertext waiting to be sent. */
size_t tp_tls_pending(const tp_tls_t *t);

/* Queues close_notify once, when the handshake completed and nothing
 * failed; otherwise does nothing. */
void tp_tls_close_notify(tp_tls_t *t);

/* Why the session failed (or "" when it did not). */
const char *tp_tls_reason(const tp_tls_t *t);

/* The negotiated protocol ("TLSv1.3") and cipher, for logs. */
const char *tp_tls_protocol(const tp_tls_t *t);
const char *tp_tls_cipher(const tp_tls_t *t);

/* Writes a new self-signed certificate (RSA 2048, SHA-256, valid from an
 * hour ago for days days, subject CN=cn, subjectAltName localhost,
 * 127.0.0.1 and ::1) to cert and its key to key (mode 0600). Each file is
 * written to a temporary name and renamed into place. Returns 0, or -1
 * with err naming the file. */
int tp_tls_make_self_signed(const char *cert, const char *key,
                            const char *cn, int days, char *err,
                            size_t errlen);

/* Reads the first certificate of a PEM file: its expiry and start times
 * (Unix seconds) and its subject as one line. Returns 0, or -1 with err
 * naming the file. */
int tp_tls_cert_info(const char *path, int64_t *not_before,
                     int64_t *not_after, char *subject, size_t subjlen,
                     char *err, size_t errlen);

#endif
