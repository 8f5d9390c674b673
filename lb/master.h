/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_MASTER_H
#define LB_MASTER_H

#include "lb/config.h"
#include "nft/nft.h"

/* The nft and routing specs lb installs for cfg. */
struct lb_rules {
	struct lb_nft_spec nft;
	struct lb_nft_route_spec route;
	struct sockaddr_storage *vips;	/* owned; nft.vips points here */
};

/* Fills r from cfg; returns 0 or -ENOMEM. Free with lb_rules_fini(). */
int lb_rules_init(struct lb_rules *r, const struct lb_config *cfg);
void lb_rules_fini(struct lb_rules *r);

/* Per-worker limits derived from RLIMIT_NOFILE. */
struct lb_capacity {
	unsigned long nofile;		/* soft limit after raising it to the hard one */
	unsigned int conns;		/* connections one worker may hold */
	unsigned int pipes;		/* pipes one worker may have in flight */
};

/* Raises the soft open-file limit to the hard one and derives capacity. */
void lb_capacity_compute(struct lb_capacity *cap);

/*
 * Runs lb: preflight checks, listeners, rules, workers, supervision, until
 * SIGTERM/SIGINT. Takes ownership of cfg. Returns the process exit status.
 */
int lb_master_run(const char *config_path, struct lb_config *cfg);

#endif
