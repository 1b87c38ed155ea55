/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subsegment headers, group descriptors and a segment's record stream: encoded
 * little-endian, every field range-checked on decode (formats in segment.h).
 */
#include <errno.h>
#include <string.h>

#include "holdfast/pmu.h"

#include "ec.h"
#include "segment.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* The code's shape: what ckpt_ec_init() accepts. */
static int code_valid(uint8_t code, uint8_t k, uint8_t m)
{
	if (k == 0 || m == 0 || (unsigned int)k + m > CKPT_EC_MAX_FRAGS)
		return 0;
	switch (code) {
	case CKPT_EC_XOR:
		return m == 1;
	case CKPT_EC_RS:
		return 1;
	case CKPT_EC_MIRROR:
		return k == 1;
	}
	return 0;
}

void ckpt_subseg_encode(const struct ckpt_subseg *s, uint8_t *buf)
{
	memset(buf, 0, CKPT_SEG_HDR_LEN);
	put32(buf, CKPT_SEG_MAGIC);
	buf[4] = CKPT_SEG_VERSION;
	buf[5] = s->code;
	buf[6] = s->k;
	buf[7] = s->m;
	buf[8] = s->index;
	put32(buf + 12, s->chunk_len);
	put64(buf + 16, s->group_id);
	put64(buf + 24, s->pos);
	put32(buf + 32, s->data_len);
	put32(buf + 36, s->nrecs);
	put32(buf + 40, s->chunk_crc);
	put32(buf + 60, ckpt_crc32c(buf, 60));
}

int ckpt_subseg_decode(const uint8_t *buf, uint64_t len, struct ckpt_subseg *out)
{
	struct ckpt_subseg s;

	if (len < CKPT_SEG_HDR_LEN || get32(buf) != CKPT_SEG_MAGIC || buf[4] != CKPT_SEG_VERSION)
		return -EINVAL;
	if (get32(buf + 60) != ckpt_crc32c(buf, 60))
		return -EINVAL;
	s.code = buf[5];
	s.k = buf[6];
	s.m = buf[7];
	s.index = buf[8];
	s.chunk_len = get32(buf + 12);
	s.group_id = get64(buf + 16);
	s.pos = get64(buf + 24);
	s.data_len = get32(buf + 32);
	s.nrecs = get32(buf + 36);
	s.chunk_crc = get32(buf + 40);
	if (!code_valid(s.code, s.k, s.m) || s.index >= s.k + s.m || buf[9] != 0 ||
	    !all_zero(buf + 10, 2) || !all_zero(buf + 44, 16))
		return -EINVAL;
	if (s.chunk_len == 0 || s.chunk_len > CKPT_SEG_CHUNK_MAX ||
	    s.chunk_len % CKPT_SEG_ALIGN != 0 || s.pos % CKPT_REC_ALIGN != 0)
		return -EINVAL;
	if (s.nrecs == 0 || s.data_len < s.nrecs * ckpt_rec_size(0) ||
	    s.data_len > (uint64_t)s.k * s.chunk_len ||
	    ckpt_seg_chunk_len(s.data_len, s.k) != s.chunk_len)
		return -EINVAL;
	*out = s;
	if (len - CKPT_SEG_HDR_LEN < s.chunk_len ||
	    ckpt_crc32c(buf + CKPT_SEG_HDR_LEN, s.chunk_len) != s.chunk_crc)
		return -EBADMSG;
	return 0;
}

void ckpt_gdesc_encode(const struct ckpt_gdesc *d, uint8_t *buf)
{
	memset(buf, 0, CKPT_GDESC_LEN);
	put32(buf, CKPT_GDESC_MAGIC);
	buf[4] = CKPT_GDESC_VERSION;
	buf[5] = d->code;
	buf[6] = d->k;
	buf[7] = d->m;
	buf[8] = d->member;
	buf[9] = d->nmembers;
	put32(buf + 12, d->slot_size);
	put64(buf + 16, d->group_id);
	put64(buf + 24, d->nslots);
	put64(buf + 32, d->ring_size);
	put64(buf + 40, d->size);
	put32(buf + 48, d->mode);
	put32(buf + 60, ckpt_crc32c(buf, 60));
}

int ckpt_gdesc_decode(const uint8_t *buf, struct ckpt_gdesc *out)
{
	struct ckpt_gdesc d;

	if (all_zero(buf, CKPT_GDESC_LEN))
		return -ENOENT;
	if (get32(buf) != CKPT_GDESC_MAGIC || buf[4] != CKPT_GDESC_VERSION ||
	    get32(buf + 60) != ckpt_crc32c(buf, 60))
		return -EINVAL;
	d.code = buf[5];
	d.k = buf[6];
	d.m = buf[7];
	d.member = buf[8];
	d.nmembers = buf[9];
	d.slot_size = get32(buf + 12);
	d.group_id = get64(buf + 16);
	d.nslots = get64(buf + 24);
	d.ring_size = get64(buf + 32);
	d.size = get64(buf + 40);
	d.mode = get32(buf + 48);
	if (!code_valid(d.code, d.k, d.m) || d.nmembers != d.k + d.m || d.member >= d.nmembers ||
	    !all_zero(buf + 10, 2) || !all_zero(buf + 52, 8) || d.group_id == 0)
		return -EINVAL;
	switch (d.mode) {
	case PMU_MODE_OVERWRITE:
		if (d.nslots == 0 || d.nslots % 2 != 0 || d.slot_size < ckpt_rec_size(0) ||
		    d.slot_size > (1u << 20))
			return -EINVAL;
		break;
	case PMU_MODE_APPEND:
		if (d.nslots != 0 || d.ring_size == 0)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	*out = d;
	return 0;
}

int ckpt_seg_records(const uint8_t *data, uint32_t data_len, uint32_t nrecs, ckpt_seg_rec_fn fn,
		     void *arg)
{
	uint32_t off = 0, n = 0;

	while (off < data_len && n < nrecs) {
		struct ckpt_rec rec;
		int len = ckpt_rec_decode(data + off, data_len - off, &rec);

		/* Its length counts its padding, which the data may not hold: then no record. */
		if (len < 0 || (uint32_t)len > data_len - off)
			return -EINVAL;
		if (fn != NULL) {
			int rc = fn(&rec, data + off, (uint32_t)len, arg);

			if (rc)
				return rc;
		}
		off += (uint32_t)len;
		n++;
	}
	return n == nrecs && off == data_len ? 0 : -EINVAL;
}
