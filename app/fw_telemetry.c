/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <rte_telemetry.h>

#include "fw_telemetry.h"
#include "tcp/fw_tcp.h"
#include "udp/fw_udp.h"

static struct {
	struct fw_shared *sh;
	struct fw_worker *w;
	unsigned int n;
} tel;

void fw_counters_sum(const struct fw_worker *w, unsigned int n, struct fw_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < n; i++) {
		const uint64_t *src = (const uint64_t *)&w[i].cnt;
		uint64_t *dst = (uint64_t *)out;

		for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
			dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
	}
}

/* Every counter of @p t into the dict @p d, by the keys /holdfast/stats always had. */
static void counters_dict(struct rte_tel_data *d, const struct fw_counters *t)
{
	char key[64];

	rte_tel_data_add_dict_u64(d, "pass", t->pass);
	rte_tel_data_add_dict_u64(d, "arp", t->arp);
	rte_tel_data_add_dict_u64(d, "nd", t->nd);
	rte_tel_data_add_dict_u64(d, "icmp_related", t->icmp_related);
	rte_tel_data_add_dict_u64(d, "icmp_pass", t->icmp_pass);
	rte_tel_data_add_dict_u64(d, "icmp6_pass", t->icmp6_pass);
	rte_tel_data_add_dict_u64(d, "conn_new", t->conn_new);
	rte_tel_data_add_dict_u64(d, "conn_related", t->conn_related);
	rte_tel_data_add_dict_u64(d, "related_cross", t->related_cross);
	rte_tel_data_add_dict_u64(d, "expect_used_elsewhere", t->expect_used_elsewhere);
	/* Frames another worker's expectation admitted, held until its owner's checkpoint
	 * forgot it, and those dropped after all (no room, or the owner stalled). */
	rte_tel_data_add_dict_u64(d, "held", t->held);
	rte_tel_data_add_dict_u64(d, "held_dropped", t->held_dropped);
	rte_tel_data_add_dict_u64(d, "conn_expired", t->conn_expired);
	rte_tel_data_add_dict_u64(d, "expect_expired", t->expect_expired);
	rte_tel_data_add_dict_u64(d, "reject_sent", t->reject_sent);
	rte_tel_data_add_dict_u64(d, "reject_limited", t->reject_limited);
	for (int r = 1; r < FW_DROP_REASON_MAX; r++) {
		snprintf(key, sizeof(key), "drop_%s", fw_drop_reason_name((enum fw_drop_reason)r));
		rte_tel_data_add_dict_u64(d, key, t->drop[r]);
	}
	/* Whole bursts a primary did not look at: its lease ran out, or it was fenced. */
	rte_tel_data_add_dict_u64(d, "drop_lease_lapsed", t->drop_lease_lapsed);
	rte_tel_data_add_dict_u64(d, "drop_fenced", t->drop_fenced);
	/* Several workers: frames of another worker's connection, handed to it / from others. */
	rte_tel_data_add_dict_u64(d, "handoff_out", t->handoff_out);
	rte_tel_data_add_dict_u64(d, "handoff_in", t->handoff_in);
	for (int m = 1; m < FW_MOD_MAX; m++) {
		if (fw_modules[m] == NULL)
			continue;
		snprintf(key, sizeof(key), "module_%s_packets", fw_modules[m]->name);
		rte_tel_data_add_dict_u64(d, key, t->mod_pkts[m]);
	}
	for (unsigned int i = 0; i < tel.sh->nports; i++) {
		const uint16_t p = tel.sh->port_list[i];

		snprintf(key, sizeof(key), "port%u_rx", p);
		rte_tel_data_add_dict_u64(d, key, t->rx[p]);
		snprintf(key, sizeof(key), "port%u_tx", p);
		rte_tel_data_add_dict_u64(d, key, t->tx[p]);
		snprintf(key, sizeof(key), "port%u_tx_full", p);
		rte_tel_data_add_dict_u64(d, key, t->tx_full[p]);
	}
}

/*
 * /holdfast/stats: the totals over every worker; /holdfast/stats,N: worker N's own, by the
 * same keys (a port's rx there is what that worker's queue received, its pass and drops
 * what it decided, hand-offs from others included).
 */
static int stats_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct fw_counters t;
	char *end;

	(void)cmd;
	if (params != NULL && *params != '\0') {
		unsigned long i = strtoul(params, &end, 10);

		if (*end != '\0' || i >= tel.n)
			return -EINVAL;
		fw_counters_sum(&tel.w[i], 1, &t);
	} else {
		fw_counters_sum(tel.w, tel.n, &t);
	}
	rte_tel_data_start_dict(d);
	counters_dict(d, &t);
	return 0;
}

/*
 * /holdfast/workers: per worker, what it received, decided and handed over, at a glance:
 * {"workers": N, "worker0": {...}, ...}; every counter of one is /holdfast/stats,N.
 */
static int workers_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char key[48];

	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "workers", tel.n);
	for (unsigned int i = 0; i < tel.n; i++) {
		struct rte_tel_data *wd = rte_tel_data_alloc();
		struct fw_counters t;
		uint64_t rx = 0, tx = 0, drops = 0;

		if (wd == NULL)
			return -ENOMEM;
		fw_counters_sum(&tel.w[i], 1, &t);
		for (unsigned int k = 0; k < tel.sh->nports; k++) {
			rx += t.rx[tel.sh->port_list[k]];
			tx += t.tx[tel.sh->port_list[k]];
		}
		for (int r = 1; r < FW_DROP_REASON_MAX; r++)
			drops += t.drop[r];
		rte_tel_data_start_dict(wd);
		rte_tel_data_add_dict_u64(wd, "rx", rx);
		rte_tel_data_add_dict_u64(wd, "tx", tx);
		rte_tel_data_add_dict_u64(wd, "pass", t.pass);
		rte_tel_data_add_dict_u64(wd, "drop", drops + t.drop_lease_lapsed + t.drop_fenced);
		for (int r = 1; r < FW_DROP_REASON_MAX; r++) {
			if (t.drop[r] == 0)
				continue;
			snprintf(key, sizeof(key), "drop_%s",
				 fw_drop_reason_name((enum fw_drop_reason)r));
			rte_tel_data_add_dict_u64(wd, key, t.drop[r]);
		}
		rte_tel_data_add_dict_u64(wd, "handoff_out", t.handoff_out);
		rte_tel_data_add_dict_u64(wd, "handoff_in", t.handoff_in);
		rte_tel_data_add_dict_u64(wd, "conn_new", t.conn_new);
		rte_tel_data_add_dict_u64(wd, "conns", fw_table_count(tel.w[i].table));
		snprintf(key, sizeof(key), "worker%u", i);
		rte_tel_data_add_dict_container(d, key, wd, 0);
	}
	return 0;
}

/* How long a worker has to hand a page over (fw_conns_request). */
#define CONNS_TIMEOUT_MS 1000

/*
 * @p s as a reply may echo it, at most @p len - 1 characters: what JSON would want escaped
 * (a quote, a backslash, a control character) shown as '?', so that a hostile parameter
 * cannot break the reply.
 */
static void printable(char *out, size_t len, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < len && s[i] != '\0'; i++)
		out[i] = s[i] >= ' ' && s[i] <= '~' && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
	out[i] = '\0';
}

static void conns_error(struct rte_tel_data *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A refusal the client can read: {"error": "..."} (a -errno reply reaches it as null). */
static void conns_error(struct rte_tel_data *d, const char *fmt, ...)
{
	char msg[RTE_TEL_MAX_STRING_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "error", msg);
}

/* One connection of a page as a dict: the opener's side first, as conntrack -L shows it. */
static struct rte_tel_data *conn_dict(const struct fw_conn_entry *e, uint64_t now)
{
	struct rte_tel_data *cd = rte_tel_data_alloc();
	const int o = e->orig_side, r = !e->orig_side;
	const int af = e->key.family == 4 ? AF_INET : AF_INET6;
	char a[INET6_ADDRSTRLEN];
	const char *state;

	if (cd == NULL)
		return NULL;
	rte_tel_data_start_dict(cd);
	switch (e->key.proto) {
	case IPPROTO_TCP:
		rte_tel_data_add_dict_string(cd, "proto", "tcp");
		state = fw_tcp_state_name(e->state);
		break;
	case IPPROTO_UDP:
		rte_tel_data_add_dict_string(cd, "proto", "udp");
		state = fw_udp_state_name(e->state);
		break;
	default:
		rte_tel_data_add_dict_u64(cd, "proto", e->key.proto);
		state = "?";
	}
	rte_tel_data_add_dict_u64(cd, "family", e->key.family);
	inet_ntop(af, e->key.addr[o], a, sizeof(a));
	rte_tel_data_add_dict_string(cd, "src", a);
	rte_tel_data_add_dict_u64(cd, "sport", ntohs(e->key.port[o]));
	inet_ntop(af, e->key.addr[r], a, sizeof(a));
	rte_tel_data_add_dict_string(cd, "dst", a);
	rte_tel_data_add_dict_u64(cd, "dport", ntohs(e->key.port[r]));
	rte_tel_data_add_dict_string(cd, "state", state);
	rte_tel_data_add_dict_u64(cd, "idle_ms",
				  now > e->last_ns ? (now - e->last_ns) / 1000000 : 0);
	rte_tel_data_add_dict_u64(cd, "expires_ms",
				  e->expire_ns > now ? (e->expire_ns - now) / 1000000 : 0);
	rte_tel_data_add_dict_u64(cd, "restored", !!(e->flags & FW_CONN_F_RESTORED));
	/* A standby's shadow table: followed from the primary's log, not finished yet. */
	rte_tel_data_add_dict_u64(cd, "following", !!(e->flags & FW_CONN_F_RESTORING));
	rte_tel_data_add_dict_u64(cd, "ftp", !!(e->present & (1u << FW_MOD_FTP)));
	return cd;
}

/*
 * /holdfast/conns,W,CURSOR[,MAX]: a page of worker W's connections, from table position
 * CURSOR on, MAX (1..FW_CONNS_PAGE_MAX, default the most) at most, handed over by the
 * worker itself (fw_conns.h): {"worker", "cursor", "next" (where the next page starts),
 * "end" (1: this was the last), "conns" (in this page), "0": {...}, "1": {...}, ...}.
 */
static int conns_page(const char *params, struct rte_tel_data *d)
{
	struct fw_conns_params q;
	struct fw_conns_page *pg;
	char key[16];
	uint64_t now;
	int rc;

	if (fw_conns_params_parse(params, &q) != 0) {
		char shown[41];

		printable(shown, sizeof(shown), params);
		conns_error(d, "parameters: WORKER,CURSOR[,MAX] (decimal, MAX 1 to %d), not %s",
			    FW_CONNS_PAGE_MAX, shown);
		return 0;
	}
	if (q.worker >= tel.n) {
		conns_error(d, "no worker %u (%u workers)", q.worker, tel.n);
		return 0;
	}
	if (q.cursor > fw_table_slots(tel.w[q.worker].table)) {
		conns_error(d, "cursor %u past the table's end (%u)", q.cursor,
			    fw_table_slots(tel.w[q.worker].table));
		return 0;
	}
	pg = malloc(sizeof(*pg));
	if (pg == NULL)
		return -ENOMEM;
	rc = fw_conns_request(&tel.w[q.worker].conns, tel.w[q.worker].table, q.cursor, q.max,
			      CONNS_TIMEOUT_MS, pg);
	if (rc == -ETIMEDOUT || rc == -EBUSY) {
		conns_error(d, "worker %u did not answer in %d ms (starting, restoring, stopping?)",
			    q.worker, CONNS_TIMEOUT_MS);
		free(pg);
		return 0;
	}
	if (rc) {
		free(pg);
		return rc;
	}
	now = fw_worker_now(&tel.w[q.worker]);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "worker", q.worker);
	rte_tel_data_add_dict_u64(d, "cursor", q.cursor);
	rte_tel_data_add_dict_u64(d, "next", pg->next);
	rte_tel_data_add_dict_u64(d, "end", pg->end);
	rte_tel_data_add_dict_u64(d, "conns", pg->n);
	for (uint32_t i = 0; i < pg->n; i++) {
		struct rte_tel_data *cd = conn_dict(&pg->e[i], now);

		if (cd == NULL) {
			free(pg);
			return -ENOMEM;
		}
		snprintf(key, sizeof(key), "%u", i);
		rte_tel_data_add_dict_container(d, key, cd, 0);
	}
	free(pg);
	return 0;
}

/*
 * /holdfast/conns: connections per worker, the capacity and the expectations (counts);
 * with parameters, a page of one worker's connections (conns_page).
 */
static int conns_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
	uint64_t total = 0, expect = 0, cap = 0;
	char key[32];

	(void)cmd;
	if (params != NULL && *params != '\0')
		return conns_page(params, d);
	rte_tel_data_start_dict(d);
	for (unsigned int i = 0; i < tel.n; i++) {
		uint32_t c = fw_table_count(tel.w[i].table);

		snprintf(key, sizeof(key), "worker%u", i);
		rte_tel_data_add_dict_u64(d, key, c);
		total += c;
		cap += fw_table_capacity(tel.w[i].table);
		expect += fw_table_expect_count(tel.w[i].table);
		if (tel.w[i].sh->board != NULL)
			expect += fw_board_count(tel.w[i].sh->board, i);
	}
	rte_tel_data_add_dict_u64(d, "total", total);
	rte_tel_data_add_dict_u64(d, "capacity", cap);
	rte_tel_data_add_dict_u64(d, "expectations", expect);
	return 0;
}

static const char *tel_io_where = "inline";

void fw_telemetry_ckpt_io(const char *where)
{
	tel_io_where = where;
}

static int ckpt_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct fw_ckpt_stats t = {0}, k;
	uint64_t down = 0;
	int io_tid = 0;
	char key[48];

	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (unsigned int i = 0; i < tel.n; i++) {
		if (tel.w[i].ckpt == NULL)
			continue;
		fw_checkpointer_stats(tel.w[i].ckpt, &k);
		for (int m = 1; m < FW_MOD_MAX; m++)
			t.slices[m] += k.slices[m];
		t.tombstones += k.tombstones;
		t.tombstones_owed += k.tombstones_owed;
		t.bytes += k.bytes;
		t.failures += k.failures;
		t.deferred += k.deferred;
		t.log_records += k.log_records;
		t.log_gaps += k.log_gaps;
		t.lag += k.lag;
		down += k.down;
		t.reconnects += k.reconnects;
		t.queued += k.queued;
		t.ring_full += k.ring_full;
		t.handed += k.handed;
		t.worker_io_passes += k.worker_io_passes;
		t.io_passes += k.io_passes;
		if (k.io_tid != 0)
			io_tid = k.io_tid;
		if (k.oldest_ns != 0 && (t.oldest_ns == 0 || k.oldest_ns < t.oldest_ns))
			t.oldest_ns = k.oldest_ns;
	}
	for (int m = 1; m < FW_MOD_MAX; m++) {
		if (fw_modules[m] == NULL)
			continue;
		snprintf(key, sizeof(key), "slices_%s", fw_modules[m]->name);
		rte_tel_data_add_dict_u64(d, key, t.slices[m]);
	}
	rte_tel_data_add_dict_u64(d, "tombstones", t.tombstones);
	rte_tel_data_add_dict_u64(d, "tombstones_owed", t.tombstones_owed);
	rte_tel_data_add_dict_u64(d, "bytes", t.bytes);
	rte_tel_data_add_dict_u64(d, "failures", t.failures);
	rte_tel_data_add_dict_u64(d, "deferred", t.deferred);
	rte_tel_data_add_dict_u64(d, "log_records", t.log_records);
	rte_tel_data_add_dict_u64(d, "log_gaps", t.log_gaps);
	rte_tel_data_add_dict_u64(d, "queue_depth", t.queued);
	rte_tel_data_add_dict_u64(d, "workers_disconnected", down);
	/* Issue 15: the records handed from the workers to the I/O, and where it runs. */
	rte_tel_data_add_dict_u64(d, "handed", t.handed);
	rte_tel_data_add_dict_u64(d, "ring_full", t.ring_full);
	rte_tel_data_add_dict_string(d, "io", tel_io_where);
	rte_tel_data_add_dict_u64(d, "io_tid", (uint64_t)io_tid);
	rte_tel_data_add_dict_u64(d, "io_passes", t.io_passes);
	rte_tel_data_add_dict_u64(d, "worker_io_passes", t.worker_io_passes);
	rte_tel_data_add_dict_u64(d, "reconnects", t.reconnects);
	/* The recovery point: slice changes a crash now would lose, and how old the oldest is. */
	rte_tel_data_add_dict_u64(d, "not_durable", t.lag);
	rte_tel_data_add_dict_u64(d, "oldest_queued_ms",
				  t.oldest_ns ? (fw_worker_now(&tel.w[0]) - t.oldest_ns) / 1000000
					      : 0);
	return 0;
}

static const struct fw_standby_stats *tel_sb;

static int standby_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct fw_standby_stats *sb = tel_sb;
	uint64_t caught_up;

	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(
		d, "state", fw_role_state_name(__atomic_load_n(&sb->state, __ATOMIC_RELAXED)));
	rte_tel_data_add_dict_string(
		d, "death_notice",
		fw_death_notice_name(__atomic_load_n(&sb->death_notice, __ATOMIC_RELAXED)));
	rte_tel_data_add_dict_u64(d, "log_records", sb->log_records);
	rte_tel_data_add_dict_u64(d, "rescans", sb->rescans);
	rte_tel_data_add_dict_u64(d, "scan_records", sb->scan_records);
	rte_tel_data_add_dict_u64(d, "connections", sb->st.conns);
	/* How far behind the primary: what it wrote that is not read yet, and since when. */
	rte_tel_data_add_dict_u64(d, "log_bytes_unread", sb->log_unread);
	caught_up = __atomic_load_n(&sb->caught_up_at_ns, __ATOMIC_RELAXED);
	rte_tel_data_add_dict_u64(d, "ms_since_caught_up",
				  caught_up ? (fw_mono_ns() - caught_up) / 1000000 : 0);
	rte_tel_data_add_dict_u64(d, "epoch", sb->epoch);
	rte_tel_data_add_dict_u64(d, "lost_races", sb->lost_races);
	return 0;
}

int fw_telemetry_standby(const struct fw_standby_stats *sb)
{
	tel_sb = sb;
	return rte_telemetry_register_cmd("/holdfast/standby", standby_cmd,
					  "Role, and how far a standby is behind its primary");
}

int fw_telemetry_register(struct fw_shared *sh, struct fw_worker *w, unsigned int n)
{
	int rc;

	tel.sh = sh;
	tel.w = w;
	tel.n = n;
	rc = rte_telemetry_register_cmd(
		"/holdfast/stats", stats_cmd,
		"Counters per port, module, verdict and drop reason (totals); "
		"param N: worker N's");
	if (rc == 0)
		rc = rte_telemetry_register_cmd(
			"/holdfast/workers", workers_cmd,
			"Per worker: received, decided, dropped, handed off");
	if (rc == 0)
		rc = rte_telemetry_register_cmd(
			"/holdfast/conns", conns_cmd,
			"Tracked connections per worker and expectations; "
			"params W,CURSOR[,MAX]: a page of worker W's connections");
	if (rc == 0)
		rc = rte_telemetry_register_cmd("/holdfast/ckpt", ckpt_cmd,
						"Checkpoints written and the recovery point");
	return rc;
}
