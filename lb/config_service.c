// SPDX-License-Identifier: GPL-2.0-or-later
/* The "services" part of the config: VIPs, backends, scheduling (health checks: config_health.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "lb/bigmem.h"
#include "lb/config.h"
#include "lb/config_priv.h"
#include "lb/prefix.h"
#include "lb/str.h"
#include "lb/vipmap.h"

#define MAGLEV_SIZE_MAX		1000003		/* prime; 100 entries each for 10000 backends */
#define MAGLEV_PER_BACKEND	100		/* below this, weights are followed poorly */
#define MAX_CONNS_MAX		10000000
#define SOCKET_BUFFER_MIN	4096
#define SOCKET_BUFFER_MAX	(64 << 20)
#define UDP_RESPONSES_MAX	1000000
#define FASTOPEN_WAIT_MAX	1000

static const char *const proto_names[] = {
	[LB_PROTO_TCP] = "tcp",
	[LB_PROTO_UDP] = "udp",
	[LB_PROTO_TCP | LB_PROTO_UDP] = "tcp+udp",
};

/* Keys that only mean something for one protocol, refused on a service without it. */
static const char *const tcp_keys[] = {
	"connect_timeout_ms", "idle_timeout_ms", "client_idle_timeout_ms", "server_idle_timeout_ms",
	"queue_timeout_ms", "retries", "socket_buffer_bytes", "fastopen", "fastopen_wait_ms",
};
static const char *const udp_keys[] = { "udp_idle_timeout_ms", "udp_responses", "quic" };

static const char *const sched_names[] = {
	[LB_SCHED_ROUNDROBIN] = "roundrobin",
	[LB_SCHED_LEASTCONN] = "leastconn",
	[LB_SCHED_MAGLEV] = "maglev",
	[LB_SCHED_RANDOM2] = "random2",
};

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/* Trial division: sizes are at most MAGLEV_SIZE_MAX, so ~500 steps. */
static bool is_prime(unsigned int m)
{
	unsigned int d;

	if (m < 2)
		return false;
	if (m % 2 == 0)
		return m == 2;
	for (d = 3; d <= m / d; d += 2)
		if (m % d == 0)
			return false;
	return true;
}

/*
 * The default Maglev table size for n backends: the smallest prime of at
 * least 100 entries per backend, with n rounded up to a power of two, so
 * that adding or removing a backend keeps the size (and with it where most
 * clients go) until the count crosses a power of two: a table of another
 * size maps nearly every client afresh. Past MAGLEV_SIZE_MAX it gives up
 * the rounding; with more backends than even that allows it returns a size
 * the caller refuses as too small.
 */
static unsigned int maglev_default_size(size_t n)
{
	uint64_t want = MAGLEV_PER_BACKEND, m;

	while (want < (uint64_t)MAGLEV_PER_BACKEND * n)
		want *= 2;
	if (want > MAGLEV_SIZE_MAX)
		want = (uint64_t)MAGLEV_PER_BACKEND * n;
	if (want > MAGLEV_SIZE_MAX)
		return MAGLEV_SIZE_MAX;
	for (m = want; !is_prime(m); m++)
		;
	return m > MAGLEV_SIZE_MAX ? MAGLEV_SIZE_MAX : m;
}

/* "service "web"" when services[i] has a valid name, else "services[i]". */
static void describe_service(struct lb_config_ctx *c, size_t i, char *buf, size_t len)
{
	json_t *name = json_object_get(json_array_get(c->services, i), "name");
	const char *s = c->cfg->services[i].name;

	/* A service copied from the running config stands as null in the tree. */
	if (!s && json_is_string(name) && lb_config_valid_name(json_string_value(name), "_.-"))
		s = json_string_value(name);
	if (s)
		snprintf(buf, len, "service \"%s\"", s);
	else
		snprintf(buf, len, "services[%zu]", i);
}

enum addr_class {
	ADDR_OK,
	ADDR_UNSPECIFIED,		/* 0.0.0.0, :: */
	ADDR_THIS_NET,			/* 0.0.0.0/8 */
	ADDR_BROADCAST,			/* 255.255.255.255 */
	ADDR_MULTICAST,
	ADDR_LOOPBACK,
	ADDR_LINKLOCAL6,		/* fe80::/10: needs an interface lb has no way to name */
};

static enum addr_class addr_classify(const union lb_sockaddr *a)
{
	const struct in6_addr *ip6 = &a->in6.sin6_addr;
	uint32_t ip;

	if (a->sa.sa_family == AF_INET) {
		ip = ntohl(a->in.sin_addr.s_addr);
		if (ip == 0)
			return ADDR_UNSPECIFIED;
		if (ip == 0xffffffffu)
			return ADDR_BROADCAST;
		if ((ip >> 24) == 0)
			return ADDR_THIS_NET;
		if ((ip >> 28) == 0xe)
			return ADDR_MULTICAST;
		if ((ip >> 24) == 127)
			return ADDR_LOOPBACK;
		return ADDR_OK;
	}
	if (a->sa.sa_family != AF_INET6)
		return ADDR_OK;
	if (IN6_IS_ADDR_UNSPECIFIED(ip6))
		return ADDR_UNSPECIFIED;
	if (IN6_IS_ADDR_MULTICAST(ip6))
		return ADDR_MULTICAST;
	if (IN6_IS_ADDR_LOOPBACK(ip6))
		return ADDR_LOOPBACK;
	if (IN6_IS_ADDR_LINKLOCAL(ip6))
		return ADDR_LINKLOCAL6;
	return ADDR_OK;
}

#define NOT_TCP "is a broadcast or multicast address: TCP cannot connect to it"
#define NOT_HOST "is not a host address: a connect to it reaches this gateway itself"

/*
 * Why an address of each class can never work, as a VIP ([0]) and as a
 * backend ([1]); NULL where it may. A VIP must be a unicast destination
 * that arrives from another host (the intercept rules only see those).
 * A loopback backend is judged later (lb_config_check_services), when the
 * intercept port is known.
 */
static const char *const unusable[][2] = {
	[ADDR_UNSPECIFIED] = { "is the unspecified address: a VIP must be an address clients "
			       "connect to", NOT_HOST },
	[ADDR_THIS_NET] = { "is in 0.0.0.0/8, which is never a destination", NOT_HOST },
	[ADDR_BROADCAST] = { NOT_TCP, NOT_TCP },
	[ADDR_MULTICAST] = { NOT_TCP, NOT_TCP },
	[ADDR_LOOPBACK] = { "is a loopback address: packets to it never come from another host, "
			    "so there is nothing to intercept", NULL },
	[ADDR_LINKLOCAL6] = { NULL, "is a link-local address: it needs an interface, which a "
				    "backend address cannot name" },
};

/* Refuses a VIP or backend that can never work; returns false after the error. */
static bool addr_usable(struct lb_config_ctx *c, const union lb_sockaddr *a, bool backend)
{
	const char *why = unusable[addr_classify(a)][backend];
	char text[LB_ADDR_STRLEN];

	if (!why)
		return true;
	lb_config_err(c, "%s %s", lb_addr_format(a, text, sizeof(text)), why);
	return false;
}

/* text in double quotes, escaped and cut for an error line, in q. */
static const char *quote(const char *text, char q[LB_STR_QUOTE_SIZE])
{
	return lb_str_escape_to(q, LB_STR_QUOTE_SIZE, text, LB_STR_QUOTE | LB_STR_CUT);
}

/*
 * Parses a VIP: "198.18.100.1:80", "[2001:db8:100::1]:443", a prefix
 * ("198.18.128.0/20:80", "[2001:db8:100::/48]:443") and a port range
 * ("198.18.100.1:8000-8999"), alone or together. Returns false (error
 * reported) when it is none of these.
 */
static bool get_vip(struct lb_config_ctx *c, json_t *v, union lb_sockaddr *a, uint8_t *plen,
		    uint16_t *port_last)
{
	const char *s = lb_config_get_string(c, v), *why = NULL, *colon;
	char host[INET6_ADDRSTRLEN + 8], q[LB_STR_QUOTE_SIZE];
	struct lb_prefix p;
	unsigned long first, last;
	char *end;
	size_t hl;

	if (!s)
		return false;
	/* One address and one port: the same parser, and messages, as backends'. */
	if (!strchr(s, '/') && !strchr(strrchr(s, ':') ? strrchr(s, ':') : s, '-')) {
		if (!lb_config_get_addr(c, v, a))
			return false;
		*plen = a->sa.sa_family == AF_INET6 ? 128 : 32;
		*port_last = lb_addr_port(a);
		return true;
	}
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			lb_config_err(c, "%s: expected [address]:port", quote(s, q));
			return false;
		}
		hl = (size_t)(close - s - 1);
		s++;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			lb_config_err(c, "%s: missing port", quote(s, q));
			return false;
		}
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl)) {
			lb_config_err(c, "%s: an IPv6 VIP is written [address]:port", quote(s, q));
			return false;
		}
	}
	if (hl == 0 || hl >= sizeof(host)) {
		lb_config_err(c, "%s: expected an address", quote(s, q));
		return false;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	errno = 0;
	first = strtoul(colon + 1, &end, 10);
	last = first;
	if (*end == '-')
		last = strtoul(end + 1, &end, 10);
	if (errno || end == colon + 1 || *end || first == 0 || last > 65535 || first > last) {
		lb_config_err(c, "%s: the port must be 1..65535, or a range such as 8000-8999",
			      quote(colon + 1, q));
		return false;
	}
	if (lb_prefix_parse(host, &p, &why) < 0) {
		lb_config_err(c, "%s: %s", quote(host, q), why);
		return false;
	}
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)p.family;
	if (p.family == AF_INET6)
		memcpy(&a->in6.sin6_addr, p.addr, 16);
	else
		memcpy(&a->in.sin_addr, p.addr, 4);
	/* Written as ::ffff:a.b.c.d it is still an IPv4 address on the wire. */
	if (p.family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr) && p.len >= 96) {
		lb_addr_unmap(a);
		p.len -= 96;
	}
	lb_addr_set_port(a, (uint16_t)first);
	*plen = (uint8_t)p.len;
	*port_last = (uint16_t)last;
	return true;
}

/* Parses services[si].vips[vi]; overlaps are found once every service is read. */
static void parse_vip(struct lb_config_ctx *c, size_t si, size_t vi, json_t *v)
{
	struct lb_service_conf *svc = &c->cfg->services[si];
	union lb_sockaddr *a = &svc->vips[vi];

	if (!get_vip(c, v, a, &svc->vip_plen[vi], &svc->vip_port_last[vi]))
		goto bad;
	/* A single address must be one a client can reach; a prefix may hold anything. */
	if (lb_config_vip_single(svc, vi) && !addr_usable(c, a, false))
		goto bad;
	return;
bad:
	memset(a, 0, sizeof(*a));
}

static void parse_vips(struct lb_config_ctx *c, size_t si, json_t *arr)
{
	struct lb_service_conf *svc = &c->cfg->services[si];
	size_t i, saved;
	json_t *v;

	svc->vips = lb_config_alloc_array(c, arr, sizeof(*svc->vips));
	if (!svc->vips)
		return;
	svc->vip_plen = calloc(json_array_size(arr), sizeof(*svc->vip_plen));
	svc->vip_port_last = calloc(json_array_size(arr), sizeof(*svc->vip_port_last));
	if (!svc->vip_plen || !svc->vip_port_last) {
		lb_config_oom(c);
		return;
	}
	svc->n_vips = json_array_size(arr);
	json_array_foreach(arr, i, v) {
		saved = lb_config_path_index(c, i);
		parse_vip(c, si, i, v);
		lb_config_path_pop(c, saved);
	}
}

/* Returns false when the address is missing or invalid. */
static bool parse_backend(struct lb_config_ctx *c, struct lb_service_conf *svc, size_t bi,
			  json_t *obj)
{
	struct lb_backend_conf *b = &svc->backends[bi];
	char text[LB_ADDR_STRLEN];
	bool have_addr = false;
	const char *key;
	size_t saved, j;
	long long n;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return false;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "address")) {
			have_addr = lb_config_get_addr(c, v, &b->addr) &&
				    addr_usable(c, &b->addr, true);
			if (!have_addr)
				memset(&b->addr, 0, sizeof(b->addr));
			for (j = 0; have_addr && j < bi; j++) {
				if (!lb_addr_equal(&svc->backends[j].addr, &b->addr))
					continue;
				lb_config_err(c, "%s already listed at backends[%zu]",
					      lb_addr_format(&b->addr, text, sizeof(text)), j);
				memset(&b->addr, 0, sizeof(b->addr));
				break;
			}
		} else if (!strcmp(key, "weight")) {
			if (lb_config_get_int(c, v, 0, 1000, &n))
				b->weight = n;
		} else if (!strcmp(key, "max_conns")) {
			if (lb_config_get_int(c, v, 0, MAX_CONNS_MAX, &n))
				b->max_conns = n;
		} else if (!strcmp(key, "quic_server_id")) {
			lb_config_parse_server_id(c, svc, b, v);
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "address")) {
		lb_config_err_missing(c, "address");
		return false;
	}
	return have_addr;
}

/* Returns false when some backend has no usable address. */
static bool parse_backends(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *arr)
{
	size_t i, saved;
	bool ok = true;
	json_t *v;

	svc->backends = lb_config_alloc_array(c, arr, sizeof(*svc->backends));
	if (!svc->backends)
		return false;
	svc->n_backends = json_array_size(arr);
	json_array_foreach(arr, i, v) {
		svc->backends[i].weight = 1;
		saved = lb_config_path_index(c, i);
		if (!parse_backend(c, svc, i, v))
			ok = false;
		lb_config_path_pop(c, saved);
	}
	return ok;
}

/*
 * A VIP can only be served by a backend of its own family: the backend
 * connection is made from the client's address.
 */
static void check_families(struct lb_config_ctx *c, const struct lb_service_conf *svc)
{
	size_t i, j, saved;
	int family;

	for (i = 0; i < svc->n_vips; i++) {
		family = svc->vips[i].sa.sa_family;
		if (family != AF_INET && family != AF_INET6)
			continue;
		for (j = 0; j < svc->n_backends; j++)
			if (svc->backends[j].addr.sa.sa_family == family)
				break;
		if (j < svc->n_backends)
			continue;
		saved = lb_config_path_key(c, "vips");
		lb_config_path_index(c, i);
		lb_config_err(c, "no %s backend for this %s VIP", family_name(family), family_name(family));
		lb_config_path_pop(c, saved);
	}
}

static void parse_scheduler(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *v)
{
	const char *s = lb_config_get_string(c, v);
	size_t i;

	if (!s)
		return;
	for (i = 0; i < sizeof(sched_names) / sizeof(sched_names[0]); i++) {
		if (!strcmp(s, sched_names[i])) {
			svc->sched = i;
			return;
		}
	}
	lb_config_err_quoted(c, "unknown scheduler", s,
			     " (expected roundrobin, leastconn, maglev or random2)");
}

static void parse_hash(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *v)
{
	const char *s = lb_config_get_string(c, v);

	if (s && !strcmp(s, "address"))
		svc->hash_port = 0;
	else if (s && !strcmp(s, "address_port"))
		svc->hash_port = 1;
	else if (s)
		lb_config_err_quoted(c, "unknown hash", s, " (expected address or address_port)");
}

static bool parse_maglev_size(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *v)
{
	long long n;

	if (!lb_config_get_int(c, v, 1, MAGLEV_SIZE_MAX, &n))
		return false;
	if (!is_prime(n)) {
		lb_config_err(c, "%lld is not prime", n);
		return false;
	}
	svc->maglev_size = n;
	return true;
}

/* Defaults, set before parsing so that a service without the keys has them too. */
static void service_defaults(struct lb_service_conf *svc)
{
	struct lb_health_conf *h = &svc->health;

	svc->sched = LB_SCHED_ROUNDROBIN;
	svc->protocols = LB_PROTO_TCP;
	svc->udp_idle_timeout_ms = 60000;
	svc->connect_timeout_ms = 3000;
	svc->client_idle_timeout_ms = 300000;
	svc->server_idle_timeout_ms = 300000;
	svc->queue_timeout_ms = 1000;
	svc->retries = 2;
	svc->fastopen_wait_ms = 3;
	svc->hash_port = 0;
	svc->maglev_size = 0;		/* sized to the backends once they are parsed */
	/* Without a health block, passive checks use fall, tcp probes the rest. */
	h->type = LB_CHECK_NONE;
	h->interval_ms = 2000;
	h->timeout_ms = 1000;
	h->rise = 2;
	h->fall = 3;
	h->port = 0;
	h->expect_min = 200;
	h->expect_max = 399;
}

static void parse_protocol(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *v)
{
	const char *s = json_string_value(v);

	for (unsigned int p = 1; s && p < sizeof(proto_names) / sizeof(proto_names[0]); p++)
		if (!strcmp(s, proto_names[p])) {
			svc->protocols = p;
			return;
		}
	lb_config_err(c, "expected \"tcp\", \"udp\" or \"tcp+udp\"");
}

/* Refuses the keys of keys[] in obj: they apply to a protocol the service does not carry. */
static void refuse_keys(struct lb_config_ctx *c, json_t *obj, const char *const *keys, size_t n,
			const char *proto, const struct lb_service_conf *svc)
{
	for (size_t i = 0; i < n; i++) {
		size_t saved;

		if (!json_object_get(obj, keys[i]))
			continue;
		saved = lb_config_path_key(c, keys[i]);
		lb_config_err(c, "applies to %s; this service's protocol is \"%s\"", proto,
			      proto_names[svc->protocols]);
		lb_config_path_pop(c, saved);
	}
}

/*
 * What services[si] becomes depends on obj alone, its own text: a reload
 * copies the service whose text is unchanged (config_reload.c) instead of
 * calling this. Anything that depends on the rest of the config belongs in
 * the checks across services (lb_config_check_services, build_vipmap).
 */
static void parse_service(struct lb_config_ctx *c, size_t si, json_t *obj)
{
	struct lb_service_conf *svc = &c->cfg->services[si];
	bool backends_ok = false, size_ok = true, sized;
	unsigned int idle = 0;
	const char *key;
	size_t saved;
	long long n;
	json_t *v;
	int dup;

	service_defaults(svc);
	if (!lb_config_expect_object(c, obj))
		return;
	/* First: whether its VIPs may share an address with another service's depends on it. */
	v = json_object_get(obj, "protocol");
	if (v) {
		saved = lb_config_path_key(c, "protocol");
		parse_protocol(c, svc, v);
		lb_config_path_pop(c, saved);
	}
	/* Before the backends: it gives their server IDs a length. */
	v = json_object_get(obj, "quic");
	if (v) {
		saved = lb_config_path_key(c, "quic");
		lb_config_parse_quic(c, svc, v);
		lb_config_path_pop(c, saved);
	}
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "protocol") || !strcmp(key, "quic")) {
			/* Parsed above. */
		} else if (!strcmp(key, "udp_idle_timeout_ms")) {
			lb_config_get_timeout(c, v, &svc->udp_idle_timeout_ms);
		} else if (!strcmp(key, "udp_responses")) {
			if (lb_config_get_int(c, v, 0, UDP_RESPONSES_MAX, &n))
				svc->udp_responses = n;
		} else if (!strcmp(key, "name")) {
			svc->name = lb_config_get_name(c, v, "_.-",
						       " (1..64 characters of A-Za-z0-9_.-)");
			/* Names are unique: lookups by name (reload, lbctl) find one. */
			if (svc->name && c->cfg->by_name &&
			    (dup = lb_config_index_name(c->cfg, si)) >= 0)
				lb_config_err(c, "duplicate service name \"%s\" (also services[%d])",
					      svc->name, dup);
		} else if (!strcmp(key, "vips")) {
			parse_vips(c, si, v);
		} else if (!strcmp(key, "backends")) {
			backends_ok = parse_backends(c, svc, v);
		} else if (!strcmp(key, "scheduler")) {
			parse_scheduler(c, svc, v);
		} else if (!strcmp(key, "hash")) {
			parse_hash(c, svc, v);
		} else if (!strcmp(key, "maglev_table_size")) {
			size_ok = parse_maglev_size(c, svc, v);
		} else if (!strcmp(key, "connect_timeout_ms")) {
			lb_config_get_timeout(c, v, &svc->connect_timeout_ms);
		} else if (!strcmp(key, "idle_timeout_ms")) {
			lb_config_get_timeout(c, v, &idle);
		} else if (!strcmp(key, "client_idle_timeout_ms")) {
			lb_config_get_timeout(c, v, &svc->client_idle_timeout_ms);
		} else if (!strcmp(key, "server_idle_timeout_ms")) {
			lb_config_get_timeout(c, v, &svc->server_idle_timeout_ms);
		} else if (!strcmp(key, "queue_timeout_ms")) {
			lb_config_get_timeout(c, v, &svc->queue_timeout_ms);
		} else if (!strcmp(key, "retries")) {
			if (lb_config_get_int(c, v, 0, 16, &n))
				svc->retries = n;
		} else if (!strcmp(key, "socket_buffer_bytes")) {
			if (lb_config_get_int(c, v, SOCKET_BUFFER_MIN, SOCKET_BUFFER_MAX, &n))
				svc->socket_buffer_bytes = n;
		} else if (!strcmp(key, "fastopen")) {
			if (json_is_boolean(v))
				svc->fastopen = json_is_true(v);
			else
				lb_config_err(c, "expected true or false");
		} else if (!strcmp(key, "fastopen_wait_ms")) {
			if (lb_config_get_int(c, v, 0, FASTOPEN_WAIT_MAX, &n))
				svc->fastopen_wait_ms = n;
		} else if (!strcmp(key, "health")) {
			lb_config_parse_health(c, &svc->health, v);
		} else if (!strcmp(key, "clients")) {
			/* After the loop: it needs the protocols and VIPs. */
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	v = json_object_get(obj, "clients");
	if (v) {
		saved = lb_config_path_key(c, "clients");
		lb_config_parse_clients(c, svc, v);
		lb_config_path_pop(c, saved);
	}
	if (!(svc->protocols & LB_PROTO_TCP))
		refuse_keys(c, obj, tcp_keys, sizeof(tcp_keys) / sizeof(tcp_keys[0]), "TCP", svc);
	if (!(svc->protocols & LB_PROTO_UDP))
		refuse_keys(c, obj, udp_keys, sizeof(udp_keys) / sizeof(udp_keys[0]), "UDP", svc);
	if (!svc->fastopen && (svc->protocols & LB_PROTO_TCP) &&
	    json_object_get(obj, "fastopen_wait_ms")) {
		saved = lb_config_path_key(c, "fastopen_wait_ms");
		lb_config_warn(c, "has no effect without \"fastopen\": true");
		lb_config_path_pop(c, saved);
	}
	/* idle_timeout_ms sets both sides; an explicit side wins, in any key order. */
	if (idle && !json_object_get(obj, "client_idle_timeout_ms"))
		svc->client_idle_timeout_ms = idle;
	if (idle && !json_object_get(obj, "server_idle_timeout_ms"))
		svc->server_idle_timeout_ms = idle;
	if (!json_object_get(obj, "name"))
		lb_config_err_missing(c, "name");
	if (!json_object_get(obj, "vips"))
		lb_config_err_missing(c, "vips");
	if (!json_object_get(obj, "backends"))
		lb_config_err_missing(c, "backends");
	/* With a bad backend address the family check would only add noise. */
	if (backends_ok)
		check_families(c, svc);
	lb_config_quic_finish(c, svc);
	sized = svc->maglev_size != 0;
	if (!sized)
		svc->maglev_size = maglev_default_size(svc->n_backends);
	if (svc->sched == LB_SCHED_MAGLEV && size_ok && svc->n_backends &&
	    svc->maglev_size < (uint64_t)MAGLEV_PER_BACKEND * svc->n_backends) {
		if (sized)
			lb_config_err(c, "maglev_table_size %u is below %u x %zu backend%s",
				      svc->maglev_size, MAGLEV_PER_BACKEND, svc->n_backends,
				      svc->n_backends == 1 ? "" : "s");
		else
			lb_config_err(c, "%zu backends are too many for maglev: its table holds at"
				      " most %u entries, %u per backend", svc->n_backends,
				      MAGLEV_SIZE_MAX, MAGLEV_PER_BACKEND);
	}
}

/*
 * Parses services[i] and tells the source being kept (lb_config_source)
 * whether it had anything to warn of: only a service without warnings
 * may be copied by the next reload, which would not repeat them.
 */
static void parse_service_at(struct lb_config_ctx *c, size_t i, json_t *obj)
{
	size_t warned = c->warnings.len;
	bool oom = c->warnings.oom;

	parse_service(c, i, obj);
	if (c->source)
		lb_config_source_clean(c->source, i, c->warnings.len == warned &&
				       c->warnings.oom == oom);
}

/* services[i] is the running config's from, whose text is the same: a copy, named in the index. */
static void copy_service(struct lb_config_ctx *c, size_t i, const struct lb_service_conf *from)
{
	struct lb_config *cfg = c->cfg;
	int dup;

	/* Counted even when the copy fails: its error makes the whole text read again. */
	c->source->copied++;
	if (!lb_config_service_copy(&cfg->services[i], from)) {
		lb_config_oom(c);
		return;
	}
	lb_config_source_clean(c->source, i, true);
	if (cfg->services[i].name && (dup = lb_config_index_name(cfg, i)) >= 0) {
		/* The whole text is read again for this error's own words and place. */
		lb_config_err(c, "duplicate service name \"%s\" (also services[%d])",
			      cfg->services[i].name, dup);
	}
}

/* Reports vip, which overlaps other, at vip's path, naming other's. */
static void vip_clash(void *arg, const struct lb_vipmap_vip *vip, const struct lb_vipmap_vip *other)
{
	struct lb_config_ctx *c = arg;
	const struct lb_service_conf *svc = &c->cfg->services[vip->service];
	const struct lb_service_conf *o = &c->cfg->services[other->service];
	unsigned int both = vip->protocols & other->protocols;
	char a[LB_ADDR_STRLEN + 16], b[LB_ADDR_STRLEN + 16], who[LB_CONFIG_NAME_MAX + 16];
	/* The path is at "services" already. */
	size_t saved = lb_config_path_index(c, vip->service);
	/* Which protocol clashes, once there is more than TCP to tell apart. */
	bool say = (svc->protocols | o->protocols) != LB_PROTO_TCP;

	lb_config_path_key(c, "vips");
	lb_config_path_index(c, vip->index);
	describe_service(c, other->service, who, sizeof(who));
	lb_config_vip_format(svc, vip->index, a, sizeof(a));
	lb_config_vip_format(o, other->index, b, sizeof(b));
	if (!strcmp(a, b))
		lb_config_err(c, "%s already used by %s (services[%u].vips[%u])%s%s", a, who,
			      other->service, other->index, say ? " for " : "",
			      say ? proto_names[both] : "");
	else
		lb_config_err(c, "%s overlaps %s of %s (services[%u].vips[%u])%s%s", a, b, who,
			      other->service, other->index, say ? " for " : "",
			      say ? proto_names[both] : "");
	lb_config_path_pop(c, saved);
}

/* Every service's VIPs in one map, each checked against all others. */
static void build_vipmap(struct lb_config_ctx *c)
{
	struct lb_config *cfg = c->cfg;
	struct lb_vipmap_vip *all;
	size_t n = 0, size;

	for (size_t i = 0; i < cfg->n_services; i++)
		n += cfg->services[i].n_vips;
	/* 5 MB at 100,000 VIPs, gone before the workers are forked. */
	size = (n ? n : 1) * sizeof(*all);
	all = lb_bigmem_alloc(size, true);
	if (!all) {
		lb_config_oom(c);
		return;
	}
	n = 0;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		for (size_t k = 0; k < svc->n_vips; k++) {
			int family = svc->vips[k].sa.sa_family;

			/* Not parsed: its error is reported already. */
			if (family != AF_INET && family != AF_INET6)
				continue;
			all[n++] = (struct lb_vipmap_vip){
				.addr = svc->vips[k], .plen = svc->vip_plen[k],
				.port_last = svc->vip_port_last[k], .protocols = svc->protocols,
				.service = (uint32_t)i, .index = (uint32_t)k,
			};
		}
	}
	cfg->vipmap = lb_vipmap_build(all, n, vip_clash, c);
	if (!cfg->vipmap)
		lb_config_oom(c);
	lb_bigmem_free(all, size);
}

void lb_config_parse_services(struct lb_config_ctx *c, json_t *arr)
{
	struct lb_config *cfg = c->cfg;
	size_t i, saved;
	json_t *v;

	cfg->services = lb_config_alloc_array(c, arr, sizeof(*cfg->services));
	if (!cfg->services)
		return;
	/* At most half full: a name is found in a probe or two. */
	for (cfg->by_name_mask = 1; cfg->by_name_mask < 2 * json_array_size(arr);)
		cfg->by_name_mask <<= 1;
	cfg->by_name = malloc(cfg->by_name_mask * sizeof(*cfg->by_name));
	if (!cfg->by_name) {
		lb_config_oom(c);
		return;
	}
	memset(cfg->by_name, 0xff, cfg->by_name_mask * sizeof(*cfg->by_name));
	cfg->by_name_mask--;
	c->services = arr;
	json_array_foreach(arr, i, v) {
		cfg->n_services = i + 1;
		saved = lb_config_path_index(c, i);
		if (c->source && i < c->source->n_spans && c->source->spans[i].from != UINT32_MAX)
			copy_service(c, i, &c->prev->services[c->source->spans[i].from]);
		else
			parse_service_at(c, i, v);
		lb_config_path_pop(c, saved);
	}
	build_vipmap(c);
}

/*
 * services[si].backends[bi].address against what only the whole config
 * tells: lb's own VIPs and intercept listener (a connect to either comes
 * back into lb, and the client waits for the connect timeout), or another
 * loopback address (lb connects from the client's address, and replies
 * from loopback never leave this host).
 */
static void check_backend_target(struct lb_config_ctx *c, size_t si, size_t bi)
{
	const struct lb_config *cfg = c->cfg;
	const union lb_sockaddr *a = &cfg->services[si].backends[bi].addr;
	char text[LB_ADDR_STRLEN], who[LB_CONFIG_NAME_MAX + 16];
	const struct lb_vipmap_vip *v = NULL;

	/*
	 * A VIP, or inside a VIP's prefix and ports, for a protocol the
	 * service connects with: one lookup, not a scan of every VIP.
	 */
	for (unsigned int p = LB_PROTO_TCP; !v && p <= LB_PROTO_UDP && cfg->vipmap; p <<= 1)
		if (cfg->services[si].protocols & p)
			v = lb_vipmap_find(cfg->vipmap, p, a);
	if (!v && addr_classify(a) != ADDR_LOOPBACK)
		return;
	/* Only for the error: 30,000 backends formatted for nothing cost 6 ms. */
	lb_addr_format(a, text, sizeof(text));
	if (v) {
		describe_service(c, v->service, who, sizeof(who));
		if (lb_config_vip_single(&cfg->services[v->service], v->index))
			lb_config_err(c, "%s is a VIP of %s (services[%u].vips[%u]): lb cannot be "
				      "its own backend", text, who, v->service, v->index);
		else
			lb_config_err(c, "%s is inside a VIP of %s (services[%u].vips[%u]): lb "
				      "cannot be its own backend", text, who, v->service, v->index);
		return;
	}
	if (lb_addr_port(a) == cfg->intercept.port &&
	    (a->sa.sa_family == AF_INET ? ntohl(a->in.sin_addr.s_addr) == INADDR_LOOPBACK
					: IN6_IS_ADDR_LOOPBACK(&a->in6.sin6_addr)))
		lb_config_err(c, "%s is lb's own intercept listener (intercept.port %u): lb cannot "
			      "be its own backend", text, (unsigned int)cfg->intercept.port);
	else
		lb_config_err(c, "%s is a loopback address: lb connects from the client's address, "
			      "and replies from loopback never leave this host", text);
}

/*
 * Weight 0 takes no new clients: with every backend (of a VIP's family)
 * at 0 the service refuses all its clients. Workable, since lbctl can
 * raise a weight, but rarely meant: a warning.
 */
static void check_weights(struct lb_config_ctx *c, const struct lb_service_conf *svc)
{
	size_t i, j, saved, n[2] = { 0, 0 }, live[2] = { 0, 0 };
	int family;

	for (j = 0; j < svc->n_backends; j++) {
		family = svc->backends[j].addr.sa.sa_family;
		if (family != AF_INET && family != AF_INET6)
			return;		/* an address error was reported */
		n[family == AF_INET6]++;
		live[family == AF_INET6] += svc->backends[j].weight > 0;
	}
	if (!svc->n_backends)
		return;
	if (!live[0] && !live[1]) {
		saved = lb_config_path_key(c, "backends");
		lb_config_warn(c, "every backend has weight 0: the service refuses every client "
			       "until a weight is raised (lbctl weight)");
		lb_config_path_pop(c, saved);
		return;
	}
	for (i = 0; i < svc->n_vips; i++) {
		family = svc->vips[i].sa.sa_family;
		if ((family != AF_INET && family != AF_INET6) || !n[family == AF_INET6] ||
		    live[family == AF_INET6])
			continue;
		saved = lb_config_path_key(c, "vips");
		lb_config_path_index(c, i);
		lb_config_warn(c, "every %s backend has weight 0: clients of this VIP are refused "
			       "until a weight is raised (lbctl weight)", family_name(family));
		lb_config_path_pop(c, saved);
	}
}

void lb_config_check_services(struct lb_config_ctx *c)
{
	const struct lb_config *cfg = c->cfg;
	size_t i, j, root, svc_at, be_at;

	root = lb_config_path_key(c, "services");
	for (i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		svc_at = lb_config_path_index(c, i);
		for (j = 0; j < svc->n_backends; j++) {
			int family = svc->backends[j].addr.sa.sa_family;

			if (family != AF_INET && family != AF_INET6)
				continue;
			be_at = lb_config_path_key(c, "backends");
			lb_config_path_index(c, j);
			lb_config_path_key(c, "address");
			check_backend_target(c, i, j);
			lb_config_path_pop(c, be_at);
		}
		check_weights(c, svc);
		lb_config_path_pop(c, svc_at);
	}
	lb_config_path_pop(c, root);
}

void lb_config_service_free(struct lb_service_conf *svc)
{
	free(svc->name);
	free(svc->vips);
	free(svc->vip_plen);
	free(svc->vip_port_last);
	free(svc->backends);
	free(svc->health.path);
	free(svc->health.host);
	lb_config_clients_free(&svc->clients);
	free(svc->quic.by_server_id);
}

/* A copy of n bytes at p in *out; false when memory ran out. NULL copies as NULL. */
static bool copy_bytes(void *out, const void *p, size_t n)
{
	void *q = NULL;

	if (p) {
		q = malloc(n ? n : 1);
		if (!q)
			return false;
		memcpy(q, p, n);
	}
	memcpy(out, &q, sizeof(q));
	return true;
}

bool lb_config_service_copy(struct lb_service_conf *dst, const struct lb_service_conf *src)
{
	const struct lb_clients_conf *cl = &src->clients;

	*dst = *src;
	/* Every pointer the service owns, so that a failure part-way frees only copies. */
	dst->name = dst->health.path = dst->health.host = NULL;
	dst->vips = NULL;
	dst->vip_plen = NULL;
	dst->vip_port_last = NULL;
	dst->backends = NULL;
	dst->clients.allow = dst->clients.deny = NULL;
	dst->quic.by_server_id = NULL;
	if (copy_bytes(&dst->name, src->name, src->name ? strlen(src->name) + 1 : 0) &&
	    copy_bytes(&dst->vips, src->vips, src->n_vips * sizeof(*src->vips)) &&
	    copy_bytes(&dst->vip_plen, src->vip_plen, src->n_vips * sizeof(*src->vip_plen)) &&
	    copy_bytes(&dst->vip_port_last, src->vip_port_last,
		       src->n_vips * sizeof(*src->vip_port_last)) &&
	    copy_bytes(&dst->backends, src->backends, src->n_backends * sizeof(*src->backends)) &&
	    copy_bytes(&dst->health.path, src->health.path,
		       src->health.path ? strlen(src->health.path) + 1 : 0) &&
	    copy_bytes(&dst->health.host, src->health.host,
		       src->health.host ? strlen(src->health.host) + 1 : 0) &&
	    copy_bytes(&dst->clients.allow, cl->allow, cl->n_allow * sizeof(*cl->allow)) &&
	    copy_bytes(&dst->clients.deny, cl->deny, cl->n_deny * sizeof(*cl->deny)) &&
	    /* Allocated for every backend, filled for those with a server ID. */
	    copy_bytes(&dst->quic.by_server_id, src->quic.by_server_id,
		       src->n_backends * sizeof(*src->quic.by_server_id)))
		return true;
	lb_config_service_free(dst);
	/* Freed: the config that holds dst frees it again, as an empty service. */
	memset(dst, 0, sizeof(*dst));
	return false;
}
