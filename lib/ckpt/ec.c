/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Erasure code of a redundancy group: encode, and recover lost fragments from any k.
 * ISA-L does the GF(2^8) work for Reed-Solomon; XOR and mirror need no tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>

#include "ec.h"

int ckpt_ec_init(struct ckpt_ec *ec, enum ckpt_ec_code code, unsigned int k, unsigned int m)
{
	memset(ec, 0, sizeof(*ec));
	if (k == 0 || m == 0 || k + m > CKPT_EC_MAX_FRAGS)
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

/* dst = XOR of the n sources; dst may not be one of them. */
static void xor_into(size_t len, uint8_t *dst, uint8_t *const *src, unsigned int n)
{
	memcpy(dst, src[0], len);
	for (unsigned int s = 1; s < n; s++)
		for (size_t i = 0; i < len; i++)
			dst[i] ^= src[s][i];
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
