/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_REACH_H
#define LB_REACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/addr.h"
#include "lb/config.h"

/*
 * Tells a connect that failed because of this gateway (no route, its own
 * link down) from one that failed because of the backend. Only the latter
 * is evidence against the backend: a link flap on the gateway must not take
 * every backend behind it down. No privilege needed: workers use it too.
 */

/*
 * True when this gateway has no usable path to dst right now: no route
 * (ENETUNREACH, EHOSTUNREACH from the routing table), or the interface
 * holding the source address the route would use is down or has no
 * carrier. False when the path looks fine or cannot be told.
 */
bool lb_reach_path_down(const union lb_sockaddr *dst);

/*
 * True when a connect to dst that failed with err is the gateway's own
 * failure. sync: connect() itself returned err, which for ENETUNREACH and
 * EHOSTUNREACH means the routing table had no way there. Otherwise (err
 * from SO_ERROR, or ETIMEDOUT from lb's connect timeout) the error may
 * have come from afar (an ICMP unreachable, a silent host) or from here (a
 * neighbour never resolved on a link without carrier): the path is looked
 * at now (lb_reach_path_down). Any other error (ECONNREFUSED: the backend
 * answered) is the backend's.
 */
bool lb_reach_local(const union lb_sockaddr *dst, int err, bool sync);

/*
 * When the gateway's path to each backend of a config last failed, so
 * that a connect under way while the path failed, and ending only after
 * it came back (a timeout), is not blamed on the backend either.
 */
struct lb_reach_memo;

/* An owned memo for cfg's services and backends, or NULL (out of memory). */
struct lb_reach_memo *lb_reach_memo_alloc(const struct lb_config *cfg);
void lb_reach_memo_free(struct lb_reach_memo *m);

/*
 * lb_reach_local() for a connect to backend idx of service svc, at dst,
 * that began at started (ms) and failed now with err: also true for a
 * timeout or unreachable of a connect begun before a path failure m
 * remembers for that backend. A failure found is remembered.
 */
bool lb_reach_failed(struct lb_reach_memo *m, size_t svc, unsigned int idx,
		     const union lb_sockaddr *dst, int err, bool sync, uint64_t started,
		     uint64_t now);

#endif
