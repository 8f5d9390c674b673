// SPDX-License-Identifier: GPL-2.0-or-later
/* peer churn: many short connections, each reset once established (after
 * one echoed byte with -e, or for every second one with -a); -p of them
 * under way, or with -r a steady RATE of new ones a second (a probe of new
 * connections while something changes), each failing after -T MS, with -L
 * every failure logged with its start time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"

struct chconn {
	int fd;
	unsigned int idx;
	bool echo, sent;
	double started;			/* now_s() at its start */
	struct chconn *prev, *next;	/* under way, oldest first */
};

struct churn {
	struct addr dst;
	struct sources src;
	unsigned int n, parallel, started, active;
	unsigned int connected, echoed, failed, reported;
	int echo_mode;			/* 0 none, 1 all, 2 every second one */
	unsigned int rate;		/* -r: starts per second; 0: -p under way */
	double deadline;		/* -T: seconds a connection may take; 0: none */
	bool log_fails;			/* -L */
	double wall0;			/* wall clock (ms) at start, for -L */
	struct chconn *head, *tail;	/* under way, oldest first */
	double start, timeout;
	struct loop loop;
};

static void chconn_done(struct churn *ch, struct chconn *c, bool rst)
{
	if (rst)
		sock_close_rst(c->fd);
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
		printf("churn: fail %.0f %u: %s: %s\n", ch->wall0 + (c->started - ch->start) * 1000,
		       c->idx, what, err < 0 ? "timed out" : err ? strerror(err) : "unexpected EOF");
	else if (ch->reported++ < MAX_REPORTS)
		fprintf(stderr, "%s: churn: conn %u: %s: %s\n", prog, c->idx, what,
			err ? strerror(err) : "unexpected EOF");
	chconn_done(ch, c, false);
}

static void chconn_start(struct churn *ch)
{
	struct chconn *c = xcalloc(1, sizeof(*c));
	const char *what;
	int rc;

	c->idx = ch->started++;
	c->echo = ch->echo_mode == 1 || (ch->echo_mode == 2 && c->idx % 2 == 0);
	c->started = now_s();
	c->prev = ch->tail;
	*(ch->tail ? &ch->tail->next : &ch->head) = c;
	ch->tail = c;
	ch->active++;
	rc = sock_connect_ep(&c->fd, &ch->dst, sources_pick(&ch->src, c->idx), ch->loop.ep, c,
			     &what);
	if (rc < 0)
		chconn_fail(ch, c, what, -rc);
}

static void chconn_event(struct churn *ch, struct chconn *c, uint32_t events)
{
	char buf[64];
	ssize_t n;

	if (!c->sent) {
		int rc = sock_connected(c->fd);

		if (rc < 0) {
			chconn_fail(ch, c, "connect", -rc);
			return;
		}
		ch->connected++;
		if (!c->echo) {
			chconn_done(ch, c, true);
			return;
		}
		c->sent = true;
		rc = sock_await(c->fd, "c", ch->loop.ep, c);
		if (rc < 0)
			chconn_fail(ch, c, "send", -rc);
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

/*
 * Keeps -p connections under way (or starts one every 1/RATE s since the
 * start, with -r) until all are done or time is up; -T fails those under
 * way for too long, oldest first.
 */
static int churn_before(void *ctx)
{
	struct churn *ch = ctx;
	double t = now_s();

	if ((ch->started == ch->n && ch->active == 0) || t - ch->start >= ch->timeout)
		return LOOP_END;
	while (ch->deadline && ch->head && t - ch->head->started > ch->deadline)
		chconn_fail(ch, ch->head, ch->head->sent ? "echo" : "connect", -1);
	if (ch->rate) {
		while (ch->started < ch->n && t - ch->start >= (double)ch->started / ch->rate)
			chconn_start(ch);
		return 2;
	}
	while (ch->active < ch->parallel && ch->started < ch->n)
		chconn_start(ch);
	return ch->deadline ? 10 : 100;
}

static void churn_event(void *ctx, epoll_data_t data, uint32_t events)
{
	chconn_event(ctx, data.ptr, events);
}

int cmd_churn(int argc, char **argv)
{
	struct churn ch = { .n = 1, .parallel = 100, .timeout = 60, .src.max = MAX_SOURCES };
	const struct arg args[] = {
		{ 'b', ARG_SOURCE, .to = &ch.src },
		{ 'n', ARG_COUNT, .to = &ch.n, .limit = 100000000 },
		{ 'p', ARG_COUNT, .to = &ch.parallel, .limit = 100000000 },
		{ 'r', ARG_COUNT, .to = &ch.rate, .limit = 1000000 },
		{ 'T', ARG_MS, .to = &ch.deadline, .limit = 3600000 },
		{ 'L', ARG_FLAG, .to = &ch.log_fails },
		{ 'e', ARG_CHOICE, .to = &ch.echo_mode, .limit = 1 },
		{ 'a', ARG_CHOICE, .to = &ch.echo_mode, .limit = 2 },
		{ 't', ARG_SECONDS, .to = &ch.timeout, .what = "timeout" },
		{ 0 }
	};

	struct timespec ts;

	args_parse(argc, argv, args, &ch.dst);
	loop_setup(&ch.loop, churn_before, churn_event, &ch);
	clock_gettime(CLOCK_REALTIME, &ts);
	ch.wall0 = (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
	ch.start = now_s();
	loop_run(&ch.loop);
	if (ch.started < ch.n || ch.active > 0) {
		fprintf(stderr, "%s: churn: %s after %.1f s: %u unfinished, %u never started\n",
			prog, signalled ? "interrupted" : "timed out", now_s() - ch.start, ch.active,
			ch.n - ch.started);
		ch.failed += ch.active + (ch.n - ch.started);
	}
	if (ch.reported > MAX_REPORTS)
		fprintf(stderr, "%s: churn: %u more failures not shown\n", prog,
			ch.reported - MAX_REPORTS);
	printf("churn: %u conns: %u connected, %u echoed, %u failed in %.2f s\n", ch.n,
	       ch.connected, ch.echoed, ch.failed, now_s() - ch.start);
	loop_close(&ch.loop);
	return ch.failed ? 1 : 0;
}
