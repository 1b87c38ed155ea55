/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv's main: configuration, the store, the listeners, the journal thread (which also
 * watches the progress threads), and a clean shutdown on SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>

#include <systemd/sd-daemon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG		   "ckptsrv"
#define JOURNAL_PERIOD_NS  (5 * 1000 * 1000)
#define SECRET_MAX	   256
#define SHUTDOWN_WAIT_SECS 5

/*
 * A progress thread that does not come back from libfabric has wedged its endpoint. Seen
 * with shm: a client killed while it held the spinlock shm keeps in this server's shared
 * region leaves every later fi_cq_read spinning on it (libfabric 1.17 has no owner-death
 * recovery there). Nothing here can free it; the listener is marked so that new opens fail
 * fast instead of hanging clients, and the operator is told to restart.
 */
static void watch_progress(struct ckptsrv *srv)
{
	uint64_t now = ckptsrv_now_ms();

	for (unsigned int i = 0; i < srv->nlisteners; i++) {
		struct ckptsrv_listener *l = &srv->listeners[i];
		uint64_t beat = __atomic_load_n(&l->progress_beat, __ATOMIC_RELAXED);
		bool stuck = l->threads_started && now > beat + CKPTSRV_WEDGED_MS;

		if (stuck == __atomic_load_n(&l->wedged, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&l->wedged, stuck, __ATOMIC_RELAXED);
		if (stuck)
			ckpt_log(CKPT_LOG_ERR, LOG,
				 "%s: progress thread stuck inside libfabric for over %d s (for "
				 "shm: a client died holding the provider's lock); this listener "
				 "moves no data and refuses opens; restart ckptsrv (the store is "
				 "crash-consistent)",
				 l->url, CKPTSRV_WEDGED_MS / 1000);
		else
			ckpt_log(CKPT_LOG_NOTICE, LOG, "%s: progress thread running again", l->url);
	}
}

/*
 * Journals of open overwrite regions are applied every few milliseconds, and at once after
 * a PERSIST, so that a restore finds most records in their slots already.
 */
static void *journal_main(void *arg)
{
	struct ckptsrv *srv = arg;
	uint8_t seen[PMU_MAX_REGIONS];

	pthread_mutex_lock(&srv->lock);
	while (!srv->stop) {
		struct timespec until;

		if (!srv->journal_due) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += JOURNAL_PERIOD_NS;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&srv->journal_kick, &srv->lock, &until);
		}
		srv->journal_due = false;
		watch_progress(srv);
		memset(seen, 0, sizeof(seen));
		for (struct ckptsrv_session *s = srv->sessions; s != NULL; s = s->next) {
			for (struct ckptsrv_open *o = s->opens; o != NULL; o = o->next) {
				int n;

				if (o->info.mode != PMU_MODE_OVERWRITE || o->info.ring_size == 0 ||
				    seen[o->info.index])
					continue;
				seen[o->info.index] = 1;
				n = pmu_journal_apply(srv->store, &o->info);
				if (n < 0)
					CKPT_LOG_LIMITED(
						CKPT_LOG_WARNING, LOG,
						"journal of region %s (tenant %s) not applied: %s",
						o->info.name, s->tenant, strerror(-n));
				else if (n > 0)
					ckpt_log(CKPT_LOG_DEBUG, LOG,
						 "journal of region %s: %d record(s) applied",
						 o->info.name, n);
			}
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/*
 * Journals a crash left unapplied are applied before anyone connects, so a region that is
 * not opened again soon still has its records in their slots.
 */
static void apply_journals_at_start(struct ckptsrv *srv)
{
	struct pmu_region_info *all = calloc(PMU_MAX_REGIONS, sizeof(*all));
	int n;

	if (all == NULL)
		return;
	n = pmu_region_list(srv->store, all, PMU_MAX_REGIONS);
	for (int i = 0; i < n && i < PMU_MAX_REGIONS; i++) {
		int applied;

		if (all[i].mode != PMU_MODE_OVERWRITE || all[i].ring_size == 0)
			continue;
		applied = pmu_journal_apply(srv->store, &all[i]);
		if (applied < 0)
			ckpt_log(CKPT_LOG_WARNING, LOG, "journal of region %s not applied: %s",
				 all[i].name, strerror(-applied));
		else if (applied > 0)
			ckpt_log(CKPT_LOG_NOTICE, LOG,
				 "journal of region %s: %d record(s) left by the last run applied",
				 all[i].name, applied);
	}
	free(all);
}

/* @return 0 when every session is gone, -EBUSY when some still run. */
static int shutdown_sessions(struct ckptsrv *srv)
{
	struct timespec until;
	int ret = 0;

	pthread_mutex_lock(&srv->lock);
	/* Wake every session blocked in recv; each then releases its handles and exits. */
	for (struct ckptsrv_session *s = srv->sessions; s != NULL; s = s->next)
		shutdown(s->fd, SHUT_RDWR);
	/* ...and every one waiting in WATCH. */
	pthread_cond_broadcast(&srv->lease_change);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SHUTDOWN_WAIT_SECS;
	while (srv->nsessions > 0) {
		if (pthread_cond_timedwait(&srv->sessions_gone, &srv->lock, &until) != 0)
			break;
	}
	if (srv->nsessions > 0) {
		ckpt_log(CKPT_LOG_WARNING, LOG,
			 "%u session(s) did not finish in %d s; exiting without closing the "
			 "store (it is crash-consistent)",
			 srv->nsessions, SHUTDOWN_WAIT_SECS);
		ret = -EBUSY;
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

int main(int argc, char **argv)
{
	static struct ckptsrv srv;
	sigset_t sigs;
	int ret, sig = 0;
	bool journal_started = false;

	ret = ckptsrv_config_parse(argc, argv, &srv.cfg);
	if (ret != 0)
		return ret > 0 ? 0 : 2;
	if (srv.cfg.log_level != 0)
		ckpt_log_set(NULL, srv.cfg.log_level);
	ckpt_log_limit_set(srv.cfg.log_burst, srv.cfg.log_interval_ms);
	if (sodium_init() < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "libsodium failed to initialise");
		return 1;
	}
	/* Before libfabric initialises (at the first fi_getinfo) and before any thread: the
	 * client sets the same (lib/ckpt/proto.h). */
	setenv("FI_OFI_RXM_BUFFER_SIZE", CKPT_OFI_RXM_BUFFER_SIZE, 0);
	/* Only the main thread takes signals; every thread created below inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = ckptsrv_sync_init(&srv);
	if (ret < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "cannot set up locks: %s", strerror(-ret));
		return 1;
	}

	/* The secret file is read at every authentication; check it once now. */
	{
		uint8_t probe[SECRET_MAX];

		ret = ckpt_secret_load(srv.cfg.secret_file, NULL, probe, sizeof(probe));
		sodium_memzero(probe, sizeof(probe));
		if (ret < 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "secret file %s unusable: %s",
				 srv.cfg.secret_file, strerror(-ret));
			return 1;
		}
	}
	srv.store = pmu_store_open(srv.cfg.pmem, srv.cfg.size,
				   PMU_CREATE | (srv.cfg.format ? PMU_FORMAT : 0));
	if (srv.store == NULL) {
		ckpt_log(CKPT_LOG_ERR, LOG, "cannot open store %s: %s", srv.cfg.pmem,
			 strerror(errno));
		return 1;
	}
	apply_journals_at_start(&srv);
	ret = 1;
	for (unsigned int i = 0; i < srv.cfg.nlisten; i++) {
		struct ckptsrv_listener *l = &srv.listeners[i];

		srv.nlisteners = i + 1;
		if (ckptsrv_listener_open(&srv, l, srv.cfg.listen[i]) < 0 ||
		    ckptsrv_listener_start(l) < 0)
			goto err_stop;
	}
	if (pthread_create(&srv.journal_thr, NULL, journal_main, &srv) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "cannot start the journal thread");
		goto err_stop;
	}
	journal_started = true;
	if (ckptsrv_distribute_start(&srv) < 0)
		goto err_stop;
	ckpt_log(CKPT_LOG_NOTICE, LOG, "serving store %s (%s) on %u listener(s)", srv.cfg.pmem,
		 pmu_store_is_pmem(srv.store) ? "pmem" : "msync", srv.nlisteners);
	/* systemd's Type=notify (config/systemd/ckptsrv.service): serving; outside it, nothing. */
	(void)sd_notifyf(0, "READY=1\nSTATUS=serving %s on %u listener(s)", srv.cfg.pmem,
			 srv.nlisteners);
	while (sigwait(&sigs, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
		;
	ckpt_log(CKPT_LOG_NOTICE, LOG, "%s: shutting down", strsignal(sig));
	(void)sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
	ret = 0;
err_stop:
	srv.stop = true;
	/* Sessions still use their listener's domain: they go first. */
	if (shutdown_sessions(&srv) < 0)
		return ret;
	ckptsrv_distribute_stop(&srv);
	if (journal_started) {
		pthread_mutex_lock(&srv.lock);
		pthread_cond_signal(&srv.journal_kick);
		pthread_mutex_unlock(&srv.lock);
		pthread_join(srv.journal_thr, NULL);
	}
	for (unsigned int i = 0; i < srv.nlisteners; i++)
		ckptsrv_listener_close(&srv.listeners[i]);
	pmu_store_close(&srv.store);
	return ret;
}
