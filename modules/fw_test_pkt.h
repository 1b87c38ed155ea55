/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit-test helper: writes real TCP and UDP headers into a buffer and fills struct fw_pkt
 * the way the core does after parsing an mbuf. Header-only so each module test links it
 * without a library of its own.
 */
#ifndef HOLDFAST_FW_TEST_PKT_H
#define HOLDFAST_FW_TEST_PKT_H

#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "holdfast/fw_module.h"

#define T_FIN 0x01
#define T_SYN 0x02
#define T_RST 0x04
#define T_PSH 0x08
#define T_ACK 0x10

/* Two endpoints; [FW_DIR_ORIG] is the host that opens the connection. Ports host order. */
struct tflow {
	uint8_t family;
	uint8_t addr[2][16];
	uint16_t port[2];
};

/* One segment to build. */
struct tseg {
	uint8_t dir;
	uint32_t seq;
	uint32_t ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opts; /* raw option bytes, padded here to a multiple of 4 */
	uint8_t optlen;
	const void *data;
	uint32_t len;
};

struct tpkt {
	uint8_t buf[2048];
	struct fw_pkt p;
};

static inline void tput16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void tput32(uint8_t *b, uint32_t v)
{
	tput16(b, (uint16_t)(v >> 16));
	tput16(b + 2, (uint16_t)v);
}

static inline void tpkt_addrs(struct tpkt *t, const struct tflow *f, uint8_t dir, uint64_t now)
{
	t->p.saddr = f->addr[dir];
	t->p.daddr = f->addr[!dir];
	t->p.family = f->family;
	t->p.dir = dir;
	t->p.now_ns = now;
}

/* A TCP segment of @p f as the core would hand it over. */
static inline const struct fw_pkt *tpkt_tcp(struct tpkt *t, const struct tflow *f,
					    const struct tseg *s, uint64_t now)
{
	uint32_t optpad = (s->optlen + 3u) & ~3u, hdr = 20 + optpad;

	memset(t->buf, 0, hdr);
	tput16(t->buf, f->port[s->dir]);
	tput16(t->buf + 2, f->port[!s->dir]);
	tput32(t->buf + 4, s->seq);
	tput32(t->buf + 8, s->ack);
	t->buf[12] = (uint8_t)(hdr / 4 << 4);
	t->buf[13] = s->flags;
	tput16(t->buf + 14, s->win);
	if (s->optlen)
		memcpy(t->buf + 20, s->opts, s->optlen);
	if (s->len)
		memcpy(t->buf + hdr, s->data, s->len);
	t->p.l4 = t->buf;
	t->p.hdr_len = hdr;
	t->p.l4_len = hdr + s->len;
	tpkt_addrs(t, f, s->dir, now);
	return &t->p;
}

/* A UDP datagram of @p f from side @p dir. */
static inline const struct fw_pkt *tpkt_udp(struct tpkt *t, const struct tflow *f, uint8_t dir,
					    const void *data, uint16_t len, uint64_t now)
{
	tput16(t->buf, f->port[dir]);
	tput16(t->buf + 2, f->port[!dir]);
	tput16(t->buf + 4, (uint16_t)(8 + len));
	tput16(t->buf + 6, 0);
	if (len)
		memcpy(t->buf + 8, data, len);
	t->p.l4 = t->buf;
	t->p.hdr_len = 8;
	t->p.l4_len = 8u + len;
	tpkt_addrs(t, f, dir, now);
	return &t->p;
}

/*
 * A connection to test with, zeroed. It lives where a table's connections do, in memory of
 * fw_conns_map (fw_conn_cold finds its cold part by address): one mapping per test
 * program, its connections handed out in turn, TCONN_MAX before one comes round again.
 */
#define TCONN_MAX 4096
static inline struct fw_conn *tconn_alloc(void)
{
	static struct fw_conn *arena;
	static uint32_t next;
	struct fw_conn *c;

	if (arena == NULL)
		arena = fw_conns_map(TCONN_MAX, -1);
	if (arena == NULL)
		abort();
	c = &arena[next++ % TCONN_MAX];
	fw_conn_clear(c);
	return c;
}

/* A connection structure for @p f as the core creates it: key, ID, opener side. */
static inline void tconn_init(struct fw_conn *c, const struct tflow *f, uint8_t proto)
{
	int side;

	fw_conn_clear(c);
	side = fw_key_make(&fw_conn_cold(c)->key, f->family, proto, f->addr[0], f->addr[1],
			   (uint16_t)(f->port[0] >> 8 | f->port[0] << 8),
			   (uint16_t)(f->port[1] >> 8 | f->port[1] << 8));
	c->orig_side = (uint8_t)side;
	fw_conn_cold(c)->id = 0x1234567887654321ull;
	for (int m = 0; m < FW_MOD_MAX; m++)
		fw_conn_cold(c)->slot_pair[m] = UINT32_MAX;
}

#endif /* HOLDFAST_FW_TEST_PKT_H */
