/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Round trip of lb_nft_ruleset_build() as libnftnl's own tests do it: build
 * the batch into a buffer, parse every message back with libnftnl and check
 * what the kernel would receive. No socket, no root.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "nft/nft.h"
#include "tests/unit.h"

#define MARK	0x1eb
#define PORT	8080
#define SEQ0	1000
#define MAX_MSGS 64
#define BATCH_LIMIT 8192

static union lb_nft_addr vips[3];

static const struct lb_nft_spec spec = {
	.table = "lb", .mark = MARK, .port = PORT, .vips = vips, .n_vips = 3,
};

/* The built batch, split into messages. */
static char buf[BATCH_LIMIT * 2];
static const struct nlmsghdr *msgs[MAX_MSGS];
static int n_msgs;

static void vip4(union lb_nft_addr *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *in = &ss->in;

	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	in->sin_port = htons(port);
}

static void vip6(union lb_nft_addr *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in6 *in6 = &ss->in6;

	memset(ss, 0, sizeof(*ss));
	in6->sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	in6->sin6_port = htons(port);
}

static void build(const struct lb_nft_spec *s)
{
	struct mnl_nlmsg_batch *b;
	const struct nlmsghdr *nlh;
	uint32_t seq = SEQ0;
	int len;

	b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(lb_nft_ruleset_build(s, b, &seq), 0);
	len = (int)mnl_nlmsg_batch_size(b);
	n_msgs = 0;
	for (nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		ck_assert_int_lt(n_msgs, MAX_MSGS);
		msgs[n_msgs++] = nlh;
	}
	ck_assert_int_eq(len, 0);
	/* One sequence number per message, all of them consumed. */
	ck_assert_uint_eq(seq, SEQ0 + (uint32_t)n_msgs);
	mnl_nlmsg_batch_stop(b);
}

static void setup(void)
{
	vip4(&vips[0], "198.18.100.1", 80);
	vip6(&vips[1], "2001:db8::1", 443);
	vip4(&vips[2], "198.18.100.2", 8443);
	build(&spec);
}

static uint16_t msg_type(int i)
{
	ck_assert_int_eq(msgs[i]->nlmsg_type >> 8, NFNL_SUBSYS_NFTABLES);
	return msgs[i]->nlmsg_type & 0xff;
}

START_TEST(test_message_order)
{
	static const uint16_t want[] = {
		NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE,
		NFT_MSG_NEWSET, NFT_MSG_NEWSET,
		/* A set's elements go many to a message: one for each set here. */
		NFT_MSG_NEWSETELEM, NFT_MSG_NEWSETELEM,
		NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE, NFT_MSG_NEWRULE, NFT_MSG_NEWRULE,
		/* Each anonymous set comes before the rule that binds it. */
		NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM, NFT_MSG_NEWSETELEM, NFT_MSG_NEWSETELEM,
		NFT_MSG_NEWRULE,
		NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM, NFT_MSG_NEWSETELEM, NFT_MSG_NEWSETELEM,
		NFT_MSG_NEWSETELEM, NFT_MSG_NEWRULE,
	};
	size_t i;

	ck_assert_int_eq(n_msgs, (int)(sizeof(want) / sizeof(want[0])));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct nfgenmsg *g = mnl_nlmsg_get_payload(msgs[i]);

		ck_assert_uint_eq(msg_type(i), want[i]);
		ck_assert_uint_eq(msgs[i]->nlmsg_seq, SEQ0 + i);
		ck_assert_uint_eq(g->nfgen_family, NFPROTO_INET);
		/* apply.c maps each error back through its ack. */
		ck_assert(msgs[i]->nlmsg_flags & NLM_F_ACK);
		ck_assert(msgs[i]->nlmsg_flags & NLM_F_REQUEST);
	}
	ck_assert(msgs[0]->nlmsg_flags & NLM_F_CREATE);
	ck_assert(msgs[2]->nlmsg_flags & NLM_F_CREATE);
	ck_assert(msgs[8]->nlmsg_flags & NLM_F_APPEND);
}
END_TEST

/* A renamed table: the old one is deleted in the same batch, before the new one is built. */
START_TEST(test_retire)
{
	static const char *const want[] = { "old", "old", "lb", "lb", "lb" };
	static const uint16_t types[] = {
		NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE,
	};
	struct lb_nft_spec s = spec;
	struct mnl_nlmsg_batch *b;
	uint32_t seq = SEQ0;
	int plain;

	plain = n_msgs;
	s.retire = "old";
	build(&s);
	ck_assert_int_eq(n_msgs, plain + 2);
	for (int i = 0; i < 5; i++) {
		struct nftnl_table *t = nftnl_table_alloc();

		ck_assert_uint_eq(msg_type(i), types[i]);
		ck_assert_int_ge(nftnl_table_nlmsg_parse(msgs[i], t), 0);
		ck_assert_str_eq(nftnl_table_get_str(t, NFTNL_TABLE_NAME), want[i]);
		nftnl_table_free(t);
	}
	ck_assert(msgs[0]->nlmsg_flags & NLM_F_CREATE);
	/* Retiring the table being built is no retirement. */
	s.retire = "lb";
	build(&s);
	ck_assert_int_eq(n_msgs, plain);
	s.retire = "";
	b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	mnl_nlmsg_batch_stop(b);
}
END_TEST

START_TEST(test_tables)
{
	int i;

	for (i = 0; i < 3; i++) {
		struct nftnl_table *t = nftnl_table_alloc();

		ck_assert_int_ge(nftnl_table_nlmsg_parse(msgs[i], t), 0);
		ck_assert_str_eq(nftnl_table_get_str(t, NFTNL_TABLE_NAME), "lb");
		ck_assert_uint_eq(nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY), NFPROTO_INET);
		nftnl_table_free(t);
	}
}
END_TEST

static void check_set(const struct nlmsghdr *nlh, const char *name, uint32_t type,
		      uint32_t len, uint32_t id)
{
	struct nftnl_set *s = nftnl_set_alloc();

	ck_assert_int_ge(nftnl_set_nlmsg_parse(nlh, s), 0);
	ck_assert_str_eq(nftnl_set_get_str(s, NFTNL_SET_TABLE), "lb");
	ck_assert_str_eq(nftnl_set_get_str(s, NFTNL_SET_NAME), name);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FAMILY), NFPROTO_INET);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), type);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), len);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_ID), id);
	/* Elements are updated later: the set must not be constant. */
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_CONSTANT, 0);
	ck_assert(!nftnl_set_is_set(s, NFTNL_SET_DATA_TYPE));
	nftnl_set_free(s);
}

START_TEST(test_sets)
{
	check_set(msgs[3], "vips4", (7 << 6) | 13, 8, 1);
	check_set(msgs[4], "vips6", (8 << 6) | 13, 20, 2);
}
END_TEST

/*
 * The message's elements of set: n keys of key_len bytes, in order. Read
 * with libmnl: libnftnl's parser takes a list of one element only (it
 * wants every nest numbered 1, where its builder numbers them 1, 2, ...;
 * the kernel does not look at the numbers).
 */
static void check_elems(const struct nlmsghdr *nlh, const char *set, uint32_t id,
			const uint8_t *const *keys, int n, uint32_t key_len)
{
	const struct nlattr *a, *list = NULL;
	int i = 0;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(a)) {
		case NFTA_SET_ELEM_LIST_TABLE:
			ck_assert_str_eq(mnl_attr_get_str(a), "lb");
			break;
		case NFTA_SET_ELEM_LIST_SET:
			ck_assert_str_eq(mnl_attr_get_str(a), set);
			break;
		case NFTA_SET_ELEM_LIST_SET_ID:
			ck_assert_uint_eq(ntohl(mnl_attr_get_u32(a)), id);
			break;
		case NFTA_SET_ELEM_LIST_ELEMENTS:
			list = a;
			break;
		}
	}
	ck_assert_ptr_nonnull(list);
	mnl_attr_for_each_nested(a, list) {
		const struct nlattr *k, *v;
		bool found = false;

		ck_assert_int_lt(i, n);
		mnl_attr_for_each_nested(k, a) {
			if (mnl_attr_get_type(k) != NFTA_SET_ELEM_KEY)
				continue;
			mnl_attr_for_each_nested(v, k) {
				ck_assert_uint_eq(mnl_attr_get_type(v), NFTA_DATA_VALUE);
				ck_assert_uint_eq(mnl_attr_get_payload_len(v), key_len);
				ck_assert_mem_eq(mnl_attr_get_payload(v), keys[i], key_len);
				found = true;
			}
		}
		ck_assert(found);
		i++;
	}
	ck_assert_int_eq(i, n);
}

static void check_elem(const struct nlmsghdr *nlh, const char *set, uint32_t id,
		       const uint8_t *key, uint32_t key_len)
{
	check_elems(nlh, set, id, &key, 1, key_len);
}

START_TEST(test_elements)
{
	static const uint8_t k1[8] = { 198, 18, 100, 1, 0, 80, 0, 0 };
	static const uint8_t k2[20] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
					0, 0, 0, 1, 0x01, 0xbb, 0, 0 };
	static const uint8_t k3[8] = { 198, 18, 100, 2, 0x20, 0xfb, 0, 0 };

	const uint8_t *v4[] = { k1, k3 };

	/* Each set's elements in one message, sorted. */
	check_elems(msgs[5], "vips4", 1, v4, 2, sizeof(k1));
	check_elem(msgs[6], "vips6", 2, k2, sizeof(k2));
}
END_TEST

/* nft's anonymous set of ICMP types: constant, bound to its rule. */
static void check_icmp_set(const struct nlmsghdr *nlh, uint32_t type, uint32_t id, uint32_t size)
{
	struct nftnl_set *s = nftnl_set_alloc();

	ck_assert_int_ge(nftnl_set_nlmsg_parse(nlh, s), 0);
	ck_assert_str_eq(nftnl_set_get_str(s, NFTNL_SET_TABLE), "lb");
	ck_assert_str_eq(nftnl_set_get_str(s, NFTNL_SET_NAME), "__set%d");
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FAMILY), NFPROTO_INET);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FLAGS),
			  NFT_SET_ANONYMOUS | NFT_SET_CONSTANT);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), type);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 1);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_ID), id);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE), size);
	nftnl_set_free(s);
}

/* The elements of an anonymous set, one message each: the types in want. */
static void check_icmp_elems(int first, uint32_t id, const uint8_t *want, int n)
{
	int i;

	for (i = 0; i < n; i++)
		check_elem(msgs[first + i], "__set%d", id, &want[i], 1);
}

/* Errors only: no echo, no redirect, no source quench. */
static const uint8_t icmp4_errors[] = { 3, 11, 12 };	/* unreachable, time exceeded, param */
static const uint8_t icmp6_errors[] = { 1, 2, 3, 4 };	/* + packet too big */

START_TEST(test_icmp_sets)
{
	check_icmp_set(msgs[11], 14, 3, 3);	/* nft's icmp_type */
	check_icmp_elems(12, 3, icmp4_errors, 3);
	check_icmp_set(msgs[16], 29, 4, 4);	/* icmpv6_type */
	check_icmp_elems(17, 4, icmp6_errors, 4);
}
END_TEST

START_TEST(test_chain)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	ck_assert_int_ge(nftnl_chain_nlmsg_parse(msgs[7], c), 0);
	ck_assert_str_eq(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), "lb");
	ck_assert_str_eq(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "prerouting");
	ck_assert_str_eq(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), "filter");
	ck_assert_uint_eq(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM), NF_INET_PRE_ROUTING);
	ck_assert_int_eq(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), -150);
	ck_assert_uint_eq(nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY), NF_ACCEPT);
	nftnl_chain_free(c);
}
END_TEST

/*
 * Expected expressions, one per entry: its name and up to four (attribute,
 * value) pairs for u32 attributes, plus data for cmp/immediate.
 */
struct want_attr {
	uint16_t attr;
	uint32_t val;
};

struct want_expr {
	const char *name;
	struct want_attr u32[4];
	int n_u32;
	uint16_t data_attr;
	const void *data;
	uint32_t data_len;
	const char *set;
};

static void check_rule(const struct nlmsghdr *nlh, const struct want_expr *want, int n)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	int i = 0, j;

	ck_assert_int_ge(nftnl_rule_nlmsg_parse(nlh, r), 0);
	ck_assert_str_eq(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), "lb");
	ck_assert_str_eq(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "prerouting");
	ck_assert_uint_eq(nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY), NFPROTO_INET);
	it = nftnl_expr_iter_create(r);
	while ((e = nftnl_expr_iter_next(it))) {
		ck_assert_msg(i < n, "unexpected expression %d (%s)", i,
			      nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
		ck_assert_str_eq(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), want[i].name);
		for (j = 0; j < want[i].n_u32; j++)
			ck_assert_msg(nftnl_expr_get_u32(e, want[i].u32[j].attr) == want[i].u32[j].val,
				      "expression %d (%s) attribute %u: %u, want %u", i,
				      want[i].name, want[i].u32[j].attr,
				      nftnl_expr_get_u32(e, want[i].u32[j].attr),
				      want[i].u32[j].val);
		if (want[i].data) {
			uint32_t len;
			const void *got = nftnl_expr_get(e, want[i].data_attr, &len);

			ck_assert_msg(got && len == want[i].data_len,
				      "expression %d (%s): data length %u, want %u", i,
				      want[i].name, got ? len : 0, want[i].data_len);
			ck_assert_mem_eq(got, want[i].data, len);
		}
		if (want[i].set)
			ck_assert_str_eq(nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET), want[i].set);
		i++;
	}
	ck_assert_int_eq(i, n);
	nftnl_expr_iter_destroy(it);
	nftnl_rule_free(r);
}

static const uint8_t tcp = IPPROTO_TCP, one = 1, v4 = NFPROTO_IPV4, v6 = NFPROTO_IPV6;
static const uint32_t mark = MARK;
static const uint8_t port_be[2] = { PORT >> 8, PORT & 0xff };
static const uint8_t lo4[4] = { 127, 0, 0, 1 };
static const uint8_t lo6[16] = { [15] = 1 };

#define META_LOAD(key)	{ "meta", { { NFTNL_EXPR_META_KEY, key }, \
				    { NFTNL_EXPR_META_DREG, NFT_REG_1 } }, 2, 0, NULL, 0, NULL }
#define CMP_EQ(p)	{ "cmp", { { NFTNL_EXPR_CMP_SREG, NFT_REG_1 }, \
				   { NFTNL_EXPR_CMP_OP, NFT_CMP_EQ } }, 2, \
			  NFTNL_EXPR_CMP_DATA, p, sizeof(*(p)), NULL }
#define IMM(reg, p, len) { "immediate", { { NFTNL_EXPR_IMM_DREG, reg } }, 1, \
			   NFTNL_EXPR_IMM_DATA, p, len, NULL }
#define MARK_ACCEPT \
	IMM(NFT_REG_1, &mark, 4), \
	{ "meta", { { NFTNL_EXPR_META_KEY, NFT_META_MARK }, \
		    { NFTNL_EXPR_META_SREG, NFT_REG_1 } }, 2, 0, NULL, 0, NULL }, \
	{ "immediate", { { NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT }, \
			 { NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT } }, 2, 0, NULL, 0, NULL }
#define PAYLOAD(base, off, len, reg) \
	{ "payload", { { NFTNL_EXPR_PAYLOAD_BASE, base }, { NFTNL_EXPR_PAYLOAD_OFFSET, off }, \
		       { NFTNL_EXPR_PAYLOAD_LEN, len }, { NFTNL_EXPR_PAYLOAD_DREG, reg } }, \
	  4, 0, NULL, 0, NULL }
#define LOOKUP_REG(reg, set, id) { "lookup", { { NFTNL_EXPR_LOOKUP_SREG, reg }, \
					       { NFTNL_EXPR_LOOKUP_SET_ID, id } }, 2, 0, NULL, 0, set }
#define LOOKUP(set, id)	LOOKUP_REG(NFT_REG32_00, set, id)
#define SOCKET_TRANSPARENT \
	{ "socket", { { NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_TRANSPARENT }, \
		      { NFTNL_EXPR_SOCKET_DREG, NFT_REG_1 } }, 2, 0, NULL, 0, NULL }
#define TPROXY(fam)	{ "tproxy", { { NFTNL_EXPR_TPROXY_FAMILY, fam }, \
				      { NFTNL_EXPR_TPROXY_REG_ADDR, NFT_REG_1 }, \
				      { NFTNL_EXPR_TPROXY_REG_PORT, NFT_REG_2 } }, \
			  3, 0, NULL, 0, NULL }

START_TEST(test_rule_socket)
{
	const struct want_expr want[] = {
		META_LOAD(NFT_META_L4PROTO), CMP_EQ(&tcp),
		SOCKET_TRANSPARENT, CMP_EQ(&one),
		MARK_ACCEPT,
	};

	check_rule(msgs[8], want, sizeof(want) / sizeof(want[0]));
}
END_TEST

/*
 * "icmp type { ... } socket transparent 1": the type is all the rule looks
 * at besides the socket of the quoted packet. No VIP set and no port: an
 * error about lb's client-side socket is addressed to the VIP and must match
 * even when rule 1 learns to skip VIPs for UDP.
 */
static void check_rule_icmp(int i, const uint8_t *nfproto, const uint8_t *l4proto,
			    uint32_t set_id)
{
	const struct want_expr want[] = {
		META_LOAD(NFT_META_NFPROTO), CMP_EQ(nfproto),
		META_LOAD(NFT_META_L4PROTO), CMP_EQ(l4proto),
		PAYLOAD(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1),
		LOOKUP_REG(NFT_REG_1, "__set%d", set_id),
		SOCKET_TRANSPARENT, CMP_EQ(&one),
		MARK_ACCEPT,
	};

	check_rule(msgs[i], want, sizeof(want) / sizeof(want[0]));
}

START_TEST(test_rule_icmp)
{
	static const uint8_t icmp = IPPROTO_ICMP, icmp6 = IPPROTO_ICMPV6;

	check_rule_icmp(15, &v4, &icmp, 3);
	check_rule_icmp(21, &v6, &icmp6, 4);
}
END_TEST

START_TEST(test_rule_tproxy4)
{
	/* ip daddr . tcp dport: 4 bytes at reg32 0, the port right after. */
	const struct want_expr want[] = {
		META_LOAD(NFT_META_NFPROTO), CMP_EQ(&v4),
		META_LOAD(NFT_META_L4PROTO), CMP_EQ(&tcp),
		PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG32_00),
		PAYLOAD(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, 9),
		LOOKUP("vips4", 1),
		IMM(NFT_REG_1, lo4, 4), IMM(NFT_REG_2, port_be, 2),
		TPROXY(NFPROTO_IPV4),
		MARK_ACCEPT,
	};

	check_rule(msgs[9], want, sizeof(want) / sizeof(want[0]));
}
END_TEST

START_TEST(test_rule_tproxy6)
{
	/* ip6 daddr . tcp dport: 16 bytes at reg32 0..3, the port in 4 (= 12). */
	const struct want_expr want[] = {
		META_LOAD(NFT_META_NFPROTO), CMP_EQ(&v6),
		META_LOAD(NFT_META_L4PROTO), CMP_EQ(&tcp),
		PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, NFT_REG32_00),
		PAYLOAD(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, 12),
		LOOKUP("vips6", 2),
		IMM(NFT_REG_1, lo6, 16), IMM(NFT_REG_2, port_be, 2),
		TPROXY(NFPROTO_IPV6),
		MARK_ACCEPT,
	};

	check_rule(msgs[10], want, sizeof(want) / sizeof(want[0]));
}
END_TEST

START_TEST(test_empty_vips)
{
	struct lb_nft_spec empty = spec;
	int i, sets = 0;

	empty.vips = NULL;
	empty.n_vips = 0;
	build(&empty);
	ck_assert_int_eq(n_msgs, 20);
	for (i = 0; i < n_msgs; i++) {
		/* Elements only for the ICMP types, which follow their set. */
		if (msg_type(i) == NFT_MSG_NEWSETELEM)
			ck_assert_int_ge(i, 10);
		sets += msg_type(i) == NFT_MSG_NEWSET;
	}
	/* The tproxy rules look vips4 and vips6 up: they must exist even when
	 * empty; the ICMP rules still deliver errors for held connections. */
	ck_assert_int_eq(sets, 4);
}
END_TEST

START_TEST(test_invalid_spec)
{
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	union lb_nft_addr bad = { .sa.sa_family = AF_UNIX };
	struct lb_nft_spec s = spec;
	char long_name[300];
	uint32_t seq = SEQ0;

	s.table = NULL;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	s.table = long_name;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	s = spec;
	s.port = 0;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	s = spec;
	s.vips = &bad;
	s.n_vips = 1;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EAFNOSUPPORT);
	ck_assert_int_eq(lb_nft_ruleset_print(&s, stdout), -EAFNOSUPPORT);
	/* Nothing half-built on a rejected spec. */
	ck_assert_uint_eq(seq, SEQ0);
	ck_assert_uint_eq(mnl_nlmsg_batch_size(b), 0);
	mnl_nlmsg_batch_stop(b);
}
END_TEST

START_TEST(test_batch_full)
{
	/* apply.c grows its buffer on -EMSGSIZE; it must not get a partial 0. */
	static char small[4096];
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(small, 512);
	uint32_t seq = SEQ0;

	ck_assert_int_eq(lb_nft_ruleset_build(&spec, b, &seq), -EMSGSIZE);
	mnl_nlmsg_batch_stop(b);
}
END_TEST

static char *print_spec(const struct lb_nft_spec *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(lb_nft_ruleset_print(s, f), 0);
	fclose(f);
	return text;
}

START_TEST(test_print)
{
	static const char *const lines[] = {
		"table inet lb {\n",
		"\tset vips4 {\n\t\ttype ipv4_addr . inet_service\n"
		"\t\telements = { 198.18.100.1 . 80,\n\t\t\t     198.18.100.2 . 8443 }\n\t}\n",
		"\tset vips6 {\n\t\ttype ipv6_addr . inet_service\n"
		"\t\telements = { 2001:db8::1 . 443 }\n\t}\n",
		"\tchain prerouting {\n"
		"\t\ttype filter hook prerouting priority mangle; policy accept;\n",
		"\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x000001eb accept\n",
		"\t\tip daddr . tcp dport @vips4 tproxy ip to 127.0.0.1:8080"
		" meta mark set 0x000001eb accept\n",
		"\t\tip6 daddr . tcp dport @vips6 tproxy ip6 to [::1]:8080"
		" meta mark set 0x000001eb accept\n",
		"\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem }"
		" socket transparent 1 meta mark set 0x000001eb accept\n",
		"\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded,"
		" parameter-problem } socket transparent 1 meta mark set 0x000001eb accept\n"
		"\t}\n}\n",
	};
	char *text = print_spec(&spec);
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_msg(strstr(text, lines[i]), "missing:\n%s\nin:\n%s", lines[i], text);
	ck_assert_str_eq(text + strlen(text) - 5, "\t}\n}\n");
	free(text);
}
END_TEST

START_TEST(test_print_empty)
{
	struct lb_nft_spec empty = spec;
	char *text;

	empty.n_vips = 0;
	text = print_spec(&empty);
	/* nft lists an empty set without an elements line. */
	ck_assert_ptr_null(strstr(text, "elements"));
	ck_assert_ptr_nonnull(strstr(text, "\tset vips4 {\n\t\ttype ipv4_addr . inet_service\n\t}\n"));
	ck_assert_ptr_nonnull(strstr(text, "\tset vips6 {\n\t\ttype ipv6_addr . inet_service\n\t}\n"));
	free(text);
}
END_TEST

/* The set message's flags, and (interval sets) its concatenation's field lengths. */
static void check_range_set(const struct nlmsghdr *nlh, const char *name, uint32_t len,
			    uint8_t addr_len)
{
	struct nftnl_set *st = nftnl_set_alloc();
	const uint8_t *fields;
	uint32_t n;

	ck_assert_int_ge(nftnl_set_nlmsg_parse(nlh, st), 0);
	ck_assert_str_eq(nftnl_set_get_str(st, NFTNL_SET_NAME), name);
	ck_assert_uint_eq(nftnl_set_get_u32(st, NFTNL_SET_FLAGS), NFT_SET_INTERVAL | NFT_SET_CONCAT);
	ck_assert_uint_eq(nftnl_set_get_u32(st, NFTNL_SET_KEY_LEN), len);
	fields = nftnl_set_get_data(st, NFTNL_SET_DESC_CONCAT, &n);
	ck_assert_ptr_nonnull(fields);
	ck_assert_uint_eq(fields[0], addr_len);
	ck_assert_uint_eq(fields[1], 2);
	nftnl_set_free(st);
}

/* Prefixes and port ranges: interval sets, each element a start and an end. */
START_TEST(test_ranges)
{
	static struct lb_nft_range r4, u6;
	struct lb_nft_spec sp = spec;
	const struct nlattr *a, *e, *k, *v;
	int found = 0;

	vip4(&r4.first, "198.18.128.0", 80);
	vip4(&r4.last, "198.18.143.255", 89);
	vip6(&u6.first, "2001:db8:100::", 443);
	vip6(&u6.last, "2001:db8:100:ffff:ffff:ffff:ffff:ffff", 443);
	sp.ranges = &r4;
	sp.n_ranges = 1;
	sp.udp_ranges = &u6;
	sp.n_udp_ranges = 1;
	build(&sp);
	/* vips4, vips6, vip_ranges4/6, udp_vip_ranges4/6. */
	check_range_set(msgs[5], "vip_ranges4", 8, 4);
	check_range_set(msgs[8], "udp_vip_ranges6", 20, 16);
	for (int i = 0; i < n_msgs; i++) {
		if (msg_type(i) != NFT_MSG_NEWSETELEM)
			continue;
		mnl_attr_for_each(a, msgs[i], sizeof(struct nfgenmsg)) {
			if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
				continue;
			mnl_attr_for_each_nested(e, a) {
				int keys = 0;

				mnl_attr_for_each_nested(k, e)
					if (mnl_attr_get_type(k) == NFTA_SET_ELEM_KEY_END)
						mnl_attr_for_each_nested(v, k) {
							const uint8_t *p = mnl_attr_get_payload(v);

							/* 198.18.143.255 . 89 */
							if (mnl_attr_get_payload_len(v) == 8 &&
							    p[2] == 143 && p[3] == 255 && p[5] == 89)
								found++;
							keys++;
						}
				(void)keys;
			}
		}
	}
	ck_assert_int_eq(found, 1);
}
END_TEST

/*
 * A reload that only changes VIPs: the same shape, and the diff is a
 * delete of what went and an add of what came, nothing else.
 */
START_TEST(test_diff)
{
	static union lb_nft_addr next_vips[3];
	struct lb_nft_spec next = spec, udp = spec;
	struct mnl_nlmsg_batch *b;
	size_t added, removed;
	uint32_t seq = SEQ0;
	int len;

	next_vips[0] = vips[0];
	next_vips[1] = vips[1];
	vip4(&next_vips[2], "198.18.100.3", 8443);	/* in for 198.18.100.2:8443 */
	next.vips = next_vips;
	ck_assert(lb_nft_ruleset_same_shape(&spec, &next));
	udp.udp_vips = next_vips;
	udp.n_udp_vips = 1;
	ck_assert(!lb_nft_ruleset_same_shape(&spec, &udp));
	b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	ck_assert_int_eq(lb_nft_ruleset_diff_build(&spec, &next, b, &seq, &added, &removed), 0);
	ck_assert_uint_eq(added, 1);
	ck_assert_uint_eq(removed, 1);
	len = (int)mnl_nlmsg_batch_size(b);
	n_msgs = 0;
	for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len))
		msgs[n_msgs++] = nlh;
	mnl_nlmsg_batch_stop(b);
	ck_assert_int_eq(n_msgs, 2);
	ck_assert_uint_eq(msg_type(0), NFT_MSG_DELSETELEM);
	ck_assert_uint_eq(msg_type(1), NFT_MSG_NEWSETELEM);
	{
		static const uint8_t gone[8] = { 198, 18, 100, 2, 0x20, 0xfb, 0, 0 };
		static const uint8_t came[8] = { 198, 18, 100, 3, 0x20, 0xfb, 0, 0 };

		check_elem(msgs[0], "vips4", 1, gone, 8);
		check_elem(msgs[1], "vips4", 1, came, 8);
	}
}
END_TEST

/* The keys of one set-element message, appended to keys[*n] (len bytes each). */
static void elem_keys(const struct nlmsghdr *nlh, uint8_t *keys, size_t *n, uint32_t len)
{
	const struct nlattr *a, *list = NULL;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
			list = a;
	ck_assert_ptr_nonnull(list);
	mnl_attr_for_each_nested(a, list) {
		const struct nlattr *k, *v;

		mnl_attr_for_each_nested(k, a) {
			if (mnl_attr_get_type(k) != NFTA_SET_ELEM_KEY)
				continue;
			mnl_attr_for_each_nested(v, k) {
				ck_assert_uint_eq(mnl_attr_get_payload_len(v), len);
				memcpy(keys + (*n)++ * len, mnl_attr_get_payload(v), len);
			}
		}
	}
}

#define MANY_SPACE 4096		/* 1,024 addresses times 4 ports */
#define MANY_VIPS 3000

static void many_vip(union lb_nft_addr *ss, unsigned int i)
{
	static const uint16_t ports[] = { 80, 443, 8080, 65535 };
	char ip[32];

	snprintf(ip, sizeof(ip), "198.18.%u.%u", 100 + (i >> 2) / 256, (i >> 2) % 256);
	vip4(ss, ip, ports[i & 3]);
}

/* The key space index of an 8-byte IPv4 key made by many_vip(). */
static unsigned int many_index(const uint8_t *k)
{
	unsigned int port = (unsigned int)k[4] << 8 | k[5];

	return (((unsigned int)(k[2] - 100) << 8 | k[3]) << 2) |
	       (port == 80 ? 0 : port == 443 ? 1 : port == 8080 ? 2 : 3);
}

/*
 * Thousands of VIPs drawn with repeats, in random order: every set's
 * elements go out sorted and once each, and a diff between two such
 * configs deletes and adds exactly the difference (what the radix sort
 * and the one-pass merge must get right at scale).
 */
START_TEST(test_diff_many)
{
	static union lb_nft_addr a_vips[MANY_VIPS], b_vips[MANY_VIPS];
	static uint8_t keys[2 * MANY_VIPS * 8];
	bool in_a[MANY_SPACE] = { 0 }, in_b[MANY_SPACE] = { 0 };
	struct lb_nft_spec a = spec, b = spec;
	size_t want_del = 0, want_add = 0, n_del = 0, n_add = 0, added, removed;
	struct mnl_nlmsg_batch *batch;
	uint32_t seq = SEQ0;
	char *big = malloc(1 << 20);
	int len;

	ck_assert_ptr_nonnull(big);
	srand(21);
	for (unsigned int i = 0; i < MANY_VIPS; i++) {
		unsigned int x = (unsigned int)rand() % MANY_SPACE, y = (unsigned int)rand() % MANY_SPACE;

		many_vip(&a_vips[i], x);
		many_vip(&b_vips[i], y);
		in_a[x] = in_b[y] = true;
	}
	for (unsigned int i = 0; i < MANY_SPACE; i++) {
		want_del += in_a[i] && !in_b[i];
		want_add += in_b[i] && !in_a[i];
	}
	a.vips = a_vips, a.n_vips = MANY_VIPS;
	b.vips = b_vips, b.n_vips = MANY_VIPS;
	/* Kept keys (filled by the first build, then reused) change nothing in the batch. */
	for (int round = 0; round < 3; round++) {
		static char first[1 << 20];
		static size_t first_size;
		size_t size;

		if (round == 1) {
			a.keys = lb_nft_keys_alloc();
			b.keys = lb_nft_keys_alloc();
			ck_assert(a.keys && b.keys);
		}
		seq = SEQ0;
		/* Zeroed: libmnl leaves an attribute's padding as it finds it. */
		memset(round ? big : first, 0, 1 << 20);
		batch = mnl_nlmsg_batch_start(round ? big : first, (1 << 20) - 65536);
		ck_assert_int_eq(lb_nft_ruleset_diff_build(&a, &b, batch, &seq, &added, &removed), 0);
		size = mnl_nlmsg_batch_size(batch);
		mnl_nlmsg_batch_stop(batch);
		if (!round)
			first_size = size;
		else
			ck_assert_msg(size == first_size && !memcmp(big, first, size),
				      "round %d: another batch with kept keys", round);
	}
	seq = SEQ0;
	batch = mnl_nlmsg_batch_start(big, (1 << 20) - 65536);
	ck_assert_int_eq(lb_nft_ruleset_diff_build(&a, &b, batch, &seq, &added, &removed), 0);
	ck_assert_uint_eq(removed, want_del);
	ck_assert_uint_eq(added, want_add);
	len = (int)mnl_nlmsg_batch_size(batch);
	for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)big; mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		uint16_t type = nlh->nlmsg_type & 0xff;
		size_t at = n_del + n_add;

		ck_assert(type == NFT_MSG_DELSETELEM || type == NFT_MSG_NEWSETELEM);
		/* Every delete before the first add. */
		ck_assert(type == NFT_MSG_NEWSETELEM || n_add == 0);
		/* Adds after deletes, in the same array. */
		if (type == NFT_MSG_DELSETELEM)
			elem_keys(nlh, keys, &n_del, 8);
		else
			elem_keys(nlh, keys + n_del * 8, &n_add, 8);
		ck_assert_uint_gt(n_del + n_add, at);
	}
	mnl_nlmsg_batch_stop(batch);
	ck_assert_uint_eq(n_del, want_del);
	ck_assert_uint_eq(n_add, want_add);
	for (size_t i = 0; i < n_del + n_add; i++) {
		unsigned int x = many_index(keys + i * 8);

		ck_assert(i < n_del ? in_a[x] && !in_b[x] : in_b[x] && !in_a[x]);
		/* Sorted and once each, within deletes and within adds. */
		if (i && i != n_del)
			ck_assert_int_lt(memcmp(keys + (i - 1) * 8, keys + i * 8, 8), 0);
	}
	/* A whole table of the same: sorted, once each. */
	batch = mnl_nlmsg_batch_start(big, (1 << 20) - 65536);
	seq = SEQ0;
	ck_assert_int_eq(lb_nft_ruleset_build(&b, batch, &seq), 0);
	len = (int)mnl_nlmsg_batch_size(batch);
	n_add = 0;
	for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)big; mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		const struct nlattr *at;
		bool vips4 = false;

		if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWSETELEM)
			continue;
		mnl_attr_for_each(at, nlh, sizeof(struct nfgenmsg))
			if (mnl_attr_get_type(at) == NFTA_SET_ELEM_LIST_SET)
				vips4 = !strcmp(mnl_attr_get_str(at), "vips4");
		if (vips4)
			elem_keys(nlh, keys, &n_add, 8);
	}
	mnl_nlmsg_batch_stop(batch);
	want_add = 0;
	for (unsigned int i = 0; i < MANY_SPACE; i++)
		want_add += in_b[i];
	ck_assert_uint_eq(n_add, want_add);
	for (size_t i = 1; i < n_add; i++)
		ck_assert_int_lt(memcmp(keys + (i - 1) * 8, keys + i * 8, 8), 0);
	lb_nft_keys_free(a.keys);
	lb_nft_keys_free(b.keys);
	free(big);
}
END_TEST

int main(void)
{
	return lb_test_main("ruleset", setup, NULL, 0,
			    LB_TESTS(test_message_order, test_tables, test_retire, test_sets,
				     test_elements, test_chain, test_rule_socket, test_rule_tproxy4,
				     test_rule_tproxy6, test_icmp_sets, test_rule_icmp,
				     test_empty_vips, test_invalid_spec, test_batch_full,
				     test_print, test_print_empty, test_ranges, test_diff,
				     test_diff_many));
}
