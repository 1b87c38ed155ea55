/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "fw_checkpoint.h"

RTE_LOG_REGISTER_SUFFIX(fw_logtype_ckpt, ckpt, INFO)
#define LOG(level, ...) rte_log(RTE_LOG_##level, fw_logtype_ckpt, "holdfast.ckpt: " __VA_ARGS__)

int fw_checkpointer_init(struct fw_checkpointer *k, const char *target, uint64_t store_size,
			 const char *region, uint64_t pairs, uint32_t slot_size, uint32_t first,
			 uint32_t count, uint32_t queue_cap)
{
	struct ckpt_client_opts o = {
		.tenant = "holdfast",
		.create_store = true,
		.store_size = store_size,
	};
	struct pmu_region_params p = {
		.name = region,
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + pairs * 2 * slot_size + (4u << 20),
		.slot_size = slot_size,
		.ring_size = 4u << 20,
	};
	int rc;

	memset(k, 0, sizeof(*k));
	k->cl = ckpt_connect(target, &o);
	if (k->cl == NULL) {
		rc = -errno;
		LOG(ERR, "%s: %s\n", target, strerror(errno));
		return rc;
	}
	{
		struct ckpt_region_info info;

		/* First start: no region yet (asked quietly: a missing region is no error). */
		rc = ckpt_region_stat(k->cl, region, &info);
		rc = rc == -ENOENT ? ckpt_region_create(k->cl, &p, &k->r)
				   : ckpt_region_open(k->cl, region, &k->r);
	}
	if (rc == -EEXIST) /* another worker created it meanwhile */
		rc = ckpt_region_open(k->cl, region, &k->r);
	if (rc == 0 && (uint64_t)first + count > ckpt_slot_pairs(k->r)) {
		LOG(ERR, "%s: region %s has %u slot pairs, this worker needs up to %u\n", target,
		    region, ckpt_slot_pairs(k->r), first + count);
		rc = -ENOSPC;
	}
	if (rc)
		goto err;
	k->slots = fw_slots_create(first, count);
	k->queue = calloc(queue_cap, sizeof(*k->queue));
	if (k->slots == NULL || k->queue == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	k->qcap = queue_cap;
	return 0;
err:
	fw_checkpointer_release(k);
	return rc;
}

void fw_checkpointer_release(struct fw_checkpointer *k)
{
	if (k->r)
		ckpt_region_close(&k->r);
	ckpt_disconnect(&k->cl);
	fw_slots_free(&k->slots);
	free(k->queue);
	k->queue = NULL;
}

/* Write one dirty slice. @return 0, -EAGAIN (target queue full: try next tick) or -errno. */
static int write_slice(struct fw_checkpointer *k, struct fw_conn *c, enum fw_module_id m)
{
	uint8_t payload[CKPT_REC_MAX_PAYLOAD];
	struct ckpt_rec rec;
	uint64_t ticket, gen = c->gen[m];
	uint32_t pair = c->slot_pair[m];
	int rc;

	if (pair == UINT32_MAX) {
		pair = fw_slots_get(k->slots, &gen);
		if (pair == UINT32_MAX)
			return -ENOSPC;
	}
	c->slot_pair[m] = pair;
	c->gen[m] = gen + 1;
	rc = fw_ckpt_slice(c, m, payload, sizeof(payload), &rec);
	if (rc == 0)
		rc = ckpt_slot_write(k->r, &rec, true, &ticket);
	if (rc) {
		c->gen[m] = gen; /* not written: the next try reuses the generation */
		return rc;
	}
	k->cnt.slices[m]++;
	k->cnt.bytes += ckpt_rec_size(rec.payload_len);
	return 0;
}

void fw_checkpointer_tick(struct fw_checkpointer *k)
{
	while (k->qhead != k->qtail) {
		struct fw_conn *c = k->queue[k->qhead % k->qcap];
		int rc = 0;

		/* An entry whose connection went away (or was re-queued) is a hint: skip it. */
		if (c->key.family != 0 && (c->flags & FW_CONN_F_QUEUED)) {
			for (int m = 1; m < FW_MOD_MAX && rc == 0; m++) {
				if (!(c->dirty & (1u << m)) || !(c->present & (1u << m)))
					continue;
				rc = write_slice(k, c, (enum fw_module_id)m);
				if (rc == 0)
					c->dirty &= (uint8_t) ~(1u << m);
			}
			if (rc == -EAGAIN) {
				k->cnt.deferred++;
				break;
			}
			if (rc)
				k->cnt.failures++;
			c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
		}
		k->qhead++;
	}
	if (ckpt_posted(k->r) != ckpt_durable(k->r) && ckpt_flush(k->r) < 0)
		k->cnt.failures++;
	if (ckpt_poll(k->cl) < 0)
		k->cnt.failures++;
}

void fw_checkpointer_forget(struct fw_checkpointer *k, struct fw_conn *c)
{
	for (int m = 1; m < FW_MOD_MAX; m++) {
		struct ckpt_rec rec;
		uint64_t ticket;

		if (c->slot_pair[m] == UINT32_MAX)
			continue;
		c->gen[m]++;
		fw_ckpt_tombstone(c, (enum fw_module_id)m, &rec);
		if (ckpt_slot_write(k->r, &rec, true, &ticket) == 0)
			k->cnt.tombstones++;
		else
			k->cnt.failures++; /* the slice may come back at a restore, and expire */
		fw_slots_put(k->slots, c->slot_pair[m], c->gen[m]);
		c->slot_pair[m] = UINT32_MAX;
	}
	c->flags &= (uint8_t)~FW_CONN_F_QUEUED;
}

uint64_t fw_checkpointer_lag(const struct fw_checkpointer *k)
{
	return (k->qtail - k->qhead) + (ckpt_posted(k->r) - ckpt_durable(k->r));
}
