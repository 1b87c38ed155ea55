/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdalign.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include "fw_table.h"

/* How many positions ahead of an insert the next ones are fetched (see get_or_add). */
#define FW_TABLE_ADD_AHEAD 4
/* And of a walk: it does less per position than an insert, so it looks further. */
#define FW_TABLE_WALK_AHEAD 8

struct fw_table {
	struct rte_hash *h;
	struct fw_conn *conns; /* hot lines by hash position; cold parts: fw_conn_cold */
	uint32_t slots;	       /* positions rte_hash may return */
	uint32_t capacity;     /* keys it holds */
	uint32_t count;
	uint32_t sweep_pos;
	struct fw_expect *exp;
	uint32_t *exp_master; /* position in conns of each expectation's master */
	uint32_t max_expect;
	uint32_t nexpect;
	uint64_t exp_next_ns; /* no expectation expires before (UINT64_MAX: none held) */
};

/*
 * The entries rte_hash is made for, of a table of @p capacity connections. rte_hash gives
 * its entries the next power of two of bucket room (8 keys a bucket), so a table of
 * max-conns 2^20 or 1,000,000 fills its buckets to 100 % or 95 %, and there an insert whose
 * two buckets are full searches for room by moving keys about (cuckoo): a walk of random
 * buckets, each a cache miss, that took ~18 % of a 1 M restore's inserting thread. A
 * capacity past 7/8 of its power of two gets entries one past it, which doubles the
 * buckets (at most half full) and costs at most a seventh more positions (2^20: one more;
 * 1,000,000: 4.9 % more); fw_table_get_or_add keeps the count at @p capacity.
 */
static uint32_t hash_entries(uint32_t capacity)
{
	const uint32_t room = rte_align32pow2(capacity);

	return (uint64_t)capacity * 8 > (uint64_t)room * 7 ? room + 1 : capacity;
}

struct fw_table *fw_table_create(const char *name, uint32_t capacity, uint32_t max_expect,
				 int socket)
{
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = hash_entries(capacity),
		.key_len = sizeof(struct fw_key),
		.hash_func = rte_hash_crc,
		.hash_func_init_val = 0,
		.socket_id = socket,
		/* Every key is guaranteed its slot: the table never fails below capacity. */
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct fw_table *t;
	int err;

	if (name == NULL || capacity == 0 || capacity > FW_TABLE_CAPACITY_MAX) {
		errno = EINVAL;
		return NULL;
	}
	t = rte_zmalloc_socket("fw_table", sizeof(*t), RTE_CACHE_LINE_SIZE, socket);
	if (t == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	t->h = rte_hash_create(&hp);
	if (t->h == NULL) {
		err = rte_errno ? rte_errno : ENOMEM;
		goto err_free;
	}
	/* A function pointer is per process: every table is its own process's (none shared). */
	rte_hash_set_cmp_func(t->h, fw_key_cmp);
	/* Positions may run past the key count: size the planes by what rte_hash hands out. */
	t->capacity = capacity;
	t->slots = (uint32_t)rte_hash_max_key_id(t->h) + 1;
	/* 7/8 of a plane at most: rte_hash's entries are the capacity, positions one more. */
	_Static_assert((uint64_t)FW_TABLE_CAPACITY_MAX * 8 <= (uint64_t)FW_CONNS_MAX * 7,
		       "a plane holds every position");
	t->conns = fw_conns_map(t->slots, socket);
	if (t->conns == NULL) {
		err = errno;
		goto err_free_hash;
	}
	t->max_expect = max_expect;
	t->exp_next_ns = UINT64_MAX;
	if (max_expect) {
		t->exp = rte_zmalloc_socket("fw_expect", sizeof(*t->exp) * max_expect, 0, socket);
		t->exp_master = rte_zmalloc_socket("fw_expect_master",
						   sizeof(*t->exp_master) * max_expect, 0, socket);
		if (t->exp == NULL || t->exp_master == NULL) {
			err = ENOMEM;
			goto err_free_exp;
		}
	}
	return t;

err_free_exp:
	rte_free(t->exp_master);
	rte_free(t->exp);
	fw_conns_unmap(t->conns, t->slots);
err_free_hash:
	rte_hash_free(t->h);
err_free:
	rte_free(t);
	errno = err;
	return NULL;
}

void fw_table_free(struct fw_table **tp)
{
	struct fw_table *t;

	if (tp == NULL || *tp == NULL)
		return;
	t = *tp;
	rte_free(t->exp_master);
	rte_free(t->exp);
	fw_conns_unmap(t->conns, t->slots);
	rte_hash_free(t->h);
	rte_free(t);
	*tp = NULL;
}

void fw_table_lookup_bulk(struct fw_table *t, const struct fw_key *const *keys, unsigned int n,
			  struct fw_conn **conns)
{
	int32_t pos[RTE_HASH_LOOKUP_BULK_MAX];

	while (n > 0) {
		unsigned int m = RTE_MIN(n, (unsigned int)RTE_HASH_LOOKUP_BULK_MAX);

		rte_hash_lookup_bulk(t->h, (const void **)(uintptr_t)keys, m, pos);
		for (unsigned int i = 0; i < m; i++)
			conns[i] = pos[i] >= 0 ? &t->conns[pos[i]] : NULL;
		keys += m;
		conns += m;
		n -= m;
	}
}

struct fw_conn *fw_table_lookup(struct fw_table *t, const struct fw_key *key)
{
	int32_t pos = rte_hash_lookup(t->h, key);

	return pos >= 0 ? &t->conns[pos] : NULL;
}

uint32_t fw_table_hash(const struct fw_table *t, const struct fw_key *key)
{
	return rte_hash_hash(t->h, key);
}

void fw_table_prefetch_bulk(struct fw_table *t, const struct fw_key *const *keys,
			    const uint32_t *sigs, unsigned int n)
{
	int32_t pos[RTE_HASH_LOOKUP_BULK_MAX];

	/* rte_hash keeps its buckets to itself: a bulk lookup is the way to fetch them. */
	while (n > 0) {
		unsigned int m = RTE_MIN(n, (unsigned int)RTE_HASH_LOOKUP_BULK_MAX);

		rte_hash_lookup_with_hash_bulk(t->h, (const void **)(uintptr_t)keys,
					       (hash_sig_t *)(uintptr_t)sigs, m, pos);
		keys += m;
		sigs += m;
		n -= m;
	}
}

struct fw_conn *fw_table_get_or_add(struct fw_table *t, const struct fw_key *key, uint64_t id,
				    bool *created)
{
	return fw_table_get_or_add_with_hash(t, key, rte_hash_hash(t->h, key), id, created);
}

/*
 * memset() of @p len bytes at @p p, 16 bytes a store: gcc makes memset of a connection's
 * 320 bytes a rep stos, whose start-up took ~30 cycles of every insert (half of a
 * restore's time in fw_table_get_or_add_with_hash).
 */
static inline void zero16(void *p, size_t len)
{
	typedef uint64_t word16 __attribute__((vector_size(16), may_alias));
	word16 *w = p;

#pragma GCC unroll 16
	for (size_t i = 0; i < len / sizeof(*w); i++)
		w[i] = (word16){0, 0};
}

static inline void conn_zero(struct fw_conn *c, struct fw_conn_cold *cc)
{
	_Static_assert(sizeof(*c) % 16 == 0 && alignof(struct fw_conn) >= 16 &&
			       sizeof(*cc) % 16 == 0 && alignof(struct fw_conn_cold) >= 16,
		       "whole aligned stores");
	zero16(c, sizeof(*c));
	zero16(cc, sizeof(*cc));
}

struct fw_conn *fw_table_get_or_add_with_hash(struct fw_table *t, const struct fw_key *key,
					      uint32_t sig, uint64_t id, bool *created)
{
	int32_t pos;
	struct fw_conn *c;
	struct fw_conn_cold *cc;

	/* rte_hash has room past the capacity (hash_entries): a full table finds keys only. */
	if (unlikely(t->count >= t->capacity)) {
		pos = rte_hash_lookup_with_hash(t->h, key, sig);
		if (pos < 0) {
			errno = ENOSPC;
			return NULL;
		}
	} else {
		/* It returns the position a key already has; a free one has family 0. */
		pos = rte_hash_add_key_with_hash(t->h, key, sig);
	}
	if (pos < 0) {
		errno = -pos;
		return NULL;
	}
	c = &t->conns[pos];
	cc = fw_conn_cold(c);
	*created = cc->key.family == 0;
	if (!*created)
		return c;
	/*
	 * rte_hash hands free positions out in its ring's order, so the next insert into a
	 * filling table (a restore) most likely lands a few positions on: fetch that
	 * connection now, or the stores below wait for memory on every insert.
	 */
	if ((uint32_t)pos + FW_TABLE_ADD_AHEAD < t->slots) {
		const struct fw_conn *n = c + FW_TABLE_ADD_AHEAD;
		const uint8_t *ncold = (const uint8_t *)fw_conn_cold(n);

		rte_prefetch0(n);
		for (size_t l = 0; l < sizeof(*cc); l += RTE_CACHE_LINE_SIZE)
			rte_prefetch0(ncold + l);
	}
	conn_zero(c, cc);
	cc->key = *key;
	cc->id = id;
	for (int m = 0; m < FW_MOD_MAX; m++)
		cc->slot_pair[m] = UINT32_MAX;
	t->count++;
	return c;
}

struct fw_conn *fw_table_add(struct fw_table *t, const struct fw_key *key, uint64_t id)
{
	bool created;
	struct fw_conn *c = fw_table_get_or_add(t, key, id, &created);

	if (c != NULL && !created) {
		errno = EEXIST;
		return NULL;
	}
	return c;
}

static void expect_withdraw_master(struct fw_table *t, struct fw_conn *c);

void fw_table_del(struct fw_table *t, struct fw_conn *c)
{
	struct fw_conn_cold *cc = fw_conn_cold(c);

	/* What it expects goes with it: its position may hold another connection next. */
	if (c->flags & FW_CONN_F_EXPECTING)
		expect_withdraw_master(t, c);
	if (rte_hash_del_key(t->h, &cc->key) >= 0)
		t->count--;
	cc->key.family = 0; /* position free: sweeps skip it */
}

uint32_t fw_table_count(const struct fw_table *t)
{
	return t->count;
}

uint32_t fw_table_capacity(const struct fw_table *t)
{
	return t->capacity;
}

uint32_t fw_table_slots(const struct fw_table *t)
{
	return t->slots;
}

struct fw_conn *fw_table_at(struct fw_table *t, uint32_t pos)
{
	return pos < t->slots && fw_conn_cold(&t->conns[pos])->key.family != 0 ? &t->conns[pos]
									       : NULL;
}

unsigned int fw_table_sweep(struct fw_table *t, uint64_t now, unsigned int budget, fw_expire_fn fn,
			    void *arg)
{
	unsigned int idle = 0;

	if (t->count == 0)
		return 0;
	while (budget--) {
		struct fw_conn *c = &t->conns[t->sweep_pos];

		if (++t->sweep_pos == t->slots)
			t->sweep_pos = 0;
		/* The hot deadline first: a live connection not yet idle costs no cold line. */
		if (c->expire_ns < now && fw_conn_cold(c)->key.family != 0) {
			idle++;
			fn(t, c, arg);
		}
	}
	return idle;
}

int fw_table_walk(struct fw_table *t, int (*fn)(struct fw_conn *c, void *arg), void *arg)
{
	return fw_table_walk_range(t, 0, t->slots, fn, arg);
}

uint32_t fw_table_positions(const struct fw_table *t)
{
	return t->slots;
}

int fw_table_walk_range(struct fw_table *t, uint32_t from, uint32_t to,
			int (*fn)(struct fw_conn *c, void *arg), void *arg)
{
	if (to > t->slots)
		to = t->slots;
	for (uint32_t i = from; i < to; i++) {
		/* A full table's walk (a restore's finish) waited on every connection's line. */
		if (i + FW_TABLE_WALK_AHEAD < to) {
			rte_prefetch0(&fw_conn_cold(&t->conns[i + FW_TABLE_WALK_AHEAD])->key);
			rte_prefetch0(&t->conns[i + FW_TABLE_WALK_AHEAD]);
		}
		if (fw_conn_cold(&t->conns[i])->key.family != 0) {
			int rc = fn(&t->conns[i], arg);

			if (rc)
				return rc;
		}
	}
	return 0;
}

static int expect_same(const struct fw_expect *a, const struct fw_expect *b)
{
	return a->family == b->family && a->proto == b->proto &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0 && a->port[0] == b->port[0] &&
	       a->port[1] == b->port[1];
}

/*
 * Expectation @p i leaves the table. Every master has at most one (see
 * fw_table_expect_add), so its master expects nothing any more. @return the master: a
 * master's expectations leave with it (fw_table_del), so it is still in the table.
 */
static struct fw_conn *expect_remove(struct fw_table *t, uint32_t i)
{
	struct fw_conn *m = &t->conns[t->exp_master[i]];

	m->flags &= (uint8_t)~FW_CONN_F_EXPECTING;
	t->nexpect--;
	t->exp[i] = t->exp[t->nexpect];
	t->exp_master[i] = t->exp_master[t->nexpect];
	if (t->nexpect == 0)
		t->exp_next_ns = UINT64_MAX;
	return m;
}

static void expect_withdraw_master(struct fw_table *t, struct fw_conn *c)
{
	const uint32_t pos = (uint32_t)(c - t->conns);

	for (uint32_t i = 0; i < t->nexpect; i++) {
		if (t->exp_master[i] == pos) {
			expect_remove(t, i);
			return;
		}
	}
}

int fw_table_expect_add(struct fw_table *t, const struct fw_expect *e, struct fw_conn *master)
{
	const uint32_t pos = (uint32_t)(master - t->conns);
	uint32_t i;

	if (master < t->conns || pos >= t->slots || fw_conn_cold(master)->key.family == 0)
		return -EINVAL;
	for (i = 0; i < t->nexpect && t->exp_master[i] != pos; i++)
		;
	if (i < t->nexpect && expect_same(&t->exp[i], e)) {
		t->exp[i].expire_ns = e->expire_ns; /* announced again: refresh */
		if (e->expire_ns < t->exp_next_ns)
			t->exp_next_ns = e->expire_ns;
		return -EEXIST;
	}
	if (i == t->nexpect) {
		if (t->nexpect == t->max_expect)
			return -ENOSPC;
		t->nexpect++;
	}
	/* A new one, or the one that withdraws the master's earlier one in its place. */
	t->exp[i] = *e;
	t->exp_master[i] = pos;
	master->flags |= FW_CONN_F_EXPECTING;
	if (e->expire_ns < t->exp_next_ns)
		t->exp_next_ns = e->expire_ns;
	return 0;
}

int fw_table_expect_take(struct fw_table *t, uint8_t family, uint8_t proto, const uint8_t *saddr,
			 uint16_t sport, const uint8_t *daddr, uint16_t dport, uint64_t now,
			 struct fw_expect *out, struct fw_conn **master)
{
	const size_t alen = family == 4 ? 4 : 16;

	for (uint32_t i = 0; i < t->nexpect; i++) {
		const struct fw_expect *e = &t->exp[i];

		/* An expired one admits nothing; fw_table_expect_expire removes it and tells. */
		if (e->expire_ns < now)
			continue;
		if (e->family == family && e->proto == proto &&
		    memcmp(e->addr[0], saddr, alen) == 0 && memcmp(e->addr[1], daddr, alen) == 0 &&
		    (e->port[0] == 0 || e->port[0] == sport) && e->port[1] == dport) {
			*out = *e;
			*master = expect_remove(t, i);
			return 1;
		}
	}
	return 0;
}

unsigned int fw_table_expect_expire(struct fw_table *t, uint64_t now, fw_expect_fn fn, void *arg)
{
	uint64_t next = UINT64_MAX;
	unsigned int n = 0;
	uint32_t i = 0;

	if (now <= t->exp_next_ns)
		return 0;
	while (i < t->nexpect) {
		if (t->exp[i].expire_ns < now) {
			const struct fw_expect e = t->exp[i];

			fn(t, &e, expect_remove(t, i), arg);
			n++;
			continue;
		}
		if (t->exp[i].expire_ns < next)
			next = t->exp[i].expire_ns;
		i++;
	}
	t->exp_next_ns = next;
	return n;
}

uint32_t fw_table_expect_count(const struct fw_table *t)
{
	return t->nexpect;
}
