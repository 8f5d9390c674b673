// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control plane. The master opens every worker's listening sockets
 * before it installs the rules and keeps them for its whole life, so a
 * worker that dies leaves its queue intact for the one that replaces it.
 * Signals arrive through a signalfd and are acted on in the loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb/health.h"
#include "lb/listener.h"
#include "lb/log.h"
#include "lb/loop.h"
#include "lb/master.h"
#include "lb/preflight.h"
#include "lb/shm.h"
#include "lb/worker.h"

/* fds a worker needs besides two per connection: listeners, epoll, signalfd, stdio... */
#define WORKER_FD_RESERVE 64
#define WORKER_PIPES 128
#define RESPAWN_MIN_LIFE_MS 1000
#define STOP_GRACE_MS 2000
/* How soon a state change reaches the Maglev tables. */
#define MAGLEV_REFRESH_MS 100

struct slot {
	unsigned int id;
	int shm_slot;			/* its lb_shm_worker, -1 before the first start */
	pid_t pid;
	int fd;				/* master's end of the worker's socketpair */
	int listen_fds[LB_WORKER_MAX_LISTENERS];
	size_t n_listen;
	uint64_t started;
	unsigned int restarts;
	struct lb_timer respawn;
};

struct master {
	const char *config_path;
	struct lb_config *cfg;
	struct lb_loop *loop;
	struct lb_event sig;
	struct slot *slots;
	unsigned int n_slots;
	struct lb_capacity cap;
	struct lb_rules rules;
	struct lb_shm *shm;
	struct lb_health *health;
	struct lb_timer tick;
	bool rules_installed, routes_installed;
	bool stopping;
	struct lb_timer stop_timer;
	int status;
};

static struct master m;

int lb_rules_init(struct lb_rules *r, const struct lb_config *cfg)
{
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < cfg->n_services; i++)
		n += cfg->services[i].n_vips;
	r->vips = calloc(n ? n : 1, sizeof(*r->vips));
	if (!r->vips)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < cfg->n_services; i++)
		for (size_t j = 0; j < cfg->services[i].n_vips; j++)
			r->vips[n++] = cfg->services[i].vips[j].ss;
	r->nft = (struct lb_nft_spec){
		.table = cfg->intercept.table,
		.mark = cfg->intercept.mark,
		.port = cfg->intercept.port,
		.vips = r->vips,
		.n_vips = n,
	};
	r->route = (struct lb_nft_route_spec){
		.mark = cfg->intercept.mark,
		.table = cfg->intercept.route_table,
		.priority = cfg->intercept.rule_priority,
		.ipv4 = lb_config_has_family(cfg, AF_INET),
		.ipv6 = lb_config_has_family(cfg, AF_INET6),
	};
	return 0;
}

void lb_rules_fini(struct lb_rules *r)
{
	free(r->vips);
	r->vips = NULL;
}

void lb_capacity_compute(struct lb_capacity *cap)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		rl.rlim_cur = 1024;
	cap->nofile = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
	cap->pipes = WORKER_PIPES;
	if (cap->nofile < 2 * cap->pipes + WORKER_FD_RESERVE + 64)
		cap->pipes = cap->nofile / 8;
	cap->conns = (cap->nofile - 2 * cap->pipes - WORKER_FD_RESERVE) / 2;
}

static void close_listeners(void)
{
	for (unsigned int i = 0; i < m.n_slots; i++) {
		struct slot *s = &m.slots[i];

		for (size_t j = 0; j < s->n_listen; j++)
			close(s->listen_fds[j]);
		s->n_listen = 0;
	}
}

static int open_listeners(void)
{
	static const int families[] = { AF_INET, AF_INET6 };

	for (unsigned int i = 0; i < m.n_slots; i++) {
		struct slot *s = &m.slots[i];

		for (size_t f = 0; f < 2; f++) {
			union lb_sockaddr a = { 0 };
			char buf[LB_ADDR_STRLEN];
			const char *what;
			int fd;

			if (!lb_config_has_family(m.cfg, families[f]))
				continue;
			if (families[f] == AF_INET) {
				a.in.sin_family = AF_INET;
				a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			} else {
				a.in6.sin6_family = AF_INET6;
				a.in6.sin6_addr = in6addr_loopback;
			}
			lb_addr_set_port(&a, m.cfg->intercept.port);
			what = "bind";
			fd = i == 0 ? lb_listener_probe(&a) : 0;
			if (fd == 0)
				fd = lb_listener_open(&a, &what);
			if (fd < 0) {
				lb_err("listener %s for worker %u: %s: %s%s",
				       lb_addr_format(&a, buf, sizeof(buf)), i, what, strerror(-fd),
				       fd == -EADDRINUSE ? " (another program, or another lb, "
				       "listens on intercept.port)" : "");
				return fd;
			}
			s->listen_fds[s->n_listen++] = fd;
		}
	}
	return 0;
}

static void worker_child(struct slot *s)
{
	struct lb_worker_args args = {
		.id = s->id,
		.cfg = m.cfg,
		.shm = m.shm,
		.slot = s->shm_slot,
		.generation = m.shm->generation,
		.master_fd = s->fd,
		.capacity = m.cap.conns,
		.pipes = m.cap.pipes,
	};
	char tag[32];

	/* Die with the master even if it is killed outright. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(tag, sizeof(tag), "worker[%u]", s->id);
	lb_log_init(m.cfg->log_level, tag);
	close(m.sig.fd);
	for (unsigned int i = 0; i < m.n_slots; i++) {
		struct slot *o = &m.slots[i];

		if (o == s)
			continue;
		if (o->pid > 0)
			close(o->fd);
		for (size_t j = 0; j < o->n_listen; j++)
			close(o->listen_fds[j]);
	}
	memcpy(args.listen_fds, s->listen_fds, sizeof(args.listen_fds));
	args.n_listen = s->n_listen;
	/* The parent's loop fd is shared with it: leave it, open our own. */
	_exit(lb_worker_run(&args));
}

static int spawn(struct slot *s)
{
	int sp[2];
	pid_t pid;

	if (s->shm_slot < 0)
		s->shm_slot = lb_shm_worker_slot(m.shm);
	if (s->shm_slot < 0)
		return -ENOSPC;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		return -errno;
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
	m.shm->workers[s->shm_slot].id = s->id;
	atomic_store(&m.shm->workers[s->shm_slot].generation, m.shm->generation);
	atomic_store(&m.shm->workers[s->shm_slot].restarts, s->restarts);
	atomic_store(&m.shm->workers[s->shm_slot].pid, pid);
	lb_info("worker %u started: pid %d", s->id, (int)pid);
	return 0;
}

static void respawn_due(struct lb_timer *t)
{
	struct slot *s = lb_container_of(t, struct slot, respawn);
	int rc;

	if (m.stopping)
		return;
	rc = spawn(s);
	if (rc < 0) {
		lb_err("worker %u: fork failed: %s; retrying in 1 s", s->id, strerror(-rc));
		lb_loop_timer_set(m.loop, &s->respawn, lb_loop_now(m.loop) + 1000);
	}
}

static bool all_exited(void)
{
	for (unsigned int i = 0; i < m.n_slots; i++)
		if (m.slots[i].pid > 0)
			return false;
	return true;
}

static void reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct slot *s = NULL;
		uint64_t lived;

		for (unsigned int i = 0; i < m.n_slots; i++)
			if (m.slots[i].pid == pid)
				s = &m.slots[i];
		if (!s)
			continue;
		close(s->fd);
		s->fd = -1;
		s->pid = 0;
		/* What it held is gone with it; nobody else will decrement these. */
		atomic_store(&m.shm->workers[s->shm_slot].state, LB_WORKER_STOPPED);
		atomic_store(&m.shm->workers[s->shm_slot].active, 0);
		if (m.stopping)
			continue;
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
	if (m.stopping && all_exited())
		lb_loop_stop(m.loop);
}

static void stop_expired(struct lb_timer *t)
{
	for (unsigned int i = 0; i < m.n_slots; i++)
		if (m.slots[i].pid > 0) {
			lb_warn("worker %u (pid %d) still running after drain: killing it",
				m.slots[i].id, (int)m.slots[i].pid);
			kill(m.slots[i].pid, SIGKILL);
		}
}

static void begin_stop(int signo)
{
	if (m.stopping)
		return;
	m.stopping = true;
	lb_info("%s: stopping", strsignal(signo));
	/* No new connection may queue on a socket nobody will accept from. */
	close_listeners();
	for (unsigned int i = 0; i < m.n_slots; i++) {
		lb_loop_timer_cancel(m.loop, &m.slots[i].respawn);
		if (m.slots[i].pid > 0)
			kill(m.slots[i].pid, SIGTERM);
	}
	lb_loop_timer_set(m.loop, &m.stop_timer,
			  lb_loop_now(m.loop) + m.cfg->drain_timeout_ms + STOP_GRACE_MS);
	if (all_exited())
		lb_loop_stop(m.loop);
}

static void sig_event(struct lb_event *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap();
			break;
		case SIGTERM:
		case SIGINT:
			begin_stop(si.ssi_signo);
			break;
		case SIGHUP:
			lb_warn("SIGHUP: reloading is not supported by this version; "
				"restart lb to apply a new config");
			break;
		}
	}
}

static void tick(struct lb_timer *t)
{
	lb_shm_maglev_refresh(m.shm, m.cfg);
	lb_loop_timer_set(m.loop, t, lb_loop_now(m.loop) + MAGLEV_REFRESH_MS);
}

static int install_rules(void)
{
	char err[512];
	int rc;

	rc = lb_nft_apply(&m.rules.nft, err, sizeof(err));
	if (rc < 0) {
		lb_err("%s", err);
		return rc;
	}
	m.rules_installed = true;
	rc = lb_nft_route_apply(&m.rules.route, err, sizeof(err));
	if (rc < 0) {
		lb_err("%s", err);
		return rc;
	}
	m.routes_installed = true;
	return 0;
}

static void remove_rules(void)
{
	char err[512];

	if (m.routes_installed && lb_nft_route_remove(&m.rules.route, err, sizeof(err)) < 0)
		lb_err("%s", err);
	if (m.rules_installed && lb_nft_remove(m.rules.nft.table, err, sizeof(err)) < 0)
		lb_err("%s", err);
	m.routes_installed = m.rules_installed = false;
}

static int setup_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	m.sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m.sig.fd == -1)
		return -errno;
	m.sig.cb = sig_event;
	return lb_loop_add(m.loop, &m.sig, EPOLLIN);
}

int lb_master_run(const char *config_path, struct lb_config *cfg)
{
	long ncpu;
	int rc;

	m.config_path = config_path;
	m.cfg = cfg;
	m.status = 1;
	lb_log_init(cfg->log_level, "master");
	if (lb_preflight(cfg) < 0)
		goto out;
	lb_capacity_compute(&m.cap);
	m.n_slots = cfg->workers;
	if (!m.n_slots) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		m.n_slots = ncpu > 0 ? (unsigned int)ncpu : 1;
	}
	m.slots = calloc(m.n_slots, sizeof(*m.slots));
	m.loop = lb_loop_alloc();
	if (!m.slots || !m.loop || lb_rules_init(&m.rules, cfg) < 0) {
		lb_err("out of memory");
		goto out;
	}
	for (unsigned int i = 0; i < m.n_slots; i++) {
		m.slots[i].id = i;
		m.slots[i].shm_slot = -1;
		m.slots[i].fd = -1;
		m.slots[i].respawn.cb = respawn_due;
	}
	m.stop_timer.cb = stop_expired;
	rc = setup_signals();
	if (rc < 0) {
		lb_err("signals: %s", strerror(-rc));
		goto out;
	}
	m.shm = lb_shm_create(cfg, m.n_slots);
	if (!m.shm) {
		lb_err("shared memory: %s", strerror(errno));
		goto out;
	}
	m.tick.cb = tick;
	lb_loop_timer_set(m.loop, &m.tick, lb_loop_now(m.loop) + MAGLEV_REFRESH_MS);
	if (open_listeners() < 0)
		goto out;
	if (install_rules() < 0)
		goto out;
	m.health = lb_health_start(m.loop, cfg, m.shm);
	if (!m.health) {
		lb_err("health checks: %s", strerror(errno));
		goto out;
	}
	for (unsigned int i = 0; i < m.n_slots; i++) {
		rc = spawn(&m.slots[i]);
		if (rc < 0) {
			lb_err("worker %u: fork failed: %s", i, strerror(-rc));
			begin_stop(SIGTERM);
			break;
		}
	}
	if (!m.stopping)
		lb_info("ready: %u workers, %u connections each (open-file limit %lu), "
			"intercepting on port %u, table inet %s", m.n_slots, m.cap.conns,
			m.cap.nofile, cfg->intercept.port, cfg->intercept.table);
	rc = lb_loop_run(m.loop);
	if (rc < 0) {
		lb_err("event loop failed: %s", strerror(-rc));
		for (unsigned int i = 0; i < m.n_slots; i++)
			if (m.slots[i].pid > 0)
				kill(m.slots[i].pid, SIGKILL);
	}
	m.status = rc < 0 ? 1 : 0;
out:
	lb_health_stop(m.health);
	close_listeners();
	remove_rules();
	if (m.status == 0)
		lb_info("stopped; rules and routes removed");
	lb_rules_fini(&m.rules);
	lb_shm_destroy(m.shm);
	lb_loop_free(m.loop);
	free(m.slots);
	lb_config_free(cfg);
	return m.status;
}
