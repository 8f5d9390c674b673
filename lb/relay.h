/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_RELAY_H
#define LB_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A kernel pipe that carries one direction's bytes while they are in flight. */
struct lb_relay_pipe {
	int rd, wr;
	size_t len;			/* bytes sitting in the pipe */
	size_t size;			/* what it holds at most (F_GETPIPE_SZ) */
	struct lb_relay_pipe *next;
};

/*
 * Pipes are taken only while a direction has data in flight and come back
 * when it drains, so an idle connection holds just its two sockets. At most
 * `max` pipes exist at once; past that a direction falls back to a copy
 * through the pool's bounce buffer that never holds data across calls.
 */
struct lb_relay_pool {
	struct lb_relay_pipe *free;
	unsigned int n_free, n_out, max, keep;
	char *bounce;
	size_t bounce_len;
};

/* One direction of a proxied connection. */
struct lb_relay_half {
	struct lb_relay_pipe *pipe;
	uint64_t in;			/* read from src so far */
	uint64_t bytes;			/* written to dst so far */
	bool src_ready, dst_ready;	/* edge-triggered readiness not yet used up */
	bool src_hup;			/* src reported RDHUP/HUP/ERR: read until EOF */
	bool splicing;			/* last read filled the copy buffer: splice */
	bool close_after_eof;		/* at EOF, the caller closes dst: no shutdown() */
	bool eof;			/* src has sent FIN */
	bool shut;			/* FIN passed on to dst */
};

/* Sets up a pool of at most max pipes, keeping up to keep idle ones. */
int lb_relay_pool_init(struct lb_relay_pool *pool, unsigned int max, unsigned int keep);
void lb_relay_pool_fini(struct lb_relay_pool *pool);

/*
 * Moves what it can from src to dst until one side would block. Small reads
 * are copied (recv/send through the pool's buffer); once a read fills that
 * buffer the direction switches to splice() through a pipe until src runs
 * dry. Passes a FIN on (shutdown(dst, SHUT_WR)) once src reached EOF and all
 * its bytes are out, unless close_after_eof is set (then only h->shut).
 * Returns 0, or -errno from a socket (-ECONNRESET, -EPIPE, ...) after which
 * the connection must be torn down.
 */
int lb_relay_move(struct lb_relay_pool *pool, struct lb_relay_half *h, int src, int dst);

/* Returns h's pipe, if any, to the pool (dropping data still in it). */
void lb_relay_release(struct lb_relay_pool *pool, struct lb_relay_half *h);

/* True when h has data waiting for dst. */
static inline bool lb_relay_pending(const struct lb_relay_half *h)
{
	return h->pipe && h->pipe->len;
}

#endif
