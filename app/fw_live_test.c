/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live rules: hits counted per rule and worker, a swap that frees the old generation only
 * after every online worker's quiescent state, hits carried over for a rule that stayed,
 * and the control thread's SIGHUP reload (put in force, or refused with the old rules
 * kept).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <rte_rcu_qsbr.h>

#include "fw_test_eal.h"

#include "fw_live.h"
#include "fw_worker.h"

static struct fw_parsed tcp_to(uint16_t dport, uint8_t store[2][16])
{
	struct fw_parsed p = {.family = 4, .proto = 6};

	memset(store, 0, 32);
	inet_pton(AF_INET, "198.18.0.1", store[0]);
	inet_pton(AF_INET, "198.19.0.1", store[1]);
	p.saddr = store[0];
	p.daddr = store[1];
	p.sport = htons(40000);
	p.dport = htons(dport);
	return p;
}

/* A ruleset of @p lines (origins "test:N", N from 1), default policy drop. */
static void rules_of(struct fw_ruleset *rs, const char *const *lines, unsigned int n)
{
	char err[160];

	memset(rs, 0, sizeof(*rs));
	rs->policy = FW_ACT_DROP;
	for (unsigned int i = 0; i < n; i++) {
		struct fw_rule r;

		assert_int_equal(fw_rule_parse(lines[i], &r, err, sizeof(err)), 0);
		snprintf(r.origin, sizeof(r.origin), "test:%u", i + 1);
		assert_int_equal(fw_ruleset_add(rs, &r), 0);
	}
}

static void sleep_ms(long ms)
{
	const struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void test_rulegen_counts_hits_per_rule_and_worker(void **state)
{
	static const char *const lines[] = {"accept proto tcp dport 80",
					    "reject proto tcp dport 81"};
	struct fw_ruleset rs;
	struct fw_rulegen *g;
	uint8_t st[2][16];
	struct fw_parsed p;
	char err[160];

	(void)state;
	rules_of(&rs, lines, 2);
	g = fw_rulegen_build(&rs, 2, 7, 0, err, sizeof(err));
	assert_non_null(g);
	assert_int_equal(g->gen, 7);
	assert_int_equal(g->nrules, 2);
	p = tcp_to(80, st);
	assert_int_equal(fw_rulegen_decide(g, 0, FW_ZONE_INSIDE, &p), FW_ACT_ACCEPT);
	assert_int_equal(fw_rulegen_decide(g, 1, FW_ZONE_INSIDE, &p), FW_ACT_ACCEPT);
	p = tcp_to(81, st);
	assert_int_equal(fw_rulegen_decide(g, 1, FW_ZONE_OUTSIDE, &p), FW_ACT_REJECT);
	p = tcp_to(82, st); /* no rule: the policy, nothing counted */
	assert_int_equal(fw_rulegen_decide(g, 0, FW_ZONE_INSIDE, &p), FW_ACT_DROP);
	assert_int_equal(fw_rulegen_hits(g, 0), 2);
	assert_int_equal(fw_rulegen_hits(g, 1), 1);
	/* each worker its own row, on its own cache lines */
	assert_int_equal(g->hits[0], 1);
	assert_int_equal(g->hits[g->stride], 1);
	assert_int_equal(g->hits[g->stride + 1], 1);
	assert_int_equal(g->stride * sizeof(uint64_t) % RTE_CACHE_LINE_SIZE, 0);
	fw_rulegen_free(&g);
	assert_null(g);
	fw_ruleset_clear(&rs);
}

struct installer {
	struct fw_live *live;
	struct fw_ruleset *rs;
	int rc;
	int done;
};

static void *install_thread(void *arg)
{
	struct installer *in = arg;
	char err[320];

	in->rc = fw_live_install(in->live, in->rs, "test", err, sizeof(err));
	__atomic_store_n(&in->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The new generation is published at once, but the old one is freed only after the online
 * worker (this thread, as worker 0) passed a quiescent state; an offline worker (1) is not
 * waited for. The rule both generations share keeps its hits.
 */
static void test_install_waits_for_online_workers_and_carries_hits(void **state)
{
	static const char *const one[] = {"accept proto tcp dport 80"};
	static const char *const two[] = {"drop proto tcp dport 22", "accept proto tcp dport 80"};
	struct fw_ruleset rs1, rs2;
	struct fw_shared sh;
	struct fw_live *live;
	struct fw_live_stats s;
	struct fw_rulegen *g1, *g2;
	struct installer in = {0};
	pthread_t th;
	uint8_t st[2][16];
	struct fw_parsed p;
	char err[320];

	(void)state;
	memset(&sh, 0, sizeof(sh));
	rules_of(&rs1, one, 1);
	rules_of(&rs2, two, 2);
	/* test:2 in the second set is "accept proto tcp dport 80" as test:1 was: rename it so
	 * it is the same rule (origin and meaning) */
	snprintf(rs2.rules[1].origin, sizeof(rs2.rules[1].origin), "test:1");
	live = fw_live_create(&sh, 2, 0, &rs1, "test", err, sizeof(err));
	assert_non_null(live);
	assert_non_null(sh.qsbr);
	g1 = sh.rules;
	assert_int_equal(g1->gen, 1);
	rte_rcu_qsbr_thread_online(sh.qsbr, 0);
	p = tcp_to(80, st);
	for (int i = 0; i < 5; i++)
		assert_int_equal(fw_rulegen_decide(g1, 0, FW_ZONE_INSIDE, &p), FW_ACT_ACCEPT);

	in.live = live;
	in.rs = &rs2;
	assert_int_equal(pthread_create(&th, NULL, install_thread, &in), 0);
	for (int i = 0; i < 2000 && __atomic_load_n(&sh.rules, __ATOMIC_ACQUIRE) == g1; i++)
		sleep_ms(1);
	g2 = __atomic_load_n(&sh.rules, __ATOMIC_ACQUIRE);
	assert_ptr_not_equal(g2, g1);
	assert_int_equal(g2->gen, 2);
	sleep_ms(50);
	/* worker 0 has not passed a quiescent state: g1 is still there for it */
	assert_int_equal(__atomic_load_n(&in.done, __ATOMIC_ACQUIRE), 0);
	assert_int_equal(fw_rulegen_decide(g1, 0, FW_ZONE_INSIDE, &p), FW_ACT_ACCEPT);
	rte_rcu_qsbr_quiescent(sh.qsbr, 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(in.done, 1);
	assert_int_equal(in.rc, 0);
	/* the rule that stayed keeps its 6 hits; the new one starts at 0 */
	assert_int_equal(fw_rulegen_hits(g2, 1), 6);
	assert_int_equal(fw_rulegen_hits(g2, 0), 0);
	p = tcp_to(22, st);
	assert_int_equal(fw_rulegen_decide(g2, 1, FW_ZONE_INSIDE, &p), FW_ACT_DROP);
	assert_int_equal(fw_rulegen_hits(g2, 0), 1);
	fw_live_stats(live, &s);
	assert_int_equal(s.gen, 2);
	assert_int_equal(s.reloads, 1);
	assert_int_equal(s.refused, 0);
	rte_rcu_qsbr_thread_offline(sh.qsbr, 0);
	fw_live_destroy(&live);
	assert_null(live);
	assert_null(sh.rules);
	assert_null(sh.qsbr);
	fw_ruleset_clear(&rs1);
	fw_ruleset_clear(&rs2);
}

/* What the SIGHUP reader gives: a ruleset of dport N (0: an error naming a rule). */
static int hup_port;

static int reread(struct fw_ruleset *rs, char *source, size_t sourcelen, char *err, size_t errlen,
		  void *arg)
{
	char line[64];
	struct fw_rule r;

	(void)arg;
	if (hup_port == 0) {
		snprintf(err, errlen, "test.conf:3: rule: unknown word 'bogus'");
		return -EINVAL;
	}
	snprintf(line, sizeof(line), "accept proto tcp dport %d", hup_port);
	assert_int_equal(fw_rule_parse(line, &r, err, errlen), 0);
	assert_int_equal(fw_ruleset_add(rs, &r), 0);
	rs->policy = FW_ACT_DROP;
	snprintf(source, sourcelen, "test.conf");
	return 0;
}

static int wait_stats(struct fw_live *l, uint64_t gen, uint64_t refused)
{
	struct fw_live_stats s;

	for (int i = 0; i < 5000; i++) {
		fw_live_stats(l, &s);
		if (s.gen == gen && s.refused == refused)
			return 0;
		sleep_ms(1);
	}
	return -1;
}

/*
 * SIGHUP's path through the control thread: a reread that fails is refused (its reason
 * kept) and the rules in force still decide; one that succeeds is put in force.
 */
static void test_hup_reload_refused_then_applied(void **state)
{
	static const char *const one[] = {"accept proto tcp dport 80"};
	struct fw_ruleset rs;
	struct fw_shared sh;
	struct fw_live *live;
	struct fw_live_stats s;
	uint8_t st[2][16];
	struct fw_parsed p;
	char err[320];

	(void)state;
	memset(&sh, 0, sizeof(sh));
	rules_of(&rs, one, 1);
	live = fw_live_create(&sh, 1, 0, &rs, "test", err, sizeof(err));
	assert_non_null(live);
	assert_int_equal(fw_live_follow(live, NULL, reread, NULL, err, sizeof(err)), 0);

	hup_port = 0;
	fw_live_hup();
	assert_int_equal(wait_stats(live, 1, 1), 0);
	fw_live_stats(live, &s);
	assert_non_null(strstr(s.last_error, "test.conf:3"));
	p = tcp_to(80, st);
	assert_int_equal(fw_rulegen_decide(sh.rules, 0, FW_ZONE_INSIDE, &p), FW_ACT_ACCEPT);

	hup_port = 8080;
	fw_live_hup();
	assert_int_equal(wait_stats(live, 2, 1), 0);
	assert_int_equal(fw_rulegen_decide(sh.rules, 0, FW_ZONE_INSIDE, &p), FW_ACT_DROP);
	p = tcp_to(8080, st);
	assert_int_equal(fw_rulegen_decide(sh.rules, 0, FW_ZONE_INSIDE, &p), FW_ACT_ACCEPT);
	fw_live_destroy(&live);
	fw_ruleset_clear(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rulegen_counts_hits_per_rule_and_worker),
		cmocka_unit_test(test_install_waits_for_online_workers_and_carries_hits),
		cmocka_unit_test(test_hup_reload_refused_then_applied),
	};

	return cmocka_run_group_tests(tests, fw_test_eal_up, fw_test_eal_down);
}
