// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A service's "health" object: the type of active check, its timing and
 * thresholds, and what an http check sends and expects (docs/config.md).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lb/config_priv.h"

#define HEALTH_COUNT_MAX	100
#define HTTP_PATH_MAX		1024
#define HTTP_HOST_MAX		255

/* Text that goes into an HTTP request as is: a space, CR or LF would split it. */
static char *get_http_text(struct lb_config_ctx *c, const char *s, size_t max)
{
	const unsigned char *p;
	char *copy;

	if (!*s) {
		lb_config_err(c, "must not be empty");
		return NULL;
	}
	if (strlen(s) > max) {
		lb_config_err(c, "longer than %zu bytes", max);
		return NULL;
	}
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == 0x7f) {
			lb_config_err(c, "must not contain spaces or control characters");
			return NULL;
		}
	}
	copy = strdup(s);
	if (!copy)
		lb_config_oom(c);
	return copy;
}

/* Exactly three digits; advances *p past them. */
static bool scan_status(const char **p, unsigned int *out)
{
	unsigned int n = 0;
	int i;

	for (i = 0; i < 3; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return false;
		n = n * 10 + (**p - '0');
	}
	*out = n;
	return true;
}

/* health.expect: "200" or "200-399". */
static void parse_expect(struct lb_config_ctx *c, struct lb_health_conf *h, json_t *v)
{
	const char *s = lb_config_get_string(c, v), *p;
	unsigned int min = 0, max;
	bool ok;

	if (!s)
		return;
	p = s;
	ok = scan_status(&p, &min);
	max = min;
	if (ok && *p == '-') {
		p++;
		ok = scan_status(&p, &max);
	}
	if (!ok || *p) {
		lb_config_err_quoted(c, "invalid status", s,
				     " (expected a code or a range, like \"200\" or \"200-399\")");
		return;
	}
	if (min < 100 || min > 599 || max < 100 || max > 599) {
		lb_config_err(c, "status code %u out of range (100..599)",
			      min < 100 || min > 599 ? min : max);
		return;
	}
	if (min > max) {
		lb_config_err_quoted(c, "invalid status range", s, " (first code above last)");
		return;
	}
	h->expect_min = min;
	h->expect_max = max;
}

/* Keys of the health block that only an http check uses. */
static bool http_only_key(const char *key)
{
	return !strcmp(key, "path") || !strcmp(key, "host") || !strcmp(key, "expect");
}

void lb_config_parse_health(struct lb_config_ctx *c, struct lb_health_conf *h, json_t *obj)
{
	bool times_ok = true;
	const char *key, *s;
	long long n;
	size_t saved;
	json_t *v;
	char *copy;

	if (!lb_config_expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "type")) {
			s = lb_config_get_string(c, v);
			if (s && !strcmp(s, "tcp"))
				h->type = LB_CHECK_TCP;
			else if (s && !strcmp(s, "http"))
				h->type = LB_CHECK_HTTP;
			else if (s)
				lb_config_err_quoted(c, "unknown check type", s, " (expected tcp or http)");
		} else if (!strcmp(key, "interval_ms")) {
			times_ok &= lb_config_get_timeout(c, v, &h->interval_ms);
		} else if (!strcmp(key, "timeout_ms")) {
			times_ok &= lb_config_get_timeout(c, v, &h->timeout_ms);
		} else if (!strcmp(key, "rise")) {
			if (lb_config_get_int(c, v, 1, HEALTH_COUNT_MAX, &n))
				h->rise = n;
		} else if (!strcmp(key, "fall")) {
			if (lb_config_get_int(c, v, 1, HEALTH_COUNT_MAX, &n))
				h->fall = n;
		} else if (!strcmp(key, "port")) {
			if (lb_config_get_int(c, v, 0, 65535, &n))
				h->port = n;
		} else if (!strcmp(key, "path")) {
			s = lb_config_get_string(c, v);
			if (s && s[0] != '/') {
				lb_config_err(c, "must start with \"/\"");
			} else if (s && (copy = get_http_text(c, s, HTTP_PATH_MAX))) {
				free(h->path);
				h->path = copy;
			}
		} else if (!strcmp(key, "host")) {
			s = lb_config_get_string(c, v);
			if (s && (copy = get_http_text(c, s, HTTP_HOST_MAX))) {
				free(h->host);
				h->host = copy;
			}
		} else if (!strcmp(key, "expect")) {
			parse_expect(c, h, v);
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "type"))
		lb_config_err_missing(c, "type");
	if (h->type == LB_CHECK_TCP) {
		json_object_foreach(obj, key, v) {
			if (!http_only_key(key))
				continue;
			saved = lb_config_path_key(c, key);
			lb_config_err(c, "only for type \"http\"");
			lb_config_path_pop(c, saved);
		}
	}
	if (h->type == LB_CHECK_HTTP && !h->path) {
		h->path = strdup("/");
		if (!h->path)
			lb_config_oom(c);
	}
	/* A probe still running when the next is due would pile up sockets. */
	if (times_ok && h->timeout_ms > h->interval_ms)
		lb_config_err(c, "timeout_ms %u is above interval_ms %u", h->timeout_ms, h->interval_ms);
}
