/* SPDX-License-Identifier: BSD-3-Clause */
/* DPDK telemetry: /holdfast/stats (totals; /holdfast/stats,N worker N's), /holdfast/workers
 * (each worker at a glance), /holdfast/conns, /holdfast/ckpt and /holdfast/standby, read
 * by dpdk-telemetry.py. */
#ifndef FW_TELEMETRY_H
#define FW_TELEMETRY_H

#include "fw_standby.h"
#include "fw_worker.h"

/** Add every worker's counters into @p out (read while they run: each is one u64 load). */
void fw_counters_sum(const struct fw_worker *w, unsigned int n, struct fw_counters *out);

/** Register the commands. @return 0 or -errno of rte_telemetry_register_cmd. */
int fw_telemetry_register(struct fw_shared *sh, struct fw_worker *w, unsigned int n);

/** /holdfast/ckpt says where checkpoint I/O runs: @p where ("lcore N", "thread hf-ckpt";
 * "inline" until called). */
void fw_telemetry_ckpt_io(const char *where);

/** /holdfast/standby reports @p sb (role, lag behind the primary, death notice). */
int fw_telemetry_standby(const struct fw_standby_stats *sb);

#endif /* FW_TELEMETRY_H */
