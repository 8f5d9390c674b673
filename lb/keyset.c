// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdbool.h>

#include "lb/hash.h"
#include "lb/keyset.h"

#define OWNER_BITS 16
#define OWNER_MASK ((1ull << OWNER_BITS) - 1)

/* The tag a key is kept under: its hash's top 48 bits, never all zero. */
static uint64_t tag_of(uint64_t key)
{
	uint64_t tag = lb_hash_mix64(key) & ~OWNER_MASK;

	return tag ? tag : 1ull << OWNER_BITS;
}

size_t lb_keyset_size(uint32_t n)
{
	uint64_t slots = LB_KEYSET_WINDOW;

	while (slots < (uint64_t)n * 4 && slots < (1ull << 31))
		slots <<= 1;
	return sizeof(struct lb_keyset) + slots * sizeof(uint64_t);
}

void lb_keyset_init(struct lb_keyset *ks, size_t size)
{
	size_t slots = (size - sizeof(*ks)) / sizeof(uint64_t);

	/* A power of two by lb_keyset_size; round down if handed another size. */
	while (slots & (slots - 1))
		slots &= slots - 1;
	ks->mask = (uint32_t)(slots - 1);
}

/* Whether tag is in the window at start, other than at skip. */
static bool held(struct lb_keyset *ks, uint32_t start, uint64_t tag, uint64_t skip)
{
	for (uint32_t i = 0; i < LB_KEYSET_WINDOW; i++) {
		uint32_t s = (start + i) & ks->mask;

		if (s != skip && (atomic_load(&ks->slot[s]) & ~OWNER_MASK) == tag)
			return true;
	}
	return false;
}

int lb_keyset_insert(struct lb_keyset *ks, uint64_t key, uint16_t owner, uint32_t *where)
{
	uint64_t tag = tag_of(key), mine = tag | ((uint64_t)owner + 1);
	uint32_t start = (uint32_t)(lb_hash_mix64(tag) & ks->mask);

	if (owner == OWNER_MASK)
		return -EINVAL;
	if (held(ks, start, tag, UINT64_MAX))
		return -EEXIST;
	for (uint32_t i = 0; i < LB_KEYSET_WINDOW; i++) {
		uint32_t s = (start + i) & ks->mask;
		uint64_t empty = 0;

		if (!atomic_compare_exchange_strong(&ks->slot[s], &empty, mine))
			continue;
		/*
		 * Another insert of the same key may have placed it at the same
		 * time. Both stores come before both scans (sequentially
		 * consistent), so at least one of the two sees the other, and
		 * whoever sees another copy backs off: two may both lose, never
		 * both win.
		 */
		if (held(ks, start, tag, s)) {
			atomic_store(&ks->slot[s], 0);
			return -EEXIST;
		}
		*where = s;
		return 0;
	}
	return -ENOSPC;
}

void lb_keyset_remove(struct lb_keyset *ks, uint32_t where, uint64_t key, uint16_t owner)
{
	uint64_t mine = tag_of(key) | ((uint64_t)owner + 1);

	atomic_compare_exchange_strong(&ks->slot[where & ks->mask], &mine, 0);
}

unsigned int lb_keyset_purge(struct lb_keyset *ks, const uint64_t *dead, size_t n_owners)
{
	unsigned int n = 0;

	for (uint64_t s = 0; s <= ks->mask; s++) {
		uint64_t v = atomic_load_explicit(&ks->slot[s], memory_order_relaxed);
		uint64_t owner = (v & OWNER_MASK) - 1;

		if (v && owner < n_owners && (dead[owner / 64] >> (owner % 64) & 1) &&
		    atomic_compare_exchange_strong(&ks->slot[s], &v, 0))
			n++;
	}
	return n;
}
