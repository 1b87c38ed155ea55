/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the ofi+tcp, ofi+shm and ofi+verbs backends: the state their files share and
 * the calls they make on each other. The core sees none of it (ckpt_internal.h's ops table
 * is the only way in).
 *
 * Files, bottom-up; each calls only the files listed before it (no cycles):
 *
 *	ofi_lib.c        libfabric itself, loaded at the first connect (dlopen): the few
 *	                 functions called by name
 *	ofi_fabric.c     libfabric objects: provider (fi_getinfo), fabric, domain, AV, CQ,
 *	                 endpoint; the server's endpoint address, checked, then inserted; the
 *	                 local buffers (staging, fence scratch, read bounce) and their MRs
 *	ofi_completion.c what finishes an operation: CQ entries (a write, a barrier's fence
 *	                 read, a bulk read) and PERSIST answers (a barrier)
 *	ofi_ctrl.c       the control socket to ckptsrv (proto.h): connect, framing, calls and
 *	                 the matching of their replies, keepalives, and what the socket says
 *	                 about a data-path failure
 *	ofi_auth.c       the handshake that opens the control socket: HMAC both ways
 *	ofi_data.c       the data path: write staging, the barrier state machine, bulk reads
 *	ofi.c            the backend: connect, disconnect, regions, poll, the ops tables, and
 *	                 the test hooks of ofi_test.h
 *
 * A poll reads the control socket (ofi_ctrl.c), whose PERSIST answers finish barriers
 * (ofi_completion.c), which the data path (ofi_data.c) started: the barrier state lives here,
 * and each file moves it only as its comment on enum barrier_state says.
 */
#ifndef CKPT_OFI_INTERNAL_H
#define CKPT_OFI_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <rdma/fabric.h>

#include "ckpt_internal.h"
#include "proto.h"

#define LOG "ckpt.ofi"
/*
 * A staging slot holds any record (CKPT_REC_MAX_LEN) and, while writes arrive back to back
 * at contiguous offsets (journal appends, neighbouring slots), a whole run of them: the
 * run goes out as one fi_write when it breaks, fills the slot, or a barrier needs it.
 */
#define STAGE_SLOT   65536u
#define BARRIERS_MAX 256u
#define BOUNCE_LEN   (1u << 20)
/*
 * A client that sent nothing for this long sends a PING from its poll. ckptsrv closes a
 * session that sends nothing for its idle timeout (idle-timeout-ms: 60 s by default, 5 s
 * at the least), and one-sided writes and reads leave no trace on the control channel: a
 * standby that only reads, or a primary with nothing to flush, would be cut without it.
 */
#define KEEPALIVE_MS 1000

/*
 * libfabric's functions that are called by name (the rest of its API is inline calls
 * through the objects' ops tables): loaded with the library at the first connect.
 */
struct ckpt_ofi_lib {
	int (*getinfo)(uint32_t version, const char *node, const char *service, uint64_t flags,
		       const struct fi_info *hints, struct fi_info **info);
	void (*freeinfo)(struct fi_info *info);
	struct fi_info *(*dupinfo)(const struct fi_info *info);
	int (*fabric)(struct fi_fabric_attr *attr, struct fid_fabric **fabric, void *context);
	const char *(*strerror)(int errnum);
	char *(*tostr)(const void *data, enum fi_type datatype);
};

/** libfabric, loaded on the first call. @return its functions, or NULL with errno ENOTSUP
 *  (not installed, or not the ABI these headers describe: logged). Thread-safe. */
const struct ckpt_ofi_lib *ckpt_ofi_lib(void);

/*
 * libfabric installs signal handlers of its own, at load (libinfinipath's constructor: they
 * exit 1) and at the first shm endpoint (they unlink every shm endpoint file of the process,
 * then chain). The caller's signals are the caller's: each step that may install one is
 * bracketed by a save and a restore, which puts back every disposition that changed.
 */
struct ckpt_ofi_sigs {
	struct sigaction act[NSIG];
};
void ckpt_ofi_sigs_save(struct ckpt_ofi_sigs *s);
/** @param what the step, for the debug log line naming each handler put back. */
void ckpt_ofi_sigs_restore(const struct ckpt_ofi_sigs *s, const char *what);

/**
 * The endpoint the data path needs, opened now if it is not yet (ckpt_ofi_fabric_open with
 * the provider connect found and the server's endpoint name it kept). A failure fails the client
 * (o->dead), as a failed connect would have.
 * @return 0 or a negative errno.
 */
int ckpt_ofi_fabric_need(struct ckpt_client *c);

/** fi_strerror(), or a number when libfabric could not be loaded. */
const char *ckpt_ofi_strerror(int fi_err);

_Static_assert(CKPT_REC_MAX_LEN <= STAGE_SLOT, "a record fits one staging slot");

enum op_kind {
	OP_FREE,
	OP_STAGED, /* a write being gathered, not posted yet */
	OP_WRITE,
	OP_FENCE_READ, /* a barrier's 8-byte read */
	OP_READ,       /* a bulk read waited for by ckpt_ofi_read */
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

/*
 * A barrier's life. ofi_data.c starts it (B_READING, B_COMMIT, or B_DONE when nothing was
 * written since the last one), sends its PERSIST (B_READ_DONE -> B_PERSIST_SENT), sees its
 * commit-complete writes done (B_COMMIT -> B_DONE), retires it (B_DONE -> B_FREE), and
 * detaches it from a region that closes; ofi_completion.c moves it when its fence read
 * comes back (B_READING -> B_READ_DONE) and when its PERSIST is answered
 * (B_PERSIST_SENT -> B_DONE), or frees it there if its region closed meanwhile.
 */
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
	/* the control socket (ofi_ctrl.c, ofi_auth.c) */
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
	int dead; /* sticky: the server or the endpoint is gone, or (-ESTALE) it fenced us */
	bool fence_asked; /* a data-path failure asked the server whether it fenced us */

	/*
	 * libfabric objects (ofi_fabric.c), opened at the first write or read
	 * (ckpt_ofi_fabric_need): a client that only asks the server (the lease check before
	 * a start: a stat) never makes an endpoint, which costs 150-250 ms with the tcp
	 * provider. Opening a region with a ring reads its words, and so makes one. The
	 * server's endpoint name from WELCOME waits here until then.
	 */
	uint8_t srv_ep[CKPT_PROTO_EP_MAX];
	size_t srv_ep_len;
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	fi_addr_t srv;
	bool rma_pmem;

	/* write staging (ofi_data.c) */
	uint8_t *stage;
	struct fid_mr *stage_mr;
	void *stage_desc;
	uint32_t *free_slots;
	uint32_t nfree, nslots;
	uint32_t inflight; /* writes posted and not completed */

	/* barriers (ofi_data.c, ofi_completion.c) */
	uint64_t *scratch;
	struct fid_mr *scratch_mr;
	void *scratch_desc;
	struct barrier barriers[BARRIERS_MAX];

	/* bulk reads (ofi_data.c) */
	uint8_t *bounce;
	struct fid_mr *bounce_mr;
	void *bounce_desc;
	size_t bounce_len;

	/* operations posted to the endpoint, or being gathered (op_get/op_put) */
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

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline struct ofi_client *oc(const struct ckpt_client *c)
{
	return c->be;
}

static inline struct ofi_region *orr(const struct ckpt_region *r)
{
	return r->be;
}

static inline struct ofi_op *op_get(struct ofi_client *o, enum op_kind kind, struct ckpt_region *r)
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

static inline void op_put(struct ofi_client *o, struct ofi_op *op)
{
	op->kind = OP_FREE;
	op->next_free = o->op_free;
	o->op_free = op;
}

/* ---- ofi_fabric.c ---- */

/* libfabric errors are positive FI_* codes that mostly equal errno values. @return -errno. */
int ckpt_ofi_errno(int fi_err);

/*
 * At connect: the provider, one that orders reads after writes (o->info). @p node: the
 * server's host, NULL for shm. @return 0, -ENOTSUP (libfabric is not installed, or the
 * provider does not order reads after writes), -ENODATA (no such provider here), or the
 * provider's error as -errno.
 */
int ckpt_ofi_provider_find(struct ckpt_client *c, const char *node);

/*
 * Open the provider's endpoint towards the server's endpoint name @p ep (from WELCOME),
 * and allocate and register the local buffers. Whatever it opened before failing stays
 * for ckpt_ofi_fabric_close().
 * @return 0, -EPROTO (the endpoint name is not an address of the provider's format, or
 *   does not insert), -ENOMEM, or the provider's error as -errno.
 */
int ckpt_ofi_fabric_open(struct ckpt_client *c, const uint8_t *ep, size_t ep_len);

/* Close what ckpt_ofi_fabric_open() opened and free what it allocated, as far as it went. */
void ckpt_ofi_fabric_close(struct ofi_client *o);

/* ---- ofi_completion.c ---- */

/*
 * Drain the CQ (which is also what makes manual-progress providers move) and finish the
 * operations it reports. A failed write or fence read fails the client (o->dead).
 * @return completions seen.
 */
int ckpt_ofi_cq_progress(struct ofi_client *o);

/*
 * Finish the barrier whose PERSIST @p m answers; a refusal fails the client.
 * @return 0, or -EPROTO (no barrier awaits that answer).
 */
int ckpt_ofi_persist_answered(struct ofi_client *o, const struct ckpt_msg *m);

/* ---- ofi_ctrl.c ---- */

/*
 * Open the control socket (o->fd) to @p where, a host:port or (@p shm) a name.
 * @return 0, -EINVAL (not an address, or one that does not resolve), -ETIMEDOUT, or -errno.
 */
int ckpt_ofi_ctrl_connect(struct ckpt_client *c, const char *where, bool shm);

/*
 * Read what the socket has (waiting up to @p wait_ms for something) and dispatch it.
 * @return 0, o->dead (set when the server closed, sent something malformed or unexpected,
 *   or the socket failed), or -errno of poll(2).
 */
int ckpt_ofi_ctrl_pump(struct ckpt_client *c, int wait_ms);

/*
 * Number @p m (m->seq) and send it, bounded by the timeout; a failure other than the
 * timeout fails the client. @return 0 or -errno.
 */
int ckpt_ofi_ctrl_send(struct ckpt_client *c, struct ckpt_msg *m);

/*
 * One request and its reply within @p timeout_ms; PERSIST replies that arrive first are
 * dispatched on the way. A LIST reply's entries go to @p items (room for @p cap).
 * @return the server's status, or -ETIMEDOUT/-ECONNRESET/-EIO.
 */
int ckpt_ofi_call_list(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep,
		       unsigned int timeout_ms, struct ckpt_region_info *items, uint32_t cap);

/* ckpt_ofi_call_list() of a request whose reply carries no list. */
int ckpt_ofi_call_within(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep,
			 unsigned int timeout_ms);

/* ckpt_ofi_call_within() the client's timeout. */
int ckpt_ofi_call(struct ckpt_client *c, struct ckpt_msg *req, struct ckpt_msg *rep);

/* Post a PING without waiting for its answer (@p now: now_ms()). Failing sets o->dead. */
void ckpt_ofi_keepalive(struct ckpt_client *c, uint64_t now);

/*
 * Name the failure @p err of a data-path operation (the provider reports a dead peer
 * variously): -ECONNRESET if the control socket says the server is gone, else what the
 * client already failed with, else -ECONNRESET or -EIO after @p err; and with the control
 * socket still open, that becomes -ESTALE if the server answers that it fenced this client
 * (it withdrew the keys: asked once per client, one round trip, bounded by the timeout).
 * Sets o->dead. @return o->dead.
 */
int ckpt_ofi_data_error(struct ckpt_client *c, int err);

/* ---- ofi_auth.c ---- */

/*
 * Authenticate on the fresh control socket as c->opts.tenant, and check the server's proof.
 * @p ep (room for CKPT_PROTO_EP_MAX) receives the server's endpoint name, @p ep_len its length.
 * @return 0, -EINVAL (bad tenant name), -EACCES (refused, or the server's proof is wrong),
 *   -EPROTO (an unexpected message), the server's refusal, or -errno of the socket.
 */
int ckpt_ofi_authenticate(struct ckpt_client *c, uint8_t *ep, size_t *ep_len);

/* ---- ofi_data.c ---- */

/* The ops table's write, barrier, barrier_head and read (ckpt_internal.h says what each does). */
int ckpt_ofi_write(struct ckpt_region *r, uint64_t off, const void *buf, size_t len);
int ckpt_ofi_barrier(struct ckpt_region *r, uint64_t seq);
int ckpt_ofi_barrier_head(struct ckpt_region *r, uint64_t seq, uint64_t head);
int ckpt_ofi_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len);

/* Post the run of writes being gathered, if any. @return 0 or -errno (the client failed). */
int ckpt_ofi_post_run(struct ckpt_region *r);

/*
 * Move @p r's barriers on: ask PERSIST for fenced ranges, retire finished ones.
 * @return 0, or -errno (a PERSIST could not be sent).
 */
int ckpt_ofi_barriers_advance(struct ckpt_region *r);

/* Whether @p r still has barriers or operations under way (a run being gathered counts). */
bool ckpt_ofi_region_busy(struct ofi_client *o, const struct ckpt_region *r);

/*
 * Detach what is still under way from @p r, which is about to be freed: nothing points at
 * it any more; a barrier that awaits its fence read or its PERSIST answer is freed when
 * that comes (ofi_completion.c), any other barrier of it now.
 */
void ckpt_ofi_region_abandon(struct ofi_client *o, struct ckpt_region *r);

/* Fail the client (sticky -ETIMEDOUT) if an operation or a barrier waited past the timeout. */
int ckpt_ofi_check_timeouts(struct ckpt_client *c);

#endif /* CKPT_OFI_INTERNAL_H */
