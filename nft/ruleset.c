/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lb's nf_tables ruleset as netlink messages (lb_nft_ruleset_build) and as
 * nft(8) text (lb_nft_ruleset_print). Pure: no socket, no root; apply.c
 * sends what this builds.
 */
#include "nft/nft.h"
#include "nft/nft_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
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

#define LB_NFT_PRIO	(-150)		/* NF_IP_PRI_MANGLE: "priority mangle" */

/* nft's name for an anonymous set; the kernel fills in the number. */
#define LB_NFT_ANON_SET	"__set%d"

/*
 * ICMP error types whose quoted packet can be one of lb's: what a router
 * sends about a packet it could not deliver (unreachable, frag needed or
 * packet too big, TTL exceeded, bad header). Not redirects (routing advice
 * for the gateway, not its sockets), not source quench (obsolete, ignored by
 * the kernel) and no informational type, so an echo request to a VIP never
 * reaches lb.
 */
static const uint8_t icmp4_errors[] = {
	ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB,
};
static const uint8_t icmp6_errors[] = {
	ICMP6_DST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED, ICMP6_PARAM_PROB,
};

#define KEY4_TYPE ((LB_NFT_TYPE_IPADDR << LB_NFT_TYPE_BITS) | LB_NFT_TYPE_SERVICE)
#define KEY6_TYPE ((LB_NFT_TYPE_IP6ADDR << LB_NFT_TYPE_BITS) | LB_NFT_TYPE_SERVICE)

/*
 * The VIP sets: TCP and UDP, single VIPs (a hash) and prefixes or port
 * ranges (an interval set), each per family. The TCP ones also carry the
 * family's ICMP error set.
 */
const struct lb_nft_family lb_nft_vipsets[LB_NFT_VS_N] = {
	[LB_NFT_VS_TCP4] = {
		.set = "vips4", .set_id = 1, .l4proto = IPPROTO_TCP,
		.key_type = KEY4_TYPE, .key_len = LB_NFT_KEY4_LEN, .nfproto = NFPROTO_IPV4,
		.daddr_off = 16, .addr_len = 4,
		.icmp_proto = IPPROTO_ICMP, .icmp_set_id = 3, .icmp_type = LB_NFT_TYPE_ICMP,
		.icmp_errors = icmp4_errors, .n_icmp_errors = sizeof(icmp4_errors),
	},
	[LB_NFT_VS_TCP6] = {
		.set = "vips6", .set_id = 2, .l4proto = IPPROTO_TCP,
		.key_type = KEY6_TYPE, .key_len = LB_NFT_KEY6_LEN, .nfproto = NFPROTO_IPV6,
		.daddr_off = 24, .addr_len = 16,
		.icmp_proto = IPPROTO_ICMPV6, .icmp_set_id = 4, .icmp_type = LB_NFT_TYPE_ICMP6,
		.icmp_errors = icmp6_errors, .n_icmp_errors = sizeof(icmp6_errors),
	},
	[LB_NFT_VS_UDP4] = {
		.set = "udp_vips4", .set_id = 5, .l4proto = IPPROTO_UDP,
		.key_type = KEY4_TYPE, .key_len = LB_NFT_KEY4_LEN, .nfproto = NFPROTO_IPV4,
		.daddr_off = 16, .addr_len = 4,
	},
	[LB_NFT_VS_UDP6] = {
		.set = "udp_vips6", .set_id = 6, .l4proto = IPPROTO_UDP,
		.key_type = KEY6_TYPE, .key_len = LB_NFT_KEY6_LEN, .nfproto = NFPROTO_IPV6,
		.daddr_off = 24, .addr_len = 16,
	},
	[LB_NFT_VS_TCP_R4] = {
		.set = "vip_ranges4", .set_id = 7, .l4proto = IPPROTO_TCP, .range = true,
		.key_type = KEY4_TYPE, .key_len = LB_NFT_KEY4_LEN, .nfproto = NFPROTO_IPV4,
		.daddr_off = 16, .addr_len = 4,
	},
	[LB_NFT_VS_TCP_R6] = {
		.set = "vip_ranges6", .set_id = 8, .l4proto = IPPROTO_TCP, .range = true,
		.key_type = KEY6_TYPE, .key_len = LB_NFT_KEY6_LEN, .nfproto = NFPROTO_IPV6,
		.daddr_off = 24, .addr_len = 16,
	},
	[LB_NFT_VS_UDP_R4] = {
		.set = "udp_vip_ranges4", .set_id = 9, .l4proto = IPPROTO_UDP, .range = true,
		.key_type = KEY4_TYPE, .key_len = LB_NFT_KEY4_LEN, .nfproto = NFPROTO_IPV4,
		.daddr_off = 16, .addr_len = 4,
	},
	[LB_NFT_VS_UDP_R6] = {
		.set = "udp_vip_ranges6", .set_id = 10, .l4proto = IPPROTO_UDP, .range = true,
		.key_type = KEY6_TYPE, .key_len = LB_NFT_KEY6_LEN, .nfproto = NFPROTO_IPV6,
		.daddr_off = 24, .addr_len = 16,
	},
};

static int vips_check(const union lb_nft_addr *vips, size_t n)
{
	if (n && !vips)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (vips[i].sa.sa_family != AF_INET && vips[i].sa.sa_family != AF_INET6)
			return -EAFNOSUPPORT;
	return 0;
}

/*
 * Whether spec can be built; with elems, its VIPs too (a walk of every
 * one: only builds that send them pay for it).
 */
static int spec_check(const struct lb_nft_spec *spec, bool elems)
{
	size_t len;
	int ret;

	if (!spec || !spec->table)
		return -EINVAL;
	len = strlen(spec->table);
	if (len == 0 || len >= NFT_TABLE_MAXNAMELEN)
		return -EINVAL;
	len = spec->retire ? strlen(spec->retire) : 1;
	if (len == 0 || len >= NFT_TABLE_MAXNAMELEN)
		return -EINVAL;
	/* Port 0 would make tproxy keep the original port: not lb's listener. */
	if (spec->port == 0)
		return -EINVAL;
	ret = elems ? vips_check(spec->vips, spec->n_vips) : 0;
	if (!ret && elems)
		ret = vips_check(spec->udp_vips, spec->n_udp_vips);
	for (size_t i = 0; !ret && elems && i < spec->n_ranges + spec->n_udp_ranges; i++) {
		const struct lb_nft_range *r = i < spec->n_ranges ? &spec->ranges[i] :
					       &spec->udp_ranges[i - spec->n_ranges];

		if ((r->first.sa.sa_family != AF_INET && r->first.sa.sa_family != AF_INET6) ||
		    r->last.sa.sa_family != r->first.sa.sa_family)
			ret = -EAFNOSUPPORT;
	}
	if (!ret)
		ret = lb_nft_owner_check(spec->owner);
	return ret ? ret : lb_nft_clients_check(spec);
}

/* Starts a message in the batch; every one asks for an ack so that apply.c
 * can tell which object the kernel rejected. */
struct nlmsghdr *lb_nft_msg(struct mnl_nlmsg_batch *batch, uint16_t type, uint16_t flags,
			    uint32_t *seq)
{
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), type, NFPROTO_INET,
				     flags | NLM_F_ACK, (*seq)++);
}

/* mnl_nlmsg_batch_next() fails once the batch passed its limit; the caller
 * sized it and may retry with a larger one. */
int lb_nft_msg_end(struct mnl_nlmsg_batch *batch)
{
	return mnl_nlmsg_batch_next(batch) ? 0 : -EMSGSIZE;
}

static int table_msg(const char *name, struct mnl_nlmsg_batch *batch,
		     uint16_t type, uint16_t flags, uint32_t *seq)
{
	struct nftnl_table *t;
	struct nlmsghdr *nlh;

	t = nftnl_table_alloc();
	if (!t)
		return -ENOMEM;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	if (type == NFT_MSG_NEWTABLE)
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
	nlh = lb_nft_msg(batch, type, flags, seq);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return lb_nft_msg_end(batch);
}

struct nftnl_set *lb_nft_set_alloc(const struct lb_nft_spec *spec, const char *name, uint32_t id)
{
	struct nftnl_set *s;

	s = nftnl_set_alloc();
	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, spec->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	return s;
}

/* One element in a message of its own (the ICMP sets' few). */
static int elem_msg(const struct lb_nft_spec *spec, const char *set, uint32_t set_id,
		    const void *key, uint32_t len, struct mnl_nlmsg_batch *batch,
		    uint32_t *seq)
{
	struct nftnl_set_elem *e;
	struct nftnl_set *s;
	struct nlmsghdr *nlh;

	s = lb_nft_set_alloc(spec, set, set_id);
	if (!s)
		return -ENOMEM;
	e = nftnl_set_elem_alloc();
	if (!e) {
		nftnl_set_free(s);
		return -ENOMEM;
	}
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, len);
	nftnl_set_elem_add(s, e);		/* s owns e now */
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSETELEM, NLM_F_CREATE, seq);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return lb_nft_msg_end(batch);
}

/*
 * The set of fam's ICMP error types, as nft declares "icmp type { ... }":
 * anonymous (bound to the one rule that looks it up, deleted with it) and
 * constant, then its elements.
 */
static int icmp_set_msgs(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
			 struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_set *s;
	struct nlmsghdr *nlh;
	uint32_t i;
	int ret;

	s = lb_nft_set_alloc(spec, LB_NFT_ANON_SET, fam->icmp_set_id);
	if (!s)
		return -ENOMEM;
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, fam->icmp_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 1);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, fam->n_icmp_errors);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSET, NLM_F_CREATE, seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	ret = lb_nft_msg_end(batch);
	for (i = 0; ret == 0 && i < fam->n_icmp_errors; i++)
		ret = elem_msg(spec, LB_NFT_ANON_SET, fam->icmp_set_id,
			       &fam->icmp_errors[i], 1, batch, seq);
	return ret;
}

int lb_nft_chain_msg(const struct lb_nft_spec *spec, const char *name, bool base,
		     struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_chain *c;
	struct nlmsghdr *nlh;

	c = nftnl_chain_alloc();
	if (!c)
		return -ENOMEM;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, spec->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (base) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, LB_NFT_PRIO);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = lb_nft_msg(batch, NFT_MSG_NEWCHAIN, NLM_F_CREATE, seq);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return lb_nft_msg_end(batch);
}

/*
 * Expression helpers: each appends one expression to r and returns 0 or
 * -ENOMEM. The rule owns what was appended, so callers only free the rule.
 */
struct nftnl_expr *lb_nft_expr_add(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (e)
		nftnl_rule_add_expr(r, e);
	return e;
}

int lb_nft_meta_cmp(struct nftnl_rule *r, uint32_t key, uint8_t value)
{
	struct nftnl_expr *e;

	e = lb_nft_expr_add(r, "meta");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	e = lb_nft_expr_add(r, "cmp");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &value, sizeof(value));
	return 0;
}

int lb_nft_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len,
			uint32_t dreg)
{
	struct nftnl_expr *e;

	e = lb_nft_expr_add(r, "payload");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	return 0;
}

int lb_nft_imm(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len)
{
	struct nftnl_expr *e;

	e = lb_nft_expr_add(r, "immediate");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	return 0;
}

/* "SREG @set" (with invert, "!= @set"): the set by name and by its id in this batch. */
int lb_nft_lookup_flags(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t id,
			     bool invert)
{
	struct nftnl_expr *e;

	e = lb_nft_expr_add(r, "lookup");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id);
	if (invert)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	return 0;
}

int lb_nft_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t id)
{
	return lb_nft_lookup_flags(r, sreg, set, id, false);
}

/* Loads "daddr . dport" of fam's protocol into the registers from NFT_REG32_00. */
int lb_nft_vip_key_load(struct nftnl_rule *r, const struct lb_nft_family *fam)
{
	uint32_t port_reg = NFT_REG32_00 + fam->addr_len / 4;
	uint32_t port_off = fam->l4proto == IPPROTO_UDP ? offsetof(struct udphdr, uh_dport)
							: offsetof(struct tcphdr, th_dport);
	int ret;

	if ((ret = lb_nft_meta_cmp(r, NFT_META_NFPROTO, fam->nfproto)) ||
	    (ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, fam->l4proto)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_NETWORK_HEADER, fam->daddr_off,
				fam->addr_len, NFT_REG32_00)))
		return ret;
	return lb_nft_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, port_off, 2, port_reg);
}

/* "meta mark set MARK accept": the mark routes the packet to lo. */
int lb_nft_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e;

	e = lb_nft_expr_add(r, "immediate");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
	return 0;
}

int lb_nft_mark_accept(struct nftnl_rule *r, uint32_t mark)
{
	int ret = lb_nft_expr_mark_set(r, mark);

	return ret ? ret : lb_nft_verdict(r, NF_ACCEPT);
}

int lb_nft_socket_transparent(struct nftnl_rule *r)
{
	struct nftnl_expr *e;
	uint8_t one = 1;

	e = lb_nft_expr_add(r, "socket");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_TRANSPARENT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	e = lb_nft_expr_add(r, "cmp");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &one, sizeof(one));
	return 0;
}

/*
 * "socket transparent 1 meta mark set MARK accept": the packet belongs to
 * one of lb's transparent sockets (for an ICMP error, the kernel looks up
 * the socket that sent the packet the error quotes), so the mark routes it
 * to lo and the kernel delivers it to that socket.
 */
static int socket_mark(const struct lb_nft_spec *spec, struct nftnl_rule *r)
{
	int ret = lb_nft_socket_transparent(r);

	return ret ? ret : lb_nft_mark_accept(r, spec->mark);
}

/* Rule 1: packets of connections lb already owns (transparent sockets) are
 * marked so that replies and later segments reach them through lo. */
static int rule_socket(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
		       struct nftnl_rule *r)
{
	int ret;

	(void)fam;
	ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, IPPROTO_TCP);
	if (ret)
		return ret;
	return socket_mark(spec, r);
}

/*
 * Rules 4 and 5: ICMP errors about lb's own packets. A router that cannot
 * pass one of them (MTU, no route, filter) addresses its error to the
 * packet's source: the VIP for lb's client-side sockets, the client's
 * address for its upstream ones. Neither is local, so without this the
 * gateway forwards the error and lb never learns the path MTU (transfers
 * stall) nor that a backend is unreachable (connects wait for their
 * timeout). The socket lookup is by the quoted packet's addresses and ports
 * with the quoted source as the local end, so only an error about a packet
 * one of lb's sockets sent can match. These rules are kept apart from rule
 * 1 on purpose: once UDP is intercepted, rule 1 must not match datagrams
 * addressed to a VIP (an unconnected socket bound to VIP:port would claim
 * every client's datagram), but errors about lb's client-side sockets are
 * addressed to the VIP and must still match here. For a quoted UDP datagram
 * the lookup finds the socket bound to its source, VIP:port or the client's
 * address, which is the one that sent it; a client's datagram never
 * matches, since ICMP errors are all these rules take.
 */
static int rule_icmp(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
		     struct nftnl_rule *r)
{
	int ret;

	if ((ret = lb_nft_meta_cmp(r, NFT_META_NFPROTO, fam->nfproto)) ||
	    (ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, fam->icmp_proto)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1)) ||
	    (ret = lb_nft_lookup(r, NFT_REG_1, LB_NFT_ANON_SET, fam->icmp_set_id)))
		return ret;
	return socket_mark(spec, r);
}

/*
 * Rules 2 and 3: new connections to a VIP are diverted to lb's listener.
 * The concatenation is laid out as nft does, one 32-bit register per 4
 * bytes: daddr from NFT_REG32_00, dport in the register after it.
 */
int lb_nft_tproxy_mark(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
		       struct nftnl_rule *r)
{
	uint16_t port = htons(spec->port);
	struct nftnl_expr *e;
	uint8_t addr[16];
	int ret;

	if (fam->nfproto == NFPROTO_IPV4) {
		struct in_addr lo4 = { .s_addr = htonl(INADDR_LOOPBACK) };

		memcpy(addr, &lo4, sizeof(lo4));
	} else {
		memcpy(addr, &in6addr_loopback, sizeof(in6addr_loopback));
	}
	if ((ret = lb_nft_imm(r, NFT_REG_1, addr, fam->addr_len)) ||
	    (ret = lb_nft_imm(r, NFT_REG_2, &port, sizeof(port))))
		return ret;
	e = lb_nft_expr_add(r, "tproxy");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_FAMILY, fam->nfproto);
	nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_REG_ADDR, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_REG_PORT, NFT_REG_2);
	return lb_nft_mark_accept(r, spec->mark);
}

static int rule_tproxy(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
		       struct nftnl_rule *r)
{
	int ret;

	if ((ret = lb_nft_vip_key_load(r, fam)) ||
	    (ret = lb_nft_lookup(r, NFT_REG32_00, fam->set, fam->set_id)))
		return ret;
	/* With ownership, the family's tproxy chain, where nft/owner.c's chains may forward first. */
	if (lb_nft_owner_on(spec))
		return lb_nft_expr_jump(r, NFT_GOTO, fam->nfproto == NFPROTO_IPV4 ?
					LB_NFT_CHAIN_TPROXY4 : LB_NFT_CHAIN_TPROXY6);
	return lb_nft_tproxy_mark(spec, fam, r);
}

/* The tproxy chain of one family (ownership only): the ownership chains first, then tproxy. */
static int tproxy_chain_msgs(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
			     struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	bool v4 = fam->nfproto == NFPROTO_IPV4;
	const char *chain = v4 ? LB_NFT_CHAIN_TPROXY4 : LB_NFT_CHAIN_TPROXY6;
	struct nftnl_rule *r = lb_nft_rule_alloc(spec, chain);
	int ret;

	if (!r)
		return -ENOMEM;
	ret = lb_nft_rule_put(r, lb_nft_expr_jump(r, NFT_JUMP, v4 ? LB_NFT_CHAIN_OWN4 :
						   LB_NFT_CHAIN_OWN6), batch, seq);
	if (ret)
		return ret;
	r = lb_nft_rule_alloc(spec, chain);
	if (!r)
		return -ENOMEM;
	return lb_nft_rule_put(r, lb_nft_tproxy_mark(spec, fam, r), batch, seq);
}

/*
 * The UDP mark rules, before the UDP tproxy ones: datagrams to one of lb's
 * transparent sockets (a flow's upstream socket, bound to the client's
 * address) are marked for lo, but never one addressed to a VIP. A flow's
 * reply socket is bound to VIP:port, and until its connect() it matches
 * any sender: the socket lookup would hand it other clients' datagrams.
 * Datagrams to a VIP go to the tproxy rule, whose own lookup takes only a
 * connected socket (the flow's) before it falls back to the listener.
 */
static int rule_udp_socket(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
			   struct nftnl_rule *r)
{
	const struct lb_nft_family *ranges =
		&lb_nft_vipsets[fam->nfproto == NFPROTO_IPV4 ? LB_NFT_VS_UDP_R4 : LB_NFT_VS_UDP_R6];
	int ret;

	if ((ret = lb_nft_vip_key_load(r, fam)))
		return ret;
	/* Single VIPs, and prefix and port-range ones: whichever sets exist. */
	if (lb_nft_vipset_exists(spec, LB_NFT_VS_UDP4) &&
	    (ret = lb_nft_lookup_flags(r, NFT_REG32_00, fam->set, fam->set_id, true)))
		return ret;
	if (lb_nft_vipset_exists(spec, LB_NFT_VS_UDP_R4) &&
	    (ret = lb_nft_lookup_flags(r, NFT_REG32_00, ranges->set, ranges->set_id, true)))
		return ret;
	return socket_mark(spec, r);
}

/* Appends one rule, its expressions from fill (for fam, where it has one). */
struct nftnl_rule *lb_nft_rule_alloc(const struct lb_nft_spec *spec, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, spec->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	return r;
}

int lb_nft_rule_put(struct nftnl_rule *r, int ret, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nlmsghdr *nlh;

	if (ret == 0) {
		nlh = lb_nft_msg(batch, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, seq);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		ret = lb_nft_msg_end(batch);
	}
	nftnl_rule_free(r);
	return ret;
}

static int rule_msg(const struct lb_nft_spec *spec,
		    int (*fill)(const struct lb_nft_spec *, const struct lb_nft_family *,
				struct nftnl_rule *),
		    const struct lb_nft_family *fam, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_rule *r = lb_nft_rule_alloc(spec, LB_NFT_CHAIN);

	if (!r)
		return -ENOMEM;
	return lb_nft_rule_put(r, fill(spec, fam, r), batch, seq);
}

/*
 * The tproxy rules, one per existing VIP set (TCP first), with the UDP
 * mark rules before the UDP ones.
 */
static int vip_rule_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			 uint32_t *seq)
{
	static const enum lb_nft_vs order[] = {
		LB_NFT_VS_TCP4, LB_NFT_VS_TCP6, LB_NFT_VS_TCP_R4, LB_NFT_VS_TCP_R6,
		LB_NFT_VS_UDP4, LB_NFT_VS_UDP6, LB_NFT_VS_UDP_R4, LB_NFT_VS_UDP_R6,
	};
	bool udp = lb_nft_vipset_exists(spec, LB_NFT_VS_UDP4) ||
		   lb_nft_vipset_exists(spec, LB_NFT_VS_UDP_R4);
	int ret = 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && !ret; i++) {
		const struct lb_nft_family *f = &lb_nft_vipsets[order[i]];

		if (order[i] == LB_NFT_VS_UDP4 && udp &&
		    ((ret = rule_msg(spec, rule_udp_socket,
				     &lb_nft_vipsets[LB_NFT_VS_UDP4], batch, seq)) ||
		     (ret = rule_msg(spec, rule_udp_socket,
				     &lb_nft_vipsets[LB_NFT_VS_UDP6], batch, seq)) ||
		     (ret = lb_nft_clients_udp(spec, batch, seq))))
			break;
		if (lb_nft_vipset_exists(spec, order[i]))
			ret = rule_msg(spec, rule_tproxy, f, batch, seq);
	}
	return ret;
}

/* The whole transaction; bare: without the VIP sets' elements (for lb_nft_ruleset_same_shape). */
static int ruleset_build(const struct lb_nft_spec *spec, bool bare, struct mnl_nlmsg_batch *batch,
			 uint32_t *seq)
{
	int ret;

	ret = spec_check(spec, !bare);
	if (ret)
		return ret;
	/*
	 * "add" makes the "delete" valid when no table exists yet; deleting
	 * then takes a stale table (crashed run, older lb) with everything in
	 * it, all in the same transaction as the new one, so no packet ever
	 * sees a half-built ruleset and no other table is touched.
	 */
	if (spec->retire && strcmp(spec->retire, spec->table) &&
	    ((ret = table_msg(spec->retire, batch, NFT_MSG_NEWTABLE, NLM_F_CREATE, seq)) ||
	     (ret = table_msg(spec->retire, batch, NFT_MSG_DELTABLE, 0, seq))))
		return ret;
	if ((ret = table_msg(spec->table, batch, NFT_MSG_NEWTABLE, NLM_F_CREATE, seq)) ||
	    (ret = table_msg(spec->table, batch, NFT_MSG_DELTABLE, 0, seq)) ||
	    (ret = table_msg(spec->table, batch, NFT_MSG_NEWTABLE, NLM_F_CREATE, seq)) ||
	    (ret = lb_nft_vipset_msgs(spec, bare, batch, seq)))
		return ret;
	/*
	 * Ownership: counters and maps, then chains (the maps' verdicts name
	 * them), then the maps' elements, which change as peers come and go
	 * and so are no part of the shape; its rules after the base chain's.
	 */
	if (lb_nft_owner_on(spec) &&
	    ((ret = lb_nft_owner_decl_msgs(spec, batch, seq)) ||
	     (ret = lb_nft_owner_chain_msgs(spec, batch, seq)) ||
	     (!bare && (ret = lb_nft_owner_elem_msgs(spec, batch, seq)))))
		return ret;
	/* An anonymous set must come before the rule that binds it. */
	if ((ret = lb_nft_clients_build(spec, batch, seq)) ||
	    (ret = lb_nft_chain_msg(spec, LB_NFT_CHAIN, true, batch, seq)) ||
	    (ret = rule_msg(spec, rule_socket, NULL, batch, seq)) ||
	    (ret = lb_nft_clients_jump_tcp(spec, batch, seq)) ||
	    (ret = vip_rule_msgs(spec, batch, seq)) ||
	    (ret = icmp_set_msgs(spec, &lb_nft_vipsets[LB_NFT_VS_TCP4], batch, seq)) ||
	    (ret = rule_msg(spec, rule_icmp, &lb_nft_vipsets[LB_NFT_VS_TCP4], batch, seq)) ||
	    (ret = icmp_set_msgs(spec, &lb_nft_vipsets[LB_NFT_VS_TCP6], batch, seq)) ||
	    (ret = rule_msg(spec, rule_icmp, &lb_nft_vipsets[LB_NFT_VS_TCP6], batch, seq)))
		return ret;
	if (lb_nft_owner_on(spec) &&
	    ((ret = tproxy_chain_msgs(spec, &lb_nft_vipsets[LB_NFT_VS_TCP4], batch, seq)) ||
	     (ret = tproxy_chain_msgs(spec, &lb_nft_vipsets[LB_NFT_VS_TCP6], batch, seq)) ||
	     (ret = lb_nft_owner_rule_msgs(spec, batch, seq))))
		return ret;
	return 0;
}

int lb_nft_ruleset_build(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			 uint32_t *seq)
{
	return ruleset_build(spec, false, batch, seq);
}

/* The bare transaction of spec in a buffer of its own; NULL when out of memory. */
static struct mnl_nlmsg_batch *bare_batch(const struct lb_nft_spec *spec, char **buf)
{
	size_t size = 64 * 1024;
	struct mnl_nlmsg_batch *b;
	uint32_t seq = 1;

	for (int tries = 0; tries < 8; tries++, size *= 2) {
		int ret = -ENOMEM;

		/* Zeroed: libmnl may leave an attribute's padding as it found it. */
		*buf = calloc(1, size);
		b = *buf ? mnl_nlmsg_batch_start(*buf, size - MNL_SOCKET_BUFFER_SIZE) : NULL;
		if (b && (ret = ruleset_build(spec, true, b, &seq)) == 0)
			return b;
		if (b)
			mnl_nlmsg_batch_stop(b);
		free(*buf);
		*buf = NULL;
		seq = 1;
		/* Only a full buffer is worth a larger one; an invalid spec builds in none. */
		if (ret != -EMSGSIZE)
			break;
	}
	return NULL;
}

bool lb_nft_ruleset_same_shape(const struct lb_nft_spec *a, const struct lb_nft_spec *b)
{
	char *ba = NULL, *bb = NULL;
	struct mnl_nlmsg_batch *x, *y;
	bool same = false;

	/* An invalid spec builds no batch. */
	x = bare_batch(a, &ba);
	y = bare_batch(b, &bb);
	if (x && y)
		same = mnl_nlmsg_batch_size(x) == mnl_nlmsg_batch_size(y) &&
		       !memcmp(mnl_nlmsg_batch_head(x), mnl_nlmsg_batch_head(y),
			       mnl_nlmsg_batch_size(x));
	if (x)
		mnl_nlmsg_batch_stop(x);
	if (y)
		mnl_nlmsg_batch_stop(y);
	free(ba);
	free(bb);
	return same;
}

int lb_nft_ruleset_diff_build(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
			      struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *added,
			      size_t *removed)
{
	int ret = spec_check(next, true);

	return ret ? ret : lb_nft_vipset_diff_msgs(old, next, batch, seq, added, removed);
}

int lb_nft_ruleset_owner_diff_build(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
				    struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *changed)
{
	int ret = spec_check(next, false);

	*changed = 0;
	return ret ? ret : lb_nft_owner_diff_msgs(old, next, batch, seq, changed);
}

/* The rule text of a tproxy rule for f, as nft lists it. */
static void print_tproxy(const struct lb_nft_spec *spec, const struct lb_nft_family *f, FILE *out)
{
	bool v4 = f->nfproto == NFPROTO_IPV4;

	fprintf(out, "\t\t%s daddr . %s dport @%s ", v4 ? "ip" : "ip6",
		f->l4proto == IPPROTO_UDP ? "udp" : "tcp", f->set);
	if (lb_nft_owner_on(spec))
		fprintf(out, "goto %s\n", v4 ? LB_NFT_CHAIN_TPROXY4 : LB_NFT_CHAIN_TPROXY6);
	else
		fprintf(out, "tproxy %s to %s:%u meta mark set 0x%08x accept\n", v4 ? "ip" : "ip6",
			v4 ? "127.0.0.1" : "[::1]", spec->port, spec->mark);
}

/* With ownership: the tproxy chains, then the ownership chains. */
static void print_owner_chains(const struct lb_nft_spec *spec, FILE *out)
{
	for (int v6 = 0; v6 < 2; v6++)
		fprintf(out, "\n\tchain %s {\n\t\tjump %s\n"
			"\t\ttproxy %s to %s:%u meta mark set 0x%08x accept\n\t}\n",
			v6 ? LB_NFT_CHAIN_TPROXY6 : LB_NFT_CHAIN_TPROXY4,
			v6 ? LB_NFT_CHAIN_OWN6 : LB_NFT_CHAIN_OWN4, v6 ? "ip6" : "ip",
			v6 ? "[::1]" : "127.0.0.1", spec->port, spec->mark);
	lb_nft_owner_print_chains(spec, out);
}

/*
 * The text is what `nft list table inet NAME` shows for what
 * lb_nft_ruleset_build() installs, so an operator can diff the two: nft
 * drops the "meta nfproto" and "meta l4proto" matches that "ip daddr",
 * "tcp dport" and "icmp type" imply. Elements are sorted (the kernel
 * lists a hash in its own order).
 */
int lb_nft_ruleset_print(const struct lb_nft_spec *spec, FILE *out)
{
	static const enum lb_nft_vs tcp[] = { LB_NFT_VS_TCP4, LB_NFT_VS_TCP6, LB_NFT_VS_TCP_R4,
					      LB_NFT_VS_TCP_R6 };
	static const enum lb_nft_vs udp[] = { LB_NFT_VS_UDP4, LB_NFT_VS_UDP6, LB_NFT_VS_UDP_R4,
					      LB_NFT_VS_UDP_R6 };
	bool has_udp, udp_single, udp_ranges;
	unsigned int m;
	int ret;

	ret = spec_check(spec, true);
	if (ret)
		return ret;
	m = spec->mark;
	has_udp = lb_nft_vipset_exists(spec, LB_NFT_VS_UDP4) ||
		  lb_nft_vipset_exists(spec, LB_NFT_VS_UDP_R4);
	udp_ranges = lb_nft_vipset_exists(spec, LB_NFT_VS_UDP_R4);
	udp_single = lb_nft_vipset_exists(spec, LB_NFT_VS_UDP4);
	fprintf(out, "table inet %s {\n", spec->table);
	lb_nft_clients_print_objects(spec, out);
	lb_nft_vipset_print(spec, out);
	lb_nft_clients_print_sets(spec, out);
	lb_nft_clients_print_chains(spec, out);
	if (lb_nft_owner_on(spec))
		lb_nft_owner_print_decl(spec, out);
	fprintf(out, "\n\tchain %s {\n"
		"\t\ttype filter hook prerouting priority mangle; policy accept;\n"
		"\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x%08x accept\n",
		LB_NFT_CHAIN, m);
	lb_nft_clients_print_jump_tcp(spec, out);
	for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++)
		if (lb_nft_vipset_exists(spec, tcp[i]))
			print_tproxy(spec, &lb_nft_vipsets[tcp[i]], out);
	for (int v6 = 0; has_udp && v6 < 2; v6++) {
		const char *ip = v6 ? "ip6" : "ip";

		fputs("\t\t", out);
		if (udp_single)
			fprintf(out, "%s daddr . udp dport != @udp_vips%d ", ip, v6 ? 6 : 4);
		if (udp_ranges)
			fprintf(out, "%s daddr . udp dport != @udp_vip_ranges%d ", ip, v6 ? 6 : 4);
		fprintf(out, "socket transparent 1 meta mark set 0x%08x accept\n", m);
	}
	lb_nft_clients_print_udp(spec, out);
	for (size_t i = 0; i < sizeof(udp) / sizeof(udp[0]); i++)
		if (lb_nft_vipset_exists(spec, udp[i]))
			print_tproxy(spec, &lb_nft_vipsets[udp[i]], out);
	fprintf(out,
		"\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem }"
		" socket transparent 1 meta mark set 0x%08x accept\n"
		"\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded,"
		" parameter-problem } socket transparent 1 meta mark set 0x%08x accept\n"
		"\t}\n", m, m);
	if (lb_nft_owner_on(spec))
		print_owner_chains(spec, out);
	fputs("}\n", out);
	if (fflush(out) == EOF || ferror(out))
		return -EIO;
	return 0;
}
