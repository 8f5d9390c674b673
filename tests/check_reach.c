// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/reach.c without root: which failed connects are the gateway's own,
 * and the per-backend memory of path failures that keeps a connect under
 * way during one from being blamed on its backend. The path looked at is
 * loopback's, which is always up.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "lb/config.h"
#include "lb/reach.h"
#include "tests/unit.h"

static struct lb_config *cfg;
static struct lb_reach_memo *memo;
static union lb_sockaddr lo;

static void setup(void)
{
	char *errors = NULL;

	cfg = lb_config_parse("{\"services\": [{\"name\": \"a\", \"vips\": [\"198.18.100.1:80\"],"
			      " \"backends\": [{\"address\": \"198.18.2.2:80\"},"
			      " {\"address\": \"198.18.2.3:80\"}]}, {\"name\": \"b\","
			      " \"vips\": [\"198.18.100.2:80\"], \"backends\":"
			      " [{\"address\": \"198.18.2.2:81\"}]}]}", &errors);
	if (!cfg)
		ck_abort_msg("config: %s", errors);
	memo = lb_reach_memo_alloc(cfg);
	ck_assert_ptr_nonnull(memo);
	ck_assert_int_eq(lb_addr_parse("127.0.0.1:80", &lo, NULL), 0);
}

static void teardown(void)
{
	lb_reach_memo_free(memo);
	lb_config_free(cfg);
}

START_TEST(test_local)
{
	/* connect() itself: no route is the gateway's; a refusal is the backend's. */
	ck_assert(lb_reach_local(&lo, ENETUNREACH, true));
	ck_assert(lb_reach_local(&lo, EHOSTUNREACH, true));
	ck_assert(!lb_reach_local(&lo, ECONNREFUSED, true));
	ck_assert(!lb_reach_local(&lo, ETIMEDOUT, true));
	/* Later errors look at the path now; loopback's is up. */
	ck_assert(!lb_reach_local(&lo, ETIMEDOUT, false));
	ck_assert(!lb_reach_local(&lo, ECONNREFUSED, false));
	ck_assert(!lb_reach_path_down(&lo));
}
END_TEST

/* A path failure at 100 ms covers that backend's connects begun before it, and only those. */
START_TEST(test_memo)
{
	ck_assert(lb_reach_failed(memo, 0, 0, &lo, ENETUNREACH, true, 10, 100));
	ck_assert(lb_reach_failed(memo, 0, 0, &lo, ETIMEDOUT, false, 50, 200));
	ck_assert(lb_reach_failed(memo, 0, 0, &lo, EHOSTUNREACH, false, 150, 210));
	/* Begun after the last failure it knows of (210): the path is up now. */
	ck_assert(!lb_reach_failed(memo, 0, 0, &lo, ETIMEDOUT, false, 250, 300));
	/* A refusal is the backend's whenever it began. */
	ck_assert(!lb_reach_failed(memo, 0, 0, &lo, ECONNREFUSED, false, 50, 310));
	/* Other backends, of this service or another, are not covered. */
	ck_assert(!lb_reach_failed(memo, 0, 1, &lo, ETIMEDOUT, false, 50, 320));
	ck_assert(!lb_reach_failed(memo, 1, 0, &lo, ETIMEDOUT, false, 50, 330));
	lb_reach_memo_free(NULL);
}
END_TEST

int main(void)
{
	return lb_test_main("reach", setup, teardown, 0, LB_TESTS(test_local, test_memo));
}
