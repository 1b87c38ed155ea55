/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The embedded backend (pmem:/path): this process maps the store itself. Writes are
 * non-temporal copies (or memcpy where the file is not pmem) and a barrier drains them, so
 * a batch of slices pays one drain. The file outlives the process, which is what a restart
 * needs. File permissions decide who maps it at all; within it, a client sees and touches
 * only its tenant's namespace, as through a server: another tenant's region is as missing
 * (-ENOENT) as one that does not exist. (Whether another process has a region open cannot
 * be known here: -EBUSY covers this client's own handles only.)
 *
 * Fencing (docs/checkpoint.md, "Failover"): a client bound to an epoch of a lease region
 * (ckpt_epoch_take(), ckpt_epoch_bind()) loads that region's epoch word before each write,
 * barrier, lease renewal, create and delete, and is refused -ESTALE, for good, once the
 * word moved past its epoch (or the lease region was deleted). There is no remote key to
 * withdraw here: a write that passed its check a moment before another process took the
 * epoch still lands, and so may bytes posted before a barrier that is then refused. The
 * window is the time between one load and one memcpy, but nothing bounds how long a thread
 * can be descheduled in it.
 *
 * Death notice: the client whose renewal of a lease succeeds (and the one that takes an
 * epoch, the holder to be) holds an OFD write lock on one byte of the store file, far beyond
 * its data, at an offset of the lease region's table entry and its current epoch
 * (lock_byte()). The lock belongs to this client's own open file description, so the kernel
 * drops it the moment the process dies, however it dies; a release (a renewal of
 * PMU_LEASE_RELEASE_MS) drops it at once. ckpt_lease_watch() polls the byte of the current
 * epoch with F_OFD_GETLK about every millisecond. A byte per epoch, because the holder it
 * took over from may still be alive (stopped, cut off) and hold the byte of its own epoch:
 * its death later must not make the new holder look dead. Two renewers within one epoch
 * share a byte; the one that could not get it looks dead once the other dies, until its own
 * next renewal takes it (a needless failover at worst: the epoch decides who writes).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ckpt_internal.h"

#define LOG_COMPONENT "ckpt.pmem"

/* Lease locks lie here and beyond, past any store's data: 2^32 bytes per table entry. */
#define LEASE_LOCK_BASE	  ((off_t)1 << 62)
#define LEASE_LOCK_EPOCHS ((uint64_t)1 << 32)
/* A renewal this short is a release (holdfast's clean stop): the lock goes at once. */
#define PMU_LEASE_RELEASE_MS 1
/* How often ckpt_lease_watch() looks at the lock and the lease. */
#define WATCH_POLL_NS 1000000L

enum lease_lock {
	LOCK_NONE,    /* not held by this client */
	LOCK_HELD,    /* held: the kernel drops it when this process dies */
	LOCK_REFUSED, /* another holder has it (said once; tried again at each renewal) */
};

struct pmem_client {
	struct pmu_store *s;
	int fd; /* the store file again: its open file description holds this client's locks */
	uint8_t lock[PMU_MAX_REGIONS];	      /* enum lease_lock per table entry */
	uint64_t lock_epoch[PMU_MAX_REGIONS]; /* the epoch whose byte it is */
	bool bound, fenced;
	struct pmu_region_info lease; /* the lease region bound to, as looked up */
	uint64_t epoch;		      /* the epoch bound to */
};

struct pmem_region {
	uint8_t *base;
	uint64_t file_off; /* of base in the store file */
	uint64_t lo, hi;   /* bytes written since the last barrier */
	int8_t in_place;   /* pmem_view()'s answer: -1 not asked yet, 0 no, 1 yes */
};

static struct pmem_client *client_of(const struct ckpt_client *c)
{
	return c->be;
}

static struct pmu_store *store_of(const struct ckpt_client *c)
{
	return client_of(c)->s;
}

/*
 * -ESTALE when this client is bound and its lease region's epoch moved past its own (or the
 * region is gone): one load of the mapped word, cheap enough for every write. Final: a
 * fenced client stays fenced, whatever the word says later.
 */
static int fence_check(struct ckpt_client *c)
{
	struct pmem_client *pc = client_of(c);
	uint64_t now;
	int rc;

	if (!pc->bound)
		return 0;
	if (pc->fenced)
		return -ESTALE;
	rc = pmu_region_epoch(pc->s, &pc->lease, &now);
	if (rc == 0 && now <= pc->epoch)
		return 0;
	pc->fenced = true;
	if (rc)
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: lease region %s was deleted while this client was bound to its "
			 "epoch %" PRIu64 ": fenced, nothing it writes is taken from now on",
			 c->target, pc->lease.name, pc->epoch);
	else
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: lease region %s is at epoch %" PRIu64 ", past this client's %" PRIu64
			 ": another process took over; fenced, nothing it writes is taken from now "
			 "on",
			 c->target, pc->lease.name, now, pc->epoch);
	return -ESTALE;
}

/*
 * The lock byte of table entry @p index at @p epoch, for F_OFD_* (l_pid must be 0). Epochs
 * 2^32 apart share one: by then nobody holds the older.
 */
static struct flock lock_byte(uint32_t index, uint64_t epoch, short type)
{
	return (struct flock){.l_type = type,
			      .l_whence = SEEK_SET,
			      .l_start = LEASE_LOCK_BASE + (off_t)index * (off_t)LEASE_LOCK_EPOCHS +
					 (off_t)(epoch % LEASE_LOCK_EPOCHS),
			      .l_len = 1};
}

static void lease_unlock(struct ckpt_client *c, uint32_t index);

/*
 * Hold the lease lock of region @p g at its epoch @p epoch (dropping one of an older epoch),
 * if nobody else holds it. Never waits.
 */
static void lease_lock(struct ckpt_client *c, const struct pmu_region_info *g, uint64_t epoch)
{
	struct pmem_client *pc = client_of(c);
	struct flock fl = lock_byte(g->index, epoch, F_WRLCK);

	if (pc->lock[g->index] != LOCK_NONE && pc->lock_epoch[g->index] != epoch)
		lease_unlock(c, g->index);
	if (pc->lock[g->index] == LOCK_HELD)
		return;
	if (fcntl(pc->fd, F_OFD_SETLK, &fl) == 0) {
		pc->lock[g->index] = LOCK_HELD;
		pc->lock_epoch[g->index] = epoch;
		return;
	}
	if (pc->lock[g->index] != LOCK_REFUSED)
		ckpt_log(CKPT_LOG_NOTICE, LOG_COMPONENT,
			 "%s: another process holds the death-notice lock of %s at epoch %" PRIu64
			 " (%s; a holder of this epoch still alive?): this client renews all the "
			 "same, and a watcher waits for the lease to run out instead",
			 c->target, g->name, epoch, strerror(errno));
	pc->lock[g->index] = LOCK_REFUSED;
	pc->lock_epoch[g->index] = epoch;
}

static void lease_unlock(struct ckpt_client *c, uint32_t index)
{
	struct pmem_client *pc = client_of(c);
	struct flock fl = lock_byte(index, pc->lock_epoch[index], F_UNLCK);

	if (pc->lock[index] == LOCK_HELD && fcntl(pc->fd, F_OFD_SETLK, &fl) != 0)
		ckpt_log(CKPT_LOG_WARNING, LOG_COMPONENT,
			 "%s: cannot drop the lease lock of table entry %u: %s; it goes when "
			 "this client disconnects",
			 c->target, index, strerror(errno));
	pc->lock[index] = LOCK_NONE;
}

static int pmem_connect(struct ckpt_client *c, const char *path)
{
	struct pmem_client *pc = calloc(1, sizeof(*pc));
	int err;

	if (pc == NULL)
		return -ENOMEM;
	pc->s = pmu_store_open(path, c->opts.store_size, c->opts.create_store ? PMU_CREATE : 0);
	if (pc->s == NULL) {
		err = errno;
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: cannot open the store: %s", path,
			 strerror(err));
		free(pc);
		return -err;
	}
	/* An open file description of this client's own: its lease locks are its alone. */
	pc->fd = open(path, O_RDWR | O_CLOEXEC);
	if (pc->fd < 0) {
		err = errno;
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: cannot open the store again for its lease locks: %s", path,
			 strerror(err));
		pmu_store_close(&pc->s);
		free(pc);
		return -err;
	}
	c->be = pc;
	return 0;
}

static void pmem_disconnect(struct ckpt_client *c)
{
	struct pmem_client *pc = client_of(c);

	/* Closing the description drops every lease lock of this client: a release. */
	close(pc->fd);
	pmu_store_close(&pc->s);
	free(pc);
	c->be = NULL;
}

static bool mine(const struct ckpt_client *c, const struct pmu_region_info *g)
{
	return strncmp(g->owner, c->opts.tenant, PMU_NAME_MAX) == 0;
}

/* Look a region up in this tenant's namespace. */
static int lookup_mine(struct ckpt_client *c, const char *name, struct pmu_region_info *g)
{
	return pmu_region_lookup(store_of(c), c->opts.tenant, name, g);
}

static int attach(struct ckpt_client *c, struct ckpt_region *r, const struct pmu_region_info *g)
{
	struct pmem_region *pr = calloc(1, sizeof(*pr));

	if (pr == NULL)
		return -ENOMEM;
	pr->base = pmu_region_base(store_of(c), g);
	pr->file_off = g->offset;
	pr->lo = UINT64_MAX;
	pr->in_place = -1;
	r->geo = *g;
	r->is_pmem = pmu_store_is_pmem(store_of(c));
	r->be = pr;
	return 0;
}

static int pmem_create(struct ckpt_client *c, const struct pmu_region_params *p,
		       struct ckpt_region *r)
{
	struct pmu_region_info g;
	int rc = fence_check(c);

	if (rc)
		return rc;

	if (p->owner != NULL && strncmp(p->owner, c->opts.tenant, PMU_NAME_MAX) != 0) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "create region %s: tenant %s cannot create for owner %s", p->name,
			 c->opts.tenant, p->owner);
		return -EACCES;
	}
	rc = pmu_region_create(store_of(c), p, &g);
	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "create region %s: %s", p->name,
			 strerror(-rc));
		return rc;
	}
	return attach(c, r, &g);
}

static int pmem_open(struct ckpt_client *c, const char *name, struct ckpt_region *r)
{
	struct pmu_region_info g;
	int rc = lookup_mine(c, name, &g);

	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "open region %s: %s", name, strerror(-rc));
		return rc;
	}
	return attach(c, r, &g);
}

static int pmem_close(struct ckpt_region *r)
{
	free(r->be);
	r->be = NULL;
	return 0;
}

static int pmem_remove(struct ckpt_client *c, const char *name)
{
	struct pmu_region_info g;
	int rc = fence_check(c);

	if (rc == 0)
		rc = lookup_mine(c, name, &g);
	if (rc == 0)
		rc = pmu_region_delete(store_of(c), c->opts.tenant, name);
	/* Its entry may hold another region next: a lease lock on it would be a lie. */
	if (rc == 0)
		lease_unlock(c, g.index);
	return rc;
}

static void describe(struct ckpt_client *c, const struct pmu_region_info *g,
		     struct ckpt_region_info *out)
{
	const uint8_t *base = pmu_region_base(store_of(c), g);

	memset(out, 0, sizeof(*out));
	out->r = *g;
	out->is_pmem = pmu_store_is_pmem(store_of(c));
	out->lease_alive = g->lease_ns > pmu_now_ns();
	out->ring_head =
		__atomic_load_n((const uint64_t *)(base + PMU_REGION_HEAD_OFF), __ATOMIC_ACQUIRE);
	out->ring_tail =
		__atomic_load_n((const uint64_t *)(base + PMU_REGION_TAIL_OFF), __ATOMIC_ACQUIRE);
}

static int pmem_list(struct ckpt_client *c, struct ckpt_region_info *out, unsigned int max)
{
	struct pmu_region_info all[PMU_MAX_REGIONS];
	int n = pmu_region_list(store_of(c), all, PMU_MAX_REGIONS), k = 0;

	for (int i = 0; i < n; i++) {
		if (!mine(c, &all[i]))
			continue;
		if ((unsigned int)k < max)
			describe(c, &all[i], &out[k]);
		k++;
	}
	return k;
}

static int pmem_stat(struct ckpt_client *c, const char *name, struct ckpt_region_info *out)
{
	struct pmu_region_info g;
	int rc = lookup_mine(c, name, &g);

	if (rc == 0)
		describe(c, &g, out);
	return rc;
}

/*
 * Renew, and hold the lease's death-notice lock (of the region's current epoch) while the
 * lease is held. The lock is taken before the lease is written, so that a watcher never
 * sees a renewed lease without its lock and calls the holder dead; a release writes the
 * lease first, then drops the lock.
 */
static int pmem_lease(struct ckpt_region *r, unsigned int ttl_ms)
{
	struct ckpt_client *c = r->cl;
	const bool release = ttl_ms <= PMU_LEASE_RELEASE_MS;
	struct pmu_region_info g;
	bool had;
	int rc = fence_check(c);

	if (rc)
		return rc;
	if (ttl_ms == 0)
		return -EINVAL;
	rc = lookup_mine(c, r->geo.name, &g); /* its entry and epoch as they are now */
	if (rc)
		return rc;
	had = client_of(c)->lock[g.index] == LOCK_HELD;
	if (!release)
		lease_lock(c, &g, g.epoch);
	rc = pmu_region_lease(store_of(c), g.owner, g.name,
			      pmu_now_ns() + (uint64_t)ttl_ms * 1000000ull);
	if (release || (rc != 0 && !had))
		lease_unlock(c, g.index);
	return rc;
}

static int pmem_write(struct ckpt_region *r, uint64_t off, const void *buf, size_t len)
{
	struct pmem_region *pr = r->be;
	int rc = fence_check(r->cl);

	if (rc)
		return rc; /* checked before the bytes go: a fenced client's stop here */
	if (off > r->geo.size || len > r->geo.size - off)
		return -EINVAL;
	pmu_write(store_of(r->cl), pr->base + off, buf, len);
	if (off < pr->lo)
		pr->lo = off;
	if (off + len > pr->hi)
		pr->hi = off + len;
	return 0;
}

/*
 * The durability point: a fenced client's barrier is refused, so nothing it wrote since its
 * last barrier is ever reported durable to it (the bytes are in the mapping all the same;
 * see the file comment).
 */
static int pmem_barrier(struct ckpt_region *r, uint64_t seq)
{
	struct pmem_region *pr = r->be;
	int rc = fence_check(r->cl);

	if (rc)
		return rc;
	if (pr->hi > pr->lo)
		pmu_drain_range(store_of(r->cl), pr->base + pr->lo, pr->hi - pr->lo);
	pr->lo = UINT64_MAX;
	pr->hi = 0;
	r->durable = seq;
	return 0;
}

/*
 * From here up a read goes through the file, not the mapping: a restarted process has
 * mapped the store afresh, and reading hundreds of MB through that mapping touched every
 * 4 KB page of it for the first time -- 2-3 us a page in a VM (a 1 M restore's 256 MB of
 * slots: ~150 ms of CPU; read into a reused buffer: ~65 ms). The file and its mapping
 * share their pages, so the bytes are the same.
 */
#define PMEM_READ_FILE_MIN (256u << 10)

static int pmem_read(struct ckpt_region *r, uint64_t off, void *buf, size_t len)
{
	struct pmem_region *pr = r->be;
	size_t done = 0;

	if (off > r->geo.size || len > r->geo.size - off)
		return -EINVAL;
	if (len < PMEM_READ_FILE_MIN || client_of(r->cl)->fd < 0) {
		memcpy(buf, pr->base + off, len);
		return 0;
	}
	while (done < len) {
		ssize_t n = pread(client_of(r->cl)->fd, (uint8_t *)buf + done, len - done,
				  (off_t)(pr->file_off + off + done));

		if (n <= 0) {
			/* The mapping still has them: a short or failed read costs time only. */
			memcpy((uint8_t *)buf + done, pr->base + off + done, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Reading in place (pmem_view): where the store's mapping is made of 2 MB pages (a tmpfs
 * mounted huge=always, hugetlbfs, and fsdax or devdax on real persistent memory, whose
 * extents are mapped by the PMD), a fresh mapping costs one fault per 2 MB, and reading
 * the slots where they lie spares the kernel's copy through the file (a 1 M restore's
 * 256 MB of slots: see docs/checkpoint.md, "Reading the slots in place"). On 4 KB pages the
 * first touch of each page costs more than the copy (in a VM 2-3 us a page), so pmem_read()
 * stays the way there.
 *
 * What decides is the mapping itself, not the file system's name or st_blksize (a file
 * written before a remount, or a huge page the kernel could not find, is on 4 KB pages
 * all the same): one page of the slots is touched and the page tables asked
 * (PAGEMAP_SCAN, Linux 6.7) whether it is mapped huge; only then is the rest mapped at once
 * (MADV_POPULATE_READ: cheap on 2 MB pages, 0.3 ms for 256 MB here) and asked again, every
 * page of it. A kernel without PAGEMAP_SCAN answers -EINVAL or -ENOTTY: then libpmem's
 * pmem_is_pmem() decides (a DAX mapping, 2 MB pages wherever the extents allow).
 */
#ifndef PAGEMAP_SCAN /* <linux/fs.h> of Linux 6.7; older headers lack it */
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_HUGE	(1 << 6)
#endif
#ifndef MADV_POPULATE_READ /* Linux 5.14; older headers lack it */
#define MADV_POPULATE_READ 22
#endif
#define HUGE_2M ((uintptr_t)2 << 20)

/* ckpt_pmem_test_in_place(): -1 the mapping decides, 0 never in place, 1 always. */
static int in_place_forced = -1;

void ckpt_pmem_test_in_place(int force)
{
	in_place_forced = force;
}

/*
 * Whether every page of [@p lo, @p hi) is present and mapped huge: 1 or 0, or -errno when
 * the kernel cannot tell (no PAGEMAP_SCAN).
 */
static int mapped_huge(uintptr_t lo, uintptr_t hi)
{
	struct page_region v;
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.start = lo,
		.end = hi,
		.vec = (uintptr_t)&v,
		.vec_len = 1,
		.category_mask = PAGE_IS_PRESENT | PAGE_IS_HUGE,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_HUGE,
	};
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), n;

	if (fd < 0)
		return -errno;
	n = ioctl(fd, PAGEMAP_SCAN, &a);
	n = n < 0 ? -errno : n;
	close(fd);
	if (n < 0)
		return n;
	/* One run of matching pages, and it is all of them. */
	return n == 1 && v.start == lo && v.end == hi;
}

/* The decision above, for [@p p, @p p + @p len) of the store's mapping. */
static bool in_place_pays(const struct ckpt_region *r, const uint8_t *p, size_t len)
{
	const uintptr_t lo = ((uintptr_t)p + HUGE_2M - 1) & ~(HUGE_2M - 1);
	const uintptr_t hi = ((uintptr_t)p + len) & ~(HUGE_2M - 1);
	int rc;

	if (hi <= lo)
		return false; /* under one 2 MB page: read() copies it about as fast */
	(void)*(const volatile uint8_t *)lo;
	rc = mapped_huge(lo, lo + HUGE_2M);
	if (rc == 1) {
		const uintptr_t all = (uintptr_t)p & ~(uintptr_t)4095;

		if (madvise((void *)all, (uintptr_t)p + len - all, MADV_POPULATE_READ) != 0)
			return false;
		rc = mapped_huge(lo, hi);
	}
	return rc < 0 ? r->is_pmem : rc == 1;
}

/*
 * Bytes of the region to read in place, or NULL: read them with pmem_read(). The store is
 * shared: another process may write them while they are read, so whoever reads them
 * copies each piece before validating it.
 */
static const void *pmem_view(struct ckpt_region *r, uint64_t off, size_t len)
{
	struct pmem_region *pr = r->be;

	if (off > r->geo.size || len > r->geo.size - off)
		return NULL;
	if (in_place_forced >= 0)
		return in_place_forced ? pr->base + off : NULL;
	if (pr->in_place < 0)
		pr->in_place = in_place_pays(r, pr->base + off, len);
	return pr->in_place ? pr->base + off : NULL;
}

static const void *pmem_map(struct ckpt_region *r, uint64_t off, size_t len)
{
	struct pmem_region *pr = r->be;

	if (off > r->geo.size || len > r->geo.size - off)
		return NULL;
	return pr->base + off;
}

/* Bind @p c to @p epoch of its lease region @p g (looked up just now). */
static void bind(struct ckpt_client *c, const struct pmu_region_info *g, uint64_t epoch)
{
	struct pmem_client *pc = client_of(c);

	pc->lease = *g;
	pc->epoch = epoch;
	pc->bound = true;
	pc->fenced = false;
}

static int pmem_epoch_take(struct ckpt_region *r, uint64_t seen, uint64_t *epoch)
{
	struct ckpt_client *c = r->cl;
	struct pmu_region_info g;
	int rc;

	if (seen == UINT64_MAX)
		return -EINVAL;
	rc = pmu_region_epoch_cas(store_of(c), r->geo.owner, r->geo.name, seen, seen + 1);
	if (rc == 0)
		rc = lookup_mine(c, r->geo.name, &g);
	if (rc) {
		ckpt_log(rc == -ESTALE ? CKPT_LOG_NOTICE : CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: cannot take epoch %" PRIu64 " of %s: %s", c->target, seen + 1,
			 r->geo.name,
			 rc == -ESTALE ? "it is no longer at the epoch seen (someone else took it)"
				       : strerror(-rc));
		return rc;
	}
	bind(c, &g, seen + 1);
	/* The taker is the holder to be: watchers see it alive from now on, not dead. */
	lease_lock(c, &g, seen + 1);
	*epoch = seen + 1;
	return 0;
}

/*
 * An epoch above the region's own was never taken: binding to it would let a take of that
 * very epoch by someone else leave this client unfenced. Refused as a caller's mistake.
 */
static int pmem_epoch_bind(struct ckpt_client *c, const char *lease_name, uint64_t epoch)
{
	struct pmu_region_info g;
	int rc = lookup_mine(c, lease_name, &g);

	if (rc) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT, "%s: cannot bind to lease region %s: %s",
			 c->target, lease_name, strerror(-rc));
		return rc;
	}
	if (g.epoch > epoch) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: cannot bind to epoch %" PRIu64 " of %s: it is at %" PRIu64
			 " already (another process took over)",
			 c->target, epoch, lease_name, g.epoch);
		return -ESTALE;
	}
	if (g.epoch < epoch) {
		ckpt_log(CKPT_LOG_ERR, LOG_COMPONENT,
			 "%s: cannot bind to epoch %" PRIu64 " of %s: it is only at %" PRIu64
			 "; bind to an epoch ckpt_epoch_take() gave",
			 c->target, epoch, lease_name, g.epoch);
		return -EINVAL;
	}
	bind(c, &g, epoch);
	return 0;
}

/* Whether anyone (but this client's own description) holds @p g's lock at its epoch. */
static bool lease_locked(const struct pmem_client *pc, const struct pmu_region_info *g)
{
	struct flock fl = lock_byte(g->index, g->epoch, F_WRLCK);

	/* A lock that cannot be asked about counts as held: the lease still decides. */
	return fcntl(pc->fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The lease is free once it ran out, or once it was renewed at least once and nobody holds
 * its lock (the holder released it or died). A lease never renewed is waited for: its
 * first holder may be starting. A holder that could not get the lock (another holder of
 * the same epoch still alive) is seen through its lease only. Asked by the holder itself, its own
 * lock does not count (OFD locks never conflict with their own description).
 */
static int pmem_lease_watch(struct ckpt_region *r, unsigned int timeout_ms)
{
	struct ckpt_client *c = r->cl;
	const uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	const struct timespec nap = {0, WATCH_POLL_NS};

	for (;;) {
		struct pmu_region_info g;
		int rc = lookup_mine(c, r->geo.name, &g);

		if (rc)
			return rc;
		if (g.lease_ns != 0 && g.lease_ns <= pmu_now_ns())
			return 0;
		if (g.lease_ns != 0 && !lease_locked(client_of(c), &g))
			return 0;
		if (mono_ns() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}

const struct ckpt_byte_ops ckpt_pmem_ops = {
	.target =
		{
			.scheme = "pmem",
			.connect = pmem_connect,
			.disconnect = pmem_disconnect,
			.create = pmem_create,
			.open = pmem_open,
			.close = pmem_close,
			.remove = pmem_remove,
			.list = pmem_list,
			.stat = pmem_stat,
			.lease = pmem_lease,
			.barrier = pmem_barrier,
			.poll = NULL,
			.epoch_take = pmem_epoch_take,
			.epoch_bind = pmem_epoch_bind,
			.lease_watch = pmem_lease_watch,
		},
	.applies_journal = false,
	.write = pmem_write,
	.read = pmem_read,
	.map = pmem_map,
	.view = pmem_view,
};
