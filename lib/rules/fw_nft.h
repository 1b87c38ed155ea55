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
#include <stdint.h>

#include "fw_rules.h"

/**
 * Import @p spec ("TABLE" for family inet, or "ip:TABLE", "ip6:TABLE", "inet:TABLE") from
 * the kernel of this network namespace into @p rs (appended; policy set).
 * @return 0, or -errno with the reason in @p err: -ENOENT (no such table or no forward
 *   base chain), -EOPNOTSUPP (a rule uses what holdfast cannot enforce), -EINVAL, or the
 *   netlink errno.
 */
int fw_nft_import(const char *spec, struct fw_ruleset *rs, char *err, size_t errlen);

/**
 * Split @p spec as fw_nft_import() reads it: the netfilter family (NFPROTO_*), its name,
 * and the table's name (pointing into @p spec). @return 0 or -EINVAL with @p err.
 */
int fw_nft_spec(const char *spec, uint16_t *family, const char **family_name, const char **table,
		char *err, size_t errlen);

/*
 * Following a table: a netlink socket in the nftables multicast group of this network
 * namespace, which the kernel tells every committed change. Messages about other tables
 * and families are ignored.
 */
struct fw_nft_watch;

/** Listen for changes of @p spec's table. @return the watch, or NULL with errno and @p err. */
struct fw_nft_watch *fw_nft_watch_open(const char *spec, char *err, size_t errlen);

/** The socket to poll for input. */
int fw_nft_watch_fd(const struct fw_nft_watch *w);

/**
 * Read every message waiting (never blocks). @return how many changed the table (0: none
 * did), -ENOBUFS when the kernel dropped messages (the table may have changed: read it
 * again), or another -errno.
 */
int fw_nft_watch_read(struct fw_nft_watch *w);

/*
 * The change announcements in @p buf (what the kernel multicast; the fuzz target
 * lib/rules/fuzz_nft.c feeds it anything) that change @p table of @p family.
 * @return how many.
 */
int fw_nft_msgs_concern(uint16_t family, const char *table, const void *buf, size_t len);

void fw_nft_watch_close(struct fw_nft_watch **w);

#endif /* FW_NFT_H */
