/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What finishes an operation of an ofi+* client. The CQ reports posted writes (their
 * staging slot is free again), fence reads (their barrier's writes are at the target) and
 * bulk reads (their waiter in ckpt_ofi_read() wakes); the control socket hands over PERSIST
 * answers (their barrier is durable). A write or a fence read that failed, or a PERSIST the
 * server refused, fails the client: what it covered can never be made durable (with ESTALE
 * when the server says this client was fenced).
 */
#include <errno.h>
#include <string.h>

#include <rdma/fi_domain.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include "ofi_internal.h"

#define CQ_BATCH 32

static void op_complete(struct ofi_client *o, struct ofi_op *op, int err)
{
	switch (op->kind) {
	case OP_WRITE:
		o->free_slots[o->nfree++] = op->slot;
		o->inflight--;
		if (err != 0 && o->dead == 0) {
			/* A write that did not land can never be made durable. */
			o->dead = err == -ECONNRESET ? err : -EIO;
		}
		op_put(o, op);
		break;
	case OP_FENCE_READ:
		if (err != 0) {
			if (o->dead == 0)
				o->dead = err == -ECONNRESET ? err : -EIO;
		} else if (op->b->state == B_READING) {
			op->b->state = B_READ_DONE;
		}
		if (op->b->r == NULL)
			op->b->state = B_FREE; /* its region closed meanwhile */
		op_put(o, op);
		break;
	case OP_READ:
		/* ckpt_ofi_read owns it; an abandoned one (timed out) has r == NULL. */
		op->done = true;
		op->err = err;
		if (op->r == NULL)
			op_put(o, op);
		break;
	case OP_FREE:
	case OP_STAGED:
		break;
	}
}

int ckpt_ofi_cq_progress(struct ofi_client *o)
{
	int seen = 0;

	if (o->cq == NULL)
		return 0; /* no endpoint yet: nothing posted */
	for (;;) {
		struct fi_cq_entry e[CQ_BATCH];
		ssize_t n = fi_cq_read(o->cq, e, CQ_BATCH);

		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				op_complete(o, e[i].op_context, 0);
			seen += (int)n;
			continue;
		}
		if (n == -FI_EAGAIN)
			return seen;
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry err = {0};
			char pbuf[128];
			int en;

			if (fi_cq_readerr(o->cq, &err, 0) != 1)
				continue;
			en = ckpt_ofi_errno(err.err);
			/*
			 * rxm cancels what was queued on a connection that died and puts the
			 * socket's errno in prov_errno; that is the server going away, not a
			 * refused operation (a wrong key comes back as ECANCELED/ENOENT).
			 */
			if (en == -ECANCELED &&
			    (err.prov_errno == ENOTCONN || err.prov_errno == ECONNRESET ||
			     err.prov_errno == EPIPE || err.prov_errno == ECONNREFUSED))
				en = -ECONNRESET;
			/* One line per failure, not one per queued operation. */
			ckpt_log(o->dead == 0 ? CKPT_LOG_ERR : CKPT_LOG_DEBUG, LOG,
				 "%s: %s failed: %s (provider: %s)", o->prov,
				 err.op_context &&
						 ((struct ofi_op *)err.op_context)->kind == OP_WRITE
					 ? "remote write"
					 : "remote read",
				 ckpt_ofi_strerror(err.err),
				 fi_cq_strerror(o->cq, err.prov_errno, err.err_data, pbuf,
						sizeof(pbuf)));
			if (err.op_context != NULL)
				op_complete(o, err.op_context, en);
			seen++;
			continue;
		}
		if (o->dead == 0)
			o->dead = ckpt_ofi_errno((int)n);
		return seen;
	}
}

int ckpt_ofi_persist_answered(struct ofi_client *o, const struct ckpt_msg *m)
{
	for (uint32_t i = 0; i < BARRIERS_MAX; i++) {
		struct barrier *b = &o->barriers[i];

		if (b->state != B_PERSIST_SENT || b->req_seq != m->seq)
			continue;
		if (m->status != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: server refused PERSIST [%llu, %llu): %s",
				 o->prov, (unsigned long long)b->lo, (unsigned long long)b->hi,
				 strerror(-m->status));
			/* Fenced (a newer epoch was taken) is final and says so; else the
			 * writes can never be made durable on this connection. */
			if (o->dead == 0)
				o->dead = m->status == -ESTALE ? -ESTALE : -EIO;
		}
		b->state = b->r == NULL ? B_FREE : B_DONE;
		o->persist_owed--;
		return 0;
	}
	return -EPROTO;
}
