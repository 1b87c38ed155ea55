/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Background threads (the lease keeper, the standby's lease watch, a checkpointer's reconnect
 * attempts) placed off the workers' CPUs. A thread inherits its creator's affinity, and
 * their creators run on busy-polling lcores: a lease renewal that waits for the worker's CPU
 * lets the lease lapse. Private to holdfast.
 */
#ifndef FW_THREAD_H
#define FW_THREAD_H

#include <pthread.h>

/**
 * Start @p fn(@p arg) as a thread named @p name (at most 15 characters) on the CPUs no lcore
 * uses (EAL's control-thread CPUs: the main lcore's when every CPU is an lcore). Before EAL
 * is initialised (unit tests) there is no lcore to avoid and the thread inherits the
 * caller's affinity.
 * @return 0 or -errno (of pthread_create, or of the affinity).
 */
int fw_thread_start(pthread_t *th, const char *name, void *(*fn)(void *), void *arg);

#endif /* FW_THREAD_H */
