// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * epoll plus a binary min-heap of timers. Timers are armed and moved in
 * O(log n) and nothing ever scans all of them; connections refresh idle
 * deadlines lazily (see worker.c), so the heap moves rarely.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "lb/loop.h"

#define LOOP_BATCH 256

struct lb_loop {
	int epfd;
	int stop;
	uint64_t now;
	struct lb_timer **heap;
	size_t n_heap, cap_heap;
	void (*after)(void *arg);
	void *after_arg;
};

uint64_t lb_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct lb_loop *lb_loop_alloc(void)
{
	struct lb_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd == -1) {
		free(loop);
		return NULL;
	}
	loop->now = lb_clock_ms();
	return loop;
}

void lb_loop_free(struct lb_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->heap);
	free(loop);
}

static int loop_ctl(struct lb_loop *loop, int op, struct lb_event *ev, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	if (epoll_ctl(loop->epfd, op, ev->fd, &e) == -1)
		return -errno;
	return 0;
}

static void signals_event(struct lb_event *ev, uint32_t events)
{
	struct lb_signals *s = lb_container_of(ev, struct lb_signals, ev);
	struct signalfd_siginfo si;

	while (read(ev->fd, &si, sizeof(si)) == sizeof(si))
		s->cb((int)si.ssi_signo);
}

int lb_loop_add_signals(struct lb_loop *loop, struct lb_signals *s, const int *signals,
			void (*cb)(int signo))
{
	sigset_t mask;

	sigemptyset(&mask);
	for (; *signals; signals++)
		sigaddset(&mask, *signals);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
		return -errno;
	s->ev.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->ev.fd == -1)
		return -errno;
	s->ev.cb = signals_event;
	s->cb = cb;
	return lb_loop_add(loop, &s->ev, EPOLLIN);
}

int lb_loop_add(struct lb_loop *loop, struct lb_event *ev, uint32_t events)
{
	return loop_ctl(loop, EPOLL_CTL_ADD, ev, events);
}

int lb_loop_mod(struct lb_loop *loop, struct lb_event *ev, uint32_t events)
{
	return loop_ctl(loop, EPOLL_CTL_MOD, ev, events);
}

int lb_loop_del(struct lb_loop *loop, struct lb_event *ev)
{
	return loop_ctl(loop, EPOLL_CTL_DEL, ev, 0);
}

uint64_t lb_loop_now(const struct lb_loop *loop)
{
	return loop->now;
}

void lb_loop_set_after(struct lb_loop *loop, void (*fn)(void *arg), void *arg)
{
	loop->after = fn;
	loop->after_arg = arg;
}

static void heap_place(struct lb_loop *loop, size_t i, struct lb_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct lb_loop *loop, size_t i)
{
	struct lb_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (loop->heap[parent]->deadline <= t->deadline)
			break;
		heap_place(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_place(loop, i, t);
}

static void heap_down(struct lb_loop *loop, size_t i)
{
	struct lb_timer *t = loop->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= loop->n_heap)
			break;
		if (child + 1 < loop->n_heap &&
		    loop->heap[child + 1]->deadline < loop->heap[child]->deadline)
			child++;
		if (t->deadline <= loop->heap[child]->deadline)
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, t);
}

int lb_loop_timer_reserve(struct lb_loop *loop, size_t n)
{
	struct lb_timer **heap;

	if (n <= loop->cap_heap)
		return 0;
	heap = realloc(loop->heap, n * sizeof(*heap));
	if (!heap)
		return -ENOMEM;
	loop->heap = heap;
	loop->cap_heap = n;
	return 0;
}

int lb_loop_timer_set(struct lb_loop *loop, struct lb_timer *t, uint64_t deadline)
{
	if (t->slot) {
		size_t i = t->slot - 1;
		uint64_t old = t->deadline;

		t->deadline = deadline;
		if (deadline < old)
			heap_up(loop, i);
		else
			heap_down(loop, i);
		return 0;
	}
	if (loop->n_heap == loop->cap_heap) {
		size_t cap = loop->cap_heap ? 2 * loop->cap_heap : 64;
		struct lb_timer **heap = realloc(loop->heap, cap * sizeof(*heap));

		if (!heap)
			return -ENOMEM;
		loop->heap = heap;
		loop->cap_heap = cap;
	}
	t->deadline = deadline;
	loop->heap[loop->n_heap++] = t;
	heap_up(loop, loop->n_heap - 1);
	return 0;
}

void lb_loop_timer_cancel(struct lb_loop *loop, struct lb_timer *t)
{
	size_t i;
	struct lb_timer *last;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	last = loop->heap[--loop->n_heap];
	if (i == loop->n_heap)
		return;
	heap_place(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->slot - 1);
}

static void loop_run_timers(struct lb_loop *loop)
{
	while (loop->n_heap && loop->heap[0]->deadline <= loop->now) {
		struct lb_timer *t = loop->heap[0];

		lb_loop_timer_cancel(loop, t);
		t->cb(t);
	}
}

static int loop_timeout(const struct lb_loop *loop)
{
	uint64_t d;

	if (!loop->n_heap)
		return -1;
	d = loop->heap[0]->deadline;
	if (d <= loop->now)
		return 0;
	d -= loop->now;
	return d > 60000 ? 60000 : (int)d;
}

int lb_loop_run(struct lb_loop *loop)
{
	struct epoll_event events[LOOP_BATCH];

	loop->stop = 0;
	while (!loop->stop) {
		int n = epoll_wait(loop->epfd, events, LOOP_BATCH, loop_timeout(loop));

		if (n == -1 && errno != EINTR)
			return -errno;
		loop->now = lb_clock_ms();
		for (int i = 0; i < n; i++) {
			struct lb_event *ev = events[i].data.ptr;

			ev->cb(ev, events[i].events);
		}
		loop_run_timers(loop);
		if (loop->after)
			loop->after(loop->after_arg);
	}
	return 0;
}

void lb_loop_stop(struct lb_loop *loop)
{
	loop->stop = 1;
}
