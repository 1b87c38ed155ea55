/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Redundancy groups: one checkpoint target made of several.
 *
 *	group:rs(K,M)=T1,...,T(K+M)   K data + M parity subsegments (Cauchy Reed-Solomon)
 *	group:xor(K)=T1,...,T(K+1)    K data + 1 parity (XOR)
 *	group:mirror=T1,...,Tn        every member holds every segment
 *
 * Each Ti is any other target (pmem:, ofi+tcp://, ofi+shm://, ofi+verbs://). A group is
 * used through ckpt.h like any target; this header adds what only a group has: its health
 * and the rebuild of a member that was replaced by an empty one. A client that writes
 * also tries members that are down again by itself (about once a second, on a thread of its
 * own) and rebuilds them inside ckpt_poll(). The design is in docs/checkpoint.md
 * ("Redundancy groups").
 */
#ifndef HOLDFAST_CKPT_GROUP_H
#define HOLDFAST_CKPT_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "holdfast/ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_GROUP_MAX_MEMBERS 32

/** What a group region knows of one member. */
enum ckpt_member_state {
	CKPT_MEMBER_OK = 0,	    /**< answers and holds the region */
	CKPT_MEMBER_DOWN = 1,	    /**< did not answer, or failed since */
	CKPT_MEMBER_EMPTY = 2,	    /**< answers but lacks the region (replaced): rebuild it */
	CKPT_MEMBER_FOREIGN = 3,    /**< holds a region of that name from another group */
	CKPT_MEMBER_REBUILDING = 4, /**< being rebuilt by this client */
};

/** One member. */
struct ckpt_member_health {
	char target[128];
	enum ckpt_member_state state;
	uint64_t missing; /**< segments whose subsegment on this member is absent */
	uint64_t damaged; /**< segments whose subsegment here fails its CRC */
};

/** A group region's health. Segment counts are filled by a scan (ckpt_group_health()). */
struct ckpt_group_health {
	char code[16]; /**< "rs", "xor" or "mirror" */
	unsigned int k, m, members;
	uint64_t tail, head; /**< live span of the members' rings */
	uint64_t segments;   /**< segments in the live span */
	uint64_t degraded;   /**< segments with a missing or damaged subsegment (still readable) */
	uint64_t lost;	     /**< segments with fewer than k good subsegments */
	uint64_t first_bad[8]; /**< positions of the first degraded or lost segments */
	unsigned int nfirst_bad;
	bool rebuilding;
	uint32_t rebuild_mask;		      /**< members being rebuilt, bit per member */
	uint64_t rebuild_done, rebuild_total; /**< bytes of ring span */
	uint64_t encoded_segments;	      /**< segments this client formed */
	uint64_t encoded_bytes;		      /**< record bytes in them */
	uint64_t encode_ns;		      /**< time spent computing parity */
	uint64_t relogged_bytes;	      /**< record bytes the cleaner logged again */
	struct ckpt_member_health member[CKPT_GROUP_MAX_MEMBERS];
};

/**
 * Describe group region @p r; with @p scan, read every member's live span and count
 * degraded and lost segments (a restore's reads without its records).
 *
 * @return 0, -EINVAL (not a group region), -ENOMEM, or with @p scan an error of the
 *   members' reads when fewer than k answer (-EIO).
 */
int ckpt_group_health(struct ckpt_region *r, bool scan, struct ckpt_group_health *out);

/**
 * Start a rebuild pass over @p r: every member that answers but lacks the region (replaced
 * by an empty server) gets it created, and every subsegment a member that answers lacks,
 * or holds damaged or stale, is recomputed from the others and written there. The pass
 * proceeds inside ckpt_poll(), a bounded amount per call, and ckpt_group_health() shows
 * its progress (rebuilding, rebuild_done of rebuild_total); new checkpoints reach a new
 * member from the start.
 *
 * @return the number of members created empty and being rebuilt (0: only repairs), or
 *   -EINVAL  not a group region,
 *   -EEXIST  a member holds a region of that name from another group (delete it first),
 *   -EBUSY   a rebuild is under way already, or a segment is halfway posted (poll first),
 *   -EIO     fewer than k members hold the region,
 *   -ENOMEM, or an error of creating the region on the member.
 */
int ckpt_group_rebuild(struct ckpt_region *r);

#ifdef __cplusplus
}
#endif

#endif /* HOLDFAST_CKPT_GROUP_H */
