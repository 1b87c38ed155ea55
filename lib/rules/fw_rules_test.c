/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fw_test_eal.h"

#include "fw_rules.h"

static void test_rule_parse_full_ipv4_rule(void **state)
{
	struct fw_rule r;
	char err[128];

	(void)state;
	assert_int_equal(fw_rule_parse("accept from inside proto tcp src 198.18.0.0/15 "
				       "sport 1024-65535 dst 198.19.0.10 dport 80",
				       &r, err, sizeof(err)),
			 0);
	assert_int_equal(r.action, FW_ACT_ACCEPT);
	assert_int_equal(r.zone, FW_ZONE_INSIDE);
	assert_int_equal(r.family, 4);
	assert_int_equal(r.proto, 6);
	assert_int_equal(r.src_len, 15);
	assert_int_equal(r.dst_len, 32);
	assert_int_equal(r.sport[0], 1024);
	assert_int_equal(r.sport[1], 65535);
	assert_int_equal(r.dport[0], 80);
	assert_int_equal(r.dport[1], 80);
	assert_int_equal(r.dst[3], 10);
}

static void test_rule_parse_ipv6_and_defaults(void **state)
{
	struct fw_rule r;
	char err[128];

	(void)state;
	assert_int_equal(fw_rule_parse("drop dst 2001:db8::/32", &r, err, sizeof(err)), 0);
	assert_int_equal(r.family, 6);
	assert_int_equal(r.dst_len, 32);
	assert_int_equal(r.proto, 0);
	assert_int_equal(r.zone, FW_ZONE_ANY);
	assert_int_equal(r.dport[1], 65535);
	assert_int_equal(fw_rule_parse("reject", &r, err, sizeof(err)), 0);
	assert_int_equal(r.action, FW_ACT_REJECT);
	assert_int_equal(r.family, 0);
}

static void expect_error(const char *text, const char *needle)
{
	struct fw_rule r;
	char err[160] = "";

	assert_int_equal(fw_rule_parse(text, &r, err, sizeof(err)), -EINVAL);
	if (strstr(err, needle) == NULL)
		fail_msg("'%s': error '%s' does not mention '%s'", text, err, needle);
}

static void test_rule_parse_rejects_every_error_class(void **state)
{
	(void)state;
	expect_error("", "empty rule");
	expect_error("allow", "unknown action");
	expect_error("accept from dmz", "from 'dmz'");
	expect_error("accept proto xyz", "proto 'xyz'");
	expect_error("accept proto 256", "proto '256'");
	expect_error("accept src 300.1.1.1", "src '300.1.1.1'");
	expect_error("accept src 10.0.0.1/24", "host bits");
	expect_error("accept src 10.0.0.0/33", "src '10.0.0.0/33'");
	expect_error("accept dst 10.0.0.0/", "dst '10.0.0.0/'");
	expect_error("accept src 10.0.0.0/8 dst 2001:db8::/32", "mixes IPv4 and IPv6");
	expect_error("accept family ip6 src 10.0.0.0/8", "mixes IPv4 and IPv6");
	expect_error("accept family ipx", "family 'ipx'");
	expect_error("accept proto tcp dport 70000", "dport '70000'");
	expect_error("accept proto tcp dport 90-80", "dport '90-80'");
	expect_error("accept proto tcp dport 80x", "dport '80x'");
	expect_error("accept dport 80", "ports need proto tcp or udp");
	expect_error("accept proto icmp sport 1", "ports need proto tcp or udp");
	expect_error("accept proto tcp dport", "'dport' needs a value");
	expect_error("accept proto icmpv6 src 10.0.0.0/8", "icmpv6 in an IPv4 rule");
	expect_error("accept colour blue", "unknown word 'colour'");
}

static void test_rule_format_round_trips_through_parse(void **state)
{
	static const char *const texts[] = {
		"accept from inside proto tcp src 198.18.0.0/15 sport 1024-65535 dst "
		"198.19.0.10/32 dport 80",
		"drop proto udp dst 2001:db8::/32 dport 53",
		"reject from outside family ip6 proto icmpv6",
		"accept proto 132",
		"drop",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct fw_rule a, b;
		char line[256], err[128];

		assert_int_equal(fw_rule_parse(texts[i], &a, err, sizeof(err)), 0);
		fw_rule_format(&a, line, sizeof(line));
		if (fw_rule_parse(line, &b, err, sizeof(err)) != 0)
			fail_msg("'%s' formatted as '%s': %s", texts[i], line, err);
		assert_memory_equal(&a, &b, sizeof(a));
	}
}

/* A parsed IPv4/IPv6 TCP or UDP packet without a frame behind it. */
static struct fw_parsed pkt(uint8_t family, uint8_t proto, const char *src, uint16_t sport,
			    const char *dst, uint16_t dport, uint8_t store[2][16])
{
	struct fw_parsed p = {.family = family, .proto = proto};

	memset(store, 0, 32);
	inet_pton(family == 4 ? AF_INET : AF_INET6, src, store[0]);
	inet_pton(family == 4 ? AF_INET : AF_INET6, dst, store[1]);
	p.saddr = store[0];
	p.daddr = store[1];
	p.sport = htons(sport);
	p.dport = htons(dport);
	return p;
}

static struct fw_acl *build(const char *const *lines, unsigned int n, enum fw_action policy)
{
	struct fw_ruleset rs = {.policy = policy};
	struct fw_acl *a;
	char err[160];

	for (unsigned int i = 0; i < n; i++) {
		struct fw_rule r;

		assert_int_equal(fw_rule_parse(lines[i], &r, err, sizeof(err)), 0);
		snprintf(r.origin, sizeof(r.origin), "test:%u", i + 1);
		assert_int_equal(fw_ruleset_add(&rs, &r), 0);
	}
	a = fw_acl_build(&rs, "t", 0, err, sizeof(err));
	if (a == NULL)
		fail_msg("build: %s (%s)", err, strerror(errno));
	fw_ruleset_clear(&rs);
	return a;
}

static void test_acl_first_match_wins_and_policy_applies(void **state)
{
	static const char *const lines[] = {
		"drop proto tcp dst 198.19.0.66 dport 80",
		"accept from inside proto tcp dst 198.19.0.0/16 dport 80-81",
		"accept from outside proto udp dport 53",
	};
	struct fw_acl *a = build(lines, 3, FW_ACT_DROP);
	uint8_t st[2][16];
	const struct fw_rule *m;
	struct fw_parsed p;

	(void)state;
	p = pkt(4, 6, "198.18.0.1", 40000, "198.19.0.10", 80, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, &m), FW_ACT_ACCEPT);
	assert_string_equal(m->origin, "test:2");
	/* same packet from the other side: no rule, policy */
	assert_int_equal(fw_acl_decide(a, FW_ZONE_OUTSIDE, &p, &m), FW_ACT_DROP);
	assert_null(m);
	/* earlier drop rule shadows the accept */
	p = pkt(4, 6, "198.18.0.1", 40000, "198.19.0.66", 80, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, &m), FW_ACT_DROP);
	assert_string_equal(m->origin, "test:1");
	/* port range edges */
	p = pkt(4, 6, "198.18.0.1", 40000, "198.19.0.10", 81, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, NULL), FW_ACT_ACCEPT);
	p = pkt(4, 6, "198.18.0.1", 40000, "198.19.0.10", 82, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, NULL), FW_ACT_DROP);
	/* prefix edge */
	p = pkt(4, 6, "198.18.0.1", 40000, "198.20.0.10", 80, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, NULL), FW_ACT_DROP);
	/* protocol */
	p = pkt(4, 17, "198.18.0.1", 40000, "198.19.0.10", 53, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_OUTSIDE, &p, NULL), FW_ACT_ACCEPT);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, NULL), FW_ACT_DROP);
	fw_acl_free(&a);
	assert_null(a);
}

static void test_acl_ipv6_prefixes_across_words(void **state)
{
	static const char *const lines[] = {
		"accept proto tcp src 2001:db8:1::/48 dst 2001:db8:ff00::/40 dport 443",
		"accept family ip6 proto udp",
	};
	struct fw_acl *a = build(lines, 2, FW_ACT_REJECT);
	uint8_t st[2][16];
	struct fw_parsed p;

	(void)state;
	p = pkt(6, 6, "2001:db8:1:5::1", 5000, "2001:db8:ff12::9", 443, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_OUTSIDE, &p, NULL), FW_ACT_ACCEPT);
	p = pkt(6, 6, "2001:db8:2::1", 5000, "2001:db8:ff12::9", 443, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_OUTSIDE, &p, NULL), FW_ACT_REJECT);
	p = pkt(6, 6, "2001:db8:1::1", 5000, "2001:db8:fe00::9", 443, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_OUTSIDE, &p, NULL), FW_ACT_REJECT);
	p = pkt(6, 17, "2001:db8:9::1", 5000, "2001:db8:9::2", 1, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, NULL), FW_ACT_ACCEPT);
	/* an IPv4 packet sees none of the IPv6 rules */
	p = pkt(4, 17, "198.18.0.1", 5000, "198.19.0.1", 1, st);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, NULL), FW_ACT_REJECT);
	fw_acl_free(&a);
}

static void test_acl_empty_ruleset_is_default_drop(void **state)
{
	struct fw_ruleset rs = {0};
	struct fw_acl *a = fw_acl_build(&rs, "e", 0, NULL, 0);
	uint8_t st[2][16];
	struct fw_parsed p = pkt(4, 6, "198.18.0.1", 1, "198.19.0.1", 2, st);

	(void)state;
	assert_non_null(a);
	assert_int_equal(fw_acl_decide(a, FW_ZONE_INSIDE, &p, NULL), FW_ACT_DROP);
	fw_acl_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_parse_full_ipv4_rule),
		cmocka_unit_test(test_rule_parse_ipv6_and_defaults),
		cmocka_unit_test(test_rule_parse_rejects_every_error_class),
		cmocka_unit_test(test_rule_format_round_trips_through_parse),
		cmocka_unit_test(test_acl_first_match_wins_and_policy_applies),
		cmocka_unit_test(test_acl_ipv6_prefixes_across_words),
		cmocka_unit_test(test_acl_empty_ruleset_is_default_drop),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
