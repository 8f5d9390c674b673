// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lb/log.h"

#define LINE_MAX_LEN 2048

static enum lb_log_level log_level = LB_LOG_INFO;
static char log_proc[32] = "lb";
static bool log_syslog;

static const char *const level_names[] = {
	[LB_LOG_ERR] = "error",
	[LB_LOG_WARN] = "warning",
	[LB_LOG_INFO] = "info",
	[LB_LOG_DEBUG] = "debug",
};

static const int syslog_levels[] = {
	[LB_LOG_ERR] = LOG_ERR,
	[LB_LOG_WARN] = LOG_WARNING,
	[LB_LOG_INFO] = LOG_INFO,
	[LB_LOG_DEBUG] = LOG_DEBUG,
};

void lb_log_init(enum lb_log_level level, const char *proc)
{
	log_level = level <= LB_LOG_DEBUG ? level : LB_LOG_INFO;
	snprintf(log_proc, sizeof(log_proc), "%s", proc);
}

void lb_log_use_syslog(bool on)
{
	if (on && !log_syslog)
		openlog("lb", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && log_syslog)
		closelog();
	log_syslog = on;
}

/* Starts a line with the fields every line has; returns its length. */
static int line_start(char *line, size_t len, enum lb_log_level level)
{
	struct timespec ts;
	struct tm tm;

	if (log_syslog)
		return snprintf(line, len, "proc=%s ", log_proc);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	return snprintf(line, len, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s pid=%d ",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], log_proc,
			(int)getpid());
}

static void line_end(char *line, size_t n, enum lb_log_level level)
{
	if (log_syslog) {
		syslog(syslog_levels[level], "%.*s", (int)n, line);
		return;
	}
	line[n++] = '\n';
	/* One write per line so lines from master and workers never interleave. */
	if (write(STDERR_FILENO, line, n) == -1)
		return;
}

void lb_log(enum lb_log_level level, const char *fmt, ...)
{
	char msg[LINE_MAX_LEN], line[LINE_MAX_LEN + 64];
	size_t n, cap = sizeof(line) - 2;
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = line_start(line, cap, level);
	if (n + 6 < cap) {
		memcpy(line + n, "msg=\"", 5);
		n += 5;
	}
	/* Quoted, with the two characters that could end it escaped. */
	for (const char *p = msg; *p && n + 3 < cap; p++) {
		if (*p == '"' || *p == '\\')
			line[n++] = '\\';
		line[n++] = *p == '\n' ? ' ' : *p;
	}
	line[n++] = '"';
	line_end(line, n, level);
}

void lb_log_fields(enum lb_log_level level, const char *fmt, ...)
{
	char line[LINE_MAX_LEN + 64];
	size_t n, cap = sizeof(line) - 2;
	va_list ap;
	int m;

	if (level > log_level)
		return;
	n = line_start(line, cap, level);
	va_start(ap, fmt);
	m = vsnprintf(line + n, cap - n, fmt, ap);
	va_end(ap);
	n += m < 0 ? 0 : ((size_t)m < cap - n ? (size_t)m : cap - n - 1);
	line_end(line, n, level);
}
