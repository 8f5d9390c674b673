/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LISTENER_H
#define LB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/addr.h"
#include "lb/config.h"

/* A worker listens on one TCP and one UDP socket per family (IPv4, IPv6). */
#define LB_LISTENER_FAMILIES 2
#define LB_LISTENER_KINDS (2 * LB_LISTENER_FAMILIES)

/*
 * Opens a non-blocking listener of proto (LB_PROTO_TCP or LB_PROTO_UDP) on
 * addr with IP_TRANSPARENT (so TPROXY can hand it connections and
 * datagrams for any destination) and SO_REUSEPORT (one per worker, in one
 * group). A UDP one also asks for each datagram's original destination
 * (IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR), which is the VIP. Returns
 * the fd or -errno; *what names the step that failed.
 */
int lb_listener_open(const union lb_sockaddr *addr, enum lb_proto proto, const char **what);

/*
 * SO_REUSEPORT would let a second lb (same uid) silently join the first
 * one's group and steal half its traffic, so before opening its own group
 * the master checks that nobody has a socket of proto on addr. Returns 0,
 * -EADDRINUSE, or another -errno.
 */
int lb_listener_probe(const union lb_sockaddr *addr, enum lb_proto proto);

/*
 * The listening sockets of one generation of workers, on 127.0.0.1 and
 * ::1 at the intercept port: for each worker position, one of each kind
 * (TCP then UDP, each IPv4 then IPv6) the config has VIPs of. The master
 * keeps them for the generation's life, so a worker that dies leaves its
 * queue to its replacement. {0} is empty.
 */
struct lb_listener_set {
	struct lb_listener_pos {
		int fd[LB_LISTENER_KINDS];	/* -1 when closed or unused */
	} *pos;
	unsigned int n;
	uint16_t port;
	bool wanted[LB_LISTENER_KINDS];	/* some service of its protocol has a VIP of its family */
};

/*
 * Plans the sockets for n workers of cfg into *out. On the port of old
 * (NULL or {0}: none), the sockets of old that cfg still wants are taken
 * over position by position, so their queues carry over, and the missing
 * ones join the same SO_REUSEPORT group. On a new port it first makes sure
 * nobody else listens there. Sockets of old the plan did not take stay
 * there for the caller to close. Returns 0, or -errno (logged) with old as it was and *out {0}.
 */
int lb_listener_set_plan(struct lb_listener_set *out, const struct lb_config *cfg, unsigned int n,
			 struct lb_listener_set *old);

/*
 * Undoes lb_listener_set_plan(): the sockets plan took from old go back
 * there, those it opened are closed. Leaves *plan {0}.
 */
void lb_listener_set_giveback(struct lb_listener_set *plan, struct lb_listener_set *old);

/* Closes every socket and leaves *s {0}. */
void lb_listener_set_free(struct lb_listener_set *s);

/*
 * Opens what position i lacks (after lb_listener_set_close()). Returns 0
 * or -errno (logged).
 */
int lb_listener_set_open(struct lb_listener_set *s, unsigned int i);

/*
 * Closes position i's sockets: once no worker holds them either, the
 * kernel moves their queues to the rest of the group (tcp_migrate_req).
 */
void lb_listener_set_close(struct lb_listener_set *s, unsigned int i);

/*
 * Writes position i's open sockets of proto (LB_PROTO_TCP or LB_PROTO_UDP)
 * to fds, LB_LISTENER_FAMILIES at most; returns how many.
 */
size_t lb_listener_set_fds(const struct lb_listener_set *s, unsigned int i, enum lb_proto proto,
			   int *fds);

#endif
