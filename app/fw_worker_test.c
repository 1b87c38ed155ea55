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
	assert_int_equal(
		fw_rule_parse("accept from inside proto tcp dport 80", &r, err, sizeof(err)), 0);
	fw_ruleset_add(&conf.rules, &r);
	assert_int_equal(
		fw_rule_parse("accept from inside proto udp dport 53", &r, err, sizeof(err)), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_worker_rules_only_decide_openers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_worker_expires_by_protocol_and_state_timeouts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_marks_ftp_control_connections, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
