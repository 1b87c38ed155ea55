/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv --distribute GROUP: the server takes checkpoints like any other, and a thread
 * forms every region into a redundancy group as well, through the group client (the same
 * code a firewall forming its own segments runs). The firewall then pays for one copy on
 * the wire; this server pays for the forming and the k + m copies.
 *
 * Each pass reads each region the way a restore would (through a pmem: client on the
 * server's own store, so the unapplied journal counts too) and forwards what changed:
 * overwrite regions the pairs whose newest generation is above what was forwarded (a
 * tombstone included), append regions their unread records, which this server then
 * consumes. A region seen for the first time is created in the group with the same
 * geometry, or opened if it is there already (a restarted distributor sends every pair
 * again; the group keeps the newest generation, so repeating is harmless).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG	       "ckptsrv.distribute"
#define PASS_PERIOD_NS 50000000L
#define MAX_TENANTS    16
#define SECRET_MAX     64

struct tenant {
	char name[PMU_NAME_MAX];
	struct ckpt_client *local; /* pmem: on this server's store */
	struct ckpt_client *group;
};

struct fwd {
	struct fwd *next;
	char name[PMU_NAME_MAX];
	struct tenant *t;
	struct ckpt_region *local, *group;
	uint64_t *gen; /* forwarded generation per pair; overwrite regions */
	uint64_t pairs;
	bool failed;
};

struct dist {
	struct ckptsrv *srv;
	struct tenant tenants[MAX_TENANTS];
	unsigned int ntenants;
	struct fwd *fwds;
};

static struct dist dist;

static struct tenant *tenant_get(struct dist *d, const char *name)
{
	struct ckpt_client_opts o = {.tenant = name, .allow_shm = d->srv->cfg.allow_shm};
	uint8_t secret[SECRET_MAX];
	char *local = NULL;
	struct tenant *t;
	int n;

	for (unsigned int i = 0; i < d->ntenants; i++)
		if (strcmp(d->tenants[i].name, name) == 0)
			return &d->tenants[i];
	if (d->ntenants == MAX_TENANTS)
		return NULL;
	n = ckpt_secret_load(d->srv->cfg.secret_file, name, secret, sizeof(secret));
	if (n < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "tenant %s: no secret for the group: %s", name,
			 strerror(-n));
		return NULL;
	}
	t = &d->tenants[d->ntenants];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	o.secret = secret;
	o.secret_len = (size_t)n;
	if (asprintf(&local, "pmem:%s", d->srv->cfg.pmem) < 0)
		local = NULL;
	t->local = local ? ckpt_connect(local, &o) : NULL;
	t->group = ckpt_connect(d->srv->cfg.distribute, &o);
	memset(secret, 0, sizeof(secret));
	free(local);
	if (t->local == NULL || t->group == NULL) {
		ckpt_log(CKPT_LOG_ERR, LOG, "tenant %s: cannot reach %s: %s", name,
			 t->group == NULL ? d->srv->cfg.distribute : "the local store",
			 strerror(errno));
		ckpt_disconnect(&t->local);
		ckpt_disconnect(&t->group);
		return NULL;
	}
	d->ntenants++;
	return t;
}

static struct fwd *fwd_get(struct dist *d, const struct pmu_region_info *ri)
{
	struct pmu_region_params p = {
		.name = ri->name,
		.owner = ri->owner,
		.mode = ri->mode,
		.size = ri->size,
		.slot_size = ri->slot_size,
		.ring_size = ri->mode == PMU_MODE_OVERWRITE ? ri->ring_size : 0,
	};
	struct fwd *f;
	int rc;

	for (f = d->fwds; f != NULL; f = f->next)
		if (strcmp(f->name, ri->name) == 0)
			return f->failed ? NULL : f;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	snprintf(f->name, sizeof(f->name), "%s", ri->name);
	f->next = d->fwds;
	d->fwds = f;
	f->failed = true; /* until everything below worked; not retried */
	f->t = tenant_get(d, ri->owner);
	if (f->t == NULL)
		return NULL;
	rc = ckpt_region_open(f->t->local, ri->name, &f->local);
	if (rc == 0) {
		rc = ckpt_region_open(f->t->group, ri->name, &f->group);
		if (rc == -ENOENT)
			rc = ckpt_region_create(f->t->group, &p, &f->group);
	}
	if (rc == 0 && ri->mode == PMU_MODE_OVERWRITE) {
		f->pairs = ri->nslots / 2;
		f->gen = calloc(f->pairs, sizeof(*f->gen));
		rc = f->gen == NULL ? -ENOMEM : 0;
	}
	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG, "region %s: not distributed: %s", ri->name,
			 strerror(-rc));
		return NULL;
	}
	ckpt_log(CKPT_LOG_NOTICE, LOG, "region %s (tenant %s): distributed to %s", ri->name,
		 ri->owner, d->srv->cfg.distribute);
	f->failed = false;
	return f;
}

/* Post one record to the group, polling while its queue is full. */
static int forward(struct fwd *f, const struct ckpt_rec *rec)
{
	int rc;

	for (;;) {
		rc = ckpt_region_geometry(f->local)->mode == PMU_MODE_OVERWRITE
			     ? ckpt_slot_write(f->group, rec, true, NULL)
			     : ckpt_log_append(f->group, rec, NULL);
		if (rc != -EAGAIN)
			return rc;
		rc = ckpt_poll(f->t->group);
		if (rc < 0)
			return rc;
	}
}

static int forward_newer(const struct ckpt_rec *rec, void *arg)
{
	struct fwd *f = arg;
	int rc;

	if (rec->slot_pair >= f->pairs || rec->generation <= f->gen[rec->slot_pair])
		return 0;
	rc = forward(f, rec);
	if (rc)
		return rc;
	f->gen[rec->slot_pair] = rec->generation;
	return 0;
}

static int forward_all(const struct ckpt_rec *rec, void *arg)
{
	return forward(arg, rec);
}

static void pass(struct dist *d)
{
	struct pmu_region_info *all = calloc(PMU_MAX_REGIONS, sizeof(*all));
	int n;

	if (all == NULL)
		return;
	pthread_mutex_lock(&d->srv->lock);
	n = pmu_region_list(d->srv->store, all, PMU_MAX_REGIONS);
	pthread_mutex_unlock(&d->srv->lock);
	for (int i = 0; i < n && i < PMU_MAX_REGIONS && !d->srv->stop; i++) {
		struct fwd *f = fwd_get(d, &all[i]);
		int rc;

		if (f == NULL)
			continue;
		if (all[i].mode == PMU_MODE_OVERWRITE)
			rc = ckpt_state_scan(f->local, CKPT_SCAN_TOMBSTONES, forward_newer, f,
					     NULL);
		else
			/* Consumed here only after the group took them; see the file comment. */
			rc = ckpt_log_read(f->local, forward_all, f, false, NULL);
		if (rc >= 0)
			rc = ckpt_sync(f->group);
		if (rc < 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "region %s: distribution stopped: %s",
				 all[i].name, strerror(-rc));
			f->failed = true;
		}
	}
	free(all);
}

static void *distribute_main(void *arg)
{
	struct dist *d = arg;

	while (!d->srv->stop) {
		struct timespec ts = {0, PASS_PERIOD_NS};

		pass(d);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int ckptsrv_distribute_start(struct ckptsrv *srv)
{
	if (srv->cfg.distribute[0] == '\0')
		return 0;
	dist.srv = srv;
	if (pthread_create(&srv->distribute_thr, NULL, distribute_main, &dist) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "cannot start the distributor thread");
		dist.srv = NULL;
		return -EAGAIN;
	}
	ckpt_log(CKPT_LOG_NOTICE, LOG, "forming every region into %s", srv->cfg.distribute);
	return 0;
}

void ckptsrv_distribute_stop(struct ckptsrv *srv)
{
	if (dist.srv != srv)
		return;
	pthread_join(srv->distribute_thr, NULL);
	while (dist.fwds != NULL) {
		struct fwd *f = dist.fwds;

		dist.fwds = f->next;
		ckpt_region_close(&f->group);
		ckpt_region_close(&f->local);
		free(f->gen);
		free(f);
	}
	for (unsigned int i = 0; i < dist.ntenants; i++) {
		ckpt_disconnect(&dist.tenants[i].group);
		ckpt_disconnect(&dist.tenants[i].local);
	}
	dist.ntenants = 0;
	dist.srv = NULL;
}
