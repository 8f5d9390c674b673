// SPDX-License-Identifier: GPL-2.0-or-later
/* The "quic" part of a UDP service and its backends' "quic_server_id" (docs/config.md). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lb/config.h"
#include "lb/config_priv.h"

/* config_id 7 (0b111) is QUIC-LB's mark of an unroutable connection ID. */
#define CONFIG_ID_MAX (LB_QUIC_LB_CONFIG_UNROUTABLE - 1)

/* "lb": the QUIC-LB plaintext configuration the backends encode their server IDs with. */
static void parse_lb(struct lb_config_ctx *c, struct lb_quic_conf *q, json_t *obj)
{
	struct lb_quic_lb_conf *lb = &q->lb;
	bool ok = true;
	const char *key;
	size_t saved;
	long long n;
	json_t *v;

	/* Given, even if broken: its own errors say what is wrong, not the keys that need it. */
	q->has_lb = true;
	if (!lb_config_expect_object(c, obj))
		return;
	json_object_foreach(obj, key, v) {
		saved = lb_config_path_key(c, key);
		if (!strcmp(key, "config_id")) {
			if (lb_config_get_int(c, v, 0, CONFIG_ID_MAX, &n))
				lb->config_id = (uint8_t)n;
			else
				ok = false;
		} else if (!strcmp(key, "server_id_len")) {
			if (lb_config_get_int(c, v, 1, LB_QUIC_LB_SID_MAX, &n))
				lb->server_id_len = (uint8_t)n;
			else
				ok = false;
		} else if (!strcmp(key, "nonce_len")) {
			if (lb_config_get_int(c, v, LB_QUIC_LB_NONCE_MIN, LB_QUIC_LB_NONCE_MAX, &n))
				lb->nonce_len = (uint8_t)n;
			else
				ok = false;
		} else {
			lb_config_err(c, "unknown key");
		}
		lb_config_path_pop(c, saved);
	}
	if (!json_object_get(obj, "server_id_len")) {
		lb_config_err_missing(c, "server_id_len");
		ok = false;
	}
	if (!json_object_get(obj, "nonce_len")) {
		lb_config_err_missing(c, "nonce_len");
		ok = false;
	}
	if (ok && lb->server_id_len + lb->nonce_len > LB_QUIC_LB_BODY_MAX) {
		lb_config_err(c, "server_id_len %u + nonce_len %u is above %d (a connection ID "
			      "is at most 20 octets, the first one being the config octet)",
			      lb->server_id_len, lb->nonce_len, LB_QUIC_LB_BODY_MAX);
		ok = false;
	}
	/* A server ID of length 0 marks a configuration that failed: nothing is decoded with it. */
	if (!ok)
		lb->server_id_len = 0;
}

void lb_config_parse_quic(struct lb_config_ctx *c, struct lb_service_conf *svc, json_t *obj)
{
	struct lb_quic_conf *q = &svc->quic;
	json_t *v, *cid_len;
	const char *key;
	long long n = 0;
	size_t saved;
	bool cid_ok;

	if (!lb_config_expect_object(c, obj))
		return;
	q->enabled = true;
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "lb")) {
			saved = lb_config_path_key(c, key);
			parse_lb(c, q, v);
			lb_config_path_pop(c, saved);
		} else if (strcmp(key, "server_cid_len")) {
			saved = lb_config_path_key(c, key);
			lb_config_err(c, "unknown key");
			lb_config_path_pop(c, saved);
		}
	}
	/* After "lb", wherever it stands: its CID length is the default and the floor. */
	cid_len = json_object_get(obj, "server_cid_len");
	if (!cid_len) {
		if (q->has_lb && q->lb.server_id_len)
			q->server_cid_len = (uint8_t)lb_quic_lb_cid_len(&q->lb);
		else if (!q->has_lb)
			lb_config_err(c, "missing required key \"server_cid_len\" (the length of the "
				      "connection IDs the backends issue) or \"lb\"");
		return;
	}
	saved = lb_config_path_key(c, "server_cid_len");
	/* Zero-length CIDs route nothing: a rebinding client could not be told from a new one. */
	cid_ok = lb_config_get_int(c, cid_len, 1, LB_QUIC_CID_MAX, &n);
	if (cid_ok && q->has_lb && q->lb.server_id_len && (size_t)n < lb_quic_lb_cid_len(&q->lb)) {
		lb_config_err(c, "%lld is below the QUIC-LB connection ID length %zu (1 + server_id_len "
			      "%u + nonce_len %u)", n, lb_quic_lb_cid_len(&q->lb), q->lb.server_id_len,
			      q->lb.nonce_len);
		cid_ok = false;
	}
	if (cid_ok)
		q->server_cid_len = (uint8_t)n;
	lb_config_path_pop(c, saved);
}

void lb_config_parse_server_id(struct lb_config_ctx *c, const struct lb_service_conf *svc,
			       struct lb_backend_conf *b, json_t *v)
{
	const struct lb_quic_conf *q = &svc->quic;
	const char *s = lb_config_get_string(c, v), *why = NULL;

	if (!s)
		return;
	if (!q->has_lb) {
		lb_config_err(c, "needs \"quic\": {\"lb\": {...}} in the service (the QUIC-LB "
			      "configuration that gives server IDs their length)");
		return;
	}
	/* quic.lb had an error of its own, already reported. */
	if (!q->lb.server_id_len)
		return;
	if (lb_quic_hex_parse(s, b->server_id, q->lb.server_id_len, &why) < 0) {
		char tail[96];

		snprintf(tail, sizeof(tail), " (%s: expected %u octets in hex, as quic.lb.server_id_len "
			 "says)", why, q->lb.server_id_len);
		lb_config_err_quoted(c, "invalid server ID", s, tail);
		return;
	}
	b->has_server_id = true;
}

/* Orders backends by server ID, then family: a dual-stack server has one ID for both addresses. */
static int sid_cmp(const void *a, const void *b, void *arg)
{
	const struct lb_service_conf *svc = arg;
	const struct lb_backend_conf *x = &svc->backends[*(const uint32_t *)a];
	const struct lb_backend_conf *y = &svc->backends[*(const uint32_t *)b];
	int r = memcmp(x->server_id, y->server_id, svc->quic.lb.server_id_len);

	return r ? r : x->addr.sa.sa_family - y->addr.sa.sa_family;
}

/* Points the path at services[i].backends[bi].key (from services[i]); returns what to pop to. */
static size_t backend_path(struct lb_config_ctx *c, size_t bi, const char *key)
{
	size_t saved = lb_config_path_key(c, "backends");

	lb_config_path_index(c, bi);
	if (key)
		lb_config_path_key(c, key);
	return saved;
}

void lb_config_quic_finish(struct lb_config_ctx *c, struct lb_service_conf *svc)
{
	struct lb_quic_conf *q = &svc->quic;
	size_t n = 0, saved;

	if (!q->has_lb || !q->lb.server_id_len || !svc->n_backends)
		return;
	q->by_server_id = calloc(svc->n_backends, sizeof(*q->by_server_id));
	if (!q->by_server_id) {
		lb_config_oom(c);
		return;
	}
	for (size_t j = 0; j < svc->n_backends; j++) {
		if (svc->backends[j].has_server_id) {
			q->by_server_id[n++] = (uint32_t)j;
			continue;
		}
		/* It still works, by learned CIDs: worth a word, not a refusal. */
		saved = backend_path(c, j, NULL);
		lb_config_warn(c, "no quic_server_id: its QUIC connections are followed only by the "
			       "connection IDs lb learns, not by QUIC-LB");
		lb_config_path_pop(c, saved);
	}
	qsort_r(q->by_server_id, n, sizeof(*q->by_server_id), sid_cmp, svc);
	q->n_server_ids = n;
	for (size_t k = 1; k < n; k++) {
		uint32_t a = q->by_server_id[k - 1], b = q->by_server_id[k];
		char hex[2 * LB_QUIC_LB_SID_MAX + 1];

		if (sid_cmp(&a, &b, svc))
			continue;
		/* Name the later backend, pointing at the earlier one. */
		if (a > b) {
			uint32_t t = a;

			a = b;
			b = t;
		}
		saved = backend_path(c, b, "quic_server_id");
		lb_config_err(c, "server ID %s is already backends[%u]'s (one ID per server: a "
			      "server's IPv4 and IPv6 addresses may share it)",
			      lb_quic_hex_format(svc->backends[b].server_id, q->lb.server_id_len, hex,
						 sizeof(hex)), a);
		lb_config_path_pop(c, saved);
	}
}

int lb_config_find_server_id(const struct lb_service_conf *svc, const uint8_t *sid, int family)
{
	const struct lb_quic_conf *q = &svc->quic;
	size_t lo = 0, hi = q->n_server_ids;

	/* The first backend with this server ID, then the one of the family among its equals. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(svc->backends[q->by_server_id[mid]].server_id, sid, q->lb.server_id_len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < q->n_server_ids; lo++) {
		const struct lb_backend_conf *b = &svc->backends[q->by_server_id[lo]];

		if (memcmp(b->server_id, sid, q->lb.server_id_len))
			break;
		if (b->addr.sa.sa_family == family)
			return (int)q->by_server_id[lo];
	}
	return -1;
}
