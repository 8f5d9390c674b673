// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb_config_reload_log(): a reload copies the services whose text did not
 * change from the running config and parses the rest. Whatever the edit,
 * the result must be the config, the warnings and the errors that a whole
 * read of the same text gives (lb_config_load_log), with no memory shared
 * with the running config.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb/config.h"
#include "tests/config_equal.h"
#include "tests/unit.h"

/* Services in the config tests' single quotes, each using a different part of the parser. */
#define S_WEB "{'name':'web','vips':['198.18.100.1:80','198.18.128.0/20:443'," \
	"'198.18.100.2:8000-8999'],'scheduler':'maglev','backends':[{'address':" \
	"'198.18.2.2:80','weight':3,'max_conns':100},{'address':'198.18.2.3:80'}]," \
	"'health':{'type':'http','path':'/hc','host':'example.test','interval_ms':1000}}"
#define S_API "{'name':'api','vips':['[2001:db8:100::1]:443','[2001:db8:100::/48]:8443']," \
	"'backends':[{'address':'[2001:db8:2::2]:443'}],'clients':{'allow':['2001:db8::/32']," \
	"'deny':['2001:db8:9::/48'],'rate':{'per_second':100},'max_conns':10}}"
#define S_H3 "{'name':'h3','protocol':'udp','vips':['198.18.100.3:443'],'quic':{'lb':" \
	"{'config_id':1,'server_id_len':2,'nonce_len':6}},'backends':[{'address':" \
	"'198.18.2.4:443','quic_server_id':'0a01'},{'address':'198.18.2.5:443'," \
	"'quic_server_id':'0a02'}]}"
#define S_PLAIN "{'name':'plain','vips':['198.18.100.4:80'],'backends':[{'address':" \
	"'198.18.2.6:80'}],'idle_timeout_ms':5000,'retries':2}"
/* Warned of while parsed: never copied, so that a reload repeats its warning. */
#define S_WARNED "{'name':'warned','vips':['198.18.100.5:80'],'backends':[{'address':" \
	"'198.18.2.7:80'}],'fastopen_wait_ms':5}"
/* Warned of by the checks across services, which every reload runs. */
#define S_ZERO "{'name':'zero','vips':['198.18.100.6:80'],'backends':[{'address':" \
	"'198.18.2.8:80','weight':0}]}"
#define S_NEW "{'name':'new','vips':['198.18.100.7:80'],'backends':[{'address':'198.18.2.9:80'}]}"

#define BASE "{'services':[" S_WEB "," S_API "," S_H3 "," S_PLAIN "," S_WARNED "," S_ZERO "]}"

static const struct {
	const char *name;
	const char *text;
	size_t copied;			/* from a running config read from BASE */
} edits[] = {
	{ "the same text", BASE, 5 },
	{ "a VIP added to one service", "{'services':[" "{'name':'web','vips':['198.18.100.1:80',"
	  "'198.18.128.0/20:443','198.18.100.2:8000-8999','198.18.100.9:80'],'scheduler':'maglev',"
	  "'backends':[{'address':'198.18.2.2:80','weight':3,'max_conns':100},{'address':"
	  "'198.18.2.3:80'}],'health':{'type':'http','path':'/hc','host':'example.test',"
	  "'interval_ms':1000}}," S_API "," S_H3 "," S_PLAIN "," S_WARNED "," S_ZERO "]}", 4 },
	{ "a service inserted", "{'services':[" S_WEB "," S_API "," S_NEW "," S_H3 "," S_PLAIN ","
	  S_WARNED "," S_ZERO "]}", 5 },
	{ "a service removed", "{'services':[" S_WEB "," S_H3 "," S_PLAIN "," S_WARNED "," S_ZERO
	  "]}", 4 },
	{ "two services swapped", "{'services':[" S_PLAIN "," S_API "," S_H3 "," S_WEB ","
	  S_WARNED "," S_ZERO "]}", 5 },
	{ "services reversed", "{'services':[" S_ZERO "," S_WARNED "," S_PLAIN "," S_H3 "," S_API
	  "," S_WEB "]}", 5 },
	{ "white space inside a service", "{'services':[" S_WEB "," S_API ",  " S_H3 "  ,"
	  "{ 'name':'plain','vips':['198.18.100.4:80'],'backends':[{'address':'198.18.2.6:80'}],"
	  "'idle_timeout_ms':5000,'retries':2}," S_WARNED "," S_ZERO "]}", 4 },
	{ "settings outside the services", "{'workers':3,'drain_timeout_ms':500,'services':["
	  S_WEB "," S_API "," S_H3 "," S_PLAIN "," S_WARNED "," S_ZERO "],'log_level':'debug'}", 5 },
	{ "no service left", "{'services':[]}", 0 },
	/* Errors that involve a copied service: read again whole, they must read the same. */
	{ "a name taken twice", "{'services':[" S_WEB "," S_API "," S_H3 "," S_PLAIN "," S_WARNED
	  "," S_ZERO ",{'name':'api','vips':['198.18.100.7:80'],'backends':[{'address':"
	  "'198.18.2.9:80'}]}]}", 0 },
	{ "the new name of a copied service", "{'services':[{'name':'plain','vips':"
	  "['198.18.100.7:80'],'backends':[{'address':'198.18.2.9:80'}]}," S_WEB "," S_API ","
	  S_H3 "," S_PLAIN "]}", 0 },
	{ "a VIP of a copied service", "{'services':[" S_WEB "," S_API "," S_H3 "," S_PLAIN ","
	  S_WARNED "," S_ZERO ",{'name':'new','vips':['198.18.100.4:80'],'backends':[{'address':"
	  "'198.18.2.9:80'}]}]}", 0 },
	{ "a VIP inside a copied service's prefix", "{'services':[{'name':'new','vips':"
	  "['198.18.130.1:443'],'backends':[{'address':'198.18.2.9:80'}]}," S_WEB "," S_API ","
	  S_H3 "," S_PLAIN "]}", 0 },
	{ "a backend that is a copied service's VIP", "{'services':[" S_WEB "," S_API "," S_H3
	  "," S_PLAIN ",{'name':'new','vips':['198.18.100.7:80'],'backends':[{'address':"
	  "'198.18.100.4:80'}]}]}", 0 },
	{ "a service that is not an object", "{'services':[" S_WEB ",5," S_PLAIN ",null]}", 0 },
	{ "a syntax error", "{'services':[" S_WEB "," S_API ",]}", 0 },
	{ "services not an array", "{'services':{'web':" S_WEB "}}", 0 },
	{ "a key twice around the services", "{'workers':1,'services':[" S_WEB "],'workers':2}", 0 },
	{ "services twice", "{'services':[" S_WEB "],'services':[" S_PLAIN "]}", 0 },
	{ "a nested services key", "{'ownership':{'services':[" S_WEB "]},'services':[" S_WEB
	  "]}", 0 },
};

/* text with ' for ", written to a new file at path. */
static void write_q(char *path, const char *text)
{
	size_t len = strlen(text);
	char *s = strdup(text);
	FILE *f;
	int fd;

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\'')
			s[i] = '"';
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(s, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	free(s);
}

/* a and b share no memory: a is a copy. */
static void not_shared(const struct lb_service_conf *a, const struct lb_service_conf *b)
{
	ck_assert(!a->name || a->name != b->name);
	ck_assert(!a->vips || a->vips != b->vips);
	ck_assert(!a->backends || a->backends != b->backends);
	ck_assert(!a->health.path || a->health.path != b->health.path);
	ck_assert(!a->clients.allow || a->clients.allow != b->clients.allow);
	ck_assert(!a->quic.by_server_id || a->quic.by_server_id != b->quic.by_server_id);
}

static void config_eq(const struct lb_config *a, const struct lb_config *b, const char *name)
{
	const char *d = lb_test_config_diff(a, b);

	ck_assert_msg(!d, "%s: %s differ", name, d);
}

/*
 * Reloads text over running (freed here, before the result is looked at:
 * a copy that kept a pointer into it would fail under ASan or valgrind)
 * and compares the result with a whole read of the same file. Returns the
 * reload's config (NULL when the text is invalid, with the same message).
 */
static struct lb_config *reload_check(struct lb_config *running, const char *text,
				      size_t copied, const char *name)
{
	char path[] = "/tmp/check_config_reload.XXXXXX", msg_a[4096], msg_b[4096];
	struct lb_config *a, *b;

	write_q(path, text);
	msg_a[0] = msg_b[0] = '\0';
	a = lb_config_reload_log(path, running, "test: ", msg_a, sizeof(msg_a));
	lb_config_free(running);
	b = lb_config_load_log(path, "test: ", msg_b, sizeof(msg_b));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_msg(!a == !b, "%s: the reload %s, a whole read %s", name,
		      a ? "succeeded" : "failed", b ? "succeeded" : "failed");
	if (!a) {
		/* The messages name the file, whose name is the same. */
		ck_assert_str_eq(msg_a, msg_b);
		return NULL;
	}
	ck_assert_msg(lb_config_copied(a) == copied, "%s: %zu services copied, expected %zu", name,
		      lb_config_copied(a), copied);
	ck_assert_uint_eq(lb_config_copied(b), 0);
	config_eq(a, b, name);
	lb_config_free(b);
	return a;
}

static struct lb_config *load_q(const char *text)
{
	char path[] = "/tmp/check_config_reload.XXXXXX", msg[4096];
	struct lb_config *cfg;

	write_q(path, text);
	cfg = lb_config_load_log(path, "test: ", msg, sizeof(msg));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_msg(cfg != NULL, "%s", msg);
	return cfg;
}

/* The text of the edit named name. */
static const char *edit(const char *name)
{
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++)
		if (!strcmp(edits[i].name, name))
			return edits[i].text;
	ck_abort_msg("no edit named %s", name);
	return NULL;
}

/* How many of BASE's services that a reload may copy are in text, unchanged. */
static size_t base_services_in(const char *text)
{
	static const char *const clean[] = { S_WEB, S_API, S_H3, S_PLAIN, S_ZERO };
	size_t n = 0;

	for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++)
		n += strstr(text, clean[i]) != NULL;
	return n;
}

START_TEST(test_edit)
{
	struct lb_config *cfg = reload_check(load_q(BASE), edits[_i].text, edits[_i].copied,
					     edits[_i].name);

	if (!cfg)
		return;
	/* And back: the reloaded config's record of its own text is right too. */
	cfg = reload_check(cfg, BASE, base_services_in(edits[_i].text), "back to the base");
	lb_config_free(cfg);
}
END_TEST

/*
 * A chain of reloads, each over the last one's result: copies of copies,
 * and services parsed at one reload and copied at the next.
 */
START_TEST(test_chain)
{
	struct lb_config *cfg = load_q(BASE);

	cfg = reload_check(cfg, edit("a VIP added to one service"), 4, "one VIP added");
	ck_assert_ptr_nonnull(cfg);
	cfg = reload_check(cfg, edit("a VIP added to one service"), 5, "the same again");
	ck_assert_ptr_nonnull(cfg);
	cfg = reload_check(cfg, edit("a service inserted"), 4, "a service inserted, the VIP gone");
	ck_assert_ptr_nonnull(cfg);
	/* An invalid text in between changes nothing: the caller keeps its config. */
	{
		char path[] = "/tmp/check_config_reload.XXXXXX", msg[4096];

		write_q(path, edit("a syntax error"));
		ck_assert_ptr_null(lb_config_reload_log(path, cfg, "test: ", msg, sizeof(msg)));
		ck_assert_int_eq(unlink(path), 0);
	}
	cfg = reload_check(cfg, BASE, 5, "back to the base");
	ck_assert_ptr_nonnull(cfg);
	lb_config_free(cfg);
}
END_TEST

/* Without a running config, or one read without its text, everything is parsed. */
START_TEST(test_no_source)
{
	char path[] = "/tmp/check_config_reload.XXXXXX", msg[4096], *errors = NULL;
	struct lb_config *plain, *cfg;

	write_q(path, BASE);
	plain = lb_config_load(path, &errors);
	ck_assert_ptr_nonnull(plain);
	ck_assert_ptr_null(plain->source);
	cfg = lb_config_reload_log(path, plain, "test: ", msg, sizeof(msg));
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(lb_config_copied(cfg), 0);
	lb_config_free(cfg);
	cfg = lb_config_reload_log(path, NULL, "test: ", msg, sizeof(msg));
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(lb_config_copied(cfg), 0);
	lb_config_free(cfg);
	/* lb starts with lb_config_load_source(): its first reload copies. */
	cfg = lb_config_load_source(path, &errors);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_nonnull(cfg->source);
	ck_assert_ptr_null(cfg->tree);
	config_eq(cfg, plain, "lb_config_load_source");
	lb_config_free(plain);
	ck_assert_int_eq(unlink(path), 0);
	cfg = reload_check(cfg, BASE, 5, "the first reload");
	/* Dropped (the master drops a config's once it is not the running one): nothing to copy. */
	lb_config_drop_source(cfg);
	ck_assert_ptr_null(cfg->source);
	lb_config_drop_source(cfg);
	lb_config_drop_source(NULL);
	cfg = reload_check(cfg, BASE, 0, "a reload over a dropped source");
	lb_config_free(cfg);
}
END_TEST

/* A copy of each service is equal to it, owns its memory, and frees cleanly. */
START_TEST(test_service_copy)
{
	struct lb_config *cfg = load_q(BASE);
	struct lb_service_conf copy;

	for (size_t i = 0; i < cfg->n_services; i++) {
		ck_assert(lb_config_service_copy(&copy, &cfg->services[i]));
		ck_assert_ptr_null(lb_test_service_diff(&copy, &cfg->services[i]));
		not_shared(&copy, &cfg->services[i]);
		lb_config_service_free(&copy);
	}
	/* The parts each service was chosen for. */
	ck_assert_ptr_nonnull(cfg->services[0].health.host);
	ck_assert_ptr_nonnull(cfg->services[1].clients.deny);
	ck_assert_uint_eq(cfg->services[2].quic.n_server_ids, 2);
	ck_assert_ptr_nonnull(cfg->warnings);
	lb_config_free(cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_reload");
	TCase *tc = lb_test_case(s, "config_reload", NULL, NULL,
				 LB_TESTS(test_chain, test_no_source, test_service_copy));

	tcase_add_loop_test(tc, test_edit, 0, sizeof(edits) / sizeof(edits[0]));
	return lb_test_run(s);
}
