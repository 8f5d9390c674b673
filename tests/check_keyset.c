// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/keyset.c: insert, refuse, remove and purge; a full window; and two
 * threads racing to insert the same keys, which must never both hold one.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "lb/keyset.h"
#include "lb/loop.h"
#include "tests/unit.h"

static struct lb_keyset *ks_new(uint32_t n)
{
	size_t size = lb_keyset_size(n);
	struct lb_keyset *ks = calloc(1, size);

	ck_assert_ptr_nonnull(ks);
	lb_keyset_init(ks, size);
	return ks;
}

START_TEST(test_insert_remove_purge)
{
	struct lb_keyset *ks = ks_new(100);
	uint32_t w[10], other;
	uint64_t dead[2] = { 0 };

	ck_assert_uint_eq(ks->mask + 1, 512);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(lb_keyset_insert(ks, 1000 + i, i < 5 ? 3 : 4, &w[i]), 0);
	/* Held, by its owner or another: refused. */
	ck_assert_int_eq(lb_keyset_insert(ks, 1003, 3, &other), -EEXIST);
	ck_assert_int_eq(lb_keyset_insert(ks, 1003, 9, &other), -EEXIST);
	/* Removing with the wrong owner or key does nothing. */
	lb_keyset_remove(ks, w[3], 1003, 4);
	lb_keyset_remove(ks, w[3], 1004, 3);
	ck_assert_int_eq(lb_keyset_insert(ks, 1003, 9, &other), -EEXIST);
	lb_keyset_remove(ks, w[3], 1003, 3);
	ck_assert_int_eq(lb_keyset_insert(ks, 1003, 9, &other), 0);
	/* Owner 4 died: its five keys go, owner 3's four stay. */
	dead[0] = 1ull << 4;
	ck_assert_uint_eq(lb_keyset_purge(ks, dead, 64), 5);
	for (int i = 5; i < 10; i++)
		ck_assert_int_eq(lb_keyset_insert(ks, 1000 + i, 7, &w[i]), 0);
	ck_assert_int_eq(lb_keyset_insert(ks, 1000, 7, &other), -EEXIST);
	/* Owners 3 and 70 in one pass; 7 (a bit past n_owners is never read) stays. */
	ck_assert_int_eq(lb_keyset_insert(ks, 2000, 70, &other), 0);
	dead[0] = 1ull << 3;
	dead[1] = 1ull << (70 - 64);
	ck_assert_uint_eq(lb_keyset_purge(ks, dead, 71), 5);
	ck_assert_int_eq(lb_keyset_insert(ks, 1000, 7, &other), 0);
	ck_assert_int_eq(lb_keyset_insert(ks, 2000, 8, &other), 0);
	ck_assert_uint_eq(lb_keyset_purge(ks, (const uint64_t[]){ 1ull << 7 }, 7), 0);
	ck_assert_int_eq(lb_keyset_insert(ks, 1005, 9, &other), -EEXIST);
	ck_assert_int_eq(lb_keyset_insert(ks, 1, 65535, &other), -EINVAL);
	free(ks);
}
END_TEST

/* The smallest set is one window: the 17th key has nowhere to go. */
START_TEST(test_window_full)
{
	struct lb_keyset *ks = ks_new(1);
	uint32_t w;
	int placed = 0, full = 0;

	ck_assert_uint_eq(ks->mask + 1, LB_KEYSET_WINDOW);
	for (int i = 0; i < 40; i++) {
		int rc = lb_keyset_insert(ks, 5000 + i, 1, &w);

		placed += rc == 0;
		full += rc == -ENOSPC;
	}
	ck_assert_int_eq(placed, LB_KEYSET_WINDOW);
	ck_assert_int_eq(full, 40 - LB_KEYSET_WINDOW);
	free(ks);
}
END_TEST

struct race {
	struct lb_keyset *ks;
	atomic_int holders[64];
	atomic_int both;
	atomic_bool stop;
	uint64_t until;
	unsigned long wins[2];
};

struct racer {
	struct race *r;
	uint16_t owner;
};

static void *race(void *arg)
{
	struct racer *me = arg;
	struct race *r = me->r;
	unsigned int k = me->owner;

	for (unsigned long i = 0; !lb_test_race_over(&r->stop, r->until, i); i++) {
		uint32_t w;

		k = (k * 1103515245u + 12345u) & 63;
		if (lb_keyset_insert(r->ks, k, me->owner, &w) < 0)
			continue;
		if (atomic_fetch_add(&r->holders[k], 1) != 0)
			atomic_fetch_add(&r->both, 1);
		r->wins[me->owner]++;
		atomic_fetch_sub(&r->holders[k], 1);
		lb_keyset_remove(r->ks, w, k, me->owner);
	}
	return NULL;
}

START_TEST(test_race_never_both)
{
	struct race r = { .ks = ks_new(64), .until = lb_clock_ms() + 1500 };
	struct racer a = { &r, 0 }, b = { &r, 1 };
	pthread_t ta, tb;

	ck_assert_int_eq(pthread_create(&ta, NULL, race, &a), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, race, &b), 0);
	while (!lb_test_race_over(&r.stop, r.until, 0) && (r.wins[0] < 200000 || r.wins[1] < 200000))
		usleep(10000);
	atomic_store(&r.stop, true);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_msg(atomic_load(&r.both) == 0, "a key was held twice %d times (%lu, %lu wins)",
		      atomic_load(&r.both), r.wins[0], r.wins[1]);
	if (lb_test_threads_overlap()) {
		ck_assert_uint_gt(r.wins[0], 0);
		ck_assert_uint_gt(r.wins[1], 0);
	}
	for (uint32_t s = 0; s <= r.ks->mask; s++)
		ck_assert_uint_eq(atomic_load(&r.ks->slot[s]), 0);
	free(r.ks);
}
END_TEST

int main(void)
{
	return lb_test_main("keyset", NULL, NULL, 30,
			    LB_TESTS(test_insert_remove_purge, test_window_full, test_race_never_both));
}
