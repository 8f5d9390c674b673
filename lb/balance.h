/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_BALANCE_H
#define LB_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/addr.h"

/*
 * Pure scheduling algorithms: no shared memory, no clock, no syscalls, so
 * they are unit-tested directly. The caller (the worker) builds one
 * candidate per backend of the service at pick time: weight 0 marks a
 * backend it must not pick (wrong family, not usable, full, already tried).
 * Each picker returns an index into the candidates, or -1 when every
 * weight is 0.
 */
/* A Maglev table entry that names no backend. */
#define LB_MAGLEV_EMPTY 0xffffu

struct lb_pick {
	uint32_t weight;
	int64_t active;			/* connections over all workers */
};

/*
 * Smooth weighted round robin (as nginx's): over any window, each
 * candidate is picked in proportion to its weight, interleaved. current[]
 * holds n values of per-caller state, zeroed before the first call.
 */
int lb_balance_swrr(const struct lb_pick *c, size_t n, int64_t *current);

/*
 * Fewest active connections relative to weight (active / weight, compared
 * without division). Ties go round robin through *rr (per-caller state).
 */
int lb_balance_leastconn(const struct lb_pick *c, size_t n, unsigned int *rr);

/*
 * Power of two random choices: two weighted-random candidates, the one
 * with fewer active / weight wins. *rng is per-caller state, any nonzero
 * seed.
 */
int lb_balance_random2(const struct lb_pick *c, size_t n, uint64_t *rng);

/* Stable 64-bit identity of a backend address, equal in every process. */
uint64_t lb_balance_key(const union lb_sockaddr *backend);

/* Hash of the client's address (and port when with_port), equal in every process. */
uint64_t lb_balance_hash_client(const union lb_sockaddr *client, bool with_port);

/* True when m is prime. */
bool lb_balance_is_prime(uint32_t m);

/*
 * Fills table[0..m) with Maglev's populate: each backend with weight > 0
 * takes entries from its own permutation of the table (offset and skip
 * from its key) in turns proportional to its weight. Entries hold backend
 * indexes, LB_MAGLEV_EMPTY (0xffff) when no backend has weight. m must be
 * prime and n at most 65535. Returns 0 or -EINVAL. Needs no memory beyond
 * the table and O(n) stack-free scratch allocated once (returns -ENOMEM).
 */
int lb_balance_maglev_build(const uint64_t *keys, const uint32_t *weights, size_t n,
			    uint16_t *table, uint32_t m);

/*
 * The same build in steps, so a large table need not hold up an event
 * loop: start checks the arguments and clears the table (as build does,
 * returning 0 or -errno, with *out set on success); each step fills
 * entries until about *budget units of work are done (a probe is one, a
 * filled entry LB_MAGLEV_FILL_COST), takes what it did off *budget, and
 * returns true while entries are left. The table is complete once a step
 * returns false. Free with lb_balance_maglev_free (NULL is fine).
 */
#define LB_MAGLEV_FILL_COST 8
struct lb_maglev_builder;
int lb_balance_maglev_start(const uint64_t *keys, const uint32_t *weights, size_t n,
			    uint16_t *table, uint32_t m, struct lb_maglev_builder **out);
bool lb_balance_maglev_step(struct lb_maglev_builder *b, uint64_t *budget);
void lb_balance_maglev_free(struct lb_maglev_builder *b);

/*
 * Maglev lookup: table[hash % m]; when that candidate has weight 0 now
 * (went down or full since the table was built), the next entries are
 * probed so the client still lands deterministically. -1 if none.
 */
int lb_balance_maglev_pick(const uint16_t *table, uint32_t m, uint64_t hash,
			   const struct lb_pick *c, size_t n);

#endif
