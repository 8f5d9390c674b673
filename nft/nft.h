/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_H
#define LB_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
/*
 * union lb_nft_addr needs <netinet/in.h>, which clashes with <linux/in.h>
 * unless it comes first: a file that includes <linux/netfilter.h> before
 * this header includes <netinet/in.h> before both (nft/expr.c).
 */
#include <netinet/in.h>
#include <sys/socket.h>

struct mnl_nlmsg_batch;

/*
 * A VIP's address and port, IPv4 or IPv6: 28 bytes where a
 * sockaddr_storage takes 128 (every reload writes and walks 100,000 of
 * them). sa.sa_family tells which.
 */
union lb_nft_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/*
 * A VIP that is a prefix or a port range: every address from first's to
 * last's (a prefix's first and last), every port from first's to last's.
 */
struct lb_nft_range {
	union lb_nft_addr first, last;
};

/* A bucket's verdict that keeps the packet on this gateway (nft/owner.c). */
#define LB_NFT_OWNER_HERE 0xffffu

/*
 * Gateway ownership (docs/scale-out.md): which gateway of the tier each of
 * B buckets of client addresses and ports goes to, in two verdict maps,
 * and the chains that forward packets there by mark, tagged with a DSCP
 * code point so the receiver knows a forwarded packet from a client's.
 */
struct lb_nft_owner {
	uint32_t buckets;		/* B: a packet's bucket is jhash(saddr . sport) % B */
	uint32_t seed;			/* of that hash: the same on every gateway */
	uint8_t dscp_to_owner;		/* tags a packet forwarded to its bucket's owner */
	uint8_t dscp_second_chance;	/* ... and one forwarded to its previous owner */
	size_t n_peers;
	size_t self;			/* this gateway: no chains of its own */
	const char *const *names;	/* per peer: its chains are to_NAME and chance_NAME */
	const uint32_t *marks;		/* per peer: the mark that routes a packet to it */
	/*
	 * Per bucket, a peer index or LB_NFT_OWNER_HERE: to[b], where a
	 * packet from a client goes when no socket here has it; chance[b],
	 * where one forwarded here by a peer goes when no socket has it and
	 * it starts no connection.
	 */
	const uint16_t *to;
	const uint16_t *chance;
};

/* An address prefix: family AF_INET or AF_INET6, bits past len zero. */
struct lb_nft_prefix {
	int family;
	uint8_t addr[16];		/* network order */
	uint8_t len;
};

/*
 * What one service lets each client do, checked before tproxy (nft/clients.c):
 * its VIPs jump to chain clients_ID, which drops (or rejects) clients outside
 * allow or inside deny, and those that open new connections or flows faster
 * than rate (a meter: one token bucket per client address or prefix).
 */
struct lb_nft_clients {
	uint32_t id;			/* names its chain, sets and counters: the service's index */
	const union lb_nft_addr *vips;	/* TCP, with port */
	size_t n_vips;
	const union lb_nft_addr *udp_vips;
	size_t n_udp_vips;
	const struct lb_nft_range *ranges;	/* TCP prefix and port-range VIPs */
	size_t n_ranges;
	const struct lb_nft_range *udp_ranges;
	size_t n_udp_ranges;
	const struct lb_nft_prefix *allow;	/* NULL: no allow list (everyone not denied) */
	size_t n_allow;
	const struct lb_nft_prefix *deny;
	size_t n_deny;			/* none: no deny list */
	int reset;			/* refuse with a TCP reset / ICMP port unreachable, not a drop */
	uint32_t rate;			/* new connections or flows a second per key; 0: no meter */
	uint32_t burst;
	uint8_t prefix4, prefix6;	/* the meter's key: the client's address cut to these */
	uint32_t size;			/* keys the meter holds at once */
};

/* What lb intercepts: everything the ruleset is built from. */
struct lb_nft_spec {
	const char *table;		/* table name, family inet */
	const char *retire;		/* another table to delete in the same transaction, or NULL */
	uint32_t mark;			/* set on intercepted and on lb-socket packets */
	uint16_t port;			/* tproxy target port, on 127.0.0.1 and ::1 */
	const union lb_nft_addr *vips;	/* TCP: AF_INET / AF_INET6 with port */
	size_t n_vips;
	const union lb_nft_addr *udp_vips;	/* UDP, likewise; none: no UDP rules */
	size_t n_udp_vips;
	const struct lb_nft_range *ranges;	/* TCP prefixes and port ranges */
	size_t n_ranges;
	const struct lb_nft_range *udp_ranges;	/* UDP, likewise */
	size_t n_udp_ranges;
	const struct lb_nft_clients *clients;	/* services with per-client rules */
	size_t n_clients;
	const struct lb_nft_owner *owner;	/* NULL: no ownership chains */
	/*
	 * Optional (lb_nft_keys_alloc): keeps the sorted keys of the VIP sets
	 * once a build made them, for the next reload's diff against this
	 * spec. Its VIPs must not change while it is set.
	 */
	struct lb_nft_keys *keys;
};

struct lb_nft_keys *lb_nft_keys_alloc(void);
void lb_nft_keys_free(struct lb_nft_keys *keys);

/*
 * Appends to batch the messages of one transaction that replaces table
 * spec->table (family inet) with lb's ruleset, whether or not it existed:
 * add table, delete table, then table, sets, elements, chain and rules.
 * With spec->retire (a table lb used before, e.g. under an old name), that
 * table is added and deleted first, so the switch is one transaction too.
 * The caller wraps the batch in begin/end messages. *seq is advanced for
 * every message. Pure: no socket, no root. Returns 0 or -errno.
 */
int lb_nft_ruleset_build(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			 uint32_t *seq);

/*
 * Whether a and b differ in their VIPs' elements at most: then a reload
 * from a to b is lb_nft_ruleset_diff_build's few element changes, not a
 * new table.
 */
bool lb_nft_ruleset_same_shape(const struct lb_nft_spec *a, const struct lb_nft_spec *b);

/*
 * Appends the messages that turn the VIP sets of old (installed) into
 * next's, sets of the same shape both: deletes, then adds, many elements a
 * message. Counts them in *added and *removed. Returns 0 or -errno.
 */
int lb_nft_ruleset_diff_build(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
			      struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *added,
			      size_t *removed);

/*
 * Appends the messages that turn the ownership maps of old (installed)
 * into next's, rulesets of the same shape: per map, the changed buckets'
 * elements deleted and added again with their new verdicts. *changed
 * counts them. Nothing without ownership. Returns 0 or -errno.
 */
int lb_nft_ruleset_owner_diff_build(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
				    struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *changed);

/* Writes the ruleset in nft(8) syntax, as `nft list table` would show it. */
int lb_nft_ruleset_print(const struct lb_nft_spec *spec, FILE *out);

/*
 * Installs the ruleset in one netlink transaction in the current network
 * namespace. On failure returns -errno and writes to err a one-line message
 * naming the object that failed and what the errno means here (no
 * privilege, kernel lacks tproxy/socket support, ...).
 */
int lb_nft_apply(const struct lb_nft_spec *spec, char *err, size_t errlen);

/*
 * Changes the installed ruleset of old into spec's, rulesets of the same
 * shape (lb_nft_ruleset_same_shape), by its VIP element changes alone, in
 * one transaction; nothing when there are none. *added and *removed count
 * them. Returns 0 or -errno with err as for lb_nft_apply().
 */
int lb_nft_apply_diff(const struct lb_nft_spec *old, const struct lb_nft_spec *spec, char *err,
		      size_t errlen, size_t *added, size_t *removed);

/*
 * Changes the installed ownership maps of old into spec's (rulesets of the
 * same shape) in one transaction; nothing when no bucket changed.
 * *changed counts the map entries that did. Returns 0 or -errno with err
 * as for lb_nft_apply().
 */
int lb_nft_apply_owner(const struct lb_nft_spec *old, const struct lb_nft_spec *spec, char *err,
		       size_t errlen, size_t *changed);

/* The ownership counters, in this order (counter objects of lb's table). */
enum {
	LB_NFT_OWNER_TO_OWNER,		/* packets forwarded to their bucket's owner */
	LB_NFT_OWNER_SECOND_CHANCE,	/* ... to its previous owner */
	LB_NFT_OWNER_DROPPED,		/* second chances no socket here took */
	LB_NFT_OWNER_COUNTERS
};
extern const char *const lb_nft_owner_counters[LB_NFT_OWNER_COUNTERS];

/* Deletes table `table` (family inet); a missing table is not an error. */
int lb_nft_remove(const char *table, char *err, size_t errlen);

/* The service id gateway ownership's counters are reported with. */
#define LB_NFT_COUNTER_OWNER UINT32_MAX

/*
 * The named counters of table `table`: calls cb for each of clients
 * service id with what its deny lists ("deny") and its rate ("rate")
 * dropped or refused so far (packets), and for each ownership counter
 * with id LB_NFT_COUNTER_OWNER and its name (lb_nft_owner_counters).
 * Returns 0 (a missing table too: nothing is reported) or -errno with err
 * as for lb_nft_apply().
 */
int lb_nft_counters_read(const char *table,
			 void (*cb)(void *arg, uint32_t id, const char *what, uint64_t packets),
			 void *arg, char *err, size_t errlen);

/* Policy routing that delivers marked packets locally. */
struct lb_nft_route_spec {
	uint32_t mark;
	uint32_t table;
	uint32_t priority;
	int ipv4, ipv6;			/* which families to configure */
};

/*
 * Adds, for each family, rule "fwmark MARK lookup TABLE pref PRIORITY" and
 * route "local default dev lo table TABLE". Idempotent: existing identical
 * entries are replaced. Returns 0 or -errno with err as for lb_nft_apply().
 */
int lb_nft_route_apply(const struct lb_nft_route_spec *spec, char *err, size_t errlen);

/* Removes what lb_nft_route_apply() added; missing entries are fine. */
int lb_nft_route_remove(const struct lb_nft_route_spec *spec, char *err, size_t errlen);

/*
 * Removes only the rules of spec: its table's local route stays, for a
 * rule of another mark or priority that looks up the same table.
 */
int lb_nft_route_remove_rule(const struct lb_nft_route_spec *spec, char *err, size_t errlen);

/*
 * Gateway ownership: packets marked for a peer go to it, the VIP still
 * their destination. One per peer but this gateway.
 */
struct lb_nft_fwd_route {
	uint32_t mark;			/* rule "fwmark MARK lookup TABLE" */
	uint32_t table;			/* holding "default via" the peer's address */
	const struct sockaddr *via4;	/* the peer's IPv4 address; NULL: no IPv4 route */
	const struct sockaddr *via6;	/* likewise IPv6 */
};

/*
 * Adds, for each of routes[0..n) and each family it has an address of,
 * route "default via ADDR table TABLE" (replacing what the table had) and
 * rule "fwmark MARK lookup TABLE pref PRIORITY". Returns 0 or -errno with
 * err as for lb_nft_apply().
 */
int lb_nft_fwd_apply(const struct lb_nft_fwd_route *routes, size_t n, uint32_t priority,
		     char *err, size_t errlen);

/* Removes what lb_nft_fwd_apply() added; missing entries are fine. */
int lb_nft_fwd_remove(const struct lb_nft_fwd_route *routes, size_t n, uint32_t priority,
		      char *err, size_t errlen);

/* Removes only the rules of routes: their tables' routes stay, for other rules. */
int lb_nft_fwd_remove_rule(const struct lb_nft_fwd_route *routes, size_t n, uint32_t priority,
			   char *err, size_t errlen);

#endif
