/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv internals: configuration, libfabric listeners, client sessions.
 */
#ifndef CKPTSRV_H
#define CKPTSRV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include "holdfast/pmu.h"
#include "proto.h"

#define CKPTSRV_MAX_LISTEN 8
#define CKPTSRV_URL_MAX	   256
#define CKPTSRV_MAX_OPENS  1024 /* handles one session may hold */
#define CKPTSRV_WEDGED_MS  5000

/*
 * Limits and their defaults (docs/checkpoint.md, "Limits"). The idle timeout is never
 * shorter than CKPTSRV_IDLE_MIN_MS: clients send a keepalive after a second of silence
 * (KEEPALIVE_MS in lib/ckpt/ofi_internal.h), and polls a second apart must leave room
 * for a few of them.
 */
#define CKPTSRV_HANDSHAKE_MAX	     64	   /* connections authenticating, per listener */
#define CKPTSRV_HANDSHAKE_TIMEOUT_MS 2000  /* for the whole handshake */
#define CKPTSRV_IDLE_TIMEOUT_MS	     60000 /* an authenticated session that sends nothing */
#define CKPTSRV_IDLE_MIN_MS	     5000
#define CKPTSRV_MAX_SESSIONS	     1024  /* authenticated sessions, every tenant's */
#define CKPTSRV_LOG_BURST	     10	   /* lines a peer can provoke, per call site... */
#define CKPTSRV_LOG_INTERVAL_MS	     10000 /* ...and interval */
/*
 * Every tenant's quota unless a quota line says otherwise. A firewall needs per worker a
 * state region and a log (NAME.W, NAME.W.log: 32 regions at 16 workers), one session per
 * worker, one for its lease and, as a standby, as many again; the test suites make up to
 * about 20 regions per tenant. Bytes are not limited by default (all of the store): a
 * store shared by tenants wants a quota line for each.
 */
#define CKPTSRV_TENANT_REGIONS	 64
#define CKPTSRV_TENANT_BYTES_PCT 100
#define CKPTSRV_TENANT_SESSIONS	 64
#define CKPTSRV_TENANT_HANDLES	 256
#define CKPTSRV_MAX_QUOTAS	 64 /* quota lines */

/** What one tenant may hold. */
struct ckptsrv_limits {
	unsigned int regions;	/* live regions it owns, counted in the store (restarts too) */
	uint64_t bytes;		/* their bytes; with bytes_pct nonzero, that share of the store */
	unsigned int bytes_pct; /* 1..100: bytes is this percentage of the store file */
	unsigned int sessions;	/* authenticated sessions at once */
	unsigned int handles;	/* open handles, all its sessions together */
};

/* Which fields of a quota line were given; the others follow the tenant-max-* defaults. */
#define CKPTSRV_QUOTA_REGIONS  0x1u
#define CKPTSRV_QUOTA_BYTES    0x2u
#define CKPTSRV_QUOTA_SESSIONS 0x4u
#define CKPTSRV_QUOTA_HANDLES  0x8u

/** A "quota = TENANT regions=N bytes=SIZE|P% sessions=N handles=N" line. */
struct ckptsrv_quota {
	char tenant[PMU_NAME_MAX];
	struct ckptsrv_limits lim;
	unsigned int given; /* CKPTSRV_QUOTA_* */
};

/** CLOCK_MONOTONIC in milliseconds. */
uint64_t ckptsrv_now_ms(void);

struct ckptsrv_config {
	char pmem[4096];
	uint64_t size;
	char listen[CKPTSRV_MAX_LISTEN][CKPTSRV_URL_MAX];
	unsigned int nlisten;
	char secret_file[4096];
	char distribute[4096]; /* group target every region is also formed into; "" none */
	bool allow_shm;
	bool format;		       /* make pmem a new, empty store even if it exists */
	enum ckpt_log_level log_level; /* 0 until set: NOTICE */
	/* ckptsrv_config_parse() starts these at the defaults above */
	unsigned int handshake_max;
	unsigned int handshake_timeout_ms;
	unsigned int idle_timeout_ms;
	unsigned int max_sessions;
	unsigned int log_burst;
	unsigned int log_interval_ms;
	struct ckptsrv_limits tenant; /* tenant-max-*: every tenant's, unless a quota says */
	struct ckptsrv_quota quota[CKPTSRV_MAX_QUOTAS];
	unsigned int nquota;
};

/**
 * Fill @p cfg from argv (and the --config file it names; flags given on the command line
 * win over the file, and command-line --listen replace the file's).
 * @return 0, 1 when --help was asked for (usage printed), or -EINVAL (reason logged).
 */
int ckptsrv_config_parse(int argc, char **argv, struct ckptsrv_config *cfg);

/** Load a config file into @p cfg. @return 0 or -EINVAL/-errno, "file:line: why" logged. */
int ckptsrv_config_load(const char *path, struct ckptsrv_config *cfg);

/** Set every limit of @p cfg to its default (the rest is left alone). */
void ckptsrv_config_defaults(struct ckptsrv_config *cfg);

/** The limits that apply to @p tenant: its quota line's fields, the defaults for the rest. */
void ckptsrv_limits_of(const struct ckptsrv_config *cfg, const char *tenant,
		       struct ckptsrv_limits *out);

enum ckptsrv_kind {
	CKPTSRV_TCP,
	CKPTSRV_SHM,
	CKPTSRV_VERBS,
};

struct ckptsrv;

/** One --listen URL: a control socket and one libfabric RDM endpoint. */
struct ckptsrv_listener {
	struct ckptsrv *srv;
	char url[CKPTSRV_URL_MAX];
	enum ckptsrv_kind kind;
	const char *prov;
	int lfd; /* control socket */
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	uint8_t epname[CKPT_PROTO_EP_MAX];
	uint32_t epname_len;
	bool cq_wait;	/* the CQ has a wait object: fi_cq_sread works */
	bool virt_addr; /* FI_MR_VIRT_ADDR: remote addresses are virtual addresses */
	bool prov_key;	/* FI_MR_PROV_KEY: the provider picks keys */
	pthread_t progress_thr;
	pthread_t accept_thr; /* accepts and authenticates (handshake.c) */
	bool threads_started;
	/* ms (CLOCK_MONOTONIC) when the progress thread last came back from libfabric */
	uint64_t progress_beat;
	/* ms of the last control request: one-sided RMA leaves no trace on the server's CQ, so
	 * the control channel is the only sign that clients are busy (see fabric.c) */
	uint64_t active_ms;
	/* the progress thread has not come back for CKPTSRV_WEDGED_MS (see ckptsrv.c) */
	bool wedged;
};

/** A region opened by one session: its memory registration is its remote key. */
struct ckptsrv_open {
	struct ckptsrv_open *next;
	uint64_t handle;
	struct pmu_region_info info;
	void *base;
	struct fid_mr *mr;
	uint64_t key;
};

/** An authenticated client's control connection, served on a thread of its own. */
struct ckptsrv_session {
	struct ckptsrv_session *next;
	struct ckptsrv_listener *l;
	int fd;
	char peer[128];
	char tenant[PMU_NAME_MAX];
	struct ckptsrv_open *opens;
	unsigned int nopens;
	/*
	 * Fencing (TAKE, BIND; under srv->lock): the lease region this session is bound to, as
	 * the store described it, and the epoch it is bound to. Once another session takes a
	 * newer epoch of that region, the session is fenced: its keys are withdrawn and every
	 * request it makes is answered -ESTALE. PERSIST reads fenced without the lock.
	 */
	bool bound;
	struct pmu_region_info bind_region;
	uint64_t bind_epoch;
	bool fenced;
	uint8_t buf[CKPT_PROTO_FRAME_MAX];
};

/* Who renewed a region's lease last (by table index): its death releases the lease. */
struct ckptsrv_lease_holder {
	struct ckptsrv_session *s; /* NULL: nobody this server has seen */
	uint64_t created_ns;	   /* of the region it renewed: an entry may be reused */
	char name[PMU_NAME_MAX];
};

struct ckptsrv {
	struct ckptsrv_config cfg;
	struct pmu_store *store;
	struct ckptsrv_listener listeners[CKPTSRV_MAX_LISTEN];
	unsigned int nlisteners;
	/* Protects the store's table, every session's opens, and the session list. */
	pthread_mutex_t lock;
	pthread_cond_t journal_kick;
	pthread_cond_t sessions_gone;
	/* CLOCK_MONOTONIC; broadcast when a lease is released (a holder's session ended) and at
	 * shutdown. WATCH waits on it, and wakes by itself when the lease it watches runs out. */
	pthread_cond_t lease_change;
	struct ckptsrv_lease_holder holder[PMU_MAX_REGIONS];
	bool journal_due;
	struct ckptsrv_session *sessions; /* authenticated ones only */
	unsigned int nsessions;
	uint64_t next_handle;
	pthread_t journal_thr;
	pthread_t distribute_thr;
	volatile bool stop;
};

/**
 * With --distribute: form every region of the store into the group target as well (see
 * distribute.c). @return 0 (thread started, or nothing to distribute) or -errno.
 */
int ckptsrv_distribute_start(struct ckptsrv *srv);

/** Stop and join the distributor (srv->stop must be set). */
void ckptsrv_distribute_stop(struct ckptsrv *srv);

/** Parse @p url, open its control socket and its endpoint. @return 0 or -errno (logged). */
int ckptsrv_listener_open(struct ckptsrv *srv, struct ckptsrv_listener *l, const char *url);

/** Start the listener's progress and accept threads. @return 0 or -errno. */
int ckptsrv_listener_start(struct ckptsrv_listener *l);

/** Stop the threads (srv->stop must be set) and close everything. */
void ckptsrv_listener_close(struct ckptsrv_listener *l);

/**
 * Register @p len bytes at @p base for remote read and write with a fresh random key.
 * @return 0 with *mr and *key, or -errno (logged).
 */
int ckptsrv_mr_reg(struct ckptsrv_listener *l, void *base, uint64_t len, struct fid_mr **mr,
		   uint64_t *key);

/** The listener's accept thread: accepts and authenticates (handshake.c); @p arg the listener. */
void *ckptsrv_accept_main(void *arg);

/** A name a tenant may give a region or itself: printable ASCII, no space, no '/' (config.c). */
bool ckptsrv_name_ok(const char *s);

/**
 * Admit tenant @p tenant, authenticated on @p fd, as a session of listener @p l (not served
 * yet: ckptsrv_session_start()). It counts against max-sessions.
 * @return the session, or NULL with errno ESHUTDOWN (the server stops), EUSERS (a limit;
 *   logged) or ENOMEM.
 */
struct ckptsrv_session *ckptsrv_session_admit(struct ckptsrv_listener *l, int fd, const char *peer,
					      const char *tenant);

/** Serve @p s on a thread of its own (session.c). @return 0, or -errno with @p s ended. */
int ckptsrv_session_start(struct ckptsrv_session *s);

/** Initialise the lock and the condition variables of @p srv. @return 0 or -errno. */
int ckptsrv_sync_init(struct ckptsrv *srv);

/**
 * Answer request @p req of @p s into @p rep (type and seq set). @return its status. A WATCH
 * blocks the calling thread up to its timeout (capped at half the idle timeout).
 */
int ckptsrv_dispatch(struct ckptsrv_session *s, const struct ckpt_msg *req, struct ckpt_msg *rep);

/**
 * Undo every registration @p s holds, take it off the session list, close its socket (if
 * any) and free it. A lease @p s renewed last and that is still running is released at once
 * (unless the server stops), and WATCH waiters are woken. @return the handles it held.
 */
unsigned int ckptsrv_session_end(struct ckptsrv_session *s);

/** The name of a request type, for log lines. */
const char *ckptsrv_type_name(uint16_t type);

/*
 * Quotas (quota.c). Each is checked under srv->lock, counts what the tenant holds right
 * now, and logs a refusal (rate limited) with tenant, peer, limit and usage.
 */

/** May @p tenant open one more session? @return 0 or -EUSERS. */
int ckptsrv_quota_session(struct ckptsrv *srv, const char *tenant, const char *peer);

/**
 * May @p s create the region @p p? Its regions and bytes are counted from the
 * store's live regions it owns. A request the store would refuse anyway (a bad layout, a
 * name the tenant has) passes here, to be refused there.
 * @return 0, -EDQUOT (regions or bytes) or -ENOMEM.
 */
int ckptsrv_quota_create(struct ckptsrv_session *s, const struct pmu_region_params *p);

/** May @p s hold one more handle (all its tenant's sessions count)? @return 0 or -EMFILE. */
int ckptsrv_quota_open(struct ckptsrv_session *s);

#endif /* CKPTSRV_H */
