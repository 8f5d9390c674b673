/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Policy routing for tproxy: packets carrying lb's mark must be delivered
 * locally even though their destination (a VIP) is not a local address.
 * Equivalent to
 *   ip rule add fwmark MARK lookup TABLE pref PRIORITY
 *   ip route replace local default dev lo table TABLE
 * for each family, spoken over rtnetlink. And, for gateway ownership, the
 * way to each peer:
 *   ip route replace default via PEER table TABLE
 *   ip rule add fwmark MARK lookup TABLE pref PRIORITY
 */
#include "nft/netlink.h"
#include "nft/nft.h"
#include "nft/watch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <time.h>

#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

/* Bounds the loop that deletes duplicates an older run may have left. */
#define LB_NFT_RULE_DUPS_MAX	64

struct rtnl {
	struct mnl_socket *nl;
	unsigned int portid;
	uint32_t seq;
};

static int rtnl_open(struct rtnl *r, char *err, size_t errlen)
{
	int ret = lb_nft_netlink_request(&r->nl, NETLINK_ROUTE, "route", "rtnetlink socket", err,
					 errlen);

	if (ret)
		return ret;
	r->portid = mnl_socket_get_portid(r->nl);
	lb_nft_watch_own(NETLINK_ROUTE, r->portid);
	r->seq = (uint32_t)time(NULL);
	return 0;
}

static void rtnl_close(struct rtnl *r)
{
	if (r->nl)
		mnl_socket_close(r->nl);
	r->nl = NULL;
}

/* lb_nft_netlink_talk() on r's socket, with its next sequence number. */
static int rtnl_talk(struct rtnl *r, struct nlmsghdr *nlh, char *why, size_t whylen)
{
	return lb_nft_netlink_talk(r->nl, r->seq++, nlh, why, whylen);
}

static const char *family_name(int family)
{
	return family == AF_INET ? "ipv4" : "ipv6";
}

/* Writes "route: WHAT (FAMILY): [HINT: ][KERNEL TEXT: ]strerror". */
static void explain(const char *what, int family, int ret, const char *why,
		    char *err, size_t errlen)
{
	const char *hint = NULL;

	switch (-ret) {
	case EPERM:
		hint = "no privilege: lb needs CAP_NET_ADMIN (run as root)";
		break;
	case EAFNOSUPPORT:
		hint = family == AF_INET6
			? "kernel lacks IPv6 policy routing (CONFIG_IPV6_MULTIPLE_TABLES) or IPv6"
			: "kernel lacks policy routing (CONFIG_IP_MULTIPLE_TABLES)";
		break;
	case ENETDOWN:
		hint = "device lo is down";
		break;
	case EACCES:
		if (family == AF_INET6)
			hint = "IPv6 is disabled (net.ipv6.conf.lo.disable_ipv6)";
		break;
	}
	snprintf(err, errlen, "route: %s (%s): %s%s%s%s%s", what, family_name(family),
		 hint ? hint : "", hint ? ": " : "", why[0] ? why : "", why[0] ? ": " : "",
		 strerror(-ret));
}

/* A request of type and flags in buf, with a zeroed family header of hdrlen in *hdr. */
static struct nlmsghdr *msg_start(char *buf, uint16_t type, uint16_t flags, size_t hdrlen,
				  void **hdr)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	*hdr = mnl_nlmsg_put_extra_header(nlh, hdrlen);
	return nlh;
}

/* The 8-bit table fields only hold small ids; the attribute always holds the id. */
static uint8_t short_table(uint32_t table)
{
	return table < 256 ? table : RT_TABLE_UNSPEC;
}

static struct nlmsghdr *rule_msg(char *buf, uint16_t type, uint16_t flags, int family,
				 const struct lb_nft_route_spec *spec)
{
	struct fib_rule_hdr *frh;
	struct nlmsghdr *nlh = msg_start(buf, type, flags, sizeof(*frh), (void **)&frh);

	frh->family = family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = short_table(spec->table);
	mnl_attr_put_u32(nlh, FRA_FWMARK, spec->mark);
	mnl_attr_put_u32(nlh, FRA_TABLE, spec->table);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, spec->priority);
	return nlh;
}

static struct nlmsghdr *route_msg(char *buf, uint16_t type, uint16_t flags, int family,
				  const struct lb_nft_route_spec *spec, uint32_t lo)
{
	struct rtmsg *rtm;
	struct nlmsghdr *nlh = msg_start(buf, type, flags, sizeof(*rtm), (void **)&rtm);

	rtm->rtm_family = family;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = short_table(spec->table);
	rtm->rtm_type = RTN_LOCAL;
	if (type == RTM_NEWROUTE) {
		rtm->rtm_protocol = RTPROT_BOOT;
		rtm->rtm_scope = RT_SCOPE_HOST;
	} else {
		/* As ip(8) deletes: any scope, any protocol. */
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	}
	mnl_attr_put_u32(nlh, RTA_TABLE, spec->table);
	mnl_attr_put_u32(nlh, RTA_OIF, lo);
	return nlh;
}

/* Deletes rule "fwmark MARK lookup TABLE pref PRIORITY" of family, every copy; none is fine. */
static int rule_delete(struct rtnl *r, int family, const struct lb_nft_route_spec *spec,
		       char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], why[256], what[96];

	for (int i = 0; i < LB_NFT_RULE_DUPS_MAX; i++) {
		int ret = rtnl_talk(r, rule_msg(buf, RTM_DELRULE, 0, family, spec), why, sizeof(why));

		if (ret == -ENOENT || ret == -ESRCH)
			return 0;
		if (ret) {
			snprintf(what, sizeof(what), "removing rule fwmark 0x%x lookup %u", spec->mark,
				 spec->table);
			explain(what, family, ret, why, err, errlen);
			return ret;
		}
	}
	return 0;
}

/* What route_family() does: remove the rule only when another rule still uses the table. */
enum route_op { ROUTE_REMOVE, ROUTE_ADD, ROUTE_REMOVE_RULE };

static int route_family(struct rtnl *r, const struct lb_nft_route_spec *spec,
			int family, enum route_op op, char *err, size_t errlen)
{
	int add = op == ROUTE_ADD;
	char buf[MNL_SOCKET_BUFFER_SIZE], why[256], what[128], rule[96], route[64];
	struct nlmsghdr *nlh;
	unsigned int lo;
	int ret;

	snprintf(rule, sizeof(rule), "rule fwmark 0x%x lookup %u", spec->mark, spec->table);
	snprintf(route, sizeof(route), "route local default dev lo table %u", spec->table);
	lo = if_nametoindex("lo");
	if (lo == 0) {
		ret = -errno;
		snprintf(err, errlen, "route: %s %s (%s): no loopback device: %s",
			 add ? "adding" : "removing", route, family_name(family), strerror(-ret));
		return ret;
	}

	if (add) {
		/* EXCL makes an identical existing rule an EEXIST instead of a
		 * duplicate, without the gap a delete-then-add would open. */
		nlh = rule_msg(buf, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, spec);
		ret = rtnl_talk(r, nlh, why, sizeof(why));
		if (ret && ret != -EEXIST) {
			snprintf(what, sizeof(what), "adding %s", rule);
			explain(what, family, ret, why, err, errlen);
			return ret;
		}
		nlh = route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, family, spec, lo);
		ret = rtnl_talk(r, nlh, why, sizeof(why));
		if (ret) {
			snprintf(what, sizeof(what), "adding %s", route);
			explain(what, family, ret, why, err, errlen);
			return ret;
		}
		return 0;
	}

	/* Rule first, so no marked packet is looked up in an empty table. */
	ret = rule_delete(r, family, spec, err, errlen);
	if (ret || op == ROUTE_REMOVE_RULE)
		return ret;
	nlh = route_msg(buf, RTM_DELROUTE, 0, family, spec, lo);
	ret = rtnl_talk(r, nlh, why, sizeof(why));
	if (ret && ret != -ENOENT && ret != -ESRCH) {
		snprintf(what, sizeof(what), "removing %s", route);
		explain(what, family, ret, why, err, errlen);
		return ret;
	}
	return 0;
}

static int route_run(const struct lb_nft_route_spec *spec, enum route_op op, char *err,
		     size_t errlen)
{
	struct rtnl r = { 0 };
	int ret;

	if (!spec || spec->table == 0 || spec->table == RT_TABLE_UNSPEC ||
	    spec->table == RT_TABLE_MAIN || spec->table == RT_TABLE_LOCAL ||
	    spec->table == RT_TABLE_DEFAULT) {
		/* A local default route in a system table would swallow all
		 * traffic, marked or not. */
		snprintf(err, errlen, "route: table %u is reserved; use another routing table",
			 spec ? spec->table : 0);
		return -EINVAL;
	}
	ret = rtnl_open(&r, err, errlen);
	if (ret)
		return ret;
	if (spec->ipv4) {
		ret = route_family(&r, spec, AF_INET, op, err, errlen);
		/* Removal goes on to IPv6 anyway: leave as little behind as we can. */
		if (ret && op == ROUTE_ADD)
			goto cleanup;
	}
	if (spec->ipv6) {
		int ret6 = route_family(&r, spec, AF_INET6, op,
					ret ? NULL : err, ret ? 0 : errlen);

		if (!ret)
			ret = ret6;
	}
cleanup:
	rtnl_close(&r);
	return ret;
}

int lb_nft_route_apply(const struct lb_nft_route_spec *spec, char *err, size_t errlen)
{
	return route_run(spec, ROUTE_ADD, err, errlen);
}

int lb_nft_route_remove(const struct lb_nft_route_spec *spec, char *err, size_t errlen)
{
	return route_run(spec, ROUTE_REMOVE, err, errlen);
}

int lb_nft_route_remove_rule(const struct lb_nft_route_spec *spec, char *err, size_t errlen)
{
	return route_run(spec, ROUTE_REMOVE_RULE, err, errlen);
}

/* "default via GATEWAY table TABLE" (delete: the table's default route, whatever it is). */
static struct nlmsghdr *via_msg(char *buf, uint16_t type, uint16_t flags, int family,
				uint32_t table, const struct sockaddr *via)
{
	struct rtmsg *rtm;
	struct nlmsghdr *nlh = msg_start(buf, type, flags, sizeof(*rtm), (void **)&rtm);

	rtm->rtm_family = family;
	rtm->rtm_table = short_table(table);
	rtm->rtm_type = RTN_UNICAST;
	if (type == RTM_NEWROUTE) {
		rtm->rtm_protocol = RTPROT_BOOT;
		rtm->rtm_scope = RT_SCOPE_UNIVERSE;
		if (family == AF_INET)
			mnl_attr_put(nlh, RTA_GATEWAY, 4, &((const struct sockaddr_in *)via)->sin_addr);
		else
			mnl_attr_put(nlh, RTA_GATEWAY, 16,
				     &((const struct sockaddr_in6 *)via)->sin6_addr);
	} else {
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	}
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	return nlh;
}

/* One peer's rule and route of one family, added or removed. */
static int fwd_family(struct rtnl *r, const struct lb_nft_fwd_route *fr, uint32_t priority,
		      int family, enum route_op op, char *err, size_t errlen)
{
	int add = op == ROUTE_ADD;
	const struct lb_nft_route_spec rs = { .mark = fr->mark, .table = fr->table,
					      .priority = priority };
	const struct sockaddr *via = family == AF_INET ? fr->via4 : fr->via6;
	char buf[MNL_SOCKET_BUFFER_SIZE], why[256], what[160], gw[INET6_ADDRSTRLEN] = "?";
	struct nlmsghdr *nlh;
	int ret;

	if (via)
		inet_ntop(family, family == AF_INET
				  ? (const void *)&((const struct sockaddr_in *)via)->sin_addr
				  : (const void *)&((const struct sockaddr_in6 *)via)->sin6_addr,
			  gw, sizeof(gw));
	if (add) {
		/* The route first: a marked packet never meets an empty table. */
		nlh = via_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, family, fr->table, via);
		ret = rtnl_talk(r, nlh, why, sizeof(why));
		if (ret) {
			snprintf(what, sizeof(what), "adding route default via %s table %u", gw,
				 fr->table);
			if (ret == -ENETUNREACH && !why[0])
				snprintf(why, sizeof(why), "no interface of this gateway is on %s's "
					 "network", gw);
			explain(what, family, ret, why, err, errlen);
			return ret;
		}
		nlh = rule_msg(buf, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, &rs);
		ret = rtnl_talk(r, nlh, why, sizeof(why));
		if (ret && ret != -EEXIST) {
			snprintf(what, sizeof(what), "adding rule fwmark 0x%x lookup %u", fr->mark,
				 fr->table);
			explain(what, family, ret, why, err, errlen);
			return ret;
		}
		return 0;
	}
	ret = rule_delete(r, family, &rs, err, errlen);
	if (ret || op == ROUTE_REMOVE_RULE)
		return ret;
	nlh = via_msg(buf, RTM_DELROUTE, 0, family, fr->table, NULL);
	ret = rtnl_talk(r, nlh, why, sizeof(why));
	if (ret && ret != -ENOENT && ret != -ESRCH) {
		snprintf(what, sizeof(what), "removing the default route of table %u", fr->table);
		explain(what, family, ret, why, err, errlen);
		return ret;
	}
	return 0;
}

static int fwd_run(const struct lb_nft_fwd_route *routes, size_t n, uint32_t priority,
		   enum route_op op, char *err, size_t errlen)
{
	struct rtnl r = { 0 };
	int ret = 0;

	for (size_t i = 0; i < n; i++)
		if (routes[i].table == 0 || (routes[i].table >= RT_TABLE_DEFAULT &&
					     routes[i].table <= RT_TABLE_LOCAL)) {
			snprintf(err, errlen, "route: table %u is reserved; use another routing table",
				 routes[i].table);
			return -EINVAL;
		}
	ret = rtnl_open(&r, err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;
			int rc;

			if (!(f ? routes[i].via6 : routes[i].via4))
				continue;
			/* Removal goes on: leave as little behind as we can. */
			rc = fwd_family(&r, &routes[i], priority, family, op,
					ret ? NULL : err, ret ? 0 : errlen);
			if (rc && !ret)
				ret = rc;
			if (ret && op == ROUTE_ADD)
				goto cleanup;
		}
	}
cleanup:
	rtnl_close(&r);
	return ret;
}

int lb_nft_fwd_apply(const struct lb_nft_fwd_route *routes, size_t n, uint32_t priority,
		     char *err, size_t errlen)
{
	return fwd_run(routes, n, priority, ROUTE_ADD, err, errlen);
}

int lb_nft_fwd_remove(const struct lb_nft_fwd_route *routes, size_t n, uint32_t priority,
		      char *err, size_t errlen)
{
	return fwd_run(routes, n, priority, ROUTE_REMOVE, err, errlen);
}

int lb_nft_fwd_remove_rule(const struct lb_nft_fwd_route *routes, size_t n, uint32_t priority,
			   char *err, size_t errlen)
{
	return fwd_run(routes, n, priority, ROUTE_REMOVE_RULE, err, errlen);
}
