#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""hfctl against a running holdfast (hfctl.sh), in one process: hfctl's own main() is run
for each command line (its output captured), so every check goes through the command an
operator types, without a Python start per check. OPENED: what conns_peer.py opened.

  hfctl_check.py listing HFCTL PREFIX OPENED   hfctl conns: the listing, the table, the
                                               workers, pages, filters, refusals
  hfctl_check.py commands HFCTL PREFIX OPENED  every other command answers; metrics parse
                                               as Prometheus text and match the telemetry
  hfctl_check.py restored HFCTL PREFIX OPENED  the same connections, each restored

MODE may name several, comma-separated (listing,commands).
"""
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import re
import sys
import time

KEYS = ("proto", "src", "sport", "dst", "dport", "state")


def load_hfctl(path):
    loader = importlib.machinery.SourceFileLoader("hfctl", path)
    spec = importlib.util.spec_from_loader("hfctl", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Runner:
    def __init__(self, hfctl, prefix):
        self.mod = load_hfctl(hfctl)
        self.prefix = prefix

    def run(self, *args):
        """hfctl --prefix PREFIX ARGS: (exit status, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        sys.argv = ["hfctl", "--prefix", self.prefix] + list(args)
        rc = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                self.mod.main()
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    err.write(e.code + "\n")
        return rc, out.getvalue(), err.getvalue()

    def conns(self, *args):
        """hfctl conns --json ARGS: the connections listed."""
        rc, out, err = self.run("conns", "--json", *args)
        if rc != 0:
            sys.exit(f"FAIL: hfctl conns {' '.join(args)}: exit {rc}: {err}")
        return [json.loads(l) for l in out.splitlines()]

    def tel(self, cmd):
        t = self.mod.Telemetry(f"/var/run/dpdk/{self.prefix}/dpdk_telemetry.v2")
        return t.get(cmd)


def tuples(conns):
    return sorted(tuple(c[k] for k in KEYS) for c in conns)


def check(ok, what):
    if not ok:
        sys.exit(f"FAIL: {what}")


def listing(r, opened):
    want = tuples(opened)
    n = len(opened)
    # Every state settles as the client left it: half-closes acknowledged, UDP answered.
    deadline = time.monotonic() + 10
    while True:
        got = r.conns()
        if tuples(got) == want:
            break
        if time.monotonic() > deadline:
            sys.exit("FAIL: hfctl conns does not list exactly what was opened:\n  opened " +
                     "\n  opened ".join(map(str, want)) + "\n  listed " +
                     "\n  listed ".join(map(str, tuples(got))))
        time.sleep(0.1)
    print(f"hfctl conns lists the {n} connections opened, addresses, ports and states as opened")

    # The table says what --json says.
    rc, out, err = r.run("conns")
    check(rc == 0, f"hfctl conns: exit {rc}")
    print("--- hfctl conns\n" + out + err, end="")
    lines = out.splitlines()
    check(lines[0].split() == ["PROTO", "STATE", "SOURCE", "DESTINATION", "IDLE", "EXPIRES",
                               "WORKER", "FLAGS"], f"header {lines[0]}")

    def ep(a, p):
        return f"[{a}]:{p}" if ":" in a else f"{a}:{p}"
    rows = sorted(tuple(l.split()[i] for i in (0, 1, 2, 3, 6)) for l in lines[1:])
    check(rows == sorted((c["proto"], c["state"], ep(c["src"], c["sport"]),
                          ep(c["dst"], c["dport"]), str(c["worker"])) for c in got),
          "the table does not say what --json does")
    counts = r.tel("/holdfast/conns")
    check(err.startswith(f"hfctl: {n} connections listed; {n} tracked of {counts['capacity']} "
                         f"(worker 0: {counts['worker0']}, worker 1: {counts['worker1']})"),
          f"summary: {err}")

    # Both workers own some; each worker's listing is its own, and its count.
    per = {}
    for w in (0, 1):
        per[w] = r.conns("--worker", str(w))
        check(len(per[w]) == counts[f"worker{w}"] and per[w],
              f"worker {w}: {len(per[w])} listed, {counts[f'worker{w}']} tracked")
        check(all(c["worker"] == w for c in per[w]), f"--worker {w} lists another's")
    check(tuples(per[0] + per[1]) == want, "the two workers' listings are not the whole")
    print(f"worker 0 lists {len(per[0])}, worker 1 {len(per[1])}")

    # Pages of one and of five list what the default does; one page of 2 is one.
    for p in ("1", "5"):
        check(tuples(r.conns("--page", p)) == want, f"pages of {p} list otherwise")
    pg = r.tel("/holdfast/conns,0,0,2")
    check(pg["conns"] == 2 and pg["end"] == 0 and pg["next"] > 0 and pg["cursor"] == 0
          and "0" in pg and "1" in pg and "2" not in pg, f"a page of 2: {pg}")
    rest = r.tel(f"/holdfast/conns,0,{pg['next']},48")
    check(rest["end"] == 1 and rest["conns"] == len(per[0]) - 2, f"the rest: {rest}")
    print("pages of 1, 5 and 48 list the same")

    # Filters, each against what was opened; --count agrees.
    def expect(count, *args):
        got = r.conns(*args)
        check(len(got) == count, f"hfctl conns {' '.join(args)}: {len(got)} listed, want {count}")
        print(f"  conns {' '.join(args)}: {count}")
        return got

    def counted(count, *args):
        rc, out, _ = r.run("conns", "--count", *args)
        check(rc == 0 and out.strip() == str(count),
              f"hfctl conns --count {' '.join(args)}: {out.strip()}, want {count}")
        print(f"  conns --count {' '.join(args)}: {count}")
    v6 = sum(1 for c in opened if ":" in c["src"])
    udp = sum(1 for c in opened if c["proto"] == "udp")
    half = sum(1 for c in opened if c["state"] == "CLOSE_WAIT")
    est4 = sum(1 for c in opened if c["state"] == "ESTABLISHED" and ":" not in c["src"])
    expect(n)
    expect(n - v6, "-s", "198.18.0.0/15")
    expect(n - v6, "-d", "198.19.0.1")
    expect(v6, "-a", "2001:db8:18::/64")
    expect(v6, "-s", "2001:db8:18::1", "-p", "tcp", "--dport", "8080")
    expect(0, "-s", "198.19.0.1")
    expect(udp, "-p", "udp")
    expect(udp, "--dport", "5353")
    expect(1, "-p", "udp", "--state", "assured")
    expect(1, "--state", "UNREPLIED")
    expect(half, "--state", "CLOSE_WAIT")
    expect(est4, "-s", "198.18.0.1", "--state", "ESTABLISHED")
    check(expect(1, "--sport", "41003")[0]["sport"] == 41003, "--sport 41003")
    expect(1, "--port", "42001")
    expect(n - udp, "--port", "8080")
    expect(len(per[1]), "--worker", "1")
    expect(sum(1 for c in per[0] if c["proto"] == "udp"), "--worker", "0", "-p", "udp")
    counted(n)  # the workers' counts, no listing
    counted(v6, "-a", "2001:db8:18::/64")
    counted(half, "--state", "CLOSE_WAIT")

    # Telemetry parameters are anyone's who reaches the socket: refused with a reason.
    for p in ("2,0", "0", "0,x", "0,-1", "0,+1", "0, 1", "0,99999999999", "0,0,0", "0,0,49",
              "0,0,", "0,0,1,1", ",0", "0,1x", "0x1,0", "0,4294967296", "0,1,2,3,4,5,6,7,8",
              '0,"}', "0,\\", "0,\x01", "0," + "9" * 40):
        rep = r.tel(f"/holdfast/conns,{p}")
        # A reply that is not JSON fails in tel() already.
        check(isinstance(rep, dict) and "error" in rep and len(rep) == 1,
              f"/holdfast/conns,{p} not refused: {rep}")
    print(f"  /holdfast/conns,{p}: {rep}")
    rep = r.tel("/holdfast/conns,0,999999")
    check("past the table's end" in rep.get("error", ""), f"a cursor past the end: {rep}")
    # And hfctl's own arguments: usage errors (2), or no such worker (1), with a reason.
    for args in (("--worker", "2"), ("-s", "1.2.3.4/33"), ("--port", "65536"),
                 ("--state", "OPEN"), ("-p", "icmp"), ("--page", "49"), ("--page", "0")):
        rc, _, err = r.run("conns", *args)
        check(rc in (1, 2) and err.strip(), f"hfctl conns {' '.join(args)}: exit {rc}, {err}")
    print("  refused: bad parameters, bad filters, no worker 2")


def restored(r, opened):
    got = r.conns()
    check(tuples(got) == tuples(opened),
          "after the restart the listing differs: " + str(tuples(got)))
    check(all(c["restored"] == 1 for c in got), "a connection not marked restored")
    rc, out, _ = r.run("conns")
    check(sum(1 for l in out.splitlines() if l.endswith(" restored")) == len(opened),
          "the table shows no restored flag")
    print(f"after a kill -9 and a restart: the same {len(opened)} connections, each restored")


def commands(r, opened):
    from prometheus_client.parser import text_string_to_metric_families  # a slow import

    del opened
    for args in (("stats",), ("stats", "--worker", "1"), ("workers",), ("ckpt",),
                 ("standby",), ("rules",)):
        rc, out, err = r.run(*args)
        check(rc == 0 and out, f"hfctl {' '.join(args)}: exit {rc}: {err}")
        print(f"--- hfctl {' '.join(args)}\n{out}", end="")
    check(re.search(r"^role +primary$", r.run("standby")[1], re.M), "standby: no primary role")
    # Every connection's slices durable: the recovery point empty (bounded wait).
    deadline = time.monotonic() + 30
    while True:
        k = r.tel("/holdfast/ckpt")
        if k["slices_tcp"] > 0 and k["not_durable"] == 0:
            break
        check(time.monotonic() < deadline, f"no slices checkpointed: {k}")
        time.sleep(0.05)
    check("recovery point: 0 slice changes not durable yet" in r.run("ckpt")[1],
          "ckpt: no recovery point")
    nobody = Runner.__new__(Runner)
    nobody.mod, nobody.prefix = r.mod, f"nobody{os.getpid()}"
    rc, _, err = nobody.run("stats")
    check(rc == 1 and f"no holdfast answers at /var/run/dpdk/{nobody.prefix}/" in err,
          f"hfctl for a holdfast that does not run: exit {rc}, {err}")

    # Traffic goes on (ARP, neighbour discovery, keepalives): each metric must lie between
    # telemetry read just before and just after it.
    def snapshot():
        return (r.tel("/holdfast/stats"), r.tel("/holdfast/ckpt"), r.tel("/holdfast/conns"),
                r.tel("/holdfast/rules"))
    before = snapshot()
    rc, text, err = r.run("metrics")
    check(rc == 0, f"hfctl metrics: {err}")
    after = snapshot()
    fams = {f.name: f for f in text_string_to_metric_families(text)}

    def total(name, **labels):
        """The sum of a family's samples with these labels (a counter's _total ones only)."""
        f = fams[name]
        return sum(s.value for s in f.samples
                   if (f.type != "counter" or s.name.endswith("_total")) and
                   all(s.labels.get(k) == v for k, v in labels.items()))
    def want(snap):
        st, k, c, rules = snap
        return {"pass": st["pass"], "port 0 rx": st["port0_rx"],
                "policy drops": st["drop_policy"], "tcp slices": k["slices_tcp"],
                "connections": c["total"], "worker 1 connections": c["worker1"],
                "not durable": k["not_durable"], "rule hits": sum(rules["hits"]),
                "rules": rules["rules"]}
    lo, hi = want(before), want(after)
    got = {
        "pass": total("holdfast_pass"),
        "port 0 rx": total("holdfast_port_rx_packets", port="0"),
        "policy drops": total("holdfast_drop_packets", reason="policy"),
        "tcp slices": total("holdfast_ckpt_slices", module="tcp"),
        "connections": total("holdfast_connections"),
        "worker 1 connections": total("holdfast_connections", worker="1"),
        "not durable": total("holdfast_ckpt_not_durable"),
        "rule hits": total("holdfast_rule_hits"),
        "rules": len([s for s in fams["holdfast_rule_hits"].samples
                      if s.name.endswith("_total")]),
    }
    for what in got:
        a, b = min(lo[what], hi[what]), max(lo[what], hi[what])
        print("metrics %s: %s (telemetry %s before, %s after)" % (what, got[what], lo[what],
                                                                  hi[what]))
        check(a <= got[what] <= b and (b != 0 or what not in ("tcp slices", "rule hits")),
              f"metrics {what}: {got[what]}, telemetry {lo[what]} before and {hi[what]} after")
    print("%d metric families, types: %s" % (len(fams), sorted({f.type for f in fams.values()})))


def main():
    mode, hfctl, prefix, opened = sys.argv[1:5]
    r = Runner(hfctl, prefix)
    opened = [json.loads(l) for l in open(opened) if l.strip()]
    for m in mode.split(","):
        {"listing": listing, "commands": commands, "restored": restored}[m](r, opened)


if __name__ == "__main__":
    main()
