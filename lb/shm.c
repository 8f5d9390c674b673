// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lb/balance.h"
#include "lb/log.h"
#include "lb/shm.h"

struct lb_shm_build;
static void build_free(struct lb_shm_build *bd);

static size_t align_up(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

static const char *const admin_names[] = {
	[LB_ADMIN_UP] = "up",
	[LB_ADMIN_DRAIN] = "drain",
	[LB_ADMIN_DISABLED] = "disabled",
};

static const char *const health_names[] = {
	[LB_HEALTH_UP] = "up",
	[LB_HEALTH_DOWN] = "down",
};

static const char *const worker_state_names[] = {
	[LB_WORKER_STOPPED] = "stopped",
	[LB_WORKER_RUNNING] = "running",
	[LB_WORKER_DRAINING] = "draining",
};

const char *lb_shm_admin_name(enum lb_admin admin)
{
	return admin <= LB_ADMIN_DISABLED ? admin_names[admin] : "unknown";
}

const char *lb_shm_health_name(enum lb_health_state health)
{
	return health <= LB_HEALTH_DOWN ? health_names[health] : "unknown";
}

const char *lb_shm_worker_state_name(enum lb_worker_state state)
{
	return state <= LB_WORKER_DRAINING ? worker_state_names[state] : "unknown";
}

int lb_shm_admin_parse(const char *text, enum lb_admin *out)
{
	for (int i = LB_ADMIN_UP; i <= LB_ADMIN_DISABLED; i++)
		if (!strcmp(text, admin_names[i])) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

static int family_slot(int family)
{
	return family == AF_INET6 ? 1 : 0;
}

static bool service_has_family(const struct lb_service_conf *svc, int family)
{
	for (size_t i = 0; i < svc->n_backends; i++)
		if (svc->backends[i].addr.sa.sa_family == family)
			return true;
	return false;
}

#define POOL_MIN_BACKENDS 4096
#define POOL_MIN_WORKERS 1024

static void *map_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * The CID table's hash key: random, so that nobody outside can choose
 * CIDs that crowd one window. Without getrandom (a kernel too old, or no
 * entropy yet, which GRND_NONBLOCK reports) the clock still varies it.
 */
static uint64_t table_seed(void)
{
	uint64_t seed = 0;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
}

static struct lb_shm_pool *pool_create(size_t n_backends, unsigned int n_workers,
				       unsigned int n_flows)
{
	size_t nb = n_backends * 4 > POOL_MIN_BACKENDS ? n_backends * 4 : POOL_MIN_BACKENDS;
	size_t nw = n_workers * 4 > POOL_MIN_WORKERS ? n_workers * 4 : POOL_MIN_WORKERS;
	size_t nk = lb_keyset_size(n_flows);
	size_t na = lb_affinity_size(n_flows);
	size_t nc = lb_cidtab_size(n_flows);
	size_t ncl = lb_clients_size(n_flows);
	size_t size = align_up(sizeof(struct lb_shm_pool));
	struct lb_shm_pool *pool;
	char *base;

	size += align_up(nb * sizeof(struct lb_shm_backend));
	size += align_up(nw * sizeof(struct lb_shm_worker));
	size += align_up(nk);
	size += align_up(na);
	size += align_up(nc);
	size += align_up(ncl);
	base = map_shared(size);
	if (!base)
		return NULL;
	pool = (struct lb_shm_pool *)base;
	pool->magic = LB_SHM_MAGIC;
	pool->version = LB_SHM_VERSION;
	pool->size = size;
	pool->n_backend_slots = nb;
	pool->n_worker_slots = nw;
	pool->backends = (struct lb_shm_backend *)(base + align_up(sizeof(*pool)));
	pool->workers = (struct lb_shm_worker *)((char *)pool->backends +
						 align_up(nb * sizeof(struct lb_shm_backend)));
	/* Untouched pages of a mapping cost nothing: sized for every flow at once. */
	pool->keyset = (struct lb_keyset *)((char *)pool->workers +
					    align_up(nw * sizeof(struct lb_shm_worker)));
	lb_keyset_init(pool->keyset, nk);
	pool->affinity = (struct lb_affinity *)((char *)pool->keyset + align_up(nk));
	lb_affinity_init(pool->affinity, na);
	pool->cids = (struct lb_cidtab *)((char *)pool->affinity + align_up(na));
	lb_cidtab_init(pool->cids, nc, table_seed());
	pool->clients = (struct lb_clients *)((char *)pool->cids + align_up(nc));
	lb_clients_init(pool->clients, ncl);
	return pool;
}

/* Slot of prev's backend with the same service name and address, or -1. */
static long find_slot(const struct lb_shm *prev, const struct lb_config *prev_cfg,
		      const char *service, const union lb_sockaddr *addr)
{
	size_t si, bi;

	if (!prev || !addr || lb_shm_find(prev, prev_cfg, service, addr, &si, &bi) < 0)
		return -1;
	return prev->services[si].slots[bi];
}

/* A free slot: searched from the one after the last taken, so that 30,000 take linear time. */
static long alloc_slot(struct lb_shm_pool *pool)
{
	for (uint32_t n = 0; n < pool->n_backend_slots; n++) {
		uint32_t i = (pool->next_slot + n) % pool->n_backend_slots;

		if (!pool->backends[i].refs) {
			pool->next_slot = i + 1;
			return i;
		}
	}
	return -1;
}

/*
 * A service of the same name in prev hands on its counters, so they stay
 * monotonic across reloads. What prev's draining workers add after this
 * copy is not seen by the new generation (it is small: they accept nothing
 * new; their UDP flows go on until they end or drain_timeout_ms). The
 * gauge of open UDP flows is each generation's own.
 */
static void carry_counters(struct lb_shm_service *ss, const struct lb_shm *prev,
			   const struct lb_config *prev_cfg, const char *name)
{
	const struct lb_shm_service *old;
	long i;

	if (!prev || (i = lb_config_service_index(prev_cfg, name)) < 0)
		return;
	old = &prev->services[i];
	atomic_store(&ss->total, atomic_load(&old->total));
	atomic_store(&ss->no_backend, atomic_load(&old->no_backend));
	atomic_store(&ss->queued, atomic_load(&old->queued));
	atomic_store(&ss->queue_timeouts, atomic_load(&old->queue_timeouts));
	atomic_store(&ss->udp_flows_total, atomic_load(&old->udp_flows_total));
	atomic_store(&ss->udp_datagrams_in, atomic_load(&old->udp_datagrams_in));
	atomic_store(&ss->udp_datagrams_out, atomic_load(&old->udp_datagrams_out));
	atomic_store(&ss->udp_bytes_in, atomic_load(&old->udp_bytes_in));
	atomic_store(&ss->udp_bytes_out, atomic_load(&old->udp_bytes_out));
	atomic_store(&ss->udp_drop_no_backend, atomic_load(&old->udp_drop_no_backend));
	atomic_store(&ss->udp_drop_full, atomic_load(&old->udp_drop_full));
	atomic_store(&ss->udp_drop_send, atomic_load(&old->udp_drop_send));
	atomic_store(&ss->quic_routed_cid, atomic_load(&old->quic_routed_cid));
	atomic_store(&ss->quic_routed_learned, atomic_load(&old->quic_routed_learned));
	atomic_store(&ss->quic_fallback, atomic_load(&old->quic_fallback));
	atomic_store(&ss->quic_dropped, atomic_load(&old->quic_dropped));
	atomic_store(&ss->quic_learned, atomic_load(&old->quic_learned));
	atomic_store(&ss->quic_learn_full, atomic_load(&old->quic_learn_full));
	atomic_store(&ss->client_deny, atomic_load(&old->client_deny));
	atomic_store(&ss->client_rate, atomic_load(&old->client_rate));
	atomic_store(&ss->client_conns, atomic_load(&old->client_conns));
	lb_hist_carry(&ss->duration, &old->duration);
	lb_hist_carry(&ss->queue, &old->queue);
}

static struct lb_shm *shm_map(struct lb_shm_pool *pool, const struct lb_shm *prev,
			      const struct lb_config *prev_cfg, const struct lb_config *cfg)
{
	static const int families[] = { AF_INET, AF_INET6 };
	size_t n_backends = 0, size, off, n;
	struct lb_shm *shm;
	char *base;

	for (size_t i = 0; i < cfg->n_services; i++)
		n_backends += cfg->services[i].n_backends;
	size = align_up(sizeof(*shm));
	size += align_up(cfg->n_services * sizeof(struct lb_shm_service));
	size += align_up(n_backends * sizeof(uint32_t));
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		if (svc->sched != LB_SCHED_MAGLEV)
			continue;
		for (size_t f = 0; f < 2; f++)
			if (service_has_family(svc, families[f]))
				size += 2 * align_up(svc->maglev_size * sizeof(uint16_t));
	}
	base = map_shared(size);
	if (!base)
		return NULL;
	shm = (struct lb_shm *)base;
	shm->magic = LB_SHM_MAGIC;
	shm->version = LB_SHM_VERSION;
	shm->size = size;
	shm->generation = prev ? prev->generation + 1 : 1;
	shm->pool = pool;
	shm->n_workers = pool->n_worker_slots;
	shm->workers = pool->workers;
	shm->backends = pool->backends;
	shm->n_services = cfg->n_services;
	shm->n_backends = n_backends;
	off = align_up(sizeof(*shm));
	shm->services = (struct lb_shm_service *)(base + off);
	off += align_up(cfg->n_services * sizeof(struct lb_shm_service));
	uint32_t *slots = (uint32_t *)(base + off), *first_slot = slots;
	size_t assigned = 0;
	off += align_up(n_backends * sizeof(uint32_t));

	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];
		struct lb_shm_service *ss = &shm->services[i];

		ss->slots = slots;
		ss->n_backends = svc->n_backends;
		ss->clients_key = lb_clients_service_key(svc->name);
		slots += svc->n_backends;
		carry_counters(ss, prev, prev_cfg, svc->name);
		for (size_t j = 0; j < svc->n_backends; j++) {
			const struct lb_backend_conf *bc = &svc->backends[j];
			long slot = find_slot(prev, prev_cfg, svc->name, &bc->addr);
			struct lb_shm_backend *b;

			if (slot < 0) {
				slot = alloc_slot(pool);
				if (slot < 0) {
					errno = ENOSPC;
					goto fail;
				}
				b = &pool->backends[slot];
				memset(b, 0, sizeof(*b));
				b->addr = bc->addr;
				b->key = lb_balance_key(&b->addr);
			}
			b = &pool->backends[slot];
			/* The file's weight wins over one set at runtime: a reload re-reads it. */
			atomic_store(&b->weight, bc->weight);
			ss->slots[j] = slot;
			b->refs++;
			assigned++;
			b->max_conns = bc->max_conns;
			/* What snprintf("%s") would write, without its 2 ms at 30,000 backends. */
			n = strnlen(svc->name, sizeof(b->service_name) - 1);
			memcpy(b->service_name, svc->name, n);
			b->service_name[n] = '\0';
		}
		if (svc->sched != LB_SCHED_MAGLEV)
			continue;
		ss->maglev_size = svc->maglev_size;
		for (size_t f = 0; f < 2; f++) {
			if (!service_has_family(svc, families[f]))
				continue;
			for (size_t g = 0; g < 2; g++) {
				ss->maglev[f][g] = (uint16_t *)(base + off);
				off += align_up(svc->maglev_size * sizeof(uint16_t));
			}
		}
		/* Force the first build. */
		ss->maglev_epoch = ~0u;
	}
	pool->users++;
	lb_shm_maglev_refresh(shm, cfg, 0, 0, UINT64_MAX);
	return shm;
fail:
	while (assigned)
		pool->backends[first_slot[--assigned]].refs--;
	munmap(base, size);
	return NULL;
}

struct lb_shm *lb_shm_create(const struct lb_config *cfg, unsigned int n_workers,
			     unsigned int n_flows)
{
	size_t n_backends = 0;
	struct lb_shm_pool *pool;
	struct lb_shm *shm;

	for (size_t i = 0; i < cfg->n_services; i++)
		n_backends += cfg->services[i].n_backends;
	pool = pool_create(n_backends, n_workers, n_flows);
	if (!pool)
		return NULL;
	shm = shm_map(pool, NULL, NULL, cfg);
	if (!shm)
		munmap(pool, pool->size);
	return shm;
}

struct lb_shm *lb_shm_create_next(const struct lb_shm *prev, const struct lb_config *prev_cfg,
				  const struct lb_config *cfg)
{
	return shm_map(prev->pool, prev, prev_cfg, cfg);
}

void lb_shm_destroy(struct lb_shm *shm)
{
	struct lb_shm_pool *pool;

	if (!shm)
		return;
	pool = shm->pool;
	build_free(shm->build);
	for (size_t i = 0; i < shm->n_services; i++)
		for (size_t j = 0; j < shm->services[i].n_backends; j++)
			pool->backends[shm->services[i].slots[j]].refs--;
	munmap(shm, shm->size);
	if (--pool->users == 0)
		munmap(pool, pool->size);
}

void lb_shm_client_drops(struct lb_shm *shm, size_t service, const char *what, uint64_t packets)
{
	struct lb_shm_service *ss;

	if (service >= shm->n_services)
		return;
	ss = &shm->services[service];
	if (!strcmp(what, "deny"))
		atomic_fetch_add(&ss->client_deny, packets);
	else if (!strcmp(what, "rate"))
		atomic_fetch_add(&ss->client_rate, packets);
}

int lb_shm_worker_slot(struct lb_shm *shm)
{
	for (uint32_t i = 0; i < shm->pool->n_worker_slots; i++)
		if (!atomic_load(&shm->pool->workers[i].pid))
			return i;
	return -1;
}

int lb_shm_find(const struct lb_shm *shm, const struct lb_config *cfg, const char *name,
		const union lb_sockaddr *addr, size_t *service, size_t *backend)
{
	long i = lb_config_service_index(cfg, name);
	const struct lb_service_conf *svc;

	if (i < 0)
		return -ESRCH;
	svc = &cfg->services[i];
	*service = (size_t)i;
	if (!addr)
		return 0;
	for (size_t j = 0; j < svc->n_backends; j++)
		if (lb_addr_equal(&svc->backends[j].addr, addr)) {
			*backend = j;
			return 0;
		}
	return -ENOENT;
}

/*
 * Logs that b's what went from one state to another, and moves the
 * service's epoch on so that the master rebuilds its Maglev tables.
 * Returns true, for the setters to return.
 */
static bool changed(struct lb_shm *shm, size_t service, const struct lb_shm_backend *b,
		    const char *what, const char *from, const char *to, const char *reason)
{
	char buf[LB_ADDR_STRLEN];

	lb_info("service %s backend %s: %s %s -> %s (%s)", b->service_name,
		lb_addr_format(&b->addr, buf, sizeof(buf)), what, from, to, reason);
	atomic_fetch_add_explicit(&shm->services[service].epoch, 1, memory_order_release);
	return true;
}

bool lb_shm_set_admin(struct lb_shm *shm, const struct lb_config *cfg, size_t service,
		      size_t backend, enum lb_admin admin, const char *reason)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, service, backend);
	uint32_t old = atomic_exchange(&b->admin, admin);

	return old != admin && changed(shm, service, b, "admin", lb_shm_admin_name(old),
				       lb_shm_admin_name(admin), reason);
}

bool lb_shm_set_health(struct lb_shm *shm, const struct lb_config *cfg, size_t service,
		       size_t backend, enum lb_health_state health, const char *reason)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, service, backend);
	uint32_t old = atomic_exchange(&b->health, health);

	if (old == health)
		return false;
	if (health == LB_HEALTH_UP)
		atomic_store(&b->consecutive_failures, 0);
	return changed(shm, service, b, "health", lb_shm_health_name(old),
		       lb_shm_health_name(health), reason);
}

bool lb_shm_set_weight(struct lb_shm *shm, const struct lb_config *cfg, size_t service,
		       size_t backend, unsigned int weight, const char *reason)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, service, backend);
	uint32_t old = atomic_exchange(&b->weight, weight);
	char from[16], to[16];

	snprintf(from, sizeof(from), "%u", old);
	snprintf(to, sizeof(to), "%u", weight);
	return old != weight && changed(shm, service, b, "weight", from, to, reason);
}

/*
 * The master's Maglev build in progress: one service at a time, its IPv4
 * then its IPv6 half, in steps (lb_balance_maglev_step) so that a large
 * table never holds up the master's loop for long.
 */
struct lb_shm_build {
	bool active;
	size_t service;
	size_t family;			/* the half being filled: 0 IPv4, 1 IPv6 */
	uint32_t epoch;			/* the service's epoch when the build began */
	struct lb_maglev_builder *b;	/* NULL between families */
	uint64_t *keys;			/* scratch, n_backends of the largest service */
	uint32_t *weights;
};

static void build_free(struct lb_shm_build *bd)
{
	if (!bd)
		return;
	lb_balance_maglev_free(bd->b);
	free(bd->keys);
	free(bd->weights);
	free(bd);
}

static struct lb_shm_build *build_alloc(const struct lb_config *cfg)
{
	struct lb_shm_build *bd = calloc(1, sizeof(*bd));
	size_t max = 1;

	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].n_backends > max)
			max = cfg->services[i].n_backends;
	if (bd) {
		bd->keys = calloc(max, sizeof(*bd->keys));
		bd->weights = calloc(max, sizeof(*bd->weights));
	}
	if (!bd || !bd->keys || !bd->weights) {
		build_free(bd);
		return NULL;
	}
	return bd;
}

/*
 * Only usable backends enter the table, so a change of state remaps just
 * the clients of the backends that changed; the spare half is filled
 * while workers keep reading the published one. Its sequence count is odd
 * from here to the publication: a reader still on that half from two
 * builds ago retries.
 */
static void build_begin(struct lb_shm *shm, struct lb_shm_build *bd, size_t i)
{
	struct lb_shm_service *ss = &shm->services[i];
	uint32_t gen = atomic_load_explicit(&ss->maglev_gen, memory_order_relaxed);

	bd->active = true;
	bd->service = i;
	bd->family = 0;
	bd->epoch = atomic_load_explicit(&ss->epoch, memory_order_acquire);
	atomic_fetch_add_explicit(&ss->maglev_seq[(gen + 1) & 1], 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

/* Starts filling the current family's spare half; false when it has none. */
static bool build_family(struct lb_shm *shm, const struct lb_config *cfg, struct lb_shm_build *bd)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct lb_shm_service *ss = &shm->services[bd->service];
	const struct lb_service_conf *svc = &cfg->services[bd->service];
	uint32_t gen = atomic_load_explicit(&ss->maglev_gen, memory_order_relaxed);
	uint16_t *spare = ss->maglev[bd->family][(gen + 1) & 1];
	int rc;

	if (!spare)
		return false;
	for (size_t j = 0; j < svc->n_backends; j++) {
		const struct lb_shm_backend *b = lb_shm_backend(shm, bd->service, j);

		bd->keys[j] = b->key;
		bd->weights[j] = b->addr.sa.sa_family == families[bd->family] &&
				 lb_shm_backend_usable(b) ? atomic_load(&b->weight) : 0;
	}
	rc = lb_balance_maglev_start(bd->keys, bd->weights, svc->n_backends, spare, ss->maglev_size,
				     &bd->b);
	if (rc < 0)
		lb_err("service %s: cannot build the maglev table (size %u): %s; clients are spread "
		       "by a fallback scan", svc->name, ss->maglev_size, strerror(-rc));
	return rc == 0;
}

/* Goes on with the build in progress; returns true once it is published. */
static bool build_step(struct lb_shm *shm, const struct lb_config *cfg, struct lb_shm_build *bd,
		       uint64_t *budget)
{
	struct lb_shm_service *ss = &shm->services[bd->service];
	uint32_t gen;

	for (; bd->family < 2; bd->family++) {
		if (!bd->b && !build_family(shm, cfg, bd))
			continue;
		if (lb_balance_maglev_step(bd->b, budget))
			return false;
		lb_balance_maglev_free(bd->b);
		bd->b = NULL;
	}
	gen = atomic_load_explicit(&ss->maglev_gen, memory_order_relaxed);
	atomic_fetch_add_explicit(&ss->maglev_seq[(gen + 1) & 1], 1, memory_order_release);
	atomic_store_explicit(&ss->maglev_gen, gen + 1, memory_order_release);
	ss->maglev_epoch = bd->epoch;
	bd->active = false;
	return true;
}

uint64_t lb_shm_maglev_refresh(struct lb_shm *shm, const struct lb_config *cfg, uint64_t now_ms,
			       unsigned int min_interval_ms, uint64_t budget)
{
	struct lb_shm_build *bd = shm->build;
	uint64_t due = 0;

	if (!bd) {
		bd = shm->build = build_alloc(cfg);
		if (!bd) {
			lb_err("no memory to rebuild maglev tables");
			return min_interval_ms ? min_interval_ms : 1;
		}
	}
	if (bd->active && !build_step(shm, cfg, bd, &budget))
		return 1;
	for (size_t i = 0; i < shm->n_services; i++) {
		struct lb_shm_service *ss = &shm->services[i];
		uint32_t epoch = atomic_load_explicit(&ss->epoch, memory_order_acquire);
		uint64_t next = ss->maglev_built_ms + min_interval_ms;

		if (!ss->maglev_size || epoch == ss->maglev_epoch)
			continue;
		if (ss->maglev_built_ms && now_ms < next) {
			if (!due || next - now_ms < due)
				due = next - now_ms;
			continue;
		}
		if (!budget)
			return 1;
		ss->maglev_built_ms = now_ms;
		build_begin(shm, bd, i);
		if (!build_step(shm, cfg, bd, &budget))
			return 1;
	}
	return due;
}

const uint16_t *lb_shm_maglev_table(const struct lb_shm_service *svc, int family)
{
	uint32_t gen = atomic_load_explicit(&svc->maglev_gen, memory_order_acquire);

	return svc->maglev[family_slot(family)][gen & 1];
}

/* Attempts before giving up on a table that keeps being rewritten. */
#define MAGLEV_READ_TRIES 4

int lb_shm_maglev_pick(const struct lb_shm_service *svc, int family, uint64_t hash,
		       const struct lb_pick *c, size_t n)
{
	for (int t = 0; t < MAGLEV_READ_TRIES; t++) {
		uint32_t gen = atomic_load_explicit(&svc->maglev_gen, memory_order_acquire);
		const _Atomic uint32_t *seq = &svc->maglev_seq[gen & 1];
		const uint16_t *table = svc->maglev[family_slot(family)][gen & 1];
		uint32_t before = atomic_load_explicit(seq, memory_order_acquire);
		int idx;

		if (!table)
			return -EAGAIN;
		if (before & 1)
			continue;
		idx = lb_balance_maglev_pick(table, svc->maglev_size, hash, c, n);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(seq, memory_order_relaxed) == before)
			return idx;
	}
	return -EAGAIN;
}

uint32_t *lb_shm_ledger_map(unsigned int capacity)
{
	return map_shared((size_t)(capacity ? capacity : 1) * sizeof(uint32_t));
}

void lb_shm_ledger_unmap(uint32_t *ledger, unsigned int capacity)
{
	if (ledger)
		munmap(ledger, (size_t)(capacity ? capacity : 1) * sizeof(uint32_t));
}

unsigned int lb_shm_ledger_settle_flows(struct lb_shm *shm, const uint32_t *ledger,
					unsigned int n)
{
	uint32_t n_slots = shm->pool->n_backend_slots, *service_of;
	unsigned int settled = 0;

	if (!ledger || !n)
		return 0;
	/* Each slot is one service's backend in a generation: the ledger names slots. */
	service_of = calloc(n_slots ? n_slots : 1, sizeof(*service_of));
	if (!service_of)
		return 0;
	for (uint32_t i = 0; i < shm->n_services; i++)
		for (uint32_t j = 0; j < shm->services[i].n_backends; j++)
			service_of[shm->services[i].slots[j]] = i + 1;
	for (unsigned int k = 0; k < n; k++) {
		uint32_t held = ledger[k];

		if (!held || held > n_slots || !service_of[held - 1])
			continue;
		atomic_fetch_sub_explicit(&shm->services[service_of[held - 1] - 1].udp_flows, 1,
					  memory_order_relaxed);
		settled++;
	}
	free(service_of);
	return settled;
}

unsigned int lb_shm_ledger_settle(struct lb_shm_pool *pool, uint32_t *ledger,
				  unsigned int capacity)
{
	unsigned int n = 0;

	for (unsigned int i = 0; ledger && i < capacity; i++) {
		uint32_t held = ledger[i];

		if (!held)
			continue;
		ledger[i] = 0;
		if (held <= pool->n_backend_slots) {
			atomic_fetch_sub_explicit(&pool->backends[held - 1].active, 1,
						  memory_order_relaxed);
			n++;
		}
	}
	return n;
}
