// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/loop.c: the timer heap against a sorted reference under random arms,
 * moves and cancels (including cancels from inside a callback), and fd
 * events with the after-batch hook.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lb/loop.h"
#include "tests/unit.h"

#define N_TIMERS 2000

struct tt {
	struct lb_timer t;
	bool armed;			/* the reference: armed now */
	bool fired;
	unsigned int victim;		/* when it fires, cancel this one (N_TIMERS: none) */
};

static struct tt timers[N_TIMERS];
static uint64_t fired_deadlines[N_TIMERS];
static size_t n_fired;
static struct lb_loop *loop;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void on_timer(struct lb_timer *t)
{
	struct tt *x = lb_container_of(t, struct tt, t);

	ck_assert(x->armed);
	ck_assert(!x->fired);
	ck_assert_uint_eq(t->slot, 0);
	x->fired = true;
	x->armed = false;
	fired_deadlines[n_fired++] = t->deadline;
	if (x->victim < N_TIMERS && timers[x->victim].armed) {
		lb_loop_timer_cancel(loop, &timers[x->victim].t);
		timers[x->victim].armed = false;
	}
}

static void stop_after(void *arg)
{
	lb_loop_stop(loop);
}

START_TEST(test_timer_heap_random)
{
	uint64_t base, span;
	size_t expect = 0;

	loop = lb_loop_alloc();
	ck_assert_ptr_nonnull(loop);
	lb_loop_set_after(loop, stop_after, NULL);
	/* Every deadline is already due, so one turn of the loop fires them all, in order. */
	base = lb_clock_ms() - 1;
	span = base < 100000 ? base : 100000;
	for (unsigned int i = 0; i < N_TIMERS; i++) {
		timers[i] = (struct tt){ .t.cb = on_timer, .victim = N_TIMERS };
		ck_assert_int_eq(lb_loop_timer_set(loop, &timers[i].t, base - next_rand() % span), 0);
		timers[i].armed = true;
	}
	for (unsigned int round = 0; round < 20000; round++) {
		struct tt *x = &timers[next_rand() % N_TIMERS];

		switch (next_rand() % 3) {
		case 0:
			lb_loop_timer_cancel(loop, &x->t);
			lb_loop_timer_cancel(loop, &x->t);
			x->armed = false;
			break;
		default:
			/* Arm, or move earlier or later. */
			ck_assert_int_eq(lb_loop_timer_set(loop, &x->t, base - next_rand() % span), 0);
			x->armed = true;
			break;
		}
	}
	/* Some callbacks cancel another timer, due later or earlier. */
	for (unsigned int i = 0; i < N_TIMERS; i += 7)
		timers[i].victim = next_rand() % N_TIMERS;
	for (unsigned int i = 0; i < N_TIMERS; i++)
		ck_assert_uint_eq(timers[i].t.slot != 0, timers[i].armed);
	ck_assert_int_eq(lb_loop_run(loop), 0);
	for (unsigned int i = 0; i < N_TIMERS; i++) {
		/* Whatever was armed fired, unless a callback cancelled it first. */
		ck_assert(!timers[i].armed);
		expect += timers[i].fired;
	}
	ck_assert_uint_eq(n_fired, expect);
	ck_assert_uint_gt(n_fired, N_TIMERS / 4);
	for (size_t i = 1; i < n_fired; i++)
		ck_assert_uint_le(fired_deadlines[i - 1], fired_deadlines[i]);
	lb_loop_free(loop);
}
END_TEST

/* A timer not yet due stays armed; the loop sleeps until it is. */
START_TEST(test_timer_future)
{
	struct tt later = { .t.cb = on_timer, .victim = N_TIMERS };
	struct tt soon = { .t.cb = on_timer, .victim = N_TIMERS };
	uint64_t t0;

	n_fired = 0;
	loop = lb_loop_alloc();
	ck_assert_ptr_nonnull(loop);
	lb_loop_set_after(loop, stop_after, NULL);
	t0 = lb_clock_ms();
	ck_assert_int_eq(lb_loop_timer_set(loop, &later.t, t0 + 60000), 0);
	ck_assert_int_eq(lb_loop_timer_set(loop, &soon.t, t0 + 30), 0);
	later.armed = soon.armed = true;
	ck_assert_int_eq(lb_loop_run(loop), 0);
	ck_assert(soon.fired);
	ck_assert(!later.fired);
	ck_assert_uint_ge(lb_loop_now(loop), t0 + 30);
	ck_assert_uint_ne(later.t.slot, 0);
	lb_loop_timer_cancel(loop, &later.t);
	lb_loop_free(loop);
}
END_TEST

struct fdev {
	struct lb_event ev;
	unsigned int calls;
	uint32_t events;
};

static void on_fd(struct lb_event *ev, uint32_t events)
{
	struct fdev *f = lb_container_of(ev, struct fdev, ev);
	char buf[16];

	f->calls++;
	f->events |= events;
	while (read(ev->fd, buf, sizeof(buf)) > 0)
		;
}

START_TEST(test_fd_events)
{
	struct fdev f = { .ev.cb = on_fd };
	int p[2];

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	loop = lb_loop_alloc();
	ck_assert_ptr_nonnull(loop);
	lb_loop_set_after(loop, stop_after, NULL);
	f.ev.fd = p[0];
	ck_assert_int_eq(lb_loop_add(loop, &f.ev, EPOLLIN | EPOLLET), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(lb_loop_run(loop), 0);
	ck_assert_uint_eq(f.calls, 1);
	ck_assert(f.events & EPOLLIN);
	ck_assert_int_eq(lb_loop_del(loop, &f.ev), 0);
	ck_assert_int_lt(lb_loop_del(loop, &f.ev), 0);
	close(p[0]);
	close(p[1]);
	lb_loop_free(loop);
}
END_TEST

static int signals_seen[4];
static int n_signals;

static void on_signal(int signo)
{
	if (n_signals < 4)
		signals_seen[n_signals++] = signo;
	lb_loop_stop(loop);
}

/* Signals arrive in order through the loop, as numbers; none reaches a handler. */
START_TEST(test_signals)
{
	struct lb_signals sig = { 0 };
	sigset_t blocked;

	loop = lb_loop_alloc();
	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(lb_loop_add_signals(loop, &sig, (const int[]){ SIGUSR1, SIGUSR2, 0 },
					     on_signal), 0);
	ck_assert_int_eq(sigprocmask(SIG_BLOCK, NULL, &blocked), 0);
	ck_assert(sigismember(&blocked, SIGUSR1) && sigismember(&blocked, SIGUSR2));
	/* Default action of both is to end the process: only the block keeps it alive. */
	ck_assert_int_eq(raise(SIGUSR2), 0);
	ck_assert_int_eq(lb_loop_run(loop), 0);
	ck_assert_int_eq(n_signals, 1);
	ck_assert_int_eq(signals_seen[0], SIGUSR2);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(lb_loop_run(loop), 0);
	ck_assert_int_eq(n_signals, 2);
	ck_assert_int_eq(signals_seen[1], SIGUSR1);
	close(sig.ev.fd);
	lb_loop_free(loop);
}
END_TEST

int main(void)
{
	return lb_test_main("loop", NULL, NULL, 0,
			    LB_TESTS(test_timer_heap_random, test_timer_future, test_fd_events,
				     test_signals));
}
