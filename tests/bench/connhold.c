// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * connhold: open many TCP connections, hold them, prove each one is usable.
 *
 *   connhold -d ADDR:PORT [-b SRCIP]... [-n CONNS] [-p PROCS] [-c PENDING]
 *            [-r RATE] [-T CONNECT_S] [-H HOLD_S | -w] [-E ECHO_S] [-k]
 *
 * Opens CONNS connections to ADDR:PORT (198.18.100.1:80 or [2001:db8::1]:80)
 * from the source addresses given with -b, taken in turn (none: the route's
 * source), spread over PROCS processes (default: one per 15,000 connections,
 * so each stays under a 20,000 open-file limit). Each process keeps at most
 * PENDING (default 256) connects under way and, with -r, all of them
 * together start at most RATE connects a second. A connect that fails or
 * takes longer than CONNECT_S (default 30) seconds counts as failed; it is
 * not retried. A held connection that the peer closes or resets counts as
 * lost.
 *
 * Once every connect has finished ("ramp done" line), it holds them for
 * HOLD_S seconds (default 0), or with -w until it gets SIGUSR1, then sends
 * one byte on every held connection (at most PENDING outstanding per
 * process) and checks that the same byte comes back within ECHO_S (default
 * 30) seconds in all: run it against an echo server. A connection sitting
 * in a proxy's listen queue looks established to the client; only the echo
 * proves it is relayed end to end. With -k it prints the summary and keeps
 * the connections after the check, until SIGUSR1 (or SIGTERM), so that what
 * they cost once they have carried a byte each way can be measured.
 *
 * SIGUSR2 during the ramp stops it: no connect starts after it, those under
 * way finish, and the run goes on with what it holds (a benchmark that
 * watches the host's memory stops there rather than let it run out).
 *
 * Every second it prints to stdout
 *   progress: t=S established=N pending=N failed=N lost=N [echo_ok=N echo_failed=N]
 * and finally
 *   summary: target=N held=N failed=N lost=N echo_ok=N echo_failed=N ramp_s=S rate=N/s
 *            ramp_stopped=0|1
 * followed by one "errors:" line when anything failed (errno names and
 * counts). Exit status 0 when every connection was held and echoed, 1
 * otherwise, 2 on usage errors. SIGINT/SIGTERM stop it early (the summary
 * is still printed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "../tools/common.h"

#define MAX_SRC 256
#define MAX_PROCS 256
#define MAX_ERRNO 134
#define PER_PROC_DEFAULT 15000
#define FD_RESERVE 16

enum phase { PH_RAMP, PH_HOLD, PH_ECHO, PH_EXIT };

enum cstate {
	C_NONE,
	C_CONNECTING,
	C_HELD,
	C_SENT,				/* echo byte sent, waiting for it */
	C_ECHOED,
};

/* Counters one process publishes to the parent (shared anonymous mapping). */
struct pstats {
	atomic_ulong established, pending, failed, lost, echo_ok, echo_failed, unexpected;
	atomic_int ramp_done, echo_done;
	atomic_ulong errors[MAX_ERRNO + 1];	/* failures by errno; [0]: connect timeout */
};

struct shared {
	atomic_int phase;
	atomic_int stop_ramp;		/* SIGUSR2: start no more connects */
	struct pstats p[];
};

struct opts {
	struct addr dst;
	struct addr src[MAX_SRC];
	unsigned int n_src;
	/* The numbers, all set through num_opt(). */
	unsigned long conns, procs, pending, rate, connect_s, hold_s, echo_s;
	bool wait_usr1;
	bool keep;			/* -k: hold on after the echo check, until SIGUSR1 */
};

static struct opts o = {
	.conns = 1000,
	.pending = 256,
	.connect_s = 30,
	.echo_s = 30,
};
static struct shared *sh;

/* For -h (help: to stdout) and usage errors; returns the exit status. */
static int usage(bool help)
{
	fprintf(help ? stdout : stderr, "usage: connhold -d ADDR:PORT [-b SRCIP]... [-n CONNS] "
		"[-p PROCS] [-c PENDING] [-r RATE] [-T CONNECT_S] [-H HOLD_S | -w] [-E ECHO_S] "
		"[-k]\n");
	return help ? 0 : 2;
}

/* Takes -opt if it is one of the numbers; returns false if not, exits when
 * it is out of range. */
static bool num_opt(int opt, const char *arg)
{
	static const struct {
		char opt;
		unsigned long *to;
		const char *what;
		unsigned long max;
	} nums[] = {
		{ 'n', &o.conns, "connection count", 100000000 },
		{ 'p', &o.procs, "process count", MAX_PROCS },
		{ 'c', &o.pending, "pending count", 1000000 },
		{ 'r', &o.rate, "rate", 100000000 },
		{ 'T', &o.connect_s, "connect timeout", 3600 },
		{ 'H', &o.hold_s, "hold time", 86400 },
		{ 'E', &o.echo_s, "echo timeout", 3600 },
	};
	char *end;

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (nums[i].opt != opt)
			continue;
		errno = 0;
		*nums[i].to = strtoul(arg, &end, 10);
		if (errno || *end || !*arg || *nums[i].to > nums[i].max) {
			fprintf(stderr, "connhold: bad %s '%s'\n", nums[i].what, arg);
			exit(2);
		}
		return true;
	}
	return false;
}

/* --- one process: the connections [first, first + n) of the run --- */

struct proc {
	unsigned int id;
	unsigned long first, n;
	struct pstats *st;
	struct loop loop;
	uint8_t *state;			/* by fd */
	double *since;			/* connect start, by fd */
	int maxfd;
	unsigned long started, pending;
	double t0;
};

/* Counts a failed connection by errno; 0 is a connect timeout. */
static void count_failure(struct proc *p, int err)
{
	if (err < 0 || err > MAX_ERRNO)
		err = MAX_ERRNO;
	atomic_fetch_add(&p->st->errors[err], 1);
	atomic_fetch_add(&p->st->failed, 1);
}

static void fail_conn(struct proc *p, int fd, int err)
{
	count_failure(p, err);
	p->state[fd] = C_NONE;
	close(fd);
}

static void start_one(struct proc *p)
{
	unsigned long idx = p->first + p->started++;
	struct epoll_event ev = { .events = EPOLLOUT, };
	const char *what;
	int fd, rc;

	rc = sock_connect(&fd, &o.dst, o.n_src ? &o.src[idx % o.n_src] : NULL, &what);
	if (fd == -1) {
		count_failure(p, -rc);
		return;
	}
	if (fd > p->maxfd) {
		/* The arrays are sized from the open-file limit, so this cannot happen. */
		close(fd);
		count_failure(p, EMFILE);
		return;
	}
	if (rc < 0) {
		fail_conn(p, fd, -rc);
		return;
	}
	ev.data.fd = fd;
	if (epoll_ctl(p->loop.ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		fail_conn(p, fd, errno);
		return;
	}
	p->state[fd] = C_CONNECTING;
	p->since[fd] = now_s();
	p->pending++;
	atomic_store(&p->st->pending, p->pending);
}

static void lose(struct proc *p, int fd)
{
	atomic_fetch_add(&p->st->lost, 1);
	atomic_fetch_sub(&p->st->established, 1);
	if (p->state[fd] == C_SENT)
		atomic_fetch_add(&p->st->echo_failed, 1);
	p->state[fd] = C_NONE;
	close(fd);
}

static uint8_t echo_byte(int fd)
{
	return (uint8_t)(fd * 31 + 7);
}

static void on_event(void *ctx, epoll_data_t data, uint32_t events)
{
	struct proc *p = ctx;
	int fd = data.fd;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
	uint8_t b;
	ssize_t n;

	switch (p->state[fd]) {
	case C_CONNECTING: {
		int err = -sock_connected(fd);

		p->pending--;
		atomic_store(&p->st->pending, p->pending);
		if (!err && (events & (EPOLLERR | EPOLLHUP)))
			err = ECONNRESET;
		if (err) {
			fail_conn(p, fd, err);
			return;
		}
		if (epoll_ctl(p->loop.ep, EPOLL_CTL_MOD, fd, &ev) == -1) {
			fail_conn(p, fd, errno);
			return;
		}
		p->state[fd] = C_HELD;
		atomic_fetch_add(&p->st->established, 1);
		return;
	}
	case C_HELD:
	case C_SENT:
	case C_ECHOED:
		n = recv(fd, &b, 1, MSG_DONTWAIT);
		if (n == 1 && p->state[fd] == C_SENT) {
			if (b == echo_byte(fd)) {
				atomic_fetch_add(&p->st->echo_ok, 1);
			} else {
				atomic_fetch_add(&p->st->echo_failed, 1);
				atomic_fetch_add(&p->st->unexpected, 1);
			}
			p->state[fd] = C_ECHOED;
			return;
		}
		if (n == 1) {
			atomic_fetch_add(&p->st->unexpected, 1);
			return;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		lose(p, fd);
		return;
	default:
		return;
	}
}

/* Fails connects under way for longer than connect_s. */
static void expire_connects(struct proc *p, double now)
{
	for (int fd = 0; fd <= p->maxfd; fd++)
		if (p->state[fd] == C_CONNECTING && now - p->since[fd] > o.connect_s) {
			p->pending--;
			fail_conn(p, fd, 0);
		}
	atomic_store(&p->st->pending, p->pending);
}

static void echo_all(struct proc *p)
{
	double deadline = now_s() + o.echo_s;
	unsigned long outstanding = 0;
	int next = 0;

	for (;;) {
		/* Count outstanding echoes from the state, which events change. */
		outstanding = 0;
		for (int fd = 0; fd <= p->maxfd; fd++)
			outstanding += p->state[fd] == C_SENT;
		while (outstanding < o.pending && next <= p->maxfd) {
			int fd = next++;
			uint8_t b = echo_byte(fd);

			if (p->state[fd] != C_HELD)
				continue;
			if (send(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
				atomic_fetch_add(&p->st->echo_failed, 1);
				lose(p, fd);
				continue;
			}
			p->state[fd] = C_SENT;
			outstanding++;
		}
		if ((!outstanding && next > p->maxfd) || now_s() > deadline ||
		    atomic_load(&sh->phase) == PH_EXIT)
			break;
		loop_once(&p->loop, 20);
	}
	/* What did not come back in time, or was never sent. */
	for (int fd = 0; fd <= p->maxfd; fd++)
		if (p->state[fd] == C_SENT || p->state[fd] == C_HELD)
			atomic_fetch_add(&p->st->echo_failed, 1);
}

static int proc_run(struct proc *p)
{
	double rate = (double)o.rate / o.procs, last_expire;
	int rc;

	p->maxfd = fd_limit();
	if (p->maxfd < 0)
		return 1;
	if (p->n + FD_RESERVE > (unsigned long)p->maxfd + 1) {
		fprintf(stderr, "connhold[%u]: %lu connections need %lu fds, the open-file limit "
			"is %d: use more processes (-p)\n", p->id, p->n, p->n + FD_RESERVE,
			p->maxfd + 1);
		return 1;
	}
	p->state = calloc(p->maxfd + 1, 1);
	p->since = calloc(p->maxfd + 1, sizeof(*p->since));
	rc = !p->state || !p->since ? -ENOMEM : loop_init(&p->loop, NULL, on_event, p);
	if (rc < 0) {
		fprintf(stderr, "connhold[%u]: setup: %s\n", p->id, strerror(-rc));
		return 1;
	}
	p->t0 = last_expire = now_s();
	while (atomic_load(&sh->phase) == PH_RAMP) {
		double now = now_s();
		unsigned long done = atomic_load(&p->st->established) + atomic_load(&p->st->lost) +
				     atomic_load(&p->st->failed);

		while (p->started < p->n && p->pending < o.pending && !atomic_load(&sh->stop_ramp) &&
		       (rate <= 0 || p->started < (now - p->t0) * rate + 1))
			start_one(p);
		if (now - last_expire >= 0.5) {
			expire_connects(p, now);
			last_expire = now;
		}
		if ((p->started == p->n || atomic_load(&sh->stop_ramp)) && !p->pending &&
		    done >= p->started)
			atomic_store(&p->st->ramp_done, 1);
		loop_once(&p->loop, 10);
	}
	while (atomic_load(&sh->phase) == PH_HOLD)
		loop_once(&p->loop, 100);
	if (atomic_load(&sh->phase) == PH_ECHO)
		echo_all(p);
	atomic_store(&p->st->echo_done, 1);
	while (atomic_load(&sh->phase) != PH_EXIT)
		loop_once(&p->loop, 100);
	return 0;
}

/* Process i of -p: its share of the connections; ctx is the shared mapping. */
static int proc_main(unsigned int i, void *ctx)
{
	unsigned long base = o.conns / o.procs, extra = o.conns % o.procs;
	struct shared *shared = ctx;
	struct proc p = {
		.id = i,
		.first = i * base + (i < extra ? i : extra),
		.n = base + (i < extra),
		.st = &shared->p[i],
	};

	signal(SIGINT, SIG_IGN);	/* the parent decides */
	return proc_run(&p);
}

/* --- the parent: forks, reports, moves the phases on --- */

static unsigned long sum(size_t off)
{
	unsigned long t = 0;

	for (unsigned int i = 0; i < o.procs; i++)
		t += atomic_load((atomic_ulong *)((char *)&sh->p[i] + off));
	return t;
}

#define SUM(field) sum(offsetof(struct pstats, field))

static bool all(size_t off)
{
	for (unsigned int i = 0; i < o.procs; i++)
		if (!atomic_load((atomic_int *)((char *)&sh->p[i] + off)))
			return false;
	return true;
}

#define ALL(field) all(offsetof(struct pstats, field))

static void progress(double t0, bool echo)
{
	printf("progress: t=%.1f established=%lu pending=%lu failed=%lu lost=%lu", now_s() - t0,
	       SUM(established), SUM(pending), SUM(failed), SUM(lost));
	if (echo)
		printf(" echo_ok=%lu echo_failed=%lu", SUM(echo_ok), SUM(echo_failed));
	printf("\n");
}

static void print_errors(void)
{
	bool any = false;

	for (int e = 0; e <= MAX_ERRNO; e++) {
		unsigned long n = 0;

		for (unsigned int i = 0; i < o.procs; i++)
			n += atomic_load(&sh->p[i].errors[e]);
		if (!n)
			continue;
		printf("%s %s %lu", any ? "," : "errors:",
		       e == 0 ? "connect timeout" : e == MAX_ERRNO ? "other" : strerrorname_np(e), n);
		any = true;
	}
	if (SUM(unexpected))
		printf("%s unexpected bytes %lu", any ? "," : "errors:", SUM(unexpected));
	if (any || SUM(unexpected))
		printf("\n");
}

static void summarize(double t0, double ramp_s)
{
	unsigned long held = SUM(established);

	progress(t0, true);
	printf("summary: target=%lu held=%lu failed=%lu lost=%lu echo_ok=%lu echo_failed=%lu "
	       "ramp_s=%.2f rate=%.0f/s ramp_stopped=%d\n", o.conns, held, SUM(failed), SUM(lost),
	       SUM(echo_ok), SUM(echo_failed), ramp_s, held / (ramp_s > 0 ? ramp_s : 1),
	       atomic_load(&sh->stop_ramp));
	print_errors();
}

static bool child_died(void)
{
	int status;
	pid_t pid = waitpid(-1, &status, WNOHANG);

	if (pid <= 0)
		return false;
	fprintf(stderr, "connhold: process %d ended early (status %d)\n", (int)pid, status);
	return true;
}

int main(int argc, char **argv)
{
	pid_t pids[MAX_PROCS];
	double t0, ramp_s = 0, next_report, hold_until = 0;
	bool stopped = false, have_dst = false, summarized = false;
	unsigned long held;
	sigset_t set;
	int c, rc;

	prog = "connhold";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "d:b:n:p:c:r:T:H:wE:kh")) != -1) {
		switch (c) {
		case 'd':
			if (addr_parse(&o.dst, optarg) < 0) {
				fprintf(stderr, "connhold: bad destination '%s'\n", optarg);
				return 2;
			}
			have_dst = true;
			break;
		case 'b':
			if (o.n_src == MAX_SRC ||
			    addr_parse_ip(&o.src[o.n_src], optarg, 0) < 0) {
				fprintf(stderr, "connhold: bad or too many source addresses '%s'\n",
					optarg);
				return 2;
			}
			o.n_src++;
			break;
		case 'w':
			o.wait_usr1 = true;
			break;
		case 'k':
			o.keep = true;
			break;
		default:
			if (!num_opt(c, optarg))
				return usage(c == 'h');
		}
	}
	if (!have_dst || optind != argc || !o.pending)
		return usage(false);
	for (unsigned int i = 0; i < o.n_src; i++)
		if (o.src[i].ss.ss_family != o.dst.ss.ss_family) {
			fprintf(stderr, "connhold: source and destination families differ\n");
			return 2;
		}
	if (!o.procs)
		o.procs = (o.conns + PER_PROC_DEFAULT - 1) / PER_PROC_DEFAULT;
	if (!o.procs)
		o.procs = 1;
	if (o.procs > MAX_PROCS) {
		fprintf(stderr, "connhold: at most %d processes\n", MAX_PROCS);
		return 2;
	}
	sh = shared_alloc(sizeof(*sh) + o.procs * sizeof(sh->p[0]));
	if (!sh) {
		perror("connhold: mmap");
		return 1;
	}
	atomic_store(&sh->phase, PH_RAMP);
	signals_block(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	t0 = now_s();
	rc = procs_fork(pids, o.procs, &set, proc_main, sh);
	if (rc < 0) {
		fprintf(stderr, "connhold: fork: %s\n", strerror(-rc));
		atomic_store(&sh->phase, PH_EXIT);
		return 1;
	}
	printf("connhold: %lu connections, %lu processes, %u sources, %lu pending each%s\n",
	       o.conns, o.procs, o.n_src, o.pending, o.rate > 0 ? ", rate-limited" : "");

	next_report = t0 + 1;
	while (!stopped) {
		int s = signal_wait(&set, 100);
		double now = now_s();
		int ph = atomic_load(&sh->phase);

		if (s == SIGINT || s == SIGTERM || (s == SIGCHLD && child_died())) {
			stopped = true;
			break;
		}
		if (s == SIGUSR2 && ph == PH_RAMP && !atomic_exchange(&sh->stop_ramp, 1))
			printf("ramp: stopping at %lu established (SIGUSR2)\n", SUM(established));
		if (ph == PH_RAMP && ALL(ramp_done)) {
			ramp_s = now - t0;
			progress(t0, false);
			printf("ramp done: held=%lu failed=%lu in %.2f s (%.0f/s)\n", SUM(established),
			       SUM(failed), ramp_s, SUM(established) / (ramp_s > 0 ? ramp_s : 1));
			atomic_store(&sh->phase, PH_HOLD);
			hold_until = now + o.hold_s;
			continue;
		}
		if (ph == PH_HOLD && ((o.wait_usr1 && s == SIGUSR1) ||
				      (!o.wait_usr1 && now >= hold_until))) {
			printf("echo: sending one byte on each of %lu connections\n",
			       SUM(established));
			atomic_store(&sh->phase, PH_ECHO);
			continue;
		}
		if (ph == PH_ECHO && ALL(echo_done)) {
			if (!o.keep || s == SIGUSR1)
				break;
			if (!summarized)
				summarize(t0, ramp_s);
			summarized = true;
			continue;
		}
		if (now >= next_report) {
			progress(t0, ph == PH_ECHO);
			next_report += 1;
			if (next_report < now)
				next_report = now + 1;
		}
	}
	if (!ramp_s)
		ramp_s = now_s() - t0;
	held = SUM(established);
	if (!summarized)
		summarize(t0, ramp_s);
	rc = !stopped && held == o.conns && SUM(echo_ok) == o.conns ? 0 : 1;
	atomic_store(&sh->phase, PH_EXIT);
	procs_reap(pids, o.procs, stopped);
	return rc;
}
