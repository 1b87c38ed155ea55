/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP's fast path for a segment of an established connection, inline: the worker's burst
 * loop calls it for nearly every frame, and as a call into tcp.c it cost a call, a frame of
 * saved registers and the packet's description built in memory and read back: ~20
 * instructions a frame of ~710 (callgrind, fw_bench). Private to modules/tcp and the
 * worker; the full path, which it must match, stays in tcp.c (fw_tcp_packet_full).
 */
#ifndef HOLDFAST_TCP_FAST_H
#define HOLDFAST_TCP_FAST_H

#include <stdbool.h>
#include <stdint.h>

#include "fw_slices.h"
#include "fw_wire.h"
#include "tcp/fw_tcp.h"

#define FW_TCP_FAST_PSH 0x08 /* the header's flag bits (tcp.c's TH_PSH, TH_ACK are these) */
#define FW_TCP_FAST_ACK 0x10
#define FW_TCP_FAST_HDR 20 /* a header without options (tcp.c's TCP_MIN_HDR) */

/* The timeouts in force: ctx's, or the defaults. */
static inline const struct fw_tcp_conf *fw_tcp_conf_of(const struct fw_ctx *ctx)
{
	if (ctx && ctx->conf[FW_MOD_TCP])
		return ctx->conf[FW_MOD_TCP];
	return &fw_tcp_conf_default;
}

/* Bits needed to write @p v (0 for 0). */
static inline unsigned int fw_tcp_top_bit(uint32_t v)
{
	return v ? 32 - (unsigned int)__builtin_clz(v) : 0;
}

/*
 * Checkpoint threshold for a direction whose receiver advertised at most @p peer_maxwin: a
 * quarter of it, rounded down to a power of two.
 *
 * Why: a restored connection must accept the next segments of the live one. A sender can
 * only be ahead of its last checkpoint by what it sent since, and a checkpoint is taken as
 * soon as that exceeds this threshold; on restore (tcp.c, decode) the upper bounds of checks I
 * and III are widened by the slack (edge_slack, tcp.c) until the live edges are seen again. So the
 * restored connection accepts every live segment while still dropping anything more than
 * half a window beyond the real edge -- strict checking stays on. A quarter keeps the
 * checkpoint rate modest: a bulk sender triggers at most about four checkpoints per window
 * of data, far fewer than one per packet.
 * Why a power of two: the value then only changes when maxwin crosses a power of two, and
 * every such crossing marks the slice dirty, so the threshold computed from a checkpoint is
 * the one that was in force when it was taken.
 */
static inline uint32_t fw_tcp_edge_threshold(uint32_t peer_maxwin)
{
	if (peer_maxwin == 0)
		return 0;
	return (UINT32_C(1) << (31 - __builtin_clz(peer_maxwin))) / 4;
}

/*
 * The fast path: a segment of an ESTABLISHED connection carrying ACK (PSH allowed) and no
 * other flag, no options, whose connection shows no FIN and no restore slack. It accepts
 * what the full path would accept, with the same effect, or declines (false) and the full
 * path decides. What it saves: the option walk (there is none), the copy of the slice
 * (nothing can be dropped after the window check), the state table (ESTABLISHED + ACK stays
 * ESTABLISHED), and every branch of in_window, update_window and window_checkpoint_due
 * whose outcome these conditions fix (below, each where it is left out). What is left is
 * their arithmetic, the same comparisons in the same order; the tests hold the two paths to
 * each other on random segments (tcp_test, fw_worker_test).
 */
static inline __attribute__((always_inline)) bool
fw_tcp_packet_fast(const struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p)
{
	const uint8_t busy = FW_TCP_F_FIN_SEEN | FW_TCP_F_RESYNC_END | FW_TCP_F_RESYNC_END2 |
			     FW_TCP_F_RESYNC_MAXEND;
	struct fw_tcp_slice *t = FW_SLICE(c, struct fw_tcp_slice, FW_TCP_SLICE_OFF);
	const uint8_t *h = p->l4;
	struct fw_tcp_dir *snd, *rcv;
	uint32_t seq, ack, end, win, snd_maxwin;

	if (t->state != FW_TCP_ESTABLISHED || p->dir > FW_DIR_REPLY ||
	    p->hdr_len != FW_TCP_FAST_HDR || p->l4_len < FW_TCP_FAST_HDR ||
	    (h[12] >> 4) * 4 != FW_TCP_FAST_HDR || (h[13] & ~FW_TCP_FAST_PSH) != FW_TCP_FAST_ACK)
		return false;
	snd = &t->d[p->dir];
	rcv = &t->d[!p->dir];
	if (((snd->flags | rcv->flags) & busy) || snd->maxwin == 0 || rcv->maxwin == 0)
		return false;
	seq = fw_get_be32(h + 4);
	ack = fw_get_be32(h + 8);
	end = seq + (p->l4_len - FW_TCP_FAST_HDR); /* no SYN, no FIN: the payload alone */
	/*
	 * in_window: no slack (the RESYNC flags are clear), the acknowledgement as it is (no
	 * options, no SACK blocks), ACK set, snd->maxwin not 0.
	 */
	if (fw_seq_after(seq, snd->maxend) || fw_seq_before(end, snd->end - rcv->maxwin) ||
	    fw_seq_after(ack, rcv->end) || fw_seq_before(ack, rcv->end - snd->maxwin))
		return false;
	/*
	 * update_window, what is left of it. Left out: the RESYNC flags' clearing (clear
	 * already), FIN_SEEN (no FIN), rcv->end moved to the acknowledgement (not after it, by
	 * the window check just made), FIN_ACKED (the receiver sent no FIN). The window is
	 * scaled (no SYN).
	 */
	snd_maxwin = snd->maxwin;
	win = (uint32_t)fw_get_be16(h + 14) << snd->scale;
	if (snd->maxwin < win)
		snd->maxwin = win;
	if (fw_seq_after(end, snd->end))
		snd->end = end;
	if (fw_seq_after(ack + win, rcv->maxend))
		rcv->maxend = ack + win;
	if (fw_seq_after(snd->end, snd->maxend))
		snd->maxend = snd->end;
	if (fw_seq_after(rcv->end, rcv->maxend))
		rcv->maxend = rcv->end;
	/* window_checkpoint_due: only the sender's maxwin and the two ends can have moved. */
	if (fw_tcp_top_bit(snd->maxwin) != fw_tcp_top_bit(snd_maxwin) ||
	    snd->end - snd->ck_end > fw_tcp_edge_threshold(rcv->maxwin) ||
	    rcv->end - rcv->ck_end > fw_tcp_edge_threshold(snd->maxwin)) {
		snd->ck_end = snd->end;
		rcv->ck_end = rcv->end;
		fw_conn_mark_dirty_now(c, FW_MOD_TCP);
	}
	c->expire_ns = p->now_ns + fw_tcp_conf_of(ctx)->timeout_ns[FW_TCP_ESTABLISHED];
	return true;
}

#endif /* HOLDFAST_TCP_FAST_H */
