/*
 * buf.h: a growable byte buffer with a hard cap.
 *
 * Owns one heap block. Every append checks the cap first, so a buffer fed
 * from the network can never grow past what its owner allowed. All functions
 * are small and inline; nothing here raises or logs.
 */
#ifndef TP_BUF_H
#define TP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tp_buf {
    uint8_t *data;  /* heap block, NULL while empty and never grown */
    size_t len;     /* bytes in use */
    size_t cap;     /* bytes allocated */
    size_t max;     /* hard limit on len; 0 means SIZE_MAX */
    bool refused;   /* an append was refused by the cap (until cleared) */
} tp_buf_t;

static inline void tp_buf_init(tp_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->refused = false;
}

static inline void tp_buf_free(tp_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes. Returns false (buffer unchanged) when that
 * would pass the cap or memory is short. */
static inline bool tp_buf_reserve(tp_buf_t *b, size_t n)
{
    size_t max = b->max ? b->max : SIZE_MAX;
    if (n > max - b->len) {
        b->refused = true;
        return false;
    }
    size_t need = b->len + n;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static inline bool tp_buf_append(tp_buf_t *b, const void *p, size_t n)
{
    if (!tp_buf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

/* Drops the first n bytes, keeping the rest. */
static inline void tp_buf_consume(tp_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static inline void tp_buf_truncate(tp_buf_t *b, size_t len)
{
    if (len < b->len)
        b->len = len;
}

static inline void tp_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void tp_put_u64(uint8_t *p, uint64_t v)
{
    tp_put_u32(p, (uint32_t)(v >> 32));
    tp_put_u32(p + 4, (uint32_t)v);
}

static inline uint32_t tp_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t tp_get_u64(const uint8_t *p)
{
    return (uint64_t)tp_get_u32(p) << 32 | tp_get_u32(p + 4);
}

#endif
