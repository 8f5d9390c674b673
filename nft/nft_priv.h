/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_PRIV_H
#define LB_NFT_PRIV_H

/*
 * What ruleset.c, vipset.c and clients.c share; nothing outside nft/ sees
 * it. Expression helpers append to a rule and return 0 or -ENOMEM: the rule
 * owns what they appended, so callers only free the rule.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nft/nft.h"

struct mnl_nlmsg_batch;
struct nlmsghdr;
struct nftnl_expr;
struct nftnl_rule;
struct nftnl_set;

#define LB_NFT_CHAIN	"prerouting"

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
/* A chain of spec's table: with base, lb's prerouting hook. */
int lb_nft_chain_msg(const struct lb_nft_spec *spec, const char *name, bool base,
		     struct mnl_nlmsg_batch *batch, uint32_t *seq);
/* A rule for chain; then its message (frees r; with ret non-zero, only frees it). */
struct nftnl_rule *lb_nft_rule_alloc(const struct lb_nft_spec *spec, const char *chain);
int lb_nft_rule_put(struct nftnl_rule *r, int ret, struct mnl_nlmsg_batch *batch, uint32_t *seq);

/* ruleset.c: expressions. */
struct nftnl_expr *lb_nft_expr_add(struct nftnl_rule *r, const char *name);
/* "meta KEY == value" for a one-byte key (nfproto, l4proto). */
int lb_nft_meta_cmp(struct nftnl_rule *r, uint32_t key, uint8_t value);
int lb_nft_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg);
int lb_nft_imm(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len);
/* "SREG @set" (invert: "!= @set"), by name and by id in this batch. */
int lb_nft_lookup_flags(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t id,
			bool invert);
int lb_nft_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t id);
/* "daddr . dport" of fam's protocol into the registers from NFT_REG32_00. */
int lb_nft_vip_key_load(struct nftnl_rule *r, const struct lb_nft_family *fam);
int lb_nft_verdict(struct nftnl_rule *r, int verdict);
int lb_nft_mark_accept(struct nftnl_rule *r, uint32_t mark);
/* "socket transparent 1". */
int lb_nft_socket_transparent(struct nftnl_rule *r);
/* "tproxy to lb's listener, meta mark set MARK accept". */
int lb_nft_tproxy_mark(const struct lb_nft_spec *spec, const struct lb_nft_family *fam,
		       struct nftnl_rule *r);

/*
 * expr.c: more expressions (0 or -ENOMEM), for owner.c and clients_build.c,
 * and a named counter's message.
 */
/* "SREG OP DATA". */
int lb_nft_expr_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data,
		    uint32_t len);
/* Writes SREG to the network header at off; csum_off: the IPv4 header checksum to fix, 0: none. */
int lb_nft_expr_payload_write(struct nftnl_rule *r, uint32_t sreg, uint32_t off, uint32_t len,
			      uint32_t csum_off);
/* "REG = (REG & mask) ^ xor", len bytes. */
int lb_nft_expr_bitwise(struct nftnl_rule *r, uint32_t reg, uint32_t len, const void *mask,
			const void *xor);
/* NFT_JUMP or NFT_GOTO chain. */
int lb_nft_expr_jump(struct nftnl_rule *r, int verdict, const char *chain);
/* "SREG vmap @map": the verdict map's verdict for the key in SREG. */
int lb_nft_expr_vmap(struct nftnl_rule *r, uint32_t sreg, const char *map, uint32_t id);
/* "DREG = jhash(len bytes from SREG, seed) % modulus". */
int lb_nft_expr_jhash(struct nftnl_rule *r, uint32_t sreg, uint32_t len, uint32_t modulus,
		      uint32_t seed, uint32_t dreg);
/* "counter name NAME": the table's named counter. */
int lb_nft_expr_counter(struct nftnl_rule *r, const char *name);
/* "meta mark set MARK", through NFT_REG_1. */
int lb_nft_expr_mark_set(struct nftnl_rule *r, uint32_t mark);
/* A named counter of spec's table. */
int lb_nft_counter_msg(const struct lb_nft_spec *spec, const char *name,
		       struct mnl_nlmsg_batch *batch, uint32_t *seq);

/* owner.c: the ownership chains and maps (nft.h's struct lb_nft_owner). */
#define LB_NFT_CHAIN_TPROXY4	"tproxy4"
#define LB_NFT_CHAIN_TPROXY6	"tproxy6"
#define LB_NFT_CHAIN_OWN4	"own4"
#define LB_NFT_CHAIN_OWN6	"own6"

/* Whether spec has ownership chains. */
bool lb_nft_owner_on(const struct lb_nft_spec *spec);
/* 0, or -EINVAL for an owner spec that cannot be built (NULL is fine). */
int lb_nft_owner_check(const struct lb_nft_owner *o);
/* Declares the counters and both maps. */
int lb_nft_owner_decl_msgs(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			   uint32_t *seq);
/* Declares the ownership chains, tproxy4 and tproxy6 included (before the maps' elements). */
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
/* Messages (of at most LB_NFT_MSG_MAX bytes) a batch should have room for. */
size_t lb_nft_owner_msgs(const struct lb_nft_spec *spec);
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

/* "address . port" of a VIP as its set stores it (LB_NFT_KEY_MAX bytes, zero padded). */
void lb_nft_vip_key(const union lb_nft_addr *a, uint8_t *key);
/* A key of f's sets as nft lists it: "198.18.0.1 . 80", or with end "198.18.0.0/24 . 80-90". */
void lb_nft_vip_key_print(const struct lb_nft_family *f, const uint8_t *key, const uint8_t *end,
			  FILE *out);

/* clients.c: per-client rules; each does nothing without spec->clients. */
int lb_nft_clients_check(const struct lb_nft_spec *spec);
/* Messages (of at most LB_NFT_MSG_MAX bytes) a batch should have room for. */
size_t lb_nft_clients_msgs(const struct lb_nft_spec *spec);
/* Counters, sets, the clients_ID chains and the maps that jump to them. */
int lb_nft_clients_build(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			 uint32_t *seq);
/* In prerouting after the TCP socket rule: new TCP connections to their VIPs jump. */
int lb_nft_clients_jump_tcp(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
			    uint32_t *seq);
/* In prerouting before the UDP tproxy rules: flows' datagrams go on, new ones jump. */
int lb_nft_clients_udp(const struct lb_nft_spec *spec, struct mnl_nlmsg_batch *batch,
		       uint32_t *seq);
/* nft(8) text of the same, at the places `nft list table` shows them. */
void lb_nft_clients_print_objects(const struct lb_nft_spec *spec, FILE *out);
void lb_nft_clients_print_sets(const struct lb_nft_spec *spec, FILE *out);
void lb_nft_clients_print_chains(const struct lb_nft_spec *spec, FILE *out);
void lb_nft_clients_print_jump_tcp(const struct lb_nft_spec *spec, FILE *out);
void lb_nft_clients_print_udp(const struct lb_nft_spec *spec, FILE *out);

#endif
