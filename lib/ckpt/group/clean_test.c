/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cleaner of a group's overwrite region, over three in-memory stores (stub_backend.h):
 * writes go on through many laps of the members' rings because each pass frees the oldest
 * part; what a pass logs again is what only that part held (the long-lived pairs), never
 * the copies newer writes superseded; and a writer that reopened a region reads the log
 * before its first pass, so the pairs it never wrote survive it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "holdfast/ckpt.h"
#include "holdfast/ckpt_group.h"
#include "stub_backend.h"
#include "test_rec.h"

#define TARGET	  "group:xor(2)=stub:c0,stub:c1,stub:c2"
#define PAYLOAD	  TEST_REC_PAYLOAD
#define PAIRS	  512
#define SLOT	  128
#define REC_LEN	  120	     /* ckpt_rec_size(PAYLOAD) */
#define LAP_BYTES (9u << 20) /* record bytes that go once round every member's ring (k = 2) */
#define MAX_POLLS 100000     /* polls one write may wait for room before the test gives up */

static struct ckpt_client *join(const char *target)
{
	struct ckpt_client_opts o = {.tenant = "holdfast"};
	struct ckpt_client *c = ckpt_connect(target, &o);

	assert_non_null(c);
	return c;
}

static struct ckpt_region *create(struct ckpt_client *c)
{
	struct pmu_region_params p = {
		.name = "st",
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2 * PAIRS * SLOT + (64u << 10),
		.slot_size = SLOT,
		.ring_size = 64u << 10,
	};
	struct ckpt_region *r;

	assert_int_equal(ckpt_region_create(c, &p, &r), 0);
	return r;
}

/* Post one record as a writer does: wait (polling) while the ring has no room. */
static void post(struct ckpt_client *c, struct ckpt_region *r, uint32_t pair, uint64_t gen,
		 uint64_t nth)
{
	uint8_t payload[PAYLOAD];
	const struct ckpt_rec rec = test_rec(pair, gen, payload);
	unsigned int polls = 0;
	int rc;

	while ((rc = ckpt_slot_write(r, &rec, true, NULL)) == -EAGAIN) {
		assert_true(++polls < MAX_POLLS); /* the ring never frees: no cleaning */
		assert_true(ckpt_poll(c) >= 0);
	}
	assert_int_equal(rc, 0);
	if (nth % 64 == 63) {
		assert_int_equal(ckpt_flush(r), 0);
		assert_true(ckpt_poll(c) >= 0);
	}
}

/* Every pair at generation @p gen; durable at return. */
static void put_all(struct ckpt_client *c, struct ckpt_region *r, uint64_t gen)
{
	for (uint32_t p = 0; p < PAIRS; p++)
		post(c, r, p, gen, p);
	assert_int_equal(ckpt_sync(r), 0);
}

/* Pair 0 alone, at generations [first, first + n); durable at return. */
static void put_busy(struct ckpt_client *c, struct ckpt_region *r, uint64_t first, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		post(c, r, 0, first + i, i);
	assert_int_equal(ckpt_sync(r), 0);
}

struct seen {
	uint32_t n;
	uint64_t gen[PAIRS];
};

static int note(const struct ckpt_rec *rec, void *arg)
{
	struct seen *s = arg;

	assert_true(rec->slot_pair < PAIRS);
	assert_int_equal(rec->payload[0], test_rec_byte(rec->slot_pair, rec->generation));
	s->gen[rec->slot_pair] = rec->generation;
	s->n++;
	return 0;
}

/* A new client restores exactly @p want (generation per pair, 0: none). */
static void restores(const uint64_t *want)
{
	struct ckpt_client *c = join(TARGET);
	struct seen *s = calloc(1, sizeof(*s));
	uint32_t n = 0;
	struct ckpt_region *r;

	assert_non_null(s);
	assert_int_equal(ckpt_region_open(c, "st", &r), 0);
	assert_int_equal(ckpt_state_scan(r, 0, note, s, NULL), 0);
	for (uint32_t p = 0; p < PAIRS; p++) {
		assert_true(s->gen[p] == want[p]);
		n += want[p] != 0;
	}
	assert_int_equal(s->n, n);
	free(s);
	ckpt_disconnect(&c);
}

static struct ckpt_group_health health(struct ckpt_region *r)
{
	struct ckpt_group_health gh;

	assert_int_equal(ckpt_group_health(r, true, &gh), 0);
	assert_int_equal(gh.lost, 0);
	assert_int_equal(gh.degraded, 0);
	return gh;
}

static int setup(void **state)
{
	(void)state;
	stub_backend_register();
	stub_backend_reset();
	return 0;
}

/* Every pair rewritten each generation, three laps of the ring: no write waits for ever. */
static void test_cleaner_frees_the_ring_so_writes_go_on(void **state)
{
	struct ckpt_client *c = join(TARGET);
	struct ckpt_region *r = create(c);
	const uint64_t gens = 3ull * LAP_BYTES / (PAIRS * REC_LEN);
	struct ckpt_group_health gh;
	uint64_t want[PAIRS];

	(void)state;
	for (uint64_t g = 1; g <= gens; g++)
		put_all(c, r, g);
	gh = health(r);
	assert_true(gh.tail > LAP_BYTES / 2); /* the tails went round a member's ring */
	ckpt_disconnect(&c);
	for (uint32_t p = 0; p < PAIRS; p++)
		want[p] = gens;
	restores(want);
}

/*
 * A stream that rewrites every pair before the ring comes round leaves nothing live in the
 * oldest part: the cleaner frees it without logging a record again.
 */
static void test_cleaner_copies_nothing_when_every_pair_is_rewritten_each_lap(void **state)
{
	struct ckpt_client *c = join(TARGET);
	struct ckpt_region *r = create(c);
	const uint64_t gens = 3ull * LAP_BYTES / (PAIRS * REC_LEN);
	struct ckpt_group_health gh;

	(void)state;
	for (uint64_t g = 1; g <= gens; g++)
		put_all(c, r, g);
	gh = health(r);
	assert_true(gh.tail > LAP_BYTES / 2);
	assert_int_equal(gh.relogged_bytes, 0);
	ckpt_disconnect(&c);
}

/*
 * Pairs written once and never again (long-lived connections) lie in the oldest part when
 * a pass frees it: they are logged again, and restored after laps of one busy pair. The
 * busy pair's superseded copies there are not: what is logged again stays a few laps of
 * the live pairs, not the bytes the ring went through.
 */
static void test_cleaner_logs_again_only_what_the_freed_part_alone_holds(void **state)
{
	struct ckpt_client *c = join(TARGET);
	struct ckpt_region *r = create(c);
	const uint64_t laps = 3, busy = laps * LAP_BYTES / REC_LEN;
	struct ckpt_group_health gh;
	uint64_t want[PAIRS];

	(void)state;
	put_all(c, r, 1);
	put_busy(c, r, 2, busy);
	gh = health(r);
	assert_true(gh.tail > LAP_BYTES / 2);
	assert_true(gh.relogged_bytes >= (PAIRS - 1) * REC_LEN);
	assert_true(gh.relogged_bytes <= 2 * (laps + 1) * PAIRS * REC_LEN);
	ckpt_disconnect(&c);
	want[0] = 1 + busy;
	for (uint32_t p = 1; p < PAIRS; p++)
		want[p] = 1;
	restores(want);
}

/*
 * A writer that opened a region another wrote (a restart that did not restore) has an
 * empty shadow: it reads the log before its first pass, so the pairs only the other
 * writer wrote are logged again rather than freed with the oldest part.
 */
static void test_reopened_writer_reads_the_log_before_it_cleans(void **state)
{
	struct ckpt_client *a = join(TARGET), *b;
	struct ckpt_region *r = create(a);
	const uint64_t busy = 2ull * LAP_BYTES / REC_LEN;
	uint64_t want[PAIRS];

	(void)state;
	put_all(a, r, 1);
	ckpt_disconnect(&a);
	b = join(TARGET);
	assert_int_equal(ckpt_region_open(b, "st", &r), 0);
	put_busy(b, r, 2, busy);
	assert_true(health(r).relogged_bytes >= (PAIRS - 1) * REC_LEN);
	ckpt_disconnect(&b);
	want[0] = 1 + busy;
	for (uint32_t p = 1; p < PAIRS; p++)
		want[p] = 1;
	restores(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_cleaner_frees_the_ring_so_writes_go_on, setup),
		cmocka_unit_test_setup(
			test_cleaner_copies_nothing_when_every_pair_is_rewritten_each_lap, setup),
		cmocka_unit_test_setup(test_cleaner_logs_again_only_what_the_freed_part_alone_holds,
				       setup),
		cmocka_unit_test_setup(test_reopened_writer_reads_the_log_before_it_cleans, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
