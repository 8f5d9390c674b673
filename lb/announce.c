// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Which VIPs this gateway announces, and keeping the kernel's routes in
 * line with that. The master calls lb_announce_sync() after every batch of
 * its loop: health checks and control requests change states inside a
 * batch, so a route follows them within the same turn of the loop; states
 * that workers change (passive health) are seen at the next tick. Each
 * service's epoch, bumped by every state change in shm, says whether it
 * needs another look, so a quiet gateway does almost nothing here.
 *
 * A reload keeps the routes of the VIPs both configs announce under the
 * same table and protocol: a routing daemon would turn a delete and add
 * into a withdrawal and an announcement, and the routers would reshuffle
 * their flows for nothing. Routes the new config does not keep are
 * deleted after those it adds are in place.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "lb/announce.h"
#include "lb/log.h"
#include "nft/announce.h"

/* A route change that failed is tried again this much later. */
#define RETRY_MS 1000

/* A VIP address: what status shows of it, and its services: svcs[first..first+n). */
struct vip {
	struct lb_announce_vip pub;
	size_t first, n;
};

/* One config's VIP addresses and its services' announce states. */
struct layout {
	bool enabled;
	struct lb_nft_announce_spec spec;
	struct vip *vips;
	size_t n_vips;
	size_t *svcs;			/* service indexes, grouped by VIP */
	size_t n_services;
	uint32_t *seen;			/* the epoch each service was last looked at */
	bool *known;			/* seen is valid */
	/* Per service, one bit per family (fam_bit): a client of a family needs a backend of it. */
	uint8_t *servable;
	uint8_t *confirmed;		/* a backend passed a health check, or none are checked */
	uint8_t *families;		/* those it has backends of */
	const struct lb_config *cfg;
};

/* A route the config in force no longer has, still to delete. */
struct stale {
	union lb_sockaddr addr;
	uint8_t plen;
	struct lb_nft_announce_spec spec;
};

struct lb_announce {
	struct lb_nft_announce *dev;
	char dev_name[16];
	struct layout cur, next;
	bool have_next;
	struct lb_shm *shm;
	struct stale *stale;
	size_t n_stale;
	bool dirty;			/* the gateway state changed: every VIP needs a look */
	uint64_t retry_at;		/* loop clock of the next retry; 0: none due */
	uint64_t drain_settle_at, drain_deadline_at;	/* loop clock */
	struct lb_announce_state *st;	/* shared mapping */
};

static const char *const gateway_names[] = {
	[LB_GATEWAY_STARTING] = "starting",
	[LB_GATEWAY_SERVING] = "serving",
	[LB_GATEWAY_DRAINING] = "draining",
	[LB_GATEWAY_DRAINED] = "drained",
	[LB_GATEWAY_STOPPING] = "stopping",
};

const char *lb_announce_plen_suffix(const struct lb_announce_vip *v)
{
	static char buf[8];

	if (v->plen == (v->addr.sa.sa_family == AF_INET ? 32 : 128))
		return "";
	snprintf(buf, sizeof(buf), "/%u", v->plen);
	return buf;
}

const char *lb_announce_gateway_name(enum lb_gateway_state s)
{
	return s < sizeof(gateway_names) / sizeof(gateway_names[0]) ? gateway_names[s] : "unknown";
}

static uint8_t fam_bit(int family)
{
	return family == AF_INET ? 1 : 2;
}

static void layout_free(struct layout *l)
{
	free(l->vips);
	free(l->svcs);
	free(l->seen);
	free(l->known);
	free(l->servable);
	free(l->confirmed);
	free(l->families);
	memset(l, 0, sizeof(*l));
}

struct pair {
	union lb_sockaddr addr;
	uint8_t plen;
	size_t svc;
};

/* Orders prefixes by family, address, then length. */
static int addr_cmp(const union lb_sockaddr *a, uint8_t alen, const union lb_sockaddr *b,
		    uint8_t blen)
{
	int c;

	if (a->sa.sa_family != b->sa.sa_family)
		return a->sa.sa_family < b->sa.sa_family ? -1 : 1;
	if (a->sa.sa_family == AF_INET)
		c = memcmp(&a->in.sin_addr, &b->in.sin_addr, sizeof(a->in.sin_addr));
	else
		c = memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr));
	return c ? c : alen < blen ? -1 : alen > blen;
}

static int pair_cmp(const void *x, const void *y)
{
	const struct pair *a = x, *b = y;
	int c = addr_cmp(&a->addr, a->plen, &b->addr, b->plen);

	if (c)
		return c;
	return a->svc < b->svc ? -1 : a->svc > b->svc;
}

/*
 * cfg's VIP addresses and prefixes (port ranges ignored), sorted and each
 * once, with the services behind each; empty without an announce block.
 */
static int layout_build(struct layout *l, const struct lb_config *cfg)
{
	size_t n = 0, k = 0, ns = cfg->n_services;
	struct pair *pairs;

	memset(l, 0, sizeof(*l));
	/* Nothing to announce, nothing to lay out (100,000 VIPs took 20 ms a reload). */
	if (!cfg->announce.enabled)
		return 0;
	for (size_t i = 0; i < ns; i++)
		n += cfg->services[i].n_vips;
	pairs = calloc(n ? n : 1, sizeof(*pairs));
	l->vips = calloc(n ? n : 1, sizeof(*l->vips));
	l->svcs = calloc(n ? n : 1, sizeof(*l->svcs));
	l->seen = calloc(ns ? ns : 1, sizeof(*l->seen));
	l->known = calloc(ns ? ns : 1, sizeof(*l->known));
	l->servable = calloc(ns ? ns : 1, sizeof(*l->servable));
	l->confirmed = calloc(ns ? ns : 1, sizeof(*l->confirmed));
	l->families = calloc(ns ? ns : 1, sizeof(*l->families));
	if (!pairs || !l->vips || !l->svcs || !l->seen || !l->known || !l->servable ||
	    !l->confirmed || !l->families) {
		free(pairs);
		layout_free(l);
		return -ENOMEM;
	}
	l->n_services = ns;
	for (size_t i = 0; i < ns; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		for (size_t j = 0; j < svc->n_backends; j++)
			l->families[i] |= fam_bit(svc->backends[j].addr.sa.sa_family);
		/* Without health checks there is nothing to wait for. */
		if (svc->health.type == LB_CHECK_NONE)
			l->confirmed[i] = l->families[i];
	}
	for (size_t i = 0; i < ns; i++)
		for (size_t j = 0; j < cfg->services[i].n_vips; j++) {
			pairs[k].addr = cfg->services[i].vips[j];
			lb_addr_set_port(&pairs[k].addr, 0);
			pairs[k].plen = cfg->services[i].vip_plen[j];
			pairs[k++].svc = i;
		}
	qsort(pairs, n, sizeof(*pairs), pair_cmp);
	for (size_t i = 0; i < n; i++) {
		struct vip *v;

		if (i == 0 || addr_cmp(&pairs[i].addr, pairs[i].plen, &pairs[i - 1].addr,
				       pairs[i - 1].plen)) {
			v = &l->vips[l->n_vips++];
			v->pub.addr = pairs[i].addr;
			v->pub.plen = pairs[i].plen;
			v->first = i;
			v->pub.why = "lb is starting";
		} else {
			v = &l->vips[l->n_vips - 1];
		}
		/* One service with two ports on the same address counts once. */
		if (!v->n || l->svcs[v->first + v->n - 1] != pairs[i].svc)
			l->svcs[v->first + v->n++] = pairs[i].svc;
	}
	free(pairs);
	return 0;
}

static struct vip *layout_find(const struct layout *l, const union lb_sockaddr *addr,
			       uint8_t plen)
{
	size_t lo = 0, hi = l->n_vips;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = addr_cmp(&l->vips[mid].pub.addr, l->vips[mid].pub.plen, addr, plen);

		if (c == 0)
			return &l->vips[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct lb_announce *lb_announce_alloc(void)
{
	struct lb_announce *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->st = mmap(NULL, sizeof(*a->st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (a->st == MAP_FAILED) {
		free(a);
		return NULL;
	}
	return a;
}

/* The VIPs status shows, copied into the shared state. */
static void publish(struct lb_announce *a)
{
	const struct layout *l = &a->cur;
	size_t n = l->n_vips < LB_ANNOUNCE_VIPS_SHOWN ? l->n_vips : LB_ANNOUNCE_VIPS_SHOWN;

	a->st->n_vips = l->n_vips;
	a->st->n_announced = 0;
	for (size_t i = 0; i < l->n_vips; i++)
		a->st->n_announced += l->vips[i].pub.announced;
	for (size_t i = 0; i < n; i++)
		a->st->vips[i] = l->vips[i].pub;
	a->st->n_shown = n;
}

void lb_announce_free(struct lb_announce *a)
{
	if (!a)
		return;
	lb_nft_announce_close(a->dev);
	layout_free(&a->cur);
	layout_free(&a->next);
	free(a->stale);
	munmap(a->st, sizeof(*a->st));
	free(a);
}

const struct lb_announce_state *lb_announce_state(const struct lb_announce *a)
{
	return a->st;
}

int lb_announce_open(struct lb_announce *a, const struct lb_config *cfg, char *err, size_t errlen)
{
	int rc;

	if (cfg->announce.enabled && !a->dev) {
		rc = lb_nft_announce_open(&a->dev, cfg->announce.device, err, errlen);
		if (rc < 0)
			return rc;
		snprintf(a->dev_name, sizeof(a->dev_name), "%s", cfg->announce.device);
		lb_info("announce: device %s holds the VIP routes (table %u, protocol %u)",
			a->dev_name, cfg->announce.table, cfg->announce.protocol);
	} else if (cfg->announce.enabled && strcmp(cfg->announce.device, a->dev_name)) {
		lb_warn("announce: device %s stays until lb restarts (the config now says %s)",
			a->dev_name, cfg->announce.device);
	}
	return 0;
}

int lb_announce_prepare(struct lb_announce *a, const struct lb_config *cfg, char *err,
			size_t errlen)
{
	int rc;

	if (a->have_next)
		layout_free(&a->next);
	a->have_next = false;
	rc = layout_build(&a->next, cfg);
	if (rc < 0) {
		snprintf(err, errlen, "announce: out of memory");
		return rc;
	}
	a->have_next = true;
	return 0;
}

static int stale_add(struct lb_announce *a, const struct lb_announce_vip *v,
		     const struct lb_nft_announce_spec *spec)
{
	struct stale *s = realloc(a->stale, (a->n_stale + 1) * sizeof(*s));

	if (!s)
		return -ENOMEM;
	a->stale = s;
	s[a->n_stale++] = (struct stale){ .addr = v->addr, .plen = v->plen, .spec = *spec };
	return 0;
}

void lb_announce_use(struct lb_announce *a, const struct lb_config *cfg, struct lb_shm *shm)
{
	struct layout *old = &a->cur, *l = &a->next;

	if (!a->have_next)
		return;
	l->cfg = cfg;
	l->enabled = cfg->announce.enabled;
	l->spec = (struct lb_nft_announce_spec){
		.table = cfg->announce.table,
		.protocol = cfg->announce.protocol,
	};
	/* Health confirmation carries over by service name. */
	for (size_t i = 0; old->cfg && i < l->n_services; i++) {
		long j = lb_config_service_index(old->cfg, cfg->services[i].name);

		if (j >= 0 && (size_t)j < old->n_services)
			l->confirmed[i] |= old->confirmed[j] & l->families[i];
	}
	for (size_t i = 0; i < old->n_vips; i++) {
		struct lb_announce_vip *o = &old->vips[i].pub;
		struct vip *v;

		if (!o->announced)
			continue;
		v = l->enabled && l->spec.table == old->spec.table &&
		    l->spec.protocol == old->spec.protocol ? layout_find(l, &o->addr, o->plen) : NULL;
		if (v) {
			v->pub.announced = true;
			v->pub.why = NULL;
			v->pub.since = o->since;
		} else if (l->enabled && stale_add(a, o, &old->spec) < 0) {
			/* Closing the device below would take it; here it stays. */
			lb_err("announce: out of memory: the route of a VIP no longer in the "
			       "config stays until lb stops");
		}
	}
	layout_free(old);
	a->cur = *l;
	memset(l, 0, sizeof(*l));
	a->have_next = false;
	a->shm = shm;
	a->dirty = true;
	a->st->configured = a->cur.enabled;
	if (!a->cur.enabled && a->dev) {
		/* Every route lb announced goes with the device. */
		lb_info("announce: no announce block any more: device %s and its routes removed",
			a->dev_name);
		lb_nft_announce_close(a->dev);
		a->dev = NULL;
		a->dev_name[0] = '\0';
		a->n_stale = 0;
	}
	snprintf(a->st->device, sizeof(a->st->device), "%s", a->dev_name);
	a->st->table = a->cur.spec.table;
	a->st->protocol = a->cur.spec.protocol;
	publish(a);
}

/*
 * The families (fam_bit) service i can serve: those it has a usable
 * backend of; with health checks, only once a backend of the family has
 * passed a check since lb started (until then the states in shm are the
 * optimistic ones of a fresh start).
 */
static uint8_t service_servable(struct layout *l, const struct lb_shm *shm, size_t i)
{
	uint8_t fams = 0;

	for (size_t j = 0; j < shm->services[i].n_backends; j++) {
		const struct lb_shm_backend *b = lb_shm_backend(shm, i, j);
		uint8_t bit = fam_bit(b->addr.sa.sa_family);

		if (!lb_shm_backend_usable(b))
			continue;
		/* last_check_*: the master's own fields, and this runs in the master. */
		if (b->last_check_ms && b->last_check_ok)
			l->confirmed[i] |= bit;
		if (l->confirmed[i] & bit)
			fams |= bit;
	}
	return fams;
}

/* Re-reads the services whose epoch moved; true when one's servability changed. */
static bool refresh_services(struct lb_announce *a)
{
	struct layout *l = &a->cur;
	bool changed = false;

	for (size_t i = 0; a->shm && i < l->n_services && i < a->shm->n_services; i++) {
		uint32_t epoch = atomic_load(&a->shm->services[i].epoch);
		uint8_t s;

		/* An unconfirmed family waits for a check result, which bumps no epoch. */
		if (l->known[i] && l->seen[i] == epoch && l->confirmed[i] == l->families[i])
			continue;
		l->known[i] = true;
		l->seen[i] = epoch;
		s = service_servable(l, a->shm, i);
		if (s != l->servable[i]) {
			l->servable[i] = s;
			changed = true;
		}
	}
	return changed;
}

/* Why v is not wanted, or NULL when it is. */
static const char *unwanted(const struct lb_announce *a, const struct vip *v)
{
	const struct layout *l = &a->cur;

	switch (a->st->gateway) {
	case LB_GATEWAY_STARTING:
		return "lb is starting";
	case LB_GATEWAY_DRAINING:
		return "gateway draining";
	case LB_GATEWAY_DRAINED:
		return "gateway drained";
	case LB_GATEWAY_STOPPING:
		return "lb is stopping";
	case LB_GATEWAY_SERVING:
		break;
	}
	for (size_t k = 0; k < v->n; k++)
		if (l->servable[l->svcs[v->first + k]] & fam_bit(v->pub.addr.sa.sa_family))
			return NULL;
	return "no usable backend";
}

static void failed(struct lb_announce *a, const char *err, uint64_t now_ms)
{
	a->st->failures++;
	if (strcmp(a->st->last_error, err))
		lb_err("%s; retrying every %u ms", err, RETRY_MS);
	snprintf(a->st->last_error, sizeof(a->st->last_error), "%s", err);
	a->retry_at = now_ms + RETRY_MS;
}

/* Adds or deletes v's route as wanted; false when the kernel refused. */
static bool apply(struct lb_announce *a, struct lb_announce_vip *v, const char *why,
		  uint64_t now_ms)
{
	/* v is a layout's, never the shared copy: publish() copies it there. */
	char err[256], buf[LB_ADDR_STRLEN];
	bool want = !why;
	int rc;

	v->why = why;
	if (want == v->announced)
		return true;
	if (!a->dev) {
		v->announced = false;
		return true;
	}
	rc = want ? lb_nft_announce_add(a->dev, &a->cur.spec, &v->addr.sa, v->plen, err, sizeof(err))
		  : lb_nft_announce_del(a->dev, &a->cur.spec, &v->addr.sa, v->plen, err, sizeof(err));
	if (rc < 0) {
		if (want)
			v->why = "the kernel refused the route (last_error)";
		failed(a, err, now_ms);
		return false;
	}
	v->announced = want;
	v->since = time(NULL);
	a->st->changes++;
	lb_info("announce: %s%s %s%s%s", lb_addr_format_ip(&v->addr, buf, sizeof(buf)),
		lb_announce_plen_suffix(v), want ? "announced" : "withdrawn", want ? "" : ": ",
		want ? "" : why);
	return true;
}

void lb_announce_sync(struct lb_announce *a, uint64_t now_ms)
{
	struct layout *l = &a->cur;
	bool changed, ok = true;
	size_t kept = 0;
	char err[256];

	/* Without a block nothing is announced: no service needs a look. */
	if (!l->enabled && !a->dirty)
		return;
	changed = refresh_services(a) || a->dirty;

	if (!changed && !(a->retry_at && now_ms >= a->retry_at))
		return;
	a->dirty = false;
	a->retry_at = 0;
	for (size_t i = 0; i < l->n_vips; i++) {
		struct vip *v = &l->vips[i];

		ok = apply(a, &v->pub, l->enabled ? unwanted(a, v) : "no announce block", now_ms) && ok;
	}
	/* After the adds: a VIP that moved to another table is never missing from both. */
	for (size_t i = 0; i < a->n_stale; i++) {
		struct stale *s = &a->stale[i];

		if (a->dev && lb_nft_announce_del(a->dev, &s->spec, &s->addr.sa, s->plen, err,
						  sizeof(err)) < 0) {
			failed(a, err, now_ms);
			a->stale[kept++] = *s;
			ok = false;
			continue;
		}
		a->st->changes++;
	}
	a->n_stale = kept;
	if (ok)
		a->st->last_error[0] = '\0';
	publish(a);
}

void lb_announce_ready(struct lb_announce *a, uint64_t now_ms)
{
	if (a->st->gateway != LB_GATEWAY_STARTING)
		return;
	a->st->gateway = LB_GATEWAY_SERVING;
	a->dirty = true;
	lb_announce_sync(a, now_ms);
}

void lb_announce_stop(struct lb_announce *a, uint64_t now_ms)
{
	if (!a || a->st->gateway == LB_GATEWAY_STOPPING)
		return;
	a->st->gateway = LB_GATEWAY_STOPPING;
	a->dirty = true;
	lb_announce_sync(a, now_ms);
}

int lb_announce_drain(struct lb_announce *a, bool stop, unsigned int timeout_ms,
		      uint64_t now_ms, char *msg, size_t msglen)
{
	unsigned int settle = a->cur.cfg ? a->cur.cfg->announce.settle_ms : 0;
	size_t before = a->st->n_announced;

	if (a->st->gateway == LB_GATEWAY_STARTING || a->st->gateway == LB_GATEWAY_STOPPING) {
		snprintf(msg, msglen, "lb is %s", lb_announce_gateway_name(a->st->gateway));
		return -EAGAIN;
	}
	if (!timeout_ms)
		timeout_ms = a->cur.cfg ? a->cur.cfg->drain_timeout_ms : 0;
	if (settle > timeout_ms)
		settle = timeout_ms;
	a->st->gateway = LB_GATEWAY_DRAINING;
	a->st->drain_since = time(NULL);
	a->st->drain_deadline = a->st->drain_since + (timeout_ms + 999) / 1000;
	a->st->drained_at = 0;
	a->st->drain_stop = stop;
	a->st->drain_timed_out = false;
	a->drain_settle_at = now_ms + settle;
	a->drain_deadline_at = now_ms + timeout_ms;
	a->dirty = true;
	lb_announce_sync(a, now_ms);
	snprintf(msg, msglen, "%zu route%s withdrawn; connections go on for at most %u ms%s",
		 before, before == 1 ? "" : "s", timeout_ms,
		 stop ? ", then lb stops" : "");
	return 0;
}

int lb_announce_resume(struct lb_announce *a, uint64_t now_ms, char *msg, size_t msglen)
{
	if (a->st->gateway != LB_GATEWAY_DRAINING && a->st->gateway != LB_GATEWAY_DRAINED) {
		snprintf(msg, msglen, "the gateway is %s, not drained",
			 lb_announce_gateway_name(a->st->gateway));
		return -EALREADY;
	}
	a->st->gateway = LB_GATEWAY_SERVING;
	a->st->drain_stop = false;
	a->dirty = true;
	lb_announce_sync(a, now_ms);
	snprintf(msg, msglen, "serving: %zu route%s announced", a->st->n_announced,
		 a->st->n_announced == 1 ? "" : "s");
	return 0;
}

int lb_announce_print(const struct lb_config *cfg, FILE *out)
{
	char buf[LB_ADDR_STRLEN];
	struct layout l;

	if (!cfg->announce.enabled)
		return 0;
	if (layout_build(&l, cfg) < 0)
		return -ENOMEM;
	fprintf(out, "\n# announcements, each while lb can serve its VIP (device %s)\n",
		cfg->announce.device);
	for (size_t i = 0; i < l.n_vips; i++) {
		const struct lb_announce_vip *v = &l.vips[i].pub;

		fprintf(out, "ip%s route replace %s/%u dev %s table %u proto %u\n",
			v->addr.sa.sa_family == AF_INET6 ? " -6" : "",
			lb_addr_format_ip(&v->addr, buf, sizeof(buf)), v->plen, cfg->announce.device,
			cfg->announce.table, (unsigned int)cfg->announce.protocol);
	}
	layout_free(&l);
	return 0;
}

bool lb_announce_drain_check(struct lb_announce *a, int64_t active, uint64_t now_ms)
{
	if (a->st->gateway != LB_GATEWAY_DRAINING)
		return false;
	a->st->drain_active = active;
	if (now_ms < a->drain_deadline_at && (active > 0 || now_ms < a->drain_settle_at))
		return false;
	a->st->gateway = LB_GATEWAY_DRAINED;
	a->dirty = true;
	a->st->drained_at = time(NULL);
	a->st->drain_timed_out = active > 0;
	if (active > 0)
		lb_warn("gateway drain: timeout with %lld connections open%s", (long long)active,
			a->st->drain_stop ? "" : "; they go on");
	else
		lb_info("gateway drain: every connection ended");
	return a->st->drain_stop;
}
