// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/backend.c against a real shm: the scheduler dispatch, the max_conns
 * claim under a racing second "worker" (a thread), the ledger a dead
 * worker's claims are given back from, passive health, and the Maglev
 * table read that notices a rewrite under it.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/backend.h"
#include "lb/balance.h"
#include "lb/log.h"
#include "lb/loop.h"
#include "lb/shm.h"
#include "tests/unit.h"

static const char config_json[] =
	"{\"services\": ["
	"  {\"name\": \"one\", \"vips\": [\"198.18.100.1:80\"],"
	"   \"backends\": [{\"address\": \"198.18.2.2:80\", \"max_conns\": 1}],"
	"   \"health\": {\"type\": \"tcp\", \"fall\": 2}},"
	"  {\"name\": \"rr\", \"vips\": [\"198.18.100.2:80\"],"
	"   \"backends\": [{\"address\": \"198.18.2.2:80\"}, {\"address\": \"198.18.2.3:80\"},"
	"                {\"address\": \"[2001:db8:2::2]:80\"}]},"
	"  {\"name\": \"mg\", \"vips\": [\"198.18.100.3:80\"], \"scheduler\": \"maglev\","
	"   \"maglev_table_size\": 65537,"
	"   \"backends\": [{\"address\": \"198.18.2.2:80\"}, {\"address\": \"198.18.2.3:80\"}]},"
	"  {\"name\": \"both\", \"protocol\": \"tcp+udp\", \"vips\": [\"198.18.100.4:5201\"],"
	"   \"backends\": [{\"address\": \"198.18.2.2:5201\"}, {\"address\": \"198.18.2.3:5201\"}]}"
	" ]}";

enum { SVC_ONE, SVC_RR, SVC_MG, SVC_BOTH };

static struct lb_config *cfg;
static struct lb_shm *shm;

static void setup(void)
{
	char *errors = NULL;

	lb_log_init(LB_LOG_ERR, "test");
	cfg = lb_config_parse(config_json, &errors);
	if (!cfg)
		ck_abort_msg("config: %s", errors);
	shm = lb_shm_create(cfg, 2, 1000);
	ck_assert_ptr_nonnull(shm);
}

static void teardown(void)
{
	lb_shm_destroy(shm);
	lb_config_free(cfg);
}

static union lb_sockaddr client(const char *text)
{
	union lb_sockaddr a;

	ck_assert_int_eq(lb_addr_parse(text, &a, NULL), 0);
	return a;
}

START_TEST(test_pick_claims_and_put_gives_back)
{
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 0, 1);
	union lb_sockaddr c = client("198.18.0.10:40000");
	struct lb_shm_backend *b = lb_shm_backend(shm, SVC_ONE, 0);
	uint32_t held = 0, held2 = 0;
	unsigned int idx = 99;

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(lb_backend_pick(p, SVC_ONE, &c, 0, &held, &idx), LB_BACKEND_OK);
	ck_assert_uint_eq(idx, 0);
	ck_assert_uint_eq(held, shm->services[SVC_ONE].slots[0] + 1);
	ck_assert_ptr_eq(lb_backend_held(shm, held), b);
	ck_assert_int_eq(atomic_load(&b->active), 1);
	ck_assert_uint_eq(atomic_load(&b->total), 1);
	/* max_conns 1: the next client waits, it is not refused. */
	ck_assert_int_eq(lb_backend_pick(p, SVC_ONE, &c, 0, &held2, &idx), LB_BACKEND_FULL);
	ck_assert_uint_eq(held2, 0);
	ck_assert_int_eq(atomic_load(&b->active), 1);
	lb_backend_put(shm, &held);
	ck_assert_uint_eq(held, 0);
	ck_assert_int_eq(atomic_load(&b->active), 0);
	lb_backend_put(shm, &held);
	ck_assert_int_eq(atomic_load(&b->active), 0);
	/* An excluded backend (a failed connect) is not picked; none is left. */
	ck_assert_int_eq(lb_backend_pick(p, SVC_ONE, &c, 1, &held2, &idx), LB_BACKEND_NONE);
	lb_backend_picker_free(p);
}
END_TEST

START_TEST(test_pick_family_and_states)
{
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 0, 1);
	union lb_sockaddr c4 = client("198.18.0.10:40000"), c6 = client("[2001:db8::10]:40000");
	unsigned int idx, seen[3] = { 0 };
	uint32_t held;

	for (int i = 0; i < 10; i++) {
		held = 0;
		ck_assert_int_eq(lb_backend_pick(p, SVC_RR, &c4, 0, &held, &idx), LB_BACKEND_OK);
		ck_assert_uint_lt(idx, 2);
		seen[idx]++;
		lb_backend_put(shm, &held);
	}
	ck_assert_uint_eq(seen[0], 5);
	ck_assert_uint_eq(seen[1], 5);
	held = 0;
	ck_assert_int_eq(lb_backend_pick(p, SVC_RR, &c6, 0, &held, &idx), LB_BACKEND_OK);
	ck_assert_uint_eq(idx, 2);
	lb_backend_put(shm, &held);
	/* Drained, down or weight 0: never picked. */
	lb_shm_set_admin(shm, cfg, SVC_RR, 0, LB_ADMIN_DRAIN, "test");
	lb_shm_set_health(shm, cfg, SVC_RR, 1, LB_HEALTH_DOWN, "test");
	ck_assert_int_eq(lb_backend_pick(p, SVC_RR, &c4, 0, &held, &idx), LB_BACKEND_NONE);
	lb_shm_set_health(shm, cfg, SVC_RR, 1, LB_HEALTH_UP, "test");
	lb_shm_set_weight(shm, cfg, SVC_RR, 1, 0, "test");
	ck_assert_int_eq(lb_backend_pick(p, SVC_RR, &c4, 0, &held, &idx), LB_BACKEND_NONE);
	lb_backend_picker_free(p);
}
END_TEST

/*
 * A second worker keeps taking and freeing the only slot while this one
 * picks. Losing the race for the slot must never exclude the backend (the
 * next pick would say "no backend" and reset a queued client), and the
 * count must never pass max_conns, even for an instant.
 */
struct racer {
	atomic_bool stop;
	atomic_int over;		/* times active was seen above max_conns */
	atomic_ulong won;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 1, 2);
	union lb_sockaddr c = client("198.18.0.11:40000");
	struct lb_shm_backend *b = lb_shm_backend(shm, SVC_ONE, 0);

	while (!atomic_load(&r->stop)) {
		uint32_t held = 0;
		unsigned int idx;

		if (lb_backend_pick(p, SVC_ONE, &c, 0, &held, &idx) == LB_BACKEND_OK) {
			r->won++;
			if (atomic_load(&b->active) > 1)
				atomic_fetch_add(&r->over, 1);
			lb_backend_put(shm, &held);
		}
	}
	lb_backend_picker_free(p);
	return NULL;
}

START_TEST(test_lost_race_never_excludes)
{
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 0, 1);
	union lb_sockaddr c = client("198.18.0.10:40000");
	struct lb_shm_backend *b = lb_shm_backend(shm, SVC_ONE, 0);
	struct racer r = { 0 };
	unsigned long ok = 0, full = 0, none = 0, over = 0;
	uint64_t until;
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, race, &r), 0);
	while (!atomic_load(&r.won))
		sched_yield();
	/* Until both sides have won and lost many times over (or 10 s). */
	until = lb_clock_ms() + 10000;
	while ((ok < 20000 || full < 20000) && lb_clock_ms() < until) {
		for (int i = 0; i < 1000; i++) {
			uint32_t held = 0;
			unsigned int idx;

			switch (lb_backend_pick(p, SVC_ONE, &c, 0, &held, &idx)) {
			case LB_BACKEND_OK:
				ok++;
				if (atomic_load(&b->active) > 1)
					over++;
				lb_backend_put(shm, &held);
				break;
			case LB_BACKEND_FULL:
				full++;
				break;
			case LB_BACKEND_NONE:
				none++;
				break;
			}
		}
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	ck_assert_msg(none == 0, "%lu picks said no backend (%lu ok, %lu full, racer won %lu)",
		      none, ok, full, atomic_load(&r.won));
	ck_assert_msg(over == 0 && atomic_load(&r.over) == 0, "active passed max_conns %lu+%d times",
		      over, atomic_load(&r.over));
	ck_assert_int_eq(atomic_load(&b->active), 0);
	/* Contention, where threads overlap (not under valgrind). */
	if (lb_test_threads_overlap())
		ck_assert_msg(ok > 0 && full > 0, "no contention seen: %lu ok, %lu full", ok, full);
	lb_backend_picker_free(p);
}
END_TEST

/* What a dead worker held is given back from its ledger, once. */
START_TEST(test_ledger_settle)
{
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 0, 1);
	union lb_sockaddr c = client("198.18.0.10:40000");
	uint32_t *ledger = lb_shm_ledger_map(16);
	unsigned int idx;

	ck_assert_ptr_nonnull(ledger);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(lb_backend_pick(p, SVC_RR, &c, 0, &ledger[i], &idx), LB_BACKEND_OK);
	ck_assert_int_eq(lb_backend_pick(p, SVC_ONE, &c, 0, &ledger[9], &idx), LB_BACKEND_OK);
	lb_backend_put(shm, &ledger[0]);
	ck_assert_int_eq(atomic_load(&lb_shm_backend(shm, SVC_RR, 0)->active) +
			 atomic_load(&lb_shm_backend(shm, SVC_RR, 1)->active), 5);
	ck_assert_uint_eq(lb_shm_ledger_settle(shm->pool, ledger, 16), 6);
	ck_assert_int_eq(atomic_load(&lb_shm_backend(shm, SVC_RR, 0)->active), 0);
	ck_assert_int_eq(atomic_load(&lb_shm_backend(shm, SVC_RR, 1)->active), 0);
	/* SVC_ONE's backend is the same address in another service: a slot of its own. */
	ck_assert_int_eq(atomic_load(&lb_shm_backend(shm, SVC_ONE, 0)->active), 0);
	ck_assert_uint_eq(lb_shm_ledger_settle(shm->pool, ledger, 16), 0);
	lb_shm_ledger_unmap(ledger, 16);
	lb_backend_picker_free(p);
}
END_TEST

START_TEST(test_passive_health)
{
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 0, 1);
	struct lb_shm_backend *b = lb_shm_backend(shm, SVC_ONE, 0);

	ck_assert(!lb_backend_connect_failed(p, SVC_ONE, 0, ECONNREFUSED));
	lb_backend_connected(b);
	ck_assert(!lb_backend_connect_failed(p, SVC_ONE, 0, ECONNREFUSED));
	/* fall 2: the second in a row takes it down. */
	ck_assert(lb_backend_connect_failed(p, SVC_ONE, 0, ECONNREFUSED));
	ck_assert_uint_eq(atomic_load(&b->health), LB_HEALTH_DOWN);
	ck_assert_uint_eq(atomic_load(&b->connect_failures), 3);
	lb_backend_picker_free(p);
}
END_TEST

/*
 * Maglev: the same client lands on the same backend; a reader that finds
 * its half being rewritten (sequence odd, or moved under it) retries or
 * falls back rather than trust a torn table.
 */
START_TEST(test_maglev_consistent_read)
{
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 0, 1);
	struct lb_shm_service *ss = &shm->services[SVC_MG];
	struct lb_pick picks[2] = { { .weight = 1 }, { .weight = 1 } };
	union lb_sockaddr c = client("198.18.0.10:40000");
	uint64_t hash = lb_balance_hash_client(&c, false);
	uint32_t gen = atomic_load(&ss->maglev_gen), held;
	unsigned int first, idx;
	int want;

	ck_assert_int_eq(lb_backend_pick(p, SVC_MG, &c, 0, &held, &first), LB_BACKEND_OK);
	lb_backend_put(shm, &held);
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(lb_backend_pick(p, SVC_MG, &c, 0, &held, &idx), LB_BACKEND_OK);
		ck_assert_uint_eq(idx, first);
		lb_backend_put(shm, &held);
	}
	want = lb_shm_maglev_pick(ss, AF_INET, hash, picks, 2);
	ck_assert_int_eq(want, (int)first);
	/* The published half being written (as by two rebuilds in a row): no answer from it. */
	atomic_fetch_add(&ss->maglev_seq[gen & 1], 1);
	ck_assert_int_eq(lb_shm_maglev_pick(ss, AF_INET, hash, picks, 2), -EAGAIN);
	/* ... and the picker still finds a backend another way. */
	ck_assert_int_eq(lb_backend_pick(p, SVC_MG, &c, 0, &held, &idx), LB_BACKEND_OK);
	lb_backend_put(shm, &held);
	atomic_fetch_add(&ss->maglev_seq[gen & 1], 1);
	ck_assert_int_eq(lb_shm_maglev_pick(ss, AF_INET, hash, picks, 2), want);
	/* No IPv6 table in a v4-only service. */
	ck_assert_int_eq(lb_shm_maglev_pick(ss, AF_INET6, hash, picks, 2), -EAGAIN);
	lb_backend_picker_free(p);
}
END_TEST

/* A burst of state changes costs one rebuild per interval, and says when the next is due. */
START_TEST(test_maglev_refresh_coalesces)
{
	struct lb_shm_service *ss = &shm->services[SVC_MG];
	uint32_t gen = atomic_load(&ss->maglev_gen);
	const uint64_t all = UINT64_MAX;

	lb_shm_set_weight(shm, cfg, SVC_MG, 0, 3, "test");
	ck_assert_uint_eq(lb_shm_maglev_refresh(shm, cfg, 1000, 100, all), 0);
	ck_assert_uint_eq(atomic_load(&ss->maglev_gen), gen + 1);
	for (unsigned int w = 4; w < 50; w++)
		lb_shm_set_weight(shm, cfg, SVC_MG, 0, w, "test");
	ck_assert_uint_eq(lb_shm_maglev_refresh(shm, cfg, 1030, 100, all), 70);
	ck_assert_uint_eq(lb_shm_maglev_refresh(shm, cfg, 1090, 100, all), 10);
	ck_assert_uint_eq(atomic_load(&ss->maglev_gen), gen + 1);
	ck_assert_uint_eq(lb_shm_maglev_refresh(shm, cfg, 1100, 100, all), 0);
	ck_assert_uint_eq(atomic_load(&ss->maglev_gen), gen + 2);
	/* Nothing changed since: nothing to do, nothing due. */
	ck_assert_uint_eq(lb_shm_maglev_refresh(shm, cfg, 1300, 100, all), 0);
	ck_assert_uint_eq(atomic_load(&ss->maglev_gen), gen + 2);
}
END_TEST

/*
 * A build in small steps: the published table stays the old one (and its
 * half readable) until the last step, and the result is the one-shot
 * build's.
 */
START_TEST(test_maglev_refresh_steps)
{
	struct lb_shm_service *ss = &shm->services[SVC_MG];
	uint32_t gen = atomic_load(&ss->maglev_gen), m = ss->maglev_size;
	uint64_t keys[2] = { lb_shm_backend(shm, SVC_MG, 0)->key, lb_shm_backend(shm, SVC_MG, 1)->key };
	uint32_t weights[2] = { 1, 7 };
	uint16_t *want = calloc(m, sizeof(*want));
	struct lb_pick picks[2] = { { .weight = 1 }, { .weight = 1 } };
	int steps = 0;

	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(lb_balance_maglev_build(keys, weights, 2, want, m), 0);
	lb_shm_set_weight(shm, cfg, SVC_MG, 1, 7, "test");
	while (lb_shm_maglev_refresh(shm, cfg, 5000 + steps, 0, 1000) == 1) {
		steps++;
		ck_assert_uint_eq(atomic_load(&ss->maglev_gen), gen);
		ck_assert_int_ge(lb_shm_maglev_pick(ss, AF_INET, 12345, picks, 2), 0);
		ck_assert_int_lt(steps, 100000);
	}
	ck_assert_int_gt(steps, 10);
	ck_assert_uint_eq(atomic_load(&ss->maglev_gen), gen + 1);
	ck_assert_mem_eq(lb_shm_maglev_table(ss, AF_INET), want, m * sizeof(*want));
	free(want);
}
END_TEST

/*
 * tcp+udp: a client's connections and flows meet on one backend whatever
 * the scheduler (round robin here); other clients still rotate; a backend
 * that went out is left and the client remembered elsewhere.
 */
START_TEST(test_affinity)
{
	struct lb_backend_picker *p = lb_backend_picker_alloc(cfg, shm, 0, 1);
	union lb_sockaddr x = client("198.18.0.10:40000"), y = client("198.18.0.11:40000");
	unsigned int first, idx, other;
	uint32_t held;

	ck_assert_int_eq(lb_backend_pick(p, SVC_BOTH, &x, 0, &held, &first), LB_BACKEND_OK);
	lb_backend_put(shm, &held);
	ck_assert_int_eq(lb_backend_pick(p, SVC_BOTH, &y, 0, &held, &other), LB_BACKEND_OK);
	lb_backend_put(shm, &held);
	ck_assert_uint_ne(other, first);
	for (int i = 0; i < 10; i++) {
		x.in.sin_port = htons(40001 + i);
		ck_assert_int_eq(lb_backend_pick(p, SVC_BOTH, &x, 0, &held, &idx), LB_BACKEND_OK);
		ck_assert_uint_eq(idx, first);
		lb_backend_put(shm, &held);
	}
	lb_shm_set_admin(shm, cfg, SVC_BOTH, first, LB_ADMIN_DRAIN, "test");
	ck_assert_int_eq(lb_backend_pick(p, SVC_BOTH, &x, 0, &held, &idx), LB_BACKEND_OK);
	ck_assert_uint_eq(idx, other);
	lb_backend_put(shm, &held);
	lb_shm_set_admin(shm, cfg, SVC_BOTH, first, LB_ADMIN_UP, "test");
	ck_assert_int_eq(lb_backend_pick(p, SVC_BOTH, &x, 0, &held, &idx), LB_BACKEND_OK);
	ck_assert_uint_eq(idx, other);
	lb_backend_put(shm, &held);
	lb_backend_picker_free(p);
}
END_TEST

/* The table alone: expiry, and an entry rewritten under a reader never reads as another key's. */
START_TEST(test_affinity_table)
{
	size_t size = lb_affinity_size(4);
	struct lb_affinity *a = calloc(1, size);

	ck_assert_ptr_nonnull(a);
	lb_affinity_init(a, size);
	ck_assert_uint_eq(a->mask + 1, LB_AFFINITY_WINDOW);
	ck_assert_uint_eq(lb_affinity_get(a, 1, 100), 0);
	lb_affinity_set(a, 1, 7, 200);
	ck_assert_uint_eq(lb_affinity_get(a, 1, 100), 7);
	ck_assert_uint_eq(lb_affinity_get(a, 1, 200), 7);
	ck_assert_uint_eq(lb_affinity_get(a, 1, 201), 0);
	lb_affinity_set(a, 1, 9, 300);
	ck_assert_uint_eq(lb_affinity_get(a, 1, 250), 9);
	/* A full window gives up the entry that expires first. */
	for (uint64_t k = 2; k < 2 + LB_AFFINITY_WINDOW; k++)
		lb_affinity_set(a, k, (uint32_t)k, 1000 + (uint32_t)k);
	ck_assert_uint_eq(lb_affinity_get(a, 1, 250), 0);
	ck_assert_uint_eq(lb_affinity_get(a, 5, 250), 5);
	free(a);
}
END_TEST

int main(void)
{
	return lb_test_main("backend", setup, teardown, 60,
			    LB_TESTS(test_pick_claims_and_put_gives_back,
				     test_pick_family_and_states, test_lost_race_never_excludes,
				     test_ledger_settle, test_passive_health,
				     test_maglev_consistent_read, test_maglev_refresh_coalesces,
				     test_maglev_refresh_steps, test_affinity, test_affinity_table));
}
