// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lb/addr.h"
#include "lb/str.h"

/*
 * Phrases that quote the input are built here, so *why stays valid until
 * the next lb_addr_parse() call in the same thread and the caller never
 * frees it.
 */
static _Thread_local char why_buf[LB_STR_QUOTE_SIZE + 96];

/* "WHAT "TEXT"HINT", TEXT escaped and cut so that the phrase stays one line. */
static const char *why_quoted(const char *what, const char *text, const char *hint)
{
	struct lb_str b = lb_str_fixed(why_buf, sizeof(why_buf));

	lb_str_printf(&b, "%s ", what);
	lb_str_escape(&b, text, LB_STR_QUOTE | LB_STR_CUT);
	lb_str_printf(&b, "%s", hint);
	return why_buf;
}

/* Decimal digits only: no sign, no spaces, no "0x"; 1..65535. */
static int parse_port(const char *p, uint16_t *port, const char **why)
{
	unsigned long v = 0;
	const char *s;

	if (*p == '\0') {
		*why = "missing port";
		return -EINVAL;
	}
	for (s = p; *s; s++) {
		if (*s < '0' || *s > '9') {
			*why = why_quoted("invalid port", p, "");
			return -EINVAL;
		}
		if (v <= 65535)
			v = v * 10 + (*s - '0');
	}
	if (v == 0 || v > 65535) {
		snprintf(why_buf, sizeof(why_buf), "port %.20s%s out of range", p,
			 strlen(p) > 20 ? "..." : "");
		*why = why_buf;
		return -EINVAL;
	}
	*port = v;
	return 0;
}

static int parse(const char *text, union lb_sockaddr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN];
	const char *end, *colon;
	uint16_t port;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		end = strchr(text, ']');
		n = end ? (size_t)(end - text - 1) : 0;
		if (!end || n >= sizeof(host))
			goto invalid;
		memcpy(host, text + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, &out->in6.sin6_addr) != 1)
			goto invalid;
		if (end[1] == '\0') {
			*why = "missing port";
			return -EINVAL;
		}
		if (end[1] != ':')
			goto invalid;
		if (parse_port(end + 2, &port, why))
			return -EINVAL;
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons(port);
		return 0;
	}

	colon = strchr(text, ':');
	if (colon && strchr(colon + 1, ':')) {
		/* Without brackets the port cannot be told from the address. */
		*why = why_quoted("invalid address", text,
				  " (write IPv6 as \"[address]:port\")");
		return -EINVAL;
	}
	n = colon ? (size_t)(colon - text) : strlen(text);
	if (n >= sizeof(host))
		goto invalid;
	memcpy(host, text, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &out->in.sin_addr) != 1)
		goto invalid;
	if (!colon) {
		*why = "missing port";
		return -EINVAL;
	}
	if (parse_port(colon + 1, &port, why))
		return -EINVAL;
	out->in.sin_family = AF_INET;
	out->in.sin_port = htons(port);
	return 0;

invalid:
	*why = why_quoted("invalid address", text, "");
	return -EINVAL;
}

int lb_addr_parse(const char *text, union lb_sockaddr *out, const char **why)
{
	const char *dummy;
	int ret;

	ret = parse(text, out, why ? why : &dummy);
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

const char *lb_addr_format_ip(const union lb_sockaddr *a, char *buf, size_t len)
{
	const void *src = a->sa.sa_family == AF_INET ? (const void *)&a->in.sin_addr
						     : (const void *)&a->in6.sin6_addr;

	if ((a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6) ||
	    !inet_ntop(a->sa.sa_family, src, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

const char *lb_addr_format(const union lb_sockaddr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	lb_addr_format_ip(a, ip, sizeof(ip));
	if (a->sa.sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, lb_addr_port(a));
	else if (a->sa.sa_family == AF_INET)
		snprintf(buf, len, "%s:%u", ip, lb_addr_port(a));
	else
		snprintf(buf, len, "?");
	return buf;
}

socklen_t lb_addr_len(const union lb_sockaddr *a)
{
	switch (a->sa.sa_family) {
	case AF_INET:
		return sizeof(a->in);
	case AF_INET6:
		return sizeof(a->in6);
	default:
		return 0;
	}
}

uint16_t lb_addr_port(const union lb_sockaddr *a)
{
	switch (a->sa.sa_family) {
	case AF_INET:
		return ntohs(a->in.sin_port);
	case AF_INET6:
		return ntohs(a->in6.sin6_port);
	default:
		return 0;
	}
}

void lb_addr_set_port(union lb_sockaddr *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET)
		a->in.sin_port = htons(port);
	else if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons(port);
}

/*
 * Flow label and scope id are ignored: config addresses carry neither, and
 * addresses from getsockname() must still match them.
 */
bool lb_addr_equal(const union lb_sockaddr *a, const union lb_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	switch (a->sa.sa_family) {
	case AF_INET:
		return a->in.sin_port == b->in.sin_port &&
		       a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	case AF_INET6:
		return a->in6.sin6_port == b->in6.sin6_port &&
		       IN6_ARE_ADDR_EQUAL(&a->in6.sin6_addr, &b->in6.sin6_addr);
	default:
		return false;
	}
}

bool lb_addr_same_ip(const union lb_sockaddr *a, const struct sockaddr *sa)
{
	if (!sa || sa->sa_family != a->sa.sa_family)
		return false;
	switch (a->sa.sa_family) {
	case AF_INET:
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == a->in.sin_addr.s_addr;
	case AF_INET6:
		return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)sa)->sin6_addr,
					  &a->in6.sin6_addr);
	default:
		return false;
	}
}

void lb_addr_unmap(union lb_sockaddr *a)
{
	struct sockaddr_in in = { .sin_family = AF_INET };

	if (a->sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
		return;
	in.sin_port = a->in6.sin6_port;
	memcpy(&in.sin_addr, &a->in6.sin6_addr.s6_addr[12], 4);
	memset(a, 0, sizeof(*a));
	a->in = in;
}
