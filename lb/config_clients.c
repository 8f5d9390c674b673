// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A service's "clients" object (docs/config.md): allow and deny lists, a
 * per-client rate of new connections, and a cap on each client's open
 * connections. Lists and the rate become nftables rules (nft/clients.c);
 * the cap is the workers' (lb/clients.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/config_priv.h"

#define LIST_MAX	65536
#define RATE_MAX	1000000
#define TABLE_SIZE_MIN	16
#define TABLE_SIZE_MAX	(1 << 24)
#define TABLE_SIZE_DEFAULT 65536
#define MAX_CONNS_MAX	1000000

static int prefix_cmp(const struct lb_prefix *a, const struct lb_prefix *b)
{
	int d;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	d = memcmp(a->addr, b->addr, sizeof(a->addr));
	if (d)
		return d;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* A list entry and where it was, sorted together. */
struct entry {
	struct lb_prefix p;
	size_t at;
};

static int entry_cmp(const void *a, const void *b)
{
	return prefix_cmp(&((const struct entry *)a)->p, &((const struct entry *)b)->p);
}

/* Whether b lies in a (both prefixes of one family). */
static bool prefix_within(const struct lb_prefix *a, const struct lb_prefix *b)
{
	union lb_sockaddr u = { 0 };

	if (a->family != b->family || b->len < a->len)
		return false;
	u.sa.sa_family = b->family;
	if (b->family == AF_INET)
		memcpy(&u.in.sin_addr, b->addr, 4);
	else
		memcpy(&u.in6.sin6_addr, b->addr, 16);
	return lb_prefix_match(a, &u);
}

static const char *prefix_text(const struct lb_prefix *p, char *buf, size_t len)
{
	char ip[64];

	inet_ntop(p->family, p->addr, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u", ip, p->len);
	return buf;
}

/*
 * Two prefixes are either disjoint or one holds the other. Sorted by
 * address and then length, one that holds another comes right before the
 * first it holds, so comparing neighbours finds every overlap. Reports
 * each at the later entry, naming the earlier; returns false if any.
 */
static bool check_disjoint(struct lb_config_ctx *c, const struct lb_prefix *p, size_t n)
{
	char a[80], b[80];
	struct entry *order;
	bool ok = true;

	order = calloc(n, sizeof(*order));
	if (!order) {
		lb_config_oom(c);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = (struct entry){ .p = p[i], .at = i };
	qsort(order, n, sizeof(*order), entry_cmp);
	for (size_t i = 1; i < n; i++) {
		size_t outer = order[i - 1].at, inner = order[i].at, at, other, saved;

		if (!prefix_within(&p[outer], &p[inner]))
			continue;
		at = outer > inner ? outer : inner;
		other = outer > inner ? inner : outer;
		saved = lb_config_path_index(c, at);
		if (prefix_cmp(&p[outer], &p[inner]) == 0)
			lb_config_err(c, "%s is listed twice (also [%zu])",
				      prefix_text(&p[at], a, sizeof(a)), other);
		else
			lb_config_err(c, "%s overlaps %s at [%zu]: list each address once",
				      prefix_text(&p[at], a, sizeof(a)),
				      prefix_text(&p[other], b, sizeof(b)), other);
		lb_config_path_pop(c, saved);
		ok = false;
	}
	free(order);
	return ok;
}

bool lb_config_get_prefixes(struct lb_config_ctx *c, json_t *arr, bool disjoint,
			    struct lb_prefix **out, size_t *n_out)
{
	struct lb_prefix *p;
	size_t i, saved, n;
	bool ok = true;
	json_t *v;

	if (json_is_array(arr) && json_array_size(arr) > LIST_MAX) {
		lb_config_err(c, "%zu prefixes: at most %d", json_array_size(arr), LIST_MAX);
		return false;
	}
	p = lb_config_alloc_array(c, arr, sizeof(*p));
	if (!p)
		return false;
	n = json_array_size(arr);
	json_array_foreach(arr, i, v) {
		const char *s, *why;

		saved = lb_config_path_index(c, i);
		s = lb_config_get_string(c, v);
		if (!s) {
			ok = false;
		} else if (lb_prefix_parse(s, &p[i], &why) < 0) {
			char tail[160];

			snprintf(tail, sizeof(tail), ": %s", why);
			lb_config_err_quoted(c, "invalid prefix", s, tail);
			ok = false;
		}
		lb_config_path_pop(c, saved);
	}
	if (ok && disjoint)
		ok = check_disjoint(c, p, n);
	if (!ok) {
		free(p);
		return false;
	}
	free(*out);
	*out = p;
	*n_out = n;
	return true;
}

static bool has_family(const struct lb_prefix *p, size_t n, int family)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].family == family)
			return true;
	return false;
}

static bool vips_have(const struct lb_service_conf *svc, int family)
{
	for (size_t i = 0; i < svc->n_vips; i++)
		if (svc->vips[i].sa.sa_family == family)
			return true;
	return false;
}

static void parse_rate(struct lb_config_ctx *c, struct lb_clients_conf *cl, json_t *obj)
{
	const char *key;
	long long n;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "per_second")) {
			if (lb_config_get_int(c, v, 1, RATE_MAX, &n))
				cl->rate = n;
		} else if (!strcmp(key, "burst")) {
			if (lb_config_get_int(c, v, 1, RATE_MAX, &n))
				cl->burst = n;
		} else if (!strcmp(key, "ipv4_prefix")) {
			if (lb_config_get_int(c, v, 1, 32, &n))
				cl->rate_prefix4 = n;
		} else if (!strcmp(key, "ipv6_prefix")) {
			if (lb_config_get_int(c, v, 1, 128, &n))
				cl->rate_prefix6 = n;
		} else if (!strcmp(key, "table_size")) {
			if (lb_config_get_int(c, v, TABLE_SIZE_MIN, TABLE_SIZE_MAX, &n))
				cl->rate_table_size = n;
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "per_second"))
		lb_config_err_missing(c, "per_second");
	/* A second's worth unless told: a client may open its rate at once. */
	if (!json_object_get(obj, "burst"))
		cl->burst = cl->rate;
}

static void parse_action(struct lb_config_ctx *c, struct lb_clients_conf *cl, json_t *v)
{
	const char *s = lb_config_get_string(c, v);

	if (s && !strcmp(s, "drop"))
		cl->deny_reset = false;
	else if (s && !strcmp(s, "reset"))
		cl->deny_reset = true;
	else if (s)
		lb_config_err_quoted(c, "unknown action", s, " (expected drop or reset)");
}

/*
 * An allow list without a prefix of a family the service has VIPs of
 * refuses every client of that family: legal, and what an operator may
 * want, but easy to do by accident.
 */
static void check_allow_families(struct lb_config_ctx *c, const struct lb_service_conf *svc)
{
	static const int families[] = { AF_INET, AF_INET6 };
	const struct lb_clients_conf *cl = &svc->clients;

	for (size_t f = 0; cl->allow && f < 2; f++) {
		size_t saved;

		if (!vips_have(svc, families[f]) || has_family(cl->allow, cl->n_allow, families[f]))
			continue;
		saved = lb_config_path_key(c, "allow");
		lb_config_warn(c, "no %s prefix: every %s client of this service is refused",
			       families[f] == AF_INET ? "IPv4" : "IPv6",
			       families[f] == AF_INET ? "IPv4" : "IPv6");
		lb_config_path_pop(c, saved);
	}
}

void lb_config_parse_clients(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *obj)
{
	struct lb_clients_conf *cl = &svc->clients;
	const char *key;
	long long n;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return;
	cl->rate_prefix4 = 32;
	cl->rate_prefix6 = 128;
	cl->rate_table_size = TABLE_SIZE_DEFAULT;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "allow")) {
			lb_config_get_prefixes(c, v, true, &cl->allow, &cl->n_allow);
		} else if (!strcmp(key, "deny")) {
			lb_config_get_prefixes(c, v, true, &cl->deny, &cl->n_deny);
		} else if (!strcmp(key, "deny_action")) {
			parse_action(c, cl, v);
		} else if (!strcmp(key, "rate")) {
			parse_rate(c, cl, v);
		} else if (!strcmp(key, "max_conns")) {
			if (!(svc->protocols & LB_PROTO_TCP))
				lb_config_err(c, "applies to TCP; this service's protocol is \"udp\" "
					      "(rate limits new flows)");
			else if (lb_config_get_int(c, v, 1, MAX_CONNS_MAX, &n))
				cl->max_conns = n;
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	check_allow_families(c, svc);
}

void lb_config_clients_free(struct lb_clients_conf *cl)
{
	free(cl->allow);
	free(cl->deny);
	cl->allow = cl->deny = NULL;
}

bool lb_config_clients_nft(const struct lb_service_conf *svc)
{
	const struct lb_clients_conf *cl = &svc->clients;

	return cl->allow || cl->n_deny || cl->rate;
}
