// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Least privilege, with libcap-ng. The master stays uid 0, because what it
 * still changes after setup (its nft table, policy routes, the control
 * socket file, tcp_migrate_req) belongs to root, but keeps only the
 * capabilities it uses. Workers run as the configured user with
 * CAP_NET_RAW alone. Nobody here ever executes a program, so the
 * inheritable, ambient and bounding sets are emptied and no_new_privs set:
 * should one be made to exec, it gains nothing. Why each capability is
 * kept: docs/security.md.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cap-ng.h>

#include "lb/log.h"
#include "lb/priv.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static const unsigned int master_caps[] = {
	CAP_NET_ADMIN,		/* nftables and rtnetlink on reload, restore and exit */
	CAP_NET_RAW,		/* the workers' one capability: they inherit it from here */
	CAP_SETUID,		/* workers change to the configured user ... */
	CAP_SETGID,		/* ... and group, dropping supplementary groups */
	CAP_KILL,		/* SIGTERM/SIGKILL to workers, which run as another uid */
	CAP_NET_BIND_SERVICE,	/* lent to workers with UDP VIPs below 1024 (udp_low_ports) */
};

/*
 * A UDP flow's reply socket binds its VIP's port: below 1024 (DNS, HTTP/3)
 * that takes CAP_NET_BIND_SERVICE, which a worker then keeps. TCP never
 * binds a VIP (accepted sockets have it already), so TCP-only workers do
 * without.
 */
static bool udp_low_ports(const struct lb_config *cfg)
{
	for (size_t i = 0; i < cfg->n_services; i++) {
		if (!(cfg->services[i].protocols & LB_PROTO_UDP))
			continue;
		for (size_t j = 0; j < cfg->services[i].n_vips; j++)
			if (lb_addr_port(&cfg->services[i].vips[j]) < 1024)
				return true;
	}
	return false;
}

static int err_or(int fallback)
{
	return errno ? -errno : -fallback;
}

/* Reads the process's sets into libcap-ng's state; logs as "cannot drop privileges<who>". */
static int load_caps(const char *who)
{
	errno = 0;
	if (capng_get_caps_process() == 0)
		return 0;
	lb_err("cannot drop privileges%s: reading the capability sets: %s", who,
	       strerror(errno ? errno : EIO));
	return err_or(EIO);
}

/*
 * Nothing here executes a program, but should something be made to, it
 * must gain nothing by it: the ambient set is emptied and no_new_privs
 * set. Returns NULL, or the step that failed (errno says why).
 */
static const char *seal_exec(void)
{
	errno = 0;
	/* Ambient capabilities came with Linux 4.3; without them there is nothing to clear. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL)
		return "clearing the ambient set";
	errno = 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return "prctl(PR_SET_NO_NEW_PRIVS)";
	return NULL;
}

static bool runs_as(uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1)
		return false;
	return ru == uid && eu == uid && su == uid && rg == gid && eg == gid && sg == gid;
}

int lb_priv_check(const struct lb_config *cfg)
{
	char who[160];

	if (runs_as(cfg->uid, cfg->gid))
		return 0;
	snprintf(who, sizeof(who), " to %s:%s", cfg->user, cfg->group);
	if (load_caps(who) < 0)
		return -EPERM;
	if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETUID) &&
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_SETGID))
		return 0;
	lb_err("cannot drop privileges to %s:%s: lb runs as uid %u gid %u without CAP_SETUID "
	       "and CAP_SETGID; start it as root, or set \"user\" and \"group\" to the ones it "
	       "runs as", cfg->user, cfg->group, (unsigned int)geteuid(), (unsigned int)getegid());
	return -EPERM;
}

int lb_priv_drop_master(void)
{
	bool have[sizeof(master_caps) / sizeof(master_caps[0])];
	const char *what;
	char *kept;
	int rc;

	rc = load_caps("");
	if (rc < 0)
		return rc;
	/* Started without some of them (ambient capabilities, no root): keep what there is. */
	for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++)
		have[i] = capng_have_capability(CAPNG_PERMITTED, master_caps[i]) == 1;
	what = "clearing the bounding set";
	errno = 0;
	if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP)) {
		capng_clear(CAPNG_SELECT_BOUNDS);
		if (capng_apply(CAPNG_SELECT_BOUNDS) != 0)
			goto fail;
	}
	capng_clear(CAPNG_SELECT_CAPS);
	for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++)
		if (have[i])
			capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, master_caps[i]);
	what = "capset";
	errno = 0;
	if (capng_apply(CAPNG_SELECT_CAPS) != 0)
		goto fail;
	what = seal_exec();
	if (what)
		goto fail;
	kept = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_EFFECTIVE);
	lb_info("privileges: master keeps uid %u with %s", (unsigned int)geteuid(),
		kept ? kept : "(unknown)");
	free(kept);
	return 0;
fail:
	rc = err_or(EPERM);
	lb_err("cannot drop privileges of the master: %s: %s", what, strerror(-rc));
	return rc;
}

/*
 * Becomes cfg's user and group keeping CAP_NET_RAW (net_raw) or no
 * capability at all; what = "" or " (http)" names the process in messages.
 */
static int drop_to_user(const struct lb_config *cfg, bool net_raw, const char *proc)
{
	pid_t master = getppid();
	int flags = CAPNG_DROP_SUPP_GRP;
	bool switch_ids;
	const char *what;
	char who[160];
	int rc;

	snprintf(who, sizeof(who), " to %s:%s", cfg->user, cfg->group);
	rc = load_caps(who);
	if (rc < 0)
		return rc;
	switch_ids = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETUID) &&
		     capng_have_capability(CAPNG_EFFECTIVE, CAP_SETGID);
	/*
	 * The master emptied the bounding set already and has no CAP_SETPCAP
	 * to lend: asking capng_change_id() to clear it would make it raise
	 * CAP_SETPCAP, and fail.
	 */
	if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP))
		flags |= CAPNG_CLEAR_BOUNDING;
	capng_clear(CAPNG_SELECT_BOTH);
	if (net_raw)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_RAW);
	if (net_raw && udp_low_ports(cfg))
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_BIND_SERVICE);
	errno = 0;
	if (switch_ids) {
		/* Keeps the selected sets across setresuid() (PR_SET_KEEPCAPS). */
		what = "changing user and group";
		if (capng_change_id(cfg->uid, cfg->gid, flags) != 0)
			goto fail;
	} else if (!runs_as(cfg->uid, cfg->gid)) {
		what = "no CAP_SETUID and CAP_SETGID to change user and group";
		errno = EPERM;
		goto fail;
	} else {
		what = "capset";
		if (capng_apply(CAPNG_SELECT_CAPS) != 0)
			goto fail;
	}
	/* Trust, but verify: a half-done change must not go on serving. */
	what = "still holding other ids or groups after the change";
	errno = EPERM;
	if (!runs_as(cfg->uid, cfg->gid) || (switch_ids && getgroups(0, NULL) != 0))
		goto fail;
	what = net_raw ? "CAP_NET_RAW did not survive the change" : "capabilities left after the change";
	if (capng_get_caps_process() != 0 ||
	    (net_raw && capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_RAW) != 1) ||
	    (!net_raw && capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE))
		goto fail;
	what = seal_exec();
	if (what)
		goto fail;
	/* Other processes of the same user must not ptrace their way to CAP_NET_RAW. */
	what = "prctl(PR_SET_DUMPABLE)";
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		goto fail;
	/* The kernel cleared the parent-death signal when the credentials changed. */
	what = "prctl(PR_SET_PDEATHSIG)";
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1)
		goto fail;
	what = "the master exited meanwhile";
	errno = ESRCH;
	if (getppid() != master)
		goto fail;
	lb_debug("privileges%s: running as %s:%s (uid %u gid %u) with %s", proc, cfg->user,
		 cfg->group, (unsigned int)cfg->uid, (unsigned int)cfg->gid,
		 net_raw ? "cap_net_raw" : "no capability");
	return 0;
fail:
	rc = err_or(EPERM);
	lb_err("cannot drop privileges%s%s: %s: %s", proc, who, what, strerror(-rc));
	return rc;
}

int lb_priv_drop_worker(const struct lb_config *cfg)
{
	return drop_to_user(cfg, true, "");
}

int lb_priv_drop_http(const struct lb_config *cfg)
{
	return drop_to_user(cfg, false, " of the http process");
}

void lb_priv_close_fds(const int *keep, size_t n_keep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int dfd;

	if (!d)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		bool kept = fd <= STDERR_FILENO || fd == dfd || de->d_name[0] == '.';

		for (size_t i = 0; !kept && i < n_keep; i++)
			kept = keep[i] == fd;
		if (!kept)
			close(fd);
	}
	closedir(d);
}
