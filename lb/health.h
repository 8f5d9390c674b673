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

/*
 * For a checker to be stopped from inside a loop callback, where it cannot
 * be yet (an event of the current batch may still name one of its
 * sockets): puts h (NULL is fine) on *list, which lb_health_stop_list()
 * stops and empties after the batch. Two reloads can run in one batch, so
 * the list may hold more than one.
 */
void lb_health_retire(struct lb_health **list, struct lb_health *h);
void lb_health_stop_list(struct lb_health **list);

#endif
