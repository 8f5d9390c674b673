// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "lb/clients.h"

#define COUNT_BITS 24
#define COUNT_MASK ((1ull << COUNT_BITS) - 1)
#define NONE UINT32_MAX
/* Compare-and-swaps lost to other workers before a connection goes uncounted. */
#define TRIES 8

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

size_t lb_clients_size(uint32_t n)
{
	uint64_t entries = LB_CLIENTS_WINDOW;

	while (entries < (uint64_t)n * 2 && entries < (1ull << 30))
		entries <<= 1;
	return sizeof(struct lb_clients) + entries * sizeof(struct lb_clients_entry);
}

void lb_clients_init(struct lb_clients *t, size_t size)
{
	size_t entries = (size - sizeof(*t)) / sizeof(struct lb_clients_entry);

	while (entries & (entries - 1))
		entries &= entries - 1;
	t->mask = (uint32_t)(entries - 1);
}

uint32_t lb_clients_service_key(const char *name)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

/* What identifies a client of a service: "what" and the address words. */
struct ident {
	uint64_t what;
	uint64_t addr[2];
};

static bool ident_of(uint32_t service, const union lb_sockaddr *a, struct ident *id)
{
	memset(id, 0, sizeof(*id));
	if (a->sa.sa_family == AF_INET)
		memcpy(id->addr, &a->in.sin_addr, 4);
	else if (a->sa.sa_family == AF_INET6)
		memcpy(id->addr, &a->in6.sin6_addr, 16);
	else
		return false;
	id->what = (uint64_t)service << 32 | (uint16_t)a->sa.sa_family;
	return true;
}

static uint64_t hash_of(const struct ident *id)
{
	return mix(id->what ^ mix(id->addr[0] ^ mix(id->addr[1] + 0x9e3779b97f4a7c15ull)));
}

/* The tag an ident is counted under: 40 bits of its hash, never 0. */
static uint64_t tag_of(uint64_t h)
{
	uint64_t tag = mix(h) >> COUNT_BITS;

	return tag ? tag : 1;
}

int lb_clients_take(struct lb_clients *t, uint32_t service, const union lb_sockaddr *client,
		    unsigned int max, uint32_t *held)
{
	struct ident id;
	uint64_t h, tag;
	uint32_t start;

	*held = 0;
	if (!ident_of(service, client, &id))
		return -EAFNOSUPPORT;
	h = hash_of(&id);
	tag = tag_of(h);
	start = (uint32_t)h & t->mask;
	for (int tries = 0; tries < TRIES; tries++) {
		uint32_t first = NONE, empty = NONE;
		uint64_t sum = 0, seen = 0;

		/*
		 * The whole window: a client is normally in one entry, but two
		 * workers taking its first connection while a third frees a
		 * nearer entry can each make one. The cap counts them all.
		 */
		for (uint32_t i = 0; i < LB_CLIENTS_WINDOW; i++) {
			uint32_t s = (start + i) & t->mask;
			uint64_t w = atomic_load(&t->e[s].word);

			if (!w) {
				if (empty == NONE)
					empty = s;
			} else if (w >> COUNT_BITS == tag) {
				sum += w & COUNT_MASK;
				if (first == NONE) {
					first = s;
					seen = w;
				}
			}
		}
		if (max && sum >= max)
			return -EDQUOT;
		if (first != NONE) {
			if ((seen & COUNT_MASK) == COUNT_MASK)
				return -ENOSPC;
			if (atomic_compare_exchange_strong(&t->e[first].word, &seen, seen + 1)) {
				*held = first + 1;
				return 0;
			}
			continue;
		}
		if (empty == NONE)
			return -ENOSPC;
		seen = 0;
		if (atomic_compare_exchange_strong(&t->e[empty].word, &seen, tag << COUNT_BITS | 1)) {
			/* Readers check these against the tag: a half-written one is skipped. */
			atomic_store_explicit(&t->e[empty].what, id.what, memory_order_relaxed);
			atomic_store_explicit(&t->e[empty].addr[0], id.addr[0], memory_order_relaxed);
			atomic_store_explicit(&t->e[empty].addr[1], id.addr[1], memory_order_release);
			*held = empty + 1;
			return 0;
		}
	}
	return -ENOSPC;
}

void lb_clients_put(struct lb_clients *t, uint32_t *held)
{
	uint32_t s = *held - 1;
	uint64_t w, next;

	if (!*held || s > t->mask)
		return;
	*held = 0;
	w = atomic_load(&t->e[s].word);
	do {
		/* Held by us: never 0 here. The last one frees the entry in the same swap. */
		if (!(w & COUNT_MASK))
			return;
		next = (w & COUNT_MASK) == 1 ? 0 : w - 1;
	} while (!atomic_compare_exchange_weak(&t->e[s].word, &w, next));
}

unsigned int lb_clients_settle(struct lb_clients *t, uint32_t *ledger, unsigned int n)
{
	unsigned int settled = 0;

	for (unsigned int i = 0; ledger && i < n; i++) {
		if (!ledger[i])
			continue;
		lb_clients_put(t, &ledger[i]);
		settled++;
	}
	return settled;
}

unsigned int lb_clients_count(struct lb_clients *t, uint32_t service,
			      const union lb_sockaddr *client)
{
	struct ident id;
	uint64_t h, tag, sum = 0;

	if (!ident_of(service, client, &id))
		return 0;
	h = hash_of(&id);
	tag = tag_of(h);
	for (uint32_t i = 0; i < LB_CLIENTS_WINDOW; i++) {
		uint64_t w = atomic_load(&t->e[((uint32_t)h + i) & t->mask].word);

		if (w && w >> COUNT_BITS == tag)
			sum += w & COUNT_MASK;
	}
	return (unsigned int)sum;
}

/* Entry s as (ident, count), or false when free or being rewritten. */
static bool entry_read(struct lb_clients *t, uint32_t s, struct ident *id, unsigned int *count)
{
	struct lb_clients_entry *e = &t->e[s];
	uint64_t w = atomic_load_explicit(&e->word, memory_order_acquire);

	if (!w)
		return false;
	id->addr[1] = atomic_load_explicit(&e->addr[1], memory_order_acquire);
	id->addr[0] = atomic_load_explicit(&e->addr[0], memory_order_relaxed);
	id->what = atomic_load_explicit(&e->what, memory_order_relaxed);
	*count = (unsigned int)(w & COUNT_MASK);
	/* What the entry says must be what its tag was made from, and still in it. */
	return tag_of(hash_of(id)) == w >> COUNT_BITS &&
	       atomic_load_explicit(&e->word, memory_order_acquire) >> COUNT_BITS == w >> COUNT_BITS;
}

size_t lb_clients_top(struct lb_clients *t, uint32_t service, struct lb_clients_top *out,
		      size_t n)
{
	size_t have = 0;

	for (uint64_t s = 0; n && s <= t->mask; s++) {
		struct lb_clients_top cand = { 0 };
		unsigned int count;
		struct ident id;
		size_t at;

		if (!entry_read(t, (uint32_t)s, &id, &count) || !count ||
		    (uint32_t)(id.what >> 32) != service)
			continue;
		cand.addr.sa.sa_family = (sa_family_t)(id.what & 0xffff);
		if (cand.addr.sa.sa_family == AF_INET)
			memcpy(&cand.addr.in.sin_addr, id.addr, 4);
		else
			memcpy(&cand.addr.in6.sin6_addr, id.addr, 16);
		cand.conns = count;
		/* A client counted in two entries (see lb_clients_take) is one line. */
		for (at = 0; at < have; at++)
			if (lb_addr_equal(&out[at].addr, &cand.addr))
				break;
		if (at < have) {
			cand.conns += out[at].conns;
			memmove(&out[at], &out[at + 1], (have - at - 1) * sizeof(*out));
			have--;
		}
		for (at = have; at > 0 && out[at - 1].conns < cand.conns; at--)
			;
		if (at >= n)
			continue;
		if (have == n)
			have--;
		memmove(&out[at + 1], &out[at], (have - at) * sizeof(*out));
		out[at] = cand;
		have++;
	}
	return have;
}
