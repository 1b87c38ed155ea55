/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rings (append regions and the journal of overwrite regions) and the journal applier.
 *
 * A ring is a byte array of ring_size; positions are monotonic byte counts and the byte at
 * position p lives at p % ring_size. A record never straddles the end: where it would not
 * fit, the producer leaves a wrap marker and starts the record at the next lap. The
 * producer persists records, then the head; the consumer reads [tail, head), then persists
 * the tail. Neither word ever moves backwards.
 */
#include <errno.h>
#include <string.h>

#include "holdfast/pmu.h"
#include "hf_log.h"

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t pmu_ring_place(uint64_t ring_size, uint64_t pos, uint32_t len)
{
	uint64_t room = ring_size - pos % ring_size;

	return room >= len ? pos : pos + room;
}

/*
 * Could a producer have left a wrap marker at ring offset @p off, @p room bytes before the
 * end? It leaves one only for a record of len > room, which goes to the next lap only when
 * the ring then holds at most ring_size bytes from the tail to that record's end, so
 * len <= off; and len <= CKPT_REC_MAX_LEN. A marker anywhere else (at offset 0, with room
 * for any record) is damage or forgery, and following it would skip records.
 */
static int marker_fits(uint64_t off, uint64_t room)
{
	return room < CKPT_REC_MAX_LEN && room < off;
}

int pmu_ring_head_fits(uint64_t ring_size, uint64_t tail, uint64_t head)
{
	return head <= tail || head - tail <= ring_size;
}

int pmu_ring_walk(const uint8_t *ring, uint64_t ring_size, uint64_t tail, uint64_t head,
		  pmu_rec_fn fn, void *arg, uint64_t *invalid, uint64_t *stop)
{
	uint64_t pos = tail;
	int n = 0;

	/* Records, markers and so both ends are CKPT_REC_ALIGN aligned. */
	if (ring_size == 0 || ring_size % CKPT_REC_ALIGN || head < tail ||
	    !pmu_ring_head_fits(ring_size, tail, head) || tail % CKPT_REC_ALIGN ||
	    head % CKPT_REC_ALIGN)
		return -EINVAL;
	while (pos < head) {
		uint64_t off = pos % ring_size;
		uint64_t room = ring_size - off;
		uint64_t span = head - pos < room ? head - pos : room;
		struct ckpt_rec rec;
		int len;

		if (span >= 4 && get32(ring + off) == PMU_RING_WRAP_MAGIC) {
			/*
			 * Followed only where a producer leaves one, and only with the head at or
			 * past the next lap (a marker goes with the record after it): never past
			 * the head, where a consumer's tail would then stand.
			 */
			if (!marker_fits(off, room) || span < room) {
				if (invalid)
					(*invalid)++;
				break;
			}
			pos += room;
			continue;
		}
		len = ckpt_rec_decode(ring + off, span, &rec);
		if (len < 0 || (uint64_t)len > span) { /* its padding past the head: no record */
			if (invalid)
				(*invalid)++;
			break;
		}
		pos += (uint64_t)len;
		n++;
		if (fn && fn(&rec, pos - (uint64_t)len, arg) != 0)
			break;
	}
	if (stop)
		*stop = pos;
	return n;
}

struct apply_ctx {
	struct pmu_store *s;
	const struct pmu_region_info *r;
	uint8_t *base;
	const uint8_t *ring;
	uint64_t lo, hi; /* slot bytes written, to persist once */
	int applied;
};

static uint64_t slot_generation(const struct apply_ctx *a, uint64_t slot)
{
	struct ckpt_rec rec;
	const uint8_t *p = a->base + PMU_REGION_HDR + slot * a->r->slot_size;

	if (ckpt_rec_decode(p, a->r->slot_size, &rec) < 0 || rec.slot_pair != slot / 2)
		return 0;
	return rec.generation;
}

static int apply_one(const struct ckpt_rec *rec, uint64_t pos, void *arg)
{
	struct apply_ctx *a = arg;
	uint64_t pair = rec->slot_pair;
	size_t len = ckpt_rec_size(rec->payload_len);
	uint64_t slot, g0, g1;
	uint8_t *dst;

	if (pair >= a->r->nslots / 2 || len > a->r->slot_size) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, "pmu",
				 "region %s: journal record for pair %llu does not fit, skipped",
				 a->r->name, (unsigned long long)pair);
		return 0;
	}
	g0 = slot_generation(a, 2 * pair);
	g1 = slot_generation(a, 2 * pair + 1);
	if (rec->generation <= g0 || rec->generation <= g1)
		return 0; /* the slots already hold this or newer: applying twice is harmless */
	slot = 2 * pair + (rec->generation & 1);
	dst = a->base + PMU_REGION_HDR + slot * a->r->slot_size;
	memcpy(dst, a->ring + pos % a->r->ring_size, len);
	if ((uint64_t)(dst - a->base) < a->lo)
		a->lo = (uint64_t)(dst - a->base);
	if ((uint64_t)(dst - a->base) + len > a->hi)
		a->hi = (uint64_t)(dst - a->base) + len;
	a->applied++;
	return 0;
}

int pmu_journal_apply(struct pmu_store *s, const struct pmu_region_info *r)
{
	uint8_t *base = pmu_region_base(s, r);
	uint64_t *headp = (uint64_t *)(base + PMU_REGION_HEAD_OFF);
	uint64_t *tailp = (uint64_t *)(base + PMU_REGION_TAIL_OFF);
	uint64_t head, tail, stop, invalid = 0;
	struct apply_ctx a = {
		.s = s,
		.r = r,
		.base = base,
		.lo = UINT64_MAX,
		.hi = 0,
	};
	int n;

	if (r->mode != PMU_MODE_OVERWRITE || r->ring_size == 0)
		return -EINVAL;
	a.ring = base + r->ring_off;
	head = __atomic_load_n(headp, __ATOMIC_ACQUIRE);
	tail = __atomic_load_n(tailp, __ATOMIC_ACQUIRE);
	if (head == tail)
		return 0;
	/*
	 * The tenant writes the ring and its words remotely: what it gets wrong is said, but
	 * through a limit, since ckptsrv applies journals every few milliseconds.
	 */
	n = pmu_ring_walk(a.ring, r->ring_size, tail, head, apply_one, &a, &invalid, &stop);
	if (n < 0) {
		CKPT_LOG_LIMITED(CKPT_LOG_ERR, "pmu",
				 "region %s: journal head %llu / tail %llu out of range", r->name,
				 (unsigned long long)head, (unsigned long long)tail);
		return n;
	}
	if (invalid)
		CKPT_LOG_LIMITED(
			CKPT_LOG_WARNING, "pmu",
			"region %s: journal record at %llu does not decode, applied up to it",
			r->name, (unsigned long long)stop);
	/* Slots first, then the tail that says they no longer need the journal. */
	if (a.hi > a.lo)
		pmu_persist(s, base + a.lo, a.hi - a.lo);
	if (stop != tail) {
		__atomic_store_n(tailp, stop, __ATOMIC_RELEASE);
		pmu_persist(s, tailp, sizeof(*tailp));
	}
	return a.applied;
}
