/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/ckpt/group/: redundancy groups, a record backend whose members are other
 * targets.
 *
 * Records (slot writes and log appends alike) are batched into segments; a segment is cut
 * into k data chunks and m parity chunks (ec.c), and each chunk goes, behind a subsegment
 * header (segment.h), into the ring of one member's append region of the same name, the
 * parity rotating from segment to segment. Every member's ring advances by the same length
 * per segment, so a segment's ring position is its identity on every member. Overwrite
 * regions keep the newest record per slot pair in memory (the shadow) and where it lies;
 * when the log fills past 5/8, a cleaner logs again the pairs whose newest record lies in
 * the oldest part of the ring and then moves the members' tails past it. A reader replays
 * the live span and keeps the newest generation per pair, which is what a single server's
 * slots would hold. See docs/checkpoint.md, "Redundancy groups".
 *
 * The group reaches its members through ckpt.h like any user, and through the ring and
 * region calls of ckpt_internal.h: never through a member's struct ckpt_region.
 *
 * Layers, bottom first. Each file calls only the files listed before it:
 *
 *	ec.c       the erasure code: k data and m parity fragments of a stripe (ISA-L)
 *	segment.c  the formats on the members: subsegment header, group descriptor, the
 *	           records of a segment
 *	member.c   the members: which ones answer, their regions (size, create, open, stat,
 *	           delete), where their rings stand
 *	stripe.c   reading the members back: their rings as images, the segment framed at a
 *	           ring position, its lost chunks recovered, the live span walked
 *	shadow.c   the newest record per slot pair and where it lies, from writes and from
 *	           the log; the positions a cleaning pass may move the tail to
 *	write.c    forming segments, computing parity, posting subsegments, barriers
 *	read.c     the restore reads: state scan and log read
 *	clean.c    the cleaner: frees the oldest part of an overwrite region's ring
 *	rebuild.c  a member that joins, and the pass that writes what members lack
 *	rejoin.c   members that are down, tried again on a thread and adopted by the poll
 *	group.c    the target (syntax, connect), region create and open, put, poll, refresh:
 *	           the ops table; and ckpt_group.h's health and rebuild
 *
 * struct gregion holds the state of every layer; each block says which file keeps it. A
 * layer reads the blocks of layers below it and changes its own, except where a member
 * joins or leaves a region: rebuild.c marks it rebuilding and clears the tickets its
 * former connection left in the write and clean blocks, and rejoin.c takes its member
 * region out (mr, st, and out of a pass under way: rb_mask) and in again.
 */
#ifndef CKPT_GROUP_INTERNAL_H
#define CKPT_GROUP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ckpt_internal.h"
#include "ec.h"
#include "holdfast/ckpt_group.h"
#include "segment.h"

#define LOG_COMPONENT "ckpt.group"
#define MAXM	      CKPT_GROUP_MAX_MEMBERS
#define BARRIERS      64
#define MARKS	      64u /* segment positions remembered as places the tail can move to */

struct rejoin;

/* A group target: its code and its members (group.c; rejoin.c swaps connections). */
struct group {
	struct ckpt_ec ec;
	unsigned int n;
	char *member[MAXM];	      /* member targets */
	struct ckpt_client *mc[MAXM]; /* NULL: did not answer, or failed since */
	int err[MAXM];		      /* why a member is down */
	struct rejoin *rj;	      /* tries members that are down again, on a thread */
};

struct barrier {
	uint64_t seq;
	bool issued;
	uint64_t ticket[MAXM];
};

enum compact {
	COMPACT_IDLE,
	COMPACT_WRITING, /* re-logging the live records of the oldest part of the ring */
	COMPACT_DATA,	 /* waiting for them to be durable */
	COMPACT_TAIL,	 /* waiting for the new tails to be durable */
};

/* The members' rings as read back: one image per member, [tail, head) filled. */
struct images {
	uint64_t ring_size, tail, head;
	/*
	 * The k-th furthest member head: a segment past it reached fewer than k members
	 * durably, so no flush that covers it was ever acknowledged (a writer killed mid-way).
	 */
	uint64_t acked_end;
	/* img[i][0] holds ring offset win_off; win_len bytes (ring_size: the whole ring). */
	uint64_t win_off, win_len;
	uint8_t *img[MAXM];
};

/* A group region. */
struct gregion {
	/* member.c: the member regions (rejoin.c and rebuild.c change them as members join). */
	struct group *g;
	struct ckpt_gdesc desc;
	struct ckpt_region *mr[MAXM];
	enum ckpt_member_state st[MAXM];
	uint64_t ring_size; /* of each member's ring */

	/* write.c: the segment being filled. */
	uint8_t *seg;
	uint32_t seg_len, seg_nrecs, seg_cap;
	uint64_t seg_ticket; /* last user ticket in it */

	/*
	 * write.c: the segment cut and being posted: subsegment i goes to member pend_to[i].
	 * While none is (!pend), rebuild.c uses sub[0] as its scratch buffer.
	 */
	bool pend;
	uint8_t *sub[MAXM];
	uint32_t sub_len;
	uint32_t pend_todo; /* stripe indexes not yet accepted */
	unsigned int pend_to[MAXM];
	uint64_t pend_ticket;
	uint64_t posted_through; /* every user ticket up to this is posted to the members */
	uint64_t rot;

	/* write.c: barriers asked for, oldest first. */
	struct barrier bq[BARRIERS];
	unsigned int bq_head, bq_n;

	/*
	 * shadow.c, overwrite regions: the newest encoded record per pair (slot_size bytes
	 * each), and where it lies: 1 + the ring position of its segment, 0 while unknown.
	 * Mapped by shadow.c itself (shadow_len, where_len bytes), not malloc'd.
	 */
	uint8_t *shadow;
	uint64_t *where;
	size_t shadow_len, where_len;
	bool shadow_loaded;
	/* Segment positions at least ring/32 apart: where a cleaning pass may move the tail. */
	uint64_t mark[MARKS];
	unsigned int mark_head, mark_n;

	/* clean.c: the pass under way. */
	enum compact comp;
	uint64_t clean_from, clean_to, clean_cursor;
	uint64_t comp_ticket[MAXM];
	uint64_t relog_bytes; /* record bytes the cleaner logged again */

	/*
	 * rebuild.c: members that were replaced or missed segments: [rb_start, rb_end) is
	 * read a window (rb) at a time once the flush behind rb_ticket made it durable.
	 */
	bool rb_active, rb_wait;
	uint32_t rb_mask; /* members being rebuilt */
	uint64_t rb_repaired;
	uint64_t rb_ticket[MAXM];
	struct images rb;
	uint64_t rb_pos, rb_end, rb_start;
	uint64_t rb_read; /* bytes read per member per poll now */
	unsigned int rb_decile;

	/* write.c: the parity work, for ckpt_group_health(). */
	uint64_t enc_segments, enc_bytes, enc_ns;
};

static inline uint64_t group_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Fewest members that must hold a segment for it to be readable. */
static inline unsigned int need(const struct group *g)
{
	return g->ec.k;
}

static inline bool usable(const struct gregion *gr, unsigned int i)
{
	return gr->mr[i] != NULL && gr->g->mc[i] != NULL &&
	       (gr->st[i] == CKPT_MEMBER_OK || gr->st[i] == CKPT_MEMBER_REBUILDING);
}

static inline unsigned int live(const struct gregion *gr)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < gr->g->n; i++)
		n += usable(gr, i);
	return n;
}

static inline bool member_failed(const struct group *g, unsigned int i)
{
	return g->err[i] != 0;
}

static inline bool member_ok(const struct gregion *gr, unsigned int i)
{
	return usable(gr, i) && !member_failed(gr->g, i);
}

/* ---- member.c ---------------------------------------------------------------------- */

/* A member failed: it takes no more writes from this client until it reconnects. */
void group_member_down(struct group *g, unsigned int i, int err);

/* The parameters of every member's region of a group region of geometry @p geo. */
struct pmu_region_params group_member_params(const struct pmu_region_info *geo, unsigned int k);

/*
 * Create a group region's member region on @p mc with the descriptor of member @p i; with
 * @p ring_size, its ring must have that size. A region that did not get its descriptor is
 * deleted again (it would read as another group's).
 */
int group_member_create(struct ckpt_client *mc, const struct pmu_region_params *mp,
			const struct ckpt_gdesc *desc, unsigned int i, uint64_t ring_size,
			struct ckpt_region **out);

/*
 * Open the member's region and read its descriptor; ENOENT when it has none. @p is_pmem
 * (optional) tells whether the member's store is persistent memory.
 */
int group_member_open(struct ckpt_client *mc, const char *name, struct ckpt_region **mr,
		      struct ckpt_gdesc *d, bool *is_pmem);

/*
 * A region of that name with no descriptor and an empty ring: a create that timed out on
 * our side after the server made it (the descriptor is written right after). Nobody's data
 * is there, and nobody has it open (the server refuses to delete an open region): delete it,
 * so that it is made again. @return true when it was deleted.
 */
bool group_member_abandoned(struct ckpt_client *mc, const char *name);

/* Post bytes at ring position @p pos of member @p i's region (where a segment lies). */
int group_ring_post_at(struct gregion *gr, unsigned int i, uint64_t pos, const void *buf,
		       size_t len);

/* Read bytes at offset @p off of member @p i's ring. */
int group_ring_read_at(struct gregion *gr, unsigned int i, uint64_t off, void *buf, size_t len);

/* Where the next segment goes: the ring position of the first member that takes writes. */
uint64_t group_ring_next(const struct gregion *gr);

/* The newest tail a member that takes writes is known to hold. */
uint64_t group_ring_tail(const struct gregion *gr);

/*
 * Every member's ring must stand at the same position for the next segment: a member that
 * missed segments (down for a while) is moved forward; what lies behind is judged by the
 * subsegment headers on reading.
 */
void group_ring_align(struct gregion *gr);

/*
 * Create region @p p on every member that answers, with a new group id; @p geo receives
 * the region's geometry as its users see it. @return 0 with at least k members holding
 * it, -EIO (fewer), -EEXIST, -EINVAL, -EACCES (a member refused it), or -errno; on failure
 * nothing is left created.
 */
int group_region_create(struct gregion *gr, const struct pmu_region_params *p,
			struct pmu_region_info *geo);

/* Close the member regions of @p gr and delete them (a create that is undone). */
void group_region_delete(struct gregion *gr, const char *name);

/*
 * Open region @p name on every member that answers; the group id most agree on is the
 * region's, other holders are foreign. @p geo receives the geometry its users see, and
 * @p is_pmem whether a holder's store is persistent memory. @return 0, -ENOENT (no member
 * holds it), -EIO (fewer than k, or a member that might did not answer), -EINVAL (formed
 * with another code, or rings that differ); on failure no member region is left open.
 */
int group_region_open(struct gregion *gr, const char *name, struct pmu_region_info *geo,
		      bool *is_pmem);

/* Close every member region of @p gr. */
void group_region_close(struct gregion *gr);

/* The ops of member regions: delete, describe, list, lease. */
int group_remove(struct ckpt_client *c, const char *name);
int group_stat_leases(struct ckpt_client *c, const char *name, struct ckpt_region_info *out);
int group_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max);
int group_lease(struct ckpt_region *r, unsigned int ttl_ms);

/*
 * Fencing on a group: each member server keeps its own epoch of its member region of the
 * lease region, and the group's is their furthest (group_stat_leases). A take or a bind
 * goes to every member that is up, in member order, and stops at the first that answers
 * ESTALE (an epoch past @p seen there: someone else took it; the same order for every
 * client makes the first member that answers the arbiter of a race); a member whose epoch
 * is behind @p seen (it was down during an earlier take) answers ESTALE too but is only
 * passed over. Success needs a majority of all members. The core remembers the binding
 * (struct ckpt_client.bound), and a member that rejoins is bound to it again on its new
 * connection before it takes writes (rejoin.c). A lease watch is not offered (-ENOTSUP):
 * the app falls back to the lease.
 */
int group_epoch_take(struct ckpt_region *r, uint64_t seen, uint64_t *epoch);
int group_epoch_bind(struct ckpt_client *c, const char *lease_name, uint64_t epoch);

/* ---- stripe.c ---------------------------------------------------------------------- */

/* One segment as the walk found it. */
struct seg_view {
	uint64_t pos;
	struct ckpt_subseg s;
	uint8_t *frag[MAXM]; /* by stripe index; NULL: lost */
	int from[MAXM];	     /* member the fragment came from */
	uint32_t missing;    /* members without a valid subsegment here */
	uint32_t damaged;    /* members whose subsegment failed its CRC */
	unsigned int present;
	bool wrap; /* a wrap marker, not a segment */
};

struct walk_stats {
	uint64_t segments, degraded, lost;
	uint64_t first_bad[8];
	unsigned int nfirst_bad;
	uint64_t missing[MAXM], damaged[MAXM];
};

typedef int (*seg_fn)(struct gregion *gr, const uint8_t *data, const struct seg_view *v, void *arg);

/*
 * Read every answering member's ring over the group's live span: from the newest tail any
 * member holds (space behind it may be reused) to the furthest head. Members in
 * @p skip_mask are left out.
 */
int group_images_load(struct gregion *gr, uint32_t skip_mask, struct images *im);
void group_images_free(struct images *im);

/* Look at position @p pos on every member and find the segment (or wrap marker) there. */
int group_seg_at(struct gregion *gr, const struct images *im, uint64_t pos, struct seg_view *v);

/*
 * Recover a segment's data chunks (and, with @p all, its parity) into @p work (n chunks of
 * CKPT_SEG_CHUNK_MAX); on return v->frag[] points at every chunk.
 */
int group_seg_recover(struct gregion *gr, struct seg_view *v, uint8_t *work, bool all);

/*
 * Walk the live span segment by segment, handing each segment's records to @p fn. A
 * segment with fewer than k good subsegments stops the walk with -EIO, and the log names
 * it and the members that failed it; with @p fn NULL the walk only counts.
 */
int group_walk(struct gregion *gr, const struct images *im, seg_fn fn, void *arg,
	       struct walk_stats *ws, uint64_t *stop);

/* ---- shadow.c ---------------------------------------------------------------------- */

/* Every pair's newest record as a walk of the log found it. */
struct collect {
	uint8_t *best;	 /* pairs x slot_size: newest encoded record per pair */
	uint64_t *where; /* 1 + the ring position of that record's segment */
	uint64_t pos;	 /* of the segment being read */
	uint64_t mark[MARKS];
	unsigned int nmarks;
	uint32_t slot_size;
	uint64_t pairs;
	struct ckpt_scan_stats *st;
};

/*
 * The shadow of an overwrite region (nothing for an append region); @p loaded: it holds
 * all there is already (a region just created), else it is read from the log before the
 * first cleaning pass.
 */
int group_shadow_init(struct gregion *gr, bool loaded);
void group_shadow_fini(struct gregion *gr);

/* Keep @p rec as its pair's newest record unless the shadow holds a newer one. */
void group_shadow_keep(struct gregion *gr, const uint8_t *rec, uint32_t len);

/*
 * The segment of @p len record bytes at @p seg goes to ring position @p pos: every pair
 * whose newest record is in it now lies there, and the position may become a place for
 * the tail to move to.
 */
void group_shadow_note(struct gregion *gr, const uint8_t *seg, uint32_t len, uint64_t pos);

/* Every pair's newest record over the live span, into @p co (group_collect_free() it). */
int group_state_read(struct ckpt_region *r, struct collect *co, struct ckpt_scan_stats *st);
void group_collect_free(struct collect *co);

/*
 * Fold what was read into the shadow, so a later cleaning keeps it; a writer that has not
 * cut a segment yet also learns where in the ring its tail may move.
 */
void group_shadow_merge(struct gregion *gr, const struct collect *co);

/* Read the log into the shadow (a writer that reopened a region without restoring it). */
int group_shadow_load(struct ckpt_region *r);

/* Another writer wrote the region: what the shadow holds is to be read again from the log. */
void group_shadow_forget(struct gregion *gr);

/*
 * The furthest remembered segment position after @p tail and before @p next that lies
 * within @p span of @p tail, or the first one past @p tail when none does; 0 when none is
 * known. Positions at or behind @p tail are forgotten.
 */
uint64_t group_shadow_mark(struct gregion *gr, uint64_t tail, uint64_t next, uint64_t span);

/* ---- write.c ----------------------------------------------------------------------- */

/* The segment buffers of a group region. */
int group_write_init(struct gregion *gr);
void group_write_fini(struct gregion *gr);

/*
 * Append an encoded record to the open segment, cutting a full one first; @p ticket (0:
 * none) is the user ticket it completes. @return 0, -EAGAIN (the segment cut before has
 * not been taken by every member yet), -EIO (fewer than k members).
 */
int group_seg_add(struct gregion *gr, const uint8_t *rec, uint32_t len, uint64_t ticket);

/* Cut the open segment into subsegments (encode parity) and start posting them. */
int group_cut(struct gregion *gr);

/* Hand the cut segment's subsegments to the members that have not taken theirs yet. */
void group_post_pending(struct gregion *gr);

/* Flush every usable member; the tickets that flush covers go to @p ticket. */
void group_flush_members(struct gregion *gr, uint64_t *ticket);
bool group_members_durable(struct gregion *gr, const uint64_t *ticket);

/* Post what is cut, cut what a barrier waits for, and issue barriers whose records are out. */
void group_write_progress(struct gregion *gr);

/* Complete the barriers every usable member made durable. */
void group_barriers_complete(struct ckpt_region *r);

int group_barrier(struct ckpt_region *r, uint64_t seq);

/* ---- read.c ------------------------------------------------------------------------ */

int group_scan(struct ckpt_region *r, unsigned int flags, ckpt_rec_cb cb, void *arg,
	       struct ckpt_scan_stats *stats);
int group_log_read(struct ckpt_region *r, ckpt_rec_cb cb, void *arg, bool peek,
		   struct ckpt_scan_stats *stats);

/* ---- clean.c ----------------------------------------------------------------------- */

/*
 * Ring bytes kept free for the cleaner: what a pass logs again is no more than the span it
 * frees, nor than every live record once. New writes stop short of it (EAGAIN), so the
 * cleaner can always place what frees the ring.
 */
uint64_t group_clean_room(const struct gregion *gr);

/* The cleaner's share of a poll (overwrite regions). */
void group_clean_step(struct ckpt_region *r);

/* ---- rebuild.c --------------------------------------------------------------------- */

/*
 * Member @p i of region @p r holds a member region again (created empty, or kept from
 * before it failed): it stands where the others stand, so new segments reach it from now
 * on, and a rebuild pass recomputes what it lacks behind that.
 */
void group_member_join(struct ckpt_region *r, unsigned int i);

/*
 * Start a pass over the live span, or start the one under way again from the tail (a
 * member joined it). Everything up to where the rings stand now is flushed first: the pass
 * reads it back from the members once that is durable.
 */
void group_rebuild_start(struct gregion *gr);

/* ckpt_group_rebuild() of group region @p r. */
int group_rebuild(struct ckpt_region *r);

/* One poll's share of a rebuild pass. */
void group_rebuild_step(struct ckpt_region *r);

/* ---- rejoin.c ---------------------------------------------------------------------- */

/* Start and stop the thread that tries members that are down again. */
int group_rejoin_init(struct group *g, const struct ckpt_client_opts *o);
void group_rejoin_fini(struct group *g);

/* The poll's part: adopt what a finished try brought back, and hand the next one over. */
void group_rejoin_step(struct ckpt_client *c);

#endif /* CKPT_GROUP_INTERNAL_H */
