/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shadow of an overwrite region: the newest encoded record per slot pair, in memory
 * (one slot's bytes per pair), and where it lies in the ring (the position of its
 * segment). Writes keep it (group_shadow_keep()), cutting a segment notes where its pairs
 * now lie (group_shadow_note()), and a writer that reopened a region reads it from the
 * log once (group_shadow_load()). The cleaner logs again from it what the oldest part of
 * the ring still holds; it also finds here the segment positions, remembered about every
 * ring/32, that a pass may move the tail to.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "group_internal.h"

/*
 * Zeroed memory for the shadow and its positions, on 2 MB pages when it is at least that
 * large and the kernel has transparent huge pages (they are asked for, not required).
 * Both are written at random by slot pair, a record at a time, on the I/O lcore, and a
 * new region's are untouched: on 4 KB pages, writing 128-byte slots faulted a page in
 * every 32 new pairs -- ~3 k page faults a second on the I/O lcore at 100 k new
 * connections/s -- and most records missed the TLB. NULL when it cannot be mapped.
 */
static void *pages_alloc(size_t *len)
{
	const size_t huge = 2u << 20;
	void *p;

	if (*len >= huge)
		*len = (*len + huge - 1) & ~(huge - 1); /* whole 2 MB pages */
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (*len >= huge)
		(void)madvise(p, *len, MADV_HUGEPAGE); /* EINVAL without THP: 4 KB pages */
	return p;
}

static void pages_free(void *p, size_t len)
{
	if (p != NULL)
		munmap(p, len);
}

int group_shadow_init(struct gregion *gr, bool loaded)
{
	const size_t pairs = gr->desc.nslots / 2;

	gr->shadow_loaded = loaded;
	if (gr->desc.mode != PMU_MODE_OVERWRITE)
		return 0;
	gr->shadow_len = pairs * gr->desc.slot_size;
	gr->where_len = pairs * sizeof(*gr->where);
	gr->shadow = pages_alloc(&gr->shadow_len);
	gr->where = pages_alloc(&gr->where_len);
	if (gr->shadow == NULL || gr->where == NULL)
		return -ENOMEM;
	return 0;
}

void group_shadow_fini(struct gregion *gr)
{
	pages_free(gr->shadow, gr->shadow_len);
	pages_free(gr->where, gr->where_len);
	gr->shadow = NULL;
	gr->where = NULL;
	gr->shadow_len = 0;
	gr->where_len = 0;
}

void group_shadow_keep(struct gregion *gr, const uint8_t *rec, uint32_t len)
{
	struct ckpt_rec_hdr h, kept;
	uint8_t *slot;

	if (gr->shadow == NULL || ckpt_rec_peek(rec, len, &h) < 0 ||
	    h.slot_pair >= gr->desc.nslots / 2 || len > gr->desc.slot_size)
		return;
	slot = gr->shadow + (size_t)h.slot_pair * gr->desc.slot_size;
	if (!ckpt_rec_is_empty(slot, CKPT_REC_HDR_LEN) &&
	    ckpt_rec_peek(slot, gr->desc.slot_size, &kept) > 0 && kept.generation > h.generation)
		return;
	memcpy(slot, rec, len);
}

void group_shadow_note(struct gregion *gr, const uint8_t *seg, uint32_t len, uint64_t pos)
{
	const uint64_t pairs = gr->desc.nslots / 2;
	const uint32_t ss = gr->desc.slot_size;

	for (uint32_t at = 0; at + CKPT_REC_HDR_LEN <= len;) {
		struct ckpt_rec_hdr h, newest;

		ckpt_rec_peek(seg + at, len - at, &h);
		if (h.slot_pair < pairs) {
			ckpt_rec_peek(gr->shadow + (size_t)h.slot_pair * ss, ss, &newest);
			if (newest.generation == h.generation)
				gr->where[h.slot_pair] = pos + 1;
		}
		at += h.len;
	}
	if (gr->mark_n == 0 ||
	    (gr->mark_n < MARKS &&
	     pos >= gr->mark[(gr->mark_head + gr->mark_n - 1) % MARKS] + gr->ring_size / 32))
		gr->mark[(gr->mark_head + gr->mark_n++) % MARKS] = pos;
}

static int collect_rec(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len, void *arg)
{
	struct collect *co = arg;
	uint8_t *slot;

	if (rec->slot_pair >= co->pairs || len > co->slot_size) {
		co->st->misplaced++;
		return 0;
	}
	slot = co->best + (size_t)rec->slot_pair * co->slot_size;
	if (!ckpt_rec_is_empty(slot, CKPT_REC_HDR_LEN)) {
		struct ckpt_rec_hdr kept;

		co->st->superseded++;
		ckpt_rec_peek(slot, co->slot_size, &kept);
		if (kept.generation > rec->generation)
			return 0;
	}
	memcpy(slot, raw, len);
	co->where[rec->slot_pair] = co->pos + 1;
	return 0;
}

static int collect_seg(struct gregion *gr, const uint8_t *data, const struct seg_view *v, void *arg)
{
	struct collect *co = arg;

	co->pos = v->pos;
	if (co->nmarks == 0 ||
	    (co->nmarks < MARKS && v->pos >= co->mark[co->nmarks - 1] + gr->ring_size / 32))
		co->mark[co->nmarks++] = v->pos;
	if (ckpt_seg_records(data, v->s.data_len, v->s.nrecs, collect_rec, co) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "segment at %" PRIu64
			 ": its records do not decode although its CRCs check",
			 v->pos);
		co->st->invalid++;
	}
	return 0;
}

void group_shadow_merge(struct gregion *gr, const struct collect *co)
{
	const uint32_t ss = gr->desc.slot_size;

	for (uint64_t p = 0; p < gr->desc.nslots / 2; p++) {
		const uint8_t *b = co->best + p * ss;
		struct ckpt_rec_hdr read, kept;

		if (ckpt_rec_is_empty(b, CKPT_REC_HDR_LEN))
			continue;
		group_shadow_keep(gr, b, ss);
		if (gr->where[p] != 0)
			continue;
		ckpt_rec_peek(b, ss, &read);
		ckpt_rec_peek(gr->shadow + p * ss, ss, &kept);
		if (kept.generation == read.generation)
			gr->where[p] = co->where[p];
	}
	if (gr->mark_n == 0) {
		memcpy(gr->mark, co->mark, sizeof(gr->mark));
		gr->mark_head = 0;
		gr->mark_n = co->nmarks;
	}
	gr->shadow_loaded = true;
}

void group_collect_free(struct collect *co)
{
	free(co->best);
	free(co->where);
	co->best = NULL;
	co->where = NULL;
}

int group_state_read(struct ckpt_region *r, struct collect *co, struct ckpt_scan_stats *st)
{
	struct gregion *gr = r->be;
	struct images im;
	int rc;

	*co = (struct collect){
		.slot_size = gr->desc.slot_size,
		.pairs = gr->desc.nslots / 2,
		.st = st,
	};
	co->best = calloc(co->pairs, co->slot_size);
	co->where = calloc(co->pairs, sizeof(*co->where));
	if (co->best == NULL || co->where == NULL) {
		group_collect_free(co);
		return -ENOMEM;
	}
	rc = group_images_load(gr, 0, &im);
	if (rc == 0 && live(gr) < need(gr->g))
		rc = -EIO;
	if (rc == 0)
		rc = group_walk(gr, &im, collect_seg, co, NULL, NULL);
	group_images_free(&im);
	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s: cannot be restored (%s): nothing is handed over", r->geo.name,
			 strerror(-rc));
		group_collect_free(co);
	}
	return rc;
}

int group_shadow_load(struct ckpt_region *r)
{
	struct ckpt_scan_stats st = {0};
	struct collect co;
	int rc = group_state_read(r, &co, &st);

	if (rc)
		return rc;
	group_shadow_merge(r->be, &co);
	group_collect_free(&co);
	return 0;
}

void group_shadow_forget(struct gregion *gr)
{
	if (gr->shadow != NULL && gr->shadow_loaded) {
		memset(gr->shadow, 0, (size_t)(gr->desc.nslots / 2) * gr->desc.slot_size);
		memset(gr->where, 0, (size_t)(gr->desc.nslots / 2) * sizeof(*gr->where));
		gr->mark_head = gr->mark_n = 0; /* learnt again from the log with the shadow */
		gr->shadow_loaded = false;
	}
}

uint64_t group_shadow_mark(struct gregion *gr, uint64_t tail, uint64_t next, uint64_t span)
{
	uint64_t to = 0;

	while (gr->mark_n != 0 && gr->mark[gr->mark_head] <= tail) {
		gr->mark_head = (gr->mark_head + 1) % MARKS;
		gr->mark_n--;
	}
	for (unsigned int q = 0; q < gr->mark_n; q++) {
		uint64_t m = gr->mark[(gr->mark_head + q) % MARKS];

		if (m >= next || (to != 0 && m - tail > span))
			break;
		to = m;
	}
	return to;
}
