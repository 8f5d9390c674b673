/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_WORKER_H
#define LB_WORKER_H

#include <stddef.h>

#include "lb/config.h"
#include "lb/shm.h"

#define LB_WORKER_MAX_LISTENERS 2

struct lb_worker_args {
	unsigned int id;
	unsigned int slot;		/* its lb_shm_worker in shm->workers */
	unsigned int generation;
	const struct lb_config *cfg;
	struct lb_shm *shm;
	int listen_fds[LB_WORKER_MAX_LISTENERS];	/* this worker's shard, one per family */
	size_t n_listen;
	int udp_fds[LB_WORKER_MAX_LISTENERS];	/* its UDP listeners, likewise */
	size_t n_udp;
	int master_fd;			/* EOF here means the master is gone */
	unsigned int capacity;		/* connections this worker may hold */
	unsigned int flows;		/* UDP flows this worker may hold */
	unsigned int pipes;		/* pipes it may have in flight */
	/*
	 * capacity + flows entries, shared with the master (lb_shm_ledger_map):
	 * the connections' backend claims, then the flows'.
	 */
	uint32_t *ledger;
	/* capacity entries, likewise: each connection's entry in shm->pool->clients. */
	uint32_t *client_ledger;
};

/*
 * Runs the data plane of one worker: accepts from its own listeners,
 * proxies each connection from the client's address, and returns the exit
 * status once drained after SIGTERM or at once when the master dies.
 */
int lb_worker_run(const struct lb_worker_args *args);

#endif
