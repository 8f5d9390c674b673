/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NOTIFY_H
#define LB_NOTIFY_H

/*
 * Tells the service manager about lb's state (systemd Type=notify):
 * "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...". A no-op unless
 * NOTIFY_SOCKET is set. Uses libsystemd's sd_notify() when lb was built
 * with it, else sends the datagram itself. Returns 0 (also when there is no
 * manager) or -errno.
 */
int lb_notify(const char *state);

#endif
