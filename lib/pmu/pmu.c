/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The PMU store: one libpmem-mapped file, a superblock, a region table, regions.
 *
 * Crash consistency rests on one rule: whatever a commit word vouches for is persisted
 * before the word itself, and the word is one aligned 8-byte store. A table entry's commit
 * word carries the CRC of the entry body, so an entry is either wholly there or free.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpmem.h>

#include "holdfast/pmu.h"
#include "hf_log.h"

/* Media structures are mapped directly; the store is defined little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the PMU layout is little-endian");

#define SB_MAGIC      0x313030554d504648ull /* "HFPMU001" */
#define SB_VERSION    1
#define ENTRY_LIVE    0x4556494cu /* "LIVE" */
#define TABLE_OFF     4096
#define ENTRY_SIZE    256
#define DATA_OFF      (TABLE_OFF + PMU_MAX_REGIONS * ENTRY_SIZE)
#define LOG_COMPONENT "pmu"

struct pmu_sb {
	uint64_t magic; /* written last: a store without it was never formatted */
	uint32_t version;
	uint32_t nentries;
	uint64_t size;
	uint64_t table_off;
	uint64_t data_off;
	uint8_t uuid[16];
	uint32_t crc; /* over the bytes between magic and it */
	uint32_t pad;
};
_Static_assert(sizeof(struct pmu_sb) == 64, "superblock layout");

struct pmu_entry {
	uint64_t commit;   /* 0: free; ENTRY_LIVE | crc(body) << 32: live */
	uint64_t lease_ns; /* mutable, outside the CRC */
	char name[PMU_NAME_MAX];
	char owner[PMU_NAME_MAX];
	uint32_t mode;
	uint32_t slot_size;
	uint64_t offset;
	uint64_t size;
	uint64_t nslots;
	uint64_t ring_off;
	uint64_t ring_size;
	uint64_t created_ns;
	uint8_t reserved[56];
};
_Static_assert(sizeof(struct pmu_entry) == ENTRY_SIZE, "table entry layout");
_Static_assert(DATA_OFF % PMU_ALIGN == 0, "regions start aligned");
#define ENTRY_BODY_OFF offsetof(struct pmu_entry, name)

struct pmu_store {
	char *path;
	uint8_t *base;
	size_t len;
	int is_pmem;
	int lock_fd;
	pthread_mutex_t mu; /* table writers inside this process; flock covers others */
	void (*persist)(const void *addr, size_t len);
	void *(*memcpy_persist)(void *dst, const void *src, size_t len);
	void *(*memset_persist)(void *dst, int c, size_t len);
};

static void msync_persist(const void *addr, size_t len)
{
	if (pmem_msync(addr, len) != 0)
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "msync of %zu bytes failed: %s", len,
			 strerror(errno));
}

static void *msync_memcpy(void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
	msync_persist(dst, len);
	return dst;
}

static void *msync_memset(void *dst, int c, size_t len)
{
	memset(dst, c, len);
	msync_persist(dst, len);
	return dst;
}

static struct pmu_sb *sb_of(const struct pmu_store *s)
{
	return (struct pmu_sb *)s->base;
}

static struct pmu_entry *entry_at(const struct pmu_store *s, unsigned int i)
{
	return (struct pmu_entry *)(s->base + TABLE_OFF + (size_t)i * ENTRY_SIZE);
}

static uint32_t sb_crc(const struct pmu_sb *sb)
{
	/* The magic is the commit word, written after the CRC'd fields: not covered. */
	return ckpt_crc32c((const uint8_t *)sb + sizeof(sb->magic),
			   offsetof(struct pmu_sb, crc) - sizeof(sb->magic));
}

static uint32_t entry_crc(const struct pmu_entry *e)
{
	return ckpt_crc32c((const uint8_t *)e + ENTRY_BODY_OFF, ENTRY_SIZE - ENTRY_BODY_OFF);
}

static uint64_t load64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* A live entry is one whose commit word says LIVE and vouches for the body it covers. */
static int entry_live(const struct pmu_entry *e)
{
	uint64_t c = load64(&e->commit);

	return (uint32_t)c == ENTRY_LIVE && (uint32_t)(c >> 32) == entry_crc(e);
}

uint64_t pmu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int valid_name(const char *n)
{
	size_t len;

	if (n == NULL)
		return 0;
	len = strnlen(n, PMU_NAME_MAX);
	if (len == 0 || len >= PMU_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (n[i] <= ' ' || n[i] > '~' || n[i] == '/')
			return 0;
	return 1;
}

/* @p v rounded up to a multiple of @p a; -EINVAL when that does not fit in 64 bits. */
static int align_up(uint64_t v, uint64_t a, uint64_t *out)
{
	uint64_t sum;

	if (__builtin_add_overflow(v, a - 1, &sum))
		return -EINVAL;
	*out = sum / a * a;
	return 0;
}

int pmu_region_layout(const struct pmu_region_params *p, struct pmu_region_info *out)
{
	struct pmu_region_info r;
	uint64_t size;

	if (p == NULL || !valid_name(p->name) || !valid_name(p->owner))
		return -EINVAL;
	if (p->size == 0 || p->size > (1ull << 48) || align_up(p->size, PMU_ALIGN, &size) != 0)
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	r.mode = p->mode;
	r.size = size;
	switch (p->mode) {
	case PMU_MODE_OVERWRITE: {
		uint32_t slot = p->slot_size ? p->slot_size : PMU_SLOT_SIZE_DEFAULT;
		uint64_t ring, need;

		if (slot % CKPT_REC_ALIGN != 0 || slot < ckpt_rec_size(0) ||
		    slot > CKPT_REC_MAX_LEN)
			return -EINVAL;
		/* Checked sums: a ring size near 2^64 once wrapped to a ring past the region. */
		if (align_up(p->ring_size, PMU_ALIGN, &ring) != 0 ||
		    __builtin_add_overflow(PMU_REGION_HDR + 2ull * slot, ring, &need) ||
		    size < need)
			return -EINVAL;
		r.slot_size = slot;
		r.nslots = ((size - PMU_REGION_HDR - ring) / slot) & ~1ull;
		if (r.nslots / 2 > UINT32_MAX - 1)
			return -EINVAL;
		r.ring_size = ring;
		r.ring_off = size - ring;
		break;
	}
	case PMU_MODE_APPEND:
		if (size < PMU_REGION_HDR + PMU_ALIGN)
			return -EINVAL;
		r.ring_off = PMU_REGION_HDR;
		r.ring_size = size - PMU_REGION_HDR;
		break;
	default:
		return -EINVAL;
	}
	snprintf(r.name, sizeof(r.name), "%s", p->name);
	snprintf(r.owner, sizeof(r.owner), "%s", p->owner);
	*out = r;
	return 0;
}

static void entry_to_info(const struct pmu_store *s, unsigned int i, struct pmu_region_info *out)
{
	const struct pmu_entry *e = entry_at(s, i);

	memset(out, 0, sizeof(*out));
	memcpy(out->name, e->name, PMU_NAME_MAX);
	out->name[PMU_NAME_MAX - 1] = '\0';
	memcpy(out->owner, e->owner, PMU_NAME_MAX);
	out->owner[PMU_NAME_MAX - 1] = '\0';
	out->mode = (enum pmu_mode)e->mode;
	out->index = i;
	out->offset = e->offset;
	out->size = e->size;
	out->slot_size = e->slot_size;
	out->nslots = e->nslots;
	out->ring_off = e->ring_off;
	out->ring_size = e->ring_size;
	out->created_ns = e->created_ns;
	out->lease_ns = load64(&e->lease_ns);
}

/* An entry that checks must also describe a region inside the data area. */
static int entry_sane(const struct pmu_store *s, const struct pmu_entry *e)
{
	const struct pmu_sb *sb = sb_of(s);

	if (e->offset < sb->data_off || e->offset % PMU_ALIGN || e->size % PMU_ALIGN ||
	    e->size > sb->size || e->offset > sb->size - e->size)
		return 0;
	if (e->ring_off > e->size || e->ring_size > e->size - e->ring_off)
		return 0;
	if (e->mode == PMU_MODE_OVERWRITE)
		return e->slot_size && PMU_REGION_HDR + e->nslots * e->slot_size <= e->ring_off;
	return e->mode == PMU_MODE_APPEND;
}

static int find_live(const struct pmu_store *s, const char *name)
{
	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);

		if (entry_live(e) && strncmp(e->name, name, PMU_NAME_MAX) == 0)
			return (int)i;
	}
	return -1;
}

static void format(struct pmu_store *s, uint64_t size)
{
	struct pmu_sb *sb = sb_of(s);

	s->memset_persist(s->base + TABLE_OFF, 0, (size_t)PMU_MAX_REGIONS * ENTRY_SIZE);
	sb->version = SB_VERSION;
	sb->nentries = PMU_MAX_REGIONS;
	sb->size = size;
	sb->table_off = TABLE_OFF;
	sb->data_off = DATA_OFF;
	if (getrandom(sb->uuid, sizeof(sb->uuid), 0) != sizeof(sb->uuid))
		memset(sb->uuid, 0, sizeof(sb->uuid)); /* an identifier, not a secret */
	sb->crc = sb_crc(sb);
	s->persist(sb, sizeof(*sb));
	store64(&sb->magic, SB_MAGIC);
	s->persist(&sb->magic, sizeof(sb->magic));
}

static int check_sb(const struct pmu_store *s)
{
	const struct pmu_sb *sb = sb_of(s);

	if (sb->magic != SB_MAGIC || sb->version != SB_VERSION || sb->crc != sb_crc(sb) ||
	    sb->nentries != PMU_MAX_REGIONS || sb->table_off != TABLE_OFF ||
	    sb->data_off != DATA_OFF || sb->size != s->len)
		return -EINVAL;
	return 0;
}

static int sb_blank(const struct pmu_store *s)
{
	const uint8_t *p = s->base;

	for (size_t i = 0; i < sizeof(struct pmu_sb); i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void log_bad_entries(const struct pmu_store *s)
{
	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);

		if (load64(&e->commit) != 0 && !entry_live(e))
			ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
				 "%s: table entry %u does not check, treated as free", s->path, i);
		else if (entry_live(e) && !entry_sane(s, e))
			ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
				 "%s: table entry %u (%.63s) lies outside the data area, ignored",
				 s->path, i, e->name);
	}
}

struct pmu_store *pmu_store_open(const char *path, uint64_t size, int flags)
{
	struct pmu_store *s;
	int created = 0;
	int err;

	if (path == NULL) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->path = strdup(path);
	if (s->path == NULL) {
		err = ENOMEM;
		goto err_free;
	}
	pthread_mutex_init(&s->mu, NULL);

	s->base = pmem_map_file(path, 0, 0, 0, &s->len, &s->is_pmem);
	if (s->base == NULL && errno == ENOENT && (flags & PMU_CREATE)) {
		if (size < PMU_MIN_FILE_SIZE) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "%s: a new store needs at least %u bytes, %llu asked", path,
				 PMU_MIN_FILE_SIZE, (unsigned long long)size);
			err = EINVAL;
			goto err_free;
		}
		if (align_up(size, PMU_ALIGN, &size) != 0) {
			err = EINVAL;
			goto err_free;
		}
		s->base = pmem_map_file(path, size, PMEM_FILE_CREATE | PMEM_FILE_EXCL, 0600,
					&s->len, &s->is_pmem);
		created = s->base != NULL;
		if (s->base == NULL && errno == EEXIST) /* lost a race with another creator */
			s->base = pmem_map_file(path, 0, 0, 0, &s->len, &s->is_pmem);
	}
	if (s->base == NULL) {
		err = errno;
		ckpt_log(err == ENOENT ? CKPT_LOG_INFO : CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: cannot map: %s", path, pmem_errormsg());
		goto err_free;
	}
	/* Chosen once: every persist afterwards goes through these pointers. */
	if (s->is_pmem) {
		s->persist = pmem_persist;
		s->memcpy_persist = pmem_memcpy_persist;
		s->memset_persist = pmem_memset_persist;
	} else {
		s->persist = msync_persist;
		s->memcpy_persist = msync_memcpy;
		s->memset_persist = msync_memset;
	}
	s->lock_fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->lock_fd < 0) {
		err = errno;
		goto err_unmap;
	}
	if (s->len < PMU_MIN_FILE_SIZE) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: %zu bytes is too small for a store",
			 path, s->len);
		err = EINVAL;
		goto err_close_lock;
	}

	if (flock(s->lock_fd, LOCK_EX) != 0) {
		err = errno;
		goto err_close_lock;
	}
	/* A blank superblock is a store whose formatting never finished: nothing committed. */
	if (sb_blank(s) && (created || (flags & PMU_CREATE)))
		format(s, s->len);
	err = -check_sb(s);
	flock(s->lock_fd, LOCK_UN);
	if (err) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: not a holdfast store (magic, version, size or CRC wrong)", path);
		goto err_close_lock;
	}
	log_bad_entries(s);
	ckpt_log(CKPT_LOG_INFO, LOG_COMPONENT, "%s: %s store of %zu bytes (%s)", path,
		 created ? "created" : "opened", s->len,
		 s->is_pmem ? "pmem, pmem_persist" : "not pmem, msync");
	return s;

err_close_lock:
	close(s->lock_fd);
err_unmap:
	pmem_unmap(s->base, s->len);
err_free:
	free(s->path);
	free(s);
	errno = err;
	return NULL;
}

void pmu_store_close(struct pmu_store **sp)
{
	struct pmu_store *s;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	pmem_unmap(s->base, s->len);
	close(s->lock_fd);
	pthread_mutex_destroy(&s->mu);
	free(s->path);
	free(s);
	*sp = NULL;
}

int pmu_store_is_pmem(const struct pmu_store *s)
{
	return s->is_pmem;
}

const char *pmu_store_path(const struct pmu_store *s)
{
	return s->path;
}

struct extent {
	uint64_t off, len;
};

static int extent_cmp(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static unsigned int live_extents(const struct pmu_store *s, struct extent *ext)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);

		if (entry_live(e) && entry_sane(s, e))
			ext[n++] = (struct extent){e->offset, e->size};
	}
	qsort(ext, n, sizeof(*ext), extent_cmp);
	return n;
}

void pmu_store_space(const struct pmu_store *s, uint64_t *total, uint64_t *free_bytes)
{
	struct extent ext[PMU_MAX_REGIONS];
	unsigned int n = live_extents(s, ext);
	uint64_t used = 0;

	for (unsigned int i = 0; i < n; i++)
		used += ext[i].len;
	if (total)
		*total = s->len;
	if (free_bytes)
		*free_bytes = s->len - DATA_OFF - used;
}

/* First fit between live regions. */
static int allocate(const struct pmu_store *s, uint64_t size, uint64_t *off)
{
	struct extent ext[PMU_MAX_REGIONS];
	unsigned int n = live_extents(s, ext);
	uint64_t at = DATA_OFF;

	for (unsigned int i = 0; i <= n; i++) {
		uint64_t end = i < n ? ext[i].off : s->len;

		if (end >= at && end - at >= size) {
			*off = at;
			return 0;
		}
		if (i < n)
			at = ext[i].off + ext[i].len;
	}
	return -ENOSPC;
}

static int lock_table(struct pmu_store *s)
{
	pthread_mutex_lock(&s->mu);
	if (flock(s->lock_fd, LOCK_EX) != 0) {
		int err = errno;

		pthread_mutex_unlock(&s->mu);
		return -err;
	}
	return 0;
}

static void unlock_table(struct pmu_store *s)
{
	flock(s->lock_fd, LOCK_UN);
	pthread_mutex_unlock(&s->mu);
}

int pmu_region_create(struct pmu_store *s, const struct pmu_region_params *p,
		      struct pmu_region_info *out)
{
	struct pmu_region_info geo;
	struct pmu_entry *e = NULL;
	uint64_t off;
	int rc;

	rc = pmu_region_layout(p, &geo);
	if (rc)
		return rc;
	rc = lock_table(s);
	if (rc)
		return rc;
	if (find_live(s, p->name) >= 0) {
		rc = -EEXIST;
		goto out_unlock;
	}
	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		if (!entry_live(entry_at(s, i))) {
			e = entry_at(s, i);
			geo.index = i;
			break;
		}
	}
	if (e == NULL) {
		ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT, "%s: region table full (%u regions)",
			 s->path, PMU_MAX_REGIONS);
		rc = -ENOSPC;
		goto out_unlock;
	}
	rc = allocate(s, geo.size, &off);
	if (rc) {
		ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
			 "%s: no free extent of %llu bytes for region %s", s->path,
			 (unsigned long long)geo.size, p->name);
		goto out_unlock;
	}
	geo.offset = off;
	geo.created_ns = pmu_now_ns();

	/* 1. The region's bytes: zero, so no stale record of a deleted region survives. */
	s->memset_persist(s->base + off, 0, geo.size);
	/* 2. The entry body, still uncommitted (a free entry's body means nothing). */
	store64(&e->commit, 0);
	s->persist(&e->commit, sizeof(e->commit));
	memset((uint8_t *)e + sizeof(e->commit), 0, ENTRY_SIZE - sizeof(e->commit));
	memcpy(e->name, geo.name, PMU_NAME_MAX);
	memcpy(e->owner, geo.owner, PMU_NAME_MAX);
	e->mode = geo.mode;
	e->slot_size = geo.slot_size;
	e->offset = geo.offset;
	e->size = geo.size;
	e->nslots = geo.nslots;
	e->ring_off = geo.ring_off;
	e->ring_size = geo.ring_size;
	e->created_ns = geo.created_ns;
	s->persist(e, ENTRY_SIZE);
	/* 3. The commit word: from here on the region exists. */
	store64(&e->commit, ENTRY_LIVE | (uint64_t)entry_crc(e) << 32);
	s->persist(&e->commit, sizeof(e->commit));
	ckpt_log(CKPT_LOG_INFO, LOG_COMPONENT, "%s: created region %s (%s, %llu bytes at %llu)",
		 s->path, geo.name, geo.mode == PMU_MODE_APPEND ? "append" : "overwrite",
		 (unsigned long long)geo.size, (unsigned long long)geo.offset);
	if (out)
		*out = geo;
out_unlock:
	unlock_table(s);
	return rc;
}

int pmu_region_lookup(struct pmu_store *s, const char *name, struct pmu_region_info *out)
{
	int i;

	if (!valid_name(name))
		return -EINVAL;
	i = find_live(s, name);
	if (i < 0 || !entry_sane(s, entry_at(s, (unsigned int)i)))
		return -ENOENT;
	if (out)
		entry_to_info(s, (unsigned int)i, out);
	return 0;
}

int pmu_region_delete(struct pmu_store *s, const char *name)
{
	struct pmu_entry *e;
	int i, rc;

	if (!valid_name(name))
		return -EINVAL;
	rc = lock_table(s);
	if (rc)
		return rc;
	i = find_live(s, name);
	if (i < 0) {
		rc = -ENOENT;
		goto out_unlock;
	}
	e = entry_at(s, (unsigned int)i);
	store64(&e->commit, 0);
	s->persist(&e->commit, sizeof(e->commit));
	ckpt_log(CKPT_LOG_INFO, LOG_COMPONENT, "%s: deleted region %s", s->path, name);
out_unlock:
	unlock_table(s);
	return rc;
}

int pmu_region_list(struct pmu_store *s, struct pmu_region_info *out, unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);

		if (!entry_live(e) || !entry_sane(s, e))
			continue;
		if (n < max && out)
			entry_to_info(s, i, &out[n]);
		n++;
	}
	return (int)n;
}

int pmu_region_lease(struct pmu_store *s, const char *name, uint64_t expires_ns)
{
	struct pmu_entry *e;
	int i;

	if (!valid_name(name))
		return -EINVAL;
	i = find_live(s, name);
	if (i < 0)
		return -ENOENT;
	e = entry_at(s, (unsigned int)i);
	store64(&e->lease_ns, expires_ns);
	s->persist(&e->lease_ns, sizeof(e->lease_ns));
	return 0;
}

void *pmu_region_base(const struct pmu_store *s, const struct pmu_region_info *r)
{
	return s->base + r->offset;
}

void pmu_persist(const struct pmu_store *s, const void *addr, size_t len)
{
	s->persist(addr, len);
}

void pmu_memcpy_persist(const struct pmu_store *s, void *dst, const void *src, size_t len)
{
	s->memcpy_persist(dst, src, len);
}

void pmu_write(const struct pmu_store *s, void *dst, const void *src, size_t len)
{
	if (s->is_pmem)
		pmem_memcpy_nodrain(dst, src, len);
	else
		memcpy(dst, src, len);
}

void pmu_drain_range(const struct pmu_store *s, const void *addr, size_t len)
{
	if (s->is_pmem)
		pmem_drain();
	else if (len != 0)
		msync_persist(addr, len);
}
