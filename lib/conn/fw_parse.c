/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "fw_parse.h"

#define MAX_IPV6_EXT 8

enum {
	IPPROTO_HOPOPTS_ = 0,
	IPPROTO_ICMP_ = 1,
	IPPROTO_TCP_ = FW_PARSE_TCP,
	IPPROTO_UDP_ = FW_PARSE_UDP,
	IPPROTO_ROUTING_ = 43,
	IPPROTO_FRAGMENT_ = 44,
	IPPROTO_AH_ = 51,
	IPPROTO_ICMPV6_ = 58,
	IPPROTO_DSTOPTS_ = 60,
};

#define ICMP_HDR 8 /* type, code, checksum, 4 bytes (unused, MTU, pointer) */

enum fw_parse_result fw_parse_ipv6(const uint8_t *ip, uint32_t avail, struct fw_parsed *out)
{
	uint32_t plen, off = 40;
	uint8_t nh;

	if (avail < 40 || (ip[0] >> 4) != 6)
		return FW_PARSE_MALFORMED;
	plen = fw_parse_be16(ip + 4);
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
			fo = fw_parse_be16(ip + off + 2);
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
			return fw_parse_l4(out);
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
		if (hl < 20 || (fw_parse_be16(ip + 6) & 0x1fff) != 0)
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
	q->sport = fw_parse_raw16(ip + hl);
	q->dport = fw_parse_raw16(ip + hl + 2);
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
