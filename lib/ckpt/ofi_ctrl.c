/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket of an ofi+* client: a stream to ckptsrv (TCP, or abstract AF_UNIX for
 * shm) carrying the frames of proto.h. A call numbers its request, sends it and pumps the
 * socket until the reply comes, progressing the CQ meanwhile. Each frame read is matched by
 * its header (ckpt_proto_frame_len()): the reply a call waits for, a PERSIST answer (to
 * ofi_completion.c), a keepalive's answer, or a late reply to a call that timed out;
 * anything else fails the client. Every wait is bounded by opts.timeout_ms, and a call
 * left unanswered fails the client for good (o->dead): an unresponsive server is not
 * retried.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ofi_internal.h"

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = 0, n;
	socklen_t el = sizeof(err);

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		return -ETIMEDOUT;
	if (n < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return -err;
}

int ckpt_ofi_ctrl_connect(struct ckpt_client *c, const char *where, bool shm)
{
	struct ofi_client *o = oc(c);
	int ret;

	if (shm) {
		struct sockaddr_un sun;
		int len = ckpt_proto_shm_addr(where, &sun);

		if (len < 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: bad shm name", c->target);
			return -EINVAL;
		}
		o->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (o->fd < 0)
			return -errno;
		ret = connect_timeout(o->fd, (struct sockaddr *)&sun, (socklen_t)len,
				      (int)c->opts.timeout_ms);
	} else {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
		char host[256], port[16];

		if (ckpt_proto_split_hostport(where, host, sizeof(host), port, sizeof(port)) < 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: expected host:port", c->target);
			return -EINVAL;
		}
		ret = getaddrinfo(host, port, &hints, &res);
		if (ret != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: cannot resolve %s: %s", c->target, host,
				 gai_strerror(ret));
			return -EINVAL;
		}
		ret = -ECONNREFUSED;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			o->fd = socket(ai->ai_family,
				       ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				       ai->ai_protocol);
			if (o->fd < 0) {
				ret = -errno;
				continue;
			}
			ret = connect_timeout(o->fd, ai->ai_addr, ai->ai_addrlen,
					      (int)c->opts.timeout_ms);
			if (ret == 0)
				break;
			close(o->fd);
			o->fd = -1;
		}
		freeaddrinfo(res);
	}
	if (ret < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: cannot reach the server: %s", c->target,
			 strerror(-ret));
		if (o->fd >= 0)
			close(o->fd);
		o->fd = -1;
	}
	return ret;
}

/* Handle every whole frame in the receive buffer. */
static int ctrl_frames(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);

	while (o->rx_len >= CKPT_PROTO_HDR_LEN) {
		struct ckpt_msg m = {0};
		struct ckpt_proto_hdr h;
		int flen = ckpt_proto_frame_len(o->rx, CKPT_ACCEPT_REPLY, &h), ret;

		/* Once authenticated a server sends replies only; anything else ends it here. */
		if (flen < 0)
			return -EPROTO;
		if (o->rx_len < (size_t)flen)
			return 0;
		if (o->want != NULL && !o->got && h.seq == o->want_seq) {
			ret = ckpt_proto_decode(o->rx, (size_t)flen, CKPT_ACCEPT_REPLY, o->want,
						o->want_items, o->want_cap);
			o->got = ret == 0;
		} else {
			ret = ckpt_proto_decode(o->rx, (size_t)flen, CKPT_ACCEPT_REPLY, &m, NULL,
						0);
			if (ret == 0 && m.type == (CKPT_MSG_PERSIST | CKPT_MSG_REPLY))
				ret = ckpt_ofi_persist_answered(o, &m);
			else if (ret == 0 && m.type == (CKPT_MSG_PING | CKPT_MSG_REPLY) &&
				 h.seq <= o->seq)
				; /* a keepalive answered: nothing waits for it */
			else if (ret == 0 && h.seq <= o->seq)
				/* the answer to a call that timed out: nobody waits for it */
				ckpt_log(CKPT_LOG_DEBUG, LOG, "%s: late reply %u dropped",
					 c->target, h.seq);
			else
				ret = -EPROTO;
		}
		if (ret < 0)
			return -EPROTO;
		memmove(o->rx, o->rx + flen, o->rx_len - (size_t)flen);
		o->rx_len -= (size_t)flen;
	}
	return 0;
}

int ckpt_ofi_ctrl_pump(struct ckpt_client *c, int wait_ms)
{
	struct ofi_client *o = oc(c);
	struct pollfd p = {.fd = o->fd, .events = POLLIN};
	ssize_t n;
	int ret;

	if (o->dead)
		return o->dead;
	if (wait_ms > 0 && poll(&p, 1, wait_ms) < 0 && errno != EINTR)
		return -errno;
	for (;;) {
		n = recv(o->fd, o->rx + o->rx_len, CKPT_PROTO_FRAME_MAX - o->rx_len, MSG_DONTWAIT);
		if (n > 0) {
			o->rx_len += (size_t)n;
			ret = ctrl_frames(c);
			if (ret < 0) {
				ckpt_log(CKPT_LOG_ERR, LOG,
					 "%s: malformed or unexpected message "
					 "from the server",
					 c->target);
				o->dead = -EIO;
				return o->dead;
			}
			continue;
		}
		if (n == 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: server closed the control connection",
				 c->target);
			o->dead = -ECONNRESET;
			return o->dead;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: control connection: %s", c->target,
			 strerror(errno));
		o->dead = errno == ECONNRESET || errno == EPIPE ? -ECONNRESET : -errno;
		return o->dead;
	}
}

int ckpt_ofi_ctrl_send(struct ckpt_client *c, struct ckpt_msg *m)
{
	struct ofi_client *o = oc(c);
	int ret;

	m->seq = ++o->seq;
	m->status = 0;
	o->sent_ms = now_ms();
	ret = ckpt_proto_send_msg(o->fd, m, (int)c->opts.timeout_ms);
	if (ret < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: sending a request: %s", c->target, strerror(-ret));
		if (ret != -ETIMEDOUT && o->dead == 0)
			o->dead = ret == -EPIPE ? -ECONNRESET : ret;
	}
	return ret;
}

int ckpt_ofi_call_list(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep,
		       unsigned int timeout_ms, struct ckpt_region_info *items, uint32_t cap)
{
	struct ofi_client *o = oc(c);
	uint64_t deadline;
	uint16_t want_type = req->type | CKPT_MSG_REPLY;
	int ret;

	if (o->dead)
		return o->dead;
	ret = ckpt_ofi_ctrl_send(c, req);
	if (ret < 0)
		return ret;
	o->want = rep;
	o->want_items = items;
	o->want_cap = items == NULL ? 0 : cap;
	o->want_seq = req->seq;
	o->got = false;
	deadline = now_ms() + timeout_ms;
	while (!o->got) {
		uint64_t now = now_ms();

		if (now >= deadline) {
			/* Sticky, as on the data path: an unresponsive server is not retried. */
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: no answer to a request within %u ms",
				 c->target, timeout_ms);
			o->dead = -ETIMEDOUT;
			ret = -ETIMEDOUT;
			break;
		}
		ret = ckpt_ofi_ctrl_pump(c, (int)(deadline - now < 50 ? deadline - now : 50));
		if (ret < 0)
			break;
		ckpt_ofi_cq_progress(o);
	}
	o->want = NULL;
	o->want_items = NULL;
	o->want_cap = 0;
	if (!o->got)
		return ret < 0 ? ret : -EIO;
	if (rep->type != want_type) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: reply of type %#x to a request of type %#x",
			 c->target, rep->type, req->type);
		o->dead = -EIO;
		return -EIO;
	}
	return rep->status;
}

int ckpt_ofi_call_within(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep,
			 unsigned int timeout_ms)
{
	return ckpt_ofi_call_list(c, req, rep, timeout_ms, NULL, 0);
}

int ckpt_ofi_call(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep)
{
	return ckpt_ofi_call_within(c, req, rep, c->opts.timeout_ms);
}

/*
 * Post a PING and never wait for it: its answer is taken by ctrl_frames() when the poll
 * next reads the socket. A socket with no room for the 16 bytes (a server that has read
 * nothing for long) gets it at a later poll; a part sent must be followed by the rest,
 * bounded like every control send.
 */
void ckpt_ofi_keepalive(struct ckpt_client *c, uint64_t now)
{
	struct ofi_client *o = oc(c);
	struct ckpt_msg m = {.type = CKPT_MSG_PING, .seq = o->seq + 1};
	uint8_t frame[CKPT_PROTO_HDR_LEN];
	ssize_t n;
	int ret;

	if (ckpt_proto_encode(&m, frame, sizeof(frame)) != (int)sizeof(frame))
		return;
	n = send(o->fd, frame, sizeof(frame), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		ret = errno == EPIPE ? -ECONNRESET : -errno;
	} else {
		o->seq++;
		o->sent_ms = now;
		ret = ckpt_proto_send_all(o->fd, frame + n, sizeof(frame) - (size_t)n,
					  (int)c->opts.timeout_ms);
	}
	if (ret < 0 && o->dead == 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: sending a keepalive: %s", c->target,
			 strerror(-ret));
		o->dead = ret;
	}
}

/*
 * A remote write or read that the provider refused while the server is still there is what
 * a fenced client sees: ckptsrv closed its registrations when a newer epoch was taken. The
 * server answers a fenced session's every request ESTALE, so one PING tells. Only the
 * control socket is read meanwhile (the CQ holds more of the same failures); @p was is what
 * the client had failed with, kept unless the answer says fenced or the socket fails.
 */
static void ask_if_fenced(struct ckpt_client *c, int was)
{
	struct ofi_client *o = oc(c);
	struct ckpt_msg req = {.type = CKPT_MSG_PING}, rep = {0};
	uint64_t deadline;

	if (o->want != NULL)
		return; /* a call waits for its own reply: it will see the refusal itself */
	o->fence_asked = true;
	o->dead = 0;
	if (ckpt_ofi_ctrl_send(c, &req) < 0) {
		o->dead = o->dead != 0 ? o->dead : was;
		return;
	}
	o->want = &rep;
	o->want_seq = req.seq;
	o->got = false;
	deadline = now_ms() + c->opts.timeout_ms;
	while (!o->got && o->dead == 0 && now_ms() < deadline)
		ckpt_ofi_ctrl_pump(c, 50);
	o->want = NULL;
	if (o->got && rep.status == -ESTALE) {
		ckpt_log(
			CKPT_LOG_ERR, LOG,
			"%s: fenced: a newer epoch was taken by another client; this one must stop",
			c->target);
		o->dead = -ESTALE;
	} else if (o->dead == 0) {
		o->dead = was;
	}
}

/*
 * The provider reports a dead peer variously (ECANCELED, EIO, ...); the control socket
 * says plainly whether the server is gone, so ask it before naming the failure.
 */
int ckpt_ofi_data_error(struct ckpt_client *c, int err)
{
	struct ofi_client *o = oc(c);
	struct pollfd p = {.fd = o->fd, .events = POLLIN};
	uint8_t byte;
	bool closed;

	if (o->dead == 0)
		ckpt_ofi_ctrl_pump(c, 0);
	closed = poll(&p, 1, 0) == 1 &&
		 (recv(o->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0 || (p.revents & POLLHUP));
	if (closed)
		o->dead = -ECONNRESET;
	if (o->dead == 0)
		o->dead = err == -ECONNRESET ? err : -EIO;
	/* The data path failed (rxm may drop the connection too) with the server still there. */
	if (!closed && !o->fence_asked && (o->dead == -EIO || o->dead == -ECONNRESET))
		ask_if_fenced(c, o->dead);
	return o->dead;
}
