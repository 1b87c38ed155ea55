/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reading the members back: their rings over the live span as images, the segment at a
 * ring position framed from the subsegment headers that check and carry this group's id
 * and that position, its lost chunks recovered from any k, and the walk over the span
 * that hands each segment's records on. A restore, a log read, a scan for health and a
 * rebuild pass all read through here.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"

void group_images_free(struct images *im)
{
	for (unsigned int i = 0; i < MAXM; i++) {
		free(im->img[i]);
		im->img[i] = NULL;
	}
}

int group_images_load(struct gregion *gr, uint32_t skip_mask, struct images *im)
{
	uint64_t head[MAXM], tail[MAXM];
	unsigned int got = 0;

	memset(im, 0, sizeof(*im));
	im->ring_size = gr->ring_size;
	im->win_len = gr->ring_size;
	for (unsigned int i = 0; i < gr->g->n; i++) {
		head[i] = tail[i] = 0;
		if (!member_ok(gr, i) || (skip_mask & (1u << i)))
			continue;
		if (ckpt_ring_words(gr->mr[i], &head[i], &tail[i]) != 0) {
			group_member_down(gr->g, i, -EIO);
			continue;
		}
		if (tail[i] > im->tail)
			im->tail = tail[i];
		if (head[i] > im->head)
			im->head = head[i];
		got |= 1u << i;
	}
	if (im->head < im->tail)
		im->head = im->tail;
	im->acked_end = im->tail;
	for (unsigned int i = 0, nth; i < gr->g->n; i++) {
		nth = 0;
		for (unsigned int j = 0; j < gr->g->n; j++)
			nth += (got & (1u << j)) && head[j] >= head[i];
		if ((got & (1u << i)) && nth >= need(gr->g) && head[i] > im->acked_end)
			im->acked_end = head[i];
	}
	for (unsigned int i = 0; i < gr->g->n; i++) {
		uint64_t pos = im->tail;

		if (!(got & (1u << i)))
			continue;
		im->img[i] = malloc(im->ring_size);
		if (im->img[i] == NULL) {
			group_images_free(im);
			return -ENOMEM;
		}
		while (pos < im->head) {
			uint64_t off = pos % im->ring_size;
			uint64_t len = im->head - pos < im->ring_size - off ? im->head - pos
									    : im->ring_size - off;
			int rc = group_ring_read_at(gr, i, off, im->img[i] + off, len);

			if (rc) {
				group_member_down(gr->g, i, rc);
				free(im->img[i]);
				im->img[i] = NULL;
				break;
			}
			pos += len;
		}
	}
	return 0;
}

int group_seg_at(struct gregion *gr, const struct images *im, uint64_t pos, struct seg_view *v)
{
	const uint64_t off = pos % im->ring_size - im->win_off;
	const uint64_t room = im->win_len - off;
	bool framed = false, wrap = false;

	memset(v, 0, sizeof(*v));
	v->pos = pos;
	for (unsigned int i = 0; i < gr->g->n; i++) {
		struct ckpt_subseg s;
		const uint8_t *p;
		uint32_t word;
		int rc;

		if (im->img[i] == NULL) {
			v->missing |= 1u << i; /* down, or not read */
			continue;
		}
		p = im->img[i] + off;
		rc = ckpt_subseg_decode(p, room, &s);
		if (rc == 0 || rc == -EBADMSG) {
			if (s.group_id != gr->desc.group_id || s.pos != pos ||
			    s.code != gr->desc.code || s.k != gr->desc.k || s.m != gr->desc.m)
				rc = -EINVAL; /* a stale lap, or another group's bytes */
			else if (framed && (s.chunk_len != v->s.chunk_len ||
					    s.data_len != v->s.data_len || s.nrecs != v->s.nrecs))
				rc = -EINVAL;
		}
		if (rc == -EINVAL && sizeof(word) <= room) {
			memcpy(&word, p, sizeof(word));
			wrap |= le32toh(word) == PMU_RING_WRAP_MAGIC;
		}
		if (rc == 0 && v->frag[s.index] == NULL) {
			if (!framed)
				v->s = s;
			framed = true;
			v->frag[s.index] = (uint8_t *)p + CKPT_SEG_HDR_LEN;
			v->from[s.index] = (int)i;
			v->present++;
			continue;
		}
		if (rc == -EBADMSG) {
			if (!framed)
				v->s = s;
			framed = true;
			v->damaged |= 1u << i;
		}
		v->missing |= 1u << i;
	}
	if (!framed && wrap) {
		v->wrap = true;
		return 0;
	}
	return framed ? 0 : -EIO;
}

static void name_members(const struct gregion *gr, uint32_t mask, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < gr->g->n && at < len; i++)
		if (mask & (1u << i))
			at += (size_t)snprintf(buf + at, len - at, "%s%u (%s)", at ? ", " : "", i,
					       gr->g->member[i]);
}

int group_seg_recover(struct gregion *gr, struct seg_view *v, uint8_t *work, bool all)
{
	const struct ckpt_ec *ec = &gr->g->ec;
	const unsigned int n = ec->k + ec->m;
	bool have[MAXM], need_rec = false;

	for (unsigned int j = 0; j < n; j++) {
		have[j] = v->frag[j] != NULL;
		if (!have[j] && (all || j < ec->k))
			need_rec = true;
		if (!have[j])
			v->frag[j] = work + (size_t)j * CKPT_SEG_CHUNK_MAX;
	}
	if (!need_rec)
		return 0;
	return ckpt_ec_recover(ec, v->s.chunk_len, v->frag, have);
}

/* The segment's record bytes, contiguous: in place for k == 1, else copied into @p buf. */
static const uint8_t *seg_data(struct gregion *gr, const struct seg_view *v, uint8_t *buf)
{
	if (gr->g->ec.k == 1)
		return v->frag[0];
	for (unsigned int j = 0; j < gr->g->ec.k; j++)
		memcpy(buf + (size_t)j * v->s.chunk_len, v->frag[j], v->s.chunk_len);
	return buf;
}

int group_walk(struct gregion *gr, const struct images *im, seg_fn fn, void *arg,
	       struct walk_stats *ws, uint64_t *stop)
{
	const unsigned int n = gr->g->n;
	uint8_t *work = malloc((size_t)n * CKPT_SEG_CHUNK_MAX);
	uint8_t *data = malloc((size_t)gr->g->ec.k * CKPT_SEG_CHUNK_MAX);
	uint64_t pos = im->tail;
	int rc = 0;

	if (work == NULL || data == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (pos < im->head) {
		struct seg_view v;
		char who[512];

		rc = group_seg_at(gr, im, pos, &v);
		if ((rc != 0 || (!v.wrap && v.present < gr->g->ec.k)) && pos >= im->acked_end) {
			/* Past what k members published: a flush that never completed. */
			ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
				 "region %s: the log ends at %" PRIu64
				 ": what follows reached fewer than %u members (a writer stopped "
				 "in the middle of a flush) and was never acknowledged",
				 gr->mr[0] ? gr->mr[0]->geo.name : "?", pos, gr->g->ec.k);
			rc = 0;
			break;
		}
		if (rc) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: no member holds a readable segment at ring position "
				 "%" PRIu64 " (live span %" PRIu64 "..%" PRIu64
				 "); nothing past it "
				 "can be framed",
				 gr->mr[0] ? gr->mr[0]->geo.name : "?", pos, im->tail, im->head);
			if (ws)
				ws->lost++;
			break;
		}
		if (v.wrap) {
			pos += im->ring_size - pos % im->ring_size;
			continue;
		}
		if (ws) {
			ws->segments++;
			for (unsigned int i = 0; i < n; i++) {
				ws->missing[i] += (v.missing >> i) & 1;
				ws->damaged[i] += (v.damaged >> i) & 1;
			}
			if (v.present < n && ws->nfirst_bad < 8)
				ws->first_bad[ws->nfirst_bad++] = pos;
			ws->degraded += v.present < n && v.present >= gr->g->ec.k;
		}
		if (v.damaged)
			ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
				 "segment at %" PRIu64 ": subsegment CRC fails on member(s) %s; "
				 "rebuilt from the others",
				 pos, (name_members(gr, v.damaged, who, sizeof(who)), who));
		if (v.present < gr->g->ec.k) {
			name_members(gr, v.missing, who, sizeof(who));
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "segment at ring position %" PRIu64 ": %u of %u subsegments good, "
				 "%u needed; missing or damaged on member(s) %s",
				 pos, v.present, n, gr->g->ec.k, who);
			if (ws)
				ws->lost++;
			rc = -EIO;
			if (fn != NULL)
				break;
			pos += CKPT_SEG_HDR_LEN + v.s.chunk_len;
			continue;
		}
		if (fn != NULL) {
			rc = group_seg_recover(gr, &v, work, false);
			if (rc == 0)
				rc = fn(gr, seg_data(gr, &v, data), &v, arg);
			if (rc)
				break;
		}
		pos += CKPT_SEG_HDR_LEN + v.s.chunk_len;
		if (stop)
			*stop = pos;
	}
out:
	free(work);
	free(data);
	return rc;
}
