// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control socket (lb/ctl.c) without a master: the line splitter on
 * its own, replies to a pipelined buffer in order, and the socket server
 * in a forked child running its own loop.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb/ctl.h"
#include "tests/ctl_fixture.h"
#include "tests/unit.h"

/* ---- line splitter ---- */

static enum lb_ctl_next next_line(struct lb_ctl_input *in, char *buf, size_t len, bool eof)
{
	const char *line;
	size_t n;
	enum lb_ctl_next r = lb_ctl_input_next(in, &line, &n, eof);

	buf[0] = '\0';
	if (r == LB_CTL_LINE) {
		ck_assert_uint_lt(n, len);
		memcpy(buf, line, n);
		buf[n] = '\0';
	}
	return r;
}

static void feed(struct lb_ctl_input *in, const char *s)
{
	ck_assert_int_eq(lb_ctl_input_append(in, s, strlen(s)), 0);
}

START_TEST(test_split_pipelined)
{
	struct lb_ctl_input in = { 0 };
	char buf[256];

	feed(&in, "a\nbb\n\n \r\ncc");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "a");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "bb");
	/* Blank lines are skipped; "cc" is not complete yet. */
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	ck_assert_uint_eq(lb_ctl_input_pending(&in), 2);
	feed(&in, "c\r\nd");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "ccc\r");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	/* At EOF the unterminated rest is a last line. */
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_LINE);
	ck_assert_str_eq(buf, "d");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_NONE);
	ck_assert_uint_eq(lb_ctl_input_pending(&in), 0);
	lb_ctl_input_fini(&in);
}
END_TEST

START_TEST(test_split_bytewise)
{
	struct lb_ctl_input in = { 0 };
	const char *s = "{\"cmd\": \"status\"}\n{\"cmd\": \"version\"}\n";
	char buf[256];
	int lines = 0;

	for (const char *p = s; *p; p++) {
		ck_assert_int_eq(lb_ctl_input_append(&in, p, 1), 0);
		while (next_line(&in, buf, sizeof(buf), false) == LB_CTL_LINE) {
			ck_assert_str_eq(buf, lines ? "{\"cmd\": \"version\"}" : "{\"cmd\": \"status\"}");
			lines++;
		}
	}
	ck_assert_int_eq(lines, 2);
	lb_ctl_input_fini(&in);
}
END_TEST

START_TEST(test_split_too_long)
{
	struct lb_ctl_input in = { 0 };
	char *big = malloc(LB_CTL_LINE_MAX + 2), buf[256];

	memset(big, 'x', LB_CTL_LINE_MAX + 1);
	big[LB_CTL_LINE_MAX + 1] = '\0';
	/* In order: a, the long line's error, then b. */
	feed(&in, "a\n");
	feed(&in, big);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "a");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_TOO_LONG);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	/* The rest of the long line is dropped as it arrives: memory stays bounded. */
	for (int i = 0; i < 64; i++) {
		feed(&in, big);
		ck_assert_uint_eq(lb_ctl_input_pending(&in), 0);
		ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	}
	ck_assert_uint_le(in.cap, 2 * LB_CTL_LINE_MAX + 4096);
	feed(&in, "tail\nb\n");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "b");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);

	/* A long line arriving whole, with its newline, in one piece. */
	feed(&in, big);
	feed(&in, "\nc\n");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_TOO_LONG);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "c");

	/* Exactly LB_CTL_LINE_MAX bytes is still a line, with or without EOF. */
	big[LB_CTL_LINE_MAX] = '\0';
	feed(&in, big);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	feed(&in, "\n");
	{
		const char *line;
		size_t n;

		ck_assert_int_eq(lb_ctl_input_next(&in, &line, &n, false), LB_CTL_LINE);
		ck_assert_uint_eq(n, LB_CTL_LINE_MAX);
		feed(&in, big);
		ck_assert_int_eq(lb_ctl_input_next(&in, &line, &n, true), LB_CTL_LINE);
		ck_assert_uint_eq(n, LB_CTL_LINE_MAX);
	}
	/* One more byte is too long, also at EOF. */
	feed(&in, big);
	feed(&in, "y");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_TOO_LONG);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_NONE);
	lb_ctl_input_fini(&in);
	free(big);
}
END_TEST

/* What the server does with a buffer: every request answered, in order. */
START_TEST(test_pipeline_replies)
{
	struct lb_ctl_input in = { 0 };
	char codes[8][32];
	char *big = malloc(LB_CTL_LINE_MAX + 100);
	int n = 0;
	const char *line;
	size_t len;
	enum lb_ctl_next r;

	memset(big, ' ', LB_CTL_LINE_MAX + 99);
	big[LB_CTL_LINE_MAX + 99] = '\0';
	big[0] = '{';
	feed(&in, "{\"cmd\": \"version\"}\n{oops\n[]\n");
	feed(&in, big);
	feed(&in, "}\n{\"cmd\": \"set-weight\", \"service\": \"web\", \"backend\": \"198.18.2.2:80\", "
		  "\"weight\": 3}\n{\"cmd\": \"nope\"}\n{\"cmd\": \"status\"}");
	while ((r = lb_ctl_input_next(&in, &line, &len, true)) != LB_CTL_NONE) {
		char *reply = r == LB_CTL_LINE ? lb_ctl_handle_line(&st, line, len, NULL)
					       : lb_ctl_error_line("line_too_long", "too long");
		json_t *j = json_loads(reply, 0, NULL);
		json_t *e = json_object_get(j, "error");

		ck_assert_int_lt(n, 8);
		snprintf(codes[n++], sizeof(codes[0]), "%s",
			 e ? json_string_value(json_object_get(e, "code")) : "ok");
		json_decref(j);
		free(reply);
	}
	ck_assert_int_eq(n, 7);
	ck_assert_str_eq(codes[0], "ok");
	ck_assert_str_eq(codes[1], "bad_json");
	ck_assert_str_eq(codes[2], "bad_request");
	ck_assert_str_eq(codes[3], "line_too_long");
	ck_assert_str_eq(codes[4], "ok");
	ck_assert_str_eq(codes[5], "unknown_command");
	ck_assert_str_eq(codes[6], "ok");
	ck_assert_uint_eq(atomic_load(&lb_shm_backend(shm, 0, 0)->weight), 3);
	lb_ctl_input_fini(&in);
	free(big);
}
END_TEST

/* ---- the socket server, in a child running its own loop ---- */

static char sock_dir[64], sock_path[100];

/* Children run the server loop until SIGTERM. */
static struct lb_loop *child_loop;

static void child_sig(struct lb_event *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(ev->fd, &si, sizeof(si)) == sizeof(si))
		lb_loop_stop(child_loop);
}

static pid_t server_start(void)
{
	int p[2];
	pid_t pid;
	char c[256] = "";

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct lb_event sig = { .cb = child_sig };
		struct lb_ctl *ctl;
		sigset_t mask;
		char err[256];

		close(p[0]);
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		sigprocmask(SIG_BLOCK, &mask, NULL);
		signal(SIGPIPE, SIG_IGN);
		child_loop = lb_loop_alloc();
		sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
		lb_loop_add(child_loop, &sig, EPOLLIN);
		free(cfg->control_path);
		cfg->control_path = strdup(sock_path);
		ctl = lb_ctl_open(child_loop, cfg, &st, err, sizeof(err));
		if (!ctl) {
			dprintf(p[1], "E%s", err);
			_exit(1);
		}
		if (write(p[1], "R", 1) != 1)
			_exit(1);
		close(p[1]);
		lb_loop_run(child_loop);
		lb_ctl_close(ctl);
		lb_loop_free(child_loop);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], c, sizeof(c) - 1) < 1 || c[0] != 'R')
		ck_abort_msg("server did not start: %s", c);
	close(p[0]);
	return pid;
}

static void server_stop(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int client_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		ck_assert_int_gt(w, 0);
		s += w;
		n -= w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Buffered reads of reply lines, per file descriptor. */
static struct {
	char buf[65536];
	size_t off, len;
} rd[1024];

/* Reads one reply line (5 s at most) into buf. */
static void read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	ck_assert_int_lt(fd, 1024);
	for (;;) {
		/* One assertion per read, not per byte: each one costs Check a write. */
		char *start = rd[fd].buf + rd[fd].off;
		size_t have = rd[fd].len - rd[fd].off;
		char *nl = memchr(start, '\n', have);
		size_t take = nl ? (size_t)(nl - start) : have;

		ck_assert_uint_lt(n + take, len);
		memcpy(buf + n, start, take);
		n += take;
		rd[fd].off += take;
		if (nl) {
			rd[fd].off++;
			buf[n] = '\0';
			return;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		ck_assert_msg(poll(&pfd, 1, 5000) == 1, "no reply within 5 s");
		r = read(fd, rd[fd].buf, sizeof(rd[fd].buf));
		ck_assert_int_gt(r, 0);
		rd[fd].off = 0;
		rd[fd].len = r;
	}
}

/* Closes fd and forgets what was buffered for it. */
static void client_close(int fd)
{
	rd[fd].off = rd[fd].len = 0;
	close(fd);
}

static void sock_setup(void)
{
	ctl_fixture_setup();
	snprintf(sock_dir, sizeof(sock_dir), "/tmp/check_ctl.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sock_dir));
	snprintf(sock_path, sizeof(sock_path), "%s/run/lb/lb.sock", sock_dir);
}

static void sock_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sock_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", sock_dir);
	ctl_fixture_teardown();
}

START_TEST(test_socket_basics)
{
	char buf[65536], dir[160];
	struct stat sb;
	pid_t pid;
	int fd;

	pid = server_start();
	/* Created with its directories; the file has mode 0600. */
	ck_assert_int_eq(lstat(sock_path, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	snprintf(dir, sizeof(dir), "%s/run/lb", sock_dir);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0755);

	/* Pipelined, with bad ones between: all answered in order, connection kept. */
	fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n{bad\n42\n{\"cmd\":\"x\"}\n\n{\"cmd\":\"status\"}\n");
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"ok\":true"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "bad_json"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "bad_request"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "unknown_command"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"workers\""));

	/* An over-long line gets line_too_long, then the next request is answered. */
	{
		char *big = malloc(200000);

		memset(big, 'x', 200000);
		send_all(fd, big, 200000);
		free(big);
		send_str(fd, "\n{\"cmd\":\"version\"}\n");
		read_line(fd, buf, sizeof(buf));
		ck_assert_ptr_nonnull(strstr(buf, "line_too_long"));
		read_line(fd, buf, sizeof(buf));
		ck_assert_ptr_nonnull(strstr(buf, "\"protocol\""));
	}
	/* A last request without newline is answered at EOF, then the server closes. */
	send_str(fd, "{\"cmd\":\"version\"}");
	shutdown(fd, SHUT_WR);
	read_line(fd, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "\"protocol\""), "%s", buf);
	ck_assert_int_eq(read(fd, buf, 1), 0);
	client_close(fd);

	/* A second server on the same path refuses to start. */
	{
		struct lb_loop *loop = lb_loop_alloc();
		char err[256];

		free(cfg->control_path);
		cfg->control_path = strdup(sock_path);
		ck_assert_ptr_null(lb_ctl_open(loop, cfg, &st, err, sizeof(err)));
		ck_assert_ptr_nonnull(strstr(err, "another lb is running"));
		lb_loop_free(loop);
	}
	server_stop(pid);
	/* Removed on close. */
	ck_assert_int_eq(lstat(sock_path, &sb), -1);
}
END_TEST

START_TEST(test_socket_stale_and_not_socket)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct lb_loop *loop = lb_loop_alloc();
	char err[256], buf[4096];
	pid_t pid;
	int fd, lfd;

	/* A stale socket: bound, then its owner died without unlinking. */
	pid = server_start();
	server_stop(pid);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(lfd);
	pid = server_start();
	fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n");
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"ok\":true"));
	client_close(fd);
	server_stop(pid);

	/* Not a socket: refused, and left alone. */
	fd = open(sock_path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	client_close(fd);
	free(cfg->control_path);
	cfg->control_path = strdup(sock_path);
	ck_assert_ptr_null(lb_ctl_open(loop, cfg, &st, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a socket"));
	ck_assert_int_eq(access(sock_path, F_OK), 0);
	lb_loop_free(loop);
}
END_TEST

START_TEST(test_socket_concurrency)
{
	enum { N = 200 };
	static int fds[N];
	char buf[65536];
	pid_t pid = server_start();
	int stalled, hog;

	/* One client sends half a request and stalls; another pipelines and never reads. */
	stalled = client_connect();
	send_str(stalled, "{\"cmd\": \"sta");
	hog = client_connect();
	{
		/* One write: many small ones would each take a socket buffer's worth of overhead. */
		static char burst[2000 * 19 + 1];

		for (int i = 0; i < 2000; i++)
			memcpy(burst + 19 * i, "{\"cmd\":\"backends\"}\n", 19);
		send_str(hog, burst);
	}
	/* 200 concurrent clients, all connected before any asks. */
	for (int i = 0; i < N; i++)
		fds[i] = client_connect();
	for (int i = 0; i < N; i++)
		send_str(fds[i], "{\"cmd\":\"status\"}\n");
	for (int i = 0; i < N; i++) {
		read_line(fds[i], buf, sizeof(buf));
		ck_assert_ptr_nonnull(strstr(buf, "\"ok\":true"));
		client_close(fds[i]);
	}
	/* The stalled one finishes its line and is answered. */
	send_str(stalled, "tus\"}\n");
	read_line(stalled, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"workers\""));
	/* The hog gets all its replies, in order, once it reads. */
	for (int i = 0; i < 2000; i++) {
		read_line(hog, buf, sizeof(buf));
		ck_assert_msg(!strncmp(buf, "{\"ok\":true,\"data\":[", 19), "reply %d: %.80s", i, buf);
	}
	client_close(hog);
	client_close(stalled);
	server_stop(pid);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl");

	lb_test_case(s, "split", ctl_fixture_setup, ctl_fixture_teardown,
		     LB_TESTS(test_split_pipelined, test_split_bytewise, test_split_too_long,
			      test_pipeline_replies));
	tcase_set_timeout(lb_test_case(s, "socket", sock_setup, sock_teardown,
				       LB_TESTS(test_socket_basics, test_socket_stale_and_not_socket,
						test_socket_concurrency)), 30);
	return lb_test_run(s);
}
