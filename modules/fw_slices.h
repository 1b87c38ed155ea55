/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where each module's slice lives in fw_conn.ext. One place, so the rooms cannot overlap by
 * accident; each module checks its slice against its room with a _Static_assert.
 *
 * TCP and UDP share offset 0 on purpose: a connection carries exactly one transport
 * protocol (the key holds it), so at most one of the two slices is ever present -- the same
 * reasoning as the per-protocol union in a netfilter conntrack entry. That leaves the FTP
 * helper, which needs a partial-line buffer per direction, the rest of the area.
 */
#ifndef HOLDFAST_FW_SLICES_H
#define HOLDFAST_FW_SLICES_H

#include "holdfast/fw_conn.h"

#define FW_TCP_SLICE_OFF  0
#define FW_TCP_SLICE_ROOM 48
#define FW_UDP_SLICE_OFF  0
#define FW_UDP_SLICE_ROOM FW_TCP_SLICE_ROOM
#define FW_FTP_SLICE_OFF  (FW_TCP_SLICE_OFF + FW_TCP_SLICE_ROOM)
#define FW_FTP_SLICE_ROOM (FW_EXT_SIZE - FW_FTP_SLICE_OFF)

_Static_assert(FW_FTP_SLICE_OFF % 8 == 0, "slices start 8-byte aligned");
_Static_assert(FW_FTP_SLICE_OFF + FW_FTP_SLICE_ROOM <= FW_EXT_SIZE, "slices fit the area");

#endif /* HOLDFAST_FW_SLICES_H */
