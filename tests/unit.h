/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_TESTS_UNIT_H
#define LB_TESTS_UNIT_H

#include <check.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/*
 * Whether threads of this process run at once, so that a race test may ask
 * for contention: valgrind runs one thread at a time and may let one spin
 * for seconds while another never runs. A race test's safety checks hold
 * there all the same; only "both sides got in" cannot be asked of it.
 */
static inline int lb_test_threads_overlap(void)
{
	return !RUNNING_ON_VALGRIND;
}

/*
 * A race test's end, asked by each of its threads at step i: true once stop
 * is set, or once the monotonic clock (lb_clock_ms()'s) reaches until_ms,
 * looked at every 1024th step, which then sets stop. The racers ask it
 * themselves: valgrind may not run the main thread for seconds meanwhile.
 */
static inline bool lb_test_race_over(atomic_bool *stop, uint64_t until_ms, unsigned long i)
{
	struct timespec ts;

	if (i % 1024 == 0 && clock_gettime(CLOCK_MONOTONIC, &ts) == 0 &&
	    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 >= until_ms)
		atomic_store(stop, true);
	return atomic_load(stop);
}

/* The tests of one test case, in order: LB_TESTS(test_a, test_b). */
#define LB_TESTS(...) ((const TTest *const[]){ __VA_ARGS__, NULL })

/*
 * Adds to s a test case named name running tests (LB_TESTS()), each under
 * a checked fixture of setup and teardown (NULL: none). Returns it, for
 * tcase_set_timeout() and loop tests.
 */
static inline TCase *lb_test_case(Suite *s, const char *name, SFun setup, SFun teardown,
				  const TTest *const *tests)
{
	TCase *tc = tcase_create(name);

	if (setup || teardown)
		tcase_add_checked_fixture(tc, setup, teardown);
	for (; *tests; tests++)
		tcase_add_test(tc, *tests);
	suite_add_tcase(s, tc);
	return tc;
}

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

/*
 * What main() of a unit test of one test case returns: runs tests in a
 * suite and case both called name, with their fixture and a timeout in
 * seconds (0: Check's default).
 */
static inline int lb_test_main(const char *name, SFun setup, SFun teardown, unsigned int timeout,
			       const TTest *const *tests)
{
	Suite *s = suite_create(name);
	TCase *tc = lb_test_case(s, name, setup, teardown, tests);

	if (timeout)
		tcase_set_timeout(tc, timeout);
	return lb_test_run(s);
}

/* The int value of socket option opt at level of fd, asserted readable. */
static inline int lb_test_sockopt(int fd, int level, int opt)
{
	socklen_t len = sizeof(int);
	int v = 0;

	ck_assert_int_eq(getsockopt(fd, level, opt, &v, &len), 0);
	return v;
}

#endif
