// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/sock.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

int lb_sock_transparent(int fd, int family)
{
	int one = 1;
	int rc;

	if (family == AF_INET6)
		rc = setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	else
		rc = setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
	return rc == -1 ? -errno : 0;
}

void lb_sock_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void lb_sock_set_buffers(int fd, unsigned int bytes)
{
	int n = bytes;

	if (!n)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n));
}

/*
 * connect(), or with len > 0 a connect whose SYN carries data, cookie-less:
 * 0 (under way) with *sent the bytes the SYN took, or -errno.
 */
static int connect_with(int fd, const union lb_sockaddr *to, const void *data, size_t len,
			size_t *sent)
{
	int one = 1;
	ssize_t n;

	*sent = 0;
	if (!len)
		return connect(fd, &to->sa, lb_addr_len(to)) == -1 && errno != EINPROGRESS ? -errno : 0;
	/*
	 * Per socket rather than the gateway-wide sysctl bit 0x4, which would
	 * make every TFO client on the gateway send cookie-less SYNs.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof(one)) == -1)
		return errno == ENOPROTOOPT ? -EOPNOTSUPP : -errno;
	n = sendto(fd, data, len, MSG_FASTOPEN | MSG_DONTWAIT | MSG_NOSIGNAL, &to->sa,
		   lb_addr_len(to));
	if (n >= 0) {
		*sent = n;
		return 0;
	}
	/* Nothing went with the SYN (TFO turned off for a black hole): an ordinary connect. */
	return errno == EINPROGRESS ? 0 : -errno;
}

int lb_sock_connect_from(const union lb_sockaddr *client, const union lb_sockaddr *backend,
			 unsigned int bufbytes, bool *local)
{
	size_t sent;

	return lb_sock_fastopen_from(client, backend, bufbytes, NULL, 0, &sent, local);
}

int lb_sock_fastopen_from(const union lb_sockaddr *client, const union lb_sockaddr *backend,
			  unsigned int bufbytes, const void *data, size_t len, size_t *sent,
			  bool *local)
{
	union lb_sockaddr src = *client;
	int family = backend->sa.sa_family;
	bool keep_port = true;
	int fd, rc, one = 1;

	*local = true;
again:
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd == -1)
		return -errno;
	rc = lb_sock_transparent(fd, family);
	if (rc < 0)
		goto fail;
	/* Before connect: the window scale offered in the SYN follows the buffer. */
	lb_sock_set_buffers(fd, bufbytes);
	if (!keep_port) {
		lb_addr_set_port(&src, 0);
		setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	}
	if (bind(fd, &src.sa, lb_addr_len(&src)) == -1) {
		rc = -errno;
		/* EACCES: a port below 1024 needs a capability workers do not keep. */
		if ((rc == -EADDRINUSE || rc == -EACCES) && keep_port) {
			close(fd);
			keep_port = false;
			goto again;
		}
		goto fail;
	}
	lb_sock_nodelay(fd);
	rc = connect_with(fd, backend, data, len, sent);
	if (rc < 0) {
		*local = rc == -EADDRNOTAVAIL || rc == -ENOBUFS || rc == -ENOMEM;
		/* The exact 4-tuple may still be in TIME_WAIT here. */
		if (rc == -EADDRNOTAVAIL && keep_port) {
			close(fd);
			keep_port = false;
			goto again;
		}
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

void lb_sock_close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

void lb_sock_close_abandoned(int fd, bool held)
{
	int outq = 0;

	if (fd < 0)
		return;
	if (held || (ioctl(fd, SIOCOUTQ, &outq) == 0 && outq > 0))
		lb_sock_close_rst(fd);
	else
		close(fd);
}
