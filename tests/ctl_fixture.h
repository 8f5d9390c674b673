/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_TESTS_CTL_FIXTURE_H
#define LB_TESTS_CTL_FIXTURE_H

#include <jansson.h>

#include "lb/ctl.h"

/*
 * Set up by ctl_fixture_setup() (a checked fixture) and freed by
 * ctl_fixture_teardown(): two services, "web" (VIPs 198.18.100.1:80 and
 * [2001:db8:100::1]:80; backends 198.18.2.2:80, 198.18.2.3:80 of weight 5
 * and [2001:db8:2::2]:80) and "db" (maglev, 198.18.100.2:5432, one backend
 * with max_conns 10); its shm with two running workers of generation 1;
 * and the control state over both, started 5 s ago from /etc/lb/lb.json.
 */
extern struct lb_config *cfg;
extern struct lb_shm *shm;
extern struct lb_ctl_state st;

void ctl_fixture_setup(void);
void ctl_fixture_teardown(void);

/* Sends req (single quotes become double) and returns the parsed reply, checked to be one line. */
json_t *ask(const char *req);
/* The data of a successful reply; *reply is the reply, for the caller to decref. */
json_t *ask_ok(const char *req, json_t **reply);
/* Asserts an error reply with code, and argument and message when they are not NULL. */
void ask_err(const char *req, const char *code, const char *arg, const char *msg);
/* Member key of o, asserted to be a string / an integer. */
const char *sget(json_t *o, const char *key);
json_int_t iget(json_t *o, const char *key);

#endif
