/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_ANNOUNCE_H
#define LB_NFT_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Host routes that announce VIPs to a routing daemon, held on a TUN
 * device. The device is not persistent: it exists while the process
 * holds its file descriptor, and when it goes (close, exit, SIGKILL) the
 * kernel deletes it and every route through it. A routing daemon that
 * exports those routes (BIRD's kernel protocol with "learn") withdraws
 * them at once, so an announcement never outlives the process that made
 * it.
 */

struct lb_nft_announce;

/* Where the routes go: a routing table and the protocol number they carry. */
struct lb_nft_announce_spec {
	uint32_t table;
	uint8_t protocol;		/* rtm_protocol: the daemon tells lb's routes by it */
};

/*
 * Creates TUN device dev (IFF_TUN, close-on-exec), with no IPv6 link-local
 * address (nothing of its own to say on it), and sets it up. Returns 0
 * with *out owned, or -errno with a one-line reason in err (no
 * /dev/net/tun, no CAP_NET_ADMIN, the name is taken by another device).
 */
int lb_nft_announce_open(struct lb_nft_announce **out, const char *dev, char *err,
			 size_t errlen);

/* Deletes the device and so every route through it. NULL is fine. */
void lb_nft_announce_close(struct lb_nft_announce *a);

/* The device's interface index. */
unsigned int lb_nft_announce_ifindex(const struct lb_nft_announce *a);

/*
 * Adds (or, when one exists for the same destination in the same table,
 * replaces) the route "ADDR/PLEN dev DEV table T proto P"; addr is an
 * AF_INET or AF_INET6 sockaddr whose port is ignored, plen at most 32 or
 * 128 (a VIP of one address: the most). Deleting a route that is not there
 * is not an error. Both return 0 or -errno with a one-line reason in err.
 */
int lb_nft_announce_add(struct lb_nft_announce *a, const struct lb_nft_announce_spec *spec,
			const struct sockaddr *addr, uint8_t plen, char *err, size_t errlen);
int lb_nft_announce_del(struct lb_nft_announce *a, const struct lb_nft_announce_spec *spec,
			const struct sockaddr *addr, uint8_t plen, char *err, size_t errlen);

/* Room for one route request. */
#define LB_NFT_ANNOUNCE_MSG_MAX 256

/*
 * Writes into buf (LB_NFT_ANNOUNCE_MSG_MAX bytes, aligned for a
 * struct nlmsghdr) the request that
 * lb_nft_announce_add() (add) or _del() sends for the device with index
 * ifindex, without sequence number or flags for the ack. Pure: no socket,
 * no root. Returns the message, or NULL for an address family other than
 * AF_INET and AF_INET6 or a prefix length too long for it.
 */
struct nlmsghdr *lb_nft_announce_build(void *buf, bool add, const struct lb_nft_announce_spec *spec,
				       unsigned int ifindex, const struct sockaddr *addr, uint8_t plen);

#endif
