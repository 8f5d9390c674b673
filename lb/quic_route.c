// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lb/cidtab.h"
#include "lb/quic_route.h"

#define LONG_HEADER 0x80

/* Per service: its identity in the CID table and how long entries last. */
struct route_svc {
	uint64_t space;			/* the same in every generation: from its name */
	uint32_t ttl;			/* seconds */
};

struct lb_quic_router {
	const struct lb_config *cfg;
	struct lb_shm *shm;
	struct lb_cidtab *cids;
	struct route_svc *svc;
};

void lb_quic_classify(const struct lb_service_conf *svc, int family, const uint8_t *pkt,
		      size_t len, struct lb_quic_dcid *out)
{
	const struct lb_quic_conf *q = &svc->quic;
	uint8_t sid[LB_QUIC_LB_SID_MAX];
	struct lb_quic_hdr h;

	*out = (struct lb_quic_dcid){ .long_header = len && (pkt[0] & LONG_HEADER), .backend = -1,
				      .lb = LB_QUIC_LB_BAD_LENGTH };
	/*
	 * A v1/v2 long header whose later fields are broken still has its
	 * DCID where the invariants (RFC 8999) put it: read it as a packet of
	 * an unknown version would be.
	 */
	if (lb_quic_parse(pkt, len, q->server_cid_len, &h) < 0) {
		uint8_t inv[1 + 4 + 1 + 255];
		size_t n = len < sizeof(inv) ? len : sizeof(inv);

		if (!out->long_header || n < 6)
			return;
		memcpy(inv, pkt, n);
		/* Version 0x0a0a0a0a: reserved for greasing, so never one parse knows. */
		memset(inv + 1, 0x0a, 4);
		if (lb_quic_parse(inv, n, 0, &h) < 0 || h.dcid_len > n)
			return;
		h.dcid = h.dcid ? pkt + (h.dcid - inv) : NULL;
	}
	out->parsed = true;
	out->dcid = h.dcid;
	out->dcid_len = h.dcid_len;
	if (!q->has_lb || !q->lb.server_id_len || !h.dcid_len)
		return;
	out->lb = lb_quic_lb_decode(&q->lb, h.dcid, h.dcid_len, sid);
	if (out->lb == LB_QUIC_LB_ROUTABLE)
		out->backend = lb_config_find_server_id(svc, sid, family);
}

struct lb_quic_router *lb_quic_router_alloc(const struct lb_config *cfg, struct lb_shm *shm)
{
	struct lb_quic_router *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = cfg;
	r->shm = shm;
	r->cids = shm->pool->cids;
	r->svc = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*r->svc));
	if (!r->svc) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		/* The table's own keyed hash of the name: equal in every process and generation. */
		r->svc[i].space = lb_cidtab_key(r->cids, 0, (const uint8_t *)svc->name,
						strlen(svc->name));
		r->svc[i].ttl = (svc->udp_idle_timeout_ms + 999) / 1000 + 1;
	}
	return r;
}

void lb_quic_router_free(struct lb_quic_router *r)
{
	if (!r)
		return;
	free(r->svc);
	free(r);
}

bool lb_quic_enabled(const struct lb_quic_router *r, size_t si)
{
	return r && r->cfg->services[si].quic.enabled;
}

/*
 * Whether backend idx of service si may carry a connection a CID ties to
 * it: up and not disabled (a drain or weight 0 stops new connections, not
 * existing ones), and of the client's family.
 */
static bool backend_alive(const struct lb_quic_router *r, size_t si, unsigned int idx, int family)
{
	const struct lb_shm_backend *b = lb_shm_backend(r->shm, si, idx);

	return b->addr.sa.sa_family == family &&
	       atomic_load_explicit(&b->health, memory_order_relaxed) == LB_HEALTH_UP &&
	       atomic_load_explicit(&b->admin, memory_order_relaxed) != LB_ADMIN_DISABLED;
}

/* The index in service si of the backend in shm slot slot1 - 1, or -1 (not in this generation). */
static int backend_of_slot(const struct lb_quic_router *r, size_t si, uint32_t slot1)
{
	const struct lb_shm_service *ss = &r->shm->services[si];

	for (uint32_t j = 0; j < ss->n_backends; j++)
		if (ss->slots[j] + 1 == slot1)
			return (int)j;
	return -1;
}

static uint64_t cid_key(const struct lb_quic_router *r, size_t si, const uint8_t *cid, size_t len)
{
	return lb_cidtab_key(r->cids, r->svc[si].space, cid, len);
}

void lb_quic_route(const struct lb_quic_router *r, size_t si, int family, const uint8_t *pkt,
		   size_t len, uint32_t now, struct lb_quic_route *out)
{
	struct lb_quic_dcid d;
	int idx = -1;

	*out = (struct lb_quic_route){ .how = LB_QUIC_DROP };
	lb_quic_classify(&r->cfg->services[si], family, pkt, len, &d);
	if (d.backend >= 0 && backend_alive(r, si, (unsigned int)d.backend, family)) {
		out->how = LB_QUIC_BY_CID;
		out->backend = (unsigned int)d.backend;
		return;
	}
	if (d.dcid_len) {
		out->key = cid_key(r, si, d.dcid, d.dcid_len);
		idx = backend_of_slot(r, si, lb_cidtab_get(r->cids, out->key, now));
		if (idx >= 0 && backend_alive(r, si, (unsigned int)idx, family)) {
			out->how = LB_QUIC_BY_LEARNED;
			out->backend = (unsigned int)idx;
			return;
		}
	}
	if (d.long_header) {
		/* Whatever its version: an unknown one is never a reason to drop. */
		out->how = LB_QUIC_BY_SCHEDULER;
		return;
	}
	out->key = 0;
	if (!d.parsed)
		out->why = "short header shorter than the server CID length";
	else if (d.backend >= 0 || idx >= 0)
		out->why = "connection ID of a backend that is down, disabled or of the other family";
	else if (d.lb == LB_QUIC_LB_UNROUTABLE)
		out->why = "unroutable connection ID (config rotation 0b111), not learned";
	else
		out->why = "short header with an unknown connection ID";
}

uint64_t lb_quic_scid_key(const struct lb_quic_router *r, size_t si, const uint8_t *pkt,
			  size_t len)
{
	struct lb_quic_hdr h;

	/* Short headers, nearly all of a connection's packets, stop at one bit. */
	if (!len || !(pkt[0] & LONG_HEADER))
		return 0;
	if (lb_quic_parse(pkt, len, 0, &h) < 0 || !h.scid_len ||
	    h.type == LB_QUIC_TYPE_VERSION_NEGOTIATION)
		return 0;
	return cid_key(r, si, h.scid, h.scid_len);
}

int lb_quic_record(const struct lb_quic_router *r, size_t si, uint64_t key, uint32_t slot1,
		   uint32_t now)
{
	return lb_cidtab_set(r->cids, key, slot1, now + r->svc[si].ttl, now);
}

void lb_quic_count(struct lb_shm *shm, size_t si, enum lb_quic_how how)
{
	struct lb_shm_service *ss = &shm->services[si];
	_Atomic uint64_t *c[] = {
		[LB_QUIC_BY_CID] = &ss->quic_routed_cid,
		[LB_QUIC_BY_LEARNED] = &ss->quic_routed_learned,
		[LB_QUIC_BY_SCHEDULER] = &ss->quic_fallback,
		[LB_QUIC_DROP] = &ss->quic_dropped,
	};

	atomic_fetch_add_explicit(c[how], 1, memory_order_relaxed);
}

const char *lb_quic_how_name(enum lb_quic_how how)
{
	switch (how) {
	case LB_QUIC_BY_CID:
		return "cid";
	case LB_QUIC_BY_LEARNED:
		return "learned";
	case LB_QUIC_BY_SCHEDULER:
		return "scheduler";
	case LB_QUIC_DROP:
		break;
	}
	return "drop";
}
