// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fixed-bucket latency histograms (hist.h). The bounds are chosen per kind
 * so that the range a healthy system sees falls into the middle buckets and
 * the tail still has resolution; they never change at run time, so every
 * process agrees on what a bucket means without sharing the table.
 */
#include <time.h>

#include "lb/hist.h"

static const uint64_t bounds[][LB_HIST_BUCKETS] = {
	[LB_HIST_CONNECT] = { 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
			      250000, 500000, 1000000, 2500000, 5000000 },
	[LB_HIST_QUEUE] = { 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
			    1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 120000000 },
	[LB_HIST_DURATION] = { 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000,
			       10000000, 30000000, 60000000, 300000000, 900000000, 1800000000,
			       3600000000, 7200000000 },
};

const uint64_t *lb_hist_bounds(enum lb_hist_kind kind)
{
	return bounds[kind];
}

void lb_hist_observe(struct lb_hist *h, enum lb_hist_kind kind, uint64_t us)
{
	const uint64_t *b = bounds[kind];
	unsigned int lo = 0, hi = LB_HIST_BUCKETS;

	/* The first bound >= us, or LB_HIST_BUCKETS (+Inf). */
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (b[mid] < us)
			lo = mid + 1;
		else
			hi = mid;
	}
	atomic_fetch_add_explicit(&h->bucket[lo], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void lb_hist_read(const struct lb_hist *h, struct lb_hist_snap *out)
{
	out->count = 0;
	for (unsigned int i = 0; i <= LB_HIST_BUCKETS; i++) {
		out->bucket[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		out->count += out->bucket[i];
	}
	out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

void lb_hist_carry(struct lb_hist *dst, const struct lb_hist *src)
{
	struct lb_hist_snap s;

	lb_hist_read(src, &s);
	/* Most of 10,000 services carry nothing: 50 locked adds each saved. */
	if (!s.count && !s.sum_us)
		return;
	for (unsigned int i = 0; i <= LB_HIST_BUCKETS; i++)
		atomic_fetch_add_explicit(&dst->bucket[i], s.bucket[i], memory_order_relaxed);
	atomic_fetch_add_explicit(&dst->sum_us, s.sum_us, memory_order_relaxed);
}

double lb_hist_quantile(const struct lb_hist_snap *s, enum lb_hist_kind kind, double q)
{
	const uint64_t *b = bounds[kind];
	double rank, seen = 0;

	if (!s->count)
		return -1;
	rank = q * (double)s->count;
	for (unsigned int i = 0; i < LB_HIST_BUCKETS; i++) {
		double lower = i ? (double)b[i - 1] : 0;

		if (seen + (double)s->bucket[i] >= rank && s->bucket[i])
			return lower + ((double)b[i] - lower) * (rank - seen) / (double)s->bucket[i];
		seen += (double)s->bucket[i];
	}
	return (double)b[LB_HIST_BUCKETS - 1];
}

uint64_t lb_hist_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
