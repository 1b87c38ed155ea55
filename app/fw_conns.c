/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>

#include "fw_conns.h"
#include "tcp/fw_tcp.h"
#include "udp/fw_udp.h"

/* How long a requester sleeps between two looks at the state word. */
#define WAIT_STEP_NS 50000L

void fw_conns_init(struct fw_conns_mailbox *mb)
{
	memset(mb, 0, sizeof(*mb));
	pthread_mutex_init(&mb->mu, NULL);
}

void fw_conns_fini(struct fw_conns_mailbox *mb)
{
	pthread_mutex_destroy(&mb->mu);
}

static void entry_of(struct fw_conn_entry *e, struct fw_conn *c)
{
	e->key = fw_conn_cold(c)->key;
	e->last_ns = c->last_ns;
	e->expire_ns = c->expire_ns;
	e->orig_side = c->orig_side;
	e->present = c->present;
	e->flags = c->flags;
	switch (fw_conn_cold(c)->key.proto) {
	case IPPROTO_TCP:
		e->state = fw_tcp_slice(c)->state;
		break;
	case IPPROTO_UDP:
		e->state = fw_udp_slice(c)->state;
		break;
	default:
		e->state = 0;
	}
}

unsigned int fw_conns_serve(struct fw_conns_mailbox *mb, struct fw_table *t, unsigned int budget)
{
	uint32_t st = __atomic_load_n(&mb->state, __ATOMIC_ACQUIRE);
	const uint32_t slots = fw_table_slots(t);
	unsigned int looked = 0;

	if (st == FW_CONNS_ASKED) {
		/* Taken, unless the requester withdrew it a moment ago. */
		if (!__atomic_compare_exchange_n(&mb->state, &st, FW_CONNS_SERVING, false,
						 __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			return 0;
		mb->n = 0;
		mb->scanned = 0;
	} else if (st != FW_CONNS_SERVING) {
		return 0;
	}
	while (looked < budget && mb->cursor < slots && mb->n < mb->max &&
	       mb->n < FW_CONNS_PAGE_MAX && mb->scanned < FW_CONNS_SCAN_PAGE) {
		struct fw_conn *c = fw_table_at(t, mb->cursor++);

		looked++;
		mb->scanned++;
		if (c != NULL)
			entry_of(&mb->e[mb->n++], c);
	}
	if (mb->cursor >= slots || mb->n >= mb->max || mb->n >= FW_CONNS_PAGE_MAX ||
	    mb->scanned >= FW_CONNS_SCAN_PAGE)
		__atomic_store_n(&mb->state, FW_CONNS_DONE, __ATOMIC_RELEASE);
	return looked;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait until the state is DONE, at most until @p deadline_ns. @return true if it is. */
static bool wait_done(struct fw_conns_mailbox *mb, uint64_t deadline_ns)
{
	const struct timespec step = {0, WAIT_STEP_NS};

	for (;;) {
		if (__atomic_load_n(&mb->state, __ATOMIC_ACQUIRE) == FW_CONNS_DONE)
			return true;
		if (mono_ns() >= deadline_ns)
			return false;
		nanosleep(&step, NULL);
	}
}

int fw_conns_request(struct fw_conns_mailbox *mb, const struct fw_table *t, uint32_t cursor,
		     uint32_t max, uint32_t timeout_ms, struct fw_conns_page *out)
{
	const uint32_t slots = fw_table_slots(t);
	const uint64_t wait_ns = (uint64_t)timeout_ms * 1000000ull;
	uint32_t st;
	int rc = 0;

	if (max == 0 || max > FW_CONNS_PAGE_MAX || cursor > slots)
		return -EINVAL;
	pthread_mutex_lock(&mb->mu);
	/* An earlier request that timed out after the owner took it: it is finished soon. */
	st = __atomic_load_n(&mb->state, __ATOMIC_ACQUIRE);
	if (st == FW_CONNS_SERVING && !wait_done(mb, mono_ns() + wait_ns)) {
		rc = -EBUSY;
		goto out;
	}
	mb->cursor = cursor;
	mb->max = max;
	__atomic_store_n(&mb->state, FW_CONNS_ASKED, __ATOMIC_RELEASE);
	if (!wait_done(mb, mono_ns() + wait_ns)) {
		st = FW_CONNS_ASKED;
		if (__atomic_compare_exchange_n(&mb->state, &st, FW_CONNS_IDLE, false,
						__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
			rc = -ETIMEDOUT;
			goto out;
		}
		/* Taken just now: a chunk a pass, the rest of the page is not far behind. */
		if (!wait_done(mb, mono_ns() + wait_ns)) {
			rc = -ETIMEDOUT;
			goto out;
		}
	}
	out->n = mb->n;
	out->next = mb->cursor;
	out->end = mb->cursor >= slots;
	out->scanned = mb->scanned;
	memcpy(out->e, mb->e, sizeof(out->e[0]) * mb->n);
	/* The owner ignores IDLE and DONE alike: no ordering needed, the mutex is ours. */
	__atomic_store_n(&mb->state, FW_CONNS_IDLE, __ATOMIC_RELAXED);
out:
	pthread_mutex_unlock(&mb->mu);
	return rc;
}
