/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ofi+tcp, ofi+shm and ofi+verbs backends: a control socket to ckptsrv (proto.h) and a
 * libfabric RDM endpoint that writes and reads registered regions one-sided.
 *
 * This file is what the core calls (the ops tables at its end): connect (the control
 * socket, the handshake, then the fabric), disconnect, the region calls, and the poll that
 * moves everything on. ofi_internal.h maps the files it stands on; ofi_data.c says how a
 * barrier makes writes durable.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ofi_internal.h"
#include "ofi_test.h"

/* ---- connect ---- */

static int ofi_connect_as(struct ckpt_client *c, const char *where, const char *prov, bool shm)
{
	struct ofi_client *o;
	uint8_t ep[CKPT_PROTO_EP_MAX];
	char host[256] = "", port[16];
	size_t ep_len = 0;
	int ret;

	if (shm && !c->opts.allow_shm) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: refused: the shm provider does not check remote keys; set "
			 "allow_shm for trusted same-host use",
			 c->target);
		return -EPROTONOSUPPORT;
	}
	if (c->opts.secret_len == 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: a remote target needs a secret", c->target);
		return -EINVAL;
	}
	if (sodium_init() < 0)
		return -EIO;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->rx = malloc(CKPT_PROTO_FRAME_MAX);
	if (o->rx == NULL) {
		free(o);
		return -ENOMEM;
	}
	o->prov = prov;
	o->fd = -1;
	c->be = o;
	ret = ckpt_ofi_ctrl_connect(c, where, shm);
	if (ret < 0)
		goto err_free;
	ret = ckpt_ofi_authenticate(c, ep, &ep_len);
	if (ret < 0)
		goto err_close_fd;
	if (!shm)
		ckpt_proto_split_hostport(where, host, sizeof(host), port, sizeof(port));
	ret = ckpt_ofi_provider_find(c, shm ? NULL : host);
	if (ret < 0)
		goto err_close_fabric;
	memcpy(o->srv_ep, ep, ep_len);
	o->srv_ep_len = ep_len;
	o->sent_ms = now_ms();
	ckpt_log(CKPT_LOG_INFO, LOG, "%s: connected as tenant %s (provider %s)", c->target,
		 c->opts.tenant, o->prov);
	return 0;

err_close_fabric:
	ckpt_ofi_fabric_close(o);
err_close_fd:
	close(o->fd);
err_free:
	free(o->rx);
	free(o);
	c->be = NULL;
	return ret;
}

static int tcp_connect(struct ckpt_client *c, const char *where)
{
	return ofi_connect_as(c, where, "tcp;ofi_rxm", false);
}

static int shm_connect(struct ckpt_client *c, const char *where)
{
	return ofi_connect_as(c, where, "shm", true);
}

static int verbs_connect(struct ckpt_client *c, const char *where)
{
	return ofi_connect_as(c, where, "verbs;ofi_rxm", false);
}

static void ofi_disconnect(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);

	if (o == NULL)
		return;
	ckpt_ofi_fabric_close(o);
	close(o->fd);
	free(o->rx);
	free(o);
	c->be = NULL;
}

/* ---- poll ---- */

/*
 * Drain the CQ; read the control socket while a PERSIST answer is owed, and otherwise once
 * a millisecond (when a keepalive may go too, and timeouts are checked); then move every
 * region's barriers on.
 */
static int ofi_poll(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);
	uint64_t now;
	bool idle_check;
	int seen, ret;

	seen = ckpt_ofi_cq_progress(o);
	if (o->dead != 0)
		return ckpt_ofi_data_error(c, o->dead);
	now = now_ms();
	idle_check = now != o->idle_check_ms;
	if (idle_check)
		o->idle_check_ms = now;
	if (o->persist_owed != 0 || idle_check)
		ckpt_ofi_ctrl_pump(c, 0);
	if (o->dead == 0 && idle_check && now - o->sent_ms >= KEEPALIVE_MS)
		ckpt_ofi_keepalive(c, now);
	if (o->dead)
		return o->dead;
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next) {
		uint64_t before = r->durable;

		if (r->be == NULL)
			continue;
		ret = ckpt_ofi_barriers_advance(r);
		if (ret < 0)
			return o->dead ? o->dead : ret;
		if (r->durable != before)
			seen++;
	}
	ret = idle_check ? ckpt_ofi_check_timeouts(c) : 0;
	return ret < 0 ? ret : seen;
}

/* ---- regions ---- */

/*
 * The reply must describe the region asked for: a server that answers with another one
 * (a bug, or a peer that is not what it claims) is not written through.
 */
static int attach(struct ckpt_client *c, struct ckpt_region *r, const struct ckpt_msg *rep,
		  const char *name, const struct pmu_region_info *want)
{
	const struct pmu_region_info *got = &rep->u.opened.info;
	struct ofi_region *rr;

	if (strcmp(got->name, name) != 0 || strcmp(got->owner, c->opts.tenant) != 0 ||
	    (want != NULL &&
	     (got->mode != want->mode || got->size != want->size ||
	      got->slot_size != want->slot_size || got->ring_size != want->ring_size))) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: asked for region %s of tenant %s, the server answered with region "
			 "%s of tenant %s (%llu bytes)",
			 c->target, name, c->opts.tenant, got->name, got->owner,
			 (unsigned long long)got->size);
		oc(c)->dead = -EIO;
		return -EIO;
	}
	rr = calloc(1, sizeof(*rr));
	if (rr == NULL)
		return -ENOMEM;
	rr->handle = rep->u.opened.handle;
	rr->rkey = rep->u.opened.rkey;
	rr->base = rep->u.opened.base;
	rr->lo = UINT64_MAX;
	rr->commit = oc(c)->rma_pmem && rep->u.opened.is_pmem;
	r->geo = rep->u.opened.info;
	r->is_pmem = rep->u.opened.is_pmem != 0;
	r->be = rr;
	return 0;
}

static void release_handle(struct ckpt_client *c, uint64_t handle)
{
	struct ckpt_msg req = {.type = CKPT_MSG_CLOSE}, rep = {0};

	req.u.close.handle = handle;
	ckpt_ofi_call(c, &req, &rep);
}

static int ofi_create(struct ckpt_client *c, const struct pmu_region_params *p,
		      struct ckpt_region *r)
{
	struct ckpt_msg req = {.type = CKPT_MSG_CREATE}, rep = {0};
	struct pmu_region_params own = *p;
	struct pmu_region_info want;
	int ret;

	if (p->owner != NULL && strcmp(p->owner, c->opts.tenant) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: tenant %s cannot create a region owned by %s",
			 c->target, c->opts.tenant, p->owner);
		return -EACCES;
	}
	own.owner = c->opts.tenant;
	if (p->name == NULL || pmu_region_layout(&own, &want) != 0)
		return -EINVAL;
	strcpy(req.u.create.name, p->name);
	req.u.create.mode = (uint32_t)p->mode;
	req.u.create.slot_size = p->slot_size;
	req.u.create.size = p->size;
	req.u.create.ring_size = p->ring_size;
	/* The server zeroes and persists the whole region before it answers: 230 MB took over
	 * a second on a loaded 2-core host. A second more per 128 MiB. */
	ret = ckpt_ofi_call_within(
		c, &req, &rep, c->opts.timeout_ms + (unsigned int)(p->size / (128u << 20)) * 1000u);
	if (ret < 0) {
		ckpt_log(ret == -EEXIST ? CKPT_LOG_NOTICE : CKPT_LOG_ERR, LOG,
			 "%s: create region %s: %s", c->target, p->name, strerror(-ret));
		return ret;
	}
	ret = attach(c, r, &rep, p->name, &want);
	if (ret < 0 && ret != -EIO)
		release_handle(c, rep.u.opened.handle);
	return ret;
}

static int ofi_open(struct ckpt_client *c, const char *name, struct ckpt_region *r)
{
	struct ckpt_msg req = {.type = CKPT_MSG_OPEN}, rep = {0};
	int ret;

	if (strlen(name) >= PMU_NAME_MAX || name[0] == '\0')
		return -EINVAL;
	strcpy(req.u.name.name, name);
	ret = ckpt_ofi_call(c, &req, &rep);
	if (ret < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: open region %s: %s", c->target, name,
			 strerror(-ret));
		return ret;
	}
	ret = attach(c, r, &rep, name, NULL);
	if (ret < 0 && ret != -EIO)
		release_handle(c, rep.u.opened.handle);
	return ret;
}

static int ofi_close(struct ckpt_region *r)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	uint64_t deadline = now_ms() + c->opts.timeout_ms;
	int ret = 0;

	if (o->dead == 0)
		ckpt_ofi_post_run(r);
	/* Let posted operations finish; they still point at this region. */
	while (o->dead == 0 && ckpt_ofi_region_busy(o, r) && now_ms() < deadline) {
		if (ofi_poll(c) == 0)
			sched_yield();
	}
	ckpt_ofi_region_abandon(o, r);
	if (o->dead == 0) {
		struct ckpt_msg req = {.type = CKPT_MSG_CLOSE}, rep = {0};

		req.u.close.handle = rr->handle;
		ret = ckpt_ofi_call(c, &req, &rep);
	}
	free(rr);
	r->be = NULL;
	return ret;
}

static int ofi_remove(struct ckpt_client *c, const char *name)
{
	struct ckpt_msg req = {.type = CKPT_MSG_DELETE}, rep = {0};

	if (strlen(name) >= PMU_NAME_MAX || name[0] == '\0')
		return -EINVAL;
	strcpy(req.u.name.name, name);
	return ckpt_ofi_call(c, &req, &rep);
}

static int ofi_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
{
	struct ckpt_msg req = {.type = CKPT_MSG_LIST}, rep = {0};
	int ret;

	ret = ckpt_ofi_call_list(c, &req, &rep, c->opts.timeout_ms, out, out == NULL ? 0 : max);
	if (ret < 0)
		return ret;
	/* The server sends every region it counts; fewer would leave entries unwritten. */
	if (rep.u.list.n != rep.u.list.total) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: LIST reply holds %u of %u regions", c->target,
			 rep.u.list.n, rep.u.list.total);
		oc(c)->dead = -EIO;
		return -EIO;
	}
	return (int)rep.u.list.total;
}

static int ofi_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	struct ckpt_msg req = {.type = CKPT_MSG_STAT}, rep = {0};
	int ret;

	if (strlen(name) >= PMU_NAME_MAX || name[0] == '\0')
		return -EINVAL;
	strcpy(req.u.name.name, name);
	ret = ckpt_ofi_call(c, &req, &rep);
	if (ret == 0)
		*out = rep.u.stat;
	return ret;
}

static int ofi_lease(struct ckpt_region *r, unsigned int ttl_ms)
{
	struct ckpt_msg req = {.type = CKPT_MSG_LEASE}, rep = {0};

	req.u.lease.handle = orr(r)->handle;
	req.u.lease.ttl_ms = ttl_ms;
	return ckpt_ofi_call(r->cl, &req, &rep);
}

/* ---- fencing and death notice ---- */

static int ofi_epoch_take(struct ckpt_region *r, uint64_t seen, uint64_t *epoch)
{
	struct ckpt_msg req = {.type = CKPT_MSG_TAKE}, rep = {0};
	int ret;

	req.u.take.handle = orr(r)->handle;
	req.u.take.seen = seen;
	ret = ckpt_ofi_call(r->cl, &req, &rep);
	if (ret < 0) {
		ckpt_log(ret == -ESTALE ? CKPT_LOG_NOTICE : CKPT_LOG_ERR, LOG,
			 "%s: take epoch %llu of %s: %s", r->cl->target,
			 (unsigned long long)seen + 1, r->geo.name,
			 ret == -ESTALE ? "someone else took it first" : strerror(-ret));
		return ret;
	}
	/* A take moves the epoch by one: any other answer is not the server's to give. */
	if (rep.u.taken.epoch != seen + 1) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: asked for epoch %llu of %s, the server says %llu",
			 r->cl->target, (unsigned long long)seen + 1, r->geo.name,
			 (unsigned long long)rep.u.taken.epoch);
		oc(r->cl)->dead = -EIO;
		return -EIO;
	}
	*epoch = rep.u.taken.epoch;
	return 0;
}

static int ofi_epoch_bind(struct ckpt_client *c, const char *lease_name, uint64_t epoch)
{
	struct ckpt_msg req = {.type = CKPT_MSG_BIND}, rep = {0};
	int ret;

	if (strlen(lease_name) >= PMU_NAME_MAX || lease_name[0] == '\0')
		return -EINVAL;
	strcpy(req.u.bind.name, lease_name);
	req.u.bind.epoch = epoch;
	ret = ckpt_ofi_call(c, &req, &rep);
	if (ret < 0)
		ckpt_log(ret == -ESTALE ? CKPT_LOG_NOTICE : CKPT_LOG_ERR, LOG,
			 "%s: bind to epoch %llu of %s: %s", c->target, (unsigned long long)epoch,
			 lease_name, ret == -ESTALE ? "a newer epoch was taken" : strerror(-ret));
	return ret;
}

/*
 * WATCH is a long poll the server caps (at half its idle timeout): asked again until the
 * lease is free or this call's own timeout has passed. Each answer is waited for that long
 * plus the usual control timeout; the connection is this call's meanwhile.
 */
static int ofi_lease_watch(struct ckpt_region *r, unsigned int timeout_ms)
{
	struct ckpt_client *c = r->cl;
	uint64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		struct ckpt_msg req = {.type = CKPT_MSG_WATCH}, rep = {0};
		uint64_t now = now_ms(), left = deadline > now ? deadline - now : 0;
		int ret;

		req.u.watch.handle = orr(r)->handle;
		req.u.watch.timeout_ms = (uint32_t)left;
		ret = ckpt_ofi_call_within(c, &req, &rep, (unsigned int)left + c->opts.timeout_ms);
		if (ret != -ETIMEDOUT || oc(c)->dead != 0 || now_ms() >= deadline)
			return ret;
	}
}

/* One code path for every provider: the tables differ only in how they connect. */
#define OFI_OPS(scheme_, connect_)                                                                 \
	{                                                                                          \
		.target = {.scheme = (scheme_),                                                    \
			   .connect = (connect_),                                                  \
			   .disconnect = ofi_disconnect,                                           \
			   .create = ofi_create,                                                   \
			   .open = ofi_open,                                                       \
			   .close = ofi_close,                                                     \
			   .remove = ofi_remove,                                                   \
			   .list = ofi_list,                                                       \
			   .stat = ofi_stat,                                                       \
			   .lease = ofi_lease,                                                     \
			   .barrier = ckpt_ofi_barrier,                                            \
			   .poll = ofi_poll,                                                       \
			   .epoch_take = ofi_epoch_take,                                           \
			   .epoch_bind = ofi_epoch_bind,                                           \
			   .lease_watch = ofi_lease_watch},                                        \
		.applies_journal = true, .write = ckpt_ofi_write,                                  \
		.barrier_head = ckpt_ofi_barrier_head, .read = ckpt_ofi_read,                      \
	}

const struct ckpt_byte_ops ckpt_ofi_tcp_ops = OFI_OPS("ofi+tcp", tcp_connect);
const struct ckpt_byte_ops ckpt_ofi_shm_ops = OFI_OPS("ofi+shm", shm_connect);
const struct ckpt_byte_ops ckpt_ofi_verbs_ops = OFI_OPS("ofi+verbs", verbs_connect);

int ckpt_ofi_test_set_rkey(struct ckpt_region *r, uint64_t key)
{
	if (r == NULL || r->be == NULL || r->cl->bytes == NULL ||
	    r->cl->bytes->write != ckpt_ofi_write)
		return -EINVAL;
	orr(r)->rkey = key;
	return 0;
}

int ckpt_ofi_test_persist(struct ckpt_region *r, uint64_t off, uint64_t len)
{
	struct ckpt_msg req = {.type = CKPT_MSG_PERSIST}, rep = {0};

	if (r == NULL || r->be == NULL || r->cl->bytes == NULL ||
	    r->cl->bytes->write != ckpt_ofi_write)
		return -EINVAL;
	req.u.persist.handle = orr(r)->handle;
	req.u.persist.off = off;
	req.u.persist.len = len;
	return ckpt_ofi_call(r->cl, &req, &rep);
}

int ckpt_ofi_test_has_endpoint(const struct ckpt_client *c)
{
	if (c == NULL || c->be == NULL || c->bytes == NULL || c->bytes->write != ckpt_ofi_write)
		return -EINVAL;
	return oc(c)->ep != NULL;
}
