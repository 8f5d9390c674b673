// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * peer latency: a well-behaved client. Every -i MS (or as soon as the last
 * one ends, when it took longer) it opens a connection, sends one byte,
 * waits for it to come back (run it against an echo server) and resets the
 * connection: one request. A request not answered within -T MS fails.
 * Prints
 *   latency: N requests: K ok, F failed; ms p50 A p90 B p99 C max D
 * (connect to echo, of the requests that succeeded) and exits 0 when none
 * failed. With -o FILE it also appends each success's latency in ms to
 * FILE, one a line, so runs can be pooled.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Waits for events on fd until deadline (now_s() clock); 0, -ETIMEDOUT or -errno. */
static int wait_for(int fd, short events, double deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	double left;
	int rc;

	for (;;) {
		left = deadline - now_s();
		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)(left * 1000) + 1);
		if (rc > 0)
			return 0;
		if (rc == -1 && errno != EINTR)
			return -errno;
	}
}

/* One request; its latency in ms, or -errno with *what naming the step that failed. */
static double request(const struct addr *dst, const struct addr *src, double timeout,
		      const char **what)
{
	double t0 = now_s(), deadline = t0 + timeout;
	char byte = 'l';
	int fd, rc;

	rc = sock_connect(&fd, dst, src, what);
	if (rc == 0) {
		*what = "connect";
		if ((rc = wait_for(fd, POLLOUT, deadline)) == 0)
			rc = sock_connected(fd);
	}
	if (rc == 0) {
		*what = "send";
		rc = send(fd, &byte, 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
	}
	if (rc == 0) {
		*what = "echo";
		if ((rc = wait_for(fd, POLLIN, deadline)) == 0) {
			ssize_t n = read(fd, &byte, 1);

			rc = n == 1 ? 0 : n == 0 ? -EPIPE : -errno;
		}
	}
	if (fd >= 0)
		sock_close_rst(fd);
	return rc < 0 ? rc : (now_s() - t0) * 1000;
}

int cmd_latency(int argc, char **argv)
{
	struct sources src = { .max = 1 };
	struct addr dst;
	unsigned int n = 100, ok = 0, failed = 0, reported = 0;
	double interval = 0.01, timeout = 3, next, *ms;
	const char *out = NULL;
	FILE *f = NULL;
	const struct arg args[] = {
		{ 'b', ARG_SOURCE, .to = &src },
		{ 'n', ARG_COUNT, .to = &n, .limit = 10000000 },
		{ 'i', ARG_MS, .to = &interval, .limit = 60000 },
		{ 'T', ARG_MS, .to = &timeout, .limit = 600000 },
		{ 0 }
	};

	/* -o takes a path, which args_parse() has no kind for: take it out first. */
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "-o")) {
			out = argv[i + 1];
			memmove(&argv[i], &argv[i + 2], (argc - i - 1) * sizeof(*argv));
			argc -= 2;
			break;
		}
	args_parse(argc, argv, args, &dst);
	if (out && !(f = fopen(out, "a")))
		die("-o %s: %s", out, strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	ms = xcalloc(n, sizeof(*ms));
	next = now_s();
	for (unsigned int i = 0; i < n; i++) {
		const char *what = NULL;
		double now = now_s(), r;

		if (next > now) {
			struct timespec ts = { .tv_sec = (time_t)(next - now),
					       .tv_nsec = (long)((next - now - (time_t)(next - now)) * 1e9) };

			nanosleep(&ts, NULL);
		}
		next += interval;
		r = request(&dst, sources_pick(&src, i), timeout, &what);
		if (r >= 0) {
			ms[ok++] = r;
			if (f)
				fprintf(f, "%.3f\n", r);
			continue;
		}
		failed++;
		if (reported++ < MAX_REPORTS)
			fprintf(stderr, "%s: latency: request %u: %s: %s\n", prog, i, what,
				strerror((int)-r));
	}
	qsort(ms, ok, sizeof(*ms), cmp_double);
	printf("latency: %u requests: %u ok, %u failed; ms p50 %.3f p90 %.3f p99 %.3f max %.3f\n",
	       ok + failed, ok, failed, ok ? ms[ok / 2] : 0, ok ? ms[ok * 9 / 10] : 0,
	       ok ? ms[ok * 99 / 100] : 0, ok ? ms[ok - 1] : 0);
	if (f)
		fclose(f);
	free(ms);
	return failed || !ok ? 1 : 0;
}
