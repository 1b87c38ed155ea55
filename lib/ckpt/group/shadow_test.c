/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shadow's memory (shadow.c): a region's shadow and its positions start zeroed, keep
 * the newest record per pair at either end, sit on memory that asked for transparent huge
 * pages when they are 2 MB or more (the I/O lcore writes them at random; on 4 KB pages a
 * new region faulted a page in every 32 new pairs) and on ordinary pages when smaller, and
 * are unmapped again by group_shadow_fini().
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "group_internal.h"
#include "test_rec.h"

#define SLOT	    128
#define LARGE_PAIRS 300000 /* 38 MB of shadow, 2.4 MB of positions: over 2 MB each */
#define SMALL_PAIRS 64	   /* 8 KB */

/*
 * Whether the mapping that holds @p p asked for transparent huge pages (MADV_HUGEPAGE:
 * "hg" among its VmFlags in /proc/self/smaps, whatever the system's THP mode).
 */
static bool asks_for_huge_pages(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false, hg = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		uintptr_t lo, hi;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2) {
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			hg = strstr(line, " hg") != NULL;
			break;
		}
	}
	fclose(f);
	return hg;
}

static bool mapped(const void *p)
{
	unsigned char vec;

	return mincore((void *)((uintptr_t)p & ~(uintptr_t)(getpagesize() - 1)), 1, &vec) == 0;
}

static void region_of(struct gregion *gr, uint64_t pairs)
{
	memset(gr, 0, sizeof(*gr));
	gr->desc.mode = PMU_MODE_OVERWRITE;
	gr->desc.nslots = 2 * pairs;
	gr->desc.slot_size = SLOT;
}

/* Encode the record of @p pair at generation @p gen into @p buf; its length. */
static uint32_t rec_of(uint32_t pair, uint64_t gen, uint8_t *buf)
{
	uint8_t payload[TEST_REC_PAYLOAD];
	const struct ckpt_rec rec = test_rec(pair, gen, payload);
	int len = ckpt_rec_encode(&rec, buf, SLOT);

	assert_true(len > 0);
	return (uint32_t)len;
}

static bool zeroed(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void test_large_shadow_asks_for_huge_pages_and_keeps_the_newest_record(void **state)
{
	static struct gregion gr;
	const uint32_t last = LARGE_PAIRS - 1;
	uint8_t newer[SLOT], older[SLOT];
	uint32_t n_newer, n_older;
	uint8_t *shadow;
	uint64_t *where;

	(void)state;
	region_of(&gr, LARGE_PAIRS);
	assert_int_equal(group_shadow_init(&gr, true), 0);
	assert_non_null(gr.shadow);
	assert_non_null(gr.where);
	assert_true(asks_for_huge_pages(gr.shadow));
	assert_true(asks_for_huge_pages(gr.where));
	assert_true(zeroed(gr.shadow, SLOT));
	assert_true(zeroed(gr.shadow + (size_t)last * SLOT, SLOT));
	assert_int_equal(gr.where[0], 0);
	assert_int_equal(gr.where[last], 0);

	/* The newest record of the last pair is kept; an older one that comes later is not. */
	n_newer = rec_of(last, 7, newer);
	n_older = rec_of(last, 6, older);
	group_shadow_keep(&gr, newer, n_newer);
	group_shadow_keep(&gr, older, n_older);
	assert_memory_equal(gr.shadow + (size_t)last * SLOT, newer, n_newer);
	assert_true(zeroed(gr.shadow + (size_t)(last - 1) * SLOT, SLOT));

	shadow = gr.shadow;
	where = gr.where;
	group_shadow_fini(&gr);
	assert_null(gr.shadow);
	assert_null(gr.where);
	assert_false(mapped(shadow));
	assert_false(mapped(where));
	group_shadow_fini(&gr); /* twice: nothing left to unmap */
}

static void test_small_shadow_stays_on_ordinary_pages(void **state)
{
	static struct gregion gr;
	uint8_t rec[SLOT];
	uint32_t n;

	(void)state;
	region_of(&gr, SMALL_PAIRS);
	assert_int_equal(group_shadow_init(&gr, true), 0);
	assert_non_null(gr.shadow);
	assert_false(asks_for_huge_pages(gr.shadow)); /* a 2 MB page for 8 KB: no */
	assert_true(zeroed(gr.shadow, (size_t)SMALL_PAIRS * SLOT));
	n = rec_of(SMALL_PAIRS - 1, 1, rec);
	group_shadow_keep(&gr, rec, n);
	assert_memory_equal(gr.shadow + (size_t)(SMALL_PAIRS - 1) * SLOT, rec, n);
	group_shadow_fini(&gr);
	assert_null(gr.shadow);
}

static void test_append_region_has_no_shadow(void **state)
{
	static struct gregion gr;

	(void)state;
	memset(&gr, 0, sizeof(gr));
	gr.desc.mode = PMU_MODE_APPEND;
	gr.desc.ring_size = 1u << 20;
	assert_int_equal(group_shadow_init(&gr, true), 0);
	assert_null(gr.shadow);
	assert_null(gr.where);
	group_shadow_fini(&gr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_shadow_asks_for_huge_pages_and_keeps_the_newest_record),
		cmocka_unit_test(test_small_shadow_stays_on_ordinary_pages),
		cmocka_unit_test(test_append_region_has_no_shadow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
