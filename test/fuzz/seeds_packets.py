#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed corpora of the packet fuzzers.

fuzz_parse: every frame of the end-to-end scenario (gen_mixed.py: TCP and UDP over IPv4 and
IPv6, VLANs, FTP, fragments, options, malformed frames), one file each; and ICMP: neighbour
and multicast listener discovery, an IPv6 packet too big and an IPv4 fragmentation needed
quoting the packets they are about.
fuzz_modules: conversations in its record format ({op, len, bytes}; op 0 TCP, 1 UDP, 2 FTP
over TCP, 3 a slice to restore): a TCP handshake with data and a close, a UDP exchange, FTP
control connections announcing PASV, EPSV, PORT and EPRT data connections.
Usage: seeds_packets.py DIR (writes DIR/fuzz_parse and DIR/fuzz_modules)."""
import os
import sys
import tempfile

from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6MLReport2, ICMPv6ND_NS,  # noqa: E402
                       ICMPv6PacketTooBig, IPv6, IPv6ExtHdrHopByHop, Raw, RouterAlert)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import gen_mixed  # noqa: E402

out = sys.argv[1]
os.makedirs(f"{out}/fuzz_parse", exist_ok=True)
os.makedirs(f"{out}/fuzz_modules", exist_ok=True)

sc = gen_mixed.build()
seen = set()
for i, step in enumerate(sc.steps):
    frame = step[1]
    if frame in seen:
        continue
    seen.add(frame)
    with open(f"{out}/fuzz_parse/e2e-{i:03d}", "wb") as f:
        f.write(frame)

icmp = {
    "icmp6-ns": IPv6(src="2001:db8:18::1", dst="ff02::1:ff00:2", hlim=255) /
    ICMPv6ND_NS(tgt="2001:db8:18::2"),
    "icmp6-mld": IPv6(src="fe80::1", dst="ff02::16", hlim=1) /
    IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(),
    "icmp6-too-big": IPv6(src="2001:db8:19::fffe", dst="2001:db8:18::1") /
    ICMPv6PacketTooBig(mtu=1280) /
    bytes(IPv6(src="2001:db8:18::1", dst="2001:db8:19::2") / TCP(sport=40000, dport=80)),
    "icmp-frag-needed": IP(src="198.19.255.254", dst="198.18.0.1") /
    ICMP(type=3, code=4, nexthopmtu=1400) /
    bytes(IP(src="198.18.0.1", dst="198.19.0.2") / UDP(sport=5353, dport=53))[:28],
}
for name, pkt in icmp.items():
    with open(f"{out}/fuzz_parse/{name}", "wb") as f:
        f.write(bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt))

ORIG, REPLY = 0x00, 0x80


def rec(op, data):
    assert len(data) < 256
    return bytes([op, len(data)]) + data


def tcp(direction, flags, seq, ack, payload=b"", ftp=False, sport=0x1027, dport=0x1500):
    if direction == REPLY:
        sport, dport = dport, sport
    seg = bytes(TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=65535) /
                Raw(payload))
    return rec(2 if ftp else 0, bytes([direction]) + seg)


def conversation(lines, ftp):
    """A handshake, then each (direction, text) as one segment acked by the other side."""
    c, s = 1000, 5000
    out = tcp(ORIG, "S", c, 0, ftp=ftp) + tcp(REPLY, "SA", s, c + 1, ftp=ftp) + \
        tcp(ORIG, "A", c + 1, s + 1, ftp=ftp)
    c, s = c + 1, s + 1
    for direction, text in lines:
        data = text.encode()
        if direction == ORIG:
            out += tcp(ORIG, "PA", c, s, data, ftp) + tcp(REPLY, "A", s, c + len(data), ftp=ftp)
            c += len(data)
        else:
            out += tcp(REPLY, "PA", s, c, data, ftp) + tcp(ORIG, "A", c, s + len(data), ftp=ftp)
            s += len(data)
    return out + tcp(ORIG, "FA", c, s, ftp=ftp) + tcp(REPLY, "FA", s, c + 1, ftp=ftp) + \
        tcp(ORIG, "A", c + 1, s + 1, ftp=ftp)


seeds = {
    "tcp-http": conversation([(ORIG, "GET / HTTP/1.0\r\n\r\n"), (REPLY, "HTTP/1.0 200 OK\r\n")],
                             False),
    "udp-dns": rec(1, bytes([0]) + bytes(UDP(sport=4135, dport=53) / Raw(b"q" * 20))) +
    rec(1, bytes([1]) + bytes(UDP(sport=53, dport=4135) / Raw(b"a" * 40))),
    "ftp-pasv": conversation([(REPLY, "220 ready\r\n"), (ORIG, "PASV\r\n"),
                              (REPLY, "227 Entering Passive Mode (198,51,100,2,19,137).\r\n")],
                             True),
    "ftp-epsv": conversation([(ORIG, "EPSV\r\n"),
                              (REPLY, "229 Entering Extended Passive Mode (|||5001|)\r\n")],
                             True),
    "ftp-port": conversation([(ORIG, "PORT 192,0,2,1,19,137\r\n"), (REPLY, "200 ok\r\n")],
                             True),
    "ftp-eprt": conversation([(ORIG, "EPRT |1|192.0.2.1|5001|\r\n"), (REPLY, "200 ok\r\n")],
                             True),
    "ftp-split-line": conversation([(ORIG, "PO"), (ORIG, "RT 192,0,2,1,19,137\r\n")], True),
}
for name, data in seeds.items():
    with open(f"{out}/fuzz_modules/{name}", "wb") as f:
        f.write(data)
print(f"{len(seen) + len(icmp)} frames for fuzz_parse, {len(seeds)} conversations for "
      "fuzz_modules")
