/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rebuild: a member that holds a member region again (created empty, or kept from before
 * it failed) joins where the other members' rings stand, and a pass over the live span
 * writes every subsegment it, or any member, lacks or holds damaged or stale: for each
 * segment the missing chunks are recovered from any k, the rotation is read off a
 * survivor's index, and the chunk is written at the segment's ring position. The pass
 * runs inside ckpt_poll(), a bounded window per call. ckpt_group_rebuild() starts one by
 * hand; rejoin.c starts one for every member it brings back.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"

#define REBUILD_READ (256u << 10) /* ring bytes read per member per poll: a poll's bound */
#define REBUILD_MIN  (64u << 10)  /* ... down to this while reading takes over REBUILD_NS */
#define REBUILD_NS   5000000ull	  /* 5 ms */

void group_member_join(struct ckpt_region *r, unsigned int i)
{
	struct gregion *gr = r->be;
	const uint64_t tail = group_ring_tail(gr), next = group_ring_next(gr);

	ckpt_ring_join(gr->mr[i], tail, next);
	/* Tickets of its former connection mean nothing to this one. */
	for (unsigned int q = 0; q < gr->bq_n; q++)
		gr->bq[(gr->bq_head + q) % BARRIERS].ticket[i] = 0;
	gr->comp_ticket[i] = 0;
	gr->rb_ticket[i] = 0;
	gr->st[i] = CKPT_MEMBER_REBUILDING;
	gr->rb_mask |= 1u << i;
	ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
		 "region %s: rebuilding member %u (%s): %" PRIu64 " bytes of ring span",
		 r->geo.name, i, gr->g->member[i], next - tail);
}

void group_rebuild_start(struct gregion *gr)
{
	const uint64_t next = group_ring_next(gr);

	if (!gr->rb_active || next > gr->rb_end)
		gr->rb_end = next;
	gr->rb_pos = gr->rb_start = group_ring_tail(gr);
	gr->rb_decile = 0;
	gr->rb_repaired = 0;
	gr->rb_read = REBUILD_READ;
	gr->rb_active = true;
	gr->rb_wait = true;
	group_flush_members(gr, gr->rb_ticket);
}

int group_rebuild(struct ckpt_region *r)
{
	struct gregion *gr = r->be;
	struct group *g = gr->g;
	struct pmu_region_params mp;
	uint32_t mask = 0;
	int rc;

	if (gr->rb_active || gr->pend)
		return -EBUSY;
	for (unsigned int i = 0; i < g->n; i++) {
		if (gr->st[i] == CKPT_MEMBER_FOREIGN) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: member %u (%s) holds another group's region of that "
				 "name; delete it before rebuilding",
				 r->geo.name, i, g->member[i]);
			return -EEXIST;
		}
		if (gr->st[i] == CKPT_MEMBER_EMPTY && g->mc[i] != NULL && !member_failed(g, i))
			mask |= 1u << i;
	}
	if (live(gr) < need(g))
		return -EIO;
	mp = group_member_params(&r->geo, g->ec.k);
	for (unsigned int i = 0; i < g->n; i++) {
		if (!(mask & (1u << i)))
			continue;
		rc = group_member_create(g->mc[i], &mp, &gr->desc, i, gr->ring_size, &gr->mr[i]);
		if (rc) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: cannot create it on member %u (%s): %s", r->geo.name,
				 i, g->member[i], strerror(-rc));
			for (unsigned int j = 0; j < i; j++)
				if ((mask & (1u << j)) && gr->mr[j] != NULL)
					ckpt_region_close(&gr->mr[j]);
			return rc;
		}
	}
	for (unsigned int i = 0; i < g->n; i++)
		if (mask & (1u << i))
			group_member_join(r, i);
	group_rebuild_start(gr);
	return __builtin_popcount(mask);
}

/* Write what member @p i must hold for segment @p v (its rotation read off a survivor). */
static int rebuild_one(struct gregion *gr, const struct seg_view *v, unsigned int i)
{
	const unsigned int n = gr->g->n;
	uint8_t *buf = gr->sub[0];
	struct ckpt_subseg s = v->s;
	unsigned int idx = n;

	for (unsigned int j = 0; j < n; j++)
		if (v->from[j] >= 0 && !(gr->rb_mask & (1u << v->from[j]))) {
			idx = (j + i + n - (unsigned int)v->from[j]) % n;
			break;
		}
	if (idx == n)
		return -EIO;
	s.index = (uint8_t)idx;
	memcpy(buf + CKPT_SEG_HDR_LEN, v->frag[idx], s.chunk_len);
	s.chunk_crc = ckpt_crc32c(buf + CKPT_SEG_HDR_LEN, s.chunk_len);
	ckpt_subseg_encode(&s, buf);
	return group_ring_post_at(gr, i, v->pos, buf, CKPT_SEG_HDR_LEN + s.chunk_len);
}

/*
 * Read the next window of the pass from every member that holds the region (the ones being
 * rebuilt too: what they hold already need not be written again). Returns the position
 * up to which segments may start: each one that does lies wholly in the window.
 */
static int rebuild_read(struct gregion *gr, uint64_t *upto)
{
	struct images *im = &gr->rb;
	const uint64_t off = gr->rb_pos % gr->ring_size;
	const uint64_t t0 = group_now_ns();
	uint64_t len = gr->rb_read, took;
	bool whole = false;
	unsigned int got = 0;

	if (len >= gr->ring_size - off) {
		len = gr->ring_size - off;
		whole = true; /* segments never straddle the end of the ring */
	}
	if (len >= gr->rb_end - gr->rb_pos) {
		len = gr->rb_end - gr->rb_pos;
		whole = true; /* rb_end is where a segment ends */
	}
	im->ring_size = gr->ring_size;
	im->win_off = off;
	im->win_len = len;
	for (unsigned int i = 0; i < gr->g->n; i++) {
		if (!member_ok(gr, i)) {
			free(im->img[i]);
			im->img[i] = NULL;
			continue;
		}
		if (im->img[i] == NULL)
			im->img[i] = malloc(REBUILD_READ);
		if (im->img[i] == NULL)
			return -ENOMEM;
		if (group_ring_read_at(gr, i, off, im->img[i], len) != 0) {
			group_member_down(gr->g, i, -EIO);
			free(im->img[i]);
			im->img[i] = NULL;
			continue;
		}
		got++;
	}
	/* Slow members (a loaded host, a long way off): read less per poll, then more again. */
	took = group_now_ns() - t0;
	if (took > REBUILD_NS && gr->rb_read / 2 >= REBUILD_MIN)
		gr->rb_read /= 2;
	else if (took < REBUILD_NS / 2 && gr->rb_read < REBUILD_READ)
		gr->rb_read *= 2;
	if (got < need(gr->g))
		return -EIO;
	*upto = gr->rb_pos + (whole ? len : len - (CKPT_SEG_HDR_LEN + CKPT_SEG_CHUNK_MAX));
	return 0;
}

/* The pass found no segment at rb_pos: a reader may have moved the tails past it. */
static bool rebuild_behind_tail(struct gregion *gr)
{
	for (unsigned int i = 0; i < gr->g->n; i++) {
		uint64_t head, tail;

		if (!member_ok(gr, i) || (gr->rb_mask & (1u << i)) ||
		    ckpt_ring_words(gr->mr[i], &head, &tail) != 0)
			continue;
		if (tail > gr->rb_pos) {
			gr->rb_pos = tail;
			return true;
		}
	}
	return false;
}

/*
 * One poll's share of a rebuild pass: at most REBUILD_READ ring bytes read per member, less
 * while reading that much takes longer than REBUILD_NS.
 * Positions the cleaner (or a log reader) freed meanwhile are skipped: nobody reads them
 * again.
 */
void group_rebuild_step(struct ckpt_region *r)
{
	struct gregion *gr = r->be;
	const unsigned int n = gr->g->n;
	uint64_t upto = 0;
	uint8_t *work;

	if (!gr->rb_active || gr->pend)
		return; /* sub[0] is the scratch buffer and must be free */
	if (gr->rb_wait) {
		if (!group_members_durable(gr, gr->rb_ticket))
			return;
		gr->rb_wait = false;
	}
	if (gr->rb_pos < group_ring_tail(gr))
		gr->rb_pos = group_ring_tail(gr);
	work = malloc((size_t)n * CKPT_SEG_CHUNK_MAX);
	if (work == NULL)
		return;
	if (gr->rb_pos < gr->rb_end && rebuild_read(gr, &upto) != 0)
		upto = gr->rb_pos; /* again at the next poll */
	while (gr->rb_pos < gr->rb_end && gr->rb_pos < upto) {
		struct seg_view v;
		bool again = false;

		if (group_seg_at(gr, &gr->rb, gr->rb_pos, &v) != 0) {
			if (rebuild_behind_tail(gr))
				break;
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: rebuild stops at %" PRIu64 ": no member frames it",
				 r->geo.name, gr->rb_pos);
			gr->rb_pos = gr->rb_end;
			break;
		}
		if (v.wrap) {
			const uint32_t wrap = htole32(PMU_RING_WRAP_MAGIC);

			for (unsigned int i = 0; i < n && !again; i++)
				if ((gr->rb_mask & (1u << i)) && member_ok(gr, i))
					again = group_ring_post_at(gr, i, gr->rb_pos, &wrap,
								   sizeof(wrap)) == -EAGAIN;
			if (again)
				break;
			gr->rb_pos += gr->ring_size - gr->rb_pos % gr->ring_size;
			break; /* the next window starts at the ring's start */
		}
		for (unsigned int j = 0; j < n; j++)
			if (v.frag[j] == NULL)
				v.from[j] = -1;
		if (v.present < gr->g->ec.k || group_seg_recover(gr, &v, work, true) != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: segment at %" PRIu64 " cannot be rebuilt: %u of %u "
				 "subsegments good",
				 r->geo.name, gr->rb_pos, v.present, n);
		} else {
			for (unsigned int i = 0; i < n; i++) {
				int rc;

				/* New members, and old ones whose subsegment is damaged or stale.
				 */
				if (!(v.missing & (1u << i)) || !member_ok(gr, i))
					continue;
				rc = rebuild_one(gr, &v, i);
				if (rc == -EAGAIN) {
					again = true;
					break;
				}
				if (rc)
					group_member_down(gr->g, i, rc);
				else
					gr->rb_repaired++;
			}
			if (again)
				break; /* members already written get the same bytes again */
		}
		gr->rb_pos += CKPT_SEG_HDR_LEN + v.s.chunk_len;
	}
	free(work);
	if (gr->rb_end > gr->rb_start) {
		uint64_t done = gr->rb_pos < gr->rb_end ? gr->rb_pos : gr->rb_end;
		unsigned int d =
			(unsigned int)((done - gr->rb_start) * 10 / (gr->rb_end - gr->rb_start));

		if (d > gr->rb_decile && d < 10) {
			gr->rb_decile = d;
			ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT, "region %s: rebuild %u%% done",
				 r->geo.name, d * 10);
		}
	}
	if (gr->rb_pos < gr->rb_end)
		return;
	for (unsigned int i = 0; i < n; i++) {
		if (!(gr->rb_mask & (1u << i)))
			continue;
		if (member_ok(gr, i) && ckpt_flush(gr->mr[i]) == 0)
			gr->st[i] = CKPT_MEMBER_OK;
	}
	ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
		 "region %s: rebuild 100%% done (%" PRIu64 " bytes, %" PRIu64
		 " subsegments written)",
		 r->geo.name, gr->rb_end - gr->rb_start, gr->rb_repaired);
	gr->rb_mask = 0;
	gr->rb_active = false;
	group_images_free(&gr->rb);
}
