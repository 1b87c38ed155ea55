/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker's decisions on frames handed to fw_worker_handle with a clock the test
 * controls: rules only for openers, modules by protocol, and idle expiry per protocol and
 * state under the configured timeouts.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fw_test_eal.h"
#include "fw_test_frame.h"
#include <rte_ip.h>

#include "fw_worker.h"

#define S(x) ((uint64_t)(x)*1000000000ull)

static struct fw_config conf;
static struct fw_shared sh;
static struct fw_worker w;

static enum fw_verdict feed(uint8_t proto, uint16_t sport, uint16_t dport, bool reply,
			    uint8_t flags, uint32_t seq, uint32_t ack, uint64_t now)
{
	uint8_t f[FW_TEST_FRAME_MAX];
	uint32_t len = fw_test_frame(f, proto, sport, dport, reply, flags, seq, ack, 0xffff, NULL);

	return fw_worker_handle(&w, f, len, reply ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE, now);
}

/* A frame carrying @p data (FTP lines), window 4096. */
static enum fw_verdict feed_data(uint16_t sport, uint16_t dport, bool reply, uint8_t flags,
				 uint32_t seq, uint32_t ack, const char *data, uint64_t now)
{
	uint8_t f[FW_TEST_FRAME_MAX];
	uint32_t len =
		fw_test_frame(f, IPPROTO_TCP, sport, dport, reply, flags, seq, ack, 4096, data);

	return fw_worker_handle(&w, f, len, reply ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE, now);
}

/* An FTP control connection @p cport -> 21 (the setup's rules open it) whose server then
 * says @p line. */
static void ftp_control(uint16_t cport, const char *line, uint64_t now)
{
	assert_int_equal(feed_data(cport, 21, false, 0x02, 100, 0, NULL, now), FW_PASS);
	assert_int_equal(feed_data(cport, 21, true, 0x12, 900, 101, NULL, now), FW_PASS);
	assert_int_equal(feed_data(cport, 21, false, 0x10, 101, 901, NULL, now), FW_PASS);
	assert_int_equal(feed_data(cport, 21, true, 0x18, 901, 101, line, now), FW_PASS);
}

static void expire_cb(struct fw_table *t, struct fw_conn *c, void *arg)
{
	(void)arg;
	fw_table_del(t, c);
}

/* Enough passes to visit every position of the table once. */
static void sweep_all(uint64_t now)
{
	for (int i = 0; i < 1024; i++)
		fw_table_sweep(w.table, now, 64, expire_cb, NULL);
}

static int setup(void **state)
{
	char err[256];
	struct fw_rule r;

	(void)state;
	fw_config_defaults(&conf);
	conf.max_conns = 1024;
	conf.timeouts.udp_unreplied = 5;
	conf.timeouts.udp_assured = 50;
	conf.timeouts.tcp_established = 100;
	conf.timeouts.tcp_syn_sent = 7;
	conf.timeouts.ftp_expect = 30;
	assert_int_equal(
		fw_rule_parse("accept from inside proto tcp dport 80", &r, err, sizeof(err)), 0);
	fw_ruleset_add(&conf.rules, &r);
	assert_int_equal(
		fw_rule_parse("accept from inside proto udp dport 53", &r, err, sizeof(err)), 0);
	fw_ruleset_add(&conf.rules, &r);
	assert_int_equal(
		fw_rule_parse("accept from inside proto tcp dport 21", &r, err, sizeof(err)), 0);
	fw_ruleset_add(&conf.rules, &r);
	memset(&sh, 0, sizeof(sh));
	sh.conf = &conf;
	fw_modconf_build(&conf, &sh.modconf);
	sh.tsc_hz = 1000000000;
	fw_id_secret_init(&sh.secret);
	sh.acl = fw_acl_build(&conf.rules, "wtest", 0, err, sizeof(err));
	assert_non_null(sh.acl);
	return fw_worker_init(&w, &sh, 0, 0);
}

static int teardown(void **state)
{
	(void)state;
	fw_worker_release(&w);
	fw_acl_free((struct fw_acl **)&sh.acl);
	fw_config_release(&conf);
	return 0;
}

static void test_worker_rules_only_decide_openers(void **state)
{
	(void)state;
	assert_int_equal(feed(IPPROTO_TCP, 1000, 80, false, 0x02, 100, 0, S(1)), FW_PASS);
	/* the reply enters from outside, where no rule opens anything: the state admits it */
	assert_int_equal(feed(IPPROTO_TCP, 1000, 80, true, 0x12, 900, 101, S(1)), FW_PASS);
	assert_int_equal(feed(IPPROTO_TCP, 1000, 80, false, 0x10, 101, 901, S(1)), FW_PASS);
	/* an opener no rule allows, and a non-opener with no connection */
	assert_int_equal(feed(IPPROTO_TCP, 1001, 81, false, 0x02, 100, 0, S(1)), FW_DROP);
	assert_int_equal(feed(IPPROTO_TCP, 1002, 80, false, 0x10, 100, 5, S(1)), FW_DROP);
	assert_true(w.cnt.drop[FW_DROP_POLICY] == 1 && w.cnt.drop[FW_DROP_NO_CONN] == 1);
	assert_int_equal(fw_table_count(w.table), 1);
	sweep_all(S(1000));
}

static void test_worker_expires_by_protocol_and_state_timeouts(void **state)
{
	(void)state;
	assert_int_equal(fw_table_count(w.table), 0);
	/* UDP unreplied (5 s), UDP replied then assured (50 s) */
	assert_int_equal(feed(IPPROTO_UDP, 2000, 53, false, 0, 0, 0, S(10)), FW_PASS);
	assert_int_equal(feed(IPPROTO_UDP, 2001, 53, false, 0, 0, 0, S(10)), FW_PASS);
	assert_int_equal(feed(IPPROTO_UDP, 2001, 53, true, 0, 0, 0, S(10)), FW_PASS);
	assert_int_equal(feed(IPPROTO_UDP, 2001, 53, false, 0, 0, 0, S(10)), FW_PASS);
	/* TCP established (100 s) and TCP SYN_SENT (7 s) */
	feed(IPPROTO_TCP, 3000, 80, false, 0x02, 100, 0, S(10));
	feed(IPPROTO_TCP, 3000, 80, true, 0x12, 900, 101, S(10));
	feed(IPPROTO_TCP, 3000, 80, false, 0x10, 101, 901, S(10));
	feed(IPPROTO_TCP, 3001, 80, false, 0x02, 100, 0, S(10));
	assert_int_equal(fw_table_count(w.table), 4);
	sweep_all(S(16)); /* 6 s idle: the unreplied datagram's 5 s are over */
	assert_int_equal(fw_table_count(w.table), 3);
	sweep_all(S(18)); /* 8 s: the half-open connection's 7 s too */
	assert_int_equal(fw_table_count(w.table), 2);
	sweep_all(S(59)); /* 49 s: the assured UDP flow stays */
	assert_int_equal(fw_table_count(w.table), 2);
	sweep_all(S(61));
	assert_int_equal(fw_table_count(w.table), 1);
	sweep_all(S(109)); /* the established connection lasts its 100 s */
	assert_int_equal(fw_table_count(w.table), 1);
	sweep_all(S(111));
	assert_int_equal(fw_table_count(w.table), 0);
	/* traffic resets the clock: a fresh packet keeps a connection alive */
	feed(IPPROTO_UDP, 2002, 53, false, 0, 0, 0, S(200));
	feed(IPPROTO_UDP, 2002, 53, false, 0, 0, 0, S(204));
	sweep_all(S(208));
	assert_int_equal(fw_table_count(w.table), 1);
	sweep_all(S(300));
}

static void test_worker_marks_ftp_control_connections(void **state)
{
	struct fw_key key;
	struct fw_conn *c;
	uint8_t a[4] = {198, 18, 0, 1}, b[4] = {198, 19, 0, 2};
	struct fw_rule r;
	char err[128];

	(void)state;
	/* port 21 is an FTP control port by default; a rule opens it for this test */
	fw_acl_free((struct fw_acl **)&sh.acl);
	assert_int_equal(fw_rule_parse("accept proto tcp", &r, err, sizeof(err)), 0);
	fw_ruleset_add(&conf.rules, &r);
	sh.acl = fw_acl_build(&conf.rules, "wtest2", 0, err, sizeof(err));
	feed(IPPROTO_TCP, 4000, 21, false, 0x02, 100, 0, S(400));
	feed(IPPROTO_TCP, 4001, 22, false, 0x02, 100, 0, S(400));
	fw_key_make(&key, 4, IPPROTO_TCP, a, b, htons(4000), htons(21));
	c = fw_table_lookup(w.table, &key);
	assert_non_null(c);
	assert_true(c->present & (1u << FW_MOD_FTP));
	fw_key_make(&key, 4, IPPROTO_TCP, a, b, htons(4001), htons(22));
	c = fw_table_lookup(w.table, &key);
	assert_non_null(c);
	assert_false(c->present & (1u << FW_MOD_FTP));
	assert_true(c->present & (1u << FW_MOD_TCP));
}

/*
 * A control connection expects one data connection at a time, as its FTP slice (and so its
 * checkpoint) describes: a newer announcement withdraws the older one, and a control
 * connection that goes away takes its expectation with it. A restore re-creates only what
 * the slice holds, so the live table must not admit more.
 */
static void test_worker_expectation_withdrawn_by_newer_one_and_by_its_master(void **state)
{
	(void)state;
	ftp_control(1001, "227 Entering Passive Mode (198,19,0,2,195,90)\r\n", S(1));
	assert_int_equal(feed_data(1001, 21, true, 0x18, 948, 101,
				   "229 Entering Extended Passive Mode (|||50011|)\r\n", S(1)),
			 FW_PASS);
	assert_int_equal(fw_table_expect_count(w.table), 1);
	/* 50010 was withdrawn: refused as the policy refuses any; 50011 opens */
	assert_int_equal(feed_data(40020, 50010, false, 0x02, 5000, 0, NULL, S(1)), FW_DROP);
	assert_int_equal(feed_data(40021, 50011, false, 0x02, 5000, 0, NULL, S(1)), FW_PASS);
	assert_true(w.cnt.conn_related == 1 && w.cnt.drop[FW_DROP_POLICY] == 1);
	/* a control connection that expires (10 s after a RST) withdraws what it announced */
	ftp_control(1002, "229 Entering Extended Passive Mode (|||50012|)\r\n", S(1));
	assert_int_equal(feed_data(1002, 21, true, 0x14, 1000, 101, NULL, S(1)), FW_PASS);
	assert_int_equal(fw_table_expect_count(w.table), 1);
	sweep_all(S(12));
	assert_int_equal(fw_table_expect_count(w.table), 0);
	assert_int_equal(feed_data(40022, 50012, false, 0x02, 5000, 0, NULL, S(12)), FW_DROP);
	sweep_all(S(1000));
}

static struct fw_conn *control(uint16_t cport)
{
	struct fw_key key;

	fw_key_make(&key, 4, IPPROTO_TCP, fw_test_addr4[0], fw_test_addr4[1], htons(cport),
		    htons(21));
	return fw_table_lookup(w.table, &key);
}

/*
 * Issue 12: an expectation that leaves the table, used by its data connection or run out,
 * leaves its control connection's FTP slice too, marked for a checkpoint at once; the
 * expiry is the worker's housekeeping, which tells the master.
 */
static void test_worker_used_or_expired_expectation_leaves_the_slice(void **state)
{
	struct fw_conn *c;

	(void)state;
	ftp_control(1001, "229 Entering Extended Passive Mode (|||50010|)\r\n", S(1));
	ftp_control(1002, "229 Entering Extended Passive Mode (|||50011|)\r\n", S(1));
	c = control(1001);
	c->dirty = 0;
	c->flags &= (uint8_t)~FW_CONN_F_CKPT_NOW;
	assert_int_equal(feed_data(40020, 50010, false, 0x02, 5000, 0, NULL, S(2)), FW_PASS);
	assert_int_equal(fw_ftp_slice(c)->exp_mode, FW_FTP_EXP_NONE);
	assert_true((c->dirty & (1u << FW_MOD_FTP)) && (c->flags & FW_CONN_F_CKPT_NOW));
	/* ftp-expect is 30 s here: the housekeeping at 32 s finds 1002's run out */
	c = control(1002);
	fw_worker_housekeep(&w, S(30));
	assert_int_equal(fw_ftp_slice(c)->exp_mode, FW_FTP_EXP_PASSIVE);
	fw_worker_housekeep(&w, S(32));
	assert_int_equal(fw_ftp_slice(c)->exp_mode, FW_FTP_EXP_NONE);
	assert_true(w.cnt.expect_expired == 1 && fw_table_expect_count(w.table) == 0);
	assert_int_equal(feed_data(40021, 50011, false, 0x02, 5000, 0, NULL, S(32)), FW_DROP);
	sweep_all(S(1000000));
}

/* A packet that cannot open a connection never uses an expectation up. */
static void test_worker_non_opener_leaves_the_expectation(void **state)
{
	(void)state;
	ftp_control(1001, "229 Entering Extended Passive Mode (|||50010|)\r\n", S(1));
	assert_int_equal(feed_data(40020, 50010, false, 0x10, 5000, 7, NULL, S(1)), FW_DROP);
	assert_true(w.cnt.drop[FW_DROP_NO_CONN] == 1);
	assert_int_equal(fw_table_expect_count(w.table), 1);
	assert_int_equal(feed_data(40020, 50010, false, 0x02, 5000, 0, NULL, S(1)), FW_PASS);
	assert_true(w.cnt.conn_related == 1);
	sweep_all(S(1000000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_worker_rules_only_decide_openers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_worker_expires_by_protocol_and_state_timeouts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_marks_ftp_control_connections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_worker_expectation_withdrawn_by_newer_one_and_by_its_master, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_worker_used_or_expired_expectation_leaves_the_slice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_non_opener_leaves_the_expectation,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
