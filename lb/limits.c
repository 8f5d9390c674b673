// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The capacity report. Everything is computed from the config, the
 * per-worker capacity the master derives from RLIMIT_NOFILE and a handful
 * of sysctls, so tests point procroot at a fake tree. The numbers and the
 * reasoning behind each warning are in docs/capacity.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lb/limits.h"
#include "lb/log.h"
#include "lb/preflight.h"

#define FDS_PER_CONN 2
#define SMALL_WORKER 1000		/* fewer connections per worker than this: warn */
/* fds a worker needs besides two per connection: listeners, epoll, signalfd, stdio... */
#define WORKER_FD_RESERVE 64
#define WORKER_PIPES 128

static const char *const bound_names[] = {
	[LB_LIMITS_BOUND_NOFILE] = "open-file limit",
	[LB_LIMITS_BOUND_FILE_MAX] = "fs.file-max",
	[LB_LIMITS_BOUND_MAX_CONNS] = "max_conns",
};

const char *lb_limits_bound_name(enum lb_limits_bound b)
{
	return (unsigned int)b < sizeof(bound_names) / sizeof(bound_names[0]) ? bound_names[b]
									       : "unknown";
}

/*
 * Reads up to n integers from procroot/name into v; the ones it cannot
 * read, and a negative one and those after it, are LB_LIMITS_UNKNOWN.
 * Returns how many it read.
 */
static size_t read_sysctl(const char *procroot, const char *name, long long *v, size_t n)
{
	size_t got = lb_preflight_sysctl(procroot, name, v, n);

	for (size_t i = 0; i < got; i++)
		if (v[i] < 0)
			got = i;
	for (size_t i = got; i < n; i++)
		v[i] = LB_LIMITS_UNKNOWN;
	return got;
}

static int warn(struct lb_limits *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int warn(struct lb_limits *l, const char *fmt, ...)
{
	char **w;
	va_list ap;
	int rc;

	w = realloc(l->warnings, (l->n_warnings + 1) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	l->warnings = w;
	va_start(ap, fmt);
	rc = vasprintf(&w[l->n_warnings], fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	l->n_warnings++;
	return 0;
}

static void collect_sysctls(struct lb_limits *l, const char *root)
{
	long long range[2];

	read_sysctl(root, "fs/file-max", &l->file_max, 1);
	read_sysctl(root, "fs/nr_open", &l->nr_open, 1);
	read_sysctl(root, "net/core/somaxconn", &l->somaxconn, 1);
	read_sysctl(root, "net/ipv4/tcp_max_syn_backlog", &l->syn_backlog, 1);
	if (read_sysctl(root, "net/ipv4/tcp_mem", l->tcp_mem, 3) != 3)
		l->tcp_mem[0] = l->tcp_mem[1] = l->tcp_mem[2] = LB_LIMITS_UNKNOWN;
	l->port_lo = l->port_hi = LB_LIMITS_UNKNOWN;
	if (read_sysctl(root, "net/ipv4/ip_local_port_range", range, 2) == 2 &&
	    range[1] >= range[0]) {
		l->port_lo = range[0];
		l->port_hi = range[1];
		l->ports = range[1] - range[0] + 1;
	}
}

static void collect_services(struct lb_limits *l, const struct lb_config *cfg)
{
	bool all_bounded = cfg->n_services > 0;

	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];
		struct lb_limits_service *s = &l->services[i];

		s->name = svc->name;
		s->n_backends = svc->n_backends;
		for (size_t j = 0; j < svc->n_backends; j++) {
			if (!svc->backends[j].max_conns) {
				s->max_conns = 0;
				break;
			}
			s->max_conns += svc->backends[j].max_conns;
		}
		s->nontransparent = l->ports * svc->n_backends;
		s->limit = s->max_conns && s->max_conns < l->total ? s->max_conns : l->total;
		if (!s->max_conns)
			all_bounded = false;
		l->max_conns += s->max_conns;
	}
	if (!all_bounded)
		l->max_conns = 0;
}

/* The smallest bound wins; on a tie the earlier (more specific to lb) one. */
static void choose_bound(struct lb_limits *l)
{
	l->bound = LB_LIMITS_BOUND_NOFILE;
	l->bound_conns = l->total;
	if (l->file_max != LB_LIMITS_UNKNOWN &&
	    (unsigned long long)l->file_max / FDS_PER_CONN < l->bound_conns) {
		l->bound = LB_LIMITS_BOUND_FILE_MAX;
		l->bound_conns = l->file_max / FDS_PER_CONN;
	}
	if (l->max_conns && l->max_conns < l->bound_conns) {
		l->bound = LB_LIMITS_BOUND_MAX_CONNS;
		l->bound_conns = l->max_conns;
	}
}

static int collect_warnings(struct lb_limits *l)
{
	unsigned long long over = 0;
	int rc = 0;

	for (size_t i = 0; i < l->n_services && !rc; i++) {
		const struct lb_limits_service *s = &l->services[i];

		if (s->max_conns > l->total) {
			over++;
			rc = warn(l, "service %s: its backends' max_conns add up to %llu, more than "
				  "the %llu connections %u workers of %u can hold: add workers or "
				  "raise the open-file limit", s->name, s->max_conns, l->total,
				  l->workers, l->per_worker);
		}
	}
	if (!rc && !over && l->max_conns > l->total)
		rc = warn(l, "the services' max_conns add up to %llu, more than the %llu "
			  "connections %u workers of %u can hold: add workers or raise the "
			  "open-file limit", l->max_conns, l->total, l->workers, l->per_worker);
	if (!rc && l->plan.capped)
		rc = warn(l, "\"workers\": \"auto\": %llu connections and %u %% headroom need "
			  "%u workers of %u (open-file limit %lu), more than %d: capped at %d, "
			  "which hold %llu; raise the open-file limit", l->plan.wanted,
			  LB_WORKERS_HEADROOM_PCT, l->plan.needed, l->plan.per_worker, l->nofile,
			  LB_CONFIG_WORKERS_MAX, LB_CONFIG_WORKERS_MAX, l->total);
	else if (!rc && l->plan.wanted_from && !strcmp(l->plan.wanted_from, "connections") &&
		 l->plan.wanted > l->total && l->plan.needed > LB_CONFIG_WORKERS_MAX)
		rc = warn(l, "\"connections\" %llu is more than the %llu connections %u workers "
			  "of %u can hold, and more than %d workers could: raise the open-file "
			  "limit", l->plan.wanted, l->total, l->workers, l->per_worker,
			  LB_CONFIG_WORKERS_MAX);
	else if (!rc && l->plan.wanted_from && !strcmp(l->plan.wanted_from, "connections") &&
		 l->plan.wanted > l->total)
		rc = warn(l, "\"connections\" %llu is more than the %llu connections %u workers "
			  "of %u can hold: set \"workers\" to %u (%u %% headroom) or to \"auto\"",
			  l->plan.wanted, l->total, l->workers, l->per_worker, l->plan.needed,
			  LB_WORKERS_HEADROOM_PCT);
	if (!rc && l->per_worker < SMALL_WORKER)
		rc = warn(l, "the open-file limit %lu leaves %u connections per worker: raise "
			  "it (LimitNOFILE= in the unit, or ulimit -Hn)", l->nofile, l->per_worker);
	if (!rc && l->file_max != LB_LIMITS_UNKNOWN && (unsigned long long)l->file_max < l->fds)
		rc = warn(l, "fs.file-max %lld is below the %llu file descriptors %u workers "
			  "may open (%lu each): the host runs out of file handles at %lld "
			  "connections; raise fs.file-max", l->file_max, l->fds, l->workers,
			  l->nofile, l->file_max / FDS_PER_CONN);
	if (!rc && l->somaxconn != LB_LIMITS_UNKNOWN && l->somaxconn < l->per_worker)
		rc = warn(l, "net.core.somaxconn %lld is below a worker's capacity %u: a burst "
			  "of new connections (every client reconnecting after a restart) "
			  "overflows the listen queues and SYNs are dropped and retried; "
			  "raise it to %u or more", l->somaxconn, l->per_worker, l->per_worker);
	if (!rc && l->syn_backlog != LB_LIMITS_UNKNOWN && l->syn_backlog < l->per_worker)
		rc = warn(l, "net.ipv4.tcp_max_syn_backlog %lld is below a worker's capacity "
			  "%u: handshakes beyond it fall back to SYN cookies (or are dropped "
			  "without them); raise it to %u or more", l->syn_backlog,
			  l->per_worker, l->per_worker);
	if (!rc && l->tcp_mem[2] != LB_LIMITS_UNKNOWN &&
	    (unsigned long long)l->tcp_mem[2] < l->total * FDS_PER_CONN)
		rc = warn(l, "net.ipv4.tcp_mem allows %lld pages of socket buffers, less than "
			  "one page for each of the %llu sockets %llu connections use: idle "
			  "connections cost none, but when many carry data at once the kernel "
			  "throttles them", l->tcp_mem[2], l->total * FDS_PER_CONN, l->total);
	return rc;
}

static unsigned int online_cpus(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	return ncpu > 0 ? (unsigned int)ncpu : 1;
}

/* The sum of every backend's max_conns, or 0 when one of them has none. */
static unsigned long long config_max_conns(const struct lb_config *cfg)
{
	unsigned long long sum = 0;

	for (size_t i = 0; i < cfg->n_services; i++)
		for (size_t j = 0; j < cfg->services[i].n_backends; j++) {
			if (!cfg->services[i].backends[j].max_conns)
				return 0;
			sum += cfg->services[i].backends[j].max_conns;
		}
	return sum;
}

void lb_limits_plan_workers(struct lb_workers_plan *p, const struct lb_config *cfg,
			    const struct lb_capacity *cap)
{
	unsigned int conns, flows;
	unsigned long long need;

	memset(p, 0, sizeof(*p));
	p->cpus = online_cpus();
	lb_capacity_split(cap, cfg, &conns, &flows);
	/* A UDP-only config spends its slots on flows. */
	p->per_worker = conns ? conns : flows;
	if (cfg->connections) {
		p->wanted = cfg->connections;
		p->wanted_from = "connections";
	} else if ((p->wanted = config_max_conns(cfg))) {
		p->wanted_from = "max_conns";
	}
	p->sized_for = p->wanted + (p->wanted * LB_WORKERS_HEADROOM_PCT + 99) / 100;
	if (p->wanted && p->per_worker) {
		need = (p->sized_for + p->per_worker - 1) / p->per_worker;
		p->needed = need > UINT_MAX ? UINT_MAX : (unsigned int)need;
	}
	if (!cfg->workers_auto) {
		p->how = cfg->workers ? LB_WORKERS_SET : LB_WORKERS_CPUS;
		p->workers = cfg->workers ? cfg->workers : p->cpus;
		return;
	}
	p->how = p->needed > p->cpus ? LB_WORKERS_AUTO : LB_WORKERS_AUTO_CPUS;
	p->workers = p->needed > p->cpus ? p->needed : p->cpus;
	if (p->workers > LB_CONFIG_WORKERS_MAX) {
		p->workers = LB_CONFIG_WORKERS_MAX;
		p->capped = true;
	}
}

unsigned int lb_limits_workers(const struct lb_config *cfg, const struct lb_capacity *cap)
{
	struct lb_workers_plan p;

	lb_limits_plan_workers(&p, cfg, cap);
	return p.workers;
}

int lb_limits_collect(struct lb_limits *out, const struct lb_config *cfg, unsigned int workers,
		      const struct lb_capacity *cap, const char *procroot)
{
	long ps = sysconf(_SC_PAGESIZE);

	memset(out, 0, sizeof(*out));
	lb_limits_plan_workers(&out->plan, cfg, cap);
	if (!workers)
		workers = out->plan.workers;
	out->workers = workers;
	out->nofile = cap->nofile;
	lb_capacity_split(cap, cfg, &out->per_worker, &out->per_worker_flows);
	out->pipes = cap->pipes;
	out->total = (unsigned long long)workers * out->per_worker;
	out->fds = (unsigned long long)workers * cap->nofile;
	out->page_size = ps > 0 ? (unsigned long)ps : 4096;
	collect_sysctls(out, procroot ? procroot : "/proc/sys");
	out->services = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*out->services));
	if (!out->services)
		return -ENOMEM;
	out->n_services = cfg->n_services;
	collect_services(out, cfg);
	choose_bound(out);
	return collect_warnings(out);
}

void lb_limits_fini(struct lb_limits *l)
{
	for (size_t i = 0; i < l->n_warnings; i++)
		free(l->warnings[i]);
	free(l->warnings);
	free(l->services);
	l->warnings = NULL;
	l->services = NULL;
	l->n_warnings = l->n_services = 0;
}

/* --- output --- */

static const char *const how_names[] = {
	[LB_WORKERS_SET] = "set",
	[LB_WORKERS_CPUS] = "cpus",
	[LB_WORKERS_AUTO] = "auto",
	[LB_WORKERS_AUTO_CPUS] = "auto_cpus",
};

/*
 * One line on how the worker count came about, for lb -t, lbctl limits
 * and the log: the arithmetic of "auto" written out, so an operator can
 * check it and see which knob moves it.
 */
static void plan_text(const struct lb_workers_plan *p, unsigned long nofile, char *buf, size_t len)
{
	int n = 0;

	switch (p->how) {
	case LB_WORKERS_SET:
		snprintf(buf, len, "%u, as \"workers\" says", p->workers);
		return;
	case LB_WORKERS_CPUS:
		snprintf(buf, len, "%u, one per CPU (\"workers\" is 0 or absent)", p->workers);
		return;
	case LB_WORKERS_AUTO:
	case LB_WORKERS_AUTO_CPUS:
		break;
	}
	if (!p->wanted) {
		snprintf(buf, len, "%u, \"auto\" with no \"connections\" to size for (nor a "
			 "max_conns on every backend): one per CPU", p->workers);
		return;
	}
	n = snprintf(buf, len, "%u, \"auto\": %llu connections wanted (%s) + %u %% for the "
		     "kernel's uneven spread = %llu, at %u per worker (open-file limit %lu): "
		     "%u needed", p->workers, p->wanted,
		     strcmp(p->wanted_from, "connections") ? "the backends' max_conns added up"
							   : "\"connections\"",
		     LB_WORKERS_HEADROOM_PCT, p->sized_for, p->per_worker, nofile, p->needed);
	if (n < 0 || (size_t)n >= len)
		return;
	if (p->capped)
		snprintf(buf + n, len - n, ", capped at %d", LB_CONFIG_WORKERS_MAX);
	else if (p->how == LB_WORKERS_AUTO_CPUS)
		snprintf(buf + n, len - n, ", but never fewer than one per CPU");
}

static json_t *jnum(long long v)
{
	return v == LB_LIMITS_UNKNOWN ? json_null() : json_integer(v);
}

static json_t *jull(unsigned long long v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

json_t *lb_limits_json(const struct lb_limits *l)
{
	json_t *root, *services = json_array(), *warnings = json_array(), *tcp_mem, *range, *plan;
	char text[384];

	tcp_mem = l->tcp_mem[0] == LB_LIMITS_UNKNOWN ? json_null()
		: json_pack("[I, I, I]", (json_int_t)l->tcp_mem[0], (json_int_t)l->tcp_mem[1],
			    (json_int_t)l->tcp_mem[2]);
	range = l->port_lo == LB_LIMITS_UNKNOWN ? json_null()
		: json_pack("[I, I]", (json_int_t)l->port_lo, (json_int_t)l->port_hi);
	for (size_t i = 0; services && i < l->n_services; i++) {
		const struct lb_limits_service *s = &l->services[i];

		json_array_append_new(services, json_pack(
			"{s:s, s:i, s:o, s:o, s:o}",
			"name", s->name,
			"backends", (int)s->n_backends,
			"max_conns", s->max_conns ? jull(s->max_conns) : json_null(),
			"limit", jull(s->limit),
			"nontransparent_limit", l->ports ? jull(s->nontransparent) : json_null()));
	}
	for (size_t i = 0; warnings && i < l->n_warnings; i++)
		json_array_append_new(warnings, json_string(l->warnings[i]));
	plan_text(&l->plan, l->nofile, text, sizeof(text));
	plan = json_pack("{s:s, s:i, s:i, s:o, s:o, s:i, s:o, s:i, s:o, s:b, s:s}",
			 "how", how_names[l->plan.how],
			 "workers", (int)l->plan.workers,
			 "cpus", (int)l->plan.cpus,
			 "wanted", l->plan.wanted ? jull(l->plan.wanted) : json_null(),
			 "wanted_from", l->plan.wanted_from ? json_string(l->plan.wanted_from)
							    : json_null(),
			 "headroom_percent", LB_WORKERS_HEADROOM_PCT,
			 "sized_for", l->plan.wanted ? jull(l->plan.sized_for) : json_null(),
			 "per_worker", (int)l->plan.per_worker,
			 "needed", l->plan.wanted ? json_integer(l->plan.needed) : json_null(),
			 "capped", l->plan.capped,
			 "text", text);
	root = json_pack("{s:i, s:o, s:{s:I, s:i, s:i, s:i}, s:o, s:o, s:{s:o, s:o, s:o, s:o, s:o, s:o}, "
			 "s:I, s:o, s:{s:s, s:o}, s:o}",
			 "workers", (int)l->workers,
			 "workers_plan", plan,
			 "per_worker",
			 "nofile", (json_int_t)l->nofile,
			 "connections", (int)l->per_worker,
			 "udp_flows", (int)l->per_worker_flows,
			 "pipes", (int)l->pipes,
			 "connections", jull(l->total),
			 "fds", jull(l->fds),
			 "sysctl",
			 "fs.file-max", jnum(l->file_max),
			 "fs.nr_open", jnum(l->nr_open),
			 "net.core.somaxconn", jnum(l->somaxconn),
			 "net.ipv4.tcp_max_syn_backlog", jnum(l->syn_backlog),
			 "net.ipv4.tcp_mem", tcp_mem,
			 "net.ipv4.ip_local_port_range", range,
			 "page_size", (json_int_t)l->page_size,
			 "services", services,
			 "binding",
			 "limit", lb_limits_bound_name(l->bound),
			 "connections", jull(l->bound_conns),
			 "warnings", warnings);
	return root;
}

static void print_num(FILE *out, const char *name, long long v)
{
	if (v == LB_LIMITS_UNKNOWN)
		fprintf(out, "%s unknown", name);
	else
		fprintf(out, "%s %lld", name, v);
}

void lb_limits_print(const struct lb_limits *l, FILE *out)
{
	unsigned long long used;
	char plan[384];

	plan_text(&l->plan, l->nofile, plan, sizeof(plan));
	fprintf(out, "# workers: %s\n", plan);
	if (l->workers != l->plan.workers)
		fprintf(out, "# workers: %u running (the config now asks for %u; a reload applies it)\n",
			l->workers, l->plan.workers);
	fprintf(out, "# capacity: %u connections per worker (open-file limit %lu), "
		"%u workers: %llu connections\n", l->per_worker, l->nofile, l->workers, l->total);
	if (l->per_worker_flows)
		fprintf(out, "# udp: %u flows per worker, %llu in all (two fds each, from the same "
			"open-file limit)\n", l->per_worker_flows,
			(unsigned long long)l->workers * l->per_worker_flows);
	used = 2 * ((unsigned long long)l->per_worker + l->per_worker_flows) + 2 * l->pipes;
	fprintf(out, "#   a worker holds 2 fds per connection and keeps %u for pipes and %llu "
		"spare; %u workers may open %llu fds\n", 2 * l->pipes,
		l->nofile > used ? l->nofile - used : 0, l->workers, l->fds);
	fprintf(out, "#   ");
	print_num(out, "fs.file-max", l->file_max);
	if (l->file_max != LB_LIMITS_UNKNOWN)
		fprintf(out, " (%lld connections at 2 fds each)", l->file_max / FDS_PER_CONN);
	fprintf(out, ", ");
	print_num(out, "fs.nr_open", l->nr_open);
	if (l->nr_open != LB_LIMITS_UNKNOWN && (unsigned long long)l->nr_open > l->nofile)
		fprintf(out, " (the hard open-file limit may be raised up to it)");
	fprintf(out, "\n#   ");
	print_num(out, "net.core.somaxconn", l->somaxconn);
	fprintf(out, ", ");
	print_num(out, "net.ipv4.tcp_max_syn_backlog", l->syn_backlog);
	fprintf(out, " (queues for connections not yet accepted)\n");
	if (l->tcp_mem[0] != LB_LIMITS_UNKNOWN)
		fprintf(out, "#   net.ipv4.tcp_mem %lld %lld %lld pages (pressure at %lld MiB, "
			"limit %lld MiB of socket buffers; idle connections use none)\n",
			l->tcp_mem[0], l->tcp_mem[1], l->tcp_mem[2],
			l->tcp_mem[1] * (long long)l->page_size >> 20,
			l->tcp_mem[2] * (long long)l->page_size >> 20);
	else
		fprintf(out, "#   net.ipv4.tcp_mem unknown\n");
	if (l->ports)
		fprintf(out, "#   net.ipv4.ip_local_port_range %lld-%lld: %llu ports\n", l->port_lo,
			l->port_hi, l->ports);
	else
		fprintf(out, "#   net.ipv4.ip_local_port_range unknown\n");
	for (size_t i = 0; i < l->n_services; i++) {
		const struct lb_limits_service *s = &l->services[i];

		fprintf(out, "#   service %s: %u backend%s, ", s->name, s->n_backends,
			s->n_backends == 1 ? "" : "s");
		if (s->max_conns)
			fprintf(out, "max_conns %llu in all", s->max_conns);
		else
			fprintf(out, "no max_conns");
		fprintf(out, ", lb holds up to %llu\n", s->limit);
		if (l->ports)
			fprintf(out, "#     a proxy connecting from one address of its own would stop "
				"at %u x %llu = %llu (one port per connection per backend "
				"ip:port); lb connects from the client's address and does not\n",
				s->n_backends, l->ports, s->nontransparent);
	}
	fprintf(out, "#   binding limit: %s, %llu connections\n", lb_limits_bound_name(l->bound),
		l->bound_conns);
	for (size_t i = 0; i < l->n_warnings; i++)
		fprintf(out, "# warning: %s\n", l->warnings[i]);
}

void lb_capacity_split(const struct lb_capacity *cap, const struct lb_config *cfg,
		       unsigned int *conns, unsigned int *flows)
{
	unsigned int protos = 0;

	for (size_t i = 0; i < cfg->n_services; i++)
		protos |= cfg->services[i].protocols;
	*flows = !(protos & LB_PROTO_UDP) ? 0 : protos & LB_PROTO_TCP ? cap->conns / 2 : cap->conns;
	*conns = cap->conns - *flows;
}

void lb_limits_log(const struct lb_config *cfg, unsigned int workers,
		   const struct lb_capacity *cap)
{
	struct lb_limits l;
	char plan[384];

	if (lb_limits_collect(&l, cfg, workers, cap, NULL) == 0) {
		plan_text(&l.plan, l.nofile, plan, sizeof(plan));
		lb_info("limits: workers: %s", plan);
		for (size_t i = 0; i < l.n_warnings; i++)
			lb_warn("limits: %s", l.warnings[i]);
		lb_info("limits: %llu connections over %u workers (%u each, open-file limit %lu); "
			"binding limit: %s, %llu", l.total, l.workers, l.per_worker, l.nofile,
			lb_limits_bound_name(l.bound), l.bound_conns);
	}
	lb_limits_fini(&l);
}

void lb_capacity_compute(struct lb_capacity *cap)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		rl.rlim_cur = 1024;
	cap->nofile = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
	cap->pipes = WORKER_PIPES;
	if (cap->nofile < 2 * cap->pipes + WORKER_FD_RESERVE + 64)
		cap->pipes = cap->nofile / 8;
	cap->conns = (cap->nofile - 2 * cap->pipes - WORKER_FD_RESERVE) / 2;
}
