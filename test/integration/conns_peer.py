#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Connections held open across holdfast, for hfctl conns to list (hfctl.sh).

  conns_peer.py serve SRV_IP SRV_IP6
      accepts TCP on port 8080 (both addresses) and holds every connection open; answers
      UDP datagrams on 5353 that start with b"echo", ignores the others
  conns_peer.py open CLI_IP SRV_IP CLI_IP6 SRV_IP6 OUT
      opens, from fixed source ports:
        TCP4 tcp_v4 connections, 41000+i -> SRV_IP:8080; the last HALF of them then shut
             their sending side (client FIN acknowledged: CLOSE_WAIT in holdfast's table)
        TCP6 connections, 42000+i -> [SRV_IP6]:8080
        UDP  43000 -> SRV_IP:5353 asks, is answered and asks again (ASSURED); 43001 is
             never answered (UNREPLIED)
      writes what it opened to OUT, one JSON object a line ({proto, src, sport, dst, dport,
      state}, as holdfast lists them), and holds them until killed.
"""
import json
import os
import select
import socket
import sys
import time

TCP4, HALF, TCP6 = 24, 4, 4


def serve(ip4, ip6):
    ls = []
    for fam, ip in ((socket.AF_INET, ip4), (socket.AF_INET6, ip6)):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, 8080))
        s.listen(64)
        ls.append(s)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((ip4, 5353))
    held = []
    while True:
        r, _, _ = select.select(ls + [u], [], [])
        for s in r:
            if s is u:
                data, peer = u.recvfrom(2048)
                if data.startswith(b"echo"):
                    u.sendto(data, peer)
            else:
                held.append(s.accept()[0])


def tcp(fam, src, sport, dst):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, sport))
    s.settimeout(10)
    s.connect((dst, 8080))
    return s


def open_all(cli4, srv4, cli6, srv6, out):
    held, want = [], []
    for i in range(TCP4):
        s = tcp(socket.AF_INET, cli4, 41000 + i, srv4)
        held.append(s)
        state = "ESTABLISHED"
        if i >= TCP4 - HALF:
            s.shutdown(socket.SHUT_WR)
            state = "CLOSE_WAIT"
        want.append(("tcp", cli4, 41000 + i, srv4, 8080, state))
    for i in range(TCP6):
        held.append(tcp(socket.AF_INET6, cli6, 42000 + i, srv6))
        want.append(("tcp", cli6, 42000 + i, srv6, 8080, "ESTABLISHED"))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((cli4, 43000))
    u.settimeout(10)
    u.sendto(b"echo 1", (srv4, 5353))
    u.recvfrom(2048)
    u.sendto(b"echo 2", (srv4, 5353))
    u.recvfrom(2048)
    want.append(("udp", cli4, 43000, srv4, 5353, "ASSURED"))
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    q.bind((cli4, 43001))
    q.sendto(b"quiet", (srv4, 5353))
    want.append(("udp", cli4, 43001, srv4, 5353, "UNREPLIED"))
    held += [u, q]
    keys = ("proto", "src", "sport", "dst", "dport", "state")
    with open(out + ".tmp", "w") as f:
        for w in want:
            f.write(json.dumps(dict(zip(keys, w))) + "\n")
    os.rename(out + ".tmp", out)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:4])
    elif sys.argv[1] == "open":
        open_all(*sys.argv[2:7])
    else:
        sys.exit(__doc__)
