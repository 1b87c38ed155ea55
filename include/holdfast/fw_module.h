/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The module contract. A module owns one slice of every connection it tracks, decides
 * what its packets mean, and decides when its slice needs a checkpoint (it sets the
 * connection's dirty bit; the core collects). The hot path calls modules directly through
 * a switch on protocol; the ops table below serves encode, decode, restore and dump, and
 * the module's settings. The registry (modules/modules.c) lists the ops tables.
 */
#ifndef HOLDFAST_FW_MODULE_H
#define HOLDFAST_FW_MODULE_H

#include <stdalign.h>
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
	FW_DROP_POLICY,	      /**< rules said drop/reject, or default policy */
	FW_DROP_MALFORMED,    /**< headers truncated or inconsistent */
	FW_DROP_NO_CONN,      /**< not a connection opener and no connection */
	FW_DROP_TABLE_FULL,   /**< no room for a new connection */
	FW_DROP_FRAGMENT,     /**< non-first fragment refused by configuration */
	FW_DROP_L3_OPTIONS,   /**< IPv4 options / IPv6 extension refused by configuration */
	FW_DROP_NON_IP,	      /**< non-IP, non-ARP refused by configuration */
	FW_DROP_TCP_FLAGS,    /**< impossible flag combination */
	FW_DROP_TCP_STATE,    /**< valid flags, wrong moment (the state table says invalid) */
	FW_DROP_TCP_WINDOW,   /**< sequence or ack outside the tracked window */
	FW_DROP_TCP_RST,      /**< RST whose sequence is not in the window */
	FW_DROP_FTP_BOUNCE,   /**< data address not the control peer's, or a privileged port */
	FW_DROP_FTP_SYNTAX,   /**< malformed PORT/EPRT/227/229 */
	FW_DROP_HANDOFF_FULL, /**< its connection's owner (another worker) had no room */
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

/** Bytes of room each module's configuration has (fw_module_ops.conf_size at most). */
#define FW_MOD_CONF_MAX 128

/** Every module's configuration, by module id: built from holdfast.conf, read-only after. */
struct fw_modconf {
	alignas(8) uint8_t conf[FW_MOD_MAX][FW_MOD_CONF_MAX];
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
 *
 * Configuration, read from holdfast.conf before any packet; ctx->conf[id] points at the
 * result. A module without settings leaves all four NULL (0).
 * conf_default: write the defaults into @p conf (conf_size bytes).
 * timeouts: the names this module takes in `timeout NAME SECONDS` ("tcp-syn-sent"),
 *	NULL-terminated; the core checks the syntax and the range (1 s to 30 days).
 * conf_timeout: set timeout timeouts[@p i] to @p ns in @p conf.
 * conf_set: one line of settings of the module's own (w[0] is the keyword, as
 *	"ftp-ports"), split into @p n words. @return 1 (taken), 0 (not this module's), or
 *	-EINVAL with the reason in @p err, without the file and line (the core adds them).
 */
struct fw_module_ops {
	const char *name;
	enum fw_module_id id;
	uint8_t slice_version;
	uint16_t slice_size;
	uint16_t slice_off; /**< offset of the slice in fw_conn.ext */
	bool required;	    /**< a connection without this slice is not restored */
	/**
	 * on_restore touches nothing but its own connection (a timer, no expectation): the
	 * finish of a restore may run it on a second thread beside other connections'.
	 */
	bool restore_local;
	int (*encode)(const struct fw_conn *c, uint8_t *buf, size_t len);
	int (*decode)(struct fw_conn *c, const uint8_t *buf, size_t len, uint8_t version);
	int (*on_restore)(struct fw_ctx *ctx, struct fw_conn *c);
	int (*dump)(const struct fw_conn *c, char *buf, size_t len);
	/**
	 * IP protocol of the connections the module tracks (6 TCP, 17 UDP). A connection
	 * holds at most one slice of each module of its protocol, so the protocol with the
	 * most modules sets how many checkpoint slot pairs a connection may need.
	 */
	uint8_t proto;
	uint16_t conf_size;
	void (*conf_default)(void *conf);
	const char *const *timeouts;
	void (*conf_timeout)(void *conf, unsigned int i, uint64_t ns);
	int (*conf_set)(void *conf, char *const *w, int n, char *err, size_t errlen);
};

/**
 * The registry (modules/modules.c): indexed by module id, NULL where none. Adding a module
 * is its folder, its id (fw_conn.h), its room in fw_conn.ext (modules/fw_slices.h), its
 * line in the table and its direct call in the worker's dispatch switch; its settings and
 * its share of the checkpoint follow from the table (the functions below).
 */
extern const struct fw_module_ops *const fw_modules[FW_MOD_MAX];

/** Most slices one connection can hold, hence slot pairs per connection to checkpoint. */
unsigned int fw_modules_slices_max(void);

/** Every registered module's defaults into @p mc. */
void fw_modconf_defaults(struct fw_modconf *mc);

/** Module @p m's configuration in @p mc, NULL when no such module is registered. */
const void *fw_modconf_get(const struct fw_modconf *mc, enum fw_module_id m);

/** Does a registered module take `timeout @p name SECONDS`? */
bool fw_modconf_has_timeout(const char *name);

/** Set timeout @p name to @p ns in the configuration of the module that takes it. */
void fw_modconf_set_timeout(struct fw_modconf *mc, const char *name, uint64_t ns);

/**
 * Offer one settings line (@p n words, w[0] the keyword) to every module.
 * @return 1 (a module took it), 0 (none knows the keyword), or -EINVAL with @p err.
 */
int fw_modconf_set(struct fw_modconf *mc, char *const *w, int n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* HOLDFAST_FW_MODULE_H */
