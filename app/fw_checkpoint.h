/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's checkpointer: modules mark slices dirty, the worker queues the connection
 * once, and the latest state of every queued slice goes into the worker's state region
 * NAME.W (batched, never waited for) and into the worker's log NAME.W.log, which a standby
 * follows (best effort: see fw_ckpt_log.h). Repeated changes before a drain coalesce into
 * one record; an expired connection leaves tombstones. Private to holdfast.
 *
 * Two halves, one per thread (issue 15: the worker paid for every write, flush and poll
 * itself, and forwarded 0.20-0.80 of its rate at 100 k new connections/s):
 *
 * - the worker's (fw_checkpointer_tick, _forget): the queue the fast path fills, the slot
 *   pairs and generations (fw_slots: allocated, owed and settled by the worker alone), and
 *   the encode. A drain turns each queued dirty slice into its record and hands it to a
 *   single-producer/single-consumer ring (rte_ring, SP/SC); nothing else.
 * - the I/O side (fw_checkpointer_io): the connection to the target, the regions, writes,
 *   log appends, flushes, polls, reconnects and the epoch binding. It runs on a thread of
 *   its own (fw_ckpt_io.h: a checkpoint lcore or a control thread), or, with
 *   fw_checkpointer_set_inline(), inside the worker's tick as before.
 *
 * Per slot pair, records reach the target in the order the worker made them (one ring,
 * FIFO, one consumer). A full ring loses nothing: the slice stays dirty and its connection
 * queued (retried at the next drain), and a tombstone that does not fit is owed as when
 * the target is away. The recovery point (fw_checkpointer_lag, the oldest change not yet
 * durable) counts the queue, the owed tombstones and every record handed over until the
 * I/O side reports it durable.
 */
#ifndef FW_CHECKPOINT_H
#define FW_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "fw_ckpt.h"
#include "fw_ckpt_layout.h"
#include "fw_ckpt_log.h"
#include "holdfast/ckpt.h"

struct fw_checkpointer;

/*
 * The hand-off from the fast path: a ring of connections with dirty slices, each queued
 * once, drained by the checkpointer's tick alone. Its fields are out in the open so that
 * queueing (fw_ckpt_queue_push) stays inline on the per-packet path, as cheap as before
 * the checkpointer's state became its own.
 */
struct fw_ckpt_queue {
	struct fw_conn **ring;
	uint32_t cap, head, tail;
	uint64_t oldest_ns; /* when the oldest queued change was queued */
	bool now;	    /* a queued change is due at the next tick (FW_CONN_F_CKPT_NOW) */
};

/** Queue @p c once; its dirty bits say which slices to write at the next tick. */
static inline void fw_ckpt_queue_push(struct fw_ckpt_queue *q, struct fw_conn *c, uint64_t now)
{
	if (c->flags & FW_CONN_F_CKPT_NOW) {
		c->flags &= (uint8_t)~FW_CONN_F_CKPT_NOW;
		q->now = true;
	}
	if (c->flags & FW_CONN_F_QUEUED)
		return;
	if (q->tail - q->head == q->cap)
		return; /* full: the slice stays dirty and is queued again by its next packet */
	if (q->tail == q->head)
		q->oldest_ns = now;
	c->flags |= FW_CONN_F_QUEUED;
	q->ring[q->tail++ % q->cap] = c;
}

/** Records in flight between a worker and its I/O side, at most (the ring's room). */
#define FW_CKPT_RING_MAX 8192

/** fw_checkpointer_create() flag: a standby's; it attaches at takeover. */
#define FW_CKPT_DETACHED 0x1u

/**
 * Connect to @p layout's target and open worker @p worker's regions there (created on
 * first start), for the worker owning @p table, with room to queue @p queue_cap
 * connections (every connection it may hold: a full queue leaves a change waiting for its
 * connection's next packet) and to hand @p ring_cap records over (0: min(@p queue_cap,
 * FW_CKPT_RING_MAX)). The I/O runs inline (fw_checkpointer_set_inline) until a runner
 * takes it (fw_ckpt_io_start). An unreachable target is not an error: the checkpointer
 * starts down and keeps retrying (fw_checkpointer_state() is NULL meanwhile). With
 * FW_CKPT_DETACHED nothing is opened until fw_checkpointer_attach().
 * @return the checkpointer, or NULL with errno for what retrying cannot fix
 *   (ckpt_err_transient: a region too small, bad target syntax, a refused secret), or
 *   ENOMEM, or EINVAL (no slot pairs, or too many; @p ring_cap over FW_CKPT_RING_MAX).
 */
struct fw_checkpointer *fw_checkpointer_create(const struct fw_ckpt_layout *layout,
					       unsigned int worker, struct fw_table *table,
					       uint32_t queue_cap, uint32_t ring_cap,
					       unsigned int flags);

/** Close what is open, forget the secret, free @p *kp; sets it to NULL. NULL is a no-op. */
void fw_checkpointer_destroy(struct fw_checkpointer **kp);

/**
 * A standby: open the primary's regions (which exist) ahead of a takeover. On failure the
 * checkpointer stays down, and fw_checkpointer_takeover() tries again.
 * @return 0 or -errno.
 */
int fw_checkpointer_attach(struct fw_checkpointer *k, uint64_t now);

/**
 * A standby taking over: continue the regions where the primary left them (open them now
 * if they are not open yet). On failure the checkpointer is down and retries, with a
 * resync, from its next tick. @return 0 or -errno.
 */
int fw_checkpointer_takeover(struct fw_checkpointer *k, uint64_t now);

/** The queue the worker's fast path fills (fw_ckpt_queue_push). */
struct fw_ckpt_queue *fw_checkpointer_queue(struct fw_checkpointer *k);

/**
 * The worker's side, every pass of its loop: hand what is due to the I/O side (the owed
 * tombstones first, then the queue, once TICK_BATCH connections wait, the oldest waited
 * 500 us, or a change is due now), resynchronise when the I/O side asks (every live slice
 * queued again after a reconnect), and, inline, run the I/O pass too. Never waits for the
 * target.
 * @return 0, or -ESTALE: the target refused us for a newer epoch (fenced); nothing more is
 *   written, and the worker must stop forwarding.
 */
int fw_checkpointer_tick(struct fw_checkpointer *k, uint64_t now);

/**
 * The I/O side, one pass: take what the worker handed over and write it (state slot and
 * log), flush, poll; while the target is down, retry the connection with backoff on a
 * thread of its own (the pass only looks whether the attempt finished). Called by one
 * thread at a time: the runner's (fw_ckpt_io.h), or the worker's tick when inline, or the
 * thread that owns @p k before either runs (start-up, a standby, shutdown). @p now is on
 * the workers' clock (fw_shared_now).
 * @return 1 if there was work (records taken, writes in flight), 0 if idle.
 */
int fw_checkpointer_io(struct fw_checkpointer *k, uint64_t now);

/**
 * Run the I/O side inside fw_checkpointer_tick() (@p on, the default) or leave it to a
 * runner. Changed only while neither the worker nor a runner uses @p k.
 */
void fw_checkpointer_set_inline(struct fw_checkpointer *k, bool on);

/**
 * Bind every connection of @p k, now and after each reconnect, to the epoch @p *epoch
 * (read again at each I/O pass: 0 until one is taken). A target without epochs binds
 * nothing. Called by the thread that runs @p k's I/O, or before a runner starts.
 * @return 0, -ESTALE (fenced already), or another -errno (the connection is retried and
 *   bound by a later tick).
 */
int fw_checkpointer_bind(struct fw_checkpointer *k, const uint64_t *epoch);

/**
 * @p c is going away (the worker's side): hand over a tombstone for every checkpointed
 * slice and free its slot pairs. A tombstone the ring has no room for is owed: its pair
 * stays taken until a drain hands its pair tombstone over, so no restore brings @p c back.
 * One handed over goes to the target after every record of the pair handed before it.
 */
void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c);

/**
 * Everything @p k holds made durable, as a stop or a moved connection needs it: every queued
 * change, owed tombstone and record handed over written (I/O inline, on this thread: no
 * runner may hold @p k), then the state region and the log synced. @p now is on the
 * workers' clock; it moves on with the time spent here.
 * @return 0; -ESTALE (fenced: nothing more is written); -EBUSY (a runner holds the I/O);
 *   -ETIMEDOUT (not all durable within @p timeout_ns: the target is away, or too slow);
 *   or the -errno of ckpt_sync().
 */
int fw_checkpointer_sync(struct fw_checkpointer *k, uint64_t now, uint64_t timeout_ns);

/** Slice changes not yet durable: queued connections, owed tombstones and records handed
 * to the I/O side that it has not seen durable yet. Any thread may ask. */
uint64_t fw_checkpointer_lag(const struct fw_checkpointer *k);

/** The worker's state region, to restore from; NULL while the target is down. */
struct ckpt_region *fw_checkpointer_state(const struct fw_checkpointer *k);

/** The worker's log; NULL without one (ckpt-log-size 0) or while the target is down. */
struct ckpt_region *fw_checkpointer_log(const struct fw_checkpointer *k);

/** The connection to the target (to poll it, or ask about regions); NULL while down. */
struct ckpt_client *fw_checkpointer_client(const struct fw_checkpointer *k);

/** The worker's slot pairs: a restore claims the pairs of what it restores. */
struct fw_slots *fw_checkpointer_slots(const struct fw_checkpointer *k);

/** What a checkpointer did and where it stands (telemetry; read while the worker runs). */
struct fw_ckpt_stats {
	uint64_t slices[FW_MOD_MAX]; /**< slice records posted, per module */
	uint64_t tombstones;
	uint64_t tombstones_owed; /**< pairs waiting for their tombstone */
	uint64_t bytes;
	uint64_t failures;    /**< posts refused by the target (not -EAGAIN), slices that did
				 not encode or found no slot pair */
	uint64_t deferred;    /**< I/O passes that stopped on the target's full queue */
	uint64_t ring_full;   /**< drains that stopped on a full ring (retried) */
	uint64_t handed;      /**< records handed to the I/O side, not durable yet */
	uint64_t log_records; /**< appended to the log */
	uint64_t log_gaps;    /**< times the log filled up (no standby reading) */
	uint64_t queued;      /**< connections waiting in the queue */
	uint64_t oldest_ns;   /**< when the oldest change not durable yet was queued (0: none) */
	uint64_t lag;	      /**< fw_checkpointer_lag() */
	uint64_t reconnects;
	uint64_t worker_io_passes; /**< I/O passes the worker ran itself (inline) */
	uint64_t io_passes;	   /**< I/O passes that found work, by whichever thread */
	int io_tid;		   /**< Linux thread id of the last one (0: none yet) */
	bool down;		   /**< the target is away */
	bool reconnecting;	   /**< an attempt runs on its thread */
	bool log_gap;		   /**< the log skipped records and has no marker yet */
	bool due_now;		   /**< a queued change is due at the next tick */
};

void fw_checkpointer_stats(const struct fw_checkpointer *k, struct fw_ckpt_stats *out);

/**
 * For tests: the target goes away as a failed write finds it (regions closed, down), and
 * the next attempt to reconnect is made from @p retry_at_ns on (0: the next tick,
 * UINT64_MAX: not until called again). Called again while down, only moves the attempt.
 */
void fw_checkpointer_test_down(struct fw_checkpointer *k, uint64_t retry_at_ns);

#endif /* FW_CHECKPOINT_H */
