// SPDX-License-Identifier: GPL-2.0-or-later
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/config.h"
#include "lb/limits.h"
#include "lb/master.h"
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

static void print_errors(const char *path, const char *errors)
{
	const char *line = errors;

	while (*line) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		/* Read errors already start with the file name. */
		if (!strncmp(line, path, strlen(path)) && line[strlen(path)] == ':')
			fprintf(stderr, "lb: %.*s\n", len, line);
		else
			fprintf(stderr, "lb: %s: %.*s\n", path, len, line);
		line += len + (nl ? 1 : 0);
	}
}

/* lb -t: what would be installed, in the syntax operators already read. */
static int test_config(const char *path, const struct lb_config *cfg)
{
	struct lb_capacity cap;
	struct lb_limits limits;

	if (lb_rules_print(cfg, stdout) < 0) {
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
	cfg = lb_config_load(path, &errors);
	if (!cfg) {
		print_errors(path, errors ? errors : "invalid configuration\n");
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
