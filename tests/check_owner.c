// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The bucket table of gateway ownership (lb/owner.c) and the peers'
 * heartbeat (lb/peers.c's pure half): shares, moves, previous owners,
 * each gateway's verdicts, and the wire format.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "lb/owner.h"
#include "lb/peers.h"
#include "tests/config_fixture.h"
#include "tests/unit.h"

#define NB 4093
#define ALL3 0x7u

static uint64_t keys[3];

static void setup(void)
{
	keys[0] = lb_owner_key("gw1");
	keys[1] = lb_owner_key("gw2");
	keys[2] = lb_owner_key("gw3");
}

static void counts(const struct lb_owner_table *t, uint32_t owned[3], uint32_t prev[3])
{
	lb_owner_table_count(t, 3, owned, prev);
}

START_TEST(test_init)
{
	struct lb_owner_table t;

	ck_assert_int_eq(lb_owner_table_init(&t, 4096), -EINVAL);
	ck_assert_int_eq(lb_owner_table_init(&t, NB), 0);
	for (uint32_t b = 0; b < NB; b++)
		ck_assert_uint_eq(t.owner[b], LB_OWNER_NONE);
	/* Nobody serves: nothing moves, every bucket stays unowned. */
	ck_assert_int_eq(lb_owner_table_update(&t, keys, 3, 0, 0), 0);
	ck_assert_int_eq(lb_owner_table_update(&t, keys, LB_OWNER_PEERS_MAX + 1, 0, 0), -EINVAL);
	lb_owner_table_fini(&t);
}
END_TEST

/* Near-even shares; a dead peer's buckets move, few others do, nobody is left as previous. */
START_TEST(test_shares_and_death)
{
	struct lb_owner_table t;
	uint16_t before[NB];
	uint32_t owned[3], prev[3];
	int moved, others = 0;

	ck_assert_int_eq(lb_owner_table_init(&t, NB), 0);
	ck_assert_int_eq(lb_owner_table_update(&t, keys, 3, ALL3, 0), NB);
	counts(&t, owned, prev);
	for (int k = 0; k < 3; k++) {
		ck_assert_uint_ge(owned[k], NB / 3 - 1);
		ck_assert_uint_le(owned[k], NB / 3 + 1);
		ck_assert_uint_eq(prev[k], 0);
	}
	ck_assert_int_eq(lb_owner_table_update(&t, keys, 3, ALL3, 0), 0);
	memcpy(before, t.owner, sizeof(before));
	/* gw3 dies: serving nor holding. */
	moved = lb_owner_table_update(&t, keys, 3, 0x3, 0);
	for (uint32_t b = 0; b < NB; b++) {
		ck_assert_uint_ne(t.owner[b], 2);
		if (before[b] != 2 && before[b] != t.owner[b])
			others++;
		ck_assert_uint_eq(t.prev[b], before[b] != 2 && before[b] != t.owner[b] ?
				  before[b] : LB_OWNER_NONE);
	}
	ck_assert_int_eq(moved, (int)owned[2] + others);
	/* Maglev moves a few buckets between survivors (well under 1%). */
	ck_assert_int_lt(others, NB / 100);
	lb_owner_table_fini(&t);
}
END_TEST

/* A drained peer owns nothing but stays previous owner while it holds connections. */
START_TEST(test_drain)
{
	struct lb_owner_table t;
	uint16_t before[NB];
	uint32_t owned[3], prev[3];

	ck_assert_int_eq(lb_owner_table_init(&t, NB), 0);
	lb_owner_table_update(&t, keys, 3, ALL3, 0);
	memcpy(before, t.owner, sizeof(before));
	lb_owner_table_update(&t, keys, 3, 0x5, 0x2);
	counts(&t, owned, prev);
	ck_assert_uint_eq(owned[1], 0);
	ck_assert_uint_ge(prev[1], NB / 3 - 1);
	for (uint32_t b = 0; b < NB; b++)
		if (before[b] == 1)
			ck_assert_uint_eq(t.prev[b], 1);
	/* Still holding: nothing changes. */
	ck_assert_int_eq(lb_owner_table_update(&t, keys, 3, 0x5, 0x2), 0);
	counts(&t, owned, prev);
	ck_assert_uint_ge(prev[1], NB / 3 - 1);
	/* Its connections ended: it is forgotten, with no owner moved. */
	ck_assert_int_eq(lb_owner_table_update(&t, keys, 3, 0x5, 0), 0);
	counts(&t, owned, prev);
	ck_assert_uint_eq(prev[1], 0);
	lb_owner_table_fini(&t);
}
END_TEST

/* A peer that (re)joins takes buckets; their old owners become previous owners. */
START_TEST(test_join)
{
	struct lb_owner_table t;
	uint16_t before[NB];
	uint32_t owned[3], prev[3];

	ck_assert_int_eq(lb_owner_table_init(&t, NB), 0);
	lb_owner_table_update(&t, keys, 3, 0x3, 0);
	memcpy(before, t.owner, sizeof(before));
	lb_owner_table_update(&t, keys, 3, ALL3, 0);
	counts(&t, owned, prev);
	ck_assert_uint_ge(owned[2], NB / 3 - 1);
	for (uint32_t b = 0; b < NB; b++)
		if (t.owner[b] != before[b])
			ck_assert_uint_eq(t.prev[b], before[b]);
	lb_owner_table_fini(&t);
}
END_TEST

/*
 * Verdicts: from outside, a packet goes to its owner (here when self owns
 * it); its second chance at the owner goes to the previous owner.
 */
START_TEST(test_verdicts)
{
	struct lb_owner_table t;
	uint16_t to[NB], chance[NB];
	int here = 0, second = 0;

	ck_assert_int_eq(lb_owner_table_init(&t, NB), 0);
	lb_owner_table_update(&t, keys, 3, ALL3, 0);
	lb_owner_table_update(&t, keys, 3, 0x5, 0x2);	/* gw2 drains */
	lb_owner_table_verdicts(&t, 0, to, chance);
	for (uint32_t b = 0; b < NB; b++) {
		if (t.owner[b] == 0) {
			here++;
			ck_assert_uint_eq(to[b], LB_OWNER_NONE);
			ck_assert_uint_eq(chance[b], t.prev[b] == 0 ? LB_OWNER_NONE : t.prev[b]);
			second += chance[b] == 1;
		} else {
			ck_assert_uint_eq(to[b], t.owner[b]);
			ck_assert_uint_eq(chance[b], t.owner[b]);
		}
	}
	ck_assert_int_gt(here, NB / 3);
	ck_assert_int_gt(second, NB / 8);
	/* The drained gateway's own view: it forwards everything. */
	lb_owner_table_verdicts(&t, 1, to, chance);
	for (uint32_t b = 0; b < NB; b++)
		ck_assert_uint_ne(to[b], LB_OWNER_NONE);
	lb_owner_table_fini(&t);
}
END_TEST

START_TEST(test_wire)
{
	struct lb_peers_beat in = {
		.state = LB_PEER_DRAINING, .index = 2, .fingerprint = 0xdeadbeef,
		.connections = 123456, .incarnation = 0x0102030405060708ull, .seq = 99,
	}, out;
	uint8_t buf[LB_PEERS_WIRE_LEN];

	lb_peers_encode(&in, buf);
	ck_assert_int_eq(lb_peers_decode(buf, sizeof(buf), &out), 0);
	ck_assert_int_eq(out.state, in.state);
	ck_assert_uint_eq(out.index, in.index);
	ck_assert_uint_eq(out.fingerprint, in.fingerprint);
	ck_assert_uint_eq(out.connections, in.connections);
	ck_assert(out.incarnation == in.incarnation);
	ck_assert_uint_eq(out.seq, in.seq);
	ck_assert_int_eq(lb_peers_decode(buf, sizeof(buf) - 1, &out), -EBADMSG);
	buf[0] ^= 1;
	ck_assert_int_eq(lb_peers_decode(buf, sizeof(buf), &out), -EBADMSG);
	buf[0] ^= 1;
	buf[5] = LB_PEER_DEAD;	/* silence, never a heartbeat */
	ck_assert_int_eq(lb_peers_decode(buf, sizeof(buf), &out), -EBADMSG);
}
END_TEST

/* Gateways must agree on peers (names, addresses, order) and NB; self and timing may differ. */
START_TEST(test_fingerprint)
{
#define P2(self, a, b, x) "{'ownership':{'self':'" self "','peers':[" a "," b "]" x "}," \
	"'services':[{'name':'web','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}"
#define PA "{'name':'a','addresses':['198.18.1.11']}"
#define PB "{'name':'b','addresses':['198.18.1.12']}"
	struct lb_config *c1 = parse_ok(P2("a", PA, PB, "")), *c2 = parse_ok(P2("b", PA, PB,
		",'interval_ms':50,'dead_ms':300"));
	struct lb_config *c3 = parse_ok(P2("a", PB, PA, "")), *c4 = parse_ok(P2("a", PA, PB,
		",'buckets':16381"));
	struct lb_config *c5 = parse_ok(P2("a", PA, "{'name':'b','addresses':['198.18.1.13']}", ""));

	ck_assert_uint_eq(lb_peers_fingerprint(c1), lb_peers_fingerprint(c2));
	ck_assert_uint_ne(lb_peers_fingerprint(c1), lb_peers_fingerprint(c3));
	ck_assert_uint_ne(lb_peers_fingerprint(c1), lb_peers_fingerprint(c4));
	ck_assert_uint_ne(lb_peers_fingerprint(c1), lb_peers_fingerprint(c5));
	lb_config_free(c1);
	lb_config_free(c2);
	lb_config_free(c3);
	lb_config_free(c4);
	lb_config_free(c5);
}
END_TEST

int main(void)
{
	return lb_test_main("owner", setup, NULL, 0,
			    LB_TESTS(test_init, test_shares_and_death, test_drain, test_join,
				     test_verdicts, test_wire, test_fingerprint));
}
