/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_MASTER_H
#define LB_MASTER_H

#include "lb/config.h"

/*
 * Runs lb: preflight checks, listeners, rules, workers, supervision, until
 * SIGTERM/SIGINT. Takes ownership of cfg. Returns the process exit status.
 */
int lb_master_run(const char *config_path, struct lb_config *cfg);

#endif
