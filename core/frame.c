/*
 * frame.c: classifying and writing TP frame headers (see frame.h).
 */
#include "frame.h"

#include "buf.h"

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
