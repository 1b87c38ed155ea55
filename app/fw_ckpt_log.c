/* SPDX-License-Identifier: BSD-3-Clause */
#include "fw_ckpt_log.h"

#define RETRY_NS (100ull * 1000000) /* a full log is looked at again this often */

void fw_ckpt_gap_marker(uint64_t seq, struct ckpt_rec *out)
{
	/* A core tombstone of no pair: what the log's reader can tell from every other record. */
	fw_ckpt_pair_tombstone(CKPT_REC_NO_SLOT, seq, out);
}

void fw_ckpt_log_open(struct fw_ckpt_log *l, struct ckpt_region *r)
{
	l->r = r;
	l->gap = false;
}

void fw_ckpt_log_put(struct fw_ckpt_log *l, const struct ckpt_region *state,
		     const struct ckpt_rec *rec)
{
	if (l->r == NULL)
		return;
	if (!l->gap) {
		if (ckpt_log_append(l->r, rec, NULL) == 0) {
			l->records++;
			return;
		}
		l->gap = true;
		l->gaps++;
		l->retry_ns = 0;
	}
	l->ticket = ckpt_posted(state);
}

void fw_ckpt_log_mend(struct fw_ckpt_log *l, const struct ckpt_region *state, uint64_t now)
{
	struct ckpt_rec marker;

	if (!l->gap || now < l->retry_ns || ckpt_durable(state) < l->ticket)
		return;
	fw_ckpt_gap_marker(++l->seq, &marker);
	if (ckpt_log_append(l->r, &marker, NULL) == 0)
		l->gap = false;
	else
		l->retry_ns = now + RETRY_NS;
}
