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

/* The base chain: lb's rules hook into prerouting here. */
#define LB_NFT_CHAIN	"prerouting"

/* ruleset.c: message plumbing. */
struct nlmsghdr *lb_nft_msg(struct mnl_nlmsg_batch *batch, uint16_t type, uint16_t flags,
			    uint32_t *seq);
int lb_nft_msg_end(struct mnl_nlmsg_batch *batch);
struct nftnl_set *lb_nft_set_alloc(const struct lb_nft_spec *spec, const char *name, uint32_t id);

/*
 * expr.c: expressions appended to a rule (0 or -ENOMEM; the rule owns
 * them), and rule messages.
 */
struct nftnl_expr;
struct nftnl_rule;
struct nftnl_expr *lb_nft_expr_add(struct nftnl_rule *r, const char *name);
/* "SREG OP DATA". */
int lb_nft_expr_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data,
		    uint32_t len);
/* "meta KEY == VALUE" (nfproto, l4proto), through NFT_REG_1. */
int lb_nft_expr_meta_cmp(struct nftnl_rule *r, uint32_t key, uint8_t value);
int lb_nft_expr_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len,
			uint32_t dreg);
/* Writes SREG to the network header at off; csum_off: the IPv4 header checksum to fix, 0: none. */
int lb_nft_expr_payload_write(struct nftnl_rule *r, uint32_t sreg, uint32_t off, uint32_t len,
			      uint32_t csum_off);
/* "REG = (REG & mask) ^ xor", len bytes. */
int lb_nft_expr_bitwise(struct nftnl_rule *r, uint32_t reg, uint32_t len, const void *mask,
			const void *xor);
int lb_nft_expr_imm(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len);
/* A verdict (NF_ACCEPT, NF_DROP, NFT_RETURN, NFT_GOTO with chain...). */
int lb_nft_expr_verdict(struct nftnl_rule *r, int verdict, const char *chain);
/* "SREG @set" (with invert, "!= @set"): the set by name and by its id in this batch. */
int lb_nft_expr_lookup_flags(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t id,
			     bool invert);
int lb_nft_expr_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t id);
/* "SREG vmap @map": the verdict map's verdict for the key in SREG. */
int lb_nft_expr_vmap(struct nftnl_rule *r, uint32_t sreg, const char *map, uint32_t id);
/* "DREG = jhash(len bytes from SREG, seed) % modulus". */
int lb_nft_expr_jhash(struct nftnl_rule *r, uint32_t sreg, uint32_t len, uint32_t modulus,
		      uint32_t seed, uint32_t dreg);
/* "counter name NAME": the table's named counter. */
int lb_nft_expr_counter(struct nftnl_rule *r, const char *name);
/* "socket transparent 1", through NFT_REG_1. */
int lb_nft_expr_socket_transparent(struct nftnl_rule *r);
/* "meta mark set MARK", through NFT_REG_1. */
int lb_nft_expr_mark_set(struct nftnl_rule *r, uint32_t mark);
/* "meta mark set MARK accept": with lb's mark, the mark routes the packet to lo. */
int lb_nft_expr_mark_accept(struct nftnl_rule *r, uint32_t mark);
/* A rule of spec's table in chain; NULL when out of memory. */
struct nftnl_rule *lb_nft_rule_alloc(const struct lb_nft_spec *spec, const char *chain);
/*
 * Appends r (NULL: out of memory) to batch when ret, what filling it
 * returned, is 0, then frees it. Returns 0 or -errno.
 */
int lb_nft_rule_end(struct nftnl_rule *r, int ret, struct mnl_nlmsg_batch *batch, uint32_t *seq);

/* owner.c: the ownership chains and maps (nft.h's struct lb_nft_owner). */
#define LB_NFT_CHAIN_TPROXY4	"tproxy4"
#define LB_NFT_CHAIN_TPROXY6	"tproxy6"
#define LB_NFT_CHAIN_OWN4	"own4"
#define LB_NFT_CHAIN_OWN6	"own6"

/* Whether spec has ownership chains. */
bool lb_nft_owner_on(const struct lb_nft_spec *spec);
/* 0, or -EINVAL for an owner spec that cannot be built (NULL is fine). */
int lb_nft_owner_check(const struct lb_nft_owner *o);
/* Declares the counters and both maps (before any chain). */
int lb_nft_owner_decl_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			   uint32_t *seq);
/* Declares the ownership chains, tproxy4 and tproxy6 included. */
int lb_nft_owner_chain_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			    uint32_t *seq);
/* Every bucket's element in both maps (after the chains they name). */
int lb_nft_owner_elem_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			   uint32_t *seq);
/* The rules of the ownership chains, but tproxy4's and tproxy6's (ruleset.c's). */
int lb_nft_owner_rule_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			   uint32_t *seq);
/* The element changes from old's maps to next's; *changed counts them. */
int lb_nft_owner_diff_msgs(const struct lb_nft_spec *old, const struct lb_nft_spec *next,
			   struct mnl_nlmsg_batch *batch, uint32_t *seq, size_t *changed);
/* The counters and maps, then the chains, as nft lists them. */
void lb_nft_owner_print_decl(const struct lb_nft_spec *spec, FILE *out);
void lb_nft_owner_print_chains(const struct lb_nft_spec *spec, FILE *out);

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
