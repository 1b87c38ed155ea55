/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_malloc.h>

#include "fw_ckpt.h"

struct fw_slots {
	uint32_t first, count, used, cursor;
	uint32_t owed, owed_cursor;
	uint64_t *taken; /* bitmap */
	uint64_t *debt;	 /* bitmap: taken pairs whose owner is gone, owed a tombstone */
	uint64_t *gen;	 /* last generation written to each pair */
};

struct fw_slots *fw_slots_create(uint32_t first, uint32_t count)
{
	struct fw_slots *s;

	if (count == 0 || (uint64_t)first + count > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	/*
	 * EAL's memory (hugepages in production), not the heap's: a restore claims every pair
	 * right after this, and 9 bytes a pair of fresh heap pages met it with a page fault
	 * each 4 KB (1 M pairs: ~8 % of the restore).
	 */
	s->taken = rte_zmalloc("fw_slots", (count + 63) / 64 * sizeof(*s->taken), 0);
	s->debt = rte_zmalloc("fw_slots", (count + 63) / 64 * sizeof(*s->debt), 0);
	s->gen = rte_zmalloc("fw_slots", (size_t)count * sizeof(*s->gen), 0);
	if (s->taken == NULL || s->debt == NULL || s->gen == NULL) {
		rte_free(s->taken);
		rte_free(s->debt);
		rte_free(s->gen);
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->first = first;
	s->count = count;
	return s;
}

void fw_slots_free(struct fw_slots **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	rte_free((*sp)->taken);
	rte_free((*sp)->debt);
	rte_free((*sp)->gen);
	free(*sp);
	*sp = NULL;
}

static bool is_taken(const struct fw_slots *s, uint32_t i)
{
	return s->taken[i / 64] >> (i % 64) & 1;
}

uint32_t fw_slots_get(struct fw_slots *s, uint64_t *last_gen)
{
	if (s->used == s->count)
		return UINT32_MAX;
	/* Next free bit from the cursor, a word at a time. */
	for (;;) {
		uint32_t w = s->cursor / 64;
		uint64_t free_bits = ~s->taken[w] & (~0ull << (s->cursor % 64));

		if (free_bits) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(free_bits);

			if (i < s->count) {
				s->taken[w] |= 1ull << (i % 64);
				s->used++;
				s->cursor = i + 1 == s->count ? 0 : i + 1;
				*last_gen = s->gen[i];
				return s->first + i;
			}
		}
		s->cursor = (w + 1) * 64 >= s->count ? 0 : (w + 1) * 64;
	}
}

void fw_slots_put(struct fw_slots *s, uint32_t pair, uint64_t gen)
{
	uint32_t i = pair - s->first;

	if (pair < s->first || i >= s->count || !is_taken(s, i))
		return;
	s->taken[i / 64] &= ~(1ull << (i % 64));
	s->used--;
	if (gen > s->gen[i])
		s->gen[i] = gen;
}

int fw_slots_claim(struct fw_slots *s, uint32_t pair, uint64_t gen)
{
	uint32_t i = pair - s->first;

	if (pair < s->first || i >= s->count)
		return -ERANGE;
	if (is_taken(s, i))
		return -EBUSY;
	s->taken[i / 64] |= 1ull << (i % 64);
	s->used++;
	if (gen > s->gen[i])
		s->gen[i] = gen;
	return 0;
}

int fw_slots_seen(struct fw_slots *s, uint32_t pair, uint64_t gen)
{
	uint32_t i = pair - s->first;

	if (pair < s->first || i >= s->count)
		return -ERANGE;
	if (gen > s->gen[i])
		s->gen[i] = gen;
	return 0;
}

uint32_t fw_slots_used(const struct fw_slots *s)
{
	return s->used;
}

void fw_slots_owe(struct fw_slots *s, uint32_t pair, uint64_t gen)
{
	uint32_t i = pair - s->first;

	if (pair < s->first || i >= s->count || !is_taken(s, i) ||
	    (s->debt[i / 64] >> (i % 64) & 1))
		return;
	s->debt[i / 64] |= 1ull << (i % 64);
	s->owed++;
	if (gen > s->gen[i])
		s->gen[i] = gen;
}

uint32_t fw_slots_owed(const struct fw_slots *s)
{
	return s->owed;
}

uint32_t fw_slots_next_owed(struct fw_slots *s, uint64_t *gen)
{
	const uint32_t words = (s->count + 63) / 64;

	if (s->owed == 0)
		return UINT32_MAX;
	for (uint32_t n = 0; n <= words; n++) {
		uint32_t w = s->owed_cursor / 64;
		uint64_t bits = s->debt[w] & (~0ull << (s->owed_cursor % 64));

		if (bits) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);

			s->owed_cursor = i;
			*gen = s->gen[i];
			return s->first + i;
		}
		s->owed_cursor = w + 1 == words ? 0 : (w + 1) * 64;
	}
	return UINT32_MAX; /* not reached: owed counts the bits */
}

void fw_slots_settle(struct fw_slots *s, uint32_t pair)
{
	uint32_t i = pair - s->first;

	if (pair < s->first || i >= s->count || !(s->debt[i / 64] >> (i % 64) & 1))
		return;
	s->debt[i / 64] &= ~(1ull << (i % 64));
	s->owed--;
	fw_slots_put(s, pair, s->gen[i]);
}

void fw_key_to_ckpt(const struct fw_key *k, struct ckpt_key *out)
{
	memset(out, 0, sizeof(*out));
	out->family = k->family;
	out->proto = k->proto;
	out->port[0] = rte_be_to_cpu_16(k->port[0]);
	out->port[1] = rte_be_to_cpu_16(k->port[1]);
	memcpy(out->addr, k->addr, sizeof(out->addr));
}

void fw_key_from_ckpt(const struct ckpt_key *k, struct fw_key *out)
{
	memset(out, 0, sizeof(*out));
	out->family = k->family;
	out->proto = k->proto;
	out->port[0] = rte_cpu_to_be_16(k->port[0]);
	out->port[1] = rte_cpu_to_be_16(k->port[1]);
	memcpy(out->addr, k->addr, sizeof(out->addr));
}

/* The module that must be present for a connection of @p proto to be restored. */
static enum fw_module_id proto_module(uint8_t proto)
{
	return proto == 6 ? FW_MOD_TCP : proto == 17 ? FW_MOD_UDP : FW_MOD_MAX;
}

/* Which modules may own a slice of a connection of @p proto. */
static bool module_fits(enum fw_module_id m, uint8_t proto)
{
	return (m == FW_MOD_UDP) == (proto == 17) && (proto == 6 || proto == 17);
}

int fw_ckpt_slice(const struct fw_conn *c, enum fw_module_id m, uint8_t *payload, size_t cap,
		  struct ckpt_rec *out)
{
	const struct fw_conn_cold *cc = fw_conn_cold(c);
	const struct fw_module_ops *ops;
	int n;

	if ((unsigned int)m >= FW_MOD_MAX || (ops = fw_modules[m]) == NULL ||
	    !(c->present & (1u << m)))
		return -ENOENT;
	n = ops->encode(c, payload, cap);
	if (n < 0)
		return n;
	if ((size_t)n > CKPT_REC_MAX_PAYLOAD)
		return -ENOSPC;
	memset(out, 0, sizeof(*out));
	out->module_id = (uint8_t)m;
	out->slice_version = ops->slice_version;
	out->conn_id = cc->id;
	out->generation = cc->gen[m];
	out->slot_pair = cc->slot_pair[m];
	fw_key_to_ckpt(&cc->key, &out->key);
	out->payload_len = (uint16_t)n;
	out->payload = payload;
	return 0;
}

void fw_ckpt_tombstone(const struct fw_conn *c, enum fw_module_id m, struct ckpt_rec *out)
{
	const struct fw_conn_cold *cc = fw_conn_cold(c);

	memset(out, 0, sizeof(*out));
	out->flags = CKPT_REC_F_TOMBSTONE;
	out->module_id = (uint8_t)m;
	out->slice_version = fw_modules[m] ? fw_modules[m]->slice_version : 0;
	out->conn_id = cc->id;
	out->generation = cc->gen[m];
	out->slot_pair = cc->slot_pair[m];
	fw_key_to_ckpt(&cc->key, &out->key);
}

/*
 * fw_restore_add() of @p rec, whose key is @p key (fw_key_from_ckpt) hashed to @p sig
 * (fw_table_hash): the batch computes both for the whole batch ahead.
 */
static int restore_keyed(struct fw_table *t, struct fw_slots *slots, const struct ckpt_rec *rec,
			 const struct fw_key *key, uint32_t sig, struct fw_restore_stats *st)
{
	const struct fw_module_ops *ops;
	const enum fw_module_id m = (enum fw_module_id)rec->module_id;
	struct fw_conn *c;
	bool created;

	st->records++;
	if (rec->flags & CKPT_REC_F_TOMBSTONE) {
		if (fw_slots_seen(slots, rec->slot_pair, rec->generation) != 0)
			st->conflicts++;
		return 0;
	}
	if ((unsigned int)m >= FW_MOD_MAX || (ops = fw_modules[m]) == NULL) {
		st->unknown_module++;
		return 0;
	}
	if (rec->slice_version > ops->slice_version) {
		st->newer_version++;
		return 0;
	}
	if (!module_fits(m, key->proto)) {
		st->bad_slice++;
		return 0;
	}
	c = fw_table_get_or_add_with_hash(t, key, sig, rec->conn_id, &created);
	if (c == NULL) {
		st->no_room++;
		return -ENOSPC;
	}
	if (created) {
		c->flags |= FW_CONN_F_RESTORING;
	} else if (fw_conn_cold(c)->id != rec->conn_id || !(c->flags & FW_CONN_F_RESTORING) ||
		   (c->present & (1u << m))) {
		/* Another incarnation of this key, or this slice twice: keep what came first. */
		st->conflicts++;
		return 0;
	}
	if (fw_slots_claim(slots, rec->slot_pair, rec->generation) != 0) {
		st->conflicts++;
		if (m == proto_module(key->proto))
			c->flags |= FW_CONN_F_BAD_SLICE;
		return 0;
	}
	if (ops->decode(c, rec->payload, rec->payload_len, rec->slice_version) != 0) {
		st->bad_slice++;
		fw_slots_put(slots, rec->slot_pair, rec->generation);
		if (m == proto_module(key->proto))
			c->flags |= FW_CONN_F_BAD_SLICE;
		else
			st->partial++;
		return 0;
	}
	c->present |= (uint8_t)(1u << m);
	fw_conn_cold(c)->slot_pair[m] = rec->slot_pair;
	fw_conn_cold(c)->gen[m] = rec->generation;
	st->slices++;
	return 0;
}

int fw_restore_add(struct fw_table *t, struct fw_slots *slots, const struct ckpt_rec *rec,
		   struct fw_restore_stats *st)
{
	struct fw_key key;

	fw_key_from_ckpt(&rec->key, &key);
	return restore_keyed(t, slots, rec, &key, fw_table_hash(t, &key), st);
}

void fw_restore_batch_init(struct fw_restore_batch *b, struct fw_table *t, struct fw_slots *slots,
			   struct fw_restore_stats *st)
{
	b->t = t;
	b->slots = slots;
	b->st = st;
	b->n = 0;
}

int fw_restore_batch_flush(struct fw_restore_batch *b)
{
	struct fw_key keys[FW_RESTORE_BATCH];
	const struct fw_key *kp[FW_RESTORE_BATCH];
	uint32_t sig[FW_RESTORE_BATCH];
	int rc = 0;

	/* Each key made and hashed once: the prefetch and the insert share the hash. */
	for (unsigned int i = 0; i < b->n; i++) {
		fw_key_from_ckpt(&b->rec[i].key, &keys[i]);
		sig[i] = fw_table_hash(b->t, &keys[i]);
		kp[i] = &keys[i];
	}
	fw_table_prefetch_bulk(b->t, kp, sig, b->n);
	/* Past a full table every record is still counted (no_room), whatever its batch. */
	for (unsigned int i = 0; i < b->n; i++) {
		int r = restore_keyed(b->t, b->slots, &b->rec[i], &keys[i], sig[i], b->st);

		if (rc == 0)
			rc = r;
	}
	b->n = 0;
	return rc;
}

static inline void prefetch_rec(const struct ckpt_rec *r)
{
	__builtin_prefetch(r);
	__builtin_prefetch((const uint8_t *)r + sizeof(*r) - 1);
}

void fw_restore_stats_add(struct fw_restore_stats *to, const struct fw_restore_stats *from)
{
	to->records += from->records;
	to->slices += from->slices;
	to->unknown_module += from->unknown_module;
	to->newer_version += from->newer_version;
	to->bad_slice += from->bad_slice;
	to->conflicts += from->conflicts;
	to->no_room += from->no_room;
	to->conns += from->conns;
	to->dropped_missing += from->dropped_missing;
	to->partial += from->partial;
	to->stale += from->stale;
}

int fw_restore_add_many(struct fw_table *t, struct fw_slots *slots, const struct ckpt_rec *recs,
			unsigned int n, struct fw_restore_stats *st)
{
	int rc = 0;

	/* The first two batches' records, and the first one's payloads: see below. */
	for (unsigned int i = 0; i < n && i < 2 * FW_RESTORE_BATCH; i++)
		prefetch_rec(&recs[i]);
	for (unsigned int i = 0; i < n && i < FW_RESTORE_BATCH; i++)
		__builtin_prefetch(recs[i].payload);
	for (unsigned int i0 = 0; i0 < n; i0 += FW_RESTORE_BATCH) {
		const unsigned int m = n - i0 < FW_RESTORE_BATCH ? n - i0 : FW_RESTORE_BATCH;
		const unsigned int end =
			n - i0 < 3 * FW_RESTORE_BATCH ? n : i0 + 3 * FW_RESTORE_BATCH;
		struct fw_key keys[FW_RESTORE_BATCH];
		const struct fw_key *kp[FW_RESTORE_BATCH];
		uint32_t sig[FW_RESTORE_BATCH];

		/*
		 * Records written on another CPU (a split scan's) are fetched meanwhile, in two
		 * steps: the records of the batch after next, and the payloads of the next one,
		 * whose records came with the last batch. A payload's address is in its record:
		 * fetched with it, the load waited for the record's line.
		 */
		for (unsigned int i = i0 + 2 * FW_RESTORE_BATCH; i < end; i++)
			prefetch_rec(&recs[i]);
		for (unsigned int i = i0 + m; i < i0 + 2 * FW_RESTORE_BATCH && i < n; i++)
			__builtin_prefetch(recs[i].payload);
		/* Each key made and hashed once: the prefetch and the insert share the hash. */
		for (unsigned int i = 0; i < m; i++) {
			fw_key_from_ckpt(&recs[i0 + i].key, &keys[i]);
			sig[i] = fw_table_hash(t, &keys[i]);
			kp[i] = &keys[i];
		}
		fw_table_prefetch_bulk(t, kp, sig, m);
		for (unsigned int i = 0; i < m; i++) {
			int r = restore_keyed(t, slots, &recs[i0 + i], &keys[i], sig[i], st);

			if (rc == 0)
				rc = r;
		}
	}
	return rc;
}

int fw_restore_batch_add(struct fw_restore_batch *b, const struct ckpt_rec *rec)
{
	struct ckpt_rec *r = &b->rec[b->n];

	*r = *rec;
	if (rec->payload_len) {
		memcpy(b->payload[b->n], rec->payload, rec->payload_len);
		r->payload = b->payload[b->n];
	}
	return ++b->n == FW_RESTORE_BATCH ? fw_restore_batch_flush(b) : 0;
}

struct finish {
	struct fw_table *t;
	struct fw_slots *slots;
	struct fw_ctx *ctx;
	uint64_t now;
	struct fw_restore_stats *st;
	uint32_t kept;
};

/*
 * Its slices stay on the target: every restore would find and drop them again, and one of
 * them could shadow a later connection of the same key (the first record of a key names
 * the connection). So their pairs are owed tombstones, which the checkpointer writes.
 */
static void drop_conn(struct finish *f, struct fw_conn *c)
{
	const struct fw_conn_cold *cc = fw_conn_cold(c);

	for (int m = 0; m < FW_MOD_MAX; m++)
		if (cc->slot_pair[m] != UINT32_MAX)
			fw_slots_owe(f->slots, cc->slot_pair[m], cc->gen[m] + 1);
	fw_table_del(f->t, c);
}

static int finish_one(struct fw_conn *c, void *arg)
{
	struct finish *f = arg;
	const enum fw_module_id req = proto_module(fw_conn_cold(c)->key.proto);

	if (!(c->flags & FW_CONN_F_RESTORING))
		return 0;
	c->flags &= (uint8_t)~FW_CONN_F_RESTORING;
	if ((c->flags & FW_CONN_F_BAD_SLICE) || req == FW_MOD_MAX || !(c->present & (1u << req))) {
		f->st->dropped_missing++;
		drop_conn(f, c);
		return 0;
	}
	c->last_ns = f->now;
	for (int m = 0; m < FW_MOD_MAX; m++) {
		if (!(c->present & (1u << m)))
			continue;
		if (fw_modules[m]->on_restore(f->ctx, c) != 0) {
			f->st->dropped_missing++;
			drop_conn(f, c);
			return 0;
		}
	}
	c->flags |= FW_CONN_F_RESTORED;
	f->st->conns++;
	f->kept++;
	return 0;
}

uint32_t fw_restore_finish(struct fw_table *t, struct fw_slots *slots, struct fw_ctx *ctx,
			   uint64_t now_ns, struct fw_restore_stats *st)
{
	return fw_restore_finish_range(t, slots, ctx, now_ns, st, 0, fw_table_positions(t));
}

uint32_t fw_restore_finish_range(struct fw_table *t, struct fw_slots *slots, struct fw_ctx *ctx,
				 uint64_t now_ns, struct fw_restore_stats *st, uint32_t from,
				 uint32_t to)
{
	struct finish f = {t, slots, ctx, now_ns, st, 0};

	fw_table_walk_range(t, from, to, finish_one, &f);
	return f.kept;
}

struct finish_local {
	struct fw_ctx *ctx;
	uint64_t now;
	struct fw_finish_part *p;
};

/* finish_one() of a connection whose finish touches only itself; any other is deferred. */
static int finish_local_one(struct fw_conn *c, void *arg)
{
	struct finish_local *f = arg;
	struct fw_finish_part *p = f->p;
	const enum fw_module_id req = proto_module(fw_conn_cold(c)->key.proto);

	if (!(c->flags & FW_CONN_F_RESTORING))
		return 0;
	/* A drop: the slot pairs owe tombstones and the hash loses the key, both shared. */
	if ((c->flags & FW_CONN_F_BAD_SLICE) || req == FW_MOD_MAX || !(c->present & (1u << req)))
		goto defer;
	for (int m = 0; m < FW_MOD_MAX; m++)
		if ((c->present & (1u << m)) && !fw_modules[m]->restore_local)
			goto defer;
	c->last_ns = f->now;
	/* Local ones only set this connection's timers: run again by finish_one, the same. */
	for (int m = 0; m < FW_MOD_MAX; m++)
		if ((c->present & (1u << m)) && fw_modules[m]->on_restore(f->ctx, c) != 0)
			goto defer;
	c->flags &= (uint8_t)~FW_CONN_F_RESTORING;
	c->flags |= FW_CONN_F_RESTORED; /* as finish_one */
	p->st.conns++;
	p->kept++;
	return 0;
defer:
	if (p->ndefer < FW_FINISH_DEFER)
		p->defer[p->ndefer++] = c;
	else
		p->overflow = true;
	return 0;
}

void fw_restore_finish_local(struct fw_table *t, struct fw_ctx *ctx, uint64_t now_ns,
			     struct fw_finish_part *p)
{
	struct finish_local f = {ctx, now_ns, p};

	p->ndefer = 0;
	p->overflow = false;
	p->kept = 0;
	memset(&p->st, 0, sizeof(p->st));
	fw_table_walk_range(t, p->from, p->to, finish_local_one, &f);
}

uint32_t fw_restore_finish_rest(struct fw_table *t, struct fw_slots *slots, struct fw_ctx *ctx,
				uint64_t now_ns, struct fw_restore_stats *st,
				const struct fw_finish_part *p)
{
	struct finish f = {t, slots, ctx, now_ns, st, p->kept};

	st->conns += p->st.conns;
	if (p->overflow) /* what was finished is skipped: it is not restoring any more */
		fw_table_walk_range(t, p->from, p->to, finish_one, &f);
	else
		for (uint32_t i = 0; i < p->ndefer; i++)
			finish_one(p->defer[i], &f);
	return f.kept;
}

void fw_ckpt_pair_tombstone(uint32_t pair, uint64_t gen, struct ckpt_rec *out)
{
	memset(out, 0, sizeof(*out));
	out->flags = CKPT_REC_F_TOMBSTONE;
	out->module_id = FW_CKPT_CORE_MODULE;
	out->conn_id = 1;
	out->generation = gen;
	out->slot_pair = pair;
	out->key.family = 4; /* all-zero IPv4 key: no connection has it */
}

struct fw_shadow {
	struct fw_table *t;
	struct fw_slots *slots;
	struct fw_conn **by_pair; /* the connection whose slice a pair holds, if any */
};

struct fw_shadow *fw_shadow_create(struct fw_table *t, struct fw_slots *slots)
{
	struct fw_shadow *sh = calloc(1, sizeof(*sh));

	if (sh == NULL)
		return NULL;
	sh->by_pair = calloc(slots->count, sizeof(*sh->by_pair));
	if (sh->by_pair == NULL) {
		free(sh);
		errno = ENOMEM;
		return NULL;
	}
	sh->t = t;
	sh->slots = slots;
	return sh;
}

void fw_shadow_free(struct fw_shadow **shp)
{
	if (shp == NULL || *shp == NULL)
		return;
	free((*shp)->by_pair);
	free(*shp);
	*shp = NULL;
}

/* Take module @p m's slice off @p c (superseded or deleted); a connection left empty goes. */
static void shadow_detach(struct fw_shadow *sh, struct fw_conn *c, int m)
{
	struct fw_conn_cold *cc = fw_conn_cold(c);
	uint32_t pair = cc->slot_pair[m];

	if (pair != UINT32_MAX) {
		sh->by_pair[pair - sh->slots->first] = NULL;
		fw_slots_put(sh->slots, pair, cc->gen[m]);
	}
	cc->slot_pair[m] = UINT32_MAX;
	c->present &= (uint8_t) ~(1u << m);
	if (c->present == 0)
		fw_table_del(sh->t, c);
}

int fw_shadow_apply(struct fw_shadow *sh, const struct ckpt_rec *rec, struct fw_restore_stats *st)
{
	const uint32_t i = rec->slot_pair - sh->slots->first;
	struct fw_conn *old, *c;
	struct fw_key key;
	int rc;

	if (rec->slot_pair < sh->slots->first || i >= sh->slots->count) {
		st->records++;
		st->conflicts++;
		return 0;
	}
	if (rec->generation <= sh->slots->gen[i]) {
		st->stale++;
		return 0;
	}
	/* Newer than what the pair held: whatever slice sat there is superseded. */
	old = sh->by_pair[i];
	if (old != NULL) {
		for (int m = 0; m < FW_MOD_MAX; m++)
			if (fw_conn_cold(old)->slot_pair[m] == rec->slot_pair) {
				shadow_detach(sh, old, m);
				break;
			}
	}
	if (rec->flags & CKPT_REC_F_TOMBSTONE) {
		st->records++;
		return fw_slots_seen(sh->slots, rec->slot_pair, rec->generation);
	}
	if (rec->module_id >= FW_MOD_MAX)
		return fw_restore_add(sh->t, sh->slots, rec, st); /* counted, never trusted */
	/*
	 * A later incarnation of the key (another id), or the same slice in another pair: the
	 * record read now is the newer one, since the primary writes a key's slices in order.
	 */
	fw_key_from_ckpt(&rec->key, &key);
	c = fw_table_lookup(sh->t, &key);
	if (c != NULL && fw_conn_cold(c)->id != rec->conn_id) {
		for (int m = 0; m < FW_MOD_MAX && c != NULL; m++)
			if (c->present & (1u << m)) {
				bool last = (c->present & ~(1u << m)) == 0;

				shadow_detach(sh, c, m);
				if (last)
					c = NULL;
			}
		if (c != NULL)
			fw_table_del(sh->t, c);
	} else if (c != NULL && (c->present & (1u << rec->module_id))) {
		shadow_detach(sh, c, rec->module_id);
	}
	rc = fw_restore_add(sh->t, sh->slots, rec, st);
	c = fw_table_lookup(sh->t, &key);
	if (c != NULL && fw_conn_cold(c)->slot_pair[rec->module_id] == rec->slot_pair)
		sh->by_pair[i] = c;
	return rc;
}
