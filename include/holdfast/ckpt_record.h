/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Checkpoint record: the one self-describing unit written to media and wire.
 *
 * Layout (little-endian, offsets in bytes):
 *
 *	 0 u32 magic            "HFCK"
 *	 4 u8  format version   CKPT_REC_FORMAT_VERSION
 *	 5 u8  flags            CKPT_REC_F_*
 *	 6 u8  module id        owner of the slice (never 0)
 *	 7 u8  slice version    the module's own format version
 *	 8 u64 connection id    keyed hash of the key (never 0)
 *	16 u64 generation       increases per (connection, module) (never 0)
 *	24 u32 slot pair        where the record lives in a state region, or CKPT_REC_NO_SLOT
 *	28 u16 payload length   <= CKPT_REC_MAX_PAYLOAD
 *	30 u8  family           4 or 6
 *	31 u8  protocol         IP protocol number
 *	32 u16 port[0]
 *	34 u16 port[1]
 *	36 u32 reserved         0
 *	40 u8  addr[0][16]      network byte order; IPv4 uses the first 4, the rest zero
 *	56 u8  addr[1][16]
 *	72 payload
 *	72+len u32 CRC32C over bytes [0, 72+len)
 *
 * The encoded size is rounded up to CKPT_REC_ALIGN; padding bytes are zero.
 */
#ifndef HOLDFAST_CKPT_RECORD_H
#define HOLDFAST_CKPT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_REC_MAGIC		0x4b434648u /* "HFCK" read as little-endian u32 */
#define CKPT_REC_FORMAT_VERSION 1
#define CKPT_REC_HDR_LEN	72
#define CKPT_REC_CRC_LEN	4
#define CKPT_REC_ALIGN		8
#define CKPT_REC_MAX_PAYLOAD	1024
#define CKPT_REC_NO_SLOT	UINT32_MAX
/** Largest encoded record. */
#define CKPT_REC_MAX_LEN                                                                           \
	((CKPT_REC_HDR_LEN + CKPT_REC_MAX_PAYLOAD + CKPT_REC_CRC_LEN + CKPT_REC_ALIGN - 1) &       \
	 ~(CKPT_REC_ALIGN - 1))

/** The slice was deleted: the connection closed or expired. Carries no payload. */
#define CKPT_REC_F_TOMBSTONE 0x01u
#define CKPT_REC_F_KNOWN     CKPT_REC_F_TOMBSTONE

/** Canonical connection key, host representation (ports in host order). */
struct ckpt_key {
	uint8_t family; /**< 4 or 6 */
	uint8_t proto;	/**< IP protocol number */
	uint16_t port[2];
	uint8_t addr[2][16]; /**< network byte order */
};

/** A decoded record. @c payload points into the buffer it was decoded from. */
struct ckpt_rec {
	uint8_t flags;
	uint8_t module_id;
	uint8_t slice_version;
	uint64_t conn_id;
	uint64_t generation;
	uint32_t slot_pair;
	struct ckpt_key key;
	uint16_t payload_len;
	const uint8_t *payload;
};

/**
 * Encoded size of a record carrying @p payload_len bytes, padding included.
 */
static inline size_t ckpt_rec_size(size_t payload_len)
{
	return (CKPT_REC_HDR_LEN + payload_len + CKPT_REC_CRC_LEN + CKPT_REC_ALIGN - 1) &
	       ~(size_t)(CKPT_REC_ALIGN - 1);
}

/**
 * Encode @p rec into @p buf.
 *
 * @return
 *   the number of bytes written (ckpt_rec_size(rec->payload_len)), or
 *   -EINVAL if a field is out of range (module 0, connection id 0, generation 0, family not 4
 *           or 6, unknown flag, payload too long, tombstone with payload, payload NULL with a
 *           length),
 *   -ENOSPC if @p buf_len is too small.
 */
int ckpt_rec_encode(const struct ckpt_rec *rec, void *buf, size_t buf_len);

/**
 * Decode and validate the record at the start of @p buf. @p out is untouched on failure.
 *
 * @return
 *   the encoded size of the record (bytes consumed), or
 *   -EINVAL if anything does not check: magic, format version, flags, module, connection id,
 *           generation, family, address padding, reserved bytes, payload length, buffer too
 *           short for the stated length, or CRC.
 */
int ckpt_rec_decode(const void *buf, size_t buf_len, struct ckpt_rec *out);

/** What ckpt_rec_peek() reads of a record's header. */
struct ckpt_rec_hdr {
	uint64_t generation;
	uint32_t slot_pair;
	uint32_t len; /**< encoded size, padding included: ckpt_rec_size(payload length) */
};

/**
 * Read the generation, slot pair and encoded size of the record whose header starts at
 * @p buf, without checking the record: for bytes this codec encoded, or that
 * ckpt_rec_decode() accepted before (a store that keeps encoded records and must order
 * them by generation or step over them). Bytes that are no record read as whatever their
 * fields hold (all zero: generation 0). @p out is untouched on failure.
 *
 * @return the encoded size (out->len), or -EINVAL if @p buf_len is shorter than a header.
 */
int ckpt_rec_peek(const void *buf, size_t buf_len, struct ckpt_rec_hdr *out);

/** Nonzero when the bytes at @p buf hold no record at all (a never-written slot). */
int ckpt_rec_is_empty(const void *buf, size_t buf_len);

/** CRC32C (Castagnoli) of @p len bytes, the checksum used by every record. */
uint32_t ckpt_crc32c(const void *buf, size_t len);

/** Nonzero when two keys are the same connection key. */
int ckpt_key_equal(const struct ckpt_key *a, const struct ckpt_key *b);

#ifdef __cplusplus
}
#endif

#endif /* HOLDFAST_CKPT_RECORD_H */
