/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-memory byte backend of the group's unit tests (stub_backend.h). Every write is
 * durable at once: a barrier completes when it is asked for. One lock covers every store,
 * since a group's rejoin thread connects while the test's thread writes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_internal.h"
#include "stub_backend.h"

#define STORES 8

struct stub_region {
	struct pmu_region_info geo;
	uint8_t *bytes;
	unsigned int opened;
	struct stub_region *next;
};

struct stub_store {
	char name[64];
	bool down;
	bool stat_fails; /* stat answers ETIMEDOUT, everything else works */
	uint32_t next_index;
	struct stub_region *regions;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct stub_store stores[STORES];
static unsigned int nstores;

static struct stub_store *store_find(const char *name)
{
	for (unsigned int i = 0; i < nstores; i++)
		if (strcmp(stores[i].name, name) == 0)
			return &stores[i];
	return NULL;
}

static struct stub_region *region_find(struct stub_store *s, const char *name)
{
	for (struct stub_region *sr = s->regions; sr != NULL; sr = sr->next)
		if (strcmp(sr->geo.name, name) == 0)
			return sr;
	return NULL;
}

static void region_info(const struct stub_region *sr, struct ckpt_region_info *out)
{
	memset(out, 0, sizeof(*out));
	out->r = sr->geo;
	out->lease_alive = sr->geo.lease_ns > pmu_now_ns();
	memcpy(&out->ring_head, sr->bytes + PMU_REGION_HEAD_OFF, sizeof(out->ring_head));
	memcpy(&out->ring_tail, sr->bytes + PMU_REGION_TAIL_OFF, sizeof(out->ring_tail));
}

static int stub_connect(struct ckpt_client *c, const char *where)
{
	struct stub_store *s;
	int rc = 0;

	pthread_mutex_lock(&lock);
	s = store_find(where);
	if (s == NULL && nstores < STORES && strlen(where) < sizeof(s->name)) {
		s = &stores[nstores++];
		strcpy(s->name, where);
		s->next_index = 0;
	}
	if (s == NULL)
		rc = -ENOSPC;
	else if (s->down)
		rc = -ECONNREFUSED;
	else
		c->be = s;
	pthread_mutex_unlock(&lock);
	return rc;
}

static void stub_disconnect(struct ckpt_client *c)
{
	c->be = NULL;
}

static int stub_create(struct ckpt_client *c, const struct pmu_region_params *p,
		       struct ckpt_region *r)
{
	struct stub_store *s = c->be;
	struct stub_region *sr;
	int rc;

	pthread_mutex_lock(&lock);
	if (s->down) {
		rc = -ECONNRESET;
		goto out;
	}
	if (region_find(s, p->name) != NULL) {
		rc = -EEXIST;
		goto out;
	}
	sr = calloc(1, sizeof(*sr));
	rc = sr == NULL ? -ENOMEM : pmu_region_layout(p, &sr->geo);
	if (rc == 0) {
		sr->bytes = calloc(1, sr->geo.size);
		rc = sr->bytes == NULL ? -ENOMEM : 0;
	}
	if (rc) {
		if (sr != NULL)
			free(sr->bytes);
		free(sr);
		goto out;
	}
	sr->geo.index = s->next_index++;
	sr->geo.created_ns = pmu_now_ns();
	sr->opened = 1;
	sr->next = s->regions;
	s->regions = sr;
	r->geo = sr->geo;
	r->be = sr;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

static int stub_open(struct ckpt_client *c, const char *name, struct ckpt_region *r)
{
	struct stub_store *s = c->be;
	struct stub_region *sr;
	int rc = 0;

	pthread_mutex_lock(&lock);
	sr = region_find(s, name);
	if (s->down)
		rc = -ECONNRESET;
	else if (sr == NULL)
		rc = -ENOENT;
	if (rc == 0) {
		sr->opened++;
		r->geo = sr->geo;
		r->be = sr;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

static int stub_close(struct ckpt_region *r)
{
	struct stub_region *sr = r->be;

	pthread_mutex_lock(&lock);
	sr->opened--;
	pthread_mutex_unlock(&lock);
	r->be = NULL;
	return 0;
}

static int stub_remove(struct ckpt_client *c, const char *name)
{
	struct stub_store *s = c->be;
	struct stub_region **pp;
	int rc = -ENOENT;

	pthread_mutex_lock(&lock);
	for (pp = &s->regions; *pp != NULL && !s->down; pp = &(*pp)->next) {
		struct stub_region *sr = *pp;

		if (strcmp(sr->geo.name, name) != 0)
			continue;
		rc = -EBUSY;
		if (sr->opened == 0) {
			*pp = sr->next;
			free(sr->bytes);
			free(sr);
			rc = 0;
		}
		break;
	}
	if (s->down)
		rc = -ECONNRESET;
	pthread_mutex_unlock(&lock);
	return rc;
}

static int stub_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
{
	struct stub_store *s = c->be;
	int n = 0;

	pthread_mutex_lock(&lock);
	for (struct stub_region *sr = s->regions; sr != NULL; sr = sr->next, n++)
		if ((unsigned int)n < max)
			region_info(sr, &out[n]);
	if (s->down)
		n = -ECONNRESET;
	pthread_mutex_unlock(&lock);
	return n;
}

static int stub_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	struct stub_store *s = c->be;
	struct stub_region *sr;
	int rc = 0;

	pthread_mutex_lock(&lock);
	sr = region_find(s, name);
	if (s->down)
		rc = -ECONNRESET;
	else if (s->stat_fails)
		rc = -ETIMEDOUT;
	else if (sr == NULL)
		rc = -ENOENT;
	else
		region_info(sr, out);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* The epoch as a store keeps it: a compare-and-swap from @p seen (no binding here). */
static int stub_epoch_take(struct ckpt_region *r, uint64_t seen, uint64_t *epoch)
{
	struct stub_store *s = r->cl->be;
	struct stub_region *sr = r->be;
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (s->down)
		rc = -ECONNRESET;
	else if (sr->geo.epoch != seen)
		rc = -ESTALE;
	else
		*epoch = ++sr->geo.epoch;
	pthread_mutex_unlock(&lock);
	return rc;
}

static int stub_lease(struct ckpt_region *r, unsigned int ttl_ms)
{
	struct stub_store *s = r->cl->be;
	struct stub_region *sr = r->be;
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (s->down)
		rc = -ECONNRESET;
	else
		sr->geo.lease_ns = pmu_now_ns() + (uint64_t)ttl_ms * 1000000u;
	pthread_mutex_unlock(&lock);
	return rc;
}

static int stub_barrier(struct ckpt_region *r, uint64_t seq)
{
	struct stub_store *s = r->cl->be;
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (s->down)
		rc = -ECONNRESET;
	else
		r->durable = seq;
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Copy between a region and a buffer: @p to_region says which way. */
static int stub_copy(struct ckpt_region *r, uint64_t off, void *buf, size_t len, bool to_region)
{
	struct stub_store *s = r->cl->be;
	struct stub_region *sr = r->be;
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (s->down)
		rc = -ECONNRESET;
	else if (off > sr->geo.size || len > sr->geo.size - off)
		rc = -EINVAL;
	else if (to_region)
		memcpy(sr->bytes + off, buf, len);
	else
		memcpy(buf, sr->bytes + off, len);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int stub_write(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	return stub_copy(r, off, (void *)(uintptr_t)buf, len, true);
}

static int stub_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len)
{
	return stub_copy(r, off, buf, len, false);
}

static const struct ckpt_byte_ops stub_ops = {
	.target =
		{
			.scheme = "stub",
			.connect = stub_connect,
			.disconnect = stub_disconnect,
			.create = stub_create,
			.open = stub_open,
			.close = stub_close,
			.remove = stub_remove,
			.list = stub_list,
			.stat = stub_stat,
			.lease = stub_lease,
			.barrier = stub_barrier,
			.epoch_take = stub_epoch_take,
		},
	.write = stub_write,
	.read = stub_read,
};

void stub_backend_register(void)
{
	ckpt_test_scheme("stub:", &stub_ops);
}

void stub_backend_reset(void)
{
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nstores; i++) {
		while (stores[i].regions != NULL) {
			struct stub_region *sr = stores[i].regions;

			stores[i].regions = sr->next;
			free(sr->bytes);
			free(sr);
		}
	}
	memset(stores, 0, sizeof(stores));
	nstores = 0;
	pthread_mutex_unlock(&lock);
}

void stub_store_down(const char *store, bool down)
{
	struct stub_store *s;

	pthread_mutex_lock(&lock);
	s = store_find(store);
	if (s == NULL && nstores < STORES && strlen(store) < sizeof(s->name)) {
		s = &stores[nstores++];
		strcpy(s->name, store);
	}
	if (s != NULL)
		s->down = down;
	pthread_mutex_unlock(&lock);
}

int stub_store_wipe(const char *store)
{
	struct stub_store *s;
	int rc = 0;

	pthread_mutex_lock(&lock);
	s = store_find(store);
	for (struct stub_region *sr = s ? s->regions : NULL; sr != NULL; sr = sr->next)
		if (sr->opened)
			rc = -EBUSY;
	while (rc == 0 && s != NULL && s->regions != NULL) {
		struct stub_region *sr = s->regions;

		s->regions = sr->next;
		free(sr->bytes);
		free(sr);
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int stub_region_bytes(const char *store, const char *region, uint8_t **bytes, uint64_t *len)
{
	struct stub_store *s;
	struct stub_region *sr = NULL;

	pthread_mutex_lock(&lock);
	s = store_find(store);
	if (s != NULL)
		sr = region_find(s, region);
	if (sr != NULL) {
		*bytes = sr->bytes;
		*len = sr->geo.size;
	}
	pthread_mutex_unlock(&lock);
	return sr != NULL ? 0 : -ENOENT;
}

void stub_store_stat_fails(const char *store, bool fails)
{
	struct stub_store *s;

	pthread_mutex_lock(&lock);
	s = store_find(store);
	if (s != NULL)
		s->stat_fails = fails;
	pthread_mutex_unlock(&lock);
}

int stub_region_set_epoch(const char *store, const char *region, uint64_t epoch)
{
	struct stub_store *s;
	struct stub_region *sr = NULL;

	pthread_mutex_lock(&lock);
	s = store_find(store);
	if (s != NULL)
		sr = region_find(s, region);
	if (sr != NULL)
		sr->geo.epoch = epoch;
	pthread_mutex_unlock(&lock);
	return sr != NULL ? 0 : -ENOENT;
}
