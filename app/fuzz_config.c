/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry point for holdfast.conf: arbitrary bytes as the file fw_config_load
 * reads (through a memfd, so the loader's own line handling is what runs), then the
 * whole-configuration check. Properties beyond "no crash, no read past the end":
 * - a load that fails says why ("file:line: why" in the error buffer, never empty);
 * - every rule it took formats (fw_rule_format) into text that parses back into the same
 *   rule: what `hfctl rules` and the logs show is what is in force.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fw_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fields a rule's text carries (not where it came from). */
static int same_rule(const struct fw_rule *a, const struct fw_rule *b)
{
	return a->action == b->action && a->zone == b->zone && a->family == b->family &&
	       a->proto == b->proto && a->src_len == b->src_len && a->dst_len == b->dst_len &&
	       memcmp(a->src, b->src, sizeof(a->src)) == 0 &&
	       memcmp(a->dst, b->dst, sizeof(a->dst)) == 0 &&
	       memcmp(a->sport, b->sport, sizeof(a->sport)) == 0 &&
	       memcmp(a->dport, b->dport, sizeof(a->dport)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct fw_config c;
	char path[64], err[512], text[512];
	int rc;

	if (fd < 0) {
		fd = memfd_create("fuzz_config", 0);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fw_config_defaults(&c);
	err[0] = '\0';
	rc = fw_config_load(&c, path, err, sizeof(err));
	if (rc != 0 && err[0] == '\0')
		abort();
	if (rc == 0) {
		err[0] = '\0';
		if (fw_config_check(&c, err, sizeof(err)) != 0 && err[0] == '\0')
			abort();
	}
	for (unsigned int i = 0; i < c.rules.n; i++) {
		struct fw_rule back;

		if (fw_rule_format(&c.rules.rules[i], text, sizeof(text)) >= (int)sizeof(text))
			abort();
		if (fw_rule_parse(text, &back, err, sizeof(err)) != 0 ||
		    !same_rule(&c.rules.rules[i], &back)) {
			fprintf(stderr, "rule %u formats as '%s', which parses %s\n", i, text,
				err[0] ? err : "into another rule");
			abort();
		}
	}
	fw_config_release(&c);
	return 0;
}
