/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_TESTS_UNIT_H
#define LB_TESTS_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Runs suite s (taking it) and returns main()'s exit status: failure when any test failed. */
static inline int lb_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
