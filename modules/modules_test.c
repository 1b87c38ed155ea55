/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "holdfast/ckpt_record.h"
#include "holdfast/fw_module.h"
#include "fw_slices.h"

static void test_registry_lists_each_module_under_its_id(void **st)
{
	(void)st;
	assert_null(fw_modules[0]);
	for (int m = 1; m < FW_MOD_MAX; m++) {
		assert_non_null(fw_modules[m]);
		assert_int_equal(fw_modules[m]->id, m);
		assert_non_null(fw_modules[m]->encode);
		assert_non_null(fw_modules[m]->decode);
		assert_non_null(fw_modules[m]->on_restore);
		assert_non_null(fw_modules[m]->dump);
		assert_true(fw_modules[m]->slice_version >= 1);
	}
	assert_string_equal(fw_modules[FW_MOD_TCP]->name, "tcp");
	assert_true(fw_modules[FW_MOD_TCP]->required);
	assert_true(fw_modules[FW_MOD_UDP]->required);
	assert_false(fw_modules[FW_MOD_FTP]->required);
}

/* Slices fit the extension area; only TCP and UDP (never both on one connection) share. */
static void test_registry_slices_fit_and_do_not_overlap(void **st)
{
	(void)st;
	for (int a = 1; a < FW_MOD_MAX; a++) {
		const struct fw_module_ops *x = fw_modules[a];

		assert_true(x->slice_off + x->slice_size <= FW_EXT_SIZE);
		assert_int_equal(x->slice_off % 8, 0);
		for (int b = a + 1; b < FW_MOD_MAX; b++) {
			const struct fw_module_ops *y = fw_modules[b];
			bool overlap = x->slice_off < y->slice_off + y->slice_size &&
				       y->slice_off < x->slice_off + x->slice_size;

			if (a == FW_MOD_TCP && b == FW_MOD_UDP)
				continue;
			assert_false(overlap);
		}
	}
}

/* Every module's encoding fits a checkpoint record. */
static void test_registry_payloads_fit_a_record(void **st)
{
	uint8_t buf[CKPT_REC_MAX_PAYLOAD];
	struct fw_conn c;

	(void)st;
	memset(&c, 0, sizeof(c));
	for (int m = 1; m < FW_MOD_MAX; m++) {
		int n = fw_modules[m]->encode(&c, buf, sizeof(buf));

		assert_true(n > 0 && n <= CKPT_REC_MAX_PAYLOAD);
	}
}

static void test_drop_reason_names(void **st)
{
	(void)st;
	for (int r = 0; r < FW_DROP_REASON_MAX; r++) {
		assert_string_not_equal(fw_drop_reason_name((enum fw_drop_reason)r), "unknown");
		for (int q = 0; q < r; q++)
			assert_string_not_equal(fw_drop_reason_name((enum fw_drop_reason)r),
						fw_drop_reason_name((enum fw_drop_reason)q));
	}
	assert_string_equal(fw_drop_reason_name(FW_DROP_TCP_WINDOW), "tcp_window");
	assert_string_equal(fw_drop_reason_name(FW_DROP_REASON_MAX), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_lists_each_module_under_its_id),
		cmocka_unit_test(test_registry_slices_fit_and_do_not_overlap),
		cmocka_unit_test(test_registry_payloads_fit_a_record),
		cmocka_unit_test(test_drop_reason_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
