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

/*
 * Records are short (a TCP slice's is 108 bytes of 128), and ISA-L's crc32_iscsi folds
 * with carry-less multiplies whose set-up is most of the work at that size: the CPU's own
 * CRC32C instruction (SSE4.2), 8 bytes an instruction, took 16 ns for 108 bytes where
 * ISA-L took 31 (26 against 17 at 124 bytes). From about 170 bytes on ISA-L is the faster,
 * so longer buffers go to it. The restore checks every record's CRC: this was a third of
 * the reader thread's time.
 */
#define CRC_SHORT_MAX 160

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_short(const uint8_t *p, size_t len)
{
	uint64_t c = 0xffffffffu;
	uint32_t c32, w32;
	size_t i = 0;

	for (; i + sizeof(uint64_t) <= len; i += sizeof(uint64_t))
		c = __builtin_ia32_crc32di(c, get64(p + i)); /* the bytes in the order they lie */
	c32 = (uint32_t)c;
	if (len - i >= sizeof(w32)) {
		c32 = __builtin_ia32_crc32si(c32, get32(p + i));
		i += sizeof(w32);
	}
	for (; i < len; i++)
		c32 = __builtin_ia32_crc32qi(c32, p[i]);
	return ~c32;
}

#endif

uint32_t ckpt_crc32c(const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (len <= CRC_SHORT_MAX && __builtin_cpu_supports("sse4.2"))
		return crc32c_short(buf, len);
#endif
	/* ISA-L's crc32_iscsi leaves the customary pre/post inversion to the caller. */
	return ~crc32_iscsi((unsigned char *)(uintptr_t)buf, (int)len, 0xffffffffu);
}

/* Bytes 4-15 of an IPv4 key's address: two loads, not twelve (a restore asks per record). */
static int v4_padding_zero(const uint8_t addr[16])
{
	return (get64(addr + 4) | get32(addr + 12)) == 0;
}

static int family_and_padding_valid(uint8_t family, const uint8_t a0[16], const uint8_t a1[16])
{
	if (family == 6)
		return 1;
	return family == 4 && v4_padding_zero(a0) && v4_padding_zero(a1);
}

static int key_valid(const struct ckpt_key *k)
{
	return family_and_padding_valid(k->family, k->addr[0], k->addr[1]);
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
	uint8_t flags, module_id, slice_version, family, proto, addr[2][16];
	uint64_t conn_id, generation;
	uint32_t slot_pair;
	uint16_t payload_len, port0, port1;
	size_t body;

	if (buf_len < CKPT_REC_HDR_LEN + CKPT_REC_CRC_LEN)
		return -EINVAL;
	if (get32(p + OFF_MAGIC) != CKPT_REC_MAGIC || p[OFF_VERSION] != CKPT_REC_FORMAT_VERSION)
		return -EINVAL;

	/* Every field read once, before the CRC, as the checks see it. */
	flags = p[OFF_FLAGS];
	module_id = p[OFF_MODULE];
	slice_version = p[OFF_SLICE_VERSION];
	conn_id = get64(p + OFF_CONN_ID);
	generation = get64(p + OFF_GENERATION);
	slot_pair = get32(p + OFF_SLOT);
	payload_len = get16(p + OFF_PAYLOAD_LEN);
	family = p[OFF_FAMILY];
	proto = p[OFF_PROTO];
	port0 = get16(p + OFF_PORT0);
	port1 = get16(p + OFF_PORT1);
	memcpy(addr, p + OFF_ADDR0, sizeof(addr));

	if ((flags & ~CKPT_REC_F_KNOWN) != 0 || module_id == 0 || conn_id == 0 || generation == 0 ||
	    get32(p + OFF_RESERVED) != 0 || !family_and_padding_valid(family, addr[0], addr[1]))
		return -EINVAL;
	if (payload_len > CKPT_REC_MAX_PAYLOAD ||
	    ((flags & CKPT_REC_F_TOMBSTONE) && payload_len != 0))
		return -EINVAL;
	body = CKPT_REC_HDR_LEN + payload_len;
	if (buf_len < body + CKPT_REC_CRC_LEN)
		return -EINVAL;
	if (get32(p + body) != ckpt_crc32c(p, body))
		return -EINVAL;
	/*
	 * Written into @p out field by field, not built on the stack and copied: the copy's
	 * 16-byte loads of a struct just written a byte or two at a time could not be served
	 * from those stores and waited until they reached the cache, behind the CRC (a third
	 * of the decode's time in a restore). Zeroed first: the padding is the same every time.
	 */
	memset(out, 0, sizeof(*out));
	out->flags = flags;
	out->module_id = module_id;
	out->slice_version = slice_version;
	out->conn_id = conn_id;
	out->generation = generation;
	out->slot_pair = slot_pair;
	out->key.family = family;
	out->key.proto = proto;
	out->key.port[0] = port0;
	out->key.port[1] = port1;
	memcpy(out->key.addr, addr, sizeof(addr));
	out->payload_len = payload_len;
	out->payload = payload_len ? p + CKPT_REC_HDR_LEN : NULL;
	return (int)ckpt_rec_size(payload_len);
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
	 * The other half hold a record, whose magic is in the first eight: said at once.
	 */
	if (n >= sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		if (w != 0)
			return 0;
	}
	for (; i + sizeof(w) <= n; i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		or |= w;
	}
	for (; i < n; i++)
		or |= p[i];
	return or == 0;
}
