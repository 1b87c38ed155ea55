/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Forwarding speed of one worker on one core, side by side in the same run with a minimal
 * stateful loop (the denominator: what any stateful forwarder must do per packet) and a
 * plain io-forwarding loop (for reference: a pointer move). Ports are net_ring pairs
 * (rte_eth_from_rings) in this process; a fixed set of mbufs circulates: the bench writes
 * the next flow's endpoints into each frame and puts it on port 0's rx ring, the loop under
 * test forwards it to port 1, and the bench takes it back from port 1's tx ring. Every loop
 * pays the same recycling, so their ratios are the cost of what each one does.
 *
 * Flows come in a fixed-seed random order (the headline figure) or in sequence. In
 * sequence, rte_hash hands out positions in insertion order, so the connection array and
 * its key store are read front to back and the hardware prefetcher hides the misses; the
 * random order is what a real link looks like.
 *
 *   fw_bench [EAL args] -- [-f 1000,100000,1000000] [-o random|sequential|both] [-R ROUNDS]
 *            [-p PASS_SECONDS] [-s 2] [-k TARGET]... [-r TARGET]...
 *            [-c TARGET|none]... [-C NEW_CONNS_PER_S] [-I inline,thread,lcore]
 *            [-t TARGET]... [-S SECRET_FILE] [-W FLOWS] [-L io,minimal,holdfast,new] [-u]
 *
 * -L: only the loops named (default all four; "new" is the opening rate): a profile
 * (perf record) of one loop alone is not mixed with the others'. The ratio needs both
 * minimal and holdfast. -u: those loops' rates per second of CPU time (mpps_since), and
 * the churn runs' (-c) per second of the worker's CPU time too: a pass preempted by other
 * work on the worker's core loses nothing (each churn line says the worker's share of the
 * wall clock, cpu %, how often it was preempted, and the interrupts its CPU took a second).
 *
 * -c: forwarding while new connections open at -C per second, each checkpointed into the
 * target, beside checkpointing off ("none"; "spin": off, the second lcore busy-polling
 * meanwhile, as an idle I/O lcore does; "stream": off, the second lcore copying 8 MB back
 * and forth). -I: where the checkpoint I/O runs for those
 * runs (issue 15): inline (the worker, as before), thread (a control thread, holdfast's
 * default) or lcore (the second lcore of -l, busy-polling); several are compared in one
 * run. Default: lcore with two lcores or more, else thread. -R rounds there too, each
 * alternating off and every target and way in turn (off, target, off, target...), then
 * min / median / max per side: a ratio is never the luck of one pass on a noisy host.
 *
 * -W: forwarding with one worker and with two side by side, and the cost of handing a frame
 * to the worker that owns its connection (issue 16; workers_table), FLOWS flows, -R rounds
 * of -p seconds a side.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "fw_ckpt_io.h"
#include "fw_ckpt_log.h"
#include "fw_restore.h"
#include "fw_worker.h"

#define FRAME_LEN     60 /* + 4 bytes FCS on the wire: 64-byte frames */
#define CIRCULATE     4096
#define PORTS_PER_DST 60000
#define QUEUES	      2 /* per port: one per worker of -W */

/* rxq[p][q]: what port p's queue q receives; txq[p][q]: what it sends. */
static struct rte_ring *rxq[2][QUEUES], *txq[2][QUEUES];
static struct rte_mempool *pool;
static struct fw_config conf;
static struct fw_shared sh;
static struct fw_worker worker, worker1; /* worker1: the second of -W's two workers */
static struct fw_worker *const wk[QUEUES] = {&worker, &worker1};
static unsigned int nworkers; /* made by fw_setup_workers() */
static uint8_t secret[64];    /* -S FILE: tenant holdfast's secret for remote targets */
static size_t secret_len;
/* Flow index of the n-th frame sent: a permutation of [0, flows), or NULL for 0, 1, 2... */
static uint32_t *order;

/* The frame of flow @p i: 198.18.0.1:(1024 + i % 60000) -> 198.19.x.y:80, IPv4 TCP. */
static void write_flow(uint8_t *f, uint32_t i, uint8_t flags, uint32_t seq, uint32_t ack)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);
	const uint32_t dst = (198u << 24) | (19u << 16) | (i / PORTS_PER_DST);

	memset(f, 0, FRAME_LEN);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16(40);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32((198u << 24) | (18u << 16) | 1);
	ip->dst_addr = rte_cpu_to_be_32(dst);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	tcp->src_port = rte_cpu_to_be_16((uint16_t)(1024 + i % PORTS_PER_DST));
	tcp->dst_port = rte_cpu_to_be_16(80);
	tcp->sent_seq = rte_cpu_to_be_32(seq);
	tcp->recv_ack = rte_cpu_to_be_32(ack);
	tcp->data_off = 5 << 4;
	tcp->tcp_flags = flags;
	tcp->rx_win = rte_cpu_to_be_16(65535);
}

/* The same frame from the server's side. */
static void write_reply(uint8_t *f, uint32_t i, uint8_t flags, uint32_t seq, uint32_t ack)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + sizeof(struct rte_ether_hdr));
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);
	uint32_t a;
	uint16_t p;

	write_flow(f, i, flags, seq, ack);
	a = ip->src_addr, ip->src_addr = ip->dst_addr, ip->dst_addr = a;
	p = tcp->src_port, tcp->src_port = tcp->dst_port, tcp->dst_port = p;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

/*
 * Two ports of QUEUES queue pairs each. One worker uses queue 0 only (nothing is put on
 * the others); -W's two workers a queue each, as holdfast's do.
 */
static int ports_setup(void)
{
	static const char *names[2] = {"ring0", "ring1"};

	for (int p = 0; p < 2; p++) {
		struct rte_eth_conf ec = {0};
		char n[32];
		int id;

		for (int q = 0; q < QUEUES; q++) {
			snprintf(n, sizeof(n), "rx%d.%d", p, q);
			rxq[p][q] = rte_ring_create(n, 8192, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
			snprintf(n, sizeof(n), "tx%d.%d", p, q);
			txq[p][q] = rte_ring_create(n, 8192, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (rxq[p][q] == NULL || txq[p][q] == NULL)
				return -1;
		}
		id = rte_eth_from_rings(names[p], rxq[p], QUEUES, txq[p], QUEUES, 0);
		if (id != p || rte_eth_dev_configure((uint16_t)p, QUEUES, QUEUES, &ec) != 0)
			return -1;
		for (uint16_t q = 0; q < QUEUES; q++)
			if (rte_eth_rx_queue_setup((uint16_t)p, q, 1024, 0, NULL, pool) != 0 ||
			    rte_eth_tx_queue_setup((uint16_t)p, q, 1024, 0, NULL) != 0)
				return -1;
		if (rte_eth_dev_start((uint16_t)p) != 0)
			return -1;
	}
	return 0;
}

/* @p n workers (1 or QUEUES) of @p max_conns connections each, on ports 0 and 1. */
static int fw_setup_workers(uint32_t max_conns, unsigned int n)
{
	char err[256];
	struct fw_rule r;

	fw_config_defaults(&conf);
	conf.max_conns = max_conns;
	if (fw_rule_parse("accept from inside proto tcp dport 80", &r, err, sizeof(err)) ||
	    fw_ruleset_add(&conf.rules, &r))
		return -1;
	sh.conf = &conf;
	sh.tsc_hz = rte_get_tsc_hz();
	fw_id_secret_init(&sh.secret);
	sh.rules = fw_rulegen_build(&conf.rules, n, 1, 0, err, sizeof(err)); /* hits per worker */
	if (sh.rules == NULL)
		return -1;
	/* The workers report quiescent states as holdfast's do (fw_worker_main): their cost
	 * is part of the pass measured. */
	sh.qsbr = rte_zmalloc("bench_qsbr", rte_rcu_qsbr_get_memsize(n), RTE_CACHE_LINE_SIZE);
	if (sh.qsbr == NULL || rte_rcu_qsbr_init(sh.qsbr, n) != 0)
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (rte_rcu_qsbr_thread_register(sh.qsbr, i) != 0)
			return -1;
		rte_rcu_qsbr_thread_online(sh.qsbr, i);
	}
	for (uint16_t p = 0; p < 2; p++) {
		sh.ports[p] = (struct fw_port_map){.peer = (uint16_t)!p,
						   .zone = p ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE,
						   .in_use = 1};
		sh.port_list[sh.nports++] = p;
	}
	sh.nworkers = n;
	for (nworkers = 0; nworkers < n; nworkers++)
		if (fw_worker_init(wk[nworkers], &sh, nworkers, 0) != 0)
			return -1;
	return 0;
}

static int fw_setup(uint32_t max_conns)
{
	return fw_setup_workers(max_conns, 1);
}

/* Undo fw_setup_workers(), or as much of it as was done. */
static void fw_teardown(void)
{
	while (nworkers > 0)
		fw_worker_release(wk[--nworkers]);
	for (unsigned int i = 0; sh.qsbr && i < RTE_MAX(sh.nworkers, 1u); i++)
		rte_rcu_qsbr_thread_offline(sh.qsbr, i);
	rte_free(sh.qsbr);
	fw_rulegen_free(&sh.rules);
	fw_config_release(&conf);
	memset(&sh, 0, sizeof(sh));
}

/* Establish flow @p i in @p w's table with a real handshake. */
static void handshake(struct fw_worker *w, uint32_t i, uint64_t now)
{
	uint8_t f[FRAME_LEN];

	write_flow(f, i, RTE_TCP_SYN_FLAG, 1000, 0);
	fw_worker_handle(w, f, FRAME_LEN, FW_ZONE_INSIDE, now);
	write_reply(f, i, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 5000, 1001);
	fw_worker_handle(w, f, FRAME_LEN, FW_ZONE_OUTSIDE, now);
	write_flow(f, i, RTE_TCP_ACK_FLAG, 1001, 5001);
	fw_worker_handle(w, f, FRAME_LEN, FW_ZONE_INSIDE, now);
}

/* Establish flows [@p from, @p to) with a real handshake each. */
static void establish_range(uint32_t from, uint32_t to)
{
	const uint64_t now = fw_worker_now(&worker);

	for (uint32_t i = from; i < to; i++)
		handshake(&worker, i, now);
}

static void establish(uint32_t flows)
{
	establish_range(0, flows);
}

/* IPv4 header checksum per destination group, so recycling writes only what differs. */
static uint16_t group_csum[1u << 16];

static void groups_init(uint32_t flows)
{
	uint8_t f[FRAME_LEN];

	for (uint32_t g = 0; g * PORTS_PER_DST < flows; g++) {
		write_flow(f, g * PORTS_PER_DST, RTE_TCP_ACK_FLAG, 1001, 5001);
		group_csum[g] =
			((struct rte_ipv4_hdr *)(f + sizeof(struct rte_ether_hdr)))->hdr_checksum;
	}
}

/* Point a circulating frame at flow @p i: source port, destination, header checksum. */
static void retarget(uint8_t *f, uint32_t i)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + sizeof(struct rte_ether_hdr));
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);

	ip->dst_addr = rte_cpu_to_be_32((198u << 24) | (19u << 16) | (i / PORTS_PER_DST));
	ip->hdr_checksum = group_csum[i / PORTS_PER_DST];
	tcp->src_port = rte_cpu_to_be_16((uint16_t)(1024 + i % PORTS_PER_DST));
}

/*
 * What one rx queue is fed: the flows @p ord[0 .. @p n) in turn (NULL: 0, 1, 2...), the
 * next one at @p next.
 */
struct feed {
	const uint32_t *ord;
	uint32_t n, next;
};

static uint32_t feed_next(struct feed *fd)
{
	const uint32_t i = fd->ord ? fd->ord[fd->next] : fd->next;

	fd->next = fd->next + 1 == fd->n ? 0 : fd->next + 1;
	return i;
}

/* Move what @p from holds (a tx queue) to @p to (an rx queue), each frame the next flow. */
static void recycle_into(struct rte_ring *from, struct rte_ring *to, struct feed *fd)
{
	struct rte_mbuf *m[64];
	unsigned int n = rte_ring_dequeue_burst(from, (void **)m, 64, NULL);

	for (unsigned int k = 0; k < n; k++)
		retarget(rte_pktmbuf_mtod(m[k], uint8_t *), feed_next(fd));
	if (n)
		rte_ring_enqueue_burst(to, (void **)m, n, NULL);
}

/* Refill port 0's rx ring from port 1's tx ring, next flow each time. */
static void recycle(uint32_t flows, uint32_t *next)
{
	struct feed fd = {order, flows, *next};

	recycle_into(txq[1][0], rxq[0][0], &fd);
	*next = fd.next;
}

/* @p count new frames on @p to, the next flows of @p fd. */
static void prime_into(struct rte_ring *to, unsigned int count, struct feed *fd)
{
	struct rte_mbuf *m[CIRCULATE];

	if (rte_pktmbuf_alloc_bulk(pool, m, count) != 0) {
		fprintf(stderr, "fw_bench: mbuf pool exhausted\n");
		exit(1);
	}
	for (unsigned int k = 0; k < count; k++) {
		m[k]->data_len = m[k]->pkt_len = FRAME_LEN;
		write_flow(rte_pktmbuf_mtod(m[k], uint8_t *), feed_next(fd), RTE_TCP_ACK_FLAG, 1001,
			   5001);
	}
	rte_ring_enqueue_bulk(to, (void **)m, count, NULL);
}

static void prime(uint32_t flows, uint32_t *next)
{
	struct feed fd = {order, flows, *next};

	prime_into(rxq[0][0], CIRCULATE, &fd);
	*next = fd.next;
}

/* Free every frame in flight: on the ports' queues and in the workers' inboxes. */
static void drain(void)
{
	struct rte_mbuf *m[64];
	unsigned int n;

	for (int p = 0; p < 2; p++) {
		for (int q = 0; q < QUEUES; q++) {
			while ((n = rte_ring_dequeue_burst(rxq[p][q], (void **)m, 64, NULL)) > 0)
				rte_pktmbuf_free_bulk(m, n);
			while ((n = rte_ring_dequeue_burst(txq[p][q], (void **)m, 64, NULL)) > 0)
				rte_pktmbuf_free_bulk(m, n);
		}
	}
	for (unsigned int i = 0; i < nworkers; i++)
		while (sh.inbox[i] != NULL &&
		       (n = rte_ring_dequeue_burst(sh.inbox[i], (void **)m, 64, NULL)) > 0)
			rte_pktmbuf_free_bulk(m, n);
}

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * Interrupts the CPU this thread runs on took so far, of every kind (/proc/interrupts'
 * column of that CPU): timer ticks, IPIs, devices. 0 when it cannot be read. Not every
 * IPI shows: on this VM a remote TLB flush is counted nowhere there (docs/checkpoint.md,
 * the groups' last few percent).
 */
static uint64_t cpu_interrupts(void)
{
	const int cpu = sched_getcpu();
	FILE *f = fopen("/proc/interrupts", "r");
	char line[4096];
	uint64_t sum = 0;

	if (f == NULL || cpu < 0) {
		if (f != NULL)
			fclose(f);
		return 0;
	}
	if (fgets(line, sizeof(line), f) == NULL) /* the header: CPU0 CPU1 ... */
		line[0] = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strchr(line, ':');

		/* "NAME:" then one count per CPU */
		for (int c = 0; p != NULL && c <= cpu; c++) {
			char *e;
			unsigned long long v = strtoull(p + 1, &e, 10);

			if (e == p + 1)
				break;
			if (c == cpu)
				sum += v;
			p = e - 1;
		}
	}
	fclose(f);
	return sum;
}

/* How often this thread was preempted so far (involuntary context switches). */
static long thread_preemptions(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : 0;
}

/*
 * -u: the loops' rates per second of this thread's CPU time, not per second of the wall
 * clock. On a machine shared with other work a pass loses whatever time the thread was
 * preempted (a half when another process shares its core), and the two sides of a ratio
 * lose it unevenly; the CPU time leaves that out (not what the other work does to the
 * caches).
 */
static bool per_cpu_second;

/* Millions of @p frames a second since the wall clock read @p t0 (TSC) and the thread's
 * CPU time @p cpu0 (ms). */
static double mpps_since(uint64_t frames, uint64_t t0, double cpu0)
{
	const double s = per_cpu_second
				 ? (thread_cpu_ms() - cpu0) / 1e3
				 : (double)(rte_get_tsc_cycles() - t0) / (double)rte_get_tsc_hz();

	return (double)frames / s / 1e6;
}

static double run_fw(uint32_t flows, double seconds)
{
	const uint64_t hz = rte_get_tsc_hz(), end = rte_get_tsc_cycles() + (uint64_t)(seconds * hz);
	uint64_t tx0 = worker.cnt.tx[1], t0 = rte_get_tsc_cycles();
	const double cpu0 = thread_cpu_ms();
	uint32_t next = 0;

	groups_init(flows);
	prime(flows, &next);
	while (rte_get_tsc_cycles() < end) {
		for (int it = 0; it < 64; it++) {
			fw_worker_poll(&worker, fw_worker_now(&worker));
			rte_rcu_qsbr_quiescent(sh.qsbr, 0);
			recycle(flows, &next);
		}
	}
	drain();
	return mpps_since(worker.cnt.tx[1] - tx0, t0, cpu0);
}

/*
 * The minimal stateful loop: what any forwarder that tracks TCP flows must do per packet,
 * and no more. Parse Ethernet, IPv4 and TCP with bounds checks (no IPv4 checksum, no VLAN,
 * no options, no policy), build fw_table's canonical 40-byte key, look the burst up with
 * rte_hash_lookup_bulk in a table made as fw_table's (parameters, key compare) holding the same
 * flows, prefetch each flow's one 64-byte state line, write sequence, acknowledgement and
 * last-seen time into it, forward. It runs on the same feed and recycling as the worker.
 */
struct min_flow {
	alignas(64) uint32_t seq;
	uint32_t ack;
	uint64_t last_ns;
};
_Static_assert(sizeof(struct min_flow) == 64, "one state line per flow");

static struct rte_hash *min_hash;
static struct min_flow *min_flows;

static void min_key(struct fw_key *k, uint32_t sa, uint32_t da, uint16_t sp, uint16_t dp)
{
	/* fw_key_make's order: addresses as bytes (big-endian numbers), then raw ports. */
	const uint32_t hs = rte_be_to_cpu_32(sa), hd = rte_be_to_cpu_32(da);
	const bool swap = hs > hd || (hs == hd && sp > dp);

	*k = (struct fw_key){.family = 4, .proto = IPPROTO_TCP};
	memcpy(k->addr[0], swap ? &da : &sa, 4);
	memcpy(k->addr[1], swap ? &sa : &da, 4);
	k->port[0] = swap ? dp : sp;
	k->port[1] = swap ? sp : dp;
}

/* The key of @p len bytes of frame @p f and its TCP header, or NULL when it is no
 * well-formed IPv4 TCP segment. */
static const struct rte_tcp_hdr *min_parse(const uint8_t *f, uint32_t len, struct fw_key *k)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)f;
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
	const struct rte_tcp_hdr *tcp;
	uint32_t ihl, total, doff;

	if (len < sizeof(*eth) + sizeof(*ip) ||
	    eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    (ip->version_ihl >> 4) != 4 || ip->next_proto_id != IPPROTO_TCP)
		return NULL;
	ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;
	total = rte_be_to_cpu_16(ip->total_length);
	if (ihl < 20 || total > len - sizeof(*eth) || total < ihl + sizeof(*tcp))
		return NULL;
	tcp = (const struct rte_tcp_hdr *)((const uint8_t *)ip + ihl);
	doff = (uint32_t)(tcp->data_off >> 4) * 4;
	if (doff < sizeof(*tcp) || doff > total - ihl)
		return NULL;
	min_key(k, ip->src_addr, ip->dst_addr, tcp->src_port, tcp->dst_port);
	return tcp;
}

/* The table, as fw_table_create makes it for @p entries, holding flows [0, @p flows). */
static int min_setup(uint32_t flows, uint32_t entries)
{
	struct rte_hash_parameters hp = {
		.name = "minimal",
		.entries = entries,
		.key_len = sizeof(struct fw_key),
		.hash_func = rte_hash_crc,
		.hash_func_init_val = 0,
		.socket_id = 0,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	uint8_t f[FRAME_LEN];
	struct fw_key k;

	min_hash = rte_hash_create(&hp);
	if (min_hash == NULL)
		return -1;
	rte_hash_set_cmp_func(min_hash, fw_key_cmp); /* as fw_table_create does */
	min_flows = rte_zmalloc("minimal",
				sizeof(*min_flows) * ((size_t)rte_hash_max_key_id(min_hash) + 1),
				RTE_CACHE_LINE_SIZE);
	if (min_flows == NULL)
		return -1;
	for (uint32_t i = 0; i < flows; i++) {
		int32_t pos;

		write_flow(f, i, RTE_TCP_ACK_FLAG, 1001, 5001);
		if (min_parse(f, FRAME_LEN, &k) == NULL ||
		    (pos = rte_hash_add_key(min_hash, &k)) < 0)
			return -1;
		/* Its state written, as a handshake would: rte_zmalloc hands out fresh memory
		 * untouched, and a first pass paying a page fault per flow measured the VM. */
		min_flows[pos] = (struct min_flow){.seq = 1001, .ack = 5001};
	}
	return 0;
}

static void min_teardown(void)
{
	rte_free(min_flows);
	min_flows = NULL;
	rte_hash_free(min_hash);
	min_hash = NULL;
}

static uint16_t min_burst(struct rte_mbuf **m, uint16_t n, uint64_t now)
{
	struct fw_key keys[FW_BURST];
	const void *kp[FW_BURST];
	const struct rte_tcp_hdr *tcp[FW_BURST];
	int32_t pos[FW_BURST];
	uint16_t nk = 0, nout = 0;

	for (uint16_t i = 0; i < n; i++) {
		tcp[nk] = min_parse(rte_pktmbuf_mtod(m[i], const uint8_t *),
				    rte_pktmbuf_data_len(m[i]), &keys[nk]);
		if (tcp[nk] == NULL) {
			rte_pktmbuf_free(m[i]);
			continue;
		}
		kp[nk] = &keys[nk];
		m[nk++] = m[i];
	}
	if (nk == 0)
		return 0;
	rte_hash_lookup_bulk(min_hash, kp, nk, pos);
	for (uint16_t i = 0; i < nk; i++)
		if (pos[i] >= 0)
			rte_prefetch0(&min_flows[pos[i]]);
	for (uint16_t i = 0; i < nk; i++) {
		struct min_flow *fl;

		if (pos[i] < 0) {
			rte_pktmbuf_free(m[i]);
			continue;
		}
		fl = &min_flows[pos[i]];
		fl->seq = rte_be_to_cpu_32(tcp[i]->sent_seq);
		fl->ack = rte_be_to_cpu_32(tcp[i]->recv_ack);
		fl->last_ns = now;
		m[nout++] = m[i];
	}
	return nout;
}

/*
 * The io loop and the minimal stateful loop: one skeleton (rx, the loop's work, tx,
 * recycling), forced inline into each so that @p stateful is a constant there and neither
 * pays a branch the other needs.
 */
static inline __attribute__((always_inline)) double run_plain(uint32_t flows, double seconds,
							      bool stateful)
{
	const uint64_t hz = rte_get_tsc_hz(), end = rte_get_tsc_cycles() + (uint64_t)(seconds * hz);
	struct rte_mbuf *m[FW_BURST];
	uint64_t pkts = 0, t0 = rte_get_tsc_cycles();
	const double cpu0 = thread_cpu_ms();
	uint32_t next = 0;

	groups_init(flows);
	prime(flows, &next);
	while (rte_get_tsc_cycles() < end) {
		for (int it = 0; it < 64; it++) {
			uint16_t n = rte_eth_rx_burst(0, 0, m, FW_BURST);
			uint16_t f = !stateful ? n : n ? min_burst(m, n, rte_get_tsc_cycles()) : 0;
			uint16_t s = f ? rte_eth_tx_burst(1, 0, m, f) : 0;

			if (s < f)
				rte_pktmbuf_free_bulk(m + s, f - s);
			pkts += s;
			recycle(flows, &next);
		}
	}
	drain();
	return mpps_since(pkts, t0, cpu0);
}

/* Plain io forwarding: port 0 rx -> port 1 tx, nothing looked at. */
static double run_io(uint32_t flows, double seconds)
{
	return run_plain(flows, seconds, false);
}

static double run_min(uint32_t flows, double seconds)
{
	return run_plain(flows, seconds, true);
}

/* A fixed-seed permutation of [0, @p flows) into order (Fisher-Yates, splitmix64). */
static int order_random(uint32_t flows)
{
	uint64_t x = 0x15f1a57u;

	free(order);
	order = malloc(sizeof(*order) * flows);
	if (order == NULL)
		return -1;
	for (uint32_t i = 0; i < flows; i++)
		order[i] = i;
	for (uint32_t i = flows - 1; i > 0; i--) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		uint32_t j, t;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		j = (uint32_t)(z % ((uint64_t)i + 1));
		t = order[i], order[i] = order[j], order[j] = t;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* "median (min-max)" of @p n figures; sorts them. */
static const char *spread(double *v, unsigned int n, char *buf, size_t len)
{
	qsort(v, n, sizeof(*v), cmp_double);
	snprintf(buf, len, "%.2f (%.2f-%.2f)", n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2,
		 v[0], v[n - 1]);
	return buf;
}

#define MAX_ROUNDS 15

/* The loops compare() runs (-L): a profile of one of them is not mixed with the others. */
enum {
	LOOP_IO = 1,
	LOOP_MIN = 2,
	LOOP_FW = 4,
	LOOP_NEW = 8, /* the opening rate (run_new) */
	LOOP_ALL = LOOP_IO | LOOP_MIN | LOOP_FW | LOOP_NEW,
};
static const char *const loop_name[] = {"io", "minimal", "holdfast", "new"};

/*
 * io, minimal, holdfast, io, minimal, holdfast...: @p rounds passes of @p seconds each, so
 * that the machine's drift lands on every side alike. One line: median (min-max) of each,
 * and holdfast / minimal (of the medians, then the range of the per-round ratios).
 */
static void compare(uint32_t flows, const char *how, unsigned int rounds, double seconds,
		    double new_conns, unsigned int loops)
{
	double io[MAX_ROUNDS], mn[MAX_ROUNDS], fw[MAX_ROUNDS], ratio[MAX_ROUNDS];
	char a[48] = "-", b[48] = "-", c[48] = "-", d[48] = "-", e[16] = "-";
	double mid_mn, mid_fw;

	for (unsigned int r = 0; r < rounds; r++) {
		io[r] = loops & LOOP_IO ? run_io(flows, seconds) : 0;
		mn[r] = loops & LOOP_MIN ? run_min(flows, seconds) : 0;
		fw[r] = loops & LOOP_FW ? run_fw(flows, seconds) : 0;
		ratio[r] = mn[r] > 0 ? fw[r] / mn[r] : 0;
	}
	if (loops & LOOP_IO)
		spread(io, rounds, a, sizeof(a));
	if (loops & LOOP_MIN)
		spread(mn, rounds, b, sizeof(b));
	if (loops & LOOP_FW)
		spread(fw, rounds, c, sizeof(c));
	if ((loops & (LOOP_MIN | LOOP_FW)) == (LOOP_MIN | LOOP_FW)) {
		mid_mn = rounds % 2 ? mn[rounds / 2] : (mn[rounds / 2 - 1] + mn[rounds / 2]) / 2;
		mid_fw = rounds % 2 ? fw[rounds / 2] : (fw[rounds / 2 - 1] + fw[rounds / 2]) / 2;
		qsort(ratio, rounds, sizeof(*ratio), cmp_double);
		snprintf(d, sizeof(d), "%.2f (%.2f-%.2f)", mid_mn > 0 ? mid_fw / mid_mn : 0,
			 ratio[0], ratio[rounds - 1]);
	}
	if (loops & LOOP_NEW)
		snprintf(e, sizeof(e), "%.2f", new_conns);
	printf("%-8u %-10s %-22s %-22s %-22s %-18s %8s\n", flows, how, a, b, c, d, e);
	fflush(stdout);
}

/*
 * Every change @p k holds written and durable, as holdfast's stop makes it; said if not.
 * Not a tick until the queue is empty and a sync: the sync covers what was posted, and
 * records the ring or the target's full queue (-EAGAIN) held back were not (a restore of
 * 500 k over ofi+tcp then found 495,030, the rest still in the writer's ring).
 */
static void sync_all(struct fw_checkpointer *k)
{
	int rc = fw_checkpointer_sync(k, fw_worker_now(&worker), 30ull * 1000000000ull);

	if (rc)
		fprintf(stderr, "fw_bench: %" PRIu64 " changes not durable: %s\n",
			fw_checkpointer_lag(k), strerror(-rc));
}

/*
 * New connections: a SYN of a flow never seen, through the whole path. With a checkpointer
 * attached, every new connection is a slice to write: the worker ticks it every burst, and
 * the clock stops only once the last slice is durable.
 */
static double run_new(uint32_t flows)
{
	uint8_t f[FRAME_LEN];
	const uint64_t t0 = rte_get_tsc_cycles();
	uint64_t now = fw_worker_now(&worker);
	uint64_t before = worker.cnt.conn_new;

	for (uint32_t i = 0; i < flows; i++) {
		write_flow(f, i, RTE_TCP_SYN_FLAG, 1000, 0);
		fw_worker_handle(&worker, f, FRAME_LEN, FW_ZONE_INSIDE, now);
		if (worker.ckpt && (i & (FW_BURST - 1)) == FW_BURST - 1)
			fw_checkpointer_tick(worker.ckpt, now);
	}
	if (worker.ckpt)
		sync_all(worker.ckpt);
	if (worker.cnt.conn_new - before != flows)
		fprintf(stderr, "fw_bench: only %" PRIu64 " of %u SYNs opened a connection\n",
			worker.cnt.conn_new - before, flows);
	return (double)flows / ((double)(rte_get_tsc_cycles() - t0) / (double)rte_get_tsc_hz()) /
	       1e6;
}

/*
 * Delete region @p name at @p target through a connection of its own, once every
 * checkpointer that had it open is gone: a client refuses to delete a region it holds open
 * (-EBUSY), so a delete through the writer's own client, before it closed, deleted nothing,
 * and every run left its regions in the target.
 */
static void region_delete(const char *target, const char *name)
{
	struct ckpt_client_opts o = {.tenant = "holdfast",
				     .secret = secret,
				     .secret_len = secret_len,
				     .allow_shm = true};
	struct ckpt_client *cl = ckpt_connect(target, &o);
	int rc = cl ? ckpt_region_delete(cl, name) : -errno;

	if (rc)
		fprintf(stderr, "fw_bench: %s: deleting %s: %s\n", target, name, strerror(-rc));
	ckpt_disconnect(&cl);
}

/* Opening rate with every new connection checkpointed into @p target. */
static double run_new_ckpt(const char *target, uint32_t opens)
{
	static unsigned int seq;
	struct fw_checkpointer *k = NULL;
	struct fw_ckpt_stats st;
	char region[64];
	double rate;
	int rc;

	if (fw_setup(opens * 2 + 1024) != 0)
		return 0;
	snprintf(region, sizeof(region), "bench-%d-%u", (int)getpid(), seq++);
	struct fw_ckpt_layout cc = {
		.target = target,
		.region = region,
		.store_size = (uint64_t)opens * 2 * 2 * 128 + (256u << 20),
		.pairs = (uint64_t)opens * 2,
		.slot_size = 128,
		.tenant = "holdfast",
		.secret_len = secret_len,
		.allow_shm = true,
	};
	char state_name[PMU_NAME_MAX], log_name[PMU_NAME_MAX];

	memcpy(cc.secret, secret, secret_len);
	fw_ckpt_layout_state(&cc, 0, state_name, NULL);
	fw_ckpt_layout_log(&cc, 0, log_name, NULL);

	k = fw_checkpointer_create(&cc, 0, worker.table, opens, 0, 0);
	rc = k == NULL ? -errno : fw_checkpointer_state(k) == NULL ? -ECONNREFUSED : 0;
	if (rc) {
		fprintf(stderr, "fw_bench: checkpoint target %s: %s\n", target, strerror(-rc));
		fw_checkpointer_destroy(&k);
		fw_teardown();
		return 0;
	}
	fw_worker_set_checkpointer(&worker, k);
	rate = run_new(opens);
	fw_checkpointer_stats(k, &st);
	if (st.slices[FW_MOD_TCP] != opens || st.failures)
		fprintf(stderr,
			"fw_bench: %" PRIu64 " slices written for %u connections, %" PRIu64
			" failures\n",
			st.slices[FW_MOD_TCP], opens, st.failures);
	fw_worker_set_checkpointer(&worker, NULL);
	fw_checkpointer_destroy(&k);
	region_delete(target, state_name); /* closed first: an open region is not deleted */
	fw_teardown();
	return rate;
}

/*
 * perf record --control fifo:CTL,ACK -D -1 with FW_BENCH_PERF_CTL=CTL FW_BENCH_PERF_ACK=ACK
 * in the environment records the restores and the churn runs' timed windows only (@p cmd
 * "enable" or "disable"): neither the set-up nor the sync of what establish() queued.
 */
static void perf_ctl(const char *cmd)
{
	static FILE *ctl, *ack;
	char line[16];

	if (ctl == NULL) {
		const char *c = getenv("FW_BENCH_PERF_CTL"), *a = getenv("FW_BENCH_PERF_ACK");

		if (c == NULL || a == NULL || (ctl = fopen(c, "w")) == NULL)
			return;
		ack = fopen(a, "r");
	}
	fprintf(ctl, "%s\n", cmd);
	fflush(ctl);
	if (ack != NULL && fgets(line, sizeof(line), ack) == NULL)
		clearerr(ack);
}

/* Where a churn run's checkpoint I/O runs (-I). */
enum io_way {
	IO_INLINE,
	IO_THREAD,
	IO_LCORE,
	IO_WAYS
};

static const char *const io_way_name[IO_WAYS] = {"inline", "thread", "lcore"};

/*
 * -c spin: the second lcore polls, as an I/O lcore with nothing to write does (below).
 * -c stream: it copies STREAM_BYTES back and forth instead, through memory of its own of
 * twice that: what another core's memory traffic alone costs the worker (caches, memory).
 */
#define STREAM_BYTES (8u << 20)
static bool spin_stop;

static int spin_main(void *arg)
{
	uint8_t *buf = arg;

	while (!__atomic_load_n(&spin_stop, __ATOMIC_ACQUIRE)) {
		if (buf == NULL) {
			rte_pause();
			continue;
		}
		memcpy(buf, buf + STREAM_BYTES, STREAM_BYTES);
		memcpy(buf + STREAM_BYTES, buf, STREAM_BYTES);
	}
	return 0;
}

/*
 * Churn: @p flows established flows forwarded as fast as the worker goes while new
 * connections open at @p rate per second (SYNs through the same worker, between bursts),
 * each checkpointed into @p target ("none": not at all), its I/O run @p way. Run side by
 * side for each target, the forwarding rates say what checkpointing costs at that churn.
 * "spin": not checkpointed either, but the second lcore busy-polls (rte_pause) through the
 * timed window as an I/O lcore does: what a busy neighbour core alone costs the worker
 * (a shared physical core or cache, the host's scheduling of the VM), apart from anything
 * checkpointing does.
 */
static double run_churn(const char *target, enum io_way way, uint32_t flows, double rate,
			double seconds)
{
	static unsigned int seq;
	const uint32_t opens_max = (uint32_t)(rate * seconds * 1.5) + 1024;
	const uint64_t hz = rte_get_tsc_hz();
	struct fw_checkpointer *k = NULL;
	struct fw_ckpt_io *io = NULL;
	struct fw_ckpt_stats st;
	char region[64];
	uint64_t tx0, t0, end, opened = 0;
	uint8_t f[FRAME_LEN];
	uint32_t next = 0;
	double mpps, cpu0, wall, cpu_share;
	long preempted;
	uint64_t irqs;
	const bool stream = strcmp(target, "stream") == 0;
	const bool spin = stream || strcmp(target, "spin") == 0;
	uint8_t *buf = NULL;
	const bool ckpt = !spin && strcmp(target, "none") != 0;
	const unsigned int second = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);

	if (spin && second >= RTE_MAX_LCORE) {
		fprintf(stderr, "fw_bench: -c spin needs two lcores: -l 0,1\n");
		return 0;
	}
	if (fw_setup(flows + opens_max + 1024) != 0)
		return 0;
	snprintf(region, sizeof(region), "churn-%d-%u", (int)getpid(), seq++);
	struct fw_ckpt_layout cc = {
		.target = target,
		.region = region,
		.store_size = (uint64_t)(flows + opens_max) * 2 * 2 * 128 + (256u << 20),
		.pairs = (uint64_t)(flows + opens_max) * 2,
		.slot_size = 128,
		.tenant = "holdfast",
		.secret_len = secret_len,
		.allow_shm = true,
	};
	char state_name[PMU_NAME_MAX], log_name[PMU_NAME_MAX];

	memcpy(cc.secret, secret, secret_len);
	fw_ckpt_layout_state(&cc, 0, state_name, NULL);
	fw_ckpt_layout_log(&cc, 0, log_name, NULL);
	if (ckpt) {
		k = fw_checkpointer_create(&cc, 0, worker.table, flows + opens_max, 0, 0);
		if (k == NULL || fw_checkpointer_state(k) == NULL) {
			fprintf(stderr, "fw_bench: checkpoint target %s unusable\n", target);
			fw_checkpointer_destroy(&k);
			fw_teardown();
			return 0;
		}
		fw_worker_set_checkpointer(&worker, k);
	}
	establish(flows);
	if (ckpt)
		sync_all(k);
	if (stream && (buf = malloc(2 * STREAM_BYTES)) != NULL)
		memset(buf, 1, 2 * STREAM_BYTES); /* its pages faulted in now, not in the window */
	if (spin) {
		__atomic_store_n(&spin_stop, false, __ATOMIC_RELEASE);
		if ((stream && buf == NULL) || rte_eal_remote_launch(spin_main, buf, second) != 0) {
			fprintf(stderr, "fw_bench: -c %s: lcore %u busy or no memory\n", target,
				second);
			free(buf);
			fw_teardown();
			return 0;
		}
	}
	if (ckpt && way != IO_INLINE) {
		/* The second lcore of -l (thread: wherever EAL puts control threads). */
		io = fw_ckpt_io_start(&k, 1, way == IO_THREAD ? FW_CKPT_IO_THREAD : (int)second);
		if (io == NULL) {
			fprintf(stderr, "fw_bench: checkpoint I/O %s: %s%s\n", io_way_name[way],
				strerror(errno),
				way == IO_LCORE ? " (-I lcore needs two lcores: -l 0,1)" : "");
			fw_worker_set_checkpointer(&worker, NULL);
			fw_checkpointer_destroy(&k);
			fw_teardown();
			return 0;
		}
	}
	groups_init(flows);
	prime(flows, &next);
	tx0 = worker.cnt.tx[1];
	preempted = -thread_preemptions();
	irqs = cpu_interrupts();
	perf_ctl("enable");
	cpu0 = thread_cpu_ms();
	t0 = rte_get_tsc_cycles();
	end = t0 + (uint64_t)(seconds * (double)hz);
	for (uint64_t now = t0; now < end; now = rte_get_tsc_cycles()) {
		const uint64_t due = (uint64_t)((double)(now - t0) / (double)hz * rate);

		for (; opened < due && opened < opens_max; opened++) {
			write_flow(f, flows + (uint32_t)opened, RTE_TCP_SYN_FLAG, 1000, 0);
			fw_worker_handle(&worker, f, FRAME_LEN, FW_ZONE_INSIDE,
					 fw_worker_now(&worker));
		}
		for (int it = 0; it < 16; it++) {
			const uint64_t t = fw_worker_now(&worker);

			/* what fw_worker_main does each pass */
			fw_worker_poll(&worker, t);
			rte_rcu_qsbr_quiescent(sh.qsbr, 0);
			if (ckpt)
				fw_checkpointer_tick(k, t);
			recycle(flows, &next);
		}
	}
	wall = (double)(rte_get_tsc_cycles() - t0) / (double)hz;
	mpps = mpps_since(worker.cnt.tx[1] - tx0, t0, cpu0);
	cpu_share = (thread_cpu_ms() - cpu0) / 1e3 / wall;
	preempted += thread_preemptions();
	irqs = cpu_interrupts() - irqs;
	perf_ctl("disable");
	drain();
	if (ckpt)
		fw_checkpointer_stats(k, &st); /* lag as the clock stopped */
	fw_ckpt_io_stop(&io);
	if (spin) {
		__atomic_store_n(&spin_stop, true, __ATOMIC_RELEASE);
		rte_eal_wait_lcore(second);
		free(buf);
	}
	printf("%-34.34s %-7s %10.2f %12.0f %12" PRIu64 " %10" PRIu64 " %6.1f %8ld %8.0f\n", target,
	       ckpt	? io_way_name[way]
	       : stream ? "stream"
	       : spin	? "spin"
			: "-",
	       mpps, (double)opened / seconds, ckpt ? st.slices[FW_MOD_TCP] : 0, ckpt ? st.lag : 0,
	       cpu_share * 100, preempted, (double)irqs / wall);
	fflush(stdout);
	if (ckpt) {
		fw_worker_set_checkpointer(&worker, NULL);
		fw_checkpointer_destroy(&k);
		region_delete(target, state_name); /* closed first: -R runs the target again */
	}
	fw_teardown();
	return mpps;
}

/* Min, median and max of @p v[0 .. @p n), sorted in place. */
static void min_med_max(double *v, unsigned int n, double out[3])
{
	qsort(v, n, sizeof(*v), cmp_double);
	out[0] = v[0];
	out[1] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	out[2] = v[n - 1];
}

/* CPU time of the whole process: what a noisy machine's other tenants do not add. */
static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * Worker 0's checkpointer on @p cc (the bench's secret filled in), attached to the worker.
 * @return it, or NULL, said, with the worker torn down.
 */
static struct fw_checkpointer *bench_checkpointer(struct fw_ckpt_layout *cc, uint32_t flows)
{
	struct fw_checkpointer *k;

	memcpy(cc->secret, secret, secret_len);
	k = fw_checkpointer_create(cc, 0, worker.table, flows, 0, 0);
	if (k == NULL || fw_checkpointer_state(k) == NULL) {
		fprintf(stderr, "fw_bench: checkpoint target %s unusable\n", cc->target);
		fw_checkpointer_destroy(&k);
		fw_teardown();
		return NULL;
	}
	fw_worker_set_checkpointer(&worker, k);
	return k;
}

/* Regions a restore is measured over at most: workers of the restarted instance. */
#define RESTORE_REGIONS_MAX 4

/*
 * Restore time: @p flows connections established by real handshakes and checkpointed into
 * @p target, spread evenly over @p nregions workers' state regions, then read back @p rounds
 * times as a restart does (fw_restore_workers: each round new workers with fresh tables
 * and checkpointers that open the regions anew, so a pmem: store is mapped afresh and its
 * page faults are in the time; one region per thread). Printed: wall ms min / median /
 * max, and the median CPU ms of the process.
 */
static void run_restore(const char *target, uint32_t flows, unsigned int nregions,
			unsigned int rounds)
{
	static unsigned int seq;
	static double ms[MAX_ROUNDS], cpu[MAX_ROUNDS];
	const uint32_t per = flows / nregions;
	struct fw_checkpointer *k[RESTORE_REGIONS_MAX] = {NULL};
	struct fw_restore_result res[RESTORE_REGIONS_MAX];
	struct fw_ckpt_stats st;
	struct fw_worker rw[RESTORE_REGIONS_MAX], *ws[RESTORE_REGIONS_MAX];
	rte_cpuset_t cpus[RESTORE_REGIONS_MAX];
	const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t conns = 0;
	char region[64], label[48];
	unsigned int made = 0;
	double m[3], c[3], c0;
	uint64_t t0;

	if (fw_setup(flows + 1024) != 0)
		return;
	snprintf(region, sizeof(region), "restore-%d-%u", (int)getpid(), seq++);
	struct fw_ckpt_layout cc = {
		.target = target,
		.region = region,
		.nworkers = nregions,
		/*
		 * The first run creates the store, the later ones reuse it: room for 1 M
		 * twice over, as the extents of deleted regions do not always merge.
		 */
		.store_size = (uint64_t)(flows > 1000000 ? flows : 1000000) * 2 * 2 * 128 * 2 +
			      (256u << 20),
		.pairs = per,
		.slot_size = 128,
		.tenant = "holdfast",
		.secret_len = secret_len,
		.allow_shm = true,
	};

	memcpy(cc.secret, secret, secret_len);
	/* The instance before: worker 0 establishes every flow, each slice into its region. */
	for (unsigned int i = 0; i < nregions; i++) {
		k[i] = fw_checkpointer_create(&cc, i, worker.table, per, 0, 0);
		if (k[i] == NULL || fw_checkpointer_state(k[i]) == NULL) {
			fprintf(stderr, "fw_bench: checkpoint target %s unusable\n", target);
			goto out;
		}
		fw_worker_set_checkpointer(&worker, k[i]);
		establish_range(i * per, (i + 1) * per);
		sync_all(k[i]);
		fw_checkpointer_stats(k[i], &st);
		if (st.slices[FW_MOD_TCP] != per)
			fprintf(stderr,
				"fw_bench: region %u: %" PRIu64 " of %u connections written\n", i,
				st.slices[FW_MOD_TCP], per);
		fw_worker_set_checkpointer(&worker, NULL);
	}
	/* The restore's threads may run on every CPU: EAL pinned this one to its lcore. */
	for (unsigned int i = 0; i < nregions; i++) {
		CPU_ZERO(&cpus[i]);
		for (long j = 0; j < ncpu && j < CPU_SETSIZE; j++)
			CPU_SET(j, &cpus[i]);
	}
	conf.max_conns = per + 1024;
	for (unsigned int r = 0; r < rounds; r++) {
		conns = 0;
		for (made = 0; made < nregions; made++) {
			struct fw_checkpointer *rk;

			if (fw_worker_init(&rw[made], &sh, 1 + made, 0) != 0)
				break;
			ws[made] = &rw[made];
			rk = fw_checkpointer_create(&cc, made, rw[made].table, per, 0, 0);
			if (rk == NULL) {
				fw_worker_release(&rw[made]);
				break;
			}
			fw_worker_set_checkpointer(&rw[made], rk);
		}
		if (made < nregions) {
			fprintf(stderr, "fw_bench: no room for %u more tables of %u\n", nregions,
				per);
			rounds = r;
			break;
		}
		perf_ctl("enable");
		c0 = cpu_ms();
		t0 = rte_get_tsc_cycles();
		fw_restore_workers(ws, nregions, cpus, &cpus[0], NULL, res, NULL);
		ms[r] = (double)(rte_get_tsc_cycles() - t0) * 1e3 / (double)rte_get_tsc_hz();
		cpu[r] = cpu_ms() - c0;
		perf_ctl("disable");
		for (unsigned int i = 0; i < nregions; i++) {
			struct fw_checkpointer *rk = rw[i].ckpt;

			if (res[i].rc < 0)
				fprintf(stderr, "fw_bench: restore from %s: %s\n", target,
					strerror(-res[i].rc));
			if (res[i].st.conns != per)
				fprintf(stderr,
					"fw_bench: round %u region %u: %" PRIu64 " of %u restored; "
					"scan: %" PRIu64 " records, %" PRIu64 " invalid, %" PRIu64
					" superseded, %" PRIu64 " misplaced, %" PRIu64 " empty; "
					"restore: %" PRIu64 " no room, %" PRIu64
					" conflicts, %" PRIu64 " bad, %" PRIu64
					" missing a slice\n",
					r, i, res[i].st.conns, per, res[i].ss.records,
					res[i].ss.invalid, res[i].ss.superseded,
					res[i].ss.misplaced, res[i].ss.empty, res[i].st.no_room,
					res[i].st.conflicts, res[i].st.bad_slice,
					res[i].st.dropped_missing);
			conns += res[i].st.conns;
			fw_worker_set_checkpointer(&rw[i], NULL);
			fw_checkpointer_destroy(&rk);
			fw_worker_release(&rw[i]);
		}
	}
	if (rounds > 0) {
		min_med_max(ms, rounds, m);
		min_med_max(cpu, rounds, c);
		snprintf(label, sizeof(label), "%u x %u", nregions, per);
		printf("%-16s %-34s %8.1f %8.1f %8.1f %8.1f %10" PRIu64 "\n", label, target, m[0],
		       m[1], m[2], c[1], conns);
		fflush(stdout);
	}
out:
	for (unsigned int i = 0; i < nregions; i++) {
		const bool opened = k[i] != NULL && fw_checkpointer_state(k[i]) != NULL;
		char name[PMU_NAME_MAX];

		fw_checkpointer_destroy(&k[i]);
		fw_ckpt_layout_state(&cc, i, name, NULL);
		if (opened)
			region_delete(target, name); /* closed first: see region_delete() */
	}
	fw_teardown();
}

struct follow_arg {
	struct fw_shadow *sh;
	struct fw_restore_stats st;
	uint64_t n;
};

static int follow_one(const struct ckpt_rec *rec, void *arg)
{
	struct follow_arg *fa = arg;

	fa->n++;
	if (!fw_ckpt_is_gap(rec))
		fw_shadow_apply(fa->sh, rec, &fa->st);
	return 0;
}

static double ms_since(uint64_t t0)
{
	return (double)(rte_get_tsc_cycles() - t0) * 1e3 / (double)rte_get_tsc_hz();
}

/*
 * Standby takeover: a primary (this worker, checkpointing into @p target with a log)
 * establishes @p flows connections in chunks while a standby follows its log into a shadow
 * table after each chunk, as its poll would. The last 1 % is left unread, as when the
 * primary dies between two polls. Takeover = read the rest of the log, finish every
 * connection (timers, expectations), continue the primary's rings. Lease expiry and port
 * start are not in it: the first is configured (lease-ms), the second the NIC's.
 */
static void run_takeover(const char *target, uint32_t flows)
{
	static unsigned int seq;
	const uint32_t chunk = flows / 100;
	struct ckpt_client_opts o = {.tenant = "holdfast",
				     .secret = secret,
				     .secret_len = secret_len,
				     .allow_shm = true};
	struct follow_arg fa = {0};
	struct fw_checkpointer *k = NULL;
	struct ckpt_client *cl;
	struct ckpt_region *state = NULL, *log = NULL;
	struct fw_table *t;
	struct fw_slots *slots;
	char region[64];
	double ms_log, ms_finish, ms_refresh;
	uint64_t t0;
	uint32_t kept;

	if (fw_setup(flows + 1024) != 0)
		return;
	snprintf(region, sizeof(region), "takeover-%d-%u", (int)getpid(), seq++);
	struct fw_ckpt_layout cc = {
		.target = target,
		.region = region,
		.store_size = (uint64_t)flows * 2 * 2 * 128 + (512u << 20),
		.pairs = (uint64_t)flows,
		.slot_size = 128,
		.log_size = 64u << 20,
		.tenant = "holdfast",
		.secret_len = secret_len,
		.allow_shm = true,
	};
	char state_name[PMU_NAME_MAX], log_name[PMU_NAME_MAX];

	fw_ckpt_layout_state(&cc, 0, state_name, NULL);
	fw_ckpt_layout_log(&cc, 0, log_name, NULL);
	k = bench_checkpointer(&cc, flows);
	if (k == NULL)
		return;
	cl = ckpt_connect(target, &o);
	t = fw_table_create("standby", flows + 1024, 1024, 0);
	slots = fw_slots_create(0, flows);
	if (cl == NULL || t == NULL || slots == NULL ||
	    ckpt_region_open(cl, state_name, &state) != 0 ||
	    ckpt_region_open(cl, log_name, &log) != 0) {
		fprintf(stderr, "fw_bench: standby cannot open %s at %s\n", state_name, target);
		goto out;
	}
	fa.sh = fw_shadow_create(t, slots);
	for (uint32_t i = 0; i < flows; i += chunk) {
		establish_range(i, i + chunk);
		while (fw_checkpointer_lag(k) != 0 ||
		       ckpt_posted(fw_checkpointer_log(k)) != ckpt_durable(fw_checkpointer_log(k)))
			fw_checkpointer_tick(k, fw_worker_now(&worker));
		if (i + chunk < flows) /* the standby's poll; the last chunk stays unread */
			ckpt_log_read(log, follow_one, &fa, false, NULL);
	}
	t0 = rte_get_tsc_cycles();
	ckpt_log_read(log, follow_one, &fa, false, NULL);
	ms_log = ms_since(t0);
	t0 = rte_get_tsc_cycles();
	kept = fw_restore_finish(t, slots, &worker.ctx, fw_worker_now(&worker), &fa.st);
	ms_finish = ms_since(t0);
	t0 = rte_get_tsc_cycles();
	ckpt_region_refresh(state);
	ckpt_region_refresh(log);
	ms_refresh = ms_since(t0);
	printf("%-10u %-34s %9.1f %9.1f %9.1f %9.1f %9u %9" PRIu64 "\n", flows, target,
	       ms_log + ms_finish + ms_refresh, ms_log, ms_finish, ms_refresh, kept, fa.n);
	fflush(stdout);
out:
	fw_worker_set_checkpointer(&worker, NULL);
	fw_shadow_free(&fa.sh);
	ckpt_region_close(&log);
	ckpt_region_close(&state);
	ckpt_disconnect(&cl);
	fw_slots_free(&slots);
	fw_table_free(&t);
	fw_checkpointer_destroy(&k);
	region_delete(target, state_name); /* closed first: see region_delete() */
	region_delete(target, log_name);
	fw_teardown();
}

#define MAX_TARGETS 12

/* A churn target that checkpoints nothing and runs no I/O (spin, stream): run once a
 * round, under the first way asked, however many are. */
static bool churn_no_io(const char *target)
{
	return strcmp(target, "spin") == 0 || strcmp(target, "stream") == 0;
}

/*
 * The churn comparison: @p rounds rounds, each running checkpointing off and then every
 * target ("none" among them is skipped: off runs first in every round) with every way of
 * @p ways, so that each side is measured as often and as spread over the run as the other.
 * Then Mpps min / median / max per side and the ratio of the medians to off's, with the
 * spread of the per-round ratios.
 */
static void churn_table(const char *const *targets, unsigned int n, const bool *ways_asked,
			unsigned int rounds, double rate, double seconds)
{
	static double off[MAX_ROUNDS], mpps[MAX_TARGETS][IO_WAYS][MAX_ROUNDS];
	static double ratio[MAX_ROUNDS];
	bool ways[IO_WAYS];
	double o[3], m[3], q[3];
	int first = 0;

	memcpy(ways, ways_asked, sizeof(ways));
	if (!ways[IO_INLINE] && !ways[IO_THREAD] && !ways[IO_LCORE])
		ways[rte_lcore_count() >= 2 ? IO_LCORE : IO_THREAD] = true;
	while (!ways[first])
		first++;
	printf("\n100k established flows forwarded while %.0f new connections/s open, %u "
	       "round(s)%s\n%-34s %-7s %10s %12s %12s %10s %6s %8s %8s\n",
	       rate, rounds, per_cpu_second ? "; Mpps per second of the worker's CPU time" : "",
	       "checkpoint target", "I/O", "Mpps", "opens/s", "slices", "lag at end", "cpu %",
	       "preempt", "irq/s");
	for (unsigned int r = 0; r < rounds; r++) {
		off[r] = run_churn("none", IO_INLINE, 100000, rate, seconds);
		for (unsigned int t = 0; t < n; t++) {
			if (strcmp(targets[t], "none") == 0)
				continue;
			for (int w = 0; w < IO_WAYS; w++)
				if (ways[w] && (w == first || !churn_no_io(targets[t])))
					mpps[t][w][r] = run_churn(targets[t], (enum io_way)w,
								  100000, rate, seconds);
		}
	}
	min_med_max(memcpy(ratio, off, rounds * sizeof(*off)), rounds, o);
	printf("\n%-34s %-7s %26s %8s %19s\n", "forwarding, Mpps", "I/O", "min / median / max",
	       "ratio", "per round min / max");
	printf("%-34s %-7s %8.2f %8.2f %8.2f\n", "off", "-", o[0], o[1], o[2]);
	for (unsigned int t = 0; t < n; t++) {
		if (strcmp(targets[t], "none") == 0)
			continue;
		for (int w = 0; w < IO_WAYS; w++) {
			if (!ways[w] || (w != first && churn_no_io(targets[t])))
				continue;
			for (unsigned int r = 0; r < rounds; r++)
				ratio[r] = off[r] > 0 ? mpps[t][w][r] / off[r] : 0;
			min_med_max(mpps[t][w], rounds, m);
			min_med_max(ratio, rounds, q);
			printf("%-34.34s %-7s %8.2f %8.2f %8.2f %8.3f %9.3f %9.3f\n", targets[t],
			       churn_no_io(targets[t]) ? "-" : io_way_name[w], m[0], m[1], m[2],
			       o[1] > 0 ? m[1] / o[1] : 0, q[0], q[2]);
		}
	}
	fflush(stdout);
}

/*
 * Several workers (issue 16, -W FLOWS): FLOWS established flows in the random order, each
 * in the table of the worker that owns it (fw_conn_owner of two).
 *
 * Forwarding with one worker (the main lcore, everything on queue 0) and with two (the
 * first two lcores of -l, a queue each) side by side, alternated. Each lcore feeds its own
 * worker's rx queue (it recycles what that worker sent, as run_fw does): the bench has no
 * core of its own for a feeder, so with two workers on a 2-core machine the feed shares
 * the workers' cores, and whatever else runs there does too. Two feeds for two workers:
 * each queue gets only the flows its worker owns (a NIC whose spread matched holdfast's
 * owner: no hand-off), or every other flow of the order whoever owns it (af_packet's
 * fanout, a NIC's own hash: about half the frames cross to the other worker).
 *
 * The cost of a hand-off, on one thread: both workers driven in turn (worker 0's pass,
 * then worker 1's, as fw_worker_poll runs them), worker 0's queue fed flows it owns
 * (decided there) or flows worker 1 owns (each handed to worker 1's inbox, which worker
 * 1's pass drains and decides). The same passes run either way; the difference per frame
 * is what a hand-off adds: the enqueue and dequeue, the parse again at the owner, a second
 * burst. On one core a handed frame stays in that core's cache; across cores the owner
 * also fetches its lines from the other core's, which this does not count.
 */

/* The owner of flow @p i among @p n workers, as every worker computes it. */
static unsigned int flow_owner(uint32_t i, unsigned int n)
{
	uint8_t f[FRAME_LEN];
	const struct rte_ipv4_hdr *ip =
		(const struct rte_ipv4_hdr *)(f + sizeof(struct rte_ether_hdr));
	const struct rte_tcp_hdr *tcp = (const struct rte_tcp_hdr *)(ip + 1);
	struct fw_key k;

	write_flow(f, i, RTE_TCP_ACK_FLAG, 0, 0);
	fw_key_make(&k, 4, IPPROTO_TCP, &ip->src_addr, &ip->dst_addr, tcp->src_port, tcp->dst_port);
	return fw_conn_owner(&k, n);
}

/* Establish flows [0, @p flows), each at its owner among the workers made. */
static void establish_owned(uint32_t flows)
{
	const uint64_t now = fw_worker_now(&worker);

	for (uint32_t i = 0; i < flows; i++)
		handshake(wk[flow_owner(i, nworkers)], i, now);
}

/* Sums over the workers made: frames sent by port 1, handed off, dropped by reason. */
struct sums {
	uint64_t tx, handed, drop[FW_DROP_REASON_MAX];
};

static void worker_sums(struct sums *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned int i = 0; i < nworkers; i++) {
		s->tx += wk[i]->cnt.tx[1];
		s->handed += wk[i]->cnt.handoff_out;
		for (int d = 0; d < FW_DROP_REASON_MAX; d++)
			s->drop[d] += wk[i]->cnt.drop[d];
	}
}

/* Say what was dropped between @p a and @p b: nothing should be. */
static void say_drops(const struct sums *a, const struct sums *b, const char *what)
{
	for (int d = 0; d < FW_DROP_REASON_MAX; d++)
		if (b->drop[d] != a->drop[d])
			fprintf(stderr, "fw_bench: -W, %s: %" PRIu64 " frames dropped (%s)\n", what,
				b->drop[d] - a->drop[d],
				fw_drop_reason_name((enum fw_drop_reason)d));
}

struct lane {
	struct fw_worker *w; /* polls its queue w->index of every port */
	struct feed fd;	     /* what its rx queue of port 0 is fed */
	uint64_t end;	     /* TSC */
	uint64_t run, idle;  /* TSC its loop ran, and spent in passes that found no frame */
	double cpu_ms;	     /* CPU time its thread was given */
};

/* A worker's loop as run_fw's: a pass, a quiescent state, its own rx queue refilled. */
static int lane_main(void *arg)
{
	struct lane *l = arg;
	const unsigned int q = l->w->index;
	const double c0 = thread_cpu_ms();
	const uint64_t t0 = rte_get_tsc_cycles();
	uint64_t t = t0, prev = t0;
	bool idle = false;

	while (t < l->end) {
		for (int it = 0; it < 64; it++) {
			t = rte_get_tsc_cycles();
			if (idle)
				l->idle += t - prev;
			prev = t;
			idle = fw_worker_poll(l->w, fw_worker_now(l->w)) == 0;
			rte_rcu_qsbr_quiescent(sh.qsbr, q);
			recycle_into(txq[1][q], rxq[0][q], &l->fd);
		}
	}
	l->run = t - t0;
	l->cpu_ms = thread_cpu_ms() - c0;
	return 0;
}

/* One side of the comparison, per round. */
struct side {
	double v[MAX_ROUNDS];	  /* Mpps, or ns per frame */
	double cores[MAX_ROUNDS]; /* CPU time the lanes were given / wall time */
	double idle[MAX_ROUNDS];  /* share of the lanes' time in passes that found no frame */
	double crossed;		  /* share of the frames forwarded that were handed off */
};

/*
 * Every worker made forwarding on its own lcore (worker 0 on this one) for @p seconds,
 * worker i's queue fed @p feeds[i]: round @p r of @p s. @return 0, or -1 if it could not
 * run.
 */
static int run_lanes(const struct feed *feeds, uint32_t flows, double seconds, struct side *s,
		     unsigned int r)
{
	static struct lane lanes[QUEUES];
	const uint64_t hz = rte_get_tsc_hz();
	/*
	 * With two, a burst fewer in all than an inbox holds: when one lane's thread is
	 * descheduled, every frame can end up waiting in its inbox, and one over would be
	 * dropped as handoff_full and circulate no more.
	 */
	const unsigned int frames = nworkers > 1 ? FW_INBOX_SIZE - FW_BURST : CIRCULATE;
	unsigned int lc = rte_get_main_lcore();
	uint64_t t0, end, run = 0, idle = 0;
	double cpu = 0, wall_s;
	struct sums a, b;
	int rc = 0;

	groups_init(flows);
	for (unsigned int i = 0; i < nworkers; i++) {
		lanes[i] = (struct lane){.w = wk[i], .fd = feeds[i]};
		prime_into(rxq[0][i], frames / nworkers, &lanes[i].fd);
	}
	worker_sums(&a);
	t0 = rte_get_tsc_cycles();
	end = t0 + (uint64_t)(seconds * (double)hz);
	for (unsigned int i = 0; i < nworkers; i++)
		lanes[i].end = end;
	for (unsigned int i = 1; i < nworkers && rc == 0; i++) {
		lc = rte_get_next_lcore(lc, 1, 0);
		rc = lc < RTE_MAX_LCORE ? rte_eal_remote_launch(lane_main, &lanes[i], lc) : -ENODEV;
		if (rc != 0)
			lanes[0].end = 0; /* what started stops at its end; this one at once */
	}
	lane_main(&lanes[0]);
	rte_eal_mp_wait_lcore();
	end = rte_get_tsc_cycles();
	worker_sums(&b);
	drain();
	if (rc != 0) {
		fprintf(stderr, "fw_bench: -W: no lcore for worker 2 (-l 0,1)\n");
		return -1;
	}
	say_drops(&a, &b, nworkers > 1 ? "two lcores" : "one lcore");
	for (unsigned int i = 0; i < nworkers; i++) {
		run += lanes[i].run;
		idle += lanes[i].idle;
		cpu += lanes[i].cpu_ms;
	}
	wall_s = (double)(end - t0) / (double)hz;
	s->v[r] = (double)(b.tx - a.tx) / wall_s / 1e6;
	s->cores[r] = cpu / 1e3 / wall_s;
	s->idle[r] = run ? (double)idle / (double)run : 0;
	s->crossed = b.tx > a.tx ? (double)(b.handed - a.handed) / (double)(b.tx - a.tx) : 0;
	return 0;
}

/*
 * Both workers driven from this thread in turn for @p seconds, worker 0's queue fed @p fd:
 * round @p r of @p s, in ns of this thread's CPU time per frame forwarded (the time it was
 * descheduled, which the machine's other tenants decide, left out).
 */
static void run_one_thread(struct feed fd, uint32_t flows, double seconds, struct side *s,
			   unsigned int r)
{
	const uint64_t hz = rte_get_tsc_hz();
	const double c0 = thread_cpu_ms();
	uint64_t t0, end;
	struct sums a, b;

	groups_init(flows);
	prime_into(rxq[0][0], CIRCULATE, &fd);
	worker_sums(&a);
	t0 = rte_get_tsc_cycles();
	end = t0 + (uint64_t)(seconds * (double)hz);
	while (rte_get_tsc_cycles() < end) {
		for (int it = 0; it < 64; it++) {
			for (unsigned int i = 0; i < nworkers; i++) {
				fw_worker_poll(wk[i], fw_worker_now(wk[i]));
				rte_rcu_qsbr_quiescent(sh.qsbr, i);
			}
			/* whoever sent them: the owner's queue of port 1 */
			for (unsigned int q = 0; q < nworkers; q++)
				recycle_into(txq[1][q], rxq[0][0], &fd);
		}
	}
	end = rte_get_tsc_cycles();
	worker_sums(&b);
	drain();
	say_drops(&a, &b, "one thread");
	s->cores[r] = (thread_cpu_ms() - c0) / 1e3 / ((double)(end - t0) / (double)hz);
	s->v[r] = b.tx > a.tx ? (thread_cpu_ms() - c0) * 1e6 / (double)(b.tx - a.tx) : 0;
	s->idle[r] = 0;
	s->crossed = b.tx > a.tx ? (double)(b.handed - a.handed) / (double)(b.tx - a.tx) : 0;
}

static double median(const double *v, unsigned int n)
{
	double c[MAX_ROUNDS], m[3];

	memcpy(c, v, n * sizeof(*v));
	min_med_max(c, n, m);
	return m[1];
}

/* "min median max unit" of @p n rounds of @p s, and the first @p cols of "handed cores
 * idle". */
static void print_side(const char *workers, const char *how, const struct side *s, unsigned int n,
		       const char *unit, int cols)
{
	double c[MAX_ROUNDS], m[3];

	memcpy(c, s->v, n * sizeof(*c));
	min_med_max(c, n, m);
	printf("%-8s %-42s %8.2f %8.2f %8.2f %-4s", workers, how, m[0], m[1], m[2], unit);
	if (cols >= 1)
		printf(" %7.2f", s->crossed);
	if (cols >= 2)
		printf(" %6.2f", median(s->cores, n));
	if (cols >= 3)
		printf(" %6.2f", median(s->idle, n));
	printf("\n");
}

static void workers_table(uint32_t flows, unsigned int rounds, double seconds)
{
	static struct side one, own, cross, direct, handed, diff;
	const bool two = rte_lcore_count() >= 2;
	uint32_t *by_owner[2] = {NULL, NULL}, *every_other[2] = {NULL, NULL};
	uint32_t n_owner[2] = {0, 0}, n_other[2] = {0, 0};
	unsigned int done = 0;
	bool two_ran = two;

	if (order_random(flows) != 0)
		return;
	for (int q = 0; q < 2; q++) {
		by_owner[q] = malloc(sizeof(uint32_t) * flows);
		every_other[q] = malloc(sizeof(uint32_t) * flows);
		if (by_owner[q] == NULL || every_other[q] == NULL)
			goto out;
	}
	for (uint32_t j = 0; j < flows; j++) {
		const unsigned int o = flow_owner(order[j], 2);

		by_owner[o][n_owner[o]++] = order[j];
		every_other[j & 1][n_other[j & 1]++] = order[j];
	}
	if (n_owner[0] == 0 || n_owner[1] == 0 || n_other[1] == 0)
		goto out;
	printf("\nseveral workers: %u established flows in random order, each in its owner's "
	       "table; %u round(s), each side once a round\n",
	       flows, rounds);
	for (unsigned int r = 0; r < rounds; r++) {
		const struct feed all = {order, flows, 0};
		const struct feed owned[2] = {{by_owner[0], n_owner[0], 0},
					      {by_owner[1], n_owner[1], 0}};
		const struct feed other[2] = {{every_other[0], n_other[0], 0},
					      {every_other[1], n_other[1], 0}};

		if (fw_setup_workers(flows * 2 + 1024, 1) != 0)
			goto out_teardown;
		establish_owned(flows);
		run_lanes(&all, flows, seconds, &one, r);
		fw_teardown();
		/* Each of two tables as full as the one: the same load factor. */
		if (fw_setup_workers(flows + 1024, 2) != 0)
			goto out_teardown;
		establish_owned(flows);
		if (two_ran)
			two_ran = run_lanes(owned, flows, seconds, &own, r) == 0 &&
				  run_lanes(other, flows, seconds, &cross, r) == 0;
		/* Which goes first alternates: neither always follows the other. */
		if (r & 1)
			run_one_thread(owned[1], flows, seconds, &handed, r);
		run_one_thread(owned[0], flows, seconds, &direct, r);
		if (!(r & 1))
			run_one_thread(owned[1], flows, seconds, &handed, r);
		diff.v[r] = handed.v[r] - direct.v[r];
		fw_teardown();
		done++;
	}
	printf("%-8s %-42s %8s %8s %8s %-4s %7s %6s %6s\n", "workers",
	       "forwarding, each lcore feeding its queue", "min", "median", "max", "", "handed",
	       "cores", "idle");
	print_side("1", "lcore 0, queue 0", &one, done, "Mpps", 3);
	if (two_ran) {
		print_side("2", "lcores 0+1, each queue its owner's flows", &own, done, "Mpps", 3);
		print_side("2", "lcores 0+1, each queue every other flow", &cross, done, "Mpps", 3);
		printf("(%ld cores and no third for a feeder: each lcore also feeds its own "
		       "worker's queue,\n"
		       " and shares its core with whatever else runs there; two workers' "
		       "figures are\n"
		       " bounded by that. handed: share of the frames forwarded that went to "
		       "their owner's\n"
		       " inbox; cores: CPU time the lanes got / wall time; idle: share of "
		       "their time in\n"
		       " passes that found no frame; both medians)\n",
		       sysconf(_SC_NPROCESSORS_ONLN));
	} else {
		printf("(two workers' forwarding needs two lcores: -l 0,1)\n");
	}
	printf("%-8s %-42s %8s %8s %8s %-4s %7s %6s\n", "hand-off",
	       "one thread driving both workers, CPU time", "min", "median", "max", "", "handed",
	       "cores");
	print_side("2", "worker 0 owns the flows: decided there", &direct, done, "ns", 2);
	print_side("2", "worker 1 owns them: handed to it, decided", &handed, done, "ns", 2);
	print_side("2", "hand-off cost (per round: handed - direct)", &diff, done, "ns", 0);
	fflush(stdout);
	goto out;
out_teardown:
	fprintf(stderr, "fw_bench: -W: %u flows do not fit\n", flows);
	fw_teardown();
out:
	for (int q = 0; q < 2; q++) {
		free(by_owner[q]);
		free(every_other[q]);
	}
	free(order);
	order = NULL;
}

int main(int argc, char **argv)
{
	const char *restore_targets[MAX_TARGETS];
	unsigned int nrestore = 0, restore_regions = 2;
	const char *ckpt_targets[MAX_TARGETS], *churn_targets[MAX_TARGETS],
		*takeover_targets[MAX_TARGETS];
	unsigned int nckpt = 0, nchurn = 0, ntakeover = 0;
	double churn_rate = 100000;
	bool ways[IO_WAYS] = {false};
	uint32_t flow_counts[8] = {1000, 100000, 1000000};
	uint32_t workers_flows = 0;
	unsigned int nflows = 3;
	double seconds = 2, pass_seconds = 1;
	unsigned int rounds = 3;
	bool random_order = true, sequential = false;
	unsigned int loops = LOOP_ALL;
	int n, c;

	n = rte_eal_init(argc, argv);
	if (n < 0)
		return 1;
	argc -= n, argv += n;
	while ((c = getopt(argc, argv, "f:o:R:p:s:k:r:w:c:C:t:S:I:W:L:u")) != -1) {
		if (c == 'f') {
			char *save = NULL;

			nflows = 0;
			for (char *t = strtok_r(optarg, ",", &save); t && nflows < 8;
			     t = strtok_r(NULL, ",", &save))
				flow_counts[nflows++] = (uint32_t)strtoul(t, NULL, 10);
		} else if (c == 'o' &&
			   (strcmp(optarg, "random") == 0 || strcmp(optarg, "sequential") == 0 ||
			    strcmp(optarg, "both") == 0)) {
			random_order = strcmp(optarg, "sequential") != 0;
			sequential = strcmp(optarg, "random") != 0;
		} else if (c == 'R' && atoi(optarg) >= 1 && atoi(optarg) <= MAX_ROUNDS) {
			rounds = (unsigned int)atoi(optarg);
		} else if (c == 'p' && atof(optarg) > 0) {
			pass_seconds = atof(optarg);
		} else if (c == 's') {
			seconds = atof(optarg);
		} else if (c == 'k' && nckpt < MAX_TARGETS) {
			ckpt_targets[nckpt++] = optarg;
		} else if (c == 'c' && nchurn < MAX_TARGETS) {
			churn_targets[nchurn++] = optarg;
		} else if (c == 'S') {
			int rc = ckpt_secret_load(optarg, "holdfast", secret, sizeof(secret));

			if (rc < 0) {
				fprintf(stderr, "fw_bench: %s: no secret for tenant holdfast: %s\n",
					optarg, strerror(-rc));
				return 2;
			}
			secret_len = (size_t)rc;
		} else if (c == 't' && ntakeover < MAX_TARGETS) {
			takeover_targets[ntakeover++] = optarg;
		} else if (c == 'C') {
			churn_rate = atof(optarg);
		} else if (c == 'I') {
			char *save = NULL;

			for (char *t = strtok_r(optarg, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				int w = 0;

				while (w < IO_WAYS && strcmp(t, io_way_name[w]) != 0)
					w++;
				if (w == IO_WAYS) {
					fprintf(stderr, "fw_bench: -I inline, thread or lcore\n");
					return 2;
				}
				ways[w] = true;
			}
		} else if (c == 'u') {
			per_cpu_second = true;
		} else if (c == 'L') {
			char *save = NULL;

			loops = 0;
			for (char *t = strtok_r(optarg, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				unsigned int l = 0;

				while (l < RTE_DIM(loop_name) && strcmp(t, loop_name[l]) != 0)
					l++;
				if (l == RTE_DIM(loop_name)) {
					fprintf(stderr,
						"fw_bench: -L io, minimal, holdfast or new\n");
					return 2;
				}
				loops |= 1u << l;
			}
		} else if (c == 'W' && atoi(optarg) >= 2) {
			workers_flows = (uint32_t)strtoul(optarg, NULL, 10);
		} else if (c == 'r' && nrestore < MAX_TARGETS) {
			restore_targets[nrestore++] = optarg;
		} else if (c == 'w' && atoi(optarg) >= 1 && atoi(optarg) <= RESTORE_REGIONS_MAX) {
			restore_regions = (unsigned int)atoi(optarg);
		} else {
			if (strchr("krct", c) != NULL)
				fprintf(stderr, "fw_bench: at most %d targets per -%c\n",
					MAX_TARGETS, c);
			fprintf(stderr,
				"usage: fw_bench [EAL] -- [-f 1000,100000] "
				"[-o random|sequential|both] [-R ROUNDS (1-%d)]\n"
				"       [-p PASS_SECONDS] [-s SECONDS] "
				"[-k CKPT_TARGET]... [-r CKPT_TARGET]... "
				"[-w RESTORE_REGIONS (1-%d)]\n"
				"       [-c CKPT_TARGET|none]... [-C NEW_CONNS_PER_S] "
				"[-I inline,thread,lcore]\n"
				"       [-t CKPT_TARGET]... [-S SECRET_FILE] [-W FLOWS] "
				"[-L io,minimal,holdfast,new] [-u]\n",
				MAX_ROUNDS, RESTORE_REGIONS_MAX);
			return 2;
		}
	}
	pool = rte_pktmbuf_pool_create("bench", 16383, 256, 0, 256, 0);
	if (pool == NULL || ports_setup() != 0) {
		fprintf(stderr, "fw_bench: setup failed\n");
		return 1;
	}
	printf("Mpps%s: median (min-max) of %u alternating passes of %.1f s each\n"
	       "%-8s %-10s %-22s %-22s %-22s %-18s %8s\n",
	       per_cpu_second ? " per CPU second" : "", rounds, pass_seconds, "flows", "order",
	       "io loop", "minimal stateful", "holdfast", "holdfast/minimal", "new M/s");
	for (unsigned int k = 0; k < nflows; k++) {
		/* Opening rate over at least 100k SYNs: fewer measure a cold start. */
		const uint32_t opens = flow_counts[k] < 100000 ? 100000 : flow_counts[k];
		const uint32_t entries = flow_counts[k] * 2 + 1024;
		double nc = 0;

		if (loops & LOOP_NEW) {
			if (fw_setup(opens * 2 + 1024) != 0) {
				fprintf(stderr, "fw_bench: %u flows do not fit\n", opens);
				return 1;
			}
			nc = run_new(opens);
			fw_teardown();
		}
		if (fw_setup(entries) != 0 ||
		    ((loops & LOOP_MIN) && min_setup(flow_counts[k], entries) != 0)) {
			fprintf(stderr, "fw_bench: %u flows do not fit\n", flow_counts[k]);
			return 1;
		}
		establish(flow_counts[k]);
		if (sequential) {
			free(order);
			order = NULL;
			compare(flow_counts[k], "sequential", rounds, pass_seconds, nc, loops);
		}
		if (random_order) {
			if (order_random(flow_counts[k]) != 0)
				return 1;
			compare(flow_counts[k], "random", rounds, pass_seconds, nc, loops);
		}
		free(order);
		order = NULL;
		min_teardown();
		fw_teardown();
	}
	if (workers_flows)
		workers_table(workers_flows, rounds, pass_seconds);
	for (unsigned int t = 0; t < nckpt; t++) {
		const uint32_t opens = 1000000;

		if (t == 0)
			printf("\n%-44s %14s\n", "new connections, each checkpointed", "M/s");
		printf("%-44s %14.2f\n", ckpt_targets[t], run_new_ckpt(ckpt_targets[t], opens));
		fflush(stdout);
	}
	if (nchurn)
		churn_table(churn_targets, nchurn, ways, rounds, churn_rate, seconds);
	for (unsigned int t = 0; t < nrestore; t++) {
		if (t == 0)
			printf("\nrestore, ms: min / median / max of %u rounds (cpu: median CPU "
			       "time of the process, all threads)\n%-16s %-34s %8s %8s %8s %8s "
			       "%10s\n",
			       rounds, "regions x conns", "from", "min", "median", "max", "cpu",
			       "restored");
		run_restore(restore_targets[t], 100000, 1, rounds);
		for (unsigned int r = 1; r <= restore_regions; r *= 2)
			run_restore(restore_targets[t], 1000000, r, rounds);
	}
	for (unsigned int t = 0; t < ntakeover; t++) {
		if (t == 0)
			printf("\n%-10s %-34s %9s %9s %9s %9s %9s %9s\n", "takeover", "from",
			       "total ms", "log ms", "finish ms", "rings ms", "conns", "followed");
		run_takeover(takeover_targets[t], 100000);
		run_takeover(takeover_targets[t], 1000000);
	}
	rte_eal_cleanup();
	return 0;
}
