# SPDX-License-Identifier: BSD-3-Clause
"""Peers that say nothing, against ckptsrv's limits (ckptsrv/handshake.c, session.c).

  silent_peers.py burst PORT SECRET_FILE TENANT N POOL DEADLINE_MS
      Open N silent connections at once, then log in as TENANT and LIST (timed, retried
      within a second), then watch the silent ones: each must be closed either at once
      (pushed out of the pool of POOL by a newer one) or at the handshake deadline, and
      none may outlive it. Exit 0 when so.
  silent_peers.py hold PORT N SECONDS RATE
      Keep N silent connections open for SECONDS, opening a new one (at most RATE a second)
      for each the server closes. Prints the counts.
  silent_peers.py idle PORT SECRET_FILE TENANT
      Log in, create a region, and say nothing: prints after how many ms the server closed
      the session (exit 1 if it did not within 60 s).
"""
import select
import signal
import socket
import sys
import time

import ckpt_wire as w


def now_ms():
    return time.monotonic() * 1000


def silent(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def closed_now(s):
    """Read what came (the CHALLENGE); True once the server has closed the connection."""
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def readable(socks, timeout_ms):
    """The sockets of @socks with something to read (or closed); poll(), not select(): a
    flood may hold more than FD_SETSIZE of them."""
    p = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        p.register(fd, select.POLLIN)
    return [by_fd[fd] for fd, _ in p.poll(timeout_ms)]


def login_and_list(port, secret, tenant):
    c = socket.create_connection(("127.0.0.1", port), timeout=1)
    try:
        w.client_login(c, secret, tenant)
        t, _, status, _ = w.request(c, w.LIST, seq=1)
        return t == w.LIST | w.REPLY and status == 0
    finally:
        c.close()


def burst(port, secret_file, tenant, n, pool, deadline_ms):
    secret = w.load_secret(secret_file, tenant)
    socks = [(silent(port), now_ms()) for _ in range(n)]
    t0, attempts, ok = now_ms(), 0, False
    while not ok and now_ms() - t0 < 1000:
        attempts += 1
        try:
            ok = login_and_list(port, secret, tenant)
        except (EOFError, OSError, AssertionError):
            ok = False
    login_ms = now_ms() - t0
    print("tenant %s logged in and listed in %.1f ms (%d attempt(s))" % (tenant, login_ms,
                                                                       attempts), flush=True)
    life = {}
    stop = now_ms() + deadline_ms + 3000
    while len(life) < n and now_ms() < stop:
        live = [i for i in range(n) if i not in life]
        ready = readable([socks[i][0] for i in live], 50)
        for i in live:
            if socks[i][0] in ready and closed_now(socks[i][0]):
                life[i] = now_ms() - socks[i][1]
    early = [t for t in life.values() if t < deadline_ms / 2]
    at_deadline = [t for t in life.values() if deadline_ms - 100 <= t <= deadline_ms + 1500]
    print("%d silent: %d pushed out at once, %d closed at the deadline (%s ms), %d open" %
          (n, len(early), len(at_deadline),
           "%.0f-%.0f" % (min(at_deadline), max(at_deadline)) if at_deadline else "-",
           n - len(life)), flush=True)
    for s, _ in socks:
        s.close()
    good = (ok and len(life) == n and len(early) + len(at_deadline) == n and
            len(at_deadline) <= pool and len(early) >= n - pool)
    return 0 if good else 1


def hold(port, n, secs, rate):
    """Hold the flood for secs, or until SIGTERM: a test ends it when its client is done."""
    socks, opened, closed = [], 0, 0
    end = now_ms() + secs * 1000
    budget, last = float(n), now_ms()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while now_ms() < end and not stop:
        t = now_ms()
        budget = min(float(n), budget + (t - last) * rate / 1000)
        last = t
        while len(socks) < n and budget >= 1:
            try:
                socks.append(silent(port))
                opened += 1
            except OSError:
                pass
            budget -= 1
        ready = readable(socks, 10)
        for s in ready:
            if closed_now(s):
                socks.remove(s)
                s.close()
                closed += 1
    print("held %d silent connections for %.1f s: %d opened, %d closed by the server" %
          (n, secs - (end - now_ms()) / 1000, opened, closed), flush=True)
    for s in socks:
        s.close()
    return 0


def idle(port, secret_file, tenant):
    c = socket.create_connection(("127.0.0.1", port), timeout=60)
    w.client_login(c, w.load_secret(secret_file, tenant), tenant)
    t, _, status, _ = w.request(c, w.CREATE, w.create_body("silent-" + tenant), seq=1)
    assert t == w.CREATE | w.REPLY and status == 0, (t, status)
    t0 = now_ms()
    try:
        while c.recv(4096):
            pass
    except socket.timeout:
        print("still open after 60 s")
        return 1
    except OSError:
        pass
    print("closed by the server after %.0f ms of silence" % (now_ms() - t0), flush=True)
    return 0


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "burst":
        sys.exit(burst(int(a[2]), a[3], a[4], int(a[5]), int(a[6]), int(a[7])))
    if a[1] == "hold":
        sys.exit(hold(int(a[2]), int(a[3]), int(a[4]), int(a[5])))
    if a[1] == "idle":
        sys.exit(idle(int(a[2]), a[3], a[4]))
    sys.exit(2)
