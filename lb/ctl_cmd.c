// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control protocol's requests: one JSON object in, one reply line out
 * (docs/control.md). Everything here reads the state the master keeps in
 * struct lb_ctl_state and shm; only set-state, set-weight, reload,
 * drain-gateway and resume-gateway change anything, and those are logged
 * with who asked.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "lb/addr.h"
#include "lb/ctl.h"
#include "lb/ctl_owner.h"
#include "lb/limits.h"
#include "lb/log.h"
#include "lb/str.h"

#ifndef LB_VERSION
#define LB_VERSION "unknown"
#endif

#define WEIGHT_MAX 1000
#define CLIENTS_TOP 10			/* top clients a "clients" reply lists per service */
#define CLIENTS_TOP_MAX 1000

struct req {
	struct lb_ctl_state *st;
	json_t *obj;
	const struct ucred *peer;
	char who[64];			/* "uid 0 pid 42" for log lines */
	/* The error, when a command returns NULL with code set. */
	const char *code;
	const char *arg;
	char msg[256];
};

struct cmd {
	const char *name;
	const char *const *args;	/* accepted besides "cmd", NULL-terminated */
	const char *const *required;
	json_t *(*run)(struct req *r);
	const char *summary;
};

static void fail(struct req *r, const char *code, const char *arg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fail(struct req *r, const char *code, const char *arg, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	r->arg = arg;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

/*
 * Repeats user text in a message: cut after LB_STR_QUOTE_MAX bytes,
 * control characters as \xNN, so the message stays one readable line in a
 * terminal and in the log.
 */
static const char *quote(const char *s, char *buf, size_t len)
{
	return lb_str_escape_to(buf, len, s, LB_STR_CUT);
}

/* A JSON string of s, which may be invalid UTF-8 (then bad bytes become '?'). */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j || !s)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (unsigned char *p = (unsigned char *)copy; *p; p++)
		if (*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *jint(int64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *ju64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Serializes o (stolen) as one line with its newline. */
static char *dump_line(json_t *o)
{
	char *s, *line;
	size_t n;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

static char *error_line(const char *code, const char *message, const char *arg)
{
	json_t *e = json_object();

	if (!e)
		return NULL;
	json_object_set_new(e, "code", json_string(code));
	json_object_set_new(e, "message", jstr(message));
	if (arg)
		json_object_set_new(e, "argument", json_string(arg));
	return dump_line(json_pack("{s:b, s:o}", "ok", 0, "error", e));
}

char *lb_ctl_error_line(const char *code, const char *message)
{
	return error_line(code, message, NULL);
}

void lb_ctl_state_reloaded(struct lb_ctl_state *st, bool ok, const char *msg)
{
	st->reload_time = time(NULL);
	st->reload_ok = ok;
	snprintf(st->reload_msg, sizeof(st->reload_msg), "%s", msg ? msg : "");
}

static const char *sched_name(unsigned int sched)
{
	static const char *const names[] = {
		[LB_SCHED_ROUNDROBIN] = "roundrobin",
		[LB_SCHED_LEASTCONN] = "leastconn",
		[LB_SCHED_MAGLEV] = "maglev",
		[LB_SCHED_RANDOM2] = "random2",
	};

	return sched < sizeof(names) / sizeof(names[0]) && names[sched] ? names[sched] : "unknown";
}

static uint64_t ld(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* ---- arguments ---- */

static bool need_shm(struct req *r)
{
	if (r->st->shm && r->st->cfg)
		return true;
	fail(r, "unavailable", NULL, "shared state is not set up yet");
	return false;
}

/* A string argument; *out NULL when absent and not required. */
static bool arg_string(struct req *r, const char *name, bool required, const char **out)
{
	json_t *v = json_object_get(r->obj, name);

	*out = NULL;
	if (!v) {
		if (required)
			fail(r, "bad_argument", name, "missing argument '%s'", name);
		return !required;
	}
	if (!json_is_string(v)) {
		fail(r, "bad_argument", name, "argument '%s' must be a string", name);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static bool find_service(struct req *r, const char *name, size_t *svc)
{
	char q[LB_STR_QUOTE_SIZE];

	if (lb_shm_find(r->st->shm, r->st->cfg, name, NULL, svc, NULL) == 0 &&
	    *svc < r->st->shm->n_services)
		return true;
	fail(r, "unknown_service", "service", "no service %s", quote(name, q, sizeof(q)));
	return false;
}

static bool arg_target(struct req *r, size_t *svc, size_t *be)
{
	char q[LB_STR_QUOTE_SIZE], buf[LB_ADDR_STRLEN];
	const char *name, *text, *why = NULL;
	union lb_sockaddr a;

	if (!need_shm(r) || !arg_string(r, "service", true, &name) ||
	    !arg_string(r, "backend", true, &text))
		return false;
	if (lb_addr_parse(text, &a, &why) < 0) {
		fail(r, "bad_argument", "backend", "backend %s is not an address: %s",
		     quote(text, q, sizeof(q)), why ? why : "invalid");
		return false;
	}
	lb_addr_unmap(&a);
	if (!find_service(r, name, svc))
		return false;
	if (lb_shm_find(r->st->shm, r->st->cfg, name, &a, svc, be) == 0 &&
	    *be < r->st->shm->services[*svc].n_backends)
		return true;
	fail(r, "unknown_backend", "backend", "service %s has no backend %s", name,
	     lb_addr_format(&a, buf, sizeof(buf)));
	return false;
}

/* ---- read-only commands ---- */

static json_t *cmd_version(struct req *r)
{
	return json_pack("{s:s, s:i}", "version", LB_VERSION, "protocol", LB_CTL_PROTOCOL);
}

/*
 * Resident memory of pid from /proc/PID/status, in bytes: all of it (which
 * counts the shared memory it has touched) and its own (anonymous) part.
 * Both stay 0 when the process is gone.
 */
static void proc_rss(pid_t pid, uint64_t *rss, uint64_t *anon)
{
	char path[64], line[128];
	unsigned long long kib;
	FILE *f;

	*rss = *anon = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %llu kB", &kib) == 1)
			*rss = kib * 1024;
		else if (sscanf(line, "RssAnon: %llu kB", &kib) == 1)
			*anon = kib * 1024;
	}
	fclose(f);
}

static json_t *rss_json(pid_t pid)
{
	uint64_t rss, anon;

	proc_rss(pid, &rss, &anon);
	return json_pack("{s:o, s:o}", "rss_bytes", ju64(rss), "rss_anon_bytes", ju64(anon));
}

static json_t *worker_json(const struct lb_shm_worker *w)
{
	uint64_t beat = ld(&w->heartbeat_ms), now = lb_clock_ms();

	pid_t pid = atomic_load(&w->pid);
	uint64_t rss, anon;

	proc_rss(pid, &rss, &anon);
	/* How long since its loop last ran: the watchdog replaces it past watchdog_ms. */
	return json_pack("{s:i, s:i, s:i, s:s, s:o, s:o, s:o, s:i, s:o, s:o, s:o}",
			 "id", (int)w->id,
			 "pid", (int)pid,
			 "generation", (int)atomic_load(&w->generation),
			 "state", lb_shm_worker_state_name(atomic_load(&w->state)),
			 "active", jint(atomic_load(&w->active)),
			 "udp_flows", jint(atomic_load(&w->udp_flows)),
			 "accepted", ju64(ld(&w->accepted)),
			 "restarts", (int)atomic_load(&w->restarts),
			 "heartbeat_age_ms", beat ? ju64(now > beat ? now - beat : 0) : json_null(),
			 "rss_bytes", ju64(rss), "rss_anon_bytes", ju64(anon));
}

/* The shared memory lb maps and the master's resident memory. */
static json_t *memory_json(const struct lb_ctl_state *st)
{
	const struct lb_shm *shm = st->shm;

	return json_pack("{s:o, s:o, s:o}",
			 "shm_bytes", shm ? ju64(shm->size) : json_null(),
			 "shm_pool_bytes", shm && shm->pool ? ju64(shm->pool->size) : json_null(),
			 "master", rss_json(st->pid ? st->pid : getpid()));
}

/* Whether lb's table, rules and routes are in place, and what the watch restored. */
static json_t *rules_json(const struct lb_rules_state *rs)
{
	json_t *missing = json_null(), *last = json_null();

	if (!rs)
		return json_null();
	if (rs->missing)
		missing = json_pack("{s:I, s:o}", "since", (json_int_t)rs->missing_since,
				    "what", jstr(rs->missing_what));
	if (rs->last_time)
		last = json_pack("{s:I, s:s, s:i, s:o}", "time", (json_int_t)rs->last_time,
				 "by", rs->last_by ? rs->last_by : "watch",
				 "after_ms", (int)rs->last_ms, "what", jstr(rs->last_what));
	return json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:o}",
			 "state", rs->missing ? "missing" : rs->watching ? "intact" : "unwatched",
			 "watching", rs->watching,
			 "missing", missing,
			 "restores", ju64(rs->restores),
			 "last_restore", last,
			 "failures", ju64(rs->failures),
			 "last_error", rs->last_error[0] ? jstr(rs->last_error) : json_null());
}

static json_t *jtime(time_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

/* The gateway's state, its drain, and which VIPs it announces and why not. */
static json_t *gateway_json(const struct lb_announce *a)
{
	const struct lb_announce_state *as;
	json_t *drain = json_null(), *ann = json_null(), *vips;

	if (!a)
		return json_null();
	as = lb_announce_state(a);
	if (as->drain_since && (as->gateway == LB_GATEWAY_DRAINING ||
				as->gateway == LB_GATEWAY_DRAINED))
		drain = json_pack("{s:I, s:o, s:o, s:b, s:b, s:o}",
				  "since", (json_int_t)as->drain_since,
				  "deadline", jtime(as->drain_deadline),
				  "ended", jtime(as->drained_at),
				  "stop", as->drain_stop,
				  "timed_out", as->drain_timed_out,
				  "connections", jint(as->drain_active));
	if (as->configured) {
		vips = json_array();
		for (size_t i = 0; vips && i < as->n_shown; i++) {
			const struct lb_announce_vip *v = &as->vips[i];
			char buf[LB_ADDR_STRLEN], addr[LB_ADDR_STRLEN + 8];

			snprintf(addr, sizeof(addr), "%s%s", lb_addr_format_ip(&v->addr, buf, sizeof(buf)),
				 lb_announce_plen_suffix(v));
			json_array_append_new(vips, json_pack("{s:s, s:b, s:o, s:o}",
				"address", addr,
				"announced", v->announced, "since", jtime(v->since),
				"why", v->why ? json_string(v->why) : json_null()));
		}
		ann = json_pack("{s:s, s:I, s:i, s:I, s:I, s:o, s:o, s:o, s:o}",
				"device", as->device,
				"table", (json_int_t)as->table,
				"protocol", (int)as->protocol,
				"routes", (json_int_t)as->n_announced,
				"vip_count", (json_int_t)as->n_vips,
				"changes", ju64(as->changes),
				"failures", ju64(as->failures),
				"last_error", as->last_error[0] ? jstr(as->last_error) : json_null(),
				"vips", vips);
	}
	return json_pack("{s:s, s:o, s:o}", "state", lb_announce_gateway_name(as->gateway),
			 "drain", drain, "announce", ann);
}

static json_t *cmd_status(struct req *r)
{
	const struct lb_ctl_state *st = r->st;
	json_t *workers = json_array(), *reload = json_null();
	uint64_t up = (lb_clock_ms() - st->start_ms) / 1000;

	if (st->reload_time)
		reload = json_pack("{s:I, s:b, s:o}", "time", (json_int_t)st->reload_time,
				   "ok", st->reload_ok, "message", jstr(st->reload_msg));
	/* Free slots have pid 0; old generations' draining workers are listed too. */
	for (unsigned int i = 0; st->shm && workers && i < st->shm->n_workers; i++)
		if (atomic_load(&st->shm->workers[i].pid))
			json_array_append_new(workers, worker_json(&st->shm->workers[i]));
	return json_pack("{s:i, s:s, s:I, s:I, s:o, s:i, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "pid", (int)(st->pid ? st->pid : getpid()),
			 "version", LB_VERSION,
			 "uptime_s", (json_int_t)up,
			 "started", (json_int_t)st->start_time,
			 "config", st->config_path ? jstr(st->config_path) : json_null(),
			 "generation", (int)st->generation,
			 "last_reload", reload,
			 "rules", rules_json(st->rules),
			 "gateway", gateway_json(st->announce),
			 "ownership", lb_ctl_ownership_json(st->peers),
			 "memory", memory_json(st),
			 "workers", workers);
}

struct totals {
	int64_t active;
	uint64_t total, bytes_in, bytes_out, connect_failures;
	uint64_t no_backend, queued, queue_timeouts;
	unsigned int backends, usable;
};

static void service_totals(const struct lb_shm *shm, size_t i, struct totals *t)
{
	const struct lb_shm_service *ss = &shm->services[i];

	memset(t, 0, sizeof(*t));
	t->total = ld(&ss->total);
	t->no_backend = ld(&ss->no_backend);
	t->queued = ld(&ss->queued);
	t->queue_timeouts = ld(&ss->queue_timeouts);
	t->backends = ss->n_backends;
	for (size_t j = 0; j < ss->n_backends; j++) {
		const struct lb_shm_backend *b = lb_shm_backend(shm, i, j);

		t->active += atomic_load(&b->active);
		t->bytes_in += ld(&b->bytes_in);
		t->bytes_out += ld(&b->bytes_out);
		t->connect_failures += ld(&b->connect_failures);
		t->usable += lb_shm_backend_usable(b);
	}
}

static void totals_add(struct totals *sum, const struct totals *t)
{
	sum->active += t->active;
	sum->total += t->total;
	sum->bytes_in += t->bytes_in;
	sum->bytes_out += t->bytes_out;
	sum->connect_failures += t->connect_failures;
	sum->no_backend += t->no_backend;
	sum->queued += t->queued;
	sum->queue_timeouts += t->queue_timeouts;
	sum->backends += t->backends;
	sum->usable += t->usable;
}

/* Adds the counters of t to object o (NULL: returns NULL); the shape services and stats share. */
static json_t *with_counters(json_t *o, const struct totals *t)
{
	json_t *c;

	if (!o)
		return NULL;
	c = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		      "active", jint(t->active),
		      "total", ju64(t->total),
		      "bytes_in", ju64(t->bytes_in),
		      "bytes_out", ju64(t->bytes_out),
		      "connect_failures", ju64(t->connect_failures),
		      "no_backend", ju64(t->no_backend),
		      "queued", ju64(t->queued),
		      "queue_timeouts", ju64(t->queue_timeouts));
	if (!c || json_object_update(o, c) < 0) {
		json_decref(c);
		json_decref(o);
		return NULL;
	}
	json_decref(c);
	return o;
}

/* {"count", "p50", "p99"}: quantiles in ms since lb started, null before the first observation. */
static json_t *latency_json(const struct lb_hist *h, enum lb_hist_kind kind)
{
	struct lb_hist_snap s;
	double p50, p99;

	lb_hist_read(h, &s);
	p50 = lb_hist_quantile(&s, kind, 0.5);
	p99 = lb_hist_quantile(&s, kind, 0.99);
	return json_pack("{s:o, s:o, s:o}", "count", ju64(s.count),
			 "p50", p50 < 0 ? json_null() : json_real(p50 / 1000.0),
			 "p99", p99 < 0 ? json_null() : json_real(p99 / 1000.0));
}

/* A QUIC service's routing counters (docs/control.md), or NULL. */
static json_t *quic_json(const struct lb_service_conf *svc, const struct lb_shm_service *ss)
{
	if (!svc->quic.enabled)
		return NULL;
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}",
			 "routed_cid", ju64(ld(&ss->quic_routed_cid)),
			 "routed_learned_cid", ju64(ld(&ss->quic_routed_learned)),
			 "fallback", ju64(ld(&ss->quic_fallback)),
			 "dropped", ju64(ld(&ss->quic_dropped)),
			 "cids_learned", ju64(ld(&ss->quic_learned)),
			 "cid_table_full", ju64(ld(&ss->quic_learn_full)));
}

/* A UDP service's flow counters, or NULL for a TCP-only one. */
static json_t *udp_json(const struct lb_service_conf *svc, const struct lb_shm_service *ss)
{
	if (!(svc->protocols & LB_PROTO_UDP))
		return NULL;
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:o*}",
			 "flows", jint(atomic_load(&ss->udp_flows)),
			 "flows_total", ju64(ld(&ss->udp_flows_total)),
			 "datagrams_in", ju64(ld(&ss->udp_datagrams_in)),
			 "datagrams_out", ju64(ld(&ss->udp_datagrams_out)),
			 "bytes_in", ju64(ld(&ss->udp_bytes_in)),
			 "bytes_out", ju64(ld(&ss->udp_bytes_out)),
			 "dropped",
			 "no_backend", ju64(ld(&ss->udp_drop_no_backend)),
			 "flows_full", ju64(ld(&ss->udp_drop_full)),
			 "send_error", ju64(ld(&ss->udp_drop_send)),
			 "quic", quic_json(svc, ss));
}

static const char *proto_name(unsigned int protocols)
{
	return protocols == LB_PROTO_UDP ? "udp" : protocols & LB_PROTO_UDP ? "tcp+udp" : "tcp";
}

static json_t *cmd_services(struct req *r)
{
	const struct lb_config *cfg = r->st->cfg;
	const struct lb_shm *shm = r->st->shm;
	json_t *list;

	if (!need_shm(r))
		return NULL;
	list = json_array();
	for (size_t i = 0; list && i < cfg->n_services && i < shm->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];
		json_t *vips = json_array();
		char buf[LB_ADDR_STRLEN + 16];
		struct totals t;

		for (size_t k = 0; vips && k < svc->n_vips; k++)
			json_array_append_new(vips, json_string(lb_config_vip_format(svc, k, buf,
										     sizeof(buf))));
		service_totals(shm, i, &t);
		if (json_array_append_new(list, with_counters(json_pack(
			"{s:o, s:o, s:s, s:s, s:i, s:i, s:o*, s:o, s:o}", "name", jstr(svc->name),
			"vips", vips, "protocol", proto_name(svc->protocols),
			"scheduler", sched_name(svc->sched), "backends", (int)t.backends,
			"usable", (int)t.usable, "udp", udp_json(svc, &shm->services[i]),
			"duration_ms", latency_json(&shm->services[i].duration, LB_HIST_DURATION),
			"queue_ms", latency_json(&shm->services[i].queue, LB_HIST_QUEUE)), &t)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static json_t *last_check_json(const struct lb_shm_backend *b)
{
	if (!b->last_check_ms)
		return json_null();
	return json_pack("{s:b, s:I, s:o}", "ok", b->last_check_ok,
			 "time", (json_int_t)(b->last_check_ms / 1000),
			 "message", jstr(b->last_check_msg));
}

static json_t *backend_json(const struct lb_config *cfg, const struct lb_shm *shm, size_t i,
			    size_t j)
{
	const struct lb_service_conf *svc = &cfg->services[i];
	const struct lb_shm_backend *b = lb_shm_backend(shm, i, j);
	char buf[LB_ADDR_STRLEN];
	json_t *o;

	o = json_pack("{s:o, s:s, s:s, s:s, s:b, s:i, s:i, s:I}",
		      "service", jstr(svc->name),
		      "address", lb_addr_format(&b->addr, buf, sizeof(buf)),
		      "admin", lb_shm_admin_name(atomic_load(&b->admin)),
		      "health", lb_shm_health_name(atomic_load(&b->health)),
		      "usable", lb_shm_backend_usable(b),
		      "weight", (int)atomic_load(&b->weight),
		      "config_weight", j < svc->n_backends ? (int)svc->backends[j].weight : 0,
		      "max_conns", (json_int_t)b->max_conns);
	if (!o)
		return NULL;
	json_object_set_new(o, "active", jint(atomic_load(&b->active)));
	json_object_set_new(o, "total", ju64(ld(&b->total)));
	json_object_set_new(o, "bytes_in", ju64(ld(&b->bytes_in)));
	json_object_set_new(o, "bytes_out", ju64(ld(&b->bytes_out)));
	if (svc->protocols & LB_PROTO_UDP) {
		json_object_set_new(o, "datagrams_in", ju64(ld(&b->datagrams_in)));
		json_object_set_new(o, "datagrams_out", ju64(ld(&b->datagrams_out)));
	}
	json_object_set_new(o, "connect_failures", ju64(ld(&b->connect_failures)));
	if (svc->fastopen)
		json_object_set_new(o, "fastopen", json_pack("{s:o, s:o, s:o, s:b}",
				    "acked", ju64(ld(&b->fastopen_acked)),
				    "refused", ju64(ld(&b->fastopen_refused)),
				    "plain", ju64(ld(&b->fastopen_plain)),
				    "paused", lb_shm_fastopen_paused(b, lb_clock_ms())));
	json_object_set_new(o, "consecutive_failures",
			    json_integer(atomic_load(&b->consecutive_failures)));
	json_object_set_new(o, "last_check", last_check_json(b));
	json_object_set_new(o, "connect_ms", latency_json(&b->connect, LB_HIST_CONNECT));
	return o;
}

static json_t *cmd_backends(struct req *r)
{
	const struct lb_config *cfg = r->st->cfg;
	const struct lb_shm *shm = r->st->shm;
	size_t only = SIZE_MAX;
	const char *name;
	json_t *list;

	if (!need_shm(r) || !arg_string(r, "service", false, &name))
		return NULL;
	if (name && !find_service(r, name, &only))
		return NULL;
	list = json_array();
	for (size_t i = 0; list && i < cfg->n_services && i < shm->n_services; i++) {
		if (only != SIZE_MAX && i != only)
			continue;
		for (size_t j = 0; j < shm->services[i].n_backends; j++)
			json_array_append_new(list, backend_json(cfg, shm, i, j));
	}
	return list;
}

static json_t *cmd_stats(struct req *r)
{
	const struct lb_config *cfg = r->st->cfg;
	const struct lb_shm *shm = r->st->shm;
	struct totals all = { 0 };
	uint64_t accepted = 0;
	json_t *list, *tot;

	if (!need_shm(r))
		return NULL;
	list = json_array();
	for (size_t i = 0; list && i < cfg->n_services && i < shm->n_services; i++) {
		struct totals t;

		service_totals(shm, i, &t);
		totals_add(&all, &t);
		if (json_array_append_new(list, with_counters(json_pack("{s:o}", "name",
			jstr(cfg->services[i].name)), &t)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	for (unsigned int i = 0; i < shm->n_workers; i++)
		accepted += ld(&shm->workers[i].accepted);
	tot = with_counters(json_pack("{s:o, s:i, s:i}", "accepted", ju64(accepted),
				      "backends", (int)all.backends, "usable", (int)all.usable),
			    &all);
	return json_pack("{s:o, s:o}", "totals", tot, "services", list);
}

static json_t *cmd_metrics(struct req *r)
{
	char *text;

	if (r->st->refresh)
		r->st->refresh();
	text = lb_ctl_metrics(r->st);
	json_t *j;

	if (!text)
		return NULL;
	j = json_string(text);
	free(text);
	return j;
}

/*
 * The capacity report: the numbers as JSON, and "report" holding the same
 * text as lb -t prints (without its "# " comment marks) for lbctl.
 */
static json_t *cmd_limits(struct req *r)
{
	const struct lb_ctl_state *st = r->st;
	struct lb_limits l;
	json_t *j = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!st->cap) {
		fail(r, "unavailable", NULL, "capacity is not known yet");
		return NULL;
	}
	if (lb_limits_collect(&l, st->cfg, st->workers, st->cap, NULL) == 0)
		j = lb_limits_json(&l);
	f = j ? open_memstream(&text, &len) : NULL;
	if (f) {
		lb_limits_print(&l, f);
		fclose(f);
		/* Drop the "# " that keeps lb -t's output a script. */
		if (text) {
			char *wr = text;

			for (const char *rd = text; *rd; rd++) {
				if ((rd == text || rd[-1] == '\n') && rd[0] == '#' && rd[1] == ' ') {
					rd++;	/* and the loop steps over the ' ' */
					continue;
				}
				*wr++ = *rd;
			}
			*wr = '\0';
		}
		json_object_set_new(j, "report", json_string(text ? text : ""));
		free(text);
	}
	lb_limits_fini(&l);
	return j;
}

/* Per service: what its per-client rules refused, and its top clients by open connections. */
static json_t *cmd_clients(struct req *r)
{
	size_t only = SIZE_MAX, top = CLIENTS_TOP;
	const char *name;
	json_t *v, *list;

	if (!need_shm(r) || !arg_string(r, "service", false, &name))
		return NULL;
	if (name && !find_service(r, name, &only))
		return NULL;
	v = json_object_get(r->obj, "top");
	if (v) {
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;

		if (n < 1 || n > CLIENTS_TOP_MAX) {
			fail(r, "bad_argument", "top", "argument 'top' must be an integer 1..%d",
			     CLIENTS_TOP_MAX);
			return NULL;
		}
		top = (size_t)n;
	}
	if (r->st->refresh)
		r->st->refresh();
	list = json_array();
	for (size_t i = 0; list && i < r->st->cfg->n_services && i < r->st->shm->n_services; i++) {
		if (only != SIZE_MAX && i != only)
			continue;
		if (json_array_append_new(list, lb_ctl_clients_json(r->st, i, top)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static json_t *cmd_help(struct req *r);

/* ---- commands that change something ---- */

static json_t *cmd_set_state(struct req *r)
{
	const struct lb_config *cfg = r->st->cfg;
	char q[LB_STR_QUOTE_SIZE], buf[LB_ADDR_STRLEN], reason[96];
	const struct lb_shm_backend *b;
	enum lb_admin admin;
	const char *text, *old;
	size_t svc, be;
	bool changed;

	if (!arg_target(r, &svc, &be) || !arg_string(r, "state", true, &text))
		return NULL;
	if (lb_shm_admin_parse(text, &admin) < 0) {
		fail(r, "bad_argument", "state", "state %s is not one of up, drain, disabled",
		     quote(text, q, sizeof(q)));
		return NULL;
	}
	b = lb_shm_backend(r->st->shm, svc, be);
	old = lb_shm_admin_name(atomic_load(&b->admin));
	snprintf(reason, sizeof(reason), "control, %s", r->who);
	changed = lb_shm_set_admin(r->st->shm, cfg, svc, be, admin, reason);
	lb_addr_format(&b->addr, buf, sizeof(buf));
	if (!changed)
		lb_info("control: %s: set-state %s %s %s: already so", r->who,
			cfg->services[svc].name, buf, lb_shm_admin_name(admin));
	return json_pack("{s:o, s:s, s:s, s:s, s:b}", "service", jstr(cfg->services[svc].name),
			 "backend", buf, "state", lb_shm_admin_name(admin), "previous", old,
			 "changed", changed);
}

static json_t *cmd_set_weight(struct req *r)
{
	const struct lb_config *cfg = r->st->cfg;
	char buf[LB_ADDR_STRLEN], reason[96];
	const struct lb_shm_backend *b;
	json_t *v;
	json_int_t w;
	unsigned int old;
	size_t svc, be;
	bool changed;

	if (!arg_target(r, &svc, &be))
		return NULL;
	v = json_object_get(r->obj, "weight");
	if (!v) {
		fail(r, "bad_argument", "weight", "missing argument 'weight'");
		return NULL;
	}
	w = json_is_integer(v) ? json_integer_value(v) : -1;
	if (w < 0 || w > WEIGHT_MAX) {
		fail(r, "bad_argument", "weight", "argument 'weight' must be an integer 0..%d",
		     WEIGHT_MAX);
		return NULL;
	}
	b = lb_shm_backend(r->st->shm, svc, be);
	old = atomic_load(&b->weight);
	snprintf(reason, sizeof(reason), "control, %s", r->who);
	changed = lb_shm_set_weight(r->st->shm, cfg, svc, be, (unsigned int)w, reason);
	lb_addr_format(&b->addr, buf, sizeof(buf));
	if (!changed)
		lb_info("control: %s: set-weight %s %s %u: already so", r->who,
			cfg->services[svc].name, buf, (unsigned int)w);
	return json_pack("{s:o, s:s, s:i, s:i, s:b}", "service", jstr(cfg->services[svc].name),
			 "backend", buf, "weight", (int)w, "previous", (int)old, "changed", changed);
}

static json_t *cmd_reload(struct req *r)
{
	struct lb_ctl_state *st = r->st;
	char msg[sizeof(st->reload_msg)] = "";
	int rc = -EOPNOTSUPP;

	lb_info("control: %s: reload requested", r->who);
	if (st->reload)
		rc = st->reload(st->reload_arg, msg, sizeof(msg));
	if (rc == -EOPNOTSUPP) {
		fail(r, "not_supported", NULL, "%s", msg[0] ? msg : "reload not supported");
		lb_warn("control: reload: %s", r->msg);
		return NULL;
	}
	if (!msg[0])
		snprintf(msg, sizeof(msg), "%s", rc < 0 ? strerror(-rc) : "reloaded");
	lb_ctl_state_reloaded(st, rc == 0, msg);
	if (rc < 0) {
		fail(r, "reload_failed", NULL, "%s", msg);
		lb_warn("control: reload failed: %s", msg);
		return NULL;
	}
	lb_info("control: reload: %s", msg);
	return json_pack("{s:i, s:s}", "generation", (int)st->generation, "message", msg);
}

static bool need_announce(struct req *r)
{
	if (r->st->announce)
		return true;
	fail(r, "unavailable", NULL, "the gateway state is not set up yet");
	return false;
}

static json_t *cmd_drain_gateway(struct req *r)
{
	struct lb_announce *a = r->st->announce;
	json_t *stop = json_object_get(r->obj, "stop"), *t = json_object_get(r->obj, "timeout_ms");
	json_int_t timeout = 0;
	char msg[256];

	if (!need_announce(r))
		return NULL;
	if (stop && !json_is_boolean(stop)) {
		fail(r, "bad_argument", "stop", "argument 'stop' must be true or false");
		return NULL;
	}
	if (t) {
		timeout = json_is_integer(t) ? json_integer_value(t) : 0;
		if (timeout < 1 || timeout > 86400000) {
			fail(r, "bad_argument", "timeout_ms",
			     "argument 'timeout_ms' must be an integer 1..86400000");
			return NULL;
		}
	}
	if (lb_announce_drain(a, json_is_true(stop), (unsigned int)timeout, lb_clock_ms(), msg,
			      sizeof(msg)) < 0) {
		fail(r, "unavailable", NULL, "%s", msg);
		return NULL;
	}
	lb_info("control: %s: drain-gateway: %s", r->who, msg);
	return json_pack("{s:s, s:s}", "state",
			 lb_announce_gateway_name(lb_announce_state(a)->gateway), "message", msg);
}

static json_t *cmd_resume_gateway(struct req *r)
{
	struct lb_announce *a = r->st->announce;
	char msg[256];

	if (!need_announce(r))
		return NULL;
	if (lb_announce_resume(a, lb_clock_ms(), msg, sizeof(msg)) < 0) {
		fail(r, "not_draining", NULL, "%s", msg);
		return NULL;
	}
	lb_info("control: %s: resume-gateway: %s", r->who, msg);
	return json_pack("{s:s, s:s}", "state",
			 lb_announce_gateway_name(lb_announce_state(a)->gateway), "message", msg);
}

static const char *const no_args[] = { NULL };
static const char *const drain_gateway_args[] = { "stop", "timeout_ms", NULL };
static const char *const service_arg[] = { "service", NULL };
static const char *const clients_args[] = { "service", "top", NULL };
static const char *const state_args[] = { "service", "backend", "state", NULL };
static const char *const weight_args[] = { "service", "backend", "weight", NULL };

static const struct cmd commands[] = {
	{ "help", no_args, no_args, cmd_help, "list the commands" },
	{ "version", no_args, no_args, cmd_version, "lb's version and the protocol version" },
	{ "status", no_args, no_args, cmd_status, "process, config and workers" },
	{ "services", no_args, no_args, cmd_services, "services and their totals" },
	{ "backends", service_arg, no_args, cmd_backends, "backends, all or of one service" },
	{ "stats", no_args, no_args, cmd_stats, "counters in total and per service" },
	{ "metrics", no_args, no_args, cmd_metrics, "Prometheus text exposition" },
	{ "clients", clients_args, no_args, cmd_clients,
	  "clients refused (deny lists, rate, max_conns) and the top clients by open connections" },
	{ "limits", no_args, no_args, cmd_limits,
	  "connection capacity and the host limits that bound it" },
	{ "set-state", state_args, state_args, cmd_set_state,
	  "set a backend's admin state: up, drain or disabled" },
	{ "set-weight", weight_args, weight_args, cmd_set_weight,
	  "set a backend's weight, 0..1000" },
	{ "reload", no_args, no_args, cmd_reload, "reload the config file" },
	{ "drain-gateway", drain_gateway_args, no_args, cmd_drain_gateway,
	  "withdraw this gateway's announcements; connections go on until they end or "
	  "timeout_ms (then lb stops, with stop)" },
	{ "resume-gateway", no_args, no_args, cmd_resume_gateway,
	  "end a gateway drain: announce the VIPs again" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static json_t *cmd_help(struct req *r)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < N_COMMANDS; i++) {
		const struct cmd *c = &commands[i];
		json_t *args = json_array();

		for (size_t k = 0; args && c->args[k]; k++)
			json_array_append_new(args, json_string(c->args[k]));
		json_array_append_new(list, json_pack("{s:s, s:o, s:s}", "cmd", c->name,
						      "args", args, "summary", c->summary));
	}
	return list;
}

static bool arg_known(const struct cmd *c, const char *key)
{
	if (!strcmp(key, "cmd"))
		return true;
	for (size_t k = 0; c->args[k]; k++)
		if (!strcmp(key, c->args[k]))
			return true;
	return false;
}

static char *dispatch(struct req *r)
{
	char q[LB_STR_QUOTE_SIZE];
	const struct cmd *c = NULL;
	const char *name, *key;
	json_t *v, *data;

	if (!json_is_object(r->obj))
		return error_line("bad_request", "a request is a JSON object, like "
				  "{\"cmd\": \"status\"}", NULL);
	v = json_object_get(r->obj, "cmd");
	if (!v)
		return error_line("unknown_command", "missing \"cmd\"", "cmd");
	if (!json_is_string(v))
		return error_line("bad_argument", "argument 'cmd' must be a string", "cmd");
	name = json_string_value(v);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			c = &commands[i];
	if (!c) {
		snprintf(r->msg, sizeof(r->msg), "unknown command %s (try \"help\")",
			 quote(name, q, sizeof(q)));
		return error_line("unknown_command", r->msg, "cmd");
	}
	json_object_foreach(r->obj, key, v) {
		if (!arg_known(c, key)) {
			snprintf(r->msg, sizeof(r->msg), "%s takes no argument %s", c->name,
				 quote(key, q, sizeof(q)));
			return error_line("bad_argument", r->msg, key);
		}
	}
	data = c->run(r);
	if (!data) {
		if (r->code)
			return error_line(r->code, r->msg, r->arg);
		return error_line("internal", "out of memory", NULL);
	}
	return dump_line(json_pack("{s:b, s:o}", "ok", 1, "data", data));
}

char *lb_ctl_status_json(struct lb_ctl_state *st)
{
	struct req r = { .st = st, .obj = json_object() };
	json_t *o;

	if (!r.obj)
		return NULL;
	o = json_pack("{s:o*, s:o*, s:o*}", "status", cmd_status(&r),
		      "services", st->shm ? cmd_services(&r) : NULL,
		      "backends", st->shm ? cmd_backends(&r) : NULL);
	json_decref(r.obj);
	if (!o)
		return NULL;
	return dump_line(o);
}

char *lb_ctl_handle_line(struct lb_ctl_state *st, const char *line, size_t len,
			 const struct ucred *peer)
{
	struct req r = { .st = st, .peer = peer };
	json_error_t jerr;
	char *reply;

	if (peer)
		snprintf(r.who, sizeof(r.who), "uid %u pid %d", (unsigned int)peer->uid,
			 (int)peer->pid);
	else
		snprintf(r.who, sizeof(r.who), "unknown peer");
	r.obj = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!r.obj) {
		snprintf(r.msg, sizeof(r.msg), "invalid JSON at column %d: %s", jerr.column,
			 jerr.text);
		return error_line("bad_json", r.msg, NULL);
	}
	reply = dispatch(&r);
	json_decref(r.obj);
	return reply;
}
