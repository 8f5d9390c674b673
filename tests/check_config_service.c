// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/config_service.c: services, their VIPs, backends, scheduler and health
 * checks, what each key accepts and the one error line each mistake gets.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "lb/config.h"
#include "tests/config_fixture.h"
#include "tests/unit.h"

/* A UDP service with QUIC settings q and two backends, each with its extra keys. */
#define QUIC(q, b0, b1) "{'services':[{'name':'h3','protocol':'udp','vips':['198.18.100.1:443']," \
	"'quic':" q ",'backends':[{'address':'198.18.2.2:443'" b0 "},{'address':'198.18.2.3:443'" b1 "}]}]}"
#define QLB "{'lb':{'config_id':1,'server_id_len':2,'nonce_len':6}}"
#define SID(x) ",'quic_server_id':'" x "'"
#define SID_HEX " expected 2 octets in hex, as quic.lb.server_id_len says)\n"

static const struct {
	const char *name;
	enum lb_sched sched;
} schedulers[] = {
	{ "roundrobin", LB_SCHED_ROUNDROBIN }, { "leastconn", LB_SCHED_LEASTCONN },
	{ "maglev", LB_SCHED_MAGLEV }, { "random2", LB_SCHED_RANDOM2 },
};

START_TEST(test_scheduler)
{
	char json[256];
	struct lb_config *cfg;

	/* hash is accepted with any scheduler; only maglev uses it. */
	snprintf(json, sizeof(json), "{'services': [{'name': 'web', 'scheduler': '%s',"
		 " 'hash': 'address_port', 'vips': ['198.18.100.1:80'],"
		 " 'backends': [{'address': '198.18.2.2:80'}]}]}", schedulers[_i].name);
	cfg = parse_ok(json);
	ck_assert_int_eq(cfg->services[0].sched, schedulers[_i].sched);
	ck_assert_int_eq(cfg->services[0].hash_port, 1);
	ck_assert_uint_eq(cfg->services[0].maglev_size, 101);	/* sized to its one backend */
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_maglev)
{
	struct lb_config *cfg = parse_ok(
		"{'services': [{'name': 'a', 'scheduler': 'maglev', 'hash': 'address',"
		"   'maglev_table_size': 1009, 'vips': ['198.18.100.1:80'], 'backends': [" B10 "]},"
		/* The 100 x backends rule is for maglev only; primality is not. */
		"  {'name': 'b', 'maglev_table_size': 2, 'vips': ['198.18.100.2:80'],"
		"   'backends': [" B10 "]},"
		"  {'name': 'c', 'scheduler': 'maglev', 'maglev_table_size': 101,"
		"   'vips': ['198.18.100.3:80'], 'backends': [" B(1) "]},"
		"  {'name': 'd', 'scheduler': 'maglev', 'maglev_table_size': 1000003,"
		"   'vips': ['198.18.100.4:80'], 'backends': [" B(1) "]},"
		"  {'name': 'e', 'scheduler': 'maglev', 'vips': ['198.18.100.5:80'],"
		"   'backends': [" B10 "]}]}");

	ck_assert_int_eq(cfg->services[0].sched, LB_SCHED_MAGLEV);
	ck_assert_int_eq(cfg->services[0].hash_port, 0);
	ck_assert_uint_eq(cfg->services[0].maglev_size, 1009);
	ck_assert_uint_eq(cfg->services[0].n_backends, 10);
	ck_assert_int_eq(cfg->services[1].sched, LB_SCHED_ROUNDROBIN);
	ck_assert_uint_eq(cfg->services[1].maglev_size, 2);
	ck_assert_uint_eq(cfg->services[2].maglev_size, 101);
	ck_assert_uint_eq(cfg->services[3].maglev_size, 1000003);
	/* 10 backends round up to 16: the smallest prime >= 1600. */
	ck_assert_uint_eq(cfg->services[4].maglev_size, 1601);
	lb_config_free(cfg);
}
END_TEST

/* A maglev service of n backends on 198.18.2.2, ports 1000 up. */
static char *maglev_of(size_t n)
{
	size_t size = 256 + n * 40, off;
	char *json = malloc(size);

	ck_assert_ptr_nonnull(json);
	off = (size_t)snprintf(json, size, "{'services': [{'name': 'm', 'scheduler': 'maglev',"
			       " 'vips': ['198.18.100.1:80'], 'backends': [");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(json + off, size - off, "%s{'address':'198.18.2.2:%zu'}",
					i ? "," : "", 1000 + i);
	snprintf(json + off, size - off, "]}]}");
	return json;
}

/*
 * Without maglev_table_size a table has the smallest prime of at least 100
 * entries per backend, the count rounded up to a power of two (so 3 and 4
 * backends share a size and a fourth backend moves few clients); past
 * 1000003 entries the rounding goes, and past 10000 backends it is refused.
 */
static const struct {
	size_t n;
	unsigned int size;
} maglev_sizes[] = {
	{ 2, 211 }, { 3, 401 }, { 4, 401 }, { 5, 809 }, { 600, 102407 }, { 1000, 102407 },
	{ 6000, 819229 }, { 10000, 1000003 },
};

START_TEST(test_maglev_default_size)
{
	char *json = maglev_of(maglev_sizes[_i].n);
	struct lb_config *cfg = parse_ok(json);

	ck_assert_uint_eq(cfg->services[0].maglev_size, maglev_sizes[_i].size);
	lb_config_free(cfg);
	free(json);
}
END_TEST

START_TEST(test_maglev_too_many)
{
	char *json = maglev_of(10001);

	parse_fails(json, "services[0]: 10001 backends are too many for maglev: its table holds"
		    " at most 1000003 entries, 100 per backend\n");
	free(json);
}
END_TEST

/* idle_timeout_ms sets both sides; an explicit side wins in any key order. */
START_TEST(test_idle_timeouts)
{
	static const struct {
		const char *keys;
		unsigned int client, server;
	} cases[] = {
		{ "'idle_timeout_ms': 5000", 5000, 5000 },
		{ "'client_idle_timeout_ms': 7, 'idle_timeout_ms': 5000", 7, 5000 },
		{ "'idle_timeout_ms': 5000, 'client_idle_timeout_ms': 7", 7, 5000 },
		{ "'server_idle_timeout_ms': 8, 'idle_timeout_ms': 5000", 5000, 8 },
		{ "'idle_timeout_ms': 5000, 'server_idle_timeout_ms': 8", 5000, 8 },
		{ "'server_idle_timeout_ms': 8, 'idle_timeout_ms': 5000,"
		  " 'client_idle_timeout_ms': 86400000", 86400000, 8 },
		{ "'client_idle_timeout_ms': 1", 1, 300000 },
		{ "'server_idle_timeout_ms': 1", 300000, 1 },
	};
	struct lb_config *cfg;
	char json[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(json, sizeof(json), "{'services': [{'name': 'web', %s,"
			 " 'vips': ['198.18.100.1:80'], 'backends': [{'address': '198.18.2.2:80'}]}]}",
			 cases[i].keys);
		cfg = parse_ok(json);
		ck_assert_msg(cfg->services[0].client_idle_timeout_ms == cases[i].client &&
			      cfg->services[0].server_idle_timeout_ms == cases[i].server,
			      "%s: client %u server %u", cases[i].keys,
			      cfg->services[0].client_idle_timeout_ms,
			      cfg->services[0].server_idle_timeout_ms);
		lb_config_free(cfg);
	}
}
END_TEST

START_TEST(test_limits)
{
	struct lb_config *cfg = parse_ok(
		"{'services': [{'name': 'web', 'vips': ['198.18.100.1:80'], 'queue_timeout_ms': 1,"
		" 'backends': [{'address': '198.18.2.2:80', 'max_conns': 10000000},"
		"   {'max_conns': 0, 'address': '198.18.2.3:80'},"
		"   {'address': '198.18.2.4:80', 'max_conns': 1, 'weight': 5}]},"
		" {'name': 'api', 'vips': ['198.18.100.2:80'], 'queue_timeout_ms': 86400000,"
		"  'backends': [{'address': '198.18.2.2:80'}]}]}");
	const struct lb_service_conf *s = &cfg->services[0];

	ck_assert_uint_eq(s->queue_timeout_ms, 1);
	ck_assert_uint_eq(s->backends[0].max_conns, 10000000);
	ck_assert_uint_eq(s->backends[1].max_conns, 0);
	ck_assert_uint_eq(s->backends[2].max_conns, 1);
	ck_assert_uint_eq(s->backends[2].weight, 5);
	ck_assert_uint_eq(cfg->services[1].queue_timeout_ms, 86400000);
	lb_config_free(cfg);

	cfg = parse_ok(SVC("'socket_buffer_bytes':4096"));
	ck_assert_uint_eq(cfg->services[0].socket_buffer_bytes, 4096);
	lb_config_free(cfg);
	cfg = parse_ok(SVC("'socket_buffer_bytes':67108864"));
	ck_assert_uint_eq(cfg->services[0].socket_buffer_bytes, 67108864);
	lb_config_free(cfg);

	cfg = parse_ok(SVC("'fastopen':true,'fastopen_wait_ms':0"));
	ck_assert(cfg->services[0].fastopen);
	ck_assert_uint_eq(cfg->services[0].fastopen_wait_ms, 0);
	ck_assert_ptr_null(cfg->warnings);
	lb_config_free(cfg);
	cfg = parse_ok(SVC("'fastopen_wait_ms':1000,'fastopen':false"));
	ck_assert(!cfg->services[0].fastopen);
	ck_assert_uint_eq(cfg->services[0].fastopen_wait_ms, 1000);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_health)
{
	struct lb_config *cfg = parse_ok(
		"{'services': ["
		"  {'name': 'full', 'vips': ['198.18.100.1:80'], 'backends': [{'address': '198.18.2.2:80'}],"
		"   'health': {'path': '/healthz?probe=lb', 'type': 'http', 'interval_ms': 86400000,"
		"     'timeout_ms': 86400000, 'rise': 100, 'fall': 1, 'port': 8080,"
		"     'host': 'www.example.org:8080', 'expect': '204'}},"
		"  {'name': 'http', 'vips': ['198.18.100.2:80'], 'backends': [{'address': '198.18.2.2:80'}],"
		"   'health': {'type': 'http', 'expect': '100-599', 'port': 0}},"
		"  {'name': 'tcp', 'vips': ['198.18.100.3:80'], 'backends': [{'address': '198.18.2.2:80'}],"
		"   'health': {'type': 'tcp', 'interval_ms': 1, 'timeout_ms': 1, 'rise': 1, 'fall': 100,"
		"     'port': 65535}},"
		"  {'name': 'tcp-defaults', 'vips': ['198.18.100.4:80'],"
		"   'backends': [{'address': '198.18.2.2:80'}], 'health': {'type': 'tcp'}}]}");
	const struct lb_health_conf *h;

	h = &cfg->services[0].health;
	ck_assert_int_eq(h->type, LB_CHECK_HTTP);
	ck_assert_uint_eq(h->interval_ms, 86400000);
	ck_assert_uint_eq(h->timeout_ms, 86400000);
	ck_assert_uint_eq(h->rise, 100);
	ck_assert_uint_eq(h->fall, 1);
	ck_assert_uint_eq(h->port, 8080);
	ck_assert_str_eq(h->path, "/healthz?probe=lb");
	ck_assert_str_eq(h->host, "www.example.org:8080");
	ck_assert_uint_eq(h->expect_min, 204);
	ck_assert_uint_eq(h->expect_max, 204);

	h = &cfg->services[1].health;
	ck_assert_int_eq(h->type, LB_CHECK_HTTP);
	ck_assert_uint_eq(h->interval_ms, 2000);
	ck_assert_uint_eq(h->timeout_ms, 1000);
	ck_assert_uint_eq(h->rise, 2);
	ck_assert_uint_eq(h->fall, 3);
	ck_assert_uint_eq(h->port, 0);
	ck_assert_str_eq(h->path, "/");
	ck_assert_ptr_null(h->host);
	ck_assert_uint_eq(h->expect_min, 100);
	ck_assert_uint_eq(h->expect_max, 599);

	h = &cfg->services[2].health;
	ck_assert_int_eq(h->type, LB_CHECK_TCP);
	ck_assert_uint_eq(h->interval_ms, 1);
	ck_assert_uint_eq(h->timeout_ms, 1);
	ck_assert_uint_eq(h->rise, 1);
	ck_assert_uint_eq(h->fall, 100);
	ck_assert_uint_eq(h->port, 65535);
	ck_assert_ptr_null(h->path);
	ck_assert_ptr_null(h->host);

	h = &cfg->services[3].health;
	ck_assert_int_eq(h->type, LB_CHECK_TCP);
	ck_assert_uint_eq(h->interval_ms, 2000);
	ck_assert_uint_eq(h->timeout_ms, 1000);
	ck_assert_uint_eq(h->rise, 2);
	ck_assert_uint_eq(h->fall, 3);
	ck_assert_uint_eq(h->port, 0);
	ck_assert_ptr_null(h->path);
	lb_config_free(cfg);
}
END_TEST

static const struct {
	const char *json;
	const char *errors;
} invalid[] = {
	/* services */
	{ "{'services':{}}", "services: expected an array\n" },
	{ "{'services':[]}", "services: must not be empty\n" },
	{ "{'services':[1]}", "services[0]: expected an object\n" },
	{ SVC("'backend':[]"), "services[0].backend: unknown key\n" },
	{ "{'services':[{'vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: missing required key\n" },
	{ "{'services':[{'name':'web','backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].vips: missing required key\n" },
	{ "{'services':[{'name':'web','vips':['198.18.100.1:80']}]}",
	  "services[0].backends: missing required key\n" },
	{ "{'services':[{'name':7,'vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: expected a string\n" },
	{ "{'services':[{'name':'','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: invalid name \"\" (1..64 characters of A-Za-z0-9_.-)\n" },
	{ "{'services':[{'name':'my web','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: invalid name \"my web\" (1..64 characters of A-Za-z0-9_.-)\n" },
	{ "{'services':[{'name':'" X64 "y','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: invalid name \"" X64 "...\" (1..64 characters of A-Za-z0-9_.-)\n" },
	/* C strings cannot hold NUL; jansson refuses it before we see it. */
	{ "{'services':[{'name':'a\\u0000b','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "line 1, column 31: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'\n" },
	{ "{'services':[{'name':'a\\\"b','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: invalid name \"a\\\"b\" (1..64 characters of A-Za-z0-9_.-)\n" },
	{ "{'services':[{" SVC_BODY "},{'name':'web','vips':['198.18.100.2:80'],"
	  "'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[1].name: duplicate service name \"web\" (also services[0])\n" },
	{ SVC("'scheduler':'foo'"), "services[0].scheduler: unknown scheduler \"foo\" "
	  "(expected roundrobin, leastconn, maglev or random2)\n" },
	{ SVC("'scheduler':'RoundRobin'"), "services[0].scheduler: unknown scheduler "
	  "\"RoundRobin\" (expected roundrobin, leastconn, maglev or random2)\n" },
	{ SVC("'scheduler':'least_conn'"), "services[0].scheduler: unknown scheduler "
	  "\"least_conn\" (expected roundrobin, leastconn, maglev or random2)\n" },
	{ SVC("'scheduler':1"), "services[0].scheduler: expected a string\n" },
	{ SVC("'connect_timeout_ms':0"),
	  "services[0].connect_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'connect_timeout_ms':86400001"),
	  "services[0].connect_timeout_ms: 86400001 out of range (1..86400000)\n" },
	{ SVC("'idle_timeout_ms':0"), "services[0].idle_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'idle_timeout_ms':1.5"), "services[0].idle_timeout_ms: expected an integer\n" },
	{ SVC("'retries':17"), "services[0].retries: 17 out of range (0..16)\n" },
	{ SVC("'retries':-1"), "services[0].retries: -1 out of range (0..16)\n" },
	{ SVC("'client_idle_timeout_ms':0"),
	  "services[0].client_idle_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'client_idle_timeout_ms':86400001"),
	  "services[0].client_idle_timeout_ms: 86400001 out of range (1..86400000)\n" },
	{ SVC("'client_idle_timeout_ms':'1'"),
	  "services[0].client_idle_timeout_ms: expected an integer\n" },
	{ SVC("'server_idle_timeout_ms':0"),
	  "services[0].server_idle_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'server_idle_timeout_ms':86400001"),
	  "services[0].server_idle_timeout_ms: 86400001 out of range (1..86400000)\n" },
	{ SVC("'server_idle_timeout_ms':null"),
	  "services[0].server_idle_timeout_ms: expected an integer\n" },
	{ SVC("'idle_timeout_ms':0,'client_idle_timeout_ms':0"),
	  "services[0].idle_timeout_ms: 0 out of range (1..86400000)\n"
	  "services[0].client_idle_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'queue_timeout_ms':0"), "services[0].queue_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'queue_timeout_ms':86400001"),
	  "services[0].queue_timeout_ms: 86400001 out of range (1..86400000)\n" },
	{ SVC("'queue_timeout_ms':1e3"), "services[0].queue_timeout_ms: expected an integer\n" },
	{ SVC("'socket_buffer_bytes':4095"),
	  "services[0].socket_buffer_bytes: 4095 out of range (4096..67108864)\n" },
	{ SVC("'socket_buffer_bytes':67108865"),
	  "services[0].socket_buffer_bytes: 67108865 out of range (4096..67108864)\n" },
	{ SVC("'socket_buffer_bytes':0"),
	  "services[0].socket_buffer_bytes: 0 out of range (4096..67108864)\n" },
	{ SVC("'socket_buffer_bytes':'64k'"),
	  "services[0].socket_buffer_bytes: expected an integer\n" },
	{ SVC("'fastopen':1"), "services[0].fastopen: expected true or false\n" },
	{ SVC("'fastopen':'yes'"), "services[0].fastopen: expected true or false\n" },
	{ SVC("'fastopen':true,'fastopen_wait_ms':1001"),
	  "services[0].fastopen_wait_ms: 1001 out of range (0..1000)\n" },
	{ SVC("'fastopen':true,'fastopen_wait_ms':-1"),
	  "services[0].fastopen_wait_ms: -1 out of range (0..1000)\n" },
	{ "{'services':[{" SVC_BODY ",'protocol':'udp','fastopen':true}]}",
	  "services[0].fastopen: applies to TCP; this service's protocol is \"udp\"\n" },

	/* scheduler options */
	{ SVC("'hash':'port'"),
	  "services[0].hash: unknown hash \"port\" (expected address or address_port)\n" },
	{ SVC("'hash':'address+port'"),
	  "services[0].hash: unknown hash \"address+port\" (expected address or address_port)\n" },
	{ SVC("'hash':true"), "services[0].hash: expected a string\n" },
	{ SVC("'maglev_table_size':65536"), "services[0].maglev_table_size: 65536 is not prime\n" },
	{ SVC("'maglev_table_size':1"), "services[0].maglev_table_size: 1 is not prime\n" },
	{ SVC("'maglev_table_size':1000001"), "services[0].maglev_table_size: 1000001 is not prime\n" },
	{ SVC("'maglev_table_size':0"),
	  "services[0].maglev_table_size: 0 out of range (1..1000003)\n" },
	{ SVC("'maglev_table_size':1000033"),
	  "services[0].maglev_table_size: 1000033 out of range (1..1000003)\n" },
	{ SVC("'maglev_table_size':-7"),
	  "services[0].maglev_table_size: -7 out of range (1..1000003)\n" },
	{ SVC("'maglev_table_size':'65537'"), "services[0].maglev_table_size: expected an integer\n" },
	{ MAGLEV(101, B10), "services[0]: maglev_table_size 101 is below 100 x 10 backends\n" },
	{ MAGLEV(997, B10), "services[0]: maglev_table_size 997 is below 100 x 10 backends\n" },
	{ MAGLEV(97, B(1)), "services[0]: maglev_table_size 97 is below 100 x 1 backend\n" },
	/* A size that is already wrong is not reported again. */
	{ MAGLEV(100, B10), "services[0].maglev_table_size: 100 is not prime\n" },
	/* Counted whatever the key order, and with backends that are themselves wrong. */
	{ "{'services':[{'name':'web','vips':['198.18.100.1:80'],'maglev_table_size':101,"
	  "'backends':[" B(1) ",{'address':'198.18.2.2'}],'scheduler':'maglev'}]}",
	  "services[0].backends[1].address: missing port\n"
	  "services[0]: maglev_table_size 101 is below 100 x 2 backends\n" },

	/* vips */
	{ VIPS(""), "services[0].vips: must not be empty\n" },
	{ "{'services':[{'name':'web','vips':'198.18.100.1:80','backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].vips: expected an array\n" },
	{ VIPS("80"), "services[0].vips[0]: expected a string\n" },
	{ VIPS("'foo'"), "services[0].vips[0]: invalid address \"foo\"\n" },
	{ VIPS("'198.18.100.1'"), "services[0].vips[0]: missing port\n" },
	{ VIPS("'198.18.100.1:0'"), "services[0].vips[0]: port 0 out of range\n" },
	{ VIPS("'[2001:db8:100::1]:0'"), "services[0].vips[0]: port 0 out of range\n" },
	{ VIPS("'198.18.100.1:99999'"), "services[0].vips[0]: port 99999 out of range\n" },
	{ VIPS("'2001:db8:100::1:80'"), "services[0].vips[0]: invalid address "
	  "\"2001:db8:100::1:80\" (write IPv6 as \"[address]:port\")\n" },
	/* VIPs no client can reach. */
	{ VIPS("'0.0.0.0:80'"), "services[0].vips[0]: 0.0.0.0:80 is the unspecified address: a VIP "
	  "must be an address clients connect to\n" },
	{ "{'services':[{'name':'web','vips':['[::]:80'],'backends':[{'address':'[2001:db8:2::2]:80'}]}]}",
	  "services[0].vips[0]: [::]:80 is the unspecified address: a VIP must be an address clients "
	  "connect to\n" },
	{ VIPS("'0.0.0.1:80'"), "services[0].vips[0]: 0.0.0.1:80 is in 0.0.0.0/8, which is never a "
	  "destination\n" },
	{ VIPS("'127.0.0.1:80'"), "services[0].vips[0]: 127.0.0.1:80 is a loopback address: packets "
	  "to it never come from another host, so there is nothing to intercept\n" },
	{ VIPS("'198.18.100.1:80','127.1.2.3:80'"), "services[0].vips[1]: 127.1.2.3:80 is a loopback "
	  "address: packets to it never come from another host, so there is nothing to intercept\n" },
	{ "{'services':[{'name':'web','vips':['[::1]:80'],'backends':[{'address':'[2001:db8:2::2]:80'}]}]}",
	  "services[0].vips[0]: [::1]:80 is a loopback address: packets to it never come from another "
	  "host, so there is nothing to intercept\n" },
	{ VIPS("'224.0.0.1:80'"), "services[0].vips[0]: 224.0.0.1:80 is a broadcast or multicast "
	  "address: TCP cannot connect to it\n" },
	{ VIPS("'255.255.255.255:80'"), "services[0].vips[0]: 255.255.255.255:80 is a broadcast or "
	  "multicast address: TCP cannot connect to it\n" },
	{ "{'services':[{'name':'web','vips':['[ff05::1]:80'],'backends':[{'address':'[2001:db8:2::2]:80'}]}]}",
	  "services[0].vips[0]: [ff05::1]:80 is a broadcast or multicast address: TCP cannot connect "
	  "to it\n" },
	/* Written as an IPv4-mapped IPv6 address it is still the IPv4 one. */
	{ VIPS("'[::ffff:0.0.0.0]:80'"), "services[0].vips[0]: 0.0.0.0:80 is the unspecified "
	  "address: a VIP must be an address clients connect to\n" },
	{ VIPS("'198.18.100.1:80','198.18.100.1:80'"),
	  "services[0].vips[1]: 198.18.100.1:80 already used by service \"web\" "
	  "(services[0].vips[0])\n" },
	{ VIPS("'198.18.100.1:80','[::ffff:198.18.100.1]:80'"),
	  "services[0].vips[1]: 198.18.100.1:80 already used by service \"web\" "
	  "(services[0].vips[0])\n" },
	{ "{'services':[{" SVC_BODY "},{'name':'api','vips':['198.18.100.1:80'],"
	  "'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[1].vips[0]: 198.18.100.1:80 already used by service \"web\" "
	  "(services[0].vips[0])\n" },
	/* Prefixes and port ranges: overlaps are named with both paths, whatever the order. */
	{ "{'services':[{" SVC_BODY "},{'name':'api','vips':['198.18.100.0/24:80'],"
	  "'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].vips[0]: 198.18.100.1:80 overlaps 198.18.100.0/24:80 of service \"api\" "
	  "(services[1].vips[0])\n" },
	{ "{'services':[{" SVC_BODY "},{'name':'api','vips':['198.18.100.1:1-100'],"
	  "'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[1].vips[0]: 198.18.100.1:1-100 overlaps 198.18.100.1:80 of service \"web\" "
	  "(services[0].vips[0])\n" },
	{ VIPS("'[2001:db8:100::/48]:443','[2001:db8:100:5::/64]:400-500'"),
	  "services[0].vips[1]: [2001:db8:100:5::/64]:400-500 overlaps [2001:db8:100::/48]:443 of "
	  "service \"web\" (services[0].vips[0])\n" },
	{ VIPS("'198.18.100.1/24:80'"), "services[0].vips[0]: \"198.18.100.1/24\": host bits set "
	  "past the prefix length (did you mean the network address?)\n" },
	{ VIPS("'198.18.100.0/24:90-80'"), "services[0].vips[0]: \"90-80\": the port must be "
	  "1..65535, or a range such as 8000-8999\n" },
	{ VIPS("'2001:db8::/32:80'"), "services[0].vips[0]: \"2001:db8::/32:80\": an IPv6 VIP is "
	  "written [address]:port\n" },
	/* User text in VIP errors is escaped (found by fuzz_config: a raw DEL went out). */
	{ VIPS("'198.18.100.0/24:8\\u007f0'"), "services[0].vips[0]: \"8\\x7f0\": the port must be "
	  "1..65535, or a range such as 8000-8999\n" },
	{ VIPS("'198.18.100.\\u0001/24:80'"), "services[0].vips[0]: \"198.18.100.\\x01/24\": "
	  "not an IPv4 or IPv6 address (expected a prefix such as 127.0.0.0/8 or ::1)\n" },
	{ "{'services':[{'vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]},"
	  "{'name':'api','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: missing required key\n"
	  "services[1].vips[0]: 198.18.100.1:80 already used by services[0] (services[0].vips[0])\n" },
	{ "{'services':[{'name':'web','vips':['198.18.100.1:80','[2001:db8:100::1]:80'],"
	  "'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].vips[1]: no IPv6 backend for this IPv6 VIP\n" },
	{ "{'services':[{'name':'web','vips':['198.18.100.1:80','[2001:db8:100::1]:80'],"
	  "'backends':[{'address':'[2001:db8:2::2]:80'}]}]}",
	  "services[0].vips[0]: no IPv4 backend for this IPv4 VIP\n" },

	/* backends */
	{ BACKENDS(""), "services[0].backends: must not be empty\n" },
	{ "{'services':[{'name':'web','vips':['198.18.100.1:80'],'backends':{}}]}",
	  "services[0].backends: expected an array\n" },
	{ BACKENDS("'198.18.2.2:80'"), "services[0].backends[0]: expected an object\n" },
	{ BACKENDS("{'weight':1}"), "services[0].backends[0].address: missing required key\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','wieght':1}"),
	  "services[0].backends[0].wieght: unknown key\n" },
	{ BACKENDS("{'address':1}"), "services[0].backends[0].address: expected a string\n" },
	{ BACKENDS("{'address':'198.18.2.2:80'},{'address':'198.18.2.3:99999'}"),
	  "services[0].backends[1].address: port 99999 out of range\n" },
	{ BACKENDS("{'address':'198.18.2.2'}"), "services[0].backends[0].address: missing port\n" },
	{ BACKENDS("{'address':'198.18.2.2:0'}"),
	  "services[0].backends[0].address: port 0 out of range\n" },
	{ BACKENDS("{'address':'foo'}"),
	  "services[0].backends[0].address: invalid address \"foo\"\n" },
	{ BACKENDS("{'address':'backend.example:80'}"),
	  "services[0].backends[0].address: invalid address \"backend.example:80\"\n" },
	{ BACKENDS("{'address':'198.18.2.2:80'},{'address':'198.18.2.2:80'}"),
	  "services[0].backends[1].address: 198.18.2.2:80 already listed at backends[0]\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','weight':1001}"),
	  "services[0].backends[0].weight: 1001 out of range (0..1000)\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','weight':-1}"),
	  "services[0].backends[0].weight: -1 out of range (0..1000)\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','weight':'1'}"),
	  "services[0].backends[0].weight: expected an integer\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','max_conns':-1}"),
	  "services[0].backends[0].max_conns: -1 out of range (0..10000000)\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','max_conns':10000001}"),
	  "services[0].backends[0].max_conns: 10000001 out of range (0..10000000)\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','max_conns':'10'}"),
	  "services[0].backends[0].max_conns: expected an integer\n" },
	{ BACKENDS("{'address':'198.18.2.2:80','maxconn':10}"),
	  "services[0].backends[0].maxconn: unknown key\n" },
	/* Backends lb can never connect to. */
	{ BACKENDS("{'address':'0.0.0.0:80'}"), "services[0].backends[0].address: 0.0.0.0:80 is not "
	  "a host address: a connect to it reaches this gateway itself\n" },
	{ BACKENDS("{'address':'0.1.2.3:80'}"), "services[0].backends[0].address: 0.1.2.3:80 is not "
	  "a host address: a connect to it reaches this gateway itself\n" },
	{ "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],'backends':[{'address':'[::]:80'}]}]}",
	  "services[0].backends[0].address: [::]:80 is not a host address: a connect to it reaches "
	  "this gateway itself\n" },
	{ BACKENDS("{'address':'198.18.2.2:80'},{'address':'255.255.255.255:80'}"),
	  "services[0].backends[1].address: 255.255.255.255:80 is a broadcast or multicast address: "
	  "TCP cannot connect to it\n" },
	{ BACKENDS("{'address':'239.1.2.3:80'}"), "services[0].backends[0].address: 239.1.2.3:80 is "
	  "a broadcast or multicast address: TCP cannot connect to it\n" },
	{ "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],'backends':[{'address':'[ff02::1]:80'}]}]}",
	  "services[0].backends[0].address: [ff02::1]:80 is a broadcast or multicast address: TCP "
	  "cannot connect to it\n" },
	{ "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],'backends':[{'address':'[fe80::1]:80'}]}]}",
	  "services[0].backends[0].address: [fe80::1]:80 is a link-local address: it needs an "
	  "interface, which a backend address cannot name\n" },
	{ BACKENDS("{'address':'127.0.0.1:8080'}"), "services[0].backends[0].address: "
	  "127.0.0.1:8080 is a loopback address: lb connects from the client's address, and replies "
	  "from loopback never leave this host\n" },
	{ "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],'backends':[{'address':'[::1]:80'}]}]}",
	  "services[0].backends[0].address: [::1]:80 is a loopback address: lb connects from the "
	  "client's address, and replies from loopback never leave this host\n" },
	/* lb's own intercept listener, whichever key comes first. */
	{ BACKENDS("{'address':'127.0.0.1:50080'}"), "services[0].backends[0].address: "
	  "127.0.0.1:50080 is lb's own intercept listener (intercept.port 50080): lb cannot be its "
	  "own backend\n" },
	{ "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],'backends':[{'address':'[::1]:9999'}]}],"
	  "'intercept':{'port':9999}}",
	  "services[0].backends[0].address: [::1]:9999 is lb's own intercept listener (intercept.port "
	  "9999): lb cannot be its own backend\n" },
	/* lb's own VIPs: of its own service, of a later one, of an earlier unnamed one. */
	{ BACKENDS("{'address':'198.18.2.2:80'},{'address':'198.18.100.1:80'}"),
	  "services[0].backends[1].address: 198.18.100.1:80 is a VIP of service \"web\" "
	  "(services[0].vips[0]): lb cannot be its own backend\n" },
	{ "{'services':[{" SVC_BODY "},{'name':'api','vips':['198.18.100.2:80','[2001:db8:100::2]:80'],"
	  "'backends':[{'address':'198.18.2.3:80'},{'address':'[2001:db8:100::2]:80'}]}]}",
	  "services[1].backends[1].address: [2001:db8:100::2]:80 is a VIP of service \"api\" "
	  "(services[1].vips[1]): lb cannot be its own backend\n" },
	{ "{'services':[{'name':'web','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.100.2:443'}]},"
	  "{'vips':['198.18.100.2:443'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[1].name: missing required key\n"
	  "services[0].backends[0].address: 198.18.100.2:443 is a VIP of services[1] "
	  "(services[1].vips[0]): lb cannot be its own backend\n" },
	/* Inside a prefix or port-range VIP is inside lb too. */
	{ "{'services':[{'name':'web','vips':['198.18.128.0/20:80'],'backends':[{'address':'198.18.2.2:80'}]},"
	  "{'name':'api','vips':['198.18.100.1:8000-8099'],'backends':[{'address':'198.18.130.7:80'},"
	  "{'address':'198.18.100.1:8050'}]}]}",
	  "services[1].backends[0].address: 198.18.130.7:80 is inside a VIP of service \"web\" "
	  "(services[0].vips[0]): lb cannot be its own backend\n"
	  "services[1].backends[1].address: 198.18.100.1:8050 is inside a VIP of service \"api\" "
	  "(services[1].vips[0]): lb cannot be its own backend\n" },
	/* A bad backend address is not reported again as a family mismatch. */
	{ "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],"
	  "'backends':[{'address':'[2001:db8:2::x]:80'}]}]}",
	  "services[0].backends[0].address: invalid address \"[2001:db8:2::x]:80\"\n" },

	/* health */
	{ SVC("'health':'tcp'"), "services[0].health: expected an object\n" },
	{ SVC("'health':[]"), "services[0].health: expected an object\n" },
	{ HEALTH(""), "services[0].health.type: missing required key\n" },
	{ HEALTH("'interval_ms':1000"), "services[0].health.type: missing required key\n" },
	/* Without a known type, http-only keys are not second-guessed. */
	{ HEALTH("'path':'/'"), "services[0].health.type: missing required key\n" },
	{ HEALTH("'type':'udp','host':'x'"),
	  "services[0].health.type: unknown check type \"udp\" (expected tcp or http)\n" },
	{ HEALTH("'type':'HTTP'"),
	  "services[0].health.type: unknown check type \"HTTP\" (expected tcp or http)\n" },
	{ HEALTH("'type':'none'"),
	  "services[0].health.type: unknown check type \"none\" (expected tcp or http)\n" },
	{ HEALTH("'type':1"), "services[0].health.type: expected a string\n" },
	{ HEALTH("'type':'tcp','interval':1000"), "services[0].health.interval: unknown key\n" },
	{ HEALTH("'type':'tcp','interval_ms':0"),
	  "services[0].health.interval_ms: 0 out of range (1..86400000)\n" },
	{ HEALTH("'type':'tcp','interval_ms':86400001"),
	  "services[0].health.interval_ms: 86400001 out of range (1..86400000)\n" },
	{ HEALTH("'type':'tcp','interval_ms':'2s'"),
	  "services[0].health.interval_ms: expected an integer\n" },
	{ HEALTH("'type':'tcp','timeout_ms':0"),
	  "services[0].health.timeout_ms: 0 out of range (1..86400000)\n" },
	{ HEALTH("'type':'tcp','timeout_ms':86400001"),
	  "services[0].health.timeout_ms: 86400001 out of range (1..86400000)\n" },
	{ HEALTH("'type':'tcp','timeout_ms':3000"),
	  "services[0].health: timeout_ms 3000 is above interval_ms 2000\n" },
	{ HEALTH("'interval_ms':500,'type':'http'"),
	  "services[0].health: timeout_ms 1000 is above interval_ms 500\n" },
	{ HEALTH("'type':'tcp','timeout_ms':5000,'interval_ms':4999"),
	  "services[0].health: timeout_ms 5000 is above interval_ms 4999\n" },
	/* One bad time is reported alone, not compared. */
	{ HEALTH("'type':'tcp','timeout_ms':5000,'interval_ms':0"),
	  "services[0].health.interval_ms: 0 out of range (1..86400000)\n" },
	{ HEALTH("'type':'tcp','rise':0"), "services[0].health.rise: 0 out of range (1..100)\n" },
	{ HEALTH("'type':'tcp','rise':101"), "services[0].health.rise: 101 out of range (1..100)\n" },
	{ HEALTH("'type':'tcp','rise':'2'"), "services[0].health.rise: expected an integer\n" },
	{ HEALTH("'type':'tcp','fall':0"), "services[0].health.fall: 0 out of range (1..100)\n" },
	{ HEALTH("'type':'tcp','fall':101"), "services[0].health.fall: 101 out of range (1..100)\n" },
	{ HEALTH("'type':'tcp','fall':3.0"), "services[0].health.fall: expected an integer\n" },
	{ HEALTH("'type':'tcp','port':-1"), "services[0].health.port: -1 out of range (0..65535)\n" },
	{ HEALTH("'type':'tcp','port':65536"),
	  "services[0].health.port: 65536 out of range (0..65535)\n" },
	{ HEALTH("'type':'tcp','port':'80'"), "services[0].health.port: expected an integer\n" },
	{ HEALTH("'type':'http','path':'health'"), "services[0].health.path: must start with \"/\"\n" },
	{ HEALTH("'type':'http','path':''"), "services[0].health.path: must start with \"/\"\n" },
	{ HEALTH("'type':'http','path':'http://x/'"),
	  "services[0].health.path: must start with \"/\"\n" },
	{ HEALTH("'type':'http','path':'/a b'"),
	  "services[0].health.path: must not contain spaces or control characters\n" },
	{ HEALTH("'type':'http','path':'/a\\r\\nX-Injected: 1'"),
	  "services[0].health.path: must not contain spaces or control characters\n" },
	{ HEALTH("'type':'http','path':'/a\\tb'"),
	  "services[0].health.path: must not contain spaces or control characters\n" },
	{ HEALTH("'type':'http','path':'/" X256 X256 X256 X256 "'"),
	  "services[0].health.path: longer than 1024 bytes\n" },
	{ HEALTH("'type':'http','path':5"), "services[0].health.path: expected a string\n" },
	{ HEALTH("'type':'http','host':''"), "services[0].health.host: must not be empty\n" },
	{ HEALTH("'type':'http','host':'a b'"),
	  "services[0].health.host: must not contain spaces or control characters\n" },
	{ HEALTH("'type':'http','host':'a\\nb'"),
	  "services[0].health.host: must not contain spaces or control characters\n" },
	{ HEALTH("'type':'http','host':'" X256 "'"),
	  "services[0].health.host: longer than 255 bytes\n" },
	{ HEALTH("'type':'http','host':1"), "services[0].health.host: expected a string\n" },
	{ HEALTH("'type':'http','expect':200"), "services[0].health.expect: expected a string\n" },
	{ HEALTH("'type':'http','expect':''"),
	  "services[0].health.expect: invalid status \"\"" STATUS_SYNTAX },
	{ HEALTH("'type':'http','expect':'2xx'"),
	  "services[0].health.expect: invalid status \"2xx\"" STATUS_SYNTAX },
	{ HEALTH("'type':'http','expect':'20'"),
	  "services[0].health.expect: invalid status \"20\"" STATUS_SYNTAX },
	{ HEALTH("'type':'http','expect':'2000'"),
	  "services[0].health.expect: invalid status \"2000\"" STATUS_SYNTAX },
	{ HEALTH("'type':'http','expect':'200-'"),
	  "services[0].health.expect: invalid status \"200-\"" STATUS_SYNTAX },
	{ HEALTH("'type':'http','expect':'200 - 399'"),
	  "services[0].health.expect: invalid status \"200 - 399\"" STATUS_SYNTAX },
	{ HEALTH("'type':'http','expect':'200,204'"),
	  "services[0].health.expect: invalid status \"200,204\"" STATUS_SYNTAX },
	{ HEALTH("'type':'http','expect':'099'"),
	  "services[0].health.expect: status code 99 out of range (100..599)\n" },
	{ HEALTH("'type':'http','expect':'600'"),
	  "services[0].health.expect: status code 600 out of range (100..599)\n" },
	{ HEALTH("'type':'http','expect':'200-600'"),
	  "services[0].health.expect: status code 600 out of range (100..599)\n" },
	{ HEALTH("'type':'http','expect':'399-200'"),
	  "services[0].health.expect: invalid status range \"399-200\" (first code above last)\n" },
	{ HEALTH("'type':'tcp','path':'/'"), "services[0].health.path: only for type \"http\"\n" },
	{ HEALTH("'host':'example.org','type':'tcp'"),
	  "services[0].health.host: only for type \"http\"\n" },
	{ HEALTH("'expect':'200','type':'tcp','path':'/x','host':'h'"),
	  "services[0].health.expect: only for type \"http\"\n"
	  "services[0].health.path: only for type \"http\"\n"
	  "services[0].health.host: only for type \"http\"\n" },

	/* quic */
	{ SVC("'quic':{'server_cid_len':8}"),
	  "services[0].quic: applies to UDP; this service's protocol is \"tcp\"\n" },
	{ QUIC("5", "", ""), "services[0].quic: expected an object\n" },
	{ QUIC("{}", "", ""), "services[0].quic: missing required key \"server_cid_len\" (the length "
	  "of the connection IDs the backends issue) or \"lb\"\n" },
	{ QUIC("{'server_cid_len':0}", "", ""), "services[0].quic.server_cid_len: 0 out of range (1..20)\n" },
	{ QUIC("{'server_cid_len':21}", "", ""),
	  "services[0].quic.server_cid_len: 21 out of range (1..20)\n" },
	{ QUIC("{'server_cid_len':'8'}", "", ""),
	  "services[0].quic.server_cid_len: expected an integer\n" },
	{ QUIC("{'server_cid_len':8,'cid_len':8}", "", ""), "services[0].quic.cid_len: unknown key\n" },
	{ QUIC("{'lb':[]}", "", ""), "services[0].quic.lb: expected an object\n" },
	{ QUIC("{'lb':{}}", "", ""), "services[0].quic.lb.server_id_len: missing required key\n"
	  "services[0].quic.lb.nonce_len: missing required key\n" },
	{ QUIC("{'lb':{'config_id':7,'server_id_len':0,'nonce_len':3,'key':'00'}}", "", ""),
	  "services[0].quic.lb.config_id: 7 out of range (0..6)\n"
	  "services[0].quic.lb.server_id_len: 0 out of range (1..15)\n"
	  "services[0].quic.lb.nonce_len: 3 out of range (4..18)\n"
	  "services[0].quic.lb.key: unknown key\n" },
	{ QUIC("{'lb':{'server_id_len':15,'nonce_len':5}}", "", ""),
	  "services[0].quic.lb: server_id_len 15 + nonce_len 5 is above 19 (a connection ID is at "
	  "most 20 octets, the first one being the config octet)\n" },
	{ QUIC("{'server_cid_len':8,'lb':{'server_id_len':2,'nonce_len':6}}", "", ""),
	  "services[0].quic.server_cid_len: 8 is below the QUIC-LB connection ID length 9 "
	  "(1 + server_id_len 2 + nonce_len 6)\n" },
	{ QUIC("{'server_cid_len':8}", SID("0a01"), ""),
	  "services[0].backends[0].quic_server_id: needs \"quic\": {\"lb\": {...}} in the service (the "
	  "QUIC-LB configuration that gives server IDs their length)\n" },
	{ SVC("'quic_server_id':'0a01'"), "services[0].quic_server_id: unknown key\n" },
	{ QUIC(QLB, SID("0a01"), ",'quic_server_id':1"),
	  "services[0].backends[1].quic_server_id: expected a string\n" },
	{ QUIC(QLB, SID("0g01"), SID("0a0102")),
	  "services[0].backends[0].quic_server_id: invalid server ID \"0g01\" (not a hex digit:" SID_HEX
	  "services[0].backends[1].quic_server_id: invalid server ID \"0a0102\" (wrong length:" SID_HEX },
	{ QUIC(QLB, SID("0A01"), SID("0a01")),
	  "services[0].backends[1].quic_server_id: server ID 0a01 is already backends[0]'s (one ID "
	  "per server: a server's IPv4 and IPv6 addresses may share it)\n" },
	/* A broken lb block is reported once, not again by every server ID it would size. */
	{ QUIC("{'lb':{'server_id_len':2,'nonce_len':2}}", SID("0a01"), SID("0a02")),
	  "services[0].quic.lb.nonce_len: 2 out of range (4..18)\n" },
};

START_TEST(test_invalid)
{
	parse_fails(invalid[_i].json, invalid[_i].errors);
}
END_TEST

/* A VIP of one protocol is no loop for a backend reached by the other: it is not intercepted. */
START_TEST(test_backend_at_other_protocol_vip)
{
	struct lb_config *cfg = parse_ok(
		"{'services': [{'name': 'dns', 'protocol': 'udp', 'vips': ['198.18.100.1:53'],"
		"   'backends': [{'address': '198.18.2.2:53'}]},"
		"  {'name': 'dot', 'vips': ['198.18.100.2:53'],"
		"   'backends': [{'address': '198.18.100.1:53'}]}]}");

	ck_assert_uint_eq(cfg->n_services, 2);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_families_per_service)
{
	struct lb_config *cfg = parse_ok(
		"{'services': [{'name': 'v4', 'vips': ['198.18.100.1:80'],"
		"   'backends': [{'address': '198.18.2.2:80'}]},"
		"  {'name': 'v6', 'vips': ['[2001:db8:100::1]:80'],"
		"   'backends': [{'address': '[2001:db8:2::2]:80'}]},"
		"  {'name': 'same-vip-other-port', 'vips': ['198.18.100.1:443'],"
		"   'backends': [{'address': '198.18.2.2:80'}, {'address': '198.18.2.2:443'}]}]}");

	ck_assert_uint_eq(cfg->n_services, 3);
	ck_assert_uint_eq(cfg->services[2].n_backends, 2);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_warnings)
{
	/* Every weight 0: one warning for the service, none per VIP. */
	parse_warns("{'services':[{'name':'web','vips':['198.18.100.1:80','[2001:db8:100::1]:80'],"
		    "'backends':[{'address':'198.18.2.2:80','weight':0},"
		    "{'address':'[2001:db8:2::2]:80','weight':0}]}]}",
		    "services[0].backends: every backend has weight 0: the service refuses every "
		    "client until a weight is raised (lbctl weight)\n");
	/* Every backend of one family at 0: that family's VIPs. */
	parse_warns("{'services':[{" SVC_BODY "},{'name':'api','vips':['198.18.100.2:80',"
		    "'[2001:db8:100::2]:80','[2001:db8:100::3]:80'],"
		    "'backends':[{'address':'198.18.2.2:80'},{'address':'[2001:db8:2::2]:80','weight':0},"
		    "{'address':'[2001:db8:2::3]:80','weight':0}]}]}",
		    "services[1].vips[1]: every IPv6 backend has weight 0: clients of this VIP are "
		    "refused until a weight is raised (lbctl weight)\n"
		    "services[1].vips[2]: every IPv6 backend has weight 0: clients of this VIP are "
		    "refused until a weight is raised (lbctl weight)\n");
	/* One backend with weight 0 among others, or none: nothing to say. */
	parse_warns("{'services':[{'name':'web','vips':['198.18.100.1:80'],"
		    "'backends':[{'address':'198.18.2.2:80','weight':0},{'address':'198.18.2.3:80'}]}]}",
		    NULL);
	parse_warns("{'services':[{" SVC_BODY "}]}", NULL);
	/* A wait for the first bytes of a connect that does not send them. */
	parse_warns(SVC("'fastopen_wait_ms':50"),
		    "services[0].fastopen_wait_ms: has no effect without \"fastopen\": true\n");
	parse_warns(SVC("'fastopen_wait_ms':50,'fastopen':true"), NULL);
	/* A backend on a VIP's address but another port is someone else's host. */
	parse_warns("{'services':[{'name':'web','vips':['198.18.100.1:80'],"
		    "'backends':[{'address':'198.18.100.1:8080'}]}]}", NULL);
}
END_TEST

START_TEST(test_quic)
{
	static const uint8_t a[] = { 0x0a, 0x01 }, b[] = { 0x0a, 0x02 }, c[] = { 0xff, 0x00 };
	const struct lb_service_conf *svc;
	struct lb_config *cfg;

	/* Learned CIDs only: the length is the operator's. */
	cfg = parse_ok(QUIC("{'server_cid_len':18}", "", ""));
	svc = &cfg->services[0];
	ck_assert(svc->quic.enabled);
	ck_assert(!svc->quic.has_lb);
	ck_assert_uint_eq(svc->quic.server_cid_len, 18);
	ck_assert_ptr_null(cfg->warnings);
	lb_config_free(cfg);

	/* QUIC-LB: the CID length defaults to 1 + server ID + nonce; a dual-stack server has one ID. */
	cfg = parse_ok("{'services':[{'name':'h3','protocol':'tcp+udp','vips':['198.18.100.1:443',"
		       "'[2001:db8:100::1]:443'],'quic':{'lb':{'config_id':6,'server_id_len':2,"
		       "'nonce_len':6}},'backends':[{'address':'198.18.2.2:443','quic_server_id':'0A02'},"
		       "{'address':'[2001:db8:2::2]:443','quic_server_id':'0a02'},"
		       "{'address':'198.18.2.3:443','quic_server_id':'0a01'},"
		       "{'address':'198.18.2.4:443'}]}]}");
	svc = &cfg->services[0];
	ck_assert(svc->quic.enabled && svc->quic.has_lb);
	ck_assert_uint_eq(svc->quic.lb.config_id, 6);
	ck_assert_uint_eq(svc->quic.lb.server_id_len, 2);
	ck_assert_uint_eq(svc->quic.lb.nonce_len, 6);
	ck_assert(!svc->quic.lb.encode_len);
	ck_assert_uint_eq(svc->quic.server_cid_len, 9);
	ck_assert_uint_eq(svc->quic.n_server_ids, 3);
	ck_assert_int_eq(lb_config_find_server_id(svc, b, AF_INET), 0);
	ck_assert_int_eq(lb_config_find_server_id(svc, b, AF_INET6), 1);
	ck_assert_int_eq(lb_config_find_server_id(svc, a, AF_INET), 2);
	ck_assert_int_eq(lb_config_find_server_id(svc, a, AF_INET6), -1);
	ck_assert_int_eq(lb_config_find_server_id(svc, c, AF_INET), -1);
	ck_assert_str_eq(cfg->warnings, "services[0].backends[3]: no quic_server_id: its QUIC "
			 "connections are followed only by the connection IDs lb learns, not by "
			 "QUIC-LB\n");
	lb_config_free(cfg);

	/* A longer CID than QUIC-LB's: the server adds its own octets after the nonce. */
	cfg = parse_ok(QUIC("{'server_cid_len':20,'lb':{'server_id_len':1,'nonce_len':4}}",
			    SID("01"), SID("02")));
	ck_assert_uint_eq(cfg->services[0].quic.server_cid_len, 20);
	ck_assert_uint_eq(cfg->services[0].quic.lb.config_id, 0);
	lb_config_free(cfg);

	/* Without "quic", nothing of it. */
	cfg = parse_ok(SVC("'protocol':'udp'"));
	ck_assert(!cfg->services[0].quic.enabled);
	ck_assert_ptr_null(cfg->services[0].quic.by_server_id);
	lb_config_free(cfg);
}
END_TEST


/* Warnings never make a config fail, and do not show among its errors. */
START_TEST(test_warnings_with_errors)
{
	parse_fails("{'services':[{'name':'web','vips':['198.18.100.1:80'],"
		    "'backends':[{'address':'198.18.2.2:80','weight':0}],'retries':99}]}",
		    "services[0].retries: 99 out of range (0..16)\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_service");
	TCase *tc = lb_test_case(s, "config_service", NULL, NULL,
				 LB_TESTS(test_maglev, test_maglev_too_many, test_idle_timeouts,
					  test_limits, test_health,
					  test_families_per_service, test_warnings,
					  test_warnings_with_errors, test_quic,
					  test_backend_at_other_protocol_vip));

	tcase_add_loop_test(tc, test_scheduler, 0, sizeof(schedulers) / sizeof(schedulers[0]));
	tcase_add_loop_test(tc, test_invalid, 0, sizeof(invalid) / sizeof(invalid[0]));
	tcase_add_loop_test(tc, test_maglev_default_size, 0,
			    sizeof(maglev_sizes) / sizeof(maglev_sizes[0]));
	return lb_test_run(s);
}
