// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The bucket table of gateway ownership (lb/owner.h). Maglev fills the
 * owners, as lb fills a service's backend table: near-even shares (a peer
 * owns B/n buckets, give or take one) and few moves when a peer comes or
 * goes. Maglev also moves a few buckets between peers that stay (about
 * 0.2% of them with B 4093 and three peers); the previous owner covers
 * those as it covers the peer that left.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/balance.h"
#include "lb/hash.h"
#include "lb/owner.h"

int lb_owner_table_init(struct lb_owner_table *t, uint32_t buckets)
{
	memset(t, 0, sizeof(*t));
	if (!lb_balance_is_prime(buckets))
		return -EINVAL;
	t->owner = malloc(buckets * sizeof(*t->owner));
	t->prev = malloc(buckets * sizeof(*t->prev));
	t->scratch = malloc(buckets * sizeof(*t->scratch));
	if (!t->owner || !t->prev || !t->scratch) {
		lb_owner_table_fini(t);
		return -ENOMEM;
	}
	t->buckets = buckets;
	for (uint32_t b = 0; b < buckets; b++)
		t->owner[b] = t->prev[b] = LB_OWNER_NONE;
	return 0;
}

void lb_owner_table_fini(struct lb_owner_table *t)
{
	free(t->owner);
	free(t->prev);
	free(t->scratch);
	memset(t, 0, sizeof(*t));
}

uint64_t lb_owner_key(const char *name)
{
	return lb_hash_mix64(lb_hash_fnv1a(LB_HASH_FNV_BASIS, name, strlen(name)));
}

static bool has(uint64_t mask, uint16_t k)
{
	return k != LB_OWNER_NONE && k < 64 && (mask >> k & 1);
}

int lb_owner_table_update(struct lb_owner_table *t, const uint64_t *keys, size_t n,
			  uint64_t serving, uint64_t holding)
{
	uint32_t weights[LB_OWNER_PEERS_MAX];
	int moved = 0, ret;

	if (n > LB_OWNER_PEERS_MAX || !t->owner)
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		weights[k] = serving >> k & 1;
	/* No weight at all leaves every entry LB_MAGLEV_EMPTY, which is LB_OWNER_NONE. */
	ret = lb_balance_maglev_build(keys, weights, n, t->scratch, t->buckets);
	if (ret < 0)
		return ret;
	holding |= serving;
	for (uint32_t b = 0; b < t->buckets; b++) {
		uint16_t next = t->scratch[b];

		if (next != t->owner[b]) {
			/* An older previous owner stays while it holds connections. */
			if (has(holding, t->owner[b]))
				t->prev[b] = t->owner[b];
			t->owner[b] = next;
			moved++;
		}
		if (t->prev[b] != LB_OWNER_NONE &&
		    (t->prev[b] == t->owner[b] || !has(holding, t->prev[b])))
			t->prev[b] = LB_OWNER_NONE;
	}
	return moved;
}

void lb_owner_table_verdicts(const struct lb_owner_table *t, size_t self, uint16_t *to,
			     uint16_t *chance)
{
	for (uint32_t b = 0; b < t->buckets; b++) {
		uint16_t o = t->owner[b];

		if (o == self || o == LB_OWNER_NONE) {
			to[b] = LB_OWNER_NONE;
			chance[b] = t->prev[b] == self ? LB_OWNER_NONE : t->prev[b];
		} else {
			to[b] = o;
			chance[b] = o;
		}
	}
}

void lb_owner_table_count(const struct lb_owner_table *t, size_t n, uint32_t *owned,
			  uint32_t *previous)
{
	memset(owned, 0, n * sizeof(*owned));
	memset(previous, 0, n * sizeof(*previous));
	for (uint32_t b = 0; b < t->buckets; b++) {
		if (t->owner[b] < n)
			owned[t->owner[b]]++;
		if (t->prev[b] < n)
			previous[t->prev[b]]++;
	}
}
