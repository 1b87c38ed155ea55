/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Load driver for the checkpoint integration tests.
 *
 *   ckpt_load write  TARGET REGION PAIRS GENS [--hold] [--batched] [--hot N] [--rate R]
 *		      [--seconds S] [--until-whole S]
 *	create REGION and write GENS generations of PAIRS slices; print "ack PAIR GEN" for
 *	each slice once ckpt_durable() covers it (flushed to stdout at once), "done" at the
 *	end, then with --hold wait to be killed. --hot N: generations after the first go to
 *	pairs 0..N-1 only (the rest keep generation 1: long-lived slices). --rate: at most R
 *	slices a second (polling meanwhile); --seconds: stop after the generation under way
 *	once S seconds have passed. --until-whole: after "done", go on polling until every
 *	member of the group is ok again (exit 5 if not within S seconds). A group writer
 *	prints its longest ckpt_poll(), overall and while a rebuild was under way, and how
 *	long each rebuild took.
 *   ckpt_load append TARGET REGION FIRST COUNT
 *	open append REGION (create it, RING_SIZE of ring, if missing), append the records of
 *	pairs FIRST .. FIRST + COUNT - 1 (generation 1), wait until they are durable, print
 *	"done".
 *   ckpt_load verify TARGET REGION ACKFILE [--all GENS] [--allow-torn]
 *	open REGION, read it back, check every record's content against (pair, generation),
 *	and check every acknowledged slice is there (at that generation or a newer one).
 *	--all: every pair must hold generation GENS. Torn slots fail unless --allow-torn.
 *
 * Environment: HF_SECRET_FILE, HF_TENANT (default "default"), HF_ALLOW_SHM=1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "holdfast/ckpt.h"
#include "holdfast/ckpt_group.h"

#define PAYLOAD_LEN 48
#define SLOT_SIZE   256
#define RING_SIZE   (1u << 20)
#define FLUSH_EVERY 512

static uint8_t secret[64];

static void payload_of(uint32_t pair, uint64_t gen, uint8_t *p)
{
	for (int i = 0; i < PAYLOAD_LEN; i++)
		p[i] = (uint8_t)(pair * 31u + gen * 7u + (unsigned int)i * 13u + (pair >> 8));
}

static void record_of(uint32_t pair, uint64_t gen, uint8_t *payload, struct ckpt_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->module_id = 1;
	rec->slice_version = 1;
	rec->conn_id = (uint64_t)pair + 1;
	rec->generation = gen;
	rec->slot_pair = pair;
	rec->key.family = 4;
	rec->key.proto = 6;
	rec->key.port[0] = (uint16_t)(pair & 0xffff);
	rec->key.port[1] = 443;
	rec->key.addr[0][0] = 10;
	rec->key.addr[0][1] = (uint8_t)(pair >> 16);
	rec->key.addr[0][2] = (uint8_t)(pair >> 8);
	rec->key.addr[0][3] = (uint8_t)pair;
	rec->key.addr[1][0] = 192;
	rec->key.addr[1][3] = 1;
	payload_of(pair, gen, payload);
	rec->payload = payload;
	rec->payload_len = PAYLOAD_LEN;
}

static struct ckpt_client *connect_env(const char *target)
{
	struct ckpt_client_opts o = {0};
	const char *sf = getenv("HF_SECRET_FILE");
	int n;

	o.tenant = getenv("HF_TENANT") ? getenv("HF_TENANT") : "default";
	o.allow_shm = getenv("HF_ALLOW_SHM") != NULL;
	o.timeout_ms = 5000;
	if (sf != NULL) {
		n = ckpt_secret_load(sf, o.tenant, secret, sizeof(secret));
		if (n < 0) {
			fprintf(stderr, "ckpt_load: secret for %s: %s\n", o.tenant, strerror(-n));
			return NULL;
		}
		o.secret = secret;
		o.secret_len = (size_t)n;
	}
	return ckpt_connect(target, &o);
}

struct posted {
	uint64_t ticket;
	uint32_t pair;
	uint32_t gen;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How long ckpt_poll() takes, and how long a group's rebuilds do. */
struct poll_watch {
	bool group;
	double longest, longest_rebuild;
	uint64_t polls_rebuilding;
	double rebuild_since; /* 0: no rebuild under way */
	unsigned int rebuilds;
};

static bool rebuilding(struct ckpt_region *r)
{
	struct ckpt_group_health gh;

	return ckpt_group_health(r, false, &gh) == 0 && gh.rebuilding;
}

static int poll_timed(struct ckpt_client *c, struct ckpt_region *r, struct poll_watch *w)
{
	bool before = w->group && rebuilding(r), after;
	double t0 = now_s(), dt;
	int ret = ckpt_poll(c);

	dt = now_s() - t0;
	if (dt > w->longest)
		w->longest = dt;
	if (!w->group)
		return ret;
	after = rebuilding(r);
	if (before || after) {
		w->polls_rebuilding++;
		if (dt > w->longest_rebuild)
			w->longest_rebuild = dt;
	}
	if (!before && after)
		w->rebuild_since = now_s();
	if (before && !after && w->rebuild_since != 0) {
		w->rebuilds++;
		fprintf(stderr, "ckpt_load: rebuild %u over in %.3f s\n", w->rebuilds,
			now_s() - w->rebuild_since);
		w->rebuild_since = 0;
	}
	return ret;
}

/* Every member of the group answers and holds the region, and no rebuild is under way. */
static bool whole(struct ckpt_region *r)
{
	struct ckpt_group_health gh;

	if (ckpt_group_health(r, false, &gh) != 0 || gh.rebuilding)
		return false;
	for (unsigned int i = 0; i < gh.members; i++)
		if (gh.member[i].state != CKPT_MEMBER_OK)
			return false;
	return true;
}

/* Print every posted slice the durable ticket now covers. */
static void print_acks(struct ckpt_region *r, const struct posted *p, size_t n, size_t *next)
{
	uint64_t d = ckpt_durable(r);
	size_t before = *next;

	while (*next < n && p[*next].ticket <= d) {
		printf("ack %u %u\n", p[*next].pair, p[*next].gen);
		(*next)++;
	}
	if (*next != before)
		fflush(stdout);
}

struct write_opts {
	int hold, batched;
	uint32_t hot;
	double rate, seconds, until_whole;
};

static int do_write(const char *target, const char *name, uint32_t pairs, uint32_t gens,
		    const struct write_opts *wo)
{
	const int batched = wo->batched;
	const uint32_t hot = wo->hot;
	struct pmu_region_params rp = {
		.name = name,
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2ull * pairs * SLOT_SIZE + (batched ? RING_SIZE : 0),
		.slot_size = SLOT_SIZE,
		.ring_size = batched ? RING_SIZE : 0,
	};
	size_t total = gens == 0 ? 0 : (size_t)pairs + (size_t)(hot ? hot : pairs) * (gens - 1);
	size_t acked = 0, k = 0;
	struct posted *p = calloc(total, sizeof(*p));
	struct ckpt_client *c = connect_env(target);
	struct ckpt_region *r = NULL;
	struct ckpt_group_health gh;
	struct poll_watch pw = {0};
	uint8_t payload[PAYLOAD_LEN];
	double t0;
	int ret;

	if (c == NULL || p == NULL) {
		fprintf(stderr, "ckpt_load: connect %s: %s\n", target, strerror(errno));
		return 1;
	}
	ret = ckpt_region_create(c, &rp, &r);
	if (ret < 0) {
		fprintf(stderr, "ckpt_load: create %s: %s\n", name, strerror(-ret));
		return 1;
	}
	pw.group = ckpt_group_health(r, false, &gh) == 0;
	t0 = now_s();
	for (uint32_t g = 1; g <= gens && (wo->seconds == 0 || now_s() - t0 < wo->seconds); g++) {
		for (uint32_t pair = 0; pair < (g == 1 || hot == 0 ? pairs : hot); pair++) {
			struct ckpt_rec rec;
			uint64_t t;

			while (wo->rate != 0 && (double)k > (now_s() - t0) * wo->rate) {
				ret = poll_timed(c, r, &pw);
				if (ret < 0)
					goto err_io;
				print_acks(r, p, k, &acked);
				usleep(500);
			}
			record_of(pair, g, payload, &rec);
			while ((ret = ckpt_slot_write(r, &rec, batched, &t)) == -EAGAIN) {
				ret = poll_timed(c, r, &pw);
				if (ret < 0)
					goto err_io;
				print_acks(r, p, k, &acked);
			}
			if (ret < 0)
				goto err_io;
			p[k++] = (struct posted){t, pair, g};
			if (k % FLUSH_EVERY == 0) {
				ret = ckpt_flush(r);
				if (ret == 0)
					ret = poll_timed(c, r, &pw);
				if (ret < 0)
					goto err_io;
				print_acks(r, p, k, &acked);
			}
		}
	}
	ret = ckpt_sync(r);
	if (ret < 0)
		goto err_io;
	print_acks(r, p, k, &acked);
	fprintf(stderr, "ckpt_load: %zu slices durable in %.3f s (%.0f slices/s) over %s\n", k,
		now_s() - t0, (double)k / (now_s() - t0), target);
	if (ckpt_group_health(r, false, &gh) == 0)
		fprintf(stderr,
			"ckpt_load: group: %" PRIu64 " segments, %" PRIu64 " record bytes, %" PRIu64
			" of them logged again by the cleaner\n",
			gh.encoded_segments, gh.encoded_bytes, gh.relogged_bytes);
	printf("done\n");
	fflush(stdout);
	for (double until = now_s() + wo->until_whole; wo->until_whole != 0 && !whole(r);) {
		if (now_s() > until) {
			fprintf(stderr, "ckpt_load: the group is not whole after %.0f s\n",
				wo->until_whole);
			ret = 5;
			goto err_close;
		}
		ret = poll_timed(c, r, &pw);
		if (ret < 0)
			goto err_io;
		usleep(1000);
	}
	if (pw.group)
		fprintf(stderr,
			"ckpt_load: longest poll %.3f ms; %.3f ms while rebuilding (%" PRIu64
			" polls, %u rebuilds)\n",
			pw.longest * 1e3, pw.longest_rebuild * 1e3, pw.polls_rebuilding,
			pw.rebuilds);
	if (wo->hold)
		for (;;)
			pause();
	ckpt_region_close(&r);
	ckpt_disconnect(&c);
	free(p);
	return 0;

err_io:
	fprintf(stderr, "ckpt_load: write stopped after %zu posted, %zu acknowledged: %s\n", k,
		acked, strerror(-ret));
	ret = 3;
err_close:
	ckpt_region_close(&r);
	ckpt_disconnect(&c);
	free(p);
	return ret;
}

static int do_append(const char *target, const char *name, uint32_t first, uint32_t count)
{
	struct pmu_region_params rp = {
		.name = name,
		.mode = PMU_MODE_APPEND,
		.size = PMU_REGION_HDR + RING_SIZE,
	};
	struct ckpt_client *c = connect_env(target);
	struct ckpt_region *r = NULL;
	uint8_t payload[PAYLOAD_LEN];
	double give_up = now_s() + 30; /* a ring nobody reads stays full */
	int ret;

	if (c == NULL) {
		fprintf(stderr, "ckpt_load: connect %s: %s\n", target, strerror(errno));
		return 1;
	}
	ret = ckpt_region_open(c, name, &r);
	if (ret == -ENOENT)
		ret = ckpt_region_create(c, &rp, &r);
	if (ret < 0) {
		fprintf(stderr, "ckpt_load: open %s: %s\n", name, strerror(-ret));
		ckpt_disconnect(&c);
		return 1;
	}
	for (uint32_t pair = first; pair - first < count && ret == 0; pair++) {
		struct ckpt_rec rec;

		record_of(pair, 1, payload, &rec);
		while ((ret = ckpt_log_append(r, &rec, NULL)) == -EAGAIN) {
			ret = now_s() > give_up ? -ENOSPC : ckpt_sync(r);
			if (ret < 0)
				break;
		}
	}
	if (ret == 0)
		ret = ckpt_sync(r);
	if (ret < 0)
		fprintf(stderr, "ckpt_load: append to %s: %s\n", name, strerror(-ret));
	else
		printf("done\n");
	ckpt_region_close(&r);
	ckpt_disconnect(&c);
	return ret < 0 ? 3 : 0;
}

struct verify {
	uint32_t pairs;
	uint32_t *found; /* generation found per pair, 0 none */
	uint64_t bad;
};

static int check_rec(const struct ckpt_rec *rec, void *arg)
{
	struct verify *v = arg;
	uint8_t want[PAYLOAD_LEN];
	struct ckpt_rec exp;
	uint32_t pair = rec->slot_pair;

	if (pair >= v->pairs || rec->generation > UINT32_MAX) {
		v->bad++;
		return 0;
	}
	record_of(pair, rec->generation, want, &exp);
	if (rec->conn_id != exp.conn_id || rec->module_id != 1 || rec->payload_len != PAYLOAD_LEN ||
	    memcmp(rec->payload, want, PAYLOAD_LEN) != 0 || !ckpt_key_equal(&rec->key, &exp.key)) {
		fprintf(stderr, "ckpt_load: pair %u generation %llu has the wrong content\n", pair,
			(unsigned long long)rec->generation);
		v->bad++;
		return 0;
	}
	v->found[pair] = (uint32_t)rec->generation;
	return 0;
}

static int do_verify(const char *target, const char *name, const char *ackfile, uint32_t all,
		     int allow_torn)
{
	struct ckpt_client *c = connect_env(target);
	struct ckpt_scan_stats st = {0};
	struct ckpt_region *r = NULL;
	struct verify v = {0};
	uint64_t acks = 0, missing = 0;
	unsigned int pair, gen;
	char line[128];
	double t0;
	FILE *f;
	int ret;

	if (c == NULL) {
		fprintf(stderr, "ckpt_load: connect %s: %s\n", target, strerror(errno));
		return 1;
	}
	ret = ckpt_region_open(c, name, &r);
	if (ret < 0) {
		fprintf(stderr, "ckpt_load: open %s: %s\n", name, strerror(-ret));
		return 1;
	}
	v.pairs = ckpt_slot_pairs(r);
	v.found = calloc(v.pairs, sizeof(*v.found));
	if (v.found == NULL)
		return 1;
	t0 = now_s();
	ret = ckpt_state_read(r, check_rec, &v, &st);
	t0 = now_s() - t0;
	if (ret < 0) {
		fprintf(stderr, "ckpt_load: state read: %s\n", strerror(-ret));
		return 1;
	}
	f = fopen(ackfile, "r");
	if (f == NULL) {
		perror(ackfile);
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "ack %u %u", &pair, &gen) != 2)
			continue;
		acks++;
		if (pair >= v.pairs || v.found[pair] < gen) {
			if (missing < 10)
				fprintf(stderr,
					"ckpt_load: acknowledged pair %u generation %u missing "
					"(found %u)\n",
					pair, gen, pair < v.pairs ? v.found[pair] : 0);
			missing++;
		}
	}
	fclose(f);
	if (all != 0)
		for (uint32_t p = 0; p < v.pairs; p++)
			if (v.found[p] != all)
				missing++;
	fprintf(stderr,
		"ckpt_load: %llu records, %llu acknowledged slices checked, %llu missing, %llu "
		"wrong, %llu invalid, %llu misplaced, %llu empty; region of %llu bytes read back "
		"in "
		"%.3f s\n",
		(unsigned long long)st.records, (unsigned long long)acks,
		(unsigned long long)missing, (unsigned long long)v.bad,
		(unsigned long long)st.invalid, (unsigned long long)st.misplaced,
		(unsigned long long)st.empty, (unsigned long long)ckpt_region_geometry(r)->size,
		t0);
	ckpt_region_close(&r);
	ckpt_disconnect(&c);
	free(v.found);
	if (missing || v.bad || st.misplaced || (st.invalid && !allow_torn) || acks == 0)
		return 4;
	return 0;
}

int main(int argc, char **argv)
{
	struct write_opts wo = {0};
	int allow_torn = 0;
	uint32_t all = 0;

	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hold") == 0)
			wo.hold = 1;
		else if (strcmp(argv[i], "--batched") == 0)
			wo.batched = 1;
		else if (strcmp(argv[i], "--allow-torn") == 0)
			allow_torn = 1;
		else if (strcmp(argv[i], "--all") == 0 && i + 1 < argc)
			all = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--hot") == 0 && i + 1 < argc)
			wo.hot = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
			wo.rate = strtod(argv[++i], NULL);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			wo.seconds = strtod(argv[++i], NULL);
		else if (strcmp(argv[i], "--until-whole") == 0 && i + 1 < argc)
			wo.until_whole = strtod(argv[++i], NULL);
	}
	if (argc >= 6 && strcmp(argv[1], "write") == 0 && wo.hot > strtoul(argv[4], NULL, 10)) {
		fprintf(stderr, "ckpt_load: --hot %u is more than the %s pairs\n", wo.hot, argv[4]);
		return 2;
	}
	if (argc >= 6 && strcmp(argv[1], "write") == 0)
		return do_write(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 10),
				(uint32_t)strtoul(argv[5], NULL, 10), &wo);
	if (argc >= 6 && strcmp(argv[1], "append") == 0)
		return do_append(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 10),
				 (uint32_t)strtoul(argv[5], NULL, 10));
	if (argc >= 5 && strcmp(argv[1], "verify") == 0)
		return do_verify(argv[2], argv[3], argv[4], all, allow_torn);
	fprintf(stderr, "usage: ckpt_load write TARGET REGION PAIRS GENS [--hold] [--batched] "
			"[--hot N] [--rate R] [--seconds S] [--until-whole S]\n"
			"       ckpt_load append TARGET REGION FIRST COUNT\n"
			"       ckpt_load verify TARGET REGION ACKFILE [--all GENS] "
			"[--allow-torn]\n");
	return 2;
}
