/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ckptsrv listeners: per --listen URL, a control socket (TCP, or abstract AF_UNIX for shm)
 * and one libfabric RDM endpoint whose registered regions clients read and write.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <sodium.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define LOG	   "ckptsrv"
#define KEY_TRIES  16
#define CQ_WAIT_MS 100
#define ACTIVE_MS  2000 /* a listener is busy this long after its last control request */
/* Connections the kernel queues for the accept thread: a flood that overflows the queue
 * drops SYNs, and a tenant's dropped SYN waits a second for its retransmission. */
#define BACKLOG 1024

static int tcp_listen(struct ckptsrv_listener *l, const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL, *ai;
	int fd = -1, ret, one = 1;

	ret = getaddrinfo(host, port, &hints, &res);
	if (ret != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: cannot resolve %s: %s", l->url, host,
			 gai_strerror(ret));
		return -EINVAL;
	}
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		/* A restarted server must rebind at once, not after TIME_WAIT. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, BACKLOG) == 0)
			break;
		ret = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: cannot listen on %s:%s: %s", l->url, host, port,
			 strerror(-ret));
		return ret;
	}
	l->lfd = fd;
	return 0;
}

static int shm_listen(struct ckptsrv_listener *l, const char *name)
{
	struct sockaddr_un sun;
	int len = ckpt_proto_shm_addr(name, &sun), fd, ret;

	if (len < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: bad shm name \"%s\"", l->url, name);
		return len;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, (socklen_t)len) < 0 || listen(fd, BACKLOG) < 0) {
		ret = -errno;
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: cannot listen on @holdfast-ckptsrv/%s: %s", l->url,
			 name, strerror(errno));
		close(fd);
		return ret;
	}
	l->lfd = fd;
	return 0;
}

static int fab_err(struct ckptsrv_listener *l, const char *what, int ret)
{
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: %s failed: %s", l->url, what, fi_strerror(-ret));
	return ret == -FI_ENODATA ? -ENODATA : (ret < 0 && ret > -4096 ? ret : -EIO);
}

static int open_endpoint(struct ckptsrv_listener *l, const char *node)
{
	struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_DATA, .wait_obj = FI_WAIT_UNSPEC};
	struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
	struct fi_info *hints = fi_allocinfo();
	size_t len = sizeof(l->epname);
	int ret;

	if (hints == NULL)
		return -ENOMEM;
	hints->caps = FI_RMA | FI_REMOTE_READ | FI_REMOTE_WRITE;
	hints->ep_attr->type = FI_EP_RDM;
	hints->fabric_attr->prov_name = strdup(l->prov);
	/*
	 * What this server copes with: virtual or offset addressing, and for verbs keys the
	 * provider picks. Requested keys are wanted everywhere else (random per open).
	 */
	hints->domain_attr->mr_mode = FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_LOCAL;
	if (l->kind == CKPTSRV_VERBS)
		hints->domain_attr->mr_mode |= FI_MR_PROV_KEY;
	/* Sessions register memory while the progress thread polls the CQ. */
	hints->domain_attr->threading = FI_THREAD_SAFE;
	hints->domain_attr->data_progress = FI_PROGRESS_MANUAL;
	ret = fi_getinfo(FI_VERSION(1, 17), node, NULL, node != NULL ? FI_SOURCE : 0, hints,
			 &l->info);
	fi_freeinfo(hints);
	if (ret != 0) {
		if (l->kind == CKPTSRV_VERBS)
			ckpt_log(CKPT_LOG_ERR, LOG,
				 "%s: libfabric has no usable verbs;ofi_rxm provider here (no RDMA "
				 "device or rdma-core driver?): %s",
				 l->url, fi_strerror(-ret));
		else
			ckpt_log(CKPT_LOG_ERR, LOG, "%s: libfabric provider %s unavailable: %s",
				 l->url, l->prov, fi_strerror(-ret));
		return ret == -FI_ENODATA ? -ENODATA : -EIO;
	}
	l->virt_addr = (l->info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
	l->prov_key = (l->info->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
	ret = fi_fabric(l->info->fabric_attr, &l->fabric, NULL);
	if (ret != 0)
		return fab_err(l, "fi_fabric", ret);
	ret = fi_domain(l->fabric, l->info, &l->domain, NULL);
	if (ret != 0)
		return fab_err(l, "fi_domain", ret);
	ret = fi_av_open(l->domain, &av_attr, &l->av, NULL);
	if (ret != 0)
		return fab_err(l, "fi_av_open", ret);
	/*
	 * shm's CQ accepts a wait object, but its fi_cq_sread spins in sched_yield and never
	 * returns on the timeout (libfabric 1.17), so shm polls with naps instead.
	 */
	if (l->kind == CKPTSRV_SHM)
		cq_attr.wait_obj = FI_WAIT_NONE;
	ret = fi_cq_open(l->domain, &cq_attr, &l->cq, NULL);
	l->cq_wait = ret == 0 && cq_attr.wait_obj != FI_WAIT_NONE;
	if (ret != 0) {
		/* No wait object on this provider: the progress thread polls and naps. */
		cq_attr.wait_obj = FI_WAIT_NONE;
		ret = fi_cq_open(l->domain, &cq_attr, &l->cq, NULL);
		if (ret != 0)
			return fab_err(l, "fi_cq_open", ret);
	}
	ret = fi_endpoint(l->domain, l->info, &l->ep, NULL);
	if (ret != 0)
		return fab_err(l, "fi_endpoint", ret);
	ret = fi_ep_bind(l->ep, &l->av->fid, 0);
	if (ret != 0)
		return fab_err(l, "fi_ep_bind(av)", ret);
	ret = fi_ep_bind(l->ep, &l->cq->fid, FI_TRANSMIT | FI_RECV);
	if (ret != 0)
		return fab_err(l, "fi_ep_bind(cq)", ret);
	ret = fi_enable(l->ep);
	if (ret != 0)
		return fab_err(l, "fi_enable", ret);
	ret = fi_getname(&l->ep->fid, l->epname, &len);
	if (ret != 0)
		return fab_err(l, "fi_getname", ret);
	l->epname_len = (uint32_t)len;
	return 0;
}

int ckptsrv_listener_open(struct ckptsrv *srv, struct ckptsrv_listener *l, const char *url)
{
	char host[CKPTSRV_URL_MAX], port[16];
	const char *where;
	int ret;

	memset(l, 0, sizeof(*l));
	l->srv = srv;
	l->lfd = -1;
	snprintf(l->url, sizeof(l->url), "%s", url);
	if (strncmp(url, "ofi+tcp://", 10) == 0) {
		l->kind = CKPTSRV_TCP;
		l->prov = "tcp;ofi_rxm";
		where = url + 10;
	} else if (strncmp(url, "ofi+verbs://", 12) == 0) {
		l->kind = CKPTSRV_VERBS;
		l->prov = "verbs;ofi_rxm";
		where = url + 12;
	} else if (strncmp(url, "ofi+shm://", 10) == 0) {
		l->kind = CKPTSRV_SHM;
		l->prov = "shm";
		where = url + 10;
	} else {
		ckpt_log(CKPT_LOG_ERR, LOG,
			 "%s: unknown scheme (ofi+tcp://host:port, ofi+verbs://host:port or "
			 "ofi+shm://name)",
			 url);
		return -EPROTONOSUPPORT;
	}
	if (l->kind == CKPTSRV_SHM) {
		if (!srv->cfg.allow_shm) {
			ckpt_log(CKPT_LOG_ERR, LOG,
				 "%s: refused: libfabric shm does not check remote keys, so any "
				 "local process could write any region; pass --allow-shm for "
				 "trusted same-host use",
				 url);
			return -EPERM;
		}
		ckpt_log(CKPT_LOG_WARNING, LOG,
			 "%s: SHM LISTENER ENABLED: the shm provider does NOT check remote keys; "
			 "every process on this host that can reach it can read and write every "
			 "open region. Trusted same-host use only.",
			 url);
		ret = shm_listen(l, where);
		if (ret < 0)
			return ret;
		return open_endpoint(l, NULL);
	}
	if (ckpt_proto_split_hostport(where, host, sizeof(host), port, sizeof(port)) < 0) {
		ckpt_log(CKPT_LOG_ERR, LOG, "%s: expected host:port", url);
		return -EINVAL;
	}
	/* The endpoint first: a missing provider must fail before we accept anyone. */
	ret = open_endpoint(l, host);
	if (ret < 0)
		return ret;
	return tcp_listen(l, host, port);
}

int ckptsrv_mr_reg(struct ckptsrv_listener *l, void *base, uint64_t len, struct fid_mr **mr,
		   uint64_t *key)
{
	int ret = -FI_ENOKEY;

	for (int i = 0; i < KEY_TRIES && ret == -FI_ENOKEY; i++) {
		uint64_t want;

		randombytes_buf(&want, sizeof(want));
		ret = fi_mr_reg(l->domain, base, len, FI_REMOTE_READ | FI_REMOTE_WRITE, 0, want, 0,
				mr, NULL);
		if (ret == 0 && (l->info->domain_attr->mr_mode & FI_MR_ENDPOINT)) {
			ret = fi_mr_bind(*mr, &l->ep->fid, 0);
			if (ret == 0)
				ret = fi_mr_enable(*mr);
			if (ret != 0) {
				fi_close(&(*mr)->fid);
				*mr = NULL;
			}
		}
		if (ret == 0) {
			*key = l->prov_key ? fi_mr_key(*mr) : want;
			return 0;
		}
	}
	ckpt_log(CKPT_LOG_ERR, LOG, "%s: fi_mr_reg of %llu bytes failed: %s", l->url,
		 (unsigned long long)len, fi_strerror(-ret));
	return ret == -FI_ENOKEY ? -EADDRINUSE : (ret < 0 && ret > -4096 ? ret : -EIO);
}

/*
 * data_progress is FI_PROGRESS_MANUAL on rxm and shm: incoming writes and reads are only
 * applied while someone reads this CQ. Nothing is ever posted here, so entries are rare
 * (errors from peers that went away).
 */
static void *progress_main(void *arg)
{
	struct ckptsrv_listener *l = arg;
	const struct timespec nap = {.tv_nsec = 20 * 1000};
	const struct timespec long_nap = {.tv_nsec = 500 * 1000};

	while (!l->srv->stop) {
		struct fi_cq_data_entry e[16];
		ssize_t n;

		__atomic_store_n(&l->progress_beat, ckptsrv_now_ms(), __ATOMIC_RELAXED);
		if (l->cq_wait)
			n = fi_cq_sread(l->cq, e, 16, NULL, CQ_WAIT_MS);
		else
			n = fi_cq_read(l->cq, e, 16);
		if (n > 0)
			continue;
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry err = {0};

			if (fi_cq_readerr(l->cq, &err, 0) > 0)
				ckpt_log(CKPT_LOG_INFO, LOG, "%s: completion error: %s", l->url,
					 fi_strerror(err.err));
			continue;
		}
		if (l->cq_wait && n != -FI_EAGAIN && n != -FI_ETIMEDOUT && n != -FI_EINTR) {
			ckpt_log(CKPT_LOG_NOTICE, LOG,
				 "%s: fi_cq_sread: %s; polling with naps from now on", l->url,
				 fi_strerror((int)-n));
			l->cq_wait = false;
			continue;
		}
		if (!l->cq_wait) {
			/*
			 * Short naps while a client spoke recently, longer once all went quiet.
			 * Incoming RMA produces no completion here, so "recently" is measured
			 * on the control channel (every flush ends in a PERSIST).
			 */
			uint64_t quiet =
				ckptsrv_now_ms() - __atomic_load_n(&l->active_ms, __ATOMIC_RELAXED);

			nanosleep(quiet < ACTIVE_MS ? &nap : &long_nap, NULL);
		}
	}
	return NULL;
}

int ckptsrv_listener_start(struct ckptsrv_listener *l)
{
	int ret;

	l->progress_beat = ckptsrv_now_ms();
	ret = pthread_create(&l->progress_thr, NULL, progress_main, l);
	if (ret != 0)
		return -ret;
	ret = pthread_create(&l->accept_thr, NULL, ckptsrv_accept_main, l);
	if (ret != 0) {
		l->srv->stop = true;
		pthread_join(l->progress_thr, NULL);
		return -ret;
	}
	l->threads_started = true;
	ckpt_log(CKPT_LOG_NOTICE, LOG, "listening on %s (provider %s, %s addressing, %s)", l->url,
		 l->info->fabric_attr->prov_name, l->virt_addr ? "virtual" : "offset",
		 l->cq_wait ? "progress thread waits on the CQ" : "progress thread polls");
	return 0;
}

void ckptsrv_listener_close(struct ckptsrv_listener *l)
{
	if (l->threads_started) {
		pthread_join(l->accept_thr, NULL);
		pthread_join(l->progress_thr, NULL);
		l->threads_started = false;
	}
	if (l->lfd >= 0)
		close(l->lfd);
	l->lfd = -1;
	if (l->ep != NULL)
		fi_close(&l->ep->fid);
	if (l->cq != NULL)
		fi_close(&l->cq->fid);
	if (l->av != NULL)
		fi_close(&l->av->fid);
	if (l->domain != NULL)
		fi_close(&l->domain->fid);
	if (l->fabric != NULL)
		fi_close(&l->fabric->fid);
	if (l->info != NULL)
		fi_freeinfo(l->info);
	l->ep = NULL;
	l->cq = NULL;
	l->av = NULL;
	l->domain = NULL;
	l->fabric = NULL;
	l->info = NULL;
}
