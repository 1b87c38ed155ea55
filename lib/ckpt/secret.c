/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Parsers shared by the client and ckptsrv: sizes given on command lines and in config
 * files, and the secret file both sides authenticate with.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "holdfast/ckpt.h"
#include "hf_log.h"

#define SECRET_MIN	16
#define SECRET_LINE_MAX 1024

int ckpt_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (s == NULL || out == NULL || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned int d = (unsigned int)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	switch (*p) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1ull << 10;
		p++;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		p++;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		p++;
		break;
	case 't':
	case 'T':
		mult = 1ull << 40;
		p++;
		break;
	default:
		return -EINVAL;
	}
	if (*p != '\0' || (v != 0 && mult > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mult;
	return 0;
}

/* Tenant names travel in fixed PMU_NAME_MAX fields and become region owners. */
static int tenant_name_ok(const char *t, size_t len)
{
	if (len == 0 || len >= PMU_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)t[i]) || t[i] == '/')
			return 0;
	return 1;
}

/*
 * Split one line into at most two whitespace-separated tokens. Returns the token count, or
 * -EINVAL for a third token. '#' starts a comment anywhere, so a secret cannot contain it.
 */
static int split_line(char *line, char *tok[2], size_t len[2])
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0' || *p == '#')
			return n;
		if (n == 2)
			return -EINVAL;
		tok[n] = p;
		while (*p != '\0' && *p != '#' && !isspace((unsigned char)*p))
			p++;
		len[n] = (size_t)(p - tok[n]);
		n++;
		if (*p == '#')
			return n;
		if (*p != '\0')
			*p++ = '\0';
	}
}

int ckpt_secret_load(const char *path, const char *tenant, uint8_t *out, size_t max)
{
	char line[SECRET_LINE_MAX + 2];
	unsigned int lineno = 0;
	int ret = -ENOENT;
	FILE *f;

	if (path == NULL || out == NULL)
		return -EINVAL;
	f = fopen(path, "re");
	if (f == NULL) {
		ret = -errno;
		ckpt_log(CKPT_LOG_ERR, "ckpt.secret", "cannot open secret file %s: %s", path,
			 strerror(errno));
		return ret;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *tok[2] = {NULL, NULL};
		size_t len[2] = {0, 0};
		const char *name = "default", *sec;
		size_t name_len = strlen("default"), sec_len;
		int n;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			ckpt_log(CKPT_LOG_ERR, "ckpt.secret", "%s:%u: line longer than %d bytes",
				 path, lineno, SECRET_LINE_MAX);
			ret = -EINVAL;
			goto out_close;
		}
		n = split_line(line, tok, len);
		if (n < 0) {
			ckpt_log(CKPT_LOG_ERR, "ckpt.secret",
				 "%s:%u: expected \"tenant secret\" or a bare secret", path,
				 lineno);
			ret = -EINVAL;
			goto out_close;
		}
		if (n == 0)
			continue;
		if (n == 2) {
			name = tok[0];
			name_len = len[0];
			sec = tok[1];
			sec_len = len[1];
		} else {
			sec = tok[0];
			sec_len = len[0];
		}
		if (!tenant_name_ok(name, name_len)) {
			ckpt_log(
				CKPT_LOG_ERR, "ckpt.secret",
				"%s:%u: tenant name must be 1..%d printable characters without '/'",
				path, lineno, PMU_NAME_MAX - 1);
			ret = -EINVAL;
			goto out_close;
		}
		if (sec_len < SECRET_MIN) {
			ckpt_log(CKPT_LOG_ERR, "ckpt.secret", "%s:%u: secret shorter than %d bytes",
				 path, lineno, SECRET_MIN);
			ret = -EINVAL;
			goto out_close;
		}
		if (tenant != NULL &&
		    (strlen(tenant) != name_len || memcmp(tenant, name, name_len) != 0))
			continue;
		if (sec_len > max) {
			ckpt_log(CKPT_LOG_ERR, "ckpt.secret",
				 "%s:%u: secret longer than the %zu bytes the caller holds", path,
				 lineno, max);
			ret = -EINVAL;
			goto out_close;
		}
		memcpy(out, sec, sec_len);
		ret = (int)sec_len;
		goto out_close;
	}
	if (ferror(f))
		ret = -EIO;
out_close:
	/* The line buffer held a secret; do not leave it on the stack. */
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return ret;
}
