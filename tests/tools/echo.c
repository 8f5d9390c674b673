// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The two servers that read all the client sends: peer echo sends it back
 * and closes after the client's FIN; peer sink drops it and never answers,
 * or with -A never even accepts.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "peer.h"
#include "server.h"

static void echo_event(int ep, struct sconn *c, uint32_t events)
{
	struct feed *b = &c->out;
	uint64_t sent = 0;
	int rc;

	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->rd_eof && b->len < BUF_LEN) {
		ssize_t n = read(c->fd, b->buf + b->len, BUF_LEN - b->len);

		if (n == 0) {
			c->rd_eof = true;
		} else if (n > 0) {
			b->len += (size_t)n;
		} else if (errno != EAGAIN && errno != EINTR) {
			sconn_log_end(c, "read", errno);
			sconn_close(c, false);
			return;
		}
	}
	rc = feed_send(c->fd, b, &sent);
	if (rc < 0 && rc != -EAGAIN) {
		sconn_log_end(c, "send", -rc);
		sconn_close(c, false);
		return;
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	if (c->rd_eof && b->len == 0) {
		sconn_log_end(c, "eof", 0);
		sconn_close(c, false);
		return;
	}
	sconn_want(ep, c, (!c->rd_eof && b->len < BUF_LEN ? EPOLLIN : 0) |
			  (b->len > b->off ? EPOLLOUT : 0));
}

const struct server_mode echo_mode = { .name = "echo", .optstring = "Fv", .event = echo_event };

/* sink -N: accepts, never reads; waits only for the end of the connection. */
static bool sink_no_read;

static bool sink_accepted(struct sconn *c)
{
	if (sink_no_read)
		c->events = EPOLLRDHUP;
	return true;
}

static void sink_event(int ep, struct sconn *c, uint32_t events)
{
	if (sink_no_read) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		sconn_log_end(c, err ? "error" : "eof", err);
		sconn_close(c, !err);
		return;
	}
	for (;;) {
		ssize_t n = read(c->fd, c->out.buf, BUF_LEN);

		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		sconn_log_end(c, n == 0 ? "eof" : "read", n == 0 ? 0 : errno);
		sconn_close(c, false);
		return;
	}
}

static int sink_option(struct server_conf *conf, int opt, const char *arg)
{
	if (opt == 'A') {
		conf->no_accept = true;
		return 0;
	}
	if (opt == 'N') {
		sink_no_read = true;
		return 0;
	}
	conf->backlog = atoi(arg);
	if (conf->backlog < 0)
		die("-l: bad backlog '%s'", arg);
	return 0;
}

const struct server_mode sink_mode = {
	.name = "sink", .optstring = "ANl:v", .option = sink_option, .accepted = sink_accepted,
	.event = sink_event
};
