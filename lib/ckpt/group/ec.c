/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Erasure code of a redundancy group: encode, and recover lost fragments from any k.
 * ISA-L does the work: the GF(2^8) arithmetic of Reed-Solomon, and the XOR of xor parity
 * (xor_gen); mirror needs no tables.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>

#include "ec.h"

const char *ckpt_ec_name(enum ckpt_ec_code code)
{
	switch (code) {
	case CKPT_EC_XOR:
		return "xor";
	case CKPT_EC_RS:
		return "rs";
	case CKPT_EC_MIRROR:
		return "mirror";
	}
	return "?";
}

int ckpt_ec_init(struct ckpt_ec *ec, enum ckpt_ec_code code, unsigned int k, unsigned int m)
{
	memset(ec, 0, sizeof(*ec));
	/* Each bounded on its own: a sum of two huge ones wraps around to a small one. */
	if (k == 0 || m == 0 || k > CKPT_EC_MAX_FRAGS || m > CKPT_EC_MAX_FRAGS ||
	    k + m > CKPT_EC_MAX_FRAGS)
		return -EINVAL;
	if ((code == CKPT_EC_XOR && m != 1) || (code == CKPT_EC_MIRROR && k != 1))
		return -EINVAL;
	if (code != CKPT_EC_XOR && code != CKPT_EC_RS && code != CKPT_EC_MIRROR)
		return -EINVAL;
	ec->code = code;
	ec->k = k;
	ec->m = m;
	if (code != CKPT_EC_RS)
		return 0;
	ec->matrix = malloc((size_t)(k + m) * k);
	ec->enc_tbls = malloc(32ul * k * m);
	if (ec->matrix == NULL || ec->enc_tbls == NULL) {
		ckpt_ec_fini(ec);
		return -ENOMEM;
	}
	gf_gen_cauchy1_matrix(ec->matrix, (int)(k + m), (int)k);
	ec_init_tables((int)k, (int)m, ec->matrix + (size_t)k * k, ec->enc_tbls);
	return 0;
}

void ckpt_ec_fini(struct ckpt_ec *ec)
{
	free(ec->matrix);
	free(ec->enc_tbls);
	ec->matrix = NULL;
	ec->enc_tbls = NULL;
}

/*
 * xor_gen (isa-l/raid.h) takes at least two sources and the destination last, every vector
 * 32-byte aligned (it loads with vmovdqa), any length that fits an int. The group's own
 * buffers are 64-byte aligned; vectors that are not (a caller's malloc) go through an
 * aligned bounce buffer, XOR_BLOCK bytes at a time.
 */
#define XOR_ALIGN 32u
#define XOR_BLOCK 4096u
#define XOR_STEP  (1u << 30) /* one xor_gen call covers at most this much */

static bool xor_aligned(const void *p)
{
	return ((uintptr_t)p & (XOR_ALIGN - 1)) == 0;
}

/* The portable loop: when no aligned scratch can be had. */
static void xor_bytes(size_t len, uint8_t *dst, uint8_t *const *src, unsigned int n)
{
	memcpy(dst, src[0], len);
	for (unsigned int s = 1; s < n; s++)
		for (size_t i = 0; i < len; i++)
			dst[i] ^= src[s][i];
}

/* XOR_BLOCK bytes at a time, vectors that are not aligned copied through @p scratch. */
static int xor_bounced(size_t len, uint8_t *dst, uint8_t *const *src, unsigned int n,
		       uint8_t *scratch)
{
	void *v[CKPT_EC_MAX_FRAGS + 1];

	for (size_t off = 0; off < len; off += XOR_BLOCK) {
		const size_t b = len - off < XOR_BLOCK ? len - off : XOR_BLOCK;

		for (unsigned int s = 0; s < n; s++) {
			v[s] = src[s] + off;
			if (!xor_aligned(v[s])) {
				memcpy(scratch + (size_t)s * XOR_BLOCK, v[s], b);
				v[s] = scratch + (size_t)s * XOR_BLOCK;
			}
		}
		v[n] = xor_aligned(dst) ? dst + off : scratch + (size_t)n * XOR_BLOCK;
		if (xor_gen((int)n + 1, (int)b, v) != 0)
			return -EINVAL;
		if (v[n] != dst + off)
			memcpy(dst + off, v[n], b);
	}
	return 0;
}

/* dst = XOR of the n sources; dst may not be one of them. */
static void xor_into(size_t len, uint8_t *dst, uint8_t *const *src, unsigned int n)
{
	void *v[CKPT_EC_MAX_FRAGS + 1];
	bool aligned = xor_aligned(dst);
	uint8_t *scratch;
	int rc = 0;

	if (n < 2) {
		memcpy(dst, src[0], len); /* xor(1): the parity is a copy */
		return;
	}
	if (n > CKPT_EC_MAX_FRAGS) {
		xor_bytes(len, dst, src, n);
		return;
	}
	for (unsigned int s = 0; s < n; s++)
		aligned = aligned && xor_aligned(src[s]);
	if (aligned) {
		for (size_t off = 0; off < len && rc == 0; off += XOR_STEP) {
			const size_t b = len - off < XOR_STEP ? len - off : XOR_STEP;

			for (unsigned int s = 0; s < n; s++)
				v[s] = src[s] + off;
			v[n] = dst + off;
			rc = xor_gen((int)n + 1, (int)b, v);
		}
	} else {
		scratch = aligned_alloc(XOR_ALIGN, (size_t)(n + 1) * XOR_BLOCK);
		rc = scratch != NULL ? xor_bounced(len, dst, src, n, scratch) : -ENOMEM;
		free(scratch);
	}
	if (rc != 0)
		xor_bytes(len, dst, src, n); /* xor_gen refuses nothing it is given here */
	/* xor_gen writes the parity with non-temporal stores: order them before anything. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void ckpt_ec_encode(const struct ckpt_ec *ec, size_t len, uint8_t *const *data,
		    uint8_t *const *parity)
{
	switch (ec->code) {
	case CKPT_EC_XOR:
		xor_into(len, parity[0], data, ec->k);
		break;
	case CKPT_EC_MIRROR:
		for (unsigned int i = 0; i < ec->m; i++)
			memcpy(parity[i], data[0], len);
		break;
	case CKPT_EC_RS:
		ec_encode_data((int)len, (int)ec->k, (int)ec->m, ec->enc_tbls,
			       (unsigned char **)data, (unsigned char **)parity);
		break;
	}
}

/*
 * Reed-Solomon: invert the rows of k surviving fragments, multiply the lost data rows of
 * the inverse with the survivors, then re-encode lost parity from the complete data.
 */
static int rs_recover(const struct ckpt_ec *ec, size_t len, uint8_t *const *frags, const bool *have)
{
	const unsigned int k = ec->k;
	uint8_t sub[CKPT_EC_MAX_FRAGS * CKPT_EC_MAX_FRAGS];
	uint8_t inv[CKPT_EC_MAX_FRAGS * CKPT_EC_MAX_FRAGS];
	uint8_t rows[CKPT_EC_MAX_FRAGS * CKPT_EC_MAX_FRAGS];
	uint8_t *src[CKPT_EC_MAX_FRAGS], *out[CKPT_EC_MAX_FRAGS];
	unsigned int nsrc = 0, nout = 0;
	uint8_t *tbls;

	for (unsigned int i = 0; i < k + ec->m && nsrc < k; i++) {
		if (!have[i])
			continue;
		memcpy(sub + (size_t)nsrc * k, ec->matrix + (size_t)i * k, k);
		src[nsrc++] = frags[i];
	}
	if (gf_invert_matrix(sub, inv, (int)k) != 0)
		return -EIO; /* cannot happen for a Cauchy matrix; refuse rather than guess */
	for (unsigned int d = 0; d < k; d++) {
		if (have[d])
			continue;
		memcpy(rows + (size_t)nout * k, inv + (size_t)d * k, k);
		out[nout++] = frags[d];
	}
	if (nout != 0) {
		tbls = malloc(32ul * k * nout);
		if (tbls == NULL)
			return -ENOMEM;
		ec_init_tables((int)k, (int)nout, rows, tbls);
		ec_encode_data((int)len, (int)k, (int)nout, tbls, src, out);
		free(tbls);
	}
	for (unsigned int p = 0; p < ec->m; p++) {
		if (have[k + p])
			continue;
		/* One parity row at a time: the encode tables hold all m rows in order. */
		ec_encode_data((int)len, (int)k, 1, ec->enc_tbls + 32ul * k * p,
			       (unsigned char **)frags, (unsigned char **)&frags[k + p]);
	}
	return 0;
}

int ckpt_ec_recover(const struct ckpt_ec *ec, size_t len, uint8_t *const *frags, const bool *have)
{
	const unsigned int n = ec->k + ec->m;
	uint8_t *src[CKPT_EC_MAX_FRAGS];
	unsigned int present = 0, first = n, lost = n;

	for (unsigned int i = 0; i < n; i++) {
		if (have[i]) {
			present++;
			if (first == n)
				first = i;
		} else {
			lost = i;
		}
	}
	if (present < ec->k)
		return -EIO;
	if (present == n)
		return 0;
	switch (ec->code) {
	case CKPT_EC_MIRROR:
		for (unsigned int i = 0; i < n; i++)
			if (!have[i])
				memcpy(frags[i], frags[first], len);
		return 0;
	case CKPT_EC_XOR:
		/* Exactly one is lost; it is the XOR of all the others. */
		for (unsigned int i = 0, j = 0; i < n; i++)
			if (i != lost)
				src[j++] = frags[i];
		xor_into(len, frags[lost], src, n - 1);
		return 0;
	case CKPT_EC_RS:
		return rs_recover(ec, len, frags, have);
	}
	return -EINVAL;
}
