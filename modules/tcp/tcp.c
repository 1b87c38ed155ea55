/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP tracking: a state machine driven by a table, and window tracking per direction.
 *
 * Window tracking follows "Real Stateful TCP Packet Filtering in IP Filter": for a segment
 * from sender S to receiver R with sequence seq, length len (SYN and FIN count one),
 * acknowledgement ack and window win (scaled by S's shift once both sides agreed to
 * scaling), it is accepted when
 *   I   seq <= S.maxend                    it starts inside what R allowed,
 *   II  seq + len >= S.end - R.maxwin      it is no older than one of R's windows,
 *   III sack <= R.end                      it acknowledges nothing R has not sent,
 *   IV  sack >= R.end - S.maxwin           and its acknowledgement is not ancient,
 * where sack is the acknowledgement raised to the furthest SACK block edge. Accepted, it
 * moves S.end, S.maxwin and R.maxend (= ack + win) forward.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "fw_slices.h"
#include "fw_wire.h"
#include "tcp/fw_tcp.h"
#include "tcp/tcp_fast.h"

_Static_assert(sizeof(struct fw_tcp_slice) <= FW_TCP_SLICE_ROOM, "TCP slice fits its room");
_Static_assert(FW_SLICE_ALIGNED(struct fw_tcp_slice, FW_TCP_SLICE_OFF),
	       "slice aligned in the connection");
_Static_assert(FW_TCP_PAYLOAD_LEN <= 1024, "TCP payload within CKPT_REC_MAX_PAYLOAD");

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH FW_TCP_FAST_PSH /* tcp_fast.h: the fast path's own names */
#define TH_ACK FW_TCP_FAST_ACK

#define NS_PER_S    1000000000ull
#define MAX_WSCALE  14 /* RFC 7323: larger shifts are treated as 14 */
#define MAX_RAW_WIN 65535u
#define TCP_MIN_HDR FW_TCP_FAST_HDR

const struct fw_tcp_conf fw_tcp_conf_default = {
	.timeout_ns =
		{
			[FW_TCP_NONE] = 0,
			[FW_TCP_SYN_SENT] = 120 * NS_PER_S,
			[FW_TCP_SYN_RECV] = 60 * NS_PER_S,
			[FW_TCP_ESTABLISHED] = 5 * 24 * 3600 * NS_PER_S,
			[FW_TCP_FIN_WAIT] = 120 * NS_PER_S,
			[FW_TCP_CLOSE_WAIT] = 60 * NS_PER_S,
			[FW_TCP_LAST_ACK] = 30 * NS_PER_S,
			[FW_TCP_TIME_WAIT] = 120 * NS_PER_S,
			[FW_TCP_CLOSE] = 10 * NS_PER_S,
			[FW_TCP_SYN_SENT2] = 120 * NS_PER_S,
		},
};

static const char *const state_names[FW_TCP_STATE_MAX] = {
	[FW_TCP_NONE] = "NONE",		[FW_TCP_SYN_SENT] = "SYN_SENT",
	[FW_TCP_SYN_RECV] = "SYN_RECV", [FW_TCP_ESTABLISHED] = "ESTABLISHED",
	[FW_TCP_FIN_WAIT] = "FIN_WAIT", [FW_TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	[FW_TCP_LAST_ACK] = "LAST_ACK", [FW_TCP_TIME_WAIT] = "TIME_WAIT",
	[FW_TCP_CLOSE] = "CLOSE",	[FW_TCP_SYN_SENT2] = "SYN_SENT2",
};

const char *fw_tcp_state_name(unsigned int state)
{
	return state < FW_TCP_STATE_MAX ? state_names[state] : "?";
}

/* The slice, inlined on the packet path: fw_tcp_slice() is a call there (-fPIC). */
static inline struct fw_tcp_slice *slice(struct fw_conn *c)
{
	return FW_SLICE(c, struct fw_tcp_slice, FW_TCP_SLICE_OFF);
}

struct fw_tcp_slice *fw_tcp_slice(struct fw_conn *c)
{
	return slice(c);
}

static const struct fw_tcp_slice *slice_c(const struct fw_conn *c)
{
	return FW_SLICE(c, const struct fw_tcp_slice, FW_TCP_SLICE_OFF);
}

/* Packet classes: the columns of the state table's rows. */
enum pkt_class {
	C_SYN,
	C_SYNACK,
	C_FIN,
	C_ACK,
	C_RST,
	C_NONE,
	C_MAX,
};

#define sNO FW_TCP_NONE
#define sSS FW_TCP_SYN_SENT
#define sSR FW_TCP_SYN_RECV
#define sES FW_TCP_ESTABLISHED
#define sFW FW_TCP_FIN_WAIT
#define sCW FW_TCP_CLOSE_WAIT
#define sLA FW_TCP_LAST_ACK
#define sTW FW_TCP_TIME_WAIT
#define sCL FW_TCP_CLOSE
#define sS2 FW_TCP_SYN_SENT2
#define sIV FW_TCP_STATE_MAX /* invalid here: drop, FW_DROP_TCP_STATE */

/*
 * next[direction][class][current state]. States are not direction-aware, so two refinements
 * happen before and after the lookup (see fw_tcp_packet):
 *  - a FIN from a side whose FIN was already seen is a retransmission and looks up as ACK;
 *  - in FIN_WAIT and LAST_ACK, an ACK moves the state only when it acknowledges the peer's
 *    outstanding FIN; any other ACK keeps the state.
 * FIN_WAIT: one FIN sent, unacknowledged. CLOSE_WAIT: one FIN sent and acknowledged, the
 * other side still open. LAST_ACK: both FINs sent. TIME_WAIT: both sent, the last acked.
 */
static const uint8_t tcp_next[2][C_MAX][FW_TCP_STATE_MAX] =
	{
		[FW_DIR_ORIG] =
			{
				/*         sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
				[C_SYN] = {sSS, sSS, sSR, sIV, sIV, sIV, sIV, sSS, sSS, sS2},
				/*
				 * NO->SS the opener's SYN creates the connection.
				 * SS->SS retransmitted SYN (re-initializes the opener's window).
				 * SR->SR SYN retransmitted: the SYN-ACK was lost beyond us.
				 * ES..LA  a new SYN on a live connection: spoofed or a stale
				 *         client; the endpoint would reset it anyway.
				 * TW->SS  reuse of the tuple, only with a sequence beyond the old
				 * one. CL->SS  reopen after a reset: the old sequence space is
				 * dead. S2->S2  retransmitted SYN during a simultaneous open.
				 */
				[C_SYNACK] = {sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR},
				/*
				 * SS  the opener has received no SYN it could acknowledge.
				 * SR->SR  in a simultaneous open both sides send a SYN-ACK.
				 * S2->SR  the opener answers the peer's SYN (simultaneous open).
				 * others  no SYN to acknowledge any more.
				 */
				[C_FIN] = {sIV, sIV, sFW, sFW, sLA, sLA, sIV, sIV, sCL, sIV},
				/*
				 * SR->FW  the third handshake segment carries a FIN at once.
				 * ES->FW  the opener closes first.
				 * FW->LA, CW->LA  the peer closed first; now the opener does.
				 * LA, TW  both FINs were seen: a first FIN cannot come now.
				 * CL->CL  in flight when the RST passed; the endpoint answers it.
				 * SS, S2  no handshake yet: a FIN would acknowledge nothing.
				 */
				[C_ACK] = {sIV, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV},
				/*
				 * SR->ES  the third handshake segment.
				 * FW->CW  acknowledges the peer's FIN (else FW stays, see above).
				 * LA->TW  acknowledges the last FIN (else LA stays).
				 * TW, CL  late segments of a finished connection.
				 * SS, S2  the opener has nothing it could acknowledge yet.
				 */
				[C_RST] = {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
				/* Any state: an in-window RST ends the connection. */
				[C_NONE] = {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
				/*
				 * No SYN, FIN, RST or ACK: never valid. The flag check drops it
				 * first (FW_DROP_TCP_FLAGS); the row keeps the table total.
				 */
			},
		[FW_DIR_REPLY] =
			{
				/*         sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
				[C_SYN] = {sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2},
				/*
				 * SS->S2  the peer sent its own SYN: simultaneous open.
				 * S2->S2  retransmission of it.
				 * TW, CL  a reopen from the other end would swap the roles; the old
				 *         entry must expire first.
				 */
				[C_SYNACK] = {sIV, sSR, sSR, sES, sIV, sIV, sIV, sIV, sIV, sSR},
				/*
				 * SS->SR  the answer to the opener's SYN.
				 * SR->SR  retransmitted: the opener's ACK was lost beyond us.
				 * ES->ES  retransmitted after we saw the opener's ACK but the peer
				 * did not: let it through or the handshake stalls. S2->SR  the peer
				 * answers the opener's SYN (simultaneous open).
				 */
				[C_FIN] = {sIV, sIV, sFW, sFW, sLA, sLA, sIV, sIV, sCL, sIV},
				/*
				 * SR->FW  the responder may close before the handshake completes.
				 * ES->FW  the responder closes first.
				 * FW->LA, CW->LA  the opener closed first; now the responder does.
				 * LA, TW  both FINs were seen. CL: in flight past the RST.
				 */
				[C_ACK] = {sIV, sIV, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIV},
				/*
				 * SR->SR  the responder acks in a simultaneous open; the opener's
				 * ACK still establishes. FW->CW, LA->TW  when it acknowledges the
				 * opener's outstanding FIN. SS, S2  the responder's first segment
				 * must carry SYN.
				 */
				[C_RST] = {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
				/* Any state: an in-window RST ends the connection. */
				[C_NONE] = {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
				/* As in the original direction: dropped by the flag check first. */
			},
};

/* A parsed segment. */
struct seg {
	uint32_t seq;
	uint32_t ack;
	uint32_t len;  /* payload + SYN + FIN */
	uint32_t sack; /* ack raised to the furthest SACK right edge */
	uint16_t win;  /* raw header value */
	uint8_t flags;
	uint8_t wscale; /* offered shift, valid with has_wscale */
	bool has_wscale;
	bool sack_perm;
};

static bool header_sane(const struct fw_pkt *p)
{
	if (p->dir > FW_DIR_REPLY || p->hdr_len < TCP_MIN_HDR || p->hdr_len > p->l4_len)
		return false;
	return (uint32_t)(p->l4[12] >> 4) * 4 == p->hdr_len;
}

/* Options: window scale and SACK-permitted in SYNs, SACK blocks in any segment. A
 * malformed option list ends the parse; what was read before it stands. */
static void parse_options(const uint8_t *o, uint32_t len, struct seg *s)
{
	uint32_t i = 0;

	while (i < len) {
		uint8_t kind = o[i], olen;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			break;
		olen = o[i + 1];
		if (olen < 2 || olen > len - i)
			break;
		if (kind == 3 && olen == 3) {
			s->has_wscale = true;
			s->wscale = o[i + 2] > MAX_WSCALE ? MAX_WSCALE : o[i + 2];
		} else if (kind == 4 && olen == 2) {
			s->sack_perm = true;
		} else if (kind == 5 && olen >= 10 && (olen - 2) % 8 == 0) {
			for (uint32_t b = i + 2; b < i + olen; b += 8) {
				uint32_t right = fw_get_be32(o + b + 4);

				if (fw_seq_after(right, s->sack))
					s->sack = right;
			}
		}
		i += olen;
	}
}

static void parse_seg(const struct fw_pkt *p, struct seg *s)
{
	memset(s, 0, sizeof(*s));
	s->seq = fw_get_be32(p->l4 + 4);
	s->ack = fw_get_be32(p->l4 + 8);
	s->flags = p->l4[13];
	s->win = fw_get_be16(p->l4 + 14);
	s->len = fw_pkt_payload_len(p) + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);
	s->sack = s->ack;
	parse_options(p->l4 + TCP_MIN_HDR, p->hdr_len - TCP_MIN_HDR, s);
}

/* The combinations a real stack sends: SYN, SYN-ACK, ACK, FIN-ACK, RST, RST-ACK (PSH,
 * URG, ECE, CWR aside). SYN+FIN, SYN+RST, FIN+RST, FIN without ACK and no flag at all are
 * scans or evasion attempts. */
static bool flags_valid(uint8_t f)
{
	switch (f & (TH_SYN | TH_FIN | TH_RST | TH_ACK)) {
	case TH_SYN:
	case TH_SYN | TH_ACK:
	case TH_ACK:
	case TH_FIN | TH_ACK:
	case TH_RST:
	case TH_RST | TH_ACK:
		return true;
	default:
		return false;
	}
}

static enum pkt_class classify(uint8_t f)
{
	if (f & TH_RST)
		return C_RST;
	if (f & TH_SYN)
		return f & TH_ACK ? C_SYNACK : C_SYN;
	if (f & TH_FIN)
		return C_FIN;
	if (f & TH_ACK)
		return C_ACK;
	return C_NONE;
}

bool fw_tcp_may_open(const struct fw_pkt *p)
{
	if (!header_sane(p))
		return false;
	return (p->l4[13] & (TH_SYN | TH_ACK | TH_RST | TH_FIN)) == TH_SYN;
}

/*
 * Restore slack: twice the threshold. The threshold bounds the live edge against the last
 * checkpoint *taken*; the data forwarded while that checkpoint travels to the target comes
 * on top. Such a checkpoint is due at once (fw_conn_mark_dirty_now) and handed over before
 * the frames of its burst leave (fw_worker.c, transmit), so the extra is what the I/O
 * takes to write it (nothing more when the worker writes itself; with the I/O on its own
 * lcore, what passes meanwhile); a whole second threshold covers it. With the slack equal
 * to the threshold, a kill -9 in that moment left the receiver's acknowledgements beyond
 * the slack: they were dropped for good and a restored bulk download stalled. So did a
 * record written only at the end of the pass, after a burst had carried the edge a whole
 * slack further (fw_restore_test: burst_edge_in_store_before_frames_leave).
 */
static uint32_t edge_slack(uint32_t peer_maxwin)
{
	return 2 * fw_tcp_edge_threshold(peer_maxwin);
}

static void init_dir(struct fw_tcp_dir *d, const struct seg *s)
{
	memset(d, 0, sizeof(*d));
	d->end = s->seq + s->len;
	d->maxend = d->end;
	d->maxwin = s->win ? s->win : 1; /* the window of a SYN is never scaled */
	if (s->has_wscale) {
		d->flags |= FW_TCP_F_WSCALE;
		d->scale = s->wscale;
	}
	if (s->sack_perm)
		d->flags |= FW_TCP_F_SACK_PERM;
}

/* Both SYNs seen: scaling applies only if both offered it (RFC 7323). */
static void negotiate(struct fw_tcp_slice *t)
{
	if (!(t->d[0].flags & t->d[1].flags & FW_TCP_F_WSCALE)) {
		t->d[0].scale = 0;
		t->d[1].scale = 0;
	}
}

/* Checks I and II on the sequence, III and IV on the acknowledgement. */
static inline __attribute__((always_inline)) bool in_window(const struct fw_tcp_slice *t, int dir,
							    const struct seg *s)
{
	const struct fw_tcp_dir *snd = &t->d[dir], *rcv = &t->d[!dir];
	uint32_t end = s->seq + s->len;
	uint32_t snd_slack = snd->flags & FW_TCP_F_RESYNC_MAXEND ? edge_slack(rcv->maxwin) : 0;
	uint32_t rcv_slack = rcv->flags & FW_TCP_F_RESYNC_END ? edge_slack(snd->maxwin) : 0;
	uint32_t sack = s->sack;

	if (fw_seq_after(s->seq, snd->maxend + snd_slack))
		return false;
	if (fw_seq_before(end, snd->end - rcv->maxwin))
		return false;
	if (!(s->flags & TH_ACK))
		return true;
	/* SACK blocks count only where both sides agreed to SACK. */
	if (!(snd->flags & rcv->flags & FW_TCP_F_SACK_PERM))
		sack = s->ack;
	if (fw_seq_after(sack, rcv->end + rcv_slack))
		return false;
	return !fw_seq_before(sack, rcv->end - (snd->maxwin ? snd->maxwin : 1));
}

/* An RST must sit in the window (checks I to IV with its zero length); one exactly at the
 * expected sequence (S.end) always does. The endpoint then applies RFC 5961 to what we let
 * through. */
static bool rst_acceptable(const struct fw_tcp_slice *t, int dir, const struct seg *s)
{
	const struct fw_tcp_dir *snd = &t->d[dir], *rcv = &t->d[!dir];

	if (snd->maxwin == 0) {
		/* The responder before its SYN-ACK: a refusal must acknowledge the SYN. */
		return (s->flags & TH_ACK) && s->ack == rcv->end;
	}
	return in_window(t, dir, s);
}

/* Move the edges for an accepted segment; @return true when it newly acknowledged the
 * receiver's FIN. */
static inline __attribute__((always_inline)) bool update_window(struct fw_tcp_slice *t, int dir,
								const struct seg *s)
{
	struct fw_tcp_dir *snd = &t->d[dir], *rcv = &t->d[!dir];
	uint32_t end = s->seq + s->len;
	uint32_t win = s->flags & TH_SYN ? s->win : (uint32_t)s->win << snd->scale;
	bool acked_fin = false;

	if (snd->maxwin < win)
		snd->maxwin = win;
	/*
	 * The live edge is seen only beyond the restored end plus the slack: up to there, the
	 * old instance may have forwarded data the receiver holds and will acknowledge, while
	 * the sender retransmits below it. Clearing on the first segment at the checkpointed
	 * end (a retransmission) dropped those acknowledgements, and a restored bulk stream
	 * stalled. The slack is two thresholds, and each threshold passed is a checkpoint
	 * that moves ck_end: so they are counted one at a time, RESYNC_END2 goes at the first
	 * and RESYNC_END at the second.
	 */
	if (fw_seq_after(end, snd->ck_end + fw_tcp_edge_threshold(rcv->maxwin))) {
		if (snd->flags & FW_TCP_F_RESYNC_END2)
			snd->flags &= (uint8_t)~FW_TCP_F_RESYNC_END2;
		else
			snd->flags &= (uint8_t)~FW_TCP_F_RESYNC_END;
	}
	if (fw_seq_after(end, snd->end))
		snd->end = end;
	if (s->flags & TH_FIN)
		snd->flags |= FW_TCP_F_FIN_SEEN;
	if (s->flags & TH_ACK) {
		/* Only within the restore slack can an ack pass the receiver's end: the
		 * receiver did send that far, so the edge moves there. */
		if (fw_seq_after(s->ack, rcv->end))
			rcv->end = s->ack;
		if (fw_seq_after(s->ack + win, rcv->maxend))
			rcv->maxend = s->ack + win;
		rcv->flags &= (uint8_t)~FW_TCP_F_RESYNC_MAXEND;
		if ((rcv->flags & (FW_TCP_F_FIN_SEEN | FW_TCP_F_FIN_ACKED)) == FW_TCP_F_FIN_SEEN &&
		    !fw_seq_before(s->ack, rcv->end)) {
			rcv->flags |= FW_TCP_F_FIN_ACKED;
			acked_fin = true;
		}
	}
	/* A zero-window probe may end one past maxend; keep end <= maxend, which decode
	 * checks. */
	if (fw_seq_after(snd->end, snd->maxend))
		snd->maxend = snd->end;
	if (fw_seq_after(rcv->end, rcv->maxend))
		rcv->maxend = rcv->end;
	return acked_fin;
}

static enum fw_verdict drop(enum fw_drop_reason *why, enum fw_drop_reason r)
{
	if (why)
		*why = r;
	return FW_DROP;
}

/*
 * Is a checkpoint due because the window moved? See fw_tcp_edge_threshold (tcp_fast.h) for the
 * reasoning. Only end is measured: a live segment starts at most at the live end, which is within
 * the threshold of the checkpointed end, and the checkpointed maxend is never below that end, so
 * maxend + slack covers it too -- maxend needs no threshold of its own. A change of maxwin's top
 * bit, scale or flags is due at once: those define the slack itself.
 */
static bool window_checkpoint_due(const struct fw_tcp_slice *old, const struct fw_tcp_slice *t)
{
	for (int d = 0; d < 2; d++) {
		const struct fw_tcp_dir *x = &t->d[d];

		if (fw_tcp_top_bit(x->maxwin) != fw_tcp_top_bit(old->d[d].maxwin) ||
		    x->scale != old->d[d].scale || x->flags != old->d[d].flags)
			return true;
		if (x->end - x->ck_end > fw_tcp_edge_threshold(t->d[!d].maxwin))
			return true;
	}
	return false;
}

enum fw_verdict fw_tcp_packet(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
			      bool is_new, enum fw_drop_reason *why)
{
	if (!is_new && fw_tcp_packet_fast(ctx, c, p)) {
		if (why)
			*why = FW_DROP_NONE;
		return FW_PASS;
	}
	return fw_tcp_packet_full(ctx, c, p, is_new, why);
}

enum fw_verdict fw_tcp_packet_full(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
				   bool is_new, enum fw_drop_reason *why)
{
	struct fw_tcp_slice *cur = slice(c);
	struct fw_tcp_slice t;
	enum pkt_class cls;
	struct seg s;
	bool acked_fin = false, opened = false;
	uint8_t old, next;
	int dir;

	if (!header_sane(p))
		return drop(why, FW_DROP_MALFORMED);
	dir = p->dir;
	parse_seg(p, &s);
	if (!flags_valid(s.flags))
		return drop(why, FW_DROP_TCP_FLAGS);
	cls = classify(s.flags);
	if (is_new) {
		if (cls != C_SYN || dir != FW_DIR_ORIG)
			return drop(why, FW_DROP_NO_CONN);
		memset(cur, 0, sizeof(*cur));
		c->present |= (uint8_t)(1u << FW_MOD_TCP);
	}
	/* Work on a copy: a dropped segment leaves no trace in the slice. */
	t = *cur;
	old = t.state < FW_TCP_STATE_MAX ? t.state : sNO;
	if (cls == C_FIN && (t.d[dir].flags & FW_TCP_F_FIN_SEEN))
		cls = C_ACK; /* retransmitted FIN: it closes nothing new */
	next = tcp_next[dir][cls][old];
	if (next == sIV)
		return drop(why, FW_DROP_TCP_STATE);

	if (cls == C_SYN && dir == FW_DIR_ORIG && old != sSR && old != sS2) {
		/* A fresh (or re-sent) opening SYN: NONE, SYN_SENT, or reuse from TIME_WAIT
		 * / CLOSE. TIME_WAIT protects the old segments still in flight, so reuse
		 * needs a sequence beyond the old connection's. */
		if (old == sTW && fw_seq_before(s.seq, t.d[FW_DIR_ORIG].end))
			return drop(why, FW_DROP_TCP_STATE);
		memset(&t, 0, sizeof(t));
		init_dir(&t.d[FW_DIR_ORIG], &s);
		c->present |= (uint8_t)(1u << FW_MOD_TCP);
		opened = true;
	} else if (cls == C_RST) {
		if (!rst_acceptable(&t, dir, &s))
			return drop(why, FW_DROP_TCP_RST);
	} else if ((cls == C_SYN || cls == C_SYNACK) && t.d[dir].maxwin == 0) {
		/* The responder's first segment: its SYN-ACK, or its SYN in a simultaneous
		 * open. */
		init_dir(&t.d[dir], &s);
		t.d[dir].maxend = t.d[dir].end + t.d[!dir].maxwin;
		negotiate(&t);
		if (cls == C_SYNACK && s.ack != t.d[!dir].end)
			return drop(why, FW_DROP_TCP_WINDOW);
		acked_fin = update_window(&t, dir, &s);
	} else {
		/* After a refused SYN (CLOSE with the responder never seen) the responder's
		 * edges are unknown: it cannot send, and there is nothing to acknowledge. */
		if (t.d[dir].maxwin == 0 || ((s.flags & TH_ACK) && t.d[!dir].maxwin == 0))
			return drop(why, FW_DROP_TCP_STATE);
		/* The first SYN-ACK of a simultaneous open must acknowledge the SYN exactly. */
		if (cls == C_SYNACK && (old == sSS || old == sS2) && s.ack != t.d[!dir].end)
			return drop(why, FW_DROP_TCP_WINDOW);
		if (!in_window(&t, dir, &s))
			return drop(why, FW_DROP_TCP_WINDOW);
		acked_fin = update_window(&t, dir, &s);
	}
	if (cls == C_ACK && (old == sFW || old == sLA) && !acked_fin)
		next = old; /* this ACK does not acknowledge the outstanding FIN */
	t.state = next;

	if (opened || next != old || window_checkpoint_due(cur, &t)) {
		for (int d = 0; d < 2; d++)
			t.d[d].ck_end = t.d[d].end;
		/* A moved window edge is not batched: the restore slack covers only a burst or
		 * a round trip of data beyond its threshold (see edge_slack). */
		if (opened || next != old)
			fw_conn_mark_dirty(c, FW_MOD_TCP);
		else
			fw_conn_mark_dirty_now(c, FW_MOD_TCP);
	}
	*cur = t;
	c->expire_ns = p->now_ns + fw_tcp_conf_of(ctx)->timeout_ns[next];
	if (why)
		*why = FW_DROP_NONE;
	return FW_PASS;
}

/*
 * Payload, version 1, little-endian:
 *	0 u8 state, 1 u8 orig_side, 2 u16 reserved (0)
 *	4 + 16 * dir: u32 end, u32 maxend, u32 maxwin, u8 scale, u8 flags, u16 reserved (0)
 * The key side of the opener travels here because no other slice of a TCP connection is
 * required, and fw_conn_dir() needs it after restore.
 */
static int tcp_encode(const struct fw_conn *c, uint8_t *buf, size_t len)
{
	const struct fw_tcp_slice *t = slice_c(c);

	if (len < FW_TCP_PAYLOAD_LEN)
		return -ENOSPC;
	memset(buf, 0, FW_TCP_PAYLOAD_LEN);
	buf[0] = t->state;
	buf[1] = c->orig_side;
	for (int d = 0; d < 2; d++) {
		uint8_t *o = buf + 4 + 16 * d;

		fw_put_le32(o, t->d[d].end);
		fw_put_le32(o + 4, t->d[d].maxend);
		fw_put_le32(o + 8, t->d[d].maxwin);
		o[12] = t->d[d].scale;
		o[13] = t->d[d].flags & FW_TCP_F_MEDIA;
	}
	return FW_TCP_PAYLOAD_LEN;
}

static int count_fins(const struct fw_tcp_slice *t, uint8_t flag)
{
	return !!(t->d[0].flags & flag) + !!(t->d[1].flags & flag);
}

/* Relations every slice written by fw_tcp_packet satisfies. */
static int check_slice(const struct fw_tcp_slice *t)
{
	const struct fw_tcp_dir *o = &t->d[FW_DIR_ORIG], *r = &t->d[FW_DIR_REPLY];
	int fins = count_fins(t, FW_TCP_F_FIN_SEEN), acked = count_fins(t, FW_TCP_F_FIN_ACKED);

	if (t->state == sNO || t->state >= FW_TCP_STATE_MAX)
		return -EINVAL;
	/* The opener's SYN is behind every state; the responder is seen from SYN_RECV on
	 * (CLOSE may follow a SYN_SENT refused by RST). */
	if (o->maxwin == 0)
		return -EINVAL;
	if (t->state == sSS && r->maxwin != 0)
		return -EINVAL;
	if (t->state != sSS && t->state != sCL && r->maxwin == 0)
		return -EINVAL;
	for (int d = 0; d < 2; d++) {
		const struct fw_tcp_dir *x = &t->d[d], *peer = &t->d[!d];
		int32_t room = (int32_t)(x->maxend - x->end);

		if (x->scale > MAX_WSCALE || (x->flags & ~FW_TCP_F_MEDIA))
			return -EINVAL;
		if (x->scale && !(x->flags & FW_TCP_F_WSCALE))
			return -EINVAL;
		if ((x->flags & FW_TCP_F_FIN_ACKED) && !(x->flags & FW_TCP_F_FIN_SEEN))
			return -EINVAL;
		if (x->maxwin == 0) {
			if (x->end || x->maxend || x->scale || x->flags)
				return -EINVAL;
			continue;
		}
		if (x->maxwin > MAX_RAW_WIN << x->scale)
			return -EINVAL;
		/* maxend = peer ack + peer window, and the ack never passes end. */
		if (room < 0 || (uint32_t)room > peer->maxwin)
			return -EINVAL;
	}
	if (r->maxwin && !(o->flags & r->flags & FW_TCP_F_WSCALE) && (o->scale || r->scale))
		return -EINVAL;
	switch (t->state) {
	case sSS:
	case sSR:
	case sES:
	case sS2:
		return fins == 0 ? 0 : -EINVAL;
	case sFW:
		return fins == 1 && acked == 0 ? 0 : -EINVAL;
	case sCW:
		return fins == 1 && acked == 1 ? 0 : -EINVAL;
	case sLA:
		return fins == 2 && acked < 2 ? 0 : -EINVAL;
	case sTW:
		return fins == 2 && acked >= 1 ? 0 : -EINVAL;
	default:
		return 0;
	}
}

/*
 * @p t, built just now a byte or a word at a time, into @p to the same way, over zeroes: a
 * whole-struct copy's 16-byte loads could not be served from those stores and waited until
 * they reached the cache (a restore decodes a slice every few tens of nanoseconds; the
 * copy was a third of tcp_decode's time).
 */
static inline void slice_put(struct fw_tcp_slice *to, const struct fw_tcp_slice *t)
{
	/* A field added to the slice must be added here too: the sizes say it was. */
	_Static_assert(sizeof(struct fw_tcp_dir) == 20 && sizeof(struct fw_tcp_slice) == 44,
		       "slice_put() copies every field of struct fw_tcp_slice");
	memset(to, 0, sizeof(*to));
	for (int d = 0; d < 2; d++) {
		to->d[d].end = t->d[d].end;
		to->d[d].maxend = t->d[d].maxend;
		to->d[d].maxwin = t->d[d].maxwin;
		to->d[d].ck_end = t->d[d].ck_end;
		to->d[d].scale = t->d[d].scale;
		to->d[d].flags = t->d[d].flags;
	}
	to->state = t->state;
}

static int tcp_decode(struct fw_conn *c, const uint8_t *buf, size_t len, uint8_t version)
{
	struct fw_tcp_slice t;
	int rc;

	if (version > FW_TCP_SLICE_VERSION)
		return -EPROTONOSUPPORT;
	if (version == 0 || len != FW_TCP_PAYLOAD_LEN)
		return -EINVAL;
	if (buf[1] > 1 || fw_get_le16(buf + 2) != 0)
		return -EINVAL;
	memset(&t, 0, sizeof(t));
	t.state = buf[0];
	for (int d = 0; d < 2; d++) {
		const uint8_t *o = buf + 4 + 16 * d;

		if (fw_get_le16(o + 14) != 0)
			return -EINVAL;
		t.d[d].end = fw_get_le32(o);
		t.d[d].maxend = fw_get_le32(o + 4);
		t.d[d].maxwin = fw_get_le32(o + 8);
		t.d[d].scale = o[12];
		t.d[d].flags = o[13];
	}
	rc = check_slice(&t);
	if (rc < 0)
		return rc;
	/* The live edges may be ahead of these by up to the restore slack: widen the upper
	 * bounds until each edge is seen again (see edge_slack). */
	for (int d = 0; d < 2; d++) {
		t.d[d].ck_end = t.d[d].end;
		if (t.d[d].maxwin)
			t.d[d].flags |=
				FW_TCP_F_RESYNC_END | FW_TCP_F_RESYNC_END2 | FW_TCP_F_RESYNC_MAXEND;
	}
	slice_put(slice(c), &t);
	c->orig_side = buf[1];
	c->present |= (uint8_t)(1u << FW_MOD_TCP);
	return 0;
}

/* The core sets c->last_ns to its own clock before on_restore: the old instance's
 * deadlines mean nothing on this one's clock, so the state's full timeout restarts. */
static int tcp_on_restore(struct fw_ctx *ctx, struct fw_conn *c)
{
	const struct fw_tcp_slice *t = slice_c(c);

	if (t->state == sNO || t->state >= FW_TCP_STATE_MAX)
		return -EINVAL;
	c->expire_ns = c->last_ns + fw_tcp_conf_of(ctx)->timeout_ns[t->state];
	return 0;
}

static int tcp_dump(const struct fw_conn *c, char *buf, size_t len)
{
	const struct fw_tcp_slice *t = slice_c(c);
	const struct fw_tcp_dir *o = &t->d[0], *r = &t->d[1];

	return snprintf(buf, len,
			"tcp %s orig end=%u maxend=%u maxwin=%u ws=%u fl=%#x"
			" reply end=%u maxend=%u maxwin=%u ws=%u fl=%#x",
			fw_tcp_state_name(t->state), o->end, o->maxend, o->maxwin, o->scale,
			o->flags, r->end, r->maxend, r->maxwin, r->scale, r->flags);
}

/* ---- configuration ---- */

_Static_assert(sizeof(struct fw_tcp_conf) <= FW_MOD_CONF_MAX, "TCP configuration fits its room");

/* `timeout NAME SECONDS`, and the states each name sets (a second one, or NONE). */
static const char *const conf_timeouts[] = {
	"tcp-syn-sent", "tcp-syn-recv",	 "tcp-established", "tcp-fin-wait", "tcp-close-wait",
	"tcp-last-ack", "tcp-time-wait", "tcp-close",	    NULL,
};

static const uint8_t timeout_states[][2] = {
	{FW_TCP_SYN_SENT, FW_TCP_SYN_SENT2}, /* a simultaneous open waits as long */
	{FW_TCP_SYN_RECV, FW_TCP_NONE},	     {FW_TCP_ESTABLISHED, FW_TCP_NONE},
	{FW_TCP_FIN_WAIT, FW_TCP_NONE},	     {FW_TCP_CLOSE_WAIT, FW_TCP_NONE},
	{FW_TCP_LAST_ACK, FW_TCP_NONE},	     {FW_TCP_TIME_WAIT, FW_TCP_NONE},
	{FW_TCP_CLOSE, FW_TCP_NONE},
};
_Static_assert(sizeof(timeout_states) / sizeof(timeout_states[0]) ==
		       sizeof(conf_timeouts) / sizeof(conf_timeouts[0]) - 1,
	       "a state for every timeout name");

static void tcp_conf_default(void *conf)
{
	*(struct fw_tcp_conf *)conf = fw_tcp_conf_default;
}

static void tcp_conf_timeout(void *conf, unsigned int i, uint64_t ns)
{
	struct fw_tcp_conf *c = conf;

	for (int k = 0; k < 2; k++)
		if (timeout_states[i][k] != FW_TCP_NONE)
			c->timeout_ns[timeout_states[i][k]] = ns;
}

const struct fw_module_ops fw_tcp_ops = {
	.name = "tcp",
	.id = FW_MOD_TCP,
	.slice_version = FW_TCP_SLICE_VERSION,
	.slice_size = sizeof(struct fw_tcp_slice),
	.slice_off = FW_TCP_SLICE_OFF,
	.required = true,
	.restore_local = true,
	.encode = tcp_encode,
	.decode = tcp_decode,
	.on_restore = tcp_on_restore,
	.dump = tcp_dump,
	.proto = IPPROTO_TCP,
	.conf_size = sizeof(struct fw_tcp_conf),
	.conf_default = tcp_conf_default,
	.timeouts = conf_timeouts,
	.conf_timeout = tcp_conf_timeout,
};
