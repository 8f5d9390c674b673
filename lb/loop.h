/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LOOP_H
#define LB_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct lb_loop;

/* A file descriptor watched by the loop; embed it in the owning object. */
struct lb_event {
	int fd;
	void (*cb)(struct lb_event *ev, uint32_t events);
};

/* A one-shot timer; embed it and recover the owner with container_of. */
struct lb_timer {
	uint64_t deadline;		/* ms on the loop's monotonic clock */
	size_t slot;			/* heap index + 1; 0 when not armed */
	void (*cb)(struct lb_timer *t);
};

/* Signals delivered through the loop (lb_loop_add_signals()); embed it. */
struct lb_signals {
	struct lb_event ev;
	void (*cb)(int signo);
};

#define lb_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Returns an owned loop, or NULL with errno set. */
struct lb_loop *lb_loop_alloc(void);
void lb_loop_free(struct lb_loop *loop);

/* Watch ev->fd for events (EPOLLIN, EPOLLET, ...). Return 0 or -errno. */
int lb_loop_add(struct lb_loop *loop, struct lb_event *ev, uint32_t events);
int lb_loop_mod(struct lb_loop *loop, struct lb_event *ev, uint32_t events);
int lb_loop_del(struct lb_loop *loop, struct lb_event *ev);

/*
 * Blocks the signals of the 0-terminated list signals and hands each one
 * that arrives to s->cb(signo) from the loop (a signalfd), never from a
 * handler. Returns 0 or -errno. s->ev.fd stays open until the caller
 * closes it.
 */
int lb_loop_add_signals(struct lb_loop *loop, struct lb_signals *s, const int *signals,
			void (*cb)(int signo));

/* Arms (or moves) t to fire at deadline; cancel is a no-op when unarmed. */
int lb_loop_timer_set(struct lb_loop *loop, struct lb_timer *t, uint64_t deadline);
void lb_loop_timer_cancel(struct lb_loop *loop, struct lb_timer *t);

/* Makes room for n armed timers at once, so arming never allocates. Returns 0 or -ENOMEM. */
int lb_loop_timer_reserve(struct lb_loop *loop, size_t n);

/* The loop's clock in ms, refreshed once per iteration. */
uint64_t lb_loop_now(const struct lb_loop *loop);

/*
 * Called after every batch of events and timers. Objects freed during a
 * batch must outlive it (another event of the same batch may name them):
 * release them here.
 */
void lb_loop_set_after(struct lb_loop *loop, void (*fn)(void *arg), void *arg);

/* Runs until lb_loop_stop(); returns 0 or -errno on a failed epoll_wait. */
int lb_loop_run(struct lb_loop *loop);
void lb_loop_stop(struct lb_loop *loop);

/* Monotonic clock in ms. */
uint64_t lb_clock_ms(void);

#endif
