/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A net_ring port for unit tests that run the worker's poll: one queue pair whose rx ring
 * the test fills and whose tx ring it empties, started. Needs fw_test_eal_up() first.
 */
#ifndef FW_TEST_RING_PORT_H
#define FW_TEST_RING_PORT_H

#include <stdio.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

/**
 * Port @p tag@p n (rings of 64) taking mbufs from @p pool; its rings in @p *rx and
 * @p *tx. @return the port id, or -1.
 */
static inline int fw_test_ring_port(const char *tag, int n, struct rte_mempool *pool,
				    struct rte_ring **rx, struct rte_ring **tx)
{
	struct rte_eth_conf ec = {0};
	char name[32];
	int id;

	snprintf(name, sizeof(name), "%s_rx%d", tag, n);
	*rx = rte_ring_create(name, 64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "%s_tx%d", tag, n);
	*tx = rte_ring_create(name, 64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (*rx == NULL || *tx == NULL)
		return -1;
	snprintf(name, sizeof(name), "%s_ring%d", tag, n);
	id = rte_eth_from_rings(name, rx, 1, tx, 1, 0);
	if (id < 0 || rte_eth_dev_configure((uint16_t)id, 1, 1, &ec) != 0 ||
	    rte_eth_rx_queue_setup((uint16_t)id, 0, 64, 0, NULL, pool) != 0 ||
	    rte_eth_tx_queue_setup((uint16_t)id, 0, 64, 0, NULL) != 0 ||
	    rte_eth_dev_start((uint16_t)id) != 0)
		return -1;
	return id;
}

#endif /* FW_TEST_RING_PORT_H */
