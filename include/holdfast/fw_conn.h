/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * One connection, one structure: the canonical key, the connection ID, timers, and one
 * slice per registered module at a fixed offset (netfilter's extension area).
 */
#ifndef HOLDFAST_FW_CONN_H
#define HOLDFAST_FW_CONN_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Module ids: stored on media in every record; never renumber, never reuse. */
enum fw_module_id {
	FW_MOD_TCP = 1,
	FW_MOD_UDP = 2,
	FW_MOD_FTP = 3,
	FW_MOD_MAX = 4,
};

/** Side of a connection a packet travels from. */
enum fw_dir {
	FW_DIR_ORIG = 0,  /**< from the host that opened the connection */
	FW_DIR_REPLY = 1, /**< from its peer */
};

/**
 * Canonical connection key: (addr[0], port[0]) is the lower endpoint, so both directions
 * of a connection give the same key. Addresses and ports in network byte order; IPv4
 * addresses use the first 4 bytes and leave the rest zero.
 */
struct fw_key {
	uint8_t addr[2][16];
	uint16_t port[2];
	uint8_t family; /**< 4 or 6 */
	uint8_t proto;	/**< IP protocol number */
	uint8_t pad[2]; /**< zero: the key is hashed and compared as bytes */
};
_Static_assert(sizeof(struct fw_key) == 40, "fw_key is hashed as 40 bytes");

/** fw_conn.flags */
#define FW_CONN_F_RESTORING 0x01 /**< being reassembled from checkpoint records */
#define FW_CONN_F_BAD_SLICE 0x02 /**< a required slice did not decode: drop at the end */
#define FW_CONN_F_QUEUED    0x04 /**< waiting in the checkpointer's queue */
#define FW_CONN_F_CKPT_NOW  0x08 /**< a change that must not wait for a batch */
#define FW_CONN_F_EXPECTING 0x10 /**< master of an expectation in its table */
#define FW_CONN_F_RESTORED  0x20 /**< came back from a checkpoint (a restart, a takeover) */

/** Bytes reserved for module slices in every connection. */
#define FW_EXT_SIZE 192

/**
 * Bytes of fw_conn.ext in the connection's first cache line: the room of the transport
 * module's slice (TCP or UDP), which every packet of the connection reads and writes.
 */
#define FW_EXT_HOT 44

/**
 * A connection is two parts at one position of its table: this hot line, everything a
 * packet of an established connection reads or writes -- the timers, the opener's side,
 * the slice bits and flags, and the transport module's slice at the start of ext -- and
 * its cold part (struct fw_conn_cold: the key, the ID, the checkpoint bookkeeping, the
 * other modules' slices), read when a connection opens, closes, is checkpointed or
 * restored. The key the packet is matched on stays in the hash table's key store; a hit
 * needs no copy of it here. The hot lines of a table are one array with a 64-byte stride,
 * the cold parts another with a 256-byte one: at random flow order 100 k connections'
 * hot lines are 6.4 MB, not the 32 MB of 320-byte connections (cache and TLB reach).
 * A connection is reached by its hot pointer alone; fw_conn_cold() finds the rest by
 * arithmetic, so a connection lives in memory of fw_conns_map(), never alone.
 */
struct fw_conn {
	alignas(64) uint64_t expire_ns; /**< idle deadline set by the owning module */
	uint64_t last_ns;		/**< last packet seen */
	uint8_t orig_side; /**< key side (0/1) of the host that opened the connection */
	uint8_t present;   /**< bit (1 << module id): slice in use */
	uint8_t dirty;	   /**< bit (1 << module id): slice changed since its checkpoint */
	uint8_t flags;
	alignas(4) uint8_t ext[FW_EXT_HOT]; /**< ext[0, FW_EXT_HOT) of the slice area */
};
_Static_assert(sizeof(struct fw_conn) == 64, "the hot part is exactly one cache line");

/**
 * The cold part of a connection. The slice area beyond the hot line comes first, so that
 * it starts a cache line as it did in one structure; the ID and the checkpoint
 * bookkeeping, which every checkpoint of a slice reads and writes, share the last line.
 * A position is free while its key's family is 0.
 */
struct fw_conn_cold {
	alignas(64) uint8_t ext[FW_EXT_SIZE - FW_EXT_HOT]; /**< ext[FW_EXT_HOT, FW_EXT_SIZE) */
	alignas(8) struct fw_key key;	/**< 8-aligned: rte_hash_crc reads keys in 8-byte words */
	uint64_t id;			/**< keyed hash of the key (fw_conn_id) */
	uint32_t slot_pair[FW_MOD_MAX]; /**< checkpoint slot pair per module, UINT32_MAX none */
	uint64_t gen[FW_MOD_MAX];	/**< checkpoint generation per module */
};

/**
 * The planes connections live in. fw_conns_map() reserves address space aligned to
 * FW_CONN_PLANE: hot lines from its base B, cold parts from B + FW_CONN_PLANE, each plane
 * indexed by the same position, so the cold part of the hot line at B + 64 i is at
 * B + FW_CONN_PLANE + 256 i, computed from the hot pointer with a mask, a shift and an add
 * (no load, no table pointer). One plane holds FW_CONNS_MAX connections.
 */
#define FW_CONN_PLANE	   (1ull << 30)
#define FW_CONN_COLD_SCALE 4 /* sizeof(struct fw_conn_cold) / sizeof(struct fw_conn) */
#define FW_CONNS_MAX	   ((uint32_t)(FW_CONN_PLANE / 64))
_Static_assert(sizeof(struct fw_conn_cold) == FW_CONN_COLD_SCALE * sizeof(struct fw_conn),
	       "cold parts at a fixed multiple of the hot stride");

/** The cold part of @p c (a connection of fw_conns_map's memory). */
static inline struct fw_conn_cold *fw_conn_cold(const struct fw_conn *c)
{
	const uintptr_t p = (uintptr_t)c;
	const uintptr_t base = p & ~(uintptr_t)(FW_CONN_PLANE - 1);

	return (struct fw_conn_cold *)(base + FW_CONN_PLANE + (p - base) * FW_CONN_COLD_SCALE);
}

/**
 * Map room for @p n connections, zeroed (every position free), on NUMA node @p socket if
 * it can (negative: any): both planes pre-faulted, on transparent huge pages where the
 * kernel has them, so that no packet waits on a page fault. @return the first hot line,
 * or NULL with errno (EINVAL: @p n is 0 or over FW_CONNS_MAX; ENOMEM).
 */
struct fw_conn *fw_conns_map(uint32_t n, int socket);

/** Unmap what fw_conns_map(@p n) returned. NULL is a no-op. */
void fw_conns_unmap(struct fw_conn *conns, uint32_t n);

/** Both parts of @p c zeroed. */
static inline void fw_conn_clear(struct fw_conn *c)
{
	__builtin_memset(c, 0, sizeof(*c));
	__builtin_memset(fw_conn_cold(c), 0, sizeof(struct fw_conn_cold));
}

/** Both parts of @p src copied into @p dst. */
static inline void fw_conn_copy(struct fw_conn *dst, const struct fw_conn *src)
{
	*dst = *src;
	*fw_conn_cold(dst) = *fw_conn_cold(src);
}

/**
 * Canonicalize a packet's endpoints into @p key.
 * @p saddr/@p daddr point to 4 (family 4) or 16 (family 6) bytes; ports in network order.
 * @return the key side the source sits on (0 or 1).
 */
int fw_key_make(struct fw_key *key, uint8_t family, uint8_t proto, const void *saddr,
		const void *daddr, uint16_t sport, uint16_t dport);

/**
 * fw_key_make() for family 4, for the fast path: the same key and side, built in registers
 * (no memset, memcmp or memcpy call for 4-byte addresses). Addresses at @p saddr/@p daddr
 * (4 bytes each, network order, any alignment); ports in network order.
 * @return the key side the source sits on (0 or 1).
 */
static inline int fw_key_make4(struct fw_key *key, uint8_t proto, const void *saddr,
			       const void *daddr, uint16_t sport, uint16_t dport)
{
	uint32_t s, d, hs, hd;
	int side;

	__builtin_memcpy(&s, saddr, sizeof(s));
	__builtin_memcpy(&d, daddr, sizeof(d));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	hs = __builtin_bswap32(s);
	hd = __builtin_bswap32(d);
#else
	hs = s;
	hd = d;
#endif
	/* memcmp's order of the address bytes is the order of the big-endian numbers. */
	side = hs > hd || (hs == hd && sport > dport);
	*key = (struct fw_key){.family = 4, .proto = proto};
	__builtin_memcpy(key->addr[0], side ? &d : &s, sizeof(s));
	__builtin_memcpy(key->addr[1], side ? &s : &d, sizeof(s));
	key->port[0] = side ? dport : sport;
	key->port[1] = side ? sport : dport;
	return side;
}

/**
 * Key equality in rte_hash's compare convention (0: equal), for its custom compare hook:
 * five 8-byte words, where rte_hash has no 40-byte compare of its own and calls memcmp.
 * @p len is sizeof(struct fw_key), the table's key length.
 */
static inline int fw_key_cmp(const void *a, const void *b, size_t len)
{
	uint64_t x[5], y[5];

	_Static_assert(sizeof(x) == sizeof(struct fw_key), "five words");
	(void)len;
	__builtin_memcpy(x, a, sizeof(x));
	__builtin_memcpy(y, b, sizeof(y));
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) != 0;
}

/** Secret of the connection-ID hash: per instance, so IDs cannot be steered from outside. */
struct fw_id_secret {
	uint64_t k[2];
};

/** Fill @p s from the kernel's random source. @return 0 or -errno. */
int fw_id_secret_init(struct fw_id_secret *s);

/** Connection ID: SipHash-2-4 of the key under @p s; never 0. */
uint64_t fw_conn_id(const struct fw_id_secret *s, const struct fw_key *key);

/** Direction of a packet whose source is on key side @p src_side. */
static inline enum fw_dir fw_conn_dir(const struct fw_conn *c, int src_side)
{
	return src_side == c->orig_side ? FW_DIR_ORIG : FW_DIR_REPLY;
}

/** Mark a module's slice changed: the checkpointer collects it. */
static inline void fw_conn_mark_dirty(struct fw_conn *c, enum fw_module_id m)
{
	c->dirty |= (uint8_t)(1u << m);
}

/** Mark a module's slice changed and due at the end of this burst, not with the next batch:
 * for changes whose loss a restore could not absorb (a TCP window edge, see modules/tcp). */
static inline void fw_conn_mark_dirty_now(struct fw_conn *c, enum fw_module_id m)
{
	c->dirty |= (uint8_t)(1u << m);
	c->flags |= FW_CONN_F_CKPT_NOW;
}

/**
 * Slice of module @p m at its fixed offset (see modules/fw_slices.h) in the hot line or in
 * the cold part: @p off is a constant, so the choice is made at compile time, and a slice
 * lies wholly in one part (checked here).
 */
#define FW_SLICE(c, type, off)                                                                     \
	((type *)(void *)((void)sizeof(struct {                                                    \
				  _Static_assert(                                                  \
					  (off) + sizeof(type) <= FW_EXT_HOT ||                    \
						  (off) >= FW_EXT_HOT,                             \
					  "a slice lies in the hot line or in the cold part");     \
				  int x;                                                           \
			  }),                                                                      \
			  (off) < FW_EXT_HOT ? (c)->ext + (off)                                    \
					     : fw_conn_cold(c)->ext + ((off)-FW_EXT_HOT)))

#ifdef __cplusplus
}
#endif

#endif /* HOLDFAST_FW_CONN_H */
