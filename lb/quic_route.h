/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_QUIC_ROUTE_H
#define LB_QUIC_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/config.h"
#include "lb/quic.h"
#include "lb/shm.h"

/*
 * QUIC-aware routing for the UDP data plane (docs/design.md, "QUIC
 * routing"). A datagram from a client ip:port that has a flow goes to that
 * flow's backend (the kernel hands it to the flow's own socket); one from
 * a new ip:port (a new connection, or a client whose NAT rebound it or who
 * moved) is routed here, in QUIC-LB's order:
 *   1. its DCID carries a QUIC-LB server ID of one of the service's
 *      backends: that backend;
 *   2. its DCID is a CID lb learned (shared memory, every worker): the
 *      backend it was learned from;
 *   3. a long header: the service's scheduler, and its DCID recorded for
 *      the backend chosen, so that the client's retransmissions from
 *      elsewhere follow it;
 *   4. a short header: dropped and counted.
 * CIDs are learned from the SCID of the backends' long-header packets
 * (the server's own CIDs, which its clients then send as DCIDs). Knows no
 * sockets: the caller passes bytes and the time in seconds.
 */
struct lb_quic_router;

enum lb_quic_how {
	LB_QUIC_BY_CID,			/* the backend a QUIC-LB server ID names */
	LB_QUIC_BY_LEARNED,		/* the backend a learned CID names */
	LB_QUIC_BY_SCHEDULER,		/* the service's scheduler (long headers) */
	LB_QUIC_DROP,			/* a short header whose DCID is neither */
};

struct lb_quic_route {
	enum lb_quic_how how;
	unsigned int backend;		/* BY_CID, BY_LEARNED: its index in the service */
	uint64_t key;			/* BY_LEARNED, BY_SCHEDULER: the DCID's table key; 0: none */
	const char *why;		/* DROP: why, for the log */
};

/*
 * What the first bytes of a datagram say, under a service's QUIC settings
 * (pure: the config and the bytes only).
 */
struct lb_quic_dcid {
	bool long_header;
	bool parsed;			/* false: not even a QUIC header (too short for its fields) */
	const uint8_t *dcid;		/* into the datagram; NULL when empty or not parsed */
	size_t dcid_len;
	int backend;			/* the backend of the family its QUIC-LB server ID names, or -1 */
	enum lb_quic_lb_result lb;	/* the QUIC-LB decode (BAD_LENGTH without "lb") */
};

/*
 * Reads the DCID of a datagram of len bytes for svc (a QUIC service): a
 * long header's per its length octet, a short header's as quic's
 * server_cid_len octets; and, with QUIC-LB, the backend of family
 * (AF_INET, AF_INET6) its server ID names. Never branches on first-octet
 * bits other than the header form.
 */
void lb_quic_classify(const struct lb_service_conf *svc, int family, const uint8_t *pkt,
		      size_t len, struct lb_quic_dcid *out);

/* A router for cfg over shm (one per worker). Returns NULL with errno set. */
struct lb_quic_router *lb_quic_router_alloc(const struct lb_config *cfg, struct lb_shm *shm);
void lb_quic_router_free(struct lb_quic_router *r);

/* Whether service si is routed by QUIC. */
bool lb_quic_enabled(const struct lb_quic_router *r, size_t si);

/*
 * Routes the datagram (pkt, len) that opens a flow of QUIC service si
 * for a client of family (AF_INET, AF_INET6), at now. A backend named by
 * a CID is taken when it is up and not disabled (draining is fine: the
 * connection is not new) and of the client's family; otherwise the CID
 * does not route.
 */
void lb_quic_route(const struct lb_quic_router *r, size_t si, int family, const uint8_t *pkt,
		   size_t len, uint32_t now, struct lb_quic_route *out);

/*
 * The table key of the SCID of a datagram that a backend of service si
 * sent, when it starts with a long header (any version but Version
 * Negotiation, whose SCID is the client's) carrying one; else 0.
 */
uint64_t lb_quic_scid_key(const struct lb_quic_router *r, size_t si, const uint8_t *pkt,
			  size_t len);

/*
 * Records key for backend slot1 (its shm slot + 1) of service si, or keeps
 * it alive: it lasts udp_idle_timeout_ms (rounded up to seconds, plus
 * one) past now. Returns 0, or -ENOSPC/-EAGAIN as lb_cidtab_set.
 */
int lb_quic_record(const struct lb_quic_router *r, size_t si, uint64_t key, uint32_t slot1,
		   uint32_t now);

/* Counts a routing decision in service si's counters. */
void lb_quic_count(struct lb_shm *shm, size_t si, enum lb_quic_how how);

/* The name of a decision ("cid", "learned", "scheduler", "drop"). */
const char *lb_quic_how_name(enum lb_quic_how how);

#endif
