/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A redundancy group as a target: its syntax, the connection to every member, region
 * create and open, the record put, the poll that drives every layer, takeover (refresh),
 * the ops table that client.c calls, and the entry points of ckpt_group.h (health,
 * rebuild). The layers below are listed, bottom first, in group_internal.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"

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

static void group_free(struct group *g)
{
	group_rejoin_fini(g);
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
	/* k and m as given may be anything: their sum is compared in 64 bits. */
	rc = g->n == (uint64_t)k + m ? ckpt_ec_init(&g->ec, code, k, m) : -EINVAL;
	if (rc != 0 || g->n < 2) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: %s needs %llu members (at least 2, at most %u), %u given", c->target,
			 ckpt_ec_name(code), (unsigned long long)k + m, MAXM, g->n);
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
			 ckpt_ec_name(code), need(g));
		rc = -EIO;
		goto err_free;
	}
	rc = group_rejoin_init(g, &o);
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

static void gregion_free(struct gregion *gr)
{
	group_region_close(gr);
	group_write_fini(gr);
	group_images_free(&gr->rb);
	group_shadow_fini(gr);
	free(gr);
}

static int group_create(struct ckpt_client *c, const struct pmu_region_params *p,
			struct ckpt_region *r)
{
	struct gregion *gr;
	int rc;

	gr = calloc(1, sizeof(*gr));
	if (gr == NULL)
		return -ENOMEM;
	gr->g = c->be;
	rc = group_region_create(gr, p, &r->geo);
	if (rc)
		goto err_free;
	rc = group_write_init(gr);
	if (rc == 0)
		rc = group_shadow_init(gr, true); /* a new region's log holds nothing to load */
	if (rc)
		goto err_delete;
	r->be = gr;
	return 0;

err_delete:
	group_region_delete(gr, p->name);
err_free:
	gregion_free(gr);
	return rc;
}

static int group_open(struct ckpt_client *c, const char *name, struct ckpt_region *r)
{
	struct gregion *gr;
	bool is_pmem = false;
	int rc;

	gr = calloc(1, sizeof(*gr));
	if (gr == NULL)
		return -ENOMEM;
	gr->g = c->be;
	rc = group_region_open(gr, name, &r->geo, &is_pmem);
	if (rc == 0)
		rc = group_write_init(gr);
	if (rc == 0)
		rc = group_shadow_init(gr, false);
	if (rc)
		goto err_free;
	group_ring_align(gr);
	r->is_pmem = is_pmem;
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

static int group_put(struct ckpt_region *r, const uint8_t *rec, uint32_t len)
{
	struct gregion *gr = r->be;
	int rc;

	if (live(gr) < need(gr->g))
		return -EIO;
	if (gr->shadow != NULL &&
	    group_ring_next(gr) - group_ring_tail(gr) + group_clean_room(gr) > gr->ring_size)
		return -EAGAIN; /* what the cleaner may have to log must fit: it frees the ring */
	rc = group_seg_add(gr, rec, len, r->posted + 1);
	if (rc == 0 && r->geo.mode == PMU_MODE_OVERWRITE)
		group_shadow_keep(gr, rec, len);
	return rc;
}

static int group_poll(struct ckpt_client *c)
{
	struct group *g = c->be;
	int n = 0;

	group_rejoin_step(c);
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next)
		group_write_progress(r->be);
	for (unsigned int i = 0; i < g->n; i++) {
		int rc;

		if (g->mc[i] == NULL || member_failed(g, i))
			continue;
		rc = ckpt_poll(g->mc[i]);
		if (rc < 0)
			group_member_down(g, i, rc);
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
		group_barriers_complete(r);
		if (r->geo.mode == PMU_MODE_OVERWRITE)
			group_clean_step(r);
		group_rebuild_step(r);
	}
	return n;
}

int ckpt_group_rebuild(struct ckpt_region *r)
{
	if (r == NULL || r->cl->records != &ckpt_group_ops)
		return -EINVAL;
	return group_rebuild(r);
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
	snprintf(out->code, sizeof(out->code), "%s", ckpt_ec_name(g->ec.code));
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
	rc = group_images_load(gr, gr->rb_mask, &im);
	if (rc)
		return rc;
	out->tail = im.tail;
	out->head = im.head;
	if (live(gr) < need(g))
		rc = -EIO;
	else
		group_walk(gr, &im, NULL, NULL, &ws, NULL);
	group_images_free(&im);
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
			group_member_down(gr->g, i, rc);
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
	group_ring_align(gr);
	group_shadow_forget(gr);
	return 0;
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
			.epoch_take = group_epoch_take,
			.epoch_bind = group_epoch_bind,
			/* .lease_watch: none (see group_epoch_take in group_internal.h) */
		},
	.put = group_put,
	.scan = group_scan,
	.log_read = group_log_read,
	.refresh = group_refresh,
};
