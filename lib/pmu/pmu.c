/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The PMU store: one libpmem-mapped file, a superblock, a region table, regions. Making,
 * opening and formatting the file, and the table's writers and readers; what a store and a
 * region must be is judged in pmu_check.c.
 *
 * Crash consistency rests on one rule: whatever a commit word vouches for is persisted
 * before the word itself, and the word is one aligned 8-byte store. A table entry's commit
 * word carries the CRC of the entry body, so an entry is either wholly there or free.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpmem.h>

#include "holdfast/pmu.h"
#include "hf_log.h"
#include "pmu_check.h"

#define LOG_COMPONENT "pmu"

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
	return (struct pmu_entry *)(s->base + PMU_TABLE_OFF + (size_t)i * PMU_ENTRY_SIZE);
}

static void store64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

uint64_t pmu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A live entry a reader may use: its commit word checks and so does its geometry. */
static int entry_usable(const struct pmu_store *s, const struct pmu_entry *e)
{
	char why[8];

	return pmu_entry_live(e) && pmu_entry_check(e, s->len, why, sizeof(why)) == 0;
}

static int find_live(const struct pmu_store *s, const char *owner, const char *name)
{
	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);

		if (pmu_entry_live(e) && strncmp(e->name, name, PMU_NAME_MAX) == 0 &&
		    strncmp(e->owner, owner, PMU_NAME_MAX) == 0)
			return (int)i;
	}
	return -1;
}

/* The superblock of a new store of @p size bytes, all but its magic. */
static void sb_init(struct pmu_sb *sb, uint64_t size)
{
	memset(sb, 0, sizeof(*sb));
	sb->version = PMU_SB_VERSION;
	sb->nentries = PMU_MAX_REGIONS;
	sb->size = size;
	sb->table_off = PMU_TABLE_OFF;
	sb->data_off = PMU_DATA_OFF;
	if (getrandom(sb->uuid, sizeof(sb->uuid), 0) != sizeof(sb->uuid))
		memset(sb->uuid, 0, sizeof(sb->uuid)); /* an identifier, not a secret */
	sb->crc = pmu_sb_crc(sb);
}

/* Make a mapped store new and empty, in place (PMU_FORMAT): every region is gone. */
static void format(struct pmu_store *s)
{
	struct pmu_sb *sb = sb_of(s), fresh;
	const size_t body = sizeof(*sb) - sizeof(sb->magic);

	/* Zeroed first: a format cut short leaves a blank superblock, refused as such. */
	s->memset_persist(sb, 0, sizeof(*sb));
	s->memset_persist(s->base + PMU_TABLE_OFF, 0, (size_t)PMU_MAX_REGIONS * PMU_ENTRY_SIZE);
	sb_init(&fresh, s->len);
	memcpy((uint8_t *)sb + sizeof(sb->magic), (const uint8_t *)&fresh + sizeof(fresh.magic),
	       body);
	s->persist(sb, sizeof(*sb));
	store64(&sb->magic, PMU_SB_MAGIC);
	s->persist(&sb->magic, sizeof(sb->magic));
}

/*
 * A new store appears at @p path whole or not at all, so that a blank superblock there is
 * never "a format that did not finish": the file is made in the same directory unnamed
 * (O_TMPFILE; named FILE.new-XXXXXX where the filesystem has no O_TMPFILE, which a crash
 * can leave behind), formatted, made durable, and only then linked at @p path, and the
 * directory synced. Another creator that linked first wins: its store is the one opened.
 * @return 0 or an errno (logged).
 */
static int create_file(const char *path, uint64_t size, int *made)
{
	char *copy = strdup(path), named[PATH_MAX] = "", proc[64];
	const char *dir;
	struct pmu_sb sb;
	int fd, dfd, err = 0;

	if (copy == NULL)
		return ENOMEM;
	dir = dirname(copy);
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		if ((size_t)snprintf(named, sizeof(named), "%s.new-XXXXXX", path) < sizeof(named))
			fd = mkostemp(named, O_CLOEXEC);
		else
			errno = ENAMETOOLONG;
	}
	if (fd < 0) {
		err = errno;
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: cannot create a file in %s: %s", path,
			 dir, strerror(err));
		goto out_free;
	}
	/* Zeros throughout (an empty table), then the superblock, magic and all. */
	err = posix_fallocate(fd, 0, (off_t)size);
	sb_init(&sb, size);
	sb.magic = PMU_SB_MAGIC;
	if (err == 0) {
		ssize_t n = pwrite(fd, &sb, sizeof(sb), 0);

		err = n < 0 ? errno : n != (ssize_t)sizeof(sb) ? EIO : 0;
	}
	if (err == 0 && fsync(fd) != 0)
		err = errno;
	if (err == 0) {
		int rc;

		if (named[0] != '\0') {
			rc = link(named, path);
		} else {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
			rc = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
		}
		if (rc != 0 && errno != EEXIST)
			err = errno;
		*made = rc == 0;
	}
	if (err == 0) {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0)
			err = errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (err != 0)
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: cannot create a store of %" PRIu64 " bytes: %s", path, size,
			 strerror(err));
	if (named[0] != '\0')
		unlink(named);
	close(fd);
out_free:
	free(copy);
	return err;
}

static void log_fault(const struct pmu_fault *f, void *arg)
{
	ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: %s", (const char *)arg, f->msg);
}

/* The checks of pmu_store_check() on this mapping, each fault logged. @return 0 or EINVAL. */
static int check_mapped(const struct pmu_store *s)
{
	int faults = pmu_check_image(s->base, s->len, log_fault, s->path);

	if (faults == 0)
		return 0;
	ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
		 "%s: refusing the store: %d fault(s), each logged above", s->path, faults);
	return EINVAL;
}

struct pmu_store *pmu_store_open(const char *path, uint64_t size, int flags)
{
	struct pmu_store *s;
	int created = 0, is_new = 0;
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
	if (s->base == NULL && errno == ENOENT && (flags & (PMU_CREATE | PMU_FORMAT))) {
		if (size < PMU_MIN_FILE_SIZE || pmu_align_up(size, PMU_ALIGN, &size) != 0) {
			ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
				 "%s: a new store needs at least %u bytes, %" PRIu64 " asked", path,
				 PMU_MIN_FILE_SIZE, size);
			err = EINVAL;
			goto err_free;
		}
		err = create_file(path, size, &created);
		if (err)
			goto err_free;
		is_new = 1; /* made here, or by a creator that linked first */
		s->base = pmem_map_file(path, 0, 0, 0, &s->len, &s->is_pmem);
	}
	if (s->base == NULL) {
		struct stat st;

		err = errno;
		/* An empty file (an older creator's crash) cannot be mapped: say what it is. */
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
			pmu_check_image(NULL, 0, log_fault, s->path);
			err = EINVAL;
		} else {
			ckpt_log(err == ENOENT ? CKPT_LOG_INFO : CKPT_LOG_ERR, LOG_COMPONENT,
				 "%s: cannot map: %s", path, pmem_errormsg());
		}
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
	if (flock(s->lock_fd, LOCK_EX) != 0) {
		err = errno;
		goto err_close_lock;
	}
	/* Only ever asked for: a blank superblock is refused like any other fault. */
	if ((flags & PMU_FORMAT) && !is_new && s->len >= PMU_MIN_FILE_SIZE) {
		format(s);
		ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
			 "%s: formatted as asked: a new, empty store of %zu bytes (every region it "
			 "held is gone)",
			 path, s->len);
		if (size != 0 && size != s->len)
			ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
				 "%s: kept its size of %zu bytes (%" PRIu64
				 " asked; a size applies to a new file only)",
				 path, s->len, size);
	}
	err = check_mapped(s);
	flock(s->lock_fd, LOCK_UN);
	if (err)
		goto err_close_lock;
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

/*
 * The bytes of every entry whose commit word checks, clipped to the file, by offset: what
 * allocation must never give out. Sane or not, a live entry's owner holds its registration.
 */
static unsigned int live_extents(const struct pmu_store *s, struct extent *ext)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);
		uint64_t end;

		if (!pmu_entry_live(e) || e->offset >= s->len || e->size == 0)
			continue;
		if (__builtin_add_overflow(e->offset, e->size, &end) || end > s->len)
			end = s->len;
		ext[n++] = (struct extent){e->offset, end - e->offset};
	}
	qsort(ext, n, sizeof(*ext), extent_cmp);
	return n;
}

void pmu_store_space(const struct pmu_store *s, uint64_t *total, uint64_t *free_bytes)
{
	struct extent ext[PMU_MAX_REGIONS];
	unsigned int n = live_extents(s, ext);
	uint64_t used = 0, covered = PMU_DATA_OFF;

	/* Extents may overlap (a damaged table): count each byte once. */
	for (unsigned int i = 0; i < n; i++) {
		uint64_t from = ext[i].off > covered ? ext[i].off : covered;
		uint64_t to = ext[i].off + ext[i].len;

		if (to > from) {
			used += to - from;
			covered = to;
		}
	}
	if (total)
		*total = s->len;
	if (free_bytes)
		*free_bytes = s->len - PMU_DATA_OFF - used;
}

/* First fit between live regions. */
static int allocate(const struct pmu_store *s, uint64_t size, uint64_t *off)
{
	struct extent ext[PMU_MAX_REGIONS];
	unsigned int n = live_extents(s, ext);
	uint64_t at = PMU_DATA_OFF;

	for (unsigned int i = 0; i <= n; i++) {
		uint64_t end = i < n ? ext[i].off : s->len;

		if (end >= at && end - at >= size) {
			*off = at;
			return 0;
		}
		/* Never backwards: an extent inside an earlier one frees nothing. */
		if (i < n && ext[i].off + ext[i].len > at)
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
	char why[256];
	uint64_t off;
	int rc;

	rc = pmu_region_layout(p, &geo);
	if (rc)
		return rc;
	rc = lock_table(s);
	if (rc)
		return rc;
	if (find_live(s, p->owner, p->name) >= 0) {
		rc = -EEXIST;
		goto out_unlock;
	}
	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		if (!pmu_entry_live(entry_at(s, i))) {
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
	memset((uint8_t *)e + sizeof(e->commit), 0, PMU_ENTRY_SIZE - sizeof(e->commit));
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
	s->persist(e, PMU_ENTRY_SIZE);
	/* Opening checks every entry with this: never commit one it would refuse. */
	if (pmu_entry_check(e, s->len, why, sizeof(why)) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: region %s of %s not created: its entry would not check: %s", s->path,
			 geo.name, geo.owner, why);
		rc = -EIO;
		goto out_unlock;
	}
	/* 3. The commit word: from here on the region exists. */
	store64(&e->commit, pmu_entry_commit_word(e));
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

int pmu_region_lookup(struct pmu_store *s, const char *owner, const char *name,
		      struct pmu_region_info *out)
{
	int i;

	if (!pmu_name_valid(owner) || !pmu_name_valid(name))
		return -EINVAL;
	i = find_live(s, owner, name);
	if (i < 0 || !entry_usable(s, entry_at(s, (unsigned int)i)))
		return -ENOENT;
	if (out)
		pmu_entry_info(entry_at(s, (unsigned int)i), (unsigned int)i, out);
	return 0;
}

int pmu_region_delete(struct pmu_store *s, const char *owner, const char *name)
{
	struct pmu_entry *e;
	int i, rc;

	if (!pmu_name_valid(owner) || !pmu_name_valid(name))
		return -EINVAL;
	rc = lock_table(s);
	if (rc)
		return rc;
	i = find_live(s, owner, name);
	if (i < 0) {
		rc = -ENOENT;
		goto out_unlock;
	}
	e = entry_at(s, (unsigned int)i);
	store64(&e->commit, 0);
	s->persist(&e->commit, sizeof(e->commit));
	ckpt_log(CKPT_LOG_INFO, LOG_COMPONENT, "%s: deleted region %s of %s", s->path, name, owner);
out_unlock:
	unlock_table(s);
	return rc;
}

int pmu_region_list(struct pmu_store *s, struct pmu_region_info *out, unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);

		if (!entry_usable(s, e))
			continue;
		if (n < max && out)
			pmu_entry_info(e, i, &out[n]);
		n++;
	}
	return (int)n;
}

int pmu_region_lease(struct pmu_store *s, const char *owner, const char *name, uint64_t expires_ns)
{
	struct pmu_entry *e;
	int i;

	if (!pmu_name_valid(owner) || !pmu_name_valid(name))
		return -EINVAL;
	i = find_live(s, owner, name);
	if (i < 0)
		return -ENOENT;
	e = entry_at(s, (unsigned int)i);
	store64(&e->lease_ns, expires_ns);
	s->persist(&e->lease_ns, sizeof(e->lease_ns));
	return 0;
}

int pmu_region_epoch_cas(struct pmu_store *s, const char *owner, const char *name, uint64_t expect,
			 uint64_t next)
{
	struct pmu_entry *e;
	int i, rc;

	if (!pmu_name_valid(owner) || !pmu_name_valid(name) || next <= expect)
		return -EINVAL;
	rc = lock_table(s);
	if (rc)
		return rc;
	i = find_live(s, owner, name);
	if (i < 0) {
		rc = -ENOENT;
		goto out_unlock;
	}
	e = entry_at(s, (unsigned int)i);
	/*
	 * The lock already orders callers that go through here; the compare-and-swap is what
	 * makes the word itself the arbiter, whoever else maps the file.
	 */
	if (!__atomic_compare_exchange_n(&e->epoch, &expect, next, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		rc = -ESTALE;
		goto out_unlock;
	}
	s->persist(&e->epoch, sizeof(e->epoch));
	ckpt_log(CKPT_LOG_INFO, LOG_COMPONENT, "%s: region %s of %s: epoch %" PRIu64, s->path, name,
		 owner, next);
out_unlock:
	unlock_table(s);
	return rc;
}

int pmu_region_epoch(const struct pmu_store *s, const struct pmu_region_info *r, uint64_t *epoch)
{
	const struct pmu_entry *e;

	if (r->index >= PMU_MAX_REGIONS)
		return -ENOENT;
	e = entry_at(s, r->index);
	/* Deleted (commit 0), or made again (another creation time or place): not r. */
	if (__atomic_load_n(&e->commit, __ATOMIC_ACQUIRE) == 0 || e->created_ns != r->created_ns ||
	    e->offset != r->offset)
		return -ENOENT;
	*epoch = __atomic_load_n(&e->epoch, __ATOMIC_ACQUIRE);
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
