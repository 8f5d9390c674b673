/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_QUIC_H
#define LB_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * QUIC header parsing and QUIC-LB connection IDs, for routing UDP
 * datagrams of a QUIC service. Pure: no sockets, no clock, no allocation;
 * every function reads only the bytes it is given and is unit-tested and
 * fuzzed on its own.
 *
 * Parsing follows RFC 8999 (the version-independent invariants) for every
 * packet, and RFC 9000 (v1) / RFC 9369 (v2) for the fields those versions
 * add. It never branches on the first byte's bits other than the top one
 * (long or short header): the fixed bit may be greased (RFC 9287) and v2
 * reassigns the type bits, which are decoded only once the version is known.
 */

#define LB_QUIC_V1 0x00000001u
#define LB_QUIC_V2 0x6b3343cfu
/* The version field of a Version Negotiation packet. */
#define LB_QUIC_VERSION_NEGOTIATION 0x00000000u

/* Longest connection ID of v1 and v2 (RFC 9000 17.2); RFC 8999 allows 255. */
#define LB_QUIC_CID_MAX 20
/* Room for a connection ID of any version in hex, plus NUL. */
#define LB_QUIC_HEX_MAX (2 * 255 + 1)

enum lb_quic_type {
	LB_QUIC_TYPE_NONE,		/* short header, or a version we do not know */
	LB_QUIC_TYPE_VERSION_NEGOTIATION,
	LB_QUIC_TYPE_INITIAL,		/* v1 0b00, v2 0b01 */
	LB_QUIC_TYPE_0RTT,		/* v1 0b01, v2 0b10 */
	LB_QUIC_TYPE_HANDSHAKE,		/* v1 0b10, v2 0b11 */
	LB_QUIC_TYPE_RETRY,		/* v1 0b11, v2 0b00 */
};

/*
 * What lb_quic_parse() found. Pointers point into the datagram it was
 * given; lengths not meaningful for the packet are 0 and pointers NULL.
 */
struct lb_quic_hdr {
	bool long_header;
	bool version_known;		/* v1, v2 or Version Negotiation */
	uint32_t version;		/* long header only */
	enum lb_quic_type type;
	const uint8_t *dcid;
	size_t dcid_len;		/* short header: the short_cid_len asked for */
	const uint8_t *scid;		/* long header only */
	size_t scid_len;
	const uint8_t *token;		/* v1/v2 Initial only */
	size_t token_len;
	const uint8_t *versions;	/* Version Negotiation: 4 bytes each, big endian */
	size_t n_versions;
	/*
	 * Bytes of the datagram this packet covers: up to the end of its
	 * Length field's span for v1/v2 Initial, 0-RTT and Handshake (further
	 * packets may be coalesced after it, RFC 9000 12.2), the whole
	 * datagram otherwise.
	 */
	size_t packet_len;
};

/*
 * Parses the header of the first QUIC packet in a UDP payload of len bytes.
 * short_cid_len is the length of the connection IDs the service's servers
 * issue (a short header does not carry it), at most LB_QUIC_CID_MAX.
 * Returns 0 with *out filled, -EINVAL when short_cid_len is too large, or
 * -EBADMSG when the bytes are not a packet: empty; shorter than a field or
 * length says; a v1/v2 connection ID longer than 20 bytes; a v1/v2 Length
 * or token length running past the datagram; a v1/v2 Retry too short for
 * its integrity tag; a Version Negotiation list not a multiple of 4 bytes.
 * A long header of any other version is accepted with connection IDs up to
 * 255 bytes (RFC 8999) and version_known false: only its invariant fields
 * are read.
 */
int lb_quic_parse(const uint8_t *pkt, size_t len, size_t short_cid_len, struct lb_quic_hdr *out);

/* The name of a packet type ("initial", "0rtt", ..., "none"). */
const char *lb_quic_type_name(enum lb_quic_type type);

/*
 * A connection ID as a flow table key: the long-header SCIDs that servers
 * send back, and DCIDs seen from clients.
 */
struct lb_quic_cid {
	uint8_t len;
	uint8_t id[LB_QUIC_CID_MAX];
};

/* Copies id into *cid; -E2BIG (leaving *cid unchanged) when len > 20. */
int lb_quic_cid_set(struct lb_quic_cid *cid, const uint8_t *id, size_t len);
bool lb_quic_cid_equal(const struct lb_quic_cid *a, const struct lb_quic_cid *b);

/*
 * Hex for logs: formats n bytes as lowercase hex into buf (size bytes,
 * truncated to whole bytes when too small); returns buf.
 */
const char *lb_quic_hex_format(const uint8_t *bytes, size_t n, char *buf, size_t size);

/*
 * Parses exactly 2 * len hex digits (either case, no prefix) into out.
 * Returns 0, or -EINVAL with *why (if non-NULL) set to a static phrase
 * ("not a hex digit", "wrong length").
 */
int lb_quic_hex_parse(const char *text, uint8_t *out, size_t len, const char **why);

/*
 * QUIC-LB (draft-ietf-quic-load-balancers-21), plaintext algorithm only:
 * the configuration has no key. A connection ID is
 *
 *   octet 0:   config rotation (top 3 bits) | length or random (low 5 bits)
 *   octets 1.. server ID (server_id_len octets, opaque bytes, in clear)
 *   then       nonce (nonce_len octets), then any bytes the server adds
 *
 * Config rotation 0b111 is reserved: such a CID is always unroutable. With
 * length self-description (encode_len) the low 5 bits are the CID's length
 * minus one (the draft's test vector 07c4605e4504cc4f: config 0, server ID
 * c4605e, nonce 4504cc4f); without it they are random.
 *
 * Left out: the encrypted modes (AES-128-ECB single pass when server ID and
 * nonce make 16 octets, four-pass Feistel otherwise): lb does not link
 * libcrypto. A configuration with a key cannot be expressed here.
 */
#define LB_QUIC_LB_CONFIG_UNROUTABLE 7
#define LB_QUIC_LB_SID_MAX 15
#define LB_QUIC_LB_NONCE_MIN 4
#define LB_QUIC_LB_NONCE_MAX 18
/* Server ID and nonce together (v1's 20-octet limit less the first octet). */
#define LB_QUIC_LB_BODY_MAX 19

struct lb_quic_lb_conf {
	uint8_t config_id;		/* 0..6: the CID's top 3 bits */
	uint8_t server_id_len;		/* 1..15 octets */
	uint8_t nonce_len;		/* 4..18 octets; with server_id_len at most 19 */
	bool encode_len;		/* low 5 bits of octet 0 = CID length - 1 */
};

enum lb_quic_lb_result {
	LB_QUIC_LB_ROUTABLE,		/* server ID extracted */
	LB_QUIC_LB_UNROUTABLE,		/* config rotation 0b111 */
	LB_QUIC_LB_OTHER_CONFIG,	/* config rotation 0..6 but not conf's */
	LB_QUIC_LB_BAD_LENGTH,		/* too short, or self-encoded length disagrees */
};

/*
 * Checks a configuration: 0, or -EINVAL with *why (if non-NULL) naming the
 * field and its range.
 */
int lb_quic_lb_conf_check(const struct lb_quic_lb_conf *conf, const char **why);

/*
 * Length of the CIDs a server using conf issues: 1 + server_id_len +
 * nonce_len. The short-header CID length to parse a service's packets with.
 */
size_t lb_quic_lb_cid_len(const struct lb_quic_lb_conf *conf);

/*
 * Writes the CID for server_id (server_id_len octets) and nonce (nonce_len
 * octets) into out (room for lb_quic_lb_cid_len(conf) octets). spare gives
 * the low 5 bits of octet 0 when the length is not self-encoded (pass
 * random bits: the draft asks that they not link CIDs); ignored otherwise.
 * Returns the CID's length, or -EINVAL for a configuration that
 * lb_quic_lb_conf_check() rejects.
 */
int lb_quic_lb_encode(const struct lb_quic_lb_conf *conf, const uint8_t *server_id,
		      const uint8_t *nonce, uint8_t spare, uint8_t *out);

/*
 * Reads the server ID from a CID of cid_len octets into server_id_out
 * (server_id_len octets, written only when routable). In this order: an
 * empty CID, or any CID when conf fails lb_quic_lb_conf_check(), is
 * BAD_LENGTH; config rotation 0b111 is UNROUTABLE; other config rotation
 * bits than conf's are OTHER_CONFIG (the caller may hold other
 * configurations to try); a CID shorter than lb_quic_lb_cid_len(conf), or
 * with encode_len a CID whose low 5 bits are not cid_len - 1, is
 * BAD_LENGTH: no server of this configuration issued it. Whether the
 * server ID names a backend is the caller's business.
 */
enum lb_quic_lb_result lb_quic_lb_decode(const struct lb_quic_lb_conf *conf, const uint8_t *cid,
					 size_t cid_len, uint8_t *server_id_out);

/* The config rotation bits of a CID's first octet (7: unroutable). */
static inline unsigned int lb_quic_lb_config_id(uint8_t first_octet)
{
	return first_octet >> 5;
}

/* The name of a decode result ("routable", "unroutable", ...). */
const char *lb_quic_lb_result_name(enum lb_quic_lb_result r);

#endif
