/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "holdfast/fw_conn.h"

static void test_key_is_the_same_from_both_directions(void **state)
{
	const uint8_t a[4] = {198, 18, 0, 1}, b[4] = {198, 19, 0, 2};
	struct fw_key k1, k2;
	int s1, s2;

	(void)state;
	s1 = fw_key_make(&k1, 4, 6, a, b, htons(40000), htons(80));
	s2 = fw_key_make(&k2, 4, 6, b, a, htons(80), htons(40000));
	assert_memory_equal(&k1, &k2, sizeof(k1));
	assert_int_not_equal(s1, s2);
}

static void test_key_orders_equal_addresses_by_port(void **state)
{
	const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	struct fw_key k1, k2;

	(void)state;
	assert_int_equal(fw_key_make(&k1, 6, 17, a, a, htons(53), htons(5353)), 0);
	assert_int_equal(fw_key_make(&k2, 6, 17, a, a, htons(5353), htons(53)), 1);
	assert_memory_equal(&k1, &k2, sizeof(k1));
}

/* xorshift64*: a fixed sequence, so a failure is reproduced by running the test again. */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/*
 * The IPv4 fast build gives the key and side the generic one gives, byte for byte, over
 * random tuples -- with addresses and ports drawn from small sets half the time, so that
 * equal addresses (ordered by port), equal ports and equal endpoints all occur -- at
 * unaligned addresses too.
 */
static void test_key_make4_equals_the_generic_key(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint8_t buf[16];

	(void)state;
	for (int i = 0; i < 200000; i++) {
		const uint64_t r = rnd(&x), q = rnd(&x);
		const bool narrow = r & 1;
		uint32_t sa = (uint32_t)(narrow ? (q & 3) << 30 | (q >> 8 & 1) : q);
		uint32_t da = (uint32_t)(narrow ? (q >> 2 & 3) << 30 | (q >> 9 & 1) : q >> 32);
		uint16_t sp = (uint16_t)(narrow ? r >> 8 & 0x0101 : r >> 16);
		uint16_t dp = (uint16_t)(narrow ? r >> 12 & 0x0101 : r >> 32);
		const uint8_t proto = r >> 48 & 1 ? 6 : 17;
		struct fw_key generic, fast;
		int g, f;

		memcpy(buf + 1, &sa, 4); /* odd offsets: the fast build must not assume alignment */
		memcpy(buf + 7, &da, 4);
		memset(&fast, 0xa5, sizeof(fast)); /* every byte must be written */
		g = fw_key_make(&generic, 4, proto, buf + 1, buf + 7, sp, dp);
		f = fw_key_make4(&fast, proto, buf + 1, buf + 7, sp, dp);
		assert_int_equal(g, f);
		assert_memory_equal(&generic, &fast, sizeof(generic));
	}
}

/* The word compare says equal exactly when the bytes are, whichever byte differs. */
static void test_key_cmp_tells_keys_apart_by_every_byte(void **state)
{
	uint64_t x = 0x2545f4914f6cdd1dull;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		struct fw_key a, b;
		const uint64_t r = rnd(&x);

		for (size_t k = 0; k < sizeof(a); k += 8) {
			uint64_t w = rnd(&x);

			memcpy((uint8_t *)&a + k, &w, 8);
		}
		b = a;
		assert_int_equal(fw_key_cmp(&a, &b, sizeof(a)), 0);
		((uint8_t *)&b)[r % sizeof(b)] ^= (uint8_t)(1u << (r >> 8 & 7));
		assert_int_not_equal(fw_key_cmp(&a, &b, sizeof(a)), 0);
		assert_int_not_equal(memcmp(&a, &b, sizeof(a)), 0);
	}
}

static void test_id_depends_on_secret_protocol_and_ports(void **state)
{
	const uint8_t a[4] = {198, 18, 0, 1}, b[4] = {198, 19, 0, 2};
	struct fw_id_secret s1 = {{1, 2}}, s2 = {{1, 3}};
	struct fw_key tcp, udp, other_port;

	(void)state;
	fw_key_make(&tcp, 4, 6, a, b, htons(1000), htons(80));
	fw_key_make(&udp, 4, 17, a, b, htons(1000), htons(80));
	fw_key_make(&other_port, 4, 6, a, b, htons(1001), htons(80));
	assert_true(fw_conn_id(&s1, &tcp) == fw_conn_id(&s1, &tcp));
	assert_true(fw_conn_id(&s1, &tcp) != fw_conn_id(&s2, &tcp));
	assert_true(fw_conn_id(&s1, &tcp) != fw_conn_id(&s1, &udp));
	assert_true(fw_conn_id(&s1, &tcp) != fw_conn_id(&s1, &other_port));
	assert_true(fw_conn_id(&s1, &tcp) != 0);
}

static void test_secret_init_draws_random_keys(void **state)
{
	struct fw_id_secret s1, s2;

	(void)state;
	assert_int_equal(fw_id_secret_init(&s1), 0);
	assert_int_equal(fw_id_secret_init(&s2), 0);
	assert_memory_not_equal(&s1, &s2, sizeof(s1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_is_the_same_from_both_directions),
		cmocka_unit_test(test_key_orders_equal_addresses_by_port),
		cmocka_unit_test(test_key_make4_equals_the_generic_key),
		cmocka_unit_test(test_key_cmp_tells_keys_apart_by_every_byte),
		cmocka_unit_test(test_id_depends_on_secret_protocol_and_ports),
		cmocka_unit_test(test_secret_init_draws_random_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
