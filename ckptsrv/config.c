/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv configuration: command-line flags and a config file of "key = value" lines that
 * uses the same names (pmem, size, listen, secret-file, allow-shm, log-level); --format is
 * a flag only.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG "ckptsrv"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ckptsrv --pmem FILE --size N --listen URL [--listen URL ...]\n"
		"               --secret-file F [--allow-shm] [--log-level L] [--config FILE]\n"
		"               [--distribute GROUP] [--format]\n"
		"  FILE: created with N bytes if missing; an existing one is opened, and refused\n"
		"        if it does not check (never formatted again unless --format)\n"
		"  --format: make FILE a new, empty store even if it exists (every region in it\n"
		"        is lost; it keeps its size)\n"
		"  URL: ofi+tcp://host:port | ofi+verbs://host:port | ofi+shm://name\n"
		"  GROUP: group:rs(K,M)=T1,... | group:xor(K)=T1,... | group:mirror=T1,...\n"
		"  N:   bytes, or with a k/M/G/T suffix\n"
		"  L:   err, warning, notice (default), info or debug\n");
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
		{NULL, 0, NULL, 0},
	};
	struct ckptsrv_config cli = {0};
	bool have_size = false, have_shm = false, have_format = false;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	/* The file first, wherever --config sits, so the command line can override it. */
	for (int i = 1; i < argc - 1; i++) {
		if (strcmp(argv[i], "--config") == 0 && ckptsrv_config_load(argv[i + 1], cfg) < 0)
			return -EINVAL;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
