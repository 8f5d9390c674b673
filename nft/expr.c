// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Expressions beyond ruleset.c's basic ones, for the ownership chains
 * (owner.c) and the per-client rules (clients_build.c): compare, bitwise,
 * payload writes, hashes, verdict maps, named counters. Each appends to a
 * rule, which owns what was appended: callers only free the rule. They
 * return 0 or -ENOMEM. Pure: no socket, no root.
 */
#include <errno.h>
#include <netinet/in.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>

#include "nft/nft_priv.h"

int lb_nft_expr_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data,
		    uint32_t len)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "cmp");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	return 0;
}

int lb_nft_expr_payload_write(struct nftnl_rule *r, uint32_t sreg, uint32_t off, uint32_t len,
			      uint32_t csum_off)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "payload");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_TYPE,
			   csum_off ? NFT_PAYLOAD_CSUM_INET : NFT_PAYLOAD_CSUM_NONE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_OFFSET, csum_off);
	return 0;
}

int lb_nft_expr_bitwise(struct nftnl_rule *r, uint32_t reg, uint32_t len, const void *mask,
			const void *xor)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "bitwise");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
	return 0;
}

int lb_nft_expr_jump(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "immediate");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	return 0;
}

int lb_nft_expr_vmap(struct nftnl_rule *r, uint32_t sreg, const char *map, uint32_t id)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "lookup");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, map);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id);
	return 0;
}

int lb_nft_expr_jhash(struct nftnl_rule *r, uint32_t sreg, uint32_t len, uint32_t modulus,
		      uint32_t seed, uint32_t dreg)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "hash");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_DREG, dreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_MODULUS, modulus);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SEED, seed);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_OFFSET, 0);
	return 0;
}

int lb_nft_expr_counter(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "objref");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
	return 0;
}

int lb_nft_expr_mark_set(struct nftnl_rule *r, uint32_t mark)
{
	struct nftnl_expr *e;
	int ret;

	ret = lb_nft_imm(r, NFT_REG_1, &mark, sizeof(mark));
	if (ret)
		return ret;
	e = lb_nft_expr_add(r, "meta");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	return 0;
}

int lb_nft_counter_msg(const struct lb_nft_spec *spec, const char *name,
		       struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;

	if (!o)
		return -ENOMEM;
	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, spec->table);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWOBJ, NLM_F_CREATE, seq);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	return lb_nft_msg_end(batch);
}
