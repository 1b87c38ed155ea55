#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Generate a mixed TCP/UDP/FTP scenario, with invalid packets, for holdfast on net_pcap.

Writes in0.pcap (frames arriving on port 0, the inside) and in1.pcap (port 1, the outside)
and expect.tsv: one line per frame: index, input port, pass|drop, flow, what it is.

Ordering across the two files: a worker polls port 0, then port 1, each with bursts of
BURST frames, and net_pcap hands out exactly min(BURST, left) frames per burst. So the
frames are laid out in rounds of exactly BURST per port, padded with non-IP filler frames
(dropped and counted as non_ip), and a frame on port 0 that must follow one on port 1
starts a new round. Then holdfast sees the frames in the order they are listed here.
"""
import sys

from scapy.all import (ARP, ICMP, IP, IPv6, TCP, UDP, Ether, Raw, wrpcap)  # noqa: E402

BURST = 32
MAC_IN = "02:00:00:00:00:01"
MAC_OUT = "02:00:00:00:00:02"


class Scenario:
    def __init__(self):
        self.steps = []  # (port, frame bytes, verdict, flow, note)

    def add(self, port, pkt, verdict, flow, note, reply=None):
        """verdict: pass, drop, or reject (dropped, and @reply comes back out @port)."""
        src, dst = (MAC_IN, MAC_OUT) if port == 0 else (MAC_OUT, MAC_IN)
        frame = bytes(Ether(src=src, dst=dst) / pkt) if not isinstance(pkt, bytes) else pkt
        if reply is not None:
            reply = bytes(Ether(src=dst, dst=src) / reply)
        self.steps.append((port, frame, verdict, flow, note, reply))


class Tcp:
    """One TCP connection; tracks both sides' sequence numbers like real hosts."""

    def __init__(self, sc, v6, cli, cport, srv, sport, flow, cli_port=0):
        self.sc, self.v6, self.flow = sc, v6, flow
        self.cli, self.cport, self.srv, self.sport = cli, cport, srv, sport
        self.cp = cli_port          # port the client's frames enter on
        self.cseq, self.sseq = 1000, 500000

    def _ip(self, from_cli):
        s, d = (self.cli, self.srv) if from_cli else (self.srv, self.cli)
        return IPv6(src=s, dst=d) if self.v6 else IP(src=s, dst=d, id=0)

    def seg(self, from_cli, flags, data=b"", verdict="pass", note="", seq=None, ack=None,
            opts=None, adv=True):
        sp, dp = (self.cport, self.sport) if from_cli else (self.sport, self.cport)
        mine = self.cseq if from_cli else self.sseq
        theirs = self.sseq if from_cli else self.cseq
        t = TCP(sport=sp, dport=dp, flags=flags, seq=mine if seq is None else seq,
                ack=(theirs if "A" in flags else 0) if ack is None else ack, window=502,
                options=opts or [])
        pkt = self._ip(from_cli) / t / (Raw(data) if data else b"")
        port = self.cp if from_cli else 1 - self.cp
        self.sc.add(port, pkt, verdict, self.flow, note or flags)
        if adv and verdict == "pass":
            n = len(data) + (1 if ("S" in flags or "F" in flags) else 0)
            if from_cli:
                self.cseq += n
            else:
                self.sseq += n

    def handshake(self):
        o = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
        self.seg(True, "S", opts=o, note="SYN")
        self.seg(False, "SA", opts=o, note="SYN-ACK")
        self.seg(True, "A", note="ACK")


def build():
    sc = Scenario()
    c4, s4 = "198.18.0.1", "198.19.0.10"
    c6, s6 = "2001:db8:18::1", "2001:db8:19::10"

    # HTTP-like IPv4 flow: handshake, data both ways, junk in between, FIN teardown.
    a = Tcp(sc, False, c4, 40001, s4, 80, "tcp4 40001>80")
    a.handshake()
    a.seg(True, "PA", b"GET / HTTP/1.1\r\n\r\n", note="request")
    a.seg(False, "PA", b"x" * 600, note="response")
    a.seg(True, "A", note="ack of response")
    a.seg(True, "PA", b"late", verdict="drop", note="out of window (seq +10M)",
          seq=a.cseq + 10_000_000, adv=False)
    a.seg(True, "SF", verdict="drop", note="SYN+FIN on an established connection", adv=False)
    a.seg(True, "FA", note="client FIN")
    a.seg(False, "FA", note="server FIN")
    a.seg(True, "A", note="last ACK")

    # IPv6 flow on 443 with a reset from the server.
    b = Tcp(sc, True, c6, 40002, s6, 443, "tcp6 40002>443")
    b.handshake()
    b.seg(True, "PA", b"hello", note="data")
    b.seg(False, "R", verdict="drop", note="RST far outside the window",
          seq=b.sseq + 5_000_000, ack=0, adv=False)
    b.seg(False, "PA", b"still here", note="data after a refused RST")
    b.seg(False, "R", note="RST at the expected sequence", ack=0)

    # Connections the rules do not allow, and segments with no connection.
    Tcp(sc, False, c4, 40003, s4, 23, "tcp4 40003>23").seg(True, "S", verdict="drop",
                                                           note="SYN to a port no rule opens")
    Tcp(sc, False, s4, 40004, c4, 22, "tcp4 outside>22", cli_port=1).seg(
        True, "S", verdict="drop", note="SYN from the outside")
    Tcp(sc, False, c4, 40005, s4, 80, "tcp4 40005>80").seg(True, "A", verdict="drop",
                                                           note="ACK with no connection")

    # UDP request/reply, and an unsolicited datagram from outside.
    sc.add(0, IP(src=c4, dst="198.19.0.53", id=0) / UDP(sport=5353, dport=53) / Raw(b"q"),
           "pass", "udp4 5353>53", "query")
    sc.add(1, IP(src="198.19.0.53", dst=c4, id=0) / UDP(sport=53, dport=5353) / Raw(b"r"),
           "pass", "udp4 5353>53", "reply")
    sc.add(1, IP(src="198.19.0.66", dst=c4, id=0) / UDP(sport=53, dport=9999) / Raw(b"u"),
           "drop", "udp4 53>9999", "unsolicited from outside")

    # FTP, active mode: PORT opens exactly the announced data connection.
    f = Tcp(sc, False, c4, 40010, "198.19.0.21", 21, "ftp4 control")
    f.handshake()
    f.seg(False, "PA", b"220 ready\r\n", note="banner")
    f.seg(True, "PA", b"PORT 198,18,0,1,195,80\r\n", note="PORT 198.18.0.1:50000")
    f.seg(False, "PA", b"200 PORT ok\r\n", note="200")
    d = Tcp(sc, False, "198.19.0.21", 20, c4, 50000, "ftp4 active data", cli_port=1)
    d.seg(True, "S", note="data SYN to the announced port")
    d.seg(False, "SA", note="data SYN-ACK")
    Tcp(sc, False, "198.19.0.21", 20, c4, 50001, "ftp4 active other", cli_port=1).seg(
        True, "S", verdict="drop", note="data SYN to a port never announced")
    # Passive mode: the 227 reply opens the server's announced port to this client.
    f.seg(True, "PA", b"PASV\r\n", note="PASV")
    f.seg(False, "PA", b"227 Entering Passive Mode (198,19,0,21,195,90)\r\n",
          note="227 -> 198.19.0.21:50010")
    Tcp(sc, False, c4, 40011, "198.19.0.21", 50010, "ftp4 passive data").seg(
        True, "S", note="data SYN to the passive port")
    Tcp(sc, False, "198.18.0.2", 40012, "198.19.0.21", 50010, "ftp4 passive third").seg(
        True, "S", verdict="drop", note="another host to the passive port")
    # A bounce attempt: the data address is not the control peer's.
    f.seg(True, "PA", b"PORT 198,18,0,99,195,81\r\n", verdict="drop",
          note="PORT naming a third host", adv=False)

    # Reject rules answer: a RST for TCP, an ICMP port unreachable for UDP.
    sc.add(0, IP(src=c4, dst=s4, id=0) / TCP(sport=40030, dport=25, flags="S", seq=1000),
           "reject", "tcp4 40030>25", "SYN to a rejected port",
           reply=IP(src=s4, dst=c4, id=0, ttl=64) /
           TCP(sport=25, dport=40030, flags="RA", seq=0, ack=1001, window=0))
    udp = IP(src=c4, dst=s4, id=0) / UDP(sport=40031, dport=69) / Raw(b"tftp?")
    sc.add(0, udp, "reject", "udp4 40031>69", "datagram to a rejected port",
           reply=IP(src=s4, dst=c4, id=0, ttl=64) / ICMP(type=3, code=3) /
           Raw(bytes(udp)[:28]))

    # Malformed and refused-by-configuration frames.
    good = bytes(Ether(src=MAC_IN, dst=MAC_OUT) / IP(src=c4, dst=s4, id=7) /
                 TCP(sport=40020, dport=80, flags="S"))
    sc.add(0, good[:14 + 20 + 10], "drop", "junk", "TCP header cut short")
    bad_csum = bytearray(good)
    bad_csum[14 + 10] ^= 0xff
    sc.add(0, bytes(bad_csum), "drop", "junk", "bad IPv4 header checksum")
    sc.add(0, IP(src=c4, dst=s4, id=9, frag=100) / Raw(b"z" * 40), "drop", "junk",
           "non-first fragment")
    sc.add(0, IP(src=c4, dst=s4, id=10, options=b"\x01\x01\x01\x00") /
           TCP(sport=40021, dport=80, flags="S"), "drop", "junk", "IPv4 options")
    sc.add(0, ARP(psrc=c4, pdst=s4), "pass", "arp", "ARP request")
    return sc


def layout(steps):
    rounds, cur = [], {0: [], 1: []}
    for i, st in enumerate(steps):
        port = st[0]
        if (port == 0 and cur[1]) or len(cur[port]) == BURST:
            rounds.append(cur)
            cur = {0: [], 1: []}
        cur[port].append(i)
    rounds.append(cur)
    return rounds


def write(sc, outdir):
    files = {0: [], 1: []}
    filler = 0
    for rnd in layout(sc.steps):
        for port in (0, 1):
            for i in rnd[port]:
                files[port].append(sc.steps[i][1])
            for _ in range(BURST - len(rnd[port])):
                filler += 1
                files[port].append(bytes(Ether(src="02:00:00:00:00:09", dst=MAC_OUT,
                                               type=0x88b5) / Raw(filler.to_bytes(4, "big"))))
    wrpcap(f"{outdir}/in0.pcap", [Ether(f) for f in files[0]])
    wrpcap(f"{outdir}/in1.pcap", [Ether(f) for f in files[1]])
    with open(f"{outdir}/expect.tsv", "w") as out:
        for i, (port, frame, verdict, flow, note, reply) in enumerate(sc.steps):
            out.write(f"{i}\t{port}\t{verdict}\t{flow}\t{note}\t{frame.hex()}\t"
                      f"{reply.hex() if reply else ''}\n")
    print(f"{len(sc.steps)} frames, {filler} fillers, {len(files[0])}+{len(files[1])} in pcaps")


def main(outdir):
    write(build(), outdir)


if __name__ == "__main__":
    main(sys.argv[1])
