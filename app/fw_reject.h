/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The answer of a "reject" rule: a TCP RST for TCP, an ICMP (ICMPv6) port unreachable for
 * the rest, built in place in the refused frame's own buffer and sent back where it came
 * from. Private to the firewall.
 */
#ifndef FW_REJECT_H
#define FW_REJECT_H

#include <stdint.h>

#include "fw_parse.h"

/** Room a reply may need in front of the frame (the ICMP error's own headers). */
#define FW_REJECT_HEADROOM 48

/**
 * Turn the frame at @p frame (@p len bytes, parsed as @p ps) into its reject reply.
 * The reply starts at frame - *@p shift (ICMP errors grow to the front: the caller must
 * have FW_REJECT_HEADROOM bytes there) and is *@p out_len bytes long.
 * @return 0, or -EINVAL when no reply is due (a RST is never answered, nor an ICMP error,
 *   nor a non-first fragment).
 */
int fw_reject_build(uint8_t *frame, uint32_t len, const struct fw_parsed *ps, uint32_t *shift,
		    uint32_t *out_len);

#endif /* FW_REJECT_H */
