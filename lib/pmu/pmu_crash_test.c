/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash consistency of the store behind the pmem: target: a writer is killed with SIGKILL
 * at hundreds of points during store and region creation, slot writes (direct and
 * batched), log appends, syncs and log reads; after each kill the store is reopened and
 * everything the writer had acknowledged as durable must be there, and nothing a reader
 * is handed may be invalid.
 *
 * The writer (a forked child) tells the parent through a pipe what it is about to do
 * (events, and the generations it is about to post) and, as soon as each region creation,
 * ckpt_sync() or clearing log read returns, what is now durable. The parent picks a kill
 * point (an event number and a delay after it) from a seeded generator; HF_CRASH_SEED=<seed>
 * replays a run (the same kill points; scheduling still jitters where exactly a kill
 * lands), and HF_CRASH_KILLS=<n> changes how many kills are made. At the kill event the
 * writer waits for the parent's go-ahead, so that the delay is measured from where the
 * writer stands.
 *
 * The second test does the same to the journal applier ckptsrv runs in the background:
 * killed anywhere in pmu_journal_apply(), and then finished by the next applier, it must
 * never change what a restore returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "holdfast/ckpt.h"
#include "holdfast/pmu.h"

#define STORE_SIZE	  (2u << 20)
#define NREG		  6
#define STEPS		  48
#define CREATE_EVERY	  8  /* region i is created at step i * CREATE_EVERY */
#define PAIRS_USED	  24 /* pairs written, so each is rewritten many times */
#define WRITES_PER_STEP	  6
#define RECORDS_PER_STEP  5
#define TOMBSTONE_EVERY	  7 /* generation g of a slot pair is a tombstone when g % 7 == 0 */
#define DEFAULT_KILLS	  1000
#define MAX_EVENTS	  4096
#define CHILD_EXIT_FAILED 3

enum region_kind {
	KIND_SLOTS,   /* overwrite, no journal, direct writes */
	KIND_JOURNAL, /* overwrite with a journal, batched writes */
	KIND_LOG,     /* append */
};

enum msg_type {
	M_STORE = 1,	/* the store exists and is open */
	M_EVENT,	/* about to do val (an enum event) on region */
	M_REGION,	/* region was created (ckpt_region_create returned 0) */
	M_POSTED,	/* about to post generation val of pair (logs: records up to val) */
	M_SLOT,		/* generation val of pair is durable */
	M_LOG_DURABLE,	/* log records 1..val are durable */
	M_LOG_READ,	/* a clearing read starts; records 1..val are durable */
	M_LOG_CLEARED,	/* the reader consumed and cleared records up to val */
	M_DONE,		/* the whole workload ran */
	M_CHILD_FAILED, /* an API call failed: pair holds the line, val the -errno */
};

enum event {
	EV_CREATE = 1,
	EV_WRITE,
	EV_SYNC,
	EV_READ,
};

/* One fixed-size message; the child writes whole batches of them with one write(2). */
struct msg {
	uint32_t type;
	uint32_t region;
	uint32_t pair;
	uint32_t pad;
	uint64_t val;
};

static enum region_kind kind_of(unsigned int region)
{
	return (enum region_kind)(region % 3);
}

static struct pmu_region_params params_of(unsigned int region, char *name, size_t len)
{
	struct pmu_region_params p = {.name = name, .owner = "default"};

	snprintf(name, len, "crash%u", region);
	switch (kind_of(region)) {
	case KIND_SLOTS:
		p.mode = PMU_MODE_OVERWRITE;
		p.size = 65536;
		break;
	case KIND_JOURNAL:
		p.mode = PMU_MODE_OVERWRITE;
		p.size = 65536;
		p.ring_size = 16384;
		break;
	case KIND_LOG:
		p.mode = PMU_MODE_APPEND;
		p.size = 32768;
		break;
	}
	return p;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static bool is_tombstone(unsigned int region, uint64_t gen)
{
	return kind_of(region) != KIND_LOG && gen % TOMBSTONE_EVERY == 0;
}

/*
 * The record for (region, pair, generation); logs use pair = sequence number = generation.
 * Everything, payload bytes included, follows from those three numbers.
 */
static struct ckpt_rec derive(unsigned int region, uint32_t pair, uint64_t gen, uint8_t *payload)
{
	uint64_t h = mix(((uint64_t)region << 56) ^ ((uint64_t)pair << 32) ^ gen);
	struct ckpt_rec rec = {
		.module_id = (uint8_t)(1 + region),
		.slice_version = (uint8_t)(h >> 56),
		.conn_id = ((uint64_t)(region + 1) << 40) | ((uint64_t)pair + 1),
		.generation = gen,
		.slot_pair = kind_of(region) == KIND_LOG ? CKPT_REC_NO_SLOT : pair,
		.key = {.family = region % 2 ? 6 : 4,
			.proto = region % 2 ? 17 : 6,
			.port = {(uint16_t)(1024 + pair), (uint16_t)(80 + region)}},
		.payload = payload,
	};

	rec.key.addr[0][0] = 10;
	rec.key.addr[0][1] = (uint8_t)region;
	rec.key.addr[0][2] = (uint8_t)(pair >> 8);
	rec.key.addr[0][3] = (uint8_t)pair;
	rec.key.addr[1][0] = 172;
	rec.key.addr[1][1] = 16;
	rec.key.addr[1][3] = 1;
	if (rec.key.family == 6) {
		rec.key.addr[0][15] = 6;
		rec.key.addr[1][15] = 6;
	}
	if (is_tombstone(region, gen)) {
		rec.flags = CKPT_REC_F_TOMBSTONE;
		rec.payload = NULL;
		return rec;
	}
	/* 0..149 bytes keeps every record inside a 256-byte slot. */
	rec.payload_len = (uint16_t)(h % 150);
	for (uint16_t i = 0; i < rec.payload_len; i++) {
		if (i % 8 == 0)
			h = mix(h);
		payload[i] = (uint8_t)(h >> (8 * (i % 8)));
	}
	return rec;
}

/* The whole record equals its derivation: every field and every payload byte. */
static bool matches(const struct ckpt_rec *got, unsigned int region, uint32_t pair, uint64_t gen)
{
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	struct ckpt_rec want = derive(region, pair, gen, payload);

	return got->flags == want.flags && got->module_id == want.module_id &&
	       got->slice_version == want.slice_version && got->conn_id == want.conn_id &&
	       got->generation == want.generation && got->slot_pair == want.slot_pair &&
	       ckpt_key_equal(&got->key, &want.key) && got->payload_len == want.payload_len &&
	       (want.payload_len == 0 || memcmp(got->payload, payload, want.payload_len) == 0);
}

/* ---- the writer (child) ---- */

struct writer {
	int fd;
	int go_fd;	     /* the parent's go-ahead at the kill event */
	uint64_t events;     /* announced so far */
	uint64_t kill_event; /* the event the parent kills after */
	struct msg out[160];
	unsigned int n;
	struct ckpt_client *cl;
	struct ckpt_region *r[NREG];
	uint64_t gen[NREG][PAIRS_USED];
	uint64_t seq[NREG];	/* last log record appended */
	uint64_t read_to[NREG]; /* last log record read back */
};

static void send_all(struct writer *w)
{
	const char *p = (const char *)w->out;
	size_t left = w->n * sizeof(w->out[0]);

	while (left > 0) {
		ssize_t k = write(w->fd, p, left);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			_exit(CHILD_EXIT_FAILED);
		p += k;
		left -= (size_t)k;
	}
	w->n = 0;
}

static void queue(struct writer *w, uint32_t type, unsigned int region, uint32_t pair, uint64_t val)
{
	if (w->n == sizeof(w->out) / sizeof(w->out[0]))
		send_all(w);
	w->out[w->n++] = (struct msg){type, region, pair, 0, val};
}

/* Announce an action and everything queued before it; the action starts after this. */
static void announce(struct writer *w, unsigned int region, enum event ev)
{
	char go;

	queue(w, M_EVENT, region, 0, ev);
	send_all(w);
	/*
	 * At the kill event, wait for the parent to start its clock: the kill then lands its
	 * delay after this point however the two processes are scheduled.
	 */
	if (w->events++ == w->kill_event && read(w->go_fd, &go, 1) != 1)
		_exit(CHILD_EXIT_FAILED);
}

static void die(struct writer *w, int line, int rc)
{
	queue(w, M_CHILD_FAILED, 0, (uint32_t)line, (uint64_t)(int64_t)rc);
	send_all(w);
	_exit(CHILD_EXIT_FAILED);
}

#define CHECK(w, expr)                                                                             \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ < 0)                                                                       \
			die((w), __LINE__, rc_);                                                   \
	} while (0)

static int clear_cb(const struct ckpt_rec *rec, void *arg)
{
	uint64_t *next = arg;

	/* The writer checks what it reads too: a reader must never be handed garbage. */
	if (rec->generation != *next + 1)
		return 1;
	*next = rec->generation;
	return 0;
}

static void write_slots(struct writer *w, unsigned int i, unsigned int step)
{
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	uint32_t pairs[WRITES_PER_STEP];
	uint64_t ticket;

	for (unsigned int j = 0; j < WRITES_PER_STEP; j++) {
		pairs[j] = (step * 5 + j * 11 + i) % PAIRS_USED;
		/* The same pair twice in a step gets two generations: the parent hears both. */
		queue(w, M_POSTED, i, pairs[j], ++w->gen[i][pairs[j]]);
	}
	for (unsigned int j = 0; j < WRITES_PER_STEP; j++)
		w->gen[i][pairs[j]]--;
	announce(w, i, EV_WRITE);
	for (unsigned int j = 0; j < WRITES_PER_STEP; j++) {
		uint64_t gen = ++w->gen[i][pairs[j]];
		struct ckpt_rec rec = derive(i, pairs[j], gen, payload);
		int rc;

		while ((rc = ckpt_slot_write(w->r[i], &rec, kind_of(i) == KIND_JOURNAL, &ticket)) ==
		       -EAGAIN)
			CHECK(w, ckpt_sync(w->r[i]));
		CHECK(w, rc);
	}
	announce(w, i, EV_SYNC);
	CHECK(w, ckpt_sync(w->r[i]));
	for (unsigned int j = 0; j < WRITES_PER_STEP; j++)
		queue(w, M_SLOT, i, pairs[j], w->gen[i][pairs[j]]);
	send_all(w);
}

static void write_log(struct writer *w, unsigned int i)
{
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	struct ckpt_scan_stats st;
	uint64_t ticket, next;

	queue(w, M_POSTED, i, 0, w->seq[i] + RECORDS_PER_STEP);
	announce(w, i, EV_WRITE);
	for (unsigned int j = 0; j < RECORDS_PER_STEP; j++) {
		uint64_t seq = ++w->seq[i];
		struct ckpt_rec rec = derive(i, (uint32_t)seq, seq, payload);

		CHECK(w, ckpt_log_append(w->r[i], &rec, &ticket));
	}
	announce(w, i, EV_SYNC);
	CHECK(w, ckpt_sync(w->r[i]));
	queue(w, M_LOG_DURABLE, i, 0, w->seq[i]);
	send_all(w);
	queue(w, M_LOG_READ, i, 0, w->seq[i]);
	announce(w, i, EV_READ);
	next = w->read_to[i];
	CHECK(w, ckpt_log_read(w->r[i], clear_cb, &next, false, &st));
	if (next != w->seq[i] || st.invalid != 0)
		die(w, __LINE__, -EBADMSG);
	w->read_to[i] = next;
	queue(w, M_LOG_CLEARED, i, 0, next);
	send_all(w);
}

static void writer_main(int fd, int go_fd, uint64_t kill_event, const char *target)
{
	struct ckpt_client_opts opts = {.create_store = true, .store_size = STORE_SIZE};
	struct writer *w = calloc(1, sizeof(*w));
	char name[PMU_NAME_MAX];
	unsigned int nreg = 0;

	if (w == NULL)
		_exit(CHILD_EXIT_FAILED);
	w->fd = fd;
	w->go_fd = go_fd;
	w->kill_event = kill_event;
	announce(w, 0, EV_CREATE);
	w->cl = ckpt_connect(target, &opts);
	if (w->cl == NULL)
		die(w, __LINE__, -errno);
	queue(w, M_STORE, 0, 0, 0);
	for (unsigned int step = 0; step < STEPS; step++) {
		if (step % CREATE_EVERY == 0 && nreg < NREG) {
			struct pmu_region_params p = params_of(nreg, name, sizeof(name));

			announce(w, nreg, EV_CREATE);
			CHECK(w, ckpt_region_create(w->cl, &p, &w->r[nreg]));
			queue(w, M_REGION, nreg, 0, 0);
			send_all(w);
			nreg++;
		}
		for (unsigned int i = 0; i < nreg; i++) {
			if (kind_of(i) == KIND_LOG)
				write_log(w, i);
			else
				write_slots(w, i, step);
		}
	}
	queue(w, M_DONE, 0, 0, 0);
	send_all(w);
	/* No cleanup on purpose: the next thing that happens to a writer is usually SIGKILL. */
	_exit(0);
}

/* ---- the parent: what was acknowledged, and the check after the kill ---- */

struct acked {
	bool store;
	bool done;
	bool begun[NREG]; /* creation was announced */
	bool region[NREG];
	uint64_t posted[NREG][PAIRS_USED]; /* highest generation that may have been posted */
	uint64_t durable[NREG][PAIRS_USED];
	uint64_t log_posted[NREG];
	uint64_t log_durable[NREG];
	uint64_t log_read_begun[NREG]; /* durable watermark when the last clearing read began */
	uint64_t log_cleared[NREG];
	uint64_t events;
	uint8_t kinds[MAX_EVENTS]; /* enum event of each event, in order */
	uint64_t kill_kind;	   /* the event the kill followed */
	int child_line;
	int64_t child_rc;
};

struct iteration {
	uint64_t seed;
	unsigned int number;
	uint64_t kill_event; /* UINT64_MAX: let the writer finish */
	unsigned int delay_us;
	char path[128];
	char target[160];
};

static bool apply_msg(struct acked *a, const struct msg *m)
{
	if (m->region >= NREG)
		return false;
	switch (m->type) {
	case M_STORE:
		a->store = true;
		break;
	case M_EVENT:
		if (a->events < MAX_EVENTS)
			a->kinds[a->events] = (uint8_t)m->val;
		a->events++;
		if (m->val == EV_CREATE && a->store)
			a->begun[m->region] = true;
		break;
	case M_REGION:
		a->region[m->region] = true;
		break;
	case M_POSTED:
		if (kind_of(m->region) == KIND_LOG)
			a->log_posted[m->region] = m->val;
		else if (m->pair < PAIRS_USED && m->val > a->posted[m->region][m->pair])
			a->posted[m->region][m->pair] = m->val;
		break;
	case M_SLOT:
		if (m->pair < PAIRS_USED && m->val > a->durable[m->region][m->pair])
			a->durable[m->region][m->pair] = m->val;
		break;
	case M_LOG_DURABLE:
		a->log_durable[m->region] = m->val;
		break;
	case M_LOG_READ:
		a->log_read_begun[m->region] = m->val;
		break;
	case M_LOG_CLEARED:
		a->log_cleared[m->region] = m->val;
		break;
	case M_DONE:
		a->done = true;
		break;
	case M_CHILD_FAILED:
		a->child_line = (int)m->pair;
		a->child_rc = (int64_t)m->val;
		break;
	default:
		return false;
	}
	return true;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * The delay before a kill. Sleeping, not spinning: a spinning parent can take the only
 * free core from the child it is timing, and the kill would land before the child moved.
 * main() sets a 1 ns timer slack so that the sleep is as short as asked.
 */
static void wait_us(unsigned int us)
{
	struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000};

	if (us == 0)
		return;
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/*
 * Run one writer, kill it at the chosen point, and collect every acknowledgement it sent.
 * Returns true when the kill happened (false: the writer finished first).
 */
static bool run_writer(const struct iteration *it, struct acked *a)
{
	char buf[sizeof(struct msg) * 256];
	size_t have = 0;
	bool killed = false;
	int fds[2], go[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		close(go[1]);
		writer_main(fds[1], go[0], it->kill_event, it->target);
	}
	close(fds[1]);
	close(go[0]);
	for (;;) {
		ssize_t k = read(fds[0], buf + have, sizeof(buf) - have);
		size_t used = 0;

		if (k < 0 && errno == EINTR)
			continue;
		assert_true(k >= 0);
		if (k == 0)
			break;
		have += (size_t)k;
		for (; have - used >= sizeof(struct msg); used += sizeof(struct msg)) {
			struct msg m;

			memcpy(&m, buf + used, sizeof(m));
			assert_true(apply_msg(a, &m));
			if (!killed && m.type == M_EVENT && a->events - 1 == it->kill_event) {
				assert_int_equal(write(go[1], "g", 1), 1);
				wait_us(it->delay_us);
				kill(pid, SIGKILL);
				killed = true;
				a->kill_kind = m.val;
			}
		}
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	assert_int_equal(have, 0);
	close(fds[0]);
	close(go[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (a->child_line != 0)
		fail_msg("writer failed at line %d: %s (seed %" PRIu64 ", iteration %u)",
			 a->child_line, strerror((int)-a->child_rc), it->seed, it->number);
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGKILL);
		assert_true(killed);
		return true;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(a->done);
	return false;
}

/*
 * A reopen after a kill may rightly complain (a store whose creation was cut short is
 * missing); the last line is kept for a failure message instead of cluttering the run.
 */
static char last_log[256];

static void keep_last_log(enum ckpt_log_level level, const char *component, const char *msg)
{
	snprintf(last_log, sizeof(last_log), "%d %s: %s", (int)level, component, msg);
}

/* What the kills hit, so that a run shows it covered the interesting cases. */
struct coverage {
	unsigned int store_cut;		 /* store creation interrupted */
	unsigned int create_cut;	 /* a region creation interrupted ... */
	unsigned int create_cut_present; /* ... and the region was committed anyway */
	unsigned int torn;		 /* a slot held a torn record */
	unsigned int unacked_durable;	 /* a restored generation newer than acknowledged */
};

static struct coverage cov;

struct state_check {
	const struct iteration *it;
	unsigned int region;
	const struct acked *a;
	bool seen[PAIRS_USED];
	unsigned int newer; /* restored generations newer than acknowledged */
	const char *bad;    /* what was wrong with a record handed over, NULL: nothing */
};

static int state_cb(const struct ckpt_rec *rec, void *arg)
{
	struct state_check *sc = arg;
	const unsigned int i = sc->region;
	const uint32_t p = rec->slot_pair;

	if (p >= PAIRS_USED)
		sc->bad = "record of a pair never written";
	else if (sc->seen[p])
		sc->bad = "pair handed over twice";
	else if (rec->generation > sc->a->posted[i][p])
		sc->bad = "generation never posted";
	else if (rec->generation < sc->a->durable[i][p])
		sc->bad = "older than an acknowledged generation";
	else if (is_tombstone(i, rec->generation))
		sc->bad = "tombstone handed over";
	else if (!matches(rec, i, p, rec->generation))
		sc->bad = "record differs from its derivation";
	if (sc->bad != NULL) {
		print_error("region %u pair %u gen %" PRIu64 ": %s\n", i, p, rec->generation,
			    sc->bad);
		return 1;
	}
	sc->seen[p] = true;
	sc->newer += rec->generation > sc->a->durable[i][p];
	return 0;
}

/* Is there a tombstone among the generations that may be the latest durable one? */
static bool tombstone_between(unsigned int region, uint64_t lo, uint64_t hi)
{
	for (uint64_t g = lo < 1 ? 1 : lo; g <= hi; g++)
		if (is_tombstone(region, g))
			return true;
	return false;
}

static void check_state_region(const struct iteration *it, const struct acked *a,
			       struct ckpt_region *r, unsigned int i, uint64_t *invalid)
{
	struct state_check sc = {.it = it, .region = i, .a = a};
	struct ckpt_scan_stats st = {0};

	int rc = ckpt_state_read(r, state_cb, &sc, &st);

	if (sc.bad != NULL)
		fail_msg("region %u: %s (seed %" PRIu64 ", iteration %u)", i, sc.bad, it->seed,
			 it->number);
	assert_int_equal(rc, 0);
	assert_true(st.misplaced == 0);
	cov.unacked_durable += sc.newer != 0;
	*invalid += st.invalid;
	for (uint32_t p = 0; p < PAIRS_USED; p++) {
		if (sc.seen[p] || a->durable[i][p] == 0)
			continue;
		/* Missing is right only when the latest durable generation is a tombstone. */
		if (!tombstone_between(i, a->durable[i][p], a->posted[i][p]))
			fail_msg("region %u pair %u: acknowledged generation %" PRIu64
				 " lost (seed %" PRIu64 ", iteration %u)",
				 i, p, a->durable[i][p], it->seed, it->number);
	}
}

struct log_check {
	unsigned int region;
	uint64_t first, last, n;
	const char *bad;
};

static int log_cb(const struct ckpt_rec *rec, void *arg)
{
	struct log_check *lc = arg;
	const uint64_t seq = rec->generation;

	if (lc->n != 0 && seq != lc->last + 1)
		lc->bad = "log records out of order or with a gap";
	else if (!matches(rec, lc->region, (uint32_t)seq, seq))
		lc->bad = "log record differs from its derivation";
	if (lc->bad != NULL)
		return 1;
	if (lc->n++ == 0)
		lc->first = seq;
	lc->last = seq;
	return 0;
}

static void check_log_region(const struct iteration *it, const struct acked *a,
			     struct ckpt_region *r, unsigned int i)
{
	struct log_check lc = {.region = i};
	struct ckpt_scan_stats st = {0};
	const uint64_t durable = a->log_durable[i], cleared = a->log_cleared[i];
	const uint64_t read_begun = a->log_read_begun[i];
	int rc = ckpt_log_read(r, log_cb, &lc, true, &st);

	if (lc.bad != NULL)
		fail_msg("region %u: %s (seed %" PRIu64 ", iteration %u)", i, lc.bad, it->seed,
			 it->number);
	assert_true(rc >= 0);
	assert_true(st.invalid == 0);
	if (lc.n == 0) {
		/* All gone: a read that began after the last acknowledged append cleared them. */
		if (durable > cleared && read_begun < durable)
			fail_msg("region %u: acknowledged log records %" PRIu64 "..%" PRIu64
				 " lost (seed %" PRIu64 ", iteration %u)",
				 i, cleared + 1, durable, it->seed, it->number);
		return;
	}
	/*
	 * The tail sits after the last acknowledged clear, and no further than a read that
	 * began could have taken it; from there every acknowledged record is present.
	 */
	if (lc.first - 1 < cleared || lc.first - 1 > read_begun || lc.last < durable ||
	    lc.last > a->log_posted[i])
		fail_msg("region %u: log holds %" PRIu64 "..%" PRIu64
			 ", acknowledged durable %" PRIu64 ", cleared %" PRIu64
			 ", read begun at %" PRIu64 " (seed %" PRIu64 ", iteration %u)",
			 i, lc.first, lc.last, durable, cleared, read_begun, it->seed, it->number);
}

static void check_geometry(const struct pmu_region_info *got, unsigned int i)
{
	char name[PMU_NAME_MAX];
	struct pmu_region_params p = params_of(i, name, sizeof(name));
	struct pmu_region_info want;

	assert_int_equal(pmu_region_layout(&p, &want), 0);
	assert_string_equal(got->name, name);
	assert_string_equal(got->owner, "default");
	assert_int_equal(got->mode, want.mode);
	assert_true(got->size == want.size);
	assert_int_equal(got->slot_size, want.slot_size);
	assert_true(got->nslots == want.nslots);
	assert_true(got->ring_off == want.ring_off);
	assert_true(got->ring_size == want.ring_size);
}

static void verify_store(const struct iteration *it, const struct acked *a)
{
	struct ckpt_region_info list[NREG + 1];
	struct ckpt_client *cl;
	uint64_t invalid = 0;
	bool listed[NREG] = {false};
	int n;

	cl = ckpt_connect(it->target, &(struct ckpt_client_opts){0});
	if (cl == NULL) {
		/*
		 * Only a store whose creation was cut short may fail to open, and only as
		 * missing: a new store is linked at its path once whole, never half-made there.
		 */
		if (a->store || errno != ENOENT)
			fail_msg("store does not open: %s, last log: %s (acknowledged: %s; seed "
				 "%" PRIu64 ", iteration %u)",
				 strerror(errno), last_log, a->store ? "yes" : "no", it->seed,
				 it->number);
		cov.store_cut++;
		return;
	}
	n = ckpt_region_list(cl, list, NREG + 1);
	assert_true(n >= 0 && n <= NREG);
	for (int k = 0; k < n; k++) {
		unsigned int i;

		assert_int_equal(sscanf(list[k].r.name, "crash%u", &i), 1);
		assert_true(i < NREG);
		/* A region exists only once its creation began, and then whole. */
		assert_true(a->begun[i]);
		check_geometry(&list[k].r, i);
		assert_true(list[k].ring_head >= list[k].ring_tail);
		listed[i] = true;
	}
	for (unsigned int i = 0; i < NREG; i++) {
		struct ckpt_region *r;

		if (a->region[i] && !listed[i])
			fail_msg("acknowledged region crash%u is gone (seed %" PRIu64
				 ", iteration %u)",
				 i, it->seed, it->number);
		if (a->begun[i] && !a->region[i]) {
			cov.create_cut++;
			cov.create_cut_present += listed[i];
		}
		if (!listed[i])
			continue;
		char name[PMU_NAME_MAX];

		snprintf(name, sizeof(name), "crash%u", i);
		assert_int_equal(ckpt_region_open(cl, name, &r), 0);
		check_geometry(ckpt_region_geometry(r), i);
		if (kind_of(i) == KIND_LOG)
			check_log_region(it, a, r, i);
		else
			check_state_region(it, a, r, i, &invalid);
		assert_int_equal(ckpt_region_close(&r), 0);
	}
	/*
	 * A killed single-threaded writer was inside at most one copy: at most one slot can be
	 * torn, and it must have been counted, never handed over.
	 */
	cov.torn += invalid != 0;
	if (invalid > 1)
		fail_msg("%" PRIu64 " invalid slots after one kill (seed %" PRIu64
			 ", iteration %u)",
			 invalid, it->seed, it->number);
	ckpt_disconnect(&cl);
}

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/dev/shm/pmu_crash.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rmdir(f->dir);
	free(f);
	return 0;
}

static uint64_t next_rand(uint64_t *s)
{
	*s = mix(*s);
	return *s;
}

static void run_iteration(struct fixture *f, struct iteration *it, struct acked *a)
{
	snprintf(it->path, sizeof(it->path), "%s/store%u", f->dir, it->number);
	snprintf(it->target, sizeof(it->target), "pmem:%s", it->path);
	memset(a, 0, sizeof(*a));
	run_writer(it, a);
	verify_store(it, a);
	unlink(it->path);
}

static void test_writer_killed_anywhere_loses_nothing_acknowledged(void **state)
{
	struct fixture *f = *state;
	struct acked *a = calloc(1, sizeof(*a));
	struct iteration it = {.kill_event = UINT64_MAX};
	const char *env_seed = getenv("HF_CRASH_SEED");
	const char *env_kills = getenv("HF_CRASH_KILLS");
	unsigned int kills = 0, want_kills = DEFAULT_KILLS, per_kind[EV_READ + 1] = {0};
	uint64_t rng, total_events, t0 = now_us();
	static uint8_t kinds[MAX_EVENTS];
	uint64_t creates[NREG + 1];
	unsigned int ncreates = 0;

	assert_non_null(a);
	it.seed = env_seed != NULL ? strtoull(env_seed, NULL, 0) : now_us() ^ (uint64_t)getpid();
	if (env_kills != NULL)
		want_kills = (unsigned int)strtoul(env_kills, NULL, 0);
	rng = it.seed;
	printf("pmu_crash: seed %" PRIu64 " (HF_CRASH_SEED=%" PRIu64 " replays this run)\n",
	       it.seed, it.seed);

	/* One full run: the workload itself is right, and it says how many events it has. */
	run_iteration(f, &it, a);
	assert_true(a->done);
	for (unsigned int i = 0; i < NREG; i++)
		assert_true(a->region[i]);
	total_events = a->events;
	assert_true(total_events > 100 && total_events <= MAX_EVENTS);
	memcpy(kinds, a->kinds, sizeof(kinds));
	for (uint64_t e = 0; e < total_events; e++)
		if (kinds[e] == EV_CREATE)
			creates[ncreates++] = e;

	for (it.number = 1; kills < want_kills; it.number++) {
		uint64_t r = next_rand(&rng);

		/* Most runs are killed; a run that is not still counts as checked. */
		assert_true(it.number < 2 * want_kills + 100);
		/*
		 * Creations are a handful of events among thousands: a quarter of the kills go
		 * to them on purpose, the rest anywhere.
		 */
		if ((r >> 8) % 4 == 0)
			it.kill_event = creates[(r >> 16) % ncreates];
		else
			it.kill_event = r % total_events;
		/*
		 * Land right at the event, a little after it, or well into what follows; a
		 * creation takes some tens of microseconds, so kills aimed at one spread over
		 * its first hundred.
		 */
		if (kinds[it.kill_event] == EV_CREATE)
			it.delay_us = (unsigned int)((r >> 40) % 100);
		else
			switch ((r >> 32) % 3) {
			case 0:
				it.delay_us = 0;
				break;
			case 1:
				it.delay_us = (unsigned int)((r >> 40) % 50);
				break;
			default:
				it.delay_us = (unsigned int)((r >> 40) % 500);
				break;
			}
		run_iteration(f, &it, a);
		if (!a->done) {
			kills++;
			if (a->kill_kind <= EV_READ)
				per_kind[a->kill_kind]++;
		}
	}
	printf("pmu_crash: %u kills in %u runs, %.1f s; kills after creating %u, writing %u, "
	       "syncing %u, reading %u\n",
	       kills, it.number - 1, (double)(now_us() - t0) / 1e6, per_kind[EV_CREATE],
	       per_kind[EV_WRITE], per_kind[EV_SYNC], per_kind[EV_READ]);
	printf("pmu_crash: store creation cut %u; region creation cut %u (committed anyway %u); "
	       "torn slot seen %u; newer than acknowledged restored %u\n",
	       cov.store_cut, cov.create_cut, cov.create_cut_present, cov.torn,
	       cov.unacked_durable);
	/* The spread the kill points must have. */
	assert_true(want_kills < 20 || (per_kind[EV_CREATE] > 0 && per_kind[EV_WRITE] > 0 &&
					per_kind[EV_SYNC] > 0 && per_kind[EV_READ] > 0));
	free(a);
}

/* ---- the journal applier (ckptsrv's background job), killed anywhere ---- */

#define J_PAIRS	   512
#define J_ROUNDS   10 /* journal records per pair */
#define J_RING	   (1u << 20)
#define J_KILLS	   250
#define J_SLOT	   256u
#define J_REGION_R 0 /* derive() as region 0: slot records, tombstones every 7th */

/* Append @p rec at monotonic position @p pos of a ring, with a wrap marker where needed. */
static uint64_t ring_put(uint8_t *ring, uint64_t pos, const struct ckpt_rec *rec)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	int n = ckpt_rec_encode(rec, buf, sizeof(buf));
	uint64_t at;

	assert_true(n > 0);
	at = pmu_ring_place(J_RING, pos, (uint32_t)n);
	if (at != pos) {
		uint32_t wrap = PMU_RING_WRAP_MAGIC;

		memcpy(ring + pos % J_RING, &wrap, sizeof(wrap));
	}
	memcpy(ring + at % J_RING, buf, (size_t)n);
	return at + (uint64_t)n;
}

/*
 * A region as a server leaves it mid-run: pair p's slots hold generations s - 1 and s
 * (s = 2 + p % 5), and its journal holds s - 1 .. s + 8, pairs interleaved, so that the
 * applier both skips records older than a slot and moves newer ones into place.
 */
static void build_journal_store(const char *path)
{
	struct pmu_region_params p = {.name = "journal",
				      .owner = "default",
				      .mode = PMU_MODE_OVERWRITE,
				      .size = PMU_REGION_HDR + 2ull * J_PAIRS * J_SLOT + J_RING,
				      .slot_size = J_SLOT,
				      .ring_size = J_RING};
	uint8_t payload[CKPT_REC_MAX_PAYLOAD], buf[CKPT_REC_MAX_LEN];
	struct pmu_store *s = pmu_store_open(path, 4u << 20, PMU_CREATE);
	struct pmu_region_info info;
	uint64_t head = 0, head_le;
	uint8_t *base;

	assert_non_null(s);
	assert_int_equal(pmu_region_create(s, &p, &info), 0);
	assert_true(info.nslots == 2 * J_PAIRS);
	base = pmu_region_base(s, &info);
	for (uint32_t pair = 0; pair < J_PAIRS; pair++) {
		uint64_t top = 2 + pair % 5;

		for (uint64_t g = top - 1; g <= top; g++) {
			struct ckpt_rec rec = derive(J_REGION_R, pair, g, payload);
			int n = ckpt_rec_encode(&rec, buf, sizeof(buf));

			assert_true(n > 0);
			memcpy(base + PMU_REGION_HDR + (2 * pair + (g & 1)) * J_SLOT, buf,
			       (size_t)n);
		}
	}
	for (uint64_t k = 0; k < J_ROUNDS; k++) {
		for (uint32_t i = 0; i < J_PAIRS; i++) {
			uint32_t pair =
				(i * 181) % J_PAIRS; /* 181 is prime to 512: a permutation */
			struct ckpt_rec rec = derive(J_REGION_R, pair, 1 + pair % 5 + k, payload);

			head = ring_put(base + info.ring_off, head, &rec);
		}
	}
	assert_true(head <= J_RING);
	pmu_persist(s, base, info.size);
	head_le = head;
	pmu_memcpy_persist(s, base + PMU_REGION_HEAD_OFF, &head_le, sizeof(head_le));
	pmu_store_close(&s);
}

static void copy_file(const char *from, const char *to)
{
	static char buf[1 << 16];
	int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	ssize_t n;

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

struct restored {
	uint64_t gen[J_PAIRS]; /* 0: nothing handed over */
	const char *bad;
};

static int restored_cb(const struct ckpt_rec *rec, void *arg)
{
	struct restored *rs = arg;

	if (rec->slot_pair >= J_PAIRS || rs->gen[rec->slot_pair] != 0)
		rs->bad = "pair out of range or handed over twice";
	else if (!matches(rec, J_REGION_R, rec->slot_pair, rec->generation))
		rs->bad = "record differs from its derivation";
	if (rs->bad != NULL)
		return 1;
	rs->gen[rec->slot_pair] = rec->generation;
	return 0;
}

/* What a restore of @p path returns, checked record by record. */
static void restore_journal_store(const char *path, struct restored *rs, struct ckpt_scan_stats *st)
{
	char target[200];
	struct ckpt_client *cl;
	struct ckpt_region *r;
	int rc;

	snprintf(target, sizeof(target), "pmem:%s", path);
	memset(rs, 0, sizeof(*rs));
	memset(st, 0, sizeof(*st));
	cl = ckpt_connect(target, &(struct ckpt_client_opts){0});
	assert_non_null(cl);
	assert_int_equal(ckpt_region_open(cl, "journal", &r), 0);
	rc = ckpt_state_read(r, restored_cb, rs, st);
	assert_int_equal(ckpt_region_close(&r), 0);
	ckpt_disconnect(&cl);
	if (rs->bad != NULL)
		fail_msg("journal store %s: %s", path, rs->bad);
	assert_int_equal(rc, 0);
}

/* Run the applier in a child; kill it @p delay_us after it is ready (UINT32_MAX: never). */
static bool run_applier(const char *path, unsigned int delay_us, uint64_t *took_us)
{
	bool killed = false;
	int fds[2], status;
	uint64_t t0;
	char c;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pmu_store *s = pmu_store_open(path, 0, 0);
		struct pmu_region_info info;

		close(fds[0]);
		if (s == NULL || pmu_region_lookup(s, "default", "journal", &info) != 0)
			_exit(CHILD_EXIT_FAILED);
		if (write(fds[1], "r", 1) != 1)
			_exit(CHILD_EXIT_FAILED);
		if (pmu_journal_apply(s, &info) <= 0)
			_exit(CHILD_EXIT_FAILED);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	t0 = now_us();
	if (delay_us != UINT32_MAX) {
		wait_us(delay_us);
		killed = kill(pid, SIGKILL) == 0;
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	*took_us = now_us() - t0;
	close(fds[0]);
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGKILL);
		return killed;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return false;
}

/*
 * Applying the journal never changes what a restore returns: not when the applier is
 * killed anywhere in it, and not when the next applier finishes the job.
 */
static void test_journal_apply_killed_anywhere_changes_no_restore(void **state)
{
	struct fixture *f = *state;
	struct restored *want = calloc(1, sizeof(*want)), *got = calloc(1, sizeof(*got));
	const char *env_seed = getenv("HF_CRASH_SEED");
	char tmpl[128], path[128];
	struct ckpt_scan_stats st;
	uint64_t seed, rng, took, apply_us, t0 = now_us();
	unsigned int kills = 0, runs = 0, torn = 0;
	struct pmu_store *s;
	struct pmu_region_info info;

	assert_non_null(want);
	assert_non_null(got);
	seed = env_seed != NULL ? strtoull(env_seed, NULL, 0) : now_us() ^ (uint64_t)getpid();
	rng = seed;
	snprintf(tmpl, sizeof(tmpl), "%s/journal-template", f->dir);
	snprintf(path, sizeof(path), "%s/journal-run", f->dir);
	build_journal_store(tmpl);
	restore_journal_store(tmpl, want, &st);
	assert_true(st.invalid == 0);

	/*
	 * Uninterrupted, for the result it must always have and for the length of a run: the
	 * shortest of five, so that the delays land inside an apply even when one was slow.
	 */
	apply_us = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		copy_file(tmpl, path);
		assert_false(run_applier(path, UINT32_MAX, &took));
		apply_us = took < apply_us ? took : apply_us;
		restore_journal_store(path, got, &st);
		assert_memory_equal(got->gen, want->gen, sizeof(want->gen));
	}
	printf("pmu_crash: journal apply seed %" PRIu64 ", one apply takes %" PRIu64 " us\n", seed,
	       apply_us);

	while (kills < J_KILLS) {
		unsigned int delay =
			(unsigned int)(next_rand(&rng) % (apply_us + apply_us / 5 + 1));

		assert_true(++runs < 4 * J_KILLS);
		copy_file(tmpl, path);
		if (run_applier(path, delay, &took))
			kills++;
		else if (took < apply_us)
			/* The machine got quicker since the five runs above (they ran under load):
			 * aim the delays at the quicker apply, or too few of them land in one. */
			apply_us = took;
		restore_journal_store(path, got, &st);
		if (memcmp(got->gen, want->gen, sizeof(want->gen)) != 0)
			fail_msg("restore changed by an applier killed after %u us (seed %" PRIu64
				 ")",
				 delay, seed);
		assert_true(st.invalid <= 1 && st.misplaced == 0);
		torn += st.invalid != 0;
		/* The next applier picks up where the killed one stopped. */
		s = pmu_store_open(path, 0, 0);
		assert_non_null(s);
		assert_int_equal(pmu_region_lookup(s, "default", "journal", &info), 0);
		assert_true(pmu_journal_apply(s, &info) >= 0);
		pmu_store_close(&s);
		restore_journal_store(path, got, &st);
		if (memcmp(got->gen, want->gen, sizeof(want->gen)) != 0)
			fail_msg("restore changed by finishing an apply killed after %u us (seed "
				 "%" PRIu64 ")",
				 delay, seed);
		assert_true(st.invalid <= 1);
		unlink(path);
	}
	printf("pmu_crash: journal apply: %u kills in %u runs, torn slot seen %u, %.1f s\n", kills,
	       runs, torn, (double)(now_us() - t0) / 1e6);
	unlink(tmpl);
	free(want);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_writer_killed_anywhere_loses_nothing_acknowledged, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_apply_killed_anywhere_changes_no_restore, setup, teardown),
	};

	ckpt_log_set(keep_last_log, CKPT_LOG_DEBUG);
	/* Kill delays are microseconds; the default 50 us slack would blur them. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
