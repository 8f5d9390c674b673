/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_RULES_H
#define LB_RULES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "lb/config.h"
#include "lb/loop.h"
#include "nft/nft.h"

/*
 * lb's nftables table, policy rules and routes: puts a config's in force,
 * keeps them there (a watch on the kernel's notifications restores what
 * someone else removes) and removes them at exit. The only module that
 * calls nft/.
 */

/* What the watch knows, for status and metrics; lb_rules_state() keeps it current. */
struct lb_rules_state {
	bool watching;			/* subscribed to the kernel's notifications */
	bool missing;			/* something is gone and not restored yet */
	time_t missing_since;		/* wall clock; 0 when nothing is missing */
	char missing_what[224];		/* what went first, and who removed it */
	uint64_t restores;		/* times something was put back, by the watch or a reload */
	time_t last_time;		/* the last restore, wall clock; 0: none */
	unsigned int last_ms;		/* how long it had been missing */
	const char *last_by;		/* "watch" or "reload"; NULL: none */
	char last_what[224];		/* what had gone, and who removed it */
	uint64_t failures;		/* restore attempts that failed */
	char last_error[256];		/* the last one's reason; "": none */
};

struct lb_rules;

/* The seed of the bucket hash: every gateway of a tier must use the same. */
#define LB_RULES_OWNER_SEED 0x4c426f77u

/*
 * The buckets' verdicts of gateway ownership (lb/owner.h's
 * lb_owner_table_verdicts()): per bucket a peer index, or
 * LB_NFT_OWNER_HERE (LB_OWNER_NONE).
 */
struct lb_rules_owner {
	uint32_t buckets;
	const uint16_t *to;		/* where a client's packet goes: the owner */
	const uint16_t *chance;		/* where a packet sent to its owner goes next */
};

/* An owned, empty set: nothing installed, nothing watched. NULL when out of memory. */
struct lb_rules *lb_rules_alloc(void);

/* Stops watching; leaves the kernel as it is (see lb_rules_remove()). NULL is fine. */
void lb_rules_free(struct lb_rules *r);

/*
 * Subscribes to notifications about lb's table, rules and routes and
 * serves them in loop, before the first install so nothing is missed.
 * Needs CAP_NET_ADMIN. Returns 0, or -errno (logged: lb then runs without
 * noticing removals).
 */
int lb_rules_watch(struct lb_rules *r, struct lb_loop *loop);

/*
 * Puts cfg's rules in force and re-asserts all of them, changed or not.
 * Routes first, so marked packets always have a way in; the nft table is
 * replaced in one transaction; routes the new config no longer has go
 * last. On failure the old state is left as it was. Returns 0 or -errno
 * with a one-line reason in err.
 */
int lb_rules_install(struct lb_rules *r, const struct lb_config *cfg,
		     const struct lb_rules_owner *own, char *err, size_t errlen);

/*
 * With ownership installed: changes the buckets' verdicts to own's in one
 * transaction (only the buckets that changed). Kept for a restore either
 * way. Returns 0 or -errno with a one-line reason in err; on failure the
 * installed table is as it was.
 */
int lb_rules_owner_update(struct lb_rules *r, const struct lb_rules_owner *own, char *err,
			  size_t errlen);

/*
 * The ownership counters since lb started (nft.h's LB_NFT_OWNER_*), over
 * tables replaced since: reads the kernel's. Returns 0 or -errno (the
 * counts are then the last ones read).
 */
int lb_rules_owner_counters(struct lb_rules *r, uint64_t packets[LB_NFT_OWNER_COUNTERS]);

/* Stops watching and removes what is installed; errors are logged. NULL is fine. */
void lb_rules_remove(struct lb_rules *r);

/*
 * Reads what the installed table's per-client rules refused: cb(arg,
 * service index of the installed config, "deny" or "rate", packets since
 * the table was installed). Nothing installed: no call. Returns 0 or
 * -errno (logged at most once a minute).
 */
int lb_rules_client_drops(struct lb_rules *r,
			  void (*cb)(void *arg, size_t service, const char *what, uint64_t packets),
			  void *arg);

/* Borrowed; valid until lb_rules_free(). */
const struct lb_rules_state *lb_rules_state(const struct lb_rules *r);

/* What cfg installs, in nft(8) and ip(8) syntax (for lb -t). Returns 0 or -ENOMEM. */
int lb_rules_print(const struct lb_config *cfg, FILE *out);

#endif
