/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frames for worker-level tests: Ethernet + IPv4 + TCP or UDP between 198.18.0.1:sport
 * (the inside host) and 198.19.0.2:dport, in either direction, with an optional payload.
 */
#ifndef FW_TEST_FRAME_H
#define FW_TEST_FRAME_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_ip.h>

#define FW_TEST_FRAME_MAX 256

/** Write the frame into @p f (FW_TEST_FRAME_MAX bytes). @return its length. */
static inline uint32_t fw_test_frame(uint8_t *f, uint8_t proto, uint16_t sport, uint16_t dport,
				     bool reply, uint8_t flags, uint32_t seq, uint32_t ack,
				     uint16_t window, const char *data)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);
	uint8_t *l4 = (uint8_t *)(ip + 1);
	const uint32_t hl = proto == IPPROTO_TCP ? 20 : 8, dl = data ? (uint32_t)strlen(data) : 0;
	uint32_t a = htonl(0xc6120001), z = htonl(0xc6130002);
	uint16_t sp = htons(sport), dp = htons(dport);

	memset(f, 0, 14 + 20 + hl);
	f[12] = 0x08;
	ip->version_ihl = 0x45;
	ip->total_length = htons((uint16_t)(20 + hl + dl));
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = reply ? z : a;
	ip->dst_addr = reply ? a : z;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	memcpy(l4, reply ? &dp : &sp, 2);
	memcpy(l4 + 2, reply ? &sp : &dp, 2);
	if (proto == IPPROTO_TCP) {
		uint32_t s = htonl(seq), k = htonl(ack);
		uint16_t w = htons(window);

		memcpy(l4 + 4, &s, 4);
		memcpy(l4 + 8, &k, 4);
		l4[12] = 5 << 4;
		l4[13] = flags;
		memcpy(l4 + 14, &w, 2);
	} else {
		l4[5] = (uint8_t)(8 + dl);
	}
	if (dl)
		memcpy(l4 + hl, data, dl);
	return 14 + 20 + hl + dl;
}

#endif /* FW_TEST_FRAME_H */
