/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_STR_H
#define LB_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Building text: error lines, messages and reports. A growable string
 * ({0}) allocates as it goes; a fixed one (lb_str_fixed()) writes into the
 * caller's buffer and cuts what does not fit. Both stay NUL-terminated once
 * anything was appended. A failed allocation sets oom, and later appends
 * do nothing, so callers check once, at the end.
 */
struct lb_str {
	char *s;
	size_t len, cap;
	bool fixed;			/* s is the caller's buffer of cap bytes */
	bool oom;
};

/* Longest user text lb_str_escape() repeats with LB_STR_CUT; the rest becomes "...". */
#define LB_STR_QUOTE_MAX 64
/* A buffer that holds any LB_STR_QUOTE | LB_STR_CUT escape of user text. */
#define LB_STR_QUOTE_SIZE (LB_STR_QUOTE_MAX * 4 + 8)

enum {
	LB_STR_QUOTE = 1 << 0,		/* in double quotes, with '"' and '\' escaped */
	LB_STR_CUT = 1 << 1,		/* at most LB_STR_QUOTE_MAX bytes, on a UTF-8 boundary */
};

/* A string writing into buf of size bytes (at least 1), empty for now. */
struct lb_str lb_str_fixed(char *buf, size_t size);

void lb_str_printf(struct lb_str *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void lb_str_vprintf(struct lb_str *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * Appends user text so that it stays on one line: control bytes become
 * \xNN; flags add quoting and cutting (LB_STR_QUOTE, LB_STR_CUT).
 */
void lb_str_escape(struct lb_str *b, const char *text, unsigned int flags);

/* lb_str_escape() into buf of size bytes; returns buf. */
const char *lb_str_escape_to(char *buf, size_t size, const char *text, unsigned int flags);

/* Forgets the end of b from len on (a length it had before). */
void lb_str_truncate(struct lb_str *b, size_t len);

/*
 * Of a growable string: the text (owned by the caller; "" when nothing was
 * appended), or NULL after a failed allocation. b is {0} again either way.
 */
char *lb_str_take(struct lb_str *b);

/* Of a growable string: frees it; b is {0} again. */
void lb_str_fini(struct lb_str *b);

#endif
