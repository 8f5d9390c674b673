/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_BALANCE_H
#define LB_BALANCE_H

#include "lb/config.h"

/*
 * Round robin: returns the index of the next backend of `family` whose
 * weight is not 0, starting after *cursor, and stores it in *cursor.
 * Returns -1 when the service has no such backend.
 */
int lb_balance_rr_next(const struct lb_service_conf *svc, int family, unsigned int *cursor);

/* Number of backends of `family` with a weight above 0. */
unsigned int lb_balance_count(const struct lb_service_conf *svc, int family);

#endif
