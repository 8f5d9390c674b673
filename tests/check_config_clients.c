// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/config_clients.c: a service's "clients" object, its defaults, and
 * every error and warning it can give, each naming its JSON path.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/config.h"
#include "tests/unit.h"

/* Single quotes in the JSON below become double quotes. */
static struct lb_config *parse_q(const char *text, char **errors)
{
	struct lb_config *cfg;
	char *json = strdup(text);

	ck_assert_ptr_nonnull(json);
	for (char *p = json; *p; p++)
		if (*p == '\'')
			*p = '"';
	cfg = lb_config_parse(json, errors);
	free(json);
	return cfg;
}

static struct lb_config *parse_ok(const char *text)
{
	char *errors = NULL;
	struct lb_config *cfg = parse_q(text, &errors);

	if (!cfg)
		ck_abort_msg("unexpected errors:\n%s", errors);
	return cfg;
}

static void parse_fails(const char *text, const char *expected)
{
	char *errors = NULL;
	struct lb_config *cfg = parse_q(text, &errors);

	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(errors);
	ck_assert_str_eq(errors, expected);
	free(errors);
}

#define SVC(proto, clients) "{'services':[{'name':'web'," proto "'vips':['198.18.100.1:80'," \
	"'[2001:db8:100::1]:80'],'backends':[{'address':'198.18.2.2:80'}," \
	"{'address':'[2001:db8:2::2]:80'}],'clients':" clients "}]}"
#define TCP(clients) SVC("", clients)

static const char *prefix_text(const struct lb_prefix *p)
{
	static char buf[64];
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, ip, sizeof(ip));
	snprintf(buf, sizeof(buf), "%s/%u", ip, p->len);
	return buf;
}

START_TEST(test_full)
{
	struct lb_config *cfg = parse_ok(TCP(
		"{'allow':['198.18.0.0/15','2001:db8::/32'],'deny':['198.18.0.13','2001:db8::13/128'],"
		"'deny_action':'reset','rate':{'per_second':20,'burst':40,'ipv4_prefix':24,"
		"'ipv6_prefix':64,'table_size':1024},'max_conns':10}"));
	const struct lb_clients_conf *cl = &cfg->services[0].clients;

	ck_assert_uint_eq(cl->n_allow, 2);
	ck_assert_str_eq(prefix_text(&cl->allow[0]), "198.18.0.0/15");
	ck_assert_str_eq(prefix_text(&cl->allow[1]), "2001:db8::/32");
	ck_assert_uint_eq(cl->n_deny, 2);
	ck_assert_str_eq(prefix_text(&cl->deny[0]), "198.18.0.13/32");
	ck_assert_str_eq(prefix_text(&cl->deny[1]), "2001:db8::13/128");
	ck_assert(cl->deny_reset);
	ck_assert_uint_eq(cl->rate, 20);
	ck_assert_uint_eq(cl->burst, 40);
	ck_assert_uint_eq(cl->rate_prefix4, 24);
	ck_assert_uint_eq(cl->rate_prefix6, 64);
	ck_assert_uint_eq(cl->rate_table_size, 1024);
	ck_assert_uint_eq(cl->max_conns, 10);
	ck_assert(lb_config_clients_nft(&cfg->services[0]));
	ck_assert_ptr_null(cfg->warnings);
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_defaults)
{
	struct lb_config *cfg = parse_ok(TCP("{'rate':{'per_second':7}}"));
	const struct lb_clients_conf *cl = &cfg->services[0].clients;

	/* A second's worth of burst, one budget per address, 65536 of them. */
	ck_assert_uint_eq(cl->burst, 7);
	ck_assert_uint_eq(cl->rate_prefix4, 32);
	ck_assert_uint_eq(cl->rate_prefix6, 128);
	ck_assert_uint_eq(cl->rate_table_size, 65536);
	ck_assert_ptr_null(cl->allow);
	ck_assert(!cl->deny_reset);
	ck_assert_uint_eq(cl->max_conns, 0);
	lb_config_free(cfg);
	/* max_conns alone is the workers' business: nothing for nftables. */
	cfg = parse_ok(TCP("{'max_conns':3}"));
	ck_assert(!lb_config_clients_nft(&cfg->services[0]));
	lb_config_free(cfg);
	/* An empty object, or none, changes nothing. */
	cfg = parse_ok(TCP("{}"));
	ck_assert(!lb_config_clients_nft(&cfg->services[0]));
	lb_config_free(cfg);
}
END_TEST

START_TEST(test_errors)
{
	parse_fails(TCP("[]"), "services[0].clients: expected an object\n");
	parse_fails(TCP("{'allow':[]}"), "services[0].clients.allow: must not be empty\n");
	parse_fails(TCP("{'deny':'198.18.0.1'}"),
		    "services[0].clients.deny: expected an array\n");
	parse_fails(TCP("{'deny':['198.18.0.1/33',5]}"),
		    "services[0].clients.deny[0]: invalid prefix \"198.18.0.1/33\": prefix length "
		    "must be 0..32\nservices[0].clients.deny[1]: expected a string\n");
	parse_fails(TCP("{'allow':['10.1.2.3/8']}"),
		    "services[0].clients.allow[0]: invalid prefix \"10.1.2.3/8\": host bits set past "
		    "the prefix length (did you mean the network address?)\n");
	parse_fails(TCP("{'deny_action':'reject'}"),
		    "services[0].clients.deny_action: unknown action \"reject\" (expected drop or "
		    "reset)\n");
	parse_fails(TCP("{'rate':{'burst':3}}"),
		    "services[0].clients.rate.per_second: missing required key\n");
	parse_fails(TCP("{'rate':{'per_second':0,'burst':2000000,'ipv4_prefix':0,"
			"'ipv6_prefix':129,'table_size':8,'every':'second'}}"),
		    "services[0].clients.rate.per_second: 0 out of range (1..1000000)\n"
		    "services[0].clients.rate.burst: 2000000 out of range (1..1000000)\n"
		    "services[0].clients.rate.ipv4_prefix: 0 out of range (1..32)\n"
		    "services[0].clients.rate.ipv6_prefix: 129 out of range (1..128)\n"
		    "services[0].clients.rate.table_size: 8 out of range (16..16777216)\n"
		    "services[0].clients.rate.every: unknown key\n");
	parse_fails(TCP("{'max_conns':0,'limit':1}"),
		    "services[0].clients.max_conns: 0 out of range (1..1000000)\n"
		    "services[0].clients.limit: unknown key\n");
	/* UDP has flows, not connections: the cap is refused, the rate is not. */
	parse_fails(SVC("'protocol':'udp',", "{'max_conns':2,'rate':{'per_second':5}}"),
		    "services[0].clients.max_conns: applies to TCP; this service's protocol is "
		    "\"udp\" (rate limits new flows)\n");
}
END_TEST

/* A list holds each address once: overlaps are named with both entries. */
START_TEST(test_overlaps)
{
	parse_fails(TCP("{'deny':['198.18.0.0/16','198.19.0.0/16','198.18.5.0/24']}"),
		    "services[0].clients.deny[2]: 198.18.5.0/24 overlaps 198.18.0.0/16 at [0]: list "
		    "each address once\n");
	parse_fails(TCP("{'allow':['2001:db8::/32','2001:db8::/32']}"),
		    "services[0].clients.allow[1]: 2001:db8::/32 is listed twice (also [0])\n");
	/* Adjacent is not overlapping; allow and deny may overlap each other. */
	lb_config_free(parse_ok(TCP("{'allow':['198.18.0.0/24','198.18.1.0/24','2001:db8::/32'],"
				    "'deny':['198.18.0.0/25']}")));
}
END_TEST

START_TEST(test_allow_family_warning)
{
	struct lb_config *cfg = parse_ok(TCP("{'allow':['198.18.0.0/15']}"));

	ck_assert_str_eq(cfg->warnings, "services[0].clients.allow: no IPv6 prefix: every IPv6 "
			 "client of this service is refused\n");
	lb_config_free(cfg);
}
END_TEST

/* The http listener's allow list shares the parser but may overlap. */
START_TEST(test_http_allow_overlaps)
{
	struct lb_config *cfg = parse_ok("{'http':{'listen':'127.0.0.1:8080',"
					 "'allow':['127.0.0.0/8','127.0.0.1']},'services':[{'name':'web',"
					 "'vips':['198.18.100.1:80'],'backends':[{'address':'198.18.2.2:80'}]}]}");

	ck_assert_uint_eq(cfg->http.n_allow, 2);
	lb_config_free(cfg);
}
END_TEST

int main(void)
{
	return lb_test_main("config_clients", NULL, NULL, 0,
			    LB_TESTS(test_full, test_defaults, test_errors, test_overlaps, test_allow_family_warning,
				     test_http_allow_overlaps));
}
