// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the QUIC header parser and the QUIC-LB decoder.
 * The input is one UDP payload, as lb receives it (the seed corpus is real
 * datagrams captured between ngtcp2's client and server, and quicpeer's; see
 * tests/fuzz/capture-quic.sh). It is parsed with several short-header CID
 * lengths, and so are the packets coalesced after the first; every result
 * must keep the invariants of tests/fuzz/quic_invariants.h. Each parsed
 * DCID and SCID goes through the QUIC-LB decoder under a few
 * configurations, and a routable one must encode back to the same octets.
 * Build:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -std=gnu11 -I. tests/fuzz/fuzz_quic.c lb/quic.c -o fuzz_quic
 *   ./fuzz_quic tests/fuzz/corpus/quic
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/quic.h"
#include "tests/fuzz/quic_invariants.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct lb_quic_lb_conf confs[] = {
	{ .config_id = 0, .server_id_len = 3, .nonce_len = 4, .encode_len = true },
	{ .config_id = 1, .server_id_len = 2, .nonce_len = 6, .encode_len = true },
	{ .config_id = 2, .server_id_len = 1, .nonce_len = 4, .encode_len = false },
	{ .config_id = 6, .server_id_len = 15, .nonce_len = 4, .encode_len = false },
};

static void fail(const char *what, size_t cid_len)
{
	fprintf(stderr, "fuzz_quic: %s (short CID length %zu)\n", what, cid_len);
	abort();
}

/* A routable CID's server ID, with the CID's own nonce and low bits, encodes back to it. */
static void check_decode(const uint8_t *cid, size_t len)
{
	uint8_t sid[LB_QUIC_LB_SID_MAX], again[LB_QUIC_CID_MAX];
	struct lb_quic_cid key;
	size_t i;

	if (lb_quic_cid_set(&key, cid, len) < 0 && len <= LB_QUIC_CID_MAX)
		fail("cid_set refused a CID of at most 20 octets", len);
	for (i = 0; i < sizeof(confs) / sizeof(confs[0]); i++) {
		const struct lb_quic_lb_conf *c = &confs[i];
		size_t n = lb_quic_lb_cid_len(c);

		if (lb_quic_lb_decode(c, cid, len, sid) != LB_QUIC_LB_ROUTABLE)
			continue;
		if (len < n || lb_quic_lb_config_id(cid[0]) != c->config_id)
			fail("routable CID too short or of another configuration", len);
		if (lb_quic_lb_encode(c, sid, cid + 1 + c->server_id_len, cid[0] & 0x1f, again) != (int)n ||
		    memcmp(again + 1, cid + 1, n - 1) || (again[0] != cid[0] && len == n))
			fail("routable CID does not encode back", len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t cid_lens[] = { 0, 1, 8, 9, 16, 18, 20, 21 };
	size_t i;

	for (i = 0; i < sizeof(cid_lens) / sizeof(cid_lens[0]); i++) {
		const uint8_t *p = data;
		size_t left = size;

		/* The first packet, then each one coalesced after it. */
		while (left) {
			struct lb_quic_hdr h;
			const char *broken;
			int r = lb_quic_parse(p, left, cid_lens[i], &h);

			broken = quic_inv_check(p, left, cid_lens[i], &h, r);
			if (broken)
				fail(broken, cid_lens[i]);
			if (r < 0)
				break;
			check_decode(h.dcid, h.dcid_len);
			check_decode(h.scid, h.scid_len);
			p += h.packet_len;
			left -= h.packet_len;
		}
	}
	return 0;
}
