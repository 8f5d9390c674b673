// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb's rules in the kernel. An install always re-asserts everything,
 * because anyone may have removed part of it since the last one. Between
 * installs the watch hears from the kernel when someone else removes a
 * piece (lb's own changes carry its own netlink ports and are not
 * reported), waits DEBOUNCE_MS so that one burst (nft flush ruleset, ip
 * route flush) costs one restore, and puts back what went. A restore that
 * fails, or a peer that removes the rules again at once every time, is met
 * with a growing delay: never a loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lb/bigmem.h"
#include "lb/log.h"
#include "lb/rules.h"
#include "lb/rules_owner.h"
#include "nft/nft.h"
#include "nft/watch.h"

#define DEBOUNCE_MS	150
/* Removed again this soon after a restore: someone may be undoing lb on purpose. */
#define QUICK_MS	1000
/* Quick removals in a row that are still restored after DEBOUNCE_MS. */
#define QUICK_FREE	3
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000

#define GONE_ROUTING (LB_NFT_GONE_RULE4 | LB_NFT_GONE_RULE6 | LB_NFT_GONE_ROUTE4 | \
		      LB_NFT_GONE_ROUTE6 | LB_NFT_GONE_UNKNOWN)
#define GONE_NFT (LB_NFT_GONE_TABLE | LB_NFT_GONE_UNKNOWN)

/* The spec's VIPs are the config's, copied whole. */
_Static_assert(sizeof(union lb_nft_addr) == sizeof(union lb_sockaddr),
	       "a config VIP and a rules VIP are the same 28 bytes");

/* The nft and routing specs lb installs for one config. */
struct spec {
	struct lb_nft_spec nft;
	struct lb_nft_route_spec route;
	union lb_nft_addr *vips;	/* owned; nft.vips points here */
	struct lb_nft_range *ranges;	/* owned; nft.ranges points here */
	size_t n_vips, n_ranges;	/* their sizes: TCP entries from the front, UDP from the back */
	/* Ownership, when the config has it: nft.owner points to own.owner. */
	struct lb_rules_owner_spec own;
	struct lb_nft_clients *clients;	/* owned, nft.clients; their VIPs point into vips, ranges */
	struct lb_nft_prefix *prefixes;	/* owned: every allow and deny list, end to end */
};

struct watch_src {
	struct lb_event ev;
	struct lb_rules *r;
	enum lb_nft_watch_src src;
};

struct lb_rules {
	struct spec cur;
	bool nft_installed, routes_installed;
	struct lb_loop *loop;
	struct lb_nft_watch *watch;
	struct lb_nft_watch_spec watched;	/* what cur installed, while it is in force */
	struct watch_src srcs[LB_NFT_WATCH_NSRC];
	struct lb_timer timer;		/* the next restore */
	unsigned int gone;		/* LB_NFT_GONE_* seen and not restored yet */
	uint64_t gone_ms;		/* loop clock when the first of them went */
	unsigned int changes;		/* changes coalesced into the next restore */
	uint64_t restored_ms;		/* loop clock of the last restore; 0: none */
	unsigned int streak;		/* restores each undone within QUICK_MS */
	unsigned int fails;		/* failed restores in a row */
	/* Ownership counters: what tables replaced since start had counted, and the last read. */
	uint64_t counted[LB_NFT_OWNER_COUNTERS], last[LB_NFT_OWNER_COUNTERS];
	uint64_t counters_log_ms;	/* loop clock of the last "cannot read counters" line */
	/*
	 * What the installed table's per-client counters said at the last
	 * read, [2 * service + (rate)]: reads report what they added since.
	 * Cleared when a new table replaces the old (its counters start at 0).
	 */
	uint64_t *seen;
	size_t n_seen;
	struct lb_rules_state st;
};

static size_t vips_size(const struct spec *s)
{
	return (s->n_vips ? s->n_vips : 1) * sizeof(*s->vips);
}

static size_t ranges_size(const struct spec *s)
{
	return (s->n_ranges ? s->n_ranges : 1) * sizeof(*s->ranges);
}

static void spec_fini(struct spec *s)
{
	lb_nft_keys_free(s->nft.keys);
	s->nft.keys = NULL;
	lb_bigmem_free(s->vips, vips_size(s));
	lb_bigmem_free(s->ranges, ranges_size(s));
	lb_rules_owner_spec_fini(&s->own);
	free(s->clients);
	free(s->prefixes);
	s->vips = NULL;
	s->ranges = NULL;
	s->clients = NULL;
	s->prefixes = NULL;
	s->nft.owner = NULL;
}

/* A prefix or port-range VIP as the nft interval set takes it: first and last. */
static void vip_range(const struct lb_service_conf *svc, size_t k, struct lb_nft_range *r)
{
	union lb_sockaddr last = svc->vips[k];
	bool v6 = last.sa.sa_family == AF_INET6;
	unsigned char *p = v6 ? last.in6.sin6_addr.s6_addr : (unsigned char *)&last.in.sin_addr;
	unsigned int bits = v6 ? 128 : 32;

	/* Every host bit set: the prefix's last address. */
	for (unsigned int b = svc->vip_plen[k]; b < bits; b++)
		p[b / 8] |= (unsigned char)(0x80 >> (b % 8));
	lb_addr_set_port(&last, svc->vip_port_last[k]);
	memset(r, 0, sizeof(*r));
	memcpy(&r->first, &svc->vips[k], sizeof(svc->vips[k]));
	memcpy(&r->last, &last, sizeof(last));
}

static struct lb_nft_prefix *prefixes_copy(struct lb_nft_prefix *to, const struct lb_prefix *p,
					   size_t n)
{
	for (size_t i = 0; i < n; i++) {
		to[i] = (struct lb_nft_prefix){ .family = p[i].family, .len = (uint8_t)p[i].len };
		memcpy(to[i].addr, p[i].addr, sizeof(to[i].addr));
	}
	return to;
}

/*
 * The per-client rules of cfg's services that have lists or a rate, each
 * named by its service's index. spec_init lays a service's VIPs out in
 * s->vips and s->ranges in service order: TCP ones from the front, UDP
 * ones from the back.
 */
static int clients_init(struct spec *s, const struct lb_config *cfg)
{
	size_t n_prefixes = 0, k = 0, p = 0, tcp = 0, udp = 0, tcp_r = 0, udp_r = 0;

	for (size_t i = 0; i < cfg->n_services; i++)
		n_prefixes += cfg->services[i].clients.n_allow + cfg->services[i].clients.n_deny;
	s->clients = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*s->clients));
	s->prefixes = calloc(n_prefixes ? n_prefixes : 1, sizeof(*s->prefixes));
	if (!s->clients || !s->prefixes)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];
		const struct lb_clients_conf *cl = &svc->clients;
		size_t singles = 0, nt, nu, nt_r, nu_r;

		for (size_t j = 0; j < svc->n_vips; j++)
			singles += lb_config_vip_single(svc, j);
		nt = svc->protocols & LB_PROTO_TCP ? singles : 0;
		nu = svc->protocols & LB_PROTO_UDP ? singles : 0;
		nt_r = svc->protocols & LB_PROTO_TCP ? svc->n_vips - singles : 0;
		nu_r = svc->protocols & LB_PROTO_UDP ? svc->n_vips - singles : 0;
		tcp += nt, udp += nu, tcp_r += nt_r, udp_r += nu_r;
		if (!lb_config_clients_nft(svc))
			continue;
		s->clients[k++] = (struct lb_nft_clients){
			.id = (uint32_t)i,
			.vips = s->vips + tcp - nt,
			.n_vips = nt,
			.udp_vips = s->vips + s->n_vips - udp,
			.n_udp_vips = nu,
			.ranges = s->ranges + tcp_r - nt_r,
			.n_ranges = nt_r,
			.udp_ranges = s->ranges + s->n_ranges - udp_r,
			.n_udp_ranges = nu_r,
			.allow = cl->allow ? prefixes_copy(s->prefixes + p, cl->allow, cl->n_allow) : NULL,
			.n_allow = cl->n_allow,
			.deny = prefixes_copy(s->prefixes + p + cl->n_allow, cl->deny, cl->n_deny),
			.n_deny = cl->n_deny,
			.reset = cl->deny_reset,
			.rate = cl->rate,
			.burst = cl->burst,
			.prefix4 = (uint8_t)cl->rate_prefix4,
			.prefix6 = (uint8_t)cl->rate_prefix6,
			.size = cl->rate_table_size,
		};
		p += cl->n_allow + cl->n_deny;
	}
	s->nft.clients = s->clients;
	s->nft.n_clients = k;
	return 0;
}

static int spec_init(struct spec *s, const struct lb_config *cfg, const struct lb_rules_owner *own)
{
	size_t tcp = 0, udp = 0, tcp_r = 0, udp_r = 0;

	memset(s, 0, sizeof(*s));
	/* Sized exactly: zeroing room for every VIP twice cost 10 ms at 100,000. */
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];
		size_t both = !!(svc->protocols & LB_PROTO_TCP) + !!(svc->protocols & LB_PROTO_UDP);

		for (size_t j = 0; j < svc->n_vips; j++)
			*(lb_config_vip_single(svc, j) ? &s->n_vips : &s->n_ranges) += both;
	}
	/*
	 * A tcp+udp VIP is in both: TCP from the front, UDP from the back.
	 * 3 MB at 100,000 VIPs, the master's alone.
	 */
	s->vips = lb_bigmem_alloc(vips_size(s), true);
	s->ranges = lb_bigmem_alloc(ranges_size(s), true);
	if (!s->vips || !s->ranges) {
		spec_fini(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		for (size_t j = 0; j < svc->n_vips; j++) {
			bool single = lb_config_vip_single(svc, j);

			if ((svc->protocols & LB_PROTO_TCP) && single)
				memcpy(&s->vips[tcp++], &svc->vips[j], sizeof(svc->vips[j]));
			if ((svc->protocols & LB_PROTO_UDP) && single)
				memcpy(&s->vips[s->n_vips - ++udp], &svc->vips[j], sizeof(svc->vips[j]));
			if ((svc->protocols & LB_PROTO_TCP) && !single)
				vip_range(svc, j, &s->ranges[tcp_r++]);
			if ((svc->protocols & LB_PROTO_UDP) && !single)
				vip_range(svc, j, &s->ranges[s->n_ranges - ++udp_r]);
		}
	}
	s->nft = (struct lb_nft_spec){
		.table = cfg->intercept.table,
		.mark = cfg->intercept.mark,
		.port = cfg->intercept.port,
		.vips = s->vips,
		.n_vips = tcp,
		.udp_vips = s->vips + s->n_vips - udp,
		.n_udp_vips = udp,
		.ranges = s->ranges,
		.n_ranges = tcp_r,
		.udp_ranges = s->ranges + s->n_ranges - udp_r,
		.n_udp_ranges = udp_r,
	};
	s->route = (struct lb_nft_route_spec){
		.mark = cfg->intercept.mark,
		.table = cfg->intercept.route_table,
		.priority = cfg->intercept.rule_priority,
		.ipv4 = lb_config_has_family(cfg, AF_INET),
		.ipv6 = lb_config_has_family(cfg, AF_INET6),
	};
	/* Its sets' keys, kept for the next reload's diff (without them, built again). */
	s->nft.keys = lb_nft_keys_alloc();
	if (cfg->ownership.enabled)
		s->nft.owner = &s->own.owner;
	if (clients_init(s, cfg) < 0 ||
	    (cfg->ownership.enabled && lb_rules_owner_spec_init(&s->own, cfg, own) < 0)) {
		spec_fini(s);
		return -ENOMEM;
	}
	return 0;
}


static bool route_spec_equal(const struct lb_nft_route_spec *a, const struct lb_nft_route_spec *b)
{
	return a->mark == b->mark && a->table == b->table && a->priority == b->priority &&
	       a->ipv4 == b->ipv4 && a->ipv6 == b->ipv6;
}

/*
 * Shared, so that processes the master forks later (the HTTP listener's)
 * read the state it keeps current, not the copy they were born with. They
 * only read; a string read while the master rewrites it may come out
 * mixed, which a status page can live with.
 */
struct lb_rules *lb_rules_alloc(void)
{
	void *p = mmap(NULL, sizeof(struct lb_rules), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

const struct lb_rules_state *lb_rules_state(const struct lb_rules *r)
{
	return &r->st;
}

/* "table inet lb, ipv4 rule, ipv6 route": the pieces in gone. */
static void gone_names(const struct lb_rules *r, unsigned int gone, char *buf, size_t len)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} parts[] = {
		{ LB_NFT_GONE_RULE4, "ipv4 fwmark rule" }, { LB_NFT_GONE_ROUTE4, "ipv4 route" },
		{ LB_NFT_GONE_RULE6, "ipv6 fwmark rule" }, { LB_NFT_GONE_ROUTE6, "ipv6 route" },
	};
	size_t n;

	if (gone & LB_NFT_GONE_UNKNOWN) {
		snprintf(buf, len, "table inet %s, policy rules and routes", r->cur.nft.table);
		return;
	}
	n = (size_t)snprintf(buf, len, "%s%s", gone & LB_NFT_GONE_TABLE ? "table inet " : "",
			     gone & LB_NFT_GONE_TABLE ? r->cur.nft.table : "");
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && n < len; i++)
		if (gone & parts[i].bit)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", parts[i].name);
}

/*
 * " by pid 4242 (nft)": who made the change, as far as the kernel says.
 * Routing notifications name only a netlink port, which a tool's first
 * socket gets from its pid: the process is named only if it still runs.
 */
static void blame(const struct lb_nft_watch_event *ev, char *buf, size_t len)
{
	char path[32], comm[32] = "";
	int32_t port = (int32_t)ev->portid;
	ssize_t n = 0;
	int fd;

	if (ev->gone & LB_NFT_GONE_UNKNOWN) {
		buf[0] = '\0';
		return;
	}
	if (ev->pid) {
		snprintf(buf, len, " by pid %u (%s)", ev->pid, ev->comm[0] ? ev->comm : "?");
		return;
	}
	if (!ev->portid) {
		snprintf(buf, len, " by the kernel");
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)port);
	fd = port > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
	}
	if (n > 0) {
		comm[n] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		snprintf(buf, len, " by netlink port %u (likely pid %d, %s)", ev->portid, (int)port,
			 comm);
	} else {
		snprintf(buf, len, " by netlink port %u", ev->portid);
	}
}

/* BACKOFF_MIN_MS doubled step times, up to BACKOFF_MAX_MS. */
static unsigned int backoff_ms(unsigned int step)
{
	unsigned int ms = BACKOFF_MIN_MS;

	while (step-- && ms < BACKOFF_MAX_MS)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Something is put back (by the watch or an install): record it, start over. */
static void restored(struct lb_rules *r, const char *by)
{
	uint64_t now = lb_loop_now(r->loop);
	char names[160];

	gone_names(r, r->gone, names, sizeof(names));
	r->st.restores++;
	r->st.last_time = time(NULL);
	r->st.last_ms = (unsigned int)(now - r->gone_ms);
	r->st.last_by = by;
	memcpy(r->st.last_what, r->st.missing_what, sizeof(r->st.last_what));
	lb_warn("rules: restored %s by %s, %u ms after: %s%s", names, by, r->st.last_ms,
		r->st.missing_what, r->changes > 1 ? " (and more changes)" : "");
	r->gone = 0;
	r->changes = 0;
	r->fails = 0;
	r->restored_ms = now;
	r->st.missing = false;
	r->st.missing_since = 0;
	r->st.missing_what[0] = '\0';
	lb_loop_timer_cancel(r->loop, &r->timer);
}

static void on_gone(void *arg, const struct lb_nft_watch_event *ev)
{
	struct lb_rules *r = arg;
	uint64_t now = lb_loop_now(r->loop);
	unsigned int delay = DEBOUNCE_MS;
	char who[96];

	blame(ev, who, sizeof(who));
	r->changes++;
	if (r->gone) {
		/* Same incident: the restore already planned covers it. */
		r->gone |= ev->gone;
		lb_debug("rules: also %s%s", ev->what, who);
		return;
	}
	r->gone = ev->gone;
	r->gone_ms = now;
	r->st.missing = true;
	r->st.missing_since = time(NULL);
	snprintf(r->st.missing_what, sizeof(r->st.missing_what), "%s%s%s", ev->what,
		 ev->objects > 1 ? " (with what was in it)" : "", who);
	r->streak = r->restored_ms && now - r->restored_ms < QUICK_MS ? r->streak + 1 : 0;
	if (r->streak >= QUICK_FREE) {
		delay = backoff_ms(r->streak - QUICK_FREE);
		lb_warn("rules: %s, %u times in a row right after lb restored them: restoring "
			"in %u ms", r->st.missing_what, r->streak + 1, delay);
	} else {
		lb_warn("rules: %s: restoring", r->st.missing_what);
	}
	lb_loop_timer_set(r->loop, &r->timer, now + delay);
}

/* Reads what the kernel queued on one source. */
static void watch_event(struct lb_event *ev, uint32_t events)
{
	struct watch_src *ws = lb_container_of(ev, struct watch_src, ev);
	struct lb_rules *r = ws->r;
	int rc = lb_nft_watch_read(r->watch, ws->src, &r->watched, on_gone, r);

	if (rc < 0) {
		/* Level-triggered: a socket that keeps failing would spin the loop. */
		lb_err("rules: reading kernel notifications: %s; lb no longer notices when its "
		       "rules are removed", strerror(-rc));
		lb_loop_del(r->loop, ev);
		r->st.watching = false;
	}
}

/* Handles what is queued now, so an install that follows accounts for it. */
static void watch_drain(struct lb_rules *r)
{
	for (size_t i = 0; r->st.watching && i < LB_NFT_WATCH_NSRC; i++)
		watch_event(&r->srcs[i].ev, EPOLLIN);
}

static void restore(struct lb_timer *t)
{
	struct lb_rules *r = lb_container_of(t, struct lb_rules, timer);
	char err[512] = "", err_nft[512], names[160];
	unsigned int delay;
	int rc = 0, rc_nft = 0;

	if (!r->gone)
		return;
	watch_drain(r);
	/* Routes first, as at install; the table even when they failed, as it
	 * does not depend on them and is then in place for the retry. Both
	 * calls are idempotent. */
	if (r->routes_installed && (r->gone & GONE_ROUTING))
		rc = lb_nft_route_apply(&r->cur.route, err, sizeof(err));
	/* The peers' routes went the same way as lb's own, likely (a flush): back with them. */
	if (rc == 0 && r->routes_installed && (r->gone & GONE_ROUTING) && r->cur.own.n_fwd)
		rc = lb_nft_fwd_apply(r->cur.own.fwd, r->cur.own.n_fwd, r->cur.own.priority, err,
				      sizeof(err));
	if (r->nft_installed && (r->gone & GONE_NFT)) {
		/* Gone with the table: its counters too, but for what the last read saw. */
		for (size_t i = 0; i < LB_NFT_OWNER_COUNTERS; i++)
			r->counted[i] += r->last[i];
		memset(r->last, 0, sizeof(r->last));
		rc_nft = lb_nft_apply(&r->cur.nft, err_nft, sizeof(err_nft));
		/* A new table: its counters start over (what went with the old is lost). */
		if (rc_nft == 0 && r->seen)
			memset(r->seen, 0, r->n_seen * sizeof(*r->seen));
	}
	if (rc == 0 && rc_nft < 0) {
		rc = rc_nft;
		memcpy(err, err_nft, sizeof(err));
	}
	if (rc == 0) {
		restored(r, "watch");
		return;
	}
	delay = backoff_ms(r->fails++);
	r->st.failures++;
	snprintf(r->st.last_error, sizeof(r->st.last_error), "%s", err);
	gone_names(r, r->gone, names, sizeof(names));
	lb_err("rules: cannot restore %s: %s; retrying in %u ms", names, err, delay);
	lb_loop_timer_set(r->loop, &r->timer, lb_loop_now(r->loop) + delay);
}

int lb_rules_watch(struct lb_rules *r, struct lb_loop *loop)
{
	char err[256];
	int rc;

	r->loop = loop;
	r->timer.cb = restore;
	r->watch = lb_nft_watch_alloc();
	if (!r->watch) {
		lb_warn("rules: cannot watch for removals: out of memory");
		return -ENOMEM;
	}
	rc = lb_nft_watch_open(r->watch, err, sizeof(err));
	for (size_t i = 0; rc == 0 && i < LB_NFT_WATCH_NSRC; i++) {
		r->srcs[i] = (struct watch_src){
			.ev = { .fd = lb_nft_watch_fd(r->watch, i), .cb = watch_event },
			.r = r,
			.src = i,
		};
		rc = lb_loop_add(loop, &r->srcs[i].ev, EPOLLIN);
		if (rc < 0) {
			snprintf(err, sizeof(err), "watch: epoll: %s", strerror(-rc));
			for (size_t j = 0; j < i; j++)
				lb_loop_del(loop, &r->srcs[j].ev);
		}
	}
	if (rc < 0) {
		lb_warn("rules: %s; lb will not notice when its rules are removed", err);
		lb_nft_watch_free(r->watch);
		r->watch = NULL;
		return rc;
	}
	r->st.watching = true;
	lb_info("rules: watching nftables and policy routing for removals of lb's rules");
	return 0;
}

void lb_rules_free(struct lb_rules *r)
{
	if (!r)
		return;
	if (r->loop)
		lb_loop_timer_cancel(r->loop, &r->timer);
	/* Closing the sockets takes them out of the loop's epoll set. */
	lb_nft_watch_free(r->watch);
	spec_fini(&r->cur);
	free(r->seen);
	munmap(r, sizeof(*r));
}

/*
 * The table is about to be replaced whole, and its counters with it: what
 * they counted so far is kept, so lb's own stay monotonic.
 */
static void counters_keep(struct lb_rules *r)
{
	uint64_t now[LB_NFT_OWNER_COUNTERS];

	if (lb_rules_owner_counters(r, now) < 0)
		return;
	memcpy(r->counted, now, sizeof(now));
	memset(r->last, 0, sizeof(r->last));
}

struct drops_cb {
	struct lb_rules *r;
	void (*cb)(void *arg, size_t service, const char *what, uint64_t packets);
	void *arg;
};

static void on_counter(void *arg, uint32_t id, const char *what, uint64_t packets)
{
	struct drops_cb *d = arg;
	size_t at = 2 * (size_t)id + (strcmp(what, "rate") == 0);
	uint64_t *seen = at < d->r->n_seen ? &d->r->seen[at] : NULL;
	uint64_t added;

	if (id == LB_NFT_COUNTER_OWNER || !seen)
		return;
	/* Less than before: someone reset it, or a restore made a new table. */
	added = packets >= *seen ? packets - *seen : packets;
	*seen = packets;
	if (added)
		d->cb(d->arg, id, what, added);
}

int lb_rules_client_drops(struct lb_rules *r,
			  void (*cb)(void *arg, size_t service, const char *what, uint64_t packets),
			  void *arg)
{
	struct drops_cb d = { .r = r, .cb = cb, .arg = arg };
	char err[256];
	uint64_t now;
	int rc;

	if (!r->nft_installed || !r->cur.nft.n_clients)
		return 0;
	rc = lb_nft_counters_read(r->cur.nft.table, on_counter, &d, err, sizeof(err));
	now = r->loop ? lb_loop_now(r->loop) : 0;
	if (rc < 0 && (!r->counters_log_ms || now - r->counters_log_ms >= 60000)) {
		r->counters_log_ms = now ? now : 1;
		lb_warn("rules: %s; per-client drop counts are not updated", err);
	}
	return rc;
}

/* A new table's counters start at 0: forget what the old one's said. */
static int seen_reset(struct lb_rules *r, size_t n_services)
{
	uint64_t *seen = calloc(n_services ? 2 * n_services : 1, sizeof(*seen));

	if (!seen)
		return -ENOMEM;
	free(r->seen);
	r->seen = seen;
	r->n_seen = 2 * n_services;
	return 0;
}

/*
 * Removes what the old route spec added and the new one, just applied,
 * does not also hold: per family, a table the new rule also looks up keeps
 * its local route (a new mark or priority changes only the rule).
 */
static void route_retire(const struct lb_nft_route_spec *old, const struct lb_nft_route_spec *next)
{
	bool table = old->table == next->table;
	bool rule = table && old->mark == next->mark && old->priority == next->priority;
	struct lb_nft_route_spec all = *old, rule_only = *old;
	char ignored[256];

	all.ipv4 = old->ipv4 && !(table && next->ipv4);
	all.ipv6 = old->ipv6 && !(table && next->ipv6);
	rule_only.ipv4 = old->ipv4 && table && next->ipv4 && !rule;
	rule_only.ipv6 = old->ipv6 && table && next->ipv6 && !rule;
	if (all.ipv4 || all.ipv6)
		lb_nft_route_remove(&all, ignored, sizeof(ignored));
	if (rule_only.ipv4 || rule_only.ipv6)
		lb_nft_route_remove_rule(&rule_only, ignored, sizeof(ignored));
}

/*
 * After a failed install: the routes and the peer forwarding as the running
 * spec has them, none of what next added (all of it, when none ran yet).
 */
static void routes_undo(struct lb_rules *r, const struct spec *next, bool routes_changed)
{
	char ignored[256];

	if (!r->routes_installed || routes_changed)
		lb_nft_route_remove(&next->route, ignored, sizeof(ignored));
	if (r->routes_installed && routes_changed)
		lb_nft_route_apply(&r->cur.route, ignored, sizeof(ignored));
	lb_rules_owner_fwd_retire(&next->own, r->routes_installed ? &r->cur.own : NULL);
	/* A table both route through holds next's peer address now: cur's again. */
	if (r->routes_installed && r->cur.own.n_fwd)
		lb_nft_fwd_apply(r->cur.own.fwd, r->cur.own.n_fwd, r->cur.own.priority, ignored,
				 sizeof(ignored));
}

int lb_rules_install(struct lb_rules *r, const struct lb_config *cfg,
		     const struct lb_rules_owner *own, char *err, size_t errlen)
{
	struct spec next;
	bool routes_changed, kept = false;
	int rc;

	rc = spec_init(&next, cfg, own);
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	/* Removals already queued are what this install puts back. */
	watch_drain(r);
	routes_changed = !r->routes_installed || !route_spec_equal(&next.route, &r->cur.route);
	/* Unchanged too: someone may have removed them since. */
	rc = lb_nft_route_apply(&next.route, err, errlen);
	/* The way to each peer, before the chains that mark packets for it. */
	if (rc == 0 && next.own.n_fwd)
		rc = lb_nft_fwd_apply(next.own.fwd, next.own.n_fwd, next.own.priority, err, errlen);
	if (rc < 0) {
		routes_undo(r, &next, routes_changed);
		goto fail;
	}
	/*
	 * The table as lb left it (its watch says nothing in it was touched)
	 * and the same rules in the new one: only the
	 * VIPs that changed go to the kernel (one VIP in 100,000 is one
	 * element, not a new table), in one transaction still. Otherwise the
	 * table is replaced whole, a renamed intercept.table's old one in the
	 * same transaction.
	 */
	if (r->nft_installed && r->st.watching && !(r->gone & GONE_NFT) &&
	    lb_nft_ruleset_same_shape(&r->cur.nft, &next.nft)) {
		size_t added, removed;

		rc = lb_nft_apply_diff(&r->cur.nft, &next.nft, err, errlen, &added, &removed);
		kept = true;
		if (rc == 0)
			lb_info("rules: table inet %s kept: %zu VIP element%s added, %zu removed",
				next.nft.table, added, added == 1 ? "" : "s", removed);
		if (rc == 0)
			rc = lb_nft_apply_owner(&r->cur.nft, &next.nft, err, errlen, &added);
	} else {
		if (r->nft_installed && strcmp(next.nft.table, r->cur.nft.table))
			next.nft.retire = r->cur.nft.table;
		counters_keep(r);
		rc = lb_nft_apply(&next.nft, err, errlen);
		next.nft.retire = NULL;
	}
	if (rc < 0) {
		routes_undo(r, &next, routes_changed);
		goto fail;
	}
	if (routes_changed && r->routes_installed)
		route_retire(&r->cur.route, &next.route);
	lb_rules_owner_fwd_retire(&r->cur.own, &next.own);
	/* A table kept keeps its counters; a new one counts from 0. */
	if (!kept && seen_reset(r, cfg->n_services) < 0)
		lb_warn("rules: out of memory: per-client drop counts may miss some");
	spec_fini(&r->cur);
	r->cur = next;
	/* The copy moved: its ownership spec is its own again. */
	if (r->cur.nft.owner)
		r->cur.nft.owner = &r->cur.own.owner;
	r->nft_installed = r->routes_installed = true;
	r->watched = (struct lb_nft_watch_spec){ .table = r->cur.nft.table, .route = r->cur.route };
	if (r->gone)
		restored(r, "reload");
	return 0;
fail:
	spec_fini(&next);
	return rc;
}

void lb_rules_remove(struct lb_rules *r)
{
	char err[512];

	if (!r)
		return;
	/* From here on removals are lb's own wish. */
	memset(&r->watched, 0, sizeof(r->watched));
	r->gone = 0;
	if (r->loop)
		lb_loop_timer_cancel(r->loop, &r->timer);
	if (r->routes_installed && lb_nft_route_remove(&r->cur.route, err, sizeof(err)) < 0)
		lb_err("%s", err);
	if (r->routes_installed && r->cur.own.n_fwd &&
	    lb_nft_fwd_remove(r->cur.own.fwd, r->cur.own.n_fwd, r->cur.own.priority, err,
			      sizeof(err)) < 0)
		lb_err("%s", err);
	if (r->nft_installed && lb_nft_remove(r->cur.nft.table, err, sizeof(err)) < 0)
		lb_err("%s", err);
	r->routes_installed = r->nft_installed = false;
}

int lb_rules_print(const struct lb_config *cfg, FILE *out)
{
	const struct lb_nft_route_spec *rs;
	struct spec s;
	int rc;

	rc = spec_init(&s, cfg, NULL);
	if (rc < 0)
		return rc;
	rs = &s.route;
	lb_nft_ruleset_print(&s.nft, out);
	fprintf(out, "\n# policy routing\n");
	if (rs->ipv4)
		fprintf(out, "ip rule add fwmark 0x%x lookup %u pref %u\n"
			"ip route add local default dev lo table %u\n",
			rs->mark, rs->table, rs->priority, rs->table);
	if (rs->ipv6)
		fprintf(out, "ip -6 rule add fwmark 0x%x lookup %u pref %u\n"
			"ip -6 route add local default dev lo table %u\n",
			rs->mark, rs->table, rs->priority, rs->table);
	lb_rules_owner_print(&s.own, out);
	spec_fini(&s);
	return 0;
}

int lb_rules_owner_update(struct lb_rules *r, const struct lb_rules_owner *own, char *err,
			  size_t errlen)
{
	struct lb_nft_owner next_owner;
	struct lb_nft_spec next;
	size_t changed = 0;
	int rc = 0;

	if (!r->cur.nft.owner || own->buckets != r->cur.own.owner.buckets) {
		snprintf(err, errlen, "ownership: no bucket table of %u buckets installed",
			 own->buckets);
		return -EINVAL;
	}
	next_owner = r->cur.own.owner;
	next_owner.to = own->to;
	next_owner.chance = own->chance;
	next = r->cur.nft;
	next.owner = &next_owner;
	/* A table someone removed comes back whole, with these, at the restore. */
	if (r->nft_installed && !(r->gone & GONE_NFT))
		rc = lb_nft_apply_owner(&r->cur.nft, &next, err, errlen, &changed);
	if (rc < 0)
		return rc;
	memcpy(r->cur.own.to, own->to, own->buckets * sizeof(*own->to));
	memcpy(r->cur.own.chance, own->chance, own->buckets * sizeof(*own->chance));
	if (changed)
		lb_debug("rules: %zu bucket verdicts changed", changed);
	return 0;
}

struct owner_read {
	uint64_t packets[LB_NFT_OWNER_COUNTERS];
	unsigned int found;		/* bit i: counter i was in the table */
};

static void on_owner_counter(void *arg, uint32_t id, const char *what, uint64_t packets)
{
	struct owner_read *o = arg;

	for (unsigned int i = 0; id == LB_NFT_COUNTER_OWNER && i < LB_NFT_OWNER_COUNTERS; i++)
		if (!strcmp(what, lb_nft_owner_counters[i])) {
			o->packets[i] = packets;
			o->found |= 1u << i;
		}
}

int lb_rules_owner_counters(struct lb_rules *r, uint64_t packets[LB_NFT_OWNER_COUNTERS])
{
	struct owner_read o = { 0 };
	char err[256];
	int rc = 0;

	if (r->nft_installed && r->cur.nft.owner && !(r->gone & GONE_NFT)) {
		rc = lb_nft_counters_read(r->cur.nft.table, on_owner_counter, &o, err, sizeof(err));
		/* A table without them (removed meanwhile) counts nothing new. */
		if (rc == 0 && o.found == (1u << LB_NFT_OWNER_COUNTERS) - 1)
			memcpy(r->last, o.packets, sizeof(o.packets));
		else if (rc < 0)
			lb_warn("rules: %s", err);
	}
	for (size_t i = 0; i < LB_NFT_OWNER_COUNTERS; i++)
		packets[i] = r->counted[i] + r->last[i];
	return rc;
}
