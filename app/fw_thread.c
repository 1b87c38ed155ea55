/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>

#include <rte_lcore.h>

#include "fw_thread.h"

int fw_thread_start(pthread_t *th, const char *name, void *(*fn)(void *), void *arg)
{
	int rc;

	if (rte_lcore_count() > 0)
		return rte_ctrl_thread_create(th, name, NULL, fn, arg);
	rc = pthread_create(th, NULL, fn, arg);
	if (rc)
		return -rc;
	pthread_setname_np(*th, name);
	return 0;
}
