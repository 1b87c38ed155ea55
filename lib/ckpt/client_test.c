/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client core against a scripted backend: which bytes go where, in which order, and
 * when a ticket may be called durable. The backend completes barriers only when the test
 * says so, like a remote target would.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ckpt_internal.h"

#define REGION_SIZE (64 * 1024)

struct op {
	char kind; /* 'w' write, 'b' barrier */
	uint64_t off;
	size_t len;
	uint64_t seq;
};

static struct {
	uint8_t mem[REGION_SIZE];
	struct op ops[4096];
	unsigned int nops;
	uint64_t barrier_seq[64];
	unsigned int nbarriers, completed;
	int write_rc;
	unsigned int ring_moves; /* reads of a ring word after which the ring moves */
	uint64_t move_by;	 /* how far each move takes the head */
} be;

static int fake_write(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	(void)r;
	if (be.write_rc)
		return be.write_rc;
	assert_true(off + len <= REGION_SIZE);
	memcpy(be.mem + off, buf, len);
	be.ops[be.nops++] = (struct op){'w', off, len, 0};
	return 0;
}

static int fake_barrier(struct ckpt_region *r, uint64_t seq)
{
	(void)r;
	be.ops[be.nops++] = (struct op){'b', 0, 0, seq};
	be.barrier_seq[be.nbarriers++] = seq;
	return 0;
}

/* Complete the oldest outstanding barrier. */
static void complete_barrier(struct ckpt_region *r)
{
	assert_true(be.completed < be.nbarriers);
	r->durable = be.barrier_seq[be.completed++];
}

static int fake_poll(struct ckpt_client *c)
{
	(void)c;
	return 0;
}

static uint64_t word_at(uint64_t off)
{
	uint64_t v;

	memcpy(&v, be.mem + off, sizeof(v));
	return v;
}

static void set_word(uint64_t off, uint64_t v)
{
	memcpy(be.mem + off, &v, sizeof(v));
}

/*
 * Another writer publishes move_by bytes and the server's journal applier, right behind
 * it, applies up to the middle of them: both ring words move, and stay consistent.
 */
static void move_ring(void)
{
	uint64_t head = word_at(PMU_REGION_HEAD_OFF);

	set_word(PMU_REGION_TAIL_OFF, head + be.move_by / 2);
	set_word(PMU_REGION_HEAD_OFF, head + be.move_by);
}

static int fake_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len)
{
	(void)r;
	/* As every backend's read: outside the region is an error, never bytes. */
	if (off > REGION_SIZE || len > REGION_SIZE - off)
		return -EINVAL;
	memcpy(buf, be.mem + off, len);
	/* The ring moves between this read of one of its words and the next. */
	if ((off == PMU_REGION_HEAD_OFF || off == PMU_REGION_TAIL_OFF) && be.ring_moves > 0) {
		be.ring_moves--;
		move_ring();
	}
	return 0;
}

static const struct ckpt_byte_ops fake_ops = {
	.target = {.scheme = "fake", .barrier = fake_barrier, .poll = fake_poll},
	.applies_journal = true,
	.write = fake_write,
	.read = fake_read,
};

static struct ckpt_client client = {
	.ops = &fake_ops.target, .bytes = &fake_ops, .opts = {.timeout_ms = 100}};

static struct ckpt_region *region(enum pmu_mode mode, uint64_t ring)
{
	struct pmu_region_params p = {
		.name = "r", .owner = "t", .mode = mode, .size = REGION_SIZE, .ring_size = ring};
	struct ckpt_region *r = calloc(1, sizeof(*r));

	memset(&be, 0, sizeof(be));
	assert_int_equal(pmu_region_layout(&p, &r->geo), 0);
	r->cl = &client;
	client.regions = r;
	return r;
}

static struct ckpt_rec rec(uint32_t pair, uint64_t gen)
{
	static const uint8_t payload[40] = {1, 2, 3};

	return (struct ckpt_rec){.module_id = 2,
				 .conn_id = 100 + pair,
				 .generation = gen,
				 .slot_pair = pair,
				 .key = {.family = 4, .proto = 17},
				 .payload_len = sizeof(payload),
				 .payload = payload};
}

static uint64_t head_word(void)
{
	uint64_t h;

	memcpy(&h, be.mem + PMU_REGION_HEAD_OFF, sizeof(h));
	return h;
}

static void test_slot_generations_alternate_between_the_pair(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 0);
	struct ckpt_rec a = rec(3, 7), b = rec(3, 8);
	uint64_t t;

	(void)state;
	assert_int_equal(ckpt_slot_write(r, &a, false, &t), 0);
	assert_int_equal(ckpt_slot_write(r, &b, false, &t), 0);
	assert_int_equal(be.ops[0].off, PMU_REGION_HDR + 7 * r->geo.slot_size);
	assert_int_equal(be.ops[1].off, PMU_REGION_HDR + 6 * r->geo.slot_size);
	free(r);
}

static void test_slot_ticket_is_durable_only_after_its_barrier(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 0);
	struct ckpt_rec a = rec(1, 1);
	uint64_t t;

	(void)state;
	assert_int_equal(ckpt_slot_write(r, &a, false, &t), 0);
	assert_int_equal(ckpt_flush(r), 0);
	assert_true(ckpt_durable(r) < t);
	assert_int_equal(ckpt_poll(&client), 0);
	assert_true(ckpt_durable(r) < t);
	complete_barrier(r);
	assert_int_equal(ckpt_poll(&client), 0);
	assert_true(ckpt_durable(r) >= t);
	free(r);
}

static void test_log_head_is_written_after_records_are_durable(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_APPEND, 0);
	struct ckpt_rec a = rec(0, 1);
	uint64_t t;

	(void)state;
	a.slot_pair = CKPT_REC_NO_SLOT;
	assert_int_equal(ckpt_log_append(r, &a, &t), 0);
	assert_int_equal(ckpt_flush(r), 0);
	/* Records posted, barrier asked, head untouched. */
	assert_int_equal(head_word(), 0);
	assert_int_equal(be.ops[be.nops - 1].kind, 'b');
	complete_barrier(r);
	assert_int_equal(ckpt_poll(&client), 0);
	/* Head written after the data barrier, then its own barrier; not yet acknowledged. */
	assert_int_equal(head_word(), ckpt_rec_size(a.payload_len));
	assert_int_equal(be.ops[be.nops - 2].off, PMU_REGION_HEAD_OFF);
	assert_int_equal(be.ops[be.nops - 1].kind, 'b');
	assert_true(ckpt_durable(r) < t);
	complete_barrier(r);
	assert_int_equal(ckpt_poll(&client), 0);
	assert_true(ckpt_durable(r) >= t);
	/* Nothing left behind: a sync now needs no further barrier. */
	assert_int_equal(ckpt_durable(r), ckpt_posted(r));
	assert_int_equal(ckpt_sync(r), 0);
	assert_int_equal(be.nbarriers, 2);
	free(r);
}

static void test_flush_during_flush_is_not_lost(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 0);
	struct ckpt_rec a = rec(1, 1), b = rec(2, 1);
	uint64_t ta, tb;

	(void)state;
	assert_int_equal(ckpt_slot_write(r, &a, false, &ta), 0);
	assert_int_equal(ckpt_flush(r), 0);
	assert_int_equal(ckpt_slot_write(r, &b, false, &tb), 0);
	assert_int_equal(ckpt_flush(r), 0); /* while the first is under way */
	complete_barrier(r);
	assert_int_equal(ckpt_poll(&client), 0);
	assert_true(ckpt_durable(r) >= ta);
	assert_true(ckpt_durable(r) < tb);
	complete_barrier(r); /* the second flush started by itself */
	assert_int_equal(ckpt_poll(&client), 0);
	assert_true(ckpt_durable(r) >= tb);
	free(r);
}

static void test_batched_slot_write_goes_to_the_journal(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 8192);
	struct ckpt_rec a = rec(5, 3);
	struct ckpt_rec out;
	uint64_t t;

	(void)state;
	assert_int_equal(ckpt_slot_write(r, &a, true, &t), 0);
	assert_int_equal(be.ops[0].off, r->geo.ring_off);
	assert_true(ckpt_rec_decode(be.mem + r->geo.ring_off, 8192, &out) > 0);
	assert_int_equal(out.slot_pair, 5);
	free(r);
}

static void test_full_ring_refuses_until_the_tail_moves(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_APPEND, 0);
	struct ckpt_rec a = rec(0, 1);
	uint64_t t, tail;
	unsigned int n = 0;
	int rc;

	(void)state;
	a.slot_pair = CKPT_REC_NO_SLOT;
	while ((rc = ckpt_log_append(r, &a, &t)) == 0)
		n++, a.generation++;
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(n, r->geo.ring_size / ckpt_rec_size(a.payload_len));
	/* A reader clears half; the producer sees room again and wraps. */
	tail = r->geo.ring_size / 2;
	tail -= tail % ckpt_rec_size(a.payload_len);
	memcpy(be.mem + PMU_REGION_TAIL_OFF, &tail, sizeof(tail));
	assert_int_equal(ckpt_log_append(r, &a, &t), 0);
	free(r);
}

static void test_backend_queue_full_is_reported_not_dropped(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 0);
	struct ckpt_rec a = rec(1, 1);
	uint64_t t = 12345;

	(void)state;
	be.write_rc = -EAGAIN;
	assert_int_equal(ckpt_slot_write(r, &a, false, &t), -EAGAIN);
	assert_int_equal(t, 12345); /* untouched */
	assert_int_equal(ckpt_posted(r), 0);
	free(r);
}

static void test_refresh_resumes_after_another_writers_head(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_APPEND, 0);
	struct ckpt_rec a = rec(0, 1);
	uint64_t t, head = 3 * ckpt_rec_size(a.payload_len), tail = head / 3;

	(void)state;
	a.slot_pair = CKPT_REC_NO_SLOT;
	/* Another client (the primary) published three records; a reader cleared one. */
	memcpy(be.mem + PMU_REGION_HEAD_OFF, &head, sizeof(head));
	memcpy(be.mem + PMU_REGION_TAIL_OFF, &tail, sizeof(tail));
	assert_int_equal(ckpt_region_refresh(r), 0);
	assert_int_equal(ckpt_log_append(r, &a, &t), 0);
	assert_int_equal(be.ops[be.nops - 1].off, r->geo.ring_off + head); /* after them */
	/* With a write of its own in flight, a refresh would lose it: refused. */
	assert_int_equal(ckpt_region_refresh(r), -EBUSY);
	/* Ring words that cannot be: refused. */
	assert_int_equal(ckpt_flush(r), 0);
	complete_barrier(r);
	assert_int_equal(ckpt_poll(&client), 0);
	complete_barrier(r);
	assert_int_equal(ckpt_poll(&client), 0);
	tail = head + 4 * ckpt_rec_size(a.payload_len);
	memcpy(be.mem + PMU_REGION_TAIL_OFF, &tail, sizeof(tail));
	assert_int_equal(ckpt_region_refresh(r), -EINVAL);
	free(r);
}

/*
 * The ring's head and tail are two reads apart while the server's journal applier moves the
 * tail: read head first, a tail moved past it made a torn pair ("ring head 63952 and tail
 * 64400 are inconsistent", -EINVAL), and the primary's lease renewal failed on it. Whatever
 * moves between the two reads, the pair handed over is one that can be: the tail no later
 * than the head, no more than a ring apart.
 */
static void test_ring_words_read_while_the_ring_moves_are_consistent(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 8192);
	const uint64_t size = r->geo.ring_size;
	uint64_t head, tail;

	(void)state;
	set_word(PMU_REGION_TAIL_OFF, 63504);
	set_word(PMU_REGION_HEAD_OFF, 63952);
	/* Small moves: the tail passes the head read before it. */
	be.move_by = 896;
	be.ring_moves = 1;
	assert_int_equal(ckpt_ring_words(r, &head, &tail), 0);
	assert_true(tail <= head && head - tail <= size);
	/* Moves of most of a ring: a tail read before the head lags it by more than a ring. */
	be.move_by = size * 3 / 2;
	for (unsigned int moves = 1; moves <= 4; moves++) {
		be.ring_moves = moves;
		assert_int_equal(ckpt_ring_words(r, &head, &tail), 0);
		assert_true(tail <= head && head - tail <= size);
	}
	/* Still a fault where the words never make a pair, however often they are read. */
	be.ring_moves = 0;
	set_word(PMU_REGION_TAIL_OFF, word_at(PMU_REGION_HEAD_OFF) + 64);
	assert_int_equal(ckpt_ring_words(r, &head, &tail), -EINVAL);
	free(r);
}

static void test_slot_write_refuses_bad_pairs_and_modes(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 0);
	struct ckpt_rec a = rec((uint32_t)(r->geo.nslots / 2), 1);
	uint64_t t;

	(void)state;
	assert_int_equal(ckpt_slot_write(r, &a, false, &t), -EINVAL);
	a = rec(0, 1);
	a.payload_len = (uint16_t)r->geo.slot_size;
	assert_int_equal(ckpt_slot_write(r, &a, false, &t), -EINVAL);
	assert_int_equal(ckpt_log_append(r, &a, &t), -EINVAL);
	free(r);
}

static const void *fake_map(struct ckpt_region *r, uint64_t off, size_t len)
{
	(void)r;
	return off > REGION_SIZE || len > REGION_SIZE - off ? NULL : be.mem + off;
}

static const struct ckpt_byte_ops map_ops = {
	.target = {.scheme = "fakemap"},
	.read = fake_read,
	.map = fake_map,
};

static struct ckpt_client map_client = {
	.ops = &map_ops.target, .bytes = &map_ops, .opts = {.timeout_ms = 100}};

/*
 * A geometry past the mapped region's end (what a damaged table once served) is an error
 * of the read: a state read said "0 records" and verify said ok, a log read dereferenced
 * the NULL the backend gave for its ring.
 */
static void test_read_past_a_mapped_region_is_an_error_not_nothing(void **state)
{
	struct ckpt_region *r = region(PMU_MODE_OVERWRITE, 0);
	struct ckpt_scan_stats st;
	uint64_t head = 64;

	(void)state;
	r->cl = &map_client;
	r->geo.nslots = 1ull << 20;
	assert_int_equal(ckpt_state_read(r, NULL, NULL, &st), -EINVAL);
	free(r);
	r = region(PMU_MODE_APPEND, 0);
	r->cl = &map_client;
	memcpy(be.mem + PMU_REGION_HEAD_OFF, &head, sizeof(head));
	r->geo.ring_off = REGION_SIZE;
	assert_int_equal(ckpt_log_read(r, NULL, NULL, true, &st), -EINVAL);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_generations_alternate_between_the_pair),
		cmocka_unit_test(test_slot_ticket_is_durable_only_after_its_barrier),
		cmocka_unit_test(test_log_head_is_written_after_records_are_durable),
		cmocka_unit_test(test_flush_during_flush_is_not_lost),
		cmocka_unit_test(test_batched_slot_write_goes_to_the_journal),
		cmocka_unit_test(test_full_ring_refuses_until_the_tail_moves),
		cmocka_unit_test(test_backend_queue_full_is_reported_not_dropped),
		cmocka_unit_test(test_slot_write_refuses_bad_pairs_and_modes),
		cmocka_unit_test(test_refresh_resumes_after_another_writers_head),
		cmocka_unit_test(test_ring_words_read_while_the_ring_moves_are_consistent),
		cmocka_unit_test(test_read_past_a_mapped_region_is_an_error_not_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
