/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: a restore's scan of an overwrite region (ckpt_state_scan) over slots
 * of arbitrary bytes, as a damaged or hostile store (or a server's bulk read) holds them,
 * read the two ways a restore reads a pmem: region: through the file (pread) and in place
 * (each pair copied out of the mapping a few pairs ahead of its decode, pmem_view).
 *
 * Input: one byte of options, then the slot area's bytes from its start (the rest zero).
 * Option bit 0 scans with tombstones. Bit 1 mends every 128-byte slot that is not all zero
 * into a record that decodes (magic, version, known flags, non-zero ids, a payload that
 * fits, its CRC), so that the fuzzer gets past the checks to what the scan decides between
 * two slots, the journal and misplaced records; bit 2 also places each in its own pair.
 *
 * Properties (a broken one aborts):
 *   - nothing crashes, nothing overflows (ASan, UBSan);
 *   - both ways hand over the same records in the same order, payloads byte for byte, with
 *     the same counts;
 *   - every record handed over is in its own pair, and the counts add up to the pairs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt_internal.h"
#include "holdfast/ckpt.h"
#include "holdfast/ckpt_record.h"
#include "holdfast/pmu.h"

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_scan: property broken: %s (line %d)\n", #c,          \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_RECS 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	unsigned int n;
	uint32_t pairs;
	struct {
		struct ckpt_rec rec;
		uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	} v[MAX_RECS];
};

static int collect(const struct ckpt_rec *rec, void *arg)
{
	struct seen *s = arg;

	REQUIRE(s->n < MAX_RECS && rec->slot_pair < s->pairs);
	REQUIRE(rec->payload_len <= CKPT_REC_MAX_PAYLOAD);
	s->v[s->n].rec = *rec;
	s->v[s->n].rec.payload = NULL;
	if (rec->payload_len)
		memcpy(s->v[s->n].payload, rec->payload, rec->payload_len);
	s->n++;
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Slot @p i's 128 bytes at @p p made a record that decodes (layout: ckpt_record.h). */
static void mend(uint8_t *p, size_t i, bool place)
{
	uint16_t len = (uint16_t)((p[28] | p[29] << 8) % (128 - CKPT_REC_HDR_LEN - 4 + 1));
	bool zero = true;

	for (size_t k = 0; k < 128 && zero; k++)
		zero = p[k] == 0;
	if (zero)
		return;
	put32(p, CKPT_REC_MAGIC);
	p[4] = CKPT_REC_FORMAT_VERSION;
	p[5] &= CKPT_REC_F_KNOWN;
	p[6] |= 1;  /* module */
	p[8] |= 1;  /* connection id */
	p[16] |= 1; /* generation */
	if (place)
		put32(p + 24, (uint32_t)(i / 2));
	if (p[5] & CKPT_REC_F_TOMBSTONE)
		len = 0;
	p[28] = (uint8_t)len;
	p[29] = (uint8_t)(len >> 8);
	p[30] = 6; /* an IPv6 key: any address bytes */
	memset(p + 36, 0, 4);
	put32(p + CKPT_REC_HDR_LEN + len, ckpt_crc32c(p, CKPT_REC_HDR_LEN + len));
}

static char store[64];
static struct ckpt_region *region;

static void remove_store(void)
{
	unlink(store);
}

/* One store for the run: a region of a few hundred pairs. */
static struct ckpt_region *region_once(void)
{
	const struct ckpt_client_opts opts = {
		.tenant = "fuzz", .create_store = true, .store_size = 4u << 20};
	const struct pmu_region_params sp = {
		.name = "scan", .mode = PMU_MODE_OVERWRITE, .size = 96u << 10, .slot_size = 128};
	char target[80];
	struct ckpt_client *c;

	if (region != NULL)
		return region;
	snprintf(store, sizeof(store), "/dev/shm/hf-fuzz-scan.%d", getpid());
	snprintf(target, sizeof(target), "pmem:%s", store);
	unlink(store);
	atexit(remove_store);
	c = ckpt_connect(target, &opts);
	REQUIRE(c != NULL);
	REQUIRE(ckpt_region_create(c, &sp, &region) == 0);
	return region;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen a, b;
	static uint8_t *slots;
	struct ckpt_region *r = region_once();
	const uint32_t pairs = ckpt_slot_pairs(r);
	const size_t area = (size_t)pairs * 2 * 128;
	struct ckpt_scan_stats sa, sb;
	unsigned int flags;

	if (size < 1)
		return 0;
	flags = data[0] & 1 ? CKPT_SCAN_TOMBSTONES : 0;
	if (slots == NULL && (slots = malloc(area)) == NULL)
		abort();
	memset(slots, 0, area);
	memcpy(slots, data + 1, size - 1 < area ? size - 1 : area);
	if (data[0] & 2)
		for (size_t i = 0; i < area / 128; i++)
			mend(slots + i * 128, i, data[0] & 4);
	REQUIRE(ckpt_region_post(r, PMU_REGION_HDR, slots, area) == 0);

	a.n = b.n = 0;
	a.pairs = b.pairs = pairs;
	ckpt_pmem_test_in_place(0);
	REQUIRE(ckpt_state_scan(r, flags, collect, &a, &sa) == 0);
	ckpt_pmem_test_in_place(1);
	REQUIRE(ckpt_state_scan(r, flags, collect, &b, &sb) == 0);
	ckpt_pmem_test_in_place(-1);

	REQUIRE(memcmp(&sa, &sb, sizeof(sa)) == 0);
	REQUIRE(a.n == b.n && a.n == sa.records + (flags ? sa.tombstones : 0));
	for (unsigned int i = 0; i < a.n; i++) {
		REQUIRE(memcmp(&a.v[i].rec, &b.v[i].rec, sizeof(a.v[i].rec)) == 0);
		REQUIRE(memcmp(a.v[i].payload, b.v[i].payload, a.v[i].rec.payload_len) == 0);
	}
	return 0;
}
