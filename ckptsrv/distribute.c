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
 * tombstone included), append regions their unread records. Those are peeked, forwarded,
 * and consumed here only once the group reports them durable: a distributor that dies in
 * between, or a group that loses members, leaves them here to be sent again (at least
 * once: a record can reach the group twice, never zero times). While the group cannot take
 * writes (fewer than k members answer) nothing is forwarded nor consumed; the group client
 * is connected again every GROUP_RETRY_NS, and everything is sent again once it is back.
 * A region seen for the first time is created in the group with the same geometry, or
 * opened if it is there already (a restarted distributor sends every pair again; the group
 * keeps the newest generation, so repeating is harmless).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckptsrv.h"
#include "hf_log.h"
#include "holdfast/ckpt_group.h"

#define LOG		"ckptsrv.distribute"
#define PASS_PERIOD_NS	50000000L
#define MAX_TENANTS	16
#define SECRET_MAX	64
#define GROUP_RETRY_NS	1000000000ull /* a group that failed is connected again this often */
#define FORWARD_WAIT_NS 5000000000ull /* the longest a record waits for room in the group */

struct tenant {
	char name[PMU_NAME_MAX];
	uint8_t secret[SECRET_MAX]; /* kept to connect the group again */
	size_t secret_len;
	struct ckpt_client *local; /* pmem: on this server's store */
	struct ckpt_client *group; /* NULL while the group cannot take writes */
	uint64_t retry_ns;	   /* next attempt to connect the group */
	bool down_said;
};

struct fwd {
	struct fwd *next;
	char owner[PMU_NAME_MAX]; /* regions are named per owner */
	char name[PMU_NAME_MAX];
	struct tenant *t;
	struct ckpt_region *local, *group;
	uint64_t *gen; /* forwarded generation per pair; overwrite regions */
	uint64_t pairs;
	bool failed; /* the local side failed: not retried */
	int gerr;    /* why forwarding to the group failed in this pass */
};

struct dist {
	struct ckptsrv *srv;
	struct tenant tenants[MAX_TENANTS];
	unsigned int ntenants;
	struct fwd *fwds;
};

static struct dist dist;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct ckpt_client_opts tenant_opts(const struct dist *d, const struct tenant *t)
{
	return (struct ckpt_client_opts){
		.tenant = t->name,
		.secret = t->secret,
		.secret_len = t->secret_len,
		.allow_shm = d->srv->cfg.allow_shm,
	};
}

static struct tenant *tenant_get(struct dist *d, const char *name)
{
	struct ckpt_client_opts o;
	char *local = NULL;
	struct tenant *t;
	int n;

	for (unsigned int i = 0; i < d->ntenants; i++)
		if (strcmp(d->tenants[i].name, name) == 0)
			return &d->tenants[i];
	if (d->ntenants == MAX_TENANTS)
		return NULL;
	t = &d->tenants[d->ntenants];
	memset(t, 0, sizeof(*t));
	n = ckpt_secret_load(d->srv->cfg.secret_file, name, t->secret, sizeof(t->secret));
	if (n < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "tenant %s: no secret for the group: %s", name,
			 strerror(-n));
		return NULL;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->secret_len = (size_t)n;
	o = tenant_opts(d, t);
	if (asprintf(&local, "pmem:%s", d->srv->cfg.pmem) < 0)
		local = NULL;
	t->local = local ? ckpt_connect(local, &o) : NULL;
	free(local);
	if (t->local == NULL) {
		ckpt_log(CKPT_LOG_ERR, LOG, "tenant %s: cannot reach the local store: %s", name,
			 strerror(errno));
		memset(t->secret, 0, sizeof(t->secret));
		return NULL;
	}
	d->ntenants++;
	return t;
}

/* The tenant's group client; after a failure, connected again at most every GROUP_RETRY_NS. */
static struct ckpt_client *tenant_group(struct dist *d, struct tenant *t)
{
	struct ckpt_client_opts o;
	uint64_t now;

	if (t->group != NULL)
		return t->group;
	now = mono_ns();
	if (now < t->retry_ns)
		return NULL;
	o = tenant_opts(d, t);
	t->group = ckpt_connect(d->srv->cfg.distribute, &o);
	if (t->group == NULL) {
		if (!t->down_said)
			ckpt_log(CKPT_LOG_WARNING, LOG,
				 "tenant %s: cannot reach %s: %s; its records stay here, retrying",
				 t->name, d->srv->cfg.distribute, strerror(errno));
		t->down_said = true;
		t->retry_ns = now + GROUP_RETRY_NS;
		return NULL;
	}
	return t->group;
}

/*
 * The group failed for @p t (a member was lost below k, or a sync timed out): drop the
 * client and its regions. Nothing consumed here depends on it; overwrite regions are sent
 * whole again once the group is back, since what was posted since the last sync may not
 * have become durable.
 */
static void group_lost(struct dist *d, struct tenant *t, int err)
{
	for (struct fwd *f = d->fwds; f != NULL; f = f->next) {
		if (f->t != t)
			continue;
		if (f->group != NULL)
			ckpt_region_close(&f->group);
		if (f->gen != NULL)
			memset(f->gen, 0, f->pairs * sizeof(*f->gen));
	}
	ckpt_disconnect(&t->group);
	if (!t->down_said)
		ckpt_log(CKPT_LOG_WARNING, LOG,
			 "tenant %s: %s cannot take writes (%s): records stay here until it can, "
			 "retrying",
			 t->name, d->srv->cfg.distribute, strerror(-err));
	t->down_said = true;
	t->retry_ns = mono_ns() + GROUP_RETRY_NS;
}

/* The group holds at least k members that answer: writes can become durable. */
static bool group_writable(struct fwd *f)
{
	struct ckpt_group_health h;
	unsigned int ok = 0;
	int rc = ckpt_poll(f->t->group); /* notices members that went away */

	if (rc < 0) {
		f->gerr = rc;
		return false;
	}
	rc = ckpt_group_health(f->group, false, &h);
	if (rc != 0) {
		f->gerr = rc;
		return false;
	}
	for (unsigned int i = 0; i < h.members; i++)
		ok += h.member[i].state == CKPT_MEMBER_OK ||
		      h.member[i].state == CKPT_MEMBER_REBUILDING;
	if (ok < h.k)
		f->gerr = -EIO;
	return ok >= h.k;
}

/* Open (or create) @p f's region in the group; a group that fails is dropped. @return 0, -errno. */
static int fwd_open_group(struct dist *d, struct fwd *f, const struct pmu_region_info *ri)
{
	struct pmu_region_params p = {
		.name = ri->name,
		.owner = ri->owner,
		.mode = ri->mode,
		.size = ri->size,
		.slot_size = ri->slot_size,
		.ring_size = ri->mode == PMU_MODE_OVERWRITE ? ri->ring_size : 0,
	};
	struct ckpt_client *g = tenant_group(d, f->t);
	int rc;

	if (g == NULL)
		return -ENOTCONN;
	rc = ckpt_region_open(g, ri->name, &f->group);
	if (rc == -ENOENT)
		rc = ckpt_region_create(g, &p, &f->group);
	if (rc == 0) {
		if (f->t->down_said)
			ckpt_log(CKPT_LOG_NOTICE, LOG, "tenant %s: %s takes writes again",
				 f->t->name, d->srv->cfg.distribute);
		f->t->down_said = false;
		ckpt_log(CKPT_LOG_NOTICE, LOG, "region %s (tenant %s): distributed to %s", ri->name,
			 ri->owner, d->srv->cfg.distribute);
		return 0;
	}
	if (rc == -EINVAL || rc == -EACCES || rc == -EEXIST) {
		ckpt_log(CKPT_LOG_ERR, LOG, "region %s: not distributed: %s", ri->name,
			 strerror(-rc));
		f->failed = true;
		return rc;
	}
	group_lost(d, f->t, rc);
	return rc;
}

static struct fwd *fwd_get(struct dist *d, const struct pmu_region_info *ri)
{
	struct fwd *f;
	int rc;

	for (f = d->fwds; f != NULL; f = f->next)
		if (strcmp(f->name, ri->name) == 0 && strcmp(f->owner, ri->owner) == 0)
			break;
	if (f == NULL) {
		f = calloc(1, sizeof(*f));
		if (f == NULL)
			return NULL;
		snprintf(f->owner, sizeof(f->owner), "%s", ri->owner);
		snprintf(f->name, sizeof(f->name), "%s", ri->name);
		f->next = d->fwds;
		d->fwds = f;
		f->failed = true; /* until the local side below worked; not retried */
		f->t = tenant_get(d, ri->owner);
		if (f->t == NULL)
			return NULL;
		rc = ckpt_region_open(f->t->local, ri->name, &f->local);
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
		f->failed = false;
	}
	if (f->failed)
		return NULL;
	if (f->group == NULL && fwd_open_group(d, f, ri) != 0)
		return NULL;
	return f;
}

/*
 * Post one record to the group, polling while its queue is full; a queue that stays full
 * (an append region nobody reads, full) counts as a failed group after FORWARD_WAIT_NS.
 */
static int forward(struct fwd *f, const struct ckpt_rec *rec)
{
	uint64_t deadline = 0;
	int rc;

	for (;;) {
		rc = ckpt_region_geometry(f->local)->mode == PMU_MODE_OVERWRITE
			     ? ckpt_slot_write(f->group, rec, true, NULL)
			     : ckpt_log_append(f->group, rec, NULL);
		if (rc != -EAGAIN)
			return rc;
		if (deadline == 0)
			deadline = mono_ns() + FORWARD_WAIT_NS;
		else if (mono_ns() > deadline)
			return -ETIMEDOUT;
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
	if (rc) {
		f->gerr = rc;
		return rc;
	}
	f->gen[rec->slot_pair] = rec->generation;
	return 0;
}

struct peeked {
	struct fwd *f;
	uint64_t n; /* records the group took */
};

static int forward_peeked(const struct ckpt_rec *rec, void *arg)
{
	struct peeked *p = arg;
	int rc = forward(p->f, rec);

	if (rc) {
		p->f->gerr = rc;
		return 1;
	}
	p->n++;
	return 0;
}

static int consume_one(const struct ckpt_rec *rec, void *arg)
{
	uint64_t *left = arg;

	(void)rec;
	return --*left == 0;
}

/*
 * An append region: peek the unread records, forward them, wait until the group holds them
 * durably, and only then consume them here, exactly as many as were forwarded (the writer
 * may have appended more meanwhile). @return 0 or -errno (f->gerr set if the group failed).
 */
static int forward_log(struct fwd *f)
{
	struct peeked p = {f, 0};
	uint64_t left;
	int rc;

	rc = ckpt_log_read(f->local, forward_peeked, &p, true, NULL);
	if (rc < 0)
		return rc;
	if (f->gerr)
		return f->gerr;
	if (p.n == 0)
		return 0;
	rc = ckpt_sync(f->group);
	if (rc) {
		f->gerr = rc;
		return rc;
	}
	left = p.n;
	rc = ckpt_log_read(f->local, consume_one, &left, false, NULL);
	return rc < 0 ? rc : 0;
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
		f->gerr = 0;
		if (!group_writable(f)) {
			group_lost(d, f->t, f->gerr);
			continue;
		}
		if (all[i].mode == PMU_MODE_OVERWRITE) {
			rc = ckpt_state_scan(f->local, CKPT_SCAN_TOMBSTONES, forward_newer, f,
					     NULL);
			if (rc >= 0 && f->gerr == 0)
				f->gerr = ckpt_sync(f->group);
		} else {
			rc = forward_log(f);
		}
		if (f->gerr) {
			group_lost(d, f->t, f->gerr);
		} else if (rc < 0) {
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
		memset(dist.tenants[i].secret, 0, sizeof(dist.tenants[i].secret));
	}
	dist.ntenants = 0;
	dist.srv = NULL;
}
