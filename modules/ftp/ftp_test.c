/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fw_test_pkt.h"
#include "ftp/fw_ftp.h"
#include "tcp/fw_tcp.h"

#define NS    1000000000ull
#define C     FW_DIR_ORIG
#define S     FW_DIR_REPLY
#define BIT   (1u << FW_MOD_FTP)
#define ISN_C 7000u
#define ISN_S 0xfffffff0u /* the server's sequence wraps during the test */

static const struct tflow ftp4 = {
	.family = 4,
	.addr = {{192, 0, 2, 10}, {198, 51, 100, 20}},
	.port = {40001, 21},
};

static const struct tflow ftp6 = {
	.family = 6,
	.addr = {{0x20, 0x01, 0x0d, 0xb8, [15] = 0x10}, {0x20, 0x01, 0x0d, 0xb8, 1, [15] = 0x21}},
	.port = {40001, 21},
};

struct fc {
	struct fw_conn *c; /* tconn_alloc */
	struct fw_ctx ctx;
	struct tpkt pk;
	const struct tflow *f;
	uint32_t next[2];
	uint64_t now;
	enum fw_drop_reason why;
	struct fw_expect exp[8];
	int nexp;
	int expect_rc; /* what expect_add answers */
};

static int record_expect(struct fw_ctx *ctx, struct fw_conn *master, const struct fw_expect *e)
{
	struct fc *t = ctx->core;

	assert_true(master != NULL && fw_conn_cold(master)->id ==
					      fw_conn_cold(t->c)->id); /* the control connection */

	if (t->expect_rc)
		return t->expect_rc;
	assert_true(t->nexp < 8);
	t->exp[t->nexp++] = *e;
	return 0;
}

static enum fw_verdict seg_at(struct fc *t, uint8_t dir, uint32_t seq, uint8_t flags,
			      const char *text)
{
	const struct tseg s = {.dir = dir,
			       .seq = seq,
			       .ack = 1,
			       .flags = flags,
			       .win = 65535,
			       .data = text,
			       .len = text ? (uint32_t)strlen(text) : 0};

	t->why = FW_DROP_NONE;
	return fw_ftp_packet(&t->ctx, t->c, tpkt_tcp(&t->pk, t->f, &s, t->now), &t->why);
}

/* The next in-order segment of @p dir; the sequence advances only if it passed. */
static enum fw_verdict say(struct fc *t, uint8_t dir, const char *text)
{
	enum fw_verdict v = seg_at(t, dir, t->next[dir], T_ACK | T_PSH, text);

	if (v == FW_PASS)
		t->next[dir] += (uint32_t)strlen(text);
	return v;
}

static void fc_init(struct fc *t, const struct tflow *f)
{
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->c = tconn_alloc();
	tconn_init(t->c, f, 6);
	t->ctx.core = t;
	t->ctx.expect_add = record_expect;
	t->now = 10 * NS;
	assert_int_equal(seg_at(t, C, ISN_C, T_SYN, NULL), FW_PASS);
	assert_int_equal(seg_at(t, S, ISN_S, T_SYN | T_ACK, NULL), FW_PASS);
	t->next[C] = ISN_C + 1;
	t->next[S] = ISN_S + 1;
	assert_int_equal(say(t, S, "220 holdfast test server ready\r\n"), FW_PASS);
	assert_int_equal(say(t, C, "USER anonymous\r\n"), FW_PASS);
	assert_int_equal(say(t, S, "331 Please specify the password.\r\n"), FW_PASS);
}

static void assert_expect(const struct fw_expect *e, const struct tflow *f, uint8_t from,
			  uint16_t from_port, uint16_t to_port)
{
	assert_int_equal(e->family, f->family);
	assert_int_equal(e->proto, 6);
	assert_memory_equal(e->addr[0], f->addr[from], 16);
	assert_memory_equal(e->addr[1], f->addr[!from], 16);
	assert_int_equal(ntohs(e->port[0]), from_port);
	assert_int_equal(ntohs(e->port[1]), to_port);
	assert_true(e->master_id == 0x1234567887654321ull);
}

static void test_ftp_port_expects_server_to_announced_client_port(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,195,80\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	/* From the server, any port, to the client's 195 * 256 + 80 = 50000. */
	assert_expect(&t.exp[0], &ftp4, S, 0, 50000);
	assert_true(t.exp[0].expire_ns == t.now + 300 * NS);
	assert_true(t.c->dirty & BIT);
	assert_int_equal(fw_ftp_slice(t.c)->exp_mode, FW_FTP_EXP_ACTIVE);
	assert_int_equal(fw_ftp_slice(t.c)->exp_port, 50000);
}

static void test_ftp_active_source_port20_when_configured(void **st)
{
	struct fw_ftp_conf conf = fw_ftp_conf_default;
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	conf.active_src_port20 = true;
	conf.expect_timeout_ns = 30 * NS;
	t.ctx.conf[FW_MOD_FTP] = &conf;
	assert_int_equal(say(&t, C, "port 192,0,2,10,4,1\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp4, S, 20, 1025);
	assert_true(t.exp[0].expire_ns == t.now + 30 * NS);
}

static void test_ftp_eprt_ipv4(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "EPRT |1|192.0.2.10|6446|\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp4, S, 0, 6446);
}

static void test_ftp_eprt_ipv6(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp6);
	assert_int_equal(say(&t, C, "EPRT !2!2001:db8::10!5282!\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp6, S, 0, 5282);
}

static void test_ftp_227_expects_client_to_server_port(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "PASV\r\n"), FW_PASS);
	assert_int_equal(say(&t, S, "227 Entering Passive Mode (198,51,100,20,117,48).\r\n"),
			 FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp4, C, 0, 117 * 256 + 48);
	assert_int_equal(fw_ftp_slice(t.c)->exp_mode, FW_FTP_EXP_PASSIVE);
}

static void test_ftp_229_expects_client_to_server_port(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp6);
	assert_int_equal(say(&t, C, "EPSV\r\n"), FW_PASS);
	assert_int_equal(say(&t, S, "229 Entering Extended Passive Mode (|||40123|)\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp6, C, 0, 40123);
}

static void test_ftp_command_split_across_segments(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "PORT 192,0,"), FW_PASS);
	assert_int_equal(t.nexp, 0);
	assert_int_equal(say(&t, C, "2,10,"), FW_PASS);
	assert_int_equal(say(&t, C, "200,1\r\nNOOP\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp4, S, 0, 200 * 256 + 1);
	assert_int_equal(fw_ftp_slice(t.c)->d[C].line_seq, t.next[C]);
	/* The server's reply, split too, across its sequence wrap. */
	assert_int_equal(say(&t, S, "229 Entering Extended Pa"), FW_PASS);
	assert_int_equal(say(&t, S, "ssive Mode (|||2121|)\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 2);
	assert_expect(&t.exp[1], &ftp4, C, 0, 2121);
}

static void test_ftp_two_commands_in_one_segment(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "TYPE I\r\nPORT 192,0,2,10,100,100\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp4, S, 0, 25700);
}

static void test_ftp_bounce_to_third_host_refused(void **st)
{
	struct fc t, t6;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "PORT 203,0,113,5,0,25\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_FTP_BOUNCE);
	assert_int_equal(say(&t, C, "PORT 203,0,113,5,200,0\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_FTP_BOUNCE);
	assert_int_equal(say(&t, C, "EPRT |1|198.51.100.20|3000|\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_FTP_BOUNCE);
	/* A server may not point the client elsewhere either. */
	assert_int_equal(say(&t, S, "227 Entering Passive Mode (10,0,0,1,200,0)\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_FTP_BOUNCE);
	assert_int_equal(t.nexp, 0);
	assert_int_equal(fw_ftp_slice(t.c)->exp_mode, FW_FTP_EXP_NONE);
	/* An IPv4 address on an IPv6 control connection is another host too. */
	fc_init(&t6, &ftp6);
	assert_int_equal(say(&t6, C, "EPRT |1|192.0.2.10|3000|\r\n"), FW_DROP);
	assert_int_equal(t6.why, FW_DROP_FTP_BOUNCE);
}

static void test_ftp_privileged_port_refused(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,0,22\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_FTP_BOUNCE);
	assert_int_equal(say(&t, C, "EPRT |1|192.0.2.10|1023|\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_FTP_BOUNCE);
	assert_int_equal(say(&t, S, "229 Extended Passive (|||25|)\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_FTP_BOUNCE);
	assert_int_equal(t.nexp, 0);
}

static void test_ftp_malformed_numbers_refused(void **st)
{
	static const char *const bad_cmd[] = {
		"PORT 192,0,2,256,4,1\r\n",  /* octet > 255 */
		"PORT 192,0,2,10,256,1\r\n", /* port byte > 255 */
		"PORT 192,0,2,10,4\r\n",     /* five numbers */
		"PORT 192,0,2,10,4,1,7\r\n", /* seven */
		"PORT 192,0,2,x,4,1\r\n",    /* not a number */
		"PORT 192,0,2,0010,4,1\r\n", /* four digits */
		"PORT 192,,2,10,4,1\r\n",    /* empty field */
		"EPRT |1|192.0.2.10|65536|\r\n", "EPRT |1|192.0.2.300|5000|\r\n",
		"EPRT |3|192.0.2.10|5000|\r\n",	 "EPRT |2|2001:db8::zz|5000|\r\n",
		"EPRT |1|192.0.2.10|5000\r\n",	 "EPRT 1|192.0.2.10|5000|\r\n",
	};
	static const char *const bad_reply[] = {
		"227 Entering Passive Mode (198,51,100,999,4,1)\r\n",
		"227 Entering Passive Mode\r\n",
		"229 Entering Extended Passive Mode (|||70000|)\r\n",
		"229 Entering Extended Passive Mode (||5000|)\r\n",
		"229 Entering Extended Passive Mode (|||5000|\r\n",
	};
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	for (size_t i = 0; i < sizeof(bad_cmd) / sizeof(bad_cmd[0]); i++) {
		assert_int_equal(say(&t, C, bad_cmd[i]), FW_DROP);
		assert_int_equal(t.why, FW_DROP_FTP_SYNTAX);
	}
	for (size_t i = 0; i < sizeof(bad_reply) / sizeof(bad_reply[0]); i++) {
		assert_int_equal(say(&t, S, bad_reply[i]), FW_DROP);
		assert_int_equal(t.why, FW_DROP_FTP_SYNTAX);
	}
	assert_int_equal(t.nexp, 0);
}

static void test_ftp_commands_only_count_in_their_direction(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	/* A server cannot announce PORT, a client cannot answer 227. */
	assert_int_equal(say(&t, S, "PORT 198,51,100,20,100,100\r\n"), FW_PASS);
	assert_int_equal(say(&t, C, "227 (192,0,2,10,100,100)\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 0);
}

static void test_ftp_dropped_command_parsed_again_when_retransmitted(void **st)
{
	struct fc t;
	uint32_t at;

	(void)st;
	fc_init(&t, &ftp4);
	at = t.next[C];
	t.expect_rc = -ENOSPC;
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,100,100\r\n"), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TABLE_FULL);
	assert_int_equal(fw_ftp_slice(t.c)->d[C].line_seq, at);
	t.expect_rc = 0;
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,100,100\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	/* Once it passed, a retransmission is not parsed again. */
	assert_int_equal(seg_at(&t, C, at, T_ACK, "PORT 192,0,2,10,100,100\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
}

static void test_ftp_gap_stops_parsing_until_a_line_ends(void **st)
{
	struct fc t;
	uint32_t lost = 30;

	(void)st;
	fc_init(&t, &ftp4);
	/* 30 bytes never seen: where lines start is unknown. */
	t.next[C] += lost;
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,100,100\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 0);
	/* That segment ended a line: the next one is parsed. */
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,100,101\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_int_equal(ntohs(t.exp[0].port[1]), 25701);
}

static void test_ftp_overlong_split_line_skipped(void **st)
{
	char lng[200];
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	memset(lng, 'x', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	memcpy(lng, "PORT 192,0,2,10,100,100", 23);
	/* More than the buffer before the newline: not parsed, not harmful. */
	assert_int_equal(say(&t, C, lng), FW_PASS);
	assert_int_equal(say(&t, C, lng), FW_PASS);
	assert_int_equal(say(&t, C, "\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 0);
	assert_int_equal(fw_ftp_slice(t.c)->d[C].line_seq, t.next[C]);
	/* Parsing resumes at the next line. */
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,100,100\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	/* A long line inside one segment is parsed in place. */
	memcpy(lng, "PORT 192,0,2,10,100,102", 23);
	memset(lng + 23, ' ', 100);
	memcpy(lng + 123, "\r\n", 3);
	assert_int_equal(say(&t, C, lng), FW_PASS);
	assert_int_equal(t.nexp, 2);
}

static void restore(struct fc *t, uint64_t down_ns)
{
	uint8_t buf[FW_FTP_PAYLOAD_LEN];
	struct fw_conn *r = tconn_alloc();

	t->c->last_ns = t->now;
	assert_int_equal(fw_ftp_ops.encode(t->c, buf, sizeof(buf)), FW_FTP_PAYLOAD_LEN);
	fw_conn_clear(r);
	fw_conn_cold(r)->key = fw_conn_cold(t->c)->key;
	fw_conn_cold(r)->id = fw_conn_cold(t->c)->id;
	r->orig_side = t->c->orig_side; /* the TCP slice restores it */
	assert_int_equal(fw_ftp_ops.decode(r, buf, sizeof(buf), FW_FTP_SLICE_VERSION), 0);
	t->now += down_ns;
	r->last_ns = t->now;
	t->nexp = 0;
	assert_int_equal(fw_ftp_ops.on_restore(&t->ctx, r), 0);
	t->c = r;
}

static void test_ftp_line_starts_survive_restore(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "TYPE I\r\n"), FW_PASS);
	assert_int_equal(say(&t, S, "200 Switching to Binary mode.\r\n"), FW_PASS);
	restore(&t, 2 * NS);
	assert_int_equal(fw_ftp_slice(t.c)->d[C].line_seq, t.next[C]);
	assert_int_equal(fw_ftp_slice(t.c)->d[S].line_seq, t.next[S]);
	/* The first command and reply after the restore are parsed. */
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,100,100\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_int_equal(say(&t, S, "227 Entering Passive Mode (198,51,100,20,117,48).\r\n"),
			 FW_PASS);
	assert_int_equal(t.nexp, 2);
	/* A segment that does not start at a remembered line start is not. */
	restore(&t, NS);
	assert_int_equal(t.nexp, 1); /* the 227's expectation, re-created */
	t.next[C] += 3;
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,100,100\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
}

/*
 * An expectation lives ftp-expect (300 s) from its announcement, whatever happens between:
 * the control connection falling quiet, the instance going away, another one restoring
 * it. (Version 1 counted the lifetime left at the last packet from the restore: 100 s of
 * quiet and a 7 s outage gave it 107 s more than announced; one that had run out came
 * back for a full lifetime, issue 12.)
 */
static void test_ftp_restore_recreates_pending_expectation(void **st)
{
	const uint64_t deadline = 10 * NS + 300 * NS; /* fc_init's clock: 10 s */
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,195,80\r\n"), FW_PASS);
	assert_true(fw_ftp_slice(t.c)->exp_deadline == deadline);
	t.now += 100 * NS; /* quiet for 100 s */
	restore(&t, 7 * NS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp4, S, 0, 50000);
	assert_true(t.exp[0].expire_ns == deadline);
	assert_true(fw_ftp_slice(t.c)->exp_deadline == deadline);
	/* Restored again 1 s before the deadline: still there, for that second. */
	t.now = deadline - 2 * NS;
	restore(&t, NS);
	assert_int_equal(t.nexp, 1);
	assert_true(t.exp[0].expire_ns == deadline);
	/* Restored 1 s after it: run out, nothing to re-create, and the slice says so. */
	t.c->dirty = 0;
	restore(&t, 2 * NS);
	assert_int_equal(t.nexp, 0);
	assert_int_equal(fw_ftp_slice(t.c)->exp_mode, FW_FTP_EXP_NONE);
	assert_true(t.c->dirty & BIT);
}

/* The deadline is wall-clock time, which the instances' clocks share only as well as they
 * agree: a restoring clock behind the writer's never gives more than ftp-expect. */
static void test_ftp_restore_cuts_a_deadline_beyond_ftp_expect(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	t.ctx.wall_offset_ns = (int64_t)(2000 * NS);
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,195,80\r\n"), FW_PASS);
	assert_true(fw_ftp_slice(t.c)->exp_deadline == 2310 * NS);
	t.ctx.wall_offset_ns = (int64_t)(1000 * NS); /* the next instance: 1000 s behind */
	t.c->dirty = 0;
	restore(&t, NS);
	assert_int_equal(t.nexp, 1);
	assert_true(t.exp[0].expire_ns == t.now + 300 * NS);
	assert_true(fw_ftp_slice(t.c)->exp_deadline == 1011 * NS + 300 * NS);
	assert_true(t.c->dirty & BIT); /* its own deadline, to checkpoint */
}

/* A version 1 record (the lifetime left at the control connection's last packet) is still
 * read with that meaning, and written back as version 2. */
static void test_ftp_version1_record_keeps_its_lifetime(void **st)
{
	uint8_t v1[FW_FTP_PAYLOAD_LEN] = {0}, v2[FW_FTP_PAYLOAD_LEN];
	struct fc t;
	struct fw_conn *r = tconn_alloc();

	(void)st;
	fc_init(&t, &ftp4);
	v1[0] = 3;
	v1[1] = FW_FTP_EXP_ACTIVE;
	memcpy(v1 + 4, &(uint32_t){htole32(ISN_C + 1)}, 4);
	memcpy(v1 + 8, &(uint32_t){htole32(ISN_S + 1)}, 4);
	v1[12] = 0x50; /* 50000 */
	v1[13] = 0xc3;
	memcpy(v1 + 16, &(uint64_t){htole64(200 * NS)}, 8);
	fw_conn_clear(r);
	fw_conn_cold(r)->key = fw_conn_cold(t.c)->key;
	fw_conn_cold(r)->id = fw_conn_cold(t.c)->id;
	assert_int_equal(fw_ftp_ops.decode(r, v1, sizeof(v1), 1), 0);
	assert_int_equal(fw_ftp_ops.encode(r, v2, sizeof(v2)), -EINVAL); /* not restored yet */
	r->last_ns = t.now;
	t.nexp = 0;
	assert_int_equal(fw_ftp_ops.on_restore(&t.ctx, r), 0);
	assert_int_equal(t.nexp, 1);
	assert_true(t.exp[0].expire_ns == t.now + 200 * NS);
	assert_true(r->dirty & BIT);
	assert_int_equal(fw_ftp_ops.encode(r, v2, sizeof(v2)), FW_FTP_PAYLOAD_LEN);
	assert_true(le64toh(*(uint64_t *)(v2 + 16)) == t.now + 200 * NS);
	/* a version 1 lifetime beyond an hour, or none, is refused */
	memcpy(v1 + 16, &(uint64_t){htole64(FW_FTP_EXPECT_TTL_MAX + 1)}, 8);
	assert_int_equal(fw_ftp_ops.decode(r, v1, sizeof(v1), 1), -EINVAL);
	memset(v1 + 16, 0, 8);
	assert_int_equal(fw_ftp_ops.decode(r, v1, sizeof(v1), 1), -EINVAL);
}

/* Issue 12: once its data connection used it (or it expired), the expectation leaves the
 * slice, the checkpoint says so at once, and a restore re-creates nothing. */
static void test_ftp_used_expectation_leaves_the_slice(void **st)
{
	uint8_t buf[FW_FTP_PAYLOAD_LEN];
	struct fw_expect used;
	struct fc t;

	(void)st;
	fc_init(&t, &ftp6);
	assert_int_equal(say(&t, S, "229 Entering Extended Passive Mode (|||50011|)\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	used = t.exp[0];
	t.c->dirty = 0;
	assert_true(fw_ftp_expect_gone(t.c, &used));
	assert_int_equal(fw_ftp_slice(t.c)->exp_mode, FW_FTP_EXP_NONE);
	assert_true((t.c->dirty & BIT) && (t.c->flags & FW_CONN_F_CKPT_NOW));
	t.c->last_ns = t.now;
	assert_int_equal(fw_ftp_ops.encode(t.c, buf, sizeof(buf)), FW_FTP_PAYLOAD_LEN);
	assert_int_equal(buf[1], FW_FTP_EXP_NONE);
	restore(&t, NS);
	assert_int_equal(t.nexp, 0);
	/* The line starts stay: the next announcement is parsed, and it is the slice's. */
	assert_int_equal(say(&t, C, "EPRT |2|2001:db8::10|50012|\r\n"), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_false(fw_ftp_expect_gone(t.c, &used)); /* an older one: not the slice's */
	assert_int_equal(fw_ftp_slice(t.c)->exp_port, 50012);
	assert_true(fw_ftp_expect_gone(t.c, &t.exp[0]));
	assert_false(fw_ftp_expect_gone(t.c, &t.exp[0])); /* nothing left to forget */
}

/* A restored expectation the core cannot take back is dropped from the slice too. */
static void test_ftp_restore_without_room_forgets_the_expectation(void **st)
{
	struct fc t;

	(void)st;
	fc_init(&t, &ftp4);
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,195,80\r\n"), FW_PASS);
	t.expect_rc = -ENOSPC;
	t.c->dirty = 0;
	restore(&t, NS);
	assert_int_equal(fw_ftp_slice(t.c)->exp_mode, FW_FTP_EXP_NONE);
	assert_true(t.c->dirty & BIT);
}

/* What the core does per segment of an FTP control connection: TCP first, FTP if accepted. */
static enum fw_verdict core_segment(struct fc *t, uint8_t dir, uint32_t seq, uint32_t ack,
				    uint8_t flags, const char *text, bool is_new)
{
	const struct tseg s = {.dir = dir,
			       .seq = seq,
			       .ack = ack,
			       .flags = flags,
			       .win = 65535,
			       .data = text,
			       .len = text ? (uint32_t)strlen(text) : 0};
	const struct fw_pkt *p = tpkt_tcp(&t->pk, t->f, &s, t->now);

	t->why = FW_DROP_NONE;
	if (fw_tcp_packet(&t->ctx, t->c, p, is_new, &t->why) != FW_PASS)
		return FW_DROP;
	return fw_ftp_packet(&t->ctx, t->c, p, &t->why);
}

static void test_ftp_control_conn_restored_from_its_slices(void **st)
{
	uint8_t tcp_rec[FW_TCP_PAYLOAD_LEN], ftp_rec[FW_FTP_PAYLOAD_LEN];
	const char *port = "PORT 192,0,2,10,100,100\r\n";
	uint32_t c = ISN_C + 1, s = ISN_S + 1;
	struct fw_conn *r = tconn_alloc();
	struct fc t;

	(void)st;
	memset(&t, 0, sizeof(t));
	t.f = &ftp4;
	t.c = tconn_alloc();
	tconn_init(t.c, &ftp4, 6);
	t.ctx.core = &t;
	t.ctx.expect_add = record_expect;
	t.now = 10 * NS;
	assert_true(fw_ftp_is_control(NULL, t.c));
	assert_int_equal(core_segment(&t, C, ISN_C, 0, T_SYN, NULL, true), FW_PASS);
	assert_int_equal(core_segment(&t, S, ISN_S, c, T_SYN | T_ACK, NULL, false), FW_PASS);
	assert_int_equal(core_segment(&t, C, c, s, T_ACK, NULL, false), FW_PASS);
	assert_int_equal(core_segment(&t, S, s, c, T_ACK | T_PSH, "220 ready\r\n", false), FW_PASS);
	s += 11;
	assert_int_equal(core_segment(&t, C, c, s, T_ACK | T_PSH, "TYPE I\r\n", false), FW_PASS);
	c += 8;
	/* The checkpointer collects both dirty slices. */
	assert_true(t.c->dirty & (1u << FW_MOD_TCP));
	assert_true(t.c->dirty & BIT);
	t.c->last_ns = t.now;
	assert_int_equal(fw_tcp_ops.encode(t.c, tcp_rec, sizeof(tcp_rec)), FW_TCP_PAYLOAD_LEN);
	assert_int_equal(fw_ftp_ops.encode(t.c, ftp_rec, sizeof(ftp_rec)), FW_FTP_PAYLOAD_LEN);

	/* A new instance: key and ID from the record header, the rest from the slices. */
	fw_conn_clear(r);
	fw_conn_cold(r)->key = fw_conn_cold(t.c)->key;
	fw_conn_cold(r)->id = fw_conn_cold(t.c)->id;
	assert_int_equal(fw_ftp_ops.decode(r, ftp_rec, sizeof(ftp_rec), FW_FTP_SLICE_VERSION), 0);
	assert_int_equal(fw_tcp_ops.decode(r, tcp_rec, sizeof(tcp_rec), 1), 0);
	t.now += 3 * NS;
	r->last_ns = t.now;
	assert_int_equal(fw_tcp_ops.on_restore(&t.ctx, r), 0);
	assert_int_equal(fw_ftp_ops.on_restore(&t.ctx, r), 0);
	assert_int_equal(r->orig_side, t.c->orig_side);
	t.c = r;

	/* The first command after the restore passes TCP and is parsed. */
	assert_int_equal(core_segment(&t, C, c, s, T_ACK | T_PSH, port, false), FW_PASS);
	assert_int_equal(t.nexp, 1);
	assert_expect(&t.exp[0], &ftp4, S, 0, 25700);
	c += (uint32_t)strlen(port);
	/* Strict TCP checking is on: a forged PORT far outside the window never reaches the
	 * FTP parser. */
	assert_int_equal(core_segment(&t, C, c + 1000000, s, T_ACK, port, false), FW_DROP);
	assert_int_equal(t.why, FW_DROP_TCP_WINDOW);
	assert_int_equal(t.nexp, 1);
}

static void test_ftp_is_control_by_server_port(void **st)
{
	struct fw_ftp_conf conf = {.ports = {2121}};
	struct tflow other = ftp4;
	struct fw_conn *c = tconn_alloc();

	(void)st;
	tconn_init(c, &ftp4, 6);
	assert_true(fw_ftp_is_control(NULL, c));
	assert_false(fw_ftp_is_control(&conf, c));
	other.port[1] = 2121;
	tconn_init(c, &other, 6);
	assert_true(fw_ftp_is_control(&conf, c));
	/* The client's port does not make a connection FTP. */
	other.port[0] = 21;
	other.port[1] = 80;
	tconn_init(c, &other, 6);
	assert_false(fw_ftp_is_control(NULL, c));
	tconn_init(c, &ftp4, 17);
	assert_false(fw_ftp_is_control(NULL, c));
}

static void test_ftp_slice_round_trips(void **st)
{
	struct fc t;
	uint8_t a[FW_FTP_PAYLOAD_LEN], b[FW_FTP_PAYLOAD_LEN];
	struct fw_conn *r = tconn_alloc();
	char line[128];

	(void)st;
	fc_init(&t, &ftp6);
	assert_int_equal(say(&t, C, "EPRT |2|2001:db8::10|5282|\r\n"), FW_PASS);
	t.c->last_ns = t.now;
	assert_int_equal(fw_ftp_ops.encode(t.c, a, sizeof(a)), FW_FTP_PAYLOAD_LEN);
	assert_int_equal(fw_ftp_ops.encode(t.c, a, sizeof(a) - 1), -ENOSPC);
	fw_conn_clear(r);
	assert_int_equal(fw_ftp_ops.decode(r, a, sizeof(a), FW_FTP_SLICE_VERSION), 0);
	assert_true(r->present & BIT);
	/* Before on_restore the slice re-encodes to the same bytes. */
	assert_int_equal(fw_ftp_ops.encode(r, b, sizeof(b)), FW_FTP_PAYLOAD_LEN);
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(fw_ftp_slice(r)->d[C].line_seq, t.next[C]);
	assert_int_equal(fw_ftp_slice(r)->d[S].line_seq, t.next[S]);
	assert_int_equal(fw_ftp_slice(r)->exp_port, 5282);
	assert_true(fw_ftp_ops.dump(r, line, sizeof(line)) > 0);
	assert_non_null(strstr(line, "active"));
}

static int decode_with(const uint8_t *good, size_t off, uint8_t val)
{
	uint8_t buf[FW_FTP_PAYLOAD_LEN];
	struct fw_conn *c = tconn_alloc();

	memcpy(buf, good, sizeof(buf));
	buf[off] = val;
	fw_conn_clear(c);
	return fw_ftp_ops.decode(c, buf, sizeof(buf), FW_FTP_SLICE_VERSION);
}

static void test_ftp_decode_rejects_malformed(void **st)
{
	struct fc t;
	uint8_t good[FW_FTP_PAYLOAD_LEN], none[FW_FTP_PAYLOAD_LEN];
	struct fw_conn *c = tconn_alloc();

	(void)st;
	fc_init(&t, &ftp4);
	t.c->last_ns = t.now;
	assert_int_equal(fw_ftp_ops.encode(t.c, none, sizeof(none)), FW_FTP_PAYLOAD_LEN);
	assert_int_equal(say(&t, C, "PORT 192,0,2,10,195,80\r\n"), FW_PASS);
	assert_int_equal(fw_ftp_ops.encode(t.c, good, sizeof(good)), FW_FTP_PAYLOAD_LEN);
	assert_int_equal(decode_with(good, 1, FW_FTP_EXP_ACTIVE), 0);
	assert_int_equal(decode_with(good, 0, 0x04), -EINVAL); /* unknown sync bit */
	assert_int_equal(decode_with(good, 0, 0x02), -EINVAL); /* unsynced, seq set */
	assert_int_equal(decode_with(good, 1, 3), -EINVAL);    /* mode out of range */
	assert_int_equal(decode_with(good, 3, 1), -EINVAL);    /* reserved */
	assert_int_equal(decode_with(good, 13, 0), -EINVAL);   /* port 80: < 1024 */
	assert_int_equal(decode_with(good, 14, 21), -EINVAL);  /* source port 21 */
	assert_int_equal(decode_with(good, 23, 0x10),
			 0); /* a deadline far ahead: on_restore cuts it */
	assert_int_equal(decode_with(none, 12, 1), -EINVAL); /* no expectation, a port */
	{
		uint8_t buf[FW_FTP_PAYLOAD_LEN];

		memcpy(buf, good, sizeof(buf));
		buf[1] = FW_FTP_EXP_PASSIVE;
		buf[14] = 20; /* passive data never has a fixed source port */
		fw_conn_clear(c);
		assert_int_equal(fw_ftp_ops.decode(c, buf, sizeof(buf), FW_FTP_SLICE_VERSION),
				 -EINVAL);
		memcpy(buf, good, sizeof(buf));
		memset(buf + 16, 0, 8); /* pending but no lifetime */
		assert_int_equal(fw_ftp_ops.decode(c, buf, sizeof(buf), FW_FTP_SLICE_VERSION),
				 -EINVAL);
	}
	fw_conn_clear(c);
	assert_int_equal(fw_ftp_ops.decode(c, good, sizeof(good) + 1, FW_FTP_SLICE_VERSION),
			 -EINVAL);
	assert_int_equal(fw_ftp_ops.decode(c, good, sizeof(good), 0), -EINVAL);
	assert_int_equal(fw_ftp_ops.decode(c, good, sizeof(good), FW_FTP_SLICE_VERSION + 1),
			 -EPROTONOSUPPORT);
	assert_false(c->present & BIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ftp_port_expects_server_to_announced_client_port),
		cmocka_unit_test(test_ftp_active_source_port20_when_configured),
		cmocka_unit_test(test_ftp_eprt_ipv4),
		cmocka_unit_test(test_ftp_eprt_ipv6),
		cmocka_unit_test(test_ftp_227_expects_client_to_server_port),
		cmocka_unit_test(test_ftp_229_expects_client_to_server_port),
		cmocka_unit_test(test_ftp_command_split_across_segments),
		cmocka_unit_test(test_ftp_two_commands_in_one_segment),
		cmocka_unit_test(test_ftp_bounce_to_third_host_refused),
		cmocka_unit_test(test_ftp_privileged_port_refused),
		cmocka_unit_test(test_ftp_malformed_numbers_refused),
		cmocka_unit_test(test_ftp_commands_only_count_in_their_direction),
		cmocka_unit_test(test_ftp_dropped_command_parsed_again_when_retransmitted),
		cmocka_unit_test(test_ftp_gap_stops_parsing_until_a_line_ends),
		cmocka_unit_test(test_ftp_overlong_split_line_skipped),
		cmocka_unit_test(test_ftp_line_starts_survive_restore),
		cmocka_unit_test(test_ftp_restore_recreates_pending_expectation),
		cmocka_unit_test(test_ftp_restore_cuts_a_deadline_beyond_ftp_expect),
		cmocka_unit_test(test_ftp_version1_record_keeps_its_lifetime),
		cmocka_unit_test(test_ftp_used_expectation_leaves_the_slice),
		cmocka_unit_test(test_ftp_restore_without_room_forgets_the_expectation),
		cmocka_unit_test(test_ftp_control_conn_restored_from_its_slices),
		cmocka_unit_test(test_ftp_is_control_by_server_port),
		cmocka_unit_test(test_ftp_slice_round_trips),
		cmocka_unit_test(test_ftp_decode_rejects_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
