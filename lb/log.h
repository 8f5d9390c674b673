/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_LOG_H
#define LB_LOG_H

enum lb_log_level {
	LB_LOG_ERR,
	LB_LOG_WARN,
	LB_LOG_INFO,
	LB_LOG_DEBUG,
};

/* Sets the threshold and the tag ("master", "worker[1]") put on each line. */
void lb_log_init(enum lb_log_level level, const char *tag);

/* One line to stderr: "lb[pid] tag: level: message". */
void lb_log(enum lb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define lb_err(...)	lb_log(LB_LOG_ERR, __VA_ARGS__)
#define lb_warn(...)	lb_log(LB_LOG_WARN, __VA_ARGS__)
#define lb_info(...)	lb_log(LB_LOG_INFO, __VA_ARGS__)
#define lb_debug(...)	lb_log(LB_LOG_DEBUG, __VA_ARGS__)

#endif
