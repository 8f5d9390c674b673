/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LISTENER_H
#define LB_LISTENER_H

#include "lb/addr.h"

/*
 * Opens a non-blocking TCP listener on addr with IP_TRANSPARENT (so TPROXY
 * can hand it connections for any destination) and SO_REUSEPORT (one per
 * worker, in one group). Returns the fd or -errno; *what names the step
 * that failed.
 */
int lb_listener_open(const union lb_sockaddr *addr, const char **what);

/*
 * SO_REUSEPORT would let a second lb (same uid) silently join the first
 * one's group and steal half its connections, so before opening its own
 * group the master checks that nobody listens on addr. Returns 0,
 * -EADDRINUSE, or another -errno.
 */
int lb_listener_probe(const union lb_sockaddr *addr);

/* Makes fd transparent for its family (IP_TRANSPARENT / IPV6_TRANSPARENT). */
int lb_sock_set_transparent(int fd, int family);

#endif
