/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry point for the module parsers: TCP, UDP and FTP packet handling on
 * arbitrary L4 bytes, and every module's decode on arbitrary payloads. Beyond "no crash",
 * it checks the property restore depends on: every slice the packet path produces encodes
 * to a payload that decode accepts.
 *
 * test/integration/fuzz.sh builds it with clang and runs it from its seeds (make test,
 * make fuzz). By hand, from the repository root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Imodules -Ilib/conn \
 *     modules/fuzz/fuzz_modules.c modules/modules.c modules/tcp/tcp.c modules/udp/udp.c \
 *     modules/ftp/ftp.c lib/conn/conn_key.c -lsodium -o fuzz_modules
 *   ./fuzz_modules -max_total_time=60
 *
 * Input: a sequence of records {op, len, len bytes}. op selects what the bytes are:
 *   0 a TCP segment of the connection (bit 7 of the first byte: direction),
 *   1 a UDP datagram of a second connection,
 *   2 an FTP segment: run through TCP, then FTP when TCP accepts it,
 *   3 a checkpoint payload for module (byte 0 % 3 + 1), version byte 1, then restore it
 *     into the running connections.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holdfast/ckpt_record.h"
#include "holdfast/fw_module.h"
#include "ftp/fw_ftp.h"
#include "tcp/fw_tcp.h"
#include "udp/fw_udp.h"

/*
 * The connections live where a table's do, in memory of fw_conns_map (fw_conn_cold finds
 * a cold part by address): mapped once, cleared for each input. [0] and [1] are the
 * state's, [2] and [3] the copies a round trip and TCP's full path compare with.
 */
static struct fw_conn *conns;

struct fuzz_state {
	struct fw_conn *tcp;
	struct fw_conn *udp;
	struct fw_ctx ctx;
	bool tcp_open, udp_open;
	uint64_t now;
	int expectations;
};

static int count_expect(struct fw_ctx *ctx, struct fw_conn *master, const struct fw_expect *e)
{
	struct fuzz_state *s = ctx->core;

	if ((e->family != 4 && e->family != 6) || master == NULL ||
	    e->master_id != fw_conn_cold(master)->id)
		abort();
	s->expectations++;
	return s->expectations % 7 == 0 ? -ENOSPC : 0;
}

/* What the packet path produced must survive a checkpoint. */
static void check_round_trip(struct fw_conn *c, enum fw_module_id m)
{
	uint8_t buf[CKPT_REC_MAX_PAYLOAD];
	struct fw_conn *copy = &conns[2];
	int n;

	if (!(c->present & (1u << m)))
		return;
	n = fw_modules[m]->encode(c, buf, sizeof(buf));
	if (n <= 0 || n > CKPT_REC_MAX_PAYLOAD)
		abort();
	fw_conn_clear(copy);
	if (fw_modules[m]->decode(copy, buf, (size_t)n, fw_modules[m]->slice_version) != 0) {
		char line[256];

		fw_modules[m]->dump(c, line, sizeof(line));
		fprintf(stderr, "slice does not decode: %s\n", line);
		abort();
	}
}

static void conn_init(struct fw_conn *c, uint8_t proto, uint16_t dport)
{
	static const uint8_t a[4] = {192, 0, 2, 1}, b[4] = {198, 51, 100, 2};

	fw_conn_clear(c);
	c->orig_side = (uint8_t)fw_key_make(&fw_conn_cold(c)->key, 4, proto, a, b, 0x1027, dport);
	fw_conn_cold(c)->id = 42;
}

static void fill_pkt(struct fw_pkt *p, const uint8_t *l4, uint32_t len, uint32_t hdr, uint8_t dir,
		     uint64_t now)
{
	static const uint8_t a[4] = {192, 0, 2, 1}, b[4] = {198, 51, 100, 2};

	memset(p, 0, sizeof(*p));
	p->l4 = l4;
	p->l4_len = len;
	p->hdr_len = hdr;
	p->family = 4;
	p->dir = dir;
	p->saddr = dir == FW_DIR_ORIG ? a : b;
	p->daddr = dir == FW_DIR_ORIG ? b : a;
	p->now_ns = now;
}

/* TCP: the core hands over hdr_len = data offset * 4 when it fits the packet; feed the
 * inconsistent cases too (the module must refuse them, not read past them). */
static void tcp_segment(struct fuzz_state *s, const uint8_t *d, uint32_t len, bool ftp)
{
	uint8_t l4[1600];
	enum fw_drop_reason why;
	struct fw_pkt p;
	uint32_t hdr;
	uint8_t dir;

	if (len < 21)
		return;
	dir = d[0] >> 7;
	len--;
	memcpy(l4, d + 1, len);
	hdr = (uint32_t)(l4[12] >> 4) * 4;
	if (hdr > len)
		hdr = d[0] & 1 ? len : 20;
	fill_pkt(&p, l4, len, hdr, dir, s->now);
	if (!s->tcp_open) {
		if (dir != FW_DIR_ORIG || !fw_tcp_may_open(&p))
			return;
		conn_init(s->tcp, 6, 0x1500);
		if (fw_tcp_packet(&s->ctx, s->tcp, &p, true, &why) != FW_PASS)
			abort(); /* may_open said yes: the SYN must open */
		s->tcp_open = true;
	} else {
		enum fw_drop_reason why_full = FW_DROP_NONE;
		struct fw_conn *full = &conns[3];
		enum fw_verdict v, v_full;

		/* TCP's fast path decides as its full path: verdict, reason, connection. */
		fw_conn_copy(full, s->tcp);
		v_full = fw_tcp_packet_full(&s->ctx, full, &p, false, &why_full);
		v = fw_tcp_packet(&s->ctx, s->tcp, &p, false, &why);
		if (v != v_full || why != why_full || memcmp(full, s->tcp, sizeof(*full)) != 0 ||
		    memcmp(fw_conn_cold(full), fw_conn_cold(s->tcp), sizeof(struct fw_conn_cold)) !=
			    0)
			abort();
		if (v != FW_PASS) {
			if (why == FW_DROP_NONE)
				abort();
			return;
		}
	}
	if (ftp && fw_ftp_packet(&s->ctx, s->tcp, &p, &why) == FW_DROP && why == FW_DROP_NONE)
		abort();
	check_round_trip(s->tcp, FW_MOD_TCP);
	check_round_trip(s->tcp, FW_MOD_FTP);
}

static void udp_datagram(struct fuzz_state *s, const uint8_t *d, uint32_t len)
{
	enum fw_drop_reason why;
	struct fw_pkt p;
	uint8_t dir;

	if (len < 1)
		return;
	dir = d[0] & 1;
	fill_pkt(&p, d + 1, len - 1, 8, dir, s->now);
	if (len - 1 < 8)
		p.hdr_len = len - 1; /* the core never does this; the module must cope */
	if (fw_udp_packet(&s->ctx, s->udp, &p, !s->udp_open, &why) == FW_PASS)
		s->udp_open = true;
	check_round_trip(s->udp, FW_MOD_UDP);
}

static void decode_payload(struct fuzz_state *s, const uint8_t *d, uint32_t len)
{
	enum fw_module_id m;
	struct fw_conn *c;
	uint8_t version;

	if (len < 2)
		return;
	m = (enum fw_module_id)(d[0] % 3 + 1);
	version = d[1];
	c = m == FW_MOD_UDP ? s->udp : s->tcp;
	if (m == FW_MOD_UDP ? !s->udp_open : !s->tcp_open)
		conn_init(c, m == FW_MOD_UDP ? 17 : 6, 0x1500);
	if (fw_modules[m]->decode(c, d + 2, len - 2, version) != 0)
		return;
	c->last_ns = s->now;
	if (fw_modules[m]->on_restore(&s->ctx, c) != 0)
		return;
	if (m == FW_MOD_UDP)
		s->udp_open = true;
	else if (c->present & (1u << FW_MOD_TCP))
		s->tcp_open = true;
	check_round_trip(c, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state s;
	size_t i = 0;

	if (conns == NULL && (conns = fw_conns_map(4, -1)) == NULL)
		abort();
	memset(&s, 0, sizeof(s));
	s.tcp = &conns[0];
	s.udp = &conns[1];
	fw_conn_clear(s.tcp);
	fw_conn_clear(s.udp);
	s.ctx.core = &s;
	s.ctx.expect_add = count_expect;
	s.now = 1000000000ull;
	while (i + 2 <= size) {
		uint8_t op = data[i] & 3;
		uint32_t len = data[i + 1];

		i += 2;
		if (len > size - i)
			len = (uint32_t)(size - i);
		switch (op) {
		case 0:
			tcp_segment(&s, data + i, len, false);
			break;
		case 1:
			udp_datagram(&s, data + i, len);
			break;
		case 2:
			tcp_segment(&s, data + i, len, true);
			break;
		default:
			decode_payload(&s, data + i, len);
			break;
		}
		i += len;
		s.now += 1000000;
	}
	return 0;
}
