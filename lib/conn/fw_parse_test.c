/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fw_parse.h"

struct frame {
	uint8_t b[256];
	uint32_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void eth(struct frame *f, uint16_t type)
{
	memset(f, 0, sizeof(*f));
	memset(f->b, 0x02, 12);
	put16(f->b + 12, type);
	f->len = 14;
}

static void ipv4_csum(uint8_t *ip, uint32_t ihl)
{
	uint32_t sum = 0;

	put16(ip + 10, 0);
	for (uint32_t i = 0; i < ihl; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, (uint16_t)~sum);
}

/* IPv4 + TCP (20-byte header) + @p payload bytes, with @p opt_words of IP options. */
static void ipv4_tcp(struct frame *f, uint32_t opt_words, uint32_t payload, uint16_t frag)
{
	uint8_t *ip = f->b + f->len;
	uint32_t ihl = 20 + 4 * opt_words;
	uint8_t *tcp = ip + ihl;

	ip[0] = (uint8_t)(0x40 | (ihl / 4));
	put16(ip + 2, (uint16_t)(ihl + 20 + payload));
	put16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, (uint8_t[]){198, 18, 0, 1}, 4);
	memcpy(ip + 16, (uint8_t[]){198, 19, 0, 2}, 4);
	for (uint32_t i = 0; i < opt_words * 4; i++)
		ip[20 + i] = 1; /* NOP options */
	ipv4_csum(ip, ihl);
	put16(tcp, 40000);
	put16(tcp + 2, 80);
	tcp[12] = 5 << 4;
	tcp[13] = 0x02;
	f->len += ihl + 20 + payload;
}

static void ipv6_udp(struct frame *f, const uint8_t *ext, uint32_t ext_len, uint8_t first_nh)
{
	uint8_t *ip = f->b + f->len;
	uint8_t *udp = ip + 40 + ext_len;

	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)(ext_len + 8 + 4));
	ip[6] = first_nh;
	ip[7] = 64;
	ip[8] = 0x20, ip[9] = 0x01, ip[23] = 1;
	ip[24] = 0x20, ip[25] = 0x01, ip[39] = 2;
	if (ext_len)
		memcpy(ip + 40, ext, ext_len);
	put16(udp, 5353);
	put16(udp + 2, 53);
	put16(udp + 4, 12);
	f->len += 40 + ext_len + 12;
}

/* Parse from a heap copy of exactly @p len bytes, so ASan sees any read past the end. */
static enum fw_parse_result parse_exact(const struct frame *f, uint32_t len, struct fw_parsed *p)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum fw_parse_result r;

	memcpy(copy, f->b, len);
	r = fw_parse(copy, len, p);
	free(copy);
	return r;
}

static void test_parse_ipv4_tcp(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 10, 0);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.proto, 6);
	assert_int_equal(p.frag, FW_FRAG_NONE);
	assert_int_equal(p.l3_opts, 0);
	assert_int_equal(p.l4_len, 30);
	assert_int_equal(p.l4_hdr_len, 20);
	assert_int_equal(ntohs(p.sport), 40000);
	assert_int_equal(ntohs(p.dport), 80);
	assert_int_equal(p.saddr[0], 198);
	assert_int_equal(p.daddr[1], 19);
}

static void test_parse_ignores_ethernet_padding(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 0, 0);
	f.len = 60; /* padded to the Ethernet minimum */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.l4_len, 20);
}

static void test_parse_ipv4_options_are_reported(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0800);
	ipv4_tcp(&f, 2, 0, 0);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.l3_opts, 1);
	assert_int_equal(ntohs(p.dport), 80);
}

static void test_parse_ipv4_bad_header_checksum_is_malformed(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 0, 0);
	f.b[14 + 8] = 1; /* TTL changed, checksum not */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
}

static void test_parse_ipv4_fragments(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 8, 0x2000); /* MF, offset 0 */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.frag, FW_FRAG_FIRST);
	assert_int_equal(ntohs(p.dport), 80);
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 8, 0x0003); /* offset 24 bytes */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.frag, FW_FRAG_LATER);
	assert_null(p.l4);
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 0, 0x8000); /* reserved bit */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
}

static void test_parse_vlan_and_qinq(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x88a8);
	put16(f.b + 14, 100);
	put16(f.b + 16, 0x8100);
	put16(f.b + 18, 0x2000 | 42);
	put16(f.b + 20, 0x0800);
	f.len = 22;
	ipv4_tcp(&f, 0, 0, 0);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.vlans, 2);
	assert_int_equal(p.vlan_id, 42);
	assert_int_equal(p.l3_off, 22);
	/* A third tag is more than this path accepts. */
	eth(&f, 0x8100);
	put16(f.b + 16, 0x8100);
	put16(f.b + 20, 0x8100);
	put16(f.b + 24, 0x0800);
	f.len = 26;
	ipv4_tcp(&f, 0, 0, 0);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
}

static void test_parse_arp_and_other_ethertypes(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0806);
	f.len = 42;
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_ARP);
	eth(&f, 0x88cc); /* LLDP */
	f.len = 60;
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_NON_IP);
}

static void test_parse_ipv6_extension_headers(void **state)
{
	/* hop-by-hop (8 bytes) then destination options (8 bytes) then UDP */
	const uint8_t ext[16] = {60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0};
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x86dd);
	ipv6_udp(&f, ext, sizeof(ext), 0);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.family, 6);
	assert_int_equal(p.proto, 17);
	assert_int_equal(p.l3_opts, 1);
	assert_int_equal(ntohs(p.dport), 53);
	assert_int_equal(p.l4_len, 12);
}

static void test_parse_ipv6_hop_by_hop_must_come_first(void **state)
{
	const uint8_t ext[16] = {0, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0};
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x86dd);
	ipv6_udp(&f, ext, sizeof(ext), 60);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
}

static void test_parse_ipv6_fragments(void **state)
{
	uint8_t first[8] = {17, 0, 0x00, 0x01, 0, 0, 0, 7}; /* offset 0, M */
	uint8_t later[8] = {17, 0, 0x00, 0x10, 0, 0, 0, 7}; /* offset 2 (16 bytes) */
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x86dd);
	ipv6_udp(&f, first, sizeof(first), 44);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.frag, FW_FRAG_FIRST);
	assert_int_equal(ntohs(p.dport), 53);
	eth(&f, 0x86dd);
	ipv6_udp(&f, later, sizeof(later), 44);
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
	assert_int_equal(p.frag, FW_FRAG_LATER);
	assert_int_equal(p.proto, 17);
	assert_null(p.l4);
}

static void test_parse_inconsistent_l4_lengths_are_malformed(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 0, 0);
	f.b[14 + 20 + 12] = 15 << 4; /* data offset 60 > 20 bytes present */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 0, 0);
	f.b[14 + 20 + 12] = 4 << 4; /* data offset below 20 */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
	eth(&f, 0x86dd);
	ipv6_udp(&f, NULL, 0, 17);
	put16(f.b + 14 + 40 + 4, 40); /* UDP length beyond the payload */
	assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
}

/* Every truncation of every valid frame is refused without reading past its end. */
static void test_parse_every_truncation_is_safe(void **state)
{
	const uint8_t ext[16] = {60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0};
	struct frame frames[3];
	struct fw_parsed p;

	(void)state;
	eth(&frames[0], 0x0800);
	ipv4_tcp(&frames[0], 3, 16, 0);
	eth(&frames[1], 0x86dd);
	ipv6_udp(&frames[1], ext, sizeof(ext), 0);
	eth(&frames[2], 0x8100);
	put16(frames[2].b + 16, 0x0800);
	frames[2].len = 18;
	ipv4_tcp(&frames[2], 0, 4, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(parse_exact(&frames[i], frames[i].len, &p), FW_PARSE_OK);
		for (uint32_t len = 0; len < frames[i].len; len++)
			assert_int_equal(parse_exact(&frames[i], len, &p), FW_PARSE_MALFORMED);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ipv4_tcp),
		cmocka_unit_test(test_parse_ignores_ethernet_padding),
		cmocka_unit_test(test_parse_ipv4_options_are_reported),
		cmocka_unit_test(test_parse_ipv4_bad_header_checksum_is_malformed),
		cmocka_unit_test(test_parse_ipv4_fragments),
		cmocka_unit_test(test_parse_vlan_and_qinq),
		cmocka_unit_test(test_parse_arp_and_other_ethertypes),
		cmocka_unit_test(test_parse_ipv6_extension_headers),
		cmocka_unit_test(test_parse_ipv6_hop_by_hop_must_come_first),
		cmocka_unit_test(test_parse_ipv6_fragments),
		cmocka_unit_test(test_parse_inconsistent_l4_lengths_are_malformed),
		cmocka_unit_test(test_parse_every_truncation_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
