/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_NFT_CLIENTS_H
#define LB_NFT_CLIENTS_H

/*
 * What clients.c (which sets, maps and rules a spec's per-client rules
 * make, their names and elements, and their nft text) and clients_build.c
 * (their netlink messages) share. Only nft/ sees it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nft/nft_priv.h"

#define LB_NFT_NAME_LEN		48
/* Elements per message: a message must stay well under LB_NFT_MSG_MAX (apply.c). */
#define LB_NFT_CELEMS_PER_MSG	16
#define LB_NFT_CMAPS		8

enum lb_nft_ckind { LB_NFT_ALLOW, LB_NFT_DENY, LB_NFT_RATE };

/* What a family changes in the rules. */
struct lb_nft_cfam {
	int family;
	char digit;			/* in set names: allow4_0, allow6_0 */
	uint8_t nfproto;
	uint32_t saddr_off, len, type;
	const char *ip;			/* nft's name for its header */
	const char *icmp;
	uint8_t unreach_type, unreach_code;	/* port unreachable, as nft sends it */
};

extern const struct lb_nft_cfam lb_nft_cfams[2];

/* The maps, as the VIP sets are split: protocol, single or range VIPs, family. */
struct lb_nft_cmap {
	const char *name;
	enum lb_nft_vs vs;		/* the VIP set whose key and VIPs it shares */
};

extern const struct lb_nft_cmap lb_nft_cmaps[LB_NFT_CMAPS];

/* The UDP VIP sets, whose flows' datagrams skip the meters. */
extern const enum lb_nft_vs lb_nft_cudp_sets[4];

/* One set element: a key, interval flags, or a map's jump. */
struct lb_nft_celem {
	uint8_t key[LB_NFT_KEY_MAX];
	uint8_t key_end[LB_NFT_KEY_MAX];	/* a concatenated range's last key, when has_end */
	bool has_end;
	uint32_t len;
	bool end;			/* ends an interval */
	bool open;			/* starts one that runs to the last address */
	const char *chain;		/* a map's: jump here */
};

/* Batch-local id and name of c's set of kind k for f; the name of c's chain. */
uint32_t lb_nft_clients_set_id(const struct lb_nft_clients *c, enum lb_nft_ckind k,
			       const struct lb_nft_cfam *f);
void lb_nft_clients_set_name(char *buf, const struct lb_nft_clients *c,
			     enum lb_nft_ckind k, const struct lb_nft_cfam *f);
void lb_nft_clients_chain_name(char *buf, const struct lb_nft_clients *c);

/* Whether c carries TCP (with udp, UDP) to a VIP of family. */
bool lb_nft_clients_carries(const struct lb_nft_clients *c, bool udp, int family);
/* Whether c has a set of kind k for f. */
bool lb_nft_clients_has_set(const struct lb_nft_clients *c, enum lb_nft_ckind k,
			    const struct lb_nft_cfam *f);
/* Whether map m has elements (exists); whether it is a UDP one; whether any UDP one exists. */
bool lb_nft_clients_map_has(const struct lb_nft_spec *spec, const struct lb_nft_cmap *m);
bool lb_nft_clients_map_udp(const struct lb_nft_cmap *m);
bool lb_nft_clients_any_udp(const struct lb_nft_spec *spec);
/*
 * The elements of map m, sorted by key (as nft lists them): each VIP of
 * its kind jumps to its service's chain, named in chains (owned by the
 * caller, one per clients entry). Owned; NULL when out of memory.
 */
struct lb_nft_celem *lb_nft_clients_map_elems(const struct lb_nft_spec *spec,
						     const struct lb_nft_cmap *m,
						     char (*chains)[LB_NFT_NAME_LEN],
						     size_t *count);
/* A meter's entry timeout: past a full refill, at least 10 s. */
uint32_t lb_nft_clients_timeout_s(const struct lb_nft_clients *c);
/* The prefixes of family f, sorted; *n of them. Owned; NULL when out of memory. */
struct lb_nft_prefix *lb_nft_clients_sorted(const struct lb_nft_prefix *p, size_t total,
					    const struct lb_nft_cfam *f, size_t *n);

#endif
