/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's checkpointer: modules mark slices dirty, the worker queues the connection
 * once, and each tick writes the latest state of every queued slice into the worker's
 * share of the state region (batched, never waited for). Repeated changes before a tick
 * coalesce into one write; an expired connection leaves tombstones. Private to holdfast.
 */
#ifndef FW_CHECKPOINT_H
#define FW_CHECKPOINT_H

#include <stdint.h>

#include "fw_ckpt.h"
#include "holdfast/ckpt.h"

struct fw_ckpt_counters {
	uint64_t slices[FW_MOD_MAX]; /* slice records posted, per module */
	uint64_t tombstones;
	uint64_t bytes;
	uint64_t failures; /* posts refused by the target (not -EAGAIN) */
	uint64_t deferred; /* ticks that stopped on a full queue */
};

struct fw_checkpointer {
	struct ckpt_client *cl;
	struct ckpt_region *r;
	struct fw_slots *slots;
	struct fw_conn **queue; /* ring of connections with dirty slices */
	uint32_t qcap, qhead, qtail;
	uint64_t oldest_ns; /* when the oldest queued change was queued */
	struct fw_ckpt_counters cnt;
};

/**
 * Open @p target's state region @p region (created on first start with room for
 * @p pairs slot pairs of @p slot_size) and take pairs [first, first + count) for this
 * worker. @return 0 or -errno (logged).
 */
int fw_checkpointer_init(struct fw_checkpointer *k, const char *target, uint64_t store_size,
			 const char *region, uint64_t pairs, uint32_t slot_size, uint32_t first,
			 uint32_t count, uint32_t queue_cap);

void fw_checkpointer_release(struct fw_checkpointer *k);

/** Queue @p c once; its dirty bits say which slices to write at the next tick. */
static inline void fw_checkpointer_queue(struct fw_checkpointer *k, struct fw_conn *c, uint64_t now)
{
	if (c->flags & FW_CONN_F_QUEUED)
		return;
	if (k->qtail - k->qhead == k->qcap)
		return; /* full: the slice stays dirty and is queued again by its next packet */
	if (k->qtail == k->qhead)
		k->oldest_ns = now;
	c->flags |= FW_CONN_F_QUEUED;
	k->queue[k->qtail++ % k->qcap] = c;
}

/** Write what is queued (as far as the target takes it), flush, poll. Never blocks. */
void fw_checkpointer_tick(struct fw_checkpointer *k);

/** @p c is going away: tombstone every checkpointed slice and free its slot pairs. */
void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c);

/** Slice changes not yet durable: queued connections plus posted-not-durable writes. */
uint64_t fw_checkpointer_lag(const struct fw_checkpointer *k);

#endif /* FW_CHECKPOINT_H */
