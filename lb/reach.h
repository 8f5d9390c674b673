/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_REACH_H
#define LB_REACH_H

#include <stdbool.h>

#include "lb/addr.h"

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

#endif
