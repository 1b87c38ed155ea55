/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A connection listing handed over by the table's owner: the owner's side served a chunk a
 * call (a thread stands in for the worker's loop), the requester's paging, withdrawal on
 * timeout, and refusals.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fw_test_eal.h"

#include "fw_conns.h"
#include "tcp/fw_tcp.h"
#include "udp/fw_udp.h"

#define NCONNS 300

static struct fw_key key_n(uint32_t n, uint8_t proto)
{
	struct fw_key k;
	uint8_t a[4] = {198, 18, (uint8_t)(n >> 8), (uint8_t)n}, b[4] = {198, 19, 0, 1};

	fw_key_make(&k, 4, proto, a, b, htons((uint16_t)(1024 + n)), htons(80));
	return k;
}

/* The source port of a listed connection's key: which n it is. */
static uint32_t n_of(const struct fw_key *k)
{
	return (uint32_t)ntohs(k->port[0]) - 1024;
}

/* The worker's loop, reduced to serving: @p budget positions a pass, until told to stop. */
struct owner {
	struct fw_conns_mailbox *mb;
	struct fw_table *t;
	unsigned int budget;
	volatile bool stop;
	unsigned int most; /* the most positions one pass looked at */
};

static void *owner_main(void *arg)
{
	struct owner *o = arg;

	while (!o->stop) {
		unsigned int n = fw_conns_serve(o->mb, o->t, o->budget);

		if (n > o->most)
			o->most = n;
	}
	return NULL;
}

/* Every connection, listed @p page at a time: each one seen, in *@p seen, how often. */
static unsigned int list_all(struct fw_conns_mailbox *mb, struct fw_table *t, uint32_t page,
			     uint8_t *seen)
{
	struct fw_conns_page pg;
	uint32_t cursor = 0;
	unsigned int pages = 0;

	for (;;) {
		assert_int_equal(fw_conns_request(mb, t, cursor, page, 5000, &pg), 0);
		assert_true(pg.n <= page);
		for (uint32_t i = 0; i < pg.n; i++)
			seen[n_of(&pg.e[i].key)]++;
		pages++;
		if (pg.end)
			return pages;
		assert_true(pg.next > cursor);
		cursor = pg.next;
	}
}

static void test_pages_list_every_connection_once(void **state)
{
	struct fw_table *t = fw_table_create("c1", 1024, 0, 0);
	struct fw_conns_mailbox mb;
	struct owner o = {&mb, t, 7, false, 0};
	uint8_t seen[NCONNS] = {0};
	pthread_t th;

	(void)state;
	fw_conns_init(&mb);
	for (uint32_t i = 0; i < NCONNS; i++) {
		const struct fw_key k = key_n(i, IPPROTO_TCP);

		assert_non_null(fw_table_add(t, &k, i + 1));
	}
	assert_int_equal(pthread_create(&th, NULL, owner_main, &o), 0);
	/* Pages of 5 over a 1024-position table: 60 full pages, then the rest. */
	assert_true(list_all(&mb, t, 5, seen) >= NCONNS / 5);
	for (uint32_t i = 0; i < NCONNS; i++)
		assert_int_equal(seen[i], 1);
	memset(seen, 0, sizeof(seen));
	list_all(&mb, t, FW_CONNS_PAGE_MAX, seen);
	for (uint32_t i = 0; i < NCONNS; i++)
		assert_int_equal(seen[i], 1);
	o.stop = true;
	pthread_join(th, NULL);
	/* A pass never looked at more than its budget: forwarding goes on between them. */
	assert_true(o.most > 0 && o.most <= 7);
	fw_conns_fini(&mb);
	fw_table_free(&t);
}

static void test_connections_living_through_a_listing_are_listed_once(void **state)
{
	struct fw_table *t = fw_table_create("c2", 1024, 0, 0);
	struct fw_conns_mailbox mb;
	struct owner o = {&mb, t, FW_CONNS_SCAN_PASS, false, 0};
	struct fw_conns_page pg;
	uint8_t seen[NCONNS] = {0};
	uint32_t cursor = 0;
	pthread_t th;

	(void)state;
	fw_conns_init(&mb);
	for (uint32_t i = 0; i < NCONNS / 2; i++) {
		const struct fw_key k = key_n(i, IPPROTO_UDP);

		assert_non_null(fw_table_add(t, &k, i + 1));
	}
	/* The table changes between pages, by its owner, as a worker's does. */
	for (uint32_t page = 0;; page++) {
		assert_int_equal(pthread_create(&th, NULL, owner_main, &o), 0);
		assert_int_equal(fw_conns_request(&mb, t, cursor, 10, 5000, &pg), 0);
		o.stop = true;
		pthread_join(th, NULL);
		o.stop = false;
		for (uint32_t i = 0; i < pg.n; i++)
			seen[n_of(&pg.e[i].key)]++;
		if (pg.end)
			break;
		cursor = pg.next;
		/* One odd connection goes, one new comes, every page. */
		const struct fw_key gone = key_n(2 * page + 1, IPPROTO_UDP);
		const struct fw_key added = key_n(NCONNS / 2 + page, IPPROTO_UDP);

		if (fw_table_lookup(t, &gone) != NULL)
			fw_table_del(t, fw_table_lookup(t, &gone));
		assert_non_null(fw_table_add(t, &added, 1));
	}
	/* Those that stayed from start to end: once each; none twice. */
	for (uint32_t i = 0; i < NCONNS; i++) {
		const struct fw_key k = key_n(i, IPPROTO_UDP);

		assert_true(seen[i] <= 1);
		if (i < NCONNS / 2 && fw_table_lookup(t, &k) != NULL)
			assert_int_equal(seen[i], 1);
	}
	fw_conns_fini(&mb);
	fw_table_free(&t);
}

static void test_entries_carry_endpoints_state_and_flags(void **state)
{
	struct fw_table *t = fw_table_create("c3", 64, 0, 0);
	struct fw_conns_mailbox mb;
	struct owner o = {&mb, t, 3, false, 0};
	const struct fw_key kt = key_n(1, IPPROTO_TCP), ku = key_n(2, IPPROTO_UDP);
	struct fw_conn *ct = fw_table_add(t, &kt, 1), *cu = fw_table_add(t, &ku, 2);
	struct fw_conns_page pg;
	pthread_t th;

	(void)state;
	fw_conns_init(&mb);
	ct->orig_side = 1;
	ct->last_ns = 1000;
	ct->expire_ns = 5000;
	ct->flags = FW_CONN_F_RESTORED;
	ct->present = 1u << FW_MOD_TCP | 1u << FW_MOD_FTP;
	fw_tcp_slice(ct)->state = FW_TCP_CLOSE_WAIT;
	fw_udp_slice(cu)->state = FW_UDP_ASSURED;
	cu->present = 1u << FW_MOD_UDP;
	assert_int_equal(pthread_create(&th, NULL, owner_main, &o), 0);
	assert_int_equal(fw_conns_request(&mb, t, 0, FW_CONNS_PAGE_MAX, 5000, &pg), 0);
	o.stop = true;
	pthread_join(th, NULL);
	assert_int_equal(pg.n, 2);
	assert_true(pg.end);
	assert_int_equal(pg.next, fw_table_slots(t));
	for (uint32_t i = 0; i < 2; i++) {
		const struct fw_conn_entry *e = &pg.e[i];

		if (e->key.proto == IPPROTO_TCP) {
			assert_memory_equal(&e->key, &kt, sizeof(kt));
			assert_true(e->orig_side == 1 && e->last_ns == 1000 &&
				    e->expire_ns == 5000);
			assert_int_equal(e->state, FW_TCP_CLOSE_WAIT);
			assert_true(e->flags & FW_CONN_F_RESTORED);
			assert_true(e->present & (1u << FW_MOD_FTP));
		} else {
			assert_memory_equal(&e->key, &ku, sizeof(ku));
			assert_int_equal(e->state, FW_UDP_ASSURED);
			assert_false(e->flags & FW_CONN_F_RESTORED);
		}
	}
	fw_conns_fini(&mb);
	fw_table_free(&t);
}

static void test_idle_mailbox_is_not_served(void **state)
{
	struct fw_table *t = fw_table_create("c4", 64, 0, 0);
	struct fw_conns_mailbox mb;
	const struct fw_key k = key_n(1, IPPROTO_TCP);

	(void)state;
	fw_conns_init(&mb);
	assert_non_null(fw_table_add(t, &k, 1));
	assert_false(fw_conns_asked(&mb));
	assert_int_equal(fw_conns_serve(&mb, t, 100), 0);
	assert_int_equal(mb.state, FW_CONNS_IDLE);
	/* A page done and not collected yet is not served again. */
	mb.state = FW_CONNS_DONE;
	assert_false(fw_conns_asked(&mb));
	assert_int_equal(fw_conns_serve(&mb, t, 100), 0);
	fw_conns_fini(&mb);
	fw_table_free(&t);
}

static void test_serving_is_a_bounded_chunk_a_call(void **state)
{
	struct fw_table *t = fw_table_create("c5", 1024, 0, 0);
	struct fw_conns_mailbox mb;
	unsigned int calls = 0;

	(void)state;
	fw_conns_init(&mb);
	for (uint32_t i = 0; i < 100; i++) {
		const struct fw_key k = key_n(i, IPPROTO_TCP);

		assert_non_null(fw_table_add(t, &k, i + 1));
	}
	/* A request as fw_conns_request leaves it, served by hand: 10 positions a call. */
	mb.cursor = 0;
	mb.max = FW_CONNS_PAGE_MAX;
	mb.state = FW_CONNS_ASKED;
	while (fw_conns_asked(&mb)) {
		assert_true(fw_conns_serve(&mb, t, 10) <= 10);
		calls++;
	}
	assert_int_equal(mb.state, FW_CONNS_DONE);
	assert_int_equal(mb.n, FW_CONNS_PAGE_MAX);
	assert_true(calls >= FW_CONNS_PAGE_MAX / 10);
	fw_conns_fini(&mb);
	fw_table_free(&t);
}

static void test_unanswered_request_times_out_and_is_withdrawn(void **state)
{
	struct fw_table *t = fw_table_create("c6", 64, 0, 0);
	struct fw_conns_mailbox mb;
	struct fw_conns_page pg;
	const struct fw_key k = key_n(1, IPPROTO_TCP);

	(void)state;
	fw_conns_init(&mb);
	assert_non_null(fw_table_add(t, &k, 1));
	memset(&pg, 0xa5, sizeof(pg));
	/* Nobody serves: the request is withdrawn, *out untouched. */
	assert_int_equal(fw_conns_request(&mb, t, 0, 4, 20, &pg), -ETIMEDOUT);
	assert_int_equal(mb.state, FW_CONNS_IDLE);
	assert_int_equal(pg.n, 0xa5a5a5a5u);
	/* An owner that comes late finds nothing to do. */
	assert_int_equal(fw_conns_serve(&mb, t, 100), 0);
	fw_conns_fini(&mb);
	fw_table_free(&t);
}

static void test_request_refuses_bad_arguments(void **state)
{
	struct fw_table *t = fw_table_create("c7", 64, 0, 0);
	struct fw_conns_mailbox mb;
	struct fw_conns_page pg;

	(void)state;
	fw_conns_init(&mb);
	assert_int_equal(fw_conns_request(&mb, t, 0, 0, 20, &pg), -EINVAL);
	assert_int_equal(fw_conns_request(&mb, t, 0, FW_CONNS_PAGE_MAX + 1, 20, &pg), -EINVAL);
	assert_int_equal(fw_conns_request(&mb, t, fw_table_slots(t) + 1, 1, 20, &pg), -EINVAL);
	assert_int_equal(mb.state, FW_CONNS_IDLE);
	/* The end itself is a valid cursor: an empty last page (served by hand here). */
	mb.cursor = fw_table_slots(t);
	mb.max = 1;
	mb.state = FW_CONNS_ASKED;
	assert_int_equal(fw_conns_serve(&mb, t, 100), 0);
	assert_true(mb.state == FW_CONNS_DONE && mb.n == 0);
	fw_conns_fini(&mb);
	fw_table_free(&t);
}

static void test_params_take_only_decimal_numbers_in_range(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"0,",
		",0",
		"0,x",
		"0,-1",
		"0,+1",
		"0, 1",
		" 0,1",
		"0,1 ",
		"0x1,0",
		"0,1x",
		"0,0,0",
		"0,0,49",
		"0,0,",
		"0,0,1,1",
		"0,,1",
		"4294967296,0",
		"0,4294967296",
		"0,99999999999",
		"0,0,0048x",
		"0,0,-1",
		"0,1,2,3,4,5,6,7,8",
	};
	struct fw_conns_params q, untouched = {7, 7, 7};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q = untouched;
		assert_int_equal(fw_conns_params_parse(bad[i], &q), -EINVAL);
		assert_memory_equal(&q, &untouched, sizeof(q));
	}
	assert_int_equal(fw_conns_params_parse("1,4096", &q), 0);
	assert_true(q.worker == 1 && q.cursor == 4096 && q.max == FW_CONNS_PAGE_MAX);
	assert_int_equal(fw_conns_params_parse("0,0,1", &q), 0);
	assert_true(q.worker == 0 && q.cursor == 0 && q.max == 1);
	assert_int_equal(fw_conns_params_parse("4294967295,4294967295,048", &q), 0);
	assert_true(q.worker == UINT32_MAX && q.cursor == UINT32_MAX && q.max == 48);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages_list_every_connection_once),
		cmocka_unit_test(test_connections_living_through_a_listing_are_listed_once),
		cmocka_unit_test(test_entries_carry_endpoints_state_and_flags),
		cmocka_unit_test(test_idle_mailbox_is_not_served),
		cmocka_unit_test(test_serving_is_a_bounded_chunk_a_call),
		cmocka_unit_test(test_unanswered_request_times_out_and_is_withdrawn),
		cmocka_unit_test(test_request_refuses_bad_arguments),
		cmocka_unit_test(test_params_take_only_decimal_numbers_in_range),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
