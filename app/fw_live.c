/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_telemetry.h>

#include "fw_live.h"
#include "fw_nft.h"
#include "fw_thread.h"
#include "fw_worker.h"

RTE_LOG_REGISTER_SUFFIX(fw_logtype_rules, rules, INFO)
#define LOG(level, ...) rte_log(RTE_LOG_##level, fw_logtype_rules, "holdfast: " __VA_ARGS__)

/* Per-rule lines /holdfast/rules lists at most (telemetry's arrays are bounded). */
#define TEL_RULES_MAX 200

struct fw_live {
	struct fw_shared *sh;
	unsigned int nworkers;
	int socket;
	/* Who reads what: the control thread installs, telemetry reads cur and the stats;
	 * both under lock. The workers read sh->rules only. */
	pthread_mutex_t lock;
	struct fw_rulegen *cur;
	char source[128];
	uint64_t reloads;
	uint64_t refused;
	char last_error[320];
	/* The control thread. */
	pthread_t th;
	bool running;
	struct fw_nft_watch *watch;
	char nft_spec[128];
	fw_live_reread_fn reread;
	void *reread_arg;
};

/* SIGHUP writes 'h', fw_live_stop 'q': a signal handler can only write(). */
static int wake_fd[2] = {-1, -1};
static struct fw_live *tel_live;
static unsigned int acl_serial;

static size_t row_bytes(unsigned int n)
{
	return RTE_ALIGN_CEIL((size_t)(n ? n : 1) * sizeof(uint64_t), RTE_CACHE_LINE_SIZE);
}

struct fw_rulegen *fw_rulegen_build(const struct fw_ruleset *rs, unsigned int nworkers,
				    uint64_t gen, int socket, char *err, size_t errlen)
{
	struct fw_rulegen *g = rte_zmalloc_socket("fw_rulegen", sizeof(*g), 0, socket);
	char name[24];
	int rc;

	if (g == NULL) {
		snprintf(err, errlen, "rules: no memory for generation %" PRIu64, gen);
		errno = ENOMEM;
		return NULL;
	}
	/* rte_acl hands back the existing context of a name: each build needs its own. */
	snprintf(name, sizeof(name), "fwr%u_",
		 __atomic_fetch_add(&acl_serial, 1, __ATOMIC_RELAXED));
	g->acl = fw_acl_build(rs, name, socket, err, errlen);
	if (g->acl == NULL) {
		rc = errno;
		rte_free(g);
		errno = rc;
		return NULL;
	}
	g->rules = fw_acl_rules(g->acl, &g->nrules);
	g->nworkers = nworkers ? nworkers : 1;
	g->stride = (unsigned int)(row_bytes(g->nrules) / sizeof(uint64_t));
	g->gen = gen;
	g->hits = rte_zmalloc_socket("fw_rule_hits", row_bytes(g->nrules) * g->nworkers,
				     RTE_CACHE_LINE_SIZE, socket);
	g->carried = rte_zmalloc_socket("fw_rule_carried", row_bytes(g->nrules),
					RTE_CACHE_LINE_SIZE, socket);
	if (g->hits == NULL || g->carried == NULL) {
		fw_rulegen_free(&g);
		snprintf(err, errlen, "rules: no memory for the hit counters");
		errno = ENOMEM;
		return NULL;
	}
	return g;
}

void fw_rulegen_free(struct fw_rulegen **gp)
{
	struct fw_rulegen *g = *gp;

	if (g == NULL)
		return;
	fw_acl_free((struct fw_acl **)&g->acl);
	rte_free(g->hits);
	rte_free(g->carried);
	rte_free(g);
	*gp = NULL;
}

uint64_t fw_rulegen_hits(const struct fw_rulegen *g, unsigned int i)
{
	uint64_t sum = __atomic_load_n(&g->carried[i], __ATOMIC_RELAXED);

	for (unsigned int w = 0; w < g->nworkers; w++)
		sum += __atomic_load_n(&g->hits[w * g->stride + i], __ATOMIC_RELAXED);
	return sum;
}

/* Same origin and same meaning: the same rule, whose hits go on counting. */
static bool same_rule(const struct fw_rule *a, const struct fw_rule *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* @p old is final (no worker reads it): its hits become @p g's where the rule stayed. */
static void carry_hits(struct fw_rulegen *g, const struct fw_rulegen *old)
{
	for (unsigned int i = 0; i < g->nrules; i++)
		for (unsigned int j = 0; j < old->nrules; j++)
			if (same_rule(&g->rules[i], &old->rules[j])) {
				__atomic_store_n(&g->carried[i], fw_rulegen_hits(old, j),
						 __ATOMIC_RELAXED);
				break;
			}
}

/*
 * Until every worker online has passed a quiescent state since now. Polled with a sleep,
 * not rte_rcu_qsbr_synchronize's spin: this thread may share its CPU with worker 0, whose
 * pass it waits for.
 */
static void wait_quiescent(struct rte_rcu_qsbr *v)
{
	const uint64_t t = rte_rcu_qsbr_start(v);
	const struct timespec ms = {.tv_nsec = 1000000};

	while (rte_rcu_qsbr_check(v, t, false) == 0)
		nanosleep(&ms, NULL);
}

static void tel_rules(struct rte_tel_data *d);

static int rules_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	if (tel_live == NULL)
		return -ENOENT;
	tel_rules(d);
	return 0;
}

struct fw_live *fw_live_create(struct fw_shared *sh, unsigned int nworkers, int socket,
			       const struct fw_ruleset *rs, const char *source, char *err,
			       size_t errlen)
{
	struct fw_live *l = calloc(1, sizeof(*l));
	size_t sz;
	int rc;

	if (l == NULL)
		return NULL;
	l->sh = sh;
	l->nworkers = nworkers ? nworkers : 1;
	l->socket = socket;
	pthread_mutex_init(&l->lock, NULL);
	snprintf(l->source, sizeof(l->source), "%s", source);
	sz = rte_rcu_qsbr_get_memsize(l->nworkers);
	sh->qsbr = rte_zmalloc_socket("fw_qsbr", sz, RTE_CACHE_LINE_SIZE, socket);
	if (sh->qsbr == NULL || rte_rcu_qsbr_init(sh->qsbr, l->nworkers) != 0) {
		errno = sh->qsbr ? rte_errno : ENOMEM;
		snprintf(err, errlen, "rules: quiescent-state variable for %u workers: %s",
			 l->nworkers, strerror(errno));
		goto err;
	}
	for (unsigned int i = 0; i < l->nworkers; i++)
		rte_rcu_qsbr_thread_register(sh->qsbr, i);
	l->cur = fw_rulegen_build(rs, l->nworkers, 1, socket, err, errlen);
	if (l->cur == NULL)
		goto err;
	__atomic_store_n(&sh->rules, l->cur, __ATOMIC_RELEASE);
	tel_live = l;
	rc = rte_telemetry_register_cmd("/holdfast/rules", rules_cmd,
					"The rules in force: generation, source, reloads, "
					"refused changes, each rule's hits.");
	if (rc && rc != -EINVAL) /* registered already: an earlier keeper of this process */
		LOG(WARNING, "telemetry /holdfast/rules: %s\n", strerror(-rc));
	return l;
err:
	rc = errno ? errno : ENOMEM;
	rte_free(sh->qsbr);
	sh->qsbr = NULL;
	pthread_mutex_destroy(&l->lock);
	free(l);
	errno = rc;
	return NULL;
}

void fw_live_refuse(struct fw_live *l, const char *why, const char *err)
{
	pthread_mutex_lock(&l->lock);
	l->refused++;
	snprintf(l->last_error, sizeof(l->last_error), "%s", err);
	LOG(ERR, "rules: %s: change refused, generation %" PRIu64 " (%u rules) stays: %s\n", why,
	    l->cur->gen, l->cur->nrules, err);
	pthread_mutex_unlock(&l->lock);
}

int fw_live_install(struct fw_live *l, const struct fw_ruleset *rs, const char *why, char *err,
		    size_t errlen)
{
	struct fw_rulegen *g, *old;
	uint64_t gen;

	pthread_mutex_lock(&l->lock);
	gen = l->cur->gen + 1;
	pthread_mutex_unlock(&l->lock);
	g = fw_rulegen_build(rs, l->nworkers, gen, l->socket, err, errlen);
	if (g == NULL) {
		const int rc = errno;

		fw_live_refuse(l, why, err);
		return -rc;
	}
	pthread_mutex_lock(&l->lock);
	old = l->cur;
	l->cur = g;
	l->reloads++;
	/* From here on a worker's next decision is the new generation's. */
	__atomic_store_n(&l->sh->rules, g, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&l->lock);
	wait_quiescent(l->sh->qsbr);
	/* No worker holds the old one now: its hits are final, and it can go. */
	pthread_mutex_lock(&l->lock);
	carry_hits(g, old);
	pthread_mutex_unlock(&l->lock);
	fw_rulegen_free(&old);
	LOG(INFO, "rules: %s: generation %" PRIu64 " in force: %u rules, default policy %s\n", why,
	    gen, g->nrules, fw_action_name(fw_acl_policy(g->acl)));
	return 0;
}

/* Read the table again and put it in force, or refuse it. */
static void reload_nft(struct fw_live *l, const char *why)
{
	struct fw_ruleset rs = {0};
	char err[320];

	if (fw_nft_import(l->nft_spec, &rs, err, sizeof(err)) == 0)
		fw_live_install(l, &rs, why, err, sizeof(err));
	else
		fw_live_refuse(l, why, err);
	fw_ruleset_clear(&rs);
}

static void reload_hup(struct fw_live *l)
{
	struct fw_ruleset rs = {0};
	char err[320], source[128] = "";

	if (l->reread(&rs, source, sizeof(source), err, sizeof(err), l->reread_arg) != 0) {
		fw_live_refuse(l, "SIGHUP", err);
	} else if (fw_live_install(l, &rs, "SIGHUP", err, sizeof(err)) == 0) {
		pthread_mutex_lock(&l->lock);
		snprintf(l->source, sizeof(l->source), "%s", source);
		pthread_mutex_unlock(&l->lock);
	}
	fw_ruleset_clear(&rs);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *follow(void *arg)
{
	struct fw_live *l = arg;
	uint64_t first = 0, last = 0; /* of the burst not read yet; 0: none */

	for (;;) {
		struct pollfd p[2] = {
			{.fd = wake_fd[0], .events = POLLIN},
			{.fd = l->watch ? fw_nft_watch_fd(l->watch) : -1, .events = POLLIN}};
		int timeout = -1;
		char c[16];
		ssize_t n;

		if (first) {
			const uint64_t due =
				RTE_MIN(last + FW_LIVE_QUIET_MS, first + FW_LIVE_MAX_DELAY_MS);
			const uint64_t now = mono_ms();

			timeout = due > now ? (int)(due - now) : 0;
		}
		if (poll(p, 2, timeout) < 0 && errno != EINTR) {
			LOG(ERR, "rules: poll: %s; no longer following changes\n", strerror(errno));
			return NULL;
		}
		if (p[1].revents & POLLIN) {
			const int rc = fw_nft_watch_read(l->watch);

			if (rc > 0 || rc == -ENOBUFS) {
				last = mono_ms();
				if (first == 0)
					first = last;
			} else if (rc < 0) {
				LOG(WARNING, "rules: nft watch: %s\n", strerror(-rc));
			}
		}
		if (first &&
		    mono_ms() >= RTE_MIN(last + FW_LIVE_QUIET_MS, first + FW_LIVE_MAX_DELAY_MS)) {
			char why[160];

			first = last = 0;
			snprintf(why, sizeof(why), "nft table %s changed", l->nft_spec);
			reload_nft(l, why);
		}
		if (!(p[0].revents & POLLIN))
			continue;
		n = read(wake_fd[0], c, sizeof(c));
		for (ssize_t i = 0; i < n; i++)
			if (c[i] == 'q')
				return NULL;
		if (n > 0)
			reload_hup(l);
	}
}

int fw_live_follow(struct fw_live *l, const char *nft_spec, fw_live_reread_fn reread, void *arg,
		   char *err, size_t errlen)
{
	int rc;

	if (wake_fd[0] < 0 && pipe2(wake_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(err, errlen, "rules: pipe: %s", strerror(errno));
		return -errno;
	}
	l->reread = reread;
	l->reread_arg = arg;
	if (nft_spec != NULL) {
		snprintf(l->nft_spec, sizeof(l->nft_spec), "%s", nft_spec);
		l->watch = fw_nft_watch_open(nft_spec, err, errlen);
		if (l->watch == NULL)
			return -errno;
	}
	rc = fw_thread_start(&l->th, "hf-rules", follow, l);
	if (rc) {
		snprintf(err, errlen, "rules: control thread: %s", strerror(-rc));
		fw_nft_watch_close(&l->watch);
		return rc;
	}
	l->running = true;
	if (nft_spec != NULL)
		LOG(INFO, "rules: following nft table %s\n", nft_spec);
	return 0;
}

void fw_live_hup(void)
{
	if (wake_fd[1] >= 0 && write(wake_fd[1], "h", 1) < 0) {
		/* full pipe: a reload is pending already */
	}
}

void fw_live_stop(struct fw_live *l)
{
	if (l == NULL || !l->running)
		return;
	if (write(wake_fd[1], "q", 1) != 1)
		LOG(WARNING, "rules: cannot wake the control thread: %s\n", strerror(errno));
	pthread_join(l->th, NULL);
	l->running = false;
	fw_nft_watch_close(&l->watch);
}

void fw_live_destroy(struct fw_live **lp)
{
	struct fw_live *l = *lp;

	if (l == NULL)
		return;
	fw_live_stop(l);
	pthread_mutex_lock(&l->lock);
	tel_live = NULL;
	pthread_mutex_unlock(&l->lock);
	__atomic_store_n(&l->sh->rules, NULL, __ATOMIC_RELEASE);
	fw_rulegen_free(&l->cur);
	rte_free(l->sh->qsbr);
	l->sh->qsbr = NULL;
	pthread_mutex_destroy(&l->lock);
	free(l);
	*lp = NULL;
}

void fw_live_stats(struct fw_live *l, struct fw_live_stats *st)
{
	pthread_mutex_lock(&l->lock);
	st->gen = l->cur->gen;
	st->reloads = l->reloads;
	st->refused = l->refused;
	snprintf(st->last_error, sizeof(st->last_error), "%s", l->last_error);
	pthread_mutex_unlock(&l->lock);
}

/*
 * /holdfast/rules: the generation in force, where it came from, changes put in force and
 * refused (the last refusal's reason), and each rule ("origin: rule") with its hits.
 */
static void tel_rules(struct rte_tel_data *d)
{
	struct fw_live *l = tel_live;
	struct rte_tel_data *names, *hits;
	const struct fw_rulegen *g;

	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&l->lock);
	g = l->cur;
	rte_tel_data_add_dict_u64(d, "generation", g->gen);
	rte_tel_data_add_dict_string(d, "source", l->source);
	rte_tel_data_add_dict_u64(d, "rules", g->nrules);
	rte_tel_data_add_dict_string(d, "policy", fw_action_name(fw_acl_policy(g->acl)));
	rte_tel_data_add_dict_u64(d, "reloads", l->reloads);
	rte_tel_data_add_dict_u64(d, "refused", l->refused);
	rte_tel_data_add_dict_string(d, "last_error", l->last_error);
	names = rte_tel_data_alloc();
	hits = rte_tel_data_alloc();
	if (names && hits) {
		rte_tel_data_start_array(names, RTE_TEL_STRING_VAL);
		rte_tel_data_start_array(hits, RTE_TEL_U64_VAL);
		for (unsigned int i = 0; i < g->nrules && i < TEL_RULES_MAX; i++) {
			char text[RTE_TEL_MAX_STRING_LEN], rule[256];

			fw_rule_format(&g->rules[i], rule, sizeof(rule));
			/* telemetry's strings are short: a long rule ends in "..." */
			if (snprintf(text, sizeof(text), "%s: %s", g->rules[i].origin, rule) >=
			    (int)sizeof(text))
				memcpy(text + sizeof(text) - 4, "...", 4);
			rte_tel_data_add_array_string(names, text);
			rte_tel_data_add_array_u64(hits, fw_rulegen_hits(g, i));
		}
		rte_tel_data_add_dict_container(d, "rule", names, 0);
		rte_tel_data_add_dict_container(d, "hits", hits, 0);
	} else {
		rte_tel_data_free(names);
		rte_tel_data_free(hits);
	}
	pthread_mutex_unlock(&l->lock);
}
