/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/ckpt/group/: the on-media formats of a redundancy group.
 *
 * A group region is one append region of the same name on every member. Its bytes
 * [128, 192) hold the group descriptor; its ring holds subsegments. A segment is a run of
 * encoded records (ckpt_record.h) cut into k data chunks plus m parity chunks; chunk i of
 * the segment at ring position P is written, behind a subsegment header, at position P of
 * one member's ring. Every member's ring advances by the same amount per segment, so P
 * names the segment on every member and is its identity.
 *
 * Subsegment header (little-endian, 64 bytes), then chunk_len bytes of chunk:
 *	 0 u32 magic "HFSG"          4 u8 version       5 u8 code (ec.h)
 *	 6 u8  k                     7 u8 m             8 u8 index (0..k-1 data, k.. parity)
 *	 9 u8  flags (0)            10 u16 reserved 0  12 u32 chunk_len
 *	16 u64 group id             24 u64 position of the segment in the ring
 *	32 u32 data_len (record bytes in the whole segment)
 *	36 u32 records in the segment
 *	40 u32 CRC32C of the chunk  44 u8[16] reserved 0
 *	60 u32 CRC32C of bytes [0, 60)
 *
 * Group descriptor (little-endian, 64 bytes at region offset CKPT_GDESC_OFF):
 *	 0 u32 magic "HFGD"   4 u8 version   5 u8 code   6 u8 k   7 u8 m
 *	 8 u8  member index   9 u8 members  10 u16 reserved 0   12 u32 slot size
 *	16 u64 group id (random per group region)       24 u64 slots
 *	32 u64 ring size of the region as its users see it (journal or log)
 *	40 u64 size asked for   48 u32 mode   52 u32 reserved 0   56 u32 reserved 0
 *	60 u32 CRC32C of bytes [0, 60)
 */
#ifndef CKPT_SEGMENT_H
#define CKPT_SEGMENT_H

#include <stdint.h>

#include "holdfast/ckpt_record.h"

#define CKPT_SEG_MAGIC	   0x47534648u /* "HFSG" */
#define CKPT_SEG_VERSION   1
#define CKPT_SEG_HDR_LEN   64
#define CKPT_SEG_ALIGN	   64 /* chunk lengths: keeps every subsegment 64-byte aligned */
#define CKPT_SEG_CHUNK_MAX (16u << 10)
#define CKPT_GDESC_MAGIC   0x44474648u /* "HFGD" */
#define CKPT_GDESC_VERSION 1
#define CKPT_GDESC_OFF	   128
#define CKPT_GDESC_LEN	   64

struct ckpt_subseg {
	uint8_t code;
	uint8_t k, m;
	uint8_t index;
	uint32_t chunk_len;
	uint64_t group_id;
	uint64_t pos;
	uint32_t data_len;
	uint32_t nrecs;
	uint32_t chunk_crc;
};

struct ckpt_gdesc {
	uint8_t code;
	uint8_t k, m;
	uint8_t member;
	uint8_t nmembers;
	uint32_t slot_size;
	uint64_t group_id;
	uint64_t nslots;
	uint64_t ring_size;
	uint64_t size;
	uint32_t mode;
};

/* Chunk length of a segment of data_len record bytes cut into k chunks. */
static inline uint32_t ckpt_seg_chunk_len(uint32_t data_len, unsigned int k)
{
	uint32_t c = (data_len + k - 1) / k;

	return (c + CKPT_SEG_ALIGN - 1) & ~(uint32_t)(CKPT_SEG_ALIGN - 1);
}

/* Write the header of @p s (chunk_crc included) into @p buf[0, CKPT_SEG_HDR_LEN). */
void ckpt_subseg_encode(const struct ckpt_subseg *s, uint8_t *buf);

/*
 * Check the subsegment at @p buf (@p len bytes readable): header fields, header CRC, and
 * the chunk's CRC. @p out is filled whenever the header checks, so a caller can still
 * frame the ring past a damaged chunk.
 * @return 0, -EINVAL (no valid header here), -EBADMSG (header valid, chunk damaged or cut
 *   short).
 */
int ckpt_subseg_decode(const uint8_t *buf, uint64_t len, struct ckpt_subseg *out);

/* Write @p d into @p buf[0, CKPT_GDESC_LEN). */
void ckpt_gdesc_encode(const struct ckpt_gdesc *d, uint8_t *buf);

/* Check and decode a descriptor. @return 0, -ENOENT (never written: all zero), -EINVAL. */
int ckpt_gdesc_decode(const uint8_t *buf, struct ckpt_gdesc *out);

/*
 * Called for each record of a segment with the record decoded and its encoded bytes;
 * nonzero stops the walk and is returned.
 */
typedef int (*ckpt_seg_rec_fn)(const struct ckpt_rec *rec, const uint8_t *raw, uint32_t len,
			       void *arg);

/*
 * Decode the @p nrecs records of a segment's data. @return 0, the callback's nonzero
 * value, or -EINVAL when a record does not decode or the count does not match.
 */
int ckpt_seg_records(const uint8_t *data, uint32_t data_len, uint32_t nrecs, ckpt_seg_rec_fn fn,
		     void *arg);

#endif /* CKPT_SEGMENT_H */
