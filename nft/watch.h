/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_WATCH_H
#define LB_NFT_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nft/nft.h"

/*
 * Kernel notifications that take away what lb_nft_apply() and
 * lb_nft_route_apply() put in place: nftables changes (NFNLGRP_NFTABLES)
 * and policy rules and routes (RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE,
 * RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE). Changes made through this
 * module's own sockets (apply, remove) are never reported: notifications
 * carry the netlink port of the socket that asked for the change.
 */

/* What to look for: the objects apply creates for these specs. */
struct lb_nft_watch_spec {
	const char *table;		/* inet table; NULL: none */
	struct lb_nft_route_spec route;	/* ipv4/ipv6 0: that family is not watched */
};

/* What went missing, as bits. */
enum {
	LB_NFT_GONE_TABLE = 1 << 0,	/* the table, or a chain, rule, set or element in it */
	LB_NFT_GONE_RULE4 = 1 << 1,	/* the fwmark rule, IPv4 */
	LB_NFT_GONE_RULE6 = 1 << 2,
	LB_NFT_GONE_ROUTE4 = 1 << 3,	/* the local default route of the route table, IPv4 */
	LB_NFT_GONE_ROUTE6 = 1 << 4,
	LB_NFT_GONE_UNKNOWN = 1 << 5,	/* notifications were lost: anything may be gone */
};

/* One change, by one process, that took away something of the specs'. */
struct lb_nft_watch_event {
	unsigned int gone;		/* LB_NFT_GONE_* */
	char what[112];			/* the first object, e.g. "table inet lb deleted" */
	unsigned int objects;		/* how many of the specs' objects it touched */
	uint32_t portid;		/* netlink port that asked for it; 0: the kernel */
	uint32_t pid;			/* nftables only: the committing process; 0: not given */
	char comm[16];			/* and its name; "": not given */
};

enum lb_nft_watch_src {
	LB_NFT_WATCH_NFT,		/* NETLINK_NETFILTER */
	LB_NFT_WATCH_ROUTE,		/* NETLINK_ROUTE */
	LB_NFT_WATCH_NSRC,
};

struct lb_nft_watch;

/* An owned watch without sockets (enough for lb_nft_watch_parse()), or NULL. */
struct lb_nft_watch *lb_nft_watch_alloc(void);

/* Closes the sockets; NULL is fine. */
void lb_nft_watch_free(struct lb_nft_watch *w);

/*
 * Opens one non-blocking socket per source, subscribed to its groups, in
 * the current network namespace. Needs CAP_NET_ADMIN (nfnetlink groups,
 * and a receive buffer above rmem_max). Returns 0 or -errno with a
 * one-line reason in err.
 */
int lb_nft_watch_open(struct lb_nft_watch *w, char *err, size_t errlen);

/* The socket of src to poll for input; -1 before lb_nft_watch_open(). */
int lb_nft_watch_fd(const struct lb_nft_watch *w, enum lb_nft_watch_src src);

/*
 * Reads what is queued on src's socket, without blocking, and calls cb
 * for each change to spec's objects. A receive queue overrun is reported
 * as one LB_NFT_GONE_UNKNOWN event. Returns 0 once the queue is empty or
 * after a bounded number of reads (call again when the fd is still
 * readable), or -errno on another socket error.
 */
int lb_nft_watch_read(struct lb_nft_watch *w, enum lb_nft_watch_src src,
		      const struct lb_nft_watch_spec *spec,
		      void (*cb)(void *arg, const struct lb_nft_watch_event *ev), void *arg);

/*
 * Pure: parses len bytes of netlink messages from src as received and
 * calls cb as lb_nft_watch_read() does. nftables changes are reported
 * when their transaction's NFT_MSG_NEWGEN arrives (it names the process),
 * which may be in a later call.
 */
void lb_nft_watch_parse(struct lb_nft_watch *w, enum lb_nft_watch_src src,
			const struct lb_nft_watch_spec *spec, const void *buf, size_t len,
			void (*cb)(void *arg, const struct lb_nft_watch_event *ev), void *arg);

/*
 * Records that this process sends requests to the kernel from netlink
 * port portid of protocol proto (NETLINK_NETFILTER, NETLINK_ROUTE), so
 * notifications of those changes are not reported. apply.c and route.c
 * call it for every socket they open; the last few ports are kept.
 */
void lb_nft_watch_own(int proto, uint32_t portid);

/*
 * The same for a request socket that lives as long as lb (with on) and
 * is never pushed out by newer ones, until it closes (on false). For
 * announce.c's, whose route changes, one a VIP, would otherwise be queued
 * to the watch by the thousand.
 */
void lb_nft_watch_own_kept(int proto, uint32_t portid, bool on);

#endif
