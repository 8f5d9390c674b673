// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Per-client rules of a service, in the kernel before tproxy, so a client
 * lb refuses never costs a worker an accept, an fd or a backend connection.
 *
 * Each such service gets a chain clients_ID; maps keyed by VIP and port
 * (clients_tcp4, clients_udp6, ...; clients_tcp_ranges4 ... for prefix and
 * port-range VIPs) jump to it from prerouting. The chain refuses clients
 * outside allowF_ID or inside denyF_ID (interval sets) and meters new connections per client in
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

#include "nft/clients.h"

/* Batch-local set ids: 8 per service after the maps' (the VIP sets use 1..10). */
#define SERVICE_ID	64
/* A meter's entry outlives a full refill, so an expired one loses nothing. */
#define TIMEOUT_MIN_S	10

static const char *const kind_names[] = { "allow", "deny", "rate" };

const struct lb_nft_cfam lb_nft_cfams[2] = {
	{ AF_INET, '4', NFPROTO_IPV4, 12, 4, LB_NFT_TYPE_IPADDR, "ip", "icmp",
	  NFT_REJECT_ICMP_UNREACH, ICMP_PORT_UNREACH },
	{ AF_INET6, '6', NFPROTO_IPV6, 8, 16, LB_NFT_TYPE_IP6ADDR, "ip6", "icmpv6",
	  NFT_REJECT_ICMP_UNREACH, ICMP6_DST_UNREACH_NOPORT },
};

const struct lb_nft_cmap lb_nft_cmaps[LB_NFT_CMAPS] = {
	{ "clients_tcp4", LB_NFT_VS_TCP4 }, { "clients_tcp6", LB_NFT_VS_TCP6 },
	{ "clients_tcp_ranges4", LB_NFT_VS_TCP_R4 }, { "clients_tcp_ranges6", LB_NFT_VS_TCP_R6 },
	{ "clients_udp4", LB_NFT_VS_UDP4 }, { "clients_udp6", LB_NFT_VS_UDP6 },
	{ "clients_udp_ranges4", LB_NFT_VS_UDP_R4 }, { "clients_udp_ranges6", LB_NFT_VS_UDP_R6 },
};

uint32_t lb_nft_clients_set_id(const struct lb_nft_clients *c, enum lb_nft_ckind k,
			       const struct lb_nft_cfam *f)
{
	return SERVICE_ID + c->id * 8 + k * 2 + (f->family == AF_INET6);
}

void lb_nft_clients_set_name(char *buf, const struct lb_nft_clients *c, enum lb_nft_ckind k,
			     const struct lb_nft_cfam *f)
{
	snprintf(buf, LB_NFT_NAME_LEN, "%s%c_%u", kind_names[k], f->digit, c->id);
}

void lb_nft_clients_chain_name(char *buf, const struct lb_nft_clients *c)
{
	snprintf(buf, LB_NFT_NAME_LEN, "clients_%u", c->id);
}

static bool vips_have(const union lb_nft_addr *v, size_t n, int family)
{
	for (size_t i = 0; v && i < n; i++)
		if (v[i].sa.sa_family == family)
			return true;
	return false;
}

/* Whether c's chain sees traffic of f: it has a VIP of that family. */
static bool ranges_have(const struct lb_nft_range *r, size_t n, int family)
{
	for (size_t i = 0; r && i < n; i++)
		if (r[i].first.sa.sa_family == family)
			return true;
	return false;
}

/* Whether c lb_nft_clients_carries TCP (or, with udp, UDP) to a VIP of family. */
bool lb_nft_clients_carries(const struct lb_nft_clients *c, bool udp, int family)
{
	return udp ? vips_have(c->udp_vips, c->n_udp_vips, family) ||
		     ranges_have(c->udp_ranges, c->n_udp_ranges, family)
		   : vips_have(c->vips, c->n_vips, family) ||
		     ranges_have(c->ranges, c->n_ranges, family);
}

/* Whether c's chain sees traffic of f: it has a VIP of that family. */
static bool serves(const struct lb_nft_clients *c, const struct lb_nft_cfam *f)
{
	return lb_nft_clients_carries(c, false, f->family) ||
	       lb_nft_clients_carries(c, true, f->family);
}

static bool prefixes_have(const struct lb_nft_prefix *p, size_t n, int family)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].family == family)
			return true;
	return false;
}

/* Whether c has a set of kind k for f. */
bool lb_nft_clients_has_set(const struct lb_nft_clients *c, enum lb_nft_ckind k,
			    const struct lb_nft_cfam *f)
{
	if (!serves(c, f))
		return false;
	switch (k) {
	case LB_NFT_ALLOW:
		return c->allow != NULL;
	case LB_NFT_DENY:
		return prefixes_have(c->deny, c->n_deny, f->family);
	case LB_NFT_RATE:
		return c->rate > 0;
	}
	return false;
}

/* c's VIPs that go into map m (single or range, its protocol). */
static void map_source(const struct lb_nft_clients *c, const struct lb_nft_cmap *m,
		       const union lb_nft_addr **vips, const struct lb_nft_range **ranges,
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

static int family_of(const struct lb_nft_cmap *m)
{
	return lb_nft_vipsets[m->vs].nfproto == NFPROTO_IPV4 ? AF_INET : AF_INET6;
}

bool lb_nft_clients_map_has(const struct lb_nft_spec *spec, const struct lb_nft_cmap *m)
{
	for (size_t i = 0; i < spec->n_clients; i++) {
		const union lb_nft_addr *v;
		const struct lb_nft_range *r;
		size_t n;

		map_source(&spec->clients[i], m, &v, &r, &n);
		if (v ? vips_have(v, n, family_of(m)) : ranges_have(r, n, family_of(m)))
			return true;
	}
	return false;
}

uint32_t lb_nft_clients_timeout_s(const struct lb_nft_clients *c)
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
			const union lb_nft_addr *v =
				j < c->n_vips ? &c->vips[j] : &c->udp_vips[j - c->n_vips];

			if (v->sa.sa_family != AF_INET && v->sa.sa_family != AF_INET6)
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
	size_t n = spec->n_clients ? 2 * LB_NFT_CMAPS + 4 : 0;	/* maps, prerouting rules */

	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		/* counters, chain, sets, rules; 2 boundaries a prefix, +1 a set */
		n += 2 + 1 + 6 + 16;
		n += (2 * (c->n_allow + c->n_deny) + 4) / LB_NFT_CELEMS_PER_MSG + 4;
		n += (c->n_vips + c->n_udp_vips + c->n_ranges + c->n_udp_ranges) /
		     LB_NFT_CELEMS_PER_MSG + 8;
	}
	return n;
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct lb_nft_prefix *x = a, *y = b;
	int d = memcmp(x->addr, y->addr, sizeof(x->addr));

	return d ? d : (int)x->len - (int)y->len;
}

/* prefixes of family f, lb_nft_clients_sorted; *n their count. Owned; NULL when out of memory. */
struct lb_nft_prefix *lb_nft_clients_sorted(const struct lb_nft_prefix *p, size_t total,
				    const struct lb_nft_cfam *f, size_t *n)
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

static int elem_cmp(const void *a, const void *b)
{
	const struct lb_nft_celem *x = a, *y = b;
	int d = memcmp(x->key, y->key, x->len);

	return d ? d : memcmp(x->key_end, y->key_end, x->len);
}

/*
 * The elements of map m, lb_nft_clients_sorted by key (as nft lists them): each VIP of
 * its kind jumps to its service's chain, named in chains (owned by the
 * caller, one per clients entry). Owned; NULL when out of memory.
 */
struct lb_nft_celem *lb_nft_clients_map_elems(const struct lb_nft_spec *spec,
					     const struct lb_nft_cmap *m,
					     char (*chains)[LB_NFT_NAME_LEN], size_t *count)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];
	size_t total = 0, n = 0;
	struct lb_nft_celem *el;

	for (size_t i = 0; i < spec->n_clients; i++) {
		const union lb_nft_addr *v;
		const struct lb_nft_range *r;
		size_t nv;

		map_source(&spec->clients[i], m, &v, &r, &nv);
		total += nv;
	}
	el = calloc(total ? total : 1, sizeof(*el));
	if (!el)
		return NULL;
	for (size_t i = 0; i < spec->n_clients; i++) {
		const union lb_nft_addr *v;
		const struct lb_nft_range *r;
		size_t nv;

		map_source(&spec->clients[i], m, &v, &r, &nv);
		lb_nft_clients_chain_name(chains[i], &spec->clients[i]);
		for (size_t j = 0; (r || v) && j < nv; j++) {
			const union lb_nft_addr *first = r ? &r[j].first : &v[j];

			if (first->sa.sa_family != family_of(m))
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

bool lb_nft_clients_map_udp(const struct lb_nft_cmap *m)
{
	return lb_nft_vipsets[m->vs].l4proto == IPPROTO_UDP;
}

/* Whether some service with per-client rules lb_nft_clients_carries UDP. */
bool lb_nft_clients_any_udp(const struct lb_nft_spec *spec)
{
	for (size_t i = 0; i < LB_NFT_CMAPS; i++)
		if (lb_nft_clients_map_udp(&lb_nft_cmaps[i]) &&
		    lb_nft_clients_map_has(spec, &lb_nft_cmaps[i]))
			return true;
	return false;
}

const enum lb_nft_vs lb_nft_cudp_sets[] = {
	LB_NFT_VS_UDP4, LB_NFT_VS_UDP6, LB_NFT_VS_UDP_R4, LB_NFT_VS_UDP_R6,
};

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
			fprintf(out, "%llu%c", (unsigned long long)(s / units[i].secs),
				units[i].unit);
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

static void print_interval_set(const struct lb_nft_clients *c, enum lb_nft_ckind k,
			       const struct lb_nft_cfam *f,
			       FILE *out)
{
	const struct lb_nft_prefix *list = k == LB_NFT_ALLOW ? c->allow : c->deny;
	size_t total = k == LB_NFT_ALLOW ? c->n_allow : c->n_deny, n;
	struct lb_nft_prefix *p = lb_nft_clients_sorted(list, total, f, &n);
	char name[LB_NFT_NAME_LEN];

	lb_nft_clients_set_name(name, c, k, f);
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

static void print_map(const struct lb_nft_spec *spec, const struct lb_nft_cmap *m, FILE *out)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];
	char (*chains)[LB_NFT_NAME_LEN] = calloc(spec->n_clients, sizeof(*chains));
	size_t n = 0;
	struct lb_nft_celem *el = chains ? lb_nft_clients_map_elems(spec, m, chains, &n) : NULL;

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
	char name[LB_NFT_NAME_LEN];

	for (size_t i = 0; i < spec->n_clients; i++) {
		const struct lb_nft_clients *c = &spec->clients[i];

		for (const struct lb_nft_cfam *f = lb_nft_cfams; f < lb_nft_cfams + 2; f++) {
			if (lb_nft_clients_has_set(c, LB_NFT_ALLOW, f))
				print_interval_set(c, LB_NFT_ALLOW, f, out);
			if (lb_nft_clients_has_set(c, LB_NFT_DENY, f))
				print_interval_set(c, LB_NFT_DENY, f, out);
			if (!lb_nft_clients_has_set(c, LB_NFT_RATE, f))
				continue;
			lb_nft_clients_set_name(name, c, LB_NFT_RATE, f);
			fprintf(out, "\n\tset %s {\n\t\ttype %s\n\t\tsize %u\n"
				"\t\tflags dynamic,timeout\n\t\ttimeout ", name,
				f->family == AF_INET ? "ipv4_addr" : "ipv6_addr", c->size);
			print_time(lb_nft_clients_timeout_s(c), out);
			fputs("\n\t}\n", out);
		}
	}
	for (size_t i = 0; i < LB_NFT_CMAPS; i++)
		if (lb_nft_clients_map_has(spec, &lb_nft_cmaps[i]))
			print_map(spec, &lb_nft_cmaps[i], out);
}

static void print_list_rules(const struct lb_nft_clients *c, enum lb_nft_ckind k,
			     const struct lb_nft_cfam *f,
			     FILE *out)
{
	char set[LB_NFT_NAME_LEN];
	const char *op = k == LB_NFT_ALLOW ? "!= " : "";

	if (!lb_nft_clients_has_set(c, k, f))
		return;
	lb_nft_clients_set_name(set, c, k, f);
	if (!c->reset) {
		fprintf(out, "\t\t%s saddr %s@%s counter name \"deny_%u\" drop\n", f->ip, op, set,
			c->id);
		return;
	}
	if (lb_nft_clients_carries(c, false, f->family))
		fprintf(out, "\t\tmeta l4proto tcp %s saddr %s@%s counter name \"deny_%u\" "
			"reject with tcp reset\n", f->ip, op, set, c->id);
	if (lb_nft_clients_carries(c, true, f->family))
		fprintf(out, "\t\tmeta l4proto udp %s saddr %s@%s counter name \"deny_%u\" "
			"reject with %s port-unreachable\n", f->ip, op, set, c->id, f->icmp);
}

static void print_rate_rule(const struct lb_nft_clients *c, const struct lb_nft_cfam *f, bool udp,
			    FILE *out)
{
	unsigned int plen = f->family == AF_INET ? c->prefix4 : c->prefix6;
	char set[LB_NFT_NAME_LEN];

	lb_nft_clients_set_name(set, c, LB_NFT_RATE, f);
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
			print_list_rules(c, LB_NFT_ALLOW, &lb_nft_cfams[f], out);
			print_list_rules(c, LB_NFT_DENY, &lb_nft_cfams[f], out);
		}
		for (size_t f = 0; f < 2; f++) {
			if (!lb_nft_clients_has_set(c, LB_NFT_RATE, &lb_nft_cfams[f]))
				continue;
			if (lb_nft_clients_carries(c, false, lb_nft_cfams[f].family))
				print_rate_rule(c, &lb_nft_cfams[f], false, out);
			if (lb_nft_clients_carries(c, true, lb_nft_cfams[f].family))
				print_rate_rule(c, &lb_nft_cfams[f], true, out);
		}
		fputs("\t}\n", out);
	}
}

static void print_jump(const struct lb_nft_cmap *m, FILE *out)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[m->vs];

	fprintf(out, "\t\t%s daddr . %s dport vmap @%s\n",
		f->nfproto == NFPROTO_IPV4 ? "ip" : "ip6",
		lb_nft_clients_map_udp(m) ? "udp" : "tcp", m->name);
}

void lb_nft_clients_print_jump_tcp(const struct lb_nft_spec *spec, FILE *out)
{
	for (size_t i = 0; i < LB_NFT_CMAPS; i++)
		if (!lb_nft_clients_map_udp(&lb_nft_cmaps[i]) &&
		    lb_nft_clients_map_has(spec, &lb_nft_cmaps[i]))
			print_jump(&lb_nft_cmaps[i], out);
}

void lb_nft_clients_print_udp(const struct lb_nft_spec *spec, FILE *out)
{
	if (!lb_nft_clients_any_udp(spec))
		return;
	for (size_t i = 0; i < sizeof(lb_nft_cudp_sets) / sizeof(lb_nft_cudp_sets[0]); i++) {
		const struct lb_nft_family *f = &lb_nft_vipsets[lb_nft_cudp_sets[i]];
		bool v4 = f->nfproto == NFPROTO_IPV4;

		if (lb_nft_vipset_exists(spec, lb_nft_cudp_sets[i]))
			fprintf(out, "\t\t%s daddr . udp dport @%s socket transparent 1 tproxy %s "
				"to %s:%u meta mark set 0x%08x accept\n", v4 ? "ip" : "ip6",
				f->set, v4 ? "ip" : "ip6", v4 ? "127.0.0.1" : "[::1]", spec->port,
				spec->mark);
	}
	for (size_t i = 0; i < LB_NFT_CMAPS; i++)
		if (lb_nft_clients_map_udp(&lb_nft_cmaps[i]) &&
		    lb_nft_clients_map_has(spec, &lb_nft_cmaps[i]))
			print_jump(&lb_nft_cmaps[i], out);
}
