/* SPDX-License-Identifier: BSD-3-Clause */
/* Import an nftables table the way holdfast does and print it in holdfast.conf syntax. */
#include <stdio.h>

#include "fw_nft.h"

int main(int argc, char **argv)
{
	struct fw_ruleset rs = {0};
	char err[256], line[256];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s [FAMILY:]TABLE\n", argv[0]);
		return 2;
	}
	rc = fw_nft_import(argv[1], &rs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("policy %s\n", fw_action_name(rs.policy));
	for (unsigned int i = 0; i < rs.n; i++) {
		fw_rule_format(&rs.rules[i], line, sizeof(line));
		printf("rule %s\n", line);
	}
	fw_ruleset_clear(&rs);
	return 0;
}
