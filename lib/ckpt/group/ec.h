/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/ckpt/group/: the erasure code of a redundancy group.
 *
 * A stripe is k data fragments and m parity fragments of one length. Three codes:
 *	xor     m = 1, parity = the XOR of the data (RAID 5), by ISA-L's xor_gen (fragments
 *	        32-byte aligned go to it directly, others through an aligned bounce buffer)
 *	rs      Cauchy Reed-Solomon over GF(2^8) with ISA-L: the encode matrix is
 *	        gf_gen_cauchy1_matrix (identity on top), so any k of the k + m fragments
 *	        invert to the data
 *	mirror  k = 1, every "parity" fragment is a copy of the data
 */
#ifndef CKPT_EC_H
#define CKPT_EC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_EC_MAX_FRAGS 32 /* k + m */

enum ckpt_ec_code {
	CKPT_EC_XOR = 1,
	CKPT_EC_RS = 2,
	CKPT_EC_MIRROR = 3,
};

struct ckpt_ec {
	enum ckpt_ec_code code;
	unsigned int k, m;
	uint8_t *matrix;   /* (k + m) x k, rs only */
	uint8_t *enc_tbls; /* ec_init_tables of the parity rows, rs only */
};

/* The code's name in a target: "xor", "rs" or "mirror" ("?" for no code). */
const char *ckpt_ec_name(enum ckpt_ec_code code);

/*
 * Set up a code. xor needs m == 1, mirror k == 1, and k + m <= CKPT_EC_MAX_FRAGS.
 * @return 0, -EINVAL (parameters) or -ENOMEM.
 */
int ckpt_ec_init(struct ckpt_ec *ec, enum ckpt_ec_code code, unsigned int k, unsigned int m);

/* Free what ckpt_ec_init() allocated. Safe on a zeroed or finished code. */
void ckpt_ec_fini(struct ckpt_ec *ec);

/* Compute the m parity fragments of len bytes from the k data fragments. */
void ckpt_ec_encode(const struct ckpt_ec *ec, size_t len, uint8_t *const *data,
		    uint8_t *const *parity);

/*
 * Recompute every fragment not marked in @p have from those that are: frags[0..k) are
 * data, frags[k..k+m) parity, each a buffer of len bytes.
 * @return 0, or -EIO when fewer than k fragments are present.
 */
int ckpt_ec_recover(const struct ckpt_ec *ec, size_t len, uint8_t *const *frags, const bool *have);

#endif /* CKPT_EC_H */
