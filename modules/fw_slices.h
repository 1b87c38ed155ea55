/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where each module's slice lives in fw_conn.ext. One place, so the rooms cannot overlap by
 * accident; each module checks its slice against its room with a _Static_assert.
 *
 * TCP and UDP share offset 0 on purpose: a connection carries exactly one transport
 * protocol (the key holds it), so at most one of the two slices is ever present -- the same
 * reasoning as the per-protocol union in a netfilter conntrack entry. Their room is the
 * part of ext in the connection's hot line (FW_EXT_HOT): every packet touches the
 * transport slice. That leaves the FTP helper, which needs a partial-line buffer per
 * direction, the rest of the area, which lies in the connection's cold part (fw_conn.h):
 * FW_SLICE picks the part from the offset at compile time, so no slice straddles the two.
 *
 * ext starts 4-byte aligned (after the hot part's 20 bytes of timers and bits); a slice
 * holding wider fields checks its own alignment against the connection.
 */
#ifndef HOLDFAST_FW_SLICES_H
#define HOLDFAST_FW_SLICES_H

#include <stdalign.h>
#include <stddef.h>

#include "holdfast/fw_conn.h"

#define FW_TCP_SLICE_OFF  0
#define FW_TCP_SLICE_ROOM FW_EXT_HOT
#define FW_UDP_SLICE_OFF  0
#define FW_UDP_SLICE_ROOM FW_TCP_SLICE_ROOM
#define FW_FTP_SLICE_OFF  (FW_TCP_SLICE_OFF + FW_TCP_SLICE_ROOM)
#define FW_FTP_SLICE_ROOM (FW_EXT_SIZE - FW_FTP_SLICE_OFF)

/* Does a slice of @p type at @p off in ext sit aligned for its type in every connection? */
#define FW_SLICE_ALIGNED(type, off)                                                                \
	((off) < FW_EXT_HOT                                                                        \
		 ? (offsetof(struct fw_conn, ext) + (off)) % alignof(type) == 0                    \
		 : (offsetof(struct fw_conn_cold, ext) + (off)-FW_EXT_HOT) % alignof(type) == 0)

_Static_assert(FW_FTP_SLICE_OFF + FW_FTP_SLICE_ROOM <= FW_EXT_SIZE, "slices fit the area");
/* The transport slices in the hot line, the FTP helper's in the cold part: none straddles. */
_Static_assert(FW_TCP_SLICE_OFF + FW_TCP_SLICE_ROOM <= FW_EXT_HOT, "TCP's slice is hot");
_Static_assert(FW_UDP_SLICE_OFF + FW_UDP_SLICE_ROOM <= FW_EXT_HOT, "UDP's slice is hot");
_Static_assert(FW_FTP_SLICE_OFF >= FW_EXT_HOT, "FTP's slice is cold");

#endif /* HOLDFAST_FW_SLICES_H */
