/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "hf_log.h"

#define LIMIT_BURST	  10
#define LIMIT_INTERVAL_MS 10000

static ckpt_log_fn log_fn;
static enum ckpt_log_level log_max = CKPT_LOG_NOTICE;
static _Thread_local bool log_quiet;

static unsigned int limit_burst = LIMIT_BURST;
static unsigned int limit_interval_ms = LIMIT_INTERVAL_MS;
static uint64_t (*limit_clock)(void);
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ckpt_log_limit *limits; /* sites that held lines back */

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

/* The level a line is logged at on this thread, and whether it is printed at all. */
static bool wanted(enum ckpt_log_level *level)
{
	if (log_quiet)
		*level = CKPT_LOG_DEBUG;
	return log_fn != NULL || *level <= log_max;
}

static void emit(enum ckpt_log_level level, const char *component, const char *msg)
{
	struct timespec ts;

	if (log_fn != NULL) {
		log_fn(level, component, msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "%lld.%06ld %s %s: %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000,
		level_name(level), component, msg);
}

void ckpt_log(enum ckpt_log_level level, const char *component, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!wanted(&level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, component, msg);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	if (limit_clock != NULL)
		return limit_clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void ckpt_log_limit_set(unsigned int burst, unsigned int interval_ms)
{
	limit_burst = burst > 0 ? burst : 1;
	limit_interval_ms = interval_ms > 0 ? interval_ms : 1;
}

void ckpt_log_limit_clock(uint64_t (*now_ms)(void))
{
	limit_clock = now_ms;
}

/* Close @p l's interval if it is over, with the count line. Caller holds l->lock. */
static void limit_roll(struct ckpt_log_limit *l, uint64_t now)
{
	char msg[640];

	if ((l->printed == 0 && l->missed == 0) || now - l->start_ms < limit_interval_ms)
		return;
	if (l->missed > 0) {
		snprintf(msg, sizeof(msg), "%s (%u more like this in the last %llu s)", l->last,
			 l->missed, (unsigned long long)(now - l->start_ms + 999) / 1000);
		emit(l->level, l->component, msg);
	}
	l->printed = 0;
	l->missed = 0;
}

void ckpt_log_limited(struct ckpt_log_limit *l, enum ckpt_log_level level, const char *component,
		      const char *fmt, ...)
{
	uint64_t now = mono_ms();
	va_list ap;

	if (!wanted(&level))
		return;
	pthread_mutex_lock(&l->lock);
	limit_roll(l, now);
	if (l->printed == 0 && l->missed == 0)
		l->start_ms = now;
	if (l->printed < limit_burst) {
		char msg[512];

		l->printed++;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		emit(level, component, msg);
	} else {
		l->missed++;
		l->level = level;
		l->component = component;
		va_start(ap, fmt);
		vsnprintf(l->last, sizeof(l->last), fmt, ap);
		va_end(ap);
	}
	if (l->missed > 0 && !l->listed) {
		pthread_mutex_lock(&limits_lock);
		l->next = limits;
		limits = l;
		l->listed = true;
		pthread_mutex_unlock(&limits_lock);
	}
	pthread_mutex_unlock(&l->lock);
}

void ckpt_log_limits_flush(void)
{
	uint64_t now = mono_ms();
	struct ckpt_log_limit *l;

	pthread_mutex_lock(&limits_lock);
	l = limits;
	pthread_mutex_unlock(&limits_lock);
	/* Sites are only ever added, at the head: the list from here on stays as read. */
	for (; l != NULL; l = l->next) {
		pthread_mutex_lock(&l->lock);
		limit_roll(l, now);
		pthread_mutex_unlock(&l->lock);
	}
}
