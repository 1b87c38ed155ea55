/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The checkpoint I/O runner (issue 15): one loop that runs the I/O half of every worker's
 * checkpointer (fw_checkpointer_io) off the workers' cores, so that a worker's cost of
 * checkpointing is encoding and handing records over, whatever the target. Where it runs
 * is `ckpt-lcore` (fw_config.h):
 *
 * - an lcore of its own (`ckpt-lcore N`), launched with rte_eal_remote_launch: it
 *   busy-polls, as an lcore does, and is not a worker;
 * - a control thread `hf-ckpt` (`ckpt-lcore thread`, and `auto`'s choice, the default, for
 *   a ckptsrv target or a group): on the CPUs no lcore
 *   uses (fw_thread_start), napping when a pass found nothing to do (50 us, growing to
 *   1 ms while idle). It keeps the
 *   I/O off the worker when EAL was given a single lcore, as every test and most
 *   deployments do, without taking a core from the workers;
 * - none (`ckpt-lcore inline`, and `auto`'s choice for a pmem: target): each worker's tick
 *   runs its own I/O, as before issue 15: for a host where every CPU runs a worker, so that
 *   a thread would only preempt one; and for pmem:, whose writes are then durable before
 *   the worker's next burst (main.c, ckpt_io_start).
 *
 * Private to holdfast.
 */
#ifndef FW_CKPT_IO_H
#define FW_CKPT_IO_H

#include "fw_checkpoint.h"

/** fw_ckpt_io_start() @p lcore: a control thread, not an lcore. */
#define FW_CKPT_IO_THREAD (-1)

struct fw_ckpt_io;

/**
 * Take the I/O of @p ks[0 .. @p n) off their workers' ticks (fw_checkpointer_set_inline)
 * and run it on @p lcore, or on a control thread with FW_CKPT_IO_THREAD. Call before the
 * workers run; until fw_ckpt_io_stop() only the runner touches the checkpointers' I/O
 * halves.
 * @return the runner, or NULL with errno: EINVAL (@p lcore is not an enabled lcore, or is
 *   the main lcore), EBUSY (it runs something already), ENOMEM, or the thread's error.
 */
struct fw_ckpt_io *fw_ckpt_io_start(struct fw_checkpointer *const *ks, unsigned int n, int lcore);

/**
 * Stop the runner and wait for it; the checkpointers' I/O runs inside their ticks again.
 * Sets @p *iop to NULL; NULL is a no-op.
 */
void fw_ckpt_io_stop(struct fw_ckpt_io **iop);

/** Where it runs: "lcore N" or "thread hf-ckpt" (telemetry, the start line). */
const char *fw_ckpt_io_where(const struct fw_ckpt_io *io);

#endif /* FW_CKPT_IO_H */
