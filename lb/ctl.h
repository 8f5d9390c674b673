/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_CTL_H
#define LB_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "lb/announce.h"
#include "lb/peers.h"
#include "lb/config.h"
#include "lb/limits.h"
#include "lb/loop.h"
#include "lb/rules.h"
#include "lb/shm.h"

/*
 * The control socket: a Unix stream socket served by the master in its
 * loop, speaking newline-delimited JSON (docs/control.md). Requests are
 * answered by lb_ctl_handle_line(), which is pure apart from the state
 * changes it makes in shm and the reload callback, so tests and the fuzzer
 * call it without sockets.
 */

#define LB_CTL_PROTOCOL 1
#define LB_CTL_LINE_MAX 65536		/* longest request, without its newline */

/*
 * What the control socket reports on and acts on. The master owns it, fills
 * it before lb_ctl_open() and keeps it current: after a reload, cfg and shm
 * point at the new config and shared state. Only pointers to the current
 * objects are read, and only while a request is being answered.
 */
struct lb_ctl_state {
	const struct lb_config *cfg;
	struct lb_shm *shm;		/* NULL: backend commands answer "unavailable" */
	const char *config_path;
	uint64_t start_ms;		/* lb_clock_ms() when lb started */
	time_t start_time;		/* wall clock when lb started */
	pid_t pid;			/* the master's, for status from another process; 0: this one */
	unsigned int generation;	/* config generation: 1 at start, +1 per reload */
	const struct lb_capacity *cap;	/* per-worker capacity; NULL: "limits" unavailable */
	unsigned int workers;		/* of the current generation */
	const struct lb_rules_state *rules;	/* NULL: "rules" unknown */
	/* Announcements and gateway drain; NULL: drain-gateway answers "unavailable". */
	struct lb_announce *announce;
	const struct lb_peers_state *peers;	/* gateway ownership; NULL: none */
	/* Last reload, recorded by lb_ctl_state_reloaded(); reload_time 0: none yet. */
	time_t reload_time;
	bool reload_ok;
	char reload_msg[256];
	/*
	 * Reloads the config synchronously: on return the new config is in
	 * force (or the old one still is). Returns 0 or -errno and writes a
	 * one-line result ("generation 2: 3 services" or why it failed) to
	 * msg. -EOPNOTSUPP: reloading is not implemented (the request then
	 * fails with "not_supported" and nothing is recorded). NULL acts as
	 * -EOPNOTSUPP. It may replace cfg, shm and generation; the control
	 * socket keeps its path, mode and group until lb restarts.
	 */
	int (*reload)(void *arg, char *msg, size_t msglen);
	void *reload_arg;
	/*
	 * Brings counters kept outside shm (the kernel's per-client drops) up
	 * to date in shm before a request reads them; NULL: shm is current.
	 */
	void (*refresh)(void);
};

/* Records a reload's outcome (now) in st; the master calls it for SIGHUP reloads too. */
void lb_ctl_state_reloaded(struct lb_ctl_state *st, bool ok, const char *msg);

struct lb_ctl;
struct ucred;

/*
 * Creates the socket at cfg->control_path (its directory with mkdir -p,
 * 0755), mode cfg->control_mode, group cfg->control_group, and serves it
 * in loop. A stale socket file (nobody accepting) is replaced; a live one
 * means another lb runs and is an error. st must outlive the result.
 * Returns NULL with errno set and a one-line reason in err.
 */
struct lb_ctl *lb_ctl_open(struct lb_loop *loop, const struct lb_config *cfg,
			   struct lb_ctl_state *st, char *err, size_t errlen);

/*
 * Closes every client and the socket and removes the socket file. Call it
 * outside lb_loop_run()'s callbacks (after it returns). NULL is fine.
 */
void lb_ctl_close(struct lb_ctl *ctl);

/* Connected clients, for tests and status. */
unsigned int lb_ctl_clients(const struct lb_ctl *ctl);

/*
 * Answers one request line (without its newline; a trailing '\r' is
 * fine). Returns an owned reply line ending in '\n', or NULL when out of
 * memory. peer (NULL: unknown) names who asked, for the log lines of
 * commands that change something.
 */
char *lb_ctl_handle_line(struct lb_ctl_state *st, const char *line, size_t len,
			 const struct ucred *peer);

/* An owned error reply line {"ok": false, "error": {...}}\n, or NULL. */
char *lb_ctl_error_line(const char *code, const char *message);

/*
 * Splits a byte stream into request lines. Lines longer than
 * LB_CTL_LINE_MAX are reported once as too long and skipped up to their
 * newline, so the buffer never holds more than one maximal line plus what
 * was appended since. Blank lines are skipped.
 */
struct lb_ctl_input {
	char *buf;
	size_t start, len, cap;		/* unconsumed bytes: buf[start..len) */
	size_t scan;			/* no newline in buf[start..scan) */
	bool discarding;		/* inside a too-long line */
};

enum lb_ctl_next {
	LB_CTL_NONE,			/* no complete line yet */
	LB_CTL_LINE,
	LB_CTL_TOO_LONG,
};

/* Appends bytes; returns 0 or -ENOMEM. */
int lb_ctl_input_append(struct lb_ctl_input *in, const char *data, size_t len);

/*
 * Takes the next line: *line points into the buffer (no newline) and is
 * valid until the next call. With eof, unterminated bytes at the end make a
 * last line.
 */
enum lb_ctl_next lb_ctl_input_next(struct lb_ctl_input *in, const char **line, size_t *len,
				   bool eof);

/* Bytes held, complete lines or not. */
size_t lb_ctl_input_pending(const struct lb_ctl_input *in);

void lb_ctl_input_fini(struct lb_ctl_input *in);

/*
 * {"status": ..., "services": [...], "backends": [...]}: the data of the
 * status, services and backends replies in one owned line ending in '\n'
 * (services and backends null without shm), or NULL when out of memory.
 * Reads only.
 */
char *lb_ctl_status_json(struct lb_ctl_state *st);

/*
 * What services[i] of st refused per client, and its top clients by open
 * connections (at most top): the "clients" reply's entry (ctl_clients.c).
 * An owned jansson object, or NULL when out of memory.
 */
struct json_t *lb_ctl_clients_json(const struct lb_ctl_state *st, size_t i, size_t top);

/* The Prometheus text exposition of st (what "metrics" returns); owned, or NULL. */
char *lb_ctl_metrics(const struct lb_ctl_state *st);

#endif
