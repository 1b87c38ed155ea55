#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Flows split by a crash: phase a/ opens them, phase b/ (after kill -9 and restart)
continues them. Writes a/ and b/ with in0.pcap, in1.pcap and expect.tsv each, laid out
like gen_mixed.py so frames are seen in the order listed."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_mixed import IP, UDP, Raw, Scenario, Tcp, write  # noqa: E402


def build():
    a, b = Scenario(), Scenario()
    c4, s4 = "198.18.0.1", "198.19.0.10"
    t = Tcp(a, False, c4, 41001, s4, 80, "tcp4 41001>80")
    t.handshake()
    t.seg(True, "PA", b"GET / HTTP/1.1\r\n\r\n", note="request")
    t.seg(False, "PA", b"y" * 700, note="response")
    t.seg(True, "A", note="ack")
    f = Tcp(a, False, c4, 41010, "198.19.0.21", 21, "ftp4 control")
    f.handshake()
    f.seg(False, "PA", b"220 ready\r\n", note="banner")
    f.seg(True, "PA", b"PORT 198,18,0,1,195,100\r\n", note="PORT 198.18.0.1:50020")
    a.add(0, IP(src=c4, dst="198.19.0.53", id=0) / UDP(sport=5400, dport=53) / Raw(b"q"),
          "pass", "udp4 5400>53", "query")

    # kill -9, restart: the same connections go on; what was invalid stays invalid.
    for conn in (t, f):
        conn.sc = b
    t.seg(False, "PA", b"z" * 500, note="more response after the restart")
    t.seg(True, "A", note="ack after the restart")
    t.seg(True, "PA", b"late", verdict="drop", note="out of window after the restart",
          seq=t.cseq + 20_000_000, adv=False)
    b.add(1, IP(src="198.19.0.53", dst=c4, id=0) / UDP(sport=53, dport=5400) / Raw(b"r"),
          "pass", "udp4 5400>53", "reply after the restart")
    f.seg(False, "PA", b"200 PORT ok\r\n", note="200 after the restart")
    d = Tcp(b, False, "198.19.0.21", 20, c4, 50020, "ftp4 active data", cli_port=1)
    d.seg(True, "S", note="data SYN to the port announced before the crash")
    Tcp(b, False, "198.19.0.21", 20, c4, 50021, "ftp4 other", cli_port=1).seg(
        True, "S", verdict="drop", note="data SYN to a port never announced")
    Tcp(b, False, c4, 41002, s4, 80, "tcp4 41002>80").seg(
        True, "A", verdict="drop", note="ACK of a connection that never existed")
    t.seg(True, "FA", note="client FIN")
    t.seg(False, "FA", note="server FIN")
    t.seg(True, "A", note="last ACK")
    return a, b


if __name__ == "__main__":
    a, b = build()
    for name, sc in (("a", a), ("b", b)):
        os.makedirs(f"{sys.argv[1]}/{name}", exist_ok=True)
        write(sc, f"{sys.argv[1]}/{name}")
