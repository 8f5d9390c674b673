// SPDX-License-Identifier: GPL-2.0-or-later
/* peer hold: opens connections and keeps them until SIGTERM/SIGINT; with -e
 * each proves it is relayed end to end by an echoed byte. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"

struct hconn {
	int fd;
	enum { H_CONNECTING, H_ECHO_WAIT, H_HELD, H_DONE } state;
};

struct hold {
	struct addr dst;
	struct sources src;
	bool echo, rst;
	unsigned int n, parallel, started, setting_up;
	unsigned int connected, answered, eof, reset, failed, reported;
	unsigned int last[5];		/* the counts last printed */
	double last_print;
	struct hconn *conns;
	struct loop loop;
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
	unsigned int i = h->started++;
	struct hconn *c = &h->conns[i];
	const char *what;
	int rc;

	h->setting_up++;
	c->state = H_CONNECTING;
	rc = sock_connect_ep(&c->fd, &h->dst, sources_pick(&h->src, i), h->loop.ep, c, &what);
	if (rc < 0)
		hconn_fail(h, c, what, -rc);
}

static void hconn_event(struct hold *h, struct hconn *c, uint32_t events)
{
	char buf[4096];
	ssize_t n;
	int rc;

	if (c->state == H_DONE)
		return;
	if (c->state == H_CONNECTING) {
		rc = sock_connected(c->fd);
		if (rc < 0) {
			hconn_fail(h, c, "connect", -rc);
			return;
		}
		h->connected++;
		h->setting_up--;
		c->state = h->echo ? H_ECHO_WAIT : H_HELD;
		rc = sock_await(c->fd, h->echo ? "h" : NULL, h->loop.ep, c);
		if (rc < 0)
			hconn_fail(h, c, "send", -rc);
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

/* Starts connections up to -p; prints the counts when they changed, at
 * most every 100 ms. */
static int hold_before(void *ctx)
{
	struct hold *h = ctx;
	unsigned int cur[5] = { h->connected, h->answered, h->eof, h->reset, h->failed };

	while (h->setting_up < h->parallel && h->started < h->n)
		hconn_start(h);
	if (memcmp(cur, h->last, sizeof(cur)) != 0 && now_s() - h->last_print >= 0.1) {
		hold_status(h);
		memcpy(h->last, cur, sizeof(cur));
		h->last_print = now_s();
	}
	return 100;
}

static void hold_event(void *ctx, epoll_data_t data, uint32_t events)
{
	hconn_event(ctx, data.ptr, events);
}

int cmd_hold(int argc, char **argv)
{
	struct hold h = { .n = 1, .parallel = 256, .src.max = 1 };
	const struct arg args[] = {
		{ 'b', ARG_SOURCE, .to = &h.src },
		{ 'n', ARG_COUNT, .to = &h.n, .limit = 1000000 },
		{ 'p', ARG_COUNT, .to = &h.parallel, .limit = 1000000 },
		{ 'e', ARG_FLAG, .to = &h.echo },
		{ 'R', ARG_FLAG, .to = &h.rst },
		{ 0 }
	};

	args_parse(argc, argv, args, &h.dst);
	h.conns = xcalloc(h.n, sizeof(*h.conns));
	loop_setup(&h.loop, hold_before, hold_event, &h);
	loop_run(&h.loop);
	for (unsigned int i = 0; i < h.started; i++) {
		if (h.conns[i].state == H_DONE)
			continue;
		if (h.rst)
			sock_close_rst(h.conns[i].fd);
		else
			close(h.conns[i].fd);
	}
	hold_status(&h);
	free(h.conns);
	loop_close(&h.loop);
	return 0;
}
