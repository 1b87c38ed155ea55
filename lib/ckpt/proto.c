/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control protocol encode/decode (layouts in proto.h) and the stream helpers both ends use.
 * Byte order is converted here and nowhere else; decode trusts nothing it did not check.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <sodium.h>

#include "proto.h"

#define STATUS_MIN (-4095) /* the errno range, as the kernel's IS_ERR_VALUE */

/* A cursor over a frame being written or read; bounds are checked once per field. */
struct cur {
	uint8_t *p;
	const uint8_t *rp;
	size_t len, pos;
	bool bad;   /* a field out of range, or (reading) the frame ended early */
	bool nospc; /* writing: the buffer ended early */
};

static void put(struct cur *c, const void *v, size_t n)
{
	if (c->nospc || c->len - c->pos < n) {
		c->nospc = true;
		return;
	}
	memcpy(c->p + c->pos, v, n);
	c->pos += n;
}

static void put_u8(struct cur *c, uint8_t v)
{
	put(c, &v, 1);
}

static void put_u16(struct cur *c, uint16_t v)
{
	v = htole16(v);
	put(c, &v, 2);
}

static void put_u32(struct cur *c, uint32_t v)
{
	v = htole32(v);
	put(c, &v, 4);
}

static void put_u64(struct cur *c, uint64_t v)
{
	v = htole64(v);
	put(c, &v, 8);
}

static void put_zero(struct cur *c, size_t n)
{
	static const uint8_t zero[8];

	while (n > 0) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);

		put(c, zero, k);
		n -= k;
	}
}

/* Names go out zero-padded so the receiver can insist on it. */
static bool name_ok(const char *s)
{
	return memchr(s, '\0', PMU_NAME_MAX) != NULL;
}

static void put_name(struct cur *c, const char *s)
{
	size_t n;

	if (!name_ok(s)) {
		c->bad = true;
		return;
	}
	n = strlen(s);
	put(c, s, n);
	put_zero(c, PMU_NAME_MAX - n);
}

static void get(struct cur *c, void *v, size_t n)
{
	if (c->bad || c->len - c->pos < n) {
		c->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, c->rp + c->pos, n);
	c->pos += n;
}

static uint8_t get_u8(struct cur *c)
{
	uint8_t v;

	get(c, &v, 1);
	return v;
}

static uint16_t get_u16(struct cur *c)
{
	uint16_t v;

	get(c, &v, 2);
	return le16toh(v);
}

static uint32_t get_u32(struct cur *c)
{
	uint32_t v;

	get(c, &v, 4);
	return le32toh(v);
}

static uint64_t get_u64(struct cur *c)
{
	uint64_t v;

	get(c, &v, 8);
	return le64toh(v);
}

/* Reserved bytes must be zero, so that they can be given a meaning later. */
static void get_zero(struct cur *c, size_t n)
{
	while (n-- > 0)
		if (get_u8(c) != 0)
			c->bad = true;
}

/* NUL-terminated, zero after the NUL, nonempty. */
static void get_name(struct cur *c, char *s)
{
	size_t n;

	get(c, s, PMU_NAME_MAX);
	if (c->bad)
		return;
	n = strnlen(s, PMU_NAME_MAX);
	if (n == 0 || n == PMU_NAME_MAX) {
		c->bad = true;
		return;
	}
	for (size_t i = n; i < PMU_NAME_MAX; i++)
		if (s[i] != '\0')
			c->bad = true;
}

static bool mode_ok(uint32_t mode)
{
	return mode == PMU_MODE_OVERWRITE || mode == PMU_MODE_APPEND;
}

static void put_region(struct cur *c, const struct pmu_region_info *r)
{
	put_name(c, r->name);
	put_name(c, r->owner);
	put_u32(c, (uint32_t)r->mode);
	put_u32(c, r->index);
	put_u64(c, r->offset);
	put_u64(c, r->size);
	put_u32(c, r->slot_size);
	put_u32(c, 0);
	put_u64(c, r->nslots);
	put_u64(c, r->ring_off);
	put_u64(c, r->ring_size);
	put_u64(c, r->created_ns);
	put_u64(c, r->lease_ns);
	put_u64(c, r->epoch);
}

static void get_region(struct cur *c, struct pmu_region_info *r)
{
	uint32_t mode;

	memset(r, 0, sizeof(*r));
	get_name(c, r->name);
	get_name(c, r->owner);
	mode = get_u32(c);
	if (!mode_ok(mode))
		c->bad = true;
	r->mode = (enum pmu_mode)mode;
	r->index = get_u32(c);
	r->offset = get_u64(c);
	r->size = get_u64(c);
	r->slot_size = get_u32(c);
	get_zero(c, 4);
	r->nslots = get_u64(c);
	r->ring_off = get_u64(c);
	r->ring_size = get_u64(c);
	r->created_ns = get_u64(c);
	r->lease_ns = get_u64(c);
	r->epoch = get_u64(c);
	/* The geometry the store would have laid out (the server's file offset is its own), so
	 * a client never indexes slots or a ring that a server, or a forger, made up. */
	if (!c->bad && (r->index >= PMU_MAX_REGIONS || pmu_region_check(r, 0, NULL, 0) != 0))
		c->bad = true;
}

static void put_info(struct cur *c, const struct ckpt_region_info *i)
{
	put_region(c, &i->r);
	put_u8(c, i->is_pmem ? 1 : 0);
	put_u8(c, i->lease_alive ? 1 : 0);
	put_zero(c, 6);
	put_u64(c, i->ring_head);
	put_u64(c, i->ring_tail);
}

static void get_bool(struct cur *c, bool *b)
{
	uint8_t v = get_u8(c);

	if (v > 1)
		c->bad = true;
	*b = v == 1;
}

static void get_info(struct cur *c, struct ckpt_region_info *i)
{
	get_region(c, &i->r);
	get_bool(c, &i->is_pmem);
	get_bool(c, &i->lease_alive);
	get_zero(c, 6);
	i->ring_head = get_u64(c);
	i->ring_tail = get_u64(c);
	if (i->ring_head < i->ring_tail || i->ring_head - i->ring_tail > i->r.ring_size)
		c->bad = true;
}

/*
 * The class a type belongs to (CKPT_ACCEPT_*), or 0 for a type nobody sends, and the
 * longest body its layout has (a LIST reply: a whole table).
 */
static unsigned int type_class(uint16_t t, size_t *body_max)
{
	uint16_t base = t & (uint16_t)~CKPT_MSG_REPLY;
	bool reply = (t & CKPT_MSG_REPLY) != 0;
	size_t req = 0, rep = 0;

	switch (base) {
	case CKPT_MSG_CHALLENGE:
		*body_max = CKPT_PROTO_NONCE;
		return reply ? 0 : CKPT_ACCEPT_CHALLENGE;
	case CKPT_MSG_HELLO:
		*body_max = PMU_NAME_MAX + CKPT_PROTO_NONCE + CKPT_PROTO_MAC;
		return reply ? 0 : CKPT_ACCEPT_HELLO;
	case CKPT_MSG_WELCOME:
		*body_max = CKPT_PROTO_MAC + 8 + CKPT_PROTO_EP_MAX;
		return reply ? 0 : CKPT_ACCEPT_WELCOME;
	case CKPT_MSG_CREATE:
		req = PMU_NAME_MAX + 24;
		rep = 8 + CKPT_PROTO_REGION_LEN + 24;
		break;
	case CKPT_MSG_OPEN:
		req = PMU_NAME_MAX;
		rep = 8 + CKPT_PROTO_REGION_LEN + 24;
		break;
	case CKPT_MSG_DELETE:
		req = PMU_NAME_MAX;
		break;
	case CKPT_MSG_STAT:
		req = PMU_NAME_MAX;
		rep = CKPT_PROTO_INFO_LEN;
		break;
	case CKPT_MSG_CLOSE:
		req = 8;
		break;
	case CKPT_MSG_LIST:
		rep = CKPT_PROTO_BODY_MAX;
		break;
	case CKPT_MSG_PERSIST:
		req = 32;
		break;
	case CKPT_MSG_LEASE:
		req = 16;
		break;
	case CKPT_MSG_PING:
		break;
	case CKPT_MSG_TAKE:
		req = 16;
		rep = 8;
		break;
	case CKPT_MSG_BIND:
		req = PMU_NAME_MAX + 8;
		break;
	case CKPT_MSG_WATCH:
		req = 16;
		break;
	default:
		return 0;
	}
	*body_max = reply ? rep : req;
	return reply ? CKPT_ACCEPT_REPLY : CKPT_ACCEPT_REQUEST;
}

/* Only replies and WELCOME carry a status; requests must say 0. */
static bool status_ok(uint16_t type, int32_t status)
{
	if (status == 0)
		return true;
	if (status < STATUS_MIN || status > 0)
		return false;
	return (type & CKPT_MSG_REPLY) != 0 || type == CKPT_MSG_WELCOME;
}

static void body(struct cur *c, const struct ckpt_msg *m)
{
	if (m->status != 0)
		return;
	switch (m->type) {
	case CKPT_MSG_CHALLENGE:
		put(c, m->u.challenge.nonce, CKPT_PROTO_NONCE);
		break;
	case CKPT_MSG_HELLO:
		put_name(c, m->u.hello.tenant);
		put(c, m->u.hello.nonce, CKPT_PROTO_NONCE);
		put(c, m->u.hello.mac, CKPT_PROTO_MAC);
		break;
	case CKPT_MSG_WELCOME:
		if (m->u.welcome.ep_len == 0 || m->u.welcome.ep_len > CKPT_PROTO_EP_MAX) {
			c->bad = true;
			break;
		}
		put(c, m->u.welcome.mac, CKPT_PROTO_MAC);
		put_u32(c, m->u.welcome.ep_len);
		put_u32(c, m->u.welcome.rxm_buffer);
		put(c, m->u.welcome.ep, m->u.welcome.ep_len);
		break;
	case CKPT_MSG_CREATE:
		if (!mode_ok(m->u.create.mode))
			c->bad = true;
		put_name(c, m->u.create.name);
		put_u32(c, m->u.create.mode);
		put_u32(c, m->u.create.slot_size);
		put_u64(c, m->u.create.size);
		put_u64(c, m->u.create.ring_size);
		break;
	case CKPT_MSG_OPEN:
	case CKPT_MSG_DELETE:
	case CKPT_MSG_STAT:
		put_name(c, m->u.name.name);
		break;
	case CKPT_MSG_CLOSE:
		put_u64(c, m->u.close.handle);
		break;
	case CKPT_MSG_PERSIST:
		put_u64(c, m->u.persist.handle);
		put_u64(c, m->u.persist.off);
		put_u64(c, m->u.persist.len);
		put_u64(c, m->u.persist.head);
		break;
	case CKPT_MSG_LEASE:
		put_u64(c, m->u.lease.handle);
		put_u32(c, m->u.lease.ttl_ms);
		put_u32(c, 0);
		break;
	case CKPT_MSG_TAKE:
		put_u64(c, m->u.take.handle);
		put_u64(c, m->u.take.seen);
		break;
	case CKPT_MSG_BIND:
		put_name(c, m->u.bind.name);
		put_u64(c, m->u.bind.epoch);
		break;
	case CKPT_MSG_WATCH:
		put_u64(c, m->u.watch.handle);
		put_u32(c, m->u.watch.timeout_ms);
		put_u32(c, 0);
		break;
	case CKPT_MSG_TAKE | CKPT_MSG_REPLY:
		/* Epoch 0 is "never taken": no take ends there. */
		if (m->u.taken.epoch == 0)
			c->bad = true;
		put_u64(c, m->u.taken.epoch);
		break;
	case CKPT_MSG_CREATE | CKPT_MSG_REPLY:
	case CKPT_MSG_OPEN | CKPT_MSG_REPLY:
		put_u64(c, m->u.opened.handle);
		put_region(c, &m->u.opened.info);
		put_u8(c, m->u.opened.is_pmem ? 1 : 0);
		put_zero(c, 7);
		put_u64(c, m->u.opened.rkey);
		put_u64(c, m->u.opened.base);
		break;
	case CKPT_MSG_STAT | CKPT_MSG_REPLY:
		put_info(c, &m->u.stat);
		break;
	case CKPT_MSG_LIST | CKPT_MSG_REPLY:
		if (m->u.list.n > CKPT_PROTO_LIST_MAX || m->u.list.n > m->u.list.total ||
		    (m->u.list.n > 0 && m->u.list.items == NULL)) {
			c->bad = true;
			break;
		}
		put_u32(c, m->u.list.total);
		put_u32(c, m->u.list.n);
		for (uint32_t i = 0; i < m->u.list.n; i++)
			put_info(c, &m->u.list.items[i]);
		break;
	default:
		/* LIST, PING, replies to CLOSE, DELETE, PERSIST, LEASE, PING, BIND and WATCH:
		 * the header says it all. */
		break;
	}
}

int ckpt_proto_encode(const struct ckpt_msg *m, uint8_t *buf, size_t cap)
{
	struct cur c = {.p = buf, .len = cap};
	size_t body_len, body_max;

	if (m == NULL || buf == NULL || type_class(m->type, &body_max) == 0 ||
	    !status_ok(m->type, m->status))
		return -EINVAL;
	if (cap < CKPT_PROTO_HDR_LEN)
		return -ENOSPC;
	c.pos = CKPT_PROTO_HDR_LEN;
	body(&c, m);
	if (c.bad)
		return -EINVAL;
	if (c.nospc)
		return -ENOSPC;
	body_len = c.pos - CKPT_PROTO_HDR_LEN;
	if (body_len > body_max)
		return -EINVAL;
	c.pos = 0;
	put_u32(&c, (uint32_t)body_len);
	put_u16(&c, m->type);
	put_u16(&c, CKPT_PROTO_VERSION);
	put_u32(&c, m->seq);
	put_u32(&c, (uint32_t)m->status);
	return (int)(CKPT_PROTO_HDR_LEN + body_len);
}

int ckpt_proto_frame_len(const uint8_t hdr[CKPT_PROTO_HDR_LEN], unsigned int accept,
			 struct ckpt_proto_hdr *h)
{
	struct cur c = {.rp = hdr, .len = CKPT_PROTO_HDR_LEN};
	struct ckpt_proto_hdr v;
	uint16_t version;
	size_t body_max = 0;

	v.body_len = get_u32(&c);
	v.type = get_u16(&c);
	version = get_u16(&c);
	v.seq = get_u32(&c);
	v.status = (int32_t)get_u32(&c);
	if (version != CKPT_PROTO_VERSION || (type_class(v.type, &body_max) & accept) == 0 ||
	    !status_ok(v.type, v.status) || v.body_len > body_max ||
	    (v.status != 0 && v.body_len != 0))
		return -EINVAL;
	if (h != NULL)
		*h = v;
	return (int)(CKPT_PROTO_HDR_LEN + v.body_len);
}

int ckpt_proto_decode(const uint8_t *buf, size_t len, unsigned int accept, struct ckpt_msg *m,
		      struct ckpt_region_info *items, uint32_t cap)
{
	struct cur c = {.rp = buf, .len = len, .pos = CKPT_PROTO_HDR_LEN};
	struct ckpt_proto_hdr h;
	int flen;

	if (buf == NULL || m == NULL || len < CKPT_PROTO_HDR_LEN || (items == NULL && cap != 0))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	flen = ckpt_proto_frame_len(buf, accept, &h);
	if (flen < 0 || (size_t)flen != len)
		return -EINVAL;
	m->type = h.type;
	m->seq = h.seq;
	m->status = h.status;
	if (m->status != 0)
		return 0; /* the header said the body is empty */
	switch (m->type) {
	case CKPT_MSG_CHALLENGE:
		get(&c, m->u.challenge.nonce, CKPT_PROTO_NONCE);
		break;
	case CKPT_MSG_HELLO:
		get_name(&c, m->u.hello.tenant);
		get(&c, m->u.hello.nonce, CKPT_PROTO_NONCE);
		get(&c, m->u.hello.mac, CKPT_PROTO_MAC);
		break;
	case CKPT_MSG_WELCOME:
		get(&c, m->u.welcome.mac, CKPT_PROTO_MAC);
		m->u.welcome.ep_len = get_u32(&c);
		m->u.welcome.rxm_buffer = get_u32(&c);
		if (m->u.welcome.ep_len == 0 || m->u.welcome.ep_len > CKPT_PROTO_EP_MAX) {
			c.bad = true;
			break;
		}
		get(&c, m->u.welcome.ep, m->u.welcome.ep_len);
		break;
	case CKPT_MSG_CREATE:
		get_name(&c, m->u.create.name);
		m->u.create.mode = get_u32(&c);
		m->u.create.slot_size = get_u32(&c);
		m->u.create.size = get_u64(&c);
		m->u.create.ring_size = get_u64(&c);
		if (!mode_ok(m->u.create.mode))
			c.bad = true;
		break;
	case CKPT_MSG_OPEN:
	case CKPT_MSG_DELETE:
	case CKPT_MSG_STAT:
		get_name(&c, m->u.name.name);
		break;
	case CKPT_MSG_CLOSE:
		m->u.close.handle = get_u64(&c);
		break;
	case CKPT_MSG_PERSIST:
		m->u.persist.handle = get_u64(&c);
		m->u.persist.off = get_u64(&c);
		m->u.persist.len = get_u64(&c);
		m->u.persist.head = get_u64(&c);
		break;
	case CKPT_MSG_LEASE:
		m->u.lease.handle = get_u64(&c);
		m->u.lease.ttl_ms = get_u32(&c);
		get_zero(&c, 4);
		break;
	case CKPT_MSG_TAKE:
		m->u.take.handle = get_u64(&c);
		m->u.take.seen = get_u64(&c);
		break;
	case CKPT_MSG_BIND:
		get_name(&c, m->u.bind.name);
		m->u.bind.epoch = get_u64(&c);
		break;
	case CKPT_MSG_WATCH:
		m->u.watch.handle = get_u64(&c);
		m->u.watch.timeout_ms = get_u32(&c);
		get_zero(&c, 4);
		break;
	case CKPT_MSG_TAKE | CKPT_MSG_REPLY:
		m->u.taken.epoch = get_u64(&c);
		if (m->u.taken.epoch == 0)
			c.bad = true;
		break;
	case CKPT_MSG_CREATE | CKPT_MSG_REPLY:
	case CKPT_MSG_OPEN | CKPT_MSG_REPLY:
		m->u.opened.handle = get_u64(&c);
		get_region(&c, &m->u.opened.info);
		m->u.opened.is_pmem = get_u8(&c);
		if (m->u.opened.is_pmem > 1)
			c.bad = true;
		get_zero(&c, 7);
		m->u.opened.rkey = get_u64(&c);
		m->u.opened.base = get_u64(&c);
		break;
	case CKPT_MSG_STAT | CKPT_MSG_REPLY:
		get_info(&c, &m->u.stat);
		break;
	case CKPT_MSG_LIST | CKPT_MSG_REPLY:
		m->u.list.total = get_u32(&c);
		m->u.list.n = get_u32(&c);
		if (m->u.list.n > CKPT_PROTO_LIST_MAX || m->u.list.n > m->u.list.total) {
			c.bad = true;
			break;
		}
		for (uint32_t i = 0; i < m->u.list.n && !c.bad; i++) {
			struct ckpt_region_info tmp;

			get_info(&c, i < cap ? &items[i] : &tmp);
		}
		break;
	default:
		break;
	}
	/* Every byte accounted for: a longer body than the type's layout is malformed too. */
	if (c.bad || c.pos != len)
		return -EINVAL;
	return 0;
}

static void mac_compute(const uint8_t *secret, size_t secret_len, const char *ctx, const uint8_t *a,
			const uint8_t *b, const char *tenant, uint8_t mac[CKPT_PROTO_MAC])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)ctx, strlen(ctx));
	crypto_auth_hmacsha256_update(&st, a, CKPT_PROTO_NONCE);
	crypto_auth_hmacsha256_update(&st, b, CKPT_PROTO_NONCE);
	if (tenant != NULL)
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)tenant, strlen(tenant));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

void ckpt_proto_client_mac(const uint8_t *secret, size_t secret_len,
			   const uint8_t srv_nonce[CKPT_PROTO_NONCE],
			   const uint8_t cli_nonce[CKPT_PROTO_NONCE], const char *tenant,
			   uint8_t mac[CKPT_PROTO_MAC])
{
	mac_compute(secret, secret_len, CKPT_PROTO_AUTH_CTX, srv_nonce, cli_nonce, tenant, mac);
}

void ckpt_proto_server_mac(const uint8_t *secret, size_t secret_len,
			   const uint8_t cli_nonce[CKPT_PROTO_NONCE],
			   const uint8_t srv_nonce[CKPT_PROTO_NONCE], uint8_t mac[CKPT_PROTO_MAC])
{
	mac_compute(secret, secret_len, CKPT_PROTO_SRV_CTX, cli_nonce, srv_nonce, NULL, mac);
}

/*
 * crypto_auth_hmacsha256_verify() takes a key of exactly crypto_auth_hmacsha256_KEYBYTES,
 * and secrets here have any length; so the expected mac is computed with the streaming API
 * and compared with sodium_memcmp(), which is constant time all the same.
 */
int ckpt_proto_client_verify(const uint8_t *secret, size_t secret_len,
			     const uint8_t srv_nonce[CKPT_PROTO_NONCE],
			     const uint8_t cli_nonce[CKPT_PROTO_NONCE], const char *tenant,
			     const uint8_t mac[CKPT_PROTO_MAC])
{
	uint8_t want[CKPT_PROTO_MAC];
	int ret;

	ckpt_proto_client_mac(secret, secret_len, srv_nonce, cli_nonce, tenant, want);
	ret = sodium_memcmp(want, mac, CKPT_PROTO_MAC) == 0 ? 0 : -EACCES;
	sodium_memzero(want, sizeof(want));
	return ret;
}

int ckpt_proto_server_verify(const uint8_t *secret, size_t secret_len,
			     const uint8_t cli_nonce[CKPT_PROTO_NONCE],
			     const uint8_t srv_nonce[CKPT_PROTO_NONCE],
			     const uint8_t mac[CKPT_PROTO_MAC])
{
	uint8_t want[CKPT_PROTO_MAC];
	int ret;

	ckpt_proto_server_mac(secret, secret_len, cli_nonce, srv_nonce, want);
	ret = sodium_memcmp(want, mac, CKPT_PROTO_MAC) == 0 ? 0 : -EACCES;
	sodium_memzero(want, sizeof(want));
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before @p deadline (-1: none), for poll(2). */
static int left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	return left < 0 ? 0 : (int)left;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int n;

	do {
		n = poll(&p, 1, left_ms(deadline));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return 0;
}

int ckpt_proto_send_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int ret = wait_fd(fd, POLLOUT, deadline);

			if (ret < 0)
				return ret;
			continue;
		}
		return errno == EPIPE ? -ECONNRESET : -errno;
	}
	return 0;
}

static int recv_all(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int ret = wait_fd(fd, POLLIN, deadline);

			if (ret < 0)
				return ret;
			continue;
		}
		return -errno;
	}
	return 0;
}

int ckpt_proto_recv_msg(int fd, uint8_t *buf, unsigned int accept, struct ckpt_msg *m,
			int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int flen, ret;

	ret = recv_all(fd, buf, CKPT_PROTO_HDR_LEN, deadline);
	if (ret < 0)
		return ret;
	flen = ckpt_proto_frame_len(buf, accept, NULL);
	if (flen < 0)
		return flen;
	ret = recv_all(fd, buf + CKPT_PROTO_HDR_LEN, (size_t)flen - CKPT_PROTO_HDR_LEN, deadline);
	if (ret < 0)
		return ret;
	return ckpt_proto_decode(buf, (size_t)flen, accept, m, NULL, 0);
}

int ckpt_proto_send_msg(int fd, const struct ckpt_msg *m, int timeout_ms)
{
	uint8_t small[1024];
	uint8_t *buf = small;
	size_t cap = sizeof(small);
	int n, ret;

	/* Only a LIST reply outgrows the stack buffer. */
	if (m->type == (CKPT_MSG_LIST | CKPT_MSG_REPLY)) {
		cap = CKPT_PROTO_FRAME_MAX;
		buf = malloc(cap);
		if (buf == NULL)
			return -ENOMEM;
	}
	n = ckpt_proto_encode(m, buf, cap);
	ret = n < 0 ? n : ckpt_proto_send_all(fd, buf, (size_t)n, timeout_ms);
	if (buf != small)
		free(buf);
	return ret;
}

int ckpt_proto_split_hostport(const char *where, char *host, size_t host_cap, char *port,
			      size_t port_cap)
{
	const char *colon, *h = where;
	size_t hlen;

	if (where == NULL || *where == '\0')
		return -EINVAL;
	if (*where == '[') {
		const char *end = strchr(where, ']');

		if (end == NULL || end[1] != ':')
			return -EINVAL;
		h = where + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(where, ':');
		if (colon == NULL || memchr(where, ':', (size_t)(colon - where)) != NULL)
			return -EINVAL;
		hlen = (size_t)(colon - where);
	}
	if (hlen == 0 || hlen >= host_cap)
		return -EINVAL;
	if (colon[1] == '\0' || strlen(colon + 1) >= port_cap ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

int ckpt_proto_shm_addr(const char *name, struct sockaddr_un *sun)
{
	static const char prefix[] = "holdfast-ckptsrv/";
	size_t n;

	if (name == NULL)
		return -EINVAL;
	n = strlen(name);
	if (n == 0 || n >= PMU_NAME_MAX || strchr(name, '/') != NULL ||
	    1 + sizeof(prefix) - 1 + n > sizeof(sun->sun_path))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (name[i] <= ' ' || name[i] > '~')
			return -EINVAL;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* Abstract namespace: no file to clean up after a crash. */
	memcpy(sun->sun_path + 1, prefix, sizeof(prefix) - 1);
	memcpy(sun->sun_path + sizeof(prefix), name, n);
	return (int)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof(prefix) - 1 + n);
}

uint32_t ckpt_proto_rxm_buffer(void)
{
	const char *v = getenv("FI_OFI_RXM_BUFFER_SIZE");
	unsigned long n;
	char *end;

	if (v == NULL || *v == '\0')
		v = CKPT_OFI_RXM_BUFFER_SIZE;
	errno = 0;
	n = strtoul(v, &end, 0);
	/* libfabric reads it the same way (strtol, base 0); what it would not take is shown
	 * as 0, which never matches a real size. */
	if (errno != 0 || *end != '\0' || n > UINT32_MAX)
		return 0;
	return (uint32_t)n;
}
