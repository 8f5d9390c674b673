// SPDX-License-Identifier: GPL-2.0-or-later
/* Address prefixes for allow-lists (prefix.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/prefix.h"

int lb_prefix_parse(const char *text, struct lb_prefix *out, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	struct lb_prefix p = { 0 };
	unsigned long len;
	unsigned int max;
	char *end;

	if (n == 0 || n >= sizeof(buf)) {
		*why = "expected an address or prefix, such as 127.0.0.0/8 or ::1";
		return -EINVAL;
	}
	memcpy(buf, text, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, p.addr) == 1) {
		p.family = AF_INET;
	} else if (inet_pton(AF_INET6, buf, p.addr) == 1) {
		p.family = AF_INET6;
	} else {
		*why = "not an IPv4 or IPv6 address (expected a prefix such as 127.0.0.0/8 or ::1)";
		return -EINVAL;
	}
	max = p.family == AF_INET ? 32 : 128;
	len = max;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9') {
			*why = "prefix length must be a number";
			return -EINVAL;
		}
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (*end || errno || len > max) {
			*why = p.family == AF_INET ? "prefix length must be 0..32"
						   : "prefix length must be 0..128";
			return -EINVAL;
		}
	}
	p.len = len;
	for (unsigned int bit = p.len; bit < max; bit++)
		if (p.addr[bit / 8] & (0x80 >> (bit % 8))) {
			*why = "host bits set past the prefix length (did you mean the network address?)";
			return -EINVAL;
		}
	*out = p;
	return 0;
}

bool lb_prefix_match(const struct lb_prefix *p, const union lb_sockaddr *a)
{
	union lb_sockaddr u = *a;
	const unsigned char *ip;
	unsigned int full, rest;

	lb_addr_unmap(&u);
	if (u.sa.sa_family != p->family)
		return false;
	ip = p->family == AF_INET ? (const unsigned char *)&u.in.sin_addr
				  : (const unsigned char *)&u.in6.sin6_addr;
	full = p->len / 8;
	rest = p->len % 8;
	if (memcmp(ip, p->addr, full))
		return false;
	return !rest || ((ip[full] ^ p->addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}
