/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: region layout and entry validation on arbitrary parameters.
 *
 * Input: u32 mode, u32 slot_size, u64 size, u64 ring_size (the parameters), then u64
 * nslots, u64 ring_off, u64 ring_size, u64 offset, u64 store size (a table entry's
 * geometry as the media could hold it), then the region name's bytes. Short inputs are
 * zero-padded.
 *
 * Properties (a broken one aborts):
 *   - nothing crashes, nothing overflows (UBSan);
 *   - a layout pmu_region_layout() accepts fits its size: slot table and ring inside it and
 *     apart, and the region it describes passes pmu_region_check() wherever placed aligned
 *     in the data area (what create writes, opening accepts);
 *   - any geometry pmu_region_check() accepts has the same invariants, and lies inside its
 *     store: what the store serves after open is safe to index.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holdfast/ckpt.h"
#include "holdfast/pmu.h"
#include "pmu_media.h"

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_layout: property broken: %s (line %d)\n", #c,        \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

typedef unsigned __int128 u128;

static void quiet(enum ckpt_log_level level, const char *component, const char *msg)
{
	(void)level;
	(void)component;
	(void)msg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ckpt_log_set(quiet, CKPT_LOG_DEBUG);
	return 0;
}

struct input {
	uint32_t mode, slot_size;
	uint64_t size, ring_size;
	uint64_t e_nslots, e_ring_off, e_ring_size, e_offset, e_store;
};

/* What every region the store hands out must satisfy, computed without wrapping. */
static void require_fits(const struct pmu_region_info *r)
{
	REQUIRE(r->size != 0 && r->size % PMU_ALIGN == 0);
	REQUIRE((u128)r->ring_off + r->ring_size <= r->size);
	REQUIRE(r->ring_size % CKPT_REC_ALIGN == 0);
	if (r->mode == PMU_MODE_OVERWRITE) {
		REQUIRE(r->slot_size >= ckpt_rec_size(0) && r->slot_size <= CKPT_REC_MAX_LEN);
		REQUIRE(r->slot_size % CKPT_REC_ALIGN == 0);
		REQUIRE(r->nslots >= 2 && r->nslots % 2 == 0 && r->nslots / 2 < UINT32_MAX);
		REQUIRE(PMU_REGION_HDR + (u128)r->nslots * r->slot_size <= r->ring_off);
		REQUIRE(r->ring_off + r->ring_size == r->size);
	} else {
		REQUIRE(r->mode == PMU_MODE_APPEND);
		REQUIRE(r->nslots == 0 && r->slot_size == 0);
		REQUIRE(r->ring_off == PMU_REGION_HDR && r->ring_size != 0);
		REQUIRE(r->ring_off + r->ring_size == r->size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct input in = {0};
	char name[PMU_NAME_MAX + 8] = "r";
	struct pmu_region_params p;
	struct pmu_region_info geo, r;
	char why[256];
	size_t n = len < sizeof(in) ? len : sizeof(in);

	memcpy(&in, data, n);
	if (len > sizeof(in)) {
		size_t k =
			len - sizeof(in) < sizeof(name) - 1 ? len - sizeof(in) : sizeof(name) - 1;

		memcpy(name, data + sizeof(in), k);
		name[k] = '\0';
	}
	p = (struct pmu_region_params){
		.name = name,
		.owner = "tenant",
		.mode = (enum pmu_mode)in.mode,
		.size = in.size,
		.slot_size = in.slot_size,
		.ring_size = in.ring_size,
	};
	if (pmu_region_layout(&p, &geo) == 0) {
		require_fits(&geo);
		REQUIRE(geo.size >= p.size && geo.size - p.size < PMU_ALIGN);
		/* Placed at the start or the very end of a store: create's entry checks. */
		geo.offset = PMU_DATA_OFF;
		REQUIRE(pmu_region_check(&geo, PMU_DATA_OFF + geo.size, why, sizeof(why)) == 0);
		REQUIRE(pmu_region_check(&geo, 0, why, sizeof(why)) == 0);
		geo.offset = (1ull << 50) - geo.size;
		REQUIRE(pmu_region_check(&geo, 1ull << 50, why, sizeof(why)) == 0);
	}
	/* A table entry's geometry as the media may hold it: accepted means safe. */
	memset(&r, 0, sizeof(r));
	memcpy(r.name, name, strnlen(name, PMU_NAME_MAX - 1));
	snprintf(r.owner, sizeof(r.owner), "tenant");
	r.mode = (enum pmu_mode)in.mode;
	r.size = in.size;
	r.slot_size = in.slot_size;
	r.nslots = in.e_nslots;
	r.ring_off = in.e_ring_off;
	r.ring_size = in.e_ring_size;
	r.offset = in.e_offset;
	if (pmu_region_check(&r, in.e_store, why, sizeof(why)) == 0) {
		require_fits(&r);
		if (in.e_store != 0) {
			REQUIRE(r.offset >= PMU_DATA_OFF && r.offset % PMU_ALIGN == 0);
			REQUIRE((u128)r.offset + r.size <= in.e_store);
		}
	} else {
		REQUIRE(why[0] != '\0');
	}
	return 0;
}
