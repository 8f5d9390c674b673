// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/relay.c over loopback TCP, without root: a writer feeds one side of
 * the relay, a slow reader drains the other, and every byte is checked.
 * Covers the copy path and its switch to splice, the bounce path when no
 * pipe can be had (pool empty, EMFILE), pipes made small by the user's
 * fs.pipe-user-pages-soft, and the FIN passed on at the end.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb/relay.h"
#include "tests/unit.h"

/* The byte at offset i of the stream the writer sends. */
static unsigned char pattern(uint64_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static void small_buffers(int fd)
{
	int v = 4096;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/*
 * A connected TCP pair on loopback: *a is the connecting end, *b the
 * accepted one. With small, both ends get small buffers, set before the
 * handshake so the window never promises more than they hold.
 */
static void tcp_pair(int *a, int *b, bool small)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(l, 0);
	if (small)
		small_buffers(l);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(*a, 0);
	if (small)
		small_buffers(*a);
	ck_assert_int_eq(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept(l, NULL, NULL);
	ck_assert_int_ge(*b, 0);
	close(l);
}

static void nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

struct run {
	void (*ready)(void);		/* called once the four sockets exist */
	uint64_t total;			/* bytes the writer sends */
	size_t chunk;			/* the writer's write size */
	size_t read_len;		/* the slow reader's read size per round */
	/* Results. */
	int rc;				/* first error lb_relay_move returned, or 0 */
	uint64_t received;
	bool exact, eof, spliced;
};

/*
 * Pushes r->total bytes writer -> [src relay dst] -> reader, calling
 * lb_relay_move as a worker would (readiness from poll), reading slowly.
 */
static void relay_run(struct lb_relay_pool *pool, struct run *r)
{
	int writer, src, dst, reader;
	struct lb_relay_half h = { .src_ready = true, .dst_ready = true };
	unsigned char *wbuf = malloc(r->chunk), *rbuf = malloc(r->read_len);
	uint64_t sent = 0;
	bool shut = false;

	ck_assert_ptr_nonnull(wbuf);
	ck_assert_ptr_nonnull(rbuf);
	tcp_pair(&writer, &src, false);
	tcp_pair(&dst, &reader, true);
	nonblock(writer);
	nonblock(src);
	nonblock(dst);
	nonblock(reader);
	if (r->ready)
		r->ready();
	r->exact = true;
	for (int rounds = 0; rounds < 2000000 && !r->eof; rounds++) {
		struct pollfd p[2] = { { .fd = src, .events = POLLIN }, { .fd = dst, .events = POLLOUT } };
		ssize_t n;

		while (sent < r->total) {
			size_t len = r->total - sent < r->chunk ? r->total - sent : r->chunk;

			for (size_t i = 0; i < len; i++)
				wbuf[i] = pattern(sent + i);
			n = write(writer, wbuf, len);
			if (n <= 0)
				break;
			sent += n;
		}
		if (sent == r->total && !shut) {
			shutdown(writer, SHUT_WR);
			shut = true;
		}
		poll(p, 2, 1);
		if (p[0].revents)
			h.src_ready = true;
		if (p[0].revents & (POLLHUP | POLLRDHUP))
			h.src_hup = true;
		if (p[1].revents)
			h.dst_ready = true;
		if (!r->rc) {
			int rc = lb_relay_move(pool, &h, src, dst);

			if (rc < 0)
				r->rc = rc;
			r->spliced |= h.splicing;
		}
		n = read(reader, rbuf, r->read_len);
		if (n == 0)
			r->eof = true;
		for (ssize_t i = 0; i < n; i++)
			if (rbuf[i] != pattern(r->received + i))
				r->exact = false;
		if (n > 0)
			r->received += n;
		if (r->rc && n <= 0)
			break;
	}
	lb_relay_release(pool, &h);
	close(writer);
	close(src);
	close(dst);
	close(reader);
	free(wbuf);
	free(rbuf);
}

static void assert_exact(const struct run *r)
{
	ck_assert_msg(r->rc == 0, "lb_relay_move failed: %s after %llu of %llu bytes",
		      strerror(-r->rc), (unsigned long long)r->received,
		      (unsigned long long)r->total);
	ck_assert_uint_eq(r->received, r->total);
	ck_assert(r->exact);
	ck_assert(r->eof);
}

START_TEST(test_copy_then_splice)
{
	struct lb_relay_pool pool;
	struct run r = { .total = 4 << 20, .chunk = 64 << 10, .read_len = 64 << 10 };

	ck_assert_int_eq(lb_relay_pool_init(&pool, 8, 2), 0);
	relay_run(&pool, &r);
	assert_exact(&r);
	/* Reads that fill the copy buffer switch the direction to splice. */
	ck_assert(r.spliced);
	lb_relay_pool_fini(&pool);
}
END_TEST

START_TEST(test_small_reads_copied)
{
	struct lb_relay_pool pool;
	struct run r = { .total = 200 << 10, .chunk = 100, .read_len = 64 << 10 };

	ck_assert_int_eq(lb_relay_pool_init(&pool, 8, 2), 0);
	relay_run(&pool, &r);
	assert_exact(&r);
	lb_relay_pool_fini(&pool);
}
END_TEST

/* A pool allowed no pipe at all: everything bounces, nothing is lost. */
START_TEST(test_no_pipe_bounces)
{
	struct lb_relay_pool pool;
	struct run r = { .total = 2 << 20, .chunk = 32 << 10, .read_len = 3000 };

	ck_assert_int_eq(lb_relay_pool_init(&pool, 0, 0), 0);
	relay_run(&pool, &r);
	assert_exact(&r);
	ck_assert(!r.spliced || pool.n_out == 0);
	lb_relay_pool_fini(&pool);
}
END_TEST

/* Takes every free fd but one: a pipe, which needs two, cannot be made. */
static void fill_fd_table(void)
{
	int last = -1, fd;

	while ((fd = dup(STDERR_FILENO)) >= 0)
		last = fd;
	if (errno != EMFILE || last < 0)
		_exit(2);
	close(last);
}

/*
 * The pool has room but pipe2 fails (EMFILE): the copy path must not
 * consume a read it cannot park. Run in a child, which fills its own fd
 * table.
 */
START_TEST(test_emfile_slow_reader)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct lb_relay_pool pool;
		struct run r = { .total = 2 << 20, .chunk = 32 << 10, .read_len = 3000,
				 .ready = fill_fd_table };

		if (lb_relay_pool_init(&pool, 64, 0) < 0)
			_exit(2);
		relay_run(&pool, &r);
		if (r.rc) {
			fprintf(stderr, "emfile: lb_relay_move: %s after %llu bytes\n", strerror(-r.rc),
				(unsigned long long)r.received);
			_exit(1);
		}
		_exit(r.received == r.total && r.exact && r.eof ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "relay under EMFILE lost or reset the transfer (status %d)", status);
}
END_TEST

/*
 * Past fs.pipe-user-pages-soft a user's new pipes hold a page or two. The
 * child becomes an unprivileged user (when root: CAP_SYS_RESOURCE would
 * exempt it), takes pipes until new ones come out small, and relays.
 */
START_TEST(test_small_pipes_slow_reader)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct lb_relay_pool pool;
		struct run r = { .total = 2 << 20, .chunk = 32 << 10, .read_len = 3000 };
		struct rlimit rl;
		int fds[2], size = 0, taken = 0;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(2);
		while (taken < 5000 && pipe2(fds, O_CLOEXEC) == 0) {
			taken++;
			size = fcntl(fds[0], F_GETPIPE_SZ);
			if (size > 0 && size < 65536)
				break;
		}
		if (size <= 0 || size >= 65536) {
			fprintf(stderr, "small pipes: new pipes stay %d bytes after %d\n", size, taken);
			_exit(3);
		}
		if (lb_relay_pool_init(&pool, 64, 16) < 0)
			_exit(2);
		relay_run(&pool, &r);
		if (r.rc) {
			fprintf(stderr, "small pipes (%d bytes): lb_relay_move: %s after %llu bytes\n",
				size, strerror(-r.rc), (unsigned long long)r.received);
			_exit(1);
		}
		_exit(r.received == r.total && r.exact && r.eof ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died: status %d", status);
	ck_assert_msg(WEXITSTATUS(status) != 3, "cannot make small pipes here "
		      "(fs.pipe-user-pages-soft is 0, or the open-file limit is too low)");
	ck_assert_msg(WEXITSTATUS(status) == 0,
		      "relay with small pipes lost or reset the transfer (status %d)", status);
}
END_TEST

int main(void)
{
	return lb_test_main("relay", NULL, NULL, 60,
			    LB_TESTS(test_copy_then_splice, test_small_reads_copied,
				     test_no_pipe_bounces, test_emfile_slow_reader,
				     test_small_pipes_slow_reader));
}
