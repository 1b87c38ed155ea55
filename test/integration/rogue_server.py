# SPDX-License-Identifier: BSD-3-Clause
"""A checkpoint server that lies. Clients (holdfast, ckptctl, the client library) must refuse
what it says and never crash. Usage: rogue_server.py PORT [MODE [SECRET_FILE]].

  bad-proof     (default) no secret: challenges, ignores the answer, welcomes with a made-up
                proof. Serves one connection and says "client hung up".
The other modes know the secret (a buggy or compromised server), authenticate properly, and
serve every connection until killed:
  bad-endpoint  WELCOME carries 256 random bytes as its libfabric endpoint address
  wrong-type    every request is answered with a LIST reply of 256 garbage entries
  bad-geometry  regions whose slots and ring are not what the store lays out (CREATE, OPEN,
                STAT, LIST), and a ring head a lap and more past the tail
  wrong-region  CREATE and OPEN answered with a well-formed region of another name and tenant
  auth-again    a CHALLENGE, then a WELCOME, in place of a reply
  huge-frame    a reply header that claims 4 GiB of body
  truncated     half a reply header, then the connection closed
  random        replies with the right type and seq and a random body (seeded per connection)
Prints "ready" once listening."""
import os
import random
import socket
import struct
import sys
import threading

import ckpt_wire as w

port = int(sys.argv[1])
mode = sys.argv[2] if len(sys.argv) > 2 else "bad-proof"
secret = None
if mode != "bad-proof":
    secret = [line.split()[1].encode() for line in open(sys.argv[3])
              if len(line.split()) == 2 and not line.startswith("#")]


def endpoint():
    # A well-formed address where nobody listens: the client's fabric setup succeeds and
    # every later word comes from the control channel below.
    return w.sockaddr_in(9)


def reply_for(t, seq, body, conn_rng):
    """Bytes to answer request type t with, per mode."""
    rt = t | w.REPLY
    if mode == "wrong-type":
        junk = b"".join(w.info(w.region("x%d" % i, "y", nslots=7)) for i in range(256))
        return w.frame(w.LIST | w.REPLY, struct.pack("<II", 256, 256) + junk, seq)
    if mode == "bad-geometry":
        bad = w.region("holdfast-state.0", "holdfast", size=1 << 20, ring_off=(1 << 20) + 4096)
        if t in (w.CREATE, w.OPEN):
            return w.frame(rt, w.opened(bad), seq)
        if t == w.STAT:
            good = w.region(body[:w.NAME_MAX].rstrip(b"\0").decode(), "holdfast")
            return w.frame(rt, w.info(good, head=(1 << 40) + 65537, tail=1 << 40), seq)
        if t == w.LIST:
            return w.frame(rt, struct.pack("<II", 2, 2) + w.info(bad) + w.info(bad), seq)
        return w.frame(rt, b"", seq)
    if mode == "wrong-region":
        if t in (w.CREATE, w.OPEN):
            return w.frame(rt, w.opened(w.region("someone-else", "other-tenant")), seq)
        return w.frame(rt, b"", seq)
    if mode == "auth-again":
        return w.frame(w.CHALLENGE, os.urandom(32)) + \
            w.frame(w.WELCOME, bytes(32) + struct.pack("<II", 16, 0) + endpoint())
    if mode == "huge-frame":
        return struct.pack("<IHHIi", 0xFFFFFFFF, rt, 1, seq, 0)
    if mode == "truncated":
        return struct.pack("<IHHIi", 0, rt, 1, seq, 0)[:7]
    if mode == "random":
        n = conn_rng.choice([0, 8, 16, 64, 200, 224, 232, 300, conn_rng.randrange(2000)])
        return w.frame(rt, bytes(conn_rng.randrange(256) for _ in range(n)), seq)
    raise SystemExit("unknown mode " + mode)


def serve(conn, n):
    conn_rng = random.Random(n)
    try:
        if mode == "bad-endpoint":
            w.server_login(conn, secret[0], os.urandom(256))
        else:
            for s in secret:  # whichever tenant this is
                try:
                    w.server_login(conn, s, endpoint())
                    break
                except AssertionError:
                    return
        while True:
            t, seq, _, body = w.recv_frame(conn)
            conn.sendall(reply_for(t, seq, body, conn_rng))
            if mode == "truncated":
                return
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)
print("ready", flush=True)
if mode == "bad-proof":
    conn, _ = srv.accept()
    conn.sendall(w.frame(w.CHALLENGE, os.urandom(32)))
    t, _, _, _ = w.recv_frame(conn)  # HELLO, not checked: this server has no secret
    ep = w.sockaddr_in(12345)
    conn.sendall(w.frame(w.WELCOME, os.urandom(32) + struct.pack("<II", len(ep), 0) + ep))
    try:
        conn.recv(1)  # until the client hangs up
    except OSError:
        pass
    print("client hung up", flush=True)
    sys.exit(0)
n = 0
while True:
    conn, _ = srv.accept()
    n += 1
    threading.Thread(target=serve, args=(conn, n), daemon=True).start()
