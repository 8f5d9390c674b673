/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_CLIENTS_H
#define LB_CLIENTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/addr.h"

/*
 * How many connections each client holds open per service, in shared
 * memory every worker sees, so a cap on them (clients.max_conns) holds
 * over all workers and generations, like HAProxy's conn_cur. Lock-free:
 * an entry is one 64-bit word, a 40-bit tag of (service, address) and a
 * 24-bit count, somewhere in a window of LB_CLIENTS_WINDOW words from its
 * hash; raising the count is a compare-and-swap that checks the cap, so
 * two workers racing for a client's last slot cannot both have it. An
 * entry whose count falls to 0 is free again in the same swap. Beside
 * each word, the address it counts, for lbctl's top clients. A worker
 * keeps the entry it took per connection in a ledger the master settles
 * when the worker dies (lb_clients_settle). Knows no sockets.
 */
#define LB_CLIENTS_WINDOW 16
#define LB_CLIENTS_MAX_COUNT ((1u << 24) - 1)

struct lb_clients_entry {
	_Atomic uint64_t word;		/* tag << 24 | count; 0: free */
	_Atomic uint64_t what;		/* service key << 32 | family, written by the taker */
	_Atomic uint64_t addr[2];	/* the address, network order */
};

struct lb_clients {
	uint32_t mask;			/* entries - 1, a power of two */
	struct lb_clients_entry e[];
};

/* Bytes a table for about n open connections takes (2 entries each, at least a window). */
size_t lb_clients_size(uint32_t n);

/* Prepares size bytes (from lb_clients_size, zeroed) at t as an empty table. */
void lb_clients_init(struct lb_clients *t, size_t size);

/* The key naming a service in the table: stable across reloads for a name. */
uint32_t lb_clients_service_key(const char *name);

/*
 * Counts one more connection of client (an unmapped address; the port is
 * ignored) for service, unless max (0: no cap) are open already. Returns
 * 0 with *held set (to hand to lb_clients_put), -EDQUOT when the client
 * is at max, or -ENOSPC when the table has no room near its hash (the
 * connection is then neither counted nor capped, *held 0).
 */
int lb_clients_take(struct lb_clients *t, uint32_t service, const union lb_sockaddr *client,
		    unsigned int max, uint32_t *held);

/* Gives back what *held counts and clears it; 0 is fine. */
void lb_clients_put(struct lb_clients *t, uint32_t *held);

/* Master only: gives back every claim in ledger[0..n) (a dead worker's). Returns how many. */
unsigned int lb_clients_settle(struct lb_clients *t, uint32_t *ledger, unsigned int n);

/* The open connections client has to service now. */
unsigned int lb_clients_count(struct lb_clients *t, uint32_t service,
			      const union lb_sockaddr *client);

struct lb_clients_top {
	union lb_sockaddr addr;		/* port 0 */
	unsigned int conns;
};

/*
 * Up to n clients of service with the most open connections, most first
 * (a snapshot: counts move while it is taken). Returns how many.
 */
size_t lb_clients_top(struct lb_clients *t, uint32_t service, struct lb_clients_top *out,
		      size_t n);

#endif
