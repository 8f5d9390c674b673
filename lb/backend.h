/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_BACKEND_H
#define LB_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/addr.h"
#include "lb/config.h"
#include "lb/shm.h"

/*
 * Backend choice for the data plane: the service's scheduler over the
 * shared states, the max_conns claim, and passive health. One picker per
 * worker; it knows no sockets, so any protocol's data plane can use it and
 * it is unit-tested without root.
 */
struct lb_backend_picker;

enum lb_backend_result {
	LB_BACKEND_OK,
	LB_BACKEND_FULL,		/* usable backends exist, all at max_conns */
	LB_BACKEND_NONE,		/* no usable backend of the client's family */
};

/*
 * A picker for cfg over shm. id staggers the round-robin starting points of
 * the workers; seed starts random2. Returns NULL with errno set.
 */
struct lb_backend_picker *lb_backend_picker_alloc(const struct lb_config *cfg, struct lb_shm *shm,
						  unsigned int id, uint64_t seed);
void lb_backend_picker_free(struct lb_backend_picker *p);

/*
 * Chooses a backend of service for client with the service's scheduler,
 * leaving out those whose index (< 64) is set in exclude, and claims one
 * connection on it: its active counter is raised (never past max_conns,
 * whatever other workers do at the same time) and *held names its shm slot
 * (+1), so the master can give the claim back if this process dies. On OK,
 * *idx is the backend's index in the service.
 */
enum lb_backend_result lb_backend_pick(struct lb_backend_picker *p, size_t service,
				       const union lb_sockaddr *client, uint64_t exclude,
				       uint32_t *held, unsigned int *idx);

/*
 * Claims one connection on backend idx of service, chosen by the caller:
 * a QUIC connection ID names it, so the connection already lives there
 * and only its client's address is new. Unlike lb_backend_pick it is
 * granted past max_conns (the connection's older flow may still hold the
 * slot it needs) and whatever the backend's states (the caller judged
 * them). Counts it in the backend's totals; *held as lb_backend_pick.
 */
void lb_backend_claim(struct lb_shm *shm, size_t service, unsigned int idx, uint32_t *held);

/* The backend a claim names; *held must be non-zero. */
struct lb_shm_backend *lb_backend_held(const struct lb_shm *shm, uint32_t held);

/* Gives back the claim in *held (if any) and clears it. */
void lb_backend_put(struct lb_shm *shm, uint32_t *held);

/*
 * Passive health: a connect to backend idx of service failed with err.
 * Counts it; fall consecutive failures take the backend down. Returns
 * true when this failure took it down.
 */
bool lb_backend_connect_failed(struct lb_backend_picker *p, size_t service, unsigned int idx,
			       int err);

/* A connect succeeded: the consecutive failure count starts again. */
void lb_backend_connected(struct lb_shm_backend *b);

#endif
