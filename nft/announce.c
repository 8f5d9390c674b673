/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VIP host routes on a TUN device of lb's own, spoken over rtnetlink:
 *   ip tuntap add mode tun name DEV   (but held open, never persistent)
 *   ip link set DEV addrgenmode none up
 *   ip route replace ADDR/32 dev DEV table T proto P
 * The TUN file descriptor is what keeps the device, and so the routes, in
 * the kernel; nothing is ever read from or written to it.
 */
#include "nft/announce.h"
#include "nft/netlink.h"
#include "nft/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#define TUN_PATH	"/dev/net/tun"
struct lb_nft_announce {
	int tun;
	unsigned int ifindex;
	char dev[IFNAMSIZ];
	struct mnl_socket *nl;
	uint32_t seq;
};

/* lb_nft_netlink_talk() with the next sequence number; the kernel's text, if any, in why. */
static int talk(struct lb_nft_announce *a, struct nlmsghdr *nlh, char *why, size_t whylen)
{
	return lb_nft_netlink_talk(a->nl, ++a->seq, nlh, why, whylen);
}

/* "ip link set DEV addrgenmode none" and then "up", as two requests: the mode must come first. */
static int link_up(struct lb_nft_announce *a, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *spec, *in6;
	char why[256];
	int rc;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)a->ifindex;
	spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	in6 = mnl_attr_nest_start(nlh, AF_INET6);
	mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
	mnl_attr_nest_end(nlh, in6);
	mnl_attr_nest_end(nlh, spec);
	/* Without IPv6 there is no link-local address to keep off it either. */
	talk(a, nlh, why, sizeof(why));

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)a->ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	rc = talk(a, nlh, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "announce: setting device %s up: %s%s%s", a->dev, why,
			 why[0] ? ": " : "", strerror(-rc));
	return rc;
}

static int tun_create(struct lb_nft_announce *a, char *err, size_t errlen)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	int rc;

	a->tun = open(TUN_PATH, O_RDWR | O_CLOEXEC);
	if (a->tun == -1) {
		rc = -errno;
		snprintf(err, errlen, "announce: opening %s: %s%s", TUN_PATH, strerror(-rc),
			 rc == -ENOENT ? " (kernel without TUN, or no device node: modprobe tun)"
			 : rc == -EACCES || rc == -EPERM ? " (lb needs CAP_NET_ADMIN)" : "");
		return rc;
	}
	memcpy(ifr.ifr_name, a->dev, sizeof(ifr.ifr_name));
	if (ioctl(a->tun, TUNSETIFF, &ifr) == -1) {
		rc = -errno;
		snprintf(err, errlen, "announce: creating TUN device %s: %s%s", a->dev,
			 strerror(-rc),
			 rc == -EBUSY ? " (another process holds it: is another lb running?)"
			 : rc == -EINVAL ? " (a device of another kind has that name)"
			 : rc == -EPERM ? " (lb needs CAP_NET_ADMIN)" : "");
		return rc;
	}
	/* An existing persistent device would take the routes over and outlive lb. */
	if (ioctl(a->tun, TUNGETIFF, &ifr) == 0 && (ifr.ifr_flags & IFF_PERSIST)) {
		snprintf(err, errlen, "announce: TUN device %s exists and is persistent: routes "
			 "through it would outlive lb; remove it (ip link del %s) or name another "
			 "announce.device", a->dev, a->dev);
		return -EEXIST;
	}
	a->ifindex = if_nametoindex(a->dev);
	if (a->ifindex == 0) {
		rc = -errno;
		snprintf(err, errlen, "announce: device %s vanished: %s", a->dev, strerror(-rc));
		return rc;
	}
	return 0;
}

int lb_nft_announce_open(struct lb_nft_announce **out, const char *dev, char *err,
			 size_t errlen)
{
	struct lb_nft_announce *a;
	int rc;

	*out = NULL;
	if (!dev || !*dev || strlen(dev) >= IFNAMSIZ) {
		snprintf(err, errlen, "announce: device name must be 1..%d bytes", IFNAMSIZ - 1);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "announce: out of memory");
		return -ENOMEM;
	}
	a->tun = -1;
	snprintf(a->dev, sizeof(a->dev), "%s", dev);
	a->seq = (uint32_t)time(NULL);
	rc = lb_nft_netlink_request(&a->nl, NETLINK_ROUTE, "announce", "rtnetlink socket", err,
				    errlen);
	/* lb's rules watch need not hear of these routes: they are not its own. */
	if (rc == 0)
		lb_nft_watch_own_kept(NETLINK_ROUTE, mnl_socket_get_portid(a->nl), true);
	if (rc == 0)
		rc = tun_create(a, err, errlen);
	if (rc == 0)
		rc = link_up(a, err, errlen);
	if (rc < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	lb_nft_announce_close(a);
	return rc;
}

void lb_nft_announce_close(struct lb_nft_announce *a)
{
	if (!a)
		return;
	if (a->tun >= 0)
		close(a->tun);
	if (a->nl) {
		lb_nft_watch_own_kept(NETLINK_ROUTE, mnl_socket_get_portid(a->nl), false);
		mnl_socket_close(a->nl);
	}
	free(a);
}

unsigned int lb_nft_announce_ifindex(const struct lb_nft_announce *a)
{
	return a->ifindex;
}

struct nlmsghdr *lb_nft_announce_build(void *buf, bool add, const struct lb_nft_announce_spec *spec,
				       unsigned int ifindex, const struct sockaddr *addr, uint8_t plen)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	if ((addr->sa_family != AF_INET || plen > 32) && (addr->sa_family != AF_INET6 || plen > 128))
		return NULL;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	/* Replace: a route left in the table for the same VIP becomes lb's. */
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_REPLACE : 0;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = addr->sa_family;
	rtm->rtm_table = spec->table < 256 ? spec->table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = spec->protocol;
	rtm->rtm_type = RTN_UNICAST;
	/* As ip(8) would: a route through a device alone is on-link for IPv4. */
	rtm->rtm_scope = add ? (addr->sa_family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE)
			     : RT_SCOPE_NOWHERE;
	rtm->rtm_dst_len = plen;
	if (addr->sa_family == AF_INET)
		mnl_attr_put(nlh, RTA_DST, 4, &((const struct sockaddr_in *)addr)->sin_addr);
	else
		mnl_attr_put(nlh, RTA_DST, 16, &((const struct sockaddr_in6 *)addr)->sin6_addr);
	mnl_attr_put_u32(nlh, RTA_TABLE, spec->table);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return nlh;
}

static int route(struct lb_nft_announce *a, bool add, const struct lb_nft_announce_spec *spec,
		 const struct sockaddr *addr, uint8_t plen, char *err, size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[LB_NFT_ANNOUNCE_MSG_MAX];
	struct nlmsghdr *nlh = lb_nft_announce_build(buf, add, spec, a->ifindex, addr, plen);
	char text[INET6_ADDRSTRLEN] = "?", why[256];
	const char *hint = "";
	int rc;

	if (!nlh) {
		snprintf(err, errlen, "announce: address family %d with prefix length %u is "
			 "not an IPv4 or IPv6 prefix", addr->sa_family, plen);
		return -EINVAL;
	}
	rc = talk(a, nlh, why, sizeof(why));
	if (rc == 0 || (!add && (rc == -ESRCH || rc == -ENOENT)))
		return 0;
	inet_ntop(addr->sa_family, addr->sa_family == AF_INET
		  ? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
		  : (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr, text,
		  sizeof(text));
	if (rc == -EPERM)
		hint = " (lb needs CAP_NET_ADMIN)";
	else if (rc == -EACCES && addr->sa_family == AF_INET6)
		hint = " (IPv6 is disabled on the device: net.ipv6.conf.default.disable_ipv6)";
	else if (rc == -ENETDOWN)
		hint = " (the device is down)";
	snprintf(err, errlen, "announce: %s route %s/%d dev %s table %u proto %u: %s%s%s%s",
		 add ? "adding" : "deleting", text, plen, a->dev, spec->table, spec->protocol, why,
		 why[0] ? ": " : "", strerror(-rc), hint);
	return rc;
}

int lb_nft_announce_add(struct lb_nft_announce *a, const struct lb_nft_announce_spec *spec,
			const struct sockaddr *addr, uint8_t plen, char *err, size_t errlen)
{
	return route(a, true, spec, addr, plen, err, errlen);
}

int lb_nft_announce_del(struct lb_nft_announce *a, const struct lb_nft_announce_spec *spec,
			const struct sockaddr *addr, uint8_t plen, char *err, size_t errlen)
{
	return route(a, false, spec, addr, plen, err, errlen);
}
