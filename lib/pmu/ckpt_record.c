/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Record encode/decode. Byte order is converted here and nowhere else: the
 * media and the wire are little-endian, struct ckpt_rec is host order.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <isa-l/crc.h>

#include "holdfast/ckpt_record.h"

enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_FLAGS = 5,
	OFF_MODULE = 6,
	OFF_SLICE_VERSION = 7,
	OFF_CONN_ID = 8,
	OFF_GENERATION = 16,
	OFF_SLOT = 24,
	OFF_PAYLOAD_LEN = 28,
	OFF_FAMILY = 30,
	OFF_PROTO = 31,
	OFF_PORT0 = 32,
	OFF_PORT1 = 34,
	OFF_RESERVED = 36,
	OFF_ADDR0 = 40,
	OFF_ADDR1 = 56,
};
_Static_assert(OFF_ADDR1 + 16 == CKPT_REC_HDR_LEN, "record header layout");

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

uint32_t ckpt_crc32c(const void *buf, size_t len)
{
	/* ISA-L's crc32_iscsi leaves the customary pre/post inversion to the caller. */
	return ~crc32_iscsi((unsigned char *)(uintptr_t)buf, (int)len, 0xffffffffu);
}

static int v4_padding_zero(const uint8_t addr[16])
{
	for (int i = 4; i < 16; i++)
		if (addr[i] != 0)
			return 0;
	return 1;
}

static int key_valid(const struct ckpt_key *k)
{
	if (k->family == 6)
		return 1;
	return k->family == 4 && v4_padding_zero(k->addr[0]) && v4_padding_zero(k->addr[1]);
}

int ckpt_key_equal(const struct ckpt_key *a, const struct ckpt_key *b)
{
	return a->family == b->family && a->proto == b->proto && a->port[0] == b->port[0] &&
	       a->port[1] == b->port[1] && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

int ckpt_rec_encode(const struct ckpt_rec *rec, void *buf, size_t buf_len)
{
	uint8_t *p = buf;
	size_t len;
	size_t body;

	if (rec->module_id == 0 || rec->conn_id == 0 || rec->generation == 0 ||
	    (rec->flags & ~CKPT_REC_F_KNOWN) != 0 || rec->payload_len > CKPT_REC_MAX_PAYLOAD ||
	    !key_valid(&rec->key))
		return -EINVAL;
	if ((rec->flags & CKPT_REC_F_TOMBSTONE) && rec->payload_len != 0)
		return -EINVAL;
	if (rec->payload_len != 0 && rec->payload == NULL)
		return -EINVAL;
	len = ckpt_rec_size(rec->payload_len);
	if (buf_len < len)
		return -ENOSPC;

	put32(p + OFF_MAGIC, CKPT_REC_MAGIC);
	p[OFF_VERSION] = CKPT_REC_FORMAT_VERSION;
	p[OFF_FLAGS] = rec->flags;
	p[OFF_MODULE] = rec->module_id;
	p[OFF_SLICE_VERSION] = rec->slice_version;
	put64(p + OFF_CONN_ID, rec->conn_id);
	put64(p + OFF_GENERATION, rec->generation);
	put32(p + OFF_SLOT, rec->slot_pair);
	put16(p + OFF_PAYLOAD_LEN, rec->payload_len);
	p[OFF_FAMILY] = rec->key.family;
	p[OFF_PROTO] = rec->key.proto;
	put16(p + OFF_PORT0, rec->key.port[0]);
	put16(p + OFF_PORT1, rec->key.port[1]);
	put32(p + OFF_RESERVED, 0);
	memcpy(p + OFF_ADDR0, rec->key.addr[0], 16);
	memcpy(p + OFF_ADDR1, rec->key.addr[1], 16);
	if (rec->payload_len != 0)
		memcpy(p + CKPT_REC_HDR_LEN, rec->payload, rec->payload_len);
	body = CKPT_REC_HDR_LEN + rec->payload_len;
	put32(p + body, ckpt_crc32c(p, body));
	memset(p + body + CKPT_REC_CRC_LEN, 0, len - body - CKPT_REC_CRC_LEN);
	return (int)len;
}

int ckpt_rec_decode(const void *buf, size_t buf_len, struct ckpt_rec *out)
{
	const uint8_t *p = buf;
	struct ckpt_rec r;
	size_t body;

	if (buf_len < CKPT_REC_HDR_LEN + CKPT_REC_CRC_LEN)
		return -EINVAL;
	if (get32(p + OFF_MAGIC) != CKPT_REC_MAGIC || p[OFF_VERSION] != CKPT_REC_FORMAT_VERSION)
		return -EINVAL;

	memset(&r, 0, sizeof(r));
	r.flags = p[OFF_FLAGS];
	r.module_id = p[OFF_MODULE];
	r.slice_version = p[OFF_SLICE_VERSION];
	r.conn_id = get64(p + OFF_CONN_ID);
	r.generation = get64(p + OFF_GENERATION);
	r.slot_pair = get32(p + OFF_SLOT);
	r.payload_len = get16(p + OFF_PAYLOAD_LEN);
	r.key.family = p[OFF_FAMILY];
	r.key.proto = p[OFF_PROTO];
	r.key.port[0] = get16(p + OFF_PORT0);
	r.key.port[1] = get16(p + OFF_PORT1);
	memcpy(r.key.addr[0], p + OFF_ADDR0, 16);
	memcpy(r.key.addr[1], p + OFF_ADDR1, 16);

	if ((r.flags & ~CKPT_REC_F_KNOWN) != 0 || r.module_id == 0 || r.conn_id == 0 ||
	    r.generation == 0 || get32(p + OFF_RESERVED) != 0 || !key_valid(&r.key))
		return -EINVAL;
	if (r.payload_len > CKPT_REC_MAX_PAYLOAD ||
	    ((r.flags & CKPT_REC_F_TOMBSTONE) && r.payload_len != 0))
		return -EINVAL;
	body = CKPT_REC_HDR_LEN + r.payload_len;
	if (buf_len < body + CKPT_REC_CRC_LEN)
		return -EINVAL;
	if (get32(p + body) != ckpt_crc32c(p, body))
		return -EINVAL;
	r.payload = r.payload_len ? p + CKPT_REC_HDR_LEN : NULL;
	*out = r;
	return (int)ckpt_rec_size(r.payload_len);
}

int ckpt_rec_peek(const void *buf, size_t buf_len, struct ckpt_rec_hdr *out)
{
	const uint8_t *p = buf;

	if (buf_len < CKPT_REC_HDR_LEN)
		return -EINVAL;
	out->generation = get64(p + OFF_GENERATION);
	out->slot_pair = get32(p + OFF_SLOT);
	out->len = (uint32_t)ckpt_rec_size(get16(p + OFF_PAYLOAD_LEN));
	return (int)out->len;
}

int ckpt_rec_is_empty(const void *buf, size_t buf_len)
{
	const uint8_t *p = buf;
	size_t n = buf_len < CKPT_REC_HDR_LEN ? buf_len : CKPT_REC_HDR_LEN;
	uint64_t or = 0, w;
	size_t i = 0;

	/*
	 * Eight bytes at a time: a restore asks this of every slot, and half of them (the
	 * other slot of each pair) are empty, so the byte loop ran the whole header there.
	 */
	for (; i + sizeof(w) <= n; i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		or |= w;
	}
	for (; i < n; i++)
		or |= p[i];
	return or == 0;
}
