/*
 * hist.h: the latency histogram of the load generators (tploadgen,
 * tphttpload).  Header-only, every function static.
 */
#ifndef TP_BENCH_HIST_H
#define TP_BENCH_HIST_H

#include <stdint.h>

/* ---------------------------------------------------------------- histogram
 * Log-linear: values below 2^SUB_BITS nanoseconds have a bucket each; above,
 * every power of two is split into 2^SUB_BITS buckets (about 6 % wide).
 */
#define SUB_BITS       4u
#define SUB_COUNT      (1u << SUB_BITS)
#define MAX_EXP        44u              /* 2^44 ns, about 4.9 hours */
#define NBUCKETS       ((MAX_EXP - SUB_BITS + 2u) * SUB_COUNT)

struct histogram {
    uint64_t count[NBUCKETS];   /* samples per bucket */
    uint64_t total;             /* samples in all buckets */
    uint64_t max_ns;            /* largest sample seen */
};

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB_COUNT)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);   /* v >= 2^e */
    if (e > MAX_EXP)
        return NBUCKETS - 1u;
    unsigned sub = (unsigned)(v >> (e - SUB_BITS)) & (SUB_COUNT - 1u);
    return (e - SUB_BITS + 1u) * SUB_COUNT + sub;
}

/* Smallest value that falls in bucket b. */
static uint64_t bucket_low(unsigned b)
{
    if (b < SUB_COUNT)
        return b;
    unsigned e = b / SUB_COUNT + SUB_BITS - 1u;
    uint64_t sub = b % SUB_COUNT;
    return ((uint64_t)1 << e) + (sub << (e - SUB_BITS));
}

static void hist_add(struct histogram *h, uint64_t ns)
{
    h->count[bucket_of(ns)]++;
    h->total++;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

/* Value at quantile q (0..1): the middle of the bucket holding it. */
static uint64_t hist_quantile(const struct histogram *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total);
    if (rank >= h->total)
        rank = h->total - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < NBUCKETS; b++) {
        seen += h->count[b];
        if (seen > rank) {
            uint64_t lo = bucket_low(b);
            uint64_t hi = b + 1 < NBUCKETS ? bucket_low(b + 1) : lo + 1;
            uint64_t mid = lo + (hi - lo) / 2;
            return mid > h->max_ns ? h->max_ns : mid;
        }
    }
    return h->max_ns;
}

#endif
