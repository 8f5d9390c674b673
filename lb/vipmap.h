/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_VIPMAP_H
#define LB_VIPMAP_H

#include <stddef.h>
#include <stdint.h>

#include "lb/addr.h"

/*
 * The VIPs of a config as the workers look them up on every new connection
 * or flow: a VIP is an address prefix (one address is a /32 or /128) and a
 * port range (one port is a range of one), carrying TCP, UDP or both. A
 * lookup costs one hash probe per prefix length in use, whatever the
 * number of VIPs, so 100,000 of them cost what one does. Built once per
 * config; overlaps between VIPs of the same protocol are reported while
 * building, so a lookup's answer is unique. Pure: no sockets.
 */
struct lb_vipmap;

/* One VIP to enter: its address is masked to its prefix already. */
struct lb_vipmap_vip {
	union lb_sockaddr addr;		/* the prefix's first address, and the first port */
	uint8_t plen;			/* 0..32 or 0..128 */
	uint16_t port_last;		/* >= the first port */
	unsigned int protocols;		/* enum lb_proto bits */
	uint32_t service, index;	/* where the config has it: services[service].vips[index] */
};

/*
 * Called for each VIP that overlaps one entered before it (same family,
 * one prefix inside the other, ports in common, a protocol in common):
 * `vip` is the later one, `other` the earlier.
 */
typedef void (*lb_vipmap_clash_fn)(void *arg, const struct lb_vipmap_vip *vip,
				   const struct lb_vipmap_vip *other);

/*
 * Builds a map of the n VIPs (in any order; they are entered shortest
 * prefix first, so a clash always names the wider VIP as `other`). VIPs
 * that clash are reported to clash (may be NULL) and left out. Returns
 * NULL with errno set when out of memory.
 */
struct lb_vipmap *lb_vipmap_build(const struct lb_vipmap_vip *vips, size_t n,
				  lb_vipmap_clash_fn clash, void *arg);
void lb_vipmap_free(struct lb_vipmap *m);

/*
 * The VIP carrying proto (an enum lb_proto bit) that addr (address and
 * port) falls in, or NULL.
 */
const struct lb_vipmap_vip *lb_vipmap_find(const struct lb_vipmap *m, unsigned int proto,
					   const union lb_sockaddr *addr);

/* Masks a's address to plen bits (the port is left alone). */
void lb_vipmap_mask(union lb_sockaddr *a, unsigned int plen);

#endif
