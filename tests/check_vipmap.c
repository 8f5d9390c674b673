// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/vipmap.c against a brute-force reference: random single VIPs,
 * prefixes and port ranges of both families and protocols; every lookup
 * must find what a scan of every VIP finds, and every clash reported must
 * be a real overlap with the VIP it names.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lb/config.h"
#include "lb/vipmap.h"
#include "tests/unit.h"

#define N 3000

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static struct lb_vipmap_vip vips[N];
static bool kept[N];
static size_t n_clash;

static bool contains(const struct lb_vipmap_vip *v, const union lb_sockaddr *a)
{
	union lb_sockaddr m = *a;
	uint16_t p = lb_addr_port(a);

	if (a->sa.sa_family != v->addr.sa.sa_family)
		return false;
	lb_vipmap_mask(&m, v->plen);
	if (a->sa.sa_family == AF_INET6 ?
	    memcmp(&m.in6.sin6_addr, &v->addr.in6.sin6_addr, 16) :
	    m.in.sin_addr.s_addr != v->addr.in.sin_addr.s_addr)
		return false;
	return lb_addr_port(&v->addr) <= p && p <= v->port_last;
}

static bool overlap(const struct lb_vipmap_vip *a, const struct lb_vipmap_vip *b)
{
	const struct lb_vipmap_vip *wide = a->plen <= b->plen ? a : b, *narrow = wide == a ? b : a;
	union lb_sockaddr m = narrow->addr;

	if (a->addr.sa.sa_family != b->addr.sa.sa_family || !(a->protocols & b->protocols))
		return false;
	if (lb_addr_port(&a->addr) > b->port_last || lb_addr_port(&b->addr) > a->port_last)
		return false;
	lb_vipmap_mask(&m, wide->plen);
	return a->addr.sa.sa_family == AF_INET6 ?
	       !memcmp(&m.in6.sin6_addr, &wide->addr.in6.sin6_addr, 16) :
	       m.in.sin_addr.s_addr == wide->addr.in.sin_addr.s_addr;
}

static void on_clash(void *arg, const struct lb_vipmap_vip *v, const struct lb_vipmap_vip *o)
{
	ck_assert(overlap(v, o));
	ck_assert(kept[o->service]);
	kept[v->service] = false;
	n_clash++;
}

/* A random address in a small space, so that prefixes and VIPs meet often. */
static void rand_addr(union lb_sockaddr *a, bool v6)
{
	memset(a, 0, sizeof(*a));
	if (v6) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_addr.s6_addr[0] = 0x20;
		a->in6.sin6_addr.s6_addr[1] = 0x01;
		a->in6.sin6_addr.s6_addr[14] = (uint8_t)(next_rand() % 4);
		a->in6.sin6_addr.s6_addr[15] = (uint8_t)next_rand();
	} else {
		a->in.sin_family = AF_INET;
		a->in.sin_addr.s_addr = htonl(0xc6120000u | (next_rand() % 1024));
	}
}

START_TEST(test_against_scan)
{
	struct lb_vipmap *m;
	size_t found = 0;

	for (size_t i = 0; i < N; i++) {
		struct lb_vipmap_vip *v = &vips[i];
		bool v6 = next_rand() % 3 == 0;
		unsigned int host = v6 ? 128 : 32, kind = next_rand() % 10;
		uint16_t port = (uint16_t)(1 + next_rand() % 50);

		rand_addr(&v->addr, v6);
		/* Mostly single addresses, some prefixes, some port ranges. */
		v->plen = (uint8_t)(kind < 7 ? host : host - 1 - next_rand() % 8);
		lb_vipmap_mask(&v->addr, v->plen);
		lb_addr_set_port(&v->addr, port);
		v->port_last = (uint16_t)(kind == 9 ? port + next_rand() % 20 : port);
		v->protocols = 1 + next_rand() % 3;
		v->service = (uint32_t)i;
		kept[i] = true;
	}
	m = lb_vipmap_build(vips, N, on_clash, NULL);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_gt(n_clash, 0);
	for (int q = 0; q < 50000; q++) {
		union lb_sockaddr a;
		unsigned int proto = 1 + next_rand() % 2;
		const struct lb_vipmap_vip *want = NULL, *got;

		rand_addr(&a, next_rand() % 3 == 0);
		lb_addr_set_port(&a, (uint16_t)(1 + next_rand() % 80));
		for (size_t i = 0; i < N && !want; i++)
			if (kept[i] && (vips[i].protocols & proto) && contains(&vips[i], &a))
				want = &vips[i];
		got = lb_vipmap_find(m, proto, &a);
		if (want) {
			ck_assert_ptr_nonnull(got);
			ck_assert_uint_eq(got->service, want->service);
			found++;
		} else {
			ck_assert_ptr_null(got);
		}
	}
	ck_assert_uint_gt(found, 1000);
	lb_vipmap_free(m);
}
END_TEST

/*
 * The VIPs in any order: the same ones are left out as when they come in
 * config order (the earlier of two that clash at one prefix length is
 * kept), whatever order the map was given them in.
 */
START_TEST(test_any_order)
{
	static struct lb_vipmap_vip shuffled[N];
	static bool in_order[N];
	struct lb_vipmap *m;

	for (size_t i = 0; i < N; i++) {
		struct lb_vipmap_vip *v = &vips[i];
		bool v6 = next_rand() % 3 == 0;

		rand_addr(&v->addr, v6);
		v->plen = (uint8_t)(next_rand() % 2 ? (v6 ? 128 : 32) : (v6 ? 126 : 30));
		lb_vipmap_mask(&v->addr, v->plen);
		lb_addr_set_port(&v->addr, 80);
		v->port_last = 80;
		v->protocols = 1;
		v->service = (uint32_t)i;
		kept[i] = true;
	}
	m = lb_vipmap_build(vips, N, on_clash, NULL);
	ck_assert_ptr_nonnull(m);
	lb_vipmap_free(m);
	ck_assert_uint_gt(n_clash, 100);
	memcpy(in_order, kept, sizeof(kept));
	memcpy(shuffled, vips, sizeof(vips));
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = next_rand() % (i + 1);
		struct lb_vipmap_vip t = shuffled[i];

		shuffled[i] = shuffled[j];
		shuffled[j] = t;
	}
	for (size_t i = 0; i < N; i++)
		kept[i] = true;
	m = lb_vipmap_build(shuffled, N, on_clash, NULL);
	ck_assert_ptr_nonnull(m);
	for (size_t i = 0; i < N; i++)
		ck_assert_msg(kept[i] == in_order[i], "VIP %zu: %s in order, %s shuffled", i,
			      in_order[i] ? "kept" : "left out", kept[i] ? "kept" : "left out");
	lb_vipmap_free(m);
}
END_TEST

int main(void)
{
	return lb_test_main("vipmap", NULL, NULL, 60, LB_TESTS(test_against_scan, test_any_order));
}
