// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "lb/fastopen.h"
#include "lb/log.h"
#include "lb/sock.h"

ssize_t lb_fastopen_peek(int fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT);

	if (n == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

/* The gateway allows no TFO (net.ipv4.tcp_fastopen without 1): said once, then not tried. */
static bool unavailable;

bool lb_fastopen_available(void)
{
	return !unavailable;
}

int lb_fastopen_connect(const union lb_sockaddr *client, const union lb_sockaddr *backend,
			unsigned int bufbytes, const void *data, size_t len, size_t *sent,
			bool *local)
{
	int fd;

	*sent = 0;
	if (len && !unavailable) {
		fd = lb_sock_fastopen_from(client, backend, bufbytes, data, len, sent, local);
		if (fd != -EOPNOTSUPP)
			return fd;
		unavailable = true;
		lb_warn("TCP Fast Open is off on this gateway (net.ipv4.tcp_fastopen lacks the "
			"client bit 1): this worker connects to fastopen services' backends without "
			"it; fix: sysctl -w net.ipv4.tcp_fastopen=1 (or its value plus 1), then "
			"reload lb");
	}
	return lb_sock_connect_from(client, backend, bufbytes, local);
}

static bool syn_data_acked(int fd)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return false;
	return ti.tcpi_options & TCPI_OPT_SYN_DATA;
}

static bool record(struct lb_shm_backend *b, bool acked, uint64_t now_ms)
{
	uint32_t streak, no = 0;

	if (acked) {
		atomic_fetch_add_explicit(&b->fastopen_acked, 1, memory_order_relaxed);
		if (atomic_load_explicit(&b->fastopen_streak, memory_order_relaxed))
			atomic_store_explicit(&b->fastopen_streak, 0, memory_order_relaxed);
		return false;
	}
	atomic_fetch_add_explicit(&b->fastopen_refused, 1, memory_order_relaxed);
	streak = atomic_fetch_add_explicit(&b->fastopen_streak, 1, memory_order_relaxed) + 1;
	if (streak < LB_FASTOPEN_REFUSALS)
		return false;
	atomic_store_explicit(&b->fastopen_pause_until, now_ms + LB_FASTOPEN_PAUSE_MS,
			      memory_order_relaxed);
	return atomic_compare_exchange_strong(&b->fastopen_warned, &no, 1);
}

int lb_fastopen_settle(int cli, int srv, size_t sent, struct lb_shm_backend *b,
		       const char *service, uint64_t now_ms)
{
	char buf[LB_ADDR_STRLEN];
	/* MSG_TRUNC on TCP discards instead of copying: no buffer needed. */
	ssize_t n = recv(cli, NULL, sent, MSG_TRUNC | MSG_DONTWAIT);

	if (n == -1)
		return -errno;
	if ((size_t)n != sent)
		return -EIO;
	if (record(b, syn_data_acked(srv), now_ms))
		lb_warn("service %s: backend %s refused TCP Fast Open data %u times in a row: "
			"connecting to it without for %u s at a time, every request still goes "
			"through; fix on the backend: sysctl -w net.ipv4.tcp_fastopen=0x202 (or "
			"its value | 0x202) and a listener with fastopen (docs/deploy.md)",
			service, lb_addr_format(&b->addr, buf, sizeof(buf)), LB_FASTOPEN_REFUSALS,
			LB_FASTOPEN_PAUSE_MS / 1000);
	return 0;
}
