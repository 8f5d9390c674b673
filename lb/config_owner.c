// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "ownership" block: the tier's gateways (their names and addresses on
 * the segment they share), which one is this gateway, the heartbeats they
 * exchange, and the marks, routing tables and DSCP code points that carry
 * packets between them (lb/peers.c, lb/owner.c and nft/owner.c use it).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lb/balance.h"
#include "lb/config.h"
#include "lb/config_priv.h"

#define DEFAULT_PORT		4180
#define DEFAULT_INTERVAL_MS	100
#define DEFAULT_DEAD_MS		500
#define DEFAULT_BUCKETS		4093
#define DEFAULT_MARK		0x100
#define DEFAULT_TABLE		300
/* Pool 2 of RFC 2474 (xxxx11), for experimental and local use: no class of service uses them. */
#define DEFAULT_DSCP_TO_OWNER	43
#define DEFAULT_DSCP_SECOND	47
#define INTERVAL_MIN_MS		10
#define INTERVAL_MAX_MS		10000
#define DEAD_MAX_MS		60000
#define BUCKETS_MIN		3
#define BUCKETS_MAX		65521	/* the largest prime a Maglev table of 16-bit entries takes */

const union lb_sockaddr *lb_config_peer_addr(const struct lb_owner_peer *p, int family)
{
	for (size_t i = 0; i < p->n_addrs; i++)
		if (p->addrs[i].sa.sa_family == family)
			return &p->addrs[i];
	return NULL;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/* An address without a port: "198.18.1.11", "2001:db8:1::11". */
static bool get_ip(struct lb_config_ctx *c, json_t *v, union lb_sockaddr *out)
{
	const char *s = lb_config_get_string(c, v);

	if (!s)
		return false;
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &out->in.sin_addr) == 1) {
		out->in.sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, s, &out->in6.sin6_addr) == 1) {
		out->in6.sin6_family = AF_INET6;
		lb_addr_unmap(out);
	} else {
		lb_config_err_quoted(c, "invalid address", s,
				     " (an IPv4 or IPv6 address without port)");
		return false;
	}
	return true;
}

static void parse_addresses(struct lb_config_ctx *c, struct lb_owner_peer *p, json_t *arr)
{
	size_t i, saved;
	json_t *v;

	if (!lb_config_expect_array(c, arr))
		return;
	if (json_array_size(arr) > 2) {
		lb_config_err(c, "at most two addresses, one IPv4 and one IPv6");
		return;
	}
	json_array_foreach(arr, i, v) {
		union lb_sockaddr a;

		saved = lb_config_path_index(c, i);
		if (get_ip(c, v, &a)) {
			if (lb_config_peer_addr(p, a.sa.sa_family))
				lb_config_err(c, "a second %s address; give one of each family",
					      family_name(a.sa.sa_family));
			else
				p->addrs[p->n_addrs++] = a;
		}
		lb_config_path_pop(c, saved);
	}
}

static void parse_peer(struct lb_config_ctx *c, struct lb_owner_peer *p, json_t *obj)
{
	const char *key;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "name"))
			p->name = lb_config_get_name(c, v, "_-.", "A-Za-z0-9_-.");
		else if (!strcmp(key, "addresses"))
			parse_addresses(c, p, v);
		else
			lb_config_err(c, "unknown key");
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "name"))
		lb_config_err_missing(c, "name");
	if (!json_object_get(obj, "addresses"))
		lb_config_err_missing(c, "addresses");
}

/*
 * Peer i against the earlier ones, right after its own keys (errors stay
 * in document order): names and addresses each once, the heartbeat
 * addresses of one family.
 */
static void check_peer(struct lb_config_ctx *c, size_t i)
{
	const struct lb_config *cfg = c->cfg;
	const struct lb_owner_peer *p = &cfg->ownership.peers[i];
	char buf[LB_ADDR_STRLEN];
	size_t saved = lb_config_path_index(c, i);

	for (size_t j = 0; j < i; j++) {
		const struct lb_owner_peer *q = &cfg->ownership.peers[j];

		if (p->name && q->name && !strcmp(p->name, q->name)) {
			lb_config_path_key(c, "name");
			lb_config_err_quoted(c, "name", p->name, " is also an earlier peer's");
			break;
		}
		for (size_t k = 0; k < p->n_addrs; k++) {
			const union lb_sockaddr *o = lb_config_peer_addr(q, p->addrs[k].sa.sa_family);

			if (o && lb_addr_equal(o, &p->addrs[k])) {
				lb_config_path_key(c, "addresses");
				lb_config_err(c, "%s is also peer %zu's address",
					      lb_addr_format_ip(o, buf, sizeof(buf)), j);
				break;
			}
		}
	}
	if (i > 0 && p->n_addrs && cfg->ownership.peers[0].n_addrs &&
	    p->addrs[0].sa.sa_family != cfg->ownership.peers[0].addrs[0].sa.sa_family) {
		lb_config_path_key(c, "addresses");
		lb_config_err(c, "the first address is %s, peer 0's is %s: heartbeats go to "
			      "every peer's first address, which must be of one family",
			      family_name(p->addrs[0].sa.sa_family),
			      family_name(cfg->ownership.peers[0].addrs[0].sa.sa_family));
	}
	lb_config_path_pop(c, saved);
}

static void parse_peers(struct lb_config_ctx *c, json_t *arr)
{
	struct lb_config *cfg = c->cfg;
	size_t i, saved;
	json_t *v;

	if (json_is_array(arr) && json_array_size(arr) > LB_OWNER_PEERS_MAX) {
		lb_config_err(c, "%zu peers; at most %d", json_array_size(arr), LB_OWNER_PEERS_MAX);
		return;
	}
	cfg->ownership.peers = lb_config_alloc_array(c, arr, sizeof(*cfg->ownership.peers));
	if (!cfg->ownership.peers)
		return;
	cfg->ownership.n_peers = json_array_size(arr);
	json_array_foreach(arr, i, v) {
		saved = lb_config_path_index(c, i);
		parse_peer(c, &cfg->ownership.peers[i], v);
		lb_config_path_pop(c, saved);
		check_peer(c, i);
	}
}

static void parse_dscp(struct lb_config_ctx *c, json_t *v, uint8_t *out)
{
	long long n;

	/* 0 is what most packets carry: every client's would pass for a forwarded one. */
	if (lb_config_get_int(c, v, 1, 63, &n))
		*out = (uint8_t)n;
}

void lb_config_parse_ownership(struct lb_config_ctx *c, json_t *obj)
{
	struct lb_config *cfg = c->cfg;
	const char *key, *self = NULL;
	long long n;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return;
	cfg->ownership.enabled = true;
	cfg->ownership.port = DEFAULT_PORT;
	cfg->ownership.interval_ms = DEFAULT_INTERVAL_MS;
	cfg->ownership.dead_ms = DEFAULT_DEAD_MS;
	cfg->ownership.buckets = DEFAULT_BUCKETS;
	cfg->ownership.mark = DEFAULT_MARK;
	cfg->ownership.table = DEFAULT_TABLE;
	cfg->ownership.dscp_to_owner = DEFAULT_DSCP_TO_OWNER;
	cfg->ownership.dscp_second_chance = DEFAULT_DSCP_SECOND;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "peers")) {
			parse_peers(c, v);
		} else if (!strcmp(key, "self")) {
			self = lb_config_get_string(c, v);
		} else if (!strcmp(key, "port")) {
			if (lb_config_get_int(c, v, 1, 65535, &n))
				cfg->ownership.port = (uint16_t)n;
		} else if (!strcmp(key, "interval_ms")) {
			if (lb_config_get_int(c, v, INTERVAL_MIN_MS, INTERVAL_MAX_MS, &n))
				cfg->ownership.interval_ms = (unsigned int)n;
		} else if (!strcmp(key, "dead_ms")) {
			if (lb_config_get_int(c, v, 2 * INTERVAL_MIN_MS, DEAD_MAX_MS, &n))
				cfg->ownership.dead_ms = (unsigned int)n;
		} else if (!strcmp(key, "buckets")) {
			if (!lb_config_get_int(c, v, BUCKETS_MIN, BUCKETS_MAX, &n))
				;
			else if (!lb_balance_is_prime((uint32_t)n))
				lb_config_err(c, "%lld is not prime (Maglev fills a table of prime size; "
					      "4093, 16381 and 65521 are)", n);
			else
				cfg->ownership.buckets = (uint32_t)n;
		} else if (!strcmp(key, "mark")) {
			if (lb_config_get_int(c, v, 1, 0xffffffffLL, &n))
				cfg->ownership.mark = (uint32_t)n;
		} else if (!strcmp(key, "table")) {
			if (lb_config_get_int(c, v, 1, 0xffffffffLL, &n))
				cfg->ownership.table = (uint32_t)n;
		} else if (!strcmp(key, "dscp_to_owner")) {
			parse_dscp(c, v, &cfg->ownership.dscp_to_owner);
		} else if (!strcmp(key, "dscp_second_chance")) {
			parse_dscp(c, v, &cfg->ownership.dscp_second_chance);
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "peers"))
		lb_config_err_missing(c, "peers");
	if (!json_object_get(obj, "self")) {
		lb_config_err_missing(c, "self");
	} else if (self && cfg->ownership.peers) {
		size_t i;

		for (i = 0; i < cfg->ownership.n_peers; i++)
			if (cfg->ownership.peers[i].name && !strcmp(cfg->ownership.peers[i].name, self))
				break;
		saved = lb_config_path_key(c, "self");
		if (i == cfg->ownership.n_peers)
			lb_config_err_quoted(c, "no peer named", self, "");
		else
			cfg->ownership.self = i;
		lb_config_path_pop(c, saved);
	}
	if (cfg->ownership.dead_ms < 2 * cfg->ownership.interval_ms) {
		saved = lb_config_path_key(c, "dead_ms");
		lb_config_err(c, "%u is less than two heartbeats (interval_ms %u): one late "
			      "heartbeat would make a peer dead", cfg->ownership.dead_ms,
			      cfg->ownership.interval_ms);
		lb_config_path_pop(c, saved);
	}
	if (cfg->ownership.dscp_to_owner == cfg->ownership.dscp_second_chance) {
		saved = lb_config_path_key(c, "dscp_second_chance");
		lb_config_err(c, "%u is also dscp_to_owner: a packet's second chance must look "
			      "different", cfg->ownership.dscp_second_chance);
		lb_config_path_pop(c, saved);
	}
}

/* Whether [first, first + n) holds x, without overflowing. */
static bool range_has(uint32_t first, size_t n, uint32_t x)
{
	return x >= first && (uint64_t)x - first < n;
}

void lb_config_check_ownership(struct lb_config_ctx *c)
{
	const struct lb_config *cfg = c->cfg;
	size_t n = cfg->ownership.n_peers, saved;
	static const int families[] = { AF_INET, AF_INET6 };

	if (!cfg->ownership.enabled || !n)
		return;
	saved = lb_config_path_key(c, "ownership");
	if ((uint64_t)cfg->ownership.mark + n - 1 > 0xffffffffULL) {
		lb_config_path_key(c, "mark");
		lb_config_err(c, "%u + %zu peers runs past 0xffffffff", cfg->ownership.mark, n);
	} else if (range_has(cfg->ownership.mark, n, cfg->intercept.mark)) {
		lb_config_path_key(c, "mark");
		lb_config_err(c, "marks %u..%u (one per peer) hold intercept.mark %u",
			      cfg->ownership.mark, (unsigned int)(cfg->ownership.mark + n - 1),
			      cfg->intercept.mark);
	}
	lb_config_path_pop(c, saved);
	saved = lb_config_path_key(c, "ownership");
	lb_config_path_key(c, "table");
	if ((uint64_t)cfg->ownership.table + n - 1 > 0xffffffffULL) {
		lb_config_err(c, "%u + %zu peers runs past 0xffffffff", cfg->ownership.table, n);
	} else {
		for (size_t k = 0; k < n; k++) {
			uint32_t t = cfg->ownership.table + (uint32_t)k;

			if (!lb_config_route_table_free(c, t))
				break;
			if (t == cfg->intercept.route_table ||
			    (cfg->announce.enabled && t == cfg->announce.table)) {
				lb_config_err(c, "tables %u..%u (one per peer) hold %s %u",
					      cfg->ownership.table,
					      (unsigned int)(cfg->ownership.table + n - 1),
					      t == cfg->intercept.route_table ? "intercept.route_table"
									      : "announce.table", t);
				break;
			}
		}
	}
	lb_config_path_pop(c, saved);
	/* A packet is forwarded to its owner by the owner's address of its own family. */
	for (size_t f = 0; f < 2; f++) {
		if (!lb_config_has_family(cfg, families[f]))
			continue;
		for (size_t k = 0; k < n; k++) {
			const struct lb_owner_peer *p = &cfg->ownership.peers[k];

			if (!p->n_addrs || lb_config_peer_addr(p, families[f]))
				continue;
			saved = lb_config_path_key(c, "ownership");
			lb_config_path_key(c, "peers");
			lb_config_path_index(c, k);
			lb_config_path_key(c, "addresses");
			lb_config_err(c, "no %s address, and services have %s VIPs: their packets "
				      "could not be forwarded to this peer", family_name(families[f]),
				      family_name(families[f]));
			lb_config_path_pop(c, saved);
		}
	}
}

void lb_config_free_ownership(struct lb_config *cfg)
{
	for (size_t i = 0; cfg->ownership.peers && i < cfg->ownership.n_peers; i++)
		free(cfg->ownership.peers[i].name);
	free(cfg->ownership.peers);
}
