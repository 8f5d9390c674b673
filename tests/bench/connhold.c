// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * connhold: open many TCP connections, hold them, prove each one is usable.
 *
 *   connhold -d ADDR:PORT [-b SRCIP]... [-n CONNS] [-p PROCS] [-c PENDING]
 *            [-r RATE] [-T CONNECT_S] [-H HOLD_S | -w] [-E ECHO_S]
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
 * proves it is relayed end to end.
 *
 * Every second it prints to stdout
 *   progress: t=S established=N pending=N failed=N lost=N [echo_ok=N echo_failed=N]
 * and finally
 *   summary: target=N held=N failed=N lost=N echo_ok=N echo_failed=N ramp_s=S rate=N/s
 * followed by one "errors:" line when anything failed (errno names and
 * counts). Exit status 0 when every connection was held and echoed, 1
 * otherwise, 2 on usage errors. SIGINT/SIGTERM stop it early (the summary
 * is still printed).
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
#include <stddef.h>
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

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_SRC 64
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
	struct pstats p[];
};

struct opts {
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct sockaddr_storage src[MAX_SRC];
	socklen_t src_len[MAX_SRC];
	unsigned int n_src;
	unsigned long conns;
	unsigned int procs;
	unsigned int pending;
	double rate;
	unsigned int connect_s, hold_s, echo_s;
	bool wait_usr1;
};

static struct opts o = {
	.conns = 1000,
	.pending = 256,
	.connect_s = 30,
	.echo_s = 30,
};
static struct shared *sh;

static void usage(FILE *out)
{
	fprintf(out, "usage: connhold -d ADDR:PORT [-b SRCIP]... [-n CONNS] [-p PROCS] "
		"[-c PENDING] [-r RATE] [-T CONNECT_S] [-H HOLD_S | -w] [-E ECHO_S]\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "1.2.3.4", "2001:db8::1", with port: "1.2.3.4:80", "[2001:db8::1]:80". */
static int parse_addr(const char *s, bool want_port, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port = NULL;
	unsigned long p = 0;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, rb - s - 1);
		host[rb - s - 1] = '\0';
		if (rb[1] == ':')
			port = rb + 2;
		else if (rb[1])
			return -1;
	} else {
		const char *colon = strchr(s, ':');

		/* Unbracketed, only IPv4 takes a port (one colon). */
		if (want_port && colon && colon == strrchr(s, ':')) {
			if ((size_t)(colon - s) >= sizeof(host))
				return -1;
			memcpy(host, s, colon - s);
			host[colon - s] = '\0';
			port = colon + 1;
		} else {
			if (strlen(s) >= sizeof(host))
				return -1;
			strcpy(host, s);
		}
	}
	if (want_port != (port != NULL))
		return -1;
	if (port) {
		errno = 0;
		p = strtoul(port, &end, 10);
		if (errno || *end || !*port || p == 0 || p > 65535)
			return -1;
	}
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(p);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(p);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		*len = sizeof(*a);
	}
	return 0;
}

static unsigned long parse_num(const char *s, const char *what, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v > max) {
		fprintf(stderr, "connhold: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

/* --- one process: the connections [first, first + n) of the run --- */

struct proc {
	unsigned int id;
	unsigned long first, n;
	struct pstats *st;
	int ep;
	uint8_t *state;			/* by fd */
	double *since;			/* connect start, by fd */
	int maxfd;
	unsigned long started, pending;
	double t0;
};

static void fail_conn(struct proc *p, int fd, int err)
{
	if (err < 0 || err > MAX_ERRNO)
		err = MAX_ERRNO;
	atomic_fetch_add(&p->st->errors[err], 1);
	atomic_fetch_add(&p->st->failed, 1);
	p->state[fd] = C_NONE;
	close(fd);
}

static void start_one(struct proc *p)
{
	unsigned long idx = p->first + p->started++;
	struct epoll_event ev = { .events = EPOLLOUT, };
	int fd, one = 1, err;

	fd = socket(o.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		err = errno;
		atomic_fetch_add(&p->st->errors[err > MAX_ERRNO ? MAX_ERRNO : err], 1);
		atomic_fetch_add(&p->st->failed, 1);
		return;
	}
	if (fd > p->maxfd) {
		/* The arrays are sized from the open-file limit, so this cannot happen. */
		close(fd);
		atomic_fetch_add(&p->st->errors[EMFILE], 1);
		atomic_fetch_add(&p->st->failed, 1);
		return;
	}
	if (o.n_src) {
		unsigned int s = idx % o.n_src;

		/*
		 * Let connect() pick the port for the whole 4-tuple: a bare
		 * bind() would reserve a port per source address for any
		 * destination and search the port space on every call.
		 */
		setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&o.src[s], o.src_len[s]) == -1) {
			fail_conn(p, fd, errno);
			return;
		}
	}
	if (connect(fd, (struct sockaddr *)&o.dst, o.dst_len) == -1 && errno != EINPROGRESS) {
		fail_conn(p, fd, errno);
		return;
	}
	ev.data.fd = fd;
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
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

static void on_event(struct proc *p, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
	uint8_t b;
	ssize_t n;

	switch (p->state[fd]) {
	case C_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof(err);

		p->pending--;
		atomic_store(&p->st->pending, p->pending);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (!err && (events & (EPOLLERR | EPOLLHUP)))
			err = ECONNRESET;
		if (err) {
			fail_conn(p, fd, err);
			return;
		}
		if (epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev) == -1) {
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

static void poll_events(struct proc *p, int timeout_ms)
{
	struct epoll_event evs[512];
	int n = epoll_wait(p->ep, evs, 512, timeout_ms);

	for (int i = 0; i < n; i++)
		on_event(p, evs[i].data.fd, evs[i].events);
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
		poll_events(p, 20);
	}
	/* What did not come back in time, or was never sent. */
	for (int fd = 0; fd <= p->maxfd; fd++)
		if (p->state[fd] == C_SENT || p->state[fd] == C_HELD)
			atomic_fetch_add(&p->st->echo_failed, 1);
}

static int proc_run(struct proc *p)
{
	struct rlimit rl;
	double rate = o.rate / o.procs, last_expire;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 1;
	p->maxfd = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : (int)rl.rlim_cur - 1;
	if (p->n + FD_RESERVE > (unsigned long)p->maxfd + 1) {
		fprintf(stderr, "connhold[%u]: %lu connections need %lu fds, the open-file limit "
			"is %d: use more processes (-p)\n", p->id, p->n, p->n + FD_RESERVE,
			p->maxfd + 1);
		return 1;
	}
	p->state = calloc(p->maxfd + 1, 1);
	p->since = calloc(p->maxfd + 1, sizeof(*p->since));
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!p->state || !p->since || p->ep == -1) {
		fprintf(stderr, "connhold[%u]: setup: %s\n", p->id, strerror(errno));
		return 1;
	}
	p->t0 = last_expire = now_s();
	while (atomic_load(&sh->phase) == PH_RAMP) {
		double now = now_s();
		unsigned long done = atomic_load(&p->st->established) + atomic_load(&p->st->lost) +
				     atomic_load(&p->st->failed);

		while (p->started < p->n && p->pending < o.pending &&
		       (rate <= 0 || p->started < (now - p->t0) * rate + 1))
			start_one(p);
		if (now - last_expire >= 0.5) {
			expire_connects(p, now);
			last_expire = now;
		}
		if (p->started == p->n && !p->pending && done >= p->n)
			atomic_store(&p->st->ramp_done, 1);
		poll_events(p, 10);
	}
	while (atomic_load(&sh->phase) == PH_HOLD)
		poll_events(p, 100);
	if (atomic_load(&sh->phase) == PH_ECHO)
		echo_all(p);
	atomic_store(&p->st->echo_done, 1);
	while (atomic_load(&sh->phase) != PH_EXIT)
		poll_events(p, 100);
	return 0;
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

/* Waits up to ms for SIGUSR1/SIGINT/SIGTERM/SIGCHLD; returns it, or 0. */
static int wait_signal(const sigset_t *set, long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	int s = sigtimedwait(set, NULL, &ts);

	return s == -1 ? 0 : s;
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
	bool stop = false, have_dst = false;
	unsigned long held;
	sigset_t set;
	size_t shsize;
	int c, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "d:b:n:p:c:r:T:H:wE:h")) != -1) {
		switch (c) {
		case 'd':
			if (parse_addr(optarg, true, &o.dst, &o.dst_len) < 0) {
				fprintf(stderr, "connhold: bad destination '%s'\n", optarg);
				return 2;
			}
			have_dst = true;
			break;
		case 'b':
			if (o.n_src == MAX_SRC ||
			    parse_addr(optarg, false, &o.src[o.n_src], &o.src_len[o.n_src]) < 0) {
				fprintf(stderr, "connhold: bad or too many source addresses '%s'\n",
					optarg);
				return 2;
			}
			o.n_src++;
			break;
		case 'n':
			o.conns = parse_num(optarg, "connection count", 100000000);
			break;
		case 'p':
			o.procs = parse_num(optarg, "process count", MAX_PROCS);
			break;
		case 'c':
			o.pending = parse_num(optarg, "pending count", 1000000);
			break;
		case 'r':
			o.rate = parse_num(optarg, "rate", 100000000);
			break;
		case 'T':
			o.connect_s = parse_num(optarg, "connect timeout", 3600);
			break;
		case 'H':
			o.hold_s = parse_num(optarg, "hold time", 86400);
			break;
		case 'w':
			o.wait_usr1 = true;
			break;
		case 'E':
			o.echo_s = parse_num(optarg, "echo timeout", 3600);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!have_dst || optind != argc || !o.pending) {
		usage(stderr);
		return 2;
	}
	for (unsigned int i = 0; i < o.n_src; i++)
		if (o.src[i].ss_family != o.dst.ss_family) {
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
	shsize = sizeof(*sh) + o.procs * sizeof(sh->p[0]);
	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("connhold: mmap");
		return 1;
	}
	atomic_store(&sh->phase, PH_RAMP);

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	t0 = now_s();
	for (unsigned int i = 0; i < o.procs; i++) {
		unsigned long base = o.conns / o.procs, extra = o.conns % o.procs;
		struct proc p = {
			.id = i,
			.first = i * base + (i < extra ? i : extra),
			.n = base + (i < extra),
			.st = &sh->p[i],
		};

		pids[i] = fork();
		if (pids[i] == -1) {
			perror("connhold: fork");
			atomic_store(&sh->phase, PH_EXIT);
			for (unsigned int j = 0; j < i; j++)
				kill(pids[j], SIGKILL);
			return 1;
		}
		if (pids[i] == 0) {
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			signal(SIGINT, SIG_IGN);	/* the parent decides */
			_exit(proc_run(&p));
		}
	}
	printf("connhold: %lu connections, %u processes, %u sources, %u pending each%s\n",
	       o.conns, o.procs, o.n_src, o.pending, o.rate > 0 ? ", rate-limited" : "");

	next_report = t0 + 1;
	while (!stop) {
		int s = wait_signal(&set, 100);
		double now = now_s();
		int ph = atomic_load(&sh->phase);

		if (s == SIGINT || s == SIGTERM || (s == SIGCHLD && child_died())) {
			stop = true;
			break;
		}
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
		if (ph == PH_ECHO && ALL(echo_done))
			break;
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
	progress(t0, true);
	printf("summary: target=%lu held=%lu failed=%lu lost=%lu echo_ok=%lu echo_failed=%lu "
	       "ramp_s=%.2f rate=%.0f/s\n", o.conns, held, SUM(failed), SUM(lost), SUM(echo_ok),
	       SUM(echo_failed), ramp_s, held / (ramp_s > 0 ? ramp_s : 1));
	print_errors();
	rc = !stop && held == o.conns && SUM(echo_ok) == o.conns ? 0 : 1;
	atomic_store(&sh->phase, PH_EXIT);
	for (unsigned int i = 0; i < o.procs; i++) {
		if (stop)
			kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	return rc;
}
