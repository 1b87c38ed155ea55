#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Compare what holdfast sent out of each port with expect.tsv from gen_mixed.py.

A frame that entered on port P and passed must leave on port 1-P, unchanged, in order;
one that should be dropped must not leave at all. Every mismatch is printed with its
index, flow, what it is, and the expected and actual verdict. Exit 0 only if all match.
"""
import sys

from scapy.all import rdpcap


def main(outdir):
    expect = []
    with open(f"{outdir}/expect.tsv") as f:
        for line in f:
            i, port, verdict, flow, note, hexbytes = line.rstrip("\n").split("\t")
            expect.append((int(i), int(port), verdict, flow, note, bytes.fromhex(hexbytes)))
    out = {p: [bytes(x) for x in rdpcap(f"{outdir}/out{p}.pcap")] for p in (0, 1)}
    bad = 0
    for p_in in (0, 1):
        sent = out[1 - p_in]
        want = [e for e in expect if e[1] == p_in and e[2] == "pass"]
        seen = set(sent)
        for e in expect:
            if e[1] != p_in:
                continue
            passed = e[5] in seen
            if passed != (e[2] == "pass"):
                bad += 1
                print(f"MISMATCH frame {e[0]} ({e[3]}: {e[4]}) in port {p_in}: expected "
                      f"{e[2]}, got {'pass' if passed else 'drop'}")
        extra = [s for s in sent if s not in {e[5] for e in expect}]
        if extra:
            bad += len(extra)
            print(f"MISMATCH {len(extra)} frames left port {1 - p_in} that were never sent")
        if [s for s in sent if s in {w[5] for w in want}] != [w[5] for w in want if w[5] in seen]:
            bad += 1
            print(f"MISMATCH frames left port {1 - p_in} out of order")
    total = len(expect)
    print(f"{total - bad if bad < total else 0}/{total} frames as expected"
          if bad else f"all {total} frames as expected "
          f"({sum(1 for e in expect if e[2] == 'pass')} passed, "
          f"{sum(1 for e in expect if e[2] == 'drop')} dropped)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
