/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The expectations of several workers, on one board every worker reads (issue 16). An FTP
 * data connection's owner is its own key's, which has nothing to do with its control
 * connection's: the expectation a control connection's owner makes must be found by
 * whichever worker sees the data connection's first packet. With one worker there is no
 * board; expectations stay in the worker's table (fw_table_expect_*).
 *
 * Each expectation belongs to the worker that owns its master (the control connection),
 * and only that worker touches the master: the board hands it pointers it keeps for that
 * worker alone. Another worker that uses an expectation marks it used, atomically under
 * the board's lock, so it admits one connection however many workers race for it; the
 * owner learns of it at its next pass (fw_board_settle), when its master's slice forgets
 * the expectation and is checkpointed at once, as when it used its own. Used ones are
 * settled in the order they were used. A used expectation never admits again: it is out
 * of every worker's reach the moment it is used, and a restore never re-creates it once
 * its master's slice forgot it (modules/ftp). The frame it admitted leaves only then:
 * its worker holds it until the owner says its checkpoint has the master's slice without
 * it (fw_board_done), as a worker's own use is checkpointed before its frames leave; a
 * kill -9 in between would otherwise restore an expectation whose connection was made.
 *
 * One lock for all: expectations are taken only by packets that may open a connection and
 * find none, and added by control connections' announcements; the fast path of an
 * established connection never looks. A worker that finds the board empty takes no lock
 * (one relaxed load). Private to holdfast.
 */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "holdfast/fw_module.h"

#define FW_BOARD_MAX_WORKER 16

struct fw_board;

/** @return a board for @p max expectations, or NULL with errno (EINVAL, ENOMEM). */
struct fw_board *fw_board_create(uint32_t max);

/** Free; sets *@p bp to NULL. NULL is a no-op. */
void fw_board_free(struct fw_board **bp);

/**
 * Worker @p owner's connection @p master expects @p e; a master has one at a time (a new one
 * withdraws the one before, unless another worker used that already: then it is settled as
 * used). @return 0, -ENOSPC (full), -EEXIST (the same endpoints again: refreshed), -EINVAL.
 */
int fw_board_add(struct fw_board *b, unsigned int owner, struct fw_conn *master,
		 const struct fw_expect *e);

/**
 * Worker @p by uses an unexpired expectation that admits a connection from @p saddr:@p sport
 * to @p daddr:@p dport (network order) at @p now, whoever owns it. @return 1 with a copy in
 * *@p out, its owner in *@p owner and the order it was used in in *@p ticket, or 0.
 * Another owner's: the frame it admits waits until fw_board_settled() says the owner's
 * checkpoint has it forgotten (fw_worker.c, "held").
 */
int fw_board_take(struct fw_board *b, unsigned int by, uint8_t family, uint8_t proto,
		  const uint8_t *saddr, uint16_t sport, const uint8_t *daddr, uint16_t dport,
		  uint64_t now, struct fw_expect *out, unsigned int *owner, uint64_t *ticket);

/**
 * Undo fw_board_take() of @p e (owner @p owner) before its owner settled it: the connection
 * it was to admit could not be opened. @return 0, or -ENOENT (settled already: the
 * master forgot it, or went away).
 */
int fw_board_untake(struct fw_board *b, unsigned int owner, const struct fw_expect *e);

/**
 * Told of expectation @p e of @p master (owned by the caller) that left the board: used by
 * worker @p by, or expired (@p by is then the owner).
 */
typedef void (*fw_board_fn)(struct fw_conn *master, const struct fw_expect *e, unsigned int by,
			    void *arg);

/**
 * Worker @p owner: remove its expectations that other workers used, in the order they were
 * used, and call @p fn for each. Cheap when none is (one relaxed load, two when @p upto).
 * With @p upto: when another worker waits for this owner (a frame held since it used one),
 * *@p upto is the order up to which every use is settled now (else 0): the owner hands its
 * masters' changes to its checkpoint, then says fw_board_done(@p upto).
 * @return expectations settled.
 */
unsigned int fw_board_settle(struct fw_board *b, unsigned int owner, fw_board_fn fn, void *arg,
			     uint64_t *upto);

/** Worker @p owner's checkpoint has every use up to @p upto forgotten (fw_board_settle). */
void fw_board_done(struct fw_board *b, unsigned int owner, uint64_t upto);

/** Has worker @p owner said fw_board_done() of the use @p ticket (fw_board_take)? */
bool fw_board_settled(const struct fw_board *b, unsigned int owner, uint64_t ticket);

/**
 * Worker @p owner: remove its unused expectations whose deadline is before @p now and call
 * @p fn for each. Cheap when none is due. @return expectations removed.
 */
unsigned int fw_board_expire(struct fw_board *b, unsigned int owner, uint64_t now, fw_board_fn fn,
			     void *arg);

/** Worker @p owner's @p master goes away: so does what it expects, used or not. */
void fw_board_withdraw(struct fw_board *b, unsigned int owner, struct fw_conn *master);

/** Expectations on the board of worker @p owner (used and not settled included). */
uint32_t fw_board_count(struct fw_board *b, unsigned int owner);

#endif /* FW_BOARD_H */
