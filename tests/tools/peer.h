/* SPDX-License-Identifier: GPL-2.0-or-later */
/* peer's modes (peer.c has the table that picks one) and what the client
 * modes share: their options and source addresses (args.c). */
#ifndef LB_TESTS_TOOLS_PEER_H
#define LB_TESTS_TOOLS_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

/* At most this many failures are described, per run. */
#define MAX_REPORTS 20
#define MAX_SOURCES 16

void usage(void) __attribute__((noreturn));

/* The client modes; each takes its own argv (argv[0] is the mode) and
 * returns the exit status. The server modes are in server.h. */
int cmd_client(int argc, char **argv);
int cmd_hold(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_churn(int argc, char **argv);
int cmd_flood(int argc, char **argv);
int cmd_latency(int argc, char **argv);

/* Source addresses given with -b, taken in turn. */
struct sources {
	struct addr a[MAX_SOURCES];
	const char *given[MAX_SOURCES];	/* as on the command line */
	unsigned int n;
	unsigned int max;		/* 1: a later -b replaces the earlier */
};

/* The source for connection i, or NULL for the route's. */
const struct addr *sources_pick(const struct sources *s, unsigned int i);

enum arg_kind {
	ARG_FLAG,			/* bool: true */
	ARG_CHOICE,			/* int: limit */
	ARG_COUNT,			/* unsigned int: 1..limit, K/M/G suffixes too */
	ARG_MS,				/* double: 1..limit ms, in seconds */
	ARG_SECONDS,			/* double: more than 0 */
	ARG_SIZE,			/* uint64_t: at least limit, K/M/G suffixes too */
	ARG_SOURCE,			/* struct sources */
};

/* One option of a client mode: -opt stores into *to. */
struct arg {
	char opt;
	enum arg_kind kind;
	void *to;
	uint64_t limit;
	const char *what;		/* ARG_SECONDS, ARG_SIZE: "-X: bad WHAT 'ARG'" */
	bool *seen;			/* if not NULL: set when the option is given */
};

/*
 * Parses the options of args (ended by an entry with opt 0), then the one
 * ADDR:PORT that must follow them into dst, which every -b address must
 * match in family. Exits on errors: usage() for an unknown option or a
 * wrong number of arguments.
 */
void args_parse(int argc, char **argv, const struct arg *args, struct addr *dst);

#endif
