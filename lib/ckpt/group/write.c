/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Forming and posting segments, and the barriers that make them durable.
 *
 * Records are appended to the open segment (up to k x CKPT_SEG_CHUNK_MAX bytes). A
 * segment is cut when full or when a barrier needs it: its bytes are split into k chunks,
 * m parity chunks are computed (ec.c), and chunk j, behind its subsegment header, goes to
 * the ring of member (j + s) mod n for the s-th segment, so parity rotates. Every member
 * takes its subsegment at the same ring position. A barrier flushes every member once all
 * it covers is posted; it completes when every member that takes writes has it durable
 * and at least k do.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"

int group_write_init(struct gregion *gr)
{
	const unsigned int n = gr->g->n;

	gr->seg_cap = gr->g->ec.k * CKPT_SEG_CHUNK_MAX;
	gr->seg = aligned_alloc(CKPT_SEG_ALIGN, gr->seg_cap);
	if (gr->seg == NULL)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		gr->sub[i] = aligned_alloc(CKPT_SEG_ALIGN, CKPT_SEG_HDR_LEN + CKPT_SEG_CHUNK_MAX);
		if (gr->sub[i] == NULL)
			return -ENOMEM;
	}
	return 0;
}

void group_write_fini(struct gregion *gr)
{
	for (unsigned int i = 0; i < MAXM; i++) {
		free(gr->sub[i]);
		gr->sub[i] = NULL;
	}
	free(gr->seg);
	gr->seg = NULL;
}

void group_post_pending(struct gregion *gr)
{
	for (unsigned int j = 0; j < gr->g->n && gr->pend; j++) {
		unsigned int i = gr->pend_to[j];
		int rc;

		if (!(gr->pend_todo & (1u << j)))
			continue;
		if (!member_ok(gr, i)) {
			gr->pend_todo &= ~(1u << j);
			continue;
		}
		rc = ckpt_ring_put(gr->mr[i], gr->sub[j], gr->sub_len);
		if (rc == -EAGAIN)
			continue;
		if (rc)
			group_member_down(gr->g, i, rc);
		gr->pend_todo &= ~(1u << j);
	}
	if (gr->pend && gr->pend_todo == 0) {
		gr->pend = false;
		if (gr->pend_ticket > gr->posted_through)
			gr->posted_through = gr->pend_ticket;
	}
}

/* Position of the next segment of sub_len bytes on every member's ring; 0 if they differ. */
static int next_position(struct gregion *gr, uint32_t sub_len, uint64_t *pos)
{
	bool first = true;

	for (unsigned int i = 0; i < gr->g->n; i++) {
		uint64_t at, next, tail;

		if (!member_ok(gr, i))
			continue;
		ckpt_ring_position(gr->mr[i], &next, &tail);
		at = pmu_ring_place(gr->ring_size, next, sub_len);
		if (first) {
			*pos = at;
			first = false;
		} else if (at != *pos) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: member %u's ring stands at %" PRIu64
				 ", the others' at %" PRIu64,
				 ckpt_region_geometry(gr->mr[i])->name, i, at, *pos);
			group_member_down(gr->g, i, -EIO);
		}
	}
	return first ? -EIO : 0;
}

int group_cut(struct gregion *gr)
{
	const struct ckpt_ec *ec = &gr->g->ec;
	const unsigned int n = gr->g->n;
	const uint32_t c = ckpt_seg_chunk_len(gr->seg_len, ec->k);
	uint8_t *data[MAXM], *parity[MAXM];
	struct ckpt_subseg s;
	uint64_t pos = 0, t0;
	int rc;

	if (live(gr) < need(gr->g))
		return -EIO;
	rc = next_position(gr, CKPT_SEG_HDR_LEN + c, &pos);
	if (rc)
		return rc;
	memset(gr->seg + gr->seg_len, 0, (size_t)ec->k * c - gr->seg_len);
	for (unsigned int j = 0; j < n; j++) {
		if (j < ec->k) {
			memcpy(gr->sub[j] + CKPT_SEG_HDR_LEN, gr->seg + (size_t)j * c, c);
			data[j] = gr->sub[j] + CKPT_SEG_HDR_LEN;
		} else {
			parity[j - ec->k] = gr->sub[j] + CKPT_SEG_HDR_LEN;
		}
	}
	t0 = group_now_ns();
	ckpt_ec_encode(ec, c, data, parity);
	gr->enc_ns += group_now_ns() - t0;
	gr->enc_segments++;
	gr->enc_bytes += gr->seg_len;
	if (gr->where != NULL)
		group_shadow_note(gr, gr->seg, gr->seg_len, pos);
	s = (struct ckpt_subseg){
		.code = (uint8_t)ec->code,
		.k = (uint8_t)ec->k,
		.m = (uint8_t)ec->m,
		.chunk_len = c,
		.group_id = gr->desc.group_id,
		.pos = pos,
		.data_len = gr->seg_len,
		.nrecs = gr->seg_nrecs,
	};
	for (unsigned int j = 0; j < n; j++) {
		s.index = (uint8_t)j;
		s.chunk_crc = ckpt_crc32c(gr->sub[j] + CKPT_SEG_HDR_LEN, c);
		ckpt_subseg_encode(&s, gr->sub[j]);
		/* Parity lands on a different member each segment, as RAID 5 does. */
		gr->pend_to[j] = (unsigned int)((j + gr->rot) % n);
	}
	gr->rot++;
	gr->sub_len = CKPT_SEG_HDR_LEN + c;
	gr->pend_todo = (1u << n) - 1;
	gr->pend = true;
	gr->pend_ticket = gr->seg_ticket;
	gr->seg_len = 0;
	gr->seg_nrecs = 0;
	group_post_pending(gr);
	return 0;
}

int group_seg_add(struct gregion *gr, const uint8_t *rec, uint32_t len, uint64_t ticket)
{
	int rc;

	if (gr->seg_len + len > gr->seg_cap) {
		if (gr->pend)
			group_post_pending(gr);
		if (gr->pend)
			return -EAGAIN;
		rc = group_cut(gr);
		if (rc)
			return rc;
	}
	memcpy(gr->seg + gr->seg_len, rec, len);
	gr->seg_len += len;
	gr->seg_nrecs++;
	if (ticket)
		gr->seg_ticket = ticket;
	return 0;
}

int group_barrier(struct ckpt_region *r, uint64_t seq)
{
	struct gregion *gr = r->be;
	struct barrier *b;

	if (gr->bq_n == BARRIERS)
		return -EAGAIN;
	b = &gr->bq[(gr->bq_head + gr->bq_n++) % BARRIERS];
	memset(b, 0, sizeof(*b));
	b->seq = seq;
	return 0;
}

void group_flush_members(struct gregion *gr, uint64_t *ticket)
{
	for (unsigned int i = 0; i < gr->g->n; i++) {
		int rc;

		if (!member_ok(gr, i))
			continue;
		ticket[i] = ckpt_posted(gr->mr[i]);
		rc = ckpt_flush(gr->mr[i]);
		if (rc)
			group_member_down(gr->g, i, rc);
	}
}

bool group_members_durable(struct gregion *gr, const uint64_t *ticket)
{
	for (unsigned int i = 0; i < gr->g->n; i++)
		if (member_ok(gr, i) && ckpt_durable(gr->mr[i]) < ticket[i])
			return false;
	return true;
}

void group_write_progress(struct gregion *gr)
{
	if (gr->pend)
		group_post_pending(gr);
	for (unsigned int q = 0; q < gr->bq_n; q++) {
		struct barrier *b = &gr->bq[(gr->bq_head + q) % BARRIERS];

		if (b->issued)
			continue;
		if (b->seq > gr->posted_through && gr->seg_len != 0 && !gr->pend)
			group_cut(gr);
		if (b->seq > gr->posted_through)
			break;
		group_flush_members(gr, b->ticket);
		b->issued = true;
	}
}

void group_barriers_complete(struct ckpt_region *r)
{
	struct gregion *gr = r->be;

	if (live(gr) < need(gr->g))
		return;
	while (gr->bq_n != 0) {
		struct barrier *b = &gr->bq[gr->bq_head];

		if (!b->issued || !group_members_durable(gr, b->ticket))
			return;
		r->durable = b->seq;
		gr->bq_head = (gr->bq_head + 1) % BARRIERS;
		gr->bq_n--;
	}
}
