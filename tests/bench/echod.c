// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * echod: a TCP echo server that holds hundreds of thousands of sockets.
 *
 *   echod -l ADDR:PORT [-p PROCS] [-i SECONDS] [-b BACKLOG]
 *
 * Opens PROCS (default 1) listening sockets on ADDR:PORT (198.18.2.2:9000 or
 * [2001:db8:2::2]:9000) with SO_REUSEPORT, so the kernel spreads connections
 * over them by a hash of the 4-tuple, then forks one process per socket:
 * each accepts from its own socket only and stays under its own open-file
 * limit. Each process echoes what it reads (edge cases included: a partial
 * write is kept and finished before reading more) and closes when the peer
 * does. When a process runs out of file descriptors it stops accepting for
 * 100 ms and counts it ("emfile"); the connection waits in its queue.
 *
 * It prints "echod: listening on ADDR:PORT, N processes" once every socket
 * listens, then, every SECONDS (default 0: never) and on SIGUSR1,
 *   echod: open=N accepted=N closed=N bytes=N emfile=N max_open=N
 * where max_open is the largest number one process holds. SIGTERM/SIGINT
 * end it (and its processes).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 256
#define BUF_LEN 4096
#define EMFILE_PAUSE_MS 100

struct pstats {
	atomic_ulong open, accepted, closed, bytes, emfile;
};

struct pending {
	char *buf;			/* bytes read but not yet written back */
	size_t off, len;
};

static struct pstats *stats;
static unsigned int n_procs = 1;

static void usage(FILE *out)
{
	fprintf(out, "usage: echod -l ADDR:PORT [-p PROCS] [-i SECONDS] [-b BACKLOG]\n");
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port;
	unsigned long p;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, rb - s - 1);
		host[rb - s - 1] = '\0';
		port = rb + 2;
	} else {
		const char *colon = strchr(s, ':');

		if (!colon || colon != strrchr(s, ':') || (size_t)(colon - s) >= sizeof(host))
			return -1;
		memcpy(host, s, colon - s);
		host[colon - s] = '\0';
		port = colon + 1;
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno || *end || !*port || p == 0 || p > 65535)
		return -1;
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(p);
		*len = sizeof(*a);
		return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons(p);
	*len = sizeof(*a);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- one process --- */

struct proc {
	struct pstats *st;
	int ep, lfd;
	struct pending *pend;		/* by fd */
	int maxfd;
	uint64_t paused_until;
};

static void conn_close(struct proc *p, int fd)
{
	free(p->pend[fd].buf);
	p->pend[fd] = (struct pending){ 0 };
	close(fd);
	atomic_fetch_sub(&p->st->open, 1);
	atomic_fetch_add(&p->st->closed, 1);
}

/* Writes back what is pending; returns 1 when all is out, 0 on EAGAIN, -1 on error. */
static int flush(struct proc *p, int fd)
{
	struct pending *q = &p->pend[fd];

	while (q->off < q->len) {
		ssize_t n = send(fd, q->buf + q->off, q->len - q->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n == -1)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		q->off += n;
		atomic_fetch_add(&p->st->bytes, n);
	}
	free(q->buf);
	*q = (struct pending){ 0 };
	return 1;
}

static void conn_event(struct proc *p, int fd)
{
	struct epoll_event ev = { .data.fd = fd };
	char buf[BUF_LEN];
	int rc;

	if (p->pend[fd].buf) {
		rc = flush(p, fd);
		if (rc < 0) {
			conn_close(p, fd);
			return;
		}
		if (rc == 0)
			return;
		ev.events = EPOLLIN;
		epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev);
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
			conn_close(p, fd);
			return;
		}
		if (n == -1)
			return;
		p->pend[fd].buf = malloc(n);
		if (!p->pend[fd].buf) {
			conn_close(p, fd);
			return;
		}
		memcpy(p->pend[fd].buf, buf, n);
		p->pend[fd].len = n;
		rc = flush(p, fd);
		if (rc < 0) {
			conn_close(p, fd);
			return;
		}
		if (rc == 0) {
			/* Stop reading until the peer takes what we owe it. */
			ev.events = EPOLLOUT;
			epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev);
			return;
		}
	}
}

static void accept_all(struct proc *p)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
			    errno == ENOBUFS) {
				atomic_fetch_add(&p->st->emfile, 1);
				p->paused_until = now_ms() + EMFILE_PAUSE_MS;
			}
			return;
		}
		if (fd > p->maxfd) {
			close(fd);
			continue;
		}
		ev.data.fd = fd;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			continue;
		}
		atomic_fetch_add(&p->st->open, 1);
		atomic_fetch_add(&p->st->accepted, 1);
	}
}

static int proc_run(struct pstats *st, int lfd)
{
	struct proc p = { .st = st, .lfd = lfd };
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[512];
	struct rlimit rl;
	bool listening = true;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 1;
	p.maxfd = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : (int)rl.rlim_cur - 1;
	p.pend = calloc(p.maxfd + 1, sizeof(*p.pend));
	p.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!p.pend || p.ep == -1 || epoll_ctl(p.ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
		perror("echod: setup");
		return 1;
	}
	for (;;) {
		int n = epoll_wait(p.ep, evs, 512, listening ? -1 : EMFILE_PAUSE_MS);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == lfd)
				accept_all(&p);
			else
				conn_event(&p, evs[i].data.fd);
		}
		/* Out of fds: take the listener out so a full queue does not spin us. */
		if (listening && p.paused_until) {
			epoll_ctl(p.ep, EPOLL_CTL_DEL, lfd, NULL);
			listening = false;
		} else if (!listening && now_ms() >= p.paused_until) {
			p.paused_until = 0;
			epoll_ctl(p.ep, EPOLL_CTL_ADD, lfd, &ev);
			listening = true;
		}
	}
}

/* --- the parent --- */

static void report(void)
{
	unsigned long open = 0, acc = 0, closed = 0, bytes = 0, emfile = 0, max = 0;

	for (unsigned int i = 0; i < n_procs; i++) {
		unsigned long o = atomic_load(&stats[i].open);

		open += o;
		max = o > max ? o : max;
		acc += atomic_load(&stats[i].accepted);
		closed += atomic_load(&stats[i].closed);
		bytes += atomic_load(&stats[i].bytes);
		emfile += atomic_load(&stats[i].emfile);
	}
	printf("echod: open=%lu accepted=%lu closed=%lu bytes=%lu emfile=%lu max_open=%lu\n", open,
	       acc, closed, bytes, emfile, max);
}

static int listen_one(const struct sockaddr_storage *ss, socklen_t len, int backlog)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (const struct sockaddr *)ss, len) == -1 || listen(fd, backlog) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage addr;
	socklen_t addr_len = 0;
	const char *addr_s = NULL;
	unsigned long interval = 0, backlog = 65535;
	int lfds[MAX_PROCS];
	pid_t pids[MAX_PROCS];
	uint64_t next;
	sigset_t set;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "l:p:i:b:h")) != -1) {
		char *end;

		switch (c) {
		case 'l':
			addr_s = optarg;
			if (parse_addr(optarg, &addr, &addr_len) < 0) {
				fprintf(stderr, "echod: bad address '%s'\n", optarg);
				return 2;
			}
			break;
		case 'p':
			n_procs = strtoul(optarg, &end, 10);
			if (*end || !n_procs || n_procs > MAX_PROCS) {
				fprintf(stderr, "echod: bad process count '%s' (1..%d)\n", optarg,
					MAX_PROCS);
				return 2;
			}
			break;
		case 'i':
			interval = strtoul(optarg, &end, 10);
			if (*end) {
				fprintf(stderr, "echod: bad interval '%s'\n", optarg);
				return 2;
			}
			break;
		case 'b':
			backlog = strtoul(optarg, &end, 10);
			if (*end || !backlog || backlog > 1u << 20) {
				fprintf(stderr, "echod: bad backlog '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!addr_s || optind != argc) {
		usage(stderr);
		return 2;
	}
	stats = mmap(NULL, n_procs * sizeof(*stats), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED) {
		perror("echod: mmap");
		return 1;
	}
	for (unsigned int i = 0; i < n_procs; i++) {
		lfds[i] = listen_one(&addr, addr_len, (int)backlog);
		if (lfds[i] == -1) {
			fprintf(stderr, "echod: listen on %s: %s\n", addr_s, strerror(errno));
			return 1;
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (unsigned int i = 0; i < n_procs; i++) {
		pids[i] = fork();
		if (pids[i] == -1) {
			perror("echod: fork");
			for (unsigned int j = 0; j < i; j++)
				kill(pids[j], SIGKILL);
			return 1;
		}
		if (pids[i] == 0) {
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			for (unsigned int j = 0; j < n_procs; j++)
				if (j != i)
					close(lfds[j]);
			_exit(proc_run(&stats[i], lfds[i]));
		}
	}
	for (unsigned int i = 0; i < n_procs; i++)
		close(lfds[i]);
	printf("echod: listening on %s, %u processes\n", addr_s, n_procs);
	next = now_ms() + interval * 1000;
	for (;;) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 200 * 1000000L };
		int s = sigtimedwait(&set, NULL, &ts);

		if (s == SIGUSR1)
			report();
		if (s == SIGINT || s == SIGTERM || s == SIGCHLD)
			break;
		if (interval && now_ms() >= next) {
			report();
			next += interval * 1000;
		}
	}
	report();
	for (unsigned int i = 0; i < n_procs; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	return 0;
}
