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

#define PROCROOT "/proc/sys"
#define MIGRATE_REQ "net/ipv4/tcp_migrate_req"

size_t lb_preflight_sysctl(const char *procroot, const char *name, long long *v, size_t n)
{
	char path[4096];
	size_t got = 0;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", procroot ? procroot : PROCROOT, name) >=
	    sizeof(path))
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (got < n && fscanf(f, "%lld", &v[got]) == 1)
		got++;
	fclose(f);
	return got;
}

/* The one value of sysctl name, or dflt when it cannot be read. */
static long long sysctl_or(const char *procroot, const char *name, long long dflt)
{
	long long v;

	return lb_preflight_sysctl(procroot, name, &v, 1) == 1 ? v : dflt;
}

static int sysctl_write(const char *name, long long v)
{
	char path[256];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", PROCROOT, name);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	if (fprintf(f, "%lld\n", v) < 0)
		rc = -EIO;
	if (fclose(f) == EOF && rc == 0)
		rc = -errno;
	return rc;
}

int lb_preflight_migrate_req(void)
{
	long long v = sysctl_or(NULL, MIGRATE_REQ, -1);
	int rc;

	if (v < 0) {
		lb_warn("%s/%s is missing (kernel before 5.14): a reload that lowers the worker "
			"count may reset connections still in an accept queue", PROCROOT, MIGRATE_REQ);
		return -1;
	}
	if (v == 1)
		return -1;
	rc = sysctl_write(MIGRATE_REQ, 1);
	if (rc < 0)
		lb_warn("cannot set %s/%s: %s", PROCROOT, MIGRATE_REQ, strerror(-rc));
	return (int)v;
}

void lb_preflight_migrate_restore(int saved)
{
	int rc;

	if (saved < 0)
		return;
	rc = sysctl_write(MIGRATE_REQ, saved);
	if (rc < 0)
		lb_warn("cannot set %s/%s: %s", PROCROOT, MIGRATE_REQ, strerror(-rc));
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
	if (lb_config_has_family(cfg, AF_INET) && sysctl_or(NULL, "net/ipv4/ip_forward", -1) == 0)
		lb_warn("net.ipv4.ip_forward is 0: this gateway does not route other traffic between "
			"clients and backends; fix: sysctl -w net.ipv4.ip_forward=1");
	if (lb_config_has_family(cfg, AF_INET6) &&
	    sysctl_or(NULL, "net/ipv6/conf/all/forwarding", -1) == 0)
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
	long long all, valid_mark;
	char name[320];
	struct dirent *de;
	DIR *d;

	if (!lb_config_has_family(cfg, AF_INET))
		return;
	all = sysctl_or(NULL, "net/ipv4/conf/all/rp_filter", 0);
	valid_mark = sysctl_or(NULL, "net/ipv4/conf/all/src_valid_mark", 0);
	d = opendir(PROCROOT "/net/ipv4/conf");
	if (!d)
		return;
	while ((de = readdir(d))) {
		long long rp, vm;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "all") ||
		    !strcmp(de->d_name, "default") || !strcmp(de->d_name, "lo"))
			continue;
		snprintf(name, sizeof(name), "net/ipv4/conf/%s/rp_filter", de->d_name);
		rp = sysctl_or(NULL, name, 0);
		snprintf(name, sizeof(name), "net/ipv4/conf/%s/src_valid_mark", de->d_name);
		vm = sysctl_or(NULL, name, 0);
		if (rp < all)
			rp = all;
		if (rp && (vm || valid_mark))
			lb_warn("interface %s: rp_filter=%lld with src_valid_mark=1 drops intercepted "
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

/* True when IPv6 address a is inside the prefix of interface address ifa. */
static bool on_link6(const struct ifaddrs *ifa, const union lb_sockaddr *a)
{
	const uint8_t *x, *y = a->in6.sin6_addr.s6_addr, *m;

	if (a->sa.sa_family != AF_INET6 || !ifa->ifa_addr || !ifa->ifa_netmask ||
	    ifa->ifa_addr->sa_family != AF_INET6)
		return false;
	x = ((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr.s6_addr;
	m = ((const struct sockaddr_in6 *)ifa->ifa_netmask)->sin6_addr.s6_addr;
	for (size_t i = 0; i < 16; i++)
		if ((x[i] & m[i]) != (y[i] & m[i]))
			return false;
	return true;
}

/* One of this host's addresses, or a broadcast address of its networks. */
struct own_addr {
	union lb_sockaddr addr;
	const char *ifname;
	bool bcast;
};

/*
 * ifs's addresses and broadcast addresses, in ifs's order, each
 * interface's own address before its broadcast address: what
 * check_own_addresses compares every backend and VIP with (a copy, so
 * that 130,000 of them cost a compare each, not a walk of ifs).
 */
static struct own_addr *own_addrs(const struct ifaddrs *ifs, size_t *n)
{
	size_t cap = 0, k = 0;
	struct own_addr *o;

	for (const struct ifaddrs *ifa = ifs; ifa; ifa = ifa->ifa_next)
		cap += 2;
	o = calloc(cap ? cap : 1, sizeof(*o));
	if (!o)
		return NULL;
	for (const struct ifaddrs *ifa = ifs; ifa; ifa = ifa->ifa_next) {
		const struct sockaddr *sa = ifa->ifa_addr;

		if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
			memcpy(&o[k].addr, sa, sa->sa_family == AF_INET ? sizeof(o[k].addr.in) :
									sizeof(o[k].addr.in6));
			o[k++].ifname = ifa->ifa_name;
		}
		if (sa && sa->sa_family == AF_INET && (ifa->ifa_flags & IFF_BROADCAST) &&
		    ifa->ifa_broadaddr && ifa->ifa_broadaddr->sa_family == AF_INET) {
			memcpy(&o[k].addr, ifa->ifa_broadaddr, sizeof(o[k].addr.in));
			/* Without IFA_BROADCAST, getifaddrs() may leave the local address there. */
			if (lb_addr_same_ip(&o[k].addr, sa))
				continue;
			o[k].bcast = true;
			o[k++].ifname = ifa->ifa_name;
		}
	}
	*n = k;
	return o;
}

/* The first of own[n] that is a's address (a broadcast one only when bcast_only). */
static const struct own_addr *own_find(const struct own_addr *own, size_t n,
				       const union lb_sockaddr *a, bool bcast_only)
{
	for (size_t i = 0; i < n; i++)
		if ((own[i].bcast || !bcast_only) && lb_addr_same_ip(a, &own[i].addr.sa))
			return &own[i];
	return NULL;
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
	struct own_addr *own;
	size_t n_own = 0;
	int rc = 0;

	own = own_addrs(ifs, &n_own);
	if (!own)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_services && rc == 0; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		for (size_t j = 0; j < svc->n_backends && rc == 0; j++) {
			const union lb_sockaddr *a = &svc->backends[j].addr;
			const struct own_addr *o = own_find(own, n_own, a, false);

			if (!o)
				continue;
			lb_addr_format(a, text, sizeof(text));
			rc = report(r, true, o->bcast ?
				    "services[%zu].backends[%zu].address: %s is the broadcast "
				    "address of interface %s's network: TCP cannot connect to it" :
				    "services[%zu].backends[%zu].address: %s is an address of "
				    "this gateway (interface %s): lb connects from the client's "
				    "address, so the answers go straight to the client and the "
				    "connect never completes", i, j, text, o->ifname);
		}
		for (size_t j = 0; j < svc->n_vips && rc == 0; j++) {
			const union lb_sockaddr *a = &svc->vips[j];
			const struct own_addr *o;

			/* A prefix may well span a subnet's broadcast address: only a lone VIP is wrong. */
			if (!lb_config_vip_single(svc, j))
				continue;
			o = own_find(own, n_own, a, true);
			if (o)
				rc = report(r, true, "services[%zu].vips[%zu]: %s is the broadcast "
					    "address of interface %s's network: TCP cannot connect to it",
					    i, j, lb_addr_format(a, text, sizeof(text)), o->ifname);
		}
	}
	free(own);
	return rc;
}

static bool global6(const struct ifaddrs *ifa)
{
	const struct in6_addr *a;

	if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET6 || (ifa->ifa_flags & IFF_LOOPBACK))
		return false;
	a = &((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
	return !IN6_IS_ADDR_LINKLOCAL(a) && !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_MULTICAST(a);
}

/*
 * With keep_addr_on_down <= 0 (the default), a link that goes down loses
 * its IPv6 addresses, and with them the routes through it; nothing puts
 * them back when the link returns. On a gateway that cuts IPv6 VIPs off
 * after the shortest flap: the clients' gateway address or the path to the
 * backends is gone. "all" overrides the interface when it is not 0.
 */
static int check_keep_addr(struct lb_preflight_report *r, const struct lb_config *cfg,
			   const struct ifaddrs *ifs, const char *procroot)
{
	long long all = sysctl_or(procroot, "net/ipv6/conf/all/keep_addr_on_down", 0);
	char name[IF_NAMESIZE + 48], via[LB_ADDR_STRLEN + 64], text[LB_ADDR_STRLEN];

	if (!lb_config_has_family(cfg, AF_INET6) || all > 0)
		return 0;
	for (const struct ifaddrs *ifa = ifs; ifa; ifa = ifa->ifa_next) {
		const struct ifaddrs *prev;
		long long dev;

		if (!global6(ifa))
			continue;
		/* One line per interface: skip it if an earlier address named it. */
		for (prev = ifs; prev != ifa; prev = prev->ifa_next)
			if (global6(prev) && !strcmp(prev->ifa_name, ifa->ifa_name))
				break;
		if (prev != ifa)
			continue;
		snprintf(name, sizeof(name), "net/ipv6/conf/%s/keep_addr_on_down", ifa->ifa_name);
		dev = sysctl_or(procroot, name, 0);
		if (all == 0 && dev > 0)
			continue;
		via[0] = '\0';
		for (size_t i = 0; i < cfg->n_services && !via[0]; i++) {
			const struct lb_service_conf *svc = &cfg->services[i];

			for (size_t j = 0; j < svc->n_backends && !via[0]; j++) {
				for (prev = ifs; prev; prev = prev->ifa_next) {
					if (strcmp(prev->ifa_name, ifa->ifa_name) ||
					    !on_link6(prev, &svc->backends[j].addr))
						continue;
					snprintf(via, sizeof(via), " (it reaches backend %s, "
						 "services[%zu].backends[%zu])",
						 lb_addr_format(&svc->backends[j].addr, text,
								sizeof(text)), i, j);
					break;
				}
			}
		}
		if (report(r, false, "interface %s: net.ipv6.conf.%s.keep_addr_on_down is %lld: its "
			   "IPv6 addresses are removed when the link goes down and not restored when "
			   "it comes back, which cuts IPv6 VIPs off after a link flap%s; fix: "
			   "sysctl -w net.ipv6.conf.%s.keep_addr_on_down=1", ifa->ifa_name,
			   all ? "all" : ifa->ifa_name, all ? all : dev, via,
			   all ? "all" : ifa->ifa_name) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Workers set socket_buffer_bytes without privilege (no SO_SNDBUFFORCE),
 * so the kernel clamps it to net.core.wmem_max and rmem_max: a cap above
 * those is no cap at the value asked for.
 */
static int check_buffer_caps(struct lb_preflight_report *r, const struct lb_config *cfg,
			     const char *procroot)
{
	static const char *const names[] = { "rmem_max", "wmem_max" };
	char path[32];

	for (size_t i = 0; i < cfg->n_services; i++) {
		unsigned int want = cfg->services[i].socket_buffer_bytes;

		for (size_t k = 0; want && k < 2; k++) {
			long long max;

			snprintf(path, sizeof(path), "net/core/%s", names[k]);
			max = sysctl_or(procroot, path, -1);
			if (max < 0 || want <= (unsigned long)max)
				continue;
			if (report(r, false, "services[%zu].socket_buffer_bytes: %u is above "
				   "net.core.%s %lld, to which the kernel lowers it; fix: sysctl -w "
				   "net.core.%s=%u", i, want, names[k], max, names[k], want) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/*
 * A SYN flood fills a listener's SYN queue with half-open connections
 * that never complete. With tcp_syncookies 1 the kernel then answers new
 * SYNs with a cookie and keeps no state, so legitimate clients still get
 * in and workers only ever accept completed handshakes; with 0 it drops
 * SYNs until entries time out (63 s at the default tcp_synack_retries), and
 * every new client of the gateway waits or fails meanwhile. 2 sends cookies
 * to every client, flood or not, which costs them their TCP options when
 * timestamps are off.
 */
static int check_syncookies(struct lb_preflight_report *r, const struct lb_config *cfg,
			    const char *procroot)
{
	long long v = sysctl_or(procroot, "net/ipv4/tcp_syncookies", 1);

	if (!lb_config_has_vip(cfg, LB_PROTO_TCP, AF_INET) &&
	    !lb_config_has_vip(cfg, LB_PROTO_TCP, AF_INET6))
		return 0;
	if (v == 0)
		return report(r, false, "net.ipv4.tcp_syncookies is 0: a SYN flood fills each "
			      "worker's SYN queue and every new client is dropped until the flood "
			      "ends; fix: sysctl -w net.ipv4.tcp_syncookies=1");
	if (v == 2)
		return report(r, false, "net.ipv4.tcp_syncookies is 2: every client gets a SYN "
			      "cookie, flood or not, and loses window scaling and SACK when it sends "
			      "no timestamps; 1 sends cookies only while a SYN queue is full; fix: "
			      "sysctl -w net.ipv4.tcp_syncookies=1");
	return 0;
}

/*
 * "fastopen" connects with MSG_FASTOPEN, which the kernel refuses unless
 * net.ipv4.tcp_fastopen (of the gateway's namespace) has its client bit
 * (1): the service still works, without the SYN's data. The other bits
 * serve other uses; the fix keeps them.
 */
static int check_fastopen(struct lb_preflight_report *r, const struct lb_config *cfg,
			  const char *procroot)
{
	long long v = sysctl_or(procroot, "net/ipv4/tcp_fastopen", -1);

	for (size_t i = 0; v >= 0 && !(v & 1) && i < cfg->n_services; i++) {
		if (!cfg->services[i].fastopen)
			continue;
		if (report(r, false, "services[%zu].fastopen: net.ipv4.tcp_fastopen is %lld, without "
			   "the client bit (1): lb connects to this service's backends without TCP "
			   "Fast Open; fix: sysctl -w net.ipv4.tcp_fastopen=%lld", i, v, v | 1) < 0)
			return -ENOMEM;
	}
	return 0;
}

int lb_preflight_check_host(struct lb_preflight_report *r, const struct lb_config *cfg,
			    const struct ifaddrs *ifs, const char *procroot)
{
	int rc;

	*r = (struct lb_preflight_report){ 0 };
	if (!procroot)
		procroot = "/proc/sys";
	rc = check_own_addresses(r, cfg, ifs);
	if (rc == 0)
		rc = check_keep_addr(r, cfg, ifs, procroot);
	if (rc == 0)
		rc = check_buffer_caps(r, cfg, procroot);
	if (rc == 0)
		rc = check_syncookies(r, cfg, procroot);
	if (rc == 0)
		rc = check_fastopen(r, cfg, procroot);
	return rc;
}

int lb_preflight_config(struct lb_preflight_report *r, const struct lb_config *cfg)
{
	struct ifaddrs *ifs = NULL;
	int rc;

	/* Without the list nothing can be compared: the other checks still run. */
	if (getifaddrs(&ifs) == -1)
		ifs = NULL;
	rc = lb_preflight_check_host(r, cfg, ifs, NULL);
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
