/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UDP tracking: a flow is UNREPLIED until the responder answers, REPLIED after the first
 * answer, ASSURED (a stream) once traffic continues after it. Each state has its own idle
 * timeout; the core calls fw_udp_packet() for every datagram.
 */
#ifndef HOLDFAST_FW_UDP_H
#define HOLDFAST_FW_UDP_H

#include <stdbool.h>
#include <stdint.h>

#include "holdfast/fw_module.h"

/* States; stored in checkpoints: never renumber. */
enum fw_udp_state {
	FW_UDP_NONE = 0,
	FW_UDP_UNREPLIED = 1, /* only the opener has sent */
	FW_UDP_REPLIED = 2,   /* one answer: a request/response exchange (DNS) */
	FW_UDP_ASSURED = 3,   /* traffic after the answer: a stream */
	FW_UDP_STATE_MAX = 4,
};

struct fw_udp_slice {
	uint8_t state;
	uint8_t pad[3];
};

/* Idle timeouts in ns. conntrack's: 30 s until a stream is seen, 120 s for a stream. */
struct fw_udp_conf {
	uint64_t timeout_unreplied_ns;
	uint64_t timeout_replied_ns;
	uint64_t timeout_assured_ns;
};

extern const struct fw_udp_conf fw_udp_conf_default;

#define FW_UDP_SLICE_VERSION 1
#define FW_UDP_PAYLOAD_LEN   4

extern const struct fw_module_ops fw_udp_ops;

struct fw_udp_slice *fw_udp_slice(struct fw_conn *c);

const char *fw_udp_state_name(unsigned int state);

/*
 * Track one datagram of @p c; @p is_new: @p c was just created for it (only the opener
 * creates). Timeouts from ctx->conf[FW_MOD_UDP] (struct fw_udp_conf) or the defaults. Sets
 * c->expire_ns; marks the slice dirty on a state change.
 * @return FW_PASS, or FW_DROP with @p why FW_DROP_MALFORMED (length field inconsistent).
 */
enum fw_verdict fw_udp_packet(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
			      bool is_new, enum fw_drop_reason *why);

#endif /* HOLDFAST_FW_UDP_H */
