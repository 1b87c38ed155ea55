/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging shared by lib/pmu, lib/ckpt and ckptsrv; the public switch is ckpt_log_set().
 * Private: the firewall routes these lines into rte_log through that switch.
 */
#ifndef HF_LOG_H
#define HF_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "holdfast/ckpt.h"

void ckpt_log(enum ckpt_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * On the calling thread only, log every line at DEBUG (a thread that retries what is
 * expected to fail, and whose outcome its owner logs once).
 */
void ckpt_log_quiet_thread(bool quiet);

/*
 * A call site whose lines a peer can provoke at will (a refused connection, a failed
 * authentication, a malformed message) logs through a limit: at most a burst of lines per
 * interval, and the rest only counted. The last line held back comes out once its interval
 * is over, as "LINE (K more like this in the last S s)" where K counts every line held
 * back: on the site's next line, or from ckpt_log_limits_flush(), whichever comes first.
 * Lines below the level that would print are neither printed nor counted.
 */
struct ckpt_log_limit {
	pthread_mutex_t lock;
	uint64_t start_ms;	   /* start of the interval (the limit's clock), once a line came */
	unsigned int printed;	   /* lines printed in this interval */
	unsigned int missed;	   /* lines held back in this interval */
	enum ckpt_log_level level; /* of the last line held back */
	const char *component;
	char last[512];		     /* the last line held back */
	struct ckpt_log_limit *next; /* sites that held lines back, for the flush */
	bool listed;
};

#define CKPT_LOG_LIMIT_INIT                                                                        \
	{                                                                                          \
		.lock = PTHREAD_MUTEX_INITIALIZER                                                  \
	}

/* ckpt_log() through a limit of its own at this call site. */
#define CKPT_LOG_LIMITED(level, component, ...)                                                    \
	do {                                                                                       \
		static struct ckpt_log_limit site_limit_ = CKPT_LOG_LIMIT_INIT;                    \
		ckpt_log_limited(&site_limit_, (level), (component), __VA_ARGS__);                 \
	} while (0)

void ckpt_log_limited(struct ckpt_log_limit *l, enum ckpt_log_level level, const char *component,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Every limit's burst and interval (1 and 1 ms at least); 10 lines per 10 s until set. */
void ckpt_log_limit_set(unsigned int burst, unsigned int interval_ms);

/* Print the count line of every limit whose interval with lines held back is over. */
void ckpt_log_limits_flush(void);

/* The limits' clock in ms (tests); NULL restores CLOCK_MONOTONIC. */
void ckpt_log_limit_clock(uint64_t (*now_ms)(void));

#endif /* HF_LOG_H */
