/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "fw_reject.h"

#define ICMP_UNREACH	   3
#define ICMP_PORT_UNREACH  3
#define ICMP6_DST_UNREACH  1
#define ICMP6_PORT_UNREACH 4
/* ICMP errors quote the offending header and 8 bytes of payload (RFC 792). */
#define ICMP4_QUOTE 8
/* ICMPv6 errors quote as much as fits the minimum MTU; 64 bytes say enough here. */
#define ICMP6_QUOTE 64

static void swap_l2(uint8_t *frame)
{
	struct rte_ether_addr t;
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;

	t = eth->src_addr;
	eth->src_addr = eth->dst_addr;
	eth->dst_addr = t;
}

static void swap_l3(uint8_t *ip, uint8_t family)
{
	uint8_t t[16];
	const size_t alen = family == 4 ? 4 : 16;
	uint8_t *s = ip + (family == 4 ? 12 : 8), *d = s + alen;

	memcpy(t, s, alen);
	memcpy(s, d, alen);
	memcpy(d, t, alen);
}

/* RST answering the segment (RFC 793, "reset generation"). */
static int tcp_rst(uint8_t *frame, const struct fw_parsed *ps, uint32_t *out_len)
{
	uint8_t *ip = frame + ps->l3_off;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(uintptr_t)ps->l4;
	const uint32_t seg_len = ps->l4_len - ps->l4_hdr_len +
				 !!(th->tcp_flags & RTE_TCP_SYN_FLAG) +
				 !!(th->tcp_flags & RTE_TCP_FIN_FLAG);
	uint16_t port;

	if (th->tcp_flags & RTE_TCP_RST_FLAG)
		return -EINVAL;
	if (th->tcp_flags & RTE_TCP_ACK_FLAG) {
		th->sent_seq = th->recv_ack;
		th->recv_ack = 0;
		th->tcp_flags = RTE_TCP_RST_FLAG;
	} else {
		th->recv_ack = rte_cpu_to_be_32(rte_be_to_cpu_32(th->sent_seq) + seg_len);
		th->sent_seq = 0;
		th->tcp_flags = RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG;
	}
	port = th->src_port;
	th->src_port = th->dst_port;
	th->dst_port = port;
	th->data_off = (sizeof(*th) / 4) << 4;
	th->rx_win = 0;
	th->tcp_urp = 0;
	th->cksum = 0;
	swap_l2(frame);
	swap_l3(ip, ps->family);
	if (ps->family == 4) {
		struct rte_ipv4_hdr *v4 = (struct rte_ipv4_hdr *)ip;

		/* Options, if any, are not echoed: the reply has a plain 20-byte header. */
		if ((v4->version_ihl & 0xf) != 5)
			memmove(ip + 20, th, sizeof(*th)), th = (struct rte_tcp_hdr *)(ip + 20);
		v4->version_ihl = 0x45;
		v4->type_of_service = 0;
		v4->total_length = rte_cpu_to_be_16(20 + sizeof(*th));
		v4->packet_id = 0;
		v4->fragment_offset = 0;
		v4->time_to_live = 64;
		v4->hdr_checksum = 0;
		v4->hdr_checksum = rte_ipv4_cksum(v4);
		th->cksum = rte_ipv4_udptcp_cksum(v4, th);
		*out_len = ps->l3_off + 20 + sizeof(*th);
	} else {
		struct rte_ipv6_hdr *v6 = (struct rte_ipv6_hdr *)ip;

		if ((const uint8_t *)th != ip + 40) /* extension headers are not echoed */
			memmove(ip + 40, th, sizeof(*th)), th = (struct rte_tcp_hdr *)(ip + 40);
		v6->vtc_flow = rte_cpu_to_be_32(6u << 28);
		v6->proto = IPPROTO_TCP;
		v6->payload_len = rte_cpu_to_be_16(sizeof(*th));
		v6->hop_limits = 64;
		th->cksum = rte_ipv6_udptcp_cksum(v6, th);
		*out_len = ps->l3_off + 40 + sizeof(*th);
	}
	return 0;
}

static int icmp4_unreach(uint8_t *frame, uint32_t len, const struct fw_parsed *ps, uint32_t *shift,
			 uint32_t *out_len)
{
	const uint32_t hl = 20 + sizeof(struct rte_icmp_hdr);
	uint8_t *old_ip = frame + ps->l3_off;
	const struct rte_ipv4_hdr *o = (const struct rte_ipv4_hdr *)old_ip;
	uint32_t quote = (uint32_t)(o->version_ihl & 0xf) * 4 + ICMP4_QUOTE;
	uint8_t *nf = frame - hl; /* new frame start */
	struct rte_ipv4_hdr *ip;
	struct rte_icmp_hdr *ic;

	if (ps->proto == IPPROTO_ICMP)
		return -EINVAL; /* never answer an ICMP message with an error */
	if (quote > len - ps->l3_off)
		quote = len - ps->l3_off;
	memmove(nf, frame, ps->l3_off); /* L2 (with its tags) moves to the front */
	swap_l2(nf);
	ip = (struct rte_ipv4_hdr *)(nf + ps->l3_off);
	ic = (struct rte_icmp_hdr *)(ip + 1);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(hl + quote));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_ICMP;
	memcpy(&ip->src_addr, old_ip + 16, 4);
	memcpy(&ip->dst_addr, old_ip + 12, 4);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	memset(ic, 0, sizeof(*ic));
	ic->icmp_type = ICMP_UNREACH;
	ic->icmp_code = ICMP_PORT_UNREACH;
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, sizeof(*ic) + quote);
	*shift = hl;
	*out_len = ps->l3_off + hl + quote;
	return 0;
}

static int icmp6_unreach(uint8_t *frame, uint32_t len, const struct fw_parsed *ps, uint32_t *shift,
			 uint32_t *out_len)
{
	const uint32_t hl = 40 + 8;
	uint8_t *old_ip = frame + ps->l3_off;
	uint32_t quote = len - ps->l3_off < 40 + ICMP6_QUOTE ? len - ps->l3_off : 40 + ICMP6_QUOTE;
	uint8_t *nf = frame - hl;
	struct rte_ipv6_hdr *ip;
	uint8_t *ic;
	uint32_t sum;
	uint16_t csum;

	if (ps->proto == 58 /* ICMPv6 */)
		return -EINVAL;
	memmove(nf, frame, ps->l3_off);
	swap_l2(nf);
	ip = (struct rte_ipv6_hdr *)(nf + ps->l3_off);
	ic = (uint8_t *)(ip + 1);
	memset(ip, 0, sizeof(*ip));
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)(8 + quote));
	ip->proto = 58;
	ip->hop_limits = 64;
	memcpy(ip->src_addr, old_ip + 24, 16);
	memcpy(ip->dst_addr, old_ip + 8, 16);
	memset(ic, 0, 8);
	ic[0] = ICMP6_DST_UNREACH;
	ic[1] = ICMP6_PORT_UNREACH;
	/* Checksum over the pseudo-header and the message (RFC 4443 section 2.3). */
	sum = rte_ipv6_phdr_cksum(ip, 0) + rte_raw_cksum(ic, 8 + quote);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	/* rte_raw_cksum sums host-order words: the result goes back as a host-order word. */
	csum = (uint16_t)~sum;
	memcpy(ic + 2, &csum, sizeof(csum));
	*shift = hl;
	*out_len = ps->l3_off + hl + quote;
	return 0;
}

int fw_reject_build(uint8_t *frame, uint32_t len, const struct fw_parsed *ps, uint32_t *shift,
		    uint32_t *out_len)
{
	*shift = 0;
	if (ps->frag == FW_FRAG_LATER)
		return -EINVAL;
	if (ps->proto == IPPROTO_TCP)
		return tcp_rst(frame, ps, out_len);
	return ps->family == 4 ? icmp4_unreach(frame, len, ps, shift, out_len)
			       : icmp6_unreach(frame, len, ps, shift, out_len);
}
