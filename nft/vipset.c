// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The VIP sets: which exist, their keys (sorted, each once), their elements
 * many to a message, the difference between two rulesets' elements, and
 * their nft text. A set of single addresses and ports is a hash; prefixes
 * and port ranges go into an interval set of the same key (nft's
 * concatenated ranges). Pure, like ruleset.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/set.h>

#include "nft/nft_priv.h"

/*
 * Elements per message: one message each would cost 100,000 messages (and
 * acks) for 100,000 VIPs; this many keep a message well under 64 KiB.
 */
#define ELEMS_PER_MSG 512

/* Keys of one set: n of len bytes, and (interval sets) their ends; sorted, unique. */
struct keys {
	uint8_t *key, *end;
	size_t n;
	uint32_t len;
};

static void keys_free(struct keys *k)
{
	free(k->key);
	free(k->end);
	k->key = k->end = NULL;
	k->n = 0;
}

/* A spec's keys, set by set, as keys_get() built them. */
struct lb_nft_keys {
	struct keys set[LB_NFT_VS_N];
	bool built[LB_NFT_VS_N];
};

struct lb_nft_keys *lb_nft_keys_alloc(void)
{
	return calloc(1, sizeof(struct lb_nft_keys));
}

void lb_nft_keys_free(struct lb_nft_keys *keys)
{
	if (!keys)
		return;
	for (int vs = 0; vs < LB_NFT_VS_N; vs++)
		keys_free(&keys->set[vs]);
	free(keys);
}

void lb_nft_vip_key(const union lb_nft_addr *a, uint8_t *key)
{
	memset(key, 0, LB_NFT_KEY_MAX);
	if (a->sa.sa_family == AF_INET) {
		memcpy(key, &a->in.sin_addr, 4);
		memcpy(key + 4, &a->in.sin_port, 2);
		return;
	}
	memcpy(key, &a->in6.sin6_addr, 16);
	memcpy(key + 16, &a->in6.sin6_port, 2);
}

static int family_of(const struct lb_nft_family *f)
{
	return f->nfproto == NFPROTO_IPV4 ? AF_INET : AF_INET6;
}

/*
 * Sorts n records of w bytes into memcmp order: a radix sort, one stable
 * counting pass per byte from the last, skipping bytes every record
 * shares (the port, most of the prefix). 100,000 VIPs sort in about a
 * millisecond where qsort's comparisons took tens. Returns 0 or -ENOMEM.
 */
static int keys_sort(uint8_t *key, size_t n, uint32_t w)
{
	uint8_t *tmp, *from = key, *to;
	size_t count[256];

	if (n < 2)
		return 0;
	tmp = malloc(n * w);
	if (!tmp)
		return -ENOMEM;
	to = tmp;
	for (uint32_t b = w; b-- > 0;) {
		size_t at = 0;

		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[from[i * w + b]]++;
		if (count[from[b]] == n)
			continue;
		for (unsigned int v = 0; v < 256; v++) {
			size_t c = count[v];

			count[v] = at;
			at += c;
		}
		for (size_t i = 0; i < n; i++)
			memcpy(to + count[from[i * w + b]]++ * w, from + i * w, w);
		to = from;
		from = from == key ? tmp : key;
	}
	if (from != key)
		memcpy(key, from, n * w);
	free(tmp);
	return 0;
}

/* The VIPs of spec that belong in set vs: exact or range, its protocol and family. */
static void vipset_source(const struct lb_nft_spec *spec, enum lb_nft_vs vs,
			  const union lb_nft_addr **vips, const struct lb_nft_range **ranges,
			  size_t *n)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[vs];
	bool udp = f->l4proto == IPPROTO_UDP;

	*vips = NULL;
	*ranges = NULL;
	if (f->range) {
		*ranges = udp ? spec->udp_ranges : spec->ranges;
		*n = udp ? spec->n_udp_ranges : spec->n_ranges;
	} else {
		*vips = udp ? spec->udp_vips : spec->vips;
		*n = udp ? spec->n_udp_vips : spec->n_vips;
	}
}

/*
 * The keys of set vs, sorted and unique (the sort makes two specs' sets
 * comparable in one pass, in time linear in their number, where a check
 * against every earlier key would cost n squared). Returns 0 or -ENOMEM.
 */
static int keys_build(const struct lb_nft_spec *spec, enum lb_nft_vs vs, struct keys *k)
{
	const struct lb_nft_family *f = &lb_nft_vipsets[vs];
	const union lb_nft_addr *vips;
	const struct lb_nft_range *ranges;
	uint32_t w;
	size_t n, m = 0;

	vipset_source(spec, vs, &vips, &ranges, &n);
	*k = (struct keys){ .len = f->key_len };
	/* An interval set's entries are sorted on start and end together. */
	w = f->range ? 2 * f->key_len : f->key_len;
	k->key = malloc((n ? n : 1) * w);
	if (!k->key)
		return -ENOMEM;
	for (size_t i = 0; (ranges || vips) && i < n; i++) {
		const union lb_nft_addr *first = ranges ? &ranges[i].first : &vips[i];
		uint8_t tmp[LB_NFT_KEY_MAX];

		if (first->sa.sa_family != family_of(f))
			continue;
		lb_nft_vip_key(first, tmp);
		memcpy(k->key + m * w, tmp, f->key_len);
		if (ranges) {
			lb_nft_vip_key(&ranges[i].last, tmp);
			memcpy(k->key + m * w + f->key_len, tmp, f->key_len);
		}
		m++;
	}
	if (keys_sort(k->key, m, w) < 0) {
		keys_free(k);
		return -ENOMEM;
	}
	k->n = 0;
	for (size_t i = 0; i < m; i++)
		if (!k->n || memcmp(k->key + (k->n - 1) * w, k->key + i * w, w))
			memmove(k->key + k->n++ * w, k->key + i * w, w);
	if (f->range) {
		/* Split the pairs into starts and ends for the element builder. */
		k->end = malloc((k->n ? k->n : 1) * f->key_len);
		if (!k->end) {
			keys_free(k);
			return -ENOMEM;
		}
		for (size_t i = 0; i < k->n; i++) {
			memcpy(k->end + i * f->key_len, k->key + i * w + f->key_len, f->key_len);
			memmove(k->key + i * f->key_len, k->key + i * w, f->key_len);
		}
	}
	return 0;
}

/*
 * The keys of set vs: the spec's kept ones (built now if not yet, and
 * kept), borrowed, or built into *own for the caller to free. *k points
 * to them. Returns 0 or -ENOMEM.
 */
static int keys_get(const struct lb_nft_spec *spec, enum lb_nft_vs vs, struct keys *own,
		    const struct keys **k)
{
	struct lb_nft_keys *kept = spec->keys;
	int ret;

	*own = (struct keys){ 0 };
	if (kept && kept->built[vs]) {
		*k = &kept->set[vs];
		return 0;
	}
	ret = keys_build(spec, vs, kept ? &kept->set[vs] : own);
	if (ret)
		return ret;
	if (kept)
		kept->built[vs] = true;
	*k = kept ? &kept->set[vs] : own;
	return 0;
}

bool lb_nft_vipset_exists(const struct lb_nft_spec *spec, enum lb_nft_vs vs)
{
	const union lb_nft_addr *vips;
	const struct lb_nft_range *ranges;
	size_t n;

	/* The TCP sets stay even empty: the rules that look them up always exist. */
	if (vs == LB_NFT_VS_TCP4 || vs == LB_NFT_VS_TCP6)
		return true;
	/* The others come in pairs, both families when either has VIPs. */
	vipset_source(spec, vs, &vips, &ranges, &n);
	return n > 0;
}

static int set_msg(const struct lb_nft_spec *spec, const struct lb_nft_family *f,
		   struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	struct nftnl_set *s = lb_nft_set_alloc(spec, f->set, f->set_id);
	struct nlmsghdr *nlh;

	if (!s)
		return -ENOMEM;
	/*
	 * A plain hash set, as nft declares one (no NFT_SET_CONSTANT: its
	 * elements change in place on reload); prefixes and port ranges, an
	 * interval set of concatenated ranges, which nft marks concat too.
	 */
	if (f->range) {
		uint8_t fields[2] = { (uint8_t)f->addr_len, 2 };

		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_INTERVAL | NFT_SET_CONCAT);
		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, fields, sizeof(fields));
	} else {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
	}
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, f->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, f->key_len);
	nlh = lb_nft_msg(batch, NFT_MSG_NEWSET, NLM_F_CREATE, seq);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return lb_nft_msg_end(batch);
}

/* Elements [from, to) of k, as type (NEWSETELEM or DELSETELEM), ELEMS_PER_MSG a message. */
static int elems_msgs(const struct lb_nft_spec *spec, const struct lb_nft_family *f,
		      const struct keys *k, const size_t *pick, size_t n, uint16_t type,
		      struct mnl_nlmsg_batch *batch, uint32_t *seq)
{
	for (size_t at = 0; at < n; at += ELEMS_PER_MSG) {
		struct nftnl_set *s = lb_nft_set_alloc(spec, f->set, f->set_id);
		struct nlmsghdr *nlh;
		int ret;

		if (!s)
			return -ENOMEM;
		for (size_t i = at; i < n && i < at + ELEMS_PER_MSG; i++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();
			size_t j = pick ? pick[i] : i;

			if (!e) {
				nftnl_set_free(s);
				return -ENOMEM;
			}
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, k->key + j * k->len, k->len);
			if (k->end)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, k->end + j * k->len, k->len);
			nftnl_set_elem_add(s, e);	/* s owns e now */
		}
		nlh = lb_nft_msg(batch, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0, seq);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		ret = lb_nft_msg_end(batch);
		if (ret)
			return ret;
	}
	return 0;
}

int lb_nft_vipset_msgs(const struct lb_nft_spec *spec, bool bare, struct mnl_nlmsg_batch *batch,
		       uint32_t *seq)
{
	int ret = 0;

	/* Every set, then every set's elements, as nft orders a transaction. */
	for (int vs = 0; vs < LB_NFT_VS_N && !ret; vs++)
		if (lb_nft_vipset_exists(spec, vs))
			ret = set_msg(spec, &lb_nft_vipsets[vs], batch, seq);
	for (int vs = 0; vs < LB_NFT_VS_N && !ret && !bare; vs++) {
		struct keys own;
		const struct keys *k;

		if (!lb_nft_vipset_exists(spec, vs))
			continue;
		ret = keys_get(spec, vs, &own, &k);
		if (!ret)
			ret = elems_msgs(spec, &lb_nft_vipsets[vs], k, NULL, k->n, NFT_MSG_NEWSETELEM,
					 batch, seq);
		keys_free(&own);
	}
	return ret;
}

/* Keys of a not in b (both sorted): their indexes in a, into *out (owned). */
static int keys_minus(const struct keys *a, const struct keys *b, size_t **out, size_t *n)
{
	size_t w = a->len, i = 0, j = 0;

	*n = 0;
	*out = malloc((a->n ? a->n : 1) * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	while (i < a->n) {
		int c = j < b->n ? memcmp(a->key + i * w, b->key + j * w, w) : -1;

		/* Equal starts with other ends: a range that changed is deleted and added. */
		if (c == 0 && a->end && memcmp(a->end + i * w, b->end + j * w, w))
			c = memcmp(a->end + i * w, b->end + j * w, w);
		if (c < 0)
			(*out)[(*n)++] = i++;
		else if (c > 0)
			j++;
		else
			i++, j++;
	}
	return 0;
}

int lb_nft_vipset_diff_msgs(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
			    struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *added,
			    size_t *removed)
{
	struct keys own_a[LB_NFT_VS_N] = { 0 }, own_b[LB_NFT_VS_N] = { 0 };
	const struct keys *a[LB_NFT_VS_N] = { 0 }, *b[LB_NFT_VS_N] = { 0 };
	size_t *del[LB_NFT_VS_N] = { 0 }, *add[LB_NFT_VS_N] = { 0 };
	size_t n_del[LB_NFT_VS_N] = { 0 }, n_add[LB_NFT_VS_N] = { 0 };
	int ret = 0;

	*added = *removed = 0;
	/* Each set's keys once, for both directions; the old spec's usually kept from its build. */
	for (int vs = 0; vs < LB_NFT_VS_N && !ret; vs++) {
		if (!lb_nft_vipset_exists(next, vs))
			continue;
		ret = keys_get(old, vs, &own_a[vs], &a[vs]);
		if (!ret)
			ret = keys_get(next, vs, &own_b[vs], &b[vs]);
		if (!ret)
			ret = keys_minus(a[vs], b[vs], &del[vs], &n_del[vs]);
		if (!ret)
			ret = keys_minus(b[vs], a[vs], &add[vs], &n_add[vs]);
	}
	/* Deletes before adds: a range that shrank or grew must not overlap itself. */
	for (int vs = 0; vs < LB_NFT_VS_N && !ret; vs++) {
		if (n_del[vs])
			ret = elems_msgs(next, &lb_nft_vipsets[vs], a[vs], del[vs], n_del[vs],
					 NFT_MSG_DELSETELEM, batch, seq);
		*removed += n_del[vs];
	}
	for (int vs = 0; vs < LB_NFT_VS_N && !ret; vs++) {
		if (n_add[vs])
			ret = elems_msgs(next, &lb_nft_vipsets[vs], b[vs], add[vs], n_add[vs],
					 NFT_MSG_NEWSETELEM, batch, seq);
		*added += n_add[vs];
	}
	for (int vs = 0; vs < LB_NFT_VS_N; vs++) {
		free(del[vs]);
		free(add[vs]);
		keys_free(&own_a[vs]);
		keys_free(&own_b[vs]);
	}
	return ret;
}

void lb_nft_vip_key_print(const struct lb_nft_family *f, const uint8_t *key, const uint8_t *end,
			  FILE *out)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	uint16_t p0, p1;
	uint32_t al = f->addr_len;
	int plen = -1;

	inet_ntop(family_of(f), key, a, sizeof(a));
	memcpy(&p0, key + al, 2);
	p0 = ntohs(p0);
	p1 = p0;
	if (end) {
		memcpy(&p1, end + al, 2);
		p1 = ntohs(p1);
		/* The prefix whose first and last addresses these are, as nft prints one. */
		for (int bits = (int)al * 8; bits >= 0; bits--) {
			bool ok = true;

			for (uint32_t i = 0; i < al && ok; i++) {
				unsigned int keep = bits >= (int)(8 * (i + 1)) ? 8 :
						    bits > (int)(8 * i) ? (unsigned)bits - 8 * i : 0;
				uint8_t mask = (uint8_t)(0xff00u >> keep);

				ok = (key[i] & ~mask) == 0 && (end[i] & ~mask) == (uint8_t)~mask &&
				     (key[i] & mask) == (end[i] & mask);
			}
			if (ok) {
				plen = bits;
				break;
			}
		}
	}
	if (end && plen >= 0 && plen < (int)al * 8)
		fprintf(out, "%s/%d . ", a, plen);
	else if (end && plen < 0)
		fprintf(out, "%s-%s . ", a, inet_ntop(family_of(f), end, b, sizeof(b)));
	else
		fprintf(out, "%s . ", a);
	if (p1 != p0)
		fprintf(out, "%u-%u", p0, p1);
	else
		fprintf(out, "%u", p0);
}

void lb_nft_vipset_print(const struct lb_nft_spec *spec, FILE *out)
{
	bool first = true;

	for (int vs = 0; vs < LB_NFT_VS_N; vs++) {
		const struct lb_nft_family *f = &lb_nft_vipsets[vs];
		const char *sep = "\t\telements = { ";
		struct keys k;

		if (!lb_nft_vipset_exists(spec, vs))
			continue;
		fprintf(out, "%s\tset %s {\n\t\ttype %s . inet_service\n", first ? "" : "\n", f->set,
			f->nfproto == NFPROTO_IPV4 ? "ipv4_addr" : "ipv6_addr");
		first = false;
		if (f->range)
			fputs("\t\tflags interval\n", out);
		if (keys_build(spec, vs, &k) < 0) {
			fputs("\t\t# out of memory\n\t}\n", out);
			continue;
		}
		for (size_t i = 0; i < k.n; i++) {
			fputs(sep, out);
			lb_nft_vip_key_print(f, k.key + i * k.len, k.end ? k.end + i * k.len : NULL, out);
			sep = ",\n\t\t\t     ";
		}
		if (k.n)
			fputs(" }\n", out);
		fputs("\t}\n", out);
		keys_free(&k);
	}
}
