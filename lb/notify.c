// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lb/notify.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#ifndef HAVE_LIBSYSTEMD
/*
 * The whole protocol, as sd_notify(3) documents it: one datagram of
 * newline-separated assignments to the AF_UNIX socket named by
 * NOTIFY_SOCKET, where a leading '@' means the abstract namespace.
 */
static int notify_send(const char *path, const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	socklen_t salen;
	int fd, rc = 0;

	if (len < 2 || len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/');
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) == -1)
		rc = -errno;
	close(fd);
	return rc;
}
#endif

int lb_notify(const char *state)
{
	char buf[256];
	const char *msg = state;

	/* Type=notify-reload wants to know when the reload began. */
	if (!strcmp(state, "RELOADING=1")) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu\n",
			 (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000);
	} else {
		/* One assignment a line, the last one ended too: readers can split on it. */
		snprintf(buf, sizeof(buf), "%s\n", state);
	}
	msg = buf;
#ifdef HAVE_LIBSYSTEMD
	{
		int rc = sd_notify(0, msg);

		return rc < 0 ? rc : 0;
	}
#else
	{
		const char *path = getenv("NOTIFY_SOCKET");

		return path ? notify_send(path, msg) : 0;
	}
#endif
}
