/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame parser of the fast path: Ethernet, up to two VLAN tags, ARP, IPv4 (options),
 * IPv6 (extension headers), fragments, TCP and UDP; and, asked separately, what an ICMP or
 * ICMPv6 message is. It reads only bytes it has checked are there, and says what it found;
 * policy (drop options, drop fragments) is the caller's. Private to the firewall.
 */
#ifndef FW_PARSE_H
#define FW_PARSE_H

#include <stdint.h>
#include <string.h>

enum fw_parse_result {
	FW_PARSE_OK = 0,    /**< IPv4/IPv6, fields below valid */
	FW_PARSE_ARP,	    /**< ARP frame */
	FW_PARSE_NON_IP,    /**< other ethertype */
	FW_PARSE_MALFORMED, /**< truncated or inconsistent headers */
};

enum fw_frag {
	FW_FRAG_NONE = 0,
	FW_FRAG_FIRST, /**< offset 0, more fragments: carries the L4 header */
	FW_FRAG_LATER, /**< offset > 0: no L4 header */
};

struct fw_parsed {
	uint8_t family;	      /**< 4 or 6 */
	uint8_t proto;	      /**< final upper-layer protocol */
	uint8_t frag;	      /**< enum fw_frag */
	uint8_t l3_opts;      /**< IPv4 options or IPv6 extension headers present */
	uint8_t vlans;	      /**< tags seen (0..2) */
	uint16_t vlan_id;     /**< innermost tag's VLAN id */
	uint16_t l3_off;      /**< offset of the IP header in the frame */
	const uint8_t *saddr; /**< points into the frame */
	const uint8_t *daddr;
	const uint8_t *l4;   /**< transport header (NULL for FW_FRAG_LATER) */
	uint32_t l4_len;     /**< bytes from l4 to the end of the IP payload */
	uint32_t l4_hdr_len; /**< TCP data offset * 4, UDP 8, else 0 */
	uint16_t sport;	     /**< network order; 0 for other protocols */
	uint16_t dport;
};

/** What the NIC checked already (fw_parse_with). */
#define FW_PARSE_IP_CSUM_GOOD 0x01 /**< the IPv4 header checksum is right: not summed again */

/**
 * Parse the @p len bytes of a frame. @p out is filled only as far as it says.
 */
enum fw_parse_result fw_parse(const uint8_t *frame, uint32_t len, struct fw_parsed *out);

/*
 * fw_parse_with() and what it calls for IPv4, inline: the worker's burst loop parses every
 * frame, and a call into fw_parse.c stored every field to memory for classify() to load
 * again. IPv6 stays a call (fw_parse_ipv6).
 */
#define FW_PARSE_ETH_HLEN  14
#define FW_PARSE_ETH_IPV4  0x0800
#define FW_PARSE_ETH_ARP   0x0806
#define FW_PARSE_ETH_VLAN  0x8100
#define FW_PARSE_ETH_QINQ  0x88a8
#define FW_PARSE_ETH_IPV6  0x86dd
#define FW_PARSE_MAX_VLANS 2
#define FW_PARSE_TCP	   6
#define FW_PARSE_UDP	   17

static inline uint16_t fw_parse_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint16_t fw_parse_raw16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * One's-complement sum of the IPv4 header, folded: 0xffff when the checksum is right. The
 * sum is byte-order independent (RFC 1071), so it adds native 32-bit words and folds once.
 */
static inline uint64_t fw_parse_word32(const uint8_t *p)
{
	uint32_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

static inline int fw_parse_ipv4_csum_ok(const uint8_t *h, uint32_t len)
{
	uint64_t sum;

	/* The header of nearly every packet, without options: five adds, no loop. */
	if (len == 20) {
		sum = fw_parse_word32(h) + fw_parse_word32(h + 4) + fw_parse_word32(h + 8) +
		      fw_parse_word32(h + 12) + fw_parse_word32(h + 16);
	} else {
		sum = 0;
		for (uint32_t i = 0; i < len; i += 4)
			sum += fw_parse_word32(h + i);
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Inlined into both IP versions: it is on the path of every TCP and UDP frame. */
static inline __attribute__((always_inline)) enum fw_parse_result fw_parse_l4(struct fw_parsed *out)
{
	out->l4_hdr_len = 0;
	out->sport = out->dport = 0;
	if (out->frag == FW_FRAG_LATER) {
		out->l4 = NULL;
		return FW_PARSE_OK;
	}
	switch (out->proto) {
	case FW_PARSE_TCP: {
		uint32_t doff;

		if (out->l4_len < 20)
			return FW_PARSE_MALFORMED;
		doff = (uint32_t)(out->l4[12] >> 4) * 4;
		if (doff < 20 || doff > out->l4_len)
			return FW_PARSE_MALFORMED;
		out->l4_hdr_len = doff;
		break;
	}
	case FW_PARSE_UDP: {
		uint32_t ulen;

		if (out->l4_len < 8)
			return FW_PARSE_MALFORMED;
		ulen = fw_parse_be16(out->l4 + 4);
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
	out->sport = fw_parse_raw16(out->l4);
	out->dport = fw_parse_raw16(out->l4 + 2);
	return FW_PARSE_OK;
}

static inline __attribute__((always_inline)) enum fw_parse_result
fw_parse_ipv4(const uint8_t *ip, uint32_t avail, unsigned int checked, struct fw_parsed *out)
{
	uint32_t ihl, total;
	uint16_t frag;

	if (avail < 20 || (ip[0] >> 4) != 4)
		return FW_PARSE_MALFORMED;
	ihl = (uint32_t)(ip[0] & 0xf) * 4;
	total = fw_parse_be16(ip + 2);
	if (ihl < 20 || total < ihl || total > avail ||
	    (!(checked & FW_PARSE_IP_CSUM_GOOD) && !fw_parse_ipv4_csum_ok(ip, ihl)))
		return FW_PARSE_MALFORMED;
	out->family = 4;
	out->proto = ip[9];
	out->l3_opts = ihl > 20;
	out->saddr = ip + 12;
	out->daddr = ip + 16;
	frag = fw_parse_be16(ip + 6);
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
	return fw_parse_l4(out);
}

/* The IPv6 header at @p ip, @p avail bytes, and what follows it (fw_parse_with's). */
enum fw_parse_result fw_parse_ipv6(const uint8_t *ip, uint32_t avail, struct fw_parsed *out);

/** fw_parse() taking @p checked (FW_PARSE_* bits) for done. */
static inline __attribute__((always_inline)) enum fw_parse_result
fw_parse_with(const uint8_t *frame, uint32_t len, unsigned int checked, struct fw_parsed *out)
{
	uint32_t off = FW_PARSE_ETH_HLEN;
	uint16_t type;

	if (len < FW_PARSE_ETH_HLEN)
		return FW_PARSE_MALFORMED;
	out->vlans = 0;
	out->vlan_id = 0;
	type = fw_parse_be16(frame + 12);
	while (type == FW_PARSE_ETH_VLAN || type == FW_PARSE_ETH_QINQ) {
		if (out->vlans == FW_PARSE_MAX_VLANS || off + 4 > len)
			return FW_PARSE_MALFORMED;
		out->vlan_id = fw_parse_be16(frame + off) & 0x0fff;
		type = fw_parse_be16(frame + off + 2);
		out->vlans++;
		off += 4;
	}
	out->l3_off = (uint16_t)off;
	switch (type) {
	case FW_PARSE_ETH_ARP:
		return FW_PARSE_ARP;
	case FW_PARSE_ETH_IPV4:
		return fw_parse_ipv4(frame + off, len - off, checked, out);
	case FW_PARSE_ETH_IPV6:
		return fw_parse_ipv6(frame + off, len - off, out);
	default:
		return FW_PARSE_NON_IP;
	}
}

/** What an ICMP or ICMPv6 message is to the fast path. */
enum fw_icmp_kind {
	FW_ICMP_OTHER = 0, /**< echo and the rest (or not ICMP at all): for the rules */
	/**
	 * Link signalling, IPv6's ARP: neighbour discovery (router and neighbour
	 * solicitation and advertisement, redirect; hop limit 255, which no router forwards)
	 * and multicast listener discovery (hop limit 1, link-local or unspecified source).
	 */
	FW_ICMP_LINK,
	FW_ICMP_ERROR, /**< an error (unreachable, too big, time exceeded, parameter
			    problem) quoting the start of a TCP or UDP packet */
};

/** The packet an ICMP error quotes: pointers into the frame, ports in network order. */
struct fw_icmp_quote {
	uint8_t family;
	uint8_t proto;
	const uint8_t *saddr;
	const uint8_t *daddr;
	uint16_t sport;
	uint16_t dport;
};

/**
 * What @p ps (FW_PARSE_OK from fw_parse() of @p frame) is, if it is ICMP (IPv4) or ICMPv6
 * (IPv6) and not a fragment. For FW_ICMP_ERROR, *@p q is the quoted packet: same family,
 * its IP header whole, its ports there, itself no later fragment.
 */
enum fw_icmp_kind fw_parse_icmp(const uint8_t *frame, const struct fw_parsed *ps,
				struct fw_icmp_quote *q);

#endif /* FW_PARSE_H */
