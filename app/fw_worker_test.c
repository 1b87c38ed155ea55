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
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "fw_test_eal.h"
#include "fw_test_ring_port.h"
#include "fw_test_frame.h"
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "fw_checkpoint.h"
#include "fw_parse.h"
#include "fw_worker.h"
#include "ftp/fw_ftp.h"
#include "tcp/fw_tcp.h"
#include "tcp/tcp_fast.h"

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
	static const char *const timeouts[] = {
		"timeout udp-unreplied 5", "timeout udp-assured 50", "timeout tcp-established 100",
		"timeout tcp-syn-sent 7",  "timeout ftp-expect 30",
	};
	char err[256];
	struct fw_rule r;

	(void)state;
	fw_config_defaults(&conf);
	conf.max_conns = 1024;
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
		assert_int_equal(fw_config_set(&conf, timeouts[i], "test", err, sizeof(err)), 0);
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
	sh.tsc_hz = 1000000000;
	fw_id_secret_init(&sh.secret);
	/* two rows of hits: the two-worker test shares these rules */
	sh.rules = fw_rulegen_build(&conf.rules, 2, 1, 0, err, sizeof(err));
	assert_non_null(sh.rules);
	return fw_worker_init(&w, &sh, 0, 0);
}

static int teardown(void **state)
{
	(void)state;
	fw_worker_release(&w);
	fw_rulegen_free(&sh.rules);
	fw_config_release(&conf);
	return 0;
}

/*
 * The NIC's checksum verdicts count only from a port that was set to check: GOOD skips
 * the sum, BAD makes the frame malformed, anything else leaves it to the parser.
 */
static void test_worker_trusts_rx_checksum_flags_only_from_a_checking_port(void **state)
{
	struct fw_port_map checking = {.in_use = 1, .rx_ip_csum = 1}, plain = {.in_use = 1};
	struct rte_mbuf m;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	assert_int_equal(fw_worker_rx_checked(&checking, &m), FW_PARSE_IP_CSUM_GOOD);
	assert_int_equal(fw_worker_rx_checked(&plain, &m), 0);
	m.ol_flags = RTE_MBUF_F_RX_IP_CKSUM_BAD;
	assert_int_equal(fw_worker_rx_checked(&checking, &m), -1);
	assert_int_equal(fw_worker_rx_checked(&plain, &m), 0);
	m.ol_flags = RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN;
	assert_int_equal(fw_worker_rx_checked(&checking, &m), 0);
	m.ol_flags = RTE_MBUF_F_RX_IP_CKSUM_NONE;
	assert_int_equal(fw_worker_rx_checked(&checking, &m), 0);
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
	fw_rulegen_free(&sh.rules);
	assert_int_equal(fw_rule_parse("accept proto tcp", &r, err, sizeof(err)), 0);
	fw_ruleset_add(&conf.rules, &r);
	sh.rules = fw_rulegen_build(&conf.rules, 2, 2, 0, err, sizeof(err));
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

static enum fw_verdict icmp(uint8_t family, enum fw_zone zone, const uint8_t *src,
			    const uint8_t *dst, uint8_t type, uint8_t code, uint8_t hop,
			    const uint8_t *body, uint32_t blen)
{
	uint8_t f[FW_TEST_FRAME_MAX];
	uint32_t len = fw_test_icmp_af(f, family, src, dst, type, code, hop, body, blen);

	return fw_worker_handle(&w, f, len, zone, S(1));
}

static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
static const uint8_t solicited[16] = {0xff, 0x02, [11] = 1, 0xff, 0x00, 0x00, 0x02};
static const uint8_t link_local[16] = {0xfe, 0x80, [15] = 1};
static const uint8_t mld_routers[16] = {0xff, 0x02, [15] = 0x16};
static const uint8_t router6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x19, [14] = 0xff, 0xfe};
static const uint8_t router4[4] = {198, 19, 255, 254};

/*
 * IPv6 needs neighbour discovery to work at all: it crosses holdfast as ARP does, from
 * either side, under a drop policy and no ICMPv6 rule, and is counted; so does multicast
 * listener discovery. Only what cannot have crossed a router qualifies (hop limit 255;
 * MLD: 1, from a link-local source); the rest of ICMPv6 is for the rules.
 */
static void test_worker_ipv6_link_signalling_passes_like_arp(void **state)
{
	const uint8_t *in = fw_test_addr6[0], *out = fw_test_addr6[1];
	uint8_t target[20] = {0};

	(void)state;
	memcpy(target + 4, out, 16);
	/* NS from inside, NA back from outside, RS, RA, and a redirect */
	assert_int_equal(icmp(6, FW_ZONE_INSIDE, in, solicited, 135, 0, 255, target, 20), FW_PASS);
	assert_int_equal(icmp(6, FW_ZONE_OUTSIDE, out, in, 136, 0, 255, target, 20), FW_PASS);
	assert_int_equal(icmp(6, FW_ZONE_INSIDE, link_local, all_nodes, 133, 0, 255, NULL, 0),
			 FW_PASS);
	assert_int_equal(icmp(6, FW_ZONE_OUTSIDE, link_local, all_nodes, 134, 0, 255, NULL, 0),
			 FW_PASS);
	assert_int_equal(icmp(6, FW_ZONE_OUTSIDE, link_local, in, 137, 0, 255, target, 20),
			 FW_PASS);
	/* an MLDv2 report, with its hop-by-hop router alert (ip-options drop applies not) */
	{
		uint8_t f[FW_TEST_FRAME_MAX];
		uint32_t len = fw_test_icmp_af(f, 6, link_local, mld_routers, 143, 0, 1, NULL, 0);

		memmove(f + 14 + 40 + 8, f + 14 + 40, len - 14 - 40);
		f[14 + 6] = 0; /* hop-by-hop first, then ICMPv6 */
		f[14 + 40] = 58;
		f[14 + 40 + 2] = 5; /* router alert */
		f[14 + 40 + 3] = 2;
		f[14 + 5] = 16;
		assert_int_equal(fw_worker_handle(&w, f, len + 8, FW_ZONE_INSIDE, S(1)), FW_PASS);
	}
	assert_true(w.cnt.nd == 6 && w.cnt.drop[FW_DROP_POLICY] == 0);
	/* routed (hop limit below 255), an MLD report from a global address, an echo: rules */
	assert_int_equal(icmp(6, FW_ZONE_OUTSIDE, out, in, 136, 0, 64, target, 20), FW_DROP);
	assert_int_equal(icmp(6, FW_ZONE_INSIDE, in, mld_routers, 143, 0, 1, NULL, 0), FW_DROP);
	assert_int_equal(icmp(6, FW_ZONE_INSIDE, in, out, 128, 0, 64, NULL, 0), FW_DROP);
	assert_true(w.cnt.nd == 6 && w.cnt.drop[FW_DROP_POLICY] == 3);
}

/*
 * An ICMP error about a tracked connection passes, from wherever it comes (a router on
 * the path): path MTU discovery needs "packet too big" (IPv6) and "fragmentation needed"
 * (IPv4). About nothing tracked, or sent elsewhere than to the quoted packet's sender, it
 * is for the rules.
 */
static void test_worker_icmp_error_about_a_tracked_connection_passes(void **state)
{
	uint8_t q[FW_TEST_FRAME_MAX];
	uint32_t n;

	(void)state;
	for (int fam = 4; fam <= 6; fam += 2) {
		const uint8_t *in = fam == 4 ? fw_test_addr4[0] : fw_test_addr6[0];
		const uint8_t *router = fam == 4 ? router4 : router6;
		const uint8_t too_big = fam == 4 ? 3 : 2, code = fam == 4 ? 4 : 0;
		uint8_t f[FW_TEST_FRAME_MAX];
		uint32_t len;

		len = fw_test_frame_af(f, (uint8_t)fam, IPPROTO_TCP, 1000, 80, false, 0x02, 100, 0,
				       4096, NULL);
		assert_int_equal(fw_worker_handle(&w, f, len, FW_ZONE_INSIDE, S(1)), FW_PASS);
		/* the client's next segment, quoted back by a router beyond */
		n = fw_test_frame_af(q, (uint8_t)fam, IPPROTO_TCP, 1000, 80, false, 0x10, 101, 1,
				     4096, NULL);
		assert_int_equal(icmp((uint8_t)fam, FW_ZONE_OUTSIDE, router, in, too_big, code, 60,
				      q + 14, n - 14),
				 FW_PASS);
		/* about a connection nobody opened */
		n = fw_test_frame_af(q, (uint8_t)fam, IPPROTO_TCP, 1001, 80, false, 0x10, 101, 1,
				     4096, NULL);
		assert_int_equal(icmp((uint8_t)fam, FW_ZONE_OUTSIDE, router, in, too_big, code, 60,
				      q + 14, n - 14),
				 FW_DROP);
		/* about the tracked one, but sent to the server rather than to its sender */
		n = fw_test_frame_af(q, (uint8_t)fam, IPPROTO_TCP, 1000, 80, false, 0x10, 101, 1,
				     4096, NULL);
		assert_int_equal(icmp((uint8_t)fam, FW_ZONE_INSIDE, router,
				      fam == 4 ? fw_test_addr4[1] : fw_test_addr6[1], too_big, code,
				      60, q + 14, n - 14),
				 FW_DROP);
		/* quoting too little to name the ports */
		assert_int_equal(icmp((uint8_t)fam, FW_ZONE_OUTSIDE, router, in, too_big, code, 60,
				      q + 14, (fam == 4 ? 20 : 40) + 3),
				 FW_DROP);
	}
	assert_true(w.cnt.icmp_related == 2 && w.cnt.drop[FW_DROP_POLICY] == 6);
	sweep_all(S(1000));
}

/*
 * Through fw_worker_poll, over two ring ports: a frame whose IPv4 checksum is wrong but
 * flagged GOOD passes from a port that checks checksums (the NIC is trusted, the sum is not
 * recomputed) and is dropped from one that does not; one flagged BAD is dropped as
 * malformed even with a right checksum.
 */
static void test_worker_poll_takes_the_checking_ports_checksum_verdict(void **state)
{
	static struct rte_ring *rx[2], *tx[2];
	static struct rte_mempool *pool;
	uint8_t f[FW_TEST_FRAME_MAX];
	struct rte_mbuf *m, *got = NULL; /* -O3: GCC 12 cannot see the dequeue fill it */
	uint32_t len;

	(void)state;
	if (pool == NULL) {
		pool = rte_pktmbuf_pool_create("wt_pool", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
		assert_non_null(pool);
		for (int p = 0; p < 2; p++)
			assert_int_equal(fw_test_ring_port("wt", p, pool, &rx[p], &tx[p]), p);
	}
	for (uint16_t p = 0; p < 2; p++)
		sh.ports[p] = (struct fw_port_map){.peer = (uint16_t)!p,
						   .zone = p ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE,
						   .in_use = 1,
						   .rx_ip_csum = 1};
	sh.port_list[0] = 0;
	sh.port_list[1] = 1;
	sh.nports = 2;

	/* A SYN opening a connection, its IPv4 checksum broken, flagged GOOD: forwarded. */
	len = fw_test_frame(f, IPPROTO_TCP, 40000, 80, false, 0x02, 100, 0, 0xffff, NULL);
	f[14 + 8]--; /* TTL: the checksum no longer matches */
	m = rte_pktmbuf_alloc(pool);
	assert_non_null(m);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), f, len);
	m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	assert_int_equal(rte_ring_enqueue(rx[0], m), 0);
	fw_worker_poll(&w, S(1));
	assert_int_equal(w.cnt.conn_new, 1);
	assert_int_equal(rte_ring_dequeue(tx[1], (void **)&got), 0);
	assert_ptr_equal(got, m);
	rte_pktmbuf_free(got);

	/* The same from a port that does not check: the worker sums it, and drops it. */
	sh.ports[0].rx_ip_csum = 0;
	len = fw_test_frame(f, IPPROTO_TCP, 40001, 80, false, 0x02, 100, 0, 0xffff, NULL);
	f[14 + 8]--;
	m = rte_pktmbuf_alloc(pool);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), f, len);
	m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	assert_int_equal(rte_ring_enqueue(rx[0], m), 0);
	fw_worker_poll(&w, S(1));
	assert_int_equal(w.cnt.drop[FW_DROP_MALFORMED], 1);
	assert_int_equal(w.cnt.conn_new, 1);

	/* A right checksum the checking port flags BAD: malformed. */
	sh.ports[0].rx_ip_csum = 1;
	len = fw_test_frame(f, IPPROTO_TCP, 40002, 80, false, 0x02, 100, 0, 0xffff, NULL);
	m = rte_pktmbuf_alloc(pool);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), f, len);
	m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_BAD;
	assert_int_equal(rte_ring_enqueue(rx[0], m), 0);
	fw_worker_poll(&w, S(1));
	assert_int_equal(w.cnt.drop[FW_DROP_MALFORMED], 2);
	assert_int_equal(w.cnt.conn_new, 1);
	assert_int_equal(rte_ring_count(tx[1]), 0);
}

/* A frame of fw_test_frame()'s arguments in an mbuf of @p pool, onto @p ring. */
static void put_frame(struct rte_mempool *pool, struct rte_ring *ring, uint16_t sport, bool reply,
		      uint8_t flags, uint32_t seq, uint32_t ack)
{
	uint8_t f[FW_TEST_FRAME_MAX];
	uint32_t len =
		fw_test_frame(f, IPPROTO_TCP, sport, 80, reply, flags, seq, ack, 0xffff, NULL);
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	assert_non_null(m);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), f, len);
	assert_int_equal(rte_ring_enqueue(ring, m), 0);
}

/* Frames on @p ring, freed. */
static unsigned int take_all(struct rte_ring *ring)
{
	struct rte_mbuf *m[16];
	unsigned int n = rte_ring_dequeue_burst(ring, (void **)m, 16, NULL);

	rte_pktmbuf_free_bulk(m, n);
	return n;
}

/* fw_worker_handle() of a TCP frame carrying @p data on worker @p x (whoever owns it). */
static enum fw_verdict feed_on(struct fw_worker *x, uint16_t sport, uint16_t dport, bool reply,
			       uint8_t flags, uint32_t seq, uint32_t ack, const char *data,
			       uint64_t now)
{
	uint8_t f[FW_TEST_FRAME_MAX];
	uint32_t len =
		fw_test_frame(f, IPPROTO_TCP, sport, dport, reply, flags, seq, ack, 4096, data);

	return fw_worker_handle(x, f, len, reply ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE, now);
}

/* A port from @p from on whose connection to @p dport worker @p o of two owns. */
static uint16_t port_owned_by(unsigned int o, uint16_t from, uint16_t dport)
{
	struct fw_key key;

	for (uint16_t p = from;; p++) {
		fw_key_make(&key, 4, IPPROTO_TCP, fw_test_addr4[0], fw_test_addr4[1], htons(p),
			    htons(dport));
		if (fw_conn_owner(&key, 2) == o)
			return p;
	}
}

/* Worker @p x's FTP control connection from @p cport whose server announces @p line. */
static struct fw_conn *control_on(struct fw_worker *x, uint16_t cport, const char *line,
				  uint64_t now)
{
	struct fw_key key;

	assert_int_equal(feed_on(x, cport, 21, false, 0x02, 100, 0, NULL, now), FW_PASS);
	assert_int_equal(feed_on(x, cport, 21, true, 0x12, 900, 101, NULL, now), FW_PASS);
	assert_int_equal(feed_on(x, cport, 21, false, 0x10, 101, 901, NULL, now), FW_PASS);
	assert_int_equal(feed_on(x, cport, 21, true, 0x18, 901, 101, line, now), FW_PASS);
	fw_key_make(&key, 4, IPPROTO_TCP, fw_test_addr4[0], fw_test_addr4[1], htons(cport),
		    htons(21));
	return fw_table_lookup(x->table, &key);
}

/*
 * Two workers: an FTP control connection's expectation, made by its owner, admits the data
 * connection at the other worker, whose key it hashes to; once: a second connection to the
 * port is refused at either worker. At its next pass the owner's control connection forgets
 * it (its slice, checkpointed at once: a restore does not bring it back). An expectation
 * nobody uses runs out at its owner, and one whose master goes leaves with it.
 */
static void test_worker_expectation_seen_by_the_data_connections_owner(void **state)
{
	struct fw_shared sh2;
	struct fw_worker *ws;
	struct fw_conn *m;
	const uint16_t cport = port_owned_by(0, 1000, 21);
	const uint16_t d1 = port_owned_by(1, 40000, 50010);
	const uint16_t d2 = port_owned_by(0, 40000, 50011);
	uint16_t c2;
	uint64_t now = S(1);

	(void)state;
	fw_worker_release(&w); /* its table's name is worker 0's */
	memset(&sh2, 0, sizeof(sh2));
	sh2.conf = &conf;
	sh2.tsc_hz = 1000000000;
	sh2.nworkers = 2;
	sh2.secret = sh.secret;
	sh2.rules = sh.rules;
	ws = rte_zmalloc("wt3_workers", 2 * sizeof(*ws), RTE_CACHE_LINE_SIZE);
	assert_non_null(ws);
	assert_int_equal(fw_worker_init(&ws[0], &sh2, 0, 0), 0);
	assert_int_equal(fw_worker_init(&ws[1], &sh2, 1, 0), 0);
	assert_non_null(sh2.board);

	/* Worker 0's control connection announces 50010; the data connection is worker 1's. */
	m = control_on(&ws[0], cport, "227 Entering Passive Mode (198,19,0,2,195,90)\r\n", now);
	assert_non_null(m);
	assert_int_equal(fw_ftp_slice(m)->exp_mode, FW_FTP_EXP_PASSIVE);
	assert_int_equal(fw_board_count(sh2.board, 0), 1);
	assert_int_equal(fw_table_expect_count(ws[0].table), 0);
	assert_int_equal(feed_on(&ws[1], d1, 50010, false, 0x02, 5000, 0, NULL, now), FW_PASS);
	assert_true(ws[1].cnt.conn_related == 1 && ws[1].cnt.related_cross == 1);
	/* Used: nobody else gets in with it, at either worker. */
	assert_int_equal(
		feed_on(&ws[1], (uint16_t)(d1 + 1), 50010, false, 0x02, 6000, 0, NULL, now),
		FW_DROP);
	assert_int_equal(
		feed_on(&ws[0], (uint16_t)(d1 + 2), 50010, false, 0x02, 6000, 0, NULL, now),
		FW_DROP);
	assert_int_equal(ws[0].cnt.drop[FW_DROP_POLICY] + ws[1].cnt.drop[FW_DROP_POLICY], 2);
	/* The owner's next pass: the slice forgets it, due for its checkpoint at once. */
	m->dirty = 0;
	assert_int_equal(fw_worker_poll(&ws[0], now), 0);
	assert_int_equal(ws[0].cnt.expect_used_elsewhere, 1);
	assert_int_equal(fw_ftp_slice(m)->exp_mode, FW_FTP_EXP_NONE);
	assert_true((m->dirty & (1u << FW_MOD_FTP)) && (m->flags & FW_CONN_F_CKPT_NOW));
	assert_false(m->flags & FW_CONN_F_EXPECTING);
	assert_int_equal(fw_board_count(sh2.board, 0), 0);

	/* Its own data connection: used and forgotten at once, as with one worker. */
	c2 = port_owned_by(0, (uint16_t)(cport + 1), 21);
	m = control_on(&ws[0], c2, "227 Entering Passive Mode (198,19,0,2,195,91)\r\n", now);
	assert_non_null(m);
	assert_int_equal(feed_on(&ws[0], d2, 50011, false, 0x02, 5000, 0, NULL, now), FW_PASS);
	assert_int_equal(fw_ftp_slice(m)->exp_mode, FW_FTP_EXP_NONE);
	assert_true(ws[0].cnt.conn_related == 1 && ws[0].cnt.related_cross == 0 &&
		    ws[0].cnt.expect_used_elsewhere == 1);

	/* Unused, it runs out at its owner (ftp-expect 30 s); its master forgets it. */
	c2 = port_owned_by(0, (uint16_t)(c2 + 1), 21);
	m = control_on(&ws[0], c2, "227 Entering Passive Mode (198,19,0,2,195,92)\r\n", now);
	assert_non_null(m);
	assert_int_equal(fw_board_count(sh2.board, 0), 1);
	fw_worker_housekeep(&ws[1], now + S(31));
	assert_int_equal(fw_board_count(sh2.board, 0), 1); /* not worker 1's */
	fw_worker_housekeep(&ws[0], now + S(31));
	assert_int_equal(ws[0].cnt.expect_expired, 1);
	assert_int_equal(fw_board_count(sh2.board, 0), 0);
	assert_int_equal(fw_ftp_slice(m)->exp_mode, FW_FTP_EXP_NONE);
	assert_int_equal(feed_on(&ws[1], d1, 50012, false, 0x02, 5000, 0, NULL, now + S(31)),
			 FW_DROP);

	/* A master that goes takes its expectation off the board. */
	c2 = port_owned_by(0, (uint16_t)(c2 + 1), 21);
	assert_non_null(control_on(&ws[0], c2, "227 Entering Passive Mode (198,19,0,2,195,93)\r\n",
				   now + S(31)));
	assert_int_equal(fw_board_count(sh2.board, 0), 1);
	for (int i = 0; i < 1024; i++)
		fw_worker_housekeep(&ws[0], now + S(1000));
	assert_int_equal(fw_table_count(ws[0].table), 0);
	assert_int_equal(fw_board_count(sh2.board, 0), 0);

	fw_worker_release(&ws[1]);
	fw_worker_release(&ws[0]);
	assert_null(sh2.board);
	rte_free(ws);
	assert_int_equal(fw_worker_init(&w, &sh, 0, 0), 0);
}

/*
 * Two workers (worker @p w released first: its table's name is worker 0's) over two ring
 * ports of two queue pairs each, named after @p tag, port 0 inside; *@p ws the workers.
 * @return their mbuf pool.
 */
static struct rte_mempool *two_workers_up(const char *tag, struct fw_shared *sh2,
					  struct rte_ring *rx[2][2], struct rte_ring *tx[2][2],
					  struct fw_worker **ws)
{
	struct rte_mempool *pool;
	char n[32];

	fw_worker_release(&w);
	memset(sh2, 0, sizeof(*sh2));
	snprintf(n, sizeof(n), "%s_pool", tag);
	pool = rte_pktmbuf_pool_create(n, 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	assert_non_null(pool);
	for (int p = 0; p < 2; p++) {
		struct rte_eth_conf ec = {0};
		int id;

		for (int q = 0; q < 2; q++) {
			snprintf(n, sizeof(n), "%s_rx%d%d", tag, p, q);
			rx[p][q] = rte_ring_create(n, 64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
			snprintf(n, sizeof(n), "%s_tx%d%d", tag, p, q);
			tx[p][q] = rte_ring_create(n, 64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		}
		snprintf(n, sizeof(n), "%s_ring%d", tag, p);
		id = rte_eth_from_rings(n, rx[p], 2, tx[p], 2, 0);
		assert_true(id >= 0 && id < FW_MAX_PORTS);
		assert_int_equal(rte_eth_dev_configure((uint16_t)id, 2, 2, &ec), 0);
		for (uint16_t q = 0; q < 2; q++) {
			assert_int_equal(rte_eth_rx_queue_setup((uint16_t)id, q, 64, 0, NULL, pool),
					 0);
			assert_int_equal(rte_eth_tx_queue_setup((uint16_t)id, q, 64, 0, NULL), 0);
		}
		assert_int_equal(rte_eth_dev_start((uint16_t)id), 0);
		sh2->port_list[p] = (uint16_t)id;
	}
	sh2->conf = &conf;
	sh2->tsc_hz = 1000000000;
	sh2->nports = 2;
	sh2->nworkers = 2;
	sh2->secret = sh.secret;
	sh2->rules = sh.rules;
	for (int p = 0; p < 2; p++)
		sh2->ports[sh2->port_list[p]] =
			(struct fw_port_map){.peer = sh2->port_list[!p],
					     .zone = p ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE,
					     .in_use = 1};
	*ws = rte_zmalloc(tag, 2 * sizeof(**ws), RTE_CACHE_LINE_SIZE);
	assert_non_null(*ws);
	assert_int_equal(fw_worker_init(&(*ws)[0], sh2, 0, 0), 0);
	assert_int_equal(fw_worker_init(&(*ws)[1], sh2, 1, 0), 0);
	assert_non_null(sh2->inbox[0]);
	assert_non_null(sh2->inbox[1]);
	assert_non_null(sh2->board);
	return pool;
}

/* Undo two_workers_up(); every mbuf back in the pool; worker @p w as setup() made it. */
static void two_workers_down(struct fw_shared *sh2, struct fw_worker *ws, struct rte_mempool *pool)
{
	fw_worker_release(&ws[0]);
	fw_worker_release(&ws[1]);
	assert_null(sh2->inbox[0]);
	assert_null(sh2->board);
	assert_int_equal(rte_mempool_in_use_count(pool), 0);
	rte_free(ws);
	for (int p = 0; p < 2; p++) {
		rte_eth_dev_stop(sh2->port_list[p]);
		rte_eth_dev_close(sh2->port_list[p]);
	}
	rte_mempool_free(pool);
	assert_int_equal(fw_worker_init(&w, &sh, 0, 0), 0);
}

/*
 * Two workers over two ring ports of two queue pairs each: a connection lives in the table
 * of its owner (fw_conn_owner of its key, the same both ways) whichever queue its frames
 * arrive on. Frames that reach the other worker are handed to the owner's inbox and
 * decided there in their order, leaving by the owner's queue; the owner's own queue needs
 * no hand-off. Nothing is dropped as no_conn.
 */
static void test_worker_hands_frames_to_the_connections_owner(void **state)
{
	static struct rte_ring *rx[2][2], *tx[2][2];
	struct rte_mempool *pool;
	struct fw_shared sh2;
	struct fw_worker *ws;
	struct fw_key key;
	uint16_t sport = 41000;
	uint8_t a[4], b[4];

	(void)state;
	pool = two_workers_up("wt2", &sh2, rx, tx, &ws);

	/* A connection worker 1 owns; both directions agree. */
	memcpy(a, fw_test_addr4[0], 4);
	memcpy(b, fw_test_addr4[1], 4);
	for (;; sport++) {
		fw_key_make(&key, 4, IPPROTO_TCP, a, b, htons(sport), htons(80));
		if (fw_conn_owner(&key, 2) == 1)
			break;
	}
	fw_key_make(&key, 4, IPPROTO_TCP, b, a, htons(80), htons(sport));
	assert_int_equal(fw_conn_owner(&key, 2), 1);

	/* The SYN reaches worker 0's queue: handed over, opened and forwarded by worker 1. */
	put_frame(pool, rx[0][0], sport, false, 0x02, 100, 0);
	fw_worker_poll(&ws[0], S(1));
	assert_int_equal(ws[0].cnt.handoff_out, 1);
	assert_int_equal(ws[0].cnt.conn_new, 0);
	assert_int_equal(fw_table_count(ws[0].table), 0);
	assert_int_equal(rte_ring_count(tx[1][0]), 0);
	fw_worker_poll(&ws[1], S(1));
	assert_int_equal(ws[1].cnt.handoff_in, 1);
	assert_int_equal(ws[1].cnt.conn_new, 1);
	assert_int_equal(fw_table_count(ws[1].table), 1);
	assert_int_equal(take_all(tx[1][1]), 1);

	/* The SYN-ACK on worker 1's own queue: no hand-off. */
	put_frame(pool, rx[1][1], sport, true, 0x12, 900, 101);
	fw_worker_poll(&ws[1], S(1));
	assert_int_equal(ws[1].cnt.handoff_in, 1);
	assert_int_equal(take_all(tx[0][1]), 1);

	/* The kernel moves the flow: three segments in order on worker 0's queue of port 0. */
	put_frame(pool, rx[0][0], sport, false, 0x10, 101, 901);
	put_frame(pool, rx[0][0], sport, false, 0x18, 101, 901);
	put_frame(pool, rx[0][0], sport, false, 0x10, 101, 901);
	fw_worker_poll(&ws[0], S(2));
	assert_int_equal(ws[0].cnt.handoff_out, 4);
	fw_worker_poll(&ws[1], S(2));
	assert_int_equal(ws[1].cnt.handoff_in, 4);
	assert_int_equal(take_all(tx[1][1]), 3);
	assert_int_equal(ws[1].cnt.pass, 5);
	assert_int_equal(ws[0].cnt.drop[FW_DROP_NO_CONN] + ws[1].cnt.drop[FW_DROP_NO_CONN], 0);
	assert_int_equal(ws[0].cnt.pass, 0);

	/* Worker 0's own connections stay with it. */
	for (sport++;; sport++) {
		fw_key_make(&key, 4, IPPROTO_TCP, a, b, htons(sport), htons(80));
		if (fw_conn_owner(&key, 2) == 0)
			break;
	}
	put_frame(pool, rx[0][0], sport, false, 0x02, 100, 0);
	fw_worker_poll(&ws[0], S(3));
	assert_int_equal(ws[0].cnt.handoff_out, 4);
	assert_int_equal(ws[0].cnt.conn_new, 1);
	assert_int_equal(take_all(tx[1][0]), 1);

	/* A frame handed over and never drained is freed with its inbox. */
	put_frame(pool, rx[1][1], sport, true, 0x12, 900, 101);
	fw_worker_poll(&ws[1], S(3));
	assert_int_equal(rte_ring_count(sh2.inbox[0]), 1);
	two_workers_down(&sh2, ws, pool);
}

/* A TCP frame of fw_test_frame()'s arguments to @p dport in an mbuf of @p pool, onto @p ring. */
static void put_frame_to(struct rte_mempool *pool, struct rte_ring *ring, uint16_t sport,
			 uint16_t dport, uint8_t flags, uint32_t seq)
{
	uint8_t f[FW_TEST_FRAME_MAX];
	uint32_t len =
		fw_test_frame(f, IPPROTO_TCP, sport, dport, false, flags, seq, 0, 0xffff, NULL);
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	assert_non_null(m);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), f, len);
	assert_int_equal(rte_ring_enqueue(ring, m), 0);
}

/*
 * A data connection that another worker's expectation admitted: its SYN leaves only once
 * the expectation's owner made its control connection forget it and handed that to its
 * checkpoint. Were it sent at once, a kill -9 before the owner's next pass would restore
 * the expectation while the connection it admitted was made: one more connection to a
 * port already used. The owner's checkpointer here writes to pmem: inline, so "handed" is
 * "written": the slice is clean when the SYN leaves. An owner that stalls past
 * FW_WORKER_HELD_NS costs the SYN (the client sends it again, and the connection, made
 * already, takes it); held frames go when their worker is released.
 */
static void test_worker_holds_a_data_syn_until_the_owner_checkpointed_its_use(void **state)
{
	static struct rte_ring *rx[2][2], *tx[2][2];
	struct fw_ckpt_layout cc = {
		.region = "held",
		.store_size = 16u << 20,
		.pairs = 1024,
		.slot_size = 128,
		.log_size = 256u << 10,
		.tenant = "holdfast",
	};
	struct rte_mempool *pool;
	struct fw_checkpointer *k;
	struct fw_shared sh2;
	struct fw_worker *ws;
	struct fw_conn *m;
	char store[64], target[80];
	const uint16_t cport = port_owned_by(0, 1000, 21);
	const uint16_t d1 = port_owned_by(1, 40000, 50010);
	const uint16_t d2 = port_owned_by(1, 40000, 50011);
	const uint8_t ftp = 1u << FW_MOD_FTP;
	uint64_t now = S(1);

	(void)state;
	pool = two_workers_up("wt4", &sh2, rx, tx, &ws);
	snprintf(store, sizeof(store), "/dev/shm/hf-held.%d", getpid());
	snprintf(target, sizeof(target), "pmem:%s", store);
	unlink(store);
	cc.target = target;
	k = fw_checkpointer_create(&cc, 0, ws[0].table, 1024, 0, 0);
	assert_non_null(k);
	fw_worker_set_checkpointer(&ws[0], k);

	/* Worker 0's control connection announces 50010, written; the data is worker 1's. */
	m = control_on(&ws[0], cport, "227 Entering Passive Mode (198,19,0,2,195,90)\r\n", now);
	assert_non_null(m);
	for (int i = 0; i < 10 && m->dirty; i++)
		fw_checkpointer_tick(k, now += 1000000);
	assert_int_equal(m->dirty, 0);
	assert_int_equal(fw_ftp_slice(m)->exp_mode, FW_FTP_EXP_PASSIVE);

	/* The SYN on worker 1's queue: the connection is made, the frame waits. */
	put_frame_to(pool, rx[0][1], d1, 50010, 0x02, 5000);
	fw_worker_poll(&ws[1], now);
	assert_int_equal(ws[1].cnt.related_cross, 1);
	assert_int_equal(ws[1].cnt.held, 1);
	assert_int_equal(fw_table_count(ws[1].table), 1);
	assert_int_equal(rte_ring_count(tx[1][1]), 0);
	fw_worker_poll(&ws[1], now + 1000);
	assert_int_equal(rte_ring_count(tx[1][1]), 0);
	assert_int_equal(fw_ftp_slice(m)->exp_mode, FW_FTP_EXP_PASSIVE);

	/* The owner's pass: the slice forgets it and is written; then the SYN leaves. */
	fw_worker_poll(&ws[0], now + 2000);
	assert_int_equal(ws[0].cnt.expect_used_elsewhere, 1);
	assert_int_equal(fw_ftp_slice(m)->exp_mode, FW_FTP_EXP_NONE);
	assert_false(m->dirty & ftp);
	assert_int_equal(fw_checkpointer_lag(k), 0);
	assert_int_equal(rte_ring_count(tx[1][1]), 0);
	fw_worker_poll(&ws[1], now + 3000);
	assert_int_equal(take_all(tx[1][1]), 1);
	assert_int_equal(ws[1].cnt.tx[sh2.port_list[1]], 1);
	assert_int_equal(ws[1].cnt.held_dropped, 0);
	assert_int_equal(ws[1].nheld, 0);

	/* An owner that does not settle in time: the held SYN is dropped, its retransmission
	 * passes by the connection made (no expectation needed), once the owner did. */
	now += S(1);
	assert_non_null(control_on(&ws[0], port_owned_by(0, (uint16_t)(cport + 1), 21),
				   "227 Entering Passive Mode (198,19,0,2,195,91)\r\n", now));
	put_frame_to(pool, rx[0][1], d2, 50011, 0x02, 7000);
	fw_worker_poll(&ws[1], now);
	assert_int_equal(ws[1].cnt.held, 2);
	fw_worker_poll(&ws[1], now + FW_WORKER_HELD_NS + 1);
	assert_int_equal(ws[1].cnt.held_dropped, 1);
	assert_int_equal(rte_ring_count(tx[1][1]), 0);
	fw_worker_poll(&ws[0], now + FW_WORKER_HELD_NS + 2);
	put_frame_to(pool, rx[0][1], d2, 50011, 0x02, 7000);
	fw_worker_poll(&ws[1], now + FW_WORKER_HELD_NS + 3);
	assert_int_equal(take_all(tx[1][1]), 1);
	assert_int_equal(ws[1].cnt.held, 2);

	/* A frame still held when its worker goes is freed (two_workers_down counts). */
	now += S(1);
	assert_non_null(control_on(&ws[0], port_owned_by(0, (uint16_t)(cport + 2000), 21),
				   "227 Entering Passive Mode (198,19,0,2,195,92)\r\n", now));
	put_frame_to(pool, rx[0][1], port_owned_by(1, 41000, 50012), 50012, 0x02, 9000);
	fw_worker_poll(&ws[1], now);
	assert_int_equal(ws[1].nheld, 1);

	fw_worker_set_checkpointer(&ws[0], NULL);
	fw_checkpointer_destroy(&k);
	unlink(store);
	two_workers_down(&sh2, ws, pool);
}

/* The next of a fixed-seed sequence (xorshift64). */
static uint32_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 16);
}

/*
 * A segment of an established connection at one of the edges TCP's window checks and
 * updates compare with (tcp_fast.h), or one off it either way (@p r picks which): the
 * acknowledgement at the receiver's end or at its end less the sender's largest window; the
 * sequence at the furthest the receiver allowed; the segment's end at the sender's end less
 * the receiver's largest window; the window reaching just to the receiver's maxend; the
 * segment's end at the sender's checkpoint threshold. @p snd and @p rcv: the tracked sides,
 * sender first. Random segments land on these edges about never (a window is 2^32 wide).
 */
static void edge(const struct fw_tcp_dir *snd, const struct fw_tcp_dir *rcv, uint32_t r,
		 uint32_t *seq, uint32_t *ack, uint32_t *len, uint16_t *win)
{
	const uint32_t d = (r >> 8) % 3 - 1; /* -1, 0 or +1, unsigned */
	uint32_t want;

	switch (r % 6) {
	case 0:
		*ack = rcv->end + d;
		break;
	case 1:
		*ack = rcv->end - snd->maxwin + d;
		break;
	case 2:
		*seq = snd->maxend + d;
		break;
	case 3:
		*seq = snd->end - rcv->maxwin - *len + d;
		break;
	case 4:
		want = (rcv->maxend - *ack) >> snd->scale;
		*win = (uint16_t)(want > UINT16_MAX ? UINT16_MAX : want + d);
		break;
	default:
		/* Data ending at the sender's checkpoint threshold (its end may jump there). */
		*seq = snd->ck_end + fw_tcp_edge_threshold(rcv->maxwin) + d - *len;
		break;
	}
}

/*
 * The fast lane of established TCP segments (fw_worker.c, pass_established) decides as the
 * general path does: two workers, one fed through fw_worker_handle, the other through
 * fw_worker_handle_full (TCP's full path too), get the same random segments of a few
 * connections -- in-window and not, old and new acknowledgements, with and without data,
 * any window, segments at and around the window's edges (edge()), now and then a FIN, an
 * RST or a SYN -- among them an FTP control connection whose server announces a passive
 * port, which its helper must see (the lane leaves it alone). After every segment:
 * the same verdict, the same counters, the same connection byte for byte (its hot line
 * and its cold part), the same expectations.
 */
static void test_worker_fast_lane_decides_as_the_full_path(void **state)
{
	static const uint16_t dports[] = {80, 80, 80, 21};
	static const char pasv[] = "227 Entering Passive Mode (198,19,0,2,195,90)\r\n";
	enum {
		FLOWS = sizeof(dports) / sizeof(dports[0]),
		SEGMENTS = 20000
	};
	uint32_t next[FLOWS][2]; /* each side's next sequence number */
	struct fw_worker *full;
	unsigned int lane = 0, drops = 0, reopened = 0, edges = 0;
	uint64_t x = 0x9e3779b97f4a7c15ull, now = S(1);
	char data[128];

	(void)state;
	full = rte_zmalloc("wt_full", sizeof(*full), RTE_CACHE_LINE_SIZE);
	assert_non_null(full);
	assert_int_equal(fw_worker_init(full, &sh, 1, 0), 0);
	/* An expectation's deadline is on the wall clock, each worker's measured at init. */
	full->ctx.wall_offset_ns = w.ctx.wall_offset_ns;
	for (unsigned int i = 0; i < FLOWS; i++) {
		next[i][0] = rnd(&x);
		next[i][1] = rnd(&x);
	}
	for (unsigned int n = 0; n < SEGMENTS; n++) {
		const unsigned int i = rnd(&x) % FLOWS;
		const uint16_t sport = (uint16_t)(40000 + i);
		const unsigned int kind = rnd(&x) % 100;
		bool reply = rnd(&x) & 1;
		uint8_t flags = 0x10 | (rnd(&x) & 1 ? 0x08 : 0); /* ACK, PSH or not */
		uint32_t seq, ack, len = rnd(&x) % 4 ? 0 : rnd(&x) % (sizeof(data) - 1);
		uint16_t win = rnd(&x) % 8 ? 4096 : (uint16_t)rnd(&x);
		uint8_t f1[FW_TEST_FRAME_MAX], f2[FW_TEST_FRAME_MAX];
		struct fw_conn *c1, *c2;
		enum fw_verdict v1, v2;
		unsigned int state;
		struct fw_key key;
		uint32_t flen;

		fw_key_make(&key, 4, IPPROTO_TCP, fw_test_addr4[0], fw_test_addr4[1], htons(sport),
			    htons(dports[i]));
		c1 = fw_table_lookup(w.table, &key);
		state = c1 != NULL ? fw_tcp_slice(c1)->state : FW_TCP_NONE;
		seq = next[i][reply] - (kind >= 90 ? rnd(&x) % 3000 : 0); /* some resent */
		ack = next[i][!reply] - (kind >= 80 && kind < 90 ? rnd(&x) % 70000 : 0);
		if (kind >= 70 && kind < 75)
			seq += rnd(&x); /* anywhere */
		if (state != FW_TCP_ESTABLISHED && kind < 75) {
			/* Mostly back to ESTABLISHED: open, answer, acknowledge, or reset. */
			len = 0;
			reply = state == FW_TCP_SYN_SENT;
			if (state == FW_TCP_NONE || state == FW_TCP_CLOSE ||
			    state == FW_TCP_TIME_WAIT) {
				flags = 0x02;
				next[i][0] = rnd(&x);
			} else if (state == FW_TCP_SYN_SENT) {
				flags = 0x12;
				next[i][1] = rnd(&x);
			} else {
				flags = state == FW_TCP_SYN_RECV ? 0x10 : 0x04;
			}
			seq = next[i][reply];
			ack = next[i][!reply];
		} else if (kind < 1) {
			flags = 0x11; /* FIN */
		} else if (kind < 2) {
			flags = 0x04; /* RST */
		} else if (kind >= 55 && kind < 70 && state == FW_TCP_ESTABLISHED) {
			const struct fw_tcp_slice *t = fw_tcp_slice(c1);

			/* Every connection opened from the inside: reply is its direction. */
			edge(&t->d[reply], &t->d[!reply], rnd(&x), &seq, &ack, &len, &win);
			edges++;
		}
		if (dports[i] == 21 && reply && kind >= 50 && kind < 55) {
			memcpy(data, pasv, sizeof(pasv));
			len = (uint32_t)strlen(pasv);
		} else {
			memset(data, 'x', len);
			data[len] = '\0';
		}
		flen = fw_test_frame(f1, IPPROTO_TCP, sport, dports[i], reply, flags, seq,
				     flags & 0x10 ? ack : 0, win, len ? data : NULL);
		memcpy(f2, f1, flen);
		/* A segment the lane may take: ACK (PSH) only, of an established plain one. */
		if (state == FW_TCP_ESTABLISHED && (flags & ~0x08) == 0x10 &&
		    c1->present == 1u << FW_MOD_TCP)
			lane++;
		now += rnd(&x) % 1000000;
		v1 = fw_worker_handle(&w, f1, flen, reply ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE, now);
		v2 = fw_worker_handle_full(full, f2, flen, reply ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE,
					   now);
		assert_int_equal(v1, v2);
		assert_memory_equal(&w.cnt, &full->cnt, sizeof(w.cnt));
		c1 = fw_table_lookup(w.table, &key);
		c2 = fw_table_lookup(full->table, &key);
		assert_true((c1 == NULL) == (c2 == NULL));
		if (c1 != NULL) {
			assert_memory_equal(c1, c2, sizeof(*c1));
			assert_memory_equal(fw_conn_cold(c1), fw_conn_cold(c2),
					    sizeof(struct fw_conn_cold));
		}
		assert_int_equal(fw_table_expect_count(w.table),
				 fw_table_expect_count(full->table));
		if (v1 == FW_PASS) {
			reopened += flags == 0x02 && state != FW_TCP_NONE;
			if (flags & 0x04)
				continue;
			if (flags & 0x02)
				next[i][reply] = seq + 1;
			else if (seq + len + !!(flags & 0x01) - next[i][reply] < (1u << 31))
				next[i][reply] = seq + len + !!(flags & 0x01);
		} else {
			drops++;
		}
	}
	/* The stream went through the lane, and past its edges. */
	assert_true(lane > SEGMENTS / 4);
	assert_true(drops > SEGMENTS / 50);
	assert_true(reopened > FLOWS);
	assert_true(edges > SEGMENTS / 20);
	fw_worker_release(full);
	rte_free(full);
}

/*
 * A segment of an established TCP connection reads and writes its connection's hot line
 * only (fw_conn.h): with the table's cold plane unreadable, 64 established connections
 * carry data both ways through the fast lane (and ACKs through the full path) without a
 * fault. Whatever on that path touched a key, an ID, the checkpoint bookkeeping or a cold
 * slice would fault here.
 */
static void test_worker_established_segments_touch_only_hot_lines(void **state)
{
	enum {
		CONNS = 64,
		ROUNDS = 20
	};
	uintptr_t plane;
	size_t len;

	(void)state;
	for (uint16_t i = 0; i < CONNS; i++) {
		const uint16_t p = (uint16_t)(30000 + i);

		assert_int_equal(feed(IPPROTO_TCP, p, 80, false, 0x02, 100, 0, S(1)), FW_PASS);
		assert_int_equal(feed(IPPROTO_TCP, p, 80, true, 0x12, 900, 101, S(1)), FW_PASS);
		assert_int_equal(feed(IPPROTO_TCP, p, 80, false, 0x10, 101, 901, S(1)), FW_PASS);
	}
	assert_int_equal(fw_table_count(w.table), CONNS);
	/* The cold plane: a plane past the hot one's base, a 256-byte part per position. */
	plane = ((uintptr_t)fw_table_at(w.table, 0) & ~(uintptr_t)(FW_CONN_PLANE - 1)) +
		FW_CONN_PLANE;
	assert_ptr_equal(fw_conn_cold(fw_table_at(w.table, 0)), (void *)plane);
	len = ((size_t)fw_table_slots(w.table) * sizeof(struct fw_conn_cold) + 4095) & ~4095ul;
	assert_int_equal(mprotect((void *)plane, len, PROT_NONE), 0);
	for (uint32_t r = 0; r < ROUNDS; r++) {
		for (uint16_t i = 0; i < CONNS; i++) {
			const uint16_t p = (uint16_t)(30000 + i);

			assert_int_equal(feed_data(p, 80, false, 0x18, 101 + 4 * r, 901 + 5 * r,
						   "data", S(2) + r),
					 FW_PASS);
			assert_int_equal(feed_data(p, 80, true, 0x18, 901 + 5 * r, 105 + 4 * r,
						   "reply", S(2) + r),
					 FW_PASS);
			assert_int_equal(feed(IPPROTO_TCP, p, 80, false, 0x10, 105 + 4 * r,
					      906 + 5 * r, S(2) + r),
					 FW_PASS);
		}
	}
	assert_int_equal(mprotect((void *)plane, len, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(w.cnt.pass, CONNS * (3 + 3 * ROUNDS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_trusts_rx_checksum_flags_only_from_a_checking_port),
		cmocka_unit_test_setup_teardown(
			test_worker_poll_takes_the_checking_ports_checksum_verdict, setup,
			teardown),
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
		cmocka_unit_test_setup_teardown(test_worker_ipv6_link_signalling_passes_like_arp,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_worker_icmp_error_about_a_tracked_connection_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_worker_holds_a_data_syn_until_the_owner_checkpointed_its_use, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_worker_hands_frames_to_the_connections_owner,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_worker_expectation_seen_by_the_data_connections_owner, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_worker_established_segments_touch_only_hot_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_fast_lane_decides_as_the_full_path,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
