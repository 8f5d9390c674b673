/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_RULES_OWNER_H
#define LB_RULES_OWNER_H

#include <stdio.h>
#include <sys/socket.h>

#include "lb/config.h"
#include "lb/rules.h"
#include "nft/nft.h"

/*
 * Gateway ownership's part of lb's rules (lb/rules.c only): the ownership
 * chains' spec for nft/owner.c and the policy routes to the peers. All of
 * it is laid out from the config and the bucket table's verdicts.
 */
struct lb_rules_owner_spec {
	struct lb_nft_owner owner;	/* what the nft spec's owner points to */
	const char **names;		/* owned array; the names are the config's */
	uint32_t *marks;		/* owned; per peer */
	uint16_t *to, *chance;		/* owned; per bucket */
	struct lb_nft_fwd_route *fwd;	/* owned; one per peer but this gateway */
	size_t n_fwd;
	struct sockaddr_storage *fwd_addrs;	/* owned; two per peer, what fwd points to */
	uint32_t priority;		/* of the peers' fwmark rules: intercept.rule_priority */
};

/*
 * Lays out os from cfg (which has an ownership block), the buckets'
 * verdicts from own (NULL, or of another bucket count: every bucket here).
 * Returns 0 or -ENOMEM (then os is to be finished all the same).
 */
int lb_rules_owner_spec_init(struct lb_rules_owner_spec *os, const struct lb_config *cfg,
			     const struct lb_rules_owner *own);

/* Frees what os owns and zeroes it; a zeroed os is fine. */
void lb_rules_owner_spec_fini(struct lb_rules_owner_spec *os);

/*
 * Removes the peer forwarding of old that next (NULL: none) does not have,
 * per family: a table next also routes through keeps its route and loses
 * only an old rule of another mark or priority. Errors are logged.
 */
void lb_rules_owner_fwd_retire(const struct lb_rules_owner_spec *old,
			       const struct lb_rules_owner_spec *next);

/* The peer routes and rules in ip(8) syntax (for lb -t). */
void lb_rules_owner_print(const struct lb_rules_owner_spec *os, FILE *out);

#endif
