/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_pause.h>

#include "fw_ckpt_io.h"
#include "fw_thread.h"

/*
 * A control thread shares its CPUs with EAL's and holdfast's other threads (the lease
 * keeper above all): it naps when a pass found nothing, 50 us at first (at most that added
 * to a record's way to the target, against the 500 us a drain may wait for its batch),
 * twice as long after each idle pass up to 1 ms. Napping 50 us throughout cost the thread
 * 10 % of a CPU with nothing to do (20 k wake-ups a second); 1 ms when idle costs a record
 * that ends a quiet spell at most a millisecond.
 */
#define NAP_MIN_NS 50000
#define NAP_MAX_NS 1000000

struct fw_ckpt_io {
	struct fw_checkpointer **k;
	unsigned int n;
	int lcore; /* FW_CKPT_IO_THREAD: th */
	pthread_t th;
	bool stop;
	char where[32];
};

static int run(void *arg)
{
	struct fw_ckpt_io *io = arg;
	const double ns_per_cycle = 1e9 / (double)rte_get_tsc_hz();
	long nap_ns = NAP_MIN_NS;

	while (!__atomic_load_n(&io->stop, __ATOMIC_ACQUIRE)) {
		/* The workers' clock (fw_shared_now): the same conversion of the TSC. */
		const uint64_t now = (uint64_t)((double)rte_get_tsc_cycles() * ns_per_cycle);
		int busy = 0;

		for (unsigned int i = 0; i < io->n; i++)
			busy |= fw_checkpointer_io(io->k[i], now);
		if (busy) {
			nap_ns = NAP_MIN_NS;
			continue;
		}
		if (io->lcore == FW_CKPT_IO_THREAD) {
			const struct timespec nap = {0, nap_ns};

			nanosleep(&nap, NULL);
			nap_ns = nap_ns * 2 > NAP_MAX_NS ? NAP_MAX_NS : nap_ns * 2;
		} else {
			rte_pause();
		}
	}
	return 0;
}

static void *run_thread(void *arg)
{
	run(arg);
	return NULL;
}

struct fw_ckpt_io *fw_ckpt_io_start(struct fw_checkpointer *const *ks, unsigned int n, int lcore)
{
	struct fw_ckpt_io *io;
	int rc;

	if (lcore != FW_CKPT_IO_THREAD &&
	    (lcore < 0 || lcore >= RTE_MAX_LCORE || !rte_lcore_is_enabled((unsigned int)lcore) ||
	     (unsigned int)lcore == rte_get_main_lcore())) {
		errno = EINVAL;
		return NULL;
	}
	if (lcore != FW_CKPT_IO_THREAD && rte_eal_get_lcore_state((unsigned int)lcore) != WAIT) {
		errno = EBUSY;
		return NULL;
	}
	io = calloc(1, sizeof(*io));
	if (io != NULL)
		io->k = calloc(n ? n : 1, sizeof(*io->k));
	if (io == NULL || io->k == NULL) {
		if (io != NULL)
			free(io->k);
		free(io);
		errno = ENOMEM;
		return NULL;
	}
	io->n = n;
	io->lcore = lcore;
	for (unsigned int i = 0; i < n; i++) {
		io->k[i] = ks[i];
		fw_checkpointer_set_inline(ks[i], false);
	}
	if (lcore == FW_CKPT_IO_THREAD) {
		snprintf(io->where, sizeof(io->where), "thread hf-ckpt");
		rc = fw_thread_start(&io->th, "hf-ckpt", run_thread, io);
	} else {
		snprintf(io->where, sizeof(io->where), "lcore %d", lcore);
		rc = rte_eal_remote_launch(run, io, (unsigned int)lcore);
	}
	if (rc) {
		for (unsigned int i = 0; i < n; i++)
			fw_checkpointer_set_inline(ks[i], true);
		free(io->k);
		free(io);
		errno = rc < 0 ? -rc : rc;
		return NULL;
	}
	return io;
}

void fw_ckpt_io_stop(struct fw_ckpt_io **iop)
{
	struct fw_ckpt_io *io;

	if (iop == NULL || *iop == NULL)
		return;
	io = *iop;
	__atomic_store_n(&io->stop, true, __ATOMIC_RELEASE);
	if (io->lcore == FW_CKPT_IO_THREAD)
		pthread_join(io->th, NULL);
	else
		rte_eal_wait_lcore((unsigned int)io->lcore);
	for (unsigned int i = 0; i < io->n; i++)
		fw_checkpointer_set_inline(io->k[i], true);
	free(io->k);
	free(io);
	*iop = NULL;
}

const char *fw_ckpt_io_where(const struct fw_ckpt_io *io)
{
	return io->where;
}
