// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/sock.c over loopback TCP: how a given-up connection closes (a FIN
 * when nothing is outstanding, a reset when the peer has not taken
 * everything), buffer caps, and the upstream connect from the client's
 * address with its fallback to another port. Without root the transparent
 * connect is refused, and that refusal is what is checked.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lb/sock.h"
#include "tests/unit.h"

static int lfd = -1;			/* a listener on 127.0.0.1 */
static union lb_sockaddr laddr;

static void setup(void)
{
	socklen_t len = sizeof(laddr.in);

	laddr.in = (struct sockaddr_in){ .sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, &laddr.sa, sizeof(laddr.in)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	ck_assert_int_eq(getsockname(lfd, &laddr.sa, &len), 0);
}

static void teardown(void)
{
	close(lfd);
}

/* A connected pair: *a connects, *b is accepted; both with small buffers when small. */
static void pair(int *a, int *b, bool small)
{
	int v = 4096;

	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*a, 0);
	if (small)
		setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	ck_assert_int_eq(connect(*a, &laddr.sa, sizeof(laddr.in)), 0);
	*b = accept(lfd, NULL, NULL);
	ck_assert_int_ge(*b, 0);
	if (small)
		setsockopt(*b, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/* How the peer sees fd's end: 0 for a FIN, -ECONNRESET for a reset (after what it could read). */
static int peer_end(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[65536];

	for (;;) {
		ssize_t n;

		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return 0;
		if (n < 0)
			return -errno;
	}
}

/* Fills a's send queue until the peer, which does not read, takes no more. */
static void stall(int a)
{
	char buf[4096];

	memset(buf, 'x', sizeof(buf));
	fcntl(a, F_SETFL, O_NONBLOCK);
	while (send(a, buf, sizeof(buf), 0) > 0)
		;
	ck_assert_int_eq(errno, EAGAIN);
}

/* Waits until the peer acknowledged everything a sent. */
static void acked(int a)
{
	struct timespec ms = { .tv_nsec = 1000000 };
	int outq = -1;

	for (int i = 0; i < 5000 && outq; i++) {
		ck_assert_int_eq(ioctl(a, SIOCOUTQ, &outq), 0);
		if (outq)
			nanosleep(&ms, NULL);
	}
	ck_assert_int_eq(outq, 0);
}

/* Nothing outstanding: the peer gets a FIN after the bytes it was sent. */
START_TEST(test_abandon_acked_is_fin)
{
	char buf[8];
	int a, b;

	pair(&a, &b, false);
	ck_assert_int_eq(send(a, "hi", 2, 0), 2);
	ck_assert_int_eq(recv(b, buf, sizeof(buf), 0), 2);
	acked(a);
	lb_sock_close_abandoned(a, false);
	ck_assert_int_eq(peer_end(b), 0);
	close(b);
	lb_sock_close_abandoned(-1, true);
}
END_TEST

/* Bytes the peer never took: the socket is reset, not left to linger as an orphan. */
START_TEST(test_abandon_unacked_is_reset)
{
	int a, b;

	pair(&a, &b, true);
	stall(a);
	lb_sock_close_abandoned(a, false);
	ck_assert_int_eq(peer_end(b), -ECONNRESET);
	close(b);
}
END_TEST

/* Bytes lb still holds for the peer (in a pipe): reset, though the socket itself is drained. */
START_TEST(test_abandon_held_is_reset)
{
	int a, b;

	pair(&a, &b, false);
	acked(a);
	lb_sock_close_abandoned(a, true);
	ck_assert_int_eq(peer_end(b), -ECONNRESET);
	close(b);
}
END_TEST

START_TEST(test_close_rst)
{
	int a, b;

	pair(&a, &b, false);
	lb_sock_close_rst(b);
	ck_assert_int_eq(peer_end(a), -ECONNRESET);
	close(a);
	lb_sock_close_rst(-1);
}
END_TEST

START_TEST(test_buffers)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), before;

	ck_assert_int_ge(fd, 0);
	before = lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF);
	lb_sock_set_buffers(fd, 0);
	ck_assert_int_eq(lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF), before);
	/* The kernel doubles what it is given, for its own bookkeeping. */
	lb_sock_set_buffers(fd, 12288);
	ck_assert_int_eq(lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF), 24576);
	ck_assert_int_eq(lb_test_sockopt(fd, SOL_SOCKET, SO_RCVBUF), 24576);
	lb_sock_nodelay(fd);
	ck_assert_int_eq(lb_test_sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	close(fd);
}
END_TEST

/*
 * From the client's address and port when that is free, from the address
 * alone when the port is taken; a process without CAP_NET_ADMIN or
 * CAP_NET_RAW is refused, and that is a shortage here, not the backend's
 * fault.
 */
START_TEST(test_connect_from)
{
	union lb_sockaddr client = { .in = { .sin_family = AF_INET } }, seen;
	int probe = socket(AF_INET, SOCK_STREAM, 0), taken, fd, b;
	socklen_t len = sizeof(seen.in), slen;
	bool local = false;

	ck_assert_int_ge(probe, 0);
	client.in.sin_addr.s_addr = htonl(0x7f000002);		/* 127.0.0.2 */
	if (lb_sock_transparent(probe, AF_INET) == -EPERM) {
		ck_assert_int_eq(lb_sock_connect_from(&client, &laddr, 0, &local), -EPERM);
		ck_assert(local);
		close(probe);
		return;
	}
	close(probe);
	/* A port of the kernel's choice on 127.0.0.2, held by the test. */
	taken = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(taken, &client.sa, sizeof(client.in)), 0);
	ck_assert_int_eq(getsockname(taken, &client.sa, &len), 0);
	close(taken);

	fd = lb_sock_connect_from(&client, &laddr, 12288, &local);
	ck_assert_int_ge(fd, 0);
	slen = sizeof(seen.in);
	b = accept(lfd, &seen.sa, &slen);
	ck_assert_int_ge(b, 0);
	ck_assert(lb_addr_equal(&seen, &client));
	ck_assert_int_eq(lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF), 24576);
	close(b);

	/* The client's port is now in use by fd: the next one comes from another port. */
	taken = lb_sock_connect_from(&client, &laddr, 0, &local);
	ck_assert_int_ge(taken, 0);
	slen = sizeof(seen.in);
	b = accept(lfd, &seen.sa, &slen);
	ck_assert_int_ge(b, 0);
	ck_assert_uint_eq(seen.in.sin_addr.s_addr, client.in.sin_addr.s_addr);
	ck_assert_uint_ne(seen.in.sin_port, client.in.sin_port);
	close(b);
	close(taken);
	close(fd);
}
END_TEST

int main(void)
{
	return lb_test_main("sock", setup, teardown, 0,
			    LB_TESTS(test_abandon_acked_is_fin, test_abandon_unacked_is_reset,
				     test_abandon_held_is_reset, test_close_rst, test_buffers,
				     test_connect_from));
}
