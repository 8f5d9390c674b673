/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_HEALTH_H
#define LB_HEALTH_H

#include "lb/config.h"
#include "lb/loop.h"
#include "lb/shm.h"

struct lb_health;

/*
 * Starts health checking in the master's loop, never in workers: for each
 * service with a "health" block, an active tcp or http check of every
 * backend every interval_ms, from the gateway's own address (an ordinary
 * socket, not transparent). rise/fall decide state changes, which go
 * through lb_shm_set_health() with the reason. Backends that workers
 * marked down passively (fall consecutive connect failures) in a service
 * without a health block are probed with a tcp connect every interval
 * until rise probes succeed. Records each check's result and time in the
 * backend's last_check_* fields. Never blocks. Returns NULL with errno.
 */
struct lb_health *lb_health_start(struct lb_loop *loop, const struct lb_config *cfg,
				  struct lb_shm *shm);

/* Stops all checks and closes their sockets; NULL is fine. */
void lb_health_stop(struct lb_health *h);

#endif
