/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_HIST_H
#define LB_HIST_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Latency histograms with fixed buckets, kept in shared memory and updated
 * by workers without locks: an observation is two relaxed atomic adds (its
 * bucket, the sum). Buckets hold plain (not cumulative) counts; readers
 * make them cumulative, as Prometheus wants, and derive count from them.
 * A reader may see one observation's bucket without its sum: scrapes are
 * not snapshots, as with every other counter in shm.
 */
#define LB_HIST_BUCKETS 16		/* finite upper bounds; one more slot counts +Inf */

enum lb_hist_kind {
	LB_HIST_CONNECT,		/* backend connect time: tens of µs to seconds */
	LB_HIST_QUEUE,			/* time a client waited for max_conns: ms to minutes */
	LB_HIST_DURATION,		/* connection lifetime: ms to hours */
};

struct lb_hist {
	_Atomic uint64_t bucket[LB_HIST_BUCKETS + 1];
	_Atomic uint64_t sum_us;
};

/* A plain copy for computing on. */
struct lb_hist_snap {
	uint64_t bucket[LB_HIST_BUCKETS + 1];
	uint64_t sum_us, count;
};

/* The kind's LB_HIST_BUCKETS upper bounds in µs, ascending. */
const uint64_t *lb_hist_bounds(enum lb_hist_kind kind);

/* Counts one observation of us microseconds. Any process, any thread. */
void lb_hist_observe(struct lb_hist *h, enum lb_hist_kind kind, uint64_t us);

void lb_hist_read(const struct lb_hist *h, struct lb_hist_snap *out);

/* Adds what src holds to dst (a reload carries a service's histograms over). */
void lb_hist_carry(struct lb_hist *dst, const struct lb_hist *src);

/*
 * The q quantile (0 < q < 1) in µs, interpolated linearly inside its
 * bucket as Prometheus's histogram_quantile() does; past the last bound it
 * is that bound. Returns -1 when nothing was observed.
 */
double lb_hist_quantile(const struct lb_hist_snap *s, enum lb_hist_kind kind, double q);

/* Monotonic clock in µs, for timing what the loop's ms clock is too coarse for. */
uint64_t lb_hist_now_us(void);

#endif
