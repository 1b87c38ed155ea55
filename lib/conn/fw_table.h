/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-lcore connection table: an rte_hash of canonical keys whose positions index the hot
 * and cold planes of its connections (fw_conns_map), plus the FTP-style expectations of that lcore.
 * One writer (its lcore), no locks. Private to the firewall.
 */
#ifndef FW_TABLE_H
#define FW_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "holdfast/fw_module.h"

struct fw_table;

/**
 * Most connections a table holds: its hot lines fill at most 7/8 of one plane of
 * fw_conns_map (the rest is rte_hash's room past a capacity near a power of two).
 */
#define FW_TABLE_CAPACITY_MAX (FW_CONNS_MAX / 8 * 7)

/**
 * Create a table for @p capacity connections and @p max_expect expectations on NUMA
 * @p socket. @return the table or NULL with errno (EINVAL: @p capacity 0 or over
 * FW_TABLE_CAPACITY_MAX; ENOMEM, or rte_hash's).
 */
struct fw_table *fw_table_create(const char *name, uint32_t capacity, uint32_t max_expect,
				 int socket);

/** Free; sets *@p tp to NULL. NULL is a no-op. */
void fw_table_free(struct fw_table **tp);

/** Look up @p n keys at once; conns[i] is NULL where there is none. */
void fw_table_lookup_bulk(struct fw_table *t, const struct fw_key *const *keys, unsigned int n,
			  struct fw_conn **conns);

/** Look up one key. */
struct fw_conn *fw_table_lookup(struct fw_table *t, const struct fw_key *key);

/**
 * Insert a zeroed connection for @p key (its ID computed by the caller).
 * @return the connection, or NULL when the table is full (or the key exists: EEXIST).
 */
struct fw_conn *fw_table_add(struct fw_table *t, const struct fw_key *key, uint64_t id);

/**
 * The connection with @p key, inserted zeroed with @p id if there is none (*@p created
 * says which): one hash operation where lookup-then-add costs two.
 * @return the connection, or NULL with errno ENOSPC when the table is full.
 */
struct fw_conn *fw_table_get_or_add(struct fw_table *t, const struct fw_key *key, uint64_t id,
				    bool *created);

/** @p key's hash as @p t computes it, for the _with_hash calls below. */
uint32_t fw_table_hash(const struct fw_table *t, const struct fw_key *key);

/**
 * Bring into cache what inserting or looking up @p n keys (hashes @p sigs) will read, so
 * that a batch of inserts waits on memory once (a restore: fw_restore_batch).
 */
void fw_table_prefetch_bulk(struct fw_table *t, const struct fw_key *const *keys,
			    const uint32_t *sigs, unsigned int n);

/** fw_table_get_or_add() with @p key's hash @p sig (fw_table_hash) computed already. */
struct fw_conn *fw_table_get_or_add_with_hash(struct fw_table *t, const struct fw_key *key,
					      uint32_t sig, uint64_t id, bool *created);

/** Remove @p c; its memory is reused by a later add. */
void fw_table_del(struct fw_table *t, struct fw_conn *c);

/** Connections in the table. */
uint32_t fw_table_count(const struct fw_table *t);
uint32_t fw_table_capacity(const struct fw_table *t);

/** Called for each connection found idle; the callback deletes or keeps it. */
typedef void (*fw_expire_fn)(struct fw_table *t, struct fw_conn *c, void *arg);

/**
 * Look at up to @p budget positions from where the last sweep stopped; call @p fn for each
 * connection whose expire_ns is before @p now. @return connections found idle.
 */
unsigned int fw_table_sweep(struct fw_table *t, uint64_t now, unsigned int budget, fw_expire_fn fn,
			    void *arg);

/**
 * Positions a connection may sit at, 0 to fw_table_slots() - 1: a connection keeps its
 * position while it lives, so a walk resumed from a position (a listing read a page at a
 * time) visits every connection that stayed once. Fixed at create: any thread may ask.
 */
uint32_t fw_table_slots(const struct fw_table *t);

/** The connection at position @p pos, NULL when the position is free or out of range. */
struct fw_conn *fw_table_at(struct fw_table *t, uint32_t pos);

/** Visit every connection (telemetry, checkpoint resync). Nonzero from @p fn stops. */
int fw_table_walk(struct fw_table *t, int (*fn)(struct fw_conn *c, void *arg), void *arg);

/** Positions a walk visits: fw_table_walk_range() over [0, this) is fw_table_walk(). */
uint32_t fw_table_positions(const struct fw_table *t);

/**
 * fw_table_walk() of positions [@p from, @p to) only. Two threads may walk two disjoint
 * ranges at once when each @p fn changes only the connections of its own range.
 */
int fw_table_walk_range(struct fw_table *t, uint32_t from, uint32_t to,
			int (*fn)(struct fw_conn *c, void *arg), void *arg);

/**
 * Add @p master's expectation @p e (master: a connection of this table). A master has at
 * most one: a new one withdraws the one before. Deleting @p master (fw_table_del) withdraws
 * it too. @return 0, -ENOSPC (full), -EEXIST (@p master expects the same endpoints already:
 * its deadline is refreshed), -EINVAL (@p master is not a connection of @p t).
 */
int fw_table_expect_add(struct fw_table *t, const struct fw_expect *e, struct fw_conn *master);

/**
 * Find and consume an unexpired expectation that admits a connection from @p saddr:@p sport
 * to @p daddr:@p dport (network order) at @p now. @return 1 with *@p out and the
 * expectation's master in *@p master, or 0.
 */
int fw_table_expect_take(struct fw_table *t, uint8_t family, uint8_t proto, const uint8_t *saddr,
			 uint16_t sport, const uint8_t *daddr, uint16_t dport, uint64_t now,
			 struct fw_expect *out, struct fw_conn **master);

/** Told of an expectation that expired, once it left the table; must not change @p t. */
typedef void (*fw_expect_fn)(struct fw_table *t, const struct fw_expect *e, struct fw_conn *master,
			     void *arg);

/**
 * Remove every expectation whose deadline is before @p now and call @p fn for each. Cheap
 * when none is due (one comparison). @return expectations removed.
 */
unsigned int fw_table_expect_expire(struct fw_table *t, uint64_t now, fw_expect_fn fn, void *arg);

/** Expectations held. */
uint32_t fw_table_expect_count(const struct fw_table *t);

#endif /* FW_TABLE_H */
