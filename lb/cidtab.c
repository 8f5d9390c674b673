// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdbool.h>

#include "lb/cidtab.h"
#include "lb/hash.h"

#define EMPTY 0ull
#define BUSY 1ull

size_t lb_cidtab_size(uint32_t n)
{
	uint64_t entries = LB_CIDTAB_WINDOW;

	while (entries < (uint64_t)n * 4 && entries < (1ull << 30))
		entries <<= 1;
	return sizeof(struct lb_cidtab) + entries * sizeof(struct lb_cidtab_entry);
}

void lb_cidtab_init(struct lb_cidtab *t, size_t size, uint64_t seed)
{
	size_t entries = (size - sizeof(*t)) / sizeof(struct lb_cidtab_entry);

	while (entries & (entries - 1))
		entries &= entries - 1;
	t->mask = (uint32_t)(entries - 1);
	t->seed = seed;
}

/*
 * Eight octets at a time through a keyed mix: the seed enters first and
 * again with the length, so two tables (or two lb runs) place the same
 * CID differently, and CIDs of two lengths never collide by padding.
 */
uint64_t lb_cidtab_key(const struct lb_cidtab *t, uint64_t space, const uint8_t *cid, size_t len)
{
	uint64_t h = lb_hash_mix64(t->seed ^ space) ^ lb_hash_mix64(t->seed + len);
	size_t i = 0;

	while (i < len) {
		uint64_t w = 0;

		for (size_t k = 0; k < 8 && i < len; k++, i++)
			w |= (uint64_t)cid[i] << (8 * k);
		h = lb_hash_mix64(h ^ lb_hash_mix64(w + t->seed));
	}
	return h > BUSY ? h : h + 2;
}

static struct lb_cidtab_entry *entry(struct lb_cidtab *t, uint64_t key, uint32_t i)
{
	/* The key's high half picks the window: its low half is spent on nothing else. */
	return &t->e[((uint32_t)(key >> 32) + i) & t->mask];
}

/* Reads behind a writer that holds an entry (a few stores long) before calling it a miss. */
#define GET_TRIES 4

uint32_t lb_cidtab_get(struct lb_cidtab *t, uint64_t key, uint32_t now)
{
	for (int try = 0; try < GET_TRIES; try++) {
		bool busy = false;

		for (uint32_t i = 0; i < LB_CIDTAB_WINDOW; i++) {
			struct lb_cidtab_entry *e = entry(t, key, i);
			uint64_t tag = atomic_load(&e->tag), val;

			busy |= tag == BUSY;
			if (tag != key)
				continue;
			val = atomic_load(&e->val);
			/* Taken for another key meanwhile: its value is not ours. */
			if (atomic_load(&e->tag) != key)
				break;
			return (uint32_t)val >= now ? (uint32_t)(val >> 32) : 0;
		}
		if (!busy)
			return 0;
	}
	return 0;
}

/* Writes val into e while it holds key: false when e no longer does. */
static bool rewrite(struct lb_cidtab_entry *e, uint64_t key, uint64_t val)
{
	uint64_t old = key;

	/*
	 * Held as "being written" around the store, not stored in place: a
	 * writer that found the entry expired may take it for another key
	 * between our look and our store, and must not get our value.
	 */
	if (!atomic_compare_exchange_strong(&e->tag, &old, BUSY))
		return false;
	atomic_store(&e->val, val);
	atomic_store(&e->tag, key);
	return true;
}

int lb_cidtab_set(struct lb_cidtab *t, uint64_t key, uint32_t slot1, uint32_t expires, uint32_t now)
{
	uint64_t val = (uint64_t)slot1 << 32 | expires;
	bool busy = false;

	for (uint32_t i = 0; i < LB_CIDTAB_WINDOW; i++) {
		struct lb_cidtab_entry *e = entry(t, key, i);

		if (atomic_load(&e->tag) == key && rewrite(e, key, val))
			return 0;
	}
	for (uint32_t i = 0; i < LB_CIDTAB_WINDOW; i++) {
		struct lb_cidtab_entry *e = entry(t, key, i);
		uint64_t old = atomic_load(&e->tag);

		if (old == BUSY) {
			busy = true;
			continue;
		}
		if (old != EMPTY && (uint32_t)atomic_load(&e->val) >= now)
			continue;
		/*
		 * Empty or expired: ours once the tag says "being written", so a
		 * reader never pairs the old key with the new value. Losing the
		 * race to another writer moves on to the next entry.
		 */
		if (!atomic_compare_exchange_strong(&e->tag, &old, BUSY))
			continue;
		atomic_store(&e->val, val);
		atomic_store(&e->tag, key);
		/*
		 * Another process may have placed the same key elsewhere in the
		 * window at the same time: both name the same backend (one server
		 * issued the CID), readers take the first, and refreshes update
		 * the first, so the other merely expires.
		 */
		return 0;
	}
	return busy ? -EAGAIN : -ENOSPC;
}

size_t lb_cidtab_count(struct lb_cidtab *t, uint32_t now)
{
	size_t n = 0;

	for (uint64_t i = 0; i <= t->mask; i++) {
		uint64_t tag = atomic_load_explicit(&t->e[i].tag, memory_order_relaxed);

		if (tag > BUSY && (uint32_t)atomic_load_explicit(&t->e[i].val, memory_order_relaxed) >= now)
			n++;
	}
	return n;
}
