/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's checkpointer: modules mark slices dirty, the worker queues the connection
 * once, and each tick writes the latest state of every queued slice into the worker's
 * state region NAME.W (batched, never waited for) and appends it to the worker's log
 * NAME.W.log, which a standby follows (best effort: see fw_ckpt_log.h). Repeated changes
 * before a tick coalesce into one write; an expired connection leaves tombstones. Private
 * to holdfast.
 *
 * The checkpointer's state is its own (fw_checkpoint.c); others see the queue the fast
 * path fills, and what the functions below tell.
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

/** fw_checkpointer_create() flag: a standby's; it attaches at takeover. */
#define FW_CKPT_DETACHED 0x1u

/**
 * Connect to @p layout's target and open worker @p worker's regions there (created on
 * first start), for the worker owning @p table, with room to queue @p queue_cap
 * connections. An unreachable target is not an error: the checkpointer starts down and
 * keeps retrying (fw_checkpointer_state() is NULL meanwhile). With FW_CKPT_DETACHED
 * nothing is opened until fw_checkpointer_attach().
 * @return the checkpointer, or NULL with errno for what retrying cannot fix
 *   (ckpt_err_transient: a region too small, bad target syntax, a refused secret), or
 *   ENOMEM, or EINVAL (no slot pairs, or too many).
 */
struct fw_checkpointer *fw_checkpointer_create(const struct fw_ckpt_layout *layout,
					       unsigned int worker, struct fw_table *table,
					       uint32_t queue_cap, unsigned int flags);

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
 * Write what is queued (as far as the target takes it), flush, poll. Never waits for the
 * target; while it is down, retries the connection with backoff on a thread of its own
 * (the worker only looks whether the attempt finished) and, once back, queues every live
 * slice again.
 * @return 0, or -ESTALE: the target refused us for a newer epoch (fenced); nothing more is
 *   written, and the worker must stop forwarding.
 */
int fw_checkpointer_tick(struct fw_checkpointer *k, uint64_t now);

/**
 * Bind every connection of @p k, now and after each reconnect, to the epoch @p *epoch
 * (read again at each tick: 0 until one is taken). A target without epochs binds nothing.
 * Called by the thread that ticks @p k.
 * @return 0, -ESTALE (fenced already), or another -errno (the connection is retried and
 *   bound by a later tick).
 */
int fw_checkpointer_bind(struct fw_checkpointer *k, const uint64_t *epoch);

/**
 * @p c is going away: tombstone every checkpointed slice and free its slot pairs. A
 * tombstone the target cannot take now (away, or its queue full) is owed: its pair stays
 * taken until a tick writes it, so no restore brings @p c back.
 */
void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c);

/** Slice changes not yet durable: queued connections, owed tombstones and posted writes
 * not durable yet. */
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
	uint64_t failures;    /**< posts refused by the target (not -EAGAIN) */
	uint64_t deferred;    /**< ticks that stopped on a full queue */
	uint64_t log_records; /**< appended to the log */
	uint64_t log_gaps;    /**< times the log filled up (no standby reading) */
	uint64_t queued;      /**< connections waiting in the queue */
	uint64_t oldest_ns;   /**< when the oldest of them was queued (0: by a resync) */
	uint64_t lag;	      /**< fw_checkpointer_lag() */
	uint64_t reconnects;
	bool down;	   /**< the target is away */
	bool reconnecting; /**< an attempt runs on its thread */
	bool log_gap;	   /**< the log skipped records and has no marker yet */
	bool due_now;	   /**< a queued change is due at the next tick */
};

void fw_checkpointer_stats(const struct fw_checkpointer *k, struct fw_ckpt_stats *out);

/**
 * For tests: the target goes away as a failed write finds it (regions closed, down), and
 * the next attempt to reconnect is made from @p retry_at_ns on (0: the next tick,
 * UINT64_MAX: not until called again). Called again while down, only moves the attempt.
 */
void fw_checkpointer_test_down(struct fw_checkpointer *k, uint64_t retry_at_ns);

#endif /* FW_CHECKPOINT_H */
