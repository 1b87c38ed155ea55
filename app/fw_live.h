/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live rules. The rules in force are a generation: the classifier and, per worker, a hit
 * counter per rule, published in fw_shared.rules. A change builds the next generation off
 * the fast path (a control thread), publishes it with one pointer store, and frees the
 * previous one only once every worker has passed a quiescent state (rte_rcu_qsbr: each
 * worker reports once per pass of its loop, between frames). No worker waits for a change,
 * none reads a freed classifier, and a pass decides all its frames by one generation.
 *
 * What changes the rules: with `rules nft:TABLE`, the table (its changes come over the
 * nftables netlink group; `nft -f` sends one message per object, so a burst is read once it
 * has been quiet for FW_LIVE_QUIET_MS); SIGHUP, which reads the rules again as at start
 * (holdfast.conf's, or the table). A change holdfast cannot enforce (a rule the import
 * refuses, a file that does not parse, rte_acl failing) is refused, named in the log and
 * in telemetry, and the generation in force stays.
 *
 * Rules decide which connections open. An established connection keeps passing on its
 * state whatever the rules say since (as with conntrack's "ct state established accept").
 */
#ifndef FW_LIVE_H
#define FW_LIVE_H

#include <stdint.h>

#include "fw_rules.h"

/* A burst of nft messages is read once this long quiet ... */
#define FW_LIVE_QUIET_MS 50
/* ... or this long after its first message, however long it goes on. */
#define FW_LIVE_MAX_DELAY_MS 500

struct fw_rulegen {
	const struct fw_acl *acl;
	const struct fw_rule *rules; /* the classifier's copy: a match points into it */
	unsigned int nrules;
	unsigned int nworkers;
	unsigned int stride; /* counters per worker's row: whole cache lines */
	uint64_t gen;	     /* 1 for the rules at start, then one more per change in force */
	uint64_t *hits;	     /* [worker * stride + rule]: a row is written by its worker only */
	uint64_t *carried;   /* [rule]: hits of the same rule in earlier generations */
};

/**
 * Compile @p rs into generation @p gen for @p nworkers workers (at least one row) on NUMA
 * @p socket. @return it, or NULL with errno and the reason (naming the rule) in @p err.
 */
struct fw_rulegen *fw_rulegen_build(const struct fw_ruleset *rs, unsigned int nworkers,
				    uint64_t gen, int socket, char *err, size_t errlen);

void fw_rulegen_free(struct fw_rulegen **g);

/** Rule @p i's hits: every worker's, and those carried from earlier generations. */
uint64_t fw_rulegen_hits(const struct fw_rulegen *g, unsigned int i);

/**
 * What the rules of @p g decide for @p p entering from @p zone, counting the rule that
 * matched in worker @p worker's row.
 */
static inline enum fw_action fw_rulegen_decide(const struct fw_rulegen *g, unsigned int worker,
					       enum fw_zone zone, const struct fw_parsed *p)
{
	const struct fw_rule *r;
	const enum fw_action a = fw_acl_decide(g->acl, zone, p, &r);

	if (r != NULL)
		g->hits[worker * g->stride + (unsigned int)(r - g->rules)]++;
	return a;
}

struct fw_shared;
struct fw_live;

/**
 * Keep the rules of @p sh (its first generation: @p rs, from @p source, e.g.
 * "holdfast.conf" or "nft:inet:fw") for @p nworkers workers: their quiescent-state
 * variable is made here (sh->qsbr, worker i is thread i), and /holdfast/rules is
 * registered. @return the keeper, or NULL with errno and @p err.
 */
struct fw_live *fw_live_create(struct fw_shared *sh, unsigned int nworkers, int socket,
			       const struct fw_ruleset *rs, const char *source, char *err,
			       size_t errlen);

/**
 * Put @p rs in force (what changed: @p why, for the log): build, publish, wait for every
 * worker's quiescent state, free the previous generation. Hits of a rule that stayed the
 * same (its origin and its meaning) carry over. @return 0, or -errno when refused (the
 * previous generation stays; counted, @p err says why).
 */
int fw_live_install(struct fw_live *l, const struct fw_ruleset *rs, const char *why, char *err,
		    size_t errlen);

/** Count a change refused before it was built (@p err names the rule) and log it. */
void fw_live_refuse(struct fw_live *l, const char *why, const char *err);

/**
 * Read the rules again for SIGHUP into @p rs (empty on entry), their source (e.g. the
 * config's path, or "nft:inet:fw") into @p source. @return 0 or -errno with @p err.
 */
typedef int (*fw_live_reread_fn)(struct fw_ruleset *rs, char *source, size_t sourcelen, char *err,
				 size_t errlen, void *arg);

/**
 * Start the control thread: it follows @p nft_spec's table when not NULL ("inet:fw") and
 * reloads through @p reread on fw_live_hup(). @return 0 or -errno with @p err.
 */
int fw_live_follow(struct fw_live *l, const char *nft_spec, fw_live_reread_fn reread, void *arg,
		   char *err, size_t errlen);

/** Ask the control thread for a SIGHUP reload. Async-signal-safe. */
void fw_live_hup(void);

/** Stop the control thread (a change half done is finished first). */
void fw_live_stop(struct fw_live *l);

/** Free the keeper and the generation in force: after the workers stopped. */
void fw_live_destroy(struct fw_live **l);

/** Counters of the keeper, for tests and telemetry. */
struct fw_live_stats {
	uint64_t gen;
	uint64_t reloads; /* changes put in force after the first set */
	uint64_t refused;
	char last_error[320];
};

void fw_live_stats(struct fw_live *l, struct fw_live_stats *st);

#endif /* FW_LIVE_H */
