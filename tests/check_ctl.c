// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control protocol without a master: requests through
 * lb_ctl_handle_line() against a real shm, the line splitter on its own,
 * the metrics text under a strict exposition-format checker, and the
 * socket server in a forked child running its own loop.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb/ctl.h"
#include "lb/log.h"

static const char config_json[] =
	"{\"workers\": 2,"
	" \"services\": ["
	"  {\"name\": \"web\", \"vips\": [\"198.18.100.1:80\", \"[2001:db8:100::1]:80\"],"
	"   \"backends\": [{\"address\": \"198.18.2.2:80\"}, {\"address\": \"198.18.2.3:80\", \"weight\": 5},"
	"                {\"address\": \"[2001:db8:2::2]:80\"}]},"
	"  {\"name\": \"db\", \"vips\": [\"198.18.100.2:5432\"], \"scheduler\": \"maglev\","
	"   \"backends\": [{\"address\": \"198.18.2.2:5432\", \"max_conns\": 10}]}"
	" ]}";

static struct lb_config *cfg;
static struct lb_shm *shm;
static struct lb_ctl_state st;

static void setup(void)
{
	char *errors = NULL;

	lb_log_init(LB_LOG_WARN, "test");
	cfg = lb_config_parse(config_json, &errors);
	if (!cfg)
		ck_abort_msg("config: %s", errors);
	shm = lb_shm_create(cfg, 2, 1000);
	ck_assert_ptr_nonnull(shm);
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.shm = shm;
	st.config_path = "/etc/lb/lb.json";
	st.start_ms = lb_clock_ms() - 5000;
	st.start_time = time(NULL) - 5;
	st.generation = 1;
	for (unsigned int i = 0; i < 2; i++) {
		shm->workers[i].id = i;
		atomic_store(&shm->workers[i].pid, 1000 + i);
		atomic_store(&shm->workers[i].state, LB_WORKER_RUNNING);
		atomic_store(&shm->workers[i].generation, 1);
	}
}

static void teardown(void)
{
	lb_shm_destroy(shm);
	lb_config_free(cfg);
	shm = NULL;
	cfg = NULL;
}

/* Sends req (single quotes become double) and returns the parsed reply. */
static json_t *ask(const char *req)
{
	char *line = strdup(req), *reply, *p;
	json_error_t jerr;
	json_t *r;

	ck_assert_ptr_nonnull(line);
	for (p = line; *p; p++)
		if (*p == '\'')
			*p = '"';
	reply = lb_ctl_handle_line(&st, line, strlen(line), NULL);
	free(line);
	ck_assert_ptr_nonnull(reply);
	/* Exactly one line. */
	ck_assert_uint_gt(strlen(reply), 1);
	ck_assert_ptr_eq(strchr(reply, '\n'), reply + strlen(reply) - 1);
	r = json_loads(reply, 0, &jerr);
	if (!r)
		ck_abort_msg("reply is not JSON: %s: %s", jerr.text, reply);
	free(reply);
	ck_assert(json_is_object(r));
	ck_assert(json_is_boolean(json_object_get(r, "ok")));
	return r;
}

/* The data of a successful reply (the caller decrefs the returned reply). */
static json_t *ask_ok(const char *req, json_t **reply)
{
	json_t *r = ask(req);

	if (!json_is_true(json_object_get(r, "ok")))
		ck_abort_msg("%s: %s", req, json_dumps(r, 0));
	*reply = r;
	return json_object_get(r, "data");
}

/* Asserts an error reply with code (and argument, when not NULL); returns the message. */
static void ask_err(const char *req, const char *code, const char *arg, const char *msg)
{
	json_t *r = ask(req), *e = json_object_get(r, "error");

	if (!json_is_false(json_object_get(r, "ok")) || !json_is_object(e))
		ck_abort_msg("%s: expected an error, got %s", req, json_dumps(r, 0));
	ck_assert_msg(json_is_string(json_object_get(e, "message")) &&
		      json_string_length(json_object_get(e, "message")) > 0, "%s: no message", req);
	if (strcmp(json_string_value(json_object_get(e, "code")), code))
		ck_abort_msg("%s: code %s, want %s (%s)", req,
			     json_string_value(json_object_get(e, "code")), code,
			     json_string_value(json_object_get(e, "message")));
	if (arg)
		ck_assert_str_eq(json_string_value(json_object_get(e, "argument")), arg);
	if (msg)
		ck_assert_str_eq(json_string_value(json_object_get(e, "message")), msg);
	json_decref(r);
}

static const char *sget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

static json_int_t iget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

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
	ck_assert_uint_eq(json_array_size(d), 12);
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

/* ---- line splitter ---- */

static enum lb_ctl_next next_line(struct lb_ctl_input *in, char *buf, size_t len, bool eof)
{
	const char *line;
	size_t n;
	enum lb_ctl_next r = lb_ctl_input_next(in, &line, &n, eof);

	buf[0] = '\0';
	if (r == LB_CTL_LINE) {
		ck_assert_uint_lt(n, len);
		memcpy(buf, line, n);
		buf[n] = '\0';
	}
	return r;
}

static void feed(struct lb_ctl_input *in, const char *s)
{
	ck_assert_int_eq(lb_ctl_input_append(in, s, strlen(s)), 0);
}

START_TEST(test_split_pipelined)
{
	struct lb_ctl_input in = { 0 };
	char buf[256];

	feed(&in, "a\nbb\n\n \r\ncc");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "a");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "bb");
	/* Blank lines are skipped; "cc" is not complete yet. */
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	ck_assert_uint_eq(lb_ctl_input_pending(&in), 2);
	feed(&in, "c\r\nd");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "ccc\r");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	/* At EOF the unterminated rest is a last line. */
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_LINE);
	ck_assert_str_eq(buf, "d");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_NONE);
	ck_assert_uint_eq(lb_ctl_input_pending(&in), 0);
	lb_ctl_input_fini(&in);
}
END_TEST

START_TEST(test_split_bytewise)
{
	struct lb_ctl_input in = { 0 };
	const char *s = "{\"cmd\": \"status\"}\n{\"cmd\": \"version\"}\n";
	char buf[256];
	int lines = 0;

	for (const char *p = s; *p; p++) {
		ck_assert_int_eq(lb_ctl_input_append(&in, p, 1), 0);
		while (next_line(&in, buf, sizeof(buf), false) == LB_CTL_LINE) {
			ck_assert_str_eq(buf, lines ? "{\"cmd\": \"version\"}" : "{\"cmd\": \"status\"}");
			lines++;
		}
	}
	ck_assert_int_eq(lines, 2);
	lb_ctl_input_fini(&in);
}
END_TEST

START_TEST(test_split_too_long)
{
	struct lb_ctl_input in = { 0 };
	char *big = malloc(LB_CTL_LINE_MAX + 2), buf[256];

	memset(big, 'x', LB_CTL_LINE_MAX + 1);
	big[LB_CTL_LINE_MAX + 1] = '\0';
	/* In order: a, the long line's error, then b. */
	feed(&in, "a\n");
	feed(&in, big);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "a");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_TOO_LONG);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	/* The rest of the long line is dropped as it arrives: memory stays bounded. */
	for (int i = 0; i < 64; i++) {
		feed(&in, big);
		ck_assert_uint_eq(lb_ctl_input_pending(&in), 0);
		ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	}
	ck_assert_uint_le(in.cap, 2 * LB_CTL_LINE_MAX + 4096);
	feed(&in, "tail\nb\n");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "b");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);

	/* A long line arriving whole, with its newline, in one piece. */
	feed(&in, big);
	feed(&in, "\nc\n");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_TOO_LONG);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_LINE);
	ck_assert_str_eq(buf, "c");

	/* Exactly LB_CTL_LINE_MAX bytes is still a line, with or without EOF. */
	big[LB_CTL_LINE_MAX] = '\0';
	feed(&in, big);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), false), LB_CTL_NONE);
	feed(&in, "\n");
	{
		const char *line;
		size_t n;

		ck_assert_int_eq(lb_ctl_input_next(&in, &line, &n, false), LB_CTL_LINE);
		ck_assert_uint_eq(n, LB_CTL_LINE_MAX);
		feed(&in, big);
		ck_assert_int_eq(lb_ctl_input_next(&in, &line, &n, true), LB_CTL_LINE);
		ck_assert_uint_eq(n, LB_CTL_LINE_MAX);
	}
	/* One more byte is too long, also at EOF. */
	feed(&in, big);
	feed(&in, "y");
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_TOO_LONG);
	ck_assert_int_eq(next_line(&in, buf, sizeof(buf), true), LB_CTL_NONE);
	lb_ctl_input_fini(&in);
	free(big);
}
END_TEST

/* What the server does with a buffer: every request answered, in order. */
START_TEST(test_pipeline_replies)
{
	struct lb_ctl_input in = { 0 };
	char codes[8][32];
	char *big = malloc(LB_CTL_LINE_MAX + 100);
	int n = 0;
	const char *line;
	size_t len;
	enum lb_ctl_next r;

	memset(big, ' ', LB_CTL_LINE_MAX + 99);
	big[LB_CTL_LINE_MAX + 99] = '\0';
	big[0] = '{';
	feed(&in, "{\"cmd\": \"version\"}\n{oops\n[]\n");
	feed(&in, big);
	feed(&in, "}\n{\"cmd\": \"set-weight\", \"service\": \"web\", \"backend\": \"198.18.2.2:80\", "
		  "\"weight\": 3}\n{\"cmd\": \"nope\"}\n{\"cmd\": \"status\"}");
	while ((r = lb_ctl_input_next(&in, &line, &len, true)) != LB_CTL_NONE) {
		char *reply = r == LB_CTL_LINE ? lb_ctl_handle_line(&st, line, len, NULL)
					       : lb_ctl_error_line("line_too_long", "too long");
		json_t *j = json_loads(reply, 0, NULL);
		json_t *e = json_object_get(j, "error");

		ck_assert_int_lt(n, 8);
		snprintf(codes[n++], sizeof(codes[0]), "%s",
			 e ? json_string_value(json_object_get(e, "code")) : "ok");
		json_decref(j);
		free(reply);
	}
	ck_assert_int_eq(n, 7);
	ck_assert_str_eq(codes[0], "ok");
	ck_assert_str_eq(codes[1], "bad_json");
	ck_assert_str_eq(codes[2], "bad_request");
	ck_assert_str_eq(codes[3], "line_too_long");
	ck_assert_str_eq(codes[4], "ok");
	ck_assert_str_eq(codes[5], "unknown_command");
	ck_assert_str_eq(codes[6], "ok");
	ck_assert_uint_eq(atomic_load(&lb_shm_backend(shm, 0, 0)->weight), 3);
	lb_ctl_input_fini(&in);
	free(big);
}
END_TEST

/* ---- metrics under a strict text exposition format checker ---- */

struct family {
	char name[128];
	char type[16];
	bool help, sampled, closed;
};

struct expo {
	struct family fam[128];
	size_t n_fam;
	char *series[4096];
	size_t n_series;
	char err[256];
};

static bool name_ok(const char *s, size_t n, bool colon)
{
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || (colon && s[0] == ':')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (colon && s[i] == ':')))
			return false;
	return true;
}

static struct family *fam_get(struct expo *x, const char *name, size_t n, bool create)
{
	for (size_t i = 0; i < x->n_fam; i++)
		if (strlen(x->fam[i].name) == n && !strncmp(x->fam[i].name, name, n))
			return &x->fam[i];
	if (!create || x->n_fam == 128 || n >= sizeof(x->fam[0].name))
		return NULL;
	memcpy(x->fam[x->n_fam].name, name, n);
	return &x->fam[x->n_fam++];
}

static bool value_ok(const char *s)
{
	char *end;

	if (!strcmp(s, "+Inf") || !strcmp(s, "-Inf") || !strcmp(s, "NaN"))
		return true;
	if (!*s || isspace((unsigned char)*s))
		return false;
	strtod(s, &end);
	return *end == '\0' && strspn(s, "0123456789+-.eE") == strlen(s);
}

static int expo_bad(struct expo *x, int lineno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int expo_bad(struct expo *x, int lineno, const char *fmt, ...)
{
	int n = snprintf(x->err, sizeof(x->err), "line %d: ", lineno);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err + n, sizeof(x->err) - n, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Returns 0 when text is valid exposition format 0.0.4 as lb must produce
 * it: every line ends in \n, HELP/TYPE precede their samples, families are
 * contiguous, names and labels are well formed, label values use only the
 * three escapes, values are numbers, no series repeats. Else sets x->err.
 */
static int expo_check(const char *text, struct expo *x)
{
	const char *p = text;
	int lineno = 0;
	struct family *cur = NULL;

	memset(x, 0, sizeof(*x));
#define BAD(...) return expo_bad(x, lineno, __VA_ARGS__)
	if (!*text || text[strlen(text) - 1] != '\n')
		BAD("text does not end with a newline");
	while (*p) {
		const char *nl = strchr(p, '\n'), *q;
		char line[4096], key[4096];
		size_t n = nl - p, kn = 0;
		struct family *f;

		lineno++;
		if (n >= sizeof(line))
			BAD("too long");
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (!n)
			BAD("empty line");
		if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
			const char *name = line + 7, *sp = strchr(name, ' ');

			if (!sp || !name_ok(name, sp - name, true))
				BAD("bad metric name in %s", line);
			f = fam_get(x, name, sp - name, true);
			if (!f)
				BAD("too many families");
			if (f->sampled || f->closed)
				BAD("%s after the family's samples", line);
			if (line[2] == 'H') {
				if (f->help)
					BAD("second HELP for %s", f->name);
				f->help = true;
				for (q = sp + 1; *q; q++)
					if (*q == '\\' && q[1] != '\\' && q[1] != 'n')
						BAD("bad escape in HELP");
			} else {
				if (f->type[0])
					BAD("second TYPE for %s", f->name);
				if (strcmp(sp + 1, "counter") && strcmp(sp + 1, "gauge") &&
				    strcmp(sp + 1, "histogram") && strcmp(sp + 1, "summary") &&
				    strcmp(sp + 1, "untyped"))
					BAD("unknown type %s", sp + 1);
				snprintf(f->type, sizeof(f->type), "%s", sp + 1);
			}
			if (cur && cur != f)
				cur->closed = true;
			cur = f;
			continue;
		}
		if (line[0] == '#')
			continue;
		/* A sample: name{labels} value [timestamp] */
		q = line;
		while (*q && *q != '{' && *q != ' ')
			q++;
		if (!name_ok(line, q - line, true))
			BAD("bad metric name: %s", line);
		f = fam_get(x, line, q - line, false);
		/* A histogram's samples are NAME_bucket, NAME_sum and NAME_count. */
		for (const char *const *sfx = (const char *const[]){ "_bucket", "_sum", "_count", NULL };
		     !f && *sfx; sfx++) {
			size_t sl = strlen(*sfx), ln = q - line;

			if (ln > sl && !strncmp(q - sl, *sfx, sl)) {
				f = fam_get(x, line, ln - sl, false);
				if (f && strcmp(f->type, "histogram"))
					BAD("%s: %s is not a histogram", line, f->name);
			}
		}
		if (!f || !f->type[0])
			BAD("sample without a TYPE before it: %s", line);
		if (f->closed)
			BAD("family %s is not contiguous", f->name);
		if (!strcmp(f->type, "counter") &&
		    (strlen(f->name) < 6 || strcmp(f->name + strlen(f->name) - 6, "_total")))
			BAD("counter %s does not end in _total", f->name);
		if (cur && cur != f)
			cur->closed = true;
		cur = f;
		f->sampled = true;
		memcpy(key, line, q - line);
		kn = q - line;
		if (*q == '{') {
			char names[32][64];
			int n_names = 0;

			key[kn++] = *q++;
			while (*q != '}') {
				const char *ln = q;

				while (*q && *q != '=')
					q++;
				if (!name_ok(ln, q - ln, false) || q - ln >= 64 || !strncmp(ln, "__", 2))
					BAD("bad label name in %s", line);
				for (int i = 0; i < n_names; i++)
					if (strlen(names[i]) == (size_t)(q - ln) &&
					    !strncmp(names[i], ln, q - ln))
						BAD("repeated label in %s", line);
				if (n_names == 32)
					BAD("too many labels");
				memcpy(names[n_names], ln, q - ln);
				names[n_names++][q - ln] = '\0';
				memcpy(key + kn, ln, q - ln + 1);
				kn += q - ln + 1;
				if (q[1] != '"')
					BAD("label value not quoted in %s", line);
				q += 2;
				key[kn++] = '"';
				for (; *q != '"'; q++) {
					if (!*q)
						BAD("unterminated label value in %s", line);
					if (*q == '\\') {
						if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
							BAD("bad escape in label value: %s", line);
						key[kn++] = *q++;
					}
					key[kn++] = *q;
				}
				key[kn++] = *q++;
				if (*q == ',') {
					key[kn++] = *q++;
				} else if (*q != '}') {
					BAD("expected , or } in %s", line);
				}
			}
			key[kn++] = *q++;
		}
		key[kn] = '\0';
		if (*q != ' ')
			BAD("no space before the value: %s", line);
		q++;
		{
			char val[64];
			const char *sp = strchr(q, ' ');
			size_t vn = sp ? (size_t)(sp - q) : strlen(q);

			if (vn >= sizeof(val))
				BAD("value too long");
			memcpy(val, q, vn);
			val[vn] = '\0';
			if (!value_ok(val))
				BAD("bad value '%s' in %s", val, line);
			if (sp && (!sp[1] || strspn(sp + 1, "-0123456789") != strlen(sp + 1)))
				BAD("bad timestamp in %s", line);
		}
		for (size_t i = 0; i < x->n_series; i++)
			if (!strcmp(x->series[i], key))
				BAD("series repeated: %s", key);
		if (x->n_series < 4096)
			x->series[x->n_series++] = strdup(key);
	}
	for (size_t i = 0; i < x->n_fam; i++)
		if (!x->fam[i].type[0])
			BAD("family %s has no TYPE", x->fam[i].name);
#undef BAD
	return 0;
}

static void expo_free(struct expo *x)
{
	for (size_t i = 0; i < x->n_series; i++)
		free(x->series[i]);
}

static void expect_fail(const char *text)
{
	struct expo x;

	ck_assert_msg(expo_check(text, &x) < 0, "checker accepted: %s", text);
	expo_free(&x);
}

START_TEST(test_checker_rejects)
{
	/* The checker itself: each of these breaks one rule. */
	expect_fail("a 1\n");
	expect_fail("# TYPE a gauge\na 1");
	expect_fail("# TYPE a gauge\na x\n");
	expect_fail("# TYPE a gauge\na{b=\"c} 1\n");
	expect_fail("# TYPE a gauge\na{b=\"\\t\"} 1\n");
	expect_fail("# TYPE a gauge\na{1b=\"c\"} 1\n");
	expect_fail("# TYPE a gauge\na{b=c} 1\n");
	expect_fail("# TYPE a gauge\na 1\na 2\n");
	expect_fail("# TYPE a counter\na 1\n");
	expect_fail("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 1\n");
	expect_fail("# TYPE a gauge\n# TYPE a gauge\na 1\n");
	expect_fail("# TYPE 1a gauge\n1a 1\n");
	expect_fail("# TYPE a gauge\na{b=\"c\",b=\"d\"} 1\n");
	expect_fail("# TYPE a gauge\na  1\n");
}
END_TEST

/* The value of series key (exactly as printed) in text, or -1. */
static long long sample(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; *p; p = strchr(p, '\n') + 1)
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

START_TEST(test_metrics)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, 0, 0);
	struct expo x;
	char *text;
	json_t *r, *d;

	atomic_store(&b->active, 3);
	atomic_store(&b->total, 12);
	atomic_store(&b->bytes_in, 100);
	atomic_store(&b->bytes_out, 200);
	atomic_store(&b->connect_failures, 1);
	atomic_store(&shm->services[0].no_backend, 9);
	atomic_store(&shm->workers[1].active, 4);
	lb_shm_set_admin(shm, cfg, 0, 1, LB_ADMIN_DRAIN, "test");
	lb_shm_set_health(shm, cfg, 0, 2, LB_HEALTH_DOWN, "test");
	text = lb_ctl_metrics(&st);
	ck_assert_ptr_nonnull(text);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
	ck_assert_int_eq(sample(text, "lb_backend_active_connections{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 3);
	ck_assert_int_eq(sample(text, "lb_backend_connections_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 12);
	ck_assert_int_eq(sample(text, "lb_backend_bytes_in_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 100);
	ck_assert_int_eq(sample(text, "lb_backend_bytes_out_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 200);
	ck_assert_int_eq(sample(text, "lb_backend_connect_failures_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 1);
	ck_assert_int_eq(sample(text, "lb_backend_up{service=\"web\","
				"backend=\"[2001:db8:2::2]:80\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_backend_up{service=\"web\","
				"backend=\"198.18.2.3:80\"}"), 1);
	ck_assert_int_eq(sample(text, "lb_backend_admin_state{service=\"web\","
				"backend=\"198.18.2.3:80\",state=\"drain\"}"), 1);
	ck_assert_int_eq(sample(text, "lb_backend_admin_state{service=\"web\","
				"backend=\"198.18.2.3:80\",state=\"up\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_backend_weight{service=\"web\","
				"backend=\"198.18.2.3:80\"}"), 5);
	ck_assert_int_eq(sample(text, "lb_backend_max_connections{service=\"db\","
				"backend=\"198.18.2.2:5432\"}"), 10);
	ck_assert_int_eq(sample(text, "lb_service_no_backend_total{service=\"web\"}"), 9);
	ck_assert_int_eq(sample(text, "lb_worker_active_connections{worker=\"1\",generation=\"1\"}"), 4);
	ck_assert_int_ge(sample(text, "lb_uptime_seconds"), 5);
	ck_assert_int_eq(sample(text, "lb_config_generation"), 1);

	/* The command returns the same text as a JSON string. */
	d = ask_ok("{'cmd': 'metrics'}", &r);
	ck_assert(json_is_string(d));
	ck_assert_int_eq(expo_check(json_string_value(d), &x), 0);
	expo_free(&x);
	json_decref(r);
	free(text);
}
END_TEST

/*
 * The clients command and metrics: what each service refused per client
 * (the kernel's counts arrive through refresh), and the top clients by open
 * connections from the shared table.
 */
static int refreshed;

static void refresh_count(void)
{
	refreshed++;
	lb_shm_client_drops(shm, 0, "deny", 5);
}

START_TEST(test_clients)
{
	uint32_t web = shm->services[0].clients_key, held[6];
	union lb_sockaddr a, b;
	struct expo x;
	const char *why;
	char *text;
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
	ck_assert_str_eq(sget(json_array_get(json_object_get(s, "top"), 0), "client"), "198.18.0.10");
	ck_assert_int_eq(iget(json_array_get(json_object_get(s, "top"), 0), "connections"), 4);
	json_decref(r);
	/* Every service, ten clients at most each by default. */
	d = ask_ok("{'cmd': 'clients'}", &r);
	ck_assert_uint_eq(json_array_size(d), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(d, 0), "top")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(d, 1), "top")), 0);
	json_decref(r);
	ask_err("{'cmd': 'clients', 'service': 'nope'}", "unknown_service", "service", "no service nope");
	ask_err("{'cmd': 'clients', 'top': 0}", "bad_argument", "top",
		"argument 'top' must be an integer 1..1000");
	ask_err("{'cmd': 'clients', 'top': '5'}", "bad_argument", "top",
		"argument 'top' must be an integer 1..1000");
	text = lb_ctl_metrics(&st);
	ck_assert_ptr_nonnull(text);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
	ck_assert_int_eq(sample(text, "lb_service_clients_refused_total{service=\"web\","
				"reason=\"deny\"}"), 10);
	ck_assert_int_eq(sample(text, "lb_service_clients_refused_total{service=\"db\","
				"reason=\"max_conns\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_service_top_client_connections{service=\"web\","
				"client=\"2001:db8::10\"}"), 1);
	free(text);
	for (int i = 0; i < 5; i++)
		lb_clients_put(shm->pool->clients, &held[i]);
	st.refresh = NULL;
}
END_TEST

/* Label values are escaped: a name with a quote, a backslash and a newline. */
/*
 * Latency histograms: cumulative buckets, _sum in seconds and _count in
 * /metrics; p50/p99 in ms in the backends and services replies, which
 * lb_ctl_status_json() (the HTTP /status.json) carries together with status.
 */
START_TEST(test_histograms)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, 0, 0);
	json_t *r, *d, *o, *lat;
	json_error_t jerr;
	struct expo x;
	char *text;

	/* 80 connects of 200 µs, 20 of 3 ms; 2 clients queued 40 ms. */
	for (int i = 0; i < 100; i++)
		lb_hist_observe(&b->connect, LB_HIST_CONNECT, i < 80 ? 200 : 3000);
	lb_hist_observe(&shm->services[0].queue, LB_HIST_QUEUE, 40000);
	lb_hist_observe(&shm->services[0].queue, LB_HIST_QUEUE, 40000);
	text = lb_ctl_metrics(&st);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
#define BE "service=\"web\",backend=\"198.18.2.2:80\""
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.0001\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.00025\"}"), 80);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.0025\"}"), 80);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.005\"}"), 100);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"+Inf\"}"), 100);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_count{" BE "}"), 100);
	ck_assert_ptr_nonnull(strstr(text, "lb_backend_connect_seconds_sum{" BE "} 0.076000\n"));
#undef BE
	ck_assert_int_eq(sample(text, "lb_service_queue_seconds_bucket{service=\"web\",le=\"0.05\"}"), 2);
	ck_assert_int_eq(sample(text, "lb_service_queue_seconds_bucket{service=\"web\",le=\"0.025\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_service_connection_duration_seconds_count{service=\"db\"}"), 0);
	free(text);

	d = ask_ok("{'cmd': 'backends', 'service': 'web'}", &r);
	lat = json_object_get(json_array_get(d, 0), "connect_ms");
	ck_assert_int_eq(json_integer_value(json_object_get(lat, "count")), 100);
	/* Half of them below 250 µs: p50 interpolates inside 100..250 µs. */
	ck_assert(json_real_value(json_object_get(lat, "p50")) > 0.1 &&
		  json_real_value(json_object_get(lat, "p50")) <= 0.25);
	ck_assert(json_real_value(json_object_get(lat, "p99")) > 2.5 &&
		  json_real_value(json_object_get(lat, "p99")) <= 5);
	ck_assert(json_is_null(json_object_get(json_object_get(json_array_get(d, 1), "connect_ms"),
					       "p50")));
	json_decref(r);

	text = lb_ctl_status_json(&st);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(text[strlen(text) - 1], '\n');
	o = json_loads(text, 0, &jerr);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "status"),
							     "generation")), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "services")), 2);
	lat = json_object_get(json_array_get(json_object_get(o, "services"), 0), "queue_ms");
	ck_assert_int_eq(json_integer_value(json_object_get(lat, "count")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "backends")),
			  shm->services[0].n_backends + shm->services[1].n_backends);
	json_decref(o);
	free(text);
}
END_TEST

START_TEST(test_metrics_escaping)
{
	static const char odd[] = "we\"b\\x\ny";
	struct expo x;
	char *text;

	free(cfg->services[0].name);
	cfg->services[0].name = strdup(odd);
	text = lb_ctl_metrics(&st);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
	ck_assert_int_eq(sample(text, "lb_service_no_backend_total{service=\"we\\\"b\\\\x\\ny\"}"),
			 0);
	free(text);
	/* ... and JSON replies carry the name as it is. */
	{
		json_t *r, *d = ask_ok("{'cmd': 'services'}", &r);

		ck_assert_str_eq(sget(json_array_get(d, 0), "name"), odd);
		json_decref(r);
	}
}
END_TEST

/* ---- the socket server, in a child running its own loop ---- */

static char sock_dir[64], sock_path[100];

/* Children run the server loop until SIGTERM. */
static struct lb_loop *child_loop;

static void child_sig(struct lb_event *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(ev->fd, &si, sizeof(si)) == sizeof(si))
		lb_loop_stop(child_loop);
}

static pid_t server_start(void)
{
	int p[2];
	pid_t pid;
	char c[256] = "";

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct lb_event sig = { .cb = child_sig };
		struct lb_ctl *ctl;
		sigset_t mask;
		char err[256];

		close(p[0]);
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		sigprocmask(SIG_BLOCK, &mask, NULL);
		signal(SIGPIPE, SIG_IGN);
		child_loop = lb_loop_alloc();
		sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
		lb_loop_add(child_loop, &sig, EPOLLIN);
		free(cfg->control_path);
		cfg->control_path = strdup(sock_path);
		ctl = lb_ctl_open(child_loop, cfg, &st, err, sizeof(err));
		if (!ctl) {
			dprintf(p[1], "E%s", err);
			_exit(1);
		}
		if (write(p[1], "R", 1) != 1)
			_exit(1);
		close(p[1]);
		lb_loop_run(child_loop);
		lb_ctl_close(ctl);
		lb_loop_free(child_loop);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], c, sizeof(c) - 1) < 1 || c[0] != 'R')
		ck_abort_msg("server did not start: %s", c);
	close(p[0]);
	return pid;
}

static void server_stop(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int client_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		ck_assert_int_gt(w, 0);
		s += w;
		n -= w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Buffered reads of reply lines, per file descriptor. */
static struct {
	char buf[65536];
	size_t off, len;
} rd[1024];

/* Reads one reply line (5 s at most) into buf. */
static void read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	ck_assert_int_lt(fd, 1024);
	for (;;) {
		while (rd[fd].off < rd[fd].len) {
			char ch = rd[fd].buf[rd[fd].off++];

			if (ch == '\n') {
				buf[n] = '\0';
				return;
			}
			buf[n] = ch;
			ck_assert_uint_lt(++n, len - 1);
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		ck_assert_msg(poll(&pfd, 1, 5000) == 1, "no reply within 5 s");
		r = read(fd, rd[fd].buf, sizeof(rd[fd].buf));
		ck_assert_int_gt(r, 0);
		rd[fd].off = 0;
		rd[fd].len = r;
	}
}

/* Closes fd and forgets what was buffered for it. */
static void client_close(int fd)
{
	rd[fd].off = rd[fd].len = 0;
	close(fd);
}

static void sock_setup(void)
{
	setup();
	snprintf(sock_dir, sizeof(sock_dir), "/tmp/check_ctl.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sock_dir));
	snprintf(sock_path, sizeof(sock_path), "%s/run/lb/lb.sock", sock_dir);
}

static void sock_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sock_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", sock_dir);
	teardown();
}

START_TEST(test_socket_basics)
{
	char buf[65536], dir[160];
	struct stat sb;
	pid_t pid;
	int fd;

	pid = server_start();
	/* Created with its directories; the file has mode 0600. */
	ck_assert_int_eq(lstat(sock_path, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	snprintf(dir, sizeof(dir), "%s/run/lb", sock_dir);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0755);

	/* Pipelined, with bad ones between: all answered in order, connection kept. */
	fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n{bad\n42\n{\"cmd\":\"x\"}\n\n{\"cmd\":\"status\"}\n");
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"ok\":true"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "bad_json"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "bad_request"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "unknown_command"));
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"workers\""));

	/* An over-long line gets line_too_long, then the next request is answered. */
	{
		char *big = malloc(200000);

		memset(big, 'x', 200000);
		send_all(fd, big, 200000);
		free(big);
		send_str(fd, "\n{\"cmd\":\"version\"}\n");
		read_line(fd, buf, sizeof(buf));
		ck_assert_ptr_nonnull(strstr(buf, "line_too_long"));
		read_line(fd, buf, sizeof(buf));
		ck_assert_ptr_nonnull(strstr(buf, "\"protocol\""));
	}
	/* A last request without newline is answered at EOF, then the server closes. */
	send_str(fd, "{\"cmd\":\"version\"}");
	shutdown(fd, SHUT_WR);
	read_line(fd, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "\"protocol\""), "%s", buf);
	ck_assert_int_eq(read(fd, buf, 1), 0);
	client_close(fd);

	/* A second server on the same path refuses to start. */
	{
		struct lb_loop *loop = lb_loop_alloc();
		char err[256];

		free(cfg->control_path);
		cfg->control_path = strdup(sock_path);
		ck_assert_ptr_null(lb_ctl_open(loop, cfg, &st, err, sizeof(err)));
		ck_assert_ptr_nonnull(strstr(err, "another lb is running"));
		lb_loop_free(loop);
	}
	server_stop(pid);
	/* Removed on close. */
	ck_assert_int_eq(lstat(sock_path, &sb), -1);
}
END_TEST

START_TEST(test_socket_stale_and_not_socket)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct lb_loop *loop = lb_loop_alloc();
	char err[256], buf[4096];
	pid_t pid;
	int fd, lfd;

	/* A stale socket: bound, then its owner died without unlinking. */
	pid = server_start();
	server_stop(pid);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(lfd);
	pid = server_start();
	fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n");
	read_line(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"ok\":true"));
	client_close(fd);
	server_stop(pid);

	/* Not a socket: refused, and left alone. */
	fd = open(sock_path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	client_close(fd);
	free(cfg->control_path);
	cfg->control_path = strdup(sock_path);
	ck_assert_ptr_null(lb_ctl_open(loop, cfg, &st, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a socket"));
	ck_assert_int_eq(access(sock_path, F_OK), 0);
	lb_loop_free(loop);
}
END_TEST

START_TEST(test_socket_concurrency)
{
	enum { N = 200 };
	static int fds[N];
	char buf[65536];
	pid_t pid = server_start();
	int stalled, hog;

	/* One client sends half a request and stalls; another pipelines and never reads. */
	stalled = client_connect();
	send_str(stalled, "{\"cmd\": \"sta");
	hog = client_connect();
	{
		/* One write: many small ones would each take a socket buffer's worth of overhead. */
		static char burst[2000 * 19 + 1];

		for (int i = 0; i < 2000; i++)
			memcpy(burst + 19 * i, "{\"cmd\":\"backends\"}\n", 19);
		send_str(hog, burst);
	}
	/* 200 concurrent clients, all connected before any asks. */
	for (int i = 0; i < N; i++)
		fds[i] = client_connect();
	for (int i = 0; i < N; i++)
		send_str(fds[i], "{\"cmd\":\"status\"}\n");
	for (int i = 0; i < N; i++) {
		read_line(fds[i], buf, sizeof(buf));
		ck_assert_ptr_nonnull(strstr(buf, "\"ok\":true"));
		client_close(fds[i]);
	}
	/* The stalled one finishes its line and is answered. */
	send_str(stalled, "tus\"}\n");
	read_line(stalled, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"workers\""));
	/* The hog gets all its replies, in order, once it reads. */
	for (int i = 0; i < 2000; i++) {
		read_line(hog, buf, sizeof(buf));
		ck_assert_msg(!strncmp(buf, "{\"ok\":true,\"data\":[", 19), "reply %d: %.80s", i, buf);
	}
	client_close(hog);
	client_close(stalled);
	server_stop(pid);
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("protocol");
	TCase *ts = tcase_create("split");
	TCase *tm = tcase_create("metrics");
	TCase *tk = tcase_create("socket");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_no_shm);
	tcase_add_test(tc, test_version_help);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_services_backends_stats);
	tcase_add_test(tc, test_set_state);
	tcase_add_test(tc, test_set_weight);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_clients);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ts, setup, teardown);
	tcase_add_test(ts, test_split_pipelined);
	tcase_add_test(ts, test_split_bytewise);
	tcase_add_test(ts, test_split_too_long);
	tcase_add_test(ts, test_pipeline_replies);
	suite_add_tcase(s, ts);
	tcase_add_checked_fixture(tm, setup, teardown);
	tcase_add_test(tm, test_checker_rejects);
	tcase_add_test(tm, test_metrics);
	tcase_add_test(tm, test_metrics_escaping);
	tcase_add_test(tm, test_histograms);
	suite_add_tcase(s, tm);
	tcase_add_checked_fixture(tk, sock_setup, sock_teardown);
	tcase_set_timeout(tk, 30);
	tcase_add_test(tk, test_socket_basics);
	tcase_add_test(tk, test_socket_stale_and_not_socket);
	tcase_add_test(tk, test_socket_concurrency);
	suite_add_tcase(s, tk);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ctl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
