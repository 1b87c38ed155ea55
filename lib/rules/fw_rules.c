/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_acl.h>
#include <rte_common.h>

#include "fw_rules.h"

#define MAX_WORDS 32

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

const char *fw_action_name(enum fw_action a)
{
	switch (a) {
	case FW_ACT_ACCEPT:
		return "accept";
	case FW_ACT_DROP:
		return "drop";
	case FW_ACT_REJECT:
		return "reject";
	}
	return "?";
}

static int parse_prefix(const char *s, uint8_t *family, uint8_t addr[16], uint8_t *len)
{
	char buf[64];
	char *slash, *end;
	uint8_t fam = strchr(s, ':') ? 6 : 4;
	unsigned long plen = fam == 4 ? 32 : 128;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = '\0';
		if (*slash == '\0')
			return -EINVAL;
		errno = 0;
		plen = strtoul(slash, &end, 10);
		if (errno || *end || plen > (fam == 4 ? 32u : 128u))
			return -EINVAL;
	}
	memset(addr, 0, 16);
	if (inet_pton(fam == 4 ? AF_INET : AF_INET6, buf, addr) != 1)
		return -EINVAL;
	/* Host bits set below the prefix are a typo more often than an intent. */
	for (unsigned int bit = (unsigned int)plen; bit < (fam == 4 ? 32u : 128u); bit++)
		if (addr[bit / 8] & (0x80 >> (bit % 8)))
			return -EINVAL;
	*family = fam;
	*len = (uint8_t)plen;
	return 0;
}

static int parse_port_range(const char *s, uint16_t out[2])
{
	unsigned long lo, hi;
	char *end;

	errno = 0;
	lo = strtoul(s, &end, 10);
	if (errno || end == s || lo > 65535)
		return -EINVAL;
	hi = lo;
	if (*end == '-') {
		const char *h = end + 1;

		hi = strtoul(h, &end, 10);
		if (errno || end == h || hi > 65535 || hi < lo)
			return -EINVAL;
	}
	if (*end != '\0')
		return -EINVAL;
	out[0] = (uint16_t)lo;
	out[1] = (uint16_t)hi;
	return 0;
}

static int parse_proto(const char *s, uint8_t *proto)
{
	static const struct {
		const char *name;
		uint8_t num;
	} names[] = {{"tcp", 6}, {"udp", 17}, {"icmp", 1}, {"icmpv6", 58}, {"any", 0}};
	unsigned long v;
	char *end;

	for (size_t i = 0; i < RTE_DIM(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*proto = names[i].num;
			return 0;
		}
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 255)
		return -EINVAL;
	*proto = (uint8_t)v;
	return 0;
}

int fw_rule_parse(const char *text, struct fw_rule *out, char *err, size_t errlen)
{
	char buf[512];
	char *words[MAX_WORDS];
	int n = 0;
	struct fw_rule r;
	int have_ports = 0;
	uint8_t fam;

	if (strlen(text) >= sizeof(buf))
		return fail(err, errlen, "rule longer than %zu characters", sizeof(buf) - 1);
	strcpy(buf, text);
	for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		if (n == MAX_WORDS)
			return fail(err, errlen, "more than %d words", MAX_WORDS);
		words[n++] = w;
	}
	if (n == 0)
		return fail(err, errlen, "empty rule: expected accept, drop or reject");

	memset(&r, 0, sizeof(r));
	r.sport[1] = r.dport[1] = 65535;
	if (strcmp(words[0], "accept") == 0)
		r.action = FW_ACT_ACCEPT;
	else if (strcmp(words[0], "drop") == 0)
		r.action = FW_ACT_DROP;
	else if (strcmp(words[0], "reject") == 0)
		r.action = FW_ACT_REJECT;
	else
		return fail(err, errlen, "unknown action '%s': expected accept, drop or reject",
			    words[0]);

	for (int i = 1; i < n; i += 2) {
		const char *k = words[i], *v = i + 1 < n ? words[i + 1] : NULL;

		if (v == NULL)
			return fail(err, errlen, "'%s' needs a value", k);
		if (strcmp(k, "from") == 0) {
			if (strcmp(v, "inside") == 0)
				r.zone = FW_ZONE_INSIDE;
			else if (strcmp(v, "outside") == 0)
				r.zone = FW_ZONE_OUTSIDE;
			else if (strcmp(v, "any") == 0)
				r.zone = FW_ZONE_ANY;
			else
				return fail(err, errlen,
					    "from '%s': expected inside, outside or any", v);
		} else if (strcmp(k, "family") == 0) {
			fam = strcmp(v, "ip") == 0 ? 4 : strcmp(v, "ip6") == 0 ? 6 : 0;
			if (fam == 0)
				return fail(err, errlen, "family '%s': expected ip or ip6", v);
			if (r.family && r.family != fam)
				return fail(err, errlen, "family %s contradicts an address", v);
			r.family = fam;
		} else if (strcmp(k, "proto") == 0) {
			if (parse_proto(v, &r.proto))
				return fail(err, errlen,
					    "proto '%s': expected tcp, udp, icmp, icmpv6, any "
					    "or 0-255",
					    v);
		} else if (strcmp(k, "src") == 0 || strcmp(k, "dst") == 0) {
			int src = k[0] == 's';

			if (parse_prefix(v, &fam, src ? r.src : r.dst,
					 src ? &r.src_len : &r.dst_len))
				return fail(err, errlen,
					    "%s '%s': expected an IPv4 or IPv6 prefix with no "
					    "host bits set",
					    k, v);
			if (r.family && r.family != fam)
				return fail(err, errlen, "%s %s: mixes IPv4 and IPv6", k, v);
			r.family = fam;
		} else if (strcmp(k, "sport") == 0 || strcmp(k, "dport") == 0) {
			if (parse_port_range(v, k[0] == 's' ? r.sport : r.dport))
				return fail(err, errlen,
					    "%s '%s': expected a port or range like 1024-65535", k,
					    v);
			have_ports = 1;
		} else {
			return fail(err, errlen, "unknown word '%s'", k);
		}
	}
	if (have_ports && r.proto != 6 && r.proto != 17)
		return fail(err, errlen, "ports need proto tcp or udp");
	if (r.family == 4 && r.proto == 58)
		return fail(err, errlen, "icmpv6 in an IPv4 rule");
	*out = r;
	return 0;
}

static size_t add_prefix(char *buf, size_t len, size_t at, const char *word, uint8_t family,
			 const uint8_t *addr, uint8_t plen)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, a, sizeof(a));
	return at + (size_t)snprintf(buf + at, at < len ? len - at : 0, " %s %s/%u", word, a, plen);
}

static size_t add_ports(char *buf, size_t len, size_t at, const char *word, const uint16_t *p)
{
	if (p[0] == 0 && p[1] == 65535)
		return at;
	if (p[0] == p[1])
		return at +
		       (size_t)snprintf(buf + at, at < len ? len - at : 0, " %s %u", word, p[0]);
	return at +
	       (size_t)snprintf(buf + at, at < len ? len - at : 0, " %s %u-%u", word, p[0], p[1]);
}

int fw_rule_format(const struct fw_rule *r, char *buf, size_t len)
{
	static const char *const zones[] = {"any", "inside", "outside"};
	size_t at = (size_t)snprintf(buf, len, "%s", fw_action_name(r->action));

	if (r->zone != FW_ZONE_ANY)
		at += (size_t)snprintf(buf + at, at < len ? len - at : 0, " from %s",
				       zones[r->zone]);
	if (r->family && !r->src_len && !r->dst_len)
		at += (size_t)snprintf(buf + at, at < len ? len - at : 0, " family %s",
				       r->family == 4 ? "ip" : "ip6");
	if (r->proto) {
		char num[4];
		const char *name = r->proto == 6    ? "tcp"
				   : r->proto == 17 ? "udp"
				   : r->proto == 1  ? "icmp"
				   : r->proto == 58 ? "icmpv6"
						    : NULL;

		if (name == NULL) {
			snprintf(num, sizeof(num), "%u", r->proto);
			name = num;
		}
		at += (size_t)snprintf(buf + at, at < len ? len - at : 0, " proto %s", name);
	}
	if (r->src_len)
		at = add_prefix(buf, len, at, "src", r->family, r->src, r->src_len);
	at = add_ports(buf, len, at, "sport", r->sport);
	if (r->dst_len)
		at = add_prefix(buf, len, at, "dst", r->family, r->dst, r->dst_len);
	at = add_ports(buf, len, at, "dport", r->dport);
	return (int)at;
}

int fw_ruleset_add(struct fw_ruleset *rs, const struct fw_rule *r)
{
	if (rs->n == rs->cap) {
		unsigned int cap = rs->cap ? rs->cap * 2 : 16;
		struct fw_rule *v = realloc(rs->rules, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		rs->rules = v;
		rs->cap = cap;
	}
	rs->rules[rs->n++] = *r;
	return 0;
}

void fw_ruleset_clear(struct fw_ruleset *rs)
{
	free(rs->rules);
	rs->rules = NULL;
	rs->n = rs->cap = 0;
}

/*
 * Classification keys. rte_acl reads the first byte alone, then 4-byte groups; rule values
 * are host order, key bytes network order (as they sit in the packet).
 */
struct acl4_key {
	uint8_t proto;
	uint8_t pad[3];
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
};

struct acl6_key {
	uint8_t proto;
	uint8_t pad[3];
	uint32_t src[4];
	uint32_t dst[4];
	uint16_t sport;
	uint16_t dport;
};

enum {
	F4_PROTO,
	F4_SRC,
	F4_DST,
	F4_SPORT,
	F4_DPORT,
	F4_NUM
};
enum {
	F6_PROTO,
	F6_SRC0,
	F6_DST0 = F6_SRC0 + 4,
	F6_SPORT = F6_DST0 + 4,
	F6_DPORT,
	F6_NUM
};

RTE_ACL_RULE_DEF(acl4_rule, F4_NUM);
RTE_ACL_RULE_DEF(acl6_rule, F6_NUM);

static const struct rte_acl_field_def acl4_defs[F4_NUM] = {
	{RTE_ACL_FIELD_TYPE_BITMASK, 1, F4_PROTO, 0, offsetof(struct acl4_key, proto)},
	{RTE_ACL_FIELD_TYPE_MASK, 4, F4_SRC, 1, offsetof(struct acl4_key, src)},
	{RTE_ACL_FIELD_TYPE_MASK, 4, F4_DST, 2, offsetof(struct acl4_key, dst)},
	{RTE_ACL_FIELD_TYPE_RANGE, 2, F4_SPORT, 3, offsetof(struct acl4_key, sport)},
	{RTE_ACL_FIELD_TYPE_RANGE, 2, F4_DPORT, 3, offsetof(struct acl4_key, dport)},
};

static void acl6_defs(struct rte_acl_field_def d[F6_NUM])
{
	d[F6_PROTO] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_BITMASK, 1, F6_PROTO, 0,
						 offsetof(struct acl6_key, proto)};
	for (int i = 0; i < 4; i++) {
		d[F6_SRC0 + i] = (struct rte_acl_field_def){
			RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)(F6_SRC0 + i), (uint8_t)(1 + i),
			(uint32_t)(offsetof(struct acl6_key, src) + 4 * i)};
		d[F6_DST0 + i] = (struct rte_acl_field_def){
			RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)(F6_DST0 + i), (uint8_t)(5 + i),
			(uint32_t)(offsetof(struct acl6_key, dst) + 4 * i)};
	}
	d[F6_SPORT] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_RANGE, 2, F6_SPORT, 9,
						 offsetof(struct acl6_key, sport)};
	d[F6_DPORT] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_RANGE, 2, F6_DPORT, 9,
						 offsetof(struct acl6_key, dport)};
}

/* Contexts by [family 4/6][zone of entry: inside/outside]. */
struct fw_acl {
	struct rte_acl_ctx *ctx[2][2];
	const struct fw_rule *rules; /* copy, indexed by userdata - 1 */
	struct fw_rule *owned;
	unsigned int n;
	enum fw_action policy;
};

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void mask_field(struct rte_acl_field *f, const uint8_t *addr, int bits)
{
	f->value.u32 = bits > 0 ? be32_at(addr) : 0;
	f->mask_range.u32 = (uint32_t)(bits < 0 ? 0 : bits > 32 ? 32 : bits);
}

static void common_fields(struct rte_acl_field *proto, struct rte_acl_field *sp,
			  struct rte_acl_field *dp, const struct fw_rule *r)
{
	proto->value.u8 = r->proto;
	proto->mask_range.u8 = r->proto ? 0xff : 0;
	sp->value.u16 = r->sport[0];
	sp->mask_range.u16 = r->sport[1];
	dp->value.u16 = r->dport[0];
	dp->mask_range.u16 = r->dport[1];
}

static int add_rule(struct rte_acl_ctx *c4, struct rte_acl_ctx *c6, const struct fw_rule *r,
		    unsigned int idx, unsigned int n)
{
	struct rte_acl_rule_data d = {
		.category_mask = 1,
		.priority = (int32_t)(n - idx), /* first match wins */
		.userdata = idx + 1,
	};
	int rc = 0;

	if (c4 != NULL && r->family != 6) {
		struct acl4_rule a = {.data = d};

		common_fields(&a.field[F4_PROTO], &a.field[F4_SPORT], &a.field[F4_DPORT], r);
		mask_field(&a.field[F4_SRC], r->src, r->src_len);
		mask_field(&a.field[F4_DST], r->dst, r->dst_len);
		rc = rte_acl_add_rules(c4, (struct rte_acl_rule *)&a, 1);
	}
	if (c6 != NULL && rc == 0 && r->family != 4) {
		struct acl6_rule a = {.data = d};

		common_fields(&a.field[F6_PROTO], &a.field[F6_SPORT], &a.field[F6_DPORT], r);
		for (int i = 0; i < 4; i++) {
			mask_field(&a.field[F6_SRC0 + i], r->src + 4 * i, r->src_len - 32 * i);
			mask_field(&a.field[F6_DST0 + i], r->dst + 4 * i, r->dst_len - 32 * i);
		}
		rc = rte_acl_add_rules(c6, (struct rte_acl_rule *)&a, 1);
	}
	return rc;
}

void fw_acl_free(struct fw_acl **ap)
{
	struct fw_acl *a;

	if (ap == NULL || *ap == NULL)
		return;
	a = *ap;
	for (int f = 0; f < 2; f++)
		for (int z = 0; z < 2; z++)
			rte_acl_free(a->ctx[f][z]);
	free(a->owned);
	free(a);
	*ap = NULL;
}

struct fw_acl *fw_acl_build(const struct fw_ruleset *rs, const char *name, int socket, char *err,
			    size_t errlen)
{
	struct rte_acl_field_def d6[F6_NUM];
	struct fw_acl *a;
	int rc = 0;

	acl6_defs(d6);
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->policy = rs->policy ? rs->policy : FW_ACT_DROP;
	a->n = rs->n;
	if (rs->n) {
		a->owned = malloc(rs->n * sizeof(*a->owned));
		if (a->owned == NULL) {
			rc = -ENOMEM;
			goto err_free;
		}
		memcpy(a->owned, rs->rules, rs->n * sizeof(*a->owned));
	}
	a->rules = a->owned;
	for (int f = 0; f < 2 && rc == 0; f++) {
		for (int z = 0; z < 2 && rc == 0; z++) {
			char cname[RTE_ACL_NAMESIZE];
			struct rte_acl_param p = {
				.name = cname,
				.socket_id = socket,
				.rule_size = f ? RTE_ACL_RULE_SZ(F6_NUM) : RTE_ACL_RULE_SZ(F4_NUM),
				.max_rule_num = rs->n ? rs->n : 1,
			};
			struct rte_acl_config cfg = {.num_categories = 1,
						     .num_fields = f ? F6_NUM : F4_NUM};

			snprintf(cname, sizeof(cname), "%s%d%d", name, f, z);
			memcpy(cfg.defs, f ? d6 : acl4_defs,
			       sizeof(cfg.defs[0]) * (f ? F6_NUM : F4_NUM));
			a->ctx[f][z] = rte_acl_create(&p);
			if (a->ctx[f][z] == NULL) {
				rc = -ENOMEM;
				break;
			}
			unsigned int added = 0;

			for (unsigned int i = 0; i < rs->n && rc == 0; i++) {
				const struct fw_rule *r = &rs->rules[i];

				if (r->zone != FW_ZONE_ANY &&
				    r->zone != (z ? FW_ZONE_OUTSIDE : FW_ZONE_INSIDE))
					continue;
				if ((f == 0 && r->family == 6) || (f == 1 && r->family == 4))
					continue;
				rc = f ? add_rule(NULL, a->ctx[f][z], r, i, rs->n)
				       : add_rule(a->ctx[f][z], NULL, r, i, rs->n);
				if (rc)
					fail(err, errlen, "%s: rte_acl refused the rule: %s",
					     r->origin, strerror(-rc));
				added++;
			}
			if (rc == 0 && added == 0) {
				/* rte_acl builds nothing from no rules: no context, no match. */
				rte_acl_free(a->ctx[f][z]);
				a->ctx[f][z] = NULL;
			} else if (rc == 0) {
				rc = rte_acl_build(a->ctx[f][z], &cfg);
				if (rc)
					fail(err, errlen, "rte_acl_build: %s", strerror(-rc));
			}
		}
	}
	if (rc)
		goto err_free;
	return a;

err_free:
	fw_acl_free(&a);
	errno = -rc;
	return NULL;
}

const struct fw_rule *fw_acl_match(const struct fw_acl *a, enum fw_zone zone,
				   const struct fw_parsed *p)
{
	const int z = zone == FW_ZONE_OUTSIDE;
	uint32_t result = 0;

	if (p->family == 4) {
		struct acl4_key k = {.proto = p->proto};
		const uint8_t *data = (const uint8_t *)&k;

		memcpy(&k.src, p->saddr, 4);
		memcpy(&k.dst, p->daddr, 4);
		k.sport = p->sport;
		k.dport = p->dport;
		if (a->ctx[0][z])
			rte_acl_classify(a->ctx[0][z], &data, &result, 1, 1);
	} else {
		struct acl6_key k = {.proto = p->proto};
		const uint8_t *data = (const uint8_t *)&k;

		memcpy(k.src, p->saddr, 16);
		memcpy(k.dst, p->daddr, 16);
		k.sport = p->sport;
		k.dport = p->dport;
		if (a->ctx[1][z])
			rte_acl_classify(a->ctx[1][z], &data, &result, 1, 1);
	}
	return result ? &a->rules[result - 1] : NULL;
}

enum fw_action fw_acl_decide(const struct fw_acl *a, enum fw_zone zone, const struct fw_parsed *p,
			     const struct fw_rule **matched)
{
	const struct fw_rule *r = fw_acl_match(a, zone, p);

	if (matched)
		*matched = r;
	return r ? r->action : a->policy;
}

const struct fw_rule *fw_acl_rules(const struct fw_acl *a, unsigned int *n)
{
	*n = a->n;
	return a->rules;
}

enum fw_action fw_acl_policy(const struct fw_acl *a)
{
	return a->policy;
}
