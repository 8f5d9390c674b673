// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The host checks of a config (lb_preflight_check_host) against a made-up
 * host: interfaces as getifaddrs() would list them and a sysctl tree in a
 * temporary directory. No root, no kernel.
 */
#include <arpa/inet.h>
#include <check.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lb/config.h"
#include "lb/preflight.h"
#include "tests/unit.h"

/* One interface address of the made-up host, with its own storage. */
struct fake_if {
	struct ifaddrs ifa;
	union lb_sockaddr addr, mask, bcast;
	char name[IF_NAMESIZE];
};

static struct fake_if fakes[8];
static size_t n_fakes;
static char procroot[64];

static void ip_into(union lb_sockaddr *a, const char *ip)
{
	memset(a, 0, sizeof(*a));
	if (strchr(ip, ':')) {
		a->in6.sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->in6.sin6_addr), 1);
	} else {
		a->in.sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, ip, &a->in.sin_addr), 1);
	}
}

/* Adds NAME with IP/MASK (and BCAST for IPv4, or NULL); flags as getifaddrs gives them. */
static void fake_add(const char *name, const char *ip, const char *mask, const char *bcast,
		     unsigned int flags)
{
	struct fake_if *f = &fakes[n_fakes];

	ck_assert_uint_lt(n_fakes, sizeof(fakes) / sizeof(fakes[0]));
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	ip_into(&f->addr, ip);
	ip_into(&f->mask, mask);
	f->ifa.ifa_name = f->name;
	f->ifa.ifa_flags = flags;
	f->ifa.ifa_addr = &f->addr.sa;
	f->ifa.ifa_netmask = &f->mask.sa;
	if (bcast) {
		ip_into(&f->bcast, bcast);
		f->ifa.ifa_broadaddr = &f->bcast.sa;
		f->ifa.ifa_flags |= IFF_BROADCAST;
	}
	if (n_fakes)
		fakes[n_fakes - 1].ifa.ifa_next = &f->ifa;
	n_fakes++;
}

/* The lab's gateway: g0 towards clients, g1 towards backends, lo. */
static void fake_gateway(void)
{
	unsigned int up = IFF_UP | IFF_RUNNING;

	n_fakes = 0;
	fake_add("lo", "127.0.0.1", "255.0.0.0", NULL, up | IFF_LOOPBACK);
	fake_add("lo", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, up | IFF_LOOPBACK);
	fake_add("g0", "198.18.0.1", "255.255.255.0", "198.18.0.255", up);
	fake_add("g0", "2001:db8::1", "ffff:ffff:ffff:ffff::", NULL, up);
	fake_add("g1", "198.18.2.1", "255.255.255.0", "198.18.2.255", up);
	fake_add("g1", "2001:db8:2::1", "ffff:ffff:ffff:ffff::", NULL, up);
	fake_add("g1", "fe80::1", "ffff:ffff:ffff:ffff::", NULL, up);
}

static void sysctl_set(const char *name, const char *value)
{
	char path[256], *p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", procroot, name);
	for (p = path + strlen(procroot) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", value);
	fclose(f);
}

static void setup(void)
{
	snprintf(procroot, sizeof(procroot), "/tmp/check_preflight.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(procroot));
	sysctl_set("net/ipv6/conf/all/keep_addr_on_down", "0");
	sysctl_set("net/ipv6/conf/g0/keep_addr_on_down", "1");
	sysctl_set("net/ipv6/conf/g1/keep_addr_on_down", "1");
	fake_gateway();
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", procroot);
	ck_assert_int_eq(system(cmd), 0);
}

static struct lb_config *parse(const char *text)
{
	char *json = strdup(text), *errors = NULL, *p;
	struct lb_config *cfg;

	ck_assert_ptr_nonnull(json);
	for (p = json; *p; p++)
		if (*p == '\'')
			*p = '"';
	cfg = lb_config_parse(json, &errors);
	if (!cfg)
		ck_abort_msg("config errors:\n%s", errors);
	free(json);
	return cfg;
}

/* Runs the host checks on text; compares errors and warnings, each joined by '\n'. */
static void check(const char *text, const char *errors, const char *warnings)
{
	struct lb_config *cfg = parse(text);
	struct lb_preflight_report r;
	char got_e[4096] = "", got_w[4096] = "";

	ck_assert_int_eq(lb_preflight_check_host(&r, cfg, &fakes[0].ifa, procroot), 0);
	for (size_t i = 0; i < r.n_errors; i++)
		snprintf(got_e + strlen(got_e), sizeof(got_e) - strlen(got_e), "%s\n", r.errors[i]);
	for (size_t i = 0; i < r.n_warnings; i++)
		snprintf(got_w + strlen(got_w), sizeof(got_w) - strlen(got_w), "%s\n", r.warnings[i]);
	ck_assert_str_eq(got_e, errors);
	ck_assert_str_eq(got_w, warnings);
	lb_preflight_report_fini(&r);
	lb_config_free(cfg);
}

#define V4(backends) "{'services':[{'name':'web','vips':['198.18.100.1:80'],'backends':[" backends "]}]}"
#define V6(backends) "{'services':[{'name':'web','vips':['[2001:db8:100::1]:80'],'backends':[" backends "]}]}"

START_TEST(test_clean)
{
	check(V4("{'address':'198.18.2.2:80'}"), "", "");
	check(V6("{'address':'[2001:db8:2::2]:80'}"), "", "");
}
END_TEST

START_TEST(test_own_address)
{
	check(V4("{'address':'198.18.2.2:80'},{'address':'198.18.2.1:80'}"),
	      "services[0].backends[1].address: 198.18.2.1:80 is an address of this gateway "
	      "(interface g1): lb connects from the client's address, so the answers go straight "
	      "to the client and the connect never completes\n", "");
	/* Any port: it is the address that sends the answers astray. */
	check(V6("{'address':'[2001:db8::1]:8080'}"),
	      "services[0].backends[0].address: [2001:db8::1]:8080 is an address of this gateway "
	      "(interface g0): lb connects from the client's address, so the answers go straight "
	      "to the client and the connect never completes\n", "");
}
END_TEST

START_TEST(test_broadcast)
{
	check("{'services':[{'name':'web','vips':['198.18.0.255:80'],"
	      "'backends':[{'address':'198.18.2.255:80'}]}]}",
	      "services[0].backends[0].address: 198.18.2.255:80 is the broadcast address of "
	      "interface g1's network: TCP cannot connect to it\n"
	      "services[0].vips[0]: 198.18.0.255:80 is the broadcast address of interface g0's "
	      "network: TCP cannot connect to it\n", "");
}
END_TEST

static const char *const keep_g1 =
	"interface g1: net.ipv6.conf.g1.keep_addr_on_down is 0: its IPv6 addresses are removed "
	"when the link goes down and not restored when it comes back, which cuts IPv6 VIPs off "
	"after a link flap (it reaches backend [2001:db8:2::2]:80, services[0].backends[0]); fix: "
	"sysctl -w net.ipv6.conf.g1.keep_addr_on_down=1\n";

START_TEST(test_keep_addr)
{
	sysctl_set("net/ipv6/conf/g1/keep_addr_on_down", "0");
	check(V6("{'address':'[2001:db8:2::2]:80'}"), "", keep_g1);
	/* Below 0 is off too. */
	sysctl_set("net/ipv6/conf/g0/keep_addr_on_down", "-1");
	check(V6("{'address':'[2001:db8:2::2]:80'}"), "",
	      "interface g0: net.ipv6.conf.g0.keep_addr_on_down is -1: its IPv6 addresses are "
	      "removed when the link goes down and not restored when it comes back, which cuts "
	      "IPv6 VIPs off after a link flap; fix: sysctl -w net.ipv6.conf.g0.keep_addr_on_down=1\n"
	      "interface g1: net.ipv6.conf.g1.keep_addr_on_down is 0: its IPv6 addresses are removed "
	      "when the link goes down and not restored when it comes back, which cuts IPv6 VIPs off "
	      "after a link flap (it reaches backend [2001:db8:2::2]:80, services[0].backends[0]); "
	      "fix: sysctl -w net.ipv6.conf.g1.keep_addr_on_down=1\n");
	/* Without IPv6 VIPs there is nothing to cut off. */
	check(V4("{'address':'198.18.2.2:80'}"), "", "");
	/* "all" above 0 keeps them everywhere. */
	sysctl_set("net/ipv6/conf/all/keep_addr_on_down", "1");
	check(V6("{'address':'[2001:db8:2::2]:80'}"), "", "");
}
END_TEST

START_TEST(test_keep_addr_all_overrides)
{
	/* "all" below 0 overrides every interface: the fix is on "all". */
	sysctl_set("net/ipv6/conf/all/keep_addr_on_down", "-1");
	check(V6("{'address':'[2001:db8:2::3]:80'}"), "",
	      "interface g0: net.ipv6.conf.all.keep_addr_on_down is -1: its IPv6 addresses are "
	      "removed when the link goes down and not restored when it comes back, which cuts "
	      "IPv6 VIPs off after a link flap; fix: sysctl -w net.ipv6.conf.all.keep_addr_on_down=1\n"
	      "interface g1: net.ipv6.conf.all.keep_addr_on_down is -1: its IPv6 addresses are "
	      "removed when the link goes down and not restored when it comes back, which cuts "
	      "IPv6 VIPs off after a link flap (it reaches backend [2001:db8:2::3]:80, "
	      "services[0].backends[0]); fix: sysctl -w net.ipv6.conf.all.keep_addr_on_down=1\n");
}
END_TEST

#define CAPPED(n) "{'services':[{'name':'web','vips':['198.18.100.1:80']," \
	"'backends':[{'address':'198.18.2.2:80'}],'socket_buffer_bytes':" #n "}]}"

START_TEST(test_buffer_caps)
{
	sysctl_set("net/core/rmem_max", "212992");
	sysctl_set("net/core/wmem_max", "4194304");
	check(CAPPED(212992), "", "");
	check(CAPPED(1048576), "", "services[0].socket_buffer_bytes: 1048576 is above "
	      "net.core.rmem_max 212992, to which the kernel lowers it; fix: sysctl -w "
	      "net.core.rmem_max=1048576\n");
	check(CAPPED(8388608), "", "services[0].socket_buffer_bytes: 8388608 is above "
	      "net.core.rmem_max 212992, to which the kernel lowers it; fix: sysctl -w "
	      "net.core.rmem_max=8388608\n"
	      "services[0].socket_buffer_bytes: 8388608 is above net.core.wmem_max 4194304, to "
	      "which the kernel lowers it; fix: sysctl -w net.core.wmem_max=8388608\n");
}
END_TEST

/* Without cookies a SYN flood shuts every new client out; with 2 every client gets one. */
START_TEST(test_syncookies)
{
	static const char *const udp_only = "{'services':[{'name':'dns','protocol':'udp',"
		"'vips':['198.18.100.1:53'],'backends':[{'address':'198.18.2.2:53'}]}]}";

	sysctl_set("net/ipv4/tcp_syncookies", "1");
	check(V4("{'address':'198.18.2.2:80'}"), "", "");
	sysctl_set("net/ipv4/tcp_syncookies", "0");
	check(V4("{'address':'198.18.2.2:80'}"), "", "net.ipv4.tcp_syncookies is 0: a SYN flood "
	      "fills each worker's SYN queue and every new client is dropped until the flood ends; "
	      "fix: sysctl -w net.ipv4.tcp_syncookies=1\n");
	/* Nothing to flood without a TCP service. */
	check(udp_only, "", "");
	sysctl_set("net/ipv4/tcp_syncookies", "2");
	check(V6("{'address':'[2001:db8:2::2]:80'}"), "", "net.ipv4.tcp_syncookies is 2: every "
	      "client gets a SYN cookie, flood or not, and loses window scaling and SACK when it "
	      "sends no timestamps; 1 sends cookies only while a SYN queue is full; fix: sysctl -w "
	      "net.ipv4.tcp_syncookies=1\n");
}
END_TEST

#define FASTOPEN(on) "{'services':[{'name':'web','vips':['198.18.100.1:80']," \
	"'backends':[{'address':'198.18.2.2:80'}],'fastopen':" #on "}," \
	"{'name':'db','vips':['198.18.100.1:3306'],'backends':[{'address':'198.18.2.2:3306'}]}]}"

START_TEST(test_fastopen)
{
	/* The kernel's default for a namespace, and what docs/deploy.md sets: fine. */
	sysctl_set("net/ipv4/tcp_fastopen", "1");
	check(FASTOPEN(true), "", "");
	sysctl_set("net/ipv4/tcp_fastopen", "5");
	check(FASTOPEN(true), "", "");
	/* Server bits only: the fix adds the client bit and keeps them. */
	sysctl_set("net/ipv4/tcp_fastopen", "514");
	check(FASTOPEN(true), "", "services[0].fastopen: net.ipv4.tcp_fastopen is 514, without the "
	      "client bit (1): lb connects to this service's backends without TCP Fast Open; fix: "
	      "sysctl -w net.ipv4.tcp_fastopen=515\n");
	sysctl_set("net/ipv4/tcp_fastopen", "0");
	check(FASTOPEN(true), "", "services[0].fastopen: net.ipv4.tcp_fastopen is 0, without the "
	      "client bit (1): lb connects to this service's backends without TCP Fast Open; fix: "
	      "sysctl -w net.ipv4.tcp_fastopen=1\n");
	/* No service asks for it: nothing to say. */
	check(FASTOPEN(false), "", "");
}
END_TEST

/* The one /proc/sys reader, which limits.c reads its tree with too. */
START_TEST(test_sysctl_read)
{
	long long v[4] = { 7, 7, 7, 7 };

	sysctl_set("net/ipv4/tcp_mem", "188049\t250734\t376098\n");
	ck_assert_uint_eq(lb_preflight_sysctl(procroot, "net/ipv4/tcp_mem", v, 4), 3);
	ck_assert(v[0] == 188049 && v[1] == 250734 && v[2] == 376098 && v[3] == 7);
	ck_assert_uint_eq(lb_preflight_sysctl(procroot, "net/ipv4/tcp_mem", v, 1), 1);
	/* Negative values are values (keep_addr_on_down -1); what is missing is not read. */
	sysctl_set("net/ipv6/conf/all/keep_addr_on_down", "-1\n");
	ck_assert_uint_eq(lb_preflight_sysctl(procroot, "net/ipv6/conf/all/keep_addr_on_down",
					      v, 2), 1);
	ck_assert(v[0] == -1 && v[1] == 250734);
	ck_assert_uint_eq(lb_preflight_sysctl(procroot, "net/core/nothing", v, 1), 0);
	sysctl_set("net/core/garbage", "abc\n");
	ck_assert_uint_eq(lb_preflight_sysctl(procroot, "net/core/garbage", v, 1), 0);
	ck_assert(v[0] == -1);
}
END_TEST

int main(void)
{
	return lb_test_main("preflight", setup, teardown, 0,
			    LB_TESTS(test_clean, test_own_address, test_broadcast, test_keep_addr,
				     test_keep_addr_all_overrides, test_buffer_caps,
				     test_sysctl_read, test_syncookies,
				     test_fastopen));
}
