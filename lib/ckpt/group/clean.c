/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cleaner of an overwrite region (a log-structured store's): once the ring is 5/8
 * full, the oldest part of it (up to a quarter ring, ending at a segment) is freed. Every
 * pair whose newest record lies there is logged again from the shadow, interleaved with
 * new writes; once that is durable everywhere, the members' tails move past the part.
 * Records there that newer ones superseded cost nothing, so a ring much larger than the
 * live records is rarely copied. Append regions are not cleaned: their reader consumes
 * them and moves the tails.
 */
#include <inttypes.h>

#include "group_internal.h"

#define CLEAN_PER_POLL 16384u /* shadow pairs looked at per poll while cleaning */

/* The most one member's share of the live records takes: every pair at a full slot. */
static uint64_t snapshot_share(const struct gregion *gr)
{
	return (gr->desc.nslots / 2 * gr->desc.slot_size) / gr->g->ec.k * 9 / 8 +
	       2ull * gr->seg_cap;
}

/* The longest span a cleaning pass frees: a quarter ring, to the next remembered segment. */
static uint64_t clean_span_max(const struct gregion *gr)
{
	return gr->ring_size / 4 + gr->ring_size / 32;
}

uint64_t group_clean_room(const struct gregion *gr)
{
	uint64_t span =
		gr->comp == COMPACT_WRITING ? gr->clean_to - gr->clean_from : clean_span_max(gr);
	uint64_t all = snapshot_share(gr);

	return (span < all ? span : all) + 2ull * gr->seg_cap;
}

/*
 * Where the tail may move next: the furthest remembered segment position within a quarter
 * ring of it, or the first one past it. 0 when none is known yet.
 */
static uint64_t clean_target(struct gregion *gr, uint64_t tail, uint64_t next)
{
	uint64_t to = group_shadow_mark(gr, tail, next, gr->ring_size / 4);

	/* A longer pass could need more than the room kept for it. */
	if (to - tail > clean_span_max(gr) && snapshot_share(gr) > clean_span_max(gr))
		return 0;
	return to;
}

/* One poll's share of the cleaning: start a pass, or take the one under way a step on. */
void group_clean_step(struct ckpt_region *r)
{
	struct gregion *gr = r->be;
	const uint32_t ss = gr->desc.slot_size;
	const uint64_t pairs = gr->desc.nslots / 2;
	uint64_t next = group_ring_next(gr), tail = group_ring_tail(gr);

	switch (gr->comp) {
	case COMPACT_IDLE:
		if (gr->shadow == NULL || next - tail < gr->ring_size / 2 + gr->ring_size / 8)
			return;
		if (!gr->shadow_loaded && group_shadow_load(r) != 0)
			return;
		gr->clean_to = clean_target(gr, tail, next);
		if (gr->clean_to == 0)
			return;
		gr->clean_from = tail;
		gr->clean_cursor = 0;
		gr->comp = COMPACT_WRITING;
		/* fall through */
	case COMPACT_WRITING:
		for (unsigned int n = 0; n < CLEAN_PER_POLL && gr->clean_cursor < pairs; n++) {
			const uint64_t p = gr->clean_cursor;
			const uint8_t *rec = gr->shadow + p * ss;
			struct ckpt_rec_hdr h;

			/* Unknown (0) or behind the part being freed: log it again. */
			if (gr->where[p] <= gr->clean_to &&
			    !ckpt_rec_is_empty(rec, CKPT_REC_HDR_LEN)) {
				ckpt_rec_peek(rec, ss, &h);
				if (group_seg_add(gr, rec, h.len, 0) != 0)
					return;
				gr->relog_bytes += h.len;
			}
			gr->clean_cursor++;
		}
		if (gr->clean_cursor < pairs)
			return;
		if (gr->seg_len != 0) {
			if (gr->pend)
				group_post_pending(gr);
			if (gr->pend || group_cut(gr) != 0)
				return;
		}
		if (gr->pend)
			return;
		group_flush_members(gr, gr->comp_ticket);
		gr->comp = COMPACT_DATA;
		return;
	case COMPACT_DATA:
		if (!group_members_durable(gr, gr->comp_ticket))
			return;
		for (unsigned int i = 0; i < gr->g->n; i++) {
			if (!member_ok(gr, i))
				continue;
			if (ckpt_ring_post_tail(gr->mr[i], gr->clean_to) != 0)
				return; /* queue full: again at the next poll */
		}
		group_flush_members(gr, gr->comp_ticket);
		gr->comp = COMPACT_TAIL;
		return;
	case COMPACT_TAIL:
		if (!group_members_durable(gr, gr->comp_ticket))
			return;
		for (unsigned int i = 0; i < gr->g->n; i++)
			if (member_ok(gr, i))
				ckpt_ring_cleared(gr->mr[i], gr->clean_to);
		ckpt_log(CKPT_LOG_DEBUG, LOG_COMPONENT,
			 "region %s: cleaned; the log now starts at %" PRIu64 " (%" PRIu64
			 " record bytes logged again so far)",
			 r->geo.name, gr->clean_to, gr->relog_bytes);
		gr->comp = COMPACT_IDLE;
		return;
	}
}
