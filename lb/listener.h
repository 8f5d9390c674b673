/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LISTENER_H
#define LB_LISTENER_H

#include <stdbool.h>

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

/*
 * The UDP listener of a worker: like lb_listener_open, a datagram socket
 * that also asks for each datagram's original destination
 * (IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR), which is the VIP.
 */
int lb_listener_open_udp(const union lb_sockaddr *addr, const char **what);

/* lb_listener_probe for the UDP port. */
int lb_listener_probe_udp(const union lb_sockaddr *addr);

/* Makes fd transparent for its family (IP_TRANSPARENT / IPV6_TRANSPARENT). */
int lb_sock_set_transparent(int fd, int family);

/*
 * Caps fd's send and receive buffers at bytes (SO_SNDBUF, SO_RCVBUF; 0
 * leaves them to autotuning), so a peer that stops reading pins that much,
 * not what autotuning grew to. The kernel doubles the value for its own
 * bookkeeping and clamps it to net.core.wmem_max/rmem_max.
 */
void lb_sock_set_buffers(int fd, unsigned int bytes);

/*
 * Closes a socket of a connection lb gives up on (a timeout); fd -1 is
 * ignored. Bytes the peer has not acknowledged (SIOCOUTQ), or that lb still
 * holds for it (held), would keep the socket alive after close() as an
 * orphan that retries into a peer taking nothing, with its buffers, for
 * minutes: it is reset instead. With nothing outstanding the FIN goes out
 * as usual.
 */
void lb_sock_close_abandoned(int fd, bool held);

#endif
