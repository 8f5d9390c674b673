// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/backend.h"
#include "lb/balance.h"
#include "lb/hash.h"
#include "lb/log.h"
#include "lb/loop.h"

/*
 * A scan that sees a free slot can lose it to another worker before its
 * claim; it then looks again. Slots may keep freeing and filling under it,
 * so the look-again is bounded: past this many, report the service full
 * (the caller queues and retries) rather than spin.
 */
#define CLAIM_ROUNDS 8

/* Per service scheduling state of one worker. */
struct sched {
	int64_t *swrr;			/* n_backends current weights */
	unsigned int rr;
	uint64_t key;			/* tcp+udp: its name's hash, for the affinity table */
};

struct lb_backend_picker {
	const struct lb_config *cfg;
	struct lb_shm *shm;
	struct sched *sched;		/* one per service */
	struct lb_pick *picks;		/* scratch: one per backend of the largest service */
	uint64_t rng;
};

static uint64_t name_hash(const char *s)
{
	return lb_hash_fnv1a(LB_HASH_FNV_BASIS, s, strlen(s));
}

struct lb_backend_picker *lb_backend_picker_alloc(const struct lb_config *cfg, struct lb_shm *shm,
						  unsigned int id, uint64_t seed)
{
	struct lb_backend_picker *p = calloc(1, sizeof(*p));
	size_t max = 1;

	if (!p)
		return NULL;
	p->cfg = cfg;
	p->shm = shm;
	p->rng = seed | 1;
	p->sched = calloc(cfg->n_services, sizeof(*p->sched));
	if (!p->sched)
		goto fail;
	for (size_t i = 0; i < cfg->n_services; i++) {
		size_t n = cfg->services[i].n_backends;

		p->sched[i].swrr = calloc(n ? n : 1, sizeof(*p->sched[i].swrr));
		if (!p->sched[i].swrr)
			goto fail;
		/* Start each worker's rotation elsewhere so shards interleave. */
		p->sched[i].rr = id;
		p->sched[i].key = name_hash(cfg->services[i].name);
		if (n > max)
			max = n;
	}
	p->picks = calloc(max, sizeof(*p->picks));
	if (!p->picks)
		goto fail;
	return p;
fail:
	lb_backend_picker_free(p);
	errno = ENOMEM;
	return NULL;
}

void lb_backend_picker_free(struct lb_backend_picker *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->sched && i < p->cfg->n_services; i++)
		free(p->sched[i].swrr);
	free(p->sched);
	free(p->picks);
	free(p);
}

/*
 * Takes one connection on b unless that would pass max_conns. A compare
 * and swap, not an add then an undo: a claim that loses a race never
 * makes the count overshoot, so no other worker sees a full backend that
 * is not.
 */
static bool claim(struct lb_shm_backend *b)
{
	int64_t cur;

	if (!b->max_conns) {
		atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
		return true;
	}
	cur = atomic_load_explicit(&b->active, memory_order_relaxed);
	while (cur < (int64_t)b->max_conns)
		if (atomic_compare_exchange_weak_explicit(&b->active, &cur, cur + 1,
							  memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

/*
 * Fills p->picks for service si: weight 0 for what must not be picked.
 * Returns true when any candidate has weight; *full tells that some usable
 * backend was left out only for being at max_conns.
 */
static bool candidates(struct lb_backend_picker *p, size_t si, int family, uint64_t exclude,
		       bool *full)
{
	size_t n = p->cfg->services[si].n_backends;
	bool any = false;

	for (size_t j = 0; j < n; j++) {
		struct lb_shm_backend *b = lb_shm_backend(p->shm, si, j);
		int64_t active = atomic_load_explicit(&b->active, memory_order_relaxed);
		uint32_t weight = 0;

		if (b->addr.sa.sa_family == family && lb_shm_backend_usable(b) &&
		    !(j < 64 && (exclude >> j) & 1)) {
			if (b->max_conns && active >= (int64_t)b->max_conns)
				*full = true;
			else
				weight = atomic_load_explicit(&b->weight, memory_order_relaxed);
		}
		p->picks[j] = (struct lb_pick){ .weight = weight, .active = active };
		any |= weight > 0;
	}
	return any;
}

static int schedule(struct lb_backend_picker *p, size_t si, const union lb_sockaddr *client)
{
	const struct lb_service_conf *svc = &p->cfg->services[si];
	struct sched *s = &p->sched[si];
	size_t n = svc->n_backends;
	int idx;

	switch (svc->sched) {
	case LB_SCHED_LEASTCONN:
		return lb_balance_leastconn(p->picks, n, &s->rr);
	case LB_SCHED_RANDOM2:
		return lb_balance_random2(p->picks, n, &p->rng);
	case LB_SCHED_MAGLEV:
		idx = lb_shm_maglev_pick(&p->shm->services[si], client->sa.sa_family,
					 lb_balance_hash_client(client, svc->hash_port), p->picks, n);
		if (idx != -EAGAIN)
			return idx;
		/* No table of this family (or it kept changing under us). */
		return lb_balance_swrr(p->picks, n, s->swrr);
	case LB_SCHED_ROUNDROBIN:
		break;
	}
	return lb_balance_swrr(p->picks, n, s->swrr);
}

/* The affinity key of a client (its address, not its port) in service si. */
static uint64_t affinity_key(const struct lb_backend_picker *p, size_t si,
			     const union lb_sockaddr *client)
{
	union lb_sockaddr a = *client;

	lb_addr_set_port(&a, 0);
	return p->sched[si].key ^ lb_balance_hash_client(&a, false);
}

/*
 * A tcp+udp service: the backend this client was sent to lately, when it
 * may still take it. Returns its index, or -1 to schedule afresh.
 */
static int affine(struct lb_backend_picker *p, size_t si, const union lb_sockaddr *client,
		  uint64_t exclude, uint32_t now)
{
	uint32_t slot1 = lb_affinity_get(p->shm->pool->affinity, affinity_key(p, si, client), now);
	const struct lb_shm_service *ss = &p->shm->services[si];

	for (size_t j = 0; slot1 && j < ss->n_backends; j++) {
		const struct lb_shm_backend *b = &p->shm->backends[ss->slots[j]];

		if (ss->slots[j] + 1 != slot1)
			continue;
		if (b->addr.sa.sa_family != client->sa.sa_family || !lb_shm_backend_usable(b) ||
		    (j < 64 && (exclude >> j) & 1))
			return -1;
		return (int)j;
	}
	return -1;
}

/* Backend i of service si is claimed for client: counts it and, if sticky, remembers it. */
static enum lb_backend_result granted(struct lb_backend_picker *p, size_t si, unsigned int i,
				      const union lb_sockaddr *client, bool sticky, uint32_t now,
				      uint32_t *held, unsigned int *idx)
{
	const struct lb_service_conf *svc = &p->cfg->services[si];

	*held = p->shm->services[si].slots[i] + 1;
	atomic_fetch_add_explicit(&lb_shm_backend(p->shm, si, i)->total, 1, memory_order_relaxed);
	*idx = i;
	if (sticky)
		lb_affinity_set(p->shm->pool->affinity, affinity_key(p, si, client), *held,
				now + (svc->udp_idle_timeout_ms + 999) / 1000);
	return LB_BACKEND_OK;
}

enum lb_backend_result lb_backend_pick(struct lb_backend_picker *p, size_t service,
				       const union lb_sockaddr *client, uint64_t exclude,
				       uint32_t *held, unsigned int *idx)
{
	const struct lb_service_conf *svc = &p->cfg->services[service];
	bool sticky = svc->protocols == (LB_PROTO_TCP | LB_PROTO_UDP);
	uint32_t now = (uint32_t)(lb_clock_ms() / 1000);
	bool full = false;

	if (sticky) {
		int j = affine(p, service, client, exclude, now);

		/* Full: the client waits for its backend rather than split. */
		if (j >= 0)
			return claim(lb_shm_backend(p->shm, service, j)) ?
			       granted(p, service, j, client, true, now, held, idx) : LB_BACKEND_FULL;
	}

	for (int round = 0; round < CLAIM_ROUNDS; round++) {
		struct lb_shm_backend *b;
		int i;

		if (!candidates(p, service, client->sa.sa_family, exclude, &full))
			return full ? LB_BACKEND_FULL : LB_BACKEND_NONE;
		i = schedule(p, service, client);
		if (i < 0)
			return LB_BACKEND_NONE;
		b = lb_shm_backend(p->shm, service, i);
		if (!claim(b)) {
			/* Another worker took its last slot since the scan: look again. */
			full = true;
			continue;
		}
		return granted(p, service, i, client, sticky, now, held, idx);
	}
	return LB_BACKEND_FULL;
}

void lb_backend_claim(struct lb_shm *shm, size_t service, unsigned int idx, uint32_t *held)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, service, idx);

	atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&b->total, 1, memory_order_relaxed);
	*held = shm->services[service].slots[idx] + 1;
}

struct lb_shm_backend *lb_backend_held(const struct lb_shm *shm, uint32_t held)
{
	return &shm->backends[held - 1];
}

void lb_backend_put(struct lb_shm *shm, uint32_t *held)
{
	uint32_t h = *held;

	if (!h)
		return;
	/* Cleared first: a death between the two leaks one count, never gives one twice. */
	*held = 0;
	atomic_fetch_sub_explicit(&lb_backend_held(shm, h)->active, 1, memory_order_relaxed);
}

bool lb_backend_connect_failed(struct lb_backend_picker *p, size_t service, unsigned int idx,
			       int err)
{
	const struct lb_service_conf *svc = &p->cfg->services[service];
	struct lb_shm_backend *b = lb_shm_backend(p->shm, service, idx);
	char buf[LB_ADDR_STRLEN], reason[128];
	uint32_t fails;

	atomic_fetch_add_explicit(&b->connect_failures, 1, memory_order_relaxed);
	fails = atomic_fetch_add(&b->consecutive_failures, 1) + 1;
	lb_debug("service %s: connect to %s failed: %s", svc->name,
		 lb_addr_format(&b->addr, buf, sizeof(buf)), strerror(err));
	if (fails != svc->health.fall)
		return false;
	snprintf(reason, sizeof(reason), "passive: %u consecutive connect failures, last: %s", fails,
		 strerror(err));
	return lb_shm_set_health(p->shm, p->cfg, service, idx, LB_HEALTH_DOWN, reason);
}

void lb_backend_connected(struct lb_shm_backend *b)
{
	if (atomic_load_explicit(&b->consecutive_failures, memory_order_relaxed))
		atomic_store_explicit(&b->consecutive_failures, 0, memory_order_relaxed);
}
