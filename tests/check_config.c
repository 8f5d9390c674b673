// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb/config.h"

/*
 * The JSON below is written with single quotes to stay readable in C;
 * parse_q() turns them into double quotes before parsing.
 */
static struct lb_config *parse_q(const char *text, char **errors)
{
	struct lb_config *cfg;
	char *json = strdup(text), *p;

	ck_assert_ptr_nonnull(json);
	for (p = json; *p; p++)
		if (*p == '\'')
			*p = '"';
	cfg = lb_config_parse(json, errors);
	free(json);
	return cfg;
}

/* Parses text, which must be valid, and returns the config. */
static struct lb_config *parse_ok(const char *text)
{
	struct lb_config *cfg;
	char *errors = (char *)"unset";

	cfg = parse_q(text, &errors);
	if (!cfg)
		ck_abort_msg("unexpected errors:\n%s", errors);
	ck_assert_ptr_null(errors);
	return cfg;
}

/* Parses text, which must be invalid, and compares the error lines. */
static void parse_fails(const char *text, const char *expected)
{
	struct lb_config *cfg;
	char *errors = NULL;

	cfg = parse_q(text, &errors);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(errors);
	ck_assert_str_eq(errors, expected);
	free(errors);
}

static const char *fmt(const union lb_sockaddr *a)
{
	static char buf[LB_ADDR_STRLEN];

	return lb_addr_format(a, buf, sizeof(buf));
}

static const char *srcdir_path(const char *rel, char *buf, size_t len)
{
	const char *dir = getenv("LB_SRCDIR");

	snprintf(buf, len, "%s/%s", dir && *dir ? dir : ".", rel);
	return buf;
}

START_TEST(test_full)
{
	struct lb_config *cfg = parse_ok(
		"{'workers': 2, 'control': {'path': '/run/lb/x.sock'},"
		" 'intercept': {'port': 50081, 'mark': 4294967295, 'table': 'lb_Test-1',"
		"   'route_table': 4294967295, 'rule_priority': 32765},"
		" 'drain_timeout_ms': 86400000,"
		" 'services': [{'name': 'web', 'vips': ['198.18.100.1:80', '[2001:db8:100::1]:80'],"
		"   'scheduler': 'roundrobin',"
		"   'backends': [{'address': '198.18.2.2:80', 'weight': 1000},"
		"                {'address': '[2001:db8:2::2]:8080', 'weight': 0}],"
		"   'connect_timeout_ms': 1, 'idle_timeout_ms': 600000, 'retries': 16},"
		"  {'name': 'dns.v2_a-b', 'vips': ['[::ffff:198.18.100.2]:53'],"
		"   'backends': [{'address': '198.18.2.9:53'}], 'retries': 0}]}");
	const struct lb_service_conf *s;

	ck_assert_uint_eq(cfg->workers, 2);
	ck_assert_str_eq(cfg->control_path, "/run/lb/x.sock");
	ck_assert_uint_eq(cfg->intercept.port, 50081);
	ck_assert_uint_eq(cfg->intercept.mark, 0xffffffff);
	ck_assert_str_eq(cfg->intercept.table, "lb_Test-1");
	ck_assert_uint_eq(cfg->intercept.route_table, 0xffffffff);
	ck_assert_uint_eq(cfg->intercept.rule_priority, 32765);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 86400000);
	ck_assert_uint_eq(cfg->n_services, 2);

	s = &cfg->services[0];
	ck_assert_str_eq(s->name, "web");
	ck_assert_uint_eq(s->n_vips, 2);
	ck_assert_str_eq(fmt(&s->vips[0]), "198.18.100.1:80");
	ck_assert_str_eq(fmt(&s->vips[1]), "[2001:db8:100::1]:80");
	ck_assert_int_eq(s->sched, LB_SCHED_ROUNDROBIN);
	ck_assert_uint_eq(s->n_backends, 2);
	ck_assert_str_eq(fmt(&s->backends[0].addr), "198.18.2.2:80");
	ck_assert_uint_eq(s->backends[0].weight, 1000);
	ck_assert_str_eq(fmt(&s->backends[1].addr), "[2001:db8:2::2]:8080");
	ck_assert_uint_eq(s->backends[1].weight, 0);
	ck_assert_uint_eq(s->connect_timeout_ms, 1);
	ck_assert_uint_eq(s->client_idle_timeout_ms, 600000);
	ck_assert_uint_eq(s->server_idle_timeout_ms, 600000);
	ck_assert_uint_eq(s->retries, 16);

	s = &cfg->services[1];
	ck_assert_str_eq(s->name, "dns.v2_a-b");
	/* An IPv4-mapped VIP is stored as the IPv4 address it stands for. */
	ck_assert_int_eq(s->vips[0].sa.sa_family, AF_INET);
	ck_assert_str_eq(fmt(&s->vips[0]), "198.18.100.2:53");
	ck_assert_uint_eq(s->backends[0].weight, 1);
	/* Stored as given, even above the number of backends. */
	ck_assert_uint_eq(s->retries, 0);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_defaults)
{
	struct lb_config *cfg = parse_ok(
		"{'services': [{'name': 'web', 'vips': ['198.18.100.1:80'],"
		" 'backends': [{'address': '198.18.2.2:80'}]}]}");
	const struct lb_service_conf *s = &cfg->services[0];

	ck_assert_uint_eq(cfg->workers, 0);
	ck_assert_str_eq(cfg->control_path, "/run/lb/lb.sock");
	ck_assert_uint_eq(cfg->intercept.port, 50080);
	ck_assert_uint_eq(cfg->intercept.mark, 1);
	ck_assert_str_eq(cfg->intercept.table, "lb");
	ck_assert_uint_eq(cfg->intercept.route_table, 100);
	ck_assert_uint_eq(cfg->intercept.rule_priority, 100);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->n_services, 1);
	ck_assert_int_eq(s->sched, LB_SCHED_ROUNDROBIN);
	ck_assert_uint_eq(s->backends[0].weight, 1);
	ck_assert_uint_eq(s->connect_timeout_ms, 3000);
	ck_assert_uint_eq(s->client_idle_timeout_ms, 300000);
	ck_assert_uint_eq(s->server_idle_timeout_ms, 300000);
	ck_assert_uint_eq(s->retries, 2);
	lb_config_free(cfg);

	/* Empty sub-objects keep the defaults too; retries is not capped here. */
	cfg = parse_ok("{'control': {}, 'intercept': {}, 'services': [{'name': 'web',"
		       " 'vips': ['198.18.100.1:80'], 'backends': [{'address': '198.18.2.2:80'}],"
		       " 'retries': 5}]}");
	ck_assert_str_eq(cfg->control_path, "/run/lb/lb.sock");
	ck_assert_str_eq(cfg->intercept.table, "lb");
	ck_assert_uint_eq(cfg->services[0].retries, 5);
	lb_config_free(cfg);
}
END_TEST

#define SVC_BODY "'name':'web','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]"
/* Adds top-level keys to a valid config. */
#define TOP(x) "{" x ",'services':[{" SVC_BODY "}]}"
/* Adds service keys to a valid config. */
#define SVC(x) "{'services':[{" SVC_BODY "," x "}]}"
/* A service with one IPv4 VIP and the given backends. */
#define BACKENDS(x) "{'services':[{'name':'web','vips':['198.18.100.1:80'],'backends':[" x "]}]}"
/* A service with the given VIPs and backends of both families. */
#define VIPS(x) "{'services':[{'name':'web','vips':[" x "],'backends':[" \
	"{'address':'198.18.2.2:80'},{'address':'[2001:db8:2::2]:80'}]}]}"
#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16

static const struct {
	const char *json;
	const char *errors;
} invalid[] = {
	/* Document shape. */
	{ "[]", "(root): expected an object\n" },
	{ "'lb'", "(root): expected an object\n" },
	{ "{}", "services: missing required key\n" },
	{ TOP("'bogus':1"), "bogus: unknown key\n" },
	{ "{'a\\nb':1,'services':[{" SVC_BODY "}]}", "a\\x0ab: unknown key\n" },

	/* workers */
	{ TOP("'workers':'2'"), "workers: expected an integer\n" },
	{ TOP("'workers':2.0"), "workers: expected an integer\n" },
	{ TOP("'workers':true"), "workers: expected an integer\n" },
	{ TOP("'workers':null"), "workers: expected an integer\n" },
	{ TOP("'workers':-1"), "workers: -1 out of range (0..256)\n" },
	{ TOP("'workers':257"), "workers: 257 out of range (0..256)\n" },

	/* control */
	{ TOP("'control':'/run/lb.sock'"), "control: expected an object\n" },
	{ TOP("'control':{'path':5}"), "control.path: expected a string\n" },
	{ TOP("'control':{'path':'lb.sock'}"), "control.path: must be an absolute path\n" },
	{ TOP("'control':{'path':''}"), "control.path: must be an absolute path\n" },
	{ TOP("'control':{'path':'/" X64 X16 X16 "xxxxxxxxxxx'}"),
	  "control.path: longer than 107 bytes\n" },
	{ TOP("'control':{'socket':'/run/lb.sock'}"), "control.socket: unknown key\n" },

	/* intercept */
	{ TOP("'intercept':[]"), "intercept: expected an object\n" },
	{ TOP("'intercept':{'port':'50080'}"), "intercept.port: expected an integer\n" },
	{ TOP("'intercept':{'port':0}"), "intercept.port: 0 out of range (1..65535)\n" },
	{ TOP("'intercept':{'port':65536}"), "intercept.port: 65536 out of range (1..65535)\n" },
	{ TOP("'intercept':{'mark':0}"), "intercept.mark: 0 out of range (1..4294967295)\n" },
	{ TOP("'intercept':{'mark':4294967296}"),
	  "intercept.mark: 4294967296 out of range (1..4294967295)\n" },
	{ TOP("'intercept':{'route_table':0}"),
	  "intercept.route_table: 0 out of range (1..4294967295)\n" },
	{ TOP("'intercept':{'route_table':4294967296}"),
	  "intercept.route_table: 4294967296 out of range (1..4294967295)\n" },
	{ TOP("'intercept':{'route_table':253}"),
	  "intercept.route_table: 253 is reserved (the \"default\" routing table)\n" },
	{ TOP("'intercept':{'route_table':254}"),
	  "intercept.route_table: 254 is reserved (the \"main\" routing table)\n" },
	{ TOP("'intercept':{'route_table':255}"),
	  "intercept.route_table: 255 is reserved (the \"local\" routing table)\n" },
	{ TOP("'intercept':{'rule_priority':0}"),
	  "intercept.rule_priority: 0 out of range (1..32765)\n" },
	{ TOP("'intercept':{'rule_priority':32766}"),
	  "intercept.rule_priority: 32766 out of range (1..32765)\n" },
	{ TOP("'intercept':{'table':7}"), "intercept.table: expected a string\n" },
	{ TOP("'intercept':{'table':''}"),
	  "intercept.table: invalid name \"\" (1..64 characters of A-Za-z0-9_-)\n" },
	{ TOP("'intercept':{'table':'lb x'}"),
	  "intercept.table: invalid name \"lb x\" (1..64 characters of A-Za-z0-9_-)\n" },
	{ TOP("'intercept':{'table':'lb.x'}"),
	  "intercept.table: invalid name \"lb.x\" (1..64 characters of A-Za-z0-9_-)\n" },
	{ TOP("'intercept':{'table':'" X64 "y'}"),
	  "intercept.table: invalid name \"" X64 "...\" (1..64 characters of A-Za-z0-9_-)\n" },
	{ TOP("'intercept':{'priority':100}"), "intercept.priority: unknown key\n" },

	/* drain_timeout_ms */
	{ TOP("'drain_timeout_ms':'10s'"), "drain_timeout_ms: expected an integer\n" },
	{ TOP("'drain_timeout_ms':0"), "drain_timeout_ms: 0 out of range (1..86400000)\n" },
	{ TOP("'drain_timeout_ms':86400001"),
	  "drain_timeout_ms: 86400001 out of range (1..86400000)\n" },

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
	{ SVC("'scheduler':'foo'"),
	  "services[0].scheduler: unknown scheduler \"foo\" (expected roundrobin)\n" },
	{ SVC("'scheduler':1"), "services[0].scheduler: expected a string\n" },
	{ SVC("'connect_timeout_ms':0"),
	  "services[0].connect_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'connect_timeout_ms':86400001"),
	  "services[0].connect_timeout_ms: 86400001 out of range (1..86400000)\n" },
	{ SVC("'idle_timeout_ms':0"), "services[0].idle_timeout_ms: 0 out of range (1..86400000)\n" },
	{ SVC("'idle_timeout_ms':1.5"), "services[0].idle_timeout_ms: expected an integer\n" },
	{ SVC("'retries':17"), "services[0].retries: 17 out of range (0..16)\n" },
	{ SVC("'retries':-1"), "services[0].retries: -1 out of range (0..16)\n" },

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
	{ VIPS("'198.18.100.1:80','198.18.100.1:80'"),
	  "services[0].vips[1]: 198.18.100.1:80 already used by service \"web\"\n" },
	{ VIPS("'198.18.100.1:80','[::ffff:198.18.100.1]:80'"),
	  "services[0].vips[1]: 198.18.100.1:80 already used by service \"web\"\n" },
	{ "{'services':[{" SVC_BODY "},{'name':'api','vips':['198.18.100.1:80'],"
	  "'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[1].vips[0]: 198.18.100.1:80 already used by service \"web\"\n" },
	{ "{'services':[{'vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]},"
	  "{'name':'api','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}",
	  "services[0].name: missing required key\n"
	  "services[1].vips[0]: 198.18.100.1:80 already used by services[0]\n" },
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
	/* A bad backend address is not reported again as a family mismatch. */
	{ "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],"
	  "'backends':[{'address':'[2001:db8:2::x]:80'}]}]}",
	  "services[0].backends[0].address: invalid address \"[2001:db8:2::x]:80\"\n" },

	/* Syntax, reported by jansson with its position. */
	{ "{'workers':1,'workers':2}", "line 1, column 22: duplicate object key near '\"workers\"'\n" },
	{ "", "line 1, column 0: unexpected token near end of file\n" },
	{ "{\n  'workers': 2,\n}", "line 3, column 1: string or '}' expected near '}'\n" },
};

START_TEST(test_invalid)
{
	parse_fails(invalid[_i].json, invalid[_i].errors);
}
END_TEST

/* Every error is reported, one line each, in document order. */
START_TEST(test_many_errors)
{
	parse_fails("{'workers': 'two', 'control': {'path': 'lb.sock', 'mode': 384},"
		    " 'intercept': {'port': 0, 'mark': 0, 'table': 'l b', 'route_table': 254,"
		    "   'rule_priority': 40000},"
		    " 'drain_timeout_ms': 0,"
		    " 'services': [{'name': 'web', 'vips': ['198.18.100.1:80', '[2001:db8:100::1]:80'],"
		    "   'scheduler': 'foo', 'backend': [],"
		    "   'backends': [{'address': '198.18.2.2:80'}, {'address': '198.18.2.3'},"
		    "     {'address': '198.18.2.2:80', 'weight': 2000}]},"
		    "  {'name': 'web', 'vips': ['198.18.100.1:80', 'foo'],"
		    "   'backends': [{'address': '198.18.2.4:99999'}], 'retries': 99},"
		    "  {'name': 'dns', 'vips': ['[2001:db8:100::53]:53'],"
		    "   'backends': [{'address': '198.18.2.5:53'}]},"
		    "  {}],"
		    " 'extra': true}",
		    "workers: expected an integer\n"
		    "control.path: must be an absolute path\n"
		    "control.mode: unknown key\n"
		    "intercept.port: 0 out of range (1..65535)\n"
		    "intercept.mark: 0 out of range (1..4294967295)\n"
		    "intercept.table: invalid name \"l b\" (1..64 characters of A-Za-z0-9_-)\n"
		    "intercept.route_table: 254 is reserved (the \"main\" routing table)\n"
		    "intercept.rule_priority: 40000 out of range (1..32765)\n"
		    "drain_timeout_ms: 0 out of range (1..86400000)\n"
		    "services[0].scheduler: unknown scheduler \"foo\" (expected roundrobin)\n"
		    "services[0].backend: unknown key\n"
		    "services[0].backends[1].address: missing port\n"
		    "services[0].backends[2].address: 198.18.2.2:80 already listed at backends[0]\n"
		    "services[0].backends[2].weight: 2000 out of range (0..1000)\n"
		    "services[1].name: duplicate service name \"web\" (also services[0])\n"
		    "services[1].vips[0]: 198.18.100.1:80 already used by service \"web\"\n"
		    "services[1].vips[1]: invalid address \"foo\"\n"
		    "services[1].backends[0].address: port 99999 out of range\n"
		    "services[1].retries: 99 out of range (0..16)\n"
		    "services[2].vips[0]: no IPv6 backend for this IPv6 VIP\n"
		    "services[3].name: missing required key\n"
		    "services[3].vips: missing required key\n"
		    "services[3].backends: missing required key\n"
		    "extra: unknown key\n");
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

START_TEST(test_find_service)
{
	struct lb_config *cfg = parse_ok(
		"{'services': [{'name': 'web', 'vips': ['198.18.100.1:80', '[2001:db8:100::1]:80'],"
		"   'backends': [{'address': '198.18.2.2:80'}, {'address': '[2001:db8:2::2]:80'}]},"
		"  {'name': 'tls', 'vips': ['198.18.100.1:443'],"
		"   'backends': [{'address': '198.18.2.2:443'}]}]}");
	union lb_sockaddr a;

	ck_assert_int_eq(lb_addr_parse("198.18.100.1:80", &a, NULL), 0);
	ck_assert_ptr_eq(lb_config_find_service(cfg, &a), &cfg->services[0]);
	ck_assert_int_eq(lb_addr_parse("[2001:db8:100::1]:80", &a, NULL), 0);
	ck_assert_ptr_eq(lb_config_find_service(cfg, &a), &cfg->services[0]);
	ck_assert_int_eq(lb_addr_parse("198.18.100.1:443", &a, NULL), 0);
	ck_assert_ptr_eq(lb_config_find_service(cfg, &a), &cfg->services[1]);
	/* What a dual-stack socket reports for an IPv4 peer. */
	ck_assert_int_eq(lb_addr_parse("[::ffff:198.18.100.1]:443", &a, NULL), 0);
	ck_assert_ptr_eq(lb_config_find_service(cfg, &a), &cfg->services[1]);
	ck_assert_int_eq(a.sa.sa_family, AF_INET6);	/* the argument is left alone */

	ck_assert_int_eq(lb_addr_parse("198.18.100.1:8080", &a, NULL), 0);
	ck_assert_ptr_null(lb_config_find_service(cfg, &a));
	ck_assert_int_eq(lb_addr_parse("198.18.100.2:80", &a, NULL), 0);
	ck_assert_ptr_null(lb_config_find_service(cfg, &a));
	ck_assert_int_eq(lb_addr_parse("[2001:db8:100::1]:443", &a, NULL), 0);
	ck_assert_ptr_null(lb_config_find_service(cfg, &a));
	ck_assert_int_eq(lb_addr_parse("[::198.18.100.1]:80", &a, NULL), 0);
	ck_assert_ptr_null(lb_config_find_service(cfg, &a));
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_has_family)
{
	struct lb_config *cfg = parse_ok(
		"{'services': [{'name': 'web', 'vips': ['198.18.100.1:80'],"
		" 'backends': [{'address': '198.18.2.2:80'}, {'address': '[2001:db8:2::2]:80'}]}]}");

	ck_assert_int_eq(lb_config_has_family(cfg, AF_INET), 1);
	/* Backends do not count: only VIPs need interception. */
	ck_assert_int_eq(lb_config_has_family(cfg, AF_INET6), 0);
	lb_config_free(cfg);

	cfg = parse_ok("{'services': [{'name': 'web', 'vips': ['[2001:db8:100::1]:80'],"
		       " 'backends': [{'address': '[2001:db8:2::2]:80'}]}]}");
	ck_assert_int_eq(lb_config_has_family(cfg, AF_INET), 0);
	ck_assert_int_eq(lb_config_has_family(cfg, AF_INET6), 1);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_load_lab)
{
	char path[4096], *errors = (char *)"unset";
	const struct lb_service_conf *s;
	struct lb_config *cfg;

	cfg = lb_config_load(srcdir_path("docs/examples/lab.json", path, sizeof(path)), &errors);
	if (!cfg)
		ck_abort_msg("%s:\n%s", path, errors);
	ck_assert_ptr_null(errors);
	ck_assert_uint_eq(cfg->workers, 2);
	ck_assert_str_eq(cfg->control_path, "/run/lb/lab.sock");
	ck_assert_uint_eq(cfg->n_services, 1);
	s = &cfg->services[0];
	ck_assert_str_eq(s->name, "web");
	ck_assert_uint_eq(s->n_vips, 2);
	ck_assert_str_eq(fmt(&s->vips[0]), "198.18.100.1:80");
	ck_assert_str_eq(fmt(&s->vips[1]), "[2001:db8:100::1]:80");
	ck_assert_uint_eq(s->n_backends, 4);
	ck_assert_str_eq(fmt(&s->backends[0].addr), "198.18.2.2:80");
	ck_assert_str_eq(fmt(&s->backends[1].addr), "198.18.2.3:80");
	ck_assert_str_eq(fmt(&s->backends[2].addr), "[2001:db8:2::2]:80");
	ck_assert_str_eq(fmt(&s->backends[3].addr), "[2001:db8:2::3]:80");
	ck_assert(lb_config_has_family(cfg, AF_INET));
	ck_assert(lb_config_has_family(cfg, AF_INET6));
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_load_minimal)
{
	char path[4096], *errors = (char *)"unset";
	struct lb_config *cfg;

	cfg = lb_config_load(srcdir_path("docs/examples/minimal.json", path, sizeof(path)),
			     &errors);
	if (!cfg)
		ck_abort_msg("%s:\n%s", path, errors);
	ck_assert_ptr_null(errors);
	ck_assert_uint_eq(cfg->n_services, 1);
	lb_config_free(cfg);
}
END_TEST

/* Writes len bytes to a new temporary file; returns its path in path. */
static void write_temp(char *path, const char *data, size_t len)
{
	FILE *f;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_load_errors)
{
	static const char bad[] = "{\"services\": [\n\t{\"name\": \"web\"}\n],\n\"workers\": \"a\"}";
	static const char nul[] = "{\"services\": []}\0{";
	char path[] = "/tmp/check_config.XXXXXX", *errors = NULL;

	ck_assert_ptr_null(lb_config_load("/nonexistent/lb.json", &errors));
	ck_assert_str_eq(errors, "/nonexistent/lb.json: No such file or directory\n");
	free(errors);

	ck_assert_ptr_null(lb_config_load("/", &errors));
	ck_assert_str_eq(errors, "/: Is a directory\n");
	free(errors);

	/* Errors from a file read the same as from text. */
	write_temp(path, bad, sizeof(bad) - 1);
	ck_assert_ptr_null(lb_config_load(path, &errors));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_str_eq(errors, "services[0].vips: missing required key\n"
				 "services[0].backends: missing required key\n"
				 "workers: expected an integer\n");
	free(errors);

	/* A NUL byte does not end the file early. */
	strcpy(path, "/tmp/check_config.XXXXXX");
	write_temp(path, nul, sizeof(nul) - 1);
	ck_assert_ptr_null(lb_config_load(path, &errors));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_str_eq(errors, "line 1, column 17: end of file expected near end of file\n");
	free(errors);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_defaults);
	tcase_add_loop_test(tc, test_invalid, 0, sizeof(invalid) / sizeof(invalid[0]));
	tcase_add_test(tc, test_many_errors);
	tcase_add_test(tc, test_families_per_service);
	tcase_add_test(tc, test_find_service);
	tcase_add_test(tc, test_has_family);
	tcase_add_test(tc, test_load_lab);
	tcase_add_test(tc, test_load_minimal);
	tcase_add_test(tc, test_load_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
