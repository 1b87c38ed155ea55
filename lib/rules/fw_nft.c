/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Import by symbolic execution of each rule's expressions: loads (meta, payload) say what
 * a register holds, bitwise turns an address into a prefix, cmp/range constrain the field,
 * and the verdict ends the rule. A rule only becomes a holdfast rule if every expression
 * was understood: a firewall that silently ignores half a rule is worse than none.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include "fw_nft.h"

#define NREGS 32

enum field {
	F_NONE = 0,
	F_L4PROTO,
	F_NFPROTO,
	F_IIFNAME,
	F_SADDR4,
	F_DADDR4,
	F_SADDR6,
	F_DADDR6,
	F_SPORT,
	F_DPORT,
};

struct reg {
	enum field f;
	uint32_t len; /* bytes loaded: nft loads only the prefix's bytes of an address */
	uint8_t mask[16];
	int masked;
};

struct import {
	struct fw_ruleset *rs;
	const char *family_name;
	const char *table;
	const char *chain;
	uint32_t hooknum_found;
	int chain_found;
	uint32_t policy;
	char *err;
	size_t errlen;
	int rc;
};

static int failf(struct import *im, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int failf(struct import *im, int rc, const char *fmt, ...)
{
	va_list ap;

	if (im->rc == 0) {
		va_start(ap, fmt);
		vsnprintf(im->err, im->errlen, fmt, ap);
		va_end(ap);
		im->rc = rc;
	}
	return rc;
}

static int prefix_len(const uint8_t *mask, size_t len)
{
	int bits = 0;
	size_t i = 0;

	while (i < len && mask[i] == 0xff)
		bits += 8, i++;
	if (i < len) {
		uint8_t m = mask[i];

		while (m & 0x80)
			bits++, m = (uint8_t)(m << 1);
		if (m)
			return -1;
		for (i++; i < len; i++)
			if (mask[i])
				return -1;
	}
	return bits;
}

struct rule_ctx {
	struct import *im;
	char where[FW_RULE_ORIGIN_MAX];
	struct reg regs[NREGS];
	struct fw_rule r;
	int have_verdict;
	int ok;
};

static uint32_t reg_index(uint32_t r)
{
	/* 16-byte NFT_REG_1..4 alias the 4-byte registers from NFT_REG32_00 on. */
	if (r >= NFT_REG_1 && r <= NFT_REG_4)
		return NFT_REG32_00 + (r - NFT_REG_1) * 4;
	return r;
}

static int unsupported(struct rule_ctx *x, const char *what)
{
	failf(x->im, -EOPNOTSUPP, "%s: unsupported: %s", x->where, what);
	x->ok = 0;
	return -1;
}

static int do_meta(struct rule_ctx *x, struct nftnl_expr *e)
{
	uint32_t key = nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY);
	uint32_t d;

	if (!nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG))
		return unsupported(x, "meta set");
	d = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_META_DREG));
	if (d >= NREGS)
		return unsupported(x, "register");
	memset(&x->regs[d], 0, sizeof(x->regs[d]));
	switch (key) {
	case NFT_META_L4PROTO:
		x->regs[d].f = F_L4PROTO;
		return 0;
	case NFT_META_NFPROTO:
		x->regs[d].f = F_NFPROTO;
		return 0;
	case NFT_META_IIFNAME:
		x->regs[d].f = F_IIFNAME;
		return 0;
	default:
		return unsupported(x, "meta key (only l4proto, nfproto, iifname)");
	}
}

static int do_payload(struct rule_ctx *x, struct nftnl_expr *e)
{
	uint32_t base = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
	uint32_t off = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
	uint32_t len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
	uint32_t d;
	enum field f = F_NONE;

	if (!nftnl_expr_is_set(e, NFTNL_EXPR_PAYLOAD_DREG))
		return unsupported(x, "payload write");
	d = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_DREG));
	if (d >= NREGS)
		return unsupported(x, "register");
	if (base == NFT_PAYLOAD_NETWORK_HEADER) {
		int v6 = x->r.family == 6 || strcmp(x->im->family_name, "ip6") == 0;

		if (!v6 && off == 12 && len >= 1 && len <= 4)
			f = F_SADDR4;
		else if (!v6 && off == 16 && len >= 1 && len <= 4)
			f = F_DADDR4;
		else if (!v6 && off == 9 && len == 1)
			f = F_L4PROTO;
		else if (v6 && off == 8 && len >= 1 && len <= 16)
			f = F_SADDR6;
		else if (v6 && off == 24 && len >= 1 && len <= 16)
			f = F_DADDR6;
		else if (v6 && off == 6 && len == 1)
			f = F_L4PROTO;
	} else if (base == NFT_PAYLOAD_TRANSPORT_HEADER && len == 2) {
		f = off == 0 ? F_SPORT : off == 2 ? F_DPORT : F_NONE;
	}
	if (f == F_NONE)
		return unsupported(x, "header field (only addresses, protocol and ports)");
	memset(&x->regs[d], 0, sizeof(x->regs[d]));
	x->regs[d].f = f;
	x->regs[d].len = len;
	return 0;
}

static int do_bitwise(struct rule_ctx *x, struct nftnl_expr *e)
{
	uint32_t s = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_SREG));
	uint32_t d = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_DREG));
	uint32_t mlen = 0, xlen = 0;
	const uint8_t *mask = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &mlen);
	const uint8_t *xr = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR, &xlen);
	enum field f;

	if (s >= NREGS || d >= NREGS || mask == NULL || mlen != x->regs[s].len)
		return unsupported(x, "bitwise");
	f = x->regs[s].f;
	if (f != F_SADDR4 && f != F_DADDR4 && f != F_SADDR6 && f != F_DADDR6)
		return unsupported(x, "bitwise on anything but an address");
	for (uint32_t i = 0; xr && i < xlen; i++)
		if (xr[i])
			return unsupported(x, "bitwise xor");
	x->regs[d] = x->regs[s];
	memcpy(x->regs[d].mask, mask, mlen);
	x->regs[d].masked = 1;
	return 0;
}

static int set_addr(struct rule_ctx *x, const struct reg *g, const uint8_t *v, uint32_t len)
{
	const int src = g->f == F_SADDR4 || g->f == F_SADDR6;
	const uint8_t fam = (g->f == F_SADDR4 || g->f == F_DADDR4) ? 4 : 6;
	int plen = g->masked ? prefix_len(g->mask, len) : (int)len * 8;

	if (plen < 0)
		return unsupported(x, "address mask that is not a prefix");
	if (x->r.family && x->r.family != fam)
		return unsupported(x, "IPv4 and IPv6 in one rule");
	x->r.family = fam;
	memset(src ? x->r.src : x->r.dst, 0, 16);
	memcpy(src ? x->r.src : x->r.dst, v, len);
	if (src)
		x->r.src_len = (uint8_t)plen;
	else
		x->r.dst_len = (uint8_t)plen;
	return 0;
}

static uint16_t be16v(const uint8_t *v)
{
	return (uint16_t)(v[0] << 8 | v[1]);
}

static int do_cmp(struct rule_ctx *x, struct nftnl_expr *e)
{
	uint32_t s = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_SREG));
	uint32_t op = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP);
	uint32_t len = 0;
	const uint8_t *v = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	const struct reg *g;

	if (s >= NREGS || v == NULL)
		return unsupported(x, "cmp");
	g = &x->regs[s];
	if (g->f == F_SPORT || g->f == F_DPORT) {
		uint16_t *range = g->f == F_SPORT ? x->r.sport : x->r.dport;
		uint16_t p;

		if (len != 2)
			return unsupported(x, "port compare");
		p = be16v(v);
		switch (op) {
		case NFT_CMP_EQ:
			range[0] = range[1] = p;
			return 0;
		case NFT_CMP_GTE:
			range[0] = p;
			return 0;
		case NFT_CMP_LTE:
			range[1] = p;
			return 0;
		case NFT_CMP_GT:
			if (p == 65535)
				return unsupported(x, "empty port range");
			range[0] = (uint16_t)(p + 1);
			return 0;
		case NFT_CMP_LT:
			if (p == 0)
				return unsupported(x, "empty port range");
			range[1] = (uint16_t)(p - 1);
			return 0;
		default:
			return unsupported(x, "negated port match");
		}
	}
	if (op != NFT_CMP_EQ)
		return unsupported(x, "negation or ordering outside ports");
	switch (g->f) {
	case F_L4PROTO:
		if (len != 1)
			return unsupported(x, "protocol compare");
		x->r.proto = v[0];
		return 0;
	case F_NFPROTO:
		if (len != 1 || (v[0] != NFPROTO_IPV4 && v[0] != NFPROTO_IPV6))
			return unsupported(x, "nfproto other than ipv4/ipv6");
		if (x->r.family && x->r.family != (v[0] == NFPROTO_IPV4 ? 4 : 6))
			return unsupported(x, "IPv4 and IPv6 in one rule");
		x->r.family = v[0] == NFPROTO_IPV4 ? 4 : 6;
		return 0;
	case F_IIFNAME:
		if (strncmp((const char *)v, "inside", len) == 0 && len >= 7)
			x->r.zone = FW_ZONE_INSIDE;
		else if (strncmp((const char *)v, "outside", len) == 0 && len >= 8)
			x->r.zone = FW_ZONE_OUTSIDE;
		else
			return unsupported(x, "iifname other than \"inside\" or \"outside\"");
		return 0;
	case F_SADDR4:
	case F_DADDR4:
	case F_SADDR6:
	case F_DADDR6:
		return len == g->len ? set_addr(x, g, v, len) : unsupported(x, "address compare");
	default:
		return unsupported(x, "compare of an unloaded register");
	}
}

static int do_range(struct rule_ctx *x, struct nftnl_expr *e)
{
	uint32_t s = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_SREG));
	uint32_t op = nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_OP);
	uint32_t fl = 0, tl = 0;
	const uint8_t *from = nftnl_expr_get(e, NFTNL_EXPR_RANGE_FROM_DATA, &fl);
	const uint8_t *to = nftnl_expr_get(e, NFTNL_EXPR_RANGE_TO_DATA, &tl);
	uint16_t *range;

	if (s >= NREGS || op != NFT_RANGE_EQ || fl != 2 || tl != 2 ||
	    (x->regs[s].f != F_SPORT && x->regs[s].f != F_DPORT))
		return unsupported(x, "range other than a port range");
	range = x->regs[s].f == F_SPORT ? x->r.sport : x->r.dport;
	range[0] = be16v(from);
	range[1] = be16v(to);
	return 0;
}

static int do_immediate(struct rule_ctx *x, struct nftnl_expr *e)
{
	uint32_t v;

	if (nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) != NFT_REG_VERDICT)
		return unsupported(x, "immediate data");
	v = nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);
	if (v == NF_ACCEPT)
		x->r.action = FW_ACT_ACCEPT;
	else if (v == NF_DROP)
		x->r.action = FW_ACT_DROP;
	else
		return unsupported(x, "verdict other than accept, drop or reject (jump, goto, "
				      "return, continue)");
	x->have_verdict = 1;
	return 0;
}

static int expr_cb(struct nftnl_expr *e, void *data)
{
	struct rule_ctx *x = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (!x->ok)
		return -1;
	if (x->have_verdict)
		return unsupported(x, "expressions after the verdict");
	if (strcmp(name, "meta") == 0)
		return do_meta(x, e);
	if (strcmp(name, "payload") == 0)
		return do_payload(x, e);
	if (strcmp(name, "bitwise") == 0)
		return do_bitwise(x, e);
	if (strcmp(name, "cmp") == 0)
		return do_cmp(x, e);
	if (strcmp(name, "range") == 0)
		return do_range(x, e);
	if (strcmp(name, "immediate") == 0)
		return do_immediate(x, e);
	if (strcmp(name, "counter") == 0)
		return 0;
	if (strcmp(name, "reject") == 0) {
		x->r.action = FW_ACT_REJECT;
		x->have_verdict = 1;
		return 0;
	}
	{
		char what[64];

		snprintf(what, sizeof(what), "expression '%s'", name);
		return unsupported(x, what);
	}
}

/*
 * Whether @p buf is a run of whole netlink messages, each no longer than what is left.
 * libmnl's mnl_nlmsg_ok compares the length as an int: a message claiming 2^31 bytes or
 * more passes it, and mnl_nlmsg_next then steps far past the buffer (fuzz_nft found it).
 * Trailing bytes too few for a header are ignored, as libmnl does.
 */
static bool msgs_whole(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len >= sizeof(struct nlmsghdr)) {
		const size_t n = ((const struct nlmsghdr *)(const void *)p)->nlmsg_len;

		if (n < sizeof(struct nlmsghdr) || n > len)
			return false;
		if (MNL_ALIGN(n) >= len)
			return true;
		p += MNL_ALIGN(n);
		len -= MNL_ALIGN(n);
	}
	return true;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct import *im = data;
	struct nftnl_rule *nr = nftnl_rule_alloc();
	struct rule_ctx x = {.im = im, .ok = 1};

	if (nr == NULL)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(nlh, nr) < 0) {
		nftnl_rule_free(nr);
		failf(im, -EINVAL, "nft: cannot parse a rule message");
		return MNL_CB_ERROR;
	}
	/* A message without the attributes the kernel always sends is no rule of ours. */
	if (!nftnl_rule_is_set(nr, NFTNL_RULE_CHAIN) ||
	    strcmp(nftnl_rule_get_str(nr, NFTNL_RULE_CHAIN), im->chain) != 0) {
		nftnl_rule_free(nr);
		return MNL_CB_OK;
	}
	snprintf(x.where, sizeof(x.where), "nft %s %s/%s handle %llu", im->family_name, im->table,
		 im->chain, (unsigned long long)nftnl_rule_get_u64(nr, NFTNL_RULE_HANDLE));
	x.r.sport[1] = x.r.dport[1] = 65535;
	nftnl_expr_foreach(nr, expr_cb, &x);
	nftnl_rule_free(nr);
	if (!x.ok)
		return MNL_CB_ERROR;
	if (!x.have_verdict) {
		failf(im, -EOPNOTSUPP, "%s: unsupported: a rule with no verdict", x.where);
		return MNL_CB_ERROR;
	}
	if ((x.r.sport[0] || x.r.sport[1] != 65535 || x.r.dport[0] || x.r.dport[1] != 65535) &&
	    x.r.proto != 6 && x.r.proto != 17) {
		failf(im, -EOPNOTSUPP, "%s: unsupported: ports without tcp or udp", x.where);
		return MNL_CB_ERROR;
	}
	memcpy(x.r.origin, x.where, sizeof(x.r.origin));
	if (fw_ruleset_add(im->rs, &x.r)) {
		failf(im, -ENOMEM, "out of memory");
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct import *im = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c == NULL)
		return MNL_CB_ERROR;
	if (nftnl_chain_nlmsg_parse(nlh, c) == 0 && nftnl_chain_is_set(c, NFTNL_CHAIN_TABLE) &&
	    nftnl_chain_is_set(c, NFTNL_CHAIN_NAME) &&
	    strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), im->table) == 0 &&
	    nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) &&
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == NF_INET_FORWARD && !im->chain_found) {
		static char name[64];

		snprintf(name, sizeof(name), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
		im->chain = name;
		im->chain_found = 1;
		im->policy = nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY)
				     ? nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY)
				     : NF_ACCEPT;
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* One dump request and its answers. */
static int dump(struct mnl_socket *nl, uint16_t type, uint16_t family, const char *table,
		mnl_cb_t cb, struct import *im)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq = (uint32_t)time(NULL), portid = mnl_socket_get_portid(nl);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, family, NLM_F_DUMP, seq);
	int ret;

	if (type == NFT_MSG_GETRULE) {
		struct nftnl_rule *r = nftnl_rule_alloc();

		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
	}
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return failf(im, -errno, "nft: netlink send: %s", strerror(errno));
	while ((ret = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		if (!msgs_whole(buf, (size_t)ret))
			return failf(im, -EPROTO,
				     "nft: a netlink message longer than its datagram");
		ret = mnl_cb_run(buf, (size_t)ret, seq, portid, cb, im);
		if (ret <= 0)
			break;
	}
	if (im->rc)
		return im->rc;
	if (ret < 0) {
		if (errno == ENOENT)
			return failf(im, -ENOENT, "nft: no table %s %s", im->family_name, table);
		return failf(im, -errno, "nft: netlink: %s", strerror(errno));
	}
	return 0;
}

int fw_nft_spec(const char *spec, uint16_t *family, const char **family_name, const char **table,
		char *err, size_t errlen)
{
	static const struct {
		const char *name;
		uint16_t family;
	} fams[] = {{"inet", NFPROTO_INET}, {"ip", NFPROTO_IPV4}, {"ip6", NFPROTO_IPV6}};
	const char *colon = strchr(spec, ':');

	*family = NFPROTO_INET;
	*family_name = "inet";
	*table = spec;
	if (colon) {
		size_t i;

		for (i = 0; i < sizeof(fams) / sizeof(fams[0]); i++)
			if (strlen(fams[i].name) == (size_t)(colon - spec) &&
			    strncmp(spec, fams[i].name, (size_t)(colon - spec)) == 0)
				break;
		if (i == sizeof(fams) / sizeof(fams[0])) {
			snprintf(err, errlen, "nft:%s: family must be inet, ip or ip6", spec);
			return -EINVAL;
		}
		*family_name = fams[i].name;
		*family = fams[i].family;
		*table = colon + 1;
	}
	if (**table == '\0' || strlen(*table) > 255) {
		snprintf(err, errlen, "nft:%s: no table name", spec);
		return -EINVAL;
	}
	return 0;
}

int fw_nft_import(const char *spec, struct fw_ruleset *rs, char *err, size_t errlen)
{
	struct import im = {.rs = rs, .err = err, .errlen = errlen};
	uint16_t family;
	struct mnl_socket *nl;
	unsigned int before = rs->n;
	int rc = fw_nft_spec(spec, &family, &im.family_name, &im.table, err, errlen);

	if (rc)
		return rc;
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (nl == NULL || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "nft: netlink socket: %s", strerror(errno));
		if (nl)
			mnl_socket_close(nl);
		return -errno;
	}
	if (dump(nl, NFT_MSG_GETCHAIN, family, im.table, chain_cb, &im) == 0 && !im.chain_found)
		failf(&im, -ENOENT, "nft: table %s %s has no base chain on the forward hook",
		      im.family_name, im.table);
	if (im.rc == 0)
		dump(nl, NFT_MSG_GETRULE, family, im.table, rule_cb, &im);
	mnl_socket_close(nl);
	if (im.rc) {
		rs->n = before;
		return im.rc;
	}
	rs->policy = im.policy == NF_DROP ? FW_ACT_DROP : FW_ACT_ACCEPT;
	return 0;
}

struct fw_nft_watch {
	struct mnl_socket *nl;
	uint16_t family;
	char table[256];
};

struct fw_nft_watch *fw_nft_watch_open(const char *spec, char *err, size_t errlen)
{
	struct fw_nft_watch *w = calloc(1, sizeof(*w));
	const char *fname, *table;
	int rc, one = 1;

	if (w == NULL)
		return NULL;
	rc = fw_nft_spec(spec, &w->family, &fname, &table, err, errlen);
	if (rc) {
		free(w);
		errno = -rc;
		return NULL;
	}
	snprintf(w->table, sizeof(w->table), "%s", table);
	w->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (w->nl == NULL ||
	    mnl_socket_bind(w->nl, 1u << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
		rc = errno;
		snprintf(err, errlen, "nft: netlink group nftables: %s", strerror(rc));
		fw_nft_watch_close(&w);
		errno = rc;
		return NULL;
	}
	/* A burst larger than the socket's buffer is reported (ENOBUFS), not silently lost. */
	setsockopt(mnl_socket_get_fd(w->nl), SOL_NETLINK, NETLINK_BROADCAST_ERROR, &one,
		   sizeof(one));
	return w;
}

int fw_nft_watch_fd(const struct fw_nft_watch *w)
{
	return mnl_socket_get_fd(w->nl);
}

/* Does the nftables message @p nlh change table @p table of @p family? */
static bool concerns(uint16_t family, const char *table, const struct nlmsghdr *nlh)
{
	const struct nfgenmsg *g;
	const struct nlattr *attr;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
	    NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWGEN ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*g)))
		return false;
	g = mnl_nlmsg_get_payload(nlh);
	if (g->nfgen_family != family)
		return false;
	/* Attribute 1 names the table in every object's message: NFTA_TABLE_NAME,
	 * NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE. */
	mnl_attr_for_each(attr, nlh, sizeof(*g))
	{
		if (mnl_attr_get_type(attr) == 1)
			return mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0 &&
			       strcmp(mnl_attr_get_str(attr), table) == 0;
	}
	return false;
}

int fw_nft_watch_read(struct fw_nft_watch *w)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	bool lost = false;
	int hits = 0;

	for (;;) {
		ssize_t len = mnl_socket_recvfrom(w->nl, buf, sizeof(buf));

		if (len < 0) {
			if (errno == ENOBUFS) {
				lost = true;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return -errno;
		}
		hits += fw_nft_msgs_concern(w->family, w->table, buf, (size_t)len);
	}
	return lost ? -ENOBUFS : hits;
}

int fw_nft_msgs_concern(uint16_t family, const char *table, const void *buf, size_t len)
{
	const struct nlmsghdr *nlh = buf;
	int left = len > INT32_MAX ? INT32_MAX : (int)len, hits = 0;

	if (!msgs_whole(buf, len))
		return 0; /* not the kernel's: nothing it says is believed */
	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
		if (concerns(family, table, nlh))
			hits++;
	return hits;
}

void fw_nft_watch_close(struct fw_nft_watch **wp)
{
	if (*wp == NULL)
		return;
	if ((*wp)->nl)
		mnl_socket_close((*wp)->nl);
	free(*wp);
	*wp = NULL;
}
