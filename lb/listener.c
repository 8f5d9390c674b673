// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/listener.h"
#include "lb/log.h"
#include "lb/sock.h"

/* The kernel clamps this to net.core.somaxconn. */
#define LISTEN_BACKLOG 65535

int lb_listener_probe(const union lb_sockaddr *addr, enum lb_proto proto)
{
	bool udp = proto == LB_PROTO_UDP;
	int fd = socket(addr->sa.sa_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	int one = 1, rc = 0;

	if (fd == -1)
		return -errno;
	if (addr->sa.sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, &addr->sa, lb_addr_len(addr)) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

/* Sets option opt of fd to 1, with name in *what for the error message. */
static int set_one(int fd, int level, int opt, const char *name, const char **what)
{
	int one = 1;

	*what = name;
	return setsockopt(fd, level, opt, &one, sizeof(one));
}

int lb_listener_open(const union lb_sockaddr *addr, enum lb_proto proto, const char **what)
{
	int family = addr->sa.sa_family, fd, rc;
	bool udp = proto == LB_PROTO_UDP, v6 = family == AF_INET6;

	*what = "socket";
	fd = socket(family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if ((!udp && set_one(fd, SOL_SOCKET, SO_REUSEADDR, "setsockopt(SO_REUSEADDR)", what)) ||
	    set_one(fd, SOL_SOCKET, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)", what))
		goto fail;
	*what = v6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
	rc = lb_sock_transparent(fd, family);
	if (rc < 0) {
		errno = -rc;
		goto fail;
	}
	if (v6 && set_one(fd, IPPROTO_IPV6, IPV6_V6ONLY, "setsockopt(IPV6_V6ONLY)", what))
		goto fail;
	/*
	 * UDP: each datagram's original destination, the VIP, comes with it.
	 * TCP: inherited by every accepted socket, pass bytes on as they come.
	 */
	if (udp ? set_one(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_RECVORIGDSTADDR : IP_RECVORIGDSTADDR,
			  v6 ? "setsockopt(IPV6_RECVORIGDSTADDR)" : "setsockopt(IP_RECVORIGDSTADDR)",
			  what)
		: set_one(fd, IPPROTO_TCP, TCP_NODELAY, "setsockopt(TCP_NODELAY)", what))
		goto fail;
	*what = "bind";
	if (bind(fd, &addr->sa, lb_addr_len(addr)) == -1)
		goto fail;
	*what = "listen";
	if (!udp && listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

/* Kind k of a position's sockets: TCP then UDP, each AF_INET then AF_INET6. */
static enum lb_proto kind_proto(size_t k)
{
	return k < 2 ? LB_PROTO_TCP : LB_PROTO_UDP;
}

static int kind_family(size_t k)
{
	return k % 2 ? AF_INET6 : AF_INET;
}

static void pos_close(struct lb_listener_pos *p)
{
	for (size_t k = 0; k < LB_LISTENER_KINDS; k++)
		if (p->fd[k] >= 0) {
			close(p->fd[k]);
			p->fd[k] = -1;
		}
}

/*
 * Opens the listener of kind k for position i of s (nothing when s does
 * not want that kind, or the socket is open). With probe, first makes sure
 * no other group listens on the port. Returns 0 or -errno (logged).
 */
static int pos_open(struct lb_listener_set *s, unsigned int i, size_t k, bool probe)
{
	bool udp = kind_proto(k) == LB_PROTO_UDP;
	union lb_sockaddr a = { 0 };
	char buf[LB_ADDR_STRLEN];
	const char *what = "bind";
	int fd = 0;

	if (!s->wanted[k] || s->pos[i].fd[k] >= 0)
		return 0;
	if (kind_family(k) == AF_INET) {
		a.in.sin_family = AF_INET;
		a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_loopback;
	}
	lb_addr_set_port(&a, s->port);
	if (probe)
		fd = lb_listener_probe(&a, kind_proto(k));
	if (fd == 0)
		fd = lb_listener_open(&a, kind_proto(k), &what);
	if (fd < 0) {
		lb_err("%s listener %s for worker %u: %s: %s%s", udp ? "udp" : "tcp",
		       lb_addr_format(&a, buf, sizeof(buf)), i, what, strerror(-fd),
		       fd == -EADDRINUSE ? " (another program, or another lb, listens on "
		       "intercept.port)" : "");
		return fd;
	}
	s->pos[i].fd[k] = fd;
	return 0;
}

int lb_listener_set_plan(struct lb_listener_set *out, const struct lb_config *cfg, unsigned int n,
			 struct lb_listener_set *old)
{
	bool same_port = old && old->n && old->port == cfg->intercept.port;
	struct lb_listener_set ls = { .n = n, .port = cfg->intercept.port };
	int rc = -ENOMEM;

	*out = (struct lb_listener_set){ 0 };
	ls.pos = calloc(n, sizeof(*ls.pos));
	if (!ls.pos) {
		lb_err("listeners: out of memory");
		return rc;
	}
	for (size_t k = 0; k < LB_LISTENER_KINDS; k++)
		ls.wanted[k] = lb_config_has_vip(cfg, kind_proto(k), kind_family(k));
	for (unsigned int i = 0; i < n; i++)
		for (size_t k = 0; k < LB_LISTENER_KINDS; k++)
			ls.pos[i].fd[k] = -1;
	for (unsigned int i = 0; i < n; i++) {
		for (size_t k = 0; k < LB_LISTENER_KINDS; k++) {
			if (same_port && i < old->n && old->pos[i].fd[k] >= 0 && ls.wanted[k]) {
				ls.pos[i].fd[k] = old->pos[i].fd[k];
				old->pos[i].fd[k] = -1;
				continue;
			}
			/* Only a group of our own may exist on our port. */
			rc = pos_open(&ls, i, k, !same_port && i == 0);
			if (rc < 0)
				goto fail;
		}
	}
	*out = ls;
	return 0;
fail:
	lb_listener_set_giveback(&ls, old);
	return rc;
}

void lb_listener_set_giveback(struct lb_listener_set *plan, struct lb_listener_set *old)
{
	bool same_port = old && old->n && old->port == plan->port;

	for (unsigned int i = 0; i < plan->n; i++)
		for (size_t k = 0; k < LB_LISTENER_KINDS; k++) {
			int fd = plan->pos[i].fd[k];

			if (fd < 0)
				continue;
			/* A gap where old wants a socket of that kind: it was taken from there. */
			if (same_port && i < old->n && old->pos[i].fd[k] == -1 && old->wanted[k])
				old->pos[i].fd[k] = fd;
			else
				close(fd);
		}
	free(plan->pos);
	*plan = (struct lb_listener_set){ 0 };
}

void lb_listener_set_free(struct lb_listener_set *s)
{
	for (unsigned int i = 0; i < s->n; i++)
		pos_close(&s->pos[i]);
	free(s->pos);
	*s = (struct lb_listener_set){ 0 };
}

int lb_listener_set_open(struct lb_listener_set *s, unsigned int i)
{
	for (size_t k = 0; i < s->n && k < LB_LISTENER_KINDS; k++) {
		int rc = pos_open(s, i, k, false);

		if (rc < 0)
			return rc;
	}
	return 0;
}

void lb_listener_set_close(struct lb_listener_set *s, unsigned int i)
{
	if (i < s->n)
		pos_close(&s->pos[i]);
}

size_t lb_listener_set_fds(const struct lb_listener_set *s, unsigned int i, enum lb_proto proto,
			   int *fds)
{
	size_t n = 0;

	for (size_t k = 0; i < s->n && k < LB_LISTENER_KINDS; k++)
		if (kind_proto(k) == proto && s->pos[i].fd[k] >= 0)
			fds[n++] = s->pos[i].fd[k];
	return n;
}
