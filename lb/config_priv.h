/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_CONFIG_PRIV_H
#define LB_CONFIG_PRIV_H

/*
 * Shared by the config parser's files: config_json.c (paths, error lines,
 * value getters) below config.c (document, control, intercept),
 * config_service.c (services, VIPs, backends), config_health.c (a service's
 * health checks), config_quic.c (a service's "quic" object),
 * config_http.c (the "http" object), config_announce.c (the "announce"
 * object) and config_owner.c (the "ownership" object), which all call
 * down into it and into each other only through the entry points at the
 * end, from the document down. Not part of the API: only those files
 * include it.
 */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "lb/config.h"
#include "lb/json.h"
#include "lb/str.h"

#define LB_CONFIG_NAME_MAX	64
#define LB_CONFIG_TIMEOUT_MAX	86400000

/* Deeper than any config key goes; a deeper path is cut in messages. */
#define LB_CONFIG_PATH_MAX	16

/* One step of a JSON path: an object's key, or (key NULL) an array's index. */
struct lb_config_path_part {
	const char *key;		/* the JSON's own, or a literal: it outlives the step */
	size_t index;
};

/*
 * Parse state: the config being filled in, the JSON path of the value being
 * looked at ("services[0].vips[1]") and the error lines found so far. The
 * path is kept as its steps and only written out for a message: 100,000
 * VIPs cost no formatting.
 */
struct lb_config_ctx {
	struct lb_config *cfg;
	json_t *services;		/* for naming earlier services in messages */
	struct lb_config_path_part path[LB_CONFIG_PATH_MAX];
	size_t depth;
	struct lb_str errors;
	unsigned int n_errors;
	struct lb_str warnings;	/* suspicious but workable: the config still loads */
	gid_t user_gid;			/* primary group of cfg->user, once that is resolved */
	/* A reload's running config: source->spans[i].from indexes its services. */
	const struct lb_config *prev;
	struct lb_config_source *source;	/* being kept; NULL: none */
};

/* Path: each push returns the depth to hand back to lb_config_path_pop(). */
size_t lb_config_path_key(struct lb_config_ctx *c, const char *key);
size_t lb_config_path_index(struct lb_config_ctx *c, size_t i);
void lb_config_path_pop(struct lb_config_ctx *c, size_t saved);

/* Adds "path: message\n" for the value at the current path. */
void lb_config_err(struct lb_config_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Adds "path: message\n" to the warnings: the config loads, the operator is told. */
void lb_config_warn(struct lb_config_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Adds "path: what "text"tail\n", quoting text safely (escaped, cut when long). */
void lb_config_err_quoted(struct lb_config_ctx *c, const char *what, const char *text,
			  const char *tail);
/* Adds "path.key: missing required key\n". */
void lb_config_err_missing(struct lb_config_ctx *c, const char *key);
/* Records that memory ran out; the parse then fails with one line saying so. */
void lb_config_oom(struct lb_config_ctx *c);

/*
 * Value getters: each reports its own error at the current path and returns
 * false (NULL) on a wrong type or value, leaving *out alone.
 */
bool lb_config_get_int(struct lb_config_ctx *c, json_t *v, long long min, long long max,
		       long long *out);
bool lb_config_get_timeout(struct lb_config_ctx *c, json_t *v, unsigned int *out);
const char *lb_config_get_string(struct lb_config_ctx *c, json_t *v);
/* An owned copy of a valid_name() string. */
char *lb_config_get_name(struct lb_config_ctx *c, json_t *v, const char *extra,
			 const char *rule);
bool lb_config_get_addr(struct lb_config_ctx *c, json_t *v, union lb_sockaddr *out);
bool lb_config_expect_object(struct lb_config_ctx *c, json_t *v);
/* Array of at least one element; element errors are the caller's. */
bool lb_config_expect_array(struct lb_config_ctx *c, json_t *v);
/*
 * Checks that arr is a non-empty array and returns a zeroed array of as
 * many elements of size bytes, owned by the caller; NULL (error recorded)
 * otherwise.
 */
void *lb_config_alloc_array(struct lb_config_ctx *c, json_t *arr, size_t size);

/* 1..LB_CONFIG_NAME_MAX characters of A-Za-z0-9 and extra. */
bool lb_config_valid_name(const char *s, const char *extra);

/* Tables 253..255 are the kernel's: false (error recorded) for those. */
bool lb_config_route_table_free(struct lb_config_ctx *c, long long n);

/* Parses the "announce" block (config_announce.c). */
void lb_config_parse_announce(struct lb_config_ctx *c, json_t *obj);
/* Checks announce against the rest of the config, once all of it is parsed. */
void lb_config_check_announce(struct lb_config_ctx *c);

/* Parses the "ownership" block (config_owner.c). */
void lb_config_parse_ownership(struct lb_config_ctx *c, json_t *obj);
/* Checks ownership against the rest of the config (marks, tables, VIP families). */
void lb_config_check_ownership(struct lb_config_ctx *c);
/* Frees what lb_config_parse_ownership() allocated. */
void lb_config_free_ownership(struct lb_config *cfg);

/* Parses the "http" object into c->cfg->http (config_http.c). */
void lb_config_parse_http(struct lb_config_ctx *c, json_t *obj);

/*
 * An owned array of the prefixes in arr (a non-empty array of strings such
 * as "198.18.0.0/15"), replacing *out; with disjoint, a prefix inside
 * another (or listed twice) is an error too. False after the errors.
 */
bool lb_config_get_prefixes(struct lb_config_ctx *c, json_t *arr, bool disjoint,
			    struct lb_prefix **out, size_t *n_out);
/* Parses svc's "clients" object (config_clients.c), once its protocols and VIPs are. */
void lb_config_parse_clients(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *obj);
void lb_config_clients_free(struct lb_clients_conf *cl);

/* Parses a service's "health" object into h, over its defaults (config_health.c). */
void lb_config_parse_health(struct lb_config_ctx *c, struct lb_health_conf *h, json_t *obj);
/* Parses the "services" array into c->cfg (config_service.c). */
void lb_config_parse_services(struct lb_config_ctx *c, json_t *arr);
/* Enters services[i] (named) in cfg->by_name; returns the index of an earlier one of that name (left as it is), or -1. */
int lb_config_index_name(struct lb_config *cfg, size_t i);
/*
 * Checks across services and sections, once everything is parsed: backends
 * that are a VIP or the intercept listener, services nobody can reach.
 */
void lb_config_check_services(struct lb_config_ctx *c);
/*
 * The "quic" object of a UDP service (config_quic.c): parsed before its
 * backends, whose "quic_server_id" it gives a length; then, once the
 * backends are parsed, lb_config_quic_finish refuses two backends with one
 * server ID and builds the lookup index.
 */
void lb_config_parse_quic(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *obj);
void lb_config_parse_server_id(struct lb_config_ctx *c, const struct lb_service_conf *svc,
			       struct lb_backend_conf *b, json_t *v);
void lb_config_quic_finish(struct lb_config_ctx *c, struct lb_service_conf *svc);

/*
 * Where a service's text is in its config's; the running config's service
 * it is copied from (its text unchanged), or UINT32_MAX when it is parsed;
 * and whether it was read (or copied) with no warning.
 */
struct lb_config_span {
	size_t off, len;
	uint32_t from;
	bool clean;
};

struct lb_config_source {
	char *text;			/* lb_bigmem_alloc(text_cap) */
	size_t len, text_cap;
	struct lb_config_span *spans;	/* one per element of "services", in order */
	size_t n_spans, cap;
	size_t copied;			/* services copied from the running config */
};

/* Tells the source being kept whether services[i] was read with no warning. */
void lb_config_source_clean(struct lb_config_source *src, size_t i, bool clean);
void lb_config_source_free(struct lb_config_source *src);

/*
 * A reload's reading of the text (config_reload.c): hook, given to
 * lb_json_loadb_hook(), skips the services whose text c->prev was read
 * from and notes each service's place, and where it is copied from, in
 * c->source, for lb_config_parse_services().
 */
struct lb_config_reread {
	struct lb_config_ctx *c;
	const char *text;		/* the new text */
	const struct lb_config_source *old;	/* the running config's, or NULL */
	uint32_t next;			/* the old service expected next */
	uint32_t from;			/* what known() found for the element at hand */
	struct lb_config_prefix_slot *index;	/* built at the first one not found in place */
	size_t mask;
	bool indexed;
	struct lb_json_hook hook;
};

/* Sets r up to read text for c (c->source and c->prev as the load has them). */
void lb_config_reread_init(struct lb_config_reread *r, struct lb_config_ctx *c, const char *text);
void lb_config_reread_fini(struct lb_config_reread *r);


#endif
