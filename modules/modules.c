/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The module registry: one explicit table, indexed by module id. No constructors: in a
 * static library an object nobody references is never linked, and its constructor with it.
 */
#include <stddef.h>

#include "holdfast/fw_module.h"
#include "fw_slices.h"
#include "ftp/fw_ftp.h"
#include "tcp/fw_tcp.h"
#include "udp/fw_udp.h"

const struct fw_module_ops *const fw_modules[FW_MOD_MAX] = {
	[FW_MOD_TCP] = &fw_tcp_ops,
	[FW_MOD_UDP] = &fw_udp_ops,
	[FW_MOD_FTP] = &fw_ftp_ops,
};

static const char *const drop_names[FW_DROP_REASON_MAX] = {
	[FW_DROP_NONE] = "none",
	[FW_DROP_POLICY] = "policy",
	[FW_DROP_MALFORMED] = "malformed",
	[FW_DROP_NO_CONN] = "no_conn",
	[FW_DROP_TABLE_FULL] = "table_full",
	[FW_DROP_FRAGMENT] = "fragment",
	[FW_DROP_L3_OPTIONS] = "l3_options",
	[FW_DROP_NON_IP] = "non_ip",
	[FW_DROP_TCP_FLAGS] = "tcp_flags",
	[FW_DROP_TCP_STATE] = "tcp_state",
	[FW_DROP_TCP_WINDOW] = "tcp_window",
	[FW_DROP_TCP_RST] = "tcp_rst",
	[FW_DROP_FTP_BOUNCE] = "ftp_bounce",
	[FW_DROP_FTP_SYNTAX] = "ftp_syntax",
};

const char *fw_drop_reason_name(enum fw_drop_reason r)
{
	if ((unsigned int)r >= FW_DROP_REASON_MAX || !drop_names[r])
		return "unknown";
	return drop_names[r];
}
