/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * FTP control-channel helper. It runs on a connection the core identified as FTP control
 * (fw_ftp_is_control), after the TCP module accepted the segment. It reads the commands
 * PORT and EPRT from the client and the replies 227 and 229 from the server, and asks the
 * core for an expectation that admits exactly the announced data connection.
 */
#ifndef HOLDFAST_FW_FTP_H
#define HOLDFAST_FW_FTP_H

#include <stdbool.h>
#include <stdint.h>

#include "holdfast/fw_module.h"

#define FW_FTP_MAX_PORTS 8

struct fw_ftp_conf {
	uint16_t ports[FW_FTP_MAX_PORTS]; /* control ports, host order; 0 = unused slot */
	uint64_t expect_timeout_ns;	  /* lifetime of an expectation */
	bool active_src_port20;		  /* active mode: data only from the server's port 20 */
};

/* Port 21, expectations live 5 minutes, active data from any server port. */
extern const struct fw_ftp_conf fw_ftp_conf_default;

/* Bytes of a partial line kept per direction: enough for any PORT, EPRT, 227 or 229 line of
 * sane length; a longer line split across segments is not parsed (see ftp.c). */
#define FW_FTP_LINE_BUF 54

#define FW_FTP_D_SYNCED	  0x01 /* line_seq is a known line start */
#define FW_FTP_D_OVERFLOW 0x02 /* the current line outgrew buf: it is skipped */

struct fw_ftp_dir {
	uint32_t line_seq; /* TCP sequence of the first byte of the current line */
	uint32_t consumed; /* bytes of the current line seen so far */
	uint8_t flags;	   /* FW_FTP_D_* */
	uint8_t len;	   /* bytes of the current line held in buf */
	uint8_t buf[FW_FTP_LINE_BUF];
};

enum fw_ftp_exp_mode {
	FW_FTP_EXP_NONE = 0,
	FW_FTP_EXP_ACTIVE = 1,	/* server -> client's announced port (PORT, EPRT) */
	FW_FTP_EXP_PASSIVE = 2, /* client -> server's announced port (227, 229) */
};

#define FW_FTP_F_RESTORE 0x01 /* decoded: the expectation is not re-created yet */
#define FW_FTP_F_EXP_TTL 0x02 /* decoded from version 1: exp_deadline holds a lifetime */

struct fw_ftp_slice {
	uint64_t exp_deadline; /* the outstanding expectation's, CLOCK_REALTIME ns */
	uint16_t exp_port;     /* announced port, host order */
	uint16_t exp_sport;    /* required source port (20) or 0, host order */
	uint8_t exp_mode;      /* enum fw_ftp_exp_mode */
	uint8_t flags;	       /* FW_FTP_F_* */
	uint8_t pad[2];
	struct fw_ftp_dir d[2]; /* indexed by enum fw_dir; ORIG is the client */
};

#define FW_FTP_SLICE_VERSION 2
#define FW_FTP_PAYLOAD_LEN   24
/* Longest expectation lifetime decode accepts from a version 1 record. */
#define FW_FTP_EXPECT_TTL_MAX (3600ull * 1000000000ull)

extern const struct fw_module_ops fw_ftp_ops;

struct fw_ftp_slice *fw_ftp_slice(struct fw_conn *c);

/* Is @p c (a TCP connection) an FTP control connection: is its server port one of
 * @p conf's (NULL: the defaults)? */
bool fw_ftp_is_control(const struct fw_ftp_conf *conf, const struct fw_conn *c);

/*
 * Parse one segment of the control connection @p c, already accepted by the TCP module.
 * The slice is initialized on the first call. Configuration from ctx->conf[FW_MOD_FTP]
 * (struct fw_ftp_conf) or the defaults; expectations through ctx->expect_add.
 * @return FW_PASS, or FW_DROP with @p why: FW_DROP_FTP_BOUNCE (data address not the
 * control peer's, or a port below 1024), FW_DROP_FTP_SYNTAX (malformed numbers),
 * FW_DROP_TABLE_FULL (the core could not take the expectation). A dropped segment leaves
 * the slice unchanged, so its retransmission is parsed again.
 */
enum fw_verdict fw_ftp_packet(struct fw_ctx *ctx, struct fw_conn *c, const struct fw_pkt *p,
			      enum fw_drop_reason *why);

/*
 * The core's expectation @p e of control connection @p c left its table: a data connection
 * used it, or it expired. If it is the one the slice describes, the slice
 * forgets it and is marked dirty (due at once): a restore from the checkpoint must not
 * re-create it. @return true when the slice changed.
 */
bool fw_ftp_expect_gone(struct fw_conn *c, const struct fw_expect *e);

#endif /* HOLDFAST_FW_FTP_H */
