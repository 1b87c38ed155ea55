/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rules from a kernel nftables table, read with libnftnl, so operators keep using nft.
 * The table's base chain on the forward hook is imported in order; its policy becomes
 * the default policy. The supported subset: meta l4proto / nfproto / iifname ("inside",
 * "outside" name the zone), ip/ip6 saddr/daddr (prefixes), ip protocol, ip6 nexthdr,
 * tcp/udp sport/dport (values and ranges), counter, and the verdicts accept, drop and
 * reject. Anything else is refused with the rule's chain and handle named.
 */
#ifndef FW_NFT_H
#define FW_NFT_H

#include <stddef.h>

#include "fw_rules.h"

/**
 * Import @p spec ("TABLE" for family inet, or "ip:TABLE", "ip6:TABLE", "inet:TABLE") from
 * the kernel of this network namespace into @p rs (appended; policy set).
 * @return 0, or -errno with the reason in @p err: -ENOENT (no such table or no forward
 *   base chain), -EOPNOTSUPP (a rule uses what holdfast cannot enforce), -EINVAL, or the
 *   netlink errno.
 */
int fw_nft_import(const char *spec, struct fw_ruleset *rs, char *err, size_t errlen);

#endif /* FW_NFT_H */
