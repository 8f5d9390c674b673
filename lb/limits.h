/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LIMITS_H
#define LB_LIMITS_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>

#include "lb/config.h"

/*
 * The capacity report `lb -t` and the control socket's "limits" command
 * print: how many connections the workers may hold, the host limits that
 * bound them, which binds first, and what a non-transparent proxy would hit
 * that lb does not. Pure apart from reading a /proc/sys tree (docs/capacity.md).
 */

/* Per-worker limits derived from RLIMIT_NOFILE. */
struct lb_capacity {
	unsigned long nofile;		/* soft limit after raising it to the hard one */
	unsigned int conns;		/* connections one worker may hold */
	unsigned int pipes;		/* pipes one worker may have in flight */
};

/* Raises the soft open-file limit to the hard one and derives capacity. */
void lb_capacity_compute(struct lb_capacity *cap);

/* A sysctl value that could not be read is LB_LIMITS_UNKNOWN. */
#define LB_LIMITS_UNKNOWN (-1LL)

enum lb_limits_bound {
	LB_LIMITS_BOUND_NOFILE,		/* workers x the per-worker capacity */
	LB_LIMITS_BOUND_FILE_MAX,	/* fs.file-max at two fds per connection */
	LB_LIMITS_BOUND_MAX_CONNS,	/* every backend has max_conns: their sum */
};

struct lb_limits_service {
	const char *name;		/* borrowed from the config */
	unsigned int n_backends;
	/* Sum of the backends' max_conns; 0 when one of them is unlimited. */
	unsigned long long max_conns;
	/*
	 * Where a proxy connecting from one address of its own would stop:
	 * one ephemeral port per connection to each backend ip:port, so the
	 * port range's width times the backends. 0: port range unknown.
	 */
	unsigned long long nontransparent;
	unsigned long long limit;	/* what lb may hold for it: min(total, max_conns) */
};

/* How the number of workers was chosen (lb_limits_plan_workers). */
enum lb_workers_how {
	LB_WORKERS_SET,			/* "workers": N */
	LB_WORKERS_CPUS,		/* "workers" 0 or absent: one per online CPU */
	LB_WORKERS_AUTO,		/* "auto": enough for the connections wanted */
	LB_WORKERS_AUTO_CPUS,		/* "auto" with no target, or one the CPUs already cover */
};

/* A share of headroom on top of the connections wanted: the kernel spreads them unevenly. */
#define LB_WORKERS_HEADROOM_PCT 10u

struct lb_workers_plan {
	enum lb_workers_how how;
	unsigned int workers;
	unsigned int cpus;		/* online CPUs */
	/* Connections wanted: "connections", else the sum of every backend's max_conns; 0: neither. */
	unsigned long long wanted;
	const char *wanted_from;	/* "connections", "max_conns", or NULL */
	unsigned long long sized_for;	/* wanted plus the headroom */
	unsigned int per_worker;	/* connections (UDP flows in a UDP-only config) one worker holds */
	unsigned int needed;		/* workers for sized_for at per_worker, before any cap */
	bool capped;			/* needed more than LB_CONFIG_WORKERS_MAX */
};

/*
 * Sizes the workers for cfg at per-worker capacity cap: "workers": N is N;
 * 0 is one per CPU; "auto" is enough for the connections wanted plus
 * LB_WORKERS_HEADROOM_PCT, never fewer than the CPUs nor more than
 * LB_CONFIG_WORKERS_MAX. Pure but for counting the CPUs.
 */
void lb_limits_plan_workers(struct lb_workers_plan *p, const struct lb_config *cfg,
			    const struct lb_capacity *cap);

struct lb_limits {
	struct lb_workers_plan plan;
	unsigned int workers;
	unsigned long nofile;		/* per worker (RLIMIT_NOFILE) */
	unsigned int per_worker;	/* connections one worker may hold */
	unsigned int per_worker_flows;	/* UDP flows one worker may hold, of the same fds */
	unsigned int pipes;		/* pipes one worker may have in flight */
	unsigned long long total;	/* workers x per_worker */
	unsigned long long fds;		/* workers x nofile: what the workers may open */

	long long file_max, nr_open, somaxconn, syn_backlog;
	long long tcp_mem[3];		/* pages: low, pressure, high */
	long long port_lo, port_hi;	/* net.ipv4.ip_local_port_range */
	unsigned long long ports;	/* its width, 0 when unknown */
	unsigned long page_size;

	struct lb_limits_service *services;
	size_t n_services;
	unsigned long long max_conns;	/* over services, 0 when one is unlimited */

	enum lb_limits_bound bound;	/* the limit that binds first */
	unsigned long long bound_conns;	/* and the connections it allows */

	char **warnings;		/* owned, one line each, no newline */
	size_t n_warnings;
};

/* The workers cfg runs at per-worker capacity cap (lb_limits_plan_workers). */
unsigned int lb_limits_workers(const struct lb_config *cfg, const struct lb_capacity *cap);

/*
 * Fills out for cfg run with workers workers (0: lb_limits_workers(cfg, cap)) with per-worker capacity cap,
 * reading sysctls below procroot (NULL: "/proc/sys"). Unreadable sysctls
 * are LB_LIMITS_UNKNOWN and produce no warning. Returns 0 or -ENOMEM;
 * release with lb_limits_fini() either way.
 */
int lb_limits_collect(struct lb_limits *out, const struct lb_config *cfg, unsigned int workers,
		      const struct lb_capacity *cap, const char *procroot);
void lb_limits_fini(struct lb_limits *l);

/*
 * A worker's slots (cap->conns: two fds each) shared between TCP
 * connections and UDP flows: half each when cfg has services of both
 * protocols, all of them to the one it has otherwise.
 */
void lb_capacity_split(const struct lb_capacity *cap, const struct lb_config *cfg,
		       unsigned int *conns, unsigned int *flows);

/* "open-file limit", "fs.file-max", "max_conns". */
const char *lb_limits_bound_name(enum lb_limits_bound b);

/* The report as a JSON object (owned), or NULL when out of memory. */
json_t *lb_limits_json(const struct lb_limits *l);

/* The report as "# "-prefixed lines, so lb -t output stays a script. */
void lb_limits_print(const struct lb_limits *l, FILE *out);

/*
 * At start: logs each warning (a host limit below what cfg asks for is
 * worth a line) and the total lb may hold.
 */
void lb_limits_log(const struct lb_config *cfg, unsigned int workers,
		   const struct lb_capacity *cap);

#endif
