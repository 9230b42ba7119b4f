/*
 * stats.h: counters and the request latency histogram kept by the core.
 *
 * One set per process (tp_stats), touched only by the loop thread, so the
 * counters are plain integers. Frames are counted by type as they are cut
 * from the input (received) and as they are encoded into a connection's
 * output (sent; a reply rolled back to its savepoint has been counted).
 * Lua reads a snapshot through tp.sys.stats() and renders it, with its own
 * metrics, as Prometheus text (lua/tp/stats.lua).
 */
#ifndef TP_STATS_H
#define TP_STATS_H

#include <stdint.h>

/* Frame types 0..TP_STATS_TYPES-1 are counted one by one (the admin frames
 * are 1000..1007); larger types share the last slot. */
#define TP_STATS_TYPES 1024
/* Fail codes 0..TP_STATS_FAIL_CODES-1 one by one, the rest in the last. */
#define TP_STATS_FAIL_CODES 16
/* Latency buckets (upper bounds in seconds), plus one for +Inf. */
#define TP_STATS_BUCKETS 16

typedef struct tp_histogram {
    uint64_t counts[TP_STATS_BUCKETS + 1]; /* per bucket, not cumulative;
                                              the last is over every bound */
    uint64_t count;                        /* observations */
    double sum;                            /* their sum */
} tp_histogram_t;

typedef struct tp_stats {
    uint64_t frames_in[TP_STATS_TYPES + 1];   /* received, by type */
    uint64_t frames_out[TP_STATS_TYPES + 1];  /* sent, by type */
    uint64_t fails_out[TP_STATS_FAIL_CODES + 1]; /* Fail frames, by code */
    uint64_t bytes_in;                        /* bytes read from clients */
    uint64_t bytes_out;                       /* bytes written to them */
    tp_histogram_t request_seconds;           /* request to reply */
} tp_stats_t;

extern tp_stats_t tp_stats;

/* The upper bounds of the latency buckets, in seconds, ascending. */
extern const double tp_stats_bounds[TP_STATS_BUCKETS];

static inline void tp_stats_frame_in(uint32_t type)
{
    tp_stats.frames_in[type < TP_STATS_TYPES ? type : TP_STATS_TYPES]++;
}

static inline void tp_stats_frame_out(uint32_t type)
{
    tp_stats.frames_out[type < TP_STATS_TYPES ? type : TP_STATS_TYPES]++;
}

static inline void tp_stats_fail_out(uint32_t code)
{
    tp_stats.fails_out[code < TP_STATS_FAIL_CODES ? code
                                                  : TP_STATS_FAIL_CODES]++;
}

/* Adds one observation (seconds; negative counts as 0). */
void tp_histogram_observe(tp_histogram_t *h, double value);

#endif
