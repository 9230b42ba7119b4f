/*
 * stats.c: the core's counters (see stats.h).
 */
#include "stats.h"

tp_stats_t tp_stats;

const double tp_stats_bounds[TP_STATS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

void tp_histogram_observe(tp_histogram_t *h, double value)
{
    if (!(value > 0))
        value = 0;      /* also NaN */
    int i = 0;
    while (i < TP_STATS_BUCKETS && value > tp_stats_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += value;
}
