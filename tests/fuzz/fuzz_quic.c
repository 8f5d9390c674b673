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
 * The whole datagram also goes through the QUIC router's classification
 * (lb_quic_classify) for services of a real config: the DCID it reads lies
 * in the datagram, a short header's is server_cid_len octets at offset 1,
 * and a backend it names has the CID's server ID and the client's family.
 * Build (make fuzz, which also links the config parser it needs):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -std=gnu11 -I. tests/fuzz/fuzz_quic.c lb/quic.c lb/quic_route.c lb/cidtab.c \
 *     lb/config*.c lb/prefix.c lb/addr.c lb/log.c -ljansson -o fuzz_quic
 *   ./fuzz_quic tests/fuzz/corpus/quic
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/config.h"
#include "lb/log.h"
#include "lb/quic.h"
#include "lb/quic_route.h"
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

/* QUIC-LB with several server IDs per family; an 18-octet server CID (ngtcp2's); 1 and 20. */
static const char services_json[] =
	"{\"services\": ["
	"{\"name\": \"qlb\", \"protocol\": \"udp\", \"vips\": [\"198.18.100.1:443\", \"[2001:db8:100::1]:443\"],"
	" \"quic\": {\"lb\": {\"config_id\": 1, \"server_id_len\": 2, \"nonce_len\": 6}},"
	" \"backends\": [{\"address\": \"198.18.2.2:443\", \"quic_server_id\": \"0a01\"},"
	"  {\"address\": \"198.18.2.3:443\", \"quic_server_id\": \"0a02\"},"
	"  {\"address\": \"198.18.2.4:443\", \"quic_server_id\": \"0000\"},"
	"  {\"address\": \"[2001:db8:2::2]:443\", \"quic_server_id\": \"0a01\"},"
	"  {\"address\": \"[2001:db8:2::3]:443\", \"quic_server_id\": \"ffff\"}]},"
	"{\"name\": \"ngtcp2\", \"protocol\": \"udp\", \"vips\": [\"198.18.100.1:444\"],"
	" \"quic\": {\"server_cid_len\": 18}, \"backends\": [{\"address\": \"198.18.2.2:4433\"}]},"
	"{\"name\": \"one\", \"protocol\": \"udp\", \"vips\": [\"198.18.100.1:445\"],"
	" \"quic\": {\"server_cid_len\": 20, \"lb\": {\"config_id\": 0, \"server_id_len\": 1,"
	"  \"nonce_len\": 4}},"
	" \"backends\": [{\"address\": \"198.18.2.2:4434\", \"quic_server_id\": \"00\"}]},"
	"{\"name\": \"tiny\", \"protocol\": \"udp\", \"vips\": [\"198.18.100.1:446\"],"
	" \"quic\": {\"server_cid_len\": 1}, \"backends\": [{\"address\": \"198.18.2.2:4435\"}]}"
	"]}";

static void check_classify(const struct lb_config *cfg, const uint8_t *data, size_t size)
{
	static const int families[] = { AF_INET, AF_INET6 };

	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];
		const struct lb_quic_conf *q = &svc->quic;

		for (size_t f = 0; f < 2; f++) {
			struct lb_quic_dcid d;

			lb_quic_classify(svc, families[f], data, size, &d);
			if (d.long_header != (size && (data[0] & 0x80)))
				fail("classify: header form", q->server_cid_len);
			if (!d.parsed && (d.dcid || d.dcid_len || d.backend >= 0))
				fail("classify: a DCID from bytes it could not parse", q->server_cid_len);
			if (d.dcid_len && (d.dcid < data || d.dcid_len > size ||
					   (size_t)(d.dcid - data) > size - d.dcid_len))
				fail("classify: DCID outside the datagram", q->server_cid_len);
			if (d.parsed && !d.long_header &&
			    (d.dcid != data + 1 || d.dcid_len != q->server_cid_len))
				fail("classify: short header DCID", q->server_cid_len);
			if (d.backend < 0)
				continue;
			if (!q->has_lb || d.lb != LB_QUIC_LB_ROUTABLE || (size_t)d.backend >= svc->n_backends ||
			    svc->backends[d.backend].addr.sa.sa_family != families[f] ||
			    !svc->backends[d.backend].has_server_id ||
			    memcmp(svc->backends[d.backend].server_id, d.dcid + 1, q->lb.server_id_len))
				fail("classify: a backend its CID does not name", q->server_cid_len);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lb_config *cfg;
	static const size_t cid_lens[] = { 0, 1, 8, 9, 16, 18, 20, 21 };
	size_t i;

	if (!cfg) {
		char *errors = NULL;

		lb_log_init(LB_LOG_ERR, "fuzz_quic");
		cfg = lb_config_parse(services_json, &errors);
		if (!cfg) {
			fprintf(stderr, "fuzz_quic: config: %s", errors);
			abort();
		}
	}
	check_classify(cfg, data, size);
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
