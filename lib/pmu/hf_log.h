/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging shared by lib/pmu, lib/ckpt and ckptsrv; the public switch is ckpt_log_set().
 * Private: the firewall routes these lines into rte_log through that switch.
 */
#ifndef HF_LOG_H
#define HF_LOG_H

#include <stdbool.h>

#include "holdfast/ckpt.h"

void ckpt_log(enum ckpt_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * On the calling thread only, log every line at DEBUG (a thread that retries what is
 * expected to fail, and whose outcome its owner logs once).
 */
void ckpt_log_quiet_thread(bool quiet);

#endif /* HF_LOG_H */
