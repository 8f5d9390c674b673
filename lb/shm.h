/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_SHM_H
#define LB_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/addr.h"
#include "lb/balance.h"
#include "lb/config.h"
#include "lb/affinity.h"
#include "lb/cidtab.h"
#include "lb/clients.h"
#include "lb/hist.h"
#include "lb/keyset.h"

/*
 * State shared by the master and all workers: one MAP_SHARED anonymous
 * mapping made before the workers fork, so pointers inside it are valid in
 * every process. Workers only touch it with atomics and never lock: they
 * add to counters and read states; the master (control socket, health
 * checks) writes states. The layout is versioned (magic + version).
 */
#define LB_SHM_MAGIC 0x4c425348u	/* "LBSH" */
#define LB_SHM_VERSION 4

enum lb_admin {
	LB_ADMIN_UP,
	LB_ADMIN_DRAIN,			/* no new connections; existing ones go on */
	LB_ADMIN_DISABLED,		/* administratively out */
};

enum lb_health_state {
	LB_HEALTH_UP,
	LB_HEALTH_DOWN,
};

enum lb_worker_state {
	LB_WORKER_STOPPED,
	LB_WORKER_RUNNING,
	LB_WORKER_DRAINING,
};

struct lb_shm_backend {
	/*
	 * Identity: written before the workers start, then read-only. A slot
	 * outlives a reload when the new config has the same service name and
	 * address. Indexes differ between generations, so code names a backend
	 * by (service, index) of its own generation's config, never by slot.
	 */
	uint32_t refs;			/* generations using the slot (master only) */
	char service_name[72];
	union lb_sockaddr addr;
	uint64_t key;			/* stable hash of addr: Maglev permutations */
	uint32_t max_conns;		/* 0: unlimited */
	/* States: the master writes, workers read. */
	_Atomic uint32_t admin;		/* enum lb_admin */
	_Atomic uint32_t health;	/* enum lb_health_state */
	_Atomic uint32_t weight;
	/* Passive health: workers count consecutive connect failures. */
	_Atomic uint32_t consecutive_failures;
	/* Counters: workers add. bytes_in came from clients, bytes_out went to them. */
	_Atomic int64_t active;
	_Atomic uint64_t total;
	_Atomic uint64_t bytes_in, bytes_out;
	_Atomic uint64_t datagrams_in, datagrams_out;	/* UDP: from clients, to them */
	_Atomic uint64_t connect_failures;
	/*
	 * TCP Fast Open ("fastopen" services, lb/fastopen.c): connects whose
	 * SYN carried the client's first bytes and the backend took them, or
	 * did not; connects without data (no client bytes within
	 * fastopen_wait_ms, a paused backend, no TFO on the gateway). A
	 * backend refusing LB_FASTOPEN_REFUSALS in a row is paused until
	 * fastopen_pause_until (loop ms); fastopen_warned: that was logged.
	 */
	_Atomic uint64_t fastopen_acked, fastopen_refused, fastopen_plain;
	_Atomic uint32_t fastopen_streak;
	_Atomic uint32_t fastopen_warned;
	_Atomic uint64_t fastopen_pause_until;
	struct lb_hist connect;		/* connect() to established, µs (workers observe) */
	/* Last active check: only the master reads and writes these. */
	uint64_t last_check_ms;		/* wall clock; 0: never checked */
	int last_check_ok;
	char last_check_msg[96];
};

struct lb_shm_service {
	uint32_t *slots;		/* its backends: backends[slots[0..n)] */
	uint32_t n_backends;
	/* Bumped by every state or weight change; the master rebuilds Maglev on it. */
	_Atomic uint32_t epoch;
	_Atomic uint64_t total;
	_Atomic uint64_t no_backend;	/* clients reset because no backend was usable */
	_Atomic uint64_t queued;	/* clients that waited for a slot (max_conns) */
	_Atomic uint64_t queue_timeouts;	/* ... and were reset after queue_timeout_ms */
	_Atomic uint64_t no_backend_log_ms;	/* rate limit for the log line, over all workers */
	/* Workers observe: accept to close, and time queued for max_conns (queued clients only). */
	struct lb_hist duration, queue;
	/* UDP: flows open now and ever, what they carried, datagrams dropped and why. */
	_Atomic int64_t udp_flows;
	_Atomic uint64_t udp_flows_total;
	_Atomic uint64_t udp_datagrams_in, udp_datagrams_out;	/* from clients, to clients */
	_Atomic uint64_t udp_bytes_in, udp_bytes_out;
	_Atomic uint64_t udp_drop_no_backend;	/* no usable backend for a new flow */
	_Atomic uint64_t udp_drop_full;		/* the worker's flow table was full */
	_Atomic uint64_t udp_drop_send;		/* a send failed (buffer full, no socket) */
	/*
	 * QUIC services: how the flows of new 4-tuples were routed (the
	 * backend a QUIC-LB server ID names, a learned CID, or the scheduler),
	 * short headers dropped for a DCID neither routable nor known, CIDs
	 * learned from the backends' long headers and those the table had no
	 * room for. Carried across reloads.
	 */
	_Atomic uint64_t quic_routed_cid, quic_routed_learned, quic_fallback, quic_dropped;
	_Atomic uint64_t quic_learned, quic_learn_full;
	/*
	 * Clients refused (clients in the config): packets the nftables lists
	 * and rate dropped or rejected (the master adds what the kernel's
	 * counters gained since it last read them), and connections reset by
	 * the workers for max_conns.
	 */
	_Atomic uint64_t client_deny, client_rate, client_conns;
	_Atomic uint64_t client_conns_log_ms;	/* rate limit for the log line, over all workers */
	uint32_t clients_key;		/* names the service in pool->clients */
	/*
	 * Maglev lookup tables, one per family, double-buffered: the master
	 * fills the spare one, then publishes it by bumping maglev_gen, so a
	 * worker never sees a half-built table. Index [family][gen & 1];
	 * NULL when the service is not maglev or has no backend of that family.
	 * A reader slow enough to span two rebuilds would see its half
	 * rewritten: each half has a sequence count, odd while it is written,
	 * that the reader checks after its lookup (lb_shm_maglev_pick).
	 */
	uint32_t maglev_size;
	uint16_t *maglev[2][2];
	_Atomic uint32_t maglev_gen;
	_Atomic uint32_t maglev_seq[2];
	uint32_t maglev_epoch;		/* epoch the current tables were built for (master) */
	uint64_t maglev_built_ms;	/* when they were built (master) */
};

struct lb_shm_worker {
	_Atomic int32_t pid;		/* 0: free slot */
	uint32_t id;			/* worker number within its generation */
	_Atomic uint32_t generation;
	_Atomic uint32_t state;		/* enum lb_worker_state */
	_Atomic int64_t active;
	_Atomic int64_t udp_flows;	/* UDP flows it holds */
	_Atomic uint64_t accepted;
	_Atomic uint32_t restarts;
	/* The worker's loop stamps this (lb_clock_ms) a few times a second: the watchdog reads it. */
	_Atomic uint64_t heartbeat_ms;
};

/*
 * Slots that live as long as lb: backends (so states and counters survive
 * reloads) and workers of every generation (so old, draining ones are
 * still seen).
 */
struct lb_shm_pool {
	uint32_t magic, version;
	size_t size;
	uint32_t n_backend_slots, n_worker_slots;
	uint32_t users;			/* generations mapped on it (master only) */
	uint32_t next_slot;		/* where the search for a free backend slot starts */
	struct lb_shm_backend *backends;
	struct lb_shm_worker *workers;
	struct lb_keyset *keyset;	/* UDP flows' (client, backend) pairs, over all workers */
	struct lb_affinity *affinity;	/* tcp+udp services: each client's backend */
	struct lb_cidtab *cids;		/* QUIC services: learned connection IDs' backends */
	struct lb_clients *clients;	/* each client's open TCP connections, per service */
};

/* One generation's view: its services, over the shared pool. */
struct lb_shm {
	uint32_t magic, version;
	size_t size;
	uint32_t generation;
	uint32_t n_workers;		/* worker slots, free ones have pid 0 */
	uint32_t n_services, n_backends;	/* this generation's */
	struct lb_shm_worker *workers;	/* = pool->workers */
	struct lb_shm_service *services;
	struct lb_shm_backend *backends;	/* = pool->backends, indexed by slots */
	struct lb_shm_pool *pool;
	struct lb_shm_build *build;	/* master only: the Maglev build under way */
};

/*
 * Maps the first generation for cfg, with a new pool: every backend up,
 * admin up, weight from the config; Maglev tables built. n_workers sizes
 * the pool's worker slots, n_flows its UDP keyset and QUIC CID table (the
 * flows all workers may hold at once). Returns NULL with errno set.
 */
struct lb_shm *lb_shm_create(const struct lb_config *cfg, unsigned int n_workers,
			     unsigned int n_flows);

/*
 * Maps the generation after prev for cfg on prev's pool. A backend with
 * the same service name and address as one of prev's keeps its slot: its
 * states, weight (when the config's weight did not change) and counters.
 * Others get fresh slots. A service with the same name starts from prev's
 * service counters. Returns NULL with errno set (ENOSPC: pool full).
 */
struct lb_shm *lb_shm_create_next(const struct lb_shm *prev, const struct lb_config *prev_cfg,
				  const struct lb_config *cfg);

/* Unmaps a generation; releases slots no generation uses any more. */
void lb_shm_destroy(struct lb_shm *shm);

/* Master only: adds packets the kernel refused for services[service] under "deny" or "rate". */
void lb_shm_client_drops(struct lb_shm *shm, size_t service, const char *what, uint64_t packets);

/* A free worker slot (pid 0), or -1. Master only. */
int lb_shm_worker_slot(struct lb_shm *shm);

static inline struct lb_shm_backend *lb_shm_backend(const struct lb_shm *shm, size_t service,
						    size_t backend)
{
	return &shm->backends[shm->services[service].slots[backend]];
}

/* Finds service `name` (and, when addr is not NULL, its backend addr). */
int lb_shm_find(const struct lb_shm *shm, const struct lb_config *cfg, const char *name,
		const union lb_sockaddr *addr, size_t *service, size_t *backend);

/* A backend may take a new connection: admin up, health up, weight > 0. */
static inline bool lb_shm_backend_usable(const struct lb_shm_backend *b)
{
	return atomic_load_explicit(&b->admin, memory_order_relaxed) == LB_ADMIN_UP &&
	       atomic_load_explicit(&b->health, memory_order_relaxed) == LB_HEALTH_UP &&
	       atomic_load_explicit(&b->weight, memory_order_relaxed) > 0;
}

/* fastopen: whether connects to b go without data in the SYN at now_ms (lb_clock_ms). */
static inline bool lb_shm_fastopen_paused(const struct lb_shm_backend *b, uint64_t now_ms)
{
	uint64_t until = atomic_load_explicit(&b->fastopen_pause_until, memory_order_relaxed);

	return (int64_t)(now_ms - until) < 0;
}

/*
 * State changes. Each logs "service S backend A: admin up -> drain (reason)"
 * when the state really changes, and bumps the service's epoch. Return
 * true when something changed. Safe from any process; only the master
 * rebuilds Maglev tables (lb_shm_maglev_refresh).
 */
bool lb_shm_set_admin(struct lb_shm *shm, const struct lb_config *cfg, size_t service,
		      size_t backend, enum lb_admin admin, const char *reason);
bool lb_shm_set_health(struct lb_shm *shm, const struct lb_config *cfg, size_t service,
		       size_t backend, enum lb_health_state health, const char *reason);
bool lb_shm_set_weight(struct lb_shm *shm, const struct lb_config *cfg, size_t service,
		       size_t backend, unsigned int weight, const char *reason);

/*
 * Master only: rebuilds the Maglev tables of every maglev service whose
 * epoch moved since its tables were built, but a service's tables at most
 * once per min_interval_ms (now_ms on the caller's monotonic clock), so a
 * burst of state changes costs one rebuild; and in steps of about budget
 * units of work (lb_balance_maglev_step), so a large table never holds the
 * caller up for long. Returns 0 when nothing is left to do, else the ms
 * after which to call again (1: a build is under way, call again soon).
 */
#define LB_SHM_MAGLEV_MIN_MS 100
#define LB_SHM_MAGLEV_BUDGET 100000
uint64_t lb_shm_maglev_refresh(struct lb_shm *shm, const struct lb_config *cfg, uint64_t now_ms,
			       unsigned int min_interval_ms, uint64_t budget);

/* The published Maglev table of service for family, or NULL. */
const uint16_t *lb_shm_maglev_table(const struct lb_shm_service *svc, int family);

/*
 * lb_balance_maglev_pick() on the published table of svc for family, read
 * consistently. Returns the candidate index, -1 when none has weight, or
 * -EAGAIN when there is no table or it was rewritten under every attempt
 * (the caller picks another way).
 */
int lb_shm_maglev_pick(const struct lb_shm_service *svc, int family, uint64_t hash,
		       const struct lb_pick *c, size_t n);

/*
 * A worker's ledger: one entry per connection slot naming the backend slot
 * (+1) whose active count that connection holds, 0 for none. The master
 * maps one before forking a worker; when the worker dies,
 * lb_shm_ledger_settle gives back what it still held and clears it, so
 * the counts never keep connections that are gone.
 */
uint32_t *lb_shm_ledger_map(unsigned int capacity);
void lb_shm_ledger_unmap(uint32_t *ledger, unsigned int capacity);
/* Returns the number of claims given back. */
unsigned int lb_shm_ledger_settle(struct lb_shm_pool *pool, uint32_t *ledger,
				  unsigned int capacity);
/*
 * Before the settle: the UDP flows a dead worker of generation shm still
 * held (its ledger's flow entries, n of them) come off their services'
 * open-flow gauges. Returns how many.
 */
unsigned int lb_shm_ledger_settle_flows(struct lb_shm *shm, const uint32_t *ledger,
					unsigned int n);

const char *lb_shm_admin_name(enum lb_admin admin);
const char *lb_shm_health_name(enum lb_health_state health);
const char *lb_shm_worker_state_name(enum lb_worker_state state);
/* Parses "up", "drain", "disabled"; returns 0 or -EINVAL. */
int lb_shm_admin_parse(const char *text, enum lb_admin *out);

#endif
