/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Members that come back. A member that is down is tried again every REJOIN_EVERY on a
 * thread of the group client's own: connecting and opening (or creating) its member
 * regions take round trips and timeouts that ckpt_poll() must never wait for. The poll
 * hands a try over and later adopts what came back; until then the thread touches only
 * the try's own connections.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"

#define REJOIN_EVERY 1000000000ull /* ns: a member that is down is tried again this often */

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
	/* the group's binding when the try was handed over: each member is bound again */
	bool bound;
	char bind_name[PMU_NAME_MAX];
	uint64_t bind_epoch;
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
static int try_region(struct rejoin_try *t, unsigned int i, struct rejoin_want *w)
{
	struct ckpt_gdesc d;
	int rc = group_member_open(t->mc[i], w->name, &w->mr[i], &d, NULL);

	/* Then made again below; the poll logs it as created again (this thread is quiet). */
	if (rc == -EINVAL && group_member_abandoned(t->mc[i], w->name))
		rc = -ENOENT;

	if (rc == 0 && (d.group_id != w->desc.group_id || d.member != i ||
			ckpt_region_geometry(w->mr[i])->ring_size != w->ring_size)) {
		ckpt_region_close(&w->mr[i]);
		rc = -EINVAL;
	}
	if (rc == -EINVAL)
		return -EEXIST;
	if (rc == -ENOENT) {
		rc = group_member_create(t->mc[i], &w->mp, &w->desc, i, w->ring_size, &w->mr[i]);
		w->created[i] = rc == 0;
	}
	return rc;
}

/*
 * Bind member @p i's new connection to the group client's epoch. A member that missed takes
 * while it was down is behind that epoch (EINVAL: nothing to bind to there): it is brought
 * up to it first, one take at a time from where it stands, through the lease region the try
 * opened on it (none open: it stays unbound, and the majority fences). ESTALE keeps the
 * member out: this client was fenced.
 */
static int try_bind(struct rejoin_try *t, unsigned int i)
{
	struct ckpt_region_info mi;
	struct ckpt_region *lease = NULL;
	int rc = ckpt_epoch_bind(t->mc[i], t->bind_name, t->bind_epoch);

	if (rc != -EINVAL || ckpt_region_stat(t->mc[i], t->bind_name, &mi) != 0 ||
	    mi.r.epoch >= t->bind_epoch)
		return rc;
	for (unsigned int w = 0; w < t->nwant; w++)
		if (strcmp(t->want[w].name, t->bind_name) == 0)
			lease = t->want[w].mr[i];
	if (lease == NULL)
		return 0;
	for (uint64_t e = mi.r.epoch, next; e < t->bind_epoch; e = next) {
		rc = ckpt_epoch_take(lease, e, &next);
		if (rc != 0)
			return rc;
	}
	return ckpt_epoch_bind(t->mc[i], t->bind_name, t->bind_epoch);
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
		/* A new connection is bound to nothing: bound before it takes writes. */
		if (t->bound && t->rc[i] == 0)
			t->rc[i] = try_bind(t, i);
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

int group_rejoin_init(struct group *g, const struct ckpt_client_opts *o)
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
void group_rejoin_fini(struct group *g)
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
	t->bound = c->bound.on;
	snprintf(t->bind_name, sizeof(t->bind_name), "%s", c->bound.lease);
	t->bind_epoch = c->bound.epoch;
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next, w++) {
		struct gregion *gr = r->be;
		struct rejoin_want *wt = &t->want[w];

		snprintf(wt->name, sizeof(wt->name), "%s", r->geo.name);
		snprintf(wt->owner, sizeof(wt->owner), "%s", r->geo.owner);
		wt->mp = group_member_params(&r->geo, g->ec.k);
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
	rj->last_ns = group_now_ns();
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
		group_member_join(r, i);
		group_rebuild_start(gr);
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
void group_rejoin_step(struct ckpt_client *c)
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
	if (group_now_ns() - rj->last_ns >= REJOIN_EVERY)
		rejoin_launch(c);
}
