/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * PMU: the persistent-memory unit behind a checkpoint server.
 *
 * One file mapped with libpmem holds a superblock, a table of regions (the translation
 * table from region offsets to file offsets) and the regions themselves. A region exists
 * once its table entry's commit word is durable; everything the entry describes (its data
 * zeroed, its fields) is persisted before that word. Readers never lock: every commit is
 * one aligned 8-byte store. Writers of the table (create, delete) take an exclusive
 * flock(2) on the file so that two processes mapping one file cannot interleave.
 *
 * Region layout (offsets inside the region):
 *
 *	0                 u64 ring head (producer position, bytes, monotonic)
 *	64                u64 ring tail (consumer position)
 *	PMU_REGION_HDR    slot table: nslots * slot_size (overwrite mode only)
 *	ring_off          ring: ring_size bytes (append mode; the journal of overwrite mode)
 *
 * Each owner (tenant) has its own namespace: a region is named by (owner, name), and to an
 * owner another owner's region is indistinguishable from a missing one (-ENOENT). Only
 * pmu_region_list() sees every owner's regions (the operator's view).
 */
#ifndef HOLDFAST_PMU_H
#define HOLDFAST_PMU_H

#include <stddef.h>
#include <stdint.h>

#include "holdfast/ckpt_record.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PMU_NAME_MAX	      64 /**< region and owner names, NUL included */
#define PMU_MAX_REGIONS	      256
#define PMU_REGION_HDR	      4096 /**< bytes before the slot table */
#define PMU_REGION_HEAD_OFF   0
#define PMU_REGION_TAIL_OFF   64
#define PMU_ALIGN	      4096 /**< region sizes and offsets */
#define PMU_SLOT_SIZE_DEFAULT 256
#define PMU_MIN_FILE_SIZE     (1u << 20)

/** Marker a ring producer leaves where a record did not fit before the end of the ring. */
#define PMU_RING_WRAP_MAGIC 0x50415257u /* "WRAP" */

enum pmu_mode {
	PMU_MODE_OVERWRITE = 1, /**< slot table, two slots per (connection, module) */
	PMU_MODE_APPEND = 2,	/**< ring of records with persisted head and tail */
};

/** What a region is asked to be. */
struct pmu_region_params {
	const char *name;  /**< 1..PMU_NAME_MAX-1 printable characters, no '/' */
	const char *owner; /**< tenant that owns it */
	enum pmu_mode mode;
	uint64_t size;	    /**< total bytes, rounded up to PMU_ALIGN */
	uint32_t slot_size; /**< overwrite mode: bytes per slot, 0 = default */
	uint64_t ring_size; /**< overwrite mode: journal bytes (0 = none); append: ignored */
};

/** A region as the table describes it. */
struct pmu_region_info {
	char name[PMU_NAME_MAX];
	char owner[PMU_NAME_MAX];
	enum pmu_mode mode;
	uint32_t index;	 /**< table entry */
	uint64_t offset; /**< file offset of the region */
	uint64_t size;
	uint32_t slot_size;
	uint64_t nslots;   /**< slots (two per pair) */
	uint64_t ring_off; /**< region offset of the ring */
	uint64_t ring_size;
	uint64_t created_ns; /**< CLOCK_REALTIME */
	uint64_t lease_ns;   /**< owner's lease expiry, CLOCK_REALTIME; 0 = never renewed */
	uint64_t epoch;	     /**< fencing epoch (ckpt_epoch_take()); 0 = never taken */
};

struct pmu_store;

/** pmu_store_open() flags. */
#define PMU_CREATE 0x1 /**< create a new store if the file does not exist (needs a size) */
#define PMU_FORMAT 0x2 /**< make the file a new, empty store even if it exists */

/**
 * Map the store at @p path.
 *
 * A missing file, with PMU_CREATE or PMU_FORMAT, becomes a new store of @p size bytes
 * (rounded up to PMU_ALIGN): it is made and formatted unnamed beside @p path and linked
 * there only once durable, so a crash never leaves a half-made store at @p path.
 *
 * An existing file is never formatted unless PMU_FORMAT asks (it then keeps its size and
 * every region in it is lost). It is checked as pmu_store_check() does and refused, every
 * fault logged, unless it has none: a superblock of this build that describes this file
 * (a zeroed one is refused like any other fault), and a table whose every nonzero commit
 * word vouches for its entry, whose every live entry passes pmu_region_check(), and whose
 * live entries share no byte and no (owner, name).
 *
 * @return the store, or NULL with errno set:
 *   EINVAL        size too small for a new store, not a store, or a store with a fault,
 *   ENOENT        file missing and neither PMU_CREATE nor PMU_FORMAT given,
 *   ENAMETOOLONG  @p path too long to make a new store beside it,
 *   any errno from open(2), posix_fallocate(3), pwrite(2), fsync(2), linkat(2) (a new
 *   store), libpmem's pmem_map_file or flock(2).
 */
struct pmu_store *pmu_store_open(const char *path, uint64_t size, int flags);

/** What pmu_store_check() finds wrong with a store. */
enum pmu_fault_kind {
	PMU_FAULT_FILE = 1,  /**< too small, or not a store (magic, version, CRC, size, layout) */
	PMU_FAULT_BLANK,     /**< the superblock is all zero: never formatted, or wiped */
	PMU_FAULT_COMMIT,    /**< a nonzero commit word does not vouch for its entry's body */
	PMU_FAULT_GEOMETRY,  /**< a live entry that pmu_region_check() refuses */
	PMU_FAULT_OVERLAP,   /**< two live entries share bytes */
	PMU_FAULT_DUPLICATE, /**< two live entries hold one (owner, name) */
};

/** One fault, as pmu_store_check() hands it over. */
struct pmu_fault {
	enum pmu_fault_kind kind;
	int entry;	 /**< table entry, or -1 for the file and its superblock */
	int other;	 /**< the other entry of an overlap or a duplicate, else -1 */
	const char *msg; /**< one line: what is wrong and where (entry, name, owner, offsets) */
};

/** Receives each fault; @p f and its message live only during the call. */
typedef void (*pmu_fault_fn)(const struct pmu_fault *f, void *arg);

/**
 * Inspect the store at @p path without opening it for use: map it read-only under a shared
 * flock(2) (table writers hold it exclusively) and hand @p fn (optional) every fault
 * pmu_store_open() would refuse it for. A store with a bad superblock has its table left
 * unread.
 *
 * @return the number of faults (0: pmu_store_open() accepts it), or -errno from open(2),
 *   fstat(2), flock(2), mmap(2) or libpmem's pmem_map_file (device DAX).
 */
int pmu_store_check(const char *path, pmu_fault_fn fn, void *arg);

/** Unmap and free; sets *@p sp to NULL. NULL or *sp NULL is a no-op. */
void pmu_store_close(struct pmu_store **sp);

/** 1 when the mapping is real persistent memory (pmem_persist), 0 when msync is used. */
int pmu_store_is_pmem(const struct pmu_store *s);

/** File size and bytes not yet given to any region. */
void pmu_store_space(const struct pmu_store *s, uint64_t *total, uint64_t *free_bytes);

/** Path the store was opened from. */
const char *pmu_store_path(const struct pmu_store *s);

/**
 * Create a region: allocate space, zero it, persist it, then commit the table entry.
 * @p out (optional) receives the committed description.
 *
 * @return 0, or
 *   -EINVAL  bad name, owner, mode, size or slot size,
 *   -EEXIST  this owner has a region of that name (another owner's does not count),
 *   -ENOSPC  no free table entry or no free space large enough,
 *   -EIO     the new entry would not pass the checks of opening (not committed; logged),
 *   any -errno of flock(2).
 */
int pmu_region_create(struct pmu_store *s, const struct pmu_region_params *p,
		      struct pmu_region_info *out);

/**
 * Find @p owner's region @p name.
 * @return 0, -EINVAL (bad owner or name) or -ENOENT (none; another owner's is not seen).
 */
int pmu_region_lookup(struct pmu_store *s, const char *owner, const char *name,
		      struct pmu_region_info *out);

/**
 * Delete @p owner's region @p name: its entry's commit word is cleared and persisted; its
 * space is free.
 * @return 0, -EINVAL, -ENOENT (none of this owner's), or any -errno of flock(2).
 */
int pmu_region_delete(struct pmu_store *s, const char *owner, const char *name);

/**
 * Describe up to @p max live regions of every owner into @p out, in table order.
 * @return the number of live regions (may exceed @p max).
 */
int pmu_region_list(struct pmu_store *s, struct pmu_region_info *out, unsigned int max);

/**
 * Record that @p owner holds its region @p name's lease until @p expires_ns
 * (CLOCK_REALTIME). @return 0, -EINVAL or -ENOENT (none of this owner's).
 */
int pmu_region_lease(struct pmu_store *s, const char *owner, const char *name, uint64_t expires_ns);

/**
 * Move @p owner's region @p name from epoch @p expect to @p next, atomically across every
 * process that maps the store (a compare-and-swap on the mapped table word, under the table
 * lock so that a delete cannot slip in between), then persist it. Of several callers that
 * saw one epoch exactly one wins. The epoch lives in the region's table entry outside its
 * CRC, like the lease; a region starts at epoch 0, and a region deleted and made again
 * starts at 0 again.
 *
 * On -ESTALE the epoch is not @p expect: read what it is with pmu_region_lookup() or
 * pmu_region_epoch() (it may move again meanwhile; the answer is only ever "not yours").
 *
 * The new epoch is visible to other processes a moment before it is durable: a crash in
 * that moment loses it, and the caller, told nothing but the crash, takes it again.
 *
 * @return 0, -ESTALE (not @p expect), -ENOENT (none of this owner's), -EINVAL (bad owner
 *   or name, or @p next not above @p expect: epochs only move forward), or any -errno of
 *   flock(2).
 */
int pmu_region_epoch_cas(struct pmu_store *s, const char *owner, const char *name, uint64_t expect,
			 uint64_t next);

/**
 * The current epoch of region @p r (as pmu_region_lookup() or pmu_region_create()
 * described it) into @p epoch: one atomic load of its table word, no lock and no CRC, cheap
 * enough for every write barrier. The entry is confirmed to still hold that region (live,
 * same place and creation time) without checking its CRC.
 * @return 0, or -ENOENT (the region was deleted; its entry may hold another region now).
 */
int pmu_region_epoch(const struct pmu_store *s, const struct pmu_region_info *r, uint64_t *epoch);

/** Address of a region's first byte in this mapping. */
void *pmu_region_base(const struct pmu_store *s, const struct pmu_region_info *r);

/** Make [addr, addr+len) of the mapping durable with the function chosen at open. */
void pmu_persist(const struct pmu_store *s, const void *addr, size_t len);

/**
 * Copy without waiting for durability (non-temporal stores on pmem, memcpy otherwise);
 * pmu_drain_range() over the bytes written later makes them durable. Batches pay one drain.
 */
void pmu_write(const struct pmu_store *s, void *dst, const void *src, size_t len);

/** Make earlier pmu_write()s in [addr, addr+len) durable (pmem_drain, or msync of the range). */
void pmu_drain_range(const struct pmu_store *s, const void *addr, size_t len);

/** Copy and persist (non-temporal stores on pmem). */
void pmu_memcpy_persist(const struct pmu_store *s, void *dst, const void *src, size_t len);

/**
 * Compute a region's geometry from @p p without creating it (the same rules create uses).
 * @return 0 or -EINVAL.
 */
int pmu_region_layout(const struct pmu_region_params *p, struct pmu_region_info *out);

/**
 * Check that @p r is a region pmu_region_layout() makes: a valid name and owner, a known
 * mode, and a geometry (slot_size, nslots, ring_off, ring_size) equal to the layout of its
 * own (mode, size, slot_size, ring_size). With @p store_size nonzero, also that its bytes
 * lie aligned inside the data area of a store of that size. The store checks every table
 * entry with this when it opens, and every new entry before committing it.
 *
 * @return 0, or -EINVAL with @p why (optional, @p len bytes) saying what is wrong.
 */
int pmu_region_check(const struct pmu_region_info *r, uint64_t store_size, char *why, size_t len);

/** Called by pmu_ring_walk() for each valid record; nonzero stops the walk. */
typedef int (*pmu_rec_fn)(const struct ckpt_rec *rec, uint64_t pos, void *arg);

/**
 * Walk the records of a ring image from @p tail to @p head. @p ring holds the whole ring
 * (ring_size bytes, the byte at position p at ring[p % ring_size]); only the bytes in
 * [tail, head) are looked at. Wrap markers are followed where a producer could have left
 * one (less than CKPT_REC_MAX_LEN bytes, and less than half the ring, before the end) and
 * the head is at or past the next lap. A record that does not decode, or a marker where
 * none could be, ends the walk (the rest of the span cannot be framed) and is counted in
 * @p invalid. The walk never passes @p head.
 * @p stop (optional) receives the position after the last record handed over (or the
 * wrap marker passed), which is where a consumer may move its tail.
 *
 * @return the number of records handed to @p fn, or -EINVAL (head before tail, span longer
 *   than the ring, or a ring size, tail or head that is not a multiple of CKPT_REC_ALIGN).
 */
int pmu_ring_walk(const uint8_t *ring, uint64_t ring_size, uint64_t tail, uint64_t head,
		  pmu_rec_fn fn, void *arg, uint64_t *invalid, uint64_t *stop);

/**
 * Whether a producer may publish @p head over a ring of @p ring_size bytes whose consumer
 * stands at @p tail: [tail, head) holds at most one ring. A head at or behind the tail
 * publishes nothing new and fits. Formed without a sum, so no position wraps.
 */
int pmu_ring_head_fits(uint64_t ring_size, uint64_t tail, uint64_t head);

/**
 * Where a record of @p len bytes goes when the producer stands at @p pos: the position
 * it starts at (pos, or the start of the next lap when it does not fit before the end, in
 * which case a wrap marker belongs at @p pos).
 */
uint64_t pmu_ring_place(uint64_t ring_size, uint64_t pos, uint32_t len);

/**
 * Apply an overwrite region's journal to its slot table: each record in [tail, head)
 * newer than what its slot pair holds is copied to slot 2 * pair + (generation & 1) and
 * persisted; then the tail moves to head and is persisted. ckptsrv runs this in the
 * background; it is idempotent, so a crash in the middle only repeats work.
 *
 * @return records applied, or -EINVAL (not an overwrite region with a journal, or a head
 *   or tail out of range).
 */
int pmu_journal_apply(struct pmu_store *s, const struct pmu_region_info *r);

/** Current CLOCK_REALTIME in nanoseconds (the clock of leases). */
uint64_t pmu_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* HOLDFAST_PMU_H */
