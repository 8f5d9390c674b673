/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_CTL_OWNER_H
#define LB_CTL_OWNER_H

#include <jansson.h>

#include "lb/peers.h"

/* Status's "ownership" object (new reference): null without an ownership block. */
json_t *lb_ctl_ownership_json(const struct lb_peers_state *ps);

#endif
