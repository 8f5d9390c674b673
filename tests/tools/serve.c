// SPDX-License-Identifier: GPL-2.0-or-later
/* peer serve: the checking end of the protocol described in peer.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"
#include "server.h"

static struct {
	uint64_t conns, ok, failed, up, down;
} stats;

static void serve_fail(struct sconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void serve_fail(struct sconn *c, const char *fmt, ...)
{
	char a[ADDR_STRLEN];
	va_list ap;

	fprintf(stderr, "%s: serve: %s: ", prog, addr_fmt(&c->peer, a, sizeof(a)));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	c->bad = true;
}

static void serve_close(struct sconn *c, bool ok)
{
	if (ok && !c->bad)
		stats.ok++;
	else
		stats.failed++;
	sconn_close(c, false);
}

/* Takes the header, then checks the upload; at EOF queues the status byte. */
static void serve_read(int ep, struct sconn *c)
{
	uint8_t buf[65536];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	uint64_t seed;
	size_t off = 0;

	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		serve_fail(c, "read: %s (after %" PRIu64 " upload bytes)", strerror(errno), c->got);
		serve_close(c, false);
		return;
	}
	if (n == 0) {
		if (c->state == S_HEADER) {
			serve_fail(c, "EOF inside header (%zu of %d bytes)", c->hdr_len, HDR_LEN);
			serve_close(c, false);
			return;
		}
		if (!c->bad && c->got != c->up)
			serve_fail(c, "short upload: %" PRIu64 " of %" PRIu64 " bytes", c->got, c->up);
		stats.up += c->got;
		c->out.buf[0] = c->bad ? ST_FAIL : ST_OK;
		c->out.len = 1;
		c->state = S_SEND;
		if (c->bad)
			c->down = 0;
		c->out.left = c->down;
		sconn_want(ep, c, EPOLLOUT);
		return;
	}
	if (c->state == S_SEND)
		return; /* cannot happen after EOF; ignore */
	if (c->state == S_HEADER) {
		size_t take = HDR_LEN - c->hdr_len;

		if (take > (size_t)n)
			take = (size_t)n;
		memcpy(c->hdr + c->hdr_len, buf, take);
		c->hdr_len += take;
		off = take;
		if (c->hdr_len < HDR_LEN)
			return;
		if (hdr_get(c->hdr, &c->up, &c->down, &seed) < 0) {
			serve_fail(c, "bad header magic 0x%08" PRIx32, hdr_magic(c->hdr));
			serve_close(c, false);
			return;
		}
		stream_init(&c->up_st, seed, DIR_UP);
		stream_init(&c->out.st, seed, DIR_DOWN);
		c->state = S_UPLOAD;
	}
	if (off < (size_t)n && !c->bad) {
		size_t len = (size_t)n - off, i;

		if (c->got + len > c->up) {
			serve_fail(c, "upload longer than announced %" PRIu64 " bytes", c->up);
		} else {
			i = stream_check(&c->up_st, buf + off, len);
			if (i != len)
				serve_fail(c, "upload mismatch at byte %" PRIu64 " of %" PRIu64,
					   c->got + i, c->up);
		}
	}
	c->got += (size_t)n - off;
}

/* Sends the status byte, then the download; closes when all is out. */
static void serve_write(struct sconn *c)
{
	uint64_t sent = 0;
	int rc = feed_send(c->fd, &c->out, &sent);

	if (rc == -EAGAIN)
		return;
	if (rc < 0) {
		serve_fail(c, "send: %s", strerror(-rc));
		serve_close(c, false);
		return;
	}
	stats.down += c->down;
	serve_close(c, true);
}

static bool serve_accepted(struct sconn *c)
{
	stats.conns++;
	return true;
}

static void serve_event(int ep, struct sconn *c, uint32_t events)
{
	if (c->state == S_SEND)
		serve_write(c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		serve_read(ep, c);
}

static int serve_done(void)
{
	fprintf(stderr, "%s: serve: %" PRIu64 " connections, %" PRIu64 " ok, %" PRIu64
		" failed; upload %" PRIu64 " bytes, download %" PRIu64 " bytes\n",
		prog, stats.conns, stats.ok, stats.failed, stats.up, stats.down);
	return stats.failed ? 1 : 0;
}

const struct server_mode serve_mode = {
	.name = "serve", .optstring = "Fv", .accepted = serve_accepted, .event = serve_event,
	.done = serve_done
};
