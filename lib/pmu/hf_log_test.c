/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hf_log.h"

static uint64_t fake_now;
static char lines[32][640];
static unsigned int nlines;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static void capture(enum ckpt_log_level level, const char *component, const char *msg)
{
	(void)level;
	(void)component;
	if (nlines < 32)
		snprintf(lines[nlines], sizeof(lines[0]), "%s", msg);
	nlines++;
}

static int setup(void **state)
{
	(void)state;
	fake_now = 1000;
	nlines = 0;
	ckpt_log_set(capture, CKPT_LOG_DEBUG);
	ckpt_log_limit_clock(fake_clock);
	ckpt_log_limit_set(3, 1000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ckpt_log_set(NULL, CKPT_LOG_NOTICE);
	ckpt_log_limit_clock(NULL);
	ckpt_log_limit_set(10, 10000);
	return 0;
}

static void test_limit_prints_a_burst_then_one_line_with_the_count(void **state)
{
	static struct ckpt_log_limit l = CKPT_LOG_LIMIT_INIT;

	(void)state;
	for (int i = 0; i < 10; i++)
		ckpt_log_limited(&l, CKPT_LOG_WARNING, "test", "peer %d refused", i);
	assert_int_equal(nlines, 3);
	assert_string_equal(lines[2], "peer 2 refused");
	/* Not before the interval is over. */
	fake_now += 999;
	ckpt_log_limits_flush();
	assert_int_equal(nlines, 3);
	fake_now += 1;
	ckpt_log_limits_flush();
	assert_int_equal(nlines, 4);
	assert_string_equal(lines[3], "peer 9 refused (7 more like this in the last 1 s)");
	/* Said once: a second flush has nothing to add. */
	fake_now += 5000;
	ckpt_log_limits_flush();
	assert_int_equal(nlines, 4);
}

static void test_limit_says_the_count_on_its_next_line_after_the_interval(void **state)
{
	static struct ckpt_log_limit l = CKPT_LOG_LIMIT_INIT;

	(void)state;
	for (int i = 0; i < 5; i++)
		ckpt_log_limited(&l, CKPT_LOG_WARNING, "test", "auth %d refused", i);
	assert_int_equal(nlines, 3);
	fake_now += 2500;
	ckpt_log_limited(&l, CKPT_LOG_WARNING, "test", "auth %d refused", 5);
	assert_int_equal(nlines, 5);
	assert_string_equal(lines[3], "auth 4 refused (2 more like this in the last 3 s)");
	/* The next line opens a new interval with a whole burst. */
	assert_string_equal(lines[4], "auth 5 refused");
	ckpt_log_limited(&l, CKPT_LOG_WARNING, "test", "auth %d refused", 6);
	ckpt_log_limited(&l, CKPT_LOG_WARNING, "test", "auth %d refused", 7);
	assert_int_equal(nlines, 7);
	assert_string_equal(lines[6], "auth 7 refused");
}

static void test_each_call_site_has_its_own_limit(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++) {
		CKPT_LOG_LIMITED(CKPT_LOG_NOTICE, "test", "first site %d", i);
		CKPT_LOG_LIMITED(CKPT_LOG_NOTICE, "test", "second site %d", i);
	}
	assert_int_equal(nlines, 6);
	fake_now += 1000;
	ckpt_log_limits_flush();
	assert_int_equal(nlines, 8);
	assert_true(strcmp(lines[6], "first site 4 (2 more like this in the last 1 s)") == 0 ||
		    strcmp(lines[7], "first site 4 (2 more like this in the last 1 s)") == 0);
	assert_true(strcmp(lines[6], "second site 4 (2 more like this in the last 1 s)") == 0 ||
		    strcmp(lines[7], "second site 4 (2 more like this in the last 1 s)") == 0);
}

static void test_lines_below_the_level_are_not_counted(void **state)
{
	static struct ckpt_log_limit l = CKPT_LOG_LIMIT_INIT;

	(void)state;
	ckpt_log_set(NULL, CKPT_LOG_NOTICE);
	for (int i = 0; i < 10; i++)
		ckpt_log_limited(&l, CKPT_LOG_DEBUG, "test", "quiet %d", i);
	assert_int_equal(l.printed, 0);
	assert_int_equal(l.missed, 0);
	ckpt_log_set(capture, CKPT_LOG_DEBUG);
	ckpt_log_limited(&l, CKPT_LOG_WARNING, "test", "loud");
	assert_int_equal(nlines, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_limit_prints_a_burst_then_one_line_with_the_count, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_limit_says_the_count_on_its_next_line_after_the_interval, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_each_call_site_has_its_own_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lines_below_the_level_are_not_counted, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
