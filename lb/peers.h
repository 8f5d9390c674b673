/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_PEERS_H
#define LB_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lb/announce.h"
#include "lb/config.h"
#include "lb/loop.h"
#include "lb/rules.h"

/*
 * Gateway ownership's membership (docs/scale-out.md): the master sends
 * every peer a heartbeat each ownership.interval_ms, saying whether this
 * gateway serves, drains (and still holds connections) or stops, and
 * hears theirs. From what it hears it keeps the bucket table (lb/owner.h)
 * and its verdicts in lb's nftables maps (lb_rules_owner_update()):
 *  - a peer that serves owns buckets;
 *  - one that drains or stops owns none, but stays previous owner of the
 *    buckets it had while it says it holds connections;
 *  - one silent for dead_ms, or that said goodbye, leaves the table.
 * This gateway serves once it has heard the tier (every peer, or dead_ms
 * without), so that it never owns buckets the others do not know it owns.
 */

/* A peer's state, as its heartbeats say (or as silence does). */
enum lb_peer_state {
	LB_PEER_UNKNOWN,		/* never heard */
	LB_PEER_STARTING,		/* lb runs there, not serving yet */
	LB_PEER_SERVING,		/* owns buckets */
	LB_PEER_DRAINING,		/* drained: previous owner while it holds connections */
	LB_PEER_STOPPING,		/* stopping: likewise */
	LB_PEER_GONE,			/* said goodbye */
	LB_PEER_DEAD,			/* silent for dead_ms */
};

/* A peer name and its NUL (the config allows 64 characters). */
#define LB_PEERS_NAME_SIZE 65

/* One peer as status shows it. */
struct lb_peer_view {
	char name[LB_PEERS_NAME_SIZE];
	union lb_sockaddr addr;		/* its heartbeat address */
	bool self;
	enum lb_peer_state state;
	time_t since;			/* wall clock of the last change of state; 0: never */
	uint64_t heard_ms_ago;		/* at the last publish; UINT64_MAX: never */
	uint32_t connections;		/* it holds, as it said */
	bool other_config;		/* its heartbeats carry another tier's fingerprint */
	uint32_t owned, previous;	/* buckets it owns, and is previous owner of */
};

/*
 * What status and metrics show; lb_peers_state() keeps it current, in a
 * shared mapping (as lb_announce_state), so the HTTP listener's process
 * reads it as it changes.
 */
struct lb_peers_state {
	bool configured;		/* an ownership block is in force */
	bool settled;			/* this gateway heard the tier and may own buckets */
	uint32_t buckets;
	size_t n_peers;
	uint64_t table_changes;		/* times the bucket owners changed */
	uint64_t buckets_moved;		/* owner changes, summed */
	time_t last_change;		/* wall clock; 0: none */
	uint64_t installs, install_failures;	/* verdict changes sent to the kernel */
	char last_error[256];		/* the last failure; "": none */
	uint64_t sent, received, rejected;	/* heartbeats */
	uint64_t packets[LB_NFT_OWNER_COUNTERS];	/* forwarding: to owner, second chance, dropped */
	struct lb_peer_view peers[LB_OWNER_PEERS_MAX];
};

struct lb_peers;

/* An owned object with nothing configured; NULL with errno set. */
struct lb_peers *lb_peers_alloc(void);

/* Says goodbye to the peers (when configured) and closes everything. NULL is fine. */
void lb_peers_free(struct lb_peers *p);

/*
 * The fallible half of taking cfg: binds the heartbeat socket when cfg
 * has ownership and its address or port changed, and lays out cfg's
 * table (the same one when the ownership block did not change; a new one
 * otherwise, from what is known of the peers by name). Returns 0, or
 * -errno with a one-line reason in err.
 */
int lb_peers_prepare(struct lb_peers *p, const struct lb_config *cfg, char *err, size_t errlen);

/* The prepared table's verdicts for lb_rules_install(); NULL without ownership. */
const struct lb_rules_owner *lb_peers_table(const struct lb_peers *p);

/*
 * Puts the prepared config in force (cfg, loop, rules and announce must
 * outlive the next lb_peers_use() or lb_peers_free()): heartbeats start or
 * go on; without ownership, the peers are told goodbye.
 */
void lb_peers_use(struct lb_peers *p, const struct lb_config *cfg, struct lb_loop *loop,
		  struct lb_rules *rules, const struct lb_announce *announce);

/*
 * After every batch of the master's loop: this gateway's state (from the
 * gateway state) and the connections it holds; a change is told to the
 * peers at once and the table follows. now_ms: the loop clock.
 */
void lb_peers_sync(struct lb_peers *p, int64_t connections, uint64_t now_ms);

/* Whether this gateway may announce and serve: no ownership, or the tier was heard. */
bool lb_peers_settled(const struct lb_peers *p);

/* Reads the forwarding counters from the kernel into the state (for status and metrics). */
void lb_peers_refresh(struct lb_peers *p);

/* Borrowed; valid until lb_peers_free(). */
const struct lb_peers_state *lb_peers_state(const struct lb_peers *p);

/* Inline, so that status and metrics (and their fuzzer) name states without the membership code. */
static inline const char *lb_peers_state_name(enum lb_peer_state s)
{
	static const char *const names[] = {
		[LB_PEER_UNKNOWN] = "unknown", [LB_PEER_STARTING] = "starting",
		[LB_PEER_SERVING] = "serving", [LB_PEER_DRAINING] = "draining",
		[LB_PEER_STOPPING] = "stopping", [LB_PEER_GONE] = "gone", [LB_PEER_DEAD] = "dead",
	};

	return (unsigned int)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* ---- the heartbeat, pure (for tests) ---- */

#define LB_PEERS_WIRE_LEN 32

struct lb_peers_beat {
	enum lb_peer_state state;	/* STARTING, SERVING, DRAINING, STOPPING or GONE */
	uint16_t index;			/* the sender's in ownership.peers */
	uint32_t fingerprint;		/* of the sender's ownership block (lb_peers_fingerprint) */
	uint32_t connections;
	uint64_t incarnation;		/* drawn when lb starts */
	uint32_t seq;
};

/* Writes b into buf[LB_PEERS_WIRE_LEN]. */
void lb_peers_encode(const struct lb_peers_beat *b, uint8_t *buf);

/* Reads a heartbeat; -EBADMSG when buf is not one of this version. */
int lb_peers_decode(const uint8_t *buf, size_t len, struct lb_peers_beat *b);

/* What every gateway of one tier must agree on: the peers (names, addresses, order) and B. */
uint32_t lb_peers_fingerprint(const struct lb_config *cfg);

#endif
