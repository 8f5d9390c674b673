// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lb/watchdog.h"

/* The state letter of /proc/PID/stat, after the command name (which may hold ")"). */
static int read_state(pid_t pid, char *state)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n == -1) {
		rc = -errno;
		goto cleanup;
	}
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2]) {
		rc = -EINVAL;
		goto cleanup;
	}
	*state = p[2];
cleanup:
	close(fd);
	return rc;
}

int lb_watchdog_read(pid_t pid, uint64_t now_ms, struct lb_watchdog_sample *s)
{
	char path[64], state = 0;
	uint64_t run, wait;
	FILE *f;
	int n, rc;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fscanf(f, "%" SCNu64 " %" SCNu64, &run, &wait);
	fclose(f);
	if (n != 2)
		return -EINVAL;
	rc = read_state(pid, &state);
	if (rc < 0)
		return rc;
	*s = (struct lb_watchdog_sample){
		.at_ms = now_ms, .run_ns = run, .wait_ns = wait, .runnable = state == 'R',
	};
	return 0;
}

enum lb_watchdog_verdict lb_watchdog_judge(const struct lb_watchdog_sample *from,
					   const struct lb_watchdog_sample *to)
{
	uint64_t span_ns, ran, waited;

	if (!from->at_ms || to->at_ms <= from->at_ms || to->run_ns < from->run_ns ||
	    to->wait_ns < from->wait_ns)
		return LB_WATCHDOG_HUNG;
	span_ns = (to->at_ms - from->at_ms) * 1000000;
	ran = to->run_ns - from->run_ns;
	waited = to->wait_ns - from->wait_ns;
	if (ran >= (uint64_t)LB_WATCHDOG_SPIN_MS * 1000000)
		return LB_WATCHDOG_HUNG;
	if (from->runnable && to->runnable)
		return LB_WATCHDOG_STARVED;
	return waited * 2 >= span_ns ? LB_WATCHDOG_STARVED : LB_WATCHDOG_HUNG;
}
