// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control plane. The master opens every worker's listening sockets
 * before it installs the rules and keeps them for its whole life, so a
 * worker that dies leaves its queue intact for the one that replaces it.
 * A reload starts a new generation of workers on the same sockets and lets
 * the old one drain. Signals arrive through a signalfd and are acted on in
 * the loop; objects a callback retires are freed after the batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lb/announce.h"
#include "lb/peers.h"
#include "lb/ctl.h"
#include "lb/health.h"
#include "lb/http.h"
#include "lb/limits.h"
#include "lb/listener.h"
#include "lb/log.h"
#include "lb/loop.h"
#include "lb/master.h"
#include "lb/notify.h"
#include "lb/preflight.h"
#include "lb/priv.h"
#include "lb/rules.h"
#include "lb/shm.h"
#include "lb/watchdog.h"
#include "lb/worker.h"

#define RESPAWN_MIN_LIFE_MS 1000
/* A slot that cannot start is retried after 0.5 s, doubling up to 5 s. */
#define SPAWN_BACKOFF_MIN_MS 500
#define SPAWN_BACKOFF_MAX_MS 5000
#define STOP_GRACE_MS 2000
/* How often the master looks for state changes to build into Maglev tables, and for hung workers. */
#define TICK_MS 50
/* How often the master copies the kernel's per-client drop counters into shm. */
#define DROPS_POLL_MS 1000

struct gen;

struct slot {
	struct gen *gen;
	unsigned int id;
	int shm_slot;			/* its lb_shm_worker, -1 before the first start */
	pid_t pid;
	int fd;				/* master's end of the worker's socketpair */
	uint32_t *ledger;		/* the backend claims its worker holds (lb_shm_ledger_map) */
	uint32_t *client_ledger;	/* its connections' entries in pool->clients, likewise */
	uint64_t started;
	unsigned int restarts;
	unsigned int backoff_ms;	/* next retry delay after a failed start; 0: none failed */
	/*
	 * Of a retiring generation: still accepting, because the slot that
	 * replaces it at the same position has not started yet.
	 */
	bool kept;
	bool hung;			/* the watchdog killed it; not reaped yet */
	struct lb_watchdog_sample quiet;	/* taken halfway through a silence */
	uint64_t quiet_beat;		/* the heartbeat that silence follows */
	uint64_t spared_log_ms;
	uint64_t kill_at;		/* told to drain: SIGKILL it then if still running (0: none) */
	struct lb_timer respawn;
};

/* A config and the workers running it. */
struct gen {
	struct lb_config *cfg;
	struct lb_shm *shm;
	struct slot *slots;
	unsigned int n_slots;
	bool retiring;			/* told to drain; never restarted */
	struct gen *next;		/* older generations, still draining */
};

struct master {
	const char *config_path;
	struct lb_loop *loop;
	struct lb_signals sig;
	struct gen *cur, *old;
	struct lb_listener_set ls;	/* one position per worker of the current generation */
	struct lb_capacity cap;
	struct lb_rules *rules;
	struct lb_announce *announce;
	struct lb_peers *peers;		/* gateway ownership's membership */
	bool ready_pending;		/* ready, but waits to hear the tier before announcing */
	struct lb_health *health;
	struct lb_health *retired_health;	/* retired in callbacks, stopped after the batch */
	struct lb_ctl *ctl;
	struct lb_ctl_state ctl_state;
	struct lb_http *http;		/* the HTTP listener's process, off unless configured */
	struct lb_timer tick;
	uint64_t drops_polled_ms;	/* loop clock of the last read of the kernel's drop counters */
	bool stopping;
	struct lb_timer stop_timer;
	int migrate_req_saved;		/* tcp_migrate_req before lb set it; -1: untouched */
	/* Scratch for reap(): the shm slots of workers whose UDP keys must be purged. */
	uint64_t *dead_owners;
	size_t n_owner_words;
};

static struct master m = { .migrate_req_saved = -1 };

_Static_assert(LB_WORKER_MAX_LISTENERS >= LB_LISTENER_FAMILIES, "a worker gets one listener per family");

static void worker_child(struct slot *s)
{
	struct gen *g = s->gen;
	struct lb_worker_args args = {
		.id = s->id,
		.slot = s->shm_slot,
		.generation = g->shm->generation,
		.cfg = g->cfg,
		.shm = g->shm,
		.master_fd = s->fd,
		.pipes = m.cap.pipes,
		.ledger = s->ledger,
		.client_ledger = s->client_ledger,
	};
	int keep[2 * LB_WORKER_MAX_LISTENERS + 1];
	size_t n_keep;
	char tag[32];

	/*
	 * The master's own large arrays (lb/bigmem.h: the config's text, the
	 * rules' spec, the health checker's probes) are not mapped here:
	 * nothing a worker runs may read or free them.
	 */
	lb_capacity_split(&m.cap, g->cfg, &args.capacity, &args.flows);
	/* Die with the master even if it is killed outright. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(tag, sizeof(tag), "worker[%u]", s->id);
	lb_log_init(g->cfg->log_level, tag);
	lb_log_use_syslog(g->cfg->log_syslog);
	args.n_listen = lb_listener_set_fds(&m.ls, s->id, LB_PROTO_TCP, args.listen_fds);
	args.n_udp = lb_listener_set_fds(&m.ls, s->id, LB_PROTO_UDP, args.udp_fds);
	memcpy(keep, args.listen_fds, args.n_listen * sizeof(int));
	memcpy(keep + args.n_listen, args.udp_fds, args.n_udp * sizeof(int));
	n_keep = args.n_listen + args.n_udp;
	keep[n_keep++] = s->fd;
	lb_priv_close_fds(keep, n_keep);
	if (lb_priv_drop_worker(g->cfg) < 0)
		_exit(1);
	_exit(lb_worker_run(&args));
}

/* Every generation: the current one, then the older, draining ones. */
#define for_each_gen(g) for (struct gen *g = m.cur; g; g = g == m.cur ? m.old : g->next)

static int spawn(struct slot *s)
{
	struct lb_shm *shm = s->gen->shm;
	int sp[2];
	pid_t pid;

	/* A slot whose start failed gave its listener up: it gets a new one. */
	if (s->gen == m.cur) {
		int rc = lb_listener_set_open(&m.ls, s->id);

		if (rc < 0)
			return rc;
	}
	if (!s->ledger)
		s->ledger = lb_shm_ledger_map(m.cap.conns);
	if (!s->client_ledger)
		s->client_ledger = lb_shm_ledger_map(m.cap.conns);
	if (!s->ledger || !s->client_ledger)
		return -ENOMEM;
	if (s->shm_slot < 0) {
		s->shm_slot = lb_shm_worker_slot(shm);
		if (s->shm_slot < 0)
			return -ENOSPC;
		/*
		 * Claimed at once: the slot stays this one's when the start
		 * fails below, so the next spawn does not pick it too.
		 */
		atomic_store(&shm->workers[s->shm_slot].pid, -1);
		shm->workers[s->shm_slot].id = s->id;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		return -errno;
	/* Until the fork, not a pid anyone can signal. */
	atomic_store(&shm->workers[s->shm_slot].pid, -1);
	pid = fork();
	if (pid == -1) {
		int rc = -errno;

		close(sp[0]);
		close(sp[1]);
		return rc;
	}
	if (pid == 0) {
		close(sp[0]);
		s->fd = sp[1];
		worker_child(s);
	}
	close(sp[1]);
	s->fd = sp[0];
	s->pid = pid;
	s->started = lb_clock_ms();
	s->backoff_ms = 0;
	shm->workers[s->shm_slot].id = s->id;
	atomic_store(&shm->workers[s->shm_slot].generation, shm->generation);
	atomic_store(&shm->workers[s->shm_slot].restarts, s->restarts);
	atomic_store(&shm->workers[s->shm_slot].pid, pid);
	lb_info("worker %u of generation %u started: pid %d", s->id, shm->generation, (int)pid);
	return 0;
}

/* Tells a worker to stop accepting and drain, with drain_ms (plus a grace) to do it. */
static void slot_drain(struct slot *s, unsigned int drain_ms)
{
	s->kept = false;
	lb_loop_timer_cancel(m.loop, &s->respawn);
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	if (!s->kill_at)
		s->kill_at = lb_loop_now(m.loop) + drain_ms + STOP_GRACE_MS;
}

static void arm_stop_timer(void);

/* Slot s of the current generation runs: older workers kept at its position may go. */
static void release_kept(const struct slot *s)
{
	for_each_gen(g) {
		if (g == m.cur || s->id >= g->n_slots || !g->slots[s->id].kept)
			continue;
		lb_info("worker %u of generation %u hands over to generation %u", s->id,
			g->shm->generation, m.cur->shm->generation);
		slot_drain(&g->slots[s->id], g->cfg->drain_timeout_ms);
	}
	arm_stop_timer();
}

/*
 * A slot that could not start: it is retried with backoff, and meanwhile
 * its listener must not collect connections nobody accepts. The master
 * lets go of it; once no worker holds it either, the kernel moves its
 * queue to the rest of the group (tcp_migrate_req).
 */
static void spawn_failed(struct slot *s, int err)
{
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : SPAWN_BACKOFF_MIN_MS;
	if (s->backoff_ms > SPAWN_BACKOFF_MAX_MS)
		s->backoff_ms = SPAWN_BACKOFF_MAX_MS;
	lb_err("worker %u of generation %u: cannot start: %s; retrying in %u ms", s->id,
	       s->gen->shm->generation, strerror(-err), s->backoff_ms);
	if (s->gen == m.cur)
		lb_listener_set_close(&m.ls, s->id);
	lb_loop_timer_set(m.loop, &s->respawn, lb_loop_now(m.loop) + s->backoff_ms);
}

static void respawn_due(struct lb_timer *t)
{
	struct slot *s = lb_container_of(t, struct slot, respawn);
	int rc;

	if (m.stopping || s->gen->retiring)
		return;
	rc = spawn(s);
	if (rc < 0) {
		spawn_failed(s, rc);
		return;
	}
	release_kept(s);
}

static bool gen_exited(const struct gen *g)
{
	for (unsigned int i = 0; i < g->n_slots; i++)
		if (g->slots[i].pid > 0)
			return false;
	return true;
}

static bool all_exited(void)
{
	for_each_gen(g)
		if (!gen_exited(g))
			return false;
	return true;
}

static void gen_free(struct gen *g)
{
	if (!g)
		return;
	for (unsigned int i = 0; i < g->n_slots; i++) {
		struct slot *s = &g->slots[i];

		lb_loop_timer_cancel(m.loop, &s->respawn);
		if (s->fd >= 0)
			close(s->fd);
		if (s->shm_slot >= 0 && g->shm)
			atomic_store(&g->shm->workers[s->shm_slot].pid, 0);
		lb_shm_ledger_unmap(s->ledger, m.cap.conns);
		lb_shm_ledger_unmap(s->client_ledger, m.cap.conns);
	}
	free(g->slots);
	lb_shm_destroy(g->shm);
	lb_config_free(g->cfg);
	free(g);
}

static struct gen *gen_alloc(struct lb_config *cfg, struct lb_shm *shm, unsigned int n)
{
	struct gen *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->slots = calloc(n, sizeof(*g->slots));
	if (!g->slots) {
		free(g);
		return NULL;
	}
	g->cfg = cfg;
	g->shm = shm;
	g->n_slots = n;
	for (unsigned int i = 0; i < n; i++) {
		g->slots[i] = (struct slot){ .gen = g, .id = i, .shm_slot = -1, .fd = -1 };
		g->slots[i].respawn.cb = respawn_due;
	}
	return g;
}

static struct slot *find_slot(pid_t pid)
{
	for_each_gen(g)
		for (unsigned int i = 0; i < g->n_slots; i++)
			if (g->slots[i].pid == pid)
				return &g->slots[i];
	return NULL;
}

/*
 * A worker that ends its flows removes their keys from the shared keyset
 * itself; one that died may have left some. Only a generation with UDP
 * services ever inserts any, and a worker that exited 0 had ended every
 * flow first. The scan covers the whole set, sized for every slot of
 * every worker, so the dead are collected and purged in one pass.
 */
static bool leaves_keys(const struct slot *s, int status)
{
	for (size_t i = 0; i < s->gen->cfg->n_services; i++)
		if (s->gen->cfg->services[i].protocols & LB_PROTO_UDP)
			return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	return false;
}

static void reap(void)
{
	struct lb_shm_pool *purge = NULL;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct slot *s = find_slot(pid);
		struct lb_shm_worker *sw;
		unsigned int settled, flows, tcp_slots, flow_slots;
		uint64_t lived;

		if (!s) {
			lb_http_reaped(m.http, pid, status, !m.stopping);
			continue;
		}
		sw = &s->gen->shm->workers[s->shm_slot];
		close(s->fd);
		s->fd = -1;
		s->pid = 0;
		s->kept = false;
		s->hung = false;
		s->kill_at = 0;
		/* What it held is gone with it; nobody else will decrement these. */
		atomic_store(&sw->state, LB_WORKER_STOPPED);
		atomic_store(&sw->active, 0);
		atomic_store(&sw->udp_flows, 0);
		/* Its flows' entries follow its connections' in the ledger. */
		lb_capacity_split(&m.cap, s->gen->cfg, &tcp_slots, &flow_slots);
		flows = lb_shm_ledger_settle_flows(s->gen->shm, s->ledger + tcp_slots, flow_slots);
		if (flows)
			lb_info("worker %u (pid %d) held %u udp flows: no longer counted", s->id,
				(int)pid, flows);
		settled = lb_shm_ledger_settle(s->gen->shm->pool, s->ledger, m.cap.conns);
		if (settled)
			lb_info("worker %u (pid %d) held %u backend connections: no longer counted",
				s->id, (int)pid, settled);
		/* Its clients' connections no longer count against clients.max_conns. */
		lb_clients_settle(s->gen->shm->pool->clients, s->client_ledger, m.cap.conns);
		/* The UDP flows' (client, backend) pairs it held are free for others. */
		if (leaves_keys(s, status) && (size_t)s->shm_slot / 64 < m.n_owner_words) {
			m.dead_owners[s->shm_slot / 64] |= 1ull << (s->shm_slot % 64);
			purge = s->gen->shm->pool;
		}
		if (m.stopping || s->gen->retiring) {
			lb_info("worker %u of generation %u (pid %d) exited", s->id,
				s->gen->shm->generation, (int)pid);
			continue;
		}
		lived = lb_clock_ms() - s->started;
		if (WIFSIGNALED(status))
			lb_warn("worker %u (pid %d) killed by signal %d; restarting", s->id,
				(int)pid, WTERMSIG(status));
		else
			lb_warn("worker %u (pid %d) exited with status %d; restarting", s->id,
				(int)pid, WEXITSTATUS(status));
		s->restarts++;
		/* A worker that dies at once would otherwise be forked in a tight loop. */
		lb_loop_timer_set(m.loop, &s->respawn,
				  lb_loop_now(m.loop) + (lived < RESPAWN_MIN_LIFE_MS ? 1000 : 0));
	}
	if (purge) {
		unsigned int n = lb_keyset_purge(purge->keyset, m.dead_owners, m.n_owner_words * 64);

		if (n)
			lb_info("%u udp flow keys of dead workers released", n);
		memset(m.dead_owners, 0, m.n_owner_words * sizeof(*m.dead_owners));
	}
	arm_stop_timer();
	if (m.stopping && all_exited())
		lb_loop_stop(m.loop);
}

/* The stop timer fires at the earliest kill deadline of any worker. */
static void arm_stop_timer(void)
{
	uint64_t next = 0;

	for_each_gen(g)
		for (unsigned int i = 0; i < g->n_slots; i++) {
			uint64_t at = g->slots[i].kill_at;

			if (at && (!next || at < next))
				next = at;
		}
	if (next)
		lb_loop_timer_set(m.loop, &m.stop_timer, next);
	else
		lb_loop_timer_cancel(m.loop, &m.stop_timer);
}

/*
 * Tells g's workers to drain, but for those kept accepting until their
 * successor starts. A worker already given an earlier deadline keeps it,
 * so later reloads never extend it.
 */
static void gen_drain(struct gen *g, unsigned int drain_ms)
{
	for (unsigned int i = 0; i < g->n_slots; i++)
		if (!g->slots[i].kept)
			slot_drain(&g->slots[i], drain_ms);
	arm_stop_timer();
}

/* A drain deadline passed: the worker still running is killed. */
static void stop_expired(struct lb_timer *t)
{
	uint64_t now = lb_loop_now(m.loop);

	for_each_gen(g)
		for (unsigned int i = 0; i < g->n_slots; i++) {
			struct slot *s = &g->slots[i];

			if (!s->kill_at || s->kill_at > now)
				continue;
			s->kill_at = 0;
			if (s->pid <= 0)
				continue;
			lb_warn("worker %u (pid %d) of generation %u still running after its drain: "
				"killing it", s->id, (int)s->pid, g->shm->generation);
			kill(s->pid, SIGKILL);
		}
	arm_stop_timer();
}

/*
 * Stops lb: withdraws its announcements, closes the listeners and gives
 * the workers drain_ms to finish their connections.
 */
static void begin_stop(const char *why, unsigned int drain_ms)
{
	if (m.stopping)
		return;
	m.stopping = true;
	lb_info("%s: stopping", why);
	lb_notify("STOPPING=1");
	/* Before the listeners go, so routers stop sending as early as possible. */
	lb_announce_stop(m.announce, lb_loop_now(m.loop));
	/* No new connection may queue on a socket nobody will accept from. */
	lb_listener_set_free(&m.ls);
	for_each_gen(g) {
		for (unsigned int i = 0; i < g->n_slots; i++)
			g->slots[i].kept = false;
		gen_drain(g, drain_ms);
	}
	if (all_exited())
		lb_loop_stop(m.loop);
}

/*
 * A worker whose loop has not stamped its heartbeat for watchdog_ms is
 * stopped or stuck: its listener collects connections nobody accepts and
 * its connections stall. It is killed; reaping restarts it (unless its
 * generation is retiring), and the replacement takes over its queue. One
 * that spent the silence waiting for a CPU is not stuck but starved (the
 * box carries more than it can, as at a million connections on two CPUs):
 * killing it would lose its connections and free no CPU, so it is spared
 * and judged again over the next stretch (lb/watchdog.h).
 */
static void watchdog_slot(struct gen *g, struct slot *s, uint64_t now)
{
	unsigned int limit = g->cfg->watchdog_ms;
	struct lb_watchdog_sample cur;
	uint64_t beat, last;

	beat = atomic_load(&g->shm->workers[s->shm_slot].heartbeat_ms);
	last = beat > s->started ? beat : s->started;
	if (now < last + limit / 2) {
		s->quiet.at_ms = 0;
		return;
	}
	if (!s->quiet.at_ms || s->quiet_beat != last) {
		if (lb_watchdog_read(s->pid, now, &s->quiet) < 0)
			s->quiet.at_ms = 0;
		s->quiet_beat = last;
	}
	if (now < last + limit || (s->quiet.at_ms && now - s->quiet.at_ms < limit / 2))
		return;
	if (s->quiet.at_ms && lb_watchdog_read(s->pid, now, &cur) == 0 &&
	    lb_watchdog_judge(&s->quiet, &cur) == LB_WATCHDOG_STARVED) {
		if (now - s->spared_log_ms >= limit) {
			s->spared_log_ms = now;
			lb_warn("worker %u (pid %d) of generation %u made no progress for %llu ms "
				"(watchdog_ms %u) but is waiting for a CPU (it ran %llu ms of the "
				"last %llu): the box is overloaded, the worker is not stuck; sparing it",
				s->id, (int)s->pid, g->shm->generation,
				(unsigned long long)(now - last), limit,
				(unsigned long long)((cur.run_ns - s->quiet.run_ns) / 1000000),
				(unsigned long long)(now - s->quiet.at_ms));
		}
		s->quiet = cur;
		return;
	}
	lb_warn("worker %u (pid %d) of generation %u made no progress for %llu ms "
		"(watchdog_ms %u): killing it", s->id, (int)s->pid, g->shm->generation,
		(unsigned long long)(now - last), limit);
	s->hung = true;
	kill(s->pid, SIGKILL);
}

static void watchdog(void)
{
	uint64_t now = lb_clock_ms();

	for_each_gen(g) {
		for (unsigned int i = 0; g->cfg->watchdog_ms && i < g->n_slots; i++) {
			struct slot *s = &g->slots[i];

			if (s->pid > 0 && !s->hung)
				watchdog_slot(g, s, now);
		}
	}
}

static void client_drops_cb(void *arg, size_t service, const char *what, uint64_t packets)
{
	lb_shm_client_drops(arg, service, what, packets);
}

/* Copies what the kernel's per-client rules dropped into the current generation's shm. */
static void client_drops_poll(void)
{
	m.drops_polled_ms = lb_loop_now(m.loop);
	lb_rules_client_drops(m.rules, client_drops_cb, m.cur->shm);
}

/* Connections open in every worker of every generation (the pool's slots). */
static int64_t open_connections(void)
{
	const struct lb_shm *shm = m.cur->shm;
	int64_t n = 0;

	for (uint32_t i = 0; i < shm->n_workers; i++)
		if (atomic_load(&shm->workers[i].pid))
			n += atomic_load(&shm->workers[i].active);
	return n;
}

static void tick(struct lb_timer *t)
{
	uint64_t now = lb_loop_now(m.loop);
	uint64_t due = lb_shm_maglev_refresh(m.cur->shm, m.cur->cfg, now, LB_SHM_MAGLEV_MIN_MS,
					     LB_SHM_MAGLEV_BUDGET);

	watchdog();
	if (now - m.drops_polled_ms >= DROPS_POLL_MS)
		client_drops_poll();
	if (!m.stopping && lb_announce_state(m.announce)->gateway == LB_GATEWAY_DRAINING &&
	    lb_announce_drain_check(m.announce, open_connections(), now))
		begin_stop("gateway drained", 0);
	/* A build under way goes on at the next turn of the loop, after what else is ready. */
	lb_loop_timer_set(m.loop, t, now + (due && due < TICK_MS ? due : TICK_MS));
}

/*
 * Starts every slot of g; those that fail are retried with backoff
 * (spawn_failed). Returns how many started.
 */
static unsigned int start_gen(struct gen *g)
{
	unsigned int started = 0;

	for (unsigned int i = 0; i < g->n_slots; i++) {
		int rc = spawn(&g->slots[i]);

		if (rc < 0)
			spawn_failed(&g->slots[i], rc);
		else
			started++;
	}
	return started;
}

/*
 * Hands the heap the parser freed (a 100,000-VIP config leaves tens of MB
 * of small holes) back to the kernel before workers are forked: they
 * would each map it, and the master's RSS would keep it.
 */
static void trim_heap(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void *tree_free_main(void *tree)
{
	lb_config_tree_free(tree);
	return NULL;
}

/*
 * Frees cfg's JSON tree on a thread of its own while the reload applies
 * the config on this one (at 100,000 VIPs, 15-20 ms of frees that would
 * otherwise delay the answer). Returns false when the tree was freed here
 * instead. The thread is joined (tree_free_join) before any fork: the
 * workers must not be forked from a process with two threads, nor
 * inherit the tree's pages.
 */
static bool tree_free_start(pthread_t *t, struct lb_config *cfg)
{
	struct json_t *tree = lb_config_take_tree(cfg);
	sigset_t all, old;
	int rc;

	if (!tree)
		return false;
	/* Signals stay with the loop's thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, tree_free_main, tree);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		return true;
	lb_config_tree_free(tree);
	return false;
}

static void tree_free_join(const pthread_t *t, bool *running)
{
	if (*running)
		pthread_join(*t, NULL);
	*running = false;
}

/*
 * Re-reads the config and, only when it is valid and its rules applied,
 * starts a new generation of workers on the (mostly same) listening
 * sockets and tells the old one to drain. Returns 0 or -errno with a
 * one-line result in msg. Runs inside a loop callback: what it retires is
 * freed after the batch.
 */
static int reload(char *msg, size_t len)
{
	struct lb_config *cfg;
	struct lb_shm *shm = NULL;
	struct lb_listener_set ls = { 0 };
	struct lb_health *health;
	struct gen *g = NULL, *old = m.cur;
	char err[512];
	unsigned int n, started;
	pthread_t tree_thread;
	bool tree_freeing;
	int rc;

	if (m.stopping) {
		snprintf(msg, len, "lb is stopping");
		return -ESHUTDOWN;
	}
	/* Services whose text is unchanged are copied from the running config, not read again. */
	cfg = lb_config_reload_log(m.config_path, old->cfg, "reload: ", msg, len);
	if (!cfg)
		return -EINVAL;
	if (lb_config_copied(cfg))
		lb_info("reload: %zu of %zu services unchanged, copied from the running config",
			lb_config_copied(cfg), cfg->n_services);
	tree_freeing = tree_free_start(&tree_thread, cfg);
	if (lb_priv_check(cfg) < 0) {
		snprintf(msg, len, "cannot run workers as %s:%s (see the log)", cfg->user, cfg->group);
		tree_free_join(&tree_thread, &tree_freeing);
		lb_config_free(cfg);
		return -EPERM;
	}
	/* Warnings are logged and the config applies; errors keep the running one. */
	if (lb_preflight_config_log(cfg, "reload: ", err, sizeof(err)) < 0) {
		snprintf(msg, len, "%s: %s", m.config_path, err);
		tree_free_join(&tree_thread, &tree_freeing);
		lb_config_free(cfg);
		return -EINVAL;
	}
	if (strcmp(cfg->control_path, old->cfg->control_path) ||
	    cfg->control_mode != old->cfg->control_mode)
		lb_warn("reload: control socket settings change only when lb restarts");
	n = lb_limits_workers(cfg, &m.cap);
	lb_limits_log(cfg, n, &m.cap);
	if (lb_listener_set_plan(&ls, cfg, n, &m.ls) < 0) {
		snprintf(msg, len, "cannot open the listening sockets (see the log)");
		rc = -EIO;
		goto fail;
	}
	/* What the old table counted goes to the old generation, which hands it on. */
	client_drops_poll();
	shm = lb_shm_create_next(old->shm, old->cfg, cfg);
	g = shm ? gen_alloc(cfg, shm, n) : NULL;
	if (!g) {
		rc = -errno ? -errno : -ENOMEM;
		snprintf(msg, len, "shared memory: %s", strerror(-rc));
		goto fail;
	}
	rc = lb_announce_open(m.announce, cfg, err, sizeof(err));
	if (rc == 0)
		rc = lb_announce_prepare(m.announce, cfg, err, sizeof(err));
	if (rc == 0)
		rc = lb_peers_prepare(m.peers, cfg, err, sizeof(err));
	if (rc == 0)
		rc = lb_rules_install(m.rules, cfg, lb_peers_table(m.peers), err, sizeof(err));
	if (rc < 0) {
		lb_err("reload: %s", err);
		snprintf(msg, len, "%s", err);
		goto fail;
	}

	/* Committed: from here on the new config is in force. */
	lb_log_init(cfg->log_level, "master");
	lb_log_use_syslog(cfg->log_syslog);
	health = lb_health_start(m.loop, cfg, shm);
	if (!health)
		lb_err("reload: health checks: %s; backends are not checked until the next "
		       "reload", strerror(errno));
	/* The old checker works on the old generation's state: it goes with it. */
	lb_health_retire(&m.retired_health, m.health);
	m.health = health;
	lb_listener_set_free(&m.ls);	/* only those the new set did not take */
	m.ls = ls;
	m.cur = g;
	/* The next reload compares with the new config's text, never with this one's. */
	lb_config_drop_source(old->cfg);
	old->retiring = true;
	old->next = m.old;
	m.old = old;
	tree_free_join(&tree_thread, &tree_freeing);
	trim_heap();
	started = start_gen(g);
	/*
	 * Old workers stop accepting at once and the new ones take over their
	 * queues; but at a position whose new worker could not start, the old
	 * one (on the same listener) keeps accepting until it does, so a
	 * failed fork never leaves a shard unserved.
	 */
	for (unsigned int i = 0; i < old->n_slots; i++) {
		struct slot *o = &old->slots[i];

		lb_loop_timer_cancel(m.loop, &o->respawn);
		o->kept = o->pid > 0 && i < g->n_slots && g->slots[i].pid <= 0 &&
			  old->cfg->intercept.port == cfg->intercept.port;
	}
	for (struct gen *o = old->next; o; o = o->next)
		for (unsigned int i = 0; i < o->n_slots; i++)
			if (o->slots[i].kept && (i >= g->n_slots || g->slots[i].pid > 0))
				slot_drain(&o->slots[i], o->cfg->drain_timeout_ms);
	gen_drain(old, old->cfg->drain_timeout_ms);
	if (started < n)
		lb_err("reload: generation %u started %u of %u workers; the rest are retried, and "
		       "older workers keep their positions meanwhile", shm->generation, started, n);
	lb_announce_use(m.announce, cfg, shm);
	lb_peers_use(m.peers, cfg, m.loop, m.rules, m.announce);
	m.ctl_state.cfg = cfg;
	m.ctl_state.shm = shm;
	m.ctl_state.generation = shm->generation;
	m.ctl_state.workers = n;
	if (lb_http_apply(m.http, err, sizeof(err)) < 0)
		lb_err("reload: %s; the http listener is off until the next reload", err);
	snprintf(msg, len, "generation %u: %zu services, %u workers", shm->generation,
		 cfg->n_services, n);
	lb_info("reload: %s", msg);
	return 0;
fail:
	tree_free_join(&tree_thread, &tree_freeing);
	lb_listener_set_giveback(&ls, &m.ls);
	if (g) {
		g->cfg = NULL;
		g->shm = NULL;
		gen_free(g);
	}
	lb_shm_destroy(shm);
	lb_config_free(cfg);
	return rc;
}

/* Both ways in (SIGHUP, control socket) tell the service manager. */
static int notified_reload(char *msg, size_t len)
{
	char status[300];
	int rc;

	lb_notify("RELOADING=1");
	rc = reload(msg, len);
	snprintf(status, sizeof(status), "READY=1\nSTATUS=generation %u%s%.200s",
		 m.cur->shm->generation, rc < 0 ? "; last reload failed: " : "", rc < 0 ? msg : "");
	lb_notify(status);
	return rc;
}

static int ctl_reload(void *arg, char *msg, size_t len)
{
	return notified_reload(msg, len);
}

static void sighup_reload(void)
{
	char msg[512];
	int rc = notified_reload(msg, sizeof(msg));

	if (rc < 0)
		lb_err("reload failed, still running generation %u: %s", m.cur->shm->generation, msg);
	lb_ctl_state_reloaded(&m.ctl_state, rc == 0, msg);
}

static void on_signal(int signo)
{
	switch (signo) {
	case SIGCHLD:
		reap();
		break;
	case SIGTERM:
	case SIGINT:
		/* m.cur is set before the loop runs and never cleared while it does. */
		begin_stop(strsignal(signo), m.cur->cfg->drain_timeout_ms);
		break;
	case SIGHUP:
		/* Signals queued meanwhile coalesce into one more reload. */
		if (!m.stopping)
			sighup_reload();
		break;
	}
}

/* Frees, outside any callback, what callbacks of this batch retired. */
static void after_batch(void *arg)
{
	struct gen **pg = &m.old;

	/* States changed in this batch (health, control) reach the routes now. */
	if (m.ready_pending && lb_peers_settled(m.peers)) {
		m.ready_pending = false;
		lb_announce_ready(m.announce, lb_loop_now(m.loop));
	}
	lb_peers_sync(m.peers, open_connections(), lb_loop_now(m.loop));
	lb_announce_sync(m.announce, lb_loop_now(m.loop));
	lb_health_stop_list(&m.retired_health);
	while (*pg) {
		struct gen *g = *pg;

		if (!gen_exited(g) || m.stopping) {
			pg = &g->next;
			continue;
		}
		*pg = g->next;
		lb_info("generation %u drained", g->shm->generation);
		gen_free(g);
	}
}

static void open_ctl(void)
{
	char err[512];

	m.ctl_state = (struct lb_ctl_state){
		.cfg = m.cur->cfg,
		.shm = m.cur->shm,
		.config_path = m.config_path,
		.start_ms = lb_clock_ms(),
		.start_time = time(NULL),
		.generation = m.cur->shm->generation,
		.cap = &m.cap,
		.workers = m.cur->n_slots,
		.reload = ctl_reload,
		.refresh = client_drops_poll,
	};
	m.ctl = lb_ctl_open(m.loop, m.cur->cfg, &m.ctl_state, err, sizeof(err));
	if (!m.ctl)
		lb_err("control socket: %s", err);
}

int lb_master_run(const char *config_path, struct lb_config *cfg)
{
	struct lb_shm *shm;
	char err[512];
	int rc, status = 1;
	unsigned int n;

	m.config_path = config_path;
	lb_log_init(cfg->log_level, "master");
	lb_log_use_syslog(cfg->log_syslog);
	if (lb_preflight(cfg) < 0 || lb_priv_check(cfg) < 0) {
		lb_config_free(cfg);
		return 1;
	}
	lb_capacity_compute(&m.cap);
	n = lb_limits_workers(cfg, &m.cap);
	lb_limits_log(cfg, n, &m.cap);
	m.loop = lb_loop_alloc();
	shm = lb_shm_create(cfg, n, n * m.cap.conns);
	if (shm) {
		m.n_owner_words = (shm->pool->n_worker_slots + 63) / 64;
		m.dead_owners = calloc(m.n_owner_words, sizeof(*m.dead_owners));
	}
	m.cur = shm && m.loop && m.dead_owners ? gen_alloc(cfg, shm, n) : NULL;
	if (!m.cur) {
		lb_err("out of memory");
		lb_shm_destroy(shm);
		lb_config_free(cfg);
		goto out;
	}
	lb_loop_set_after(m.loop, after_batch, NULL);
	m.stop_timer.cb = stop_expired;
	signal(SIGPIPE, SIG_IGN);
	rc = lb_loop_add_signals(m.loop, &m.sig, (const int[]){ SIGCHLD, SIGTERM, SIGINT, SIGHUP, 0 },
				 on_signal);
	if (rc < 0) {
		lb_err("signals: %s", strerror(-rc));
		goto out;
	}
	if (lb_listener_set_plan(&m.ls, cfg, n, NULL) < 0)
		goto out;
	m.migrate_req_saved = lb_preflight_migrate_req();
	open_ctl();
	if (!m.ctl)
		goto out;
	m.rules = lb_rules_alloc();
	m.announce = lb_announce_alloc();
	m.peers = lb_peers_alloc();
	m.http = lb_http_alloc(m.loop, &m.ctl_state);
	if (!m.rules || !m.announce || !m.peers || !m.http) {
		lb_err("out of memory");
		goto out;
	}
	m.ctl_state.pid = getpid();
	m.ctl_state.announce = m.announce;
	m.ctl_state.peers = lb_peers_state(m.peers);
	/* Before dropping privileges: a port below 1024 needs them. */
	if (lb_http_apply(m.http, err, sizeof(err)) < 0) {
		lb_err("%s", err);
		goto out;
	}
	/* Nothing is announced before lb is ready; the device must exist before privileges go. */
	if (lb_announce_open(m.announce, cfg, err, sizeof(err)) < 0 ||
	    lb_announce_prepare(m.announce, cfg, err, sizeof(err)) < 0) {
		lb_err("%s", err);
		goto out;
	}
	lb_announce_use(m.announce, cfg, shm);
	/* Watching first: a removal between the install and the watch would go unnoticed. */
	lb_rules_watch(m.rules, m.loop);
	m.ctl_state.rules = lb_rules_state(m.rules);
	/* The heartbeat socket before privileges go; the table's verdicts with the rules. */
	if (lb_peers_prepare(m.peers, cfg, err, sizeof(err)) < 0 ||
	    lb_rules_install(m.rules, cfg, lb_peers_table(m.peers), err, sizeof(err)) < 0) {
		lb_err("%s", err);
		goto out;
	}
	lb_peers_use(m.peers, cfg, m.loop, m.rules, m.announce);
	m.health = lb_health_start(m.loop, cfg, shm);
	if (!m.health) {
		lb_err("health checks: %s", strerror(errno));
		goto out;
	}
	if (lb_priv_drop_master() < 0)
		goto out;
	m.tick.cb = tick;
	lb_loop_timer_set(m.loop, &m.tick, lb_loop_now(m.loop) + TICK_MS);
	trim_heap();
	if (start_gen(m.cur) == 0) {
		lb_err("no worker could start");
		begin_stop("no worker could start", cfg->drain_timeout_ms);
	} else {
		lb_info("ready: %u workers, %u connections each (open-file limit %lu), "
			"intercepting on port %u, table inet %s", n, m.cap.conns, m.cap.nofile,
			cfg->intercept.port, cfg->intercept.table);
		lb_notify("READY=1\nSTATUS=generation 1");
		/* With ownership, not before the tier knows this gateway (after_batch). */
		m.ready_pending = true;
	}
	rc = lb_loop_run(m.loop);
	if (rc < 0) {
		lb_err("event loop failed: %s", strerror(-rc));
		for_each_gen(g)
			for (unsigned int i = 0; i < g->n_slots; i++)
				if (g->slots[i].pid > 0)
					kill(g->slots[i].pid, SIGKILL);
	}
	status = rc < 0 ? 1 : 0;
out:
	/* The device, and every route through it, goes first: routers stop sending at once. */
	lb_announce_free(m.announce);
	/* Goodbye to the peers while the maps still forward what they send. */
	lb_peers_free(m.peers);
	lb_health_stop_list(&m.retired_health);
	lb_health_stop(m.health);
	lb_http_free(m.http);
	lb_ctl_close(m.ctl);
	lb_listener_set_free(&m.ls);
	lb_rules_remove(m.rules);
	lb_preflight_migrate_restore(m.migrate_req_saved);
	if (status == 0)
		lb_info("stopped; rules and routes removed");
	lb_rules_free(m.rules);
	while (m.old) {
		struct gen *g = m.old;

		m.old = g->next;
		gen_free(g);
	}
	gen_free(m.cur);
	free(m.dead_owners);
	if (m.sig.ev.fd > 0)
		close(m.sig.ev.fd);
	lb_loop_free(m.loop);
	return status;
}
