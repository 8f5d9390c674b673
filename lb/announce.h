/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_ANNOUNCE_H
#define LB_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "lb/addr.h"
#include "lb/config.h"
#include "lb/shm.h"

/*
 * Announcements: with an "announce" block, lb keeps, for every VIP address
 * it can serve, a host route in the block's routing table, through a TUN
 * device the master holds open (nft/announce.h), for a routing daemon to
 * export to the routers (BIRD: protocol kernel { kernel table N; learn; }).
 * A VIP address is announced while lb is ready, the gateway is not drained
 * or stopping, and one of its services has a usable backend; a service with
 * health checks counts only once one of its backends passed a check. When
 * the master dies, however it dies, the device and its routes go with it.
 *
 * Besides what lb/rules.c installs, this is the only module that calls
 * nft/: its routes change at the speed of health states, one by one,
 * on a device whose life is the master's, while the rules change as a
 * whole at start and reload and are restored by a watch.
 */

enum lb_gateway_state {
	LB_GATEWAY_STARTING,		/* not ready yet: nothing announced */
	LB_GATEWAY_SERVING,		/* announcing what it can serve */
	LB_GATEWAY_DRAINING,		/* withdrawn on request; connections go on */
	LB_GATEWAY_DRAINED,		/* withdrawn; connections ended or the timeout passed */
	LB_GATEWAY_STOPPING,		/* withdrawn; lb is stopping */
};

/* One VIP address or prefix (port 0) and whether its route is in the kernel. */
struct lb_announce_vip {
	union lb_sockaddr addr;
	uint8_t plen;			/* 32 or 128 for one address */
	bool announced;
	const char *why;		/* not announced: why (static text); else NULL */
	time_t since;			/* wall clock of the last change; 0: never announced */
};

/* Status lists the VIPs up to this many; the counts cover all. */
#define LB_ANNOUNCE_VIPS_SHOWN 256

/*
 * What status and metrics show; lb_announce_state() keeps it current. It
 * lives in a shared mapping made by lb_announce_alloc(), so processes the
 * master forks later (the HTTP listener) read it as it changes, not as it
 * was when they started; hence no pointer into the master's heap here.
 */
struct lb_announce_state {
	bool configured;		/* an announce block is in force */
	char device[16];
	uint32_t table;
	unsigned int protocol;
	enum lb_gateway_state gateway;
	/* The last gateway drain, while draining or drained. */
	time_t drain_since;		/* wall clock of the withdrawal */
	time_t drain_deadline;		/* wall clock when it ends at the latest */
	time_t drained_at;		/* wall clock when it ended; 0: still draining */
	bool drain_stop;		/* lb stops when the drain ends */
	bool drain_timed_out;		/* it ended at the deadline with connections open */
	int64_t drain_active;		/* connections open when last counted */
	size_t n_vips;			/* VIP addresses in the config */
	size_t n_announced;
	uint64_t changes;		/* routes added or deleted */
	uint64_t failures;		/* route changes that failed */
	char last_error[256];		/* the last failure; "": none */
	size_t n_shown;			/* vips[0..n_shown): the first n_vips, at most ..._SHOWN */
	struct lb_announce_vip vips[LB_ANNOUNCE_VIPS_SHOWN];
};

struct lb_announce;

/* An owned object with nothing configured; NULL with errno set. */
struct lb_announce *lb_announce_alloc(void);

/* Deletes the device, and so every route lb announced. NULL is fine. */
void lb_announce_free(struct lb_announce *a);

/*
 * Opens the device when cfg has an announce block and none is open (it
 * needs CAP_NET_ADMIN: lb opens it before privileges go). Returns 0, or
 * -errno with a one-line reason in err. A device name that differs from
 * the open one is logged and ignored: the device changes only when lb
 * restarts.
 */
int lb_announce_open(struct lb_announce *a, const struct lb_config *cfg, char *err, size_t errlen);

/*
 * The fallible half of taking cfg, after lb_announce_open(): lays out
 * cfg's VIP addresses when it has an announce block (none without: a
 * reload of 100,000 VIPs does not pay for what it will not announce).
 * Changes no route. Returns 0, or -errno with a one-line reason in err.
 */
int lb_announce_prepare(struct lb_announce *a, const struct lb_config *cfg, char *err,
			size_t errlen);

/*
 * Puts the prepared config in force with its shm (both must outlive the
 * next lb_announce_use() or lb_announce_free()). Routes of VIPs it keeps
 * under the same table and protocol stay; the rest is done by the next
 * lb_announce_sync(). Without an announce block, closes the device.
 */
void lb_announce_use(struct lb_announce *a, const struct lb_config *cfg, struct lb_shm *shm);

/* lb is ready: from now on it announces what it can serve. */
void lb_announce_ready(struct lb_announce *a, uint64_t now_ms);

/*
 * Brings the routes in line with the states in shm and the gateway's:
 * re-reads a service only when its epoch moved (or it is not confirmed by
 * a health check yet), and touches the kernel only for what changed, or to
 * retry a failure a second later. Cheap enough to call after every batch
 * of the master's loop. now_ms: the loop clock.
 */
void lb_announce_sync(struct lb_announce *a, uint64_t now_ms);

/*
 * Gateway drain: withdraws every route at once and keeps serving. The
 * drain ends when no connection is open, but no sooner than
 * announce.settle_ms after the withdrawal (the routers may still send new
 * connections meanwhile), or after timeout_ms (0: the config's
 * drain_timeout_ms); with stop, lb then stops. A drain under way is
 * replaced. Returns 0, or -EAGAIN while lb is starting or stopping, with a
 * one-line result in msg.
 */
int lb_announce_drain(struct lb_announce *a, bool stop, unsigned int timeout_ms,
		      uint64_t now_ms, char *msg, size_t msglen);

/* Ends a drain: announces again. Returns 0 or -EALREADY (not draining), with msg. */
int lb_announce_resume(struct lb_announce *a, uint64_t now_ms, char *msg, size_t msglen);

/*
 * The master's tick during a drain: records active (connections open) and
 * ends the drain when it is due. Returns true when lb should stop now.
 */
bool lb_announce_drain_check(struct lb_announce *a, int64_t active, uint64_t now_ms);

/* lb is stopping: withdraws everything, for good. */
void lb_announce_stop(struct lb_announce *a, uint64_t now_ms);

/* Borrowed; valid until lb_announce_free(). */
const struct lb_announce_state *lb_announce_state(const struct lb_announce *a);

const char *lb_announce_gateway_name(enum lb_gateway_state s);

/* "/20" for a VIP prefix, "" for one address. A static buffer: use it at once. */
const char *lb_announce_plen_suffix(const struct lb_announce_vip *v);

/* The routes cfg announces, in ip(8) syntax (for lb -t); nothing without a block. 0 or -ENOMEM. */
int lb_announce_print(const struct lb_config *cfg, FILE *out);

#endif
