// SPDX-License-Identifier: GPL-2.0-or-later
/* lb/hist.c: bucket placement, quantiles against a sorted reference, lock-free adds. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lb/hist.h"
#include "tests/unit.h"

static const enum lb_hist_kind kinds[] = { LB_HIST_CONNECT, LB_HIST_QUEUE, LB_HIST_DURATION };

/* Bounds ascend, and a value lands in the first bucket whose bound is >= it. */
START_TEST(test_buckets)
{
	for (size_t k = 0; k < 3; k++) {
		const uint64_t *b = lb_hist_bounds(kinds[k]);

		for (unsigned int i = 0; i < LB_HIST_BUCKETS; i++) {
			struct lb_hist h;
			struct lb_hist_snap s;

			if (i)
				ck_assert_uint_gt(b[i], b[i - 1]);
			/* On the bound: this bucket (le is "less or equal"); one past: the next. */
			memset(&h, 0, sizeof(h));
			lb_hist_observe(&h, kinds[k], b[i]);
			lb_hist_observe(&h, kinds[k], b[i] + 1);
			lb_hist_read(&h, &s);
			ck_assert_uint_eq(s.bucket[i], 1);
			ck_assert_uint_eq(s.bucket[i + 1], 1);
			ck_assert_uint_eq(s.count, 2);
			ck_assert_uint_eq(s.sum_us, 2 * b[i] + 1);
		}
	}
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The interpolated quantile lies in the same bucket as the exact one from
 * sorted samples: that is all a fixed-bucket histogram can promise.
 */
START_TEST(test_quantile)
{
	enum { N = 5000 };
	static uint64_t v[N];
	const uint64_t *b = lb_hist_bounds(LB_HIST_CONNECT);
	static const double qs[] = { 0.5, 0.9, 0.99 };
	struct lb_hist h;
	struct lb_hist_snap s;

	memset(&h, 0, sizeof(h));
	srandom(42);
	for (int i = 0; i < N; i++) {
		/* Mostly ~300 µs, with a long tail up to ~100 ms. */
		v[i] = 100 + random() % 400 + (random() % 20 == 0 ? random() % 100000 : 0);
		lb_hist_observe(&h, LB_HIST_CONNECT, v[i]);
	}
	qsort(v, N, sizeof(v[0]), cmp_u64);
	lb_hist_read(&h, &s);
	ck_assert_uint_eq(s.count, N);
	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		uint64_t exact = v[(size_t)(qs[k] * N) - 1];
		double got = lb_hist_quantile(&s, LB_HIST_CONNECT, qs[k]);
		double lo = 0, hi = b[LB_HIST_BUCKETS - 1];

		for (unsigned int i = 0; i < LB_HIST_BUCKETS; i++)
			if (exact <= b[i]) {
				hi = b[i];
				lo = i ? b[i - 1] : 0;
				break;
			}
		ck_assert_msg(got >= lo && got <= hi, "q%.2f: exact %llu, got %.1f, bucket %.0f..%.0f",
			      qs[k], (unsigned long long)exact, got, lo, hi);
	}
	/* Nothing observed: no quantile. Everything past the last bound: that bound. */
	memset(&h, 0, sizeof(h));
	lb_hist_read(&h, &s);
	ck_assert(lb_hist_quantile(&s, LB_HIST_CONNECT, 0.5) < 0);
	lb_hist_observe(&h, LB_HIST_CONNECT, b[LB_HIST_BUCKETS - 1] * 10);
	lb_hist_read(&h, &s);
	ck_assert(lb_hist_quantile(&s, LB_HIST_CONNECT, 0.99) == (double)b[LB_HIST_BUCKETS - 1]);
}
END_TEST

/* Threads adding at once lose nothing: the adds are atomic. */
#define THREADS 4
#define PER_THREAD 200000
static struct lb_hist shared;

static void *adder(void *arg)
{
	uint64_t us = (uintptr_t)arg;

	for (int i = 0; i < PER_THREAD; i++)
		lb_hist_observe(&shared, LB_HIST_DURATION, us);
	return NULL;
}

START_TEST(test_concurrent)
{
	pthread_t t[THREADS];
	struct lb_hist_snap s;

	for (uintptr_t i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, adder, (void *)(1000 * (i + 1))), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	lb_hist_read(&shared, &s);
	ck_assert_uint_eq(s.count, THREADS * PER_THREAD);
	ck_assert_uint_eq(s.sum_us, (uint64_t)PER_THREAD * 1000 * (1 + 2 + 3 + 4));
}
END_TEST

/* A reload hands a service's histograms to the next generation. */
START_TEST(test_carry)
{
	struct lb_hist a, b;
	struct lb_hist_snap s;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	lb_hist_observe(&a, LB_HIST_QUEUE, 3000);
	lb_hist_observe(&b, LB_HIST_QUEUE, 7000000);
	lb_hist_carry(&b, &a);
	lb_hist_read(&b, &s);
	ck_assert_uint_eq(s.count, 2);
	ck_assert_uint_eq(s.sum_us, 7003000);
}
END_TEST

int main(void)
{
	return lb_test_main("hist", NULL, NULL, 60, LB_TESTS(test_buckets, test_quantile, test_concurrent, test_carry));
}
