/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The module contract. A module owns one slice of every connection it tracks, decides
 * what its packets mean, and decides when its slice needs a checkpoint (it sets the
 * connection's dirty bit; the core collects). The hot path calls modules directly through
 * a switch on protocol; the ops table below serves create, encode, decode, restore, dump.
 */
#ifndef HOLDFAST_FW_MODULE_H
#define HOLDFAST_FW_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "holdfast/fw_conn.h"

#ifdef __cplusplus
extern "C" {
#endif

enum fw_verdict {
	FW_PASS = 0,
	FW_DROP = 1,
};

/** Why a packet was dropped: one counter each. */
enum fw_drop_reason {
	FW_DROP_NONE = 0,
	FW_DROP_POLICY,	    /**< rules said drop/reject, or default policy */
	FW_DROP_MALFORMED,  /**< headers truncated or inconsistent */
	FW_DROP_NO_CONN,    /**< not a connection opener and no connection */
	FW_DROP_TABLE_FULL, /**< no room for a new connection */
	FW_DROP_FRAGMENT,   /**< non-first fragment refused by configuration */
	FW_DROP_L3_OPTIONS, /**< IPv4 options / IPv6 extension refused by configuration */
	FW_DROP_NON_IP,	    /**< non-IP, non-ARP refused by configuration */
	FW_DROP_TCP_FLAGS,  /**< impossible flag combination */
	FW_DROP_TCP_STATE,  /**< valid flags, wrong moment (the state table says invalid) */
	FW_DROP_TCP_WINDOW, /**< sequence or ack outside the tracked window */
	FW_DROP_TCP_RST,    /**< RST whose sequence is not in the window */
	FW_DROP_FTP_BOUNCE, /**< data address not the control peer's, or a privileged port */
	FW_DROP_FTP_SYNTAX, /**< malformed PORT/EPRT/227/229 */
	FW_DROP_REASON_MAX,
};

/** Human name of a drop reason (telemetry keys). */
const char *fw_drop_reason_name(enum fw_drop_reason r);

/** A parsed packet as modules see it; the core checked every bound it states. */
struct fw_pkt {
	const uint8_t *l4; /**< transport header */
	uint32_t l4_len;   /**< bytes from l4 to the end of the IP payload */
	uint32_t hdr_len;  /**< transport header length (TCP data offset * 4, UDP 8) */
	const void *saddr; /**< source address, 4 or 16 bytes, network order */
	const void *daddr;
	uint8_t family; /**< 4 or 6 */
	uint8_t dir;	/**< enum fw_dir */
	uint64_t now_ns;
};

/** Payload of a parsed packet. */
static inline const uint8_t *fw_pkt_payload(const struct fw_pkt *p)
{
	return p->l4 + p->hdr_len;
}

static inline uint32_t fw_pkt_payload_len(const struct fw_pkt *p)
{
	return p->l4_len - p->hdr_len;
}

/**
 * What a module can ask of the core while it handles a packet: expectations (FTP data
 * connections) and the configuration of timeouts. Filled by the core per lcore.
 */
struct fw_expect {
	uint8_t family;
	uint8_t proto;
	uint8_t addr[2][16]; /**< [0] the data connection's client, [1] its server */
	uint16_t port[2];    /**< [0] 0 = any source port, [1] the announced port; network order */
	uint64_t master_id;  /**< connection ID of the control connection */
	uint64_t expire_ns;
};

struct fw_ctx {
	/**
	 * Register @p master's expectation @p e. A master has one at a time, the one its slice
	 * describes (what a checkpoint holds and a restore re-creates): a new one withdraws the
	 * one before, as conntrack's FTP helper does. The core keeps it until a connection
	 * uses it, it expires, or @p master goes away, and tells @p master's module when one
	 * of the first two happens, so that the slice forgets it too.
	 * @return 0, -ENOSPC (table full) or -EEXIST (the same endpoints again: refreshed).
	 */
	int (*expect_add)(struct fw_ctx *ctx, struct fw_conn *master, const struct fw_expect *e);
	void *core;		      /**< the core's per-lcore state */
	const void *conf[FW_MOD_MAX]; /**< per-module configuration, by module id */
	/**
	 * CLOCK_REALTIME minus the packet clock (fw_pkt.now_ns), kept current by the core: a
	 * deadline a checkpoint carries must mean the same to another instance (a restart, a
	 * standby), whose packet clock starts elsewhere.
	 */
	int64_t wall_offset_ns;
};

/**
 * Module operations (not on the per-packet path).
 *
 * encode: write the slice's checkpoint payload (little-endian, versioned by slice_version)
 *	into @p buf. @return bytes written or -ENOSPC.
 * decode: validate and load a payload written by encode of @p version. Range-check every
 *	field. @return 0, -EINVAL (malformed or inconsistent), -EPROTONOSUPPORT (newer version).
 * on_restore: the whole connection is reassembled; re-create what the slice implies (an
 *	FTP expectation, a timer). @return 0 or -errno (the connection is then dropped).
 * dump: one human line. @return characters written (snprintf semantics).
 */
struct fw_module_ops {
	const char *name;
	enum fw_module_id id;
	uint8_t slice_version;
	uint16_t slice_size;
	uint16_t slice_off; /**< offset of the slice in fw_conn.ext */
	bool required;	    /**< a connection without this slice is not restored */
	int (*encode)(const struct fw_conn *c, uint8_t *buf, size_t len);
	int (*decode)(struct fw_conn *c, const uint8_t *buf, size_t len, uint8_t version);
	int (*on_restore)(struct fw_ctx *ctx, struct fw_conn *c);
	int (*dump)(const struct fw_conn *c, char *buf, size_t len);
};

/** The registry (modules/modules.c): indexed by module id, NULL where none. */
extern const struct fw_module_ops *const fw_modules[FW_MOD_MAX];

#ifdef __cplusplus
}
#endif

#endif /* HOLDFAST_FW_MODULE_H */
