// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * peer: byte-exact TCP test peer for lb's integration tests.
 *
 *   peer serve [-v] ADDR:PORT [ADDR:PORT...]
 *   peer client [-b SRCIP] [-n CONNS] [-p PARALLEL] [-s MAXSIZE | -u UP -d DOWN]
 *               [-S SEED] [-t SECONDS] [-r RATE [-R SECONDS]] [-P] ADDR:PORT
 *   peer echo [-v] ADDR:PORT [ADDR:PORT...]
 *   peer rst [-i] [-v] ADDR:PORT [ADDR:PORT...]
 *   peer early ADDR:PORT [ADDR:PORT...]
 *   peer hold [-b SRCIP] [-n CONNS] [-p PARALLEL] [-e] [-R] ADDR:PORT
 *   peer sink [-A] [-l BACKLOG] [-v] ADDR:PORT [ADDR:PORT...]
 *   peer ping [-b SRCIP] [-n CONNS] [-i MS] [-T MS] [-t SECONDS] ADDR:PORT
 *   peer churn [-b SRCIP]... [-n CONNS] [-p PARALLEL | -r RATE] [-e | -a] [-T MS] [-L]
 *              [-t SECONDS] ADDR:PORT
 *
 * Protocol, per connection: the client sends a 32-byte header (magic, upload
 * size, download size, seed; big endian), then the upload bytes, then
 * half-closes. The server checks every upload byte against the same
 * deterministic stream and waits for the client's FIN, then sends one status
 * byte ('K' upload verified, 'F' not) and the download bytes, then closes. The
 * client checks the status, every download byte and that EOF comes exactly
 * after them. The server answering only after the FIN makes half-close
 * propagation part of what is tested.
 *
 * client -r RATE reads at most RATE bytes per second (in 10 ms ticks), for the
 * first -R SECONDS only if given, to make a slow reader; -P prints the bytes
 * moved so far to stderr every 0.5 s.
 *
 * echo sends back what it reads and closes after the client's FIN. rst
 * accepts and closes with a reset (SO_LINGER 0) as soon as the first bytes
 * arrive, or at once with -i. With -v, servers print how each connection
 * ended ("eof", "reset", "error ...").
 *
 * early sends "early\n" and its FIN at once, then counts what the client still
 * sends and prints "early: ADDR: N bytes after our FIN, then EOF" at EOF.
 *
 * hold opens CONNS connections and keeps them open until SIGTERM/SIGINT, then
 * closes them (with a reset when -R). With -e it sends one byte on each and
 * waits for it to come back (run it against an echo server), which proves the
 * connection is relayed end to end and not just sitting in a listen queue.
 * At most PARALLEL (default 256) handshakes are under way at once. It
 * prints a status line to stdout whenever the counts change (at most every
 * 100 ms) and on exit:
 *   hold: N conns: C connected, A answered, E eof, X reset, F failed
 *
 * sink accepts and reads everything but never writes (a backend that never
 * answers); with -A it listens with backlog BACKLOG (default 1) and never
 * accepts, so its accept queue fills and later SYNs go unanswered.
 *
 * ping opens CONNS connections to an echo server and, on each, sends an
 * 8-byte sequence number every -i MS (default 50) and waits for it to come
 * back. Once all are connected it prints "ping: conn I port P" for each and
 * "ping: ready"; a connection that ends prints at once
 *   ping: conn I port P: END at T s after R round trips
 * (END: eof, reset, error ..., stalled: no echo for -T MS, default 2000).
 * After -t SECONDS (default 10) or SIGTERM it prints one line per connection
 *   ping: conn I port P: R round trips, max gap G ms, END
 * (END "ok" for connections still alive that had a round trip answered) and a
 * total line; exit 0 when every connection is ok.
 *
 * churn opens CONNS connections, PARALLEL at a time, and closes each with a
 * reset (SO_LINGER 0) as soon as it is established; with -e each first sends
 * one byte and waits for it to come back (against an echo server), with -a
 * every second one does. Several -b rotate source addresses. With -r it
 * starts RATE connections a second instead, however many are under way (a
 * probe of new connections while something changes); -T MS fails a
 * connection not done MS after it started; -L prints every failure as
 *   churn: fail WALL_MS I: WHAT: REASON
 * (WALL_MS: when conn I started, in ms since the epoch). It prints
 *   churn: N conns: C connected, E echoed, F failed in S s
 * and exits 0 when none failed.
 *
 * Sizes take K, M or G suffixes (powers of 1024). Addresses are
 * 198.18.0.1:80 or [2001:db8::1]:80. Exit status: 0 when every connection
 * checked out, 1 otherwise, 2 on usage errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HDR_LEN 32
#define HDR_MAGIC 0x4c425031u /* "LBP1" */
#define BUF_LEN 16384
#define MAX_EVENTS 256
#define MAX_REPORTS 20

#define ST_OK 'K'
#define ST_FAIL 'F'

static const char *prog = "peer";
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

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr,
		"usage: peer serve [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer client [-b SRCIP] [-n CONNS] [-p PARALLEL] [-s MAXSIZE | -u UP -d DOWN]\n"
		"                   [-S SEED] [-t SECONDS] [-r RATE [-R SECONDS]] [-P] ADDR:PORT\n"
		"       peer echo [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer rst [-i] [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer early ADDR:PORT [ADDR:PORT...]\n"
		"       peer hold [-b SRCIP] [-n CONNS] [-p PARALLEL] [-e] [-R] ADDR:PORT\n"
		"       peer sink [-A] [-l BACKLOG] [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer ping [-b SRCIP] [-n CONNS] [-i MS] [-T MS] [-t SECONDS] ADDR:PORT\n"
		"       peer churn [-b SRCIP]... [-n CONNS] [-p PARALLEL | -r RATE] [-e | -a] [-T MS]\n"
		"                  [-L] [-t SECONDS] ADDR:PORT\n");
	exit(2);
}

/* splitmix64: tiny, fast and good enough to catch any reordering, loss or
 * corruption of bytes. */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct stream {
	uint64_t state;
	uint8_t buf[8];
	unsigned int avail;
};

#define DIR_UP 0x7570u
#define DIR_DOWN 0x646f776eu

static void stream_init(struct stream *st, uint64_t seed, uint64_t dir)
{
	st->state = seed ^ (dir * 0xd6e8feb86659fd93ull);
	st->avail = 0;
}

static void stream_fill(struct stream *st, uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t n;

		if (st->avail == 0) {
			uint64_t v = splitmix64(&st->state);

			for (int i = 0; i < 8; i++)
				st->buf[i] = (uint8_t)(v >> (8 * i));
			st->avail = 8;
		}
		n = len < st->avail ? len : st->avail;
		memcpy(p, st->buf + 8 - st->avail, n);
		st->avail -= n;
		p += n;
		len -= n;
	}
}

/* Compares the next len bytes of st with p; returns the index of the first
 * differing byte, or len when all match. */
static size_t stream_check(struct stream *st, const uint8_t *p, size_t len)
{
	uint8_t want[BUF_LEN];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);

		stream_fill(st, want, n);
		if (memcmp(want, p + done, n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (want[i] != p[done + i])
					return done + i;
		}
		done += n;
	}
	return len;
}

/* Big-endian store and load of the low n bytes. */
static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Parses "1234", "64K", "64M", "1G" into *out; returns 0 or -EINVAL. */
static int parse_size(const char *s, uint64_t *out)
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

/* Parses a bare address ("198.18.0.10", "2001:db8::10" or "[2001:db8::10]")
 * with the given port; returns 0 or -EINVAL. */
static int parse_ip(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(s);

	memset(ss, 0, sizeof(*ss));
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
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (s[0] != '[' && inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

/* Parses "198.18.0.1:80" or "[2001:db8::1]:80"; returns 0 or -EINVAL. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
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
	return parse_ip(host, (uint16_t)port, ss, len);
}

static const char *fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
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

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void on_signal(int sig)
{
	stop = sig;
}

/* Blocks SIGINT/SIGTERM except inside epoll_pwait(), so a signal can never
 * slip in between checking `stop` and going to sleep. Returns the mask to
 * pass to epoll_pwait. */
static sigset_t setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, old;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigdelset(&old, SIGINT);
	sigdelset(&old, SIGTERM);
	return old;
}

static void ep_set(int ep, int op, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(ep, op, fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

/* ---- servers (serve, echo, rst) ---- */

enum kind { K_LISTEN, K_SERVE, K_ECHO, K_RST, K_EARLY, K_SINK };

static bool srv_verbose, rst_at_once, sink_no_accept;
static int listen_backlog = 4096;

struct sconn {
	enum kind kind;
	int fd;
	struct sockaddr_storage peer;
	enum { S_HEADER, S_UPLOAD, S_SEND } state;
	uint8_t hdr[HDR_LEN];
	size_t hdr_len;
	uint64_t up, down, got, sent;
	bool bad, rd_eof;
	uint32_t events;
	struct stream up_st, down_st;
	uint8_t buf[BUF_LEN];
	size_t len, off;
};

struct listener {
	enum kind kind;
	int fd;
	enum kind child;
};

static struct {
	uint64_t conns, ok, failed, up, down;
} srv_stats;

static void sconn_fail(struct sconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sconn_fail(struct sconn *c, const char *fmt, ...)
{
	char a[INET6_ADDRSTRLEN + 8];
	va_list ap;

	fprintf(stderr, "%s: serve: %s: ", prog, fmt_addr(&c->peer, a, sizeof(a)));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	c->bad = true;
}

static void sconn_close(struct sconn *c, bool ok)
{
	close(c->fd);
	if (c->kind == K_SERVE) {
		if (ok && !c->bad)
			srv_stats.ok++;
		else
			srv_stats.failed++;
	}
	free(c);
}

/* With -v: says how a connection ended ("eof", "reset", ...). */
static void sconn_log_end(const struct sconn *c, const char *how, int err)
{
	static const char *const names[] = { [K_SERVE] = "serve", [K_ECHO] = "echo", [K_RST] = "rst",
					     [K_EARLY] = "early", [K_SINK] = "sink" };
	char a[INET6_ADDRSTRLEN + 8];

	if (!srv_verbose)
		return;
	if (err == ECONNRESET)
		how = "reset";
	fprintf(stderr, "%s: %s: %s: %s%s%s\n", prog, names[c->kind],
		fmt_addr(&c->peer, a, sizeof(a)), how, err && err != ECONNRESET ? ": " : "",
		err && err != ECONNRESET ? strerror(err) : "");
}

static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void sconn_want(int ep, struct sconn *c, uint32_t events)
{
	if (events != c->events) {
		ep_set(ep, EPOLL_CTL_MOD, c->fd, events, c);
		c->events = events;
	}
}

static int listen_on(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;
	char a[INET6_ADDRSTRLEN + 8];

	if (parse_addr(spec, &ss, &len) < 0)
		die("bad address '%s' (want 198.18.0.1:80 or [2001:db8::1]:80)", spec);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		die("bind %s: %s", fmt_addr(&ss, a, sizeof(a)), strerror(errno));
	if (listen(fd, listen_backlog) == -1)
		die("listen %s: %s", fmt_addr(&ss, a, sizeof(a)), strerror(errno));
	fprintf(stderr, "%s: listening on %s\n", prog, fmt_addr(&ss, a, sizeof(a)));
	return fd;
}

static void do_accept(int ep, struct listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct sconn *c;

		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "%s: accept: %s\n", prog, strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c)
			die("out of memory");
		c->kind = l->child;
		c->fd = fd;
		c->peer = ss;
		c->events = EPOLLIN;
		if (c->kind == K_EARLY) {
			/* Tiny, so it always fits the empty send buffer. */
			if (send(fd, "early\n", 6, MSG_NOSIGNAL) != 6 || shutdown(fd, SHUT_WR) == -1) {
				sconn_log_end(c, "send", errno);
				sconn_close(c, false);
				continue;
			}
		}
		if (c->kind == K_RST && rst_at_once) {
			sconn_log_end(c, "reset sent at accept", 0);
			close_rst(fd);
			free(c);
			continue;
		}
		if (c->kind == K_SERVE)
			srv_stats.conns++;
		ep_set(ep, EPOLL_CTL_ADD, fd, c->events, c);
	}
}

/* Serve protocol: returns false when the connection is finished (closed). */
static bool serve_read(int ep, struct sconn *c)
{
	uint8_t buf[65536];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	size_t off = 0;

	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return true;
		sconn_fail(c, "read: %s (after %" PRIu64 " upload bytes)", strerror(errno), c->got);
		sconn_close(c, false);
		return false;
	}
	if (n == 0) {
		if (c->state == S_HEADER) {
			sconn_fail(c, "EOF inside header (%zu of %d bytes)", c->hdr_len, HDR_LEN);
			sconn_close(c, false);
			return false;
		}
		if (!c->bad && c->got != c->up)
			sconn_fail(c, "short upload: %" PRIu64 " of %" PRIu64 " bytes", c->got, c->up);
		srv_stats.up += c->got;
		c->buf[0] = c->bad ? ST_FAIL : ST_OK;
		c->len = 1;
		c->off = 0;
		c->state = S_SEND;
		if (c->bad)
			c->down = 0;
		sconn_want(ep, c, EPOLLOUT);
		return true;
	}
	if (c->state == S_SEND)
		return true; /* cannot happen after EOF; ignore */
	if (c->state == S_HEADER) {
		size_t take = HDR_LEN - c->hdr_len;

		if (take > (size_t)n)
			take = (size_t)n;
		memcpy(c->hdr + c->hdr_len, buf, take);
		c->hdr_len += take;
		off = take;
		if (c->hdr_len < HDR_LEN)
			return true;
		if ((uint32_t)get_be(c->hdr, 4) != HDR_MAGIC) {
			sconn_fail(c, "bad header magic 0x%08" PRIx32, (uint32_t)get_be(c->hdr, 4));
			sconn_close(c, false);
			return false;
		}
		c->up = get_be(c->hdr + 8, 8);
		c->down = get_be(c->hdr + 16, 8);
		stream_init(&c->up_st, get_be(c->hdr + 24, 8), DIR_UP);
		stream_init(&c->down_st, get_be(c->hdr + 24, 8), DIR_DOWN);
		c->state = S_UPLOAD;
	}
	if (off < (size_t)n && !c->bad) {
		size_t len = (size_t)n - off, i;

		if (c->got + len > c->up) {
			sconn_fail(c, "upload longer than announced %" PRIu64 " bytes", c->up);
		} else {
			i = stream_check(&c->up_st, buf + off, len);
			if (i != len)
				sconn_fail(c, "upload mismatch at byte %" PRIu64 " of %" PRIu64,
					   c->got + i, c->up);
		}
	}
	c->got += (size_t)n - off;
	return true;
}

static bool serve_write(struct sconn *c)
{
	for (;;) {
		ssize_t n;

		if (c->off == c->len) {
			uint64_t left = c->down - c->sent;

			if (left == 0) {
				srv_stats.down += c->sent;
				sconn_close(c, true);
				return false;
			}
			c->len = left < BUF_LEN ? (size_t)left : BUF_LEN;
			c->off = 0;
			stream_fill(&c->down_st, c->buf, c->len);
			c->sent += c->len;
		}
		n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			sconn_fail(c, "send: %s", strerror(errno));
			sconn_close(c, false);
			return false;
		}
		c->off += (size_t)n;
	}
}

/* rst: reset the connection as soon as the client's first bytes arrive. */
static void rst_event(struct sconn *c)
{
	ssize_t n = read(c->fd, c->buf, BUF_LEN);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		sconn_log_end(c, "reset sent after the first bytes", 0);
		close_rst(c->fd);
		free(c);
		return;
	}
	sconn_log_end(c, n == 0 ? "eof before any data" : "read", n == 0 ? 0 : errno);
	sconn_close(c, false);
}

/* early: counts what arrives after our own FIN, reports it at EOF. */
static void early_event(struct sconn *c)
{
	char a[INET6_ADDRSTRLEN + 8];

	for (;;) {
		ssize_t n = read(c->fd, c->buf, BUF_LEN);

		if (n > 0) {
			c->got += (uint64_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0)
			fprintf(stderr, "%s: early: %s: %" PRIu64 " bytes after our FIN, then EOF\n",
				prog, fmt_addr(&c->peer, a, sizeof(a)), c->got);
		else
			fprintf(stderr, "%s: early: %s: read: %s after %" PRIu64 " bytes\n", prog,
				fmt_addr(&c->peer, a, sizeof(a)), strerror(errno), c->got);
		sconn_close(c, n == 0);
		return;
	}
}

/* sink: read and drop everything, never answer. */
static void sink_event(struct sconn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->buf, BUF_LEN);

		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		sconn_log_end(c, n == 0 ? "eof" : "read", n == 0 ? 0 : errno);
		sconn_close(c, n == 0);
		return;
	}
}

static void echo_event(int ep, struct sconn *c, uint32_t events)
{
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->rd_eof && c->len < BUF_LEN) {
		ssize_t n = read(c->fd, c->buf + c->len, BUF_LEN - c->len);

		if (n == 0) {
			c->rd_eof = true;
		} else if (n > 0) {
			c->len += (size_t)n;
		} else if (errno != EAGAIN && errno != EINTR) {
			sconn_log_end(c, "read", errno);
			sconn_close(c, false);
			return;
		}
	}
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			sconn_log_end(c, "send", errno);
			sconn_close(c, false);
			return;
		}
		c->off += (size_t)n;
	}
	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->rd_eof && c->len == 0) {
		sconn_log_end(c, "eof", 0);
		sconn_close(c, true);
		return;
	}
	sconn_want(ep, c, (!c->rd_eof && c->len < BUF_LEN ? EPOLLIN : 0) |
			  (c->len > c->off ? EPOLLOUT : 0));
}

static int run_server(int argc, char **argv, enum kind child)
{
	struct epoll_event evs[MAX_EVENTS];
	struct listener **ls;
	sigset_t mask;
	int ep, opt;

	optind = 1;
	while ((opt = getopt(argc, argv, child == K_RST ? "iv" : child == K_SINK ? "Al:v" : "v")) != -1) {
		if (opt == 'v') {
			srv_verbose = true;
		} else if (opt == 'i') {
			rst_at_once = true;
		} else if (opt == 'A') {
			sink_no_accept = true;
		} else if (opt == 'l') {
			listen_backlog = atoi(optarg);
			if (listen_backlog < 0)
				die("-l: bad backlog '%s'", optarg);
		} else {
			usage();
		}
	}
	if (sink_no_accept && listen_backlog == 4096)
		listen_backlog = 1;
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	ls = calloc((size_t)argc, sizeof(*ls));
	if (!ls)
		die("out of memory");
	raise_nofile();
	mask = setup_signals();
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep == -1)
		die("epoll_create1: %s", strerror(errno));
	for (int i = 0; i < argc; i++) {
		struct listener *l = calloc(1, sizeof(*l));

		if (!l)
			die("out of memory");
		ls[i] = l;
		l->kind = K_LISTEN;
		l->child = child;
		l->fd = listen_on(argv[i]);
		/* sink -A: never accept, so the queue fills and stays full. */
		if (!sink_no_accept)
			ep_set(ep, EPOLL_CTL_ADD, l->fd, EPOLLIN, l);
	}
	while (!stop) {
		int n = epoll_pwait(ep, evs, MAX_EVENTS, -1, &mask);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			enum kind *k = evs[i].data.ptr;
			uint32_t e = evs[i].events;

			if (*k == K_LISTEN) {
				do_accept(ep, (struct listener *)k);
			} else if (*k == K_ECHO) {
				echo_event(ep, (struct sconn *)k, e);
			} else if (*k == K_RST) {
				rst_event((struct sconn *)k);
			} else if (*k == K_EARLY) {
				early_event((struct sconn *)k);
			} else if (*k == K_SINK) {
				sink_event((struct sconn *)k);
			} else {
				struct sconn *c = (struct sconn *)k;

				if (c->state != S_SEND) {
					if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
						serve_read(ep, c);
				} else {
					serve_write(c);
				}
			}
		}
	}
	if (child == K_SERVE)
		fprintf(stderr, "%s: serve: %" PRIu64 " connections, %" PRIu64 " ok, %" PRIu64
			" failed; upload %" PRIu64 " bytes, download %" PRIu64 " bytes\n",
			prog, srv_stats.conns, srv_stats.ok, srv_stats.failed, srv_stats.up,
			srv_stats.down);
	/* Open connections are left to exit(); listeners are freed so leak
	 * checkers stay quiet about the common case. */
	for (int i = 0; i < argc; i++) {
		close(ls[i]->fd);
		free(ls[i]);
	}
	free(ls);
	close(ep);
	return srv_stats.failed ? 1 : 0;
}

/* ---- client ---- */

struct cconn {
	int fd;
	unsigned int idx;
	enum { C_CONNECTING, C_SENDING, C_RECEIVING } state;
	uint64_t up, down, seed;
	uint64_t queued; /* header + upload bytes generated into buf */
	uint64_t rcvd;   /* status + download bytes received */
	struct stream up_st, down_st;
	uint8_t buf[BUF_LEN];
	size_t len, off;
	uint8_t status;
	bool throttled;  /* EPOLLIN off until the next rate tick */
};

struct client {
	struct sockaddr_storage dst, src;
	socklen_t dst_len, src_len;
	bool bind_src;
	unsigned int conns, parallel, started, active;
	uint64_t max_size, up, down, seed, rng;
	bool random_sizes;
	unsigned int ok, failed, reported;
	uint64_t up_bytes, down_bytes;
	struct cconn **live; /* by idx, so a timeout can say what was stuck */
	int ep;
	/* -r/-R: a token bucket refilled every RATE_TICK seconds. */
	uint64_t rate, tokens;
	double rate_until, next_tick;
	unsigned int n_throttled;
	/* -P */
	bool progress;
	double next_progress;
	uint64_t tx_total, rx_total;
};

#define RATE_TICK 0.01
#define PROGRESS_EVERY 0.5

static void cconn_end(struct client *cl, struct cconn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void cconn_end(struct client *cl, struct cconn *c, const char *fmt, ...)
{
	if (fmt) {
		struct sockaddr_storage local;
		socklen_t len = sizeof(local);
		char a[INET6_ADDRSTRLEN + 8];
		va_list ap;

		cl->failed++;
		if (cl->reported++ < MAX_REPORTS) {
			memset(&local, 0, sizeof(local));
			getsockname(c->fd, (struct sockaddr *)&local, &len);
			fprintf(stderr, "%s: conn %u from %s (up %" PRIu64 ", down %" PRIu64
				", seed %#" PRIx64 "): ", prog, c->idx,
				fmt_addr(&local, a, sizeof(a)), c->up, c->down, c->seed);
			va_start(ap, fmt);
			vfprintf(stderr, fmt, ap);
			va_end(ap);
			fputc('\n', stderr);
		}
	} else {
		cl->ok++;
		cl->up_bytes += c->up;
		cl->down_bytes += c->down;
	}
	close(c->fd);
	if (c->throttled)
		cl->n_throttled--;
	cl->active--;
	cl->live[c->idx] = NULL;
	free(c);
}

static uint64_t pick_size(struct client *cl)
{
	uint64_t r = splitmix64(&cl->rng), lim = cl->max_size;

	/* Half uniform, half log-uniform, so small sizes and buffer
	 * boundaries get their share. */
	if (r & 1) {
		unsigned int bits = 0;

		while (bits < 63 && (1ull << bits) < lim)
			bits++;
		bits = (unsigned int)((r >> 1) % (bits + 1));
		if (bits < 63 && (1ull << bits) < lim)
			lim = 1ull << bits;
	}
	return lim == UINT64_MAX ? splitmix64(&cl->rng) : splitmix64(&cl->rng) % (lim + 1);
}

static void cconn_start(struct client *cl)
{
	struct cconn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		die("out of memory");
	c->idx = cl->started++;
	cl->active++;
	cl->live[c->idx] = c;
	c->seed = splitmix64(&cl->rng);
	if (cl->random_sizes) {
		/* The first connections cover the edges. */
		switch (c->idx) {
		case 0: c->up = 0; c->down = 0; break;
		case 1: c->up = cl->max_size; c->down = 0; break;
		case 2: c->up = 0; c->down = cl->max_size; break;
		case 3: c->up = cl->max_size; c->down = cl->max_size; break;
		default: c->up = pick_size(cl); c->down = pick_size(cl); break;
		}
	} else {
		c->up = cl->up;
		c->down = cl->down;
	}
	stream_init(&c->up_st, c->seed, DIR_UP);
	stream_init(&c->down_st, c->seed, DIR_DOWN);
	put_be(c->buf, HDR_MAGIC, 4);
	put_be(c->buf + 4, 0, 4);
	put_be(c->buf + 8, c->up, 8);
	put_be(c->buf + 16, c->down, 8);
	put_be(c->buf + 24, c->seed, 8);
	c->len = HDR_LEN;
	c->queued = HDR_LEN;

	c->fd = socket(cl->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		die("socket: %s", strerror(errno));
	if (cl->bind_src) {
		if (cl->src.ss_family == AF_INET)
			setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&cl->src, cl->src_len) == -1) {
			cconn_end(cl, c, "bind: %s", strerror(errno));
			return;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&cl->dst, cl->dst_len) == -1 &&
	    errno != EINPROGRESS) {
		cconn_end(cl, c, "connect: %s", strerror(errno));
		return;
	}
	c->state = C_CONNECTING;
	ep_set(cl->ep, EPOLL_CTL_ADD, c->fd, EPOLLOUT, c);
}

/* Returns false when c was freed. */
static bool cconn_send(struct client *cl, struct cconn *c)
{
	for (;;) {
		ssize_t n;

		if (c->off == c->len) {
			uint64_t left = HDR_LEN + c->up - c->queued;

			if (left == 0) {
				if (shutdown(c->fd, SHUT_WR) == -1) {
					cconn_end(cl, c, "shutdown: %s", strerror(errno));
					return false;
				}
				c->state = C_RECEIVING;
				ep_set(cl->ep, EPOLL_CTL_MOD, c->fd, c->throttled ? 0 : EPOLLIN, c);
				return true;
			}
			c->len = left < BUF_LEN ? (size_t)left : BUF_LEN;
			c->off = 0;
			stream_fill(&c->up_st, c->buf, c->len);
			c->queued += c->len;
		}
		n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			cconn_end(cl, c, "send: %s after %" PRIu64 " upload bytes", strerror(errno),
				  c->queued - (c->len - c->off) - HDR_LEN);
			return false;
		}
		c->off += (size_t)n;
		cl->tx_total += (size_t)n;
	}
}

static bool rate_limited(const struct client *cl)
{
	return cl->rate && (cl->rate_until == 0 || now() < cl->rate_until);
}

static bool cconn_recv(struct client *cl, struct cconn *c)
{
	uint8_t buf[65536];

	for (;;) {
		size_t want = sizeof(buf);
		ssize_t n;
		size_t off = 0, len, i;

		if (rate_limited(cl)) {
			if (cl->tokens == 0) {
				if (!c->throttled) {
					c->throttled = true;
					cl->n_throttled++;
					ep_set(cl->ep, EPOLL_CTL_MOD, c->fd,
					       c->state == C_SENDING ? EPOLLOUT : 0, c);
				}
				return true;
			}
			if (want > cl->tokens)
				want = (size_t)cl->tokens;
		}
		n = read(c->fd, buf, want);
		if (n > 0) {
			cl->rx_total += (size_t)n;
			if (rate_limited(cl))
				cl->tokens -= (size_t)n;
		}

		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			cconn_end(cl, c, "read: %s after %" PRIu64 " download bytes", strerror(errno),
				  c->rcvd ? c->rcvd - 1 : 0);
			return false;
		}
		if (n == 0) {
			if (c->rcvd == 0)
				cconn_end(cl, c, "EOF before status byte (upload %s)",
					  c->state == C_RECEIVING ? "complete" : "incomplete");
			else if (c->status != ST_OK)
				cconn_end(cl, c, "server reported a bad upload");
			else if (c->rcvd - 1 != c->down)
				cconn_end(cl, c, "short download: %" PRIu64 " of %" PRIu64 " bytes",
					  c->rcvd - 1, c->down);
			else if (c->state != C_RECEIVING)
				cconn_end(cl, c, "server answered before upload was complete");
			else
				cconn_end(cl, c, NULL);
			return false;
		}
		if (c->rcvd == 0) {
			c->status = buf[0];
			c->rcvd = 1;
			off = 1;
			if (c->status != ST_OK && c->status != ST_FAIL) {
				cconn_end(cl, c, "bad status byte 0x%02x", c->status);
				return false;
			}
		}
		len = (size_t)n - off;
		if (c->status != ST_OK) {
			c->rcvd += len;
			continue;
		}
		if (c->rcvd - 1 + len > c->down) {
			cconn_end(cl, c, "download longer than %" PRIu64 " bytes", c->down);
			return false;
		}
		i = stream_check(&c->down_st, buf + off, len);
		if (i != len) {
			cconn_end(cl, c, "download mismatch at byte %" PRIu64 " of %" PRIu64,
				  c->rcvd - 1 + i, c->down);
			return false;
		}
		c->rcvd += len;
	}
}

static void cconn_event(struct client *cl, struct cconn *c, uint32_t events)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err) {
			cconn_end(cl, c, "connect: %s", strerror(err));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		c->state = C_SENDING;
		ep_set(cl->ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, c);
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !cconn_recv(cl, c))
		return;
	if (c->state == C_SENDING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		cconn_send(cl, c);
}

/* Refills the rate bucket, wakes throttled connections, prints progress. */
static void client_ticks(struct client *cl)
{
	double t = now();

	if (cl->progress && t >= cl->next_progress) {
		fprintf(stderr, "%s: progress: up %" PRIu64 " down %" PRIu64 " bytes\n", prog,
			cl->tx_total, cl->rx_total);
		cl->next_progress = t + PROGRESS_EVERY;
	}
	if (!cl->rate || t < cl->next_tick)
		return;
	/* No saving up: a reader that was idle does not get to burst. */
	cl->tokens = (uint64_t)((double)cl->rate * RATE_TICK);
	if (cl->tokens == 0)
		cl->tokens = 1;
	cl->next_tick = t + RATE_TICK;
	if (!rate_limited(cl))
		cl->rate = 0;
	if (cl->n_throttled == 0)
		return;
	for (unsigned int i = 0; i < cl->started; i++) {
		struct cconn *c = cl->live[i];

		if (c && c->throttled) {
			c->throttled = false;
			ep_set(cl->ep, EPOLL_CTL_MOD, c->fd,
			       EPOLLIN | (c->state == C_SENDING ? EPOLLOUT : 0), c);
		}
	}
	cl->n_throttled = 0;
}

static int run_client(int argc, char **argv)
{
	struct client cl = { .conns = 1, .max_size = 65536, .random_sizes = true };
	struct epoll_event evs[MAX_EVENTS];
	const char *src = NULL;
	double timeout = 60, start, deadline, slow_for = 0;
	bool seeded = false, have_u = false, have_d = false;
	sigset_t mask;
	int opt;

	while ((opt = getopt(argc, argv, "b:n:p:s:u:d:S:t:r:R:P")) != -1) {
		uint64_t v;

		switch (opt) {
		case 'b':
			src = optarg;
			break;
		case 'n':
		case 'p':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > 1000000)
				die("-%c: want 1..1000000, got '%s'", opt, optarg);
			if (opt == 'n')
				cl.conns = (unsigned int)v;
			else
				cl.parallel = (unsigned int)v;
			break;
		case 's':
			if (parse_size(optarg, &cl.max_size) < 0)
				die("-s: bad size '%s'", optarg);
			break;
		case 'u':
		case 'd':
			if (parse_size(optarg, opt == 'u' ? &cl.up : &cl.down) < 0)
				die("-%c: bad size '%s'", opt, optarg);
			*(opt == 'u' ? &have_u : &have_d) = true;
			break;
		case 'S':
			if (parse_size(optarg, &cl.seed) < 0)
				die("-S: bad seed '%s'", optarg);
			seeded = true;
			break;
		case 't':
			timeout = strtod(optarg, NULL);
			if (timeout <= 0)
				die("-t: bad timeout '%s'", optarg);
			break;
		case 'r':
			if (parse_size(optarg, &cl.rate) < 0 || cl.rate == 0)
				die("-r: bad rate '%s'", optarg);
			break;
		case 'R':
			slow_for = strtod(optarg, NULL);
			if (slow_for <= 0)
				die("-R: bad duration '%s'", optarg);
			break;
		case 'P':
			cl.progress = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (have_u || have_d)
		cl.random_sizes = false;
	if (parse_addr(argv[optind], &cl.dst, &cl.dst_len) < 0)
		die("bad address '%s' (want 198.18.0.1:80 or [2001:db8::1]:80)", argv[optind]);
	if (src) {
		if (parse_ip(src, 0, &cl.src, &cl.src_len) < 0)
			die("-b: bad address '%s'", src);
		if (cl.src.ss_family != cl.dst.ss_family)
			die("-b %s and %s are different address families", src, argv[optind]);
		cl.bind_src = true;
	}
	if (!seeded)
		cl.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	cl.rng = cl.seed;
	if (cl.parallel == 0 || cl.parallel > cl.conns)
		cl.parallel = cl.conns;

	cl.live = calloc(cl.conns, sizeof(*cl.live));
	if (!cl.live)
		die("out of memory");
	raise_nofile();
	mask = setup_signals();
	cl.ep = epoll_create1(EPOLL_CLOEXEC);
	if (cl.ep == -1)
		die("epoll_create1: %s", strerror(errno));

	start = now();
	deadline = start + timeout;
	if (cl.rate && slow_for > 0)
		cl.rate_until = start + slow_for;
	cl.next_progress = start + PROGRESS_EVERY;
	while (cl.ok + cl.failed < cl.conns && !stop) {
		double left;
		int n;

		while (cl.active < cl.parallel && cl.started < cl.conns)
			cconn_start(&cl);
		if (cl.ok + cl.failed == cl.conns)
			break; /* the last ones failed at once (bind, connect) */
		left = deadline - now();
		if (left <= 0)
			break;
		client_ticks(&cl);
		if (cl.rate && cl.next_tick - now() < left)
			left = cl.next_tick - now();
		if (cl.progress && cl.next_progress - now() < left)
			left = cl.next_progress - now();
		if (left < 0)
			left = 0;
		n = epoll_pwait(cl.ep, evs, MAX_EVENTS, (int)(left * 1000) + 1, &mask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
			cconn_event(&cl, evs[i].data.ptr, evs[i].events);
	}
	if (cl.ok + cl.failed < cl.conns) {
		static const char *const states[] = {
			[C_CONNECTING] = "connecting",
			[C_SENDING] = "uploading",
			[C_RECEIVING] = "waiting for download (upload complete, FIN sent)",
		};
		const char *why = stop ? "interrupted" : "timed out";

		fprintf(stderr, "%s: %s after %.1f s: %u connections unfinished, %u never started\n",
			prog, why, now() - start, cl.active, cl.conns - cl.started);
		cl.failed += cl.conns - cl.started;
		for (unsigned int i = 0; i < cl.started; i++) {
			struct cconn *c = cl.live[i];

			if (c)
				cconn_end(&cl, c, "%s: %s, %" PRIu64 " download bytes", why,
					  states[c->state], c->rcvd ? c->rcvd - 1 : 0);
		}
	}
	if (cl.reported > MAX_REPORTS)
		fprintf(stderr, "%s: %u more failures not shown\n", prog, cl.reported - MAX_REPORTS);
	printf("peer client: %u connections: %u ok, %u failed; upload %" PRIu64
	       " bytes, download %" PRIu64 " bytes verified in %.2f s (seed %" PRIu64 ")\n",
	       cl.conns, cl.ok, cl.failed, cl.up_bytes, cl.down_bytes, now() - start, cl.seed);
	free(cl.live);
	close(cl.ep);
	return cl.failed == 0 && cl.ok == cl.conns ? 0 : 1;
}

/* ---- hold ---- */

struct hconn {
	int fd;
	enum { H_CONNECTING, H_ECHO_WAIT, H_HELD, H_DONE } state;
};

struct hold {
	struct sockaddr_storage dst, src;
	socklen_t dst_len, src_len;
	bool bind_src, echo, rst;
	unsigned int n, parallel, started, setting_up;
	unsigned int connected, answered, eof, reset, failed, reported;
	struct hconn *conns;
	int ep;
};

static void hold_status(const struct hold *h)
{
	printf("hold: %u conns: %u connected, %u answered, %u eof, %u reset, %u failed\n", h->n,
	       h->connected, h->answered, h->eof, h->reset, h->failed);
}

/* Ends c (already counted by the caller), keeping setting_up right. */
static void hconn_done(struct hold *h, struct hconn *c)
{
	if (c->state == H_CONNECTING)
		h->setting_up--;
	close(c->fd);
	c->fd = -1;
	c->state = H_DONE;
}

static void hconn_fail(struct hold *h, struct hconn *c, const char *what, int err)
{
	if (err == ECONNRESET) {
		h->reset++;
	} else {
		h->failed++;
		if (h->reported++ < MAX_REPORTS)
			fprintf(stderr, "%s: hold: conn %td: %s: %s\n", prog, c - h->conns, what,
				strerror(err));
	}
	hconn_done(h, c);
}

static void hconn_start(struct hold *h)
{
	struct hconn *c = &h->conns[h->started++];
	int one = 1;

	h->setting_up++;
	c->state = H_CONNECTING;
	c->fd = socket(h->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		die("socket: %s", strerror(errno));
	if (h->bind_src) {
		if (h->src.ss_family == AF_INET)
			setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&h->src, h->src_len) == -1) {
			hconn_fail(h, c, "bind", errno);
			return;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&h->dst, h->dst_len) == -1 && errno != EINPROGRESS) {
		hconn_fail(h, c, "connect", errno);
		return;
	}
	ep_set(h->ep, EPOLL_CTL_ADD, c->fd, EPOLLOUT, c);
}

static void hconn_event(struct hold *h, struct hconn *c, uint32_t events)
{
	char buf[4096];
	ssize_t n;

	if (c->state == H_DONE)
		return;
	if (c->state == H_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err) {
			hconn_fail(h, c, "connect", err);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		h->connected++;
		h->setting_up--;
		if (h->echo) {
			if (send(c->fd, "h", 1, MSG_NOSIGNAL) != 1) {
				hconn_fail(h, c, "send", errno);
				return;
			}
			c->state = H_ECHO_WAIT;
		} else {
			c->state = H_HELD;
		}
		ep_set(h->ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, c);
		return;
	}
	n = read(c->fd, buf, sizeof(buf));
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			hconn_fail(h, c, "read", errno);
		return;
	}
	if (n == 0) {
		h->eof++;
		hconn_done(h, c);
		return;
	}
	if (c->state == H_ECHO_WAIT) {
		h->answered++;
		c->state = H_HELD;
	}
}

static int run_hold(int argc, char **argv)
{
	struct hold h = { .n = 1, .parallel = 256 };
	struct epoll_event evs[MAX_EVENTS];
	const char *src = NULL;
	unsigned int last[5] = { 0 };
	double last_print = 0;
	sigset_t mask;
	int opt;

	while ((opt = getopt(argc, argv, "b:n:p:eR")) != -1) {
		uint64_t v;

		switch (opt) {
		case 'b':
			src = optarg;
			break;
		case 'n':
		case 'p':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > 1000000)
				die("-%c: want 1..1000000, got '%s'", opt, optarg);
			*(opt == 'n' ? &h.n : &h.parallel) = (unsigned int)v;
			break;
		case 'e':
			h.echo = true;
			break;
		case 'R':
			h.rst = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (parse_addr(argv[optind], &h.dst, &h.dst_len) < 0)
		die("bad address '%s' (want 198.18.0.1:80 or [2001:db8::1]:80)", argv[optind]);
	if (src) {
		if (parse_ip(src, 0, &h.src, &h.src_len) < 0)
			die("-b: bad address '%s'", src);
		if (h.src.ss_family != h.dst.ss_family)
			die("-b %s and %s are different address families", src, argv[optind]);
		h.bind_src = true;
	}
	h.conns = calloc(h.n, sizeof(*h.conns));
	if (!h.conns)
		die("out of memory");
	raise_nofile();
	mask = setup_signals();
	h.ep = epoll_create1(EPOLL_CLOEXEC);
	if (h.ep == -1)
		die("epoll_create1: %s", strerror(errno));

	while (!stop) {
		unsigned int cur[5] = { h.connected, h.answered, h.eof, h.reset, h.failed };
		int n;

		while (h.setting_up < h.parallel && h.started < h.n)
			hconn_start(&h);
		if (memcmp(cur, last, sizeof(cur)) != 0 && now() - last_print >= 0.1) {
			hold_status(&h);
			memcpy(last, cur, sizeof(cur));
			last_print = now();
		}
		n = epoll_pwait(h.ep, evs, MAX_EVENTS, 100, &mask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
			hconn_event(&h, evs[i].data.ptr, evs[i].events);
	}
	for (unsigned int i = 0; i < h.started; i++) {
		if (h.conns[i].state == H_DONE)
			continue;
		if (h.rst)
			close_rst(h.conns[i].fd);
		else
			close(h.conns[i].fd);
	}
	hold_status(&h);
	free(h.conns);
	close(h.ep);
	return 0;
}

/* ---- ping ---- */

#define PING_LEN 8

struct pconn {
	int fd;
	unsigned int idx;
	uint16_t port;			/* local port, for matching with ss on the gateway */
	enum { P_CONNECTING, P_WAIT, P_IDLE, P_DONE } state;
	uint64_t seq, trips;
	uint8_t got[PING_LEN];
	size_t got_len;
	double sent_at, next_at, last_ok, max_gap;
	char end[96];
};

struct ping {
	struct sockaddr_storage dst, src;
	socklen_t dst_len, src_len;
	bool bind_src;
	unsigned int n, connected, done;
	double interval, stall, start;
	struct pconn *conns;
	int ep;
};

static void pconn_end(struct ping *p, struct pconn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pconn_end(struct ping *p, struct pconn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->state == P_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(c->end, sizeof(c->end), fmt, ap);
	va_end(ap);
	if (c->state == P_CONNECTING)
		printf("ping: conn %u: %s at %.2f s before connecting\n", c->idx, c->end,
		       now() - p->start);
	else
		printf("ping: conn %u port %u: %s at %.2f s after %" PRIu64 " round trips\n",
		       c->idx, c->port, c->end, now() - p->start, c->trips);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = P_DONE;
	p->done++;
}

static void pconn_send(struct ping *p, struct pconn *c)
{
	uint8_t msg[PING_LEN];

	put_be(msg, ++c->seq, PING_LEN);
	/* 8 bytes always fit an empty send buffer: an echo is never outstanding here. */
	if (send(c->fd, msg, PING_LEN, MSG_NOSIGNAL) != PING_LEN) {
		pconn_end(p, c, "error send: %s", strerror(errno));
		return;
	}
	c->sent_at = now();
	c->got_len = 0;
	c->state = P_WAIT;
}

static void pconn_event(struct ping *p, struct pconn *c, uint32_t events)
{
	if (c->state == P_DONE)
		return;
	if (c->state == P_CONNECTING) {
		struct sockaddr_storage local;
		socklen_t len = sizeof(int);
		int err = 0;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err) {
			pconn_end(p, c, "error connect: %s", strerror(err));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		len = sizeof(local);
		if (getsockname(c->fd, (struct sockaddr *)&local, &len) == 0)
			c->port = ntohs(local.ss_family == AF_INET
						? ((struct sockaddr_in *)&local)->sin_port
						: ((struct sockaddr_in6 *)&local)->sin6_port);
		ep_set(p->ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, c);
		c->state = P_IDLE;
		c->next_at = 0;
		p->connected++;
		return;
	}
	for (;;) {
		uint8_t buf[256];
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ECONNRESET)
				pconn_end(p, c, "reset");
			else
				pconn_end(p, c, "error read: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			pconn_end(p, c, "eof");
			return;
		}
		if (c->state != P_WAIT || c->got_len + (size_t)n > PING_LEN) {
			pconn_end(p, c, "error: %zd unexpected bytes", n);
			return;
		}
		memcpy(c->got + c->got_len, buf, (size_t)n);
		c->got_len += (size_t)n;
		if (c->got_len == PING_LEN) {
			double t = now();

			if (get_be(c->got, PING_LEN) != c->seq) {
				pconn_end(p, c, "error: echo %" PRIu64 " for ping %" PRIu64,
					  get_be(c->got, PING_LEN), c->seq);
				return;
			}
			if (c->last_ok && t - c->last_ok > c->max_gap)
				c->max_gap = t - c->last_ok;
			c->last_ok = t;
			c->trips++;
			c->state = P_IDLE;
			c->next_at = c->sent_at + p->interval;
		}
	}
}

/* Sends due pings and ends connections whose echo is overdue. */
static void ping_ticks(struct ping *p)
{
	double t = now();

	for (unsigned int i = 0; i < p->n; i++) {
		struct pconn *c = &p->conns[i];

		if (c->state == P_WAIT && t - c->sent_at > p->stall)
			pconn_end(p, c, "stalled");
		else if (c->state == P_IDLE && p->connected == p->n && t >= c->next_at)
			pconn_send(p, c);
	}
}

static int run_ping(int argc, char **argv)
{
	struct ping p = { .n = 1, .interval = 0.05, .stall = 2 };
	struct epoll_event evs[MAX_EVENTS];
	const char *src = NULL;
	double duration = 10, ready_at = 0;
	unsigned int ok = 0;
	uint64_t trips = 0;
	sigset_t mask;
	int opt, one = 1;

	while ((opt = getopt(argc, argv, "b:n:i:T:t:")) != -1) {
		uint64_t v;

		switch (opt) {
		case 'b':
			src = optarg;
			break;
		case 'n':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > 100000)
				die("-n: want 1..100000, got '%s'", optarg);
			p.n = (unsigned int)v;
			break;
		case 'i':
		case 'T':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > 3600000)
				die("-%c: want 1..3600000 ms, got '%s'", opt, optarg);
			*(opt == 'i' ? &p.interval : &p.stall) = (double)v / 1000;
			break;
		case 't':
			duration = strtod(optarg, NULL);
			if (duration <= 0)
				die("-t: bad duration '%s'", optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (parse_addr(argv[optind], &p.dst, &p.dst_len) < 0)
		die("bad address '%s' (want 198.18.0.1:80 or [2001:db8::1]:80)", argv[optind]);
	if (src) {
		if (parse_ip(src, 0, &p.src, &p.src_len) < 0)
			die("-b: bad address '%s'", src);
		if (p.src.ss_family != p.dst.ss_family)
			die("-b %s and %s are different address families", src, argv[optind]);
		p.bind_src = true;
	}
	p.conns = calloc(p.n, sizeof(*p.conns));
	if (!p.conns)
		die("out of memory");
	raise_nofile();
	mask = setup_signals();
	p.ep = epoll_create1(EPOLL_CLOEXEC);
	if (p.ep == -1)
		die("epoll_create1: %s", strerror(errno));
	p.start = now();
	for (unsigned int i = 0; i < p.n; i++) {
		struct pconn *c = &p.conns[i];

		c->idx = i;
		c->state = P_CONNECTING;
		c->fd = socket(p.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd == -1)
			die("socket: %s", strerror(errno));
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (p.bind_src) {
			if (p.src.ss_family == AF_INET)
				setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
					   sizeof(one));
			if (bind(c->fd, (struct sockaddr *)&p.src, p.src_len) == -1) {
				pconn_end(&p, c, "error bind: %s", strerror(errno));
				continue;
			}
		}
		if (connect(c->fd, (struct sockaddr *)&p.dst, p.dst_len) == -1 &&
		    errno != EINPROGRESS) {
			pconn_end(&p, c, "error connect: %s", strerror(errno));
			continue;
		}
		ep_set(p.ep, EPOLL_CTL_ADD, c->fd, EPOLLOUT, c);
	}
	while (!stop && p.done < p.n) {
		int n;

		if (!ready_at && p.connected == p.n) {
			ready_at = now();
			for (unsigned int i = 0; i < p.n; i++)
				printf("ping: conn %u port %u\n", i, p.conns[i].port);
			printf("ping: ready: %u conns\n", p.n);
		}
		if (ready_at && now() - ready_at >= duration)
			break;
		if (!ready_at && now() - p.start > p.stall + 5) {
			for (unsigned int i = 0; i < p.n; i++)
				if (p.conns[i].state == P_CONNECTING)
					pconn_end(&p, &p.conns[i], "error: connect timed out");
			break;
		}
		ping_ticks(&p);
		n = epoll_pwait(p.ep, evs, MAX_EVENTS, 5, &mask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
			pconn_event(&p, evs[i].data.ptr, evs[i].events);
	}
	for (unsigned int i = 0; i < p.n; i++) {
		struct pconn *c = &p.conns[i];
		double gap = c->last_ok ? now() - c->last_ok : 0;

		/* Time since the last echo counts too: a silent end is a gap. */
		if (c->state != P_DONE && gap > c->max_gap)
			c->max_gap = gap;
		if (c->state != P_DONE && c->trips == 0)
			snprintf(c->end, sizeof(c->end), "no round trip");
		else if (c->state != P_DONE)
			ok++;
		trips += c->trips;
		printf("ping: conn %u port %u: %" PRIu64 " round trips, max gap %.0f ms, %s\n", i,
		       c->port, c->trips, c->max_gap * 1000, c->end[0] ? c->end : "ok");
		if (c->fd >= 0)
			close(c->fd);
	}
	printf("ping: %u conns: %u ok, %u failed, %" PRIu64 " round trips\n", p.n, ok, p.n - ok,
	       trips);
	free(p.conns);
	close(p.ep);
	return ok == p.n ? 0 : 1;
}

/* ---- churn ---- */

#define CHURN_MAX_SRC 16

struct chconn {
	int fd;
	unsigned int idx;
	bool echo, sent;
	double started;			/* now() at its start */
	struct chconn *prev, *next;	/* under way, oldest first */
};

struct churn {
	struct sockaddr_storage dst, src[CHURN_MAX_SRC];
	socklen_t dst_len, src_len[CHURN_MAX_SRC];
	unsigned int n_src;
	unsigned int n, parallel, started, active;
	unsigned int connected, echoed, failed, reported;
	int echo_mode;			/* 0 none, 1 all, 2 every second one */
	double rate;			/* -r: starts per second; 0: PARALLEL under way */
	double deadline;		/* -T: seconds a connection may take; 0: none */
	bool log_fails;			/* -L */
	double wall0, mono0;		/* wall clock (ms) and now() at the start, for -L */
	struct chconn *head, *tail;	/* under way, oldest first */
	int ep;
};

static void chconn_done(struct churn *ch, struct chconn *c, bool rst)
{
	if (rst)
		close_rst(c->fd);
	else
		close(c->fd);
	*(c->prev ? &c->prev->next : &ch->head) = c->next;
	*(c->next ? &c->next->prev : &ch->tail) = c->prev;
	ch->active--;
	free(c);
}

static void chconn_fail(struct churn *ch, struct chconn *c, const char *what, int err)
{
	ch->failed++;
	if (ch->log_fails)
		printf("churn: fail %.0f %u: %s: %s\n", ch->wall0 + (c->started - ch->mono0) * 1000,
		       c->idx, what, err < 0 ? "timed out" : err ? strerror(err) : "unexpected EOF");
	else if (ch->reported++ < MAX_REPORTS)
		fprintf(stderr, "%s: churn: conn %u: %s: %s\n", prog, c->idx, what,
			err ? strerror(err) : "unexpected EOF");
	chconn_done(ch, c, false);
}

static void chconn_start(struct churn *ch)
{
	struct chconn *c = calloc(1, sizeof(*c));
	unsigned int s;
	int one = 1;

	if (!c)
		die("out of memory");
	c->idx = ch->started++;
	c->echo = ch->echo_mode == 1 || (ch->echo_mode == 2 && c->idx % 2 == 0);
	c->started = now();
	c->prev = ch->tail;
	*(ch->tail ? &ch->tail->next : &ch->head) = c;
	ch->tail = c;
	ch->active++;
	c->fd = socket(ch->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		die("socket: %s", strerror(errno));
	if (ch->n_src) {
		s = c->idx % ch->n_src;
		if (ch->src[s].ss_family == AF_INET)
			setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&ch->src[s], ch->src_len[s]) == -1) {
			chconn_fail(ch, c, "bind", errno);
			return;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&ch->dst, ch->dst_len) == -1 &&
	    errno != EINPROGRESS) {
		chconn_fail(ch, c, "connect", errno);
		return;
	}
	ep_set(ch->ep, EPOLL_CTL_ADD, c->fd, EPOLLOUT, c);
}

static void chconn_event(struct churn *ch, struct chconn *c, uint32_t events)
{
	char buf[64];
	ssize_t n;

	if (!c->sent) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err) {
			chconn_fail(ch, c, "connect", err);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		ch->connected++;
		if (!c->echo) {
			chconn_done(ch, c, true);
			return;
		}
		if (send(c->fd, "c", 1, MSG_NOSIGNAL) != 1) {
			chconn_fail(ch, c, "send", errno);
			return;
		}
		c->sent = true;
		ep_set(ch->ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, c);
		return;
	}
	n = read(c->fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		chconn_fail(ch, c, "read", n == 0 ? 0 : errno);
		return;
	}
	ch->echoed++;
	chconn_done(ch, c, true);
}

/* -T: connections under way for longer than the deadline fail (oldest first). */
static void churn_expire(struct churn *ch)
{
	double t = now();

	while (ch->deadline && ch->head && t - ch->head->started > ch->deadline)
		chconn_fail(ch, ch->head, ch->head->sent ? "echo" : "connect", -1);
}

/* Starts what is due: PARALLEL under way, or with -r, one every 1/RATE s since start. */
static void churn_start_due(struct churn *ch, double start)
{
	if (!ch->rate) {
		while (ch->active < ch->parallel && ch->started < ch->n)
			chconn_start(ch);
		return;
	}
	while (ch->started < ch->n && now() - start >= ch->started / ch->rate)
		chconn_start(ch);
}

static int run_churn(int argc, char **argv)
{
	struct churn ch = { .n = 1, .parallel = 100 };
	struct epoll_event evs[MAX_EVENTS];
	double timeout = 60, start;
	struct timespec ts;
	sigset_t mask;
	int opt;

	while ((opt = getopt(argc, argv, "b:n:p:r:T:Leat:")) != -1) {
		uint64_t v;

		switch (opt) {
		case 'b':
			if (ch.n_src == CHURN_MAX_SRC)
				die("-b: at most %d source addresses", CHURN_MAX_SRC);
			if (parse_ip(optarg, 0, &ch.src[ch.n_src], &ch.src_len[ch.n_src]) < 0)
				die("-b: bad address '%s'", optarg);
			ch.n_src++;
			break;
		case 'n':
		case 'p':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > 100000000)
				die("-%c: want 1..100000000, got '%s'", opt, optarg);
			*(opt == 'n' ? &ch.n : &ch.parallel) = (unsigned int)v;
			break;
		case 'r':
		case 'T':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > 1000000)
				die("-%c: want 1..1000000, got '%s'", opt, optarg);
			if (opt == 'r')
				ch.rate = (double)v;
			else
				ch.deadline = (double)v / 1000;
			break;
		case 'L':
			ch.log_fails = true;
			break;
		case 'e':
			ch.echo_mode = 1;
			break;
		case 'a':
			ch.echo_mode = 2;
			break;
		case 't':
			timeout = strtod(optarg, NULL);
			if (timeout <= 0)
				die("-t: bad timeout '%s'", optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (parse_addr(argv[optind], &ch.dst, &ch.dst_len) < 0)
		die("bad address '%s' (want 198.18.0.1:80 or [2001:db8::1]:80)", argv[optind]);
	for (unsigned int i = 0; i < ch.n_src; i++)
		if (ch.src[i].ss_family != ch.dst.ss_family)
			die("-b and %s are different address families", argv[optind]);
	raise_nofile();
	mask = setup_signals();
	ch.ep = epoll_create1(EPOLL_CLOEXEC);
	if (ch.ep == -1)
		die("epoll_create1: %s", strerror(errno));
	start = now();
	clock_gettime(CLOCK_REALTIME, &ts);
	ch.wall0 = (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
	ch.mono0 = start;
	while (!stop && (ch.started < ch.n || ch.active > 0) && now() - start < timeout) {
		int n;

		churn_start_due(&ch, start);
		churn_expire(&ch);
		n = epoll_pwait(ch.ep, evs, MAX_EVENTS, ch.rate || ch.deadline ? 2 : 100, &mask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
			chconn_event(&ch, evs[i].data.ptr, evs[i].events);
	}
	if (ch.started < ch.n || ch.active > 0) {
		fprintf(stderr, "%s: churn: %s after %.1f s: %u unfinished, %u never started\n",
			prog, stop ? "interrupted" : "timed out", now() - start, ch.active,
			ch.n - ch.started);
		ch.failed += ch.active + (ch.n - ch.started);
	}
	if (ch.reported > MAX_REPORTS)
		fprintf(stderr, "%s: churn: %u more failures not shown\n", prog,
			ch.reported - MAX_REPORTS);
	printf("churn: %u conns: %u connected, %u echoed, %u failed in %.2f s\n", ch.n,
	       ch.connected, ch.echoed, ch.failed, now() - start);
	close(ch.ep);
	return ch.failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "serve") == 0)
		return run_server(argc - 1, argv + 1, K_SERVE);
	if (strcmp(argv[1], "echo") == 0)
		return run_server(argc - 1, argv + 1, K_ECHO);
	if (strcmp(argv[1], "early") == 0)
		return run_server(argc - 1, argv + 1, K_EARLY);
	if (strcmp(argv[1], "rst") == 0)
		return run_server(argc - 1, argv + 1, K_RST);
	if (strcmp(argv[1], "hold") == 0)
		return run_hold(argc - 1, argv + 1);
	if (strcmp(argv[1], "sink") == 0)
		return run_server(argc - 1, argv + 1, K_SINK);
	if (strcmp(argv[1], "ping") == 0)
		return run_ping(argc - 1, argv + 1);
	if (strcmp(argv[1], "churn") == 0)
		return run_churn(argc - 1, argv + 1);
	if (strcmp(argv[1], "client") == 0)
		return run_client(argc - 1, argv + 1);
	usage();
}
