/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's checkpointer: modules mark slices dirty, the worker queues the connection
 * once, and each tick writes the latest state of every queued slice into the worker's
 * state region NAME.W (batched, never waited for) and appends it to the worker's log
 * NAME.W.log, which a standby follows (best effort: see fw_ckpt_log.h). Repeated changes
 * before a tick coalesce into one write; an expired connection leaves tombstones. Private
 * to holdfast.
 */
#ifndef FW_CHECKPOINT_H
#define FW_CHECKPOINT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fw_ckpt.h"
#include "fw_ckpt_layout.h"
#include "fw_ckpt_log.h"
#include "holdfast/ckpt.h"

struct fw_ckpt_counters {
	uint64_t slices[FW_MOD_MAX]; /* slice records posted, per module */
	uint64_t tombstones;
	uint64_t bytes;
	uint64_t failures; /* posts refused by the target (not -EAGAIN) */
	uint64_t deferred; /* ticks that stopped on a full queue */
};

/** A connection to the target and the worker's regions there. */
struct fw_ckpt_link {
	struct ckpt_client *cl;
	struct ckpt_region *r, *log;
};

enum {
	FW_CKPT_JOB_IDLE,
	FW_CKPT_JOB_RUNNING,
	FW_CKPT_JOB_DONE
};

struct fw_checkpointer {
	struct fw_ckpt_layout layout; /* a copy: a reconnect thread reads it */
	unsigned int worker;
	struct fw_table *table; /* walked to resynchronise after the target comes back */
	struct ckpt_client *cl;
	struct ckpt_region *r; /* NULL while the target is down */
	struct fw_ckpt_log log;
	bool down;
	uint64_t retry_at_ns;
	uint64_t backoff_ns;
	uint64_t reconnects;
	/* A reconnect attempt runs on a thread of its own; the worker adopts its result. */
	pthread_t job_th;
	int job_state; /* FW_CKPT_JOB_*, written by the thread once: RUNNING -> DONE */
	int job_rc;
	struct fw_ckpt_link job_link;
	uint64_t idle_poll_at_ns;
	struct fw_slots *slots;
	struct fw_conn **queue; /* ring of connections with dirty slices */
	uint32_t qcap, qhead, qtail;
	uint64_t oldest_ns; /* when the oldest queued change was queued */
	bool now;	    /* a queued change is due at the next tick (FW_CONN_F_CKPT_NOW) */
	struct fw_ckpt_counters cnt;
};

/** fw_checkpointer_init() flag: a standby's; it attaches at takeover. */
#define FW_CKPT_DETACHED 0x1u

/**
 * Connect to @p layout's target and open worker @p worker's regions there (created on
 * first start), for the worker owning @p table. An unreachable target is not an error: the
 * checkpointer starts down and keeps retrying (k->r stays NULL). With FW_CKPT_DETACHED nothing is
 * opened until fw_checkpointer_attach().
 * @return 0, or -errno for what retrying cannot fix (memory, a region too small, bad
 *   target syntax, a refused secret).
 */
int fw_checkpointer_init(struct fw_checkpointer *k, const struct fw_ckpt_layout *layout,
			 unsigned int worker, struct fw_table *table, uint32_t queue_cap,
			 unsigned int flags);

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

void fw_checkpointer_release(struct fw_checkpointer *k);

/** Queue @p c once; its dirty bits say which slices to write at the next tick. */
static inline void fw_checkpointer_queue(struct fw_checkpointer *k, struct fw_conn *c, uint64_t now)
{
	if (c->flags & FW_CONN_F_CKPT_NOW) {
		c->flags &= (uint8_t)~FW_CONN_F_CKPT_NOW;
		k->now = true;
	}
	if (c->flags & FW_CONN_F_QUEUED)
		return;
	if (k->qtail - k->qhead == k->qcap)
		return; /* full: the slice stays dirty and is queued again by its next packet */
	if (k->qtail == k->qhead)
		k->oldest_ns = now;
	c->flags |= FW_CONN_F_QUEUED;
	k->queue[k->qtail++ % k->qcap] = c;
}

/**
 * Write what is queued (as far as the target takes it), flush, poll. Never waits for the
 * target; while it is down, retries the connection with backoff on a thread of its own
 * (the worker only looks whether the attempt finished) and, once back, queues every live
 * slice again.
 */
void fw_checkpointer_tick(struct fw_checkpointer *k, uint64_t now);

/**
 * @p c is going away: tombstone every checkpointed slice and free its slot pairs. A
 * tombstone the target cannot take now (away, or its queue full) is owed: its pair stays
 * taken until a tick writes it, so no restore brings @p c back.
 */
void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c);

/** Slice changes not yet durable: queued connections, owed tombstones and posted writes
 * not durable yet. */
uint64_t fw_checkpointer_lag(const struct fw_checkpointer *k);

#endif /* FW_CHECKPOINT_H */
