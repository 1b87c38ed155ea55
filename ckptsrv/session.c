/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv sessions: one thread per authenticated control connection, reading requests and
 * sending replies (ckptsrv.c answers them). A session that sends nothing for idle-timeout-ms
 * is closed and its handles released: a client that went away without a word (a host that
 * died, a cable pulled) would otherwise hold its registrations and its tenant's session
 * slots for good. Clients that have nothing to say send a PING (lib/ckpt/ofi_ctrl.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG		 "ckptsrv"
#define REPLY_TIMEOUT_MS 5000

/* Why the session ended, for its last log line. */
enum session_end {
	END_GONE,      /* the client closed, or the server stops */
	END_IDLE,      /* nothing came for the idle timeout */
	END_MALFORMED, /* a message that does not decode, or one out of place */
	END_ERROR,     /* the socket failed */
	END_NOT_TAKEN, /* a reply the client did not take */
};

static enum session_end serve(struct ckptsrv_session *s, int *err)
{
	const struct ckptsrv_config *cfg = &s->l->srv->cfg;
	struct ckpt_msg req = {0}, rep = {0};
	int ret;

	for (;;) {
		/* Requests only: replies and authentication messages are refused by type. */
		ret = ckpt_proto_recv_msg(s->fd, s->buf, CKPT_ACCEPT_REQUEST, &req,
					  (int)cfg->idle_timeout_ms);
		*err = ret;
		if (ret == -ECONNRESET)
			return END_GONE;
		if (ret == -ETIMEDOUT)
			return END_IDLE;
		if (ret == -EINVAL)
			return END_MALFORMED;
		if (ret < 0)
			return END_ERROR;
		memset(&rep, 0, sizeof(rep));
		rep.type = req.type | CKPT_MSG_REPLY;
		rep.seq = req.seq;
		rep.status = ckptsrv_dispatch(s, &req, &rep);
		/* A missing region and a long poll that ran its course are answers, not faults. */
		if (rep.status < 0 && rep.status != -ENOENT &&
		    !(req.type == CKPT_MSG_WATCH && rep.status == -ETIMEDOUT))
			CKPT_LOG_LIMITED(CKPT_LOG_INFO, LOG, "%s from tenant %s at %s: %s",
					 ckptsrv_type_name(req.type), s->tenant, s->peer,
					 strerror(-rep.status));
		ret = ckpt_proto_send_msg(s->fd, &rep, REPLY_TIMEOUT_MS);
		if (rep.type == (CKPT_MSG_LIST | CKPT_MSG_REPLY))
			free(rep.u.list.items);
		if (ret < 0) {
			*err = ret;
			return END_NOT_TAKEN;
		}
	}
}

static void *session_main(void *arg)
{
	struct ckptsrv_session *s = arg;
	unsigned int idle_ms = s->l->srv->cfg.idle_timeout_ms, dropped;
	char tenant[PMU_NAME_MAX], peer[sizeof(s->peer)];
	enum session_end why;
	int err = 0;

	why = serve(s, &err);
	snprintf(tenant, sizeof(tenant), "%s", s->tenant);
	snprintf(peer, sizeof(peer), "%s", s->peer);
	dropped = ckptsrv_session_end(s);
	switch (why) {
	case END_GONE:
		ckpt_log(CKPT_LOG_INFO, LOG,
			 "tenant %s from %s disconnected (%u region handle(s) released)", tenant,
			 peer, dropped);
		break;
	case END_IDLE:
		CKPT_LOG_LIMITED(CKPT_LOG_NOTICE, LOG,
				 "tenant %s from %s sent nothing for %u ms (idle-timeout-ms); "
				 "session closed, %u region handle(s) released",
				 tenant, peer, idle_ms, dropped);
		break;
	case END_MALFORMED:
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "tenant %s from %s: a malformed message or one out of place on "
				 "the control channel; closed it, %u region handle(s) released",
				 tenant, peer, dropped);
		break;
	case END_ERROR:
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "tenant %s from %s: %s on the control channel; closed it, %u "
				 "region handle(s) released",
				 tenant, peer, strerror(-err), dropped);
		break;
	case END_NOT_TAKEN:
		CKPT_LOG_LIMITED(CKPT_LOG_WARNING, LOG,
				 "tenant %s from %s: reply not taken (%s); closed the session, %u "
				 "region handle(s) released",
				 tenant, peer, strerror(-err), dropped);
		break;
	}
	return NULL;
}

int ckptsrv_session_start(struct ckptsrv_session *s)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, session_main, s);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: no thread for tenant %s from %s: %s", s->l->url,
			 s->tenant, s->peer, strerror(ret));
		ckptsrv_session_end(s);
		return -ret;
	}
	return 0;
}
