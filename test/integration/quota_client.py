# SPDX-License-Identifier: BSD-3-Clause
"""Per-tenant quotas of ckptsrv (ckptsrv/quota.c), spoken by hand. Usage:
  quota_client.py PORT SECRET_FILE CHECK
with the server run as ofi_quota.sh runs it (alice: 3 regions, 1 MiB, 2 sessions, 3 handles;
bob: a quota line with more). Each CHECK prints what it saw and exits 0 when the server
refused exactly what it must:
  regions        alice makes 3 regions of 64 KiB, a fourth is EDQUOT; a 1 MiB one is EDQUOT
                 on bytes once one is deleted, a 512 KiB one fits
  after-restart  alice (the server restarted on the same store) still cannot make a 4th
  sessions       alice holds 2 sessions; a third is refused with EUSERS in the WELCOME, and
                 taken once one of the two has gone
  handles        alice's 2 sessions hold 3 handles; a fourth is EMFILE, and so is a create
                 (its region not left behind); one closed, it fits
  other          bob, meanwhile, makes and opens what alice cannot
"""
import errno
import socket
import struct
import sys
import time

import ckpt_wire as w

port, secret_file, check = int(sys.argv[1]), sys.argv[2], sys.argv[3]
failed = 0


def expect(what, got, want):
    global failed
    ok = got == want
    print("%s: %s (want %s)" % (what, errno.errorcode.get(-got, got) if got else "ok",
                                errno.errorcode.get(-want, want) if want else "ok"),
          flush=True)
    failed += 0 if ok else 1


def session(tenant):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t, _, _, body = w.recv_frame(s)
    assert t == w.CHALLENGE, t
    secret = w.load_secret(secret_file, tenant)
    cli_nonce = bytes(range(32))
    s.sendall(w.frame(w.HELLO, w.name(tenant) + cli_nonce +
                      w.client_mac(secret, body, cli_nonce, tenant)))
    t, _, status, _ = w.recv_frame(s)
    assert t == w.WELCOME, t
    if status != 0:
        s.close()
        return None, status
    return s, 0


def must_session(tenant):
    s, status = session(tenant)
    assert s is not None, status
    return s


def create(s, rname, size):
    _, _, status, body = w.request(s, w.CREATE, w.create_body(rname, size=size))
    return status, (struct.unpack("<Q", body[:8])[0] if status == 0 else None)


def open_(s, rname):
    _, _, status, body = w.request(s, w.OPEN, w.name(rname))
    return status, (struct.unpack("<Q", body[:8])[0] if status == 0 else None)


def close(s, handle):
    return w.request(s, w.CLOSE, struct.pack("<Q", handle))[2]


def delete(s, rname):
    return w.request(s, w.DELETE, w.name(rname))[2]


if check == "regions":
    a = must_session("alice")
    for i in range(3):
        status, h = create(a, "a%d" % i, 64 << 10)
        expect("create a%d" % i, status, 0)
        if h is not None:
            expect("close a%d" % i, close(a, h), 0)
    expect("create a fourth region", create(a, "a3", 64 << 10)[0], -errno.EDQUOT)
    expect("delete a2", delete(a, "a2"), 0)
    expect("create 1 MiB beside 128 KiB", create(a, "big", 1 << 20)[0], -errno.EDQUOT)
    status, h = create(a, "half", 512 << 10)
    expect("create 512 KiB beside 128 KiB", status, 0)
    if h is not None:
        expect("close half", close(a, h), 0)
    # The name alice has already: the store's answer, not the quota's.
    expect("create a0 again", create(a, "a0", 64 << 10)[0], -errno.EEXIST)
elif check == "after-restart":
    a = must_session("alice")
    expect("create a fourth region after a restart", create(a, "a3", 4096 << 1)[0],
           -errno.EDQUOT)
elif check == "sessions":
    a1, a2 = must_session("alice"), must_session("alice")
    s, status = session("alice")
    expect("a third session", status, -errno.EUSERS)
    a1.close()
    # The server notices the close on the session's thread: the slot is free soon after.
    for _ in range(100):
        s, status = session("alice")
        if s is not None:
            break
        time.sleep(0.02)
    expect("a third session once one went", status, 0)
elif check == "handles":
    a1, a2 = must_session("alice"), must_session("alice")
    status, h0 = open_(a1, "a0")
    expect("open a0 in session 1", status, 0)
    expect("open a1 in session 1", open_(a1, "a1")[0], 0)
    expect("open a0 in session 2", open_(a2, "a0")[0], 0)
    expect("open a fourth handle", open_(a2, "a1")[0], -errno.EMFILE)
    expect("delete half", delete(a2, "half"), 0)
    # A region made but not opened for want of a handle is not left behind.
    expect("create while at the handle limit", create(a2, "a9", 4096 << 1)[0], -errno.EMFILE)
    expect("stat what was not created", w.request(a2, w.STAT, w.name("a9"))[2], -errno.ENOENT)
    expect("close one in session 1", close(a1, h0), 0)
    expect("open it now", open_(a2, "a1")[0], 0)
elif check == "other":
    a1, a2 = must_session("alice"), must_session("alice")
    expect("alice's third session", session("alice")[1], -errno.EUSERS)
    b = [must_session("bob") for _ in range(3)]
    for i in range(5):
        status, h = create(b[i % 3], "b%d" % i, 1 << 20)
        expect("bob creates b%d (1 MiB)" % i, status, 0)
    expect("bob opens b0 again", open_(b[1], "b0")[0], 0)
    expect("bob's sixth region", create(b[0], "b5", 4096 << 1)[0], -errno.EDQUOT)
else:
    print("unknown check " + check)
    failed = 1
sys.exit(1 if failed else 0)
