// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "lb/bigmem.h"
#include "lb/config.h"
#include "lb/config_priv.h"
#include "lb/hash.h"
#include "lb/json.h"
#include "lb/log.h"
#include "lb/vipmap.h"

#define DEFAULT_CONTROL_PATH	"/run/lb/lb.sock"
#define DEFAULT_CONTROL_MODE	0600
#define DEFAULT_TABLE		"lb"
#define GROUP_MAX_LEN		32
#define DEFAULT_USER		"nobody"
#define CONFIG_MAX_BYTES	(16 << 20)

/*
 * control.mode. JSON has no octal literals, so a mode is either a string of
 * 1..4 octal digits ("0660", "660") or an integer holding the mode's value
 * (432 for 0660). Decimal 660 is above 0777 and refused with a hint; smaller
 * decimal look-alikes cannot be told apart, which docs/config.md warns about.
 */
static void parse_mode(struct lb_config_ctx *c, json_t *v)
{
	unsigned int mode = 0;
	const char *s;
	long long n;
	size_t i;

	if (json_is_integer(v)) {
		n = json_integer_value(v);
		if (n < 0 || n > 0777)
			lb_config_err(c, "%lld out of range (0..511); write an octal mode as a "
				      "string, like \"0660\"", n);
		else
			c->cfg->control_mode = n;
		return;
	}
	if (!json_is_string(v)) {
		lb_config_err(c, "expected an integer or a string of octal digits");
		return;
	}
	s = json_string_value(v);
	for (i = 0; s[i] >= '0' && s[i] <= '7' && i < 4; i++)
		mode = mode * 8 + (s[i] - '0');
	if (i == 0 || s[i]) {
		lb_config_err_quoted(c, "invalid mode", s, " (expected octal digits, like \"0660\")");
		return;
	}
	if (mode > 0777) {
		lb_config_err_quoted(c, "mode", s, " out of range (0..0777)");
		return;
	}
	c->cfg->control_mode = mode;
}

/*
 * Looks up the group (or user) name, 1..32 characters, in the host's
 * database into *gr (or *pw); reports at the current path why it cannot be
 * had, with tail after the quoted name when it is unknown.
 */
static bool lookup_id(struct lb_config_ctx *c, bool group, const char *name, const char *tail,
		      struct passwd **pw, struct group **gr)
{
	const char *kind = group ? "group" : "user";
	char what[32], why[96];
	int e;

	if (!*name || strlen(name) > GROUP_MAX_LEN) {
		snprintf(what, sizeof(what), "invalid %s name", kind);
		lb_config_err_quoted(c, what, name, " (1..32 characters)");
		return false;
	}
	errno = 0;
	if (group)
		*gr = getgrnam(name);
	else
		*pw = getpwnam(name);
	if (group ? *gr != NULL : *pw != NULL)
		return true;
	e = errno;
	/* glibc leaves errno 0 (or ENOENT) when there is no such name; these mean "cannot tell". */
	if (e == ENOMEM || e == EIO || e == EMFILE || e == ENFILE || e == EINTR || e == EAGAIN) {
		snprintf(what, sizeof(what), "cannot look up %s", kind);
		snprintf(why, sizeof(why), ": %s", strerror(e));
		lb_config_err_quoted(c, what, name, why);
	} else {
		snprintf(what, sizeof(what), "unknown %s", kind);
		lb_config_err_quoted(c, what, name, tail);
	}
	return false;
}

/* control.group: must exist now, so a typo fails the config, not the start. */
static void parse_group(struct lb_config_ctx *c, json_t *v)
{
	const char *s = lb_config_get_string(c, v);
	struct group *gr;
	char *copy;

	if (!s || !lookup_id(c, true, s, "", NULL, &gr))
		return;
	copy = strdup(s);
	if (!copy) {
		lb_config_oom(c);
		return;
	}
	free(c->cfg->control_group);
	c->cfg->control_group = copy;
}

static void parse_control(struct lb_config_ctx *c, json_t *obj)
{
	const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	const char *key, *s;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "path")) {
			s = lb_config_get_string(c, v);
			if (s && s[0] != '/') {
				lb_config_err(c, "must be an absolute path");
			} else if (s && strlen(s) > max) {
				lb_config_err(c, "longer than %zu bytes", max);
			} else if (s) {
				free(c->cfg->control_path);
				c->cfg->control_path = strdup(s);
				if (!c->cfg->control_path)
					lb_config_oom(c);
			}
		} else if (!strcmp(key, "mode")) {
			parse_mode(c, v);
		} else if (!strcmp(key, "group")) {
			parse_group(c, v);
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
}

/* Tables 253..255 are the kernel's own; taking one over would break routing. */
bool lb_config_route_table_free(struct lb_config_ctx *c, long long n)
{
	static const char *const reserved[] = { "default", "main", "local" };

	if (n < 253 || n > 255)
		return true;
	lb_config_err(c, "%lld is reserved (the \"%s\" routing table)", n, reserved[n - 253]);
	return false;
}

static void parse_intercept(struct lb_config_ctx *c, json_t *obj)
{
	const char *key;
	long long n;
	size_t saved;
	json_t *v;
	char *s;

	if (!lb_config_expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "port")) {
			if (lb_config_get_int(c, v, 1, 65535, &n))
				c->cfg->intercept.port = n;
		} else if (!strcmp(key, "mark")) {
			if (lb_config_get_int(c, v, 1, 0xffffffffLL, &n))
				c->cfg->intercept.mark = n;
		} else if (!strcmp(key, "table")) {
			s = lb_config_get_name(c, v, "_-", " (1..64 characters of A-Za-z0-9_-)");
			if (s) {
				free(c->cfg->intercept.table);
				c->cfg->intercept.table = s;
			}
		} else if (!strcmp(key, "route_table")) {
			if (lb_config_get_int(c, v, 1, 0xffffffffLL, &n) &&
			    lb_config_route_table_free(c, n))
				c->cfg->intercept.route_table = n;
		} else if (!strcmp(key, "rule_priority")) {
			/* 0, 32766 and 32767 hold the local, main and default rules. */
			if (lb_config_get_int(c, v, 1, 32765, &n))
				c->cfg->intercept.rule_priority = n;
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
}

static void parse_log_level(struct lb_config_ctx *c, json_t *v)
{
	static const char *const names[] = {
		[LB_LOG_ERR] = "error",
		[LB_LOG_WARN] = "warning",
		[LB_LOG_INFO] = "info",
		[LB_LOG_DEBUG] = "debug",
	};
	const char *s = lb_config_get_string(c, v);
	unsigned int i;

	if (!s)
		return;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			c->cfg->log_level = i;
			return;
		}
	}
	lb_config_err_quoted(c, "unknown log level", s,
			     " (expected error, warning, info or debug)");
}

static void get_bool(struct lb_config_ctx *c, json_t *v, bool *out)
{
	if (!json_is_boolean(v)) {
		lb_config_err(c, "expected true or false");
		return;
	}
	*out = json_is_true(v);
}

/*
 * "user" and "group", whom the workers run as: resolved now, like
 * control.group, so a name this host does not know fails the config (and a
 * reload), not every worker. tail follows the quoted name in errors.
 * Returns whether cfg now holds name and its id.
 */
static bool resolve_id(struct lb_config_ctx *c, bool group, const char *name, const char *tail)
{
	struct passwd *pw = NULL;
	struct group *gr = NULL;
	char *copy;

	if (!lookup_id(c, group, name, tail, &pw, &gr))
		return false;
	copy = strdup(name);
	if (!copy) {
		lb_config_oom(c);
		return false;
	}
	if (group) {
		free(c->cfg->group);
		c->cfg->group = copy;
		c->cfg->gid = gr->gr_gid;
	} else {
		free(c->cfg->user);
		c->cfg->user = copy;
		c->cfg->uid = pw->pw_uid;
		c->user_gid = pw->pw_gid;
	}
	return true;
}

static void parse_id(struct lb_config_ctx *c, json_t *v, bool group)
{
	const char *s = lb_config_get_string(c, v);

	if (s)
		resolve_id(c, group, s, "");
}

/* "user" was left out: its default must exist on this host too. */
static void default_user(struct lb_config_ctx *c, json_t *root)
{
	size_t saved;

	if (json_object_get(root, "user"))
		return;
	saved = lb_config_path_key(c, "user");
	resolve_id(c, false, DEFAULT_USER,
		   " (the default; set \"user\" to an existing user)");
	lb_config_path_pop(c, saved);
}

/*
 * "group" was left out: the user's primary group, as login would give it
 * (nobody's is nogroup on Debian, nobody on Fedora), named by its gid when
 * the group database has no name for it.
 */
static void default_group(struct lb_config_ctx *c, json_t *root)
{
	struct lb_config *cfg = c->cfg;
	struct group *gr;
	char *name;

	/* No user: its error is already reported and the config fails. */
	if (json_object_get(root, "group") || !cfg->user)
		return;
	gr = getgrgid(c->user_gid);
	if (gr)
		name = strdup(gr->gr_name);
	else if (asprintf(&name, "%u", (unsigned int)c->user_gid) == -1)
		name = NULL;
	if (!name) {
		lb_config_oom(c);
		return;
	}
	free(cfg->group);
	cfg->group = name;
	cfg->gid = c->user_gid;
}

/*
 * Workers drop their supplementary groups, so only "group" can let them
 * reach the control socket through its group bits: refuse it.
 */
static void check_control_group(struct lb_config_ctx *c)
{
	const struct lb_config *cfg = c->cfg;
	struct group *gr;
	size_t saved;

	if (!cfg->control_group || !cfg->group || !(cfg->control_mode & 0060))
		return;
	gr = getgrnam(cfg->control_group);
	if (!gr || gr->gr_gid != cfg->gid)
		return;
	saved = lb_config_path_key(c, "control");
	lb_config_path_key(c, "group");
	lb_config_err_quoted(c, "group", cfg->control_group,
			     " is also the workers' \"group\": any worker could use the control socket");
	lb_config_path_pop(c, saved);
}

/* A count, or "auto": as many as "connections" needs (lb_limits_workers). */
static void parse_workers(struct lb_config_ctx *c, json_t *v)
{
	long long n;

	if (json_is_string(v)) {
		if (!strcmp(json_string_value(v), "auto"))
			c->cfg->workers_auto = true;
		else
			lb_config_err_quoted(c, "expected an integer (0..256) or \"auto\", not",
					     json_string_value(v), "");
		return;
	}
	if (!json_is_integer(v)) {
		lb_config_err(c, "expected an integer (0..%d) or \"auto\"", LB_CONFIG_WORKERS_MAX);
		return;
	}
	if (lb_config_get_int(c, v, 0, LB_CONFIG_WORKERS_MAX, &n))
		c->cfg->workers = n;
}

static void parse_root(struct lb_config_ctx *c, json_t *root)
{
	struct lb_config *cfg = c->cfg;
	const char *key;
	long long n;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, root))
		return;
	json_object_foreach(root, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "workers")) {
			parse_workers(c, v);
		} else if (!strcmp(key, "connections")) {
			if (lb_config_get_int(c, v, 1, LB_CONFIG_CONNECTIONS_MAX, &n))
				cfg->connections = n;
		} else if (!strcmp(key, "control")) {
			parse_control(c, v);
		} else if (!strcmp(key, "intercept")) {
			parse_intercept(c, v);
		} else if (!strcmp(key, "http")) {
			lb_config_parse_http(c, v);
		} else if (!strcmp(key, "drain_timeout_ms")) {
			lb_config_get_timeout(c, v, &cfg->drain_timeout_ms);
		} else if (!strcmp(key, "watchdog_ms")) {
			/* 0 turns it off; below half a second a busy batch could look hung. */
			if (!lb_config_get_int(c, v, 0, 3600000, &n))
				;
			else if (n && n < 500)
				lb_config_err(c, "%lld is below 500 (0 turns the watchdog off)", n);
			else
				cfg->watchdog_ms = n;
		} else if (!strcmp(key, "log_level")) {
			parse_log_level(c, v);
		} else if (!strcmp(key, "log_syslog")) {
			get_bool(c, v, &cfg->log_syslog);
		} else if (!strcmp(key, "access_log")) {
			get_bool(c, v, &cfg->access_log);
		} else if (!strcmp(key, "user")) {
			parse_id(c, v, false);
		} else if (!strcmp(key, "group")) {
			parse_id(c, v, true);
		} else if (!strcmp(key, "services")) {
			lb_config_parse_services(c, v);
		} else if (!strcmp(key, "announce")) {
			lb_config_parse_announce(c, v);
		} else if (!strcmp(key, "ownership")) {
			lb_config_parse_ownership(c, v);
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	default_user(c, root);
	default_group(c, root);
	check_control_group(c);
	lb_config_check_announce(c);
	if (!json_object_get(root, "services")) {
		lb_config_err_missing(c, "services");
	} else {
		lb_config_check_services(c);
		lb_config_check_ownership(c);
	}
}

static struct lb_config *config_alloc(void)
{
	struct lb_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->control_path = strdup(DEFAULT_CONTROL_PATH);
	cfg->control_mode = DEFAULT_CONTROL_MODE;
	cfg->intercept.port = 50080;
	cfg->intercept.mark = 1;
	cfg->intercept.table = strdup(DEFAULT_TABLE);
	cfg->intercept.route_table = 100;
	cfg->intercept.rule_priority = 100;
	cfg->drain_timeout_ms = 10000;
	cfg->watchdog_ms = 3000;
	cfg->log_level = LB_LOG_INFO;
	if (!cfg->control_path || !cfg->intercept.table) {
		lb_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Hands the collected errors to the caller, or a fallback when memory ran out. */
static char *take_errors(struct lb_str *b)
{
	char *s;

	if (!b->oom)
		return b->s;
	free(b->s);
	s = strdup("(root): out of memory\n");
	return s;
}

struct load_opts {
	bool keep_tree;			/* cfg->tree: the JSON, to free on another thread */
	bool keep_source;		/* cfg->source, for the next reload (text given by the caller) */
	const struct lb_config *prev;	/* the running config, whose services may be copied */
};

static struct lb_config *parse_buffer(const char *buf, size_t len, char **errors,
				      const struct load_opts *o)
{
	struct lb_config_ctx c = { .prev = o->prev };
	struct lb_config_reread r;
	struct load_opts again;
	bool hooked = false;
	json_error_t jerr;
	json_t *root;

	*errors = NULL;
	if (o->keep_source)
		c.source = calloc(1, sizeof(*c.source));
	lb_config_reread_init(&r, &c, buf);
	/*
	 * json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES), faster: duplicate
	 * keys would otherwise silently keep the last value. With a source
	 * kept, unchanged services are skipped and every service's place noted.
	 */
	root = c.source ? lb_json_loadb_hook(buf, len, &jerr, &r.hook, &hooked)
			: lb_json_loadb(buf, len, &jerr);
	lb_config_reread_fini(&r);
	if (!hooked) {
		/* jansson read it: every service is in the tree, and their places are not known. */
		lb_config_source_free(c.source);
		c.source = NULL;
	}
	if (!root) {
		lb_str_printf(&c.errors, "line %d, column %d: ", jerr.line, jerr.column);
		lb_str_escape(&c.errors, jerr.text, 0);
		lb_str_printf(&c.errors, "\n");
		*errors = take_errors(&c.errors);
		return NULL;
	}
	c.cfg = config_alloc();
	if (!c.cfg)
		c.errors.oom = true;
	else
		parse_root(&c, root);
	if (o->keep_tree && c.cfg)
		c.cfg->tree = root;
	else
		json_decref(root);
	if (c.source && c.source->copied && (c.n_errors || c.errors.oom || c.warnings.oom)) {
		/* Errors in the words and at the places a whole read gives them. */
		lb_config_free(c.cfg);
		free(c.errors.s);
		free(c.warnings.s);
		lb_config_source_free(c.source);
		again = *o;
		again.prev = NULL;
		return parse_buffer(buf, len, errors, &again);
	}
	if (!c.cfg || c.n_errors || c.errors.oom || c.warnings.oom) {
		lb_config_free(c.cfg);
		free(c.warnings.s);
		lb_config_source_free(c.source);
		if (c.warnings.oom)
			c.errors.oom = true;
		*errors = take_errors(&c.errors);
		return NULL;
	}
	free(c.errors.s);
	c.cfg->warnings = c.warnings.s;
	/* Each span is a service's: anything else (no "services" array) keeps no source. */
	if (c.source && c.source->n_spans != c.cfg->n_services) {
		lb_config_source_free(c.source);
		c.source = NULL;
	}
	c.cfg->source = c.source;
	return c.cfg;
}

struct lb_config *lb_config_parse(const char *text, char **errors)
{
	const struct load_opts o = { 0 };

	return parse_buffer(text, strlen(text), errors, &o);
}

/*
 * The file's bytes in *out (*out_len of them, in lb_bigmem_alloc(*out_cap)
 * memory: a reload keeps it, the master's alone). Returns 0 or -errno.
 */
static int read_file(const char *path, char **out, size_t *out_len, size_t *out_cap)
{
	size_t len = 0, cap = 4096, next;
	char *buf = NULL, *p;
	int fd, ret = 0;
	struct stat st;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	/*
	 * A regular file's size, and one byte to see its end: growing from
	 * 4 KB copied a 4 MB config eleven times (5 ms of a reload).
	 */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < CONFIG_MAX_BYTES)
		cap = (size_t)st.st_size + 1;
	buf = lb_bigmem_alloc(cap, true);
	if (!buf) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		if (len == cap) {
			if (len >= CONFIG_MAX_BYTES) {
				ret = -EFBIG;
				goto cleanup;
			}
			/* A file that grew while read: at most CONFIG_MAX_BYTES, as ever. */
			next = 2 * cap < CONFIG_MAX_BYTES ? 2 * cap : CONFIG_MAX_BYTES;
			p = lb_bigmem_alloc(next, true);
			if (!p) {
				ret = -ENOMEM;
				goto cleanup;
			}
			memcpy(p, buf, len);
			lb_bigmem_free(buf, cap);
			buf = p;
			cap = next;
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
	*out_cap = cap;
	buf = NULL;
cleanup:
	lb_bigmem_free(buf, cap);
	close(fd);
	return ret;
}

static struct lb_config *load(const char *path, char **errors, const struct load_opts *o)
{
	struct lb_str b = { 0 };
	struct lb_config *cfg;
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int ret;

	ret = read_file(path, &buf, &len, &cap);
	if (ret) {
		lb_str_escape(&b, path, 0);
		if (ret == -EFBIG)
			lb_str_printf(&b, ": %s (a config must be under %d MB)\n", strerror(-ret),
				      CONFIG_MAX_BYTES >> 20);
		else
			lb_str_printf(&b, ": %s\n", strerror(-ret));
		*errors = take_errors(&b);
		return NULL;
	}
	cfg = parse_buffer(buf, len, errors, o);
	if (cfg && cfg->source) {
		cfg->source->text = buf;
		cfg->source->len = len;
		cfg->source->text_cap = cap;
		buf = NULL;
	}
	lb_bigmem_free(buf, cap);
	return cfg;
}

struct lb_config *lb_config_load(const char *path, char **errors)
{
	const struct load_opts o = { 0 };

	return load(path, errors, &o);
}

struct lb_config *lb_config_load_source(const char *path, char **errors)
{
	const struct load_opts o = { .keep_source = true };

	return load(path, errors, &o);
}

struct lb_config *lb_config_reload(const char *path, const struct lb_config *running,
				   char **errors)
{
	const struct load_opts o = { .keep_source = true, .prev = running };

	return load(path, errors, &o);
}

struct lb_config *lb_config_load_log(const char *path, const char *prefix, char *msg, size_t len)
{
	return lb_config_reload_log(path, NULL, prefix, msg, len);
}

struct lb_config *lb_config_reload_log(const char *path, const struct lb_config *running,
				       const char *prefix, char *msg, size_t len)
{
	const struct load_opts o = { .keep_tree = true, .keep_source = true, .prev = running };
	char *errors = NULL;
	struct lb_config *cfg = load(path, &errors, &o);
	struct lb_str one;
	const char *p;

	if (cfg)
		return cfg;
	one = lb_str_fixed(msg, len);
	lb_str_printf(&one, "%s: ", path);
	for (p = errors ? errors : "invalid\n"; *p;) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		lb_err("%s%s: %.*s", prefix, path, n, p);
		lb_str_printf(&one, "%s%.*s", p == errors ? "" : ";", n, p);
		p += n + (nl ? 1 : 0);
	}
	free(errors);
	return NULL;
}

struct json_t *lb_config_take_tree(struct lb_config *cfg)
{
	json_t *tree = cfg ? cfg->tree : NULL;

	if (cfg)
		cfg->tree = NULL;
	return tree;
}

void lb_config_tree_free(struct json_t *tree)
{
	json_decref(tree);
}

void lb_config_drop_tree(struct lb_config *cfg)
{
	lb_config_tree_free(lb_config_take_tree(cfg));
}

void lb_config_free(struct lb_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	lb_config_drop_tree(cfg);
	lb_config_source_free(cfg->source);
	for (i = 0; i < cfg->n_services; i++)
		lb_config_service_free(&cfg->services[i]);
	free(cfg->services);
	free(cfg->by_name);
	lb_vipmap_free(cfg->vipmap);
	free(cfg->control_path);
	free(cfg->control_group);
	free(cfg->http.allow);
	free(cfg->intercept.table);
	free(cfg->announce.device);
	lb_config_free_ownership(cfg);
	free(cfg->user);
	free(cfg->group);
	free(cfg->warnings);
	free(cfg);
}

const struct lb_service_conf *lb_config_find_service_proto(const struct lb_config *cfg,
							   const union lb_sockaddr *addr,
							   enum lb_proto proto)
{
	union lb_sockaddr a = *addr;
	const struct lb_vipmap_vip *v;

	lb_addr_unmap(&a);
	v = lb_vipmap_find(cfg->vipmap, proto, &a);
	return v ? &cfg->services[v->service] : NULL;
}

bool lb_config_vip_single(const struct lb_service_conf *svc, size_t k)
{
	uint8_t host = svc->vips[k].sa.sa_family == AF_INET6 ? 128 : 32;

	return svc->vip_plen[k] == host && svc->vip_port_last[k] == lb_addr_port(&svc->vips[k]);
}

const char *lb_config_vip_format(const struct lb_service_conf *svc, size_t k, char *buf,
				 size_t len)
{
	const union lb_sockaddr *a = &svc->vips[k];
	uint8_t host = a->sa.sa_family == AF_INET6 ? 128 : 32;
	char ip[LB_ADDR_STRLEN], plen[8] = "", last[8] = "";

	lb_addr_format_ip(a, ip, sizeof(ip));
	if (svc->vip_plen[k] != host)
		snprintf(plen, sizeof(plen), "/%u", svc->vip_plen[k]);
	if (svc->vip_port_last[k] != lb_addr_port(a))
		snprintf(last, sizeof(last), "-%u", svc->vip_port_last[k]);
	snprintf(buf, len, a->sa.sa_family == AF_INET6 ? "[%s%s]:%u%s" : "%s%s:%u%s", ip, plen,
		 lb_addr_port(a), last);
	return buf;
}

static size_t name_hash(const char *s)
{
	uint64_t h = lb_hash_fnv1a(LB_HASH_FNV_BASIS, s, strlen(s));

	return (size_t)(h ^ h >> 29);
}

/* Where name is in cfg->by_name, or the free entry where it would go. */
static size_t name_slot(const struct lb_config *cfg, const char *name)
{
	size_t k = name_hash(name) & cfg->by_name_mask;

	while (cfg->by_name[k] != UINT32_MAX && strcmp(cfg->services[cfg->by_name[k]].name, name))
		k = (k + 1) & cfg->by_name_mask;
	return k;
}

long lb_config_service_index(const struct lb_config *cfg, const char *name)
{
	size_t k;

	if (!cfg->by_name) {
		/* A config not built by the parser: look at each. */
		for (size_t i = 0; i < cfg->n_services; i++)
			if (cfg->services[i].name && !strcmp(cfg->services[i].name, name))
				return (long)i;
		return -1;
	}
	k = name_slot(cfg, name);
	return cfg->by_name[k] == UINT32_MAX ? -1 : (long)cfg->by_name[k];
}

int lb_config_index_name(struct lb_config *cfg, size_t i)
{
	size_t k = name_slot(cfg, cfg->services[i].name);

	if (cfg->by_name[k] != UINT32_MAX)
		return (int)cfg->by_name[k];
	cfg->by_name[k] = (uint32_t)i;
	return -1;
}

const struct lb_service_conf *lb_config_find_service(const struct lb_config *cfg,
						     const union lb_sockaddr *addr)
{
	return lb_config_find_service_proto(cfg, addr, LB_PROTO_TCP);
}

bool lb_config_has_vip(const struct lb_config *cfg, enum lb_proto proto, int family)
{
	for (size_t i = 0; i < cfg->n_services; i++) {
		if (!(cfg->services[i].protocols & proto))
			continue;
		for (size_t j = 0; j < cfg->services[i].n_vips; j++)
			if (cfg->services[i].vips[j].sa.sa_family == family)
				return true;
	}
	return false;
}

bool lb_config_has_family(const struct lb_config *cfg, int family)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		for (size_t j = 0; j < cfg->services[i].n_vips; j++)
			if (cfg->services[i].vips[j].sa.sa_family == family)
				return true;
	return false;
}
