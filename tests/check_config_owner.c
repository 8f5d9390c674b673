// SPDX-License-Identifier: GPL-2.0-or-later
/* The "ownership" block (lb/config_owner.c): defaults, values, and each error with its path. */
#include <check.h>
#include <stdlib.h>

#include "lb/config.h"
#include "tests/config_fixture.h"
#include "tests/unit.h"

#define PEER_A "{'name':'a','addresses':['198.18.1.11']}"
#define PEER_B "{'name':'b','addresses':['198.18.1.12']}"
/* An ownership block of peers a and b, self a, with more keys x. */
#define OWN(x) TOP("'ownership':{'self':'a','peers':[" PEER_A "," PEER_B "]" x "}")

START_TEST(test_defaults)
{
	struct lb_config *cfg = parse_ok(TOP("'workers':1"));

	ck_assert(!cfg->ownership.enabled);
	lb_config_free(cfg);
	cfg = parse_ok(OWN(""));
	ck_assert(cfg->ownership.enabled);
	ck_assert_uint_eq(cfg->ownership.n_peers, 2);
	ck_assert_uint_eq(cfg->ownership.self, 0);
	ck_assert_str_eq(cfg->ownership.peers[1].name, "b");
	ck_assert_uint_eq(cfg->ownership.peers[1].n_addrs, 1);
	ck_assert_uint_eq(cfg->ownership.buckets, 4093);
	ck_assert_uint_eq(cfg->ownership.port, 4180);
	ck_assert_uint_eq(cfg->ownership.interval_ms, 100);
	ck_assert_uint_eq(cfg->ownership.dead_ms, 500);
	ck_assert_uint_eq(cfg->ownership.mark, 0x100);
	ck_assert_uint_eq(cfg->ownership.table, 300);
	ck_assert_uint_eq(cfg->ownership.dscp_to_owner, 43);
	ck_assert_uint_eq(cfg->ownership.dscp_second_chance, 47);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_values)
{
	struct lb_config *cfg = parse_ok(TOP("'ownership':{'self':'b','peers':["
		"{'name':'a','addresses':['198.18.1.11','2001:db8:1::11']},"
		"{'name':'b','addresses':['198.18.1.12','2001:db8:1::12']}],"
		"'buckets':65521,'port':5000,'interval_ms':50,'dead_ms':200,'mark':4096,"
		"'table':1000,'dscp_to_owner':1,'dscp_second_chance':63}"));
	const union lb_sockaddr *a6;

	ck_assert_uint_eq(cfg->ownership.self, 1);
	ck_assert_uint_eq(cfg->ownership.buckets, 65521);
	ck_assert_uint_eq(cfg->ownership.port, 5000);
	ck_assert_uint_eq(cfg->ownership.interval_ms, 50);
	ck_assert_uint_eq(cfg->ownership.dead_ms, 200);
	ck_assert_uint_eq(cfg->ownership.mark, 4096);
	ck_assert_uint_eq(cfg->ownership.table, 1000);
	ck_assert_uint_eq(cfg->ownership.dscp_to_owner, 1);
	ck_assert_uint_eq(cfg->ownership.dscp_second_chance, 63);
	a6 = lb_config_peer_addr(&cfg->ownership.peers[0], AF_INET6);
	ck_assert_ptr_nonnull(a6);
	ck_assert_ptr_null(lb_config_peer_addr(&(struct lb_owner_peer){ 0 }, AF_INET));
	lb_config_free(cfg);
}
END_TEST

static const struct {
	const char *json, *errors;
} invalid[] = {
	{ TOP("'ownership':[]"), "ownership: expected an object\n" },
	{ TOP("'ownership':{}"), "ownership.peers: missing required key\n"
	  "ownership.self: missing required key\n" },
	{ OWN(",'mtu':1500"), "ownership.mtu: unknown key\n" },
	{ TOP("'ownership':{'self':'c','peers':[" PEER_A "," PEER_B "]}"),
	  "ownership.self: no peer named \"c\"\n" },
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A "," PEER_A "]}"),
	  "ownership.peers[1].name: name \"a\" is also an earlier peer's\n" },
	/* Several, in document order: a peer's own keys, then how it compares to earlier ones. */
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A "," PEER_A ",{'addresses':['gw3']}]}"),
	  "ownership.peers[1].name: name \"a\" is also an earlier peer's\n"
	  "ownership.peers[2].addresses[0]: invalid address \"gw3\" (an IPv4 or IPv6 address "
	  "without port)\n"
	  "ownership.peers[2].name: missing required key\n" },
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A ",{'name':'b','addresses':['198.18.1.11']}]}"),
	  "ownership.peers[1].addresses: 198.18.1.11 is also peer 0's address\n" },
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A ",{'name':'b','addresses':['gw2']}]}"),
	  "ownership.peers[1].addresses[0]: invalid address \"gw2\" (an IPv4 or IPv6 address "
	  "without port)\n" },
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A ",{'name':'b','addresses':['198.18.1.12',"
	      "'198.18.1.13']}]}"),
	  "ownership.peers[1].addresses[1]: a second IPv4 address; give one of each family\n" },
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A ",{'name':'b','addresses':['1.1.1.1',"
	      "'::1','2.2.2.2']}]}"),
	  "ownership.peers[1].addresses: at most two addresses, one IPv4 and one IPv6\n" },
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A ",{'name':'b','addresses':['2001:db8:1::12']}]}"),
	  "ownership.peers[1].addresses: the first address is IPv6, peer 0's is IPv4: heartbeats go "
	  "to every peer's first address, which must be of one family\n"
	  "ownership.peers[1].addresses: no IPv4 address, and services have IPv4 VIPs: their "
	  "packets could not be forwarded to this peer\n" },
	{ TOP("'ownership':{'self':'a','peers':[" PEER_A ",{'addresses':['198.18.1.12']}]}"),
	  "ownership.peers[1].name: missing required key\n" },
	{ OWN(",'buckets':4096"), "ownership.buckets: 4096 is not prime (Maglev fills a table of "
	  "prime size; 4093, 16381 and 65521 are)\n" },
	{ OWN(",'buckets':2"), "ownership.buckets: 2 out of range (3..65521)\n" },
	{ OWN(",'interval_ms':300"), "ownership.dead_ms: 500 is less than two heartbeats "
	  "(interval_ms 300): one late heartbeat would make a peer dead\n" },
	{ OWN(",'dscp_second_chance':43"), "ownership.dscp_second_chance: 43 is also dscp_to_owner: "
	  "a packet's second chance must look different\n" },
	{ OWN(",'dscp_to_owner':0"), "ownership.dscp_to_owner: 0 out of range (1..63)\n" },
	{ TOP("'intercept':{'mark':257},'ownership':{'self':'a','peers':[" PEER_A "," PEER_B "]}"),
	  "ownership.mark: marks 256..257 (one per peer) hold intercept.mark 257\n" },
	{ TOP("'intercept':{'route_table':301},'ownership':{'self':'a','peers':[" PEER_A "," PEER_B
	      "]}"),
	  "ownership.table: tables 300..301 (one per peer) hold intercept.route_table 301\n" },
	{ "{'ownership':{'self':'a','peers':[" PEER_A "," PEER_B "]},'services':[{'name':'web',"
	  "'vips':['[2001:db8:100::1]:80'],'backends':[{'address':'[2001:db8:2::2]:80'}]}]}",
	  "ownership.peers[0].addresses: no IPv6 address, and services have IPv6 VIPs: their "
	  "packets could not be forwarded to this peer\n"
	  "ownership.peers[1].addresses: no IPv6 address, and services have IPv6 VIPs: their "
	  "packets could not be forwarded to this peer\n" },
};

START_TEST(test_invalid)
{
	parse_fails(invalid[_i].json, invalid[_i].errors);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_owner");
	TCase *tc = lb_test_case(s, "config_owner", NULL, NULL, LB_TESTS(test_defaults, test_values));

	tcase_add_loop_test(tc, test_invalid, 0, sizeof(invalid) / sizeof(invalid[0]));
	return lb_test_run(s);
}
