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
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
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
#include "pmu_media.h"

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

	return c != 0 && c == pmu_entry_commit_word(e);
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

static void entry_info(const struct pmu_entry *e, unsigned int i, struct pmu_region_info *out)
{
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

int pmu_region_check(const struct pmu_region_info *r, uint64_t store_size, char *why, size_t len)
{
	struct pmu_region_params p;
	struct pmu_region_info want;
	char none[1];

	if (why == NULL || len == 0) {
		why = none;
		len = sizeof(none);
	}
	if (r == NULL) {
		snprintf(why, len, "no region");
		return -EINVAL;
	}
	if (!valid_name(r->name) || !valid_name(r->owner)) {
		snprintf(why, len, "name or owner is not 1..%d printable characters without '/'",
			 PMU_NAME_MAX - 1);
		return -EINVAL;
	}
	if (r->mode != PMU_MODE_OVERWRITE && r->mode != PMU_MODE_APPEND) {
		snprintf(why, len, "mode %u is neither overwrite (1) nor append (2)",
			 (unsigned int)r->mode);
		return -EINVAL;
	}
	/* The layout of its own parameters, compared field by field: the strongest check. */
	p = (struct pmu_region_params){
		.name = r->name,
		.owner = r->owner,
		.mode = r->mode,
		.size = r->size,
		.slot_size = r->slot_size,
		.ring_size = r->ring_size,
	};
	if (r->size % PMU_ALIGN != 0 || (r->mode == PMU_MODE_OVERWRITE && r->slot_size == 0) ||
	    pmu_region_layout(&p, &want) != 0) {
		snprintf(why, len,
			 "size %" PRIu64 ", slot size %" PRIu32 ", ring size %" PRIu64
			 " make no layout",
			 r->size, r->slot_size, r->ring_size);
		return -EINVAL;
	}
	if (want.slot_size != r->slot_size || want.nslots != r->nslots ||
	    want.ring_off != r->ring_off || want.ring_size != r->ring_size) {
		snprintf(why, len,
			 "geometry (%" PRIu64 " slots of %" PRIu32 ", ring at %" PRIu64
			 " of %" PRIu64 ") is not the layout of its size (%" PRIu64
			 " slots of %" PRIu32 ", ring at %" PRIu64 " of %" PRIu64 ")",
			 r->nslots, r->slot_size, r->ring_off, r->ring_size, want.nslots,
			 want.slot_size, want.ring_off, want.ring_size);
		return -EINVAL;
	}
	if (store_size != 0 && (r->offset % PMU_ALIGN != 0 || r->offset < PMU_DATA_OFF ||
				r->offset > store_size || r->size > store_size - r->offset)) {
		snprintf(why, len,
			 "%" PRIu64 " bytes at %" PRIu64
			 " do not lie aligned in the data area [%u, %" PRIu64 ")",
			 r->size, r->offset, PMU_DATA_OFF, store_size);
		return -EINVAL;
	}
	return 0;
}

/* The one validation of a table entry: at open, and on a new entry before its commit. */
static int entry_check(const struct pmu_entry *e, uint64_t store_size, char *why, size_t len)
{
	struct pmu_region_info r;

	if (memchr(e->name, '\0', PMU_NAME_MAX) == NULL ||
	    memchr(e->owner, '\0', PMU_NAME_MAX) == NULL) {
		snprintf(why, len, "name or owner is not NUL-terminated");
		return -EINVAL;
	}
	entry_info(e, 0, &r);
	return pmu_region_check(&r, store_size, why, len);
}

/* A live entry a reader may use: its commit word checks and so does its geometry. */
static int entry_usable(const struct pmu_store *s, const struct pmu_entry *e)
{
	char why[8];

	return entry_live(e) && entry_check(e, s->len, why, sizeof(why)) == 0;
}

/* Names are per owner: two live entries must not hold one (owner, name). */
static int same_name(const struct pmu_entry *a, const struct pmu_entry *b)
{
	return strncmp(a->name, b->name, PMU_NAME_MAX) == 0 &&
	       strncmp(a->owner, b->owner, PMU_NAME_MAX) == 0;
}

static int find_live(const struct pmu_store *s, const char *owner, const char *name)
{
	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = entry_at(s, i);

		if (entry_live(e) && strncmp(e->name, name, PMU_NAME_MAX) == 0 &&
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
		if ((size_t)snprintf(named, sizeof(named), "%s.new-XXXXXX", path) >=
		    sizeof(named)) {
			err = ENAMETOOLONG;
			goto out_free;
		}
		fd = mkostemp(named, O_CLOEXEC);
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
	if (err == 0 && pwrite(fd, &sb, sizeof(sb), 0) != (ssize_t)sizeof(sb))
		err = errno ? errno : EIO;
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

static int sb_blank(const uint8_t *base)
{
	for (size_t i = 0; i < sizeof(struct pmu_sb); i++)
		if (base[i] != 0)
			return 0;
	return 1;
}

/* A store image under inspection; every fault found goes to fn. */
struct checker {
	const uint8_t *base;
	uint64_t len;
	pmu_fault_fn fn;
	void *arg;
	int faults;
};

__attribute__((format(printf, 5, 6))) static void
report(struct checker *c, enum pmu_fault_kind kind, int entry, int other, const char *fmt, ...)
{
	struct pmu_fault f = {.kind = kind, .entry = entry, .other = other};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f.msg = msg;
	c->faults++;
	if (c->fn != NULL)
		c->fn(&f, c->arg);
}

/* A name from the media, fit to print whatever its bytes are. */
static const char *shown(const char *name, char out[PMU_NAME_MAX])
{
	size_t i;

	for (i = 0; i < PMU_NAME_MAX - 1 && name[i] != '\0'; i++)
		out[i] = name[i] > ' ' && name[i] <= '~' ? name[i] : '?';
	out[i] = '\0';
	return out;
}

/* @return 0 when the superblock is this build's and describes this file. */
static int check_superblock(struct checker *c)
{
	const struct pmu_sb *sb = (const struct pmu_sb *)c->base;
	char magic[9];

	if (c->len < PMU_MIN_FILE_SIZE) {
		report(c, PMU_FAULT_FILE, -1, -1,
		       "%" PRIu64 " bytes is too small for a store (at least %u)", c->len,
		       PMU_MIN_FILE_SIZE);
		return -1;
	}
	if (sb_blank(c->base)) {
		report(c, PMU_FAULT_BLANK, -1, -1,
		       "superblock is zeroed (never formatted, or wiped); refusing; `ckptsrv "
		       "--format` makes it a new, empty store");
		return -1;
	}
	if (sb->magic != PMU_SB_MAGIC) {
		for (size_t i = 0; i < 8; i++) {
			char ch = (char)(sb->magic >> (8 * i));

			magic[i] = ch > ' ' && ch <= '~' ? ch : '.';
		}
		magic[8] = '\0';
		report(c, PMU_FAULT_FILE, -1, -1,
		       "not a holdfast store: magic %#018" PRIx64 " (\"%s\"), expected %#018llx "
		       "(\"HFPMU001\")",
		       sb->magic, magic, PMU_SB_MAGIC);
		return -1;
	}
	if (sb->version != PMU_SB_VERSION) {
		report(c, PMU_FAULT_FILE, -1, -1,
		       "store format version %" PRIu32 ", this build reads version %d", sb->version,
		       PMU_SB_VERSION);
		return -1;
	}
	if (sb->crc != pmu_sb_crc(sb))
		report(c, PMU_FAULT_FILE, -1, -1,
		       "superblock CRC %#010" PRIx32 " does not match its contents (%#010" PRIx32
		       ")",
		       sb->crc, pmu_sb_crc(sb));
	if (sb->size != c->len)
		report(c, PMU_FAULT_FILE, -1, -1,
		       "superblock says %" PRIu64 " bytes, the file has %" PRIu64
		       " (truncated, extended, or another store's superblock)",
		       sb->size, c->len);
	if (sb->nentries != PMU_MAX_REGIONS || sb->table_off != PMU_TABLE_OFF ||
	    sb->data_off != PMU_DATA_OFF)
		report(c, PMU_FAULT_FILE, -1, -1,
		       "superblock layout (%" PRIu32 " entries, table at %" PRIu64
		       ", data at %" PRIu64 ") is not this build's (%d, %d, %d)",
		       sb->nentries, sb->table_off, sb->data_off, PMU_MAX_REGIONS, PMU_TABLE_OFF,
		       PMU_DATA_OFF);
	return c->faults == 0 ? 0 : -1;
}

static void check_table(struct checker *c)
{
	const struct pmu_entry *tab = (const struct pmu_entry *)(c->base + PMU_TABLE_OFF);
	unsigned int ok[PMU_MAX_REGIONS], n = 0;
	char why[256], na[PMU_NAME_MAX], oa[PMU_NAME_MAX], nb[PMU_NAME_MAX], ob[PMU_NAME_MAX];

	for (unsigned int i = 0; i < PMU_MAX_REGIONS; i++) {
		const struct pmu_entry *e = &tab[i];
		uint64_t commit = load64(&e->commit);

		if (commit == 0)
			continue;
		if (!entry_live(e)) {
			/* A crash cannot leave this: the word is one aligned 8-byte store. */
			report(c, PMU_FAULT_COMMIT, (int)i, -1,
			       "table entry %u (region %s of %s): commit word %#018" PRIx64
			       " does not vouch for its body (%#018" PRIx64
			       "); no crash leaves this, the table is damaged",
			       i, shown(e->name, na), shown(e->owner, oa), commit,
			       pmu_entry_commit_word(e));
			continue;
		}
		if (entry_check(e, c->len, why, sizeof(why)) != 0) {
			report(c, PMU_FAULT_GEOMETRY, (int)i, -1,
			       "table entry %u (region %s of %s, %" PRIu64 " bytes at %" PRIu64
			       "): %s",
			       i, shown(e->name, na), shown(e->owner, oa), e->size, e->offset, why);
			continue;
		}
		ok[n++] = i;
	}
	for (unsigned int x = 0; x < n; x++) {
		const struct pmu_entry *a = &tab[ok[x]];

		for (unsigned int y = x + 1; y < n; y++) {
			const struct pmu_entry *b = &tab[ok[y]];

			/* Both checked: each lies inside the file, so no end wraps. */
			if (a->offset < b->offset + b->size && b->offset < a->offset + a->size)
				report(c, PMU_FAULT_OVERLAP, (int)ok[x], (int)ok[y],
				       "table entries %u (region %s of %s, bytes [%" PRIu64
				       ", %" PRIu64 ")) and %u (region %s of %s, bytes [%" PRIu64
				       ", %" PRIu64 ")) overlap",
				       ok[x], shown(a->name, na), shown(a->owner, oa), a->offset,
				       a->offset + a->size, ok[y], shown(b->name, nb),
				       shown(b->owner, ob), b->offset, b->offset + b->size);
			if (same_name(a, b))
				report(c, PMU_FAULT_DUPLICATE, (int)ok[x], (int)ok[y],
				       "table entries %u and %u both hold region %s of %s", ok[x],
				       ok[y], shown(a->name, na), shown(a->owner, oa));
		}
	}
}

/* @return the number of faults of the image. */
static int check_image(struct checker *c)
{
	if (check_superblock(c) == 0)
		check_table(c);
	return c->faults;
}

static void log_fault(const struct pmu_fault *f, void *arg)
{
	ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: %s", (const char *)arg, f->msg);
}

int pmu_store_check(const char *path, pmu_fault_fn fn, void *arg)
{
	struct checker c = {.fn = fn, .arg = arg};
	struct stat st;
	int fd, rc;

	if (path == NULL)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Shared: table writers hold it exclusively, so the table is read whole. */
	if (fstat(fd, &st) != 0 || flock(fd, LOCK_SH) != 0) {
		rc = -errno;
		goto out_close;
	}
	if (S_ISREG(st.st_mode)) {
		void *map;

		c.len = (uint64_t)st.st_size;
		if (c.len < PMU_MIN_FILE_SIZE) {
			rc = check_image(&c); /* reads nothing of a file that small */
			goto out_close;
		}
		map = mmap(NULL, c.len, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			goto out_close;
		}
		c.base = map;
		rc = check_image(&c);
		munmap(map, c.len);
	} else {
		/* Device DAX: only libpmem knows its length; nothing below writes. */
		size_t len;
		int is_pmem;
		void *map = pmem_map_file(path, 0, 0, 0, &len, &is_pmem);

		if (map == NULL) {
			rc = -errno;
			goto out_close;
		}
		c.base = map;
		c.len = len;
		rc = check_image(&c);
		pmem_unmap(map, len);
	}
out_close:
	close(fd);
	return rc;
}

/* The checks of pmu_store_check() on this mapping, each fault logged. @return 0 or EINVAL. */
static int check_mapped(const struct pmu_store *s)
{
	struct checker c = {.base = s->base, .len = s->len, .fn = log_fault, .arg = s->path};

	if (check_image(&c) == 0)
		return 0;
	ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
		 "%s: refusing the store: %d fault(s), each logged above", s->path, c.faults);
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
		if (size < PMU_MIN_FILE_SIZE || align_up(size, PMU_ALIGN, &size) != 0) {
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

		if (!entry_live(e) || e->offset >= s->len || e->size == 0)
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
	if (entry_check(e, s->len, why, sizeof(why)) != 0) {
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

	if (!valid_name(owner) || !valid_name(name))
		return -EINVAL;
	i = find_live(s, owner, name);
	if (i < 0 || !entry_usable(s, entry_at(s, (unsigned int)i)))
		return -ENOENT;
	if (out)
		entry_info(entry_at(s, (unsigned int)i), (unsigned int)i, out);
	return 0;
}

int pmu_region_delete(struct pmu_store *s, const char *owner, const char *name)
{
	struct pmu_entry *e;
	int i, rc;

	if (!valid_name(owner) || !valid_name(name))
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
			entry_info(e, i, &out[n]);
		n++;
	}
	return (int)n;
}

int pmu_region_lease(struct pmu_store *s, const char *owner, const char *name, uint64_t expires_ns)
{
	struct pmu_entry *e;
	int i;

	if (!valid_name(owner) || !valid_name(name))
		return -EINVAL;
	i = find_live(s, owner, name);
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
