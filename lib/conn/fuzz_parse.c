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

/* Every property of a frame parsed with @p checked done (0, or the NIC's checksum). */
static void check(const uint8_t *frame, size_t size, unsigned int checked)
{
	struct fw_parsed p;

	if (fw_parse_with(frame, (uint32_t)size, checked, &p) == FW_PARSE_OK) {
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
		/* the fast path's IPv4 key is the generic one, side included */
		if (p.family == 4 &&
		    (fw_key_make4(&b, p.proto, p.saddr, p.daddr, p.sport, p.dport) !=
			     fw_key_make(&a, 4, p.proto, p.saddr, p.daddr, p.sport, p.dport) ||
		     memcmp(&a, &b, sizeof(a)) != 0))
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *frame = malloc(size ? size : 1);

	memcpy(frame, data, size);
	check(frame, size, 0);
	check(frame, size, FW_PARSE_IP_CSUM_GOOD); /* as a NIC that checked the sum */
	free(frame);
	return 0;
}
