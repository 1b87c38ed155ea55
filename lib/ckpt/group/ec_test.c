/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ec.h"

#define LEN 4096

struct stripe {
	unsigned int n;
	uint8_t *frag[CKPT_EC_MAX_FRAGS];
	uint8_t *orig[CKPT_EC_MAX_FRAGS];
};

/* Random data, its parity, and a pristine copy of every fragment. */
static void stripe_make(struct stripe *s, const struct ckpt_ec *ec, unsigned int seed)
{
	s->n = ec->k + ec->m;
	srand(seed);
	for (unsigned int i = 0; i < s->n; i++) {
		s->frag[i] = malloc(LEN);
		s->orig[i] = malloc(LEN);
		assert_non_null(s->frag[i]);
		assert_non_null(s->orig[i]);
		for (unsigned int b = 0; b < LEN && i < ec->k; b++)
			s->frag[i][b] = (uint8_t)rand();
	}
	ckpt_ec_encode(ec, LEN, s->frag, s->frag + ec->k);
	for (unsigned int i = 0; i < s->n; i++)
		memcpy(s->orig[i], s->frag[i], LEN);
}

static void stripe_free(struct stripe *s)
{
	for (unsigned int i = 0; i < s->n; i++) {
		free(s->frag[i]);
		free(s->orig[i]);
	}
}

/* Lose the fragments in @p lost (garbage in their buffers), recover, compare all. */
static int lose_and_recover(const struct ckpt_ec *ec, struct stripe *s, uint32_t lost)
{
	bool have[CKPT_EC_MAX_FRAGS];
	int rc;

	for (unsigned int i = 0; i < s->n; i++) {
		have[i] = !(lost & (1u << i));
		if (!have[i])
			memset(s->frag[i], 0xa5, LEN);
	}
	rc = ckpt_ec_recover(ec, LEN, s->frag, have);
	if (rc == 0)
		for (unsigned int i = 0; i < s->n; i++)
			assert_memory_equal(s->frag[i], s->orig[i], LEN);
	return rc;
}

static void every_loss_up_to_m(enum ckpt_ec_code code, unsigned int k, unsigned int m)
{
	struct ckpt_ec ec;
	struct stripe s;
	unsigned int tried = 0;

	assert_int_equal(ckpt_ec_init(&ec, code, k, m), 0);
	stripe_make(&s, &ec, k * 100 + m);
	for (uint32_t lost = 1; lost < (1u << (k + m)); lost++) {
		if ((unsigned int)__builtin_popcount(lost) > m)
			continue;
		assert_int_equal(lose_and_recover(&ec, &s, lost), 0);
		tried++;
	}
	assert_true(tried > 0);
	stripe_free(&s);
	ckpt_ec_fini(&ec);
}

static void test_rs_4_2_recovers_every_loss_of_up_to_two(void **state)
{
	(void)state;
	every_loss_up_to_m(CKPT_EC_RS, 4, 2);
}

static void test_rs_6_3_recovers_every_loss_of_up_to_three(void **state)
{
	(void)state;
	every_loss_up_to_m(CKPT_EC_RS, 6, 3);
}

static void test_xor_recovers_any_single_loss(void **state)
{
	(void)state;
	every_loss_up_to_m(CKPT_EC_XOR, 4, 1);
}

static void test_mirror_recovers_from_any_one_copy(void **state)
{
	(void)state;
	every_loss_up_to_m(CKPT_EC_MIRROR, 1, 2);
}

static void test_xor_parity_is_the_xor_of_the_data(void **state)
{
	struct ckpt_ec ec;
	struct stripe s;

	(void)state;
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_XOR, 3, 1), 0);
	stripe_make(&s, &ec, 7);
	for (unsigned int b = 0; b < LEN; b++)
		assert_int_equal(s.frag[3][b], s.frag[0][b] ^ s.frag[1][b] ^ s.frag[2][b]);
	stripe_free(&s);
	ckpt_ec_fini(&ec);
}

/*
 * xor parity (ISA-L's xor_gen) at the chunk lengths a group cuts (64-byte multiples up to
 * 16 KiB) and at odd ones, with every fragment 64-byte aligned (the group's buffers), all
 * misaligned alike, or mixed: the parity is the byte-wise XOR of the data, and each single
 * lost fragment, data or parity, comes back exactly.
 */
static void xor_shape(unsigned int k, size_t len, unsigned int skew)
{
	const unsigned int n = k + 1;
	uint8_t *base[CKPT_EC_MAX_FRAGS], *frag[CKPT_EC_MAX_FRAGS], *orig[CKPT_EC_MAX_FRAGS];
	bool have[CKPT_EC_MAX_FRAGS];
	struct ckpt_ec ec;

	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_XOR, k, 1), 0);
	srand((unsigned int)(k * 7919 + len + skew));
	for (unsigned int i = 0; i < n; i++) {
		/* skew 0: aligned; else fragment i starts (i * skew) % 64 bytes past 64. */
		base[i] = aligned_alloc(64, (len + 128 + 63) & ~(size_t)63);
		orig[i] = malloc(len);
		assert_non_null(base[i]);
		assert_non_null(orig[i]);
		frag[i] = base[i] + (i * skew) % 64;
		for (size_t b = 0; b < len && i < k; b++)
			frag[i][b] = (uint8_t)rand();
	}
	memset(frag[k], 0x5a, len);
	ckpt_ec_encode(&ec, len, frag, frag + k);
	for (size_t b = 0; b < len; b++) {
		uint8_t x = 0;

		for (unsigned int i = 0; i < k; i++)
			x ^= frag[i][b];
		assert_int_equal(frag[k][b], x);
	}
	for (unsigned int i = 0; i < n; i++)
		memcpy(orig[i], frag[i], len);
	for (unsigned int lost = 0; lost < n; lost++) {
		for (unsigned int i = 0; i < n; i++)
			have[i] = i != lost;
		memset(frag[lost], 0xa5, len);
		assert_int_equal(ckpt_ec_recover(&ec, len, frag, have), 0);
		for (unsigned int i = 0; i < n; i++)
			assert_memory_equal(frag[i], orig[i], len);
	}
	for (unsigned int i = 0; i < n; i++) {
		free(base[i]);
		free(orig[i]);
	}
	ckpt_ec_fini(&ec);
}

static void test_xor_recovers_each_single_lost_chunk(void **state)
{
	static const unsigned int ks[] = {1, 2, 3, 4, 8, 16};
	static const size_t lens[] = {64, 192, 4096, 4160, 16384, 100, 3 * 4096 + 17};
	static const unsigned int skews[] = {0, 16, 1, 8};

	(void)state;
	for (size_t a = 0; a < sizeof(ks) / sizeof(ks[0]); a++)
		for (size_t b = 0; b < sizeof(lens) / sizeof(lens[0]); b++)
			for (size_t c = 0; c < sizeof(skews) / sizeof(skews[0]); c++)
				xor_shape(ks[a], lens[b], skews[c]);
}

static void test_rs_parity_rows_differ_from_each_other(void **state)
{
	struct ckpt_ec ec;
	struct stripe s;

	(void)state;
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_RS, 4, 2), 0);
	stripe_make(&s, &ec, 9);
	/* Two copies of one parity would not survive the loss of two data fragments. */
	assert_memory_not_equal(s.frag[4], s.frag[5], LEN);
	stripe_free(&s);
	ckpt_ec_fini(&ec);
}

static void test_more_losses_than_m_is_eio_and_touches_nothing(void **state)
{
	struct ckpt_ec ec;
	struct stripe s;

	(void)state;
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_RS, 4, 2), 0);
	stripe_make(&s, &ec, 11);
	assert_int_equal(lose_and_recover(&ec, &s, 0x7), -EIO);
	for (unsigned int i = 3; i < 6; i++)
		assert_memory_equal(s.frag[i], s.orig[i], LEN);
	stripe_free(&s);
	ckpt_ec_fini(&ec);
}

static void test_init_refuses_shapes_it_cannot_decode(void **state)
{
	struct ckpt_ec ec;

	(void)state;
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_XOR, 4, 2), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_MIRROR, 2, 1), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_RS, 0, 2), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_RS, 4, 0), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_RS, 30, 3), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, (enum ckpt_ec_code)9, 4, 2), -EINVAL);
	/* Shapes whose k + m wraps around to a small number ("rs(4294967295,3)=a,b" in a
	 * target): k and m are each bounded, not only their sum. */
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_RS, 4294967295u, 3), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_RS, 2147483648u, 2147483650u), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_XOR, 4294967295u, 1), -EINVAL);
	assert_int_equal(ckpt_ec_init(&ec, CKPT_EC_MIRROR, 1, 4294967295u), -EINVAL);
	ckpt_ec_fini(&ec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rs_4_2_recovers_every_loss_of_up_to_two),
		cmocka_unit_test(test_rs_6_3_recovers_every_loss_of_up_to_three),
		cmocka_unit_test(test_xor_recovers_any_single_loss),
		cmocka_unit_test(test_mirror_recovers_from_any_one_copy),
		cmocka_unit_test(test_xor_parity_is_the_xor_of_the_data),
		cmocka_unit_test(test_xor_recovers_each_single_lost_chunk),
		cmocka_unit_test(test_rs_parity_rows_differ_from_each_other),
		cmocka_unit_test(test_more_losses_than_m_is_eio_and_touches_nothing),
		cmocka_unit_test(test_init_refuses_shapes_it_cannot_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
