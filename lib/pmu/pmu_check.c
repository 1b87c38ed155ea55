/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a store and its regions must be: region layout and checking, and the checks of a
 * whole store image (superblock, table). Opening, creating and pmu_store_check() all judge
 * by these, so that one rule decides. Every sum and product over media values is checked
 * or arranged so that it cannot wrap.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpmem.h>

#include "holdfast/pmu.h"
#include "pmu_check.h"

int pmu_name_valid(const char *n)
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
int pmu_align_up(uint64_t v, uint64_t a, uint64_t *out)
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

	if (p == NULL || !pmu_name_valid(p->name) || !pmu_name_valid(p->owner))
		return -EINVAL;
	if (p->size == 0 || p->size > (1ull << 48) || pmu_align_up(p->size, PMU_ALIGN, &size) != 0)
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
		if (pmu_align_up(p->ring_size, PMU_ALIGN, &ring) != 0 ||
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

void pmu_entry_info(const struct pmu_entry *e, unsigned int i, struct pmu_region_info *out)
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
	out->lease_ns = __atomic_load_n(&e->lease_ns, __ATOMIC_ACQUIRE);
	out->epoch = __atomic_load_n(&e->epoch, __ATOMIC_ACQUIRE);
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
	if (!pmu_name_valid(r->name) || !pmu_name_valid(r->owner)) {
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
int pmu_entry_check(const struct pmu_entry *e, uint64_t store_size, char *why, size_t len)
{
	struct pmu_region_info r;

	if (memchr(e->name, '\0', PMU_NAME_MAX) == NULL ||
	    memchr(e->owner, '\0', PMU_NAME_MAX) == NULL) {
		snprintf(why, len, "name or owner is not NUL-terminated");
		return -EINVAL;
	}
	pmu_entry_info(e, 0, &r);
	return pmu_region_check(&r, store_size, why, len);
}

/* Names are per owner: two live entries must not hold one (owner, name). */
int pmu_entry_same_name(const struct pmu_entry *a, const struct pmu_entry *b)
{
	return strncmp(a->name, b->name, PMU_NAME_MAX) == 0 &&
	       strncmp(a->owner, b->owner, PMU_NAME_MAX) == 0;
}

/* A live entry is one whose commit word says LIVE and vouches for the body it covers. */
int pmu_entry_live(const struct pmu_entry *e)
{
	uint64_t c = __atomic_load_n(&e->commit, __ATOMIC_ACQUIRE);

	return c != 0 && c == pmu_entry_commit_word(e);
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
		       "%" PRIu64 " bytes is too small for a store (at least %u): it holds no "
		       "regions, and removing it lets a new store be made",
		       c->len, PMU_MIN_FILE_SIZE);
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
		uint64_t commit = __atomic_load_n(&e->commit, __ATOMIC_ACQUIRE);

		if (commit == 0)
			continue;
		if (!pmu_entry_live(e)) {
			/* A crash cannot leave this: the word is one aligned 8-byte store. */
			report(c, PMU_FAULT_COMMIT, (int)i, -1,
			       "table entry %u (region %s of %s): commit word %#018" PRIx64
			       " does not vouch for its body (%#018" PRIx64
			       "); no crash leaves this, the table is damaged",
			       i, shown(e->name, na), shown(e->owner, oa), commit,
			       pmu_entry_commit_word(e));
			continue;
		}
		if (pmu_entry_check(e, c->len, why, sizeof(why)) != 0) {
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
			if (pmu_entry_same_name(a, b))
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

int pmu_check_image(const uint8_t *base, uint64_t len, pmu_fault_fn fn, void *arg)
{
	struct checker c = {.base = base, .len = len, .fn = fn, .arg = arg};

	return check_image(&c);
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
