/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rules: what may open a connection. Parsed from holdfast.conf lines or imported from an
 * nftables table, compiled into rte_acl (one context per address family and ingress
 * zone), evaluated only for packets that would open a connection. First match wins;
 * nothing matching means the default policy. Private to the firewall.
 */
#ifndef FW_RULES_H
#define FW_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "fw_parse.h"

enum fw_action {
	FW_ACT_ACCEPT = 1,
	FW_ACT_DROP,
	FW_ACT_REJECT, /**< drop, and answer TCP RST / ICMP unreachable */
};

/** Which side a packet enters from. */
enum fw_zone {
	FW_ZONE_ANY = 0,
	FW_ZONE_INSIDE = 1,
	FW_ZONE_OUTSIDE = 2,
};

#define FW_RULE_ORIGIN_MAX 48

struct fw_rule {
	enum fw_action action;
	enum fw_zone zone;
	uint8_t family;	 /**< 0 any, 4, 6 */
	uint8_t proto;	 /**< 0 any */
	uint8_t src_len; /**< prefix length; 0 any */
	uint8_t dst_len;
	uint8_t src[16]; /**< network order */
	uint8_t dst[16];
	uint16_t sport[2]; /**< inclusive range, host order; 0-65535 any */
	uint16_t dport[2];
	char origin[FW_RULE_ORIGIN_MAX]; /**< "holdfast.conf:12" or "nft inet fw/input handle 4" */
};

struct fw_ruleset {
	struct fw_rule *rules;
	unsigned int n;
	unsigned int cap;
	enum fw_action policy; /**< default: drop */
};

/**
 * Parse the words of one rule ("accept from inside proto tcp dst 198.19.0.0/16 dport 80").
 * Grammar: ACTION [from inside|outside|any] [family ip|ip6] [proto tcp|udp|icmp|icmpv6|N]
 *          [src PREFIX] [sport P[-Q]] [dst PREFIX] [dport P[-Q]]
 * @return 0, or -EINVAL with a reason in @p err.
 */
int fw_rule_parse(const char *text, struct fw_rule *out, char *err, size_t errlen);

/** Append a rule. @return 0 or -ENOMEM. */
int fw_ruleset_add(struct fw_ruleset *rs, const struct fw_rule *r);

/** Free the rules; the set is empty afterwards. */
void fw_ruleset_clear(struct fw_ruleset *rs);

struct fw_acl;

/**
 * Compile @p rs for the fast path on NUMA @p socket.
 * @return the classifier, or NULL with errno and a reason in @p err.
 */
struct fw_acl *fw_acl_build(const struct fw_ruleset *rs, const char *name, int socket, char *err,
			    size_t errlen);

void fw_acl_free(struct fw_acl **ap);

/**
 * The rule a packet entering from @p zone matches, or NULL (then the policy applies).
 * @p p must be FW_PARSE_OK.
 */
const struct fw_rule *fw_acl_match(const struct fw_acl *a, enum fw_zone zone,
				   const struct fw_parsed *p);

/** What the rules decide for @p p: the matched rule's action or the policy. */
enum fw_action fw_acl_decide(const struct fw_acl *a, enum fw_zone zone, const struct fw_parsed *p,
			     const struct fw_rule **matched);

/**
 * The rules @p a was built from, in order, and their count in *@p n: the rule
 * fw_acl_match() returns points into them (its index is the difference).
 */
const struct fw_rule *fw_acl_rules(const struct fw_acl *a, unsigned int *n);

/** The default policy of @p a: what applies when no rule matches. */
enum fw_action fw_acl_policy(const struct fw_acl *a);

const char *fw_action_name(enum fw_action a);

/** Write @p r in the config grammar (what fw_rule_parse reads). @return snprintf's count. */
int fw_rule_format(const struct fw_rule *r, char *buf, size_t len);

#endif /* FW_RULES_H */
