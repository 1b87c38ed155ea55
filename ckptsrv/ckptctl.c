/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptctl: the operator's view of a checkpoint target. It lists regions, shows their
 * geometry and lease, decodes their records and verifies them, through the public client
 * API only, so what it shows is what a restoring firewall would get. It never consumes a
 * log (reads peek) and writes a region only to rebuild a group member (rebuild).
 *
 * With a pmem: target and neither --tenant nor --secret-file, it is the operator holding
 * the file: ls shows every tenant's regions with their owners, and a region is named
 * OWNER/NAME, or NAME when one owner has it. Through a server (or with --tenant) it sees
 * one tenant's namespace. On a pmem: target, verify first checks the store itself (the
 * superblock and table pmu_store_open() checks), and verify without a region checks the
 * store and then every region in it.
 *
 * Exit codes:
 *   0  ok
 *   1  verification failed: invalid or misplaced records, a wrap marker where none could
 *      be, a region geometry or a store (superblock, table) that does not check, a region
 *      that cannot be read as its geometry says; health: degraded or lost
 *   2  usage or connection errors (a store pmu_store_open() refuses, outside verify)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "holdfast/ckpt.h"
#include "holdfast/ckpt_group.h"
#include "holdfast/pmu.h"

enum {
	EXIT_VERIFY = 1,
	EXIT_USAGE = 2,
};

#define MAX_LIST PMU_MAX_REGIONS

struct ctl {
	const char *target;
	const char *secret_file;
	const char *tenant;
	bool allow_shm;
	struct ckpt_client *cl;
	/* pmem: without --tenant or --secret-file: every owner's regions are seen. */
	bool operator_view;
	/* The store's space and (operator view) its regions, read before connecting. */
	bool have_space;
	uint64_t total;
	uint64_t free_bytes;
	struct pmu_region_info *all;
	int nall;
	/* Owns the owner part of an OWNER/NAME region argument. */
	char owner[PMU_NAME_MAX];
	/* Owns the tenant name read from the secret file when --tenant was not given. */
	char file_tenant[PMU_NAME_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ckptctl [--target T | --pmem FILE] [--secret-file F] [--tenant N]\n"
		"               [--allow-shm] COMMAND\n"
		"targets: pmem:/path, ofi+tcp://host:port, ofi+shm://name, "
		"ofi+verbs://host:port,\n"
		"         group:rs(K,M)=T1,..., group:xor(K)=T1,..., group:mirror=T1,...\n"
		"  pmem: without --tenant sees every tenant's regions; REGION is then NAME or\n"
		"  OWNER/NAME\n"
		"commands:\n"
		"  ls               regions (of this tenant, or every one's) and the store's "
		"space\n"
		"  stat [REGION]    geometry, lease, epoch, ring positions; the store without "
		"REGION\n"
		"  dump REGION      one line per record a restore would return\n"
		"  verify [REGION]  count valid/empty/invalid/...; exit 1 on any fault; pmem: "
		"also\n"
		"                   checks the store's superblock and table, and without REGION\n"
		"                   every region in it\n"
		"  health REGION    group targets: which members answer, which segments "
		"are degraded;\n"
		"                   exit 1 when anything is degraded or lost\n"
		"  rebuild REGION   group targets: recreate the region on members that "
		"lack it and\n"
		"                   repair damaged subsegments, with progress\n");
}

static const char *mode_name(enum pmu_mode m)
{
	switch (m) {
	case PMU_MODE_OVERWRITE:
		return "overwrite";
	case PMU_MODE_APPEND:
		return "append";
	}
	return "unknown";
}

static const char *proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 1:
		return "icmp";
	case 58:
		return "icmpv6";
	case 132:
		return "sctp";
	}
	snprintf(buf, len, "proto%u", proto);
	return buf;
}

/* "10.0.0.1:80" or "[2001:db8::1]:80". */
static void format_endpoint(const struct ckpt_key *k, int side, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (k->family == 4) {
		inet_ntop(AF_INET, k->addr[side], a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, k->port[side]);
	} else {
		inet_ntop(AF_INET6, k->addr[side], a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, k->port[side]);
	}
}

static void format_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (ns == 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "never");
		return;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool is_pmem_target(const char *target)
{
	return strncmp(target, "pmem:", 5) == 0;
}

/*
 * The store's total and free space and, in the operator's view, every region in it. Only
 * the embedded target exposes them, and only through the store itself: the file is mapped,
 * read and closed before the client maps it, so the two mappings never overlap in this
 * process.
 */
static int read_store(struct ctl *ctl)
{
	struct pmu_store *s;

	/* A missing file is for connecting to report, once. */
	if (!is_pmem_target(ctl->target) || access(ctl->target + 5, F_OK) != 0)
		return 0;
	s = pmu_store_open(ctl->target + 5, 0, 0);
	if (s == NULL) {
		/* The store logged why; opening it again to connect would say it twice. */
		fprintf(stderr, "ckptctl: cannot connect to %s: %s\n", ctl->target,
			strerror(errno));
		return -1;
	}
	pmu_store_space(s, &ctl->total, &ctl->free_bytes);
	ctl->have_space = true;
	if (ctl->operator_view) {
		ctl->all = calloc(PMU_MAX_REGIONS, sizeof(*ctl->all));
		if (ctl->all != NULL)
			ctl->nall = pmu_region_list(s, ctl->all, PMU_MAX_REGIONS);
	}
	pmu_store_close(&s);
	return 0;
}

/*
 * In the operator's view, the owner a region argument names: OWNER/NAME, or the one owner
 * that has NAME. @p name is left pointing at the name. @return 0, or -1 (said) when several
 * owners have it.
 */
static int resolve_owner(struct ctl *ctl, const char **name)
{
	const char *slash = strchr(*name, '/');
	const char *found = NULL;
	int n = 0;

	if (slash != NULL) {
		snprintf(ctl->owner, sizeof(ctl->owner), "%.*s", (int)(slash - *name), *name);
		ctl->tenant = ctl->owner;
		*name = slash + 1;
		return 0;
	}
	for (int i = 0; i < ctl->nall && i < PMU_MAX_REGIONS; i++) {
		if (strcmp(ctl->all[i].name, *name) != 0)
			continue;
		if (n++ > 0) {
			fprintf(stderr,
				"ckptctl: region '%s' exists for owners %s and %s (at least): name "
				"one as OWNER/NAME\n",
				*name, found, ctl->all[i].owner);
			return -1;
		}
		found = ctl->all[i].owner;
	}
	if (found != NULL) {
		snprintf(ctl->owner, sizeof(ctl->owner), "%s", found);
		ctl->tenant = ctl->owner;
	}
	return 0;
}

/* The tenant of a secret file's first entry, so --tenant can be left out. */
static int first_tenant(const char *path, char *out, size_t len)
{
	char line[512], name[PMU_NAME_MAX], secret[256];
	FILE *f = fopen(path, "r");
	int rc = -EINVAL;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#');
		int n;

		if (hash != NULL)
			*hash = '\0';
		n = sscanf(line, "%63s %255s", name, secret);
		if (n <= 0)
			continue;
		/* A bare secret belongs to the tenant "default". */
		snprintf(out, len, "%s", n == 2 ? name : "default");
		rc = 0;
		break;
	}
	/* Only the name was wanted; the secret does not outlive this frame. */
	memset(secret, 0, sizeof(secret));
	memset(line, 0, sizeof(line));
	fclose(f);
	return rc;
}

static int connect_target(struct ctl *ctl)
{
	struct ckpt_client_opts opts = {.allow_shm = ctl->allow_shm};
	uint8_t secret[64];
	int n = 0;

	if (ctl->secret_file != NULL) {
		if (ctl->tenant == NULL) {
			n = first_tenant(ctl->secret_file, ctl->file_tenant,
					 sizeof(ctl->file_tenant));
			if (n < 0) {
				fprintf(stderr, "ckptctl: %s: no entry: %s\n", ctl->secret_file,
					strerror(-n));
				return -1;
			}
			ctl->tenant = ctl->file_tenant;
		}
		n = ckpt_secret_load(ctl->secret_file, ctl->tenant, secret, sizeof(secret));
		if (n < 0) {
			fprintf(stderr, "ckptctl: %s: cannot load secret of tenant '%s': %s\n",
				ctl->secret_file, ctl->tenant, strerror(-n));
			return -1;
		}
		opts.secret = secret;
		opts.secret_len = (size_t)n;
	}
	opts.tenant = ctl->tenant;
	ctl->cl = ckpt_connect(ctl->target, &opts);
	/* The client copied the secret; it does not need to stay in this frame. */
	memset(secret, 0, sizeof(secret));
	if (ctl->cl == NULL) {
		fprintf(stderr, "ckptctl: cannot connect to %s: %s\n", ctl->target,
			strerror(errno));
		return -1;
	}
	return 0;
}

static void print_region_line(const struct ckpt_region_info *ri)
{
	const struct pmu_region_info *r = &ri->r;

	printf("%s owner=%s mode=%s size=%" PRIu64, r->name, r->owner, mode_name(r->mode), r->size);
	if (r->mode == PMU_MODE_OVERWRITE)
		printf(" slots=%" PRIu64 " slot_size=%" PRIu32 " journal=%" PRIu64, r->nslots,
		       r->slot_size, r->ring_size);
	else
		printf(" ring=%" PRIu64, r->ring_size);
	printf(" lease=%s\n", ri->lease_alive ? "alive" : "expired");
}

static int cmd_ls(struct ctl *ctl)
{
	struct ckpt_region_info *list;
	int n, rc;

	list = calloc(MAX_LIST, sizeof(*list));
	if (list == NULL) {
		fprintf(stderr, "ckptctl: ls: out of memory\n");
		return EXIT_USAGE;
	}
	if (ctl->operator_view && ctl->all != NULL) {
		/* Every owner's: the table as the file holds it. */
		n = ctl->nall;
		for (int i = 0; i < n && i < MAX_LIST; i++) {
			list[i].r = ctl->all[i];
			list[i].lease_alive = ctl->all[i].lease_ns > pmu_now_ns();
		}
	} else {
		n = ckpt_region_list(ctl->cl, list, MAX_LIST);
	}
	if (n < 0) {
		fprintf(stderr, "ckptctl: ls: %s: %s\n", ctl->target, strerror(-n));
		rc = EXIT_USAGE;
		goto out_free_list;
	}
	for (int i = 0; i < n && i < MAX_LIST; i++)
		print_region_line(&list[i]);
	printf("regions: %d\n", n);
	if (ctl->have_space)
		printf("store: total=%" PRIu64 " free=%" PRIu64 "\n", ctl->total, ctl->free_bytes);
	rc = 0;
out_free_list:
	free(list);
	return rc;
}

static void print_lease(const struct ckpt_region_info *ri)
{
	char when[64];
	uint64_t now = pmu_now_ns();

	format_time(ri->r.lease_ns, when, sizeof(when));
	if (ri->r.lease_ns == 0)
		printf("lease: expired (never renewed)\n");
	else if (ri->lease_alive)
		printf("lease: alive until %s (%.1f s left)\n", when,
		       ri->r.lease_ns > now ? (double)(ri->r.lease_ns - now) / 1e9 : 0.0);
	else
		printf("lease: expired at %s\n", when);
	/* The fencing epoch (ckpt_epoch_take()): who may write now, after a failover. */
	if (ri->r.epoch == 0)
		printf("epoch: 0 (never taken)\n");
	else
		printf("epoch: %" PRIu64 "\n", ri->r.epoch);
}

static void print_store_space(const struct ctl *ctl)
{
	if (!ctl->have_space)
		return;
	printf("store_total: %" PRIu64 "\n", ctl->total);
	printf("store_free: %" PRIu64 "\n", ctl->free_bytes);
}

static int cmd_stat_store(struct ctl *ctl)
{
	struct ckpt_region_info one;
	int n = ctl->operator_view && ctl->all != NULL ? ctl->nall
						       : ckpt_region_list(ctl->cl, &one, 1);

	if (n < 0) {
		fprintf(stderr, "ckptctl: stat: %s: %s\n", ctl->target, strerror(-n));
		return EXIT_USAGE;
	}
	printf("target: %s\n", ckpt_target(ctl->cl));
	printf("regions: %d\n", n);
	print_store_space(ctl);
	return 0;
}

static int cmd_stat(struct ctl *ctl, const char *name)
{
	struct ckpt_region_info ri;
	const struct pmu_region_info *r = &ri.r;
	char when[64];
	int rc;

	if (name == NULL)
		return cmd_stat_store(ctl);
	rc = ckpt_region_stat(ctl->cl, name, &ri);
	if (rc < 0) {
		fprintf(stderr, "ckptctl: stat: region '%s': %s\n", name, strerror(-rc));
		return EXIT_USAGE;
	}
	printf("name: %s\n", r->name);
	printf("owner: %s\n", r->owner);
	printf("mode: %s\n", mode_name(r->mode));
	printf("index: %" PRIu32 "\n", r->index);
	printf("file_offset: %" PRIu64 "\n", r->offset);
	printf("size: %" PRIu64 "\n", r->size);
	format_time(r->created_ns, when, sizeof(when));
	printf("created: %s\n", when);
	printf("pmem: %s\n", ri.is_pmem ? "yes" : "no");
	print_lease(&ri);
	if (r->mode == PMU_MODE_OVERWRITE) {
		printf("slot_table_offset: %u\n", PMU_REGION_HDR);
		printf("slot_size: %" PRIu32 "\n", r->slot_size);
		printf("slots: %" PRIu64 "\n", r->nslots);
		printf("pairs: %" PRIu64 "\n", r->nslots / 2);
	}
	if (r->ring_size != 0 || r->mode == PMU_MODE_APPEND) {
		printf("%s_offset: %" PRIu64 "\n", r->mode == PMU_MODE_APPEND ? "ring" : "journal",
		       r->ring_off);
		printf("%s_size: %" PRIu64 "\n", r->mode == PMU_MODE_APPEND ? "ring" : "journal",
		       r->ring_size);
		printf("head: %" PRIu64 "\n", ri.ring_head);
		printf("tail: %" PRIu64 "\n", ri.ring_tail);
		printf("unread: %" PRIu64 "\n",
		       ri.ring_head >= ri.ring_tail ? ri.ring_head - ri.ring_tail : 0);
	}
	print_store_space(ctl);
	return 0;
}

static void print_record(const struct ckpt_rec *rec)
{
	char a[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8], pbuf[16];

	format_endpoint(&rec->key, 0, a, sizeof(a));
	format_endpoint(&rec->key, 1, b, sizeof(b));
	if (rec->slot_pair == CKPT_REC_NO_SLOT)
		printf("pair=- ");
	else
		printf("pair=%" PRIu32 " ", rec->slot_pair);
	printf("module=%u slice=%u conn=0x%016" PRIx64 " gen=%" PRIu64 " key=%s > %s %s len=%u%s\n",
	       rec->module_id, rec->slice_version, rec->conn_id, rec->generation, a, b,
	       proto_name(rec->key.proto, pbuf, sizeof(pbuf)), rec->payload_len,
	       (rec->flags & CKPT_REC_F_TOMBSTONE) ? " tombstone" : "");
}

static int dump_cb(const struct ckpt_rec *rec, void *arg)
{
	(void)arg;
	print_record(rec);
	return 0;
}

static int count_cb(const struct ckpt_rec *rec, void *arg)
{
	(void)rec;
	(void)arg;
	return 0;
}

/*
 * Read a region the way a restore (or a standby, without consuming) would.
 * @return 0, or the exit code (the reason said): a region that cannot be opened is a usage
 *   or connection error, one whose geometry does not check or that cannot be read as its
 *   geometry says is a verification failure.
 */
static int scan_region(struct ctl *ctl, const char *name, ckpt_rec_cb cb,
		       struct ckpt_scan_stats *st)
{
	struct ckpt_region *r;
	char why[256];
	int rc;

	rc = ckpt_region_open(ctl->cl, name, &r);
	if (rc < 0) {
		fprintf(stderr, "ckptctl: cannot open region '%s': %s\n", name, strerror(-rc));
		return EXIT_USAGE;
	}
	memset(st, 0, sizeof(*st));
	/* The reads below index by the geometry the target gave: it must be a layout. */
	if (pmu_region_check(ckpt_region_geometry(r), 0, why, sizeof(why)) != 0) {
		fprintf(stderr, "ckptctl: region '%s': %s\n", name, why);
		ckpt_region_close(&r);
		return EXIT_VERIFY;
	}
	if (ckpt_region_geometry(r)->mode == PMU_MODE_APPEND)
		rc = ckpt_log_read(r, cb, NULL, true, st);
	else
		rc = ckpt_state_read(r, cb, NULL, st);
	if (rc < 0)
		fprintf(stderr, "ckptctl: reading region '%s': %s\n", name, strerror(-rc));
	ckpt_region_close(&r);
	if (rc >= 0)
		return 0;
	return rc == -EINVAL || rc == -EIO || rc == -EBADMSG ? EXIT_VERIFY : EXIT_USAGE;
}

static void print_stats(const struct ckpt_scan_stats *st)
{
	printf("valid=%" PRIu64 " empty=%" PRIu64 " invalid=%" PRIu64 " superseded=%" PRIu64
	       " misplaced=%" PRIu64 " tombstones=%" PRIu64 "\n",
	       st->records, st->empty, st->invalid, st->superseded, st->misplaced, st->tombstones);
}

static int cmd_dump(struct ctl *ctl, const char *name)
{
	struct ckpt_scan_stats st;
	int rc = scan_region(ctl, name, dump_cb, &st);

	if (rc != 0)
		return rc;
	/* The summary is a comment so that record lines stay the only uncommented ones. */
	printf("# ");
	print_stats(&st);
	return 0;
}

/* Verify region @p name, said as @p label. */
static int cmd_verify(struct ctl *ctl, const char *name, const char *label)
{
	struct ckpt_scan_stats st;
	int rc = scan_region(ctl, name, count_cb, &st);

	if (rc != 0) {
		if (rc == EXIT_VERIFY)
			fprintf(stderr, "ckptctl: verify: region '%s' FAILED\n", label);
		return rc;
	}
	print_stats(&st);
	if (st.invalid != 0 || st.misplaced != 0) {
		fprintf(stderr,
			"ckptctl: verify: region '%s' FAILED: %" PRIu64 " invalid, %" PRIu64
			" misplaced\n",
			label, st.invalid, st.misplaced);
		return EXIT_VERIFY;
	}
	printf("verify: %s ok\n", label);
	return 0;
}

static void print_fault(const struct pmu_fault *f, void *arg)
{
	fprintf(stderr, "ckptctl: verify: %s: %s\n", (const char *)arg, f->msg);
}

/*
 * pmem: the store itself, as pmu_store_open() checks it, every fault said with where it is.
 * @return 0 or an exit code.
 */
static int verify_store(const struct ctl *ctl)
{
	const char *path = ctl->target + 5;
	int n = pmu_store_check(path, print_fault, (void *)path);

	if (n < 0) {
		fprintf(stderr, "ckptctl: verify: %s: %s\n", path, strerror(-n));
		return EXIT_USAGE;
	}
	if (n > 0) {
		fprintf(stderr, "ckptctl: verify: store %s FAILED: %d fault(s)\n", path, n);
		return EXIT_VERIFY;
	}
	printf("verify: store %s ok\n", path);
	return 0;
}

/* pmem: the store, then each of its regions (every owner's in the operator's view). */
static int cmd_verify_store(struct ctl *ctl)
{
	struct ckpt_region_info *mine = NULL;
	int rc = verify_store(ctl), worst = 0, n;

	if (rc != 0)
		return rc;
	if (read_store(ctl) < 0)
		return EXIT_USAGE;
	if (!ctl->operator_view) {
		if (connect_target(ctl) < 0)
			return EXIT_USAGE;
		mine = calloc(MAX_LIST, sizeof(*mine));
		n = mine == NULL ? -ENOMEM : ckpt_region_list(ctl->cl, mine, MAX_LIST);
		if (n < 0) {
			fprintf(stderr, "ckptctl: verify: listing %s: %s\n", ctl->target,
				strerror(-n));
			free(mine);
			return EXIT_USAGE;
		}
	} else {
		n = ctl->all != NULL ? ctl->nall : 0;
	}
	for (int i = 0; i < n && i < MAX_LIST; i++) {
		const struct pmu_region_info *r = mine != NULL ? &mine[i].r : &ctl->all[i];
		char label[2 * PMU_NAME_MAX];

		snprintf(label, sizeof(label), "%s/%s", r->owner, r->name);
		if (ctl->operator_view) {
			/* Each owner's regions are in its own namespace. */
			snprintf(ctl->owner, sizeof(ctl->owner), "%s", r->owner);
			ctl->tenant = ctl->owner;
			if (connect_target(ctl) < 0) {
				worst = EXIT_USAGE;
				continue;
			}
		}
		rc = cmd_verify(ctl, r->name, label);
		if (rc > worst)
			worst = rc;
		if (ctl->operator_view)
			ckpt_disconnect(&ctl->cl);
	}
	ckpt_disconnect(&ctl->cl);
	free(mine);
	return worst;
}

static const char *member_state(enum ckpt_member_state s)
{
	switch (s) {
	case CKPT_MEMBER_OK:
		return "ok";
	case CKPT_MEMBER_DOWN:
		return "down";
	case CKPT_MEMBER_EMPTY:
		return "empty";
	case CKPT_MEMBER_FOREIGN:
		return "foreign";
	case CKPT_MEMBER_REBUILDING:
		return "rebuilding";
	}
	return "unknown";
}

static int cmd_health(struct ctl *ctl, const char *name)
{
	struct ckpt_group_health *h;
	struct ckpt_region *r;
	bool bad = false;
	int rc;

	rc = ckpt_region_open(ctl->cl, name, &r);
	if (rc < 0) {
		fprintf(stderr, "ckptctl: cannot open region '%s': %s\n", name, strerror(-rc));
		return EXIT_USAGE;
	}
	h = calloc(1, sizeof(*h));
	rc = h == NULL ? -ENOMEM : ckpt_group_health(r, true, h);
	if (rc == -EINVAL)
		fprintf(stderr, "ckptctl: health: %s is not a group target\n", ctl->target);
	if (rc < 0 && rc != -EIO) {
		ckpt_region_close(&r);
		free(h);
		return EXIT_USAGE;
	}
	printf("group: %s k=%u m=%u members=%u\n", h->code, h->k, h->m, h->members);
	for (unsigned int i = 0; i < h->members; i++) {
		const struct ckpt_member_health *m = &h->member[i];

		printf("member %u: %s %s missing=%" PRIu64 " damaged=%" PRIu64 "\n", i, m->target,
		       member_state(m->state), m->missing, m->damaged);
		bad |= m->state != CKPT_MEMBER_OK || m->missing != 0 || m->damaged != 0;
	}
	printf("span: %" PRIu64 "..%" PRIu64 "\n", h->tail, h->head);
	printf("segments: %" PRIu64 " degraded=%" PRIu64 " lost=%" PRIu64 "\n", h->segments,
	       h->degraded, h->lost);
	for (unsigned int i = 0; i < h->nfirst_bad; i++)
		printf("degraded segment at %" PRIu64 "\n", h->first_bad[i]);
	bad |= h->degraded != 0 || h->lost != 0 || rc != 0;
	printf("health: %s %s\n", name, h->lost || rc ? "LOST" : bad ? "degraded" : "ok");
	ckpt_region_close(&r);
	free(h);
	return bad ? EXIT_VERIFY : 0;
}

static int cmd_rebuild(struct ctl *ctl, const char *name)
{
	struct ckpt_group_health h;
	struct ckpt_region *r;
	unsigned int shown = 0;
	int rc;

	rc = ckpt_region_open(ctl->cl, name, &r);
	if (rc < 0) {
		fprintf(stderr, "ckptctl: cannot open region '%s': %s\n", name, strerror(-rc));
		return EXIT_USAGE;
	}
	rc = ckpt_group_rebuild(r);
	if (rc >= 0) {
		printf("rebuild: %s: %d member(s) created empty; damaged subsegments repaired\n",
		       name, rc);
		rc = 1;
	}
	while (rc > 0) {
		rc = ckpt_poll(ctl->cl);
		if (rc >= 0)
			rc = ckpt_group_health(r, false, &h);
		if (rc < 0)
			break;
		if (h.rebuild_total != 0 && h.rebuild_done * 10 / h.rebuild_total >= shown) {
			printf("rebuild: %" PRIu64 "%% (%" PRIu64 " of %" PRIu64 " bytes)\n",
			       h.rebuild_done * 100 / h.rebuild_total, h.rebuild_done,
			       h.rebuild_total);
			fflush(stdout);
			shown = (unsigned int)(h.rebuild_done * 10 / h.rebuild_total) + 1;
		}
		rc = h.rebuilding ? 1 : 0;
	}
	if (rc == 0)
		rc = ckpt_region_close(&r);
	else
		ckpt_region_close(&r);
	if (rc < 0) {
		fprintf(stderr, "ckptctl: rebuild of '%s' failed: %s\n", name, strerror(-rc));
		return EXIT_USAGE;
	}
	printf("rebuild: %s done\n", name);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 't'},
		{"pmem", required_argument, NULL, 'p'},
		{"secret-file", required_argument, NULL, 's'},
		{"tenant", required_argument, NULL, 'n'},
		{"allow-shm", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ctl ctl = {0};
	char *pmem_target = NULL;
	const char *cmd, *name;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "+t:p:s:n:Sh", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			ctl.target = optarg;
			break;
		case 'p':
			free(pmem_target);
			if (asprintf(&pmem_target, "pmem:%s", optarg) < 0) {
				fprintf(stderr, "ckptctl: out of memory\n");
				return EXIT_USAGE;
			}
			ctl.target = pmem_target;
			break;
		case 's':
			ctl.secret_file = optarg;
			break;
		case 'n':
			ctl.tenant = optarg;
			break;
		case 'S':
			ctl.allow_shm = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			rc = EXIT_USAGE;
			goto out_free_target;
		}
	}
	if (ctl.target == NULL)
		ctl.target = getenv("CKPT_TARGET");
	if (ctl.target == NULL || optind >= argc) {
		fprintf(stderr, "ckptctl: %s\n",
			ctl.target == NULL ? "no target (--target, --pmem or CKPT_TARGET)"
					   : "no command");
		usage(stderr);
		rc = EXIT_USAGE;
		goto out_free_target;
	}
	cmd = argv[optind];
	name = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (optind + 2 < argc || (strcmp(cmd, "ls") == 0 && name != NULL) ||
	    ((strcmp(cmd, "dump") == 0 || strcmp(cmd, "health") == 0 ||
	      strcmp(cmd, "rebuild") == 0 ||
	      (strcmp(cmd, "verify") == 0 && !is_pmem_target(ctl.target))) &&
	     name == NULL)) {
		fprintf(stderr, "ckptctl: wrong arguments for '%s'\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
		goto out_free_target;
	}
	if (strcmp(cmd, "ls") != 0 && strcmp(cmd, "stat") != 0 && strcmp(cmd, "dump") != 0 &&
	    strcmp(cmd, "verify") != 0 && strcmp(cmd, "health") != 0 &&
	    strcmp(cmd, "rebuild") != 0) {
		fprintf(stderr, "ckptctl: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
		goto out_free_target;
	}
	ctl.operator_view =
		is_pmem_target(ctl.target) && ctl.tenant == NULL && ctl.secret_file == NULL;
	if (strcmp(cmd, "verify") == 0 && name == NULL) {
		rc = cmd_verify_store(&ctl);
		goto out_free_target;
	}
	/* A store that does not check is a verification failure, not a connection error. */
	if (strcmp(cmd, "verify") == 0 && is_pmem_target(ctl.target) &&
	    access(ctl.target + 5, F_OK) == 0) {
		rc = verify_store(&ctl);
		if (rc != 0)
			goto out_free_target;
	}
	if (read_store(&ctl) < 0 ||
	    (ctl.operator_view && name != NULL && resolve_owner(&ctl, &name) < 0)) {
		rc = EXIT_USAGE;
		goto out_free_target;
	}
	if (connect_target(&ctl) < 0) {
		rc = EXIT_USAGE;
		goto out_free_target;
	}
	if (strcmp(cmd, "ls") == 0)
		rc = cmd_ls(&ctl);
	else if (strcmp(cmd, "stat") == 0)
		rc = cmd_stat(&ctl, name);
	else if (strcmp(cmd, "dump") == 0)
		rc = cmd_dump(&ctl, name);
	else if (strcmp(cmd, "health") == 0)
		rc = cmd_health(&ctl, name);
	else if (strcmp(cmd, "rebuild") == 0)
		rc = cmd_rebuild(&ctl, name);
	else
		rc = cmd_verify(&ctl, name, argv[optind + 1]);
	ckpt_disconnect(&ctl.cl);
out_free_target:
	free(ctl.all);
	free(pmem_target);
	return rc;
}
