// SPDX-License-Identifier: GPL-2.0-or-later
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lb/log.h"
#include "lb/preflight.h"

#define CAP_NET_ADMIN_BIT 12
#define CAP_NET_RAW_BIT 13

static int read_long(const char *path, long *v)
{
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (!f)
		return -errno;
	if (fscanf(f, "%ld", v) != 1)
		rc = -EINVAL;
	fclose(f);
	return rc;
}

static int effective_caps(uint64_t *caps)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "CapEff: %" SCNx64, caps) == 1) {
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

static int check_caps(void)
{
	uint64_t caps = 0;
	const char *missing = NULL;

	if (effective_caps(&caps) < 0)
		return 0;	/* Can't tell; netlink will say. */
	if (!(caps & (1ULL << CAP_NET_ADMIN_BIT)) && !(caps & (1ULL << CAP_NET_RAW_BIT)))
		missing = "CAP_NET_ADMIN and CAP_NET_RAW";
	else if (!(caps & (1ULL << CAP_NET_ADMIN_BIT)))
		missing = "CAP_NET_ADMIN";
	else if (!(caps & (1ULL << CAP_NET_RAW_BIT)))
		missing = "CAP_NET_RAW";
	if (!missing)
		return 0;
	lb_err("missing privilege: lb needs %s (CAP_NET_ADMIN to program nftables and policy "
	       "routing, CAP_NET_RAW for transparent sockets); run it as root", missing);
	return -EPERM;
}

static void check_forwarding(const struct lb_config *cfg)
{
	long v = -1;	/* read_long() leaves it unset when it fails */

	if (lb_config_has_family(cfg, AF_INET) &&
	    read_long("/proc/sys/net/ipv4/ip_forward", &v) == 0 && v == 0)
		lb_warn("net.ipv4.ip_forward is 0: this gateway does not route other traffic between "
			"clients and backends; fix: sysctl -w net.ipv4.ip_forward=1");
	if (lb_config_has_family(cfg, AF_INET6) &&
	    read_long("/proc/sys/net/ipv6/conf/all/forwarding", &v) == 0 && v == 0)
		lb_warn("net.ipv6.conf.all.forwarding is 0: this gateway does not route other IPv6 "
			"traffic; fix: sysctl -w net.ipv6.conf.all.forwarding=1");
}

/*
 * The kernel uses max(all, interface) for rp_filter. Marked packets are
 * checked against the local table when src_valid_mark is set, which makes
 * every client source look local and drops it without a trace.
 */
static void check_rp_filter(const struct lb_config *cfg)
{
	char path[320];
	long all = 0, valid_mark = 0;
	struct dirent *de;
	DIR *d;

	if (!lb_config_has_family(cfg, AF_INET))
		return;
	read_long("/proc/sys/net/ipv4/conf/all/rp_filter", &all);
	read_long("/proc/sys/net/ipv4/conf/all/src_valid_mark", &valid_mark);
	d = opendir("/proc/sys/net/ipv4/conf");
	if (!d)
		return;
	while ((de = readdir(d))) {
		long rp = 0, vm = 0;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "all") ||
		    !strcmp(de->d_name, "default") || !strcmp(de->d_name, "lo"))
			continue;
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", de->d_name);
		read_long(path, &rp);
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/src_valid_mark", de->d_name);
		read_long(path, &vm);
		if (rp < all)
			rp = all;
		if (rp && (vm || valid_mark))
			lb_warn("interface %s: rp_filter=%ld with src_valid_mark=1 drops intercepted "
				"packets silently; fix: sysctl -w net.ipv4.conf.all.src_valid_mark=0 "
				"net.ipv4.conf.%s.src_valid_mark=0", de->d_name, rp, de->d_name);
		else if (rp == 1)
			lb_warn("interface %s: strict rp_filter (1) drops replies that come back on "
				"another interface than the route to their source; if backends' "
				"replies do, fix: sysctl -w net.ipv4.conf.all.rp_filter=2 "
				"net.ipv4.conf.%s.rp_filter=2", de->d_name, de->d_name);
	}
	closedir(d);
}

int lb_preflight(const struct lb_config *cfg)
{
	int rc = check_caps();

	if (rc < 0)
		return rc;
	check_forwarding(cfg);
	check_rp_filter(cfg);
	return 0;
}
