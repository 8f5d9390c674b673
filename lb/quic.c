// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>

#include "lb/quic.h"

#define LONG_HEADER 0x80
/* RFC 8999: a long header's connection ID length is one octet. */
#define CID_MAX_ANY 255
/* RFC 9001 5.8: a Retry ends with a 16-octet integrity tag. */
#define RETRY_TAG_LEN 16

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Reads a variable-length integer (RFC 9000 16) at *off, advancing it.
 * Returns 0, or -EBADMSG when it runs past len.
 */
static int get_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	size_t n, i;

	if (*off >= len)
		return -EBADMSG;
	n = (size_t)1 << (p[*off] >> 6);
	if (len - *off < n)
		return -EBADMSG;
	*v = p[*off] & 0x3f;
	for (i = 1; i < n; i++)
		*v = *v << 8 | p[*off + i];
	*off += n;
	return 0;
}

/* v1 and v2 give the two type bits (b0 & 0x30) different meanings. */
static enum lb_quic_type long_type(uint32_t version, uint8_t b0)
{
	static const enum lb_quic_type v1[4] = {
		LB_QUIC_TYPE_INITIAL, LB_QUIC_TYPE_0RTT, LB_QUIC_TYPE_HANDSHAKE, LB_QUIC_TYPE_RETRY,
	};
	static const enum lb_quic_type v2[4] = {
		LB_QUIC_TYPE_RETRY, LB_QUIC_TYPE_INITIAL, LB_QUIC_TYPE_0RTT, LB_QUIC_TYPE_HANDSHAKE,
	};
	unsigned int bits = (b0 >> 4) & 3;

	return version == LB_QUIC_V2 ? v2[bits] : v1[bits];
}

/* Reads one length-prefixed connection ID at *off, at most max octets. */
static int get_cid(const uint8_t *p, size_t len, size_t *off, size_t max,
		   const uint8_t **cid, size_t *cid_len)
{
	size_t n;

	if (*off >= len)
		return -EBADMSG;
	n = p[(*off)++];
	if (n > max || len - *off < n)
		return -EBADMSG;
	*cid = n ? p + *off : NULL;
	*cid_len = n;
	*off += n;
	return 0;
}

/* The v1/v2 fields after the SCID: token (Initial), Length, or a Retry's tag. */
static int parse_v1_rest(const uint8_t *p, size_t len, size_t off, struct lb_quic_hdr *out)
{
	uint64_t n;

	if (out->type == LB_QUIC_TYPE_RETRY)
		return len - off >= RETRY_TAG_LEN ? 0 : -EBADMSG;
	if (out->type == LB_QUIC_TYPE_INITIAL) {
		if (get_varint(p, len, &off, &n) < 0 || n > len - off)
			return -EBADMSG;
		out->token = n ? p + off : NULL;
		out->token_len = n;
		off += n;
	}
	if (get_varint(p, len, &off, &n) < 0 || n > len - off)
		return -EBADMSG;
	out->packet_len = off + n;
	return 0;
}

int lb_quic_parse(const uint8_t *pkt, size_t len, size_t short_cid_len, struct lb_quic_hdr *out)
{
	size_t off = 5, max;
	int r;

	memset(out, 0, sizeof(*out));
	if (short_cid_len > LB_QUIC_CID_MAX)
		return -EINVAL;
	if (len < 1)
		return -EBADMSG;
	out->packet_len = len;
	if (!(pkt[0] & LONG_HEADER)) {
		if (len - 1 < short_cid_len)
			return -EBADMSG;
		out->dcid = short_cid_len ? pkt + 1 : NULL;
		out->dcid_len = short_cid_len;
		return 0;
	}
	out->long_header = true;
	if (len < off)
		return -EBADMSG;
	out->version = get_be32(pkt + 1);
	out->version_known = out->version == LB_QUIC_V1 || out->version == LB_QUIC_V2 ||
			     out->version == LB_QUIC_VERSION_NEGOTIATION;
	/*
	 * A Version Negotiation packet echoes the client's CIDs whatever
	 * version it tried, so only the invariants bound them.
	 */
	max = out->version_known && out->version != LB_QUIC_VERSION_NEGOTIATION ?
		LB_QUIC_CID_MAX : CID_MAX_ANY;
	r = get_cid(pkt, len, &off, max, &out->dcid, &out->dcid_len);
	if (r == 0)
		r = get_cid(pkt, len, &off, max, &out->scid, &out->scid_len);
	if (r < 0)
		return r;
	if (!out->version_known)
		return 0;
	if (out->version == LB_QUIC_VERSION_NEGOTIATION) {
		out->type = LB_QUIC_TYPE_VERSION_NEGOTIATION;
		if ((len - off) % 4)
			return -EBADMSG;
		out->versions = len > off ? pkt + off : NULL;
		out->n_versions = (len - off) / 4;
		return 0;
	}
	out->type = long_type(out->version, pkt[0]);
	return parse_v1_rest(pkt, len, off, out);
}

const char *lb_quic_type_name(enum lb_quic_type type)
{
	switch (type) {
	case LB_QUIC_TYPE_VERSION_NEGOTIATION:
		return "version-negotiation";
	case LB_QUIC_TYPE_INITIAL:
		return "initial";
	case LB_QUIC_TYPE_0RTT:
		return "0rtt";
	case LB_QUIC_TYPE_HANDSHAKE:
		return "handshake";
	case LB_QUIC_TYPE_RETRY:
		return "retry";
	case LB_QUIC_TYPE_NONE:
		break;
	}
	return "none";
}

int lb_quic_cid_set(struct lb_quic_cid *cid, const uint8_t *id, size_t len)
{
	if (len > LB_QUIC_CID_MAX)
		return -E2BIG;
	cid->len = (uint8_t)len;
	memset(cid->id, 0, sizeof(cid->id));
	if (len)
		memcpy(cid->id, id, len);
	return 0;
}

bool lb_quic_cid_equal(const struct lb_quic_cid *a, const struct lb_quic_cid *b)
{
	return a->len == b->len && memcmp(a->id, b->id, a->len) == 0;
}

const char *lb_quic_hex_format(const uint8_t *bytes, size_t n, char *buf, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (!size)
		return buf;
	if (n > (size - 1) / 2)
		n = (size - 1) / 2;
	for (i = 0; i < n; i++) {
		buf[2 * i] = digits[bytes[i] >> 4];
		buf[2 * i + 1] = digits[bytes[i] & 0x0f];
	}
	buf[2 * n] = '\0';
	return buf;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int lb_quic_hex_parse(const char *text, uint8_t *out, size_t len, const char **why)
{
	size_t i;

	for (i = 0; text[i]; i++)
		if (hex_digit(text[i]) < 0) {
			if (why)
				*why = "not a hex digit";
			return -EINVAL;
		}
	if (i != 2 * len) {
		if (why)
			*why = "wrong length";
		return -EINVAL;
	}
	/* Every digit was checked above: the casts see only 0..15. */
	for (i = 0; i < len; i++)
		out[i] = (uint8_t)((unsigned int)hex_digit(text[2 * i]) << 4 |
				   (unsigned int)hex_digit(text[2 * i + 1]));
	return 0;
}

int lb_quic_lb_conf_check(const struct lb_quic_lb_conf *conf, const char **why)
{
	const char *w = NULL;

	if (conf->config_id >= LB_QUIC_LB_CONFIG_UNROUTABLE)
		w = "config_id must be 0..6 (7 marks unroutable connection IDs)";
	else if (conf->server_id_len < 1 || conf->server_id_len > LB_QUIC_LB_SID_MAX)
		w = "server_id_len must be 1..15";
	else if (conf->nonce_len < LB_QUIC_LB_NONCE_MIN || conf->nonce_len > LB_QUIC_LB_NONCE_MAX)
		w = "nonce_len must be 4..18";
	else if (conf->server_id_len + conf->nonce_len > LB_QUIC_LB_BODY_MAX)
		w = "server_id_len + nonce_len must be at most 19";
	if (!w)
		return 0;
	if (why)
		*why = w;
	return -EINVAL;
}

size_t lb_quic_lb_cid_len(const struct lb_quic_lb_conf *conf)
{
	return 1 + (size_t)conf->server_id_len + conf->nonce_len;
}

int lb_quic_lb_encode(const struct lb_quic_lb_conf *conf, const uint8_t *server_id,
		      const uint8_t *nonce, uint8_t spare, uint8_t *out)
{
	size_t len = lb_quic_lb_cid_len(conf);

	if (lb_quic_lb_conf_check(conf, NULL) < 0)
		return -EINVAL;
	out[0] = (uint8_t)(conf->config_id << 5 | ((conf->encode_len ? len - 1 : spare) & 0x1f));
	memcpy(out + 1, server_id, conf->server_id_len);
	memcpy(out + 1 + conf->server_id_len, nonce, conf->nonce_len);
	return (int)len;
}

enum lb_quic_lb_result lb_quic_lb_decode(const struct lb_quic_lb_conf *conf, const uint8_t *cid,
					 size_t cid_len, uint8_t *server_id_out)
{
	unsigned int id;

	if (cid_len == 0 || lb_quic_lb_conf_check(conf, NULL) < 0)
		return LB_QUIC_LB_BAD_LENGTH;
	id = lb_quic_lb_config_id(cid[0]);
	if (id == LB_QUIC_LB_CONFIG_UNROUTABLE)
		return LB_QUIC_LB_UNROUTABLE;
	if (id != conf->config_id)
		return LB_QUIC_LB_OTHER_CONFIG;
	if (cid_len < lb_quic_lb_cid_len(conf) || (conf->encode_len && (cid[0] & 0x1f) != cid_len - 1))
		return LB_QUIC_LB_BAD_LENGTH;
	memcpy(server_id_out, cid + 1, conf->server_id_len);
	return LB_QUIC_LB_ROUTABLE;
}

const char *lb_quic_lb_result_name(enum lb_quic_lb_result r)
{
	switch (r) {
	case LB_QUIC_LB_ROUTABLE:
		return "routable";
	case LB_QUIC_LB_UNROUTABLE:
		return "unroutable";
	case LB_QUIC_LB_OTHER_CONFIG:
		return "other-config";
	case LB_QUIC_LB_BAD_LENGTH:
		break;
	}
	return "bad-length";
}
