// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lb/log.h"

static enum lb_log_level log_level = LB_LOG_INFO;
static char log_tag[32] = "lb";

static const char *const level_names[] = {
	[LB_LOG_ERR] = "error",
	[LB_LOG_WARN] = "warning",
	[LB_LOG_INFO] = "info",
	[LB_LOG_DEBUG] = "debug",
};

void lb_log_init(enum lb_log_level level, const char *tag)
{
	log_level = level;
	snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

void lb_log(enum lb_log_level level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ lb[%d] %s: %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(), log_tag,
		     level_names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	/* One write per line so lines from master and workers never interleave. */
	if (write(STDERR_FILENO, line, n) == -1)
		return;
}
