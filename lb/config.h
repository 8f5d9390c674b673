/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_CONFIG_H
#define LB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lb/addr.h"
#include "lb/prefix.h"
#include "lb/quic.h"

enum lb_sched {
	LB_SCHED_ROUNDROBIN,		/* smooth weighted round robin */
	LB_SCHED_LEASTCONN,		/* fewest active / weight, over all workers */
	LB_SCHED_MAGLEV,		/* Maglev consistent hash of the client */
	LB_SCHED_RANDOM2,		/* power of two random choices */
};

/* What a service carries: either or both. */
enum lb_proto {
	LB_PROTO_TCP = 1 << 0,
	LB_PROTO_UDP = 1 << 1,
};

enum lb_check_type {
	LB_CHECK_NONE,			/* no "health" block: passive checks only */
	LB_CHECK_TCP,
	LB_CHECK_HTTP,
};

struct lb_health_conf {
	enum lb_check_type type;
	unsigned int interval_ms;	/* 2000 */
	unsigned int timeout_ms;	/* 1000 */
	unsigned int rise;		/* 2: successes that bring a down backend up */
	unsigned int fall;		/* 3: failures (active or passive) that take it down */
	uint16_t port;			/* 0: the backend's own port */
	char *path;			/* http: "/" */
	char *host;			/* http: Host header; NULL: the backend address */
	unsigned int expect_min, expect_max;	/* http: 200..399 */
};

struct lb_backend_conf {
	union lb_sockaddr addr;
	unsigned int weight;		/* 0: no new connections */
	unsigned int max_conns;		/* 0: unlimited */
	bool has_server_id;		/* QUIC-LB: the server ID its connection IDs carry */
	uint8_t server_id[LB_QUIC_LB_SID_MAX];	/* quic.lb.server_id_len octets */
};

/* QUIC-aware routing of a UDP service ("quic", docs/config.md). */
struct lb_quic_conf {
	bool enabled;
	uint8_t server_cid_len;		/* the CIDs backends issue: a short header's DCID length */
	bool has_lb;			/* "lb": backends encode QUIC-LB server IDs */
	struct lb_quic_lb_conf lb;	/* encode_len false: the low 5 bits are not checked */
	uint32_t *by_server_id;		/* indexes of the backends with a server ID, sorted by it */
	size_t n_server_ids;
};

/*
 * What a service lets each client do (its "clients" object, docs/config.md):
 * kept out of lb by nftables before it accepts anything (lists, rate), or
 * reset by the workers (max_conns).
 */
struct lb_clients_conf {
	struct lb_prefix *allow;	/* NULL: every client not denied; else only these */
	size_t n_allow;
	struct lb_prefix *deny;		/* refused even when allowed */
	size_t n_deny;
	bool deny_reset;		/* refused with a reset (TCP) or port unreachable (UDP) */
	unsigned int rate;		/* new connections or flows a second per client; 0: none */
	unsigned int burst;		/* taken at once above rate (rate) */
	unsigned int rate_prefix4;	/* IPv4 clients in one such prefix share a budget (32) */
	unsigned int rate_prefix6;	/* likewise for IPv6 (128) */
	unsigned int rate_table_size;	/* clients the kernel keeps a budget for at once */
	unsigned int max_conns;		/* open TCP connections per client address; 0: any */
};

struct lb_service_conf {
	char *name;
	/*
	 * vips[k] is a prefix's first address (one address: the prefix is it
	 * alone) and the first port of a range; vip_plen[k] its prefix length
	 * (32 or 128 for one address), vip_port_last[k] the range's last port.
	 */
	union lb_sockaddr *vips;
	uint8_t *vip_plen;
	uint16_t *vip_port_last;
	size_t n_vips;
	unsigned int protocols;		/* enum lb_proto bits: LB_PROTO_TCP by default */
	unsigned int udp_idle_timeout_ms;	/* a flow with no datagram either way ends */
	unsigned int udp_responses;	/* a flow ends after this many replies; 0: never */
	enum lb_sched sched;
	struct lb_backend_conf *backends;
	size_t n_backends;
	unsigned int connect_timeout_ms;
	unsigned int client_idle_timeout_ms;	/* nothing read from or written to the client */
	unsigned int server_idle_timeout_ms;	/* likewise on the backend side */
	unsigned int queue_timeout_ms;	/* wait for a free slot when all are at max_conns */
	unsigned int retries;		/* further backends tried after a failed connect */
	unsigned int socket_buffer_bytes;	/* SO_SNDBUF/SO_RCVBUF of both sockets; 0: autotuned */
	bool fastopen;			/* the client's first bytes go in the SYN to the backend */
	unsigned int fastopen_wait_ms;	/* ... waited for this long at most */
	int hash_port;			/* maglev: hash address and port, not address alone */
	unsigned int maglev_size;	/* maglev: prime lookup table size */
	struct lb_health_conf health;
	struct lb_clients_conf clients;
	struct lb_quic_conf quic;
};

/* Peers a tier may have: the owner table keeps them in 64-bit masks. */
#define LB_OWNER_PEERS_MAX 64

/* One gateway of the tier (ownership.peers). */
struct lb_owner_peer {
	char *name;
	/* addrs[0]: its heartbeats' address; at most one address per family. */
	union lb_sockaddr addrs[2];
	size_t n_addrs;
};

/* The peer's address of family (port 0), or NULL when it has none. */
const union lb_sockaddr *lb_config_peer_addr(const struct lb_owner_peer *p, int family);

/* Most workers a config may ask for, and most connections it may say it wants. */
#define LB_CONFIG_WORKERS_MAX 256
#define LB_CONFIG_CONNECTIONS_MAX 1000000000

struct lb_config {
	unsigned int workers;		/* 0 in the file means "number of CPUs" */
	bool workers_auto;		/* "auto": sized from connections and the open-file limit */
	unsigned int connections;	/* concurrent connections wanted; 0: not said */
	char *control_path;
	unsigned int control_mode;	/* socket file mode, 0600 */
	char *control_group;		/* group owning the socket; NULL: lb's own */
	struct {
		uint16_t port;		/* tproxy listener port on loopback */
		uint32_t mark;
		char *table;		/* nft table name, family inet */
		uint32_t route_table;
		uint32_t rule_priority;	/* ip rule preference */
	} intercept;
	struct {
		bool enabled;		/* an "announce" block is present */
		uint32_t table;		/* routing table of the VIP routes */
		uint8_t protocol;	/* their rtm_protocol, 250 */
		char *device;		/* TUN device they go through, "lb-announce" */
		unsigned int settle_ms;	/* a drain lasts at least this after the withdrawal */
	} announce;
	/*
	 * Consistent ownership across a tier of gateways ("ownership",
	 * docs/scale-out.md): the peers, which one is this gateway, how they
	 * hear of each other, and how packets travel between them.
	 */
	struct {
		bool enabled;
		struct lb_owner_peer *peers;	/* in config order: a peer's index is its id */
		size_t n_peers;
		size_t self;			/* this gateway's index in peers */
		uint16_t port;			/* heartbeats, UDP, on each peer's first address */
		unsigned int interval_ms;	/* between heartbeats */
		unsigned int dead_ms;		/* a peer silent this long leaves the table */
		uint32_t buckets;		/* B, prime */
		uint32_t mark;			/* packets forwarded to peer k carry mark + k */
		uint32_t table;			/* ... and are routed by table + k */
		uint8_t dscp_to_owner;		/* what a forwarded packet carries: to its owner */
		uint8_t dscp_second_chance;	/* ... or a second chance at its previous owner */
	} ownership;
	/* The read-only HTTP management listener (docs/monitoring.md); off unless "http" is set. */
	struct {
		bool enabled;
		union lb_sockaddr listen;
		struct lb_prefix *allow;	/* clients outside these get 403 */
		size_t n_allow;
		unsigned int max_clients;	/* connections at once (1024) */
		unsigned int timeout_ms;	/* a connection idle this long is closed (10000) */
	} http;
	unsigned int drain_timeout_ms;
	unsigned int watchdog_ms;	/* a worker silent this long is replaced; 0: never */
	unsigned int log_level;		/* enum lb_log_level (lb/log.h), LB_LOG_INFO */
	bool log_syslog;		/* log to syslog (daemon) instead of stderr */
	bool access_log;		/* one line per proxied connection when it ends */
	struct lb_service_conf *services;
	size_t n_services;
	struct lb_vipmap *vipmap;	/* every VIP, for lookups by address */
	/* Service indexes by name (open addressing, UINT32_MAX free), for lookups by name. */
	uint32_t *by_name;
	size_t by_name_mask;
	char *user;			/* workers run as this user, "nobody" ... */
	char *group;			/* ... and group, "nogroup" */
	uid_t uid;			/* both resolved when the config is read */
	gid_t gid;
	/*
	 * Settings that load but look wrong (every weight 0...): owned,
	 * one "json.path: problem" line each ending in '\n'; NULL when none.
	 */
	char *warnings;
	/* The JSON it was read from, when kept by lb_config_load_log(); NULL otherwise. */
	struct json_t *tree;
	/*
	 * Its text and each service's place in it, kept by
	 * lb_config_load_source(), lb_config_reload() and _log() for the next
	 * reload to compare with; NULL otherwise. The master's alone: a worker
	 * has no mapping of the text (lb/bigmem.h).
	 */
	struct lb_config_source *source;
};

/*
 * Parses and validates a JSON config. On success returns an owned config
 * (with cfg->warnings) and sets *errors to NULL. On failure returns NULL and sets *errors to an
 * owned string holding one "json.path: problem" line per error found, each
 * ending in '\n' (caller frees).
 */
struct lb_config *lb_config_parse(const char *text, char **errors);

/* Same as lb_config_parse() on the contents of the file at path; an
 * unreadable file yields "PATH: strerror" as the error. */
struct lb_config *lb_config_load(const char *path, char **errors);

/*
 * lb_config_load() keeping the text (cfg->source), for lb to start with:
 * its first reload then reads again only the services that changed.
 */
struct lb_config *lb_config_load_source(const char *path, char **errors);

/*
 * lb_config_load() for a running lb: each error line is logged after
 * prefix, and msg gets "PATH: " and all of them joined by ';', cut to len,
 * for a one-line status or reply. The config keeps its JSON tree until
 * lb_config_take_tree(), lb_config_drop_tree() or lb_config_free():
 * freeing the tree of 100,000 VIPs takes 15-20 ms, which a reload can
 * spend on another thread while it applies the config.
 */
struct lb_config *lb_config_load_log(const char *path, const char *prefix, char *msg, size_t len);

/*
 * lb_config_load_log() for a reload of running (which may be NULL): the
 * services whose text is unchanged, byte for byte, since running was
 * loaded this way are copied from it, not read again; each other one is
 * parsed. The result is the config lb_config_load_log() would return,
 * with the same warnings; on any error the whole text is read again, so
 * errors are the same too.
 */
struct lb_config *lb_config_reload_log(const char *path, const struct lb_config *running,
				       const char *prefix, char *msg, size_t len);

/* lb_config_reload_log() with errors as lb_config_load() gives them, and no tree kept. */
struct lb_config *lb_config_reload(const char *path, const struct lb_config *running,
				   char **errors);

/* How many of cfg's services lb_config_reload_log() copied from the running config. */
size_t lb_config_copied(const struct lb_config *cfg);

/* A deep copy of src into dst; false (dst left empty) when memory ran out. */
bool lb_config_service_copy(struct lb_service_conf *dst, const struct lb_service_conf *src);

/* Frees what the parser (or lb_config_service_copy) allocated for one service. */
void lb_config_service_free(struct lb_service_conf *svc);

/*
 * Frees what cfg keeps for the next reload (its text): a config no longer
 * the running one is never compared with again.
 */
void lb_config_drop_source(struct lb_config *cfg);

/* Frees cfg's JSON tree, if it kept one (nothing reads it after the load). */
void lb_config_drop_tree(struct lb_config *cfg);

/* cfg's JSON tree, now the caller's to free with lb_config_tree_free(); NULL if none. */
struct json_t *lb_config_take_tree(struct lb_config *cfg);

/* Frees a tree from lb_config_take_tree(); NULL is fine. Safe on any thread. */
void lb_config_tree_free(struct json_t *tree);

void lb_config_free(struct lb_config *cfg);

/* The index of the service named name, or -1: one hash probe or a few. */
long lb_config_service_index(const struct lb_config *cfg, const char *name);

/* The TCP service whose VIP equals addr (address and port), or NULL. */
const struct lb_service_conf *lb_config_find_service(const struct lb_config *cfg,
						     const union lb_sockaddr *addr);

/* The service carrying proto whose VIP equals addr, or NULL. */
const struct lb_service_conf *lb_config_find_service_proto(const struct lb_config *cfg,
							   const union lb_sockaddr *addr,
							   enum lb_proto proto);

/* The index of svc's backend of family whose QUIC-LB server ID is sid, or -1. */
int lb_config_find_server_id(const struct lb_service_conf *svc, const uint8_t *sid, int family);

/* True when services[s].vips[k] is a single address and port. */
bool lb_config_vip_single(const struct lb_service_conf *svc, size_t k);

/* Formats services[s].vips[k]: "198.18.128.0/20:80", "198.18.100.1:8000-8999". */
const char *lb_config_vip_format(const struct lb_service_conf *svc, size_t k, char *buf,
				 size_t len);

/* True when a service carrying proto has a VIP of that family. */
bool lb_config_has_vip(const struct lb_config *cfg, enum lb_proto proto, int family);

/* True when svc has per-client rules in nftables (lists or a rate limit). */
bool lb_config_clients_nft(const struct lb_service_conf *svc);

/* True when the config has a VIP of that family (AF_INET / AF_INET6). */
bool lb_config_has_family(const struct lb_config *cfg, int family);

#endif
