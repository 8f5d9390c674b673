/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_KEYSET_H
#define LB_KEYSET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A set of keys in shared memory that every worker sees, for what must be
 * unique across workers: a UDP flow's (client, backend) pair, which two
 * flows of two workers must never share (their upstream sockets would
 * have the same 4-tuple). Lock-free: a key is 48 bits of a hash, kept in
 * one 64-bit word with the owner (a worker's shm slot) in the low 16 bits,
 * somewhere in a window of LB_KEYSET_WINDOW words from its hash. An
 * insert racing another for the same key is refused to at least one of
 * them, never granted to both. A key that a dead worker left behind is
 * purged by the master (lb_keyset_purge). Knows no sockets.
 */
#define LB_KEYSET_WINDOW 16

struct lb_keyset {
	uint32_t mask;			/* slots - 1; slots is a power of two */
	_Atomic uint64_t slot[];
};

/* Bytes a set for about n keys takes (4 slots a key, at least a window's worth). */
size_t lb_keyset_size(uint32_t n);

/* Prepares size bytes (from lb_keyset_size, zeroed) at ks as an empty set. */
void lb_keyset_init(struct lb_keyset *ks, size_t size);

/*
 * Adds key for owner (0..65534). Returns 0 with *where set (for
 * lb_keyset_remove), -EEXIST when the key is held (by anyone, the caller
 * included), or -ENOSPC when its window is full.
 */
int lb_keyset_insert(struct lb_keyset *ks, uint64_t key, uint16_t owner, uint32_t *where);

/* Removes what an insert put at where for key and owner. */
void lb_keyset_remove(struct lb_keyset *ks, uint32_t where, uint64_t key, uint16_t owner);

/*
 * Master only: removes every key of the owners (workers that died) whose
 * bits are set in dead, a bitmap of n_owners bits (bit i of dead[i / 64]).
 * One pass over the whole set whatever the number of owners, so workers
 * reaped together cost one scan. Returns how many keys went.
 */
unsigned int lb_keyset_purge(struct lb_keyset *ks, const uint64_t *dead, size_t n_owners);

#endif
