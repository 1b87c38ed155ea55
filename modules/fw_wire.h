/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte order at the boundary: packet headers are big-endian, checkpoint payloads
 * little-endian. Byte-wise so that neither host order nor alignment matters.
 */
#ifndef HOLDFAST_FW_WIRE_H
#define HOLDFAST_FW_WIRE_H

#include <stdbool.h>
#include <stdint.h>

static inline uint16_t fw_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t fw_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void fw_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void fw_put_le32(uint8_t *p, uint32_t v)
{
	fw_put_le16(p, (uint16_t)v);
	fw_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void fw_put_le64(uint8_t *p, uint64_t v)
{
	fw_put_le32(p, (uint32_t)v);
	fw_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t fw_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t fw_get_le32(const uint8_t *p)
{
	return fw_get_le16(p) | (uint32_t)fw_get_le16(p + 2) << 16;
}

static inline uint64_t fw_get_le64(const uint8_t *p)
{
	return fw_get_le32(p) | (uint64_t)fw_get_le32(p + 4) << 32;
}

/* TCP sequence space comparisons (RFC 1982 serial arithmetic). */
static inline bool fw_seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool fw_seq_after(uint32_t a, uint32_t b)
{
	return fw_seq_before(b, a);
}

#endif /* HOLDFAST_FW_WIRE_H */
