#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Long-lived echoing TCP connections for clients_failover.sh.

  clients_echo.py server ADDR PORT
  clients_echo.py client ADDR PORT CONNS PERIOD_MS STATUS ECHOES

The server echoes every byte back. The client opens CONNS connections and keeps them: each
sends a numbered line every PERIOD_MS (the connections spread over the period, so some
always have nothing outstanding and send afresh whatever TCP's retransmission backoff does
to the others) and checks the echo is that line. Every 100 ms it writes STATUS:
'alive CONNS_OPEN broken N oldest LAST_ECHO_TIME' (the earliest of the connections' last echo
times, epoch seconds): every connection has echoed since then. On SIGTERM it writes the
receive time of every echo to ECHOES, one 'time connection' a line, and exits 0 if every
connection lived and echoed right, 1 otherwise (the reason on stderr).

  clients_echo.py report KILLS ECHOES CONNS

With KILLS one 'kill dead ready' a line (epoch seconds: kill -9 sent, the primary reaped,
the standby's ready line seen): per kill, the first echo after the primary was gone (so
through the new primary) and the time by which every connection had echoed again, both
from the kill; then min/p50/max of each.
"""
import math
import os
import selectors
import signal
import socket
import sys
import time


def serve(addr, port):
    sel = selectors.DefaultSelector()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(256)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is ls:
                c, _ = ls.accept()
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                continue
            s.setblocking(True)  # lines are short: a blocking send never waits long
            s.sendall(data)
            s.setblocking(False)


class Conn:
    def __init__(self, k, addr, port, due):
        self.k = k
        self.s = socket.create_connection((addr, port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.setblocking(False)
        self.seq = 0
        self.want = b""      # the lines sent and not yet echoed
        self.got = b""
        self.due = due
        self.last_echo = time.time()


def client(addr, port, nconns, period_ms, status_path, echoes_path):
    period = period_ms / 1000.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    t0 = time.monotonic()
    conns = [Conn(k, addr, port, t0 + period * k / nconns) for k in range(nconns)]
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.s, selectors.EVENT_READ, c)
    echoes, broken = [], []
    next_status = 0.0
    while not stop:
        now = time.monotonic()
        for c in conns:
            if c.s is not None and now >= c.due and not c.want:
                line = b"%d %d %s\n" % (c.k, c.seq, b"x" * 40)
                c.seq += 1
                c.want += line
                try:
                    c.s.send(line)  # tiny: fits the socket buffer whole
                except OSError as e:
                    broken.append(f"connection {c.k}: send: {e}")
                    sel.unregister(c.s)
                    c.s.close()
                    c.s = None
                c.due = now + period
        for key, _ in sel.select(0.002):
            c = key.data
            try:
                data = c.s.recv(65536)
                err = "closed by the peer" if not data else None
            except OSError as e:
                data, err = b"", str(e)
            if err:
                broken.append(f"connection {c.k}: {err} after {c.seq} lines")
                sel.unregister(c.s)
                c.s.close()
                c.s = None
                continue
            c.got += data
            while b"\n" in c.got:
                line, _, c.got = c.got.partition(b"\n")
                exp, _, c.want = c.want.partition(b"\n")
                if line != exp:
                    broken.append(f"connection {c.k}: echoed {line[:20]!r}, sent {exp[:20]!r}")
                t = time.time()
                c.last_echo = t
                echoes.append((t, c.k))
        if now >= next_status:
            alive = [c for c in conns if c.s is not None]
            oldest = min((c.last_echo for c in alive), default=0.0)
            with open(status_path + ".tmp", "w") as f:
                f.write(f"alive {len(alive)} broken {len(broken)} oldest {oldest:.6f}\n")
            os.replace(status_path + ".tmp", status_path)
            next_status = now + 0.1
    with open(echoes_path, "w") as f:
        for t, k in echoes:
            f.write(f"{t:.6f} {k}\n")
    for b in broken:
        print(f"clients_echo: {b}", file=sys.stderr)
    return 1 if broken else 0


def spread(xs):
    xs = sorted(xs)
    return f"{xs[0]:.0f}/{xs[max(0, math.ceil(len(xs) / 2) - 1)]:.0f}/{xs[-1]:.0f}"


def report(kills_path, echoes_path, nconns):
    kills = [tuple(map(float, ln.split())) for ln in open(kills_path) if ln.strip()]
    echoes = [(float(t), int(k)) for t, k in (ln.split() for ln in open(echoes_path))]
    first, every, ready = [], [], []
    for n, (tk, td, tr) in enumerate(kills):
        end = kills[n + 1][0] if n + 1 < len(kills) else math.inf
        after = [(t, k) for t, k in echoes if td < t < end]
        if not after:
            print(f"kill {n + 1}: no echo after it")
            return 1
        seen = {}
        for t, k in after:
            seen.setdefault(k, t)
        if len(seen) < nconns:
            print(f"kill {n + 1}: only {len(seen)} of {nconns} connections echoed after it")
            return 1
        first.append((after[0][0] - tk) * 1000)
        every.append((max(seen.values()) - tk) * 1000)
        ready.append((tr - tk) * 1000)
    print(f"  kill -> standby ready (ms, min/p50/max): {spread(ready)}")
    print(f"  kill -> first echo after the takeover (ms, min/p50/max): {spread(first)}")
    print(f"  kill -> every connection echoed again (ms, min/p50/max): {spread(every)}"
          " (TCP's retransmission backoff included)")
    return 0


def main():
    a = sys.argv[1:]
    if a[:1] == ["server"] and len(a) == 3:
        return serve(a[1], int(a[2]))
    if a[:1] == ["client"] and len(a) == 7:
        return client(a[1], int(a[2]), int(a[3]), float(a[4]), a[5], a[6])
    if a[:1] == ["report"] and len(a) == 4:
        return report(a[1], a[2], int(a[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
