/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Checkpoint client: one API for every checkpoint target.
 *
 * Targets:
 *	pmem:/path/file          embedded: this process maps the file itself (no server)
 *	ofi+tcp://host:port      ckptsrv over libfabric tcp (rxm)
 *	ofi+shm://name           ckptsrv on this host over libfabric shm (no remote-key
 *	                         checks in the provider: trusted hosts only, opt in)
 *	ofi+verbs://host:port    ckptsrv over rdma-core verbs (rxm)
 *
 * Writes are posted, not waited for: each returns a ticket, ckpt_flush() asks for everything
 * posted so far to become durable, and ckpt_poll() advances the region's durable ticket. A
 * write is durable only when ckpt_durable() has reached its ticket; a local completion of a
 * remote write never counts.
 *
 * Functions returning int return 0 (or a count) on success and a negative errno on failure,
 * and log a line that says what happened. Out-parameters are untouched on failure.
 */
#ifndef HOLDFAST_CKPT_H
#define HOLDFAST_CKPT_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "holdfast/ckpt_record.h"
#include "holdfast/pmu.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Log levels, as syslog's. */
enum ckpt_log_level {
	CKPT_LOG_ERR = 3,
	CKPT_LOG_WARNING = 4,
	CKPT_LOG_NOTICE = 5,
	CKPT_LOG_INFO = 6,
	CKPT_LOG_DEBUG = 7,
};

/** Receives every log line of lib/ckpt, lib/pmu and ckptsrv; @p component is e.g. "ckpt.client". */
typedef void (*ckpt_log_fn)(enum ckpt_log_level level, const char *component, const char *msg);

/** Route log lines to @p fn (NULL restores the default: stderr, level <= @p max_level). */
void ckpt_log_set(ckpt_log_fn fn, enum ckpt_log_level max_level);

struct ckpt_client_opts {
	const char *tenant;    /**< name the server knows the secret under ("default") */
	const uint8_t *secret; /**< shared secret for remote targets */
	size_t secret_len;
	unsigned int timeout_ms;   /**< per control operation and blocking read; 0 = 5000 */
	unsigned int max_inflight; /**< remote writes posted at once; 0 = 64 */
	bool allow_shm;		   /**< accept ofi+shm:// (no key checking in the provider) */
	bool create_store;	   /**< pmem: create the file if missing */
	uint64_t store_size;	   /**< pmem: size of a created file */
};

struct ckpt_client;
struct ckpt_region;

/** What a client learns of a region. */
struct ckpt_region_info {
	struct pmu_region_info r; /**< geometry as the store's table holds it */
	bool is_pmem;		  /**< the store is real persistent memory */
	bool lease_alive;	  /**< the owner's lease has not expired */
	uint64_t ring_head;	  /**< ring producer position at the time of the call */
	uint64_t ring_tail;	  /**< ring consumer position */
};

/**
 * Connect to @p target (see the file comment). Remote targets authenticate with the
 * secret before anything else.
 *
 * @return a client, or NULL with errno:
 *   EINVAL        malformed target or options,
 *   EPROTONOSUPPORT unknown scheme, or shm without allow_shm,
 *   EACCES        the server refused the secret,
 *   ETIMEDOUT     no answer within timeout_ms,
 *   ECONNREFUSED  nothing listens there,
 *   ENODATA       libfabric has no such provider here,
 *   any errno of the store (pmem:).
 */
struct ckpt_client *ckpt_connect(const char *target, const struct ckpt_client_opts *opts);

/**
 * Begin loading what @p target's transport needs (for ofi+*: libfabric and its provider's
 * initialisation, ~0.3 s here) on a thread of its own, so that a starting process overlaps
 * it with its own initialisation. Optional: ckpt_connect loads whatever is not loaded.
 * The caller must call ckpt_preload_join() before it sets signal handlers of its own or
 * connects: the load may install handlers, and the join puts back every disposition that
 * differs from the one at this call.
 * @return 1 started, 0 nothing to load (pmem:, none, or loaded already), or a negative
 *   errno (the thread could not start; the connect loads it as before).
 */
int ckpt_preload_start(const char *target);

/** Wait for a preload to finish (no-op without one), then put the signals back. */
void ckpt_preload_join(void);

/** Close every region of @p *cp and disconnect; sets *cp to NULL. NULL is a no-op. */
void ckpt_disconnect(struct ckpt_client **cp);

/** Target string the client was connected with. */
const char *ckpt_target(const struct ckpt_client *c);

/**
 * Create a region owned by this client's tenant and open it for writing. Region names are
 * per tenant: another tenant's region of the same name neither blocks nor is touched.
 * @return 0, -EINVAL, -EEXIST (this tenant has one of that name), -ENOSPC, -EACCES (the
 *   parameters name another owner), -ETIMEDOUT, -ECONNRESET.
 */
int ckpt_region_create(struct ckpt_client *c, const struct pmu_region_params *p,
		       struct ckpt_region **out);

/**
 * Open an existing region (a backup, or the primary after a restart).
 * @return 0, -ENOENT (none of this tenant's: another tenant's region is
 *   indistinguishable from a missing one), -ETIMEDOUT, -ECONNRESET.
 */
int ckpt_region_open(struct ckpt_client *c, const char *name, struct ckpt_region **out);

/**
 * Open an existing region for control requests only: lease renewals and watches, epoch
 * takes, stat. Its ring words are not read at open, so over ofi+* it makes no libfabric
 * endpoint (over tcp ~35 MB of buffers, which a killed process tears down before its
 * sockets close: the death notice waits for it). Every data-path call on the handle
 * (writes, reads, scans, log, sync) fails with -EPERM.
 * @return as ckpt_region_open().
 */
int ckpt_region_open_control(struct ckpt_client *c, const char *name, struct ckpt_region **out);

/**
 * Take over a ring another client wrote: read its head and tail again, so that this
 * client's next append goes after the last record the other one published (a standby
 * taking over its primary's regions, opened while the primary still wrote them).
 * @return 0, -EBUSY (this client has posted writes that are not yet durable), -EINVAL
 *   (inconsistent ring words), -ETIMEDOUT, -ECONNRESET.
 */
int ckpt_region_refresh(struct ckpt_region *r);
/** Wait (up to the timeout) for posted writes, then close; sets *rp to NULL. */
int ckpt_region_close(struct ckpt_region **rp);

/** Delete a region of this tenant's. @return 0, -ENOENT, -EBUSY (open elsewhere), -ETIMEDOUT. */
int ckpt_region_delete(struct ckpt_client *c, const char *name);

/** List this tenant's regions (up to @p max). @return how many exist, or -errno. */
int ckpt_region_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max);

/** Describe a region of this tenant's by name. @return 0, -ENOENT, -ETIMEDOUT. */
int ckpt_region_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out);

/** Describe an open region (geometry only; no I/O). */
const struct pmu_region_info *ckpt_region_geometry(const struct ckpt_region *r);

/** Number of slot pairs of an overwrite region (0 for append). */
uint32_t ckpt_slot_pairs(const struct ckpt_region *r);

/**
 * Post @p rec to its slot pair (rec->slot_pair) of an overwrite region: slot
 * 2 * pair + (generation & 1), so the other slot keeps the previous generation until this
 * one is durable. @p batched is a hint: where the target applies journals (a server) and
 * the region has a ring, the record goes to the journal in one contiguous write with its
 * neighbours, and the server (or the next restore) applies it to its slot; elsewhere (the
 * embedded pmem: target, a region without a ring) it is written to its slot directly.
 *
 * @return 0 and *@p ticket, or
 *   -EINVAL  not an overwrite region, pair out of range, record does not fit a slot,
 *   -EAGAIN  the write queue (or journal) is full: poll and post again,
 *   -ECONNRESET / -EIO  the target is gone.
 */
int ckpt_slot_write(struct ckpt_region *r, const struct ckpt_rec *rec, bool batched,
		    uint64_t *ticket);

/**
 * Post @p rec to the ring of an append region. The record becomes visible to readers
 * when it is durable (the head is written after it).
 * @return 0 and *@p ticket, -EINVAL, -EAGAIN (ring full until a reader clears), -ECONNRESET.
 */
int ckpt_log_append(struct ckpt_region *r, const struct ckpt_rec *rec, uint64_t *ticket);

/**
 * Ask for every write posted so far to become durable. Returns at once; completion is
 * seen through ckpt_poll()/ckpt_durable(). @return 0 or -errno of the target.
 */
int ckpt_flush(struct ckpt_region *r);

/**
 * Progress posted operations of every region of @p c without blocking.
 * @return number of completions processed, or -ECONNRESET / -EIO / -ETIMEDOUT.
 */
int ckpt_poll(struct ckpt_client *c);

/** Highest ticket of @p r known durable (every lower ticket is durable too). */
uint64_t ckpt_durable(const struct ckpt_region *r);

/** Highest ticket of @p r posted so far. */
uint64_t ckpt_posted(const struct ckpt_region *r);

/** ckpt_flush() then poll until durable or the timeout. @return 0, -ETIMEDOUT or -errno. */
int ckpt_sync(struct ckpt_region *r);

/** Called once per valid record by the readers below; nonzero stops the walk. */
typedef int (*ckpt_rec_cb)(const struct ckpt_rec *rec, void *arg);

/** What a walk found. */
struct ckpt_scan_stats {
	uint64_t records;    /**< valid records handed to the callback */
	uint64_t tombstones; /**< latest generation was a tombstone (not handed over) */
	uint64_t empty;	     /**< never-written slots */
	uint64_t invalid;    /**< bytes that did not decode (torn or corrupt) */
	uint64_t superseded; /**< valid but older than the other slot or the journal */
	uint64_t misplaced;  /**< valid record whose slot pair is not where it was found */
};

/**
 * Restore read of an overwrite region: bulk-read slots and the unapplied journal, keep the
 * highest valid generation per slot pair, skip tombstones, and call @p cb for each.
 * @return 0 (or the callback's nonzero value), -EINVAL, -ENOMEM, -ETIMEDOUT, -ECONNRESET.
 */
int ckpt_state_read(struct ckpt_region *r, ckpt_rec_cb cb, void *arg,
		    struct ckpt_scan_stats *stats);

/** ckpt_state_scan() flag: hand over tombstones too (flags & CKPT_REC_F_TOMBSTONE). */
#define CKPT_SCAN_TOMBSTONES 0x1u

/**
 * ckpt_state_read() with @p flags. With CKPT_SCAN_TOMBSTONES a pair whose newest record is
 * a tombstone is handed over as well (still counted in stats->tombstones): whoever reuses
 * the pair must continue its generation above the tombstone's.
 */
int ckpt_state_scan(struct ckpt_region *r, unsigned int flags, ckpt_rec_cb cb, void *arg,
		    struct ckpt_scan_stats *stats);

/**
 * Called by ckpt_state_scan_split() with the records of a chunk of slots, in scan order;
 * valid until it returns. Nonzero stops the walk (no chunk after).
 */
typedef int (*ckpt_recs_cb)(const struct ckpt_rec *recs, unsigned int n, void *arg);

/**
 * ckpt_state_scan() over two threads: the slots are read, validated and decoded on a thread
 * of its own (started and joined inside the call, on @p reader_cpus, or where the caller may
 * run when NULL) while the caller's thread runs @p take: the same records in the same order
 * as ckpt_state_scan() hands over, one chunk (1 MB of slots) at a time. While it runs, the
 * reader thread uses the region's client: the caller must not. A record backend (group:)
 * scans as ckpt_state_scan() does, one record a call. When @p take stops the walk, @p stats
 * count the pairs up to the end of its chunk. When no thread can be started (or placed on
 * @p reader_cpus), the scan runs on the caller's thread, one record a call.
 * @return as ckpt_state_scan() (take's nonzero value).
 */
int ckpt_state_scan_split(struct ckpt_region *r, unsigned int flags, const cpu_set_t *reader_cpus,
			  ckpt_recs_cb take, void *arg, struct ckpt_scan_stats *stats);

/**
 * Read everything unread in an append region, call @p cb for each record, then clear it
 * (advance and persist the tail). With @p peek the tail is left alone.
 * @return records handed over, or -errno.
 */
int ckpt_log_read(struct ckpt_region *r, ckpt_rec_cb cb, void *arg, bool peek,
		  struct ckpt_scan_stats *stats);

/**
 * Renew this client's lease as owner of @p r for @p ttl_ms.
 * @return 0, -EACCES (not the owner), -ETIMEDOUT, -ECONNRESET.
 */
int ckpt_lease_renew(struct ckpt_region *r, unsigned int ttl_ms);

/*
 * Fencing and death notice (docs/checkpoint.md, "Failover").
 *
 * A lease region (the firewall's NAME.0) carries an epoch, kept durably by the store beside
 * the lease and reported in ckpt_region_info.r.epoch. A primary takes a new epoch when it
 * starts and a standby when it takes over; every connection of that process is then bound to
 * it. Once anyone takes a newer epoch, everything a bound connection asks that changes the
 * store (write barriers, lease renewals, region create and delete) is refused with -ESTALE,
 * and a remote server also withdraws the stale sessions' remote keys, so their one-sided
 * writes stop landing. -ESTALE is final: the process was fenced and must stop.
 *
 * The lease holder's death is noticed without waiting for the lease: ckptsrv releases the
 * lease the moment the session that renewed it goes without a word; for pmem: the holder
 * keeps an OFD lock on the store file that the kernel drops when the process dies.
 */

/**
 * Take the next epoch of lease region @p r, durably and atomically (compare-and-swap): it
 * succeeds only while the region's epoch is still @p seen, so of several standbys that saw
 * the same epoch exactly one wins. On success the client of @p r is bound to the new epoch
 * (as ckpt_epoch_bind() does) and @p *epoch is set.
 * @return 0, -ESTALE (the epoch is no longer @p seen: someone else took it), -EACCES (not
 * the owner), -ENOTSUP (the target keeps no epochs), or a transient error.
 */
int ckpt_epoch_take(struct ckpt_region *r, uint64_t seen, uint64_t *epoch);

/**
 * Bind every later request of @p c to epoch @p epoch of the lease region @p lease_name (a
 * region of the same owner): from then on @p c is refused with -ESTALE once that region's
 * epoch has moved past @p epoch. A client is bound to at most one lease region; binding
 * again replaces it. @return 0, -ESTALE (already past), -ENOENT, -ENOTSUP or transient.
 */
int ckpt_epoch_bind(struct ckpt_client *c, const char *lease_name, uint64_t epoch);

/**
 * Wait until the lease on @p r is free: its holder released it, let it run out, or died
 * (its session ended; for pmem: its process exited). Meant for a client of its own on a
 * thread of its own: a remote wait blocks its connection meanwhile.
 * @return 0 (free), -ETIMEDOUT (still held after @p timeout_ms), -ENOTSUP (the target can
 * only be asked with ckpt_region_stat(): fall back to watching the lease run out), or a
 * transient error.
 */
int ckpt_lease_watch(struct ckpt_region *r, unsigned int timeout_ms);

/**
 * Is @p err (an errno of this API: negative as functions return it, or positive as errno
 * after a NULL) worth trying again later, or must someone change something first?
 *
 * Not transient: what retrying the same call cannot fix, the configuration, the
 * operator's or the target's, is wrong:
 *   EINVAL          a malformed target, name, option or record; a geometry that does not
 *                   check,
 *   EPROTONOSUPPORT an unknown scheme, or shm without allow_shm,
 *   EACCES, EPERM   the secret was refused, or the region belongs to another owner,
 *   ENOSPC          the store or the region is too small for what is asked,
 *   EDQUOT          the tenant's quota (regions or bytes) is used up,
 *   ENOTSUP         the target cannot do what is asked (EOPNOTSUPP is the same value),
 *   ESTALE          this client was fenced: a newer epoch was taken (ckpt_epoch_take()).
 *
 * Transient: everything else, above all the target being away or busy: ECONNRESET,
 * ECONNREFUSED, ENOTCONN, EPIPE, ETIMEDOUT, EIO (a lost or failed connection: reconnect
 * and write again), EAGAIN (a full queue or ring: poll, post again), ENOENT (a region not
 * there yet: its owner may create it), ENODATA (no provider answered, e.g. a name that did
 * not resolve), EUSERS (the server's sessions are full), ENOMEM. A dead connection keeps
 * returning the errno that killed it, whatever it was: when in doubt, try again (with
 * backoff) rather than give up.
 *
 * @return true for a transient error, false for 0 and for the errors listed as not.
 */
static inline bool ckpt_err_transient(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
	case EINVAL:
	case EPROTONOSUPPORT:
	case EACCES:
	case EPERM:
	case ENOSPC:
	case EDQUOT:
	case ENOTSUP:
	case ESTALE:
		return false;
	default:
		return true;
	}
}

/** Parse "123", "64k", "256M", "2G" into bytes. @return 0 or -EINVAL. */
int ckpt_parse_size(const char *s, uint64_t *out);

/**
 * Read a secret file: one line "tenant secret" or a bare secret (tenant "default"); '#'
 * starts a comment. With @p tenant NULL the first entry is taken.
 * @return bytes of secret stored into @p out (at most @p max), or -ENOENT (no such tenant),
 *   -EINVAL (malformed, or a secret shorter than 16 bytes), or -errno of open(2).
 */
int ckpt_secret_load(const char *path, const char *tenant, uint8_t *out, size_t max);

#ifdef __cplusplus
}
#endif

#endif /* HOLDFAST_CKPT_H */
