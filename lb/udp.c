// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The UDP data plane of one worker (see udp.h). Flows come from a slab
 * sized at start and datagrams move through buffers allocated once, so
 * nothing is allocated per flow or per datagram. Reads and writes go in
 * batches (recvmmsg/sendmmsg); sockets are level-triggered and a busy
 * one gives way after a few batches, so one flow cannot starve the rest.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/hash.h"
#include "lb/keyset.h"
#include "lb/log.h"
#include "lb/quic_route.h"
#include "lb/sock.h"
#include "lb/udp.h"

#define BATCH 32
/* A GSO send: at most this many datagrams (the kernel's floor for UDP_MAX_SEGMENTS), */
#define GSO_SEGS 64
/* and bytes, below the largest IPv4 UDP payload (65,507). */
#define GSO_BYTES 65000
/* Fragments are reassembled before tproxy sees them: a datagram may be this long. */
#define DGRAM_MAX 65536
/* Batches a socket may read per event before the others get their turn. */
#define ROUNDS 4
#define DROP_LOG_MS 1000
/*
 * A flow's counts reach the shared counters every FLUSH_MS (or every
 * FLUSH_DGRAMS datagrams, or when it ends), not per batch: workers adding
 * to one service's counters at every datagram would bounce its cache
 * lines between CPUs.
 */
#define FLUSH_MS 200
#define FLUSH_DGRAMS 256

struct lb_udp;

struct flow {
	struct lb_event cli;		/* reply socket: bound to the VIP, connected to the client */
	struct lb_event srv;		/* upstream: bound to the client's address, connected to the backend */
	struct lb_timer timer;
	struct lb_udp *u;
	size_t si;			/* its service */
	struct lb_shm_backend *backend;	/* claimed while the flow lives */
	unsigned int backend_idx;
	union lb_sockaddr client, vip;
	uint64_t started, last;		/* ms: opened, last datagram either way */
	uint64_t dgrams_in, dgrams_out, bytes_in, bytes_out;
	/* Not yet in the shared counters; the flow is on the dirty list while any is. */
	uint64_t pend_din, pend_dout, pend_bin, pend_bout;
	bool dirty;
	/* Its sockets' first read is checked for senders other than its peers (see cli_event). */
	bool cli_checked, srv_checked;
	/* Whether sends on each socket may be segmented by the kernel (see batch_send). */
	bool cli_gso, srv_gso;
	uint64_t key;			/* its (client, backend) pair in the shared keyset */
	uint32_t key_at;
	bool keyed, live;
	bool quic;			/* its service routes by QUIC connection IDs ... */
	uint8_t route;			/* ... and this is how it was routed (enum lb_quic_how) */
	/* QUIC: the CID (table key) it keeps alive in the shared table, and when it last did (s). */
	uint64_t cid_key;
	uint32_t cid_stamp;
	struct flow *hnext;		/* chain in the (client, VIP) table */
	struct flow *next;		/* free list, or those freed after the batch */
	struct flow *dnext;		/* dirty list */
};

struct udp_listener {
	struct lb_event ev;
	struct lb_udp *u;
};

struct lb_udp {
	struct lb_udp_args a;
	struct flow *slab, *free, *dead, *dirty;
	struct lb_timer flush;
	struct lb_quic_router *quic;
	unsigned int fresh, n_active;
	struct flow **buckets;
	size_t mask;
	struct udp_listener listeners[2];
	size_t n_listen;
	/* One batch in flight, reused by every read and write. */
	char *bufs;			/* BATCH x DGRAM_MAX */
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	union lb_sockaddr names[BATCH];
	char ctrl[BATCH][CMSG_SPACE(sizeof(struct sockaddr_in6))];
	/* The same batch as runs of equal datagrams, one send each (batch_send). */
	struct mmsghdr runs[BATCH];
	int run_len[BATCH];
	char run_ctrl[BATCH][CMSG_SPACE(sizeof(uint16_t))];
};

static uint64_t addr_hash(uint64_t h, const union lb_sockaddr *a)
{
	const unsigned char *p;
	size_t len;

	if (a->sa.sa_family == AF_INET6) {
		p = a->in6.sin6_addr.s6_addr;
		len = sizeof(a->in6.sin6_addr);
	} else {
		p = (const unsigned char *)&a->in.sin_addr;
		len = sizeof(a->in.sin_addr);
	}
	h = lb_hash_fnv1a(h, p, len);
	return lb_hash_mix64(h ^ ((uint64_t)lb_addr_port(a) << 16 | (uint64_t)a->sa.sa_family));
}

uint64_t lb_udp_pair_key(const union lb_sockaddr *client, const union lb_sockaddr *backend)
{
	return addr_hash(addr_hash(LB_HASH_FNV_BASIS, client), backend);
}

static struct flow **bucket(struct lb_udp *u, const union lb_sockaddr *client,
			    const union lb_sockaddr *vip)
{
	return &u->buckets[addr_hash(addr_hash(0x84222325cbf29ce4ull, client), vip) & u->mask];
}

static struct flow *flow_find(struct lb_udp *u, const union lb_sockaddr *client,
			      const union lb_sockaddr *vip)
{
	for (struct flow *f = *bucket(u, client, vip); f; f = f->hnext)
		if (lb_addr_equal(&f->client, client) && lb_addr_equal(&f->vip, vip))
			return f;
	return NULL;
}

static struct lb_shm_service *service_of(const struct flow *f)
{
	return &f->u->a.shm->services[f->si];
}

/* Moves what the flow counted since the last flush to the shared counters. */
static void flow_flush(struct flow *f)
{
	struct lb_shm_service *ss = service_of(f);
	struct lb_shm_backend *b = f->backend;

	if (f->pend_din) {
		atomic_fetch_add_explicit(&ss->udp_datagrams_in, f->pend_din, memory_order_relaxed);
		atomic_fetch_add_explicit(&ss->udp_bytes_in, f->pend_bin, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->datagrams_in, f->pend_din, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->bytes_in, f->pend_bin, memory_order_relaxed);
	}
	if (f->pend_dout) {
		atomic_fetch_add_explicit(&ss->udp_datagrams_out, f->pend_dout, memory_order_relaxed);
		atomic_fetch_add_explicit(&ss->udp_bytes_out, f->pend_bout, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->datagrams_out, f->pend_dout, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->bytes_out, f->pend_bout, memory_order_relaxed);
	}
	f->pend_din = f->pend_dout = f->pend_bin = f->pend_bout = 0;
	/* A live flow that moved data keeps its CID's route, once a second at most. */
	if (f->cid_key && f->live) {
		uint32_t now = (uint32_t)(lb_loop_now(f->u->a.loop) / 1000);

		if (now != f->cid_stamp && lb_quic_record(f->u->quic, f->si, f->cid_key,
							  f->u->a.ledger[f - f->u->slab], now) == 0)
			f->cid_stamp = now;
	}
}

/* Counts what the flow moved; the shared counters get it at the next flush. */
static void flow_count(struct flow *f, uint64_t din, uint64_t bin, uint64_t dout, uint64_t bout)
{
	struct lb_udp *u = f->u;

	f->dgrams_in += din;
	f->bytes_in += bin;
	f->dgrams_out += dout;
	f->bytes_out += bout;
	f->pend_din += din;
	f->pend_bin += bin;
	f->pend_dout += dout;
	f->pend_bout += bout;
	if (f->pend_din + f->pend_dout >= FLUSH_DGRAMS) {
		flow_flush(f);
		return;
	}
	if (!f->dirty) {
		f->dirty = true;
		f->dnext = u->dirty;
		u->dirty = f;
		if (!u->flush.slot)
			lb_loop_timer_set(u->a.loop, &u->flush, lb_loop_now(u->a.loop) + FLUSH_MS);
	}
}

static void flush_due(struct lb_timer *t)
{
	struct lb_udp *u = lb_container_of(t, struct lb_udp, flush);

	while (u->dirty) {
		struct flow *f = u->dirty;

		u->dirty = f->dnext;
		f->dirty = false;
		if (f->live)
			flow_flush(f);
	}
}

/* Counts a dropped datagram; logs at most once a second per service, over all workers. */
static void drop(struct lb_udp *u, size_t si, _Atomic uint64_t *counter, const char *why,
		 const union lb_sockaddr *client)
{
	struct lb_shm_service *ss = &u->a.shm->services[si];
	uint64_t now = lb_loop_now(u->a.loop);
	uint64_t last = atomic_load_explicit(&ss->no_backend_log_ms, memory_order_relaxed);
	char buf[LB_ADDR_STRLEN], quic[48] = "";

	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	if ((int64_t)(now - last) < DROP_LOG_MS ||
	    !atomic_compare_exchange_strong(&ss->no_backend_log_ms, &last, now))
		return;
	if (lb_quic_enabled(u->quic, si))
		snprintf(quic, sizeof(quic), ", quic_dropped %llu",
			 (unsigned long long)atomic_load(&ss->quic_dropped));
	lb_warn("service %s: udp: %s for client %s: dropping (no_backend %llu, flows_full %llu, "
		"send_errors %llu%s)", u->a.cfg->services[si].name, why,
		lb_addr_format(client, buf, sizeof(buf)),
		(unsigned long long)atomic_load(&ss->udp_drop_no_backend),
		(unsigned long long)atomic_load(&ss->udp_drop_full),
		(unsigned long long)atomic_load(&ss->udp_drop_send), quic);
}

static void access_log(const struct flow *f, const char *end)
{
	char cli[LB_ADDR_STRLEN], vip[LB_ADDR_STRLEN], be[LB_ADDR_STRLEN];

	lb_log_fields(LB_LOG_INFO, "event=access proto=udp service=%s client=%s vip=%s backend=%s "
		      "datagrams_in=%llu datagrams_out=%llu bytes_in=%llu bytes_out=%llu "
		      "duration_ms=%llu end=%s%s%s", f->u->a.cfg->services[f->si].name,
		      lb_addr_format(&f->client, cli, sizeof(cli)),
		      lb_addr_format(&f->vip, vip, sizeof(vip)),
		      lb_addr_format(&f->backend->addr, be, sizeof(be)),
		      (unsigned long long)f->dgrams_in, (unsigned long long)f->dgrams_out,
		      (unsigned long long)f->bytes_in, (unsigned long long)f->bytes_out,
		      (unsigned long long)(lb_loop_now(f->u->a.loop) - f->started), end,
		      f->quic ? " route=" : "", f->quic ? lb_quic_how_name(f->route) : "");
}

/* Ends a flow: its sockets, claim and key go now, its slot after the batch. */
static void flow_end(struct flow *f, const char *end)
{
	struct lb_udp *u = f->u;
	struct flow **p;

	if (!f->live)
		return;
	if (u->a.cfg->access_log)
		access_log(f, end);
	/* Not live first: its CID's route is left to expire, not kept alive by this last flush. */
	f->live = false;
	flow_flush(f);
	close(f->cli.fd);
	close(f->srv.fd);
	lb_loop_timer_cancel(u->a.loop, &f->timer);
	for (p = bucket(u, &f->client, &f->vip); *p; p = &(*p)->hnext)
		if (*p == f) {
			*p = f->hnext;
			break;
		}
	if (f->keyed)
		lb_keyset_remove(u->a.shm->pool->keyset, f->key_at, f->key, u->a.owner);
	lb_backend_put(u->a.shm, &u->a.ledger[f - u->slab]);
	atomic_fetch_sub_explicit(&service_of(f)->udp_flows, 1, memory_order_relaxed);
	u->n_active--;
	atomic_store_explicit(u->a.gauge, u->n_active, memory_order_relaxed);
	f->next = u->dead;
	u->dead = f;
}

/* The backend answered with a port unreachable: a failed connect for passive health. */
static void flow_refused(struct flow *f, int err)
{
	lb_backend_connect_failed(f->u->a.picker, f->si, f->backend_idx, err);
	flow_end(f, "unreachable");
}

/*
 * A datagram socket bound to local and connected to peer, transparent so
 * that local may be an address of no interface here. Returns the fd or
 * -errno.
 */
static int flow_socket(const union lb_sockaddr *local, const union lb_sockaddr *peer)
{
	int family = local->sa.sa_family, one = 1, fd, rc;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd == -1)
		return -errno;
	rc = lb_sock_transparent(fd, family);
	/* Every flow's reply socket shares its VIP:port; the kernel tells them by peer. */
	if (rc == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		rc = -errno;
	if (rc == 0 && family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		rc = -errno;
	if (rc == 0 && bind(fd, &local->sa, lb_addr_len(local)) == -1)
		rc = -errno;
	if (rc == 0 && connect(fd, &peer->sa, lb_addr_len(peer)) == -1)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * Claims the backend a QUIC connection ID named (qr). Its (client,
 * backend) pair may be held by a flow through another VIP: the connection
 * must reach this backend all the same, so it then leaves from another
 * port (*any_port), as after a NAT rebinding.
 */
static void flow_claim(struct flow *f, const struct lb_quic_route *qr, bool *any_port)
{
	struct lb_udp *u = f->u;
	uint32_t *held = &u->a.ledger[f - u->slab];
	int rc;

	lb_backend_claim(u->a.shm, f->si, qr->backend, held);
	f->backend_idx = qr->backend;
	f->backend = lb_backend_held(u->a.shm, *held);
	f->key = lb_udp_pair_key(&f->client, &f->backend->addr);
	rc = lb_keyset_insert(u->a.shm->pool->keyset, f->key, u->a.owner, &f->key_at);
	f->keyed = rc == 0;
	*any_port = rc == -EEXIST;
}

/*
 * Claims a backend for f whose (client, backend) pair no other flow holds:
 * the one a QUIC connection ID names (qr), else the scheduler's.
 */
static enum lb_backend_result flow_pick(struct flow *f, const struct lb_quic_route *qr,
					bool *any_port)
{
	struct lb_udp *u = f->u;
	uint32_t *held = &u->a.ledger[f - u->slab];
	uint64_t exclude = 0;

	if (qr && (qr->how == LB_QUIC_BY_CID || qr->how == LB_QUIC_BY_LEARNED)) {
		flow_claim(f, qr, any_port);
		return LB_BACKEND_OK;
	}
	for (;;) {
		enum lb_backend_result r = lb_backend_pick(u->a.picker, f->si, &f->client, exclude,
							   held, &f->backend_idx);
		int rc;

		if (r != LB_BACKEND_OK)
			return r;
		f->backend = lb_backend_held(u->a.shm, *held);
		f->key = lb_udp_pair_key(&f->client, &f->backend->addr);
		rc = lb_keyset_insert(u->a.shm->pool->keyset, f->key, u->a.owner, &f->key_at);
		f->keyed = rc == 0;
		/* A full window cannot prove the pair unique: better one flow at risk than none. */
		if (rc == 0 || rc == -ENOSPC)
			return LB_BACKEND_OK;
		/*
		 * The same client ip:port is in a flow to this backend already
		 * (through another VIP): two upstream sockets with one 4-tuple
		 * would split its replies. Another backend, if there is one.
		 */
		lb_backend_put(u->a.shm, held);
		f->backend = NULL;
		if (f->backend_idx >= 64 || (exclude >> f->backend_idx) & 1)
			return LB_BACKEND_NONE;
		exclude |= 1ull << f->backend_idx;
	}
}

/* Seconds on the clock the shared CID table's entries expire by. */
static uint32_t now_s(const struct lb_udp *u)
{
	return (uint32_t)(lb_loop_now(u->a.loop) / 1000);
}

/* Keeps key routing to f's backend, as the CID f keeps alive; false when the table is full. */
static bool flow_keep_cid(struct flow *f, uint64_t key)
{
	struct lb_udp *u = f->u;
	uint32_t now = now_s(u);

	if (lb_quic_record(u->quic, f->si, key, u->a.ledger[f - u->slab], now) < 0) {
		atomic_fetch_add_explicit(&service_of(f)->quic_learn_full, 1, memory_order_relaxed);
		return false;
	}
	f->cid_key = key;
	f->cid_stamp = now;
	return true;
}

/*
 * A QUIC flow is open: counts how it was routed; a scheduled one records
 * its DCID for the backend chosen (the client's retransmissions from
 * another port follow it), a learned one keeps its CID alive.
 */
static void flow_quic_opened(struct flow *f, const struct lb_quic_route *qr)
{
	f->quic = true;
	f->route = (uint8_t)qr->how;
	lb_quic_count(f->u->a.shm, f->si, qr->how);
	if (qr->key && qr->how != LB_QUIC_BY_CID)
		flow_keep_cid(f, qr->key);
}

/* A datagram from f's backend: the SCID of a long header is a CID of its own to learn. */
static void flow_learn(struct flow *f, const uint8_t *pkt, size_t len)
{
	uint64_t key = lb_quic_scid_key(f->u->quic, f->si, pkt, len);

	if (!key || key == f->cid_key)
		return;
	if (flow_keep_cid(f, key))
		atomic_fetch_add_explicit(&service_of(f)->quic_learned, 1, memory_order_relaxed);
}

static void flow_timeout(struct lb_timer *t);
static void cli_event(struct lb_event *ev, uint32_t events);
static void srv_event(struct lb_event *ev, uint32_t events);

/*
 * Opens a flow for client's datagram to vip of service si, to the backend
 * qr (a QUIC service's routing, else NULL) says; or returns NULL (counted).
 */
static struct flow *flow_open(struct lb_udp *u, size_t si, const union lb_sockaddr *client,
			      const union lb_sockaddr *vip, const struct lb_quic_route *qr)
{
	struct lb_shm_service *ss = &u->a.shm->services[si];
	const struct lb_service_conf *svc = &u->a.cfg->services[si];
	union lb_sockaddr src = *client;
	struct flow *f, **b, *next, *dnext;
	bool was_dirty, any_port = false;
	int fd;

	if (u->n_active >= u->a.capacity || (!u->free && u->fresh >= u->a.capacity)) {
		drop(u, si, &ss->udp_drop_full, "flow table full", client);
		return NULL;
	}
	f = u->free ? u->free : &u->slab[u->fresh];
	next = f->next;
	/* A slot still on the dirty list stays there: flush_due unlinks it. */
	was_dirty = f->dirty;
	dnext = f->dnext;
	/* .next kept: should the open fail, the slot stays the free list's head. */
	*f = (struct flow){ .u = u, .si = si, .next = next, .client = *client, .vip = *vip,
			    .cli = { .fd = -1, .cb = cli_event }, .srv = { .fd = -1, .cb = srv_event },
			    .timer = { .cb = flow_timeout }, .dirty = was_dirty, .dnext = dnext,
			    .cli_gso = true, .srv_gso = true };
	if (flow_pick(f, qr, &any_port) != LB_BACKEND_OK) {
		drop(u, si, &ss->udp_drop_no_backend, "no usable backend", client);
		return NULL;
	}
	if (any_port)
		lb_addr_set_port(&src, 0);
	fd = flow_socket(&src, &f->backend->addr);
	if (fd == -EADDRINUSE) {
		/* Its port is taken here by a socket that does not share: the address alone. */
		lb_addr_set_port(&src, 0);
		fd = flow_socket(&src, &f->backend->addr);
	}
	if (fd >= 0) {
		f->srv.fd = fd;
		fd = flow_socket(vip, client);
		f->cli.fd = fd;
	}
	if (fd < 0 || lb_loop_add(u->a.loop, &f->srv, EPOLLIN) < 0 ||
	    lb_loop_add(u->a.loop, &f->cli, EPOLLIN) < 0) {
		char buf[LB_ADDR_STRLEN];

		lb_debug("service %s: udp: cannot open a flow for %s: %s", svc->name,
			 lb_addr_format(client, buf, sizeof(buf)), strerror(fd < 0 ? -fd : errno));
		if (f->srv.fd >= 0)
			close(f->srv.fd);
		if (f->cli.fd >= 0)
			close(f->cli.fd);
		if (f->keyed)
			lb_keyset_remove(u->a.shm->pool->keyset, f->key_at, f->key, u->a.owner);
		lb_backend_put(u->a.shm, &u->a.ledger[f - u->slab]);
		drop(u, si, &ss->udp_drop_send, "no socket for a new flow", client);
		return NULL;
	}
	if (f == u->free)
		u->free = next;
	else
		u->fresh++;
	f->live = true;
	f->started = f->last = lb_loop_now(u->a.loop);
	b = bucket(u, client, vip);
	f->hnext = *b;
	*b = f;
	u->n_active++;
	atomic_store_explicit(u->a.gauge, u->n_active, memory_order_relaxed);
	atomic_fetch_add_explicit(&ss->udp_flows, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ss->udp_flows_total, 1, memory_order_relaxed);
	lb_loop_timer_set(u->a.loop, &f->timer, f->last + svc->udp_idle_timeout_ms);
	if (qr)
		flow_quic_opened(f, qr);
	return f;
}

static void flow_timeout(struct lb_timer *t)
{
	struct flow *f = lb_container_of(t, struct flow, timer);
	uint64_t deadline = f->last + f->u->a.cfg->services[f->si].udp_idle_timeout_ms;

	/* Datagrams only stamp f->last; the deadline catches up here. */
	if (deadline > lb_loop_now(f->u->a.loop)) {
		lb_loop_timer_set(f->u->a.loop, t, deadline);
		return;
	}
	flow_end(f, "idle");
}

/*
 * Reads up to BATCH datagrams from fd into the batch buffers, with their
 * sources when names (and, with ctrl, their control messages). Returns how
 * many, or -errno (-EAGAIN: none).
 */
static int batch_recv(struct lb_udp *u, int fd, bool names, bool ctrl)
{
	int n;

	for (int i = 0; i < BATCH; i++) {
		u->iov[i] = (struct iovec){ .iov_base = u->bufs + (size_t)i * DGRAM_MAX,
					    .iov_len = DGRAM_MAX };
		u->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = names ? &u->names[i] : NULL,
			.msg_namelen = names ? sizeof(u->names[i]) : 0,
			.msg_iov = &u->iov[i], .msg_iovlen = 1,
			.msg_control = ctrl ? u->ctrl[i] : NULL,
			.msg_controllen = ctrl ? sizeof(u->ctrl[i]) : 0,
		};
	}
	n = recvmmsg(fd, u->msgs, BATCH, MSG_DONTWAIT, NULL);
	return n == -1 ? -errno : n;
}

/* Sends msgs[from, n) one message each; returns the index reached, or -errno at from. */
static int send_each(struct lb_udp *u, int fd, int from, int n)
{
	int sent = from;

	while (sent < n) {
		int m = sendmmsg(fd, u->msgs + sent, n - sent, MSG_DONTWAIT);

		if (m == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS)
				return sent;
			return sent > from ? sent : -errno;
		}
		sent += m;
	}
	return sent;
}

/*
 * Groups msgs[0, n) into runs the kernel can segment (UDP GSO): datagrams
 * of one size, and at most one shorter at the end, up to GSO_SEGS of them
 * and GSO_BYTES in all. Their iovecs are consecutive already (batch_keep),
 * so a run is one message of several iovecs and a UDP_SEGMENT size. Returns
 * the number of runs.
 */
static int make_runs(struct lb_udp *u, int n)
{
	int runs = 0;

	for (int i = 0; i < n;) {
		size_t size = u->iov[i].iov_len, total = size;
		int j = i + 1;
		struct msghdr *h = &u->runs[runs].msg_hdr;

		while (size && j < n && j - i < GSO_SEGS && u->iov[j].iov_len <= size &&
		       total + u->iov[j].iov_len <= GSO_BYTES) {
			total += u->iov[j].iov_len;
			if (u->iov[j++].iov_len < size)
				break;	/* the short one ends the run */
		}
		*h = (struct msghdr){ .msg_iov = &u->iov[i], .msg_iovlen = (size_t)(j - i) };
		if (j - i > 1) {
			struct cmsghdr *c = (struct cmsghdr *)u->run_ctrl[runs];
			uint16_t seg = (uint16_t)size;

			h->msg_control = c;
			h->msg_controllen = CMSG_SPACE(sizeof(seg));
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		}
		u->run_len[runs++] = j - i;
		i = j;
	}
	return runs;
}

/*
 * Sends the n datagrams of the batch (in msgs order, names cleared: fd is
 * connected) on fd. Returns how many left, always the first ones; the rest
 * are dropped. -errno when the first failed for a reason other than a full
 * buffer. With *gso, runs of equal datagrams go as one send each, which
 * the kernel cuts into datagrams as late as it can: one trip through the
 * stack and the interface for up to GSO_SEGS of them. A socket or path
 * that refuses it (no checksum offload: EIO; datagrams longer than the
 * path MTU, which only fragmentation carries: EMSGSIZE) clears *gso and
 * sends one by one from then on.
 */
static int batch_send(struct lb_udp *u, int fd, int n, bool *gso)
{
	int runs, done = 0, sent = 0;

	if (!*gso || n < 2)
		return send_each(u, fd, 0, n);
	runs = make_runs(u, n);
	while (done < runs) {
		int m = sendmmsg(fd, u->runs + done, runs - done, MSG_DONTWAIT);

		if (m == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS)
				return sent;
			if (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP ||
			    errno == EMSGSIZE) {
				*gso = false;
				return send_each(u, fd, sent, n);
			}
			return sent ? sent : -errno;
		}
		for (int k = done; k < done + m; k++)
			sent += u->run_len[k];
		done += m;
	}
	return sent;
}

/* Keeps msgs[i] for sending: its length as read, no address. */
static void batch_keep(struct lb_udp *u, int at, int i)
{
	size_t len = u->msgs[i].msg_len;

	if (at != i) {
		u->iov[at] = u->iov[i];
		u->msgs[at] = u->msgs[i];
		u->msgs[at].msg_hdr.msg_iov = &u->iov[at];
	}
	u->iov[at].iov_len = len;
	u->msgs[at].msg_hdr.msg_name = NULL;
	u->msgs[at].msg_hdr.msg_namelen = 0;
	u->msgs[at].msg_hdr.msg_control = NULL;
	u->msgs[at].msg_hdr.msg_controllen = 0;
}

/*
 * Accounts for datagrams of the client sent on to the backend: sent of n
 * (sent < 0: a send error), bytes in those sent.
 */
static void flow_sent_up(struct flow *f, int sent, int n, uint64_t bytes)
{
	if (sent == -ECONNREFUSED) {
		flow_refused(f, ECONNREFUSED);
		return;
	}
	if (sent < n)
		drop(f->u, f->si, &service_of(f)->udp_drop_send, "send to the backend failed",
		     &f->client);
	if (sent > 0)
		flow_count(f, sent, bytes, 0, 0);
	f->last = lb_loop_now(f->u->a.loop);
}

/* Passes the first n datagrams of the batch (kept by batch_keep) to f's backend. */
static void flow_up(struct flow *f, int n)
{
	struct lb_udp *u = f->u;
	int sent = batch_send(u, f->srv.fd, n, &f->srv_gso);
	uint64_t bytes = 0;

	for (int i = 0; i < sent; i++)
		bytes += u->iov[i].iov_len;
	flow_sent_up(f, sent, n, bytes);
}

static const struct lb_service_conf *udp_service(const struct lb_udp *u,
						 const union lb_sockaddr *vip, size_t *si)
{
	const struct lb_service_conf *svc = lb_config_find_service_proto(u->a.cfg, vip,
									 LB_PROTO_UDP);

	if (svc)
		*si = svc - u->a.cfg->services;
	return svc;
}

/*
 * A datagram from client to vip that no flow socket took: the flow's
 * first, or one that raced its sockets. Sends it on (opening the flow);
 * leaves the batch as it is.
 */
static void dispatch(struct lb_udp *u, const union lb_sockaddr *client,
		     const union lb_sockaddr *vip, const void *data, size_t len)
{
	char buf[LB_ADDR_STRLEN];
	struct flow *f;
	ssize_t sent;
	size_t si;

	if (!udp_service(u, vip, &si)) {
		lb_debug("udp: no service for %s", lb_addr_format(vip, buf, sizeof(buf)));
		return;
	}
	f = flow_find(u, client, vip);
	if (!f && lb_quic_enabled(u->quic, si)) {
		struct lb_quic_route qr;

		lb_quic_route(u->quic, si, client->sa.sa_family, data, len, now_s(u), &qr);
		if (qr.how == LB_QUIC_DROP) {
			drop(u, si, &u->a.shm->services[si].quic_dropped, qr.why, client);
			return;
		}
		f = flow_open(u, si, client, vip, &qr);
	} else if (!f) {
		f = flow_open(u, si, client, vip, NULL);
	}
	if (!f)
		return;
	sent = send(f->srv.fd, data, len, MSG_DONTWAIT);
	flow_sent_up(f, sent == -1 ? -errno : (int)sent == (int)len, 1, len);
}

/* The original destination (the VIP) of datagram i, from its control message. */
static bool orig_dst(struct lb_udp *u, int i, union lb_sockaddr *vip)
{
	struct msghdr *h = &u->msgs[i].msg_hdr;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR &&
		    c->cmsg_len >= CMSG_LEN(sizeof(vip->in))) {
			memcpy(&vip->in, CMSG_DATA(c), sizeof(vip->in));
			return true;
		}
		if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR &&
		    c->cmsg_len >= CMSG_LEN(sizeof(vip->in6))) {
			memcpy(&vip->in6, CMSG_DATA(c), sizeof(vip->in6));
			return true;
		}
	}
	return false;
}

static void listener_event(struct lb_event *ev, uint32_t events)
{
	struct lb_udp *u = lb_container_of(ev, struct udp_listener, ev)->u;

	/* Stopped earlier in this batch of events. */
	if (ev->fd < 0)
		return;
	for (int round = 0; round < ROUNDS; round++) {
		int n = batch_recv(u, ev->fd, true, true);

		for (int i = 0; i < n; i++) {
			union lb_sockaddr vip, client = u->names[i];

			if (!orig_dst(u, i, &vip))
				continue;
			lb_addr_unmap(&client);
			lb_addr_unmap(&vip);
			dispatch(u, &client, &vip, u->iov[i].iov_base, u->msgs[i].msg_len);
		}
		if (n < BATCH)
			break;
	}
}

/* The client's datagrams, on the flow's reply socket. */
static void cli_event(struct lb_event *ev, uint32_t events)
{
	struct flow *f = lb_container_of(ev, struct flow, cli);
	struct lb_udp *u = f->u;

	for (int round = 0; f->live && round < ROUNDS; round++) {
		/*
		 * Once connected, the socket gets its peer's datagrams only; what
		 * came between bind() and connect() is in the first reads, which
		 * check each sender until the queue they found ran dry.
		 */
		bool check = !f->cli_checked;
		int n = batch_recv(u, ev->fd, check, false), kept = 0;

		if (check && n >= 0 && n < BATCH)
			f->cli_checked = true;
		for (int i = 0; i < n; i++) {
			union lb_sockaddr from = u->names[i];

			if (!check) {
				batch_keep(u, kept++, i);
				continue;
			}
			lb_addr_unmap(&from);
			if (!lb_addr_equal(&from, &f->client)) {
				/*
				 * Read between its bind() and connect(): another client's
				 * datagram to the same VIP. It goes the listener's way
				 * (kept ones sit below i: dispatch leaves the batch alone).
				 */
				dispatch(u, &from, &f->vip, u->iov[i].iov_base, u->msgs[i].msg_len);
				continue;
			}
			batch_keep(u, kept++, i);
		}
		if (kept)
			flow_up(f, kept);
		if (n < BATCH)
			break;
	}
}

/* The backend's datagrams, on the upstream socket: back to the client. */
static void srv_event(struct lb_event *ev, uint32_t events)
{
	struct flow *f = lb_container_of(ev, struct flow, srv);
	struct lb_udp *u = f->u;
	const struct lb_service_conf *svc = &u->a.cfg->services[f->si];

	for (int round = 0; f->live && round < ROUNDS; round++) {
		bool check = !f->srv_checked;
		int n = batch_recv(u, ev->fd, check, false), kept = 0, sent;
		uint64_t bytes = 0;

		if (n == -ECONNREFUSED) {
			flow_refused(f, ECONNREFUSED);
			return;
		}
		if (check && n >= 0 && n < BATCH)
			f->srv_checked = true;
		for (int i = 0; i < n; i++) {
			union lb_sockaddr from = u->names[i];

			/* Caught between bind() and connect(): not this backend's. */
			if (check) {
				lb_addr_unmap(&from);
				if (!lb_addr_equal(&from, &f->backend->addr))
					continue;
			}
			if (svc->udp_responses && f->dgrams_out + kept >= svc->udp_responses)
				break;
			if (f->quic)
				flow_learn(f, u->iov[i].iov_base, u->msgs[i].msg_len);
			bytes += u->msgs[i].msg_len;
			batch_keep(u, kept++, i);
		}
		if (!kept)
			break;
		if (!f->dgrams_out)
			lb_backend_connected(f->backend);
		sent = batch_send(u, f->cli.fd, kept, &f->cli_gso);
		if (sent < 0)
			sent = 0;
		for (int i = sent; i < kept; i++)
			bytes -= u->iov[i].iov_len;
		if (sent < kept)
			drop(u, f->si, &service_of(f)->udp_drop_send, "send to the client failed",
			     &f->client);
		flow_count(f, 0, 0, sent, bytes);
		f->last = lb_loop_now(u->a.loop);
		if (svc->udp_responses && f->dgrams_out >= svc->udp_responses) {
			flow_end(f, "responses");
			return;
		}
		if (n < BATCH)
			break;
	}
}

struct lb_udp *lb_udp_alloc(const struct lb_udp_args *args)
{
	struct lb_udp *u = calloc(1, sizeof(*u));
	size_t buckets = 64;

	if (!u)
		return NULL;
	u->a = *args;
	while (buckets < (size_t)args->capacity * 2)
		buckets <<= 1;
	u->mask = buckets - 1;
	u->flush.cb = flush_due;
	u->buckets = calloc(buckets, sizeof(*u->buckets));
	/* Touched only as flows come: an idle worker's slab stays unmapped. */
	u->slab = calloc(args->capacity ? args->capacity : 1, sizeof(*u->slab));
	u->bufs = mmap(NULL, (size_t)BATCH * DGRAM_MAX, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->bufs == MAP_FAILED)
		u->bufs = NULL;
	u->quic = lb_quic_router_alloc(args->cfg, args->shm);
	if (!u->buckets || !u->slab || !u->bufs || !u->quic)
		goto fail;
	for (size_t i = 0; i < args->n_listen && i < 2; i++) {
		u->listeners[i] = (struct udp_listener){
			.ev = { .fd = args->listen_fds[i], .cb = listener_event }, .u = u };
		if (lb_loop_add(args->loop, &u->listeners[i].ev, EPOLLIN) < 0)
			goto fail;
		u->n_listen++;
	}
	return u;
fail:
	lb_udp_free(u);
	errno = ENOMEM;
	return NULL;
}

void lb_udp_stop_accepting(struct lb_udp *u)
{
	for (size_t i = 0; i < u->n_listen; i++) {
		struct lb_event *ev = &u->listeners[i].ev;

		/* What queued before the stop is still this generation's to carry. */
		listener_event(ev, EPOLLIN);
		/*
		 * Out of epoll before the close: the socket stays open in the
		 * master and the next generation, so closing alone would leave
		 * it waking this worker to read a descriptor it no longer has.
		 */
		lb_loop_del(u->a.loop, ev);
		close(ev->fd);
		ev->fd = -1;
	}
	u->n_listen = 0;
}

unsigned int lb_udp_active(const struct lb_udp *u)
{
	return u ? u->n_active : 0;
}

void lb_udp_end_all(struct lb_udp *u, const char *reason)
{
	for (unsigned int i = 0; u && i < u->fresh; i++)
		flow_end(&u->slab[i], reason);
}

void lb_udp_after_batch(struct lb_udp *u)
{
	while (u && u->dead) {
		struct flow *f = u->dead;

		u->dead = f->next;
		f->next = u->free;
		u->free = f;
	}
}

void lb_udp_free(struct lb_udp *u)
{
	if (!u)
		return;
	lb_udp_end_all(u, "exit");
	lb_loop_timer_cancel(u->a.loop, &u->flush);
	for (size_t i = 0; i < u->n_listen; i++)
		close(u->listeners[i].ev.fd);
	if (u->bufs)
		munmap(u->bufs, (size_t)BATCH * DGRAM_MAX);
	lb_quic_router_free(u->quic);
	free(u->slab);
	free(u->buckets);
	free(u);
}
