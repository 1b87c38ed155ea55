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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
