/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * For the group's unit tests: a byte backend in memory, reached as "stub:NAME". Store NAME
 * is a table of regions kept in this process across connections, as a server keeps them
 * while clients come and go, so a group of three stubs needs no store files and no
 * servers. A test can make a store stop answering, replace it by an empty one, and read or
 * damage a region's bytes, which is what the cleaner and the rebuild are tested against;
 * regions keep a fencing epoch (ckpt_epoch_take) a test can set, and a store's stat can be
 * made to fail alone.
 */
#ifndef CKPT_STUB_BACKEND_H
#define CKPT_STUB_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

/* Make "stub:" targets reach the stub (once per process; again is harmless). */
void stub_backend_register(void);

/* Forget every store and its regions (no client may be connected to one). */
void stub_backend_reset(void);

/*
 * While @p down, store @p store refuses connections (ECONNREFUSED) and fails every
 * operation of the connections it had (ECONNRESET): a server that stopped.
 */
void stub_store_down(const char *store, bool down);

/*
 * Replace store @p store by an empty one: its regions are gone (a server that was
 * replaced). @return 0, or -EBUSY while a client has one of them open.
 */
int stub_store_wipe(const char *store);

/*
 * The bytes of region @p region of store @p store, in place (*@p len of them), to read or
 * damage. @return 0 or -ENOENT.
 */
int stub_region_bytes(const char *store, const char *region, uint8_t **bytes, uint64_t *len);

/* While @p fails, store @p store answers stat with ETIMEDOUT (a member too slow to say). */
void stub_store_stat_fails(const char *store, bool fails);

/* Set region @p region of store @p store to epoch @p epoch. @return 0 or -ENOENT. */
int stub_region_set_epoch(const char *store, const char *region, uint64_t epoch);

#endif /* CKPT_STUB_BACKEND_H */
