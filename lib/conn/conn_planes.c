/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The memory connections live in: a hot plane of 64-byte lines and a cold plane of
 * 256-byte parts at a fixed distance, so that fw_conn_cold() finds a connection's cold part
 * from its hot pointer alone (fw_conn.h). Anonymous memory of the process's own, not
 * DPDK's heap: rte_malloc cannot place a block at an address aligned to a gigabyte without
 * holding a gigabyte, and the planes must sit at B and B + FW_CONN_PLANE with B so aligned.
 *
 * Address space is cheap, memory is not: the reservation is FW_CONN_PLANE of hot plane
 * plus the cold part in use, PROT_NONE and MAP_NORESERVE (no memory, no commit charge);
 * only the used ranges of the two planes become memory, read-write. What lies past the
 * hot lines in use stays PROT_NONE: a stray position faults instead of reading a neighbour.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "holdfast/fw_conn.h"

/* Huge page size: the used ranges are rounded to it, so that each can be one THP. */
#define HUGE_2M (2ull << 20)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#define MPOL_PREFERRED_ 1 /* linux/mempolicy.h, without the header's other names */

static size_t round_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static size_t hot_len(uint32_t n)
{
	return round_up((size_t)n * sizeof(struct fw_conn), HUGE_2M);
}

static size_t cold_len(uint32_t n)
{
	return round_up((size_t)n * sizeof(struct fw_conn_cold), HUGE_2M);
}

/*
 * Make [@p p, @p p + @p len) of the reservation memory: read-write, on huge pages where the
 * kernel has them (THP in madvise mode is the common setting), on node @p socket if it
 * can be, and faulted in now -- a worker's first packets of new connections would
 * otherwise each take a page fault, and a restore's inserts thousands of them.
 */
static int plane_commit(uint8_t *p, size_t len, int socket)
{
	if (mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	    MAP_FAILED)
		return -errno;
	(void)madvise(p, len, MADV_HUGEPAGE); /* EINVAL without THP: small pages then */
	if (socket >= 0 && socket < 64) {
		/* rte_malloc_socket placed the connections on their worker's node; so does this
		 * (preferred, not bound: a node out of memory still gives memory). A kernel
		 * without NUMA says ENOSYS, and any node will do. */
		unsigned long mask = 1ul << socket;

		(void)syscall(SYS_mbind, p, len, MPOL_PREFERRED_, &mask, 64ul, 0u);
	}
	if (madvise(p, len, MADV_POPULATE_WRITE) != 0) {
		if (errno != EINVAL)
			return -errno; /* ENOMEM: out of memory now rather than at a packet */
		for (size_t i = 0; i < len; i += 4096) /* a kernel before 5.14 */
			((volatile uint8_t *)p)[i] = 0;
	}
	return 0;
}

struct fw_conn *fw_conns_map(uint32_t n, int socket)
{
	size_t span, head;
	uint8_t *r, *b;
	int rc;

	if (n == 0 || n > FW_CONNS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	/* A plane's worth more than needed, to find a plane-aligned base inside. */
	span = 2 * FW_CONN_PLANE + cold_len(n);
	r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	b = (uint8_t *)round_up((uintptr_t)r, FW_CONN_PLANE);
	head = (size_t)(b - r);
	if (head)
		munmap(r, head);
	munmap(b + FW_CONN_PLANE + cold_len(n), span - head - FW_CONN_PLANE - cold_len(n));
	rc = plane_commit(b, hot_len(n), socket);
	if (rc == 0)
		rc = plane_commit(b + FW_CONN_PLANE, cold_len(n), socket);
	if (rc != 0) {
		munmap(b, FW_CONN_PLANE + cold_len(n));
		errno = -rc;
		return NULL;
	}
	return (struct fw_conn *)(void *)b;
}

void fw_conns_unmap(struct fw_conn *conns, uint32_t n)
{
	if (conns != NULL)
		munmap(conns, FW_CONN_PLANE + cold_len(n));
}
