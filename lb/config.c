// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "lb/config.h"

#define DEFAULT_CONTROL_PATH	"/run/lb/lb.sock"
#define DEFAULT_TABLE		"lb"
#define NAME_MAX_LEN		64
#define TIMEOUT_MAX_MS		86400000
#define CONFIG_MAX_BYTES	(16 << 20)
#define QUOTE_MAX		64

/* Growable string; a failed allocation sets oom and later appends do nothing. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

/*
 * Parse state: the config being filled in, the JSON path of the value being
 * looked at ("services[0].vips[1]") and the error lines found so far.
 */
struct ctx {
	struct lb_config *cfg;
	json_t *services;		/* for naming earlier services in messages */
	struct sbuf path;
	struct sbuf errors;
	unsigned int n_errors;
};

static void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t cap;
	char *s;
	int n;

	if (b->oom)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 128;
		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += n;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

/*
 * Appends user text so that an error stays one line: control bytes become
 * \xNN and, when quoting, '"' and '\' are escaped and the text is wrapped
 * in quotes and cut after QUOTE_MAX bytes.
 */
static void sb_escape(struct sbuf *b, const char *s, bool quoted)
{
	size_t n = strlen(s), cut = n, i;

	if (quoted && cut > QUOTE_MAX) {
		cut = QUOTE_MAX;
		while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
			cut--;
	}
	if (quoted)
		sb_printf(b, "\"");
	for (i = 0; i < cut; i++) {
		unsigned char c = s[i];

		if (quoted && (c == '"' || c == '\\'))
			sb_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\x%02x", c);
		else
			sb_printf(b, "%c", c);
	}
	if (quoted)
		sb_printf(b, "%s\"", cut < n ? "..." : "");
}

static size_t path_push_key(struct ctx *c, const char *key)
{
	size_t saved = c->path.len;

	if (saved)
		sb_printf(&c->path, ".");
	sb_escape(&c->path, key, false);
	return saved;
}

static size_t path_push_index(struct ctx *c, size_t i)
{
	size_t saved = c->path.len;

	sb_printf(&c->path, "[%zu]", i);
	return saved;
}

static void path_pop(struct ctx *c, size_t saved)
{
	if (c->path.oom)
		return;
	c->path.len = saved;
	if (c->path.s)
		c->path.s[saved] = '\0';
}

static void err_start(struct ctx *c)
{
	c->n_errors++;
	if (c->path.oom)
		c->errors.oom = true;
	sb_printf(&c->errors, "%s: ", c->path.len && !c->path.oom ? c->path.s : "(root)");
}

/* Adds "path: message\n" for the value at the current path. */
static void err(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void err(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	err_start(c);
	va_start(ap, fmt);
	sb_vprintf(&c->errors, fmt, ap);
	va_end(ap);
	sb_printf(&c->errors, "\n");
}

/* Adds "path: what "text"\n", quoting text safely. */
static void err_quoted(struct ctx *c, const char *what, const char *text, const char *tail)
{
	err_start(c);
	sb_printf(&c->errors, "%s ", what);
	sb_escape(&c->errors, text, true);
	sb_printf(&c->errors, "%s\n", tail);
}

static void err_missing(struct ctx *c, const char *key)
{
	size_t saved = path_push_key(c, key);

	err(c, "missing required key");
	path_pop(c, saved);
}

static bool get_int(struct ctx *c, json_t *v, long long min, long long max, long long *out)
{
	long long n;

	if (!json_is_integer(v)) {
		err(c, "expected an integer");
		return false;
	}
	n = json_integer_value(v);
	if (n < min || n > max) {
		err(c, "%lld out of range (%lld..%lld)", n, min, max);
		return false;
	}
	*out = n;
	return true;
}

static bool get_timeout(struct ctx *c, json_t *v, unsigned int *out)
{
	long long n;

	if (!get_int(c, v, 1, TIMEOUT_MAX_MS, &n))
		return false;
	*out = n;
	return true;
}

/* Without JSON_ALLOW_NUL, jansson already refused strings holding "\u0000". */
static const char *get_string(struct ctx *c, json_t *v)
{
	if (!json_is_string(v)) {
		err(c, "expected a string");
		return NULL;
	}
	return json_string_value(v);
}

static bool valid_name(const char *s, const char *extra)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > NAME_MAX_LEN)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr(extra, ch)))
			return false;
	}
	return true;
}

/* A name as checked by valid_name(); returns an owned copy or NULL. */
static char *get_name(struct ctx *c, json_t *v, const char *extra, const char *rule)
{
	const char *s = get_string(c, v);
	char *copy;

	if (!s)
		return NULL;
	if (!valid_name(s, extra)) {
		err_quoted(c, "invalid name", s, rule);
		return NULL;
	}
	copy = strdup(s);
	if (!copy)
		c->errors.oom = true;
	return copy;
}

static bool get_addr(struct ctx *c, json_t *v, union lb_sockaddr *out)
{
	const char *s = get_string(c, v), *why;

	if (!s)
		return false;
	if (lb_addr_parse(s, out, &why)) {
		err(c, "%s", why);
		return false;
	}
	/* Written as ::ffff:a.b.c.d it is still an IPv4 address on the wire. */
	lb_addr_unmap(out);
	return true;
}

static bool expect_object(struct ctx *c, json_t *v)
{
	if (!json_is_object(v)) {
		err(c, "expected an object");
		return false;
	}
	return true;
}

/* Array of at least one element; element errors are the caller's. */
static bool expect_array(struct ctx *c, json_t *v)
{
	if (!json_is_array(v)) {
		err(c, "expected an array");
		return false;
	}
	if (json_array_size(v) == 0) {
		err(c, "must not be empty");
		return false;
	}
	return true;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

static void parse_control(struct ctx *c, json_t *obj)
{
	const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	const char *key, *s;
	size_t saved;
	json_t *v;

	if (!expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = path_push_key(c, key);
		if (!strcmp(key, "path")) {
			s = get_string(c, v);
			if (s && s[0] != '/') {
				err(c, "must be an absolute path");
			} else if (s && strlen(s) > max) {
				err(c, "longer than %zu bytes", max);
			} else if (s) {
				free(c->cfg->control_path);
				c->cfg->control_path = strdup(s);
				if (!c->cfg->control_path)
					c->errors.oom = true;
			}
		} else {
			err(c, "unknown key");
		}
		path_pop(c, saved);
	}
}

/* Tables 253..255 are the kernel's own; taking one over would break routing. */
static bool route_table_free(struct ctx *c, long long n)
{
	static const char *const reserved[] = { "default", "main", "local" };

	if (n < 253 || n > 255)
		return true;
	err(c, "%lld is reserved (the \"%s\" routing table)", n, reserved[n - 253]);
	return false;
}

static void parse_intercept(struct ctx *c, json_t *obj)
{
	const char *key;
	long long n;
	size_t saved;
	json_t *v;
	char *s;

	if (!expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = path_push_key(c, key);
		if (!strcmp(key, "port")) {
			if (get_int(c, v, 1, 65535, &n))
				c->cfg->intercept.port = n;
		} else if (!strcmp(key, "mark")) {
			if (get_int(c, v, 1, 0xffffffffLL, &n))
				c->cfg->intercept.mark = n;
		} else if (!strcmp(key, "table")) {
			s = get_name(c, v, "_-", " (1..64 characters of A-Za-z0-9_-)");
			if (s) {
				free(c->cfg->intercept.table);
				c->cfg->intercept.table = s;
			}
		} else if (!strcmp(key, "route_table")) {
			if (get_int(c, v, 1, 0xffffffffLL, &n) && route_table_free(c, n))
				c->cfg->intercept.route_table = n;
		} else if (!strcmp(key, "rule_priority")) {
			/* 0, 32766 and 32767 hold the local, main and default rules. */
			if (get_int(c, v, 1, 32765, &n))
				c->cfg->intercept.rule_priority = n;
		} else {
			err(c, "unknown key");
		}
		path_pop(c, saved);
	}
}

/* "service "web"" when services[i] has a valid name, else "services[i]". */
static void describe_service(struct ctx *c, size_t i, char *buf, size_t len)
{
	json_t *name = json_object_get(json_array_get(c->services, i), "name");

	if (json_is_string(name) && valid_name(json_string_value(name), "_.-"))
		snprintf(buf, len, "service \"%s\"", json_string_value(name));
	else
		snprintf(buf, len, "services[%zu]", i);
}

/* Parses services[si].vips[vi], checking it against every VIP before it. */
static void parse_vip(struct ctx *c, size_t si, size_t vi, json_t *v)
{
	struct lb_service_conf *svc = &c->cfg->services[si];
	char text[LB_ADDR_STRLEN], who[NAME_MAX_LEN + 16];
	union lb_sockaddr *a = &svc->vips[vi];
	size_t i, j;

	if (!get_addr(c, v, a))
		return;
	for (i = 0; i <= si; i++) {
		const struct lb_service_conf *o = &c->cfg->services[i];
		size_t n = i < si ? o->n_vips : vi;

		for (j = 0; j < n; j++) {
			if (!lb_addr_equal(&o->vips[j], a))
				continue;
			describe_service(c, i, who, sizeof(who));
			err(c, "%s already used by %s", lb_addr_format(a, text, sizeof(text)), who);
			memset(a, 0, sizeof(*a));
			return;
		}
	}
}

static void parse_vips(struct ctx *c, size_t si, json_t *arr)
{
	struct lb_service_conf *svc = &c->cfg->services[si];
	size_t i, saved;
	json_t *v;

	if (!expect_array(c, arr))
		return;
	svc->vips = calloc(json_array_size(arr), sizeof(*svc->vips));
	if (!svc->vips) {
		c->errors.oom = true;
		return;
	}
	svc->n_vips = json_array_size(arr);
	json_array_foreach(arr, i, v) {
		saved = path_push_index(c, i);
		parse_vip(c, si, i, v);
		path_pop(c, saved);
	}
}

/* Returns false when the address is missing or invalid. */
static bool parse_backend(struct ctx *c, struct lb_service_conf *svc, size_t bi, json_t *obj)
{
	struct lb_backend_conf *b = &svc->backends[bi];
	char text[LB_ADDR_STRLEN];
	bool have_addr = false;
	const char *key;
	size_t saved, j;
	long long n;
	json_t *v;

	if (!expect_object(c, obj))
		return false;
	json_object_foreach(obj, key, v) {
		saved = path_push_key(c, key);
		if (!strcmp(key, "address")) {
			have_addr = get_addr(c, v, &b->addr);
			for (j = 0; have_addr && j < bi; j++) {
				if (!lb_addr_equal(&svc->backends[j].addr, &b->addr))
					continue;
				err(c, "%s already listed at backends[%zu]",
				    lb_addr_format(&b->addr, text, sizeof(text)), j);
				memset(&b->addr, 0, sizeof(b->addr));
				break;
			}
		} else if (!strcmp(key, "weight")) {
			if (get_int(c, v, 0, 1000, &n))
				b->weight = n;
		} else {
			err(c, "unknown key");
		}
		path_pop(c, saved);
	}
	if (!json_object_get(obj, "address")) {
		err_missing(c, "address");
		return false;
	}
	return have_addr;
}

/* Returns false when some backend has no usable address. */
static bool parse_backends(struct ctx *c, struct lb_service_conf *svc, json_t *arr)
{
	size_t i, saved;
	bool ok = true;
	json_t *v;

	if (!expect_array(c, arr))
		return false;
	svc->backends = calloc(json_array_size(arr), sizeof(*svc->backends));
	if (!svc->backends) {
		c->errors.oom = true;
		return false;
	}
	svc->n_backends = json_array_size(arr);
	json_array_foreach(arr, i, v) {
		svc->backends[i].weight = 1;
		saved = path_push_index(c, i);
		if (!parse_backend(c, svc, i, v))
			ok = false;
		path_pop(c, saved);
	}
	return ok;
}

/*
 * A VIP can only be served by a backend of its own family: the backend
 * connection is made from the client's address.
 */
static void check_families(struct ctx *c, const struct lb_service_conf *svc)
{
	size_t i, j, saved;
	int family;

	for (i = 0; i < svc->n_vips; i++) {
		family = svc->vips[i].sa.sa_family;
		if (family != AF_INET && family != AF_INET6)
			continue;
		for (j = 0; j < svc->n_backends; j++)
			if (svc->backends[j].addr.sa.sa_family == family)
				break;
		if (j < svc->n_backends)
			continue;
		saved = path_push_key(c, "vips");
		path_push_index(c, i);
		err(c, "no %s backend for this %s VIP", family_name(family), family_name(family));
		path_pop(c, saved);
	}
}

static void parse_service(struct ctx *c, size_t si, json_t *obj)
{
	struct lb_service_conf *svc = &c->cfg->services[si];
	bool backends_ok = false;
	const char *key, *s;
	size_t saved, i;
	long long n;
	json_t *v;

	svc->sched = LB_SCHED_ROUNDROBIN;
	svc->connect_timeout_ms = 3000;
	svc->client_idle_timeout_ms = 300000;
	svc->server_idle_timeout_ms = 300000;
	svc->retries = 2;
	if (!expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = path_push_key(c, key);
		if (!strcmp(key, "name")) {
			svc->name = get_name(c, v, "_.-", " (1..64 characters of A-Za-z0-9_.-)");
			for (i = 0; svc->name && i < si; i++) {
				if (!c->cfg->services[i].name ||
				    strcmp(c->cfg->services[i].name, svc->name))
					continue;
				err(c, "duplicate service name \"%s\" (also services[%zu])",
				    svc->name, i);
				break;
			}
		} else if (!strcmp(key, "vips")) {
			parse_vips(c, si, v);
		} else if (!strcmp(key, "backends")) {
			backends_ok = parse_backends(c, svc, v);
		} else if (!strcmp(key, "scheduler")) {
			s = get_string(c, v);
			if (s && strcmp(s, "roundrobin"))
				err_quoted(c, "unknown scheduler", s, " (expected roundrobin)");
		} else if (!strcmp(key, "connect_timeout_ms")) {
			get_timeout(c, v, &svc->connect_timeout_ms);
		} else if (!strcmp(key, "idle_timeout_ms")) {
			if (get_timeout(c, v, &svc->client_idle_timeout_ms))
				svc->server_idle_timeout_ms = svc->client_idle_timeout_ms;
		} else if (!strcmp(key, "retries")) {
			if (get_int(c, v, 0, 16, &n))
				svc->retries = n;
		} else {
			err(c, "unknown key");
		}
		path_pop(c, saved);
	}
	if (!json_object_get(obj, "name"))
		err_missing(c, "name");
	if (!json_object_get(obj, "vips"))
		err_missing(c, "vips");
	if (!json_object_get(obj, "backends"))
		err_missing(c, "backends");
	/* With a bad backend address the family check would only add noise. */
	if (backends_ok)
		check_families(c, svc);
}

static void parse_services(struct ctx *c, json_t *arr)
{
	struct lb_config *cfg = c->cfg;
	size_t i, saved;
	json_t *v;

	if (!expect_array(c, arr))
		return;
	cfg->services = calloc(json_array_size(arr), sizeof(*cfg->services));
	if (!cfg->services) {
		c->errors.oom = true;
		return;
	}
	/* Counted one by one so that VIP checks only see parsed services. */
	c->services = arr;
	json_array_foreach(arr, i, v) {
		cfg->n_services = i + 1;
		saved = path_push_index(c, i);
		parse_service(c, i, v);
		path_pop(c, saved);
	}
}

static void parse_root(struct ctx *c, json_t *root)
{
	struct lb_config *cfg = c->cfg;
	const char *key;
	long long n;
	size_t saved;
	json_t *v;

	if (!expect_object(c, root))
		return;
	json_object_foreach(root, key, v) {
		saved = path_push_key(c, key);
		if (!strcmp(key, "workers")) {
			if (get_int(c, v, 0, 256, &n))
				cfg->workers = n;
		} else if (!strcmp(key, "control")) {
			parse_control(c, v);
		} else if (!strcmp(key, "intercept")) {
			parse_intercept(c, v);
		} else if (!strcmp(key, "drain_timeout_ms")) {
			get_timeout(c, v, &cfg->drain_timeout_ms);
		} else if (!strcmp(key, "services")) {
			parse_services(c, v);
		} else {
			err(c, "unknown key");
		}
		path_pop(c, saved);
	}
	if (!json_object_get(root, "services"))
		err_missing(c, "services");
}

static struct lb_config *config_alloc(void)
{
	struct lb_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->control_path = strdup(DEFAULT_CONTROL_PATH);
	cfg->intercept.port = 50080;
	cfg->intercept.mark = 1;
	cfg->intercept.table = strdup(DEFAULT_TABLE);
	cfg->intercept.route_table = 100;
	cfg->intercept.rule_priority = 100;
	cfg->drain_timeout_ms = 10000;
	if (!cfg->control_path || !cfg->intercept.table) {
		lb_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Hands the collected errors to the caller, or a fallback when memory ran out. */
static char *take_errors(struct sbuf *b)
{
	char *s;

	if (!b->oom)
		return b->s;
	free(b->s);
	s = strdup("(root): out of memory\n");
	return s;
}

static struct lb_config *parse_buffer(const char *buf, size_t len, char **errors)
{
	struct ctx c = { 0 };
	json_error_t jerr;
	json_t *root;

	*errors = NULL;
	/* Duplicate keys would otherwise silently keep the last value. */
	root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		sb_printf(&c.errors, "line %d, column %d: ", jerr.line, jerr.column);
		sb_escape(&c.errors, jerr.text, false);
		sb_printf(&c.errors, "\n");
		*errors = take_errors(&c.errors);
		return NULL;
	}
	c.cfg = config_alloc();
	if (!c.cfg)
		c.errors.oom = true;
	else
		parse_root(&c, root);
	json_decref(root);
	free(c.path.s);
	if (c.n_errors || c.errors.oom) {
		lb_config_free(c.cfg);
		*errors = take_errors(&c.errors);
		return NULL;
	}
	free(c.errors.s);
	return c.cfg;
}

struct lb_config *lb_config_parse(const char *text, char **errors)
{
	return parse_buffer(text, strlen(text), errors);
}

static int read_file(const char *path, char **out, size_t *out_len)
{
	size_t len = 0, cap = 4096;
	char *buf = NULL, *p;
	int fd, ret = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	for (;;) {
		if (len == cap || !buf) {
			if (len >= CONFIG_MAX_BYTES) {
				ret = -EFBIG;
				goto cleanup;
			}
			cap = buf ? cap * 2 : cap;
			p = realloc(buf, cap);
			if (!p) {
				ret = -ENOMEM;
				goto cleanup;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			ret = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		len += n;
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
cleanup:
	free(buf);
	close(fd);
	return ret;
}

struct lb_config *lb_config_load(const char *path, char **errors)
{
	struct sbuf b = { 0 };
	struct lb_config *cfg;
	size_t len = 0;
	char *buf = NULL;
	int ret;

	ret = read_file(path, &buf, &len);
	if (ret) {
		sb_escape(&b, path, false);
		sb_printf(&b, ": %s\n", strerror(-ret));
		*errors = take_errors(&b);
		return NULL;
	}
	cfg = parse_buffer(buf, len, errors);
	free(buf);
	return cfg;
}

void lb_config_free(struct lb_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].name);
		free(cfg->services[i].vips);
		free(cfg->services[i].backends);
	}
	free(cfg->services);
	free(cfg->control_path);
	free(cfg->intercept.table);
	free(cfg);
}

const struct lb_service_conf *lb_config_find_service(const struct lb_config *cfg,
						     const union lb_sockaddr *addr)
{
	union lb_sockaddr a = *addr;
	size_t i, j;

	lb_addr_unmap(&a);
	for (i = 0; i < cfg->n_services; i++)
		for (j = 0; j < cfg->services[i].n_vips; j++)
			if (lb_addr_equal(&cfg->services[i].vips[j], &a))
				return &cfg->services[i];
	return NULL;
}

int lb_config_has_family(const struct lb_config *cfg, int family)
{
	size_t i, j;

	for (i = 0; i < cfg->n_services; i++)
		for (j = 0; j < cfg->services[i].n_vips; j++)
			if (cfg->services[i].vips[j].sa.sa_family == family)
				return 1;
	return 0;
}
