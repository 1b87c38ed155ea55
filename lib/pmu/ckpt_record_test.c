/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "holdfast/ckpt_record.h"

static const uint8_t payload[] = "tcp slice: window state and flags";

static struct ckpt_rec sample(void)
{
	struct ckpt_rec r = {
		.flags = 0,
		.module_id = 1,
		.slice_version = 3,
		.conn_id = 0x1122334455667788ull,
		.generation = 42,
		.slot_pair = 7,
		.key = {.family = 4, .proto = 6, .port = {40000, 80}},
		.payload_len = sizeof(payload),
		.payload = payload,
	};
	memcpy(r.key.addr[0], (uint8_t[]){198, 18, 0, 1}, 4);
	memcpy(r.key.addr[1], (uint8_t[]){198, 19, 0, 2}, 4);
	return r;
}

static void test_crc32c_matches_castagnoli_check_value(void **state)
{
	(void)state;
	assert_int_equal(ckpt_crc32c("123456789", 9), 0xe3069283u);
}

/* CRC32C a bit at a time, the definition: what either of ckpt_crc32c's ways must give. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
	}
	return ~c;
}

/*
 * Short buffers go through the CPU's CRC32C instruction, long ones through ISA-L: every
 * length on both sides of the switch, at every alignment, gives the CRC of the definition.
 */
static void test_crc32c_agrees_with_its_definition_at_every_length(void **state)
{
	uint8_t buf[600];
	uint32_t x = 2463534242u;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf) && len <= 520; len++)
			assert_int_equal(ckpt_crc32c(buf + off, len),
					 crc32c_bitwise(buf + off, len));
}

static void test_record_round_trip_v4(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample(), out;
	int n;

	(void)state;
	n = ckpt_rec_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, (int)ckpt_rec_size(sizeof(payload)));
	assert_int_equal(n % CKPT_REC_ALIGN, 0);
	assert_int_equal(ckpt_rec_decode(buf, (size_t)n, &out), n);
	assert_int_equal(out.module_id, 1);
	assert_int_equal(out.slice_version, 3);
	assert_true(out.conn_id == in.conn_id);
	assert_true(out.generation == 42);
	assert_int_equal(out.slot_pair, 7);
	assert_true(ckpt_key_equal(&in.key, &out.key));
	assert_int_equal(out.payload_len, sizeof(payload));
	assert_memory_equal(out.payload, payload, sizeof(payload));
	assert_ptr_equal(out.payload, buf + CKPT_REC_HDR_LEN);
}

static void test_record_round_trip_v6_and_tombstone(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample(), out;
	int n;

	(void)state;
	in.key.family = 6;
	for (int i = 0; i < 16; i++) {
		in.key.addr[0][i] = (uint8_t)(0x20 + i);
		in.key.addr[1][i] = (uint8_t)(0xf0 - i);
	}
	in.flags = CKPT_REC_F_TOMBSTONE;
	in.payload_len = 0;
	in.payload = NULL;
	n = ckpt_rec_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, (int)ckpt_rec_size(0));
	assert_int_equal(ckpt_rec_decode(buf, (size_t)n, &out), n);
	assert_true(out.flags & CKPT_REC_F_TOMBSTONE);
	assert_true(ckpt_key_equal(&in.key, &out.key));
	assert_null(out.payload);
}

static void test_record_is_little_endian_on_media(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample();

	(void)state;
	assert_true(ckpt_rec_encode(&in, buf, sizeof(buf)) > 0);
	assert_memory_equal(buf, "HFCK", 4);
	assert_int_equal(buf[8], 0x88); /* conn id, least significant byte first */
	assert_int_equal(buf[16], 42);	/* generation */
	assert_int_equal(buf[32], 40000 & 0xff);
	assert_int_equal(buf[33], 40000 >> 8);
}

static void test_encode_refuses_out_of_range_fields(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec r;

	(void)state;
	r = sample(), r.module_id = 0;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.conn_id = 0;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.generation = 0;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.key.family = 5;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.key.addr[0][9] = 1;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.flags = 0x80;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.flags = CKPT_REC_F_TOMBSTONE;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.payload_len = CKPT_REC_MAX_PAYLOAD + 1;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample(), r.payload = NULL;
	assert_int_equal(ckpt_rec_encode(&r, buf, sizeof(buf)), -EINVAL);
	r = sample();
	assert_int_equal(ckpt_rec_encode(&r, buf, ckpt_rec_size(r.payload_len) - 1), -ENOSPC);
}

/* Encode a good record, apply @p mutate at byte @p off, optionally re-seal the CRC. */
static int decode_mutated(size_t off, uint8_t value, int reseal)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample(), out;
	int n = ckpt_rec_encode(&in, buf, sizeof(buf));
	size_t body = CKPT_REC_HDR_LEN + in.payload_len;

	buf[off] = value;
	if (reseal) {
		uint32_t crc = ckpt_crc32c(buf, body);
		memcpy(buf + body, &crc, 4);
	}
	memset(&out, 0xa5, sizeof(out));
	int rc = ckpt_rec_decode(buf, (size_t)n, &out);
	if (rc < 0) {
		/* out-parameters stay untouched on failure */
		struct ckpt_rec pattern;
		memset(&pattern, 0xa5, sizeof(pattern));
		assert_memory_equal(&out, &pattern, sizeof(out));
	}
	return rc;
}

static void test_decode_rejects_every_malformed_class(void **state)
{
	(void)state;
	/* Each field made invalid, CRC re-sealed so the field check itself must catch it. */
	assert_int_equal(decode_mutated(0, 'X', 1), -EINVAL);  /* magic */
	assert_int_equal(decode_mutated(4, 2, 1), -EINVAL);    /* newer format version */
	assert_int_equal(decode_mutated(4, 0, 1), -EINVAL);    /* format version 0 */
	assert_int_equal(decode_mutated(5, 0x40, 1), -EINVAL); /* unknown flag */
	assert_int_equal(decode_mutated(5, CKPT_REC_F_TOMBSTONE, 1), -EINVAL); /* tomb+payload */
	assert_int_equal(decode_mutated(6, 0, 1), -EINVAL);		       /* module 0 */
	assert_int_equal(decode_mutated(30, 7, 1), -EINVAL);		       /* family */
	assert_int_equal(decode_mutated(44, 1, 1), -EINVAL);	/* v4 address padding */
	assert_int_equal(decode_mutated(37, 1, 1), -EINVAL);	/* reserved */
	assert_int_equal(decode_mutated(29, 0xff, 1), -EINVAL); /* payload length huge */
	/* Any single flipped bit without re-sealing: the CRC catches it. */
	for (size_t off = 0; off < CKPT_REC_HDR_LEN + sizeof(payload) + 4; off++) {
		uint8_t buf[CKPT_REC_MAX_LEN];
		struct ckpt_rec in = sample(), out;
		int n = ckpt_rec_encode(&in, buf, sizeof(buf));

		buf[off] ^= 0x01;
		assert_int_equal(ckpt_rec_decode(buf, (size_t)n, &out), -EINVAL);
	}
}

static void test_decode_rejects_zero_conn_and_generation(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample(), out;
	int n = ckpt_rec_encode(&in, buf, sizeof(buf));
	size_t body = CKPT_REC_HDR_LEN + in.payload_len;
	uint32_t crc;

	(void)state;
	memset(buf + 8, 0, 8);
	crc = ckpt_crc32c(buf, body);
	memcpy(buf + body, &crc, 4);
	assert_int_equal(ckpt_rec_decode(buf, (size_t)n, &out), -EINVAL);
	n = ckpt_rec_encode(&in, buf, sizeof(buf));
	memset(buf + 16, 0, 8);
	crc = ckpt_crc32c(buf, body);
	memcpy(buf + body, &crc, 4);
	assert_int_equal(ckpt_rec_decode(buf, (size_t)n, &out), -EINVAL);
}

static void test_decode_rejects_truncated_buffers(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample(), out;
	int n = ckpt_rec_encode(&in, buf, sizeof(buf));

	(void)state;
	for (int len = 0; len < (int)(CKPT_REC_HDR_LEN + sizeof(payload) + 4); len++)
		assert_int_equal(ckpt_rec_decode(buf, (size_t)len, &out), -EINVAL);
	assert_int_equal(ckpt_rec_decode(buf, (size_t)n, &out), n);
}

static void test_empty_detection(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN] = {0};
	struct ckpt_rec in = sample();

	(void)state;
	assert_true(ckpt_rec_is_empty(buf, sizeof(buf)));
	assert_true(ckpt_rec_encode(&in, buf, sizeof(buf)) > 0);
	assert_false(ckpt_rec_is_empty(buf, sizeof(buf)));
}

/* A word-wise test must still see one stray byte anywhere in the header, at any length. */
static void test_one_nonzero_header_byte_is_not_empty(void **state)
{
	uint8_t buf[CKPT_REC_HDR_LEN + 8] = {0};

	(void)state;
	for (size_t len = 1; len <= sizeof(buf); len++) {
		for (size_t i = 0; i < len; i++) {
			buf[i] = 0x80;
			/* Past the header a byte is payload, not a sign of a written slot. */
			assert_int_equal(ckpt_rec_is_empty(buf, len), i >= CKPT_REC_HDR_LEN);
			buf[i] = 0;
		}
		assert_true(ckpt_rec_is_empty(buf, len));
	}
}

/* A store steps over records and orders them by generation with what the codec wrote. */
static void test_peek_reads_what_encode_wrote(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample();
	struct ckpt_rec_hdr h;

	(void)state;
	for (unsigned int len = 0; len <= CKPT_REC_MAX_PAYLOAD; len += 97) {
		uint8_t pl[CKPT_REC_MAX_PAYLOAD] = {0};
		int n;

		in.payload = pl;
		in.payload_len = (uint16_t)len;
		in.generation = 0x0102030405060708ull + len;
		in.slot_pair = 0xa0b0c0d0u - len;
		n = ckpt_rec_encode(&in, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(ckpt_rec_peek(buf, (size_t)n, &h), n);
		assert_int_equal(h.len, n);
		assert_true(h.generation == in.generation);
		assert_int_equal(h.slot_pair, in.slot_pair);
	}
}

static void test_peek_refuses_less_than_a_header(void **state)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec in = sample();
	struct ckpt_rec_hdr h = {.generation = 99, .slot_pair = 5, .len = 3};

	(void)state;
	assert_true(ckpt_rec_encode(&in, buf, sizeof(buf)) > 0);
	assert_int_equal(ckpt_rec_peek(buf, CKPT_REC_HDR_LEN - 1, &h), -EINVAL);
	assert_true(h.generation == 99 && h.slot_pair == 5 && h.len == 3); /* untouched */
	assert_int_equal(ckpt_rec_peek(buf, CKPT_REC_HDR_LEN, &h),
			 (int)ckpt_rec_size(sizeof(payload)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_matches_castagnoli_check_value),
		cmocka_unit_test(test_crc32c_agrees_with_its_definition_at_every_length),
		cmocka_unit_test(test_record_round_trip_v4),
		cmocka_unit_test(test_record_round_trip_v6_and_tombstone),
		cmocka_unit_test(test_record_is_little_endian_on_media),
		cmocka_unit_test(test_encode_refuses_out_of_range_fields),
		cmocka_unit_test(test_decode_rejects_every_malformed_class),
		cmocka_unit_test(test_decode_rejects_zero_conn_and_generation),
		cmocka_unit_test(test_decode_rejects_truncated_buffers),
		cmocka_unit_test(test_empty_detection),
		cmocka_unit_test(test_one_nonzero_header_byte_is_not_empty),
		cmocka_unit_test(test_peek_reads_what_encode_wrote),
		cmocka_unit_test(test_peek_refuses_less_than_a_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
