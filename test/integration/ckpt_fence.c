/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fencing and death notice against a running ckptsrv, through the public client API
 * (include/holdfast/ckpt.h: ckpt_epoch_take, ckpt_epoch_bind, ckpt_lease_watch). Each check
 * exits 0 when the server behaved as required, and prints what it saw either way.
 *
 *   ckpt_fence TARGET CHECK [ARG...]
 *	race L          two clients, on two threads released together, take the epoch of
 *	                lease region L from the same seen epoch: exactly one wins, the other
 *	                gets ESTALE, and L's epoch moved by one
 *	fence L D       a writer takes L's epoch and writes D durably; a second client bound to
 *	                that epoch; a newcomer takes the next epoch. Then the writer's lease
 *	                renewal and its sync are ESTALE, the bound client's create and bind are
 *	                ESTALE, the writer's write after the take is not in D (read back by
 *	                the newcomer), the one before it is, and the newcomer writes on
 *	hold L TTL_MS   create (or open) L, renew its lease for TTL_MS, print "holding",
 *	                then renew it every third of TTL_MS until killed
 *	watch L MS WANT open L, print "watching", ckpt_lease_watch(L, MS): its result must be
 *	                WANT (ok or ETIMEDOUT); prints how long it took and the CLOCK_REALTIME
 *	                nanoseconds at return ("returned-at NS"), for the script to time a kill
 *
 * Environment: HF_SECRET_FILE, HF_TENANT, HF_ALLOW_SHM=1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "holdfast/ckpt.h"

static uint8_t secret[64];

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct ckpt_client *must_connect(const char *target)
{
	struct ckpt_client_opts o = {0};
	const char *sf = getenv("HF_SECRET_FILE");
	struct ckpt_client *c;
	int n;

	o.tenant = getenv("HF_TENANT") ? getenv("HF_TENANT") : "default";
	o.allow_shm = getenv("HF_ALLOW_SHM") != NULL;
	o.timeout_ms = 3000;
	n = ckpt_secret_load(sf, o.tenant, secret, sizeof(secret));
	if (n < 0) {
		fprintf(stderr, "ckpt_fence: secret for %s: %s\n", o.tenant, strerror(-n));
		exit(2);
	}
	o.secret = secret;
	o.secret_len = (size_t)n;
	c = ckpt_connect(target, &o);
	if (c == NULL) {
		fprintf(stderr, "ckpt_fence: connect %s: %s\n", target, strerror(errno));
		exit(2);
	}
	return c;
}

/* Open region @p name, creating it (overwrite, 1 MiB) when it is not there yet. */
static struct ckpt_region *must_open(struct ckpt_client *c, const char *name)
{
	struct pmu_region_params p = {
		.name = name,
		.mode = PMU_MODE_OVERWRITE,
		.size = 1 << 20,
		.slot_size = 256,
	};
	struct ckpt_region *r = NULL;
	int ret = ckpt_region_open(c, name, &r);

	if (ret == -ENOENT)
		ret = ckpt_region_create(c, &p, &r);
	if (ret < 0) {
		fprintf(stderr, "ckpt_fence: open %s: %s\n", name, strerror(-ret));
		exit(2);
	}
	return r;
}

static uint64_t epoch_of(struct ckpt_client *c, const char *name)
{
	struct ckpt_region_info info;
	int ret = ckpt_region_stat(c, name, &info);

	if (ret < 0) {
		fprintf(stderr, "ckpt_fence: stat %s: %s\n", name, strerror(-ret));
		exit(2);
	}
	return info.r.epoch;
}

static int expect(const char *what, int got, int want)
{
	printf("%s: %s (want %s)\n", what, got == 0 ? "ok" : strerror(-got),
	       want == 0 ? "ok" : strerror(-want));
	return got == want ? 0 : 1;
}

/* ---- race ---- */

struct racer {
	struct ckpt_region *r;
	uint64_t seen, epoch;
	pthread_barrier_t *go;
	int rc;
};

static void *race_main(void *arg)
{
	struct racer *x = arg;

	pthread_barrier_wait(x->go);
	x->rc = ckpt_epoch_take(x->r, x->seen, &x->epoch);
	return NULL;
}

static int check_race(const char *target, const char *lease)
{
	struct ckpt_client *c[2] = {must_connect(target), must_connect(target)};
	struct ckpt_region *r[2] = {must_open(c[0], lease), must_open(c[1], lease)};
	struct racer x[2];
	pthread_barrier_t go;
	pthread_t t[2];
	uint64_t seen = epoch_of(c[0], lease), after;
	int wins = 0, stale = 0, rc = 0;

	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++) {
		x[i] = (struct racer){.r = r[i], .seen = seen, .go = &go};
		pthread_create(&t[i], NULL, race_main, &x[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		printf("client %d: take from epoch %llu: %s", i, (unsigned long long)seen,
		       x[i].rc == 0 ? "won" : strerror(-x[i].rc));
		if (x[i].rc == 0)
			printf(", epoch %llu", (unsigned long long)x[i].epoch);
		printf("\n");
		wins += x[i].rc == 0;
		stale += x[i].rc == -ESTALE;
	}
	after = epoch_of(c[0], lease);
	printf("wins %d, ESTALE %d, epoch now %llu (want 1, 1, %llu)\n", wins, stale,
	       (unsigned long long)after, (unsigned long long)seen + 1);
	if (wins != 1 || stale != 1 || after != seen + 1)
		rc = 1;
	for (int i = 0; i < 2; i++)
		if (x[i].rc == 0 && x[i].epoch != seen + 1)
			rc = 1;
	pthread_barrier_destroy(&go);
	ckpt_disconnect(&c[0]);
	ckpt_disconnect(&c[1]);
	return rc;
}

/* ---- fence ---- */

#define PAIR_BEFORE 1
#define PAIR_AFTER  2
#define PAIR_NEW    3

static int write_pair(struct ckpt_region *r, uint32_t pair, const char *payload)
{
	struct ckpt_rec rec = {
		.module_id = 1,
		.slice_version = 1,
		.conn_id = 1000 + pair,
		.generation = 1,
		.slot_pair = pair,
		.key = {.family = 4, .proto = 6},
		.payload_len = (uint16_t)strlen(payload),
		.payload = (const uint8_t *)payload,
	};
	uint64_t t;
	int ret = ckpt_slot_write(r, &rec, false, &t);

	return ret < 0 ? ret : ckpt_sync(r);
}

struct seen_pairs {
	unsigned int mask;  /* bit n: pair n holds a record */
	bool after_payload; /* the fenced writer's payload was found */
};

static int note_rec(const struct ckpt_rec *rec, void *arg)
{
	struct seen_pairs *s = arg;

	if (rec->slot_pair < 32)
		s->mask |= 1u << rec->slot_pair;
	if (rec->payload_len == strlen("after-the-take") &&
	    memcmp(rec->payload, "after-the-take", rec->payload_len) == 0)
		s->after_payload = true;
	return 0;
}

static int check_fence(const char *target, const char *lease, const char *data)
{
	struct ckpt_client *a = must_connect(target), *bound = must_connect(target),
			   *b = must_connect(target);
	struct ckpt_region *al = must_open(a, lease), *ad = must_open(a, data), *bl, *bd,
			   *br = NULL;
	struct pmu_region_params p = {
		.name = "fence-probe-new", .mode = PMU_MODE_APPEND, .size = 1 << 16};
	struct ckpt_scan_stats st = {0};
	struct seen_pairs seen = {0};
	uint64_t e1, e2;
	int rc = 0;

	/* The writer takes the epoch and writes while it is current. */
	rc |= expect("writer takes the epoch", ckpt_epoch_take(al, epoch_of(a, lease), &e1), 0);
	rc |= expect("writer renews its lease", ckpt_lease_renew(al, 10000), 0);
	rc |= expect("writer's write before the take", write_pair(ad, PAIR_BEFORE, "before"), 0);
	rc |= expect("second client binds to that epoch", ckpt_epoch_bind(bound, lease, e1), 0);

	/* A newcomer takes the next epoch: both are fenced. */
	bl = must_open(b, lease);
	rc |= expect("newcomer takes the next epoch", ckpt_epoch_take(bl, e1, &e2), 0);
	printf("epochs: writer %llu, newcomer %llu, store %llu\n", (unsigned long long)e1,
	       (unsigned long long)e2, (unsigned long long)epoch_of(b, lease));

	rc |= expect("fenced writer renews its lease", ckpt_lease_renew(al, 10000), -ESTALE);
	rc |= expect("fenced writer writes and syncs", write_pair(ad, PAIR_AFTER, "after-the-take"),
		     -ESTALE);
	rc |= expect("fenced writer takes again", ckpt_epoch_take(al, e2, &e1), -ESTALE);
	rc |= expect("bound client creates a region", ckpt_region_create(bound, &p, &br), -ESTALE);
	rc |= expect("bound client binds again", ckpt_epoch_bind(bound, lease, e1), -ESTALE);
	rc |= expect("newcomer binds to an old epoch", ckpt_epoch_bind(b, lease, e1), -ESTALE);

	/* What landed: the write before the take, not the one after; the newcomer writes on. */
	bd = must_open(b, data);
	rc |= expect("newcomer writes and syncs", write_pair(bd, PAIR_NEW, "newcomer"), 0);
	rc |= expect("newcomer renews the lease", ckpt_lease_renew(bl, 10000), 0);
	rc |= expect("newcomer reads the data region", ckpt_state_read(bd, note_rec, &seen, &st),
		     0);
	printf("pairs holding records: %#x (want %#x), the fenced write %s\n", seen.mask,
	       1u << PAIR_BEFORE | 1u << PAIR_NEW, seen.after_payload ? "LANDED" : "absent");
	if (seen.mask != (1u << PAIR_BEFORE | 1u << PAIR_NEW) || seen.after_payload)
		rc = 1;
	ckpt_disconnect(&a);
	ckpt_disconnect(&bound);
	ckpt_disconnect(&b);
	return rc;
}

/* ---- death notice ---- */

static int hold(const char *target, const char *lease, unsigned int ttl_ms)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = must_open(c, lease);
	int ret = ckpt_lease_renew(r, ttl_ms);

	if (ret < 0) {
		fprintf(stderr, "ckpt_fence: renew: %s\n", strerror(-ret));
		return 1;
	}
	printf("holding %s for %u ms\n", lease, ttl_ms);
	fflush(stdout);
	/* Renewed every third of the ttl, as a primary does: alive, it never lapses. */
	for (uint64_t renewed = mono_ms();; usleep(20000)) {
		if (ckpt_poll(c) < 0)
			return 1;
		if (mono_ms() - renewed < ttl_ms / 3)
			continue;
		ret = ckpt_lease_renew(r, ttl_ms);
		if (ret < 0) {
			fprintf(stderr, "ckpt_fence: renew: %s\n", strerror(-ret));
			return 1;
		}
		renewed = mono_ms();
	}
}

static int watch(const char *target, const char *lease, unsigned int ms, const char *want)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = must_open(c, lease);
	int expected = strcmp(want, "ok") == 0 ? 0 : -ETIMEDOUT, ret;
	uint64_t t0;

	printf("watching %s for up to %u ms\n", lease, ms);
	fflush(stdout);
	t0 = mono_ms();
	ret = ckpt_lease_watch(r, ms);
	printf("watch: %s after %llu ms\nreturned-at %llu\n", ret == 0 ? "free" : strerror(-ret),
	       (unsigned long long)(mono_ms() - t0), (unsigned long long)realtime_ns());
	ckpt_disconnect(&c);
	return expect("watch", ret, expected);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[2], "race") == 0)
		return check_race(argv[1], argv[3]);
	if (argc >= 5 && strcmp(argv[2], "fence") == 0)
		return check_fence(argv[1], argv[3], argv[4]);
	if (argc >= 5 && strcmp(argv[2], "hold") == 0)
		return hold(argv[1], argv[3], (unsigned int)strtoul(argv[4], NULL, 10));
	if (argc >= 6 && strcmp(argv[2], "watch") == 0)
		return watch(argv[1], argv[3], (unsigned int)strtoul(argv[4], NULL, 10), argv[5]);
	fprintf(stderr, "usage: ckpt_fence TARGET race L | fence L D | hold L TTL_MS | "
			"watch L MS ok|ETIMEDOUT\n");
	return 2;
}
