/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_TESTS_CONFIG_EQUAL_H
#define LB_TESTS_CONFIG_EQUAL_H

/*
 * Whether two configs read from the same text are the same: every field
 * of every service, the settings a reload can change, the name index and
 * the VIP map. For tests/check_config_reload.c and tests/fuzz/fuzz_reload.c,
 * which hold a reload's config (services copied from the running one)
 * against a whole read's. Each returns NULL, or what differs first.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lb/config.h"
#include "lb/vipmap.h"

static inline bool lb_test_bytes_same(const void *a, const void *b, size_t n)
{
	return !n || (a && b && !memcmp(a, b, n));
}

static inline bool lb_test_str_same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

#define LB_TEST_SAME(x, what) do { if (!(x)) return what; } while (0)

static inline const char *lb_test_service_diff(const struct lb_service_conf *a,
					       const struct lb_service_conf *b)
{
	const struct lb_clients_conf *ca = &a->clients, *cb = &b->clients;
	const struct lb_health_conf *ha = &a->health, *hb = &b->health;

	LB_TEST_SAME(lb_test_str_same(a->name, b->name), "names");
	LB_TEST_SAME(a->n_vips == b->n_vips, "VIP counts");
	LB_TEST_SAME(lb_test_bytes_same(a->vips, b->vips, a->n_vips * sizeof(*a->vips)), "VIPs");
	LB_TEST_SAME(lb_test_bytes_same(a->vip_plen, b->vip_plen, a->n_vips), "prefix lengths");
	LB_TEST_SAME(lb_test_bytes_same(a->vip_port_last, b->vip_port_last,
					a->n_vips * sizeof(*a->vip_port_last)), "last ports");
	LB_TEST_SAME(a->protocols == b->protocols && a->sched == b->sched &&
		     a->udp_idle_timeout_ms == b->udp_idle_timeout_ms &&
		     a->udp_responses == b->udp_responses, "protocols or scheduler");
	LB_TEST_SAME(a->n_backends == b->n_backends, "backend counts");
	LB_TEST_SAME(lb_test_bytes_same(a->backends, b->backends,
					a->n_backends * sizeof(*a->backends)), "backends");
	LB_TEST_SAME(a->connect_timeout_ms == b->connect_timeout_ms &&
		     a->client_idle_timeout_ms == b->client_idle_timeout_ms &&
		     a->server_idle_timeout_ms == b->server_idle_timeout_ms &&
		     a->queue_timeout_ms == b->queue_timeout_ms, "timeouts");
	LB_TEST_SAME(a->retries == b->retries && a->socket_buffer_bytes == b->socket_buffer_bytes &&
		     a->fastopen == b->fastopen && a->fastopen_wait_ms == b->fastopen_wait_ms,
		     "connection settings");
	LB_TEST_SAME(a->hash_port == b->hash_port && a->maglev_size == b->maglev_size, "maglev");
	LB_TEST_SAME(ha->type == hb->type && ha->interval_ms == hb->interval_ms &&
		     ha->timeout_ms == hb->timeout_ms && ha->rise == hb->rise &&
		     ha->fall == hb->fall && ha->port == hb->port &&
		     ha->expect_min == hb->expect_min && ha->expect_max == hb->expect_max,
		     "health checks");
	LB_TEST_SAME(lb_test_str_same(ha->path, hb->path), "health paths");
	LB_TEST_SAME(lb_test_str_same(ha->host, hb->host), "health hosts");
	LB_TEST_SAME(ca->n_allow == cb->n_allow &&
		     lb_test_bytes_same(ca->allow, cb->allow, ca->n_allow * sizeof(*ca->allow)),
		     "allowed clients");
	LB_TEST_SAME(ca->n_deny == cb->n_deny &&
		     lb_test_bytes_same(ca->deny, cb->deny, ca->n_deny * sizeof(*ca->deny)),
		     "denied clients");
	LB_TEST_SAME(ca->deny_reset == cb->deny_reset && ca->rate == cb->rate &&
		     ca->burst == cb->burst && ca->rate_prefix4 == cb->rate_prefix4 &&
		     ca->rate_prefix6 == cb->rate_prefix6 &&
		     ca->rate_table_size == cb->rate_table_size && ca->max_conns == cb->max_conns,
		     "client limits");
	LB_TEST_SAME(a->quic.enabled == b->quic.enabled &&
		     a->quic.server_cid_len == b->quic.server_cid_len &&
		     a->quic.has_lb == b->quic.has_lb &&
		     lb_test_bytes_same(&a->quic.lb, &b->quic.lb, sizeof(a->quic.lb)), "QUIC settings");
	LB_TEST_SAME(a->quic.n_server_ids == b->quic.n_server_ids &&
		     lb_test_bytes_same(a->quic.by_server_id, b->quic.by_server_id,
					a->quic.n_server_ids * sizeof(*a->quic.by_server_id)),
		     "server ID indexes");
	return NULL;
}

static inline const char *lb_test_config_diff(const struct lb_config *a, const struct lb_config *b)
{
	const char *d;

	LB_TEST_SAME(a->workers == b->workers && a->workers_auto == b->workers_auto &&
		     a->connections == b->connections, "workers");
	LB_TEST_SAME(a->drain_timeout_ms == b->drain_timeout_ms && a->watchdog_ms == b->watchdog_ms &&
		     a->log_level == b->log_level && a->log_syslog == b->log_syslog &&
		     a->access_log == b->access_log, "settings");
	LB_TEST_SAME(lb_test_str_same(a->user, b->user) && lb_test_str_same(a->group, b->group),
		     "users or groups");
	LB_TEST_SAME(lb_test_str_same(a->warnings, b->warnings), "warnings");
	LB_TEST_SAME(a->n_services == b->n_services, "service counts");
	for (size_t i = 0; i < a->n_services; i++) {
		const struct lb_service_conf *s = &a->services[i];
		unsigned int proto = s->protocols & LB_PROTO_TCP ? LB_PROTO_TCP : LB_PROTO_UDP;

		if ((d = lb_test_service_diff(s, &b->services[i])))
			return d;
		LB_TEST_SAME(lb_config_service_index(a, s->name) == (long)i, "name indexes");
		for (size_t k = 0; k < s->n_vips; k++) {
			const struct lb_vipmap_vip *va = lb_vipmap_find(a->vipmap, proto, &s->vips[k]);
			const struct lb_vipmap_vip *vb = lb_vipmap_find(b->vipmap, proto, &s->vips[k]);

			LB_TEST_SAME(va && vb && va->service == i && vb->service == i &&
				     va->index == vb->index, "VIP maps");
		}
	}
	return NULL;
}

#undef LB_TEST_SAME

#endif
