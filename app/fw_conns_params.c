/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The parameters of /holdfast/conns,W,CURSOR[,MAX]: a file of its own, so that its fuzz
 * target (fuzz_conns.c) builds without DPDK.
 */
#include <errno.h>
#include <stdint.h>

#include "fw_conns.h"

/*
 * A decimal number at *@p p, at most @p max, ended by ',' (skipped) or the end.
 * @return 0 with *@p p past it, or -EINVAL.
 */
static int number(const char **p, uint32_t max, uint32_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	if (*s == ',' && s[1] != '\0')
		s++;
	else if (*s != '\0')
		return -EINVAL;
	*p = s;
	*out = (uint32_t)v;
	return 0;
}

int fw_conns_params_parse(const char *s, struct fw_conns_params *out)
{
	struct fw_conns_params v = {.max = FW_CONNS_PAGE_MAX};

	if (number(&s, UINT32_MAX, &v.worker) != 0 || *s == '\0' ||
	    number(&s, UINT32_MAX, &v.cursor) != 0)
		return -EINVAL;
	if (*s != '\0' && (number(&s, FW_CONNS_PAGE_MAX, &v.max) != 0 || *s != '\0' || v.max == 0))
		return -EINVAL;
	*out = v;
	return 0;
}
