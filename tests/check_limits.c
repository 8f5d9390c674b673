// SPDX-License-Identifier: GPL-2.0-or-later
/* lb/limits.c against a fake /proc/sys tree in a temporary directory. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lb/config.h"
#include "lb/limits.h"
#include "tests/unit.h"

static char root[64];

static void put(const char *name, const char *value)
{
	char path[256], dir[256], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	snprintf(dir, sizeof(dir), "%s", path);
	for (slash = dir + strlen(root) + 1; (slash = strchr(slash, '/')); slash++) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", value);
	fclose(f);
}

/* The defaults of a Debian 12 host with 24 GiB. */
static void tree_default(void)
{
	put("fs/file-max", "2466170");
	put("fs/nr_open", "1048576");
	put("net/core/somaxconn", "4096");
	put("net/ipv4/tcp_max_syn_backlog", "4096");
	put("net/ipv4/tcp_mem", "287898\t383867\t575796");
	put("net/ipv4/ip_local_port_range", "32768\t60999");
}

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/check_limits.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	tree_default();
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

static struct lb_config *config(const char *backends)
{
	char text[2048], *errors = NULL;
	struct lb_config *cfg;

	snprintf(text, sizeof(text),
		 "{\"workers\": 17, \"services\": [{\"name\": \"web\", "
		 "\"vips\": [\"198.18.100.1:80\"], \"backends\": [%s]}]}", backends);
	cfg = lb_config_parse(text, &errors);
	if (!cfg)
		ck_abort_msg("config: %s", errors);
	return cfg;
}

#define TWO_BACKENDS "{\"address\": \"198.18.2.2:80\"}, {\"address\": \"198.18.2.3:80\"}"

/* What lb_capacity_compute() gives for an open-file limit of 20,000. */
static const struct lb_capacity cap20k = { .nofile = 20000, .conns = 9840, .pipes = 128 };

static bool has_warning(const struct lb_limits *l, const char *needle)
{
	for (size_t i = 0; i < l->n_warnings; i++)
		if (strstr(l->warnings[i], needle))
			return true;
	return false;
}

START_TEST(test_defaults)
{
	struct lb_config *cfg = config(TWO_BACKENDS);
	struct lb_limits l;

	ck_assert_int_eq(lb_limits_collect(&l, cfg, 0, &cap20k, root), 0);
	ck_assert_uint_eq(l.workers, 17);
	ck_assert_uint_eq(l.nofile, 20000);
	ck_assert_uint_eq(l.per_worker, 9840);
	ck_assert_uint_eq(l.total, 167280);
	ck_assert_uint_eq(l.fds, 340000);
	ck_assert_int_eq(l.file_max, 2466170);
	ck_assert_int_eq(l.nr_open, 1048576);
	ck_assert_int_eq(l.somaxconn, 4096);
	ck_assert_int_eq(l.syn_backlog, 4096);
	ck_assert_int_eq(l.tcp_mem[0], 287898);
	ck_assert_int_eq(l.tcp_mem[2], 575796);
	ck_assert_int_eq(l.port_lo, 32768);
	ck_assert_int_eq(l.port_hi, 60999);
	ck_assert_uint_eq(l.ports, 28232);
	ck_assert_uint_eq(l.n_services, 1);
	ck_assert_str_eq(l.services[0].name, "web");
	ck_assert_uint_eq(l.services[0].n_backends, 2);
	ck_assert_uint_eq(l.services[0].max_conns, 0);
	ck_assert_uint_eq(l.services[0].limit, 167280);
	ck_assert_uint_eq(l.services[0].nontransparent, 2 * 28232);
	ck_assert_int_eq(l.bound, LB_LIMITS_BOUND_NOFILE);
	ck_assert_uint_eq(l.bound_conns, 167280);
	/* 4096 queued connections per worker is less than the 9840 it holds. */
	ck_assert_uint_eq(l.n_warnings, 2);
	ck_assert(has_warning(&l, "net.core.somaxconn 4096 is below a worker's capacity 9840"));
	ck_assert(has_warning(&l, "net.ipv4.tcp_max_syn_backlog 4096"));
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_tuned_no_warnings)
{
	struct lb_config *cfg = config(TWO_BACKENDS);
	struct lb_limits l;

	put("net/core/somaxconn", "65535");
	put("net/ipv4/tcp_max_syn_backlog", "65535");
	put("net/ipv4/ip_local_port_range", "1024 65535");
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 18, &cap20k, root), 0);
	ck_assert_uint_eq(l.workers, 18);
	ck_assert_uint_eq(l.total, 177120);
	ck_assert_uint_eq(l.ports, 64512);
	ck_assert_uint_eq(l.services[0].nontransparent, 129024);
	ck_assert_uint_eq(l.n_warnings, 0);
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_file_max_binds)
{
	struct lb_config *cfg = config(TWO_BACKENDS);
	struct lb_limits l;

	put("fs/file-max", "200000");
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	ck_assert_int_eq(l.bound, LB_LIMITS_BOUND_FILE_MAX);
	ck_assert_uint_eq(l.bound_conns, 100000);
	ck_assert_str_eq(lb_limits_bound_name(l.bound), "fs.file-max");
	ck_assert(has_warning(&l, "fs.file-max 200000 is below the 340000 file descriptors"));
	ck_assert(has_warning(&l, "at 100000 connections"));
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_max_conns_above_capacity)
{
	struct lb_config *cfg = config("{\"address\": \"198.18.2.2:80\", \"max_conns\": 100000}, "
				       "{\"address\": \"198.18.2.3:80\", \"max_conns\": 100000}");
	struct lb_limits l;

	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	ck_assert_uint_eq(l.services[0].max_conns, 200000);
	ck_assert_uint_eq(l.max_conns, 200000);
	ck_assert_uint_eq(l.services[0].limit, 167280);
	ck_assert_int_eq(l.bound, LB_LIMITS_BOUND_NOFILE);
	ck_assert(has_warning(&l, "service web: its backends' max_conns add up to 200000, more "
			      "than the 167280 connections 17 workers of 9840 can hold"));
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_max_conns_binds)
{
	struct lb_config *cfg = config("{\"address\": \"198.18.2.2:80\", \"max_conns\": 1000}, "
				       "{\"address\": \"198.18.2.3:80\", \"max_conns\": 2000}");
	struct lb_limits l;

	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	ck_assert_uint_eq(l.services[0].limit, 3000);
	ck_assert_int_eq(l.bound, LB_LIMITS_BOUND_MAX_CONNS);
	ck_assert_uint_eq(l.bound_conns, 3000);
	ck_assert(!has_warning(&l, "max_conns"));
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_one_unlimited_backend)
{
	struct lb_config *cfg = config("{\"address\": \"198.18.2.2:80\", \"max_conns\": 1000}, "
				       "{\"address\": \"198.18.2.3:80\"}");
	struct lb_limits l;

	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	ck_assert_uint_eq(l.services[0].max_conns, 0);
	ck_assert_uint_eq(l.max_conns, 0);
	ck_assert_uint_eq(l.services[0].limit, 167280);
	ck_assert_int_eq(l.bound, LB_LIMITS_BOUND_NOFILE);
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_small_worker)
{
	const struct lb_capacity cap800 = { .nofile = 800, .conns = 240, .pipes = 128 };
	struct lb_config *cfg = config(TWO_BACKENDS);
	struct lb_limits l;

	ck_assert_int_eq(lb_limits_collect(&l, cfg, 2, &cap800, root), 0);
	ck_assert_uint_eq(l.total, 480);
	ck_assert(has_warning(&l, "the open-file limit 800 leaves 240 connections per worker"));
	/* 4096 is plenty for 240 per worker. */
	ck_assert(!has_warning(&l, "somaxconn"));
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_tcp_mem_small)
{
	struct lb_config *cfg = config(TWO_BACKENDS);
	struct lb_limits l;

	put("net/ipv4/tcp_mem", "10000 20000 30000");
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	ck_assert(has_warning(&l, "net.ipv4.tcp_mem allows 30000 pages"));
	ck_assert(has_warning(&l, "334560 sockets"));
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_unreadable_tree)
{
	struct lb_config *cfg = config(TWO_BACKENDS);
	char missing[128];
	struct lb_limits l;
	json_t *j;

	put("net/ipv4/ip_local_port_range", "garbage");
	snprintf(missing, sizeof(missing), "%s/none", root);
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, missing), 0);
	ck_assert_int_eq(l.file_max, LB_LIMITS_UNKNOWN);
	ck_assert_int_eq(l.somaxconn, LB_LIMITS_UNKNOWN);
	ck_assert_int_eq(l.tcp_mem[0], LB_LIMITS_UNKNOWN);
	ck_assert_uint_eq(l.ports, 0);
	ck_assert_uint_eq(l.services[0].nontransparent, 0);
	ck_assert_int_eq(l.bound, LB_LIMITS_BOUND_NOFILE);
	ck_assert_uint_eq(l.n_warnings, 0);
	j = lb_limits_json(&l);
	ck_assert_ptr_nonnull(j);
	ck_assert(json_is_null(json_object_get(json_object_get(j, "sysctl"), "fs.file-max")));
	ck_assert(json_is_null(json_object_get(json_object_get(j, "sysctl"), "net.ipv4.tcp_mem")));
	json_decref(j);
	lb_limits_fini(&l);

	/* A malformed file is as good as a missing one. */
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	ck_assert_uint_eq(l.ports, 0);
	ck_assert_int_eq(l.port_lo, LB_LIMITS_UNKNOWN);
	lb_limits_fini(&l);

	/* So is a negative value, and what follows it. */
	put("fs/file-max", "-5");
	put("net/ipv4/tcp_mem", "287898\t-1\t575796");
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	ck_assert_int_eq(l.file_max, LB_LIMITS_UNKNOWN);
	ck_assert_int_eq(l.tcp_mem[0], LB_LIMITS_UNKNOWN);
	ck_assert_int_eq(l.tcp_mem[2], LB_LIMITS_UNKNOWN);
	ck_assert_int_eq(l.somaxconn, 4096);
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

static struct lb_config *config_top(const char *top, const char *backends)
{
	char text[2048], *errors = NULL;
	struct lb_config *cfg;

	snprintf(text, sizeof(text),
		 "{%s, \"services\": [{\"name\": \"web\", "
		 "\"vips\": [\"198.18.100.1:80\"], \"backends\": [%s]}]}", top, backends);
	cfg = lb_config_parse(text, &errors);
	if (!cfg)
		ck_abort_msg("config: %s", errors);
	return cfg;
}

/* "auto": the connections wanted plus 10 %, over what one worker holds. */
START_TEST(test_workers_auto)
{
	struct lb_config *cfg = config_top("\"workers\": \"auto\", \"connections\": 1000000",
					   TWO_BACKENDS);
	struct lb_limits l;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_uint_eq(lb_limits_workers(cfg, &cap20k), 112);
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 0, &cap20k, root), 0);
	ck_assert_int_eq(l.plan.how, LB_WORKERS_AUTO);
	ck_assert_uint_eq(l.plan.wanted, 1000000);
	ck_assert_str_eq(l.plan.wanted_from, "connections");
	ck_assert_uint_eq(l.plan.sized_for, 1100000);
	ck_assert_uint_eq(l.plan.per_worker, 9840);
	ck_assert_uint_eq(l.plan.needed, 112);
	ck_assert(!l.plan.capped);
	ck_assert_uint_eq(l.workers, 112);
	ck_assert_uint_eq(l.total, 112 * 9840);
	ck_assert(!has_warning(&l, "\"connections\""));
	f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	lb_limits_print(&l, f);
	fclose(f);
	ck_assert_msg(strstr(text, "# workers: 112, \"auto\": 1000000 connections wanted "
			     "(\"connections\") + 10 % for the kernel's uneven spread = 1100000, at "
			     "9840 per worker (open-file limit 20000): 112 needed\n"), "%s", text);
	free(text);
	lb_limits_fini(&l);

	/* ctl passes the running count: the plan still says what the config asks for. */
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 100, &cap20k, root), 0);
	ck_assert_uint_eq(l.workers, 100);
	ck_assert_uint_eq(l.plan.workers, 112);
	ck_assert(has_warning(&l, "\"connections\" 1000000 is more than the 984000 connections "
			      "100 workers of 9840 can hold: set \"workers\" to 112"));
	lb_limits_fini(&l);
	lb_config_free(cfg);

	/* A larger open-file limit needs fewer. */
	cfg = config_top("\"workers\": \"auto\", \"connections\": 1000000", TWO_BACKENDS);
	{
		const struct lb_capacity big = { .nofile = 1048576, .conns = 524128, .pipes = 128 };

		ck_assert_uint_eq(lb_limits_workers(cfg, &big), 3);
	}
	lb_config_free(cfg);
}
END_TEST

/* Never fewer than the CPUs, never more than 256; without a target, max_conns is one. */
START_TEST(test_workers_auto_bounds)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct lb_config *cfg = config_top("\"workers\": \"auto\", \"connections\": 10", TWO_BACKENDS);
	struct lb_limits l;

	ck_assert_uint_eq(lb_limits_workers(cfg, &cap20k), (unsigned int)cpus);
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 0, &cap20k, root), 0);
	ck_assert_int_eq(l.plan.how, cpus > 1 ? LB_WORKERS_AUTO_CPUS : LB_WORKERS_AUTO);
	ck_assert_uint_eq(l.plan.needed, 1);
	lb_limits_fini(&l);
	lb_config_free(cfg);

	cfg = config_top("\"workers\": \"auto\", \"connections\": 3000000", TWO_BACKENDS);
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 0, &cap20k, root), 0);
	ck_assert_uint_eq(l.plan.needed, 336);
	ck_assert(l.plan.capped);
	ck_assert_uint_eq(l.workers, 256);
	ck_assert(has_warning(&l, "need 336 workers of 9840 (open-file limit 20000), more than 256: "
			      "capped at 256, which hold 2519040; raise the open-file limit"));
	lb_limits_fini(&l);
	lb_config_free(cfg);

	/* No "connections": every backend bounded, so their sum is the target. */
	cfg = config_top("\"workers\": \"auto\"",
			 "{\"address\": \"198.18.2.2:80\", \"max_conns\": 100000}, "
			 "{\"address\": \"198.18.2.3:80\", \"max_conns\": 50000}");
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 0, &cap20k, root), 0);
	ck_assert_str_eq(l.plan.wanted_from, "max_conns");
	ck_assert_uint_eq(l.plan.wanted, 150000);
	ck_assert_uint_eq(l.plan.needed, 17);
	ck_assert_uint_eq(l.workers, 17 > cpus ? 17 : (unsigned int)cpus);
	lb_limits_fini(&l);
	lb_config_free(cfg);

	/* Nothing to size for: one per CPU. */
	cfg = config_top("\"workers\": \"auto\"", TWO_BACKENDS);
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 0, &cap20k, root), 0);
	ck_assert_int_eq(l.plan.how, LB_WORKERS_AUTO_CPUS);
	ck_assert_uint_eq(l.plan.wanted, 0);
	ck_assert_ptr_null(l.plan.wanted_from);
	ck_assert_uint_eq(l.workers, (unsigned int)cpus);
	lb_limits_fini(&l);
	lb_config_free(cfg);

	/* A fixed count is kept, and warned about when it falls short of the target. */
	cfg = config_top("\"workers\": 4, \"connections\": 50000", TWO_BACKENDS);
	ck_assert_int_eq(lb_limits_collect(&l, cfg, 0, &cap20k, root), 0);
	ck_assert_int_eq(l.plan.how, LB_WORKERS_SET);
	ck_assert_uint_eq(l.workers, 4);
	ck_assert(has_warning(&l, "\"connections\" 50000 is more than the 39360 connections 4 "
			      "workers of 9840 can hold: set \"workers\" to 6 (10 % headroom) or to "
			      "\"auto\""));
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_json)
{
	struct lb_config *cfg = config(TWO_BACKENDS);
	struct lb_limits l;
	json_t *j, *s;

	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	j = lb_limits_json(&l);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "workers")), 17);
	s = json_object_get(j, "workers_plan");
	ck_assert_str_eq(json_string_value(json_object_get(s, "how")), "set");
	ck_assert(json_is_null(json_object_get(s, "wanted")));
	ck_assert_str_eq(json_string_value(json_object_get(s, "text")), "17, as \"workers\" says");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), 167280);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "fds")), 340000);
	s = json_object_get(j, "per_worker");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "nofile")), 20000);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "connections")), 9840);
	s = json_object_get(j, "sysctl");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "net.core.somaxconn")), 4096);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(s,
		"net.ipv4.ip_local_port_range"), 1)), 60999);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(s,
		"net.ipv4.tcp_mem"), 2)), 575796);
	s = json_array_get(json_object_get(j, "services"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(s, "name")), "web");
	ck_assert(json_is_null(json_object_get(s, "max_conns")));
	ck_assert_int_eq(json_integer_value(json_object_get(s, "nontransparent_limit")), 56464);
	s = json_object_get(j, "binding");
	ck_assert_str_eq(json_string_value(json_object_get(s, "limit")), "open-file limit");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "connections")), 167280);
	ck_assert_int_eq(json_array_size(json_object_get(j, "warnings")), 2);
	json_decref(j);
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_print)
{
	struct lb_config *cfg = config(TWO_BACKENDS);
	struct lb_limits l;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(lb_limits_collect(&l, cfg, 17, &cap20k, root), 0);
	f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	lb_limits_print(&l, f);
	fclose(f);
	ck_assert_msg(strstr(text, "# capacity: 9840 connections per worker (open-file limit "
			     "20000), 17 workers: 167280 connections\n"), "%s", text);
	ck_assert_msg(strstr(text, "2 x 28232 = 56464"), "%s", text);
	ck_assert_msg(strstr(text, "binding limit: open-file limit, 167280 connections"), "%s", text);
	ck_assert_msg(strstr(text, "# warning: net.core.somaxconn 4096"), "%s", text);
	/* Every line is a comment, so lb -t output stays a script. */
	for (char *line = text; *line; line = strchr(line, '\n') + 1)
		ck_assert_msg(line[0] == '#', "not a comment: %s", line);
	free(text);
	lb_limits_fini(&l);
	lb_config_free(cfg);
}
END_TEST

int main(void)
{
	return lb_test_main("limits", setup, teardown, 0,
			    LB_TESTS(test_defaults, test_tuned_no_warnings, test_file_max_binds,
				     test_max_conns_above_capacity, test_max_conns_binds,
				     test_one_unlimited_backend, test_small_worker,
				     test_tcp_mem_small, test_unreadable_tree, test_workers_auto,
				     test_workers_auto_bounds, test_json, test_print));
}
