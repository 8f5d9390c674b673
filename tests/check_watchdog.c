// SPDX-License-Identifier: GPL-2.0-or-later
/* lb/watchdog.c: hung or starved, judged from run and run-queue wait times. */
#include <check.h>
#include <errno.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "lb/watchdog.h"
#include "tests/unit.h"

#define MS 1000000ull

static struct lb_watchdog_sample at(uint64_t ms, uint64_t run_ms, uint64_t wait_ms)
{
	return (struct lb_watchdog_sample){ .at_ms = ms, .run_ns = run_ms * MS, .wait_ns = wait_ms * MS };
}

START_TEST(test_judge)
{
	struct lb_watchdog_sample from = at(10000, 500, 200), to;

	/* Stopped or blocked: neither ran nor waited for a CPU. */
	to = at(10500, 500, 200);
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_HUNG);
	/* Waited for a CPU most of the time, ran a little: starved. */
	to = at(10500, 502, 690);
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_STARVED);
	/* Exactly half the time waiting is enough; just under is not. */
	to = at(10500, 500, 450);
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_STARVED);
	to = at(10500, 500, 449);
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_HUNG);
	/* Ran LB_WATCHDOG_SPIN_MS without a heartbeat: spinning, however long it also waited. */
	to = at(12000, 500 + LB_WATCHDOG_SPIN_MS, 2000);
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_HUNG);
	to = at(12000, 500 + LB_WATCHDOG_SPIN_MS - 1, 2000);
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_STARVED);
	/* Runnable at both looks, its wait not yet counted (the kernel adds it when it runs): starved. */
	from.runnable = to.runnable = true;
	to = at(10500, 500, 200);
	to.runnable = true;
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_STARVED);
	to.runnable = false;
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_HUNG);
	from.runnable = false;
	/* No first sample, no time between them, or counters that went back (another task): hung. */
	to = at(10500, 502, 690);
	ck_assert_int_eq(lb_watchdog_judge(&(struct lb_watchdog_sample){ 0 }, &to), LB_WATCHDOG_HUNG);
	ck_assert_int_eq(lb_watchdog_judge(&from, &from), LB_WATCHDOG_HUNG);
	to = at(10500, 400, 690);
	ck_assert_int_eq(lb_watchdog_judge(&from, &to), LB_WATCHDOG_HUNG);
}
END_TEST

/* Spin until this thread has run MS ms of CPU, not of wall time: on a VM the host
 * can take the CPU away (steal time), and a task then neither runs nor waits on
 * the guest's run queue, so wall time says nothing about either counter.  Gives
 * up after 30 s of wall time. */
static void spin_cpu_ms(unsigned int ms)
{
	struct timespec c0, c, w0, w;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	clock_gettime(CLOCK_MONOTONIC, &w0);
	do {
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
		clock_gettime(CLOCK_MONOTONIC, &w);
	} while ((c.tv_sec - c0.tv_sec) * 1000 + (c.tv_nsec - c0.tv_nsec) / 1000000 < ms &&
		 w.tv_sec - w0.tv_sec < 30);
}

/* The kernel's counters: this process's run time grows as it spins; a stopped child's does not. */
START_TEST(test_read)
{
	struct lb_watchdog_sample a, b;
	pid_t child;

	ck_assert_int_eq(lb_watchdog_read(getpid(), 1, &a), 0);
	ck_assert(a.runnable);		/* it is running: reading its own state */
	/* Running past LB_WATCHDOG_SPIN_MS: hung, though runnable throughout.  The
	 * 20 ms over it cover the counter's lag behind the running task (a tick). */
	spin_cpu_ms(LB_WATCHDOG_SPIN_MS + 20);
	ck_assert_int_eq(lb_watchdog_read(getpid(), 2 + LB_WATCHDOG_SPIN_MS, &b), 0);
	ck_assert_uint_eq(b.at_ms, 2 + LB_WATCHDOG_SPIN_MS);
	ck_assert(b.runnable);
	ck_assert_uint_ge(b.run_ns - a.run_ns, LB_WATCHDOG_SPIN_MS * MS);
	ck_assert_int_eq(lb_watchdog_judge(&a, &b), LB_WATCHDOG_HUNG);

	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		raise(SIGSTOP);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(child, NULL, WUNTRACED), child);
	/* The child reports its stop before it leaves the CPU, and the kernel
	 * adds its last stretch of run time (up to a tick) only as it leaves: a
	 * read in between (the host took the child's CPU, or valgrind's
	 * slowness) sees the counter move once. So first wait for two reads
	 * 10 ms apart to agree; a task that kept running never would. */
	ck_assert_int_eq(lb_watchdog_read(child, 1000, &a), 0);
	for (int i = 0; i < 200; i++) {
		usleep(10000);
		ck_assert_int_eq(lb_watchdog_read(child, 1000, &b), 0);
		if (b.run_ns == a.run_ns && b.wait_ns == a.wait_ns)
			break;
		a = b;
	}
	usleep(100000);
	ck_assert_int_eq(lb_watchdog_read(child, 1100, &b), 0);
	ck_assert_uint_eq(b.run_ns, a.run_ns);
	ck_assert_uint_eq(b.wait_ns, a.wait_ns);
	ck_assert(!a.runnable && !b.runnable);
	ck_assert_int_eq(lb_watchdog_judge(&a, &b), LB_WATCHDOG_HUNG);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);

	ck_assert_int_eq(lb_watchdog_read(-1, 1, &a), -ENOENT);
}
END_TEST

int main(void)
{
	return lb_test_main("watchdog", NULL, NULL, 0, LB_TESTS(test_judge, test_read));
}
