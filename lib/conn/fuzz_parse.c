/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry point for the frame parser: arbitrary bytes as a frame. Beyond "no
 * crash, no read past the end" (ASan sees the exact-length copy), it checks what the fast
 * path relies on: every pointer the parser returns lies inside the frame with the length
 * it states, the canonical key is the same from both directions, and the packet an ICMP
 * error quotes lies inside the frame too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fw_parse.h"
#include "holdfast/fw_conn.h"

static void inside(const uint8_t *base, size_t len, const uint8_t *p, size_t n)
{
	if (p < base || p + n > base + len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *frame = malloc(size ? size : 1);
	struct fw_parsed p;

	memcpy(frame, data, size);
	if (fw_parse(frame, (uint32_t)size, &p) == FW_PARSE_OK) {
		const size_t alen = p.family == 4 ? 4 : 16;
		struct fw_key a, b;

		if (p.family != 4 && p.family != 6)
			abort();
		inside(frame, size, p.saddr, alen);
		inside(frame, size, p.daddr, alen);
		if (p.l4 != NULL) {
			inside(frame, size, p.l4, p.l4_len);
			if (p.l4_hdr_len > p.l4_len)
				abort();
		} else if (p.frag != FW_FRAG_LATER) {
			abort();
		}
		if (fw_key_make(&a, p.family, p.proto, p.saddr, p.daddr, p.sport, p.dport) ==
			    fw_key_make(&b, p.family, p.proto, p.daddr, p.saddr, p.dport,
					p.sport) &&
		    memcmp(p.saddr, p.daddr, alen) != 0)
			abort();
		if (memcmp(&a, &b, sizeof(a)) != 0)
			abort();
		{
			struct fw_icmp_quote q;

			if (fw_parse_icmp(frame, &p, &q) == FW_ICMP_ERROR) {
				if (q.family != p.family || (q.proto != 6 && q.proto != 17))
					abort();
				inside(frame, size, q.saddr, alen);
				inside(frame, size, q.daddr, alen);
			}
		}
	}
	free(frame);
	return 0;
}
