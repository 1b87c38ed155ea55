/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fills a pmem: store with records whose every field ckptctl.sh knows in advance:
 *
 *   region "state" (overwrite, 64 KiB, 256-byte slots, no journal), lease renewed for 60 s:
 *     pairs 0..9: generation 1 then 2; module 1, slice version 2, conn id 0x1000 + pair,
 *                 key 10.0.0.1:(1000 + pair) > 10.0.0.2:80 tcp, payload 10 + pair bytes
 *     pair 10:    generation 1 (data) then 2 (tombstone)
 *   region "log" (append, 32 KiB), lease never renewed:
 *     records 1..5: module 3, slice 1, conn id 0x2000 + n, generation n,
 *                   key [2001:db8::1]:(2000 + n) > [2001:db8::2]:21 tcp, payload 20 bytes;
 *                   record 5 is a tombstone
 *
 * With --misplace it only adds, to an existing store, one valid record that claims pair 60
 * but sits in slot 101 (pair 50's odd slot), the way a bug in a writer would leave it.
 *
 * With --tenant2 it only adds tenant "tenant2"'s own region "state" (append, 16 KiB), a
 * name tenant "default" also has.
 *
 * With --damage KIND it only damages an existing store the way issue 11 found it could be:
 *   overflow-slots  state's table entry says 2^56 + 2 slots (the product with the slot size
 *                   wraps to 512), its commit word made to vouch for it
 *   overlap         log's table entry moved onto state's bytes, commit word made to vouch
 *   wrap-at-zero    a wrap marker at position 0 of log's ring, where no producer leaves one
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "holdfast/ckpt.h"
#include "holdfast/pmu.h"
#include "pmu_media.h" /* a test helper may forge table entries */

#define STORE_SIZE (4u << 20)

static struct ckpt_rec state_rec(uint32_t pair, uint64_t gen, uint8_t *payload)
{
	struct ckpt_rec rec = {
		.module_id = 1,
		.slice_version = 2,
		.conn_id = 0x1000 + pair,
		.generation = gen,
		.slot_pair = pair,
		.key = {.family = 4, .proto = 6, .port = {(uint16_t)(1000 + pair), 80}},
		.payload_len = (uint16_t)(10 + pair),
		.payload = payload,
	};

	memcpy(rec.key.addr[0], (uint8_t[]){10, 0, 0, 1}, 4);
	memcpy(rec.key.addr[1], (uint8_t[]){10, 0, 0, 2}, 4);
	memset(payload, (int)(pair * 16 + gen), rec.payload_len);
	return rec;
}

static struct ckpt_rec log_rec(uint64_t n, uint8_t *payload)
{
	struct ckpt_rec rec = {
		.module_id = 3,
		.slice_version = 1,
		.conn_id = 0x2000 + n,
		.generation = n,
		.slot_pair = CKPT_REC_NO_SLOT,
		.key = {.family = 6, .proto = 6, .port = {(uint16_t)(2000 + n), 21}},
		.payload_len = 20,
		.payload = payload,
	};

	rec.key.addr[0][0] = 0x20;
	rec.key.addr[0][1] = 0x01;
	rec.key.addr[0][2] = 0x0d;
	rec.key.addr[0][3] = 0xb8;
	memcpy(rec.key.addr[1], rec.key.addr[0], 16);
	rec.key.addr[0][15] = 1;
	rec.key.addr[1][15] = 2;
	memset(payload, (int)n, rec.payload_len);
	if (n == 5) {
		rec.flags = CKPT_REC_F_TOMBSTONE;
		rec.payload_len = 0;
		rec.payload = NULL;
	}
	return rec;
}

static int fill_state(struct ckpt_client *cl)
{
	struct pmu_region_params p = {
		.name = "state", .owner = "default", .mode = PMU_MODE_OVERWRITE, .size = 65536};
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	struct ckpt_region *r;
	uint64_t ticket;
	int rc;

	rc = ckpt_region_create(cl, &p, &r);
	if (rc < 0) {
		fprintf(stderr, "ckptctl_fill: create state: %s\n", strerror(-rc));
		return rc;
	}
	for (uint64_t gen = 1; gen <= 2; gen++) {
		for (uint32_t pair = 0; pair <= 10; pair++) {
			struct ckpt_rec rec = state_rec(pair, gen, payload);

			if (pair == 10 && gen == 2) {
				rec.flags = CKPT_REC_F_TOMBSTONE;
				rec.payload_len = 0;
				rec.payload = NULL;
			}
			rc = ckpt_slot_write(r, &rec, false, &ticket);
			if (rc < 0) {
				fprintf(stderr, "ckptctl_fill: slot write: %s\n", strerror(-rc));
				goto out_close;
			}
		}
		/* Generation 1 is durable before generation 2 lands in the other slot. */
		rc = ckpt_sync(r);
		if (rc < 0) {
			fprintf(stderr, "ckptctl_fill: sync state: %s\n", strerror(-rc));
			goto out_close;
		}
	}
	rc = ckpt_lease_renew(r, 60000);
	if (rc < 0)
		fprintf(stderr, "ckptctl_fill: lease: %s\n", strerror(-rc));
out_close:
	ckpt_region_close(&r);
	return rc;
}

static int fill_log(struct ckpt_client *cl)
{
	struct pmu_region_params p = {
		.name = "log", .owner = "default", .mode = PMU_MODE_APPEND, .size = 32768};
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	struct ckpt_region *r;
	uint64_t ticket;
	int rc;

	rc = ckpt_region_create(cl, &p, &r);
	if (rc < 0) {
		fprintf(stderr, "ckptctl_fill: create log: %s\n", strerror(-rc));
		return rc;
	}
	for (uint64_t n = 1; n <= 5; n++) {
		struct ckpt_rec rec = log_rec(n, payload);

		rc = ckpt_log_append(r, &rec, &ticket);
		if (rc < 0) {
			fprintf(stderr, "ckptctl_fill: log append: %s\n", strerror(-rc));
			goto out_close;
		}
	}
	rc = ckpt_sync(r);
	if (rc < 0)
		fprintf(stderr, "ckptctl_fill: sync log: %s\n", strerror(-rc));
out_close:
	ckpt_region_close(&r);
	return rc;
}

/* Written with the store itself: the client API cannot put a record in the wrong slot. */
static int misplace(const char *path)
{
	uint8_t payload[CKPT_REC_MAX_PAYLOAD], buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec rec = state_rec(60, 1, payload);
	struct pmu_region_info info;
	struct pmu_store *s;
	int n, rc;

	s = pmu_store_open(path, 0, 0);
	if (s == NULL) {
		fprintf(stderr, "ckptctl_fill: open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	rc = pmu_region_lookup(s, "default", "state", &info);
	if (rc < 0) {
		fprintf(stderr, "ckptctl_fill: lookup state: %s\n", strerror(-rc));
		goto out_close;
	}
	n = ckpt_rec_encode(&rec, buf, sizeof(buf));
	if (n < 0) {
		rc = n;
		goto out_close;
	}
	pmu_memcpy_persist(
		s, (uint8_t *)pmu_region_base(s, &info) + PMU_REGION_HDR + 101 * info.slot_size,
		buf, (size_t)n);
	rc = 0;
out_close:
	pmu_store_close(&s);
	return rc;
}

static int add_tenant2(const char *path)
{
	struct ckpt_client_opts opts = {.tenant = "tenant2"};
	struct pmu_region_params p = {.name = "state", .mode = PMU_MODE_APPEND, .size = 16384};
	struct ckpt_client *cl;
	struct ckpt_region *r;
	char target[4096];
	int rc;

	snprintf(target, sizeof(target), "pmem:%s", path);
	cl = ckpt_connect(target, &opts);
	if (cl == NULL) {
		fprintf(stderr, "ckptctl_fill: connect %s: %s\n", target, strerror(errno));
		return -errno;
	}
	rc = ckpt_region_create(cl, &p, &r);
	if (rc == 0)
		rc = ckpt_region_close(&r);
	else
		fprintf(stderr, "ckptctl_fill: create tenant2's state: %s\n", strerror(-rc));
	ckpt_disconnect(&cl);
	return rc;
}

/* The table entry of default's region @p name, read into @p e. @return its index or -1. */
static int find_entry(int fd, const char *name, struct pmu_entry *e)
{
	for (int i = 0; i < PMU_MAX_REGIONS; i++) {
		off_t at = PMU_TABLE_OFF + (off_t)i * PMU_ENTRY_SIZE;

		if (pread(fd, e, sizeof(*e), at) != (ssize_t)sizeof(*e))
			return -1;
		if (e->commit != 0 && strcmp(e->name, name) == 0 &&
		    strcmp(e->owner, "default") == 0)
			return i;
	}
	return -1;
}

static int forge_entry(int fd, int i, struct pmu_entry *e)
{
	e->commit = pmu_entry_commit_word(e);
	return pwrite(fd, e, sizeof(*e), PMU_TABLE_OFF + (off_t)i * PMU_ENTRY_SIZE) ==
			       (ssize_t)sizeof(*e)
		       ? 0
		       : -EIO;
}

static int wrap_at_zero(const char *path)
{
	const uint32_t wrap = PMU_RING_WRAP_MAGIC;
	struct pmu_region_info info;
	struct pmu_store *s = pmu_store_open(path, 0, 0);
	int rc;

	if (s == NULL)
		return -errno;
	rc = pmu_region_lookup(s, "default", "log", &info);
	if (rc == 0)
		pmu_memcpy_persist(s, (uint8_t *)pmu_region_base(s, &info) + info.ring_off, &wrap,
				   sizeof(wrap));
	pmu_store_close(&s);
	return rc;
}

static int damage(const char *kind, const char *path)
{
	struct pmu_entry state, log;
	int fd, is, il, rc = -EINVAL;

	if (strcmp(kind, "wrap-at-zero") == 0)
		return wrap_at_zero(path);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	is = find_entry(fd, "state", &state);
	il = find_entry(fd, "log", &log);
	if (is >= 0 && il >= 0 && strcmp(kind, "overflow-slots") == 0) {
		state.nslots = (1ull << 56) + 2;
		rc = forge_entry(fd, is, &state);
	} else if (is >= 0 && il >= 0 && strcmp(kind, "overlap") == 0) {
		log.offset = state.offset + PMU_ALIGN;
		rc = forge_entry(fd, il, &log);
	}
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct ckpt_client_opts opts = {.create_store = true, .store_size = STORE_SIZE};
	struct ckpt_client *cl;
	char target[4096];
	int rc;

	if (argc == 3 && strcmp(argv[1], "--misplace") == 0)
		return misplace(argv[2]) == 0 ? 0 : 1;
	if (argc == 3 && strcmp(argv[1], "--tenant2") == 0)
		return add_tenant2(argv[2]) == 0 ? 0 : 1;
	if (argc == 4 && strcmp(argv[1], "--damage") == 0)
		return damage(argv[2], argv[3]) == 0 ? 0 : 1;
	if (argc != 2) {
		fprintf(stderr, "usage: ckptctl_fill [--misplace | --tenant2 | --damage KIND] "
				"STORE_FILE\n");
		return 2;
	}
	snprintf(target, sizeof(target), "pmem:%s", argv[1]);
	cl = ckpt_connect(target, &opts);
	if (cl == NULL) {
		fprintf(stderr, "ckptctl_fill: connect %s: %s\n", target, strerror(errno));
		return 2;
	}
	rc = fill_state(cl);
	if (rc == 0)
		rc = fill_log(cl);
	ckpt_disconnect(&cl);
	return rc == 0 ? 0 : 1;
}
