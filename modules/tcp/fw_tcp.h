/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP connection tracking: the state machine and per-direction window tracking (after
 * Guido van Rooij, "Real Stateful TCP Packet Filtering in IP Filter"). The core calls
 * fw_tcp_may_open() before it creates a connection and fw_tcp_packet() for every segment;
 * the ops table (fw_tcp_ops) serves checkpoint encode/decode, restore, dump and the
 * `timeout tcp-*` settings.
 */
#ifndef HOLDFAST_FW_TCP_H
#define HOLDFAST_FW_TCP_H

#include <stdbool.h>
#include <stdint.h>

#include "holdfast/fw_module.h"

/* States; their values are stored in checkpoints: never renumber. */
enum fw_tcp_state {
	FW_TCP_NONE = 0,
	FW_TCP_SYN_SENT = 1,
	FW_TCP_SYN_RECV = 2,
	FW_TCP_ESTABLISHED = 3,
	FW_TCP_FIN_WAIT = 4,
	FW_TCP_CLOSE_WAIT = 5,
	FW_TCP_LAST_ACK = 6,
	FW_TCP_TIME_WAIT = 7,
	FW_TCP_CLOSE = 8,
	FW_TCP_SYN_SENT2 = 9, /* both sides sent a SYN: simultaneous open */
	FW_TCP_STATE_MAX = 10,
};

/* Per-direction flags. The low four are stored in checkpoints. */
#define FW_TCP_F_WSCALE	       0x01 /* this side offered window scaling in its SYN */
#define FW_TCP_F_SACK_PERM     0x02 /* this side offered SACK in its SYN */
#define FW_TCP_F_FIN_SEEN      0x04 /* this side sent its FIN */
#define FW_TCP_F_FIN_ACKED     0x08 /* the peer acknowledged that FIN */
#define FW_TCP_F_MEDIA	       0x0f
#define FW_TCP_F_RESYNC_END    0x10 /* restored: end may lag the live one (see tcp.c) */
#define FW_TCP_F_RESYNC_MAXEND 0x20 /* restored: maxend may lag the live one */
#define FW_TCP_F_RESYNC_END2   0x40 /* restored: end may lag by more than one threshold */

/* One direction's window, in the terms of the paper. */
struct fw_tcp_dir {
	uint32_t end;	 /* highest sequence sent + 1 (seq + len of the furthest segment) */
	uint32_t maxend; /* furthest the peer allowed: max(peer ack + peer window) */
	uint32_t maxwin; /* largest window this side advertised, scaled; 0: side not seen */
	uint32_t ck_end; /* end when the slice was last marked for a checkpoint */
	uint8_t scale;	 /* this side's window shift, 0 unless both sides offered one */
	uint8_t flags;	 /* FW_TCP_F_* */
	uint8_t pad[2];
};

struct fw_tcp_slice {
	struct fw_tcp_dir d[2]; /* indexed by enum fw_dir */
	uint8_t state;		/* enum fw_tcp_state */
	uint8_t pad[3];
};

/* Idle timeouts per state, in ns; the module sets fw_conn.expire_ns from them. */
struct fw_tcp_conf {
	uint64_t timeout_ns[FW_TCP_STATE_MAX];
};

/* conntrack's defaults: 2 min SYN_SENT, 60 s SYN_RECV, 5 days ESTABLISHED, ... */
extern const struct fw_tcp_conf fw_tcp_conf_default;

/* Slice format version written by encode. */
#define FW_TCP_SLICE_VERSION 1
/* Encoded payload size of FW_TCP_SLICE_VERSION. */
#define FW_TCP_PAYLOAD_LEN 36

extern const struct fw_module_ops fw_tcp_ops;

/* The TCP slice of @p c (at its fixed offset). */
struct fw_tcp_slice *fw_tcp_slice(struct fw_conn *c);

/* Name of a state ("ESTABLISHED"), "?" when out of range. */
const char *fw_tcp_state_name(unsigned int state);

/*
 * May this segment create a connection? A SYN without ACK, RST or FIN, with a header
 * whose data offset matches hdr_len and fits the packet.
 */
bool fw_tcp_may_open(const struct fw_pkt *p);

/*
 * Track one segment of @p c. @p is_new: @p c was just created for this packet (the slice is
 * initialized here). Timeouts come from ctx->conf[FW_MOD_TCP] (a struct fw_tcp_conf), or
 * the defaults when NULL. Sets c->expire_ns, marks the slice dirty when a checkpoint is due.
 * @return FW_PASS, or FW_DROP with @p why set (FW_DROP_MALFORMED, FW_DROP_NO_CONN,
 * FW_DROP_TCP_FLAGS, FW_DROP_TCP_STATE, FW_DROP_TCP_WINDOW, FW_DROP_TCP_RST); on a drop the
 * slice is unchanged.
 */
enum fw_verdict fw_tcp_packet(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
			      bool is_new, enum fw_drop_reason *why);

/*
 * fw_tcp_packet's two halves, public for the tests that hold one to the other.
 *
 * fw_tcp_packet_fast (inline, tcp/tcp_fast.h): the fast path for a segment of an
 * established connection -- ACK (PSH allowed) and no other flag, no options, no FIN seen
 * and no restore slack open on the connection -- inside the window. @return true when it
 * accepted the segment, with the effect the full path has; false, having changed nothing,
 * for every other segment.
 *
 * fw_tcp_packet_full: every segment through the option parse and the state table. For a
 * segment the fast path accepts it decides alike: same verdict and reason, same slice,
 * dirty bits, flags and expiry.
 */
enum fw_verdict fw_tcp_packet_full(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
				   bool is_new, enum fw_drop_reason *why);

#endif /* HOLDFAST_FW_TCP_H */
