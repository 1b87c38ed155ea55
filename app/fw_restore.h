/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A primary's start-up restore: every worker reads its own state region back into its own
 * table, all workers at once, each on a thread of its own (issue 15: one after another on
 * the main thread, 1 M connections took 242-778 ms). Nothing is shared between two
 * workers' restores -- region, client, table, slot pairs, context and counters are each
 * worker's -- and it runs before any worker forwards, so no lock is taken. Private to
 * holdfast.
 */
#ifndef FW_RESTORE_H
#define FW_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_lcore.h>

#include "fw_ckpt.h"
#include "fw_worker.h"
#include "holdfast/ckpt.h"

/** What one worker's restore did. */
struct fw_restore_result {
	struct fw_restore_stats st; /**< as fw_restore_add() and fw_restore_finish() count */
	struct ckpt_scan_stats ss;  /**< as ckpt_state_scan() counts */
	/**
	 * 0; -ENOTCONN: the worker's checkpointer had no state region (target unreachable),
	 * nothing restored; -ENOMEM; or ckpt_state_scan()'s -errno: the connections read
	 * until then are in the table, not finished.
	 */
	int rc;
	uint64_t ns; /**< from the start of the restore to the end of this worker's */
};

/**
 * Restore *@p workers[0 .. @p n) from their checkpointers' state regions (ckpt_state_scan
 * with tombstones, fw_restore_batch, fw_restore_finish), one thread per worker: worker 0
 * on the caller's thread, each other one on a thread of its own that runs on @p cpus[i]
 * (a worker's lcore, idle until it forwards), or where the caller may run if @p cpus is
 * NULL. With @p readers holding more CPUs than there are workers, each region is read,
 * validated and decoded on a thread of its own there while its worker's thread inserts
 * (ckpt_state_scan_split: the same records in the same order), and the finish's walk is
 * shared with a thread there (fw_restore_finish_local). Returns when every one is done;
 * *@p res[i] says how worker i's went.
 * @return 0, or -errno when a thread could not be started (then the workers that
 *   had none were restored on the caller's thread, one after another).
 */
int fw_restore_workers(struct fw_worker *const *workers, unsigned int n, const rte_cpuset_t *cpus,
		       const rte_cpuset_t *readers, struct fw_restore_result *res);

#endif /* FW_RESTORE_H */
