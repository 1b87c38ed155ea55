/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The handshake that opens an ofi+* client's control socket, before any call (proto.h,
 * "Session"; docs/checkpoint.md, "Security"): the server's CHALLENGE nonce; our HELLO with
 * the tenant, a fresh nonce and HMAC-SHA256(secret, "hf-ckpt-auth-v1" | server nonce |
 * client nonce | tenant); the server's WELCOME, whose HMAC over both nonces proves that it
 * knows the secret too (compared in constant time), and which names the server's libfabric
 * endpoint. The secret never crosses the wire.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "ofi_internal.h"

int ckpt_ofi_authenticate(struct ckpt_client *c, uint8_t *ep, size_t *ep_len)
{
	struct ofi_client *o = oc(c);
	const char *tenant = c->opts.tenant;
	uint8_t srv_nonce[CKPT_PROTO_NONCE];
	struct ckpt_msg m = {0};
	int ret;

	if (strlen(tenant) == 0 || strlen(tenant) >= PMU_NAME_MAX) {
		ckpt_log(CKPT_LOG_ERR, LOG, "tenant name must be 1..%d bytes", PMU_NAME_MAX - 1);
		return -EINVAL;
	}
	ret = ckpt_proto_recv_msg(o->fd, o->rx, CKPT_ACCEPT_CHALLENGE, &m, (int)c->opts.timeout_ms);
	if (ret < 0)
		goto err_proto;
	memcpy(srv_nonce, m.u.challenge.nonce, sizeof(srv_nonce));
	memset(&m, 0, sizeof(m));
	m.type = CKPT_MSG_HELLO;
	strcpy(m.u.hello.tenant, tenant);
	randombytes_buf(m.u.hello.nonce, CKPT_PROTO_NONCE);
	ckpt_proto_client_mac(c->secret, c->opts.secret_len, srv_nonce, m.u.hello.nonce, tenant,
			      m.u.hello.mac);
	{
		uint8_t cli_nonce[CKPT_PROTO_NONCE];

		memcpy(cli_nonce, m.u.hello.nonce, sizeof(cli_nonce));
		ret = ckpt_proto_send_msg(o->fd, &m, (int)c->opts.timeout_ms);
		if (ret == 0)
			ret = ckpt_proto_recv_msg(o->fd, o->rx, CKPT_ACCEPT_WELCOME, &m,
						  (int)c->opts.timeout_ms);
		if (ret < 0)
			goto err_proto;
		if (m.status != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: server refused tenant %s: %s", c->target,
				 tenant, strerror(-m.status));
			return m.status == -EACCES ? -EACCES : m.status;
		}
		if (ckpt_proto_server_verify(c->secret, c->opts.secret_len, cli_nonce, srv_nonce,
					     m.u.welcome.mac) != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG,
				 "%s: the server could not prove it knows tenant %s's secret",
				 c->target, tenant);
			return -EACCES;
		}
	}
	/* ofi_rxm refuses a connection between two buffer sizes (its eager limits differ), and
	 * the client would only see its first write never complete. */
	if (m.u.welcome.rxm_buffer != 0 && strstr(oc(c)->prov, "ofi_rxm") != NULL &&
	    m.u.welcome.rxm_buffer != ckpt_proto_rxm_buffer()) {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: the server's ofi_rxm buffer size is %u, this process's %u: set "
			 "FI_OFI_RXM_BUFFER_SIZE alike for both (or for neither)",
			 c->target, m.u.welcome.rxm_buffer, ckpt_proto_rxm_buffer());
		return -EPROTONOSUPPORT;
	}
	memcpy(ep, m.u.welcome.ep, m.u.welcome.ep_len);
	*ep_len = m.u.welcome.ep_len;
	return 0;

err_proto:
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: authentication exchange failed: %s", c->target,
		 ret == -EPROTO || ret == -EINVAL ? "unexpected message" : strerror(-ret));
	return ret == -EINVAL ? -EPROTO : ret;
}
