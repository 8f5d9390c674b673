// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Gateway ownership in the ruleset (nft/owner.c), built and parsed back
 * with libnftnl as tests/check_ruleset.c does: counters, the two verdict
 * maps and their elements, the chains per peer, the element diff when
 * owners change, the nft text, and specs that cannot be built. No socket,
 * no root.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>

#include "nft/nft.h"
#include "tests/unit.h"

#define NB 7
#define SEQ0 1000
#define MAX_MSGS 256
#define BATCH_LIMIT 65536
#define HERE LB_NFT_OWNER_HERE

static union lb_nft_addr vips[2];
static const char *const names[3] = { "gw1", "gw2", "gw3" };
static const uint32_t marks[3] = { 0x100, 0x101, 0x102 };
/* Self is gw1 (0): buckets 0-2 its own, 3-4 gw2's, 5-6 gw3's; bucket 1 was gw3's. */
static uint16_t to[NB] = { HERE, HERE, HERE, 1, 1, 2, 2 };
static uint16_t chance[NB] = { HERE, 2, HERE, 1, 1, 2, 2 };
static struct lb_nft_owner owner = {
	.buckets = NB, .seed = 0x4c426f77, .dscp_to_owner = 43, .dscp_second_chance = 47,
	.n_peers = 3, .self = 0, .names = names, .marks = marks, .to = to, .chance = chance,
};
static struct lb_nft_spec spec = {
	.table = "lb", .mark = 1, .port = 50080, .vips = vips, .n_vips = 2, .owner = &owner,
};

static char buf[BATCH_LIMIT];
static const struct nlmsghdr *msgs[MAX_MSGS];
static int n_msgs;

/* Splits what b holds into msgs. */
static void split(struct mnl_nlmsg_batch *b)
{
	int len = (int)mnl_nlmsg_batch_size(b);

	n_msgs = 0;
	for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		ck_assert_int_lt(n_msgs, MAX_MSGS);
		msgs[n_msgs++] = nlh;
	}
	ck_assert_int_eq(len, 0);
	mnl_nlmsg_batch_stop(b);
}

static void build(const struct lb_nft_spec *s)
{
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	uint32_t seq = SEQ0;

	ck_assert_int_eq(lb_nft_ruleset_build(s, b, &seq), 0);
	split(b);
}

static void setup(void)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&vips[0];
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&vips[1];

	memset(vips, 0, sizeof(vips));
	in->sin_family = AF_INET;
	inet_pton(AF_INET, "198.18.100.1", &in->sin_addr);
	in->sin_port = htons(9000);
	in6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:100::1", &in6->sin6_addr);
	in6->sin6_port = htons(9000);
	build(&spec);
}

static uint16_t type(int i)
{
	return msgs[i]->nlmsg_type & 0xff;
}

START_TEST(test_objects_and_maps)
{
	int counters = 0, maps = 0;

	for (int i = 0; i < n_msgs; i++) {
		if (type(i) == NFT_MSG_NEWOBJ) {
			struct nftnl_obj *o = nftnl_obj_alloc();

			ck_assert_int_eq(nftnl_obj_nlmsg_parse(msgs[i], o), 0);
			ck_assert_uint_eq(nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE), NFT_OBJECT_COUNTER);
			ck_assert_str_eq(nftnl_obj_get_str(o, NFTNL_OBJ_NAME),
					 lb_nft_owner_counters[counters]);
			counters++;
			nftnl_obj_free(o);
		} else if (type(i) == NFT_MSG_NEWSET) {
			struct nftnl_set *s = nftnl_set_alloc();
			const char *name;

			ck_assert_int_eq(nftnl_set_nlmsg_parse(msgs[i], s), 0);
			name = nftnl_set_get_str(s, NFTNL_SET_NAME);
			if (!strncmp(name, "bucket_", 7)) {
				ck_assert(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_MAP);
				ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE),
						  NFT_DATA_VERDICT);
				ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 4);
				ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE), NB);
				maps++;
			}
			nftnl_set_free(s);
		}
	}
	ck_assert_int_eq(counters, LB_NFT_OWNER_COUNTERS);
	ck_assert_int_eq(maps, 2);
}
END_TEST

/* Chains: the fixed ones, and to_/chance_ for each peer but self. */
START_TEST(test_chains)
{
	static const char *const want[] = {
		"tproxy4", "tproxy6", "own4", "own6", "owned", "arrived",
		"to_gw2", "chance_gw2", "to_gw3", "chance_gw3",
	};
	char seen[600] = " ";

	for (int i = 0; i < n_msgs; i++) {
		struct nftnl_chain *c;

		if (type(i) != NFT_MSG_NEWCHAIN)
			continue;
		c = nftnl_chain_alloc();
		ck_assert_int_eq(nftnl_chain_nlmsg_parse(msgs[i], c), 0);
		strcat(seen, nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
		strcat(seen, " ");
		nftnl_chain_free(c);
	}
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		char w[40];

		snprintf(w, sizeof(w), " %s ", want[k]);
		ck_assert_msg(strstr(seen, w), "chain %s missing from%s", want[k], seen);
	}
	ck_assert_ptr_null(strstr(seen, "to_gw1"));
	ck_assert_ptr_null(strstr(seen, "chance_gw1"));
}
END_TEST

/* One element's verdict as "goto CHAIN" or "return", from its NFTA_SET_ELEM_DATA. */
static void elem_verdict(const struct nlattr *data, char *out, size_t len)
{
	const struct nlattr *v, *a;
	uint32_t code = 0;
	const char *chain = "";

	mnl_attr_for_each_nested(v, data) {
		ck_assert_uint_eq(mnl_attr_get_type(v), NFTA_DATA_VERDICT);
		mnl_attr_for_each_nested(a, v) {
			if (mnl_attr_get_type(a) == NFTA_VERDICT_CODE)
				code = ntohl(mnl_attr_get_u32(a));
			else if (mnl_attr_get_type(a) == NFTA_VERDICT_CHAIN)
				chain = mnl_attr_get_str(a);
		}
	}
	if ((int)code == NFT_GOTO)
		snprintf(out, len, "goto %s", chain);
	else
		snprintf(out, len, "%s", (int)code == NFT_RETURN ? "return" : "?");
}

/*
 * Every bucket's verdict in map's element messages, as bucket -> "goto
 * CHAIN" or "return" (parsed by hand, as check_ruleset.c does: libnftnl
 * parses what the kernel sends, not what it is sent).
 */
static void verdicts(const char *map, char out[NB][32], int *count)
{
	*count = 0;
	for (int i = 0; i < n_msgs; i++) {
		const struct nlattr *a, *list = NULL, *e;
		bool ours = false;

		if (type(i) != NFT_MSG_NEWSETELEM)
			continue;
		mnl_attr_for_each(a, msgs[i], sizeof(struct nfgenmsg)) {
			if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET)
				ours = !strcmp(mnl_attr_get_str(a), map);
			else if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
				list = a;
		}
		if (!ours)
			continue;
		ck_assert_ptr_nonnull(list);
		mnl_attr_for_each_nested(e, list) {
			const struct nlattr *k, *v, *data = NULL;
			uint32_t b = NB;

			mnl_attr_for_each_nested(k, e) {
				if (mnl_attr_get_type(k) == NFTA_SET_ELEM_DATA) {
					data = k;
					continue;
				}
				if (mnl_attr_get_type(k) != NFTA_SET_ELEM_KEY)
					continue;
				mnl_attr_for_each_nested(v, k) {
					ck_assert_uint_eq(mnl_attr_get_payload_len(v), 4);
					memcpy(&b, mnl_attr_get_payload(v), 4);
				}
			}
			ck_assert_uint_lt(b, NB);
			ck_assert_ptr_nonnull(data);
			elem_verdict(data, out[b], 32);
			(*count)++;
		}
	}
}

START_TEST(test_elements)
{
	static const char *const want_owner[NB] = {
		"goto owned", "goto owned", "goto owned", "goto to_gw2", "goto to_gw2",
		"goto to_gw3", "goto to_gw3",
	};
	static const char *const want_chance[NB] = {
		"return", "goto chance_gw3", "return", "goto chance_gw2", "goto chance_gw2",
		"goto chance_gw3", "goto chance_gw3",
	};
	char got[NB][32];
	int n;

	verdicts("bucket_owner", got, &n);
	ck_assert_int_eq(n, NB);
	for (int b = 0; b < NB; b++)
		ck_assert_str_eq(got[b], want_owner[b]);
	verdicts("bucket_chance", got, &n);
	ck_assert_int_eq(n, NB);
	for (int b = 0; b < NB; b++)
		ck_assert_str_eq(got[b], want_chance[b]);
}
END_TEST

/* Owners change: only the changed buckets' elements go and come back, in their map. */
START_TEST(test_diff)
{
	uint16_t to2[NB], chance2[NB];
	struct lb_nft_owner o2 = owner;
	struct lb_nft_spec next = spec;
	struct mnl_nlmsg_batch *b;
	uint32_t seq = SEQ0;
	size_t changed;
	char got[NB][32];
	int n;

	memcpy(to2, to, sizeof(to2));
	memcpy(chance2, chance, sizeof(chance2));
	to2[5] = to2[6] = HERE;		/* gw3 died: its buckets are gw1's */
	chance2[5] = chance2[6] = HERE;
	chance2[1] = HERE;
	o2.to = to2;
	o2.chance = chance2;
	next.owner = &o2;
	ck_assert(lb_nft_ruleset_same_shape(&spec, &next));
	b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	ck_assert_int_eq(lb_nft_ruleset_owner_diff_build(&spec, &next, b, &seq, &changed), 0);
	ck_assert_uint_eq(changed, 5);
	split(b);
	ck_assert_int_eq(n_msgs, 4);
	ck_assert_uint_eq(type(0), NFT_MSG_DELSETELEM);
	ck_assert_uint_eq(type(1), NFT_MSG_NEWSETELEM);
	ck_assert_uint_eq(type(2), NFT_MSG_DELSETELEM);
	ck_assert_uint_eq(type(3), NFT_MSG_NEWSETELEM);
	memset(got, 0, sizeof(got));
	verdicts("bucket_owner", got, &n);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(got[5], "goto owned");
	ck_assert_str_eq(got[6], "goto owned");
	verdicts("bucket_chance", got, &n);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(got[1], "return");
	/* Nothing changed: nothing to send. */
	b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	ck_assert_int_eq(lb_nft_ruleset_owner_diff_build(&spec, &spec, b, &seq, &changed), 0);
	ck_assert_uint_eq(changed, 0);
	ck_assert_uint_eq(mnl_nlmsg_batch_size(b), 0);
	mnl_nlmsg_batch_stop(b);
}
END_TEST

START_TEST(test_print)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_int_eq(lb_nft_ruleset_print(&spec, f), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "goto tproxy4\n"));
	ck_assert_ptr_nonnull(strstr(text, "jhash ip saddr . th sport mod 7 seed 0x4c426f77 "
					   "vmap @bucket_owner"));
	ck_assert_ptr_nonnull(strstr(text, "ip dscp 47 goto arrived"));
	ck_assert_ptr_nonnull(strstr(text, "chain to_gw3 {\n\t\tcounter name \"to_owner\"\n"
					   "\t\tmeta nfproto ipv4 ip dscp set 43 meta mark set "
					   "0x00000102 accept"));
	ck_assert_ptr_null(strstr(text, "chain to_gw1"));
	free(text);
}
END_TEST

START_TEST(test_invalid)
{
	struct lb_nft_owner o = owner;
	struct lb_nft_spec s = spec;
	uint16_t bad[NB];
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, BATCH_LIMIT);
	uint32_t seq = SEQ0;

	s.owner = &o;
	memcpy(bad, to, sizeof(bad));
	bad[0] = 0;			/* "forward to self" would loop */
	o.to = bad;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	bad[0] = 3;			/* no such peer */
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	o = owner;
	o.dscp_second_chance = o.dscp_to_owner;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	o = owner;
	o.dscp_to_owner = 64;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	o = owner;
	o.self = 3;
	ck_assert_int_eq(lb_nft_ruleset_build(&s, b, &seq), -EINVAL);
	ck_assert_uint_eq(seq, SEQ0);
	mnl_nlmsg_batch_stop(b);
}
END_TEST

int main(void)
{
	return lb_test_main("owner_ruleset", setup, NULL, 0,
			    LB_TESTS(test_objects_and_maps, test_chains, test_elements, test_diff,
				     test_print, test_invalid));
}
