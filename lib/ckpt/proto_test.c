/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"

#define ANY                                                                                        \
	(CKPT_ACCEPT_CHALLENGE | CKPT_ACCEPT_HELLO | CKPT_ACCEPT_WELCOME | CKPT_ACCEPT_REQUEST |   \
	 CKPT_ACCEPT_REPLY)

static uint8_t buf[CKPT_PROTO_FRAME_MAX];

/* A region as the store lays it out: decode refuses any other geometry. */
static struct pmu_region_info sample_region(void)
{
	struct pmu_region_params p = {
		.name = "fw1-state",
		.owner = "tenant-a",
		.mode = PMU_MODE_OVERWRITE,
		.size = 1 << 22,
		.slot_size = 256,
		.ring_size = 65536,
	};
	struct pmu_region_info r;

	assert_int_equal(pmu_region_layout(&p, &r), 0);
	r.index = 3;
	r.offset = 1 << 20;
	r.created_ns = 1700000000123456789ull;
	r.lease_ns = 1700000001000000000ull;
	r.epoch = 0x0102030405060708ull;
	return r;
}

static int round_trip_into(const struct ckpt_msg *in, struct ckpt_msg *out,
			   struct ckpt_region_info *items, uint32_t cap)
{
	int n = ckpt_proto_encode(in, buf, sizeof(buf));

	assert_true(n >= CKPT_PROTO_HDR_LEN);
	assert_int_equal(ckpt_proto_frame_len(buf, ANY, NULL), n);
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, out, items, cap), 0);
	assert_int_equal(out->type, in->type);
	assert_int_equal(out->seq, in->seq);
	assert_int_equal(out->status, in->status);
	return n;
}

static int round_trip(const struct ckpt_msg *in, struct ckpt_msg *out)
{
	return round_trip_into(in, out, NULL, 0);
}

static void test_header_is_little_endian_with_fixed_layout(void **state)
{
	struct ckpt_msg m = {.type = CKPT_MSG_CLOSE, .seq = 0x01020304, .u.close.handle = 9};
	int n;

	(void)state;
	n = ckpt_proto_encode(&m, buf, sizeof(buf));
	assert_int_equal(n, CKPT_PROTO_HDR_LEN + 8);
	assert_memory_equal(
		buf,
		((uint8_t[]){8, 0, 0, 0, CKPT_MSG_CLOSE, 0, CKPT_PROTO_VERSION, 0, 4, 3, 2, 1}),
		12);
	assert_int_equal(buf[16], 9);
}

static void test_auth_messages_round_trip(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_HELLO, .seq = 1}, out;

	(void)state;
	strcpy(in.u.hello.tenant, "tenant-a");
	memset(in.u.hello.nonce, 0xa5, CKPT_PROTO_NONCE);
	memset(in.u.hello.mac, 0x5a, CKPT_PROTO_MAC);
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN + 64 + 32 + 32);
	assert_string_equal(out.u.hello.tenant, "tenant-a");
	assert_memory_equal(out.u.hello.nonce, in.u.hello.nonce, CKPT_PROTO_NONCE);
	assert_memory_equal(out.u.hello.mac, in.u.hello.mac, CKPT_PROTO_MAC);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_WELCOME;
	in.u.welcome.ep_len = 17;
	in.u.welcome.rxm_buffer = 2048;
	memcpy(in.u.welcome.ep, "\x02\x00\x9c\x40\x7f\x00\x00\x01rest-of-n", 17);
	memset(in.u.welcome.mac, 7, CKPT_PROTO_MAC);
	round_trip(&in, &out);
	assert_int_equal(out.u.welcome.ep_len, 17);
	assert_int_equal(out.u.welcome.rxm_buffer, 2048);
	assert_memory_equal(out.u.welcome.ep, in.u.welcome.ep, 17);

	/* A refusal is a WELCOME with a status and nothing else. */
	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_WELCOME;
	in.status = -EACCES;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN);
	assert_int_equal(out.status, -EACCES);
}

static void test_requests_round_trip(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_CREATE, .seq = 77}, out;

	(void)state;
	strcpy(in.u.create.name, "r");
	in.u.create.mode = PMU_MODE_APPEND;
	in.u.create.slot_size = 512;
	in.u.create.size = 1ull << 40;
	in.u.create.ring_size = 12345;
	round_trip(&in, &out);
	assert_string_equal(out.u.create.name, "r");
	assert_int_equal(out.u.create.mode, PMU_MODE_APPEND);
	assert_int_equal(out.u.create.slot_size, 512);
	assert_true(out.u.create.size == 1ull << 40);
	assert_true(out.u.create.ring_size == 12345);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_PERSIST;
	in.u.persist.handle = 0xfedcba9876543210ull;
	in.u.persist.off = 4096;
	in.u.persist.len = UINT64_MAX;
	in.u.persist.head = 0x0123456789abcdefull;
	round_trip(&in, &out);
	assert_true(out.u.persist.handle == 0xfedcba9876543210ull);
	assert_true(out.u.persist.off == 4096);
	assert_true(out.u.persist.len == UINT64_MAX);
	assert_true(out.u.persist.head == 0x0123456789abcdefull);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_LEASE;
	in.u.lease.handle = 5;
	in.u.lease.ttl_ms = 3000;
	round_trip(&in, &out);
	assert_true(out.u.lease.handle == 5);
	assert_int_equal(out.u.lease.ttl_ms, 3000);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_STAT;
	strcpy(in.u.name.name, "a-name-of-exactly-sixty-three-characters-long-xxxxxxxxxxxxxxxxx");
	assert_int_equal(strlen(in.u.name.name), PMU_NAME_MAX - 1);
	round_trip(&in, &out);
	assert_string_equal(out.u.name.name, in.u.name.name);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_LIST;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN);
}

static void test_open_reply_carries_geometry_key_and_base(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_OPEN | CKPT_MSG_REPLY, .seq = 3}, out;

	(void)state;
	in.u.opened.handle = 42;
	in.u.opened.info = sample_region();
	in.u.opened.is_pmem = 1;
	in.u.opened.rkey = 0x0123456789abcdefull;
	in.u.opened.base = 0x7f0000001000ull;
	round_trip(&in, &out);
	assert_true(out.u.opened.handle == 42);
	assert_memory_equal(&out.u.opened.info, &in.u.opened.info, sizeof(in.u.opened.info));
	assert_int_equal(out.u.opened.is_pmem, 1);
	assert_true(out.u.opened.rkey == 0x0123456789abcdefull);
	assert_true(out.u.opened.base == 0x7f0000001000ull);
}

static void test_list_reply_round_trips_and_respects_cap(void **state)
{
	struct ckpt_region_info items[3] = {0}, got[2];
	struct ckpt_msg in = {.type = CKPT_MSG_LIST | CKPT_MSG_REPLY}, out = {0};

	(void)state;
	for (int i = 0; i < 3; i++) {
		items[i].r = sample_region();
		items[i].r.index = (uint32_t)i;
		items[i].lease_alive = i == 1;
		items[i].ring_head = 100 + (uint64_t)i;
		items[i].ring_tail = 50;
	}
	in.u.list.total = 5;
	in.u.list.n = 3;
	in.u.list.items = items;
	assert_int_equal(round_trip_into(&in, &out, got, 2),
			 CKPT_PROTO_HDR_LEN + 8 + 3 * CKPT_PROTO_INFO_LEN);
	assert_null(out.u.list.items);
	assert_int_equal(out.u.list.total, 5);
	assert_int_equal(out.u.list.n, 3);
	assert_int_equal(got[1].r.index, 1);
	assert_true(got[1].lease_alive);
	assert_false(got[0].lease_alive);
	assert_true(got[1].ring_head == 101);
}

static void test_error_reply_has_no_body(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_OPEN | CKPT_MSG_REPLY, .status = -ENOENT}, out;

	(void)state;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN);
	assert_int_equal(out.status, -ENOENT);
}

static void test_encode_refuses_bad_fields(void **state)
{
	struct ckpt_msg m = {.type = CKPT_MSG_OPEN};

	(void)state;
	memset(m.u.name.name, 'x', PMU_NAME_MAX); /* no NUL */
	assert_int_equal(ckpt_proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.type = 999;
	assert_int_equal(ckpt_proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.type = CKPT_MSG_CLOSE;
	m.status = -EIO; /* requests carry no status */
	assert_int_equal(ckpt_proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.status = 0;
	assert_int_equal(ckpt_proto_encode(&m, buf, CKPT_PROTO_HDR_LEN + 4), -ENOSPC);
	m.type = CKPT_MSG_WELCOME;
	m.u.welcome.ep_len = CKPT_PROTO_EP_MAX + 1;
	assert_int_equal(ckpt_proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.type = CKPT_MSG_CREATE;
	strcpy(m.u.create.name, "r");
	m.u.create.mode = 3;
	assert_int_equal(ckpt_proto_encode(&m, buf, sizeof(buf)), -EINVAL);
}

/* Encode a good message, let the caller damage it, and expect decode to refuse. */
static int encode_then(uint16_t type, int (*damage)(uint8_t *, int))
{
	struct ckpt_msg m = {.type = type}, out;
	int n;

	if (type == CKPT_MSG_OPEN)
		strcpy(m.u.name.name, "region");
	if (type == (CKPT_MSG_OPEN | CKPT_MSG_REPLY))
		m.u.opened.info = sample_region();
	n = ckpt_proto_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	n = damage(buf, n);
	return ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0);
}

static int wrong_version(uint8_t *b, int n)
{
	b[6] = 1; /* a peer of the version before (region descriptions without the epoch) */
	return n;
}

static int unknown_type(uint8_t *b, int n)
{
	b[4] = 0x7f;
	return n;
}

static int truncated(uint8_t *b, int n)
{
	(void)b;
	return n - 1;
}

static int longer_than_stated(uint8_t *b, int n)
{
	b[n] = 0;
	return n + 1;
}

static int body_too_long_for_type(uint8_t *b, int n)
{
	b[0]++;
	b[n] = 0;
	return n + 1;
}

static int name_without_nul(uint8_t *b, int n)
{
	memset(b + CKPT_PROTO_HDR_LEN, 'a', PMU_NAME_MAX);
	return n;
}

static int bytes_after_name_nul(uint8_t *b, int n)
{
	b[CKPT_PROTO_HDR_LEN + PMU_NAME_MAX - 1] = 'z';
	return n;
}

static int empty_name(uint8_t *b, int n)
{
	memset(b + CKPT_PROTO_HDR_LEN, 0, PMU_NAME_MAX);
	return n;
}

static int status_on_request(uint8_t *b, int n)
{
	b[12] = 0xfe;
	b[13] = b[14] = b[15] = 0xff;
	return n;
}

static int huge_length(uint8_t *b, int n)
{
	b[0] = b[1] = b[2] = b[3] = 0xff;
	return n;
}

static int bad_mode_in_reply(uint8_t *b, int n)
{
	b[CKPT_PROTO_HDR_LEN + 8 + 128] = 9;
	return n;
}

static int nonzero_reserved_in_reply(uint8_t *b, int n)
{
	b[CKPT_PROTO_HDR_LEN + 8 + CKPT_PROTO_REGION_LEN + 3] = 1;
	return n;
}

static int ring_outside_region(uint8_t *b, int n)
{
	/* ring_size field of the region (offset 176 inside it) */
	memset(b + CKPT_PROTO_HDR_LEN + 8 + 176, 0xff, 8);
	return n;
}

static void test_decode_refuses_malformed_frames(void **state)
{
	(void)state;
	assert_int_equal(encode_then(CKPT_MSG_OPEN, wrong_version), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, unknown_type), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, truncated), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, longer_than_stated), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, body_too_long_for_type), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, name_without_nul), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, bytes_after_name_nul), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, empty_name), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, status_on_request), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN, huge_length), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN | CKPT_MSG_REPLY, bad_mode_in_reply), -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN | CKPT_MSG_REPLY, nonzero_reserved_in_reply),
			 -EINVAL);
	assert_int_equal(encode_then(CKPT_MSG_OPEN | CKPT_MSG_REPLY, ring_outside_region), -EINVAL);
	assert_int_equal(ckpt_proto_decode(buf, 3, ANY, &(struct ckpt_msg){0}, NULL, 0), -EINVAL);
}

static void test_decode_survives_random_bytes(void **state)
{
	struct ckpt_msg m;
	uint32_t x = 12345;

	(void)state;
	/* Random frames with a plausible header: decode must answer, never crash or overrun. */
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = CKPT_PROTO_HDR_LEN + (iter % 300);

		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (uint8_t)(x >> 16);
		}
		buf[0] = (uint8_t)(len - CKPT_PROTO_HDR_LEN);
		buf[1] = buf[2] = buf[3] = 0;
		buf[5] = (uint8_t)(buf[5] & 0x80);
		buf[6] = 1;
		buf[7] = 0;
		memset(&m, 0xa5, sizeof(m)); /* decode must not trust what the struct held */
		(void)ckpt_proto_decode(buf, len, ANY, &m, NULL, 0);
	}
	assert_true(x != 12345);
}

/* One valid message of every layout, for the mutation test. */
static int sample_messages(struct ckpt_msg *m, struct ckpt_region_info *items)
{
	static const uint16_t types[] = {
		CKPT_MSG_CHALLENGE,
		CKPT_MSG_HELLO,
		CKPT_MSG_WELCOME,
		CKPT_MSG_CREATE,
		CKPT_MSG_OPEN,
		CKPT_MSG_CLOSE,
		CKPT_MSG_DELETE,
		CKPT_MSG_LIST,
		CKPT_MSG_STAT,
		CKPT_MSG_PERSIST,
		CKPT_MSG_LEASE,
		CKPT_MSG_CREATE | CKPT_MSG_REPLY,
		CKPT_MSG_OPEN | CKPT_MSG_REPLY,
		CKPT_MSG_STAT | CKPT_MSG_REPLY,
		CKPT_MSG_LIST | CKPT_MSG_REPLY,
		CKPT_MSG_PERSIST | CKPT_MSG_REPLY,
		CKPT_MSG_TAKE,
		CKPT_MSG_BIND,
		CKPT_MSG_WATCH,
		CKPT_MSG_TAKE | CKPT_MSG_REPLY,
		CKPT_MSG_BIND | CKPT_MSG_REPLY,
		CKPT_MSG_WATCH | CKPT_MSG_REPLY,
	};
	int n = (int)(sizeof(types) / sizeof(types[0]));

	for (int i = 0; i < n; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].type = types[i];
		m[i].seq = 1000u + (uint32_t)i;
	}
	strcpy(m[1].u.hello.tenant, "t");
	m[2].u.welcome.ep_len = 16;
	strcpy(m[3].u.create.name, "c");
	m[3].u.create.mode = PMU_MODE_OVERWRITE;
	strcpy(m[4].u.name.name, "o");
	strcpy(m[6].u.name.name, "d");
	strcpy(m[8].u.name.name, "s");
	m[11].u.opened.info = sample_region();
	m[12].u.opened.info = sample_region();
	m[13].u.stat.r = sample_region();
	items[0].r = sample_region();
	items[1].r = sample_region();
	m[14].u.list.total = 2;
	m[14].u.list.n = 2;
	m[14].u.list.items = items;
	m[15].status = -EINVAL;
	m[16].u.take.handle = 7;
	m[16].u.take.seen = 3;
	strcpy(m[17].u.bind.name, "fw.0");
	m[17].u.bind.epoch = 4;
	m[18].u.watch.handle = 7;
	m[18].u.watch.timeout_ms = 2000;
	m[19].u.taken.epoch = 4;
	m[20].status = -ESTALE;
	m[21].status = -ETIMEDOUT;
	return n;
}

/*
 * Flip every bit of every sample frame, and cut every frame at every length: decode either
 * refuses, or accepts a message whose re-encoding is exactly the mutated frame (there is
 * one encoding per message, so nothing unchecked can ride along).
 */
static void test_decode_accepts_only_canonical_frames(void **state)
{
	static uint8_t frame[CKPT_PROTO_FRAME_MAX], again[CKPT_PROTO_FRAME_MAX];
	struct ckpt_region_info items[2] = {0}, got[4];
	struct ckpt_msg m[22], out;
	int n = sample_messages(m, items), accepted = 0, refused = 0;

	(void)state;
	for (int i = 0; i < n; i++) {
		int len = ckpt_proto_encode(&m[i], frame, sizeof(frame));

		assert_true(len > 0);
		for (int cut = 0; cut < len; cut++)
			assert_int_equal(ckpt_proto_decode(frame, (size_t)cut, ANY, &out, got, 4),
					 -EINVAL);
		for (int bit = 0; bit < len * 8; bit++) {
			int k;

			frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (ckpt_proto_decode(frame, (size_t)len, ANY, &out, got, 4) == 0) {
				if (out.type == (CKPT_MSG_LIST | CKPT_MSG_REPLY))
					out.u.list.items = got;
				k = ckpt_proto_encode(&out, again, sizeof(again));
				assert_int_equal(k, len);
				assert_memory_equal(again, frame, (size_t)len);
				accepted++;
			} else {
				refused++;
			}
			frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
	/* Both outcomes happen: payload bits are free, structure bits are checked. */
	assert_true(accepted > 0);
	assert_true(refused > 0);
}

/* A frame of @p type with a body of @p body_len bytes of @p fill, header valid otherwise. */
static size_t raw_frame(uint16_t type, uint32_t body_len, uint8_t fill)
{
	memset(buf, fill, CKPT_PROTO_HDR_LEN + body_len);
	buf[0] = (uint8_t)body_len;
	buf[1] = (uint8_t)(body_len >> 8);
	buf[2] = (uint8_t)(body_len >> 16);
	buf[3] = (uint8_t)(body_len >> 24);
	buf[4] = (uint8_t)type;
	buf[5] = (uint8_t)(type >> 8);
	buf[6] = CKPT_PROTO_VERSION;
	buf[7] = 0;
	memset(buf + 8, 0, 8); /* seq 0, status 0 */
	return CKPT_PROTO_HDR_LEN + body_len;
}

/*
 * The attack that crashed ckptsrv before authentication: a LIST *reply* (total = n = 1)
 * where a HELLO belongs. The old decoder wrote the entry through list.items, which shared
 * its bytes with the CHALLENGE nonce the server had just sent. Now the receiver refuses the
 * type from the header, and a decoder that does take replies writes entries only into the
 * room it was given, whatever the message struct held before.
 */
static void test_decode_writes_only_into_storage_passed_for_it(void **state)
{
	struct ckpt_region_info items[1] = {0};
	struct ckpt_msg in = {.type = CKPT_MSG_LIST | CKPT_MSG_REPLY}, m;
	size_t len;
	int n;

	(void)state;
	items[0].r = sample_region();
	in.u.list.total = 1;
	in.u.list.n = 1;
	in.u.list.items = items;
	n = ckpt_proto_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, CKPT_PROTO_HDR_LEN + 8 + CKPT_PROTO_INFO_LEN);
	len = (size_t)n;
	memset(&m, 0xa5, sizeof(m)); /* a nonce where the pointer was */
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_HELLO, NULL), -EINVAL);
	assert_int_equal(ckpt_proto_decode(buf, len, CKPT_ACCEPT_HELLO, &m, NULL, 0), -EINVAL);
	assert_int_equal(ckpt_proto_decode(buf, len, CKPT_ACCEPT_REQUEST, &m, NULL, 0), -EINVAL);
	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(ckpt_proto_decode(buf, len, CKPT_ACCEPT_REPLY, &m, NULL, 0), 0);
	assert_int_equal(m.u.list.total, 1);
	assert_int_equal(m.u.list.n, 1);
	assert_null(m.u.list.items);
}

/* The keepalive and its answer are a header each: no body either way. */
static void test_ping_and_its_reply_round_trip_with_no_body(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_PING, .seq = 41}, out;

	(void)state;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), CKPT_PROTO_HDR_LEN);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REPLY, NULL), -EINVAL);
	in.type = CKPT_MSG_PING | CKPT_MSG_REPLY;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REPLY, NULL), CKPT_PROTO_HDR_LEN);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
	/* A PING with a body is malformed, whatever the body says. */
	raw_frame(CKPT_MSG_PING, 8, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
}

/* Each receiver takes its own messages only, judged from the header before the body. */
static void test_receivers_refuse_types_out_of_place(void **state)
{
	static const struct {
		uint16_t type;
		uint32_t body;
		unsigned int cls;
	} t[] = {
		{CKPT_MSG_CHALLENGE, CKPT_PROTO_NONCE, CKPT_ACCEPT_CHALLENGE},
		{CKPT_MSG_HELLO, PMU_NAME_MAX + 64, CKPT_ACCEPT_HELLO},
		{CKPT_MSG_WELCOME, CKPT_PROTO_MAC + 8 + 16, CKPT_ACCEPT_WELCOME},
		{CKPT_MSG_OPEN, PMU_NAME_MAX, CKPT_ACCEPT_REQUEST},
		{CKPT_MSG_LIST, 0, CKPT_ACCEPT_REQUEST},
		{CKPT_MSG_LIST | CKPT_MSG_REPLY, 8, CKPT_ACCEPT_REPLY},
		{CKPT_MSG_CLOSE | CKPT_MSG_REPLY, 0, CKPT_ACCEPT_REPLY},
		{CKPT_MSG_TAKE, 16, CKPT_ACCEPT_REQUEST},
		{CKPT_MSG_BIND, PMU_NAME_MAX + 8, CKPT_ACCEPT_REQUEST},
		{CKPT_MSG_WATCH, 16, CKPT_ACCEPT_REQUEST},
		{CKPT_MSG_TAKE | CKPT_MSG_REPLY, 8, CKPT_ACCEPT_REPLY},
		{CKPT_MSG_BIND | CKPT_MSG_REPLY, 0, CKPT_ACCEPT_REPLY},
		{CKPT_MSG_WATCH | CKPT_MSG_REPLY, 0, CKPT_ACCEPT_REPLY},
	};
	static const unsigned int classes[] = {CKPT_ACCEPT_CHALLENGE, CKPT_ACCEPT_HELLO,
					       CKPT_ACCEPT_WELCOME, CKPT_ACCEPT_REQUEST,
					       CKPT_ACCEPT_REPLY};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (size_t j = 0; j < sizeof(classes) / sizeof(classes[0]); j++) {
			size_t len = raw_frame(t[i].type, t[i].body, 0);
			int want = classes[j] == t[i].cls ? (int)len : -EINVAL;

			assert_int_equal(ckpt_proto_frame_len(buf, classes[j], NULL), want);
		}
	}
	/* Replies to authentication messages do not exist. */
	raw_frame(CKPT_MSG_CHALLENGE | CKPT_MSG_REPLY, CKPT_PROTO_NONCE, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, ANY, NULL), -EINVAL);
}

/*
 * A peer cannot make a receiver read more than the type's layout holds: a 57 KB HELLO used
 * to be read whole (any body up to a full LIST reply) before it was found malformed.
 */
static void test_header_refuses_a_body_longer_than_its_type_holds(void **state)
{
	(void)state;
	raw_frame(CKPT_MSG_HELLO, PMU_NAME_MAX + 65, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_HELLO, NULL), -EINVAL);
	raw_frame(CKPT_MSG_HELLO, CKPT_PROTO_BODY_MAX, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_HELLO, NULL), -EINVAL);
	raw_frame(CKPT_MSG_PERSIST, 33, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
	raw_frame(CKPT_MSG_LIST, 1, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
	raw_frame(CKPT_MSG_TAKE, 17, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
	raw_frame(CKPT_MSG_BIND, PMU_NAME_MAX + 9, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
	raw_frame(CKPT_MSG_WATCH, 17, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
	raw_frame(CKPT_MSG_TAKE | CKPT_MSG_REPLY, 9, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REPLY, NULL), -EINVAL);
	raw_frame(CKPT_MSG_WATCH | CKPT_MSG_REPLY, 1, 0);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REPLY, NULL), -EINVAL);
	/* an error reply carries nothing */
	raw_frame(CKPT_MSG_OPEN | CKPT_MSG_REPLY, 8, 0);
	buf[12] = 0xfe; /* status -2 */
	buf[13] = buf[14] = buf[15] = 0xff;
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REPLY, NULL), -EINVAL);
}

/* A server that describes slots or a ring the store would not lay out is not believed. */
static void test_decode_refuses_region_geometry_the_store_would_not_lay_out(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_OPEN | CKPT_MSG_REPLY}, out;
	struct pmu_region_info good = sample_region();
	int n;

	(void)state;
	in.u.opened.info = good;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN + 240);
	in.u.opened.info.nslots += 2;
	n = ckpt_proto_encode(&in, buf, sizeof(buf));
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);
	in.u.opened.info = good;
	in.u.opened.info.ring_off -= 4096;
	n = ckpt_proto_encode(&in, buf, sizeof(buf));
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);
	in.u.opened.info = good;
	in.u.opened.info.slot_size = 8;
	n = ckpt_proto_encode(&in, buf, sizeof(buf));
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);
	/* a ring span longer than the ring */
	in.type = CKPT_MSG_STAT | CKPT_MSG_REPLY;
	memset(&in.u, 0, sizeof(in.u));
	in.u.stat.r = good;
	in.u.stat.ring_tail = 4096;
	in.u.stat.ring_head = 4096 + good.ring_size;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN + CKPT_PROTO_INFO_LEN);
	in.u.stat.ring_head++;
	n = ckpt_proto_encode(&in, buf, sizeof(buf));
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);
}

/* TAKE, BIND and WATCH, and the epoch every region description carries (issue 14). */
static void test_fencing_messages_round_trip(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_TAKE, .seq = 5}, out;

	(void)state;
	in.u.take.handle = 0x1122334455667788ull;
	in.u.take.seen = UINT64_MAX - 1;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN + 16);
	assert_true(out.u.take.handle == 0x1122334455667788ull);
	assert_true(out.u.take.seen == UINT64_MAX - 1);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_TAKE | CKPT_MSG_REPLY;
	in.u.taken.epoch = 9;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN + 8);
	assert_true(out.u.taken.epoch == 9);
	in.u.taken.epoch = 0;
	in.status = -ESTALE; /* lost the race: a status, no body */
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN);
	assert_int_equal(out.status, -ESTALE);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_BIND;
	strcpy(in.u.bind.name, "fw1.0");
	in.u.bind.epoch = 12;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN + PMU_NAME_MAX + 8);
	assert_string_equal(out.u.bind.name, "fw1.0");
	assert_true(out.u.bind.epoch == 12);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_WATCH;
	in.u.watch.handle = 3;
	in.u.watch.timeout_ms = UINT32_MAX;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN + 16);
	assert_true(out.u.watch.handle == 3);
	assert_int_equal(out.u.watch.timeout_ms, UINT32_MAX);

	in.type = CKPT_MSG_WATCH | CKPT_MSG_REPLY;
	in.status = -ETIMEDOUT;
	assert_int_equal(round_trip(&in, &out), CKPT_PROTO_HDR_LEN);
	assert_int_equal(out.status, -ETIMEDOUT);

	memset(&in, 0, sizeof(in));
	in.type = CKPT_MSG_STAT | CKPT_MSG_REPLY;
	in.u.stat.r = sample_region();
	round_trip(&in, &out);
	assert_true(out.u.stat.r.epoch == 0x0102030405060708ull);
}

static void test_fencing_messages_refuse_what_does_not_check(void **state)
{
	struct ckpt_msg m = {.type = CKPT_MSG_TAKE | CKPT_MSG_REPLY}, out;
	int n;

	(void)state;
	/* No take ends at epoch 0 ("never taken"): neither end says so. */
	assert_int_equal(ckpt_proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.taken.epoch = 1;
	n = ckpt_proto_encode(&m, buf, sizeof(buf));
	assert_int_equal(n, CKPT_PROTO_HDR_LEN + 8);
	buf[CKPT_PROTO_HDR_LEN] = 0;
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);

	/* BIND names a region like OPEN does. */
	memset(&m, 0, sizeof(m));
	m.type = CKPT_MSG_BIND;
	memset(m.u.bind.name, 'x', PMU_NAME_MAX);
	assert_int_equal(ckpt_proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	strcpy(m.u.bind.name, "fw1.0");
	n = ckpt_proto_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	buf[CKPT_PROTO_HDR_LEN] = 0; /* empty name */
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);
	buf[CKPT_PROTO_HDR_LEN] = 'f';
	buf[CKPT_PROTO_HDR_LEN + PMU_NAME_MAX - 1] = 'z'; /* bytes after the NUL */
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);

	/* WATCH's reserved word is zero; a short body is malformed. */
	memset(&m, 0, sizeof(m));
	m.type = CKPT_MSG_WATCH;
	m.u.watch.timeout_ms = 10;
	n = ckpt_proto_encode(&m, buf, sizeof(buf));
	assert_int_equal(n, CKPT_PROTO_HDR_LEN + 16);
	buf[CKPT_PROTO_HDR_LEN + 12] = 1;
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n, ANY, &out, NULL, 0), -EINVAL);
	buf[CKPT_PROTO_HDR_LEN + 12] = 0;
	assert_int_equal(ckpt_proto_decode(buf, (size_t)n - 4, ANY, &out, NULL, 0), -EINVAL);

	/* Requests only where requests go: a server never takes a TAKE reply, nor a client a
	 * TAKE. */
	raw_frame(CKPT_MSG_TAKE | CKPT_MSG_REPLY, 8, 1);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
	raw_frame(CKPT_MSG_TAKE, 16, 1);
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REPLY, NULL), -EINVAL);
	/* Nor a status on a request. */
	raw_frame(CKPT_MSG_WATCH, 16, 0);
	buf[12] = 0x8c; /* -116, ESTALE */
	buf[13] = buf[14] = buf[15] = 0xff;
	assert_int_equal(ckpt_proto_frame_len(buf, CKPT_ACCEPT_REQUEST, NULL), -EINVAL);
}

static void test_auth_macs_bind_nonces_tenant_and_direction(void **state)
{
	const uint8_t secret[] = "0123456789abcdef-secret";
	const uint8_t other[] = "0123456789abcdef-secreT";
	uint8_t sn[CKPT_PROTO_NONCE], cn[CKPT_PROTO_NONCE], mac[CKPT_PROTO_MAC];
	uint8_t smac[CKPT_PROTO_MAC];

	(void)state;
	memset(sn, 1, sizeof(sn));
	memset(cn, 2, sizeof(cn));
	ckpt_proto_client_mac(secret, sizeof(secret), sn, cn, "alice", mac);
	assert_int_equal(ckpt_proto_client_verify(secret, sizeof(secret), sn, cn, "alice", mac), 0);
	assert_int_equal(ckpt_proto_client_verify(secret, sizeof(secret), sn, cn, "bob", mac),
			 -EACCES);
	assert_int_equal(ckpt_proto_client_verify(other, sizeof(other), sn, cn, "alice", mac),
			 -EACCES);
	assert_int_equal(ckpt_proto_client_verify(secret, sizeof(secret), cn, sn, "alice", mac),
			 -EACCES);
	ckpt_proto_server_mac(secret, sizeof(secret), cn, sn, smac);
	assert_int_equal(ckpt_proto_server_verify(secret, sizeof(secret), cn, sn, smac), 0);
	/* A client's mac replayed as the server's proof does not pass. */
	assert_int_equal(ckpt_proto_server_verify(secret, sizeof(secret), cn, sn, mac), -EACCES);
}

static void test_stream_helpers_move_frames_and_report_peer_close(void **state)
{
	struct ckpt_msg in = {.type = CKPT_MSG_PERSIST, .seq = 9}, out;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	in.u.persist.len = 64;
	assert_int_equal(ckpt_proto_send_msg(sv[0], &in, 1000), 0);
	assert_int_equal(ckpt_proto_recv_msg(sv[1], buf, CKPT_ACCEPT_REQUEST, &out, 1000), 0);
	assert_int_equal(out.type, CKPT_MSG_PERSIST);
	assert_true(out.u.persist.len == 64);
	assert_int_equal(ckpt_proto_recv_msg(sv[1], buf, CKPT_ACCEPT_REQUEST, &out, 20),
			 -ETIMEDOUT);
	/* half a header, then the peer goes away */
	assert_int_equal(write(sv[0], "\x08\x00", 2), 2);
	close(sv[0]);
	assert_int_equal(ckpt_proto_recv_msg(sv[1], buf, CKPT_ACCEPT_REQUEST, &out, 1000),
			 -ECONNRESET);
	close(sv[1]);
}

static void test_target_addresses_parse_strictly(void **state)
{
	char host[64], port[8];
	struct sockaddr_un sun;

	(void)state;
	assert_int_equal(
		ckpt_proto_split_hostport("127.0.0.1:7000", host, sizeof(host), port, sizeof(port)),
		0);
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "7000");
	assert_int_equal(
		ckpt_proto_split_hostport("[::1]:9", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(ckpt_proto_split_hostport("::1:9", host, sizeof(host), port, sizeof(port)),
			 -EINVAL);
	assert_int_equal(ckpt_proto_split_hostport("host", host, sizeof(host), port, sizeof(port)),
			 -EINVAL);
	assert_int_equal(ckpt_proto_split_hostport("host:", host, sizeof(host), port, sizeof(port)),
			 -EINVAL);
	assert_int_equal(
		ckpt_proto_split_hostport("host:80x", host, sizeof(host), port, sizeof(port)),
		-EINVAL);
	assert_int_equal(ckpt_proto_split_hostport(":80", host, sizeof(host), port, sizeof(port)),
			 -EINVAL);
	assert_true(ckpt_proto_shm_addr("fw1", &sun) > 0);
	assert_int_equal(sun.sun_path[0], '\0');
	assert_memory_equal(sun.sun_path + 1, "holdfast-ckptsrv/fw1", 20);
	assert_int_equal(ckpt_proto_shm_addr("a/b", &sun), -EINVAL);
	assert_int_equal(ckpt_proto_shm_addr("", &sun), -EINVAL);
	assert_int_equal(ckpt_proto_shm_addr("sp ace", &sun), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_is_little_endian_with_fixed_layout),
		cmocka_unit_test(test_auth_messages_round_trip),
		cmocka_unit_test(test_requests_round_trip),
		cmocka_unit_test(test_ping_and_its_reply_round_trip_with_no_body),
		cmocka_unit_test(test_open_reply_carries_geometry_key_and_base),
		cmocka_unit_test(test_list_reply_round_trips_and_respects_cap),
		cmocka_unit_test(test_error_reply_has_no_body),
		cmocka_unit_test(test_encode_refuses_bad_fields),
		cmocka_unit_test(test_decode_refuses_malformed_frames),
		cmocka_unit_test(test_decode_survives_random_bytes),
		cmocka_unit_test(test_decode_accepts_only_canonical_frames),
		cmocka_unit_test(test_decode_writes_only_into_storage_passed_for_it),
		cmocka_unit_test(test_receivers_refuse_types_out_of_place),
		cmocka_unit_test(test_header_refuses_a_body_longer_than_its_type_holds),
		cmocka_unit_test(test_decode_refuses_region_geometry_the_store_would_not_lay_out),
		cmocka_unit_test(test_fencing_messages_round_trip),
		cmocka_unit_test(test_fencing_messages_refuse_what_does_not_check),
		cmocka_unit_test(test_auth_macs_bind_nonces_tenant_and_direction),
		cmocka_unit_test(test_stream_helpers_move_frames_and_report_peer_close),
		cmocka_unit_test(test_target_addresses_parse_strictly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
