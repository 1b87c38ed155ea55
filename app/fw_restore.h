/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A primary's start-up restore: every worker reads its own state region back into its own
 * table, all workers at once, each on a thread of its own (issue 15: one after another on
 * the main thread, 1 M connections took 242-778 ms). Nothing is shared between two
 * workers' restores -- region, client, table, slot pairs, context and counters are each
 * worker's -- and it runs before any worker forwards, so no lock is taken. Private to
 * holdfast.
 *
 * A restart with another number of workers than the run before (issue 16): a connection's
 * owner is fw_conn_owner(key, n), so some connections sit in the region of a worker that
 * does not own them now, or in the region of a worker that no longer exists (NAME.W, W >=
 * n: retired). Between reading the regions and finishing the connections, each such one
 * moves into its owner's table, and afterwards it is written into its owner's region
 * before its old copy goes, in this order:
 *
 *   1. the owner's checkpointer writes every slice of every moved connection (new slot
 *      pairs of its region) and the region is synced: a copy in the right place is durable;
 *   2. then the old copies' slot pairs in live workers' regions get pair tombstones
 *      (synced), and retired regions are deleted (the log first, then the state region).
 *
 * A kill -9 at any point leaves every connection at least once; one found twice at the
 * next start (a move cut short) is kept once: the copy with more slices, and of two alike
 * the one already in its owner's region (between 1 and 2 nothing forwarded, so two copies
 * alike say the same). A move never forwards a frame before step 2 is done: it runs before
 * the ports start.
 */
#ifndef FW_RESTORE_H
#define FW_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_lcore.h>

#include "fw_ckpt.h"
#include "fw_ckpt_layout.h"
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

/** What a restore moved between workers (another number of workers than the run before). */
struct fw_restore_moves {
	struct fw_restore_stats st; /**< retired regions' records, as fw_restore_add() counts */
	uint64_t misplaced;   /**< connections in a region whose worker does not own them now */
	uint64_t moved;	      /**< of those, restored into their owner */
	uint64_t duplicates;  /**< second copies dropped (a move cut short left them) */
	uint64_t no_room;     /**< their owner's table was full: not restored */
	uint64_t tombstoned;  /**< old copies' slot pairs tombstoned (live workers' regions and
				   kept retired ones) */
	unsigned int retired; /**< regions of workers >= n found and drained */
	unsigned int deleted; /**< of those, deleted */
	/** of those, kept: connections of theirs found no room in their owners' tables (what
	 * moved out of them is tombstoned there, the rest waits for a start with room) */
	unsigned int kept;
	/**
	 * 0, or -errno: the moved connections could not be made durable in their owners'
	 * regions (the old copies were kept, and the next start moves them again), or a
	 * retired region could not be read (it was kept).
	 */
	int rc;
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
 *
 * With @p layout (the workers' own: @p n workers of it), connections that another number
 * of workers left in the wrong region, and the regions of workers past @p n, are moved
 * into the workers that own them now, as above; *@p mv says what moved. Without (NULL),
 * each region is restored into its own worker, whoever owns what it holds.
 * @return 0, or -errno when a thread could not be started (then the workers that
 *   had none were restored on the caller's thread, one after another).
 */
int fw_restore_workers(struct fw_worker *const *workers, unsigned int n, const rte_cpuset_t *cpus,
		       const rte_cpuset_t *readers, const struct fw_ckpt_layout *layout,
		       struct fw_restore_result *res, struct fw_restore_moves *mv);

#endif /* FW_RESTORE_H */
