// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/listener.h"

/* The kernel clamps this to net.core.somaxconn. */
#define LISTEN_BACKLOG 65535

int lb_sock_set_transparent(int fd, int family)
{
	int one = 1;
	int rc;

	if (family == AF_INET6)
		rc = setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	else
		rc = setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
	return rc == -1 ? -errno : 0;
}

void lb_sock_set_buffers(int fd, unsigned int bytes)
{
	int n = bytes;

	if (!n)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n));
}

void lb_sock_close_abandoned(int fd, bool held)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int outq = 0;

	if (fd < 0)
		return;
	if (held || (ioctl(fd, SIOCOUTQ, &outq) == 0 && outq > 0))
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

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
	rc = lb_sock_set_transparent(fd, family);
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

int lb_listener_probe_udp(const union lb_sockaddr *addr)
{
	int fd = socket(addr->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
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

int lb_listener_open_udp(const union lb_sockaddr *addr, const char **what)
{
	int family = addr->sa.sa_family;
	int one = 1;
	int fd, rc;

	*what = "socket";
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd == -1)
		return -errno;
	*what = "setsockopt(SO_REUSEPORT)";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	*what = family == AF_INET6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
	rc = lb_sock_set_transparent(fd, family);
	if (rc < 0) {
		errno = -rc;
		goto fail;
	}
	/* Each datagram's original destination, the VIP, comes with it. */
	if (family == AF_INET6) {
		*what = "setsockopt(IPV6_V6ONLY)";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
			goto fail;
		*what = "setsockopt(IPV6_RECVORIGDSTADDR)";
		if (setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one)) == -1)
			goto fail;
	} else {
		*what = "setsockopt(IP_RECVORIGDSTADDR)";
		if (setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one)) == -1)
			goto fail;
	}
	*what = "bind";
	if (bind(fd, &addr->sa, lb_addr_len(addr)) == -1)
		goto fail;
	return fd;
fail:
	rc = -errno;
	close(fd);
	return rc;
}
