// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/json.c: a fast path in front of json_loadb() for large configs.
 *
 * jansson's lexer fetches every byte through a stream callback and copies
 * every token into a growable buffer; at 100,000 VIPs that is most of a
 * reload. This parser walks the buffer with a pointer, takes unescaped
 * strings and keys straight from it (jansson copies them once, as it must),
 * and builds the same values through jansson's public constructors. It is
 * deliberately stricter than jansson: on anything it does not handle, or
 * any error, it drops what it built and lets json_loadb() parse the text
 * again, so jansson stays the judge of what is valid and its messages,
 * lines and columns are the ones users see.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lb/json.h"

#define JSON_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

/*
 * Deeper text goes to jansson (whose limit is JSON_PARSER_MAX_DEPTH): this
 * keeps our recursion's stack to a few tens of kilobytes, and no config
 * nests more than a handful of levels.
 */
#define FAST_MAX_DEPTH 512

struct parse {
	const unsigned char *p, *end;
	unsigned int depth;
	char *buf;			/* decoded escaped strings, the text of reals */
	size_t cap;
	const unsigned char *start;	/* the text's first byte, for offsets */
	const struct lb_json_hook *hook;	/* NULL: none */
};

/*
 * Bytes that end a run of plain string bytes: the closing quote, an escape,
 * a control character (jansson rejects them raw) and the first byte of a
 * UTF-8 sequence, which must be checked.
 */
static const unsigned char str_stop[256] = {
	[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

static json_t *parse_value(struct parse *ps);

static inline void skip_ws(struct parse *ps)
{
	const unsigned char *p = ps->p, *end = ps->end;

	while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	ps->p = p;
}

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Room for n bytes in ps->buf; false when there is no memory for them. */
static bool reserve(struct parse *ps, size_t n)
{
	size_t cap = ps->cap ? ps->cap : 256;
	char *b;

	if (n <= ps->cap)
		return true;
	while (cap < n)
		cap *= 2;
	b = realloc(ps->buf, cap);
	if (!b)
		return false;
	ps->buf = b;
	ps->cap = cap;
	return true;
}

/*
 * The length of the well-formed UTF-8 sequence at p (whose first byte is
 * 0x80 or above) that ends before end, or 0 when it is not one. Strict
 * RFC 3629, as jansson is: no overlong forms, no surrogates, nothing past
 * U+10FFFF.
 */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* The value of the four hex digits at p, or -1. */
static long hex4(const unsigned char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];

		v <<= 4;
		if (is_digit(c))
			v |= c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v |= (c | 0x20) - 'a' + 10;
		else
			return -1;
	}
	return v;
}

static char *utf8_put(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/*
 * Decodes the string from p (just past the opening quote, and at an escape
 * or later) to its closing quote at q into ps->buf, which already holds the
 * n plain bytes before p. \u0000 and lone surrogates are left to jansson.
 * Returns the decoded length, or -1.
 */
static ptrdiff_t decode_escaped(struct parse *ps, const unsigned char *p, const unsigned char *q,
				size_t n)
{
	char *o = ps->buf + n;
	size_t len;
	long cp, lo;

	while (p < q) {
		unsigned char c = *p;

		if (c >= 0x80) {
			len = utf8_len(p, q);
			if (!len)
				return -1;
			memcpy(o, p, len);
			o += len;
			p += len;
			continue;
		}
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			*o++ = (char)c;
			p++;
			continue;
		}
		/* The closing quote is not escaped, so p + 1 < q. */
		c = p[1];
		p += 2;
		switch (c) {
		case '"': case '\\': case '/': *o++ = (char)c; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (q - p < 4 || (cp = hex4(p)) <= 0)
				return -1;
			p += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (q - p < 6 || p[0] != '\\' || p[1] != 'u')
					return -1;
				lo = hex4(p + 2);
				if (lo < 0xdc00 || lo > 0xdfff)
					return -1;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			o = utf8_put(o, (unsigned long)cp);
			break;
		default:
			return -1;
		}
	}
	return o - ps->buf;
}

/*
 * The string whose opening quote ps->p has just passed: sets *s and *len to
 * its bytes and moves past its closing quote. Returns 0 when *s points into
 * the input, 1 when it points into ps->buf (escapes were decoded; valid
 * until the next string or number), -1 when the fast path gives up.
 */
static int parse_string(struct parse *ps, const char **s, size_t *len)
{
	const unsigned char *start = ps->p, *p = start, *end = ps->end, *q;
	ptrdiff_t n;
	size_t u;

	for (;;) {
		while (p < end && !str_stop[*p])
			p++;
		if (p == end)
			return -1;
		if (*p == '"') {
			*s = (const char *)start;
			*len = (size_t)(p - start);
			ps->p = p + 1;
			return 0;
		}
		if (*p < 0x80)
			break;
		u = utf8_len(p, end);
		if (!u)
			return -1;
		p += u;
	}
	if (*p != '\\')
		return -1;
	/*
	 * Find the closing quote first: the text is no shorter than what it
	 * decodes to, so one reservation covers the whole string.
	 */
	for (q = p;; q++) {
		if (q == end)
			return -1;
		if (*q == '"')
			break;
		if (*q == '\\' && ++q == end)
			return -1;
	}
	if (!reserve(ps, (size_t)(q - start)))
		return -1;
	memcpy(ps->buf, start, (size_t)(p - start));
	n = decode_escaped(ps, p, q, (size_t)(p - start));
	if (n < 0)
		return -1;
	*s = ps->buf;
	*len = (size_t)n;
	ps->p = q + 1;
	return 1;
}

/*
 * A number by jansson's rules: no leading zeros; with '.', 'e' or 'E' it is
 * a real, as strtod() reads it in the C locale; otherwise a json_int_t, and
 * one that does not fit is an error (jansson's, by the fallback).
 */
static json_t *parse_number(struct parse *ps)
{
	const unsigned char *s = ps->p, *p = s, *end = ps->end, *digits;
	bool neg = false, real = false;
	uint64_t v = 0;
	char *e;
	double d;
	size_t n;

	if (*p == '-') {
		neg = true;
		p++;
	}
	digits = p;
	if (p == end || !is_digit(*p))
		return NULL;
	if (*p == '0') {
		if (++p < end && is_digit(*p))
			return NULL;
	} else {
		while (p < end && is_digit(*p))
			v = v * 10 + (uint64_t)(*p++ - '0');
	}
	n = (size_t)(p - digits);
	if (p < end && *p == '.') {
		real = true;
		if (++p == end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p | 0x20) == 'e') {
		real = true;
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	ps->p = p;
	if (!real) {
		/* 19 digits cannot wrap a uint64_t; 20 never fit a json_int_t. */
		if (n > 19)
			return NULL;
		if (neg) {
			if (v > (uint64_t)LLONG_MAX + 1)
				return NULL;
			return json_integer(v == (uint64_t)LLONG_MAX + 1 ? LLONG_MIN : -(json_int_t)v);
		}
		if (v > (uint64_t)LLONG_MAX)
			return NULL;
		return json_integer((json_int_t)v);
	}
	n = (size_t)(p - s);
	if (!reserve(ps, n + 1))
		return NULL;
	memcpy(ps->buf, s, n);
	ps->buf[n] = '\0';
	errno = 0;
	d = strtod(ps->buf, &e);
	/*
	 * A locale whose decimal point is not '.' stops strtod() short (jansson
	 * converts for it). Like jansson, only overflow is an error: an
	 * underflow's 0 or subnormal is the value.
	 */
	if (e != ps->buf + n || ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE))
		return NULL;
	return json_real(d);
}

/*
 * Enters the container whose opening bracket is at ps->p: 1 when it closes
 * at once with close (and is passed), 0 when a member follows, -1 when it
 * nests too deep for the fast path.
 */
static int enter(struct parse *ps, unsigned char close)
{
	ps->p++;
	if (++ps->depth > FAST_MAX_DEPTH)
		return -1;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 1;
	}
	return 0;
}

/* After a member: 0 past a ',' (another follows), 1 past close, -1 on anything else. */
static int next(struct parse *ps, unsigned char close)
{
	skip_ws(ps);
	if (ps->p == ps->end)
		return -1;
	if (*ps->p == close) {
		ps->p++;
		return 1;
	}
	return *ps->p++ == ',' ? 0 : -1;
}

/*
 * An array. With h, the hook's array: an element h knows becomes null,
 * unparsed, and h is told where each element is.
 */
static json_t *parse_array(struct parse *ps, const struct lb_json_hook *h)
{
	json_t *arr = json_array(), *v;
	size_t i = 0, off = 0, n = 0;
	int r;

	if (!arr)
		return NULL;
	for (r = enter(ps, ']'); r == 0; r = next(ps, ']'), i++) {
		if (h) {
			skip_ws(ps);
			off = (size_t)(ps->p - ps->start);
			n = ps->p < ps->end && *ps->p == '{' ?
				h->known(h->arg, i, off, (size_t)(ps->end - ps->p)) : 0;
		}
		if (n) {
			ps->p += n;
			v = json_null();
		} else {
			v = parse_value(ps);
		}
		if (!v || json_array_append_new(arr, v) ||
		    (h && !h->span(h->arg, i, off, (size_t)(ps->p - ps->start) - off)))
			goto fail;
	}
	if (r < 0)
		goto fail;
	ps->depth--;
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

static json_t *parse_object(struct parse *ps)
{
	json_t *obj = json_object(), *v;
	char *owned = NULL;
	const char *key;
	size_t klen;
	int r;

	if (!obj)
		return NULL;
	for (r = enter(ps, '}'); r == 0; r = next(ps, '}')) {
		skip_ws(ps);
		if (ps->p == ps->end || *ps->p != '"')
			goto fail;
		ps->p++;
		r = parse_string(ps, &key, &klen);
		if (r < 0)
			goto fail;
		if (r == 1) {
			/* The value's strings reuse ps->buf. */
			owned = malloc(klen + 1);
			if (!owned)
				goto fail;
			key = memcpy(owned, key, klen);
		}
		/* A duplicate gets jansson's "duplicate object key", by the fallback. */
		if (json_object_getn(obj, key, klen))
			goto fail;
		skip_ws(ps);
		if (ps->p == ps->end || *ps->p++ != ':')
			goto fail;
		skip_ws(ps);
		if (ps->hook && ps->depth == 1 && ps->p < ps->end && *ps->p == '[' &&
		    klen == strlen(ps->hook->key) && !memcmp(key, ps->hook->key, klen))
			v = parse_array(ps, ps->hook);
		else
			v = parse_value(ps);
		if (!v || json_object_setn_new_nocheck(obj, key, klen, v))
			goto fail;
		free(owned);
		owned = NULL;
	}
	if (r < 0)
		goto fail;
	ps->depth--;
	return obj;
fail:
	free(owned);
	json_decref(obj);
	return NULL;
}

/* Compares the len bytes of word with the input at ps->p, and moves past them when equal. */
static bool take_word(struct parse *ps, const char *word, size_t len)
{
	if ((size_t)(ps->end - ps->p) < len || memcmp(ps->p, word, len))
		return false;
	ps->p += len;
	return true;
}

static json_t *parse_value(struct parse *ps)
{
	const char *s;
	size_t len;

	skip_ws(ps);
	if (ps->p == ps->end)
		return NULL;
	switch (*ps->p) {
	case '"':
		ps->p++;
		if (parse_string(ps, &s, &len) < 0)
			return NULL;
		return json_stringn_nocheck(s, len);
	case '{':
		return parse_object(ps);
	case '[':
		return parse_array(ps, NULL);
	case '-':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return parse_number(ps);
	case 't':
		return take_word(ps, "true", 4) ? json_true() : NULL;
	case 'f':
		return take_word(ps, "false", 5) ? json_false() : NULL;
	case 'n':
		return take_word(ps, "null", 4) ? json_null() : NULL;
	default:
		return NULL;
	}
}

static json_t *load_fast(const char *buf, size_t len, const struct lb_json_hook *hook)
{
	struct parse ps = { .hook = hook };
	json_t *root;

	if (!buf)
		return NULL;
	ps.p = ps.start = (const unsigned char *)buf;
	ps.end = ps.p + len;
	root = parse_value(&ps);
	skip_ws(&ps);
	if (root && ps.p != ps.end) {
		json_decref(root);
		root = NULL;
	}
	free(ps.buf);
	return root;
}

json_t *lb_json_load_fast(const char *buf, size_t len)
{
	return load_fast(buf, len, NULL);
}

json_t *lb_json_loadb(const char *buf, size_t len, json_error_t *error)
{
	json_t *root = load_fast(buf, len, NULL);

	return root ? root : json_loadb(buf, len, JSON_FLAGS, error);
}

json_t *lb_json_loadb_hook(const char *buf, size_t len, json_error_t *error,
			   const struct lb_json_hook *hook, bool *hooked)
{
	json_t *root = load_fast(buf, len, hook);

	*hooked = root != NULL;
	return root ? root : json_loadb(buf, len, JSON_FLAGS, error);
}
