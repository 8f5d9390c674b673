// SPDX-License-Identifier: GPL-2.0-or-later
#include "lb/balance.h"

static int usable(const struct lb_backend_conf *b, int family)
{
	return b->addr.sa.sa_family == family && b->weight > 0;
}

int lb_balance_rr_next(const struct lb_service_conf *svc, int family, unsigned int *cursor)
{
	size_t n = svc->n_backends;

	for (size_t step = 1; step <= n; step++) {
		size_t i = (*cursor + step) % n;

		if (usable(&svc->backends[i], family)) {
			*cursor = i;
			return (int)i;
		}
	}
	return -1;
}

unsigned int lb_balance_count(const struct lb_service_conf *svc, int family)
{
	unsigned int count = 0;

	for (size_t i = 0; i < svc->n_backends; i++)
		count += usable(&svc->backends[i], family);
	return count;
}
