/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test hooks of the ofi+* backends, for integration tests that must prove the server and
 * the provider refuse what a broken or hostile client does. Not part of the client API.
 */
#ifndef CKPT_OFI_TEST_H
#define CKPT_OFI_TEST_H

#include <stdint.h>

#include "holdfast/ckpt.h"

/** Use @p key as the region's remote key from now on. @return 0 or -EINVAL (not ofi). */
int ckpt_ofi_test_set_rkey(struct ckpt_region *r, uint64_t key);

/**
 * Send PERSIST(@p off, @p len) for @p r and wait for the answer.
 * @return the server's status (0, -EINVAL out of bounds, ...), or -ETIMEDOUT/-ECONNRESET.
 */
int ckpt_ofi_test_persist(struct ckpt_region *r, uint64_t off, uint64_t len);

/**
 * Has @p c opened its libfabric endpoint (it does at its first write or read)?
 * @return 1, 0, or -EINVAL (not an ofi+* client).
 */
int ckpt_ofi_test_has_endpoint(const struct ckpt_client *c);

#endif /* CKPT_OFI_TEST_H */
