/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_TESTS_CONFIG_FIXTURE_H
#define LB_TESTS_CONFIG_FIXTURE_H

#include "lb/config.h"

/*
 * The JSON of the config tests is written with single quotes to stay
 * readable in C; parse_q() turns them into double quotes before parsing.
 */
struct lb_config *parse_q(const char *text, char **errors);
/* Parses text, which must be valid, and returns the config. */
struct lb_config *parse_ok(const char *text);
/* Parses text, which must be invalid, and compares the error lines. */
void parse_fails(const char *text, const char *expected);
/* Parses text, which must be valid, and compares its warnings (NULL: none). */
void parse_warns(const char *text, const char *expected);

#define SVC_BODY "'name':'web','vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]"
/* Adds top-level keys to a valid config. */
#define TOP(x) "{" x ",'services':[{" SVC_BODY "}]}"
/* Adds service keys to a valid config. */
#define SVC(x) "{'services':[{" SVC_BODY "," x "}]}"
/* A service with one IPv4 VIP and the given backends. */
#define BACKENDS(x) "{'services':[{'name':'web','vips':['198.18.100.1:80'],'backends':[" x "]}]}"
/* A service with the given VIPs and backends of both families. */
#define VIPS(x) "{'services':[{'name':'web','vips':[" x "],'backends':[" \
	"{'address':'198.18.2.2:80'},{'address':'[2001:db8:2::2]:80'}]}]}"
#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16
#define X256 X64 X64 X64 X64
/* Adds keys to a service's health block. */
#define HEALTH(x) SVC("'health':{" x "}")
/* n backends 198.18.2.1..n:80, n at most 10, for maglev table size checks. */
#define B(i) "{'address':'198.18.2." #i ":80'}"
#define B10 B(1) "," B(2) "," B(3) "," B(4) "," B(5) "," B(6) "," B(7) "," B(8) "," B(9) "," B(10)
#define MAGLEV(size, backends) "{'services':[{'name':'web','vips':['198.18.100.1:80']," \
	"'scheduler':'maglev','maglev_table_size':" #size ",'backends':[" backends "]}]}"
#define MODE_RANGE " out of range (0..511); write an octal mode as a string, like \"0660\"\n"
#define SCHEDULERS " (expected roundrobin, leastconn, maglev or random2)\n"
#define STATUS_SYNTAX " (expected a code or a range, like \"200\" or \"200-399\")\n"

#endif
