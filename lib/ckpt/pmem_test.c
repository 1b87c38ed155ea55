/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The embedded pmem: backend's fencing and death notice: taking and binding epochs, what a
 * fenced client is refused, one winner among racing takers, and ckpt_lease_watch() seeing
 * a killed holder at once (its OFD lock dropped by the kernel) while a live one holds; and
 * the restore scan split over a reader thread handing over what the one-thread scan does.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckpt_internal.h"

#define STORE_SIZE (4u << 20)
#define LEASE	   "fw.0"
#define STATE	   "fw.1"

struct fixture {
	char dir[64];
	char path[96];
	char target[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/dev/shm/pmem_test.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/store", f->dir);
	snprintf(f->target, sizeof(f->target), "pmem:%s", f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct ckpt_client *client(const struct fixture *f)
{
	struct ckpt_client_opts opts = {
		.tenant = "fw1", .create_store = true, .store_size = STORE_SIZE};

	return ckpt_connect(f->target, &opts);
}

/* The lease region and a state region, made by a client that then goes away. */
static void make_regions(const struct fixture *f)
{
	struct pmu_region_params lp = {.name = LEASE, .mode = PMU_MODE_APPEND, .size = 8192};
	struct pmu_region_params sp = {.name = STATE, .mode = PMU_MODE_OVERWRITE, .size = 65536};
	struct ckpt_client *c = client(f);
	struct ckpt_region *r;

	assert_non_null(c);
	assert_int_equal(ckpt_region_create(c, &lp, &r), 0);
	assert_int_equal(ckpt_region_close(&r), 0);
	assert_int_equal(ckpt_region_create(c, &sp, &r), 0);
	assert_int_equal(ckpt_region_close(&r), 0);
	ckpt_disconnect(&c);
}

static struct ckpt_region *open_region(struct ckpt_client *c, const char *name)
{
	struct ckpt_region *r = NULL;

	assert_int_equal(ckpt_region_open(c, name, &r), 0);
	return r;
}

static struct ckpt_rec slice(uint32_t pair, uint64_t gen)
{
	static const uint8_t payload[16] = {1, 2, 3, 4};

	return (struct ckpt_rec){.module_id = 1,
				 .conn_id = 1000 + pair,
				 .generation = gen,
				 .slot_pair = pair,
				 .key = {.family = 4, .proto = 6},
				 .payload_len = sizeof(payload),
				 .payload = payload};
}

static uint64_t epoch_of(struct ckpt_client *c)
{
	struct ckpt_region_info info;

	assert_int_equal(ckpt_region_stat(c, LEASE, &info), 0);
	return info.r.epoch;
}

static void test_newer_epoch_fences_barrier_renewal_create_and_delete(void **state)
{
	const struct fixture *f = *state;
	struct pmu_region_params np = {.name = "fw.new", .mode = PMU_MODE_APPEND, .size = 8192};
	struct ckpt_client *old, *taker, *reader;
	struct ckpt_region *old_lease, *old_state, *new_lease, *r;
	struct ckpt_rec s = slice(3, 1);
	uint64_t epoch = 0, ticket;

	make_regions(f);
	old = client(f);
	taker = client(f);
	reader = client(f);
	assert_non_null(old);
	assert_non_null(taker);
	assert_non_null(reader);

	/* The primary takes epoch 1 and works as ever. */
	old_lease = open_region(old, LEASE);
	old_state = open_region(old, STATE);
	assert_int_equal(ckpt_epoch_take(old_lease, 0, &epoch), 0);
	assert_true(epoch == 1);
	assert_true(old->bound.on && strcmp(old->bound.lease, LEASE) == 0 &&
		    old->bound.epoch == 1); /* the core remembers it */
	assert_true(epoch_of(reader) == 1);
	assert_int_equal(ckpt_lease_renew(old_lease, 10000), 0);
	assert_int_equal(ckpt_slot_write(old_state, &s, false, &ticket), 0);
	assert_int_equal(ckpt_sync(old_state), 0);
	/* A write posted, its barrier not yet asked for, when the standby takes over. */
	s = slice(3, 2);
	assert_int_equal(ckpt_slot_write(old_state, &s, false, &ticket), 0);

	/* The standby saw epoch 1 and takes 2. */
	new_lease = open_region(taker, LEASE);
	assert_int_equal(ckpt_epoch_take(new_lease, 1, &epoch), 0);
	assert_true(epoch == 2 && epoch_of(reader) == 2);

	/* The old primary: its barrier (the durability point) is refused, then everything. */
	assert_int_equal(ckpt_flush(old_state), -ESTALE);
	assert_true(ckpt_durable(old_state) < ticket);
	s = slice(4, 1);
	assert_int_equal(ckpt_slot_write(old_state, &s, false, &ticket), -ESTALE);
	assert_int_equal(ckpt_lease_renew(old_lease, 10000), -ESTALE);
	assert_int_equal(ckpt_region_create(old, &np, &r), -ESTALE);
	assert_int_equal(ckpt_region_delete(old, "fw.new"), -ESTALE);
	/* It cannot take the epoch back with what it saw, nor bind to its old one. */
	assert_int_equal(ckpt_epoch_take(old_lease, 1, &epoch), -ESTALE);
	assert_int_equal(ckpt_epoch_bind(reader, LEASE, 1), -ESTALE);
	assert_false(reader->bound.on); /* a refused binding is not remembered */

	/* The new primary works; so does a client never bound (a reader, an operator). */
	assert_int_equal(ckpt_lease_renew(new_lease, 10000), 0);
	assert_int_equal(ckpt_region_create(taker, &np, &r), 0);
	assert_int_equal(ckpt_region_close(&r), 0);
	assert_int_equal(ckpt_region_create(reader,
					    &(struct pmu_region_params){.name = "other",
									.mode = PMU_MODE_APPEND,
									.size = 8192},
					    &r),
			 0);
	assert_int_equal(ckpt_region_close(&r), 0);
	assert_int_equal(ckpt_region_delete(reader, "other"), 0);

	/* Bound to the current epoch, a second connection of the new primary works too. */
	assert_int_equal(ckpt_epoch_bind(reader, LEASE, 2), 0);
	assert_true(reader->bound.on && reader->bound.epoch == 2);
	assert_int_equal(ckpt_region_delete(reader, "fw.new"), 0);
	/* Binding to an epoch nobody took is a mistake; to a missing region, -ENOENT. */
	assert_int_equal(ckpt_epoch_bind(reader, LEASE, 3), -EINVAL);
	assert_int_equal(ckpt_epoch_bind(reader, "nosuch", 2), -ENOENT);

	ckpt_region_close(&old_state); /* its unsynced write cannot be made durable now */
	assert_int_equal(ckpt_region_close(&old_lease), 0);
	assert_int_equal(ckpt_region_close(&new_lease), 0);
	ckpt_disconnect(&old);
	ckpt_disconnect(&taker);
	ckpt_disconnect(&reader);
}

/* A bound client whose lease region is deleted has no epoch left to be current in. */
static void test_deleted_lease_region_fences_its_bound_clients(void **state)
{
	const struct fixture *f = *state;
	struct ckpt_client *bound, *other;
	struct ckpt_region *lease, *st;
	struct ckpt_rec s = slice(1, 1);
	uint64_t epoch, ticket;

	make_regions(f);
	bound = client(f);
	other = client(f);
	lease = open_region(bound, LEASE);
	st = open_region(bound, STATE);
	assert_int_equal(ckpt_epoch_take(lease, 0, &epoch), 0);
	assert_int_equal(ckpt_region_close(&lease), 0);
	assert_int_equal(ckpt_region_delete(other, LEASE), 0);
	assert_int_equal(ckpt_slot_write(st, &s, false, &ticket), -ESTALE);
	ckpt_region_close(&st);
	ckpt_disconnect(&bound);
	ckpt_disconnect(&other);
}

/*
 * Standbys in processes of their own saw one epoch and race to take the next: exactly one
 * wins each round, the others are told -ESTALE.
 */
static void test_racing_takers_have_one_winner(void **state)
{
	enum {
		TAKERS = 3,
		ROUNDS = 10
	};
	const struct fixture *f = *state;
	struct ckpt_client *c;

	make_regions(f);
	for (uint64_t round = 0; round < ROUNDS; round++) {
		int go[2], wins = 0, losses = 0;
		pid_t pid[TAKERS];

		assert_int_equal(pipe(go), 0);
		for (int i = 0; i < TAKERS; i++) {
			pid[i] = fork();
			assert_true(pid[i] >= 0);
			if (pid[i] == 0) {
				struct ckpt_client *cc = client(f);
				struct ckpt_region *r = NULL;
				uint64_t epoch;
				char byte;
				int rc;

				close(go[1]);
				if (cc == NULL || ckpt_region_open(cc, LEASE, &r) != 0 ||
				    read(go[0], &byte, 1) != 0)
					_exit(3);
				rc = ckpt_epoch_take(r, round, &epoch);
				_exit(rc == 0 && epoch == round + 1 ? 0 : rc == -ESTALE ? 1 : 2);
			}
		}
		close(go[0]);
		close(go[1]); /* every taker goes at once */
		for (int i = 0; i < TAKERS; i++) {
			int status;

			assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
			assert_true(WIFEXITED(status));
			wins += WEXITSTATUS(status) == 0;
			losses += WEXITSTATUS(status) == 1;
		}
		assert_int_equal(wins, 1);
		assert_int_equal(losses, TAKERS - 1);
	}
	c = client(f);
	assert_true(epoch_of(c) == ROUNDS);
	ckpt_disconnect(&c);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A primary in a process of its own: renews the lease for @p ttl_ms (then releases it when
 * @p release), says so on @p ready, and waits to be killed.
 */
static pid_t holder(const struct fixture *f, unsigned int ttl_ms, bool release)
{
	int ready[2];
	char byte = 0;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ckpt_client *c = client(f);
		struct ckpt_region *r = NULL;

		close(ready[0]);
		if (c == NULL || ckpt_region_open(c, LEASE, &r) != 0 ||
		    ckpt_lease_renew(r, ttl_ms) != 0 || (release && ckpt_lease_renew(r, 1) != 0))
			_exit(2);
		if (write(ready[1], "x", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &byte, 1), 1);
	close(ready[0]);
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_lease_watch_sees_a_killed_holder_at_once(void **state)
{
	const unsigned int ttl_ms = 10000;
	const struct fixture *f = *state;
	struct ckpt_client *w, *again;
	struct ckpt_region *r, *mine;
	uint64_t t0, waited;
	pid_t pid;
	int status;

	make_regions(f);
	w = client(f);
	r = open_region(w, LEASE);
	/* Never renewed: nobody has held it yet, a first holder may be starting. */
	assert_int_equal(ckpt_lease_watch(r, 20), -ETIMEDOUT);

	pid = holder(f, ttl_ms, false);
	assert_int_equal(ckpt_lease_watch(r, 100), -ETIMEDOUT); /* held, by a live process */
	/* A second would-be holder alive beside it still renews: the lease is its fallback. */
	again = client(f);
	mine = open_region(again, LEASE);
	assert_int_equal(ckpt_lease_renew(mine, ttl_ms), 0);
	assert_int_equal(ckpt_lease_watch(r, 50), -ETIMEDOUT);
	assert_int_equal(ckpt_region_close(&mine), 0);
	ckpt_disconnect(&again);

	t0 = mono_ms();
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(ckpt_lease_watch(r, ttl_ms), 0);
	waited = mono_ms() - t0;
	print_message("lease watch: holder killed, free after %llu ms (lease ttl %u ms)\n",
		      (unsigned long long)waited, ttl_ms);
	assert_true(waited < ttl_ms / 2);
	assert_int_equal(waitpid(pid, &status, 0), pid);

	/* A clean release (a renewal of 1 ms) frees it with the holder still alive. */
	pid = holder(f, ttl_ms, true);
	t0 = mono_ms();
	assert_int_equal(ckpt_lease_watch(r, ttl_ms), 0);
	assert_true(mono_ms() - t0 < ttl_ms / 2);
	reap(pid);

	/* A lease that ran out is free, whoever holds the lock. */
	pid = holder(f, 50, false);
	t0 = mono_ms();
	assert_int_equal(ckpt_lease_watch(r, ttl_ms), 0);
	assert_true(mono_ms() - t0 < ttl_ms / 2);
	reap(pid);

	assert_int_equal(ckpt_region_close(&r), 0);
	ckpt_disconnect(&w);
}

/*
 * A standby takes over from a primary still alive (stopped, cut off) that holds the lock of
 * its epoch. When that old primary dies later, the new holder must not look dead: its lock
 * is the one of the new epoch, taken with the epoch.
 */
static void test_old_holders_death_after_a_takeover_is_not_the_new_holders(void **state)
{
	const unsigned int ttl_ms = 10000;
	const struct fixture *f = *state;
	struct ckpt_client *w, *taker;
	struct ckpt_region *r, *lease;
	uint64_t epoch, t0;
	pid_t pid;
	int status;

	make_regions(f);
	w = client(f);
	r = open_region(w, LEASE);
	pid = holder(f, ttl_ms, false); /* epoch 0's holder */
	taker = client(f);
	lease = open_region(taker, LEASE);
	assert_int_equal(ckpt_epoch_take(lease, 0, &epoch), 0);
	assert_int_equal(ckpt_lease_watch(r, 50), -ETIMEDOUT); /* the taker is alive */
	assert_int_equal(ckpt_lease_renew(lease, ttl_ms), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(ckpt_lease_watch(r, 100), -ETIMEDOUT); /* still alive */

	/* Now the new holder dies (its client goes without a release): seen at once. */
	assert_int_equal(ckpt_region_close(&lease), 0);
	t0 = mono_ms();
	ckpt_disconnect(&taker);
	assert_int_equal(ckpt_lease_watch(r, ttl_ms), 0);
	assert_true(mono_ms() - t0 < ttl_ms / 2);
	assert_int_equal(ckpt_region_close(&r), 0);
	ckpt_disconnect(&w);
}

/* ---- the restore scan over two threads (ckpt_state_scan_split) ---- */

/* Records as a scan hands them over, payloads copied out: compared whole. */
struct scanned {
	uint32_t n, stop_at;
	struct {
		struct ckpt_rec rec;
		uint8_t payload[32];
	} * v;
};

static int collect(const struct ckpt_rec *rec, void *arg)
{
	struct scanned *s = arg;

	memset(&s->v[s->n], 0, sizeof(s->v[s->n]));
	s->v[s->n].rec = *rec;
	s->v[s->n].rec.payload = NULL;
	assert_true(rec->payload_len <= sizeof(s->v[s->n].payload));
	if (rec->payload_len) /* a tombstone has none (NULL) */
		memcpy(s->v[s->n].payload, rec->payload, rec->payload_len);
	return ++s->n == s->stop_at ? 7 : 0;
}

static int take_all(const struct ckpt_rec *recs, unsigned int n, void *arg)
{
	int stop = 0;

	for (unsigned int i = 0; i < n && !stop; i++)
		stop = collect(&recs[i], arg);
	return stop;
}

/*
 * Split over a reader thread, the scan hands over the same records (payloads byte for byte)
 * in the same order with the same counts as on one thread, over a region of many chunks
 * (every buffer reused several times): empty pairs, one slot or both written, tombstones,
 * torn and misplaced slots; with and without tombstones; with no thread to be had (the
 * scan then runs on the caller's thread); and a callback that stops the walk stops both at
 * the same record with the same value.
 */
static void test_split_scan_hands_over_what_the_scan_does_in_its_order(void **state)
{
	const struct fixture *f = *state;
	struct ckpt_client_opts opts = {
		.tenant = "fw1", .create_store = true, .store_size = 32u << 20};
	struct pmu_region_params sp = {
		.name = STATE, .mode = PMU_MODE_OVERWRITE, .size = 12u << 20, .slot_size = 128};
	struct ckpt_client *c = ckpt_connect(f->target, &opts);
	struct ckpt_scan_stats s1, s2;
	struct scanned one = {0}, two = {0};
	struct ckpt_region *r;
	uint8_t junk[128];
	uint32_t pairs;
	uint64_t ticket;
	cpu_set_t cpus;

	assert_non_null(c);
	assert_int_equal(ckpt_region_create(c, &sp, &r), 0);
	pairs = ckpt_slot_pairs(r);
	assert_true(pairs > 40000); /* over ten 1 MB chunks of 128-byte slots */
	for (uint32_t p = 0; p < pairs; p++) {
		struct ckpt_rec s = slice(p, 1);

		switch (p % 7) {
		case 0: /* empty */
			continue;
		case 1: /* both slots, the newer wins */
			assert_int_equal(ckpt_slot_write(r, &s, false, &ticket), 0);
			s = slice(p, 2);
			break;
		case 2: /* the newest is a tombstone */
			assert_int_equal(ckpt_slot_write(r, &s, false, &ticket), 0);
			s = slice(p, 2);
			s.flags = CKPT_REC_F_TOMBSTONE;
			s.payload_len = 0;
			break;
		case 3: /* a torn slot beside a good one */
			memset(junk, 0x5a, sizeof(junk));
			assert_int_equal(ckpt_region_post(r, PMU_REGION_HDR + 2ull * p * 128, junk,
							  sizeof(junk)),
					 0);
			break;
		case 4: /* a record of another pair */
			s = slice(p + 1, 2);
			assert_true(ckpt_rec_encode(&s, junk, sizeof(junk)) > 0);
			assert_int_equal(ckpt_region_post(r, PMU_REGION_HDR + 2ull * p * 128, junk,
							  sizeof(junk)),
					 0);
			continue;
		default:
			s.conn_id = 77 * p;
			break;
		}
		assert_int_equal(ckpt_slot_write(r, &s, false, &ticket), 0);
	}
	assert_int_equal(ckpt_sync(r), 0);
	one.v = calloc(pairs, sizeof(*one.v));
	two.v = calloc(pairs, sizeof(*two.v));
	assert_true(one.v != NULL && two.v != NULL);
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	CPU_SET(1, &cpus);
	/*
	 * Against the one-thread scan reading through the file: both scans, with the slots
	 * read through the file, read in place (copied pair by pair from the mapping), and as
	 * the mapping decides.
	 */
	for (unsigned int flags = 0; flags <= CKPT_SCAN_TOMBSTONES; flags += CKPT_SCAN_TOMBSTONES) {
		ckpt_pmem_test_in_place(0);
		one.n = 0;
		assert_int_equal(ckpt_state_scan(r, flags, collect, &one, &s1), 0);
		assert_true(one.n > pairs / 2);
		assert_true(s1.empty > 0 && s1.invalid > 0 && s1.misplaced > 0 &&
			    s1.tombstones > 0 && s1.superseded > 0);
		for (int in_place = -1; in_place <= 1; in_place++) {
			ckpt_pmem_test_in_place(in_place);
			two.n = 0;
			assert_int_equal(ckpt_state_scan(r, flags, collect, &two, &s2), 0);
			assert_int_equal(two.n, one.n);
			assert_memory_equal(two.v, one.v, one.n * sizeof(*one.v));
			assert_memory_equal(&s2, &s1, sizeof(s1));
			two.n = 0;
			assert_int_equal(
				ckpt_state_scan_split(r, flags, &cpus, take_all, &two, &s2), 0);
			assert_int_equal(two.n, one.n);
			assert_memory_equal(two.v, one.v, one.n * sizeof(*one.v));
			assert_memory_equal(&s2, &s1, sizeof(s1));
		}
	}
	ckpt_pmem_test_in_place(1);
	/* A reader that cannot be placed (no such CPU): the same, on the caller's thread. */
	CPU_ZERO(&cpus);
	CPU_SET(CPU_SETSIZE - 1, &cpus);
	two.n = 0;
	assert_int_equal(ckpt_state_scan_split(r, 0, &cpus, take_all, &two, &s2), 0);
	assert_int_equal(ckpt_state_scan(r, 0, NULL, NULL, &s1), 0);
	assert_true(two.n == s1.records);
	assert_memory_equal(&s2, &s1, sizeof(s1));
	one.n = two.n = 0;
	one.stop_at = two.stop_at = 20001;
	assert_int_equal(ckpt_state_scan(r, 0, collect, &one, NULL), 7);
	assert_int_equal(ckpt_state_scan_split(r, 0, NULL, take_all, &two, NULL), 7);
	assert_true(one.n == 20001 && two.n == 20001);
	assert_memory_equal(two.v, one.v, one.n * sizeof(*one.v));
	ckpt_pmem_test_in_place(-1);
	free(one.v);
	free(two.v);
	assert_int_equal(ckpt_region_close(&r), 0);
	ckpt_disconnect(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_newer_epoch_fences_barrier_renewal_create_and_delete),
		T(test_deleted_lease_region_fences_its_bound_clients),
		T(test_racing_takers_have_one_winner),
		T(test_lease_watch_sees_a_killed_holder_at_once),
		T(test_old_holders_death_after_a_takeover_is_not_the_new_holders),
		T(test_split_scan_hands_over_what_the_scan_does_in_its_order),
#undef T
	};

	ckpt_log_set(NULL, CKPT_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
