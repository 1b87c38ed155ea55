/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frames for worker-level tests: Ethernet + IPv4 or IPv6 + TCP or UDP between the inside
 * host (198.18.0.1, or 2001:db8:18::1) at sport and the outside one (198.19.0.2, or
 * 2001:db8:19::2) at dport, in either direction, with an optional payload.
 */
#ifndef FW_TEST_FRAME_H
#define FW_TEST_FRAME_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_ip.h>

#define FW_TEST_FRAME_MAX 256

/* The two hosts' addresses per family: [0] inside, [1] outside. */
static const uint8_t fw_test_addr4[2][4] = {{198, 18, 0, 1}, {198, 19, 0, 2}};
static const uint8_t fw_test_addr6[2][16] = {
	{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x18, [15] = 1},
	{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x19, [15] = 2},
};

/** Write the frame of @p family (4 or 6) into @p f (FW_TEST_FRAME_MAX bytes).
 * @return its length. */
static inline uint32_t fw_test_frame_af(uint8_t *f, uint8_t family, uint8_t proto, uint16_t sport,
					uint16_t dport, bool reply, uint8_t flags, uint32_t seq,
					uint32_t ack, uint16_t window, const char *data)
{
	const uint32_t l3 = family == 6 ? 40 : 20;
	const uint32_t hl = proto == IPPROTO_TCP ? 20 : 8, dl = data ? (uint32_t)strlen(data) : 0;
	uint8_t *l4 = f + 14 + l3;
	uint16_t sp = htons(sport), dp = htons(dport);

	memset(f, 0, 14 + l3 + hl);
	if (family == 6) {
		uint16_t plen = htons((uint16_t)(hl + dl));

		f[12] = 0x86;
		f[13] = 0xdd;
		f[14] = 0x60;
		memcpy(f + 14 + 4, &plen, 2);
		f[14 + 6] = proto;
		f[14 + 7] = 64;
		memcpy(f + 14 + 8, fw_test_addr6[reply], 16);
		memcpy(f + 14 + 24, fw_test_addr6[!reply], 16);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);

		f[12] = 0x08;
		ip->version_ihl = 0x45;
		ip->total_length = htons((uint16_t)(20 + hl + dl));
		ip->time_to_live = 64;
		ip->next_proto_id = proto;
		memcpy(&ip->src_addr, fw_test_addr4[reply], 4);
		memcpy(&ip->dst_addr, fw_test_addr4[!reply], 4);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
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
	return 14 + l3 + hl + dl;
}

/**
 * An ICMP (@p family 4) or ICMPv6 (6) message from @p src to @p dst (4 or 16 bytes) with
 * hop limit / TTL @p hop: type, code, 4 zero bytes, then @p blen bytes of @p body (an
 * error's quoted packet, say: another test frame without its 14-byte Ethernet header).
 * @return its length.
 */
static inline uint32_t fw_test_icmp_af(uint8_t *f, uint8_t family, const uint8_t *src,
				       const uint8_t *dst, uint8_t type, uint8_t code, uint8_t hop,
				       const uint8_t *body, uint32_t blen)
{
	const uint32_t l3 = family == 6 ? 40 : 20;
	uint8_t *m = f + 14 + l3;

	if (14 + l3 + 8 + blen > FW_TEST_FRAME_MAX)
		blen = FW_TEST_FRAME_MAX - 14 - l3 - 8;
	memset(f, 0, 14 + l3 + 8);
	if (family == 6) {
		uint16_t plen = htons((uint16_t)(8 + blen));

		f[12] = 0x86;
		f[13] = 0xdd;
		f[14] = 0x60;
		memcpy(f + 14 + 4, &plen, 2);
		f[14 + 6] = 58;
		f[14 + 7] = hop;
		memcpy(f + 14 + 8, src, 16);
		memcpy(f + 14 + 24, dst, 16);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);

		f[12] = 0x08;
		ip->version_ihl = 0x45;
		ip->total_length = htons((uint16_t)(20 + 8 + blen));
		ip->time_to_live = hop;
		ip->next_proto_id = 1;
		memcpy(&ip->src_addr, src, 4);
		memcpy(&ip->dst_addr, dst, 4);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	m[0] = type;
	m[1] = code;
	if (blen)
		memcpy(m + 8, body, blen);
	return 14 + l3 + 8 + blen;
}

/** The IPv4 frame (see fw_test_frame_af). */
static inline uint32_t fw_test_frame(uint8_t *f, uint8_t proto, uint16_t sport, uint16_t dport,
				     bool reply, uint8_t flags, uint32_t seq, uint32_t ack,
				     uint16_t window, const char *data)
{
	return fw_test_frame_af(f, 4, proto, sport, dport, reply, flags, seq, ack, window, data);
}

#endif /* FW_TEST_FRAME_H */
