/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data path of an ofi+* client: writes into registered regions, the barriers that make
 * them durable, and bulk reads, all one-sided on the endpoint of ofi_fabric.c.
 *
 * A write is copied into registered staging slots before ckpt_ofi_write() returns (the
 * caller's buffer is free at once), and writes arriving back to back at contiguous offsets
 * are gathered in one slot and go out as one fi_write (STAGE_SLOT, ofi_internal.h).
 *
 * Durability never rests on a local completion. A barrier posts an 8-byte read after the
 * writes it covers (FI_ORDER_RAW: the target executes it only after those writes landed),
 * and once the read is back asks the server to persist the range written since the last
 * barrier (a ring flush's PERSIST also carries the new head, which the server stores after
 * the range: one round trip); the server's answer is what makes the barrier's sequence
 * durable. Where the provider offers FI_RMA_PMEM and the store is real pmem, writes are
 * posted with FI_COMMIT_COMPLETE instead and a barrier only waits for their completions.
 * A region's barriers complete in order.
 *
 * Every wait is bounded by opts.timeout_ms: a frozen server hangs every provider.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/uio.h>

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "ofi_internal.h"

/* ---- write staging ---- */

/*
 * Post one RMA, progressing the CQ while the provider's queue is full (shm's queue fills
 * whenever the server's progress thread naps). Bounded by the timeout like every wait.
 */
static int post_rma(struct ckpt_client *c, bool write, void *buf, size_t len, void *desc,
		    uint64_t raddr, uint64_t key, struct ofi_op *op, bool commit)
{
	struct ofi_client *o = oc(c);
	uint64_t deadline = 0;
	ssize_t ret;

	for (;;) {
		if (write && commit) {
			struct iovec iov = {.iov_base = buf, .iov_len = len};
			struct fi_rma_iov rma = {.addr = raddr, .len = len, .key = key};
			struct fi_msg_rma msg = {
				.msg_iov = &iov,
				.desc = &desc,
				.iov_count = 1,
				.addr = o->srv,
				.rma_iov = &rma,
				.rma_iov_count = 1,
				.context = op,
			};

			ret = fi_writemsg(o->ep, &msg, FI_COMPLETION | FI_COMMIT_COMPLETE);
		} else if (write) {
			ret = fi_write(o->ep, buf, len, desc, o->srv, raddr, key, op);
		} else {
			ret = fi_read(o->ep, buf, len, desc, o->srv, raddr, key, op);
		}
		if (ret == 0)
			return 0;
		if (ret != -FI_EAGAIN)
			return ckpt_ofi_data_error(c, ckpt_ofi_errno((int)ret));
		if (ckpt_ofi_cq_progress(o) == 0)
			sched_yield();
		if (o->dead)
			return o->dead;
		if (deadline == 0)
			deadline = now_ms() + c->opts.timeout_ms;
		else if (now_ms() > deadline)
			break;
	}
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: provider queue stayed full for %u ms", c->target,
		 c->opts.timeout_ms);
	o->dead = -ETIMEDOUT;
	return -ETIMEDOUT;
}

static void note_range(struct ofi_region *rr, uint64_t off, size_t len)
{
	if (rr->lo > rr->hi) {
		rr->lo = off;
		rr->hi = off + len;
	} else {
		rr->lo = rr->lo < off ? rr->lo : off;
		rr->hi = rr->hi > off + len ? rr->hi : off + len;
	}
}

int ckpt_ofi_post_run(struct ckpt_region *r)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	struct ofi_op *op = rr->run;
	int ret;

	if (op == NULL)
		return 0;
	rr->run = NULL;
	op->kind = OP_WRITE;
	op->wseq = ++rr->wr_next;
	op->t_post = now_ms();
	o->inflight++;
	ret = post_rma(c, true, o->stage + (size_t)op->slot * STAGE_SLOT, rr->run_len,
		       o->stage_desc, rr->base + rr->run_off, rr->rkey, op, rr->commit);
	if (ret < 0) {
		/* Accepted writes cannot be taken back: the client is failed (post_rma says). */
		o->inflight--;
		o->free_slots[o->nfree++] = op->slot;
		op_put(o, op);
		if (o->dead == 0)
			o->dead = ret;
	}
	return ret;
}

int ckpt_ofi_write(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	uint32_t need = (uint32_t)((len + STAGE_SLOT - 1) / STAGE_SLOT);
	const uint8_t *src = buf;
	uint64_t at = off;
	int ret = ckpt_ofi_fabric_need(c);

	if (ret)
		return ret;
	if (len == 0 || off > r->geo.size || len > r->geo.size - off || need > o->nslots) {
		ckpt_log(CKPT_LOG_ERR, LOG, "region %s: write [%llu, +%zu) out of range",
			 r->geo.name, (unsigned long long)off, len);
		return -EINVAL;
	}
	if (rr->run != NULL && off == rr->run_off + rr->run_len &&
	    rr->run_len + len <= STAGE_SLOT) {
		memcpy(o->stage + (size_t)rr->run->slot * STAGE_SLOT + rr->run_len, buf, len);
		rr->run_len += len;
		note_range(rr, off, len);
		return 0;
	}
	if (o->nfree < need)
		ckpt_ofi_cq_progress(o);
	if (o->nfree < need)
		return -EAGAIN;
	ret = ckpt_ofi_post_run(r);
	if (ret < 0)
		return ret;
	if (len <= STAGE_SLOT) {
		struct ofi_op *op = op_get(o, OP_STAGED, r);

		if (op == NULL)
			return -EAGAIN;
		op->slot = o->free_slots[--o->nfree];
		memcpy(o->stage + (size_t)op->slot * STAGE_SLOT, buf, len);
		rr->run = op;
		rr->run_off = off;
		rr->run_len = len;
		note_range(rr, off, len);
		return 0;
	}
	while (at < off + len) {
		size_t n = off + len - at < STAGE_SLOT ? off + len - at : STAGE_SLOT;
		struct ofi_op *op = op_get(o, OP_WRITE, r);
		uint8_t *stage;

		if (op == NULL)
			return -EAGAIN;
		op->slot = o->free_slots[--o->nfree];
		op->wseq = ++rr->wr_next;
		stage = o->stage + (size_t)op->slot * STAGE_SLOT;
		memcpy(stage, src, n);
		o->inflight++;
		ret = post_rma(c, true, stage, n, o->stage_desc, rr->base + at, rr->rkey, op,
			       rr->commit);
		if (ret < 0) {
			o->inflight--;
			o->free_slots[o->nfree++] = op->slot;
			op_put(o, op);
			/* A multi-slot write cut in half cannot be taken back: fail the client. */
			if (at != off && o->dead == 0)
				o->dead = -EIO;
			return ret;
		}
		src += n;
		at += n;
	}
	note_range(rr, off, len);
	return 0;
}

/* ---- barriers ---- */

static struct barrier *barrier_get(struct ofi_client *o)
{
	for (uint32_t i = 0; i < BARRIERS_MAX; i++)
		if (o->barriers[i].state == B_FREE)
			return &o->barriers[i];
	return NULL;
}

static void barrier_queue(struct ofi_region *rr, struct barrier *b)
{
	b->next = NULL;
	if (rr->bq_tail != NULL)
		rr->bq_tail->next = b;
	else
		rr->bq_head = b;
	rr->bq_tail = b;
}

static int barrier_start(struct ckpt_region *r, uint64_t seq, uint64_t head)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	struct barrier *b;
	struct ofi_op *op;
	uint64_t at;
	int ret;

	if (o->dead)
		return o->dead;
	ret = ckpt_ofi_post_run(r);
	if (ret < 0)
		return ret;
	if (head != 0 && (rr->commit || rr->lo > rr->hi))
		return -ENOTSUP; /* no PERSIST to carry it */
	if (rr->lo > rr->hi && rr->bq_head == NULL) {
		/* Nothing written since the last barrier, and that one is done. */
		r->durable = seq;
		return 0;
	}
	b = barrier_get(o);
	if (b == NULL)
		return -EAGAIN;
	b->seq = seq;
	b->head = head;
	b->r = r;
	b->t_start = now_ms();
	b->lo = rr->lo;
	b->hi = rr->hi;
	if (rr->lo > rr->hi) {
		b->state = B_DONE;
	} else if (rr->commit) {
		b->state = B_COMMIT;
		b->wseq = rr->wr_next;
	} else {
		op = op_get(o, OP_FENCE_READ, r);
		if (op == NULL)
			return -EAGAIN;
		op->b = b;
		/* Any 8 bytes of the region will do; the ordering is what matters. */
		at = b->lo & ~7ull;
		if (at + 8 > r->geo.size)
			at = r->geo.size - 8;
		b->state = B_READING;
		ret = post_rma(c, false, &o->scratch[b->idx], 8, o->scratch_desc, rr->base + at,
			       rr->rkey, op, false);
		if (ret < 0) {
			b->state = B_FREE;
			op_put(o, op);
			return ret;
		}
	}
	rr->lo = UINT64_MAX;
	rr->hi = 0;
	barrier_queue(rr, b);
	return 0;
}

int ckpt_ofi_barrier(struct ckpt_region *r, uint64_t seq)
{
	return barrier_start(r, seq, 0);
}

/* One round trip for a ring flush: the server stores the head once the records are durable. */
int ckpt_ofi_barrier_head(struct ckpt_region *r, uint64_t seq, uint64_t head)
{
	return head == 0 ? -ENOTSUP : barrier_start(r, seq, head);
}

static bool commit_reached(struct ofi_client *o, const struct ckpt_region *r, uint64_t wseq)
{
	for (uint32_t i = 0; i < o->nops; i++)
		if (o->ops[i].kind == OP_WRITE && o->ops[i].r == r && o->ops[i].wseq <= wseq)
			return false;
	return true;
}

int ckpt_ofi_barriers_advance(struct ckpt_region *r)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	int ret;

	for (struct barrier *b = rr->bq_head; b != NULL; b = b->next) {
		if (b->state == B_COMMIT && commit_reached(o, r, b->wseq))
			b->state = B_DONE;
		if (b->state == B_READ_DONE) {
			struct ckpt_msg req = {.type = CKPT_MSG_PERSIST};

			req.u.persist.handle = rr->handle;
			req.u.persist.off = b->lo;
			req.u.persist.len = b->hi - b->lo;
			req.u.persist.head = b->head;
			ret = ckpt_ofi_ctrl_send(c, &req);
			if (ret < 0)
				return ret;
			b->req_seq = req.seq;
			b->state = B_PERSIST_SENT;
			o->persist_owed++;
		}
		if (b->state == B_READING)
			break;
	}
	while (rr->bq_head != NULL && rr->bq_head->state == B_DONE) {
		struct barrier *b = rr->bq_head;

		r->durable = b->seq;
		rr->bq_head = b->next;
		if (rr->bq_head == NULL)
			rr->bq_tail = NULL;
		b->state = B_FREE;
		b->r = NULL;
	}
	return 0;
}

/* ---- what is still under way ---- */

bool ckpt_ofi_region_busy(struct ofi_client *o, const struct ckpt_region *r)
{
	if (orr(r)->bq_head != NULL)
		return true;
	for (uint32_t i = 0; i < o->nops; i++)
		if (o->ops[i].kind != OP_FREE && o->ops[i].r == r)
			return true;
	return false;
}

void ckpt_ofi_region_abandon(struct ofi_client *o, struct ckpt_region *r)
{
	struct barrier *b, *next;

	for (b = orr(r)->bq_head; b != NULL; b = next) {
		next = b->next;
		b->r = NULL;
		if (b->state != B_READING && b->state != B_PERSIST_SENT)
			b->state = B_FREE;
	}
	for (uint32_t i = 0; i < o->nops; i++)
		if (o->ops[i].kind != OP_FREE && o->ops[i].r == r)
			o->ops[i].r = NULL;
}

/*
 * An operation older than the timeout means the server is frozen or unreachable. Its
 * staging slot and completion are still owed to us, so the client cannot go on: the
 * timeout is sticky, and close/disconnect stop waiting for that server.
 */
int ckpt_ofi_check_timeouts(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);
	uint64_t now = now_ms(), limit = c->opts.timeout_ms;

	for (uint32_t i = 0; i < o->nops; i++) {
		if (o->ops[i].kind == OP_FREE || o->ops[i].kind == OP_STAGED ||
		    o->ops[i].r == NULL || now - o->ops[i].t_post <= limit)
			continue;
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: a remote %s to region %s waited over %u ms",
			 c->target, o->ops[i].kind == OP_WRITE ? "write" : "read",
			 o->ops[i].r->geo.name, c->opts.timeout_ms);
		o->dead = -ETIMEDOUT;
		return -ETIMEDOUT;
	}
	for (uint32_t i = 0; i < BARRIERS_MAX; i++) {
		const struct barrier *b = &o->barriers[i];

		if (b->state == B_FREE || b->r == NULL || now - b->t_start <= limit)
			continue;
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: region %s: durability not confirmed within %u ms",
			 c->target, b->r->geo.name, c->opts.timeout_ms);
		o->dead = -ETIMEDOUT;
		return -ETIMEDOUT;
	}
	return 0;
}

/* ---- bulk reads ---- */

/*
 * A bulk read goes out as pieces of the bounce buffer, READ_DEPTH of them in flight: the
 * server sends the next piece while this side copies the last one out (one read at a time,
 * the link stood idle for a round trip and a copy per MiB: a 1 M restore over tcp read for
 * ~0.5 s).
 */
#define READ_DEPTH 4

/* Wait for @p op until @p deadline: 0 when it completed, else the client's sticky error. */
static int read_wait(struct ckpt_client *c, struct ofi_op *op, uint64_t deadline)
{
	struct ofi_client *o = oc(c);

	while (!op->done && o->dead == 0 && now_ms() < deadline) {
		if (ckpt_ofi_cq_progress(o) == 0)
			sched_yield();
	}
	if (op->done)
		return 0;
	if (o->dead == 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: read of region %s timed out after %u ms",
			 c->target, op->r->geo.name, c->opts.timeout_ms);
		o->dead = -ETIMEDOUT;
	}
	return o->dead;
}

int ckpt_ofi_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	struct {
		struct ofi_op *op;
		size_t len;
	} q[READ_DEPTH];
	unsigned int head = 0, n = 0; /* q[head] is the oldest of n in flight */
	uint8_t *dst = buf;
	size_t piece, posted = 0;
	int ret = ckpt_ofi_fabric_need(c);

	if (ret)
		return ret;
	piece = o->bounce_len / READ_DEPTH; /* known once the endpoint is open */
	if (off > r->geo.size || len > r->geo.size - off)
		return -EINVAL;
	while (len > 0 || n > 0) {
		/* Fill the window; a piece's bounce slot is its place in the ring. */
		while (n < READ_DEPTH && posted < len && ret == 0) {
			const unsigned int slot = (head + n) % READ_DEPTH;
			size_t k = len - posted < piece ? len - posted : piece;
			uint64_t now = now_ms();
			struct ofi_op *op;

			/* A long read (a restore) sends nothing else: the session must not look
			 * idle. */
			if (now - o->sent_ms >= KEEPALIVE_MS) {
				ckpt_ofi_keepalive(c, now);
				if (o->dead) {
					ret = o->dead;
					break;
				}
			}
			op = op_get(o, OP_READ, r);
			if (op == NULL) {
				ckpt_ofi_cq_progress(o);
				op = op_get(o, OP_READ, r);
			}
			if (op == NULL) {
				/* None free: the window is what is out already. */
				if (n == 0)
					ret = -EAGAIN;
				break;
			}
			ret = post_rma(c, false, o->bounce + (size_t)slot * piece, k,
				       o->bounce_desc, rr->base + off + posted, rr->rkey, op,
				       false);
			if (ret < 0) {
				op_put(o, op);
				break;
			}
			q[slot].op = op;
			q[slot].len = k;
			posted += k;
			n++;
		}
		if (n == 0)
			break;
		/* The oldest piece: wait, copy it out, free its slot. */
		struct ofi_op *op = q[head].op;
		int err = read_wait(c, op, now_ms() + c->opts.timeout_ms);

		if (err) {
			/*
			 * The reads still out may complete into the bounce buffer: abandoned
			 * (r = NULL frees them then); the client is no longer trusted.
			 */
			for (unsigned int i = 0; i < n; i++)
				q[(head + i) % READ_DEPTH].op->r = NULL;
			return err;
		}
		if (op->err < 0 && ret == 0)
			ret = op->err;
		if (ret == 0)
			memcpy(dst, o->bounce + (size_t)head * piece, q[head].len);
		dst += q[head].len;
		off += q[head].len;
		posted -= q[head].len;
		len -= q[head].len;
		op_put(o, op);
		head = (head + 1) % READ_DEPTH;
		n--;
		/* After an error nothing more is posted; what is out is waited for. */
		if (ret)
			len = posted;
	}
	return ret;
}
