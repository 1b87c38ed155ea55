/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>

#include "fw_checkpoint.h"
#include "fw_restore.h"

struct job {
	struct fw_worker *w;
	struct fw_restore_result *res;
	const rte_cpuset_t *reader; /* the scan's reader thread runs there; NULL: no such thread */
	uint64_t t0;		    /* TSC at the start of the whole restore */
};

static int restore_rec(const struct ckpt_rec *rec, void *arg)
{
	/* A full table is counted (no_room) and reported; the rest is still read. */
	fw_restore_batch_add(arg, rec);
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

static void restore_one(struct job *j)
{
	struct ckpt_region *r = fw_checkpointer_state(j->w->ckpt);
	struct fw_slots *slots = fw_checkpointer_slots(j->w->ckpt);
	struct fw_restore_result *res = j->res;
	/* ~8 KB with its payloads: the heap's, not a thread stack's. */
	struct fw_restore_batch *batch;

	if (r == NULL) {
		res->rc = -ENOTCONN;
		goto out;
	}
	if (j->reader != NULL) {
		struct split_job s = {j->w->table, slots, &res->st};

		res->rc = ckpt_state_scan_split(r, CKPT_SCAN_TOMBSTONES, j->reader, restore_recs,
						&s, &res->ss);
	} else {
		batch = malloc(sizeof(*batch));
		if (batch == NULL) {
			res->rc = -ENOMEM;
			goto out;
		}
		fw_restore_batch_init(batch, j->w->table, slots, &res->st);
		res->rc = ckpt_state_scan(r, CKPT_SCAN_TOMBSTONES, restore_rec, batch, &res->ss);
		fw_restore_batch_flush(batch);
		free(batch);
	}
	if (res->rc == 0)
		finish(j, slots);
out:
	res->ns =
		(uint64_t)((double)(rte_get_tsc_cycles() - j->t0) * 1e9 / (double)rte_get_tsc_hz());
}

static void *restore_thread(void *arg)
{
	restore_one(arg);
	return NULL;
}

int fw_restore_workers(struct fw_worker *const *workers, unsigned int n, const rte_cpuset_t *cpus,
		       const rte_cpuset_t *readers, struct fw_restore_result *res)
{
	struct job jobs[FW_MAX_WORKER];
	pthread_t th[FW_MAX_WORKER];
	bool started[FW_MAX_WORKER] = {false};
	const uint64_t t0 = rte_get_tsc_cycles();
	int rc = 0;

	if (n > FW_MAX_WORKER)
		return -EINVAL;
	/*
	 * A CPU more than there are workers: each region's reading and decoding go to a
	 * thread of their own beside its inserts. With none spare they would only take
	 * turns with another worker's restore on its CPU.
	 */
	if (readers != NULL && (unsigned int)CPU_COUNT(readers) <= n)
		readers = NULL;
	for (unsigned int i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		jobs[i] = (struct job){workers[i], &res[i], readers, t0};
	}
	for (unsigned int i = 1; i < n; i++) {
		char name[16];
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
			err = pthread_create(&th[i], &attr, restore_thread, &jobs[i]);
		pthread_attr_destroy(&attr);
		if (err) {
			rc = -err;
			break;
		}
		snprintf(name, sizeof(name), "fw-restore-%u", i);
		pthread_setname_np(th[i], name);
		started[i] = true;
	}
	restore_one(&jobs[0]);
	for (unsigned int i = 1; i < n; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			restore_one(&jobs[i]);
	}
	return rc;
}
