/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/ckpt: the client core (client.c) and its backends.
 *
 * The core owns targets, regions, tickets and the record logic (slots, ring, restore).
 * A byte backend (pmem.c; ofi.c and the ofi_*.c files) only moves bytes: posted writes into
 * a region, bulk reads, and durability barriers (struct ckpt_byte_ops). A record backend (a
 * redundancy group, group/) is handed whole records and places them in regions of other
 * targets itself (struct ckpt_record_ops). Both begin with the control operations every
 * target has (struct ckpt_target_ops: connect, regions, lease, barrier, poll). The core
 * calls them indirectly once per checkpoint operation, never per packet.
 */
#ifndef CKPT_INTERNAL_H
#define CKPT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "holdfast/ckpt.h"
#include "hf_log.h"

struct ckpt_target_ops;
struct ckpt_byte_ops;
struct ckpt_record_ops;

struct ckpt_client {
	const struct ckpt_target_ops *ops;     /* the backend's, whichever kind it is */
	const struct ckpt_byte_ops *bytes;     /* a byte backend's table, else NULL */
	const struct ckpt_record_ops *records; /* a record backend's table, else NULL */
	char *target;
	struct ckpt_client_opts opts;
	uint8_t secret[64];
	struct ckpt_region *regions; /* open regions, linked through next */
	void *be;		     /* backend state */
	/*
	 * The binding that last succeeded (ckpt_epoch_take(), ckpt_epoch_bind()), kept by the
	 * core: whoever connects anew on this client's behalf (a group's member, a session
	 * opened again) binds the new connection to it before anything else.
	 */
	struct {
		bool on;
		char lease[PMU_NAME_MAX];
		uint64_t epoch;
	} bound;
};

/* Where a ring producer stands. Positions are monotonic byte counts. */
struct ring_prod {
	uint64_t next;	       /* where the next record goes */
	uint64_t head_written; /* head value known durable at the target */
	uint64_t tail_seen;    /* last tail read back from the target */
};

/*
 * A flush is one or two durability barriers. Plain: everything posted up to data_seq.
 * Ring: the records first (data_seq), then the head that publishes them (head_seq), so a
 * reader never sees a head ahead of durable records. A backend with barrier_head does
 * both in one: the target publishes the head itself once the records are durable
 * (FLUSH_HEAD straight away, head_seq == data_seq).
 */
enum flush_phase {
	FLUSH_IDLE,
	FLUSH_PLAIN,
	FLUSH_DATA,
	FLUSH_HEAD,
};

struct ckpt_region {
	struct ckpt_client *cl;
	struct ckpt_region *next;
	struct pmu_region_info geo;
	bool is_pmem;
	uint64_t posted;  /* last backend sequence handed out (user writes and head writes) */
	uint64_t durable; /* highest sequence the backend knows durable (set by the backend) */
	uint64_t acked;	  /* highest ticket reported durable to the user */
	enum flush_phase phase;
	bool flush_again; /* a flush was asked for while one was under way */
	uint64_t data_seq;
	uint64_t head_seq;
	uint64_t head_val;
	struct ring_prod ring;
	/* Opened with ckpt_region_open_control(): control requests only, no data path. */
	bool control_only;
	void *be; /* backend state */
};

/*
 * Backend operations, in two tables: a backend moves bytes (struct ckpt_byte_ops) or
 * records (struct ckpt_record_ops), and a client holds the one of its backend. Both begin
 * with what every backend does (struct ckpt_target_ops). Every int function returns 0 (or
 * a count) or -errno.
 *
 * barrier: ask for every write posted before it to become durable; when it is, the
 *	backend sets r->durable = seq (from poll, or at once). Barriers complete in order.
 * poll: progress all regions of c without blocking; returns completions seen.
 */
struct ckpt_target_ops {
	const char *scheme; /* "pmem", "ofi+tcp", "group", ... */
	int (*connect)(struct ckpt_client *c, const char *where);
	void (*disconnect)(struct ckpt_client *c);
	int (*create)(struct ckpt_client *c, const struct pmu_region_params *p,
		      struct ckpt_region *r);
	int (*open)(struct ckpt_client *c, const char *name, struct ckpt_region *r);
	int (*close)(struct ckpt_region *r);
	int (*remove)(struct ckpt_client *c, const char *name);
	int (*list)(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max);
	int (*stat)(struct ckpt_client *c, const char *name, struct ckpt_region_info *out);
	int (*lease)(struct ckpt_region *r, unsigned int ttl_ms);
	int (*barrier)(struct ckpt_region *r, uint64_t seq);
	int (*poll)(struct ckpt_client *c);
	/* Optional (NULL: -ENOTSUP), the calls of the same names in ckpt.h. */
	int (*epoch_take)(struct ckpt_region *r, uint64_t seen, uint64_t *epoch);
	int (*epoch_bind)(struct ckpt_client *c, const char *lease_name, uint64_t epoch);
	int (*lease_watch)(struct ckpt_region *r, unsigned int timeout_ms);
};

/*
 * A byte backend (pmem.c, ofi.c): the core places every record itself and hands the
 * backend bytes at region offsets.
 *
 * write: post a copy of buf to region offset off. The backend copies buf before it
 *	returns (the caller's buffer is free at once). -EAGAIN when its queue is full.
 *	Writes to one region land in the order posted (FI_ORDER_WAW or memcpy order).
 * barrier_head: optional; a barrier after which the target also stores @p head as the
 *	ring head and makes that durable, never before the writes. -ENOTSUP when it cannot
 *	this time (the core then writes the head itself, behind a second barrier).
 * read: blocking bulk read into buf, bounded by opts.timeout_ms.
 * map: optional; a pointer to region bytes readable in place (pmem: only).
 * view: optional; like map, for a bulk read, where reading in place costs less than read()
 *	(pmem: where the store is mapped with 2 MB pages), else NULL (read then). The bytes
 *	may change while they are read (the store is shared): copy a piece, then validate it.
 * applies_journal: the target applies an overwrite region's journal to its slots in the
 *	background (a server does; the embedded pmem: backend writes slots directly).
 */
struct ckpt_byte_ops {
	struct ckpt_target_ops target;
	bool applies_journal;
	int (*write)(struct ckpt_region *r, uint64_t off, const void *buf, size_t len);
	int (*barrier_head)(struct ckpt_region *r, uint64_t seq, uint64_t head);
	int (*read)(struct ckpt_region *r, uint64_t off, void *buf, size_t len);
	const void *(*map)(struct ckpt_region *r, uint64_t off, size_t len);
	const void *(*view)(struct ckpt_region *r, uint64_t off, size_t len);
};

/*
 * A record backend (a redundancy group, group/) keeps its data in regions of other
 * targets: the core encodes records and leaves where they go, and how they are read back,
 * to it. Its regions have no ring of the core's (ring stays zero).
 *
 * put: take the encoded record a slot write or log append makes; a ticket like a write.
 * scan: ckpt_state_scan() of an overwrite region.
 * log_read: ckpt_log_read() of an append region.
 * refresh: ckpt_region_refresh(). Called only with nothing of this client in flight.
 */
struct ckpt_record_ops {
	struct ckpt_target_ops target;
	int (*put)(struct ckpt_region *r, const uint8_t *rec, uint32_t len);
	int (*scan)(struct ckpt_region *r, unsigned int flags, ckpt_rec_cb cb, void *arg,
		    struct ckpt_scan_stats *st);
	int (*log_read)(struct ckpt_region *r, ckpt_rec_cb cb, void *arg, bool peek,
			struct ckpt_scan_stats *st);
	int (*refresh)(struct ckpt_region *r);
};

extern const struct ckpt_byte_ops ckpt_pmem_ops;
extern const struct ckpt_byte_ops ckpt_ofi_tcp_ops;
extern const struct ckpt_byte_ops ckpt_ofi_shm_ops;
extern const struct ckpt_byte_ops ckpt_ofi_verbs_ops;
extern const struct ckpt_record_ops ckpt_group_ops;

/*
 * For unit tests: targets that start with @p prefix reach byte backend @p ops (an
 * in-memory stub, say), tried after the built-in schemes. One at a time: a later call
 * replaces it, NULL removes it. Call it before connecting.
 */
void ckpt_test_scheme(const char *prefix, const struct ckpt_byte_ops *ops);

/*
 * For unit tests: pmem: regions' slots are read in place always (1), never (0), or where
 * the mapping pays for it (-1, the default; pmem.c, pmem_view()).
 */
void ckpt_pmem_test_in_place(int force);

/*
 * The core's regions and rings, for a record backend whose data lives in regions of other
 * targets (group/). Those regions are byte backends' regions; the record backend reaches
 * them through ckpt.h and these calls only, never through struct ckpt_region's fields.
 */

/* Post @p len bytes of @p buf at region offset @p off: a ticket like any write. */
int ckpt_region_post(struct ckpt_region *r, uint64_t off, const void *buf, size_t len);

/*
 * Read @p len bytes at region offset @p off into @p buf, straight from the store where the
 * backend maps it. @return 0, -EINVAL (outside the region), or the backend's read error.
 */
int ckpt_region_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len);

/*
 * Post an encoded record to the ring where the producer stands (a wrap marker first when
 * it does not fit before the end); the head that publishes it moves at the next flush.
 * @return 0, -EAGAIN (the ring is full up to the tail read back), or a write's error.
 */
int ckpt_ring_put(struct ckpt_region *r, const void *buf, uint32_t len);

/* The ring's head and tail words as the target holds them; -EINVAL when inconsistent. */
int ckpt_ring_words(struct ckpt_region *r, uint64_t *head, uint64_t *tail);

/*
 * Where the producer stands, without I/O: @p next, the position of the next append, and
 * @p tail_seen, the last tail it read back or was told of (ckpt_ring_cleared()). Inline:
 * a group asks on every record it takes.
 */
static inline void ckpt_ring_position(const struct ckpt_region *r, uint64_t *next,
				      uint64_t *tail_seen)
{
	*next = r->ring.next;
	*tail_seen = r->ring.tail_seen;
}

/*
 * Make the next append go at @p next: rings that advance together (a group's members)
 * stand where the furthest one stands. What lies between is never written by this call;
 * the reader judges it (a group's subsegment headers name their position).
 */
static inline void ckpt_ring_seek(struct ckpt_region *r, uint64_t next)
{
	r->ring.next = next;
}

/* Post @p tail as the ring's tail word: its consumer cleared the ring up to there. */
int ckpt_ring_post_tail(struct ckpt_region *r, uint64_t tail);

/*
 * The tail word holds @p tail durably: appends may use the space before it. A tail behind
 * the one the producer knows of changes nothing.
 */
static inline void ckpt_ring_cleared(struct ckpt_region *r, uint64_t tail)
{
	if (r->ring.tail_seen < tail)
		r->ring.tail_seen = tail;
}

/*
 * A ring joins others that stand at [@p tail, @p next) (a group's member created again, or
 * back after it missed segments): its tail word moves up to @p tail when behind (posted,
 * and counted as seen; left as it is when the post fails), a head behind @p tail counts as
 * written there, and the next append goes at @p next.
 */
void ckpt_ring_join(struct ckpt_region *r, uint64_t tail, uint64_t next);

#endif /* CKPT_INTERNAL_H */
