/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lb_nft_watch_parse() on notifications built the way the kernel sends
 * them: which changes take away lb's table, fwmark rules and routes, who
 * they are blamed on, and that lb's own changes and everyone else's
 * objects are ignored. No socket, no root.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdbool.h>
#include <string.h>

#include <linux/fib_rules.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#include "nft/watch.h"
#include "tests/unit.h"

#define MAX_EVENTS 8

static const struct lb_nft_watch_spec spec = {
	.table = "lb",
	.route = { .mark = 1, .table = 100, .priority = 100, .ipv4 = 1, .ipv6 = 1 },
};

static struct lb_nft_watch *w;
static _Alignas(struct nlmsghdr) char buf[16384];
static size_t used;
static struct lb_nft_watch_event events[MAX_EVENTS];
static int n_events;

static void collect(void *arg, const struct lb_nft_watch_event *ev)
{
	ck_assert_int_lt(n_events, MAX_EVENTS);
	events[n_events++] = *ev;
}

static void setup(void)
{
	w = lb_nft_watch_alloc();
	ck_assert_ptr_nonnull(w);
	used = 0;
	n_events = 0;
}

static void teardown(void)
{
	lb_nft_watch_free(w);
}

static struct nlmsghdr *put(uint16_t type, uint32_t portid, const void *hdr, size_t hdrlen)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + used);

	nlh->nlmsg_type = type;
	nlh->nlmsg_pid = portid;
	memcpy(mnl_nlmsg_put_extra_header(nlh, hdrlen), hdr, hdrlen);
	return nlh;
}

static void end(struct nlmsghdr *nlh)
{
	used += NLMSG_ALIGN(nlh->nlmsg_len);
	ck_assert_uint_lt(used, sizeof(buf) / 2);
}

/* Feeds what was put since the last call, as one receive, watching for s. */
static void parse_for(enum lb_nft_watch_src src, const struct lb_nft_watch_spec *s)
{
	lb_nft_watch_parse(w, src, s, buf, used, collect, NULL);
	used = 0;
}

static void parse(enum lb_nft_watch_src src)
{
	parse_for(src, &spec);
}

static struct nlmsghdr *nft(uint16_t type, uint8_t family, uint32_t portid)
{
	struct nfgenmsg nfg = { .nfgen_family = family, .version = NFNETLINK_V0 };

	return put((NFNL_SUBSYS_NFTABLES << 8) | type, portid, &nfg, sizeof(nfg));
}

/* A message naming table (attribute ta) and an object (attribute oa, if any). */
static void nft_obj(uint16_t type, uint8_t family, uint32_t portid, uint16_t ta,
		    const char *table, uint16_t oa, const char *name)
{
	struct nlmsghdr *nlh = nft(type, family, portid);

	mnl_attr_put_strz(nlh, ta, table);
	if (name)
		mnl_attr_put_strz(nlh, oa, name);
	end(nlh);
}

static void newgen(uint32_t portid, uint32_t pid, const char *comm)
{
	struct nlmsghdr *nlh = nft(NFT_MSG_NEWGEN, AF_UNSPEC, portid);

	mnl_attr_put_u32(nlh, NFTA_GEN_ID, htonl(7));
	mnl_attr_put_u32(nlh, NFTA_GEN_PROC_PID, htonl(pid));
	mnl_attr_put_strz(nlh, NFTA_GEN_PROC_NAME, comm);
	end(nlh);
}

static void rule(uint16_t type, uint8_t family, uint32_t portid, uint32_t mark, uint32_t table,
		 bool table_attr, uint32_t prio)
{
	struct fib_rule_hdr frh = {
		.family = family, .action = FR_ACT_TO_TBL, .table = table < 256 ? table : 0,
	};
	struct nlmsghdr *nlh = put(type, portid, &frh, sizeof(frh));

	mnl_attr_put_u32(nlh, FRA_FWMARK, mark);
	if (table_attr)
		mnl_attr_put_u32(nlh, FRA_TABLE, table);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, prio);
	end(nlh);
}

static void route(uint16_t type, uint16_t flags, uint8_t family, uint32_t portid, uint32_t table,
		  uint8_t rtype, uint8_t dst_len)
{
	struct rtmsg rtm = {
		.rtm_family = family, .rtm_dst_len = dst_len, .rtm_table = table < 256 ? table : 0,
		.rtm_type = rtype, .rtm_scope = RT_SCOPE_HOST,
	};
	struct nlmsghdr *nlh = put(type, portid, &rtm, sizeof(rtm));

	nlh->nlmsg_flags = flags;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	end(nlh);
}

START_TEST(flush_ruleset_is_one_event_blamed_on_its_process)
{
	nft_obj(NFT_MSG_DELRULE, NFPROTO_INET, 4242, NFTA_RULE_TABLE, "lb", NFTA_RULE_CHAIN,
		"prerouting");
	nft_obj(NFT_MSG_DELSET, NFPROTO_INET, 4242, NFTA_SET_TABLE, "lb", NFTA_SET_NAME, "vips4");
	nft_obj(NFT_MSG_DELTABLE, NFPROTO_INET, 4242, NFTA_TABLE_NAME, "lb", 0, NULL);
	nft_obj(NFT_MSG_DELTABLE, NFPROTO_INET, 4242, NFTA_TABLE_NAME, "filter", 0, NULL);
	newgen(4242, 4242, "nft");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 1);
	ck_assert_uint_eq(events[0].gone, LB_NFT_GONE_TABLE);
	ck_assert_str_eq(events[0].what, "table inet lb deleted");
	ck_assert_uint_eq(events[0].objects, 3);
	ck_assert_uint_eq(events[0].portid, 4242);
	ck_assert_uint_eq(events[0].pid, 4242);
	ck_assert_str_eq(events[0].comm, "nft");
}
END_TEST

START_TEST(transaction_is_reported_at_its_newgen)
{
	nft_obj(NFT_MSG_DELSETELEM, NFPROTO_INET, 50, NFTA_SET_ELEM_LIST_TABLE, "lb",
		NFTA_SET_ELEM_LIST_SET, "vips6");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 0);
	newgen(50, 51, "firewalld");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 1);
	ck_assert_str_eq(events[0].what, "element of set inet lb vips6 deleted");
	ck_assert_uint_eq(events[0].pid, 51);
	ck_assert_str_eq(events[0].comm, "firewalld");
	/* The next transaction starts clean. */
	newgen(50, 51, "firewalld");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 1);
}
END_TEST

START_TEST(other_tables_and_families_are_ignored)
{
	nft_obj(NFT_MSG_DELTABLE, NFPROTO_IPV4, 9, NFTA_TABLE_NAME, "lb", 0, NULL);
	nft_obj(NFT_MSG_DELTABLE, NFPROTO_INET, 9, NFTA_TABLE_NAME, "lb2", 0, NULL);
	nft_obj(NFT_MSG_DELCHAIN, NFPROTO_INET, 9, NFTA_CHAIN_TABLE, "filter", NFTA_CHAIN_NAME,
		"input");
	nft_obj(NFT_MSG_NEWCHAIN, NFPROTO_INET, 9, NFTA_CHAIN_TABLE, "lb", NFTA_CHAIN_NAME, "x");
	newgen(9, 9, "nft");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 0);
}
END_TEST

START_TEST(own_changes_are_ignored)
{
	lb_nft_watch_own(NETLINK_NETFILTER, 0x80001234);
	lb_nft_watch_own(NETLINK_ROUTE, 0x80005678);
	/* lb's own apply replaces its table: delete and add in one transaction. */
	nft_obj(NFT_MSG_DELTABLE, NFPROTO_INET, 0x80001234, NFTA_TABLE_NAME, "lb", 0, NULL);
	nft_obj(NFT_MSG_NEWTABLE, NFPROTO_INET, 0x80001234, NFTA_TABLE_NAME, "lb", 0, NULL);
	newgen(0x80001234, 1, "lb");
	parse(LB_NFT_WATCH_NFT);
	rule(RTM_DELRULE, AF_INET, 0x80005678, 1, 100, true, 100);
	route(RTM_DELROUTE, 0, AF_INET, 0x80005678, 100, RTN_LOCAL, 0);
	parse(LB_NFT_WATCH_ROUTE);
	ck_assert_int_eq(n_events, 0);
	/* The same port number on the other protocol is someone else's. */
	rule(RTM_DELRULE, AF_INET, 0x80001234, 1, 100, true, 100);
	parse(LB_NFT_WATCH_ROUTE);
	ck_assert_int_eq(n_events, 1);
}
END_TEST

/* A kept port (announce.c's) stays lb's whatever the ports opened after it, until it goes. */
START_TEST(kept_port_is_own_until_dropped)
{
	lb_nft_watch_own_kept(NETLINK_ROUTE, 0x80009999, true);
	for (uint32_t i = 0; i < 100; i++)
		lb_nft_watch_own(NETLINK_ROUTE, 0x80010000 + i);
	rule(RTM_DELRULE, AF_INET, 0x80009999, 1, 100, true, 100);
	parse(LB_NFT_WATCH_ROUTE);
	ck_assert_int_eq(n_events, 0);
	lb_nft_watch_own_kept(NETLINK_ROUTE, 0x80009999, false);
	rule(RTM_DELRULE, AF_INET, 0x80009999, 1, 100, true, 100);
	parse(LB_NFT_WATCH_ROUTE);
	ck_assert_int_eq(n_events, 1);
}
END_TEST

START_TEST(dormant_table_counts_as_gone)
{
	struct nlmsghdr *nlh = nft(NFT_MSG_NEWTABLE, NFPROTO_INET, 3);

	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, "lb");
	mnl_attr_put_u32(nlh, NFTA_TABLE_FLAGS, htonl(0));
	end(nlh);
	newgen(3, 3, "nft");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 0);
	nlh = nft(NFT_MSG_NEWTABLE, NFPROTO_INET, 3);
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, "lb");
	mnl_attr_put_u32(nlh, NFTA_TABLE_FLAGS, htonl(NFT_TABLE_F_DORMANT));
	end(nlh);
	newgen(3, 3, "nft");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 1);
	ck_assert_str_eq(events[0].what, "table inet lb made dormant");
}
END_TEST

START_TEST(fwmark_rule_deleted)
{
	rule(RTM_DELRULE, AF_INET, 777, 1, 100, true, 100);
	rule(RTM_DELRULE, AF_INET6, 778, 1, 100, false, 100);	/* table in the header only */
	rule(RTM_DELRULE, AF_INET, 779, 2, 100, true, 100);	/* another mark */
	rule(RTM_DELRULE, AF_INET, 779, 1, 101, true, 100);	/* another table */
	rule(RTM_DELRULE, AF_INET, 779, 1, 100, true, 200);	/* another priority */
	rule(RTM_NEWRULE, AF_INET, 779, 1, 100, true, 100);	/* added, not removed */
	parse(LB_NFT_WATCH_ROUTE);
	ck_assert_int_eq(n_events, 2);
	ck_assert_uint_eq(events[0].gone, LB_NFT_GONE_RULE4);
	ck_assert_str_eq(events[0].what, "rule fwmark 0x1 lookup 100 pref 100 (ipv4) deleted");
	ck_assert_uint_eq(events[0].portid, 777);
	ck_assert_uint_eq(events[0].pid, 0);
	ck_assert_uint_eq(events[1].gone, LB_NFT_GONE_RULE6);
}
END_TEST

START_TEST(unwatched_family_is_ignored)
{
	struct lb_nft_watch_spec v4only = spec;

	v4only.route.ipv6 = 0;
	rule(RTM_DELRULE, AF_INET6, 5, 1, 100, true, 100);
	route(RTM_DELROUTE, 0, AF_INET6, 5, 100, RTN_LOCAL, 0);
	parse_for(LB_NFT_WATCH_ROUTE, &v4only);
	ck_assert_int_eq(n_events, 0);
}
END_TEST

START_TEST(local_default_route_deleted_or_replaced)
{
	route(RTM_DELROUTE, 0, AF_INET6, 0, 100, RTN_LOCAL, 0);	/* by the kernel */
	route(RTM_DELROUTE, 0, AF_INET, 8, 101, RTN_LOCAL, 0);		/* another table */
	route(RTM_DELROUTE, 0, AF_INET, 8, 100, RTN_LOCAL, 24);		/* not the default */
	route(RTM_DELROUTE, 0, AF_INET, 8, 100, RTN_UNICAST, 0);	/* not lb's kind */
	route(RTM_NEWROUTE, NLM_F_CREATE, AF_INET, 8, 100, RTN_UNICAST, 0);	/* beside it */
	route(RTM_NEWROUTE, NLM_F_REPLACE, AF_INET, 8, 100, RTN_LOCAL, 0);	/* as lb's */
	route(RTM_NEWROUTE, NLM_F_REPLACE, AF_INET, 9, 1000, RTN_UNICAST, 0);	/* elsewhere */
	route(RTM_NEWROUTE, NLM_F_REPLACE, AF_INET, 9, 100, RTN_UNICAST, 0);	/* over it */
	parse(LB_NFT_WATCH_ROUTE);
	ck_assert_int_eq(n_events, 2);
	ck_assert_uint_eq(events[0].gone, LB_NFT_GONE_ROUTE6);
	ck_assert_str_eq(events[0].what, "route local default table 100 (ipv6) deleted");
	ck_assert_uint_eq(events[0].portid, 0);
	ck_assert_uint_eq(events[1].gone, LB_NFT_GONE_ROUTE4);
	ck_assert_str_eq(events[1].what, "route local default table 100 (ipv4) replaced");
	ck_assert_uint_eq(events[1].portid, 9);
}
END_TEST

START_TEST(large_route_table_ids_come_from_the_attribute)
{
	struct lb_nft_watch_spec big = spec;

	big.route.table = 1000;
	rule(RTM_DELRULE, AF_INET, 5, 1, 1000, true, 100);
	route(RTM_DELROUTE, 0, AF_INET, 5, 1000, RTN_LOCAL, 0);
	parse_for(LB_NFT_WATCH_ROUTE, &big);
	ck_assert_int_eq(n_events, 2);
	ck_assert_str_eq(events[1].what, "route local default table 1000 (ipv4) deleted");
}
END_TEST

START_TEST(malformed_input_is_skipped)
{
	struct nlmsghdr *nlh;
	size_t len;

	/* A table name without its NUL, a message shorter than its header. */
	nlh = nft(NFT_MSG_DELTABLE, NFPROTO_INET, 6);
	mnl_attr_put(nlh, NFTA_TABLE_NAME, 2, "lb");
	end(nlh);
	nlh = mnl_nlmsg_put_header(buf + used);
	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE;
	end(nlh);
	newgen(6, 6, "nft");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 0);
	/* A message cut short. */
	nlh = nft(NFT_MSG_DELTABLE, NFPROTO_INET, 6);
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, "lb");
	len = nlh->nlmsg_len - 1;
	lb_nft_watch_parse(w, LB_NFT_WATCH_NFT, &spec, buf, len, collect, NULL);
	newgen(6, 6, "nft");
	parse(LB_NFT_WATCH_NFT);
	ck_assert_int_eq(n_events, 0);
	nlh = put(RTM_DELRULE, 6, "x", 1);
	end(nlh);
	nlh = put(RTM_DELROUTE, 6, "x", 1);
	end(nlh);
	parse(LB_NFT_WATCH_ROUTE);
	ck_assert_int_eq(n_events, 0);
}
END_TEST

START_TEST(no_table_watched)
{
	struct lb_nft_watch_spec none = { 0 };

	nft_obj(NFT_MSG_DELTABLE, NFPROTO_INET, 4, NFTA_TABLE_NAME, "lb", 0, NULL);
	newgen(4, 4, "nft");
	rule(RTM_DELRULE, AF_INET, 4, 1, 100, true, 100);
	parse_for(LB_NFT_WATCH_NFT, &none);
	ck_assert_int_eq(n_events, 0);
}
END_TEST

int main(void)
{
	return lb_test_main("watch", setup, teardown, 0,
			    LB_TESTS(flush_ruleset_is_one_event_blamed_on_its_process,
				     transaction_is_reported_at_its_newgen,
				     other_tables_and_families_are_ignored, own_changes_are_ignored,
				     kept_port_is_own_until_dropped,
				     dormant_table_counts_as_gone, fwmark_rule_deleted,
				     unwatched_family_is_ignored,
				     local_default_route_deleted_or_replaced,
				     large_route_table_ids_come_from_the_attribute,
				     malformed_input_is_skipped, no_table_watched));
}
