/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fw_test_pkt.h"
#include "udp/fw_udp.h"

#define NS  1000000000ull
#define BIT (1u << FW_MOD_UDP)

static const struct tflow dns6 = {
	.family = 6,
	.addr = {{0x20, 0x01, 0x0d, 0xb8, [15] = 1}, {0x20, 0x01, 0x0d, 0xb8, [15] = 53}},
	.port = {33000, 53},
};

struct uc {
	struct fw_conn *c; /* tconn_alloc */
	struct fw_ctx ctx;
	struct tpkt pk;
	uint64_t now;
	enum fw_drop_reason why;
};

static enum fw_verdict dgram(struct uc *u, uint8_t dir, bool is_new)
{
	static const char q[] = "query";

	return fw_udp_packet(&u->ctx, u->c, tpkt_udp(&u->pk, &dns6, dir, q, sizeof(q), u->now),
			     is_new, &u->why);
}

static void uc_init(struct uc *u)
{
	memset(u, 0, sizeof(*u));
	u->c = tconn_alloc();
	tconn_init(u->c, &dns6, 17);
	u->now = 50 * NS;
}

static uint8_t state(struct uc *u)
{
	return fw_udp_slice(u->c)->state;
}

static void test_udp_request_then_reply_then_stream(void **st)
{
	struct uc u;

	(void)st;
	uc_init(&u);
	assert_int_equal(dgram(&u, FW_DIR_ORIG, true), FW_PASS);
	assert_int_equal(state(&u), FW_UDP_UNREPLIED);
	assert_true(u.c->present & BIT);
	assert_int_equal(u.c->expire_ns, u.now + 30 * NS);
	/* More requests without an answer stay unreplied. */
	u.now += NS;
	assert_int_equal(dgram(&u, FW_DIR_ORIG, false), FW_PASS);
	assert_int_equal(state(&u), FW_UDP_UNREPLIED);
	assert_int_equal(u.c->expire_ns, u.now + 30 * NS);
	assert_int_equal(dgram(&u, FW_DIR_REPLY, false), FW_PASS);
	assert_int_equal(state(&u), FW_UDP_REPLIED);
	assert_int_equal(u.c->expire_ns, u.now + 30 * NS);
	u.now += NS;
	assert_int_equal(dgram(&u, FW_DIR_ORIG, false), FW_PASS);
	assert_int_equal(state(&u), FW_UDP_ASSURED);
	assert_int_equal(u.c->expire_ns, u.now + 120 * NS);
	assert_int_equal(dgram(&u, FW_DIR_REPLY, false), FW_PASS);
	assert_int_equal(state(&u), FW_UDP_ASSURED);
}

static void test_udp_expiry_follows_configured_timeouts(void **st)
{
	struct fw_udp_conf conf = {.timeout_unreplied_ns = 5 * NS,
				   .timeout_replied_ns = 7 * NS,
				   .timeout_assured_ns = 600 * NS};
	struct uc u;

	(void)st;
	uc_init(&u);
	u.ctx.conf[FW_MOD_UDP] = &conf;
	assert_int_equal(dgram(&u, FW_DIR_ORIG, true), FW_PASS);
	assert_int_equal(u.c->expire_ns, u.now + 5 * NS);
	u.now += 4 * NS;
	assert_int_equal(dgram(&u, FW_DIR_REPLY, false), FW_PASS);
	assert_int_equal(u.c->expire_ns, u.now + 7 * NS);
	u.now += 6 * NS;
	assert_int_equal(dgram(&u, FW_DIR_REPLY, false), FW_PASS);
	assert_int_equal(u.c->expire_ns, u.now + 600 * NS);
}

static void test_udp_dirty_only_on_state_change(void **st)
{
	struct uc u;

	(void)st;
	uc_init(&u);
	assert_int_equal(dgram(&u, FW_DIR_ORIG, true), FW_PASS);
	assert_true(u.c->dirty & BIT);
	u.c->dirty = 0;
	assert_int_equal(dgram(&u, FW_DIR_ORIG, false), FW_PASS);
	assert_false(u.c->dirty & BIT);
	assert_int_equal(dgram(&u, FW_DIR_REPLY, false), FW_PASS);
	assert_true(u.c->dirty & BIT);
	u.c->dirty = 0;
	assert_int_equal(dgram(&u, FW_DIR_REPLY, false), FW_PASS);
	assert_true(u.c->dirty & BIT);
	u.c->dirty = 0;
	assert_int_equal(dgram(&u, FW_DIR_ORIG, false), FW_PASS);
	assert_false(u.c->dirty & BIT);
}

static void test_udp_reply_cannot_open(void **st)
{
	struct uc u;

	(void)st;
	uc_init(&u);
	assert_int_equal(dgram(&u, FW_DIR_REPLY, true), FW_DROP);
	assert_int_equal(u.why, FW_DROP_NO_CONN);
}

static void test_udp_bad_length_dropped(void **st)
{
	struct uc u;

	(void)st;
	uc_init(&u);
	tpkt_udp(&u.pk, &dns6, FW_DIR_ORIG, "x", 1, u.now);
	tput16(u.pk.buf + 4, 200); /* longer than the packet */
	assert_int_equal(fw_udp_packet(&u.ctx, u.c, &u.pk.p, true, &u.why), FW_DROP);
	assert_int_equal(u.why, FW_DROP_MALFORMED);
	tput16(u.pk.buf + 4, 7); /* shorter than its own header */
	assert_int_equal(fw_udp_packet(&u.ctx, u.c, &u.pk.p, true, &u.why), FW_DROP);
	assert_int_equal(u.why, FW_DROP_MALFORMED);
}

static void test_udp_slice_round_trips(void **st)
{
	struct uc u;
	struct fw_conn *r = tconn_alloc();
	uint8_t buf[FW_UDP_PAYLOAD_LEN];
	char line[64];

	(void)st;
	uc_init(&u);
	assert_int_equal(dgram(&u, FW_DIR_ORIG, true), FW_PASS);
	assert_int_equal(dgram(&u, FW_DIR_REPLY, false), FW_PASS);
	assert_int_equal(fw_udp_ops.encode(u.c, buf, sizeof(buf)), FW_UDP_PAYLOAD_LEN);
	assert_int_equal(fw_udp_ops.encode(u.c, buf, sizeof(buf) - 1), -ENOSPC);
	fw_conn_clear(r);
	r->orig_side = (uint8_t)!u.c->orig_side;
	assert_int_equal(fw_udp_ops.decode(r, buf, sizeof(buf), 1), 0);
	assert_int_equal(fw_udp_slice(r)->state, FW_UDP_REPLIED);
	assert_int_equal(r->orig_side, u.c->orig_side);
	assert_true(r->present & BIT);
	r->last_ns = 1000 * NS;
	assert_int_equal(fw_udp_ops.on_restore(&u.ctx, r), 0);
	assert_int_equal(r->expire_ns, 1030 * NS);
	assert_true(fw_udp_ops.dump(r, line, sizeof(line)) > 0);
	assert_string_equal(line, "udp REPLIED");
}

static void test_udp_decode_rejects_malformed(void **st)
{
	struct fw_conn *c = tconn_alloc();
	const uint8_t good[4] = {FW_UDP_ASSURED, 1, 0, 0};
	const uint8_t bad[][4] = {
		{FW_UDP_NONE, 0, 0, 0},	     /* no state */
		{FW_UDP_STATE_MAX, 0, 0, 0}, /* state out of range */
		{FW_UDP_ASSURED, 2, 0, 0},   /* opener side not 0/1 */
		{FW_UDP_ASSURED, 0, 1, 0},   /* reserved */
		{FW_UDP_ASSURED, 0, 0, 0x80},
	};

	(void)st;
	fw_conn_clear(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fw_udp_ops.decode(c, bad[i], 4, 1), -EINVAL);
	assert_int_equal(fw_udp_ops.decode(c, good, 3, 1), -EINVAL);
	assert_int_equal(fw_udp_ops.decode(c, good, 4, 0), -EINVAL);
	assert_int_equal(fw_udp_ops.decode(c, good, 4, 2), -EPROTONOSUPPORT);
	assert_false(c->present & BIT);
	assert_int_equal(fw_udp_ops.decode(c, good, 4, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp_request_then_reply_then_stream),
		cmocka_unit_test(test_udp_expiry_follows_configured_timeouts),
		cmocka_unit_test(test_udp_dirty_only_on_state_change),
		cmocka_unit_test(test_udp_reply_cannot_open),
		cmocka_unit_test(test_udp_bad_length_dropped),
		cmocka_unit_test(test_udp_slice_round_trips),
		cmocka_unit_test(test_udp_decode_rejects_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
