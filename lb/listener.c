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

int lb_listener_probe(const union lb_sockaddr *addr)
{
	int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
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

int lb_listener_open(const union lb_sockaddr *addr, const char **what)
{
	int family = addr->sa.sa_family;
	int one = 1;
	int fd, rc;

	*what = "socket";
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd == -1)
		return -errno;
	*what = "setsockopt(SO_REUSEADDR)";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	*what = "setsockopt(SO_REUSEPORT)";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	*what = family == AF_INET6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
	rc = lb_sock_transparent(fd, family);
	if (rc < 0) {
		errno = -rc;
		goto fail;
	}
	if (family == AF_INET6) {
		*what = "setsockopt(IPV6_V6ONLY)";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
			goto fail;
	}
	/* Inherited by every accepted socket: pass bytes on as they come. */
	*what = "setsockopt(TCP_NODELAY)";
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto fail;
	*what = "bind";
	if (bind(fd, &addr->sa, lb_addr_len(addr)) == -1)
		goto fail;
	*what = "listen";
	if (listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

static const int families[LB_LISTENER_FAMILIES] = { AF_INET, AF_INET6 };

static void pos_close(struct lb_listener_pos *p)
{
	for (size_t f = 0; f < LB_LISTENER_FAMILIES; f++)
		if (p->fd[f] >= 0) {
			close(p->fd[f]);
			p->fd[f] = -1;
		}
}

/*
 * Opens family f's listener for position i of s (nothing when s has no
 * VIP of that family, or the socket is open). With probe, first makes sure
 * no other group listens on the port. Returns 0 or -errno (logged).
 */
static int pos_open(struct lb_listener_set *s, unsigned int i, size_t f, bool probe)
{
	union lb_sockaddr a = { 0 };
	char buf[LB_ADDR_STRLEN];
	const char *what = "bind";
	int fd = 0;

	if (!s->family[f] || s->pos[i].fd[f] >= 0)
		return 0;
	if (families[f] == AF_INET) {
		a.in.sin_family = AF_INET;
		a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_loopback;
	}
	lb_addr_set_port(&a, s->port);
	if (probe)
		fd = lb_listener_probe(&a);
	if (fd == 0)
		fd = lb_listener_open(&a, &what);
	if (fd < 0) {
		lb_err("listener %s for worker %u: %s: %s%s", lb_addr_format(&a, buf, sizeof(buf)), i,
		       what, strerror(-fd), fd == -EADDRINUSE ? " (another program, or another lb, "
		       "listens on intercept.port)" : "");
		return fd;
	}
	s->pos[i].fd[f] = fd;
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
	for (size_t f = 0; f < LB_LISTENER_FAMILIES; f++)
		ls.family[f] = lb_config_has_family(cfg, families[f]);
	for (unsigned int i = 0; i < n; i++)
		for (size_t f = 0; f < LB_LISTENER_FAMILIES; f++)
			ls.pos[i].fd[f] = -1;
	for (unsigned int i = 0; i < n; i++) {
		for (size_t f = 0; f < LB_LISTENER_FAMILIES; f++) {
			if (same_port && i < old->n && old->pos[i].fd[f] >= 0) {
				ls.pos[i].fd[f] = old->pos[i].fd[f];
				old->pos[i].fd[f] = -1;
				continue;
			}
			/* Only a group of our own may exist on our port. */
			rc = pos_open(&ls, i, f, !same_port && i == 0);
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
		for (size_t f = 0; f < LB_LISTENER_FAMILIES; f++) {
			int fd = plan->pos[i].fd[f];

			if (fd < 0)
				continue;
			/* A gap where old has a socket of that family: it was taken from there. */
			if (same_port && i < old->n && old->pos[i].fd[f] == -1 && old->family[f])
				old->pos[i].fd[f] = fd;
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
	for (size_t f = 0; i < s->n && f < LB_LISTENER_FAMILIES; f++) {
		int rc = pos_open(s, i, f, false);

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

size_t lb_listener_set_fds(const struct lb_listener_set *s, unsigned int i, int *fds)
{
	size_t n = 0;

	for (size_t f = 0; i < s->n && f < LB_LISTENER_FAMILIES; f++)
		if (s->pos[i].fd[f] >= 0)
			fds[n++] = s->pos[i].fd[f];
	return n;
}
