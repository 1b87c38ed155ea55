/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include <rte_malloc.h>
#include <rte_spinlock.h>

#include "fw_board.h"

struct entry {
	struct fw_expect e;
	struct fw_conn *master; /* the owner's; never dereferenced by another worker */
	uint64_t used;		/* 0: unused; else the order it was used in */
	uint8_t owner;
	uint8_t by; /* the worker that used it */
};

struct fw_board {
	rte_spinlock_t lock;
	uint32_t max, n;
	uint32_t unused;		       /* entries not used: 0 lets a take skip the lock */
	uint32_t pending[FW_BOARD_MAX_WORKER]; /* used, not settled, per owner */
	uint64_t next_ns[FW_BOARD_MAX_WORKER]; /* no unused one of the owner's expires before */
	/* Another worker holds a frame until the owner settled what it used (fw_board_done). */
	uint8_t awaited[FW_BOARD_MAX_WORKER];
	/* Every use of the owner's expectations up to this order is settled and checkpointed. */
	uint64_t done[FW_BOARD_MAX_WORKER];
	uint64_t used_seq;
	struct entry *ent;
};

/* Settled or expired at once, at most: the callbacks run outside the lock. */
#define BATCH 32

struct fw_board *fw_board_create(uint32_t max)
{
	struct fw_board *b;

	if (max == 0) {
		errno = EINVAL;
		return NULL;
	}
	b = rte_zmalloc("fw_board", sizeof(*b), RTE_CACHE_LINE_SIZE);
	if (b == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	b->ent = rte_zmalloc("fw_board_entries", sizeof(*b->ent) * max, RTE_CACHE_LINE_SIZE);
	if (b->ent == NULL) {
		rte_free(b);
		errno = ENOMEM;
		return NULL;
	}
	rte_spinlock_init(&b->lock);
	b->max = max;
	for (unsigned int i = 0; i < FW_BOARD_MAX_WORKER; i++)
		b->next_ns[i] = UINT64_MAX;
	return b;
}

void fw_board_free(struct fw_board **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	rte_free((*bp)->ent);
	rte_free(*bp);
	*bp = NULL;
}

static bool same(const struct fw_expect *a, const struct fw_expect *b)
{
	return a->family == b->family && a->proto == b->proto &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0 && a->port[0] == b->port[0] &&
	       a->port[1] == b->port[1] && a->master_id == b->master_id;
}

/* Does any entry of @p owner's still name @p master? (Under the lock.) */
static bool names(const struct fw_board *b, unsigned int owner, const struct fw_conn *master)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (b->ent[i].owner == owner && b->ent[i].master == master)
			return true;
	return false;
}

/* Entry @p i leaves the board (under the lock); the last one takes its place. */
static void remove_at(struct fw_board *b, uint32_t i)
{
	const struct entry *x = &b->ent[i];

	if (x->used)
		__atomic_store_n(&b->pending[x->owner], b->pending[x->owner] - 1, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&b->unused, b->unused - 1, __ATOMIC_RELAXED);
	b->ent[i] = b->ent[--b->n];
}

int fw_board_add(struct fw_board *b, unsigned int owner, struct fw_conn *master,
		 const struct fw_expect *e)
{
	uint32_t i;
	int rc = 0;

	if (owner >= FW_BOARD_MAX_WORKER || master == NULL)
		return -EINVAL;
	rte_spinlock_lock(&b->lock);
	for (i = 0; i < b->n; i++)
		if (b->ent[i].owner == owner && b->ent[i].master == master && !b->ent[i].used)
			break;
	if (i < b->n && same(&b->ent[i].e, e)) {
		b->ent[i].e.expire_ns = e->expire_ns; /* announced again: refresh */
		rc = -EEXIST;
	} else if (i < b->n) {
		b->ent[i].e = *e; /* withdraws the one before */
	} else if (b->n == b->max) {
		rc = -ENOSPC;
	} else {
		b->ent[b->n++] = (struct entry){.e = *e, .master = master, .owner = (uint8_t)owner};
		__atomic_store_n(&b->unused, b->unused + 1, __ATOMIC_RELAXED);
	}
	if (rc != -ENOSPC) {
		master->flags |= FW_CONN_F_EXPECTING;
		if (e->expire_ns < b->next_ns[owner])
			__atomic_store_n(&b->next_ns[owner], e->expire_ns, __ATOMIC_RELAXED);
	}
	rte_spinlock_unlock(&b->lock);
	return rc;
}

int fw_board_take(struct fw_board *b, unsigned int by, uint8_t family, uint8_t proto,
		  const uint8_t *saddr, uint16_t sport, const uint8_t *daddr, uint16_t dport,
		  uint64_t now, struct fw_expect *out, unsigned int *owner, uint64_t *ticket)
{
	const size_t alen = family == 4 ? 4 : 16;
	int found = 0;

	if (__atomic_load_n(&b->unused, __ATOMIC_RELAXED) == 0)
		return 0;
	rte_spinlock_lock(&b->lock);
	for (uint32_t i = 0; i < b->n; i++) {
		struct entry *x = &b->ent[i];
		const struct fw_expect *e = &x->e;

		/* An expired one admits nothing; its owner's fw_board_expire removes it. */
		if (x->used || e->expire_ns < now)
			continue;
		if (e->family == family && e->proto == proto &&
		    memcmp(e->addr[0], saddr, alen) == 0 && memcmp(e->addr[1], daddr, alen) == 0 &&
		    (e->port[0] == 0 || e->port[0] == sport) && e->port[1] == dport) {
			x->used = ++b->used_seq;
			x->by = (uint8_t)by;
			if (x->owner != by) /* its frame waits for the owner's settle */
				__atomic_store_n(&b->awaited[x->owner], 1, __ATOMIC_RELAXED);
			__atomic_store_n(&b->unused, b->unused - 1, __ATOMIC_RELAXED);
			__atomic_store_n(&b->pending[x->owner], b->pending[x->owner] + 1,
					 __ATOMIC_RELEASE);
			*out = *e;
			*owner = x->owner;
			*ticket = x->used;
			found = 1;
			break;
		}
	}
	rte_spinlock_unlock(&b->lock);
	return found;
}

int fw_board_untake(struct fw_board *b, unsigned int owner, const struct fw_expect *e)
{
	int rc = -ENOENT;

	rte_spinlock_lock(&b->lock);
	for (uint32_t i = 0; i < b->n; i++) {
		struct entry *x = &b->ent[i];

		if (x->used && x->owner == owner && same(&x->e, e)) {
			x->used = 0;
			__atomic_store_n(&b->pending[owner], b->pending[owner] - 1,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&b->unused, b->unused + 1, __ATOMIC_RELAXED);
			rc = 0;
			break;
		}
	}
	rte_spinlock_unlock(&b->lock);
	return rc;
}

/*
 * Take up to BATCH of @p owner's entries that @p due says go, in the order they were used
 * (expired ones: as found), out of the board into @p out. (Under the lock.)
 */
static unsigned int take_due(struct fw_board *b, unsigned int owner, bool used, uint64_t now,
			     struct entry *out)
{
	unsigned int k = 0;
	uint32_t i = 0;
	uint64_t next = UINT64_MAX;

	while (i < b->n) {
		struct entry *x = &b->ent[i];

		if (x->owner != owner || (x->used != 0) != used) {
			i++;
			continue;
		}
		if (!used && x->e.expire_ns >= now) {
			if (x->e.expire_ns < next)
				next = x->e.expire_ns;
			i++;
			continue;
		}
		if (k == BATCH) {
			next = 0; /* more to do: look again next time */
			break;
		}
		out[k++] = *x;
		remove_at(b, i);
	}
	if (!used)
		__atomic_store_n(&b->next_ns[owner], next, __ATOMIC_RELAXED);
	/* Each master whose entries are all gone expects nothing any more. */
	for (unsigned int j = 0; j < k; j++)
		if (!names(b, owner, out[j].master))
			out[j].master->flags &= (uint8_t)~FW_CONN_F_EXPECTING;
	return k;
}

unsigned int fw_board_settle(struct fw_board *b, unsigned int owner, fw_board_fn fn, void *arg,
			     uint64_t *upto)
{
	struct entry got[BATCH];
	unsigned int k, total = 0;

	/*
	 * A frame waits for this owner: what was used up to now is taken below (its pending
	 * count was raised under the lock, before this look), so the caller may say so once
	 * its checkpoint has it. A use after this look raises the flag again.
	 */
	if (upto != NULL) {
		*upto = 0;
		if (__atomic_load_n(&b->awaited[owner], __ATOMIC_RELAXED)) {
			rte_spinlock_lock(&b->lock);
			*upto = b->used_seq;
			__atomic_store_n(&b->awaited[owner], 0, __ATOMIC_RELAXED);
			rte_spinlock_unlock(&b->lock);
		}
	}
	while (__atomic_load_n(&b->pending[owner], __ATOMIC_ACQUIRE) != 0) {
		rte_spinlock_lock(&b->lock);
		k = take_due(b, owner, true, 0, got);
		rte_spinlock_unlock(&b->lock);
		if (k == 0)
			break;
		/* In the order they were used: a few, sorted by insertion. */
		for (unsigned int i = 1; i < k; i++) {
			struct entry x = got[i];
			unsigned int j = i;

			for (; j > 0 && got[j - 1].used > x.used; j--)
				got[j] = got[j - 1];
			got[j] = x;
		}
		for (unsigned int i = 0; i < k; i++)
			fn(got[i].master, &got[i].e, got[i].by, arg);
		total += k;
	}
	return total;
}

void fw_board_done(struct fw_board *b, unsigned int owner, uint64_t upto)
{
	if (upto > __atomic_load_n(&b->done[owner], __ATOMIC_RELAXED))
		__atomic_store_n(&b->done[owner], upto, __ATOMIC_RELEASE);
}

bool fw_board_settled(const struct fw_board *b, unsigned int owner, uint64_t ticket)
{
	return __atomic_load_n(&b->done[owner], __ATOMIC_ACQUIRE) >= ticket;
}

unsigned int fw_board_expire(struct fw_board *b, unsigned int owner, uint64_t now, fw_board_fn fn,
			     void *arg)
{
	struct entry got[BATCH];
	unsigned int k;

	if (now <= __atomic_load_n(&b->next_ns[owner], __ATOMIC_RELAXED))
		return 0;
	rte_spinlock_lock(&b->lock);
	k = take_due(b, owner, false, now, got);
	rte_spinlock_unlock(&b->lock);
	for (unsigned int i = 0; i < k; i++)
		fn(got[i].master, &got[i].e, owner, arg);
	return k;
}

void fw_board_withdraw(struct fw_board *b, unsigned int owner, struct fw_conn *master)
{
	uint32_t i = 0;

	rte_spinlock_lock(&b->lock);
	while (i < b->n) {
		if (b->ent[i].owner == owner && b->ent[i].master == master)
			remove_at(b, i);
		else
			i++;
	}
	rte_spinlock_unlock(&b->lock);
	master->flags &= (uint8_t)~FW_CONN_F_EXPECTING;
}

uint32_t fw_board_count(struct fw_board *b, unsigned int owner)
{
	uint32_t n = 0;

	rte_spinlock_lock(&b->lock);
	for (uint32_t i = 0; i < b->n; i++)
		n += b->ent[i].owner == owner;
	rte_spinlock_unlock(&b->lock);
	return n;
}
