// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lb/master.h"

/* fds a worker needs besides two per connection: listeners, epoll, signalfd, stdio... */
#define WORKER_FD_RESERVE 64
#define WORKER_PIPES 128

int lb_rules_init(struct lb_rules *r, const struct lb_config *cfg)
{
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < cfg->n_services; i++)
		n += cfg->services[i].n_vips;
	r->vips = calloc(n ? n : 1, sizeof(*r->vips));
	if (!r->vips)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < cfg->n_services; i++)
		for (size_t j = 0; j < cfg->services[i].n_vips; j++)
			memcpy(&r->vips[n++], &cfg->services[i].vips[j], sizeof(union lb_sockaddr));
	r->nft = (struct lb_nft_spec){
		.table = cfg->intercept.table,
		.mark = cfg->intercept.mark,
		.port = cfg->intercept.port,
		.vips = r->vips,
		.n_vips = n,
	};
	r->route = (struct lb_nft_route_spec){
		.mark = cfg->intercept.mark,
		.table = cfg->intercept.route_table,
		.priority = cfg->intercept.rule_priority,
		.ipv4 = lb_config_has_family(cfg, AF_INET),
		.ipv6 = lb_config_has_family(cfg, AF_INET6),
	};
	return 0;
}

void lb_rules_fini(struct lb_rules *r)
{
	free(r->vips);
	r->vips = NULL;
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
