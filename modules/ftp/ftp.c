/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * FTP control channel: find the data connections the two ends agree on and let exactly
 * those through.
 *
 * Lines are found by position in the TCP sequence space. Each direction remembers where its
 * current line starts (line_seq) and how much of it was seen; a segment is parsed only when
 * it continues exactly there, so a retransmission, a reordered segment or a forged one does
 * not shift our idea of where commands begin. After a gap we stop parsing until a segment
 * ends with a newline, which is a line start again. The checkpoint carries line_seq: after
 * a restore, a segment starting at a remembered line start is parsed, others are not --
 * the same resync idea as conntrack's "sequence after newline".
 *
 * A partial line is kept in the slice (FW_FTP_LINE_BUF bytes per direction) until its
 * newline arrives. Complete lines inside one segment are parsed in place whatever their
 * length; a split line whose first part outgrows the buffer is skipped, never parsed from a
 * fragment. Skipping is safe: an unparsed command only means no expectation, so the data
 * connection is refused, never wrongly admitted.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fw_slices.h"
#include "fw_wire.h"
#include "ftp/fw_ftp.h"

_Static_assert(sizeof(struct fw_ftp_slice) <= FW_FTP_SLICE_ROOM, "FTP slice fits its room");
_Static_assert(FW_SLICE_ALIGNED(struct fw_ftp_slice, FW_FTP_SLICE_OFF),
	       "slice aligned in the connection");
_Static_assert(FW_FTP_PAYLOAD_LEN <= 1024, "FTP payload within CKPT_REC_MAX_PAYLOAD");

#define TH_SYN	    0x02
#define TCP_MIN_HDR 20
#define NS_PER_S    1000000000ull
/* Longest split line we reassemble: the buffered part plus the rest from one segment. */
#define LINE_MAX   512
#define PRIV_PORTS 1024

const struct fw_ftp_conf fw_ftp_conf_default = {
	.ports = {21},
	.expect_timeout_ns = 300 * NS_PER_S,
	.active_src_port20 = false,
};

struct fw_ftp_slice *fw_ftp_slice(struct fw_conn *c)
{
	return FW_SLICE(c, struct fw_ftp_slice, FW_FTP_SLICE_OFF);
}

static const struct fw_ftp_slice *slice_c(const struct fw_conn *c)
{
	return FW_SLICE(c, const struct fw_ftp_slice, FW_FTP_SLICE_OFF);
}

static const struct fw_ftp_conf *ftp_conf(const struct fw_ctx *ctx)
{
	if (ctx && ctx->conf[FW_MOD_FTP])
		return ctx->conf[FW_MOD_FTP];
	return &fw_ftp_conf_default;
}

/* Time @p t of the packet clock on the wall clock (CLOCK_REALTIME), which another instance
 * (a restarted one, a standby) reads too. */
static uint64_t wall(const struct fw_ctx *ctx, uint64_t t)
{
	return t + (uint64_t)(ctx ? ctx->wall_offset_ns : 0);
}

bool fw_ftp_is_control(const struct fw_ftp_conf *conf, const struct fw_conn *c)
{
	uint16_t port;

	if (!conf)
		conf = &fw_ftp_conf_default;
	/* The key is in the cold part: asked when a connection opens, not per packet. */
	if (fw_conn_cold(c)->key.proto != 6 || c->orig_side > 1)
		return false;
	port = ntohs(fw_conn_cold(c)->key.port[!c->orig_side]);
	for (int i = 0; i < FW_FTP_MAX_PORTS; i++)
		if (conf->ports[i] && conf->ports[i] == port)
			return true;
	return false;
}

/* What a line announced. */
struct announce {
	uint8_t family;
	bool has_addr; /* 229 gives only a port */
	uint8_t addr[16];
	uint32_t port;
};

/* Outcome of parsing a line: not a line we care about, an announcement, or malformed. */
enum parsed {
	P_IGNORE,
	P_ANNOUNCE,
	P_SYNTAX,
};

/* A decimal number of 1 to @p max_digits digits at s[*i]. */
static bool number(const uint8_t *s, size_t n, size_t *i, unsigned int max_digits, uint32_t *out)
{
	unsigned int digits = 0;
	uint32_t v = 0;

	while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
		if (++digits > max_digits)
			return false;
		v = v * 10 + (uint32_t)(s[*i] - '0');
		(*i)++;
	}
	*out = v;
	return digits > 0;
}

static bool only_spaces(const uint8_t *s, size_t n, size_t i)
{
	for (; i < n; i++)
		if (s[i] != ' ')
			return false;
	return true;
}

/* h1,h2,h3,h4,p1,p2 (RFC 959) starting at s[*i]. */
static enum parsed six_numbers(const uint8_t *s, size_t n, size_t *i, struct announce *a)
{
	uint32_t v[6];

	for (int k = 0; k < 6; k++) {
		if (k && (*i >= n || s[(*i)++] != ','))
			return P_SYNTAX;
		if (!number(s, n, i, 3, &v[k]) || v[k] > 255)
			return P_SYNTAX;
	}
	a->family = 4;
	a->has_addr = true;
	memset(a->addr, 0, sizeof(a->addr));
	for (int k = 0; k < 4; k++)
		a->addr[k] = (uint8_t)v[k];
	a->port = v[4] << 8 | v[5];
	return P_ANNOUNCE;
}

static enum parsed parse_port(const uint8_t *s, size_t n, struct announce *a)
{
	size_t i = 0;
	enum parsed r;

	while (i < n && s[i] == ' ')
		i++;
	r = six_numbers(s, n, &i, a);
	if (r == P_ANNOUNCE && !only_spaces(s, n, i))
		return P_SYNTAX;
	return r;
}

/* RFC 2428: EPRT <d><af><d><addr><d><port><d>, d any printable ASCII but a digit. */
static bool delimiter_ok(uint8_t d)
{
	return d >= 33 && d <= 126 && !(d >= '0' && d <= '9');
}

static enum parsed parse_eprt(const uint8_t *s, size_t n, struct announce *a)
{
	char text[INET6_ADDRSTRLEN];
	size_t i = 1, start;
	uint32_t af, port;
	uint8_t d;

	if (n < 1 || !delimiter_ok(s[0]))
		return P_SYNTAX;
	d = s[0];
	if (!number(s, n, &i, 1, &af) || (af != 1 && af != 2) || i >= n || s[i++] != d)
		return P_SYNTAX;
	start = i;
	while (i < n && s[i] != d)
		i++;
	if (i >= n || i - start == 0 || i - start >= sizeof(text))
		return P_SYNTAX;
	memcpy(text, s + start, i - start);
	text[i - start] = '\0';
	memset(a->addr, 0, sizeof(a->addr));
	if (inet_pton(af == 1 ? AF_INET : AF_INET6, text, a->addr) != 1)
		return P_SYNTAX;
	i++;
	if (!number(s, n, &i, 5, &port) || port > 65535 || i >= n || s[i++] != d)
		return P_SYNTAX;
	if (!only_spaces(s, n, i))
		return P_SYNTAX;
	a->family = af == 1 ? 4 : 6;
	a->has_addr = true;
	a->port = port;
	return P_ANNOUNCE;
}

/* 227: RFC 959 leaves the text free; RFC 1123 says scan for the first digit. */
static enum parsed parse_227(const uint8_t *s, size_t n, struct announce *a)
{
	size_t i = 0;

	while (i < n && !(s[i] >= '0' && s[i] <= '9'))
		i++;
	if (i == n)
		return P_SYNTAX;
	return six_numbers(s, n, &i, a);
}

/* 229 text (<d><d><d><port><d>) */
static enum parsed parse_229(const uint8_t *s, size_t n, struct announce *a)
{
	size_t i = 0;
	uint32_t port;
	uint8_t d;

	while (i < n && s[i] != '(')
		i++;
	if (n - i < 7) /* "(|||1|)" at least */
		return P_SYNTAX;
	d = s[++i];
	if (!delimiter_ok(d) || s[i + 1] != d || s[i + 2] != d)
		return P_SYNTAX;
	i += 3;
	if (!number(s, n, &i, 5, &port) || port > 65535 || i + 1 >= n || s[i] != d ||
	    s[i + 1] != ')')
		return P_SYNTAX;
	a->has_addr = false;
	a->port = port;
	return P_ANNOUNCE;
}

static bool starts_with(const uint8_t *s, size_t n, const char *word)
{
	size_t w = strlen(word);

	return n >= w && strncasecmp((const char *)s, word, w) == 0;
}

/*
 * One complete line (newline and a CR before it removed) from direction @p dir. Builds the
 * expectation it announces in @p e. @return FW_DROP_NONE (nothing to do, or *have set) or
 * the reason to drop the segment.
 */
static enum fw_drop_reason handle_line(const uint8_t *s, size_t n, int dir, const struct fw_pkt *p,
				       const struct fw_ftp_conf *conf, struct fw_ftp_slice *pending,
				       bool *have)
{
	const size_t alen = p->family == 4 ? 4 : 16;
	struct announce a = {.family = p->family};
	enum parsed r = P_IGNORE;
	uint8_t mode = FW_FTP_EXP_NONE;

	if (n && s[n - 1] == '\r')
		n--;
	if (dir == FW_DIR_ORIG && starts_with(s, n, "PORT ")) {
		r = parse_port(s + 5, n - 5, &a);
		mode = FW_FTP_EXP_ACTIVE;
	} else if (dir == FW_DIR_ORIG && starts_with(s, n, "EPRT ")) {
		r = parse_eprt(s + 5, n - 5, &a);
		mode = FW_FTP_EXP_ACTIVE;
	} else if (dir == FW_DIR_REPLY && starts_with(s, n, "227 ")) {
		r = parse_227(s + 4, n - 4, &a);
		mode = FW_FTP_EXP_PASSIVE;
	} else if (dir == FW_DIR_REPLY && starts_with(s, n, "229 ")) {
		r = parse_229(s + 4, n - 4, &a);
		mode = FW_FTP_EXP_PASSIVE;
	}
	if (r == P_IGNORE)
		return FW_DROP_NONE;
	if (r == P_SYNTAX)
		return FW_DROP_FTP_SYNTAX;
	/* The announced host must be the one that announced it: the client's own address
	 * in PORT/EPRT, the server's in 227. Anything else aims the server at a third host
	 * (the FTP bounce attack) or at someone else's service. */
	if (a.has_addr && (a.family != p->family || memcmp(a.addr, p->saddr, alen) != 0))
		return FW_DROP_FTP_BOUNCE;
	if (a.port < PRIV_PORTS)
		return FW_DROP_FTP_BOUNCE;
	pending->exp_mode = mode;
	pending->exp_port = (uint16_t)a.port;
	pending->exp_sport = mode == FW_FTP_EXP_ACTIVE && conf->active_src_port20 ? 20 : 0;
	*have = true;
	return FW_DROP_NONE;
}

/* The expectation a slice describes, on the addresses of the control connection. */
static void build_expect(const struct fw_conn *c, const struct fw_ftp_slice *f, uint64_t expire,
			 struct fw_expect *e)
{
	const uint8_t client = c->orig_side, server = (uint8_t)!c->orig_side;
	const bool active = f->exp_mode == FW_FTP_EXP_ACTIVE;
	const struct fw_conn_cold *cc = fw_conn_cold(c);

	memset(e, 0, sizeof(*e));
	e->family = cc->key.family;
	e->proto = 6;
	/* Active: the server connects to the client. Passive: the client to the server. */
	memcpy(e->addr[0], cc->key.addr[active ? server : client], 16);
	memcpy(e->addr[1], cc->key.addr[active ? client : server], 16);
	e->port[0] = htons(f->exp_sport);
	e->port[1] = htons(f->exp_port);
	e->master_id = cc->id;
	e->expire_ns = expire;
}

static enum fw_verdict drop(enum fw_drop_reason *why, enum fw_drop_reason r)
{
	if (why)
		*why = r;
	return FW_DROP;
}

/* Resynchronize after a gap: a segment ending in a newline ends a line. */
static void resync(struct fw_ftp_dir *d, uint32_t seq, const uint8_t *data, uint32_t n)
{
	d->flags = 0;
	d->len = 0;
	d->consumed = 0;
	d->line_seq = 0;
	if (n && data[n - 1] == '\n') {
		d->line_seq = seq + n;
		d->flags = FW_FTP_D_SYNCED;
	}
}

/* Lines of data[off, n) of a segment starting at @p seq, continuing the state in @p d. */
static enum fw_drop_reason scan(struct fw_ftp_dir *d, uint32_t seq, const uint8_t *data, uint32_t n,
				uint32_t off, int dir, const struct fw_pkt *p,
				const struct fw_ftp_conf *conf, struct fw_ftp_slice *pending,
				bool *have)
{
	uint8_t line[LINE_MAX];

	while (off < n) {
		const uint8_t *nl = memchr(data + off, '\n', n - off);
		uint32_t chunk = nl ? (uint32_t)(nl - (data + off)) : n - off;
		enum fw_drop_reason r = FW_DROP_NONE;

		if (!nl) {
			if (!(d->flags & FW_FTP_D_OVERFLOW) && d->len + chunk <= FW_FTP_LINE_BUF) {
				memcpy(d->buf + d->len, data + off, chunk);
				d->len = (uint8_t)(d->len + chunk);
			} else {
				d->flags |= FW_FTP_D_OVERFLOW;
				d->len = 0;
			}
			d->consumed += chunk;
			return FW_DROP_NONE;
		}
		if (d->flags & FW_FTP_D_OVERFLOW) {
			/* the end of a line too long to keep: not parsed */
		} else if (d->len == 0) {
			r = handle_line(data + off, chunk, dir, p, conf, pending, have);
		} else if (d->len + chunk <= LINE_MAX) {
			memcpy(line, d->buf, d->len);
			memcpy(line + d->len, data + off, chunk);
			r = handle_line(line, d->len + chunk, dir, p, conf, pending, have);
		}
		if (r != FW_DROP_NONE)
			return r;
		off += chunk + 1;
		d->line_seq = seq + off;
		d->consumed = 0;
		d->len = 0;
		d->flags &= (uint8_t)~FW_FTP_D_OVERFLOW;
	}
	return FW_DROP_NONE;
}

enum fw_verdict fw_ftp_packet(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
			      enum fw_drop_reason *why)
{
	const struct fw_ftp_conf *conf = ftp_conf(ctx);
	struct fw_ftp_slice *f = fw_ftp_slice(c);
	struct fw_ftp_slice pending;
	struct fw_ftp_dir d;
	const uint8_t *data;
	uint32_t seq, n, expect, off;
	bool have = false;
	int dir;

	if (why)
		*why = FW_DROP_NONE;
	/* The TCP module vouched for the header; stay safe even if called without it. */
	if (p->dir > FW_DIR_REPLY || p->hdr_len < TCP_MIN_HDR || p->hdr_len > p->l4_len ||
	    (p->family != 4 && p->family != 6))
		return FW_PASS;
	if (!(c->present & (1u << FW_MOD_FTP))) {
		memset(f, 0, sizeof(*f));
		c->present |= (uint8_t)(1u << FW_MOD_FTP);
	}
	dir = p->dir;
	seq = fw_get_be32(p->l4 + 4);
	data = fw_pkt_payload(p);
	n = fw_pkt_payload_len(p);
	d = f->d[dir];
	if (p->l4[13] & TH_SYN) {
		/* The first data byte follows the SYN: an exact line start. */
		d.line_seq = seq + 1;
		d.consumed = 0;
		d.len = 0;
		d.flags = FW_FTP_D_SYNCED;
		if (n) /* data on a SYN (TFO): too rare to parse, resync on it */
			resync(&d, seq + 1, data, n);
		goto commit;
	}
	if (n == 0)
		return FW_PASS;
	if (!(d.flags & FW_FTP_D_SYNCED))
		goto gap;
	expect = d.line_seq + d.consumed;
	if (fw_seq_after(seq, expect))
		goto gap; /* bytes we never saw: positions unknown until a newline */
	off = expect - seq;
	if (off >= n)
		return FW_PASS; /* entirely a retransmission of what we parsed */
	pending = *f;
	{
		enum fw_drop_reason r = scan(&d, seq, data, n, off, dir, p, conf, &pending, &have);

		if (r != FW_DROP_NONE)
			return drop(why, r);
	}
	if (have) {
		const uint64_t deadline = p->now_ns + conf->expect_timeout_ns;
		struct fw_expect e;
		int rc = -ENOTSUP;

		build_expect(c, &pending, deadline, &e);
		if (ctx && ctx->expect_add)
			rc = ctx->expect_add(ctx, c, &e);
		/* Retry later rather than leave the client with a data connection that will
		 * never be admitted: the dropped segment is retransmitted and parsed again. */
		if (rc < 0 && rc != -EEXIST)
			return drop(why, FW_DROP_TABLE_FULL);
		f->exp_mode = pending.exp_mode;
		f->exp_port = pending.exp_port;
		f->exp_sport = pending.exp_sport;
		f->exp_deadline = wall(ctx, deadline) ? wall(ctx, deadline) : 1; /* 0: none */
		f->flags &= (uint8_t) ~(FW_FTP_F_RESTORE | FW_FTP_F_EXP_TTL);
		fw_conn_mark_dirty(c, FW_MOD_FTP);
	}
	goto commit;
gap:
	resync(&d, seq, data, n);
commit:
	/* The checkpoint holds line starts: a moved one must reach it, or the first command
	 * after a restore would not be parsed. */
	if (d.line_seq != f->d[dir].line_seq || d.flags != f->d[dir].flags)
		fw_conn_mark_dirty(c, FW_MOD_FTP);
	f->d[dir] = d;
	return FW_PASS;
}

/* The slice expects nothing any more; the checkpoint must say so before a restore can
 * re-create it, so it goes with the next flush rather than the next batch. */
static void forget_expect(struct fw_conn *c, struct fw_ftp_slice *f)
{
	f->exp_mode = FW_FTP_EXP_NONE;
	f->exp_port = 0;
	f->exp_sport = 0;
	f->exp_deadline = 0;
	f->flags &= (uint8_t) ~(FW_FTP_F_RESTORE | FW_FTP_F_EXP_TTL);
	fw_conn_mark_dirty_now(c, FW_MOD_FTP);
}

bool fw_ftp_expect_gone(struct fw_conn *c, const struct fw_expect *e)
{
	struct fw_ftp_slice *f = fw_ftp_slice(c);
	struct fw_expect mine;

	if (!(c->present & (1u << FW_MOD_FTP)) || f->exp_mode == FW_FTP_EXP_NONE)
		return false;
	/* Only the one the slice describes: an older one it replaced is not the slice's. */
	build_expect(c, f, e->expire_ns, &mine);
	if (mine.family != e->family || memcmp(mine.addr, e->addr, sizeof(mine.addr)) != 0 ||
	    mine.port[0] != e->port[0] || mine.port[1] != e->port[1])
		return false;
	forget_expect(c, f);
	return true;
}

/*
 * Payload, version 2, little-endian:
 *	 0 u8  synced (bit 0: client line start known, bit 1: server's)
 *	 1 u8  expectation mode (enum fw_ftp_exp_mode)
 *	 2 u16 reserved (0)
 *	 4 u32 line start, client -> server
 *	 8 u32 line start, server -> client
 *	12 u16 announced port    14 u16 required source port (0 or 20)
 *	16 u64 expectation deadline, CLOCK_REALTIME ns (0 without an expectation)
 * The expectation's addresses are not stored: they are the control connection's own (a
 * different one is refused), which the record's key and the TCP slice restore. Its deadline
 * is wall-clock time, the one clock a restarted instance and a standby share with the one
 * that saw the announcement: an expectation lives ftp-expect from its announcement,
 * however long no instance held it. Version 1 stored the lifetime left after the control
 * connection's last packet, which a restore counted from its own start: an expectation
 * that had run out while the control connection was quiet came back (issue 12). Version 1
 * records are still read, with that meaning.
 */
static int ftp_encode(const struct fw_conn *c, uint8_t *buf, size_t len)
{
	const struct fw_ftp_slice *f = slice_c(c);

	if (len < FW_FTP_PAYLOAD_LEN)
		return -ENOSPC;
	/* Decoded from version 1 and not restored yet: no deadline to write. Nothing encodes
	 * a restoring connection (its checkpointer starts after on_restore). */
	if (f->flags & FW_FTP_F_EXP_TTL)
		return -EINVAL;
	memset(buf, 0, FW_FTP_PAYLOAD_LEN);
	for (int d = 0; d < 2; d++) {
		if (f->d[d].flags & FW_FTP_D_SYNCED) {
			buf[0] |= (uint8_t)(1u << d);
			fw_put_le32(buf + 4 + 4 * d, f->d[d].line_seq);
		}
	}
	buf[1] = f->exp_mode;
	if (f->exp_mode != FW_FTP_EXP_NONE) {
		fw_put_le16(buf + 12, f->exp_port);
		fw_put_le16(buf + 14, f->exp_sport);
		fw_put_le64(buf + 16, f->exp_deadline);
	}
	return FW_FTP_PAYLOAD_LEN;
}

static int ftp_decode(struct fw_conn *c, const uint8_t *buf, size_t len, uint8_t version)
{
	struct fw_ftp_slice f;
	uint16_t port, sport;
	uint64_t when;

	if (version > FW_FTP_SLICE_VERSION)
		return -EPROTONOSUPPORT;
	if (version == 0 || len != FW_FTP_PAYLOAD_LEN)
		return -EINVAL;
	if ((buf[0] & ~3u) || buf[1] > FW_FTP_EXP_PASSIVE || fw_get_le16(buf + 2) != 0)
		return -EINVAL;
	port = fw_get_le16(buf + 12);
	sport = fw_get_le16(buf + 14);
	when = fw_get_le64(buf + 16); /* version 1: a lifetime; 2: a deadline */
	switch (buf[1]) {
	case FW_FTP_EXP_NONE:
		if (port || sport || when)
			return -EINVAL;
		break;
	case FW_FTP_EXP_ACTIVE:
		if (sport != 0 && sport != 20)
			return -EINVAL;
		/* fall through */
	default:
		/* A deadline is checked against the restoring clock by on_restore. */
		if (port < PRIV_PORTS || (buf[1] == FW_FTP_EXP_PASSIVE && sport != 0) ||
		    when == 0 || (version == 1 && when > FW_FTP_EXPECT_TTL_MAX))
			return -EINVAL;
		break;
	}
	memset(&f, 0, sizeof(f));
	for (int d = 0; d < 2; d++) {
		uint32_t s = fw_get_le32(buf + 4 + 4 * d);

		if (buf[0] & (1u << d)) {
			f.d[d].flags = FW_FTP_D_SYNCED;
			f.d[d].line_seq = s;
		} else if (s != 0) {
			return -EINVAL;
		}
	}
	f.exp_mode = buf[1];
	f.exp_port = port;
	f.exp_sport = sport;
	f.exp_deadline = when;
	if (f.exp_mode != FW_FTP_EXP_NONE)
		f.flags = (uint8_t)(FW_FTP_F_RESTORE | (version == 1 ? FW_FTP_F_EXP_TTL : 0));
	*fw_ftp_slice(c) = f;
	c->present |= (uint8_t)(1u << FW_MOD_FTP);
	return 0;
}

/*
 * Re-create the outstanding expectation for the time it has left, if any; c->last_ns is the
 * restoring instance's clock. Left longer than ftp-expect, it is cut to that: a deadline so
 * far ahead comes from a clock ahead of ours (or a longer ftp-expect before a restart).
 */
static int ftp_on_restore(struct fw_ctx *ctx, struct fw_conn *c)
{
	const uint64_t longest = ftp_conf(ctx)->expect_timeout_ns;
	struct fw_ftp_slice *f = fw_ftp_slice(c);
	const uint64_t now = wall(ctx, c->last_ns);
	uint64_t left, deadline;
	struct fw_expect e;
	int rc = -ENOTSUP;

	if (c->orig_side > 1)
		return -EINVAL;
	if (f->exp_mode == FW_FTP_EXP_NONE || !(f->flags & FW_FTP_F_RESTORE))
		return 0;
	if (f->flags & FW_FTP_F_EXP_TTL)
		left = f->exp_deadline;
	else
		left = f->exp_deadline > now ? f->exp_deadline - now : 0;
	if (left == 0) {
		forget_expect(c, f); /* it ran out while no instance held it */
		return 0;
	}
	if (left > longest)
		left = longest;
	deadline = now + left;
	if (deadline != f->exp_deadline || (f->flags & FW_FTP_F_EXP_TTL))
		fw_conn_mark_dirty(c, FW_MOD_FTP); /* a deadline of our own to checkpoint */
	f->exp_deadline = deadline;
	f->flags &= (uint8_t) ~(FW_FTP_F_RESTORE | FW_FTP_F_EXP_TTL);
	build_expect(c, f, c->last_ns + left, &e);
	if (ctx && ctx->expect_add)
		rc = ctx->expect_add(ctx, c, &e);
	/* Losing one pending data connection is better than losing the control connection
	 * with it: keep going without the expectation, and checkpoint that. */
	if (rc < 0 && rc != -EEXIST)
		forget_expect(c, f);
	return 0;
}

static int ftp_dump(const struct fw_conn *c, char *buf, size_t len)
{
	const struct fw_ftp_slice *f = slice_c(c);
	static const char *const modes[] = {"none", "active", "passive"};

	return snprintf(buf, len, "ftp client@%u%s server@%u%s expect=%s port=%u", f->d[0].line_seq,
			f->d[0].flags & FW_FTP_D_SYNCED ? "" : "(lost)", f->d[1].line_seq,
			f->d[1].flags & FW_FTP_D_SYNCED ? "" : "(lost)",
			f->exp_mode <= FW_FTP_EXP_PASSIVE ? modes[f->exp_mode] : "?", f->exp_port);
}

/* ---- configuration ---- */

_Static_assert(sizeof(struct fw_ftp_conf) <= FW_MOD_CONF_MAX, "FTP configuration fits its room");

static const char *const conf_timeouts[] = {"ftp-expect", NULL};

static void ftp_conf_default(void *conf)
{
	*(struct fw_ftp_conf *)conf = fw_ftp_conf_default;
}

static void ftp_conf_timeout(void *conf, unsigned int i, uint64_t ns)
{
	(void)i;
	((struct fw_ftp_conf *)conf)->expect_timeout_ns = ns;
}

/* `ftp-ports P...`: the control ports, replacing the defaults. */
static int ftp_conf_set(void *conf, char *const *w, int n, char *err, size_t errlen)
{
	uint16_t ports[FW_FTP_MAX_PORTS] = {0};

	if (strcmp(w[0], "ftp-ports") != 0)
		return 0;
	if (n < 2 || n - 1 > FW_FTP_MAX_PORTS) {
		snprintf(err, errlen, "ftp-ports: 1 to %d ports", FW_FTP_MAX_PORTS);
		return -EINVAL;
	}
	for (int i = 1; i < n; i++) {
		unsigned long v;
		char *end;

		errno = 0;
		v = isdigit((unsigned char)w[i][0]) ? strtoul(w[i], &end, 10) : 0;
		if (v == 0 || errno || *end || v > 65535) {
			snprintf(err, errlen, "ftp-ports: '%s' is not a port", w[i]);
			return -EINVAL;
		}
		ports[i - 1] = (uint16_t)v;
	}
	memcpy(((struct fw_ftp_conf *)conf)->ports, ports, sizeof(ports));
	return 1;
}

const struct fw_module_ops fw_ftp_ops = {
	.name = "ftp",
	.id = FW_MOD_FTP,
	.slice_version = FW_FTP_SLICE_VERSION,
	.slice_size = sizeof(struct fw_ftp_slice),
	.slice_off = FW_FTP_SLICE_OFF,
	.required = false,
	.encode = ftp_encode,
	.decode = ftp_decode,
	.on_restore = ftp_on_restore,
	.dump = ftp_dump,
	.proto = IPPROTO_TCP, /* on the control connection's TCP */
	.conf_size = sizeof(struct fw_ftp_conf),
	.conf_default = ftp_conf_default,
	.timeouts = conf_timeouts,
	.conf_timeout = ftp_conf_timeout,
	.conf_set = ftp_conf_set,
};
