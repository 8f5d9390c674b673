/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_PRIV_H
#define LB_NFT_PRIV_H

/* What ruleset.c and vipset.c share; nothing outside nft/ sees it. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nft/nft.h"

struct mnl_nlmsg_batch;
struct nlmsghdr;
struct nftnl_set;

/* nft's concatenated datatype ids: (first << TYPE_BITS) | second. */
#define LB_NFT_TYPE_BITS	6
#define LB_NFT_TYPE_IPADDR	7
#define LB_NFT_TYPE_IP6ADDR	8
#define LB_NFT_TYPE_SERVICE	13
#define LB_NFT_TYPE_ICMP	14
#define LB_NFT_TYPE_ICMP6	29

/* Each concatenated field is padded to a 32-bit register. */
#define LB_NFT_KEY4_LEN	(4 + 4)
#define LB_NFT_KEY6_LEN	(16 + 4)
#define LB_NFT_KEY_MAX	LB_NFT_KEY6_LEN

/* A set of VIPs (address . port) and what its rules need to know of it. */
struct lb_nft_family {
	const char *set;	/* also the nft name used in the lookup */
	uint32_t set_id;	/* batch-local id, as nft numbers new sets */
	uint8_t l4proto;	/* what its set's VIPs carry: IPPROTO_TCP or IPPROTO_UDP */
	bool range;		/* an interval set: prefixes and port ranges */
	uint32_t key_type;
	uint32_t key_len;
	uint8_t nfproto;
	uint32_t daddr_off;	/* offset of the destination in the IP header */
	uint32_t addr_len;
	uint8_t icmp_proto;	/* IPPROTO_ICMP or IPPROTO_ICMPV6 */
	uint32_t icmp_set_id;	/* the anonymous set of icmp_errors */
	uint32_t icmp_type;	/* nft datatype of its key */
	const uint8_t *icmp_errors;
	uint32_t n_icmp_errors;
};

/* The VIP sets, in the order they are declared. */
enum lb_nft_vs {
	LB_NFT_VS_TCP4, LB_NFT_VS_TCP6, LB_NFT_VS_UDP4, LB_NFT_VS_UDP6,
	LB_NFT_VS_TCP_R4, LB_NFT_VS_TCP_R6, LB_NFT_VS_UDP_R4, LB_NFT_VS_UDP_R6,
	LB_NFT_VS_N
};
extern const struct lb_nft_family lb_nft_vipsets[LB_NFT_VS_N];

/* ruleset.c: message plumbing. */
struct nlmsghdr *lb_nft_msg(struct mnl_nlmsg_batch *batch, uint16_t type, uint16_t flags,
			    uint32_t *seq);
int lb_nft_msg_end(struct mnl_nlmsg_batch *batch);
struct nftnl_set *lb_nft_set_alloc(const struct lb_nft_spec *spec, const char *name, uint32_t id);

/* vipset.c */

/* Whether spec has set vs (the TCP exact ones always; the others when they have VIPs). */
bool lb_nft_vipset_exists(const struct lb_nft_spec *spec, enum lb_nft_vs vs);

/* Declares every existing VIP set, then (unless bare) its elements, many to a message. */
int lb_nft_vipset_msgs(const struct lb_nft_spec *spec, bool bare, struct mnl_nlmsg_batch *batch,
		       uint32_t *seq);

/*
 * The element changes from old to next, sets of the same shape both
 * (lb_nft_ruleset_same_shape): deletes, then adds. Counts them in *removed
 * and *added.
 */
int lb_nft_vipset_diff_msgs(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
			    struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *added,
			    size_t *removed);

/* Prints every existing VIP set as nft lists it. */
void lb_nft_vipset_print(const struct lb_nft_spec *spec, FILE *out);

#endif
