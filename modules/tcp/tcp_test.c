/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fw_test_pkt.h"
#include "tcp/fw_tcp.h"
#include "tcp/tcp_fast.h"

#define NS    1000000000ull
#define O     FW_DIR_ORIG
#define R     FW_DIR_REPLY
#define ISN_O 1000u
#define ISN_R 5000000u
#define WIN   64000

static const struct tflow flow4 = {
	.family = 4,
	.addr = {{192, 0, 2, 10}, {198, 51, 100, 20}},
	.port = {40000, 80},
};

struct tc {
	struct fw_conn *c; /* tconn_alloc */
	struct fw_ctx ctx;
	struct tpkt pk;
	uint64_t now;
	enum fw_drop_reason why;
	bool is_new;
};

static uint8_t payload[1500];

/*
 * Every segment of every test here goes through fw_tcp_packet (its fast path included)
 * and, from a copy of the same connection, through fw_tcp_packet_full: the two must agree
 * on the verdict, the reason and every byte of the connection after it.
 */
static enum fw_verdict tcp_both(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
				bool is_new, enum fw_drop_reason *why)
{
	struct fw_conn *full = tconn_alloc();
	enum fw_drop_reason why_full = FW_DROP_NONE;
	enum fw_verdict v, v_full;

	fw_conn_copy(full, c);
	v_full = fw_tcp_packet_full(ctx, full, p, is_new, &why_full);
	v = fw_tcp_packet(ctx, c, p, is_new, why);
	assert_int_equal(v, v_full);
	assert_int_equal(*why, why_full);
	assert_memory_equal(c, full, sizeof(*c));
	assert_memory_equal(fw_conn_cold(c), fw_conn_cold(full), sizeof(struct fw_conn_cold));
	return v;
}

static enum fw_verdict seg_opts(struct tc *t, uint8_t dir, uint32_t seq, uint32_t ack,
				uint8_t flags, uint16_t win, uint32_t len, const uint8_t *opts,
				uint8_t optlen)
{
	const struct tseg s = {.dir = dir,
			       .seq = seq,
			       .ack = ack,
			       .flags = flags,
			       .win = win,
			       .opts = opts,
			       .optlen = optlen,
			       .data = payload,
			       .len = len};
	bool is_new = t->is_new;

	t->is_new = false;
	t->why = FW_DROP_NONE;
	return tcp_both(&t->ctx, t->c, tpkt_tcp(&t->pk, &flow4, &s, t->now), is_new, &t->why);
}

static enum fw_verdict seg(struct tc *t, uint8_t dir, uint32_t seq, uint32_t ack, uint8_t flags,
			   uint16_t win, uint32_t len)
{
	return seg_opts(t, dir, seq, ack, flags, win, len, NULL, 0);
}

static uint8_t state(struct tc *t)
{
	return fw_tcp_slice(t->c)->state;
}

static void tc_init(struct tc *t)
{
	memset(t, 0, sizeof(*t));
	t->c = tconn_alloc();
	tconn_init(t->c, &flow4, 6);
	t->now = 100 * NS;
	t->is_new = true;
}

/* SYN / SYN-ACK / ACK without options: no scaling, no SACK. */
static void handshake(struct tc *t)
{
	tc_init(t);
	assert_int_equal(seg(t, O, ISN_O, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(state(t), FW_TCP_SYN_SENT);
	assert_int_equal(seg(t, R, ISN_R, ISN_O + 1, T_SYN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(t), FW_TCP_SYN_RECV);
	assert_int_equal(seg(t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(t), FW_TCP_ESTABLISHED);
}

static const uint8_t opt_ws7_sack[] = {1, 3, 3, 7, 4, 2};

/* The same with window scale 7 and SACK-permitted offered by both sides. */
static void handshake_scaled(struct tc *t)
{
	tc_init(t);
	assert_int_equal(seg_opts(t, O, ISN_O, 0, T_SYN, WIN, 0, opt_ws7_sack, 6), FW_PASS);
	assert_int_equal(seg_opts(t, R, ISN_R, ISN_O + 1, T_SYN | T_ACK, WIN, 0, opt_ws7_sack, 6),
			 FW_PASS);
	assert_int_equal(seg(t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0), FW_PASS);
	assert_int_equal(state(t), FW_TCP_ESTABLISHED);
}

static void test_tcp_handshake_establishes(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_true(t.c->present & (1u << FW_MOD_TCP));
	assert_int_equal(fw_tcp_slice(t.c)->d[O].end, ISN_O + 1);
	assert_int_equal(fw_tcp_slice(t.c)->d[R].end, ISN_R + 1);
}

static void test_tcp_may_open_only_plain_syn(void **st)
{
	struct tpkt pk;
	struct tseg s = {.dir = O, .seq = 1, .flags = T_SYN, .win = 100};

	(void)st;
	assert_true(fw_tcp_may_open(tpkt_tcp(&pk, &flow4, &s, 0)));
	s.flags = T_SYN | T_ACK;
	assert_false(fw_tcp_may_open(tpkt_tcp(&pk, &flow4, &s, 0)));
	s.flags = T_SYN | T_FIN;
	assert_false(fw_tcp_may_open(tpkt_tcp(&pk, &flow4, &s, 0)));
	s.flags = T_ACK;
	assert_false(fw_tcp_may_open(tpkt_tcp(&pk, &flow4, &s, 0)));
	s.flags = T_SYN;
	tpkt_tcp(&pk, &flow4, &s, 0);
	pk.buf[12] = 0x40; /* data offset 16 bytes: below the minimum header */
	assert_false(fw_tcp_may_open(&pk.p));
}

static void test_tcp_non_syn_cannot_open(void **st)
{
	struct tc t;

	(void)st;
	tc_init(&t);
	assert_int_equal(seg(&t, O, ISN_O, 0, T_ACK, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_NO_CONN);
}

static void test_tcp_data_both_ways_passes(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | T_PSH, WIN, 1000), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1001, T_ACK | T_PSH, WIN, 1400), FW_PASS);
	assert_int_equal(seg(&t, O, ISN_O + 1001, ISN_R + 1401, T_ACK, WIN, 0), FW_PASS);
	/* A retransmission of old data is in the window too. */
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1001, T_ACK, WIN, 1400), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_ESTABLISHED);
	assert_int_equal(fw_tcp_slice(t.c)->d[O].end, ISN_O + 1001);
	assert_int_equal(fw_tcp_slice(t.c)->d[R].end, ISN_R + 1401);
}

static void test_tcp_seq_beyond_window_dropped(void **st)
{
	struct tc t;
	struct fw_tcp_slice before;

	(void)st;
	handshake(&t);
	before = *fw_tcp_slice(t.c);
	/* The responder allowed WIN bytes past ISN_O + 1. */
	assert_int_equal(seg(&t, O, ISN_O + 1 + WIN + 1, ISN_R + 1, T_ACK, WIN, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	assert_memory_equal(&before, fw_tcp_slice(t.c), sizeof(before));
	/* Data far behind anything sent is as bad. */
	assert_int_equal(seg(&t, O, ISN_O - 3 * WIN, ISN_R + 1, T_ACK, WIN, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	/* Right at the edge is fine. */
	assert_int_equal(seg(&t, O, ISN_O + 1 + WIN - 10, ISN_R + 1, T_ACK, WIN, 10), FW_PASS);
}

static void test_tcp_ack_of_unsent_data_dropped(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 2, T_ACK, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O - 2 * WIN, T_ACK, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
}

static void test_tcp_sack_edges_bound_by_sent_data(void **st)
{
	struct tc t;
	uint8_t sack[12] = {1, 1, 5, 10};

	(void)st;
	handshake_scaled(&t);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_ACK, 500, 1400), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1401, ISN_O + 1, T_ACK, 500, 1400), FW_PASS);
	/* The client lost the first segment and SACKs the second: fine. */
	tput32(sack + 4, ISN_R + 1401);
	tput32(sack + 8, ISN_R + 2801);
	assert_int_equal(seg_opts(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0, sack, 12), FW_PASS);
	/* A SACK block past what the server sent acknowledges unsent data. */
	tput32(sack + 8, ISN_R + 9000);
	assert_int_equal(seg_opts(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0, sack, 12), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
}

static void test_tcp_window_scaling_applies_when_both_offer(void **st)
{
	struct tc t;

	(void)st;
	handshake_scaled(&t);
	assert_int_equal(fw_tcp_slice(t.c)->d[O].scale, 7);
	assert_int_equal(fw_tcp_slice(t.c)->d[R].scale, 7);
	/* The client advertised 500 << 7 = 64000 in its ACK; the server announces 1000 << 7. */
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_ACK, 1000, 1400), FW_PASS);
	assert_int_equal(fw_tcp_slice(t.c)->d[O].maxend, ISN_O + 1 + (1000u << 7));
	/* So the client may send 100 KB ahead, far beyond any unscaled window. */
	assert_int_equal(seg(&t, O, ISN_O + 1 + 100000, ISN_R + 1401, T_ACK, 500, 1400), FW_PASS);
	assert_int_equal(seg(&t, O, ISN_O + 1 + (1000u << 7) + 1, ISN_R + 1401, T_ACK, 500, 10),
			 FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
}

static void test_tcp_window_scaling_ignored_unless_both_offer(void **st)
{
	struct tc t;

	(void)st;
	tc_init(&t);
	assert_int_equal(seg_opts(&t, O, ISN_O, 0, T_SYN, WIN, 0, opt_ws7_sack, 6), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R, ISN_O + 1, T_SYN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0), FW_PASS);
	assert_int_equal(fw_tcp_slice(t.c)->d[O].scale, 0);
	assert_int_equal(fw_tcp_slice(t.c)->d[R].scale, 0);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_ACK, 1000, 0), FW_PASS);
	/* Unscaled, the server allowed only 1000 bytes past its ack. */
	assert_int_equal(seg(&t, O, ISN_O + 1 + 100000, ISN_R + 1, T_ACK, 500, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
}

static void test_tcp_bad_flags_dropped(void **st)
{
	static const uint8_t bad[] = {T_SYN | T_FIN,	     0,	   T_SYN | T_RST, T_FIN,
				      T_FIN | T_RST | T_ACK, T_PSH};
	struct tc t;

	(void)st;
	handshake(&t);
	for (size_t i = 0; i < sizeof(bad); i++) {
		assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, bad[i], WIN, 0), FW_DROP);
		assert_int_equal(t.why, FW_DROP_TCP_FLAGS);
	}
	tc_init(&t);
	assert_int_equal(seg(&t, O, ISN_O, 0, T_SYN | T_FIN, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_FLAGS);
}

static void test_tcp_malformed_header_dropped(void **st)
{
	struct tc t;
	const struct tseg s = {.dir = O, .seq = ISN_O + 1, .ack = ISN_R + 1, .flags = T_ACK};

	(void)st;
	handshake(&t);
	tpkt_tcp(&t.pk, &flow4, &s, t.now);
	t.pk.buf[12] = 0xf0; /* claims 60 header bytes, the packet has 20 */
	assert_int_equal(fw_tcp_packet(&t.ctx, t.c, &t.pk.p, false, &t.why), FW_DROP);
	assert_int_equal(t.why, FW_DROP_MALFORMED);
}

static void test_tcp_invalid_in_state_dropped(void **st)
{
	struct tc t;

	(void)st;
	tc_init(&t);
	assert_int_equal(seg(&t, O, ISN_O, 0, T_SYN, WIN, 0), FW_PASS);
	/* The opener cannot ACK before it heard a SYN. */
	assert_int_equal(seg(&t, O, ISN_O + 1, 77, T_ACK, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_STATE);
	/* Nor can the responder send data before its SYN-ACK. */
	assert_int_equal(seg(&t, R, ISN_R, ISN_O + 1, T_ACK, WIN, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_STATE);
	handshake(&t);
	/* A new SYN on an established connection. */
	assert_int_equal(seg(&t, O, ISN_O + 7, 0, T_SYN, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_STATE);
}

static void test_tcp_synack_must_ack_the_syn(void **st)
{
	struct tc t;

	(void)st;
	tc_init(&t);
	assert_int_equal(seg(&t, O, ISN_O, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R, ISN_O + 5, T_SYN | T_ACK, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	assert_int_equal(state(&t), FW_TCP_SYN_SENT);
	assert_int_equal(fw_tcp_slice(t.c)->d[R].maxwin, 0);
}

static void test_tcp_rst_in_window_closes(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, R, ISN_R + 1 + 100, 0, T_RST, 0, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_CLOSE);
	assert_int_equal(t.c->expire_ns, t.now + 10 * NS);
}

static void test_tcp_rst_at_expected_seq_accepted(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 500), FW_PASS);
	assert_int_equal(seg(&t, O, ISN_O + 501, ISN_R + 1, T_RST | T_ACK, 0, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_CLOSE);
}

static void test_tcp_rst_out_of_window_dropped(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, R, ISN_R + 1 + 10 * WIN, 0, T_RST, 0, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_RST);
	assert_int_equal(seg(&t, R, ISN_R - 10 * WIN, 0, T_RST, 0, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_RST);
	assert_int_equal(state(&t), FW_TCP_ESTABLISHED);
}

static void test_tcp_rst_refusing_syn_must_ack_it(void **st)
{
	struct tc t;

	(void)st;
	tc_init(&t);
	assert_int_equal(seg(&t, O, ISN_O, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, R, 0, ISN_O + 9, T_RST | T_ACK, 0, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_RST);
	assert_int_equal(seg(&t, R, 0, 0, T_RST, 0, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_RST);
	assert_int_equal(seg(&t, R, 0, ISN_O + 1, T_RST | T_ACK, 0, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_CLOSE);
}

static void test_tcp_ack_after_refused_syn_dropped(void **st)
{
	struct tc t;

	(void)st;
	tc_init(&t);
	assert_int_equal(seg(&t, O, ISN_O, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, R, 0, ISN_O + 1, T_RST | T_ACK, 0, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_CLOSE);
	/* The responder never sent a SYN: there is nothing the opener could acknowledge. */
	assert_int_equal(seg(&t, O, ISN_O + 1, 12345, T_ACK, WIN, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_STATE);
	/* Nor can the responder send without its SYN. */
	assert_int_equal(seg(&t, R, 0, ISN_O + 1, T_ACK, WIN, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_STATE);
	/* A new SYN reopens. */
	assert_int_equal(seg(&t, O, ISN_O + 50, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_SYN_SENT);
}

static void test_tcp_fin_teardown_opener_first(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_FIN_WAIT);
	/* The retransmitted FIN and the server's data that does not ack it keep FIN_WAIT. */
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_ACK, WIN, 100), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_FIN_WAIT);
	assert_int_equal(seg(&t, R, ISN_R + 101, ISN_O + 2, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_CLOSE_WAIT);
	assert_int_equal(t.c->expire_ns, t.now + 60 * NS);
	/* Half-closed: the server may still send, the client still acks. */
	assert_int_equal(seg(&t, R, ISN_R + 101, ISN_O + 2, T_ACK, WIN, 100), FW_PASS);
	assert_int_equal(seg(&t, O, ISN_O + 2, ISN_R + 201, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_CLOSE_WAIT);
	/* Data after the FIN is past the end of the stream... within the window, the
	 * endpoint discards it; a second FIN from the same side moves nothing. */
	assert_int_equal(seg(&t, R, ISN_R + 201, ISN_O + 2, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_LAST_ACK);
	assert_int_equal(t.c->expire_ns, t.now + 30 * NS);
	assert_int_equal(seg(&t, O, ISN_O + 2, ISN_R + 202, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_TIME_WAIT);
	assert_int_equal(t.c->expire_ns, t.now + 120 * NS);
}

static void test_tcp_fin_teardown_responder_first(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_FIN_WAIT);
	/* The client acks the FIN and closes in the same segment. */
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 2, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_LAST_ACK);
	/* A retransmitted FIN from the server does not finish anything. */
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_LAST_ACK);
	assert_int_equal(seg(&t, R, ISN_R + 2, ISN_O + 2, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_TIME_WAIT);
}

static void test_tcp_simultaneous_close(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_LAST_ACK);
	assert_int_equal(seg(&t, O, ISN_O + 2, ISN_R + 2, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_TIME_WAIT);
	assert_int_equal(seg(&t, R, ISN_R + 2, ISN_O + 2, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_TIME_WAIT);
}

static void test_tcp_simultaneous_open(void **st)
{
	struct tc t;

	(void)st;
	tc_init(&t);
	assert_int_equal(seg(&t, O, ISN_O, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_SYN_SENT2);
	assert_int_equal(seg(&t, R, ISN_R, 0, T_SYN, WIN, 0), FW_PASS); /* retransmitted */
	assert_int_equal(state(&t), FW_TCP_SYN_SENT2);
	/* Each side answers the other's SYN with a SYN-ACK. */
	assert_int_equal(seg(&t, O, ISN_O, ISN_R + 1, T_SYN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_SYN_RECV);
	assert_int_equal(seg(&t, R, ISN_R, ISN_O + 1, T_SYN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_SYN_RECV);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 100), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_ESTABLISHED);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 101, T_ACK, WIN, 100), FW_PASS);
}

static void close_to_time_wait(struct tc *t)
{
	handshake(t);
	assert_int_equal(seg(t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	assert_int_equal(seg(t, O, ISN_O + 1001, ISN_R + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(t, R, ISN_R + 1, ISN_O + 1002, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(t, O, ISN_O + 1002, ISN_R + 2, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(t), FW_TCP_TIME_WAIT);
}

static void test_tcp_time_wait_reused_by_syn_beyond_old_seq(void **st)
{
	struct tc t;

	(void)st;
	close_to_time_wait(&t);
	assert_int_equal(seg(&t, O, ISN_O + 900000, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_SYN_SENT);
	assert_int_equal(fw_tcp_slice(t.c)->d[O].end, ISN_O + 900001);
	assert_int_equal(fw_tcp_slice(t.c)->d[R].maxwin, 0);
	assert_int_equal(t.c->expire_ns, t.now + 120 * NS);
	assert_int_equal(seg(&t, R, 77, ISN_O + 900001, T_SYN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, O, ISN_O + 900001, 78, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_ESTABLISHED);
}

static void test_tcp_time_wait_refuses_syn_inside_old_seq(void **st)
{
	struct tc t;

	(void)st;
	close_to_time_wait(&t);
	assert_int_equal(seg(&t, O, ISN_O + 10, 0, T_SYN, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_STATE);
	assert_int_equal(state(&t), FW_TCP_TIME_WAIT);
}

static void test_tcp_timeouts_follow_state_and_conf(void **st)
{
	struct fw_tcp_conf conf = fw_tcp_conf_default;
	struct tc t;

	(void)st;
	tc_init(&t);
	conf.timeout_ns[FW_TCP_SYN_SENT] = 7 * NS;
	conf.timeout_ns[FW_TCP_ESTABLISHED] = 3600 * NS;
	t.ctx.conf[FW_MOD_TCP] = &conf;
	assert_int_equal(seg(&t, O, ISN_O, 0, T_SYN, WIN, 0), FW_PASS);
	assert_int_equal(t.c->expire_ns, t.now + 7 * NS);
	t.now += NS;
	assert_int_equal(seg(&t, R, ISN_R, ISN_O + 1, T_SYN | T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(t.c->expire_ns, t.now + 60 * NS);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(t.c->expire_ns, t.now + 3600 * NS);
	t.ctx.conf[FW_MOD_TCP] = NULL;
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(t.c->expire_ns, t.now + 5 * 24 * 3600 * NS);
}

static void test_tcp_state_change_marks_dirty(void **st)
{
	struct tc t;
	const uint8_t bit = 1u << FW_MOD_TCP;

	(void)st;
	handshake(&t);
	assert_true(t.c->dirty & bit);
	t.c->dirty = 0;
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 100), FW_PASS);
	assert_false(t.c->dirty & bit);
	assert_int_equal(seg(&t, O, ISN_O + 101, ISN_R + 1, T_FIN | T_ACK, WIN, 0), FW_PASS);
	assert_true(t.c->dirty & bit);
	/* A change of state waits for the checkpointer's batch. */
	assert_false(t.c->flags & FW_CONN_F_CKPT_NOW);
}

static void test_tcp_window_moving_past_threshold_marks_dirty(void **st)
{
	struct tc t;
	const uint8_t bit = 1u << FW_MOD_TCP;
	/* WIN = 64000: the highest power of two below is 32768, a quarter of it 8192. */
	const uint32_t thr = 8192;
	uint32_t seq = ISN_O + 1;

	(void)st;
	handshake(&t);
	t.c->dirty = 0;
	while (seq + 1000 - (ISN_O + 1) <= thr) {
		assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
		assert_false(t.c->dirty & bit);
		seq += 1000;
		assert_int_equal(seg(&t, R, ISN_R + 1, seq, T_ACK, WIN, 0), FW_PASS);
		assert_false(t.c->dirty & bit);
	}
	assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	assert_true(t.c->dirty & bit);
	/* ...and due at once: the restore slack covers only a burst beyond it. */
	assert_true(t.c->flags & FW_CONN_F_CKPT_NOW);
	assert_int_equal(fw_tcp_slice(t.c)->d[O].ck_end, seq + 1000);
	/* The count restarts from the new checkpoint. */
	t.c->dirty = 0;
	seq += 1000;
	assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	assert_false(t.c->dirty & bit);
}

static void test_tcp_window_growth_marks_dirty(void **st)
{
	struct tc t;
	const uint8_t bit = 1u << FW_MOD_TCP;

	(void)st;
	handshake_scaled(&t);
	t.c->dirty = 0;
	/* 500 << 7 = 64000, the same power of two as before: nothing due. */
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0), FW_PASS);
	assert_false(t.c->dirty & bit);
	/* 4000 << 7 crosses powers of two: the restore slack changes, so checkpoint. */
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 4000, 0), FW_PASS);
	assert_true(t.c->dirty & bit);
}

static void encode_decode(struct tc *from, struct fw_conn *to)
{
	uint8_t buf[FW_TCP_PAYLOAD_LEN];

	assert_int_equal(fw_tcp_ops.encode(from->c, buf, sizeof(buf)), FW_TCP_PAYLOAD_LEN);
	memset(to, 0, sizeof(*to));
	fw_conn_cold(to)->key = fw_conn_cold(from->c)->key;
	fw_conn_cold(to)->id = fw_conn_cold(from->c)->id;
	to->orig_side = (uint8_t)!from->c->orig_side;
	assert_int_equal(fw_tcp_ops.decode(to, buf, sizeof(buf), fw_tcp_ops.slice_version), 0);
	to->last_ns = from->now + 5 * NS;
	assert_int_equal(fw_tcp_ops.on_restore(&from->ctx, to), 0);
}

static void test_tcp_slice_round_trips(void **st)
{
	struct tc t;
	struct fw_conn *r = tconn_alloc();
	const struct fw_tcp_slice *a, *b;
	char line[256];

	(void)st;
	handshake_scaled(&t);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_FIN | T_ACK, 1000, 700), FW_PASS);
	encode_decode(&t, r);
	a = fw_tcp_slice(t.c);
	b = fw_tcp_slice(r);
	assert_int_equal(b->state, a->state);
	assert_int_equal(r->orig_side, t.c->orig_side);
	assert_true(r->present & (1u << FW_MOD_TCP));
	for (int d = 0; d < 2; d++) {
		assert_int_equal(b->d[d].end, a->d[d].end);
		assert_int_equal(b->d[d].maxend, a->d[d].maxend);
		assert_int_equal(b->d[d].maxwin, a->d[d].maxwin);
		assert_int_equal(b->d[d].scale, a->d[d].scale);
		assert_int_equal(b->d[d].flags & FW_TCP_F_MEDIA, a->d[d].flags & FW_TCP_F_MEDIA);
	}
	assert_int_equal(r->expire_ns, t.now + 5 * NS + 120 * NS);
	assert_true(fw_tcp_ops.dump(r, line, sizeof(line)) > 0);
	assert_non_null(strstr(line, "FIN_WAIT"));
	assert_int_equal(fw_tcp_ops.encode(t.c, (uint8_t *)line, FW_TCP_PAYLOAD_LEN - 1), -ENOSPC);
}

static void test_tcp_restored_conn_keeps_window_checking(void **st)
{
	struct tc t;
	struct fw_conn *r = tconn_alloc();

	(void)st;
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1001, T_ACK, WIN, 1000), FW_PASS);
	encode_decode(&t, r);
	t.c = r;
	/* The next segments of the live connection pass... */
	assert_int_equal(seg(&t, O, ISN_O + 1001, ISN_R + 1001, T_ACK, WIN, 1000), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1001, ISN_O + 2001, T_ACK, WIN, 1000), FW_PASS);
	/* ...and strict tracking is on: far out of the window is still dropped, both on
	 * sequence and on acknowledgement, and so is an RST off the window. */
	assert_int_equal(seg(&t, O, ISN_O + 2001 + 2 * WIN, ISN_R + 2001, T_ACK, WIN, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	assert_int_equal(seg(&t, R, ISN_R + 2001, ISN_O + 2001 + WIN, T_ACK, WIN, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	assert_int_equal(seg(&t, R, ISN_R + 5 * WIN, 0, T_RST, 0, 0), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_RST);
	assert_int_equal(state(&t), FW_TCP_ESTABLISHED);
}

static void test_tcp_restore_accepts_live_edges_within_slack(void **st)
{
	struct tc t;
	struct fw_conn *r = tconn_alloc();
	uint8_t buf[FW_TCP_PAYLOAD_LEN];
	const uint32_t thr = 8192, slack = 2 * thr;
	uint32_t seq = ISN_O + 1;

	(void)st;
	handshake(&t);
	/* The client fills the server's whole window; then the checkpoint is taken. */
	while (seq + 1000 <= ISN_O + 1 + WIN) {
		assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
		seq += 1000;
	}
	assert_int_equal(fw_tcp_ops.encode(t.c, buf, sizeof(buf)), FW_TCP_PAYLOAD_LEN);
	/* The live connection moves on, unrecorded, by more than the threshold -- the
	 * checkpoint that crossed it was still on its way to the target -- but by less than
	 * the slack: the server acks everything and opens a new window, the client sends
	 * into it. */
	assert_int_equal(seg(&t, R, ISN_R + 1, seq, T_ACK, WIN, 0), FW_PASS);
	for (uint32_t k = 0; k < slack / 1000 - 1; k++, seq += 1000)
		assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	assert_true(seq - (ISN_O + 1 + WIN) > thr);
	/* Crash. The restored connection lags the live one by 15000 bytes... */
	fw_conn_clear(r);
	assert_int_equal(fw_tcp_ops.decode(r, buf, sizeof(buf), 1), 0);
	t.c = r;
	/* ...yet the next live segments pass: the server acks data it holds, the client
	 * sends beyond the window the checkpoint knew. */
	assert_int_equal(seg(&t, R, ISN_R + 1, seq, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	seq += 1000;
	/* The slack stays until the sender is a slack past what the last checkpoint knew:
	 * below that, the old instance may have forwarded data the receiver will still
	 * acknowledge. */
	while (fw_tcp_slice(t.c)->d[O].flags & FW_TCP_F_RESYNC_END) {
		/* (counted in thresholds from the checkpoints after the restore, the first of
		 * which the server's ack above took 15000 bytes on) */
		assert_true(seq - (ISN_O + 1 + WIN) <= 15000 + slack + 2000);
		assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
		seq += 1000;
	}
	assert_true(seq - (ISN_O + 1 + WIN) > slack);
	/* The edges are live again: the slack is gone. */
	assert_false(fw_tcp_slice(t.c)->d[O].flags & FW_TCP_F_RESYNC_END);
	assert_false(fw_tcp_slice(t.c)->d[O].flags & FW_TCP_F_RESYNC_MAXEND);
	assert_int_equal(seg(&t, O, seq + WIN + 1000, ISN_R + 1, T_ACK, WIN, 10), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
}

static void test_tcp_restore_retransmission_keeps_the_ack_slack(void **st)
{
	struct tc t;
	struct fw_conn *r = tconn_alloc();
	uint8_t buf[FW_TCP_PAYLOAD_LEN];
	uint32_t seq = ISN_O + 1;

	(void)st;
	handshake(&t);
	assert_int_equal(fw_tcp_ops.encode(t.c, buf, sizeof(buf)), FW_TCP_PAYLOAD_LEN);
	/* After the checkpoint the old instance forwards 4000 more bytes to the server. */
	for (int k = 0; k < 4; k++, seq += 1000)
		assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	/* Crash and restore. The client retransmits from what it thinks unacknowledged (at
	 * the checkpointed end); the server then acknowledges all it holds, beyond that end.
	 * (A real bulk stream stalled here: the retransmission ended the slack.) */
	fw_conn_clear(r);
	assert_int_equal(fw_tcp_ops.decode(r, buf, sizeof(buf), 1), 0);
	t.c = r;
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1, seq, T_ACK, WIN, 0), FW_PASS);
	assert_int_equal(seg(&t, O, seq, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
}

/* A valid ESTABLISHED payload to corrupt one field at a time. */
static void valid_payload(uint8_t *buf)
{
	struct tc t;

	handshake_scaled(&t);
	assert_int_equal(fw_tcp_ops.encode(t.c, buf, FW_TCP_PAYLOAD_LEN), FW_TCP_PAYLOAD_LEN);
}

static int decode_with(const uint8_t *good, size_t off, uint8_t val)
{
	uint8_t buf[FW_TCP_PAYLOAD_LEN];
	struct fw_conn *c = tconn_alloc();

	memcpy(buf, good, sizeof(buf));
	buf[off] = val;
	fw_conn_clear(c);
	return fw_tcp_ops.decode(c, buf, sizeof(buf), 1);
}

static void test_tcp_decode_rejects_malformed(void **st)
{
	uint8_t good[FW_TCP_PAYLOAD_LEN];
	struct fw_conn *c = tconn_alloc();
	const size_t o = 4, r = 20; /* the two direction blocks */

	(void)st;
	valid_payload(good);
	fw_conn_clear(c);
	assert_int_equal(decode_with(good, 0, FW_TCP_ESTABLISHED), 0);
	/* state out of range, and NONE */
	assert_int_equal(decode_with(good, 0, FW_TCP_STATE_MAX), -EINVAL);
	assert_int_equal(decode_with(good, 0, FW_TCP_NONE), -EINVAL);
	/* orig_side not 0/1, reserved bytes */
	assert_int_equal(decode_with(good, 1, 2), -EINVAL);
	assert_int_equal(decode_with(good, 2, 1), -EINVAL);
	assert_int_equal(decode_with(good, r + 15, 1), -EINVAL);
	/* scale above 14 */
	assert_int_equal(decode_with(good, o + 12, 15), -EINVAL);
	/* unknown flag; FIN acked but never sent; scale without having offered it */
	assert_int_equal(decode_with(good, o + 13, 0x43), -EINVAL);
	assert_int_equal(decode_with(good, o + 13, FW_TCP_F_WSCALE | FW_TCP_F_FIN_ACKED), -EINVAL);
	assert_int_equal(decode_with(good, o + 13, FW_TCP_F_SACK_PERM), -EINVAL);
	/* FIN seen but the state says ESTABLISHED */
	assert_int_equal(
		decode_with(good, r + 13, FW_TCP_F_WSCALE | FW_TCP_F_SACK_PERM | FW_TCP_F_FIN_SEEN),
		-EINVAL);
	/* end beyond maxend; maxend beyond the peer's largest window */
	assert_int_equal(decode_with(good, o + 3, (uint8_t)(good[o + 3] + 1)), -EINVAL);
	assert_int_equal(decode_with(good, o + 7, (uint8_t)(good[o + 7] + 1)), -EINVAL);
	/* window larger than 65535 << scale; no window at all */
	assert_int_equal(decode_with(good, r + 11, 0x40), -EINVAL);
	{
		uint8_t buf[FW_TCP_PAYLOAD_LEN];

		memcpy(buf, good, sizeof(buf));
		memset(buf + r + 8, 0, 4);
		assert_int_equal(fw_tcp_ops.decode(c, buf, sizeof(buf), 1), -EINVAL);
	}
	/* length and version */
	assert_int_equal(fw_tcp_ops.decode(c, good, sizeof(good) - 1, 1), -EINVAL);
	assert_int_equal(fw_tcp_ops.decode(c, good, sizeof(good), 0), -EINVAL);
	assert_int_equal(fw_tcp_ops.decode(c, good, sizeof(good), 2), -EPROTONOSUPPORT);
	/* nothing was loaded by the failures */
	assert_false(c->present & (1u << FW_MOD_TCP));
}

/* Does the fast path accept this segment? Tried on a copy; a decline must change nothing. */
static bool fast_takes(struct tc *t, uint8_t dir, uint32_t seq, uint32_t ack, uint8_t flags,
		       uint16_t win, uint32_t len, const uint8_t *opts, uint8_t optlen)
{
	const struct tseg sg = {.dir = dir,
				.seq = seq,
				.ack = ack,
				.flags = flags,
				.win = win,
				.opts = opts,
				.optlen = optlen,
				.data = payload,
				.len = len};
	struct fw_conn *c = tconn_alloc();
	bool taken;

	fw_conn_copy(c, t->c);
	taken = fw_tcp_packet_fast(&t->ctx, c, tpkt_tcp(&t->pk, &flow4, &sg, t->now));
	if (!taken) {
		assert_memory_equal(c, t->c, sizeof(*c));
		assert_memory_equal(fw_conn_cold(c), fw_conn_cold(t->c),
				    sizeof(struct fw_conn_cold));
	}
	return taken;
}

static void test_tcp_fast_path_takes_plain_established_segments(void **st)
{
	struct tc t;

	(void)st;
	handshake(&t);
	assert_true(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 1000, NULL, 0));
	assert_true(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | T_PSH, WIN, 1000, NULL, 0));
	assert_true(fast_takes(&t, R, ISN_R + 1, ISN_O + 1, T_ACK, WIN, 0, NULL, 0));
	/* and what it takes, it takes as the full path does (tcp_both compares them) */
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | T_PSH, WIN, 1000), FW_PASS);
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1001, T_ACK, WIN, 1400), FW_PASS);
	assert_int_equal(fw_tcp_slice(t.c)->d[O].end, ISN_O + 1001);
	assert_int_equal(fw_tcp_slice(t.c)->d[R].end, ISN_R + 1401);
	assert_int_equal(t.c->expire_ns,
			 t.now + fw_tcp_conf_default.timeout_ns[FW_TCP_ESTABLISHED]);
}

/*
 * Options, any flag but ACK/PSH, a segment off the window, a connection not ESTABLISHED,
 * past a FIN or restored with its slack open: the full path decides, and the fast one
 * leaves the connection untouched.
 */
static void test_tcp_fast_path_leaves_the_rest_to_the_full_path(void **st)
{
	static const uint8_t ts[] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
	uint8_t sack[12] = {1, 1, 5, 10};
	struct tc t;
	struct fw_conn *r = tconn_alloc();

	(void)st;
	handshake_scaled(&t);
	assert_true(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 100, NULL, 0));
	/* any option, even one that changes nothing, and a SACK block past the sent data */
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 100, ts, sizeof(ts)));
	tput32(sack + 4, ISN_R + 1);
	tput32(sack + 8, ISN_R + 9000);
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0, sack, sizeof(sack)));
	assert_int_equal(seg_opts(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0, sack, 12), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	/* flags other than ACK and PSH */
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | T_RST, 500, 0, NULL, 0));
	assert_false(fast_takes(&t, O, ISN_O + 1, 0, T_RST, 0, 0, NULL, 0));
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | T_FIN, 500, 0, NULL, 0));
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | 0x20, 500, 0, NULL, 0));
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | 0x40, 500, 0, NULL, 0));
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | T_SYN, 500, 0, NULL, 0));
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_PSH, 500, 0, NULL, 0));
	/* off the window: sequence, acknowledgement of unsent data, ancient acknowledgement */
	assert_false(
		fast_takes(&t, O, ISN_O + 1 + (WIN << 7) + 1, ISN_R + 1, T_ACK, 500, 1, NULL, 0));
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 2, T_ACK, 500, 0, NULL, 0));
	assert_false(fast_takes(&t, R, ISN_R + 1, ISN_O - (1u << 24), T_ACK, 500, 0, NULL, 0));
	/* an in-window RST still closes the connection, through the full path */
	assert_int_equal(seg(&t, R, ISN_R + 1, ISN_O + 1, T_RST | T_ACK, 0, 0), FW_PASS);
	assert_int_equal(state(&t), FW_TCP_CLOSE);
	assert_false(fast_takes(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, 500, 0, NULL, 0));

	/* one FIN seen: FIN_WAIT, and later segments go the full path */
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK | T_FIN, WIN, 0), FW_PASS);
	assert_false(fast_takes(&t, R, ISN_R + 1, ISN_O + 2, T_ACK, WIN, 10, NULL, 0));

	/* a restored connection keeps the full path until its slack closes */
	handshake(&t);
	assert_int_equal(seg(&t, O, ISN_O + 1, ISN_R + 1, T_ACK, WIN, 1000), FW_PASS);
	encode_decode(&t, r);
	t.c = r;
	assert_false(fast_takes(&t, O, ISN_O + 1001, ISN_R + 1, T_ACK, WIN, 1000, NULL, 0));
}

/* xorshift64*: a fixed sequence, so a failure is reproduced by running the test again. */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/* A number near @p edge: within a few bytes, within a window, or anywhere. */
static uint32_t near(uint64_t *x, uint32_t edge, uint32_t win)
{
	const uint64_t r = rnd(x);

	switch (r & 3) {
	case 0:
		return edge + (uint32_t)(r >> 8 & 7) - 4;
	case 1:
		return edge + (uint32_t)((r >> 8) % (2 * (uint64_t)win + 1)) - win;
	case 2:
		return edge;
	default:
		return (uint32_t)(r >> 32);
	}
}

/*
 * Random segments on connections in every phase (plain, scaled with SACK, restored): each
 * goes through both paths (tcp_both) and must be decided alike; the fast path must have
 * taken a good share and the full path must have dropped some, so both were exercised.
 */
static void test_tcp_fast_path_decides_as_the_full_path_on_random_segments(void **st)
{
	static const uint8_t flag_set[] = {
		T_ACK,	       T_ACK,
		T_ACK,	       T_ACK | T_PSH,
		T_ACK | T_PSH, T_ACK | T_FIN,
		T_RST,	       T_RST | T_ACK,
		T_SYN,	       T_SYN | T_ACK,
		T_ACK | 0x20,  T_ACK | 0x40,
		T_PSH,	       0,
	};
	uint64_t x = 0x15f1a57u;
	unsigned int fast = 0, drops = 0, total = 0;

	(void)st;
	for (int conn = 0; conn < 1000; conn++) {
		struct tc t;
		struct fw_conn *r = tconn_alloc();

		if (conn % 3 == 0) {
			handshake(&t);
		} else {
			handshake_scaled(&t);
		}
		if (conn % 3 == 2) {
			encode_decode(&t, r);
			t.c = r;
		}
		for (int i = 0; i < 60; i++) {
			const uint64_t q = rnd(&x);
			const uint8_t dir = q & 1;
			const struct fw_tcp_slice *sl = fw_tcp_slice(t.c);
			const uint32_t win = sl->d[!dir].maxwin ? sl->d[!dir].maxwin : WIN;
			/* mostly what an established connection carries, so that it lasts */
			const uint8_t flags = (q >> 1 & 31) < 28
						      ? (q & 2 ? T_ACK : T_ACK | T_PSH)
						      : flag_set[(q >> 6) % sizeof(flag_set)];
			const uint32_t len = (q >> 8 & 3) == 0 ? 0 : (uint32_t)(q >> 16) % 1401;
			const uint32_t seqn = near(&x, sl->d[dir].end, win);
			const uint32_t ackn = near(&x, sl->d[!dir].end, win);
			const uint16_t w = (uint16_t)((q >> 40 & 1) ? q >> 44 : 500);
			uint8_t sack[12] = {1, 1, 5, 10};
			const bool opts = (q >> 60 & 3) == 0;

			tput32(sack + 4, ackn);
			tput32(sack + 8, near(&x, sl->d[!dir].end, win));
			if (!opts && fast_takes(&t, dir, seqn, ackn, flags, w, len, NULL, 0))
				fast++;
			if (opts)
				assert_false(
					fast_takes(&t, dir, seqn, ackn, flags, w, len, sack, 12));
			t.now += NS / 100;
			if (seg_opts(&t, dir, seqn, ackn, flags, w, len, opts ? sack : NULL,
				     opts ? 12 : 0) == FW_DROP)
				drops++;
			total++;
		}
	}
	assert_true(fast > total / 20);
	assert_true(drops > total / 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_handshake_establishes),
		cmocka_unit_test(test_tcp_may_open_only_plain_syn),
		cmocka_unit_test(test_tcp_non_syn_cannot_open),
		cmocka_unit_test(test_tcp_data_both_ways_passes),
		cmocka_unit_test(test_tcp_seq_beyond_window_dropped),
		cmocka_unit_test(test_tcp_ack_of_unsent_data_dropped),
		cmocka_unit_test(test_tcp_sack_edges_bound_by_sent_data),
		cmocka_unit_test(test_tcp_window_scaling_applies_when_both_offer),
		cmocka_unit_test(test_tcp_window_scaling_ignored_unless_both_offer),
		cmocka_unit_test(test_tcp_bad_flags_dropped),
		cmocka_unit_test(test_tcp_malformed_header_dropped),
		cmocka_unit_test(test_tcp_invalid_in_state_dropped),
		cmocka_unit_test(test_tcp_synack_must_ack_the_syn),
		cmocka_unit_test(test_tcp_rst_in_window_closes),
		cmocka_unit_test(test_tcp_rst_at_expected_seq_accepted),
		cmocka_unit_test(test_tcp_rst_out_of_window_dropped),
		cmocka_unit_test(test_tcp_rst_refusing_syn_must_ack_it),
		cmocka_unit_test(test_tcp_ack_after_refused_syn_dropped),
		cmocka_unit_test(test_tcp_fin_teardown_opener_first),
		cmocka_unit_test(test_tcp_fin_teardown_responder_first),
		cmocka_unit_test(test_tcp_simultaneous_close),
		cmocka_unit_test(test_tcp_simultaneous_open),
		cmocka_unit_test(test_tcp_time_wait_reused_by_syn_beyond_old_seq),
		cmocka_unit_test(test_tcp_time_wait_refuses_syn_inside_old_seq),
		cmocka_unit_test(test_tcp_timeouts_follow_state_and_conf),
		cmocka_unit_test(test_tcp_state_change_marks_dirty),
		cmocka_unit_test(test_tcp_window_moving_past_threshold_marks_dirty),
		cmocka_unit_test(test_tcp_window_growth_marks_dirty),
		cmocka_unit_test(test_tcp_slice_round_trips),
		cmocka_unit_test(test_tcp_restored_conn_keeps_window_checking),
		cmocka_unit_test(test_tcp_restore_accepts_live_edges_within_slack),
		cmocka_unit_test(test_tcp_restore_retransmission_keeps_the_ack_slack),
		cmocka_unit_test(test_tcp_decode_rejects_malformed),
		cmocka_unit_test(test_tcp_fast_path_takes_plain_established_segments),
		cmocka_unit_test(test_tcp_fast_path_leaves_the_rest_to_the_full_path),
		cmocka_unit_test(test_tcp_fast_path_decides_as_the_full_path_on_random_segments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
