/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_PREFLIGHT_H
#define LB_PREFLIGHT_H

#include "lb/config.h"

/*
 * Checks what lb needs from the host before it changes anything: the
 * capabilities it must hold (fatal) and the sysctls that silently break
 * transparent proxying (warnings). Each problem is logged with its fix.
 * Returns 0, or -EPERM when lb cannot run.
 */
int lb_preflight(const struct lb_config *cfg);

#endif
