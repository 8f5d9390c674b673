// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "http" object: where the management listener listens and whom it
 * answers (docs/config.md). Without "allow" only loopback clients are
 * served, so turning the listener on never exposes it by accident.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/config_priv.h"

#define HTTP_MAX_CLIENTS 1024
#define HTTP_TIMEOUT_MS 10000

static const char *const default_allow[] = { "127.0.0.0/8", "::1" };

void lb_config_parse_http(struct lb_config_ctx *c, json_t *obj)
{
	struct lb_config *cfg = c->cfg;
	const char *key;
	long long n;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return;
	cfg->http.max_clients = HTTP_MAX_CLIENTS;
	cfg->http.timeout_ms = HTTP_TIMEOUT_MS;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "listen")) {
			if (lb_config_get_addr(c, v, &cfg->http.listen))
				cfg->http.enabled = true;
		} else if (!strcmp(key, "allow")) {
			/* Overlaps do no harm here: a client in any prefix is served. */
			lb_config_get_prefixes(c, v, false, &cfg->http.allow, &cfg->http.n_allow);
		} else if (!strcmp(key, "max_clients")) {
			/* Each client is an fd in a process whose limit is the workers'. */
			if (lb_config_get_int(c, v, 1, 10000, &n))
				cfg->http.max_clients = n;
		} else if (!strcmp(key, "timeout_ms")) {
			if (lb_config_get_int(c, v, 100, 600000, &n))
				cfg->http.timeout_ms = n;
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "listen")) {
		lb_config_err_missing(c, "listen");
		return;
	}
	if (!cfg->http.allow) {
		cfg->http.allow = calloc(2, sizeof(*cfg->http.allow));
		if (!cfg->http.allow) {
			lb_config_oom(c);
			return;
		}
		for (size_t i = 0; i < 2; i++) {
			const char *why;

			lb_prefix_parse(default_allow[i], &cfg->http.allow[i], &why);
		}
		cfg->http.n_allow = 2;
	}
}
