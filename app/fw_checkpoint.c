/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

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

struct fw_checkpointer {
	struct fw_ckpt_layout layout; /* a copy: a reconnect thread reads it */
	unsigned int worker;
	struct fw_table *table; /* walked to resynchronise after the target comes back */
	struct ckpt_client *cl;
	struct ckpt_region *r; /* NULL while the target is down */
	struct fw_ckpt_log log;
	bool down;
	uint64_t down_since_ns; /* when the target was lost (the "back after" line) */
	uint64_t retry_at_ns;
	uint64_t backoff_ns;
	uint64_t reconnects;
	uint64_t attempts; /* reconnect attempts since the loss */
	/* A reconnect attempt runs on a thread of its own; the worker adopts its result. */
	pthread_t job_th;
	int job_state; /* JOB_*, written by the thread once: RUNNING -> DONE */
	int job_rc;
	struct link job_link;
	uint64_t idle_poll_at_ns;
	/* Fencing: the epoch to bind every connection to (fw_checkpointer_bind), the one cl
	 * is bound to, and whether the target refused us for a newer one. */
	const uint64_t *epoch_src;
	uint64_t bound;
	bool fenced;
	struct fw_slots *slots;
	struct fw_ckpt_queue q;
	/* counters (fw_ckpt_stats) */
	uint64_t slices[FW_MOD_MAX];
	uint64_t tombstones;
	uint64_t bytes;
	uint64_t failures;
	uint64_t deferred;
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

struct fw_checkpointer *fw_checkpointer_create(const struct fw_ckpt_layout *layout,
					       unsigned int worker, struct fw_table *table,
					       uint32_t queue_cap, unsigned int flags)
{
	struct fw_checkpointer *k;
	int rc;

	if (layout->pairs == 0 || layout->pairs > UINT32_MAX / 2 || queue_cap == 0) {
		errno = EINVAL;
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	k->layout = *layout;
	k->worker = worker;
	k->table = table;
	k->slots = fw_slots_create(0, (uint32_t)layout->pairs);
	k->q.ring = calloc(queue_cap, sizeof(*k->q.ring));
	if (k->slots == NULL || k->q.ring == NULL) {
		fw_checkpointer_destroy(&k);
		errno = ENOMEM;
		return NULL;
	}
	k->q.cap = queue_cap;
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
	fw_ckpt_layout_release(&k->layout);
	free(k);
	*kp = NULL;
}

/* The target refused us for a newer epoch: write nothing more, ever. */
static void fenced(struct fw_checkpointer *k)
{
	if (!k->fenced)
		LOG(ERR, "worker %u: %s refuses our writes: a newer epoch was taken (fenced)\n",
		    k->worker, k->layout.target);
	k->fenced = true;
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
	k->retry_at_ns = now + k->backoff_ns;
}

static int queue_all(struct fw_conn *c, void *arg)
{
	struct fw_checkpointer *k = arg;

	c->dirty |= c->present;
	c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
	fw_ckpt_queue_push(&k->q, c, 0);
	return 0;
}

/* A reconnect attempt runs here, beside the worker: it may wait up to its timeouts. */
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
	/* Back: whatever changed meanwhile, or was lost with the target, is written again. */
	k->down = false;
	k->reconnects++;
	k->backoff_ns = BACKOFF_MIN_NS;
	k->q.head = k->q.tail = 0;
	fw_table_walk(k->table, queue_all, k);
	LOG(NOTICE,
	    "checkpoint target %s back after %.0f ms (worker %u, attempt %" PRIu64
	    "); resynchronising %u connections\n",
	    k->layout.target, (double)(now - k->down_since_ns) / 1e6, k->worker, k->attempts,
	    k->q.tail - k->q.head);
	k->attempts = 0;
	k->down_since_ns = 0;
}

/* Write one dirty slice. @return 0, -EAGAIN (target queue full: try next tick) or -errno. */
static int write_slice(struct fw_checkpointer *k, struct fw_conn *c, enum fw_module_id m)
{
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	struct ckpt_rec rec;
	uint64_t ticket, gen = c->gen[m];
	uint32_t pair = c->slot_pair[m];
	int rc;

	if (pair == UINT32_MAX) {
		pair = fw_slots_get(k->slots, &gen);
		if (pair == UINT32_MAX)
			return -ENOSPC;
	}
	c->slot_pair[m] = pair;
	c->gen[m] = gen + 1;
	/* A slice that does not encode is this build's fault, not the target's: counted, and
	 * never taken for a reason to reconnect. */
	rc = fw_ckpt_slice(c, m, payload, sizeof(payload), &rec) ? -EINVAL : 0;
	if (rc == 0)
		rc = ckpt_slot_write(k->r, &rec, true, &ticket);
	if (rc) {
		c->gen[m] = gen; /* not written: the next try reuses the generation */
		return rc;
	}
	fw_ckpt_log_put(&k->log, k->r, &rec);
	k->slices[m]++;
	k->bytes += ckpt_rec_size(rec.payload_len);
	return 0;
}

/*
 * Write the tombstones owed for pairs whose connections went while their tombstones could
 * not be written (fw_checkpointer_forget): until then their last slices are on the target
 * and a restore (or a standby following the log) would bring the connections back. The
 * tick writes them before its queue. @return 0, -EAGAIN (the target's queue is full: next
 * tick) or -errno.
 */
static int settle_owed(struct fw_checkpointer *k)
{
	for (unsigned int n = 0; n < OWED_PER_TICK; n++) {
		struct ckpt_rec rec;
		uint64_t ticket, gen;
		uint32_t pair = fw_slots_next_owed(k->slots, &gen);
		int rc;

		if (pair == UINT32_MAX)
			return 0;
		fw_ckpt_pair_tombstone(pair, gen, &rec);
		rc = ckpt_slot_write(k->r, &rec, true, &ticket);
		if (rc)
			return rc;
		fw_ckpt_log_put(&k->log, k->r, &rec);
		k->tombstones++;
		fw_slots_settle(k->slots, pair);
	}
	return 0;
}

/* -ESTALE from the target: fenced. @return true if @p rc says so. */
static bool stale(struct fw_checkpointer *k, int rc)
{
	if (rc != -ESTALE)
		return false;
	fenced(k);
	return true;
}

static void tick(struct fw_checkpointer *k, uint64_t now)
{
	uint64_t epoch;
	int rc = 0;

	/*
	 * Called every pass of the lcore loop. Queued changes are written (and flushed) once
	 * TICK_BATCH of them wait or the oldest waited TICK_DELAY_NS: a flush is a system call
	 * (msync) or a round trip (PERSIST), and one per pass cost a quarter of the forwarding
	 * rate at 100k new connections/s. A change marked due now (a TCP window edge) goes at
	 * once: a restore absorbs only a burst of data beyond it. Between, writes in flight are
	 * polled; with nothing queued or in flight, the target is only polled every IDLE_POLL_NS,
	 * so that its loss is still noticed (and the resync follows) while the lcore pays no system
	 * call per pass.
	 */
	if (!k->down && !fw_ckpt_log_in_gap(&k->log) && !k->q.now && fw_slots_owed(k->slots) == 0 &&
	    k->q.tail - k->q.head < TICK_BATCH &&
	    (k->q.head == k->q.tail || now - k->q.oldest_ns < TICK_DELAY_NS)) {
		bool idle = ckpt_posted(k->r) == ckpt_durable(k->r) &&
			    (k->log.r == NULL || ckpt_posted(k->log.r) == ckpt_durable(k->log.r));

		if (idle && now < k->idle_poll_at_ns)
			return;
		if (idle)
			k->idle_poll_at_ns = now + IDLE_POLL_NS;
		else if (k->q.head != k->q.tail)
			goto poll; /* a batch is filling: only progress what is in flight */
	}
	if (k->down) {
		if (k->down_since_ns == 0) /* down since the start */
			k->down_since_ns = now;
		if (k->job_state == JOB_IDLE && now < k->retry_at_ns)
			return;
		try_reconnect(k, now);
		if (k->down)
			return;
	}
	/* An epoch taken after we connected (the target was away at the start): bind now. */
	epoch = epoch_wanted(k);
	if (epoch != k->bound) {
		rc = bind_epoch(k, k->cl, epoch);
		if (stale(k, rc))
			return;
		if (rc) {
			go_down(k, rc, now); /* the reconnect binds */
			return;
		}
		k->bound = epoch;
	}
	fw_ckpt_log_mend(&k->log, k->r, now);
	rc = settle_owed(k);
	if (stale(k, rc))
		return;
	if (lost(rc)) {
		go_down(k, rc, now);
		return;
	}
	if (rc && rc != -EAGAIN)
		k->failures++; /* still owed: tried again next tick */
	rc = 0;
	k->q.now = false;
	while (k->q.head != k->q.tail) {
		struct fw_conn *c = k->q.ring[k->q.head % k->q.cap];

		rc = 0;
		/* An entry whose connection went away (or was re-queued) is a hint: skip it. */
		if (c->key.family != 0 && (c->flags & FW_CONN_F_QUEUED)) {
			for (int m = 1; m < FW_MOD_MAX && rc == 0; m++) {
				if (!(c->dirty & (1u << m)) || !(c->present & (1u << m)))
					continue;
				rc = write_slice(k, c, (enum fw_module_id)m);
				if (rc == 0)
					c->dirty &= (uint8_t) ~(1u << m);
			}
			if (rc == -EAGAIN) {
				k->deferred++;
				break;
			}
			if (stale(k, rc))
				return;
			if (lost(rc)) {
				go_down(k, rc, now);
				return;
			}
			if (rc)
				k->failures++;
			c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
		}
		k->q.head++;
	}
	if (ckpt_posted(k->r) != ckpt_durable(k->r))
		rc = ckpt_flush(k->r);
	if (k->log.r != NULL && ckpt_posted(k->log.r) != ckpt_durable(k->log.r) &&
	    (rc >= 0 || rc == -EAGAIN))
		rc = ckpt_flush(k->log.r);
poll:
	if (rc >= 0 || rc == -EAGAIN)
		rc = ckpt_poll(k->cl);
	if (stale(k, rc))
		return;
	if (lost(rc))
		go_down(k, rc, now);
	else if (rc < 0)
		k->failures++;
}

int fw_checkpointer_tick(struct fw_checkpointer *k, uint64_t now)
{
	if (!k->fenced)
		tick(k, now);
	return k->fenced ? -ESTALE : 0;
}

int fw_checkpointer_bind(struct fw_checkpointer *k, const uint64_t *epoch)
{
	uint64_t e;
	int rc;

	__atomic_store_n(&k->epoch_src, epoch, __ATOMIC_RELEASE);
	e = epoch_wanted(k);
	if (k->down || k->cl == NULL || e == 0 || e == k->bound)
		return 0; /* the reconnect (or the next tick) binds */
	rc = bind_epoch(k, k->cl, e);
	if (rc == 0)
		k->bound = e;
	else if (rc == -ESTALE)
		fenced(k);
	return rc;
}

void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c)
{
	for (int m = 1; m < FW_MOD_MAX; m++) {
		struct ckpt_rec rec;
		uint64_t ticket;

		if (c->slot_pair[m] == UINT32_MAX)
			continue;
		c->gen[m]++;
		fw_ckpt_tombstone(c, (enum fw_module_id)m, &rec);
		if (k->r != NULL && ckpt_slot_write(k->r, &rec, true, &ticket) == 0) {
			k->tombstones++;
			fw_ckpt_log_put(&k->log, k->r, &rec);
			fw_slots_put(k->slots, c->slot_pair[m], c->gen[m]);
		} else {
			/* The slice is still on the target: the pair is owed a tombstone, written
			 * by a tick before the pair serves another connection. */
			fw_slots_owe(k->slots, c->slot_pair[m], c->gen[m]);
		}
		c->slot_pair[m] = UINT32_MAX;
	}
	c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
}

uint64_t fw_checkpointer_lag(const struct fw_checkpointer *k)
{
	return (k->q.tail - k->q.head) + fw_slots_owed(k->slots) +
	       (k->r ? ckpt_posted(k->r) - ckpt_durable(k->r) : 0);
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
	*out = (struct fw_ckpt_stats){
		.tombstones = k->tombstones,
		.tombstones_owed = fw_slots_owed(k->slots),
		.bytes = k->bytes,
		.failures = k->failures,
		.deferred = k->deferred,
		.log_records = k->log.records,
		.log_gaps = k->log.gaps,
		.queued = k->q.tail - k->q.head,
		.oldest_ns = k->q.oldest_ns,
		.lag = fw_checkpointer_lag(k),
		.reconnects = k->reconnects,
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
		k->down = true;
	}
	k->retry_at_ns = retry_at_ns;
}
