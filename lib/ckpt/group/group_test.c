/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Redundancy groups over three pmem: members in /dev/shm: one client writes a region while
 * another has it open (a standby), then the second takes over with ckpt_region_refresh()
 * and must write after everything the first published; the group's lease reads alive
 * while any member that holds the region says so; and a member whose store cannot be
 * reached when the writer connects (its directory is missing) joins once it can be: its
 * region is created, rebuilt while the writer and its cleaner go on, or left alone when it
 * is another group's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "holdfast/ckpt.h"
#include "holdfast/ckpt_group.h"
#include "test_rec.h"

#define PAYLOAD TEST_REC_PAYLOAD

static char member[3][64];
static char target[256];

static char late_dir[64], late[128]; /* a member whose directory appears later */

static struct ckpt_client *join_to(const char *where)
{
	struct ckpt_client_opts o = {
		.tenant = "holdfast",
		.create_store = true,
		.store_size = 32u << 20,
	};
	struct ckpt_client *c = ckpt_connect(where, &o);

	assert_non_null(c);
	return c;
}

static struct ckpt_client *join(void)
{
	return join_to(target);
}

static void rec_of(uint32_t pair, uint64_t gen, uint8_t *payload, struct ckpt_rec *rec)
{
	*rec = test_rec(pair, gen, payload);
}

static void append(struct ckpt_region *r, uint32_t first, uint32_t n)
{
	uint8_t payload[PAYLOAD];
	struct ckpt_rec rec;

	for (uint32_t p = first; p < first + n; p++) {
		rec_of(p, 1, payload, &rec);
		assert_int_equal(ckpt_log_append(r, &rec, NULL), 0);
	}
	assert_int_equal(ckpt_sync(r), 0);
}

static void write_slots(struct ckpt_region *r, uint32_t n, uint64_t gen)
{
	uint8_t payload[PAYLOAD];
	struct ckpt_rec rec;

	for (uint32_t p = 0; p < n; p++) {
		rec_of(p, gen, payload, &rec);
		assert_int_equal(ckpt_slot_write(r, &rec, true, NULL), 0);
	}
	assert_int_equal(ckpt_sync(r), 0);
}

struct seen {
	uint32_t n;
	uint32_t pair[1024];
	uint64_t gen[1024];
};

static int note(const struct ckpt_rec *rec, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < 1024);
	s->pair[s->n] = rec->slot_pair;
	s->gen[s->n++] = rec->generation;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		snprintf(member[i], sizeof(member[i]), "/dev/shm/hf-group-test.%d.%d", getpid(), i);
	snprintf(late_dir, sizeof(late_dir), "/dev/shm/hf-group-test.%d.late", getpid());
	snprintf(late, sizeof(late), "%s/store", late_dir);
	snprintf(target, sizeof(target), "group:xor(2)=pmem:%s,pmem:%s,pmem:%s", member[0],
		 member[1], member[2]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		unlink(member[i]);
	unlink(late);
	rmdir(late_dir);
	return 0;
}

static void test_refresh_appends_after_the_other_writers_log(void **state)
{
	struct ckpt_client *a = join(), *b = join(), *c;
	struct pmu_region_params p = {
		.name = "log",
		.mode = PMU_MODE_APPEND,
		.size = PMU_REGION_HDR + (256u << 10),
	};
	struct ckpt_region *ra, *rb, *rc;
	struct seen s = {0};

	(void)state;
	assert_int_equal(ckpt_region_create(a, &p, &ra), 0);
	append(ra, 0, 100);
	assert_int_equal(ckpt_region_open(b, "log", &rb), 0); /* the standby opens it */
	append(ra, 100, 100);				      /* the primary goes on */
	assert_int_equal(ckpt_region_close(&ra), 0);
	ckpt_disconnect(&a);
	/* Takeover: the new writer goes on after the primary's last record. */
	assert_int_equal(ckpt_region_refresh(rb), 0);
	append(rb, 200, 100);
	c = join();
	assert_int_equal(ckpt_region_open(c, "log", &rc), 0);
	assert_int_equal(ckpt_log_read(rc, note, &s, true, NULL), 300);
	for (uint32_t i = 0; i < 300; i++)
		assert_int_equal(s.pair[i], i);
	ckpt_disconnect(&c);
	/* Nothing in flight may be lost: a refresh with writes pending is refused. */
	{
		uint8_t payload[PAYLOAD];
		struct ckpt_rec rec;

		rec_of(300, 1, payload, &rec);
		assert_int_equal(ckpt_log_append(rb, &rec, NULL), 0);
		assert_int_equal(ckpt_region_refresh(rb), -EBUSY);
		assert_int_equal(ckpt_sync(rb), 0);
		assert_int_equal(ckpt_region_refresh(rb), 0);
	}
	ckpt_disconnect(&b);
}

static void test_refresh_writes_state_after_the_other_writers_segments(void **state)
{
	struct ckpt_client *a = join(), *b = join(), *c;
	struct pmu_region_params p = {
		.name = "st",
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2 * 64 * 128 + (64u << 10),
		.slot_size = 128,
		.ring_size = 64u << 10,
	};
	struct ckpt_region *ra, *rb, *rc;
	struct seen s = {0};

	(void)state;
	assert_int_equal(ckpt_region_create(a, &p, &ra), 0);
	write_slots(ra, 64, 1);
	assert_int_equal(ckpt_region_open(b, "st", &rb), 0);
	write_slots(ra, 32, 2);
	assert_int_equal(ckpt_region_close(&ra), 0);
	ckpt_disconnect(&a);
	assert_int_equal(ckpt_region_refresh(rb), 0);
	write_slots(rb, 16, 3);
	c = join();
	assert_int_equal(ckpt_region_open(c, "st", &rc), 0);
	assert_int_equal(ckpt_state_scan(rc, 0, note, &s, NULL), 0);
	assert_int_equal(s.n, 64);
	for (uint32_t i = 0; i < 64; i++) {
		assert_int_equal(s.pair[i], i);
		assert_int_equal(s.gen[i], i < 16 ? 3 : i < 32 ? 2 : 1);
	}
	ckpt_disconnect(&c);
	ckpt_disconnect(&b);
}

static void test_lease_is_alive_while_any_member_holds_it_alive(void **state)
{
	struct ckpt_client_opts o = {.tenant = "holdfast"};
	struct ckpt_client *a = join(), *m0;
	struct ckpt_region *ra, *r0;
	struct ckpt_region_info info;
	char one[128];

	(void)state;
	assert_int_equal(ckpt_region_open(a, "st", &ra), 0);
	assert_int_equal(ckpt_lease_renew(ra, 60000), 0);
	assert_int_equal(ckpt_region_stat(a, "st", &info), 0);
	assert_true(info.lease_alive && info.r.lease_ns != 0);
	/* Member 0 missed the renewals (it was down): its lease ran out long ago. */
	snprintf(one, sizeof(one), "pmem:%s", member[0]);
	m0 = ckpt_connect(one, &o);
	assert_non_null(m0);
	assert_int_equal(ckpt_region_open(m0, "st", &r0), 0);
	assert_int_equal(ckpt_lease_renew(r0, 1), 0);
	usleep(20000);
	assert_int_equal(ckpt_region_stat(m0, "st", &info), 0);
	assert_false(info.lease_alive);
	ckpt_disconnect(&m0);
	/* The group still says alive: the writer renews it on the others. */
	assert_int_equal(ckpt_region_stat(a, "st", &info), 0);
	assert_true(info.lease_alive);
	/* Run out everywhere: expired. */
	assert_int_equal(ckpt_lease_renew(ra, 1), 0);
	usleep(20000);
	assert_int_equal(ckpt_region_stat(a, "st", &info), 0);
	assert_false(info.lease_alive);
	assert_true(info.r.lease_ns != 0);
	ckpt_disconnect(&a);
}

/* Take the next epoch of fw.0 on member @p i alone (as if the group's take reached only it). */
static void take_on_member(unsigned int i, uint64_t seen)
{
	struct ckpt_client_opts o = {.tenant = "holdfast"};
	struct ckpt_client *m;
	struct ckpt_region *r;
	char one[128];
	uint64_t e;

	snprintf(one, sizeof(one), "pmem:%s", member[i]);
	m = ckpt_connect(one, &o);
	assert_non_null(m);
	assert_int_equal(ckpt_region_open(m, "fw.0", &r), 0);
	assert_int_equal(ckpt_epoch_take(r, seen, &e), 0);
	ckpt_disconnect(&m);
}

/*
 * Fencing on a group (issue 14): a take moves every member's epoch by one; a second taker
 * from the same epoch gets ESTALE (at member 0, before touching any other); the group reports
 * the furthest member epoch; a member behind the others (it missed a take) is passed over by
 * the next take, which the majority still makes; a bind below the epoch is ESTALE; a watch
 * is not offered.
 */
static void test_epoch_take_and_bind_go_to_the_members(void **state)
{
	struct pmu_region_params p = {
		.name = "fw.0",
		.mode = PMU_MODE_APPEND,
		.size = PMU_REGION_HDR + (64u << 10),
	};
	struct ckpt_client *a = join(), *b = join();
	struct ckpt_region *ra, *rb;
	struct ckpt_region_info info;
	uint64_t e = 0, e2 = 0;

	(void)state;
	assert_int_equal(ckpt_region_create(a, &p, &ra), 0);
	assert_int_equal(ckpt_region_open(b, "fw.0", &rb), 0);
	assert_int_equal(ckpt_region_stat(a, "fw.0", &info), 0);
	assert_true(info.r.epoch == 0);
	assert_int_equal(ckpt_epoch_take(ra, 0, &e), 0);
	assert_true(e == 1);
	assert_int_equal(ckpt_epoch_take(rb, 0, &e2), -ESTALE);
	assert_int_equal(ckpt_region_stat(b, "fw.0", &info), 0);
	assert_true(info.r.epoch == 1);
	assert_int_equal(ckpt_lease_watch(ra, 10), -ENOTSUP);

	/* Members 0 and 1 move on without member 2: the group says 2, member 2 lags at 1. */
	take_on_member(0, 1);
	take_on_member(1, 1);
	assert_int_equal(ckpt_region_stat(b, "fw.0", &info), 0);
	assert_true(info.r.epoch == 2);
	assert_int_equal(ckpt_epoch_take(rb, 2, &e2), 0);
	assert_true(e2 == 3);
	assert_int_equal(ckpt_region_stat(a, "fw.0", &info), 0);
	assert_true(info.r.epoch == 3);

	assert_int_equal(ckpt_epoch_bind(a, "fw.0", e), -ESTALE);
	assert_int_equal(ckpt_epoch_bind(b, "fw.0", e2), 0);
	assert_int_equal(ckpt_epoch_bind(b, "no-such", 1), -ENOENT);
	ckpt_disconnect(&a);
	ckpt_region_close(&rb);
	assert_int_equal(ckpt_region_delete(b, "fw.0"), 0); /* room for the tests after */
	ckpt_disconnect(&b);
}

/* The whole of a member's store file, to put back later. */
static void *file_copy(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

static void file_put_back(const char *path, void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
}

/*
 * A writer killed in the middle of a flush: its last segments and the head that publishes
 * them reached member 0 only (members 1 and 2 are put back as they were before). Fewer than
 * k members hold them, so that flush was never acknowledged: the restore ends before them
 * and hands over the generation before, instead of failing as if data were lost.
 */
static void test_flush_that_reached_fewer_than_k_members_is_not_restored(void **state)
{
	struct pmu_region_params p = {
		.name = "torn",
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2 * 64 * 128,
		.slot_size = 128,
	};
	struct ckpt_client *a = join();
	struct ckpt_region *r;
	struct seen s = {0};
	void *saved[2];
	size_t len[2];

	(void)state;
	assert_int_equal(ckpt_region_create(a, &p, &r), 0);
	write_slots(r, 64, 1);
	ckpt_disconnect(&a);
	for (int i = 0; i < 2; i++)
		saved[i] = file_copy(member[i + 1], &len[i]);
	a = join();
	assert_int_equal(ckpt_region_open(a, "torn", &r), 0);
	write_slots(r, 64, 2);
	ckpt_disconnect(&a);
	for (int i = 0; i < 2; i++)
		file_put_back(member[i + 1], saved[i], len[i]);
	a = join();
	assert_int_equal(ckpt_region_open(a, "torn", &r), 0);
	assert_int_equal(ckpt_state_scan(r, 0, note, &s, NULL), 0);
	assert_int_equal(s.n, 64);
	for (uint32_t i = 0; i < 64; i++)
		assert_int_equal(s.gen[i], 1);
	ckpt_disconnect(&a);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum ckpt_member_state state_of(struct ckpt_region *r, unsigned int i)
{
	struct ckpt_group_health gh;

	assert_int_equal(ckpt_group_health(r, false, &gh), 0);
	return gh.member[i].state;
}

static bool whole(struct ckpt_region *r)
{
	struct ckpt_group_health gh;

	assert_int_equal(ckpt_group_health(r, false, &gh), 0);
	for (unsigned int i = 0; i < gh.members; i++)
		if (gh.member[i].state != CKPT_MEMBER_OK)
			return false;
	return !gh.rebuilding;
}

/* Poll, and note how long it took if a rebuild is under way. */
static void poll_timed(struct ckpt_client *c, struct ckpt_region *r, double *longest)
{
	struct ckpt_group_health gh;
	bool before, after;
	double t0, dt;

	assert_int_equal(ckpt_group_health(r, false, &gh), 0);
	before = gh.rebuilding;
	t0 = now_s();
	assert_true(ckpt_poll(c) >= 0);
	dt = now_s() - t0;
	assert_int_equal(ckpt_group_health(r, false, &gh), 0);
	after = gh.rebuilding;
	if ((before || after) && dt > *longest)
		*longest = dt;
}

/* One generation of @p n pairs, polled as a writer does; the longest poll while rebuilding. */
static void write_gen_timed(struct ckpt_client *c, struct ckpt_region *r, uint32_t n, uint64_t gen,
			    double *longest)
{
	uint8_t payload[PAYLOAD];
	struct ckpt_rec rec;

	for (uint32_t p = 0; p < n; p++) {
		int rc;

		rec_of(p, gen, payload, &rec);
		while ((rc = ckpt_slot_write(r, &rec, true, NULL)) == -EAGAIN)
			poll_timed(c, r, longest);
		assert_int_equal(rc, 0);
		if (p % 64 == 63) {
			assert_int_equal(ckpt_flush(r), 0);
			poll_timed(c, r, longest);
		}
	}
	assert_int_equal(ckpt_sync(r), 0);
}

/* Without member 0, region @p name of the xor(2) group over member 1 and the late member
 * restores @p n pairs (0..n-1), every one at generation @p gen. */
static void restores_without_member_0(const char *name, uint32_t n, uint64_t gen)
{
	struct seen *s = calloc(1, sizeof(*s));
	char t[512];
	struct ckpt_client *c;
	struct ckpt_region *r;

	assert_non_null(s);
	snprintf(t, sizeof(t), "group:xor(2)=pmem:%s.gone/x,pmem:%s,pmem:%s", member[0], member[1],
		 late);
	c = join_to(t);
	assert_int_equal(ckpt_region_open(c, name, &r), 0);
	assert_int_equal(ckpt_state_scan(r, 0, note, s, NULL), 0);
	assert_int_equal(s->n, n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(s->gen[i], gen);
	ckpt_disconnect(&c);
	free(s);
}

/*
 * Member 2 cannot be reached when the writer connects. Once its store can be created, the
 * writer (polling, never told) creates the region there and rebuilds it, while it goes on
 * writing generations through a ring its cleaner frees again and again. Afterwards the
 * group restores everything without member 0: member 2 holds its share of every segment.
 */
static void test_member_missing_at_connect_is_created_and_rebuilt(void **state)
{
	struct pmu_region_params p = {
		.name = "rj",
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2 * 512 * 128 + (64u << 10),
		.slot_size = 128,
		.ring_size = 64u << 10,
	};
	char t[512];
	struct ckpt_client *c;
	struct ckpt_region *r;
	struct ckpt_group_health gh;
	double longest = 0, give_up;
	uint64_t gen = 0;

	(void)state;
	unlink(late);
	rmdir(late_dir);
	snprintf(t, sizeof(t), "group:xor(2)=pmem:%s,pmem:%s,pmem:%s", member[0], member[1], late);
	c = join_to(t);
	assert_int_equal(ckpt_region_create(c, &p, &r), 0);
	assert_int_equal(state_of(r, 2), CKPT_MEMBER_DOWN);
	while (gen < 20)
		write_gen_timed(c, r, 512, ++gen, &longest);
	assert_int_equal(mkdir(late_dir, 0700), 0);
	/* Tried again about once a second: rebuilt within a few. */
	give_up = now_s() + 10;
	while (!whole(r) && now_s() < give_up)
		write_gen_timed(c, r, 512, ++gen, &longest);
	assert_true(whole(r));
	assert_true(longest > 0); /* polls ran while it was rebuilt */
	/* The cleaner went on meanwhile: the ring came round several times. */
	while (gen < 400)
		write_gen_timed(c, r, 512, ++gen, &longest);
	assert_int_equal(ckpt_group_health(r, true, &gh), 0);
	assert_true(gh.relogged_bytes > 0 || gh.tail > 0);
	assert_int_equal(gh.degraded, 0);
	assert_int_equal(gh.member[2].missing, 0);
	printf("longest poll while rebuilding: %.3f ms (a figure, not judged)\n", longest * 1e3);
	ckpt_disconnect(&c);
	restores_without_member_0("rj", 512, gen);
	unlink(late);
	rmdir(late_dir);
}

/*
 * A member that was missing while the group client took its epoch rejoins bound to it: its
 * lease region, made on it at epoch 0, is brought up to the client's epoch by takes and the
 * new connection bound (a bind alone would be EINVAL there: nobody took that epoch on it).
 */
static void test_member_that_rejoins_is_brought_to_the_epoch_and_bound(void **state)
{
	struct pmu_region_params lp = {
		.name = "ep.0",
		.mode = PMU_MODE_APPEND,
		.size = PMU_REGION_HDR + (64u << 10),
	};
	struct pmu_region_params sp = {
		.name = "ep.1",
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2 * 64 * 128 + (64u << 10),
		.slot_size = 128,
		.ring_size = 64u << 10,
	};
	struct ckpt_client_opts o = {.tenant = "holdfast"};
	struct ckpt_client *c, *m;
	struct ckpt_region *rl, *rs;
	struct ckpt_region_info mi;
	double longest = 0, give_up;
	uint64_t gen = 0, e = 0;
	char t[512], one[160];

	(void)state;
	unlink(late);
	rmdir(late_dir);
	snprintf(t, sizeof(t), "group:xor(2)=pmem:%s,pmem:%s,pmem:%s", member[0], member[1], late);
	c = join_to(t);
	assert_int_equal(ckpt_region_create(c, &lp, &rl), 0);
	assert_int_equal(ckpt_region_create(c, &sp, &rs), 0);
	assert_int_equal(ckpt_epoch_take(rl, 0, &e), 0);
	assert_int_equal(ckpt_epoch_take(rl, 1, &e), 0);
	assert_true(e == 2);
	while (gen < 5)
		write_gen_timed(c, rs, 64, ++gen, &longest);
	assert_int_equal(mkdir(late_dir, 0700), 0);
	give_up = now_s() + 10;
	while (!whole(rs) && now_s() < give_up)
		write_gen_timed(c, rs, 64, ++gen, &longest);
	assert_true(whole(rs));
	snprintf(one, sizeof(one), "pmem:%s", late);
	m = ckpt_connect(one, &o);
	assert_non_null(m);
	assert_int_equal(ckpt_region_stat(m, "ep.0", &mi), 0);
	assert_true(mi.r.epoch == 2);
	ckpt_disconnect(&m);
	ckpt_region_close(&rl);
	ckpt_region_close(&rs);
	/* The lease region last: a client bound to a lease region that is gone is fenced. */
	assert_int_equal(ckpt_region_delete(c, "ep.1"), 0);
	assert_int_equal(ckpt_region_delete(c, "ep.0"), 0);
	ckpt_disconnect(&c);
	unlink(late);
	rmdir(late_dir);
}

static int foreign_lines;

static void count_foreign(enum ckpt_log_level level, const char *component, const char *msg)
{
	(void)component;
	if (level <= CKPT_LOG_WARNING && strstr(msg, "not this group's") != NULL)
		__atomic_add_fetch(&foreign_lines, 1, __ATOMIC_RELAXED);
}

/*
 * A writer on xor(2) whose member 2 is missing at connect writes region @p name (64 pairs,
 * one generation); then member 2's store appears holding an append region of that name
 * that no group wrote -- with one record in it when @p with_record, else empty. Returns
 * the writer's client and region; @p gen is the generation written.
 */
static struct ckpt_client *late_member_holds_other(const char *name, bool with_record,
						   struct ckpt_region **r, uint64_t *gen)
{
	struct pmu_region_params p = {
		.name = name,
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2 * 64 * 128 + (64u << 10),
		.slot_size = 128,
		.ring_size = 64u << 10,
	};
	struct pmu_region_params other = {
		.name = name,
		.mode = PMU_MODE_APPEND,
		.size = PMU_REGION_HDR + (256u << 10),
	};
	char t[512], one[160];
	struct ckpt_client *c, *m;
	struct ckpt_region *mr;
	double longest = 0;

	unlink(late);
	rmdir(late_dir);
	snprintf(t, sizeof(t), "group:xor(2)=pmem:%s,pmem:%s,pmem:%s", member[0], member[1], late);
	c = join_to(t);
	assert_int_equal(ckpt_region_create(c, &p, r), 0);
	*gen = 1;
	write_gen_timed(c, *r, 64, *gen, &longest);
	assert_int_equal(mkdir(late_dir, 0700), 0);
	snprintf(one, sizeof(one), "pmem:%s", late);
	m = join_to(one);
	assert_int_equal(ckpt_region_create(m, &other, &mr), 0);
	if (with_record) {
		uint8_t payload[PAYLOAD];
		struct ckpt_rec rec;

		rec_of(7, 1, payload, &rec);
		assert_int_equal(ckpt_log_append(mr, &rec, NULL), 0);
		assert_int_equal(ckpt_sync(mr), 0);
	}
	ckpt_disconnect(&m);
	return c;
}

/*
 * Member 2 comes back holding a region of that name that no group wrote, with someone's
 * data in it: it is left out of the region, said once, and the writer goes on with the
 * others.
 */
static void test_member_back_with_a_foreign_region_is_left_out(void **state)
{
	char one[160];
	struct ckpt_client *c, *m;
	struct ckpt_region *r, *mr;
	double longest = 0, until;
	uint64_t gen;

	(void)state;
	c = late_member_holds_other("fr", true, &r, &gen);
	foreign_lines = 0;
	ckpt_log_set(count_foreign, CKPT_LOG_DEBUG);
	for (until = now_s() + 3; now_s() < until;) {
		write_gen_timed(c, r, 64, ++gen, &longest);
		usleep(10000);
	}
	ckpt_log_set(NULL, CKPT_LOG_NOTICE);
	assert_int_equal(state_of(r, 2), CKPT_MEMBER_FOREIGN);
	assert_int_equal(__atomic_load_n(&foreign_lines, __ATOMIC_RELAXED), 1);
	ckpt_disconnect(&c);
	/* The other region is untouched. */
	snprintf(one, sizeof(one), "pmem:%s", late);
	m = join_to(one);
	assert_int_equal(ckpt_region_open(m, "fr", &mr), 0);
	{
		struct seen *s = calloc(1, sizeof(*s));

		assert_non_null(s);
		assert_int_equal(ckpt_log_read(mr, note, s, true, NULL), 1);
		assert_int_equal(s->pair[0], 7);
		assert_int_equal(s->gen[0], 1);
		free(s);
	}
	ckpt_disconnect(&m);
	unlink(late);
	rmdir(late_dir);
}

/*
 * Member 2 comes back holding the region's name as an empty append region without a group
 * descriptor: what a create that timed out on the writer's side leaves (the server made the
 * region, the descriptor never came). The writer deletes it, makes it again and rebuilds it.
 */
static void test_member_back_with_an_abandoned_create_is_made_again(void **state)
{
	struct ckpt_client *c;
	struct ckpt_region *r;
	double longest = 0, give_up;
	uint64_t gen;

	(void)state;
	c = late_member_holds_other("ab", false, &r, &gen);
	give_up = now_s() + 10;
	while (!whole(r) && now_s() < give_up) {
		write_gen_timed(c, r, 64, ++gen, &longest);
		usleep(10000);
	}
	assert_true(whole(r));
	ckpt_disconnect(&c);
	/* Member 2 now holds the group's region: the group restores without member 0. */
	restores_without_member_0("ab", 64, gen);
	unlink(late);
	rmdir(late_dir);
}

/*
 * A group whose k and m, as written, sum past 2^32 to its number of members is refused
 * as a bad shape (it once reached the Reed-Solomon tables with k = 2^32 - 1), and so are
 * the other malformed ones; nothing is created at the members.
 */
static void test_malformed_group_targets_are_refused(void **state)
{
	static const char *const bad[] = {
		"group:rs(4294967295,3)=pmem:%s,pmem:%s",
		"group:rs(2147483648,2147483650)=pmem:%s,pmem:%s",
		"group:xor(4294967295)=pmem:%s,pmem:%s",
		"group:rs(1,1)pmem:%s,pmem:%s",
		"group:rs(1,1)=pmem:%s,group:pmem:%s",
		"group:raid5=pmem:%s,pmem:%s",
	};
	struct ckpt_client_opts o = {
		.tenant = "holdfast",
		.create_store = true,
		.store_size = 32u << 20,
	};
	char where[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(where, sizeof(where), bad[i], member[0], member[1]);
		errno = 0;
		assert_null(ckpt_connect(where, &o));
		assert_int_equal(errno, EINVAL);
		assert_int_equal(access(member[0], F_OK), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed_group_targets_are_refused),
		cmocka_unit_test(test_refresh_appends_after_the_other_writers_log),
		cmocka_unit_test(test_refresh_writes_state_after_the_other_writers_segments),
		cmocka_unit_test(test_lease_is_alive_while_any_member_holds_it_alive),
		cmocka_unit_test(test_epoch_take_and_bind_go_to_the_members),
		cmocka_unit_test(test_member_that_rejoins_is_brought_to_the_epoch_and_bound),
		cmocka_unit_test(test_flush_that_reached_fewer_than_k_members_is_not_restored),
		cmocka_unit_test(test_member_missing_at_connect_is_created_and_rebuilt),
		cmocka_unit_test(test_member_back_with_a_foreign_region_is_left_out),
		cmocka_unit_test(test_member_back_with_an_abandoned_create_is_made_again),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
