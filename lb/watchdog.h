/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_WATCHDOG_H
#define LB_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Tells a hung worker from a starved one. A worker's loop stamps a
 * heartbeat; one silent for watchdog_ms is either stuck (spinning on the
 * CPU, stopped, blocked in the kernel) and must be replaced, or runnable
 * but not given a CPU (a box carrying more than it can), where killing it
 * loses every connection it holds and gains nothing. The kernel tells,
 * per task, the time it ran and waited on a run queue (/proc/PID/schedstat;
 * the wait is added only once the task gets a CPU again) and whether it is
 * runnable now (/proc/PID/stat): the master looks halfway through a
 * silence and again at its end, and judges on what it saw.
 */
struct lb_watchdog_sample {
	uint64_t at_ms;			/* when taken; 0: none for this silence */
	uint64_t run_ns, wait_ns;	/* on a CPU, and runnable waiting for one */
	bool runnable;			/* state R: running or waiting for a CPU */
};

enum lb_watchdog_verdict {
	LB_WATCHDOG_HUNG,		/* stopped, blocked or spinning: replace it */
	LB_WATCHDOG_STARVED,		/* waited for a CPU most of the time: spare it */
};

/* A healthy loop stamps its heartbeat after far less CPU than this. */
#define LB_WATCHDOG_SPIN_MS 250

/* Reads PID's run and run-queue wait times and its state. Returns 0 or -errno. */
int lb_watchdog_read(pid_t pid, uint64_t now_ms, struct lb_watchdog_sample *s);

/*
 * Judges a silence from two samples of the same task, FROM taken earlier
 * in it and TO now: spinning when it ran LB_WATCHDOG_SPIN_MS or more
 * without a heartbeat; starved when it was runnable at both looks, or
 * waited for a CPU half the time between them or more; hung otherwise
 * (stopped, or blocked in the kernel).
 */
enum lb_watchdog_verdict lb_watchdog_judge(const struct lb_watchdog_sample *from,
					   const struct lb_watchdog_sample *to);

#endif
