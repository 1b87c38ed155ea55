/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The libfabric side of an ofi+* client: a provider that orders RMA reads after writes and
 * writes after writes (the barriers of ofi_data.c rest on both), with FI_RMA_PMEM when it
 * offers it (writes may then be commit-complete); its fabric, domain, AV, CQ and RDM
 * endpoint; the server's endpoint name from WELCOME, checked against the provider's address
 * format before it is inserted; and the local buffers the data path posts from and reads
 * into (staging slots, fence scratch words, the read bounce buffer), each registered once.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include "ofi_internal.h"

#define LOCAL_KEY_BASE 0x686600u /* requested keys of our own local registrations */

int ckpt_ofi_errno(int fi_err)
{
	int e = fi_err < 0 ? -fi_err : fi_err;

	if (e == FI_ENODATA)
		return -ENODATA;
	if (e == FI_ECONNRESET || e == FI_ECONNABORTED || e == FI_ENOTCONN || e == EPIPE ||
	    e == FI_ECONNREFUSED || e == FI_EHOSTUNREACH || e == FI_ESHUTDOWN)
		return -ECONNRESET;
	if (e == FI_ETIMEDOUT)
		return -ETIMEDOUT;
	if (e > 0 && e < 256)
		return -e;
	return -EIO;
}

static int fab_fail(struct ckpt_client *c, const char *what, int ret)
{
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: %s: %s", c->target, what, ckpt_ofi_strerror(-ret));
	return ckpt_ofi_errno(ret);
}

static int get_info(struct ckpt_client *c, const char *node, bool want_pmem)
{
	const struct ckpt_ofi_lib *lib = ckpt_ofi_lib();
	struct ofi_client *o = oc(c);
	struct fi_info *hints = lib->dupinfo(NULL); /* what fi_allocinfo() is */
	int ret;

	if (hints == NULL)
		return -ENOMEM;
	hints->caps = FI_RMA | FI_READ | FI_WRITE | (want_pmem ? FI_RMA_PMEM : 0);
	hints->ep_attr->type = FI_EP_RDM;
	hints->fabric_attr->prov_name = strdup(o->prov);
	hints->domain_attr->mr_mode =
		FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	hints->domain_attr->threading = FI_THREAD_DOMAIN;
	/* Barriers rest on these: writes land in order, a read runs after earlier writes. */
	hints->tx_attr->msg_order = FI_ORDER_RAW | FI_ORDER_WAW;
	ret = lib->getinfo(FI_VERSION(1, 17), node, NULL, 0, hints, &o->info);
	lib->freeinfo(hints);
	return ret;
}

/*
 * The server's endpoint name goes to the provider, which trusts it: it must be an address
 * of the provider's own format, whole.
 */
static bool endpoint_ok(const struct fi_info *info, const uint8_t *ep, size_t len)
{
	sa_family_t family;

	switch (info->addr_format) {
	case FI_SOCKADDR:
	case FI_SOCKADDR_IN:
	case FI_SOCKADDR_IN6:
		if (len < sizeof(family))
			return false;
		memcpy(&family, ep, sizeof(family));
		if (family == AF_INET)
			return len >= sizeof(struct sockaddr_in) &&
			       info->addr_format != FI_SOCKADDR_IN6;
		if (family == AF_INET6)
			return len >= sizeof(struct sockaddr_in6) &&
			       info->addr_format != FI_SOCKADDR_IN;
		return false;
	case FI_ADDR_STR:
		for (size_t i = 0; i < len && ep[i] != '\0'; i++)
			if (ep[i] < ' ' || ep[i] > '~')
				return false;
		return len > 0 && ep[0] != '\0';
	default:
		return true;
	}
}

int ckpt_ofi_provider_find(struct ckpt_client *c, const char *node)
{
	struct ofi_client *o = oc(c);
	int ret;

	if (ckpt_ofi_lib() == NULL)
		return -ENOTSUP; /* logged */
	ret = get_info(c, node, true);
	if (ret == 0) {
		o->rma_pmem = true;
	} else {
		ret = get_info(c, node, false);
		if (ret != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG,
				 "%s: libfabric provider %s with ordered RMA is not available "
				 "here: %s",
				 c->target, o->prov, ckpt_ofi_strerror(-ret));
			return ret == -FI_ENODATA ? -ENODATA : ckpt_ofi_errno(ret);
		}
	}
	if ((o->info->tx_attr->msg_order & (FI_ORDER_RAW | FI_ORDER_WAW)) !=
	    (FI_ORDER_RAW | FI_ORDER_WAW)) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: provider %s does not order reads after writes; barriers need it",
			 c->target, o->prov);
		return -ENOTSUP;
	}
	return 0;
}

int ckpt_ofi_fabric_open(struct ckpt_client *c, const uint8_t *ep, size_t ep_len)
{
	struct ofi_client *o = oc(c);
	struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_CONTEXT, .wait_obj = FI_WAIT_NONE};
	struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
	/* zero-padded: string-addressed providers (shm) read up to a NUL */
	uint8_t name[CKPT_PROTO_EP_MAX + 1] = {0};
	const struct ckpt_ofi_lib *lib = ckpt_ofi_lib(); /* loaded: the provider was found */
	struct ckpt_ofi_sigs sigs;
	size_t stage_len;
	int ret;

	ret = lib->fabric(o->info->fabric_attr, &o->fabric, NULL);
	if (ret)
		return fab_fail(c, "fi_fabric", ret);
	ret = fi_domain(o->fabric, o->info, &o->domain, NULL);
	if (ret)
		return fab_fail(c, "fi_domain", ret);
	ret = fi_av_open(o->domain, &av_attr, &o->av, NULL);
	if (ret)
		return fab_fail(c, "fi_av_open", ret);
	cq_attr.size = c->opts.max_inflight + BARRIERS_MAX + 16;
	ret = fi_cq_open(o->domain, &cq_attr, &o->cq, NULL);
	if (ret)
		return fab_fail(c, "fi_cq_open", ret);
	/*
	 * The shm provider's first endpoint installs handlers for SIGINT, SIGTERM, SIGSEGV and
	 * SIGBUS that unlink the process's endpoint files and then chain to the handler before
	 * it. For a firewall, SIGINT starts a shutdown that still talks to the server (the lease
	 * is released, the last records flushed): with its files gone, the server cannot map
	 * the next endpoint that introduces itself, and libfabric 1.17's shm progress then
	 * dereferences NULL (smr_progress_connreq) -- the server crashed holding its region's
	 * lock and the firewall spun on that lock at shutdown. The endpoints' own fi_close
	 * unlinks their files on a clean stop; a firewall killed outright leaves them either way.
	 */
	ckpt_ofi_sigs_save(&sigs);
	ret = fi_endpoint(o->domain, o->info, &o->ep, NULL);
	ckpt_ofi_sigs_restore(&sigs, "the endpoint");
	if (ret)
		return fab_fail(c, "fi_endpoint", ret);
	ret = fi_ep_bind(o->ep, &o->av->fid, 0);
	if (ret == 0)
		ret = fi_ep_bind(o->ep, &o->cq->fid, FI_TRANSMIT | FI_RECV);
	if (ret == 0)
		ret = fi_enable(o->ep);
	if (ret)
		return fab_fail(c, "endpoint setup", ret);
	if (!endpoint_ok(o->info, ep, ep_len)) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: the server's endpoint address (%zu bytes) is not a %s address",
			 c->target, ep_len, lib->tostr(&o->info->addr_format, FI_TYPE_ADDR_FORMAT));
		return -EPROTO;
	}
	memcpy(name, ep, ep_len);
	ret = fi_av_insert(o->av, name, 1, &o->srv, 0, NULL);
	if (ret != 1) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: the server's endpoint address does not insert",
			 c->target);
		return -EPROTO;
	}

	o->nslots = c->opts.max_inflight;
	stage_len = (size_t)o->nslots * STAGE_SLOT;
	o->stage = aligned_alloc(4096, stage_len);
	o->free_slots = calloc(o->nslots, sizeof(*o->free_slots));
	o->scratch = aligned_alloc(4096, 4096);
	o->bounce_len = BOUNCE_LEN;
	if (o->info->ep_attr->max_msg_size < o->bounce_len)
		o->bounce_len = o->info->ep_attr->max_msg_size;
	o->bounce = aligned_alloc(4096, BOUNCE_LEN);
	o->nops = o->nslots + BARRIERS_MAX + 16;
	o->ops = calloc(o->nops, sizeof(*o->ops));
	if (o->stage == NULL || o->free_slots == NULL || o->scratch == NULL || o->bounce == NULL ||
	    o->ops == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < o->nslots; i++)
		o->free_slots[o->nfree++] = o->nslots - 1 - i;
	for (uint32_t i = 0; i < o->nops; i++)
		op_put(o, &o->ops[i]);
	for (uint32_t i = 0; i < BARRIERS_MAX; i++)
		o->barriers[i].idx = i;
	ret = fi_mr_reg(o->domain, o->stage, stage_len, FI_WRITE | FI_READ, 0, LOCAL_KEY_BASE, 0,
			&o->stage_mr, NULL);
	if (ret == 0)
		ret = fi_mr_reg(o->domain, o->scratch, 4096, FI_READ | FI_WRITE, 0,
				LOCAL_KEY_BASE + 1, 0, &o->scratch_mr, NULL);
	if (ret == 0)
		ret = fi_mr_reg(o->domain, o->bounce, BOUNCE_LEN, FI_READ | FI_WRITE, 0,
				LOCAL_KEY_BASE + 2, 0, &o->bounce_mr, NULL);
	if (ret)
		return fab_fail(c, "registering local buffers", ret);
	o->stage_desc = fi_mr_desc(o->stage_mr);
	o->scratch_desc = fi_mr_desc(o->scratch_mr);
	o->bounce_desc = fi_mr_desc(o->bounce_mr);
	return 0;
}

int ckpt_ofi_fabric_need(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);
	int ret;

	if (o->ep != NULL)
		return 0;
	if (o->dead)
		return o->dead;
	ret = ckpt_ofi_fabric_open(c, o->srv_ep, o->srv_ep_len);
	if (ret < 0) {
		o->dead = ret; /* what is half open goes with the client */
		return ret;
	}
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next)
		((struct ofi_region *)r->be)->commit = o->rma_pmem && r->is_pmem;
	ckpt_log(CKPT_LOG_INFO, LOG, "%s: endpoint open (provider %s%s)", c->target,
		 o->info->fabric_attr->prov_name, o->rma_pmem ? ", FI_RMA_PMEM" : "");
	return 0;
}

void ckpt_ofi_fabric_close(struct ofi_client *o)
{
	if (o->ep)
		fi_close(&o->ep->fid);
	if (o->stage_mr)
		fi_close(&o->stage_mr->fid);
	if (o->scratch_mr)
		fi_close(&o->scratch_mr->fid);
	if (o->bounce_mr)
		fi_close(&o->bounce_mr->fid);
	if (o->cq)
		fi_close(&o->cq->fid);
	if (o->av)
		fi_close(&o->av->fid);
	if (o->domain)
		fi_close(&o->domain->fid);
	if (o->fabric)
		fi_close(&o->fabric->fid);
	if (o->info)
		ckpt_ofi_lib()->freeinfo(o->info); /* loaded: there is an info */
	free(o->stage);
	free(o->free_slots);
	free(o->scratch);
	free(o->bounce);
	free(o->ops);
}
