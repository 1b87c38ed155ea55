/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_memory.h>

#include "fw_checkpoint.h"
#include "fw_restore.h"

RTE_LOG_REGISTER_SUFFIX(fw_logtype_restore, restore, INFO)
#define LOG(level, ...)                                                                            \
	rte_log(RTE_LOG_##level, fw_logtype_restore, "holdfast.restore: " __VA_ARGS__)

/* How long a move may wait for the target to make the moved connections durable. */
#define FLUSH_TIMEOUT_NS (10ull * 1000000000ull)

struct job {
	struct fw_worker *w;
	struct fw_restore_result *res;
	const rte_cpuset_t *reader; /* the scan's reader thread runs there; NULL: no such thread */
	uint64_t t0;		    /* TSC at the start of the whole restore */
	unsigned int n;		    /* workers: a connection's owner is fw_conn_owner(key, n) */
	bool count;		    /* count what this worker does not own (a layout was given) */
	uint64_t misplaced;	    /* restored here, owned by another worker now */
	void (*fn)(struct job *j);
};

static int restore_rec(const struct ckpt_rec *rec, void *arg)
{
	/* A full table is counted (no_room) and reported; the rest is still read. */
	fw_restore_batch_add(arg, rec);
	return 0;
}

static int count_misplaced(struct fw_conn *c, void *arg)
{
	struct job *j = arg;

	if (fw_conn_owner(&fw_conn_cold(c)->key, j->n) != j->w->index)
		j->misplaced++;
	return 0;
}

/* A region split over a reader thread: a chunk's records at a time, read in place. */
struct split_job {
	struct fw_table *t;
	struct fw_slots *slots;
	struct fw_restore_stats *st;
};

static int restore_recs(const struct ckpt_rec *recs, unsigned int n, void *arg)
{
	struct split_job *s = arg;

	fw_restore_add_many(s->t, s->slots, recs, n, s->st); /* as restore_rec */
	return 0;
}

struct finish_job {
	struct fw_worker *w;
	uint64_t now;
	struct fw_finish_part part;
};

static void *finish_thread(void *arg)
{
	struct finish_job *f = arg;

	fw_restore_finish_local(f->w->table, &f->w->ctx, f->now, &f->part);
	return NULL;
}

/*
 * Where the finish's walk is cut in two halves of about equal work. A restore fills a new
 * table from its first position on (rte_hash hands them out in order), so connections sit
 * below fw_table_count() and empty positions above; a connection costs the walk about
 * three empty positions (two of its lines and the work, against one line).
 */
static uint32_t finish_mid(const struct fw_table *t)
{
	const uint64_t n = fw_table_count(t), pos = fw_table_positions(t);
	const uint64_t total = 2 * n + (pos > n ? pos : n);

	return (uint32_t)(total / 6 <= n ? total / 6 : total / 2 - 2 * n);
}

/*
 * fw_restore_finish(), its walk (1 M connections: ~8 % of the restore) split in two where
 * the region had a reader thread: the upper part of the positions on a thread on the
 * reader's CPUs, which finishes there what touches only its connection.
 */
static void finish(struct job *j, struct fw_slots *slots)
{
	struct fw_table *t = j->w->table;
	const uint64_t now = fw_worker_now(j->w);
	struct finish_job *f = NULL;
	pthread_attr_t attr;
	pthread_t th;
	int err = 1;

	if (j->reader != NULL && (f = malloc(sizeof(*f))) != NULL &&
	    pthread_attr_init(&attr) == 0) {
		*f = (struct finish_job){.w = j->w, .now = now};
		f->part.from = finish_mid(t);
		f->part.to = fw_table_positions(t);
		err = pthread_attr_setaffinity_np(&attr, sizeof(*j->reader), j->reader);
		if (err == 0)
			err = pthread_create(&th, &attr, finish_thread, f);
		pthread_attr_destroy(&attr);
		if (err == 0)
			pthread_setname_np(th, "fw-finish");
	}
	if (err) {
		free(f);
		fw_restore_finish(t, slots, &j->w->ctx, now, &j->res->st);
		return;
	}
	fw_restore_finish_range(t, slots, &j->w->ctx, now, &j->res->st, 0, f->part.from);
	pthread_join(th, NULL);
	fw_restore_finish_rest(t, slots, &j->w->ctx, now, &j->res->st, &f->part);
	free(f);
}

/* A worker's region into its table; its connections are not finished yet. */
static void scan_one(struct job *j)
{
	struct ckpt_region *r = fw_checkpointer_state(j->w->ckpt);
	struct fw_slots *slots = fw_checkpointer_slots(j->w->ckpt);
	struct fw_restore_result *res = j->res;
	/* ~8 KB with its payloads: the heap's, not a thread stack's. */
	struct fw_restore_batch *batch;

	if (r == NULL) {
		res->rc = -ENOTCONN;
		return;
	}
	if (j->reader != NULL) {
		struct split_job s = {j->w->table, slots, &res->st};

		res->rc = ckpt_state_scan_split(r, CKPT_SCAN_TOMBSTONES, j->reader, restore_recs,
						&s, &res->ss);
	} else {
		batch = malloc(sizeof(*batch));
		if (batch == NULL) {
			res->rc = -ENOMEM;
			return;
		}
		fw_restore_batch_init(batch, j->w->table, slots, &res->st);
		res->rc = ckpt_state_scan(r, CKPT_SCAN_TOMBSTONES, restore_rec, batch, &res->ss);
		fw_restore_batch_flush(batch);
		free(batch);
	}
	if (res->rc == 0 && j->count && j->n > 1)
		fw_table_walk(j->w->table, count_misplaced, j);
}

static void finish_one(struct job *j)
{
	struct fw_restore_result *res = j->res;

	if (res->rc == 0)
		finish(j, fw_checkpointer_slots(j->w->ckpt));
	res->ns =
		(uint64_t)((double)(rte_get_tsc_cycles() - j->t0) * 1e9 / (double)rte_get_tsc_hz());
}

static void *job_thread(void *arg)
{
	struct job *j = arg;

	j->fn(j);
	return NULL;
}

/* j[i].fn for every worker at once: 0 on this thread, the others on theirs. */
static int run_all(struct job *jobs, unsigned int n, const rte_cpuset_t *cpus)
{
	pthread_t th[FW_MAX_WORKER];
	bool started[FW_MAX_WORKER] = {false};
	int rc = 0;

	for (unsigned int i = 1; i < n; i++) {
		char name[24]; /* at most 15 used: i < FW_MAX_WORKER */
		pthread_attr_t attr;
		int err = pthread_attr_init(&attr);

		if (err) {
			rc = -err;
			break;
		}
		/* The caller (main) is pinned to its lcore: its threads would inherit that. */
		if (cpus != NULL)
			err = pthread_attr_setaffinity_np(&attr, sizeof(cpus[i]), &cpus[i]);
		if (err == 0)
			err = pthread_create(&th[i], &attr, job_thread, &jobs[i]);
		pthread_attr_destroy(&attr);
		if (err) {
			rc = -err;
			break;
		}
		snprintf(name, sizeof(name), "fw-restore-%u", i);
		pthread_setname_np(th[i], name);
		started[i] = true;
	}
	jobs[0].fn(&jobs[0]);
	for (unsigned int i = 1; i < n; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			jobs[i].fn(&jobs[i]);
	}
	return rc;
}

/* ---- moving connections to the workers that own them now ---- */

/* An old copy's slot pair, tombstoned once the new copy is durable. */
struct owed {
	unsigned int worker;
	uint32_t pair;
	uint64_t gen;
};

struct reshard {
	struct fw_worker *const *w;
	unsigned int n;
	struct fw_restore_moves *mv;
	struct owed *owed;
	size_t nowed, cap;
	bool got[FW_MAX_WORKER]; /* a worker that received connections */
};

/* Has @p c every slice a restore requires, all of them sound? */
static bool complete(const struct fw_conn *c)
{
	if (c->flags & FW_CONN_F_BAD_SLICE)
		return false;
	for (int m = 1; m < FW_MOD_MAX; m++)
		if (fw_modules[m] != NULL && fw_modules[m]->required &&
		    fw_modules[m]->proto == fw_conn_cold(c)->key.proto && !(c->present & (1u << m)))
			return false;
	return true;
}

/*
 * Of two copies of one connection, is @p c the one to keep over @p d? Copies made by a
 * move say the same until one of them loses slices (a write or tombstone cut short):
 * keep the one with more, and of two alike @p d, the one already where it is.
 */
static bool better(const struct fw_conn *c, const struct fw_conn *d)
{
	if (!complete(c))
		return false;
	if (!complete(d))
		return true;
	return c->present != d->present && (c->present & d->present) == d->present;
}

/* @p c's slot pairs in worker @p src's region go once the new copy is durable. */
static int owe_later(struct reshard *x, unsigned int src, const struct fw_conn *c)
{
	const struct fw_conn_cold *cc = fw_conn_cold(c);

	for (int m = 0; m < FW_MOD_MAX; m++) {
		if (cc->slot_pair[m] == UINT32_MAX)
			continue;
		if (x->nowed == x->cap) {
			size_t cap = x->cap ? 2 * x->cap : 1024;
			struct owed *o = realloc(x->owed, cap * sizeof(*o));

			if (o == NULL)
				return -ENOMEM;
			x->owed = o;
			x->cap = cap;
		}
		x->owed[x->nowed++] = (struct owed){src, cc->slot_pair[m], cc->gen[m]};
	}
	return 0;
}

/* @p d becomes @p c, restored and not finished, every slice to be written anew. */
static void take_copy(struct fw_conn *d, const struct fw_conn *c)
{
	fw_conn_copy(d, c);
	d->flags = c->flags & (FW_CONN_F_RESTORING | FW_CONN_F_BAD_SLICE);
	d->dirty = c->present;
	for (int m = 0; m < FW_MOD_MAX; m++) {
		fw_conn_cold(d)->slot_pair[m] = UINT32_MAX;
		fw_conn_cold(d)->gen[m] = 0;
	}
}

/*
 * Connection @p c of table @p t, restored from worker @p src's region (src >= n: a retired
 * region, deleted as a whole later), goes to its owner @p o.
 */
static int move_one(struct reshard *x, struct fw_table *t, unsigned int src, struct fw_conn *c,
		    unsigned int o)
{
	struct fw_table *ot = x->w[o]->table;
	const struct fw_conn_cold *cc = fw_conn_cold(c);
	struct fw_conn *d = fw_table_lookup(ot, &cc->key);
	int rc = 0;

	x->mv->misplaced++;
	if (d != NULL) {
		x->mv->duplicates++;
		if (better(c, d)) {
			/* d's own pairs (a copy of o's region's) go too; a moved d has none. */
			rc = owe_later(x, o, d);
			take_copy(d, c);
			x->got[o] = true;
		}
	} else {
		d = fw_table_add(ot, &cc->key, cc->id);
		if (d == NULL) {
			/* Left where it is, on the target, for a start with room: a retired
			 * region that holds one is kept (reshard_move). */
			x->mv->no_room++;
			fw_table_del(t, c);
			return 0;
		}
		take_copy(d, c);
		x->mv->moved++;
		x->got[o] = true;
	}
	/* Of a retired region, needed only if it is kept (the rest of it found no room). */
	if (rc == 0)
		rc = owe_later(x, src, c);
	fw_table_del(t, c);
	return rc;
}

struct walk {
	struct reshard *x;
	struct fw_table *t;
	unsigned int src;
	int rc;
};

static int move_misplaced(struct fw_conn *c, void *arg)
{
	struct walk *wk = arg;
	const unsigned int o = fw_conn_owner(&fw_conn_cold(c)->key, wk->x->n);

	if (o != wk->src)
		wk->rc = move_one(wk->x, wk->t, wk->src, c, o);
	return wk->rc;
}

static int count_rec(const struct ckpt_rec *rec, void *arg)
{
	(void)rec;
	++*(uint64_t *)arg;
	return 0;
}

/* Retired region @p r (worker @p src >= n): every connection into its owner's table. */
static int drain_retired(struct reshard *x, const struct fw_ckpt_layout *layout,
			 struct ckpt_region *r, unsigned int src)
{
	/* Its pairs are claimed as a restore does, and forgotten: the region goes whole. */
	struct fw_slots *slots = fw_slots_create(0, (uint32_t)layout->pairs);
	struct fw_restore_batch *batch = malloc(sizeof(*batch));
	struct fw_table *t = NULL;
	uint64_t records = 0;
	char name[32];
	int rc = -ENOMEM;

	if (slots == NULL || batch == NULL)
		goto out;
	/* A table of its own, as big as the region's records say (a connection has one or more). */
	rc = ckpt_state_scan(r, 0, count_rec, &records, NULL);
	if (rc)
		goto out;
	snprintf(name, sizeof(name), "fw_retired_%u", src);
	t = fw_table_create(name, (uint32_t)records + 64, 0, SOCKET_ID_ANY);
	if (t == NULL) {
		rc = -errno;
		goto out;
	}
	fw_restore_batch_init(batch, t, slots, &x->mv->st);
	rc = ckpt_state_scan(r, 0, restore_rec, batch, NULL);
	fw_restore_batch_flush(batch);
	if (rc == 0) {
		struct walk wk = {x, t, src, 0};

		fw_table_walk(t, move_misplaced, &wk);
		rc = wk.rc;
	}
out:
	fw_table_free(&t);
	free(batch);
	fw_slots_free(&slots);
	return rc;
}

/* The regions of the target, or NULL (not listed: the caller tries each name). */
static struct ckpt_region_info *list_regions(struct ckpt_client *cl, unsigned int *n)
{
	enum {
		MAX = 256
	};
	struct ckpt_region_info *l = calloc(MAX, sizeof(*l));
	int got;

	if (l == NULL)
		return NULL;
	got = ckpt_region_list(cl, l, MAX);
	if (got < 0 || got > MAX) {
		free(l);
		return NULL;
	}
	*n = (unsigned int)got;
	return l;
}

static bool region_listed(const struct ckpt_region_info *l, unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (strcmp(l[i].r.name, name) == 0)
			return true;
	return false;
}

/*
 * Every connection into the table of the worker that owns it now: those of live workers'
 * regions found elsewhere (@p misplaced of them), and those of retired regions. A retired
 * region whose connections all found room is marked in @p retired (deleted once the
 * moved copies are durable); one with connections left over is kept for a start with
 * room, and marked in @p kept (what moved out of it is tombstoned there instead).
 */
static int reshard_move(struct reshard *x, const struct fw_ckpt_layout *layout, uint64_t misplaced,
			bool *retired, bool *kept)
{
	struct ckpt_client *cl = fw_checkpointer_client(x->w[0]->ckpt);
	struct ckpt_region_info *listed = NULL;
	unsigned int nlisted = 0;
	int rc = 0;

	if (cl == NULL)
		return 0; /* the target is away: nothing was restored either */
	/* Which of the workers' regions beyond ours exist: one listing, rather than an open
	 * of each of FW_MAX_WORKER (a round trip each over ckptsrv, and an error logged by the
	 * target for every one that is not there). */
	listed = list_regions(cl, &nlisted);
	for (unsigned int src = x->n; src < FW_MAX_WORKER; src++) {
		struct ckpt_region *r;
		char name[PMU_NAME_MAX];
		uint64_t left = 0;
		int err;

		fw_ckpt_layout_state(layout, src, name, NULL);
		if (listed != NULL && !region_listed(listed, nlisted, name))
			continue;
		err = ckpt_region_open(cl, name, &r);
		if (err == -ENOENT)
			continue; /* not every one: a delete cut short leaves gaps */
		if (err == 0) {
			uint64_t no_room = x->mv->no_room;

			err = drain_retired(x, layout, r, src);
			left = x->mv->no_room - no_room;
			ckpt_region_close(&r);
		}
		if (err) {
			LOG(ERR, "region %s of a run with more workers: %s; kept\n", name,
			    strerror(-err));
			rc = err;
			continue;
		}
		x->mv->retired++;
		if (left) {
			LOG(WARNING,
			    "region %s of a run with more workers: %" PRIu64 " connection%s found "
			    "no room in %s owner's table (max_conns): kept there for a start with "
			    "room; what moved out is tombstoned\n",
			    name, left, left == 1 ? "" : "s", left == 1 ? "its" : "their");
			kept[src] = true;
			x->mv->kept++;
			continue;
		}
		retired[src] = true;
	}
	free(listed);
	for (unsigned int src = 0; misplaced && src < x->n; src++) {
		struct walk wk = {x, x->w[src]->table, src, 0};

		fw_table_walk(wk.t, move_misplaced, &wk);
		if (wk.rc)
			return wk.rc;
	}
	return rc;
}

static int queue_dirty(struct fw_conn *c, void *arg)
{
	struct fw_worker *w = arg;

	if (c->dirty)
		fw_ckpt_queue_push(w->ckq != NULL ? w->ckq : fw_checkpointer_queue(w->ckpt), c,
				   fw_worker_now(w));
	return 0;
}

/* What worker @p w's checkpointer holds, written and synced (I/O inline, as at a start). */
static int flush_durable(struct fw_worker *w)
{
	return fw_checkpointer_sync(w->ckpt, fw_worker_now(w), FLUSH_TIMEOUT_NS);
}

/*
 * In kept retired region @p src, the copies of what moved out of it tombstoned (their new
 * copies are durable), so a later drain finds only what found no room. A region no worker
 * writes: the tombstones go straight to it.
 */
static int tombstone_moved(struct reshard *x, const struct fw_ckpt_layout *layout,
			   struct ckpt_client *cl, unsigned int src)
{
	char name[PMU_NAME_MAX];
	struct ckpt_region *r;
	uint64_t n = 0;
	int rc;

	fw_ckpt_layout_state(layout, src, name, NULL);
	rc = ckpt_region_open(cl, name, &r);
	if (rc)
		return rc;
	for (size_t i = 0; rc == 0 && i < x->nowed; i++) {
		const struct owed *ow = &x->owed[i];
		struct ckpt_rec rec;
		uint64_t ticket;

		if (ow->worker != src)
			continue;
		fw_ckpt_pair_tombstone(ow->pair, ow->gen + 1, &rec);
		rc = ckpt_slot_write(r, &rec, false, &ticket);
		n++;
	}
	if (rc == 0)
		rc = ckpt_sync(r);
	ckpt_region_close(&r);
	if (rc == 0)
		x->mv->tombstoned += n;
	return rc;
}

/* The moved connections durable in their owners' regions, then the old copies gone. */
static int reshard_settle(struct reshard *x, const struct fw_ckpt_layout *layout,
			  const bool *retired, const bool *kept)
{
	struct ckpt_client *cl = fw_checkpointer_client(x->w[0]->ckpt);
	bool owes[FW_MAX_WORKER] = {false};
	int rc = 0;

	for (unsigned int o = 0; o < x->n; o++) {
		if (!x->got[o])
			continue;
		fw_table_walk(x->w[o]->table, queue_dirty, x->w[o]);
		rc = flush_durable(x->w[o]);
		if (rc) {
			LOG(ERR,
			    "worker %u: moved connections not durable (%s): their old copies "
			    "are kept\n",
			    o, strerror(-rc));
			return rc;
		}
	}
	for (size_t i = 0; i < x->nowed; i++) {
		const struct owed *ow = &x->owed[i];

		if (ow->worker >= x->n)
			continue; /* a retired region's: below, or deleted whole */
		/* Above the copy's generation: the tombstone outranks it. */
		fw_slots_owe(fw_checkpointer_slots(x->w[ow->worker]->ckpt), ow->pair, ow->gen + 1);
		owes[ow->worker] = true;
	}
	for (unsigned int src = x->n; cl != NULL && src < FW_MAX_WORKER; src++) {
		int err = kept[src] ? tombstone_moved(x, layout, cl, src) : 0;

		if (err) {
			LOG(ERR, "retired region of worker %u: moved copies not tombstoned (%s)\n",
			    src, strerror(-err));
			rc = err;
		}
	}
	for (unsigned int s = 0; s < x->n; s++) {
		int err = owes[s] ? flush_durable(x->w[s]) : 0;

		if (err) {
			LOG(ERR, "worker %u: old copies not tombstoned (%s)\n", s, strerror(-err));
			rc = err;
		}
	}
	if (rc == 0)
		for (size_t i = 0; i < x->nowed; i++)
			x->mv->tombstoned += x->owed[i].worker < x->n;
	for (unsigned int src = x->n; cl != NULL && src < FW_MAX_WORKER; src++) {
		char name[PMU_NAME_MAX];
		int err;

		if (!retired[src])
			continue;
		/* The log first: a state region left behind is found and drained again. */
		fw_ckpt_layout_log(layout, src, name, NULL);
		err = ckpt_region_delete(cl, name);
		if (err == 0 || err == -ENOENT) {
			fw_ckpt_layout_state(layout, src, name, NULL);
			err = ckpt_region_delete(cl, name);
		}
		if (err && err != -ENOENT) {
			LOG(WARNING,
			    "region %s: not deleted (%s): drained again at the next start\n", name,
			    strerror(-err));
			continue;
		}
		x->mv->deleted++;
	}
	return rc;
}

int fw_restore_workers(struct fw_worker *const *workers, unsigned int n, const rte_cpuset_t *cpus,
		       const rte_cpuset_t *readers, const struct fw_ckpt_layout *layout,
		       struct fw_restore_result *res, struct fw_restore_moves *mv)
{
	struct job jobs[FW_MAX_WORKER];
	struct reshard x = {.w = workers, .n = n, .mv = mv};
	bool retired[FW_MAX_WORKER] = {false}, kept[FW_MAX_WORKER] = {false};
	const uint64_t t0 = rte_get_tsc_cycles();
	uint64_t misplaced = 0;
	int rc, err;

	if (n == 0 || n > FW_MAX_WORKER)
		return -EINVAL;
	if (mv != NULL)
		memset(mv, 0, sizeof(*mv));
	/*
	 * A CPU more than there are workers: each region's reading and decoding go to a
	 * thread of their own beside its inserts. With none spare they would only take
	 * turns with another worker's restore on its CPU.
	 */
	if (readers != NULL && (unsigned int)CPU_COUNT(readers) <= n)
		readers = NULL;
	for (unsigned int i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		jobs[i] = (struct job){workers[i], &res[i],	   readers, t0,
				       n,	   layout != NULL, 0,	    scan_one};
	}
	rc = run_all(jobs, n, cpus);
	for (unsigned int i = 0; i < n; i++) {
		misplaced += jobs[i].misplaced;
		jobs[i].fn = finish_one;
	}
	/* Only if every region was read: a move must know every copy there is. */
	for (unsigned int i = 0; i < n; i++)
		if (res[i].rc != 0)
			layout = NULL;
	if (layout != NULL && mv != NULL) {
		err = reshard_move(&x, layout, misplaced, retired, kept);
		if (err)
			mv->rc = err;
	}
	err = run_all(jobs, n, cpus);
	if (rc == 0)
		rc = err;
	if (layout != NULL && mv != NULL && (x.nowed || mv->moved || mv->retired)) {
		err = reshard_settle(&x, layout, retired, kept);
		if (err && mv->rc == 0)
			mv->rc = err;
	}
	free(x.owed);
	return rc;
}
