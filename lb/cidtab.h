/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_CIDTAB_H
#define LB_CIDTAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * QUIC connection IDs lb learned, and the backend each belongs to, in
 * shared memory that every worker and every generation sees: a client
 * that comes back from a new address or port lands on whatever worker the
 * kernel's reuseport hash picks, and that worker must find the backend its
 * connection lives on. Keys are (service, CID): the service as a 64-bit
 * identity that is the same in every generation (its name's hash), so a
 * reload keeps what was learned. Values are a backend's shm slot (+1),
 * which a reload also keeps for a backend it keeps.
 *
 * An entry lasts until the time its writer gave, in seconds on the
 * caller's clock; the flows that use a CID keep moving that forward while
 * they live, so an entry outlives its last flow by at most the TTL they
 * use. Lock-free, like lb_affinity: a key is a 64-bit keyed hash of
 * (service, CID) with a seed drawn when the table is made, so nobody can
 * aim CIDs at one window without knowing the seed; an entry being
 * rewritten reads as a miss, never as another key's backend. Two CIDs
 * with equal hashes (2^-64 a pair) would share an entry: the cost is one
 * connection sent to the wrong backend. A live entry is never evicted for
 * a new one: when a window holds only live entries, the new CID is not
 * learned (lb_cidtab_set says so), and the connections already learned
 * keep their routes. Knows no sockets and no clock.
 */
#define LB_CIDTAB_WINDOW 16

struct lb_cidtab_entry {
	_Atomic uint64_t tag;		/* the key; 0: empty; 1: being written */
	_Atomic uint64_t val;		/* backend slot + 1 in the high half, expiry in the low */
};

struct lb_cidtab {
	uint32_t mask;			/* entries - 1, a power of two */
	uint64_t seed;
	struct lb_cidtab_entry e[];
};

/* Bytes a table for about n CIDs takes (4 entries each, at least a window's worth). */
size_t lb_cidtab_size(uint32_t n);

/* Prepares size bytes (from lb_cidtab_size, zeroed) at t as an empty table keyed with seed. */
void lb_cidtab_init(struct lb_cidtab *t, size_t size, uint64_t seed);

/*
 * The key of CID cid (len octets, at most 255) in service space: the
 * table's seed mixed in, never 0 or 1.
 */
uint64_t lb_cidtab_key(const struct lb_cidtab *t, uint64_t space, const uint8_t *cid, size_t len);

/* The backend slot + 1 recorded for key and not expired at now, or 0. */
uint32_t lb_cidtab_get(struct lb_cidtab *t, uint64_t key, uint32_t now);

/*
 * Records slot1 (a backend slot + 1, non-zero) for key until expires:
 * rewrites key's entry when it has one (a refresh, or another backend now
 * issuing the CID), else takes an empty or expired entry of its window.
 * Returns 0, -ENOSPC when every entry of the window is live (key not
 * recorded), or -EAGAIN when the window's only free entries were being
 * written by other processes (the next datagram tries again).
 */
int lb_cidtab_set(struct lb_cidtab *t, uint64_t key, uint32_t slot1, uint32_t expires, uint32_t now);

/* Entries live at now (a full scan: for tests and lbctl, not the data path). */
size_t lb_cidtab_count(struct lb_cidtab *t, uint32_t now);

#endif
