/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_log.h>

#include "fw_notify.h"
#include "fw_standby.h"
#include "fw_thread.h"

RTE_LOG_REGISTER_SUFFIX(fw_logtype_standby, standby, INFO)
#define LOG(level, ...) rte_log(RTE_LOG_##level, fw_logtype_standby, "holdfast: " __VA_ARGS__)

#define RETRY_MS 200 /* a target or region not there yet is looked for again this often */
/*
 * Idle connections are polled at least this often: a poll is what sends the client's
 * keepalive, and ckptsrv closes a session that sends nothing for its idle-timeout-ms (5 s
 * at the least).
 */
#define KEEPALIVE_POLL_MS 1000
/* How long a standby that lost the race for the epoch leaves the expired lease to the
 * winner, who renews it at once: after that, the winner is taken for dead too. */
#define WATCH_MS	      1000		   /* one long poll of the lease watch */
#define READINESS_LOG_NS      (10000ull * 1000000) /* the standby's readiness line, this often */
#define LOST_RACE_PATIENCE_NS (5000ull * 1000000)

uint64_t fw_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void nap_ms(uint32_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

const char *fw_death_notice_name(int state)
{
	switch (state) {
	case FW_DEATH_NOTICE_ACTIVE:
		return "active";
	case FW_DEATH_NOTICE_UNSUPPORTED:
		return "unsupported";
	default:
		return "connecting";
	}
}

const char *fw_role_state_name(int state)
{
	switch (state) {
	case FW_ROLE_WAITING:
		return "waiting";
	case FW_ROLE_FOLLOWING:
		return "following";
	case FW_ROLE_TAKING_OVER:
		return "taking over";
	case FW_ROLE_TOOK_OVER:
		return "took over";
	default:
		return "primary";
	}
}

/* ---- epochs ---- */

void fw_epoch_unsupported(const char *target)
{
	static bool said;

	if (!__atomic_exchange_n(&said, true, __ATOMIC_RELAXED))
		LOG(NOTICE,
		    "%s keeps no epochs: nothing fences a primary that outlives its lease but "
		    "the lease itself\n",
		    target);
}

/* ---- the primary's lease ---- */

struct fw_lease {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	uint32_t ttl_ms;
	struct fw_shared *sh;
	struct ckpt_client *adopt_cl; /* a standby's, bound to the epoch it took */
	struct ckpt_region *adopt_r;
	struct fw_ckpt_layout layout;
	char name[PMU_NAME_MAX];
};

/*
 * A fresh connection of the keeper: take our epoch if none is taken yet (a primary's start)
 * or bind to the one taken (a standby's takeover). @return 0, -ESTALE (fenced: someone took
 * a newer one) or -errno.
 */
static int lease_epoch(struct fw_lease *l, struct ckpt_client *cl, struct ckpt_region *r)
{
	struct ckpt_region_info info;
	uint64_t e = __atomic_load_n(&l->sh->epoch, __ATOMIC_ACQUIRE);
	int rc;

	if (e != 0) {
		rc = ckpt_epoch_bind(cl, l->name, e);
		/*
		 * Ours is above the store's: the store lost its epochs (a server restarted on a
		 * new store, the region re-created by our resync). Nobody took over from us;
		 * take the next epoch there, and the checkpointers bind to it.
		 */
		if (rc == -EINVAL) {
			LOG(WARNING,
			    "%s: %s is behind our epoch %" PRIu64
			    " (a new store?): taking a new epoch there\n",
			    l->layout.target, l->name, e);
			e = 0;
		}
	}
	if (e == 0) {
		rc = ckpt_region_stat(cl, l->name, &info);
		if (rc == 0)
			rc = ckpt_epoch_take(r, info.r.epoch, &e);
		if (rc == 0) {
			__atomic_store_n(&l->sh->epoch, e, __ATOMIC_RELEASE);
			LOG(NOTICE, "primary: epoch %" PRIu64 " of %s taken\n", e, l->name);
		} else if (rc == -ESTALE) {
			__atomic_store_n(&l->sh->fenced_by, info.r.epoch + 1, __ATOMIC_RELAXED);
		}
	}
	if (rc == -ENOTSUP) {
		fw_epoch_unsupported(l->layout.target);
		rc = 0;
	}
	return rc;
}

/* Fenced: say which epoch took over, if the target tells. */
static void lease_fenced(struct fw_lease *l, struct ckpt_client *cl)
{
	struct ckpt_region_info info;

	if (cl != NULL && ckpt_region_stat(cl, l->name, &info) == 0)
		fw_fence(l->sh, info.r.epoch);
	else
		fw_fence(l->sh, 0);
}

static void *lease_main(void *arg)
{
	struct fw_lease *l = arg;
	struct ckpt_client *cl = l->adopt_cl;
	struct ckpt_region *r = l->adopt_r;
	const uint64_t ttl_ns = (uint64_t)l->ttl_ms * 1000000;
	const bool hold = !l->sh->conf->lapse_forward;
	bool failing = false, lapsed = false;
	uint64_t valid_until = 0; /* when the lease we hold runs out, fw_shared_now() clock */

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		struct timespec until;
		uint64_t sent;
		int rc = 0;

		pthread_mutex_unlock(&l->mu);
		if (r == NULL) {
			cl = fw_ckpt_layout_connect(
				&l->layout, l->ttl_ms / 2 < 100 ? 100 : l->ttl_ms / 2, false);
			struct ckpt_region_info info;

			/* Asked quietly first: after a server lost its store, the region comes
			 * back only with the checkpointer's resync. */
			rc = cl ? ckpt_region_stat(cl, l->name, &info) : -errno;
			if (rc == 0)
				rc = ckpt_region_open_control(cl, l->name, &r);
			if (rc == 0)
				rc = lease_epoch(l, cl, r);
		}
		/*
		 * The workers forward until the lease runs out as the store sees it at the
		 * latest: ttl after the renewal was sent (the store stamps it later), on their
		 * own clock.
		 */
		sent = fw_shared_now(l->sh);
		if (rc == 0)
			rc = ckpt_lease_renew(r, l->ttl_ms);
		if (rc == 0) {
			valid_until = sent + ttl_ns;
			/* lease-lapse forward: the workers are not told, they forward on. */
			if (hold)
				__atomic_store_n(&l->sh->lease_until_ns, valid_until,
						 __ATOMIC_RELEASE);
		}
		/* A renewal that eats most of the lease is how a live primary loses it. */
		if (rc == 0 && fw_shared_now(l->sh) - sent > ttl_ns / 4)
			LOG(WARNING, "lease on %s: a renewal took %.0f ms of its %u ms\n", l->name,
			    (double)(fw_shared_now(l->sh) - sent) / 1e6, l->ttl_ms);
		if (rc == -ESTALE) {
			LOG(ERR, "%s: the lease on %s was refused: a standby took a newer epoch\n",
			    l->layout.target, l->name);
			lease_fenced(l, cl);
			pthread_mutex_lock(&l->mu);
			break;
		}
		if (rc) {
			/*
			 * One failed attempt is no lapse: the lease holds until it runs out,
			 * and the next attempt is a quarter of it away. Warned once it ran out.
			 */
			if (valid_until != 0 && fw_shared_now(l->sh) >= valid_until) {
				if (!lapsed)
					LOG(WARNING,
					    "cannot renew the lease on %s at %s: %s; it ran "
					    "out: %s\n",
					    l->name, l->layout.target, strerror(-rc),
					    hold ? "forwarding nothing until it is renewed (a "
						   "standby may take over; lease-lapse hold)"
						 : "forwarding on (lease-lapse forward: no "
						   "standby may run)");
				lapsed = true;
			} else if (!failing) {
				LOG(INFO, "lease on %s: renewal failed (%s); retrying\n", l->name,
				    strerror(-rc));
			}
			failing = true;
			if (r != NULL)
				ckpt_region_close(&r);
			ckpt_disconnect(&cl);
		} else if (failing) {
			if (lapsed)
				LOG(NOTICE, "lease on %s renewed again%s\n", l->name,
				    hold ? ": forwarding" : "");
			else
				LOG(INFO, "lease on %s renewed again\n", l->name);
			failing = false;
			lapsed = false;
		}
		pthread_mutex_lock(&l->mu);
		/* Until the next renewal, the connection is polled (a long ttl leaves it idle). */
		for (uint64_t at = fw_mono_ns() + (uint64_t)(l->ttl_ms / 4) * 1000000; !l->stop;) {
			uint64_t now = fw_mono_ns(), wake = now + KEEPALIVE_POLL_MS * 1000000ull;

			if (now >= at)
				break;
			wake = wake < at ? wake : at;
			until.tv_sec = (time_t)(wake / 1000000000);
			until.tv_nsec = (long)(wake % 1000000000);
			if (pthread_cond_timedwait(&l->cv, &l->mu, &until) == 0 || cl == NULL)
				continue;
			pthread_mutex_unlock(&l->mu);
			ckpt_poll(cl);
			pthread_mutex_lock(&l->mu);
		}
	}
	pthread_mutex_unlock(&l->mu);
	if (r != NULL) {
		/* A clean stop hands over at once; fenced, the lease is not ours to give. */
		if (!l->sh->fenced)
			ckpt_lease_renew(r, 1);
		ckpt_region_close(&r);
	}
	ckpt_disconnect(&cl);
	return NULL;
}

struct fw_lease *fw_lease_start(const struct fw_ckpt_layout *layout, uint32_t ttl_ms,
				struct fw_shared *sh, struct ckpt_client *cl, struct ckpt_region *r)
{
	struct fw_lease *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int rc;

	if (l == NULL) {
		ckpt_disconnect(&cl);
		return NULL;
	}
	l->adopt_cl = cl;
	l->adopt_r = r;
	l->layout = *layout;
	l->ttl_ms = ttl_ms;
	l->sh = sh;
	fw_ckpt_layout_lease(layout, l->name);
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = fw_thread_start(&l->th, "hf-lease", lease_main, l);
	if (rc) {
		ckpt_disconnect(&l->adopt_cl);
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		fw_ckpt_layout_release(&l->layout);
		free(l);
		errno = -rc;
		return NULL;
	}
	return l;
}

void fw_lease_stop(struct fw_lease **lp)
{
	struct fw_lease *l;

	if (lp == NULL || *lp == NULL)
		return;
	l = *lp;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->th, NULL);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	fw_ckpt_layout_release(&l->layout);
	free(l);
	*lp = NULL;
}

int fw_lease_wait_free(const struct fw_ckpt_layout *l, uint32_t ttl_ms)
{
	struct ckpt_region_info info;
	struct ckpt_client *cl;
	char name[PMU_NAME_MAX];
	uint64_t first_lease, t0 = fw_mono_ns();
	int rc;

	fw_ckpt_layout_lease(l, name);
	cl = fw_ckpt_layout_connect(l, 1000, false);
	if (cl == NULL)
		return errno == ENOENT ? 0 : -errno; /* no store yet: nobody holds anything */
	rc = ckpt_region_stat(cl, name, &info);
	if (rc == 0 && info.lease_alive) {
		struct ckpt_region *r = NULL;

		first_lease = info.r.lease_ns;
		LOG(NOTICE, "%s is leased: waiting for the previous holder's lease to run out\n",
		    name);
		/*
		 * A killed predecessor's lease looks alive until it runs out (up to lease-ms),
		 * but where the target notices deaths -- pmem:'s lock, ckptsrv's session -- it
		 * is free the moment its holder is gone: asked to be told, for one lease at
		 * most (a control handle: no endpoint). A holder still renewing is found by the
		 * polling below once that passed.
		 */
		if (ckpt_region_open_control(cl, name, &r) == 0) {
			int w = ckpt_lease_watch(r, ttl_ms + 50);

			ckpt_region_close(&r);
			if (w == 0) {
				LOG(NOTICE,
				    "the previous holder of %s is gone: its lease is free "
				    "after %.0f ms\n",
				    name, (double)(fw_mono_ns() - t0) / 1e6);
				ckpt_disconnect(&cl);
				return 0;
			}
			if (w != -ETIMEDOUT && w != -ENOTSUP)
				LOG(INFO, "%s: lease watch: %s; asking until it runs out\n", name,
				    strerror(-w));
			rc = ckpt_region_stat(cl, name, &info);
		}
		while (rc == 0 && info.lease_alive) {
			if (info.r.lease_ns != first_lease) {
				LOG(ERR,
				    "%s is leased by a running holdfast (its lease was just "
				    "renewed): stop it, or start this one with --standby\n",
				    name);
				rc = -EBUSY;
				break;
			}
			nap_ms(ttl_ms / 20 < 10 ? 10 : ttl_ms / 20);
			rc = ckpt_region_stat(cl, name, &info);
		}
		if (rc == 0)
			LOG(NOTICE, "the previous lease on %s ran out after %.0f ms\n", name,
			    (double)(fw_mono_ns() - t0) / 1e6);
	}
	ckpt_disconnect(&cl);
	return rc == -ENOENT ? 0 : rc;
}

/* ---- the standby's lease watch (death notice) ---- */

/*
 * A thread of its own, on a connection of its own, waits in ckpt_lease_watch() for the
 * primary's lease to go free (its holder died: the store noticed at once), and wakes the
 * standby's nap. The standby re-arms it once it saw a live lease again, so that one death
 * wakes it once. A target that cannot notice deaths (-ENOTSUP) leaves the standby to its
 * polling of the lease (it runs out within lease-ms).
 */
#define WATCH_CONNECTING  FW_DEATH_NOTICE_CONNECTING
#define WATCH_ACTIVE	  FW_DEATH_NOTICE_ACTIVE
#define WATCH_UNSUPPORTED FW_DEATH_NOTICE_UNSUPPORTED

struct watch {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the watch fired, was re-armed, or is to stop */
	bool stop, started;
	bool rearm;		      /* the standby saw a live lease again */
	uint64_t fires;		      /* times the lease was seen free */
	uint64_t fired_ns;	      /* when it last was */
	int state;		      /* enum fw_death_notice */
	bool exited;		      /* the thread left its loop */
	bool detached;		      /* watch_stop() left it to free itself */
	bool fired;		      /* seen free, not re-armed yet */
	struct fw_ckpt_layout layout; /* a copy: the thread may outlive the standby loop */
	char name[PMU_NAME_MAX];
};

static void watch_free(struct watch *w);

/* Wait up to @p ms for a stop (the watch's own naps). Called with w->mu held. */
static void watch_nap(struct watch *w, uint32_t ms)
{
	uint64_t end = fw_mono_ns() + (uint64_t)ms * 1000000;
	struct timespec until = {(time_t)(end / 1000000000), (long)(end % 1000000000)};

	while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
		;
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct ckpt_client *cl = NULL;
	struct ckpt_region *r = NULL;
	bool detached;
	int rc;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		pthread_mutex_unlock(&w->mu);
		rc = 0;
		if (r == NULL) {
			/* Its requests may wait a whole watch: the timeout is longer. */
			cl = fw_ckpt_layout_connect(&w->layout, 3 * WATCH_MS, false);
			rc = cl ? ckpt_region_open(cl, w->name, &r) : -errno;
		}
		if (rc == 0)
			rc = ckpt_lease_watch(r, WATCH_MS);
		pthread_mutex_lock(&w->mu);
		if (rc == -ENOTSUP) {
			w->state = WATCH_UNSUPPORTED;
			LOG(NOTICE,
			    "standby: %s gives no death notice: the takeover waits for the lease "
			    "to run out\n",
			    w->layout.target);
			break;
		}
		if (rc == 0 || rc == -ETIMEDOUT) {
			if (w->state != WATCH_ACTIVE)
				LOG(INFO, "standby: death notice active on %s\n", w->name);
			w->state = WATCH_ACTIVE;
		}
		if (rc == 0) {
			w->fired_ns = fw_mono_ns();
			w->fires++;
			w->fired = true;
			pthread_cond_broadcast(&w->cv);
			while (!w->stop && !w->rearm)
				pthread_cond_wait(&w->cv, &w->mu);
			w->rearm = false;
		} else if (rc != -ETIMEDOUT) {
			w->state = WATCH_CONNECTING;
			pthread_mutex_unlock(&w->mu);
			if (r != NULL)
				ckpt_region_close(&r);
			ckpt_disconnect(&cl);
			pthread_mutex_lock(&w->mu);
			watch_nap(w, RETRY_MS);
		}
	}
	w->exited = true;
	detached = w->detached;
	pthread_mutex_unlock(&w->mu);
	if (r != NULL)
		ckpt_region_close(&r);
	ckpt_disconnect(&cl);
	if (detached)
		watch_free(w);
	return NULL;
}

static void watch_free(struct watch *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	fw_ckpt_layout_release(&w->layout);
	free(w);
}

/* @return the watch (not started), or NULL (no memory: the standby polls the lease). */
static struct watch *watch_create(const struct fw_ckpt_layout *l)
{
	struct watch *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	if (w == NULL)
		return NULL;
	w->layout = *l;
	fw_ckpt_layout_lease(l, w->name);
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	return w;
}

static void watch_start(struct watch *w)
{
	int rc = fw_thread_start(&w->th, "hf-watch", watch_main, w);

	if (rc) {
		LOG(WARNING, "standby: no lease watch (%s): polling the lease only\n",
		    strerror(-rc));
		w->state = WATCH_UNSUPPORTED;
		return;
	}
	w->started = true;
}

/*
 * Stop the watch without waiting for it: it may be inside a long poll (up to WATCH_MS),
 * and a takeover must not wait for that. A running thread is left to finish and free the
 * watch itself; one that already ended is joined and freed here.
 */
static void watch_stop(struct watch **wp)
{
	struct watch *w = *wp;
	bool running;

	if (w == NULL)
		return;
	*wp = NULL;
	if (!w->started) {
		watch_free(w);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	w->detached = true;
	running = !w->exited;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (running) {
		pthread_detach(w->th);
		return;
	}
	pthread_join(w->th, NULL);
	watch_free(w);
}

/* The standby saw a live lease: the next death is news again. */
static void watch_rearm(struct watch *w)
{
	pthread_mutex_lock(&w->mu);
	w->fired = false;
	w->rearm = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* ---- the standby ---- */

struct follow {
	struct ckpt_region *state, *log;
	struct fw_shadow *shadow;
	bool rescan;
};

struct standby {
	const struct fw_ckpt_layout *layout;
	struct ckpt_client *cl;
	struct follow *f;
	unsigned int n;
	struct fw_standby_stats *out;
	uint64_t polled_ns;	      /* when the idle connections were last polled */
	uint64_t said_ns;	      /* when the readiness line was last logged */
	struct ckpt_client *lease_cl; /* the lease keeper's, once this standby takes over */
	struct ckpt_region *lease_r;
	struct watch *watch;
};

struct apply_arg {
	struct standby *sb;
	struct follow *f;
	bool from_log;
};

static int apply_one(const struct ckpt_rec *rec, void *arg)
{
	struct apply_arg *a = arg;

	if (a->from_log)
		a->sb->out->log_records++;
	else
		a->sb->out->scan_records++;
	if (fw_ckpt_is_gap(rec)) {
		a->f->rescan = true; /* the primary skipped records: the state region has them */
		return 0;
	}
	/* A full table is counted (st.no_room) for the takeover line; said here once. */
	if (fw_shadow_apply(a->f->shadow, rec, &a->sb->out->st) == -ENOSPC &&
	    a->sb->out->st.no_room == 1)
		LOG(WARNING, "standby: table full; raise max-conns to match the primary's\n");
	return 0;
}

static void detach_all(struct standby *sb)
{
	if (sb->lease_r)
		ckpt_region_close(&sb->lease_r);
	ckpt_disconnect(&sb->lease_cl);
	for (unsigned int i = 0; i < sb->n; i++) {
		if (sb->f[i].log)
			ckpt_region_close(&sb->f[i].log);
		if (sb->f[i].state)
			ckpt_region_close(&sb->f[i].state);
	}
	ckpt_disconnect(&sb->cl);
}

static void *follower_end(void *arg)
{
	struct ckpt_client *cl = arg;

	ckpt_disconnect(&cl);
	return NULL;
}

/*
 * At takeover, the follower's connection is closed behind the takeover, on a thread of its
 * own: closing it asks the server to close each region (a round trip each) and tears the
 * endpoint down, 5-10 ms over tcp that the first forwarded frame waited for. Inline if no
 * thread can be started.
 */
static void detach_follower_behind(struct standby *sb)
{
	pthread_t th;

	for (unsigned int i = 0; i < sb->n; i++)
		sb->f[i].log = sb->f[i].state = NULL; /* the client's: it closes them */
	if (sb->cl == NULL || fw_thread_start(&th, "hf-follow-end", follower_end, sb->cl) != 0) {
		ckpt_disconnect(&sb->cl);
		return;
	}
	pthread_detach(th);
	sb->cl = NULL;
}

/*
 * Worth waiting for: a transient error (ckpt_err_transient), or a region that does not
 * check (-EINVAL). The standby reads regions another process writes and may meet them
 * mid-change (a primary re-creating them after its server lost the store): it reconnects
 * and reads them again.
 */
static bool retry_later(int rc)
{
	return rc == -EINVAL || ckpt_err_transient(rc);
}

/* Connect and open every worker's regions. @return 0, -EAGAIN (not there yet) or -errno. */
static int attach_all(struct standby *sb)
{
	char name[PMU_NAME_MAX];
	int rc = 0;

	sb->cl = fw_ckpt_layout_connect(sb->layout, 1000, false);
	if (sb->cl == NULL)
		return ckpt_err_transient(errno) ? -EAGAIN : -errno;
	for (unsigned int i = 0; i < sb->n && rc == 0; i++) {
		fw_ckpt_layout_state(sb->layout, i, name, NULL);
		rc = ckpt_region_open(sb->cl, name, &sb->f[i].state);
		if (rc == 0) {
			fw_ckpt_layout_log(sb->layout, i, name, NULL);
			rc = ckpt_region_open(sb->cl, name, &sb->f[i].log);
		}
		sb->f[i].rescan = true;
	}
	/*
	 * The lease keeper's connection, ready for a takeover: the epoch is taken on the
	 * client that renews the lease (for pmem:, the taker holds the death-notice lock), and
	 * no connection is made while the firewall is down.
	 */
	if (rc == 0) {
		char lease[PMU_NAME_MAX];

		fw_ckpt_layout_lease(sb->layout, lease);
		sb->lease_cl = fw_ckpt_layout_connect(sb->layout, 1000, false);
		rc = sb->lease_cl ? ckpt_region_open_control(sb->lease_cl, lease, &sb->lease_r)
				  : -errno;
	}
	if (rc) {
		detach_all(sb);
		return retry_later(rc) ? -EAGAIN : rc;
	}
	return 0;
}

/* Read every log, then rescan what needs it. @return 0 or -errno of the target. */
static int follow_all(struct standby *sb)
{
	for (unsigned int i = 0; i < sb->n; i++) {
		struct follow *f = &sb->f[i];
		struct apply_arg a = {sb, f, true};
		int rc;

		rc = ckpt_log_read(f->log, apply_one, &a, false, NULL);
		if (rc < 0)
			return rc;
		if (f->rescan) {
			/* Cleared before the read: a gap marker met during it asks again. */
			f->rescan = false;
			a.from_log = false;
			sb->out->rescans++;
			rc = ckpt_state_scan(f->state, CKPT_SCAN_TOMBSTONES, apply_one, &a, NULL);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* How far behind the primary: log bytes written and not read yet; and say so now and then. */
static void measure_unread(struct standby *sb)
{
	uint64_t unread = 0, now = fw_mono_ns();

	for (unsigned int i = 0; i < sb->n; i++) {
		struct ckpt_region_info info;
		char name[PMU_NAME_MAX];

		fw_ckpt_layout_log(sb->layout, i, name, NULL);
		if (ckpt_region_stat(sb->cl, name, &info) == 0)
			unread += info.ring_head - info.ring_tail;
	}
	__atomic_store_n(&sb->out->log_unread, unread, __ATOMIC_RELAXED);
	sb->out->death_notice = __atomic_load_n(&sb->watch->state, __ATOMIC_RELAXED);
	if (now - sb->said_ns >= READINESS_LOG_NS) {
		LOG(INFO,
		    "standby: %" PRIu64 " log records and %" PRIu64
		    " rescan records applied, %" PRIu64
		    " log bytes unread, caught up %.0f ms ago, death notice %s\n",
		    sb->out->log_records, sb->out->scan_records, unread,
		    (double)(now - sb->out->caught_up_at_ns) / 1e6,
		    fw_death_notice_name(sb->out->death_notice));
		sb->said_ns = now;
	}
}

/*
 * Nap @p ms, polling what the standby holds open once a KEEPALIVE_POLL_MS: its follower's
 * connection, and the workers' checkpointers, attached ahead of the takeover and idle until
 * then. Their failures are not judged here: the takeover refreshes the checkpointers (and
 * reconnects any that went down), the next follow finds the follower's.
 */
static void nap_polling(struct standby *sb, struct fw_worker *w, uint32_t ms)
{
	uint64_t end = fw_mono_ns() + (uint64_t)ms * 1000000, fires;

	/*
	 * A listing asked of the workers (hfctl conns): their tables are this loop's until the
	 * takeover. A page whole at once, nothing forwards here.
	 */
	for (unsigned int i = 0; i < sb->n; i++)
		if (fw_conns_asked(&w[i].conns))
			fw_conns_serve(&w[i].conns, w[i].table, FW_CONNS_SCAN_PAGE);
	pthread_mutex_lock(&sb->watch->mu);
	fires = sb->watch->fires;
	pthread_mutex_unlock(&sb->watch->mu);
	for (;;) {
		uint64_t now = fw_mono_ns(), due = sb->polled_ns + KEEPALIVE_POLL_MS * 1000000ull;

		if (now >= due) {
			if (sb->cl != NULL) {
				ckpt_poll(sb->cl);
				if (sb->lease_cl != NULL)
					ckpt_poll(sb->lease_cl);
				measure_unread(sb);
			}
			for (unsigned int i = 0; i < sb->n; i++)
				if (fw_checkpointer_client(w[i].ckpt) != NULL)
					ckpt_poll(fw_checkpointer_client(w[i].ckpt));
			sb->polled_ns = now;
			due = now + KEEPALIVE_POLL_MS * 1000000ull;
		}
		if (now >= end)
			return;
		/* Woken at once by the watch: the lease went free. */
		const uint64_t wake = due < end ? due : end;
		struct timespec until = {(time_t)(wake / 1000000000), (long)(wake % 1000000000)};
		bool fired;

		pthread_mutex_lock(&sb->watch->mu);
		while (sb->watch->fires == fires &&
		       pthread_cond_timedwait(&sb->watch->cv, &sb->watch->mu, &until) == 0)
			;
		fired = sb->watch->fires != fires;
		pthread_mutex_unlock(&sb->watch->mu);
		if (fired)
			return;
	}
}

/*
 * Take the next epoch of the lease region, seen as @p seen. @return 0 (ours: take over),
 * -ESTALE (another standby took it first) or -errno.
 */
static int take_epoch(struct standby *sb, uint64_t seen)
{
	int rc = ckpt_epoch_take(sb->lease_r, seen, &sb->out->epoch);

	if (rc == -ENOTSUP) {
		fw_epoch_unsupported(sb->layout->target);
		sb->out->epoch = 0;
		rc = 0;
	}
	return rc;
}

int fw_standby_run(const struct fw_ckpt_layout *l, struct fw_worker *w, unsigned int nworkers,
		   uint32_t poll_ms, volatile bool *quit, volatile sig_atomic_t *takeover,
		   struct fw_standby_stats *out)
{
	struct standby sb = {.layout = l, .n = nworkers, .out = out};
	char lease_name[PMU_NAME_MAX];
	bool announced = false, waiting_said = false;
	/* Lost a race for the epoch: that lease, expired, is the winner's to renew. */
	uint64_t lost_lease_ns = 0, lost_at_ns = 0;
	uint64_t following = 0;	  /* the epoch of the primary seen alive last; 0: none seen yet */
	uint64_t alive_until = 0; /* when its lease would have run out, as last seen */
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->state = FW_ROLE_WAITING;
	sb.watch = watch_create(l);
	fw_ckpt_layout_lease(l, lease_name);
	sb.f = calloc(nworkers, sizeof(*sb.f));
	if (sb.f == NULL || sb.watch == NULL) {
		watch_stop(&sb.watch);
		free(sb.f);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < nworkers; i++) {
		sb.f[i].shadow = fw_shadow_create(w[i].table, fw_checkpointer_slots(w[i].ckpt));
		if (sb.f[i].shadow == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	while (!*quit) {
		struct ckpt_region_info info;

		if (sb.cl == NULL) {
			rc = attach_all(&sb);
			if (rc == -EAGAIN) {
				if (!waiting_said)
					LOG(NOTICE,
					    "standby: waiting for the primary's regions %s.* at "
					    "%s\n",
					    l->region, l->target);
				waiting_said = true;
				nap_ms(RETRY_MS);
				continue;
			}
			if (rc) {
				LOG(ERR, "standby: %s refuses us: %s\n", l->target, strerror(-rc));
				goto out;
			}
			waiting_said = false;
			/* The checkpointers open the regions now, not at takeover: time saved. */
			for (unsigned int i = 0; i < nworkers; i++)
				if (fw_checkpointer_state(w[i].ckpt) == NULL)
					fw_checkpointer_attach(w[i].ckpt, fw_mono_ns());
		}
		rc = follow_all(&sb);
		if (rc == 0) {
			__atomic_store_n(&out->caught_up_at_ns, fw_mono_ns(), __ATOMIC_RELAXED);
			rc = ckpt_region_stat(sb.cl, lease_name, &info);
		}
		if (rc) {
			LOG(WARNING, "standby: %s: %s; reconnecting\n", l->target, strerror(-rc));
			detach_all(&sb);
			if (!retry_later(rc))
				goto out;
			continue;
		}
		if (!announced) {
			uint32_t n = 0;

			for (unsigned int i = 0; i < nworkers; i++)
				n += fw_table_count(w[i].table);
			LOG(NOTICE, "standby: following %s at %s: %u connections\n", l->region,
			    l->target, n);
			printf("holdfast: standby\n");
			fflush(stdout);
			/* Ready, for systemd, is following: the unit is up, takeover is its job. */
			fw_notify_ready("standby: following %s at %s: %u connections", l->region,
					l->target, n);
			announced = true;
			out->state = FW_ROLE_FOLLOWING;
			watch_start(sb.watch);
			sb.said_ns = fw_mono_ns();
		}
		/*
		 * The watch said the lease went free (its holder died: pmem:'s lock went, while
		 * the lease itself still runs). Believed for the lease it was watching only: one
		 * renewed since is a new holder's.
		 */
		pthread_mutex_lock(&sb.watch->mu);
		const bool fired = sb.watch->fired;
		const uint64_t fired_ns = sb.watch->fired_ns;
		pthread_mutex_unlock(&sb.watch->mu);
		const bool dead = fired && alive_until != 0 && info.r.lease_ns == alive_until;

		if (info.lease_alive && !dead) {
			/*
			 * The live primary's epoch: the one to take over from. Of several standbys
			 * woken by its death, only the first moves it on; one that read the
			 * epoch only after that would take the next over the winner.
			 */
			following = info.r.epoch;
			alive_until = info.r.lease_ns;
			lost_lease_ns = 0;
			if (sb.watch->started)
				watch_rearm(sb.watch);
		}
		if (lost_lease_ns != 0 && info.r.lease_ns == lost_lease_ns &&
		    fw_mono_ns() - lost_at_ns < LOST_RACE_PATIENCE_NS) {
			nap_polling(&sb, w, poll_ms); /* the winner has not renewed yet */
			continue;
		}
		if (*takeover || (info.r.lease_ns != 0 && (!info.lease_alive || dead))) {
			bool early;

			out->detect_ns = fw_mono_ns();
			/*
			 * Free before the lease we saw would have run out (on the store's clock):
			 * its holder's death was noticed (a released lease, a dropped lock). Else
			 * it ran out: a hung, stopped or cut-off primary.
			 */
			early = alive_until != 0 && pmu_now_ns() < alive_until;
			out->reason = *takeover ? "command"
				      : early	? "death notice"
						: "lease expired";
			if (fired && !*takeover && fired_ns < out->detect_ns)
				out->detect_ns = fired_ns;
			/* The unread rest: whatever the primary made durable before it went. */
			rc = follow_all(&sb);
			if (rc)
				LOG(WARNING,
				    "standby: reading the rest of the log: %s; taking over with "
				    "what was read\n",
				    strerror(-rc));
			out->caught_up_ns = fw_mono_ns();
			rc = take_epoch(&sb, following ? following : info.r.epoch);
			out->epoch_ns = fw_mono_ns();
			if (rc == 0) {
				out->state = FW_ROLE_TAKING_OVER;
				/* Bound to our epoch: it renews the lease from now on. */
				out->lease_cl = sb.lease_cl;
				out->lease_r = sb.lease_r;
				sb.lease_cl = NULL;
				sb.lease_r = NULL;
				detach_follower_behind(&sb);
				goto out;
			}
			*takeover = 0;
			if (rc == -ESTALE) {
				LOG(NOTICE,
				    "standby: another standby took over (epoch %" PRIu64
				    "); following it\n",
				    (following ? following : info.r.epoch) + 1);
				lost_lease_ns = info.r.lease_ns;
				lost_at_ns = fw_mono_ns();
				out->lost_races++;
				continue;
			}
			LOG(WARNING, "standby: taking the epoch: %s; reconnecting\n",
			    strerror(-rc));
			detach_all(&sb);
			if (!retry_later(rc))
				goto out;
			continue;
		}
		nap_polling(&sb, w, poll_ms);
	}
	rc = 1;
out:
	watch_stop(&sb.watch);
	detach_all(&sb);
	for (unsigned int i = 0; i < nworkers; i++)
		fw_shadow_free(&sb.f[i].shadow);
	free(sb.f);
	return rc;
}
