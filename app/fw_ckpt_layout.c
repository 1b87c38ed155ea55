/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fw_ckpt_layout.h"
#include "fw_config.h"

#define SLOT_SIZE  128
#define RING_SIZE  (4u << 20)  /* each state region's journal */
#define STORE_MORE (64u << 20) /* a store's room beyond its regions: its own table, slack */

int fw_ckpt_layout_init(struct fw_ckpt_layout *l, const struct fw_config *conf,
			unsigned int nworkers, char *err, size_t errlen)
{
	int rc;

	*l = (struct fw_ckpt_layout){
		.target = conf->ckpt_target,
		.region = conf->ckpt_region,
		.tenant = conf->ckpt_tenant,
		.allow_shm = conf->ckpt_allow_shm,
		.nworkers = nworkers,
		.pairs = (uint64_t)conf->max_conns * fw_modules_slices_max(),
		.slot_size = SLOT_SIZE,
		.log_size = conf->ckpt_log_size,
	};
	l->store_size = conf->ckpt_size ? conf->ckpt_size : fw_ckpt_layout_store_size(l);
	if (conf->ckpt_secret_file[0]) {
		rc = ckpt_secret_load(conf->ckpt_secret_file, conf->ckpt_tenant, l->secret,
				      sizeof(l->secret));
		if (rc < 0) {
			snprintf(err, errlen,
				 "ckpt-secret-file %s: no usable secret for tenant %s: %s",
				 conf->ckpt_secret_file, conf->ckpt_tenant, strerror(-rc));
			return rc;
		}
		l->secret_len = (size_t)rc;
	}
	if (strncmp(conf->ckpt_target, "pmem:/", 6) == 0 && !conf->standby) {
		/* The file outlives the firewall; its folder may not exist on a first start. */
		char dir[256];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", conf->ckpt_target + 5);
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0700);
		}
	}
	return 0;
}

void fw_ckpt_layout_release(struct fw_ckpt_layout *l)
{
	memset(l->secret, 0, sizeof(l->secret));
	l->secret_len = 0;
}

void fw_ckpt_layout_state(const struct fw_ckpt_layout *l, unsigned int worker,
			  char name[PMU_NAME_MAX], struct pmu_region_params *p)
{
	snprintf(name, PMU_NAME_MAX, "%s.%u", l->region, worker);
	if (p == NULL)
		return;
	/* Two slots a pair: the newest generation never overwrites the one before. */
	*p = (struct pmu_region_params){
		.name = name,
		.mode = PMU_MODE_OVERWRITE,
		.size = PMU_REGION_HDR + l->pairs * 2 * l->slot_size + RING_SIZE,
		.slot_size = l->slot_size,
		.ring_size = RING_SIZE,
	};
}

void fw_ckpt_layout_log(const struct fw_ckpt_layout *l, unsigned int worker,
			char name[PMU_NAME_MAX], struct pmu_region_params *p)
{
	snprintf(name, PMU_NAME_MAX, "%s.%u.log", l->region, worker);
	if (p == NULL)
		return;
	*p = (struct pmu_region_params){
		.name = name,
		.mode = PMU_MODE_APPEND,
		.size = PMU_REGION_HDR + l->log_size,
	};
}

void fw_ckpt_layout_lease(const struct fw_ckpt_layout *l, char name[PMU_NAME_MAX])
{
	fw_ckpt_layout_state(l, 0, name, NULL);
}

uint64_t fw_ckpt_layout_store_size(const struct fw_ckpt_layout *l)
{
	char name[PMU_NAME_MAX];
	struct pmu_region_params state, log;

	fw_ckpt_layout_state(l, 0, name, &state);
	fw_ckpt_layout_log(l, 0, name, &log);
	return l->nworkers * (state.size + log.size) + STORE_MORE;
}

struct ckpt_client *fw_ckpt_layout_connect(const struct fw_ckpt_layout *l, unsigned int timeout_ms,
					   bool create_store)
{
	struct ckpt_client_opts o = {
		.tenant = l->tenant,
		.secret = l->secret_len ? l->secret : NULL,
		.secret_len = l->secret_len,
		.timeout_ms = timeout_ms,
		.allow_shm = l->allow_shm,
		.create_store = create_store,
		.store_size = create_store ? l->store_size : 0,
	};

	return ckpt_connect(l->target, &o);
}
