/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for ckptsrv's request dispatch (ckptsrv.c, quota.c), in process, on a
 * real store: a file on /dev/shm, emptied after each input. No sockets, no libfabric: the
 * memory registration the handlers ask for is a double that hands out a fake key and
 * checks the memory lies in the store.
 *
 * Three tenants (a, b, c) hold two sessions each (slots 0-5; c may hold a third, slot 6),
 * with quotas small enough to be hit: a and b the defaults here (3 regions, 96 KiB, 2
 * sessions, 3 handles), c a quota line (5 regions, 50% of the store, 3 sessions, 4
 * handles). The input is a sequence of steps; each takes bytes as it needs them (zeros
 * once the input runs out):
 *
 *	op     one byte, modulo the ops below
 *	slot   one byte, modulo 7: the session acting (slot 6 when c has no third: slot 5)
 *	then per op:
 *	CREATE  name, mode (1, 2 or 3: 3 does not encode, as a client cannot send it), size,
 *	        slot size and ring size, each a byte choosing from a table of hostile values
 *	        (or the next 8 or 4 bytes)
 *	OPEN, DELETE, STAT  name: a byte choosing from r0..r4, "x y", "a/b", "probe"
 *	CLOSE, LEASE  handle (a byte: this session's k-th, another session's k-th, the next 8
 *	        bytes, or 0), LEASE a ttl byte
 *	PERSIST handle, offset, length, head (bytes choosing from tables relative to the
 *	        handle's region)
 *	LIST, PING
 *	WRITE   a one-sided write the fuzzer does itself, as a client would through its key,
 *	        into a region the session holds open, within its size, at the base the handler
 *	        recorded: a tenant-tagged pattern (two bytes offset, two length), or a value
 *	        into the ring's head or tail word
 *	RECONNECT  the session ends (its handles go) and its tenant is admitted again
 *	EXTRA   a session more for the slot's tenant: admitted only below its quota
 *	MRFAIL  a byte: bit 0, the next registration fails; bit 1, the listener's endpoint is
 *	        wedged (or no longer): CREATE and OPEN must then fail with EIO
 *	TAKE    handle, then the seen epoch: a byte choosing the region's epoch, one less, one
 *	        more, 0, UINT64_MAX or the next 8 bytes
 *	BIND    name, then an epoch chosen the same way (relative to that name's region)
 *	WATCH   handle, then a timeout of 0, 1 or 2 ms
 *
 * Each request goes through the codec as it would on the wire (encode, decode as a server
 * takes requests), and each reply must encode and decode as a client takes replies. After
 * every step the oracle checks:
 *	- the store's table holds exactly the regions the model has, tenant by tenant, where
 *	  the CREATE replies put them, disjoint, each one's bytes what its tenant wrote (a
 *	  CREATE zeroes its bytes: one laid over another tenant's breaks that one's pattern);
 *	- every open handle is its session's tenant's and maps exactly a live region of it;
 *	- LIST, STAT and OPEN answer with the tenant's own regions only, and a name another
 *	  tenant holds answers as a name nobody holds;
 *	- no tenant is over a quota, and every quota refusal was due;
 *	- fencing as the model follows it: a TAKE wins exactly when the seen epoch is the
 *	  region's (which then moves by one), binds its session and fences every other session
 *	  bound to an older epoch of that region; a BIND below the region's epoch is ESTALE,
 *	  above it EINVAL; a
 *	  fenced session, or one whose lease region went away, is answered ESTALE whatever it
 *	  asks (PING too), and any other is never answered ESTALE but to TAKE and BIND;
 *	- WATCH answers 0 when the lease is free, ETIMEDOUT when it outlives the wait;
 *	- a session that ends holding a running lease (it renewed it last) leaves it released:
 *	  an expiry in the past, not 0.
 * A store whose owners share one namespace (before issue 11's finding 7 was fixed in
 * lib/pmu) answers another tenant's name with EACCES, and a CREATE of it with EEXIST; a
 * probe at start tells which store this is, and only that much is then let pass.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckptsrv.h"
#include "hf_log.h"

#define STORE_SIZE   (1u << 20)
#define NSLOTS	     7
#define NTENANTS     3
#define MAX_STEPS    64
#define MAX_MODEL    PMU_MAX_REGIONS
#define WRITE_MAX    512
#define TENANT_BYTES (96u << 10)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum op {
	OP_CREATE,
	OP_OPEN,
	OP_CLOSE,
	OP_DELETE,
	OP_LIST,
	OP_STAT,
	OP_PERSIST,
	OP_LEASE,
	OP_PING,
	OP_WRITE,
	OP_RECONNECT,
	OP_EXTRA,
	OP_MRFAIL,
	OP_TAKE,
	OP_BIND,
	OP_WATCH,
	OP_COUNT,
};

static const char *const tenants[NTENANTS] = {"a", "b", "c"};
static const char *const names[] = {"r0", "r1", "r2", "r3", "r4", "x y", "a/b", "probe"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* A region as the model knows it. */
struct mregion {
	bool live;
	int tenant;
	struct pmu_region_info info; /* as its CREATE reply gave it */
	uint8_t *shadow;	     /* its bytes as they must be */
	int holder;		     /* the slot whose LEASE renewed it last, or -1 */
};

/* A slot's session's binding as the model follows it (TAKE, BIND). */
struct mbind {
	bool bound, fenced;
	int tenant;
	char name[PMU_NAME_MAX];
	uint64_t created_ns; /* of the region bound to: one made again is another */
	uint64_t epoch;
};

static struct ckptsrv srv;
static struct ckptsrv_listener lis;
static struct ckptsrv_session *slots[NSLOTS];
static struct mbind binds[NSLOTS];
static struct mregion model[MAX_MODEL];
static char path[64];
static uint8_t *store_base;
static bool namespaces; /* another tenant's region is as missing as none (the probe says) */
static bool mr_fail;
static uint64_t fake_key;
static uint8_t frame[CKPT_PROTO_FRAME_MAX];
static struct ckpt_region_info items[CKPT_PROTO_LIST_MAX];

/* The input, read a byte at a time; zeros once it runs out. */
struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t u8(struct input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static uint64_t u64(struct input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | u8(in);
	return v;
}

static uint16_t u16(struct input *in)
{
	uint16_t hi = u8(in);

	return (uint16_t)(hi << 8 | u8(in));
}

/* What the oracle found: the input that got here is kept by libFuzzer. */
static void broken(const char *what, int step)
{
	fprintf(stderr, "fuzz_dispatch: step %d: %s\n", step, what);
	abort();
}

/* ---- the registration double ---- */

int ckptsrv_mr_reg(struct ckptsrv_listener *l, void *base, uint64_t len, struct fid_mr **mr,
		   uint64_t *key)
{
	(void)l;
	if ((uint8_t *)base < store_base || len > STORE_SIZE ||
	    (uint8_t *)base - store_base > (ptrdiff_t)(STORE_SIZE - len))
		broken("a registration outside the store", -1);
	if (mr_fail) {
		mr_fail = false;
		return -ENOMEM;
	}
	*mr = NULL;
	*key = ++fake_key;
	return 0;
}

/* ---- the model ---- */

static int tenant_of(const char *name)
{
	for (int t = 0; t < NTENANTS; t++)
		if (strcmp(tenants[t], name) == 0)
			return t;
	return -1;
}

static struct mregion *find(int tenant, const char *name)
{
	for (int i = 0; i < MAX_MODEL; i++)
		if (model[i].live && model[i].tenant == tenant &&
		    strcmp(model[i].info.name, name) == 0)
			return &model[i];
	return NULL;
}

/* Does a tenant other than @p tenant hold a region named @p name? */
static bool foreign(int tenant, const char *name)
{
	for (int t = 0; t < NTENANTS; t++)
		if (t != tenant && find(t, name) != NULL)
			return true;
	return false;
}

static void model_add(int tenant, const struct pmu_region_info *info)
{
	for (int i = 0; i < MAX_MODEL; i++) {
		if (model[i].live)
			continue;
		model[i].live = true;
		model[i].holder = -1;
		model[i].tenant = tenant;
		model[i].info = *info;
		model[i].shadow = calloc(1, info->size);
		if (model[i].shadow == NULL)
			abort();
		return;
	}
	broken("more regions than the table holds", -1);
}

static void model_drop(struct mregion *m)
{
	free(m->shadow);
	memset(m, 0, sizeof(*m));
}

static void limits(int tenant, struct ckptsrv_limits *lim, uint64_t *cap)
{
	ckptsrv_limits_of(&srv.cfg, tenants[tenant], lim);
	*cap = lim->bytes_pct == 0 ? lim->bytes
				   : (uint64_t)STORE_SIZE / 100 * lim->bytes_pct +
					     (uint64_t)STORE_SIZE % 100 * lim->bytes_pct / 100;
}

static void usage(int tenant, unsigned int *regions, uint64_t *bytes, unsigned int *handles,
		  unsigned int *sessions)
{
	*regions = 0;
	*bytes = 0;
	*handles = 0;
	*sessions = 0;
	for (int i = 0; i < MAX_MODEL; i++) {
		if (model[i].live && model[i].tenant == tenant) {
			(*regions)++;
			*bytes += model[i].info.size;
		}
	}
	for (struct ckptsrv_session *s = srv.sessions; s != NULL; s = s->next) {
		if (tenant_of(s->tenant) == tenant) {
			(*sessions)++;
			*handles += s->nopens;
		}
	}
}

static bool same_region(const struct pmu_region_info *a, const struct pmu_region_info *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->owner, b->owner) == 0 &&
	       a->index == b->index && a->offset == b->offset && a->size == b->size &&
	       a->mode == b->mode && a->ring_size == b->ring_size;
}

/* ---- the oracle, after every step ---- */

static void check_all(int step)
{
	static struct pmu_region_info all[PMU_MAX_REGIONS];
	int n = pmu_region_list(srv.store, all, PMU_MAX_REGIONS), live = 0, sessions = 0;

	if (n < 0 || n > PMU_MAX_REGIONS)
		broken("the table lists an impossible count", step);
	for (int i = 0; i < n; i++) {
		struct mregion *m = find(tenant_of(all[i].owner), all[i].name);

		if (m == NULL || !same_region(&m->info, &all[i]))
			broken("the table holds a region the model does not", step);
	}
	for (int i = 0; i < MAX_MODEL; i++) {
		const struct pmu_region_info *r = &model[i].info;

		if (!model[i].live)
			continue;
		live++;
		if (r->offset > STORE_SIZE || r->size > STORE_SIZE - r->offset)
			broken("a region outside the store", step);
		for (int j = 0; j < i; j++)
			if (model[j].live &&
			    r->offset < model[j].info.offset + model[j].info.size &&
			    model[j].info.offset < r->offset + r->size)
				broken("two live regions share bytes", step);
		if (memcmp(store_base + r->offset, model[i].shadow, r->size) != 0)
			broken(model[i].tenant == 0   ? "tenant a's bytes changed under it"
			       : model[i].tenant == 1 ? "tenant b's bytes changed under it"
						      : "tenant c's bytes changed under it",
			       step);
	}
	if (live != n)
		broken("the model holds a region the table does not", step);
	for (struct ckptsrv_session *s = srv.sessions; s != NULL; s = s->next) {
		int t = tenant_of(s->tenant);
		unsigned int opens = 0;

		sessions++;
		for (struct ckptsrv_open *o = s->opens; o != NULL; o = o->next) {
			struct mregion *m = find(t, o->info.name);

			opens++;
			if (strcmp(o->info.owner, s->tenant) != 0)
				broken("a session holds another tenant's handle", step);
			if (m == NULL || !same_region(&m->info, &o->info) ||
			    (uint8_t *)o->base != store_base + m->info.offset)
				broken("a handle maps what is not its tenant's live region", step);
		}
		if (opens != s->nopens)
			broken("a session miscounts its handles", step);
	}
	if ((unsigned int)sessions != srv.nsessions)
		broken("the server miscounts its sessions", step);
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i] != NULL && slots[i]->fenced != binds[i].fenced)
			broken(binds[i].fenced ? "a session the model fenced is not fenced"
					       : "a session is fenced that the model did not fence",
			       step);
	for (struct ckptsrv_session *s = srv.sessions; s != NULL; s = s->next)
		for (struct ckptsrv_open *o = s->opens; o != NULL; o = o->next)
			for (struct ckptsrv_session *t = s; t != NULL; t = t->next)
				for (struct ckptsrv_open *p = t->opens; p != NULL; p = p->next)
					if (p != o && p->handle == o->handle)
						broken("two opens share a handle", step);
	for (int t = 0; t < NTENANTS; t++) {
		struct ckptsrv_limits lim;
		unsigned int regions, handles, nsess;
		uint64_t bytes, cap;

		limits(t, &lim, &cap);
		usage(t, &regions, &bytes, &handles, &nsess);
		if (regions > lim.regions || bytes > cap || handles > lim.handles ||
		    nsess > lim.sessions)
			broken("a tenant is over a quota", step);
	}
}

/* ---- requests, through the codec ---- */

static int slot_of(const struct ckptsrv_session *s)
{
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i] == s)
			return i;
	return -1;
}

/* The store's epoch of @p tenant's region @p name (0 when there is none). */
static uint64_t epoch_now(int tenant, const char *name)
{
	struct pmu_region_info cur;

	return pmu_region_lookup(srv.store, tenants[tenant], name, &cur) == 0 ? cur.epoch : 0;
}

/* Must the server answer this slot's session ESTALE whatever it asks? */
static bool model_stale(int slot)
{
	const struct mbind *b = &binds[slot];
	struct mregion *m;

	if (b->fenced)
		return true;
	if (!b->bound)
		return false;
	m = find(b->tenant, b->name);
	return m == NULL || m->info.created_ns != b->created_ns ||
	       epoch_now(b->tenant, b->name) > b->epoch;
}

/*
 * Play @p req for @p s as the server would receive it. @return false when the client
 * could not have sent it (it does not encode), or when it was answered ESTALE as a fenced
 * session must be (nothing else to check); else *rep holds the reply, decoded as the
 * client takes it (its LIST entries in items[]).
 */
static bool play(struct ckptsrv_session *s, struct ckpt_msg *req, struct ckpt_msg *rep, int step)
{
	struct ckpt_msg got, out = {0};
	int n = ckpt_proto_encode(req, frame, sizeof(frame)), slot = slot_of(s);
	bool stale = slot >= 0 && model_stale(slot);

	if (n < 0)
		return false;
	if (ckpt_proto_decode(frame, (size_t)n, CKPT_ACCEPT_REQUEST, &got, NULL, 0) != 0)
		broken("an encoded request does not decode", step);
	out.type = got.type | CKPT_MSG_REPLY;
	out.seq = got.seq;
	out.status = ckptsrv_dispatch(s, &got, &out);
	if (out.status > 0 || out.status < -4095)
		broken("a status out of the errno range", step);
	n = ckpt_proto_encode(&out, frame, sizeof(frame));
	if (out.type == (CKPT_MSG_LIST | CKPT_MSG_REPLY) && out.status == 0)
		free(out.u.list.items);
	if (n < 0)
		broken("a reply that does not encode", step);
	if (ckpt_proto_decode(frame, (size_t)n, CKPT_ACCEPT_REPLY, rep, items,
			      CKPT_PROTO_LIST_MAX) != 0)
		broken("a reply the client would refuse", step);
	if (slot < 0)
		return true;
	if (stale && rep->status != -ESTALE)
		broken("a fenced session was answered other than ESTALE", step);
	if (!stale && rep->status == -ESTALE && req->type != CKPT_MSG_TAKE &&
	    req->type != CKPT_MSG_BIND)
		broken("ESTALE to a session that is not fenced", step);
	if (stale) {
		binds[slot].fenced = true;
		return false;
	}
	return true;
}

/*
 * A name the tenant does not hold must answer as one nobody holds: ENOENT (EINVAL for a
 * name no region may have). Before per-owner namespaces, another's answered EACCES.
 */
static void check_missing(int tenant, const char *name, int status, int step)
{
	bool valid = ckptsrv_name_ok(name);

	if (status == 0)
		broken("a request on a region the tenant does not hold succeeded", step);
	if (foreign(tenant, name) && !namespaces && status == -EACCES)
		return;
	if (status != -ENOENT && !(status == -EINVAL && !valid))
		broken(foreign(tenant, name) ? "another tenant's name answers unlike a missing one"
					     : "a missing name answers other than ENOENT",
		       step);
}

static uint64_t pick(struct input *in, const uint64_t *table, size_t n)
{
	uint8_t b = u8(in);

	return b < n ? table[b] : b < n + 16 ? u64(in) : table[b % n];
}

/* The reply to a CREATE or OPEN hands out a handle of this session to this region. */
static void check_opened(struct ckptsrv_session *s, const struct ckpt_msg *rep, int step)
{
	const struct pmu_region_info *r = &rep->u.opened.info;
	unsigned int found = 0;

	for (struct ckptsrv_open *o = s->opens; o != NULL; o = o->next)
		found += o->handle == rep->u.opened.handle && o->info.index == r->index;
	if (found != 1)
		broken("a handle handed out is not the session's, once", step);
	if (rep->u.opened.base !=
	    (lis.virt_addr ? (uint64_t)(uintptr_t)(store_base + r->offset) : 0))
		broken("a reply gives another base than the region's", step);
}

static void do_create(struct ckptsrv_session *s, int t, struct input *in, int step)
{
	static const uint64_t sizes[] = {0,	     1,
					 4095,	     4096,
					 8192,	     12288,
					 16384,	     65536,
					 98304,	     131072,
					 262144,     1u << 20,
					 UINT64_MAX, UINT64_MAX - 4095,
					 1ull << 48, (1ull << 48) + 1};
	static const uint64_t slot_sizes[] = {0, 1, 64, 128, 256, 1024, 4096, 65536, UINT32_MAX};
	static const uint64_t rings[] = {
		0, 4096, 8192, 65536, UINT64_MAX, UINT64_MAX - 4095, 1ull << 63};
	struct ckpt_msg req = {.type = CKPT_MSG_CREATE, .seq = (uint32_t)step}, rep;
	const char *name = names[u8(in) % NNAMES];
	struct pmu_region_params p = {.name = name, .owner = tenants[t]};
	struct pmu_region_info want;
	struct ckptsrv_limits lim;
	unsigned int regions, handles, nsess;
	uint64_t bytes, cap;
	struct mregion *had = find(t, name);

	strcpy(req.u.create.name, name);
	req.u.create.mode = (uint32_t)(u8(in) % 3 + 1);
	req.u.create.size = pick(in, sizes, sizeof(sizes) / sizeof(sizes[0]));
	req.u.create.slot_size = (uint32_t)pick(in, slot_sizes, sizeof(slot_sizes) / 8);
	req.u.create.ring_size = pick(in, rings, sizeof(rings) / sizeof(rings[0]));
	p.mode = (enum pmu_mode)req.u.create.mode;
	p.size = req.u.create.size;
	p.slot_size = req.u.create.slot_size;
	p.ring_size = req.u.create.ring_size;
	limits(t, &lim, &cap);
	usage(t, &regions, &bytes, &handles, &nsess);
	if (!play(s, &req, &rep, step))
		return;
	if (rep.status == 0) {
		const struct pmu_region_info *r = &rep.u.opened.info;

		if (strcmp(r->owner, tenants[t]) != 0 || strcmp(r->name, name) != 0)
			broken("CREATE answered with a region not asked for", step);
		if (had != NULL || (!namespaces && foreign(t, name)))
			broken("CREATE made a second region of one name", step);
		if (r->offset > STORE_SIZE || r->size > STORE_SIZE - r->offset)
			broken("CREATE placed a region outside the store", step);
		for (uint64_t i = 0; i < r->size; i++)
			if (store_base[r->offset + i] != 0)
				broken("CREATE left bytes that are not zero", step);
		check_opened(s, &rep, step);
		model_add(t, r);
		return;
	}
	switch (-rep.status) {
	case EDQUOT:
		if (pmu_region_layout(&p, &want) != 0 ||
		    (regions < lim.regions && want.size <= cap && bytes <= cap - want.size))
			broken("CREATE refused EDQUOT within the quota", step);
		break;
	case EMFILE:
		if (handles < lim.handles && s->nopens < CKPTSRV_MAX_OPENS)
			broken("CREATE refused EMFILE within the quota", step);
		break;
	case EEXIST:
		if (had == NULL && (namespaces || !foreign(t, name)))
			broken("CREATE refused EEXIST for a name the tenant does not hold", step);
		break;
	case EIO:
		if (!lis.wedged)
			broken("CREATE refused EIO on an endpoint that is not wedged", step);
		break;
	case EINVAL:
	case ENOSPC:
	case ENOMEM:
		break;
	default:
		broken("CREATE failed with an unexpected errno", step);
	}
}

static void do_named(struct ckptsrv_session *s, int t, enum op op, struct input *in, int step)
{
	struct ckpt_msg req = {.seq = (uint32_t)step}, rep;
	const char *name = names[u8(in) % NNAMES];
	struct mregion *m = find(t, name);
	unsigned int regions, handles, nsess;
	struct ckptsrv_limits lim;
	uint64_t bytes, cap;
	bool busy = false;

	req.type = op == OP_OPEN ? CKPT_MSG_OPEN : op == OP_STAT ? CKPT_MSG_STAT : CKPT_MSG_DELETE;
	strcpy(req.u.name.name, name);
	limits(t, &lim, &cap);
	usage(t, &regions, &bytes, &handles, &nsess);
	for (struct ckptsrv_session *o = srv.sessions; m != NULL && o != NULL; o = o->next)
		for (struct ckptsrv_open *h = o->opens; o != s && h != NULL; h = h->next)
			busy |= h->info.index == m->info.index;
	if (!play(s, &req, &rep, step))
		return;
	if (op == OP_OPEN && lis.wedged) {
		if (rep.status != -EIO)
			broken("OPEN on a wedged endpoint did not fail with EIO", step);
		return;
	}
	if (m == NULL) {
		check_missing(t, name, rep.status, step);
		return;
	}
	switch (op) {
	case OP_OPEN:
		if (rep.status == 0 && !same_region(&rep.u.opened.info, &m->info))
			broken("OPEN answered with another region", step);
		if (rep.status == 0)
			check_opened(s, &rep, step);
		if (rep.status == -EMFILE && handles < lim.handles && s->nopens < CKPTSRV_MAX_OPENS)
			broken("OPEN refused EMFILE within the quota", step);
		if (rep.status != 0 && rep.status != -EMFILE && rep.status != -ENOMEM)
			broken("OPEN of the tenant's own region failed", step);
		break;
	case OP_STAT:
		if (rep.status != 0 || !same_region(&rep.u.stat.r, &m->info))
			broken("STAT of the tenant's own region failed or named another", step);
		break;
	default:
		if (rep.status == 0 && busy)
			broken("DELETE of a region open in another session", step);
		if (rep.status == -EBUSY && !busy)
			broken("DELETE refused EBUSY with no other session holding it", step);
		if (rep.status != 0 && rep.status != -EBUSY)
			broken("DELETE of the tenant's own region failed", step);
		if (rep.status == 0)
			model_drop(m);
		break;
	}
}

static void do_list(struct ckptsrv_session *s, int t, int step)
{
	struct ckpt_msg req = {.type = CKPT_MSG_LIST, .seq = (uint32_t)step}, rep;
	unsigned int regions, handles, nsess;
	uint64_t bytes;

	usage(t, &regions, &bytes, &handles, &nsess);
	if (!play(s, &req, &rep, step))
		return;
	if (rep.status != 0 || rep.u.list.n != rep.u.list.total || rep.u.list.n != regions)
		broken("LIST does not count the tenant's regions", step);
	for (uint32_t i = 0; i < rep.u.list.n; i++) {
		struct mregion *m = find(t, items[i].r.name);

		if (strcmp(items[i].r.owner, tenants[t]) != 0)
			broken("LIST shows another tenant's region", step);
		if (m == NULL || !same_region(&m->info, &items[i].r))
			broken("LIST shows a region the tenant does not hold", step);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(items[j].r.name, items[i].r.name) == 0)
				broken("LIST shows a region twice", step);
	}
}

/* A handle: this session's k-th, another session's k-th, any number, or 0. */
static uint64_t pick_handle(struct ckptsrv_session *s, struct input *in, struct ckptsrv_open **own,
			    struct ckptsrv_open **other)
{
	uint8_t how = u8(in), k = u8(in);
	struct ckptsrv_open *o;

	*own = *other = NULL;
	switch (how % 4) {
	case 0:
		for (o = s->opens; o != NULL && k > 0; o = o->next, k--)
			;
		*own = o;
		return o != NULL ? o->handle : 0;
	case 1:
		for (struct ckptsrv_session *t = srv.sessions; t != NULL; t = t->next)
			for (o = t->opens; t != s && o != NULL; o = o->next)
				if (k-- == 0) {
					*other = o;
					return o->handle;
				}
		return 0;
	case 2:
		return u64(in);
	default:
		return 0;
	}
}

static struct ckptsrv_open *own_handle(struct ckptsrv_session *s, uint64_t handle)
{
	for (struct ckptsrv_open *o = s->opens; o != NULL; o = o->next)
		if (o->handle == handle)
			return o;
	return NULL;
}

/* An epoch near @p cur: itself, one less, one more, 0, the largest, or any. */
static uint64_t pick_epoch(struct input *in, uint64_t cur)
{
	const uint64_t e[] = {cur, cur - 1, cur + 1, 0, UINT64_MAX};

	return pick(in, e, sizeof(e) / sizeof(e[0]));
}

static void bind_slot(int slot, int tenant, const struct pmu_region_info *r, uint64_t epoch)
{
	struct mbind *b = &binds[slot];

	b->bound = true;
	b->tenant = tenant;
	snprintf(b->name, sizeof(b->name), "%s", r->name);
	b->created_ns = r->created_ns;
	b->epoch = epoch;
}

static void do_take(struct ckptsrv_session *s, int t, struct input *in, int step)
{
	struct ckpt_msg req = {.type = CKPT_MSG_TAKE, .seq = (uint32_t)step}, rep;
	struct ckptsrv_open *own, *other;
	uint64_t handle = pick_handle(s, in, &own, &other), before, after;
	struct ckptsrv_open *mine = own_handle(s, handle);
	struct mregion *m = mine != NULL ? find(t, mine->info.name) : NULL;
	int slot = slot_of(s);

	before = m != NULL ? epoch_now(t, m->info.name) : 0;
	req.u.take.handle = handle;
	req.u.take.seen = pick_epoch(in, before);
	if (!play(s, &req, &rep, step))
		return;
	if (mine == NULL) {
		if (rep.status != -EBADF)
			broken("TAKE on no handle of the session was not EBADF", step);
		return;
	}
	if (m == NULL)
		broken("a session's handle outlived its region", step);
	after = epoch_now(t, m->info.name);
	if (req.u.take.seen != before || before == UINT64_MAX) {
		if (rep.status == 0 || after != before)
			broken("TAKE from an epoch that is not the region's moved it", step);
		if (rep.status != (req.u.take.seen == UINT64_MAX ? -EOVERFLOW : -ESTALE))
			broken("TAKE from another epoch than the region's was not ESTALE", step);
		return;
	}
	if (rep.status != 0 || rep.u.taken.epoch != before + 1 || after != before + 1)
		broken("TAKE from the region's own epoch did not move it by one", step);
	bind_slot(slot, t, &m->info, after);
	binds[slot].fenced = false;
	for (int i = 0; i < NSLOTS; i++)
		if (i != slot && slots[i] != NULL && binds[i].bound && binds[i].tenant == t &&
		    strcmp(binds[i].name, m->info.name) == 0 &&
		    binds[i].created_ns == m->info.created_ns && binds[i].epoch < after)
			binds[i].fenced = true;
}

static void do_bind(struct ckptsrv_session *s, int t, struct input *in, int step)
{
	struct ckpt_msg req = {.type = CKPT_MSG_BIND, .seq = (uint32_t)step}, rep;
	const char *name = names[u8(in) % NNAMES];
	struct mregion *m = find(t, name);
	uint64_t cur = m != NULL ? epoch_now(t, name) : 0;

	strcpy(req.u.bind.name, name);
	req.u.bind.epoch = pick_epoch(in, cur);
	if (!play(s, &req, &rep, step))
		return;
	if (m == NULL) {
		check_missing(t, name, rep.status, step);
		return;
	}
	if (rep.status != (req.u.bind.epoch < cur ? -ESTALE : req.u.bind.epoch > cur ? -EINVAL : 0))
		broken("BIND answered wrong (below the epoch: ESTALE, above: EINVAL)", step);
	if (rep.status == 0)
		bind_slot(slot_of(s), t, &m->info, req.u.bind.epoch);
}

static void do_watch(struct ckptsrv_session *s, int t, struct input *in, int step)
{
	struct ckpt_msg req = {.type = CKPT_MSG_WATCH, .seq = (uint32_t)step}, rep;
	struct ckptsrv_open *own, *other;
	uint64_t handle = pick_handle(s, in, &own, &other), lease = 0, t0, t1;
	struct ckptsrv_open *mine = own_handle(s, handle);
	struct pmu_region_info cur;

	req.u.watch.handle = handle;
	req.u.watch.timeout_ms = u8(in) % 3;
	if (mine != NULL && pmu_region_lookup(srv.store, tenants[t], mine->info.name, &cur) == 0)
		lease = cur.lease_ns;
	t0 = pmu_now_ns();
	if (!play(s, &req, &rep, step))
		return;
	t1 = pmu_now_ns();
	if (mine == NULL) {
		if (rep.status != -EBADF)
			broken("WATCH on no handle of the session was not EBADF", step);
		return;
	}
	if (lease <= t0 && rep.status != 0)
		broken("WATCH of a free lease did not answer 0", step);
	if (lease > t1 && rep.status != -ETIMEDOUT)
		broken("WATCH of a lease that outlived the wait did not time out", step);
	if (rep.status != 0 && rep.status != -ETIMEDOUT)
		broken("WATCH answered an unexpected errno", step);
}

/*
 * Slot @p slot's session ends: each lease it renewed last and that still ran is released
 * (an expiry in the past, not 0). @return the handles it held.
 */
static unsigned int end_slot(int slot, int step)
{
	unsigned int dropped = ckptsrv_session_end(slots[slot]);
	uint64_t now = pmu_now_ns();

	for (int i = 0; i < MAX_MODEL; i++) {
		struct pmu_region_info cur;

		if (!model[i].live || model[i].holder != slot)
			continue;
		model[i].holder = -1;
		if (pmu_region_lookup(srv.store, tenants[model[i].tenant], model[i].info.name,
				      &cur) != 0 ||
		    cur.lease_ns == 0 || cur.lease_ns > now)
			broken("a session that held a lease ended without releasing it", step);
	}
	memset(&binds[slot], 0, sizeof(binds[slot]));
	slots[slot] = NULL;
	return dropped;
}

static void do_handle_op(struct ckptsrv_session *s, int t, enum op op, struct input *in, int step)
{
	struct ckpt_msg req = {.seq = (uint32_t)step}, rep;
	struct ckptsrv_open *own, *other;
	uint64_t handle = pick_handle(s, in, &own, &other);
	struct ckptsrv_open *mine = own_handle(s, handle);
	struct mregion *m = mine != NULL ? find(t, mine->info.name) : NULL;

	switch (op) {
	case OP_CLOSE:
		req.type = CKPT_MSG_CLOSE;
		req.u.close.handle = handle;
		break;
	case OP_LEASE: {
		static const uint32_t ttls[] = {0, 1, 1000, 60000, UINT32_MAX};

		req.type = CKPT_MSG_LEASE;
		req.u.lease.handle = handle;
		req.u.lease.ttl_ms = ttls[u8(in) % 5];
		break;
	}
	default: {
		uint64_t size = mine != NULL ? mine->info.size : 4096,
			 ring = mine != NULL ? mine->info.ring_size : 0;
		const uint64_t offs[] = {0,    8,	 64,	     4096,	    size - 8,
					 size, size + 1, UINT64_MAX, UINT64_MAX - 7};
		const uint64_t heads[] = {0,	    1,	      4096,	  ring,
					  ring + 1, ring * 2, UINT64_MAX, UINT64_MAX - ring};

		req.type = CKPT_MSG_PERSIST;
		req.u.persist.handle = handle;
		req.u.persist.off = pick(in, offs, sizeof(offs) / sizeof(offs[0]));
		req.u.persist.len = pick(in, offs, sizeof(offs) / sizeof(offs[0]));
		req.u.persist.head = pick(in, heads, sizeof(heads) / sizeof(heads[0]));
		break;
	}
	}
	if (mine != NULL && (m == NULL || m->info.index != mine->info.index))
		broken("a session's handle outlived its region", step);
	if (!play(s, &req, &rep, step))
		return;
	if (mine == NULL && rep.status != -EBADF)
		broken(other != NULL ? "a request on another session's handle was not EBADF"
				     : "a request on no handle of the session was not EBADF",
		       step);
	if (op == OP_CLOSE && mine != NULL && (rep.status != 0 || own_handle(s, handle) != NULL))
		broken("CLOSE of an own handle did not close it", step);
	if (op == OP_LEASE && mine != NULL && (rep.status == 0) != (req.u.lease.ttl_ms != 0))
		broken("LEASE of an own handle answered wrong", step);
	if (op == OP_LEASE && rep.status == 0 && m != NULL)
		m->holder = slot_of(s);
	if (op == OP_PERSIST && rep.status == 0 && req.u.persist.head != 0 && m != NULL)
		/* the server stores the ring head in the tenant's own region: the model follows */
		memcpy(m->shadow + PMU_REGION_HEAD_OFF, store_base + m->info.offset, 8);
}

static void do_write(struct ckptsrv_session *s, int t, struct input *in, int step)
{
	struct ckptsrv_open *o = s->opens;
	uint8_t how = u8(in), tag;
	struct mregion *m;
	uint64_t off, len;

	for (uint8_t k = u8(in); o != NULL && k > 0; k--)
		o = o->next;
	off = u16(in);
	len = u16(in) % WRITE_MAX + 1;
	if (o == NULL)
		return;
	m = find(t, o->info.name);
	if (m == NULL || (uint8_t *)o->base != store_base + m->info.offset)
		broken("a handle maps what is not its tenant's live region", step);
	if (how & 1) {
		/* A ring word, as a producer or a consumer would set it, or any value. */
		const uint64_t ring = o->info.ring_size;
		const uint64_t words[] = {0,
					  1,
					  4096,
					  ring,
					  ring + 1,
					  UINT64_MAX,
					  UINT64_MAX - 4095,
					  UINT64_MAX - ring};
		uint64_t v = htole64(pick(in, words, sizeof(words) / sizeof(words[0])));

		off = how & 2 ? PMU_REGION_TAIL_OFF : PMU_REGION_HEAD_OFF;
		memcpy((uint8_t *)o->base + off, &v, sizeof(v));
		memcpy(m->shadow + off, &v, sizeof(v));
		return;
	}
	off %= o->info.size;
	if (len > o->info.size - off)
		len = o->info.size - off;
	tag = (uint8_t)(0x40 | t << 4 | (step & 15));
	memset((uint8_t *)o->base + off, tag, len);
	memset(m->shadow + off, tag, len);
}

static struct ckptsrv_session *admit(int t)
{
	return ckptsrv_session_admit(&lis, -1, "fuzz", tenants[t]);
}

static void do_extra(int t, int step)
{
	struct ckptsrv_limits lim;
	unsigned int regions, handles, nsess;
	uint64_t bytes, cap;
	struct ckptsrv_session *s;

	limits(t, &lim, &cap);
	usage(t, &regions, &bytes, &handles, &nsess);
	s = admit(t);
	if ((s != NULL) != (nsess < lim.sessions))
		broken(s != NULL ? "a session admitted over the quota"
				 : "a session refused within the quota",
		       step);
	if (s == NULL) {
		if (errno != EUSERS)
			broken("a session refused with another errno than EUSERS", step);
		return;
	}
	if (t == 2 && slots[NSLOTS - 1] == NULL)
		slots[NSLOTS - 1] = s;
	else
		ckptsrv_session_end(s);
}

static void step_one(struct input *in, int step)
{
	enum op op = (enum op)(u8(in) % OP_COUNT);
	int slot = u8(in) % NSLOTS, t;
	struct ckptsrv_session *s;

	if (slots[slot] == NULL)
		slot = 5;
	s = slots[slot];
	t = tenant_of(s->tenant);
	switch (op) {
	case OP_CREATE:
		do_create(s, t, in, step);
		break;
	case OP_OPEN:
	case OP_DELETE:
	case OP_STAT:
		do_named(s, t, op, in, step);
		break;
	case OP_LIST:
		do_list(s, t, step);
		break;
	case OP_CLOSE:
	case OP_LEASE:
	case OP_PERSIST:
		do_handle_op(s, t, op, in, step);
		break;
	case OP_PING: {
		struct ckpt_msg req = {.type = CKPT_MSG_PING, .seq = (uint32_t)step}, rep;

		if (play(s, &req, &rep, step) && rep.status != 0)
			broken("PING did not answer 0", step);
		break;
	}
	case OP_TAKE:
		do_take(s, t, in, step);
		break;
	case OP_BIND:
		do_bind(s, t, in, step);
		break;
	case OP_WATCH:
		do_watch(s, t, in, step);
		break;
	case OP_WRITE:
		do_write(s, t, in, step);
		break;
	case OP_RECONNECT: {
		unsigned int held = s->nopens;

		if (end_slot(slot, step) != held)
			broken("a session ended with a miscount of its handles", step);
		slots[slot] = slot == NSLOTS - 1 ? NULL : admit(t);
		if (slot != NSLOTS - 1 && slots[slot] == NULL)
			broken("a tenant could not come back after a session ended", step);
		break;
	}
	case OP_EXTRA:
		do_extra(t, step);
		break;
	case OP_MRFAIL: {
		uint8_t how = u8(in);

		mr_fail |= (how & 1) != 0;
		if (how & 2)
			lis.wedged = !lis.wedged;
		break;
	}
	case OP_COUNT:
		break;
	}
	check_all(step);
}

static void store_open(void)
{
	struct pmu_region_info zero = {0};

	unlink(path);
	srv.store = pmu_store_open(path, STORE_SIZE, PMU_CREATE);
	if (srv.store == NULL) {
		perror("fuzz_dispatch: store");
		abort();
	}
	store_base = pmu_region_base(srv.store, &zero);
	/* The mapping and the lock descriptor stay: no file is left behind, even by a crash. */
	unlink(path);
}

/*
 * Undo an input: end every session, then each tenant deletes its regions through the
 * handlers, on a session of its own; the table must be empty after (a region its owner
 * cannot delete with no session left is a finding). The store is reused: making a new
 * file per input cost more than the input.
 */
static void store_reset(void)
{
	lis.wedged = false;
	for (int i = 0; i < NSLOTS; i++) {
		if (slots[i] != NULL)
			ckptsrv_session_end(slots[i]);
		slots[i] = NULL;
		memset(&binds[i], 0, sizeof(binds[i]));
	}
	for (int t = 0; t < NTENANTS; t++) {
		struct ckptsrv_session *s = ckptsrv_session_admit(&lis, -1, "fuzz", tenants[t]);

		if (s == NULL)
			broken("a tenant with no session left cannot come back", MAX_STEPS);
		for (int i = 0; i < MAX_MODEL; i++) {
			struct ckpt_msg req = {.type = CKPT_MSG_DELETE}, rep = {0};

			if (!model[i].live || model[i].tenant != t)
				continue;
			strcpy(req.u.name.name, model[i].info.name);
			if (ckptsrv_dispatch(s, &req, &rep) != 0)
				broken("a tenant cannot delete its region with no session left",
				       MAX_STEPS);
			model_drop(&model[i]);
		}
		ckptsrv_session_end(s);
	}
	if (pmu_region_list(srv.store, NULL, 0) != 0)
		broken("regions left in the store after their owners deleted theirs", MAX_STEPS);
	mr_fail = false;
}

/* Whether another tenant's region answers as a missing one on this store (see above). */
static bool probe_namespaces(void)
{
	struct ckpt_msg req = {.type = CKPT_MSG_CREATE}, rep = {0};
	struct ckptsrv_session *a, *b;
	int status;

	store_open();
	a = admit(0);
	b = admit(1);
	strcpy(req.u.create.name, "probe");
	req.u.create.mode = PMU_MODE_APPEND;
	req.u.create.size = 8192;
	if (a == NULL || b == NULL || ckptsrv_dispatch(a, &req, &rep) != 0) {
		fprintf(stderr, "fuzz_dispatch: the probe cannot create a region\n");
		abort();
	}
	memset(&req, 0, sizeof(req));
	req.type = CKPT_MSG_STAT;
	strcpy(req.u.name.name, "probe");
	status = ckptsrv_dispatch(b, &req, &rep);
	req.type = CKPT_MSG_DELETE;
	if (ckptsrv_dispatch(a, &req, &rep) != 0)
		abort();
	ckptsrv_session_end(a);
	ckptsrv_session_end(b);
	return status == -ENOENT;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ckpt_log_set(NULL, getenv("FUZZ_LOG") != NULL ? CKPT_LOG_DEBUG : CKPT_LOG_ERR);
	snprintf(path, sizeof(path), "/dev/shm/hf-fuzz-dispatch-%d.pmu", (int)getpid());
	if (ckptsrv_sync_init(&srv) != 0)
		abort();
	ckptsrv_config_defaults(&srv.cfg);
	srv.cfg.max_sessions = 16;
	srv.cfg.tenant = (struct ckptsrv_limits){
		.regions = 3, .bytes = TENANT_BYTES, .sessions = 2, .handles = 3};
	srv.cfg.quota[0] = (struct ckptsrv_quota){
		.tenant = "c",
		.lim = {.regions = 5, .bytes_pct = 50, .sessions = 3, .handles = 4},
		.given = CKPTSRV_QUOTA_REGIONS | CKPTSRV_QUOTA_BYTES | CKPTSRV_QUOTA_SESSIONS |
			 CKPTSRV_QUOTA_HANDLES,
	};
	srv.cfg.nquota = 1;
	lis.srv = &srv;
	snprintf(lis.url, sizeof(lis.url), "fuzz");
	namespaces = probe_namespaces(); /* and opens the store the inputs share */
	fprintf(stderr, "fuzz_dispatch: another tenant's region answers %s\n",
		namespaces ? "as a missing one (per-owner namespaces)"
			   : "EACCES (one namespace for all owners)");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};

	lis.virt_addr = size > 0 && (data[0] & 0x80) != 0;
	for (int i = 0; i < NSLOTS - 1; i++)
		slots[i] = admit(i / 2);
	for (int i = 0; i < NSLOTS - 1; i++)
		if (slots[i] == NULL)
			broken("a tenant's first sessions were refused", -1);
	check_all(-1);
	for (int step = 0; step < MAX_STEPS && in.left > 0; step++)
		step_one(&in, step);
	store_reset();
	return 0;
}
