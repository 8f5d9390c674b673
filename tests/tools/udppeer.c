// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * udppeer: datagram test peer for lb's UDP tests and benchmarks.
 *
 *   udppeer echo [-v] [-j PROCS] [-d] ADDR:PORT [ADDR:PORT...]
 *   udppeer gen [-v] [-b SRCIP]... [-f FLOWS] [-s SIZE] [-S MAX] [-r RATE]
 *               [-t SECONDS] [-w MS] [-n COUNT] ADDR:PORT
 *
 * echo sends every datagram back to where it came from, in batches
 * (recvmmsg/sendmmsg). With -v it prints "echo: ADDR:PORT from SRC" the
 * first time a source is seen on a listening address; with -d it drops
 * (does not answer) every datagram; -j forks PROCS processes sharing each
 * address (SO_REUSEPORT).
 *
 * gen opens FLOWS sockets (1), each bound to the next -b address (round
 * robin; none: the kernel's choice) with a port of the kernel's choice,
 * connected to ADDR:PORT, and sends SIZE-byte datagrams (64; 16..65507) at
 * RATE datagrams per second over all flows (0: as fast as it can) for
 * SECONDS (5) or until COUNT were sent, then waits -w MS (500) for the last
 * echoes. With -S, sizes vary: three datagrams of MAX bytes, then one of
 * SIZE..MAX-1 (a mix that a proxy forwarding runs of equal datagrams as one
 * send must cut right), each datagram's size known from its sequence. Every datagram carries its flow, a sequence number and a
 * deterministic payload; an echo that does not match byte for byte is
 * counted bad. It prints
 *   gen: F flows: sent S, received R, lost L (P%), bad B, T s, D datagrams/s, G Gbit/s
 * (rates of what was sent) and, for each flow that got no answer at all,
 * "gen: flow I from SRC: no answer"; with -v, for every flow,
 * "gen: flow I from SRC: sent S, received R". Exit status 0 when nothing
 * came back bad, 1 otherwise, 2 on usage errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x4c425544u		/* "LBUD" */
#define HDR 16				/* magic, flow, sequence */
#define BATCH 64
#define MAX_DGRAM 65507
#define MAX_ADDRS 64
#define MAX_SEEN 4096

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static const char *prog = "udppeer";
static volatile sig_atomic_t stop;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: udppeer echo [-v] [-j PROCS] [-d] ADDR:PORT [ADDR:PORT...]\n"
		"       udppeer gen [-v] [-b SRCIP]... [-f FLOWS] [-s SIZE] [-S MAX] [-r RATE]\n"
		"                   [-t SECONDS] [-w MS] [-n COUNT] ADDR:PORT\n");
	exit(2);
}

static void on_signal(int sig)
{
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "198.18.0.1:53", "[2001:db8::1]:53", or with port false a bare address. */
static int addr_parse(const char *text, bool port, union addr *a)
{
	char buf[128], *host = buf, *p = NULL;

	if (strlen(text) >= sizeof(buf))
		return -1;
	strcpy(buf, text);
	memset(a, 0, sizeof(*a));
	if (port) {
		p = strrchr(buf, ':');
		if (!p)
			return -1;
		*p++ = '\0';
		if (*host == '[') {
			host++;
			if (host[strlen(host) - 1] != ']')
				return -1;
			host[strlen(host) - 1] = '\0';
		}
	}
	if (inet_pton(AF_INET, host, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons(p ? atoi(p) : 0);
	} else if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(p ? atoi(p) : 0);
	} else {
		return -1;
	}
	return 0;
}

static socklen_t addr_len(const union addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

static const char *addr_str(const union addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
	} else {
		inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(a->in.sin_port));
	}
	return buf;
}

static bool addr_equal(const union addr *a, const union addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET6)
		return a->in6.sin6_port == b->in6.sin6_port &&
		       !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr));
	return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
}

/* ---- echo ---- */

struct listener {
	int fd;
	union addr addr;
	union addr seen[MAX_SEEN];
	size_t n_seen;
};

static void echo_note(struct listener *l, const union addr *from)
{
	char a[80], b[80];

	for (size_t i = 0; i < l->n_seen; i++)
		if (addr_equal(&l->seen[i], from))
			return;
	if (l->n_seen < MAX_SEEN)
		l->seen[l->n_seen++] = *from;
	printf("echo: %s from %s\n", addr_str(&l->addr, a, sizeof(a)), addr_str(from, b, sizeof(b)));
	fflush(stdout);
}

static void echo_run(struct listener *ls, size_t n, bool verbose, bool drop)
{
	static char bufs[BATCH][MAX_DGRAM];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	union addr from[BATCH];
	int ep = epoll_create1(0);

	if (ep == -1)
		die("epoll: %s", strerror(errno));
	for (size_t i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ls[i] };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, ls[i].fd, &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
	while (!stop) {
		struct epoll_event evs[16];
		int ne = epoll_wait(ep, evs, 16, 200);

		for (int e = 0; e < ne; e++) {
			struct listener *l = evs[e].data.ptr;
			int got;

			for (int i = 0; i < BATCH; i++) {
				iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = MAX_DGRAM };
				msgs[i] = (struct mmsghdr){ .msg_hdr = {
					.msg_name = &from[i], .msg_namelen = sizeof(from[i]),
					.msg_iov = &iov[i], .msg_iovlen = 1 } };
			}
			got = recvmmsg(l->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
			if (got <= 0)
				continue;
			for (int i = 0; i < got; i++) {
				if (verbose)
					echo_note(l, &from[i]);
				iov[i].iov_len = msgs[i].msg_len;
			}
			if (!drop)
				sendmmsg(l->fd, msgs, got, MSG_DONTWAIT);
		}
	}
}

static int cmd_echo(int argc, char **argv)
{
	bool verbose = false, drop = false;
	pid_t children[64];
	int procs = 1, c;
	struct listener *ls;
	size_t n;

	while ((c = getopt(argc, argv, "vdj:")) != -1) {
		switch (c) {
		case 'v':
			verbose = true;
			break;
		case 'd':
			drop = true;
			break;
		case 'j':
			procs = atoi(optarg);
			if (procs < 1 || procs > 64)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	n = argc - optind;
	ls = calloc(n, sizeof(*ls));
	if (!ls)
		die("out of memory");
	for (size_t i = 0; i < n; i++) {
		int one = 1, size = 4 << 20;

		if (addr_parse(argv[optind + i], true, &ls[i].addr) < 0)
			die("bad address: %s", argv[optind + i]);
		ls[i].fd = socket(ls[i].addr.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (ls[i].fd == -1)
			die("socket: %s", strerror(errno));
		setsockopt(ls[i].fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		setsockopt(ls[i].fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		if (bind(ls[i].fd, &ls[i].addr.sa, addr_len(&ls[i].addr)) == -1)
			die("bind %s: %s", argv[optind + i], strerror(errno));
	}
	/* The others share each address: the kernel spreads sources over them. */
	for (int p = 1; p < procs; p++) {
		pid_t pid = fork();

		if (pid == -1)
			die("fork: %s", strerror(errno));
		children[p - 1] = pid;
		if (pid == 0) {
			for (size_t i = 0; i < n; i++) {
				int fd = socket(ls[i].addr.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;

				setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
				if (fd == -1 || bind(fd, &ls[i].addr.sa, addr_len(&ls[i].addr)) == -1)
					die("bind: %s", strerror(errno));
				close(ls[i].fd);
				ls[i].fd = fd;
			}
			echo_run(ls, n, verbose, drop);
			_exit(0);
		}
	}
	echo_run(ls, n, verbose, drop);
	/* Its own children only: the process group is the caller's (a test, make). */
	for (int p = 1; p < procs; p++)
		kill(children[p - 1], SIGTERM);
	while (wait(NULL) > 0)
		;
	free(ls);
	return 0;
}

/* ---- gen ---- */

struct flow {
	int fd;
	union addr local;
	uint64_t next_seq, received;
};

static unsigned char pattern(uint32_t flow, uint64_t seq, size_t i)
{
	return (unsigned char)((flow * 131u + seq * 31u + i * 7u) >> 1);
}

/* Datagram seq of flow: size bytes, or with max > size, as -S describes. */
static size_t size_of(size_t size, size_t max, uint32_t flow, uint64_t seq)
{
	if (max <= size)
		return size;
	if (seq % 4 != 3)
		return max;
	return size + (size_t)((flow * 2654435761u + seq * 40503u) % (max - size));
}

static void fill(unsigned char *p, size_t size, uint32_t flow, uint64_t seq)
{
	uint32_t magic = htonl(MAGIC), f = htonl(flow);

	memcpy(p, &magic, 4);
	memcpy(p + 4, &f, 4);
	memcpy(p + 8, &seq, 8);
	for (size_t i = HDR; i < size; i++)
		p[i] = pattern(flow, seq, i);
}

/* True when p is a whole datagram of flow as fill() made it. */
static bool check(const unsigned char *p, size_t len, size_t size, size_t max, uint32_t flow)
{
	uint32_t magic, f;
	uint64_t seq;

	if (len < HDR)
		return false;
	memcpy(&magic, p, 4);
	memcpy(&f, p + 4, 4);
	memcpy(&seq, p + 8, 8);
	if (ntohl(magic) != MAGIC || ntohl(f) != flow)
		return false;
	size = size_of(size, max, flow, seq);
	if (len != size)
		return false;
	for (size_t i = HDR; i < size; i++)
		if (p[i] != pattern(flow, seq, i))
			return false;
	return true;
}

static int cmd_gen(int argc, char **argv)
{
	union addr srcs[MAX_ADDRS], dst;
	size_t n_srcs = 0, n_flows = 1, size = 64, max = 0, sent_total = 0;
	double rate = 0, seconds = 5, wait_ms = 500, t0, t_end, t_last = 0;
	uint64_t count = 0, received = 0, bad = 0;
	bool verbose = false;
	static unsigned char bufs[BATCH][MAX_DGRAM];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct flow *flows;
	int c, ep;

	while ((c = getopt(argc, argv, "vb:f:s:S:r:t:w:n:")) != -1) {
		switch (c) {
		case 'v':
			verbose = true;
			break;
		case 'b':
			if (n_srcs == MAX_ADDRS || addr_parse(optarg, false, &srcs[n_srcs]) < 0)
				usage();
			n_srcs++;
			break;
		case 'f':
			n_flows = strtoul(optarg, NULL, 10);
			break;
		case 's':
			size = strtoul(optarg, NULL, 10);
			break;
		case 'S':
			max = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rate = strtod(optarg, NULL);
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'w':
			wait_ms = strtod(optarg, NULL);
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || addr_parse(argv[optind], true, &dst) < 0 || !n_flows ||
	    n_flows > 20000 || size < HDR || size > MAX_DGRAM || max > MAX_DGRAM ||
	    (max && max <= size) || rate < 0 || seconds <= 0)
		usage();
	flows = calloc(n_flows, sizeof(*flows));
	ep = epoll_create1(0);
	if (!flows || ep == -1)
		die("out of memory");
	for (size_t i = 0; i < n_flows; i++) {
		struct flow *f = &flows[i];
		socklen_t len = sizeof(f->local);
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
		int bufsz = 4 << 20;

		f->fd = socket(dst.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (f->fd == -1)
			die("socket: %s", strerror(errno));
		setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		if (n_srcs && bind(f->fd, &srcs[i % n_srcs].sa, addr_len(&srcs[i % n_srcs])) == -1)
			die("bind: %s", strerror(errno));
		if (connect(f->fd, &dst.sa, addr_len(&dst)) == -1)
			die("connect %s: %s", argv[optind], strerror(errno));
		getsockname(f->fd, &f->local.sa, &len);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	t0 = now_s();
	t_end = t0 + seconds;
	for (size_t flow = 0;;) {
		double t = now_s();
		struct epoll_event evs[64];
		bool sending = t < t_end && !stop && (!count || sent_total < count);
		int ne, timeout = 0;

		if (sending) {
			/* Owed by now at RATE; a batch at a time, one flow after the other. */
			size_t due = rate ? (size_t)((t - t0) * rate) : sent_total + BATCH;
			size_t owed = due > sent_total ? due - sent_total : 0;
			size_t n = owed < BATCH ? owed : BATCH;
			struct flow *f = &flows[flow];

			if (count && n > count - sent_total)
				n = count - sent_total;
			for (size_t i = 0; i < n; i++) {
				size_t len = size_of(size, max, flow, f->next_seq + i);

				fill(bufs[i], len, flow, f->next_seq + i);
				iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = len };
				msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
			}
			if (n) {
				int m = sendmmsg(f->fd, msgs, n, MSG_DONTWAIT);

				if (m > 0) {
					f->next_seq += m;
					sent_total += m;
				}
				flow = (flow + 1) % n_flows;
			} else {
				timeout = 1;
			}
		} else {
			timeout = 20;
		}
		if (!sending) {
			t_last = t_last ? t_last : t;
			if ((t - t_last) * 1000 >= wait_ms || received + bad >= sent_total)
				break;
		}
		ne = epoll_wait(ep, evs, 64, timeout);
		for (int e = 0; e < ne; e++) {
			struct flow *f = &flows[evs[e].data.u64];
			int got;

			for (int i = 0; i < BATCH; i++) {
				iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = MAX_DGRAM };
				msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
			}
			got = recvmmsg(f->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
			for (int i = 0; i < got; i++) {
				if (check(bufs[i], msgs[i].msg_len, size, max, evs[e].data.u64)) {
					received++;
					f->received++;
				} else {
					bad++;
				}
			}
		}
	}
	{
		double secs = (t_last ? t_last : now_s()) - t0;
		uint64_t lost = sent_total > received ? sent_total - received : 0;
		char a[80];

		printf("gen: %zu flows: sent %zu, received %llu, lost %llu (%.3f%%), bad %llu, %.2f s, "
		       "%.0f datagrams/s, %.3f Gbit/s\n", n_flows, sent_total,
		       (unsigned long long)received, (unsigned long long)lost,
		       sent_total ? 100.0 * lost / sent_total : 0.0, (unsigned long long)bad, secs,
		       secs > 0 ? sent_total / secs : 0, secs > 0 ? sent_total * size * 8 / secs / 1e9 : 0);
		for (size_t i = 0; i < n_flows; i++)
			if (verbose)
				printf("gen: flow %zu from %s: sent %llu, received %llu\n", i,
				       addr_str(&flows[i].local, a, sizeof(a)),
				       (unsigned long long)flows[i].next_seq,
				       (unsigned long long)flows[i].received);
			else if (!flows[i].received && flows[i].next_seq)
				printf("gen: flow %zu from %s: no answer\n", i,
				       addr_str(&flows[i].local, a, sizeof(a)));
	}
	free(flows);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (!strcmp(argv[1], "echo"))
		return cmd_echo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "gen"))
		return cmd_gen(argc - 1, argv + 1);
	usage();
}
