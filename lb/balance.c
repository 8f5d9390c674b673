// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/balance.h"
#include "lb/hash.h"

/* Linear probes in maglev_pick before falling back to a scan of the candidates. */
#define MAGLEV_PROBES 64

/*
 * Candidates left out (weight 0) keep their current[] untouched, as nginx
 * does for down or already tried peers: every step adds total to the
 * present ones and takes it back from one, so the sum over all n stays 0
 * and the present ones keep exact proportions among themselves. A
 * candidate that comes back resumes with the credit it had.
 */
int lb_balance_swrr(const struct lb_pick *c, size_t n, int64_t *current)
{
	int64_t total = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		if (!c[i].weight)
			continue;
		current[i] += c[i].weight;
		total += c[i].weight;
		if (best < 0 || current[i] > current[best])
			best = (int)i;
	}
	if (best >= 0)
		current[best] -= total;
	return best;
}

/* a * w as a 96-bit (hi, lo) pair, without relying on __int128. */
static void mul_64_32(uint64_t a, uint32_t w, uint64_t *hi, uint64_t *lo)
{
	uint64_t l = (a & 0xffffffffu) * w, h = (a >> 32) * w;

	*lo = l + (h << 32);
	*hi = (h >> 32) + (*lo < l);
}

/*
 * True when a carries less load per unit of weight than b (both weights
 * nonzero): active_a * weight_b < active_b * weight_a, in 96 bits since
 * active fits 63 and weight 32. A negative counter (a decrement seen
 * before its increment) counts as 0.
 */
static bool less_loaded(const struct lb_pick *a, const struct lb_pick *b)
{
	uint64_t aa = a->active > 0 ? (uint64_t)a->active : 0;
	uint64_t ba = b->active > 0 ? (uint64_t)b->active : 0;
	uint64_t lh, ll, rh, rl;

	mul_64_32(aa, b->weight, &lh, &ll);
	mul_64_32(ba, a->weight, &rh, &rl);
	return lh != rh ? lh < rh : ll < rl;
}

/* *rr is where the next scan starts; the first of equals from there wins. */
int lb_balance_leastconn(const struct lb_pick *c, size_t n, unsigned int *rr)
{
	size_t start;
	int best = -1;

	if (!n)
		return -1;
	start = *rr % n;
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;

		if (!c[i].weight)
			continue;
		if (best < 0 || less_loaded(&c[i], &c[best]))
			best = (int)i;
	}
	if (best >= 0)
		*rr = (unsigned int)best + 1;
	return best;
}

/* splitmix64: any state, 0 included, gives a full-period sequence. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Both draws are independent and by weight; on equal load the first wins,
 * which keeps the result distributed exactly by weight when all
 * candidates carry the same active / weight.
 */
int lb_balance_random2(const struct lb_pick *c, size_t n, uint64_t *rng)
{
	uint64_t total = 0, acc = 0, ta, tb;
	int a = -1, b = -1;

	for (size_t i = 0; i < n; i++)
		total += c[i].weight;
	if (!total)
		return -1;
	/* total < 2^48 (65535 weights of 32 bits): modulo bias below 2^-16. */
	ta = splitmix64(rng) % total;
	tb = splitmix64(rng) % total;
	for (size_t i = 0; i < n && (a < 0 || b < 0); i++) {
		acc += c[i].weight;
		if (a < 0 && ta < acc)
			a = (int)i;
		if (b < 0 && tb < acc)
			b = (int)i;
	}
	if (a == b)
		return a;
	return less_loaded(&c[b], &c[a]) ? b : a;
}

/*
 * Hashes must agree between processes and hosts (several balancers, or
 * old and new workers during a restart, must map a client alike), so they
 * use no seed and read addresses byte by byte in network order (FNV-1a,
 * lb/hash.h).
 *
 * Family tag, address, then the port when asked. An IPv4-mapped IPv6
 * address hashes as the IPv4 it stands for, so a client hashes alike
 * whether it came in through a v4 or a dual-stack v6 listener. Scope ids
 * are left out: they are interface indexes, which differ between hosts.
 */
static uint64_t hash_addr(const union lb_sockaddr *a, bool with_port)
{
	uint64_t h = LB_HASH_FNV_BASIS;
	unsigned char tag;

	switch (a->sa.sa_family) {
	case AF_INET:
		tag = 4;
		h = lb_hash_fnv1a(h, &tag, 1);
		h = lb_hash_fnv1a(h, &a->in.sin_addr.s_addr, 4);
		if (with_port)
			h = lb_hash_fnv1a(h, &a->in.sin_port, 2);
		break;
	case AF_INET6:
		if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
			tag = 4;
			h = lb_hash_fnv1a(h, &tag, 1);
			h = lb_hash_fnv1a(h, &a->in6.sin6_addr.s6_addr[12], 4);
		} else {
			tag = 6;
			h = lb_hash_fnv1a(h, &tag, 1);
			h = lb_hash_fnv1a(h, a->in6.sin6_addr.s6_addr, 16);
		}
		if (with_port)
			h = lb_hash_fnv1a(h, &a->in6.sin6_port, 2);
		break;
	default:
		tag = 0;
		h = lb_hash_fnv1a(h, &tag, 1);
		break;
	}
	/* FNV alone mixes the last bytes poorly. */
	return lb_hash_mix64(h);
}

uint64_t lb_balance_key(const union lb_sockaddr *backend)
{
	return hash_addr(backend, true);
}

uint64_t lb_balance_hash_client(const union lb_sockaddr *client, bool with_port)
{
	return hash_addr(client, with_port);
}

/* Trial division by 6k +/- 1: at most ~22k steps for 32 bits, no tables. */
bool lb_balance_is_prime(uint32_t m)
{
	if (m < 2)
		return false;
	if (m < 4)
		return true;
	if (m % 2 == 0 || m % 3 == 0)
		return false;
	for (uint64_t d = 5; d * d <= m; d += 6)
		if (m % d == 0 || m % (d + 2) == 0)
			return false;
	return true;
}

/*
 * One backend while the table fills: where it is in its permutation, and
 * how many entries it has claimed. Its next turn comes at virtual time
 * (claims + 1) / weight; the heap orders turns by that time, then by
 * index, which for equal weights is the paper's round by round order, and
 * for unequal ones hands out entries in proportion to weight however
 * large or uneven the weights are.
 */
struct maglev_slot {
	uint32_t pos;
	uint32_t skip;
	uint32_t claims;
	uint32_t weight;
	uint16_t index;
};

static bool turn_before(const struct maglev_slot *a, const struct maglev_slot *b)
{
	/* claims < 2^32 and weights < 2^32: the products fit 64 bits. */
	uint64_t ta = ((uint64_t)a->claims + 1) * b->weight;
	uint64_t tb = ((uint64_t)b->claims + 1) * a->weight;

	return ta != tb ? ta < tb : a->index < b->index;
}

static void heap_sift_down(struct maglev_slot *heap, size_t len, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		struct maglev_slot tmp;

		if (l < len && turn_before(&heap[l], &heap[min]))
			min = l;
		if (r < len && turn_before(&heap[r], &heap[min]))
			min = r;
		if (min == i)
			return;
		tmp = heap[i];
		heap[i] = heap[min];
		heap[min] = tmp;
		i = min;
	}
}

static uint32_t permutation_next(const struct maglev_slot *s, uint32_t m)
{
	return s->pos >= m - s->skip ? s->pos - (m - s->skip) : s->pos + s->skip;
}

static void table_clear(uint16_t *table, uint32_t m)
{
	for (uint32_t i = 0; i < m; i++)
		table[i] = LB_MAGLEV_EMPTY;
}

struct lb_maglev_builder {
	uint16_t *table;
	uint32_t m, filled;
	size_t len;
	struct maglev_slot heap[];
};

/*
 * On error the table is left all LB_MAGLEV_EMPTY (when there is one), so
 * lookups fall back to lb_balance_maglev_pick's scan rather than use
 * entries of an older table.
 */
int lb_balance_maglev_start(const uint64_t *keys, const uint32_t *weights, size_t n,
			    uint16_t *table, uint32_t m, struct lb_maglev_builder **out)
{
	struct lb_maglev_builder *b;
	size_t len = 0;

	*out = NULL;
	if (!table)
		return -EINVAL;
	table_clear(table, m);
	if (!lb_balance_is_prime(m) || n > LB_MAGLEV_EMPTY || m < n ||
	    (n && (!keys || !weights)))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		len += weights[i] > 0;
	b = malloc(sizeof(*b) + len * sizeof(b->heap[0]));
	if (!b)
		return -ENOMEM;
	*b = (struct lb_maglev_builder){ .table = table, .m = m, .len = len };
	/* With no backend of weight the table stays empty: nothing to fill. */
	if (!len)
		b->filled = m;
	len = 0;
	for (size_t i = 0; i < n; i++) {
		if (!weights[i])
			continue;
		/* m is prime, so any skip in [1, m) walks every entry once. */
		b->heap[len++] = (struct maglev_slot){
			.pos = (uint32_t)(lb_hash_mix64(keys[i] + 0x9e3779b97f4a7c15ull) % m),
			.skip = (uint32_t)(lb_hash_mix64(keys[i] + 0xc2b2ae3d27d4eb4full) % (m - 1) + 1),
			.weight = weights[i],
			.index = (uint16_t)i,
		};
	}
	/* Every claims is 0, so the order is by weight, then index. */
	for (size_t i = len / 2; i-- > 0;)
		heap_sift_down(b->heap, len, i);
	*out = b;
	return 0;
}

bool lb_balance_maglev_step(struct lb_maglev_builder *b, uint64_t *budget)
{
	uint16_t *table = b->table;
	uint64_t work = 0;
	uint32_t m = b->m;

	while (b->filled < m && work < *budget) {
		struct maglev_slot *s = &b->heap[0];

		while (table[s->pos] != LB_MAGLEV_EMPTY) {
			s->pos = permutation_next(s, m);
			work++;
		}
		table[s->pos] = s->index;
		s->pos = permutation_next(s, m);
		s->claims++;
		heap_sift_down(b->heap, b->len, 0);
		b->filled++;
		work += LB_MAGLEV_FILL_COST;
	}
	*budget -= work < *budget ? work : *budget;
	return b->filled < m;
}

void lb_balance_maglev_free(struct lb_maglev_builder *b)
{
	free(b);
}

int lb_balance_maglev_build(const uint64_t *keys, const uint32_t *weights, size_t n,
			    uint16_t *table, uint32_t m)
{
	struct lb_maglev_builder *b;
	int ret = lb_balance_maglev_start(keys, weights, n, table, m, &b);
	uint64_t budget;

	if (ret < 0)
		return ret;
	budget = UINT64_MAX;

	lb_balance_maglev_step(b, &budget);
	lb_balance_maglev_free(b);
	return 0;
}

/*
 * Neighbouring entries belong to backends drawn in proportion to weight,
 * so probing onward spreads the clients of a candidate that is out now
 * over the others by weight and leaves everyone else where they were.
 */
int lb_balance_maglev_pick(const uint16_t *table, uint32_t m, uint64_t hash,
			   const struct lb_pick *c, size_t n)
{
	size_t start;

	if (!n)
		return -1;
	if (table && m) {
		uint32_t pos = (uint32_t)(hash % m);

		for (uint32_t probe = 0; probe < MAGLEV_PROBES && probe < m; probe++) {
			uint16_t idx = table[pos];

			if (idx != LB_MAGLEV_EMPTY && idx < n && c[idx].weight)
				return idx;
			pos = pos + 1 == m ? 0 : pos + 1;
		}
	}
	start = (size_t)(hash % n);
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;

		if (c[i].weight)
			return (int)i;
	}
	return -1;
}
