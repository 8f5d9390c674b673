// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Gateway ownership's membership (lb/peers.h): heartbeats over UDP between
 * the tier's gateways, the peers' states they give, and the bucket table
 * (lb/owner.c) that follows those states into lb's nftables maps.
 *
 * Every gateway computes the owners from the same states, so they agree
 * as soon as they have heard the same heartbeats; the previous owners each
 * gateway keeps from its own history. A change of this gateway's state
 * goes out at once, not at the next interval, so the tier learns of a
 * drain or a stop within a round trip; silence takes dead_ms.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lb/log.h"
#include "lb/owner.h"
#include "lb/peers.h"

#define WIRE_MAGIC	0x4c426f77u	/* "LBow" */
#define WIRE_VERSION	1
/* The forwarding counters are read from the kernel this often (status and metrics). */
#define COUNTERS_MS	1000
/* A dead peer stays previous owner this many dead_ms. */
#define DEAD_HOLD	10

struct peer {
	enum lb_peer_state state;
	uint64_t heard_ms;		/* loop clock of its last heartbeat; 0: never */
	uint64_t incarnation;
	uint32_t connections;
	bool other_config;
	/*
	 * Dead (silent for dead_ms) but still previous owner of the buckets it
	 * had, for DEAD_HOLD of dead_ms: a master that was only slow (a reload,
	 * a loaded box) keeps its connections; one really gone loses them a
	 * little later than it would anyway.
	 */
	bool dead_holding;
	uint64_t dead_at;		/* loop clock when it was found dead */
	time_t since;
};

/* What a config's ownership block makes: kept from lb_peers_prepare() to lb_peers_use(). */
struct layout {
	bool enabled;
	uint32_t fingerprint;
	struct lb_owner_table table;
	uint16_t *to, *chance;		/* the verdicts installed (or to install) */
	struct lb_rules_owner own;	/* points to them */
	struct peer peers[LB_OWNER_PEERS_MAX];
	uint64_t keys[LB_OWNER_PEERS_MAX];
	int fd;				/* the heartbeat socket; -1: none */
	union lb_sockaddr bound;
};

struct lb_peers {
	struct lb_peers_state *st;	/* shared mapping */
	const struct lb_config *cfg;
	struct lb_loop *loop;
	struct lb_rules *rules;
	const struct lb_announce *announce;
	struct layout cur, next;
	bool next_ready;
	struct lb_event ev;
	struct lb_timer timer;
	uint64_t incarnation;
	uint32_t seq;
	enum lb_peer_state self;	/* as last told */
	uint32_t self_conns;
	uint64_t start_ms;		/* loop clock when the current layout took effect */
	bool settled, dirty;
	uint64_t counters_ms;
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* magic(4) version(1) state(1) index(2) fingerprint(4) connections(4) incarnation(8) seq(4) 0(4) */
void lb_peers_encode(const struct lb_peers_beat *b, uint8_t *buf)
{
	memset(buf, 0, LB_PEERS_WIRE_LEN);
	put32(buf, WIRE_MAGIC);
	buf[4] = WIRE_VERSION;
	buf[5] = (uint8_t)b->state;
	buf[6] = (uint8_t)(b->index >> 8), buf[7] = (uint8_t)b->index;
	put32(buf + 8, b->fingerprint);
	put32(buf + 12, b->connections);
	put32(buf + 16, (uint32_t)(b->incarnation >> 32));
	put32(buf + 20, (uint32_t)b->incarnation);
	put32(buf + 24, b->seq);
}

int lb_peers_decode(const uint8_t *buf, size_t len, struct lb_peers_beat *b)
{
	if (len != LB_PEERS_WIRE_LEN || get32(buf) != WIRE_MAGIC || buf[4] != WIRE_VERSION ||
	    buf[5] < LB_PEER_STARTING || buf[5] > LB_PEER_GONE)
		return -EBADMSG;
	b->state = (enum lb_peer_state)buf[5];
	b->index = (uint16_t)(buf[6] << 8 | buf[7]);
	b->fingerprint = get32(buf + 8);
	b->connections = get32(buf + 12);
	b->incarnation = (uint64_t)get32(buf + 16) << 32 | get32(buf + 20);
	b->seq = get32(buf + 24);
	return 0;
}

static uint32_t fnv(uint32_t h, const void *data, size_t len)
{
	for (const uint8_t *p = data; len--; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

uint32_t lb_peers_fingerprint(const struct lb_config *cfg)
{
	uint32_t h = 2166136261u, b = cfg->ownership.buckets;

	h = fnv(h, &b, sizeof(b));
	for (size_t k = 0; k < cfg->ownership.n_peers; k++) {
		const struct lb_owner_peer *p = &cfg->ownership.peers[k];

		h = fnv(h, p->name, strlen(p->name) + 1);
		for (size_t i = 0; i < p->n_addrs; i++) {
			const union lb_sockaddr *a = &p->addrs[i];

			if (a->sa.sa_family == AF_INET)
				h = fnv(h, &a->in.sin_addr, sizeof(a->in.sin_addr));
			else
				h = fnv(h, &a->in6.sin6_addr, sizeof(a->in6.sin6_addr));
		}
	}
	return h;
}

static void layout_fini(struct layout *l)
{
	lb_owner_table_fini(&l->table);
	free(l->to);
	free(l->chance);
	if (l->fd >= 0)
		close(l->fd);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

struct lb_peers *lb_peers_alloc(void)
{
	struct lb_peers *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->st = mmap(NULL, sizeof(*p->st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (p->st == MAP_FAILED) {
		free(p);
		return NULL;
	}
	memset(p->st, 0, sizeof(*p->st));
	p->cur.fd = p->next.fd = -1;
	p->ev.fd = -1;
	if (getrandom(&p->incarnation, sizeof(p->incarnation), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(p->incarnation))
		p->incarnation = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	return p;
}

/* Heartbeats to every peer but this gateway; failures count, no more (a dead peer's are many). */
static void send_beats(struct lb_peers *p, enum lb_peer_state state)
{
	const struct lb_config *cfg = p->cfg;
	struct lb_peers_beat b = {
		.state = state, .index = (uint16_t)cfg->ownership.self,
		.fingerprint = p->cur.fingerprint, .connections = p->self_conns,
		.incarnation = p->incarnation, .seq = ++p->seq,
	};
	uint8_t buf[LB_PEERS_WIRE_LEN];

	lb_peers_encode(&b, buf);
	for (size_t k = 0; k < cfg->ownership.n_peers; k++) {
		union lb_sockaddr to = cfg->ownership.peers[k].addrs[0];

		if (k == cfg->ownership.self)
			continue;
		lb_addr_set_port(&to, cfg->ownership.port);
		if (sendto(p->cur.fd, buf, sizeof(buf), MSG_DONTWAIT, &to.sa, lb_addr_len(&to)) == -1)
			continue;
		p->st->sent++;
	}
}

void lb_peers_free(struct lb_peers *p)
{
	if (!p)
		return;
	if (p->cur.enabled && p->cur.fd >= 0)
		send_beats(p, LB_PEER_GONE);
	if (p->loop)
		lb_loop_timer_cancel(p->loop, &p->timer);
	layout_fini(&p->cur);
	layout_fini(&p->next);
	munmap(p->st, sizeof(*p->st));
	free(p);
}

static int open_socket(const struct lb_config *cfg, union lb_sockaddr *bound, char *err,
		       size_t errlen)
{
	char a[LB_ADDR_STRLEN];
	int fd, one = 1;

	*bound = cfg->ownership.peers[cfg->ownership.self].addrs[0];
	lb_addr_set_port(bound, cfg->ownership.port);
	fd = socket(bound->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	/* A reload that keeps the address binds a second socket while the first is open. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, &bound->sa, lb_addr_len(bound)) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "ownership: heartbeat socket on %s: %s%s",
		 lb_addr_format(bound, a, sizeof(a)), strerror(errno),
		 errno == EADDRNOTAVAIL ? " (self's first address is not on this gateway)" : "");
	if (fd >= 0)
		close(fd);
	return -errno;
}

/* Serving and holding masks of l's peers, this gateway's from self (state) and conns. */
static void masks(const struct layout *l, size_t n, size_t self_k, enum lb_peer_state self,
		  uint32_t self_conns, uint64_t *serving, uint64_t *holding)
{
	*serving = *holding = 0;
	for (size_t k = 0; k < n; k++) {
		enum lb_peer_state s = k == self_k ? self : l->peers[k].state;
		uint32_t c = k == self_k ? self_conns : l->peers[k].connections;

		/* Not serving but with connections: draining, stopping, or a new tier's start. */
		if (s == LB_PEER_SERVING)
			*serving |= 1ull << k;
		else if (((s == LB_PEER_DRAINING || s == LB_PEER_STOPPING || s == LB_PEER_STARTING) &&
			  c) || (s == LB_PEER_DEAD && k != self_k && l->peers[k].dead_holding))
			*holding |= 1ull << k;
	}
}

int lb_peers_prepare(struct lb_peers *p, const struct lb_config *cfg, char *err, size_t errlen)
{
	struct layout *l = &p->next;
	size_t n = cfg->ownership.n_peers;
	uint64_t serving, holding;
	int ret;

	layout_fini(l);
	p->next_ready = true;
	if (!cfg->ownership.enabled)
		return 0;
	l->enabled = true;
	l->fingerprint = lb_peers_fingerprint(cfg);
	l->to = calloc(cfg->ownership.buckets, sizeof(*l->to));
	l->chance = calloc(cfg->ownership.buckets, sizeof(*l->chance));
	if (!l->to || !l->chance) {
		snprintf(err, errlen, "ownership: out of memory");
		return -ENOMEM;
	}
	ret = lb_owner_table_init(&l->table, cfg->ownership.buckets);
	if (ret < 0) {
		snprintf(err, errlen, "ownership: bucket table: %s", strerror(-ret));
		return ret;
	}
	/* What is known of the peers carries over by name: a reload must not forget the tier. */
	for (size_t k = 0; k < n; k++) {
		const char *name = cfg->ownership.peers[k].name;

		l->keys[k] = lb_owner_key(name);
		for (size_t j = 0; p->cur.enabled && p->cfg && j < p->cfg->ownership.n_peers; j++)
			if (!strcmp(p->cfg->ownership.peers[j].name, name))
				l->peers[k] = p->cur.peers[j];
	}
	if (p->cur.enabled && p->cur.fingerprint == l->fingerprint &&
	    p->cur.table.buckets == cfg->ownership.buckets) {
		/* The same tier: the same table, previous owners and all. */
		memcpy(l->table.owner, p->cur.table.owner, l->table.buckets * sizeof(uint16_t));
		memcpy(l->table.prev, p->cur.table.prev, l->table.buckets * sizeof(uint16_t));
	} else {
		/* A new tier: this gateway starts in it (lb_peers_use() hears it anew). */
		masks(l, n, cfg->ownership.self, LB_PEER_STARTING, p->self_conns, &serving,
		      &holding);
		ret = lb_owner_table_update(&l->table, l->keys, n, serving, holding);
		if (ret < 0) {
			snprintf(err, errlen, "ownership: bucket table: %s", strerror(-ret));
			return ret;
		}
	}
	lb_owner_table_verdicts(&l->table, cfg->ownership.self, l->to, l->chance);
	l->own = (struct lb_rules_owner){ .buckets = l->table.buckets, .to = l->to,
					  .chance = l->chance };
	l->bound = cfg->ownership.peers[cfg->ownership.self].addrs[0];
	lb_addr_set_port(&l->bound, cfg->ownership.port);
	if (p->cur.enabled && p->cur.fd >= 0 && lb_addr_equal(&p->cur.bound, &l->bound))
		return 0;	/* lb_peers_use() moves the open socket over */
	ret = open_socket(cfg, &l->bound, err, errlen);
	if (ret < 0)
		return ret;
	l->fd = ret;
	return 0;
}

const struct lb_rules_owner *lb_peers_table(const struct lb_peers *p)
{
	return p->next_ready && p->next.enabled ? &p->next.own : NULL;
}

/* This gateway's state as the tier should know it. */
static enum lb_peer_state self_state(const struct lb_peers *p)
{
	switch (lb_announce_state(p->announce)->gateway) {
	case LB_GATEWAY_STARTING:
		return LB_PEER_STARTING;
	case LB_GATEWAY_SERVING:
		return p->settled ? LB_PEER_SERVING : LB_PEER_STARTING;
	case LB_GATEWAY_DRAINING:
	case LB_GATEWAY_DRAINED:
		return LB_PEER_DRAINING;
	case LB_GATEWAY_STOPPING:
		return LB_PEER_STOPPING;
	}
	return LB_PEER_STARTING;
}

/* The table from the states known now; the kernel's maps follow when a verdict changed. */
static void recompute(struct lb_peers *p)
{
	const struct lb_config *cfg = p->cfg;
	struct layout *l = &p->cur;
	size_t n = cfg->ownership.n_peers, self = cfg->ownership.self;
	uint16_t *to = NULL, *chance = NULL;
	uint64_t serving, holding;
	struct lb_rules_owner own;
	char err[256];
	int moved;

	masks(l, n, self, p->self, p->self_conns, &serving, &holding);
	moved = lb_owner_table_update(&l->table, l->keys, n, serving, holding);
	if (moved < 0)
		return;
	if (moved) {
		p->st->table_changes++;
		p->st->buckets_moved += (uint64_t)moved;
		p->st->last_change = time(NULL);
		lb_info("ownership: %d bucket%s changed owner", moved, moved == 1 ? "" : "s");
	}
	to = malloc(l->table.buckets * sizeof(*to));
	chance = malloc(l->table.buckets * sizeof(*chance));
	if (!to || !chance)
		goto cleanup;
	lb_owner_table_verdicts(&l->table, self, to, chance);
	if (!p->dirty && !memcmp(to, l->to, l->table.buckets * sizeof(*to)) &&
	    !memcmp(chance, l->chance, l->table.buckets * sizeof(*chance)))
		goto cleanup;
	own = (struct lb_rules_owner){ .buckets = l->table.buckets, .to = to, .chance = chance };
	p->st->installs++;
	if (lb_rules_owner_update(p->rules, &own, err, sizeof(err)) < 0) {
		/* Retried at the next heartbeat. */
		p->st->install_failures++;
		snprintf(p->st->last_error, sizeof(p->st->last_error), "%s", err);
		if (!p->dirty)
			lb_err("ownership: %s", err);
		p->dirty = true;
		goto cleanup;
	}
	p->dirty = false;
	memcpy(l->to, to, l->table.buckets * sizeof(*to));
	memcpy(l->chance, chance, l->table.buckets * sizeof(*chance));
cleanup:
	free(to);
	free(chance);
}

/* The state's view of the peers, for status and metrics. */
static void publish(struct lb_peers *p, uint64_t now)
{
	const struct lb_config *cfg = p->cfg;
	struct lb_peers_state *st = p->st;
	uint32_t owned[LB_OWNER_PEERS_MAX], prev[LB_OWNER_PEERS_MAX];
	size_t n = cfg->ownership.n_peers;

	st->configured = true;
	st->settled = p->settled;
	st->buckets = p->cur.table.buckets;
	st->n_peers = n;
	lb_owner_table_count(&p->cur.table, n, owned, prev);
	for (size_t k = 0; k < n; k++) {
		struct lb_peer_view *v = &st->peers[k];
		const struct peer *q = &p->cur.peers[k];
		bool self = k == cfg->ownership.self;

		snprintf(v->name, sizeof(v->name), "%s", cfg->ownership.peers[k].name);
		v->addr = cfg->ownership.peers[k].addrs[0];
		v->self = self;
		v->state = self ? p->self : q->state;
		v->since = q->since;
		v->heard_ms_ago = self ? 0 : q->heard_ms ? now - q->heard_ms : UINT64_MAX;
		v->connections = self ? p->self_conns : q->connections;
		v->other_config = q->other_config;
		v->owned = owned[k];
		v->previous = prev[k];
	}
}

static void set_state(struct peer *q, enum lb_peer_state s, const char *name)
{
	if (q->state == s)
		return;
	lb_info("ownership: peer %s %s -> %s", name, lb_peers_state_name(q->state),
		lb_peers_state_name(s));
	q->state = s;
	q->since = time(NULL);
}

/* Reads every heartbeat queued on the socket. Returns whether a peer's state changed. */
static bool receive(struct lb_peers *p, uint64_t now)
{
	const struct lb_config *cfg = p->cfg;
	uint8_t buf[LB_PEERS_WIRE_LEN + 1];
	bool changed = false;

	for (;;) {
		union lb_sockaddr from;
		socklen_t fl = sizeof(from);
		struct lb_peers_beat b;
		struct peer *q;
		ssize_t len = recvfrom(p->cur.fd, buf, sizeof(buf), 0, &from.sa, &fl);

		if (len == -1)
			break;
		if (lb_peers_decode(buf, (size_t)len, &b) < 0 || b.index >= cfg->ownership.n_peers ||
		    b.index == cfg->ownership.self ||
		    !lb_addr_same_ip(&cfg->ownership.peers[b.index].addrs[0], &from.sa)) {
			p->st->rejected++;
			continue;
		}
		q = &p->cur.peers[b.index];
		if (b.fingerprint != p->cur.fingerprint) {
			/* Another tier's table would disagree with ours on every owner. */
			if (!q->other_config)
				lb_warn("ownership: peer %s has another ownership block (peers or "
					"buckets differ): ignored until it matches",
					cfg->ownership.peers[b.index].name);
			q->other_config = true;
			p->st->rejected++;
			continue;
		}
		p->st->received++;
		q->other_config = false;
		q->heard_ms = now;
		if (q->incarnation != b.incarnation || q->connections != b.connections ||
		    q->state != b.state)
			changed = true;
		q->incarnation = b.incarnation;
		q->connections = b.connections;
		q->dead_holding = false;
		set_state(q, b.state, cfg->ownership.peers[b.index].name);
	}
	return changed;
}

static void on_beat(struct lb_event *ev, uint32_t events)
{
	struct lb_peers *p = lb_container_of(ev, struct lb_peers, ev);
	uint64_t now = lb_loop_now(p->loop);

	(void)events;
	if (receive(p, now))
		recompute(p);
	publish(p, now);
}

/* Whether this gateway has heard the tier: every peer, or dead_ms of silence from the rest. */
static bool heard_tier(const struct lb_peers *p, uint64_t now)
{
	const struct lb_config *cfg = p->cfg;

	if (now >= p->start_ms + cfg->ownership.dead_ms)
		return true;
	for (size_t k = 0; k < cfg->ownership.n_peers; k++)
		if (k != cfg->ownership.self && !p->cur.peers[k].heard_ms)
			return false;
	return true;
}

static void on_timer(struct lb_timer *t)
{
	struct lb_peers *p = lb_container_of(t, struct lb_peers, timer);
	const struct lb_config *cfg = p->cfg;
	uint64_t now = lb_loop_now(p->loop);
	/* What arrived while this loop was busy first: a late timer must not see silence. */
	bool changed = receive(p, now) || p->dirty;

	for (size_t k = 0; k < cfg->ownership.n_peers; k++) {
		struct peer *q = &p->cur.peers[k];

		if (q->dead_holding &&
		    now - q->dead_at >= (uint64_t)DEAD_HOLD * cfg->ownership.dead_ms) {
			q->dead_holding = false;
			changed = true;
		}
		if (k == cfg->ownership.self || !q->heard_ms || q->state == LB_PEER_DEAD ||
		    now - q->heard_ms < cfg->ownership.dead_ms)
			continue;
		/* Serving or holding connections when it fell silent: previous owner a while. */
		q->dead_holding = q->state == LB_PEER_SERVING || q->connections;
		q->dead_at = now;
		set_state(q, LB_PEER_DEAD, cfg->ownership.peers[k].name);
		q->connections = 0;
		changed = true;
	}
	if (!p->settled && heard_tier(p, now)) {
		p->settled = true;
		lb_info("ownership: heard the tier; this gateway may own buckets");
	}
	if (changed)
		recompute(p);
	send_beats(p, p->self);
	if (now >= p->counters_ms + COUNTERS_MS) {
		p->counters_ms = now;
		lb_peers_refresh(p);
	}
	publish(p, now);
	lb_loop_timer_set(p->loop, t, now + cfg->ownership.interval_ms);
}

void lb_peers_use(struct lb_peers *p, const struct lb_config *cfg, struct lb_loop *loop,
		  struct lb_rules *rules, const struct lb_announce *announce)
{
	bool was = p->cur.enabled, same;
	int fd = p->cur.fd;

	p->loop = loop;
	p->rules = rules;
	p->announce = announce;
	if (!p->next_ready)
		return;
	same = was && p->next.enabled && p->cur.fingerprint == p->next.fingerprint;
	if (was && !p->next.enabled)
		send_beats(p, LB_PEER_GONE);
	if (p->next.enabled && p->next.fd < 0) {
		/* The same address: the open socket moves over. */
		p->next.fd = fd;
		p->cur.fd = -1;
	}
	if (p->ev.fd >= 0 && p->ev.fd != p->next.fd)
		lb_loop_del(loop, &p->ev);
	layout_fini(&p->cur);
	p->cur = p->next;
	memset(&p->next, 0, sizeof(p->next));
	p->next.fd = -1;
	p->next_ready = false;
	p->cfg = cfg;
	if (!p->cur.enabled) {
		lb_loop_timer_cancel(loop, &p->timer);
		p->ev.fd = -1;
		memset(p->st, 0, sizeof(*p->st));
		p->settled = false;
		return;
	}
	if (p->ev.fd != p->cur.fd) {
		p->ev.fd = p->cur.fd;
		p->ev.cb = on_beat;
		if (lb_loop_add(loop, &p->ev, EPOLLIN) < 0)
			lb_err("ownership: cannot watch the heartbeat socket");
	}
	if (!same) {
		/* A new tier is heard anew before this gateway owns any of its buckets. */
		p->settled = false;
		p->start_ms = lb_loop_now(loop);
	}
	p->self = self_state(p);
	p->timer.cb = on_timer;
	lb_loop_timer_set(loop, &p->timer, lb_loop_now(loop));
}

void lb_peers_sync(struct lb_peers *p, int64_t connections, uint64_t now_ms)
{
	enum lb_peer_state s;
	uint32_t c = connections > 0 ? (uint32_t)connections : 0;

	if (!p->cur.enabled || !p->cfg)
		return;
	s = self_state(p);
	/* Only whether it holds any matters to the table; the count itself goes with the beats. */
	if (s == p->self && !c == !p->self_conns) {
		p->self_conns = c;
		return;
	}
	if (s != p->self)
		lb_info("ownership: this gateway %s -> %s", lb_peers_state_name(p->self),
			lb_peers_state_name(s));
	p->self = s;
	p->self_conns = c;
	recompute(p);
	send_beats(p, s);
	publish(p, now_ms);
}

bool lb_peers_settled(const struct lb_peers *p)
{
	return !p->cur.enabled || p->settled;
}

void lb_peers_refresh(struct lb_peers *p)
{
	if (p->cur.enabled && p->rules)
		lb_rules_owner_counters(p->rules, p->st->packets);
}

const struct lb_peers_state *lb_peers_state(const struct lb_peers *p)
{
	return p->st;
}
