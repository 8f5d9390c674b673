// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The data plane. A connection is two sockets, a timer and two relay
 * halves, taken from a slab sized at start, so the accept path never
 * allocates. Readiness comes edge-triggered and is remembered in the
 * halves; the sockets are registered once and never modified.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/backend.h"
#include "lb/fastopen.h"
#include "lb/log.h"
#include "lb/loop.h"
#include "lb/reach.h"
#include "lb/relay.h"
#include "lb/sock.h"
#include "lb/udp.h"
#include "lb/worker.h"

#define SOCK_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define ACCEPT_RETRY_MS 100

#define QUEUE_RETRY_MS 20
/* How often the loop tells the master's watchdog it is alive. */
#define HEARTBEAT_MS 250
#define NO_BACKEND_LOG_MS 1000
#define PATH_LOG_MS 1000

enum conn_state {
	CONN_FREE,
	CONN_QUEUED,			/* every usable backend is at max_conns */
	CONN_WAITING,			/* fastopen: for the client's first bytes, briefly */
	CONN_CONNECTING,
	CONN_RELAYING,
};

/*
 * Every slot of the slab is one of these, so its size is lb's cost per
 * held connection (240 bytes): what can be found again (the VIP, from the
 * client socket's local address) is not kept, and what a connection needs
 * only until it relays shares its room with what it needs after.
 */
struct conn {
	struct lb_event cli, srv;
	struct lb_timer timer;
	struct lb_relay_half up;	/* client -> server */
	struct lb_relay_half down;	/* server -> client */
	const struct lb_service_conf *svc;
	struct lb_shm_backend *backend;	/* claimed (counted in its active) while set */
	union lb_sockaddr client;
	unsigned int backend_idx;	/* its index in svc->backends */
	uint8_t attempts, max_attempts;	/* connects tried, and allowed (retries + 1, at most 17) */
	uint8_t state;			/* enum conn_state */
	bool fastopen_waited;		/* fastopen: the wait for the client's first bytes is over */
	uint64_t started;
	const char *end_reason;		/* for the access log; NULL: close or reset */
	union {
		/* CONN_QUEUED and CONN_CONNECTING */
		struct {
			uint64_t queued_at;	/* loop ms when it began waiting for max_conns; 0: never */
			uint64_t connect_us;	/* when the current connect() began (lb_hist_now_us) */
			uint64_t attempt_started;	/* the same, loop ms */
			uint64_t tried;		/* backends (index < 64) whose connect failed */
			uint32_t syn_bytes;	/* fastopen: client bytes the connect under way sent in its SYN */
		} setup;
		/* CONN_RELAYING */
		struct {
			uint64_t last_cli, last_srv;	/* last byte read from or written to each side */
		} live;
	};
	struct conn *next;		/* free list, or the list freed after a batch */
};

struct worker {
	const struct lb_worker_args *args;
	const struct lb_config *cfg;
	struct lb_loop *loop;
	struct lb_event listeners[LB_WORKER_MAX_LISTENERS];
	size_t n_listen;
	bool paused;			/* not accepting: at capacity or out of fds */
	struct lb_timer retry_timer;
	struct lb_event master;
	struct lb_signals sig;
	struct conn *slab, *free, *dead;
	unsigned int fresh;		/* slab[fresh..capacity) never used yet */
	unsigned int n_active;
	struct lb_shm *shm;
	struct lb_shm_worker *self;
	struct lb_backend_picker *picker;
	struct lb_udp *udp;		/* its UDP flows; NULL without UDP listeners */
	uint32_t *ledger;		/* per slab slot: the backend claim it holds */
	uint32_t *client_ledger;	/* per slab slot: its client's entry in pool->clients */
	struct lb_reach_memo *reach;	/* when the gateway's path to each backend last failed */
	struct lb_relay_pool pipes;
	bool draining;
	struct lb_timer drain_timer;
	struct lb_timer beat;
	unsigned int accepts_since_beat;
	uint64_t last_accept_log;
	uint64_t last_path_log;
};

static struct worker w;

static void conn_pump(struct conn *c);
static void conn_connect(struct conn *c);
static void accept_pause(bool retry_later);

static size_t service_index(const struct conn *c)
{
	return c->svc - w.cfg->services;
}

static void publish_active(void)
{
	atomic_store_explicit(&w.self->active, w.n_active, memory_order_relaxed);
}

/* A client that waited for max_conns leaves the queue: with a backend, or reset. */
static void observe_queue(struct conn *c)
{
	lb_hist_observe(&w.shm->services[service_index(c)].queue, LB_HIST_QUEUE,
			(lb_loop_now(w.loop) - c->setup.queued_at) * 1000);
}

static void backend_put(struct conn *c)
{
	if (!c->backend)
		return;
	lb_backend_put(w.shm, &w.ledger[c - w.slab]);
	c->backend = NULL;
}

static void conn_release(struct conn *c)
{
	struct lb_shm_service *ss = &w.shm->services[service_index(c)];

	if (c->state == CONN_QUEUED)
		observe_queue(c);
	lb_hist_observe(&ss->duration, LB_HIST_DURATION,
			(lb_loop_now(w.loop) - c->started) * 1000);
	backend_put(c);
	lb_clients_put(w.shm->pool->clients, &w.client_ledger[c - w.slab]);
	lb_loop_timer_cancel(w.loop, &c->timer);
	lb_relay_release(&w.pipes, &c->up);
	lb_relay_release(&w.pipes, &c->down);
	c->cli.fd = -1;
	c->srv.fd = -1;
	c->state = CONN_FREE;
	c->next = w.dead;
	w.dead = c;
	w.n_active--;
	publish_active();
}

static void access_log(const struct conn *c, bool reset)
{
	char cli[LB_ADDR_STRLEN], vip[LB_ADDR_STRLEN] = "-", be[LB_ADDR_STRLEN] = "-";
	union lb_sockaddr local;
	socklen_t len = sizeof(local);

	if (c->backend)
		lb_addr_format(&c->backend->addr, be, sizeof(be));
	/* TPROXY keeps the VIP as the client socket's local address. */
	if (getsockname(c->cli.fd, &local.sa, &len) == 0) {
		lb_addr_unmap(&local);
		lb_addr_format(&local, vip, sizeof(vip));
	}
	lb_log_fields(LB_LOG_INFO, "event=access service=%s client=%s vip=%s backend=%s "
		      "bytes_in=%llu bytes_out=%llu duration_ms=%llu end=%s", c->svc->name,
		      lb_addr_format(&c->client, cli, sizeof(cli)), vip, be,
		      (unsigned long long)c->up.bytes, (unsigned long long)c->down.bytes,
		      (unsigned long long)(lb_loop_now(w.loop) - c->started),
		      c->end_reason ? c->end_reason : reset ? "reset" : "close");
}

/* Ends both sides: with RST when reset is set, else with an orderly close. */
static void conn_end(struct conn *c, bool reset)
{
	if (w.cfg->access_log)
		access_log(c, reset);
	if (reset) {
		lb_sock_close_rst(c->cli.fd);
		lb_sock_close_rst(c->srv.fd);
	} else {
		close(c->cli.fd);
		if (c->srv.fd >= 0)
			close(c->srv.fd);
	}
	conn_release(c);
}

/* Ends a connection lb gives up on (idle, drain timeout): see lb_sock_close_abandoned(). */
static void conn_abandon(struct conn *c, const char *reason)
{
	c->end_reason = reason;
	if (w.cfg->access_log)
		access_log(c, false);
	lb_sock_close_abandoned(c->cli.fd, lb_relay_pending(&c->down));
	lb_sock_close_abandoned(c->srv.fd, lb_relay_pending(&c->up));
	conn_release(c);
}

/* Cannot fail: the heap has room for every connection's timer (worker_setup). */
static void conn_timer_set(struct conn *c, uint64_t deadline)
{
	lb_loop_timer_set(w.loop, &c->timer, deadline);
}

/* Claims a backend for c with the service's scheduler (lb/backend.c). */
static enum lb_backend_result pick_backend(struct conn *c)
{
	uint32_t *held = &w.ledger[c - w.slab];
	enum lb_backend_result r;

	r = lb_backend_pick(w.picker, service_index(c), &c->client, c->setup.tried, held,
			    &c->backend_idx);
	if (r == LB_BACKEND_OK)
		c->backend = lb_backend_held(w.shm, *held);
	return r;
}

/* Logs at most once a second per service, over all workers. */
static void log_no_backend(struct conn *c, const char *what)
{
	struct lb_shm_service *ss = &w.shm->services[service_index(c)];
	uint64_t now = lb_loop_now(w.loop);
	uint64_t last = atomic_load_explicit(&ss->no_backend_log_ms, memory_order_relaxed);
	char buf[LB_ADDR_STRLEN];

	/* Signed: another worker's clock reading may be a little ahead of ours. */
	if ((int64_t)(now - last) < NO_BACKEND_LOG_MS ||
	    !atomic_compare_exchange_strong(&ss->no_backend_log_ms, &last, now))
		return;
	lb_warn("service %s: %s for client %s: resetting (no_backend %llu, queue_timeouts %llu)",
		c->svc->name, what, lb_addr_format(&c->client, buf, sizeof(buf)),
		(unsigned long long)atomic_load(&ss->no_backend),
		(unsigned long long)atomic_load(&ss->queue_timeouts));
}

/*
 * Passive health: fall consecutive connect failures take a backend down.
 * A failure of the gateway's own path says nothing about the backend: it
 * neither counts nor clears the count, and it is logged once a second.
 * Returns true for such a failure.
 */
static bool connect_failed(struct conn *c, int err, bool sync)
{
	struct lb_shm_backend *b = c->backend;
	char buf[LB_ADDR_STRLEN];
	uint64_t now = lb_loop_now(w.loop);

	if (!b)
		return false;
	if (c->backend_idx < 64)
		c->setup.tried |= 1ull << c->backend_idx;
	if (lb_reach_failed(w.reach, service_index(c), c->backend_idx, &b->addr, err, sync,
			    c->setup.attempt_started, now)) {
		if (now - w.last_path_log >= PATH_LOG_MS) {
			w.last_path_log = now;
			lb_warn("service %s: no path from this gateway to backend %s: %s; not held "
				"against the backend", c->svc->name,
				lb_addr_format(&b->addr, buf, sizeof(buf)), strerror(err));
		}
		backend_put(c);
		return true;
	}
	lb_backend_connect_failed(w.picker, service_index(c), c->backend_idx, err);
	backend_put(c);
	return false;
}

static uint64_t queued_until(const struct conn *c)
{
	return c->setup.queued_at + c->svc->queue_timeout_ms;
}

static void conn_queue(struct conn *c)
{
	uint64_t now = lb_loop_now(w.loop);

	if (c->state != CONN_QUEUED) {
		c->state = CONN_QUEUED;
		c->setup.queued_at = now;
		atomic_fetch_add_explicit(&w.shm->services[service_index(c)].queued, 1,
					  memory_order_relaxed);
	}
	/* Slots free in other workers too, so look again shortly rather than wait for one here. */
	conn_timer_set(c, now + QUEUE_RETRY_MS < queued_until(c) ? now + QUEUE_RETRY_MS
								  : queued_until(c));
}

/*
 * The gateway itself is short of fds, memory or local ports: the backend is
 * not to blame. Reset this client and pause accepting for a moment, as
 * accept() does on EMFILE, rather than mark a healthy backend down.
 */
static void gateway_short(struct conn *c, int err)
{
	if (lb_loop_now(w.loop) - w.last_accept_log >= 1000) {
		w.last_accept_log = lb_loop_now(w.loop);
		lb_warn("cannot open an upstream socket: %s; resetting the client and pausing "
			"accepts, held connections continue", strerror(err));
	}
	backend_put(c);
	c->end_reason = "local_error";
	conn_end(c, true);
	if (err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS)
		accept_pause(true);
}

/*
 * fastopen: the client's first bytes, peeked into buf for the SYN. A
 * client that sent nothing yet gets fastopen_wait_ms, once, to do so
 * (returns -EAGAIN, c waits); then the connect goes ahead without data,
 * as a protocol where the server speaks first needs. Returns the bytes
 * (0: none).
 */
static ssize_t fastopen_first(struct conn *c, char *buf, size_t len)
{
	ssize_t n;

	if (!c->svc->fastopen || !lb_fastopen_available())
		return 0;
	n = lb_fastopen_peek(c->cli.fd, buf, len);
	if (n == -EAGAIN && !c->fastopen_waited && c->svc->fastopen_wait_ms) {
		c->fastopen_waited = true;
		c->state = CONN_WAITING;
		conn_timer_set(c, lb_loop_now(w.loop) + c->svc->fastopen_wait_ms);
		return -EAGAIN;
	}
	return n > 0 ? n : 0;
}

/* Tries backends until one connect is under way; else resets the client. */
static void conn_connect(struct conn *c)
{
	struct lb_shm_service *ss = &w.shm->services[service_index(c)];
	char first[LB_FASTOPEN_PEEK];
	ssize_t first_len;
	size_t sent;
	bool local;

	first_len = fastopen_first(c, first, sizeof(first));
	if (first_len < 0)
		return;
	while (c->attempts < c->max_attempts) {
		enum lb_backend_result r = pick_backend(c);
		int fd;

		if (r == LB_BACKEND_FULL) {
			if (c->state == CONN_QUEUED && lb_loop_now(w.loop) >= queued_until(c)) {
				atomic_fetch_add_explicit(&ss->queue_timeouts, 1, memory_order_relaxed);
				log_no_backend(c, "every backend at max_conns for queue_timeout_ms");
				c->end_reason = "queue_timeout";
				conn_end(c, true);
				return;
			}
			conn_queue(c);
			return;
		}
		if (r != LB_BACKEND_OK)
			break;
		c->attempts++;
		c->setup.connect_us = lb_hist_now_us();
		c->setup.attempt_started = lb_loop_now(w.loop);
		fd = lb_fastopen_connect(&c->client, &c->backend->addr, c->svc->socket_buffer_bytes,
					 first,
					 lb_shm_fastopen_paused(c->backend, c->setup.attempt_started) ? 0 : first_len,
					 &sent, &local);
		c->setup.syn_bytes = sent;
		if (fd < 0 && local) {
			gateway_short(c, -fd);
			return;
		}
		/*
		 * No route from here: skipped at no cost, so it does not use up a
		 * retry (with retries 0 it would cost the client its only one).
		 * The tried mask, which ends the loop, covers the first 64 only.
		 */
		if (fd < 0) {
			if (connect_failed(c, -fd, true) && c->backend_idx < 64)
				c->attempts--;
			continue;
		}
		c->srv.fd = fd;
		if (lb_loop_add(w.loop, &c->srv, SOCK_EVENTS) < 0) {
			close(fd);
			c->srv.fd = -1;
			backend_put(c);
			continue;
		}
		if (c->svc->fastopen && !c->setup.syn_bytes)
			atomic_fetch_add_explicit(&c->backend->fastopen_plain, 1, memory_order_relaxed);
		if (c->state == CONN_QUEUED)
			observe_queue(c);
		c->state = CONN_CONNECTING;
		conn_timer_set(c, lb_loop_now(w.loop) + c->svc->connect_timeout_ms);
		return;
	}
	if (c->attempts == 0) {
		atomic_fetch_add_explicit(&ss->no_backend, 1, memory_order_relaxed);
		log_no_backend(c, "no usable backend");
		c->end_reason = "no_backend";
	} else {
		c->end_reason = "connect_failed";
	}
	conn_end(c, true);
}

static void conn_retry(struct conn *c, int err)
{
	close(c->srv.fd);
	c->srv.fd = -1;
	connect_failed(c, err, false);
	conn_connect(c);
}

static uint64_t idle_deadline(const struct conn *c)
{
	uint64_t cli = c->live.last_cli + c->svc->client_idle_timeout_ms;
	uint64_t srv = c->live.last_srv + c->svc->server_idle_timeout_ms;

	return cli < srv ? cli : srv;
}

static void conn_established(struct conn *c)
{
	lb_hist_observe(&c->backend->connect, LB_HIST_CONNECT,
			lb_hist_now_us() - c->setup.connect_us);
	lb_backend_connected(c->backend);
	/* From here on the setup fields are gone: live shares their room. */
	c->state = CONN_RELAYING;
	c->up.dst_ready = true;
	c->down.src_ready = true;
	c->live.last_cli = c->live.last_srv = lb_loop_now(w.loop);
	conn_timer_set(c, idle_deadline(c));
	conn_pump(c);
}

/*
 * A worker the scheduler left out for longer than connect_timeout_ms (a
 * box under load, a stop) comes back with its timers due and at most one
 * batch of events read: a connect that completed meanwhile still has its
 * readiness queued behind that batch. The socket, not the timer, says
 * whether the backend answered; blaming it for the worker's own stall
 * would count a failure, and three of them mark it down for every worker.
 * Returns true when the connect has an outcome, now handled.
 */
static void srv_event(struct lb_event *ev, uint32_t events);

static bool connect_done_late(struct conn *c)
{
	struct pollfd p = { .fd = c->srv.fd, .events = POLLOUT };
	uint32_t events = 0;

	if (poll(&p, 1, 0) != 1)
		return false;
	if (p.revents & POLLOUT)
		events |= EPOLLOUT;
	if (p.revents & POLLERR)
		events |= EPOLLERR;
	if (p.revents & POLLHUP)
		events |= EPOLLHUP;
	if (!events)
		return false;
	srv_event(&c->srv, events);
	return true;
}

static void conn_timeout(struct lb_timer *t)
{
	struct conn *c = lb_container_of(t, struct conn, timer);
	uint64_t deadline;

	switch (c->state) {
	case CONN_QUEUED:
	case CONN_WAITING:
		conn_connect(c);
		return;
	case CONN_CONNECTING:
		if (!connect_done_late(c))
			conn_retry(c, ETIMEDOUT);
		return;
	default:
		break;
	}
	/* Activity only stamps last_cli/last_srv; the deadline catches up here. */
	deadline = idle_deadline(c);
	if (deadline > lb_loop_now(w.loop)) {
		conn_timer_set(c, deadline);
		return;
	}
	conn_abandon(c, "idle");
}

static void conn_pump(struct conn *c)
{
	uint64_t up_in = c->up.in, up_out = c->up.bytes;
	uint64_t down_in = c->down.in, down_out = c->down.bytes;
	uint64_t now = lb_loop_now(w.loop);
	int rc;

	/* The last FIN goes out with close() in conn_end: no shutdown() first. */
	c->up.close_after_eof = c->down.shut;
	rc = lb_relay_move(&w.pipes, &c->up, c->cli.fd, c->srv.fd);
	if (rc == 0) {
		c->down.close_after_eof = c->up.shut;
		rc = lb_relay_move(&w.pipes, &c->down, c->srv.fd, c->cli.fd);
	}
	/* Counted as they go (bytes_in came from the client, bytes_out went to it). */
	if (c->backend && c->up.bytes != up_out)
		atomic_fetch_add_explicit(&c->backend->bytes_in, c->up.bytes - up_out,
					  memory_order_relaxed);
	if (c->backend && c->down.bytes != down_out)
		atomic_fetch_add_explicit(&c->backend->bytes_out, c->down.bytes - down_out,
					  memory_order_relaxed);
	if (rc < 0) {
		/* A reset (or any socket error) on one side resets the other. */
		conn_end(c, true);
		return;
	}
	if (c->up.shut && c->down.shut) {
		conn_end(c, false);
		return;
	}
	if (c->up.in != up_in || c->down.bytes != down_out)
		c->live.last_cli = now;
	if (c->down.in != down_in || c->up.bytes != up_out)
		c->live.last_srv = now;
}

static void cli_event(struct lb_event *ev, uint32_t events)
{
	struct conn *c = lb_container_of(ev, struct conn, cli);

	if (c->state == CONN_FREE)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->up.src_ready = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->up.src_hup = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->down.dst_ready = true;
	if (c->state != CONN_RELAYING) {
		/* The client gave up while we were still connecting. */
		if (events & EPOLLERR)
			conn_end(c, true);
		/* Its first bytes (or its FIN) came while it waited: connect. */
		else if (c->state == CONN_WAITING && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
			conn_connect(c);
		return;
	}
	conn_pump(c);
}

static void srv_event(struct lb_event *ev, uint32_t events)
{
	struct conn *c = lb_container_of(ev, struct conn, srv);

	if (c->state == CONN_FREE)
		return;
	/* Data and FIN may come with the connect's completion. */
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->down.src_hup = true;
	if (c->state == CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		/* A failed connect always reports ERR or HUP; plain OUT is success. */
		if ((events & (EPOLLERR | EPOLLHUP)) &&
		    getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			conn_retry(c, err ? err : ECONNREFUSED);
			return;
		}
		if (c->setup.syn_bytes) {
			if (lb_fastopen_settle(c->cli.fd, c->srv.fd, c->setup.syn_bytes, c->backend,
					       c->svc->name, lb_loop_now(w.loop)) < 0) {
				conn_end(c, true);
				return;
			}
			c->up.in += c->setup.syn_bytes;
			c->up.bytes += c->setup.syn_bytes;
			c->setup.syn_bytes = 0;
		}
		conn_established(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->down.src_ready = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->up.dst_ready = true;
	conn_pump(c);
}

/*
 * Counts the connection against its client's open ones (lb/clients.c),
 * over all workers. A client at the service's max_conns is refused: reset
 * at once, never queued, so a client holding connections cannot make
 * others wait. Returns false then.
 */
static bool clients_take(const struct lb_service_conf *svc, const union lb_sockaddr *peer,
			 uint32_t *held)
{
	struct lb_shm_service *ss = &w.shm->services[svc - w.cfg->services];
	unsigned int max = svc->clients.max_conns;
	union lb_sockaddr client = *peer;
	char buf[LB_ADDR_STRLEN];
	uint64_t now, last;

	lb_addr_unmap(&client);
	if (lb_clients_take(w.shm->pool->clients, ss->clients_key, &client, max, held) != -EDQUOT)
		return true;
	atomic_fetch_add_explicit(&ss->client_conns, 1, memory_order_relaxed);
	now = lb_loop_now(w.loop);
	last = atomic_load_explicit(&ss->client_conns_log_ms, memory_order_relaxed);
	if ((int64_t)(now - last) >= NO_BACKEND_LOG_MS &&
	    atomic_compare_exchange_strong(&ss->client_conns_log_ms, &last, now))
		lb_warn("service %s: client %s has %u connections open (clients.max_conns): "
			"resetting its new ones (client_conns %llu)", svc->name,
			lb_addr_format_ip(&client, buf, sizeof(buf)), max,
			(unsigned long long)atomic_load(&ss->client_conns));
	return false;
}

static void conn_start(int fd, const union lb_sockaddr *peer)
{
	union lb_sockaddr local;
	socklen_t len = sizeof(local);
	const struct lb_service_conf *svc;
	struct conn *c;
	char buf[LB_ADDR_STRLEN];

	/* TPROXY keeps the original destination as the socket's local address. */
	if (getsockname(fd, &local.sa, &len) == -1) {
		lb_sock_close_rst(fd);
		return;
	}
	lb_addr_unmap(&local);
	svc = lb_config_find_service(w.cfg, &local);
	if (!svc) {
		lb_debug("no service for %s", lb_addr_format(&local, buf, sizeof(buf)));
		lb_sock_close_rst(fd);
		return;
	}
	c = w.free ? w.free : &w.slab[w.fresh];
	/* The claim goes straight into the ledger: a worker dying after it still gives it back. */
	if (!clients_take(svc, peer, &w.client_ledger[c - w.slab])) {
		lb_sock_close_rst(fd);
		return;
	}
	if (w.free)
		w.free = c->next;
	else
		w.fresh++;
	w.n_active++;
	publish_active();
	atomic_fetch_add_explicit(&w.self->accepted, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w.shm->services[svc - w.cfg->services].total, 1,
				  memory_order_relaxed);
	memset(c, 0, sizeof(*c));
	c->cli = (struct lb_event){ .fd = fd, .cb = cli_event };
	c->srv = (struct lb_event){ .fd = -1, .cb = srv_event };
	c->timer.cb = conn_timeout;
	c->svc = svc;
	c->client = *peer;
	lb_addr_unmap(&c->client);
	c->started = lb_loop_now(w.loop);
	c->up.src_ready = true;
	c->down.dst_ready = true;
	c->max_attempts = svc->retries + 1;
	c->state = CONN_CONNECTING;
	/* TCP_NODELAY comes from the listener: accepted sockets inherit it. */
	lb_sock_set_buffers(fd, svc->socket_buffer_bytes);
	if (lb_loop_add(w.loop, &c->cli, SOCK_EVENTS) < 0) {
		conn_end(c, true);
		return;
	}
	conn_connect(c);
}

static void accept_pause(bool retry_later)
{
	w.paused = true;
	if (retry_later)
		lb_loop_timer_set(w.loop, &w.retry_timer, lb_loop_now(w.loop) + ACCEPT_RETRY_MS);
}

/* Accepts until every listener is empty or this worker is full. */
static void accept_all(void)
{
	for (size_t i = 0; i < w.n_listen; i++) {
		int lfd = w.listeners[i].fd;

		for (;;) {
			union lb_sockaddr peer;
			socklen_t len = sizeof(peer);
			int fd;

			if (w.draining || w.paused)
				return;
			/*
			 * Leave the connection in the kernel queue rather than drop it.
			 * Slots freed in this batch come back only after it, so a free
			 * slot must exist, not just a count below capacity.
			 */
			if (w.n_active >= w.args->capacity || (!w.free && w.fresh >= w.args->capacity)) {
				accept_pause(false);
				return;
			}
			fd = accept4(lfd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd >= 0) {
				conn_start(fd, &peer);
				/*
				 * A burst (every client reconnecting at once) keeps this
				 * loop going for seconds: that is progress, not a hang.
				 */
				if (++w.accepts_since_beat == 256) {
					w.accepts_since_beat = 0;
					atomic_store_explicit(&w.self->heartbeat_ms, lb_clock_ms(),
							      memory_order_relaxed);
				}
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (lb_loop_now(w.loop) - w.last_accept_log >= 1000) {
				w.last_accept_log = lb_loop_now(w.loop);
				lb_warn("accept: %s; pausing accepts, held connections continue",
					strerror(errno));
			}
			accept_pause(true);
			return;
		}
	}
}

static void listener_event(struct lb_event *ev, uint32_t events)
{
	if (!w.paused)
		accept_all();
}

static void accept_retry(struct lb_timer *t)
{
	w.paused = false;
	accept_all();
}

static void stop_accepting(void)
{
	/* Out of epoll first: the master and the next generation keep the sockets open. */
	for (size_t i = 0; i < w.n_listen; i++) {
		lb_loop_del(w.loop, &w.listeners[i]);
		close(w.listeners[i].fd);
	}
	w.n_listen = 0;
	lb_loop_timer_cancel(w.loop, &w.retry_timer);
}

static void heartbeat(struct lb_timer *t)
{
	atomic_store_explicit(&w.self->heartbeat_ms, lb_clock_ms(), memory_order_relaxed);
	lb_loop_timer_set(w.loop, t, lb_loop_now(w.loop) + HEARTBEAT_MS);
}

static void drain_expired(struct lb_timer *t)
{
	lb_info("drain timeout: closing %u connections", w.n_active);
	for (unsigned int i = 0; i < w.fresh; i++) {
		struct conn *c = &w.slab[i];

		if (c->state == CONN_FREE)
			continue;
		conn_abandon(c, "drain");
	}
	if (lb_udp_active(w.udp))
		lb_info("drain timeout: ending %u udp flows", lb_udp_active(w.udp));
	lb_udp_end_all(w.udp, "drain");
	lb_loop_stop(w.loop);
}

static void on_signal(int signo)
{
	if (signo != SIGTERM || w.draining)
		return;
	/*
	 * Take what already queued: on a reload this socket may be closing
	 * (another port, fewer workers) and its queue would be reset.
	 */
	accept_all();
	w.draining = true;
	atomic_store(&w.self->state, LB_WORKER_DRAINING);
	stop_accepting();
	/* Its flows' own sockets keep their datagrams coming here until they end. */
	if (w.udp)
		lb_udp_stop_accepting(w.udp);
	lb_info("stopping: draining %u connections and %u udp flows (at most %u ms)", w.n_active,
		lb_udp_active(w.udp), w.cfg->drain_timeout_ms);
	lb_loop_timer_set(w.loop, &w.drain_timer, lb_loop_now(w.loop) + w.cfg->drain_timeout_ms);
}

static void master_event(struct lb_event *ev, uint32_t events)
{
	char buf[256];
	ssize_t n = read(ev->fd, buf, sizeof(buf));

	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		lb_err("master is gone: exiting");
		w.draining = true;
		lb_loop_stop(w.loop);
	}
}

static void after_batch(void *arg)
{
	for (;;) {
		/* Slots freed in this batch may still have been named by its events. */
		while (w.dead) {
			struct conn *c = w.dead;

			w.dead = c->next;
			c->next = w.free;
			w.free = c;
		}
		if (!w.paused || w.retry_timer.slot || w.n_active >= w.args->capacity)
			break;
		w.paused = false;
		/*
		 * Connections that end inside this accept loop (reset at once)
		 * free their slots only here: go round again rather than wait
		 * for an event that a queue already drained will not send.
		 */
		accept_all();
		if (!w.dead)
			break;
	}
	lb_udp_after_batch(w.udp);
	if (w.draining && w.n_active == 0 && lb_udp_active(w.udp) == 0)
		lb_loop_stop(w.loop);
}

static int worker_setup(const struct lb_worker_args *args)
{
	int rc;

	w.args = args;
	w.cfg = args->cfg;
	w.loop = lb_loop_alloc();
	if (!w.loop)
		return -errno;
	lb_loop_set_after(w.loop, after_batch, NULL);
	w.retry_timer.cb = accept_retry;
	w.drain_timer.cb = drain_expired;
	w.beat.cb = heartbeat;

	w.shm = args->shm;
	w.self = &w.shm->workers[args->slot];
	w.ledger = args->ledger;
	w.client_ledger = args->client_ledger;
	/* One timer per connection plus the worker's own: arming never allocates. */
	rc = lb_loop_timer_reserve(w.loop, args->capacity + args->flows + 8);
	if (rc < 0)
		return rc;
	w.slab = calloc(args->capacity, sizeof(*w.slab));
	w.picker = lb_backend_picker_alloc(w.cfg, w.shm, args->id,
					   (uint64_t)getpid() << 32 | (lb_clock_ms() & 0xffffffffu));
	if (!w.slab || !w.picker)
		return -ENOMEM;
	/* Slots are handed out in order and never touched before: idle capacity stays unmapped. */
	w.fresh = 0;
	w.reach = lb_reach_memo_alloc(w.cfg);
	if (!w.reach)
		return -ENOMEM;
	rc = lb_relay_pool_init(&w.pipes, args->pipes, args->pipes / 4);
	if (rc < 0)
		return rc;

	rc = lb_loop_add_signals(w.loop, &w.sig, (const int[]){ SIGTERM, 0 }, on_signal);
	if (rc < 0)
		return rc;
	w.master = (struct lb_event){ .fd = args->master_fd, .cb = master_event };
	rc = lb_loop_add(w.loop, &w.master, EPOLLIN);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < args->n_listen; i++) {
		w.listeners[i] = (struct lb_event){ .fd = args->listen_fds[i], .cb = listener_event };
		rc = lb_loop_add(w.loop, &w.listeners[i], EPOLLIN | EPOLLET);
		if (rc < 0)
			return rc;
	}
	w.n_listen = args->n_listen;
	if (args->n_udp) {
		struct lb_udp_args ua = {
			.cfg = w.cfg,
			.shm = w.shm,
			.loop = w.loop,
			.picker = w.picker,
			.ledger = args->ledger + args->capacity,
			.capacity = args->flows,
			.owner = (uint16_t)args->slot,
			.gauge = &w.self->udp_flows,
			.listen_fds = args->udp_fds,
			.n_listen = args->n_udp,
		};

		w.udp = lb_udp_alloc(&ua);
		if (!w.udp)
			return -errno;
	}
	return 0;
}

int lb_worker_run(const struct lb_worker_args *args)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = worker_setup(args);
	if (rc < 0) {
		lb_err("setup failed: %s", strerror(-rc));
		return 1;
	}
	atomic_store(&w.self->state, LB_WORKER_RUNNING);
	heartbeat(&w.beat);
	lb_info("started: capacity %u connections, %u udp flows, %u pipes", args->capacity,
		args->flows, args->pipes);
	/* Connections may have queued while no worker was accepting. */
	accept_all();
	rc = lb_loop_run(w.loop);
	if (rc < 0) {
		lb_err("event loop failed: %s", strerror(-rc));
		return 1;
	}
	return 0;
}
