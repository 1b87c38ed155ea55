/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * holdfast.conf: one setting per line, '#' comments, errors name file:line and why.
 * Flags on the command line override the file. The modules' settings (`timeout NAME
 * SECONDS`, `ftp-ports`) are theirs: the registry hands those lines to them.
 */
#ifndef FW_CONFIG_H
#define FW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw_rules.h"
#include "holdfast/fw_module.h"

#define FW_MAX_PAIRS 8
/*
 * ckpt-lcore: checkpoint I/O on a control thread, or in each worker, or (auto, the default)
 * in each worker for a pmem: target and on the thread for every other.
 */
#define FW_CKPT_LCORE_THREAD (-1)
#define FW_CKPT_LCORE_INLINE (-2)
#define FW_CKPT_LCORE_AUTO   (-3)
#define FW_CKPT_LCORE_MAX    1023

/* Where a firewall keeps its connections when nothing else is configured. */
#define FW_CKPT_DEFAULT_TARGET "pmem:/var/lib/holdfast/holdfast.pmu"

struct fw_pair {
	uint16_t port[2];
	uint8_t inside; /**< index (0/1) of the inside port of the pair */
};

struct fw_config {
	struct fw_pair pairs[FW_MAX_PAIRS];
	unsigned int npairs;
	uint32_t max_conns;	    /**< per worker lcore */
	bool pass_non_ip;	    /**< non-IP, non-ARP frames */
	bool pass_fragments;	    /**< non-first fragments */
	bool pass_ip_options;	    /**< IPv4 options / IPv6 extension headers */
	uint32_t reject_rate;	    /**< replies to rejected frames per worker per second */
	struct fw_modconf modconf;  /**< the modules' settings (timeouts, ftp-ports), by id */
	char rules_source[128];	    /**< "" (the file's rules) or "nft:TABLE" */
	char ckpt_target[256];	    /**< checkpoint target, or "none" */
	char ckpt_region[56];	    /**< region name prefix: NAME.W (state), NAME.W.log */
	uint64_t ckpt_log_size;	    /**< each worker's log ring for a standby (0: no log) */
	uint32_t lease_ms;	    /**< the primary's lease: a standby takes over after it */
	bool lapse_forward;	    /**< a lapsed lease: keep forwarding (no standby) or hold */
	uint32_t standby_poll_ms;   /**< how often a standby reads the log and the lease */
	bool standby;		    /**< start as the standby of a running primary */
	uint64_t ckpt_size;	    /**< size of a store created on first start (0: computed) */
	char ckpt_secret_file[256]; /**< remote targets: "tenant secret" lines */
	char ckpt_tenant[64];	    /**< the tenant this firewall is at the server */
	bool ckpt_allow_shm;	    /**< the operator accepts ofi+shm:// (no remote key checks) */
	int ckpt_lcore;		    /**< where checkpoint I/O runs: an lcore, or FW_CKPT_LCORE_* */
	struct fw_ruleset rules;
};

/** Defaults: one pair 0<->1 with port 0 inside, 1 M connections, drop what is odd. */
void fw_config_defaults(struct fw_config *c);

/**
 * Read @p path into @p c (on top of what is there).
 * @return 0, or -EINVAL / -errno with "file:line: why" in @p err.
 */
int fw_config_load(struct fw_config *c, const char *path, char *err, size_t errlen);

/**
 * Apply one "key value..." setting (a config line or a flag). @p where names it in errors.
 * @return 0 or -EINVAL with the reason in @p err.
 */
int fw_config_set(struct fw_config *c, const char *line, const char *where, char *err,
		  size_t errlen);

/**
 * Check the whole: a pair at least, each port in one pair, an ofi+shm:// target only with
 * ckpt-allow-shm. @return 0 or -EINVAL with @p err.
 */
int fw_config_check(const struct fw_config *c, char *err, size_t errlen);

void fw_config_release(struct fw_config *c);

#endif /* FW_CONFIG_H */
