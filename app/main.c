/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * holdfast: a transparent bump in the wire between the port pairs the configuration names
 * (pair A B inside X; 0<->1 by default), tracking every connection and enforcing the rules
 * on what opens one.
 *
 *   holdfast [EAL args] -- [--config FILE] [--max-conns N] [--rules nft:TABLE]
 *            [--policy drop|reject|accept] [--non-ip pass|drop] [--fragments pass|drop]
 *            [--ip-options pass|drop] [--pair A,B,INSIDE] [--ckpt TARGET|none] [--standby]
 *
 * A standby (--standby, same configuration as its primary) follows the primary's
 * checkpoints with its ports stopped and takes over when the primary's lease runs out or
 * on SIGUSR1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "fw_ckpt_io.h"
#include "fw_config.h"
#include "fw_nft.h"
#include "fw_restore.h"
#include "fw_standby.h"
#include "fw_notify.h"
#include "fw_live.h"
#include "fw_telemetry.h"
#include "fw_worker.h"

RTE_LOG_REGISTER_DEFAULT(fw_logtype_app, INFO)
#define LOG(level, ...) rte_log(RTE_LOG_##level, fw_logtype_app, "holdfast: " __VA_ARGS__)

/* Exit statuses: 0 stopped, 1 could not start or run, FW_EXIT_FENCED a standby took over. */
#define FW_EXIT_FENCED 3

#define NB_RXD	   1024
#define NB_TXD	   1024
#define MBUF_CACHE 256

static struct fw_shared shared;
static struct fw_worker *workers;
static unsigned int nworkers;
static struct fw_live *live;

/*
 * The configuration as the command line gave it, in order (--config FILE, and each flag as
 * its config line): SIGHUP reads the rules again through the same steps, so a flag still
 * overrides the file.
 */
#define CMDLINE_MAX 64
static struct {
	bool file;
	char text[256];
} cmdline[CMDLINE_MAX];
static unsigned int ncmdline;

static void cmdline_add(bool file, const char *text)
{
	if (ncmdline == CMDLINE_MAX)
		return; /* parse_args refuses more */
	cmdline[ncmdline].file = file;
	snprintf(cmdline[ncmdline].text, sizeof(cmdline[ncmdline].text), "%s", text);
	ncmdline++;
}

static void on_signal(int sig)
{
	(void)sig;
	shared.quit = true;
}

static void on_hup(int sig)
{
	(void)sig;
	fw_live_hup();
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [EAL args] -- [--config FILE] [--max-conns N] [--rules nft:TABLE]\n"
		"       [--policy drop|reject|accept] [--non-ip pass|drop] "
		"[--fragments pass|drop]\n"
		"       [--ip-options pass|drop] [--pair A,B,INSIDE] [--ckpt TARGET|none]\n"
		"       [--standby] [--help]\n"
		"EAL args: DPDK's (-l LIST, --vdev DEV, -a PCI, --file-prefix P, --in-memory, "
		"...;\n"
		"          %s --help shows them); the rest are holdfast.conf settings (man 8\n"
		"          holdfast)\n",
		prog, prog);
}

/* -h or --help after "--": the usage on stdout, before EAL (which wants its resources). */
static bool wants_help(int argc, char **argv)
{
	int i = 1;

	while (i < argc && strcmp(argv[i], "--") != 0)
		i++;
	for (i++; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

/* An error of parse_args, unless it reads quietly (the preload's look ahead of EAL). */
#define SAY(quiet, ...)                                                                            \
	do {                                                                                       \
		if (!(quiet))                                                                      \
			LOG(ERR, __VA_ARGS__);                                                     \
	} while (0)

/* Flags are config lines: one grammar, one set of error messages. */
static int parse_args(int argc, char **argv, struct fw_config *conf, bool quiet)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"max-conns", required_argument, NULL, 'm'},
		{"rules", required_argument, NULL, 'r'},
		{"policy", required_argument, NULL, 'p'},
		{"non-ip", required_argument, NULL, 'n'},
		{"fragments", required_argument, NULL, 'f'},
		{"ip-options", required_argument, NULL, 'o'},
		{"pair", required_argument, NULL, 'P'},
		{"ckpt", required_argument, NULL, 'k'},
		{"standby", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char err[320], line[256];
	bool flag_pairs = false;
	int c, rc;

	optind = 0; /* glibc: a whole new scan (the preload's quiet one may have run) */
	opterr = !quiet;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = NULL;

		if (ncmdline == CMDLINE_MAX) {
			SAY(quiet, "more than %d options\n", CMDLINE_MAX);
			return -EINVAL;
		}
		switch (c) {
		case 'c':
			if (!quiet)
				cmdline_add(true, optarg);
			rc = fw_config_load(conf, optarg, err, sizeof(err));
			if (rc) {
				SAY(quiet, "%s\n", err);
				return rc;
			}
			continue;
		case 'P': {
			unsigned int a, b, in;

			if (sscanf(optarg, "%u,%u,%u", &a, &b, &in) != 3) {
				SAY(quiet, "--pair %s: expected A,B,INSIDE e.g. 0,1,0\n", optarg);
				return -EINVAL;
			}
			if (!flag_pairs)
				conf->npairs = 0;
			flag_pairs = true;
			snprintf(line, sizeof(line), "pair %u %u inside %u", a, b, in);
			break;
		}
		case 'm':
			name = "max-conns";
			break;
		case 'r':
			name = "rules";
			break;
		case 'p':
			name = "policy";
			break;
		case 'n':
			name = "non-ip";
			break;
		case 'f':
			name = "fragments";
			break;
		case 'o':
			name = "ip-options";
			break;
		case 'k':
			name = "ckpt";
			break;
		case 'S':
			snprintf(line, sizeof(line), "standby yes");
			break;
		case 'h':
		default:
			if (!quiet)
				usage(stderr, argv[0]);
			return -EINVAL;
		}
		if (name)
			snprintf(line, sizeof(line), "%s %s", name, optarg);
		if (!quiet)
			cmdline_add(false, line);
		rc = fw_config_set(conf, line, "command line", err, sizeof(err));
		if (rc) {
			SAY(quiet, "%s\n", err);
			return rc;
		}
	}
	if (optind != argc) {
		SAY(quiet, "unexpected argument '%s'\n", argv[optind]);
		if (!quiet)
			usage(stderr, argv[0]);
		return -EINVAL;
	}
	rc = fw_config_check(conf, err, sizeof(err));
	if (rc)
		SAY(quiet, "%s\n", err);
	return rc;
}

/*
 * ckpt-lcore N names an lcore of EAL's list other than the main one (worker 0's), and
 * leaves a worker at least. @return 0 or -EINVAL, said.
 */
static int ckpt_lcore_check(const struct fw_config *conf)
{
	char list[256] = "";
	unsigned int lcore;
	size_t used = 0;

	if (conf->ckpt_lcore < 0)
		return 0;
	RTE_LCORE_FOREACH(lcore)
	{
		int n = snprintf(list + used, sizeof(list) - used, "%s%u", used ? "," : "", lcore);

		if (n < 0 || (size_t)n >= sizeof(list) - used)
			break;
		used += (size_t)n;
	}
	if (conf->ckpt_lcore >= RTE_MAX_LCORE ||
	    !rte_lcore_is_enabled((unsigned)conf->ckpt_lcore)) {
		LOG(ERR,
		    "ckpt-lcore %d: lcore %d is not in the EAL core list (lcores %s); give it to "
		    "EAL (-l %s,%d), or use ckpt-lcore thread\n",
		    conf->ckpt_lcore, conf->ckpt_lcore, list, list, conf->ckpt_lcore);
		return -EINVAL;
	}
	if ((unsigned int)conf->ckpt_lcore == rte_get_main_lcore()) {
		LOG(ERR,
		    "ckpt-lcore %d: the main lcore runs worker 0; name another lcore of EAL's list "
		    "(lcores %s), or use ckpt-lcore thread\n",
		    conf->ckpt_lcore, list);
		return -EINVAL;
	}
	if (strcmp(conf->ckpt_target, "none") == 0)
		LOG(NOTICE,
		    "ckpt-lcore %d: no checkpoint target (ckpt none); lcore %d stays idle\n",
		    conf->ckpt_lcore, conf->ckpt_lcore);
	return 0;
}

/* Symmetric Toeplitz key: both directions of a flow hash to the same queue. */
static uint8_t sym_rss_key[40] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

/*
 * Ports that spread flows over their queues by themselves, without RSS to configure:
 * net_af_packet opens one socket per queue pair (qpairs=N) in one PACKET_FANOUT group,
 * and the kernel spreads frames over the sockets by its flow hash (DPDK 22.11:
 * PACKET_FANOUT_HASH with ROLLOVER, so a busy flow may move to another queue: the
 * workers' hand-off takes care of that, fw_worker.h). Every queue of such a port must be
 * polled, since the kernel fills them all: its queue count is fixed when EAL creates it
 * and must be the number of workers. Other ports spread flows only with RSS
 * (flow_type_rss_offloads), configured here with the symmetric key; a port with neither
 * (net_ring, net_pcap...) runs one worker.
 */
static const char *const self_spreading[] = {"net_af_packet"};

static bool spreads_by_itself(const struct rte_eth_dev_info *info)
{
	for (size_t i = 0; i < RTE_DIM(self_spreading); i++)
		if (strcmp(info->driver_name, self_spreading[i]) == 0)
			return true;
	return false;
}

static int port_setup(uint16_t port, uint16_t nq, struct rte_mempool *pool)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc)
		return rc;
	if (spreads_by_itself(&info)) {
		if (info.max_rx_queues != nq || info.max_tx_queues != nq) {
			LOG(ERR,
			    "port %u (%s, %s) has %u queue pairs, one per worker is needed: the "
			    "kernel spreads flows over all of them; give it qpairs=%u (e.g. "
			    "--vdev %s,iface=IF,qpairs=%u), or run %u workers (as many lcores "
			    "in -l)\n",
			    port, info.driver_name, rte_dev_name(info.device), info.max_rx_queues,
			    nq, rte_dev_name(info.device), nq, info.max_rx_queues);
			return -EINVAL;
		}
	} else if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		LOG(ERR,
		    "port %u (%s) has %u rx / %u tx queues; %u workers need %u each: give EAL "
		    "fewer lcores (-l)\n",
		    port, info.driver_name, info.max_rx_queues, info.max_tx_queues, nq, nq);
		return -EINVAL;
	} else if (nq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = sym_rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(sym_rss_key);
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			info.flow_type_rss_offloads;
		if (conf.rx_adv_conf.rss_conf.rss_hf == 0) {
			LOG(ERR,
			    "port %u (%s) cannot spread flows over queues: no RSS, and it does "
			    "not spread them by itself (net_af_packet with qpairs=%u does); run "
			    "one worker (one lcore in -l)\n",
			    port, info.driver_name, nq);
			return -EINVAL;
		}
	}
	/* A port that checks IPv4 header checksums saves the workers summing every header. */
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	rc = rte_eth_dev_configure(port, nq, nq, &conf);
	if (rc)
		return rc;
	shared.ports[port].rx_ip_csum = !!(conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM);
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(port, q, NB_RXD, rte_eth_dev_socket_id(port), NULL,
					    pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(port, q, NB_TXD, rte_eth_dev_socket_id(port),
						    NULL);
		if (rc)
			return rc;
	}
	rc = rte_eth_promiscuous_enable(port);
	if (rc && rc != -ENOTSUP)
		return rc;
	return 0;
}

/*
 * net_af_packet opens its socket at EAL init, long before the port starts: a standby's
 * (or a restarting firewall's) socket queues what crossed the wire meanwhile, frames the
 * primary already forwarded or that belong to the gap. Forwarded now they would be stale
 * duplicates, so they go. Other drivers receive only once started (and net_pcap's "queue"
 * is its input file), so only af_packet ports are drained.
 */
static void drop_stale_rx(uint16_t port, uint16_t nq)
{
	struct rte_eth_dev_info info;
	struct rte_mbuf *m[64];
	uint64_t n = 0;

	if (rte_eth_dev_info_get(port, &info) != 0 || strcmp(info.driver_name, "net_af_packet"))
		return;
	for (uint16_t q = 0; q < nq; q++) {
		uint16_t got;

		while ((got = rte_eth_rx_burst(port, q, m, 64)) > 0) {
			rte_pktmbuf_free_bulk(m, got);
			n += got;
		}
	}
	if (n)
		LOG(NOTICE, "port %u: %" PRIu64 " frames queued before it started discarded\n",
		    port, n);
}

static int ports_map(const struct fw_config *conf)
{
	for (unsigned int i = 0; i < conf->npairs; i++) {
		const struct fw_pair *pr = &conf->pairs[i];

		for (int s = 0; s < 2; s++) {
			uint16_t port = pr->port[s];

			if (port >= FW_MAX_PORTS || !rte_eth_dev_is_valid_port(port)) {
				LOG(ERR, "pair %u-%u: port %u does not exist (%u ports found)\n",
				    pr->port[0], pr->port[1], port, rte_eth_dev_count_avail());
				return -ENODEV;
			}
			shared.ports[port] = (struct fw_port_map){
				.peer = pr->port[!s],
				.zone = s == pr->inside ? FW_ZONE_INSIDE : FW_ZONE_OUTSIDE,
				.in_use = 1,
			};
			shared.port_list[shared.nports++] = port;
		}
	}
	return 0;
}

/* Where a start's time goes (fw_mono_ns), for the "ready in" and "took over in" lines. */
static struct {
	uint64_t start, eal, setup, ckpt_connect, restore, epoch, ports, ready;
} t_start;

static struct fw_restore_stats restore_stats;
static struct fw_ckpt_layout layout;
static struct fw_lease *lease;
static struct fw_ckpt_io *ckpt_io; /* NULL: no target, or ckpt-lcore inline */
static volatile sig_atomic_t takeover_asked;
static struct fw_standby_stats sb_stats;

static void on_takeover(int sig)
{
	(void)sig;
	takeover_asked = 1;
}

/* A primary's start: every worker reads its own state region back into its own table. */
static int restore_all(void)
{
	static struct fw_restore_result res[FW_MAX_WORKER];
	static struct fw_restore_moves mv;
	struct fw_restore_stats *st = &restore_stats;
	struct fw_worker *ws[FW_MAX_WORKER];
	rte_cpuset_t cpus[FW_MAX_WORKER], readers;
	uint64_t invalid = 0, slowest = 0;
	unsigned int lcore, i = 1;
	int rc;

	/* Each worker's region on the CPU that worker will run on: idle until then. */
	cpus[0] = rte_lcore_cpuset(rte_get_main_lcore());
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if ((int)lcore != shared.conf->ckpt_lcore && i < nworkers)
			cpus[i++] = rte_lcore_cpuset(lcore);
	}
	/* Every lcore's CPU is idle until the ports start: spare ones read the regions. */
	CPU_ZERO(&readers);
	RTE_LCORE_FOREACH(lcore)
	{
		rte_cpuset_t c = rte_lcore_cpuset(lcore);

		CPU_OR(&readers, &readers, &c);
	}
	for (i = 0; i < nworkers; i++)
		ws[i] = &workers[i];
	rc = fw_restore_workers(ws, nworkers, cpus, &readers, &layout, res, &mv);
	if (rc)
		LOG(WARNING,
		    "restore: a thread could not be started (%s): workers restored "
		    "one after another\n",
		    strerror(-rc));
	for (i = 0; i < nworkers; i++) {
		if (res[i].rc == -ENOTCONN) {
			LOG(WARNING,
			    "checkpoint target %s unreachable: worker %u starts with no "
			    "connections restored\n",
			    layout.target, i);
			continue;
		}
		if (res[i].rc < 0) {
			LOG(ERR, "restore of worker %u from %s: %s\n", i, layout.target,
			    strerror(-res[i].rc));
			return res[i].rc;
		}
		fw_restore_stats_add(st, &res[i].st);
		invalid += res[i].ss.invalid;
		if (res[i].ns > slowest)
			slowest = res[i].ns;
	}
	/*
	 * Records of retired regions: read into tables of their own and moved, never finished
	 * there (their connections are counted in their owners'); and what found no room in
	 * an owner's table.
	 */
	fw_restore_stats_add(st, &mv.st);
	st->no_room += mv.no_room;
	LOG(NOTICE,
	    "restored %" PRIu64 " connections (%" PRIu64 " slices) from %s in %.1f ms (%u "
	    "worker%s at once); skipped: %" PRIu64 " unknown module, %" PRIu64
	    " newer version, %" PRIu64 " bad, %" PRIu64 " conflicting, %" PRIu64
	    " missing a required slice, %" PRIu64 " no room, %" PRIu64 " invalid records\n",
	    st->conns, st->slices, layout.target, (double)slowest / 1e6, nworkers,
	    nworkers == 1 ? "" : "s", st->unknown_module, st->newer_version, st->bad_slice,
	    st->conflicts, st->dropped_missing, st->no_room, invalid);
	/* Another number of workers than the run before: who moved where (fw_restore.h). */
	if (mv.misplaced || mv.retired)
		LOG(NOTICE,
		    "another number of workers than before (%u now): %" PRIu64 " connections in "
		    "the region of a worker that does not own them, %" PRIu64 " moved to their "
		    "owners; %u region%s of workers past %u drained, %u deleted, %u kept; %" PRIu64
		    " second copies dropped, %" PRIu64 " old slices tombstoned, %" PRIu64
		    " no room%s%s\n",
		    nworkers, mv.misplaced, mv.moved, mv.retired, mv.retired == 1 ? "" : "s",
		    nworkers, mv.deleted, mv.kept, mv.duplicates, mv.tombstoned, mv.no_room,
		    mv.rc ? "; not settled: " : "", mv.rc ? strerror(-mv.rc) : "");
	return 0;
}

/* A standby's start: follow the primary until it is time to take over. @return 0, 1: quit. */
static int standby_follow(void)
{
	uint64_t t_finish, t_attach;
	int rc = fw_standby_run(&layout, workers, nworkers, shared.conf->standby_poll_ms,
				&shared.quit, &takeover_asked, &sb_stats);

	if (rc)
		return rc;
	t_finish = fw_mono_ns();
	for (unsigned int i = 0; i < nworkers; i++) {
		fw_worker_clock_sync(&workers[i]); /* restored deadlines are wall-clock time */
		fw_restore_finish(workers[i].table, fw_checkpointer_slots(workers[i].ckpt),
				  &workers[i].ctx, fw_worker_now(&workers[i]), &sb_stats.st);
	}
	t_attach = fw_mono_ns();
	for (unsigned int i = 0; i < nworkers; i++)
		fw_checkpointer_takeover(workers[i].ckpt, fw_worker_now(&workers[i]));
	LOG(NOTICE,
	    "taking over (%s): %" PRIu64 " connections; followed %" PRIu64
	    " log records and %" PRIu64 " rescans (%" PRIu64 " records); rest of the log read "
	    "in %.1f ms, connections finished in %.1f ms, regions opened in %.1f ms; skipped: "
	    "%" PRIu64 " missing a required slice, %" PRIu64 " no room\n",
	    sb_stats.reason, sb_stats.st.conns, sb_stats.log_records, sb_stats.rescans,
	    sb_stats.scan_records, (double)(sb_stats.caught_up_ns - sb_stats.detect_ns) / 1e6,
	    (double)(t_attach - t_finish) / 1e6, (double)(fw_mono_ns() - t_attach) / 1e6,
	    sb_stats.st.dropped_missing, sb_stats.st.no_room);
	return 0;
}

/*
 * From here on the checkpointers' I/O runs where ckpt-lcore says, off the workers (issue
 * 15). Until now (restore, a standby's following and takeover, the binding) it ran on
 * this thread, and so it does again at the stop. @return 0 or -errno.
 */
static int ckpt_io_start(const struct fw_config *conf)
{
	struct fw_checkpointer *ks[FW_MAX_WORKER];

	/*
	 * auto: a pmem: target's writes are persists of a few hundred bytes into memory this
	 * process maps, no cheaper on another thread (fw_bench: 0.93-1.10 of checkpointing off
	 * either way), and done inline they are durable before the worker takes its next burst:
	 * an FTP expectation or a window edge is on the store before any reply to the packet
	 * that made it crosses the firewall. Handed to a thread, a kill -9 right after the
	 * reply lost it (clients_ipv6: the data connection of an EPSV/EPRT announced before the
	 * kill was dropped after the restart). Remote targets and groups do gain, and their
	 * writes were never durable at once anyway: they go to the thread.
	 */
	if (conf->ckpt_lcore == FW_CKPT_LCORE_INLINE ||
	    (conf->ckpt_lcore == FW_CKPT_LCORE_AUTO &&
	     strncmp(conf->ckpt_target, "pmem:", 5) == 0)) {
		LOG(INFO, "checkpoint I/O runs in each worker (ckpt-lcore %s)\n",
		    conf->ckpt_lcore == FW_CKPT_LCORE_AUTO ? "auto, pmem: target" : "inline");
		return 0;
	}
	for (unsigned int i = 0; i < nworkers; i++)
		ks[i] = workers[i].ckpt;
	ckpt_io = fw_ckpt_io_start(ks, nworkers,
				   conf->ckpt_lcore < 0 ? FW_CKPT_IO_THREAD : conf->ckpt_lcore);
	if (ckpt_io == NULL) {
		LOG(ERR, "checkpoint I/O: %s\n", strerror(errno));
		return -errno;
	}
	fw_telemetry_ckpt_io(fw_ckpt_io_where(ckpt_io));
	LOG(INFO, "checkpoint I/O for %u workers on %s\n", nworkers, fw_ckpt_io_where(ckpt_io));
	return 0;
}

/*
 * Open every worker's checkpointer, then restore (a primary) or follow the primary until
 * taking over (a standby), and hold the lease. Before any port starts.
 * @return 0, 1 (a standby asked to quit), or -errno.
 */
static int checkpoint_start(const struct fw_config *conf)
{
	char err[640];
	int rc;

	if (strcmp(conf->ckpt_target, "none") == 0) {
		if (conf->standby) {
			LOG(ERR, "--standby needs a checkpoint target (ckpt)\n");
			return -EINVAL;
		}
		return 0;
	}
	t_start.setup = fw_mono_ns();
	rc = fw_ckpt_layout_init(&layout, conf, nworkers, err, sizeof(err));
	if (rc) {
		LOG(ERR, "%s\n", err);
		return rc;
	}
	if (!conf->standby) {
		const uint64_t t0 = fw_mono_ns();

		rc = fw_lease_wait_free(&layout, conf->lease_ms);
		if (fw_mono_ns() - t0 > 100ull * 1000000)
			LOG(NOTICE, "checking the previous lease took %.0f ms\n",
			    (double)(fw_mono_ns() - t0) / 1e6);
		if (rc == -EBUSY)
			return rc;
		if (rc)
			LOG(WARNING, "%s: lease not checked: %s\n", layout.target, strerror(-rc));
	} else if (conf->ckpt_log_size == 0) {
		LOG(ERR, "--standby follows the primary's log: ckpt-log-size must not be 0\n");
		return -EINVAL;
	}
	for (unsigned int i = 0; i < nworkers; i++) {
		struct fw_checkpointer *k =
			fw_checkpointer_create(&layout, i, workers[i].table, conf->max_conns, 0,
					       conf->standby ? FW_CKPT_DETACHED : 0);

		if (k == NULL) {
			LOG(ERR, "checkpoint target %s: %s\n", conf->ckpt_target, strerror(errno));
			return -errno;
		}
		fw_worker_set_checkpointer(&workers[i], k);
	}
	t_start.ckpt_connect = fw_mono_ns();
	if (conf->standby) {
		signal(SIGUSR1, on_takeover);
		rc = standby_follow();
	} else {
		rc = restore_all();
	}
	t_start.restore = fw_mono_ns();
	if (rc)
		return rc;
	if (conf->standby)
		shared.epoch = sb_stats.epoch;
	lease = fw_lease_start(&layout, conf->lease_ms, &shared, sb_stats.lease_cl,
			       sb_stats.lease_r);
	sb_stats.lease_cl = NULL; /* the keeper's now */
	sb_stats.lease_r = NULL;
	if (lease == NULL) {
		LOG(ERR, "lease keeper: %s\n", strerror(errno));
		return -errno;
	}
	/* The epoch is ours now (or the target keeps none): every checkpointer writes as it. */
	for (unsigned int i = 0; i < nworkers && !shared.fenced; i++)
		if (fw_checkpointer_bind(workers[i].ckpt, &shared.epoch) == -ESTALE)
			fw_fence(&shared, 0);
	t_start.epoch = fw_mono_ns();
	return ckpt_io_start(conf);
}

/* The epoch that fenced us, asked of the target if nobody said. @return 0 if unknown. */
static uint64_t fencing_epoch(void)
{
	struct ckpt_region_info info;
	struct ckpt_client *cl;
	char name[PMU_NAME_MAX];
	uint64_t e = __atomic_load_n(&shared.fenced_by, __ATOMIC_RELAXED);

	if (e != 0)
		return e;
	fw_ckpt_layout_lease(&layout, name);
	cl = fw_ckpt_layout_connect(&layout, 1000, false);
	if (cl != NULL && ckpt_region_stat(cl, name, &info) == 0)
		e = info.r.epoch;
	ckpt_disconnect(&cl);
	return e;
}

/*
 * The longest a stop waits for its last writes, all workers together (a target that is
 * slow, or goes away meanwhile). What is left then is lost to the restart, and said.
 */
#define STOP_SYNC_NS (5ull * 1000000000ull)

static void checkpoint_stop(void)
{
	const uint64_t t0 = fw_shared_now(&shared);

	/* The last writes and the sync run here, on this thread, once the runner is gone. */
	fw_ckpt_io_stop(&ckpt_io);
	fw_lease_stop(&lease);
	for (unsigned int i = 0; workers && i < nworkers; i++) {
		struct fw_checkpointer *k = workers[i].ckpt;

		if (k == NULL)
			continue;
		/*
		 * Fenced, nothing more is ours to write: the target would refuse it anyway.
		 * Away, a stop does not wait for it. Otherwise every change the worker made,
		 * written and durable (not one tick and a sync: what the ring or the target's
		 * full queue held back stayed unwritten, and the restart lost it).
		 */
		if (!shared.fenced && fw_checkpointer_state(k) == NULL) {
			if (fw_checkpointer_lag(k) != 0)
				LOG(WARNING,
				    "worker %u: checkpoint target away at stop: %" PRIu64
				    " changes not durable\n",
				    i, fw_checkpointer_lag(k));
		} else if (!shared.fenced) {
			const uint64_t now = fw_worker_now(&workers[i]);
			const uint64_t spent = now - t0 < STOP_SYNC_NS ? now - t0 : STOP_SYNC_NS;
			int rc = fw_checkpointer_sync(k, now, STOP_SYNC_NS - spent);

			if (rc)
				LOG(ERR, "worker %u: %" PRIu64 " changes not durable at stop: %s\n",
				    i, fw_checkpointer_lag(k), strerror(-rc));
		}
		fw_worker_set_checkpointer(&workers[i], NULL);
		fw_checkpointer_destroy(&k);
	}
	fw_ckpt_layout_release(&layout);
}

#define MS(a, b) ((double)((b) - (a)) / 1e6)

/* Where the start went: a restart's or a takeover's, step by step. */
static void print_timing(const struct fw_config *conf)
{
	if (sb_stats.detect_ns) {
		sb_stats.state = FW_ROLE_TOOK_OVER;
		printf("holdfast: took over in %.1f ms (%s; %" PRIu64 " connections): detect -> "
		       "caught up %.1f ms, epoch %.1f ms, connections and regions %.1f ms, lease "
		       "and binding %.1f ms, ports %.1f ms\n",
		       MS(sb_stats.detect_ns, t_start.ready), sb_stats.reason, sb_stats.st.conns,
		       MS(sb_stats.detect_ns, sb_stats.caught_up_ns),
		       MS(sb_stats.caught_up_ns, sb_stats.epoch_ns),
		       MS(sb_stats.epoch_ns, t_start.restore), MS(t_start.restore, t_start.epoch),
		       MS(t_start.epoch, t_start.ready));
		return;
	}
	if (strcmp(conf->ckpt_target, "none") == 0)
		return;
	printf("holdfast: ready in %.1f ms: EAL init %.1f ms, setup %.1f ms, checkpoint connect "
	       "%.1f ms, restore %.1f ms (%" PRIu64 " connections), lease %.1f ms, ports %.1f ms\n",
	       MS(t_start.start, t_start.ready), MS(t_start.start, t_start.eal),
	       MS(t_start.eal, t_start.setup), MS(t_start.setup, t_start.ckpt_connect),
	       MS(t_start.ckpt_connect, t_start.restore), restore_stats.conns,
	       MS(t_start.restore, t_start.epoch), MS(t_start.epoch, t_start.ready));
}

static void print_counters(void)
{
	struct fw_counters t;

	fw_counters_sum(workers, nworkers, &t);
	printf("holdfast: final counters\n");
	for (unsigned int i = 0; i < shared.nports; i++) {
		uint16_t p = shared.port_list[i];

		printf("  port %u: rx %" PRIu64 " tx %" PRIu64 " tx-full %" PRIu64 "\n", p, t.rx[p],
		       t.tx[p], t.tx_full[p]);
	}
	if (t.drop_lease_lapsed)
		printf("  drop lease_lapsed %" PRIu64 "\n", t.drop_lease_lapsed);
	if (t.drop_fenced)
		printf("  drop fenced %" PRIu64 "\n", t.drop_fenced);
	printf("  pass %" PRIu64 " arp %" PRIu64 " conns new %" PRIu64 " related %" PRIu64
	       " expired %" PRIu64 "\n",
	       t.pass, t.arp, t.conn_new, t.conn_related, t.conn_expired);
	printf("  nd %" PRIu64 " icmp-related %" PRIu64 " icmp %" PRIu64 " icmp6 %" PRIu64
	       " expectations expired %" PRIu64 "\n",
	       t.nd, t.icmp_related, t.icmp_pass, t.icmp6_pass, t.expect_expired);
	for (int r = 1; r < FW_DROP_REASON_MAX; r++)
		if (t.drop[r])
			printf("  drop %s %" PRIu64 "\n",
			       fw_drop_reason_name((enum fw_drop_reason)r), t.drop[r]);
	/* Several workers: how the work fell, and how much crossed between them. */
	for (unsigned int w = 0; nworkers > 1 && w < nworkers; w++) {
		fw_counters_sum(&workers[w], 1, &t);
		printf("  worker %u: pass %" PRIu64 " conns new %" PRIu64 " handed off %" PRIu64
		       " received %" PRIu64 " drop no_conn %" PRIu64 "\n",
		       w, t.pass, t.conn_new, t.handoff_out, t.handoff_in, t.drop[FW_DROP_NO_CONN]);
	}
	fflush(stdout);
}

/* Where the rules of @p c come from, for the log and /holdfast/rules. */
static void rules_source_name(const struct fw_config *c, char *out, size_t len)
{
	const char *file = NULL;

	for (unsigned int i = 0; i < ncmdline; i++)
		if (cmdline[i].file)
			file = cmdline[i].text;
	snprintf(out, len, "%s",
		 c->rules_source[0] ? c->rules_source
		 : file		    ? file
				    : "command line");
}

/*
 * SIGHUP (fw_live_reread_fn): the configuration read again as at start, its rules and
 * policy taken (from the file, or imported from its nft table). Other settings stay as
 * they started: changing them needs a restart, and so does moving the rules between the
 * file and a table (the control thread follows the table it started with).
 */
static int reread_rules(struct fw_ruleset *rs, char *source, size_t sourcelen, char *err,
			size_t errlen, void *arg)
{
	const struct fw_config *started = arg;
	struct fw_config *c = calloc(1, sizeof(*c));
	int rc = 0;

	if (c == NULL) {
		snprintf(err, errlen, "no memory to read the configuration");
		return -ENOMEM;
	}
	fw_config_defaults(c);
	for (unsigned int i = 0; i < ncmdline && rc == 0; i++)
		rc = cmdline[i].file
			     ? fw_config_load(c, cmdline[i].text, err, errlen)
			     : fw_config_set(c, cmdline[i].text, "command line", err, errlen);
	if (rc == 0 && strcmp(c->rules_source, started->rules_source) != 0) {
		snprintf(err, errlen, "rules now from %s, were from %s: a restart moves them",
			 c->rules_source[0] ? c->rules_source : "the file",
			 started->rules_source[0] ? started->rules_source : "the file");
		rc = -EINVAL;
	}
	if (rc == 0 && c->rules_source[0]) {
		rc = fw_nft_import(c->rules_source + 4, rs, err, errlen);
	} else if (rc == 0) {
		for (unsigned int i = 0; i < c->rules.n && rc == 0; i++)
			rc = fw_ruleset_add(rs, &c->rules.rules[i]);
		rs->policy = c->rules.policy;
		if (rc)
			snprintf(err, errlen, "no memory for %u rules", c->rules.n);
	}
	if (rc == 0)
		rules_source_name(c, source, sourcelen);
	fw_config_release(c);
	free(c);
	return rc;
}

/*
 * The checkpoint target, read from the command line before EAL takes it, so that its
 * transport's library can load on a thread of its own while EAL initialises (libfabric:
 * ~0.3 s that would otherwise add to every start over ofi+*; docs/checkpoint.md, "Start-up
 * time"). It reads the options as the real reading after EAL init will (parse_args), but
 * quietly: that one reports errors. One it stops at leaves the default target, and costs
 * only the overlap.
 */
static void preload_ckpt_transport(int argc, char **argv)
{
	struct fw_config *c;
	char **args;
	int i = 1;

	while (i < argc && strcmp(argv[i], "--") != 0)
		i++;
	if (i >= argc)
		return;
	/* What EAL will hand on: the program's name, then what follows "--" (a copy, which
	 * getopt may reorder). */
	c = calloc(1, sizeof(*c));
	args = calloc((size_t)(argc - i + 1), sizeof(*args));
	if (c != NULL && args != NULL) {
		args[0] = argv[0];
		memcpy(args + 1, argv + i + 1, sizeof(*args) * (size_t)(argc - i - 1));
		fw_config_defaults(c);
		(void)parse_args(argc - i, args, c, true);
		/* EAL's getopt next: from the start, and saying what it refuses. */
		optind = 0;
		opterr = 1;
		(void)ckpt_preload_start(c->ckpt_target);
		fw_config_release(c);
	}
	free(args);
	free(c);
}

int main(int argc, char **argv)
{
	static struct fw_config conf;
	struct rte_mempool *pool = NULL;
	char err[320], line[160];
	unsigned int lcore, i;
	int rc, n;

	if (wants_help(argc, argv)) {
		usage(stdout, argv[0]);
		return 0;
	}
	t_start.start = fw_mono_ns();
	preload_ckpt_transport(argc, argv);
	n = rte_eal_init(argc, argv);
	t_start.eal = fw_mono_ns();
	if (n < 0) {
		fprintf(stderr, "holdfast: EAL init failed: %s\n", rte_strerror(rte_errno));
		ckpt_preload_join();
		return 1;
	}
	fw_config_defaults(&conf);
	rc = parse_args(argc - n, argv + n, &conf, false);
	if (rc)
		goto out_eal;
	if (conf.rules_source[0]) {
		rc = fw_nft_import(conf.rules_source + 4, &conf.rules, err, sizeof(err));
		if (rc) {
			LOG(ERR, "%s\n", err);
			goto out_eal;
		}
	}
	shared.conf = &conf;
	shared.tsc_hz = rte_get_tsc_hz();
	rc = fw_id_secret_init(&shared.secret);
	if (rc)
		goto out_eal;
	rc = ports_map(&conf);
	if (rc)
		goto out_acl;

	rc = ckpt_lcore_check(&conf);
	if (rc)
		goto out_acl;
	nworkers = rte_lcore_count() - (conf.ckpt_lcore >= 0 ? 1 : 0);
	if (nworkers > FW_MAX_WORKER)
		nworkers = FW_MAX_WORKER;
	shared.nworkers = nworkers;
	rules_source_name(&conf, line, sizeof(line));
	live = fw_live_create(&shared, nworkers, (int)rte_socket_id(), &conf.rules, line, err,
			      sizeof(err));
	if (live == NULL) {
		LOG(ERR, "rules: %s\n", err);
		rc = -errno;
		goto out_acl;
	}
	LOG(INFO, "%u rules, default policy %s\n", conf.rules.n, fw_action_name(conf.rules.policy));
	/* Every queue full, and with several workers every inbox full too. */
	pool = rte_pktmbuf_pool_create("fw_mbufs",
				       shared.nports * nworkers * (NB_RXD + NB_TXD) + 4096 +
					       (nworkers > 1 ? nworkers * FW_INBOX_SIZE : 0),
				       MBUF_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (pool == NULL) {
		LOG(ERR, "mbuf pool: %s\n", rte_strerror(rte_errno));
		rc = -ENOMEM;
		goto out_acl;
	}
	for (i = 0; i < shared.nports; i++) {
		rc = port_setup(shared.port_list[i], (uint16_t)nworkers, pool);
		if (rc) {
			LOG(ERR, "port %u: setup failed: %s\n", shared.port_list[i], strerror(-rc));
			goto out_pool;
		}
	}
	workers = rte_zmalloc("fw_workers", sizeof(*workers) * nworkers, RTE_CACHE_LINE_SIZE);
	if (workers == NULL) {
		rc = -ENOMEM;
		goto out_pool;
	}
	for (i = 0; i < nworkers; i++) {
		rc = fw_worker_init(&workers[i], &shared, i, (int)rte_socket_id());
		if (rc) {
			LOG(ERR, "worker %u: %u connections (and its inbox) do not fit: %s\n", i,
			    conf.max_conns, strerror(-rc));
			goto out_workers;
		}
	}
	/* The preload may have installed handlers: it puts back what was there, then ours. */
	ckpt_preload_join();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* Rules change off the fast path from now on: the table's changes, and SIGHUP. */
	rc = fw_live_follow(live, conf.rules_source[0] ? conf.rules_source + 4 : NULL, reread_rules,
			    &conf, err, sizeof(err));
	if (rc) {
		LOG(ERR, "%s\n", err);
		goto out_workers;
	}
	signal(SIGHUP, on_hup);
	fw_telemetry_register(&shared, workers, nworkers);
	sb_stats.state = conf.standby ? FW_ROLE_WAITING : FW_ROLE_PRIMARY;
	fw_telemetry_standby(&sb_stats);
	rc = checkpoint_start(&conf);
	if (rc == 1) { /* a standby told to stop before it took over */
		rc = 0;
		goto out_workers;
	}
	if (rc)
		goto out_workers;
	if (shared.fenced)
		goto out_fenced;
	for (i = 0; i < shared.nports; i++) {
		rc = rte_eth_dev_start(shared.port_list[i]);
		if (rc) {
			LOG(ERR, "port %u: start failed: %s\n", shared.port_list[i], strerror(-rc));
			goto out_stop;
		}
	}
	for (i = 0; i < shared.nports; i++)
		drop_stale_rx(shared.port_list[i], (uint16_t)nworkers);
	t_start.ready = fw_mono_ns();
	LOG(INFO, "forwarding: %u pairs, %u workers, %u connections each\n", conf.npairs, nworkers,
	    conf.max_conns);
	printf("holdfast: ready\n");
	print_timing(&conf);
	fflush(stdout);
	if (sb_stats.detect_ns)
		fw_notify_ready("forwarding: took over (%s) with %" PRIu64 " connections",
				sb_stats.reason, sb_stats.st.conns);
	else
		fw_notify_ready("forwarding: %u pairs, %u workers; %" PRIu64
				" connections restored in %.1f ms",
				conf.npairs, nworkers, restore_stats.conns,
				MS(t_start.ckpt_connect, t_start.restore));

	i = 1;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if ((int)lcore != conf.ckpt_lcore && i < nworkers)
			rte_eal_remote_launch(fw_worker_main, &workers[i++], lcore);
	}
	fw_worker_main(&workers[0]);
	/* The workers only: the checkpoint lcore runs until checkpoint_stop() stops it. */
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if ((int)lcore != conf.ckpt_lcore)
			rte_eal_wait_lcore(lcore);
	}
	rc = 0;

out_stop:
	fw_notify_stopping(shared.fenced ? "fenced: a standby took over" : "stopping");
	for (i = 0; i < shared.nports; i++)
		rte_eth_dev_stop(shared.port_list[i]);
	print_counters();
out_fenced:
	if (shared.fenced) {
		LOG(ERR,
		    "fenced: a standby took over the checkpoint (epoch %" PRIu64 ", ours %" PRIu64
		    "); stopping\n",
		    fencing_epoch(), shared.epoch);
		rc = FW_EXIT_FENCED;
	}
out_workers:
	checkpoint_stop();
	for (i = 0; workers && i < nworkers; i++)
		fw_worker_release(&workers[i]);
	rte_free(workers);
out_pool:
	for (i = 0; i < shared.nports; i++)
		rte_eth_dev_close(shared.port_list[i]);
	rte_mempool_free(pool);
out_acl:
	signal(SIGHUP, SIG_IGN);
	fw_live_destroy(&live);
out_eal:
	ckpt_preload_join(); /* an error before the join: no thread left in dlopen at exit */
	fw_config_release(&conf);
	rte_eal_cleanup();
	return rc == FW_EXIT_FENCED ? FW_EXIT_FENCED : rc ? 1 : 0;
}
