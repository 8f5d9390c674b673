// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The two servers that end the connection before the client does: peer rst
 * resets it once the first bytes arrive (at once with -i); peer early sends
 * "early\n" and its FIN at once, then counts what the client still sends.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"
#include "server.h"

static bool rst_at_once;

static bool rst_accepted(struct sconn *c)
{
	if (!rst_at_once)
		return true;
	sconn_log_end(c, "reset sent at accept", 0);
	sconn_close(c, true);
	return false;
}

static void rst_event(int ep, struct sconn *c, uint32_t events)
{
	ssize_t n = read(c->fd, c->out.buf, BUF_LEN);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		sconn_log_end(c, "reset sent after the first bytes", 0);
		sconn_close(c, true);
		return;
	}
	sconn_log_end(c, n == 0 ? "eof before any data" : "read", n == 0 ? 0 : errno);
	sconn_close(c, false);
}

static int rst_option(struct server_conf *conf, int opt, const char *arg)
{
	rst_at_once = true;
	return 0;
}

const struct server_mode rst_mode = {
	.name = "rst", .optstring = "iv", .option = rst_option, .accepted = rst_accepted,
	.event = rst_event
};

static bool early_accepted(struct sconn *c)
{
	/* Tiny, so it always fits the empty send buffer. */
	if (send(c->fd, "early\n", 6, MSG_NOSIGNAL) != 6 || shutdown(c->fd, SHUT_WR) == -1) {
		sconn_log_end(c, "send", errno);
		sconn_close(c, false);
		return false;
	}
	return true;
}

static void early_event(int ep, struct sconn *c, uint32_t events)
{
	char a[ADDR_STRLEN];

	for (;;) {
		ssize_t n = read(c->fd, c->out.buf, BUF_LEN);

		if (n > 0) {
			c->got += (uint64_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0)
			fprintf(stderr, "%s: early: %s: %" PRIu64 " bytes after our FIN, then EOF\n",
				prog, addr_fmt(&c->peer, a, sizeof(a)), c->got);
		else
			fprintf(stderr, "%s: early: %s: read: %s after %" PRIu64 " bytes\n", prog,
				addr_fmt(&c->peer, a, sizeof(a)), strerror(errno), c->got);
		sconn_close(c, false);
		return;
	}
}

const struct server_mode early_mode = {
	.name = "early", .optstring = "Fv", .accepted = early_accepted, .event = early_event
};
