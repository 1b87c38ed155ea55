/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/pmu: the checks pmu.c shares with pmu_check.c (see there).
 */
#ifndef PMU_CHECK_H
#define PMU_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "holdfast/pmu.h"
#include "pmu_media.h"

/** 1..PMU_NAME_MAX-1 printable characters, no '/'. */
int pmu_name_valid(const char *n);

/** @p v rounded up to a multiple of @p a into @p out. @return 0, or -EINVAL (past 2^64). */
int pmu_align_up(uint64_t v, uint64_t a, uint64_t *out);

/** A live entry: its commit word is nonzero and vouches for the body it covers. */
int pmu_entry_live(const struct pmu_entry *e);

/** Describe entry @p e, table index @p i (names cut to PMU_NAME_MAX - 1). */
void pmu_entry_info(const struct pmu_entry *e, unsigned int i, struct pmu_region_info *out);

/**
 * The one validation of a table entry, at open and on a new entry before its commit:
 * NUL-terminated names, then pmu_region_check() in a store of @p store_size bytes.
 * @return 0 or -EINVAL, @p why (of @p len bytes) saying why.
 */
int pmu_entry_check(const struct pmu_entry *e, uint64_t store_size, char *why, size_t len);

/** Two entries that hold one (owner, name). */
int pmu_entry_same_name(const struct pmu_entry *a, const struct pmu_entry *b);

/**
 * Every check of pmu_store_check() on the store image at @p base (@p len bytes; nothing
 * past 64 bytes is read when @p len is under PMU_MIN_FILE_SIZE). @return the fault count.
 */
int pmu_check_image(const uint8_t *base, uint64_t len, pmu_fault_fn fn, void *arg);

#endif /* PMU_CHECK_H */
