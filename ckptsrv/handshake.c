/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv's front door, one thread per listener: it accepts control connections and runs
 * their whole handshake (proto.h: CHALLENGE, HELLO, WELCOME) itself, non-blocking, so that
 * no peer gets a thread, a session or a byte of the store before it has authenticated.
 *
 * Until then a peer is anyone on the network. A connection waits in a small pool
 * (handshake-max per listener) with one deadline for its whole handshake
 * (handshake-timeout-ms), however slowly its bytes trickle in. A new connection that finds
 * the pool full pushes out the oldest one: a flood of silent or slow peers only ever
 * displaces itself, and a tenant that answers its CHALLENGE within a round trip gets in
 * while the flood runs. A peer refused, pushed out or timed out costs an accept and a
 * close, and its log line goes through a limit (hf_log.h), with counts.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG	      "ckptsrv"
#define POLL_MS	      200 /* the longest the thread sleeps: stop and flushes are seen */
#define ACCEPT_BATCH  64  /* at most this many accepted per wakeup (and a quarter of the pool) */
#define HELLO_LEN     (CKPT_PROTO_HDR_LEN + PMU_NAME_MAX + CKPT_PROTO_NONCE + CKPT_PROTO_MAC)
#define SECRET_MAX    256
#define WELCOME_SPACE (CKPT_PROTO_HDR_LEN + CKPT_PROTO_MAC + 8 + CKPT_PROTO_EP_MAX)

/* A connection authenticating. */
struct pending {
	int fd; /* -1: a free entry */
	uint64_t since_ms;
	uint64_t deadline_ms;
	uint8_t src[16]; /* the peer's address (or uid), for choosing whom to push out */
	uint8_t src_len;
	uint8_t nonce[CKPT_PROTO_NONCE]; /* the CHALLENGE's */
	uint8_t buf[HELLO_LEN];
	size_t got;  /* bytes of the HELLO frame so far */
	size_t want; /* its length, once its header is in; 0 before */
	char peer[128];
};

struct gate {
	struct ckptsrv_listener *l;
	struct pending *p;
	unsigned int cap;
	struct pollfd *pfd; /* [0] the listening socket, then the pending connections */
	unsigned int *who;  /* pfd[i] belongs to p[who[i]] */
};

/* Name the peer for log lines, and note its address (its uid on AF_UNIX) in @p p. */
static void identify(struct pending *p, const struct sockaddr_storage *ss, socklen_t sl)
{
	snprintf(p->peer, sizeof(p->peer), "local");
	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
		char h[INET6_ADDRSTRLEN], s[8];

		if (getnameinfo((const struct sockaddr *)ss, sl, h, sizeof(h), s, sizeof(s),
				NI_NUMERICHOST | NI_NUMERICSERV) == 0)
			snprintf(p->peer, sizeof(p->peer), "%s:%s", h, s);
		if (ss->ss_family == AF_INET) {
			memcpy(p->src, &((const struct sockaddr_in *)ss)->sin_addr, 4);
			p->src_len = 4;
		} else {
			memcpy(p->src, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
			p->src_len = 16;
		}
	} else {
		struct ucred cr;
		socklen_t cl = sizeof(cr);

		if (getsockopt(p->fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0) {
			snprintf(p->peer, sizeof(p->peer), "local pid %d uid %u", (int)cr.pid,
				 (unsigned int)cr.uid);
			memcpy(p->src, &cr.uid, sizeof(cr.uid));
			p->src_len = sizeof(cr.uid);
		}
	}
}

static void drop(struct pending *p)
{
	close(p->fd);
	p->fd = -1;
}

/*
 * Send a whole message now or not at all: a peer in its handshake has had nothing but a
 * CHALLENGE, so its socket has room, unless the peer keeps it full on purpose.
 */
static int send_now(int fd, const struct ckpt_msg *m)
{
	uint8_t buf[WELCOME_SPACE];
	int n = ckpt_proto_encode(m, buf, sizeof(buf));

	if (n < 0)
		return n;
	if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
		return -EAGAIN;
	return 0;
}

/* A refusal: a WELCOME with a status, then the connection closes. */
static void refuse(struct pending *p, int status)
{
	struct ckpt_msg m = {.type = CKPT_MSG_WELCOME, .status = status};

	send_now(p->fd, &m);
	drop(p);
}

/* Check the HELLO; admit the tenant as a session and answer. */
static void finish(struct gate *g, struct pending *p)
{
	struct ckptsrv_listener *l = g->l;
	struct ckpt_msg m;
	struct ckptsrv_session *s;
	uint8_t secret[SECRET_MAX];
	int slen;

	if (ckpt_proto_decode(p->buf, p->want, CKPT_ACCEPT_HELLO, &m, NULL, 0) < 0) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "auth from %s: a malformed message or another type instead of a "
				 "well-formed HELLO; closing",
				 p->peer);
		drop(p);
		return;
	}
	if (!ckptsrv_name_ok(m.u.hello.tenant)) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "auth refused for a malformed tenant name from %s", p->peer);
		refuse(p, -EACCES);
		return;
	}
	slen = ckpt_secret_load(l->srv->cfg.secret_file, m.u.hello.tenant, secret, sizeof(secret));
	if (slen < 0 || ckpt_proto_client_verify(secret, (size_t)slen, p->nonce, m.u.hello.nonce,
						 m.u.hello.tenant, m.u.hello.mac) != 0) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG, "auth refused for tenant %s from %s%s",
				 m.u.hello.tenant, p->peer,
				 slen == -ENOENT ? " (unknown tenant)" : "");
		sodium_memzero(secret, sizeof(secret));
		refuse(p, -EACCES);
		return;
	}
	s = ckptsrv_session_admit(l, p->fd, p->peer, m.u.hello.tenant);
	if (s == NULL) {
		sodium_memzero(secret, sizeof(secret));
		refuse(p, -errno);
		return;
	}
	memcpy(p->buf, m.u.hello.nonce, CKPT_PROTO_NONCE); /* m is reused for the WELCOME */
	memset(&m, 0, sizeof(m));
	m.type = CKPT_MSG_WELCOME;
	ckpt_proto_server_mac(secret, (size_t)slen, p->buf, p->nonce, m.u.welcome.mac);
	sodium_memzero(secret, sizeof(secret));
	m.u.welcome.ep_len = l->epname_len;
	m.u.welcome.rxm_buffer = l->kind == CKPTSRV_SHM ? 0 : ckpt_proto_rxm_buffer();
	memcpy(m.u.welcome.ep, l->epname, l->epname_len);
	p->fd = -1; /* the session's now */
	if (send_now(s->fd, &m) < 0) {
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "tenant %s from %s does not take its WELCOME; closing", s->tenant,
				 s->peer);
		ckptsrv_session_end(s);
		return;
	}
	ckpt_log(CKPT_LOG_INFO, LOG, "tenant %s authenticated from %s on %s", s->tenant, s->peer,
		 l->url);
	ckptsrv_session_start(s);
}

/* Read what @p p's peer sent; the HELLO is taken once whole. */
static void step(struct gate *g, struct pending *p)
{
	for (;;) {
		size_t need = (p->want != 0 ? p->want : CKPT_PROTO_HDR_LEN) - p->got;
		ssize_t n = recv(p->fd, p->buf + p->got, need, MSG_DONTWAIT);

		if (n == 0 ||
		    (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			ckpt_log(CKPT_LOG_DEBUG, LOG, "%s went away before authenticating",
				 p->peer);
			drop(p);
			return;
		}
		if (n < 0)
			return;
		p->got += (size_t)n;
		if (p->want == 0 && p->got == CKPT_PROTO_HDR_LEN) {
			/* Only a HELLO is taken: any other type is refused before its body. */
			int flen = ckpt_proto_frame_len(p->buf, CKPT_ACCEPT_HELLO, NULL);

			if (flen < 0 || (size_t)flen > sizeof(p->buf)) {
				CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
						 "auth from %s: a malformed message or another "
						 "type instead of a well-formed HELLO; closing",
						 p->peer);
				drop(p);
				return;
			}
			p->want = (size_t)flen;
		}
		if (p->want != 0 && p->got == p->want) {
			finish(g, p);
			return;
		}
	}
}

static bool same_source(const struct pending *a, const struct pending *b)
{
	return a->src_len == b->src_len && memcmp(a->src, b->src, a->src_len) == 0;
}

/*
 * A free entry for @p in, or room made by closing one: the oldest from @p in's own source
 * if it has any here (a flood from one address displaces only itself), else the oldest.
 */
static struct pending *make_room(struct gate *g, const struct pending *in, uint64_t now)
{
	struct pending *oldest = NULL, *own = NULL;

	for (unsigned int i = 0; i < g->cap; i++) {
		struct pending *p = &g->p[i];

		if (p->fd < 0)
			return p;
		if (oldest == NULL || p->since_ms < oldest->since_ms)
			oldest = p;
		if (same_source(p, in) && (own == NULL || p->since_ms < own->since_ms))
			own = p;
	}
	if (own != NULL)
		oldest = own;
	CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
			 "%s: %u connections authenticating (handshake-max); closed the oldest, "
			 "from %s after %llu ms",
			 g->l->url, g->cap, oldest->peer,
			 (unsigned long long)(now - oldest->since_ms));
	drop(oldest);
	return oldest;
}

static void accept_some(struct gate *g)
{
	struct ckptsrv_listener *l = g->l;
	unsigned int batch = g->cap / 4 > ACCEPT_BATCH ? ACCEPT_BATCH : g->cap / 4;

	/* Between batches the pool is read: a peer is never pushed out by its own wakeup. */
	for (unsigned int i = 0; i < (batch > 0 ? batch : 1) && !l->srv->stop; i++) {
		struct ckpt_msg m = {.type = CKPT_MSG_CHALLENGE};
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct pending in = {0}, *p;
		uint64_t now;
		int fd;

		fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ECONNABORTED)
				CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG, "%s: accept: %s", l->url,
						 strerror(errno));
			return;
		}
		now = ckptsrv_now_ms();
		in.fd = fd;
		in.since_ms = now;
		in.deadline_ms = now + l->srv->cfg.handshake_timeout_ms;
		identify(&in, &ss, sl);
		p = make_room(g, &in, now);
		*p = in;
		randombytes_buf(p->nonce, sizeof(p->nonce));
		memcpy(m.u.challenge.nonce, p->nonce, sizeof(p->nonce));
		if (send_now(fd, &m) < 0) {
			drop(p);
			continue;
		}
		ckpt_log(CKPT_LOG_DEBUG, LOG, "%s: connection from %s", l->url, p->peer);
	}
}

/* Close every handshake past its deadline. @return ms to the next deadline (at most POLL_MS). */
static int expire(struct gate *g, uint64_t now)
{
	uint64_t next = now + POLL_MS;

	for (unsigned int i = 0; i < g->cap; i++) {
		struct pending *p = &g->p[i];

		if (p->fd < 0)
			continue;
		if (now >= p->deadline_ms) {
			CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
					 "%s: %s did not authenticate within %u ms "
					 "(handshake-timeout-ms; %zu bytes of its HELLO came); "
					 "closing",
					 g->l->url, p->peer, g->l->srv->cfg.handshake_timeout_ms,
					 p->got);
			drop(p);
			continue;
		}
		if (p->deadline_ms < next)
			next = p->deadline_ms;
	}
	return (int)(next - now);
}

void *ckptsrv_accept_main(void *arg)
{
	struct gate g = {.l = arg, .cap = ((struct ckptsrv_listener *)arg)->srv->cfg.handshake_max};
	struct ckptsrv *srv = g.l->srv;
	int wait_ms = POLL_MS;

	g.p = calloc(g.cap, sizeof(*g.p));
	g.pfd = calloc(g.cap + 1, sizeof(*g.pfd));
	g.who = calloc(g.cap + 1, sizeof(*g.who));
	if (g.p == NULL || g.pfd == NULL || g.who == NULL) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: out of memory for the handshake pool; accepting "
			 "no one",
			 g.l->url);
		goto out_free;
	}
	for (unsigned int i = 0; i < g.cap; i++)
		g.p[i].fd = -1;
	while (!srv->stop) {
		unsigned int n = 1;
		int ready;

		g.pfd[0] = (struct pollfd){.fd = g.l->lfd, .events = POLLIN};
		for (unsigned int i = 0; i < g.cap; i++) {
			if (g.p[i].fd < 0)
				continue;
			g.pfd[n] = (struct pollfd){.fd = g.p[i].fd, .events = POLLIN};
			g.who[n++] = i;
		}
		ready = poll(g.pfd, n, wait_ms);
		/* The pool first: a HELLO that came is taken before new peers push anyone out. */
		for (unsigned int i = 1; ready > 0 && i < n; i++)
			if (g.pfd[i].revents != 0 && g.p[g.who[i]].fd == g.pfd[i].fd)
				step(&g, &g.p[g.who[i]]);
		if (ready > 0 && (g.pfd[0].revents & POLLIN))
			accept_some(&g);
		wait_ms = expire(&g, ckptsrv_now_ms());
		ckpt_log_limits_flush();
	}
	for (unsigned int i = 0; i < g.cap; i++)
		if (g.p[i].fd >= 0)
			drop(&g.p[i]);
out_free:
	free(g.who);
	free(g.pfd);
	free(g.p);
	return NULL;
}
