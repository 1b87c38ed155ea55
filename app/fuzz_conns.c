/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry point for the parameters of /holdfast/conns,W,CURSOR[,MAX]
 * (fw_conns_params_parse), which anyone who reaches the telemetry socket writes. No crash,
 * no read past the end; what is taken is digits and commas only, in range, and reads back
 * the same once written out again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_conns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Telemetry hands a NUL-terminated string: a copy, exactly as long, and its NUL. */
	char *s = malloc(size + 1), again[48];
	struct fw_conns_params q, r;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (fw_conns_params_parse(s, &q) == 0) {
		if (strspn(s, "0123456789,") != strlen(s) || q.max == 0 ||
		    q.max > FW_CONNS_PAGE_MAX)
			abort();
		snprintf(again, sizeof(again), "%u,%u,%u", q.worker, q.cursor, q.max);
		if (fw_conns_params_parse(again, &r) != 0 || memcmp(&q, &r, sizeof(q)) != 0)
			abort();
	}
	free(s);
	return 0;
}
