/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: what a redundancy group reads back from its members (any member may
 * be a hostile server): subsegment headers with their chunks, group descriptors, and a
 * segment's record stream (formats in segment.h).
 *
 * Input: one byte of options, then the bytes. Option bit 0 writes the right header CRC
 * (and bit 1 the right chunk CRC) over the input before decoding, so that the fuzzer gets
 * past the checksums to the field checks behind them.
 *
 * Properties (a broken one aborts):
 *   - nothing crashes, nothing is read past the input (ASan: the input is copied into a
 *     buffer of its exact length), nothing overflows (UBSan);
 *   - a header that decodes has a shape ckpt_ec_init() accepts, an index inside it, a
 *     chunk length within bounds and aligned, and its data fits its k chunks; with 0 its
 *     chunk lies inside the input; and it encodes back into the same 64 bytes;
 *   - a descriptor that decodes has members = k + m and its own index below that, and
 *     encodes back into the same 64 bytes;
 *   - a record stream that decodes hands over exactly the records it claims, each inside
 *     the data, back to back.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holdfast/ckpt_record.h"
#include "holdfast/pmu.h"
#include "ec.h"
#include "segment.h"

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_segment: property broken: %s (line %d)\n", #c,       \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct walk {
	const uint8_t *data;
	uint32_t len;
	uint32_t off;
	uint32_t n;
};

static int each(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len, void *arg)
{
	struct walk *w = arg;

	(void)rec;
	REQUIRE(raw == w->data + w->off && len > 0 && len <= w->len - w->off);
	w->off += len;
	w->n++;
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_subseg s;
	struct ckpt_gdesc d;
	uint8_t again[CKPT_SEG_HDR_LEN];
	uint8_t opt, *buf;
	struct walk w;
	int rc;

	if (size < 1)
		return 0;
	opt = data[0];
	size--;
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size);

	/* A subsegment: header, then its chunk. */
	if (size >= CKPT_SEG_HDR_LEN) {
		if (opt & 2) {
			uint32_t clen = (uint32_t)buf[12] | (uint32_t)buf[13] << 8 |
					(uint32_t)buf[14] << 16 | (uint32_t)buf[15] << 24;

			if (clen <= size - CKPT_SEG_HDR_LEN)
				put32(buf + 40, ckpt_crc32c(buf + CKPT_SEG_HDR_LEN, clen));
		}
		if (opt & 1)
			put32(buf + 60, ckpt_crc32c(buf, 60));
	}
	rc = ckpt_subseg_decode(buf, size, &s);
	REQUIRE(rc == 0 || rc == -EINVAL || rc == -EBADMSG);
	if (rc != -EINVAL) {
		REQUIRE(s.k >= 1 && s.m >= 1 && (unsigned int)s.k + s.m <= CKPT_EC_MAX_FRAGS);
		REQUIRE(s.index < s.k + s.m);
		REQUIRE(s.chunk_len > 0 && s.chunk_len <= CKPT_SEG_CHUNK_MAX &&
			s.chunk_len % CKPT_SEG_ALIGN == 0);
		REQUIRE(s.data_len <= (uint64_t)s.k * s.chunk_len && s.nrecs > 0);
		ckpt_subseg_encode(&s, again);
		REQUIRE(memcmp(again, buf, CKPT_SEG_HDR_LEN) == 0);
	}
	if (rc == 0) {
		REQUIRE(s.chunk_len <= size - CKPT_SEG_HDR_LEN);
		/* A data chunk of a one-chunk segment is the record stream itself. */
		if (s.k == 1 && s.index == 0) {
			w = (struct walk){buf + CKPT_SEG_HDR_LEN, s.data_len, 0, 0};
			if (ckpt_seg_records(w.data, w.len, s.nrecs, each, &w) == 0)
				REQUIRE(w.n == s.nrecs && w.off == w.len);
		}
	}

	/* A group descriptor. */
	if (size >= CKPT_GDESC_LEN) {
		if (opt & 1)
			put32(buf + 60, ckpt_crc32c(buf, 60));
		rc = ckpt_gdesc_decode(buf, &d);
		REQUIRE(rc == 0 || rc == -EINVAL || rc == -ENOENT);
		if (rc == 0) {
			REQUIRE(d.nmembers == d.k + d.m && d.member < d.nmembers);
			REQUIRE(d.k >= 1 && d.m >= 1 &&
				(unsigned int)d.k + d.m <= CKPT_EC_MAX_FRAGS);
			ckpt_gdesc_encode(&d, again);
			REQUIRE(memcmp(again, buf, CKPT_GDESC_LEN) == 0);
		}
	}

	/* The bytes as a record stream, claiming as many records as the option byte says. */
	w = (struct walk){buf, (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size), 0, 0};
	if (ckpt_seg_records(w.data, w.len, (uint32_t)(opt >> 2) + 1, each, &w) == 0)
		REQUIRE(w.n == (uint32_t)(opt >> 2) + 1 && w.off == w.len);
	free(buf);
	return 0;
}
