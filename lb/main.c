// SPDX-License-Identifier: GPL-2.0-or-later
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/announce.h"
#include "lb/config.h"
#include "lb/limits.h"
#include "lb/master.h"
#include "lb/preflight.h"
#include "lb/rules.h"

#define DEFAULT_CONFIG LB_SYSCONFDIR "/lb/lb.json"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: lb [-c FILE] [-t]\n"
		"Transparent TCP load balancer: intercepts VIPs with nftables TPROXY and\n"
		"connects to backends from the client's own address.\n"
		"\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -t, --test         validate the configuration, print the ruleset, exit\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n", DEFAULT_CONFIG);
}

/* Prints each line of text as "lb: PATH: [tag]line"; tag is "" or "warning: ". */
static void print_lines(const char *path, const char *tag, const char *text)
{
	const char *line = text;

	while (*line) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		/* Read errors already start with the file name. */
		if (!strncmp(line, path, strlen(path)) && line[strlen(path)] == ':')
			fprintf(stderr, "lb: %s%.*s\n", tag, len, line);
		else
			fprintf(stderr, "lb: %s: %s%.*s\n", path, tag, len, line);
		line += len + (nl ? 1 : 0);
	}
}

/*
 * The config's own warnings and the checks against this host, as lb
 * itself would run them at start. Returns 0, or 1 when the config cannot
 * work on this host.
 */
static int test_host(const char *path, const struct lb_config *cfg)
{
	struct lb_preflight_report r;
	int rc = 0;

	if (cfg->warnings)
		print_lines(path, "warning: ", cfg->warnings);
	if (lb_preflight_config(&r, cfg) < 0) {
		fprintf(stderr, "lb: out of memory\n");
		rc = 1;
	}
	for (size_t i = 0; i < r.n_warnings; i++)
		print_lines(path, "warning: ", r.warnings[i]);
	for (size_t i = 0; i < r.n_errors; i++)
		print_lines(path, "", r.errors[i]);
	if (r.n_errors)
		rc = 1;
	lb_preflight_report_fini(&r);
	return rc;
}

/* lb -t: what would be installed, in the syntax operators already read. */
static int test_config(const char *path, const struct lb_config *cfg)
{
	struct lb_capacity cap;
	struct lb_limits limits;

	if (test_host(path, cfg))
		return 1;
	if (lb_rules_print(cfg, stdout) < 0 || lb_announce_print(cfg, stdout) < 0) {
		fprintf(stderr, "lb: out of memory\n");
		return 1;
	}
	lb_capacity_compute(&cap);
	printf("\n");
	if (lb_limits_collect(&limits, cfg, 0, &cap, NULL) < 0) {
		lb_limits_fini(&limits);
		fprintf(stderr, "lb: out of memory\n");
		return 1;
	}
	lb_limits_print(&limits, stdout);
	lb_limits_fini(&limits);
	fprintf(stderr, "lb: %s: configuration ok\n", path);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG;
	struct lb_config *cfg;
	char *errors = NULL;
	int test = 0, c, rc;

	while ((c = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("lb %s\n", LB_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lb: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
#ifdef M_MXFAST
	/*
	 * No fastbins: a config's parse tree is hundreds of thousands of
	 * small blocks, and freeing it into fastbins makes glibc consolidate
	 * them all at the next large free (30 ms of a 100,000-VIP reload).
	 * Freed at once, they coalesce as they go; tcache still serves the
	 * small allocations that repeat.
	 */
	mallopt(M_MXFAST, 0);
#endif
	/* lb keeps the text it starts with: its first reload compares with it. */
	cfg = test ? lb_config_load(path, &errors) : lb_config_load_source(path, &errors);
	if (!cfg) {
		print_lines(path, "", errors ? errors : "invalid configuration\n");
		free(errors);
		return 1;
	}
	if (test) {
		rc = test_config(path, cfg);
		lb_config_free(cfg);
		return rc;
	}
	return lb_master_run(path, cfg);
}
