// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/quic_route.c over a real shm: what a datagram's first bytes say
 * (header form, DCID, QUIC-LB server ID per family, broken and unknown
 * long headers), the routing order (server ID, learned CID, scheduler,
 * drop) with backend states, expiry and families, the SCIDs learned from
 * backends, and learned CIDs that outlive a reload which reorders the
 * backends.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/log.h"
#include "lb/quic_route.h"
#include "lb/shm.h"

#define SERVICES(learn_backends) \
	"{\"services\": [" \
	"  {\"name\": \"qlb\", \"protocol\": \"udp\", \"vips\": [\"198.18.100.1:443\", \"[2001:db8:100::1]:443\"]," \
	"   \"quic\": {\"lb\": {\"config_id\": 1, \"server_id_len\": 2, \"nonce_len\": 6}}," \
	"   \"backends\": [{\"address\": \"198.18.2.2:443\", \"quic_server_id\": \"0a01\"}," \
	"                {\"address\": \"[2001:db8:2::2]:443\", \"quic_server_id\": \"0a01\"}," \
	"                {\"address\": \"198.18.2.3:443\", \"quic_server_id\": \"0a02\"}," \
	"                {\"address\": \"198.18.2.4:443\"}]}," \
	"  {\"name\": \"learn\", \"protocol\": \"udp\", \"udp_idle_timeout_ms\": 10000," \
	"   \"vips\": [\"198.18.100.1:4433\", \"[2001:db8:100::1]:4433\"]," \
	"   \"quic\": {\"server_cid_len\": 8}, \"backends\": [" learn_backends "]}," \
	"  {\"name\": \"plain\", \"protocol\": \"udp\", \"vips\": [\"198.18.100.1:53\"]," \
	"   \"backends\": [{\"address\": \"198.18.2.2:53\"}]}" \
	" ]}"
#define LEARN_AB "{\"address\": \"198.18.2.2:4433\"}, {\"address\": \"198.18.2.3:4433\"}, " \
	"{\"address\": \"[2001:db8:2::3]:4433\"}"
#define LEARN_BA "{\"address\": \"[2001:db8:2::3]:4433\"}, {\"address\": \"198.18.2.3:4433\"}, " \
	"{\"address\": \"198.18.2.2:4433\"}"

enum { QLB, LEARN, PLAIN };
/* qlb's backends */
enum { A4, A6, B4, C4 };

static const struct lb_quic_lb_conf conf = { .config_id = 1, .server_id_len = 2, .nonce_len = 6 };
static struct lb_config *cfg;
static struct lb_shm *shm;
static struct lb_quic_router *r;

static struct lb_config *parse(const char *json)
{
	char *errors = NULL;
	struct lb_config *c = lb_config_parse(json, &errors);

	if (!c)
		ck_abort_msg("config: %s", errors);
	return c;
}

static void setup(void)
{
	lb_log_init(LB_LOG_ERR, "test");
	cfg = parse(SERVICES(LEARN_AB));
	shm = lb_shm_create(cfg, 2, 1000);
	ck_assert_ptr_nonnull(shm);
	r = lb_quic_router_alloc(cfg, shm);
	ck_assert_ptr_nonnull(r);
}

static void teardown(void)
{
	lb_quic_router_free(r);
	lb_shm_destroy(shm);
	lb_config_free(cfg);
}

/* A QUIC-LB CID (9 octets) of server ID s0 s1 with config rotation bits config_id (7: unroutable). */
static void lb_cid(uint8_t *out, uint8_t config_id, uint8_t s0, uint8_t s1)
{
	const uint8_t sid[2] = { s0, s1 }, nonce[6] = { 1, 2, 3, 4, 5, 6 };

	ck_assert_int_eq(lb_quic_lb_encode(&conf, sid, nonce, 0x15, out), 9);
	out[0] = (uint8_t)(config_id << 5 | (out[0] & 0x1f));
}

/* A short header b0 | dcid | 20 octets of payload; returns its length. */
static size_t short_pkt(uint8_t *p, uint8_t b0, const uint8_t *dcid, size_t len)
{
	p[0] = b0;
	memcpy(p + 1, dcid, len);
	memset(p + 1 + len, 0x5a, 20);
	return 1 + len + 20;
}

/*
 * A long header of version, first octet b0, with DCID and SCID, an empty
 * token, a 2-octet Length and 16 octets of payload; returns its length.
 */
static size_t long_pkt(uint8_t *p, uint8_t b0, uint32_t version, const uint8_t *dcid,
		       size_t dlen, const uint8_t *scid, size_t slen)
{
	size_t off = 0;

	p[off++] = b0;
	for (int shift = 24; shift >= 0; shift -= 8)
		p[off++] = (uint8_t)(version >> shift);
	p[off++] = (uint8_t)dlen;
	memcpy(p + off, dcid, dlen);
	off += dlen;
	p[off++] = (uint8_t)slen;
	memcpy(p + off, scid, slen);
	off += slen;
	p[off++] = 0;
	p[off++] = 0x40;
	p[off++] = 16;
	memset(p + off, 0xa5, 16);
	return off + 16;
}

static uint32_t slot1(size_t si, size_t bi)
{
	return shm->services[si].slots[bi] + 1;
}

static struct lb_quic_route route(size_t si, int family, const uint8_t *p, size_t len, uint32_t now)
{
	struct lb_quic_route out;

	lb_quic_route(r, si, family, p, len, now, &out);
	return out;
}

START_TEST(test_classify)
{
	const struct lb_service_conf *svc = &cfg->services[QLB];
	uint8_t cid[9], p[128], other[9];
	struct lb_quic_dcid d;
	size_t n;

	lb_cid(cid, 1, 0x0a, 0x02);
	n = short_pkt(p, 0x40, cid, 9);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert(d.parsed && !d.long_header);
	ck_assert_ptr_eq(d.dcid, p + 1);
	ck_assert_uint_eq(d.dcid_len, 9);
	ck_assert_int_eq(d.lb, LB_QUIC_LB_ROUTABLE);
	ck_assert_int_eq(d.backend, B4);
	/* No IPv6 backend has 0a02; 0a01 has one of each family. */
	lb_quic_classify(svc, AF_INET6, p, n, &d);
	ck_assert_int_eq(d.backend, -1);
	lb_cid(cid, 1, 0x0a, 0x01);
	n = short_pkt(p, 0x40, cid, 9);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert_int_eq(d.backend, A4);
	lb_quic_classify(svc, AF_INET6, p, n, &d);
	ck_assert_int_eq(d.backend, A6);
	/* The other first-octet bits mean nothing here (greased fixed bit, v2, key phase). */
	for (unsigned int b0 = 0; b0 < 0x80; b0 += 0x0b) {
		short_pkt(p, (uint8_t)b0, cid, 9);
		lb_quic_classify(svc, AF_INET, p, n, &d);
		ck_assert(d.parsed && !d.long_header);
		ck_assert_int_eq(d.backend, A4);
	}
	/* A server ID no backend has; unroutable; another configuration. */
	lb_cid(cid, 1, 0x0b, 0x01);
	n = short_pkt(p, 0x40, cid, 9);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert_int_eq(d.lb, LB_QUIC_LB_ROUTABLE);
	ck_assert_int_eq(d.backend, -1);
	lb_cid(cid, 7, 0x0a, 0x01);
	short_pkt(p, 0x40, cid, 9);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert_int_eq(d.lb, LB_QUIC_LB_UNROUTABLE);
	ck_assert_int_eq(d.backend, -1);
	lb_cid(cid, 2, 0x0a, 0x01);
	short_pkt(p, 0x40, cid, 9);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert_int_eq(d.lb, LB_QUIC_LB_OTHER_CONFIG);
	ck_assert_int_eq(d.backend, -1);
	/* Too short for a 9-octet DCID. */
	lb_quic_classify(svc, AF_INET, p, 9, &d);
	ck_assert(!d.parsed && !d.long_header);
	ck_assert_ptr_null(d.dcid);
	lb_quic_classify(svc, AF_INET, p, 0, &d);
	ck_assert(!d.parsed && !d.long_header);

	/* Long headers: v1, v2, an unknown version; a routable DCID in one is routable. */
	lb_cid(cid, 1, 0x0a, 0x01);
	memset(other, 0x33, sizeof(other));
	n = long_pkt(p, 0xc0, LB_QUIC_V1, cid, 9, other, 5);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert(d.parsed && d.long_header);
	ck_assert_uint_eq(d.dcid_len, 9);
	ck_assert_int_eq(d.backend, A4);
	n = long_pkt(p, 0xd0, LB_QUIC_V2, other, 8, cid, 9);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert(d.parsed && d.long_header);
	ck_assert_uint_eq(d.dcid_len, 8);
	ck_assert_int_eq(d.lb, LB_QUIC_LB_BAD_LENGTH);
	ck_assert_int_eq(d.backend, -1);
	n = long_pkt(p, 0x80, 0x709a50c4, other, 3, cid, 9);
	lb_quic_classify(svc, AF_INET, p, n, &d);
	ck_assert(d.parsed && d.long_header);
	ck_assert_ptr_eq(d.dcid, p + 6);
	ck_assert_uint_eq(d.dcid_len, 3);
	/* A v1 Initial whose Length runs past the datagram still has its DCID. */
	n = long_pkt(p, 0xc0, LB_QUIC_V1, cid, 9, other, 5);
	lb_quic_classify(svc, AF_INET, p, n - 1, &d);
	ck_assert(d.parsed && d.long_header);
	ck_assert_ptr_eq(d.dcid, p + 6);
	ck_assert_int_eq(d.backend, A4);
	/* Cut inside its DCID: a long header with nothing to read. */
	lb_quic_classify(svc, AF_INET, p, 10, &d);
	ck_assert(!d.parsed && d.long_header);
	ck_assert_ptr_null(d.dcid);
}
END_TEST

START_TEST(test_route_by_server_id)
{
	uint8_t cid[9], p[128], other[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
	struct lb_quic_route q;
	size_t n, ln;

	lb_cid(cid, 1, 0x0a, 0x01);
	n = short_pkt(p, 0x41, cid, 9);
	q = route(QLB, AF_INET, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_BY_CID);
	ck_assert_uint_eq(q.backend, A4);
	q = route(QLB, AF_INET6, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_BY_CID);
	ck_assert_uint_eq(q.backend, A6);
	/* Draining or weight 0: its connections go on. */
	lb_shm_set_admin(shm, cfg, QLB, A4, LB_ADMIN_DRAIN, "test");
	lb_shm_set_weight(shm, cfg, QLB, A4, 0, "test");
	q = route(QLB, AF_INET, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_BY_CID);
	/* Down or disabled: a short header is dropped, a long one scheduled. */
	lb_shm_set_health(shm, cfg, QLB, A4, LB_HEALTH_DOWN, "test");
	q = route(QLB, AF_INET, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	ck_assert_str_eq(q.why, "connection ID of a backend that is down, disabled or of the other family");
	ln = long_pkt(p + 64, 0xc0, LB_QUIC_V1, cid, 9, other, 8);
	q = route(QLB, AF_INET, p + 64, ln, 100);
	ck_assert_int_eq(q.how, LB_QUIC_BY_SCHEDULER);
	lb_shm_set_health(shm, cfg, QLB, A4, LB_HEALTH_UP, "test");
	lb_shm_set_admin(shm, cfg, QLB, A4, LB_ADMIN_DISABLED, "test");
	q = route(QLB, AF_INET, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	/* The IPv6 address of the same server is another backend, still up. */
	q = route(QLB, AF_INET6, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_BY_CID);
	ck_assert_uint_eq(q.backend, A6);

	/* Unroutable, or a server ID of nobody: dropped, saying which. */
	lb_cid(cid, 7, 0x0a, 0x02);
	n = short_pkt(p, 0x40, cid, 9);
	q = route(QLB, AF_INET, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	ck_assert_str_eq(q.why, "unroutable connection ID (config rotation 0b111), not learned");
	lb_cid(cid, 1, 0x0b, 0x02);
	short_pkt(p, 0x40, cid, 9);
	q = route(QLB, AF_INET, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	ck_assert_str_eq(q.why, "short header with an unknown connection ID");
	q = route(QLB, AF_INET, p, 5, 100);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	ck_assert_str_eq(q.why, "short header shorter than the server CID length");
	/* An unroutable CID that lb learned (from a server that issued one) is known. */
	lb_cid(cid, 7, 0x0a, 0x02);
	ln = long_pkt(p + 64, 0xc0, LB_QUIC_V1, other, 8, cid, 9);
	ck_assert_int_eq(lb_quic_record(r, QLB, lb_quic_scid_key(r, QLB, p + 64, ln), slot1(QLB, C4),
					100), 0);
	short_pkt(p, 0x40, cid, 9);
	q = route(QLB, AF_INET, p, n, 100);
	ck_assert_int_eq(q.how, LB_QUIC_BY_LEARNED);
	ck_assert_uint_eq(q.backend, C4);
}
END_TEST

START_TEST(test_route_learned)
{
	const uint8_t scid[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
	const uint8_t ccid[8] = { 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8 };
	uint8_t p[128], reply[128];
	struct lb_quic_route q;
	size_t n, rn;
	uint64_t key;

	/* Before anything is learned: short dropped, long (any version) scheduled with its DCID's key. */
	n = short_pkt(p, 0x40, scid, 8);
	q = route(LEARN, AF_INET, p, n, 1000);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	n = long_pkt(p, 0xc0, 0x1a2a3a4a, ccid, 8, scid, 8);
	q = route(LEARN, AF_INET, p, n, 1000);
	ck_assert_int_eq(q.how, LB_QUIC_BY_SCHEDULER);
	ck_assert_uint_ne(q.key, 0);
	/* The scheduler's choice recorded: the client's Initial again, from anywhere, follows it. */
	ck_assert_int_eq(lb_quic_record(r, LEARN, q.key, slot1(LEARN, 1), 1000), 0);
	q = route(LEARN, AF_INET, p, n, 1005);
	ck_assert_int_eq(q.how, LB_QUIC_BY_LEARNED);
	ck_assert_uint_eq(q.backend, 1);

	/* Backend 0 answers with its own CID as SCID: learned, then routes short headers. */
	rn = long_pkt(reply, 0xe0, LB_QUIC_V1, ccid, 8, scid, 8);
	key = lb_quic_scid_key(r, LEARN, reply, rn);
	ck_assert_uint_ne(key, 0);
	ck_assert_int_eq(lb_quic_record(r, LEARN, key, slot1(LEARN, 0), 1000), 0);
	n = short_pkt(p, 0x4c, scid, 8);
	q = route(LEARN, AF_INET, p, n, 1011);
	ck_assert_int_eq(q.how, LB_QUIC_BY_LEARNED);
	ck_assert_uint_eq(q.backend, 0);
	ck_assert_uint_eq(q.key, key);
	/* udp_idle_timeout_ms 10 s: kept 11 s (10 + 1 of rounding), then forgotten. */
	q = route(LEARN, AF_INET, p, n, 1012);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	/* A flow keeps it alive by recording it again. */
	ck_assert_int_eq(lb_quic_record(r, LEARN, key, slot1(LEARN, 0), 1012), 0);
	q = route(LEARN, AF_INET, p, n, 1020);
	ck_assert_int_eq(q.how, LB_QUIC_BY_LEARNED);
	/* The same CID in another service is another key. */
	ck_assert_uint_ne(lb_quic_scid_key(r, QLB, reply, rn), key);
	/* An IPv6 client cannot reach the IPv4 backend its CID names. */
	q = route(LEARN, AF_INET6, p, n, 1020);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);
	ck_assert_str_eq(q.why, "connection ID of a backend that is down, disabled or of the other family");
	/* Down: dropped too. */
	lb_shm_set_health(shm, cfg, LEARN, 0, LB_HEALTH_DOWN, "test");
	q = route(LEARN, AF_INET, p, n, 1020);
	ck_assert_int_eq(q.how, LB_QUIC_DROP);

	/* What carries no SCID to learn: short headers, Version Negotiation, an empty SCID. */
	ck_assert_uint_eq(lb_quic_scid_key(r, LEARN, p, n), 0);
	rn = long_pkt(reply, 0x80, 0, ccid, 8, scid, 8);
	ck_assert_uint_eq(lb_quic_scid_key(r, LEARN, reply, rn), 0);
	rn = long_pkt(reply, 0xc0, LB_QUIC_V1, ccid, 8, scid, 0);
	ck_assert_uint_eq(lb_quic_scid_key(r, LEARN, reply, rn), 0);
	ck_assert_uint_eq(lb_quic_scid_key(r, LEARN, reply, 0), 0);
	/* An unknown version's SCID is the server's all the same (RFC 8999). */
	rn = long_pkt(reply, 0x80, 0x709a50c4, ccid, 8, scid, 8);
	ck_assert_uint_eq(lb_quic_scid_key(r, LEARN, reply, rn), key);
}
END_TEST

/* A reload that reorders the backends: the CID still names its backend's address. */
START_TEST(test_learned_across_reload)
{
	const uint8_t scid[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct lb_config *cfg2 = parse(SERVICES(LEARN_BA));
	struct lb_shm *shm2 = lb_shm_create_next(shm, cfg, cfg2);
	struct lb_quic_router *r2;
	uint8_t p[64], reply[64];
	struct lb_quic_route q;
	size_t n, rn;

	ck_assert_ptr_nonnull(shm2);
	r2 = lb_quic_router_alloc(cfg2, shm2);
	ck_assert_ptr_nonnull(r2);
	rn = long_pkt(reply, 0xc0, LB_QUIC_V1, scid, 4, scid, 8);
	ck_assert_int_eq(lb_quic_record(r, LEARN, lb_quic_scid_key(r, LEARN, reply, rn),
					slot1(LEARN, 0), 50), 0);
	n = short_pkt(p, 0x40, scid, 8);
	lb_quic_route(r2, LEARN, AF_INET, p, n, 55, &q);
	ck_assert_int_eq(q.how, LB_QUIC_BY_LEARNED);
	ck_assert_uint_eq(q.backend, 2);
	ck_assert(lb_addr_equal(&cfg2->services[LEARN].backends[q.backend].addr,
				&cfg->services[LEARN].backends[0].addr));
	/*
	 * The old generation sees what the new one learns: a 7-octet SCID,
	 * which a long header (its DCID length explicit) carries back.
	 */
	rn = long_pkt(reply, 0xc0, LB_QUIC_V1, scid, 4, scid, 7);
	ck_assert_int_eq(lb_quic_record(r2, LEARN, lb_quic_scid_key(r2, LEARN, reply, rn),
					shm2->services[LEARN].slots[1] + 1, 50), 0);
	n = long_pkt(p, 0xc0, LB_QUIC_V1, scid, 7, scid, 4);
	lb_quic_route(r, LEARN, AF_INET, p, n, 55, &q);
	ck_assert_int_eq(q.how, LB_QUIC_BY_LEARNED);
	ck_assert_uint_eq(q.backend, 1);
	lb_quic_router_free(r2);
	lb_shm_destroy(shm2);
	lb_config_free(cfg2);
}
END_TEST

START_TEST(test_enabled_and_counts)
{
	ck_assert(lb_quic_enabled(r, QLB));
	ck_assert(lb_quic_enabled(r, LEARN));
	ck_assert(!lb_quic_enabled(r, PLAIN));
	ck_assert(!lb_quic_enabled(NULL, QLB));
	lb_quic_count(shm, LEARN, LB_QUIC_BY_CID);
	lb_quic_count(shm, LEARN, LB_QUIC_BY_LEARNED);
	lb_quic_count(shm, LEARN, LB_QUIC_BY_LEARNED);
	lb_quic_count(shm, LEARN, LB_QUIC_BY_SCHEDULER);
	lb_quic_count(shm, LEARN, LB_QUIC_DROP);
	ck_assert_uint_eq(atomic_load(&shm->services[LEARN].quic_routed_cid), 1);
	ck_assert_uint_eq(atomic_load(&shm->services[LEARN].quic_routed_learned), 2);
	ck_assert_uint_eq(atomic_load(&shm->services[LEARN].quic_fallback), 1);
	ck_assert_uint_eq(atomic_load(&shm->services[LEARN].quic_dropped), 1);
	ck_assert_uint_eq(atomic_load(&shm->services[QLB].quic_dropped), 0);
	ck_assert_str_eq(lb_quic_how_name(LB_QUIC_BY_LEARNED), "learned");
	ck_assert_str_eq(lb_quic_how_name(LB_QUIC_DROP), "drop");
}
END_TEST

static Suite *quic_route_suite(void)
{
	Suite *s = suite_create("quic_route");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_classify);
	tcase_add_test(tc, test_route_by_server_id);
	tcase_add_test(tc, test_route_learned);
	tcase_add_test(tc, test_learned_across_reload);
	tcase_add_test(tc, test_enabled_and_counts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(quic_route_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
