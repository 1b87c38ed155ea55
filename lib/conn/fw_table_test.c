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
	assert_true(fw_conn_cold(c)->id == 77);
	assert_int_equal(fw_conn_cold(c)->slot_pair[FW_MOD_TCP], UINT32_MAX);
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
			assert_true(found[i] != NULL && fw_conn_cold(found[i])->id == i + 1);
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

/* The hash has room past the capacity (more buckets): the count is what refuses. */
static void test_full_table_gets_its_keys_and_refuses_new_ones(void **state)
{
	struct fw_table *t = fw_table_create("t3b", 1000, 0, 0);
	struct fw_key k;
	struct fw_conn *c;
	bool created = true;

	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		k = key_n(i);
		assert_non_null(fw_table_add(t, &k, i + 1));
	}
	k = key_n(500);
	c = fw_table_get_or_add(t, &k, 999, &created);
	assert_non_null(c);
	assert_false(created);
	assert_true(fw_conn_cold(c)->id == 501);
	k = key_n(1000);
	errno = 0;
	assert_null(fw_table_get_or_add(t, &k, 1001, &created));
	assert_int_equal(errno, ENOSPC);
	assert_null(fw_table_lookup(t, &k));
	/* A place freed is a place to take. */
	fw_table_del(t, c);
	assert_non_null(fw_table_get_or_add(t, &k, 1001, &created));
	assert_true(created);
	assert_int_equal(fw_table_count(t), 1000);
	fw_table_free(&t);
}

/* A connection added where another was is zeroed whole, but for what the add sets. */
static void test_added_connection_is_zeroed_where_another_was(void **state)
{
	struct fw_table *t = fw_table_create("t3c", 256, 0, 0);
	struct fw_conn *want = fw_conns_map(1, -1);
	struct fw_conn_cold *cc;
	struct fw_conn *c;

	(void)state;
	for (uint32_t i = 0; i < 256; i++) {
		struct fw_key k = key_n(i);

		c = fw_table_add(t, &k, i + 1);
		assert_non_null(c);
		cc = fw_conn_cold(c);
		memset(c, 0xa5, sizeof(*c));
		c->flags = 0;
		/* all but the key and the ID, which the delete goes by */
		memset(cc, 0xa5, offsetof(struct fw_conn_cold, key));
		memset(&cc->slot_pair, 0xa5,
		       sizeof(*cc) - offsetof(struct fw_conn_cold, slot_pair));
	}
	for (uint32_t i = 0; i < 256; i++) {
		struct fw_key k = key_n(i);

		fw_table_del(t, fw_table_lookup(t, &k));
	}
	for (uint32_t i = 0; i < 256; i++) {
		struct fw_key k = key_n(1000 + i);

		c = fw_table_add(t, &k, 7);
		assert_non_null(c);
		fw_conn_clear(want);
		fw_conn_cold(want)->key = k;
		fw_conn_cold(want)->id = 7;
		for (int m = 0; m < FW_MOD_MAX; m++)
			fw_conn_cold(want)->slot_pair[m] = UINT32_MAX;
		assert_memory_equal(c, want, sizeof(*want));
		assert_memory_equal(fw_conn_cold(c), fw_conn_cold(want), sizeof(*cc));
	}
	fw_conns_unmap(want, 1);
	fw_table_free(&t);
}

/* Connection number @p i's own bytes, everywhere but its key and ID (which the add sets). */
static void conn_fill(struct fw_conn *c, uint32_t i)
{
	struct fw_conn_cold *cc = fw_conn_cold(c);
	uint8_t *cold_ext = FW_SLICE(c, uint8_t, FW_EXT_HOT);

	c->expire_ns = i;
	c->last_ns = ~(uint64_t)i;
	c->orig_side = (uint8_t)(i & 1);
	c->present = c->dirty = (uint8_t)i;
	c->flags = 0; /* FW_CONN_F_EXPECTING would have the delete look for an expectation */
	for (unsigned int b = 0; b < FW_EXT_HOT; b++)
		c->ext[b] = (uint8_t)(i * 3 + b);
	for (unsigned int b = 0; b < FW_EXT_SIZE - FW_EXT_HOT; b++)
		cold_ext[b] = (uint8_t)(i * 7 + b);
	for (int m = 0; m < FW_MOD_MAX; m++) {
		cc->slot_pair[m] = i * 4 + (uint32_t)m;
		cc->gen[m] = (uint64_t)i << 8 | (uint64_t)m;
	}
}

/* Is connection @p c number @p i, as conn_fill() and the add (key_n(@p i), ID i + 1) left it? */
static void conn_check(const struct fw_conn *c, uint32_t i)
{
	const struct fw_conn_cold *cc = fw_conn_cold(c);
	const struct fw_key k = key_n(i);

	assert_memory_equal(&cc->key, &k, sizeof(k));
	assert_true(cc->id == i + 1);
	assert_true(c->expire_ns == i && c->last_ns == ~(uint64_t)i);
	assert_true(c->orig_side == (i & 1) && c->present == (uint8_t)i && c->dirty == (uint8_t)i);
	for (unsigned int b = 0; b < FW_EXT_HOT; b++)
		assert_int_equal(c->ext[b], (uint8_t)(i * 3 + b));
	for (unsigned int b = 0; b < FW_EXT_SIZE - FW_EXT_HOT; b++)
		assert_int_equal(cc->ext[b], (uint8_t)(i * 7 + b));
	for (int m = 0; m < FW_MOD_MAX; m++) {
		assert_int_equal(cc->slot_pair[m], i * 4 + (uint32_t)m);
		assert_true(cc->gen[m] == ((uint64_t)i << 8 | (uint64_t)m));
	}
}

/*
 * Every position has a cold part of its own: each connection of a full table, its hot line
 * and its cold part (the slice area past the hot line through FW_SLICE, the bookkeeping)
 * written with bytes of its own, reads all of them back through its own key's lookup, at
 * every position the table hands out -- the last one included, reached by deleting and
 * adding until it is in use. A cold part shared by two positions, or one at the wrong
 * distance from its hot line, reads another connection's bytes.
 */
static void test_every_position_has_its_own_cold_part(void **state)
{
	const uint32_t cap = 1000;
	struct fw_table *t = fw_table_create("t3d", cap, 0, 0);
	uint32_t slots, next = cap, first = 0, n = 0, high = 0;

	(void)state;
	assert_non_null(t);
	slots = fw_table_slots(t);
	for (uint32_t i = 0; i < cap; i++) {
		struct fw_key k = key_n(i);
		struct fw_conn *c = fw_table_add(t, &k, i + 1);

		assert_non_null(c);
		assert_ptr_equal(FW_SLICE(c, uint8_t, 0), c->ext);
		assert_ptr_equal(FW_SLICE(c, uint8_t, FW_EXT_HOT), fw_conn_cold(c)->ext);
		conn_fill(c, i);
	}
	/* Positions come back to rte_hash's free ring at its end: delete and add until the
	 * last position it can hand out (one under fw_table_slots) is taken. */
	while (fw_table_at(t, slots - 2) == NULL) {
		struct fw_key old = key_n(first++), k = key_n(next);
		struct fw_conn *c;

		assert_true(next < cap + slots);
		fw_table_del(t, fw_table_lookup(t, &old));
		c = fw_table_add(t, &k, next + 1);
		assert_non_null(c);
		conn_fill(c, next++);
	}
	for (uint32_t pos = 0; pos < slots; pos++) {
		const struct fw_conn *c = fw_table_at(t, pos);
		uint32_t i;

		if (c == NULL)
			continue;
		n++;
		high = pos;
		i = (uint32_t)fw_conn_cold(c)->id - 1;
		assert_true(i >= first && i < next);
		assert_ptr_equal(fw_table_lookup(t, &fw_conn_cold(c)->key), c);
		conn_check(c, i);
	}
	assert_int_equal(n, cap);
	assert_int_equal(high, slots - 2);
	for (uint32_t i = first; i < next; i++) {
		struct fw_key k = key_n(i);

		conn_check(fw_table_lookup(t, &k), i);
	}
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
	struct fw_key k = key_n(21);
	struct fw_conn *ctl = fw_table_add(t, &k, 9), *m = NULL;
	struct fw_expect e = {.family = 4,
			      .proto = 6,
			      .port = {0, htons(50000)},
			      .master_id = 9,
			      .expire_ns = 1000};
	struct fw_expect got;

	(void)state;
	memcpy(e.addr[0], srv, 4);
	memcpy(e.addr[1], cli, 4);
	assert_int_equal(fw_table_expect_add(t, &e, ctl), 0);
	assert_true(ctl->flags & FW_CONN_F_EXPECTING);
	assert_int_equal(fw_table_expect_add(t, &e, ctl), -EEXIST);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, other, htons(20), cli, htons(50000), 10, &got, &m),
		0);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, srv, htons(20), cli, htons(50001), 10, &got, &m), 0);
	assert_int_equal(
		fw_table_expect_take(t, 4, 17, srv, htons(20), cli, htons(50000), 10, &got, &m), 0);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, srv, htons(20), cli, htons(50000), 10, &got, &m), 1);
	assert_true(got.master_id == 9 && m == ctl);
	assert_false(ctl->flags & FW_CONN_F_EXPECTING);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, srv, htons(20), cli, htons(50000), 10, &got, &m), 0);
	/* an expectation's master is a connection of the table */
	{
		struct fw_conn *stranger = fw_conns_map(1, -1);

		fw_conn_cold(stranger)->key = k;
		assert_int_equal(fw_table_expect_add(t, &e, stranger), -EINVAL);
		fw_conns_unmap(stranger, 1);
	}
	fw_table_free(&t);
}

/* A master expects one data connection at a time: the one its slice describes. */
static void test_expectation_replaced_by_its_masters_next_one(void **state)
{
	struct fw_table *t = fw_table_create("t7", 64, 4, 0);
	struct fw_key k1 = key_n(31), k2 = key_n(32);
	struct fw_conn *c1 = fw_table_add(t, &k1, 31), *c2 = fw_table_add(t, &k2, 32), *m;
	struct fw_expect e = {
		.family = 4, .proto = 6, .port = {0, htons(50000)}, .expire_ns = 1000};
	struct fw_expect got;

	(void)state;
	assert_int_equal(fw_table_expect_add(t, &e, c1), 0);
	assert_int_equal(fw_table_expect_add(t, &e, c2), 0); /* another master: its own */
	e.port[1] = htons(50001);
	assert_int_equal(fw_table_expect_add(t, &e, c1), 0); /* withdraws c1's 50000 */
	assert_int_equal(fw_table_expect_count(t), 2);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, e.addr[0], 0, e.addr[1], htons(50000), 10, &got, &m),
		1);
	assert_true(m == c2);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, e.addr[0], 0, e.addr[1], htons(50000), 10, &got, &m),
		0);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, e.addr[0], 0, e.addr[1], htons(50001), 10, &got, &m),
		1);
	assert_true(m == c1);
	fw_table_free(&t);
}

/* A master that goes away takes its expectation with it; its position may be reused. */
static void test_expectation_withdrawn_with_its_master(void **state)
{
	struct fw_table *t = fw_table_create("t8", 64, 4, 0);
	struct fw_key k1 = key_n(41), k2 = key_n(42);
	struct fw_conn *c1 = fw_table_add(t, &k1, 41), *c2 = fw_table_add(t, &k2, 42), *m;
	struct fw_expect e = {
		.family = 4, .proto = 6, .port = {0, htons(50000)}, .expire_ns = 1000};
	struct fw_expect got;

	(void)state;
	assert_int_equal(fw_table_expect_add(t, &e, c1), 0);
	e.port[1] = htons(50001);
	assert_int_equal(fw_table_expect_add(t, &e, c2), 0);
	fw_table_del(t, c1);
	assert_int_equal(fw_table_expect_count(t), 1);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, e.addr[0], 0, e.addr[1], htons(50000), 10, &got, &m),
		0);
	assert_int_equal(
		fw_table_expect_take(t, 4, 6, e.addr[0], 0, e.addr[1], htons(50001), 10, &got, &m),
		1);
	assert_true(m == c2);
	fw_table_free(&t);
}

struct expired {
	int n;
	struct fw_conn *master;
	uint16_t port;
};

static void on_expired(struct fw_table *t, const struct fw_expect *e, struct fw_conn *master,
		       void *arg)
{
	struct expired *x = arg;

	(void)t;
	x->n++;
	x->master = master;
	x->port = ntohs(e->port[1]);
}

/* An expired expectation admits nothing; the expiry pass removes it and names its master. */
static void test_expectation_expires(void **state)
{
	struct fw_table *t = fw_table_create("t6", 64, 2, 0);
	struct fw_key k1 = key_n(51), k2 = key_n(52);
	struct fw_conn *c1 = fw_table_add(t, &k1, 51), *c2 = fw_table_add(t, &k2, 52), *m;
	struct fw_expect e = {
		.family = 4, .proto = 6, .port = {0, htons(50000)}, .expire_ns = 1000};
	struct fw_expect got;
	struct expired x = {0};

	(void)state;
	assert_int_equal(fw_table_expect_add(t, &e, c1), 0);
	e.port[1] = htons(50001);
	e.expire_ns = 3000;
	assert_int_equal(fw_table_expect_add(t, &e, c2), 0);
	e.port[1] = htons(50002);
	assert_int_equal(fw_table_expect_add(t, &e, c1), 0);
	assert_int_equal(fw_table_expect_count(t), 2); /* c1's 50000 withdrawn: room */
	assert_int_equal(fw_table_expect_expire(t, 2000, on_expired, &x), 0);
	e.port[1] = htons(50003);
	{
		struct fw_key k3 = key_n(53);

		assert_int_equal(fw_table_expect_add(t, &e, fw_table_add(t, &k3, 53)), -ENOSPC);
	}
	assert_int_equal(fw_table_expect_take(t, 4, 6, e.addr[0], 0, e.addr[1], htons(50001), 4000,
					      &got, &m),
			 0);
	assert_int_equal(fw_table_expect_count(t), 2); /* expired, but still to be told */
	assert_int_equal(fw_table_expect_expire(t, 4000, on_expired, &x), 2);
	assert_true(x.n == 2 && (x.master == c1 || x.master == c2));
	assert_int_equal(fw_table_expect_count(t), 0);
	assert_false((c1->flags | c2->flags) & FW_CONN_F_EXPECTING);
	assert_int_equal(fw_table_expect_expire(t, 5000, on_expired, &x), 0);
	fw_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_add_lookup_delete),
		cmocka_unit_test(test_table_bulk_lookup_matches_single),
		cmocka_unit_test(test_table_fills_to_capacity_then_refuses),
		cmocka_unit_test(test_full_table_gets_its_keys_and_refuses_new_ones),
		cmocka_unit_test(test_added_connection_is_zeroed_where_another_was),
		cmocka_unit_test(test_every_position_has_its_own_cold_part),
		cmocka_unit_test(test_table_sweep_expires_only_idle),
		cmocka_unit_test(test_expectation_admits_only_its_endpoints_once),
		cmocka_unit_test(test_expectation_replaced_by_its_masters_next_one),
		cmocka_unit_test(test_expectation_withdrawn_with_its_master),
		cmocka_unit_test(test_expectation_expires),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
