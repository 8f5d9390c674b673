// SPDX-License-Identifier: GPL-2.0-or-later
/* What the test tools share; see common.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

const char *prog = "peer";
volatile sig_atomic_t signalled;

void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		die("out of memory");
	return p;
}

/* ---- addresses and numbers ---- */

int addr_parse_ip(struct addr *a, const char *s, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(s);

	memset(a, 0, sizeof(*a));
	if (n >= sizeof(buf))
		return -EINVAL;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return -EINVAL;
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, s, n + 1);
	}
	if (s[0] != '[' && inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		a->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		a->len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

int addr_parse(struct addr *a, const char *s)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	unsigned long port;
	char *end;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	if (s[0] != '[' && strchr(s, ':') != colon)
		return -EINVAL; /* bare IPv6 without brackets: ambiguous */
	if (s[0] == '[' && colon[-1] != ']')
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port == 0 || port > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	return addr_parse_ip(a, host, (uint16_t)port);
}

const char *addr_fmt(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

int size_parse(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	default: break;
	}
	if (*end != '\0' || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- sockets ---- */

int sock_connect(int *fd, const struct addr *dst, const struct addr *src, const char **what)
{
	int one = 1;

	*fd = socket(dst->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd == -1) {
		*what = "socket";
		return -errno;
	}
	if (src && src->len) {
		/*
		 * Let connect() pick the port for the whole 4-tuple: a bare
		 * bind() would reserve a port per source address for any
		 * destination and search the port space on every call.
		 */
		setsockopt(*fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(*fd, (const struct sockaddr *)&src->ss, src->len) == -1) {
			*what = "bind";
			return -errno;
		}
	}
	if (connect(*fd, (const struct sockaddr *)&dst->ss, dst->len) == -1 &&
	    errno != EINPROGRESS) {
		*what = "connect";
		return -errno;
	}
	return 0;
}

int sock_connect_ep(int *fd, const struct addr *dst, const struct addr *src, int ep, void *ptr,
		    const char **what)
{
	int rc = sock_connect(fd, dst, src, what);

	if (rc < 0 && *fd == -1)
		die("socket: %s", strerror(-rc));
	if (rc == 0)
		ep_set(ep, EPOLL_CTL_ADD, *fd, EPOLLOUT, ptr);
	return rc;
}

int sock_connected(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	return -err;
}

int sock_await(int fd, const char *byte, int ep, void *ptr)
{
	if (byte && send(fd, byte, 1, MSG_NOSIGNAL) != 1)
		return -errno;
	ep_set(ep, EPOLL_CTL_MOD, fd, EPOLLIN | EPOLLRDHUP, ptr);
	return 0;
}

int sock_listen(const struct addr *a, int backlog, bool reuseport, const char **what)
{
	int fd, one = 1, err;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*what = "socket";
		return -errno;
	}
	*what = "setsockopt";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) ||
	    (a->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1))
		goto fail;
	*what = "bind";
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1)
		goto fail;
	*what = "listen";
	if (listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	return -err;
}

void sock_close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -errno;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1 << 20)
		return 1 << 20;
	return (int)rl.rlim_cur - 1;
}

void nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- the event loop ---- */

static void on_signal(int sig)
{
	signalled = sig;
}

int loop_init(struct loop *l, int (*before)(void *ctx),
	      void (*event)(void *ctx, epoll_data_t data, uint32_t events), void *ctx)
{
	memset(l, 0, sizeof(*l));
	l->before = before;
	l->event = event;
	l->ctx = ctx;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	return l->ep == -1 ? -errno : 0;
}

void loop_setup(struct loop *l, int (*before)(void *ctx),
		void (*event)(void *ctx, epoll_data_t data, uint32_t events), void *ctx)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;
	int rc;

	nofile_raise();
	/* SIGINT/SIGTERM stay blocked but inside epoll_pwait(), so one can
	 * never slip in between checking `signalled` and going to sleep. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	rc = loop_init(l, before, event, ctx);
	if (rc < 0)
		die("epoll_create1: %s", strerror(-rc));
	sigprocmask(SIG_BLOCK, &block, &l->sigmask);
	sigdelset(&l->sigmask, SIGINT);
	sigdelset(&l->sigmask, SIGTERM);
	l->masked = true;
}

void loop_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_pwait(l->ep, evs, MAX_EVENTS, timeout_ms, l->masked ? &l->sigmask : NULL);

	if (n == -1) {
		if (errno == EINTR)
			return;
		die("epoll_wait: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++)
		l->event(l->ctx, evs[i].data, evs[i].events);
}

void loop_run(struct loop *l)
{
	while (!signalled) {
		int timeout = l->before ? l->before(l->ctx) : -1;

		if (timeout == LOOP_END)
			break;
		loop_once(l, timeout);
	}
}

void loop_close(struct loop *l)
{
	close(l->ep);
	l->ep = -1;
}

void ep_set(int ep, int op, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(ep, op, fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

/* ---- worker processes ---- */

void *shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGCHLD);
	sigprocmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int signal_wait(const sigset_t *set, long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	int s = sigtimedwait(set, NULL, &ts);

	return s == -1 ? 0 : s;
}

int procs_fork(pid_t *pids, unsigned int n, const sigset_t *set,
	       int (*run)(unsigned int i, void *ctx), void *ctx)
{
	for (unsigned int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == -1) {
			int err = errno;

			procs_reap(pids, i, true);
			return -err;
		}
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			sigprocmask(SIG_UNBLOCK, set, NULL);
			_exit(run(i, ctx));
		}
	}
	return 0;
}

void procs_reap(const pid_t *pids, unsigned int n, bool kill_them)
{
	for (unsigned int i = 0; i < n; i++) {
		if (kill_them)
			kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}
