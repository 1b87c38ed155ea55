/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fw_config.h"
#include "ftp/fw_ftp.h"
#include "tcp/fw_tcp.h"
#include "udp/fw_udp.h"

#define S(x) ((uint64_t)(x)*1000000000ull)

static char path[64];

static void write_file(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/holdfast-conf-test.%d", getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_config_reads_every_setting(void **state)
{
	const struct fw_tcp_conf *tcp;
	const struct fw_udp_conf *udp;
	const struct fw_ftp_conf *ftp;
	struct fw_config c;
	char err[256] = "";

	(void)state;
	fw_config_defaults(&c);
	write_file("# holdfast\n"
		   "pair 0 1 inside 1   # port 1 faces the inside\n"
		   "pair 2 3 inside 2\n"
		   "max-conns 4096\n"
		   "non-ip pass\n"
		   "fragments pass\n"
		   "ip-options drop\n"
		   "ftp-ports 21 2121\n"
		   "timeout tcp-established 3600\n"
		   "timeout udp-unreplied 10\n"
		   "policy reject\n"
		   "reject-rate 50\n"
		   "ckpt group:xor(2)=ofi+tcp://127.0.0.1:1,ofi+tcp://127.0.0.1:2,"
		   "ofi+tcp://127.0.0.1:3\n"
		   "ckpt-log-size 1M\n"
		   "lease-ms 2000\n"
		   "lease-lapse forward\n"
		   "ckpt-lcore 1\n"
		   "standby-poll-ms 5\n"
		   "standby yes\n"
		   "\n"
		   "rule accept from inside proto tcp dport 80\n"
		   "rule drop src 198.18.0.0/15\n");
	assert_int_equal(fw_config_load(&c, path, err, sizeof(err)), 0);
	assert_int_equal(fw_config_check(&c, err, sizeof(err)), 0);
	assert_int_equal(c.npairs, 2);
	assert_int_equal(c.pairs[0].inside, 1);
	assert_int_equal(c.pairs[1].port[0], 2);
	assert_int_equal(c.pairs[1].inside, 0);
	assert_int_equal(c.max_conns, 4096);
	assert_true(c.pass_non_ip && c.pass_fragments && !c.pass_ip_options);
	ftp = fw_modconf_get(&c.modconf, FW_MOD_FTP);
	assert_true(ftp->ports[0] == 21 && ftp->ports[1] == 2121 && ftp->ports[2] == 0);
	assert_true(c.ckpt_log_size == 1u << 20 && c.lease_ms == 2000 && c.standby_poll_ms == 5);
	assert_true(c.standby && c.lapse_forward && c.ckpt_lcore == 1);
	assert_int_equal(strncmp(c.ckpt_target, "group:xor(2)=", 13), 0);
	tcp = fw_modconf_get(&c.modconf, FW_MOD_TCP);
	udp = fw_modconf_get(&c.modconf, FW_MOD_UDP);
	assert_true(tcp->timeout_ns[FW_TCP_ESTABLISHED] == S(3600));
	assert_true(udp->timeout_unreplied_ns == S(10) && udp->timeout_replied_ns == S(10));
	assert_true(tcp->timeout_ns[FW_TCP_TIME_WAIT] == S(120)); /* default kept */
	assert_int_equal(c.rules.policy, FW_ACT_REJECT);
	assert_int_equal(c.reject_rate, 50);
	assert_int_equal(c.rules.n, 2);
	assert_non_null(strstr(c.rules.rules[0].origin, ":21"));
	assert_int_equal(c.rules.rules[1].action, FW_ACT_DROP);
	fw_config_release(&c);
	unlink(path);
}

static void expect_error(const char *text, const char *needle)
{
	struct fw_config c;
	char err[256] = "";
	int rc;

	fw_config_defaults(&c);
	write_file(text);
	rc = fw_config_load(&c, path, err, sizeof(err));
	if (rc == 0)
		rc = fw_config_check(&c, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	if (strstr(err, needle) == NULL)
		fail_msg("config '%s': error '%s' does not mention '%s'", text, err, needle);
	fw_config_release(&c);
	unlink(path);
}

static void test_config_errors_name_line_and_reason(void **state)
{
	(void)state;
	expect_error("max-conns 10\n", ":1: max-conns");
	expect_error("\n\nmax-conns lots\n", ":3: max-conns");
	expect_error("colour blue\n", ":1: unknown setting 'colour'");
	expect_error("pair 0 0 inside 0\n", ":1: pair: two different ports");
	expect_error("pair 0 1 inside 5\n", ":1: pair: two different ports");
	expect_error("pair 0 1\n", ":1: pair: expected");
	expect_error("pair 0 1 inside 0\npair 1 2 inside 2\n", "port 1 is in two pairs");
	expect_error("non-ip maybe\n", ":1: non-ip: pass or drop");
	expect_error("reject-rate fast\n", ":1: reject-rate");
	expect_error("ckpt nfs://x\n", ":1: ckpt: none, pmem:/path");
	expect_error("ckpt-size 10\n", ":1: ckpt-size");
	expect_error("ckpt-log-size 1k\n", ":1: ckpt-log-size: 0 (no standby)");
	expect_error("lease-ms 10\n", ":1: lease-ms: 50 to");
	expect_error("lease-lapse maybe\n", ":1: lease-lapse: hold (a standby may take over) or");
	expect_error("standby-poll-ms 0\n", ":1: standby-poll-ms");
	expect_error("ckpt-lcore second\n", ":1: ckpt-lcore: an lcore id (0 to 1023)");
	expect_error("ckpt-lcore 4096\n", ":1: ckpt-lcore: an lcore id");
	expect_error("standby maybe\n", ":1: standby: yes or no");
	expect_error("ckpt-region a2345678901234567890123456789012345678901234567890123456\n",
		     ":1: ckpt-region: at most 55 characters");
	expect_error("fragments\n", ":1: fragments: expected one value");
	expect_error("policy allow\n", ":1: policy");
	expect_error("timeout tcp-forever 5\n", ":1: timeout: unknown name 'tcp-forever'");
	expect_error("timeout udp-assured 0\n", ":1: timeout udp-assured");
	expect_error("ftp-ports 21 99999\n", ":1: ftp-ports: '99999'");
	expect_error("rule accept proto tcp dport 99999\n", ":1: rule: dport '99999'");
	expect_error("rule allow all\n", ":1: rule: unknown action");
	expect_error("rules iptables:foo\n", ":1: rules: expected nft:TABLE");
	expect_error("rules nft:fw\nrule accept\n", "not both");
	expect_error("ckpt-allow-shm maybe\n", ":1: ckpt-allow-shm: yes or no");
}

/*
 * shm is the operator's choice, in the config: a target (or a group member) on ofi+shm://
 * is refused without 'ckpt-allow-shm yes', and taken with it. holdfast used to grant it by
 * itself whenever the target started with ofi+shm://.
 */
static void test_config_shm_target_needs_the_operators_consent(void **state)
{
	struct fw_config c;
	char err[256] = "";

	(void)state;
	expect_error("ckpt ofi+shm://fw\n", "'ckpt-allow-shm yes' accepts that");
	expect_error("ckpt group:mirror=ofi+tcp://127.0.0.1:7411,ofi+shm://m2\n",
		     "shm checks no remote keys");
	expect_error("ckpt ofi+shm://fw\nckpt-allow-shm no\n", "ckpt-allow-shm yes");
	fw_config_defaults(&c);
	write_file("ckpt group:mirror=ofi+tcp://127.0.0.1:7411,ofi+shm://m2\nckpt-allow-shm yes\n");
	assert_int_equal(fw_config_load(&c, path, err, sizeof(err)), 0);
	assert_int_equal(fw_config_check(&c, err, sizeof(err)), 0);
	assert_true(c.ckpt_allow_shm);
	fw_config_release(&c);
	unlink(path);
	fw_config_defaults(&c);
	assert_false(c.ckpt_allow_shm);
	write_file("ckpt ofi+tcp://127.0.0.1:7411\n");
	assert_int_equal(fw_config_load(&c, path, err, sizeof(err)), 0);
	assert_int_equal(fw_config_check(&c, err, sizeof(err)), 0);
	fw_config_release(&c);
	unlink(path);
}

static void test_config_missing_file_is_reported(void **state)
{
	struct fw_config c;
	char err[256] = "";

	(void)state;
	fw_config_defaults(&c);
	assert_int_equal(fw_config_load(&c, "/nonexistent/holdfast.conf", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/holdfast.conf"));
}

/* The shipped example must load: it documents every setting, so it must not rot. */
static void test_config_example_file_loads(void **state)
{
	struct fw_config c;
	char err[256] = "", path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/config/holdfast.conf", SRC_DIR);
	fw_config_defaults(&c);
	if (fw_config_load(&c, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(fw_config_check(&c, err, sizeof(err)), 0);
	assert_int_equal(c.rules.n, 7);
	/* ICMPv6 from inside, as ICMP: IPv6 hosts ping out with the shipped rules too */
	assert_int_equal(c.rules.rules[5].action, FW_ACT_ACCEPT);
	assert_true(c.rules.rules[5].family == 6 && c.rules.rules[5].proto == 58);
	assert_int_equal(c.rules.rules[6].action, FW_ACT_REJECT);
	assert_string_equal(c.ckpt_target, FW_CKPT_DEFAULT_TARGET);
	assert_string_equal(c.ckpt_tenant, "holdfast");
	assert_int_equal(c.ckpt_lcore, FW_CKPT_LCORE_AUTO); /* shipped, and the default */
	fw_config_release(&c);
}

static void test_config_ckpt_lcore_words(void **state)
{
	struct fw_config c;
	char err[256] = "";

	(void)state;
	fw_config_defaults(&c);
	assert_int_equal(c.ckpt_lcore, FW_CKPT_LCORE_AUTO);
	assert_int_equal(fw_config_set(&c, "ckpt-lcore thread", "t", err, sizeof(err)), 0);
	assert_int_equal(c.ckpt_lcore, FW_CKPT_LCORE_THREAD);
	assert_int_equal(fw_config_set(&c, "ckpt-lcore inline", "t", err, sizeof(err)), 0);
	assert_int_equal(c.ckpt_lcore, FW_CKPT_LCORE_INLINE);
	assert_int_equal(fw_config_set(&c, "ckpt-lcore auto", "t", err, sizeof(err)), 0);
	assert_int_equal(c.ckpt_lcore, FW_CKPT_LCORE_AUTO);
	fw_config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_reads_every_setting),
		cmocka_unit_test(test_config_ckpt_lcore_words),
		cmocka_unit_test(test_config_errors_name_line_and_reason),
		cmocka_unit_test(test_config_shm_target_needs_the_operators_consent),
		cmocka_unit_test(test_config_missing_file_is_reported),
		cmocka_unit_test(test_config_example_file_loads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
