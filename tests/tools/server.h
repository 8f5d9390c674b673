/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The listening side that peer's server modes share: listeners, accept,
 * connections, options and the loop; each mode brings its handlers. */
#ifndef LB_TESTS_TOOLS_SERVER_H
#define LB_TESTS_TOOLS_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common.h"
#include "stream.h"

struct server_mode;

/* One accepted connection, whatever the mode; serve uses the most of it. */
struct sconn {
	/* First, so that an epoll item is known by it: a listener's is NULL. */
	const struct server_mode *mode;
	int fd;
	struct sockaddr_storage peer;
	uint32_t events;
	enum { S_HEADER, S_UPLOAD, S_SEND } state;
	uint8_t hdr[HDR_LEN];
	size_t hdr_len;
	uint64_t up, down, got;
	bool bad, rd_eof;
	struct stream up_st;
	struct feed out;		/* what is to be sent; for some, a scratch buffer */
};

/* What the options of a mode may change in how it listens. */
struct server_conf {
	int backlog;			/* -1: the default, 4096 */
	bool no_accept;			/* listen, never accept */
	bool fastopen;			/* -F: TCP_FASTOPEN on the listener (serve, echo, early) */
};

struct server_mode {
	const char *name;		/* in -v lines */
	const char *optstring;		/* getopt's; -v is taken care of */
	/* Takes one of the other options; returns 0, or -EINVAL for usage(). */
	int (*option)(struct server_conf *conf, int opt, const char *arg);
	/* Just accepted, not yet in epoll: returns false when it closed c. */
	bool (*accepted)(struct sconn *c);
	void (*event)(int ep, struct sconn *c, uint32_t events);
	/* After SIGINT/SIGTERM: returns the exit status. */
	int (*done)(void);
};

extern const struct server_mode serve_mode, echo_mode, sink_mode, rst_mode, early_mode;

/* Parses the options, listens on every ADDR:PORT that follows them and
 * serves until SIGINT/SIGTERM; returns the exit status, exits on errors. */
int server_run(const struct server_mode *mode, int argc, char **argv);

/* With -v: says how a connection ended ("eof", "reset", ...). */
void sconn_log_end(const struct sconn *c, const char *how, int err);
/* Closes c, with a reset when asked, and frees it. */
void sconn_close(struct sconn *c, bool rst);
/* Changes what epoll reports for c. */
void sconn_want(int ep, struct sconn *c, uint32_t events);

#endif
