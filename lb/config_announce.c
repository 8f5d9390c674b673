// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "announce" block: the routing table, protocol number and device of
 * the VIP routes a routing daemon exports (lb/announce.c puts them there).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lb/config.h"
#include "lb/config_priv.h"

#define DEFAULT_PROTOCOL	250
#define DEFAULT_DEVICE		"lb-announce"
#define DEVICE_MAX		15	/* IFNAMSIZ - 1 */
#define DEFAULT_SETTLE_MS	2000
#define SETTLE_MAX_MS		600000

/*
 * Protocol numbers that are not free for lb: the kernel's own (0..4)
 * and BIRD's, which BIRD takes for routes it made and deletes as stale.
 */
static bool protocol_free(struct lb_config_ctx *c, long long n)
{
	static const char *const kernel[] = { "unspec", "redirect", "kernel", "boot", "static" };

	if (n <= 4) {
		lb_config_err(c, "%lld is the kernel's own (\"%s\"); use a number no routing daemon "
			      "uses, like 250", n, kernel[n]);
		return false;
	}
	if (n == 12) {
		lb_config_err(c, "12 is BIRD's own: BIRD would delete these routes as stale; use a "
			      "number no routing daemon uses, like 250");
		return false;
	}
	return true;
}

static void parse_device(struct lb_config_ctx *c, json_t *v)
{
	const char *s = lb_config_get_string(c, v);
	char *copy;

	if (!s)
		return;
	if (strlen(s) > DEVICE_MAX || !lb_config_valid_name(s, "_-.") || !strcmp(s, ".") ||
	    !strcmp(s, "..")) {
		lb_config_err_quoted(c, "invalid device name", s,
				     " (1..15 characters of A-Za-z0-9_-.)");
		return;
	}
	copy = strdup(s);
	if (!copy) {
		lb_config_oom(c);
		return;
	}
	free(c->cfg->announce.device);
	c->cfg->announce.device = copy;
}

void lb_config_parse_announce(struct lb_config_ctx *c, json_t *obj)
{
	struct lb_config *cfg = c->cfg;
	const char *key;
	long long n;
	size_t saved;
	json_t *v;

	if (!lb_config_expect_object(c, obj))
		return;
	cfg->announce.enabled = true;
	cfg->announce.protocol = DEFAULT_PROTOCOL;
	cfg->announce.settle_ms = DEFAULT_SETTLE_MS;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "table")) {
			if (lb_config_get_int(c, v, 1, 0xffffffffLL, &n) &&
			    lb_config_route_table_free(c, n))
				cfg->announce.table = (uint32_t)n;
		} else if (!strcmp(key, "protocol")) {
			if (lb_config_get_int(c, v, 0, 255, &n) && protocol_free(c, n))
				cfg->announce.protocol = (uint8_t)n;
		} else if (!strcmp(key, "settle_ms")) {
			if (lb_config_get_int(c, v, 0, SETTLE_MAX_MS, &n))
				cfg->announce.settle_ms = (unsigned int)n;
		} else if (!strcmp(key, "device")) {
			parse_device(c, v);
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "table"))
		lb_config_err_missing(c, "table");
	if (!cfg->announce.device) {
		cfg->announce.device = strdup(DEFAULT_DEVICE);
		if (!cfg->announce.device)
			lb_config_oom(c);
	}
}

void lb_config_check_announce(struct lb_config_ctx *c)
{
	const struct lb_config *cfg = c->cfg;
	size_t saved;

	if (!cfg->announce.enabled || !cfg->announce.table ||
	    cfg->announce.table != cfg->intercept.route_table)
		return;
	saved = lb_config_path_key(c, "announce");
	lb_config_path_key(c, "table");
	lb_config_err(c, "%u is also intercept.route_table, whose local default route would be "
		      "announced with the VIPs; use a table of its own", cfg->announce.table);
	lb_config_path_pop(c, saved);
}
