/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv: the checkpoint server. Holds a PMU store, hands authenticated tenants the keys
 * to their regions over libfabric, persists ranges on request and applies journals (main.c).
 * This file: the requests, on the sessions they come from; no sockets and no threads.
 *
 * Threads: main (signals), per listener an accept thread that also runs every handshake
 * (handshake.c) and a progress thread (fabric.c), one thread per authenticated session
 * (session.c: a client that stalls or misbehaves only holds its own thread), and one
 * journal thread.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fi_errno.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG "ckptsrv"

uint64_t ckptsrv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *ckptsrv_type_name(uint16_t t)
{
	switch (t) {
	case CKPT_MSG_CREATE:
		return "CREATE";
	case CKPT_MSG_OPEN:
		return "OPEN";
	case CKPT_MSG_CLOSE:
		return "CLOSE";
	case CKPT_MSG_DELETE:
		return "DELETE";
	case CKPT_MSG_LIST:
		return "LIST";
	case CKPT_MSG_STAT:
		return "STAT";
	case CKPT_MSG_PERSIST:
		return "PERSIST";
	case CKPT_MSG_LEASE:
		return "LEASE";
	case CKPT_MSG_PING:
		return "PING";
	case CKPT_MSG_TAKE:
		return "TAKE";
	case CKPT_MSG_BIND:
		return "BIND";
	case CKPT_MSG_WATCH:
		return "WATCH";
	}
	return "?";
}

int ckptsrv_sync_init(struct ckptsrv *srv)
{
	pthread_condattr_t attr;
	int ret;

	ret = pthread_mutex_init(&srv->lock, NULL);
	if (ret == 0)
		ret = pthread_cond_init(&srv->journal_kick, NULL);
	if (ret == 0)
		ret = pthread_cond_init(&srv->sessions_gone, NULL);
	if (ret == 0)
		ret = pthread_condattr_init(&attr);
	if (ret == 0) {
		/* WATCH deadlines are monotonic: a clock step must not stretch a long poll. */
		ret = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		if (ret == 0)
			ret = pthread_cond_init(&srv->lease_change, &attr);
		pthread_condattr_destroy(&attr);
	}
	return -ret;
}

static int printable_name(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '/')
			return 0;
	return 1;
}

static uint64_t ring_word(const struct ckptsrv *srv, const struct pmu_region_info *r, uint64_t off)
{
	const uint64_t *p =
		(const uint64_t *)((const uint8_t *)pmu_region_base(srv->store, r) + off);

	/* Clients write these words remotely; read each once, whole. */
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void fill_info(const struct ckptsrv *srv, const struct pmu_region_info *r,
		      struct ckpt_region_info *out)
{
	memset(out, 0, sizeof(*out));
	out->r = *r;
	out->is_pmem = pmu_store_is_pmem(srv->store) != 0;
	out->lease_alive = r->lease_ns > pmu_now_ns();
	out->ring_head = ring_word(srv, r, PMU_REGION_HEAD_OFF);
	out->ring_tail = ring_word(srv, r, PMU_REGION_TAIL_OFF);
	/* The tenant writes these words: a head below the tail or more than a ring ahead of it
	 * would not decode at the client, so it is reported as the nearest sane value. */
	if (out->ring_head < out->ring_tail)
		out->ring_head = out->ring_tail;
	if (out->ring_head - out->ring_tail > r->ring_size)
		out->ring_head = out->ring_tail + r->ring_size;
}

/* Is region @p index open in a session other than @p self? Caller holds the lock. */
static int open_elsewhere(struct ckptsrv *srv, const struct ckptsrv_session *self, uint32_t index)
{
	for (struct ckptsrv_session *s = srv->sessions; s != NULL; s = s->next) {
		if (s == self)
			continue;
		for (struct ckptsrv_open *o = s->opens; o != NULL; o = o->next)
			if (o->info.index == index)
				return 1;
	}
	return 0;
}

static void open_free(struct ckptsrv_open *o)
{
	if (o->mr != NULL)
		fi_close(&o->mr->fid);
	free(o);
}

/* Register a region for this session and add it to its opens. Caller holds the lock. */
static int open_region(struct ckptsrv_session *s, const struct pmu_region_info *info,
		       struct ckpt_msg *rep)
{
	struct ckptsrv *srv = s->l->srv;
	struct ckptsrv_open *o;
	int ret;

	/* Each handle pins a registration in the provider: one client may not hoard them. */
	ret = ckptsrv_quota_open(s);
	if (ret < 0)
		return ret;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	if (s->nopens >= CKPTSRV_MAX_OPENS) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "tenant %s from %s holds %u handles in one session; open refused "
				 "(EMFILE)",
				 s->tenant, s->peer, s->nopens);
		free(o);
		return -EMFILE;
	}
	o->info = *info;
	o->base = pmu_region_base(srv->store, info);
	ret = ckptsrv_mr_reg(s->l, o->base, info->size, &o->mr, &o->key);
	if (ret < 0) {
		free(o);
		return ret;
	}
	o->handle = ++srv->next_handle;
	o->next = s->opens;
	s->opens = o;
	s->nopens++;
	rep->u.opened.handle = o->handle;
	rep->u.opened.info = *info;
	rep->u.opened.is_pmem = pmu_store_is_pmem(srv->store) ? 1 : 0;
	rep->u.opened.rkey = o->key;
	rep->u.opened.base = s->l->virt_addr ? (uint64_t)(uintptr_t)o->base : 0;
	return 0;
}

static struct ckptsrv_open *find_handle(struct ckptsrv_session *s, uint64_t handle)
{
	for (struct ckptsrv_open *o = s->opens; o != NULL; o = o->next)
		if (o->handle == handle)
			return o;
	return NULL;
}

static void close_handle(struct ckptsrv_session *s, struct ckptsrv_open *victim)
{
	for (struct ckptsrv_open **pp = &s->opens; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			open_free(victim);
			s->nopens--;
			return;
		}
	}
}

/* ---- fencing (TAKE, BIND) ---- */

/*
 * Withdraw @p t's remote keys and answer everything it asks -ESTALE from now on: a newer
 * epoch than its own was taken (@p epoch) on its lease region, or (@p gone) that region was
 * deleted. Its handles stay (a CLOSE still drops them), keyless. Caller holds the lock.
 */
static void fence_session(struct ckptsrv *srv, struct ckptsrv_session *t, uint64_t epoch, bool gone)
{
	char why[64];

	unsigned int keys = 0;

	if (t->fenced)
		return;
	for (struct ckptsrv_open *o = t->opens; o != NULL; o = o->next) {
		if (o->mr != NULL) {
			fi_close(&o->mr->fid);
			o->mr = NULL;
			keys++;
		}
	}
	__atomic_store_n(&t->fenced, true, __ATOMIC_RELEASE);
	if (gone)
		snprintf(why, sizeof(why), "the region was deleted");
	else
		snprintf(why, sizeof(why), "epoch %llu was taken", (unsigned long long)epoch);
	ckpt_log(CKPT_LOG_NOTICE, LOG,
		 "tenant %s from %s, bound to epoch %llu of %s, is fenced: %s; %u remote key(s) "
		 "withdrawn, its requests are answered ESTALE",
		 t->tenant, t->peer, (unsigned long long)t->bind_epoch, t->bind_region.name, why,
		 keys);
	/* A fenced session waiting in WATCH is answered at once. */
	pthread_cond_broadcast(&srv->lease_change);
}

/*
 * Whether @p s may go on: not fenced, and if bound, its lease region still at its epoch.
 * A binding whose region is gone (deleted, its entry reused) counts as overtaken: nothing
 * vouches for it any more. Called on the session's own thread, the only one that changes its
 * binding; the epoch word is one atomic load (pmu_region_epoch()). With @p locked the
 * caller holds the lock, else it is taken to fence.
 * @return 0 or -ESTALE.
 */
static int binding_check(struct ckptsrv_session *s, bool locked)
{
	struct ckptsrv *srv = s->l->srv;
	uint64_t epoch = 0;
	bool gone;

	if (__atomic_load_n(&s->fenced, __ATOMIC_ACQUIRE))
		return -ESTALE;
	if (!s->bound)
		return 0;
	gone = pmu_region_epoch(srv->store, &s->bind_region, &epoch) != 0;
	if (!gone && epoch <= s->bind_epoch)
		return 0;
	if (!locked)
		pthread_mutex_lock(&srv->lock);
	fence_session(srv, s, epoch, gone);
	if (!locked)
		pthread_mutex_unlock(&srv->lock);
	return -ESTALE;
}

static void bind_session(struct ckptsrv_session *s, const struct pmu_region_info *lease,
			 uint64_t epoch)
{
	s->bound = true;
	s->bind_region = *lease;
	s->bind_epoch = epoch;
}

static bool same_lease(const struct pmu_region_info *a, const struct pmu_region_info *b)
{
	return a->index == b->index && a->created_ns == b->created_ns &&
	       strcmp(a->owner, b->owner) == 0 && strcmp(a->name, b->name) == 0;
}

/*
 * TAKE: epoch seen -> seen + 1 of the lease region the handle opens, a compare-and-swap in
 * the store (pmu_region_epoch_cas(), durable before the answer). The winner is bound to the
 * new epoch; every other session bound to an older one of that region is fenced.
 */
static int do_take(struct ckptsrv_session *s, const struct ckpt_msg *req, struct ckpt_msg *rep)
{
	struct ckptsrv *srv = s->l->srv;
	struct ckptsrv_open *o = find_handle(s, req->u.take.handle);
	uint64_t seen = req->u.take.seen, now = 0;
	int ret;

	if (o == NULL)
		return -EBADF;
	if (strcmp(o->info.owner, s->tenant) != 0)
		return -EACCES;
	if (seen == UINT64_MAX)
		return -EOVERFLOW;
	ret = pmu_region_epoch_cas(srv->store, o->info.owner, o->info.name, seen, seen + 1);
	if (ret == -ESTALE) {
		pmu_region_epoch(srv->store, &o->info, &now);
		ckpt_log(CKPT_LOG_NOTICE, LOG,
			 "tenant %s from %s lost epoch %llu of %s: it is at %llu (someone else "
			 "took it)",
			 s->tenant, s->peer, (unsigned long long)seen + 1, o->info.name,
			 (unsigned long long)now);
		return ret;
	}
	if (ret < 0)
		return ret;
	bind_session(s, &o->info, seen + 1);
	ckpt_log(CKPT_LOG_NOTICE, LOG, "tenant %s from %s took epoch %llu of %s", s->tenant,
		 s->peer, (unsigned long long)seen + 1, o->info.name);
	for (struct ckptsrv_session *t = srv->sessions; t != NULL; t = t->next)
		if (t != s && t->bound && same_lease(&t->bind_region, &o->info) &&
		    t->bind_epoch < seen + 1)
			fence_session(srv, t, seen + 1, false);
	rep->u.taken.epoch = seen + 1;
	return 0;
}

/*
 * BIND: this session follows epoch E of lease region N: refused ESTALE if N is already past
 * E, EINVAL if N never reached E (only an epoch a take gave can be bound to, as pmem: does).
 */
static int do_bind(struct ckptsrv_session *s, const struct ckpt_msg *req)
{
	struct pmu_region_info info;
	int ret = pmu_region_lookup(s->l->srv->store, s->tenant, req->u.bind.name, &info);

	if (ret < 0)
		return ret;
	if (info.epoch > req->u.bind.epoch) {
		ckpt_log(CKPT_LOG_NOTICE, LOG,
			 "tenant %s from %s asked to bind to epoch %llu of %s, which is at %llu: "
			 "refused (ESTALE)",
			 s->tenant, s->peer, (unsigned long long)req->u.bind.epoch, info.name,
			 (unsigned long long)info.epoch);
		return -ESTALE;
	}
	if (info.epoch < req->u.bind.epoch) {
		ckpt_log(CKPT_LOG_WARNING, LOG,
			 "tenant %s from %s asked to bind to epoch %llu of %s, which is only at "
			 "%llu: "
			 "refused (EINVAL; bind to an epoch a take gave)",
			 s->tenant, s->peer, (unsigned long long)req->u.bind.epoch, info.name,
			 (unsigned long long)info.epoch);
		return -EINVAL;
	}
	bind_session(s, &info, req->u.bind.epoch);
	ckpt_log(CKPT_LOG_INFO, LOG, "tenant %s from %s bound to epoch %llu of %s", s->tenant,
		 s->peer, (unsigned long long)req->u.bind.epoch, info.name);
	return 0;
}

/* ---- the lease and its holder's death ---- */

/* @p s renewed the lease of @p r last: its session's end releases it. Caller holds the lock. */
static void note_holder(struct ckptsrv_session *s, const struct pmu_region_info *r)
{
	struct ckptsrv_lease_holder *h = &s->l->srv->holder[r->index];

	h->s = s;
	h->created_ns = r->created_ns;
	snprintf(h->name, sizeof(h->name), "%s", r->name);
}

/*
 * @p s ends: every lease it renewed last and that still runs is released now, as an expired
 * nonzero expiry persisted in the store, and WATCH waiters are woken. Not when the server
 * stops: its clients are alive and come back to it, and a standby must not take over then.
 * Caller holds the lock.
 */
static void release_leases_of(struct ckptsrv_session *s)
{
	struct ckptsrv *srv = s->l->srv;
	unsigned int released = 0;

	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		struct ckptsrv_lease_holder *h = &srv->holder[i];
		struct pmu_region_info cur;
		uint64_t now;

		if (h->s != s)
			continue;
		h->s = NULL;
		if (srv->stop || pmu_region_lookup(srv->store, s->tenant, h->name, &cur) != 0 ||
		    cur.index != i || cur.created_ns != h->created_ns)
			continue;
		now = pmu_now_ns();
		if (cur.lease_ns <= now)
			continue; /* it ran out or was never renewed: nothing to release */
		if (pmu_region_lease(srv->store, s->tenant, h->name, now) != 0)
			continue;
		ckpt_log(
			CKPT_LOG_NOTICE, LOG,
			"tenant %s's session from %s holding the lease on %s ended: lease released",
			s->tenant, s->peer, h->name);
		released++;
	}
	if (released > 0)
		pthread_cond_broadcast(&srv->lease_change);
}

/*
 * WATCH: wait until the lease on the handle's region is free (released, run out, its
 * holder's session ended), at most the timeout asked for and at most half the idle timeout
 * (the client asks again: a session's thread is never held for long, and a watcher that
 * went away is noticed). Woken by a release, at the lease's expiry, by fencing and at
 * shutdown. Caller holds the lock; it is let go while waiting.
 * @return 0 (free), -ETIMEDOUT, -ESTALE (this session was fenced meanwhile), -ESHUTDOWN.
 */
static int do_watch(struct ckptsrv_session *s, const struct ckpt_msg *req)
{
	struct ckptsrv *srv = s->l->srv;
	struct ckptsrv_open *o = find_handle(s, req->u.watch.handle);
	uint64_t cap = srv->cfg.idle_timeout_ms / 2, deadline;
	char name[PMU_NAME_MAX];

	if (o == NULL)
		return -EBADF;
	snprintf(name, sizeof(name), "%s", o->info.name);
	deadline =
		ckptsrv_now_ms() + (req->u.watch.timeout_ms < cap ? req->u.watch.timeout_ms : cap);
	for (;;) {
		struct pmu_region_info cur;
		uint64_t now_ns, now, wait_ms;
		struct timespec until;
		int ret = pmu_region_lookup(srv->store, s->tenant, name, &cur);

		if (ret < 0)
			return ret;
		now_ns = pmu_now_ns();
		if (cur.lease_ns <= now_ns)
			return 0;
		if (srv->stop)
			return -ESHUTDOWN;
		if (s->fenced)
			return -ESTALE;
		now = ckptsrv_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		wait_ms = deadline - now;
		if ((cur.lease_ns - now_ns) / 1000000 + 1 < wait_ms)
			wait_ms = (cur.lease_ns - now_ns) / 1000000 + 1;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(wait_ms / 1000);
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&srv->lease_change, &srv->lock, &until);
	}
}

static int do_create(struct ckptsrv_session *s, const struct ckpt_msg *req, struct ckpt_msg *rep)
{
	struct ckptsrv *srv = s->l->srv;
	struct pmu_region_params p = {
		.name = req->u.create.name,
		.owner = s->tenant,
		.mode = (enum pmu_mode)req->u.create.mode,
		.size = req->u.create.size,
		.slot_size = req->u.create.slot_size,
		.ring_size = req->u.create.ring_size,
	};
	struct pmu_region_info info;
	int ret;

	ret = ckptsrv_quota_create(s, &p);
	if (ret < 0)
		return ret;
	if (!printable_name(p.name))
		return -EINVAL;
	ret = pmu_region_create(srv->store, &p, &info);
	if (ret < 0)
		return ret;
	ret = open_region(s, &info, rep);
	if (ret < 0) {
		/* Nobody got a key to it: a region that cannot be opened is not left behind. */
		pmu_region_delete(srv->store, info.owner, info.name);
		return ret;
	}
	ckpt_log(CKPT_LOG_INFO, LOG,
		 "tenant %s from %s created region %s (%llu bytes, mode %d, handle %llu)",
		 s->tenant, s->peer, info.name, (unsigned long long)info.size, (int)info.mode,
		 (unsigned long long)rep->u.opened.handle);
	return 0;
}

/* Lookup in the tenant's namespace: another tenant's region is as missing as none (ckpt.h). */
static int lookup_own(struct ckptsrv_session *s, const char *name, struct pmu_region_info *info,
		      const char *op)
{
	int ret = pmu_region_lookup(s->l->srv->store, s->tenant, name, info);

	if (ret == -ENOENT)
		ckpt_log(CKPT_LOG_DEBUG, LOG,
			 "%s of region %s by tenant %s from %s: no such region", op, name,
			 s->tenant, s->peer);
	return ret;
}

static int do_open(struct ckptsrv_session *s, const struct ckpt_msg *req, struct ckpt_msg *rep)
{
	struct pmu_region_info info;
	int ret = lookup_own(s, req->u.name.name, &info, "OPEN");

	if (ret < 0)
		return ret;
	ret = open_region(s, &info, rep);
	if (ret == 0)
		ckpt_log(CKPT_LOG_INFO, LOG, "tenant %s from %s opened region %s (handle %llu)",
			 s->tenant, s->peer, info.name, (unsigned long long)rep->u.opened.handle);
	return ret;
}

static int do_delete(struct ckptsrv_session *s, const struct ckpt_msg *req)
{
	struct ckptsrv *srv = s->l->srv;
	struct pmu_region_info info;
	struct ckptsrv_open *o, *next;
	int ret = lookup_own(s, req->u.name.name, &info, "DELETE");

	if (ret < 0)
		return ret;
	if (open_elsewhere(srv, s, info.index)) {
		ckpt_log(CKPT_LOG_NOTICE, LOG,
			 "DELETE of region %s by tenant %s from %s refused: open by another client",
			 info.name, s->tenant, s->peer);
		return -EBUSY;
	}
	/* The caller's own handles go with the region: their memory is about to be reused. */
	for (o = s->opens; o != NULL; o = next) {
		next = o->next;
		if (o->info.index == info.index)
			close_handle(s, o);
	}
	ret = pmu_region_delete(srv->store, info.owner, info.name);
	if (ret == 0)
		ckpt_log(CKPT_LOG_INFO, LOG, "tenant %s from %s deleted region %s", s->tenant,
			 s->peer, info.name);
	return ret;
}

static int do_list(struct ckptsrv_session *s, struct ckpt_msg *rep)
{
	struct ckptsrv *srv = s->l->srv;
	struct pmu_region_info *all = calloc(PMU_MAX_REGIONS, sizeof(*all));
	struct ckpt_region_info *mine = calloc(PMU_MAX_REGIONS, sizeof(*mine));
	int n, ret = 0;

	if (all == NULL || mine == NULL) {
		ret = -ENOMEM;
		goto out_free;
	}
	n = pmu_region_list(srv->store, all, PMU_MAX_REGIONS);
	if (n > PMU_MAX_REGIONS)
		n = PMU_MAX_REGIONS;
	rep->u.list.total = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(all[i].owner, s->tenant) != 0)
			continue;
		fill_info(srv, &all[i], &mine[rep->u.list.total++]);
	}
	rep->u.list.n = rep->u.list.total;
	rep->u.list.items = mine;
	mine = NULL; /* the caller frees it after sending */
out_free:
	free(mine);
	free(all);
	return ret;
}

static int do_stat(struct ckptsrv_session *s, const struct ckpt_msg *req, struct ckpt_msg *rep)
{
	struct pmu_region_info info;
	int ret = lookup_own(s, req->u.name.name, &info, "STAT");

	if (ret < 0)
		return ret;
	fill_info(s->l->srv, &info, &rep->u.stat);
	return 0;
}

static int do_persist(struct ckptsrv_session *s, const struct ckpt_msg *req)
{
	struct ckptsrv *srv = s->l->srv;
	struct ckptsrv_open *o = find_handle(s, req->u.persist.handle);
	uint64_t off = req->u.persist.off, len = req->u.persist.len, head = req->u.persist.head;

	if (o == NULL) {
		ckpt_log(CKPT_LOG_WARNING, LOG, "PERSIST from tenant %s at %s: no handle %llu",
			 s->tenant, s->peer, (unsigned long long)req->u.persist.handle);
		return -EBADF;
	}
	if (off > o->info.size || len > o->info.size - off) {
		ckpt_log(CKPT_LOG_WARNING, LOG,
			 "PERSIST from tenant %s at %s refused: [%llu, +%llu) outside region %s "
			 "(%llu bytes)",
			 s->tenant, s->peer, (unsigned long long)off, (unsigned long long)len,
			 o->info.name, (unsigned long long)o->info.size);
		return -EINVAL;
	}
	if (head != 0 && o->info.ring_size == 0) {
		ckpt_log(CKPT_LOG_WARNING, LOG,
			 "PERSIST from tenant %s at %s refused: region %s has no ring to publish a "
			 "head of",
			 s->tenant, s->peer, o->info.name);
		return -EINVAL;
	}
	if (len > 0)
		pmu_persist(srv->store, (uint8_t *)o->base + off, len);
	if (head != 0) {
		/* The records are durable; only now may a reader see the head that covers them. */
		uint64_t *hp = (uint64_t *)((uint8_t *)o->base + PMU_REGION_HEAD_OFF);
		uint64_t tail = le64toh(__atomic_load_n(
				 (uint64_t *)((uint8_t *)o->base + PMU_REGION_TAIL_OFF),
				 __ATOMIC_ACQUIRE)),
			 cur = le64toh(__atomic_load_n(hp, __ATOMIC_ACQUIRE));

		if (!pmu_ring_head_fits(o->info.ring_size, tail, head)) {
			ckpt_log(CKPT_LOG_WARNING, LOG,
				 "PERSIST from tenant %s at %s refused: head %llu is more than a "
				 "ring past the tail %llu of region %s",
				 s->tenant, s->peer, (unsigned long long)head,
				 (unsigned long long)tail, o->info.name);
			return -EINVAL;
		}
		if (head > cur) {
			__atomic_store_n(hp, htole64(head), __ATOMIC_RELEASE);
			pmu_persist(srv->store, hp, sizeof(*hp));
		}
	}
	if (o->info.mode == PMU_MODE_OVERWRITE && o->info.ring_size > 0) {
		pthread_mutex_lock(&srv->lock);
		srv->journal_due = true;
		pthread_cond_signal(&srv->journal_kick);
		pthread_mutex_unlock(&srv->lock);
	}
	return 0;
}

static int do_lease(struct ckptsrv_session *s, const struct ckpt_msg *req)
{
	struct ckptsrv_open *o = find_handle(s, req->u.lease.handle);
	int ret;

	if (o == NULL)
		return -EBADF;
	if (strcmp(o->info.owner, s->tenant) != 0)
		return -EACCES;
	if (req->u.lease.ttl_ms == 0)
		return -EINVAL;
	ret = pmu_region_lease(s->l->srv->store, o->info.owner, o->info.name,
			       pmu_now_ns() + (uint64_t)req->u.lease.ttl_ms * 1000000u);
	if (ret == 0) {
		note_holder(s, &o->info);
		ckpt_log(CKPT_LOG_DEBUG, LOG, "tenant %s renewed its lease on %s for %u ms",
			 s->tenant, o->info.name, req->u.lease.ttl_ms);
	}
	return ret;
}

int ckptsrv_dispatch(struct ckptsrv_session *s, const struct ckpt_msg *req, struct ckpt_msg *rep)
{
	struct ckptsrv *srv = s->l->srv;
	struct ckptsrv_open *o;
	int ret;

	/*
	 * A keepalive is no traffic: idle clients must not keep the progress thread awake. It
	 * answers ESTALE to a fenced session, which is how a client whose one-sided write
	 * failed learns why (lib/ckpt/ofi_ctrl.c).
	 */
	if (req->type == CKPT_MSG_PING)
		return binding_check(s, false);
	__atomic_store_n(&s->l->active_ms, ckptsrv_now_ms(), __ATOMIC_RELAXED);
	/*
	 * PERSIST flushes caches and may take a while, so it runs without the lock: only this
	 * thread changes this session's opens, and DELETE refuses a region open elsewhere. A
	 * TAKE that fences this session between the check and the flush only finds bytes that
	 * landed before it.
	 */
	if (req->type == CKPT_MSG_PERSIST) {
		ret = binding_check(s, false);
		return ret < 0 ? ret : do_persist(s, req);
	}
	pthread_mutex_lock(&srv->lock);
	/* A fenced session, or one whose epoch was overtaken, is answered ESTALE whatever it
	 * asks; its CLOSE still drops the handle. */
	ret = binding_check(s, true);
	if (ret < 0) {
		o = req->type == CKPT_MSG_CLOSE ? find_handle(s, req->u.close.handle) : NULL;
		if (o != NULL)
			close_handle(s, o);
		pthread_mutex_unlock(&srv->lock);
		return ret;
	}
	/*
	 * A wedged endpoint would hang the client inside the provider: refused, but only after
	 * the fence (fuzz_dispatch found a fenced session answered EIO here, not ESTALE).
	 */
	if ((req->type == CKPT_MSG_CREATE || req->type == CKPT_MSG_OPEN) &&
	    __atomic_load_n(&s->l->wedged, __ATOMIC_RELAXED)) {
		pthread_mutex_unlock(&srv->lock);
		CKPT_LOG_LIMITED(CKPT_LOG_ERR, LOG, "%s from tenant %s at %s refused: %s is wedged",
				 ckptsrv_type_name(req->type), s->tenant, s->peer, s->l->url);
		return -EIO;
	}
	switch (req->type) {
	case CKPT_MSG_CREATE:
		ret = do_create(s, req, rep);
		break;
	case CKPT_MSG_OPEN:
		ret = do_open(s, req, rep);
		break;
	case CKPT_MSG_CLOSE:
		o = find_handle(s, req->u.close.handle);
		ret = o == NULL ? -EBADF : 0;
		if (o != NULL)
			close_handle(s, o);
		break;
	case CKPT_MSG_DELETE:
		ret = do_delete(s, req);
		break;
	case CKPT_MSG_LIST:
		ret = do_list(s, rep);
		break;
	case CKPT_MSG_STAT:
		ret = do_stat(s, req, rep);
		break;
	case CKPT_MSG_LEASE:
		ret = do_lease(s, req);
		break;
	case CKPT_MSG_TAKE:
		ret = do_take(s, req, rep);
		break;
	case CKPT_MSG_BIND:
		ret = do_bind(s, req);
		break;
	case CKPT_MSG_WATCH:
		ret = do_watch(s, req);
		break;
	default:
		ret = -EPROTO;
		break;
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

struct ckptsrv_session *ckptsrv_session_admit(struct ckptsrv_listener *l, int fd, const char *peer,
					      const char *tenant)
{
	struct ckptsrv *srv = l->srv;
	struct ckptsrv_session *s = calloc(1, sizeof(*s));
	int ret = 0;

	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	s->l = l;
	s->fd = fd;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
	pthread_mutex_lock(&srv->lock);
	if (srv->stop) {
		ret = -ESHUTDOWN;
	} else if (srv->nsessions >= srv->cfg.max_sessions) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "tenant %s from %s refused (EUSERS): the server holds %u sessions "
				 "(max-sessions)",
				 tenant, peer, srv->nsessions);
		ret = -EUSERS;
	} else {
		ret = ckptsrv_quota_session(srv, tenant, peer);
	}
	if (ret == 0) {
		s->next = srv->sessions;
		srv->sessions = s;
		srv->nsessions++;
	}
	pthread_mutex_unlock(&srv->lock);
	if (ret < 0) {
		free(s);
		errno = -ret;
		return NULL;
	}
	return s;
}

unsigned int ckptsrv_session_end(struct ckptsrv_session *s)
{
	struct ckptsrv *srv = s->l->srv;
	struct ckptsrv_open *o, *opens;
	unsigned int dropped = 0;

	/*
	 * The leases first, then the registrations, outside the lock: closing a region's
	 * registration takes milliseconds, and a primary killed -9 ends several sessions at
	 * once; under the lock, the one holding the lease waited for the others' closes (up to
	 * 8 ms here) before the standby was told. The domain is thread-safe (fabric.c), and
	 * the session still counts until its registrations are closed, so a stopping server
	 * does not close the domain under them.
	 */
	pthread_mutex_lock(&srv->lock);
	release_leases_of(s);
	opens = s->opens;
	s->opens = NULL;
	s->nopens = 0;
	pthread_mutex_unlock(&srv->lock);
	/* A client that goes away loses its keys: every registration it held is undone. */
	while ((o = opens) != NULL) {
		opens = o->next;
		open_free(o);
		dropped++;
	}
	pthread_mutex_lock(&srv->lock);
	for (struct ckptsrv_session **pp = &srv->sessions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	srv->nsessions--;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (srv->nsessions == 0)
		pthread_cond_broadcast(&srv->sessions_gone);
	pthread_mutex_unlock(&srv->lock);
	free(s);
	return dropped;
}
