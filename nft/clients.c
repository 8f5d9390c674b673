// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Per-client rules of a service, in the kernel before tproxy, so a client
 * lb refuses never costs a worker an accept, an fd or a backend connection.
 *
 * Each such service gets a chain clients_ID; maps keyed by VIP and port
 * (clients_tcp4, clients_udp6, ...; clients_tcp_ranges4 ... for prefix and
 * port-range VIPs) jump to it from prerouting. The chain refuses clients outside allowF_ID or inside
 * denyF_ID (interval sets) and meters new connections per client in
 * rateF_ID, a dynamic set holding one token bucket ("limit rate over")
 * per client address or prefix. Named counters deny_ID and rate_ID count
 * what each refused, for lb's metrics.
 *
 * Only new connections reach the chain. For TCP, the socket rule before
 * it accepts every segment of a connection lb holds (and of one in its
 * SYN queue), and the meter counts SYNs alone. UDP has no handshake and
 * lb uses no conntrack: a flow's datagrams are told from a new flow's by
 * the socket they would reach. A flow has its own socket, connected to
 * the client; a rule before the jump hands datagrams that have one to it
 * (socket lookup, then tproxy, whose lookup takes only connected
 * sockets), so what jumps is only what would go to the listener: a new
 * flow's datagrams. Datagrams a client sends before lb has made its flow's
 * socket (a burst on a new flow) count as new too; so does, rarely,
 * another client's datagram that arrives between a flow socket's bind()
 * and connect() (the socket lookup matches it, tproxy does not, and the
 * datagram skips the meter for the listener). The meter lives in the
 * table and a reload replaces the table: every client starts a reload
 * with a full bucket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
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

#include "nft/nft_priv.h"

#define NAME_LEN	48
/* Elements per message: a message must stay well under LB_NFT_MSG_MAX (apply.c). */
#define ELEMS_PER_MSG	16
/* Batch-local set ids: the maps, then 8 per service (the VIP sets use 1..10). */
#define MAP_ID		32
#define SERVICE_ID	64
/* A meter's entry outlives a full refill, so an expired one loses nothing. */
#define TIMEOUT_MIN_S	10
#define TCP_FLAGS_OFF	13
#define TCP_SYN		0x02
#define TCP_ACK		0x10

enum kind { ALLOW, DENY, RATE };

static const char *const kind_names[] = { "allow", "deny", "rate" };

/* What a family changes in the rules. */
struct fam {
	int family;
	char digit;			/* in set names: allow4_0, allow6_0 */
	uint8_t nfproto;
	uint32_t saddr_off, len, type;
	const char *ip;			/* nft's name for its header */
	const char *icmp;
	uint8_t unreach_type, unreach_code;	/* port unreachable, as nft sends it */
};

static const struct fam fams[2] = {
	{ AF_INET, '4', NFPROTO_IPV4, 12, 4, LB_NFT_TYPE_IPADDR, "ip", "icmp",
	  NFT_REJECT_ICMP_UNREACH, ICMP_PORT_UNREACH },
	{ AF_INET6, '6', NFPROTO_IPV6, 8, 16, LB_NFT_TYPE_IP6ADDR, "ip6", "icmpv6",
	  NFT_REJECT_ICMP_UNREACH, ICMP6_DST_UNREACH_NOPORT },
};

/* The maps, as the VIP sets are split: protocol, single or range VIPs, family. */
struct map {
	const char *name;
	enum lb_nft_vs vs;		/* the VIP set whose key and VIPs it shares */
};

static const struct map maps[] = {
	{ "clients_tcp4", LB_NFT_VS_TCP4 }, { "clients_tcp6", LB_NFT_VS_TCP6 },
	{ "clients_tcp_ranges4", LB_NFT_VS_TCP_R4 }, { "clients_tcp_ranges6", LB_NFT_VS_TCP_R6 },
	{ "clients_udp4", LB_NFT_VS_UDP4 }, { "clients_udp6", LB_NFT_VS_UDP6 },
	{ "clients_udp_ranges4", LB_NFT_VS_UDP_R4 }, { "clients_udp_ranges6", LB_NFT_VS_UDP_R6 },
};

#define N_MAPS (sizeof(maps) / sizeof(maps[0]))

/* One set element: a key, interval flags, or a map's jump. */
struct elem {
	uint8_t key[LB_NFT_KEY_MAX];
	uint8_t key_end[LB_NFT_KEY_MAX];	/* a concatenated range's last key, when has_end */
	bool has_end;
	uint32_t len;
	bool end;			/* ends an interval */
	bool open;			/* starts one that runs to the last address */
	const char *chain;		/* a map's: jump here */
};

static uint32_t set_id(const struct lb_nft_clients *c, enum kind k, const struct fam *f)
{
	return SERVICE_ID + c->id * 8 + k * 2 + (f->family == AF_INET6);
}

static void set_name(char *buf, const struct lb_nft_clients *c, enum kind k, const struct fam *f)
{
	snprintf(buf, NAME_LEN, "%s%c_%u", kind_names[k], f->digit, c->id);
}

static void chain_name(char *buf, const struct lb_nft_clients *c)
{
	snprintf(buf, NAME_LEN, "clients_%u", c->id);
}

static bool vips_have(const struct sockaddr_storage *v, size_t n, int family)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].ss_family == family)
			return true;
	return false;
}

/* Whether c's chain sees traffic of f: it has a VIP of that family. */
static bool ranges_have(const struct lb_nft_range *r, size_t n, int family)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].first.ss_family == family)
			return true;
	return false;
}

/* Whether c carries TCP (or, with udp, UDP) to a VIP of family. */
static bool carries(const struct lb_nft_clients *c, bool udp, int family)
{
	return udp ? vips_have(c->udp_vips, c->n_udp_vips, family) ||
		     ranges_have(c->udp_ranges, c->n_udp_ranges, family)
		   : vips_have(c->vips, c->n_vips, family) ||
		     ranges_have(c->ranges, c->n_ranges, family);
}

/* Whether c's chain sees traffic of f: it has a VIP of that family. */
static bool serves(const struct lb_nft_clients *c, const struct fam *f)
{
	return carries(c, false, f->family) || carries(c, true, f->family);
}

static bool prefixes_have(const struct lb_nft_prefix *p, size_t n, int family)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].family == family)
			return true;
	return false;
}

/* Whether c has a set of kind k for f. */
static bool has_set(const struct lb_nft_clients *c, enum kind k, const struct fam *f)
{
	if (!serves(c, f))
		return false;
	switch (k) {
	case ALLOW:
		return c->allow != NULL;
	case DENY:
		return prefixes_have(c->deny, c->n_deny, f->family);
	case RATE:
		return c->rate > 0;
	}
	return false;
}

/* c's VIPs that go into map m (single or range, its protocol). */
static void map_source(const struct lb_nft_clients *c, const struct map *m,
		       const struct sockaddr_storage **vips, const struct lb_nft_range **ranges,
		       size_t *n)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];
	bool udp = f->l4proto == IPPROTO_UDP;

	*vips = NULL;
	*ranges = NULL;
	if (f->range) {
		*ranges = udp ? c->udp_ranges : c->ranges;
		*n = udp ? c->n_udp_ranges : c->n_ranges;
	} else {
		*vips = udp ? c->udp_vips : c->vips;
		*n = udp ? c->n_udp_vips : c->n_vips;
	}
}

static int family_of(const struct map *m)
{
	return lb_nft_vipsets[m->vs].nfproto == NFPROTO_IPV4 ? AF_INET : AF_INET6;
}

static bool map_has(const struct lb_nft_spec *spec, const struct map *m)
{
	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct sockaddr_storage *v;
		const struct lb_nft_range *r;
		size_t n;

		map_source(&spec->clients[i], m, &v, &r, &n);
		if (v ? vips_have(v, n, family_of(m)) : ranges_have(r, n, family_of(m)))
			return true;
	}
	return false;
}

static uint32_t timeout_s(const struct lb_nft_clients *c)
{
	uint32_t refill = (c->burst + c->rate - 1) / c->rate + 1;

	return refill > TIMEOUT_MIN_S ? refill : TIMEOUT_MIN_S;
}

static int prefix_check(const struct lb_nft_prefix *p, size_t n)
{
	if (n && !p)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((p[i].family != AF_INET && p[i].family != AF_INET6) ||
		    p[i].len > (p[i].family == AF_INET ? 32 : 128))
			return -EINVAL;
	return 0;
}

int lb_nft_clients_check(const struct lb_nft_spec *spec)
{
	if (spec->n_clients && !spec->clients)
		return -EINVAL;
	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		for (size_t j = 0; j < i; j++)
			if (spec->clients[j].id == c->id)
				return -EINVAL;
		if (prefix_check(c->allow, c->n_allow) || prefix_check(c->deny, c->n_deny))
			return -EINVAL;
		if ((c->n_vips && !c->vips) || (c->n_udp_vips && !c->udp_vips) ||
		    (c->n_ranges && !c->ranges) || (c->n_udp_ranges && !c->udp_ranges))
			return -EINVAL;
		for (size_t j = 0; j < c->n_vips + c->n_udp_vips; j++) {
			const struct sockaddr_storage *v = j < c->n_vips ? &c->vips[j]
									: &c->udp_vips[j - c->n_vips];

			if (v->ss_family != AF_INET && v->ss_family != AF_INET6)
				return -EAFNOSUPPORT;
		}
		if (c->rate && (!c->burst || !c->size || c->prefix4 < 1 || c->prefix4 > 32 ||
				c->prefix6 < 1 || c->prefix6 > 128))
			return -EINVAL;
	}
	return 0;
}

size_t lb_nft_clients_msgs(const struct lb_nft_spec *spec)
{
	size_t n = spec->n_clients ? 2 * N_MAPS + 4 : 0;	/* maps, prerouting rules */

	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		/* counters, chain, sets, rules; 2 boundaries a prefix, +1 a set */
		n += 2 + 1 + 6 + 16;
		n += (2 * (c->n_allow + c->n_deny) + 4) / ELEMS_PER_MSG + 4;
		n += (c->n_vips + c->n_udp_vips + c->n_ranges + c->n_udp_ranges) / ELEMS_PER_MSG + 8;
	}
	return n;
}

/* ---- messages ---- */

static int counter_msg(const struct lb_nft_spec *spec, const char *name,
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

/* Elements in messages of ELEMS_PER_MSG, in order. */
static int elems_msgs(const struct lb_nft_spec *spec, const char *set, uint32_t id,
		      const struct elem *el, size_t n, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < n; i += ELEMS_PER_MSG) {
		struct nftnl_set *s = lb_nft_set_alloc(spec, set, id);
		struct nlmsghdr *nlh;

		if (!s)
			return -ENOMEM;
		for (size_t j = i; ret == 0 && j < n && j < i + ELEMS_PER_MSG; j++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();

			if (!e) {
				ret = -ENOMEM;
				break;
			}
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, el[j].key, el[j].len);
			if (el[j].has_end)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, el[j].key_end, el[j].len);
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

static int prefix_cmp(const void *a, const void *b)
{
	const struct lb_nft_prefix *x = a, *y = b;
	int d = memcmp(x->addr, y->addr, sizeof(x->addr));

	return d ? d : (int)x->len - (int)y->len;
}

/* prefixes of family f, sorted; *n their count. Owned; NULL when out of memory. */
static struct lb_nft_prefix *sorted(const struct lb_nft_prefix *p, size_t total,
				    const struct fam *f, size_t *n)
{
	struct lb_nft_prefix *out = calloc(total ? total : 1, sizeof(*out));

	*n = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < total; i++)
		if (p[i].family == f->family)
			out[(*n)++] = p[i];
	qsort(out, *n, sizeof(*out), prefix_cmp);
	return out;
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
static struct elem *interval_elems(const struct lb_nft_prefix *p, size_t n, const struct fam *f,
				   size_t *count)
{
	struct elem *el = calloc(2 * n + 1, sizeof(*el));
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
			enum kind k, const struct fam *f, struct mnl_nlmsg_batch *batch,
			uint32_t *seq)
{
	const struct lb_nft_prefix *list = k == ALLOW ? c->allow : c->deny;
	size_t total = k == ALLOW ? c->n_allow : c->n_deny, n, count = 0;
	struct lb_nft_prefix *p = NULL;
	struct elem *el = NULL;
	struct nftnl_set *s;
	char name[NAME_LEN];
	struct nlmsghdr *nlh;
	int ret;

	set_name(name, c, k, f);
	s = lb_nft_set_alloc(spec, name, set_id(c, k, f));
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
	p = sorted(list, total, f, &n);
	el = p ? interval_elems(p, n, f, &count) : NULL;
	ret = el ? elems_msgs(spec, name, set_id(c, k, f), el, count, batch, seq) : -ENOMEM;
	free(el);
	free(p);
	return ret;
}

static int meter_set(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
		     const struct fam *f, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_set *s;
	char name[NAME_LEN];
	struct nlmsghdr *nlh;

	set_name(name, c, RATE, f);
	s = lb_nft_set_alloc(spec, name, set_id(c, RATE, f));
	if (!s)
		return -ENOMEM;
	/* "flags dynamic,timeout": rules add to it, entries expire. */
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_EVAL | NFT_SET_TIMEOUT);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, f->type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, f->len);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, c->size);
	nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, (uint64_t)timeout_s(c) * 1000);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSET, NLM_F_CREATE, seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return lb_nft_msg_end(batch);
}

static int objref(struct nftnl_rule *r, const char *counter)
{
	struct nftnl_expr *e = lb_nft_expr_add(r, "objref");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, counter);
	return 0;
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
static int mask_reg(struct nftnl_rule *r, const struct fam *f, unsigned int len)
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
	struct nftnl_expr *e;
	int ret;

	if ((ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO, IPPROTO_TCP)) ||
	    (ret = lb_nft_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, TCP_FLAGS_OFF, 1, NFT_REG_1)))
		return ret;
	e = lb_nft_expr_add(r, "bitwise");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 1);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 1);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 1);
	e = lb_nft_expr_add(r, "cmp");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &syn, 1);
	return 0;
}

/* The client's address into reg 1, for f (implies "meta nfproto"). */
static int saddr_load(struct nftnl_rule *r, const struct fam *f)
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
static int list_rule(const struct lb_nft_spec *spec, const struct lb_nft_clients *c, enum kind k,
		     const struct fam *f, enum refusal how, struct mnl_nlmsg_batch *batch,
		     uint32_t *seq)
{
	char chain[NAME_LEN], set[NAME_LEN], counter[NAME_LEN];
	struct nftnl_rule *r;
	int ret = 0;

	chain_name(chain, c);
	set_name(set, c, k, f);
	snprintf(counter, sizeof(counter), "deny_%u", c->id);
	r = lb_nft_rule_alloc(spec, chain);
	if (!r)
		return -ENOMEM;
	if (how != DROP)
		ret = lb_nft_meta_cmp(r, NFT_META_L4PROTO,
				      how == RESET_TCP ? IPPROTO_TCP : IPPROTO_UDP);
	if (ret == 0 && (ret = saddr_load(r, f)) == 0 &&
	    (ret = lb_nft_lookup_flags(r, NFT_REG_1, set, set_id(c, k, f), k == ALLOW)) == 0 &&
	    (ret = objref(r, counter)) == 0) {
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
static int list_rules(const struct lb_nft_spec *spec, const struct lb_nft_clients *c, enum kind k,
		      const struct fam *f, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	int ret = 0;

	if (!has_set(c, k, f))
		return 0;
	if (!c->reset)
		return list_rule(spec, c, k, f, DROP, batch, seq);
	if (carries(c, false, f->family))
		ret = list_rule(spec, c, k, f, RESET_TCP, batch, seq);
	if (ret == 0 && carries(c, true, f->family))
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
		     const struct fam *f, bool udp, struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	unsigned int plen = f->family == AF_INET ? c->prefix4 : c->prefix6;
	char chain[NAME_LEN], set[NAME_LEN], counter[NAME_LEN];
	struct nftnl_expr *dyn, *lim;
	struct nftnl_rule *r;
	int ret;

	chain_name(chain, c);
	set_name(set, c, RATE, f);
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
			nftnl_expr_set_u32(dyn, NFTNL_EXPR_DYNSET_SET_ID, set_id(c, RATE, f));
			nftnl_expr_add_expr(dyn, NFTNL_EXPR_DYNSET_EXPRESSIONS, lim);
		}
	}
	if (ret == 0 && (ret = objref(r, counter)) == 0)
		ret = lb_nft_verdict(r, NF_DROP);
	return lb_nft_rule_put(r, ret, batch, seq);
}

static int chain_msgs(const struct lb_nft_spec *spec, const struct lb_nft_clients *c,
		      struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	char chain[NAME_LEN];
	int ret;

	chain_name(chain, c);
	ret = lb_nft_chain_msg(spec, chain, false, batch, seq);
	for (size_t i = 0; ret == 0 && i < 2; i++) {
		if ((ret = list_rules(spec, c, ALLOW, &fams[i], batch, seq)) == 0)
			ret = list_rules(spec, c, DENY, &fams[i], batch, seq);
	}
	for (size_t i = 0; ret == 0 && i < 2; i++) {
		if (!has_set(c, RATE, &fams[i]))
			continue;
		if (carries(c, false, fams[i].family))
			ret = rate_rule(spec, c, &fams[i], false, batch, seq);
		if (ret == 0 && carries(c, true, fams[i].family))
			ret = rate_rule(spec, c, &fams[i], true, batch, seq);
	}
	return ret;
}

static int elem_cmp(const void *a, const void *b)
{
	const struct elem *x = a, *y = b;
	int d = memcmp(x->key, y->key, x->len);

	return d ? d : memcmp(x->key_end, y->key_end, x->len);
}

/*
 * The elements of map m, sorted by key (as nft lists them): each VIP of
 * its kind jumps to its service's chain, named in chains (owned by the
 * caller, one per clients entry). Owned; NULL when out of memory.
 */
static struct elem *map_elems(const struct lb_nft_spec *spec, const struct map *m,
			      char (*chains)[NAME_LEN], size_t *count)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];
	size_t total = 0, n = 0;
	struct elem *el;

	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct sockaddr_storage *v;
		const struct lb_nft_range *r;
		size_t nv;

		map_source(&spec->clients[i], m, &v, &r, &nv);
		total += nv;
	}
	el = calloc(total ? total : 1, sizeof(*el));
	if (!el)
		return NULL;
	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct sockaddr_storage *v;
		const struct lb_nft_range *r;
		size_t nv;

		map_source(&spec->clients[i], m, &v, &r, &nv);
		chain_name(chains[i], &spec->clients[i]);
		for (size_t j = 0; j < nv; j++) {
			const struct sockaddr_storage *first = v ? &v[j] : &r[j].first;

			if (first->ss_family != family_of(m))
				continue;
			lb_nft_vip_key(first, el[n].key);
			if (r) {
				lb_nft_vip_key(&r[j].last, el[n].key_end);
				el[n].has_end = true;
			}
			el[n].len = f->key_len;
			el[n++].chain = chains[i];
		}
	}
	qsort(el, n, sizeof(*el), elem_cmp);
	*count = n;
	return el;
}

/* Map m and its elements: each VIP of its kind jumps to its service's chain. */
static int map_msgs(const struct lb_nft_spec *spec, const struct map *m,
		    struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];
	uint32_t id = MAP_ID + (uint32_t)(m - maps);
	char (*chains)[NAME_LEN] = NULL;
	struct elem *el = NULL;
	struct nftnl_set *s;
	struct nlmsghdr *nlh;
	size_t n = 0;
	int ret;

	if (!map_has(spec, m))
		return 0;
	s = lb_nft_set_alloc(spec, m->name, id);
	if (!s)
		return -ENOMEM;
	if (f->range) {
		uint8_t fields[2] = { (uint8_t)f->addr_len, 2 };

		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT);
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
	el = chains ? map_elems(spec, m, chains, &n) : NULL;
	ret = el ? elems_msgs(spec, m->name, id, el, n, batch, seq) : -ENOMEM;
	free(el);
	free(chains);
	return ret;
}

int lb_nft_clients_build(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			 uint32_t *seq)
{
	char name[NAME_LEN];
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		if (c->allow || c->n_deny) {
			snprintf(name, sizeof(name), "deny_%u", c->id);
			ret = counter_msg(spec, name, batch, seq);
		}
		if (ret == 0 && c->rate) {
			snprintf(name, sizeof(name), "rate_%u", c->id);
			ret = counter_msg(spec, name, batch, seq);
		}
	}
	for (size_t i = 0; ret == 0 && i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		for (size_t f = 0; ret == 0 && f < 2; f++) {
			if (has_set(c, ALLOW, &fams[f]))
				ret = interval_set(spec, c, ALLOW, &fams[f], batch, seq);
			if (ret == 0 && has_set(c, DENY, &fams[f]))
				ret = interval_set(spec, c, DENY, &fams[f], batch, seq);
			if (ret == 0 && has_set(c, RATE, &fams[f]))
				ret = meter_set(spec, c, &fams[f], batch, seq);
		}
	}
	/* Chains before the maps whose elements jump to them. */
	for (size_t i = 0; ret == 0 && i < spec->n_clients; i++)
		ret = chain_msgs(spec, &spec->clients[i], batch, seq);
	for (size_t i = 0; ret == 0 && i < N_MAPS; i++)
		ret = map_msgs(spec, &maps[i], batch, seq);
	return ret;
}

/* "ip daddr . P dport vmap @MAP": the VIP's chain, if its service has one. */
static int jump_msg(const struct lb_nft_spec *spec, const struct map *m,
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
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, MAP_ID + (uint32_t)(m - maps));
		}
	}
	return lb_nft_rule_put(r, ret, batch, seq);
}

static bool is_udp(const struct map *m)
{
	return lb_nft_vipsets[m->vs].l4proto == IPPROTO_UDP;
}

int lb_nft_clients_jump_tcp(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			    uint32_t *seq)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < N_MAPS; i++)
		if (!is_udp(&maps[i]) && map_has(spec, &maps[i]))
			ret = jump_msg(spec, &maps[i], batch, seq);
	return ret;
}

/* Whether some service with per-client rules carries UDP. */
static bool clients_udp(const struct lb_nft_spec *spec)
{
	for (size_t i = 0; i < N_MAPS; i++)
		if (is_udp(&maps[i]) && map_has(spec, &maps[i]))
			return true;
	return false;
}

static const enum lb_nft_vs udp_sets[] = {
	LB_NFT_VS_UDP4, LB_NFT_VS_UDP6, LB_NFT_VS_UDP_R4, LB_NFT_VS_UDP_R6,
};

int lb_nft_clients_udp(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
		       uint32_t *seq)
{
	int ret = 0;

	if (!clients_udp(spec))
		return 0;
	/* A datagram with a flow socket goes to it now, and never reaches a meter. */
	for (size_t i = 0; ret == 0 && i < sizeof(udp_sets) / sizeof(udp_sets[0]); i++) {
		const struct lb_nft_family *f = &lb_nft_vipsets[udp_sets[i]];
		struct nftnl_rule *r;

		if (!lb_nft_vipset_exists(spec, udp_sets[i]))
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
	for (size_t i = 0; ret == 0 && i < N_MAPS; i++)
		if (is_udp(&maps[i]) && map_has(spec, &maps[i]))
			ret = jump_msg(spec, &maps[i], batch, seq);
	return ret;
}

/* ---- text ---- */

/* A duration as nft prints one: "10s", "1m30s", "2h". */
static void print_time(uint64_t s, FILE *out)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s / units[i].secs)
			fprintf(out, "%llu%c", (unsigned long long)(s / units[i].secs), units[i].unit);
		s %= units[i].secs;
	}
}

static void print_prefix(const struct lb_nft_prefix *p, FILE *out)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, ip, sizeof(ip));
	if (p->len == (p->family == AF_INET ? 32 : 128))
		fputs(ip, out);
	else
		fprintf(out, "%s/%u", ip, p->len);
}

static void print_interval_set(const struct lb_nft_clients *c, enum kind k, const struct fam *f,
			       FILE *out)
{
	const struct lb_nft_prefix *list = k == ALLOW ? c->allow : c->deny;
	size_t total = k == ALLOW ? c->n_allow : c->n_deny, n;
	struct lb_nft_prefix *p = sorted(list, total, f, &n);
	char name[NAME_LEN];

	set_name(name, c, k, f);
	fprintf(out, "\n\tset %s {\n\t\ttype %s\n\t\tflags interval\n", name,
		f->family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	for (size_t i = 0; p && i < n; i++) {
		/* nft puts two IPv4 addresses on a line, one IPv6 address. */
		if (i == 0)
			fputs("\t\telements = { ", out);
		else if (f->family == AF_INET && i % 2)
			fputs(", ", out);
		else
			fputs(",\n\t\t\t     ", out);
		print_prefix(&p[i], out);
	}
	if (p && n)
		fputs(" }\n", out);
	fputs("\t}\n", out);
	free(p);
}

static void print_map(const struct lb_nft_spec *spec, const struct map *m, FILE *out)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];
	char (*chains)[NAME_LEN] = calloc(spec->n_clients, sizeof(*chains));
	size_t n = 0;
	struct elem *el = chains ? map_elems(spec, m, chains, &n) : NULL;

	fprintf(out, "\n\tmap %s {\n\t\ttype %s . inet_service : verdict\n", m->name,
		f->nfproto == NFPROTO_IPV4 ? "ipv4_addr" : "ipv6_addr");
	if (f->range)
		fputs("\t\tflags interval\n", out);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n\t\t\t     " : "\t\telements = { ", out);
		lb_nft_vip_key_print(f, el[i].key, el[i].has_end ? el[i].key_end : NULL, out);
		fprintf(out, " : jump %s", el[i].chain);
	}
	fputs(n ? " }\n\t}\n" : "\t}\n", out);
	free(el);
	free(chains);
}

void lb_nft_clients_print_objects(const struct lb_nft_spec *spec, FILE *out)
{
	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		if (c->allow || c->n_deny)
			fprintf(out, "\tcounter deny_%u {\n\t\tpackets 0 bytes 0\n\t}\n\n", c->id);
		if (c->rate)
			fprintf(out, "\tcounter rate_%u {\n\t\tpackets 0 bytes 0\n\t}\n\n", c->id);
	}
}

void lb_nft_clients_print_sets(const struct lb_nft_spec *spec, FILE *out)
{
	char name[NAME_LEN];

	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		for (size_t f = 0; f < 2; f++) {
			if (has_set(c, ALLOW, &fams[f]))
				print_interval_set(c, ALLOW, &fams[f], out);
			if (has_set(c, DENY, &fams[f]))
				print_interval_set(c, DENY, &fams[f], out);
			if (!has_set(c, RATE, &fams[f]))
				continue;
			set_name(name, c, RATE, &fams[f]);
			fprintf(out, "\n\tset %s {\n\t\ttype %s\n\t\tsize %u\n"
				"\t\tflags dynamic,timeout\n\t\ttimeout ", name,
				fams[f].family == AF_INET ? "ipv4_addr" : "ipv6_addr", c->size);
			print_time(timeout_s(c), out);
			fputs("\n\t}\n", out);
		}
	}
	for (size_t i = 0; i < N_MAPS; i++)
		if (map_has(spec, &maps[i]))
			print_map(spec, &maps[i], out);
}

static void print_list_rules(const struct lb_nft_clients *c, enum kind k, const struct fam *f,
			     FILE *out)
{
	char set[NAME_LEN];
	const char *op = k == ALLOW ? "!= " : "";

	if (!has_set(c, k, f))
		return;
	set_name(set, c, k, f);
	if (!c->reset) {
		fprintf(out, "\t\t%s saddr %s@%s counter name \"deny_%u\" drop\n", f->ip, op, set,
			c->id);
		return;
	}
	if (carries(c, false, f->family))
		fprintf(out, "\t\tmeta l4proto tcp %s saddr %s@%s counter name \"deny_%u\" "
			"reject with tcp reset\n", f->ip, op, set, c->id);
	if (carries(c, true, f->family))
		fprintf(out, "\t\tmeta l4proto udp %s saddr %s@%s counter name \"deny_%u\" "
			"reject with %s port-unreachable\n", f->ip, op, set, c->id, f->icmp);
}

static void print_rate_rule(const struct lb_nft_clients *c, const struct fam *f, bool udp,
			    FILE *out)
{
	unsigned int plen = f->family == AF_INET ? c->prefix4 : c->prefix6;
	char set[NAME_LEN];

	set_name(set, c, RATE, f);
	fprintf(out, "\t\t%s @%s { %s saddr", udp ? "meta l4proto udp update" :
		"tcp flags syn / syn,ack update", set, f->ip);
	if (plen < f->len * 8) {
		struct lb_nft_prefix mask = { .family = f->family, .len = f->len * 8 };

		for (unsigned int bit = 0; bit < plen; bit++)
			mask.addr[bit / 8] |= 0x80 >> (bit % 8);
		fputs(" & ", out);
		print_prefix(&mask, out);
	}
	fprintf(out, " limit rate over %u/second", c->rate);
	/* nft leaves out its default burst. */
	if (c->burst != 5)
		fprintf(out, " burst %u packets", c->burst);
	fprintf(out, " } counter name \"rate_%u\" drop\n", c->id);
}

void lb_nft_clients_print_chains(const struct lb_nft_spec *spec, FILE *out)
{
	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		fprintf(out, "\n\tchain clients_%u {\n", c->id);
		for (size_t f = 0; f < 2; f++) {
			print_list_rules(c, ALLOW, &fams[f], out);
			print_list_rules(c, DENY, &fams[f], out);
		}
		for (size_t f = 0; f < 2; f++) {
			if (!has_set(c, RATE, &fams[f]))
				continue;
			if (carries(c, false, fams[f].family))
				print_rate_rule(c, &fams[f], false, out);
			if (carries(c, true, fams[f].family))
				print_rate_rule(c, &fams[f], true, out);
		}
		fputs("\t}\n", out);
	}
}

static void print_jump(const struct map *m, FILE *out)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];

	fprintf(out, "\t\t%s daddr . %s dport vmap @%s\n", f->nfproto == NFPROTO_IPV4 ? "ip" : "ip6",
		is_udp(m) ? "udp" : "tcp", m->name);
}

void lb_nft_clients_print_jump_tcp(const struct lb_nft_spec *spec, FILE *out)
{
	for (size_t i = 0; i < N_MAPS; i++)
		if (!is_udp(&maps[i]) && map_has(spec, &maps[i]))
			print_jump(&maps[i], out);
}

void lb_nft_clients_print_udp(const struct lb_nft_spec *spec, FILE *out)
{
	if (!clients_udp(spec))
		return;
	for (size_t i = 0; i < sizeof(udp_sets) / sizeof(udp_sets[0]); i++) {
		const struct lb_nft_family *f = &lb_nft_vipsets[udp_sets[i]];
		bool v4 = f->nfproto == NFPROTO_IPV4;

		if (lb_nft_vipset_exists(spec, udp_sets[i]))
			fprintf(out, "\t\t%s daddr . udp dport @%s socket transparent 1 tproxy %s to "
				"%s:%u meta mark set 0x%08x accept\n", v4 ? "ip" : "ip6", f->set,
				v4 ? "ip" : "ip6", v4 ? "127.0.0.1" : "[::1]", spec->port, spec->mark);
	}
	for (size_t i = 0; i < N_MAPS; i++)
		if (is_udp(&maps[i]) && map_has(spec, &maps[i]))
			print_jump(&maps[i], out);
}
