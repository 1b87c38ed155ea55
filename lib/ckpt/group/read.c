/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The restore reads of a group region, through ckpt_state_scan() and ckpt_log_read().
 *
 * A state scan reads every answering member's live span, walks it, keeps the newest
 * generation per pair (shadow.c collects it) and hands over in pair order only once the
 * whole span read well: what one server's slots would give. A log read hands records over
 * in append order and moves every member's tail past the segments consumed.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "group_internal.h"

int group_scan(struct ckpt_region *r, unsigned int flags, ckpt_rec_cb cb, void *arg,
	       struct ckpt_scan_stats *stats)
{
	struct gregion *gr = r->be;
	const uint32_t ss = gr->desc.slot_size;
	struct ckpt_scan_stats st = {0};
	struct collect co;
	uint8_t *best;
	int rc, stop = 0;

	rc = group_state_read(r, &co, &st);
	if (rc)
		goto out;
	best = co.best;
	for (uint64_t p = 0; p < gr->desc.nslots / 2 && !stop; p++) {
		struct ckpt_rec rec;

		if (ckpt_rec_is_empty(best + p * ss, CKPT_REC_HDR_LEN)) {
			st.empty += 2;
			continue;
		}
		if (ckpt_rec_decode(best + p * ss, ss, &rec) < 0) {
			st.invalid++;
			continue;
		}
		if (rec.flags & CKPT_REC_F_TOMBSTONE) {
			st.tombstones++;
			if (!(flags & CKPT_SCAN_TOMBSTONES))
				continue;
		} else {
			st.records++;
		}
		stop = cb ? cb(&rec, arg) : 0;
	}
	if (!gr->shadow_loaded)
		group_shadow_merge(gr, &co);
	group_collect_free(&co);
	rc = stop;
out:
	if (stats)
		*stats = st;
	return rc;
}

struct log_hand {
	ckpt_rec_cb cb;
	void *arg;
	uint64_t n;
	int stop;
};

static int hand_rec(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len, void *arg)
{
	struct log_hand *h = arg;

	(void)raw;
	(void)len;
	h->n++;
	h->stop = h->cb ? h->cb(rec, h->arg) : 0;
	return h->stop;
}

static int hand_seg(struct gregion *gr, const uint8_t *data, const struct seg_view *v, void *arg)
{
	int rc = ckpt_seg_records(data, v->s.data_len, v->s.nrecs, hand_rec, arg);

	(void)gr;
	if (rc < 0)
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "segment at %" PRIu64
			 ": its records do not decode although its CRCs check",
			 v->pos);
	return rc;
}

int group_log_read(struct ckpt_region *r, ckpt_rec_cb cb, void *arg, bool peek,
		   struct ckpt_scan_stats *stats)
{
	struct gregion *gr = r->be;
	struct log_hand h = {cb, arg, 0, 0};
	struct images im;
	uint64_t stop;
	int rc;

	rc = group_images_load(gr, 0, &im);
	if (rc)
		return rc;
	stop = im.tail;
	rc = live(gr) < need(gr->g) ? -EIO : group_walk(gr, &im, hand_seg, &h, NULL, &stop);
	group_images_free(&im);
	if (rc < 0 && h.stop == 0)
		return rc;
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		stats->records = h.n;
	}
	/* The consumer owns the tails: whole segments handed over are cleared on every member. */
	for (unsigned int i = 0; i < gr->g->n && !peek && stop != im.tail; i++) {
		if (!member_ok(gr, i))
			continue;
		rc = ckpt_ring_post_tail(gr->mr[i], stop);
		if (rc == 0)
			rc = ckpt_sync(gr->mr[i]);
		if (rc)
			group_member_down(gr->g, i, rc);
	}
	return (int)h.n;
}
