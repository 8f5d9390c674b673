// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The netlink messages of the per-client rules (see clients.c for what
 * they are): counters, interval and meter sets, the clients_ID chains and
 * their rules, the maps that jump to them, and prerouting's jumps. Pure,
 * like ruleset.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

#include "nft/clients.h"

/* Batch-local ids of the maps (the VIP sets use 1..10, the services' sets 64 on). */
#define MAP_ID		32
#define TCP_FLAGS_OFF	13
#define TCP_SYN		0x02
#define TCP_ACK		0x10

/* The open-interval mark nft leaves on an element: it lists the range as nft would. */
static int elem_open(struct nftnl_set_elem *e)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(16);

	if (!u)
		return -ENOMEM;
	nftnl_udata_put_u32(u, NFTNL_UDATA_SET_ELEM_FLAGS, NFTNL_SET_ELEM_F_INTERVAL_OPEN);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(u),
			   nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
	return 0;
}

/* Elements in messages of LB_NFT_CELEMS_PER_MSG, in order. */
static int elems_msgs(const struct lb_nft_spec *spec, const char *set, uint32_t id,
		      const struct lb_nft_celem *el, size_t n, struct mnl_nlmsg_batch *batch,
		      uint32_t *seq)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < n; i += LB_NFT_CELEMS_PER_MSG) {
		struct nftnl_set *s = lb_nft_set_alloc(spec, set, id);
		struct nlmsghdr *nlh;

		if (!s)
			return -ENOMEM;
		for (size_t j = i; ret == 0 && j < n && j < i + LB_NFT_CELEMS_PER_MSG; j++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();

			if (!e) {
				ret = -ENOMEM;
				break;
			}
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, el[j].key, el[j].len);
			if (el[j].has_end)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, el[j].key_end,
						   el[j].len);
			if (el[j].end)
				nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS,
						       NFT_SET_ELEM_INTERVAL_END);
			if (el[j].open)
				ret = elem_open(e);
			if (el[j].chain) {
				nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NFT_JUMP);
				nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, el[j].chain);
			}
			nftnl_set_elem_add(s, e);
		}
		if (ret == 0) {
			nlh = lb_nft_msg(batch, NFT_MSG_NEWSETELEM, NLM_F_CREATE, seq);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			ret = lb_nft_msg_end(batch);
		}
		nftnl_set_free(s);
	}
	return ret;
}

/* The first address after p into end; false when p runs to the last address. */
static bool prefix_end(const struct lb_nft_prefix *p, uint32_t len, uint8_t *end)
{
	int carry = 1;

	memcpy(end, p->addr, len);
	for (uint32_t bit = p->len; bit < len * 8; bit++)
		end[bit / 8] |= 0x80 >> (bit % 8);
	for (int i = (int)len - 1; i >= 0 && carry; i--) {
		end[i]++;
		carry = end[i] == 0;
	}
	return !carry;
}

/*
 * The interval set's elements as nft sends them: each prefix a start and,
 * unless it runs to the last address, an end; before the first, an end at
 * the first address (nft's way of saying nothing precedes it).
 */
static struct lb_nft_celem *interval_elems(const struct lb_nft_prefix *p, size_t n,
					   const struct lb_nft_cfam *f, size_t *count)
{
	struct lb_nft_celem *el = calloc(2 * n + 1, sizeof(*el));
	size_t k = 0;

	if (!el)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		static const uint8_t zero[16];

		if (i == 0 && memcmp(p[0].addr, zero, f->len)) {
			el[k].len = f->len;
			el[k++].end = true;
		}
		memcpy(el[k].key, p[i].addr, f->len);
		el[k].len = f->len;
		if (!prefix_end(&p[i], f->len, el[k + 1].key)) {
			el[k++].open = true;
			continue;
		}
		k++;
		el[k].len = f->len;
		el[k++].end = true;
	}
	*count = k;
	return el;
}

static int interval_set(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
			enum lb_nft_ckind k, const struct lb_nft_cfam *f,
			struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	const struct lb_nft_prefix *list = k == LB_NFT_ALLOW ? c->allow : c->deny;
	size_t total = k == LB_NFT_ALLOW ? c->n_allow : c->n_deny, n, count = 0;
	struct lb_nft_prefix *p = NULL;
	struct lb_nft_celem *el = NULL;
	struct nftnl_set *s;
	char name[LB_NFT_NAME_LEN];
	struct nlmsghdr *nlh;
	int ret;

	lb_nft_clients_set_name(name, c, k, f);
	s = lb_nft_set_alloc(spec, name, lb_nft_clients_set_id(c, k, f));
	if (!s)
		return -ENOMEM;
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_INTERVAL);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, f->type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, f->len);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSET, NLM_F_CREATE, seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	ret = lb_nft_msg_end(batch);
	if (ret)
		return ret;
	p = lb_nft_clients_sorted(list, total, f, &n);
	el = p ? interval_elems(p, n, f, &count) : NULL;
	ret = el ? elems_msgs(spec, name, lb_nft_clients_set_id(c, k, f), el, count, batch, seq)
		 : -ENOMEM;
	free(el);
	free(p);
	return ret;
}

static int meter_set(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
		     const struct lb_nft_cfam *f, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_set *s;
	char name[LB_NFT_NAME_LEN];
	struct nlmsghdr *nlh;

	lb_nft_clients_set_name(name, c, LB_NFT_RATE, f);
	s = lb_nft_set_alloc(spec, name, lb_nft_clients_set_id(c, LB_NFT_RATE, f));
	if (!s)
		return -ENOMEM;
	/* "flags dynamic,timeout": rules add to it, entries expire. */
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_EVAL | NFT_SET_TIMEOUT);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, f->type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, f->len);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, c->size);
	nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, (uint64_t)lb_nft_clients_timeout_s(c) * 1000);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSET, NLM_F_CREATE, seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return lb_nft_msg_end(batch);
}

static int reject(struct nftnl_rule *r, uint32_t type, uint8_t code)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "reject");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
	return 0;
}

/* "reg 1 = reg 1 & mask": the meter's key is the client's prefix of len bits. */
static int mask_reg(struct nftnl_rule *r, const struct lb_nft_cfam *f, unsigned int len)
{
	uint8_t mask[16] = { 0 }, zero[16] = { 0 };
	struct nftnl_expr *e;

	for (unsigned int bit = 0; bit < len; bit++)
		mask[bit / 8] |= 0x80 >> (bit % 8);
	e = lb_nft_expr_add(r, "bitwise");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, f->len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, f->len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, f->len);
	return 0;
}

/* "tcp flags syn / syn,ack": a SYN, not a SYN-ACK nor any later segment. */
static int syn_only(struct nftnl_rule *r)
{
	uint8_t mask = TCP_SYN | TCP_ACK, zero = 0, syn = TCP_SYN;
	int ret;

	if ((ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, IPPROTO_TCP)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, TCP_FLAGS_OFF, 1, NFT_REG_1)) ||
	    (ret = lb_nft_expr_bitwise(r, NFT_REG_1, 1, &mask, &zero)))
		return ret;
	return lb_nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &syn, 1);
}

/* The client's address into reg 1, for f (implies "meta nfproto"). */
static int saddr_load(struct nftnl_rule *r, const struct lb_nft_cfam *f)
{
	int ret = lb_nft_meta_cmp(r, NFT_META_NFPROTO, f->nfproto);

	return ret ? ret : lb_nft_payload(r, NFT_PAYLOAD_NETWORK_HEADER, f->saddr_off, f->len,
					  NFT_REG_1);
}

/* How a refusal by a list ends: drop, or reject for proto (0: any). */
enum refusal { DROP, RESET_TCP, UNREACH_UDP };

/*
 * "[meta l4proto P] ip saddr [!=] @allowF_ID counter name "deny_ID" VERDICT":
 * one rule refusing the clients of list k.
 */
static int list_rule(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
		     enum lb_nft_ckind k, const struct lb_nft_cfam *f, enum refusal how,
		     struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	char chain[LB_NFT_NAME_LEN], set[LB_NFT_NAME_LEN], counter[LB_NFT_NAME_LEN];
	struct nftnl_rule *r;
	int ret = 0;

	lb_nft_clients_chain_name(chain, c);
	lb_nft_clients_set_name(set, c, k, f);
	snprintf(counter, sizeof(counter), "deny_%u", c->id);
	r = lb_nft_rule_alloc(spec, chain);
	if (!r)
		return -ENOMEM;
	if (how != DROP)
		ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO,
				      how == RESET_TCP ? IPPROTO_TCP : IPPROTO_UDP);
	if (ret == 0 && (ret = saddr_load(r, f)) == 0 &&
	    (ret = lb_nft_lookup_flags(r, NFT_REG_1, set, lb_nft_clients_set_id(c, k, f),
				       k == LB_NFT_ALLOW)) == 0 &&
	    (ret = lb_nft_expr_counter(r, counter)) == 0) {
		if (how == DROP)
			ret = lb_nft_verdict(r, NF_DROP);
		else if (how == RESET_TCP)
			ret = reject(r, NFT_REJECT_TCP_RST, 0);
		else
			ret = reject(r, f->unreach_type, f->unreach_code);
	}
	return lb_nft_rule_put(r, ret, batch, seq);
}

/* Rules refusing list k's clients of f: one drop, or a reject per protocol served. */
static int list_rules(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
		      enum lb_nft_ckind k, const struct lb_nft_cfam *f,
		      struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	int ret = 0;

	if (!lb_nft_clients_has_set(c, k, f))
		return 0;
	if (!c->reset)
		return list_rule(spec, c, k, f, DROP, batch, seq);
	if (lb_nft_clients_carries(c, false, f->family))
		ret = list_rule(spec, c, k, f, RESET_TCP, batch, seq);
	if (ret == 0 && lb_nft_clients_carries(c, true, f->family))
		ret = list_rule(spec, c, k, f, UNREACH_UDP, batch, seq);
	return ret;
}

/*
 * "tcp flags syn / syn,ack update @rateF_ID { ip saddr [& MASK] limit rate
 * over R/second burst B packets } counter name "rate_ID" drop" (for UDP:
 * "meta l4proto udp" first): the key's bucket is taken from, the packet
 * dropped once it is empty.
 */
static int rate_rule(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
		     const struct lb_nft_cfam *f, bool udp, struct mnl_nlmsg_batch *batch,
		     uint32_t *seq)
{
	unsigned int plen = f->family == AF_INET ? c->prefix4 : c->prefix6;
	char chain[LB_NFT_NAME_LEN], set[LB_NFT_NAME_LEN], counter[LB_NFT_NAME_LEN];
	struct nftnl_expr *dyn, *lim;
	struct nftnl_rule *r;
	int ret;

	lb_nft_clients_chain_name(chain, c);
	lb_nft_clients_set_name(set, c, LB_NFT_RATE, f);
	snprintf(counter, sizeof(counter), "rate_%u", c->id);
	r = lb_nft_rule_alloc(spec, chain);
	if (!r)
		return -ENOMEM;
	ret = udp ? lb_nft_meta_cmp(r, NFT_META_L4PROTO, IPPROTO_UDP) : syn_only(r);
	if (ret == 0)
		ret = saddr_load(r, f);
	if (ret == 0 && plen < f->len * 8)
		ret = mask_reg(r, f, plen);
	if (ret == 0) {
		dyn = lb_nft_expr_add(r, "dynset");
		lim = nftnl_expr_alloc("limit");
		if (!dyn || !lim) {
			nftnl_expr_free(lim);
			ret = -ENOMEM;
		} else {
			nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_RATE, c->rate);
			nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_UNIT, 1);
			nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_BURST, c->burst);
			nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
			nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_FLAGS, NFT_LIMIT_F_INV);
			nftnl_expr_set_u32(dyn, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
			nftnl_expr_set_u32(dyn, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
			nftnl_expr_set_str(dyn, NFTNL_EXPR_DYNSET_SET_NAME, set);
			nftnl_expr_set_u32(dyn, NFTNL_EXPR_DYNSET_SET_ID,
					   lb_nft_clients_set_id(c, LB_NFT_RATE, f));
			nftnl_expr_add_expr(dyn, NFTNL_EXPR_DYNSET_EXPRESSIONS, lim);
		}
	}
	if (ret == 0 && (ret = lb_nft_expr_counter(r, counter)) == 0)
		ret = lb_nft_verdict(r, NF_DROP);
	return lb_nft_rule_put(r, ret, batch, seq);
}

static int chain_msgs(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
		      struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	const struct lb_nft_cfam *f;
	char chain[LB_NFT_NAME_LEN];
	int ret;

	lb_nft_clients_chain_name(chain, c);
	ret = lb_nft_chain_msg(spec, chain, false, batch, seq);
	for (f = lb_nft_cfams; ret == 0 && f < lb_nft_cfams + 2; f++) {
		if ((ret = list_rules(spec, c, LB_NFT_ALLOW, f, batch, seq)) == 0)
			ret = list_rules(spec, c, LB_NFT_DENY, f, batch, seq);
	}
	for (f = lb_nft_cfams; ret == 0 && f < lb_nft_cfams + 2; f++) {
		if (!lb_nft_clients_has_set(c, LB_NFT_RATE, f))
			continue;
		if (lb_nft_clients_carries(c, false, f->family))
			ret = rate_rule(spec, c, f, false, batch, seq);
		if (ret == 0 && lb_nft_clients_carries(c, true, f->family))
			ret = rate_rule(spec, c, f, true, batch, seq);
	}
	return ret;
}

/* Map m and its elements: each VIP of its kind jumps to its service's chain. */
static int map_msgs(const struct lb_nft_spec *spec, const struct lb_nft_cmap *m,
		    struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];
	uint32_t id = MAP_ID + (uint32_t)(m - lb_nft_cmaps);
	char (*chains)[LB_NFT_NAME_LEN] = NULL;
	struct lb_nft_celem *el = NULL;
	struct nftnl_set *s;
	struct nlmsghdr *nlh;
	size_t n = 0;
	int ret;

	if (!lb_nft_clients_map_has(spec, m))
		return 0;
	s = lb_nft_set_alloc(spec, m->name, id);
	if (!s)
		return -ENOMEM;
	if (f->range) {
		uint8_t fields[2] = { (uint8_t)f->addr_len, 2 };

		nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
				  NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT);
		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, fields, sizeof(fields));
	} else {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
	}
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, f->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, f->key_len);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSET, NLM_F_CREATE, seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	ret = lb_nft_msg_end(batch);
	if (ret)
		return ret;
	chains = calloc(spec->n_clients, sizeof(*chains));
	el = chains ? lb_nft_clients_map_elems(spec, m, chains, &n) : NULL;
	ret = el ? elems_msgs(spec, m->name, id, el, n, batch, seq) : -ENOMEM;
	free(el);
	free(chains);
	return ret;
}

int lb_nft_clients_build(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			 uint32_t *seq)
{
	char name[LB_NFT_NAME_LEN];
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		if (c->allow || c->n_deny) {
			snprintf(name, sizeof(name), "deny_%u", c->id);
			ret = lb_nft_counter_msg(spec, name, batch, seq);
		}
		if (ret == 0 && c->rate) {
			snprintf(name, sizeof(name), "rate_%u", c->id);
			ret = lb_nft_counter_msg(spec, name, batch, seq);
		}
	}
	for (size_t i = 0; ret == 0 && i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		for (const struct lb_nft_cfam *f = lb_nft_cfams; ret == 0 && f < lb_nft_cfams + 2;
		     f++) {
			if (lb_nft_clients_has_set(c, LB_NFT_ALLOW, f))
				ret = interval_set(spec, c, LB_NFT_ALLOW, f, batch, seq);
			if (ret == 0 && lb_nft_clients_has_set(c, LB_NFT_DENY, f))
				ret = interval_set(spec, c, LB_NFT_DENY, f, batch, seq);
			if (ret == 0 && lb_nft_clients_has_set(c, LB_NFT_RATE, f))
				ret = meter_set(spec, c, f, batch, seq);
		}
	}
	/* Chains before the maps whose elements jump to them. */
	for (size_t i = 0; ret == 0 && i < spec->n_clients; i++)
		ret = chain_msgs(spec, &spec->clients[i], batch, seq);
	for (size_t i = 0; ret == 0 && i < LB_NFT_CMAPS; i++)
		ret = map_msgs(spec, &lb_nft_cmaps[i], batch, seq);
	return ret;
}

/* "ip daddr . P dport vmap @MAP": the VIP's chain, if its service has one. */
static int jump_msg(const struct lb_nft_spec *spec, const struct lb_nft_cmap *m,
		    struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_rule *r;
	struct nftnl_expr *e;
	int ret;

	r = lb_nft_rule_alloc(spec, LB_NFT_CHAIN);
	if (!r)
		return -ENOMEM;
	ret = lb_nft_vip_key_load(r, &lb_nft_vipsets[m->vs]);
	if (ret == 0) {
		e = lb_nft_expr_add(r, "lookup");
		if (!e) {
			ret = -ENOMEM;
		} else {
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG32_00);
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
			nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, m->name);
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID,
					   MAP_ID + (uint32_t)(m - lb_nft_cmaps));
		}
	}
	return lb_nft_rule_put(r, ret, batch, seq);
}

int lb_nft_clients_jump_tcp(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			    uint32_t *seq)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < LB_NFT_CMAPS; i++)
		if (!lb_nft_clients_map_udp(&lb_nft_cmaps[i]) &&
		    lb_nft_clients_map_has(spec, &lb_nft_cmaps[i]))
			ret = jump_msg(spec, &lb_nft_cmaps[i], batch, seq);
	return ret;
}

int lb_nft_clients_udp(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
		       uint32_t *seq)
{
	int ret = 0;

	if (!lb_nft_clients_any_udp(spec))
		return 0;
	/* A datagram with a flow socket goes to it now, and never reaches a meter. */
	for (size_t i = 0; ret == 0 && i < 4; i++) {
		const struct lb_nft_family *f = &lb_nft_vipsets[lb_nft_cudp_sets[i]];
		struct nftnl_rule *r;

		if (!lb_nft_vipset_exists(spec, lb_nft_cudp_sets[i]))
			continue;
		r = lb_nft_rule_alloc(spec, LB_NFT_CHAIN);
		if (!r)
			return -ENOMEM;
		if ((ret = lb_nft_vip_key_load(r, f)) == 0 &&
		    (ret = lb_nft_lookup(r, NFT_REG32_00, f->set, f->set_id)) == 0 &&
		    (ret = lb_nft_socket_transparent(r)) == 0)
			ret = lb_nft_tproxy_mark(spec, f, r);
		ret = lb_nft_rule_put(r, ret, batch, seq);
	}
	for (size_t i = 0; ret == 0 && i < LB_NFT_CMAPS; i++)
		if (lb_nft_clients_map_udp(&lb_nft_cmaps[i]) &&
		    lb_nft_clients_map_has(spec, &lb_nft_cmaps[i]))
			ret = jump_msg(spec, &lb_nft_cmaps[i], batch, seq);
	return ret;
}
