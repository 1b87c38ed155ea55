/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "fw_parse.h"

#define ETH_HLEN       14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_IPV6 0x86dd
#define MAX_VLANS      2
#define MAX_IPV6_EXT   8

enum {
	IPPROTO_HOPOPTS_ = 0,
	IPPROTO_ICMP_ = 1,
	IPPROTO_TCP_ = 6,
	IPPROTO_UDP_ = 17,
	IPPROTO_ROUTING_ = 43,
	IPPROTO_FRAGMENT_ = 44,
	IPPROTO_AH_ = 51,
	IPPROTO_ICMPV6_ = 58,
	IPPROTO_DSTOPTS_ = 60,
};

#define ICMP_HDR 8 /* type, code, checksum, 4 bytes (unused, MTU, pointer) */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t raw16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * One's-complement sum of the IPv4 header, folded: 0xffff when the checksum is right. The
 * sum is byte-order independent (RFC 1071), so it adds native 32-bit words and folds once.
 */
static uint64_t word32(const uint8_t *p)
{
	uint32_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

static int ipv4_csum_ok(const uint8_t *h, uint32_t len)
{
	uint64_t sum;

	/* The header of nearly every packet, without options: five adds, no loop. */
	if (len == 20) {
		sum = word32(h) + word32(h + 4) + word32(h + 8) + word32(h + 12) + word32(h + 16);
	} else {
		sum = 0;
		for (uint32_t i = 0; i < len; i += 4)
			sum += word32(h + i);
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Inlined into both callers: it is on the path of every TCP and UDP frame. */
static inline __attribute__((always_inline)) enum fw_parse_result parse_l4(struct fw_parsed *out)
{
	out->l4_hdr_len = 0;
	out->sport = out->dport = 0;
	if (out->frag == FW_FRAG_LATER) {
		out->l4 = NULL;
		return FW_PARSE_OK;
	}
	switch (out->proto) {
	case IPPROTO_TCP_: {
		uint32_t doff;

		if (out->l4_len < 20)
			return FW_PARSE_MALFORMED;
		doff = (uint32_t)(out->l4[12] >> 4) * 4;
		if (doff < 20 || doff > out->l4_len)
			return FW_PARSE_MALFORMED;
		out->l4_hdr_len = doff;
		break;
	}
	case IPPROTO_UDP_: {
		uint32_t ulen;

		if (out->l4_len < 8)
			return FW_PARSE_MALFORMED;
		ulen = be16(out->l4 + 4);
		/* A first fragment carries only part of the datagram the length names. */
		if (ulen < 8 || (out->frag == FW_FRAG_NONE && ulen > out->l4_len))
			return FW_PARSE_MALFORMED;
		if (out->frag == FW_FRAG_NONE)
			out->l4_len = ulen;
		out->l4_hdr_len = 8;
		break;
	}
	default:
		return FW_PARSE_OK;
	}
	out->sport = raw16(out->l4);
	out->dport = raw16(out->l4 + 2);
	return FW_PARSE_OK;
}

static enum fw_parse_result parse_ipv4(const uint8_t *ip, uint32_t avail, unsigned int checked,
				       struct fw_parsed *out)
{
	uint32_t ihl, total;
	uint16_t frag;

	if (avail < 20 || (ip[0] >> 4) != 4)
		return FW_PARSE_MALFORMED;
	ihl = (uint32_t)(ip[0] & 0xf) * 4;
	total = be16(ip + 2);
	if (ihl < 20 || total < ihl || total > avail ||
	    (!(checked & FW_PARSE_IP_CSUM_GOOD) && !ipv4_csum_ok(ip, ihl)))
		return FW_PARSE_MALFORMED;
	out->family = 4;
	out->proto = ip[9];
	out->l3_opts = ihl > 20;
	out->saddr = ip + 12;
	out->daddr = ip + 16;
	frag = be16(ip + 6);
	if (frag & 0x8000) /* the reserved bit */
		return FW_PARSE_MALFORMED;
	if (frag & 0x1fff)
		out->frag = FW_FRAG_LATER;
	else if (frag & 0x2000)
		out->frag = FW_FRAG_FIRST;
	else
		out->frag = FW_FRAG_NONE;
	out->l4 = ip + ihl;
	out->l4_len = total - ihl;
	return parse_l4(out);
}

static enum fw_parse_result parse_ipv6(const uint8_t *ip, uint32_t avail, struct fw_parsed *out)
{
	uint32_t plen, off = 40;
	uint8_t nh;

	if (avail < 40 || (ip[0] >> 4) != 6)
		return FW_PARSE_MALFORMED;
	plen = be16(ip + 4);
	if (plen == 0 || 40 + plen > avail) /* jumbograms are not for this path */
		return FW_PARSE_MALFORMED;
	out->family = 6;
	out->saddr = ip + 8;
	out->daddr = ip + 24;
	out->frag = FW_FRAG_NONE;
	out->l3_opts = 0;
	nh = ip[6];
	for (int i = 0;; i++) {
		uint32_t ext;

		switch (nh) {
		case IPPROTO_HOPOPTS_:
			if (i != 0) /* hop-by-hop only right after the fixed header */
				return FW_PARSE_MALFORMED;
			/* fallthrough */
		case IPPROTO_ROUTING_:
		case IPPROTO_DSTOPTS_:
			if (off + 8 > 40 + plen)
				return FW_PARSE_MALFORMED;
			ext = ((uint32_t)ip[off + 1] + 1) * 8;
			break;
		case IPPROTO_AH_:
			if (off + 8 > 40 + plen)
				return FW_PARSE_MALFORMED;
			ext = ((uint32_t)ip[off + 1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT_: {
			uint16_t fo;

			if (off + 8 > 40 + plen || out->frag != FW_FRAG_NONE)
				return FW_PARSE_MALFORMED;
			fo = be16(ip + off + 2);
			out->frag = (fo & 0xfff8) ? FW_FRAG_LATER
				    : (fo & 1)	  ? FW_FRAG_FIRST
						  : FW_FRAG_NONE;
			ext = 8;
			break;
		}
		default:
			out->proto = nh;
			out->l4 = ip + off;
			out->l4_len = 40 + plen - off;
			return parse_l4(out);
		}
		if (i >= MAX_IPV6_EXT || off + ext > 40 + plen)
			return FW_PARSE_MALFORMED;
		out->l3_opts = 1;
		nh = ip[off];
		off += ext;
		if (out->frag == FW_FRAG_LATER) {
			out->proto = nh;
			out->l4 = NULL;
			out->l4_len = 40 + plen - off;
			return FW_PARSE_OK;
		}
	}
}

enum fw_parse_result fw_parse(const uint8_t *frame, uint32_t len, struct fw_parsed *out)
{
	return fw_parse_with(frame, len, 0, out);
}

enum fw_parse_result fw_parse_with(const uint8_t *frame, uint32_t len, unsigned int checked,
				   struct fw_parsed *out)
{
	uint32_t off = ETH_HLEN;
	uint16_t type;

	if (len < ETH_HLEN)
		return FW_PARSE_MALFORMED;
	out->vlans = 0;
	out->vlan_id = 0;
	type = be16(frame + 12);
	while (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ) {
		if (out->vlans == MAX_VLANS || off + 4 > len)
			return FW_PARSE_MALFORMED;
		out->vlan_id = be16(frame + off) & 0x0fff;
		type = be16(frame + off + 2);
		out->vlans++;
		off += 4;
	}
	out->l3_off = (uint16_t)off;
	switch (type) {
	case ETHERTYPE_ARP:
		return FW_PARSE_ARP;
	case ETHERTYPE_IPV4:
		return parse_ipv4(frame + off, len - off, checked, out);
	case ETHERTYPE_IPV6:
		return parse_ipv6(frame + off, len - off, out);
	default:
		return FW_PARSE_NON_IP;
	}
}

/* The start of the packet an ICMP error quotes, at @p ip (@p n bytes). */
static enum fw_icmp_kind quote(const uint8_t *ip, uint32_t n, uint8_t family,
			       struct fw_icmp_quote *q)
{
	uint32_t hl;

	if (family == 4) {
		if (n < 20 || (ip[0] >> 4) != 4)
			return FW_ICMP_OTHER;
		hl = (uint32_t)(ip[0] & 0xf) * 4;
		/* a later fragment's first bytes are no ports */
		if (hl < 20 || (be16(ip + 6) & 0x1fff) != 0)
			return FW_ICMP_OTHER;
		q->proto = ip[9];
		q->saddr = ip + 12;
		q->daddr = ip + 16;
	} else {
		/* The quoted packet's own extension headers are not walked: TCP or UDP right
		 * after the fixed header, as every host sends them. */
		if (n < 40 || (ip[0] >> 4) != 6)
			return FW_ICMP_OTHER;
		hl = 40;
		q->proto = ip[6];
		q->saddr = ip + 8;
		q->daddr = ip + 24;
	}
	if ((q->proto != IPPROTO_TCP_ && q->proto != IPPROTO_UDP_) || n < hl + 4)
		return FW_ICMP_OTHER;
	q->family = family;
	q->sport = raw16(ip + hl);
	q->dport = raw16(ip + hl + 2);
	return FW_ICMP_ERROR;
}

enum fw_icmp_kind fw_parse_icmp(const uint8_t *frame, const struct fw_parsed *ps,
				struct fw_icmp_quote *q)
{
	const uint8_t *m = ps->l4;
	uint8_t hop_limit;

	if (ps->frag != FW_FRAG_NONE || m == NULL || ps->l4_len < ICMP_HDR)
		return FW_ICMP_OTHER;
	if (ps->family == 4) {
		if (ps->proto != IPPROTO_ICMP_)
			return FW_ICMP_OTHER;
		switch (m[0]) {
		case 3:	 /* destination unreachable (fragmentation needed: path MTU) */
		case 11: /* time exceeded */
		case 12: /* parameter problem */
			return quote(m + ICMP_HDR, ps->l4_len - ICMP_HDR, 4, q);
		default:
			return FW_ICMP_OTHER;
		}
	}
	if (ps->proto != IPPROTO_ICMPV6_)
		return FW_ICMP_OTHER;
	hop_limit = frame[ps->l3_off + 7];
	switch (m[0]) {
	case 1: /* destination unreachable */
	case 2: /* packet too big: path MTU, which IPv6 routers never fragment for */
	case 3: /* time exceeded */
	case 4: /* parameter problem */
		return quote(m + ICMP_HDR, ps->l4_len - ICMP_HDR, 6, q);
	case 133: /* router solicitation (RFC 4861) */
	case 134: /* router advertisement */
	case 135: /* neighbour solicitation */
	case 136: /* neighbour advertisement */
	case 137: /* redirect */
		return hop_limit == 255 && m[1] == 0 ? FW_ICMP_LINK : FW_ICMP_OTHER;
	case 130: /* multicast listener query (RFC 2710, 3810) */
	case 131: /* report */
	case 132: /* done */
	case 143: /* version 2 report */
		/* link-local source, or the unspecified one (a report before an address) */
		if (hop_limit != 1 || !((ps->saddr[0] == 0xfe && (ps->saddr[1] & 0xc0) == 0x80) ||
					memcmp(ps->saddr, (const uint8_t[16]){0}, 16) == 0))
			return FW_ICMP_OTHER;
		return FW_ICMP_LINK;
	default:
		return FW_ICMP_OTHER;
	}
}
