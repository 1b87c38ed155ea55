/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_config.h"
#include "fw_table.h"
#include "holdfast/ckpt.h"

#define MAX_LINE 512

static int fail(char *err, size_t errlen, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, const char *where, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", where, msg);
	return -EINVAL;
}

void fw_config_defaults(struct fw_config *c)
{
	memset(c, 0, sizeof(*c));
	c->pairs[0] = (struct fw_pair){{0, 1}, 0};
	c->npairs = 1;
	c->max_conns = 1u << 20;
	c->reject_rate = 1000;
	snprintf(c->ckpt_target, sizeof(c->ckpt_target), "%s", FW_CKPT_DEFAULT_TARGET);
	snprintf(c->ckpt_region, sizeof(c->ckpt_region), "holdfast-state");
	snprintf(c->ckpt_tenant, sizeof(c->ckpt_tenant), "holdfast");
	c->ckpt_log_size = 4u << 20;
	c->lease_ms = 500;
	c->standby_poll_ms = 10;
	c->ckpt_lcore = FW_CKPT_LCORE_AUTO;
	c->rules.policy = FW_ACT_DROP;
	fw_modconf_defaults(&c->modconf);
}

void fw_config_release(struct fw_config *c)
{
	fw_ruleset_clear(&c->rules);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_bool_word(const char *v, const char *yes, const char *no, bool *out)
{
	if (v && strcmp(v, yes) == 0)
		*out = true;
	else if (v && strcmp(v, no) == 0)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

int fw_config_set(struct fw_config *c, const char *line, const char *where, char *err,
		  size_t errlen)
{
	char buf[MAX_LINE], why[160];
	char *w[8] = {0};
	char *save = NULL;
	unsigned long v, v2;
	int n = 0, rc;

	if (strlen(line) >= sizeof(buf))
		return fail(err, errlen, where, "line longer than %d characters", MAX_LINE - 1);
	strcpy(buf, line);
	for (char *t = strtok_r(buf, " \t", &save); t && n < 8; t = strtok_r(NULL, " \t", &save))
		w[n++] = t;
	if (n == 0)
		return 0;

	if (strcmp(w[0], "rule") == 0) {
		struct fw_rule r;
		const char *text = line + (strstr(line, "rule") - line) + 4;

		if (fw_rule_parse(text, &r, why, sizeof(why)))
			return fail(err, errlen, where, "rule: %s", why);
		snprintf(r.origin, sizeof(r.origin), "%s", where);
		if (fw_ruleset_add(&c->rules, &r))
			return fail(err, errlen, where, "out of memory");
		return 0;
	}
	if (strcmp(w[0], "pair") == 0) {
		/* pair A B inside A */
		unsigned long a, b, in;

		if (n != 5 || parse_uint(w[1], 1023, &a) || parse_uint(w[2], 1023, &b) ||
		    strcmp(w[3], "inside") != 0 || parse_uint(w[4], 1023, &in))
			return fail(err, errlen, where,
				    "pair: expected 'pair PORT PORT inside PORT', e.g. "
				    "'pair 0 1 inside 0'");
		if (a == b || (in != a && in != b))
			return fail(err, errlen, where,
				    "pair: two different ports, and the inside one among them");
		if (c->npairs == FW_MAX_PAIRS)
			return fail(err, errlen, where, "pair: at most %d pairs", FW_MAX_PAIRS);
		c->pairs[c->npairs++] =
			(struct fw_pair){{(uint16_t)a, (uint16_t)b}, (uint8_t)(in == b)};
		return 0;
	}
	if (strcmp(w[0], "timeout") == 0) {
		/* The names are the modules' (fw_module_ops.timeouts), the syntax is ours. */
		if (n != 3)
			return fail(err, errlen, where, "timeout: expected 'timeout NAME SECONDS'");
		if (!fw_modconf_has_timeout(w[1]))
			return fail(err, errlen, where, "timeout: unknown name '%s'", w[1]);
		if (parse_uint(w[2], 30u * 86400, &v2) || v2 == 0)
			return fail(err, errlen, where, "timeout %s: 1 to %u seconds", w[1],
				    30u * 86400);
		fw_modconf_set_timeout(&c->modconf, w[1], (uint64_t)v2 * 1000000000ull);
		return 0;
	}
	rc = fw_modconf_set(&c->modconf, w, n, why, sizeof(why));
	if (rc < 0)
		return fail(err, errlen, where, "%s", why);
	if (rc > 0)
		return 0;
	if (n != 2)
		return fail(err, errlen, where, "%s: expected one value", w[0]);
	if (strcmp(w[0], "max-conns") == 0) {
		/* A worker's table holds at most FW_TABLE_CAPACITY_MAX (its planes, fw_conn.h). */
		if (parse_uint(w[1], FW_TABLE_CAPACITY_MAX, &v) || v < 64)
			return fail(err, errlen, where, "max-conns: a number from 64 to %u",
				    FW_TABLE_CAPACITY_MAX);
		c->max_conns = (uint32_t)v;
	} else if (strcmp(w[0], "ckpt") == 0) {
		if (strlen(w[1]) >= sizeof(c->ckpt_target) ||
		    (strcmp(w[1], "none") != 0 && strncmp(w[1], "pmem:/", 6) != 0 &&
		     strncmp(w[1], "ofi+", 4) != 0 && strncmp(w[1], "group:", 6) != 0))
			return fail(err, errlen, where,
				    "ckpt: none, pmem:/path, ofi+tcp|shm|verbs://... or group:...");
		snprintf(c->ckpt_target, sizeof(c->ckpt_target), "%s", w[1]);
	} else if (strcmp(w[0], "ckpt-region") == 0) {
		if (strlen(w[1]) >= sizeof(c->ckpt_region))
			return fail(err, errlen, where, "ckpt-region: at most %zu characters",
				    sizeof(c->ckpt_region) - 1);
		snprintf(c->ckpt_region, sizeof(c->ckpt_region), "%s", w[1]);
	} else if (strcmp(w[0], "ckpt-secret-file") == 0) {
		if (strlen(w[1]) >= sizeof(c->ckpt_secret_file))
			return fail(err, errlen, where, "ckpt-secret-file: path too long");
		snprintf(c->ckpt_secret_file, sizeof(c->ckpt_secret_file), "%s", w[1]);
	} else if (strcmp(w[0], "ckpt-tenant") == 0) {
		if (strlen(w[1]) >= sizeof(c->ckpt_tenant))
			return fail(err, errlen, where, "ckpt-tenant: at most %zu characters",
				    sizeof(c->ckpt_tenant) - 1);
		snprintf(c->ckpt_tenant, sizeof(c->ckpt_tenant), "%s", w[1]);
	} else if (strcmp(w[0], "ckpt-allow-shm") == 0) {
		if (parse_bool_word(w[1], "yes", "no", &c->ckpt_allow_shm))
			return fail(err, errlen, where, "ckpt-allow-shm: yes or no");
	} else if (strcmp(w[0], "ckpt-size") == 0) {
		if (ckpt_parse_size(w[1], &c->ckpt_size) != 0 || c->ckpt_size < (1u << 20))
			return fail(err, errlen, where, "ckpt-size: bytes (k/M/G), at least 1M");
	} else if (strcmp(w[0], "ckpt-log-size") == 0) {
		if (ckpt_parse_size(w[1], &c->ckpt_log_size) != 0 ||
		    (c->ckpt_log_size != 0 && c->ckpt_log_size < (64u << 10)) ||
		    c->ckpt_log_size > (1ull << 32))
			return fail(err, errlen, where,
				    "ckpt-log-size: 0 (no standby) or 64k to 4G bytes");
	} else if (strcmp(w[0], "ckpt-lcore") == 0) {
		/* Whether the lcore is in EAL's list is checked once EAL is up (main.c). */
		if (strcmp(w[1], "auto") == 0)
			c->ckpt_lcore = FW_CKPT_LCORE_AUTO;
		else if (strcmp(w[1], "thread") == 0)
			c->ckpt_lcore = FW_CKPT_LCORE_THREAD;
		else if (strcmp(w[1], "inline") == 0)
			c->ckpt_lcore = FW_CKPT_LCORE_INLINE;
		else if (parse_uint(w[1], FW_CKPT_LCORE_MAX, &v) == 0)
			c->ckpt_lcore = (int)v;
		else
			return fail(err, errlen, where,
				    "ckpt-lcore: an lcore id (0 to %d) of EAL's list, auto, thread "
				    "or inline",
				    FW_CKPT_LCORE_MAX);
	} else if (strcmp(w[0], "lease-ms") == 0) {
		if (parse_uint(w[1], 3600000, &v) || v < 50)
			return fail(err, errlen, where, "lease-ms: 50 to 3600000 milliseconds");
		c->lease_ms = (uint32_t)v;
	} else if (strcmp(w[0], "lease-lapse") == 0) {
		if (parse_bool_word(w[1], "forward", "hold", &c->lapse_forward))
			return fail(err, errlen, where,
				    "lease-lapse: hold (a standby may take over) or forward (none "
				    "runs)");
	} else if (strcmp(w[0], "standby-poll-ms") == 0) {
		if (parse_uint(w[1], 10000, &v) || v == 0)
			return fail(err, errlen, where, "standby-poll-ms: 1 to 10000 milliseconds");
		c->standby_poll_ms = (uint32_t)v;
	} else if (strcmp(w[0], "standby") == 0) {
		if (parse_bool_word(w[1], "yes", "no", &c->standby))
			return fail(err, errlen, where, "standby: yes or no");
	} else if (strcmp(w[0], "reject-rate") == 0) {
		if (parse_uint(w[1], 1000000, &v))
			return fail(err, errlen, where,
				    "reject-rate: replies per second, 0 to 1000000");
		c->reject_rate = (uint32_t)v;
	} else if (strcmp(w[0], "non-ip") == 0) {
		if (parse_bool_word(w[1], "pass", "drop", &c->pass_non_ip))
			return fail(err, errlen, where, "non-ip: pass or drop");
	} else if (strcmp(w[0], "fragments") == 0) {
		if (parse_bool_word(w[1], "pass", "drop", &c->pass_fragments))
			return fail(err, errlen, where, "fragments: pass or drop");
	} else if (strcmp(w[0], "ip-options") == 0) {
		if (parse_bool_word(w[1], "pass", "drop", &c->pass_ip_options))
			return fail(err, errlen, where, "ip-options: pass or drop");
	} else if (strcmp(w[0], "policy") == 0) {
		if (strcmp(w[1], "drop") == 0)
			c->rules.policy = FW_ACT_DROP;
		else if (strcmp(w[1], "accept") == 0)
			c->rules.policy = FW_ACT_ACCEPT;
		else if (strcmp(w[1], "reject") == 0)
			c->rules.policy = FW_ACT_REJECT;
		else
			return fail(err, errlen, where, "policy: drop, reject or accept");
	} else if (strcmp(w[0], "rules") == 0) {
		if (strncmp(w[1], "nft:", 4) != 0 || w[1][4] == '\0' ||
		    strlen(w[1]) >= sizeof(c->rules_source))
			return fail(err, errlen, where, "rules: expected nft:TABLE");
		snprintf(c->rules_source, sizeof(c->rules_source), "%s", w[1]);
	} else {
		return fail(err, errlen, where, "unknown setting '%s'", w[0]);
	}
	return 0;
}

int fw_config_load(struct fw_config *c, const char *path, char *err, size_t errlen)
{
	char line[MAX_LINE + 2];
	char where[160];
	unsigned int lineno = 0;
	bool pairs_from_file = false;
	FILE *f;
	int rc = 0;

	f = fopen(path, "r");
	if (f == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#');
		size_t len;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		len = strlen(line);
		if (len > MAX_LINE) {
			rc = fail(err, errlen, where, "line longer than %d characters", MAX_LINE);
			break;
		}
		if (hash)
			*hash = '\0';
		while ((len = strlen(line)) > 0 && isspace((unsigned char)line[len - 1]))
			line[len - 1] = '\0';
		if (strncmp(line, "pair", 4) == 0 && !pairs_from_file) {
			c->npairs = 0; /* the file names its pairs: the default goes */
			pairs_from_file = true;
		}
		rc = fw_config_set(c, line, where, err, errlen);
		if (rc)
			break;
	}
	fclose(f);
	if (rc == 0 && c->rules.n && c->rules_source[0])
		rc = fail(err, errlen, path, "rules come from the file or from %s, not both",
			  c->rules_source);
	return rc;
}

int fw_config_check(const struct fw_config *c, char *err, size_t errlen)
{
	if (c->npairs == 0)
		return fail(err, errlen, "config", "no port pair");
	/*
	 * libfabric's shm provider checks no remote keys: any local process could write the
	 * regions. That is the operator's call, made in the config, never implied by a target
	 * (nor by a group member).
	 */
	if (strstr(c->ckpt_target, "ofi+shm://") != NULL && !c->ckpt_allow_shm)
		return fail(err, errlen, "config",
			    "ckpt %.64s: shm checks no remote keys (any local process could "
			    "write the checkpoints); 'ckpt-allow-shm yes' accepts that",
			    c->ckpt_target);
	for (unsigned int i = 0; i < c->npairs; i++)
		for (unsigned int j = 0; j < c->npairs; j++)
			for (int a = 0; a < 2; a++)
				for (int b = 0; b < 2; b++)
					if ((i != j || a != b) &&
					    c->pairs[i].port[a] == c->pairs[j].port[b])
						return fail(err, errlen, "config",
							    "port %u is in two pairs",
							    c->pairs[i].port[a]);
	return 0;
}
