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

#include "ckptsrv.h"

static char path[64];
static char last_log[512];

static void capture(enum ckpt_log_level level, const char *component, const char *msg)
{
	(void)level;
	(void)component;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

static void write_conf(const char *text)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/hf-conf-test.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	ckpt_log_set(capture, CKPT_LOG_DEBUG);
	last_log[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	ckpt_log_set(NULL, CKPT_LOG_NOTICE);
	return 0;
}

static void test_config_file_sets_every_key(void **state)
{
	struct ckptsrv_config cfg = {0};

	(void)state;
	write_conf("# comment\n"
		   "pmem = /dev/shm/store   # trailing comment\n"
		   "size=64M\n"
		   "\n"
		   "  listen = ofi+tcp://127.0.0.1:7000\n"
		   "listen = ofi+shm://x\n"
		   "secret-file = /etc/secrets\n"
		   "allow-shm = yes\n"
		   "log-level = debug\n");
	assert_int_equal(ckptsrv_config_load(path, &cfg), 0);
	assert_string_equal(cfg.pmem, "/dev/shm/store");
	assert_true(cfg.size == 64ull << 20);
	assert_int_equal(cfg.nlisten, 2);
	assert_string_equal(cfg.listen[0], "ofi+tcp://127.0.0.1:7000");
	assert_string_equal(cfg.listen[1], "ofi+shm://x");
	assert_string_equal(cfg.secret_file, "/etc/secrets");
	assert_true(cfg.allow_shm);
	assert_false(cfg.format);
	assert_int_equal(cfg.log_level, CKPT_LOG_DEBUG);
}

static void test_config_errors_name_file_line_and_why(void **state)
{
	struct ckptsrv_config cfg = {0};
	char want[128];

	(void)state;
	write_conf("pmem = /x\nsize = 12 apples\n");
	assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: size: not a size", path);
	assert_non_null(strstr(last_log, want));
	unlink(path);

	write_conf("pmem /x\n");
	assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: expected \"key = value\"", path);
	assert_non_null(strstr(last_log, want));
	unlink(path);

	write_conf("allow-shm = maybe\n");
	assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, "allow-shm: expected true/false"));
	unlink(path);

	write_conf("colour = blue\n");
	assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, "colour: unknown key"));
	unlink(path);

	write_conf("listen = a\nlisten = b\nlisten = c\nlisten = d\nlisten = e\nlisten = f\n"
		   "listen = g\nlisten = h\nlisten = i\n");
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, ":9: listen: too many listeners"));
	assert_int_equal(ckptsrv_config_load("/nonexistent/hf.conf", &cfg), -ENOENT);
}

static void test_command_line_overrides_the_file(void **state)
{
	struct ckptsrv_config cfg;
	char *argv[] = {"ckptsrv",  "--config",		 path, "--size", "1G",
			"--listen", "ofi+tcp://[::1]:9", NULL};

	(void)state;
	write_conf("pmem = /p\nsize = 64M\nlisten = ofi+tcp://127.0.0.1:1\n"
		   "listen = ofi+tcp://127.0.0.1:2\nsecret-file = /s\n");
	assert_int_equal(ckptsrv_config_parse(7, argv, &cfg), 0);
	assert_string_equal(cfg.pmem, "/p");
	assert_true(cfg.size == 1ull << 30);
	assert_int_equal(cfg.nlisten, 1);
	assert_string_equal(cfg.listen[0], "ofi+tcp://[::1]:9");
	assert_false(cfg.allow_shm);
	assert_false(cfg.format); /* never unless asked */
}

/* Formatting wipes every region: it is asked for once, on a command line, never by a file. */
static void test_format_is_asked_for_by_the_flag_only(void **state)
{
	struct ckptsrv_config cfg;
	char *argv[] = {"ckptsrv",
			"--pmem",
			"/p",
			"--secret-file",
			"/s",
			"--listen",
			"ofi+tcp://127.0.0.1:1",
			"--format",
			NULL};
	char *with_file[] = {"ckptsrv", "--config", path, NULL};

	(void)state;
	path[0] = '\0';
	assert_int_equal(ckptsrv_config_parse(8, argv, &cfg), 0);
	assert_true(cfg.format);
	write_conf("pmem = /p\nlisten = ofi+tcp://127.0.0.1:1\nsecret-file = /s\nformat = yes\n");
	assert_int_equal(ckptsrv_config_parse(3, with_file, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, "format: only as the --format flag"));
}

static void test_limits_start_at_their_defaults_and_the_file_sets_them(void **state)
{
	struct ckptsrv_config cfg;
	char *argv[] = {"ckptsrv", "--config", path, NULL};

	(void)state;
	write_conf("pmem = /p\nsecret-file = /s\nlisten = ofi+tcp://127.0.0.1:1\n");
	assert_int_equal(ckptsrv_config_parse(3, argv, &cfg), 0);
	assert_int_equal(cfg.handshake_max, CKPTSRV_HANDSHAKE_MAX);
	assert_int_equal(cfg.handshake_timeout_ms, CKPTSRV_HANDSHAKE_TIMEOUT_MS);
	assert_int_equal(cfg.idle_timeout_ms, CKPTSRV_IDLE_TIMEOUT_MS);
	assert_int_equal(cfg.max_sessions, CKPTSRV_MAX_SESSIONS);
	assert_int_equal(cfg.log_burst, CKPTSRV_LOG_BURST);
	assert_int_equal(cfg.log_interval_ms, CKPTSRV_LOG_INTERVAL_MS);
	unlink(path);

	write_conf("pmem = /p\nsecret-file = /s\nlisten = ofi+tcp://127.0.0.1:1\n"
		   "handshake-max = 8\nhandshake-timeout-ms = 500\nidle-timeout-ms = 5000\n"
		   "max-sessions = 100\nlog-burst = 3\nlog-interval-ms = 1000\n");
	assert_int_equal(ckptsrv_config_parse(3, argv, &cfg), 0);
	assert_int_equal(cfg.handshake_max, 8);
	assert_int_equal(cfg.handshake_timeout_ms, 500);
	assert_int_equal(cfg.idle_timeout_ms, 5000);
	assert_int_equal(cfg.max_sessions, 100);
	assert_int_equal(cfg.log_burst, 3);
	assert_int_equal(cfg.log_interval_ms, 1000);
}

static void test_limit_flags_override_the_file(void **state)
{
	struct ckptsrv_config cfg;
	char *argv[] = {"ckptsrv", "--idle-timeout-ms", "7000", "--config",
			path,	   "--handshake-max=2", NULL};

	(void)state;
	write_conf("pmem = /p\nsecret-file = /s\nlisten = ofi+tcp://127.0.0.1:1\n"
		   "idle-timeout-ms = 9000\nhandshake-max = 32\nmax-sessions = 10\n");
	assert_int_equal(ckptsrv_config_parse(6, argv, &cfg), 0);
	assert_int_equal(cfg.idle_timeout_ms, 7000);
	assert_int_equal(cfg.handshake_max, 2);
	assert_int_equal(cfg.max_sessions, 10);
}

/* Each limit refuses what is not a number in its range, and says the range. */
static void test_limits_refuse_values_out_of_range(void **state)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{"handshake-max = 0", "handshake-max: expected a number from 1 to 4096"},
		{"handshake-max = 4097", "handshake-max: expected a number from 1 to 4096"},
		{"handshake-timeout-ms = 99", "handshake-timeout-ms: expected a number from 100"},
		{"handshake-timeout-ms = 2s", "handshake-timeout-ms: expected a number"},
		{"idle-timeout-ms = 4999", "idle-timeout-ms: expected a number from 5000"},
		{"idle-timeout-ms = -1", "idle-timeout-ms: expected a number"},
		{"idle-timeout-ms = 99999999999999999999", "idle-timeout-ms: expected a number"},
		{"max-sessions = ", "max-sessions: expected a number from 1 to 65536"},
		{"log-burst = 0", "log-burst: expected a number from 1"},
		{"log-interval-ms = 10", "log-interval-ms: expected a number from 100"},
	};
	char *argv[] = {"ckptsrv",	     "--pmem", "/p", "--secret-file", "/s", "--listen", "x",
			"--idle-timeout-ms", "100",    NULL};
	struct ckptsrv_config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "%s\n", bad[i].line);
		write_conf(text);
		memset(&cfg, 0, sizeof(cfg));
		last_log[0] = '\0';
		assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
		if (strstr(last_log, bad[i].why) == NULL)
			fail_msg("\"%s\": logged \"%s\"", bad[i].line, last_log);
		unlink(path);
	}
	path[0] = '\0';
	assert_int_equal(ckptsrv_config_parse(9, argv, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, "--idle-timeout-ms 100: expected a number from 5000"));
}

static void test_quotas_default_and_per_tenant_lines_resolve_field_by_field(void **state)
{
	struct ckptsrv_config cfg;
	struct ckptsrv_limits l;
	char *argv[] = {"ckptsrv", "--config", path, NULL};

	(void)state;
	write_conf("pmem = /p\nsecret-file = /s\nlisten = ofi+tcp://127.0.0.1:1\n");
	assert_int_equal(ckptsrv_config_parse(3, argv, &cfg), 0);
	ckptsrv_limits_of(&cfg, "anyone", &l);
	assert_int_equal(l.regions, CKPTSRV_TENANT_REGIONS);
	assert_int_equal(l.bytes_pct, CKPTSRV_TENANT_BYTES_PCT);
	assert_int_equal(l.sessions, CKPTSRV_TENANT_SESSIONS);
	assert_int_equal(l.handles, CKPTSRV_TENANT_HANDLES);
	unlink(path);

	/* A quota line before the defaults it does not give: they still apply to it. */
	write_conf("pmem = /p\nsecret-file = /s\nlisten = ofi+tcp://127.0.0.1:1\n"
		   "quota = bob regions=5 bytes=50%\n"
		   "quota = carol\tsessions=0 handles=7 bytes=2G regions=0\n"
		   "tenant-max-regions = 3\ntenant-max-bytes = 1M\n"
		   "tenant-max-sessions = 2\ntenant-max-handles = 4\n");
	assert_int_equal(ckptsrv_config_parse(3, argv, &cfg), 0);
	assert_int_equal(cfg.nquota, 2);
	ckptsrv_limits_of(&cfg, "alice", &l);
	assert_true(l.regions == 3 && l.bytes == 1 << 20 && l.bytes_pct == 0 && l.sessions == 2 &&
		    l.handles == 4);
	ckptsrv_limits_of(&cfg, "bob", &l);
	assert_true(l.regions == 5 && l.bytes_pct == 50 && l.sessions == 2 && l.handles == 4);
	ckptsrv_limits_of(&cfg, "carol", &l);
	assert_true(l.regions == 0 && l.bytes == 2ull << 30 && l.bytes_pct == 0 &&
		    l.sessions == 0 && l.handles == 7);
	/* Names are whole: a prefix is another tenant. */
	ckptsrv_limits_of(&cfg, "bo", &l);
	assert_int_equal(l.regions, 3);
}

static void test_quota_flag_replaces_the_files_line_for_its_tenant(void **state)
{
	struct ckptsrv_config cfg;
	struct ckptsrv_limits l;
	char *argv[] = {"ckptsrv", "--config",	    path,
			"--quota", "bob handles=9", "--tenant-max-bytes",
			"25%",	   "--quota",	    "dave regions=1",
			NULL};

	(void)state;
	write_conf("pmem = /p\nsecret-file = /s\nlisten = ofi+tcp://127.0.0.1:1\n"
		   "quota = bob regions=5 sessions=1\n");
	assert_int_equal(ckptsrv_config_parse(9, argv, &cfg), 0);
	assert_int_equal(cfg.nquota, 2);
	ckptsrv_limits_of(&cfg, "bob", &l);
	assert_true(l.regions == CKPTSRV_TENANT_REGIONS && l.sessions == CKPTSRV_TENANT_SESSIONS &&
		    l.handles == 9 && l.bytes_pct == 25);
	ckptsrv_limits_of(&cfg, "dave", &l);
	assert_true(l.regions == 1 && l.bytes_pct == 25);
}

static void test_quota_lines_refuse_what_they_cannot_mean(void **state)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{"quota = ", "quota: expected a tenant name first"},
		{"quota = bob", "quota: expected TENANT regions=N"},
		{"quota = regions=4", "quota: expected a tenant name first"},
		{"quota = b/ob regions=4", "quota: expected a tenant name first"},
		{"quota = bob regions=257", "quota: a value out of range"},
		{"quota = bob regions=-1", "quota: a value out of range"},
		{"quota = bob bytes=101%", "quota: a value out of range"},
		{"quota = bob bytes=lots", "quota: a value out of range"},
		{"quota = bob sessions=1 sessions=2", "quota: a field given twice"},
		{"quota = bob colour=blue", "quota: expected TENANT regions=N"},
		{"quota = bob regions", "quota: expected TENANT regions=N"},
		{"tenant-max-bytes = 12%%", "tenant-max-bytes: expected a size"},
		{"tenant-max-bytes = %", "tenant-max-bytes: expected a size"},
		{"tenant-max-regions = 300", "tenant-max-regions: expected a number from 0 to 256"},
		{"tenant-max-sessions = x", "tenant-max-sessions: expected a number"},
		{"tenant-max-handles = 1048577", "tenant-max-handles: expected a number"},
	};
	struct ckptsrv_config cfg;
	char text[4096 + 64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s\n", bad[i].line);
		write_conf(text);
		memset(&cfg, 0, sizeof(cfg));
		last_log[0] = '\0';
		assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
		if (strstr(last_log, bad[i].why) == NULL)
			fail_msg("\"%s\": logged \"%s\"", bad[i].line, last_log);
		unlink(path);
	}
	/* One line per tenant: a 65th tenant has no room. */
	memset(&cfg, 0, sizeof(cfg));
	text[0] = '\0';
	for (int i = 0; i <= CKPTSRV_MAX_QUOTAS; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "quota = t%d regions=1\n", i);
	write_conf(text);
	assert_int_equal(ckptsrv_config_load(path, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, ":65: quota: too many quota lines"));
}

static void test_command_line_needs_store_secret_and_listener(void **state)
{
	struct ckptsrv_config cfg;
	char *argv[] = {"ckptsrv", "--pmem", "/p", "--size", "64M", NULL};
	char *bad_size[] = {"ckptsrv", "--size", "lots", NULL};

	(void)state;
	path[0] = '\0';
	assert_int_equal(ckptsrv_config_parse(5, argv, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, "required"));
	assert_int_equal(ckptsrv_config_parse(3, bad_size, &cfg), -EINVAL);
	assert_non_null(strstr(last_log, "--size lots: not a size"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_file_sets_every_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_errors_name_file_line_and_why, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_command_line_overrides_the_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_command_line_needs_store_secret_and_listener,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_is_asked_for_by_the_flag_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_limits_start_at_their_defaults_and_the_file_sets_them, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_limit_flags_override_the_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_limits_refuse_values_out_of_range, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_quotas_default_and_per_tenant_lines_resolve_field_by_field, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_flag_replaces_the_files_line_for_its_tenant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_lines_refuse_what_they_cannot_mean,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
