// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nft/netlink.c without root: the kernel's extended-ack text read back from
 * error messages built as the kernel sends them (with and without the
 * request echoed, malformed ones), and the sockets it opens (an rtnetlink
 * socket needs no privilege to open).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#include "nft/netlink.h"
#include "tests/unit.h"

static _Alignas(struct nlmsghdr) char buf[1024];

/*
 * An NLMSG_ERROR for a request of req_len bytes (echoed when not capped),
 * carrying text (NULL: no attributes), as the kernel builds it.
 */
static struct nlmsghdr *error_msg(int error, bool capped, size_t req_len, const char *text,
				  size_t text_len)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;

	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = capped ? NLM_F_CAPPED : 0;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = error;
	e->msg.nlmsg_len = sizeof(struct nlmsghdr) + req_len;
	e->msg.nlmsg_type = RTM_NEWRULE;
	if (!capped)
		memset(mnl_nlmsg_put_extra_header(nlh, MNL_ALIGN(req_len)), 0x5a, req_len);
	if (text) {
		nlh->nlmsg_flags |= NLM_F_ACK_TLVS;
		mnl_attr_put(nlh, NLMSGERR_ATTR_MSG, text_len, text);
	}
	return nlh;
}

START_TEST(test_extack)
{
	static const char why[] = "FIB table does not exist";
	const char *got;

	got = lb_nft_netlink_extack(error_msg(-ENOENT, true, 32, why, sizeof(why)));
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, why);
	/* Not capped: the request comes back first, and is skipped. */
	got = lb_nft_netlink_extack(error_msg(-ENOENT, false, 36, why, sizeof(why)));
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, why);
	/* No attributes; a text without its NUL; a request longer than the message. */
	ck_assert_ptr_null(lb_nft_netlink_extack(error_msg(-EPERM, true, 32, NULL, 0)));
	ck_assert_ptr_null(lb_nft_netlink_extack(error_msg(-ENOENT, true, 32, why, strlen(why))));
	{
		struct nlmsghdr *nlh = error_msg(-ENOENT, true, 32, why, sizeof(why));
		struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		nlh->nlmsg_flags &= ~NLM_F_CAPPED;
		e->msg.nlmsg_len = 4096;
		ck_assert_ptr_null(lb_nft_netlink_extack(nlh));
	}
}
END_TEST

START_TEST(test_open)
{
	struct mnl_socket *nl = (void *)1;
	char err[256] = "";
	int fd;

	ck_assert_int_eq(lb_nft_netlink_open(&nl, NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK,
					     "watch", "a netlink socket for routes", err,
					     sizeof(err)), 0);
	fd = mnl_socket_get_fd(nl);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert_uint_ne(mnl_socket_get_portid(nl), 0);
	mnl_socket_close(nl);

	/* A protocol the kernel does not have: the message names who and what. */
	ck_assert_int_eq(lb_nft_netlink_open(&nl, 31, 0, "nft", "a socket of protocol 31", err,
					     sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_ptr_null(nl);
	ck_assert_msg(!strncmp(err, "nft: opening a socket of protocol 31: ", 38), "%s", err);
}
END_TEST

/* Request sockets ask for short acks with the kernel's text, and do not wait forever. */
START_TEST(test_request)
{
	struct mnl_socket *nl;
	struct timeval tv = { 0 };
	socklen_t len = sizeof(tv);
	char err[256];
	int v, fd;

	ck_assert_int_eq(lb_nft_netlink_request(&nl, NETLINK_ROUTE, "route", "rtnetlink socket",
						err, sizeof(err)), 0);
	fd = mnl_socket_get_fd(nl);
	ck_assert_int_eq(lb_test_sockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK), 1);
	ck_assert_int_eq(lb_test_sockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK), 1);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
	ck_assert_int_gt(tv.tv_sec, 0);
	ck_assert(!(fcntl(fd, F_GETFL) & O_NONBLOCK));

	/*
	 * A buffer already large enough is left alone; a smaller one grows,
	 * through SO_SNDBUF when SO_SNDBUFFORCE is not allowed (not root).
	 */
	v = lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF);
	lb_nft_netlink_sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, (size_t)v / 2);
	ck_assert_int_eq(lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF), v);
	v = 4096;
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	ck_assert_int_lt(lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF), 65536);
	lb_nft_netlink_sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, 65536);
	ck_assert_int_ge(lb_test_sockopt(fd, SOL_SOCKET, SO_SNDBUF), 65536);
	mnl_socket_close(nl);
}
END_TEST

int main(void)
{
	return lb_test_main("netlink", NULL, NULL, 0,
			    LB_TESTS(test_extack, test_open, test_request));
}
