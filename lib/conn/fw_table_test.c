/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fw_test_eal.h"

#include "fw_table.h"

static struct fw_key key_n(uint32_t n)
{
	struct fw_key k;
	uint8_t a[4] = {198, 18, (uint8_t)(n >> 8), (uint8_t)n}, b[4] = {198, 19, 0, 1};

	fw_key_make(&k, 4, 6, a, b, htons((uint16_t)(1024 + (n & 0x7fff))), htons(80));
	return k;
}

static void test_table_add_lookup_delete(void **state)
{
	struct fw_table *t = fw_table_create("t1", 1024, 4, 0);
	struct fw_key k = key_n(1), other = key_n(2);
	struct fw_conn *c;

	(void)state;
	assert_non_null(t);
	c = fw_table_add(t, &k, 77);
	assert_non_null(c);
	assert_true(c->id == 77);
	assert_int_equal(c->slot_pair[FW_MOD_TCP], UINT32_MAX);
	assert_ptr_equal(fw_table_lookup(t, &k), c);
	assert_null(fw_table_lookup(t, &other));
	assert_null(fw_table_add(t, &k, 78));
	assert_int_equal(errno, EEXIST);
	assert_int_equal(fw_table_count(t), 1);
	fw_table_del(t, c);
	assert_null(fw_table_lookup(t, &k));
	assert_int_equal(fw_table_count(t), 0);
	fw_table_free(&t);
	assert_null(t);
}

static void test_table_bulk_lookup_matches_single(void **state)
{
	struct fw_table *t = fw_table_create("t2", 4096, 0, 0);
	struct fw_key keys[100];
	const struct fw_key *kp[100];
	struct fw_conn *found[100];

	(void)state;
	for (uint32_t i = 0; i < 100; i++) {
		keys[i] = key_n(i);
		kp[i] = &keys[i];
		if (i % 2 == 0)
			assert_non_null(fw_table_add(t, &keys[i], i + 1));
	}
	fw_table_lookup_bulk(t, kp, 100, found);
	for (uint32_t i = 0; i < 100; i++) {
		if (i % 2 == 0)
			assert_true(found[i] != NULL && found[i]->id == i + 1);
		else
			assert_null(found[i]);
	}
	fw_table_free(&t);
}

static void test_table_fills_to_capacity_then_refuses(void **state)
{
	struct fw_table *t = fw_table_create("t3", 256, 0, 0);
	uint32_t cap = fw_table_capacity(t), n = 0;

	(void)state;
	assert_true(cap >= 256);
	for (uint32_t i = 0; i < cap + 10; i++) {
		struct fw_key k = key_n(i);

		if (fw_table_add(t, &k, i + 1) != NULL)
			n++;
	}
	assert_int_equal(n, cap);
	assert_int_equal(fw_table_count(t), cap);
	fw_table_free(&t);
}

static void expire_cb(struct fw_table *t, struct fw_conn *c, void *arg)
{
	(*(int *)arg)++;
	fw_table_del(t, c);
}

static void test_table_sweep_expires_only_idle(void **state)
{
	struct fw_table *t = fw_table_create("t4", 1024, 0, 0);
	int expired = 0;

	(void)state;
	for (uint32_t i = 0; i < 10; i++) {
		struct fw_key k = key_n(i);

		fw_table_add(t, &k, i + 1)->expire_ns = i < 4 ? 100 : 1000;
	}
	fw_table_sweep(t, 500, fw_table_capacity(t), expire_cb, &expired);
	assert_int_equal(expired, 4);
	assert_int_equal(fw_table_count(t), 6);
	fw_table_free(&t);
}

static void test_expectation_admits_only_its_endpoints_once(void **state)
{
	struct fw_table *t = fw_table_create("t5", 64, 2, 0);
	const uint8_t cli[4] = {198, 18, 0, 1}, srv[4] = {198, 19, 0, 2},
		      other[4] = {198, 19, 0, 3};
	struct fw_expect e = {.family = 4,
			      .proto = 6,
			      .port = {0, htons(50000)},
			      .master_id = 9,
			      .expire_ns = 1000};
	struct fw_expect got;

	(void)state;
	memcpy(e.addr[0], srv, 4);
	memcpy(e.addr[1], cli, 4);
	assert_int_equal(fw_table_expect_add(t, &e), 0);
	assert_int_equal(fw_table_expect_add(t, &e), -EEXIST);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, other, htons(20), cli, htons(50000), 10, &got), 0);
	assert_int_equal(fw_table_expect_take(t, 4, 6, srv, htons(20), cli, htons(50001), 10, &got),
			 0);
	assert_int_equal(
		fw_table_expect_take(t, 4, 17, srv, htons(20), cli, htons(50000), 10, &got), 0);
	assert_int_equal(fw_table_expect_take(t, 4, 6, srv, htons(20), cli, htons(50000), 10, &got),
			 1);
	assert_true(got.master_id == 9);
	assert_int_equal(fw_table_expect_take(t, 4, 6, srv, htons(20), cli, htons(50000), 10, &got),
			 0);
	fw_table_free(&t);
}

static void test_expectation_expires(void **state)
{
	struct fw_table *t = fw_table_create("t6", 64, 1, 0);
	struct fw_expect e = {
		.family = 4, .proto = 6, .port = {0, htons(50000)}, .expire_ns = 1000};
	struct fw_expect got;

	(void)state;
	assert_int_equal(fw_table_expect_add(t, &e), 0);
	e.port[1] = htons(50001);
	assert_int_equal(fw_table_expect_add(t, &e), -ENOSPC);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, e.addr[0], 0, e.addr[1], htons(50000), 2000, &got),
		0);
	assert_int_equal(fw_table_expect_count(t), 0);
	fw_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_add_lookup_delete),
		cmocka_unit_test(test_table_bulk_lookup_matches_single),
		cmocka_unit_test(test_table_fills_to_capacity_then_refuses),
		cmocka_unit_test(test_table_sweep_expires_only_idle),
		cmocka_unit_test(test_expectation_admits_only_its_endpoints_once),
		cmocka_unit_test(test_expectation_expires),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
