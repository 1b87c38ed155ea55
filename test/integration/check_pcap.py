#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Compare what holdfast sent out of each port with expect.tsv from gen_mixed.py.

A frame that entered on port P and passed must leave on port 1-P, unchanged, in order;
one dropped must not leave at all; one rejected must not leave, and its reply (exact
bytes) must leave by port P. Every mismatch is printed with its index, flow, what it is,
and the expected and actual verdict. Exit 0 only if everything matches.
"""
import sys

from scapy.all import rdpcap


def main(outdir):
    expect = []
    with open(f"{outdir}/expect.tsv") as f:
        for line in f:
            i, port, verdict, flow, note, frame, reply = line.rstrip("\n").split("\t")
            expect.append((int(i), int(port), verdict, flow, note, bytes.fromhex(frame),
                           bytes.fromhex(reply)))
    out = {p: [bytes(x) for x in rdpcap(f"{outdir}/out{p}.pcap")] for p in (0, 1)}
    bad = 0
    for p in (0, 1):
        # What should leave port p: frames passed from the other port, replies to this one.
        want = [e[5] for e in expect if e[1] == 1 - p and e[2] == "pass"]
        want_replies = [e[6] for e in expect if e[1] == p and e[2] == "reject"]
        seen = set(out[p])
        for e in expect:
            if e[1] == 1 - p:
                passed = e[5] in seen
                if passed != (e[2] == "pass"):
                    bad += 1
                    print(f"MISMATCH frame {e[0]} ({e[3]}: {e[4]}) in port {e[1]}: expected "
                          f"{e[2]}, got {'pass' if passed else 'drop'}")
            elif e[2] == "reject" and e[6] not in seen:
                bad += 1
                print(f"MISMATCH frame {e[0]} ({e[3]}: {e[4]}) in port {p}: its reject reply "
                      f"did not come back out")
        known = set(want) | set(want_replies)
        extra = [s for s in out[p] if s not in known]
        if extra:
            bad += len(extra)
            print(f"MISMATCH {len(extra)} unexpected frames left port {p}: "
                  + " ".join(x.hex()[:80] for x in extra[:3]))
        order = [s for s in out[p] if s in set(want)]
        if order != [w for w in want if w in seen]:
            bad += 1
            print(f"MISMATCH frames left port {p} out of order")
    n = {v: sum(1 for e in expect if e[2] == v) for v in ("pass", "drop", "reject")}
    if bad:
        print(f"{bad} mismatches in {len(expect)} frames")
        return 1
    print(f"all {len(expect)} frames as expected ({n['pass']} passed, {n['drop']} dropped, "
          f"{n['reject']} rejected with a reply)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
