/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_MASTER_H
#define LB_MASTER_H

#include "lb/config.h"

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
