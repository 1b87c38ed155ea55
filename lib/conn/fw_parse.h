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

/** fw_parse() taking @p checked (FW_PARSE_* bits) for done. */
enum fw_parse_result fw_parse_with(const uint8_t *frame, uint32_t len, unsigned int checked,
				   struct fw_parsed *out);

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
