// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb/config.h"
#include "lb/log.h"

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
#define X256 X64 X64 X64 X64
/* Adds keys to a service's health block. */
#define HEALTH(x) SVC("'health':{" x "}")
/* n backends 198.18.2.1..n:80, n at most 10, for maglev table size checks. */
#define B(i) "{'address':'198.18.2." #i ":80'}"
#define B10 B(1) "," B(2) "," B(3) "," B(4) "," B(5) "," B(6) "," B(7) "," B(8) "," B(9) "," B(10)
#define MAGLEV(size, backends) "{'services':[{'name':'web','vips':['198.18.100.1:80']," \
	"'scheduler':'maglev','maglev_table_size':" #size ",'backends':[" backends "]}]}"
#define MODE_RANGE " out of range (0..511); write an octal mode as a string, like \"0660\"\n"
#define SCHEDULERS " (expected roundrobin, leastconn, maglev or random2)\n"
#define STATUS_SYNTAX " (expected a code or a range, like \"200\" or \"200-399\")\n"

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
		    "workers: expected an integer\n"
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

/* Parses text, which must be valid, and compares its warnings (NULL: none). */
static void parse_warns(const char *text, const char *expected)
{
	struct lb_config *cfg = parse_ok(text);

	if (!expected)
		ck_assert_ptr_null(cfg->warnings);
	else
		ck_assert_str_eq(cfg->warnings ? cfg->warnings : "(none)", expected);
	lb_config_free(cfg);
}

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

/* Warnings never make a config fail, and do not show among its errors. */
START_TEST(test_warnings_with_errors)
{
	parse_fails("{'services':[{'name':'web','vips':['198.18.100.1:80'],"
		    "'backends':[{'address':'198.18.2.2:80','weight':0}],'retries':99}]}",
		    "services[0].retries: 99 out of range (0..16)\n");
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

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_defaults);
	tcase_add_loop_test(tc, test_control_mode, 0, sizeof(modes) / sizeof(modes[0]));
	tcase_add_test(tc, test_control_group);
	tcase_add_test(tc, test_user_group);
	tcase_add_test(tc, test_default_group);
	tcase_add_loop_test(tc, test_log_level, 0, sizeof(log_levels) / sizeof(log_levels[0]));
	tcase_add_loop_test(tc, test_scheduler, 0, sizeof(schedulers) / sizeof(schedulers[0]));
	tcase_add_test(tc, test_maglev);
	tcase_add_loop_test(tc, test_maglev_default_size, 0,
			    sizeof(maglev_sizes) / sizeof(maglev_sizes[0]));
	tcase_add_test(tc, test_maglev_too_many);
	tcase_add_test(tc, test_idle_timeouts);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_health);
	tcase_add_loop_test(tc, test_invalid, 0, sizeof(invalid) / sizeof(invalid[0]));
	tcase_add_test(tc, test_many_errors);
	tcase_add_test(tc, test_families_per_service);
	tcase_add_test(tc, test_warnings);
	tcase_add_test(tc, test_warnings_with_errors);
	tcase_add_test(tc, test_find_service);
	tcase_add_test(tc, test_has_family);
	tcase_add_test(tc, test_load_lab);
	tcase_add_test(tc, test_load_minimal);
	tcase_add_test(tc, test_load_full);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_http);
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
