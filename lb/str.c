// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/str.h"

struct lb_str lb_str_fixed(char *buf, size_t size)
{
	buf[0] = '\0';
	return (struct lb_str){ .s = buf, .cap = size, .fixed = true };
}

/* Makes room for more bytes and a NUL; false when there is none to be had. */
static bool grow(struct lb_str *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 128;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void lb_str_vprintf(struct lb_str *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	if (b->oom)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->oom = !b->fixed;
		return;
	}
	if (b->fixed) {
		b->len = b->len + n < b->cap ? b->len + n : b->cap - 1;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		if (!grow(b, n))
			return;
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += n;
}

void lb_str_printf(struct lb_str *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lb_str_vprintf(b, fmt, ap);
	va_end(ap);
}

void lb_str_escape(struct lb_str *b, const char *text, unsigned int flags)
{
	bool quote = flags & LB_STR_QUOTE;
	size_t n = strlen(text), cut = n;

	if ((flags & LB_STR_CUT) && cut > LB_STR_QUOTE_MAX) {
		cut = LB_STR_QUOTE_MAX;
		/* Not inside a UTF-8 sequence. */
		while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
			cut--;
	}
	if (quote)
		lb_str_printf(b, "\"");
	for (size_t i = 0; i < cut; i++) {
		unsigned char c = text[i];

		if (quote && (c == '"' || c == '\\'))
			lb_str_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			lb_str_printf(b, "\\x%02x", c);
		else
			lb_str_printf(b, "%c", c);
	}
	lb_str_printf(b, "%s%s", cut < n ? "..." : "", quote ? "\"" : "");
}

const char *lb_str_escape_to(char *buf, size_t size, const char *text, unsigned int flags)
{
	struct lb_str b = lb_str_fixed(buf, size);

	lb_str_escape(&b, text, flags);
	return buf;
}

void lb_str_truncate(struct lb_str *b, size_t len)
{
	if (b->oom || len >= b->len)
		return;
	b->len = len;
	b->s[len] = '\0';
}

char *lb_str_take(struct lb_str *b)
{
	char *s = b->oom ? NULL : b->s ? b->s : strdup("");

	if (b->oom)
		free(b->s);
	*b = (struct lb_str){ 0 };
	return s;
}

void lb_str_fini(struct lb_str *b)
{
	free(b->s);
	*b = (struct lb_str){ 0 };
}
