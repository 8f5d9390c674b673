/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_PREFLIGHT_H
#define LB_PREFLIGHT_H

#include <ifaddrs.h>
#include <stddef.h>

#include "lb/config.h"

/*
 * Checks what lb needs from the host before it changes anything: the
 * capabilities it must hold (fatal), the sysctls that silently break
 * transparent proxying (warnings), and cfg against this host
 * (lb_preflight_config_log). Each problem is logged with its fix.
 * Returns 0, -EPERM when lb cannot run, or -EINVAL when cfg cannot work here.
 */
int lb_preflight(const struct lb_config *cfg);

/* What the host checks of a config found: owned lines, no newline. */
struct lb_preflight_report {
	char **errors;			/* can never work: lb refuses the config */
	size_t n_errors;
	char **warnings;		/* works until a fault: lb says so */
	size_t n_warnings;
};

/*
 * Checks cfg against the host described by ifs (getifaddrs) and the sysctl
 * tree at procroot (NULL: "/proc/sys"): backends that are one of the
 * gateway's own addresses or a broadcast address of its networks (errors),
 * interfaces whose IPv6 addresses vanish when their link goes down,
 * socket_buffer_bytes above what the kernel allows, and fastopen services
 * on a gateway whose net.ipv4.tcp_fastopen lacks the client bit
 * (warnings). Lines start with the JSON path or "interface NAME". Returns 0
 * or -ENOMEM; release with lb_preflight_report_fini() either way.
 */
int lb_preflight_check_host(struct lb_preflight_report *r, const struct lb_config *cfg,
			    const struct ifaddrs *ifs, const char *procroot);

/* lb_preflight_check_host() on this host's interfaces; for lb -t, start and reload. */
int lb_preflight_config(struct lb_preflight_report *r, const struct lb_config *cfg);

void lb_preflight_report_fini(struct lb_preflight_report *r);

/*
 * Reads up to n integers from the sysctl file procroot/name (procroot
 * NULL: "/proc/sys"; name like "net/ipv4/tcp_mem") into v. Returns how many
 * it read, 0 when the file cannot be read; the rest of v is left alone.
 */
size_t lb_preflight_sysctl(const char *procroot, const char *name, long long *v, size_t n);

/*
 * A listening socket closed on reload (fewer workers, another port) hands
 * its queued connections to the rest of its SO_REUSEPORT group only with
 * net.ipv4.tcp_migrate_req, so lb sets it in its namespace (and warns when
 * the kernel lacks it). Returns the value to restore at exit, or -1 when
 * nothing was changed.
 */
int lb_preflight_migrate_req(void);

/* Puts tcp_migrate_req back to saved (what lb_preflight_migrate_req() returned; -1: nothing). */
void lb_preflight_migrate_restore(int saved);

/*
 * At start and on reload: logs cfg's own warnings (cfg->warnings) and what
 * lb_preflight_config() finds, each line after prefix. Returns 0, or
 * -EINVAL when cfg cannot work here, with the first error in msg (if not
 * NULL).
 */
int lb_preflight_config_log(const struct lb_config *cfg, const char *prefix, char *msg,
			    size_t len);

#endif
