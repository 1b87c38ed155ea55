/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control protocol between the ofi+* client backends (ofi_ctrl.c, ofi_auth.c) and ckptsrv.
 *
 * One stream socket per client (TCP, or abstract AF_UNIX for shm). Every message is a frame:
 *
 *	0  u32 body length   <= CKPT_PROTO_BODY_MAX
 *	4  u16 type          CKPT_MSG_*
 *	6  u16 version       CKPT_PROTO_VERSION
 *	8  u32 seq           chosen by the client per request, echoed in the reply
 *	12 i32 status        replies: 0 or -errno; requests and auth messages: 0
 *	16 body              fixed layout per type (below), little-endian
 *
 * A reply with a nonzero status has an empty body. Names are fixed PMU_NAME_MAX fields,
 * NUL-terminated and zero-padded; anything else is malformed.
 *
 * Every byte comes from a peer that may be hostile. A receiver says which messages it takes
 * (CKPT_ACCEPT_*): a frame of any other type, or longer than its type's layout allows, is
 * refused from its header alone, before its body is read. Decoding writes only into the
 * message and the LIST room its caller passed, and zeroes the message first.
 *
 * Session: server CHALLENGE {nonce[32]}; client HELLO {tenant[64], nonce[32], mac[32]} with
 * mac = HMAC-SHA256(secret, "hf-ckpt-auth-v1" || server nonce || client nonce || tenant);
 * server WELCOME {mac[32], u32 ep_len, u32 rxm_buffer, ep name} with
 * mac = HMAC-SHA256(secret, "hf-ckpt-srv-v1" || client nonce || server nonce),
 * or WELCOME with status -EACCES and the connection closed. Then requests and replies.
 *
 * Bodies:
 *	CREATE   name[64] u32 mode u32 slot_size u64 size u64 ring_size
 *	OPEN, DELETE, STAT   name[64]
 *	CLOSE    u64 handle
 *	LIST     (empty)
 *	PERSIST  u64 handle u64 offset u64 length u64 head (0: none; else the ring head to store
 *	         and persist after the range)
 *	LEASE    u64 handle u32 ttl_ms u32 0
 *	PING     (empty): a keepalive; the server closes a session that sends nothing for its
 *	         idle timeout (ckptsrv.conf idle-timeout-ms)
 *	TAKE     u64 handle u64 seen: take the next epoch of the lease region the handle opens,
 *	         if its epoch is still seen (ckpt_epoch_take()); binds the session to it
 *	BIND     name[64] u64 epoch: bind the session to epoch of lease region name
 *	         (ckpt_epoch_bind())
 *	WATCH    u64 handle u32 timeout_ms u32 0: answer once the region's lease is free, or
 *	         with -ETIMEDOUT after timeout_ms (the server may answer sooner: it caps the
 *	         wait at half its idle timeout; the client asks again)
 *	replies to CREATE and OPEN: u64 handle, region, u8 is_pmem, 7 x u8 0, u64 rkey, u64 base
 *	reply to STAT: info (region, u8 is_pmem, u8 lease_alive, 6 x u8 0, u64 head, u64 tail)
 *	reply to LIST: u32 total u32 n, n x info
 *	reply to TAKE: u64 epoch (nonzero: the epoch taken, seen + 1)
 *	other replies: (empty)
 *	region: name[64] owner[64] u32 mode u32 index u64 offset u64 size u32 slot_size u32 0
 *	        u64 nslots u64 ring_off u64 ring_size u64 created_ns u64 lease_ns u64 epoch
 *
 * A session bound to an epoch (TAKE, BIND) that another session has since overtaken is
 * fenced: every request it makes is answered -ESTALE, and its remote keys are withdrawn.
 */
#ifndef CKPT_PROTO_H
#define CKPT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "holdfast/ckpt.h"

/* 2: region descriptions carry the fencing epoch; TAKE, BIND, WATCH. 3: WELCOME says the
 * server's ofi_rxm buffer size (it was a zero field). A peer of another version is refused
 * at its first frame (ckpt_proto_frame_len()), never misread. */
#define CKPT_PROTO_VERSION 3
#define CKPT_PROTO_HDR_LEN 16
#define CKPT_PROTO_NONCE   32
#define CKPT_PROTO_MAC	   32
#define CKPT_PROTO_EP_MAX  256 /**< libfabric endpoint names we accept */

/*
 * ofi_rxm's buffer size (FI_OFI_RXM_BUFFER_SIZE, libfabric's default 16 KiB), which client
 * and server set alike unless the operator set it: the two ends of a connection must agree
 * (a client with 4 KiB against a server with 16 KiB never completes a write). The data path
 * is RMA, which these buffers do not carry; at 16 KiB each endpoint zeroed two pools of
 * 1024 of them (17 MB each: ~100 ms of a start over tcp, and pages a killed process's
 * kernel tears down before its sockets close). docs/checkpoint.md, "Start-up time".
 */
#define CKPT_OFI_RXM_BUFFER_SIZE "2048"

/** The ofi_rxm buffer size this process's libfabric uses or will use: FI_OFI_RXM_BUFFER_SIZE
 *  as the operator set it, else CKPT_OFI_RXM_BUFFER_SIZE (what client and server set). */
uint32_t ckpt_proto_rxm_buffer(void);
#define CKPT_PROTO_REGION_LEN 208
#define CKPT_PROTO_INFO_LEN   232
#define CKPT_PROTO_LIST_MAX   PMU_MAX_REGIONS
#define CKPT_PROTO_BODY_MAX   (8 + CKPT_PROTO_LIST_MAX * CKPT_PROTO_INFO_LEN)
#define CKPT_PROTO_FRAME_MAX  (CKPT_PROTO_HDR_LEN + CKPT_PROTO_BODY_MAX)

#define CKPT_PROTO_AUTH_CTX "hf-ckpt-auth-v1"
#define CKPT_PROTO_SRV_CTX  "hf-ckpt-srv-v1"

/** Message types; a reply is its request's type with CKPT_MSG_REPLY set. */
enum ckpt_msg_type {
	CKPT_MSG_CHALLENGE = 1,
	CKPT_MSG_HELLO = 2,
	CKPT_MSG_WELCOME = 3,
	CKPT_MSG_CREATE = 16,
	CKPT_MSG_OPEN = 17,
	CKPT_MSG_CLOSE = 18,
	CKPT_MSG_DELETE = 19,
	CKPT_MSG_LIST = 20,
	CKPT_MSG_STAT = 21,
	CKPT_MSG_PERSIST = 22,
	CKPT_MSG_LEASE = 23,
	CKPT_MSG_PING = 24,
	CKPT_MSG_TAKE = 25,
	CKPT_MSG_BIND = 26,
	CKPT_MSG_WATCH = 27,
	CKPT_MSG_REPLY = 0x8000,
};

/** Which messages a receiver takes, by where it stands in the session. */
#define CKPT_ACCEPT_CHALLENGE (1u << 0) /**< client, first */
#define CKPT_ACCEPT_HELLO     (1u << 1) /**< server, before authentication */
#define CKPT_ACCEPT_WELCOME   (1u << 2) /**< client, after its HELLO */
#define CKPT_ACCEPT_REQUEST   (1u << 3) /**< server, once authenticated */
#define CKPT_ACCEPT_REPLY     (1u << 4) /**< client, once authenticated */

/** A frame's header, as ckpt_proto_frame_len() read and checked it. */
struct ckpt_proto_hdr {
	uint32_t body_len;
	uint16_t type;
	uint32_t seq;
	int32_t status;
};

/** A decoded message. Which union member is valid follows from type (and status). */
struct ckpt_msg {
	uint16_t type;
	uint32_t seq;
	int32_t status;
	union {
		struct {
			uint8_t nonce[CKPT_PROTO_NONCE];
		} challenge;
		struct {
			char tenant[PMU_NAME_MAX];
			uint8_t nonce[CKPT_PROTO_NONCE];
			uint8_t mac[CKPT_PROTO_MAC];
		} hello;
		struct {
			uint8_t mac[CKPT_PROTO_MAC];
			uint32_t ep_len;
			/* The server's ofi_rxm buffer size for this listener
			 * (ckpt_proto_rxm_buffer), 0 on a listener whose provider has no rxm (shm).
			 */
			uint32_t rxm_buffer;
			uint8_t ep[CKPT_PROTO_EP_MAX];
		} welcome;
		struct {
			char name[PMU_NAME_MAX];
			uint32_t mode;
			uint32_t slot_size;
			uint64_t size;
			uint64_t ring_size;
		} create;
		struct {
			char name[PMU_NAME_MAX];
		} name; /* OPEN, DELETE, STAT */
		struct {
			uint64_t handle;
		} close;
		struct {
			uint64_t handle;
			uint64_t off;
			uint64_t len;
			uint64_t head; /* then store this ring head and persist it; 0: none */
		} persist;
		struct {
			uint64_t handle;
			uint32_t ttl_ms;
		} lease;
		struct {
			uint64_t handle;
			uint64_t seen;
		} take;
		struct {
			char name[PMU_NAME_MAX];
			uint64_t epoch;
		} bind;
		struct {
			uint64_t handle;
			uint32_t timeout_ms;
		} watch;
		struct {
			uint64_t epoch;
		} taken; /* reply to TAKE */
		struct {
			uint64_t handle;
			struct pmu_region_info info;
			uint8_t is_pmem;
			uint64_t rkey;
			uint64_t base;
		} opened; /* replies to CREATE and OPEN */
		struct ckpt_region_info stat;
		struct {
			uint32_t total; /* regions the tenant has */
			uint32_t n;	/* carried in this message */
			/* encode only: the n entries to send (decode stores them in the room
			 * its caller passes, never through this pointer) */
			struct ckpt_region_info *items;
		} list;
	} u;
};

/**
 * Encode @p m into @p buf (header and body).
 * @return bytes written, -EINVAL (a field out of range, e.g. a name not NUL-terminated or an
 *   endpoint name too long), or -ENOSPC (@p cap too small).
 */
int ckpt_proto_encode(const struct ckpt_msg *m, uint8_t *buf, size_t cap);

/**
 * Validate a frame header and tell how long the frame is. @p h (optional) receives the
 * header's fields.
 * @return total frame bytes (header included), or -EINVAL (wrong version, unknown type, a
 *   type not in @p accept, a body longer than the type's layout allows, a status out of
 *   range or on a message that carries none).
 */
int ckpt_proto_frame_len(const uint8_t hdr[CKPT_PROTO_HDR_LEN], unsigned int accept,
			 struct ckpt_proto_hdr *h);

/**
 * Decode and validate one whole frame of @p len bytes whose type is in @p accept. @p m is
 * zeroed first. The entries of a LIST reply go to @p items, at most @p cap of them;
 * entries beyond are checked but not stored (@p items may be NULL with @p cap 0).
 * @return 0, or -EINVAL when anything does not check (@p m is then unspecified, and at
 *   most @p cap entries of @p items were written).
 */
int ckpt_proto_decode(const uint8_t *buf, size_t len, unsigned int accept, struct ckpt_msg *m,
		      struct ckpt_region_info *items, uint32_t cap);

/** HMAC the client sends in HELLO. */
void ckpt_proto_client_mac(const uint8_t *secret, size_t secret_len,
			   const uint8_t srv_nonce[CKPT_PROTO_NONCE],
			   const uint8_t cli_nonce[CKPT_PROTO_NONCE], const char *tenant,
			   uint8_t mac[CKPT_PROTO_MAC]);

/** HMAC the server proves itself with in WELCOME. */
void ckpt_proto_server_mac(const uint8_t *secret, size_t secret_len,
			   const uint8_t cli_nonce[CKPT_PROTO_NONCE],
			   const uint8_t srv_nonce[CKPT_PROTO_NONCE], uint8_t mac[CKPT_PROTO_MAC]);

/** Constant-time check of a client's HELLO mac. @return 0 or -EACCES. */
int ckpt_proto_client_verify(const uint8_t *secret, size_t secret_len,
			     const uint8_t srv_nonce[CKPT_PROTO_NONCE],
			     const uint8_t cli_nonce[CKPT_PROTO_NONCE], const char *tenant,
			     const uint8_t mac[CKPT_PROTO_MAC]);

/** Constant-time check of the server's WELCOME mac. @return 0 or -EACCES. */
int ckpt_proto_server_verify(const uint8_t *secret, size_t secret_len,
			     const uint8_t cli_nonce[CKPT_PROTO_NONCE],
			     const uint8_t srv_nonce[CKPT_PROTO_NONCE],
			     const uint8_t mac[CKPT_PROTO_MAC]);

/**
 * Send all @p len bytes on a stream socket, waiting at most @p timeout_ms in total.
 * @return 0, -ETIMEDOUT, -ECONNRESET (peer gone), or -errno of send(2).
 */
int ckpt_proto_send_all(int fd, const void *buf, size_t len, int timeout_ms);

/**
 * Receive one whole frame into @p buf (at least CKPT_PROTO_FRAME_MAX bytes), waiting at
 * most @p timeout_ms in total (negative: forever), and decode it into @p m. Only types in
 * @p accept are taken; a LIST reply's entries are checked, not stored.
 * @return 0, -ETIMEDOUT, -ECONNRESET (peer closed), -EINVAL (malformed, or a type not
 *   accepted: the frame's body is then not read), or -errno.
 */
int ckpt_proto_recv_msg(int fd, uint8_t *buf, unsigned int accept, struct ckpt_msg *m,
			int timeout_ms);

/** Encode @p m and send it. @return as ckpt_proto_send_all(), or the encoder's error. */
int ckpt_proto_send_msg(int fd, const struct ckpt_msg *m, int timeout_ms);

/**
 * Parse the host:port of an ofi+tcp:// or ofi+verbs:// target ("[v6addr]:port" allowed)
 * into @p host (NUL-terminated) and @p port. @return 0 or -EINVAL.
 */
int ckpt_proto_split_hostport(const char *where, char *host, size_t host_cap, char *port,
			      size_t port_cap);

/** Fill an abstract AF_UNIX address for an ofi+shm:// name. @return socklen, or -EINVAL. */
struct sockaddr_un;
int ckpt_proto_shm_addr(const char *name, struct sockaddr_un *sun);

#endif /* CKPT_PROTO_H */
