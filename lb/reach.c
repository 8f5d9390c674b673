// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/reach.h"

static bool route_error(int err)
{
	return err == ENETUNREACH || err == EHOSTUNREACH;
}

/*
 * A connected UDP socket asks the routing table without sending a packet.
 * The route's interface is not returned, but the source address it picks
 * lives on it (the kernel prefers the outgoing interface's own addresses),
 * and that interface's flags say whether it is up with carrier. Routes
 * through a link without carrier stay in the table (marked linkdown) and
 * connects over them wait for a neighbour that never answers: only the
 * flags tell.
 */
bool lb_reach_path_down(const union lb_sockaddr *dst)
{
	union lb_sockaddr src;
	socklen_t len = sizeof(src);
	struct ifaddrs *ifs, *ifa;
	bool down = false;
	int fd, rc;

	fd = socket(dst->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return false;
	rc = connect(fd, &dst->sa, lb_addr_len(dst)) == -1 ? errno : 0;
	if (rc == 0 && getsockname(fd, &src.sa, &len) == -1)
		rc = -1;
	close(fd);
	if (rc)
		return route_error(rc);
	if (getifaddrs(&ifs) == -1)
		return false;
	for (ifa = ifs; ifa; ifa = ifa->ifa_next) {
		if (!lb_addr_same_ip(&src, ifa->ifa_addr))
			continue;
		down = !(ifa->ifa_flags & IFF_UP) || !(ifa->ifa_flags & IFF_RUNNING);
		break;
	}
	freeifaddrs(ifs);
	return down;
}

bool lb_reach_local(const union lb_sockaddr *dst, int err, bool sync)
{
	if (sync)
		return route_error(err);
	if (!route_error(err) && err != ETIMEDOUT)
		return false;
	return lb_reach_path_down(dst);
}
