/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The module registry: one explicit table, indexed by module id. No constructors: in a
 * static library an object nobody references is never linked, and its constructor with it.
 * What the core needs to know of the modules as a whole -- their settings, how many slices
 * a connection may hold -- is derived from the table here, so that adding a module is its
 * folder and a line below.
 */
#include <stddef.h>
#include <string.h>

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

unsigned int fw_modules_slices_max(void)
{
	unsigned int most = 0;

	for (int a = 1; a < FW_MOD_MAX; a++) {
		unsigned int n = 0;

		if (fw_modules[a] == NULL)
			continue;
		for (int b = 1; b < FW_MOD_MAX; b++)
			n += fw_modules[b] != NULL && fw_modules[b]->proto == fw_modules[a]->proto;
		most = n > most ? n : most;
	}
	return most;
}

void fw_modconf_defaults(struct fw_modconf *mc)
{
	memset(mc, 0, sizeof(*mc));
	for (int m = 1; m < FW_MOD_MAX; m++)
		if (fw_modules[m] != NULL && fw_modules[m]->conf_default != NULL)
			fw_modules[m]->conf_default(mc->conf[m]);
}

const void *fw_modconf_get(const struct fw_modconf *mc, enum fw_module_id m)
{
	if ((unsigned int)m >= FW_MOD_MAX || fw_modules[m] == NULL)
		return NULL;
	return mc->conf[m];
}

/* The module taking `timeout @p name`, and the index of the name in its list. */
static const struct fw_module_ops *timeout_owner(const char *name, unsigned int *index)
{
	for (int m = 1; m < FW_MOD_MAX; m++) {
		const struct fw_module_ops *ops = fw_modules[m];

		for (unsigned int i = 0; ops != NULL && ops->timeouts && ops->timeouts[i]; i++) {
			if (strcmp(ops->timeouts[i], name) == 0) {
				*index = i;
				return ops;
			}
		}
	}
	return NULL;
}

bool fw_modconf_has_timeout(const char *name)
{
	unsigned int i;

	return timeout_owner(name, &i) != NULL;
}

void fw_modconf_set_timeout(struct fw_modconf *mc, const char *name, uint64_t ns)
{
	unsigned int i;
	const struct fw_module_ops *ops = timeout_owner(name, &i);

	if (ops != NULL)
		ops->conf_timeout(mc->conf[ops->id], i, ns);
}

int fw_modconf_set(struct fw_modconf *mc, char *const *w, int n, char *err, size_t errlen)
{
	for (int m = 1; m < FW_MOD_MAX; m++) {
		int rc;

		if (fw_modules[m] == NULL || fw_modules[m]->conf_set == NULL)
			continue;
		rc = fw_modules[m]->conf_set(mc->conf[m], w, n, err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

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
	[FW_DROP_HANDOFF_FULL] = "handoff_full",
};

const char *fw_drop_reason_name(enum fw_drop_reason r)
{
	if ((unsigned int)r >= FW_DROP_REASON_MAX || !drop_names[r])
		return "unknown";
	return drop_names[r];
}
