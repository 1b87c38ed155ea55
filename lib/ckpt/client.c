/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The checkpoint client core: targets, regions, tickets, slots, rings and restore reads.
 * Byte backends (pmem.c; ofi.c and the ofi_*.c files under it) only move bytes: for their
 * targets, everything about where a record goes and which copy wins is decided here, once. A
 * record backend (a redundancy group, group/) is handed each encoded record and decides both
 * over its members, which are regions of byte backends again.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "ckpt_internal.h"

#define LOG_COMPONENT	   "ckpt.client"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_INFLIGHT   64
#define READ_CHUNK	   (4u << 20)
/*
 * How far ahead of its decode a state scan asks for slots: about 4 KB, the memory of a few
 * hundred nanoseconds at the rate the decode takes pairs (a cold slot pair cost the scan a
 * whole memory wait each, ~40 % of a 1 M restore).
 */
#define SCAN_PREFETCH_BYTES 4096u

static const struct {
	const char *prefix;
	const struct ckpt_byte_ops *bytes;
	const struct ckpt_record_ops *records;
} schemes[] = {
	{"pmem:", &ckpt_pmem_ops, NULL},	 {"ofi+tcp://", &ckpt_ofi_tcp_ops, NULL},
	{"ofi+shm://", &ckpt_ofi_shm_ops, NULL}, {"ofi+verbs://", &ckpt_ofi_verbs_ops, NULL},
	{"group:", NULL, &ckpt_group_ops},
};

/* A unit test's byte backend (ckpt_test_scheme()). */
static const char *test_prefix;
static const struct ckpt_byte_ops *test_ops;

void ckpt_test_scheme(const char *prefix, const struct ckpt_byte_ops *ops)
{
	test_prefix = prefix;
	test_ops = ops;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ckpt_client *ckpt_connect(const char *target, const struct ckpt_client_opts *opts)
{
	const struct ckpt_byte_ops *bytes = NULL;
	const struct ckpt_record_ops *records = NULL;
	const char *where = NULL;
	struct ckpt_client *c;
	int rc;

	if (target == NULL) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);

		if (strncmp(target, schemes[i].prefix, n) == 0) {
			bytes = schemes[i].bytes;
			records = schemes[i].records;
			where = target + n;
			break;
		}
	}
	if (where == NULL && test_ops != NULL &&
	    strncmp(target, test_prefix, strlen(test_prefix)) == 0) {
		bytes = test_ops;
		where = target + strlen(test_prefix);
	}
	if (where == NULL) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: unknown target (pmem:/path, ofi+tcp://host:port, ofi+shm://name, "
			 "ofi+verbs://host:port, group:CODE=T1,T2,...)",
			 target);
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	if (*where == '\0') {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: target names no file or address",
			 target);
		errno = EINVAL;
		return NULL;
	}
	if (opts && opts->secret_len > sizeof(((struct ckpt_client *)0)->secret)) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "secret longer than %zu bytes",
			 sizeof(((struct ckpt_client *)0)->secret));
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ops = bytes != NULL ? &bytes->target : &records->target;
	c->bytes = bytes;
	c->records = records;
	c->target = strdup(target);
	if (c->target == NULL) {
		rc = -ENOMEM;
		goto err_free;
	}
	if (opts)
		c->opts = *opts;
	if (c->opts.secret_len) {
		memcpy(c->secret, opts->secret, opts->secret_len);
		c->opts.secret = c->secret;
	}
	if (c->opts.tenant == NULL)
		c->opts.tenant = "default";
	if (c->opts.timeout_ms == 0)
		c->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (c->opts.max_inflight == 0)
		c->opts.max_inflight = DEFAULT_INFLIGHT;
	rc = c->ops->connect(c, where);
	if (rc)
		goto err_free_target;
	return c;

err_free_target:
	free(c->target);
err_free:
	memset(c->secret, 0, sizeof(c->secret));
	free(c);
	errno = -rc;
	return NULL;
}

void ckpt_disconnect(struct ckpt_client **cp)
{
	struct ckpt_client *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	while (c->regions != NULL) {
		struct ckpt_region *r = c->regions;

		ckpt_region_close(&r);
	}
	c->ops->disconnect(c);
	free(c->target);
	memset(c->secret, 0, sizeof(c->secret));
	free(c);
	*cp = NULL;
}

const char *ckpt_target(const struct ckpt_client *c)
{
	return c->target;
}

static int read_word(struct ckpt_region *r, uint64_t off, uint64_t *out)
{
	if (r->control_only)
		return -EPERM;
	if (r->cl->bytes->map) {
		const uint64_t *p = r->cl->bytes->map(r, off, sizeof(*p));

		if (p == NULL)
			return -EINVAL; /* not inside the region its geometry describes */
		*out = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		return 0;
	}
	return r->cl->bytes->read(r, off, out, sizeof(*out));
}

/* Reads of a ring's two words before a pair that keeps tearing is called inconsistent. */
#define RING_WORDS_TRIES 8

/*
 * The ring's head and tail as the target holds them, checked against each other.
 *
 * They are two words 64 bytes apart, read one after the other while others may move them:
 * a producer the head, a consumer (a server's journal applier, a reader) the tail. Read
 * head first, a tail that moved past it meanwhile made a torn pair ("head 63952 and tail
 * 64400 are inconsistent") that failed a primary's lease renewal. The tail is read first:
 * it never passes the head, and the head only grows, so the pair read can hold a head
 * behind its tail no more. A span longer than the ring can still be seen (the ring went
 * round meanwhile), so a torn-looking pair is read again, a few times, before it is called
 * inconsistent; the older tail of a pair that checks only makes free space look smaller.
 */
static int ring_words(struct ckpt_region *r, uint64_t *head, uint64_t *tail)
{
	uint64_t h = 0, t = 0;

	for (int i = 0; i < RING_WORDS_TRIES; i++) {
		int rc = read_word(r, PMU_REGION_TAIL_OFF, &t);

		if (rc == 0)
			rc = read_word(r, PMU_REGION_HEAD_OFF, &h);
		if (rc)
			return rc;
		if (h >= t && h - t <= r->geo.ring_size) {
			*head = h;
			*tail = t;
			return 0;
		}
	}
	ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
		 "region %s: ring head %llu and tail %llu are inconsistent (read %d times); the "
		 "region is damaged or written by a client that does not follow the ring rules",
		 r->geo.name, (unsigned long long)h, (unsigned long long)t, RING_WORDS_TRIES);
	return -EINVAL;
}

static int ring_attach(struct ckpt_region *r)
{
	uint64_t head, tail;
	int rc;

	if (r->geo.ring_size == 0 || r->cl->records != NULL)
		return 0;
	rc = ring_words(r, &head, &tail);
	if (rc)
		return rc;
	r->ring.next = head;
	r->ring.head_written = head;
	r->ring.tail_seen = tail;
	return 0;
}

int ckpt_region_refresh(struct ckpt_region *r)
{
	if (r->posted != r->acked || r->ring.next != r->ring.head_written)
		return -EBUSY;
	if (r->cl->records != NULL)
		return r->cl->records->refresh(r);
	return ring_attach(r);
}

static int region_attach(struct ckpt_client *c, const struct pmu_region_params *p, const char *name,
			 bool control_only, struct ckpt_region **out)
{
	struct ckpt_region *r;
	int rc;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->cl = c;
	rc = p ? c->ops->create(c, p, r) : c->ops->open(c, name, r);
	if (rc)
		goto err_free;
	r->control_only = control_only;
	rc = control_only ? 0 : ring_attach(r);
	if (rc)
		goto err_close;
	r->next = c->regions;
	c->regions = r;
	*out = r;
	return 0;

err_close:
	c->ops->close(r);
err_free:
	free(r);
	return rc;
}

int ckpt_region_create(struct ckpt_client *c, const struct pmu_region_params *p,
		       struct ckpt_region **out)
{
	struct pmu_region_params q;
	struct pmu_region_info geo;
	int rc;

	if (c == NULL || p == NULL || out == NULL)
		return -EINVAL;
	q = *p;
	if (q.owner == NULL)
		q.owner = c->opts.tenant;
	rc = pmu_region_layout(&q, &geo);
	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "region %s: invalid parameters (name, owner, mode, size or slot size)",
			 p->name ? p->name : "(null)");
		return rc;
	}
	return region_attach(c, &q, NULL, false, out);
}

int ckpt_region_open(struct ckpt_client *c, const char *name, struct ckpt_region **out)
{
	if (c == NULL || name == NULL || out == NULL)
		return -EINVAL;
	return region_attach(c, NULL, name, false, out);
}

int ckpt_region_open_control(struct ckpt_client *c, const char *name, struct ckpt_region **out)
{
	if (c == NULL || name == NULL || out == NULL)
		return -EINVAL;
	return region_attach(c, NULL, name, true, out);
}

int ckpt_region_close(struct ckpt_region **rp)
{
	struct ckpt_region *r, **pp;
	int rc = 0;

	if (rp == NULL || *rp == NULL)
		return 0;
	r = *rp;
	if (r->posted > r->acked)
		rc = ckpt_sync(r);
	if (rc)
		ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
			 "region %s: closed with %llu writes not known durable: %s", r->geo.name,
			 (unsigned long long)(r->posted - r->acked), strerror(-rc));
	for (pp = &r->cl->regions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	r->cl->ops->close(r);
	free(r);
	*rp = NULL;
	return rc;
}

int ckpt_region_delete(struct ckpt_client *c, const char *name)
{
	if (c == NULL || name == NULL)
		return -EINVAL;
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next)
		if (strcmp(r->geo.name, name) == 0)
			return -EBUSY;
	return c->ops->remove(c, name);
}

int ckpt_region_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
{
	if (c == NULL)
		return -EINVAL;
	return c->ops->list(c, out, max);
}

int ckpt_region_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	if (c == NULL || name == NULL || out == NULL)
		return -EINVAL;
	return c->ops->stat(c, name, out);
}

const struct pmu_region_info *ckpt_region_geometry(const struct ckpt_region *r)
{
	return &r->geo;
}

uint32_t ckpt_slot_pairs(const struct ckpt_region *r)
{
	return (uint32_t)(r->geo.nslots / 2);
}

uint64_t ckpt_durable(const struct ckpt_region *r)
{
	return r->acked;
}

uint64_t ckpt_posted(const struct ckpt_region *r)
{
	return r->posted;
}

static int post(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	int rc = r->control_only ? -EPERM : r->cl->bytes->write(r, off, buf, len);

	if (rc == 0)
		r->posted++;
	return rc;
}

/* Place an encoded record in the ring; the head moves at the next flush. */
static int ring_append(struct ckpt_region *r, const uint8_t *buf, uint32_t len)
{
	const uint64_t size = r->geo.ring_size;
	uint64_t at = pmu_ring_place(size, r->ring.next, len);
	int rc;

	if (at + len - r->ring.tail_seen > size) {
		/* Looks full: the consumer may have cleared since we last looked. */
		uint64_t tail;

		rc = read_word(r, PMU_REGION_TAIL_OFF, &tail);
		if (rc)
			return rc;
		if (tail > r->ring.tail_seen && tail <= r->ring.next)
			r->ring.tail_seen = tail;
		if (at + len - r->ring.tail_seen > size)
			return -EAGAIN;
	}
	if (at != r->ring.next) {
		const uint32_t wrap = PMU_RING_WRAP_MAGIC;

		rc = post(r, r->geo.ring_off + r->ring.next % size, &wrap, sizeof(wrap));
		if (rc)
			return rc;
		r->ring.next = at;
	}
	rc = post(r, r->geo.ring_off + at % size, buf, len);
	if (rc)
		return rc;
	r->ring.next = at + len;
	return 0;
}

int ckpt_slot_write(struct ckpt_region *r, const struct ckpt_rec *rec, bool batched,
		    uint64_t *ticket)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	struct ckpt_rec copy;
	int len, rc;

	if (r->geo.mode != PMU_MODE_OVERWRITE || rec->slot_pair >= r->geo.nslots / 2)
		return -EINVAL;
	if (ckpt_rec_size(rec->payload_len) > r->geo.slot_size)
		return -EINVAL;
	copy = *rec;
	len = ckpt_rec_encode(&copy, buf, sizeof(buf));
	if (len < 0)
		return len;
	if (r->cl->records != NULL) {
		rc = r->cl->records->put(r, buf, (uint32_t)len);
		if (rc == 0)
			r->posted++;
	} else if (batched && r->cl->bytes->applies_journal && r->geo.ring_size != 0) {
		rc = ring_append(r, buf, (uint32_t)len);
	} else {
		uint64_t slot = 2ull * rec->slot_pair + (rec->generation & 1);

		rc = post(r, PMU_REGION_HDR + slot * r->geo.slot_size, buf, (size_t)len);
	}
	if (rc)
		return rc;
	if (ticket)
		*ticket = r->posted;
	return 0;
}

int ckpt_log_append(struct ckpt_region *r, const struct ckpt_rec *rec, uint64_t *ticket)
{
	uint8_t buf[CKPT_REC_MAX_LEN];
	int len, rc;

	if (r->geo.mode != PMU_MODE_APPEND)
		return -EINVAL;
	len = ckpt_rec_encode(rec, buf, sizeof(buf));
	if (len < 0)
		return len;
	if (r->cl->records != NULL) {
		rc = r->cl->records->put(r, buf, (uint32_t)len);
		if (rc == 0)
			r->posted++;
	} else {
		rc = ring_append(r, buf, (uint32_t)len);
	}
	if (rc)
		return rc;
	if (ticket)
		*ticket = r->posted;
	return 0;
}

static int start_flush(struct ckpt_region *r)
{
	int rc;

	if (r->control_only)
		return -EPERM;
	r->data_seq = r->posted;
	r->head_val = r->ring.next;
	/* Only a byte backend's ring moves: a record backend's stays at zero. */
	if (r->ring.next != r->ring.head_written && r->cl->bytes->barrier_head != NULL) {
		rc = r->cl->bytes->barrier_head(r, r->data_seq, r->head_val);
		if (rc == 0) {
			r->head_seq = r->data_seq;
			r->phase = FLUSH_HEAD;
			return 0;
		}
		if (rc != -ENOTSUP)
			return rc;
	}
	r->phase = r->ring.next != r->ring.head_written ? FLUSH_DATA : FLUSH_PLAIN;
	rc = r->cl->ops->barrier(r, r->data_seq);
	if (rc)
		r->phase = FLUSH_IDLE;
	return rc;
}

/* Move the flush state machine as far as completed barriers allow. */
static int advance(struct ckpt_region *r)
{
	for (;;) {
		int rc;

		switch (r->phase) {
		case FLUSH_IDLE:
			if (!r->flush_again)
				return 0;
			r->flush_again = false;
			if (r->posted == r->acked && r->ring.next == r->ring.head_written)
				return 0;
			rc = start_flush(r);
			if (rc)
				return rc;
			break;
		case FLUSH_PLAIN:
			if (r->durable < r->data_seq)
				return 0;
			r->acked = r->data_seq;
			r->phase = FLUSH_IDLE;
			break;
		case FLUSH_DATA:
			if (r->durable < r->data_seq)
				return 0;
			rc = post(r, PMU_REGION_HEAD_OFF, &r->head_val, sizeof(r->head_val));
			if (rc == -EAGAIN)
				return 0; /* the queue is full: poll again */
			if (rc)
				return rc;
			r->head_seq = r->posted;
			r->phase = FLUSH_HEAD;
			rc = r->cl->ops->barrier(r, r->head_seq);
			if (rc)
				return rc;
			break;
		case FLUSH_HEAD:
			if (r->durable < r->head_seq)
				return 0;
			r->ring.head_written = r->head_val;
			/*
			 * Writes posted between data_seq and the head were not covered by
			 * this head; with none, the head write itself is the last.
			 */
			r->acked = r->head_seq == r->data_seq + 1 ? r->head_seq : r->data_seq;
			r->phase = FLUSH_IDLE;
			break;
		}
	}
}

int ckpt_flush(struct ckpt_region *r)
{
	r->flush_again = true;
	return advance(r);
}

int ckpt_poll(struct ckpt_client *c)
{
	int n = 0;

	if (c->ops->poll) {
		n = c->ops->poll(c);
		if (n < 0)
			return n;
	}
	for (struct ckpt_region *r = c->regions; r != NULL; r = r->next) {
		int rc = advance(r);

		if (rc)
			return rc;
	}
	return n;
}

int ckpt_sync(struct ckpt_region *r)
{
	const uint64_t target = r->posted;
	const uint64_t deadline = now_ms() + r->cl->opts.timeout_ms;
	int rc;

	if (r->acked >= target && r->ring.next == r->ring.head_written)
		return 0;
	rc = ckpt_flush(r);
	while (rc == 0 && r->acked < target) {
		rc = ckpt_poll(r->cl);
		if (rc > 0) {
			rc = 0;
			continue;
		}
		if (rc == 0 && now_ms() > deadline) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "region %s: writes not durable after %u ms", r->geo.name,
				 r->cl->opts.timeout_ms);
			rc = -ETIMEDOUT;
		}
		if (rc == 0)
			sched_yield();
	}
	return rc < 0 ? rc : 0;
}

int ckpt_lease_renew(struct ckpt_region *r, unsigned int ttl_ms)
{
	return r->cl->ops->lease(r, ttl_ms);
}

/* Remember a binding that succeeded, for whoever connects again on the client's behalf. */
static void remember_binding(struct ckpt_client *c, const char *lease, uint64_t epoch)
{
	c->bound.on = true;
	snprintf(c->bound.lease, sizeof(c->bound.lease), "%s", lease);
	c->bound.epoch = epoch;
}

int ckpt_epoch_take(struct ckpt_region *r, uint64_t seen, uint64_t *epoch)
{
	int rc;

	if (r == NULL || epoch == NULL)
		return -EINVAL;
	if (r->cl->ops->epoch_take == NULL)
		return -ENOTSUP;
	rc = r->cl->ops->epoch_take(r, seen, epoch);
	if (rc == 0)
		remember_binding(r->cl, r->geo.name, *epoch);
	return rc;
}

int ckpt_epoch_bind(struct ckpt_client *c, const char *lease_name, uint64_t epoch)
{
	int rc;

	if (c == NULL || lease_name == NULL)
		return -EINVAL;
	if (c->ops->epoch_bind == NULL)
		return -ENOTSUP;
	rc = c->ops->epoch_bind(c, lease_name, epoch);
	if (rc == 0)
		remember_binding(c, lease_name, epoch);
	return rc;
}

int ckpt_lease_watch(struct ckpt_region *r, unsigned int timeout_ms)
{
	if (r == NULL)
		return -EINVAL;
	return r->cl->ops->lease_watch ? r->cl->ops->lease_watch(r, timeout_ms) : -ENOTSUP;
}

/* Bytes of a region, mapped in place when the backend can, else read into @p buf. */
static const uint8_t *region_bytes(struct ckpt_region *r, uint64_t off, size_t len, uint8_t *buf,
				   int *rc)
{
	const uint8_t *p;

	if (r->control_only) {
		*rc = -EPERM;
		return NULL;
	}
	if (r->cl->bytes->map) {
		/* Outside the region (a geometry that is no layout): an error, never 0 records. */
		p = r->cl->bytes->map(r, off, len);
		if (p == NULL)
			*rc = -EINVAL;
		return p;
	}
	*rc = r->cl->bytes->read(r, off, buf, len);
	return *rc ? NULL : buf;
}

/* Copy the ring span [tail, head) into an image of the whole ring. */
static int ring_image(struct ckpt_region *r, uint64_t tail, uint64_t head, uint8_t **out)
{
	const uint64_t size = r->geo.ring_size;
	uint64_t pos = tail;
	uint8_t *img;

	if (r->control_only)
		return -EPERM;
	if (r->cl->bytes->map) {
		*out = (uint8_t *)r->cl->bytes->map(r, r->geo.ring_off, size);
		return *out != NULL ? 0 : -EINVAL;
	}
	img = malloc(size);
	if (img == NULL)
		return -ENOMEM;
	while (pos < head) {
		uint64_t off = pos % size;
		uint64_t n = head - pos < size - off ? head - pos : size - off;
		int rc = r->cl->bytes->read(r, r->geo.ring_off + off, img + off, n);

		if (rc) {
			free(img);
			return rc;
		}
		pos += n;
	}
	*out = img;
	return 0;
}

static void ring_image_free(struct ckpt_region *r, uint8_t *img)
{
	if (r->cl->bytes->map == NULL)
		free(img);
}

/* The journal's newest record per slot pair, in an open-addressing table. */
struct jentry {
	uint32_t pair; /* UINT32_MAX: empty */
	uint64_t gen;
	uint64_t pos;
};

struct journal {
	struct jentry *tab;
	size_t mask;
	const uint8_t *img;
	uint64_t ring_size;
	uint64_t superseded;
};

static struct jentry *jfind(struct journal *j, uint32_t pair)
{
	size_t i = (pair * 0x9e3779b1u) & j->mask;

	while (j->tab[i].pair != UINT32_MAX && j->tab[i].pair != pair)
		i = (i + 1) & j->mask;
	return &j->tab[i];
}

static int jcollect(const struct ckpt_rec *rec, uint64_t pos, void *arg)
{
	struct journal *j = arg;
	struct jentry *e = jfind(j, rec->slot_pair);

	if (e->pair == UINT32_MAX) {
		*e = (struct jentry){rec->slot_pair, rec->generation, pos};
	} else if (rec->generation > e->gen) {
		e->gen = rec->generation;
		e->pos = pos;
		j->superseded++;
	} else {
		j->superseded++;
	}
	return 0;
}

static int journal_load(struct ckpt_region *r, struct journal *j, struct ckpt_scan_stats *st)
{
	uint64_t head, tail;
	uint8_t *img;
	size_t cap;
	int rc;

	memset(j, 0, sizeof(*j));
	if (r->geo.ring_size == 0 || r->cl->records != NULL)
		return 0;
	rc = ring_words(r, &head, &tail);
	if (rc || head == tail)
		return rc;
	cap = 64;
	while (cap < (head - tail) / ckpt_rec_size(0) * 2)
		cap <<= 1;
	j->tab = malloc(cap * sizeof(*j->tab));
	if (j->tab == NULL)
		return -ENOMEM;
	memset(j->tab, 0xff, cap * sizeof(*j->tab));
	j->mask = cap - 1;
	rc = ring_image(r, tail, head, &img);
	if (rc) {
		free(j->tab);
		j->tab = NULL;
		return rc;
	}
	j->img = img;
	j->ring_size = r->geo.ring_size;
	rc = pmu_ring_walk(img, r->geo.ring_size, tail, head, jcollect, j, &st->invalid, NULL);
	return rc < 0 ? rc : 0;
}

/* Decode one slot: its record if valid and in its right place, else counted and NULL. */
static inline int slot_decode(const uint8_t *p, uint32_t slot_size, uint64_t slot,
			      struct ckpt_rec *out, struct ckpt_scan_stats *st)
{
	if (ckpt_rec_is_empty(p, slot_size)) {
		st->empty++;
		return 0;
	}
	if (ckpt_rec_decode(p, slot_size, out) < 0) {
		st->invalid++;
		return 0;
	}
	if (out->slot_pair != slot / 2 || (out->generation & 1) != (slot & 1)) {
		st->misplaced++;
		return 0;
	}
	return 1;
}

int ckpt_state_read(struct ckpt_region *r, ckpt_rec_cb cb, void *arg, struct ckpt_scan_stats *stats)
{
	return ckpt_state_scan(r, 0, cb, arg, stats);
}

/*
 * What a state scan reads with: the region's geometry, its flags and the journal; and the
 * slots in place where the backend offers them (view), which the scan then copies pair by
 * pair into its chunk buffer, just before decoding from that copy, instead of reading the
 * chunk first.
 */
struct scan {
	struct ckpt_region *r;
	unsigned int flags;
	uint32_t ss;	    /* slot size */
	uint64_t pairs;	    /* in the region */
	uint64_t ahead;	    /* pairs prefetched ahead of the decode */
	const uint8_t *src; /* the slots in place, or NULL: read */
	struct journal j;
};

/*
 * Pair @p pair, whose two slots are at @p p: the record it hands over (the newest valid
 * one of its slots and the journal), counted in @p st, decoded into one of @p tmp[3].
 * @return that record, or NULL (nothing to hand over). Its payload points into @p p or the
 * journal's image. Inlined into both scans: it runs for every pair.
 */
static inline __attribute__((always_inline)) const struct ckpt_rec *
pair_decode(const struct scan *s, const uint8_t *p, uint64_t pair, struct ckpt_rec tmp[3],
	    struct ckpt_scan_stats *st)
{
	const uint32_t ss = s->ss;
	struct ckpt_rec *a = &tmp[0], *b = &tmp[1], *jr = &tmp[2], *best = NULL;
	int va = slot_decode(p, ss, 2 * pair, a, st);
	int vb = slot_decode(p + ss, ss, 2 * pair + 1, b, st);

	if (va && vb) {
		best = a->generation > b->generation ? a : b;
		st->superseded++;
	} else if (va) {
		best = a;
	} else if (vb) {
		best = b;
	}
	if (s->j.tab) {
		struct jentry *e = jfind((struct journal *)&s->j, (uint32_t)pair);

		if (e->pair != UINT32_MAX && best != NULL && e->gen <= best->generation) {
			/* Applied already, or older than what the slots hold. */
			st->superseded++;
		} else if (e->pair != UINT32_MAX &&
			   ckpt_rec_decode(s->j.img + e->pos % s->j.ring_size,
					   s->j.ring_size - e->pos % s->j.ring_size, jr) > 0) {
			if (best)
				st->superseded++;
			best = jr;
		}
	}
	if (best == NULL)
		return NULL;
	if (best->flags & CKPT_REC_F_TOMBSTONE) {
		st->tombstones++;
		if (!(s->flags & CKPT_SCAN_TOMBSTONES))
			return NULL;
	} else {
		st->records++;
	}
	return best;
}

/* The pair @p i + s->ahead of a chunk of @p n, line by line; past the chunk it is not ours. */
static inline void pair_prefetch(const struct scan *s, const uint8_t *chunk, uint64_t i, uint64_t n)
{
	if (i + s->ahead < n)
		for (uint32_t l = 0; l < 2 * s->ss; l += 64)
			__builtin_prefetch(chunk + 2 * (i + s->ahead) * s->ss + l);
}

/*
 * The @p n pairs from pair @p p0 into @p buf, a chunk of the scan: read at once, or, in
 * place, nothing yet (pair_fetch() copies each pair just before its decode).
 */
static int chunk_fetch(const struct scan *s, uint8_t *buf, uint64_t p0, uint64_t n)
{
	if (s->src != NULL)
		return 0;
	return s->r->cl->bytes->read(s->r, PMU_REGION_HDR + p0 * 2 * s->ss, buf, n * 2 * s->ss);
}

/* Pairs copied ahead of their decode when read in place (pair_fetch). */
#define COPY_AHEAD 4

/*
 * Pair @p i of the chunk of @p n at pair @p p0 in @p buf, ready to decode, the pair s->ahead
 * on asked for. In place, the pairs are copied into @p buf first: each is validated and
 * handed over from that copy, which no other process can rewrite between its CRC check and
 * its insert (a live writer can rewrite the store). They are copied COPY_AHEAD pairs ahead
 * of their decode: the decode's loads of a copy made just before could not be served from
 * the copy's wide stores still on their way to the cache, and waited for them (on this
 * VM's AMD CPU, most of the decode's time: one load stalled in every record).
 */
static inline void pair_fetch(const struct scan *s, uint8_t *buf, uint64_t p0, uint64_t i,
			      uint64_t n)
{
	const size_t pl = 2 * (size_t)s->ss;

	if (s->src == NULL) {
		pair_prefetch(s, buf, i, n);
		return;
	}
	pair_prefetch(s, s->src + p0 * pl, i, n);
	if (i == 0)
		memcpy(buf, s->src + p0 * pl, (n < COPY_AHEAD ? n : COPY_AHEAD) * pl);
	if (i + COPY_AHEAD < n)
		memcpy(buf + (i + COPY_AHEAD) * pl, s->src + (p0 + i + COPY_AHEAD) * pl, pl);
}

/* The region's overwrite-mode checks and its journal: @return 0 or -errno. */
static int scan_open(struct scan *s, struct ckpt_region *r, unsigned int flags,
		     struct ckpt_scan_stats *st)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->r = r;
	s->flags = flags;
	s->ss = r->geo.slot_size;
	s->pairs = r->geo.nslots / 2;
	s->ahead = SCAN_PREFETCH_BYTES / (2ull * s->ss) + 1;
	if (r->cl->bytes->view != NULL && s->pairs > 0)
		s->src = r->cl->bytes->view(r, PMU_REGION_HDR, s->pairs * 2 * s->ss);
	rc = journal_load(r, &s->j, st);
	st->superseded += s->j.superseded;
	return rc;
}

static void scan_close(struct scan *s)
{
	if (s->j.tab) {
		free(s->j.tab);
		ring_image_free(s->r, (uint8_t *)s->j.img);
	}
}

int ckpt_state_scan(struct ckpt_region *r, unsigned int flags, ckpt_rec_cb cb, void *arg,
		    struct ckpt_scan_stats *stats)
{
	struct ckpt_scan_stats st = {0};
	struct scan s;
	uint64_t pairs_per_chunk;
	uint8_t *buf = NULL;
	int rc, stop = 0;

	if (r->geo.mode != PMU_MODE_OVERWRITE)
		return -EINVAL;
	if (r->cl->records != NULL)
		return r->cl->records->scan(r, flags, cb, arg, stats);
	rc = scan_open(&s, r, flags, &st);
	if (rc)
		goto out;
	pairs_per_chunk = READ_CHUNK / (2ull * s.ss);
	/*
	 * Read into one buffer, even where the region is mapped: met through a mapping made
	 * at this start, every 4 KB page of the slots cost a first touch (see pmem_read);
	 * the buffer's pages are touched once.
	 */
	buf = malloc((s.pairs < pairs_per_chunk ? s.pairs : pairs_per_chunk) * 2 * s.ss + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t p0 = 0; p0 < s.pairs && !stop; p0 += pairs_per_chunk) {
		uint64_t n = s.pairs - p0 < pairs_per_chunk ? s.pairs - p0 : pairs_per_chunk;

		rc = chunk_fetch(&s, buf, p0, n);
		if (rc)
			goto out;
		for (uint64_t i = 0; i < n; i++) {
			struct ckpt_rec tmp[3];
			const struct ckpt_rec *rec;

			pair_fetch(&s, buf, p0, i, n);
			rec = pair_decode(&s, buf + 2 * i * s.ss, p0 + i, tmp, &st);
			if (rec == NULL)
				continue;
			stop = cb ? cb(rec, arg) : 0;
			if (stop)
				break;
		}
	}
	rc = stop;
out:
	free(buf);
	scan_close(&s);
	if (stats)
		*stats = st;
	return rc;
}

/*
 * ckpt_state_scan_split(): a reader thread reads chunks of SPLIT_CHUNK bytes of slots and
 * decodes them into the records they hand over; the caller's thread takes the chunks in
 * order, each in one call (its records in place, nothing copied). SPLIT_BUFS chunks
 * circulate between the two, one handoff a chunk (256 for a 1 M region) under a mutex: the
 * waits block rather than spin, so a side that runs ahead costs the other nothing while
 * they share a CPU.
 */
#define SPLIT_CHUNK (1u << 20)
#define SPLIT_BUFS  4
#define SPLIT_HUGE  (2u << 20)

struct split_chunk {
	uint8_t *buf;
	struct ckpt_rec *recs;
	uint32_t nrecs;
	struct ckpt_scan_stats st; /* of the pairs this chunk held */
};

struct split {
	struct scan s;
	uint64_t pairs_per_chunk;
	struct split_chunk ch[SPLIT_BUFS];
	uint8_t *mem; /* every chunk's buffers */
	size_t mem_len;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t produced, consumed; /* chunks, in scan order */
	bool done, stop;	     /* the reader is through; the caller wants no more */
	int rc;			     /* the reader's: a read that failed */
};

/*
 * *@p rec, decoded just now, into @p to as ckpt_rec_decode() wrote it: field by field over
 * zeroes. A whole-struct copy's 16-byte loads could not be served from the decode's narrow
 * stores still on their way to the cache, and waited for them, a record at a time.
 */
static inline void rec_put(struct ckpt_rec *to, const struct ckpt_rec *rec)
{
	/* A field added to the record must be added here too (and in ckpt_rec_decode()). */
	_Static_assert(sizeof(struct ckpt_rec) == 80 && sizeof(struct ckpt_key) == 38,
		       "rec_put() copies every field of struct ckpt_rec");
	memset(to, 0, sizeof(*to));
	to->flags = rec->flags;
	to->module_id = rec->module_id;
	to->slice_version = rec->slice_version;
	to->conn_id = rec->conn_id;
	to->generation = rec->generation;
	to->slot_pair = rec->slot_pair;
	to->key.family = rec->key.family;
	to->key.proto = rec->key.proto;
	to->key.port[0] = rec->key.port[0];
	to->key.port[1] = rec->key.port[1];
	memcpy(to->key.addr, rec->key.addr, sizeof(to->key.addr));
	to->payload_len = rec->payload_len;
	to->payload = rec->payload;
}

static void *split_reader(void *arg)
{
	struct split *sp = arg;
	const struct scan *s = &sp->s;
	int rc = 0;

	for (uint64_t p0 = 0, k = 0; p0 < s->pairs; p0 += sp->pairs_per_chunk, k++) {
		uint64_t n =
			s->pairs - p0 < sp->pairs_per_chunk ? s->pairs - p0 : sp->pairs_per_chunk;
		struct split_chunk *c = &sp->ch[k % SPLIT_BUFS];
		bool stop;

		pthread_mutex_lock(&sp->mu);
		while (sp->produced - sp->consumed == SPLIT_BUFS && !sp->stop)
			pthread_cond_wait(&sp->cv, &sp->mu);
		stop = sp->stop;
		pthread_mutex_unlock(&sp->mu);
		if (stop)
			break;
		rc = chunk_fetch(s, c->buf, p0, n);
		if (rc)
			break;
		memset(&c->st, 0, sizeof(c->st));
		c->nrecs = 0;
		for (uint64_t i = 0; i < n; i++) {
			struct ckpt_rec tmp[3];
			const struct ckpt_rec *rec;

			pair_fetch(s, c->buf, p0, i, n);
			rec = pair_decode(s, c->buf + 2 * i * s->ss, p0 + i, tmp, &c->st);
			if (rec != NULL)
				rec_put(&c->recs[c->nrecs++], rec);
		}
		pthread_mutex_lock(&sp->mu);
		sp->produced++;
		pthread_cond_broadcast(&sp->cv);
		pthread_mutex_unlock(&sp->mu);
	}
	pthread_mutex_lock(&sp->mu);
	sp->rc = rc;
	sp->done = true;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

static void stats_add(struct ckpt_scan_stats *to, const struct ckpt_scan_stats *st)
{
	to->records += st->records;
	to->tombstones += st->tombstones;
	to->empty += st->empty;
	to->invalid += st->invalid;
	to->superseded += st->superseded;
	to->misplaced += st->misplaced;
}

/* A record backend's scan, through the split's callback one record at a time. */
struct split_one {
	ckpt_recs_cb take;
	void *arg;
};

static int split_one_rec(const struct ckpt_rec *rec, void *arg)
{
	struct split_one *o = arg;

	return o->take(rec, 1, o->arg);
}

int ckpt_state_scan_split(struct ckpt_region *r, unsigned int flags, const cpu_set_t *reader_cpus,
			  ckpt_recs_cb take, void *arg, struct ckpt_scan_stats *stats)
{
	struct ckpt_scan_stats st = {0};
	struct split *sp;
	pthread_attr_t attr;
	pthread_t th;
	size_t per, recs_off, stride;
	bool no_thread = false;
	int rc, stop = 0;

	if (r->geo.mode != PMU_MODE_OVERWRITE)
		return -EINVAL;
	if (r->cl->records != NULL) {
		struct split_one o = {take, arg};

		return r->cl->records->scan(r, flags, split_one_rec, &o, stats);
	}
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL)
		return -ENOMEM;
	rc = scan_open(&sp->s, r, flags, &st);
	if (rc)
		goto out_close;
	sp->pairs_per_chunk = SPLIT_CHUNK / (2ull * sp->s.ss);
	if (sp->pairs_per_chunk == 0)
		sp->pairs_per_chunk = 1;
	per = sp->s.pairs < sp->pairs_per_chunk ? sp->s.pairs : sp->pairs_per_chunk;
	if (per == 0)
		per = 1; /* an empty region: one pair of room, never read */
	/*
	 * Every chunk's slots and records in one block of 2 MB pages where the kernel has
	 * them (transparent huge pages): a handful of first touches per scan, not ~1400.
	 */
	recs_off = (per * 2 * sp->s.ss + 63) & ~(size_t)63;
	stride = (recs_off + per * sizeof(struct ckpt_rec) + 4095) & ~(size_t)4095;
	sp->mem_len = (SPLIT_BUFS * stride + SPLIT_HUGE - 1) & ~(size_t)(SPLIT_HUGE - 1);
	sp->mem = aligned_alloc(SPLIT_HUGE, sp->mem_len);
	if (sp->mem == NULL) {
		rc = -ENOMEM;
		goto out_close;
	}
	madvise(sp->mem, sp->mem_len, MADV_HUGEPAGE); /* a hint: without it, 4 KB pages */
	for (int i = 0; i < SPLIT_BUFS; i++) {
		sp->ch[i].buf = sp->mem + i * stride;
		sp->ch[i].recs = (struct ckpt_rec *)(void *)(sp->ch[i].buf + recs_off);
	}
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	rc = -pthread_attr_init(&attr);
	if (rc) {
		no_thread = true;
		goto out_sync;
	}
	if (reader_cpus != NULL)
		rc = -pthread_attr_setaffinity_np(&attr, sizeof(*reader_cpus), reader_cpus);
	if (rc == 0)
		rc = -pthread_create(&th, &attr, split_reader, sp);
	pthread_attr_destroy(&attr);
	if (rc) {
		no_thread = true;
		goto out_sync;
	}
	pthread_setname_np(th, "ckpt-scan");
	for (;;) {
		struct split_chunk *c;

		pthread_mutex_lock(&sp->mu);
		while (sp->consumed == sp->produced && !sp->done)
			pthread_cond_wait(&sp->cv, &sp->mu);
		if (sp->consumed == sp->produced) {
			pthread_mutex_unlock(&sp->mu);
			break;
		}
		pthread_mutex_unlock(&sp->mu);
		c = &sp->ch[sp->consumed % SPLIT_BUFS];
		stats_add(&st, &c->st);
		if (c->nrecs > 0)
			stop = take(c->recs, c->nrecs, arg);
		pthread_mutex_lock(&sp->mu);
		sp->consumed++;
		sp->stop = stop != 0;
		pthread_cond_broadcast(&sp->cv);
		pthread_mutex_unlock(&sp->mu);
		if (stop)
			break;
	}
	pthread_join(th, NULL);
	rc = stop ? stop : sp->rc;
out_sync:
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	free(sp->mem);
out_close:
	scan_close(&sp->s);
	free(sp);
	if (no_thread) {
		/* No thread to be had: the one-thread scan, its records one at a time. */
		struct split_one o = {take, arg};

		return ckpt_state_scan(r, flags, split_one_rec, &o, stats);
	}
	if (stats)
		*stats = st;
	return rc;
}

struct log_walk {
	ckpt_rec_cb cb;
	void *arg;
	uint64_t n;
};

static int log_one(const struct ckpt_rec *rec, uint64_t pos, void *arg)
{
	struct log_walk *w = arg;

	(void)pos;
	w->n++;
	return w->cb ? w->cb(rec, w->arg) : 0;
}

int ckpt_log_read(struct ckpt_region *r, ckpt_rec_cb cb, void *arg, bool peek,
		  struct ckpt_scan_stats *stats)
{
	struct ckpt_scan_stats st = {0};
	struct log_walk w = {cb, arg, 0};
	uint64_t head, tail, stop;
	uint8_t *img = NULL;
	int rc;

	if (r->geo.mode != PMU_MODE_APPEND)
		return -EINVAL;
	if (r->cl->records != NULL)
		return r->cl->records->log_read(r, cb, arg, peek, stats);
	rc = ring_words(r, &head, &tail);
	if (rc)
		return rc;
	if (head == tail)
		goto out;
	rc = ring_image(r, tail, head, &img);
	if (rc)
		return rc;
	rc = pmu_ring_walk(img, r->geo.ring_size, tail, head, log_one, &w, &st.invalid, &stop);
	ring_image_free(r, img);
	if (rc < 0)
		return rc;
	st.records = w.n;
	if (st.invalid)
		ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
			 "region %s: log record at %llu does not decode; read up to it",
			 r->geo.name, (unsigned long long)stop);
	if (!peek && stop != tail) {
		/* The consumer owns the tail: write it and wait until it is durable. */
		rc = post(r, PMU_REGION_TAIL_OFF, &stop, sizeof(stop));
		if (rc == 0)
			rc = ckpt_sync(r);
		if (rc)
			return rc;
	}
out:
	if (stats)
		*stats = st;
	return (int)w.n;
}

/* For record backends (group/), which keep their data in rings of other regions. */
int ckpt_region_post(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	return post(r, off, buf, len);
}

int ckpt_region_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len)
{
	int rc = 0;
	const uint8_t *p = region_bytes(r, off, len, buf, &rc);

	if (p != NULL && p != buf)
		memcpy(buf, p, len);
	return rc;
}

int ckpt_ring_put(struct ckpt_region *r, const void *buf, uint32_t len)
{
	return ring_append(r, buf, len);
}

int ckpt_ring_words(struct ckpt_region *r, uint64_t *head, uint64_t *tail)
{
	return ring_words(r, head, tail);
}

int ckpt_ring_post_tail(struct ckpt_region *r, uint64_t tail)
{
	return post(r, PMU_REGION_TAIL_OFF, &tail, sizeof(tail));
}

void ckpt_ring_join(struct ckpt_region *r, uint64_t tail, uint64_t next)
{
	if (r->ring.tail_seen < tail && ckpt_ring_post_tail(r, tail) == 0)
		r->ring.tail_seen = tail;
	if (r->ring.head_written < tail)
		r->ring.head_written = tail;
	r->ring.next = next;
}
