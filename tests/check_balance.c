// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb/addr.h"
#include "lb/balance.h"
#include "lb/shm.h"
#include "tests/unit.h"

#define PICKS 100000
#define CLIENTS 100000
#define MAGLEV_M 65537u
#define MAX_N 16

/*
 * For hot loops: ck_assert records every passing check through the
 * runner, which costs a syscall each; this only reports failures.
 */
#define CHECK(cond)							\
	do {								\
		if (!(cond))						\
			ck_abort_msg("failed: %s", #cond);		\
	} while (0)

/* Set CHECK_BALANCE_VERBOSE=1 to print the measured deviations. */
static bool verbose;

/* Deterministic test randomness, independent of the code under test. */
static uint64_t test_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void set_picks(struct lb_pick *c, const uint32_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		c[i] = (struct lb_pick){ .weight = w[i], .active = 0 };
}

/*
 * Largest deviation of the observed shares from the weights' shares:
 * relative to the expected share when relative, else in share points.
 */
static double share_dev(const unsigned long *count, const uint32_t *w, size_t n,
			bool relative)
{
	unsigned long total = 0;
	double wsum = 0, worst = 0;

	for (size_t i = 0; i < n; i++) {
		total += count[i];
		wsum += w[i];
	}
	for (size_t i = 0; i < n; i++) {
		double want = w[i] / wsum, got = (double)count[i] / total;
		double dev = want > got ? want - got : got - want;

		if (relative)
			dev /= want;
		if (dev > worst)
			worst = dev;
	}
	return worst;
}

static void report(const char *what, double dev)
{
	if (verbose)
		fprintf(stderr, "%-44s %.4f%%\n", what, dev * 100);
}

/* The i-th synthetic client: 10.x.y.z with a varying source port. */
static union lb_sockaddr client_addr(uint32_t i)
{
	union lb_sockaddr a;

	memset(&a, 0, sizeof(a));
	a.in.sin_family = AF_INET;
	a.in.sin_addr.s_addr = htonl(0x0a000000u + i);
	a.in.sin_port = htons(1024 + (i * 7919u) % 60000);
	return a;
}

static uint64_t client_hash(uint32_t i)
{
	union lb_sockaddr a = client_addr(i);

	return lb_balance_hash_client(&a, true);
}

/* Fixed, valid addresses only: also runs outside a test (--maglev-dump). */
static uint64_t key_of(const char *text)
{
	union lb_sockaddr a;

	if (lb_addr_parse(text, &a, NULL) < 0)
		abort();
	return lb_balance_key(&a);
}

/* Keys of 198.18.0.1:80 .. 198.18.0.n:80. */
static void backend_keys(uint64_t *keys, size_t n)
{
	char text[LB_ADDR_STRLEN];

	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "198.18.0.%zu:80", i + 1);
		keys[i] = key_of(text);
	}
}

static void swrr_shares(const uint32_t *w, size_t n)
{
	struct lb_pick c[MAX_N];
	int64_t cur[MAX_N] = { 0 };
	unsigned long count[MAX_N] = { 0 };
	uint32_t wsum = 0;

	set_picks(c, w, n);
	for (size_t i = 0; i < n; i++)
		wsum += w[i];
	for (int k = 0; k < PICKS; k++) {
		int i = lb_balance_swrr(c, n, cur);

		CHECK(i >= 0);
		count[i]++;
	}
	/* Every full cycle of wsum picks is exact; only the tail differs. */
	for (size_t i = 0; i < n; i++) {
		double want = (double)PICKS * w[i] / wsum;

		ck_assert(count[i] + 1 >= want && count[i] <= want + 1);
	}
	ck_assert(share_dev(count, w, n, true) <= 0.02);
	report("swrr shares (relative)", share_dev(count, w, n, true));
}

START_TEST(test_swrr_shares)
{
	static const uint32_t w1[] = { 1, 2, 3, 4 }, w2[] = { 5, 1, 1 }, w3[] = { 1000, 1, 7 };

	swrr_shares(w1, 4);
	swrr_shares(w2, 3);
	swrr_shares(w3, 3);
}
END_TEST

START_TEST(test_swrr_interleave)
{
	static const uint32_t w[] = { 5, 1, 1 };
	struct lb_pick c[3];
	int64_t cur[3] = { 0 };
	char seq[15] = { 0 };
	int run = 0, longest = 0;

	set_picks(c, w, 3);
	for (int k = 0; k < 14; k++)
		seq[k] = (char)('a' + lb_balance_swrr(c, 3, cur));
	/* nginx's sequence for 5, 1, 1. */
	ck_assert_str_eq(seq, "aabacaaaabacaa");
	for (int k = 0; k < PICKS; k++) {
		run = lb_balance_swrr(c, 3, cur) == 0 ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	/* Plain weighted round robin would send 5 in a row to a. */
	ck_assert_int_lt(longest, 5);
}
END_TEST

/*
 * A candidate dropping to weight 0 and coming back later must leave the
 * others exactly fair in between, and everyone fair afterwards.
 */
START_TEST(test_swrr_weight_drop)
{
	static const uint32_t w[] = { 1, 2, 3, 4 };
	struct lb_pick c[4];
	int64_t cur[4] = { 0 };
	unsigned long count[4] = { 0 };

	set_picks(c, w, 4);
	for (int k = 0; k < 1003; k++)
		lb_balance_swrr(c, 4, cur);
	c[3].weight = 0;
	for (int k = 0; k < 60000; k++) {
		int i = lb_balance_swrr(c, 4, cur);

		CHECK(i >= 0 && i != 3);
		count[i]++;
	}
	for (size_t i = 0; i < 3; i++)
		ck_assert(count[i] + 2 >= 10000 * w[i] && count[i] <= 10000 * w[i] + 2);
	c[3].weight = 4;
	memset(count, 0, sizeof(count));
	for (int k = 0; k < PICKS; k++)
		count[lb_balance_swrr(c, 4, cur)]++;
	ck_assert(share_dev(count, w, 4, true) <= 0.001);
}
END_TEST

/* Random churn of weights: only weighted candidates, and state stays bounded. */
START_TEST(test_swrr_churn)
{
	struct lb_pick c[8];
	int64_t cur[8] = { 0 };
	uint64_t s = 42;

	for (size_t i = 0; i < 8; i++)
		c[i] = (struct lb_pick){ .weight = 1000 };
	for (int k = 0; k < PICKS; k++) {
		int i;

		if (k % 7 == 0) {
			size_t j = test_rand(&s) % 8;

			c[j].weight = test_rand(&s) % 3 ? (uint32_t)(test_rand(&s) % 1001) : 0;
		}
		i = lb_balance_swrr(c, 8, cur);
		if (i >= 0)
			CHECK(c[i].weight > 0);
		for (size_t j = 0; j < 8; j++)
			CHECK(cur[j] < 8 * 8 * 1000 && cur[j] > -8 * 8 * 1000);
	}
}
END_TEST

static int leastconn2(uint32_t w0, int64_t a0, uint32_t w1, int64_t a1)
{
	struct lb_pick c[2] = { { w0, a0 }, { w1, a1 } };
	unsigned int rr = 0;

	return lb_balance_leastconn(c, 2, &rr);
}

START_TEST(test_leastconn)
{
	struct lb_pick c[3];
	unsigned int rr = 0;

	ck_assert_int_eq(leastconn2(2, 10, 1, 6), 0);		/* 5 < 6 */
	ck_assert_int_eq(leastconn2(1, 6, 2, 10), 1);
	ck_assert_int_eq(leastconn2(3, 3, 1, 2), 0);		/* 1 < 2 */
	ck_assert_int_eq(leastconn2(1, 2, 3, 3), 1);
	ck_assert_int_eq(leastconn2(1, 9, 1, 8), 1);
	ck_assert_int_eq(leastconn2(0, 0, 1, 999), 1);		/* weight 0: never */
	ck_assert_int_eq(leastconn2(1, 999, 0, 0), 0);
	ck_assert_int_eq(leastconn2(1, -5, 1, 1), 0);		/* negative counts as 0 */
	/* Products past 64 bits: 2^63 / 2^32 beats 2^62 / 1. */
	ck_assert_int_eq(leastconn2(UINT32_MAX, INT64_MAX, 1, INT64_MAX / 2), 0);
	ck_assert_int_eq(leastconn2(1, INT64_MAX / 2, UINT32_MAX, INT64_MAX), 1);
	ck_assert_int_eq(leastconn2(UINT32_MAX, INT64_MAX, UINT32_MAX - 1, INT64_MAX - 1), 0);

	c[0] = (struct lb_pick){ 1, 5 };
	c[1] = (struct lb_pick){ 1, 3 };
	c[2] = (struct lb_pick){ 1, 4 };
	ck_assert_int_eq(lb_balance_leastconn(c, 3, &rr), 1);
	ck_assert_int_eq(lb_balance_leastconn(c, 3, &rr), 1);

	/* Ties rotate. */
	rr = 0;
	c[0] = c[1] = c[2] = (struct lb_pick){ 1, 7 };
	for (int k = 0; k < 6; k++)
		ck_assert_int_eq(lb_balance_leastconn(c, 3, &rr), k % 3);
	/* Equal load per weight is a tie too: 2/1 == 4/2 < 3/1. */
	c[0] = (struct lb_pick){ 1, 2 };
	c[1] = (struct lb_pick){ 2, 4 };
	c[2] = (struct lb_pick){ 1, 3 };
	rr = 0;
	for (int k = 0; k < 6; k++)
		ck_assert_int_eq(lb_balance_leastconn(c, 3, &rr), k % 2);
	/* A stale cursor from a longer list is fine. */
	rr = 1000;
	ck_assert_int_ge(lb_balance_leastconn(c, 3, &rr), 0);
}
END_TEST

/* Counting each pick as a new connection fills backends by weight. */
START_TEST(test_leastconn_converges)
{
	static const uint32_t w[] = { 1, 2, 3 };
	struct lb_pick c[3];
	unsigned int rr = 0;

	set_picks(c, w, 3);
	for (int k = 0; k < 600; k++)
		c[lb_balance_leastconn(c, 3, &rr)].active++;
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(c[i].active, 100 * (int64_t)w[i]);
}
END_TEST

static void random2_shares(const uint32_t *w, size_t n, int64_t active_per_weight)
{
	struct lb_pick c[MAX_N];
	unsigned long count[MAX_N] = { 0 };
	uint64_t rng = 12345;

	set_picks(c, w, n);
	for (size_t i = 0; i < n; i++)
		c[i].active = active_per_weight * w[i];
	for (int k = 0; k < PICKS; k++) {
		int i = lb_balance_random2(c, n, &rng);

		CHECK(i >= 0);
		count[i]++;
	}
	ck_assert(share_dev(count, w, n, false) <= 0.02);
	report("random2 shares (points)", share_dev(count, w, n, false));
	report("random2 shares (relative)", share_dev(count, w, n, true));
}

START_TEST(test_random2)
{
	static const uint32_t w1[] = { 1, 2, 3, 4 }, w2[] = { 5, 1, 1 };
	struct lb_pick c[3];
	uint64_t rng = 7;
	unsigned long first = 0;

	/* Equal load per unit of weight: shares follow the weights. */
	random2_shares(w1, 4, 0);
	random2_shares(w2, 3, 0);
	random2_shares(w1, 4, 10);

	/* Only both draws landing on the loaded one pick it: 3/4 vs 1/4. */
	c[0] = (struct lb_pick){ 1, 0 };
	c[1] = (struct lb_pick){ 1, 100 };
	for (int k = 0; k < PICKS; k++)
		first += lb_balance_random2(c, 2, &rng) == 0;
	ck_assert(first > PICKS * 0.74 && first < PICKS * 0.76);

	/* One eligible candidate is always the answer, whatever the load. */
	c[0] = (struct lb_pick){ 0, 0 };
	c[1] = (struct lb_pick){ 5, 1000 };
	c[2] = (struct lb_pick){ 0, 0 };
	for (int k = 0; k < 1000; k++)
		CHECK(lb_balance_random2(c, 3, &rng) == 1);
}
END_TEST

static void build(const uint64_t *keys, const uint32_t *w, size_t n, uint16_t *table,
		  uint32_t m)
{
	ck_assert_int_eq(lb_balance_maglev_build(keys, w, n, table, m), 0);
}

static void maglev_shares(const uint32_t *w, size_t n)
{
	static uint16_t table[MAGLEV_M];
	uint64_t keys[MAX_N];
	struct lb_pick c[MAX_N];
	unsigned long entries[MAX_N] = { 0 }, clients[MAX_N] = { 0 };

	backend_keys(keys, n);
	build(keys, w, n, table, MAGLEV_M);
	for (uint32_t j = 0; j < MAGLEV_M; j++) {
		CHECK(table[j] < n);
		entries[table[j]]++;
	}
	set_picks(c, w, n);
	for (uint32_t k = 0; k < CLIENTS; k++) {
		int i = lb_balance_maglev_pick(table, MAGLEV_M, client_hash(k), c, n);

		CHECK(i >= 0);
		clients[i]++;
	}
	ck_assert(share_dev(entries, w, n, true) <= 0.02);
	ck_assert(share_dev(clients, w, n, false) <= 0.02);
	report("maglev table entries (relative)", share_dev(entries, w, n, true));
	report("maglev clients (points)", share_dev(clients, w, n, false));
	report("maglev clients (relative)", share_dev(clients, w, n, true));
}

START_TEST(test_maglev_shares)
{
	static const uint32_t w1[] = { 1, 1, 1, 1 }, w2[] = { 1, 2, 3 };
	static const uint32_t w3[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	static const uint32_t w4[] = { 1000, 1, 500 };

	maglev_shares(w1, 4);
	maglev_shares(w2, 3);
	maglev_shares(w3, 10);
	maglev_shares(w4, 3);
}
END_TEST

/* Weights far beyond the table size still fill it, in proportion. */
START_TEST(test_maglev_big_weights)
{
	static const uint32_t w[] = { UINT32_MAX, UINT32_MAX / 2, 1 };
	uint64_t keys[3];
	uint16_t table[101];
	unsigned long entries[3] = { 0 };

	backend_keys(keys, 3);
	build(keys, w, 3, table, 101);
	for (uint32_t j = 0; j < 101; j++) {
		ck_assert_uint_lt(table[j], 3);
		entries[table[j]]++;
	}
	ck_assert(entries[0] >= 66 && entries[0] <= 68);
	ck_assert(entries[1] >= 33 && entries[1] <= 35);
	ck_assert_uint_le(entries[2], 1);
}
END_TEST

/*
 * Taking 1 of 10 backends out and rebuilding moves its 10% of clients
 * and few others; with the old table still published, probing moves
 * only its clients.
 */
START_TEST(test_maglev_disruption)
{
	static uint16_t before[MAGLEV_M], after[MAGLEV_M];
	uint64_t keys[10];
	uint32_t w[10];
	struct lb_pick all[10], rest[10];
	double worst = 0, worst_kept = 0;

	backend_keys(keys, 10);
	for (size_t i = 0; i < 10; i++)
		w[i] = 1;
	set_picks(all, w, 10);
	build(keys, w, 10, before, MAGLEV_M);
	for (size_t out = 0; out < 10; out++) {
		unsigned long moved = 0, moved_kept = 0, kept = 0, moved_stale = 0, on_out = 0;

		w[out] = 0;
		set_picks(rest, w, 10);
		build(keys, w, 10, after, MAGLEV_M);
		w[out] = 1;
		for (uint32_t k = 0; k < CLIENTS; k++) {
			uint64_t h = client_hash(k);
			int a = lb_balance_maglev_pick(before, MAGLEV_M, h, all, 10);
			int b = lb_balance_maglev_pick(after, MAGLEV_M, h, rest, 10);
			int s = lb_balance_maglev_pick(before, MAGLEV_M, h, rest, 10);

			CHECK(b != (int)out && s != (int)out);
			moved += a != b;
			moved_stale += a != s;
			if (a == (int)out) {
				on_out++;
				continue;
			}
			kept++;
			moved_kept += a != b;
			/* Old table, candidate out: nobody else moves. */
			CHECK(a == s);
		}
		ck_assert_uint_eq(moved_stale, on_out);
		ck_assert((double)moved / CLIENTS <= 0.12);
		ck_assert((double)moved_kept / kept <= 0.03);
		if ((double)moved / CLIENTS > worst)
			worst = (double)moved / CLIENTS;
		if ((double)moved_kept / kept > worst_kept)
			worst_kept = (double)moved_kept / kept;
	}
	report("maglev 1 of 10 out: clients moved (worst)", worst);
	report("maglev 1 of 10 out: others moved (worst)", worst_kept);

	/* Bringing it back restores the original table. */
	build(keys, w, 10, after, MAGLEV_M);
	ck_assert_int_eq(memcmp(before, after, sizeof(before)), 0);
}
END_TEST

/* 12 backends of both families and mixed weights, at fixed addresses. */
static int fixed_table(uint16_t *table)
{
	static const char *const addrs[] = {
		"198.18.0.1:80", "198.18.0.2:80", "198.18.0.3:80", "198.18.0.4:80",
		"198.18.0.5:8080", "198.18.0.6:8080", "10.1.2.3:443", "192.0.2.77:1",
		"[2001:db8::1]:80", "[2001:db8::2]:80", "[2001:db8:1::ff]:443", "[fd00::5]:65535",
	};
	static const uint32_t w[] = { 1, 2, 3, 1, 2, 3, 1, 1, 5, 1, 2, 1000 };
	uint64_t keys[12];

	for (size_t i = 0; i < 12; i++)
		keys[i] = key_of(addrs[i]);
	return lb_balance_maglev_build(keys, w, 12, table, MAGLEV_M);
}

/* Serialised little-endian, so the dump is the same on every host. */
static void table_bytes(const uint16_t *table, unsigned char *out)
{
	for (uint32_t j = 0; j < MAGLEV_M; j++) {
		out[2 * j] = table[j] & 0xff;
		out[2 * j + 1] = table[j] >> 8;
	}
}

static uint64_t fnv1a(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Child mode of the cross-process test: the fixed table on stdout. */
static int maglev_dump(void)
{
	static uint16_t table[MAGLEV_M];
	static unsigned char bytes[2 * MAGLEV_M];
	size_t off = 0;

	if (fixed_table(table) < 0)
		return EXIT_FAILURE;
	table_bytes(table, bytes);
	while (off < sizeof(bytes)) {
		ssize_t r = write(STDOUT_FILENO, bytes + off, sizeof(bytes) - off);

		if (r == -1)
			return EXIT_FAILURE;
		off += r;
	}
	return EXIT_SUCCESS;
}

START_TEST(test_maglev_determinism)
{
	static uint16_t a[MAGLEV_M], b[MAGLEV_M];
	static unsigned char mine[2 * MAGLEV_M], theirs[2 * MAGLEV_M + 1];
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	size_t got = 0;
	int fds[2], status;
	pid_t pid;

	ck_assert_int_eq(fixed_table(a), 0);
	memset(b, 0x5a, sizeof(b));
	ck_assert_int_eq(fixed_table(b), 0);
	ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
	table_bytes(a, mine);

	/*
	 * A fresh exec of this program (new address space layout, other heap
	 * contents) must build the very same bytes.
	 */
	ck_assert_int_gt(len, 0);
	self[len] = '\0';
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char *const argv[] = { self, (char *)"--maglev-dump", NULL };

		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(self, argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = read(fds[0], theirs + got, sizeof(theirs) - got);

		if (r <= 0)
			break;
		got += r;
	}
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(got, sizeof(mine));
	ck_assert_int_eq(memcmp(mine, theirs, sizeof(mine)), 0);

	/*
	 * Pinned on purpose: every balancer host and every version of lb must
	 * compute the same keys and table, or a rolling upgrade remaps every
	 * client. Change these only together with a release note saying so.
	 */
	ck_assert_uint_eq(key_of("198.18.0.1:80"), 0x469f719974288be1ull);
	ck_assert_uint_eq(key_of("[2001:db8::1]:80"), 0x6bd68cc8922dbc33ull);
	ck_assert_uint_eq(fnv1a(mine, sizeof(mine)), 0xbf5ab9fa0d80b986ull);
}
END_TEST

START_TEST(test_keys)
{
	union lb_sockaddr a, b;

	ck_assert_uint_ne(key_of("198.18.0.1:80"), key_of("198.18.0.1:81"));
	ck_assert_uint_ne(key_of("198.18.0.1:80"), key_of("198.18.0.2:80"));
	ck_assert_uint_ne(key_of("[2001:db8::1]:80"), key_of("[2001:db8::2]:80"));
	ck_assert_uint_ne(key_of("0.0.0.0:80"), key_of("[::]:80"));
	ck_assert_uint_eq(key_of("198.18.0.1:80"), key_of("[::ffff:198.18.0.1]:80"));

	/* Only the bytes that mean something count: not padding, not scope. */
	memset(&a, 0xaa, sizeof(a));
	memset(&b, 0x55, sizeof(b));
	ck_assert_int_eq(lb_addr_parse("198.18.0.9:443", &a, NULL), 0);
	ck_assert_int_eq(lb_addr_parse("198.18.0.9:443", &b, NULL), 0);
	memset(a.in.sin_zero, 0xaa, sizeof(a.in.sin_zero));
	ck_assert_uint_eq(lb_balance_key(&a), lb_balance_key(&b));

	/* Without the port, one client hashes alike from every source port. */
	ck_assert_int_eq(lb_addr_parse("203.0.113.5:1000", &a, NULL), 0);
	ck_assert_int_eq(lb_addr_parse("203.0.113.5:2000", &b, NULL), 0);
	ck_assert_uint_eq(lb_balance_hash_client(&a, false), lb_balance_hash_client(&b, false));
	ck_assert_uint_ne(lb_balance_hash_client(&a, true), lb_balance_hash_client(&b, true));
	ck_assert_int_eq(lb_addr_parse("[::ffff:203.0.113.5]:1000", &b, NULL), 0);
	ck_assert_uint_eq(lb_balance_hash_client(&a, true), lb_balance_hash_client(&b, true));
}
END_TEST

START_TEST(test_maglev_errors)
{
	static uint16_t table[MAGLEV_M];
	uint64_t keys[10];
	uint32_t w[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };

	backend_keys(keys, 10);
	ck_assert_int_eq(lb_balance_maglev_build(keys, w, 10, table, 65536), -EINVAL);
	ck_assert_int_eq(lb_balance_maglev_build(keys, w, 10, table, 1), -EINVAL);
	ck_assert_int_eq(lb_balance_maglev_build(keys, w, 10, table, 0), -EINVAL);
	ck_assert_int_eq(lb_balance_maglev_build(keys, w, 10, table, 7), -EINVAL);	/* m < n */
	ck_assert_int_eq(lb_balance_maglev_build(NULL, NULL, 65536, table, MAGLEV_M), -EINVAL);
	ck_assert_int_eq(lb_balance_maglev_build(keys, w, 10, NULL, MAGLEV_M), -EINVAL);
	ck_assert_int_eq(lb_balance_maglev_build(NULL, w, 10, table, MAGLEV_M), -EINVAL);

	/* A failed build leaves nothing stale behind. */
	build(keys, w, 10, table, 11);
	ck_assert_int_eq(lb_balance_maglev_build(keys, w, 10, table, 9), -EINVAL);
	for (uint32_t j = 0; j < 9; j++)
		ck_assert_uint_eq(table[j], LB_MAGLEV_EMPTY);

	/* Nobody weighted, or nobody at all: every entry empty. */
	memset(w, 0, sizeof(w));
	build(keys, w, 10, table, MAGLEV_M);
	for (uint32_t j = 0; j < MAGLEV_M; j++)
		CHECK(table[j] == LB_MAGLEV_EMPTY);
	build(NULL, NULL, 0, table, 2);
	ck_assert_uint_eq(table[0], LB_MAGLEV_EMPTY);
	ck_assert_uint_eq(table[1], LB_MAGLEV_EMPTY);
}
END_TEST

/* The most backends a table can index, each with at least one entry. */
START_TEST(test_maglev_max_backends)
{
	static uint64_t keys[65535];
	static uint32_t w[65535];
	static uint16_t table[MAGLEV_M];
	static unsigned char seen[65535];

	for (uint32_t i = 0; i < 65535; i++) {
		union lb_sockaddr a = client_addr(i);

		keys[i] = lb_balance_key(&a);
		w[i] = 1;
	}
	build(keys, w, 65535, table, MAGLEV_M);
	for (uint32_t j = 0; j < MAGLEV_M; j++) {
		CHECK(table[j] < 65535);
		seen[table[j]] = 1;
	}
	for (uint32_t i = 0; i < 65535; i++)
		CHECK(seen[i]);
}
END_TEST

START_TEST(test_maglev_pick)
{
	static const uint16_t empty[7] = { 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff };
	static const uint16_t stale[7] = { 5, 6, 1, 5, 6, 0, 2 };
	struct lb_pick c[3] = { { 1, 0 }, { 1, 0 }, { 1, 0 } };

	/* Entry 2 is candidate 1; with it out, 3 and 4 are beyond n, 5 is 0. */
	ck_assert_int_eq(lb_balance_maglev_pick(stale, 7, 2, c, 3), 1);
	ck_assert_int_eq(lb_balance_maglev_pick(stale, 7, 7 + 2, c, 3), 1);
	c[1].weight = 0;
	ck_assert_int_eq(lb_balance_maglev_pick(stale, 7, 2, c, 3), 0);
	/* Entries for backends beyond n are skipped. */
	ck_assert_int_eq(lb_balance_maglev_pick(stale, 7, 0, c, 3), 0);
	/* No usable entry: a deterministic scan from hash % n. */
	ck_assert_int_eq(lb_balance_maglev_pick(empty, 7, 4, c, 3), 2);
	ck_assert_int_eq(lb_balance_maglev_pick(empty, 7, 4, c, 3), 2);
	ck_assert_int_eq(lb_balance_maglev_pick(empty, 7, 3, c, 3), 0);
	ck_assert_int_eq(lb_balance_maglev_pick(NULL, 0, 1, c, 3), 2);
	c[0].weight = c[2].weight = 0;
	ck_assert_int_eq(lb_balance_maglev_pick(stale, 7, 2, c, 3), -1);
	ck_assert_int_eq(lb_balance_maglev_pick(empty, 7, 2, c, 3), -1);
	ck_assert_int_eq(lb_balance_maglev_pick(stale, 7, 2, c, 0), -1);
}
END_TEST

/* No picker returns a weight-0 candidate; all return -1 when all are 0. */
START_TEST(test_zero_weight)
{
	static uint16_t table[211];
	struct lb_pick c[MAX_N];
	uint64_t keys[MAX_N], s = 99, rng = 1;
	uint32_t w[MAX_N];
	int64_t cur[MAX_N] = { 0 };
	unsigned int rr = 0;

	backend_keys(keys, MAX_N);
	for (size_t i = 0; i < MAX_N; i++)
		w[i] = 1 + i % 3;
	build(keys, w, MAX_N, table, 211);
	for (int trial = 0; trial < 20000; trial++) {
		size_t n = 1 + test_rand(&s) % MAX_N;
		bool any = false;
		int got[4];

		for (size_t i = 0; i < n; i++) {
			c[i].weight = test_rand(&s) % 2 ? 0 : (uint32_t)(1 + test_rand(&s) % 5);
			c[i].active = (int64_t)(test_rand(&s) % 50);
			any |= c[i].weight > 0;
		}
		got[0] = lb_balance_swrr(c, n, cur);
		got[1] = lb_balance_leastconn(c, n, &rr);
		got[2] = lb_balance_random2(c, n, &rng);
		got[3] = lb_balance_maglev_pick(table, 211, test_rand(&s), c, n);
		for (size_t k = 0; k < 4; k++) {
			if (!any) {
				CHECK(got[k] == -1);
				continue;
			}
			CHECK(got[k] >= 0 && (size_t)got[k] < n && c[got[k]].weight > 0);
		}
	}
	ck_assert_int_eq(lb_balance_swrr(c, 0, cur), -1);
	ck_assert_int_eq(lb_balance_leastconn(c, 0, &rr), -1);
	ck_assert_int_eq(lb_balance_random2(c, 0, &rng), -1);
}
END_TEST

enum sched { SWRR, LEASTCONN, RANDOM2, MAGLEV };

/*
 * The worker enforces max_conns by passing weight 0 for a full backend;
 * every scheduler must then fill the others and report -1 when all are.
 */
static void max_conns(enum sched sched)
{
	static const uint32_t w[] = { 3, 1, 2, 1 }, limit[] = { 2, 5, 3, 1 };
	static uint16_t table[101];
	struct lb_pick c[4];
	uint64_t keys[4], rng = 3;
	int64_t cur[4] = { 0 }, active[4] = { 0 };
	unsigned int rr = 0;
	int picked = 0;

	backend_keys(keys, 4);
	build(keys, w, 4, table, 101);
	for (uint32_t k = 0; k < 100; k++) {
		int i = -1;

		for (size_t j = 0; j < 4; j++)
			c[j] = (struct lb_pick){ active[j] < limit[j] ? w[j] : 0, active[j] };
		switch (sched) {
		case SWRR:
			i = lb_balance_swrr(c, 4, cur);
			break;
		case LEASTCONN:
			i = lb_balance_leastconn(c, 4, &rr);
			break;
		case RANDOM2:
			i = lb_balance_random2(c, 4, &rng);
			break;
		case MAGLEV:
			i = lb_balance_maglev_pick(table, 101, client_hash(k), c, 4);
			break;
		}
		if (i < 0)
			break;
		active[i]++;
		picked++;
		ck_assert_int_le(active[i], limit[i]);
	}
	ck_assert_int_eq(picked, 2 + 5 + 3 + 1);
}

START_TEST(test_max_conns)
{
	max_conns(SWRR);
	max_conns(LEASTCONN);
	max_conns(RANDOM2);
	max_conns(MAGLEV);
}
END_TEST

START_TEST(test_is_prime)
{
	static unsigned char composite[100001];

	ck_assert(lb_balance_is_prime(65537));
	ck_assert(!lb_balance_is_prime(65536));
	ck_assert(lb_balance_is_prime(2));
	ck_assert(lb_balance_is_prime(3));
	ck_assert(!lb_balance_is_prime(1));
	ck_assert(!lb_balance_is_prime(0));
	ck_assert(!lb_balance_is_prime(561));			/* Carmichael */
	ck_assert(lb_balance_is_prime(4294967291u));		/* largest below 2^32 */
	ck_assert(!lb_balance_is_prime(4294967295u));
	ck_assert(!lb_balance_is_prime(65521u * 65519u));	/* two primes near 2^16 */
	ck_assert(!lb_balance_is_prime(65537u * 65521u));
	ck_assert(lb_balance_is_prime(2147483647u));

	for (uint32_t i = 2; i <= 100000; i++) {
		if (composite[i])
			continue;
		for (uint32_t j = 2 * i; j <= 100000; j += i)
			composite[j] = 1;
	}
	for (uint32_t i = 2; i <= 100000; i++)
		CHECK(lb_balance_is_prime(i) == !composite[i]);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--maglev-dump"))
		return maglev_dump();
	verbose = getenv("CHECK_BALANCE_VERBOSE") != NULL;
	return lb_test_main("balance", NULL, NULL, 30,
			    LB_TESTS(test_swrr_shares, test_swrr_interleave, test_swrr_weight_drop,
				     test_swrr_churn, test_leastconn, test_leastconn_converges,
				     test_random2, test_maglev_shares, test_maglev_big_weights,
				     test_maglev_disruption, test_maglev_determinism, test_keys,
				     test_maglev_errors, test_maglev_max_backends, test_maglev_pick,
				     test_zero_weight, test_max_conns, test_is_prime));
}
