/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: opening a damaged store file.
 *
 * A valid 1 MiB store is built once: five regions of both modes and two owners, with
 * records in slots, an unapplied journal, and an append ring several laps in (a wrap marker
 * behind it). Each input is a list of byte patches applied to a copy of it, biased to the
 * superblock and the table, with ops that make a patched entry's commit word or the
 * superblock's CRC check again (so that damage reaches past the CRCs):
 *
 *	op % 8 = 0  superblock   [op][off][n][n bytes]           at off % 64
 *	         1  table entry  [op][entry][field][n][n bytes]  entry % 8, field 0..255
 *	         2  region       [op][region][3 bytes][n][n bytes] inside that region
 *	         3  anywhere     [op][3 bytes][n][n bytes]
 *	         4  recommit     [op][entry]                     its commit word checks again
 *	         5  re-CRC       [op]                            the superblock's CRC checks again
 *	         6, 7: nothing
 * (n = byte % 16 + 1.) The patched image is written to a file in /dev/shm and opened.
 *
 * Properties (a broken one aborts; ASan and UBSan watch the rest):
 *   - pmu_store_open() accepts exactly the files pmu_store_check() finds no fault in;
 *   - a refused file is made a new, empty store by PMU_FORMAT;
 *   - an accepted store's regions pass pmu_region_check(), lie inside the file, share no
 *     byte and no (owner, name), and are found again by lookup; every ring walks, every
 *     slot decodes or is refused, every journal applies, all without reading outside;
 *   - every region's epoch reads back as listed and moves by compare-and-swap, and the
 *     store still checks afterwards (the epoch lies outside the entry's CRC);
 *   - a region created in it overlaps none, and the store still checks afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "holdfast/ckpt.h"
#include "holdfast/pmu.h"
#include "pmu_media.h"

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_store: property broken: %s (line %d)\n", #c,         \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define IMAGE_SIZE PMU_MIN_FILE_SIZE
#define NREG	   5

static uint8_t base_image[IMAGE_SIZE], image[IMAGE_SIZE], back[IMAGE_SIZE];
static uint64_t reg_off[NREG], reg_size[NREG];
static char path[64];

static void quiet(enum ckpt_log_level level, const char *component, const char *msg)
{
	(void)level;
	(void)component;
	(void)msg;
}

static struct ckpt_rec rec_of(uint32_t pair, uint64_t gen, uint8_t *payload, uint16_t len)
{
	struct ckpt_rec rec = {
		.module_id = 1,
		.slice_version = 1,
		.conn_id = 0x1000 + pair,
		.generation = gen,
		.slot_pair = pair,
		.key = {.family = 4, .proto = 6, .port = {(uint16_t)(1000 + pair), 80}},
		.payload_len = len,
		.payload = payload,
	};

	memset(payload, (int)(pair + gen), len);
	return rec;
}

static int count_cb(const struct ckpt_rec *rec, uint64_t pos, void *arg)
{
	(void)rec;
	(void)pos;
	(*(uint64_t *)arg)++;
	return 0;
}

static void put_word(struct pmu_store *s, uint8_t *base, uint64_t off, uint64_t v)
{
	pmu_memcpy_persist(s, base + off, &v, sizeof(v));
}

/* Append records to a ring the way a producer does, wrap markers included. */
static uint64_t ring_fill(struct pmu_store *s, uint8_t *ring, uint64_t ring_size, uint64_t pos,
			  unsigned int count, uint32_t pair)
{
	uint8_t payload[CKPT_REC_MAX_PAYLOAD], buf[CKPT_REC_MAX_LEN];

	for (unsigned int i = 0; i < count; i++) {
		struct ckpt_rec rec = rec_of(pair == CKPT_REC_NO_SLOT ? pair : pair + i % 4,
					     pos / 8 + 1, payload, (uint16_t)(20 + 37 * i % 300));
		int n = ckpt_rec_encode(&rec, buf, sizeof(buf));
		uint64_t at;

		REQUIRE(n > 0);
		at = pmu_ring_place(ring_size, pos, (uint32_t)n);
		if (at != pos) {
			uint32_t wrap = PMU_RING_WRAP_MAGIC;

			pmu_memcpy_persist(s, ring + pos % ring_size, &wrap, sizeof(wrap));
		}
		pmu_memcpy_persist(s, ring + at % ring_size, buf, (size_t)n);
		pos = at + (uint64_t)n;
	}
	return pos;
}

static void build_base(void)
{
	static const struct pmu_region_params params[NREG] = {
		{"state", "fw", PMU_MODE_OVERWRITE, 65536, 0, 0},
		{"jstate", "fw", PMU_MODE_OVERWRITE, 65536, 256, 16384},
		{"log", "fw", PMU_MODE_APPEND, 16384, 0, 0},
		{"log", "tenant2", PMU_MODE_APPEND, 8192, 0, 0},
		{"state", "tenant2", PMU_MODE_OVERWRITE, 32768, 128, 4096},
	};
	uint8_t payload[CKPT_REC_MAX_PAYLOAD], buf[CKPT_REC_MAX_LEN];
	char base_path[64];
	struct pmu_store *s;
	int fd;

	snprintf(base_path, sizeof(base_path), "/dev/shm/fuzz_store.%d.base", (int)getpid());
	unlink(base_path);
	s = pmu_store_open(base_path, IMAGE_SIZE, PMU_CREATE);
	REQUIRE(s != NULL);
	for (unsigned int i = 0; i < NREG; i++) {
		struct pmu_region_info r;
		uint8_t *base;
		uint64_t head = 0, tail = 0;

		REQUIRE(pmu_region_create(s, &params[i], &r) == 0);
		reg_off[i] = r.offset;
		reg_size[i] = r.size;
		base = pmu_region_base(s, &r);
		for (uint32_t pair = 0; r.mode == PMU_MODE_OVERWRITE && pair < 10; pair++) {
			for (uint64_t gen = 1; gen <= 2; gen++) {
				struct ckpt_rec rec =
					rec_of(pair, gen, payload, (uint16_t)(pair * 5));
				int n = ckpt_rec_encode(&rec, buf, sizeof(buf));

				REQUIRE(n > 0 && (uint32_t)n <= r.slot_size);
				pmu_memcpy_persist(s,
						   base + PMU_REGION_HDR +
							   (2 * pair + (gen & 1)) * r.slot_size,
						   buf, (size_t)n);
			}
		}
		if (r.mode == PMU_MODE_OVERWRITE && r.ring_size != 0) {
			head = ring_fill(s, base + r.ring_off, r.ring_size, 0, 8, 3);
		} else if (r.mode == PMU_MODE_APPEND) {
			/* Laps in, the consumer behind by a few records, a marker among them. */
			tail = ring_fill(s, base + r.ring_off, r.ring_size, 0, 80,
					 CKPT_REC_NO_SLOT);
			head = ring_fill(s, base + r.ring_off, r.ring_size, tail, 8,
					 CKPT_REC_NO_SLOT);
		}
		put_word(s, base, PMU_REGION_HEAD_OFF, head);
		put_word(s, base, PMU_REGION_TAIL_OFF, tail);
		if (r.ring_size != 0) {
			uint64_t seen = 0, invalid = 0;

			/* The undamaged image holds what the walk must find: records, no fault. */
			REQUIRE(pmu_ring_walk(base + r.ring_off, r.ring_size, tail, head, count_cb,
					      &seen, &invalid, NULL) == 8);
			REQUIRE(invalid == 0 && seen == 8);
			REQUIRE(r.mode != PMU_MODE_APPEND || head / r.ring_size >= 1);
		}
	}
	pmu_store_close(&s);
	fd = open(base_path, O_RDONLY);
	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, base_image, sizeof(base_image), 0) == (ssize_t)sizeof(base_image));
	close(fd);
	unlink(base_path);
	REQUIRE(pmu_store_check("/nonexistent", NULL, NULL) == -ENOENT);
}

static void remove_file(void)
{
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ckpt_log_set(quiet, CKPT_LOG_DEBUG);
	snprintf(path, sizeof(path), "/dev/shm/fuzz_store.%d", (int)getpid());
	atexit(remove_file); /* libFuzzer exits at its time limit; a crash keeps the file */
	build_base();
	return 0;
}

static void patch(uint64_t off, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n && off + i < sizeof(image); i++)
		image[off + i] = src[i];
}

static void apply_patches(const uint8_t *d, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t op = d[i++] % 8;
		uint64_t off;
		size_t n;

		switch (op) {
		case 0:
			if (i + 2 > len)
				return;
			off = d[i] % 64;
			i++;
			break;
		case 1:
			if (i + 3 > len)
				return;
			off = PMU_TABLE_OFF + (uint64_t)(d[i] % 8) * PMU_ENTRY_SIZE + d[i + 1];
			i += 2;
			break;
		case 2:
		case 3:
			if (i + 5 > len)
				return;
			off = (uint64_t)d[i + 1] | (uint64_t)d[i + 2] << 8 |
			      (uint64_t)d[i + 3] << 16;
			off = op == 2 ? reg_off[d[i] % NREG] + off % reg_size[d[i] % NREG]
				      : ((uint64_t)d[i] << 24 | off) % sizeof(image);
			i += 4;
			break;
		case 4: {
			struct pmu_entry e;
			uint64_t at;

			if (i + 1 > len)
				return;
			at = PMU_TABLE_OFF + (uint64_t)(d[i++] % 8) * PMU_ENTRY_SIZE;
			memcpy(&e, image + at, sizeof(e));
			e.commit = pmu_entry_commit_word(&e);
			memcpy(image + at, &e, sizeof(e));
			continue;
		}
		case 5: {
			struct pmu_sb sb;

			memcpy(&sb, image, sizeof(sb));
			sb.crc = pmu_sb_crc(&sb);
			memcpy(image, &sb, sizeof(sb));
			continue;
		}
		default:
			continue;
		}
		n = d[i++] % 16 + 1;
		if (n > len - i)
			n = len - i;
		patch(off, d + i, n);
		i += n;
	}
}

static uint64_t word(const uint8_t *base, uint64_t off)
{
	uint64_t v;

	memcpy(&v, base + off, sizeof(v));
	return v;
}

/* Read every region the way its readers do; nothing may reach outside the mapping. */
static void read_region(struct pmu_store *s, const struct pmu_region_info *r)
{
	const uint8_t *base = pmu_region_base(s, r);
	uint64_t head = word(base, PMU_REGION_HEAD_OFF), tail = word(base, PMU_REGION_TAIL_OFF);
	uint64_t seen = 0, invalid = 0, stop = 0;
	struct ckpt_rec rec;
	int n;

	if (r->mode == PMU_MODE_OVERWRITE) {
		for (uint64_t i = 0; i < r->nslots; i++) {
			const uint8_t *slot = base + PMU_REGION_HDR + i * r->slot_size;

			if (!ckpt_rec_is_empty(slot, r->slot_size))
				(void)ckpt_rec_decode(slot, r->slot_size, &rec);
		}
	}
	if (r->ring_size == 0)
		return;
	n = pmu_ring_walk(base + r->ring_off, r->ring_size, tail, head, count_cb, &seen, &invalid,
			  &stop);
	if (n >= 0) {
		REQUIRE((uint64_t)n == seen);
		REQUIRE(stop >= tail && stop <= head);
	} else {
		REQUIRE(n == -EINVAL);
	}
	if (r->mode == PMU_MODE_OVERWRITE) {
		n = pmu_journal_apply(s, r);
		REQUIRE(n >= 0 || n == -EINVAL);
	}
}

static void check_open_store(struct pmu_store *s)
{
	static struct pmu_region_info all[PMU_MAX_REGIONS];
	struct pmu_region_params p = {
		.name = "fuzz-new", .owner = "fuzzer", .mode = PMU_MODE_APPEND, .size = 8192};
	struct pmu_region_info made, got;
	uint64_t total, free_bytes, epoch;
	char why[256];
	int n = pmu_region_list(s, all, PMU_MAX_REGIONS);

	REQUIRE(n >= 0 && n <= PMU_MAX_REGIONS);
	pmu_store_space(s, &total, &free_bytes);
	REQUIRE(total == sizeof(image) && free_bytes <= total - PMU_DATA_OFF);
	for (int i = 0; i < n; i++) {
		REQUIRE(pmu_region_check(&all[i], sizeof(image), why, sizeof(why)) == 0);
		REQUIRE(all[i].offset >= PMU_DATA_OFF && all[i].offset + all[i].size <= total);
		for (int j = 0; j < i; j++) {
			REQUIRE(all[i].offset + all[i].size <= all[j].offset ||
				all[j].offset + all[j].size <= all[i].offset);
			REQUIRE(strcmp(all[i].name, all[j].name) != 0 ||
				strcmp(all[i].owner, all[j].owner) != 0);
		}
		REQUIRE(pmu_region_lookup(s, all[i].owner, all[i].name, &got) == 0);
		REQUIRE(got.offset == all[i].offset && got.index == all[i].index);
		read_region(s, &all[i]);
		/* Whatever the epoch holds is no fault: moving it keeps the store checking. */
		REQUIRE(pmu_region_epoch(s, &got, &epoch) == 0 && epoch == got.epoch);
		if (epoch != UINT64_MAX)
			REQUIRE(pmu_region_epoch_cas(s, got.owner, got.name, epoch, epoch + 1) ==
				0);
	}
	if (pmu_region_create(s, &p, &made) == 0) {
		for (int i = 0; i < n; i++)
			REQUIRE(made.offset + made.size <= all[i].offset ||
				all[i].offset + all[i].size <= made.offset);
		REQUIRE(made.offset + made.size <= total);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct pmu_store *s;
	int faults, fd;

	memcpy(image, base_image, sizeof(image));
	apply_patches(data, len);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(pwrite(fd, image, sizeof(image), 0) == (ssize_t)sizeof(image));
	close(fd);

	faults = pmu_store_check(path, NULL, NULL);
	REQUIRE(faults >= 0);
	s = pmu_store_open(path, 0, PMU_CREATE);
	REQUIRE((s != NULL) == (faults == 0));
	if (s != NULL) {
		check_open_store(s);
		pmu_store_close(&s);
		REQUIRE(pmu_store_check(path, NULL, NULL) == 0);
	} else {
		/* A refusal writes nothing; only PMU_FORMAT makes the file a new store. */
		fd = open(path, O_RDONLY);
		REQUIRE(fd >= 0);
		REQUIRE(pread(fd, back, sizeof(back), 0) == (ssize_t)sizeof(back));
		REQUIRE(memcmp(back, image, sizeof(back)) == 0);
		close(fd);
		s = pmu_store_open(path, 0, PMU_FORMAT);
		REQUIRE(s != NULL);
		REQUIRE(pmu_region_list(s, NULL, 0) == 0);
		pmu_store_close(&s);
		REQUIRE(pmu_store_check(path, NULL, NULL) == 0);
	}
	return 0;
}
