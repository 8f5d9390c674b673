/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_ADDR_H
#define LB_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/*
 * One socket address of either family; .sa.sa_family says which. Sized for
 * IPv6 and no more (28 bytes, not sockaddr_storage's 128): every proxied
 * connection holds two of them.
 */
union lb_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Room for "[ffff:...:ffff]:65535" plus NUL. */
#define LB_ADDR_STRLEN (INET6_ADDRSTRLEN + 9)

/*
 * Parses "198.18.0.1:80" or "[2001:db8::1]:80" into *out. Returns 0, or
 * -EINVAL with *why (if non-NULL) set to a static phrase such as
 * "port 99999 out of range" or "missing port".
 */
int lb_addr_parse(const char *text, union lb_sockaddr *out, const char **why);

/* Formats as "198.18.0.1:80" / "[2001:db8::1]:80"; returns buf. */
const char *lb_addr_format(const union lb_sockaddr *a, char *buf, size_t len);

/* Formats the address alone, without port or brackets; returns buf. */
const char *lb_addr_format_ip(const union lb_sockaddr *a, char *buf, size_t len);

socklen_t lb_addr_len(const union lb_sockaddr *a);
uint16_t lb_addr_port(const union lb_sockaddr *a);
void lb_addr_set_port(union lb_sockaddr *a, uint16_t port);

/* True when family, address and port are all equal. */
bool lb_addr_equal(const union lb_sockaddr *a, const union lb_sockaddr *b);

/*
 * True when sa (an interface address from getifaddrs(), may be NULL) holds
 * the same IP as a, whatever the ports.
 */
bool lb_addr_same_ip(const union lb_sockaddr *a, const struct sockaddr *sa);

/* Turns an IPv4-mapped IPv6 address (::ffff:a.b.c.d) into plain IPv4. */
void lb_addr_unmap(union lb_sockaddr *a);

#endif
