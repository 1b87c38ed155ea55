/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoint rate, post-to-durable latency and restore time against any checkpoint target.
 *
 *	ckpt_bench [--target T | --pmem FILE] [--secret-file F [--tenant N]] [--allow-shm]
 *	           [--slices N] [--seconds S] [--batch B] [--restore-records N]
 *	           [--store-size S]
 *
 * For 64- and 256-byte payloads it measures three ways of checkpointing slices:
 *	single   one slice, then ckpt_sync(): the rate a module gets when it waits every time
 *	batched  B slices posted to their slots, one flush, poll until durable
 *	stream   journal writes posted without waiting, a flush every B, progress polled: the
 *	         way a firewall checkpoints; the rate counts what became durable
 *	journal  the same with batched=true: the records go to the region's journal, which
 *	         the server applies to the slots in the background
 * and then the time ckpt_state_read() takes to restore N records from a region whose
 * every slot holds a valid record (two generations per pair), each one CRC-checked.
 *
 * It prints one "key=value" line per measurement; scripts/bench.sh makes a table of them.
 * It is a measurement, not a test: it never judges the figures.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "holdfast/ckpt.h"
#include "holdfast/ckpt_group.h"

#define DEFAULT_SLICES		2000000u
#define DEFAULT_SINGLE_SLICES	200000u
#define DEFAULT_SECONDS		2.0
#define DEFAULT_BATCH		256u
#define DEFAULT_RESTORE_RECORDS (1u << 20)
#define DEFAULT_STORE_SIZE	(1ull << 30)
#define BENCH_PAIRS		65536u
#define JOURNAL_SIZE		(16u << 20)
#define RESTORE_PAYLOAD		32u
#define STALL_NS		10000000000ull

struct bench {
	const char *target;
	const char *scheme; /* printed with every line */
	struct ckpt_client *cl;
	uint64_t slices;
	double seconds;
	unsigned int batch;
	uint64_t restore_records;
	unsigned int region_seq;
	uint64_t *lat; /* per-slice latencies of the current run, ns */
	/* Group targets: the parity work of every region, summed when it is dropped. */
	uint64_t enc_segments, enc_bytes, enc_ns, relog_bytes;
	uint64_t gen[BENCH_PAIRS];
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct ckpt_rec slice(struct bench *b, uint32_t pair, uint64_t gen, uint16_t len)
{
	struct ckpt_rec rec = {
		.module_id = 1,
		.slice_version = 1,
		.conn_id = 0x5eed000000000000ull | pair,
		.generation = gen,
		.slot_pair = pair,
		.key = {.family = 4, .proto = 6, .port = {(uint16_t)pair, 443}},
		.payload_len = len,
		.payload = b->payload,
	};

	rec.key.addr[0][0] = 10;
	rec.key.addr[0][2] = (uint8_t)(pair >> 8);
	rec.key.addr[0][3] = (uint8_t)pair;
	rec.key.addr[1][0] = 192;
	rec.key.addr[1][3] = 1;
	/* Make every slice differ a little, as a real window update would. */
	memcpy(b->payload, &gen, sizeof(gen));
	return rec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double pct_us(uint64_t *lat, uint64_t n, double pct)
{
	uint64_t i = (uint64_t)(pct / 100.0 * (double)(n - 1));

	return (double)lat[i] / 1000.0;
}

/* Slot size for a payload: the record rounded up to a cache line. */
static uint32_t slot_for(uint16_t payload)
{
	return (uint32_t)((ckpt_rec_size(payload) + 63) & ~(size_t)63);
}

static int make_region(struct bench *b, uint32_t slot_size, uint64_t pairs, uint64_t journal,
		       struct ckpt_region **out, char *name, size_t name_len)
{
	struct pmu_region_params p = {
		.name = name,
		.owner = NULL,
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + 2 * pairs * slot_size + journal,
		.slot_size = slot_size,
		.ring_size = journal,
	};
	int rc;

	snprintf(name, name_len, "bench-%d-%u", (int)getpid(), b->region_seq++);
	rc = ckpt_region_create(b->cl, &p, out);
	if (rc < 0)
		fprintf(stderr, "ckpt_bench: create region %s (%" PRIu64 " bytes): %s\n", name,
			p.size, strerror(-rc));
	return rc;
}

static void drop_region(struct bench *b, struct ckpt_region **r, const char *name)
{
	struct ckpt_group_health h;
	int rc;

	/* After a sync, so that every segment is cut and counted. */
	if (ckpt_sync(*r) == 0 && ckpt_group_health(*r, false, &h) == 0) {
		b->enc_segments += h.encoded_segments;
		b->enc_bytes += h.encoded_bytes;
		b->enc_ns += h.encode_ns;
		b->relog_bytes += h.relogged_bytes;
	}
	rc = ckpt_region_close(r);

	if (rc < 0)
		fprintf(stderr, "ckpt_bench: close %s: %s\n", name, strerror(-rc));
	rc = ckpt_region_delete(b->cl, name);
	if (rc < 0)
		fprintf(stderr, "ckpt_bench: delete %s: %s\n", name, strerror(-rc));
}

/* Post one slice, polling while the queue (or journal) is full. */
static int post(struct bench *b, struct ckpt_region *r, const struct ckpt_rec *rec, bool batched,
		uint64_t *ticket)
{
	uint64_t stalled_since = 0;

	for (;;) {
		int rc = ckpt_slot_write(r, rec, batched, ticket);

		if (rc != -EAGAIN)
			return rc;
		if (stalled_since == 0) {
			stalled_since = now_ns();
			rc = ckpt_flush(r);
			if (rc < 0)
				return rc;
		} else if (now_ns() - stalled_since > STALL_NS) {
			fprintf(stderr,
				"ckpt_bench: %s: writes refused (queue or journal full) "
				"for 10 s\n",
				b->target);
			return -EAGAIN;
		}
		rc = ckpt_poll(b->cl);
		if (rc < 0)
			return rc;
	}
}

static int wait_durable(struct bench *b, struct ckpt_region *r, uint64_t ticket)
{
	int rc = ckpt_flush(r);

	while (rc >= 0 && ckpt_durable(r) < ticket)
		rc = ckpt_poll(b->cl);
	return rc < 0 ? rc : 0;
}

enum way {
	WAY_SINGLE,
	WAY_BATCHED,
	WAY_JOURNAL,
	WAY_STREAM,
};

static const char *way_name(enum way w)
{
	switch (w) {
	case WAY_SINGLE:
		return "single";
	case WAY_BATCHED:
		return "batched";
	case WAY_JOURNAL:
		return "journal";
	case WAY_STREAM:
		return "stream";
	}
	return "?";
}

/*
 * The way a firewall checkpoints: journal writes posted without ever waiting, a flush every
 * batch, progress polled between posts. Latency is a batch's first post to the moment its
 * last ticket is durable; the rate counts what became durable.
 */
struct batch_mark {
	uint64_t ticket; /* the batch's last ticket */
	uint64_t t;	 /* its first post */
	uint64_t n;
};

static int run_stream(struct bench *b, uint16_t payload)
{
	const uint64_t budget = (uint64_t)(b->seconds * 1e9);
	enum {
		FIFO = 1u << 14
	};
	struct batch_mark *fifo = calloc(FIFO, sizeof(*fifo));
	uint64_t head = 0, tail = 0, n = 0, nlat = 0, ticket = 0, t0, t1, batch_t = 0;
	struct ckpt_region *r;
	char name[PMU_NAME_MAX];
	unsigned int in_batch = 0;
	int rc;

	if (fifo == NULL)
		return -ENOMEM;
	memset(b->gen, 0, sizeof(b->gen));
	rc = make_region(b, slot_for(payload), BENCH_PAIRS, JOURNAL_SIZE, &r, name, sizeof(name));
	if (rc < 0)
		goto out_free;
	t0 = now_ns();
	while (n < b->slices && now_ns() - t0 < budget && head - tail < FIFO) {
		uint32_t pair = (uint32_t)(n % BENCH_PAIRS);
		struct ckpt_rec rec = slice(b, pair, ++b->gen[pair], payload);

		if (in_batch == 0)
			batch_t = now_ns();
		rc = post(b, r, &rec, true, &ticket);
		if (rc < 0)
			goto out_drop;
		n++;
		if (++in_batch == b->batch) {
			fifo[head++ % FIFO] = (struct batch_mark){ticket, batch_t, in_batch};
			in_batch = 0;
			rc = ckpt_flush(r);
			if (rc >= 0)
				rc = ckpt_poll(b->cl);
			if (rc < 0)
				goto out_drop;
		}
		while (tail < head && fifo[tail % FIFO].ticket <= ckpt_durable(r)) {
			for (uint64_t i = 0; i < fifo[tail % FIFO].n && nlat < b->slices; i++)
				b->lat[nlat++] = now_ns() - fifo[tail % FIFO].t;
			tail++;
		}
	}
	rc = ckpt_sync(r);
	if (rc < 0)
		goto out_drop;
	t1 = now_ns();
	for (; tail < head; tail++)
		for (uint64_t i = 0; i < fifo[tail % FIFO].n && nlat < b->slices; i++)
			b->lat[nlat++] = t1 - fifo[tail % FIFO].t;
	qsort(b->lat, nlat, sizeof(b->lat[0]), cmp_u64);
	printf("target=%s way=%s payload=%u batch=%u slices=%" PRIu64 " seconds=%.3f "
	       "rate=%.3fM/s p50_us=%.2f p99_us=%.2f\n",
	       b->scheme, way_name(WAY_STREAM), payload, b->batch, n, (double)(t1 - t0) / 1e9,
	       (double)n / ((double)(t1 - t0) / 1e9) / 1e6, pct_us(b->lat, nlat, 50),
	       pct_us(b->lat, nlat, 99));
	fflush(stdout);
out_drop:
	if (rc < 0)
		fprintf(stderr, "ckpt_bench: %s stream payload %u: %s\n", b->scheme, payload,
			strerror(-rc));
	drop_region(b, &r, name);
out_free:
	free(fifo);
	return rc;
}

static int run_slices(struct bench *b, enum way way, uint16_t payload)
{
	const uint64_t max = way == WAY_SINGLE && b->slices > DEFAULT_SINGLE_SLICES
				     ? DEFAULT_SINGLE_SLICES
				     : b->slices;
	const uint64_t budget = (uint64_t)(b->seconds * 1e9);
	const unsigned int batch = way == WAY_SINGLE ? 1 : b->batch;
	uint64_t *posted_at = calloc(batch, sizeof(*posted_at));
	uint64_t *gen = b->gen;
	struct ckpt_region *r;
	uint64_t n = 0, t0, t1, ticket = 0;
	char name[PMU_NAME_MAX];
	int rc;

	if (posted_at == NULL)
		return -ENOMEM;
	memset(b->gen, 0, sizeof(b->gen));
	rc = make_region(b, slot_for(payload), BENCH_PAIRS, way == WAY_JOURNAL ? JOURNAL_SIZE : 0,
			 &r, name, sizeof(name));
	if (rc < 0)
		goto out_free;
	t0 = now_ns();
	while (n < max && now_ns() - t0 < budget) {
		unsigned int k;

		for (k = 0; k < batch && n + k < max; k++) {
			uint32_t pair = (uint32_t)((n + k) % BENCH_PAIRS);
			struct ckpt_rec rec = slice(b, pair, ++gen[pair], payload);

			posted_at[k] = now_ns();
			rc = post(b, r, &rec, way == WAY_JOURNAL, &ticket);
			if (rc < 0)
				goto out_drop;
		}
		rc = way == WAY_SINGLE ? ckpt_sync(r) : wait_durable(b, r, ticket);
		if (rc < 0)
			goto out_drop;
		t1 = now_ns();
		for (unsigned int i = 0; i < k; i++)
			b->lat[n + i] = t1 - posted_at[i];
		n += k;
	}
	t1 = now_ns();
	qsort(b->lat, n, sizeof(b->lat[0]), cmp_u64);
	printf("target=%s way=%s payload=%u batch=%u slices=%" PRIu64 " seconds=%.3f "
	       "rate=%.3fM/s p50_us=%.2f p99_us=%.2f\n",
	       b->scheme, way_name(way), payload, batch, n, (double)(t1 - t0) / 1e9,
	       (double)n / ((double)(t1 - t0) / 1e9) / 1e6, pct_us(b->lat, n, 50),
	       pct_us(b->lat, n, 99));
	fflush(stdout);
out_drop:
	if (rc < 0)
		fprintf(stderr, "ckpt_bench: %s %s payload %u: %s\n", b->scheme, way_name(way),
			payload, strerror(-rc));
	drop_region(b, &r, name);
out_free:
	free(posted_at);
	return rc;
}

struct restore_count {
	uint64_t records;
	uint64_t sum; /* touch every payload, as a decoder would */
};

static int restore_cb(const struct ckpt_rec *rec, void *arg)
{
	struct restore_count *rc = arg;
	uint64_t g;

	memcpy(&g, rec->payload, sizeof(g));
	rc->sum += g ^ rec->conn_id;
	rc->records++;
	return 0;
}

static int run_restore(struct bench *b)
{
	const uint64_t pairs = b->restore_records;
	struct restore_count cnt = {0};
	struct ckpt_scan_stats st = {0};
	struct ckpt_region *r;
	char name[PMU_NAME_MAX];
	uint64_t ticket = 0, t0, t1;
	int rc;

	rc = make_region(b, slot_for(RESTORE_PAYLOAD), pairs, 0, &r, name, sizeof(name));
	if (rc < 0)
		return rc;
	/* Fill every slot: generation 1 and 2 of each pair, the state after a long run. */
	t0 = now_ns();
	for (uint64_t gen = 1; gen <= 2; gen++) {
		for (uint64_t p = 0; p < pairs; p++) {
			struct ckpt_rec rec = slice(b, (uint32_t)p, gen, RESTORE_PAYLOAD);

			rec.conn_id = 0x5eed000000000000ull | p;
			rc = post(b, r, &rec, false, &ticket);
			if (rc < 0)
				goto out_drop;
			if (p % b->batch == b->batch - 1 && (rc = wait_durable(b, r, ticket)) < 0)
				goto out_drop;
		}
	}
	rc = ckpt_sync(r);
	if (rc < 0)
		goto out_drop;
	t1 = now_ns();
	fprintf(stderr, "ckpt_bench: %s: filled %" PRIu64 " slots in %.2f s\n", b->scheme,
		2 * pairs, (double)(t1 - t0) / 1e9);

	t0 = now_ns();
	rc = ckpt_state_read(r, restore_cb, &cnt, &st);
	t1 = now_ns();
	if (rc < 0)
		goto out_drop;
	printf("target=%s way=restore records=%" PRIu64 " slots=%" PRIu64 " seconds=%.3f "
	       "rate=%.3fM/s invalid=%" PRIu64 " superseded=%" PRIu64 "\n",
	       b->scheme, cnt.records, 2 * pairs, (double)(t1 - t0) / 1e9,
	       (double)cnt.records / ((double)(t1 - t0) / 1e9) / 1e6, st.invalid, st.superseded);
	if (cnt.records != pairs || st.invalid != 0)
		fprintf(stderr,
			"ckpt_bench: restore returned %" PRIu64 " of %" PRIu64 " records, %" PRIu64
			" invalid\n",
			cnt.records, pairs, st.invalid);
out_drop:
	if (rc < 0)
		fprintf(stderr, "ckpt_bench: %s restore: %s\n", b->scheme, strerror(-rc));
	drop_region(b, &r, name);
	return rc;
}

/* Is @p name one of the comma-separated @p list? */
static bool way_wanted(const char *list, const char *name)
{
	const size_t len = strlen(name);

	for (const char *p = list; *p != '\0'; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ckpt_bench [--target T | --pmem FILE] [--secret-file F [--tenant N]]\n"
		   "                  [--allow-shm] [--slices N] [--seconds S] [--batch B]\n"
		   "                  [--restore-records N] [--store-size S]\n"
		   "                  [--ways single,batched,journal,stream,restore]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 't'},
		{"pmem", required_argument, NULL, 'p'},
		{"secret-file", required_argument, NULL, 's'},
		{"tenant", required_argument, NULL, 'n'},
		{"allow-shm", no_argument, NULL, 'S'},
		{"slices", required_argument, NULL, 'N'},
		{"seconds", required_argument, NULL, 'T'},
		{"batch", required_argument, NULL, 'B'},
		{"restore-records", required_argument, NULL, 'R'},
		{"store-size", required_argument, NULL, 'Z'},
		{"ways", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ckpt_client_opts opts = {
		.max_inflight = 1024, .create_store = true, .store_size = DEFAULT_STORE_SIZE};
	struct bench *b = calloc(1, sizeof(*b));
	const char *secret_file = NULL, *ways = "single,batched,journal,stream,restore";
	char *pmem_target = NULL, *scheme_end;
	uint8_t secret[64];
	uint64_t v;
	int opt, rc = 2;

	if (b == NULL)
		return 2;
	b->slices = DEFAULT_SLICES;
	b->seconds = DEFAULT_SECONDS;
	b->batch = DEFAULT_BATCH;
	b->restore_records = DEFAULT_RESTORE_RECORDS;
	while ((opt = getopt_long(argc, argv, "t:p:s:n:SN:T:B:R:Z:w:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			b->target = optarg;
			break;
		case 'p':
			free(pmem_target);
			if (asprintf(&pmem_target, "pmem:%s", optarg) < 0)
				goto out_free;
			b->target = pmem_target;
			break;
		case 's':
			secret_file = optarg;
			break;
		case 'n':
			opts.tenant = optarg;
			break;
		case 'S':
			opts.allow_shm = true;
			break;
		case 'N':
		case 'R':
		case 'Z':
			if (ckpt_parse_size(optarg, &v) < 0 || v == 0) {
				fprintf(stderr, "ckpt_bench: bad number '%s'\n", optarg);
				goto out_free;
			}
			if (opt == 'N')
				b->slices = v;
			else if (opt == 'R')
				b->restore_records = v;
			else
				opts.store_size = v;
			break;
		case 'T':
			b->seconds = strtod(optarg, NULL);
			break;
		case 'B':
			b->batch = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			ways = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out_free;
		default:
			usage(stderr);
			goto out_free;
		}
	}
	if (b->target == NULL || optind != argc || b->batch == 0 || b->seconds <= 0 ||
	    b->restore_records > UINT32_MAX) {
		usage(stderr);
		goto out_free;
	}
	if (secret_file != NULL) {
		int n = ckpt_secret_load(secret_file, opts.tenant, secret, sizeof(secret));

		if (n < 0) {
			fprintf(stderr, "ckpt_bench: %s: %s\n", secret_file, strerror(-n));
			goto out_free;
		}
		opts.secret = secret;
		opts.secret_len = (size_t)n;
	}
	/*
	 * The scheme alone names the target in the output ("pmem", "ofi+tcp", ...); a group
	 * by its code ("rs(4,2)", "xor(4)", "mirror").
	 */
	if (strncmp(b->target, "group:", 6) == 0)
		b->scheme = strndup(b->target + 6, strcspn(b->target + 6, "="));
	else
		b->scheme = strndup(b->target, (scheme_end = strchr(b->target, ':')) != NULL
						       ? (size_t)(scheme_end - b->target)
						       : strlen(b->target));
	b->lat = calloc(b->slices, sizeof(*b->lat));
	if (b->scheme == NULL || b->lat == NULL) {
		fprintf(stderr, "ckpt_bench: out of memory\n");
		goto out_free;
	}
	b->cl = ckpt_connect(b->target, &opts);
	if (b->cl == NULL) {
		fprintf(stderr, "ckpt_bench: connect %s: %s\n", b->target, strerror(errno));
		goto out_free;
	}
	rc = 0;
	for (int pi = 0; pi < 2 && rc == 0; pi++) {
		const uint16_t payload = pi == 0 ? 64 : 256;

		for (enum way w = WAY_SINGLE; w <= WAY_JOURNAL && rc == 0; w++)
			if (way_wanted(ways, way_name(w)))
				rc = run_slices(b, w, payload);
		if (rc == 0 && way_wanted(ways, way_name(WAY_STREAM)))
			rc = run_stream(b, payload);
	}
	if (rc == 0 && way_wanted(ways, "restore"))
		rc = run_restore(b);
	if (b->enc_segments != 0)
		printf("target=%s way=encode segments=%" PRIu64 " bytes_per_segment=%" PRIu64
		       " ns_per_segment=%.0f encode_GBps=%.2f relogged=%.3f\n",
		       b->scheme, b->enc_segments, b->enc_bytes / b->enc_segments,
		       (double)b->enc_ns / (double)b->enc_segments,
		       (double)b->enc_bytes / (double)(b->enc_ns ? b->enc_ns : 1),
		       (double)b->relog_bytes / (double)b->enc_bytes);
	ckpt_disconnect(&b->cl);
	rc = rc < 0 ? 1 : 0;
out_free:
	memset(secret, 0, sizeof(secret));
	free(b->lat);
	free((char *)b->scheme);
	free(pmem_target);
	free(b);
	return rc;
}
