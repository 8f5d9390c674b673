// SPDX-License-Identifier: GPL-2.0-or-later
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

static int report_add(char ***lines, size_t *n, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static int report_add(char ***lines, size_t *n, const char *fmt, va_list ap)
{
	char **l = realloc(*lines, (*n + 1) * sizeof(*l));

	if (!l)
		return -ENOMEM;
	*lines = l;
	if (vasprintf(&l[*n], fmt, ap) < 0)
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int report(struct lb_preflight_report *r, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int report(struct lb_preflight_report *r, bool error, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = error ? report_add(&r->errors, &r->n_errors, fmt, ap)
		   : report_add(&r->warnings, &r->n_warnings, fmt, ap);
	va_end(ap);
	return rc;
}

void lb_preflight_report_fini(struct lb_preflight_report *r)
{
	for (size_t i = 0; i < r->n_errors; i++)
		free(r->errors[i]);
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->errors);
	free(r->warnings);
	*r = (struct lb_preflight_report){ 0 };
}

/*
 * True when a is the broadcast address of ifa's IPv4 network. Without one
 * (no IFA_BROADCAST), getifaddrs() may leave the local address there.
 */
static bool is_broadcast(const struct ifaddrs *ifa, const union lb_sockaddr *a)
{
	return a->sa.sa_family == AF_INET && (ifa->ifa_flags & IFF_BROADCAST) &&
	       lb_addr_same_ip(a, ifa->ifa_broadaddr) && !lb_addr_same_ip(a, ifa->ifa_addr);
}

/*
 * A backend on this gateway's own address gets connects from the client's
 * address, and answers them straight to the client: they never complete.
 * A broadcast address is no TCP peer at all.
 */
static int check_own_addresses(struct lb_preflight_report *r, const struct lb_config *cfg,
			       const struct ifaddrs *ifs)
{
	char text[LB_ADDR_STRLEN];
	int rc = 0;

	for (size_t i = 0; i < cfg->n_services && rc == 0; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		for (size_t j = 0; j < svc->n_backends && rc == 0; j++) {
			const union lb_sockaddr *a = &svc->backends[j].addr;

			for (const struct ifaddrs *ifa = ifs; ifa && rc == 0; ifa = ifa->ifa_next) {
				bool bcast = is_broadcast(ifa, a);

				if (!lb_addr_same_ip(a, ifa->ifa_addr) && !bcast)
					continue;
				lb_addr_format(a, text, sizeof(text));
				rc = report(r, true, bcast ?
					    "services[%zu].backends[%zu].address: %s is the broadcast "
					    "address of interface %s's network: TCP cannot connect to it" :
					    "services[%zu].backends[%zu].address: %s is an address of "
					    "this gateway (interface %s): lb connects from the client's "
					    "address, so the answers go straight to the client and the "
					    "connect never completes", i, j, text, ifa->ifa_name);
				break;
			}
		}
		for (size_t j = 0; j < svc->n_vips && rc == 0; j++) {
			const union lb_sockaddr *a = &svc->vips[j];

			for (const struct ifaddrs *ifa = ifs; ifa && rc == 0; ifa = ifa->ifa_next) {
				if (!is_broadcast(ifa, a))
					continue;
				rc = report(r, true, "services[%zu].vips[%zu]: %s is the broadcast "
					    "address of interface %s's network: TCP cannot connect to it",
					    i, j, lb_addr_format(a, text, sizeof(text)), ifa->ifa_name);
				break;
			}
		}
	}
	return rc;
}

int lb_preflight_check_host(struct lb_preflight_report *r, const struct lb_config *cfg,
			    const struct ifaddrs *ifs)
{
	*r = (struct lb_preflight_report){ 0 };
	return check_own_addresses(r, cfg, ifs);
}

int lb_preflight_config(struct lb_preflight_report *r, const struct lb_config *cfg)
{
	struct ifaddrs *ifs = NULL;
	int rc;

	/* Without the list nothing can be compared: the other checks still run. */
	if (getifaddrs(&ifs) == -1)
		ifs = NULL;
	rc = lb_preflight_check_host(r, cfg, ifs);
	if (ifs)
		freeifaddrs(ifs);
	return rc;
}

int lb_preflight_config_log(const struct lb_config *cfg, const char *prefix, char *msg,
			    size_t len)
{
	struct lb_preflight_report r;
	const char *p = cfg->warnings;
	int rc;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		lb_warn("%sconfig: %.*s", prefix, n, p);
		p += n + (nl ? 1 : 0);
	}
	rc = lb_preflight_config(&r, cfg);
	if (rc < 0) {
		lb_err("%shost checks: %s", prefix, strerror(-rc));
		lb_preflight_report_fini(&r);
		return 0;
	}
	for (size_t i = 0; i < r.n_warnings; i++)
		lb_warn("%s%s", prefix, r.warnings[i]);
	for (size_t i = 0; i < r.n_errors; i++)
		lb_err("%s%s", prefix, r.errors[i]);
	rc = r.n_errors ? -EINVAL : 0;
	if (r.n_errors && msg)
		snprintf(msg, len, "%s%s", r.errors[0],
			 r.n_errors > 1 ? " (and more, see the log)" : "");
	lb_preflight_report_fini(&r);
	return rc;
}

int lb_preflight(const struct lb_config *cfg)
{
	int rc = check_caps();

	if (rc < 0)
		return rc;
	check_forwarding(cfg);
	check_rp_filter(cfg);
	return lb_preflight_config_log(cfg, "", NULL, 0);
}
