/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's log (NAME.W.log) and its gap protocol, both sides.
 *
 * Every record the checkpointer writes to the worker's state region goes to its log too,
 * which a standby follows. The log is best effort: with no standby reading it, it fills up,
 * and the writer stops appending (looking again every 100 ms) rather than hold the state
 * region back. Those records are not lost -- the state region has them -- but a reader of
 * the log alone would miss them, so when the log takes records again the writer appends a
 * gap marker first. It does so only once the state region holds every change the log
 * skipped durably: a reader that meets the marker and rescans the state region misses
 * nothing.
 *
 * Writer: fw_ckpt_log_put() for every record, fw_ckpt_log_mend() each tick while in a gap.
 * Reader: fw_ckpt_is_gap() on every record read from the log; on true, rescan the state
 * region (ckpt_state_scan()) before trusting the log again.
 *
 * Private to holdfast.
 */
#ifndef FW_CKPT_LOG_H
#define FW_CKPT_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "fw_ckpt.h"
#include "holdfast/ckpt.h"

/* ---- the marker ---- */

/**
 * The gap marker with sequence number @p seq (> 0): a record of the core's own module
 * (FW_CKPT_CORE_MODULE, see fw_ckpt.h) in no slot pair, a tombstone so that no restore
 * takes it for a slice.
 */
void fw_ckpt_gap_marker(uint64_t seq, struct ckpt_rec *out);

/** Is @p rec a gap marker: the log skipped records, rescan the state region? */
static inline bool fw_ckpt_is_gap(const struct ckpt_rec *rec)
{
	return rec->module_id == FW_CKPT_CORE_MODULE && rec->slot_pair == CKPT_REC_NO_SLOT;
}

/* ---- the writer ---- */

/**
 * The writer's side of one log, embedded in its checkpointer, which opens, flushes and
 * closes the region r; the rest is the functions' below.
 */
struct fw_ckpt_log {
	struct ckpt_region *r; /* NULL: no log (ckpt-log-size 0), or the target is down */
	bool gap;	       /* appends skipped since the last marker */
	uint64_t ticket;       /* the state write the marker must wait for */
	uint64_t retry_ns;     /* a full log is tried again from then */
	uint64_t seq;	       /* of the last marker */
	uint64_t records;      /* appended */
	uint64_t gaps;	       /* times the log filled up */
};

/** @p r (NULL: none) was just opened, at start or after a reconnect: no gap is open. */
void fw_ckpt_log_open(struct fw_ckpt_log *l, struct ckpt_region *r);

/**
 * Append @p rec, just written to @p state, unless the log is full or in a gap: then the
 * gap is open (or stays open) until @p state holds @p rec durably.
 */
void fw_ckpt_log_put(struct fw_ckpt_log *l, const struct ckpt_region *state,
		     const struct ckpt_rec *rec);

/** Close an open gap with its marker once @p state holds what it skipped durably. */
void fw_ckpt_log_mend(struct fw_ckpt_log *l, const struct ckpt_region *state, uint64_t now);

/** Is a gap open (records skipped, no marker yet)? */
static inline bool fw_ckpt_log_in_gap(const struct fw_ckpt_log *l)
{
	return l->gap;
}

#endif /* FW_CKPT_LOG_H */
