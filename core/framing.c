/*
 * framing.c: TP frames on a connection (see framing.h).
 */
#include "framing.h"

#include "http_sniff.h"
#include "listener.h"
#include "log.h"
#include "stats.h"

void tp_framing_fail(tp_conn_t *c, int version, uint32_t seq, uint32_t code,
                     const char *msg)
{
    /* A Fail may pass the output's soft cap: it is what a client must
     * hear. Only memory can refuse it. */
    size_t max = c->out.max;
    c->out.max = 0;
    bool ok = tp_frame_write_fail(&c->out, version, seq, code, msg, c->pad);
    c->out.max = max;
    if (!ok) {
        tp_log_error("net", "conn=%llu cannot buffer a Fail frame",
                     (unsigned long long)c->id);
        tp_conn_close(c, "out of memory");
        return;
    }
    tp_stats_frame_out(1);
    tp_stats_fail_out(tp_frame_fail_code(version, code));
    tp_log_debug("net", "conn=%llu seq=%u Fail code=%u result=\"%s\"",
                 (unsigned long long)c->id, seq,
                 tp_frame_fail_code(version, code), msg);
}

/* One complete frame whose header is h and body follows: the version
 * rules, then the server's frame handler. */
static void handle_frame(tp_conn_t *c, const tp_header_t *h,
                         const uint8_t *body)
{
    int hv = h->cls == TP_HDR_TP03 ? 3 : h->cls == TP_HDR_TP04 ? 4 : 0;
    if (c->version == 0) {
        if (hv == 0) {
            /* A version we do not speak: answer in the best version the
             * client may understand, echoing its sequence number. */
            int fv = h->cls == TP_HDR_UNSUP_BIN ? 4 : 3;
            tp_log_info("net", "conn=%llu peer=%s unsupported protocol "
                        "version, seq=%u", (unsigned long long)c->id,
                        c->peer, h->seq);
            tp_framing_fail(c, fv, h->seq, TP_FAIL_PROTOCOL,
                            "unsupported protocol version; this server "
                            "speaks TP03 and TP04");
            return;
        }
        c->version = hv;
        tp_log_debug("net", "conn=%llu protocol TP0%d",
                     (unsigned long long)c->id, hv);
    } else if (hv != c->version) {
        tp_log_info("net", "conn=%llu frame with another protocol version",
                    (unsigned long long)c->id);
        tp_framing_fail(c, c->version, h->seq, TP_FAIL_PROTOCOL,
                        "Protocol Error, wrong version number");
        return;
    }
    if (h->frame_version != 0) {
        tp_framing_fail(c, c->version, h->seq, TP_FAIL_FRAME_VERSION,
                        "frame version not supported (only 0)");
        return;
    }
    tp_server_t *srv = c->srv;
    if (srv->handlers.frame)
        srv->handlers.frame(srv->handlers.ud, c, h, body);
}

/* An over-limit connection: once its first header is in, answer Fail
 * "server full" in its version with its sequence number, and close. */
static void refuse_input(tp_conn_t *c)
{
    const uint8_t *p = c->in.data;
    size_t n = c->in.len;
    tp_hdr_class_t cls = tp_frame_classify(p, n);
    if (cls == TP_HDR_NEED_MORE)
        return;
    if (cls != TP_HDR_NOT_TP && cls != TP_HDR_TOO_OLD) {
        if (n < TP_HEADER_SIZE)
            return;
        tp_header_t h;
        tp_frame_parse(p, &h);
        int v = cls == TP_HDR_TP04 || cls == TP_HDR_UNSUP_BIN ? 4 : 3;
        tp_framing_fail(c, v, h.seq, TP_FAIL_UNAVAILABLE_TEMP,
                        c->refuse_why ? c->refuse_why :
                        "server full: too many connections, try again "
                        "later");
    }
    tp_conn_close(c, c->refuse_why ? "too many from one address" :
                  "server full");
}

/* Requests one connection is served in a row before the others get their
 * turn: a client that pipelines thousands cannot hold the loop. */
#define FAIR_FRAMES 64

size_t tp_framing_input(tp_conn_t *c, bool *held)
{
    tp_server_t *srv = c->srv;
    size_t off = 0;
    unsigned served = 0;
    if (c->sniff && !tp_http_sniff(c))
        return 0;
    if (c->refusing) {
        refuse_input(c);
        return 0;
    }
    while (!c->closing) {
        if (c->paused) {
            *held = true;
            tp_conn_stop_reading(c);
            break;
        }
        if (tp_conn_output(c) > srv->limits.output_high) {
            /* The client is not reading its answers: stop reading its
             * requests, and making the rest of a long reply, until the
             * output drains (conn.c resumes). */
            tp_conn_stop_reading(c);
            *held = true;
            break;
        }
        if (c->more) {
            /* A reply made in parts: one part per loop iteration, the
             * other connections served in between, and the connection's
             * later requests after the whole reply (arrival order). */
            if (served > 0) {
                tp_conn_yield(c);
                *held = true;
                break;
            }
            served = FAIR_FRAMES;
            if (srv->handlers.more)
                srv->handlers.more(srv->handlers.ud, c);
            else
                c->more = false;
            continue;
        }
        const uint8_t *p = c->in.data + off;
        size_t n = c->in.len - off;
        if (n == 0)
            break;
        if (c->version == 0) {
            tp_hdr_class_t cls = tp_frame_classify(p, n);
            if (cls == TP_HDR_NOT_TP) {
                tp_conn_send_text(c, TP_MSG_NOT_TP,
                                  sizeof TP_MSG_NOT_TP - 1,
                                  p[0] == 0x16 && !c->tr->encrypted ?
                                  "TLS handshake on a plain port" :
                                  "not TP");
                break;
            }
            if (cls == TP_HDR_TOO_OLD) {
                tp_conn_send_text(c, TP_MSG_TOO_OLD,
                                  sizeof TP_MSG_TOO_OLD - 1,
                                  "TP version too old");
                break;
            }
        } else if (n >= 2 && (p[0] != 'T' || p[1] != 'P')) {
            /* Framing lost: nothing after this can be trusted. */
            tp_framing_fail(c, c->version, 0, TP_FAIL_PROTOCOL,
                            "Protocol Error, bad frame header");
            tp_conn_close(c, "bad frame header");
            break;
        }
        if (n < TP_HEADER_SIZE)
            break;
        tp_header_t h;
        tp_frame_parse(p, &h);
        /* Refused on the header: the payload is never buffered. */
        if (h.len > srv->limits.max_frame - TP_HEADER_SIZE) {
            tp_log_warn("net", "conn=%llu peer=%s frame length %u over the "
                        "limit", (unsigned long long)c->id, c->peer, h.len);
            tp_framing_fail(c, c->version ? c->version :
                            (h.cls == TP_HDR_TP04 ||
                             h.cls == TP_HDR_UNSUP_BIN ? 4 : 3),
                            h.seq, TP_FAIL_PROTOCOL,
                            "Protocol Error, frame length too large");
            tp_conn_close(c, "frame too large");
            break;
        }
        if (n < TP_HEADER_SIZE + (size_t)h.len)
            break;
        if (served == FAIR_FRAMES) {
            tp_conn_yield(c);
            *held = true;
            break;
        }
        if (srv->limits.rate > 0 && !tp_conn_take_token(c)) {
            *held = true;
            break;
        }
        served++;
        off += TP_HEADER_SIZE + h.len;
        tp_stats_frame_in(h.type);
        handle_frame(c, &h, p + TP_HEADER_SIZE);
    }
    return off;
}
