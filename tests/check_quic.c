// SPDX-License-Identifier: GPL-2.0-or-later
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/quic.h"
#include "tests/fuzz/quic_invariants.h"

/*
 * Packets from RFC 9001 (v1) and RFC 9369 (v2) appendix A, as far as the
 * parser reads them; each is padded to its Length with filler, since the
 * parser never looks inside the protected payload.
 */
/* RFC 9001 A.2: the client Initial, protected header; Length 0x049e. */
static const char v1_client_initial[] = "c000000001088394c8f03e5157080000449e7b9aec34";
/* RFC 9001 A.3: the server Initial, Length 0x0075. */
static const char v1_server_initial[] = "cf000000010008f067a5502a4262b5004075c0d9";
/* RFC 9001 A.4: a whole Retry (token "token", integrity tag). */
static const char v1_retry[] =
	"ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba";
/* RFC 9001 A.5: a whole short-header packet with an empty DCID. */
static const char v1_short_chacha[] = "4cfe4189655e5cd55c41f69080575d7999c25a5bfb";
/* RFC 9369 A.2: the v2 client Initial (type bits 0b01), Length 0x049e. */
static const char v2_client_initial[] = "d76b3343cf088394c8f03e5157080000449ea0c95e82";
/* RFC 9369 A.4: a whole v2 Retry (type bits 0b00). */
static const char v2_retry[] =
	"cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6";

static const uint8_t rfc_dcid[] = { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 };
static const uint8_t rfc_scid[] = { 0xf0, 0x67, 0xa5, 0x50, 0x2a, 0x42, 0x62, 0xb5 };

/* Decodes hex into a buffer of size bytes (the rest 0x5a filler); returns the hex's length. */
static size_t unhex(const char *hex, uint8_t *buf, size_t size)
{
	size_t n = strlen(hex) / 2;

	ck_assert_uint_le(n, size);
	memset(buf, 0x5a, size);
	ck_assert_int_eq(lb_quic_hex_parse(hex, buf, n, NULL), 0);
	return n;
}

/*
 * Parses len bytes from a heap copy of exactly that size, so a read past
 * the end is caught by valgrind and ASan, and checks the invariants.
 * Fields of *out point into the copy, which stays valid until the next call.
 */
static int parse(const uint8_t *pkt, size_t len, size_t cid_len, struct lb_quic_hdr *out)
{
	static uint8_t *copy;
	const char *broken;
	int r;

	free(copy);
	copy = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, pkt, len);
	r = lb_quic_parse(copy, len, cid_len, out);
	broken = quic_inv_check(copy, len, cid_len, out, r);
	ck_assert_msg(!broken, "invariant broken at len %zu: %s", len, broken);
	return r;
}

static void assert_bytes(const uint8_t *p, size_t n, const uint8_t *want, size_t want_n)
{
	ck_assert_uint_eq(n, want_n);
	ck_assert_ptr_nonnull(p);
	ck_assert_mem_eq(p, want, n);
}

START_TEST(test_v1_client_initial)
{
	uint8_t pkt[1300];
	struct lb_quic_hdr h;
	size_t i;

	unhex(v1_client_initial, pkt, sizeof(pkt));
	ck_assert_int_eq(parse(pkt, 1200, 0, &h), 0);
	ck_assert(h.long_header);
	ck_assert(h.version_known);
	ck_assert_uint_eq(h.version, LB_QUIC_V1);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_INITIAL);
	ck_assert_str_eq(lb_quic_type_name(h.type), "initial");
	assert_bytes(h.dcid, h.dcid_len, rfc_dcid, sizeof(rfc_dcid));
	ck_assert_uint_eq(h.scid_len, 0);
	ck_assert_ptr_null(h.scid);
	ck_assert_uint_eq(h.token_len, 0);
	/* 18 header bytes and Length 1182: the datagram is exactly the packet. */
	ck_assert_uint_eq(h.packet_len, 1200);

	/* Another packet coalesced after it: packet_len marks where it starts. */
	ck_assert_int_eq(parse(pkt, 1300, 0, &h), 0);
	ck_assert_uint_eq(h.packet_len, 1200);

	/* Every prefix is cut short of its Length. */
	for (i = 0; i < 1200; i++)
		ck_assert_int_eq(parse(pkt, i, 0, &h), -EBADMSG);

	/* The short CID length is for short headers only. */
	ck_assert_int_eq(parse(pkt, 1200, 20, &h), 0);
	ck_assert_uint_eq(h.dcid_len, 8);
}
END_TEST

START_TEST(test_v1_server_initial_and_retry)
{
	uint8_t pkt[200];
	struct lb_quic_hdr h;
	size_t n;

	unhex(v1_server_initial, pkt, sizeof(pkt));
	ck_assert_int_eq(parse(pkt, 18 + 0x75, 8, &h), 0);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_INITIAL);
	ck_assert_uint_eq(h.dcid_len, 0);
	ck_assert_ptr_null(h.dcid);
	/* The server's own CID, which lb learns on the way back. */
	assert_bytes(h.scid, h.scid_len, rfc_scid, sizeof(rfc_scid));
	ck_assert_uint_eq(h.packet_len, 18 + 0x75);
	ck_assert_int_eq(parse(pkt, 18 + 0x74, 8, &h), -EBADMSG);

	n = unhex(v1_retry, pkt, sizeof(pkt));
	ck_assert_int_eq(parse(pkt, n, 8, &h), 0);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_RETRY);
	assert_bytes(h.scid, h.scid_len, rfc_scid, sizeof(rfc_scid));
	ck_assert_uint_eq(h.token_len, 0);
	ck_assert_uint_eq(h.packet_len, n);
	/* After the SCID (15 bytes) a Retry needs at least its 16-byte tag. */
	ck_assert_int_eq(parse(pkt, 15 + 16, 8, &h), 0);
	ck_assert_int_eq(parse(pkt, 15 + 15, 8, &h), -EBADMSG);
}
END_TEST

/* A v1 Initial with a token and a two-byte token length, built by hand. */
START_TEST(test_v1_token)
{
	static const uint8_t pkt[] = {
		0xc1, 0, 0, 0, 1, 4, 1, 2, 3, 4, 2, 9, 9,
		0x40, 0x03, 't', 'o', 'k',	/* token length 3 as a 2-byte varint */
		0x80, 0, 0, 0x02, 0xaa, 0xbb,	/* Length 2 as a 4-byte varint */
		0xc0,				/* a coalesced packet's first byte */
	};
	struct lb_quic_hdr h;

	ck_assert_int_eq(parse(pkt, sizeof(pkt), 0, &h), 0);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_INITIAL);
	assert_bytes(h.token, h.token_len, (const uint8_t *)"tok", 3);
	assert_bytes(h.scid, h.scid_len, (const uint8_t *)"\x09\x09", 2);
	ck_assert_uint_eq(h.packet_len, sizeof(pkt) - 1);
	/* The token may not run past the datagram. */
	ck_assert_int_eq(parse(pkt, 17, 0, &h), -EBADMSG);
}
END_TEST

/*
 * A long header with empty CIDs and the rest laid out as type has it: a
 * Retry's tag, or an Initial's empty token and a Length of 1. Returns its
 * length.
 */
static size_t build_long(uint8_t *p, uint8_t b0, uint32_t version, enum lb_quic_type type)
{
	size_t off = 0;

	p[off++] = b0;
	p[off++] = version >> 24;
	p[off++] = version >> 16 & 0xff;
	p[off++] = version >> 8 & 0xff;
	p[off++] = version & 0xff;
	p[off++] = 0;
	p[off++] = 0;
	if (type == LB_QUIC_TYPE_RETRY) {
		memset(p + off, 0x77, 16);
		return off + 16;
	}
	if (type == LB_QUIC_TYPE_INITIAL)
		p[off++] = 0;
	p[off++] = 1;
	p[off++] = 0x99;
	return off;
}

START_TEST(test_v2_types)
{
	/* v2 type bits: 0b00 Retry, 0b01 Initial, 0b10 0-RTT, 0b11 Handshake. */
	static const enum lb_quic_type v1[4] = {
		LB_QUIC_TYPE_INITIAL, LB_QUIC_TYPE_0RTT, LB_QUIC_TYPE_HANDSHAKE, LB_QUIC_TYPE_RETRY,
	};
	static const enum lb_quic_type v2[4] = {
		LB_QUIC_TYPE_RETRY, LB_QUIC_TYPE_INITIAL, LB_QUIC_TYPE_0RTT, LB_QUIC_TYPE_HANDSHAKE,
	};
	uint8_t pkt[1200];
	struct lb_quic_hdr h;
	size_t n;
	unsigned int bits;

	unhex(v2_client_initial, pkt, sizeof(pkt));
	ck_assert_int_eq(parse(pkt, 1200, 0, &h), 0);
	ck_assert_uint_eq(h.version, LB_QUIC_V2);
	ck_assert(h.version_known);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_INITIAL);
	assert_bytes(h.dcid, h.dcid_len, rfc_dcid, sizeof(rfc_dcid));
	ck_assert_uint_eq(h.packet_len, 1200);

	n = unhex(v2_retry, pkt, sizeof(pkt));
	ck_assert_int_eq(parse(pkt, n, 0, &h), 0);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_RETRY);
	assert_bytes(h.scid, h.scid_len, rfc_scid, sizeof(rfc_scid));

	/*
	 * Hand-built: the same first byte means different types in v1 and v2,
	 * and the other first-byte bits (fixed bit, reserved, packet number
	 * length) change nothing.
	 */
	for (bits = 0; bits < 4; bits++) {
		static const uint8_t other[] = { 0x00, 0x4f, 0x0f, 0x45 };
		size_t k;

		for (k = 0; k < sizeof(other); k++) {
			uint8_t b0 = (uint8_t)(0x80 | bits << 4 | other[k]);

			n = build_long(pkt, b0, LB_QUIC_V1, v1[bits]);
			ck_assert_int_eq(parse(pkt, n, 0, &h), 0);
			ck_assert_int_eq(h.type, v1[bits]);
			n = build_long(pkt, b0, LB_QUIC_V2, v2[bits]);
			ck_assert_int_eq(parse(pkt, n, 0, &h), 0);
			ck_assert_int_eq(h.type, v2[bits]);
		}
	}
}
END_TEST

START_TEST(test_short_header)
{
	uint8_t pkt[64];
	struct lb_quic_hdr h;
	size_t n, i;

	/* RFC 9001 A.5: empty DCID. */
	n = unhex(v1_short_chacha, pkt, sizeof(pkt));
	ck_assert_int_eq(parse(pkt, n, 0, &h), 0);
	ck_assert(!h.long_header);
	ck_assert(!h.version_known);
	ck_assert_uint_eq(h.dcid_len, 0);
	ck_assert_ptr_null(h.dcid);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_NONE);
	ck_assert_str_eq(lb_quic_type_name(h.type), "none");
	ck_assert_uint_eq(h.packet_len, n);

	/* The same bytes read with an 8-byte CID: it is whatever follows octet 0. */
	ck_assert_int_eq(parse(pkt, n, 8, &h), 0);
	ck_assert_mem_eq(h.dcid, pkt + 1, 8);
	ck_assert_uint_eq(h.dcid_len, 8);

	/* Neither the fixed bit nor any other low bit matters. */
	for (i = 0; i < 0x80; i += 0x11) {
		pkt[0] = (uint8_t)i;
		ck_assert_int_eq(parse(pkt, 21, 20, &h), 0);
		ck_assert(!h.long_header);
		ck_assert_uint_eq(h.dcid_len, 20);
		/* One byte short of the CID. */
		ck_assert_int_eq(parse(pkt, 20, 20, &h), -EBADMSG);
	}
	ck_assert_int_eq(parse(pkt, 0, 0, &h), -EBADMSG);
	ck_assert_int_eq(parse(pkt, 1, 0, &h), 0);
	ck_assert_int_eq(parse(pkt, sizeof(pkt), LB_QUIC_CID_MAX + 1, &h), -EINVAL);
}
END_TEST

START_TEST(test_version_negotiation)
{
	/* A server's answer to a client that tried version 0x1a2a3a4a: CIDs swapped back. */
	uint8_t pkt[256] = { 0xea, 0, 0, 0, 0 };
	struct lb_quic_hdr h;
	size_t off = 5;

	pkt[off++] = 30;		/* the client's SCID: longer than v1 allows */
	memset(pkt + off, 0xcc, 30);
	off += 30;
	pkt[off++] = 8;
	memcpy(pkt + off, rfc_dcid, 8);
	off += 8;
	memcpy(pkt + off, "\x00\x00\x00\x01\x6b\x33\x43\xcf\x0a\x0a\x0a\x0a", 12);
	off += 12;

	ck_assert_int_eq(parse(pkt, off, 8, &h), 0);
	ck_assert(h.long_header);
	ck_assert(h.version_known);
	ck_assert_uint_eq(h.version, LB_QUIC_VERSION_NEGOTIATION);
	ck_assert_int_eq(h.type, LB_QUIC_TYPE_VERSION_NEGOTIATION);
	ck_assert_uint_eq(h.dcid_len, 30);
	assert_bytes(h.scid, h.scid_len, rfc_dcid, 8);
	ck_assert_uint_eq(h.n_versions, 3);
	ck_assert_mem_eq(h.versions + 4, "\x6b\x33\x43\xcf", 4);
	ck_assert_uint_eq(h.packet_len, off);
	/* A list cut inside a version. */
	ck_assert_int_eq(parse(pkt, off - 1, 8, &h), -EBADMSG);
	ck_assert_int_eq(parse(pkt, off - 4, 8, &h), 0);
	ck_assert_uint_eq(h.n_versions, 2);
	/* An empty list. */
	ck_assert_int_eq(parse(pkt, off - 12, 8, &h), 0);
	ck_assert_uint_eq(h.n_versions, 0);
	ck_assert_ptr_null(h.versions);
}
END_TEST

/* Unknown versions: only the invariants are read, CIDs up to 255 bytes. */
START_TEST(test_unknown_version)
{
	/* Greased (RFC 9000 15), ngtcp2 0.12's "v2draft", a made-up one. */
	static const uint32_t versions[] = { 0x1a2a3a4a, 0x709a50c4, 0xff00001d, 0x12345678 };
	uint8_t pkt[600];
	struct lb_quic_hdr h;
	size_t i, len;

	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		memset(pkt, 0xab, sizeof(pkt));
		pkt[0] = 0x80;		/* no fixed bit, no type: nothing else matters */
		pkt[1] = versions[i] >> 24;
		pkt[2] = versions[i] >> 16 & 0xff;
		pkt[3] = versions[i] >> 8 & 0xff;
		pkt[4] = versions[i] & 0xff;
		pkt[5] = 200;
		pkt[6 + 200] = 255;
		len = 7 + 200 + 255;
		ck_assert_int_eq(parse(pkt, len, 8, &h), 0);
		ck_assert(h.long_header);
		ck_assert(!h.version_known);
		ck_assert_uint_eq(h.version, versions[i]);
		ck_assert_int_eq(h.type, LB_QUIC_TYPE_NONE);
		ck_assert_ptr_nonnull(h.dcid);
		ck_assert_uint_eq(h.dcid_len, 200);
		ck_assert_uint_eq(h.scid_len, 255);
		ck_assert_uint_eq(h.packet_len, len);
		/* Anything may follow; nothing need. */
		ck_assert_int_eq(parse(pkt, sizeof(pkt), 8, &h), 0);
		ck_assert_uint_eq(h.packet_len, sizeof(pkt));
		ck_assert_int_eq(parse(pkt, len - 1, 8, &h), -EBADMSG);
	}
}
END_TEST

/* v1 and v2 bound CIDs to 20 bytes; the same lengths pass in an unknown version. */
START_TEST(test_cid_limits)
{
	static const uint32_t versions[] = { LB_QUIC_V1, LB_QUIC_V2, 0x0a0a0a0a };
	static const size_t scids[] = { 0, 20, 21 };
	struct lb_quic_hdr h;
	size_t i, d, j;

	for (i = 0; i < 3; i++)
		for (d = 19; d <= 21; d++)
			for (j = 0; j < 3; j++) {
				size_t s = scids[j];
				uint8_t pkt[128] = { 0xe0 };	/* v1 Handshake, v2 0-RTT */
				size_t off = 5, len;
				int want;

				pkt[1] = versions[i] >> 24;
				pkt[2] = versions[i] >> 16 & 0xff;
				pkt[3] = versions[i] >> 8 & 0xff;
				pkt[4] = versions[i] & 0xff;
				pkt[off++] = (uint8_t)d;
				off += d;
				pkt[off++] = (uint8_t)s;
				off += s;
				pkt[off++] = 0x01;	/* Length 1 */
				len = off + 1;
				want = i < 2 && (d > 20 || s > 20) ? -EBADMSG : 0;
				ck_assert_msg(parse(pkt, len, 0, &h) == want, "version %zu dcid %zu scid %zu",
					      i, d, s);
				if (want == 0) {
					ck_assert_uint_eq(h.dcid_len, d);
					ck_assert_uint_eq(h.scid_len, s);
				}
			}
}
END_TEST

/* Lengths at every boundary: a length byte at the very end, past it, on it. */
START_TEST(test_truncated)
{
	/* v1 0-RTT: DCID 4, SCID 3, Length 5 (1-byte varint), payload 5. */
	static const uint8_t pkt[] = {
		0xd0, 0, 0, 0, 1, 4, 1, 2, 3, 4, 3, 5, 6, 7, 0x05, 1, 2, 3, 4, 5,
	};
	/* Unknown version: DCID 2, SCID 1, then payload. */
	static const uint8_t unk[] = { 0xff, 0xde, 0xad, 0xbe, 0xef, 2, 1, 2, 1, 7, 'x', 'y' };
	struct lb_quic_hdr h;
	size_t i;

	for (i = 0; i <= sizeof(pkt); i++)
		ck_assert_int_eq(parse(pkt, i, 4, &h), i == sizeof(pkt) ? 0 : -EBADMSG);
	for (i = 0; i <= sizeof(unk); i++)
		ck_assert_int_eq(parse(unk, i, 4, &h), i >= 10 ? 0 : -EBADMSG);
	/* A varint whose length prefix says 8 bytes with fewer left. */
	ck_assert_int_eq(parse((const uint8_t *)"\xd0\0\0\0\1\0\0\xc0\0\0", 10, 0, &h), -EBADMSG);
	/* A Length larger than what follows, in each varint size. */
	ck_assert_int_eq(parse((const uint8_t *)"\xd0\0\0\0\1\0\0\x02\x01", 9, 0, &h), -EBADMSG);
	ck_assert_int_eq(parse((const uint8_t *)"\xd0\0\0\0\1\0\0\x40\x02\x01", 10, 0, &h), -EBADMSG);
	ck_assert_int_eq(parse((const uint8_t *)"\xd0\0\0\0\1\0\0\x40\x01\x01", 10, 0, &h), 0);
	ck_assert_int_eq(parse((const uint8_t *)"\xd0\0\0\0\1\0\0\xff\xff\xff\xff\xff\xff\xff\xff\x01", 16,
			       0, &h), -EBADMSG);
}
END_TEST

/* Random bytes at random lengths, biased towards plausible headers. */
START_TEST(test_garbage)
{
	static const uint32_t versions[] = { LB_QUIC_V1, LB_QUIC_V2, 0, 0x1a2a3a4a };
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint8_t pkt[300];
	struct lb_quic_hdr h;
	size_t i, j, len;
	unsigned int ok = 0;

	for (i = 0; i < 50000; i++) {
		for (j = 0; j < sizeof(pkt); j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			pkt[j] = (uint8_t)x;
		}
		len = x % sizeof(pkt);
		if (x & 0x100) {
			uint32_t v = versions[(x >> 9) % 4];

			pkt[0] |= 0x80;
			pkt[1] = v >> 24, pkt[2] = v >> 16 & 0xff, pkt[3] = v >> 8 & 0xff, pkt[4] = v & 0xff;
			pkt[5] &= 0x1f;
			if (6u + pkt[5] < sizeof(pkt))
				pkt[6 + pkt[5]] &= 0x1f;
		}
		if (parse(pkt, len, (x >> 20) % 22, &h) == 0)
			ok++;
	}
	/* Enough got through to exercise the success paths too. */
	ck_assert_uint_gt(ok, 5000);
}
END_TEST

START_TEST(test_hex)
{
	uint8_t b[4];
	char buf[LB_QUIC_HEX_MAX];
	const char *why = NULL;

	ck_assert_int_eq(lb_quic_hex_parse("0aFf10", b, 3, &why), 0);
	ck_assert_mem_eq(b, "\x0a\xff\x10", 3);
	ck_assert_str_eq(lb_quic_hex_format(b, 3, buf, sizeof(buf)), "0aff10");
	ck_assert_str_eq(lb_quic_hex_format(b, 3, buf, 6), "0aff");
	ck_assert_str_eq(lb_quic_hex_format(b, 0, buf, sizeof(buf)), "");
	ck_assert_int_eq(lb_quic_hex_parse("0aff1", b, 3, &why), -EINVAL);
	ck_assert_str_eq(why, "wrong length");
	ck_assert_int_eq(lb_quic_hex_parse("0aff1000", b, 3, &why), -EINVAL);
	ck_assert_str_eq(why, "wrong length");
	ck_assert_int_eq(lb_quic_hex_parse("0x0aff", b, 2, &why), -EINVAL);
	ck_assert_str_eq(why, "not a hex digit");
	ck_assert_int_eq(lb_quic_hex_parse("", b, 0, NULL), 0);
}
END_TEST

START_TEST(test_cid)
{
	struct lb_quic_cid a, b;
	uint8_t id[21];

	memset(id, 7, sizeof(id));
	ck_assert_int_eq(lb_quic_cid_set(&a, id, 20), 0);
	ck_assert_int_eq(lb_quic_cid_set(&b, id, 20), 0);
	ck_assert(lb_quic_cid_equal(&a, &b));
	ck_assert_int_eq(lb_quic_cid_set(&b, id, 21), -E2BIG);
	ck_assert_uint_eq(b.len, 20);
	ck_assert_int_eq(lb_quic_cid_set(&b, id, 19), 0);
	ck_assert(!lb_quic_cid_equal(&a, &b));
	id[0] = 8;
	ck_assert_int_eq(lb_quic_cid_set(&b, id, 20), 0);
	ck_assert(!lb_quic_cid_equal(&a, &b));
	ck_assert_int_eq(lb_quic_cid_set(&a, NULL, 0), 0);
	ck_assert_int_eq(lb_quic_cid_set(&b, NULL, 0), 0);
	ck_assert(lb_quic_cid_equal(&a, &b));
}
END_TEST

/* draft-ietf-quic-load-balancers-21 appendix A, "Unencrypted CIDs", first row. */
START_TEST(test_lb_draft_vector)
{
	static const struct lb_quic_lb_conf conf = {
		.config_id = 0, .server_id_len = 3, .nonce_len = 4, .encode_len = true,
	};
	static const uint8_t sid[] = { 0xc4, 0x60, 0x5e }, nonce[] = { 0x45, 0x04, 0xcc, 0x4f };
	static const uint8_t want[] = { 0x07, 0xc4, 0x60, 0x5e, 0x45, 0x04, 0xcc, 0x4f };
	uint8_t cid[LB_QUIC_CID_MAX], got[LB_QUIC_LB_SID_MAX];

	ck_assert_uint_eq(lb_quic_lb_cid_len(&conf), 8);
	ck_assert_int_eq(lb_quic_lb_encode(&conf, sid, nonce, 0x1f, cid), 8);
	ck_assert_mem_eq(cid, want, 8);
	ck_assert_int_eq(lb_quic_lb_decode(&conf, want, 8, got), LB_QUIC_LB_ROUTABLE);
	ck_assert_mem_eq(got, sid, 3);
}
END_TEST

START_TEST(test_lb_round_trips)
{
	uint64_t x = 42;
	uint8_t sid[LB_QUIC_LB_SID_MAX], nonce[LB_QUIC_LB_NONCE_MAX], cid[LB_QUIC_CID_MAX + 4];
	uint8_t got[LB_QUIC_LB_SID_MAX];
	unsigned int id, s, n, enc, k;
	unsigned int count = 0;

	for (id = 0; id < 7; id++)
		for (s = 1; s <= LB_QUIC_LB_SID_MAX; s++)
			for (n = LB_QUIC_LB_NONCE_MIN; s + n <= LB_QUIC_LB_BODY_MAX; n++)
				for (enc = 0; enc < 2; enc++) {
					struct lb_quic_lb_conf c = {
						.config_id = (uint8_t)id, .server_id_len = (uint8_t)s,
						.nonce_len = (uint8_t)n, .encode_len = enc,
					};
					struct lb_quic_lb_conf other = c;
					uint8_t spare;
					int len;

					for (k = 0; k < sizeof(nonce); k++) {
						x ^= x << 13, x ^= x >> 7, x ^= x << 17;
						nonce[k] = (uint8_t)x;
						if (k < sizeof(sid))
							sid[k] = (uint8_t)(x >> 8);
					}
					spare = (uint8_t)(x >> 16);
					ck_assert_int_eq(lb_quic_lb_conf_check(&c, NULL), 0);
					len = lb_quic_lb_encode(&c, sid, nonce, spare, cid);
					ck_assert_int_eq(len, 1 + s + n);
					ck_assert_uint_eq(cid[0] >> 5, id);
					ck_assert_uint_eq(cid[0] & 0x1f, enc ? (unsigned int)len - 1 : spare & 0x1fu);
					ck_assert_mem_eq(cid + 1, sid, s);
					ck_assert_mem_eq(cid + 1 + s, nonce, n);
					memset(got, 0, sizeof(got));
					ck_assert_int_eq(lb_quic_lb_decode(&c, cid, len, got), LB_QUIC_LB_ROUTABLE);
					ck_assert_mem_eq(got, sid, s);

					/* One octet short: no server of c issued it. */
					ck_assert_int_eq(lb_quic_lb_decode(&c, cid, len - 1, got),
							 LB_QUIC_LB_BAD_LENGTH);
					/* Octets the server added for its own use. */
					cid[len] = 0xee;
					ck_assert_int_eq(lb_quic_lb_decode(&c, cid, len + 1, got),
							 enc ? LB_QUIC_LB_BAD_LENGTH : LB_QUIC_LB_ROUTABLE);
					/* Another configuration's rotation bits. */
					other.config_id = (uint8_t)((id + 1) % 7);
					ck_assert_int_eq(lb_quic_lb_decode(&other, cid, len, got),
							 LB_QUIC_LB_OTHER_CONFIG);
					count++;
				}
	/* Server ID lengths 1..15, each with nonces from 4 to 19 - s: 15 + 14 + ... + 1. */
	ck_assert_uint_eq(count, 7 * 2 * 120);
}
END_TEST

START_TEST(test_lb_unroutable)
{
	static const struct lb_quic_lb_conf conf = { .config_id = 6, .server_id_len = 2, .nonce_len = 6 };
	uint8_t cid[9] = { 0 }, got[2] = { 0x55, 0x55 };
	unsigned int b;

	/* 0b111 whatever the low bits and length; server ID never written. */
	for (b = 0xe0; b <= 0xff; b++) {
		cid[0] = (uint8_t)b;
		ck_assert_int_eq(lb_quic_lb_decode(&conf, cid, 9, got), LB_QUIC_LB_UNROUTABLE);
		ck_assert_int_eq(lb_quic_lb_decode(&conf, cid, 1, got), LB_QUIC_LB_UNROUTABLE);
	}
	ck_assert_mem_eq(got, "\x55\x55", 2);
	ck_assert_str_eq(lb_quic_lb_result_name(LB_QUIC_LB_UNROUTABLE), "unroutable");
	ck_assert_str_eq(lb_quic_lb_result_name(LB_QUIC_LB_ROUTABLE), "routable");
	ck_assert_str_eq(lb_quic_lb_result_name(LB_QUIC_LB_OTHER_CONFIG), "other-config");
	ck_assert_str_eq(lb_quic_lb_result_name(LB_QUIC_LB_BAD_LENGTH), "bad-length");
	ck_assert_uint_eq(lb_quic_lb_config_id(0xc0), 6);
	ck_assert_uint_eq(lb_quic_lb_config_id(0xff), LB_QUIC_LB_CONFIG_UNROUTABLE);
	/* An empty CID names nothing. */
	ck_assert_int_eq(lb_quic_lb_decode(&conf, cid, 0, got), LB_QUIC_LB_BAD_LENGTH);
}
END_TEST

START_TEST(test_lb_length_self_description)
{
	static const struct lb_quic_lb_conf conf = {
		.config_id = 1, .server_id_len = 2, .nonce_len = 4, .encode_len = true,
	};
	/* config 1, length 7 - 1: routable; the same with the length bits off by one: not. */
	uint8_t cid[7] = { 0x26, 0xab, 0xcd, 1, 2, 3, 4 }, got[2];

	ck_assert_int_eq(lb_quic_lb_decode(&conf, cid, 7, got), LB_QUIC_LB_ROUTABLE);
	ck_assert_mem_eq(got, "\xab\xcd", 2);
	cid[0] = 0x27;
	ck_assert_int_eq(lb_quic_lb_decode(&conf, cid, 7, got), LB_QUIC_LB_BAD_LENGTH);
	cid[0] = 0x25;
	ck_assert_int_eq(lb_quic_lb_decode(&conf, cid, 7, got), LB_QUIC_LB_BAD_LENGTH);
}
END_TEST

START_TEST(test_lb_conf_check)
{
	static const struct {
		struct lb_quic_lb_conf conf;
		const char *why;
	} bad[] = {
		{ { 7, 2, 6, false }, "config_id must be 0..6 (7 marks unroutable connection IDs)" },
		{ { 0, 0, 6, false }, "server_id_len must be 1..15" },
		{ { 0, 16, 4, false }, "server_id_len must be 1..15" },
		{ { 0, 2, 3, false }, "nonce_len must be 4..18" },
		{ { 0, 1, 19, false }, "nonce_len must be 4..18" },
		{ { 0, 2, 18, false }, "server_id_len + nonce_len must be at most 19" },
		{ { 0, 15, 5, true }, "server_id_len + nonce_len must be at most 19" },
	};
	uint8_t buf[64] = { 0 }, got[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		ck_assert_int_eq(lb_quic_lb_conf_check(&bad[i].conf, &why), -EINVAL);
		ck_assert_str_eq(why, bad[i].why);
		ck_assert_int_eq(lb_quic_lb_encode(&bad[i].conf, buf, buf, 0, got), -EINVAL);
		ck_assert_int_eq(lb_quic_lb_decode(&bad[i].conf, buf, sizeof(buf), got), LB_QUIC_LB_BAD_LENGTH);
	}
	{
		const struct lb_quic_lb_conf edge = { 6, 15, 4, true }, edge2 = { 0, 1, 18, false };

		ck_assert_int_eq(lb_quic_lb_conf_check(&edge, NULL), 0);
		ck_assert_int_eq(lb_quic_lb_conf_check(&edge2, NULL), 0);
		ck_assert_uint_eq(lb_quic_lb_cid_len(&edge), LB_QUIC_CID_MAX);
	}
}
END_TEST

/* Parse then decode, as lb will: a short header whose DCID a server encoded. */
START_TEST(test_lb_from_packets)
{
	static const struct lb_quic_lb_conf conf = {
		.config_id = 2, .server_id_len = 2, .nonce_len = 8, .encode_len = true,
	};
	static const uint8_t sid[] = { 0x0b, 0x02 }, nonce[] = "noncenon";
	uint8_t pkt[1200] = { 0x41 }, got[2];
	struct lb_quic_hdr h;
	int n;

	n = lb_quic_lb_encode(&conf, sid, nonce, 0, pkt + 1);
	ck_assert_int_eq(n, 11);
	ck_assert_int_eq(parse(pkt, 40, lb_quic_lb_cid_len(&conf), &h), 0);
	ck_assert_int_eq(lb_quic_lb_decode(&conf, h.dcid, h.dcid_len, got), LB_QUIC_LB_ROUTABLE);
	ck_assert_mem_eq(got, sid, 2);

	/* The RFC's client Initial: a client-chosen DCID (0x83: config 4) is not ours. */
	unhex(v1_client_initial, pkt, sizeof(pkt));
	ck_assert_int_eq(parse(pkt, sizeof(pkt), lb_quic_lb_cid_len(&conf), &h), 0);
	ck_assert_int_eq(lb_quic_lb_decode(&conf, h.dcid, h.dcid_len, got), LB_QUIC_LB_OTHER_CONFIG);
}
END_TEST

static Suite *quic_suite(void)
{
	Suite *s = suite_create("quic");
	TCase *tc = tcase_create("parse");
	TCase *lb = tcase_create("quic-lb");

	tcase_add_test(tc, test_v1_client_initial);
	tcase_add_test(tc, test_v1_server_initial_and_retry);
	tcase_add_test(tc, test_v1_token);
	tcase_add_test(tc, test_v2_types);
	tcase_add_test(tc, test_short_header);
	tcase_add_test(tc, test_version_negotiation);
	tcase_add_test(tc, test_unknown_version);
	tcase_add_test(tc, test_cid_limits);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_hex);
	tcase_add_test(tc, test_cid);
	/* Valgrind runs these in one process: the random test takes a while there. */
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tcase_add_test(lb, test_lb_draft_vector);
	tcase_add_test(lb, test_lb_round_trips);
	tcase_add_test(lb, test_lb_unroutable);
	tcase_add_test(lb, test_lb_length_self_description);
	tcase_add_test(lb, test_lb_conf_check);
	tcase_add_test(lb, test_lb_from_packets);
	suite_add_tcase(s, lb);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(quic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
