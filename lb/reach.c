// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
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

struct lb_reach_memo {
	uint64_t **down;		/* per service, per backend: ms of the last path failure */
	size_t n;
};

struct lb_reach_memo *lb_reach_memo_alloc(const struct lb_config *cfg)
{
	struct lb_reach_memo *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->n = cfg->n_services;
	m->down = calloc(m->n ? m->n : 1, sizeof(*m->down));
	if (!m->down)
		goto fail;
	for (size_t i = 0; i < m->n; i++) {
		m->down[i] = calloc(cfg->services[i].n_backends + 1, sizeof(**m->down));
		if (!m->down[i])
			goto fail;
	}
	return m;
fail:
	lb_reach_memo_free(m);
	return NULL;
}

void lb_reach_memo_free(struct lb_reach_memo *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->down && i < m->n; i++)
		free(m->down[i]);
	free(m->down);
	free(m);
}

bool lb_reach_failed(struct lb_reach_memo *m, size_t svc, unsigned int idx,
		     const union lb_sockaddr *dst, int err, bool sync, uint64_t started,
		     uint64_t now)
{
	uint64_t *seen = &m->down[svc][idx];
	bool local;

	if (!sync && *seen && *seen >= started &&
	    (err == ETIMEDOUT || err == ENETUNREACH || err == EHOSTUNREACH))
		local = true;
	else
		local = lb_reach_local(dst, err, sync);
	if (local)
		*seen = now;
	return local;
}
