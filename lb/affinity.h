/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_AFFINITY_H
#define LB_AFFINITY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Which backend a client was last sent to, per service, in shared memory
 * every worker sees: a service that carries both TCP and UDP sends one
 * client's connections and flows to the same backend whatever its
 * scheduler (iperf3's TCP control connection and its UDP stream must meet
 * on one server). An entry lasts until the time its writer set, and is
 * overwritten once that passed. Lock-free: a key is a 64-bit hash; an
 * entry being rewritten reads as a miss, never as another key's backend.
 * Knows no sockets and no clock (times are the caller's seconds).
 */
#define LB_AFFINITY_WINDOW 8

struct lb_affinity_entry {
	_Atomic uint64_t tag;		/* the key; 0: empty; LB_AFFINITY_BUSY: being written */
	_Atomic uint64_t val;		/* backend slot + 1 in the high half, expiry in the low */
};

struct lb_affinity {
	uint32_t mask;			/* entries - 1, a power of two */
	struct lb_affinity_entry e[];
};

/* Bytes a table for about n clients takes (2 entries each, at least a window's worth). */
size_t lb_affinity_size(uint32_t n);

/* Prepares size bytes (from lb_affinity_size, zeroed) at a as an empty table. */
void lb_affinity_init(struct lb_affinity *a, size_t size);

/* The backend slot + 1 recorded for key and not expired at now, or 0. */
uint32_t lb_affinity_get(struct lb_affinity *a, uint64_t key, uint32_t now);

/*
 * Records slot + 1 (slot1, non-zero) for key until expires. Takes key's
 * entry, else an empty or expired one in its window, else the one that
 * expires first there.
 */
void lb_affinity_set(struct lb_affinity *a, uint64_t key, uint32_t slot1, uint32_t expires);

#endif
