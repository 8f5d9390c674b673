// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Gateway ownership in status (lb/peers.h's state): the tier's peers, the
 * buckets each owns and is previous owner of, and the forwarding counters
 * (docs/control.md, "ownership").
 */
#include <stdint.h>

#include <jansson.h>

#include "lb/addr.h"
#include "lb/ctl.h"
#include "lb/ctl_owner.h"

static json_t *u64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

json_t *lb_ctl_ownership_json(const struct lb_peers_state *ps)
{
	json_t *peers, *o;

	if (!ps || !ps->configured)
		return json_null();
	peers = json_array();
	for (size_t k = 0; peers && k < ps->n_peers && k < LB_OWNER_PEERS_MAX; k++) {
		const struct lb_peer_view *v = &ps->peers[k];
		char a[LB_ADDR_STRLEN];

		json_array_append_new(peers, json_pack("{s:s, s:s, s:b, s:s, s:o, s:o, s:I, s:I, s:I, s:b}",
			"name", v->name, "address", lb_addr_format_ip(&v->addr, a, sizeof(a)),
			"self", v->self, "state", lb_peers_state_name(v->state),
			"since", v->since ? json_integer((json_int_t)v->since) : json_null(),
			"heard_ms_ago", v->heard_ms_ago == UINT64_MAX ? json_null() : u64(v->heard_ms_ago),
			"connections", (json_int_t)v->connections,
			"owned", (json_int_t)v->owned, "previous", (json_int_t)v->previous,
			"other_config", v->other_config));
	}
	o = json_pack("{s:b, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		      "settled", ps->settled, "buckets", (json_int_t)ps->buckets,
		      "table_changes", u64(ps->table_changes),
		      "buckets_moved", u64(ps->buckets_moved),
		      "installs", u64(ps->installs),
		      "install_failures", u64(ps->install_failures),
		      "last_error", ps->last_error[0] ? json_string(ps->last_error) : json_null(),
		      "heartbeats", json_pack("{s:o, s:o, s:o}", "sent", u64(ps->sent),
					      "received", u64(ps->received),
					      "rejected", u64(ps->rejected)),
		      "forwarded", json_pack("{s:o, s:o, s:o}",
					     "to_owner", u64(ps->packets[LB_NFT_OWNER_TO_OWNER]),
					     "second_chance",
					     u64(ps->packets[LB_NFT_OWNER_SECOND_CHANCE]),
					     "dropped", u64(ps->packets[LB_NFT_OWNER_DROPPED])),
		      "peers", peers);
	return o;
}
