/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry point for the control protocol's decoder, in both directions: the first
 * byte picks the receiver (a server before and after authentication, a client at each of
 * its three steps) and how much LIST room it offers; the rest is one frame. Beyond "no
 * crash, no read past the frame, no write past the room", it checks what every receiver
 * relies on:
 *   - the header check and the decoder agree, and a frame of a type the receiver does not
 *     take is refused from its header alone;
 *   - an accepted message re-encodes to exactly the frame (one encoding per message, so
 *     nothing unchecked rides along);
 *   - LIST entries are written into the room given and nowhere else, and a region's
 *     geometry lies inside the region as the store would lay it out.
 * The frame is copied to a buffer of its exact length so ASan sees any over-read; the room
 * is surrounded by guard entries that must come back untouched.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define ROOM_MAX 8

static const unsigned int receivers[] = {
	CKPT_ACCEPT_HELLO,
	CKPT_ACCEPT_REQUEST,
	CKPT_ACCEPT_CHALLENGE,
	CKPT_ACCEPT_WELCOME,
	CKPT_ACCEPT_REPLY,
	CKPT_ACCEPT_CHALLENGE | CKPT_ACCEPT_HELLO | CKPT_ACCEPT_WELCOME | CKPT_ACCEPT_REQUEST |
		CKPT_ACCEPT_REPLY,
};

static void check_region(const struct pmu_region_info *r)
{
	if (r->index >= PMU_MAX_REGIONS || r->ring_off > r->size ||
	    r->ring_size > r->size - r->ring_off)
		abort();
	if (r->mode == PMU_MODE_OVERWRITE &&
	    (r->slot_size == 0 || r->nslots > (r->ring_off - PMU_REGION_HDR) / r->slot_size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t again[CKPT_PROTO_FRAME_MAX];
	struct ckpt_region_info room[ROOM_MAX + 2], guard;
	unsigned int accept;
	uint32_t cap;
	struct ckpt_msg m;
	uint8_t *frame;
	size_t len;
	int flen, rc;

	if (size < 1)
		return 0;
	accept = receivers[(data[0] & 0x7) % (sizeof(receivers) / sizeof(receivers[0]))];
	cap = (uint32_t)(data[0] >> 4) % (ROOM_MAX + 1);
	len = size - 1;
	frame = malloc(len ? len : 1);
	memcpy(frame, data + 1, len);
	memset(&guard, 0x5c, sizeof(guard));
	for (unsigned int i = 0; i < ROOM_MAX + 2; i++)
		room[i] = guard;

	rc = ckpt_proto_decode(frame, len, accept, &m, &room[1], cap);
	flen = len >= CKPT_PROTO_HDR_LEN ? ckpt_proto_frame_len(frame, accept, NULL) : -1;
	if (rc == 0 && (size_t)flen != len)
		abort(); /* the decoder took what the header check refused */
	if (memcmp(&room[0], &guard, sizeof(guard)) != 0 ||
	    memcmp(&room[cap + 1], &guard, sizeof(guard)) != 0)
		abort(); /* written outside the room */
	if (rc == 0) {
		struct ckpt_proto_hdr h;
		int n;

		if (ckpt_proto_frame_len(frame, accept, &h) < 0 || h.type != m.type)
			abort();
		if (m.u.list.items != NULL && m.type == (CKPT_MSG_LIST | CKPT_MSG_REPLY))
			abort(); /* decode never hands out a pointer */
		switch (m.type) {
		case CKPT_MSG_CREATE | CKPT_MSG_REPLY:
		case CKPT_MSG_OPEN | CKPT_MSG_REPLY:
			if (m.status == 0)
				check_region(&m.u.opened.info);
			break;
		case CKPT_MSG_STAT | CKPT_MSG_REPLY:
			if (m.status == 0)
				check_region(&m.u.stat.r);
			break;
		case CKPT_MSG_LIST | CKPT_MSG_REPLY:
			for (uint32_t i = 0; i < m.u.list.n && i < cap; i++)
				check_region(&room[1 + i].r);
			/* Re-encoding needs every entry: only when all fitted. */
			if (m.u.list.n > cap)
				goto out;
			m.u.list.items = &room[1];
			break;
		default:
			break;
		}
		n = ckpt_proto_encode(&m, again, sizeof(again));
		if (n < 0 || (size_t)n != len || memcmp(again, frame, len) != 0)
			abort();
	}
out:
	free(frame);
	return 0;
}
