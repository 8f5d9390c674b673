// SPDX-License-Identifier: GPL-2.0-or-later
/* The client modes' command line; see peer.h. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"

const struct addr *sources_pick(const struct sources *s, unsigned int i)
{
	return s->n ? &s->a[i % s->n] : NULL;
}

static void source_add(struct sources *s, const char *arg)
{
	if (s->n == s->max && s->max > 1)
		die("-b: at most %u source addresses", s->max);
	if (s->n == s->max)
		s->n--;
	if (addr_parse_ip(&s->a[s->n], arg, 0) < 0)
		die("-b: bad address '%s'", arg);
	s->given[s->n++] = arg;
}

static void arg_take(const struct arg *a, const char *arg)
{
	uint64_t v = 0;

	switch (a->kind) {
	case ARG_FLAG:
		*(bool *)a->to = true;
		break;
	case ARG_CHOICE:
		*(int *)a->to = (int)a->limit;
		break;
	case ARG_COUNT:
	case ARG_MS:
		if (size_parse(arg, &v) < 0 || v == 0 || v > a->limit)
			die("-%c: want 1..%" PRIu64 "%s, got '%s'", a->opt, a->limit,
			    a->kind == ARG_MS ? " ms" : "", arg);
		if (a->kind == ARG_MS)
			*(double *)a->to = (double)v / 1000;
		else
			*(unsigned int *)a->to = (unsigned int)v;
		break;
	case ARG_SECONDS:
		*(double *)a->to = strtod(arg, NULL);
		if (*(double *)a->to <= 0)
			die("-%c: bad %s '%s'", a->opt, a->what, arg);
		break;
	case ARG_SIZE:
		if (size_parse(arg, &v) < 0 || v < a->limit)
			die("-%c: bad %s '%s'", a->opt, a->what, arg);
		*(uint64_t *)a->to = v;
		break;
	case ARG_SOURCE:
		source_add(a->to, arg);
		break;
	}
	if (a->seen)
		*a->seen = true;
}

void args_parse(int argc, char **argv, const struct arg *args, struct addr *dst)
{
	char optstring[64] = "";
	size_t len = 0;
	int opt;

	for (const struct arg *a = args; a->opt; a++) {
		optstring[len++] = a->opt;
		if (a->kind != ARG_FLAG && a->kind != ARG_CHOICE)
			optstring[len++] = ':';
	}
	while ((opt = getopt(argc, argv, optstring)) != -1) {
		const struct arg *a = args;

		while (a->opt && a->opt != opt)
			a++;
		if (!a->opt)
			usage();
		arg_take(a, optarg);
	}
	if (optind != argc - 1)
		usage();
	if (addr_parse(dst, argv[optind]) < 0)
		die("bad address '%s' (want 198.18.0.1:80 or [2001:db8::1]:80)", argv[optind]);
	for (const struct arg *a = args; a->opt; a++) {
		const struct sources *s = a->to;

		for (unsigned int i = 0; a->kind == ARG_SOURCE && i < s->n; i++)
			if (s->a[i].ss.ss_family != dst->ss.ss_family)
				die("-b %s and %s are different address families", s->given[i],
				    argv[optind]);
	}
}
