// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Gateway ownership's part of lb's rules (lb/rules_owner.h): the spec of
 * the ownership chains (nft/owner.c) and the policy routes that carry a
 * marked packet to its peer (nft/route.c), from the config and the bucket
 * table's verdicts. lb/rules.c installs, restores and removes them with
 * the rest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/log.h"
#include "lb/rules_owner.h"

int lb_rules_owner_spec_init(struct lb_rules_owner_spec *os, const struct lb_config *cfg,
			     const struct lb_rules_owner *own)
{
	size_t n = cfg->ownership.n_peers, b = cfg->ownership.buckets;
	bool verdicts = own && own->buckets == b;

	memset(os, 0, sizeof(*os));
	os->names = calloc(n, sizeof(*os->names));
	os->marks = calloc(n, sizeof(*os->marks));
	os->to = calloc(b, sizeof(*os->to));
	os->chance = calloc(b, sizeof(*os->chance));
	os->fwd = calloc(n, sizeof(*os->fwd));
	os->fwd_addrs = calloc(2 * n, sizeof(*os->fwd_addrs));
	if (!os->names || !os->marks || !os->to || !os->chance || !os->fwd || !os->fwd_addrs)
		return -ENOMEM;
	os->priority = cfg->intercept.rule_priority;
	for (size_t k = 0; k < n; k++) {
		const struct lb_owner_peer *p = &cfg->ownership.peers[k];
		const union lb_sockaddr *a4 = lb_config_peer_addr(p, AF_INET);
		const union lb_sockaddr *a6 = lb_config_peer_addr(p, AF_INET6);
		struct lb_nft_fwd_route *f = &os->fwd[os->n_fwd];

		os->names[k] = p->name;
		os->marks[k] = cfg->ownership.mark + (uint32_t)k;
		if (k == cfg->ownership.self)
			continue;
		*f = (struct lb_nft_fwd_route){
			.mark = os->marks[k], .table = cfg->ownership.table + (uint32_t)k,
		};
		/* Only the families lb intercepts: no other packet is ever marked for a peer. */
		if (a4 && lb_config_has_family(cfg, AF_INET)) {
			memcpy(&os->fwd_addrs[2 * k], a4, sizeof(a4->in));
			f->via4 = (const struct sockaddr *)&os->fwd_addrs[2 * k];
		}
		if (a6 && lb_config_has_family(cfg, AF_INET6)) {
			memcpy(&os->fwd_addrs[2 * k + 1], a6, sizeof(a6->in6));
			f->via6 = (const struct sockaddr *)&os->fwd_addrs[2 * k + 1];
		}
		os->n_fwd++;
	}
	/* No table yet: every bucket here, as without ownership, until the peers are heard. */
	for (size_t i = 0; i < b; i++) {
		os->to[i] = verdicts ? own->to[i] : LB_NFT_OWNER_HERE;
		os->chance[i] = verdicts ? own->chance[i] : LB_NFT_OWNER_HERE;
	}
	os->owner = (struct lb_nft_owner){
		.buckets = (uint32_t)b,
		.seed = LB_RULES_OWNER_SEED,
		.dscp_to_owner = cfg->ownership.dscp_to_owner,
		.dscp_second_chance = cfg->ownership.dscp_second_chance,
		.n_peers = n,
		.self = cfg->ownership.self,
		.names = os->names,
		.marks = os->marks,
		.to = os->to,
		.chance = os->chance,
	};
	return 0;
}

void lb_rules_owner_spec_fini(struct lb_rules_owner_spec *os)
{
	free(os->names);
	free(os->marks);
	free(os->to);
	free(os->chance);
	free(os->fwd);
	free(os->fwd_addrs);
	memset(os, 0, sizeof(*os));
}

/* The entry of next routing through table, or NULL. */
static const struct lb_nft_fwd_route *fwd_by_table(const struct lb_rules_owner_spec *next,
						    uint32_t table)
{
	for (size_t j = 0; next && j < next->n_fwd; j++)
		if (next->fwd[j].table == table)
			return &next->fwd[j];
	return NULL;
}

void lb_rules_owner_fwd_retire(const struct lb_rules_owner_spec *old,
			       const struct lb_rules_owner_spec *next)
{
	struct lb_nft_fwd_route all[LB_OWNER_PEERS_MAX], rules[LB_OWNER_PEERS_MAX];
	size_t n_all = 0, n_rules = 0;
	char err[256];

	/*
	 * Per family: a table next also routes through keeps its route (next's
	 * apply replaced it), and loses only an old rule next does not share
	 * (another mark or priority); any other table goes, rule and route.
	 */
	for (size_t i = 0; i < old->n_fwd; i++) {
		const struct lb_nft_fwd_route *o = &old->fwd[i];
		const struct lb_nft_fwd_route *k = fwd_by_table(next, o->table);
		bool same_rule = k && k->mark == o->mark && next->priority == old->priority;
		struct lb_nft_fwd_route a = *o, r = *o;

		a.via4 = o->via4 && !(k && k->via4) ? o->via4 : NULL;
		a.via6 = o->via6 && !(k && k->via6) ? o->via6 : NULL;
		r.via4 = o->via4 && k && k->via4 && !same_rule ? o->via4 : NULL;
		r.via6 = o->via6 && k && k->via6 && !same_rule ? o->via6 : NULL;
		if (a.via4 || a.via6)
			all[n_all++] = a;
		if (r.via4 || r.via6)
			rules[n_rules++] = r;
	}
	if (n_all && lb_nft_fwd_remove(all, n_all, old->priority, err, sizeof(err)) < 0)
		lb_err("rules: %s", err);
	if (n_rules && lb_nft_fwd_remove_rule(rules, n_rules, old->priority, err, sizeof(err)) < 0)
		lb_err("rules: %s", err);
}

void lb_rules_owner_print(const struct lb_rules_owner_spec *os, FILE *out)
{
	for (size_t i = 0; i < os->n_fwd; i++) {
		const struct lb_nft_fwd_route *f = &os->fwd[i];
		char a[INET6_ADDRSTRLEN];

		if (f->via4)
			fprintf(out, "ip route replace default via %s table %u\n"
				"ip rule add fwmark 0x%x lookup %u pref %u\n",
				inet_ntop(AF_INET, &((const struct sockaddr_in *)f->via4)->sin_addr, a,
					  sizeof(a)), f->table, f->mark, f->table, os->priority);
		if (f->via6)
			fprintf(out, "ip -6 route replace default via %s table %u\n"
				"ip -6 rule add fwmark 0x%x lookup %u pref %u\n",
				inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)f->via6)->sin6_addr,
					  a, sizeof(a)), f->table, f->mark, f->table, os->priority);
	}
}
