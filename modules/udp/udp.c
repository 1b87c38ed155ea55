/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UDP has no handshake; what a flow has shown is whether the other side answered, and
 * whether it went on after the answer. A one-shot exchange (DNS) should not hold its entry
 * as long as a stream (RTP, QUIC, a VPN) that is plainly alive, hence three states.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "fw_slices.h"
#include "fw_wire.h"
#include "udp/fw_udp.h"

_Static_assert(sizeof(struct fw_udp_slice) <= FW_UDP_SLICE_ROOM, "UDP slice fits its room");
_Static_assert(FW_SLICE_ALIGNED(struct fw_udp_slice, FW_UDP_SLICE_OFF),
	       "slice aligned in the connection");

#define NS_PER_S 1000000000ull
#define UDP_HDR	 8

const struct fw_udp_conf fw_udp_conf_default = {
	.timeout_unreplied_ns = 30 * NS_PER_S,
	.timeout_replied_ns = 30 * NS_PER_S,
	.timeout_assured_ns = 120 * NS_PER_S,
};

static const char *const state_names[FW_UDP_STATE_MAX] = {
	[FW_UDP_NONE] = "NONE",
	[FW_UDP_UNREPLIED] = "UNREPLIED",
	[FW_UDP_REPLIED] = "REPLIED",
	[FW_UDP_ASSURED] = "ASSURED",
};

const char *fw_udp_state_name(unsigned int state)
{
	return state < FW_UDP_STATE_MAX ? state_names[state] : "?";
}

struct fw_udp_slice *fw_udp_slice(struct fw_conn *c)
{
	return FW_SLICE(c, struct fw_udp_slice, FW_UDP_SLICE_OFF);
}

static const struct fw_udp_slice *slice_c(const struct fw_conn *c)
{
	return FW_SLICE(c, const struct fw_udp_slice, FW_UDP_SLICE_OFF);
}

static const struct fw_udp_conf *udp_conf(const struct fw_ctx *ctx)
{
	if (ctx && ctx->conf[FW_MOD_UDP])
		return ctx->conf[FW_MOD_UDP];
	return &fw_udp_conf_default;
}

static uint64_t timeout(const struct fw_udp_conf *conf, uint8_t state)
{
	switch (state) {
	case FW_UDP_REPLIED:
		return conf->timeout_replied_ns;
	case FW_UDP_ASSURED:
		return conf->timeout_assured_ns;
	default:
		return conf->timeout_unreplied_ns;
	}
}

enum fw_verdict fw_udp_packet(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
			      bool is_new, enum fw_drop_reason *why)
{
	struct fw_udp_slice *u = fw_udp_slice(c);
	uint8_t next;

	/* The UDP length covers header and payload; the IP payload may only be longer
	 * (Ethernet padding), never shorter. */
	if (p->hdr_len != UDP_HDR || p->l4_len < UDP_HDR || p->dir > FW_DIR_REPLY ||
	    fw_get_be16(p->l4 + 4) < UDP_HDR || fw_get_be16(p->l4 + 4) > p->l4_len) {
		if (why)
			*why = FW_DROP_MALFORMED;
		return FW_DROP;
	}
	if (is_new) {
		if (p->dir != FW_DIR_ORIG) {
			if (why)
				*why = FW_DROP_NO_CONN;
			return FW_DROP;
		}
		memset(u, 0, sizeof(*u));
		c->present |= (uint8_t)(1u << FW_MOD_UDP);
	}
	next = u->state;
	switch (u->state) {
	case FW_UDP_UNREPLIED:
		if (p->dir == FW_DIR_REPLY)
			next = FW_UDP_REPLIED;
		break;
	case FW_UDP_REPLIED:
		next = FW_UDP_ASSURED;
		break;
	case FW_UDP_ASSURED:
		break;
	default:
		next = FW_UDP_UNREPLIED;
		break;
	}
	if (next != u->state) {
		u->state = next;
		fw_conn_mark_dirty(c, FW_MOD_UDP);
	}
	c->expire_ns = p->now_ns + timeout(udp_conf(ctx), next);
	if (why)
		*why = FW_DROP_NONE;
	return FW_PASS;
}

/*
 * Payload, version 1: u8 state, u8 orig_side, u16 reserved (0). The opener's key side
 * travels here because it is the one required slice of a UDP connection.
 */
static int udp_encode(const struct fw_conn *c, uint8_t *buf, size_t len)
{
	if (len < FW_UDP_PAYLOAD_LEN)
		return -ENOSPC;
	buf[0] = slice_c(c)->state;
	buf[1] = c->orig_side;
	fw_put_le16(buf + 2, 0);
	return FW_UDP_PAYLOAD_LEN;
}

static int udp_decode(struct fw_conn *c, const uint8_t *buf, size_t len, uint8_t version)
{
	struct fw_udp_slice *u;

	if (version > FW_UDP_SLICE_VERSION)
		return -EPROTONOSUPPORT;
	if (version == 0 || len != FW_UDP_PAYLOAD_LEN)
		return -EINVAL;
	if (buf[0] == FW_UDP_NONE || buf[0] >= FW_UDP_STATE_MAX || buf[1] > 1 ||
	    fw_get_le16(buf + 2) != 0)
		return -EINVAL;
	u = fw_udp_slice(c);
	memset(u, 0, sizeof(*u));
	u->state = buf[0];
	c->orig_side = buf[1];
	c->present |= (uint8_t)(1u << FW_MOD_UDP);
	return 0;
}

/* c->last_ns is the restoring instance's clock (see fw_tcp's on_restore). */
static int udp_on_restore(struct fw_ctx *ctx, struct fw_conn *c)
{
	const struct fw_udp_slice *u = slice_c(c);

	if (u->state == FW_UDP_NONE || u->state >= FW_UDP_STATE_MAX)
		return -EINVAL;
	c->expire_ns = c->last_ns + timeout(udp_conf(ctx), u->state);
	return 0;
}

static int udp_dump(const struct fw_conn *c, char *buf, size_t len)
{
	return snprintf(buf, len, "udp %s", fw_udp_state_name(slice_c(c)->state));
}

/* ---- configuration ---- */

_Static_assert(sizeof(struct fw_udp_conf) <= FW_MOD_CONF_MAX, "UDP configuration fits its room");

static const char *const conf_timeouts[] = {"udp-unreplied", "udp-assured", NULL};

static void udp_conf_default(void *conf)
{
	*(struct fw_udp_conf *)conf = fw_udp_conf_default;
}

static void udp_conf_timeout(void *conf, unsigned int i, uint64_t ns)
{
	struct fw_udp_conf *c = conf;

	if (i == 0) { /* until a stream is seen: one answer does not make one */
		c->timeout_unreplied_ns = ns;
		c->timeout_replied_ns = ns;
	} else {
		c->timeout_assured_ns = ns;
	}
}

const struct fw_module_ops fw_udp_ops = {
	.name = "udp",
	.id = FW_MOD_UDP,
	.slice_version = FW_UDP_SLICE_VERSION,
	.slice_size = sizeof(struct fw_udp_slice),
	.slice_off = FW_UDP_SLICE_OFF,
	.required = true,
	.restore_local = true,
	.encode = udp_encode,
	.decode = udp_decode,
	.on_restore = udp_on_restore,
	.dump = udp_dump,
	.proto = IPPROTO_UDP,
	.conf_size = sizeof(struct fw_udp_conf),
	.conf_default = udp_conf_default,
	.timeouts = conf_timeouts,
	.conf_timeout = udp_conf_timeout,
};
