/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry point for ckptsrv's configuration file: arbitrary bytes as the file
 * ckptsrv_config_load reads (through a memfd). Properties beyond "no crash, no read past
 * the end": whatever it took is within its bounds (listeners and quota lines counted
 * within their arrays, every string ends inside its buffer, a quota's byte share 1..100
 * when given as one), and the limits of every tenant it names can be looked up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckptsrv.h"
#include "hf_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ends_inside(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ckptsrv_config cfg;
	static int fd = -1;
	char path[64];

	if (fd < 0) {
		fd = memfd_create("fuzz_config", 0);
		if (fd < 0)
			abort();
		ckpt_log_quiet_thread(true); /* every refused line would be logged */
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&cfg, 0, sizeof(cfg));
	ckptsrv_config_defaults(&cfg);
	(void)ckptsrv_config_load(path, &cfg);
	if (cfg.nlisten > CKPTSRV_MAX_LISTEN || cfg.nquota > CKPTSRV_MAX_QUOTAS)
		abort();
	ends_inside(cfg.pmem, sizeof(cfg.pmem));
	ends_inside(cfg.secret_file, sizeof(cfg.secret_file));
	ends_inside(cfg.distribute, sizeof(cfg.distribute));
	for (unsigned int i = 0; i < cfg.nlisten; i++)
		ends_inside(cfg.listen[i], sizeof(cfg.listen[i]));
	for (unsigned int i = 0; i < cfg.nquota; i++) {
		struct ckptsrv_limits lim;

		ends_inside(cfg.quota[i].tenant, sizeof(cfg.quota[i].tenant));
		ckptsrv_limits_of(&cfg, cfg.quota[i].tenant, &lim);
		if ((cfg.quota[i].given & CKPTSRV_QUOTA_BYTES) && lim.bytes_pct > 100)
			abort();
	}
	return 0;
}
