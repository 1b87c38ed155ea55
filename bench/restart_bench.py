#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Restart time: kill -9 of a running holdfast, then holdfast started again, timed from the
kill to its "ready" line, over pmem: and over a ckptsrv on ofi+tcp, several times each,
the targets alternated. Prints min/p50/max of kill -> ready and of the phases holdfast's
own "ready in" line names (EAL init, setup, checkpoint connect, restore, lease).

A measurement, not a test: it never judges the figures. Hugepages are used when it can
set them (root), as production would; --no-huge otherwise, and it says which.

    restart_bench.py --build BUILD [--runs N] [--max-conns N]
"""
import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

READY = re.compile(r"ready in ([0-9.]+) ms: EAL init ([0-9.]+) ms, setup ([0-9.]+) ms, "
                   r"checkpoint connect ([0-9.]+) ms, restore ([0-9.]+) ms \(([0-9]+) "
                   r"connections\), lease ([0-9.]+) ms")
PHASES = ("EAL init", "setup", "checkpoint connect", "restore", "lease")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hugepages(want):
    """Make sure @want 2 MB pages exist; return the count to put back, or None."""
    path = "/proc/sys/vm/nr_hugepages"
    try:
        before = int(open(path).read())
        if before < want:
            open(path, "w").write(str(want))
        if int(open(path).read()) >= want:
            return before
    except OSError:
        pass
    return None


class Target:
    def __init__(self, kind, build, scratch, max_conns):
        self.kind, self.build, self.scratch = kind, build, scratch
        self.binary = os.path.join(build, "holdfast")
        self.srv = None
        conf = ["pair 0 1 inside 0", f"max-conns {max_conns}", "lease-ms 500"]
        if kind == "tcp":
            secret = os.path.join(scratch, "secret")
            with open(secret, "w") as f:
                f.write("holdfast %s\n" % os.urandom(24).hex())
            port = free_port()
            self.srv_log = open(os.path.join(scratch, "srv.log"), "w")
            self.srv = subprocess.Popen(
                [os.path.join(build, "ckptsrv", "ckptsrv"), "--pmem",
                 os.path.join(scratch, "store.pmu"), "--size", "1G", "--secret-file", secret,
                 "--listen", f"ofi+tcp://127.0.0.1:{port}"],
                stdout=self.srv_log, stderr=subprocess.STDOUT)
            deadline = time.time() + 30
            while "serving store" not in open(self.srv_log.name).read():
                if time.time() > deadline or self.srv.poll() is not None:
                    sys.exit("restart_bench: ckptsrv did not start")
                time.sleep(0.02)
            conf += [f"ckpt ofi+tcp://127.0.0.1:{port}", f"ckpt-secret-file {secret}"]
        else:
            conf += ["ckpt pmem:" + os.path.join(scratch, "state.pmu")]
        self.conf = os.path.join(scratch, "holdfast.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.hf = None

    def start(self, eal):
        """Start holdfast; return (its stdout lines up to "ready in", the time it said ready)."""
        log = os.path.join(self.scratch, "hf.log")
        out = open(log, "w")
        self.hf = subprocess.Popen(
            [self.binary] + eal +
            ["--no-pci", "-l", "0", "--file-prefix", f"rb{os.getpid()}{self.kind}",
             "--vdev", "net_null0", "--vdev", "net_null1", "--", "--config", self.conf],
            stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            text = open(log).read()
            m = READY.search(text)
            if m:
                return m, time.time()
            if time.time() > deadline or self.hf.poll() is not None:
                sys.exit(f"restart_bench: holdfast on {self.kind} did not get ready:\n{text}")
            time.sleep(0.001)

    def kill(self):
        t = time.time()
        self.hf.send_signal(signal.SIGKILL)
        self.hf.wait()
        return t

    def close(self):
        if self.hf and self.hf.poll() is None:
            self.hf.send_signal(signal.SIGKILL)
            self.hf.wait()
        if self.srv:
            self.srv.terminate()
            self.srv.wait()


def spread(xs):
    return "%.0f/%.0f/%.0f" % (min(xs), statistics.median(xs), max(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--max-conns", type=int, default=65536)
    ap.add_argument("--holdfast", help="the holdfast binary (default BUILD/holdfast): "
                    "to compare two builds, run the bench once with each")
    ap.add_argument("--only", choices=("pmem", "tcp"), help="one target only")
    a = ap.parse_args()
    restore = hugepages(256)
    eal = ["-m", "128", "--in-memory"] if restore is not None else ["--no-huge", "-m", "128",
                                                                      "--no-shconf"]
    print("== restart: kill -9, then started again, %d times per target (%s, max-conns %d)"
          % (a.runs, "hugepages" if restore is not None else "no hugepages", a.max_conns))
    scratch = tempfile.mkdtemp(prefix="hf-restart-")
    targets = []
    for kind in ("pmem", "tcp"):
        if a.only and kind != a.only:
            continue
        os.makedirs(os.path.join(scratch, kind))
        targets.append(Target(kind, a.build, os.path.join(scratch, kind), a.max_conns))
        if a.holdfast:
            targets[-1].binary = a.holdfast
    got = {t.kind: {"kill": [], **{p: [] for p in PHASES}} for t in targets}
    try:
        for t in targets:
            t.start(eal)  # the first start creates the regions
        order = []
        for _ in range(a.runs):
            order += random.sample(targets, len(targets))
        for t in order:
            t0 = t.kill()
            m, t1 = t.start(eal)
            g = got[t.kind]
            g["kill"].append((t1 - t0) * 1e3)
            for p, group in zip(PHASES, (2, 3, 4, 5, 7)):
                g[p].append(float(m.group(group)))
        for t in targets:
            g = got[t.kind]
            print("  %-5s kill -> ready (ms, min/p50/max): %s; inside holdfast: %s" % (
                t.kind + ":", spread(g["kill"]),
                ", ".join("%s %s" % (p, spread(g[p])) for p in PHASES)))
        print("  (kill -> ready less holdfast's own 'ready in' is the kernel tearing the"
              " killed process down, and loading the new one before main)")
    finally:
        for t in targets:
            t.close()
        subprocess.run(["rm", "-rf", scratch])
        if restore is not None:
            open("/proc/sys/vm/nr_hugepages", "w").write(str(restore))


if __name__ == "__main__":
    main()
