// SPDX-License-Identifier: GPL-2.0-or-later
#include "lb/affinity.h"
#include "lb/hash.h"

#define BUSY 1ull

/* A key's tag: never 0 (empty) nor BUSY. */
static uint64_t tag_of(uint64_t key)
{
	uint64_t t = lb_hash_mix64(key);

	return t > BUSY ? t : t + 2;
}

size_t lb_affinity_size(uint32_t n)
{
	uint64_t entries = LB_AFFINITY_WINDOW;

	while (entries < (uint64_t)n * 2 && entries < (1ull << 30))
		entries <<= 1;
	return sizeof(struct lb_affinity) + entries * sizeof(struct lb_affinity_entry);
}

void lb_affinity_init(struct lb_affinity *a, size_t size)
{
	size_t entries = (size - sizeof(*a)) / sizeof(struct lb_affinity_entry);

	while (entries & (entries - 1))
		entries &= entries - 1;
	a->mask = (uint32_t)(entries - 1);
}

static struct lb_affinity_entry *entry(struct lb_affinity *a, uint64_t tag, uint32_t i)
{
	return &a->e[(uint32_t)(tag + i) & a->mask];
}

uint32_t lb_affinity_get(struct lb_affinity *a, uint64_t key, uint32_t now)
{
	uint64_t tag = tag_of(key);

	for (uint32_t i = 0; i < LB_AFFINITY_WINDOW; i++) {
		struct lb_affinity_entry *e = entry(a, tag, i);
		uint64_t val;

		if (atomic_load(&e->tag) != tag)
			continue;
		val = atomic_load(&e->val);
		/* Rewritten for another key meanwhile: its value is not ours. */
		if (atomic_load(&e->tag) != tag)
			return 0;
		return (uint32_t)val >= now ? (uint32_t)(val >> 32) : 0;
	}
	return 0;
}

void lb_affinity_set(struct lb_affinity *a, uint64_t key, uint32_t slot1, uint32_t expires)
{
	uint64_t tag = tag_of(key), val = (uint64_t)slot1 << 32 | expires;
	struct lb_affinity_entry *victim = NULL;
	uint32_t soonest = UINT32_MAX;

	for (uint32_t i = 0; i < LB_AFFINITY_WINDOW; i++) {
		struct lb_affinity_entry *e = entry(a, tag, i);
		uint64_t t = atomic_load(&e->tag);
		uint32_t exp = (uint32_t)atomic_load(&e->val);

		if (t == tag) {
			atomic_store(&e->val, val);
			return;
		}
		if (t == BUSY)
			continue;
		/* Empty first, then what expires first. */
		if (!t)
			exp = 0;
		if (!victim || exp < soonest) {
			victim = e;
			soonest = exp;
		}
	}
	if (victim) {
		uint64_t old = atomic_load(&victim->tag);

		/* Another writer has it: this record can wait for the client's next one. */
		if (old == BUSY || !atomic_compare_exchange_strong(&victim->tag, &old, BUSY))
			return;
		atomic_store(&victim->val, val);
		atomic_store(&victim->tag, tag);
	}
}
