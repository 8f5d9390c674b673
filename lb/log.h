/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LOG_H
#define LB_LOG_H

#include <stdbool.h>

enum lb_log_level {
	LB_LOG_ERR,
	LB_LOG_WARN,
	LB_LOG_INFO,
	LB_LOG_DEBUG,
};

/* Sets the threshold and the process name ("master", "worker[1]") on each line. */
void lb_log_init(enum lb_log_level level, const char *proc);

/* Sends lines to syslog (daemon facility) instead of stderr. */
void lb_log_use_syslog(bool on);

/*
 * One line per event, key=value:
 *   time=2026-12-01T07:58:45.123Z level=info proc=master pid=12 msg="..."
 * With syslog, the time and level go to syslog's own fields.
 */
void lb_log(enum lb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Like lb_log() but the caller writes the fields itself (fmt is
 * "key=value key=value ..."), for lines that scripts parse, such as the
 * access log.
 */
void lb_log_fields(enum lb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define lb_err(...)	lb_log(LB_LOG_ERR, __VA_ARGS__)
#define lb_warn(...)	lb_log(LB_LOG_WARN, __VA_ARGS__)
#define lb_info(...)	lb_log(LB_LOG_INFO, __VA_ARGS__)
#define lb_debug(...)	lb_log(LB_LOG_DEBUG, __VA_ARGS__)

#endif
