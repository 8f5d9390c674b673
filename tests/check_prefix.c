// SPDX-License-Identifier: GPL-2.0-or-later
/* lb/prefix.c: parsing (with its errors) and matching, both families. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/prefix.h"
#include "tests/unit.h"

static union lb_sockaddr ip(const char *s)
{
	union lb_sockaddr a = { 0 };

	if (inet_pton(AF_INET, s, &a.in.sin_addr) == 1) {
		a.in.sin_family = AF_INET;
	} else {
		a.in6.sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, s, &a.in6.sin6_addr), 1);
	}
	return a;
}

static bool match(const char *prefix, const char *addr)
{
	struct lb_prefix p;
	const char *why = NULL;
	union lb_sockaddr a = ip(addr);

	if (lb_prefix_parse(prefix, &p, &why) < 0)
		ck_abort_msg("%s: %s", prefix, why);
	return lb_prefix_match(&p, &a);
}

START_TEST(test_match)
{
	ck_assert(match("127.0.0.0/8", "127.1.2.3"));
	ck_assert(!match("127.0.0.0/8", "128.0.0.1"));
	ck_assert(match("198.18.0.0/15", "198.19.255.255"));
	ck_assert(!match("198.18.0.0/15", "198.20.0.0"));
	ck_assert(match("198.18.0.1", "198.18.0.1"));
	ck_assert(!match("198.18.0.1", "198.18.0.2"));
	ck_assert(match("0.0.0.0/0", "203.0.113.7"));
	ck_assert(!match("0.0.0.0/0", "::1"));
	ck_assert(match("::1", "::1"));
	ck_assert(match("2001:db8::/32", "2001:db8:ffff::1"));
	ck_assert(!match("2001:db8::/32", "2001:db9::1"));
	ck_assert(match("2001:db8:8000::/33", "2001:db8:8001::1"));
	ck_assert(!match("2001:db8:8000::/33", "2001:db8:7fff::1"));
	/* An IPv4 client on a dual-stack socket arrives IPv4-mapped. */
	ck_assert(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	ck_assert(!match("::/0", "::ffff:127.0.0.1"));
}
END_TEST

START_TEST(test_errors)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "expected an address or prefix, such as 127.0.0.0/8 or ::1" },
		{ "/8", "expected an address or prefix, such as 127.0.0.0/8 or ::1" },
		{ "localhost", "not an IPv4 or IPv6 address (expected a prefix such as 127.0.0.0/8 or ::1)" },
		{ "10.0.0.0/", "prefix length must be a number" },
		{ "10.0.0.0/-1", "prefix length must be a number" },
		{ "10.0.0.0/33", "prefix length must be 0..32" },
		{ "10.0.0.0/8x", "prefix length must be 0..32" },
		{ "::/129", "prefix length must be 0..128" },
		{ "10.0.0.1/8", "host bits set past the prefix length (did you mean the network address?)" },
		{ "2001:db8::1/32", "host bits set past the prefix length (did you mean the network address?)" },
	};
	struct lb_prefix p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		ck_assert_msg(lb_prefix_parse(bad[i].text, &p, &why) == -EINVAL, "%s", bad[i].text);
		ck_assert_str_eq(why, bad[i].why);
	}
}
END_TEST

int main(void)
{
	return lb_test_main("prefix", NULL, NULL, 0, LB_TESTS(test_match, test_errors));
}
