/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per packet: parse, look up the connection, hand the packet to its module by a switch on
 * protocol (direct calls), and consult the rules only for packets that would open a
 * connection. Everything a worker touches is its own: no locks, no atomics.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "fw_parse.h"
#include "fw_reject.h"
#include "fw_worker.h"
#include "ftp/fw_ftp.h"
#include "tcp/fw_tcp.h"
#include "tcp/tcp_fast.h"
#include "udp/fw_udp.h"

#define SWEEP_BUDGET   64
#define PREFETCH_AHEAD 4	     /* frames whose first line is fetched while one is parsed */
#define WALL_SYNC_NS   1000000000ull /* how often the wall clock offset is measured again */

static int expect_add(struct fw_ctx *ctx, struct fw_conn *master, const struct fw_expect *e)
{
	struct fw_worker *w = ctx->core;

	if (w->sh->board != NULL)
		return fw_board_add(w->sh->board, w->index, master, e);
	return fw_table_expect_add(w->table, e, master);
}

/*
 * @p master's expectation @p e left the table: a connection used it, or it expired. The
 * master's slice forgets it too, and its checkpoint with it: otherwise a restore would
 * re-create it and admit new connections to a port already used (issue 12).
 */
static void expect_gone(struct fw_worker *w, struct fw_conn *master, const struct fw_expect *e,
			uint64_t now)
{
	if ((master->present & (1u << FW_MOD_FTP)) && fw_ftp_expect_gone(master, e) && w->ckq)
		fw_ckpt_queue_push(w->ckq, master, now);
}

/* Worker @p by used @p master's expectation @p e (fw_board_settle): its slice forgets it. */
static void expect_used(struct fw_conn *master, const struct fw_expect *e, unsigned int by,
			void *arg)
{
	struct fw_worker *w = arg;

	if (by != w->index)
		w->cnt.expect_used_elsewhere++;
	expect_gone(w, master, e, fw_worker_now(w));
}

/* @p c leaves the table, and what it expects leaves the board with it. */
static void conn_del(struct fw_worker *w, struct fw_conn *c)
{
	if (w->sh->board != NULL && (c->flags & FW_CONN_F_EXPECTING))
		fw_board_withdraw(w->sh->board, w->index, c);
	fw_table_del(w->table, c);
}

/*
 * Measure the wall clock against the packet clock (the TSC): modules checkpoint deadlines
 * on the wall clock (fw_ctx.wall_offset_ns). Again now and then, as the two drift apart.
 */
static void wall_sync(struct fw_worker *w, uint64_t now)
{
	struct timespec ts;

	if (w->sh->tsc_hz == 0 || clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return;
	w->ctx.wall_offset_ns = (int64_t)((uint64_t)ts.tv_sec * 1000000000ull +
					  (uint64_t)ts.tv_nsec - fw_worker_now(w));
	w->wall_synced_ns = now;
}

void fw_worker_clock_sync(struct fw_worker *w)
{
	wall_sync(w, fw_worker_now(w));
}

int fw_worker_init(struct fw_worker *w, struct fw_shared *sh, unsigned int index, int socket)
{
	char name[32];

	memset(w, 0, sizeof(*w));
	w->index = index;
	w->sh = sh;
	snprintf(name, sizeof(name), "fw_conns_%u", index);
	w->table = fw_table_create(name, sh->conf->max_conns, FW_WORKER_MAX_EXPECT, socket);
	if (w->table == NULL)
		return -errno;
	fw_conns_init(&w->conns);
	w->ctx.core = w;
	w->ctx.expect_add = expect_add;
	for (int m = 1; m < FW_MOD_MAX; m++)
		w->ctx.conf[m] = fw_modconf_get(&sh->conf->modconf, (enum fw_module_id)m);
	wall_sync(w, 0);
	if (sh->nworkers > 1 && index == 0 && sh->board == NULL) {
		/* Room for each worker's table's worth of expectations. */
		sh->board = fw_board_create(FW_WORKER_MAX_EXPECT * sh->nworkers);
		if (sh->board == NULL) {
			fw_conns_fini(&w->conns);
			fw_table_free(&w->table);
			return -errno;
		}
	}
	if (sh->nworkers > 1) {
		snprintf(name, sizeof(name), "fw_inbox_%u", index);
		/* Any worker hands frames in; only this one takes them out. */
		w->inbox = rte_ring_create(name, FW_INBOX_SIZE, socket, RING_F_SC_DEQ);
		if (w->inbox == NULL) {
			fw_conns_fini(&w->conns);
			fw_table_free(&w->table);
			return -rte_errno;
		}
		sh->inbox[index] = w->inbox;
	}
	return 0;
}

void fw_worker_release(struct fw_worker *w)
{
	struct rte_mbuf *m[FW_BURST];
	unsigned int n;

	if (w->inbox != NULL) {
		while ((n = rte_ring_sc_dequeue_burst(w->inbox, (void **)m, FW_BURST, NULL)) > 0)
			rte_pktmbuf_free_bulk(m, n);
		w->sh->inbox[w->index] = NULL;
		rte_ring_free(w->inbox);
		w->inbox = NULL;
	}
	for (unsigned int i = 0; i < w->nheld; i++)
		rte_pktmbuf_free(w->held[i].m);
	w->nheld = 0;
	if (w->index == 0)
		fw_board_free(&w->sh->board);
	fw_conns_fini(&w->conns);
	fw_table_free(&w->table);
}

void fw_worker_set_checkpointer(struct fw_worker *w, struct fw_checkpointer *k)
{
	w->ckpt = k;
	w->ckq = k ? fw_checkpointer_queue(k) : NULL;
}

static enum fw_verdict drop(struct fw_worker *w, enum fw_drop_reason why)
{
	w->cnt.drop[why]++;
	return FW_DROP;
}

/*
 * Does the ICMP error @p ps, quoting @p q, concern a connection of this worker? It must go
 * back to the host that sent the quoted packet. With several workers, an error about a
 * connection another worker owns (a router's path-MTU error hashes by its own addresses,
 * not the connection's) goes to that owner: @return -1 with st->owner set.
 */
static int related_error(struct fw_worker *w, const struct fw_parsed *ps,
			 const struct fw_icmp_quote *q, uint8_t *owner)
{
	const size_t alen = ps->family == 4 ? 4 : 16;
	struct fw_key key;

	if (memcmp(ps->daddr, q->saddr, alen) != 0)
		return 0;
	fw_key_make(&key, q->family, q->proto, q->saddr, q->daddr, q->sport, q->dport);
	if (w->sh->nworkers > 1) {
		const unsigned int o = fw_conn_owner(&key, w->sh->nworkers);

		if (o != w->index) {
			*owner = (uint8_t)o;
			return -1;
		}
	}
	return fw_table_lookup(w->table, &key) != NULL;
}

/*
 * The switch of the hot path: each protocol's modules, called directly. @p proto is the
 * packet's, hence the key's: the connection's copy of the key is not in its hot line.
 * @p fast: TCP may take its fast path (false only for fw_worker_handle_full, so that the
 * tests hold the worker's lane to TCP's full path, not to the fast path it shares).
 */
static enum fw_verdict dispatch(struct fw_worker *w, uint8_t proto, struct fw_conn *c,
				const struct fw_pkt *p, bool is_new, enum fw_drop_reason *why,
				bool fast)
{
	enum fw_verdict v;

	switch (proto) {
	case IPPROTO_TCP:
		w->cnt.mod_pkts[FW_MOD_TCP]++;
		v = fast ? fw_tcp_packet(&w->ctx, c, p, is_new, why)
			 : fw_tcp_packet_full(&w->ctx, c, p, is_new, why);
		if (v == FW_PASS && (c->present & (1u << FW_MOD_FTP))) {
			w->cnt.mod_pkts[FW_MOD_FTP]++;
			v = fw_ftp_packet(&w->ctx, c, p, why);
		}
		return v;
	case IPPROTO_UDP:
		w->cnt.mod_pkts[FW_MOD_UDP]++;
		return fw_udp_packet(&w->ctx, c, p, is_new, why);
	default:
		*why = FW_DROP_MALFORMED;
		return FW_DROP;
	}
}

static struct fw_conn *open_conn(struct fw_worker *w, const struct fw_key *key, int side)
{
	struct fw_conn *c = fw_table_add(w->table, key, fw_conn_id(&w->sh->secret, key));

	if (c == NULL)
		return NULL;
	c->orig_side = (uint8_t)side;
	c->present = (uint8_t)(1u << (key->proto == IPPROTO_TCP ? FW_MOD_TCP : FW_MOD_UDP));
	if (key->proto == IPPROTO_TCP && fw_ftp_is_control(w->ctx.conf[FW_MOD_FTP], c))
		c->present |= 1u << FW_MOD_FTP;
	return c;
}

/* A frame between parsing and its verdict. */
struct pkt_state {
	struct fw_parsed ps;
	struct fw_key key;
	int side;
	enum fw_zone zone;
	bool reject;   /* dropped by a reject rule: answer it */
	uint8_t owner; /* the worker it is handed to (CLASSIFY_HANDOFF) */
};

/* What classify() leaves to do. */
enum {
	CLASSIFY_FINAL = 0,   /* the verdict is made */
	CLASSIFY_CONN = 1,    /* TCP/UDP: decide with its connection */
	CLASSIFY_HANDOFF = 2, /* several workers: another one owns it (st->owner) */
};

/* What the rules in force say of @p ps, the matching rule's hit counted. */
static inline enum fw_action rules_decide(struct fw_worker *w, enum fw_zone zone,
					  const struct fw_parsed *ps)
{
	return fw_rulegen_decide(__atomic_load_n(&w->sh->rules, __ATOMIC_ACQUIRE), w->index, zone,
				 ps);
}

/*
 * A frame no module tracks (not TCP or UDP). IPv6's link signalling passes as ARP does;
 * an ICMP error about a tracked connection passes as that connection's (path MTU above
 * all), decided by the connection's owner; the rules decide the rest, every packet.
 * @return the verdict, or -1: hand it to st->owner. Out of line: inlined, its ICMP quote
 * and its registers were set up in classify() for every TCP and UDP frame too.
 */
static __rte_noinline int classify_other(struct fw_worker *w, const uint8_t *frame,
					 enum fw_zone zone, struct pkt_state *st)
{
	const struct fw_config *conf = w->sh->conf;
	const struct fw_parsed *ps = &st->ps;
	struct fw_icmp_quote q;
	enum fw_icmp_kind kind = fw_parse_icmp(frame, ps, &q);
	enum fw_action a;

	if (kind == FW_ICMP_LINK) {
		w->cnt.nd++;
		return FW_PASS;
	}
	if (ps->l3_opts && !conf->pass_ip_options)
		return drop(w, FW_DROP_L3_OPTIONS);
	if (kind == FW_ICMP_ERROR) {
		const int rel = related_error(w, ps, &q, &st->owner);

		if (rel < 0)
			return -1;
		if (rel) {
			w->cnt.icmp_related++;
			return FW_PASS;
		}
	}
	a = rules_decide(w, zone, ps);
	st->reject = a == FW_ACT_REJECT;
	if (a != FW_ACT_ACCEPT)
		return drop(w, FW_DROP_POLICY);
	if (ps->proto == IPPROTO_ICMP && ps->family == 4)
		w->cnt.icmp_pass++;
	else if (ps->proto == IPPROTO_ICMPV6 && ps->family == 6)
		w->cnt.icmp6_pass++;
	return FW_PASS;
}

/*
 * Everything decided without a connection lookup. @return CLASSIFY_CONN when the frame
 * needs its connection (TCP/UDP: whose owner the caller checks), CLASSIFY_FINAL when *@p v
 * is final, CLASSIFY_HANDOFF for an ICMP error about another worker's connection.
 */
static __rte_always_inline int classify(struct fw_worker *w, const uint8_t *frame, uint32_t len,
					unsigned int checked, enum fw_zone zone,
					struct pkt_state *st, enum fw_verdict *v)
{
	const struct fw_config *conf = w->sh->conf;

	st->reject = false;
	switch (fw_parse_with(frame, len, checked, &st->ps)) {
	case FW_PARSE_OK:
		break;
	case FW_PARSE_ARP:
		w->cnt.arp++;
		*v = FW_PASS;
		return 0;
	case FW_PARSE_NON_IP:
		*v = conf->pass_non_ip ? FW_PASS : drop(w, FW_DROP_NON_IP);
		return 0;
	case FW_PARSE_MALFORMED:
		*v = drop(w, FW_DROP_MALFORMED);
		return 0;
	}
	if (st->ps.frag == FW_FRAG_LATER) {
		*v = conf->pass_fragments ? FW_PASS : drop(w, FW_DROP_FRAGMENT);
		return 0;
	}
	if (st->ps.proto != IPPROTO_TCP && st->ps.proto != IPPROTO_UDP) {
		const int r = classify_other(w, frame, zone, st);

		if (r < 0)
			return CLASSIFY_HANDOFF;
		*v = (enum fw_verdict)r;
		return CLASSIFY_FINAL;
	}
	if (st->ps.l3_opts && !conf->pass_ip_options) {
		*v = drop(w, FW_DROP_L3_OPTIONS);
		return 0;
	}
	st->zone = zone;
	if (st->ps.family == 4)
		st->side = fw_key_make4(&st->key, st->ps.proto, st->ps.saddr, st->ps.daddr,
					st->ps.sport, st->ps.dport);
	else
		st->side = fw_key_make(&st->key, st->ps.family, st->ps.proto, st->ps.saddr,
				       st->ps.daddr, st->ps.sport, st->ps.dport);
	return 1;
}

/* What a module sees of the parsed frame @p ps at @p now_ns (its direction still unset). */
static inline struct fw_pkt pkt_of(const struct fw_parsed *ps, uint64_t now_ns)
{
	return (struct fw_pkt){
		.l4 = ps->l4,
		.l4_len = ps->l4_len,
		.hdr_len = ps->l4_hdr_len,
		.saddr = ps->saddr,
		.daddr = ps->daddr,
		.family = ps->family,
		.now_ns = now_ns,
	};
}

/*
 * The commonest frame: a segment of an established TCP connection that no other module
 * tracks, which TCP's fast path accepts (fw_tcp_packet_fast). What decide() does with it
 * -- its direction, last_ns, TCP's count, the checkpoint if due, a pass counted -- inlined
 * into the burst loop, without decide()'s call and frame (six saved registers and the
 * locals of a connection's opening, an expectation among them, on every packet).
 * @return true when it passed; false having changed nothing, and decide() decides.
 */
static __rte_always_inline bool pass_established(struct fw_worker *w, const struct pkt_state *st,
						 struct fw_conn *c, uint64_t now_ns)
{
	const struct fw_parsed *ps = &st->ps;
	struct fw_pkt pkt = pkt_of(ps, now_ns);

	pkt.dir = (uint8_t)fw_conn_dir(c, st->side);

	/* An FTP control connection's segments go to its helper too: decide() calls it. */
	if (ps->proto != IPPROTO_TCP || c->present != 1u << FW_MOD_TCP ||
	    !fw_tcp_packet_fast(&w->ctx, c, &pkt))
		return false;
	c->last_ns = now_ns;
	w->cnt.mod_pkts[FW_MOD_TCP]++;
	if (c->dirty && w->ckq)
		fw_ckpt_queue_push(w->ckq, c, now_ns);
	w->cnt.pass++;
	return true;
}

/*
 * The verdict of a TCP/UDP frame whose connection lookup gave @p c (NULL: none then);
 * @p fast as for dispatch().
 */
static enum fw_verdict decide(struct fw_worker *w, struct pkt_state *st, struct fw_conn *c,
			      uint64_t now_ns, bool fast)
{
	const struct fw_parsed *ps = &st->ps;
	enum fw_drop_reason why = FW_DROP_NONE;
	struct fw_expect exp;
	struct fw_pkt pkt = pkt_of(ps, now_ns);
	bool is_new = false;
	enum fw_verdict v;

	/* A frame earlier in this burst may have opened it since the bulk lookup. */
	if (c == NULL)
		c = fw_table_lookup(w->table, &st->key);
	if (c == NULL) {
		struct fw_conn *master = NULL;
		unsigned int owner = 0;
		uint64_t ticket = 0;
		bool related;

		/* Only a packet that may open a connection uses up an expectation. */
		if (ps->proto == IPPROTO_TCP && !fw_tcp_may_open(&pkt))
			return drop(w, FW_DROP_NO_CONN);
		if (w->sh->board != NULL)
			related = fw_board_take(w->sh->board, w->index, ps->family, ps->proto,
						ps->saddr, ps->sport, ps->daddr, ps->dport, now_ns,
						&exp, &owner, &ticket);
		else
			related = fw_table_expect_take(w->table, ps->family, ps->proto, ps->saddr,
						       ps->sport, ps->daddr, ps->dport, now_ns,
						       &exp, &master);
		if (!related) {
			enum fw_action a = rules_decide(w, st->zone, ps);

			if (a != FW_ACT_ACCEPT) {
				st->reject = a == FW_ACT_REJECT;
				return drop(w, FW_DROP_POLICY);
			}
		}
		c = open_conn(w, &st->key, st->side);
		if (c == NULL) {
			if (related && w->sh->board != NULL) /* still unused: it stays */
				fw_board_untake(w->sh->board, owner, &exp);
			else if (related)
				fw_table_expect_add(w->table, &exp, master);
			return drop(w, FW_DROP_TABLE_FULL);
		}
		is_new = true;
		w->cnt.conn_new++;
		if (related) {
			w->cnt.conn_related++;
			if (w->sh->board == NULL)
				expect_gone(w, master, &exp, now_ns);
			else if (owner != w->index) {
				w->cnt.related_cross++;
				/* Its frame waits for the owner's checkpoint (burst, hold). */
				w->pend[w->npend++] = (struct fw_hold_pending){
					.st = st, .ticket = ticket, .owner = (uint8_t)owner};
			} else /* ours: its master forgets it now, as with one worker */
				fw_board_settle(w->sh->board, w->index, expect_used, w, NULL);
		}
	}
	pkt.dir = (uint8_t)fw_conn_dir(c, st->side);
	c->last_ns = now_ns;
	v = dispatch(w, ps->proto, c, &pkt, is_new, &why, fast);
	if (v == FW_DROP && is_new) {
		conn_del(w, c);
		return drop(w, why);
	}
	if (c->dirty && w->ckq)
		fw_ckpt_queue_push(w->ckq, c, now_ns);
	if (v == FW_DROP)
		return drop(w, why);
	w->cnt.pass++;
	return FW_PASS;
}

/* fw_worker_rx_checked, inlined into the burst loop. */
static inline int rx_checked(const struct fw_port_map *pm, const struct rte_mbuf *m)
{
	if (!pm->rx_ip_csum)
		return 0;
	switch (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
	case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
		return FW_PARSE_IP_CSUM_GOOD;
	case RTE_MBUF_F_RX_IP_CKSUM_BAD:
		return -1;
	default: /* not IPv4, or not checked: the parser sums it */
		return 0;
	}
}

int fw_worker_rx_checked(const struct fw_port_map *pm, const struct rte_mbuf *m)
{
	return rx_checked(pm, m);
}

/* fw_worker_handle, with the fast lane for established TCP (@p fast) or without it. */
static enum fw_verdict handle(struct fw_worker *w, const uint8_t *frame, uint32_t len,
			      enum fw_zone zone, uint64_t now_ns, bool fast)
{
	struct pkt_state st;
	struct fw_conn *c;
	enum fw_verdict v;

	/*
	 * A bare frame, decided here whoever owns its connection; but an ICMP error about
	 * another worker's connection has no mbuf to hand over: counted as a hand-off that
	 * found no room.
	 */
	switch (classify(w, frame, len, 0, zone, &st, &v)) {
	case CLASSIFY_FINAL:
		return v;
	case CLASSIFY_HANDOFF:
		return drop(w, FW_DROP_HANDOFF_FULL);
	default:
		c = fw_table_lookup(w->table, &st.key);
		if (fast && c != NULL && pass_established(w, &st, c, now_ns))
			return FW_PASS;
		v = decide(w, &st, c, now_ns, fast);
		w->npend = 0; /* no frame to hold: the caller has it */
		return v;
	}
}

enum fw_verdict fw_worker_handle(struct fw_worker *w, const uint8_t *frame, uint32_t len,
				 enum fw_zone zone, uint64_t now_ns)
{
	return handle(w, frame, len, zone, now_ns, true);
}

enum fw_verdict fw_worker_handle_full(struct fw_worker *w, const uint8_t *frame, uint32_t len,
				      enum fw_zone zone, uint64_t now_ns)
{
	return handle(w, frame, len, zone, now_ns, false);
}

/* An idle connection goes: its slices are tombstoned, and what it expected is withdrawn. */
static void expire(struct fw_table *t, struct fw_conn *c, void *arg)
{
	struct fw_worker *w = arg;

	(void)t;
	w->cnt.conn_expired++;
	if (w->ckpt)
		fw_checkpointer_forget(w->ckpt, c);
	conn_del(w, c);
}

struct expect_expiry {
	struct fw_worker *w;
	uint64_t now;
};

static void expect_expired(struct fw_table *t, const struct fw_expect *e, struct fw_conn *master,
			   void *arg)
{
	const struct expect_expiry *x = arg;

	(void)t;
	x->w->cnt.expect_expired++;
	expect_gone(x->w, master, e, x->now);
}

/* An expectation of the board's that ran out unused. */
static void board_expired(struct fw_conn *master, const struct fw_expect *e, unsigned int by,
			  void *arg)
{
	const struct expect_expiry *x = arg;

	(void)by;
	x->w->cnt.expect_expired++;
	expect_gone(x->w, master, e, x->now);
}

void fw_worker_housekeep(struct fw_worker *w, uint64_t now)
{
	struct expect_expiry x = {w, now};

	fw_table_sweep(w->table, now, SWEEP_BUDGET, expire, w);
	if (w->sh->board != NULL)
		fw_board_expire(w->sh->board, w->index, now, board_expired, &x);
	else
		fw_table_expect_expire(w->table, now, expect_expired, &x);
	if (now - w->wall_synced_ns > WALL_SYNC_NS)
		wall_sync(w, now);
}

/* Within reject-rate? Replies are capped per worker per second. */
static bool reject_allowed(struct fw_worker *w, uint64_t now)
{
	if (now - w->reject_window >= 1000000000ull) {
		w->reject_window = now;
		w->reject_count = 0;
	}
	if (w->reject_count >= w->sh->conf->reject_rate) {
		w->cnt.reject_limited++;
		return false;
	}
	w->reject_count++;
	return true;
}

/* Turn a rejected frame into its reply in place. @return true if @p m is now the reply. */
static bool make_reply(struct fw_worker *w, struct rte_mbuf *m, const struct pkt_state *st,
		       uint64_t now)
{
	uint32_t shift, len;

	if (!reject_allowed(w, now) || rte_pktmbuf_headroom(m) < FW_REJECT_HEADROOM ||
	    fw_reject_build(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_data_len(m), &st->ps,
			    &shift, &len) != 0)
		return false;
	if (shift && rte_pktmbuf_prepend(m, (uint16_t)shift) == NULL)
		return false;
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	w->cnt.reject_sent++;
	return true;
}

/*
 * Hand the frames of @p in marked in @p away to their owners' inboxes (st[k].owner), in
 * their order, each owner's in one enqueue. The frame keeps its port in m->port (net_ring
 * ports do not set it). A full inbox drops the rest: the owner is behind by a whole inbox.
 */
static void hand_off(struct fw_worker *w, struct rte_mbuf **in, uint16_t n, const uint8_t *away,
		     const struct pkt_state *st, uint16_t port)
{
	struct rte_mbuf *to[FW_BURST];

	for (unsigned int o = 0; o < w->sh->nworkers; o++) {
		unsigned int nt = 0, sent;

		for (uint16_t k = 0; k < n; k++)
			if (away[k] && st[k].owner == o) {
				in[k]->port = port;
				to[nt++] = in[k];
			}
		if (nt == 0)
			continue;
		sent = rte_ring_mp_enqueue_burst(w->sh->inbox[o], (void **)to, nt, NULL);
		w->cnt.handoff_out += sent;
		if (sent < nt) {
			w->cnt.drop[FW_DROP_HANDOFF_FULL] += nt - sent;
			rte_pktmbuf_free_bulk(to + sent, nt - sent);
		}
	}
}

/*
 * Hold the frames of the burst @p in that passed having used another worker's expectation
 * (w->pend, noted by decide() against their states in @p st), until that owner's
 * checkpoint has the expectation forgotten (fw_board.h): taken out of the @p npass frames
 * gathered in @p out, sent by release_held(). @return the frames left in @p out.
 */
static uint16_t hold(struct fw_worker *w, struct rte_mbuf **in, const struct pkt_state *st,
		     const enum fw_verdict *v, struct rte_mbuf **out, uint16_t npass, uint16_t port,
		     uint64_t now)
{
	for (unsigned int i = 0; i < w->npend; i++) {
		const struct fw_hold_pending *p = &w->pend[i];
		const size_t k = (size_t)((const struct pkt_state *)p->st - st);
		struct rte_mbuf *m = in[k];
		uint16_t j = 0;

		if (v[k] != FW_PASS) /* dropped or answered: nothing to hold */
			continue;
		while (j < npass && out[j] != m)
			j++;
		if (j == npass) /* not among those that pass (cannot be: every pass is) */
			continue;
		memmove(out + j, out + j + 1, (size_t)(npass - j - 1) * sizeof(*out));
		npass--;
		if (w->nheld == FW_WORKER_MAX_HELD) {
			w->cnt.held_dropped++;
			rte_pktmbuf_free(m);
			continue;
		}
		w->held[w->nheld++] = (struct fw_held){.m = m,
						       .ticket = p->ticket,
						       .since_ns = now,
						       .port = port,
						       .owner = p->owner};
		w->cnt.held++;
	}
	w->npend = 0;
	return npass;
}

/*
 * Send the held frames whose expectation's owner said its checkpoint has it forgotten, in
 * the order they were held; drop those it did not within FW_WORKER_HELD_NS (the owner
 * stalls: the peer sends its SYN again, and the connection, made already, takes it).
 */
static void release_held(struct fw_worker *w, uint64_t now, bool barred)
{
	const uint16_t q = (uint16_t)w->index;
	unsigned int keep = 0;

	for (unsigned int i = 0; i < w->nheld; i++) {
		struct fw_held *x = &w->held[i];

		if (barred) {
			w->cnt.drop_fenced += w->sh->fenced;
			w->cnt.drop_lease_lapsed += !w->sh->fenced;
			rte_pktmbuf_free(x->m);
		} else if (fw_board_settled(w->sh->board, x->owner, x->ticket)) {
			if (rte_eth_tx_burst(x->port, q, &x->m, 1) == 1) {
				w->cnt.tx[x->port]++;
			} else {
				w->cnt.tx_full[x->port]++;
				rte_pktmbuf_free(x->m);
			}
		} else if (now - x->since_ns > FW_WORKER_HELD_NS) {
			w->cnt.held_dropped++;
			rte_pktmbuf_free(x->m);
		} else {
			w->held[keep++] = *x;
		}
	}
	w->nheld = keep;
}

/*
 * Hand the changes due at once (a window edge, an expectation used) to the checkpoint now,
 * if any wait. @return false when the target says another instance took over: the worker
 * is fenced, and nothing of what made those changes may leave.
 */
static inline bool due_now_handed(struct fw_worker *w, uint64_t now)
{
	if (likely(w->ckq == NULL || !w->ckq->now) || fw_checkpointer_tick(w->ckpt, now) != -ESTALE)
		return true;
	fw_fence(w->sh, 0);
	return false;
}

/*
 * The owner's side: another worker holds a frame until this worker's checkpoint has the
 * expectations it used forgotten. fw_board_settle() made their masters' slices forget them
 * (due at once); hand those to the checkpoint now, then say so (@p upto).
 */
static void settled_for_holders(struct fw_worker *w, uint64_t now, uint64_t upto)
{
	if (!due_now_handed(w, now))
		return; /* fenced: never said */
	fw_board_done(w->sh->board, w->index, upto);
}

/*
 * A burst in three passes: parse and settle what needs no connection; look every
 * remaining key up at once (rte_hash pipelines the bucket reads); decide each frame with
 * its connection prefetched. Returns how many frames pass, gathered in @p out in order;
 * rejected frames turned into their replies go to @p back (*@p nback of them).
 *
 * @p multi (several workers; a constant in each caller, so that one worker's loop has no
 * owner test at all): frames of connections another worker owns are handed to it after
 * the first pass, and neither looked up nor decided here.
 */
static __rte_always_inline uint16_t burst(struct fw_worker *w, struct rte_mbuf **in, uint16_t n,
					  uint16_t port, const struct fw_port_map *pm, uint64_t now,
					  struct rte_mbuf **out, struct rte_mbuf **back,
					  uint16_t *nback, const bool multi)
{
	const enum fw_zone zone = (enum fw_zone)pm->zone;
	struct pkt_state st[FW_BURST];
	const struct fw_key *keys[FW_BURST];
	struct fw_conn *conns[FW_BURST];
	enum fw_verdict v[FW_BURST];
	uint8_t need[FW_BURST];
	uint8_t away[FW_BURST];
	unsigned int nk = 0, naway = 0;
	uint16_t npass = 0;

	/* Frames first touched here: their mbufs now, each frame's first line a few ahead. */
	for (uint16_t k = 0; k < n; k++)
		rte_prefetch0(in[k]);
	for (uint16_t k = 0; k < n; k++) {
		struct rte_mbuf *m = in[k];
		const int checked = rx_checked(pm, m);

		if (multi)
			away[k] = 0;
		if (k + PREFETCH_AHEAD < n)
			rte_prefetch0(rte_pktmbuf_mtod(in[k + PREFETCH_AHEAD], void *));
		/* Multi-segment frames are linearized only if they must be. */
		if (checked < 0 || (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0)) {
			need[k] = CLASSIFY_FINAL;
			st[k].reject = false;
			v[k] = drop(w, FW_DROP_MALFORMED);
			continue;
		}
		need[k] = (uint8_t)classify(w, rte_pktmbuf_mtod(m, const uint8_t *),
					    rte_pktmbuf_data_len(m), (unsigned int)checked, zone,
					    &st[k], &v[k]);
		if (multi) {
			if (need[k] == CLASSIFY_CONN) {
				const unsigned int o = fw_conn_owner(&st[k].key, w->sh->nworkers);

				if (o != w->index) {
					st[k].owner = (uint8_t)o;
					need[k] = CLASSIFY_HANDOFF;
				}
			}
			if (need[k] == CLASSIFY_HANDOFF) {
				away[k] = 1;
				naway++;
				continue;
			}
		}
		if (need[k])
			keys[nk++] = &st[k].key;
	}
	if (multi && naway)
		hand_off(w, in, n, away, st, port);
	if (nk)
		fw_table_lookup_bulk(w->table, keys, nk, conns);
	/*
	 * Each connection's hot line, fetched non-temporal: on a link of many flows it is
	 * seldom needed again before the caches have turned over. Fetched as an ordinary line
	 * it displaced the hash table's buckets and keys, when a connection was 320 bytes of
	 * which only this line is read (fw_bench: the minimal loop's state lines read 320 bytes
	 * apart, not 64, ran 13-17 % slower at 100 k and 1 M flows); fetched so, holdfast ran
	 * ~5-8 % faster there, no slower at 1 k. The hot lines are 64 bytes apart now (the
	 * cold parts in a plane of their own, fw_conn.h); three alternated pairs of this
	 * against rte_prefetch0 were even on this shared VM.
	 */
	for (unsigned int i = 0; i < nk; i++)
		if (conns[i])
			rte_prefetch_non_temporal(conns[i]);
	nk = 0;
	for (uint16_t k = 0; k < n; k++) {
		if (multi && away[k])
			continue;
		if (need[k]) {
			struct fw_conn *c = conns[nk++];

			if (c != NULL && pass_established(w, &st[k], c, now))
				v[k] = FW_PASS;
			else
				v[k] = decide(w, &st[k], c, now, true);
		}
		if (v[k] == FW_PASS)
			out[npass++] = in[k];
		else if (st[k].reject && make_reply(w, in[k], &st[k], now))
			back[(*nback)++] = in[k];
		else
			rte_pktmbuf_free(in[k]);
	}
	/* A data connection's SYN that used another worker's expectation waits (fw_board.h). */
	if (multi && unlikely(w->npend != 0))
		npass = hold(w, in, st, v, out, npass, pm->peer, now);
	return npass;
}

/*
 * What passed leaves by the pair of @p port, replies by @p port, on this worker's queue.
 *
 * A change due at once (a TCP window edge past its threshold, an expectation used) is
 * handed to the checkpoint before the frames that made it leave. A restored connection
 * accepts the live one's next segments within the restore slack of what the store holds
 * (modules/tcp/tcp.c, edge_slack); written only at the end of the pass, a burst could
 * forward more than that slack beyond the last record: a kill -9 after the frames left
 * and before the tick, and the receiver acknowledged data the restored connection did not
 * know, every acknowledgement dropped, the download stalled for good.
 */
static void transmit(struct fw_worker *w, uint16_t port, const struct fw_port_map *pm,
		     struct rte_mbuf **out, uint16_t npass, struct rte_mbuf **back, uint16_t nback,
		     uint64_t now)
{
	const uint16_t q = (uint16_t)w->index;
	uint16_t sent;

	if (unlikely(!due_now_handed(w, now))) {
		/* Fenced: another instance owns the connections; nothing more leaves. */
		w->cnt.drop_fenced += npass + nback;
		rte_pktmbuf_free_bulk(out, npass);
		rte_pktmbuf_free_bulk(back, nback);
		return;
	}
	if (nback) {
		/* Replies leave by the port the refused frames came in on. */
		sent = rte_eth_tx_burst(port, q, back, nback);
		w->cnt.tx[port] += sent;
		if (sent < nback) {
			w->cnt.tx_full[port] += nback - sent;
			rte_pktmbuf_free_bulk(back + sent, nback - sent);
		}
	}
	sent = npass ? rte_eth_tx_burst(pm->peer, q, out, npass) : 0;
	w->cnt.tx[pm->peer] += sent;
	if (sent < npass) {
		w->cnt.tx_full[pm->peer] += npass - sent;
		rte_pktmbuf_free_bulk(out + sent, npass - sent);
	}
}

/*
 * Frames other workers handed here, decided as if they had arrived on this worker's queue
 * of their port: in runs of one port, in the order they were handed (per sender, the order
 * it received them). They are not counted in rx again (their receiver did).
 */
static unsigned int drain_inbox(struct fw_worker *w, uint64_t now, bool barred)
{
	struct rte_mbuf *in[FW_BURST], *out[FW_BURST], *back[FW_BURST];
	const unsigned int n = rte_ring_sc_dequeue_burst(w->inbox, (void **)in, FW_BURST, NULL);
	unsigned int k = 0;

	if (n == 0)
		return 0;
	w->cnt.handoff_in += n;
	if (unlikely(barred)) {
		if (w->sh->fenced)
			w->cnt.drop_fenced += n;
		else
			w->cnt.drop_lease_lapsed += n;
		rte_pktmbuf_free_bulk(in, n);
		return n;
	}
	while (k < n) {
		const uint16_t port = in[k]->port;
		const struct fw_port_map *pm = &w->sh->ports[port];
		uint16_t run = 1, npass, nback = 0;

		while (k + run < n && in[k + run]->port == port)
			run++;
		npass = burst(w, in + k, run, port, pm, now, out, back, &nback, true);
		transmit(w, port, pm, out, npass, back, nback, now);
		k += run;
	}
	return n;
}

unsigned int fw_worker_poll(struct fw_worker *w, uint64_t now)
{
	struct fw_shared *sh = w->sh;
	const uint16_t q = (uint16_t)w->index;
	struct rte_mbuf *in[FW_BURST], *out[FW_BURST], *back[FW_BURST];
	unsigned int total = 0;
	/*
	 * Forward only while the lease holds and nobody fenced us: looked at once a pass, on
	 * the pass's now (no clock read of its own).
	 */
	const uint64_t until = __atomic_load_n(&sh->lease_until_ns, __ATOMIC_RELAXED);
	const bool barred = (now >= until && until != 0) || sh->fenced;
	const bool multi = w->inbox != NULL;

	/*
	 * First what others did with our expectations (their masters forget them before our
	 * next packet of theirs), then what others handed here: it arrived before what the
	 * ports hold now.
	 */
	if (multi) {
		if (sh->board != NULL) {
			uint64_t upto;

			fw_board_settle(sh->board, w->index, expect_used, w, &upto);
			if (unlikely(upto != 0))
				settled_for_holders(w, now, upto);
		}
		if (unlikely(w->nheld != 0))
			release_held(w, now, barred);
		total += drain_inbox(w, now, barred);
	}
	for (unsigned int i = 0; i < sh->nports; i++) {
		const uint16_t port = sh->port_list[i];
		const struct fw_port_map *pm = &sh->ports[port];
		uint16_t n = rte_eth_rx_burst(port, q, in, FW_BURST);
		uint16_t npass = 0, nback = 0;

		if (n == 0)
			continue;
		total += n;
		w->cnt.rx[port] += n;
		if (unlikely(barred)) {
			if (sh->fenced)
				w->cnt.drop_fenced += n;
			else
				w->cnt.drop_lease_lapsed += n;
			rte_pktmbuf_free_bulk(in, n);
			continue;
		}
		if (multi)
			npass = burst(w, in, n, port, pm, now, out, back, &nback, true);
		else
			npass = burst(w, in, n, port, pm, now, out, back, &nback, false);
		transmit(w, port, pm, out, npass, back, nback, now);
	}
	/* An operator's listing (hfctl conns): a chunk a pass; one load when none is asked. */
	if (unlikely(fw_conns_asked(&w->conns)))
		fw_conns_serve(&w->conns, w->table, FW_CONNS_SCAN_PASS);
	return total;
}

uint64_t fw_shared_now(const struct fw_shared *sh)
{
	return (uint64_t)((double)rte_get_tsc_cycles() * (1e9 / (double)sh->tsc_hz));
}

uint64_t fw_worker_now(const struct fw_worker *w)
{
	return fw_shared_now(w->sh);
}

void fw_fence(struct fw_shared *sh, uint64_t by)
{
	if (by)
		__atomic_store_n(&sh->fenced_by, by, __ATOMIC_RELAXED);
	sh->fenced = true;
	sh->quit = true;
}

int fw_worker_main(void *arg)
{
	struct fw_worker *w = arg;
	struct rte_rcu_qsbr *qs = w->sh->qsbr;

	/* Until offline again, a rules change waits for this worker's passes. */
	if (qs)
		rte_rcu_qsbr_thread_online(qs, w->index);
	while (!w->sh->quit) {
		uint64_t now = fw_worker_now(w);
		unsigned int n = fw_worker_poll(w, now);

		/* Between passes no decision is under way: the rules may be swapped. */
		if (qs)
			rte_rcu_qsbr_quiescent(qs, w->index);
		/* Expire a little at a time: when idle, and every 1024 busy passes. */
		if (n == 0 || (++w->sweeps & 1023) == 0)
			fw_worker_housekeep(w, now);
		if (w->ckpt && fw_checkpointer_tick(w->ckpt, now) == -ESTALE)
			fw_fence(w->sh, 0);
	}
	if (qs)
		rte_rcu_qsbr_thread_offline(qs, w->index);
	return 0;
}
