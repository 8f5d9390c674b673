// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/config.c and config_json.c: the document, control, intercept, users
 * and logging keys, every error in one report, loading files, and the
 * lookups over a parsed config. Services are check_config_service's.
 */
#include <arpa/inet.h>
#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lb/config.h"
#include "lb/log.h"
#include "tests/config_fixture.h"
#include "tests/unit.h"

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

START_TEST(test_workers_auto)
{
	struct lb_config *cfg = parse_ok(TOP("'workers':'auto','connections':1000000"));

	ck_assert(cfg->workers_auto);
	ck_assert_uint_eq(cfg->workers, 0);
	ck_assert_uint_eq(cfg->connections, 1000000);
	lb_config_free(cfg);
	/* A target with a fixed count is kept: lb -t warns when they disagree. */
	cfg = parse_ok(TOP("'workers':4,'connections':1000000000"));
	ck_assert(!cfg->workers_auto);
	ck_assert_uint_eq(cfg->workers, 4);
	ck_assert_uint_eq(cfg->connections, 1000000000);
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
	ck_assert(!cfg->workers_auto);
	ck_assert_uint_eq(cfg->connections, 0);
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
	ck_assert_uint_eq(s->socket_buffer_bytes, 0);
	ck_assert(!s->fastopen);
	ck_assert_uint_eq(s->fastopen_wait_ms, 3);
	ck_assert_ptr_null(cfg->warnings);
	ck_assert_uint_eq(cfg->control_mode, 0600);
	ck_assert_ptr_null(cfg->control_group);
	ck_assert_str_eq(cfg->user, "nobody");
	ck_assert_str_eq(cfg->group, "nogroup");
	ck_assert_uint_eq(cfg->uid, getpwnam("nobody")->pw_uid);
	ck_assert_uint_eq(cfg->gid, getgrnam("nogroup")->gr_gid);
	ck_assert_uint_eq(cfg->log_level, LB_LOG_INFO);
	ck_assert(!cfg->log_syslog);
	ck_assert(!cfg->access_log);
	ck_assert_int_eq(s->hash_port, 0);
	ck_assert_uint_eq(s->maglev_size, 101);	/* sized to its one backend */
	ck_assert_uint_eq(s->queue_timeout_ms, 1000);
	ck_assert_uint_eq(s->backends[0].max_conns, 0);
	/* Without a health block, passive checks and probes still need these. */
	ck_assert_int_eq(s->health.type, LB_CHECK_NONE);
	ck_assert_uint_eq(s->health.interval_ms, 2000);
	ck_assert_uint_eq(s->health.timeout_ms, 1000);
	ck_assert_uint_eq(s->health.rise, 2);
	ck_assert_uint_eq(s->health.fall, 3);
	ck_assert_uint_eq(s->health.port, 0);
	ck_assert_ptr_null(s->health.path);
	ck_assert_ptr_null(s->health.host);
	ck_assert_uint_eq(s->health.expect_min, 200);
	ck_assert_uint_eq(s->health.expect_max, 399);
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

/* control.mode as an octal string or as the mode's integer value. */
static const struct {
	const char *json;
	unsigned int mode;
} modes[] = {
	{ "'0600'", 0600 }, { "'600'", 0600 }, { "'0660'", 0660 }, { "'660'", 0660 },
	{ "'0777'", 0777 }, { "'0'", 0 }, { "'7'", 07 }, { "'0000'", 0 },
	{ "384", 0600 }, { "432", 0660 }, { "511", 0777 }, { "0", 0 },
};

START_TEST(test_control_mode)
{
	char json[256];
	struct lb_config *cfg;

	snprintf(json, sizeof(json), "{'control': {'mode': %s}, 'services': [{'name': 'web',"
		 " 'vips': ['198.18.100.1:80'], 'backends': [{'address': '198.18.2.2:80'}]}]}",
		 modes[_i].json);
	cfg = parse_ok(json);
	ck_assert_uint_eq(cfg->control_mode, modes[_i].mode);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_control_group)
{
	/* "root" is the one group every system has. */
	struct lb_config *cfg = parse_ok(
		"{'control': {'group': 'root', 'mode': '0660', 'path': '/run/lb/g.sock'},"
		" 'services': [{'name': 'web', 'vips': ['198.18.100.1:80'],"
		" 'backends': [{'address': '198.18.2.2:80'}]}]}");

	ck_assert_str_eq(cfg->control_group, "root");
	ck_assert_uint_eq(cfg->control_mode, 0660);
	ck_assert_str_eq(cfg->control_path, "/run/lb/g.sock");
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_user_group)
{
	/* "root" is the one user and group every system has. */
	struct lb_config *cfg = parse_ok(
		"{'user': 'root', 'group': 'root', 'services': [{'name': 'web',"
		" 'vips': ['198.18.100.1:80'], 'backends': [{'address': '198.18.2.2:80'}]}]}");

	ck_assert_str_eq(cfg->user, "root");
	ck_assert_str_eq(cfg->group, "root");
	ck_assert_uint_eq(cfg->uid, 0);
	ck_assert_uint_eq(cfg->gid, 0);
	lb_config_free(cfg);
	/* Without group bits on the socket, sharing the group gives workers nothing. */
	cfg = parse_ok("{'group': 'root', 'control': {'group': 'root', 'mode': '0600'},"
		       " 'services': [{'name': 'web', 'vips': ['198.18.100.1:80'],"
		       " 'backends': [{'address': '198.18.2.2:80'}]}]}");
	ck_assert_str_eq(cfg->control_group, "root");
	lb_config_free(cfg);
}
END_TEST

/* Without "group" the workers take the user's primary group, whatever it is called here. */
START_TEST(test_default_group)
{
	static const char *const users[] = { "root", "nobody", "daemon" };

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		struct passwd *pw = getpwnam(users[i]);
		struct group *gr;
		struct lb_config *cfg;
		char text[256];

		if (!pw)
			continue;
		gr = getgrgid(pw->pw_gid);
		ck_assert_ptr_nonnull(gr);
		snprintf(text, sizeof(text), "{'user': '%s', 'services': [{'name': 'web',"
			 " 'vips': ['198.18.100.1:80'], 'backends': [{'address': '198.18.2.2:80'}]}]}",
			 users[i]);
		cfg = parse_ok(text);
		ck_assert_str_eq(cfg->user, users[i]);
		ck_assert_str_eq(cfg->group, gr->gr_name);
		ck_assert_uint_eq(cfg->gid, pw->pw_gid);
		lb_config_free(cfg);
	}
}
END_TEST

static const struct {
	const char *name;
	unsigned int level;
} log_levels[] = {
	{ "error", LB_LOG_ERR }, { "warning", LB_LOG_WARN },
	{ "info", LB_LOG_INFO }, { "debug", LB_LOG_DEBUG },
};

START_TEST(test_log_level)
{
	char json[256];
	struct lb_config *cfg;

	snprintf(json, sizeof(json), "{'log_level': '%s', 'services': [{'name': 'web',"
		 " 'vips': ['198.18.100.1:80'], 'backends': [{'address': '198.18.2.2:80'}]}]}",
		 log_levels[_i].name);
	cfg = parse_ok(json);
	ck_assert_uint_eq(cfg->log_level, log_levels[_i].level);
	lb_config_free(cfg);
}
END_TEST


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
	{ TOP("'workers':'2'"), "workers: expected an integer (0..256) or \"auto\", not \"2\"\n" },
	{ TOP("'workers':'Auto'"), "workers: expected an integer (0..256) or \"auto\", not \"Auto\"\n" },
	{ TOP("'workers':2.0"), "workers: expected an integer (0..256) or \"auto\"\n" },
	{ TOP("'workers':true"), "workers: expected an integer (0..256) or \"auto\"\n" },
	{ TOP("'workers':null"), "workers: expected an integer (0..256) or \"auto\"\n" },
	{ TOP("'workers':-1"), "workers: -1 out of range (0..256)\n" },
	{ TOP("'workers':257"), "workers: 257 out of range (0..256)\n" },
	{ TOP("'connections':0"), "connections: 0 out of range (1..1000000000)\n" },
	{ TOP("'connections':1000000001"), "connections: 1000000001 out of range (1..1000000000)\n" },
	{ TOP("'connections':'1M'"), "connections: expected an integer\n" },

	/* control */
	{ TOP("'control':'/run/lb.sock'"), "control: expected an object\n" },
	{ TOP("'control':{'path':5}"), "control.path: expected a string\n" },
	{ TOP("'control':{'path':'lb.sock'}"), "control.path: must be an absolute path\n" },
	{ TOP("'control':{'path':''}"), "control.path: must be an absolute path\n" },
	{ TOP("'control':{'path':'/" X64 X16 X16 "xxxxxxxxxxx'}"),
	  "control.path: longer than 107 bytes\n" },
	{ TOP("'control':{'socket':'/run/lb.sock'}"), "control.socket: unknown key\n" },
	{ TOP("'control':{'mode':512}"), "control.mode: 512" MODE_RANGE },
	{ TOP("'control':{'mode':660}"), "control.mode: 660" MODE_RANGE },
	{ TOP("'control':{'mode':-1}"), "control.mode: -1" MODE_RANGE },
	{ TOP("'control':{'mode':true}"),
	  "control.mode: expected an integer or a string of octal digits\n" },
	{ TOP("'control':{'mode':6.6}"),
	  "control.mode: expected an integer or a string of octal digits\n" },
	{ TOP("'control':{'mode':null}"),
	  "control.mode: expected an integer or a string of octal digits\n" },
	{ TOP("'control':{'mode':''}"),
	  "control.mode: invalid mode \"\" (expected octal digits, like \"0660\")\n" },
	{ TOP("'control':{'mode':'0800'}"),
	  "control.mode: invalid mode \"0800\" (expected octal digits, like \"0660\")\n" },
	{ TOP("'control':{'mode':'00660'}"),
	  "control.mode: invalid mode \"00660\" (expected octal digits, like \"0660\")\n" },
	{ TOP("'control':{'mode':'0o660'}"),
	  "control.mode: invalid mode \"0o660\" (expected octal digits, like \"0660\")\n" },
	{ TOP("'control':{'mode':' 660'}"),
	  "control.mode: invalid mode \" 660\" (expected octal digits, like \"0660\")\n" },
	{ TOP("'control':{'mode':'-660'}"),
	  "control.mode: invalid mode \"-660\" (expected octal digits, like \"0660\")\n" },
	{ TOP("'control':{'mode':'rw-rw----'}"),
	  "control.mode: invalid mode \"rw-rw----\" (expected octal digits, like \"0660\")\n" },
	{ TOP("'control':{'mode':'1777'}"), "control.mode: mode \"1777\" out of range (0..0777)\n" },
	{ TOP("'control':{'group':'lb-no-such-group'}"),
	  "control.group: unknown group \"lb-no-such-group\"\n" },
	{ TOP("'control':{'group':''}"), "control.group: invalid group name \"\" (1..32 characters)\n" },
	{ TOP("'control':{'group':'" X16 X16 "x'}"),
	  "control.group: invalid group name \"" X16 X16 "x\" (1..32 characters)\n" },
	{ TOP("'control':{'group':0}"), "control.group: expected a string\n" },

	/* user, group */
	{ TOP("'user':'lb-no-such-user'"), "user: unknown user \"lb-no-such-user\"\n" },
	{ TOP("'user':''"), "user: invalid user name \"\" (1..32 characters)\n" },
	{ TOP("'user':'" X16 X16 "x'"), "user: invalid user name \"" X16 X16 "x\" (1..32 characters)\n" },
	{ TOP("'user':0"), "user: expected a string\n" },
	{ TOP("'group':'lb-no-such-group'"), "group: unknown group \"lb-no-such-group\"\n" },
	{ TOP("'group':''"), "group: invalid group name \"\" (1..32 characters)\n" },
	{ TOP("'group':null"), "group: expected a string\n" },
	{ TOP("'group':'root','control':{'group':'root','mode':'0660'}"),
	  "control.group: group \"root\" is also the workers' \"group\": any worker could use the "
	  "control socket\n" },
	{ TOP("'control':{'group':'nogroup','mode':'0070'}"),
	  "control.group: group \"nogroup\" is also the workers' \"group\": any worker could use the "
	  "control socket\n" },

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

	/* log_level */
	{ TOP("'log_level':'warn'"), "log_level: unknown log level \"warn\" "
	  "(expected error, warning, info or debug)\n" },
	{ TOP("'log_level':'INFO'"), "log_level: unknown log level \"INFO\" "
	  "(expected error, warning, info or debug)\n" },
	{ TOP("'log_level':''"), "log_level: unknown log level \"\" "
	  "(expected error, warning, info or debug)\n" },
	{ TOP("'log_level':2"), "log_level: expected a string\n" },
	{ TOP("'log_syslog':1"), "log_syslog: expected true or false\n" },
	{ TOP("'access_log':'yes'"), "access_log: expected true or false\n" },

	/* announce */
	{ TOP("'announce':[]"), "announce: expected an object\n" },
	{ TOP("'announce':{}"), "announce.table: missing required key\n" },
	{ TOP("'announce':{'table':0}"), "announce.table: 0 out of range (1..4294967295)\n" },
	{ TOP("'announce':{'table':254}"),
	  "announce.table: 254 is reserved (the \"main\" routing table)\n" },
	{ TOP("'announce':{'table':'200'}"), "announce.table: expected an integer\n" },
	{ TOP("'announce':{'table':100}"), "announce.table: 100 is also intercept.route_table, "
	  "whose local default route would be announced with the VIPs; use a table of its own\n" },
	{ TOP("'intercept':{'route_table':300},'announce':{'table':300}"),
	  "announce.table: 300 is also intercept.route_table, whose local default route would be "
	  "announced with the VIPs; use a table of its own\n" },
	{ TOP("'announce':{'table':200,'protocol':2}"), "announce.protocol: 2 is the kernel's own "
	  "(\"kernel\"); use a number no routing daemon uses, like 250\n" },
	{ TOP("'announce':{'table':200,'protocol':12}"), "announce.protocol: 12 is BIRD's own: BIRD "
	  "would delete these routes as stale; use a number no routing daemon uses, like 250\n" },
	{ TOP("'announce':{'table':200,'protocol':256}"),
	  "announce.protocol: 256 out of range (0..255)\n" },
	{ TOP("'announce':{'table':200,'device':'lb announce'}"), "announce.device: invalid device "
	  "name \"lb announce\" (1..15 characters of A-Za-z0-9_-.)\n" },
	{ TOP("'announce':{'table':200,'device':'lb-announce-vips'}"), "announce.device: invalid "
	  "device name \"lb-announce-vips\" (1..15 characters of A-Za-z0-9_-.)\n" },
	{ TOP("'announce':{'table':200,'device':'..'}"), "announce.device: invalid device "
	  "name \"..\" (1..15 characters of A-Za-z0-9_-.)\n" },
	{ TOP("'announce':{'table':200,'device':7}"), "announce.device: expected a string\n" },
	{ TOP("'announce':{'table':200,'settle_ms':-1}"),
	  "announce.settle_ms: -1 out of range (0..600000)\n" },
	{ TOP("'announce':{'table':200,'metric':5}"), "announce.metric: unknown key\n" },

	/* Syntax, reported by jansson with its position. */
	{ "{'workers':1,'workers':2}", "line 1, column 22: duplicate object key near '\"workers\"'\n" },
	{ "", "line 1, column 0: unexpected token near end of file\n" },
	{ "{\n  'workers': 2,\n}", "line 3, column 1: string or '}' expected near '}'\n" },
};

START_TEST(test_announce)
{
	struct lb_config *cfg = parse_ok(TOP("'workers':1"));

	ck_assert(!cfg->announce.enabled);
	ck_assert_ptr_null(cfg->announce.device);
	lb_config_free(cfg);
	cfg = parse_ok(TOP("'announce':{'table':200}"));
	ck_assert(cfg->announce.enabled);
	ck_assert_uint_eq(cfg->announce.table, 200);
	ck_assert_uint_eq(cfg->announce.protocol, 250);
	ck_assert_str_eq(cfg->announce.device, "lb-announce");
	ck_assert_uint_eq(cfg->announce.settle_ms, 2000);
	lb_config_free(cfg);
	cfg = parse_ok(TOP("'announce':{'table':4294967295,'protocol':5,'device':'vips.0_x-y',"
			   "'settle_ms':0}"));
	ck_assert_uint_eq(cfg->announce.table, 4294967295u);
	ck_assert_uint_eq(cfg->announce.protocol, 5);
	ck_assert_str_eq(cfg->announce.device, "vips.0_x-y");
	ck_assert_uint_eq(cfg->announce.settle_ms, 0);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_invalid)
{
	parse_fails(invalid[_i].json, invalid[_i].errors);
}
END_TEST

/* Every error is reported, one line each, in document order. */
START_TEST(test_many_errors)
{
	parse_fails("{'workers': 'two', 'control': {'path': 'lb.sock', 'mode': 'rw',"
		    "   'group': 'lb-no-such-group', 'owner': 'lb'},"
		    " 'intercept': {'port': 0, 'mark': 0, 'table': 'l b', 'route_table': 254,"
		    "   'rule_priority': 40000},"
		    " 'drain_timeout_ms': 0, 'log_level': 'verbose',"
		    " 'services': [{'name': 'web', 'vips': ['198.18.100.1:80', '[2001:db8:100::1]:80'],"
		    "   'scheduler': 'foo', 'backend': [], 'hash': 'client',"
		    "   'health': {'type': 'tcp', 'path': '/', 'rise': 0, 'timeout_ms': 5000},"
		    "   'backends': [{'address': '198.18.2.2:80'}, {'address': '198.18.2.3'},"
		    "     {'address': '198.18.2.2:80', 'weight': 2000}]},"
		    "  {'name': 'web', 'vips': ['198.18.100.1:80', 'foo'],"
		    "   'backends': [{'address': '198.18.2.4:99999', 'max_conns': -5}], 'retries': 99,"
		    "   'scheduler': 'maglev', 'maglev_table_size': 7},"
		    "  {'name': 'dns', 'vips': ['[2001:db8:100::53]:53'],"
		    "   'backends': [{'address': '198.18.2.5:53'}]},"
		    "  {}],"
		    " 'extra': true}",
		    "workers: expected an integer (0..256) or \"auto\", not \"two\"\n"
		    "control.path: must be an absolute path\n"
		    "control.mode: invalid mode \"rw\" (expected octal digits, like \"0660\")\n"
		    "control.group: unknown group \"lb-no-such-group\"\n"
		    "control.owner: unknown key\n"
		    "intercept.port: 0 out of range (1..65535)\n"
		    "intercept.mark: 0 out of range (1..4294967295)\n"
		    "intercept.table: invalid name \"l b\" (1..64 characters of A-Za-z0-9_-)\n"
		    "intercept.route_table: 254 is reserved (the \"main\" routing table)\n"
		    "intercept.rule_priority: 40000 out of range (1..32765)\n"
		    "drain_timeout_ms: 0 out of range (1..86400000)\n"
		    "log_level: unknown log level \"verbose\" (expected error, warning, info or debug)\n"
		    "services[0].scheduler: unknown scheduler \"foo\" "
	    "(expected roundrobin, leastconn, maglev or random2)\n"
		    "services[0].backend: unknown key\n"
		    "services[0].hash: unknown hash \"client\" (expected address or address_port)\n"
		    "services[0].health.rise: 0 out of range (1..100)\n"
		    "services[0].health.path: only for type \"http\"\n"
		    "services[0].health: timeout_ms 5000 is above interval_ms 2000\n"
		    "services[0].backends[1].address: missing port\n"
		    "services[0].backends[2].address: 198.18.2.2:80 already listed at backends[0]\n"
		    "services[0].backends[2].weight: 2000 out of range (0..1000)\n"
		    "services[1].name: duplicate service name \"web\" (also services[0])\n"
		    "services[1].vips[1]: invalid address \"foo\"\n"
		    "services[1].backends[0].address: port 99999 out of range\n"
		    "services[1].backends[0].max_conns: -5 out of range (0..10000000)\n"
		    "services[1].retries: 99 out of range (0..16)\n"
		    "services[1]: maglev_table_size 7 is below 100 x 1 backend\n"
		    "services[2].vips[0]: no IPv6 backend for this IPv6 VIP\n"
		    "services[3].name: missing required key\n"
		    "services[3].vips: missing required key\n"
		    "services[3].backends: missing required key\n"
		    "services[1].vips[0]: 198.18.100.1:80 already used by service \"web\" "
		    "(services[0].vips[0])\n"
		    "extra: unknown key\n");
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

	ck_assert(lb_config_has_family(cfg, AF_INET));
	/* Backends do not count: only VIPs need interception. */
	ck_assert(!lb_config_has_family(cfg, AF_INET6));
	lb_config_free(cfg);

	cfg = parse_ok("{'services': [{'name': 'web', 'vips': ['[2001:db8:100::1]:80'],"
		       " 'backends': [{'address': '[2001:db8:2::2]:80'}]}]}");
	ck_assert(!lb_config_has_family(cfg, AF_INET));
	ck_assert(lb_config_has_family(cfg, AF_INET6));
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

/* The example that shows every key. */
START_TEST(test_load_full)
{
	char path[4096], *errors = (char *)"unset";
	const struct lb_service_conf *s;
	struct lb_config *cfg;

	cfg = lb_config_load(srcdir_path("docs/examples/full.json", path, sizeof(path)), &errors);
	if (!cfg)
		ck_abort_msg("%s:\n%s", path, errors);
	ck_assert_ptr_null(errors);
	ck_assert_uint_eq(cfg->log_level, LB_LOG_INFO);
	ck_assert_uint_eq(cfg->control_mode, 0600);
	ck_assert_ptr_null(cfg->control_group);
	ck_assert_uint_eq(cfg->n_services, 2);
	ck_assert(cfg->announce.enabled);
	ck_assert_uint_eq(cfg->announce.table, 200);
	ck_assert_uint_eq(cfg->announce.protocol, 250);
	ck_assert_str_eq(cfg->announce.device, "lb-announce");

	s = &cfg->services[0];
	ck_assert_int_eq(s->sched, LB_SCHED_MAGLEV);
	ck_assert_int_eq(s->hash_port, 0);
	ck_assert_uint_eq(s->maglev_size, 65537);
	ck_assert_uint_eq(s->n_backends, 4);
	ck_assert_uint_eq(s->backends[0].weight, 2);
	ck_assert_uint_eq(s->backends[0].max_conns, 2000);
	ck_assert_uint_eq(s->backends[3].weight, 0);
	ck_assert_uint_eq(s->client_idle_timeout_ms, 300000);
	ck_assert_uint_eq(s->server_idle_timeout_ms, 600000);
	ck_assert_uint_eq(s->queue_timeout_ms, 1000);
	ck_assert_int_eq(s->health.type, LB_CHECK_HTTP);
	ck_assert_uint_eq(s->health.port, 8080);
	ck_assert_str_eq(s->health.path, "/healthz");
	ck_assert_str_eq(s->health.host, "www.example.org");
	ck_assert_uint_eq(s->health.expect_min, 200);
	ck_assert_uint_eq(s->health.expect_max, 399);

	s = &cfg->services[1];
	ck_assert_int_eq(s->sched, LB_SCHED_LEASTCONN);
	ck_assert_uint_eq(s->client_idle_timeout_ms, 1800000);
	ck_assert_uint_eq(s->server_idle_timeout_ms, 1800000);
	ck_assert_int_eq(s->health.type, LB_CHECK_TCP);
	ck_assert_uint_eq(s->health.interval_ms, 5000);
	ck_assert_uint_eq(s->health.timeout_ms, 2000);
	ck_assert_ptr_null(s->health.path);
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

/*
 * lb_config_load_log() (a running lb's reload) keeps the JSON tree for
 * the master to free after answering; the others free it at once. The
 * tree is the one the config came from, and dropping it twice is fine.
 */
START_TEST(test_load_keeps_tree)
{
	char path[4096], msg[256], *errors = NULL;
	struct lb_config *cfg;

	srcdir_path("docs/examples/lab.json", path, sizeof(path));
	cfg = lb_config_load(path, &errors);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->tree);
	lb_config_free(cfg);
	cfg = lb_config_load_log(path, "test: ", msg, sizeof(msg));
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_nonnull(cfg->tree);
	ck_assert_uint_eq(json_array_size(json_object_get(cfg->tree, "services")), cfg->n_services);
	lb_config_drop_tree(cfg);
	ck_assert_ptr_null(cfg->tree);
	lb_config_drop_tree(cfg);
	ck_assert_str_eq(cfg->services[0].name, "web");
	lb_config_free(cfg);
	/* Taken, the tree is the caller's (the master frees it on a thread of its own). */
	cfg = lb_config_load_log(path, "test: ", msg, sizeof(msg));
	ck_assert_ptr_nonnull(cfg);
	{
		struct json_t *tree = lb_config_take_tree(cfg);

		ck_assert_ptr_nonnull(tree);
		ck_assert_ptr_null(cfg->tree);
		ck_assert_ptr_null(lb_config_take_tree(cfg));
		lb_config_free(cfg);
		ck_assert_uint_eq(json_array_size(json_object_get(tree, "services")), 1);
		lb_config_tree_free(tree);
		lb_config_tree_free(NULL);
	}
	/* Freed with the config when never dropped (valgrind and ASan would see a leak). */
	cfg = lb_config_load_log(path, "test: ", msg, sizeof(msg));
	ck_assert_ptr_nonnull(cfg);
	lb_config_free(cfg);
}
END_TEST

/* Files of 16 MB and more are refused as too large; one byte less is read. */
START_TEST(test_load_size)
{
	static const char text[] = "{\"services\": 1}";
	const size_t max = 16 << 20;
	char path[] = "/tmp/check_config.XXXXXX", *errors = NULL, *big = malloc(max);

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', max);
	memcpy(big, text, sizeof(text) - 1);
	write_temp(path, big, max);
	ck_assert_ptr_null(lb_config_load(path, &errors));
	ck_assert_str_eq(strchr(errors, ':'), ": File too large (a config must be under 16 MB)\n");
	free(errors);
	ck_assert_int_eq(unlink(path), 0);
	strcpy(path, "/tmp/check_config.XXXXXX");
	write_temp(path, big, max - 1);
	ck_assert_ptr_null(lb_config_load(path, &errors));
	ck_assert_str_eq(errors, "services: expected an array\n");
	free(errors);
	ck_assert_int_eq(unlink(path), 0);
	free(big);
}
END_TEST

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
				 "workers: expected an integer (0..256) or \"auto\", not \"a\"\n");
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

/* The HTTP listener: off by default; on with "listen"; loopback-only unless "allow" says more. */
START_TEST(test_http)
{
#define HTTP_SVC " 'services': [{'name': 'web', 'vips': ['198.18.100.1:80']," \
	    " 'backends': [{'address': '198.18.2.2:80'}]}]}"
	union lb_sockaddr lo = { 0 }, out = { 0 };
	struct lb_config *cfg;

	lo.in.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &lo.in.sin_addr);
	out.in.sin_family = AF_INET;
	inet_pton(AF_INET, "198.18.0.9", &out.in.sin_addr);

	cfg = parse_ok("{" HTTP_SVC);
	ck_assert(!cfg->http.enabled);
	lb_config_free(cfg);

	cfg = parse_ok("{'http': {'listen': '127.0.0.1:9180'}," HTTP_SVC);
	ck_assert(cfg->http.enabled);
	ck_assert_str_eq(fmt(&cfg->http.listen), "127.0.0.1:9180");
	ck_assert_uint_eq(cfg->http.n_allow, 2);
	ck_assert(lb_prefix_match(&cfg->http.allow[0], &lo));
	ck_assert(!lb_prefix_match(&cfg->http.allow[0], &out) &&
		  !lb_prefix_match(&cfg->http.allow[1], &out));
	ck_assert_uint_eq(cfg->http.max_clients, 1024);
	ck_assert_uint_eq(cfg->http.timeout_ms, 10000);
	lb_config_free(cfg);

	cfg = parse_ok("{'http': {'listen': '[::1]:80', 'allow': ['198.18.0.0/15', '::/0'],"
		       " 'max_clients': 10, 'timeout_ms': 2000}," HTTP_SVC);
	ck_assert_str_eq(fmt(&cfg->http.listen), "[::1]:80");
	ck_assert_uint_eq(cfg->http.n_allow, 2);
	ck_assert(lb_prefix_match(&cfg->http.allow[0], &out));
	ck_assert(!lb_prefix_match(&cfg->http.allow[0], &lo));
	ck_assert_uint_eq(cfg->http.max_clients, 10);
	ck_assert_uint_eq(cfg->http.timeout_ms, 2000);
	lb_config_free(cfg);

	parse_fails("{'http': {}," HTTP_SVC, "http.listen: missing required key\n");
	parse_fails("{'http': true," HTTP_SVC, "http: expected an object\n");
	parse_fails("{'http': {'listen': '127.0.0.1'}," HTTP_SVC, "http.listen: missing port\n");
	parse_fails("{'http': {'listen': '127.0.0.1:9180', 'port': 1}," HTTP_SVC,
		    "http.port: unknown key\n");
	parse_fails("{'http': {'listen': '127.0.0.1:9180', 'allow': []}," HTTP_SVC,
		    "http.allow: must not be empty\n");
	parse_fails("{'http': {'listen': '127.0.0.1:9180', 'allow': ['10.0.0.1/8', 'x', 7,"
		    " '::1/129']}," HTTP_SVC,
		    "http.allow[0]: invalid prefix \"10.0.0.1/8\": host bits set past the prefix "
		    "length (did you mean the network address?)\n"
		    "http.allow[1]: invalid prefix \"x\": not an IPv4 or IPv6 address (expected a "
		    "prefix such as 127.0.0.0/8 or ::1)\n"
		    "http.allow[2]: expected a string\n"
		    "http.allow[3]: invalid prefix \"::1/129\": prefix length must be 0..128\n");
	parse_fails("{'http': {'listen': '127.0.0.1:9180', 'max_clients': 0, 'timeout_ms': 5}," HTTP_SVC,
		    "http.max_clients: 0 out of range (1..10000)\n"
		    "http.timeout_ms: 5 out of range (100..600000)\n");
#undef HTTP_SVC
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = lb_test_case(s, "config", NULL, NULL,
				 LB_TESTS(test_full, test_workers_auto, test_defaults, test_control_group,
					  test_user_group, test_default_group, test_many_errors, test_find_service,
					  test_has_family, test_load_lab, test_load_minimal,
					  test_load_full, test_load_keeps_tree, test_load_size, test_load_errors,
					  test_http,
					  test_announce));

	tcase_add_loop_test(tc, test_control_mode, 0, sizeof(modes) / sizeof(modes[0]));
	tcase_add_loop_test(tc, test_log_level, 0, sizeof(log_levels) / sizeof(log_levels[0]));
	tcase_add_loop_test(tc, test_invalid, 0, sizeof(invalid) / sizeof(invalid[0]));
	return lb_test_run(s);
}
