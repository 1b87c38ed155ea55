/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame parser of the fast path: Ethernet, up to two VLAN tags, ARP, IPv4 (options),
 * IPv6 (extension headers), fragments, TCP and UDP. It reads only bytes it has checked
 * are there, and says what it found; policy (drop options, drop fragments) is the
 * caller's. Private to the firewall.
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

/**
 * Parse the @p len bytes of a frame. @p out is filled only as far as it says.
 */
enum fw_parse_result fw_parse(const uint8_t *frame, uint32_t len, struct fw_parsed *out);

#endif /* FW_PARSE_H */
