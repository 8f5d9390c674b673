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
#define _GNU_SOURCE /* accept4 */
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/common.h"

#define MAX_PROCS 256
#define ECHO_BUF 4096
#define EMFILE_PAUSE 0.1

struct pstats {
	atomic_ulong open, accepted, closed, bytes, emfile;
};

struct pending {
	char *buf;			/* bytes read but not yet written back */
	size_t off, len;
};

static struct pstats *stats;
static unsigned int n_procs = 1;

/* For -h (help: to stdout) and usage errors; returns the exit status. */
static int usage(bool help)
{
	fprintf(help ? stdout : stderr,
		"usage: echod -l ADDR:PORT [-p PROCS] [-i SECONDS] [-b BACKLOG]\n");
	return help ? 0 : 2;
}

/* --- one process --- */

struct proc {
	struct pstats *st;
	struct loop loop;
	int lfd;
	bool listening;
	struct pending *pend;		/* by fd */
	int maxfd;
	double paused_until;
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
	char buf[ECHO_BUF];
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
		epoll_ctl(p->loop.ep, EPOLL_CTL_MOD, fd, &ev);
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
			epoll_ctl(p->loop.ep, EPOLL_CTL_MOD, fd, &ev);
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
				p->paused_until = now_s() + EMFILE_PAUSE;
			}
			return;
		}
		if (fd > p->maxfd) {
			close(fd);
			continue;
		}
		ev.data.fd = fd;
		if (epoll_ctl(p->loop.ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			continue;
		}
		atomic_fetch_add(&p->st->open, 1);
		atomic_fetch_add(&p->st->accepted, 1);
	}
}

static void proc_event(void *ctx, epoll_data_t data, uint32_t events)
{
	struct proc *p = ctx;

	if (data.fd == p->lfd)
		accept_all(p);
	else
		conn_event(p, data.fd);
}

/* Out of fds: takes the listener out for a while, so that a full queue
 * does not spin us. */
static int proc_before(void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct proc *p = ctx;

	if (p->listening && p->paused_until) {
		epoll_ctl(p->loop.ep, EPOLL_CTL_DEL, p->lfd, NULL);
		p->listening = false;
	} else if (!p->listening && now_s() >= p->paused_until) {
		p->paused_until = 0;
		ev.data.fd = p->lfd;
		epoll_ctl(p->loop.ep, EPOLL_CTL_ADD, p->lfd, &ev);
		p->listening = true;
	}
	return p->listening ? -1 : (int)(EMFILE_PAUSE * 1000);
}

/* Process i: serves listening socket i; ctx is the array of them. */
static int proc_main(unsigned int i, void *ctx)
{
	const int *lfds = ctx;
	struct proc p = { .st = &stats[i], .lfd = lfds[i], .listening = true };
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = p.lfd };

	for (unsigned int j = 0; j < n_procs; j++)
		if (j != i)
			close(lfds[j]);
	p.maxfd = fd_limit();
	if (p.maxfd < 0)
		return 1;
	p.pend = calloc(p.maxfd + 1, sizeof(*p.pend));
	if (!p.pend || loop_init(&p.loop, proc_before, proc_event, &p) < 0 ||
	    epoll_ctl(p.loop.ep, EPOLL_CTL_ADD, p.lfd, &ev) == -1) {
		perror("echod: setup");
		return 1;
	}
	loop_run(&p.loop);
	return 0;
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

int main(int argc, char **argv)
{
	struct addr addr;
	const char *addr_s = NULL, *what;
	unsigned long interval = 0, backlog = 65535;
	int lfds[MAX_PROCS];
	pid_t pids[MAX_PROCS];
	double next;
	sigset_t set;
	int c, rc;

	prog = "echod";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "l:p:i:b:h")) != -1) {
		char *end;

		switch (c) {
		case 'l':
			addr_s = optarg;
			if (addr_parse(&addr, optarg) < 0) {
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
		default:
			return usage(c == 'h');
		}
	}
	if (!addr_s || optind != argc)
		return usage(false);
	stats = shared_alloc(n_procs * sizeof(*stats));
	if (!stats) {
		perror("echod: mmap");
		return 1;
	}
	/* One socket a process, so that the kernel spreads connections over
	 * them (SO_REUSEPORT) and each process accepts only its own. */
	for (unsigned int i = 0; i < n_procs; i++) {
		lfds[i] = sock_listen(&addr, (int)backlog, true, &what);
		if (lfds[i] < 0) {
			fprintf(stderr, "echod: listen on %s: %s: %s\n", addr_s, what,
				strerror(-lfds[i]));
			return 1;
		}
	}
	signals_block(&set);
	rc = procs_fork(pids, n_procs, &set, proc_main, lfds);
	if (rc < 0) {
		fprintf(stderr, "echod: fork: %s\n", strerror(-rc));
		return 1;
	}
	for (unsigned int i = 0; i < n_procs; i++)
		close(lfds[i]);
	printf("echod: listening on %s, %u processes\n", addr_s, n_procs);
	next = now_s() + interval;
	for (;;) {
		int s = signal_wait(&set, 200);

		if (s == SIGUSR1)
			report();
		if (s == SIGINT || s == SIGTERM || s == SIGCHLD)
			break;
		if (interval && now_s() >= next) {
			report();
			next += interval;
		}
	}
	report();
	procs_reap(pids, n_procs, true);
	return 0;
}
