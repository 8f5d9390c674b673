// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "clients" reply (docs/control.md): per service, what its per-client
 * rules refused and the clients holding the most connections open now.
 */
#include <inttypes.h>
#include <stdlib.h>

#include <jansson.h>

#include "lb/addr.h"
#include "lb/ctl.h"

static json_t *ju64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

json_t *lb_ctl_clients_json(const struct lb_ctl_state *st, size_t i, size_t top)
{
	const struct lb_service_conf *svc = &st->cfg->services[i];
	const struct lb_clients_conf *cl = &svc->clients;
	struct lb_shm_service *ss = &st->shm->services[i];
	struct lb_clients_top *t = calloc(top ? top : 1, sizeof(*t));
	json_t *list = json_array(), *o = NULL;
	size_t n;

	if (!t || !list)
		goto cleanup;
	n = lb_clients_top(st->shm->pool->clients, ss->clients_key, t, top);
	for (size_t k = 0; k < n; k++) {
		char buf[LB_ADDR_STRLEN];

		if (json_array_append_new(list, json_pack("{s:s, s:i}", "client",
			lb_addr_format_ip(&t[k].addr, buf, sizeof(buf)), "connections",
			(int)t[k].conns)) < 0)
			goto cleanup;
	}
	o = json_pack("{s:s, s:b, s:b, s:i, s:i, s:{s:o, s:o, s:o}, s:O}",
		      "name", svc->name,
		      "allow", cl->allow != NULL, "deny", cl->n_deny > 0,
		      "rate", (int)cl->rate, "max_conns", (int)cl->max_conns,
		      "refused",
		      "deny", ju64(atomic_load(&ss->client_deny)),
		      "rate", ju64(atomic_load(&ss->client_rate)),
		      "max_conns", ju64(atomic_load(&ss->client_conns)),
		      "top", list);
cleanup:
	json_decref(list);
	free(t);
	return o;
}
