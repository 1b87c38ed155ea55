/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * holdfast: a transparent bump in the wire between port pairs (0<->1, 2<->3, ...),
 * tracking every connection and enforcing the rules on what opens one.
 *
 *   holdfast [EAL args] -- [--config FILE] [--max-conns N] [--rules nft:TABLE]
 *            [--policy drop|reject|accept] [--non-ip pass|drop] [--fragments pass|drop]
 *            [--ip-options pass|drop] [--pair A,B,INSIDE]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "fw_config.h"
#include "fw_nft.h"
#include "fw_telemetry.h"
#include "fw_worker.h"

RTE_LOG_REGISTER_DEFAULT(fw_logtype_app, INFO)
#define LOG(level, ...) rte_log(RTE_LOG_##level, fw_logtype_app, "holdfast: " __VA_ARGS__)

#define NB_RXD	   1024
#define NB_TXD	   1024
#define MBUF_CACHE 256

static struct fw_shared shared;
static struct fw_worker *workers;
static unsigned int nworkers;

static void on_signal(int sig)
{
	(void)sig;
	shared.quit = true;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [EAL args] -- [--config FILE] [--max-conns N] [--rules nft:TABLE]\n"
		"       [--policy drop|reject|accept] [--non-ip pass|drop] "
		"[--fragments pass|drop]\n"
		"       [--ip-options pass|drop] [--pair A,B,INSIDE] [--ckpt TARGET|none]\n",
		prog);
}

/* Flags are config lines: one grammar, one set of error messages. */
static int parse_args(int argc, char **argv, struct fw_config *conf)
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
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char err[320], line[256];
	bool flag_pairs = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = NULL;

		switch (c) {
		case 'c':
			rc = fw_config_load(conf, optarg, err, sizeof(err));
			if (rc) {
				LOG(ERR, "%s\n", err);
				return rc;
			}
			continue;
		case 'P': {
			unsigned int a, b, in;

			if (sscanf(optarg, "%u,%u,%u", &a, &b, &in) != 3) {
				LOG(ERR, "--pair %s: expected A,B,INSIDE e.g. 0,1,0\n", optarg);
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
		case 'h':
		default:
			usage(argv[0]);
			return -EINVAL;
		}
		if (name)
			snprintf(line, sizeof(line), "%s %s", name, optarg);
		rc = fw_config_set(conf, line, "command line", err, sizeof(err));
		if (rc) {
			LOG(ERR, "%s\n", err);
			return rc;
		}
	}
	if (optind != argc) {
		LOG(ERR, "unexpected argument '%s'\n", argv[optind]);
		usage(argv[0]);
		return -EINVAL;
	}
	rc = fw_config_check(conf, err, sizeof(err));
	if (rc)
		LOG(ERR, "%s\n", err);
	return rc;
}

/* Symmetric Toeplitz key: both directions of a flow hash to the same queue. */
static uint8_t sym_rss_key[40] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

static int port_setup(uint16_t port, uint16_t nq, struct rte_mempool *pool)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc)
		return rc;
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		LOG(ERR, "port %u (%s) has %u rx / %u tx queues; %u workers need %u each\n", port,
		    info.driver_name, info.max_rx_queues, info.max_tx_queues, nq, nq);
		return -EINVAL;
	}
	if (nq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = sym_rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(sym_rss_key);
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			info.flow_type_rss_offloads;
		if (conf.rx_adv_conf.rss_conf.rss_hf == 0) {
			LOG(ERR,
			    "port %u (%s) cannot spread flows over queues (no RSS); run one "
			    "worker\n",
			    port, info.driver_name);
			return -EINVAL;
		}
	}
	rc = rte_eth_dev_configure(port, nq, nq, &conf);
	if (rc)
		return rc;
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

static struct fw_checkpointer *ckpts;

struct restore_walk {
	uint64_t ppw; /* slot pairs per worker */
	struct fw_restore_stats st;
};

static int restore_rec(const struct ckpt_rec *rec, void *arg)
{
	struct restore_walk *rw = arg;
	uint64_t wi = rec->slot_pair / rw->ppw;

	/* The slot pair says which worker wrote it: the one whose table takes it back. */
	if (wi >= nworkers) {
		rw->st.conflicts++;
		return 0;
	}
	fw_restore_add(workers[wi].table, ckpts[wi].slots, rec, &rw->st);
	return 0;
}

/* Open every worker's checkpointer and restore the connections before any port starts. */
static int checkpoint_start(const struct fw_config *conf)
{
	const uint64_t ppw = (uint64_t)conf->max_conns * 2; /* TCP + FTP at most */
	const uint32_t slot = 128;
	uint64_t size = conf->ckpt_size, t0;
	struct restore_walk rw = {.ppw = ppw};
	struct ckpt_scan_stats ss;
	int rc;

	if (strcmp(conf->ckpt_target, "none") == 0)
		return 0;
	if (strncmp(conf->ckpt_target, "pmem:/", 6) == 0) {
		/* The file outlives the firewall; its folder may not exist on a first start. */
		char dir[256];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", conf->ckpt_target + 5);
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0700);
		}
	}
	if (size == 0)
		size = ppw * nworkers * 2 * slot + (64u << 20);
	ckpts = rte_zmalloc("fw_ckpts", sizeof(*ckpts) * nworkers, 0);
	if (ckpts == NULL)
		return -ENOMEM;
	{
		uint8_t secret[64];
		struct fw_ckpt_conf cc = {
			.target = conf->ckpt_target,
			.region = conf->ckpt_region,
			.store_size = size,
			.pairs = ppw * nworkers,
			.slot_size = slot,
			.tenant = conf->ckpt_tenant,
			.secret = secret,
		};

		if (conf->ckpt_secret_file[0]) {
			rc = ckpt_secret_load(conf->ckpt_secret_file, conf->ckpt_tenant, secret,
					      sizeof(secret));
			if (rc < 0) {
				LOG(ERR,
				    "ckpt-secret-file %s: no usable secret for tenant %s: %s\n",
				    conf->ckpt_secret_file, conf->ckpt_tenant, strerror(-rc));
				return rc;
			}
			cc.secret_len = (size_t)rc;
		}
		cc.allow_shm = strncmp(conf->ckpt_target, "ofi+shm://", 10) == 0;
		for (unsigned int i = 0; i < nworkers; i++) {
			rc = fw_checkpointer_init(&ckpts[i], &cc, workers[i].table,
						  (uint32_t)(ppw * i), (uint32_t)ppw,
						  conf->max_conns);
			if (rc) {
				LOG(ERR, "checkpoint target %s: %s\n", conf->ckpt_target,
				    strerror(-rc));
				return rc;
			}
			workers[i].ckpt = &ckpts[i];
		}
		memset(secret, 0, sizeof(secret));
	}
	if (ckpts[0].r == NULL) {
		LOG(WARNING,
		    "checkpoint target %s unreachable: starting with no connections "
		    "restored\n",
		    conf->ckpt_target);
		return 0;
	}
	t0 = rte_get_tsc_cycles();
	rc = ckpt_state_scan(ckpts[0].r, CKPT_SCAN_TOMBSTONES, restore_rec, &rw, &ss);
	if (rc < 0) {
		LOG(ERR, "restore from %s: %s\n", conf->ckpt_target, strerror(-rc));
		return rc;
	}
	for (unsigned int i = 0; i < nworkers; i++)
		fw_restore_finish(workers[i].table, ckpts[i].slots, &workers[i].ctx,
				  fw_worker_now(&workers[i]), &rw.st);
	LOG(NOTICE,
	    "restored %" PRIu64 " connections (%" PRIu64 " slices) from %s in %.1f ms; skipped: "
	    "%" PRIu64 " unknown module, %" PRIu64 " newer version, %" PRIu64 " bad, %" PRIu64
	    " conflicting, %" PRIu64 " missing a required slice, %" PRIu64 " invalid records\n",
	    rw.st.conns, rw.st.slices, conf->ckpt_target,
	    (double)(rte_get_tsc_cycles() - t0) * 1e3 / (double)rte_get_tsc_hz(),
	    rw.st.unknown_module, rw.st.newer_version, rw.st.bad_slice, rw.st.conflicts,
	    rw.st.dropped_missing, ss.invalid);
	return 0;
}

static void checkpoint_stop(void)
{
	for (unsigned int i = 0; ckpts && i < nworkers; i++) {
		fw_checkpointer_tick(&ckpts[i], fw_worker_now(&workers[i]));
		if (ckpts[i].r != NULL)
			ckpt_sync(ckpts[i].r);
		fw_checkpointer_release(&ckpts[i]);
	}
	rte_free(ckpts);
	ckpts = NULL;
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
	printf("  pass %" PRIu64 " arp %" PRIu64 " conns new %" PRIu64 " related %" PRIu64
	       " expired %" PRIu64 "\n",
	       t.pass, t.arp, t.conn_new, t.conn_related, t.conn_expired);
	for (int r = 1; r < FW_DROP_REASON_MAX; r++)
		if (t.drop[r])
			printf("  drop %s %" PRIu64 "\n",
			       fw_drop_reason_name((enum fw_drop_reason)r), t.drop[r]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct fw_config conf;
	struct rte_mempool *pool = NULL;
	char err[320];
	unsigned int lcore, i;
	int rc, n;

	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "holdfast: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	fw_config_defaults(&conf);
	rc = parse_args(argc - n, argv + n, &conf);
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
	fw_modconf_build(&conf, &shared.modconf);
	shared.tsc_hz = rte_get_tsc_hz();
	rc = fw_id_secret_init(&shared.secret);
	if (rc)
		goto out_eal;
	shared.acl = fw_acl_build(&conf.rules, "fwacl", (int)rte_socket_id(), err, sizeof(err));
	if (shared.acl == NULL) {
		LOG(ERR, "rules: %s\n", err);
		rc = -errno;
		goto out_eal;
	}
	LOG(INFO, "%u rules, default policy %s\n", conf.rules.n, fw_action_name(conf.rules.policy));
	rc = ports_map(&conf);
	if (rc)
		goto out_acl;

	nworkers = rte_lcore_count();
	if (nworkers > FW_MAX_WORKER)
		nworkers = FW_MAX_WORKER;
	pool = rte_pktmbuf_pool_create(
		"fw_mbufs", shared.nports * nworkers * (NB_RXD + NB_TXD) + 4096, MBUF_CACHE, 0,
		RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
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
			LOG(ERR, "worker %u: %u connections do not fit: %s\n", i, conf.max_conns,
			    strerror(-rc));
			goto out_workers;
		}
	}
	rc = checkpoint_start(&conf);
	if (rc)
		goto out_workers;
	fw_telemetry_register(&shared, workers, nworkers);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (i = 0; i < shared.nports; i++) {
		rc = rte_eth_dev_start(shared.port_list[i]);
		if (rc) {
			LOG(ERR, "port %u: start failed: %s\n", shared.port_list[i], strerror(-rc));
			goto out_stop;
		}
	}
	LOG(INFO, "forwarding: %u pairs, %u workers, %u connections each\n", conf.npairs, nworkers,
	    conf.max_conns);
	printf("holdfast: ready\n");
	fflush(stdout);

	i = 1;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (i < nworkers)
			rte_eal_remote_launch(fw_worker_main, &workers[i++], lcore);
	}
	fw_worker_main(&workers[0]);
	rte_eal_mp_wait_lcore();
	print_counters();
	rc = 0;

out_stop:
	for (i = 0; i < shared.nports; i++)
		rte_eth_dev_stop(shared.port_list[i]);
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
	fw_acl_free((struct fw_acl **)&shared.acl);
out_eal:
	fw_config_release(&conf);
	rte_eal_cleanup();
	return rc ? 1 : 0;
}
