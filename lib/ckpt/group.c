/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Redundancy groups: a record-level backend whose members are other targets.
 *
 * Records (slot writes and log appends alike) are batched into segments; a segment is cut
 * into k data chunks and m parity chunks (ec.c), and each chunk goes, behind a subsegment
 * header (segment.h), into the ring of one member's append region of the same name, the
 * parity rotating from segment to segment. Every member's ring advances by the same length
 * per segment, so a segment's ring position is its identity on every member. Overwrite
 * regions keep the newest record per slot pair in memory (the shadow) and where it lies;
 * when the log fills past 5/8, a cleaner logs again the pairs whose newest record lies in
 * the oldest part of the ring and then moves the members' tails past it. A reader replays the live
 * span and keeps the newest generation per pair, which is what a single server's slots would hold.
 * See docs/checkpoint.md, "Redundancy groups".
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ckpt_internal.h"
#include "ec.h"
#include "holdfast/ckpt_group.h"
#include "segment.h"

#define LOG_COMPONENT  "ckpt.group"
#define MAXM	       CKPT_GROUP_MAX_MEMBERS
#define BARRIERS       64
#define CLEAN_PER_POLL 16384u /* shadow pairs looked at per poll while cleaning */
#define MARKS	       64u    /* segment positions remembered as places the tail can move to */
#define REBUILD_READ   (256u << 10)  /* ring bytes read per member per poll: a poll's bound */
#define REBUILD_MIN    (64u << 10)   /* ... down to this while reading takes over REBUILD_NS */
#define REBUILD_NS     5000000ull    /* 5 ms */
#define REJOIN_EVERY   1000000000ull /* ns: a member that is down is tried again this often */

struct rejoin;

struct group {
	struct ckpt_ec ec;
	unsigned int n;
	char *member[MAXM];	      /* member targets */
	struct ckpt_client *mc[MAXM]; /* NULL: did not answer, or failed since */
	int err[MAXM];		      /* why a member is down */
	struct rejoin *rj;	      /* tries members that are down again, on a thread */
};

struct barrier {
	uint64_t seq;
	bool issued;
	uint64_t ticket[MAXM];
};

enum compact {
	COMPACT_IDLE,
	COMPACT_WRITING, /* re-logging the live records of the oldest part of the ring */
	COMPACT_DATA,	 /* waiting for them to be durable */
	COMPACT_TAIL,	 /* waiting for the new tails to be durable */
};

/* The members' rings as read back: one image per member, [tail, head) filled. */
struct images {
	uint64_t ring_size, tail, head;
	/*
	 * The k-th furthest member head: a segment past it reached fewer than k members
	 * durably, so no flush that covers it was ever acknowledged (a writer killed mid-way).
	 */
	uint64_t acked_end;
	/* img[i][0] holds ring offset win_off; win_len bytes (ring_size: the whole ring). */
	uint64_t win_off, win_len;
	uint8_t *img[MAXM];
};

struct gregion {
	struct group *g;
	struct ckpt_gdesc desc;
	struct ckpt_region *mr[MAXM];
	enum ckpt_member_state st[MAXM];
	uint64_t ring_size; /* of each member's ring */

	/* The segment being filled. */
	uint8_t *seg;
	uint32_t seg_len, seg_nrecs, seg_cap;
	uint64_t seg_ticket; /* last user ticket in it */

	/* The segment cut and being posted: subsegment i goes to member pend_to[i]. */
	bool pend;
	uint8_t *sub[MAXM];
	uint32_t sub_len;
	uint32_t pend_todo; /* stripe indexes not yet accepted */
	unsigned int pend_to[MAXM];
	uint64_t pend_ticket;
	uint64_t posted_through; /* every user ticket up to this is posted to the members */
	uint64_t rot;

	struct barrier bq[BARRIERS];
	unsigned int bq_head, bq_n;

	/*
	 * Overwrite regions: the newest encoded record per pair (slot_size bytes each), and
	 * where it lies: 1 + the ring position of its segment, 0 while unknown.
	 */
	uint8_t *shadow;
	uint64_t *where;
	bool shadow_loaded;
	/* Segment positions at least ring/32 apart: where a cleaning pass may move the tail. */
	uint64_t mark[MARKS];
	unsigned int mark_head, mark_n;
	enum compact comp;
	uint64_t clean_from, clean_to, clean_cursor;
	uint64_t comp_ticket[MAXM];
	uint64_t relog_bytes; /* record bytes the cleaner logged again */

	/*
	 * Rebuild of members that were replaced or missed segments: [rb_start, rb_end) is
	 * read a window (rb) at a time once the flush behind rb_ticket made it durable.
	 */
	bool rb_active, rb_wait;
	uint32_t rb_mask; /* members being rebuilt */
	uint64_t rb_repaired;
	uint64_t rb_ticket[MAXM];
	struct images rb;
	uint64_t rb_pos, rb_end, rb_start;
	uint64_t rb_read; /* bytes read per member per poll now */
	unsigned int rb_decile;

	uint64_t enc_segments, enc_bytes, enc_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *code_name(enum ckpt_ec_code c)
{
	switch (c) {
	case CKPT_EC_XOR:
		return "xor";
	case CKPT_EC_RS:
		return "rs";
	case CKPT_EC_MIRROR:
		return "mirror";
	}
	return "?";
}

/* Fewest members that must hold a segment for it to be readable. */
static unsigned int need(const struct group *g)
{
	return g->ec.k;
}

static bool usable(const struct gregion *gr, unsigned int i)
{
	return gr->mr[i] != NULL && gr->g->mc[i] != NULL &&
	       (gr->st[i] == CKPT_MEMBER_OK || gr->st[i] == CKPT_MEMBER_REBUILDING);
}

static unsigned int live(const struct gregion *gr)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < gr->g->n; i++)
		n += usable(gr, i);
	return n;
}

/* A member failed: it takes no more writes from this client until it reconnects. */
static void member_down(struct group *g, unsigned int i, int err)
{
	if (g->mc[i] == NULL)
		return;
	ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
		 "member %u (%s) lost: %s; the group goes on without it", i, g->member[i],
		 strerror(-err));
	g->err[i] = err;
}

static bool member_failed(const struct group *g, unsigned int i)
{
	return g->err[i] != 0;
}

/* ---- target syntax and connection ---------------------------------------------------- */

static int parse_code(const char *s, const char **rest, enum ckpt_ec_code *code, unsigned int *k,
		      unsigned int *m)
{
	unsigned int a = 0, b = 0;
	int used = 0;

	if (sscanf(s, "rs(%u,%u)%n", &a, &b, &used) == 2 && used > 0) {
		*code = CKPT_EC_RS;
	} else if (sscanf(s, "xor(%u)%n", &a, &used) == 1 && used > 0) {
		*code = CKPT_EC_XOR;
		b = 1;
	} else if (strncmp(s, "mirror", 6) == 0) {
		*code = CKPT_EC_MIRROR;
		used = 6;
		a = 1;
	} else {
		return -EINVAL;
	}
	if (s[used] != '=')
		return -EINVAL;
	*rest = s + used + 1;
	*k = a;
	*m = b;
	return 0;
}

static int rejoin_init(struct group *g, const struct ckpt_client_opts *o);
static void rejoin_fini(struct group *g);

static void group_free(struct group *g)
{
	rejoin_fini(g);
	for (unsigned int i = 0; i < g->n; i++) {
		ckpt_disconnect(&g->mc[i]);
		free(g->member[i]);
	}
	ckpt_ec_fini(&g->ec);
	free(g);
}

static int group_connect(struct ckpt_client *c, const char *where)
{
	struct ckpt_client_opts o = c->opts;
	enum ckpt_ec_code code;
	unsigned int k, m, up = 0;
	const char *list;
	struct group *g;
	char *dup, *save = NULL;
	int rc;

	if (parse_code(where, &list, &code, &k, &m) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: a group is rs(K,M)=, xor(K)= or mirror= then its members, "
			 "comma-separated",
			 c->target);
		return -EINVAL;
	}
	g = calloc(1, sizeof(*g));
	dup = strdup(list);
	if (g == NULL || dup == NULL) {
		free(g);
		free(dup);
		return -ENOMEM;
	}
	for (char *t = strtok_r(dup, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (g->n == MAXM || strncmp(t, "group:", 6) == 0) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "%s: more than %u members, or a group inside a group", c->target,
				 MAXM);
			rc = -EINVAL;
			goto err_free;
		}
		g->member[g->n] = strdup(t);
		if (g->member[g->n++] == NULL) {
			rc = -ENOMEM;
			goto err_free;
		}
	}
	if (code == CKPT_EC_MIRROR)
		m = g->n - 1;
	rc = g->n == k + m ? ckpt_ec_init(&g->ec, code, k, m) : -EINVAL;
	if (rc != 0 || g->n < 2) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: %s needs %u members (at least 2, at most %u), %u given", c->target,
			 code_name(code), k + m, MAXM, g->n);
		rc = rc ? rc : -EINVAL;
		goto err_free;
	}
	o.secret = c->opts.secret_len ? c->secret : NULL;
	for (unsigned int i = 0; i < g->n; i++) {
		g->mc[i] = ckpt_connect(g->member[i], &o);
		if (g->mc[i] == NULL) {
			g->err[i] = -errno;
			ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
				 "member %u (%s) does not answer: %s", i, g->member[i],
				 strerror(errno));
			continue;
		}
		up++;
	}
	if (up < need(g)) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: %u of %u members answer, %s needs at least %u", c->target, up, g->n,
			 code_name(code), need(g));
		rc = -EIO;
		goto err_free;
	}
	rc = rejoin_init(g, &o);
	if (rc)
		goto err_free;
	free(dup);
	c->be = g;
	return 0;

err_free:
	free(dup);
	group_free(g);
	return rc;
}

static void group_disconnect(struct ckpt_client *c)
{
	group_free(c->be);
	c->be = NULL;
}

/* ---- member regions -------------------------------------------------------------------- */

/* Bytes of each member's region: three times its share of every pair's record, and more. */
static uint64_t member_size(const struct pmu_region_info *geo, unsigned int k)
{
	uint64_t data =
		geo->mode == PMU_MODE_OVERWRITE ? geo->nslots / 2 * geo->slot_size : geo->ring_size;
	uint64_t share = (data + k - 1) / k;
	uint64_t ring = 3 * share + share / 8 + (4u << 20);

	return (PMU_REGION_HDR + ring + PMU_ALIGN - 1) & ~(uint64_t)(PMU_ALIGN - 1);
}

/* Post bytes at ring position @p pos of member @p i's region (where a segment lies). */
static int ring_post_at(struct gregion *gr, unsigned int i, uint64_t pos, const void *buf,
			size_t len)
{
	return ckpt_region_post(gr->mr[i],
				ckpt_region_geometry(gr->mr[i])->ring_off + pos % gr->ring_size,
				buf, len);
}

/* Read bytes at offset @p off of member @p i's ring. */
static int ring_read_at(struct gregion *gr, unsigned int i, uint64_t off, void *buf, size_t len)
{
	return ckpt_region_read(gr->mr[i], ckpt_region_geometry(gr->mr[i])->ring_off + off, buf,
				len);
}

/* The parameters of every member's region of a group region of geometry @p geo. */
static struct pmu_region_params member_params(const struct pmu_region_info *geo, unsigned int k)
{
	return (struct pmu_region_params){
		.name = geo->name,
		.owner = geo->owner,
		.mode = PMU_MODE_APPEND,
		.size = member_size(geo, k),
	};
}

/*
 * Create a group region's member region on @p mc with the descriptor of member @p i; with
 * @p ring_size, its ring must have that size. A region that did not get its descriptor is
 * deleted again (it would read as another group's).
 */
static int member_create(struct ckpt_client *mc, const struct pmu_region_params *mp,
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

static void gregion_free(struct gregion *gr)
{
	for (unsigned int i = 0; i < MAXM; i++) {
		if (gr->mr[i] != NULL)
			ckpt_region_close(&gr->mr[i]);
		free(gr->sub[i]);
		free(gr->rb.img[i]);
	}
	free(gr->seg);
	free(gr->shadow);
	free(gr->where);
	free(gr);
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

static int gregion_buffers(struct gregion *gr)
{
	const unsigned int n = gr->g->n;

	gr->seg_cap = gr->g->ec.k * CKPT_SEG_CHUNK_MAX;
	gr->seg = aligned_alloc(CKPT_SEG_ALIGN, gr->seg_cap);
	if (gr->seg == NULL)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		gr->sub[i] = aligned_alloc(CKPT_SEG_ALIGN, CKPT_SEG_HDR_LEN + CKPT_SEG_CHUNK_MAX);
		if (gr->sub[i] == NULL)
			return -ENOMEM;
	}
	if (gr->desc.mode == PMU_MODE_OVERWRITE) {
		gr->shadow = calloc(gr->desc.nslots / 2, gr->desc.slot_size);
		gr->where = calloc(gr->desc.nslots / 2, sizeof(*gr->where));
		if (gr->shadow == NULL || gr->where == NULL)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Every member's ring must stand at the same position for the next segment: a member that
 * missed segments (down for a while) is moved forward; what lies behind is judged by the
 * subsegment headers on reading.
 */
static void align_rings(struct gregion *gr)
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

static int group_create(struct ckpt_client *c, const struct pmu_region_params *p,
			struct ckpt_region *r)
{
	struct group *g = c->be;
	struct pmu_region_params mp;
	struct gregion *gr;
	unsigned int made = 0;
	int rc;

	gr = calloc(1, sizeof(*gr));
	if (gr == NULL)
		return -ENOMEM;
	gr->g = g;
	rc = pmu_region_layout(p, &r->geo);
	if (rc)
		goto err_free;
	gr->desc = (struct ckpt_gdesc){
		.code = (uint8_t)g->ec.code,
		.k = (uint8_t)g->ec.k,
		.m = (uint8_t)g->ec.m,
		.nmembers = (uint8_t)g->n,
		.slot_size = r->geo.mode == PMU_MODE_OVERWRITE ? r->geo.slot_size : 0,
		.nslots = r->geo.mode == PMU_MODE_OVERWRITE ? r->geo.nslots : 0,
		.ring_size = r->geo.ring_size,
		.size = r->geo.size,
		.mode = r->geo.mode,
	};
	while (gr->desc.group_id == 0)
		if (getrandom(&gr->desc.group_id, sizeof(gr->desc.group_id), 0) !=
		    sizeof(gr->desc.group_id)) {
			rc = -errno;
			goto err_free;
		}
	mp = member_params(&r->geo, g->ec.k);
	for (unsigned int i = 0; i < g->n; i++) {
		gr->st[i] = CKPT_MEMBER_DOWN;
		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		rc = member_create(g->mc[i], &mp, &gr->desc, i, 0, &gr->mr[i]);
		if (rc == -EEXIST || rc == -EINVAL || rc == -EACCES)
			goto err_delete;
		if (rc) {
			member_down(g, i, rc);
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
	rc = gregion_buffers(gr);
	if (rc)
		goto err_delete;
	gr->shadow_loaded = true;
	r->be = gr;
	return 0;

err_delete:
	for (unsigned int i = 0; i < g->n; i++)
		if (gr->mr[i] != NULL) {
			ckpt_region_close(&gr->mr[i]);
			ckpt_region_delete(g->mc[i], p->name);
		}
err_free:
	gregion_free(gr);
	return rc;
}

/*
 * Open the member's region and read its descriptor; ENOENT when it has none. @p is_pmem
 * (optional) tells whether the member's store is persistent memory.
 */
static int member_open(struct ckpt_client *mc, const char *name, struct ckpt_region **mr,
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

static int group_open(struct ckpt_client *c, const char *name, struct ckpt_region *r)
{
	struct group *g = c->be;
	struct ckpt_gdesc d[MAXM];
	bool is_pmem[MAXM];
	int rcs[MAXM];
	struct gregion *gr;
	unsigned int best = MAXM, votes = 0, have = 0;
	int rc;

	gr = calloc(1, sizeof(*gr));
	if (gr == NULL)
		return -ENOMEM;
	gr->g = g;
	for (unsigned int i = 0; i < g->n; i++) {
		rcs[i] = g->mc[i] == NULL || member_failed(g, i)
				 ? -ENOTCONN
				 : member_open(g->mc[i], name, &gr->mr[i], &d[i], &is_pmem[i]);
		if (rcs[i] == -ECONNRESET || rcs[i] == -ETIMEDOUT || rcs[i] == -EIO)
			member_down(g, i, rcs[i]);
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
		goto err_free;
	}
	gr->desc = d[best];
	if (gr->desc.code != g->ec.code || gr->desc.k != g->ec.k || gr->desc.m != g->ec.m) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s was formed as %s(%u,%u), the target says %s(%u,%u)", name,
			 code_name(gr->desc.code), gr->desc.k, gr->desc.m, code_name(g->ec.code),
			 g->ec.k, g->ec.m);
		rc = -EINVAL;
		goto err_free;
	}
	if (have < need(g)) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s: %u members hold it, %s(%u,%u) needs %u", name, have,
			 code_name(g->ec.code), g->ec.k, g->ec.m, need(g));
		rc = -EIO;
		goto err_free;
	}
	rc = virtual_geometry(&gr->desc, name, ckpt_region_geometry(gr->mr[best])->owner, &r->geo);
	if (rc)
		goto err_free;
	gr->ring_size = ckpt_region_geometry(gr->mr[best])->ring_size;
	for (unsigned int i = 0; i < g->n; i++)
		if (gr->mr[i] != NULL &&
		    ckpt_region_geometry(gr->mr[i])->ring_size != gr->ring_size) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: member %u's ring differs from the others'", name, i);
			rc = -EINVAL;
			goto err_free;
		}
	rc = gregion_buffers(gr);
	if (rc)
		goto err_free;
	align_rings(gr);
	r->is_pmem = is_pmem[best];
	r->be = gr;
	return 0;

err_free:
	gregion_free(gr);
	return rc;
}

static int group_close(struct ckpt_region *r)
{
	gregion_free(r->be);
	r->be = NULL;
	return 0;
}

static int group_remove(struct ckpt_client *c, const char *name)
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
		rc = member_open(g->mc[i], name, &mr, &d, NULL);
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

static int group_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
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

static int group_lease(struct ckpt_region *r, unsigned int ttl_ms)
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

/* ---- forming and posting segments ------------------------------------------------------ */

static bool member_ok(struct gregion *gr, unsigned int i)
{
	return usable(gr, i) && !member_failed(gr->g, i);
}

/* Hand the cut segment's subsegments to the members that have not taken theirs yet. */
static void post_pending(struct gregion *gr)
{
	for (unsigned int j = 0; j < gr->g->n && gr->pend; j++) {
		unsigned int i = gr->pend_to[j];
		int rc;

		if (!(gr->pend_todo & (1u << j)))
			continue;
		if (!member_ok(gr, i)) {
			gr->pend_todo &= ~(1u << j);
			continue;
		}
		rc = ckpt_ring_put(gr->mr[i], gr->sub[j], gr->sub_len);
		if (rc == -EAGAIN)
			continue;
		if (rc)
			member_down(gr->g, i, rc);
		gr->pend_todo &= ~(1u << j);
	}
	if (gr->pend && gr->pend_todo == 0) {
		gr->pend = false;
		if (gr->pend_ticket > gr->posted_through)
			gr->posted_through = gr->pend_ticket;
	}
}

/* Position of the next segment of sub_len bytes on every member's ring; 0 if they differ. */
static int next_position(struct gregion *gr, uint32_t sub_len, uint64_t *pos)
{
	bool first = true;

	for (unsigned int i = 0; i < gr->g->n; i++) {
		uint64_t at, next, tail;

		if (!member_ok(gr, i))
			continue;
		ckpt_ring_position(gr->mr[i], &next, &tail);
		at = pmu_ring_place(gr->ring_size, next, sub_len);
		if (first) {
			*pos = at;
			first = false;
		} else if (at != *pos) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: member %u's ring stands at %" PRIu64
				 ", the others' at %" PRIu64,
				 ckpt_region_geometry(gr->mr[i])->name, i, at, *pos);
			member_down(gr->g, i, -EIO);
		}
	}
	return first ? -EIO : 0;
}

/*
 * The open segment goes to ring position @p pos: every pair whose newest record is in it
 * now lies there, and the position may become a place for the tail to move to.
 */
static void note_positions(struct gregion *gr, uint64_t pos)
{
	const uint64_t pairs = gr->desc.nslots / 2;
	const uint32_t ss = gr->desc.slot_size;

	for (uint32_t at = 0; at + CKPT_REC_HDR_LEN <= gr->seg_len;) {
		struct ckpt_rec_hdr h, newest;

		ckpt_rec_peek(gr->seg + at, gr->seg_len - at, &h);
		if (h.slot_pair < pairs) {
			ckpt_rec_peek(gr->shadow + (size_t)h.slot_pair * ss, ss, &newest);
			if (newest.generation == h.generation)
				gr->where[h.slot_pair] = pos + 1;
		}
		at += h.len;
	}
	if (gr->mark_n == 0 ||
	    (gr->mark_n < MARKS &&
	     pos >= gr->mark[(gr->mark_head + gr->mark_n - 1) % MARKS] + gr->ring_size / 32))
		gr->mark[(gr->mark_head + gr->mark_n++) % MARKS] = pos;
}

/* Cut the open segment into subsegments (encode parity) and start posting them. */
static int cut(struct gregion *gr)
{
	const struct ckpt_ec *ec = &gr->g->ec;
	const unsigned int n = gr->g->n;
	const uint32_t c = ckpt_seg_chunk_len(gr->seg_len, ec->k);
	uint8_t *data[MAXM], *parity[MAXM];
	struct ckpt_subseg s;
	uint64_t pos = 0, t0;
	int rc;

	if (live(gr) < need(gr->g))
		return -EIO;
	rc = next_position(gr, CKPT_SEG_HDR_LEN + c, &pos);
	if (rc)
		return rc;
	memset(gr->seg + gr->seg_len, 0, (size_t)ec->k * c - gr->seg_len);
	for (unsigned int j = 0; j < n; j++) {
		if (j < ec->k) {
			memcpy(gr->sub[j] + CKPT_SEG_HDR_LEN, gr->seg + (size_t)j * c, c);
			data[j] = gr->sub[j] + CKPT_SEG_HDR_LEN;
		} else {
			parity[j - ec->k] = gr->sub[j] + CKPT_SEG_HDR_LEN;
		}
	}
	t0 = now_ns();
	ckpt_ec_encode(ec, c, data, parity);
	gr->enc_ns += now_ns() - t0;
	gr->enc_segments++;
	gr->enc_bytes += gr->seg_len;
	if (gr->where != NULL)
		note_positions(gr, pos);
	s = (struct ckpt_subseg){
		.code = (uint8_t)ec->code,
		.k = (uint8_t)ec->k,
		.m = (uint8_t)ec->m,
		.chunk_len = c,
		.group_id = gr->desc.group_id,
		.pos = pos,
		.data_len = gr->seg_len,
		.nrecs = gr->seg_nrecs,
	};
	for (unsigned int j = 0; j < n; j++) {
		s.index = (uint8_t)j;
		s.chunk_crc = ckpt_crc32c(gr->sub[j] + CKPT_SEG_HDR_LEN, c);
		ckpt_subseg_encode(&s, gr->sub[j]);
		/* Parity lands on a different member each segment, as RAID 5 does. */
		gr->pend_to[j] = (unsigned int)((j + gr->rot) % n);
	}
	gr->rot++;
	gr->sub_len = CKPT_SEG_HDR_LEN + c;
	gr->pend_todo = (1u << n) - 1;
	gr->pend = true;
	gr->pend_ticket = gr->seg_ticket;
	gr->seg_len = 0;
	gr->seg_nrecs = 0;
	post_pending(gr);
	return 0;
}

/* Append an encoded record to the open segment, cutting a full one first. */
static int seg_add(struct gregion *gr, const uint8_t *rec, uint32_t len, uint64_t ticket)
{
	int rc;

	if (gr->seg_len + len > gr->seg_cap) {
		if (gr->pend)
			post_pending(gr);
		if (gr->pend)
			return -EAGAIN;
		rc = cut(gr);
		if (rc)
			return rc;
	}
	memcpy(gr->seg + gr->seg_len, rec, len);
	gr->seg_len += len;
	gr->seg_nrecs++;
	if (ticket)
		gr->seg_ticket = ticket;
	return 0;
}

static void shadow_keep(struct gregion *gr, const uint8_t *rec, uint32_t len)
{
	struct ckpt_rec_hdr h, kept;
	uint8_t *slot;

	if (gr->shadow == NULL || ckpt_rec_peek(rec, len, &h) < 0 ||
	    h.slot_pair >= gr->desc.nslots / 2 || len > gr->desc.slot_size)
		return;
	slot = gr->shadow + (size_t)h.slot_pair * gr->desc.slot_size;
	if (!ckpt_rec_is_empty(slot, CKPT_REC_HDR_LEN) &&
	    ckpt_rec_peek(slot, gr->desc.slot_size, &kept) > 0 && kept.generation > h.generation)
		return;
	memcpy(slot, rec, len);
}

static uint64_t ring_next(const struct gregion *gr);
static uint64_t ring_tail(const struct gregion *gr);
static uint64_t clean_room(const struct gregion *gr);

static int group_put(struct ckpt_region *r, const uint8_t *rec, uint32_t len)
{
	struct gregion *gr = r->be;
	int rc;

	if (live(gr) < need(gr->g))
		return -EIO;
	if (gr->shadow != NULL && ring_next(gr) - ring_tail(gr) + clean_room(gr) > gr->ring_size)
		return -EAGAIN; /* what the cleaner may have to log must fit: it frees the ring */
	rc = seg_add(gr, rec, len, r->posted + 1);
	if (rc == 0 && r->geo.mode == PMU_MODE_OVERWRITE)
		shadow_keep(gr, rec, len);
	return rc;
}

static int group_barrier(struct ckpt_region *r, uint64_t seq)
{
	struct gregion *gr = r->be;
	struct barrier *b;

	if (gr->bq_n == BARRIERS)
		return -EAGAIN;
	b = &gr->bq[(gr->bq_head + gr->bq_n++) % BARRIERS];
	memset(b, 0, sizeof(*b));
	b->seq = seq;
	return 0;
}

/* Flush every usable member; the tickets that flush covers go to @p ticket. */
static void flush_members(struct gregion *gr, uint64_t *ticket)
{
	for (unsigned int i = 0; i < gr->g->n; i++) {
		int rc;

		if (!member_ok(gr, i))
			continue;
		ticket[i] = ckpt_posted(gr->mr[i]);
		rc = ckpt_flush(gr->mr[i]);
		if (rc)
			member_down(gr->g, i, rc);
	}
}

static bool members_durable(struct gregion *gr, const uint64_t *ticket)
{
	for (unsigned int i = 0; i < gr->g->n; i++)
		if (member_ok(gr, i) && ckpt_durable(gr->mr[i]) < ticket[i])
			return false;
	return true;
}

/* Post what is cut, cut what a barrier waits for, and issue barriers whose records are out. */
static void progress_writes(struct gregion *gr)
{
	if (gr->pend)
		post_pending(gr);
	for (unsigned int q = 0; q < gr->bq_n; q++) {
		struct barrier *b = &gr->bq[(gr->bq_head + q) % BARRIERS];

		if (b->issued)
			continue;
		if (b->seq > gr->posted_through && gr->seg_len != 0 && !gr->pend)
			cut(gr);
		if (b->seq > gr->posted_through)
			break;
		flush_members(gr, b->ticket);
		b->issued = true;
	}
}

static void complete_barriers(struct ckpt_region *r)
{
	struct gregion *gr = r->be;

	if (live(gr) < need(gr->g))
		return;
	while (gr->bq_n != 0) {
		struct barrier *b = &gr->bq[gr->bq_head];

		if (!b->issued || !members_durable(gr, b->ticket))
			return;
		r->durable = b->seq;
		gr->bq_head = (gr->bq_head + 1) % BARRIERS;
		gr->bq_n--;
	}
}

/* ---- reading the members back ---------------------------------------------------------- */

static void images_free(struct images *im)
{
	for (unsigned int i = 0; i < MAXM; i++) {
		free(im->img[i]);
		im->img[i] = NULL;
	}
}

/*
 * Read every answering member's ring over the group's live span: from the newest tail any
 * member holds (space behind it may be reused) to the furthest head.
 */
static int images_load(struct gregion *gr, uint32_t skip_mask, struct images *im)
{
	uint64_t head[MAXM], tail[MAXM];
	unsigned int got = 0;

	memset(im, 0, sizeof(*im));
	im->ring_size = gr->ring_size;
	im->win_len = gr->ring_size;
	for (unsigned int i = 0; i < gr->g->n; i++) {
		head[i] = tail[i] = 0;
		if (!member_ok(gr, i) || (skip_mask & (1u << i)))
			continue;
		if (ckpt_ring_words(gr->mr[i], &head[i], &tail[i]) != 0) {
			member_down(gr->g, i, -EIO);
			continue;
		}
		if (tail[i] > im->tail)
			im->tail = tail[i];
		if (head[i] > im->head)
			im->head = head[i];
		got |= 1u << i;
	}
	if (im->head < im->tail)
		im->head = im->tail;
	im->acked_end = im->tail;
	for (unsigned int i = 0, nth; i < gr->g->n; i++) {
		nth = 0;
		for (unsigned int j = 0; j < gr->g->n; j++)
			nth += (got & (1u << j)) && head[j] >= head[i];
		if ((got & (1u << i)) && nth >= need(gr->g) && head[i] > im->acked_end)
			im->acked_end = head[i];
	}
	for (unsigned int i = 0; i < gr->g->n; i++) {
		uint64_t pos = im->tail;

		if (!(got & (1u << i)))
			continue;
		im->img[i] = malloc(im->ring_size);
		if (im->img[i] == NULL) {
			images_free(im);
			return -ENOMEM;
		}
		while (pos < im->head) {
			uint64_t off = pos % im->ring_size;
			uint64_t len = im->head - pos < im->ring_size - off ? im->head - pos
									    : im->ring_size - off;
			int rc = ring_read_at(gr, i, off, im->img[i] + off, len);

			if (rc) {
				member_down(gr->g, i, rc);
				free(im->img[i]);
				im->img[i] = NULL;
				break;
			}
			pos += len;
		}
	}
	return 0;
}

/* One segment as the walk found it. */
struct seg_view {
	uint64_t pos;
	struct ckpt_subseg s;
	uint8_t *frag[MAXM]; /* by stripe index; NULL: lost */
	int from[MAXM];	     /* member the fragment came from */
	uint32_t missing;    /* members without a valid subsegment here */
	uint32_t damaged;    /* members whose subsegment failed its CRC */
	unsigned int present;
	bool wrap; /* a wrap marker, not a segment */
};

/* Look at position @p pos on every member and find the segment (or wrap marker) there. */
static int seg_at(struct gregion *gr, const struct images *im, uint64_t pos, struct seg_view *v)
{
	const uint64_t off = pos % im->ring_size - im->win_off;
	const uint64_t room = im->win_len - off;
	bool framed = false, wrap = false;

	memset(v, 0, sizeof(*v));
	v->pos = pos;
	for (unsigned int i = 0; i < gr->g->n; i++) {
		struct ckpt_subseg s;
		const uint8_t *p;
		uint32_t word;
		int rc;

		if (im->img[i] == NULL) {
			v->missing |= 1u << i; /* down, or not read */
			continue;
		}
		p = im->img[i] + off;
		rc = ckpt_subseg_decode(p, room, &s);
		if (rc == 0 || rc == -EBADMSG) {
			if (s.group_id != gr->desc.group_id || s.pos != pos ||
			    s.code != gr->desc.code || s.k != gr->desc.k || s.m != gr->desc.m)
				rc = -EINVAL; /* a stale lap, or another group's bytes */
			else if (framed && (s.chunk_len != v->s.chunk_len ||
					    s.data_len != v->s.data_len || s.nrecs != v->s.nrecs))
				rc = -EINVAL;
		}
		if (rc == -EINVAL && sizeof(word) <= room) {
			memcpy(&word, p, sizeof(word));
			wrap |= le32toh(word) == PMU_RING_WRAP_MAGIC;
		}
		if (rc == 0 && v->frag[s.index] == NULL) {
			if (!framed)
				v->s = s;
			framed = true;
			v->frag[s.index] = (uint8_t *)p + CKPT_SEG_HDR_LEN;
			v->from[s.index] = (int)i;
			v->present++;
			continue;
		}
		if (rc == -EBADMSG) {
			if (!framed)
				v->s = s;
			framed = true;
			v->damaged |= 1u << i;
		}
		v->missing |= 1u << i;
	}
	if (!framed && wrap) {
		v->wrap = true;
		return 0;
	}
	return framed ? 0 : -EIO;
}

static void name_members(const struct gregion *gr, uint32_t mask, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < gr->g->n && at < len; i++)
		if (mask & (1u << i))
			at += (size_t)snprintf(buf + at, len - at, "%s%u (%s)", at ? ", " : "", i,
					       gr->g->member[i]);
}

/*
 * Recover a segment's data chunks (and, with @p all, its parity) into @p work (n chunks of
 * CKPT_SEG_CHUNK_MAX); on return v->frag[] points at every chunk.
 */
static int seg_recover(struct gregion *gr, struct seg_view *v, uint8_t *work, bool all)
{
	const struct ckpt_ec *ec = &gr->g->ec;
	const unsigned int n = ec->k + ec->m;
	bool have[MAXM], need_rec = false;

	for (unsigned int j = 0; j < n; j++) {
		have[j] = v->frag[j] != NULL;
		if (!have[j] && (all || j < ec->k))
			need_rec = true;
		if (!have[j])
			v->frag[j] = work + (size_t)j * CKPT_SEG_CHUNK_MAX;
	}
	if (!need_rec)
		return 0;
	return ckpt_ec_recover(ec, v->s.chunk_len, v->frag, have);
}

/* The segment's record bytes, contiguous: in place for k == 1, else copied into @p buf. */
static const uint8_t *seg_data(struct gregion *gr, const struct seg_view *v, uint8_t *buf)
{
	if (gr->g->ec.k == 1)
		return v->frag[0];
	for (unsigned int j = 0; j < gr->g->ec.k; j++)
		memcpy(buf + (size_t)j * v->s.chunk_len, v->frag[j], v->s.chunk_len);
	return buf;
}

struct walk_stats {
	uint64_t segments, degraded, lost;
	uint64_t first_bad[8];
	unsigned int nfirst_bad;
	uint64_t missing[MAXM], damaged[MAXM];
};

typedef int (*seg_fn)(struct gregion *gr, const uint8_t *data, const struct seg_view *v, void *arg);

/*
 * Walk the live span segment by segment, handing each segment's records to @p fn. A
 * segment with fewer than k good subsegments stops the walk with -EIO, and the log names
 * it and the members that failed it; with @p fn NULL the walk only counts.
 */
static int walk(struct gregion *gr, const struct images *im, seg_fn fn, void *arg,
		struct walk_stats *ws, uint64_t *stop)
{
	const unsigned int n = gr->g->n;
	uint8_t *work = malloc((size_t)n * CKPT_SEG_CHUNK_MAX);
	uint8_t *data = malloc((size_t)gr->g->ec.k * CKPT_SEG_CHUNK_MAX);
	uint64_t pos = im->tail;
	int rc = 0;

	if (work == NULL || data == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (pos < im->head) {
		struct seg_view v;
		char who[512];

		rc = seg_at(gr, im, pos, &v);
		if ((rc != 0 || (!v.wrap && v.present < gr->g->ec.k)) && pos >= im->acked_end) {
			/* Past what k members published: a flush that never completed. */
			ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
				 "region %s: the log ends at %" PRIu64
				 ": what follows reached fewer than %u members (a writer stopped "
				 "in the middle of a flush) and was never acknowledged",
				 gr->mr[0] ? gr->mr[0]->geo.name : "?", pos, gr->g->ec.k);
			rc = 0;
			break;
		}
		if (rc) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: no member holds a readable segment at ring position "
				 "%" PRIu64 " (live span %" PRIu64 "..%" PRIu64
				 "); nothing past it "
				 "can be framed",
				 gr->mr[0] ? gr->mr[0]->geo.name : "?", pos, im->tail, im->head);
			if (ws)
				ws->lost++;
			break;
		}
		if (v.wrap) {
			pos += im->ring_size - pos % im->ring_size;
			continue;
		}
		if (ws) {
			ws->segments++;
			for (unsigned int i = 0; i < n; i++) {
				ws->missing[i] += (v.missing >> i) & 1;
				ws->damaged[i] += (v.damaged >> i) & 1;
			}
			if (v.present < n && ws->nfirst_bad < 8)
				ws->first_bad[ws->nfirst_bad++] = pos;
			ws->degraded += v.present < n && v.present >= gr->g->ec.k;
		}
		if (v.damaged)
			ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
				 "segment at %" PRIu64 ": subsegment CRC fails on member(s) %s; "
				 "rebuilt from the others",
				 pos, (name_members(gr, v.damaged, who, sizeof(who)), who));
		if (v.present < gr->g->ec.k) {
			name_members(gr, v.missing, who, sizeof(who));
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "segment at ring position %" PRIu64 ": %u of %u subsegments good, "
				 "%u needed; missing or damaged on member(s) %s",
				 pos, v.present, n, gr->g->ec.k, who);
			if (ws)
				ws->lost++;
			rc = -EIO;
			if (fn != NULL)
				break;
			pos += CKPT_SEG_HDR_LEN + v.s.chunk_len;
			continue;
		}
		if (fn != NULL) {
			rc = seg_recover(gr, &v, work, false);
			if (rc == 0)
				rc = fn(gr, seg_data(gr, &v, data), &v, arg);
			if (rc)
				break;
		}
		pos += CKPT_SEG_HDR_LEN + v.s.chunk_len;
		if (stop)
			*stop = pos;
	}
out:
	free(work);
	free(data);
	return rc;
}

/* ---- restore: the state region --------------------------------------------------------- */

struct collect {
	uint8_t *best;	 /* pairs x slot_size: newest encoded record per pair */
	uint64_t *where; /* 1 + the ring position of that record's segment */
	uint64_t pos;	 /* of the segment being read */
	uint64_t mark[MARKS];
	unsigned int nmarks;
	uint32_t slot_size;
	uint64_t pairs;
	struct ckpt_scan_stats *st;
};

static int collect_rec(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len, void *arg)
{
	struct collect *co = arg;
	uint8_t *slot;

	if (rec->slot_pair >= co->pairs || len > co->slot_size) {
		co->st->misplaced++;
		return 0;
	}
	slot = co->best + (size_t)rec->slot_pair * co->slot_size;
	if (!ckpt_rec_is_empty(slot, CKPT_REC_HDR_LEN)) {
		struct ckpt_rec_hdr kept;

		co->st->superseded++;
		ckpt_rec_peek(slot, co->slot_size, &kept);
		if (kept.generation > rec->generation)
			return 0;
	}
	memcpy(slot, raw, len);
	co->where[rec->slot_pair] = co->pos + 1;
	return 0;
}

static int collect_seg(struct gregion *gr, const uint8_t *data, const struct seg_view *v, void *arg)
{
	struct collect *co = arg;

	co->pos = v->pos;
	if (co->nmarks == 0 ||
	    (co->nmarks < MARKS && v->pos >= co->mark[co->nmarks - 1] + gr->ring_size / 32))
		co->mark[co->nmarks++] = v->pos;
	if (ckpt_seg_records(data, v->s.data_len, v->s.nrecs, collect_rec, co) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "segment at %" PRIu64
			 ": its records do not decode although its CRCs check",
			 v->pos);
		co->st->invalid++;
	}
	return 0;
}

/*
 * Fold what was read into the shadow, so a later cleaning keeps it; a writer that has not
 * cut a segment yet also learns where in the ring its tail may move.
 */
static void shadow_merge(struct gregion *gr, const struct collect *co)
{
	const uint32_t ss = gr->desc.slot_size;

	for (uint64_t p = 0; p < gr->desc.nslots / 2; p++) {
		const uint8_t *b = co->best + p * ss;
		struct ckpt_rec_hdr read, kept;

		if (ckpt_rec_is_empty(b, CKPT_REC_HDR_LEN))
			continue;
		shadow_keep(gr, b, ss);
		if (gr->where[p] != 0)
			continue;
		ckpt_rec_peek(b, ss, &read);
		ckpt_rec_peek(gr->shadow + p * ss, ss, &kept);
		if (kept.generation == read.generation)
			gr->where[p] = co->where[p];
	}
	if (gr->mark_n == 0) {
		memcpy(gr->mark, co->mark, sizeof(gr->mark));
		gr->mark_head = 0;
		gr->mark_n = co->nmarks;
	}
	gr->shadow_loaded = true;
}

static void collect_free(struct collect *co)
{
	free(co->best);
	free(co->where);
	co->best = NULL;
	co->where = NULL;
}

/* Every pair's newest record over the live span, into @p co (collect_free() it). */
static int read_state(struct ckpt_region *r, struct collect *co, struct ckpt_scan_stats *st)
{
	struct gregion *gr = r->be;
	struct images im;
	int rc;

	*co = (struct collect){
		.slot_size = gr->desc.slot_size,
		.pairs = gr->desc.nslots / 2,
		.st = st,
	};
	co->best = calloc(co->pairs, co->slot_size);
	co->where = calloc(co->pairs, sizeof(*co->where));
	if (co->best == NULL || co->where == NULL) {
		collect_free(co);
		return -ENOMEM;
	}
	rc = images_load(gr, 0, &im);
	if (rc == 0 && live(gr) < need(gr->g))
		rc = -EIO;
	if (rc == 0)
		rc = walk(gr, &im, collect_seg, co, NULL, NULL);
	images_free(&im);
	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s: cannot be restored (%s): nothing is handed over", r->geo.name,
			 strerror(-rc));
		collect_free(co);
	}
	return rc;
}

static int group_scan(struct ckpt_region *r, unsigned int flags, ckpt_rec_cb cb, void *arg,
		      struct ckpt_scan_stats *stats)
{
	struct gregion *gr = r->be;
	const uint32_t ss = gr->desc.slot_size;
	struct ckpt_scan_stats st = {0};
	struct collect co;
	uint8_t *best;
	int rc, stop = 0;

	rc = read_state(r, &co, &st);
	if (rc)
		goto out;
	best = co.best;
	for (uint64_t p = 0; p < gr->desc.nslots / 2 && !stop; p++) {
		struct ckpt_rec rec;

		if (ckpt_rec_is_empty(best + p * ss, CKPT_REC_HDR_LEN)) {
			st.empty += 2;
			continue;
		}
		if (ckpt_rec_decode(best + p * ss, ss, &rec) < 0) {
			st.invalid++;
			continue;
		}
		if (rec.flags & CKPT_REC_F_TOMBSTONE) {
			st.tombstones++;
			if (!(flags & CKPT_SCAN_TOMBSTONES))
				continue;
		} else {
			st.records++;
		}
		stop = cb ? cb(&rec, arg) : 0;
	}
	if (!gr->shadow_loaded)
		shadow_merge(gr, &co);
	collect_free(&co);
	rc = stop;
out:
	if (stats)
		*stats = st;
	return rc;
}

/* ---- restore: the log ------------------------------------------------------------------ */

struct log_hand {
	ckpt_rec_cb cb;
	void *arg;
	uint64_t n;
	int stop;
};

static int hand_rec(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len, void *arg)
{
	struct log_hand *h = arg;

	(void)raw;
	(void)len;
	h->n++;
	h->stop = h->cb ? h->cb(rec, h->arg) : 0;
	return h->stop;
}

static int hand_seg(struct gregion *gr, const uint8_t *data, const struct seg_view *v, void *arg)
{
	int rc = ckpt_seg_records(data, v->s.data_len, v->s.nrecs, hand_rec, arg);

	(void)gr;
	if (rc < 0)
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "segment at %" PRIu64
			 ": its records do not decode although its CRCs check",
			 v->pos);
	return rc;
}

static int group_log_read(struct ckpt_region *r, ckpt_rec_cb cb, void *arg, bool peek,
			  struct ckpt_scan_stats *stats)
{
	struct gregion *gr = r->be;
	struct log_hand h = {cb, arg, 0, 0};
	struct images im;
	uint64_t stop;
	int rc;

	rc = images_load(gr, 0, &im);
	if (rc)
		return rc;
	stop = im.tail;
	rc = live(gr) < need(gr->g) ? -EIO : walk(gr, &im, hand_seg, &h, NULL, &stop);
	images_free(&im);
	if (rc < 0 && h.stop == 0)
		return rc;
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		stats->records = h.n;
	}
	/* The consumer owns the tails: whole segments handed over are cleared on every member. */
	for (unsigned int i = 0; i < gr->g->n && !peek && stop != im.tail; i++) {
		if (!member_ok(gr, i))
			continue;
		rc = ckpt_ring_post_tail(gr->mr[i], stop);
		if (rc == 0)
			rc = ckpt_sync(gr->mr[i]);
		if (rc)
			member_down(gr->g, i, rc);
	}
	return (int)h.n;
}

/* ---- compaction ------------------------------------------------------------------------ */

static uint64_t ring_next(const struct gregion *gr)
{
	uint64_t next, tail;

	for (unsigned int i = 0; i < gr->g->n; i++)
		if (usable(gr, i) && !member_failed(gr->g, i)) {
			ckpt_ring_position(gr->mr[i], &next, &tail);
			return next;
		}
	return 0;
}

static uint64_t ring_tail(const struct gregion *gr)
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

/* The most one member's share of the live records takes: every pair at a full slot. */
static uint64_t snapshot_share(const struct gregion *gr)
{
	return (gr->desc.nslots / 2 * gr->desc.slot_size) / gr->g->ec.k * 9 / 8 +
	       2ull * gr->seg_cap;
}

/* The longest span a cleaning pass frees: a quarter ring, to the next remembered segment. */
static uint64_t clean_span_max(const struct gregion *gr)
{
	return gr->ring_size / 4 + gr->ring_size / 32;
}

/*
 * Ring bytes kept free for the cleaner: what a pass logs again is no more than the span it
 * frees, nor than every live record once. New writes stop short of it (EAGAIN), so the
 * cleaner can always place what frees the ring.
 */
static uint64_t clean_room(const struct gregion *gr)
{
	uint64_t span =
		gr->comp == COMPACT_WRITING ? gr->clean_to - gr->clean_from : clean_span_max(gr);
	uint64_t all = snapshot_share(gr);

	return (span < all ? span : all) + 2ull * gr->seg_cap;
}

/* Read the log into the shadow (a writer that reopened a region without restoring it). */
static int shadow_load(struct ckpt_region *r)
{
	struct ckpt_scan_stats st = {0};
	struct collect co;
	int rc = read_state(r, &co, &st);

	if (rc)
		return rc;
	shadow_merge(r->be, &co);
	collect_free(&co);
	return 0;
}

/*
 * Where the tail may move next: the furthest remembered segment position within a quarter
 * ring of it, or the first one past it. 0 when none is known yet.
 */
static uint64_t clean_target(struct gregion *gr, uint64_t tail, uint64_t next)
{
	uint64_t to = 0;

	while (gr->mark_n != 0 && gr->mark[gr->mark_head] <= tail) {
		gr->mark_head = (gr->mark_head + 1) % MARKS;
		gr->mark_n--;
	}
	for (unsigned int q = 0; q < gr->mark_n; q++) {
		uint64_t m = gr->mark[(gr->mark_head + q) % MARKS];

		if (m >= next || (to != 0 && m - tail > gr->ring_size / 4))
			break;
		to = m;
	}
	/* A longer pass could need more than the room kept for it. */
	if (to - tail > clean_span_max(gr) && snapshot_share(gr) > clean_span_max(gr))
		return 0;
	return to;
}

/*
 * The cleaner (a log-structured store's): once the ring is 5/8 full, the oldest part of it
 * (up to a quarter ring, ending at a segment) is freed. Every pair whose newest record lies
 * there is logged again from the shadow, interleaved with new writes; once that is durable
 * everywhere, the members' tails move past the part. Records there that newer ones
 * superseded cost nothing, so a ring much larger than the live records is rarely copied.
 */
static void compact_step(struct ckpt_region *r)
{
	struct gregion *gr = r->be;
	const uint32_t ss = gr->desc.slot_size;
	const uint64_t pairs = gr->desc.nslots / 2;
	uint64_t next = ring_next(gr), tail = ring_tail(gr);

	switch (gr->comp) {
	case COMPACT_IDLE:
		if (gr->shadow == NULL || next - tail < gr->ring_size / 2 + gr->ring_size / 8)
			return;
		if (!gr->shadow_loaded && shadow_load(r) != 0)
			return;
		gr->clean_to = clean_target(gr, tail, next);
		if (gr->clean_to == 0)
			return;
		gr->clean_from = tail;
		gr->clean_cursor = 0;
		gr->comp = COMPACT_WRITING;
		/* fall through */
	case COMPACT_WRITING:
		for (unsigned int n = 0; n < CLEAN_PER_POLL && gr->clean_cursor < pairs; n++) {
			const uint64_t p = gr->clean_cursor;
			const uint8_t *rec = gr->shadow + p * ss;
			struct ckpt_rec_hdr h;

			/* Unknown (0) or behind the part being freed: log it again. */
			if (gr->where[p] <= gr->clean_to &&
			    !ckpt_rec_is_empty(rec, CKPT_REC_HDR_LEN)) {
				ckpt_rec_peek(rec, ss, &h);
				if (seg_add(gr, rec, h.len, 0) != 0)
					return;
				gr->relog_bytes += h.len;
			}
			gr->clean_cursor++;
		}
		if (gr->clean_cursor < pairs)
			return;
		if (gr->seg_len != 0) {
			if (gr->pend)
				post_pending(gr);
			if (gr->pend || cut(gr) != 0)
				return;
		}
		if (gr->pend)
			return;
		flush_members(gr, gr->comp_ticket);
		gr->comp = COMPACT_DATA;
		return;
	case COMPACT_DATA:
		if (!members_durable(gr, gr->comp_ticket))
			return;
		for (unsigned int i = 0; i < gr->g->n; i++) {
			if (!member_ok(gr, i))
				continue;
			if (ckpt_ring_post_tail(gr->mr[i], gr->clean_to) != 0)
				return; /* queue full: again at the next poll */
		}
		flush_members(gr, gr->comp_ticket);
		gr->comp = COMPACT_TAIL;
		return;
	case COMPACT_TAIL:
		if (!members_durable(gr, gr->comp_ticket))
			return;
		for (unsigned int i = 0; i < gr->g->n; i++)
			if (member_ok(gr, i))
				ckpt_ring_cleared(gr->mr[i], gr->clean_to);
		ckpt_log(CKPT_LOG_DEBUG, LOG_COMPONENT,
			 "region %s: cleaned; the log now starts at %" PRIu64 " (%" PRIu64
			 " record bytes logged again so far)",
			 r->geo.name, gr->clean_to, gr->relog_bytes);
		gr->comp = COMPACT_IDLE;
		return;
	}
}

/* ---- rebuild --------------------------------------------------------------------------- */

/*
 * Member @p i of region @p r holds a member region again (created empty, or kept from
 * before it failed): it stands where the others stand, so new segments reach it from now
 * on, and a rebuild pass recomputes what it lacks behind that.
 */
static void member_join(struct ckpt_region *r, unsigned int i)
{
	struct gregion *gr = r->be;
	const uint64_t tail = ring_tail(gr), next = ring_next(gr);

	ckpt_ring_join(gr->mr[i], tail, next);
	/* Tickets of its former connection mean nothing to this one. */
	for (unsigned int q = 0; q < gr->bq_n; q++)
		gr->bq[(gr->bq_head + q) % BARRIERS].ticket[i] = 0;
	gr->comp_ticket[i] = 0;
	gr->rb_ticket[i] = 0;
	gr->st[i] = CKPT_MEMBER_REBUILDING;
	gr->rb_mask |= 1u << i;
	ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
		 "region %s: rebuilding member %u (%s): %" PRIu64 " bytes of ring span",
		 r->geo.name, i, gr->g->member[i], next - tail);
}

/*
 * Start a pass over the live span, or start the one under way again from the tail (a
 * member joined it). Everything up to where the rings stand now is flushed first: the pass
 * reads it back from the members once that is durable.
 */
static void rebuild_start(struct gregion *gr)
{
	const uint64_t next = ring_next(gr);

	if (!gr->rb_active || next > gr->rb_end)
		gr->rb_end = next;
	gr->rb_pos = gr->rb_start = ring_tail(gr);
	gr->rb_decile = 0;
	gr->rb_repaired = 0;
	gr->rb_read = REBUILD_READ;
	gr->rb_active = true;
	gr->rb_wait = true;
	flush_members(gr, gr->rb_ticket);
}

int ckpt_group_rebuild(struct ckpt_region *r)
{
	struct gregion *gr;
	struct group *g;
	struct pmu_region_params mp;
	uint32_t mask = 0;
	int rc;

	if (r == NULL || r->cl->records != &ckpt_group_ops)
		return -EINVAL;
	gr = r->be;
	g = gr->g;
	if (gr->rb_active || gr->pend)
		return -EBUSY;
	for (unsigned int i = 0; i < g->n; i++) {
		if (gr->st[i] == CKPT_MEMBER_FOREIGN) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: member %u (%s) holds another group's region of that "
				 "name; delete it before rebuilding",
				 r->geo.name, i, g->member[i]);
			return -EEXIST;
		}
		if (gr->st[i] == CKPT_MEMBER_EMPTY && g->mc[i] != NULL && !member_failed(g, i))
			mask |= 1u << i;
	}
	if (live(gr) < need(g))
		return -EIO;
	mp = member_params(&r->geo, g->ec.k);
	for (unsigned int i = 0; i < g->n; i++) {
		if (!(mask & (1u << i)))
			continue;
		rc = member_create(g->mc[i], &mp, &gr->desc, i, gr->ring_size, &gr->mr[i]);
		if (rc) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: cannot create it on member %u (%s): %s", r->geo.name,
				 i, g->member[i], strerror(-rc));
			for (unsigned int j = 0; j < i; j++)
				if ((mask & (1u << j)) && gr->mr[j] != NULL)
					ckpt_region_close(&gr->mr[j]);
			return rc;
		}
	}
	for (unsigned int i = 0; i < g->n; i++)
		if (mask & (1u << i))
			member_join(r, i);
	rebuild_start(gr);
	return __builtin_popcount(mask);
}

/* Write what member @p i must hold for segment @p v (its rotation read off a survivor). */
static int rebuild_one(struct gregion *gr, const struct seg_view *v, unsigned int i)
{
	const unsigned int n = gr->g->n;
	uint8_t *buf = gr->sub[0];
	struct ckpt_subseg s = v->s;
	unsigned int idx = n;

	for (unsigned int j = 0; j < n; j++)
		if (v->from[j] >= 0 && !(gr->rb_mask & (1u << v->from[j]))) {
			idx = (j + i + n - (unsigned int)v->from[j]) % n;
			break;
		}
	if (idx == n)
		return -EIO;
	s.index = (uint8_t)idx;
	memcpy(buf + CKPT_SEG_HDR_LEN, v->frag[idx], s.chunk_len);
	s.chunk_crc = ckpt_crc32c(buf + CKPT_SEG_HDR_LEN, s.chunk_len);
	ckpt_subseg_encode(&s, buf);
	return ring_post_at(gr, i, v->pos, buf, CKPT_SEG_HDR_LEN + s.chunk_len);
}

/*
 * Read the next window of the pass from every member that holds the region (the ones being
 * rebuilt too: what they hold already need not be written again). Returns the position
 * up to which segments may start: each one that does lies wholly in the window.
 */
static int rebuild_read(struct gregion *gr, uint64_t *upto)
{
	struct images *im = &gr->rb;
	const uint64_t off = gr->rb_pos % gr->ring_size;
	const uint64_t t0 = now_ns();
	uint64_t len = gr->rb_read, took;
	bool whole = false;
	unsigned int got = 0;

	if (len >= gr->ring_size - off) {
		len = gr->ring_size - off;
		whole = true; /* segments never straddle the end of the ring */
	}
	if (len >= gr->rb_end - gr->rb_pos) {
		len = gr->rb_end - gr->rb_pos;
		whole = true; /* rb_end is where a segment ends */
	}
	im->ring_size = gr->ring_size;
	im->win_off = off;
	im->win_len = len;
	for (unsigned int i = 0; i < gr->g->n; i++) {
		if (!member_ok(gr, i)) {
			free(im->img[i]);
			im->img[i] = NULL;
			continue;
		}
		if (im->img[i] == NULL)
			im->img[i] = malloc(REBUILD_READ);
		if (im->img[i] == NULL)
			return -ENOMEM;
		if (ring_read_at(gr, i, off, im->img[i], len) != 0) {
			member_down(gr->g, i, -EIO);
			free(im->img[i]);
			im->img[i] = NULL;
			continue;
		}
		got++;
	}
	/* Slow members (a loaded host, a long way off): read less per poll, then more again. */
	took = now_ns() - t0;
	if (took > REBUILD_NS && gr->rb_read / 2 >= REBUILD_MIN)
		gr->rb_read /= 2;
	else if (took < REBUILD_NS / 2 && gr->rb_read < REBUILD_READ)
		gr->rb_read *= 2;
	if (got < need(gr->g))
		return -EIO;
	*upto = gr->rb_pos + (whole ? len : len - (CKPT_SEG_HDR_LEN + CKPT_SEG_CHUNK_MAX));
	return 0;
}

/* The pass found no segment at rb_pos: a reader may have moved the tails past it. */
static bool rebuild_behind_tail(struct gregion *gr)
{
	for (unsigned int i = 0; i < gr->g->n; i++) {
		uint64_t head, tail;

		if (!member_ok(gr, i) || (gr->rb_mask & (1u << i)) ||
		    ckpt_ring_words(gr->mr[i], &head, &tail) != 0)
			continue;
		if (tail > gr->rb_pos) {
			gr->rb_pos = tail;
			return true;
		}
	}
	return false;
}

/*
 * One poll's share of a rebuild pass: at most REBUILD_READ ring bytes read per member, less
 * while reading that much takes longer than REBUILD_NS.
 * Positions the cleaner (or a log reader) freed meanwhile are skipped: nobody reads them
 * again.
 */
static void rebuild_step(struct ckpt_region *r)
{
	struct gregion *gr = r->be;
	const unsigned int n = gr->g->n;
	uint64_t upto = 0;
	uint8_t *work;

	if (!gr->rb_active || gr->pend)
		return; /* sub[0] is the scratch buffer and must be free */
	if (gr->rb_wait) {
		if (!members_durable(gr, gr->rb_ticket))
			return;
		gr->rb_wait = false;
	}
	if (gr->rb_pos < ring_tail(gr))
		gr->rb_pos = ring_tail(gr);
	work = malloc((size_t)n * CKPT_SEG_CHUNK_MAX);
	if (work == NULL)
		return;
	if (gr->rb_pos < gr->rb_end && rebuild_read(gr, &upto) != 0)
		upto = gr->rb_pos; /* again at the next poll */
	while (gr->rb_pos < gr->rb_end && gr->rb_pos < upto) {
		struct seg_view v;
		bool again = false;

		if (seg_at(gr, &gr->rb, gr->rb_pos, &v) != 0) {
			if (rebuild_behind_tail(gr))
				break;
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: rebuild stops at %" PRIu64 ": no member frames it",
				 r->geo.name, gr->rb_pos);
			gr->rb_pos = gr->rb_end;
			break;
		}
		if (v.wrap) {
			const uint32_t wrap = htole32(PMU_RING_WRAP_MAGIC);

			for (unsigned int i = 0; i < n && !again; i++)
				if ((gr->rb_mask & (1u << i)) && member_ok(gr, i))
					again = ring_post_at(gr, i, gr->rb_pos, &wrap,
							     sizeof(wrap)) == -EAGAIN;
			if (again)
				break;
			gr->rb_pos += gr->ring_size - gr->rb_pos % gr->ring_size;
			break; /* the next window starts at the ring's start */
		}
		for (unsigned int j = 0; j < n; j++)
			if (v.frag[j] == NULL)
				v.from[j] = -1;
		if (v.present < gr->g->ec.k || seg_recover(gr, &v, work, true) != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: segment at %" PRIu64 " cannot be rebuilt: %u of %u "
				 "subsegments good",
				 r->geo.name, gr->rb_pos, v.present, n);
		} else {
			for (unsigned int i = 0; i < n; i++) {
				int rc;

				/* New members, and old ones whose subsegment is damaged or stale.
				 */
				if (!(v.missing & (1u << i)) || !member_ok(gr, i))
					continue;
				rc = rebuild_one(gr, &v, i);
				if (rc == -EAGAIN) {
					again = true;
					break;
				}
				if (rc)
					member_down(gr->g, i, rc);
				else
					gr->rb_repaired++;
			}
			if (again)
				break; /* members already written get the same bytes again */
		}
		gr->rb_pos += CKPT_SEG_HDR_LEN + v.s.chunk_len;
	}
	free(work);
	if (gr->rb_end > gr->rb_start) {
		uint64_t done = gr->rb_pos < gr->rb_end ? gr->rb_pos : gr->rb_end;
		unsigned int d =
			(unsigned int)((done - gr->rb_start) * 10 / (gr->rb_end - gr->rb_start));

		if (d > gr->rb_decile && d < 10) {
			gr->rb_decile = d;
			ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT, "region %s: rebuild %u%% done",
				 r->geo.name, d * 10);
		}
	}
	if (gr->rb_pos < gr->rb_end)
		return;
	for (unsigned int i = 0; i < n; i++) {
		if (!(gr->rb_mask & (1u << i)))
			continue;
		if (member_ok(gr, i) && ckpt_flush(gr->mr[i]) == 0)
			gr->st[i] = CKPT_MEMBER_OK;
	}
	ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
		 "region %s: rebuild 100%% done (%" PRIu64 " bytes, %" PRIu64
		 " subsegments written)",
		 r->geo.name, gr->rb_end - gr->rb_start, gr->rb_repaired);
	gr->rb_mask = 0;
	gr->rb_active = false;
	images_free(&gr->rb);
}

/* ---- members that come back ------------------------------------------------------------ */

/*
 * A member that is down is tried again every REJOIN_EVERY on a thread of the group
 * client's own: connecting and opening (or creating) its member regions take round trips
 * and timeouts that ckpt_poll() must never wait for. The poll hands a try over and later
 * adopts what came back; until then the thread touches only the try's own connections.
 */

/* One group region as the try must find it, or make it, on the members it tries. */
struct rejoin_want {
	char name[PMU_NAME_MAX], owner[PMU_NAME_MAX];
	struct pmu_region_params mp;
	struct ckpt_gdesc desc;
	uint64_t ring_size;
	struct ckpt_region *mr[MAXM]; /* found or created */
	int rc[MAXM];		      /* 0, or -EEXIST: the member holds another group's */
	bool created[MAXM];
};

struct rejoin_try {
	uint32_t mask;		       /* members tried */
	struct ckpt_client *old[MAXM]; /* their failed connections, closed on the thread */
	struct ckpt_client *mc[MAXM];  /* their new ones */
	int rc[MAXM];
	unsigned int nwant;
	struct rejoin_want want[];
};

struct rejoin {
	pthread_t thread;
	pthread_mutex_t lock; /* guards stop, todo and done */
	pthread_cond_t wake;
	bool stop;
	struct rejoin_try *todo; /* handed to the thread */
	struct rejoin_try *done; /* handed back to the poll */
	/* The poll's own. */
	struct rejoin_try *out;	      /* handed over, not adopted yet */
	uint64_t last_ns;	      /* when the last try was handed over */
	int logged[MAXM];	      /* the last reason logged why a member stays out */
	struct ckpt_client_opts opts; /* the group's, secret and tenant copied */
	uint8_t secret[64];
	char *tenant;
};

static void try_free(struct rejoin_try *t)
{
	if (t == NULL)
		return;
	for (unsigned int i = 0; i < MAXM; i++) {
		ckpt_disconnect(&t->old[i]); /* closes the member regions opened on them too */
		ckpt_disconnect(&t->mc[i]);
	}
	free(t);
}

/* Find the region on member @p i of the try (or create it there) as @p w describes it. */
/*
 * A region of that name with no descriptor and an empty ring: a create that timed out on
 * our side after the server made it (the descriptor is written right after). Nobody's data
 * is there, and nobody has it open (the server refuses to delete an open region): delete it,
 * so that it is made again. @return true when it was deleted.
 */
static bool abandoned_create(struct ckpt_client *mc, const char *name)
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

static int try_region(struct rejoin_try *t, unsigned int i, struct rejoin_want *w)
{
	struct ckpt_gdesc d;
	int rc = member_open(t->mc[i], w->name, &w->mr[i], &d, NULL);

	/* Then made again below; the poll logs it as created again (this thread is quiet). */
	if (rc == -EINVAL && abandoned_create(t->mc[i], w->name))
		rc = -ENOENT;

	if (rc == 0 && (d.group_id != w->desc.group_id || d.member != i ||
			ckpt_region_geometry(w->mr[i])->ring_size != w->ring_size)) {
		ckpt_region_close(&w->mr[i]);
		rc = -EINVAL;
	}
	if (rc == -EINVAL)
		return -EEXIST;
	if (rc == -ENOENT) {
		rc = member_create(t->mc[i], &w->mp, &w->desc, i, w->ring_size, &w->mr[i]);
		w->created[i] = rc == 0;
	}
	return rc;
}

static void try_run(const struct group *g, struct rejoin *rj, struct rejoin_try *t)
{
	for (unsigned int i = 0; i < g->n; i++) {
		if (!(t->mask & (1u << i)))
			continue;
		ckpt_disconnect(&t->old[i]);
		t->mc[i] = ckpt_connect(g->member[i], &rj->opts);
		if (t->mc[i] == NULL) {
			t->rc[i] = -errno;
			continue;
		}
		for (unsigned int w = 0; w < t->nwant && t->rc[i] == 0; w++) {
			int rc = try_region(t, i, &t->want[w]);

			t->want[w].rc[i] = rc;
			if (rc != 0 && rc != -EEXIST)
				t->rc[i] = rc;
		}
		if (t->rc[i] != 0)
			ckpt_disconnect(&t->mc[i]);
	}
}

static void *rejoin_main(void *arg)
{
	struct group *g = arg;
	struct rejoin *rj = g->rj;

	/* What fails here is expected while a member is down; the poll logs the outcome. */
	ckpt_log_quiet_thread(true);
	pthread_mutex_lock(&rj->lock);
	for (;;) {
		struct rejoin_try *t;

		while (!rj->stop && rj->todo == NULL)
			pthread_cond_wait(&rj->wake, &rj->lock);
		if (rj->stop)
			break;
		t = rj->todo;
		rj->todo = NULL;
		pthread_mutex_unlock(&rj->lock);
		try_run(g, rj, t);
		pthread_mutex_lock(&rj->lock);
		rj->done = t;
	}
	pthread_mutex_unlock(&rj->lock);
	return NULL;
}

static int rejoin_init(struct group *g, const struct ckpt_client_opts *o)
{
	struct rejoin *rj = calloc(1, sizeof(*rj));
	int rc;

	if (rj == NULL)
		return -ENOMEM;
	rj->opts = *o;
	if (o->secret_len > sizeof(rj->secret)) {
		free(rj);
		return -EINVAL;
	}
	if (o->secret_len) {
		memcpy(rj->secret, o->secret, o->secret_len);
		rj->opts.secret = rj->secret;
	}
	if (o->tenant != NULL) {
		rj->tenant = strdup(o->tenant);
		if (rj->tenant == NULL) {
			free(rj);
			return -ENOMEM;
		}
		rj->opts.tenant = rj->tenant;
	}
	pthread_mutex_init(&rj->lock, NULL);
	pthread_cond_init(&rj->wake, NULL);
	g->rj = rj;
	rc = -pthread_create(&rj->thread, NULL, rejoin_main, g);
	if (rc) {
		pthread_cond_destroy(&rj->wake);
		pthread_mutex_destroy(&rj->lock);
		free(rj->tenant);
		free(rj);
		g->rj = NULL;
	}
	return rc;
}

/* Stop the thread (a try under way runs to its end: at most a connect timeout). */
static void rejoin_fini(struct group *g)
{
	struct rejoin *rj = g->rj;

	if (rj == NULL)
		return;
	pthread_mutex_lock(&rj->lock);
	rj->stop = true;
	pthread_cond_signal(&rj->wake);
	pthread_mutex_unlock(&rj->lock);
	pthread_join(rj->thread, NULL);
	try_free(rj->out); /* the try in flight, whether still todo, run, or done */
	pthread_cond_destroy(&rj->wake);
	pthread_mutex_destroy(&rj->lock);
	memset(rj->secret, 0, sizeof(rj->secret));
	free(rj->tenant);
	free(rj);
	g->rj = NULL;
}

/*
 * Tried again: a member that is down, and one that answers but holds none of this client's
 * regions and lacks one (replaced while the client was not running).
 */
static bool member_out(const struct ckpt_client *c, unsigned int i)
{
	const struct group *g = c->be;
	bool empty = false;

	if (g->mc[i] == NULL || member_failed(g, i))
		return true;
	for (const struct ckpt_region *r = c->regions; r != NULL; r = r->next) {
		const struct gregion *gr = r->be;

		if (gr->mr[i] != NULL)
			return false;
		empty |= gr->st[i] == CKPT_MEMBER_EMPTY;
	}
	return empty;
}

/* Only a client that writes brings members back: a reader's rebuild would race the writer. */
static bool writes(const struct ckpt_client *c)
{
	for (const struct ckpt_region *r = c->regions; r != NULL; r = r->next)
		if (((const struct gregion *)r->be)->enc_segments != 0)
			return true;
	return false;
}

/* Hand a try of every member that is down to the thread, with what it must find there. */
static void rejoin_launch(struct ckpt_client *c)
{
	struct group *g = c->be;
	struct rejoin *rj = g->rj;
	struct rejoin_try *t;
	unsigned int nwant = 0, w = 0;
	uint32_t mask = 0;

	for (unsigned int i = 0; i < g->n; i++)
		if (member_out(c, i))
			mask |= 1u << i;
	if (mask == 0 || !writes(c))
		return;
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next)
		nwant++;
	t = calloc(1, sizeof(*t) + nwant * sizeof(t->want[0]));
	if (t == NULL)
		return;
	t->mask = mask;
	t->nwant = nwant;
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next, w++) {
		struct gregion *gr = r->be;
		struct rejoin_want *wt = &t->want[w];

		snprintf(wt->name, sizeof(wt->name), "%s", r->geo.name);
		snprintf(wt->owner, sizeof(wt->owner), "%s", r->geo.owner);
		wt->mp = member_params(&r->geo, g->ec.k);
		wt->mp.name = wt->name;
		wt->mp.owner = wt->owner;
		wt->desc = gr->desc;
		wt->ring_size = gr->ring_size;
	}
	/* The failed connections go with the try: closing them may wait for a timeout. */
	for (unsigned int i = 0; i < g->n; i++) {
		if (!(mask & (1u << i)) || g->mc[i] == NULL)
			continue;
		for (struct ckpt_region *r = c->regions; r != NULL; r = r->next) {
			struct gregion *gr = r->be;

			gr->mr[i] = NULL; /* in t->old[i]'s list of regions: closed with it */
			if (gr->st[i] == CKPT_MEMBER_OK || gr->st[i] == CKPT_MEMBER_REBUILDING)
				gr->st[i] = CKPT_MEMBER_DOWN;
			gr->rb_mask &= ~(1u << i);
		}
		t->old[i] = g->mc[i];
		g->mc[i] = NULL;
	}
	rj->out = t;
	rj->last_ns = now_ns();
	pthread_mutex_lock(&rj->lock);
	rj->todo = t;
	pthread_cond_signal(&rj->wake);
	pthread_mutex_unlock(&rj->lock);
}

static struct rejoin_want *want_of(struct rejoin_try *t, const struct ckpt_region *r)
{
	const struct gregion *gr = r->be;

	for (unsigned int w = 0; w < t->nwant; w++)
		if (strcmp(t->want[w].name, r->geo.name) == 0 &&
		    t->want[w].desc.group_id == gr->desc.group_id)
			return &t->want[w];
	return NULL;
}

/* Say once per reason why a member stays out. */
static void rejoin_log_out(struct group *g, unsigned int i, int rc)
{
	if (g->rj->logged[i] == rc)
		return;
	g->rj->logged[i] = rc;
	ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
		 "member %u (%s) still out: %s; tried again every second", i, g->member[i],
		 strerror(-rc));
}

/* Member @p i answered the try: it takes part again in every region it holds as ours. */
static void rejoin_adopt(struct ckpt_client *c, struct rejoin_try *t, unsigned int i)
{
	struct group *g = c->be;

	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next)
		if (want_of(t, r) == NULL) {
			/* A region opened after the try left: try again with it. */
			rejoin_log_out(g, i, -EAGAIN);
			return;
		}
	g->mc[i] = t->mc[i];
	t->mc[i] = NULL;
	g->err[i] = 0;
	g->rj->logged[i] = 0;
	ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT, "member %u (%s) answers again", i, g->member[i]);
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next) {
		struct rejoin_want *w = want_of(t, r);
		struct gregion *gr = r->be;

		if (w->rc[i] == -EEXIST) {
			gr->st[i] = CKPT_MEMBER_FOREIGN;
			ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
				 "region %s: member %u (%s) holds a region of that name that is "
				 "not this group's; it stays out of this region",
				 r->geo.name, i, g->member[i]);
			continue;
		}
		gr->mr[i] = w->mr[i];
		w->mr[i] = NULL;
		ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT, "region %s: member %u (%s) %s",
			 r->geo.name, i, g->member[i],
			 w->created[i] ? "had lost it: created again, to be rebuilt whole"
				       : "still holds it: what it missed is rebuilt");
		member_join(r, i);
		rebuild_start(gr);
	}
	/* Member regions of regions closed since the try left. */
	for (unsigned int w = 0; w < t->nwant; w++)
		ckpt_region_close(&t->want[w].mr[i]);
}

/*
 * The poll's part: adopt what a finished try brought back (once no region is halfway
 * through posting a segment, so every member stands at the same ring position), and hand
 * the next try over once a second has passed.
 */
static void rejoin_step(struct ckpt_client *c)
{
	struct group *g = c->be;
	struct rejoin *rj = g->rj;
	struct rejoin_try *t;

	if (rj == NULL)
		return;
	if (rj->out != NULL) {
		pthread_mutex_lock(&rj->lock);
		t = rj->done;
		pthread_mutex_unlock(&rj->lock);
		if (t == NULL)
			return;
		for (struct ckpt_region *r = c->regions; r != NULL; r = r->next)
			if (((struct gregion *)r->be)->pend)
				return;
		pthread_mutex_lock(&rj->lock);
		rj->done = NULL;
		pthread_mutex_unlock(&rj->lock);
		rj->out = NULL;
		for (unsigned int i = 0; i < g->n; i++) {
			if (!(t->mask & (1u << i)))
				continue;
			if (t->rc[i] != 0)
				rejoin_log_out(g, i, t->rc[i]);
			else
				rejoin_adopt(c, t, i);
		}
		/* What was not adopted has nothing posted: closing it does not wait. */
		try_free(t);
	}
	if (now_ns() - rj->last_ns >= REJOIN_EVERY)
		rejoin_launch(c);
}

/* ---- poll and health ------------------------------------------------------------------- */

static int group_poll(struct ckpt_client *c)
{
	struct group *g = c->be;
	int n = 0;

	rejoin_step(c);
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next)
		progress_writes(r->be);
	for (unsigned int i = 0; i < g->n; i++) {
		int rc;

		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		rc = ckpt_poll(g->mc[i]);
		if (rc < 0)
			member_down(g, i, rc);
		else
			n += rc;
	}
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next) {
		struct gregion *gr = r->be;

		if (live(gr) < need(g)) {
			ckpt_log(
				CKPT_LOG_ERR, LOG_COMPONENT,
				"region %s: %u members left, %u needed: it can take no more writes",
				r->geo.name, live(gr), need(g));
			return -EIO;
		}
		complete_barriers(r);
		if (r->geo.mode == PMU_MODE_OVERWRITE)
			compact_step(r);
		rebuild_step(r);
	}
	return n;
}

int ckpt_group_health(struct ckpt_region *r, bool scan, struct ckpt_group_health *out)
{
	struct walk_stats ws = {0};
	struct gregion *gr;
	struct group *g;
	struct images im;
	int rc = 0;

	if (r == NULL || out == NULL || r->cl->records != &ckpt_group_ops)
		return -EINVAL;
	gr = r->be;
	g = gr->g;
	memset(out, 0, sizeof(*out));
	snprintf(out->code, sizeof(out->code), "%s", code_name(g->ec.code));
	out->k = g->ec.k;
	out->m = g->ec.m;
	out->members = g->n;
	for (unsigned int i = 0; i < g->n; i++) {
		snprintf(out->member[i].target, sizeof(out->member[i].target), "%s", g->member[i]);
		out->member[i].state =
			member_failed(g, i) || g->mc[i] == NULL ? CKPT_MEMBER_DOWN : gr->st[i];
	}
	out->rebuilding = gr->rb_active;
	out->rebuild_mask = gr->rb_mask;
	out->rebuild_done = (gr->rb_pos < gr->rb_end ? gr->rb_pos : gr->rb_end) - gr->rb_start;
	out->rebuild_total = gr->rb_end - gr->rb_start;
	out->encoded_segments = gr->enc_segments;
	out->encoded_bytes = gr->enc_bytes;
	out->encode_ns = gr->enc_ns;
	out->relogged_bytes = gr->relog_bytes;
	if (!scan)
		return 0;
	rc = images_load(gr, gr->rb_mask, &im);
	if (rc)
		return rc;
	out->tail = im.tail;
	out->head = im.head;
	if (live(gr) < need(g))
		rc = -EIO;
	else
		walk(gr, &im, NULL, NULL, &ws, NULL);
	images_free(&im);
	out->segments = ws.segments;
	out->degraded = ws.degraded;
	out->lost = ws.lost;
	out->nfirst_bad = ws.nfirst_bad;
	memcpy(out->first_bad, ws.first_bad, sizeof(ws.first_bad));
	for (unsigned int i = 0; i < g->n; i++) {
		out->member[i].missing = ws.missing[i];
		out->member[i].damaged = ws.damaged[i];
		if (out->member[i].state == CKPT_MEMBER_DOWN)
			out->member[i].missing = ws.segments;
	}
	return rc;
}

/*
 * Another client wrote the region since this one opened it (a standby taking over its
 * primary's regions): read every usable member's ring words again and stand where the
 * furthest member stands, as group_open does, so that the next segment goes after the last
 * one the other writer published. What this client's shadow holds is no longer the newest
 * per pair, nor does it know where the other writer's segments lie: both are read again from
 * the log before the next cleaning pass.
 */
static int group_refresh(struct ckpt_region *r)
{
	struct gregion *gr = r->be;
	unsigned int ok = 0;

	if (gr->seg_len != 0 || gr->pend || gr->bq_n != 0 || gr->comp != COMPACT_IDLE ||
	    gr->rb_active)
		return -EBUSY;
	for (unsigned int i = 0; i < gr->g->n; i++) {
		int rc;

		if (!member_ok(gr, i))
			continue;
		rc = ckpt_region_refresh(gr->mr[i]);
		if (rc == -EBUSY)
			return rc;
		if (rc) {
			member_down(gr->g, i, rc);
			continue;
		}
		ok++;
	}
	if (ok < need(gr->g)) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s: %u members answer, %u needed to go on writing it", r->geo.name,
			 ok, need(gr->g));
		return -EIO;
	}
	align_rings(gr);
	if (gr->shadow != NULL && gr->shadow_loaded) {
		memset(gr->shadow, 0, (size_t)(gr->desc.nslots / 2) * gr->desc.slot_size);
		memset(gr->where, 0, (size_t)(gr->desc.nslots / 2) * sizeof(*gr->where));
		gr->mark_head = gr->mark_n = 0; /* learnt again from the log with the shadow */
		gr->shadow_loaded = false;
	}
	return 0;
}

/*
 * group_stat, with the lease as every answering member holding the region sees it: alive
 * when alive on any, and the furthest expiry. A writer renews the lease on the members it
 * reaches; a member that was down meanwhile (and that the writer has not connected again)
 * holds an old expiry, and must not make a live lease look expired.
 */
static int group_stat_leases(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
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
	}
	return rc;
}

const struct ckpt_record_ops ckpt_group_ops = {
	.target =
		{
			.scheme = "group",
			.connect = group_connect,
			.disconnect = group_disconnect,
			.create = group_create,
			.open = group_open,
			.close = group_close,
			.remove = group_remove,
			.list = group_list,
			.stat = group_stat_leases,
			.lease = group_lease,
			.barrier = group_barrier,
			.poll = group_poll,
		},
	.put = group_put,
	.scan = group_scan,
	.log_read = group_log_read,
	.refresh = group_refresh,
};
