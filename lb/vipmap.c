// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lb/bigmem.h"
#include "lb/hash.h"
#include "lb/vipmap.h"

#define NONE UINT32_MAX
/* VIPs whose bucket is fetched ahead of the one entered (lb_vipmap_build). */
#define PREFETCH_AHEAD 8

/* A VIP entered, chained with the others of the same (family, prefix). */
struct entry {
	struct lb_vipmap_vip vip;
	uint64_t hash;
	uint32_t next;			/* the next entry of the same key, or NONE */
};

/*
 * The first entry of a key, or NONE, with the high half of the key's
 * hash: a probe that passes other keys reads no entry (100,000 VIPs'
 * entries are 6 MB, and each read was a cache miss).
 */
struct bucket {
	uint32_t entry, tag;
};

struct lb_vipmap {
	struct entry *entries;
	uint32_t n;
	size_t cap;			/* entries allocated */
	struct bucket *buckets;		/* open addressing */
	uint32_t mask;
	/* The prefix lengths in use, longest first, per family (0: IPv4, 1: IPv6). */
	uint8_t plens[2][129];
	unsigned int n_plens[2];
};

static size_t fam(const union lb_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6;
}

static unsigned char *addr_bytes(union lb_sockaddr *a, size_t *len)
{
	if (a->sa.sa_family == AF_INET6) {
		*len = 16;
		return a->in6.sin6_addr.s6_addr;
	}
	*len = 4;
	return (unsigned char *)&a->in.sin_addr;
}

void lb_vipmap_mask(union lb_sockaddr *a, unsigned int plen)
{
	size_t len;
	unsigned char *p = addr_bytes(a, &len);

	for (size_t i = 0; i < len; i++) {
		unsigned int keep = plen >= 8 * (i + 1) ? 8 : plen > 8 * i ? plen - 8 * i : 0;

		p[i] &= (unsigned char)(0xff00u >> keep);
	}
}

/* The key of a (family, prefix length, masked address). */
static uint64_t key_hash(const union lb_sockaddr *masked, unsigned int plen)
{
	union lb_sockaddr a = *masked;
	size_t len;
	const unsigned char *p = addr_bytes(&a, &len);
	uint64_t h = lb_hash_fnv1a(LB_HASH_FNV_BASIS ^ (plen << 1 | fam(masked)), p, len);

	/*
	 * A multiply carries bits only upwards: the low bits that pick the
	 * bucket would see only the addresses' low bits, and 100,000 VIPs
	 * of one /16 probed long runs (a third of parsing their config).
	 */
	return lb_hash_mix64(h);
}

static bool same_prefix(const union lb_sockaddr *a, const union lb_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET6)
		return !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);
	return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
}

/* The first entry of key (masked, plen), or NONE. */
static uint32_t chain(const struct lb_vipmap *m, const union lb_sockaddr *masked, unsigned int plen,
		      uint64_t hash, struct bucket **slot)
{
	for (uint32_t b = (uint32_t)hash & m->mask;; b = (b + 1) & m->mask) {
		uint32_t e = m->buckets[b].entry;

		if (e == NONE || (m->buckets[b].tag == (uint32_t)(hash >> 32) &&
				  m->entries[e].hash == hash && m->entries[e].vip.plen == plen &&
				  same_prefix(&m->entries[e].vip.addr, masked))) {
			if (slot)
				*slot = &m->buckets[b];
			return e;
		}
	}
}

/*
 * Whether vip shares an address, a port and a protocol with entries of key
 * (masked, plen). *slot (when slot is not NULL) gets the key's bucket.
 */
static const struct lb_vipmap_vip *overlap(const struct lb_vipmap *m, const union lb_sockaddr *masked,
					   unsigned int plen, uint64_t hash,
					   const struct lb_vipmap_vip *vip, struct bucket **slot)
{
	uint16_t first = lb_addr_port(&vip->addr);

	for (uint32_t e = chain(m, masked, plen, hash, slot); e != NONE;
	     e = m->entries[e].next) {
		const struct lb_vipmap_vip *o = &m->entries[e].vip;

		if ((o->protocols & vip->protocols) && lb_addr_port(&o->addr) <= vip->port_last &&
		    first <= o->port_last)
			return o;
	}
	return NULL;
}

static int by_plen(const void *a, const void *b)
{
	const struct lb_vipmap_vip *x = *(const struct lb_vipmap_vip *const *)a;
	const struct lb_vipmap_vip *y = *(const struct lb_vipmap_vip *const *)b;

	if (x->plen != y->plen)
		return x->plen < y->plen ? -1 : 1;
	/* Then in config order, so the earlier of two equal VIPs is the one kept. */
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * order = the VIPs in by_plen order: a stable counting sort on the prefix
 * length, which leaves VIPs given in config order (as the config parser
 * gives them) in order within a length; a length whose VIPs came in
 * another order is sorted. O(n) where qsort took 5 ms of 100,000.
 */
static void sort_by_plen(const struct lb_vipmap_vip *vips, size_t n,
			 const struct lb_vipmap_vip **order)
{
	size_t start[130] = { 0 };

	for (size_t i = 0; i < n; i++)
		start[vips[i].plen + 1]++;
	for (unsigned int p = 1; p < 130; p++)
		start[p] += start[p - 1];
	for (size_t i = 0; i < n; i++)
		order[start[vips[i].plen]++] = &vips[i];
	/* start[p] is now the end of length p's run. */
	for (size_t p = 0, from = 0; p < 129; from = start[p++])
		for (size_t i = from + 1; i < start[p]; i++)
			if (by_plen(&order[i - 1], &order[i]) > 0) {
				qsort(order + from, start[p] - from, sizeof(*order), by_plen);
				break;
			}
}

/* Enters vip, whose own key hashes to hash, unless it clashes with one entered before. */
static void enter(struct lb_vipmap *m, const struct lb_vipmap_vip *vip, uint64_t hash,
		  lb_vipmap_clash_fn clash, void *arg)
{
	size_t f = fam(&vip->addr);
	struct bucket *slot = NULL;
	struct entry *e;

	/* Entered shortest first: any VIP containing this one is in already. */
	for (unsigned int k = 0; k < m->n_plens[f]; k++) {
		unsigned int q = m->plens[f][k];
		union lb_sockaddr masked = vip->addr;
		const struct lb_vipmap_vip *o;
		bool own;

		if (q > vip->plen)
			continue;
		lb_vipmap_mask(&masked, q);
		/* At its own length the key is vip's: its bucket is where vip goes in. */
		own = q == vip->plen && same_prefix(&masked, &vip->addr);
		o = overlap(m, &masked, q, own ? hash : key_hash(&masked, q), vip,
			    own ? &slot : NULL);
		if (o) {
			if (clash)
				clash(arg, vip, o);
			return;
		}
	}
	e = &m->entries[m->n];
	e->vip = *vip;
	e->hash = hash;
	e->next = slot ? slot->entry : chain(m, &vip->addr, vip->plen, e->hash, &slot);
	*slot = (struct bucket){ .entry = m->n++, .tag = (uint32_t)(e->hash >> 32) };
	/* A new length goes in front: the list stays longest first. */
	for (unsigned int k = 0; k < m->n_plens[f]; k++)
		if (m->plens[f][k] == vip->plen)
			return;
	memmove(&m->plens[f][1], &m->plens[f][0], m->n_plens[f]);
	m->plens[f][0] = vip->plen;
	m->n_plens[f]++;
}

struct lb_vipmap *lb_vipmap_build(const struct lb_vipmap_vip *vips, size_t n,
				  lb_vipmap_clash_fn clash, void *arg)
{
	struct lb_vipmap *m = calloc(1, sizeof(*m));
	const struct lb_vipmap_vip **order = lb_bigmem_alloc((n ? n : 1) * sizeof(*order), true);
	uint64_t ahead[PREFETCH_AHEAD];
	size_t buckets = 16;

	while (buckets < 2 * n)
		buckets <<= 1;
	/* The workers look VIPs up in it: inherited, unlike the order. */
	if (m) {
		m->cap = n ? n : 1;
		m->entries = lb_bigmem_alloc(m->cap * sizeof(*m->entries), false);
		m->buckets = lb_bigmem_alloc(buckets * sizeof(*m->buckets), false);
		m->mask = (uint32_t)(buckets - 1);
	}
	if (!m || !order || !m->entries || !m->buckets) {
		lb_bigmem_free(order, (n ? n : 1) * sizeof(*order));
		lb_vipmap_free(m);
		errno = ENOMEM;
		return NULL;
	}
	memset(m->buckets, 0xff, buckets * sizeof(*m->buckets));
	sort_by_plen(vips, n, order);
	/*
	 * Each VIP's own key is hashed a few VIPs ahead and its bucket
	 * fetched meanwhile: 100,000 VIPs' buckets are 2 MB, read in no order.
	 */
	for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
		ahead[i] = key_hash(&order[i]->addr, order[i]->plen);
	for (size_t i = 0; i < n; i++) {
		uint64_t hash = ahead[i % PREFETCH_AHEAD];

		if (i + PREFETCH_AHEAD < n) {
			uint64_t h = key_hash(&order[i + PREFETCH_AHEAD]->addr,
					      order[i + PREFETCH_AHEAD]->plen);

			__builtin_prefetch(&m->buckets[h & m->mask]);
			ahead[i % PREFETCH_AHEAD] = h;
		}
		enter(m, order[i], hash, clash, arg);
	}
	lb_bigmem_free(order, (n ? n : 1) * sizeof(*order));
	return m;
}

void lb_vipmap_free(struct lb_vipmap *m)
{
	if (!m)
		return;
	lb_bigmem_free(m->entries, m->cap * sizeof(*m->entries));
	lb_bigmem_free(m->buckets, ((size_t)m->mask + 1) * sizeof(*m->buckets));
	free(m);
}

const struct lb_vipmap_vip *lb_vipmap_find(const struct lb_vipmap *m, unsigned int proto,
					   const union lb_sockaddr *addr)
{
	size_t f = fam(addr);
	uint16_t port = lb_addr_port(addr);

	for (unsigned int k = 0; m && k < m->n_plens[f]; k++) {
		unsigned int q = m->plens[f][k];
		union lb_sockaddr masked = *addr;
		uint64_t h;

		lb_vipmap_mask(&masked, q);
		h = key_hash(&masked, q);
		for (uint32_t e = chain(m, &masked, q, h, NULL); e != NONE; e = m->entries[e].next) {
			const struct lb_vipmap_vip *v = &m->entries[e].vip;

			if ((v->protocols & proto) && lb_addr_port(&v->addr) <= port &&
			    port <= v->port_last)
				return v;
		}
	}
	return NULL;
}
