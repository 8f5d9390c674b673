/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "nft/netlink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <linux/netlink.h>

#include <libmnl/libmnl.h>

/* The kernel answers while we are still in sendmsg(); this only bounds a kernel that never does. */
#define RECV_TIMEOUT_S	10

int lb_nft_netlink_open(struct mnl_socket **nl, int proto, int flags, const char *who,
			const char *what, char *err, size_t errlen)
{
	int ret;

	*nl = mnl_socket_open2(proto, flags);
	if (!*nl) {
		ret = -errno;
		snprintf(err, errlen, "%s: opening %s: %s%s", who, what,
			 ret == -EPROTONOSUPPORT && proto == NETLINK_NETFILTER
			 ? "kernel lacks nfnetlink: " : "", strerror(-ret));
		return ret;
	}
	if (mnl_socket_bind(*nl, 0, MNL_SOCKET_AUTOPID) == -1) {
		ret = -errno;
		snprintf(err, errlen, "%s: binding %s: %s", who, what, strerror(-ret));
		mnl_socket_close(*nl);
		*nl = NULL;
		return ret;
	}
	return 0;
}

int lb_nft_netlink_request(struct mnl_socket **nl, int proto, const char *who, const char *what,
			   char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_S };
	int one = 1, fd, ret;

	ret = lb_nft_netlink_open(nl, proto, 0, who, what, err, errlen);
	if (ret)
		return ret;
	fd = mnl_socket_get_fd(*nl);
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

void lb_nft_netlink_sockbuf(int fd, int force, int opt, size_t want)
{
	int cur = 0, val = (int)want;
	socklen_t len = sizeof(cur);

	if (getsockopt(fd, SOL_SOCKET, opt, &cur, &len) == 0 && (size_t)cur >= want)
		return;
	/* FORCE passes rmem_max/wmem_max with CAP_NET_ADMIN, which lb has whenever it can
	 * change anything at all; without it, what the maximum allows. */
	if (setsockopt(fd, SOL_SOCKET, force, &val, sizeof(val)) == -1)
		setsockopt(fd, SOL_SOCKET, opt, &val, sizeof(val));
}

const char *lb_nft_netlink_extack(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e), total = mnl_nlmsg_get_payload_len(nlh);
	const struct nlattr *a;
	const char *end;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	/* Without NLM_F_CAPPED the request itself comes back before the attributes. */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	if (off >= total)
		return NULL;
	end = (const char *)e + total;
	for (a = (const void *)((const char *)e + off);
	     mnl_attr_ok(a, (int)(end - (const char *)a)); a = mnl_attr_next(a)) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(a);
	}
	return NULL;
}

int lb_nft_netlink_talk(struct mnl_socket *nl, uint32_t seq, struct nlmsghdr *nlh, char *why,
			size_t whylen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned int portid = mnl_socket_get_portid(nl);

	why[0] = '\0';
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) == -1)
		return -errno;
	for (;;) {
		const struct nlmsghdr *h;
		ssize_t n;
		int len;

		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n == -1)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		len = (int)n;
		for (h = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(h, len);
		     h = mnl_nlmsg_next(h, &len)) {
			const struct nlmsgerr *e;

			if (h->nlmsg_seq != seq || h->nlmsg_pid != portid ||
			    h->nlmsg_type != NLMSG_ERROR ||
			    h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
				continue;
			e = mnl_nlmsg_get_payload(h);
			if (e->error) {
				const char *text = lb_nft_netlink_extack(h);

				if (text)
					snprintf(why, whylen, "%s", text);
			}
			return e->error;
		}
	}
}
