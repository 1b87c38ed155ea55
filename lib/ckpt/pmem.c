/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The embedded backend (pmem:/path): this process maps the store itself. Writes are
 * non-temporal copies (or memcpy where the file is not pmem) and a barrier drains them, so
 * a batch of slices pays one drain. The file outlives the process, which is what a restart
 * needs. File permissions decide who maps it at all; within it, a client sees and touches
 * only its tenant's namespace, as through a server: another tenant's region is as missing
 * (-ENOENT) as one that does not exist. (Whether another process has a region open cannot
 * be known here: -EBUSY covers this client's own handles only.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_internal.h"

#define LOG_COMPONENT "ckpt.pmem"

struct pmem_region {
	uint8_t *base;
	uint64_t lo, hi; /* bytes written since the last barrier */
};

static struct pmu_store *store_of(const struct ckpt_client *c)
{
	return c->be;
}

static int pmem_connect(struct ckpt_client *c, const char *path)
{
	struct pmu_store *s;

	s = pmu_store_open(path, c->opts.store_size, c->opts.create_store ? PMU_CREATE : 0);
	if (s == NULL) {
		int err = errno;

		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: cannot open the store: %s", path,
			 strerror(err));
		return -err;
	}
	c->be = s;
	return 0;
}

static void pmem_disconnect(struct ckpt_client *c)
{
	struct pmu_store *s = c->be;

	pmu_store_close(&s);
	c->be = NULL;
}

static bool mine(const struct ckpt_client *c, const struct pmu_region_info *g)
{
	return strncmp(g->owner, c->opts.tenant, PMU_NAME_MAX) == 0;
}

/* Look a region up in this tenant's namespace. */
static int lookup_mine(struct ckpt_client *c, const char *name, struct pmu_region_info *g)
{
	return pmu_region_lookup(store_of(c), c->opts.tenant, name, g);
}

static int attach(struct ckpt_client *c, struct ckpt_region *r, const struct pmu_region_info *g)
{
	struct pmem_region *pr = calloc(1, sizeof(*pr));

	if (pr == NULL)
		return -ENOMEM;
	pr->base = pmu_region_base(store_of(c), g);
	pr->lo = UINT64_MAX;
	r->geo = *g;
	r->is_pmem = pmu_store_is_pmem(store_of(c));
	r->be = pr;
	return 0;
}

static int pmem_create(struct ckpt_client *c, const struct pmu_region_params *p,
		       struct ckpt_region *r)
{
	struct pmu_region_info g;
	int rc;

	if (p->owner != NULL && strncmp(p->owner, c->opts.tenant, PMU_NAME_MAX) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "create region %s: tenant %s cannot create for owner %s", p->name,
			 c->opts.tenant, p->owner);
		return -EACCES;
	}
	rc = pmu_region_create(store_of(c), p, &g);
	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "create region %s: %s", p->name,
			 strerror(-rc));
		return rc;
	}
	return attach(c, r, &g);
}

static int pmem_open(struct ckpt_client *c, const char *name, struct ckpt_region *r)
{
	struct pmu_region_info g;
	int rc = lookup_mine(c, name, &g);

	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "open region %s: %s", name, strerror(-rc));
		return rc;
	}
	return attach(c, r, &g);
}

static int pmem_close(struct ckpt_region *r)
{
	free(r->be);
	r->be = NULL;
	return 0;
}

static int pmem_remove(struct ckpt_client *c, const char *name)
{
	return pmu_region_delete(store_of(c), c->opts.tenant, name);
}

static void describe(struct ckpt_client *c, const struct pmu_region_info *g,
		     struct ckpt_region_info *out)
{
	const uint8_t *base = pmu_region_base(store_of(c), g);

	memset(out, 0, sizeof(*out));
	out->r = *g;
	out->is_pmem = pmu_store_is_pmem(store_of(c));
	out->lease_alive = g->lease_ns > pmu_now_ns();
	out->ring_head =
		__atomic_load_n((const uint64_t *)(base + PMU_REGION_HEAD_OFF), __ATOMIC_ACQUIRE);
	out->ring_tail =
		__atomic_load_n((const uint64_t *)(base + PMU_REGION_TAIL_OFF), __ATOMIC_ACQUIRE);
}

static int pmem_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
{
	struct pmu_region_info all[PMU_MAX_REGIONS];
	int n = pmu_region_list(store_of(c), all, PMU_MAX_REGIONS), k = 0;

	for (int i = 0; i < n; i++) {
		if (!mine(c, &all[i]))
			continue;
		if ((unsigned int)k < max)
			describe(c, &all[i], &out[k]);
		k++;
	}
	return k;
}

static int pmem_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	struct pmu_region_info g;
	int rc = lookup_mine(c, name, &g);

	if (rc == 0)
		describe(c, &g, out);
	return rc;
}

static int pmem_lease(struct ckpt_region *r, unsigned int ttl_ms)
{
	return pmu_region_lease(store_of(r->cl), r->geo.owner, r->geo.name,
				pmu_now_ns() + (uint64_t)ttl_ms * 1000000ull);
}

static int pmem_write(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	struct pmem_region *pr = r->be;

	if (off > r->geo.size || len > r->geo.size - off)
		return -EINVAL;
	pmu_write(store_of(r->cl), pr->base + off, buf, len);
	if (off < pr->lo)
		pr->lo = off;
	if (off + len > pr->hi)
		pr->hi = off + len;
	return 0;
}

static int pmem_barrier(struct ckpt_region *r, uint64_t seq)
{
	struct pmem_region *pr = r->be;

	if (pr->hi > pr->lo)
		pmu_drain_range(store_of(r->cl), pr->base + pr->lo, pr->hi - pr->lo);
	pr->lo = UINT64_MAX;
	pr->hi = 0;
	r->durable = seq;
	return 0;
}

static int pmem_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len)
{
	struct pmem_region *pr = r->be;

	if (off > r->geo.size || len > r->geo.size - off)
		return -EINVAL;
	memcpy(buf, pr->base + off, len);
	return 0;
}

static const void *pmem_map(struct ckpt_region *r, uint64_t off, size_t len)
{
	struct pmem_region *pr = r->be;

	if (off > r->geo.size || len > r->geo.size - off)
		return NULL;
	return pr->base + off;
}

const struct ckpt_byte_ops ckpt_pmem_ops = {
	.target =
		{
			.scheme = "pmem",
			.connect = pmem_connect,
			.disconnect = pmem_disconnect,
			.create = pmem_create,
			.open = pmem_open,
			.close = pmem_close,
			.remove = pmem_remove,
			.list = pmem_list,
			.stat = pmem_stat,
			.lease = pmem_lease,
			.barrier = pmem_barrier,
			.poll = NULL,
		},
	.applies_journal = false,
	.write = pmem_write,
	.read = pmem_read,
	.map = pmem_map,
};
