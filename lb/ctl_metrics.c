// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "metrics" reply: Prometheus text exposition format 0.0.4. Families
 * are contiguous, each with HELP and TYPE first; counters end in _total;
 * label values are escaped as the format requires (backslash, quote,
 * newline). Values are read from shm with relaxed atomics, so one scrape
 * is not a snapshot across backends, as with any other exporter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/addr.h"
#include "lb/ctl.h"
#include "lb/str.h"

#define METRICS_TOP_CLIENTS 5

#ifndef LB_VERSION
#define LB_VERSION "unknown"
#endif

static uint64_t ld(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void put_label(struct lb_str *b, const char *name, const char *value)
{
	lb_str_printf(b, "%s=\"", name);
	for (const char *s = value; *s; s++) {
		if (*s == '\\')
			lb_str_printf(b, "\\\\");
		else if (*s == '"')
			lb_str_printf(b, "\\\"");
		else if (*s == '\n')
			lb_str_printf(b, "\\n");
		else
			lb_str_printf(b, "%c", *s);
	}
	lb_str_printf(b, "\"");
}

static void family(struct lb_str *b, const char *name, const char *type, const char *help)
{
	lb_str_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum bfield {
	B_ACTIVE, B_TOTAL, B_BYTES_IN, B_BYTES_OUT, B_DGRAMS_IN, B_DGRAMS_OUT, B_FAILURES, B_UP,
	B_USABLE, B_WEIGHT, B_MAX_CONNS,
};

static const struct {
	const char *name, *type, *help;
} backend_families[] = {
	[B_ACTIVE] = { "lb_backend_active_connections", "gauge",
		       "Connections (and UDP flows) open to the backend, over all workers." },
	[B_TOTAL] = { "lb_backend_connections_total", "counter",
		      "Connections made to the backend." },
	[B_BYTES_IN] = { "lb_backend_bytes_in_total", "counter",
			 "Bytes received from clients and sent to the backend." },
	[B_BYTES_OUT] = { "lb_backend_bytes_out_total", "counter",
			  "Bytes received from the backend and sent to clients." },
	[B_DGRAMS_IN] = { "lb_backend_datagrams_in_total", "counter",
			  "UDP datagrams received from clients and sent to the backend." },
	[B_DGRAMS_OUT] = { "lb_backend_datagrams_out_total", "counter",
			   "UDP datagrams received from the backend and sent to clients." },
	[B_FAILURES] = { "lb_backend_connect_failures_total", "counter",
			 "Connects to the backend that failed or timed out." },
	[B_UP] = { "lb_backend_up", "gauge", "1 when health checks find the backend up." },
	[B_USABLE] = { "lb_backend_usable", "gauge",
		       "1 when the backend takes new connections (admin up, health up, weight > 0)." },
	[B_WEIGHT] = { "lb_backend_weight", "gauge", "Current weight (runtime value)." },
	[B_MAX_CONNS] = { "lb_backend_max_connections", "gauge",
			  "Connection limit of the backend; 0: unlimited." },
};

static int64_t backend_value(const struct lb_shm_backend *b, enum bfield f)
{
	switch (f) {
	case B_ACTIVE:
		return atomic_load(&b->active);
	case B_TOTAL:
		return ld(&b->total);
	case B_BYTES_IN:
		return ld(&b->bytes_in);
	case B_BYTES_OUT:
		return ld(&b->bytes_out);
	case B_DGRAMS_IN:
		return ld(&b->datagrams_in);
	case B_DGRAMS_OUT:
		return ld(&b->datagrams_out);
	case B_FAILURES:
		return ld(&b->connect_failures);
	case B_UP:
		return atomic_load(&b->health) == LB_HEALTH_UP;
	case B_USABLE:
		return lb_shm_backend_usable(b);
	case B_WEIGHT:
		return atomic_load(&b->weight);
	case B_MAX_CONNS:
		return b->max_conns;
	}
	return 0;
}

static void backend_labels(struct lb_str *b, const char *service, const struct lb_shm_backend *be)
{
	char buf[LB_ADDR_STRLEN];

	put_label(b, "service", service);
	lb_str_printf(b, ",");
	put_label(b, "backend", lb_addr_format(&be->addr, buf, sizeof(buf)));
}

/* "0.00025": a bound in µs as seconds, without trailing zeros. */
static void put_seconds(struct lb_str *b, uint64_t us)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);

	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	lb_str_printf(b, "%s", buf);
}

/*
 * One histogram's series: cumulative _bucket{le} lines, _sum in seconds and
 * _count. labels is what goes inside the braces before le.
 */
static void histogram(struct lb_str *b, const char *name, const char *labels,
		      const struct lb_hist *h, enum lb_hist_kind kind)
{
	const uint64_t *bounds = lb_hist_bounds(kind);
	struct lb_hist_snap s;
	uint64_t cum = 0;

	lb_hist_read(h, &s);
	for (unsigned int i = 0; i < LB_HIST_BUCKETS; i++) {
		cum += s.bucket[i];
		lb_str_printf(b, "%s_bucket{%s,le=\"", name, labels);
		put_seconds(b, bounds[i]);
		lb_str_printf(b, "\"} %" PRIu64 "\n", cum);
	}
	lb_str_printf(b, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, s.count);
	lb_str_printf(b, "%s_sum{%s} %" PRIu64 ".%06" PRIu64 "\n", name, labels, s.sum_us / 1000000,
		  s.sum_us % 1000000);
	lb_str_printf(b, "%s_count{%s} %" PRIu64 "\n", name, labels, s.count);
}

static void metrics_backends(struct lb_str *b, const struct lb_config *cfg,
			     const struct lb_shm *shm)
{
	static const uint32_t admins[] = { LB_ADMIN_UP, LB_ADMIN_DRAIN, LB_ADMIN_DISABLED };
	size_t n_svc = cfg->n_services < shm->n_services ? cfg->n_services : shm->n_services;

	for (size_t f = 0; f < sizeof(backend_families) / sizeof(backend_families[0]); f++) {
		family(b, backend_families[f].name, backend_families[f].type,
		       backend_families[f].help);
		for (size_t i = 0; i < n_svc; i++)
			for (size_t j = 0; j < shm->services[i].n_backends; j++) {
				const struct lb_shm_backend *be = lb_shm_backend(shm, i, j);

				lb_str_printf(b, "%s{", backend_families[f].name);
				backend_labels(b, cfg->services[i].name, be);
				lb_str_printf(b, "} %" PRId64 "\n", backend_value(be, f));
			}
	}
	family(b, "lb_backend_admin_state", "gauge",
	       "1 for the backend's administrative state (up, drain, disabled), 0 for the others.");
	for (size_t i = 0; i < n_svc; i++)
		for (size_t j = 0; j < shm->services[i].n_backends; j++) {
			const struct lb_shm_backend *be = lb_shm_backend(shm, i, j);
			uint32_t admin = atomic_load(&be->admin);

			for (size_t k = 0; k < sizeof(admins) / sizeof(admins[0]); k++) {
				lb_str_printf(b, "lb_backend_admin_state{");
				backend_labels(b, cfg->services[i].name, be);
				lb_str_printf(b, ",state=\"%s\"} %d\n",
					      lb_shm_admin_name(admins[k]), admin == admins[k]);
			}
		}
	family(b, "lb_backend_fastopen_connects_total", "counter",
	       "Connects of fastopen services by what became of the client's first bytes: "
	       "acked (the backend took them with the SYN), refused (the kernel resent them "
	       "after the handshake), plain (none in time, or TCP Fast Open paused or off).");
	for (size_t i = 0; i < n_svc; i++)
		for (size_t j = 0; cfg->services[i].fastopen && j < shm->services[i].n_backends; j++) {
			const struct lb_shm_backend *be = lb_shm_backend(shm, i, j);
			const struct {
				const char *name;
				uint64_t v;
			} r[] = {
				{ "acked", ld(&be->fastopen_acked) },
				{ "refused", ld(&be->fastopen_refused) },
				{ "plain", ld(&be->fastopen_plain) },
			};

			for (size_t k = 0; k < sizeof(r) / sizeof(r[0]); k++) {
				lb_str_printf(b, "lb_backend_fastopen_connects_total{");
				backend_labels(b, cfg->services[i].name, be);
				lb_str_printf(b, ",result=\"%s\"} %" PRIu64 "\n", r[k].name, r[k].v);
			}
		}
	family(b, "lb_backend_connect_seconds", "histogram",
	       "Time from connect() to an established connection to the backend.");
	for (size_t i = 0; i < n_svc; i++)
		for (size_t j = 0; j < shm->services[i].n_backends; j++) {
			const struct lb_shm_backend *be = lb_shm_backend(shm, i, j);
			struct lb_str l = { 0 };

			backend_labels(&l, cfg->services[i].name, be);
			if (!l.oom && l.s)
				histogram(b, "lb_backend_connect_seconds", l.s, &be->connect,
					  LB_HIST_CONNECT);
			b->oom |= l.oom;
			lb_str_fini(&l);
		}
}

static void metrics_services(struct lb_str *b, const struct lb_config *cfg,
			     const struct lb_shm *shm)
{
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
		{ "lb_service_connections_total", "counter", "Client connections accepted." },
		{ "lb_service_no_backend_total", "counter",
		  "Clients reset because no backend was usable." },
		{ "lb_service_queued_total", "counter",
		  "Clients that waited for a free slot (every backend at max_conns)." },
		{ "lb_service_queue_timeouts_total", "counter",
		  "Queued clients reset after queue_timeout_ms." },
		{ "lb_service_backends", "gauge", "Backends configured." },
		{ "lb_service_usable_backends", "gauge", "Backends taking new connections." },
	};
	size_t n_svc = cfg->n_services < shm->n_services ? cfg->n_services : shm->n_services;

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(b, fams[f].name, fams[f].type, fams[f].help);
		for (size_t i = 0; i < n_svc; i++) {
			const struct lb_shm_service *ss = &shm->services[i];
			uint64_t v[6] = {
				ld(&ss->total), ld(&ss->no_backend), ld(&ss->queued),
				ld(&ss->queue_timeouts), ss->n_backends, 0,
			};

			for (size_t j = 0; j < ss->n_backends; j++)
				v[5] += lb_shm_backend_usable(lb_shm_backend(shm, i, j));
			lb_str_printf(b, "%s{", fams[f].name);
			put_label(b, "service", cfg->services[i].name);
			lb_str_printf(b, "} %" PRIu64 "\n", v[f]);
		}
	}
	for (int k = 0; k < 2; k++) {
		const char *name = k ? "lb_service_queue_seconds" : "lb_service_connection_duration_seconds";

		family(b, name, "histogram", k ? "Time clients waited for a free slot (max_conns)."
					       : "Client connections from accept to close.");
		for (size_t i = 0; i < n_svc; i++) {
			const struct lb_shm_service *ss = &shm->services[i];
			struct lb_str l = { 0 };

			put_label(&l, "service", cfg->services[i].name);
			if (!l.oom && l.s)
				histogram(b, name, l.s, k ? &ss->queue : &ss->duration,
					  k ? LB_HIST_QUEUE : LB_HIST_DURATION);
			b->oom |= l.oom;
			lb_str_fini(&l);
		}
	}
}

/* A family of per-service series, or (name NULL) one more label value of the family above. */
struct svc_family {
	const char *name, *type, *help, *label, *value;
};

#define SVC_SERIES_MAX 16

/*
 * The families fams[0..n) for each service want() keeps, a value each
 * from values(), which fills v in fams order.
 */
static void service_series(struct lb_str *b, const struct lb_config *cfg, const struct lb_shm *shm,
			   const struct svc_family *fams, size_t n,
			   bool (*want)(const struct lb_service_conf *),
			   void (*values)(const struct lb_shm_service *, int64_t *))
{
	size_t n_svc = cfg->n_services < shm->n_services ? cfg->n_services : shm->n_services;
	const char *name = NULL;

	for (size_t f = 0; f < n && f < SVC_SERIES_MAX; f++) {
		if (fams[f].name) {
			name = fams[f].name;
			family(b, name, fams[f].type, fams[f].help);
		}
		for (size_t i = 0; i < n_svc; i++) {
			int64_t v[SVC_SERIES_MAX];

			if (!want(&cfg->services[i]))
				continue;
			values(&shm->services[i], v);
			lb_str_printf(b, "%s{", name);
			put_label(b, "service", cfg->services[i].name);
			if (fams[f].label) {
				lb_str_printf(b, ",");
				put_label(b, fams[f].label, fams[f].value);
			}
			lb_str_printf(b, "} %" PRId64 "\n", v[f]);
		}
	}
}

static bool carries_udp(const struct lb_service_conf *svc)
{
	return svc->protocols & LB_PROTO_UDP;
}

static void udp_values(const struct lb_shm_service *ss, int64_t *v)
{
	const int64_t all[] = {
		atomic_load(&ss->udp_flows), ld(&ss->udp_flows_total),
		ld(&ss->udp_datagrams_in), ld(&ss->udp_datagrams_out),
		ld(&ss->udp_bytes_in), ld(&ss->udp_bytes_out),
		ld(&ss->udp_drop_no_backend), ld(&ss->udp_drop_full),
		ld(&ss->udp_drop_send),
	};

	memcpy(v, all, sizeof(all));
}

/* UDP services only: a TCP service has none of these. */
static void metrics_udp(struct lb_str *b, const struct lb_config *cfg, const struct lb_shm *shm)
{
	static const struct svc_family fams[] = {
		{ "lb_service_udp_flows", "gauge", "UDP flows open now.", NULL, NULL },
		{ "lb_service_udp_flows_total", "counter", "UDP flows opened.", NULL, NULL },
		{ "lb_service_udp_datagrams_total", "counter",
		  "UDP datagrams relayed: in from clients, out to them.", "direction", "in" },
		{ NULL, NULL, NULL, "direction", "out" },
		{ "lb_service_udp_bytes_total", "counter",
		  "UDP payload bytes relayed: in from clients, out to them.", "direction", "in" },
		{ NULL, NULL, NULL, "direction", "out" },
		{ "lb_service_udp_dropped_total", "counter",
		  "Datagrams dropped: no usable backend for a new flow, the worker's flow table "
		  "full, or a send that failed.", "reason", "no_backend" },
		{ NULL, NULL, NULL, "reason", "flows_full" },
		{ NULL, NULL, NULL, "reason", "send_error" },
	};

	service_series(b, cfg, shm, fams, sizeof(fams) / sizeof(fams[0]), carries_udp, udp_values);
}

static bool routes_quic(const struct lb_service_conf *svc)
{
	return svc->quic.enabled;
}

static void quic_values(const struct lb_shm_service *ss, int64_t *v)
{
	const int64_t all[] = {
		ld(&ss->quic_routed_cid), ld(&ss->quic_routed_learned), ld(&ss->quic_fallback),
		ld(&ss->quic_dropped), ld(&ss->quic_learned), ld(&ss->quic_learn_full),
	};

	memcpy(v, all, sizeof(all));
}

/* QUIC services only (a "quic" key). */
static void metrics_quic(struct lb_str *b, const struct lb_config *cfg, const struct lb_shm *shm)
{
	static const struct svc_family fams[] = {
		{ "lb_service_quic_routed_total", "counter",
		  "Flows of new client addresses routed: by a QUIC-LB server ID in the DCID (cid), "
		  "by a connection ID lb learned (learned_cid), or by the scheduler (fallback).",
		  "by", "cid" },
		{ NULL, NULL, NULL, "by", "learned_cid" },
		{ NULL, NULL, NULL, "by", "fallback" },
		{ "lb_service_quic_dropped_total", "counter",
		  "Short-header datagrams of new client addresses dropped: their DCID is neither "
		  "routable nor known.", NULL, NULL },
		{ "lb_service_quic_cids_learned_total", "counter",
		  "Connection IDs learned from the SCID of the backends' long-header packets.",
		  NULL, NULL },
		{ "lb_service_quic_cid_table_full_total", "counter",
		  "Connection IDs not recorded: their window of the shared table held only live "
		  "entries.", NULL, NULL },
	};

	service_series(b, cfg, shm, fams, sizeof(fams) / sizeof(fams[0]), routes_quic, quic_values);
}

/* Clients the per-client rules refused, and each service's top clients by open connections. */
static void metrics_clients(struct lb_str *b, const struct lb_config *cfg, struct lb_shm *shm)
{
	size_t n_svc = cfg->n_services < shm->n_services ? cfg->n_services : shm->n_services;
	static const char *const reasons[] = { "deny", "rate", "max_conns" };
	char buf[LB_ADDR_STRLEN];

	family(b, "lb_service_clients_refused_total", "counter",
	       "Clients refused by the service's clients rules: packets the deny and allow lists "
	       "(deny) and the rate limit (rate) dropped or rejected in the kernel, connections "
	       "reset for max_conns.");
	for (size_t i = 0; i < n_svc; i++) {
		const struct lb_shm_service *ss = &shm->services[i];
		const uint64_t v[] = { ld(&ss->client_deny), ld(&ss->client_rate),
				       ld(&ss->client_conns) };

		for (size_t k = 0; k < 3; k++) {
			lb_str_printf(b, "lb_service_clients_refused_total{");
			put_label(b, "service", cfg->services[i].name);
			lb_str_printf(b, ",reason=\"%s\"} %" PRIu64 "\n", reasons[k], v[k]);
		}
	}
	family(b, "lb_service_top_client_connections", "gauge",
	       "Open TCP connections of the service's clients holding the most (up to 5 a service).");
	for (size_t i = 0; i < n_svc; i++) {
		struct lb_clients_top top[METRICS_TOP_CLIENTS];
		size_t n = lb_clients_top(shm->pool->clients, shm->services[i].clients_key, top,
					  METRICS_TOP_CLIENTS);

		for (size_t k = 0; k < n; k++) {
			lb_str_printf(b, "lb_service_top_client_connections{");
			put_label(b, "service", cfg->services[i].name);
			lb_str_printf(b, ",");
			put_label(b, "client", lb_addr_format_ip(&top[k].addr, buf, sizeof(buf)));
			lb_str_printf(b, "} %u\n", top[k].conns);
		}
	}
}

static void metrics_workers(struct lb_str *b, const struct lb_shm *shm)
{
	static const char *const fams[][3] = {
		{ "lb_worker_active_connections", "gauge", "Connections the worker relays." },
		{ "lb_worker_accepted_connections_total", "counter",
		  "Client connections the worker accepted." },
		{ "lb_worker_restarts_total", "counter", "Times the worker was restarted." },
		{ "lb_worker_up", "gauge", "1 while the worker runs (not stopped or draining)." },
	};

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(b, fams[f][0], fams[f][1], fams[f][2]);
		for (unsigned int i = 0; i < shm->n_workers; i++) {
			const struct lb_shm_worker *w = &shm->workers[i];
			int64_t v;

			if (!atomic_load(&w->pid))
				continue;
			if (f == 0)
				v = atomic_load(&w->active);
			else if (f == 1)
				v = ld(&w->accepted);
			else if (f == 2)
				v = atomic_load(&w->restarts);
			else
				v = atomic_load(&w->state) == LB_WORKER_RUNNING;
			/* Generation too: while a reload drains, two workers share an id. */
			lb_str_printf(b, "%s{worker=\"%u\",generation=\"%u\"} %" PRId64 "\n",
				      fams[f][0], w->id,
				      (unsigned int)atomic_load(&w->generation), v);
		}
	}
}

static void metrics_rules(struct lb_str *b, const struct lb_rules_state *rs)
{
	family(b, "lb_rules_intact", "gauge",
	       "1 while lb's nft table, policy rules and routes are all in place as far as lb "
	       "knows; 0 while something is missing.");
	lb_str_printf(b, "lb_rules_intact %d\n", !rs->missing);
	family(b, "lb_rules_watching", "gauge",
	       "1 when lb hears from the kernel about changes to its rules.");
	lb_str_printf(b, "lb_rules_watching %d\n", rs->watching);
	family(b, "lb_rules_restores_total", "counter",
	       "Times lb put back rules, routes or its table that someone else removed.");
	lb_str_printf(b, "lb_rules_restores_total %" PRIu64 "\n", rs->restores);
	family(b, "lb_rules_restore_failures_total", "counter", "Restore attempts that failed.");
	lb_str_printf(b, "lb_rules_restore_failures_total %" PRIu64 "\n", rs->failures);
	family(b, "lb_rules_last_restore_timestamp_seconds", "gauge",
	       "When lb last restored its rules, in seconds since the epoch; 0: never.");
	lb_str_printf(b, "lb_rules_last_restore_timestamp_seconds %lld\n",
		      (long long)rs->last_time);
}

static void metrics_announce(struct lb_str *b, const struct lb_announce_state *as)
{
	family(b, "lb_gateway_serving", "gauge",
	       "1 while lb announces what it can serve; 0 while starting, drained or stopping.");
	lb_str_printf(b, "lb_gateway_serving %d\n", as->gateway == LB_GATEWAY_SERVING);
	family(b, "lb_gateway_draining", "gauge",
	       "1 from a gateway drain (lbctl drain-gateway) until lb resumes or stops.");
	lb_str_printf(b, "lb_gateway_draining %d\n", as->gateway == LB_GATEWAY_DRAINING ||
		  as->gateway == LB_GATEWAY_DRAINED);
	if (!as->configured)
		return;
	family(b, "lb_announce_vips", "gauge", "VIP addresses in the config (one route each).");
	lb_str_printf(b, "lb_announce_vips %zu\n", as->n_vips);
	family(b, "lb_announce_routes", "gauge", "VIP routes in the announce table now.");
	lb_str_printf(b, "lb_announce_routes %zu\n", as->n_announced);
	family(b, "lb_announce_changes_total", "counter", "VIP routes added or deleted.");
	lb_str_printf(b, "lb_announce_changes_total %" PRIu64 "\n", as->changes);
	family(b, "lb_announce_failures_total", "counter",
	       "VIP route changes the kernel refused (retried every second).");
	lb_str_printf(b, "lb_announce_failures_total %" PRIu64 "\n", as->failures);
}

static void metrics_ownership(struct lb_str *b, const struct lb_peers_state *ps)
{
	static const char *const reasons[LB_NFT_OWNER_COUNTERS] = {
		"to_owner", "second_chance", "dropped",
	};

	family(b, "lb_ownership_settled", "gauge",
	       "1 once this gateway heard the tier and may own buckets.");
	lb_str_printf(b, "lb_ownership_settled %d\n", ps->settled);
	family(b, "lb_ownership_buckets", "gauge",
	       "Buckets each peer owns (owner) and is previous owner of (previous), as this "
	       "gateway's table has them.");
	for (size_t k = 0; k < ps->n_peers && k < LB_OWNER_PEERS_MAX; k++) {
		for (int prev = 0; prev < 2; prev++) {
			lb_str_printf(b, "lb_ownership_buckets{");
			put_label(b, "peer", ps->peers[k].name);
			lb_str_printf(b, ",role=\"%s\"} %u\n", prev ? "previous" : "owner",
				      prev ? ps->peers[k].previous : ps->peers[k].owned);
		}
	}
	family(b, "lb_ownership_peer_up", "gauge",
	       "1 for a peer that serves (owns buckets), else 0.");
	for (size_t k = 0; k < ps->n_peers && k < LB_OWNER_PEERS_MAX; k++) {
		lb_str_printf(b, "lb_ownership_peer_up{");
		put_label(b, "peer", ps->peers[k].name);
		lb_str_printf(b, "} %d\n", ps->peers[k].state == LB_PEER_SERVING);
	}
	family(b, "lb_ownership_table_changes_total", "counter",
	       "Times the buckets' owners changed.");
	lb_str_printf(b, "lb_ownership_table_changes_total %" PRIu64 "\n", ps->table_changes);
	family(b, "lb_ownership_forwarded_packets_total", "counter",
	       "Packets to a VIP with no socket here: forwarded to their bucket's owner "
	       "(to_owner), to its previous owner (second_chance), or dropped after a second "
	       "chance found no connection (dropped).");
	for (int i = 0; i < LB_NFT_OWNER_COUNTERS; i++)
		lb_str_printf(b, "lb_ownership_forwarded_packets_total{reason=\"%s\"} %" PRIu64 "\n",
			      reasons[i], ps->packets[i]);
	family(b, "lb_ownership_heartbeats_total", "counter",
	       "Heartbeats sent, received, and rejected (malformed, unknown sender, other tier).");
	lb_str_printf(b, "lb_ownership_heartbeats_total{dir=\"sent\"} %" PRIu64 "\n"
		      "lb_ownership_heartbeats_total{dir=\"received\"} %" PRIu64 "\n"
		      "lb_ownership_heartbeats_total{dir=\"rejected\"} %" PRIu64 "\n",
		      ps->sent, ps->received, ps->rejected);
}

char *lb_ctl_metrics(const struct lb_ctl_state *st)
{
	struct lb_str b = { 0 };

	family(&b, "lb_info", "gauge", "Always 1; the version is in the label.");
	lb_str_printf(&b, "lb_info{");
	put_label(&b, "version", LB_VERSION);
	lb_str_printf(&b, "} 1\n");
	family(&b, "lb_uptime_seconds", "gauge", "Seconds since lb started.");
	lb_str_printf(&b, "lb_uptime_seconds %" PRIu64 "\n", (lb_clock_ms() - st->start_ms) / 1000);
	family(&b, "lb_start_time_seconds", "gauge", "When lb started, in seconds since the epoch.");
	lb_str_printf(&b, "lb_start_time_seconds %lld\n", (long long)st->start_time);
	family(&b, "lb_config_generation", "gauge", "Config generation: 1 at start, +1 per reload.");
	lb_str_printf(&b, "lb_config_generation %u\n", st->generation);
	family(&b, "lb_config_last_reload_successful", "gauge",
	       "0 when the last reload failed, else 1.");
	lb_str_printf(&b, "lb_config_last_reload_successful %d\n",
		      !st->reload_time || st->reload_ok);
	family(&b, "lb_config_last_reload_timestamp_seconds", "gauge",
	       "When the last reload was tried, in seconds since the epoch; 0: never.");
	lb_str_printf(&b, "lb_config_last_reload_timestamp_seconds %lld\n",
		      (long long)st->reload_time);
	if (st->rules)
		metrics_rules(&b, st->rules);
	if (st->announce)
		metrics_announce(&b, lb_announce_state(st->announce));
	if (st->peers && st->peers->configured)
		metrics_ownership(&b, st->peers);
	if (st->shm && st->cfg) {
		metrics_workers(&b, st->shm);
		metrics_services(&b, st->cfg, st->shm);
		metrics_udp(&b, st->cfg, st->shm);
		metrics_clients(&b, st->cfg, st->shm);
		metrics_quic(&b, st->cfg, st->shm);
		metrics_backends(&b, st->cfg, st->shm);
	}
	return lb_str_take(&b);
}
