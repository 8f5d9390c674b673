// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/cidtab.c: keys (service, length and seed count), set, get, refresh and
 * expiry; a full window that keeps its live entries; and writers racing
 * readers, who must never see another key's backend.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb/cidtab.h"
#include "lb/loop.h"
#include "tests/unit.h"

static struct lb_cidtab *tab_new(uint32_t n, uint64_t seed)
{
	size_t size = lb_cidtab_size(n);
	struct lb_cidtab *t = calloc(1, size);

	ck_assert_ptr_nonnull(t);
	lb_cidtab_init(t, size, seed);
	return t;
}

START_TEST(test_keys)
{
	struct lb_cidtab *t = tab_new(100, 1), *u = tab_new(100, 2);
	static const uint8_t cid[20] = { 0x0a, 0x01, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
					 15, 16, 17, 18, 19 };
	static const uint8_t zeros[9];
	uint64_t k = lb_cidtab_key(t, 7, cid, 9);

	ck_assert_uint_eq(t->mask + 1, 512);
	ck_assert_uint_gt(k, 1);
	ck_assert_uint_eq(k, lb_cidtab_key(t, 7, cid, 9));
	/* Another service, length, octet or seed: another key. */
	ck_assert_uint_ne(k, lb_cidtab_key(t, 8, cid, 9));
	ck_assert_uint_ne(k, lb_cidtab_key(t, 7, cid, 8));
	ck_assert_uint_ne(k, lb_cidtab_key(t, 7, cid, 10));
	ck_assert_uint_ne(k, lb_cidtab_key(t, 7, cid + 1, 9));
	ck_assert_uint_ne(k, lb_cidtab_key(u, 7, cid, 9));
	/* Zero octets are octets: lengths 0..9 of zeros all differ. */
	for (size_t i = 0; i < 9; i++)
		ck_assert_uint_ne(lb_cidtab_key(t, 7, zeros, i), lb_cidtab_key(t, 7, zeros, i + 1));
	free(t);
	free(u);
}
END_TEST

START_TEST(test_set_get_expire)
{
	struct lb_cidtab *t = tab_new(100, 42);

	ck_assert_uint_eq(lb_cidtab_get(t, 1000, 10), 0);
	ck_assert_int_eq(lb_cidtab_set(t, 1000, 5, 70, 10), 0);
	ck_assert_int_eq(lb_cidtab_set(t, 2000, 6, 70, 10), 0);
	ck_assert_uint_eq(lb_cidtab_get(t, 1000, 10), 5);
	ck_assert_uint_eq(lb_cidtab_get(t, 2000, 70), 6);
	ck_assert_uint_eq(lb_cidtab_count(t, 10), 2);
	/* Past its time: gone, though still in the table until reused. */
	ck_assert_uint_eq(lb_cidtab_get(t, 1000, 71), 0);
	ck_assert_uint_eq(lb_cidtab_count(t, 71), 0);
	/* A refresh moves the time on and may name another backend; no second entry. */
	ck_assert_int_eq(lb_cidtab_set(t, 1000, 5, 130, 69), 0);
	ck_assert_int_eq(lb_cidtab_set(t, 1000, 9, 130, 69), 0);
	ck_assert_uint_eq(lb_cidtab_get(t, 1000, 100), 9);
	ck_assert_uint_eq(lb_cidtab_count(t, 69), 2);
	free(t);
}
END_TEST

/*
 * Keys whose window is the same (the table is one window): live entries
 * are never evicted for new ones, expired ones are taken again.
 */
START_TEST(test_window_full)
{
	struct lb_cidtab *t = tab_new(1, 3);
	int placed = 0, full = 0;

	ck_assert_uint_eq(t->mask + 1, LB_CIDTAB_WINDOW);
	for (uint64_t k = 0; k < 40; k++) {
		int rc = lb_cidtab_set(t, 100 + k, (uint32_t)k + 1, k < 8 ? 20 : 50, 10);

		placed += rc == 0;
		full += rc == -ENOSPC;
	}
	ck_assert_int_eq(placed, LB_CIDTAB_WINDOW);
	ck_assert_int_eq(full, 40 - LB_CIDTAB_WINDOW);
	for (uint64_t k = 0; k < LB_CIDTAB_WINDOW; k++)
		ck_assert_uint_eq(lb_cidtab_get(t, 100 + k, 15), k + 1);
	/* At 21 the first 8 expired: 8 newcomers fit, the 9th does not. */
	for (uint64_t k = 0; k < 8; k++)
		ck_assert_int_eq(lb_cidtab_set(t, 500 + k, 77, 90, 21), 0);
	ck_assert_int_eq(lb_cidtab_set(t, 600, 77, 90, 21), -ENOSPC);
	for (uint64_t k = 8; k < LB_CIDTAB_WINDOW; k++)
		ck_assert_uint_eq(lb_cidtab_get(t, 100 + k, 21), k + 1);
	ck_assert_uint_eq(lb_cidtab_count(t, 21), LB_CIDTAB_WINDOW);
	free(t);
}
END_TEST

/*
 * Two writers share a small table: each sets its own keys (slot = a
 * function of the key) and expires them fast, so entries keep changing
 * hands, while a reader checks that any hit names the key's own slot.
 */
struct race {
	struct lb_cidtab *t;
	atomic_bool stop;
	uint64_t until;
	atomic_ulong wrong, hits, sets[2];
	atomic_uint now;
};

struct writer {
	struct race *r;
	unsigned int id;
};

static uint32_t slot_of(uint64_t key)
{
	return (uint32_t)(key * 2654435761u % 1000) + 1;
}

static void *write_keys(void *arg)
{
	struct writer *w = arg;
	struct race *r = w->r;
	uint64_t k = w->id;

	for (unsigned long i = 0; !lb_test_race_over(&r->stop, r->until, i); i++) {
		uint32_t now = atomic_fetch_add(&r->now, 1) / 16;

		uint64_t key;

		k = k * 6364136223846793005ull + 1442695040888963407ull;
		key = (k >> 60) * 2 + w->id + 2;
		if (lb_cidtab_set(r->t, key, slot_of(key), now + 1, now) == 0)
			atomic_fetch_add(&r->sets[w->id], 1);
	}
	return NULL;
}

static void *read_keys(void *arg)
{
	struct race *r = arg;
	uint64_t k = 99;

	for (unsigned long i = 0; !lb_test_race_over(&r->stop, r->until, i); i++) {
		uint64_t key;
		uint32_t got;

		k = k * 6364136223846793005ull + 1442695040888963407ull;
		key = (k >> 60) * 2 + 2 + (k >> 59 & 1);
		got = lb_cidtab_get(r->t, key, atomic_load(&r->now) / 16);
		if (!got)
			continue;
		atomic_fetch_add(&r->hits, 1);
		if (got != slot_of(key))
			atomic_fetch_add(&r->wrong, 1);
	}
	return NULL;
}

START_TEST(test_race_never_wrong)
{
	/* 64 entries: writers keep taking expired entries from each other. */
	struct race r = { .t = tab_new(16, 5), .until = lb_clock_ms() + 1500 };
	struct writer a = { &r, 0 }, b = { &r, 1 };
	pthread_t ta, tb, tr;
	/*
	 * 16 keys per writer, the reader asks for any of the 32: keys come
	 * back often, to refresh their entry while the other writer may be
	 * taking it for one of its own (it expired: the clock moves every 16
	 * sets, entries last one tick).
	 */
	ck_assert_int_eq(pthread_create(&ta, NULL, write_keys, &a), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, write_keys, &b), 0);
	ck_assert_int_eq(pthread_create(&tr, NULL, read_keys, &r), 0);
	while (!lb_test_race_over(&r.stop, r.until, 0) && atomic_load(&r.hits) < 200000)
		usleep(10000);
	atomic_store(&r.stop, true);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_join(tr, NULL);
	ck_assert_msg(atomic_load(&r.wrong) == 0, "%lu of %lu hits named another key's slot",
		      atomic_load(&r.wrong), atomic_load(&r.hits));
	if (lb_test_threads_overlap()) {
		ck_assert_uint_gt(atomic_load(&r.sets[0]), 0);
		ck_assert_uint_gt(atomic_load(&r.sets[1]), 0);
		ck_assert_uint_gt(atomic_load(&r.hits), 0);
	}
	free(r.t);
}
END_TEST

int main(void)
{
	return lb_test_main("cidtab", NULL, NULL, 20,
			    LB_TESTS(test_keys, test_set_get_expire, test_window_full,
				      test_race_never_wrong));
}
