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

#include "holdfast/ckpt.h"

static char path[64];

static void write_file(const char *text)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/hf-secret-test.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int teardown(void **state)
{
	(void)state;
	if (path[0] != '\0')
		unlink(path);
	path[0] = '\0';
	return 0;
}

static void quiet(enum ckpt_log_level level, const char *component, const char *msg)
{
	(void)level;
	(void)component;
	(void)msg;
}

static void test_parse_size_accepts_units(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(ckpt_parse_size("123", &v), 0);
	assert_true(v == 123);
	assert_int_equal(ckpt_parse_size("64k", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(ckpt_parse_size("256M", &v), 0);
	assert_true(v == 256ull << 20);
	assert_int_equal(ckpt_parse_size("2G", &v), 0);
	assert_true(v == 2ull << 30);
	assert_int_equal(ckpt_parse_size("1t", &v), 0);
	assert_true(v == 1ull << 40);
	assert_int_equal(ckpt_parse_size("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(ckpt_parse_size("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
}

static void test_parse_size_refuses_garbage_and_overflow(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(ckpt_parse_size("", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size("k", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size("-1", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size(" 1", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size("1 ", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size("12x", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size("1MB", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size("18446744073709551616", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size("17179869184G", &v), -EINVAL);
	assert_int_equal(ckpt_parse_size(NULL, &v), -EINVAL);
	assert_true(v == 77); /* untouched on failure */
}

static void test_secret_by_tenant_and_bare_default(void **state)
{
	uint8_t out[64];

	(void)state;
	write_file("# tenants\n"
		   "alice  alice-secret-0123456789   # trailing comment\n"
		   "\n"
		   "bob\tbob-secret-abcdefghijklmn\n"
		   "default-secret-zyxwvutsrq\n");
	assert_int_equal(ckpt_secret_load(path, "bob", out, sizeof(out)), 25);
	assert_memory_equal(out, "bob-secret-abcdefghijklmn", 25);
	assert_int_equal(ckpt_secret_load(path, "alice", out, sizeof(out)), 23);
	assert_memory_equal(out, "alice-secret-0123456789", 23);
	assert_int_equal(ckpt_secret_load(path, "default", out, sizeof(out)), 25);
	assert_memory_equal(out, "default-secret-zyxwvutsrq", 25);
	assert_int_equal(ckpt_secret_load(path, NULL, out, sizeof(out)), 23);
	assert_memory_equal(out, "alice-secret-0123456789", 23);
	assert_int_equal(ckpt_secret_load(path, "carol", out, sizeof(out)), -ENOENT);
	assert_int_equal(ckpt_secret_load(path, "ali", out, sizeof(out)), -ENOENT);
}

static void test_secret_refuses_malformed_files(void **state)
{
	uint8_t out[64];

	(void)state;
	ckpt_log_set(quiet, CKPT_LOG_DEBUG);
	write_file("alice short\n");
	assert_int_equal(ckpt_secret_load(path, "alice", out, sizeof(out)), -EINVAL);
	teardown(state);
	write_file("alice one-long-enough-secret extra\n");
	assert_int_equal(ckpt_secret_load(path, "alice", out, sizeof(out)), -EINVAL);
	teardown(state);
	write_file("a/b one-long-enough-secret\n");
	assert_int_equal(ckpt_secret_load(path, "a/b", out, sizeof(out)), -EINVAL);
	teardown(state);
	write_file("alice one-long-enough-secret-for-a-small-buffer\n");
	assert_int_equal(ckpt_secret_load(path, "alice", out, 20), -EINVAL);
	teardown(state);
	write_file("");
	assert_int_equal(ckpt_secret_load(path, NULL, out, sizeof(out)), -ENOENT);
	assert_int_equal(ckpt_secret_load("/nonexistent/hf-secret", NULL, out, sizeof(out)),
			 -ENOENT);
	ckpt_log_set(NULL, CKPT_LOG_NOTICE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_accepts_units),
		cmocka_unit_test(test_parse_size_refuses_garbage_and_overflow),
		cmocka_unit_test_teardown(test_secret_by_tenant_and_bare_default, teardown),
		cmocka_unit_test_teardown(test_secret_refuses_malformed_files, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
