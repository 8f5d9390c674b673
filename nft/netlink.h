/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_NETLINK_H
#define LB_NFT_NETLINK_H

#include <stddef.h>
#include <stdint.h>

struct mnl_socket;
struct nlmsghdr;

/*
 * What the request sockets of apply.c, route.c and announce.c and the
 * notification sockets of watch.c have in common: opening and binding,
 * requests and acks that carry the kernel's explanation, and buffer sizes.
 */

/*
 * Opens a netlink socket of proto (flags: SOCK_NONBLOCK, SOCK_CLOEXEC or
 * 0) and binds it to a port of the kernel's choice. Returns 0 or -errno
 * with "WHO: opening WHAT: reason" (or binding) in err.
 */
int lb_nft_netlink_open(struct mnl_socket **nl, int proto, int flags, const char *who,
			const char *what, char *err, size_t errlen);

/*
 * lb_nft_netlink_open() for requests: acks come without a copy of each
 * request but with the kernel's text (lb_nft_netlink_extack()), and a read
 * gives up after a while (EAGAIN) instead of waiting for a kernel that
 * never answers.
 */
int lb_nft_netlink_request(struct mnl_socket **nl, int proto, const char *who, const char *what,
			   char *err, size_t errlen);

/*
 * Makes buffer opt (SO_SNDBUF, SO_RCVBUF) of fd hold at least want bytes,
 * past the sysctl maximum through force (SO_SNDBUFFORCE, SO_RCVBUFFORCE)
 * when the process may.
 */
void lb_nft_netlink_sockbuf(int fd, int force, int opt, size_t want);

/* The extended-ack text the kernel attached to error message nlh, or NULL. */
const char *lb_nft_netlink_extack(const struct nlmsghdr *nlh);

/*
 * Sends request nlh on nl (a lb_nft_netlink_request() socket) with sequence
 * number seq, asking for an ack, and waits for it. Returns 0 or the
 * kernel's -errno (-ETIMEDOUT when no answer came), with its extended-ack
 * text, or "", in why.
 */
int lb_nft_netlink_talk(struct mnl_socket *nl, uint32_t seq, struct nlmsghdr *nlh, char *why,
			size_t whylen);

#endif
