/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Subscribes to the kernel's nftables and policy-routing notifications and
 * turns those that take away lb's objects into events. Every notification
 * carries, in nlmsg_pid, the netlink port of the socket whose request
 * caused it: that is how lb's own changes (from the ports apply.c and
 * route.c record) are told from everyone else's. nftables transactions end
 * with an NFT_MSG_NEWGEN naming the committing process; routing changes
 * name only the port, which for most tools (ip, nft) is their pid.
 */
#include "nft/netlink.h"
#include "nft/watch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/fib_rules.h>
#include <linux/filter.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

/* A routing daemon can change many routes at once; lost notifications cost a full re-check. */
#define LB_NFT_WATCH_RCVBUF	(4 << 20)
/* Reads per call, so a flood of unrelated route changes cannot hold the caller's loop. */
#define LB_NFT_WATCH_READS	64
/* Larger than any one notification (the kernel builds them in NLMSG_GOODSIZE). */
#define LB_NFT_WATCH_BUFSIZE	65536
/* lb opens at most a few request sockets per reload or restore; events are read in between. */
#define LB_NFT_OWN_MAX		32
/* Request sockets that live as long as lb (announce.c's): never pushed out by newer ones. */
#define LB_NFT_KEPT_MAX		4
/* Highest attribute type any parsed message uses. */
#define LB_NFT_ATTR_MAX		31

struct lb_nft_watch {
	struct mnl_socket *nl[LB_NFT_WATCH_NSRC];
	struct lb_nft_watch_event txn;	/* the nftables transaction being received */
	bool txn_table;			/* txn.what is about the table itself */
	_Alignas(struct nlmsghdr) char buf[LB_NFT_WATCH_BUFSIZE];
};

static struct {
	int proto;
	uint32_t portid;
} own[LB_NFT_OWN_MAX], kept[LB_NFT_KEPT_MAX];
static size_t n_own;
/* The watch that is open, whose sockets drop lb's own notifications. */
static struct lb_nft_watch *active;

/*
 * Has the kernel drop, before they are queued, the notifications of src's
 * protocol that lb's own request ports caused: a transaction of 100,000
 * VIP elements makes as many notifications, which would overrun the
 * queue (and lb would take its own install for a removal it missed).
 * The kernel sends one transaction's notifications together, all with the
 * port of the socket that asked. A classic BPF program: load nlmsg_pid,
 * compare it with each own port (BPF loads big-endian), drop on a match.
 * Without the filter (it failed) lb sees and ignores them, as before.
 */
static void filter_own(struct lb_nft_watch *w, enum lb_nft_watch_src src, int proto)
{
	struct sock_filter prog[LB_NFT_OWN_MAX + LB_NFT_KEPT_MAX + 3];
	struct sock_fprog fprog = { .filter = prog };
	size_t n = n_own < LB_NFT_OWN_MAX ? n_own : LB_NFT_OWN_MAX, k = 0, len = 0;
	uint32_t ports[LB_NFT_OWN_MAX + LB_NFT_KEPT_MAX];

	if (!w || !w->nl[src])
		return;
	for (size_t i = 0; i < n; i++)
		if (own[i].proto == proto && own[i].portid)
			ports[k++] = own[i].portid;
	for (size_t i = 0; i < LB_NFT_KEPT_MAX; i++)
		if (kept[i].proto == proto && kept[i].portid)
			ports[k++] = kept[i].portid;
	prog[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						   offsetof(struct nlmsghdr, nlmsg_pid));
	for (size_t i = 0; i < k; i++)
		prog[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							   ntohl(ports[i]), (uint8_t)(k - i), 0);
	prog[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
	prog[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	fprog.len = (unsigned short)len;
	setsockopt(mnl_socket_get_fd(w->nl[src]), SOL_SOCKET, SO_ATTACH_FILTER, &fprog,
		   sizeof(fprog));
}

void lb_nft_watch_own(int proto, uint32_t portid)
{
	own[n_own % LB_NFT_OWN_MAX].proto = proto;
	own[n_own % LB_NFT_OWN_MAX].portid = portid;
	n_own++;
	filter_own(active, proto == NETLINK_NETFILTER ? LB_NFT_WATCH_NFT : LB_NFT_WATCH_ROUTE,
		   proto);
}

void lb_nft_watch_own_kept(int proto, uint32_t portid, bool on)
{
	size_t free_slot = LB_NFT_KEPT_MAX;

	for (size_t i = 0; i < LB_NFT_KEPT_MAX; i++) {
		if (kept[i].proto == proto && kept[i].portid == portid) {
			if (!on)
				kept[i].portid = 0;
			free_slot = LB_NFT_KEPT_MAX + 1;
			break;
		}
		if (!kept[i].portid && free_slot == LB_NFT_KEPT_MAX)
			free_slot = i;
	}
	if (on && free_slot < LB_NFT_KEPT_MAX) {
		kept[free_slot].proto = proto;
		kept[free_slot].portid = portid;
	}
	filter_own(active, proto == NETLINK_NETFILTER ? LB_NFT_WATCH_NFT : LB_NFT_WATCH_ROUTE,
		   proto);
}

static bool is_own(int proto, uint32_t portid)
{
	size_t n = n_own < LB_NFT_OWN_MAX ? n_own : LB_NFT_OWN_MAX;

	/* Port 0 is the kernel itself, never lb. */
	for (size_t i = 0; portid && i < n; i++)
		if (own[i].proto == proto && own[i].portid == portid)
			return true;
	for (size_t i = 0; portid && i < LB_NFT_KEPT_MAX; i++)
		if (kept[i].proto == proto && kept[i].portid == portid)
			return true;
	return false;
}

struct lb_nft_watch *lb_nft_watch_alloc(void)
{
	return calloc(1, sizeof(struct lb_nft_watch));
}

void lb_nft_watch_free(struct lb_nft_watch *w)
{
	if (!w)
		return;
	if (active == w)
		active = NULL;
	for (size_t i = 0; i < LB_NFT_WATCH_NSRC; i++)
		if (w->nl[i])
			mnl_socket_close(w->nl[i]);
	free(w);
}

static int open_src(struct lb_nft_watch *w, enum lb_nft_watch_src src, int proto,
		    const unsigned int *groups, size_t n_groups, const char *what,
		    char *err, size_t errlen)
{
	struct mnl_socket *nl;
	char sock[96];
	int ret;

	snprintf(sock, sizeof(sock), "a netlink socket for %s", what);
	ret = lb_nft_netlink_open(&nl, proto, SOCK_NONBLOCK | SOCK_CLOEXEC, "watch", sock, err,
				  errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < n_groups; i++) {
		unsigned int group = groups[i];

		if (mnl_socket_setsockopt(nl, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) == -1) {
			ret = -errno;
			snprintf(err, errlen, "watch: subscribing to %s: %s%s", what,
				 ret == -EPERM ? "no privilege: lb needs CAP_NET_ADMIN: " : "",
				 strerror(-ret));
			goto fail;
		}
	}
	lb_nft_netlink_sockbuf(mnl_socket_get_fd(nl), SO_RCVBUFFORCE, SO_RCVBUF,
			       LB_NFT_WATCH_RCVBUF);
	w->nl[src] = nl;
	return 0;
fail:
	mnl_socket_close(nl);
	return ret;
}

int lb_nft_watch_open(struct lb_nft_watch *w, char *err, size_t errlen)
{
	static const unsigned int nft_groups[] = { NFNLGRP_NFTABLES };
	static const unsigned int route_groups[] = {
		RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE,
	};
	int ret;

	ret = open_src(w, LB_NFT_WATCH_NFT, NETLINK_NETFILTER, nft_groups, 1,
		       "nftables notifications", err, errlen);
	if (ret)
		return ret;
	ret = open_src(w, LB_NFT_WATCH_ROUTE, NETLINK_ROUTE, route_groups,
		       sizeof(route_groups) / sizeof(route_groups[0]),
		       "routing rule and route notifications", err, errlen);
	if (ret)
		return ret;
	active = w;
	filter_own(w, LB_NFT_WATCH_NFT, NETLINK_NETFILTER);
	filter_own(w, LB_NFT_WATCH_ROUTE, NETLINK_ROUTE);
	return 0;
}

int lb_nft_watch_fd(const struct lb_nft_watch *w, enum lb_nft_watch_src src)
{
	return w->nl[src] ? mnl_socket_get_fd(w->nl[src]) : -1;
}

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type <= LB_NFT_ATTR_MAX)
		tb[type] = a;
	return MNL_CB_OK;
}

static const char *attr_str(const struct nlattr *a)
{
	return a && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0 ? mnl_attr_get_str(a) : NULL;
}

/* u32 attribute a, or dflt when absent or malformed. */
static uint32_t attr_u32(const struct nlattr *a, uint32_t dflt)
{
	return a && mnl_attr_validate(a, MNL_TYPE_U32) == 0 ? mnl_attr_get_u32(a) : dflt;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "ipv4" : "ipv6";
}

/* The transaction ended: report it when it touched the table. */
static void newgen(struct lb_nft_watch *w, const struct nlattr **tb,
		   void (*cb)(void *, const struct lb_nft_watch_event *), void *arg)
{
	const char *comm = attr_str(tb[NFTA_GEN_PROC_NAME]);

	if (w->txn.gone) {
		w->txn.pid = ntohl(attr_u32(tb[NFTA_GEN_PROC_PID], 0));
		snprintf(w->txn.comm, sizeof(w->txn.comm), "%s", comm ? comm : "");
		cb(arg, &w->txn);
	}
	memset(&w->txn, 0, sizeof(w->txn));
	w->txn_table = false;
}

/* Deletions of objects inside a table, and the attributes that name them. */
static const struct {
	uint16_t type;
	uint16_t table_attr, name_attr;
	const char *kind;
} deletions[] = {
	{ NFT_MSG_DELCHAIN, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, "chain" },
	{ NFT_MSG_DELRULE, NFTA_RULE_TABLE, NFTA_RULE_CHAIN, "rule of chain" },
	{ NFT_MSG_DELSET, NFTA_SET_TABLE, NFTA_SET_NAME, "set" },
	{ NFT_MSG_DELSETELEM, NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, "element of set" },
};

static void nft_msg(struct lb_nft_watch *w, const struct nlmsghdr *nlh,
		    const struct lb_nft_watch_spec *spec,
		    void (*cb)(void *, const struct lb_nft_watch_event *), void *arg)
{
	const struct nlattr *tb[LB_NFT_ATTR_MAX + 1] = { 0 };
	uint16_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	const char *table = NULL, *name;
	const struct nfgenmsg *nfg;
	char what[sizeof(w->txn.what)];
	bool is_table = false;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*nfg)))
		return;
	nfg = mnl_nlmsg_get_payload(nlh);
	mnl_attr_parse(nlh, sizeof(*nfg), attr_cb, tb);
	if (type == NFT_MSG_NEWGEN) {
		newgen(w, tb, cb, arg);
		return;
	}
	if (type == NFT_MSG_DELTABLE ||
	    /* A dormant table is there but does nothing. */
	    (type == NFT_MSG_NEWTABLE &&
	     (ntohl(attr_u32(tb[NFTA_TABLE_FLAGS], 0)) & NFT_TABLE_F_DORMANT))) {
		table = attr_str(tb[NFTA_TABLE_NAME]);
		snprintf(what, sizeof(what), "table inet %.32s %s", table ? table : "",
			 type == NFT_MSG_DELTABLE ? "deleted" : "made dormant");
		is_table = true;
	}
	for (size_t i = 0; !table && i < sizeof(deletions) / sizeof(deletions[0]);
	     i++) {
		if (deletions[i].type != type)
			continue;
		table = attr_str(tb[deletions[i].table_attr]);
		name = attr_str(tb[deletions[i].name_attr]);
		snprintf(what, sizeof(what), "%s inet %.32s %.32s deleted", deletions[i].kind,
			 table ? table : "", name ? name : "?");
	}
	if (nfg->nfgen_family != NFPROTO_INET || !table || !spec->table ||
	    strcmp(table, spec->table) || is_own(NETLINK_NETFILTER, nlh->nlmsg_pid))
		return;
	/* The table itself says most; otherwise the first object does. */
	if (!w->txn.gone || (is_table && !w->txn_table)) {
		memcpy(w->txn.what, what, sizeof(what));
		w->txn_table = is_table;
	}
	w->txn.gone |= LB_NFT_GONE_TABLE;
	w->txn.objects++;
	w->txn.portid = nlh->nlmsg_pid;
}

static void rule_msg(const struct nlmsghdr *nlh, const struct lb_nft_route_spec *rs,
		     struct lb_nft_watch_event *ev)
{
	const struct nlattr *tb[LB_NFT_ATTR_MAX + 1] = { 0 };
	const struct fib_rule_hdr *frh;

	if (nlh->nlmsg_type != RTM_DELRULE || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*frh)))
		return;
	frh = mnl_nlmsg_get_payload(nlh);
	if (!(frh->family == AF_INET && rs->ipv4) && !(frh->family == AF_INET6 && rs->ipv6))
		return;
	mnl_attr_parse(nlh, sizeof(*frh), attr_cb, tb);
	if (!tb[FRA_FWMARK] || attr_u32(tb[FRA_FWMARK], 0) != rs->mark ||
	    attr_u32(tb[FRA_TABLE], frh->table) != rs->table ||
	    attr_u32(tb[FRA_PRIORITY], 0) != rs->priority)
		return;
	ev->gone = frh->family == AF_INET ? LB_NFT_GONE_RULE4 : LB_NFT_GONE_RULE6;
	snprintf(ev->what, sizeof(ev->what), "rule fwmark 0x%x lookup %u pref %u (%s) deleted",
		 rs->mark, rs->table, rs->priority, family_name(frh->family));
}

static void route_msg(const struct nlmsghdr *nlh, const struct lb_nft_route_spec *rs,
		      struct lb_nft_watch_event *ev)
{
	const struct nlattr *tb[LB_NFT_ATTR_MAX + 1] = { 0 };
	const struct rtmsg *rtm;
	bool del = nlh->nlmsg_type == RTM_DELROUTE;

	if ((!del && nlh->nlmsg_type != RTM_NEWROUTE) ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rtm)))
		return;
	rtm = mnl_nlmsg_get_payload(nlh);
	if (!(rtm->rtm_family == AF_INET && rs->ipv4) && !(rtm->rtm_family == AF_INET6 && rs->ipv6))
		return;
	if (rtm->rtm_dst_len != 0)
		return;
	/* Deleted, or replaced by a default route of another kind. */
	if (del ? rtm->rtm_type != RTN_LOCAL
		: rtm->rtm_type == RTN_LOCAL || !(nlh->nlmsg_flags & NLM_F_REPLACE))
		return;
	mnl_attr_parse(nlh, sizeof(*rtm), attr_cb, tb);
	if (attr_u32(tb[RTA_TABLE], rtm->rtm_table) != rs->table)
		return;
	ev->gone = rtm->rtm_family == AF_INET ? LB_NFT_GONE_ROUTE4 : LB_NFT_GONE_ROUTE6;
	snprintf(ev->what, sizeof(ev->what), "route local default table %u (%s) %s", rs->table,
		 family_name(rtm->rtm_family), del ? "deleted" : "replaced");
}

void lb_nft_watch_parse(struct lb_nft_watch *w, enum lb_nft_watch_src src,
			const struct lb_nft_watch_spec *spec, const void *buf, size_t len,
			void (*cb)(void *arg, const struct lb_nft_watch_event *ev), void *arg)
{
	const struct nlmsghdr *nlh = buf;
	int left = len > (size_t)0x7fffffff ? 0x7fffffff : (int)len;

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		struct lb_nft_watch_event ev = { 0 };

		if (src == LB_NFT_WATCH_NFT) {
			nft_msg(w, nlh, spec, cb, arg);
			continue;
		}
		if (is_own(NETLINK_ROUTE, nlh->nlmsg_pid))
			continue;
		rule_msg(nlh, &spec->route, &ev);
		route_msg(nlh, &spec->route, &ev);
		if (ev.gone) {
			ev.objects = 1;
			ev.portid = nlh->nlmsg_pid;
			cb(arg, &ev);
		}
	}
}

int lb_nft_watch_read(struct lb_nft_watch *w, enum lb_nft_watch_src src,
		      const struct lb_nft_watch_spec *spec,
		      void (*cb)(void *arg, const struct lb_nft_watch_event *ev), void *arg)
{
	int fd = lb_nft_watch_fd(w, src);

	if (fd < 0)
		return -EBADF;
	for (int i = 0; i < LB_NFT_WATCH_READS; i++) {
		ssize_t n = recv(fd, w->buf, sizeof(w->buf), 0);

		if (n == -1 && errno == ENOBUFS) {
			/* Whatever was lost may have been ours; a transaction half
			 * received is covered by this report too. */
			struct lb_nft_watch_event ev = {
				.gone = LB_NFT_GONE_UNKNOWN,
				.objects = 1,
			};

			snprintf(ev.what, sizeof(ev.what), "%s notifications lost (receive queue "
				 "overrun)", src == LB_NFT_WATCH_NFT ? "nftables" : "routing");
			memset(&w->txn, 0, sizeof(w->txn));
			w->txn_table = false;
			cb(arg, &ev);
			continue;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		}
		lb_nft_watch_parse(w, src, spec, w->buf, (size_t)n, cb, arg);
	}
	return 0;
}
