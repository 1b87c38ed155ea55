/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry point for the reader of nftables change announcements (the live rules'
 * netlink watch): arbitrary bytes as netlink messages. "No crash, no read past the end"
 * (the input is copied to a buffer of its exact length), and a count never negative nor
 * more than the messages the bytes could hold.
 *
 * A dump's reading (fw_nft_import) is not fuzzed here: its messages are parsed by
 * libnftnl, which crashes on malformed attributes (nftnl_chain_nlmsg_parse); they come
 * only from the kernel, nfnetlink taking no messages from unprivileged processes.
 */
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fw_nft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* netlink messages are 4-aligned: a copy, exactly as long as the input */
	uint32_t *buf = malloc(size ? size : 1);
	int n;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	n = fw_nft_msgs_concern(NFPROTO_INET, "t", buf, size);
	if (n < 0 || (size_t)n > size / sizeof(struct nlmsghdr))
		abort();
	free(buf);
	return 0;
}
