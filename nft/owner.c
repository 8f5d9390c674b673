// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The ownership chains and maps (struct lb_nft_owner), as netlink messages
 * and as nft text. Pure, like ruleset.c. A packet to a VIP that no socket
 * here holds (lb's first rule found none) comes to own4 or own6 from the
 * tproxy4/tproxy6 chain ruleset.c makes, and leaves it one of three ways:
 *
 *  - "return": tproxy takes it here, as without ownership;
 *  - forwarded: to_NAME or chance_NAME tag it with a DSCP code point, set
 *    the mark that routes it to peer NAME, and accept it (the kernel then
 *    forwards it: the VIP stays its destination);
 *  - dropped: a second chance found no connection here either.
 *
 * own4/own6: a packet tagged as a second chance goes to "arrived" (never
 * forwarded again); one tagged as sent to its owner goes to "owned" (only
 * its second chance is left); a client's packet goes where bucket_owner
 * says: to_NAME, or "owned" when this gateway is the owner. A UDP
 * datagram of a flow lb holds (its connected socket) stays.
 * owned: a new connection (SYN) or a UDP datagram stays; anything else
 * goes where bucket_chance says: chance_NAME (the previous owner), or here.
 * arrived: a SYN stays (a client's own DSCP may look like a tag); anything
 * else is dropped and counted: neither the owner nor the previous owner
 * has its connection, and a reset would end one that a third gateway may
 * hold while the tables of the tier settle.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "nft/nft_priv.h"

#define MAP_OWNER	"bucket_owner"
#define MAP_CHANCE	"bucket_chance"
#define MAP_OWNER_ID	11
#define MAP_CHANCE_ID	12
#define CHAIN_OWNED	"owned"
#define CHAIN_ARRIVED	"arrived"
#define CHAIN_TO	"to_"
#define CHAIN_CHANCE	"chance_"
/* nft's datatype of a mark: the maps' keys are 32-bit numbers, listed as such. */
#define TYPE_MARK	19
#define ELEMS_PER_MSG	512
#define TCP_FLAGS_OFF	13
#define TCP_SYN		0x02
#define TCP_FIN_SYN_RST_ACK 0x17
#define IP4_SADDR_OFF	12
#define IP6_SADDR_OFF	8
#define IP4_CSUM_OFF	10

const char *const lb_nft_owner_counters[LB_NFT_OWNER_COUNTERS] = {
	"to_owner", "second_chance", "dropped",
};

bool lb_nft_owner_on(const struct lb_nft_spec *spec)
{
	return spec->owner != NULL;
}

int lb_nft_owner_check(const struct lb_nft_owner *o)
{
	if (!o)
		return 0;
	if (!o->buckets || !o->n_peers || o->n_peers >= LB_NFT_OWNER_HERE ||
	    o->self >= o->n_peers || !o->names || !o->marks || !o->to || !o->chance ||
	    !o->dscp_to_owner || o->dscp_to_owner > 63 || !o->dscp_second_chance ||
	    o->dscp_second_chance > 63 || o->dscp_to_owner == o->dscp_second_chance)
		return -EINVAL;
	for (size_t k = 0; k < o->n_peers; k++)
		if (!o->names[k] || !*o->names[k] ||
		    strlen(o->names[k]) + sizeof(CHAIN_CHANCE) >= NFT_CHAIN_MAXNAMELEN)
			return -EINVAL;
	for (uint32_t b = 0; b < o->buckets; b++) {
		uint16_t t = o->to[b], c = o->chance[b];

		if ((t != LB_NFT_OWNER_HERE && (t >= o->n_peers || t == o->self)) ||
		    (c != LB_NFT_OWNER_HERE && (c >= o->n_peers || c == o->self)))
			return -EINVAL;
	}
	return 0;
}

/* Appends r (NULL: out of memory) when ret, what filling it returned, is 0; frees it. */
static int rule_end(struct nftnl_rule *r, int ret, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	return r ? lb_nft_rule_put(r, ret, batch, seq) : -ENOMEM;
}

static void chain_name(char *buf, size_t len, const char *prefix, const char *peer)
{
	snprintf(buf, len, "%s%s", prefix, peer);
}

static int map_msg(const struct lb_nft_spec *spec, const char *name, uint32_t id,
		   struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_set *s = lb_nft_set_alloc(spec, name, id);
	struct nlmsghdr *nlh;

	if (!s)
		return -ENOMEM;
	/* A verdict map of B fixed keys: its size lets the kernel pick a hash of B buckets. */
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, TYPE_MARK);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint32_t));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, spec->owner->buckets);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSET, NLM_F_CREATE, seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return lb_nft_msg_end(batch);
}

int lb_nft_owner_decl_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			   uint32_t *seq)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < LB_NFT_OWNER_COUNTERS; i++)
		ret = lb_nft_counter_msg(spec, lb_nft_owner_counters[i], batch, seq);
	if (!ret)
		ret = map_msg(spec, MAP_OWNER, MAP_OWNER_ID, batch, seq);
	if (!ret)
		ret = map_msg(spec, MAP_CHANCE, MAP_CHANCE_ID, batch, seq);
	return ret;
}

int lb_nft_owner_chain_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			    uint32_t *seq)
{
	static const char *const fixed[] = {
		LB_NFT_CHAIN_TPROXY4, LB_NFT_CHAIN_TPROXY6, LB_NFT_CHAIN_OWN4, LB_NFT_CHAIN_OWN6,
		CHAIN_OWNED, CHAIN_ARRIVED,
	};
	const struct lb_nft_owner *o = spec->owner;
	char name[NFT_CHAIN_MAXNAMELEN];
	int ret = 0;

	for (size_t i = 0; !ret && i < sizeof(fixed) / sizeof(fixed[0]); i++)
		ret = lb_nft_chain_msg(spec, fixed[i], false, batch, seq);
	for (size_t k = 0; !ret && k < o->n_peers; k++) {
		if (k == o->self)
			continue;
		chain_name(name, sizeof(name), CHAIN_TO, o->names[k]);
		ret = lb_nft_chain_msg(spec, name, false, batch, seq);
		if (ret)
			break;
		chain_name(name, sizeof(name), CHAIN_CHANCE, o->names[k]);
		ret = lb_nft_chain_msg(spec, name, false, batch, seq);
	}
	return ret;
}

/* The element of bucket b in map (owner: to[], else chance[]), with its verdict. */
static int elem_add(const struct lb_nft_owner *o, bool owner, uint32_t b, struct nftnl_set *s,
		    bool with_data)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();
	char name[NFT_CHAIN_MAXNAMELEN];
	uint16_t peer = owner ? o->to[b] : o->chance[b];

	if (!e)
		return -ENOMEM;
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &b, sizeof(b));
	if (with_data && peer == LB_NFT_OWNER_HERE && !owner) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_RETURN);
	} else if (with_data) {
		if (peer == LB_NFT_OWNER_HERE)
			snprintf(name, sizeof(name), "%s", CHAIN_OWNED);
		else
			chain_name(name, sizeof(name), owner ? CHAIN_TO : CHAIN_CHANCE,
				   o->names[peer]);
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
		nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, name);
	}
	nftnl_set_elem_add(s, e);		/* s owns e now */
	return 0;
}

/*
 * Messages of type (NEWSETELEM or DELSETELEM) for the buckets of map
 * (owner or chance) that pick says (all when NULL: pick[b] true to take b).
 */
static int elems_msgs(const struct lb_nft_spec *spec, bool owner, const bool *pick,
		      uint16_t type, struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *count)
{
	const struct lb_nft_owner *o = spec->owner;
	const char *map = owner ? MAP_OWNER : MAP_CHANCE;
	uint32_t id = owner ? MAP_OWNER_ID : MAP_CHANCE_ID;
	uint32_t b = 0;

	while (b < o->buckets) {
		struct nftnl_set *s = lb_nft_set_alloc(spec, map, id);
		struct nlmsghdr *nlh;
		size_t in_msg = 0;
		int ret = 0;

		if (!s)
			return -ENOMEM;
		for (; b < o->buckets && in_msg < ELEMS_PER_MSG && !ret; b++) {
			if (pick && !pick[b])
				continue;
			ret = elem_add(o, owner, b, s, type == NFT_MSG_NEWSETELEM);
			in_msg++;
		}
		if (!ret && in_msg) {
			nlh = lb_nft_msg(batch, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
					 seq);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			ret = lb_nft_msg_end(batch);
		}
		nftnl_set_free(s);
		if (ret)
			return ret;
		if (count)
			*count += in_msg;
	}
	return 0;
}

int lb_nft_owner_elem_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			   uint32_t *seq)
{
	int ret = elems_msgs(spec, true, NULL, NFT_MSG_NEWSETELEM, batch, seq, NULL);

	return ret ? ret : elems_msgs(spec, false, NULL, NFT_MSG_NEWSETELEM, batch, seq, NULL);
}

int lb_nft_owner_diff_msgs(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
			   struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *changed)
{
	const struct lb_nft_owner *a = old->owner, *b = next->owner;
	bool *pick;
	int ret = 0;

	*changed = 0;
	if (!a || !b)
		return 0;
	if (a->buckets != b->buckets)
		return -EINVAL;
	pick = malloc(b->buckets * sizeof(*pick));
	if (!pick)
		return -ENOMEM;
	/* Per map: the changed buckets' elements go, then come back with their new verdicts. */
	for (int map = 0; map < 2 && !ret; map++) {
		const uint16_t *x = map ? a->chance : a->to, *y = map ? b->chance : b->to;
		size_t n = 0;

		for (uint32_t k = 0; k < b->buckets; k++)
			n += pick[k] = x[k] != y[k];
		if (!n)
			continue;
		*changed += n;
		ret = elems_msgs(old, !map, pick, NFT_MSG_DELSETELEM, batch, seq, NULL);
		if (!ret)
			ret = elems_msgs(next, !map, pick, NFT_MSG_NEWSETELEM, batch, seq, NULL);
	}
	free(pick);
	return ret;
}

/* "ip dscp D" (IPv4: the TOS byte's upper six bits) or "ip6 dscp D" (across the first two bytes). */
static int dscp_cmp(struct nftnl_rule *r, bool v6, uint8_t dscp)
{
	int ret;

	if (!v6) {
		uint8_t mask = 0xfc, zero = 0, want = (uint8_t)(dscp << 2);

		if ((ret = lb_nft_meta_cmp(r, NFT_META_NFPROTO, NFPROTO_IPV4)) ||
		    (ret = lb_nft_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 1, 1, NFT_REG_1)) ||
		    (ret = lb_nft_expr_bitwise(r, NFT_REG_1, 1, &mask, &zero)))
			return ret;
		return lb_nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &want, 1);
	}
	uint8_t mask[2] = { 0x0f, 0xc0 }, zero[2] = { 0, 0 };
	uint8_t want[2] = { (uint8_t)(dscp >> 2), (uint8_t)((dscp & 3) << 6) };

	if ((ret = lb_nft_meta_cmp(r, NFT_META_NFPROTO, NFPROTO_IPV6)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 0, 2, NFT_REG_1)) ||
	    (ret = lb_nft_expr_bitwise(r, NFT_REG_1, 2, mask, zero)))
		return ret;
	return lb_nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, want, 2);
}

/*
 * "ip dscp set D" / "ip6 dscp set D": the other bits (version, header
 * length, ECN, flow label) kept; IPv4's header checksum follows.
 */
static int dscp_set(struct nftnl_rule *r, bool v6, uint8_t dscp)
{
	uint8_t mask[2], xor[2];
	int ret;

	if (!v6) {
		mask[0] = 0xff, mask[1] = 0x03;
		xor[0] = 0, xor[1] = (uint8_t)(dscp << 2);
	} else {
		mask[0] = 0xf0, mask[1] = 0x3f;
		xor[0] = (uint8_t)(dscp >> 2), xor[1] = (uint8_t)((dscp & 3) << 6);
	}
	if ((ret = lb_nft_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 0, 2, NFT_REG_1)) ||
	    (ret = lb_nft_expr_bitwise(r, NFT_REG_1, 2, mask, xor)))
		return ret;
	return lb_nft_expr_payload_write(r, NFT_REG_1, 0, 2, v6 ? 0 : IP4_CSUM_OFF);
}

/* "tcp flags & (fin | syn | rst | ack) == syn": a connection's first packet. */
static int syn_cmp(struct nftnl_rule *r)
{
	uint8_t mask = TCP_FIN_SYN_RST_ACK, zero = 0, syn = TCP_SYN;
	int ret;

	if ((ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, IPPROTO_TCP)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, TCP_FLAGS_OFF, 1,
				       NFT_REG_1)) ||
	    (ret = lb_nft_expr_bitwise(r, NFT_REG_1, 1, &mask, &zero)))
		return ret;
	return lb_nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &syn, 1);
}

/* "jhash ip saddr . th sport mod B seed S vmap @map" (ip6 saddr for v6). */
static int bucket_vmap(const struct lb_nft_owner *o, struct nftnl_rule *r, bool v6,
		       const char *map, uint32_t id)
{
	uint32_t alen = v6 ? 16 : 4;
	int ret;

	if ((ret = lb_nft_meta_cmp(r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_NETWORK_HEADER,
				       v6 ? IP6_SADDR_OFF : IP4_SADDR_OFF, alen, NFT_REG32_00)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2,
				       NFT_REG32_00 + alen / 4)) ||
	    (ret = lb_nft_expr_jhash(r, NFT_REG32_00, alen + 4, o->buckets, o->seed,
				     NFT_REG32_00)))
		return ret;
	return lb_nft_expr_vmap(r, NFT_REG32_00, map, id);
}

/* Rule builders: each fills r and returns 0 or -ENOMEM. */
enum rule_kind {
	R_UDP_FLOW,		/* meta l4proto udp socket transparent 1 return */
	R_DSCP_CHANCE,		/* ip dscp SECOND goto arrived */
	R_DSCP_OWNER,		/* ip dscp TO_OWNER goto owned */
	R_OWNER_MAP,		/* jhash ... vmap @bucket_owner */
	R_UDP_HERE,		/* meta l4proto udp return */
	R_SYN_HERE,		/* tcp flags ... == syn return */
	R_CHANCE_MAP,		/* jhash ... vmap @bucket_chance */
	R_DROP,			/* counter name dropped drop */
};

static int rule_fill(const struct lb_nft_owner *o, struct nftnl_rule *r, enum rule_kind kind,
		     bool v6)
{
	int ret = 0;

	switch (kind) {
	case R_UDP_FLOW:
		if ((ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, IPPROTO_UDP)) ||
		    (ret = lb_nft_socket_transparent(r)))
			return ret;
		return lb_nft_verdict(r, NFT_RETURN);
	case R_DSCP_CHANCE:
		ret = dscp_cmp(r, v6, o->dscp_second_chance);
		return ret ? ret : lb_nft_expr_jump(r, NFT_GOTO, CHAIN_ARRIVED);
	case R_DSCP_OWNER:
		ret = dscp_cmp(r, v6, o->dscp_to_owner);
		return ret ? ret : lb_nft_expr_jump(r, NFT_GOTO, CHAIN_OWNED);
	case R_OWNER_MAP:
		return bucket_vmap(o, r, v6, MAP_OWNER, MAP_OWNER_ID);
	case R_UDP_HERE:
		ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, IPPROTO_UDP);
		return ret ? ret : lb_nft_verdict(r, NFT_RETURN);
	case R_SYN_HERE:
		ret = syn_cmp(r);
		return ret ? ret : lb_nft_verdict(r, NFT_RETURN);
	case R_CHANCE_MAP:
		return bucket_vmap(o, r, v6, MAP_CHANCE, MAP_CHANCE_ID);
	case R_DROP:
		ret = lb_nft_expr_counter(r, lb_nft_owner_counters[LB_NFT_OWNER_DROPPED]);
		return ret ? ret : lb_nft_verdict(r, NF_DROP);
	}
	return -EINVAL;
}

static int rule_msg(const struct lb_nft_spec *spec, const char *chain, enum rule_kind kind,
		    bool v6, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_rule *r = lb_nft_rule_alloc(spec, chain);

	return rule_end(r, r ? rule_fill(spec->owner, r, kind, v6) : -ENOMEM, batch, seq);
}

/* to_NAME (chance false) or chance_NAME: counted, tagged, marked for peer k, accepted. */
static int forward_msgs(const struct lb_nft_spec *spec, size_t k, bool chance,
			struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	const struct lb_nft_owner *o = spec->owner;
	char chain[NFT_CHAIN_MAXNAMELEN];
	struct nftnl_rule *r;
	int ret;

	chain_name(chain, sizeof(chain), chance ? CHAIN_CHANCE : CHAIN_TO, o->names[k]);
	r = lb_nft_rule_alloc(spec, chain);
	ret = rule_end(r, r ? lb_nft_expr_counter(r, lb_nft_owner_counters[chance]) :
				     -ENOMEM, batch, seq);
	for (int v6 = 0; v6 < 2 && !ret; v6++) {
		r = lb_nft_rule_alloc(spec, chain);
		if (r && !(ret = lb_nft_meta_cmp(r, NFT_META_NFPROTO,
						      v6 ? NFPROTO_IPV6 : NFPROTO_IPV4)) &&
		    !(ret = dscp_set(r, v6, chance ? o->dscp_second_chance : o->dscp_to_owner)) &&
		    !(ret = lb_nft_expr_mark_set(r, o->marks[k])))
			ret = lb_nft_verdict(r, NF_ACCEPT);
		ret = rule_end(r, r ? ret : -ENOMEM, batch, seq);
	}
	return ret;
}

int lb_nft_owner_rule_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			   uint32_t *seq)
{
	static const struct {
		const char *chain;
		enum rule_kind kind;
		int v6;
	} rules[] = {
		{ LB_NFT_CHAIN_OWN4, R_UDP_FLOW, 0 }, { LB_NFT_CHAIN_OWN4, R_DSCP_CHANCE, 0 },
		{ LB_NFT_CHAIN_OWN4, R_DSCP_OWNER, 0 }, { LB_NFT_CHAIN_OWN4, R_OWNER_MAP, 0 },
		{ LB_NFT_CHAIN_OWN6, R_UDP_FLOW, 1 }, { LB_NFT_CHAIN_OWN6, R_DSCP_CHANCE, 1 },
		{ LB_NFT_CHAIN_OWN6, R_DSCP_OWNER, 1 }, { LB_NFT_CHAIN_OWN6, R_OWNER_MAP, 1 },
		{ CHAIN_OWNED, R_UDP_HERE, 0 }, { CHAIN_OWNED, R_SYN_HERE, 0 },
		{ CHAIN_OWNED, R_CHANCE_MAP, 0 }, { CHAIN_OWNED, R_CHANCE_MAP, 1 },
		{ CHAIN_ARRIVED, R_UDP_HERE, 0 }, { CHAIN_ARRIVED, R_SYN_HERE, 0 },
		{ CHAIN_ARRIVED, R_DROP, 0 },
	};
	const struct lb_nft_owner *o = spec->owner;
	int ret = 0;

	for (size_t i = 0; !ret && i < sizeof(rules) / sizeof(rules[0]); i++)
		ret = rule_msg(spec, rules[i].chain, rules[i].kind, rules[i].v6, batch, seq);
	for (size_t k = 0; !ret && k < o->n_peers; k++) {
		if (k == o->self)
			continue;
		ret = forward_msgs(spec, k, false, batch, seq);
		if (!ret)
			ret = forward_msgs(spec, k, true, batch, seq);
	}
	return ret;
}

size_t lb_nft_owner_msgs(const struct lb_nft_spec *spec)
{
	/* Chains, rules, counters, maps: a few fixed and some per peer; elements are counted apart. */
	return spec->owner ? 40 + 8 * spec->owner->n_peers : 0;
}

void lb_nft_owner_print_decl(const struct lb_nft_spec *spec, FILE *out)
{
	const struct lb_nft_owner *o = spec->owner;

	for (size_t i = 0; i < LB_NFT_OWNER_COUNTERS; i++)
		fprintf(out, "\n\tcounter %s {\n\t}\n", lb_nft_owner_counters[i]);
	fprintf(out, "\n\tmap %s {\n\t\ttype mark : verdict\n\t\tsize %u\n"
		"\t\t# bucket -> goto to_PEER (its owner) or owned; kept by lb as peers "
		"come and go\n\t}\n", MAP_OWNER, o->buckets);
	fprintf(out, "\n\tmap %s {\n\t\ttype mark : verdict\n\t\tsize %u\n"
		"\t\t# bucket -> goto chance_PEER (its previous owner) or return\n\t}\n",
		MAP_CHANCE, o->buckets);
}

void lb_nft_owner_print_chains(const struct lb_nft_spec *spec, FILE *out)
{
	const struct lb_nft_owner *o = spec->owner;
	const char *hash[2] = { "ip saddr", "ip6 saddr" };
	unsigned int c = o->dscp_second_chance, w = o->dscp_to_owner;

	for (int v6 = 0; v6 < 2; v6++)
		fprintf(out, "\n\tchain %s {\n"
			"\t\tmeta l4proto udp socket transparent 1 return\n"
			"\t\t%s dscp %u goto %s\n"
			"\t\t%s dscp %u goto %s\n"
			"\t\tjhash %s . th sport mod %u seed 0x%x vmap @%s\n\t}\n",
			v6 ? LB_NFT_CHAIN_OWN6 : LB_NFT_CHAIN_OWN4, v6 ? "ip6" : "ip", c,
			CHAIN_ARRIVED, v6 ? "ip6" : "ip", w, CHAIN_OWNED, hash[v6], o->buckets,
			o->seed, MAP_OWNER);
	fprintf(out, "\n\tchain %s {\n"
		"\t\tmeta l4proto udp return\n"
		"\t\ttcp flags & (fin | syn | rst | ack) == syn return\n"
		"\t\tmeta nfproto ipv4 jhash %s . th sport mod %u seed 0x%x vmap @%s\n"
		"\t\tmeta nfproto ipv6 jhash %s . th sport mod %u seed 0x%x vmap @%s\n\t}\n",
		CHAIN_OWNED, hash[0], o->buckets, o->seed, MAP_CHANCE, hash[1], o->buckets,
		o->seed, MAP_CHANCE);
	fprintf(out, "\n\tchain %s {\n"
		"\t\tmeta l4proto udp return\n"
		"\t\ttcp flags & (fin | syn | rst | ack) == syn return\n"
		"\t\tcounter name \"%s\" drop\n\t}\n",
		CHAIN_ARRIVED, lb_nft_owner_counters[LB_NFT_OWNER_DROPPED]);
	for (size_t k = 0; k < o->n_peers; k++) {
		if (k == o->self)
			continue;
		for (int chance = 0; chance < 2; chance++) {
			unsigned int d = chance ? c : w;

			fprintf(out, "\n\tchain %s%s {\n"
				"\t\tcounter name \"%s\"\n"
				"\t\tmeta nfproto ipv4 ip dscp set %u meta mark set 0x%08x accept\n"
				"\t\tmeta nfproto ipv6 ip6 dscp set %u meta mark set 0x%08x accept\n"
				"\t}\n", chance ? CHAIN_CHANCE : CHAIN_TO, o->names[k],
				lb_nft_owner_counters[chance], d, o->marks[k], d, o->marks[k]);
		}
	}
}
