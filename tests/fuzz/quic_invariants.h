/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_TESTS_QUIC_INVARIANTS_H
#define LB_TESTS_QUIC_INVARIANTS_H
/*
 * What must hold after any lb_quic_parse() call, whatever the input: shared
 * by tests/check_quic.c (on hand-made and random inputs) and the
 * fuzz_quic harness. Each returns NULL, or the first rule broken.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/quic.h"

/* A field lies inside the datagram, and is NULL exactly when empty. */
static inline int quic_inv_field(const uint8_t *pkt, size_t len, const uint8_t *p, size_t n)
{
	if (!n)
		return p == NULL;
	return p && p >= pkt && p < pkt + len && n <= (size_t)(pkt + len - p);
}

static inline const char *quic_inv_long(const uint8_t *pkt, size_t len, const struct lb_quic_hdr *h)
{
	size_t scid_off = 7 + h->dcid_len, rest;
	uint32_t v;
	int vn, known;

	/* Before reading anything: the fields must fit. */
	if (h->dcid_len > 255 || h->scid_len > 255 || len < scid_off + h->scid_len)
		return "long header: fields past the datagram";
	v = (uint32_t)pkt[1] << 24 | (uint32_t)pkt[2] << 16 | (uint32_t)pkt[3] << 8 | pkt[4];
	vn = v == LB_QUIC_VERSION_NEGOTIATION;
	known = v == LB_QUIC_V1 || v == LB_QUIC_V2 || vn;
	if (h->version != v || h->version_known != known)
		return "long header: version";
	if (h->dcid_len != pkt[5] || (h->dcid_len && h->dcid != pkt + 6))
		return "long header: dcid not where its length byte says";
	if (h->scid_len != pkt[scid_off - 1] || (h->scid_len && h->scid != pkt + scid_off))
		return "long header: scid not where its length byte says";
	if (known && !vn && (h->dcid_len > LB_QUIC_CID_MAX || h->scid_len > LB_QUIC_CID_MAX))
		return "v1/v2 connection ID longer than 20";
	if (known != (h->type != LB_QUIC_TYPE_NONE) || vn != (h->type == LB_QUIC_TYPE_VERSION_NEGOTIATION))
		return "type does not match the version";
	if (h->token_len && h->type != LB_QUIC_TYPE_INITIAL)
		return "token outside an Initial";
	if (!vn)
		return h->versions || h->n_versions ? "version list outside Version Negotiation" : NULL;
	rest = len - scid_off - h->scid_len;
	if (4 * h->n_versions != rest || (rest && h->versions != pkt + scid_off + h->scid_len))
		return "version list is not the rest of the datagram";
	return NULL;
}

static inline const char *quic_inv_check(const uint8_t *pkt, size_t len, size_t short_cid_len,
					 const struct lb_quic_hdr *h, int r)
{
	if (short_cid_len > LB_QUIC_CID_MAX)
		return r == -EINVAL ? NULL : "short_cid_len over 20 accepted";
	if (r == -EBADMSG)
		return NULL;
	if (r != 0)
		return "unexpected return value";
	if (!len || h->long_header != !!(pkt[0] & 0x80))
		return "header form";
	if (!quic_inv_field(pkt, len, h->dcid, h->dcid_len) ||
	    !quic_inv_field(pkt, len, h->scid, h->scid_len) ||
	    !quic_inv_field(pkt, len, h->token, h->token_len) ||
	    !quic_inv_field(pkt, len, h->versions, 4 * h->n_versions))
		return "a field outside the datagram";
	if (!h->packet_len || h->packet_len > len)
		return "packet_len";
	if (h->packet_len != len && h->type != LB_QUIC_TYPE_INITIAL && h->type != LB_QUIC_TYPE_0RTT &&
	    h->type != LB_QUIC_TYPE_HANDSHAKE)
		return "packet_len short of the datagram without a Length field";
	if (h->long_header)
		return quic_inv_long(pkt, len, h);
	if (h->dcid_len != short_cid_len || (short_cid_len && h->dcid != pkt + 1) || h->scid_len ||
	    h->version || h->version_known || h->type != LB_QUIC_TYPE_NONE || h->packet_len != len)
		return "short header fields";
	return NULL;
}

#endif
