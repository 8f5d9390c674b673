// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lbctl top: asks lb for its backends every interval and shows, per
 * backend, connections per second, active connections and bytes per second
 * in each direction, computed from the difference between two replies. On
 * a terminal it redraws in place, reads single keys (q quits) and puts the
 * terminal back as it found it however it ends: q, Ctrl-C, SIGTERM, lb
 * going away (die() calls exit(), which runs the restore). Elsewhere it
 * prints one frame after another, like top -b.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lb/lbctl.h"

#define MAX_BACKENDS 4096

struct sample {
	char key[160];			/* "service address" */
	long long total, bytes_in, bytes_out;
};

struct top {
	struct sample *prev;
	size_t n_prev;
	double prev_t;
	bool tty_out;
	unsigned int rows, cols;
	double interval_s;
};

static volatile sig_atomic_t stop_signal, resized;
static struct termios saved_tio;
static bool tio_saved, cursor_hidden;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static void on_winch(int sig)
{
	resized = 1;
}

/* Runs at exit, whatever the way out: cooked mode and a visible cursor again. */
static void restore(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tio_saved = false;
	if (cursor_hidden) {
		fputs("\033[?25h", stdout);
		fflush(stdout);
	}
	cursor_hidden = false;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void term_size(struct top *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		t->rows = ws.ws_row;
		t->cols = ws.ws_col;
	}
}

const char *lbctl_human(double v, char *buf, size_t len)
{
	static const char units[] = " KMGTP";
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

static long long num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *text(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "?";
}

static const struct sample *find_prev(const struct top *t, const char *key)
{
	for (size_t i = 0; i < t->n_prev; i++)
		if (!strcmp(t->prev[i].key, key))
			return &t->prev[i];
	return NULL;
}

/* One line; on a terminal cut at its width and cleared to its end. */
static void line(const struct top *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(const struct top *t, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (unsigned char *p = (unsigned char *)buf; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (t->tty_out) {
		if (strlen(buf) > t->cols)
			buf[t->cols] = '\0';
		printf("%s\033[K\n", buf);
	} else {
		printf("%s\n", buf);
	}
}

static void latency(json_t *h, char *buf, size_t len)
{
	json_t *p50 = json_object_get(h, "p50"), *p99 = json_object_get(h, "p99");

	if (!json_is_number(p50) || !json_is_number(p99))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2f/%.2f", json_number_value(p50), json_number_value(p99));
}

static void frame(struct top *t, json_t *backends)
{
	size_t n = json_array_size(backends), shown = 0, usable = 0, wa = 7;
	double now = now_s(), dt = t->prev ? now - t->prev_t : 0;
	double sum_rate = 0, sum_in = 0, sum_out = 0;
	struct sample *cur = calloc(n ? n : 1, sizeof(*cur));
	long long active = 0;
	char stamp[32], a[16], b[16], c[16];
	time_t wall = time(NULL);
	json_t *be;
	size_t i;

	if (!cur)
		die(EXIT_USAGE, "out of memory");
	json_array_foreach(backends, i, be) {
		const struct sample *p;

		snprintf(cur[i].key, sizeof(cur[i].key), "%s %s", text(be, "service"),
			 text(be, "address"));
		cur[i].total = num(be, "total");
		cur[i].bytes_in = num(be, "bytes_in");
		cur[i].bytes_out = num(be, "bytes_out");
		active += num(be, "active");
		usable += json_is_true(json_object_get(be, "usable"));
		if (strlen(text(be, "address")) > wa)
			wa = strlen(text(be, "address"));
		p = find_prev(t, cur[i].key);
		if (p && dt > 0) {
			sum_rate += (cur[i].total - p->total) / dt;
			sum_in += (cur[i].bytes_in - p->bytes_in) / dt;
			sum_out += (cur[i].bytes_out - p->bytes_out) / dt;
		}
	}
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", localtime(&wall));
	if (t->tty_out)
		fputs("\033[H", stdout);
	line(t, "lb top  %s  every %g s; q or Ctrl-C quits", stamp, t->interval_s);
	if (t->prev)
		line(t, "backends %zu (%zu usable)  active %lld  conn/s %.1f  in/s %sB  out/s %sB", n,
		     usable, active, sum_rate, lbctl_human(sum_in, a, sizeof(a)),
		     lbctl_human(sum_out, b, sizeof(b)));
	else
		line(t, "backends %zu (%zu usable)  active %lld  conn/s -  in/s -  out/s -", n, usable,
		     active);
	line(t, "%s", "");
	line(t, "%-12s %-*s %-8s %7s %8s %8s %8s %10s %7s  %s", "SERVICE", (int)wa, "BACKEND",
	     "STATE", "ACTIVE", "CONN/S", "IN/S", "OUT/S", "TOTAL", "FAILED", "CONNECT MS p50/p99");
	json_array_foreach(backends, i, be) {
		const struct sample *p = find_prev(t, cur[i].key);
		const char *admin = text(be, "admin");
		char rate[16], lat[32];

		/* Leave the last row for the cursor. */
		if (t->tty_out && shown + 5 >= t->rows)
			break;
		if (p && dt > 0) {
			snprintf(rate, sizeof(rate), "%.1f", (cur[i].total - p->total) / dt);
			lbctl_human((cur[i].bytes_in - p->bytes_in) / dt, a, sizeof(a));
			lbctl_human((cur[i].bytes_out - p->bytes_out) / dt, b, sizeof(b));
		} else {
			snprintf(rate, sizeof(rate), "-");
			snprintf(a, sizeof(a), "-");
			snprintf(b, sizeof(b), "-");
		}
		latency(json_object_get(be, "connect_ms"), lat, sizeof(lat));
		line(t, "%-12s %-*s %-8s %7lld %8s %8s %8s %10s %7lld  %s", text(be, "service"),
		     (int)wa, text(be, "address"), strcmp(admin, "up") ? admin : text(be, "health"),
		     num(be, "active"), rate, a, b, lbctl_human(cur[i].total, c, sizeof(c)),
		     num(be, "connect_failures"), lat);
		shown++;
	}
	if (shown < n)
		line(t, "... %zu more (a taller terminal shows them)", n - shown);
	if (t->tty_out)
		fputs("\033[J", stdout);
	else
		putchar('\n');
	fflush(stdout);
	free(t->prev);
	t->prev = cur;
	t->n_prev = n;
	t->prev_t = now;
}

static json_t *fetch(const struct ctx *c)
{
	char *reply = lbctl_transact(c, "{\"cmd\": \"backends\"}\n", c->timeout_s ? c->timeout_s : 5);
	json_error_t jerr;
	json_t *r = json_loads(reply, 0, &jerr), *d;

	free(reply);
	if (!r)
		die(EXIT_USAGE, "bad reply from lb: %s", jerr.text);
	if (!json_is_true(json_object_get(r, "ok")))
		die(EXIT_ERROR_REPLY, "backends: %s",
		    text(json_object_get(r, "error"), "message"));
	d = json_incref(json_object_get(r, "data"));
	json_decref(r);
	if (!json_is_array(d) || json_array_size(d) > MAX_BACKENDS)
		die(EXIT_USAGE, "bad reply from lb: no backends list");
	return d;
}

/* Waits up to ms for q (on a terminal) or a signal; returns true to stop. */
static bool wait_keys(int ms, bool keys)
{
	double end = now_s() + ms / 1000.0;

	while (!stop_signal) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		int left = (int)((end - now_s()) * 1000), r;
		char ch[16];

		if (left <= 0 || resized)
			return false;
		r = poll(&pfd, keys ? 1 : 0, left);
		if (r <= 0)
			continue;
		r = read(STDIN_FILENO, ch, sizeof(ch));
		if (r == 0)
			keys = false;	/* stdin closed: go on until a signal or the count */
		for (int i = 0; i < r; i++)
			if (ch[i] == 'q' || ch[i] == 'Q')
				return true;
	}
	return true;
}

int lbctl_top(const struct ctx *c, int argc, char **argv)
{
	struct top t = { .tty_out = isatty(STDOUT_FILENO) };
	bool keys = isatty(STDIN_FILENO);
	struct sigaction sa = { .sa_handler = on_stop };
	long count = 0, interval_ms = 1000;
	char *end;
	int opt;

	optind = 1;
	while ((opt = getopt(argc, argv, "+d:n:h")) != -1) {
		switch (opt) {
		case 'd':
			interval_ms = (long)(strtod(optarg, &end) * 1000);
			if (end == optarg || *end || interval_ms < 100 || interval_ms > 3600000)
				die(EXIT_USAGE, "top -d: '%s' is not a number of seconds 0.1..3600", optarg);
			break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || count < 1)
				die(EXIT_USAGE, "top -n: '%s' is not a positive count", optarg);
			break;
		case 'h':
			printf("Usage: lbctl [-s SOCKET] top [-d SECONDS] [-n COUNT]\n\n"
			       "A live view of the backends, redrawn every SECONDS (1): state, active\n"
			       "connections, new connections per second, bytes per second from clients\n"
			       "(IN/S) and to them (OUT/S), connections made, failed connects, and connect\n"
			       "time p50/p99 in ms since lb started. q or Ctrl-C quits; -n stops after\n"
			       "COUNT frames. Not on a terminal, frames follow one another.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		die(EXIT_USAGE, "top: unexpected argument '%s'", argv[optind]);
	t.interval_s = interval_ms / 1000.0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_winch;
	sigaction(SIGWINCH, &sa, NULL);
	atexit(restore);
	if (keys && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;

		/* Keys without Enter and without echo; ISIG stays, so Ctrl-C is SIGINT. */
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tio_saved = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	if (t.tty_out) {
		fputs("\033[?25l\033[H\033[2J", stdout);
		cursor_hidden = true;
	}
	for (long f = 0; !stop_signal; f++) {
		json_t *d = fetch(c);

		if (resized) {
			resized = 0;
			if (t.tty_out)
				fputs("\033[2J", stdout);
		}
		term_size(&t);
		frame(&t, d);
		json_decref(d);
		if ((count && f + 1 >= count) || wait_keys(interval_ms, keys))
			break;
	}
	free(t.prev);
	restore();
	return EXIT_OK;
}
