/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A firewall's checkpoint layout: where its checkpoints go and how it connects there, what
 * its regions are called and how big they are. Every name, size and connection option
 * holdfast uses at a checkpoint target comes from here -- the workers' checkpointers, the
 * start-up restore, the lease keeper and the standby -- so that they cannot disagree.
 *
 *   NAME.W      worker W's state region (overwrite mode): `pairs` slot pairs of
 *               `slot_size` bytes, and a 4 MB journal ring
 *   NAME.W.log  worker W's log (append mode, `log_size` bytes), which a standby follows
 *   NAME.0      worker 0's state region holds the primary's lease as well
 *
 * Private to holdfast.
 */
#ifndef FW_CKPT_LAYOUT_H
#define FW_CKPT_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "holdfast/ckpt.h"

struct fw_config;

#define FW_CKPT_SECRET_MAX 64

struct fw_ckpt_layout {
	const char *target; /**< "pmem:/path", "ofi+tcp://host:port", "group:..." */
	const char *region; /**< NAME */
	const char *tenant;
	uint8_t secret[FW_CKPT_SECRET_MAX]; /**< remote targets; secret_len 0: none */
	size_t secret_len;
	bool allow_shm;	       /**< the operator accepts ofi+shm:// (ckpt-allow-shm) */
	unsigned int nworkers; /**< workers, hence state regions and logs */
	uint64_t pairs;	       /**< slot pairs of each state region */
	uint32_t slot_size;
	uint64_t log_size;   /**< each log's ring bytes; 0: no log */
	uint64_t store_size; /**< pmem: size of a store created on first start */
};

/**
 * The layout of @p conf for @p nworkers workers: a slot pair per slice a connection may
 * hold (the module registry says how many) for max-conns connections, 128-byte slots, the
 * secret of the tenant read from ckpt-secret-file, a store big enough for every region
 * unless ckpt-size says otherwise. A primary on a pmem: target also gets the store's
 * folder made, which a first start may lack.
 * @return 0, or -errno of ckpt_secret_load() with what is wrong in @p err.
 */
int fw_ckpt_layout_init(struct fw_ckpt_layout *l, const struct fw_config *conf,
			unsigned int nworkers, char *err, size_t errlen);

/** Forget the secret. */
void fw_ckpt_layout_release(struct fw_ckpt_layout *l);

/**
 * Worker @p worker's state region: its name into @p name and, unless @p p is NULL, how
 * to create it (p->name points at @p name).
 */
void fw_ckpt_layout_state(const struct fw_ckpt_layout *l, unsigned int worker,
			  char name[PMU_NAME_MAX], struct pmu_region_params *p);

/** Worker @p worker's log: as fw_ckpt_layout_state(). */
void fw_ckpt_layout_log(const struct fw_ckpt_layout *l, unsigned int worker,
			char name[PMU_NAME_MAX], struct pmu_region_params *p);

/** The region whose lease says which holdfast is the primary. */
void fw_ckpt_layout_lease(const struct fw_ckpt_layout *l, char name[PMU_NAME_MAX]);

/** Bytes a store needs to hold every region of the layout, with room to spare. */
uint64_t fw_ckpt_layout_store_size(const struct fw_ckpt_layout *l);

/**
 * Connect to the target as this firewall's tenant, @p timeout_ms per operation; with
 * @p create_store a missing pmem: store is created (store_size bytes).
 * @return the client, or NULL with errno as ckpt_connect().
 */
struct ckpt_client *fw_ckpt_layout_connect(const struct fw_ckpt_layout *l, unsigned int timeout_ms,
					   bool create_store);

#endif /* FW_CKPT_LAYOUT_H */
