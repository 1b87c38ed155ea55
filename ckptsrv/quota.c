/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-tenant quotas: what one authenticated tenant may take of what all share. Regions and
 * bytes are counted in the store's table at each CREATE, so they hold across restarts and
 * whatever made the regions; sessions and handles are counted on the session list. Every
 * count is taken under srv->lock, in the same hold as the action it allows, so two
 * sessions of a tenant cannot both take the last unit.
 *
 * Refusals (errno as the client sees it): regions or bytes EDQUOT, sessions EUSERS (in the
 * WELCOME), handles EMFILE.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG "ckptsrv"

/* The limit on bytes in bytes: a share of the store file, or as given. */
static uint64_t bytes_cap(const struct ckptsrv *srv, const struct ckptsrv_limits *lim)
{
	uint64_t total = 0;

	if (lim->bytes_pct == 0)
		return lim->bytes;
	pmu_store_space(srv->store, &total, NULL);
	return total / 100 * lim->bytes_pct + total % 100 * lim->bytes_pct / 100;
}

int ckptsrv_quota_session(struct ckptsrv *srv, const char *tenant, const char *peer)
{
	struct ckptsrv_limits lim;
	unsigned int n = 0;

	ckptsrv_limits_of(&srv->cfg, tenant, &lim);
	for (const struct ckptsrv_session *s = srv->sessions; s != NULL; s = s->next)
		n += strcmp(s->tenant, tenant) == 0;
	if (n < lim.sessions)
		return 0;
	CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
			 "tenant %s from %s refused (EUSERS): it has %u session(s), its limit is "
			 "%u (tenant-max-sessions or its quota line)",
			 tenant, peer, n, lim.sessions);
	return -EUSERS;
}

int ckptsrv_quota_create(struct ckptsrv_session *s, const struct pmu_region_params *p)
{
	struct ckptsrv *srv = s->l->srv;
	struct pmu_region_info want, *all;
	struct ckptsrv_limits lim;
	uint64_t bytes = 0, cap;
	unsigned int regions = 0;
	int n, ret = 0;

	if (pmu_region_layout(p, &want) != 0)
		return 0;
	all = calloc(PMU_MAX_REGIONS, sizeof(*all));
	if (all == NULL)
		return -ENOMEM;
	n = pmu_region_list(srv->store, all, PMU_MAX_REGIONS);
	for (int i = 0; i < n && i < PMU_MAX_REGIONS; i++) {
		if (strcmp(all[i].owner, s->tenant) != 0)
			continue;
		if (strcmp(all[i].name, p->name) == 0)
			goto out_free; /* EEXIST is the store's to say */
		regions++;
		bytes += all[i].size;
	}
	ckptsrv_limits_of(&srv->cfg, s->tenant, &lim);
	cap = bytes_cap(srv, &lim);
	if (regions >= lim.regions) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "CREATE of region %s refused for tenant %s from %s (EDQUOT): it "
				 "owns %u region(s), its limit is %u (tenant-max-regions or its "
				 "quota line)",
				 p->name, s->tenant, s->peer, regions, lim.regions);
		ret = -EDQUOT;
	} else if (want.size > cap || bytes > cap - want.size) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "CREATE of region %s (%llu bytes) refused for tenant %s from %s "
				 "(EDQUOT): its regions hold %llu bytes, its limit is %llu "
				 "(tenant-max-bytes or its quota line)",
				 p->name, (unsigned long long)want.size, s->tenant, s->peer,
				 (unsigned long long)bytes, (unsigned long long)cap);
		ret = -EDQUOT;
	}
out_free:
	free(all);
	return ret;
}

int ckptsrv_quota_open(struct ckptsrv_session *s)
{
	struct ckptsrv *srv = s->l->srv;
	struct ckptsrv_limits lim;
	unsigned int n = 0;

	ckptsrv_limits_of(&srv->cfg, s->tenant, &lim);
	for (const struct ckptsrv_session *t = srv->sessions; t != NULL; t = t->next)
		if (strcmp(t->tenant, s->tenant) == 0)
			n += t->nopens;
	if (n < lim.handles)
		return 0;
	CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
			 "open refused for tenant %s from %s (EMFILE): its sessions hold %u "
			 "handle(s), its limit is %u (tenant-max-handles or its quota line)",
			 s->tenant, s->peer, n, lim.handles);
	return -EMFILE;
}
