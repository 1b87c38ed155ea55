/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "hf_log.h"

static ckpt_log_fn log_fn;
static enum ckpt_log_level log_max = CKPT_LOG_NOTICE;
static _Thread_local bool log_quiet;

void ckpt_log_set(ckpt_log_fn fn, enum ckpt_log_level max_level)
{
	log_fn = fn;
	log_max = max_level;
}

void ckpt_log_quiet_thread(bool quiet)
{
	log_quiet = quiet;
}

static const char *level_name(enum ckpt_log_level level)
{
	switch (level) {
	case CKPT_LOG_ERR:
		return "ERR";
	case CKPT_LOG_WARNING:
		return "WARNING";
	case CKPT_LOG_NOTICE:
		return "NOTICE";
	case CKPT_LOG_INFO:
		return "INFO";
	case CKPT_LOG_DEBUG:
		return "DEBUG";
	}
	return "?";
}

void ckpt_log(enum ckpt_log_level level, const char *component, const char *fmt, ...)
{
	char msg[512];
	struct timespec ts;
	va_list ap;

	if (log_quiet)
		level = CKPT_LOG_DEBUG;
	if (log_fn == NULL && level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_fn != NULL) {
		log_fn(level, component, msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "%lld.%06ld %s %s: %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000,
		level_name(level), component, msg);
}
