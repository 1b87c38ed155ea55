/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ec.h"
#include "holdfast/pmu.h"
#include "segment.h"

#define CHUNK 256

static uint8_t buf[CKPT_SEG_HDR_LEN + CHUNK];

static const struct ckpt_subseg good = {
	.code = CKPT_EC_RS,
	.k = 4,
	.m = 2,
	.index = 5,
	.chunk_len = CHUNK,
	.group_id = 0x1122334455667788ull,
	.pos = 123456,
	.data_len = 4 * CHUNK - 40,
	.nrecs = 3,
};

static void make(void)
{
	struct ckpt_subseg s = good;

	for (unsigned int i = 0; i < CHUNK; i++)
		buf[CKPT_SEG_HDR_LEN + i] = (uint8_t)(i * 7);
	s.chunk_crc = ckpt_crc32c(buf + CKPT_SEG_HDR_LEN, CHUNK);
	ckpt_subseg_encode(&s, buf);
}

/* After a field is changed by hand, the header CRC is made right again. */
static void recrc(uint8_t *p)
{
	uint32_t c = ckpt_crc32c(p, 60);

	for (int i = 0; i < 4; i++)
		p[60 + i] = (uint8_t)(c >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_subsegment_round_trips(void **state)
{
	struct ckpt_subseg out;

	(void)state;
	make();
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.code, good.code);
	assert_int_equal(out.k, 4);
	assert_int_equal(out.m, 2);
	assert_int_equal(out.index, 5);
	assert_int_equal(out.chunk_len, CHUNK);
	assert_true(out.group_id == good.group_id);
	assert_true(out.pos == good.pos);
	assert_int_equal(out.data_len, good.data_len);
	assert_int_equal(out.nrecs, 3);
}

/* One malformed class: byte @p at set to @p v (with the header CRC fixed, if asked). */
static int mangled(unsigned int at, uint8_t v, int fix_crc)
{
	struct ckpt_subseg out;

	make();
	buf[at] = v;
	if (fix_crc)
		recrc(buf);
	return ckpt_subseg_decode(buf, sizeof(buf), &out);
}

static void test_subsegment_refuses_every_malformed_header(void **state)
{
	struct ckpt_subseg out;

	(void)state;
	assert_int_equal(mangled(0, 'X', 1), -EINVAL);		  /* magic */
	assert_int_equal(mangled(4, 2, 1), -EINVAL);		  /* version */
	assert_int_equal(mangled(5, 9, 1), -EINVAL);		  /* unknown code */
	assert_int_equal(mangled(5, CKPT_EC_XOR, 1), -EINVAL);	  /* xor with m = 2 */
	assert_int_equal(mangled(5, CKPT_EC_MIRROR, 1), -EINVAL); /* mirror with k = 4 */
	assert_int_equal(mangled(6, 0, 1), -EINVAL);		  /* k = 0 */
	assert_int_equal(mangled(7, 40, 1), -EINVAL);		  /* k + m too many */
	assert_int_equal(mangled(8, 6, 1), -EINVAL);		  /* index past k + m */
	assert_int_equal(mangled(9, 1, 1), -EINVAL);		  /* flags */
	assert_int_equal(mangled(10, 1, 1), -EINVAL);		  /* reserved */
	assert_int_equal(mangled(50, 1, 1), -EINVAL);		  /* reserved tail */
	assert_int_equal(mangled(24, 3, 1), -EINVAL);		  /* position not aligned */
	assert_int_equal(mangled(20, 1, 0), -EINVAL);		  /* header CRC */
	assert_int_equal(mangled(36, 0, 1), -EINVAL);		  /* no records */
	assert_int_equal(mangled(36, 200, 1), -EINVAL);		  /* more records than bytes */

	make();
	put32(buf + 12, 0);
	recrc(buf);
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf), &out), -EINVAL); /* chunk 0 */
	make();
	put32(buf + 12, CHUNK + 8);
	recrc(buf);
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf), &out), -EINVAL); /* unaligned */
	make();
	put32(buf + 12, CKPT_SEG_CHUNK_MAX + CKPT_SEG_ALIGN);
	recrc(buf);
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf), &out), -EINVAL); /* too big */
	make();
	put32(buf + 32, 4 * CHUNK + 8);
	recrc(buf);
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf), &out), -EINVAL); /* > k chunks */
	make();
	put32(buf + 32, 2 * CHUNK);
	recrc(buf);
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf), &out), -EINVAL); /* wrong cut */
	make();
	assert_int_equal(ckpt_subseg_decode(buf, CKPT_SEG_HDR_LEN - 1, &out), -EINVAL);
}

static void test_damaged_chunk_still_frames(void **state)
{
	struct ckpt_subseg out;

	(void)state;
	make();
	buf[CKPT_SEG_HDR_LEN + 17] ^= 1;
	memset(&out, 0, sizeof(out));
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf), &out), -EBADMSG);
	assert_int_equal(out.chunk_len, CHUNK); /* the reader can step over it */
	make();
	assert_int_equal(ckpt_subseg_decode(buf, sizeof(buf) - 1, &out), -EBADMSG);
}

static const struct ckpt_gdesc gd = {
	.code = CKPT_EC_XOR,
	.k = 4,
	.m = 1,
	.member = 3,
	.nmembers = 5,
	.slot_size = 256,
	.group_id = 42,
	.nslots = 1000,
	.ring_size = 1 << 20,
	.size = 8 << 20,
	.mode = PMU_MODE_OVERWRITE,
};

static int gd_mangled(const struct ckpt_gdesc *d, unsigned int at, uint8_t v)
{
	uint8_t b[CKPT_GDESC_LEN];
	struct ckpt_gdesc out;

	ckpt_gdesc_encode(d, b);
	if (at < CKPT_GDESC_LEN) {
		b[at] = v;
		recrc(b);
	}
	return ckpt_gdesc_decode(b, &out);
}

static void test_descriptor_round_trips(void **state)
{
	uint8_t b[CKPT_GDESC_LEN];
	struct ckpt_gdesc out;

	(void)state;
	ckpt_gdesc_encode(&gd, b);
	assert_int_equal(ckpt_gdesc_decode(b, &out), 0);
	assert_int_equal(out.member, 3);
	assert_int_equal(out.nmembers, 5);
	assert_true(out.group_id == 42 && out.nslots == 1000 && out.size == (8 << 20));
	assert_int_equal(out.ring_size, 1 << 20);
	assert_int_equal(out.mode, PMU_MODE_OVERWRITE);
}

static void test_descriptor_refuses_every_malformed_class(void **state)
{
	struct ckpt_gdesc d = gd, out;
	uint8_t zero[CKPT_GDESC_LEN] = {0}, b[CKPT_GDESC_LEN];

	(void)state;
	assert_int_equal(ckpt_gdesc_decode(zero, &out), -ENOENT);
	assert_int_equal(gd_mangled(&gd, 0, 'X'), -EINVAL);   /* magic */
	assert_int_equal(gd_mangled(&gd, 4, 9), -EINVAL);     /* version */
	assert_int_equal(gd_mangled(&gd, 7, 2), -EINVAL);     /* xor with m = 2 */
	assert_int_equal(gd_mangled(&gd, 8, 5), -EINVAL);     /* member past the list */
	assert_int_equal(gd_mangled(&gd, 9, 6), -EINVAL);     /* members != k + m */
	assert_int_equal(gd_mangled(&gd, 10, 1), -EINVAL);    /* reserved */
	assert_int_equal(gd_mangled(&gd, 52, 1), -EINVAL);    /* reserved */
	assert_int_equal(gd_mangled(&gd, 48, 7), -EINVAL);    /* mode */
	assert_int_equal(gd_mangled(&gd, 24, 0xe9), -EINVAL); /* odd slot count */
	ckpt_gdesc_encode(&gd, b);
	b[30] ^= 1;
	assert_int_equal(ckpt_gdesc_decode(b, &out), -EINVAL); /* CRC */
	d.group_id = 0;
	assert_int_equal(gd_mangled(&d, CKPT_GDESC_LEN, 0), -EINVAL);
	d = gd;
	d.mode = PMU_MODE_APPEND; /* an append region has no slots */
	assert_int_equal(gd_mangled(&d, CKPT_GDESC_LEN, 0), -EINVAL);
	d.nslots = 0;
	assert_int_equal(gd_mangled(&d, CKPT_GDESC_LEN, 0), 0);
	d.ring_size = 0;
	assert_int_equal(gd_mangled(&d, CKPT_GDESC_LEN, 0), -EINVAL);
	d = gd;
	d.slot_size = 8;
	assert_int_equal(gd_mangled(&d, CKPT_GDESC_LEN, 0), -EINVAL);
}

static uint8_t seg[3 * CKPT_REC_MAX_LEN];
static uint32_t seg_len;

static int count_rec(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len, void *arg)
{
	unsigned int *n = arg;

	assert_int_equal(rec->generation, *n + 1);
	assert_int_equal(len, ckpt_rec_size(rec->payload_len));
	assert_int_equal(raw[0], 'H');
	(*n)++;
	return 0;
}

/* A record handed over must lie inside the data given (@p arg: its end). */
static int inside_rec(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len, void *arg)
{
	(void)rec;
	assert_true(raw + len <= (const uint8_t *)arg);
	return 0;
}

static void make_segment(void)
{
	uint8_t payload[20] = "slice";

	seg_len = 0;
	for (unsigned int i = 0; i < 3; i++) {
		struct ckpt_rec r = {
			.module_id = 1,
			.conn_id = 7,
			.generation = i + 1,
			.slot_pair = i,
			.key = {.family = 4, .proto = 6},
			.payload_len = (uint16_t)(i * 8),
			.payload = payload,
		};
		int n = ckpt_rec_encode(&r, seg + seg_len, sizeof(seg) - seg_len);

		assert_true(n > 0);
		seg_len += (uint32_t)n;
	}
}

static void test_segment_records_round_trip_and_malformed(void **state)
{
	unsigned int n = 0;

	(void)state;
	make_segment();
	assert_int_equal(ckpt_seg_records(seg, seg_len, 3, count_rec, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ckpt_seg_records(seg, seg_len, 2, NULL, NULL), -EINVAL); /* bytes left */
	assert_int_equal(ckpt_seg_records(seg, seg_len, 4, NULL, NULL), -EINVAL); /* too few */
	assert_int_equal(ckpt_seg_records(seg, seg_len - 8, 3, NULL, NULL), -EINVAL); /* cut */
	/* Only the last record's padding cut off (its body and CRC are all there): refused
	 * before it is handed over, whose length would reach past the data (fuzz_segment). */
	assert_int_equal(ckpt_rec_size(16) - (72 + 16 + 4), 4);
	assert_int_equal(ckpt_seg_records(seg, seg_len - 4, 3, inside_rec, seg + seg_len - 4),
			 -EINVAL);
	seg[100] ^= 0x40;
	assert_int_equal(ckpt_seg_records(seg, seg_len, 3, NULL, NULL), -EINVAL); /* CRC */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subsegment_round_trips),
		cmocka_unit_test(test_subsegment_refuses_every_malformed_header),
		cmocka_unit_test(test_damaged_chunk_still_frames),
		cmocka_unit_test(test_descriptor_round_trips),
		cmocka_unit_test(test_descriptor_refuses_every_malformed_class),
		cmocka_unit_test(test_segment_records_round_trip_and_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
