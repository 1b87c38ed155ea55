/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Security and error-path probes against a running ckptsrv. Each check exits 0 when the
 * server (and the provider) behaved as required, and says what it saw either way.
 *
 *   ckpt_probe TARGET CHECK [ARG]
 *	refused         connecting must fail with EACCES
 *	wrong-key       a write with a wrong remote key must not land nor become durable
 *	unknown-region  opening a region that does not exist gives ENOENT
 *	other-tenant R  another tenant's R: open, stat and delete give ENOENT, LIST does not
 *	                show it, and the name is free in this tenant's namespace
 *	owned R         R exists and belongs to this tenant
 *	oob-persist     PERSIST outside the region gives EINVAL, inside it 0
 *	busy            DELETE of a region another client has open gives EBUSY
 *	make R          create region R and leave (for other-tenant)
 *	lease           the owner renews a lease; STAT and LIST show it alive, then expired;
 *	                all that without a libfabric endpoint (made at the first write);
 *	                FI_OFI_RXM_MSG_RX_SIZE is then the client's 16, or as the environment
 *	                set it (HF_WANT_RXM_MSG_RX_SIZE says which)
 *	no-provider     connecting must fail with ENODATA (no such libfabric provider here)
 *	idle S          a client that writes nothing for S seconds but polls (and so sends
 *	                keepalives) keeps its session: writes before and after become durable
 *	quiet S         a client that neither writes nor polls for S seconds has been cut by
 *	                the server's idle timeout: its next request fails with ECONNRESET
 *	control         a region with a journal ring, opened for control only by a second
 *	                client: lease, epoch and stat work without a libfabric endpoint, a
 *	                write and a sync are refused (EPERM); a plain open of it makes one
 *	signals         the caller's SIGINT and SIGTERM handlers are still its own after the
 *	                client loaded libfabric and made an endpoint (the shm provider installs
 *	                handlers that unlink the process's endpoint files); after a SIGINT, a
 *	                second client still writes, and the first still writes and syncs
 *
 * Environment: HF_SECRET_FILE, HF_TENANT, HF_ALLOW_SHM=1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "holdfast/ckpt.h"
#include "ofi_test.h"

static uint8_t secret[64];

static struct ckpt_client *connect_env(const char *target)
{
	struct ckpt_client_opts o = {0};
	const char *sf = getenv("HF_SECRET_FILE");
	int n;

	o.tenant = getenv("HF_TENANT") ? getenv("HF_TENANT") : "default";
	o.allow_shm = getenv("HF_ALLOW_SHM") != NULL;
	o.timeout_ms = 3000;
	n = ckpt_secret_load(sf, o.tenant, secret, sizeof(secret));
	if (n < 0) {
		fprintf(stderr, "ckpt_probe: secret for %s: %s\n", o.tenant, strerror(-n));
		exit(2);
	}
	o.secret = secret;
	o.secret_len = (size_t)n;
	return ckpt_connect(target, &o);
}

static struct ckpt_client *must_connect(const char *target)
{
	struct ckpt_client *c = connect_env(target);

	if (c == NULL) {
		fprintf(stderr, "ckpt_probe: connect %s: %s\n", target, strerror(errno));
		exit(2);
	}
	return c;
}

static struct ckpt_region *must_create(struct ckpt_client *c, const char *name)
{
	struct pmu_region_params p = {
		.name = name,
		.mode = PMU_MODE_OVERWRITE,
		.size = 1 << 20,
		.slot_size = 256,
	};
	struct ckpt_region *r = NULL;
	int ret = ckpt_region_create(c, &p, &r);

	if (ret < 0) {
		fprintf(stderr, "ckpt_probe: create %s: %s\n", name, strerror(-ret));
		exit(2);
	}
	return r;
}

static int expect(const char *what, int got, int want)
{
	printf("%s: %s (want %s)\n", what, got == 0 ? "ok" : strerror(-got),
	       want == 0 ? "ok" : strerror(-want));
	return got == want ? 0 : 1;
}

static int check_refused(const char *target)
{
	struct ckpt_client *c = connect_env(target);

	if (c != NULL) {
		printf("connect: accepted (want EACCES)\n");
		ckpt_disconnect(&c);
		return 1;
	}
	return expect("connect", -errno, -EACCES);
}

static int check_wrong_key(const char *target)
{
	static const uint8_t payload[16] = "wrong-key-probe";
	struct ckpt_rec rec = {
		.module_id = 1,
		.slice_version = 1,
		.conn_id = 77,
		.generation = 1,
		.slot_pair = 3,
		.key = {.family = 4, .proto = 6},
		.payload_len = sizeof(payload),
		.payload = payload,
	};
	struct ckpt_client *c = must_connect(target), *c2;
	struct ckpt_region *r = must_create(c, "probe-wrong-key"), *r2 = NULL;
	struct ckpt_scan_stats st = {0};
	uint64_t key = 0x5eed5eed5eed5eedull, t;
	int ret, rc = 0;

	ckpt_ofi_test_set_rkey(r, key);
	ret = ckpt_slot_write(r, &rec, false, &t);
	if (ret == 0)
		ret = ckpt_sync(r);
	printf("write with a wrong key: %s, durable ticket %llu of %llu\n",
	       ret == 0 ? "reported durable" : strerror(-ret), (unsigned long long)ckpt_durable(r),
	       (unsigned long long)t);
	if (ret == 0 || ckpt_durable(r) >= t)
		rc = 1;
	ckpt_disconnect(&c);

	/* A fresh client with the real key must find the slot untouched. */
	c2 = must_connect(target);
	ret = ckpt_region_open(c2, "probe-wrong-key", &r2);
	if (ret == 0)
		ret = ckpt_state_read(r2, NULL, NULL, &st);
	printf("read back: %s, %llu records, %llu invalid\n", ret == 0 ? "ok" : strerror(-ret),
	       (unsigned long long)st.records, (unsigned long long)st.invalid);
	if (ret != 0 || st.records != 0 || st.invalid != 0)
		rc = 1;
	ckpt_region_close(&r2);
	ret = ckpt_region_delete(c2, "probe-wrong-key");
	rc |= expect("delete", ret, 0);
	ckpt_disconnect(&c2);
	return rc;
}

static int check_unknown_region(const char *target)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = NULL;
	struct ckpt_region_info info;
	int rc;

	rc = expect("open", ckpt_region_open(c, "no-such-region", &r), -ENOENT);
	rc |= expect("stat", ckpt_region_stat(c, "no-such-region", &info), -ENOENT);
	rc |= expect("delete", ckpt_region_delete(c, "no-such-region"), -ENOENT);
	ckpt_disconnect(&c);
	return rc;
}

static int check_other_tenant(const char *target, const char *name)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region_info list[16], info;
	struct ckpt_region *r = NULL;
	int rc, n;

	rc = expect("open", ckpt_region_open(c, name, &r), -ENOENT);
	rc |= expect("stat", ckpt_region_stat(c, name, &info), -ENOENT);
	rc |= expect("delete", ckpt_region_delete(c, name), -ENOENT);
	n = ckpt_region_list(c, list, 16);
	for (int i = 0; i < n && i < 16; i++) {
		if (strcmp(list[i].r.name, name) == 0) {
			printf("list: shows %s (want hidden)\n", name);
			rc = 1;
		}
	}
	printf("list: %d region(s) of this tenant\n", n);
	if (n < 0)
		rc = 1;
	/* The name is this tenant's to take too; the other region is not touched. */
	r = must_create(c, name);
	ckpt_region_close(&r);
	rc |= expect("stat of its own", ckpt_region_stat(c, name, &info), 0);
	rc |= expect("delete of its own", ckpt_region_delete(c, name), 0);
	ckpt_disconnect(&c);
	return rc;
}

static int check_owned(const char *target, const char *name)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region_info info;
	int rc = expect("stat", ckpt_region_stat(c, name, &info), 0);

	if (rc == 0 &&
	    strcmp(info.r.owner, getenv("HF_TENANT") ? getenv("HF_TENANT") : "default")) {
		printf("owner: %s (want this tenant)\n", info.r.owner);
		rc = 1;
	}
	ckpt_disconnect(&c);
	return rc;
}

static int check_oob_persist(const char *target)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = must_create(c, "probe-oob");
	uint64_t size = ckpt_region_geometry(r)->size;
	int rc;

	rc = expect("persist past the end", ckpt_ofi_test_persist(r, size - 8, 16), -EINVAL);
	rc |= expect("persist beyond the region", ckpt_ofi_test_persist(r, size + 1, 0), -EINVAL);
	rc |= expect("persist with a wrapping length",
		     ckpt_ofi_test_persist(r, 4096, UINT64_MAX - 100), -EINVAL);
	rc |= expect("persist inside", ckpt_ofi_test_persist(r, 0, size), 0);
	ckpt_region_close(&r);
	rc |= expect("delete", ckpt_region_delete(c, "probe-oob"), 0);
	ckpt_disconnect(&c);
	return rc;
}

static int check_busy(const char *target)
{
	struct ckpt_client *a = must_connect(target), *b = must_connect(target);
	struct ckpt_region *r = must_create(a, "probe-busy");
	int rc;

	rc = expect("delete while open elsewhere", ckpt_region_delete(b, "probe-busy"), -EBUSY);
	ckpt_region_close(&r);
	rc |= expect("delete once closed", ckpt_region_delete(b, "probe-busy"), 0);
	ckpt_disconnect(&a);
	ckpt_disconnect(&b);
	return rc;
}

/* A TCP slice record for connection @p conn_id (its payload a few bytes of text). */
static struct ckpt_rec probe_rec(uint64_t conn_id)
{
	static const uint8_t payload[8] = "probe";

	return (struct ckpt_rec){.module_id = 1,
				 .slice_version = 1,
				 .conn_id = conn_id,
				 .generation = 1,
				 .key = {.family = 4, .proto = 6},
				 .payload_len = sizeof(payload),
				 .payload = payload};
}

static int check_lease(const char *target)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = must_create(c, "probe-lease");
	struct ckpt_region_info info = {0}, list[16];
	int rc, n, listed = 0;

	rc = expect("stat before any lease", ckpt_region_stat(c, "probe-lease", &info), 0);
	if (info.lease_alive) {
		printf("lease alive before any renewal\n");
		rc = 1;
	}
	rc |= expect("renew for 60 s", ckpt_lease_renew(r, 60000), 0);
	rc |= expect("stat", ckpt_region_stat(c, "probe-lease", &info), 0);
	if (!info.lease_alive || info.r.lease_ns == 0) {
		printf("lease not alive after renewal\n");
		rc = 1;
	}
	n = ckpt_region_list(c, list, 16);
	for (int i = 0; i < n && i < 16; i++)
		if (strcmp(list[i].r.name, "probe-lease") == 0 && list[i].lease_alive)
			listed = 1;
	if (!listed) {
		printf("list does not show the leased region alive\n");
		rc = 1;
	}
	rc |= expect("renew for 1 ms", ckpt_lease_renew(r, 1), 0);
	/* Poll (bounded) until the server reports the lease over. */
	for (int i = 0; i < 200; i++) {
		rc |= ckpt_region_stat(c, "probe-lease", &info) != 0;
		if (!info.lease_alive)
			break;
		usleep(10000);
	}
	if (info.lease_alive) {
		printf("lease still alive 2 s after a 1 ms renewal\n");
		rc = 1;
	}
	printf("lease expired: ok\n");
	rc |= expect("renew for 0 ms", ckpt_lease_renew(r, 0), -EINVAL);
	/* Asking the server needs no endpoint (150-250 ms to make with tcp); writing does. */
	n = ckpt_ofi_test_has_endpoint(c);
	printf("endpoint before any write: %s (want no)\n", n == 0 ? "no" : "yes");
	rc |= n != 0;
	{
		const struct ckpt_rec rec = probe_rec(78);

		rc |= expect("write", ckpt_slot_write(r, &rec, false, NULL), 0);
		rc |= expect("sync", ckpt_sync(r), 0);
	}
	n = ckpt_ofi_test_has_endpoint(c);
	printf("endpoint after a write: %s (want yes)\n", n == 1 ? "yes" : "no");
	rc |= n != 1;
	/* The client's ofi_rxm receive queue: its own default, or what the operator set. */
	{
		const char *got = getenv("FI_OFI_RXM_MSG_RX_SIZE");
		const char *want = getenv("HF_WANT_RXM_MSG_RX_SIZE");

		want = want ? want : "16";
		printf("FI_OFI_RXM_MSG_RX_SIZE: %s (want %s)\n", got ? got : "unset", want);
		rc |= got == NULL || strcmp(got, want) != 0;
	}
	ckpt_region_close(&r);
	rc |= expect("delete", ckpt_region_delete(c, "probe-lease"), 0);
	ckpt_disconnect(&c);
	return rc;
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static int write_rec(struct ckpt_region *r, uint64_t conn_id, const char *what)
{
	const struct ckpt_rec rec = probe_rec(conn_id);
	char line[64];
	int rc;

	snprintf(line, sizeof(line), "%s: write", what);
	rc = expect(line, ckpt_slot_write(r, &rec, false, NULL), 0);
	snprintf(line, sizeof(line), "%s: sync", what);
	return rc | expect(line, ckpt_sync(r), 0);
}

static int still_mine(int sig)
{
	struct sigaction now;

	sigaction(sig, NULL, &now);
	printf("%s handler after the client's endpoint: %s (want the caller's)\n", strsignal(sig),
	       now.sa_handler == on_signal ? "the caller's" : "another");
	return now.sa_handler != on_signal;
}

static int check_signals(const char *target)
{
	struct ckpt_client *c, *c2;
	struct ckpt_region *r, *r2;
	int rc = 0;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	c = must_connect(target);
	r = must_create(c, "probe-signals");
	rc |= write_rec(r, 1, "first client");
	rc |= ckpt_ofi_test_has_endpoint(c) != 1;
	rc |= still_mine(SIGINT) | still_mine(SIGTERM);
	/* A firewall's shutdown: SIGINT, then it still talks to the server (a new client and
	 * endpoint, as the lease thread makes, and the old one's last records). */
	raise(SIGINT);
	printf("SIGINT reached the caller: %s\n", got_signal == SIGINT ? "yes" : "no");
	rc |= got_signal != SIGINT;
	c2 = must_connect(target);
	rc |= expect("second client: open", ckpt_region_open(c2, "probe-signals", &r2), 0);
	if (r2 != NULL) {
		rc |= write_rec(r2, 2, "second client");
		ckpt_region_close(&r2);
	}
	ckpt_disconnect(&c2);
	rc |= write_rec(r, 3, "first client again");
	ckpt_region_close(&r);
	rc |= expect("delete", ckpt_region_delete(c, "probe-signals"), 0);
	ckpt_disconnect(&c);
	return rc;
}

static int check_control(const char *target)
{
	struct pmu_region_params p = {
		.name = "probe-control",
		.mode = PMU_MODE_OVERWRITE,
		.size = 1 << 20,
		.slot_size = 256,
		.ring_size = 64 << 10,
	};
	struct ckpt_client *owner = must_connect(target), *c, *c2;
	struct ckpt_region *ro = NULL, *r = NULL, *r2 = NULL;
	struct ckpt_region_info info = {0};
	uint64_t epoch = 0;
	int rc = 0, n;

	rc |= expect("create with a ring", ckpt_region_create(owner, &p, &ro), 0);
	ckpt_region_close(&ro);
	c = must_connect(target);
	rc |= expect("open for control", ckpt_region_open_control(c, "probe-control", &r), 0);
	if (r == NULL)
		return 1;
	rc |= expect("renew", ckpt_lease_renew(r, 60000), 0);
	rc |= expect("stat", ckpt_region_stat(c, "probe-control", &info), 0);
	rc |= expect("take an epoch", ckpt_epoch_take(r, info.r.epoch, &epoch), 0);
	n = ckpt_ofi_test_has_endpoint(c);
	printf("endpoint after lease, stat and epoch: %s (want no)\n", n == 0 ? "no" : "yes");
	rc |= n != 0;
	{
		const struct ckpt_rec rec = probe_rec(9);

		rc |= expect("write on the control handle", ckpt_slot_write(r, &rec, false, NULL),
			     -EPERM);
		rc |= expect("refresh on the control handle", ckpt_region_refresh(r), -EPERM);
	}
	n = ckpt_ofi_test_has_endpoint(c);
	printf("endpoint after the refused calls: %s (want no)\n", n == 0 ? "no" : "yes");
	rc |= n != 0;
	rc |= expect("renew for 0 ms", ckpt_lease_renew(r, 0), -EINVAL);
	ckpt_region_close(&r);
	ckpt_disconnect(&c);
	/* A plain open reads the ring's words: that is what makes the endpoint. */
	c2 = must_connect(target);
	rc |= expect("plain open", ckpt_region_open(c2, "probe-control", &r2), 0);
	n = ckpt_ofi_test_has_endpoint(c2);
	printf("endpoint after a plain open of a ring region: %s (want yes)\n",
	       n == 1 ? "yes" : "no");
	rc |= n != 1;
	ckpt_region_close(&r2);
	ckpt_disconnect(&c2);
	rc |= expect("delete", ckpt_region_delete(owner, "probe-control"), 0);
	ckpt_disconnect(&owner);
	return rc;
}

static int check_no_provider(const char *target)
{
	struct ckpt_client *c = connect_env(target);

	if (c != NULL) {
		printf("connect: accepted (want ENODATA)\n");
		ckpt_disconnect(&c);
		return 1;
	}
	return expect("connect", -errno, -ENODATA);
}

/* One slice written and made durable: the data path and the control channel both work. */
static int write_one(struct ckpt_region *r, uint64_t gen)
{
	static const uint8_t payload[8] = "idle";
	struct ckpt_rec rec = {
		.module_id = 1,
		.slice_version = 1,
		.conn_id = 5,
		.generation = gen,
		.slot_pair = 1,
		.key = {.family = 4, .proto = 6},
		.payload_len = sizeof(payload),
		.payload = payload,
	};
	uint64_t t;
	int ret = ckpt_slot_write(r, &rec, false, &t);

	return ret == 0 ? ckpt_sync(r) : ret;
}

static int check_idle(const char *target, unsigned int secs)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = must_create(c, "probe-idle");
	struct ckpt_region_info info;
	int rc, ret = 0;

	rc = expect("write before", write_one(r, 1), 0);
	for (unsigned int i = 0; i < secs * 100 && ret >= 0; i++) {
		ret = ckpt_poll(c);
		usleep(10000);
	}
	rc |= expect("polls while idle", ret < 0 ? ret : 0, 0);
	rc |= expect("write after", write_one(r, 2), 0);
	rc |= expect("stat after", ckpt_region_stat(c, "probe-idle", &info), 0);
	ckpt_region_close(&r);
	rc |= expect("delete", ckpt_region_delete(c, "probe-idle"), 0);
	ckpt_disconnect(&c);
	return rc;
}

static int check_quiet(const char *target, unsigned int secs)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = must_create(c, "probe-quiet");
	struct ckpt_region_info info;
	int rc;

	rc = expect("write before", write_one(r, 1), 0);
	sleep(secs);
	rc |= expect("stat after the silence", ckpt_region_stat(c, "probe-quiet", &info),
		     -ECONNRESET);
	ckpt_region_close(&r);
	ckpt_disconnect(&c);
	return rc;
}

static int make_region(const char *target, const char *name)
{
	struct ckpt_client *c = must_connect(target);
	struct ckpt_region *r = must_create(c, name);

	ckpt_region_close(&r);
	ckpt_disconnect(&c);
	printf("created %s\n", name);
	return 0;
}

int main(int argc, char **argv)
{
	const char *t, *check;

	if (argc < 3) {
		fprintf(stderr, "usage: ckpt_probe TARGET CHECK [ARG]\n");
		return 2;
	}
	t = argv[1];
	check = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(check, "refused") == 0)
		return check_refused(t);
	if (strcmp(check, "wrong-key") == 0)
		return check_wrong_key(t);
	if (strcmp(check, "unknown-region") == 0)
		return check_unknown_region(t);
	if (strcmp(check, "other-tenant") == 0 && argc > 3)
		return check_other_tenant(t, argv[3]);
	if (strcmp(check, "owned") == 0 && argc > 3)
		return check_owned(t, argv[3]);
	if (strcmp(check, "oob-persist") == 0)
		return check_oob_persist(t);
	if (strcmp(check, "busy") == 0)
		return check_busy(t);
	if (strcmp(check, "lease") == 0)
		return check_lease(t);
	if (strcmp(check, "control") == 0)
		return check_control(t);
	if (strcmp(check, "signals") == 0)
		return check_signals(t);
	if (strcmp(check, "no-provider") == 0)
		return check_no_provider(t);
	if (strcmp(check, "make") == 0 && argc > 3)
		return make_region(t, argv[3]);
	if (strcmp(check, "idle") == 0 && argc > 3)
		return check_idle(t, (unsigned int)strtoul(argv[3], NULL, 10));
	if (strcmp(check, "quiet") == 0 && argc > 3)
		return check_quiet(t, (unsigned int)strtoul(argv[3], NULL, 10));
	fprintf(stderr, "ckpt_probe: unknown check %s\n", check);
	return 2;
}
