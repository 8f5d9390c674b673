/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LBCTL_H
#define LB_LBCTL_H

#include <stdbool.h>

/* Shared by lbctl.c (one request, one reply) and lbctl_top.c (a live view). */

enum { EXIT_OK, EXIT_ERROR_REPLY, EXIT_USAGE };

struct ctx {
	const char *socket;
	int timeout_s;			/* 0: the command's default */
	bool json;
};

/* Prints "lbctl: message" to stderr and exits with status. */
void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Sends one request line and returns the reply line (owned, without newline); dies on failure. */
char *lbctl_transact(const struct ctx *c, const char *line, int timeout_s);

/* "12.3K": a rate or size in 4-5 columns, powers of 1024; returns buf. */
const char *lbctl_human(double v, char *buf, size_t len);

/* lbctl top ARGS...: argv[0] is "top". Returns the exit status. */
int lbctl_top(const struct ctx *c, int argc, char **argv);

#endif
