/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Primary and standby. The primary holds a lease on its first state region (NAME.0),
 * renewed by a thread of its own so that no worker ever waits on it. A standby opens the
 * primary's regions, follows every worker's log into a shadow table (the workers' tables,
 * before any port starts), rescans a state region when its log says it skipped records,
 * and takes over when the lease runs out or on a command. Private to holdfast.
 */
#ifndef FW_STANDBY_H
#define FW_STANDBY_H

#include <signal.h>
#include <stdint.h>

#include "fw_checkpoint.h"
#include "fw_worker.h"

struct fw_lease;

/** CLOCK_MONOTONIC in nanoseconds (failover times). */
uint64_t fw_mono_ns(void);

/**
 * Start renewing the lease of @p l (fw_ckpt_layout_lease) every @p ttl_ms / 4 for
 * @p ttl_ms, on a thread off the workers' CPUs, and publish to the workers how long it
 * holds (@p sh->lease_until_ns: from the first renewal on, they forward nothing after it;
 * before, nobody else holds it: fw_lease_wait_free() or the standby's epoch said so). Its
 * connection takes a new epoch if @p sh->epoch is 0 (a primary's start) or binds to it (a
 * standby that took one); -ESTALE on either or on a renewal calls fw_fence(). A standby
 * passes the client @p cl and lease region @p r it took the epoch on (fw_standby_stats),
 * which the keeper renews with and disconnects (NULL, NULL: it connects its own).
 * @return the keeper, or NULL with errno (ENOMEM, or what pthread_create says). A target
 *   that cannot be reached is retried by the keeper, and logged once.
 */
struct fw_lease *fw_lease_start(const struct fw_ckpt_layout *l, uint32_t ttl_ms,
				struct fw_shared *sh, struct ckpt_client *cl,
				struct ckpt_region *r);

/** Say once that the target keeps no epochs (ckpt_epoch_take() said -ENOTSUP). */
void fw_epoch_unsupported(const char *target);

/** Stop renewing and let the lease run out now (a clean stop hands over at once). */
void fw_lease_stop(struct fw_lease **lp);

/**
 * Before a primary starts: a lease (fw_ckpt_layout_lease) that is still alive belongs to a holdfast
 * that was killed (it runs out within its ttl) or to one that runs (it is renewed). Wait
 * for the first, refuse the second.
 * @return 0 (no live lease), -EBUSY (renewed: another primary runs), or -errno of the target.
 */
int fw_lease_wait_free(const struct fw_ckpt_layout *l, uint32_t ttl_ms);

/** Where a holdfast stands (fw_standby_stats.state; telemetry /holdfast/standby). */
enum fw_role_state {
	FW_ROLE_PRIMARY,     /**< started as the primary */
	FW_ROLE_WAITING,     /**< a standby waiting for the primary's regions */
	FW_ROLE_FOLLOWING,   /**< a standby following the primary's logs */
	FW_ROLE_TAKING_OVER, /**< a standby that won the epoch, starting its ports */
	FW_ROLE_TOOK_OVER,   /**< a standby that became the primary */
};

/** Is the standby told of the primary's death (fw_standby_stats.death_notice)? */
enum fw_death_notice {
	FW_DEATH_NOTICE_CONNECTING,  /**< the watch is not connected yet */
	FW_DEATH_NOTICE_ACTIVE,	     /**< the watch waits on the lease */
	FW_DEATH_NOTICE_UNSUPPORTED, /**< the target cannot tell: the lease runs out first */
};

/**
 * What a standby did and where it stands. Written by the standby, read by telemetry while it
 * runs (each field one aligned load).
 */
struct fw_standby_stats {
	uint64_t log_records;  /**< records read from the logs */
	uint64_t rescans;      /**< state regions read whole (start, gaps, reconnects) */
	uint64_t scan_records; /**< records read by those rescans */
	struct fw_restore_stats st;
	uint64_t detect_ns;	  /**< when the lease was seen expired, or the command came */
	uint64_t caught_up_ns;	  /**< when the rest of the logs was read */
	const char *reason;	  /**< "lease expired" or "command" */
	uint64_t epoch;		  /**< taken at takeover; 0: the target keeps none */
	uint64_t epoch_ns;	  /**< when it was taken */
	uint64_t lost_races;	  /**< epochs another standby took first */
	int state;		  /**< enum fw_role_state */
	int death_notice;	  /**< enum fw_death_notice */
	uint64_t caught_up_at_ns; /**< when a read of every log last finished (fw_mono_ns) */
	uint64_t log_unread;	  /**< log bytes the primary wrote that are not read yet */
	/** A standby that took over: the client and lease region it took the epoch on, bound
	 * to it, for fw_lease_start() (which then owns them). */
	struct ckpt_client *lease_cl;
	struct ckpt_region *lease_r;
};

/** "active", "unsupported", "connecting" (enum fw_death_notice). */
const char *fw_death_notice_name(int state);

/** "primary", "waiting", "following", "taking over", "took over" (enum fw_role_state). */
const char *fw_role_state_name(int state);

/**
 * Be the standby of the primary whose regions @p l names, for workers @p w (their
 * checkpointers created FW_CKPT_DETACHED, their tables empty). Returns when the standby
 * is to take over, with every worker's table holding the primary's connections (still
 * FW_CONN_F_RESTORING: the caller runs fw_restore_finish()), or when @p quit is set.
 * Prints "holdfast: standby" once it follows the primary; @p takeover (SIGUSR1) asks for a
 * takeover now.
 * @return 0 (take over), 1 (quit), or -errno (a target that refuses us for good).
 */
int fw_standby_run(const struct fw_ckpt_layout *l, struct fw_worker *w, unsigned int nworkers,
		   uint32_t poll_ms, volatile bool *quit, volatile sig_atomic_t *takeover,
		   struct fw_standby_stats *out);

#endif /* FW_STANDBY_H */
