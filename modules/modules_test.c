/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "holdfast/ckpt_record.h"
#include "holdfast/fw_module.h"
#include "fw_slices.h"
#include "ftp/fw_ftp.h"
#include "tcp/fw_tcp.h"
#include "udp/fw_udp.h"

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

/*
 * Every packet of a connection touches its transport slice: TCP's and UDP's lie wholly in
 * the connection's hot line, with the timers and bits, and nothing else does; no slice
 * straddles the hot line and the cold part.
 */
static void test_registry_transport_slices_in_the_hot_line(void **st)
{
	(void)st;
	assert_int_equal(sizeof(struct fw_conn), 64);
	assert_int_equal(alignof(struct fw_conn), 64);
	assert_int_equal(offsetof(struct fw_conn, ext) + FW_EXT_HOT, 64);
	for (int a = 1; a < FW_MOD_MAX; a++) {
		const struct fw_module_ops *x = fw_modules[a];

		if (x->id == FW_MOD_TCP || x->id == FW_MOD_UDP)
			assert_true(x->slice_off + x->slice_size <= FW_EXT_HOT);
		else
			assert_true(x->slice_off >= FW_EXT_HOT);
	}
}

/* Slices fit the extension area; only TCP and UDP (never both on one connection) share. */
static void test_registry_slices_fit_and_do_not_overlap(void **st)
{
	(void)st;
	for (int a = 1; a < FW_MOD_MAX; a++) {
		const struct fw_module_ops *x = fw_modules[a];

		assert_true(x->slice_off + x->slice_size <= FW_EXT_SIZE);
		/* ext starts 4-aligned; wider slices assert their own alignment. */
		if (x->slice_off < FW_EXT_HOT)
			assert_int_equal((offsetof(struct fw_conn, ext) + x->slice_off) % 4, 0);
		else
			assert_int_equal(
				(offsetof(struct fw_conn_cold, ext) + x->slice_off - FW_EXT_HOT) %
					4,
				0);
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
	struct fw_conn *c = fw_conns_map(1, -1);

	(void)st;
	assert_non_null(c);
	for (int m = 1; m < FW_MOD_MAX; m++) {
		int n = fw_modules[m]->encode(c, buf, sizeof(buf));

		assert_true(n > 0 && n <= CKPT_REC_MAX_PAYLOAD);
	}
	fw_conns_unmap(c, 1);
}

/*
 * What the core sizes and configures from the table: TCP carries two slices at most (TCP
 * and FTP), UDP one, so a connection needs two slot pairs; every module's configuration
 * fits its room, and no two modules claim one timeout name.
 */
static void test_registry_derives_sizing_and_settings(void **st)
{
	struct fw_modconf mc;
	char err[128] = "";
	char *ports[] = {"ftp-ports", "2121", "21"}, *bad[] = {"ftp-ports", "70000"};
	char *other[] = {"max-conns", "64"};

	(void)st;
	assert_int_equal(fw_modules_slices_max(), 2);
	for (int m = 1; m < FW_MOD_MAX; m++) {
		const struct fw_module_ops *x = fw_modules[m];

		assert_true(x->proto == 6 || x->proto == 17);
		assert_true(x->conf_size > 0 && x->conf_size <= FW_MOD_CONF_MAX);
		for (int n = 1; n < FW_MOD_MAX; n++)
			for (unsigned int i = 0; x->timeouts[i]; i++)
				for (unsigned int j = 0; n != m && fw_modules[n]->timeouts[j]; j++)
					assert_string_not_equal(x->timeouts[i],
								fw_modules[n]->timeouts[j]);
	}
	fw_modconf_defaults(&mc);
	assert_memory_equal(fw_modconf_get(&mc, FW_MOD_TCP), &fw_tcp_conf_default,
			    sizeof(fw_tcp_conf_default));
	assert_memory_equal(fw_modconf_get(&mc, FW_MOD_UDP), &fw_udp_conf_default,
			    sizeof(fw_udp_conf_default));
	assert_memory_equal(fw_modconf_get(&mc, FW_MOD_FTP), &fw_ftp_conf_default,
			    sizeof(fw_ftp_conf_default));
	assert_null(fw_modconf_get(&mc, (enum fw_module_id)0));
	assert_true(fw_modconf_has_timeout("tcp-syn-sent") && !fw_modconf_has_timeout("tcp"));
	fw_modconf_set_timeout(&mc, "tcp-syn-sent", 7);
	assert_true(((const struct fw_tcp_conf *)fw_modconf_get(&mc, FW_MOD_TCP))
			    ->timeout_ns[FW_TCP_SYN_SENT2] == 7);
	assert_int_equal(fw_modconf_set(&mc, ports, 3, err, sizeof(err)), 1);
	assert_int_equal(((const struct fw_ftp_conf *)fw_modconf_get(&mc, FW_MOD_FTP))->ports[0],
			 2121);
	assert_int_equal(fw_modconf_set(&mc, bad, 2, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ftp-ports: '70000' is not a port");
	assert_int_equal(fw_modconf_set(&mc, other, 2, err, sizeof(err)), 0);
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
		cmocka_unit_test(test_registry_transport_slices_in_the_hot_line),
		cmocka_unit_test(test_registry_payloads_fit_a_record),
		cmocka_unit_test(test_registry_derives_sizing_and_settings),
		cmocka_unit_test(test_drop_reason_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
