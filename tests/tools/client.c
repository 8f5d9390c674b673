// SPDX-License-Identifier: GPL-2.0-or-later
/* peer client: the sending and checking end of the protocol described in
 * peer.c, with -r/-R for a slow reader and -P for progress lines. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"
#include "stream.h"

struct cconn {
	int fd;
	unsigned int idx;
	enum { C_CONNECTING, C_SENDING, C_RECEIVING } state;
	uint64_t up, down, seed;
	uint64_t rcvd;   /* status + download bytes received */
	struct feed out; /* header, then upload */
	struct stream down_st;
	uint8_t status;
	bool throttled;  /* EPOLLIN off until the next rate tick */
};

struct client {
	struct addr dst;
	struct sources src;
	unsigned int conns, parallel, started, active;
	uint64_t max_size, up, down, seed, rng;
	bool random_sizes;
	unsigned int ok, failed, reported;
	uint64_t up_bytes, down_bytes;
	struct cconn **live; /* by idx, so a timeout can say what was stuck */
	struct loop loop;
	double deadline;
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
		char a[ADDR_STRLEN];
		va_list ap;

		cl->failed++;
		if (cl->reported++ < MAX_REPORTS) {
			memset(&local, 0, sizeof(local));
			getsockname(c->fd, (struct sockaddr *)&local, &len);
			fprintf(stderr, "%s: conn %u from %s (up %" PRIu64 ", down %" PRIu64
				", seed %#" PRIx64 "): ", prog, c->idx,
				addr_fmt(&local, a, sizeof(a)), c->up, c->down, c->seed);
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
	struct cconn *c = xcalloc(1, sizeof(*c));
	const char *what;
	int rc;

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
	stream_init(&c->out.st, c->seed, DIR_UP);
	stream_init(&c->down_st, c->seed, DIR_DOWN);
	hdr_put(c->out.buf, c->up, c->down, c->seed);
	c->out.len = HDR_LEN;
	c->out.left = c->up;
	c->state = C_CONNECTING;
	rc = sock_connect_ep(&c->fd, &cl->dst, sources_pick(&cl->src, c->idx), cl->loop.ep, c,
			     &what);
	if (rc < 0)
		cconn_end(cl, c, "%s: %s", what, strerror(-rc));
}

/* Sends the header and the upload, then half-closes; returns false when
 * c was freed. */
static bool cconn_send(struct client *cl, struct cconn *c)
{
	int rc = feed_send(c->fd, &c->out, &cl->tx_total);

	if (rc == -EAGAIN)
		return true;
	if (rc < 0) {
		cconn_end(cl, c, "send: %s after %" PRIu64 " upload bytes", strerror(-rc),
			  c->up - c->out.left - (c->out.len - c->out.off));
		return false;
	}
	if (shutdown(c->fd, SHUT_WR) == -1) {
		cconn_end(cl, c, "shutdown: %s", strerror(errno));
		return false;
	}
	c->state = C_RECEIVING;
	ep_set(cl->loop.ep, EPOLL_CTL_MOD, c->fd, c->throttled ? 0 : EPOLLIN, c);
	return true;
}

static bool rate_limited(const struct client *cl)
{
	return cl->rate && (cl->rate_until == 0 || now_s() < cl->rate_until);
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
					ep_set(cl->loop.ep, EPOLL_CTL_MOD, c->fd,
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
		int rc = sock_connected(c->fd);

		if (rc < 0) {
			cconn_end(cl, c, "connect: %s", strerror(-rc));
			return;
		}
		c->state = C_SENDING;
		ep_set(cl->loop.ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, c);
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !cconn_recv(cl, c))
		return;
	if (c->state == C_SENDING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		cconn_send(cl, c);
}

/* Refills the rate bucket, wakes throttled connections, prints progress. */
static void client_ticks(struct client *cl)
{
	double t = now_s();

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
			ep_set(cl->loop.ep, EPOLL_CTL_MOD, c->fd,
			       EPOLLIN | (c->state == C_SENDING ? EPOLLOUT : 0), c);
		}
	}
	cl->n_throttled = 0;
}

/* Starts connections up to -p, then sleeps until the deadline or the next
 * rate tick or progress line, whichever comes first. */
static int client_before(void *ctx)
{
	struct client *cl = ctx;
	double left;

	while (cl->active < cl->parallel && cl->started < cl->conns)
		cconn_start(cl);
	if (cl->ok + cl->failed == cl->conns)
		return LOOP_END; /* the last ones may have failed at once (bind, connect) */
	left = cl->deadline - now_s();
	if (left <= 0)
		return LOOP_END;
	client_ticks(cl);
	if (cl->rate && cl->next_tick - now_s() < left)
		left = cl->next_tick - now_s();
	if (cl->progress && cl->next_progress - now_s() < left)
		left = cl->next_progress - now_s();
	if (left < 0)
		left = 0;
	return (int)(left * 1000) + 1;
}

static void client_event(void *ctx, epoll_data_t data, uint32_t events)
{
	cconn_event(ctx, data.ptr, events);
}

int cmd_client(int argc, char **argv)
{
	struct client cl = { .conns = 1, .max_size = 65536, .src.max = 1 };
	double timeout = 60, start, slow_for = 0;
	bool seeded = false, fixed_sizes = false;
	const struct arg args[] = {
		{ 'b', ARG_SOURCE, .to = &cl.src },
		{ 'n', ARG_COUNT, .to = &cl.conns, .limit = 1000000 },
		{ 'p', ARG_COUNT, .to = &cl.parallel, .limit = 1000000 },
		{ 's', ARG_SIZE, .to = &cl.max_size, .what = "size" },
		{ 'u', ARG_SIZE, .to = &cl.up, .what = "size", .seen = &fixed_sizes },
		{ 'd', ARG_SIZE, .to = &cl.down, .what = "size", .seen = &fixed_sizes },
		{ 'S', ARG_SIZE, .to = &cl.seed, .what = "seed", .seen = &seeded },
		{ 't', ARG_SECONDS, .to = &timeout, .what = "timeout" },
		{ 'r', ARG_SIZE, .to = &cl.rate, .limit = 1, .what = "rate" },
		{ 'R', ARG_SECONDS, .to = &slow_for, .what = "duration" },
		{ 'P', ARG_FLAG, .to = &cl.progress },
		{ 0 }
	};

	args_parse(argc, argv, args, &cl.dst);
	cl.random_sizes = !fixed_sizes;
	if (!seeded)
		cl.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	cl.rng = cl.seed;
	if (cl.parallel == 0 || cl.parallel > cl.conns)
		cl.parallel = cl.conns;
	cl.live = xcalloc(cl.conns, sizeof(*cl.live));
	loop_setup(&cl.loop, client_before, client_event, &cl);

	start = now_s();
	cl.deadline = start + timeout;
	if (cl.rate && slow_for > 0)
		cl.rate_until = start + slow_for;
	cl.next_progress = start + PROGRESS_EVERY;
	loop_run(&cl.loop);
	if (cl.ok + cl.failed < cl.conns) {
		static const char *const states[] = {
			[C_CONNECTING] = "connecting",
			[C_SENDING] = "uploading",
			[C_RECEIVING] = "waiting for download (upload complete, FIN sent)",
		};
		const char *why = signalled ? "interrupted" : "timed out";

		fprintf(stderr, "%s: %s after %.1f s: %u connections unfinished, %u never started\n",
			prog, why, now_s() - start, cl.active, cl.conns - cl.started);
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
	       cl.conns, cl.ok, cl.failed, cl.up_bytes, cl.down_bytes, now_s() - start, cl.seed);
	free(cl.live);
	loop_close(&cl.loop);
	return cl.failed == 0 && cl.ok == cl.conns ? 0 : 1;
}
