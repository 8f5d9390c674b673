// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/relay.h"

#define RELAY_CHUNK (1 << 20)
#define BOUNCE_LEN (64 * 1024)
/*
 * Reads shorter than this are copied: for request/response traffic recv +
 * send is two cheap syscalls where splice needs three (in, out, and the
 * EAGAIN that proves src drained) plus pipe bookkeeping. Must not exceed an
 * empty pipe's capacity (64 KiB), where an unsent tail is parked.
 */
#define COPY_LEN (16 * 1024)

int lb_relay_pool_init(struct lb_relay_pool *pool, unsigned int max, unsigned int keep)
{
	*pool = (struct lb_relay_pool){ .max = max, .keep = keep };
	pool->bounce = malloc(BOUNCE_LEN);
	if (!pool->bounce)
		return -ENOMEM;
	pool->bounce_len = BOUNCE_LEN;
	return 0;
}

static void pipe_close(struct lb_relay_pipe *p)
{
	close(p->rd);
	close(p->wr);
	free(p);
}

void lb_relay_pool_fini(struct lb_relay_pool *pool)
{
	while (pool->free) {
		struct lb_relay_pipe *p = pool->free;

		pool->free = p->next;
		pipe_close(p);
	}
	free(pool->bounce);
	pool->bounce = NULL;
}

static struct lb_relay_pipe *pool_get(struct lb_relay_pool *pool)
{
	struct lb_relay_pipe *p = pool->free;
	int fds[2], n;

	if (p) {
		pool->free = p->next;
		pool->n_free--;
		pool->n_out++;
		return p;
	}
	if (pool->n_out + pool->n_free >= pool->max)
		return NULL;
	p = malloc(sizeof(*p));
	if (!p)
		return NULL;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
		free(p);
		return NULL;
	}
	*p = (struct lb_relay_pipe){ .rd = fds[0], .wr = fds[1] };
	/*
	 * Past the user's fs.pipe-user-pages-soft a new pipe holds only a
	 * page or two, and workers may not raise that: size it here.
	 */
	n = fcntl(fds[0], F_GETPIPE_SZ);
	p->size = n > 0 ? (size_t)n : 4096;
	pool->n_out++;
	return p;
}

void lb_relay_release(struct lb_relay_pool *pool, struct lb_relay_half *h)
{
	struct lb_relay_pipe *p = h->pipe;

	if (!p)
		return;
	h->pipe = NULL;
	pool->n_out--;
	if (p->len || pool->n_free >= pool->keep) {
		/* A pipe with stale bytes can't be reused safely. */
		pipe_close(p);
		return;
	}
	p->next = pool->free;
	pool->free = p;
	pool->n_free++;
}

/*
 * Reads from src for h. Returns >0 bytes read; 0 when src is at EOF
 * (h->eof set) or drained (h->src_ready cleared); or -errno.
 */
static ssize_t src_recv(struct lb_relay_half *h, int src, void *buf, size_t len, int flags)
{
	ssize_t n = recv(src, buf, len, flags | MSG_DONTWAIT);

	if (n == 0) {
		h->eof = true;
		return 0;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			h->src_ready = false;
			return 0;
		}
		return -errno;
	}
	return n;
}

/*
 * No pipe to be had: peek, send what dst takes, then consume exactly that
 * much, so nothing is held here between calls. Returns >0 moved, 0 when a
 * side would block or src is at EOF (h->eof set), or -errno.
 */
static ssize_t relay_bounce(struct lb_relay_pool *pool, struct lb_relay_half *h, int src, int dst)
{
	ssize_t n, m;

	n = src_recv(h, src, pool->bounce, pool->bounce_len, MSG_PEEK);
	if (n <= 0)
		return n;
	m = send(dst, pool->bounce, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (m == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			h->dst_ready = false;
			return 0;
		}
		return -errno;
	}
	if (recv(src, pool->bounce, m, MSG_DONTWAIT) != m)
		return -EIO;
	if (m < n)
		h->dst_ready = false;
	return m;
}

/*
 * The pipe a copy would park its unsent tail in, made sure of before the
 * read so that nothing is consumed that cannot be kept: the first free
 * one, made now if need be. NULL when no pipe can be had (the pool is at
 * max, or pipe2 fails: EMFILE, ENFILE); then the caller bounces instead.
 */
static const struct lb_relay_pipe *pool_reserve(struct lb_relay_pool *pool)
{
	struct lb_relay_pipe *p;

	if (pool->free)
		return pool->free;
	p = pool_get(pool);
	if (!p)
		return NULL;
	pool->n_out--;
	p->next = NULL;
	pool->free = p;
	pool->n_free++;
	return p;
}

/*
 * Copies one read's worth (at most len, which the first free pipe can hold
 * whole) from src to a ready dst. What dst does not take is parked in that
 * pipe and leaves through the splice path. A read shorter than asked for
 * drained src, so under edge triggering src is not ready until the next
 * event, unless an EOF or error is already flagged (src_hup): then reading
 * continues to see it. Returns >0 bytes read, 0 when src would block or is
 * at EOF (h->eof), or -errno.
 */
static ssize_t relay_copy(struct lb_relay_pool *pool, struct lb_relay_half *h, int src, int dst,
			  size_t len)
{
	ssize_t n, m;

	n = src_recv(h, src, pool->bounce, len, 0);
	if (n <= 0)
		return n;
	h->in += n;
	if ((size_t)n == len)
		h->splicing = true;
	else if (!h->src_hup)
		h->src_ready = false;
	m = send(dst, pool->bounce, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (m == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		m = 0;
	}
	h->bytes += m;
	if (m < n) {
		ssize_t w;

		h->dst_ready = false;
		/* The reserved pipe: empty, and at least len long. */
		h->pipe = pool_get(pool);
		w = write(h->pipe->wr, pool->bounce + m, n - m);
		if (w != n - m)
			return w == -1 ? -errno : -EIO;
		h->pipe->len = n - m;
	}
	return n;
}

int lb_relay_move(struct lb_relay_pool *pool, struct lb_relay_half *h, int src, int dst)
{
	const struct lb_relay_pipe *spare;
	ssize_t n;

	for (;;) {
		if (lb_relay_pending(h)) {
			if (!h->dst_ready)
				return 0;
			n = splice(h->pipe->rd, NULL, dst, NULL, h->pipe->len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n == -1) {
				if (errno == EAGAIN) {
					h->dst_ready = false;
					return 0;
				}
				return -errno;
			}
			h->pipe->len -= n;
			h->bytes += n;
			continue;
		}
		if (h->eof) {
			lb_relay_release(pool, h);
			if (!h->shut) {
				h->shut = true;
				if (!h->close_after_eof && shutdown(dst, SHUT_WR) == -1 &&
				    errno != ENOTCONN)
					return -errno;
			}
			return 0;
		}
		if (!h->src_ready) {
			h->splicing = false;
			lb_relay_release(pool, h);
			return 0;
		}
		if (!h->splicing && !h->pipe && h->dst_ready && (spare = pool_reserve(pool))) {
			n = relay_copy(pool, h, src, dst,
				       spare->size < COPY_LEN ? spare->size : COPY_LEN);
			if (n < 0)
				return n;
			continue;
		}
		if (!h->pipe)
			h->pipe = pool_get(pool);
		if (!h->pipe) {
			if (!h->dst_ready)
				return 0;
			n = relay_bounce(pool, h, src, dst);
			if (n < 0)
				return n;
			h->in += n;
			h->bytes += n;
			continue;
		}
		/* The pipe is empty here, so EAGAIN can only mean src is drained. */
		n = splice(src, NULL, h->pipe->wr, NULL, RELAY_CHUNK,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == 0) {
			h->eof = true;
			continue;
		}
		if (n == -1) {
			if (errno == EAGAIN) {
				h->src_ready = false;
				continue;
			}
			return -errno;
		}
		if ((size_t)n < COPY_LEN && (size_t)n < h->pipe->size)
			h->splicing = false;
		h->pipe->len = n;
		h->in += n;
	}
}
