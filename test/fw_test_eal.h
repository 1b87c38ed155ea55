/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * EAL for unit tests that need DPDK memory (rte_hash, rte_acl): no hugepages, no PCI, no
 * shared config, one lcore, quiet. Use as cmocka group setup and teardown.
 */
#ifndef FW_TEST_EAL_H
#define FW_TEST_EAL_H

#include <rte_eal.h>

static inline int fw_test_eal_up(void **state)
{
	char *argv[] = {"fw_test",	 "--no-huge", "-m", "128",	   "--no-pci",
			"--no-shconf",	 "-l",	      "0",  "--log-level", "lib.eal:error",
			"--no-telemetry"};

	(void)state;
	return rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv) < 0 ? -1 : 0;
}

static inline int fw_test_eal_down(void **state)
{
	(void)state;
	return rte_eal_cleanup();
}

#endif /* FW_TEST_EAL_H */
