/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ofi+tcp, ofi+shm and ofi+verbs backends: a control socket to ckptsrv (proto.h) and a
 * libfabric RDM endpoint that writes and reads registered regions one-sided.
 *
 * Durability never rests on a local completion. A barrier posts an 8-byte read after the
 * writes it covers (FI_ORDER_RAW: the target executes it only after those writes landed),
 * and once the read is back asks the server to persist the range written since the last
 * barrier; the server's answer is what makes the barrier's sequence durable. Where the
 * provider offers FI_RMA_PMEM and the store is real pmem, writes are posted with
 * FI_COMMIT_COMPLETE instead and a barrier only waits for their completions.
 *
 * Every wait is bounded by opts.timeout_ms: a frozen server hangs every provider.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <sodium.h>

#include "ckpt_internal.h"
#include "ofi_test.h"
#include "proto.h"

#define LOG "ckpt.ofi"
/*
 * A staging slot holds any record (CKPT_REC_MAX_LEN) and, while writes arrive back to back
 * at contiguous offsets (journal appends, neighbouring slots), a whole run of them: the
 * run goes out as one fi_write when it breaks, fills the slot, or a barrier needs it.
 */
#define STAGE_SLOT     65536u
#define BARRIERS_MAX   256u
#define BOUNCE_LEN     (1u << 20)
#define CQ_BATCH       32
#define LOCAL_KEY_BASE 0x686600u /* requested keys of our own local registrations */
/*
 * A client that sent nothing for this long sends a PING from its poll. ckptsrv closes a
 * session that sends nothing for its idle timeout (idle-timeout-ms: 60 s by default, 5 s
 * at the least), and one-sided writes and reads leave no trace on the control channel: a
 * standby that only reads, or a primary with nothing to flush, would be cut without it.
 */
#define KEEPALIVE_MS 1000

_Static_assert(CKPT_REC_MAX_LEN <= STAGE_SLOT, "a record fits one staging slot");

enum op_kind {
	OP_FREE,
	OP_STAGED, /* a write being gathered, not posted yet */
	OP_WRITE,
	OP_FENCE_READ, /* a barrier's 8-byte read */
	OP_READ,       /* a bulk read waited for by ofi_read */
};

struct ofi_op {
	enum op_kind kind;
	uint32_t slot;	 /* staging slot of a write */
	uint64_t wseq;	 /* per-region write number (commit-complete barriers) */
	uint64_t t_post; /* ms, for the timeout */
	struct ckpt_region *r;
	struct barrier *b;
	bool done;
	int err; /* negative errno of a failed completion */
	struct ofi_op *next_free;
};

enum barrier_state {
	B_FREE,
	B_READING,	/* fence read posted */
	B_READ_DONE,	/* fence read back: the writes are at the target */
	B_PERSIST_SENT, /* PERSIST asked, answer pending */
	B_COMMIT,	/* commit-complete: waiting for write completions */
	B_DONE,
};

struct barrier {
	enum barrier_state state;
	uint32_t idx; /* scratch word for the fence read */
	uint64_t seq;
	uint64_t lo, hi;
	uint64_t wseq;	  /* commit-complete: writes up to here */
	uint32_t req_seq; /* control seq of the PERSIST */
	uint64_t head;	  /* ring head the server publishes after the range; 0: none */
	uint64_t t_start;
	struct ckpt_region *r; /* NULL once the region closed under it */
	struct barrier *next;
};

struct ofi_region {
	uint64_t handle;
	uint64_t rkey;
	uint64_t base;
	uint64_t lo, hi;  /* bytes written since the last barrier, lo > hi: none */
	uint64_t wr_next; /* numbering of writes, for commit-complete barriers */
	struct barrier *bq_head, *bq_tail;
	bool commit;	    /* FI_COMMIT_COMPLETE path */
	struct ofi_op *run; /* OP_STAGED write gathering contiguous bytes, or NULL */
	uint64_t run_off;
	size_t run_len;
};

struct ofi_client {
	const char *prov;
	int fd;
	uint32_t seq;
	uint8_t *rx;
	size_t rx_len;
	/* the synchronous call in progress */
	uint32_t want_seq;
	bool got;
	struct ckpt_msg *want;
	struct ckpt_region_info *want_items; /* room for a LIST reply's entries */
	uint32_t want_cap;
	int dead; /* sticky: the server or the endpoint is gone */

	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	fi_addr_t srv;
	bool rma_pmem;

	uint8_t *stage;
	struct fid_mr *stage_mr;
	void *stage_desc;
	uint32_t *free_slots;
	uint32_t nfree, nslots;
	uint32_t inflight; /* writes posted and not completed */

	uint64_t *scratch;
	struct fid_mr *scratch_mr;
	void *scratch_desc;
	struct barrier barriers[BARRIERS_MAX];

	uint8_t *bounce;
	struct fid_mr *bounce_mr;
	void *bounce_desc;
	size_t bounce_len;

	struct ofi_op *ops;
	struct ofi_op *op_free;
	uint32_t nops;

	/*
	 * A poll reads the control connection only while a PERSIST answer is owed, and
	 * otherwise (to notice a server that went away) and checks timeouts once a
	 * millisecond: each is a system call or a walk over every operation, and a group
	 * polls many clients.
	 */
	uint32_t persist_owed;
	uint64_t idle_check_ms;
	uint64_t sent_ms; /* when the last request went (a keepalive counts) */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct ofi_client *oc(const struct ckpt_client *c)
{
	return c->be;
}

static struct ofi_region *orr(const struct ckpt_region *r)
{
	return r->be;
}

/* libfabric errors are positive FI_* codes that mostly equal errno values. */
static int fi_to_errno(int fi_err)
{
	int e = fi_err < 0 ? -fi_err : fi_err;

	if (e == FI_ENODATA)
		return -ENODATA;
	if (e == FI_ECONNRESET || e == FI_ECONNABORTED || e == FI_ENOTCONN || e == EPIPE ||
	    e == FI_ECONNREFUSED || e == FI_EHOSTUNREACH || e == FI_ESHUTDOWN)
		return -ECONNRESET;
	if (e == FI_ETIMEDOUT)
		return -ETIMEDOUT;
	if (e > 0 && e < 256)
		return -e;
	return -EIO;
}

static struct ofi_op *op_get(struct ofi_client *o, enum op_kind kind, struct ckpt_region *r)
{
	struct ofi_op *op = o->op_free;

	if (op == NULL)
		return NULL;
	o->op_free = op->next_free;
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->r = r;
	op->t_post = now_ms();
	return op;
}

static void op_put(struct ofi_client *o, struct ofi_op *op)
{
	op->kind = OP_FREE;
	op->next_free = o->op_free;
	o->op_free = op;
}

/* ---- completion queue ---- */

static void op_complete(struct ofi_client *o, struct ofi_op *op, int err)
{
	switch (op->kind) {
	case OP_WRITE:
		o->free_slots[o->nfree++] = op->slot;
		o->inflight--;
		if (err != 0 && o->dead == 0) {
			/* A write that did not land can never be made durable. */
			o->dead = err == -ECONNRESET ? err : -EIO;
		}
		op_put(o, op);
		break;
	case OP_FENCE_READ:
		if (err != 0) {
			if (o->dead == 0)
				o->dead = err == -ECONNRESET ? err : -EIO;
		} else if (op->b->state == B_READING) {
			op->b->state = B_READ_DONE;
		}
		if (op->b->r == NULL)
			op->b->state = B_FREE; /* its region closed meanwhile */
		op_put(o, op);
		break;
	case OP_READ:
		/* ofi_read owns it; an abandoned one (timed out) has r == NULL. */
		op->done = true;
		op->err = err;
		if (op->r == NULL)
			op_put(o, op);
		break;
	case OP_FREE:
	case OP_STAGED:
		break;
	}
}

/* Drain the CQ (which is also what makes manual-progress providers move). */
static int cq_progress(struct ofi_client *o)
{
	int seen = 0;

	for (;;) {
		struct fi_cq_entry e[CQ_BATCH];
		ssize_t n = fi_cq_read(o->cq, e, CQ_BATCH);

		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				op_complete(o, e[i].op_context, 0);
			seen += (int)n;
			continue;
		}
		if (n == -FI_EAGAIN)
			return seen;
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry err = {0};
			char pbuf[128];
			int en;

			if (fi_cq_readerr(o->cq, &err, 0) != 1)
				continue;
			en = fi_to_errno(err.err);
			/*
			 * rxm cancels what was queued on a connection that died and puts the
			 * socket's errno in prov_errno; that is the server going away, not a
			 * refused operation (a wrong key comes back as ECANCELED/ENOENT).
			 */
			if (en == -ECANCELED &&
			    (err.prov_errno == ENOTCONN || err.prov_errno == ECONNRESET ||
			     err.prov_errno == EPIPE || err.prov_errno == ECONNREFUSED))
				en = -ECONNRESET;
			/* One line per failure, not one per queued operation. */
			ckpt_log(o->dead == 0 ? CKPT_LOG_ERR : CKPT_LOG_DEBUG, LOG,
				 "%s: %s failed: %s (provider: %s)", o->prov,
				 err.op_context &&
						 ((struct ofi_op *)err.op_context)->kind == OP_WRITE
					 ? "remote write"
					 : "remote read",
				 fi_strerror(err.err),
				 fi_cq_strerror(o->cq, err.prov_errno, err.err_data, pbuf,
						sizeof(pbuf)));
			if (err.op_context != NULL)
				op_complete(o, err.op_context, en);
			seen++;
			continue;
		}
		if (o->dead == 0)
			o->dead = fi_to_errno((int)n);
		return seen;
	}
}

/* ---- control channel ---- */

static int region_dispatch_persist(struct ckpt_client *c, const struct ckpt_msg *m)
{
	struct ofi_client *o = oc(c);

	for (uint32_t i = 0; i < BARRIERS_MAX; i++) {
		struct barrier *b = &o->barriers[i];

		if (b->state != B_PERSIST_SENT || b->req_seq != m->seq)
			continue;
		if (m->status != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: server refused PERSIST [%llu, %llu): %s",
				 o->prov, (unsigned long long)b->lo, (unsigned long long)b->hi,
				 strerror(-m->status));
			if (o->dead == 0)
				o->dead = -EIO;
		}
		b->state = b->r == NULL ? B_FREE : B_DONE;
		o->persist_owed--;
		return 0;
	}
	return -EPROTO;
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
				ret = region_dispatch_persist(c, &m);
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

/* Read what the socket has (waiting up to @p wait_ms for something) and dispatch it. */
static int ctrl_pump(struct ckpt_client *c, int wait_ms)
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

static int ctrl_send(struct ckpt_client *c, struct ckpt_msg *m)
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

/*
 * One request and its reply; PERSIST replies that arrive first are dispatched on the way.
 * @return the server's status, or -ETIMEDOUT/-ECONNRESET/-EIO.
 */
static int call_list(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep,
		     unsigned int timeout_ms, struct ckpt_region_info *items, uint32_t cap)
{
	struct ofi_client *o = oc(c);
	uint64_t deadline;
	uint16_t want_type = req->type | CKPT_MSG_REPLY;
	int ret;

	if (o->dead)
		return o->dead;
	ret = ctrl_send(c, req);
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
		ret = ctrl_pump(c, (int)(deadline - now < 50 ? deadline - now : 50));
		if (ret < 0)
			break;
		cq_progress(o);
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

static int call_within(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep,
		       unsigned int timeout_ms)
{
	return call_list(c, req, rep, timeout_ms, NULL, 0);
}

static int call(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep)
{
	return call_within(c, req, rep, c->opts.timeout_ms);
}

/* ---- connect ---- */

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

static int ctrl_connect(struct ckpt_client *c, const char *where, bool shm)
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

static int authenticate(struct ckpt_client *c, uint8_t *ep, size_t *ep_len)
{
	struct ofi_client *o = oc(c);
	const char *tenant = c->opts.tenant;
	uint8_t srv_nonce[CKPT_PROTO_NONCE];
	struct ckpt_msg m = {0};
	int ret;

	if (strlen(tenant) == 0 || strlen(tenant) >= PMU_NAME_MAX) {
		ckpt_log(CKPT_LOG_ERR, LOG, "tenant name must be 1..%d bytes", PMU_NAME_MAX - 1);
		return -EINVAL;
	}
	ret = ckpt_proto_recv_msg(o->fd, o->rx, CKPT_ACCEPT_CHALLENGE, &m, (int)c->opts.timeout_ms);
	if (ret < 0)
		goto err_proto;
	memcpy(srv_nonce, m.u.challenge.nonce, sizeof(srv_nonce));
	memset(&m, 0, sizeof(m));
	m.type = CKPT_MSG_HELLO;
	strcpy(m.u.hello.tenant, tenant);
	randombytes_buf(m.u.hello.nonce, CKPT_PROTO_NONCE);
	ckpt_proto_client_mac(c->secret, c->opts.secret_len, srv_nonce, m.u.hello.nonce, tenant,
			      m.u.hello.mac);
	{
		uint8_t cli_nonce[CKPT_PROTO_NONCE];

		memcpy(cli_nonce, m.u.hello.nonce, sizeof(cli_nonce));
		ret = ckpt_proto_send_msg(o->fd, &m, (int)c->opts.timeout_ms);
		if (ret == 0)
			ret = ckpt_proto_recv_msg(o->fd, o->rx, CKPT_ACCEPT_WELCOME, &m,
						  (int)c->opts.timeout_ms);
		if (ret < 0)
			goto err_proto;
		if (m.status != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: server refused tenant %s: %s", c->target,
				 tenant, strerror(-m.status));
			return m.status == -EACCES ? -EACCES : m.status;
		}
		if (ckpt_proto_server_verify(c->secret, c->opts.secret_len, cli_nonce, srv_nonce,
					     m.u.welcome.mac) != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG,
				 "%s: the server could not prove it knows tenant %s's secret",
				 c->target, tenant);
			return -EACCES;
		}
	}
	memcpy(ep, m.u.welcome.ep, m.u.welcome.ep_len);
	*ep_len = m.u.welcome.ep_len;
	return 0;

err_proto:
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: authentication exchange failed: %s", c->target,
		 ret == -EPROTO || ret == -EINVAL ? "unexpected message" : strerror(-ret));
	return ret == -EINVAL ? -EPROTO : ret;
}

static int fab_fail(struct ckpt_client *c, const char *what, int ret)
{
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: %s: %s", c->target, what, fi_strerror(-ret));
	return fi_to_errno(ret);
}

static int get_info(struct ckpt_client *c, const char *node, bool want_pmem)
{
	struct ofi_client *o = oc(c);
	struct fi_info *hints = fi_allocinfo();
	int ret;

	if (hints == NULL)
		return -ENOMEM;
	hints->caps = FI_RMA | FI_READ | FI_WRITE | (want_pmem ? FI_RMA_PMEM : 0);
	hints->ep_attr->type = FI_EP_RDM;
	hints->fabric_attr->prov_name = strdup(o->prov);
	hints->domain_attr->mr_mode =
		FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	hints->domain_attr->threading = FI_THREAD_DOMAIN;
	/* Barriers rest on these: writes land in order, a read runs after earlier writes. */
	hints->tx_attr->msg_order = FI_ORDER_RAW | FI_ORDER_WAW;
	ret = fi_getinfo(FI_VERSION(1, 17), node, NULL, 0, hints, &o->info);
	fi_freeinfo(hints);
	return ret;
}

/*
 * The server's endpoint name goes to the provider, which trusts it: it must be an address
 * of the provider's own format, whole.
 */
static bool endpoint_ok(const struct fi_info *info, const uint8_t *ep, size_t len)
{
	sa_family_t family;

	switch (info->addr_format) {
	case FI_SOCKADDR:
	case FI_SOCKADDR_IN:
	case FI_SOCKADDR_IN6:
		if (len < sizeof(family))
			return false;
		memcpy(&family, ep, sizeof(family));
		if (family == AF_INET)
			return len >= sizeof(struct sockaddr_in) &&
			       info->addr_format != FI_SOCKADDR_IN6;
		if (family == AF_INET6)
			return len >= sizeof(struct sockaddr_in6) &&
			       info->addr_format != FI_SOCKADDR_IN;
		return false;
	case FI_ADDR_STR:
		for (size_t i = 0; i < len && ep[i] != '\0'; i++)
			if (ep[i] < ' ' || ep[i] > '~')
				return false;
		return len > 0 && ep[0] != '\0';
	default:
		return true;
	}
}

static int fabric_open(struct ckpt_client *c, const char *node, const uint8_t *ep, size_t ep_len)
{
	struct ofi_client *o = oc(c);
	struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_CONTEXT, .wait_obj = FI_WAIT_NONE};
	struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
	/* zero-padded: string-addressed providers (shm) read up to a NUL */
	uint8_t name[CKPT_PROTO_EP_MAX + 1] = {0};
	size_t stage_len;
	int ret;

	ret = get_info(c, node, true);
	if (ret == 0) {
		o->rma_pmem = true;
	} else {
		ret = get_info(c, node, false);
		if (ret != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG,
				 "%s: libfabric provider %s with ordered RMA is not available "
				 "here: %s",
				 c->target, o->prov, fi_strerror(-ret));
			return ret == -FI_ENODATA ? -ENODATA : fi_to_errno(ret);
		}
	}
	if ((o->info->tx_attr->msg_order & (FI_ORDER_RAW | FI_ORDER_WAW)) !=
	    (FI_ORDER_RAW | FI_ORDER_WAW)) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: provider %s does not order reads after writes; barriers need it",
			 c->target, o->prov);
		return -ENOTSUP;
	}
	ret = fi_fabric(o->info->fabric_attr, &o->fabric, NULL);
	if (ret)
		return fab_fail(c, "fi_fabric", ret);
	ret = fi_domain(o->fabric, o->info, &o->domain, NULL);
	if (ret)
		return fab_fail(c, "fi_domain", ret);
	ret = fi_av_open(o->domain, &av_attr, &o->av, NULL);
	if (ret)
		return fab_fail(c, "fi_av_open", ret);
	cq_attr.size = c->opts.max_inflight + BARRIERS_MAX + 16;
	ret = fi_cq_open(o->domain, &cq_attr, &o->cq, NULL);
	if (ret)
		return fab_fail(c, "fi_cq_open", ret);
	ret = fi_endpoint(o->domain, o->info, &o->ep, NULL);
	if (ret)
		return fab_fail(c, "fi_endpoint", ret);
	ret = fi_ep_bind(o->ep, &o->av->fid, 0);
	if (ret == 0)
		ret = fi_ep_bind(o->ep, &o->cq->fid, FI_TRANSMIT | FI_RECV);
	if (ret == 0)
		ret = fi_enable(o->ep);
	if (ret)
		return fab_fail(c, "endpoint setup", ret);
	if (!endpoint_ok(o->info, ep, ep_len)) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: the server's endpoint address (%zu bytes) is not a %s address",
			 c->target, ep_len, fi_tostr(&o->info->addr_format, FI_TYPE_ADDR_FORMAT));
		return -EPROTO;
	}
	memcpy(name, ep, ep_len);
	ret = fi_av_insert(o->av, name, 1, &o->srv, 0, NULL);
	if (ret != 1) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: the server's endpoint address does not insert",
			 c->target);
		return -EPROTO;
	}

	o->nslots = c->opts.max_inflight;
	stage_len = (size_t)o->nslots * STAGE_SLOT;
	o->stage = aligned_alloc(4096, stage_len);
	o->free_slots = calloc(o->nslots, sizeof(*o->free_slots));
	o->scratch = aligned_alloc(4096, 4096);
	o->bounce_len = BOUNCE_LEN;
	if (o->info->ep_attr->max_msg_size < o->bounce_len)
		o->bounce_len = o->info->ep_attr->max_msg_size;
	o->bounce = aligned_alloc(4096, BOUNCE_LEN);
	o->nops = o->nslots + BARRIERS_MAX + 16;
	o->ops = calloc(o->nops, sizeof(*o->ops));
	if (o->stage == NULL || o->free_slots == NULL || o->scratch == NULL || o->bounce == NULL ||
	    o->ops == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < o->nslots; i++)
		o->free_slots[o->nfree++] = o->nslots - 1 - i;
	for (uint32_t i = 0; i < o->nops; i++)
		op_put(o, &o->ops[i]);
	for (uint32_t i = 0; i < BARRIERS_MAX; i++)
		o->barriers[i].idx = i;
	ret = fi_mr_reg(o->domain, o->stage, stage_len, FI_WRITE | FI_READ, 0, LOCAL_KEY_BASE, 0,
			&o->stage_mr, NULL);
	if (ret == 0)
		ret = fi_mr_reg(o->domain, o->scratch, 4096, FI_READ | FI_WRITE, 0,
				LOCAL_KEY_BASE + 1, 0, &o->scratch_mr, NULL);
	if (ret == 0)
		ret = fi_mr_reg(o->domain, o->bounce, BOUNCE_LEN, FI_READ | FI_WRITE, 0,
				LOCAL_KEY_BASE + 2, 0, &o->bounce_mr, NULL);
	if (ret)
		return fab_fail(c, "registering local buffers", ret);
	o->stage_desc = fi_mr_desc(o->stage_mr);
	o->scratch_desc = fi_mr_desc(o->scratch_mr);
	o->bounce_desc = fi_mr_desc(o->bounce_mr);
	return 0;
}

static void fabric_close(struct ofi_client *o)
{
	if (o->ep)
		fi_close(&o->ep->fid);
	if (o->stage_mr)
		fi_close(&o->stage_mr->fid);
	if (o->scratch_mr)
		fi_close(&o->scratch_mr->fid);
	if (o->bounce_mr)
		fi_close(&o->bounce_mr->fid);
	if (o->cq)
		fi_close(&o->cq->fid);
	if (o->av)
		fi_close(&o->av->fid);
	if (o->domain)
		fi_close(&o->domain->fid);
	if (o->fabric)
		fi_close(&o->fabric->fid);
	if (o->info)
		fi_freeinfo(o->info);
	free(o->stage);
	free(o->free_slots);
	free(o->scratch);
	free(o->bounce);
	free(o->ops);
}

static int ofi_connect_as(struct ckpt_client *c, const char *where, const char *prov, bool shm)
{
	struct ofi_client *o;
	uint8_t ep[CKPT_PROTO_EP_MAX];
	char host[256] = "", port[16];
	size_t ep_len = 0;
	int ret;

	if (shm && !c->opts.allow_shm) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: refused: the shm provider does not check remote keys; set "
			 "allow_shm for trusted same-host use",
			 c->target);
		return -EPROTONOSUPPORT;
	}
	if (c->opts.secret_len == 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: a remote target needs a secret", c->target);
		return -EINVAL;
	}
	if (sodium_init() < 0)
		return -EIO;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->rx = malloc(CKPT_PROTO_FRAME_MAX);
	if (o->rx == NULL) {
		free(o);
		return -ENOMEM;
	}
	o->prov = prov;
	o->fd = -1;
	c->be = o;
	ret = ctrl_connect(c, where, shm);
	if (ret < 0)
		goto err_free;
	ret = authenticate(c, ep, &ep_len);
	if (ret < 0)
		goto err_close_fd;
	if (!shm)
		ckpt_proto_split_hostport(where, host, sizeof(host), port, sizeof(port));
	ret = fabric_open(c, shm ? NULL : host, ep, ep_len);
	if (ret < 0)
		goto err_close_fabric;
	o->sent_ms = now_ms();
	ckpt_log(CKPT_LOG_INFO, LOG, "%s: connected as tenant %s (provider %s%s)", c->target,
		 c->opts.tenant, o->info->fabric_attr->prov_name,
		 o->rma_pmem ? ", FI_RMA_PMEM" : "");
	return 0;

err_close_fabric:
	fabric_close(o);
err_close_fd:
	close(o->fd);
err_free:
	free(o->rx);
	free(o);
	c->be = NULL;
	return ret;
}

static int tcp_connect(struct ckpt_client *c, const char *where)
{
	return ofi_connect_as(c, where, "tcp;ofi_rxm", false);
}

static int shm_connect(struct ckpt_client *c, const char *where)
{
	return ofi_connect_as(c, where, "shm", true);
}

static int verbs_connect(struct ckpt_client *c, const char *where)
{
	return ofi_connect_as(c, where, "verbs;ofi_rxm", false);
}

static void ofi_disconnect(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);

	if (o == NULL)
		return;
	fabric_close(o);
	close(o->fd);
	free(o->rx);
	free(o);
	c->be = NULL;
}

/* ---- regions ---- */

/*
 * The reply must describe the region asked for: a server that answers with another one
 * (a bug, or a peer that is not what it claims) is not written through.
 */
static int attach(struct ckpt_client *c, struct ckpt_region *r, const struct ckpt_msg *rep,
		  const char *name, const struct pmu_region_info *want)
{
	const struct pmu_region_info *got = &rep->u.opened.info;
	struct ofi_region *rr;

	if (strcmp(got->name, name) != 0 || strcmp(got->owner, c->opts.tenant) != 0 ||
	    (want != NULL &&
	     (got->mode != want->mode || got->size != want->size ||
	      got->slot_size != want->slot_size || got->ring_size != want->ring_size))) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: asked for region %s of tenant %s, the server answered with region "
			 "%s of tenant %s (%llu bytes)",
			 c->target, name, c->opts.tenant, got->name, got->owner,
			 (unsigned long long)got->size);
		oc(c)->dead = -EIO;
		return -EIO;
	}
	rr = calloc(1, sizeof(*rr));
	if (rr == NULL)
		return -ENOMEM;
	rr->handle = rep->u.opened.handle;
	rr->rkey = rep->u.opened.rkey;
	rr->base = rep->u.opened.base;
	rr->lo = UINT64_MAX;
	rr->commit = oc(c)->rma_pmem && rep->u.opened.is_pmem;
	r->geo = rep->u.opened.info;
	r->is_pmem = rep->u.opened.is_pmem != 0;
	r->be = rr;
	return 0;
}

static void release_handle(struct ckpt_client *c, uint64_t handle)
{
	struct ckpt_msg req = {.type = CKPT_MSG_CLOSE}, rep = {0};

	req.u.close.handle = handle;
	call(c, &req, &rep);
}

static int ofi_create(struct ckpt_client *c, const struct pmu_region_params *p,
		      struct ckpt_region *r)
{
	struct ckpt_msg req = {.type = CKPT_MSG_CREATE}, rep = {0};
	struct pmu_region_params own = *p;
	struct pmu_region_info want;
	int ret;

	if (p->owner != NULL && strcmp(p->owner, c->opts.tenant) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: tenant %s cannot create a region owned by %s",
			 c->target, c->opts.tenant, p->owner);
		return -EACCES;
	}
	own.owner = c->opts.tenant;
	if (p->name == NULL || pmu_region_layout(&own, &want) != 0)
		return -EINVAL;
	strcpy(req.u.create.name, p->name);
	req.u.create.mode = (uint32_t)p->mode;
	req.u.create.slot_size = p->slot_size;
	req.u.create.size = p->size;
	req.u.create.ring_size = p->ring_size;
	/* The server zeroes and persists the whole region before it answers: 230 MB took over
	 * a second on a loaded 2-core host. A second more per 128 MiB. */
	ret = call_within(c, &req, &rep,
			  c->opts.timeout_ms + (unsigned int)(p->size / (128u << 20)) * 1000u);
	if (ret < 0) {
		ckpt_log(ret == -EEXIST ? CKPT_LOG_NOTICE : CKPT_LOG_ERR, LOG,
			 "%s: create region %s: %s", c->target, p->name, strerror(-ret));
		return ret;
	}
	ret = attach(c, r, &rep, p->name, &want);
	if (ret < 0 && ret != -EIO)
		release_handle(c, rep.u.opened.handle);
	return ret;
}

static int ofi_open(struct ckpt_client *c, const char *name, struct ckpt_region *r)
{
	struct ckpt_msg req = {.type = CKPT_MSG_OPEN}, rep = {0};
	int ret;

	if (strlen(name) >= PMU_NAME_MAX || name[0] == '\0')
		return -EINVAL;
	strcpy(req.u.name.name, name);
	ret = call(c, &req, &rep);
	if (ret < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: open region %s: %s", c->target, name,
			 strerror(-ret));
		return ret;
	}
	ret = attach(c, r, &rep, name, NULL);
	if (ret < 0 && ret != -EIO)
		release_handle(c, rep.u.opened.handle);
	return ret;
}

static bool region_busy(struct ofi_client *o, const struct ckpt_region *r)
{
	if (orr(r)->bq_head != NULL)
		return true;
	for (uint32_t i = 0; i < o->nops; i++)
		if (o->ops[i].kind != OP_FREE && o->ops[i].r == r)
			return true;
	return false;
}

static int ofi_poll(struct ckpt_client *c);
static int post_run(struct ckpt_region *r);

static int ofi_close(struct ckpt_region *r)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	uint64_t deadline = now_ms() + c->opts.timeout_ms;
	struct barrier *b, *next;
	int ret = 0;

	if (o->dead == 0)
		post_run(r);
	/* Let posted operations finish; they still point at this region. */
	while (o->dead == 0 && region_busy(o, r) && now_ms() < deadline) {
		if (ofi_poll(c) == 0)
			sched_yield();
	}
	for (b = rr->bq_head; b != NULL; b = next) {
		next = b->next;
		b->r = NULL;
		if (b->state != B_READING && b->state != B_PERSIST_SENT)
			b->state = B_FREE;
	}
	for (uint32_t i = 0; i < o->nops; i++)
		if (o->ops[i].kind != OP_FREE && o->ops[i].r == r)
			o->ops[i].r = NULL;
	if (o->dead == 0) {
		struct ckpt_msg req = {.type = CKPT_MSG_CLOSE}, rep = {0};

		req.u.close.handle = rr->handle;
		ret = call(c, &req, &rep);
	}
	free(rr);
	r->be = NULL;
	return ret;
}

static int ofi_remove(struct ckpt_client *c, const char *name)
{
	struct ckpt_msg req = {.type = CKPT_MSG_DELETE}, rep = {0};

	if (strlen(name) >= PMU_NAME_MAX || name[0] == '\0')
		return -EINVAL;
	strcpy(req.u.name.name, name);
	return call(c, &req, &rep);
}

static int ofi_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
{
	struct ckpt_msg req = {.type = CKPT_MSG_LIST}, rep = {0};
	int ret;

	ret = call_list(c, &req, &rep, c->opts.timeout_ms, out, out == NULL ? 0 : max);
	if (ret < 0)
		return ret;
	/* The server sends every region it counts; fewer would leave entries unwritten. */
	if (rep.u.list.n != rep.u.list.total) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: LIST reply holds %u of %u regions", c->target,
			 rep.u.list.n, rep.u.list.total);
		oc(c)->dead = -EIO;
		return -EIO;
	}
	return (int)rep.u.list.total;
}

static int ofi_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	struct ckpt_msg req = {.type = CKPT_MSG_STAT}, rep = {0};
	int ret;

	if (strlen(name) >= PMU_NAME_MAX || name[0] == '\0')
		return -EINVAL;
	strcpy(req.u.name.name, name);
	ret = call(c, &req, &rep);
	if (ret == 0)
		*out = rep.u.stat;
	return ret;
}

static int ofi_lease(struct ckpt_region *r, unsigned int ttl_ms)
{
	struct ckpt_msg req = {.type = CKPT_MSG_LEASE}, rep = {0};

	req.u.lease.handle = orr(r)->handle;
	req.u.lease.ttl_ms = ttl_ms;
	return call(r->cl, &req, &rep);
}

/* ---- data path ---- */

/*
 * The provider reports a dead peer variously (ECANCELED, EIO, ...); the control socket
 * says plainly whether the server is gone, so ask it before naming the failure.
 */
static int data_error(struct ckpt_client *c, int err)
{
	struct ofi_client *o = oc(c);
	struct pollfd p = {.fd = o->fd, .events = POLLIN};
	uint8_t byte;

	if (o->dead == 0)
		ctrl_pump(c, 0);
	if (o->dead != -ECONNRESET && poll(&p, 1, 0) == 1 &&
	    (recv(o->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0 || (p.revents & POLLHUP)))
		o->dead = -ECONNRESET;
	if (o->dead == 0)
		o->dead = err == -ECONNRESET ? err : -EIO;
	return o->dead;
}

/*
 * Post one RMA, progressing the CQ while the provider's queue is full (shm's queue fills
 * whenever the server's progress thread naps). Bounded by the timeout like every wait.
 */
static int post_rma(struct ckpt_client *c, bool write, void *buf, size_t len, void *desc,
		    uint64_t raddr, uint64_t key, struct ofi_op *op, bool commit)
{
	struct ofi_client *o = oc(c);
	uint64_t deadline = 0;
	ssize_t ret;

	for (;;) {
		if (write && commit) {
			struct iovec iov = {.iov_base = buf, .iov_len = len};
			struct fi_rma_iov rma = {.addr = raddr, .len = len, .key = key};
			struct fi_msg_rma msg = {
				.msg_iov = &iov,
				.desc = &desc,
				.iov_count = 1,
				.addr = o->srv,
				.rma_iov = &rma,
				.rma_iov_count = 1,
				.context = op,
			};

			ret = fi_writemsg(o->ep, &msg, FI_COMPLETION | FI_COMMIT_COMPLETE);
		} else if (write) {
			ret = fi_write(o->ep, buf, len, desc, o->srv, raddr, key, op);
		} else {
			ret = fi_read(o->ep, buf, len, desc, o->srv, raddr, key, op);
		}
		if (ret == 0)
			return 0;
		if (ret != -FI_EAGAIN)
			return data_error(c, fi_to_errno((int)ret));
		if (cq_progress(o) == 0)
			sched_yield();
		if (o->dead)
			return o->dead;
		if (deadline == 0)
			deadline = now_ms() + c->opts.timeout_ms;
		else if (now_ms() > deadline)
			break;
	}
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: provider queue stayed full for %u ms", c->target,
		 c->opts.timeout_ms);
	o->dead = -ETIMEDOUT;
	return -ETIMEDOUT;
}

static void note_range(struct ofi_region *rr, uint64_t off, size_t len)
{
	if (rr->lo > rr->hi) {
		rr->lo = off;
		rr->hi = off + len;
	} else {
		rr->lo = rr->lo < off ? rr->lo : off;
		rr->hi = rr->hi > off + len ? rr->hi : off + len;
	}
}

/* Post the run being gathered, if any. */
static int post_run(struct ckpt_region *r)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	struct ofi_op *op = rr->run;
	int ret;

	if (op == NULL)
		return 0;
	rr->run = NULL;
	op->kind = OP_WRITE;
	op->wseq = ++rr->wr_next;
	op->t_post = now_ms();
	o->inflight++;
	ret = post_rma(c, true, o->stage + (size_t)op->slot * STAGE_SLOT, rr->run_len,
		       o->stage_desc, rr->base + rr->run_off, rr->rkey, op, rr->commit);
	if (ret < 0) {
		/* Accepted writes cannot be taken back: the client is failed (post_rma says). */
		o->inflight--;
		o->free_slots[o->nfree++] = op->slot;
		op_put(o, op);
		if (o->dead == 0)
			o->dead = ret;
	}
	return ret;
}

static int ofi_write(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	uint32_t need = (uint32_t)((len + STAGE_SLOT - 1) / STAGE_SLOT);
	const uint8_t *src = buf;
	uint64_t at = off;
	int ret;

	if (o->dead)
		return o->dead;
	if (len == 0 || off > r->geo.size || len > r->geo.size - off || need > o->nslots) {
		ckpt_log(CKPT_LOG_ERR, LOG, "region %s: write [%llu, +%zu) out of range",
			 r->geo.name, (unsigned long long)off, len);
		return -EINVAL;
	}
	if (rr->run != NULL && off == rr->run_off + rr->run_len &&
	    rr->run_len + len <= STAGE_SLOT) {
		memcpy(o->stage + (size_t)rr->run->slot * STAGE_SLOT + rr->run_len, buf, len);
		rr->run_len += len;
		note_range(rr, off, len);
		return 0;
	}
	if (o->nfree < need)
		cq_progress(o);
	if (o->nfree < need)
		return -EAGAIN;
	ret = post_run(r);
	if (ret < 0)
		return ret;
	if (len <= STAGE_SLOT) {
		struct ofi_op *op = op_get(o, OP_STAGED, r);

		if (op == NULL)
			return -EAGAIN;
		op->slot = o->free_slots[--o->nfree];
		memcpy(o->stage + (size_t)op->slot * STAGE_SLOT, buf, len);
		rr->run = op;
		rr->run_off = off;
		rr->run_len = len;
		note_range(rr, off, len);
		return 0;
	}
	while (at < off + len) {
		size_t n = off + len - at < STAGE_SLOT ? off + len - at : STAGE_SLOT;
		struct ofi_op *op = op_get(o, OP_WRITE, r);
		uint8_t *stage;

		if (op == NULL)
			return -EAGAIN;
		op->slot = o->free_slots[--o->nfree];
		op->wseq = ++rr->wr_next;
		stage = o->stage + (size_t)op->slot * STAGE_SLOT;
		memcpy(stage, src, n);
		o->inflight++;
		ret = post_rma(c, true, stage, n, o->stage_desc, rr->base + at, rr->rkey, op,
			       rr->commit);
		if (ret < 0) {
			o->inflight--;
			o->free_slots[o->nfree++] = op->slot;
			op_put(o, op);
			/* A multi-slot write cut in half cannot be taken back: fail the client. */
			if (at != off && o->dead == 0)
				o->dead = -EIO;
			return ret;
		}
		src += n;
		at += n;
	}
	note_range(rr, off, len);
	return 0;
}

static struct barrier *barrier_get(struct ofi_client *o)
{
	for (uint32_t i = 0; i < BARRIERS_MAX; i++)
		if (o->barriers[i].state == B_FREE)
			return &o->barriers[i];
	return NULL;
}

static void barrier_queue(struct ofi_region *rr, struct barrier *b)
{
	b->next = NULL;
	if (rr->bq_tail != NULL)
		rr->bq_tail->next = b;
	else
		rr->bq_head = b;
	rr->bq_tail = b;
}

static int barrier_start(struct ckpt_region *r, uint64_t seq, uint64_t head)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	struct barrier *b;
	struct ofi_op *op;
	uint64_t at;
	int ret;

	if (o->dead)
		return o->dead;
	ret = post_run(r);
	if (ret < 0)
		return ret;
	if (head != 0 && (rr->commit || rr->lo > rr->hi))
		return -ENOTSUP; /* no PERSIST to carry it */
	if (rr->lo > rr->hi && rr->bq_head == NULL) {
		/* Nothing written since the last barrier, and that one is done. */
		r->durable = seq;
		return 0;
	}
	b = barrier_get(o);
	if (b == NULL)
		return -EAGAIN;
	b->seq = seq;
	b->head = head;
	b->r = r;
	b->t_start = now_ms();
	b->lo = rr->lo;
	b->hi = rr->hi;
	if (rr->lo > rr->hi) {
		b->state = B_DONE;
	} else if (rr->commit) {
		b->state = B_COMMIT;
		b->wseq = rr->wr_next;
	} else {
		op = op_get(o, OP_FENCE_READ, r);
		if (op == NULL)
			return -EAGAIN;
		op->b = b;
		/* Any 8 bytes of the region will do; the ordering is what matters. */
		at = b->lo & ~7ull;
		if (at + 8 > r->geo.size)
			at = r->geo.size - 8;
		b->state = B_READING;
		ret = post_rma(c, false, &o->scratch[b->idx], 8, o->scratch_desc, rr->base + at,
			       rr->rkey, op, false);
		if (ret < 0) {
			b->state = B_FREE;
			op_put(o, op);
			return ret;
		}
	}
	rr->lo = UINT64_MAX;
	rr->hi = 0;
	barrier_queue(rr, b);
	return 0;
}

static int ofi_barrier(struct ckpt_region *r, uint64_t seq)
{
	return barrier_start(r, seq, 0);
}

/* One round trip for a ring flush: the server stores the head once the records are durable. */
static int ofi_barrier_head(struct ckpt_region *r, uint64_t seq, uint64_t head)
{
	return head == 0 ? -ENOTSUP : barrier_start(r, seq, head);
}

static bool commit_reached(struct ofi_client *o, const struct ckpt_region *r, uint64_t wseq)
{
	for (uint32_t i = 0; i < o->nops; i++)
		if (o->ops[i].kind == OP_WRITE && o->ops[i].r == r && o->ops[i].wseq <= wseq)
			return false;
	return true;
}

/* Move a region's barriers on: ask PERSIST for fenced ranges, retire finished ones. */
static int barriers_advance(struct ckpt_region *r)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	int ret;

	for (struct barrier *b = rr->bq_head; b != NULL; b = b->next) {
		if (b->state == B_COMMIT && commit_reached(o, r, b->wseq))
			b->state = B_DONE;
		if (b->state == B_READ_DONE) {
			struct ckpt_msg req = {.type = CKPT_MSG_PERSIST};

			req.u.persist.handle = rr->handle;
			req.u.persist.off = b->lo;
			req.u.persist.len = b->hi - b->lo;
			req.u.persist.head = b->head;
			ret = ctrl_send(c, &req);
			if (ret < 0)
				return ret;
			b->req_seq = req.seq;
			b->state = B_PERSIST_SENT;
			o->persist_owed++;
		}
		if (b->state == B_READING)
			break;
	}
	while (rr->bq_head != NULL && rr->bq_head->state == B_DONE) {
		struct barrier *b = rr->bq_head;

		r->durable = b->seq;
		rr->bq_head = b->next;
		if (rr->bq_head == NULL)
			rr->bq_tail = NULL;
		b->state = B_FREE;
		b->r = NULL;
	}
	return 0;
}

/*
 * An operation older than the timeout means the server is frozen or unreachable. Its
 * staging slot and completion are still owed to us, so the client cannot go on: the
 * timeout is sticky, and close/disconnect stop waiting for that server.
 */
static int check_timeouts(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);
	uint64_t now = now_ms(), limit = c->opts.timeout_ms;

	for (uint32_t i = 0; i < o->nops; i++) {
		if (o->ops[i].kind == OP_FREE || o->ops[i].kind == OP_STAGED ||
		    o->ops[i].r == NULL || now - o->ops[i].t_post <= limit)
			continue;
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: a remote %s to region %s waited over %u ms",
			 c->target, o->ops[i].kind == OP_WRITE ? "write" : "read",
			 o->ops[i].r->geo.name, c->opts.timeout_ms);
		o->dead = -ETIMEDOUT;
		return -ETIMEDOUT;
	}
	for (uint32_t i = 0; i < BARRIERS_MAX; i++) {
		const struct barrier *b = &o->barriers[i];

		if (b->state == B_FREE || b->r == NULL || now - b->t_start <= limit)
			continue;
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: region %s: durability not confirmed within %u ms",
			 c->target, b->r->geo.name, c->opts.timeout_ms);
		o->dead = -ETIMEDOUT;
		return -ETIMEDOUT;
	}
	return 0;
}

/*
 * Post a PING and never wait for it: its answer is taken by ctrl_frames() when the poll
 * next reads the socket. A socket with no room for the 16 bytes (a server that has read
 * nothing for long) gets it at a later poll; a part sent must be followed by the rest,
 * bounded like every control send.
 */
static void keepalive(struct ckpt_client *c, uint64_t now)
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

static int ofi_poll(struct ckpt_client *c)
{
	struct ofi_client *o = oc(c);
	uint64_t now;
	bool idle_check;
	int seen, ret;

	seen = cq_progress(o);
	if (o->dead != 0)
		return data_error(c, o->dead);
	now = now_ms();
	idle_check = now != o->idle_check_ms;
	if (idle_check)
		o->idle_check_ms = now;
	if (o->persist_owed != 0 || idle_check)
		ctrl_pump(c, 0);
	if (o->dead == 0 && idle_check && now - o->sent_ms >= KEEPALIVE_MS)
		keepalive(c, now);
	if (o->dead)
		return o->dead;
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next) {
		uint64_t before = r->durable;

		if (r->be == NULL)
			continue;
		ret = barriers_advance(r);
		if (ret < 0)
			return o->dead ? o->dead : ret;
		if (r->durable != before)
			seen++;
	}
	ret = idle_check ? check_timeouts(c) : 0;
	return ret < 0 ? ret : seen;
}

static int ofi_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len)
{
	struct ckpt_client *c = r->cl;
	struct ofi_client *o = oc(c);
	struct ofi_region *rr = orr(r);
	uint8_t *dst = buf;

	if (o->dead)
		return o->dead;
	if (off > r->geo.size || len > r->geo.size - off)
		return -EINVAL;
	while (len > 0) {
		size_t n = len < o->bounce_len ? len : o->bounce_len;
		uint64_t now = now_ms();

		/* A long read (a restore) sends nothing else: the session must not look idle. */
		if (now - o->sent_ms >= KEEPALIVE_MS) {
			keepalive(c, now);
			if (o->dead)
				return o->dead;
		}
		struct ofi_op *op = op_get(o, OP_READ, r);
		uint64_t deadline = now_ms() + c->opts.timeout_ms;
		int ret;

		if (op == NULL) {
			cq_progress(o);
			op = op_get(o, OP_READ, r);
			if (op == NULL)
				return -EAGAIN;
		}
		ret = post_rma(c, false, o->bounce, n, o->bounce_desc, rr->base + off, rr->rkey, op,
			       false);
		if (ret < 0) {
			op_put(o, op);
			return ret;
		}
		while (!op->done && o->dead == 0 && now_ms() < deadline) {
			if (cq_progress(o) == 0)
				sched_yield();
		}
		if (!op->done) {
			/*
			 * The read may still complete into the bounce buffer; it is abandoned
			 * (r = NULL frees it then) and the client is no longer trusted.
			 */
			op->r = NULL;
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: read of region %s timed out after %u ms",
				 c->target, r->geo.name, c->opts.timeout_ms);
			if (o->dead == 0)
				o->dead = -ETIMEDOUT;
			return o->dead;
		}
		ret = op->err;
		op_put(o, op);
		if (ret < 0)
			return ret;
		memcpy(dst, o->bounce, n);
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* One code path for every provider: the tables differ only in how they connect. */
#define OFI_OPS(scheme_, connect_)                                                                 \
	{                                                                                          \
		.target = {.scheme = (scheme_),                                                    \
			   .connect = (connect_),                                                  \
			   .disconnect = ofi_disconnect,                                           \
			   .create = ofi_create,                                                   \
			   .open = ofi_open,                                                       \
			   .close = ofi_close,                                                     \
			   .remove = ofi_remove,                                                   \
			   .list = ofi_list,                                                       \
			   .stat = ofi_stat,                                                       \
			   .lease = ofi_lease,                                                     \
			   .barrier = ofi_barrier,                                                 \
			   .poll = ofi_poll},                                                      \
		.applies_journal = true, .write = ofi_write, .barrier_head = ofi_barrier_head,     \
		.read = ofi_read,                                                                  \
	}

const struct ckpt_byte_ops ckpt_ofi_tcp_ops = OFI_OPS("ofi+tcp", tcp_connect);
const struct ckpt_byte_ops ckpt_ofi_shm_ops = OFI_OPS("ofi+shm", shm_connect);
const struct ckpt_byte_ops ckpt_ofi_verbs_ops = OFI_OPS("ofi+verbs", verbs_connect);

int ckpt_ofi_test_set_rkey(struct ckpt_region *r, uint64_t key)
{
	if (r == NULL || r->be == NULL || r->cl->bytes == NULL || r->cl->bytes->write != ofi_write)
		return -EINVAL;
	orr(r)->rkey = key;
	return 0;
}

int ckpt_ofi_test_persist(struct ckpt_region *r, uint64_t off, uint64_t len)
{
	struct ckpt_msg req = {.type = CKPT_MSG_PERSIST}, rep = {0};

	if (r == NULL || r->be == NULL || r->cl->bytes == NULL || r->cl->bytes->write != ofi_write)
		return -EINVAL;
	req.u.persist.handle = orr(r)->handle;
	req.u.persist.off = off;
	req.u.persist.len = len;
	return call(r->cl, &req, &rep);
}
