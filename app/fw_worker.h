/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fast path: one worker per lcore, each with its own connection table, polling its
 * queue of every port and forwarding what passes to the port's pair.
 *
 * With several workers, every connection has one owner, fw_conn_owner() of its canonical
 * key: the same for both directions and whichever queue the port put a frame on (the
 * kernel's fanout on net_af_packet moves a busy flow to another socket under pressure; a
 * NIC's RSS hashes by its own function). Only the owner creates, reads and writes the
 * connection. A worker that receives a frame of a connection it does not own hands the
 * mbuf to the owner's inbox (an rte_ring, multi-producer, single-consumer), which the
 * owner drains at each pass of its loop and decides there. With one worker none of this
 * runs: the burst loop is compiled without the owner test (fw_worker.c, burst()).
 */
#ifndef FW_WORKER_H
#define FW_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_hash_crc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "fw_board.h"
#include "fw_checkpoint.h"
#include "fw_config.h"
#include "fw_conns.h"
#include "fw_live.h"
#include "fw_rules.h"
#include "fw_table.h"
#include "holdfast/fw_module.h"

#define FW_MAX_PORTS	     16
#define FW_MAX_WORKER	     16
#define FW_BURST	     32
#define FW_INBOX_SIZE	     4096 /* frames handed to a worker and not decided yet, at most */
#define FW_WORKER_MAX_EXPECT 4096 /* a worker's expectations (on the board: each worker's) */
/* Frames a worker holds until another worker's checkpoint has the expectation they used
 * forgotten (fw_board.h), and how long it waits for that owner before dropping one. */
#define FW_WORKER_MAX_HELD 32
#define FW_WORKER_HELD_NS  10000000ull

/*
 * Seed of the owner hash: not the connection table's (rte_hash_crc, seed 0), whose top
 * bits are its bucket signatures; with the same seed every key of one worker's table would
 * share them.
 */
#define FW_OWNER_SEED 0x9e3779b9u

/**
 * The worker among @p n that owns the connection of canonical key @p key: both directions
 * give the same key, hence the same owner; every worker computes it alike.
 */
static inline unsigned int fw_conn_owner(const struct fw_key *key, unsigned int n)
{
	const uint32_t h = rte_hash_crc(key, sizeof(*key), FW_OWNER_SEED);

	return (unsigned int)(((uint64_t)h * n) >> 32);
}

struct fw_counters {
	uint64_t rx[FW_MAX_PORTS];
	uint64_t tx[FW_MAX_PORTS];
	uint64_t tx_full[FW_MAX_PORTS]; /* passed, but the port's queue had no room */
	uint64_t pass;
	uint64_t drop[FW_DROP_REASON_MAX];
	uint64_t arp;
	uint64_t nd;	       /* IPv6 link signalling (neighbour, multicast listener discovery) */
	uint64_t icmp_related; /* ICMP / ICMPv6 errors about a tracked connection */
	uint64_t icmp_pass;    /* ICMP (IPv4) a rule accepted */
	uint64_t icmp6_pass;   /* ICMPv6 a rule accepted */
	uint64_t conn_new;
	uint64_t conn_related; /* admitted by an expectation */
	uint64_t conn_expired;
	uint64_t expect_expired; /* expectations that ran out unused */
	uint64_t reject_sent;	 /* RST / ICMP unreachable answered to a reject rule */
	uint64_t reject_limited; /* rejects over reject-rate: dropped without a reply */
	/* Frames not looked at: the lease ran out (a standby may be forwarding them), or a
	 * standby took over and fenced us (fw_shared.lease_until_ns, .fenced). */
	uint64_t drop_lease_lapsed;
	uint64_t drop_fenced;
	uint64_t mod_pkts[FW_MOD_MAX];
	/* Several workers: frames of a connection another worker owns, handed to its inbox,
	 * and frames other workers handed to this one (decided here, counted in pass/drop). A
	 * full inbox drops the frame (drop[FW_DROP_HANDOFF_FULL]). */
	uint64_t handoff_out;
	uint64_t handoff_in;
	/* Several workers: connections admitted by an expectation another worker's control
	 * connection made (counted here, and in conn_related), and this worker's expectations
	 * that another worker used (its masters told: fw_board_settle). */
	uint64_t related_cross;
	uint64_t expect_used_elsewhere;
	/* Several workers: frames admitted by another worker's expectation, held until its
	 * owner's checkpoint forgot it (counted in pass), and those dropped after all: no room
	 * to hold them, or the owner did not settle within FW_WORKER_HELD_NS. */
	uint64_t held;
	uint64_t held_dropped;
};

struct fw_port_map {
	uint16_t peer; /* where what arrives here leaves */
	uint8_t zone;  /* enum fw_zone of what arrives here */
	uint8_t in_use;
	uint8_t rx_ip_csum; /* the port checks IPv4 header checksums (its rx flags say) */
};

/* Shared, read-only once workers run (but for the fields that say otherwise). */
struct fw_shared {
	const struct fw_config *conf; /* its modconf is what the modules see (fw_ctx.conf) */
	/*
	 * The rules in force (fw_live.h): swapped by the rules' control thread while workers
	 * run, read with one acquire load per decision. A worker reports a quiescent state
	 * in qsbr (NULL: nobody swaps, e.g. unit tests) once per pass of its loop, as thread
	 * w->index, after which it holds no generation.
	 */
	struct fw_rulegen *rules;
	struct rte_rcu_qsbr *qsbr;
	struct fw_port_map ports[FW_MAX_PORTS];
	uint16_t port_list[FW_MAX_PORTS];
	unsigned int nports;
	unsigned int nworkers;		       /* 0 or 1: one worker, no hand-offs */
	struct rte_ring *inbox[FW_MAX_WORKER]; /* each worker's, when there are several */
	/* Several workers: every worker's expectations, seen by all (fw_board.h); created by
	 * worker 0's init and freed by its release. NULL: one worker, they stay in its table. */
	struct fw_board *board;
	struct fw_id_secret secret;
	uint64_t tsc_hz;
	volatile bool quit;
	/*
	 * The lease, written by its keeper (fw_standby.c), read by the workers once a pass:
	 * they forward only until lease_until_ns (fw_shared_now() clock; 0: no lease kept,
	 * forward), and nothing once fenced (a newer epoch was taken: fw_fence()).
	 */
	uint64_t lease_until_ns;
	volatile bool fenced;
	uint64_t epoch;	    /* ours (ckpt_epoch_take); 0: none taken, or the target keeps none */
	uint64_t fenced_by; /* the epoch that fenced us, when known */
};

/** Nanoseconds of the TSC, the workers' clock (fw_worker_now()); any thread may read it. */
uint64_t fw_shared_now(const struct fw_shared *sh);

/**
 * We were fenced (-ESTALE: a standby took a newer epoch, @p by if known, else 0): the
 * workers stop forwarding at once and return, main stops the ports and exits.
 */
void fw_fence(struct fw_shared *sh, uint64_t by);

struct fw_worker {
	unsigned int index; /* queue on every port */
	struct fw_shared *sh;
	struct fw_table *table;
	struct fw_ctx ctx;
	struct fw_counters cnt;
	uint64_t sweeps;
	struct fw_checkpointer *ckpt; /* NULL: checkpointing off */
	struct fw_ckpt_queue *ckq;    /* its queue, filled inline per packet */
	uint64_t reject_window;	      /* start of the current second of reject replies */
	uint32_t reject_count;
	uint64_t wall_synced_ns;       /* when ctx.wall_offset_ns was measured */
	struct rte_ring *inbox;	       /* frames other workers handed here; NULL: one worker */
	struct fw_conns_mailbox conns; /* a listing of the table asked of this worker */
	/* Frames of the burst being decided that used another worker's expectation (decide()
	 * notes their state; the burst holds them once decided), and the frames held. */
	unsigned int npend;
	struct fw_hold_pending {
		const void *st; /* the frame's struct pkt_state in the burst */
		uint64_t ticket;
		uint8_t owner;
	} pend[FW_BURST];
	unsigned int nheld;
	struct fw_held {
		struct rte_mbuf *m;
		uint64_t ticket; /* fw_board_take's order of the use */
		uint64_t since_ns;
		uint16_t port; /* it leaves by */
		uint8_t owner; /* the expectation's */
	} held[FW_WORKER_MAX_HELD];
} __rte_cache_aligned;

/**
 * Create a worker's table and context, and, when @p sh->nworkers is over 1, its inbox
 * (sh->inbox[@p index]) and, for worker 0, the expectations' board (sh->board).
 * @return 0 or -errno.
 */
int fw_worker_init(struct fw_worker *w, struct fw_shared *sh, unsigned int index, int socket);

/** Free the table, and the inbox with the frames still in it (worker 0: the board). */
void fw_worker_release(struct fw_worker *w);

/** Checkpoint through @p k from now on (NULL: checkpointing off). */
void fw_worker_set_checkpointer(struct fw_worker *w, struct fw_checkpointer *k);

/**
 * One pass: this worker's inbox (several workers), then its queue of every port, then a
 * chunk of a connection listing, if one is asked of it (fw_conns.h).
 * @return frames received, from the ports and the inbox.
 */
unsigned int fw_worker_poll(struct fw_worker *w, uint64_t now);

/** Nanoseconds of the TSC, the clock of timeouts. */
uint64_t fw_worker_now(const struct fw_worker *w);

/**
 * Expire a little: idle connections from where the last call stopped (tombstoned, their
 * expectations withdrawn), and expectations whose time ran out (their masters' slices
 * forget them); measure the wall clock again once a second. The lcore loop calls it when
 * idle and every 1024 busy passes.
 */
void fw_worker_housekeep(struct fw_worker *w, uint64_t now);

/**
 * Measure the wall clock's offset to the packet clock now (fw_ctx.wall_offset_ns): before a
 * restore that did not follow a fresh init (a standby that followed for days, its ports
 * and housekeeping stopped, while the two clocks drifted apart).
 */
void fw_worker_clock_sync(struct fw_worker *w);

/** The lcore loop (rte_eal_remote_launch); returns when sh->quit is set. */
int fw_worker_main(void *arg);

/*
 * What the port of @p pm checked of @p m already (FW_PARSE_* bits for fw_parse_with), or
 * -1 when it found the IPv4 header checksum wrong: the frame is malformed. Nothing when
 * the port does not check checksums, whatever the flags say.
 */
int fw_worker_rx_checked(const struct fw_port_map *pm, const struct rte_mbuf *m);

/**
 * Decide one frame that arrived on a port of @p zone at @p now_ns: FW_PASS or FW_DROP,
 * counters updated. Exposed for tests.
 */
enum fw_verdict fw_worker_handle(struct fw_worker *w, const uint8_t *frame, uint32_t len,
				 enum fw_zone zone, uint64_t now_ns);

/**
 * fw_worker_handle() without the fast lane of established TCP segments (fw_worker.c,
 * pass_established) and without TCP's fast path (fw_tcp_packet_full for every segment):
 * every frame decided by the general path. For the tests that hold the two to each other:
 * same verdicts, counters and connections.
 */
enum fw_verdict fw_worker_handle_full(struct fw_worker *w, const uint8_t *frame, uint32_t len,
				      enum fw_zone zone, uint64_t now_ns);

#endif /* FW_WORKER_H */
