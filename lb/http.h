/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_HTTP_H
#define LB_HTTP_H

#include <stdbool.h>
#include <sys/types.h>

#include "lb/config.h"
#include "lb/ctl.h"
#include "lb/loop.h"

/*
 * The read-only HTTP management listener (docs/monitoring.md): /metrics,
 * /status.json and a status page, served by libmicrohttpd in a process of
 * its own that the master forks and supervises like a worker. The master
 * opens the listening socket (so a port below 1024 works and a restart
 * keeps its queue); the process runs as the workers' user with no
 * capability and reads the shared memory, never asking the master
 * anything, so no request can slow or change it.
 */

struct lb_http;

/*
 * The master's handle; starts nothing. st is the control socket's state,
 * the master's view that the process reports (a copy taken at each fork).
 * NULL when out of memory.
 */
struct lb_http *lb_http_alloc(struct lb_loop *loop, const struct lb_ctl_state *st);

/*
 * Makes the listener match cfg (from st->cfg): off when cfg has no "http",
 * else listening on cfg->http.listen, with a fresh process reading st's
 * current config and shared memory. Call it at start and after each
 * reload. A process is started at the next turn of the loop, so it sees
 * what the rest of the batch records (the reload's outcome). Returns 0 or
 * -errno with a one-line reason in err.
 */
int lb_http_apply(struct lb_http *h, char *err, size_t errlen);

/*
 * For the master's SIGCHLD handling: true when pid was the HTTP process,
 * which is then started again (unless restart is false: lb is stopping).
 */
bool lb_http_reaped(struct lb_http *h, pid_t pid, int status, bool restart);

/* The process's pid, 0 when none runs. */
pid_t lb_http_pid(const struct lb_http *h);

/* Stops the process (waiting for it) and closes the listener. NULL is fine. */
void lb_http_free(struct lb_http *h);

#endif
