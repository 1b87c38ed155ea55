/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv configuration: command-line flags and a config file of "key = value" lines that
 * uses the same names (pmem, size, listen, secret-file, allow-shm, log-level, and the
 * limits: see limits[] below); --format is a flag only.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG "ckptsrv"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ckptsrv --pmem FILE --size N --listen URL [--listen URL ...]\n"
		"               --secret-file F [--allow-shm] [--log-level L] [--config FILE]\n"
		"               [--distribute GROUP] [--format] [--LIMIT N ...]\n"
		"  FILE: created with N bytes if missing; an existing one is opened, and refused\n"
		"        if it does not check (never formatted again unless --format)\n"
		"  --format: make FILE a new, empty store even if it exists (every region in it\n"
		"        is lost; it keeps its size)\n"
		"  URL: ofi+tcp://host:port | ofi+verbs://host:port | ofi+shm://name\n"
		"  GROUP: group:rs(K,M)=T1,... | group:xor(K)=T1,... | group:mirror=T1,...\n"
		"  N:   bytes, or with a k/M/G/T suffix\n"
		"  L:   err, warning, notice (default), info or debug\n"
		"  LIMIT: handshake-max, handshake-timeout-ms, idle-timeout-ms, max-sessions,\n"
		"         log-burst, log-interval-ms, tenant-max-regions, tenant-max-bytes,\n"
		"         tenant-max-sessions, tenant-max-handles, or quota with\n"
		"         \"TENANT regions=N bytes=N|P%% sessions=N handles=N\" (any of them;\n"
		"         see config/ckptsrv.conf)\n");
}

/* The numeric limits: key, field, range. Their defaults are in ckptsrv.h. */
static const struct limit {
	const char *key;
	size_t off;
	unsigned int min, max;
} limits[] = {
	{"handshake-max", offsetof(struct ckptsrv_config, handshake_max), 1, 4096},
	{"handshake-timeout-ms", offsetof(struct ckptsrv_config, handshake_timeout_ms), 100, 60000},
	{"idle-timeout-ms", offsetof(struct ckptsrv_config, idle_timeout_ms), CKPTSRV_IDLE_MIN_MS,
	 86400000},
	{"max-sessions", offsetof(struct ckptsrv_config, max_sessions), 1, 65536},
	{"log-burst", offsetof(struct ckptsrv_config, log_burst), 1, 100000},
	{"log-interval-ms", offsetof(struct ckptsrv_config, log_interval_ms), 100, 86400000},
	{"tenant-max-regions", offsetof(struct ckptsrv_config, tenant.regions), 0, PMU_MAX_REGIONS},
	{"tenant-max-sessions", offsetof(struct ckptsrv_config, tenant.sessions), 0, 65536},
	{"tenant-max-handles", offsetof(struct ckptsrv_config, tenant.handles), 0, 1u << 20},
};

#define QUOTA_SYNTAX "expected TENANT regions=N bytes=N|P% sessions=N handles=N (any of them)"

void ckptsrv_config_defaults(struct ckptsrv_config *cfg)
{
	cfg->handshake_max = CKPTSRV_HANDSHAKE_MAX;
	cfg->handshake_timeout_ms = CKPTSRV_HANDSHAKE_TIMEOUT_MS;
	cfg->idle_timeout_ms = CKPTSRV_IDLE_TIMEOUT_MS;
	cfg->max_sessions = CKPTSRV_MAX_SESSIONS;
	cfg->log_burst = CKPTSRV_LOG_BURST;
	cfg->log_interval_ms = CKPTSRV_LOG_INTERVAL_MS;
	cfg->tenant.regions = CKPTSRV_TENANT_REGIONS;
	cfg->tenant.bytes = 0;
	cfg->tenant.bytes_pct = CKPTSRV_TENANT_BYTES_PCT;
	cfg->tenant.sessions = CKPTSRV_TENANT_SESSIONS;
	cfg->tenant.handles = CKPTSRV_TENANT_HANDLES;
}

void ckptsrv_limits_of(const struct ckptsrv_config *cfg, const char *tenant,
		       struct ckptsrv_limits *out)
{
	*out = cfg->tenant;
	for (unsigned int i = 0; i < cfg->nquota; i++) {
		const struct ckptsrv_quota *q = &cfg->quota[i];

		if (strcmp(q->tenant, tenant) != 0)
			continue;
		if (q->given & CKPTSRV_QUOTA_REGIONS)
			out->regions = q->lim.regions;
		if (q->given & CKPTSRV_QUOTA_BYTES) {
			out->bytes = q->lim.bytes;
			out->bytes_pct = q->lim.bytes_pct;
		}
		if (q->given & CKPTSRV_QUOTA_SESSIONS)
			out->sessions = q->lim.sessions;
		if (q->given & CKPTSRV_QUOTA_HANDLES)
			out->handles = q->lim.handles;
		return;
	}
}

bool ckptsrv_name_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '/')
			return false;
	return true;
}

/* A decimal number in [min, max]. @return 0 or -EINVAL. */
static int parse_uint(const char *v, unsigned int min, unsigned int max, unsigned int *out)
{
	unsigned long long n;
	char *end;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -EINVAL;
	*out = (unsigned int)n;
	return 0;
}

/* A size (k/M/G/T suffixes) or a percentage of the store, 0% to 100%. */
static int parse_bytes(const char *v, uint64_t *bytes, unsigned int *pct)
{
	size_t n = strlen(v);

	if (n > 1 && v[n - 1] == '%') {
		char num[8];

		if (n - 1 >= sizeof(num))
			return -EINVAL;
		memcpy(num, v, n - 1);
		num[n - 1] = '\0';
		*bytes = 0;
		return parse_uint(num, 0, 100, pct);
	}
	*pct = 0;
	return ckpt_parse_size(v, bytes);
}

/* "TENANT field=value ..." with at least one field; a later line for a tenant replaces it. */
static int add_quota(struct ckptsrv_config *cfg, const char *v, const char **why)
{
	struct ckptsrv_quota q = {0};
	char line[512], *save = NULL, *tok;
	unsigned int i;

	*why = QUOTA_SYNTAX;
	if (strlen(v) >= sizeof(line))
		return -EINVAL;
	strcpy(line, v);
	tok = strtok_r(line, " \t", &save);
	if (tok == NULL || strchr(tok, '=') != NULL || strlen(tok) >= PMU_NAME_MAX ||
	    !ckptsrv_name_ok(tok)) {
		*why = "expected a tenant name first, then regions=N bytes=N|P% sessions=N "
		       "handles=N (any of them)";
		return -EINVAL;
	}
	strcpy(q.tenant, tok);
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		char *val = strchr(tok, '=');
		unsigned int bit;
		int ret;

		if (val == NULL)
			return -EINVAL;
		*val++ = '\0';
		if (strcmp(tok, "regions") == 0) {
			bit = CKPTSRV_QUOTA_REGIONS;
			ret = parse_uint(val, 0, PMU_MAX_REGIONS, &q.lim.regions);
		} else if (strcmp(tok, "bytes") == 0) {
			bit = CKPTSRV_QUOTA_BYTES;
			ret = parse_bytes(val, &q.lim.bytes, &q.lim.bytes_pct);
		} else if (strcmp(tok, "sessions") == 0) {
			bit = CKPTSRV_QUOTA_SESSIONS;
			ret = parse_uint(val, 0, 65536, &q.lim.sessions);
		} else if (strcmp(tok, "handles") == 0) {
			bit = CKPTSRV_QUOTA_HANDLES;
			ret = parse_uint(val, 0, 1u << 20, &q.lim.handles);
		} else {
			return -EINVAL;
		}
		if (ret < 0 || (q.given & bit)) {
			*why = ret < 0 ? "a value out of range (regions 0-256, bytes a size or "
					 "0%-100%, "
					 "sessions 0-65536, handles 0-1048576)"
				       : "a field given twice";
			return -EINVAL;
		}
		q.given |= bit;
	}
	if (q.given == 0)
		return -EINVAL;
	for (i = 0; i < cfg->nquota; i++)
		if (strcmp(cfg->quota[i].tenant, q.tenant) == 0)
			break;
	if (i == CKPTSRV_MAX_QUOTAS) {
		*why = "too many quota lines";
		return -EINVAL;
	}
	cfg->quota[i] = q;
	if (i == cfg->nquota)
		cfg->nquota++;
	return 0;
}

static int apply_limit(struct ckptsrv_config *cfg, const struct limit *lim, const char *v,
		       const char **why)
{
	static char range[64];

	snprintf(range, sizeof(range), "expected a number from %u to %u", lim->min, lim->max);
	*why = range;
	return parse_uint(v, lim->min, lim->max, (unsigned int *)((char *)cfg + lim->off));
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int set_string(char *dst, size_t cap, const char *v)
{
	if (*v == '\0' || strlen(v) >= cap)
		return -EINVAL;
	strcpy(dst, v);
	return 0;
}

static int add_listen(struct ckptsrv_config *cfg, const char *v, const char **why)
{
	if (cfg->nlisten == CKPTSRV_MAX_LISTEN) {
		*why = "too many listeners";
		return -EINVAL;
	}
	if (set_string(cfg->listen[cfg->nlisten], CKPTSRV_URL_MAX, v) < 0) {
		*why = "URL empty or too long";
		return -EINVAL;
	}
	cfg->nlisten++;
	return 0;
}

/* One setting by name; *why says what was wrong when it returns -EINVAL. */
static int apply(struct ckptsrv_config *cfg, const char *key, const char *v, const char **why)
{
	if (strcmp(key, "pmem") == 0) {
		*why = "path empty or too long";
		return set_string(cfg->pmem, sizeof(cfg->pmem), v);
	}
	if (strcmp(key, "secret-file") == 0) {
		*why = "path empty or too long";
		return set_string(cfg->secret_file, sizeof(cfg->secret_file), v);
	}
	if (strcmp(key, "size") == 0) {
		*why = "not a size (e.g. 1048576, 64M, 2G)";
		return ckpt_parse_size(v, &cfg->size);
	}
	if (strcmp(key, "listen") == 0)
		return add_listen(cfg, v, why);
	if (strcmp(key, "distribute") == 0) {
		*why = "not a group target (group:rs(K,M)=..., group:xor(K)=..., group:mirror=...)";
		if (strncmp(v, "group:", 6) != 0)
			return -EINVAL;
		return set_string(cfg->distribute, sizeof(cfg->distribute), v);
	}
	if (strcmp(key, "log-level") == 0) {
		static const struct {
			const char *name;
			enum ckpt_log_level level;
		} levels[] = {
			{"err", CKPT_LOG_ERR},	     {"warning", CKPT_LOG_WARNING},
			{"notice", CKPT_LOG_NOTICE}, {"info", CKPT_LOG_INFO},
			{"debug", CKPT_LOG_DEBUG},
		};

		for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
			if (strcmp(v, levels[i].name) == 0) {
				cfg->log_level = levels[i].level;
				return 0;
			}
		}
		*why = "expected err, warning, notice, info or debug";
		return -EINVAL;
	}
	if (strcmp(key, "allow-shm") == 0) {
		*why = "expected true/false, yes/no or 1/0";
		return parse_bool(v, &cfg->allow_shm);
	}
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		if (strcmp(key, limits[i].key) == 0)
			return apply_limit(cfg, &limits[i], v, why);
	if (strcmp(key, "tenant-max-bytes") == 0) {
		*why = "expected a size (e.g. 64M, 2G) or a share of the store (0% to 100%)";
		return parse_bytes(v, &cfg->tenant.bytes, &cfg->tenant.bytes_pct);
	}
	if (strcmp(key, "quota") == 0)
		return add_quota(cfg, v, why);
	if (strcmp(key, "format") == 0) {
		/* A file is read at every start: there it would wipe the store at every start. */
		*why = "only as the --format flag, for one start (in a config file it would wipe "
		       "the store at every start)";
		return -EINVAL;
	}
	*why = "unknown key";
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int ckptsrv_config_load(const char *path, struct ckptsrv_config *cfg)
{
	char line[4200];
	unsigned int lineno = 0;
	int ret = 0;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		ret = -errno;
		ckpt_log(CKPT_LOG_ERR, LOG, "config %s: %s", path, strerror(errno));
		return ret;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *why = NULL;
		char *key, *val, *eq, *hash;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s:%u: line too long", path, lineno);
			ret = -EINVAL;
			break;
		}
		hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		key = trim(line);
		if (*key == '\0')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s:%u: expected \"key = value\"", path,
				 lineno);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(key);
		val = trim(eq + 1);
		if (apply(cfg, key, val, &why) < 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s:%u: %s: %s", path, lineno, key, why);
			ret = -EINVAL;
			break;
		}
	}
	fclose(f);
	return ret;
}

int ckptsrv_config_parse(int argc, char **argv, struct ckptsrv_config *cfg)
{
	static const struct option opts[] = {
		{"pmem", required_argument, NULL, 'p'},
		{"size", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"distribute", required_argument, NULL, 'd'},
		{"secret-file", required_argument, NULL, 'k'},
		{"allow-shm", no_argument, NULL, 'a'},
		{"format", no_argument, NULL, 'f'},
		{"log-level", required_argument, NULL, 'v'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		/* 'L': a limit, set on cfg at once (the file was read first); a --quota for a
		 * tenant the file has a quota line for replaces that line */
		{"handshake-max", required_argument, NULL, 'L'},
		{"handshake-timeout-ms", required_argument, NULL, 'L'},
		{"idle-timeout-ms", required_argument, NULL, 'L'},
		{"max-sessions", required_argument, NULL, 'L'},
		{"log-burst", required_argument, NULL, 'L'},
		{"log-interval-ms", required_argument, NULL, 'L'},
		{"tenant-max-regions", required_argument, NULL, 'L'},
		{"tenant-max-bytes", required_argument, NULL, 'L'},
		{"tenant-max-sessions", required_argument, NULL, 'L'},
		{"tenant-max-handles", required_argument, NULL, 'L'},
		{"quota", required_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	struct ckptsrv_config cli = {0};
	bool have_size = false, have_shm = false, have_format = false;
	int c, idx = 0;

	memset(cfg, 0, sizeof(*cfg));
	ckptsrv_config_defaults(cfg);
	/* The file first, wherever --config sits, so the command line can override it. */
	for (int i = 1; i < argc - 1; i++) {
		if (strcmp(argv[i], "--config") == 0 && ckptsrv_config_load(argv[i + 1], cfg) < 0)
			return -EINVAL;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		const char *why = NULL, *flag = NULL;
		int ret = 0;

		switch (c) {
		case 'p':
			flag = "pmem";
			ret = apply(&cli, flag, optarg, &why);
			break;
		case 's':
			flag = "size";
			ret = apply(&cli, flag, optarg, &why);
			have_size = true;
			break;
		case 'l':
			flag = "listen";
			ret = apply(&cli, flag, optarg, &why);
			break;
		case 'd':
			flag = "distribute";
			ret = apply(&cli, flag, optarg, &why);
			break;
		case 'k':
			flag = "secret-file";
			ret = apply(&cli, flag, optarg, &why);
			break;
		case 'a':
			have_shm = true;
			break;
		case 'f':
			have_format = true;
			break;
		case 'v':
			flag = "log-level";
			ret = apply(&cli, flag, optarg, &why);
			break;
		case 'c':
			break;
		case 'L':
			flag = opts[idx].name;
			ret = apply(cfg, flag, optarg, &why);
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (ret < 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "--%s %s: %s", flag, optarg, why);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		ckpt_log(CKPT_LOG_ERR, LOG, "unexpected argument \"%s\"", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	if (cli.pmem[0] != '\0')
		strcpy(cfg->pmem, cli.pmem);
	if (cli.secret_file[0] != '\0')
		strcpy(cfg->secret_file, cli.secret_file);
	if (cli.distribute[0] != '\0')
		strcpy(cfg->distribute, cli.distribute);
	if (have_size)
		cfg->size = cli.size;
	if (have_shm)
		cfg->allow_shm = true;
	if (have_format)
		cfg->format = true;
	if (cli.log_level != 0)
		cfg->log_level = cli.log_level;
	if (cli.nlisten > 0) {
		memcpy(cfg->listen, cli.listen, sizeof(cfg->listen));
		cfg->nlisten = cli.nlisten;
	}
	if (cfg->pmem[0] == '\0' || cfg->secret_file[0] == '\0' || cfg->nlisten == 0) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "--pmem, --secret-file and at least one --listen are "
			 "required (flags or config file)");
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}
