// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/addr.h"
#include "tests/unit.h"

/* Parses text, expecting success, and checks it formats back unchanged. */
static void round_trip(const char *text, int family, uint16_t port)
{
	char buf[LB_ADDR_STRLEN];
	union lb_sockaddr a;
	const char *why = NULL;

	ck_assert_int_eq(lb_addr_parse(text, &a, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(a.sa.sa_family, family);
	ck_assert_uint_eq(lb_addr_port(&a), port);
	ck_assert_str_eq(lb_addr_format(&a, buf, sizeof(buf)), text);
}

START_TEST(test_parse_valid)
{
	round_trip("198.18.0.1:80", AF_INET, 80);
	round_trip("0.0.0.0:1", AF_INET, 1);
	round_trip("255.255.255.255:65535", AF_INET, 65535);
	round_trip("[2001:db8::1]:80", AF_INET6, 80);
	round_trip("[::]:443", AF_INET6, 443);
	round_trip("[::ffff:198.18.0.1]:8080", AF_INET6, 8080);
	round_trip("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", AF_INET6, 65535);
}
END_TEST

START_TEST(test_parse_canonical)
{
	char buf[LB_ADDR_STRLEN];
	union lb_sockaddr a;

	ck_assert_int_eq(lb_addr_parse("[2001:DB8:0:0::1]:0080", &a, NULL), 0);
	ck_assert_str_eq(lb_addr_format(&a, buf, sizeof(buf)), "[2001:db8::1]:80");
	ck_assert_uint_eq(lb_addr_len(&a), sizeof(struct sockaddr_in6));
	ck_assert_int_eq(lb_addr_parse("10.0.0.1:8", &a, NULL), 0);
	ck_assert_uint_eq(lb_addr_len(&a), sizeof(struct sockaddr_in));
	ck_assert_uint_eq(ntohl(a.in.sin_addr.s_addr), 0x0a000001);
}
END_TEST

static const struct {
	const char *text;
	const char *why;
} invalid[] = {
	{ "", "invalid address \"\"" },
	{ "foo", "invalid address \"foo\"" },
	{ "localhost:80", "invalid address \"localhost:80\"" },
	{ "198.18.0.1", "missing port" },
	{ "198.18.0.1:", "missing port" },
	{ "[2001:db8::1]", "missing port" },
	{ "[2001:db8::1]:", "missing port" },
	{ "198.18.0.1:99999", "port 99999 out of range" },
	{ "198.18.0.1:65536", "port 65536 out of range" },
	{ "198.18.0.1:0", "port 0 out of range" },
	{ "[::1]:0", "port 0 out of range" },
	{ "198.18.0.1:123456789012345678901234",
	  "port 12345678901234567890... out of range" },
	{ "198.18.0.1:http", "invalid port \"http\"" },
	{ "198.18.0.1:80x", "invalid port \"80x\"" },
	{ "198.18.0.1: 80", "invalid port \" 80\"" },
	{ "198.18.0.1:+80", "invalid port \"+80\"" },
	{ "198.18.0.1:-1", "invalid port \"-1\"" },
	{ "198.18.0.1:0x50", "invalid port \"0x50\"" },
	{ "198.18.0.256:80", "invalid address \"198.18.0.256:80\"" },
	{ "198.18.1:80", "invalid address \"198.18.1:80\"" },
	{ " 198.18.0.1:80", "invalid address \" 198.18.0.1:80\"" },
	{ "2001:db8::1:80",
	  "invalid address \"2001:db8::1:80\" (write IPv6 as \"[address]:port\")" },
	{ "::1", "invalid address \"::1\" (write IPv6 as \"[address]:port\")" },
	{ "[2001:db8::1]80", "invalid address \"[2001:db8::1]80\"" },
	{ "[2001:db8::1]:80]", "invalid port \"80]\"" },
	{ "[2001:db8::1", "invalid address \"[2001:db8::1\"" },
	{ "[198.18.0.1]:80", "invalid address \"[198.18.0.1]:80\"" },
	{ "[fe80::1%eth0]:80", "invalid address \"[fe80::1%eth0]:80\"" },
	{ "[]:80", "invalid address \"[]:80\"" },
	{ "a\"b\n", "invalid address \"a\\\"b\\x0a\"" },
	{ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	  "invalid address \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"" },
};

START_TEST(test_parse_invalid)
{
	union lb_sockaddr a;
	const char *why = NULL;

	memset(&a, 0xa5, sizeof(a));
	ck_assert_int_eq(lb_addr_parse(invalid[_i].text, &a, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(why, invalid[_i].why);
	/* A failed parse leaves nothing half-filled behind. */
	ck_assert_int_eq(a.sa.sa_family, AF_UNSPEC);
	/* why is optional. */
	ck_assert_int_eq(lb_addr_parse(invalid[_i].text, &a, NULL), -EINVAL);
}
END_TEST

START_TEST(test_format_ip)
{
	char buf[INET6_ADDRSTRLEN];
	union lb_sockaddr a;

	ck_assert_int_eq(lb_addr_parse("[2001:db8::2]:80", &a, NULL), 0);
	ck_assert_str_eq(lb_addr_format_ip(&a, buf, sizeof(buf)), "2001:db8::2");
	ck_assert_int_eq(lb_addr_parse("198.18.2.2:80", &a, NULL), 0);
	ck_assert_str_eq(lb_addr_format_ip(&a, buf, sizeof(buf)), "198.18.2.2");
	memset(&a, 0, sizeof(a));
	ck_assert_str_eq(lb_addr_format_ip(&a, buf, sizeof(buf)), "?");
	ck_assert_str_eq(lb_addr_format(&a, buf, sizeof(buf)), "?");
	ck_assert_uint_eq(lb_addr_len(&a), 0);
	ck_assert_uint_eq(lb_addr_port(&a), 0);
}
END_TEST

START_TEST(test_port)
{
	char buf[LB_ADDR_STRLEN];
	union lb_sockaddr a;

	ck_assert_int_eq(lb_addr_parse("198.18.2.2:80", &a, NULL), 0);
	lb_addr_set_port(&a, 8080);
	ck_assert_uint_eq(lb_addr_port(&a), 8080);
	ck_assert_uint_eq(ntohs(a.in.sin_port), 8080);
	ck_assert_str_eq(lb_addr_format(&a, buf, sizeof(buf)), "198.18.2.2:8080");
	ck_assert_int_eq(lb_addr_parse("[2001:db8::2]:80", &a, NULL), 0);
	lb_addr_set_port(&a, 65535);
	ck_assert_uint_eq(ntohs(a.in6.sin6_port), 65535);
	ck_assert_str_eq(lb_addr_format(&a, buf, sizeof(buf)), "[2001:db8::2]:65535");
}
END_TEST

START_TEST(test_equal)
{
	union lb_sockaddr a, b;

	ck_assert_int_eq(lb_addr_parse("198.18.2.2:80", &a, NULL), 0);
	ck_assert_int_eq(lb_addr_parse("198.18.2.2:80", &b, NULL), 0);
	ck_assert(lb_addr_equal(&a, &b));
	lb_addr_set_port(&b, 81);
	ck_assert(!lb_addr_equal(&a, &b));
	ck_assert_int_eq(lb_addr_parse("198.18.2.3:80", &b, NULL), 0);
	ck_assert(!lb_addr_equal(&a, &b));
	ck_assert_int_eq(lb_addr_parse("[::ffff:198.18.2.2]:80", &b, NULL), 0);
	ck_assert(!lb_addr_equal(&a, &b));

	ck_assert_int_eq(lb_addr_parse("[2001:db8::2]:80", &a, NULL), 0);
	ck_assert_int_eq(lb_addr_parse("[2001:db8:0::2]:80", &b, NULL), 0);
	ck_assert(lb_addr_equal(&a, &b));
	/* Scope and flow label do not take part. */
	b.in6.sin6_scope_id = 3;
	b.in6.sin6_flowinfo = htonl(7);
	ck_assert(lb_addr_equal(&a, &b));
	lb_addr_set_port(&b, 81);
	ck_assert(!lb_addr_equal(&a, &b));
	ck_assert_int_eq(lb_addr_parse("[2001:db8::3]:80", &b, NULL), 0);
	ck_assert(!lb_addr_equal(&a, &b));

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ck_assert(!lb_addr_equal(&a, &b));
}
END_TEST

START_TEST(test_unmap)
{
	char buf[LB_ADDR_STRLEN];
	union lb_sockaddr a, b;

	ck_assert_int_eq(lb_addr_parse("[::ffff:198.18.100.1]:80", &a, NULL), 0);
	lb_addr_unmap(&a);
	ck_assert_int_eq(a.sa.sa_family, AF_INET);
	ck_assert_uint_eq(lb_addr_len(&a), sizeof(struct sockaddr_in));
	ck_assert_str_eq(lb_addr_format(&a, buf, sizeof(buf)), "198.18.100.1:80");
	ck_assert_int_eq(lb_addr_parse("198.18.100.1:80", &b, NULL), 0);
	ck_assert(lb_addr_equal(&a, &b));
	ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);

	/* Plain IPv4, plain IPv6 and IPv4-compatible ::a.b.c.d stay as they are. */
	lb_addr_unmap(&b);
	ck_assert_str_eq(lb_addr_format(&b, buf, sizeof(buf)), "198.18.100.1:80");
	ck_assert_int_eq(lb_addr_parse("[2001:db8::1]:80", &a, NULL), 0);
	lb_addr_unmap(&a);
	ck_assert_str_eq(lb_addr_format(&a, buf, sizeof(buf)), "[2001:db8::1]:80");
	ck_assert_int_eq(lb_addr_parse("[::198.18.100.1]:80", &a, NULL), 0);
	lb_addr_unmap(&a);
	ck_assert_int_eq(a.sa.sa_family, AF_INET6);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = lb_test_case(s, "addr", NULL, NULL,
				 LB_TESTS(test_parse_valid, test_parse_canonical, test_format_ip,
					  test_port, test_equal, test_unmap));

	tcase_add_loop_test(tc, test_parse_invalid, 0, sizeof(invalid) / sizeof(invalid[0]));
	return lb_test_run(s);
}
