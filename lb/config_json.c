// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What config.c and config_service.c both parse with: the JSON path of the
 * value being looked at, the error and warning lines that name it, and
 * getters that check a value's type and range and report at that path.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lb/config_priv.h"

size_t lb_config_path_key(struct lb_config_ctx *c, const char *key)
{
	if (c->depth < LB_CONFIG_PATH_MAX)
		c->path[c->depth] = (struct lb_config_path_part){ .key = key };
	return c->depth++;
}

size_t lb_config_path_index(struct lb_config_ctx *c, size_t i)
{
	if (c->depth < LB_CONFIG_PATH_MAX)
		c->path[c->depth] = (struct lb_config_path_part){ .index = i };
	return c->depth++;
}

void lb_config_path_pop(struct lb_config_ctx *c, size_t saved)
{
	c->depth = saved;
}

void lb_config_oom(struct lb_config_ctx *c)
{
	c->errors.oom = true;
}

/* "services[0].vips[1]: ", or "(root): " at the top. */
static void line_start(struct lb_config_ctx *c, struct lb_str *b)
{
	size_t n = c->depth < LB_CONFIG_PATH_MAX ? c->depth : LB_CONFIG_PATH_MAX;

	if (!n)
		lb_str_printf(b, "(root)");
	for (size_t i = 0; i < n; i++) {
		if (!c->path[i].key) {
			lb_str_printf(b, "[%zu]", c->path[i].index);
			continue;
		}
		if (i)
			lb_str_printf(b, ".");
		lb_str_escape(b, c->path[i].key, 0);
	}
	lb_str_printf(b, "%s: ", c->depth > n ? "..." : "");
}

static void err_start(struct lb_config_ctx *c)
{
	c->n_errors++;
	line_start(c, &c->errors);
}

void lb_config_err(struct lb_config_ctx *c, const char *fmt, ...)
{
	va_list ap;

	err_start(c);
	va_start(ap, fmt);
	lb_str_vprintf(&c->errors, fmt, ap);
	va_end(ap);
	lb_str_printf(&c->errors, "\n");
}

void lb_config_warn(struct lb_config_ctx *c, const char *fmt, ...)
{
	va_list ap;

	line_start(c, &c->warnings);
	va_start(ap, fmt);
	lb_str_vprintf(&c->warnings, fmt, ap);
	va_end(ap);
	lb_str_printf(&c->warnings, "\n");
}

void lb_config_err_quoted(struct lb_config_ctx *c, const char *what, const char *text,
			  const char *tail)
{
	err_start(c);
	lb_str_printf(&c->errors, "%s ", what);
	lb_str_escape(&c->errors, text, LB_STR_QUOTE | LB_STR_CUT);
	lb_str_printf(&c->errors, "%s\n", tail);
}

void lb_config_err_missing(struct lb_config_ctx *c, const char *key)
{
	size_t saved = lb_config_path_key(c, key);

	lb_config_err(c, "missing required key");
	lb_config_path_pop(c, saved);
}

bool lb_config_get_int(struct lb_config_ctx *c, json_t *v, long long min, long long max,
		       long long *out)
{
	long long n;

	if (!json_is_integer(v)) {
		lb_config_err(c, "expected an integer");
		return false;
	}
	n = json_integer_value(v);
	if (n < min || n > max) {
		lb_config_err(c, "%lld out of range (%lld..%lld)", n, min, max);
		return false;
	}
	*out = n;
	return true;
}

bool lb_config_get_timeout(struct lb_config_ctx *c, json_t *v, unsigned int *out)
{
	long long n;

	if (!lb_config_get_int(c, v, 1, LB_CONFIG_TIMEOUT_MAX, &n))
		return false;
	*out = n;
	return true;
}

/* Without JSON_ALLOW_NUL, jansson already refused strings holding "\u0000". */
const char *lb_config_get_string(struct lb_config_ctx *c, json_t *v)
{
	if (!json_is_string(v)) {
		lb_config_err(c, "expected a string");
		return NULL;
	}
	return json_string_value(v);
}

bool lb_config_valid_name(const char *s, const char *extra)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > LB_CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr(extra, ch)))
			return false;
	}
	return true;
}

char *lb_config_get_name(struct lb_config_ctx *c, json_t *v, const char *extra,
			 const char *rule)
{
	const char *s = lb_config_get_string(c, v);
	char *copy;

	if (!s)
		return NULL;
	if (!lb_config_valid_name(s, extra)) {
		lb_config_err_quoted(c, "invalid name", s, rule);
		return NULL;
	}
	copy = strdup(s);
	if (!copy)
		lb_config_oom(c);
	return copy;
}

bool lb_config_get_addr(struct lb_config_ctx *c, json_t *v, union lb_sockaddr *out)
{
	const char *s = lb_config_get_string(c, v), *why;

	if (!s)
		return false;
	if (lb_addr_parse(s, out, &why)) {
		lb_config_err(c, "%s", why);
		return false;
	}
	/* Written as ::ffff:a.b.c.d it is still an IPv4 address on the wire. */
	lb_addr_unmap(out);
	return true;
}

bool lb_config_expect_object(struct lb_config_ctx *c, json_t *v)
{
	if (!json_is_object(v)) {
		lb_config_err(c, "expected an object");
		return false;
	}
	return true;
}

bool lb_config_expect_array(struct lb_config_ctx *c, json_t *v)
{
	if (!json_is_array(v)) {
		lb_config_err(c, "expected an array");
		return false;
	}
	if (json_array_size(v) == 0) {
		lb_config_err(c, "must not be empty");
		return false;
	}
	return true;
}

void *lb_config_alloc_array(struct lb_config_ctx *c, json_t *arr, size_t size)
{
	void *p;

	if (!lb_config_expect_array(c, arr))
		return NULL;
	p = calloc(json_array_size(arr), size);
	if (!p)
		lb_config_oom(c);
	return p;
}
