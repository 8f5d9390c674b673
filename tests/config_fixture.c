// SPDX-License-Identifier: GPL-2.0-or-later
/* What the config tests share: parsing JSON written with single quotes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tests/config_fixture.h"

struct lb_config *parse_q(const char *text, char **errors)
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

struct lb_config *parse_ok(const char *text)
{
	struct lb_config *cfg;
	char *errors = (char *)"unset";

	cfg = parse_q(text, &errors);
	if (!cfg)
		ck_abort_msg("unexpected errors:\n%s", errors);
	ck_assert_ptr_null(errors);
	return cfg;
}

void parse_fails(const char *text, const char *expected)
{
	struct lb_config *cfg;
	char *errors = NULL;

	cfg = parse_q(text, &errors);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(errors);
	ck_assert_str_eq(errors, expected);
	free(errors);
}

void parse_warns(const char *text, const char *expected)
{
	struct lb_config *cfg = parse_ok(text);

	if (!expected)
		ck_assert_ptr_null(cfg->warnings);
	else
		ck_assert_str_eq(cfg->warnings ? cfg->warnings : "(none)", expected);
	lb_config_free(cfg);
}
