/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_H
#define LB_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct mnl_nlmsg_batch;

/*
 * A VIP that is a prefix or a port range: every address from first's to
 * last's (a prefix's first and last), every port from first's to last's.
 */
struct lb_nft_range {
	struct sockaddr_storage first, last;
};

/* What lb intercepts: everything the ruleset is built from. */
struct lb_nft_spec {
	const char *table;		/* table name, family inet */
	const char *retire;		/* another table to delete in the same transaction, or NULL */
	uint32_t mark;			/* set on intercepted and on lb-socket packets */
	uint16_t port;			/* tproxy target port, on 127.0.0.1 and ::1 */
	const struct sockaddr_storage *vips;	/* TCP: AF_INET / AF_INET6 with port */
	size_t n_vips;
	const struct sockaddr_storage *udp_vips;	/* UDP, likewise; none: no UDP rules */
	size_t n_udp_vips;
	const struct lb_nft_range *ranges;	/* TCP prefixes and port ranges */
	size_t n_ranges;
	const struct lb_nft_range *udp_ranges;	/* UDP, likewise */
	size_t n_udp_ranges;
};

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

/* Deletes table `table` (family inet); a missing table is not an error. */
int lb_nft_remove(const char *table, char *err, size_t errlen);

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

#endif
