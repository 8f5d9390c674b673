// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * peer flood: an abusive client, opening connections as fast as it can for
 * -t SECONDS. PARALLEL connects are kept under way; one not answered within
 * -T MS (a SYN dropped by a rate limit) is abandoned and another started,
 * so dropped SYNs do not slow it down the way the kernel's retransmission
 * timer would. Each connection that is established is reset at once, or
 * with -e after one echoed byte. Prints
 *   flood: A attempts, C connected, E echoed, R refused, T timed out, F failed in S s
 * and exits 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"

struct fconn {
	int fd;
	bool echo_wait;
	double started;
};

struct flood {
	struct addr dst;
	struct sources src;
	unsigned int parallel;
	double timeout, duration, start;
	bool echo;
	struct fconn *conns;
	unsigned long long attempts, connected, echoed, refused, timed_out, failed;
	unsigned int reported;
	struct loop loop;
};

static void fconn_end(struct fconn *c, bool rst)
{
	if (rst)
		sock_close_rst(c->fd);
	else
		close(c->fd);
	c->fd = -1;
}

static void fconn_error(struct flood *f, struct fconn *c, const char *what, int err)
{
	if (err == ECONNRESET || err == ECONNREFUSED) {
		f->refused++;
	} else {
		f->failed++;
		if (f->reported++ < MAX_REPORTS)
			fprintf(stderr, "%s: flood: %s: %s\n", prog, what,
				err ? strerror(err) : "unexpected EOF");
	}
	fconn_end(c, false);
}

static void fconn_start(struct flood *f, struct fconn *c, double now)
{
	const char *what;
	int rc;

	c->started = now;
	c->echo_wait = false;
	f->attempts++;
	rc = sock_connect_ep(&c->fd, &f->dst, sources_pick(&f->src, (unsigned int)f->attempts),
			     f->loop.ep, c, &what);
	if (rc < 0)
		fconn_error(f, c, what, -rc);
}

/* Abandons connects past -T, starts new ones; ends after -t. */
static int flood_before(void *ctx)
{
	struct flood *f = ctx;
	double now = now_s(), next = f->timeout;
	bool running = now - f->start < f->duration;

	for (unsigned int i = 0; i < f->parallel; i++) {
		struct fconn *c = &f->conns[i];

		if (c->fd >= 0 && !c->echo_wait && now - c->started >= f->timeout) {
			f->timed_out++;
			fconn_end(c, false);
		}
		if (c->fd < 0 && running)
			fconn_start(f, c, now);
		if (c->fd >= 0 && c->started + f->timeout - now < next)
			next = c->started + f->timeout - now;
	}
	if (!running)
		return LOOP_END;
	next = next < f->start + f->duration - now ? next : f->start + f->duration - now;
	return next > 0 ? (int)(next * 1000) + 1 : 1;
}

static void flood_event(void *ctx, epoll_data_t data, uint32_t events)
{
	struct flood *f = ctx;
	struct fconn *c = data.ptr;
	char buf[64];
	ssize_t n;
	int rc;

	if (c->fd < 0)
		return;
	if (!c->echo_wait) {
		rc = sock_connected(c->fd);
		if (rc < 0) {
			fconn_error(f, c, "connect", -rc);
			return;
		}
		f->connected++;
		if (!f->echo) {
			fconn_end(c, true);
			return;
		}
		c->echo_wait = true;
		rc = sock_await(c->fd, "f", f->loop.ep, c);
		if (rc < 0)
			fconn_error(f, c, "send", -rc);
		return;
	}
	n = read(c->fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		fconn_error(f, c, "read", n == 0 ? 0 : errno);
		return;
	}
	f->echoed++;
	fconn_end(c, true);
}

int cmd_flood(int argc, char **argv)
{
	struct flood f = { .parallel = 256, .timeout = 0.1, .duration = 5, .src.max = MAX_SOURCES };
	const struct arg args[] = {
		{ 'b', ARG_SOURCE, .to = &f.src },
		{ 'p', ARG_COUNT, .to = &f.parallel, .limit = 10000 },
		{ 'T', ARG_MS, .to = &f.timeout, .limit = 60000 },
		{ 't', ARG_SECONDS, .to = &f.duration, .what = "duration" },
		{ 'e', ARG_FLAG, .to = &f.echo },
		{ 0 }
	};
	double took;

	args_parse(argc, argv, args, &f.dst);
	f.conns = xcalloc(f.parallel, sizeof(*f.conns));
	for (unsigned int i = 0; i < f.parallel; i++)
		f.conns[i].fd = -1;
	loop_setup(&f.loop, flood_before, flood_event, &f);
	f.start = now_s();
	loop_run(&f.loop);
	took = now_s() - f.start;
	for (unsigned int i = 0; i < f.parallel; i++)
		if (f.conns[i].fd >= 0)
			fconn_end(&f.conns[i], false);
	printf("flood: %llu attempts, %llu connected, %llu echoed, %llu refused, %llu timed out, "
	       "%llu failed in %.2f s\n", f.attempts, f.connected, f.echoed, f.refused,
	       f.timed_out, f.failed, took);
	loop_close(&f.loop);
	free(f.conns);
	return 0;
}
