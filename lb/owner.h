/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_OWNER_H
#define LB_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/config.h"

/*
 * The tier's bucket table, pure: which gateway owns each of B buckets
 * (Maglev over the peers that serve) and which owned it before, while that
 * one may still hold connections of the bucket (its "second chance"). Every
 * gateway computes the owners alike from the same membership; the previous
 * owners come from this gateway's own history of the table, and matter
 * only for the buckets it owns: a packet reaches a bucket's owner first,
 * and only the owner gives it a second chance.
 */

/* No peer: a bucket nobody serves (every peer draining), or no previous owner. */
#define LB_OWNER_NONE 0xffffu

struct lb_owner_table {
	uint32_t buckets;
	uint16_t *owner;		/* peer index per bucket, or LB_OWNER_NONE */
	uint16_t *prev;			/* the owner before, while it may hold connections */
	uint16_t *scratch;		/* Maglev's fill of the next table */
};

/* A table of buckets (prime), every bucket unowned. Returns 0, -EINVAL or -ENOMEM. */
int lb_owner_table_init(struct lb_owner_table *t, uint32_t buckets);

void lb_owner_table_fini(struct lb_owner_table *t);

/* A peer's identity in Maglev's fill: from its name, equal on every gateway. */
uint64_t lb_owner_key(const char *name);

/*
 * Moves t to a new membership of n peers (keys from lb_owner_key): bit k of
 * serving says peer k takes new connections (Maglev fills the owners from
 * those), bit k of holding that it may hold connections (serving ones do,
 * draining ones while connections are open). A bucket whose owner changes
 * keeps the old owner as previous while that one holds connections; a
 * previous owner that no longer holds any is forgotten. Returns the number
 * of buckets whose owner changed, or -errno.
 */
int lb_owner_table_update(struct lb_owner_table *t, const uint64_t *keys, size_t n,
			  uint64_t serving, uint64_t holding);

/*
 * What gateway self does with a packet of each bucket, as nft/owner.c takes
 * it (a peer index, or LB_OWNER_NONE for "here"): to[b], where a packet
 * that reached it from outside goes (the owner); chance[b], where a packet
 * that found no connection at the owner goes once more: for a bucket self
 * owns, its previous owner; for one it does not (the sender's table is
 * older or newer than self's), the owner self knows.
 */
void lb_owner_table_verdicts(const struct lb_owner_table *t, size_t self, uint16_t *to,
			     uint16_t *chance);

/* Buckets each peer owns and is previous owner of, over n peers (n <= LB_OWNER_PEERS_MAX). */
void lb_owner_table_count(const struct lb_owner_table *t, size_t n, uint32_t *owned,
			  uint32_t *previous);

#endif
