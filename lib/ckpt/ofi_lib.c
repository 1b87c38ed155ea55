/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libfabric, loaded the first time an ofi+* target is connected, not when the process
 * starts. Debian's libfabric1 links the PSM and PSM2 providers' libraries, and
 * libpsm_infinipath's constructor calibrates its clock with usleep() for 100-230 ms in
 * every process that loads it, before main() runs: a firewall that checkpoints to pmem:
 * paid that on every restart for a transport it never used (docs/checkpoint.md, "Start-up
 * time"). The six functions the client calls by name are looked up once; everything else
 * in libfabric's API is inline calls through the objects' ops tables, which need no symbol.
 *
 * libinfinipath's constructor also installs its own handlers for SIGINT, SIGTERM, SIGSEGV,
 * SIGBUS, SIGILL and SIGABRT (they exit 1): loaded at start-up, main() overrode two of them
 * by luck of order; loaded later, it would take SIGINT and SIGTERM from the firewall's
 * shutdown. Whatever the process had before the load is put back; the shm provider's
 * first endpoint installs handlers too, and ckpt_ofi_fabric_open puts those back the same
 * way (ckpt_ofi_sigs_save / ckpt_ofi_sigs_restore).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ofi_internal.h"

#define LIBFABRIC "libfabric.so.1"

static struct ckpt_ofi_lib lib;
static int lib_err; /* 0 loaded, or the errno of the failed load */
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* A load started early (ckpt_preload_start) and not yet joined: see there. */
static struct {
	bool on;
	pthread_t tid;
	char prov[32];
	struct ckpt_ofi_sigs before;
	struct timespec t0;
} preload;

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (p == NULL)
		ckpt_log(CKPT_LOG_ERR, LOG, "%s has no %s: %s", LIBFABRIC, name, dlerror());
	return p;
}

/*
 * The tcp;ofi_rxm stack's defaults are sized for two-sided messaging, which the client never
 * does (its data path is fi_write and fi_read; its requests go over the control socket):
 * among them 128 receive buffers of 16 KiB posted per connection, from pools zeroed at
 * fi_enable. An endpoint cost 70 MB resident and 190 ms of fi_enable here, and the resident
 * size is what a killed firewall's kernel tears down before its sockets close: the server's
 * death notice waited for it (kill -> reaped 21-25 ms, against 8-11 ms on pmem:). RMA does
 * not use these buffers. The buffer size must match the server's, which sets the same
 * (CKPT_OFI_RXM_BUFFER_SIZE). An operator's own setting of a variable is kept.
 */
static const struct {
	const char *name, *value;
} rxm_defaults[] = {
	{"FI_OFI_RXM_MSG_RX_SIZE", "16"}, /* default 128 */
	{"FI_OFI_RXM_BUFFER_SIZE", CKPT_OFI_RXM_BUFFER_SIZE},
};

void ckpt_ofi_sigs_save(struct ckpt_ofi_sigs *s)
{
	for (int i = 1; i < NSIG; i++)
		if (sigaction(i, NULL, &s->act[i]) != 0)
			s->act[i].sa_handler = SIG_ERR; /* no such signal */
}

void ckpt_ofi_sigs_restore(const struct ckpt_ofi_sigs *s, const char *what)
{
	struct sigaction now;

	for (int i = 1; i < NSIG; i++) {
		if (s->act[i].sa_handler == SIG_ERR || sigaction(i, NULL, &now) != 0 ||
		    memcmp(&now.sa_handler, &s->act[i].sa_handler, sizeof(now.sa_handler)) == 0)
			continue;
		sigaction(i, &s->act[i], NULL);
		ckpt_log(CKPT_LOG_DEBUG, LOG, "%s set a handler for signal %d (%s): put back", what,
			 i, strsignal(i));
	}
}

/*
 * Read by the provider when it initialises (at the first fi_getinfo), after this.
 * setenv() races getenv() in other threads: it runs before any libfabric thread exists,
 * at the first connect or on the thread that starts a preload, and DPDK's threads do not
 * read the environment. With the variables already set (a preload) it changes nothing.
 */
static void env_defaults(void)
{
	for (size_t i = 0; i < sizeof(rxm_defaults) / sizeof(rxm_defaults[0]); i++)
		setenv(rxm_defaults[i].name, rxm_defaults[i].value, 0);
}

static void lib_load(void)
{
	struct ckpt_ofi_sigs before;
	void *h;

	env_defaults();
	/* A preload's thread leaves the signals to ckpt_preload_join, which saved them before
	 * the thread began: other threads may be setting theirs meanwhile. */
	if (!preload.on)
		ckpt_ofi_sigs_save(&before);
	h = dlopen(LIBFABRIC, RTLD_NOW | RTLD_LOCAL);
	if (!preload.on)
		ckpt_ofi_sigs_restore(&before, "loading " LIBFABRIC);

	if (h == NULL) {
		ckpt_log(CKPT_LOG_ERR, LOG, "cannot load %s (package libfabric1): %s", LIBFABRIC,
			 dlerror());
		lib_err = ENOTSUP;
		return;
	}
	/* Plain dlsym gives each symbol's default version: the one linking against these
	 * headers would bind. */
	*(void **)&lib.getinfo = sym(h, "fi_getinfo");
	*(void **)&lib.freeinfo = sym(h, "fi_freeinfo");
	*(void **)&lib.dupinfo = sym(h, "fi_dupinfo");
	*(void **)&lib.fabric = sym(h, "fi_fabric");
	*(void **)&lib.strerror = sym(h, "fi_strerror");
	*(void **)&lib.tostr = sym(h, "fi_tostr");
	if (lib.getinfo == NULL || lib.freeinfo == NULL || lib.dupinfo == NULL ||
	    lib.fabric == NULL || lib.strerror == NULL || lib.tostr == NULL) {
		dlclose(h);
		lib = (struct ckpt_ofi_lib){0};
		lib_err = ENOTSUP;
	}
}

const struct ckpt_ofi_lib *ckpt_ofi_lib(void)
{
	pthread_once(&lib_once, lib_load);
	if (lib_err) {
		errno = lib_err;
		return NULL;
	}
	return &lib;
}

/*
 * Preload. Loading libfabric costs a start ~0.2 s (libpsm_infinipath's constructor sleeps
 * while it calibrates a clock) and its first fi_getinfo ~0.1-0.15 s more (every provider
 * built into Debian's libfabric initialises, and verbs reads /proc/kallsyms twice). A start
 * that knows it will connect to an ofi+* target runs both on a thread of its own while EAL
 * initialises (whose ~0.14 s are mostly DPDK's own clock calibration sleep): the costs
 * overlap instead of adding up (docs/checkpoint.md, "Start-up time").
 */
static void *preload_main(void *arg)
{
	const struct ckpt_ofi_lib *l;
	struct fi_info *hints, *info = NULL;

	(void)arg;
	l = ckpt_ofi_lib();
	if (l == NULL)
		return NULL; /* logged; the connect will say it again */
	hints = l->dupinfo(NULL);
	if (hints == NULL)
		return NULL;
	hints->ep_attr->type = FI_EP_RDM;
	hints->caps = FI_RMA;
	hints->fabric_attr->prov_name = strdup(preload.prov);
	if (l->getinfo(FI_VERSION(1, 17), NULL, NULL, 0, hints, &info) == 0)
		l->freeinfo(info);
	l->freeinfo(hints);
	return NULL;
}

/* The provider a target's first ofi+* member needs, as the connect will ask for it. */
static const char *target_provider(const char *target)
{
	static const struct {
		const char *scheme, *prov;
	} map[] = {
		{"ofi+tcp://", "tcp;ofi_rxm"},
		{"ofi+verbs://", "verbs;ofi_rxm"},
		{"ofi+shm://", "shm"},
	};
	const char *first = NULL, *prov = NULL;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *at = strstr(target, map[i].scheme);

		if (at != NULL && (first == NULL || at < first)) {
			first = at;
			prov = map[i].prov;
		}
	}
	return prov;
}

int ckpt_preload_start(const char *target)
{
	const char *prov;
	int ret;

	if (target == NULL || preload.on || lib_err != 0 || lib.getinfo != NULL)
		return 0;
	prov = target_provider(target);
	if (prov == NULL)
		return 0;
	snprintf(preload.prov, sizeof(preload.prov), "%s", prov);
	env_defaults();
	ckpt_ofi_sigs_save(&preload.before);
	clock_gettime(CLOCK_MONOTONIC, &preload.t0);
	preload.on = true;
	ret = pthread_create(&preload.tid, NULL, preload_main, NULL);
	if (ret != 0) {
		preload.on = false;
		return -ret; /* the connect will load it as before */
	}
	return 1;
}

void ckpt_preload_join(void)
{
	struct timespec t1;

	if (!preload.on)
		return;
	pthread_join(preload.tid, NULL);
	preload.on = false;
	ckpt_ofi_sigs_restore(&preload.before, "loading " LIBFABRIC);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ckpt_log(CKPT_LOG_NOTICE, LOG,
		 "%s and provider %s loaded beside the start (joined %.1f ms "
		 "after it began)",
		 LIBFABRIC, preload.prov,
		 (double)(t1.tv_sec - preload.t0.tv_sec) * 1e3 +
			 (double)(t1.tv_nsec - preload.t0.tv_nsec) / 1e6);
}

const char *ckpt_ofi_strerror(int fi_err)
{
	static __thread char buf[32];
	const struct ckpt_ofi_lib *l = ckpt_ofi_lib();

	if (l != NULL)
		return l->strerror(fi_err);
	snprintf(buf, sizeof(buf), "libfabric error %d", fi_err);
	return buf;
}
