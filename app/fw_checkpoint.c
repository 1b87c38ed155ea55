/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "fw_checkpoint.h"
#include "fw_thread.h"

RTE_LOG_REGISTER_SUFFIX(fw_logtype_ckpt, ckpt, INFO)
#define LOG(level, ...) rte_log(RTE_LOG_##level, fw_logtype_ckpt, "holdfast.ckpt: " __VA_ARGS__)

/*
 * Reconnect attempts, from the loss on: 100, 200 ms apart, then every 250 ms, so that a
 * target that answers again is back within a second (issue 14: with up to 5 s between
 * attempts, a server started late was written to only seconds later). An attempt that is
 * refused costs the reconnect thread a round trip, the worker nothing.
 */
#define BACKOFF_MIN_NS	(100ull * 1000000)
#define BACKOFF_MAX_NS	(250ull * 1000000)
#define CKPT_TIMEOUT_MS 1000 /* per operation; attempts to connect run off the worker */
#define IDLE_POLL_NS	(100ull * 1000000)
#define TICK_BATCH	64		/* queued connections that make a write due */
#define TICK_DELAY_NS	(500ull * 1000) /* the longest a change waits to be written */
#define OWED_PER_TICK	256		/* owed tombstones written per tick, at most */

/* A connection to the target and the worker's regions there. */
struct link {
	struct ckpt_client *cl;
	struct ckpt_region *r, *log;
	uint64_t bound; /* the epoch cl is bound to, 0: none */
};

enum {
	JOB_IDLE,
	JOB_RUNNING,
	JOB_DONE
};

/*
 * One record on its way from the worker to the I/O side: encoded by the worker at drain
 * time (rec.payload is set again by the reader, to payload). A record must fit a slot
 * (fw_ckpt_layout: 128 bytes, so 52 bytes of payload), far less than the room here; an
 * encode that does not fit is this build's fault and counted as a failure.
 */
struct item {
	struct ckpt_rec rec;
	uint8_t payload[192 - sizeof(struct ckpt_rec)];
};
_Static_assert(sizeof(struct item) == 192 && sizeof(struct item) % 4 == 0,
	       "an rte_ring element: three cache lines, a multiple of 4 bytes");

#define IO_BURST 64 /* records the I/O side takes from the ring at once */
#define MARKS	 16 /* batches the worker remembers for the recovery point */
#define IO_MARKS 64 /* write batches whose durability the I/O side waits for */

struct fw_checkpointer {
	/* ---- the worker's side: written by the worker's thread only ---- */
	struct fw_ckpt_queue q;
	struct rte_ring *ring;	/* SP: the worker, SC: the I/O side */
	struct fw_table *table; /* walked to resynchronise after the target comes back */
	struct fw_slots *slots;
	uint64_t pushed;      /* records handed over (read by any thread: fw_checkpointer_lag) */
	uint64_t resync_done; /* the last resync request served */
	uint64_t last_now;    /* of the last tick */
	/*
	 * The recovery point: for each drain that handed records over, the count after it and
	 * when its oldest change was queued. A batch is forgotten once the I/O side says it is
	 * durable; since_pub is the oldest remembered, for telemetry.
	 */
	struct {
		uint64_t seq, since;
	} mark[MARKS];
	uint32_t mhead, mtail;
	uint64_t since_pub;
	bool inline_io;
	uint64_t w_failures; /* slices that did not encode or found no pair */
	uint64_t ring_full;
	uint64_t worker_io_passes;
	/*
	 * A drain's hand-over: the ring's free room reserved at its start (zero-copy), each
	 * record encoded straight into the next slot of it, and all of them published to the
	 * I/O side at its end with one move of the ring's tail (hand_begin, hand_slot,
	 * hand_end). Record by record, each enqueue read the consumer's tail and wrote the
	 * producer's, lines the I/O lcore polls and writes as it takes them: a miss or two
	 * per record on the worker.
	 */
	struct rte_ring_zc_data zc;
	uint32_t zc_room, zc_used;

	/* ---- signals from the I/O side, read by the worker every pass: rarely written ---- */
	struct {
		bool fenced;	     /* the target refused us for a newer epoch */
		uint64_t resync_req; /* moved at each reconnect: queue every live slice again */
	} sig __rte_cache_aligned;
	/* records the I/O side saw durable (a prefix of pushed), published after each poll */
	uint64_t durable_pub __rte_cache_aligned;

	/* ---- the I/O side: the thread that runs fw_checkpointer_io() ---- */
	struct fw_ckpt_layout layout __rte_cache_aligned; /* a copy: a reconnect thread reads it */
	/* ring, read from here: its copy shares a line with the queue the worker writes */
	struct rte_ring *io_ring;
	unsigned int worker;
	struct ckpt_client *cl;
	struct ckpt_region *r; /* NULL while the target is down */
	struct fw_ckpt_log log;
	bool down;
	uint64_t down_since_ns; /* when the target was lost (the "back after" line) */
	uint64_t retry_at_ns;
	uint64_t backoff_ns;
	uint64_t reconnects;
	uint64_t attempts; /* reconnect attempts since the loss */
	/* A reconnect attempt runs on a thread of its own; the I/O side adopts its result. */
	pthread_t job_th;
	int job_state; /* JOB_*, written by the thread once: RUNNING -> DONE */
	int job_rc;
	struct link job_link;
	uint64_t idle_poll_at_ns;
	/* Fencing: the epoch to bind every connection to (fw_checkpointer_bind), the one cl
	 * is bound to. */
	const uint64_t *epoch_src;
	uint64_t bound;
	/* Records taken from the ring, [hpos, held) not written yet (the target's queue was
	 * full, or it went away: written once it is back, in order). */
	struct item items[IO_BURST];
	unsigned int held, hpos;
	uint64_t taken; /* records finished: written or refused for good */
	/* Write batches: the count taken after each, and the state region's ticket then. */
	struct {
		uint64_t seq, ticket;
	} imark[IO_MARKS];
	uint32_t imhead, imtail;
	uint64_t durable;		     /* records durable, as the I/O side knows it */
	uint64_t durable_told;		     /* the last durable_pub written */
	uint64_t resync_seen;		     /* the last resync request the worker served */
	uint64_t flushed_state, flushed_log; /* the posted tickets last flushed */
	/* counters (fw_ckpt_stats) */
	uint64_t slices[FW_MOD_MAX];
	uint64_t tombstones;
	uint64_t bytes;
	uint64_t failures;
	uint64_t deferred;
	uint64_t io_passes;
	int io_tid;
};

static void go_down(struct fw_checkpointer *k, int err, uint64_t now);
static void fenced(struct fw_checkpointer *k);

/*
 * @p rc (of lib/ckpt) says the target failed in a way a new connection may mend: go down,
 * reconnect, resync. Not a full queue (-EAGAIN: poll, post again), nor what no retry mends
 * (ckpt_err_transient: a store or quota too small, a refused secret), which is counted.
 */
static bool lost(int rc)
{
	return rc < 0 && rc != -EAGAIN && ckpt_err_transient(rc);
}

/* Open @p name, or create it with @p p on a first start. @return 0 or -errno. */
static int open_or_create(struct ckpt_client *cl, const struct pmu_region_params *p,
			  struct ckpt_region **out)
{
	struct ckpt_region_info info;
	int rc;

	/* Asked quietly first: a missing region is no error. */
	rc = ckpt_region_stat(cl, p->name, &info);
	rc = rc == -ENOENT ? ckpt_region_create(cl, p, out)
	     : rc == 0	   ? ckpt_region_open(cl, p->name, out)
			   : rc;
	if (rc == -EEXIST) /* created meanwhile */
		rc = ckpt_region_open(cl, p->name, out);
	return rc;
}

/* The epoch to bind to now: 0 before one is taken (or without fencing). */
static uint64_t epoch_wanted(const struct fw_checkpointer *k)
{
	const uint64_t *src = __atomic_load_n(&k->epoch_src, __ATOMIC_ACQUIRE);

	return src ? __atomic_load_n(src, __ATOMIC_ACQUIRE) : 0;
}

/* Bind @p cl to @p epoch of the lease region. A target without epochs is no error: the
 * lease is all the fencing there is (said once, by the lease keeper). @return 0 or -errno. */
static int bind_epoch(const struct fw_checkpointer *k, struct ckpt_client *cl, uint64_t epoch)
{
	char lease[PMU_NAME_MAX];
	int rc;

	fw_ckpt_layout_lease(&k->layout, lease);
	rc = ckpt_epoch_bind(cl, lease, epoch);
	return rc == -ENOTSUP ? 0 : rc;
}

/*
 * Connect and open (or create) the state region and the log into @p out. Reads only what
 * init set (the layout, the worker), so a reconnect thread may run it beside the worker.
 * @return 0 or -errno.
 */
static int attach_link(const struct fw_checkpointer *k, struct link *out)
{
	const struct fw_ckpt_layout *c = &k->layout;
	char state[PMU_NAME_MAX], log[PMU_NAME_MAX];
	struct pmu_region_params p, lp;
	struct link l = {0};
	int rc;

	fw_ckpt_layout_state(c, k->worker, state, &p);
	fw_ckpt_layout_log(c, k->worker, log, &lp);
	l.cl = fw_ckpt_layout_connect(c, CKPT_TIMEOUT_MS, true);
	if (l.cl == NULL)
		return -errno;
	rc = open_or_create(l.cl, &p, &l.r);
	if (rc == 0 && ckpt_slot_pairs(l.r) < c->pairs) {
		LOG(ERR, "%s: region %s has %u slot pairs, %llu needed\n", c->target, state,
		    ckpt_slot_pairs(l.r), (unsigned long long)c->pairs);
		rc = -ENOSPC;
	}
	if (rc == 0 && c->log_size)
		rc = open_or_create(l.cl, &lp, &l.log);
	/* Bound before its first write: a stale primary's reconnect is refused here. */
	l.bound = epoch_wanted(k);
	if (rc == 0 && l.bound)
		rc = bind_epoch(k, l.cl, l.bound);
	if (rc) {
		ckpt_disconnect(&l.cl); /* closes what was opened */
		return rc;
	}
	*out = l;
	return 0;
}

static int attach(struct fw_checkpointer *k)
{
	struct link l;
	int rc = attach_link(k, &l);

	if (rc)
		return rc;
	k->cl = l.cl;
	k->r = l.r;
	k->bound = l.bound;
	fw_ckpt_log_open(&k->log, l.log);
	return 0;
}

/* The ring between the worker and its I/O side, room for @p cap records. NULL: ENOMEM. */
static struct rte_ring *ring_create(unsigned int worker, uint32_t cap)
{
	const unsigned int count = rte_align32pow2(cap + 1);
	ssize_t size = rte_ring_get_memsize_elem(sizeof(struct item), count);
	struct rte_ring *r;
	char name[RTE_RING_NAMESIZE];

	if (size < 0)
		return NULL;
	r = rte_zmalloc("fw_ckpt_ring", (size_t)size, RTE_CACHE_LINE_SIZE);
	if (r == NULL)
		return NULL;
	/* In memory of its own, not a named memzone: tests open several per worker. */
	snprintf(name, sizeof(name), "fw_ckpt_%u", worker);
	if (rte_ring_init(r, name, cap, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ) != 0) {
		rte_free(r);
		return NULL;
	}
	return r;
}

struct fw_checkpointer *fw_checkpointer_create(const struct fw_ckpt_layout *layout,
					       unsigned int worker, struct fw_table *table,
					       uint32_t queue_cap, uint32_t ring_cap,
					       unsigned int flags)
{
	struct fw_checkpointer *k;
	int rc;

	if (ring_cap == 0)
		ring_cap = queue_cap < FW_CKPT_RING_MAX ? queue_cap : FW_CKPT_RING_MAX;
	if (layout->pairs == 0 || layout->pairs > UINT32_MAX / 2 || queue_cap == 0 ||
	    ring_cap > FW_CKPT_RING_MAX) {
		errno = EINVAL;
		return NULL;
	}
	k = rte_zmalloc("fw_checkpointer", sizeof(*k), RTE_CACHE_LINE_SIZE);
	if (k == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	k->layout = *layout;
	k->worker = worker;
	k->table = table;
	k->inline_io = true;
	k->slots = fw_slots_create(0, (uint32_t)layout->pairs);
	k->q.ring = calloc(queue_cap, sizeof(*k->q.ring));
	k->ring = ring_create(worker, ring_cap);
	if (k->slots == NULL || k->q.ring == NULL || k->ring == NULL) {
		fw_checkpointer_destroy(&k);
		errno = ENOMEM;
		return NULL;
	}
	k->q.cap = queue_cap;
	k->io_ring = k->ring;
	k->backoff_ns = BACKOFF_MIN_NS;
	if (flags & FW_CKPT_DETACHED) {
		k->down = true;
		k->retry_at_ns = UINT64_MAX;
		return k;
	}
	rc = attach(k);
	if (rc && !ckpt_err_transient(rc)) { /* no retry mends it: refuse to start */
		LOG(ERR, "%s: %s\n", layout->target, strerror(-rc));
		fw_checkpointer_destroy(&k);
		errno = -rc;
		return NULL;
	}
	if (rc) {
		LOG(WARNING, "%s: %s; starting without it, retrying\n", layout->target,
		    strerror(-rc));
		k->down = true;
	}
	return k;
}

int fw_checkpointer_attach(struct fw_checkpointer *k, uint64_t now)
{
	int rc = attach(k);

	k->down = rc != 0;
	k->retry_at_ns = rc ? now : 0;
	return rc;
}

int fw_checkpointer_takeover(struct fw_checkpointer *k, uint64_t now)
{
	int rc;

	if (k->r == NULL) {
		rc = fw_checkpointer_attach(k, now);
	} else {
		/* Opened while the primary wrote them: its rings went on since. */
		rc = ckpt_region_refresh(k->r);
		if (rc == 0 && k->log.r != NULL)
			rc = ckpt_region_refresh(k->log.r);
		if (rc)
			go_down(k, rc, now);
	}
	if (rc) {
		LOG(WARNING, "%s: %s; going on without it, retrying\n", k->layout.target,
		    strerror(-rc));
		k->retry_at_ns = now;
	}
	return rc;
}

void fw_checkpointer_destroy(struct fw_checkpointer **kp)
{
	struct fw_checkpointer *k;

	if (kp == NULL || *kp == NULL)
		return;
	k = *kp;
	if (k->job_state != JOB_IDLE) {
		pthread_join(k->job_th, NULL);
		if (k->job_rc == 0)
			ckpt_disconnect(&k->job_link.cl);
		k->job_state = JOB_IDLE;
	}
	if (k->log.r)
		ckpt_region_close(&k->log.r);
	if (k->r)
		ckpt_region_close(&k->r);
	ckpt_disconnect(&k->cl);
	fw_slots_free(&k->slots);
	free(k->q.ring);
	rte_free(k->ring);
	fw_ckpt_layout_release(&k->layout);
	rte_free(k);
	*kp = NULL;
}

/* The target refused us for a newer epoch: write nothing more, ever; the worker sees it at
 * its next tick. */
static void fenced(struct fw_checkpointer *k)
{
	if (!k->sig.fenced)
		LOG(ERR, "worker %u: %s refuses our writes: a newer epoch was taken (fenced)\n",
		    k->worker, k->layout.target);
	__atomic_store_n(&k->sig.fenced, true, __ATOMIC_RELEASE);
}

static bool is_fenced(const struct fw_checkpointer *k)
{
	return __atomic_load_n(&k->sig.fenced, __ATOMIC_ACQUIRE);
}

/* The target is gone: say so once, drop the connection, retry later. */
static void go_down(struct fw_checkpointer *k, int err, uint64_t now)
{
	if (!k->down) {
		LOG(WARNING,
		    "checkpoint target %s lost by worker %u: %s; forwarding goes on, "
		    "reconnecting\n",
		    k->layout.target, k->worker, strerror(-err));
		k->down_since_ns = now ? now : 1;
	}
	k->down = true;
	if (k->log.r)
		ckpt_region_close(&k->log.r);
	if (k->r)
		ckpt_region_close(&k->r);
	ckpt_disconnect(&k->cl);
	/* What was written and not durable went with it: the resync writes it again. */
	k->imhead = k->imtail;
	k->flushed_state = k->flushed_log = 0;
	k->retry_at_ns = now + k->backoff_ns;
}

/* A reconnect attempt runs here, beside the I/O side: it may wait up to its timeouts. */
static void *reconnect_main(void *arg)
{
	struct fw_checkpointer *k = arg;

	k->job_rc = attach_link(k, &k->job_link);
	__atomic_store_n(&k->job_state, JOB_DONE, __ATOMIC_RELEASE);
	return NULL;
}

/* Start an attempt, or adopt a finished one; never waits for the target. */
static void try_reconnect(struct fw_checkpointer *k, uint64_t now)
{
	int state = __atomic_load_n(&k->job_state, __ATOMIC_ACQUIRE);

	if (state == JOB_RUNNING)
		return;
	if (state == JOB_IDLE) {
		/* RUNNING before the thread exists: a quick failure may store DONE at once. */
		__atomic_store_n(&k->job_state, JOB_RUNNING, __ATOMIC_RELEASE);
		if (fw_thread_start(&k->job_th, "hf-reconnect", reconnect_main, k) != 0) {
			k->job_state = JOB_IDLE;
			k->retry_at_ns = now + k->backoff_ns;
		}
		return;
	}
	pthread_join(k->job_th, NULL);
	k->job_state = JOB_IDLE;
	k->attempts++;
	if (k->job_rc == -ESTALE) {
		fenced(k);
		return;
	}
	if (k->job_rc) {
		k->backoff_ns =
			k->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : k->backoff_ns * 2;
		k->retry_at_ns = now + k->backoff_ns;
		return;
	}
	k->cl = k->job_link.cl;
	k->r = k->job_link.r;
	k->bound = k->job_link.bound;
	fw_ckpt_log_open(&k->log, k->job_link.log);
	/*
	 * Back: whatever changed meanwhile, or was lost with the target, is written again.
	 * The worker owns its table: it queues every live slice again at its next tick (after
	 * what the ring holds already, which goes first).
	 */
	k->down = false;
	k->reconnects++;
	k->backoff_ns = BACKOFF_MIN_NS;
	__atomic_store_n(&k->sig.resync_req, k->sig.resync_req + 1, __ATOMIC_RELEASE);
	LOG(NOTICE,
	    "checkpoint target %s back after %.0f ms (worker %u, attempt %" PRIu64
	    "); resynchronising its connections\n",
	    k->layout.target, (double)(now - k->down_since_ns) / 1e6, k->worker, k->attempts);
	k->attempts = 0;
	k->down_since_ns = 0;
}

/* -ESTALE from the target: fenced. @return true if @p rc says so. */
static bool stale(struct fw_checkpointer *k, int rc)
{
	if (rc != -ESTALE)
		return false;
	fenced(k);
	return true;
}

/* ---- the worker's side ---- */

/* Hand @p it over. @return 0, or -ENOBUFS: the ring is full. */
static int hand(struct fw_checkpointer *k, const struct item *it)
{
	if (rte_ring_sp_enqueue_elem(k->ring, (void *)(uintptr_t)it, sizeof(*it)) != 0)
		return -ENOBUFS;
	__atomic_store_n(&k->pushed, k->pushed + 1, __ATOMIC_RELAXED);
	return 0;
}

/* Reserve the ring's free room for a drain's records. @return its size (0: full). */
static uint32_t hand_begin(struct fw_checkpointer *k)
{
	k->zc_used = 0;
	k->zc_room = rte_ring_enqueue_zc_burst_elem_start(k->ring, sizeof(struct item),
							  FW_CKPT_RING_MAX, &k->zc, NULL);
	return k->zc_room;
}

/* The next slot of the room reserved, or NULL: it is used up (the ring is full). Taken
 * only by hand_take(), once the record is written there. */
static struct item *hand_slot(const struct fw_checkpointer *k)
{
	const uint32_t i = k->zc_used;

	if (i == k->zc_room)
		return NULL;
	return i < k->zc.n1 ? (struct item *)k->zc.ptr1 + i
			    : (struct item *)k->zc.ptr2 + (i - k->zc.n1);
}

/*
 * Counted in pushed at once, as each enqueue was: the drain moves the queue's head past a
 * connection before the room is published, and the recovery point another thread reads
 * meanwhile (fw_checkpointer_stats) must count its records as handed over, never as gone.
 */
static void hand_take(struct fw_checkpointer *k)
{
	k->zc_used++;
	__atomic_store_n(&k->pushed, k->pushed + 1, __ATOMIC_RELAXED);
}

/* Publish the records written, in the order taken; the rest of the room goes back. */
static void hand_end(struct fw_checkpointer *k)
{
	if (k->zc_room == 0)
		return;
	rte_ring_enqueue_zc_elem_finish(k->ring, k->zc_used);
	k->zc_room = k->zc_used = 0;
}

/*
 * Hand one dirty slice over (into the drain's room), a slot pair taken for it on its first
 * record and its generation moved on. @return 0, -ENOBUFS (the ring is full: the slice
 * stays dirty, its generation as it was), -ENOSPC (no free pair) or -EINVAL (it did not
 * encode).
 */
static int hand_slice(struct fw_checkpointer *k, struct fw_conn *c, enum fw_module_id m)
{
	struct fw_conn_cold *cc = fw_conn_cold(c);
	struct item *it = hand_slot(k);
	uint64_t gen = cc->gen[m];
	uint32_t pair = cc->slot_pair[m];

	if (it == NULL)
		return -ENOBUFS;
	if (pair == UINT32_MAX) {
		pair = fw_slots_get(k->slots, &gen);
		if (pair == UINT32_MAX)
			return -ENOSPC;
	}
	cc->slot_pair[m] = pair;
	cc->gen[m] = gen + 1;
	if (fw_ckpt_slice(c, m, it->payload, sizeof(it->payload), &it->rec)) {
		cc->gen[m] = gen; /* not handed over: the next try reuses the generation */
		return -EINVAL;
	}
	hand_take(k);
	return 0;
}

/* Hand over the pair tombstones owed (fw_checkpointer_forget) before the queue, into the
 * drain's room. @return 0, or -ENOBUFS (the ring is full: next drain). */
static int settle_owed(struct fw_checkpointer *k)
{
	for (unsigned int n = 0; n < OWED_PER_TICK; n++) {
		struct item *it;
		uint64_t gen;
		uint32_t pair = fw_slots_next_owed(k->slots, &gen);

		if (pair == UINT32_MAX)
			return 0;
		it = hand_slot(k);
		if (it == NULL)
			return -ENOBUFS;
		fw_ckpt_pair_tombstone(pair, gen, &it->rec);
		hand_take(k);
		/* Free once handed over: the pair's next record follows it in the ring. */
		fw_slots_settle(k->slots, pair);
	}
	return 0;
}

/* Remember that records up to k->pushed hold changes queued since @p since. */
static void mark_add(struct fw_checkpointer *k, uint64_t since)
{
	if (k->mtail - k->mhead == MARKS)
		k->mark[(k->mtail - 1) % MARKS].seq = k->pushed; /* merged: keeps the older */
	else
		k->mark[k->mtail++ % MARKS] = (typeof(k->mark[0])){k->pushed, since};
	__atomic_store_n(&k->since_pub, k->mark[k->mhead % MARKS].since, __ATOMIC_RELAXED);
}

/* Forget the batches the I/O side saw durable. */
static void marks_trim(struct fw_checkpointer *k)
{
	uint64_t durable;

	if (k->mhead == k->mtail)
		return;
	durable = __atomic_load_n(&k->durable_pub, __ATOMIC_ACQUIRE);
	if (k->mark[k->mhead % MARKS].seq > durable)
		return;
	while (k->mhead != k->mtail && k->mark[k->mhead % MARKS].seq <= durable)
		k->mhead++;
	__atomic_store_n(&k->since_pub, k->mhead != k->mtail ? k->mark[k->mhead % MARKS].since : 0,
			 __ATOMIC_RELAXED);
}

static int queue_all(struct fw_conn *c, void *arg)
{
	struct fw_checkpointer *k = arg;

	c->dirty |= c->present;
	c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
	fw_ckpt_queue_push(&k->q, c, 0);
	return 0;
}

/*
 * The I/O side reconnected: queue every live slice again. The changes lost with the target
 * are as old as the oldest batch not seen durable, which the queue inherits (the I/O side
 * publishes nothing durable until this is done, so that batch is still remembered).
 */
static void resync(struct fw_checkpointer *k, uint64_t req, uint64_t now)
{
	uint64_t oldest = now;

	if (k->mhead != k->mtail && k->mark[k->mhead % MARKS].since < oldest)
		oldest = k->mark[k->mhead % MARKS].since;
	if (k->q.head != k->q.tail && k->q.oldest_ns < oldest)
		oldest = k->q.oldest_ns;
	k->q.head = k->q.tail = 0;
	fw_table_walk(k->table, queue_all, k);
	k->q.oldest_ns = oldest;
	k->q.now = true;
	__atomic_store_n(&k->resync_done, req, __ATOMIC_RELEASE);
}

/* Is a drain due? See fw_checkpointer_tick(). */
static bool drain_due(const struct fw_checkpointer *k, uint64_t now)
{
	const uint32_t queued = k->q.tail - k->q.head;

	return k->q.now || queued >= TICK_BATCH ||
	       (queued != 0 && now - k->q.oldest_ns >= TICK_DELAY_NS) ||
	       fw_slots_owed(k->slots) != 0;
}

/* Encode what is due and hand it over, as far as the ring takes it. */
static void drain(struct fw_checkpointer *k, uint64_t now)
{
	const uint64_t since = k->q.head != k->q.tail ? k->q.oldest_ns : now;
	const uint64_t before = k->pushed;

	/* Full: no encode to undo (the I/O side is behind; this pass forwards instead). */
	if (hand_begin(k) == 0) {
		k->ring_full++;
		return;
	}
	if (settle_owed(k) != 0) {
		k->ring_full++;
		goto out;
	}
	k->q.now = false;
	while (k->q.head != k->q.tail) {
		struct fw_conn *c = k->q.ring[k->q.head % k->q.cap];
		int rc = 0;

		/* An entry whose connection went away (or was re-queued) is a hint: skip it. */
		if ((c->flags & FW_CONN_F_QUEUED) && fw_conn_cold(c)->key.family != 0) {
			for (int m = 1; m < FW_MOD_MAX && rc != -ENOBUFS; m++) {
				if (!(c->dirty & (1u << m)) || !(c->present & (1u << m)))
					continue;
				rc = hand_slice(k, c, (enum fw_module_id)m);
				if (rc == 0)
					c->dirty &= (uint8_t) ~(1u << m);
				else if (rc != -ENOBUFS)
					k->w_failures++; /* stays dirty: its next change retries */
			}
			if (rc == -ENOBUFS) {
				/* Stays queued and dirty: the next drain goes on from here. */
				k->ring_full++;
				break;
			}
			c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
		}
		k->q.head++;
	}
out:
	hand_end(k);
	if (k->pushed != before)
		mark_add(k, since);
}

int fw_checkpointer_tick(struct fw_checkpointer *k, uint64_t now)
{
	const uint64_t req = __atomic_load_n(&k->sig.resync_req, __ATOMIC_ACQUIRE);

	if (is_fenced(k))
		return -ESTALE;
	k->last_now = now;
	if (req != k->resync_done)
		resync(k, req, now);
	if (drain_due(k, now))
		drain(k, now);
	marks_trim(k);
	if (k->inline_io) {
		k->worker_io_passes++;
		fw_checkpointer_io(k, now);
		marks_trim(k);
	}
	return is_fenced(k) ? -ESTALE : 0;
}

/* A monotonic clock of this thread's waits (the workers' clock is the caller's). */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Ticks until nothing is left, not one tick: a tick hands over only what the ring has
 * room for, and its I/O pass stops at the first write the target's queue refuses
 * (-EAGAIN), leaving the rest held. ckpt_sync() covers only what was posted, so a sync
 * after a single tick (the stop before, and fw_bench's writer) called durable what was
 * still in the ring or the queue, and a restart restored fewer connections than the
 * worker held (fw_bench -r over ofi+tcp: 495,030 of 500,000; 4,970 never written).
 */
int fw_checkpointer_sync(struct fw_checkpointer *k, uint64_t now, uint64_t timeout_ns)
{
	const uint64_t t0 = mono_ns();
	int rc;

	if (!k->inline_io)
		return -EBUSY;
	for (;;) {
		const uint64_t waited = mono_ns() - t0;

		k->q.now = true; /* what is queued goes now, however young its batch */
		if (fw_checkpointer_tick(k, now + waited) == -ESTALE)
			return -ESTALE;
		if (k->r != NULL && fw_checkpointer_lag(k) == 0)
			break;
		if (waited > timeout_ns)
			return -ETIMEDOUT;
		usleep(100); /* the target's answers, or a reconnect on its thread */
	}
	rc = ckpt_sync(k->r);
	if (rc == 0 && k->log.r != NULL)
		rc = ckpt_sync(k->log.r);
	return rc;
}

void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c)
{
	struct fw_conn_cold *cc = fw_conn_cold(c);
	const uint64_t before = k->pushed;

	for (int m = 1; m < FW_MOD_MAX; m++) {
		struct item it;

		if (cc->slot_pair[m] == UINT32_MAX)
			continue;
		cc->gen[m]++;
		fw_ckpt_tombstone(c, (enum fw_module_id)m, &it.rec);
		if (hand(k, &it) == 0) {
			fw_slots_put(k->slots, cc->slot_pair[m], cc->gen[m]);
		} else {
			/* The slice is still on the target: the pair is owed a tombstone, handed
			 * over by a drain before the pair serves another connection. */
			k->ring_full++;
			fw_slots_owe(k->slots, cc->slot_pair[m], cc->gen[m]);
		}
		cc->slot_pair[m] = UINT32_MAX;
	}
	c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
	if (k->pushed != before)
		mark_add(k, k->last_now); /* the last tick's: at most a pass early */
}

void fw_checkpointer_set_inline(struct fw_checkpointer *k, bool on)
{
	k->inline_io = on;
}

/* ---- the I/O side ---- */

/* Write one record handed over. @return 0, -EAGAIN (the target's queue is full) or -errno. */
static int write_item(struct fw_checkpointer *k, struct item *it)
{
	struct ckpt_rec *rec = &it->rec;
	uint64_t ticket;
	int rc;

	rec->payload = rec->payload_len ? it->payload : NULL;
	rc = ckpt_slot_write(k->r, rec, true, &ticket);
	if (rc)
		return rc;
	fw_ckpt_log_put(&k->log, k->r, rec);
	if (rec->flags & CKPT_REC_F_TOMBSTONE)
		k->tombstones++;
	else if (rec->module_id < FW_MOD_MAX)
		k->slices[rec->module_id]++;
	k->bytes += ckpt_rec_size(rec->payload_len);
	return 0;
}

/*
 * What became durable, told to the worker (not while it owes a resync: see resync()). The
 * worker's lines are read only while a resync is owed, and durable_pub written only when
 * it moves: the worker reads it every pass, and a line the other side keeps writing or
 * reading costs it a miss each time.
 */
static void publish_durable(struct fw_checkpointer *k)
{
	const uint64_t d = k->r ? ckpt_durable(k->r) : 0;

	while (k->imhead != k->imtail && k->imark[k->imhead % IO_MARKS].ticket <= d)
		k->durable = k->imark[k->imhead++ % IO_MARKS].seq;
	if (k->resync_seen != k->sig.resync_req) {
		if (__atomic_load_n(&k->resync_done, __ATOMIC_ACQUIRE) != k->sig.resync_req)
			return;
		k->resync_seen = k->sig.resync_req;
	}
	if (k->durable != k->durable_told) {
		__atomic_store_n(&k->durable_pub, k->durable, __ATOMIC_RELEASE);
		k->durable_told = k->durable;
	}
}

static void imark_add(struct fw_checkpointer *k)
{
	const uint64_t ticket = ckpt_posted(k->r);

	if (k->imtail - k->imhead == IO_MARKS)
		k->imark[(k->imtail - 1) % IO_MARKS] =
			(typeof(k->imark[0])){k->taken, ticket}; /* merged: waits for both */
	else
		k->imark[k->imtail++ % IO_MARKS] = (typeof(k->imark[0])){k->taken, ticket};
}

/* Flush @p r if something was posted since its last flush. @return as ckpt_flush(). */
static int flush_if_posted(struct ckpt_region *r, uint64_t *flushed)
{
	const uint64_t posted = ckpt_posted(r);
	int rc;

	if (posted == *flushed || posted == ckpt_durable(r))
		return 0;
	rc = ckpt_flush(r);
	if (rc >= 0)
		*flushed = posted;
	return rc;
}

/*
 * Take what the ring holds and write it, in order, as far as the target takes it (at most
 * a ring's worth a pass, so that a pass ends under any load and flushes what it wrote).
 * @return 0, -EAGAIN (the rest waits for the next pass) or -errno of the target.
 */
static int write_held(struct fw_checkpointer *k)
{
	const uint64_t before = k->taken;
	int rc = 0;

	while (k->taken - before < FW_CKPT_RING_MAX) {
		if (k->hpos == k->held) {
			k->held = rte_ring_sc_dequeue_burst_elem(
				k->io_ring, k->items, sizeof(k->items[0]), IO_BURST, NULL);
			k->hpos = 0;
			if (k->held == 0)
				break;
		}
		rc = write_item(k, &k->items[k->hpos]);
		if (rc == -EAGAIN) {
			k->deferred++;
			break;
		}
		if (rc == -ESTALE || lost(rc))
			break; /* held: written again once back (a fenced client never is) */
		if (rc)
			k->failures++; /* refused for good: counted, and passed */
		rc = 0;
		k->hpos++;
		k->taken++;
	}
	if (k->taken != before)
		imark_add(k);
	return rc;
}

int fw_checkpointer_io(struct fw_checkpointer *k, uint64_t now)
{
	uint64_t epoch;
	bool busy, inflight;
	int rc;

	if (is_fenced(k))
		return 0;
	if (k->down) {
		if (k->down_since_ns == 0) /* down since the start */
			k->down_since_ns = now;
		if (k->job_state == JOB_IDLE && now < k->retry_at_ns)
			return 0;
		try_reconnect(k, now);
		if (k->down)
			return 0;
	}
	/* An epoch taken after we connected (the target was away at the start): bind now. */
	epoch = epoch_wanted(k);
	if (epoch != k->bound) {
		rc = bind_epoch(k, k->cl, epoch);
		if (stale(k, rc))
			return 1;
		if (rc) {
			go_down(k, rc, now); /* the reconnect binds */
			return 1;
		}
		k->bound = epoch;
	}
	fw_ckpt_log_mend(&k->log, k->r, now);
	busy = k->hpos != k->held || rte_ring_count(k->io_ring) != 0;
	rc = busy ? write_held(k) : 0;
	if (rc == 0 || rc == -EAGAIN)
		rc = flush_if_posted(k->r, &k->flushed_state);
	if (k->log.r != NULL && (rc >= 0 || rc == -EAGAIN))
		rc = flush_if_posted(k->log.r, &k->flushed_log);
	inflight = ckpt_posted(k->r) != ckpt_durable(k->r) ||
		   (k->log.r != NULL && ckpt_posted(k->log.r) != ckpt_durable(k->log.r));
	/*
	 * With nothing taken or in flight the target is polled only every IDLE_POLL_NS: its
	 * loss is still noticed (and the resync follows), and an idle pass costs no system
	 * call.
	 */
	if (!busy && !inflight && !fw_ckpt_log_in_gap(&k->log) && rc >= 0) {
		if (now < k->idle_poll_at_ns)
			return 0;
		k->idle_poll_at_ns = now + IDLE_POLL_NS;
	}
	if (rc >= 0 || rc == -EAGAIN)
		rc = ckpt_poll(k->cl);
	if (stale(k, rc))
		return 1;
	if (lost(rc)) {
		go_down(k, rc, now);
		return 1;
	}
	if (rc < 0 && rc != -EAGAIN)
		k->failures++;
	publish_durable(k);
	k->io_passes++;
	k->io_tid = rte_gettid();
	return busy || inflight;
}

int fw_checkpointer_bind(struct fw_checkpointer *k, const uint64_t *epoch)
{
	uint64_t e;
	int rc;

	__atomic_store_n(&k->epoch_src, epoch, __ATOMIC_RELEASE);
	e = epoch_wanted(k);
	if (k->down || k->cl == NULL || e == 0 || e == k->bound)
		return 0; /* the reconnect (or the next I/O pass) binds */
	rc = bind_epoch(k, k->cl, e);
	if (rc == 0)
		k->bound = e;
	else if (rc == -ESTALE)
		fenced(k);
	return rc;
}

uint64_t fw_checkpointer_lag(const struct fw_checkpointer *k)
{
	return (k->q.tail - k->q.head) + fw_slots_owed(k->slots) +
	       (__atomic_load_n(&k->pushed, __ATOMIC_RELAXED) -
		__atomic_load_n(&k->durable_pub, __ATOMIC_RELAXED));
}

struct fw_ckpt_queue *fw_checkpointer_queue(struct fw_checkpointer *k)
{
	return &k->q;
}

struct ckpt_region *fw_checkpointer_state(const struct fw_checkpointer *k)
{
	return k->r;
}

struct ckpt_region *fw_checkpointer_log(const struct fw_checkpointer *k)
{
	return k->log.r;
}

struct ckpt_client *fw_checkpointer_client(const struct fw_checkpointer *k)
{
	return k->cl;
}

struct fw_slots *fw_checkpointer_slots(const struct fw_checkpointer *k)
{
	return k->slots;
}

void fw_checkpointer_stats(const struct fw_checkpointer *k, struct fw_ckpt_stats *out)
{
	const uint64_t queued = k->q.tail - k->q.head;
	const uint64_t handed = __atomic_load_n(&k->pushed, __ATOMIC_RELAXED) -
				__atomic_load_n(&k->durable_pub, __ATOMIC_RELAXED);
	/* The worker forgets durable batches at its next tick: none is left when all are. */
	const uint64_t since = handed ? __atomic_load_n(&k->since_pub, __ATOMIC_RELAXED) : 0;
	uint64_t oldest = queued ? k->q.oldest_ns : 0;

	/* The oldest change not durable: still queued, or handed over and not durable yet. */
	if (since != 0 && (oldest == 0 || since < oldest))
		oldest = since;
	*out = (struct fw_ckpt_stats){
		.tombstones = k->tombstones,
		.tombstones_owed = fw_slots_owed(k->slots),
		.bytes = k->bytes,
		.failures = k->failures + k->w_failures,
		.deferred = k->deferred,
		.ring_full = k->ring_full,
		.handed = handed,
		.log_records = k->log.records,
		.log_gaps = k->log.gaps,
		.queued = queued,
		.oldest_ns = oldest,
		.lag = fw_checkpointer_lag(k),
		.reconnects = k->reconnects,
		.worker_io_passes = k->worker_io_passes,
		.io_passes = k->io_passes,
		.io_tid = k->io_tid,
		.down = k->down,
		.reconnecting = __atomic_load_n(&k->job_state, __ATOMIC_ACQUIRE) != JOB_IDLE,
		.log_gap = fw_ckpt_log_in_gap(&k->log),
		.due_now = k->q.now,
	};
	memcpy(out->slices, k->slices, sizeof(out->slices));
}

void fw_checkpointer_test_down(struct fw_checkpointer *k, uint64_t retry_at_ns)
{
	if (!k->down) {
		if (k->log.r)
			ckpt_region_close(&k->log.r);
		if (k->r)
			ckpt_region_close(&k->r);
		ckpt_disconnect(&k->cl);
		k->imhead = k->imtail;
		k->flushed_state = k->flushed_log = 0;
		k->down = true;
	}
	k->retry_at_ns = retry_at_ns;
}
