/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The store's on-media layout: superblock and region table. Private to lib/pmu; its tests
 * and fuzz targets include it to build damaged stores byte by byte.
 *
 *	0          superblock (64 bytes; the magic is its commit word, written last)
 *	4096       region table: PMU_MAX_REGIONS entries of 256 bytes
 *	69632      regions, each PMU_ALIGN aligned
 *
 * Everything is little-endian.
 */
#ifndef PMU_MEDIA_H
#define PMU_MEDIA_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "holdfast/ckpt_record.h"
#include "holdfast/pmu.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the PMU layout is little-endian");

#define PMU_SB_MAGIC   0x313030554d504648ull /* "HFPMU001" */
#define PMU_SB_VERSION 1
#define PMU_ENTRY_LIVE 0x4556494cu /* "LIVE" */
#define PMU_TABLE_OFF  4096
#define PMU_ENTRY_SIZE 256
#define PMU_DATA_OFF   (PMU_TABLE_OFF + PMU_MAX_REGIONS * PMU_ENTRY_SIZE)

struct pmu_sb {
	uint64_t magic; /* written last: a store without it was never formatted */
	uint32_t version;
	uint32_t nentries;
	uint64_t size;
	uint64_t table_off;
	uint64_t data_off;
	uint8_t uuid[16];
	uint32_t crc; /* over the bytes between magic and it */
	uint32_t pad;
};
_Static_assert(sizeof(struct pmu_sb) == 64, "superblock layout");

struct pmu_entry {
	uint64_t commit;   /* 0: free; PMU_ENTRY_LIVE | crc(body) << 32: live */
	uint64_t lease_ns; /* mutable, outside the CRC */
	char name[PMU_NAME_MAX];
	char owner[PMU_NAME_MAX];
	uint32_t mode;
	uint32_t slot_size;
	uint64_t offset;
	uint64_t size;
	uint64_t nslots;
	uint64_t ring_off;
	uint64_t ring_size;
	uint64_t created_ns;
	uint64_t epoch; /* mutable, outside the CRC (counted as zero): pmu_region_epoch_cas() */
	uint8_t reserved[48];
};
_Static_assert(sizeof(struct pmu_entry) == PMU_ENTRY_SIZE, "table entry layout");
_Static_assert(PMU_DATA_OFF % PMU_ALIGN == 0, "regions start aligned");
#define PMU_ENTRY_BODY_OFF  offsetof(struct pmu_entry, name)
#define PMU_ENTRY_EPOCH_OFF offsetof(struct pmu_entry, epoch)
_Static_assert(PMU_ENTRY_EPOCH_OFF % 8 == 0, "the epoch is one aligned word (atomics)");

static inline uint32_t pmu_sb_crc(const struct pmu_sb *sb)
{
	/* The magic is the commit word, written after the CRC'd fields: not covered. */
	return ckpt_crc32c((const uint8_t *)sb + sizeof(sb->magic),
			   offsetof(struct pmu_sb, crc) - sizeof(sb->magic));
}

/*
 * The CRC of an entry's body with its epoch counted as zero: the epoch changes while the
 * entry is live (a compare-and-swap on the mapped word, by any process), and stores made
 * before there was an epoch held zeros there, so their commit words still check. The
 * epoch's bytes are never read here (another process may be swapping them).
 */
static inline uint32_t pmu_entry_crc(const struct pmu_entry *e)
{
	uint8_t body[PMU_ENTRY_SIZE - PMU_ENTRY_BODY_OFF] = {0};
	const size_t at = PMU_ENTRY_EPOCH_OFF - PMU_ENTRY_BODY_OFF, after = at + sizeof(e->epoch);

	memcpy(body, (const uint8_t *)e + PMU_ENTRY_BODY_OFF, at);
	memcpy(body + after, (const uint8_t *)e + PMU_ENTRY_BODY_OFF + after, sizeof(body) - after);
	return ckpt_crc32c(body, sizeof(body));
}

/** The commit word that makes @p e live: it vouches for the body as it is now. */
static inline uint64_t pmu_entry_commit_word(const struct pmu_entry *e)
{
	return PMU_ENTRY_LIVE | (uint64_t)pmu_entry_crc(e) << 32;
}

#endif /* PMU_MEDIA_H */
