// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control commands (lb/ctl_cmd.c) without a master or a socket:
 * requests through lb_ctl_handle_line() against a real shm, and the state
 * changes and reloads they make.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb/ctl.h"
#include "tests/ctl_fixture.h"
#include "tests/unit.h"

START_TEST(test_errors)
{
	static const struct {
		const char *req, *code, *arg;
	} cases[] = {
		{ "{", "bad_json", NULL },
		{ "", "bad_json", NULL },
		{ "{'cmd': 'status'} x", "bad_json", NULL },
		{ "{'cmd': 'status', 'cmd': 'status'}", "bad_json", NULL },
		{ "{'cmd': 'st\\u0000atus'}", "bad_json", NULL },
		{ "[1, 2]", "bad_request", NULL },
		{ "42", "bad_request", NULL },
		{ "'status'", "bad_request", NULL },
		{ "null", "bad_request", NULL },
		{ "{}", "unknown_command", "cmd" },
		{ "{'service': 'web'}", "unknown_command", "cmd" },
		{ "{'cmd': 'nope'}", "unknown_command", "cmd" },
		{ "{'cmd': 'Status'}", "unknown_command", "cmd" },
		{ "{'cmd': 5}", "bad_argument", "cmd" },
		{ "{'cmd': null}", "bad_argument", "cmd" },
		{ "{'cmd': 'status', 'verbose': true}", "bad_argument", "verbose" },
		{ "{'cmd': 'backends', 'service': 5}", "bad_argument", "service" },
		{ "{'cmd': 'backends', 'service': 'nope'}", "unknown_service", "service" },
		{ "{'cmd': 'backends', 'backend': '198.18.2.2:80'}", "bad_argument", "backend" },
		{ "{'cmd': 'set-state', 'backend': '198.18.2.2:80', 'state': 'up'}",
		  "bad_argument", "service" },
		{ "{'cmd': 'set-state', 'service': 'web', 'state': 'up'}", "bad_argument", "backend" },
		{ "{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.2:80'}",
		  "bad_argument", "state" },
		{ "{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.2:80', 'state': 1}",
		  "bad_argument", "state" },
		{ "{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'state': 'sideways'}", "bad_argument", "state" },
		{ "{'cmd': 'set-state', 'service': 'web', 'backend': 'web1', 'state': 'up'}",
		  "bad_argument", "backend" },
		{ "{'cmd': 'set-state', 'service': 'web', 'backend': 80, 'state': 'up'}",
		  "bad_argument", "backend" },
		{ "{'cmd': 'set-state', 'service': 'nope', 'backend': '198.18.2.2:80', "
		  "'state': 'up'}", "unknown_service", "service" },
		{ "{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.9:80', "
		  "'state': 'up'}", "unknown_backend", "backend" },
		{ "{'cmd': 'set-state', 'service': 'db', 'backend': '198.18.2.2:80', "
		  "'state': 'up'}", "unknown_backend", "backend" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80'}",
		  "bad_argument", "weight" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'weight': 1001}", "bad_argument", "weight" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'weight': -1}", "bad_argument", "weight" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'weight': 1.5}", "bad_argument", "weight" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'weight': '5'}", "bad_argument", "weight" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'weight': true}", "bad_argument", "weight" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'weight': 1e30}", "bad_argument", "weight" },
		{ "{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', "
		  "'weight': 5, 'state': 'up'}", "bad_argument", "state" },
		{ "{'cmd': 'reload'}", "not_supported", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ask_err(cases[i].req, cases[i].code, cases[i].arg, NULL);
	ask_err("{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.9:80', 'state': 'up'}",
		"unknown_backend", "backend", "service web has no backend 198.18.2.9:80");
	ask_err("{'cmd': 'reload'}", "not_supported", NULL, "reload not supported");
	/* User text repeated in a message is cut and has no control characters. */
	ask_err("{'cmd': 'a\\nb'}", "unknown_command", "cmd",
		"unknown command a\\x0ab (try \"help\")");
	ask_err("{'cmd': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'}",
		"unknown_command", "cmd", "unknown command "
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (try \"help\")");
	/* Nothing was changed by any of them. */
	for (size_t i = 0; i < shm->n_services; i++)
		for (size_t j = 0; j < shm->services[i].n_backends; j++)
			ck_assert_uint_eq(atomic_load(&lb_shm_backend(shm, i, j)->admin), LB_ADMIN_UP);
	ck_assert_uint_eq(atomic_load(&lb_shm_backend(shm, 0, 0)->weight), 1);
}
END_TEST

START_TEST(test_no_shm)
{
	json_t *r, *d;

	st.shm = NULL;
	ask_err("{'cmd': 'backends'}", "unavailable", NULL, NULL);
	ask_err("{'cmd': 'services'}", "unavailable", NULL, NULL);
	ask_err("{'cmd': 'stats'}", "unavailable", NULL, NULL);
	ask_err("{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.2:80', 'weight': 1}",
		"unavailable", NULL, NULL);
	d = ask_ok("{'cmd': 'status'}", &r);
	ck_assert_uint_eq(json_array_size(json_object_get(d, "workers")), 0);
	json_decref(r);
	d = ask_ok("{'cmd': 'metrics'}", &r);
	ck_assert(json_is_string(d));
	json_decref(r);
}
END_TEST

START_TEST(test_version_help)
{
	json_t *r, *d;

	d = ask_ok("{'cmd': 'version'}", &r);
	ck_assert(strlen(sget(d, "version")) > 0);
	ck_assert_int_eq(iget(d, "protocol"), LB_CTL_PROTOCOL);
	json_decref(r);
	/* Whitespace and a trailing CR (socat/telnet) are fine. */
	d = ask_ok("  { 'cmd' : 'version' }\r", &r);
	json_decref(r);
	d = ask_ok("{'cmd': 'help'}", &r);
	ck_assert_uint_eq(json_array_size(d), 14);
	ck_assert_str_eq(sget(json_array_get(d, 0), "cmd"), "help");
	json_decref(r);
}
END_TEST

START_TEST(test_status)
{
	json_t *r, *d, *w;

	atomic_store(&shm->workers[1].active, 7);
	atomic_store(&shm->workers[1].restarts, 2);
	d = ask_ok("{'cmd': 'status'}", &r);
	ck_assert_int_eq(iget(d, "pid"), getpid());
	ck_assert_int_ge(iget(d, "uptime_s"), 5);
	ck_assert_int_le(iget(d, "uptime_s"), 6);
	ck_assert_str_eq(sget(d, "config"), "/etc/lb/lb.json");
	ck_assert_int_eq(iget(d, "generation"), 1);
	ck_assert(json_is_null(json_object_get(d, "last_reload")));
	w = json_object_get(d, "workers");
	ck_assert_uint_eq(json_array_size(w), 2);
	ck_assert_int_eq(iget(json_array_get(w, 1), "id"), 1);
	ck_assert_int_eq(iget(json_array_get(w, 1), "pid"), 1001);
	ck_assert_int_eq(iget(json_array_get(w, 1), "generation"), 1);
	ck_assert_str_eq(sget(json_array_get(w, 1), "state"), "running");
	ck_assert_int_eq(iget(json_array_get(w, 1), "active"), 7);
	ck_assert_int_eq(iget(json_array_get(w, 1), "restarts"), 2);
	json_decref(r);
}
END_TEST

START_TEST(test_services_backends_stats)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, 0, 1);
	json_t *r, *d, *s, *t;

	atomic_store(&b->active, 3);
	atomic_store(&b->total, 40);
	atomic_store(&b->bytes_in, 1000);
	atomic_store(&b->bytes_out, 2000);
	atomic_store(&b->connect_failures, 4);
	atomic_store(&shm->services[0].total, 44);
	atomic_store(&shm->services[0].no_backend, 2);
	atomic_store(&shm->services[1].queued, 6);
	atomic_store(&shm->services[1].queue_timeouts, 1);
	atomic_store(&shm->workers[0].accepted, 50);
	b->last_check_ms = 1700000000123ull;
	b->last_check_ok = 0;
	snprintf(b->last_check_msg, sizeof(b->last_check_msg), "connect: Connection refused");

	d = ask_ok("{'cmd': 'services'}", &r);
	ck_assert_uint_eq(json_array_size(d), 2);
	s = json_array_get(d, 0);
	ck_assert_str_eq(sget(s, "name"), "web");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "vips"), 1)),
			 "[2001:db8:100::1]:80");
	ck_assert_str_eq(sget(s, "scheduler"), "roundrobin");
	ck_assert_int_eq(iget(s, "backends"), 3);
	ck_assert_int_eq(iget(s, "usable"), 3);
	ck_assert_int_eq(iget(s, "active"), 3);
	ck_assert_int_eq(iget(s, "total"), 44);
	ck_assert_int_eq(iget(s, "bytes_in"), 1000);
	ck_assert_int_eq(iget(s, "no_backend"), 2);
	ck_assert_str_eq(sget(json_array_get(d, 1), "scheduler"), "maglev");
	json_decref(r);

	d = ask_ok("{'cmd': 'backends'}", &r);
	ck_assert_uint_eq(json_array_size(d), 4);
	ck_assert_str_eq(sget(json_array_get(d, 3), "service"), "db");
	ck_assert_int_eq(iget(json_array_get(d, 3), "max_conns"), 10);
	json_decref(r);
	d = ask_ok("{'cmd': 'backends', 'service': 'web'}", &r);
	ck_assert_uint_eq(json_array_size(d), 3);
	s = json_array_get(d, 1);
	ck_assert_str_eq(sget(s, "service"), "web");
	ck_assert_str_eq(sget(s, "address"), "198.18.2.3:80");
	ck_assert_str_eq(sget(s, "admin"), "up");
	ck_assert_str_eq(sget(s, "health"), "up");
	ck_assert(json_is_true(json_object_get(s, "usable")));
	ck_assert_int_eq(iget(s, "weight"), 5);
	ck_assert_int_eq(iget(s, "config_weight"), 5);
	ck_assert_int_eq(iget(s, "max_conns"), 0);
	ck_assert_int_eq(iget(s, "active"), 3);
	ck_assert_int_eq(iget(s, "total"), 40);
	ck_assert_int_eq(iget(s, "bytes_in"), 1000);
	ck_assert_int_eq(iget(s, "bytes_out"), 2000);
	ck_assert_int_eq(iget(s, "connect_failures"), 4);
	t = json_object_get(s, "last_check");
	ck_assert(json_is_false(json_object_get(t, "ok")));
	ck_assert_int_eq(iget(t, "time"), 1700000000);
	ck_assert_str_eq(sget(t, "message"), "connect: Connection refused");
	ck_assert(json_is_null(json_object_get(json_array_get(d, 0), "last_check")));
	ck_assert_str_eq(sget(json_array_get(d, 2), "address"), "[2001:db8:2::2]:80");
	json_decref(r);

	d = ask_ok("{'cmd': 'stats'}", &r);
	t = json_object_get(d, "totals");
	ck_assert_int_eq(iget(t, "accepted"), 50);
	ck_assert_int_eq(iget(t, "total"), 44);
	ck_assert_int_eq(iget(t, "active"), 3);
	ck_assert_int_eq(iget(t, "no_backend"), 2);
	ck_assert_int_eq(iget(t, "queued"), 6);
	ck_assert_int_eq(iget(t, "queue_timeouts"), 1);
	ck_assert_int_eq(iget(t, "backends"), 4);
	s = json_array_get(json_object_get(d, "services"), 1);
	ck_assert_str_eq(sget(s, "name"), "db");
	ck_assert_int_eq(iget(s, "queued"), 6);
	ck_assert_int_eq(iget(s, "queue_timeouts"), 1);
	json_decref(r);
}
END_TEST

START_TEST(test_set_state)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, 0, 0);
	uint32_t epoch = atomic_load(&shm->services[0].epoch);
	json_t *r, *d;

	d = ask_ok("{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.2:80', "
		   "'state': 'drain'}", &r);
	ck_assert_str_eq(sget(d, "service"), "web");
	ck_assert_str_eq(sget(d, "backend"), "198.18.2.2:80");
	ck_assert_str_eq(sget(d, "state"), "drain");
	ck_assert_str_eq(sget(d, "previous"), "up");
	ck_assert(json_is_true(json_object_get(d, "changed")));
	json_decref(r);
	ck_assert_uint_eq(atomic_load(&b->admin), LB_ADMIN_DRAIN);
	ck_assert(!lb_shm_backend_usable(b));
	ck_assert_uint_ne(atomic_load(&shm->services[0].epoch), epoch);
	/* Only that backend, and not the same address in another service. */
	ck_assert_uint_eq(atomic_load(&lb_shm_backend(shm, 0, 1)->admin), LB_ADMIN_UP);
	ck_assert_uint_eq(atomic_load(&lb_shm_backend(shm, 1, 0)->admin), LB_ADMIN_UP);

	d = ask_ok("{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.2:80', "
		   "'state': 'drain'}", &r);
	ck_assert(json_is_false(json_object_get(d, "changed")));
	json_decref(r);

	/* An IPv4-mapped address names the IPv4 backend. */
	d = ask_ok("{'cmd': 'set-state', 'service': 'web', 'backend': '[::ffff:198.18.2.2]:80', "
		   "'state': 'disabled'}", &r);
	ck_assert_str_eq(sget(d, "previous"), "drain");
	json_decref(r);
	ck_assert_uint_eq(atomic_load(&b->admin), LB_ADMIN_DISABLED);

	d = ask_ok("{'cmd': 'set-state', 'service': 'web', 'backend': '[2001:db8:2::2]:80', "
		   "'state': 'drain'}", &r);
	json_decref(r);
	ck_assert_uint_eq(atomic_load(&lb_shm_backend(shm, 0, 2)->admin), LB_ADMIN_DRAIN);

	d = ask_ok("{'cmd': 'backends', 'service': 'web'}", &r);
	ck_assert_str_eq(sget(json_array_get(d, 0), "admin"), "disabled");
	ck_assert(json_is_false(json_object_get(json_array_get(d, 0), "usable")));
	json_decref(r);

	d = ask_ok("{'cmd': 'set-state', 'service': 'web', 'backend': '198.18.2.2:80', "
		   "'state': 'up'}", &r);
	json_decref(r);
	ck_assert(lb_shm_backend_usable(b));
}
END_TEST

START_TEST(test_set_weight)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, 0, 1);
	json_t *r, *d;

	d = ask_ok("{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.3:80', "
		   "'weight': 0}", &r);
	ck_assert_int_eq(iget(d, "weight"), 0);
	ck_assert_int_eq(iget(d, "previous"), 5);
	ck_assert(json_is_true(json_object_get(d, "changed")));
	json_decref(r);
	ck_assert_uint_eq(atomic_load(&b->weight), 0);
	ck_assert(!lb_shm_backend_usable(b));
	d = ask_ok("{'cmd': 'set-weight', 'service': 'web', 'backend': '198.18.2.3:80', "
		   "'weight': 1000}", &r);
	json_decref(r);
	ck_assert_uint_eq(atomic_load(&b->weight), 1000);
	d = ask_ok("{'cmd': 'backends', 'service': 'web'}", &r);
	ck_assert_int_eq(iget(json_array_get(d, 1), "weight"), 1000);
	ck_assert_int_eq(iget(json_array_get(d, 1), "config_weight"), 5);
	json_decref(r);
	/* Maglev services pick the new weight up on the master's next refresh. */
	d = ask_ok("{'cmd': 'set-weight', 'service': 'db', 'backend': '198.18.2.2:5432', "
		   "'weight': 0}", &r);
	json_decref(r);
	lb_shm_maglev_refresh(shm, cfg, 0, 0, UINT64_MAX);
	ck_assert_uint_eq(lb_shm_maglev_table(&shm->services[1], AF_INET)[0], LB_MAGLEV_EMPTY);
}
END_TEST

static int reload_calls;

static int reload_ok(void *arg, char *msg, size_t len)
{
	struct lb_ctl_state *s = arg;

	reload_calls++;
	s->generation++;
	snprintf(msg, len, "generation %u: 2 services", s->generation);
	return 0;
}

static int reload_bad(void *arg, char *msg, size_t len)
{
	reload_calls++;
	snprintf(msg, len, "/etc/lb/lb.json: services[0].vips: expected an array");
	return -EINVAL;
}

static int reload_unsupported(void *arg, char *msg, size_t len)
{
	return -EOPNOTSUPP;
}

START_TEST(test_reload)
{
	json_t *r, *d, *l;

	st.reload = reload_unsupported;
	ask_err("{'cmd': 'reload'}", "not_supported", NULL, "reload not supported");
	st.reload = reload_ok;
	st.reload_arg = &st;
	d = ask_ok("{'cmd': 'reload'}", &r);
	ck_assert_int_eq(iget(d, "generation"), 2);
	ck_assert_str_eq(sget(d, "message"), "generation 2: 2 services");
	json_decref(r);
	d = ask_ok("{'cmd': 'status'}", &r);
	ck_assert_int_eq(iget(d, "generation"), 2);
	l = json_object_get(d, "last_reload");
	ck_assert(json_is_true(json_object_get(l, "ok")));
	ck_assert_int_ge(iget(l, "time"), time(NULL) - 2);
	json_decref(r);

	st.reload = reload_bad;
	ask_err("{'cmd': 'reload'}", "reload_failed", NULL,
		"/etc/lb/lb.json: services[0].vips: expected an array");
	d = ask_ok("{'cmd': 'status'}", &r);
	ck_assert_int_eq(iget(d, "generation"), 2);
	l = json_object_get(d, "last_reload");
	ck_assert(json_is_false(json_object_get(l, "ok")));
	ck_assert_str_eq(sget(l, "message"), "/etc/lb/lb.json: services[0].vips: expected an array");
	json_decref(r);
	ck_assert_int_eq(reload_calls, 2);
}
END_TEST

/*
 * The clients command: what each service refused per client (the kernel's
 * counts arrive through refresh) and its top clients by open connections,
 * from the shared table.
 */
static int refreshed;

static void refresh_count(void)
{
	refreshed++;
	lb_shm_client_drops(shm, 0, "deny", 5);
}

START_TEST(test_clients)
{
	uint32_t web = shm->services[0].clients_key, held[5];
	union lb_sockaddr a, b;
	const char *why;
	json_t *r, *d, *s;

	ck_assert_int_eq(lb_addr_parse("198.18.0.10:1000", &a, &why), 0);
	ck_assert_int_eq(lb_addr_parse("[2001:db8::10]:1000", &b, &why), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(lb_clients_take(shm->pool->clients, web, &a, 0, &held[i]), 0);
	ck_assert_int_eq(lb_clients_take(shm->pool->clients, web, &b, 0, &held[4]), 0);
	atomic_store(&shm->services[0].client_conns, 7);
	lb_shm_client_drops(shm, 0, "rate", 11);
	st.refresh = refresh_count;
	d = ask_ok("{'cmd': 'clients', 'service': 'web', 'top': 1}", &r);
	ck_assert_int_eq(refreshed, 1);
	ck_assert_uint_eq(json_array_size(d), 1);
	s = json_array_get(d, 0);
	ck_assert_str_eq(sget(s, "name"), "web");
	ck_assert_int_eq(iget(json_object_get(s, "refused"), "deny"), 5);
	ck_assert_int_eq(iget(json_object_get(s, "refused"), "rate"), 11);
	ck_assert_int_eq(iget(json_object_get(s, "refused"), "max_conns"), 7);
	ck_assert_uint_eq(json_array_size(json_object_get(s, "top")), 1);
	ck_assert_str_eq(sget(json_array_get(json_object_get(s, "top"), 0), "client"),
			 "198.18.0.10");
	ck_assert_int_eq(iget(json_array_get(json_object_get(s, "top"), 0), "connections"), 4);
	json_decref(r);
	/* Every service, ten clients at most each by default. */
	d = ask_ok("{'cmd': 'clients'}", &r);
	ck_assert_int_eq(refreshed, 2);
	ck_assert_uint_eq(json_array_size(d), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(d, 0), "top")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(d, 1), "top")), 0);
	json_decref(r);
	ask_err("{'cmd': 'clients', 'service': 'nope'}", "unknown_service", "service", NULL);
	ask_err("{'cmd': 'clients', 'top': 0}", "bad_argument", "top",
		"argument 'top' must be an integer 1..1000");
	ask_err("{'cmd': 'clients', 'top': '5'}", "bad_argument", "top",
		"argument 'top' must be an integer 1..1000");
	for (int i = 0; i < 5; i++)
		lb_clients_put(shm->pool->clients, &held[i]);
	st.refresh = NULL;
}
END_TEST

/*
 * drain-gateway and resume-gateway, and what status shows. The
 * announce block is set after prepare, so no device is opened (no root):
 * the decisions show in each VIP's "why".
 */
START_TEST(test_gateway)
{
	struct lb_announce *a = lb_announce_alloc();
	json_t *r, *d, *gw, *vips;
	char err[256];

	ck_assert_ptr_nonnull(a);
	ask_err("{'cmd': 'drain-gateway'}", "unavailable", NULL, NULL);
	/* A block but no device (lb_announce_open not called): no root needed. */
	cfg->announce.enabled = true;
	cfg->announce.table = 200;
	cfg->announce.protocol = 250;
	ck_assert_int_eq(lb_announce_prepare(a, cfg, err, sizeof(err)), 0);
	lb_announce_use(a, cfg, shm);
	st.announce = a;
	ask_err("{'cmd': 'drain-gateway'}", "unavailable", NULL, "lb is starting");
	lb_announce_ready(a, lb_clock_ms());

	d = ask_ok("{'cmd': 'status'}", &r);
	gw = json_object_get(d, "gateway");
	ck_assert_str_eq(sget(gw, "state"), "serving");
	ck_assert(json_is_null(json_object_get(gw, "drain")));
	ck_assert_int_eq(iget(json_object_get(gw, "announce"), "table"), 200);
	ck_assert_int_eq(iget(json_object_get(gw, "announce"), "protocol"), 250);
	vips = json_object_get(json_object_get(gw, "announce"), "vips");
	ck_assert_uint_eq(json_array_size(vips), 3);
	ck_assert_str_eq(sget(json_array_get(vips, 0), "address"), "198.18.100.1");
	ck_assert(json_is_null(json_object_get(json_array_get(vips, 0), "why")));
	json_decref(r);

	ask_err("{'cmd': 'drain-gateway', 'stop': 1}", "bad_argument", "stop", NULL);
	ask_err("{'cmd': 'drain-gateway', 'timeout_ms': 0}", "bad_argument", "timeout_ms", NULL);
	ask_err("{'cmd': 'drain-gateway', 'timeout_ms': '5'}", "bad_argument", "timeout_ms", NULL);
	ask_err("{'cmd': 'drain-gateway', 'now': true}", "bad_argument", "now", NULL);
	ask_err("{'cmd': 'resume-gateway'}", "not_draining", NULL, NULL);
	d = ask_ok("{'cmd': 'drain-gateway', 'stop': true, 'timeout_ms': 30000}", &r);
	ck_assert_str_eq(sget(d, "state"), "draining");
	json_decref(r);
	lb_announce_drain_check(a, 4, lb_clock_ms());
	d = ask_ok("{'cmd': 'status'}", &r);
	gw = json_object_get(d, "gateway");
	ck_assert_str_eq(sget(gw, "state"), "draining");
	ck_assert(json_is_true(json_object_get(json_object_get(gw, "drain"), "stop")));
	ck_assert_int_eq(iget(json_object_get(gw, "drain"), "connections"), 4);
	ck_assert_int_ge(iget(json_object_get(gw, "drain"), "deadline") -
			 iget(json_object_get(gw, "drain"), "since"), 30);
	vips = json_object_get(json_object_get(gw, "announce"), "vips");
	ck_assert_str_eq(sget(json_array_get(vips, 2), "why"), "gateway draining");
	json_decref(r);

	d = ask_ok("{'cmd': 'resume-gateway'}", &r);
	ck_assert_str_eq(sget(d, "state"), "serving");
	json_decref(r);
	st.announce = NULL;
	lb_announce_free(a);
}
END_TEST

int main(void)
{
	return lb_test_main("ctl_cmd", ctl_fixture_setup, ctl_fixture_teardown, 0,
			    LB_TESTS(test_errors, test_no_shm, test_version_help, test_status,
				     test_services_backends_stats, test_set_state, test_set_weight,
				     test_reload, test_gateway,
				     test_clients));
}
