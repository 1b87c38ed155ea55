/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * For the group's unit tests: the record a test writer posts for slot pair @p pair at
 * generation @p gen, its payload filled with one byte both derive (test_rec_byte), so that
 * a reader can tell which record it got back.
 */
#ifndef CKPT_GROUP_TEST_REC_H
#define CKPT_GROUP_TEST_REC_H

#include <stdint.h>
#include <string.h>

#include "holdfast/ckpt.h"

#define TEST_REC_PAYLOAD 40

static inline uint8_t test_rec_byte(uint32_t pair, uint64_t gen)
{
	return (uint8_t)(pair * 3 + gen);
}

/* The record of @p pair at @p gen, its payload written into @p payload. */
static inline struct ckpt_rec test_rec(uint32_t pair, uint64_t gen,
				       uint8_t payload[TEST_REC_PAYLOAD])
{
	memset(payload, test_rec_byte(pair, gen), TEST_REC_PAYLOAD);
	return (struct ckpt_rec){
		.module_id = 1,
		.slice_version = 1,
		.conn_id = pair + 1,
		.generation = gen,
		.slot_pair = pair,
		.key = {.family = 4, .proto = 17, .port = {(uint16_t)pair, 53}},
		.payload_len = TEST_REC_PAYLOAD,
		.payload = payload,
	};
}

#endif /* CKPT_GROUP_TEST_REC_H */
