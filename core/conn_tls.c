/*
 * conn_tls.c: the TLS transport (conn.h's tp_transport_t over tls.h).
 *
 * Ciphertext read from the socket goes into the session at once; the
 * handshake advances; plaintext is pulled into the connection's input
 * buffer while there is room, so a session never holds more than about
 * one read (reading stops while its backlog is over that). The output is
 * encrypted as it is flushed, one TP frame per record (PROTOCOL.md 1.3).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "tls.h"

/* TLS reads: about one record, so a session's incoming BIO stays small. */
#define TLS_READ_CHUNK (17 * 1024)
/* Plaintext encrypted per step of a flush (one record). */
#define TLS_WRITE_CHUNK 16384
/* Ciphertext the session may hold during a flush before it is drained. */
#define TLS_DRAIN_AT (64 * 1024)

/* Ciphertext of TLS reads lands here and goes straight into the session:
 * one loop thread, and libuv calls alloc and read back to back. */
static char tls_read_buf[TLS_READ_CHUNK];

static void tls_alloc(tp_conn_t *c, uv_buf_t *buf)
{
    (void)c;
    buf->base = tls_read_buf;
    buf->len = sizeof tls_read_buf;
}

static bool tls_ready(const tp_conn_t *c)
{
    return tp_tls_ready(c->tls);
}

static bool tls_received(tp_conn_t *c, const char *p, size_t n)
{
    if (tp_tls_feed(c->tls, p, n) != 0) {
        tp_conn_close(c, "out of memory");
        return false;
    }
    if (tp_tls_ready(c->tls))
        return true;
    int rc = tp_tls_handshake(c->tls);
    if (rc != 1) {
        tp_conn_flush(c); /* the handshake's next flight, or an alert */
        if (rc < 0 && !c->closing) {
            tp_log_info("net", "conn=%llu peer=%s TLS handshake failed: %s",
                        (unsigned long long)c->id, c->peer,
                        tp_tls_reason(c->tls));
            tp_conn_close(c, "TLS handshake failed");
        }
        return false;
    }
    if (c->lst)
        c->lst->stats.tls_done++;
    tp_log_debug("net", "conn=%llu TLS handshake done: %s %s",
                 (unsigned long long)c->id, tp_tls_protocol(c->tls),
                 tp_tls_cipher(c->tls));
    tp_conn_transport_ready(c);
    return true;
}

/* Moves decrypted bytes into c->in while there is room. */
static bool tls_pull(tp_conn_t *c)
{
    if (!tp_tls_ready(c->tls))
        return true;
    for (;;) {
        size_t room = c->in.max - c->in.len;
        if (room == 0)
            return true;
        if (room > TLS_READ_CHUNK)
            room = TLS_READ_CHUNK;
        if (!tp_buf_reserve(&c->in, room)) {
            tp_conn_close(c, "out of memory");
            return false;
        }
        long n = tp_tls_read(c->tls, c->in.data + c->in.len, room);
        if (n > 0) {
            c->in.len += (size_t)n;
            continue;
        }
        if (n == 0)
            return true;
        if (n == TP_TLS_EOF) {
            /* close_notify: like a TCP end of stream. */
            c->eof = true;
            tp_conn_stop_reading(c);
            return true;
        }
        tp_log_info("net", "conn=%llu peer=%s TLS error: %s",
                    (unsigned long long)c->id, c->peer,
                    tp_tls_reason(c->tls));
        tp_conn_close(c, "TLS error");
        return false;
    }
}

static size_t tls_backlog(const tp_conn_t *c)
{
    return tp_tls_backlog(c->tls);
}

/* Encrypts the output (once the handshake is done; before it there is
 * none) and writes the ciphertext, with whatever the session produced by
 * itself (handshake messages, alerts). */
static void tls_write_out(tp_conn_t *c, bool end)
{
    tp_buf_t cipher;
    tp_buf_init(&cipher, 0);
    bool ok = true;
    if (c->out.len > 0) {
        if (tp_tls_ready(c->tls)) {
            ok = tp_buf_reserve(&cipher, c->out.len + c->out.len / 64 +
                                4096);
            /* One TP frame per TLS record (several records for a frame
             * over 16 KiB): libtpproto-cpp reads one frame per readable
             * socket and never drains what its TLS layer holds, so frames
             * packed into one record would wait forever (PROTOCOL.md 1.3).
             * Text written before the frames (the HTTP tunnel's answer)
             * is a unit of its own. */
            size_t off = 0;
            while (ok && off < c->out.len) {
                size_t unit = c->out.len - off;
                if (off < c->out_text) {
                    unit = c->out_text - off;
                } else if (unit >= TP_HEADER_SIZE) {
                    uint64_t flen = (uint64_t)TP_HEADER_SIZE +
                        tp_get_u32(c->out.data + off + 12);
                    if (flen < unit)
                        unit = (size_t)flen;
                }
                for (size_t done = 0; ok && done < unit;) {
                    size_t n = unit - done;
                    if (n > TLS_WRITE_CHUNK)
                        n = TLS_WRITE_CHUNK;
                    /* Drained now and then, not per record: small
                     * frames make many records. */
                    ok = tp_tls_write(c->tls, c->out.data + off + done, n) ==
                         0 && (tp_tls_pending(c->tls) < TLS_DRAIN_AT ||
                               tp_tls_drain(c->tls, &cipher));
                    done += n;
                }
                off += unit;
            }
        }
        c->out.len = 0;
        c->out_text = 0;
        if (c->out.cap > TP_CONN_OUT_KEEP)
            tp_buf_free(&c->out);
    }
    if (ok && end)
        tp_tls_close_notify(c->tls);
    if (ok)
        ok = tp_tls_drain(c->tls, &cipher);
    if (cipher.len > 0)
        tp_conn_write_block(c, cipher.data, cipher.len);
    else
        tp_buf_free(&cipher);
    if (!ok && !c->closing) {
        tp_log_info("net", "conn=%llu peer=%s TLS write failed: %s",
                    (unsigned long long)c->id, c->peer,
                    tp_tls_reason(c->tls));
        tp_conn_close(c, "TLS error");
    }
}

static void tls_flush(tp_conn_t *c)
{
    tls_write_out(c, false);
}

static void tls_shutdown(tp_conn_t *c)
{
    tls_write_out(c, true);
}

static void tls_free(tp_conn_t *c)
{
    tp_tls_free(c->tls);
    c->tls = NULL;
}

const tp_transport_t tp_transport_tls = {
    .name = "tls", .encrypted = true, .alloc = tls_alloc,
    .received = tls_received, .pull = tls_pull, .backlog = tls_backlog,
    .flush = tls_flush, .shutdown = tls_shutdown, .ready = tls_ready,
    .free = tls_free,
};
