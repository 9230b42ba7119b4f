/*
 * frame.c: classifying and writing TP frame headers, and frame-level Fails
 * (see frame.h). Nothing here depends on the loop or on Lua (the fuzzer
 * links it alone).
 */
#include "frame.h"

#include <string.h>

tp_hdr_class_t tp_frame_classify(const uint8_t *p, size_t n)
{
    if (n >= 1 && p[0] != 'T')
        return TP_HDR_NOT_TP;
    if (n >= 2 && p[1] != 'P')
        return TP_HDR_NOT_TP;
    if (n < 3)
        return TP_HDR_NEED_MORE;
    uint8_t v = p[2];
    if (v == 4)
        return TP_HDR_TP04;
    if (v >= 5 && v <= 0x2F)
        return TP_HDR_UNSUP_BIN;
    if (v != '0')
        return TP_HDR_UNSUP_OTHER;
    if (n < 4)
        return TP_HDR_NEED_MORE;
    uint8_t d = p[3];
    if (d >= '0' && d <= '2')
        return TP_HDR_TOO_OLD;
    if (d == '3')
        return TP_HDR_TP03;
    if (d >= '4' && d <= '9')
        return TP_HDR_UNSUP_ASCII;
    return TP_HDR_UNSUP_OTHER;
}

void tp_frame_parse(const uint8_t *p, tp_header_t *h)
{
    h->cls = tp_frame_classify(p, TP_HEADER_SIZE);
    h->frame_version = h->cls == TP_HDR_TP04 ? p[3] : 0;
    h->seq = tp_get_u32(p + 4);
    h->type = tp_get_u32(p + 8);
    h->len = tp_get_u32(p + 12);
}

void tp_frame_write_header(uint8_t *out, int version, uint32_t seq,
                           uint32_t type, uint32_t len)
{
    out[0] = 'T';
    out[1] = 'P';
    if (version == 3) {
        out[2] = '0';
        out[3] = '3';
    } else {
        out[2] = (uint8_t)version;
        out[3] = 0;
    }
    tp_put_u32(out + 4, seq);
    tp_put_u32(out + 8, type);
    tp_put_u32(out + 12, len);
}

uint32_t tp_frame_fail_code(int version, uint32_t code)
{
    if (version != 3)
        return code;
    if (code == TP_FAIL_GONE)
        return TP_FAIL_NO_SUCH_THING;
    return code > TP_FAIL_PERMISSION ? TP_FAIL_FRAME : code;
}

bool tp_frame_write_fail(tp_buf_t *out, int version, uint32_t seq,
                         uint32_t code, const char *msg, bool pad)
{
    size_t mlen = strlen(msg);
    if (mlen > 65536)
        mlen = 65536;   /* frame-level messages are short; stay bounded */
    /* The padding filter rounds strings up to 4 bytes (PROTOCOL.md 2.7). */
    size_t padn = version == 4 && pad ? (4 - mlen % 4) % 4 : 0;
    size_t body = 4 + 4 + mlen + padn + (version == 4 ? 4 : 0);
    size_t start = out->len;
    if (!tp_buf_reserve(out, TP_HEADER_SIZE + body))
        return false;
    uint8_t *p = out->data + start;
    tp_frame_write_header(p, version, seq, 1, (uint32_t)body);
    p += TP_HEADER_SIZE;
    tp_put_u32(p, tp_frame_fail_code(version, code));
    tp_put_u32(p + 4, (uint32_t)mlen);
    memcpy(p + 8, msg, mlen);
    memset(p + 8 + mlen, 0, padn);
    if (version == 4)
        tp_put_u32(p + 8 + mlen + padn, 0);   /* no references */
    out->len = start + TP_HEADER_SIZE + body;
    return true;
}
