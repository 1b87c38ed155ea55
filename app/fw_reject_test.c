/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "fw_reject.h"

#define ROOM FW_REJECT_HEADROOM

struct frame {
	uint8_t buf[ROOM + 256];
	uint8_t *f; /* frame start, after the headroom */
	uint32_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16)), put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void v4(struct frame *fr, uint8_t proto, uint32_t l4_len)
{
	memset(fr, 0, sizeof(*fr));
	fr->f = fr->buf + ROOM;
	memset(fr->f, 0xaa, 6);
	memset(fr->f + 6, 0xbb, 6);
	put16(fr->f + 12, 0x0800);
	uint8_t *ip = fr->f + 14;
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + l4_len));
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, (uint8_t[]){198, 18, 0, 1}, 4);
	memcpy(ip + 16, (uint8_t[]){198, 19, 0, 2}, 4);
	((struct rte_ipv4_hdr *)ip)->hdr_checksum = rte_ipv4_cksum((struct rte_ipv4_hdr *)ip);
	put16(ip + 20, 40000);
	put16(ip + 22, 25);
	fr->len = 14 + 20 + l4_len;
}

static void tcp(struct frame *fr, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t payload)
{
	v4(fr, 6, 20 + payload);
	uint8_t *t = fr->f + 34;
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
}

static struct fw_parsed parse(const struct frame *fr)
{
	struct fw_parsed ps;

	assert_int_equal(fw_parse(fr->f, fr->len, &ps), FW_PARSE_OK);
	return ps;
}

static void test_reject_syn_answers_rst_ack_of_seq_plus_one(void **state)
{
	struct frame fr;
	struct fw_parsed ps, rp;
	uint32_t shift, len;

	(void)state;
	tcp(&fr, RTE_TCP_SYN_FLAG, 1000, 0, 0);
	ps = parse(&fr);
	assert_int_equal(fw_reject_build(fr.f, fr.len, &ps, &shift, &len), 0);
	assert_int_equal(shift, 0);
	assert_int_equal(len, 54);
	rp = parse(&(struct frame){.f = fr.f, .len = len});
	assert_int_equal(fr.f[0], 0xbb); /* back to the sender */
	assert_int_equal(rp.saddr[3], 2);
	assert_int_equal(rp.daddr[3], 1);
	assert_int_equal(rp.sport, htons(25));
	assert_int_equal(rp.dport, htons(40000));
	assert_int_equal(rp.l4[13], RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
	assert_int_equal(get32(rp.l4 + 4), 0);
	assert_int_equal(get32(rp.l4 + 8), 1001);
	{
		/* A segment with a right checksum sums, pseudo-header included, to 0xffff. */
		uint32_t sum = rte_ipv4_phdr_cksum((const struct rte_ipv4_hdr *)(fr.f + 14), 0) +
			       rte_raw_cksum(rp.l4, rp.l4_len);

		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		assert_int_equal(sum, 0xffff);
	}
}

static void test_reject_ack_answers_rst_at_its_ack(void **state)
{
	struct frame fr;
	struct fw_parsed ps, rp;
	uint32_t shift, len;

	(void)state;
	tcp(&fr, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 1000, 777777, 30);
	ps = parse(&fr);
	assert_int_equal(fw_reject_build(fr.f, fr.len, &ps, &shift, &len), 0);
	rp = parse(&(struct frame){.f = fr.f, .len = len});
	assert_int_equal(rp.l4[13], RTE_TCP_RST_FLAG);
	assert_int_equal(get32(rp.l4 + 4), 777777);
	assert_int_equal(rp.l4_len, 20); /* payload not echoed */
}

static void test_reject_never_answers_rst_or_icmp(void **state)
{
	struct frame fr;
	struct fw_parsed ps;
	uint32_t shift, len;

	(void)state;
	tcp(&fr, RTE_TCP_RST_FLAG, 1, 0, 0);
	ps = parse(&fr);
	assert_int_equal(fw_reject_build(fr.f, fr.len, &ps, &shift, &len), -EINVAL);
	v4(&fr, 1, 8);
	ps = parse(&fr);
	assert_int_equal(fw_reject_build(fr.f, fr.len, &ps, &shift, &len), -EINVAL);
}

static void test_reject_udp_answers_icmp_port_unreachable_quoting_the_header(void **state)
{
	struct frame fr;
	struct fw_parsed ps, rp;
	uint8_t orig[28];
	uint32_t shift, len;
	uint8_t *r;

	(void)state;
	v4(&fr, 17, 8 + 12);
	put16(fr.f + 34 + 4, 20);
	memcpy(orig, fr.f + 14, sizeof(orig));
	ps = parse(&fr);
	assert_int_equal(fw_reject_build(fr.f, fr.len, &ps, &shift, &len), 0);
	assert_int_equal(shift, 28);
	r = fr.f - shift;
	assert_int_equal(len, 14 + 20 + 8 + 28);
	rp = parse(&(struct frame){.f = r, .len = len});
	assert_int_equal(rp.proto, 1);
	assert_int_equal(rp.saddr[3], 2);
	assert_int_equal(rp.l4[0], 3);
	assert_int_equal(rp.l4[1], 3);
	assert_int_equal(rte_raw_cksum(rp.l4, 8 + 28), 0xffff);
	assert_memory_equal(rp.l4 + 8, orig, sizeof(orig));
}

static void test_reject_udp6_answers_icmp6_with_pseudo_header_checksum(void **state)
{
	struct frame fr;
	struct fw_parsed ps, rp;
	uint32_t shift, len, sum;
	uint8_t *ip;

	(void)state;
	memset(&fr, 0, sizeof(fr));
	fr.f = fr.buf + ROOM;
	put16(fr.f + 12, 0x86dd);
	ip = fr.f + 14;
	ip[0] = 0x60;
	put16(ip + 4, 8);
	ip[6] = 17;
	ip[7] = 64;
	ip[8] = 0x20, ip[23] = 1;
	ip[24] = 0x20, ip[39] = 2;
	put16(ip + 40 + 4, 8);
	fr.len = 14 + 48;
	ps = parse(&fr);
	assert_int_equal(fw_reject_build(fr.f, fr.len, &ps, &shift, &len), 0);
	rp = parse(&(struct frame){.f = fr.f - shift, .len = len});
	assert_int_equal(rp.proto, 58);
	assert_int_equal(rp.l4[0], 1);
	assert_int_equal(rp.l4[1], 4);
	assert_int_equal(rp.saddr[15], 2);
	sum = rte_ipv6_phdr_cksum((const struct rte_ipv6_hdr *)(fr.f - shift + 14), 0) +
	      rte_raw_cksum(rp.l4, rp.l4_len);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	assert_int_equal(sum, 0xffff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reject_syn_answers_rst_ack_of_seq_plus_one),
		cmocka_unit_test(test_reject_ack_answers_rst_at_its_ack),
		cmocka_unit_test(test_reject_never_answers_rst_or_icmp),
		cmocka_unit_test(test_reject_udp_answers_icmp_port_unreachable_quoting_the_header),
		cmocka_unit_test(test_reject_udp6_answers_icmp6_with_pseudo_header_checksum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
