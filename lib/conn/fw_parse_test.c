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

/*
 * The sum covers every byte of the header, with options (the loop) and without (five
 * words summed straight): a bit flipped anywhere in it is a malformed frame.
 */
static void test_parse_ipv4_checksum_covers_every_header_byte(void **state)
{
	(void)state;
	for (uint32_t opt_words = 0; opt_words <= 2; opt_words += 2) {
		for (uint32_t i = 0; i < 20 + 4 * opt_words; i++) {
			struct frame f;
			struct fw_parsed p;

			eth(&f, 0x0800);
			ipv4_tcp(&f, opt_words, 0, 0);
			assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_OK);
			f.b[14 + i] ^= 0x10;
			assert_int_equal(fw_parse(f.b, f.len, &p), FW_PARSE_MALFORMED);
		}
	}
}

/*
 * A checksum the NIC vouched for is not summed again; every other check still holds (a
 * header claiming more bytes than the frame has stays malformed).
 */
static void test_parse_ipv4_checksum_vouched_for_by_the_nic_is_not_summed(void **state)
{
	struct frame f;
	struct fw_parsed p;

	(void)state;
	eth(&f, 0x0800);
	ipv4_tcp(&f, 0, 0, 0);
	f.b[14 + 8] = 1; /* TTL changed, checksum not: only a recount would tell */
	assert_int_equal(fw_parse_with(f.b, f.len, FW_PARSE_IP_CSUM_GOOD, &p), FW_PARSE_OK);
	assert_int_equal(fw_parse_with(f.b, f.len, 0, &p), FW_PARSE_MALFORMED);
	put16(f.b + 14 + 2, (uint16_t)(f.len - 14 + 1)); /* total length past the frame */
	assert_int_equal(fw_parse_with(f.b, f.len, FW_PARSE_IP_CSUM_GOOD, &p), FW_PARSE_MALFORMED);
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

/*
 * An ICMP (@p family 4) or ICMPv6 message of @p type / @p code, hop limit @p hop, whose body
 * quotes @p quote_len bytes of a TCP packet from 198.18.0.1 / 2001::1 port 40000 to port
 * 80 (its IP header, then the TCP header).
 */
static void icmp_msg(struct frame *f, uint8_t family, uint8_t type, uint8_t code, uint8_t hop,
		     uint32_t quote_len)
{
	struct frame q;
	uint8_t *ip;
	uint32_t l3 = family == 4 ? 20 : 40;

	if (family == 4) {
		eth(&q, 0x0800);
		ipv4_tcp(&q, 0, 0, 0);
	} else {
		eth(&q, 0x86dd);
		ipv6_udp(&q, NULL, 0, 6); /* the same layout with TCP's protocol number */
		put16(q.b + 14 + 40, 40000);
		put16(q.b + 14 + 40 + 2, 80);
	}
	eth(f, family == 4 ? 0x0800 : 0x86dd);
	ip = f->b + f->len;
	if (family == 4) {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + 8 + quote_len));
		ip[8] = hop;
		ip[9] = 1;
		memcpy(ip + 12, (uint8_t[]){198, 19, 255, 254}, 4);
		memcpy(ip + 16, (uint8_t[]){198, 18, 0, 1}, 4);
		ipv4_csum(ip, 20);
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(8 + quote_len));
		ip[6] = 58;
		ip[7] = hop;
		ip[8] = 0xfe, ip[9] = 0x80, ip[23] = 9;
		ip[24] = 0x20, ip[25] = 0x01, ip[39] = 1;
	}
	ip[l3] = type;
	ip[l3 + 1] = code;
	memcpy(ip + l3 + 8, q.b + 14, quote_len);
	f->len += l3 + 8 + quote_len;
}

static enum fw_icmp_kind icmp_kind(const struct frame *f, struct fw_icmp_quote *q)
{
	struct fw_parsed p;

	assert_int_equal(fw_parse(f->b, f->len, &p), FW_PARSE_OK);
	return fw_parse_icmp(f->b, &p, q);
}

static void test_parse_icmp_kinds(void **state)
{
	struct fw_icmp_quote q;
	struct frame f;

	(void)state;
	/* neighbour discovery: hop limit 255 and code 0, nothing else */
	for (uint8_t t = 133; t <= 137; t++) {
		icmp_msg(&f, 6, t, 0, 255, 0);
		assert_int_equal(icmp_kind(&f, &q), FW_ICMP_LINK);
	}
	icmp_msg(&f, 6, 135, 0, 254, 0);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	icmp_msg(&f, 6, 135, 1, 255, 0);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	/* multicast listener discovery: hop limit 1 from a link-local source */
	icmp_msg(&f, 6, 143, 0, 1, 0);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_LINK);
	icmp_msg(&f, 6, 131, 0, 2, 0);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	icmp_msg(&f, 6, 131, 0, 1, 0);
	f.b[14 + 8] = 0x20; /* a global source */
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	/* echo is for the rules, and ICMPv4 has no link signalling (ARP does that) */
	icmp_msg(&f, 6, 128, 0, 64, 0);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	icmp_msg(&f, 4, 8, 0, 64, 0);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	/* errors name the quoted packet */
	icmp_msg(&f, 6, 2, 0, 64, 40 + 8);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_ERROR);
	assert_true(q.family == 6 && q.proto == 6 && ntohs(q.sport) == 40000 &&
		    ntohs(q.dport) == 80);
	assert_true(q.saddr == f.b + 14 + 48 + 8 && q.daddr == f.b + 14 + 48 + 24);
	icmp_msg(&f, 4, 3, 4, 64, 20 + 8);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_ERROR);
	assert_true(q.family == 4 && q.proto == 6 && ntohs(q.dport) == 80);
	assert_int_equal(q.saddr[3], 1);
	/* ... only with its ports there, no later fragment, TCP or UDP */
	icmp_msg(&f, 6, 1, 4, 64, 40 + 3);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	icmp_msg(&f, 4, 11, 0, 64, 20 + 8);
	put16(f.b + 14 + 28 + 6, 0x0010); /* the quoted packet: offset 128 */
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	icmp_msg(&f, 4, 12, 0, 64, 20 + 8);
	f.b[14 + 28 + 9] = 47; /* GRE */
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	icmp_msg(&f, 6, 3, 0, 64, 40 + 8);
	f.b[14 + 48] = 0x40; /* an IPv4 header quoted in ICMPv6 */
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	/* not ICMP of its own family */
	eth(&f, 0x86dd);
	ipv6_udp(&f, NULL, 0, 17);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
	icmp_msg(&f, 4, 3, 4, 64, 20 + 8);
	f.b[14 + 9] = 58;
	ipv4_csum(f.b + 14, 20);
	assert_int_equal(icmp_kind(&f, &q), FW_ICMP_OTHER);
}

/* An ICMP error quoting anything from nothing to a whole header and more is classified
 * without reading past the datagram: parsed from exact-length copies (ASan). */
static void test_parse_icmp_short_quotes_are_safe(void **state)
{
	(void)state;
	for (uint8_t family = 4; family <= 6; family += 2) {
		const uint32_t need = (family == 4 ? 20 : 40) + 4; /* IP header and ports */

		for (uint32_t n = 0; n <= need + 4; n++) {
			struct fw_icmp_quote q;
			struct fw_parsed p;
			struct frame f;
			uint8_t *copy;

			icmp_msg(&f, family, family == 4 ? 3 : 2, family == 4 ? 4 : 0, 64, n);
			copy = malloc(f.len);
			memcpy(copy, f.b, f.len);
			assert_int_equal(fw_parse(copy, f.len, &p), FW_PARSE_OK);
			assert_int_equal(fw_parse_icmp(copy, &p, &q),
					 n >= need ? FW_ICMP_ERROR : FW_ICMP_OTHER);
			free(copy);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ipv4_tcp),
		cmocka_unit_test(test_parse_ignores_ethernet_padding),
		cmocka_unit_test(test_parse_ipv4_options_are_reported),
		cmocka_unit_test(test_parse_ipv4_bad_header_checksum_is_malformed),
		cmocka_unit_test(test_parse_ipv4_checksum_covers_every_header_byte),
		cmocka_unit_test(test_parse_ipv4_checksum_vouched_for_by_the_nic_is_not_summed),
		cmocka_unit_test(test_parse_ipv4_fragments),
		cmocka_unit_test(test_parse_vlan_and_qinq),
		cmocka_unit_test(test_parse_arp_and_other_ethertypes),
		cmocka_unit_test(test_parse_ipv6_extension_headers),
		cmocka_unit_test(test_parse_ipv6_hop_by_hop_must_come_first),
		cmocka_unit_test(test_parse_ipv6_fragments),
		cmocka_unit_test(test_parse_inconsistent_l4_lengths_are_malformed),
		cmocka_unit_test(test_parse_every_truncation_is_safe),
		cmocka_unit_test(test_parse_icmp_kinds),
		cmocka_unit_test(test_parse_icmp_short_quotes_are_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
