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

/** Where and how a worker checkpoints. */
struct fw_ckpt_conf {
	const char *target;
	const char *region;
	uint64_t store_size; /**< pmem: size of a store created on first start */
	uint64_t pairs;	     /**< slot pairs of the whole region (all workers) */
	uint32_t slot_size;
	const char *tenant;
	const uint8_t *secret; /**< remote targets */
	size_t secret_len;
	bool allow_shm;
};

struct fw_checkpointer {
	struct fw_ckpt_conf conf;
	uint8_t secret[64];
	struct fw_table *table; /* walked to resynchronise after the target comes back */
	struct ckpt_client *cl;
	struct ckpt_region *r; /* NULL while the target is down */
	bool down;
	uint64_t retry_at_ns;
	uint64_t backoff_ns;
	uint64_t reconnects;
	uint64_t idle_poll_at_ns;
	struct fw_slots *slots;
	struct fw_conn **queue; /* ring of connections with dirty slices */
	uint32_t qcap, qhead, qtail;
	uint64_t oldest_ns; /* when the oldest queued change was queued */
	struct fw_ckpt_counters cnt;
};

/**
 * Connect to the target and open the state region (created on first start) for the
 * worker owning @p table and slot pairs [first, first + count). An unreachable target is
 * not an error: the checkpointer starts down and keeps retrying (k->r stays NULL).
 * @return 0, or -errno for what retrying cannot fix (memory, a region too small, bad
 *   target syntax).
 */
int fw_checkpointer_init(struct fw_checkpointer *k, const struct fw_ckpt_conf *conf,
			 struct fw_table *table, uint32_t first, uint32_t count,
			 uint32_t queue_cap);

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

/**
 * Write what is queued (as far as the target takes it), flush, poll. Never waits for the
 * target; while it is down, retries the connection with backoff (an attempt is bounded
 * by a short connect timeout) and, once back, queues every live slice again.
 */
void fw_checkpointer_tick(struct fw_checkpointer *k, uint64_t now);

/** @p c is going away: tombstone every checkpointed slice and free its slot pairs. */
void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c);

/** Slice changes not yet durable: queued connections plus posted-not-durable writes. */
uint64_t fw_checkpointer_lag(const struct fw_checkpointer *k);

#endif /* FW_CHECKPOINT_H */
