// SPDX-License-Identifier: GPL-2.0-or-later
/* peer ping: round trips on connections to an echo server, and how each
 * connection ended, to tell a stalled or cut connection from a live one. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "peer.h"
#include "stream.h"

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
	struct addr dst;
	struct sources src;
	unsigned int n, connected, done;
	double interval, stall, start, duration, ready_at;
	struct pconn *conns;
	struct loop loop;
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
		       now_s() - p->start);
	else
		printf("ping: conn %u port %u: %s at %.2f s after %" PRIu64 " round trips\n",
		       c->idx, c->port, c->end, now_s() - p->start, c->trips);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = P_DONE;
	p->done++;
}

static void pconn_send(struct ping *p, struct pconn *c)
{
	uint8_t msg[PING_LEN];

	be_put(msg, ++c->seq, PING_LEN);
	/* 8 bytes always fit an empty send buffer: an echo is never outstanding here. */
	if (send(c->fd, msg, PING_LEN, MSG_NOSIGNAL) != PING_LEN) {
		pconn_end(p, c, "error send: %s", strerror(errno));
		return;
	}
	c->sent_at = now_s();
	c->got_len = 0;
	c->state = P_WAIT;
}

static void pconn_event(struct ping *p, struct pconn *c, uint32_t events)
{
	if (c->state == P_DONE)
		return;
	if (c->state == P_CONNECTING) {
		struct sockaddr_storage local;
		socklen_t len = sizeof(local);
		int rc = sock_connected(c->fd);

		if (rc < 0) {
			pconn_end(p, c, "error connect: %s", strerror(-rc));
			return;
		}
		if (getsockname(c->fd, (struct sockaddr *)&local, &len) == 0)
			c->port = ntohs(local.ss_family == AF_INET
						? ((struct sockaddr_in *)&local)->sin_port
						: ((struct sockaddr_in6 *)&local)->sin6_port);
		sock_await(c->fd, NULL, p->loop.ep, c);
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
			double t = now_s();

			if (be_get(c->got, PING_LEN) != c->seq) {
				pconn_end(p, c, "error: echo %" PRIu64 " for ping %" PRIu64,
					  be_get(c->got, PING_LEN), c->seq);
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
	double t = now_s();

	for (unsigned int i = 0; i < p->n; i++) {
		struct pconn *c = &p->conns[i];

		if (c->state == P_WAIT && t - c->sent_at > p->stall)
			pconn_end(p, c, "stalled");
		else if (c->state == P_IDLE && p->connected == p->n && t >= c->next_at)
			pconn_send(p, c);
	}
}

/* Says "ready" once all are connected, ends the run after -t SECONDS from
 * then (or when connecting takes too long), and sends the pings due. */
static int ping_before(void *ctx)
{
	struct ping *p = ctx;

	if (p->done == p->n)
		return LOOP_END;
	if (!p->ready_at && p->connected == p->n) {
		p->ready_at = now_s();
		for (unsigned int i = 0; i < p->n; i++)
			printf("ping: conn %u port %u\n", i, p->conns[i].port);
		printf("ping: ready: %u conns\n", p->n);
	}
	if (p->ready_at && now_s() - p->ready_at >= p->duration)
		return LOOP_END;
	if (!p->ready_at && now_s() - p->start > p->stall + 5) {
		for (unsigned int i = 0; i < p->n; i++)
			if (p->conns[i].state == P_CONNECTING)
				pconn_end(p, &p->conns[i], "error: connect timed out");
		return LOOP_END;
	}
	ping_ticks(p);
	return 5;
}

static void ping_event(void *ctx, epoll_data_t data, uint32_t events)
{
	pconn_event(ctx, data.ptr, events);
}

static void ping_start(struct ping *p, struct pconn *c)
{
	const char *what;
	int one = 1, rc;

	c->state = P_CONNECTING;
	rc = sock_connect_ep(&c->fd, &p->dst, sources_pick(&p->src, c->idx), p->loop.ep, c, &what);
	if (rc < 0)
		pconn_end(p, c, "error %s: %s", what, strerror(-rc));
	else
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int cmd_ping(int argc, char **argv)
{
	struct ping p = { .n = 1, .interval = 0.05, .stall = 2, .duration = 10, .src.max = 1 };
	const struct arg args[] = {
		{ 'b', ARG_SOURCE, .to = &p.src },
		{ 'n', ARG_COUNT, .to = &p.n, .limit = 100000 },
		{ 'i', ARG_MS, .to = &p.interval, .limit = 3600000 },
		{ 'T', ARG_MS, .to = &p.stall, .limit = 3600000 },
		{ 't', ARG_SECONDS, .to = &p.duration, .what = "duration" },
		{ 0 }
	};
	unsigned int ok = 0;
	uint64_t trips = 0;

	args_parse(argc, argv, args, &p.dst);
	p.conns = xcalloc(p.n, sizeof(*p.conns));
	loop_setup(&p.loop, ping_before, ping_event, &p);
	p.start = now_s();
	for (unsigned int i = 0; i < p.n; i++) {
		p.conns[i].idx = i;
		ping_start(&p, &p.conns[i]);
	}
	loop_run(&p.loop);
	for (unsigned int i = 0; i < p.n; i++) {
		struct pconn *c = &p.conns[i];
		double gap = c->last_ok ? now_s() - c->last_ok : 0;

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
	loop_close(&p.loop);
	return ok == p.n ? 0 : 1;
}
