// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/str.c: growable and fixed strings, and the one escaping of user text
 * that config errors, address errors and control replies share.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lb/str.h"
#include "tests/unit.h"

START_TEST(test_growable)
{
	struct lb_str b = { 0 };
	char *s;

	for (int i = 0; i < 1000; i++)
		lb_str_printf(&b, "%d,", i % 10);
	ck_assert_uint_eq(b.len, 2000);
	ck_assert_uint_eq(strlen(b.s), 2000);
	ck_assert(!b.oom);
	lb_str_truncate(&b, 4);
	ck_assert_str_eq(b.s, "0,1,");
	lb_str_truncate(&b, 10);	/* longer than it is: nothing */
	ck_assert_str_eq(b.s, "0,1,");
	s = lb_str_take(&b);
	ck_assert_str_eq(s, "0,1,");
	ck_assert_ptr_null(b.s);
	free(s);
	/* Nothing appended still gives a string. */
	s = lb_str_take(&b);
	ck_assert_str_eq(s, "");
	free(s);
	lb_str_printf(&b, "x");
	lb_str_fini(&b);
	ck_assert_ptr_null(b.s);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_fixed_cuts)
{
	char buf[8];
	struct lb_str b = lb_str_fixed(buf, sizeof(buf));

	ck_assert_str_eq(buf, "");
	lb_str_printf(&b, "abc");
	lb_str_printf(&b, "defghij");
	ck_assert_str_eq(buf, "abcdefg");
	ck_assert_uint_eq(b.len, 7);
	lb_str_printf(&b, "more");
	ck_assert_str_eq(buf, "abcdefg");
	ck_assert(!b.oom);
	lb_str_truncate(&b, 2);
	lb_str_escape(&b, "\n", 0);
	ck_assert_str_eq(buf, "ab\\x0a");
}
END_TEST

START_TEST(test_escape)
{
	char buf[LB_STR_QUOTE_SIZE];

	ck_assert_str_eq(lb_str_escape_to(buf, sizeof(buf), "a\"b\\c\td\x7f", 0),
			 "a\"b\\c\\x09d\\x7f");
	ck_assert_str_eq(lb_str_escape_to(buf, sizeof(buf), "a\"b\\c\td", LB_STR_QUOTE),
			 "\"a\\\"b\\\\c\\x09d\"");
	ck_assert_str_eq(lb_str_escape_to(buf, sizeof(buf), "", LB_STR_QUOTE | LB_STR_CUT), "\"\"");
}
END_TEST

/* Cut after LB_STR_QUOTE_MAX bytes, never inside a UTF-8 sequence, and marked. */
START_TEST(test_escape_cut)
{
	char in[LB_STR_QUOTE_MAX + 16], want[LB_STR_QUOTE_MAX + 16], buf[LB_STR_QUOTE_SIZE];

	memset(in, 'x', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	memset(want, 'x', LB_STR_QUOTE_MAX);
	strcpy(want + LB_STR_QUOTE_MAX, "...");
	ck_assert_str_eq(lb_str_escape_to(buf, sizeof(buf), in, LB_STR_CUT), want);
	/* Exactly LB_STR_QUOTE_MAX bytes is not cut. */
	in[LB_STR_QUOTE_MAX] = '\0';
	ck_assert_str_eq(lb_str_escape_to(buf, sizeof(buf), in, LB_STR_CUT), in);
	/* "é" (2 bytes) straddling the limit goes whole to the cut side. */
	memset(in, 'x', sizeof(in) - 1);
	in[LB_STR_QUOTE_MAX - 1] = (char)0xc3;
	in[LB_STR_QUOTE_MAX] = (char)0xa9;
	strcpy(want + LB_STR_QUOTE_MAX - 1, "...\"");
	memmove(want + 1, want, LB_STR_QUOTE_MAX + 4);	/* with its NUL */
	want[0] = '"';
	ck_assert_str_eq(lb_str_escape_to(buf, sizeof(buf), in, LB_STR_QUOTE | LB_STR_CUT), want);
	/* ... and a whole "é" ending right at the limit stays. */
	in[LB_STR_QUOTE_MAX - 2] = (char)0xc3;
	in[LB_STR_QUOTE_MAX - 1] = (char)0xa9;
	in[LB_STR_QUOTE_MAX] = 'x';
	lb_str_escape_to(buf, sizeof(buf), in, LB_STR_CUT);
	ck_assert_mem_eq(buf + LB_STR_QUOTE_MAX - 2, "\xc3\xa9...", 6);
	/* The worst case, every byte a control byte, fits LB_STR_QUOTE_SIZE. */
	memset(in, '\x01', sizeof(in) - 1);
	lb_str_escape_to(buf, sizeof(buf), in, LB_STR_QUOTE | LB_STR_CUT);
	ck_assert_uint_eq(strlen(buf), 4 * LB_STR_QUOTE_MAX + 5);
	ck_assert_str_eq(buf + strlen(buf) - 4, "...\"");
}
END_TEST

int main(void)
{
	return lb_test_main("str", NULL, NULL, 0,
			    LB_TESTS(test_growable, test_fixed_cuts, test_escape, test_escape_cut));
}
