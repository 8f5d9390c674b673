/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_PRIV_H
#define LB_PRIV_H

#include <stddef.h>

#include "lb/config.h"

/*
 * Least privilege (docs/security.md). Each function logs its own failure,
 * once, naming the step and the user; callers only act on the result.
 */

/*
 * Can workers run as cfg->uid:cfg->gid? Yes when lb already runs as them
 * or holds CAP_SETUID and CAP_SETGID. Call before forking workers and on
 * each reload, so a user lb cannot switch to fails the start or the
 * reload rather than every worker. Returns 0 or -EPERM (logged).
 */
int lb_priv_check(const struct lb_config *cfg);

/*
 * In the master, once its privileged setup is done (listeners, control
 * socket, rules, routes, tcp_migrate_req): keeps uid 0 and, of what it
 * holds, CAP_NET_ADMIN, CAP_NET_RAW, CAP_SETUID, CAP_SETGID and CAP_KILL in
 * its effective and permitted sets; clears the inheritable, ambient and
 * bounding sets and sets no_new_privs. Workers forked afterwards inherit
 * the result. Returns 0 or -errno (logged).
 */
int lb_priv_drop_master(void);

/*
 * In a freshly forked worker, after it closed the master's descriptors:
 * becomes cfg->uid:cfg->gid without supplementary groups, keeps only
 * CAP_NET_RAW (effective and permitted; for IP_TRANSPARENT upstream
 * sockets), clears the inheritable, ambient and bounding sets, sets
 * no_new_privs and makes itself non-dumpable. The id change resets the
 * parent-death signal: it is set again (SIGKILL) and the master checked
 * to be still there. Returns 0 or -errno (logged); the worker must then
 * exit.
 */
int lb_priv_drop_worker(const struct lb_config *cfg);

/* The same for the HTTP process (lb/http.c), which keeps no capability at all. */
int lb_priv_drop_http(const struct lb_config *cfg);

/* In a freshly forked child: closes every inherited fd but stdio and keep[]. */
void lb_priv_close_fds(const int *keep, size_t n_keep);

#endif
