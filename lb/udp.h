/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_UDP_H
#define LB_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/backend.h"
#include "lb/config.h"
#include "lb/loop.h"
#include "lb/shm.h"

/*
 * A worker's UDP data plane. The first datagram of a flow reaches one of
 * the worker's UDP listeners (tproxy, with its original VIP:port in a
 * control message); the flow then gets two sockets of its own:
 *   - a reply socket, bound to the VIP and connected to the client: the
 *     kernel's tproxy lookup finds it for the client's next datagrams,
 *     which therefore stay with this worker (and its generation) whatever
 *     the listener group becomes;
 *   - an upstream socket, bound to the client's own address and connected
 *     to the backend, which so sees the client's real ip:port.
 * A flow ends after udp_idle_timeout_ms without a datagram either way,
 * after udp_responses replies (when set), or when the backend answers with
 * an ICMP port unreachable (a failed connect for passive health).
 */
struct lb_udp;

struct lb_udp_args {
	const struct lb_config *cfg;
	struct lb_shm *shm;
	struct lb_loop *loop;
	struct lb_backend_picker *picker;
	uint32_t *ledger;		/* capacity entries: each flow's backend claim */
	unsigned int capacity;		/* flows this worker may hold */
	uint16_t owner;			/* this worker's shm slot: owner of its keyset keys */
	_Atomic int64_t *gauge;		/* where it shows its open flows (its shm slot) */
	const int *listen_fds;		/* its UDP listeners, one per family */
	size_t n_listen;
};

/* Starts the data plane (watching the listeners). Returns NULL with errno set. */
struct lb_udp *lb_udp_alloc(const struct lb_udp_args *args);

/* Ends every flow (drain timeout, exit) and frees it all. */
void lb_udp_free(struct lb_udp *u);

/*
 * Reads what already queued on the listeners, then closes them: no new
 * flow starts here; existing flows go on until they end.
 */
void lb_udp_stop_accepting(struct lb_udp *u);

/* Flows held now. */
unsigned int lb_udp_active(const struct lb_udp *u);

/* Ends every flow now, each logged with reason (drain timeout). */
void lb_udp_end_all(struct lb_udp *u, const char *reason);

/* Frees what this batch of events retired; call after every batch. */
void lb_udp_after_batch(struct lb_udp *u);

/* The shm keyset key of a flow from client to backend. */
uint64_t lb_udp_pair_key(const union lb_sockaddr *client, const union lb_sockaddr *backend);

#endif
