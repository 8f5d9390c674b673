// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lbctl: the command-line client of lb's control socket. A table of
 * subcommands, each building one request and printing its reply; the
 * protocol is in docs/control.md.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef LB_VERSION
#define LB_VERSION "unknown"
#endif
#ifndef LB_RUNSTATEDIR
#define LB_RUNSTATEDIR "/run"
#endif

#include "lb/lbctl.h"

#define DEFAULT_SOCKET "/run/lb/lb.sock"
#define REPLY_MAX (256u << 20)

struct subcommand {
	const char *name;
	const char *args;		/* synopsis of its arguments */
	int min_args, max_args;
	int timeout_s;
	const char *summary;
	const char *help;		/* what -h adds, man-page style */
	json_t *(*request)(char **argv);
	void (*print)(json_t *data, char **argv);
};

void die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("lbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* ---- talking to lb ---- */

static int remaining_ms(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000LL + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

char *lbctl_transact(const struct ctx *c, const char *line, int timeout_s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_s };
	struct timespec deadline;
	size_t len = strlen(line), off = 0, cap = 65536, n = 0;
	char *buf;
	int fd;

	if (strlen(c->socket) >= sizeof(sun.sun_path))
		die(EXIT_USAGE, "%s: socket path too long", c->socket);
	memcpy(sun.sun_path, c->socket, strlen(c->socket) + 1);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die(EXIT_USAGE, "socket: %s", strerror(errno));
	/* Bounds connect() too when lb's accept queue is full. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die(EXIT_USAGE, "cannot connect to %s: %s%s", c->socket, strerror(errno),
		    errno == ENOENT || errno == ECONNREFUSED ?
		    " (is lb running? use -s or LB_SOCKET to name its socket)" :
		    errno == EACCES ? " (lbctl needs the socket's owner or group)" : "");
	while (off < len) {
		ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			die(EXIT_USAGE, "%s: sending the request: %s", c->socket,
			    errno == EAGAIN ? "timed out" : strerror(errno));
		off += w;
	}
	buf = malloc(cap);
	if (!buf)
		die(EXIT_USAGE, "out of memory");
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t r;
		int p = poll(&pfd, 1, remaining_ms(&deadline));

		if (p == -1 && errno == EINTR)
			continue;
		if (p == 0)
			die(EXIT_USAGE, "%s: no reply within %d s", c->socket, timeout_s);
		if (n + 4096 > cap) {
			if (cap >= REPLY_MAX)
				die(EXIT_USAGE, "%s: reply longer than %u bytes", c->socket, REPLY_MAX);
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die(EXIT_USAGE, "out of memory");
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			die(EXIT_USAGE, "%s: reading the reply: %s", c->socket, strerror(errno));
		if (r == 0)
			die(EXIT_USAGE, "%s: connection closed before the reply", c->socket);
		nl = memchr(buf + n, '\n', r);
		n += r;
		if (nl) {
			*nl = '\0';
			break;
		}
	}
	close(fd);
	return buf;
}

/* ---- printing ---- */

/* Text from lb may come from a backend (check messages): no control characters on a tty. */
static char *clean(const char *s)
{
	char *out = strdup(s ? s : "");

	if (!out)
		die(EXIT_USAGE, "out of memory");
	for (unsigned char *p = (unsigned char *)out; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

struct table {
	size_t ncols, ncells, cap;
	const char *const *head;	/* a leading '>' right-aligns the column */
	char **cells;
};

static void cell(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cell(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die(EXIT_USAGE, "out of memory");
	va_end(ap);
	if (t->ncells == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->cells = realloc(t->cells, t->cap * sizeof(*t->cells));
		if (!t->cells)
			die(EXIT_USAGE, "out of memory");
	}
	t->cells[t->ncells++] = clean(s);
	free(s);
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void table_print(struct table *t)
{
	size_t *w = calloc(t->ncols, sizeof(*w));

	if (!w)
		die(EXIT_USAGE, "out of memory");
	for (size_t c = 0; c < t->ncols; c++)
		w[c] = width(t->head[c] + (t->head[c][0] == '>'));
	for (size_t i = 0; i < t->ncells; i++)
		if (width(t->cells[i]) > w[i % t->ncols])
			w[i % t->ncols] = width(t->cells[i]);
	for (size_t i = 0; i < t->ncells + t->ncols; i++) {
		size_t c = i % t->ncols;
		const char *h = t->head[c], *s = i < t->ncols ? h + (h[0] == '>') :
						 t->cells[i - t->ncols];
		int pad = (int)(w[c] - width(s));
		bool last = c == t->ncols - 1;

		if (h[0] == '>')
			printf("%*s%s", pad, "", s);
		else
			printf("%s%*s", s, last ? 0 : pad, "");
		fputs(last ? "\n" : "  ", stdout);
	}
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static long long num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void duration(char *buf, size_t len, long long s)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, len, "%lldd%02lldh%02lldm", s / 86400, s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm%02llds", s / 3600, s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
}

static void timestamp(char *buf, size_t len, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "%lld", t);
}

/* ---- subcommands ---- */

static json_t *req_plain(const char *cmd)
{
	return json_pack("{s:s}", "cmd", cmd);
}

static json_t *req_status(char **argv) { return req_plain("status"); }
static json_t *req_services(char **argv) { return req_plain("services"); }
static json_t *req_stats(char **argv) { return req_plain("stats"); }
static json_t *req_reload(char **argv) { return req_plain("reload"); }
static json_t *req_metrics(char **argv) { return req_plain("metrics"); }
static json_t *req_version(char **argv) { return req_plain("version"); }
static json_t *req_limits(char **argv) { return req_plain("limits"); }

static json_t *req_resume_gateway(char **argv) { return req_plain("resume-gateway"); }

/* drain-gateway [--stop] [SECONDS], in either order. */
static json_t *req_drain_gateway(char **argv)
{
	json_t *req = req_plain("drain-gateway");
	bool stop = false, timeout = false;

	for (; *argv; argv++) {
		char *end;
		long s;

		if (!strcmp(*argv, "--stop") && !stop) {
			stop = true;
			json_object_set_new(req, "stop", json_true());
			continue;
		}
		errno = 0;
		s = strtol(*argv, &end, 10);
		if (timeout || errno || end == *argv || *end || s < 1 || s > 86400)
			die(EXIT_USAGE, "drain-gateway: '%s' is neither --stop nor a number of "
			    "seconds 1..86400", *argv);
		timeout = true;
		json_object_set_new(req, "timeout_ms", json_integer((json_int_t)s * 1000));
	}
	return req;
}

static json_t *req_backends(char **argv)
{
	return argv[0] ? json_pack("{s:s, s:s}", "cmd", "backends", "service", argv[0])
		       : req_plain("backends");
}

static json_t *req_clients(char **argv)
{
	return argv[0] ? json_pack("{s:s, s:s}", "cmd", "clients", "service", argv[0])
		       : req_plain("clients");
}

static json_t *req_state(const char *state, char **argv)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "cmd", "set-state", "service", argv[0],
			 "backend", argv[1], "state", state);
}

static json_t *req_drain(char **argv) { return req_state("drain", argv); }
static json_t *req_enable(char **argv) { return req_state("up", argv); }
static json_t *req_disable(char **argv) { return req_state("disabled", argv); }

static json_t *req_weight(char **argv)
{
	char *end;
	long w;

	errno = 0;
	w = strtol(argv[2], &end, 10);
	if (errno || end == argv[2] || *end || w < 0 || w > 1000)
		die(EXIT_USAGE, "weight: '%s' is not an integer 0..1000", argv[2]);
	return json_pack("{s:s, s:s, s:s, s:i}", "cmd", "set-weight", "service", argv[0],
			 "backend", argv[1], "weight", (int)w);
}

/* "rules:" line(s) of status: in place or not, and what the watch restored. */
static void print_rules(json_t *rules)
{
	json_t *missing = json_object_get(rules, "missing");
	json_t *last = json_object_get(rules, "last_restore");
	const char *state = str(rules, "state");
	char when[64];

	if (!json_is_object(rules))
		return;
	if (json_is_object(missing)) {
		char *what = clean(str(missing, "what"));

		timestamp(when, sizeof(when), num(missing, "since"));
		printf("rules:       MISSING since %s: %s\n", when, what);
		free(what);
	} else {
		printf("rules:       %s\n", strcmp(state, "unwatched") ? state
			: "not watched (lb would not notice if they were removed)");
	}
	if (json_is_object(last)) {
		char *what = clean(str(last, "what"));

		timestamp(when, sizeof(when), num(last, "time"));
		printf("             restored %lld time%s, last %s by %s after %lld ms: %s\n",
		       num(rules, "restores"), num(rules, "restores") == 1 ? "" : "s", when,
		       str(last, "by"), num(last, "after_ms"), what);
		free(what);
	}
	if (json_is_string(json_object_get(rules, "last_error"))) {
		char *err = clean(str(rules, "last_error"));

		printf("             %lld failed restores, last: %s\n", num(rules, "failures"), err);
		free(err);
	}
}

/*
 * "ownership:" lines of status: the bucket table's owners and previous
 * owners per peer, and what the kernel forwarded.
 */
static void print_ownership(json_t *o)
{
	json_t *fwd = json_object_get(o, "forwarded"), *p;
	size_t i;

	if (!json_is_object(o))
		return;
	printf("ownership:   %lld buckets%s; forwarded to owner %lld, second chance %lld, "
	       "dropped %lld\n", num(o, "buckets"),
	       json_is_true(json_object_get(o, "settled")) ? "" : ", not settled (hearing the tier)",
	       num(fwd, "to_owner"), num(fwd, "second_chance"), num(fwd, "dropped"));
	json_array_foreach(json_object_get(o, "peers"), i, p) {
		json_t *heard = json_object_get(p, "heard_ms_ago");
		char ago[32] = "";

		if (json_is_integer(heard))
			snprintf(ago, sizeof(ago), ", heard %lld ms ago", (long long)json_integer_value(heard));
		printf("  peer %-8s %-15s %-9s owns %5lld, previous of %5lld, %lld connections%s%s\n",
		       str(p, "name"), str(p, "address"), str(p, "state"), num(p, "owned"),
		       num(p, "previous"), num(p, "connections"),
		       json_is_true(json_object_get(p, "self")) ? " (self)" : ago,
		       json_is_true(json_object_get(p, "other_config")) ? ", OTHER CONFIG" : "");
	}
	if (json_is_string(json_object_get(o, "last_error")))
		printf("             %lld failed map changes, last: %s\n",
		       num(o, "install_failures"), str(o, "last_error"));
}

/* "gateway:" line(s) of status: serving or drained, and the VIPs not announced. */
static void print_gateway(json_t *gw)
{
	json_t *drain = json_object_get(gw, "drain"), *ann = json_object_get(gw, "announce"), *v;
	char when[64], until[64];
	size_t i, shown = 0, withdrawn = 0;

	if (!json_is_object(gw))
		return;
	if (json_is_object(drain)) {
		timestamp(when, sizeof(when), num(drain, "since"));
		if (json_is_integer(json_object_get(drain, "ended"))) {
			timestamp(until, sizeof(until), num(drain, "ended"));
			printf("gateway:     drained since %s (withdrawn %s)%s\n", until, when,
			       json_is_true(json_object_get(drain, "timed_out"))
			       ? ": the timeout passed with connections open" : "");
		} else {
			timestamp(until, sizeof(until), num(drain, "deadline"));
			printf("gateway:     draining since %s: %lld connections open; ends by %s%s\n",
			       when, num(drain, "connections"), until,
			       json_is_true(json_object_get(drain, "stop")) ? ", then lb stops" : "");
		}
	} else {
		printf("gateway:     %s\n", str(gw, "state"));
	}
	if (!json_is_object(ann))
		return;
	printf("announce:    %lld of %lld VIPs, table %lld protocol %lld device %s\n",
	       num(ann, "routes"), num(ann, "vip_count"), num(ann, "table"), num(ann, "protocol"),
	       str(ann, "device"));
	json_array_foreach(json_object_get(ann, "vips"), i, v) {
		if (json_is_true(json_object_get(v, "announced")))
			continue;
		if (withdrawn++ >= 10)
			continue;
		shown++;
		printf("             %s not announced: %s\n", str(v, "address"), str(v, "why"));
	}
	if (withdrawn > shown)
		printf("             and %zu more not announced (lbctl -j status lists them)\n",
		       withdrawn - shown);
	if (json_is_string(json_object_get(ann, "last_error"))) {
		char *err = clean(str(ann, "last_error"));

		printf("             %lld failed route changes, last: %s\n", num(ann, "failures"), err);
		free(err);
	}
}

static void print_gateway_change(json_t *d, char **argv)
{
	char *msg = clean(str(d, "message"));

	printf("gateway %s: %s\n", str(d, "state"), msg);
	free(msg);
}

static void print_status(json_t *d, char **argv)
{
	static const char *const head[] = { ">ID", ">PID", ">GEN", "STATE", ">ACTIVE",
					    ">ACCEPTED", ">RESTARTS", ">HEARTBEAT", ">RSS" };
	struct table t = { .ncols = 9, .head = head };
	json_t *reload = json_object_get(d, "last_reload"), *w;
	json_t *mem = json_object_get(d, "memory"), *master = json_object_get(mem, "master");
	char up[32], when[64], a[16], b[16], c[16];
	size_t i;

	duration(up, sizeof(up), num(d, "uptime_s"));
	printf("pid:         %lld\n", num(d, "pid"));
	printf("version:     %s\n", str(d, "version"));
	printf("uptime:      %s\n", up);
	printf("config:      %s (generation %lld)\n", str(d, "config"), num(d, "generation"));
	if (json_is_object(reload)) {
		char *msg = clean(str(reload, "message"));

		timestamp(when, sizeof(when), num(reload, "time"));
		printf("last reload: %s, %s: %s\n", when,
		       json_is_true(json_object_get(reload, "ok")) ? "ok" : "FAILED", msg);
		free(msg);
	} else {
		printf("last reload: none\n");
	}
	print_rules(json_object_get(d, "rules"));
	print_gateway(json_object_get(d, "gateway"));
	print_ownership(json_object_get(d, "ownership"));
	if (json_is_object(mem))
		printf("memory:      shm %sB (pool %sB), master rss %sB\n",
		       lbctl_human((double)num(mem, "shm_bytes"), a, sizeof(a)),
		       lbctl_human((double)num(mem, "shm_pool_bytes"), b, sizeof(b)),
		       lbctl_human((double)num(master, "rss_bytes"), c, sizeof(c)));
	json_array_foreach(json_object_get(d, "workers"), i, w) {
		cell(&t, "%lld", num(w, "id"));
		cell(&t, "%lld", num(w, "pid"));
		cell(&t, "%lld", num(w, "generation"));
		cell(&t, "%s", str(w, "state"));
		cell(&t, "%lld", num(w, "active"));
		cell(&t, "%lld", num(w, "accepted"));
		cell(&t, "%lld", num(w, "restarts"));
		if (json_is_integer(json_object_get(w, "heartbeat_age_ms")))
			cell(&t, "%lldms", num(w, "heartbeat_age_ms"));
		else
			cell(&t, "-");
		cell(&t, "%sB", lbctl_human((double)num(w, "rss_bytes"), a, sizeof(a)));
	}
	printf("\n");
	table_print(&t);
}

static void print_services(json_t *d, char **argv)
{
	static const char *const head[] = { "SERVICE", "PROTO", "SCHEDULER", ">BACKENDS",
					    ">ACTIVE", ">TOTAL", ">NO_BACKEND", ">QUEUED",
					    ">UDP_FLOWS", ">UDP_DROPPED", ">QUIC_CID/LEARNED/FALLBACK/DROP",
					    "VIPS" };
	struct table t = { .ncols = 12, .head = head };
	json_t *s, *v;
	size_t i, k;

	json_array_foreach(d, i, s) {
		char vips[1024] = "";
		size_t o = 0;

		json_array_foreach(json_object_get(s, "vips"), k, v)
			if (o < sizeof(vips))
				o += snprintf(vips + o, sizeof(vips) - o, "%s%s", k ? " " : "",
					      json_string_value(v) ? json_string_value(v) : "?");
		json_t *udp = json_object_get(s, "udp"), *drops = json_object_get(udp, "dropped");
		json_t *quic = json_object_get(udp, "quic");

		cell(&t, "%s", str(s, "name"));
		cell(&t, "%s", str(s, "protocol"));
		cell(&t, "%s", str(s, "scheduler"));
		cell(&t, "%lld/%lld", num(s, "usable"), num(s, "backends"));
		cell(&t, "%lld", num(s, "active"));
		cell(&t, "%lld", num(s, "total"));
		cell(&t, "%lld", num(s, "no_backend"));
		cell(&t, "%lld", num(s, "queued"));
		if (json_is_object(udp)) {
			cell(&t, "%lld/%lld", num(udp, "flows"), num(udp, "flows_total"));
			cell(&t, "%lld", num(drops, "no_backend") + num(drops, "flows_full") +
			     num(drops, "send_error"));
		} else {
			cell(&t, "-");
			cell(&t, "-");
		}
		if (json_is_object(quic))
			cell(&t, "%lld/%lld/%lld/%lld", num(quic, "routed_cid"),
			     num(quic, "routed_learned_cid"), num(quic, "fallback"), num(quic, "dropped"));
		else
			cell(&t, "-");
		cell(&t, "%s", vips);
	}
	table_print(&t);
}

static void print_backends(json_t *d, char **argv)
{
	static const char *const head[] = { "SERVICE", "BACKEND", "ADMIN", "HEALTH", ">WEIGHT",
					    ">MAX", ">ACTIVE", ">TOTAL", ">BYTES_IN", ">BYTES_OUT",
					    ">FAILS", "LAST_CHECK" };
	struct table t = { .ncols = 12, .head = head };
	time_t now = time(NULL);
	json_t *b;
	size_t i;

	json_array_foreach(d, i, b) {
		json_t *lc = json_object_get(b, "last_check");
		long long weight = num(b, "weight"), conf = num(b, "config_weight");

		cell(&t, "%s", str(b, "service"));
		cell(&t, "%s", str(b, "address"));
		cell(&t, "%s", str(b, "admin"));
		cell(&t, "%s", str(b, "health"));
		/* A runtime weight shows the config's beside it: it lasts until a reload. */
		if (weight != conf)
			cell(&t, "%lld (%lld)", weight, conf);
		else
			cell(&t, "%lld", weight);
		if (num(b, "max_conns"))
			cell(&t, "%lld", num(b, "max_conns"));
		else
			cell(&t, "-");
		cell(&t, "%lld", num(b, "active"));
		cell(&t, "%lld", num(b, "total"));
		cell(&t, "%lld", num(b, "bytes_in"));
		cell(&t, "%lld", num(b, "bytes_out"));
		cell(&t, "%lld", num(b, "connect_failures"));
		if (json_is_object(lc)) {
			char ago[32];

			duration(ago, sizeof(ago), now - num(lc, "time"));
			cell(&t, "%s %s ago: %s", json_is_true(json_object_get(lc, "ok")) ? "ok" :
			     "failed", ago, str(lc, "message"));
		} else {
			cell(&t, "-");
		}
	}
	table_print(&t);
}

static void stats_row(struct table *t, const char *name, json_t *s)
{
	cell(t, "%s", name);
	cell(t, "%lld", num(s, "active"));
	cell(t, "%lld", num(s, "total"));
	cell(t, "%lld", num(s, "bytes_in"));
	cell(t, "%lld", num(s, "bytes_out"));
	cell(t, "%lld", num(s, "connect_failures"));
	cell(t, "%lld", num(s, "no_backend"));
	cell(t, "%lld", num(s, "queued"));
	cell(t, "%lld", num(s, "queue_timeouts"));
}

static void print_stats(json_t *d, char **argv)
{
	static const char *const head[] = { "SERVICE", ">ACTIVE", ">TOTAL", ">BYTES_IN",
					    ">BYTES_OUT", ">FAILS", ">NO_BACKEND", ">QUEUED",
					    ">QUEUE_TIMEOUTS" };
	struct table t = { .ncols = 9, .head = head };
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(d, "services"), i, s)
		stats_row(&t, str(s, "name"), s);
	stats_row(&t, "(total)", json_object_get(d, "totals"));
	table_print(&t);
	printf("\naccepted by workers: %lld\n", num(json_object_get(d, "totals"), "accepted"));
}

/* What each service's clients rules refused, then its top clients by open connections. */
static void print_clients(json_t *d, char **argv)
{
	static const char *const head[] = { "SERVICE", "ALLOW", "DENY", ">RATE", ">MAX_CONNS",
					    ">REFUSED_DENY", ">REFUSED_RATE",
					    ">REFUSED_MAX_CONNS" };
	static const char *const top_head[] = { "SERVICE", "CLIENT", ">CONNECTIONS" };
	struct table t = { .ncols = 8, .head = head }, tt = { .ncols = 3, .head = top_head };
	json_t *s, *c;
	size_t i, k;

	json_array_foreach(d, i, s) {
		json_t *refused = json_object_get(s, "refused");

		cell(&t, "%s", str(s, "name"));
		cell(&t, "%s", json_is_true(json_object_get(s, "allow")) ? "list" : "all");
		cell(&t, "%s", json_is_true(json_object_get(s, "deny")) ? "list" : "-");
		if (num(s, "rate"))
			cell(&t, "%lld/s", num(s, "rate"));
		else
			cell(&t, "-");
		if (num(s, "max_conns"))
			cell(&t, "%lld", num(s, "max_conns"));
		else
			cell(&t, "-");
		cell(&t, "%lld", num(refused, "deny"));
		cell(&t, "%lld", num(refused, "rate"));
		cell(&t, "%lld", num(refused, "max_conns"));
		json_array_foreach(json_object_get(s, "top"), k, c) {
			cell(&tt, "%s", str(s, "name"));
			cell(&tt, "%s", str(c, "client"));
			cell(&tt, "%lld", num(c, "connections"));
		}
	}
	table_print(&t);
	printf("\n");
	table_print(&tt);
}

static void print_state(json_t *d, char **argv)
{
	if (json_is_true(json_object_get(d, "changed")))
		printf("%s %s: %s -> %s\n", str(d, "service"), str(d, "backend"),
		       str(d, "previous"), str(d, "state"));
	else
		printf("%s %s: already %s\n", str(d, "service"), str(d, "backend"), str(d, "state"));
}

static void print_weight(json_t *d, char **argv)
{
	if (json_is_true(json_object_get(d, "changed")))
		printf("%s %s: weight %lld -> %lld\n", str(d, "service"), str(d, "backend"),
		       num(d, "previous"), num(d, "weight"));
	else
		printf("%s %s: weight already %lld\n", str(d, "service"), str(d, "backend"),
		       num(d, "weight"));
}

static void print_reload(json_t *d, char **argv)
{
	char *msg = clean(str(d, "message"));

	if (*msg)
		printf("reloaded: %s\n", msg);
	else
		printf("reloaded: generation %lld\n", num(d, "generation"));
	free(msg);
}

static void print_metrics(json_t *d, char **argv)
{
	if (json_is_string(d))
		fwrite(json_string_value(d), 1, json_string_length(d), stdout);
}

static void print_limits(json_t *d, char **argv)
{
	fputs(str(d, "report"), stdout);
}

static void print_version(json_t *d, char **argv)
{
	printf("lbctl %s\nlb %s (control protocol %lld)\n", LB_VERSION, str(d, "version"),
	       num(d, "protocol"));
}

static const struct subcommand commands[] = {
	{ "status", "", 0, 0, 10, "show lb's process, config and workers",
	  "Prints lb's pid, version, uptime, config file and generation, the result of the\n"
	  "last reload, and one line per worker process (workers of an older generation\n"
	  "still draining their connections after a reload are listed too).\n",
	  req_status, print_status },
	{ "services", "", 0, 0, 10, "list the services and their totals",
	  "One line per service: scheduler, usable/configured backends, connections open\n"
	  "and made, clients turned away for want of a usable backend, clients queued,\n"
	  "and the VIPs.\n",
	  req_services, print_services },
	{ "backends", "[SERVICE]", 0, 1, 10, "list the backends, of all services or of SERVICE",
	  "One line per backend: administrative state (up, drain, disabled), health\n"
	  "(up, down), weight (a runtime weight shows the config's in parentheses),\n"
	  "connection limit, connections open and made, bytes from clients (BYTES_IN) and\n"
	  "to them (BYTES_OUT), failed connects, and the last health check.\n",
	  req_backends, print_backends },
	{ "stats", "", 0, 0, 10, "show counters per service and in total", NULL,
	  req_stats, print_stats },
	{ "clients", "[SERVICE]", 0, 1, 10, "show clients refused and the top clients",
	  "Per service: its allow and deny lists, rate limit and max_conns per client,\n"
	  "and what they refused: packets the lists (REFUSED_DENY) and the rate\n"
	  "(REFUSED_RATE) dropped or rejected in the kernel, connections reset for\n"
	  "max_conns. Then the clients holding the most connections open now, up to 10\n"
	  "a service.\n",
	  req_clients, print_clients },
	{ "drain", "SERVICE BACKEND", 2, 2, 10, "stop new connections to a backend",
	  "Sets the backend's state to drain: it takes no new connections, and the ones\n"
	  "it has go on until they end. BACKEND is its address as in the config, like\n"
	  "198.18.2.2:80 or [2001:db8:2::2]:80. The change lasts until the next reload\n"
	  "or restart, which take the state from the config (up) again.\n",
	  req_drain, print_state },
	{ "enable", "SERVICE BACKEND", 2, 2, 10, "let a drained or disabled backend take connections",
	  "Sets the backend's state to up. It takes connections once its health is up\n"
	  "and its weight is above 0.\n",
	  req_enable, print_state },
	{ "disable", "SERVICE BACKEND", 2, 2, 10, "take a backend out",
	  "Sets the backend's state to disabled: it takes no new connections. Like drain,\n"
	  "it does not close the connections it has; it tells operators and monitoring\n"
	  "that the backend is out on purpose, not on its way out.\n",
	  req_disable, print_state },
	{ "weight", "SERVICE BACKEND N", 3, 3, 10, "set a backend's weight, 0..1000",
	  "Sets the backend's weight for every worker at once; 0 takes no new\n"
	  "connections. Lasts until the next reload or restart, which take the weight\n"
	  "from the config again.\n",
	  req_weight, print_weight },
	{ "reload", "", 0, 0, 60, "reload the configuration file",
	  "Asks lb to read its configuration file again and waits (60 s by default) for\n"
	  "the result. A failed reload leaves the running configuration in force.\n",
	  req_reload, print_reload },
	{ "drain-gateway", "[--stop] [SECONDS]", 0, 2, 10,
	  "withdraw this gateway's announcements and let its connections finish",
	  "Withdraws every VIP route lb announces (see \"announce\" in lb.json(5)), so the\n"
	  "routers send new connections to the other gateways, and keeps serving: it\n"
	  "goes on accepting what still arrives, and established connections go on.\n"
	  "The drain ends when no connection is left (but no sooner than\n"
	  "announce.settle_ms after the withdrawal) or after SECONDS (default: the\n"
	  "config's drain_timeout_ms). With --stop, lb then stops; without, it stays\n"
	  "drained, still serving what is left, until resume-gateway or a stop. lbctl\n"
	  "status shows the drain. A rolling upgrade of a tier drains one gateway\n"
	  "with --stop, upgrades and starts it, then goes on to the next.\n",
	  req_drain_gateway, print_gateway_change },
	{ "resume-gateway", "", 0, 0, 10, "end a gateway drain: announce the VIPs again",
	  "Announces again every VIP lb can serve and cancels a pending stop.\n",
	  req_resume_gateway, print_gateway_change },
	{ "metrics", "", 0, 0, 10, "print metrics in the Prometheus text format",
	  "Prints what a Prometheus scrape would get; see docs/control.md for the names.\n",
	  req_metrics, print_metrics },
	{ "limits", "", 0, 0, 10, "show connection capacity and the limits that bound it",
	  "Per worker, the open-file limit and the connections it allows; the total over\n"
	  "workers; fs.file-max, fs.nr_open, net.core.somaxconn, tcp_max_syn_backlog and\n"
	  "tcp_mem; for each service, where a proxy connecting from one address of its\n"
	  "own would stop (ports per backend ip:port) and that lb does not; which limit\n"
	  "binds first; and warnings where a limit is below what the config needs.\n",
	  req_limits, print_limits },
	{ "version", "", 0, 0, 10, "show the versions of lbctl and of the running lb", NULL,
	  req_version, print_version },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: lbctl [-s SOCKET] [-t SECONDS] [-j] COMMAND [ARGUMENTS]\n"
		"       lbctl COMMAND -h\n"
		"\n"
		"Controls a running lb through its control socket: shows services, backends,\n"
		"counters and metrics, drains, disables and re-weights backends, and reloads\n"
		"the configuration.\n"
		"\n"
		"Options:\n"
		"  -s, --socket SOCKET   lb's control socket (default: $LB_SOCKET, else %s)\n"
		"  -t, --timeout SECONDS how long to wait for the reply (default 10, reload 60)\n"
		"  -j, --json            print the reply as lb sent it: one JSON object\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show lbctl's version\n"
		"\n"
		"Commands:\n", DEFAULT_SOCKET);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
		fprintf(out, "  %-27s %s\n", left, commands[i].summary);
	}
	fprintf(out, "  %-27s %s\n", "top [-d SECONDS] [-n COUNT]",
		"live view of backends: rates, active, bytes/s (q quits)");
	fprintf(out,
		"\n"
		"Changes made with drain, enable, disable and weight apply to every worker at\n"
		"once and last until lb reloads or restarts.\n"
		"\n"
		"Environment:\n"
		"  LB_SOCKET  the control socket when -s is not given\n"
		"\n"
		"Examples:\n"
		"  lbctl backends web\n"
		"  lbctl drain web 198.18.2.2:80\n"
		"  lbctl weight web '[2001:db8:2::2]:80' 50\n"
		"  lbctl -j stats | jq .data.totals\n"
		"\n"
		"Exit status: 0 success; 1 lb answered with an error; 2 bad usage, or lb could\n"
		"not be reached or did not answer in time. Errors go to standard error as one\n"
		"line, \"lbctl: CODE: MESSAGE\" for errors lb reports.\n");
}

static void command_usage(FILE *out, const struct subcommand *c)
{
	fprintf(out, "Usage: lbctl [-s SOCKET] [-t SECONDS] [-j] %s%s%s\n\n%c%s.\n", c->name,
		c->args[0] ? " " : "", c->args, toupper((unsigned char)c->summary[0]),
		c->summary + 1);
	if (c->help)
		fprintf(out, "\n%s", c->help);
	fprintf(out, "\nWith -j, prints lb's reply as one JSON object instead "
		"(docs/control.md).\n");
}

static int run(const struct ctx *c, const struct subcommand *cmd, char **argv)
{
	json_t *req = cmd->request(argv), *reply, *err;
	char *line, *text;
	json_error_t jerr;

	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line)
		die(EXIT_USAGE, "out of memory");
	text = malloc(strlen(line) + 2);
	if (!text)
		die(EXIT_USAGE, "out of memory");
	sprintf(text, "%s\n", line);
	free(line);
	line = lbctl_transact(c, text, c->timeout_s ? c->timeout_s : cmd->timeout_s);
	free(text);
	reply = json_loads(line, 0, &jerr);
	if (!json_is_object(reply) || !json_is_boolean(json_object_get(reply, "ok")))
		die(EXIT_USAGE, "%s: invalid reply: %s", c->socket, reply ? "not a reply object" :
		    jerr.text);
	if (c->json)
		printf("%s\n", line);
	free(line);
	if (json_is_false(json_object_get(reply, "ok"))) {
		char *code, *msg;

		err = json_object_get(reply, "error");
		if (c->json) {
			json_decref(reply);
			return EXIT_ERROR_REPLY;
		}
		code = clean(str(err, "code"));
		msg = clean(str(err, "message"));
		fprintf(stderr, "lbctl: %s: %s\n", code, msg);
		free(code);
		free(msg);
		json_decref(reply);
		return EXIT_ERROR_REPLY;
	}
	if (!c->json)
		cmd->print(json_object_get(reply, "data"), argv);
	json_decref(reply);
	if (fflush(stdout) == EOF)
		die(EXIT_USAGE, "writing the output: %s", strerror(errno));
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctx c = { .socket = getenv("LB_SOCKET") };
	const struct subcommand *cmd = NULL;
	int opt, nargs;
	char *end;
	long t;

	if (!c.socket || !*c.socket)
		c.socket = DEFAULT_SOCKET;
	/* "+": options end at the command, so "lbctl backends -h" reaches the command. */
	while ((opt = getopt_long(argc, argv, "+s:t:jhV", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			c.socket = optarg;
			break;
		case 't':
			errno = 0;
			t = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || t < 1 || t > 3600)
				die(EXIT_USAGE, "--timeout: '%s' is not a number of seconds 1..3600",
				    optarg);
			c.timeout_s = (int)t;
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("lbctl %s\n", LB_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(argv[optind], commands[i].name))
			cmd = &commands[i];
	/* top is not one request and one reply: it has a loop of its own (lbctl_top.c). */
	if (!strcmp(argv[optind], "top"))
		return lbctl_top(&c, argc - optind, argv + optind);
	if (!cmd) {
		fprintf(stderr, "lbctl: unknown command '%s'; see lbctl -h\n", argv[optind]);
		return EXIT_USAGE;
	}
	argv += optind + 1;
	nargs = argc - optind - 1;
	for (int i = 0; i < nargs; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			command_usage(stdout, cmd);
			return EXIT_OK;
		}
	if (nargs < cmd->min_args || nargs > cmd->max_args) {
		fprintf(stderr, "lbctl: %s: expected %s%s\n", cmd->name,
			cmd->args[0] ? cmd->args : "no arguments", "");
		command_usage(stderr, cmd);
		return EXIT_USAGE;
	}
	return run(&c, cmd, argv);
}
