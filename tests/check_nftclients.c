/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nft/clients.c through lb_nft_ruleset_build(): the per-client counters,
 * sets, chains and maps, parsed back with libnftnl as the kernel would
 * receive them, and their nft text. No socket, no root.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "nft/nft.h"
#include "tests/unit.h"

#define MAX_MSGS 256
#define BATCH_LIMIT (256 * 1024)

static union lb_nft_addr vips[2], udp_vips[1];
static struct lb_nft_prefix allow[3], deny[2];
static struct lb_nft_clients clients[2];
static struct lb_nft_spec spec;

static char buf[BATCH_LIMIT * 2];
static const struct nlmsghdr *msgs[MAX_MSGS];
static int n_msgs;

static void vip(union lb_nft_addr *ss, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *in6 = &ss->in6;

		in6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
		in6->sin6_port = htons(port);
	} else {
		struct sockaddr_in *in = &ss->in;

		in->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
		in->sin_port = htons(port);
	}
}

static struct lb_nft_prefix prefix(const char *ip, uint8_t len)
{
	struct lb_nft_prefix p = { .family = strchr(ip, ':') ? AF_INET6 : AF_INET, .len = len };

	ck_assert_int_eq(inet_pton(p.family, ip, p.addr), 1);
	return p;
}

static void build(const struct lb_nft_spec *s)
{
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	const struct nlmsghdr *nlh;
	uint32_t seq = 1;
	int len;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(lb_nft_ruleset_build(s, b, &seq), 0);
	len = (int)mnl_nlmsg_batch_size(b);
	n_msgs = 0;
	for (nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		ck_assert_int_lt(n_msgs, MAX_MSGS);
		msgs[n_msgs++] = nlh;
	}
	mnl_nlmsg_batch_stop(b);
}

/*
 * Service 0, "web": TCP on an IPv4 and an IPv6 VIP; allow two prefixes,
 * deny one address; reset; a rate keyed by /24 and /64. Service 3,
 * "dns": UDP on one IPv4 VIP, deny only, dropped.
 */
static void setup(void)
{
	vip(&vips[0], "198.18.100.1", 80);
	vip(&vips[1], "2001:db8:100::1", 80);
	vip(&udp_vips[0], "198.18.100.1", 53);
	allow[0] = prefix("198.18.1.0", 24);
	allow[1] = prefix("198.18.0.0", 24);	/* adjacent, listed out of order */
	allow[2] = prefix("2001:db8::", 64);
	deny[0] = prefix("198.18.0.13", 32);
	deny[1] = prefix("255.255.255.0", 24);	/* runs to the last address */
	clients[0] = (struct lb_nft_clients){
		.id = 0, .vips = vips, .n_vips = 2, .allow = allow, .n_allow = 3,
		.deny = deny, .n_deny = 1, .reset = 1, .rate = 10, .burst = 20,
		.prefix4 = 24, .prefix6 = 64, .size = 1024,
	};
	clients[1] = (struct lb_nft_clients){
		.id = 3, .udp_vips = udp_vips, .n_udp_vips = 1, .deny = deny, .n_deny = 2,
	};
	spec = (struct lb_nft_spec){
		.table = "lb", .mark = 1, .port = 50080, .vips = vips, .n_vips = 2,
		.udp_vips = udp_vips, .n_udp_vips = 1, .clients = clients, .n_clients = 2,
	};
	build(&spec);
}

static uint16_t type_of(int i)
{
	return msgs[i]->nlmsg_type & 0xff;
}

/* The index of the NEWSET message for set `name`, or -1. */
static int find_set(const char *name, struct nftnl_set **out)
{
	for (int i = 0; i < n_msgs; i++) {
		struct nftnl_set *s;

		if (type_of(i) != NFT_MSG_NEWSET)
			continue;
		s = nftnl_set_alloc();
		ck_assert_int_ge(nftnl_set_nlmsg_parse(msgs[i], s), 0);
		if (!strcmp(nftnl_set_get_str(s, NFTNL_SET_NAME), name)) {
			*out = s;
			return i;
		}
		nftnl_set_free(s);
	}
	return -1;
}

/* Every element of set `name` in the batch, in order: keys and flags. */
struct elem {
	uint8_t key[20];
	uint32_t len, flags;
	char chain[32];
};

/*
 * Read with libmnl: libnftnl's parser takes a list of one element only
 * (see check_ruleset.c), and these messages hold many.
 */
static void elem_read(const struct nlattr *nest, struct elem *e)
{
	const struct nlattr *a, *v, *d;

	memset(e, 0, sizeof(*e));
	mnl_attr_for_each_nested(a, nest) {
		switch (mnl_attr_get_type(a)) {
		case NFTA_SET_ELEM_KEY:
			mnl_attr_for_each_nested(v, a) {
				e->len = mnl_attr_get_payload_len(v);
				ck_assert_uint_le(e->len, sizeof(e->key));
				memcpy(e->key, mnl_attr_get_payload(v), e->len);
			}
			break;
		case NFTA_SET_ELEM_FLAGS:
			e->flags = ntohl(mnl_attr_get_u32(a));
			break;
		case NFTA_SET_ELEM_DATA:
			mnl_attr_for_each_nested(v, a) {
				mnl_attr_for_each_nested(d, v) {
					if (mnl_attr_get_type(d) == NFTA_VERDICT_CHAIN)
						snprintf(e->chain, sizeof(e->chain), "%s",
							 mnl_attr_get_str(d));
				}
			}
			break;
		}
	}
}

static int elems_of(const char *name, struct elem *out, int max)
{
	int n = 0;

	for (int i = 0; i < n_msgs; i++) {
		const struct nlattr *a, *list = NULL, *e;
		bool ours = false;

		if (type_of(i) != NFT_MSG_NEWSETELEM)
			continue;
		mnl_attr_for_each(a, msgs[i], sizeof(struct nfgenmsg)) {
			if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET)
				ours = !strcmp(mnl_attr_get_str(a), name);
			if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
				list = a;
		}
		if (!ours || !list)
			continue;
		mnl_attr_for_each_nested(e, list) {
			ck_assert_int_lt(n, max);
			elem_read(e, &out[n++]);
		}
	}
	return n;
}

START_TEST(test_counters)
{
	const char *want[] = { "deny_0", "rate_0", "deny_3" };
	int n = 0;

	for (int i = 0; i < n_msgs; i++) {
		struct nftnl_obj *o;

		if (type_of(i) != NFT_MSG_NEWOBJ)
			continue;
		o = nftnl_obj_alloc();
		ck_assert_int_ge(nftnl_obj_nlmsg_parse(msgs[i], o), 0);
		ck_assert_int_lt(n, 3);
		ck_assert_str_eq(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), want[n]);
		ck_assert_uint_eq(nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE), NFT_OBJECT_COUNTER);
		n++;
		nftnl_obj_free(o);
	}
	/* dns has no rate: no rate_3. */
	ck_assert_int_eq(n, 3);
}
END_TEST

START_TEST(test_interval_sets)
{
	static const uint8_t want4[][4] = {
		{ 198, 18, 0, 0 }, { 198, 18, 1, 0 }, { 198, 18, 1, 0 }, { 198, 18, 2, 0 },
	};
	struct nftnl_set *s;
	struct elem el[16];
	int n;

	ck_assert_int_ge(find_set("allow4_0", &s), 0);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FLAGS), NFT_SET_INTERVAL);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 4);
	nftnl_set_free(s);
	/* Sorted; an end at 0 first (nothing precedes); adjacent: an end and a start at one key. */
	n = elems_of("allow4_0", el, 16);
	ck_assert_int_eq(n, 5);
	ck_assert_uint_eq(el[0].flags, NFT_SET_ELEM_INTERVAL_END);
	ck_assert_mem_eq(el[0].key, (uint8_t[4]){ 0 }, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_mem_eq(el[i + 1].key, want4[i], 4);
		ck_assert_uint_eq(el[i + 1].flags, i % 2 ? NFT_SET_ELEM_INTERVAL_END : 0);
	}
	/* A single address: start and the next address as its end. */
	n = elems_of("deny4_0", el, 16);
	ck_assert_int_eq(n, 3);
	ck_assert_mem_eq(el[1].key, ((uint8_t[4]){ 198, 18, 0, 13 }), 4);
	ck_assert_mem_eq(el[2].key, ((uint8_t[4]){ 198, 18, 0, 14 }), 4);
	/* Running to the last address: no end. */
	n = elems_of("deny4_3", el, 16);
	ck_assert_int_eq(n, 4);
	ck_assert_mem_eq(el[3].key, ((uint8_t[4]){ 255, 255, 255, 0 }), 4);
	ck_assert_uint_eq(el[3].flags, 0);
	/* Sets only for the families a service has VIPs of, and lists that have some. */
	ck_assert_int_ge(find_set("allow6_0", &s), 0);
	nftnl_set_free(s);
	ck_assert_int_eq(find_set("deny6_0", &s), -1);
	ck_assert_int_eq(find_set("deny6_3", &s), -1);
	ck_assert_int_eq(find_set("allow4_3", &s), -1);
}
END_TEST

START_TEST(test_meter_set)
{
	struct nftnl_set *s;

	ck_assert_int_ge(find_set("rate6_0", &s), 0);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FLAGS), NFT_SET_EVAL | NFT_SET_TIMEOUT);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 16);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE), 1024);
	/* Longer than a full refill (burst / rate = 2 s), and never under 10 s. */
	ck_assert_uint_eq(nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT), 10000);
	nftnl_set_free(s);
	ck_assert_int_eq(find_set("rate4_3", &s), -1);
}
END_TEST

START_TEST(test_maps)
{
	struct nftnl_set *s;
	struct elem el[4];
	int i;

	i = find_set("clients_tcp4", &s);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FLAGS), NFT_SET_MAP);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT);
	nftnl_set_free(s);
	ck_assert_int_eq(elems_of("clients_tcp4", el, 4), 1);
	ck_assert_str_eq(el[0].chain, "clients_0");
	ck_assert_int_eq(elems_of("clients_udp4", el, 4), 1);
	ck_assert_str_eq(el[0].chain, "clients_3");
	ck_assert_int_ge(find_set("clients_tcp6", &s), 0);
	nftnl_set_free(s);
	ck_assert_int_eq(find_set("clients_udp6", &s), -1);
	/* The chains come before the maps that jump to them. */
	for (int j = 0; j < n_msgs; j++) {
		struct nftnl_chain *c;

		if (type_of(j) != NFT_MSG_NEWCHAIN)
			continue;
		c = nftnl_chain_alloc();
		ck_assert_int_ge(nftnl_chain_nlmsg_parse(msgs[j], c), 0);
		if (!strncmp(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "clients_", 8)) {
			ck_assert_int_lt(j, i);
			ck_assert(!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM));
		}
		nftnl_chain_free(c);
	}
}
END_TEST

/* The expression names of the n-th rule of chain, in order. */
static void rule_exprs(const char *chain, int nth, char *out, size_t len)
{
	int seen = 0;

	out[0] = '\0';
	for (int i = 0; i < n_msgs; i++) {
		struct nftnl_expr_iter *it;
		struct nftnl_rule *r;
		struct nftnl_expr *e;

		if (type_of(i) != NFT_MSG_NEWRULE)
			continue;
		r = nftnl_rule_alloc();
		ck_assert_int_ge(nftnl_rule_nlmsg_parse(msgs[i], r), 0);
		if (strcmp(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), chain) || seen++ != nth) {
			nftnl_rule_free(r);
			continue;
		}
		it = nftnl_expr_iter_create(r);
		while ((e = nftnl_expr_iter_next(it))) {
			const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

			snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", name);
			if (!strcmp(name, "lookup") && nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS))
				snprintf(out + strlen(out), len - strlen(out), "!");
			if (!strcmp(name, "reject"))
				snprintf(out + strlen(out), len - strlen(out), "(%u)",
					 nftnl_expr_get_u32(e, NFTNL_EXPR_REJECT_TYPE));
			if (!strcmp(name, "immediate") &&
			    nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) == NFT_REG_VERDICT)
				snprintf(out + strlen(out), len - strlen(out), "(%d)",
					 (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT));
		}
		nftnl_expr_iter_destroy(it);
		nftnl_rule_free(r);
		return;
	}
}

START_TEST(test_rules)
{
	char e[512];

	/* web: refused with a TCP reset, outside allow (!=) or inside deny. */
	rule_exprs("clients_0", 0, e, sizeof(e));
	ck_assert_str_eq(e, "meta cmp meta cmp payload lookup! objref reject(1)");
	rule_exprs("clients_0", 1, e, sizeof(e));
	ck_assert_str_eq(e, "meta cmp meta cmp payload lookup objref reject(1)");
	/* IPv6: allow only (no IPv6 deny); then the meters, IPv4 first, keyed by a prefix. */
	rule_exprs("clients_0", 2, e, sizeof(e));
	ck_assert_str_eq(e, "meta cmp meta cmp payload lookup! objref reject(1)");
	rule_exprs("clients_0", 3, e, sizeof(e));
	ck_assert_str_eq(e, "meta cmp payload bitwise cmp meta cmp payload bitwise dynset objref "
			 "immediate(0)");
	rule_exprs("clients_0", 5, e, sizeof(e));
	ck_assert_str_eq(e, "");
	/* dns: dropped, with no protocol match. */
	rule_exprs("clients_3", 0, e, sizeof(e));
	ck_assert_str_eq(e, "meta cmp payload lookup objref immediate(0)");
	/* prerouting: the TCP socket rule, then the jumps, then tproxy. */
	rule_exprs("prerouting", 1, e, sizeof(e));
	ck_assert_str_eq(e, "meta cmp meta cmp payload payload lookup");
	rule_exprs("prerouting", 3, e, sizeof(e));
	ck_assert_str_eq(e, "meta cmp meta cmp payload payload lookup immediate immediate tproxy "
			 "immediate meta immediate(1)");
}
END_TEST

static char *print(const struct lb_nft_spec *s)
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
	static const char *const want[] = {
		"table inet lb {\n\tcounter deny_0 {\n\t\tpackets 0 bytes 0\n\t}\n\n",
		"\tset allow4_0 {\n\t\ttype ipv4_addr\n\t\tflags interval\n"
		"\t\telements = { 198.18.0.0/24, 198.18.1.0/24 }\n\t}\n",
		"\tset allow6_0 {\n\t\ttype ipv6_addr\n\t\tflags interval\n"
		"\t\telements = { 2001:db8::/64 }\n\t}\n",
		"\tset deny4_3 {\n\t\ttype ipv4_addr\n\t\tflags interval\n"
		"\t\telements = { 198.18.0.13, 255.255.255.0/24 }\n\t}\n",
		"\tset rate4_0 {\n\t\ttype ipv4_addr\n\t\tsize 1024\n\t\tflags dynamic,timeout\n"
		"\t\ttimeout 10s\n\t}\n",
		"\tmap clients_tcp4 {\n\t\ttype ipv4_addr . inet_service : verdict\n"
		"\t\telements = { 198.18.100.1 . 80 : jump clients_0 }\n\t}\n",
		"\tchain clients_0 {\n"
		"\t\tmeta l4proto tcp ip saddr != @allow4_0 counter name \"deny_0\" reject with tcp reset\n"
		"\t\tmeta l4proto tcp ip saddr @deny4_0 counter name \"deny_0\" reject with tcp reset\n"
		"\t\tmeta l4proto tcp ip6 saddr != @allow6_0 counter name \"deny_0\" reject with tcp "
		"reset\n"
		"\t\ttcp flags syn / syn,ack update @rate4_0 { ip saddr & 255.255.255.0 limit rate over "
		"10/second burst 20 packets } counter name \"rate_0\" drop\n"
		"\t\ttcp flags syn / syn,ack update @rate6_0 { ip6 saddr & ffff:ffff:ffff:ffff:: limit "
		"rate over 10/second burst 20 packets } counter name \"rate_0\" drop\n\t}\n",
		"\tchain clients_3 {\n\t\tip saddr @deny4_3 counter name \"deny_3\" drop\n\t}\n",
		"\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x00000001 accept\n"
		"\t\tip daddr . tcp dport vmap @clients_tcp4\n"
		"\t\tip6 daddr . tcp dport vmap @clients_tcp6\n",
		"\t\tip daddr . udp dport @udp_vips4 socket transparent 1 tproxy ip to 127.0.0.1:50080 "
		"meta mark set 0x00000001 accept\n",
		"\t\tip daddr . udp dport vmap @clients_udp4\n"
		"\t\tip daddr . udp dport @udp_vips4 tproxy ip to 127.0.0.1:50080",
	};
	char *text = print(&spec);

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(text, want[i]), "missing:\n%s\nin:\n%s", want[i], text);
	free(text);
}
END_TEST

/* Without per-client rules, nothing of them: no counter, chain, map or jump. */
START_TEST(test_none)
{
	struct lb_nft_spec s = spec;
	char *text;

	s.clients = NULL;
	s.n_clients = 0;
	build(&s);
	for (int i = 0; i < n_msgs; i++)
		ck_assert_uint_ne(type_of(i), NFT_MSG_NEWOBJ);
	text = print(&s);
	ck_assert_ptr_null(strstr(text, "clients"));
	ck_assert_ptr_null(strstr(text, "counter"));
	free(text);
}
END_TEST

START_TEST(test_invalid)
{
	struct lb_nft_clients bad[2];
	struct lb_nft_prefix p = prefix("198.18.0.0", 24);
	struct lb_nft_spec s = spec;
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	uint32_t seq = 1;

	ck_assert_ptr_nonnull(b);
	s.clients = bad;
	s.n_clients = 1;
	bad[0] = clients[0];
	p.len = 33;
	bad[0].deny = &p;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	bad[0] = clients[0];
	bad[0].burst = 0;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	/* Two entries with one id would name one chain twice. */
	bad[0] = clients[0];
	bad[1] = clients[1];
	bad[1].id = 0;
	s.n_clients = 2;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	s.clients = NULL;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	ck_assert_uint_eq(seq, 1);
	mnl_nlmsg_batch_stop(b);
}
END_TEST

int main(void)
{
	return lb_test_main("nftclients", setup, NULL, 0,
			    LB_TESTS(test_counters, test_interval_sets, test_meter_set, test_maps, test_rules,
				     test_print, test_none, test_invalid));
}
