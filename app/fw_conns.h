/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's connections listed for an operator (hfctl conns, /holdfast/conns,W,CURSOR),
 * a page at a time. A worker's table is read and written by that worker only, so the
 * listing is handed over, not read concurrently: each worker has a mailbox the telemetry
 * thread fills with a request (from which table position, how many), and the worker
 * serves it at the end of a pass of its loop, a bounded chunk of positions a pass, copying
 * what it finds into the mailbox. An idle mailbox costs the worker one relaxed load a
 * pass. A worker that does not answer within the requester's timeout (not forwarding yet,
 * stopped) has the request withdrawn.
 *
 * The state word, and who moves it:
 *   IDLE --requester--> ASKED --worker--> SERVING --worker--> DONE --requester--> IDLE
 *   ASKED --requester, on timeout--> IDLE (withdrawn before the worker took it)
 * The worker looks only at ASKED and SERVING (bit 0 set); requesters take turns (a mutex:
 * DPDK telemetry answers each client on its own thread).
 *
 * A listing is not a snapshot, as conntrack -L's is not: connections come and go between
 * pages. Since a connection keeps its table position while it lives, one that lives
 * through the whole listing is listed exactly once.
 */
#ifndef FW_CONNS_H
#define FW_CONNS_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

#include "fw_table.h"
#include "holdfast/fw_conn.h"

/*
 * Connections in one page at most: a telemetry reply is at most 16 KB of JSON, and one
 * connection (IPv6, every field at its widest) is about 250 bytes of it.
 */
#define FW_CONNS_PAGE_MAX 48
/* Table positions a worker looks at in one pass of its loop, at most: forwarding goes on. */
#define FW_CONNS_SCAN_PASS 256
/*
 * Positions looked at for one page, at most: a sparse table's page comes back short
 * rather than late (the requester asks again from the cursor it is given).
 */
#define FW_CONNS_SCAN_PAGE 65536

enum fw_conns_state {
	FW_CONNS_IDLE = 0,
	FW_CONNS_ASKED = 1,
	FW_CONNS_DONE = 2,
	FW_CONNS_SERVING = 3,
};

/* What a listing shows of one connection: copied by its worker, nothing pointed to. */
struct fw_conn_entry {
	struct fw_key key;  /* canonical: the opener is side orig_side */
	uint64_t last_ns;   /* the last packet (packet clock, fw_worker_now()) */
	uint64_t expire_ns; /* idle deadline, same clock */
	uint8_t orig_side;
	uint8_t state;	 /* the transport module's: enum fw_tcp_state, enum fw_udp_state */
	uint8_t present; /* slices: 1 << module id */
	uint8_t flags;	 /* FW_CONN_F_* (restored, expecting, being restored) */
};

/* A page as the requester receives it. */
struct fw_conns_page {
	uint32_t n;	  /* entries in e */
	uint32_t next;	  /* the position to ask from for the next page */
	bool end;	  /* no position past next: the listing of this worker is complete */
	uint32_t scanned; /* positions looked at */
	struct fw_conn_entry e[FW_CONNS_PAGE_MAX];
};

struct fw_conns_mailbox {
	/* Its own line: the worker reads it every pass, requesters write it rarely. */
	alignas(64) uint32_t state;	/* enum fw_conns_state, atomically */
	uint32_t cursor;		/* in: the position to start from; out: the next one */
	uint32_t max;			/* in: entries wanted (1..FW_CONNS_PAGE_MAX) */
	uint32_t n;			/* out: entries served */
	uint32_t scanned;		/* out: positions looked at */
	alignas(64) pthread_mutex_t mu; /* requesters, one at a time */
	struct fw_conn_entry e[FW_CONNS_PAGE_MAX];
};

/** Set @p mb idle. */
void fw_conns_init(struct fw_conns_mailbox *mb);

/** Release what init made. */
void fw_conns_fini(struct fw_conns_mailbox *mb);

/** Is a request waiting for the table's owner (ASKED or SERVING)? One relaxed load. */
static inline bool fw_conns_asked(const struct fw_conns_mailbox *mb)
{
	return (__atomic_load_n(&mb->state, __ATOMIC_RELAXED) & 1u) != 0;
}

/**
 * The table's owner (its worker; a standby's follow loop) serves @p mb's request from
 * @p t, looking at @p budget positions at most, and marks it DONE once the page is full,
 * the table's end is reached or FW_CONNS_SCAN_PAGE positions were looked at. Nothing when
 * no request waits. @return positions looked at.
 */
unsigned int fw_conns_serve(struct fw_conns_mailbox *mb, struct fw_table *t, unsigned int budget);

/**
 * Ask the owner of @p t for up to @p max connections from position @p cursor, and wait
 * for the page up to @p timeout_ms (any thread but the owner's; @p t is read only for its
 * size). *@p out is written only on success.
 * @return 0; -EINVAL (@p max not 1..FW_CONNS_PAGE_MAX, @p cursor past fw_table_slots());
 * -ETIMEDOUT (the owner did not take the request: it is withdrawn); -EBUSY (the owner took
 * an earlier request that timed out and has not finished it yet).
 */
int fw_conns_request(struct fw_conns_mailbox *mb, const struct fw_table *t, uint32_t cursor,
		     uint32_t max, uint32_t timeout_ms, struct fw_conns_page *out);

/* What /holdfast/conns,W,CURSOR[,MAX] asks (fw_conns_params_parse). */
struct fw_conns_params {
	uint32_t worker;
	uint32_t cursor;
	uint32_t max; /* FW_CONNS_PAGE_MAX when not given */
};

/**
 * Parse telemetry parameters "W,CURSOR[,MAX]" from @p s (NUL-terminated), which anyone
 * who reaches the socket writes: decimal digits only (no sign, space, hex or empty field),
 * W and CURSOR at most UINT32_MAX, MAX 1 to FW_CONNS_PAGE_MAX, nothing after. Whether W
 * names a worker and CURSOR a position is the caller's to check.
 * @return 0 with *@p out, or -EINVAL (*@p out untouched).
 */
int fw_conns_params_parse(const char *s, struct fw_conns_params *out);

#endif /* FW_CONNS_H */
