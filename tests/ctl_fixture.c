// SPDX-License-Identifier: GPL-2.0-or-later
/* What the control-socket tests share: a config, its shm and requests answered against them. */
#include <check.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lb/log.h"
#include "tests/ctl_fixture.h"

static const char config_json[] =
	"{\"workers\": 2,"
	" \"services\": ["
	"  {\"name\": \"web\", \"vips\": [\"198.18.100.1:80\", \"[2001:db8:100::1]:80\"],"
	"   \"backends\": [{\"address\": \"198.18.2.2:80\"}, {\"address\": \"198.18.2.3:80\", \"weight\": 5},"
	"                {\"address\": \"[2001:db8:2::2]:80\"}]},"
	"  {\"name\": \"db\", \"vips\": [\"198.18.100.2:5432\"], \"scheduler\": \"maglev\","
	"   \"backends\": [{\"address\": \"198.18.2.2:5432\", \"max_conns\": 10}]}"
	" ]}";

struct lb_config *cfg;
struct lb_shm *shm;
struct lb_ctl_state st;

void ctl_fixture_setup(void)
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

void ctl_fixture_teardown(void)
{
	lb_shm_destroy(shm);
	lb_config_free(cfg);
	shm = NULL;
	cfg = NULL;
}

json_t *ask(const char *req)
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

json_t *ask_ok(const char *req, json_t **reply)
{
	json_t *r = ask(req);

	if (!json_is_true(json_object_get(r, "ok")))
		ck_abort_msg("%s: %s", req, json_dumps(r, 0));
	*reply = r;
	return json_object_get(r, "data");
}

void ask_err(const char *req, const char *code, const char *arg, const char *msg)
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

const char *sget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

json_int_t iget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}
