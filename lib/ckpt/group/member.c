/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The members of a group: which ones take part, their regions, and where their rings
 * stand.
 *
 * A group region R is an append region R on every member, sized for its share of the
 * data, with the group descriptor (segment.h) in its header: the group id, the member's
 * index and the geometry the users asked for. Creating one makes it on every member that
 * answers; opening one takes the group id most holders agree on, and a member holding
 * another is foreign. Delete, stat, list and lease act on the member regions too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "group_internal.h"

void group_member_down(struct group *g, unsigned int i, int err)
{
	if (g->mc[i] == NULL)
		return;
	ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
		 "member %u (%s) lost: %s; the group goes on without it", i, g->member[i],
		 strerror(-err));
	g->err[i] = err;
}

/* Bytes of each member's region: three times its share of every pair's record, and more. */
static uint64_t member_size(const struct pmu_region_info *geo, unsigned int k)
{
	uint64_t data =
		geo->mode == PMU_MODE_OVERWRITE ? geo->nslots / 2 * geo->slot_size : geo->ring_size;
	uint64_t share = (data + k - 1) / k;
	uint64_t ring = 3 * share + share / 8 + (4u << 20);

	return (PMU_REGION_HDR + ring + PMU_ALIGN - 1) & ~(uint64_t)(PMU_ALIGN - 1);
}

int group_ring_post_at(struct gregion *gr, unsigned int i, uint64_t pos, const void *buf,
		       size_t len)
{
	return ckpt_region_post(gr->mr[i],
				ckpt_region_geometry(gr->mr[i])->ring_off + pos % gr->ring_size,
				buf, len);
}

int group_ring_read_at(struct gregion *gr, unsigned int i, uint64_t off, void *buf, size_t len)
{
	return ckpt_region_read(gr->mr[i], ckpt_region_geometry(gr->mr[i])->ring_off + off, buf,
				len);
}

struct pmu_region_params group_member_params(const struct pmu_region_info *geo, unsigned int k)
{
	return (struct pmu_region_params){
		.name = geo->name,
		.owner = geo->owner,
		.mode = PMU_MODE_APPEND,
		.size = member_size(geo, k),
	};
}

int group_member_create(struct ckpt_client *mc, const struct pmu_region_params *mp,
			const struct ckpt_gdesc *desc, unsigned int i, uint64_t ring_size,
			struct ckpt_region **out)
{
	struct ckpt_gdesc d = *desc;
	uint8_t buf[CKPT_GDESC_LEN];
	struct ckpt_region *mr;
	int rc;

	rc = ckpt_region_create(mc, mp, &mr);
	if (rc)
		return rc;
	d.member = (uint8_t)i;
	ckpt_gdesc_encode(&d, buf);
	rc = ckpt_region_post(mr, CKPT_GDESC_OFF, buf, sizeof(buf));
	if (rc == 0)
		rc = ckpt_sync(mr);
	if (rc == 0 && ring_size != 0 && ckpt_region_geometry(mr)->ring_size != ring_size)
		rc = -EINVAL;
	if (rc) {
		ckpt_region_close(&mr);
		ckpt_region_delete(mc, mp->name);
		return rc;
	}
	*out = mr;
	return 0;
}

int group_member_open(struct ckpt_client *mc, const char *name, struct ckpt_region **mr,
		      struct ckpt_gdesc *d, bool *is_pmem)
{
	struct ckpt_region_info info;
	uint8_t buf[CKPT_GDESC_LEN];
	int rc;

	/* Asked first so that a replaced member's missing region is no error in its log. */
	rc = ckpt_region_stat(mc, name, &info);
	if (rc)
		return rc;
	if (info.r.mode != PMU_MODE_APPEND)
		return -EINVAL;
	rc = ckpt_region_open(mc, name, mr);
	if (rc)
		return rc;
	rc = ckpt_region_read(*mr, CKPT_GDESC_OFF, buf, sizeof(buf));
	if (rc == 0)
		rc = ckpt_gdesc_decode(buf, d);
	if (rc == -ENOENT)
		rc = -EINVAL; /* a region of that name, never a group's */
	if (rc)
		ckpt_region_close(mr);
	else if (is_pmem != NULL)
		*is_pmem = info.is_pmem;
	return rc;
}

bool group_member_abandoned(struct ckpt_client *mc, const char *name)
{
	static const uint8_t blank[CKPT_GDESC_LEN];
	uint8_t buf[CKPT_GDESC_LEN];
	struct ckpt_region *mr;
	uint64_t head, tail;
	bool empty;

	if (ckpt_region_open(mc, name, &mr) != 0)
		return false;
	empty = ckpt_region_geometry(mr)->mode == PMU_MODE_APPEND &&
		ckpt_region_read(mr, CKPT_GDESC_OFF, buf, sizeof(buf)) == 0 &&
		memcmp(buf, blank, sizeof(buf)) == 0 && ckpt_ring_words(mr, &head, &tail) == 0 &&
		head == tail;
	ckpt_region_close(&mr);
	return empty && ckpt_region_delete(mc, name) == 0;
}

static int virtual_geometry(const struct ckpt_gdesc *d, const char *name, const char *owner,
			    struct pmu_region_info *out)
{
	struct pmu_region_params p = {
		.name = name,
		.owner = owner,
		.mode = (enum pmu_mode)d->mode,
		.size = d->size,
		.slot_size = d->slot_size,
		.ring_size = d->ring_size,
	};

	return pmu_region_layout(&p, out);
}

uint64_t group_ring_next(const struct gregion *gr)
{
	uint64_t next, tail;

	for (unsigned int i = 0; i < gr->g->n; i++)
		if (usable(gr, i) && !member_failed(gr->g, i)) {
			ckpt_ring_position(gr->mr[i], &next, &tail);
			return next;
		}
	return 0;
}

uint64_t group_ring_tail(const struct gregion *gr)
{
	uint64_t t = 0, next, tail;

	for (unsigned int i = 0; i < gr->g->n; i++) {
		if (!usable(gr, i) || member_failed(gr->g, i))
			continue;
		ckpt_ring_position(gr->mr[i], &next, &tail);
		if (tail > t)
			t = tail;
	}
	return t;
}

void group_ring_align(struct gregion *gr)
{
	uint64_t at = 0, next, tail;

	for (unsigned int i = 0; i < gr->g->n; i++) {
		if (!usable(gr, i))
			continue;
		ckpt_ring_position(gr->mr[i], &next, &tail);
		if (next > at)
			at = next;
	}
	for (unsigned int i = 0; i < gr->g->n; i++)
		if (usable(gr, i))
			ckpt_ring_seek(gr->mr[i], at);
}

int group_region_create(struct gregion *gr, const struct pmu_region_params *p,
			struct pmu_region_info *geo)
{
	struct group *g = gr->g;
	struct pmu_region_params mp;
	unsigned int made = 0;
	int rc;

	rc = pmu_region_layout(p, geo);
	if (rc)
		return rc;
	gr->desc = (struct ckpt_gdesc){
		.code = (uint8_t)g->ec.code,
		.k = (uint8_t)g->ec.k,
		.m = (uint8_t)g->ec.m,
		.nmembers = (uint8_t)g->n,
		.slot_size = geo->mode == PMU_MODE_OVERWRITE ? geo->slot_size : 0,
		.nslots = geo->mode == PMU_MODE_OVERWRITE ? geo->nslots : 0,
		.ring_size = geo->ring_size,
		.size = geo->size,
		.mode = geo->mode,
	};
	while (gr->desc.group_id == 0)
		if (getrandom(&gr->desc.group_id, sizeof(gr->desc.group_id), 0) !=
		    sizeof(gr->desc.group_id))
			return -errno;
	mp = group_member_params(geo, g->ec.k);
	for (unsigned int i = 0; i < g->n; i++) {
		gr->st[i] = CKPT_MEMBER_DOWN;
		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		rc = group_member_create(g->mc[i], &mp, &gr->desc, i, 0, &gr->mr[i]);
		if (rc == -EEXIST || rc == -EINVAL || rc == -EACCES)
			goto err_delete;
		if (rc) {
			group_member_down(g, i, rc);
			continue;
		}
		gr->st[i] = CKPT_MEMBER_OK;
		gr->ring_size = ckpt_region_geometry(gr->mr[i])->ring_size;
		made++;
	}
	if (made < need(g)) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "region %s: created on %u members, %u needed",
			 p->name, made, need(g));
		rc = -EIO;
		goto err_delete;
	}
	if (made < g->n)
		ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
			 "region %s: created on %u of %u members; it is degraded until rebuilt",
			 p->name, made, g->n);
	return 0;

err_delete:
	group_region_delete(gr, p->name);
	return rc;
}

void group_region_delete(struct gregion *gr, const char *name)
{
	for (unsigned int i = 0; i < gr->g->n; i++)
		if (gr->mr[i] != NULL) {
			ckpt_region_close(&gr->mr[i]);
			ckpt_region_delete(gr->g->mc[i], name);
		}
}

int group_region_open(struct gregion *gr, const char *name, struct pmu_region_info *geo,
		      bool *is_pmem)
{
	struct group *g = gr->g;
	struct ckpt_gdesc d[MAXM];
	bool pmem[MAXM];
	int rcs[MAXM];
	unsigned int best = MAXM, votes = 0, have = 0;
	int rc;

	for (unsigned int i = 0; i < g->n; i++) {
		rcs[i] = g->mc[i] == NULL || member_failed(g, i)
				 ? -ENOTCONN
				 : group_member_open(g->mc[i], name, &gr->mr[i], &d[i], &pmem[i]);
		/* Not ckpt_err_transient(): only a lost connection marks a member down here; a
		 * region it lacks (ENOENT) or a full queue is the region's business, not the
		 * member's. */
		if (rcs[i] == -ECONNRESET || rcs[i] == -ETIMEDOUT || rcs[i] == -EIO)
			group_member_down(g, i, rcs[i]);
	}
	/* The group id most members agree on is the region's; the rest are foreign. */
	for (unsigned int i = 0; i < g->n; i++) {
		unsigned int v = 0;

		if (rcs[i] != 0)
			continue;
		for (unsigned int j = 0; j < g->n; j++)
			v += rcs[j] == 0 && d[j].group_id == d[i].group_id;
		if (v > votes) {
			votes = v;
			best = i;
		}
	}
	for (unsigned int i = 0; i < g->n; i++) {
		if (rcs[i] == 0 && d[i].group_id == d[best].group_id && d[i].member == i) {
			gr->st[i] = CKPT_MEMBER_OK;
			have++;
			continue;
		}
		if (gr->mr[i] != NULL)
			ckpt_region_close(&gr->mr[i]);
		if (rcs[i] == 0 || rcs[i] == -EINVAL) {
			gr->st[i] = CKPT_MEMBER_FOREIGN;
			ckpt_log(
				CKPT_LOG_WARNING, LOG_COMPONENT,
				"region %s: member %u (%s) holds a region of that name that is "
				"not this group's (another group, or the members listed in another "
				"order)",
				name, i, g->member[i]);
		} else {
			gr->st[i] = rcs[i] == -ENOENT ? CKPT_MEMBER_EMPTY : CKPT_MEMBER_DOWN;
		}
	}
	if (have == 0) {
		rc = -ENOENT;
		for (unsigned int i = 0; i < g->n; i++)
			if (gr->st[i] == CKPT_MEMBER_DOWN || gr->st[i] == CKPT_MEMBER_FOREIGN)
				rc = -EIO;
		if (rc == -EIO)
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: no member that answers holds it", name);
		goto err_close;
	}
	gr->desc = d[best];
	if (gr->desc.code != g->ec.code || gr->desc.k != g->ec.k || gr->desc.m != g->ec.m) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s was formed as %s(%u,%u), the target says %s(%u,%u)", name,
			 ckpt_ec_name(gr->desc.code), gr->desc.k, gr->desc.m,
			 ckpt_ec_name(g->ec.code), g->ec.k, g->ec.m);
		rc = -EINVAL;
		goto err_close;
	}
	if (have < need(g)) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s: %u members hold it, %s(%u,%u) needs %u", name, have,
			 ckpt_ec_name(g->ec.code), g->ec.k, g->ec.m, need(g));
		rc = -EIO;
		goto err_close;
	}
	rc = virtual_geometry(&gr->desc, name, ckpt_region_geometry(gr->mr[best])->owner, geo);
	if (rc)
		goto err_close;
	gr->ring_size = ckpt_region_geometry(gr->mr[best])->ring_size;
	for (unsigned int i = 0; i < g->n; i++)
		if (gr->mr[i] != NULL &&
		    ckpt_region_geometry(gr->mr[i])->ring_size != gr->ring_size) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: member %u's ring differs from the others'", name, i);
			rc = -EINVAL;
			goto err_close;
		}
	*is_pmem = pmem[best];
	return 0;

err_close:
	group_region_close(gr);
	return rc;
}

void group_region_close(struct gregion *gr)
{
	for (unsigned int i = 0; i < MAXM; i++)
		if (gr->mr[i] != NULL)
			ckpt_region_close(&gr->mr[i]);
}

int group_remove(struct ckpt_client *c, const char *name)
{
	struct group *g = c->be;
	int rc = -ENOENT;

	for (unsigned int i = 0; i < g->n; i++) {
		int one;

		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		one = ckpt_region_delete(g->mc[i], name);
		if (one == 0 || (one != -ENOENT && rc == -ENOENT))
			rc = one;
	}
	return rc;
}

/* A group region as a single server would describe it, from the first member holding it. */
static int group_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	struct group *g = c->be;
	int rc = -ENOENT;

	for (unsigned int i = 0; i < g->n; i++) {
		struct ckpt_region *mr = NULL;
		struct ckpt_region_info mi;
		struct ckpt_gdesc d;
		uint64_t head, tail;

		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		rc = group_member_open(g->mc[i], name, &mr, &d, NULL);
		if (rc)
			continue;
		rc = ckpt_region_stat(g->mc[i], name, &mi);
		if (rc == 0)
			rc = ckpt_ring_words(mr, &head, &tail);
		ckpt_region_close(&mr);
		if (rc == 0)
			rc = virtual_geometry(&d, name, mi.r.owner, &out->r);
		if (rc)
			continue;
		out->r.index = mi.r.index;
		out->r.created_ns = mi.r.created_ns;
		out->r.lease_ns = mi.r.lease_ns;
		out->is_pmem = mi.is_pmem;
		out->lease_alive = mi.lease_alive;
		out->ring_head = head;
		out->ring_tail = tail;
		return 0;
	}
	return rc;
}

/*
 * group_stat, with the lease as every answering member holding the region sees it: alive
 * when alive on any, and the furthest expiry. A writer renews the lease on the members it
 * reaches; a member that was down meanwhile (and that the writer has not connected again)
 * holds an old expiry, and must not make a live lease look expired.
 */
int group_stat_leases(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	struct group *g = c->be;
	int rc = group_stat(c, name, out);

	for (unsigned int i = 0; i < g->n && rc == 0; i++) {
		struct ckpt_region_info mi;

		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		if (ckpt_region_stat(g->mc[i], name, &mi) != 0 || mi.r.mode != PMU_MODE_APPEND)
			continue;
		out->lease_alive = out->lease_alive || mi.lease_alive;
		if (mi.r.lease_ns > out->r.lease_ns)
			out->r.lease_ns = mi.r.lease_ns;
		/* Likewise the epoch: a member that missed a take must not hide it. */
		if (mi.r.epoch > out->r.epoch)
			out->r.epoch = mi.r.epoch;
	}
	return rc;
}

int group_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
{
	struct group *g = c->be;
	struct ckpt_region_info *ml;
	int n = -EIO, found = 0;

	ml = calloc(PMU_MAX_REGIONS, sizeof(*ml));
	if (ml == NULL)
		return -ENOMEM;
	for (unsigned int i = 0; i < g->n && n < 0; i++)
		if (g->mc[i] != NULL && !member_failed(g, i))
			n = ckpt_region_list(g->mc[i], ml, PMU_MAX_REGIONS);
	for (int i = 0; i < n && i < PMU_MAX_REGIONS; i++) {
		struct ckpt_region_info one;

		if (group_stat(c, ml[i].r.name, &one) != 0)
			continue;
		if ((unsigned int)found < max)
			out[found] = one;
		found++;
	}
	free(ml);
	return n < 0 ? n : found;
}

int group_lease(struct ckpt_region *r, unsigned int ttl_ms)
{
	struct gregion *gr = r->be;
	unsigned int ok = 0;
	int rc = -EIO;

	for (unsigned int i = 0; i < gr->g->n; i++) {
		if (!usable(gr, i))
			continue;
		rc = ckpt_lease_renew(gr->mr[i], ttl_ms);
		if (rc == -EACCES)
			return rc;
		ok += rc == 0;
	}
	return ok >= need(gr->g) ? 0 : rc;
}

static unsigned int majority(const struct group *g)
{
	return g->n / 2 + 1;
}

/* Member @p i answered ESTALE: is its epoch behind @p seen (it missed a take), not past? */
static bool member_behind(struct ckpt_client *mc, const char *name, uint64_t seen)
{
	struct ckpt_region_info mi;

	return ckpt_region_stat(mc, name, &mi) == 0 && mi.r.epoch < seen;
}

/*
 * Member answered ESTALE to a take from @p seen: is its epoch known to be past it (someone
 * else took it)? A member that cannot say (its stat failed: slow or going) is no vote either
 * way, never a reason to give up the take.
 */
static bool member_past(struct ckpt_client *mc, const char *name, uint64_t seen)
{
	struct ckpt_region_info mi;

	return ckpt_region_stat(mc, name, &mi) == 0 && mi.r.epoch > seen;
}

int group_epoch_take(struct ckpt_region *r, uint64_t seen, uint64_t *epoch)
{
	struct gregion *gr = r->be;
	struct group *g = gr->g;
	unsigned int ok = 0;
	int rc = -EIO;

	for (unsigned int i = 0; i < g->n; i++) {
		uint64_t e = 0;
		int one;

		if (!member_ok(gr, i))
			continue;
		one = ckpt_epoch_take(gr->mr[i], seen, &e);
		if (one == -ESTALE && !member_past(g->mc[i], r->geo.name, seen)) {
			ckpt_log(
				CKPT_LOG_WARNING, LOG_COMPONENT,
				"region %s: member %u (%s) holds an epoch behind %llu (it missed a "
				"take) or cannot say: passed over",
				r->geo.name, i, g->member[i], (unsigned long long)seen);
			continue;
		}
		if (one == -ESTALE || one == -EACCES)
			return one;
		if (one == 0 && e == seen + 1)
			ok++;
		else if (one != 0)
			rc = one;
	}
	if (ok < majority(g)) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s: epoch %llu taken on %u of %u members, a majority needs %u",
			 r->geo.name, (unsigned long long)seen + 1, ok, g->n, majority(g));
		return rc;
	}
	*epoch = seen + 1;
	return 0;
}

int group_epoch_bind(struct ckpt_client *c, const char *lease_name, uint64_t epoch)
{
	struct group *g = c->be;
	unsigned int ok = 0;
	int rc = -EIO;

	if (strlen(lease_name) >= PMU_NAME_MAX || lease_name[0] == '\0')
		return -EINVAL;
	for (unsigned int i = 0; i < g->n; i++) {
		int one;

		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		one = ckpt_epoch_bind(g->mc[i], lease_name, epoch);
		if (one == -ESTALE)
			return one;
		/* A member behind (it missed a take) has no such epoch to bind to: passed over. */
		if (one == -EINVAL && member_behind(g->mc[i], lease_name, epoch))
			continue;
		if (one == 0)
			ok++;
		else if (rc == -EIO || one != -ENOENT)
			rc = one;
	}
	return ok < majority(g) ? rc : 0;
}
