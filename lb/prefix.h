/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_PREFIX_H
#define LB_PREFIX_H

#include <stdbool.h>

#include "lb/addr.h"

/* An address prefix, such as 198.18.0.0/15 or 2001:db8::/32. */
struct lb_prefix {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* network order; bits past len are zero */
	unsigned int len;		/* 0..32 or 0..128 */
};

/*
 * Parses "a.b.c.d/len", "x::y/len" or a bare address (a host: /32, /128).
 * Host bits must be zero, so a typo like 10.1.2.3/8 is caught. Returns 0,
 * or -EINVAL with *why set to a static phrase.
 */
int lb_prefix_parse(const char *text, struct lb_prefix *out, const char **why);

/* True when a's address (IPv4-mapped IPv6 counts as IPv4) lies in p. */
bool lb_prefix_match(const struct lb_prefix *p, const union lb_sockaddr *a);

#endif
