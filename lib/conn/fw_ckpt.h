/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Between connections and checkpoint records: which slot pair a (connection, module)
 * owns, a module slice as a record, and restore: records grouped by connection and
 * reassembled into whole connections. No I/O here; the checkpointer and the start-up
 * restore of the appliance drive it through lib/ckpt. Private to the firewall.
 */
#ifndef FW_CKPT_H
#define FW_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "fw_table.h"
#include "holdfast/ckpt_record.h"
#include "holdfast/fw_module.h"

/* ---- slot pairs ---- */

/** The slot pairs one worker owns in the state region: [first, first + count). */
struct fw_slots;

/** @return the allocator, or NULL with errno (EINVAL: count 0; ENOMEM). */
struct fw_slots *fw_slots_create(uint32_t first, uint32_t count);

void fw_slots_free(struct fw_slots **sp);

/**
 * A free pair, or UINT32_MAX when all are taken. *@p last_gen receives the generation the
 * pair last held (0 if never written): the next record written to it must be above, so that
 * no stale record or tombstone of an earlier owner outranks it on restore.
 */
uint32_t fw_slots_get(struct fw_slots *s, uint64_t *last_gen);

/** Give @p pair back, having last written generation @p gen to it. */
void fw_slots_put(struct fw_slots *s, uint32_t pair, uint64_t gen);

/**
 * Mark @p pair taken by a restored slice of generation @p gen.
 * @return 0, -ERANGE (not ours), -EBUSY (taken already).
 */
int fw_slots_claim(struct fw_slots *s, uint32_t pair, uint64_t gen);

/** A restored tombstone: @p pair stays free, but its next generation must exceed @p gen. */
int fw_slots_seen(struct fw_slots *s, uint32_t pair, uint64_t gen);

uint32_t fw_slots_used(const struct fw_slots *s);

/**
 * @p pair (taken) lost its owner, but the tombstone of generation @p gen could not be
 * written (the target was away, or its queue full): the last slice is still on the target
 * and a restore would bring the connection back. The pair stays taken, owed a tombstone,
 * until fw_slots_settle().
 */
void fw_slots_owe(struct fw_slots *s, uint32_t pair, uint64_t gen);

/** Pairs owed a tombstone. */
uint32_t fw_slots_owed(const struct fw_slots *s);

/**
 * A pair owed a tombstone (the same one until it is settled), its generation in *@p gen;
 * UINT32_MAX when none is.
 */
uint32_t fw_slots_next_owed(struct fw_slots *s, uint64_t *gen);

/** @p pair's tombstone is written: the pair is free again. */
void fw_slots_settle(struct fw_slots *s, uint32_t pair);

/* ---- records ---- */

/** The connection key as records carry it (ports in host order) and back. */
void fw_key_to_ckpt(const struct fw_key *k, struct ckpt_key *out);
void fw_key_from_ckpt(const struct ckpt_key *k, struct fw_key *out);

/**
 * Describe module @p m's slice of @p c as a record: its encoded payload into @p payload
 * (@p cap bytes), generation c->gen[m] and slot pair c->slot_pair[m] as they are.
 * @return 0, -ENOENT (no such module, or the slice is not present), -ENOSPC, -EINVAL.
 */
int fw_ckpt_slice(const struct fw_conn *c, enum fw_module_id m, uint8_t *payload, size_t cap,
		  struct ckpt_rec *out);

/** The record that deletes module @p m's slice of @p c (closed or expired connection). */
void fw_ckpt_tombstone(const struct fw_conn *c, enum fw_module_id m, struct ckpt_rec *out);

/* ---- restore ---- */

struct fw_restore_stats {
	uint64_t records;	 /**< handed to fw_restore_add */
	uint64_t slices;	 /**< decoded into a connection */
	uint64_t unknown_module; /**< module id nobody registered: skipped */
	uint64_t newer_version;	 /**< slice version newer than this build: skipped */
	uint64_t bad_slice;	 /**< decode refused it: the slice is dropped */
	uint64_t conflicts;	 /**< same key, other connection id; or a slot pair claimed twice */
	uint64_t no_room;	 /**< table full */
	uint64_t conns;		 /**< connections restored whole */
	uint64_t dropped_missing; /**< dropped: a required slice missing or refused */
	uint64_t partial;	  /**< kept without an optional slice that was refused */
	uint64_t stale;		  /**< follow mode: not newer than its slot pair's last record */
};

/** Add every count of @p from to @p to (workers', or regions', restores summed). */
void fw_restore_stats_add(struct fw_restore_stats *to, const struct fw_restore_stats *from);

/**
 * Add one restored record to @p t (the table its connection belongs to): the slice is
 * decoded into the connection with that key, created on first sight with the record's
 * connection id (ids stay stable across restarts, so every slice of one connection keeps
 * grouping), slot pair claimed in @p slots, generation kept so the next checkpoint of the
 * slice goes to the other slot. @return 0 or a negative errno when @p t cannot take more.
 */
int fw_restore_add(struct fw_table *t, struct fw_slots *slots, const struct ckpt_rec *rec,
		   struct fw_restore_stats *st);

/**
 * Records gathered for fw_restore_add() in batches: the table's buckets of a whole batch
 * are fetched together (one bulk lookup), so a restore of a million connections waits on
 * memory once per batch instead of once per record. Payloads are copied: a reader's
 * buffer may be reused after its callback returns.
 */
#define FW_RESTORE_BATCH 32

struct fw_restore_batch {
	struct fw_table *t;
	struct fw_slots *slots;
	struct fw_restore_stats *st;
	unsigned int n;
	struct ckpt_rec rec[FW_RESTORE_BATCH];
	uint8_t payload[FW_RESTORE_BATCH][CKPT_REC_MAX_PAYLOAD];
};

void fw_restore_batch_init(struct fw_restore_batch *b, struct fw_table *t, struct fw_slots *slots,
			   struct fw_restore_stats *st);

/**
 * Add @p rec to the batch; a full batch goes to the table. @return as fw_restore_add(): the
 * first error of the batch (each of its records is still added or counted).
 */
int fw_restore_batch_add(struct fw_restore_batch *b, const struct ckpt_rec *rec);

/** Hand what the batch holds to the table. @return as fw_restore_add(). */
int fw_restore_batch_flush(struct fw_restore_batch *b);

/**
 * fw_restore_add() of @p recs[0 .. @p n) in order, batched as fw_restore_batch does, the
 * records read in place (nothing copied): for a reader that holds them until this returns.
 * @return 0, or the first error of fw_restore_add(); the records after it are still added
 * and counted.
 */
int fw_restore_add_many(struct fw_table *t, struct fw_slots *slots, const struct ckpt_rec *recs,
			unsigned int n, struct fw_restore_stats *st);

/**
 * After every record was added: drop connections without a required slice (their slot
 * pairs are owed tombstones in @p slots: fw_slots_owe), set each kept connection's clock to
 * @p now_ns and run every present module's on_restore (an FTP expectation comes back, a
 * timer restarts). A connection whose on_restore fails is dropped. @return connections
 * kept.
 */
uint32_t fw_restore_finish(struct fw_table *t, struct fw_slots *slots, struct fw_ctx *ctx,
			   uint64_t now_ns, struct fw_restore_stats *st);

/** fw_restore_finish() of the table's positions [@p from, @p to) (fw_table_walk_range). */
uint32_t fw_restore_finish_range(struct fw_table *t, struct fw_slots *slots, struct fw_ctx *ctx,
				 uint64_t now_ns, struct fw_restore_stats *st, uint32_t from,
				 uint32_t to);

/*
 * The finish over two threads: a second thread runs fw_restore_finish_local() of positions
 * [from, to) while the table's own thread runs fw_restore_finish_range() of the rest; then
 * the table's thread runs fw_restore_finish_rest(). Together they do what
 * fw_restore_finish() does, connection by connection.
 */
#define FW_FINISH_DEFER 4096

struct fw_finish_part {
	uint32_t from, to; /* positions, set by the caller */
	/* Set by fw_restore_finish_local(): */
	uint32_t kept;		    /* connections it finished */
	struct fw_restore_stats st; /* their count (conns) */
	bool overflow;		    /* more to defer than defer[] holds */
	uint32_t ndefer;
	struct fw_conn *defer[FW_FINISH_DEFER]; /* connections left to fw_restore_finish_rest */
};

/**
 * The part of fw_restore_finish() of positions [p->from, p->to) that touches nothing but
 * each connection: a whole connection whose every present module is restore_local is
 * finished; one to drop, or with a slice of another module (FTP's expectation goes into
 * the table), is left for fw_restore_finish_rest(). Changes only connections of its range,
 * so the table's thread may finish another range meanwhile.
 */
void fw_restore_finish_local(struct fw_table *t, struct fw_ctx *ctx, uint64_t now_ns,
			     struct fw_finish_part *p);

/**
 * On the table's thread, after fw_restore_finish_local(@p p) returned: finish what it left
 * and add what it counted to @p st. @return connections kept in p's range.
 */
uint32_t fw_restore_finish_rest(struct fw_table *t, struct fw_slots *slots, struct fw_ctx *ctx,
				uint64_t now_ns, struct fw_restore_stats *st,
				const struct fw_finish_part *p);

/* ---- the standby's shadow table ---- */

/**
 * Records of no module, the core's own: tombstones of a module id no build registers.
 *
 * The gap marker, in the log, no slot pair: see app/fw_ckpt_log.h, which owns the log's
 * gap protocol.
 *
 * The pair tombstone, in a slot pair (and the log): whatever slice the pair held is gone.
 * Written for a pair owed a tombstone (fw_slots_owe) once the target takes it; the
 * connection is gone from memory by then, so the record names only the pair. Restore and
 * the shadow table treat it as any tombstone: they go by slot pair and generation.
 */
#define FW_CKPT_CORE_MODULE 0xffu

/** The pair tombstone of @p pair at generation @p gen (> 0). */
void fw_ckpt_pair_tombstone(uint32_t pair, uint64_t gen, struct ckpt_rec *out);

/**
 * Follow mode of restore, for a standby: records arrive over time and in any order
 * between sources (a state scan, then the log), and each is applied only if it is newer
 * than what its slot pair last held. A newer record replaces the slice it supersedes; a
 * tombstone removes it; a connection left with no slice goes. Connections stay
 * FW_CONN_F_RESTORING until fw_restore_finish() at takeover.
 */
struct fw_shadow;

/** @return a shadow over @p t and @p slots, or NULL with errno ENOMEM. */
struct fw_shadow *fw_shadow_create(struct fw_table *t, struct fw_slots *slots);

void fw_shadow_free(struct fw_shadow **shp);

/**
 * Apply one record. @return 0, or -ENOSPC when the table is full. Stale records (not newer
 * than their pair) are counted in st->stale.
 */
int fw_shadow_apply(struct fw_shadow *sh, const struct ckpt_rec *rec, struct fw_restore_stats *st);

#endif /* FW_CKPT_H */
