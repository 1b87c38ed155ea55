# SPDX-License-Identifier: BSD-3-Clause
"""hf-replay scenarios: parse the text format (test/replay/FORMAT.md) and generate every
frame with scapy. Runs only under /usr/bin/python3 (Debian's python3-scapy)."""
import codecs
import ipaddress
import shlex

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Ether, ICMPv6DestUnreach, ICMPv6EchoRequest,
                       ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6PacketTooBig,
                       IPv6, Raw)

MAC_IN = "02:00:00:00:00:01"   # the host on the inside port (0)
MAC_OUT = "02:00:00:00:00:02"  # the host on the outside port (1)
VERDICTS = ("pass", "drop", "reject", "lost")
CRASHES = ("kill-holdfast", "kill-ckptsrv", "failover")
HANDSHAKE_OPTS = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
# The IPv6 hosts neighbour discovery speaks for, inside and outside, and the router that
# sends ICMP errors from beyond each side.
ND_HOSTS = ("2001:db8:18::1", "2001:db8:18::2")
ROUTERS = {4: ("198.18.255.254", "198.19.255.254"),
           6: ("2001:db8:18::fffe", "2001:db8:19::fffe")}


class ScenarioError(Exception):
    pass


class Packet:
    """One frame to inject: @port it enters on, what must become of it, and why."""

    def __init__(self, port, frame, verdict, flow, note, proto=None):
        self.port, self.frame, self.verdict = port, frame, verdict
        self.flow, self.note, self.proto = flow, note, proto
        self.index = -1
        self.line = 0


class Action:
    """A crash point or a server restart between two packets."""

    def __init__(self, kind, args, line):
        self.kind, self.args, self.line = kind, args, line


class Flow:
    def __init__(self, name, proto, cli, cport, srv, sport, outside):
        self.name, self.proto = name, proto
        self.cli, self.cport, self.srv, self.sport = cli, cport, srv, sport
        self.v6 = ipaddress.ip_address(cli).version == 6
        if ipaddress.ip_address(srv).version != (6 if self.v6 else 4):
            raise ScenarioError(f"flow {name}: client and server of different families")
        self.cli_port = 1 if outside else 0
        self.cseq, self.sseq = 1000, 500000

    def label(self):
        fam = "6" if self.v6 else "4"
        return f"{self.name} ({self.proto}{fam} {self.cli}:{self.cport} > {self.srv}:{self.sport})"


def _endpoint(text):
    """'198.18.0.1:80' or '[2001:db8::1]:80' -> (address, port)."""
    if text.startswith("["):
        addr, _, port = text[1:].partition("]:")
    else:
        addr, _, port = text.rpartition(":")
    try:
        ipaddress.ip_address(addr)
        p = int(port)
    except ValueError:
        raise ScenarioError(f"'{text}': expected ADDRESS:PORT or [IPV6]:PORT") from None
    if not 0 <= p <= 65535:
        raise ScenarioError(f"'{text}': port out of range")
    return addr, p


def _num(v, what):
    try:
        return int(v, 0)
    except ValueError:
        raise ScenarioError(f"{what}: '{v}' is not a number") from None


class Scenario:
    def __init__(self):
        self.ckpt = "pmem"
        self.conf = []          # holdfast.conf lines
        self.flows = {}
        self.steps = []         # Packet and Action, in order
        self.name = ""

    def packets(self):
        return [s for s in self.steps if isinstance(s, Packet)]

    def crash_kinds(self):
        return {s.kind for s in self.steps if isinstance(s, Action) and s.kind in CRASHES}

    def _add(self, pkt, lineno):
        pkt.index = len(self.packets())
        pkt.line = lineno
        self.steps.append(pkt)

    def frame(self, port, l3):
        src, dst = (MAC_IN, MAC_OUT) if port == 0 else (MAC_OUT, MAC_IN)
        return bytes(Ether(src=src, dst=dst) / l3)

    # Packets of a flow --------------------------------------------------------------
    def _ip(self, f, from_cli, opt):
        s, d = (f.cli, f.srv) if from_cli else (f.srv, f.cli)
        if f.v6:
            return IPv6(src=s, dst=d, hlim=_num(opt.get("ttl", "64"), "ttl"))
        kw = {"src": s, "dst": d, "id": 0, "ttl": _num(opt.get("ttl", "64"), "ttl")}
        if "ipopt" in opt:
            kw["options"] = b"\x01\x01\x01\x00"  # NOPs and EOL: any option counts
        return IP(**kw)

    def _segment(self, f, from_cli):
        """The IP packet @f's client (or server) would send next, as an ICMP error quotes it:
        no payload, sequence numbers where they stand, nothing moved."""
        sp, dp = (f.cport, f.sport) if from_cli else (f.sport, f.cport)
        if f.proto == "udp":
            l4 = UDP(sport=sp, dport=dp)
        else:
            mine, theirs = (f.cseq, f.sseq) if from_cli else (f.sseq, f.cseq)
            l4 = TCP(sport=sp, dport=dp, flags="A", seq=mine % (1 << 32),
                     ack=theirs % (1 << 32), window=502)
        return self._ip(f, from_cli, {}) / l4

    def icmp(self, toks, lineno):
        """icmp FLOW >|< too-big|unreach|echo [from=ADDR] VERDICT"""
        if len(toks) < 5 or toks[1] not in self.flows or toks[2] not in "<>" or \
                toks[3] not in ("too-big", "unreach", "echo") or toks[-1] not in VERDICTS:
            raise ScenarioError("icmp FLOW >|< too-big|unreach|echo [from=ADDR] VERDICT")
        f, from_cli, kind = self.flows[toks[1]], toks[2] == ">", toks[3]
        opt = dict(t.split("=", 1) for t in toks[4:-1] if "=" in t)
        fam = 6 if f.v6 else 4
        # '>': about what the client sent (or, echo, from the client); '<': the server.
        sender, peer = (f.cli, f.srv) if from_cli else (f.srv, f.cli)
        sender_port = f.cli_port if from_cli else 1 - f.cli_port
        if kind == "echo":
            port = sender_port
            l3 = (IPv6(src=sender, dst=peer) / ICMPv6EchoRequest() if f.v6 else
                  IP(src=sender, dst=peer, id=0) / ICMP(type=8))
        else:
            # An error about the sender's packet comes back to it from beyond the other side.
            port = 1 - sender_port
            src = opt.get("from", ROUTERS[fam][port])
            quoted = bytes(self._segment(f, from_cli))
            if f.v6:
                err = ICMPv6PacketTooBig(mtu=1280) if kind == "too-big" else \
                    ICMPv6DestUnreach(code=4)
                l3 = IPv6(src=src, dst=sender) / err / quoted
            else:
                err = ICMP(type=3, code=4, nexthopmtu=1280) if kind == "too-big" else \
                    ICMP(type=3, code=3)
                l3 = IP(src=src, dst=sender, id=0) / err / quoted[:28 if f.proto == "udp" else 40]
        self._add(Packet(port, self.frame(port, l3), toks[-1], f.label(), f"icmp {kind}"),
                  lineno)

    def nd(self, toks, lineno):
        """nd ns|na|rs|ra [port=0|1] [hlim=N] VERDICT"""
        kinds = {"ns": lambda s, d: IPv6(src=s, dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt=d),
                 "na": lambda s, d: IPv6(src=s, dst=d) / ICMPv6ND_NA(tgt=s, S=1),
                 "rs": lambda s, d: IPv6(src="fe80::1", dst="ff02::2") / ICMPv6ND_RS(),
                 "ra": lambda s, d: IPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA()}
        if len(toks) < 3 or toks[1] not in kinds or toks[-1] not in VERDICTS:
            raise ScenarioError("nd ns|na|rs|ra [port=0|1] [hlim=N] VERDICT")
        opt = dict(t.split("=", 1) for t in toks[2:-1] if "=" in t)
        port = _num(opt.get("port", "0"), "port")
        l3 = kinds[toks[1]](ND_HOSTS[port], ND_HOSTS[1 - port])
        l3.hlim = _num(opt.get("hlim", "255"), "hlim")
        self._add(Packet(port, self.frame(port, l3), toks[-1], "nd", f"nd {toks[1]}"), lineno)

    def packet(self, f, from_cli, kind, opt, verdict, lineno, note):
        port = f.cli_port if from_cli else 1 - f.cli_port
        data = b""
        if "data" in opt:
            data = codecs.decode(opt["data"], "unicode_escape").encode("latin-1")
        if "len" in opt:
            data += b"x" * _num(opt["len"], "len")
        if f.proto == "udp":
            if kind != "udp":
                raise ScenarioError(f"flow {f.name} is UDP: the packet kind is 'udp'")
            sp, dp = (f.cport, f.sport) if from_cli else (f.sport, f.cport)
            l4 = UDP(sport=sp, dport=dp) / Raw(data)
        else:
            flags = kind
            if not flags or any(c not in "FSRPAUEC" for c in flags):
                raise ScenarioError(f"'{kind}': TCP flags are letters of FSRPAUEC, or "
                                    "handshake / close")
            mine = f.cseq if from_cli else f.sseq
            theirs = f.sseq if from_cli else f.cseq
            seq = mine
            if "seq" in opt:
                v = opt["seq"]
                seq = (mine + _num(v, "seq")) if v[0] in "+-" else _num(v, "seq")
            ack = theirs if "A" in flags else 0
            if "ack" in opt:
                v = opt["ack"]
                ack = (theirs + _num(v, "ack")) if v[0] in "+-" else _num(v, "ack")
            tcpopts = []
            for o in filter(None, opt.get("opts", "").split(",")):
                tcpopts.append({"mss": ("MSS", 1460), "sack": ("SAckOK", b""),
                                "ws": ("WScale", 7)}.get(o) or
                               (_ for _ in ()).throw(ScenarioError(f"opts: unknown '{o}'")))
            sp, dp = (f.cport, f.sport) if from_cli else (f.sport, f.cport)
            l4 = TCP(sport=sp, dport=dp, flags=flags, seq=seq % (1 << 32),
                     ack=ack % (1 << 32), window=_num(opt.get("win", "502"), "win"),
                     options=tcpopts) / (Raw(data) if data else b"")
            # What the sender's stack believes it sent: only frames that arrive move it.
            if verdict == "pass" and "seq" not in opt and "noadvance" not in opt:
                n = len(data) + (1 if ("S" in flags or "F" in flags) else 0)
                if from_cli:
                    f.cseq += n
                else:
                    f.sseq += n
        frame = bytearray(self.frame(port, self._ip(f, from_cli, opt) / l4))
        if opt.get("ipcsum") == "bad":
            if f.v6:
                raise ScenarioError("ipcsum=bad: IPv6 has no header checksum")
            frame[14 + 10] ^= 0xFF
        elif "ipcsum" in opt:
            raise ScenarioError("ipcsum: only 'bad'")
        if opt.get("l4csum") == "bad":
            hl = 40 if f.v6 else 20
            off = 14 + hl + (16 if f.proto == "tcp" else 6)
            frame[off] ^= 0xFF
        if "trunc" in opt:
            frame = frame[:_num(opt["trunc"], "trunc")]
        self._add(Packet(port, bytes(frame), verdict, f.label(), note or kind, f.proto),
                  lineno)

    # Parsing --------------------------------------------------------------------------
    def parse_line(self, toks, lineno):
        w = toks[0]
        if w == "name":
            self.name = " ".join(toks[1:])
        elif w == "ckpt":
            if len(toks) != 2 or toks[1] not in ("pmem", "tcp", "shm", "none"):
                raise ScenarioError("ckpt pmem|tcp|shm|none")
            self.ckpt = toks[1]
        elif w == "conf":
            self.conf.append(" ".join(toks[1:]))
        elif w == "flow":
            if len(toks) not in (5, 6) or toks[2] not in ("tcp", "udp"):
                raise ScenarioError("flow NAME tcp|udp CLIENT:PORT SERVER:PORT [outside]")
            if len(toks) == 6 and toks[5] != "outside":
                raise ScenarioError(f"flow: '{toks[5]}' (only 'outside' may follow)")
            if toks[1] in self.flows or toks[1] in ("junk", "crash", "flood", "ckptsrv", "nd",
                                                    "icmp"):
                raise ScenarioError(f"flow {toks[1]}: name taken")
            c, cp = _endpoint(toks[3])
            s, sp = _endpoint(toks[4])
            self.flows[toks[1]] = Flow(toks[1], toks[2], c, cp, s, sp, len(toks) == 6)
        elif w == "crash":
            if len(toks) != 2 or toks[1] not in CRASHES:
                raise ScenarioError("crash " + "|".join(CRASHES))
            self.steps.append(Action(toks[1], [], lineno))
        elif w == "ckptsrv":
            if toks[1:] not in (["restart"], ["restart", "empty"]):
                raise ScenarioError("ckptsrv restart [empty]")
            self.steps.append(Action("ckptsrv-restart", toks[2:], lineno))
        elif w == "junk":
            self.junk(toks, lineno)
        elif w == "nd":
            self.nd(toks, lineno)
        elif w == "icmp":
            self.icmp(toks, lineno)
        elif w == "flood":
            if len(toks) != 4 or toks[1] not in self.flows or toks[3] not in VERDICTS:
                raise ScenarioError("flood FLOW COUNT VERDICT")
            f = self.flows[toks[1]]
            for i in range(_num(toks[2], "count")):
                g = Flow(f.name, "tcp", f.cli, (f.cport + 1 + i) % 65536, f.srv, f.sport,
                         f.cli_port == 1)
                g.name = f"{f.name}+{i + 1}"
                self.packet(g, True, "S", {"opts": "mss,sack,ws"}, toks[3], lineno,
                            f"SYN flood {i + 1}")
        elif w in self.flows:
            self.flow_line(self.flows[w], toks, lineno)
        else:
            raise ScenarioError(f"'{w}': not a keyword or a flow declared above")

    def junk(self, toks, lineno):
        if len(toks) < 3 or toks[-1] not in VERDICTS:
            raise ScenarioError("junk non-ip|arp|runt [port=0|1] VERDICT")
        opt = dict(t.split("=", 1) for t in toks[2:-1] if "=" in t)
        port = _num(opt.get("port", "0"), "port")
        if toks[1] == "non-ip":
            frame = self.frame(port, Raw(b"\x00" * 46))
            frame = frame[:12] + b"\x88\xb5" + frame[14:]
        elif toks[1] == "arp":
            frame = self.frame(port, ARP(psrc="198.18.0.1", pdst="198.18.0.2"))
        elif toks[1] == "runt":
            frame = self.frame(port, Raw(b""))[:12] + b"\x08\x00" + b"\x45\x00"
        else:
            raise ScenarioError(f"junk '{toks[1]}': non-ip, arp or runt")
        self._add(Packet(port, frame, toks[-1], "junk", toks[1]), lineno)

    def flow_line(self, f, toks, lineno):
        if len(toks) >= 2 and toks[1] in ("handshake", "close"):
            toks = [toks[0], ">"] + toks[1:]
        if len(toks) < 3:
            raise ScenarioError("FLOW >|< KIND [OPTION=VALUE ...] VERDICT")
        d, kind = toks[1], toks[2]
        if kind in ("handshake", "close"):
            if len(toks) != 3:
                raise ScenarioError(f"{kind} takes nothing more (it always passes)")
            if f.proto != "tcp":
                raise ScenarioError(f"{kind}: flow {f.name} is not TCP")
            if kind == "handshake":
                o = {"opts": "mss,sack,ws"}
                self.packet(f, True, "S", o, "pass", lineno, "SYN")
                self.packet(f, False, "SA", o, "pass", lineno, "SYN-ACK")
                self.packet(f, True, "A", {}, "pass", lineno, "ACK")
            else:
                first = d != "<"
                self.packet(f, first, "FA", {}, "pass", lineno, "FIN")
                self.packet(f, not first, "FA", {}, "pass", lineno, "FIN")
                self.packet(f, first, "A", {}, "pass", lineno, "last ACK")
            return
        if d not in (">", "<"):
            raise ScenarioError(f"'{d}': direction is > (client to server) or <")
        if len(toks) < 4 or toks[-1] not in VERDICTS:
            raise ScenarioError("the last word is the verdict: " + "|".join(VERDICTS))
        opt, note = {}, ""
        for t in toks[3:-1]:
            k, eq, v = t.partition("=")
            if k == "note":
                note = v
            elif not eq and k in ("ipopt", "noadvance"):
                opt[k] = ""
            elif not eq:
                raise ScenarioError(f"'{t}': expected OPTION=VALUE")
            elif k in ("data", "len", "seq", "ack", "win", "opts", "ipcsum", "l4csum",
                       "trunc", "ttl"):
                opt[k] = v
            else:
                raise ScenarioError(f"unknown option '{k}'")
        self.packet(f, d == ">", kind, opt, toks[-1], lineno, note)


def load(path):
    sc = Scenario()
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                toks = shlex.split(line, comments=True)
                if toks:
                    sc.parse_line(toks, lineno)
            except (ScenarioError, ValueError) as e:
                raise ScenarioError(f"{path}:{lineno}: {e}") from None
    if not sc.packets():
        raise ScenarioError(f"{path}: no packets")
    steps = sc.steps
    for i, s in enumerate(steps):
        if isinstance(s, Packet) and s.verdict == "lost":
            prev = [x for x in steps[:i] if not (isinstance(x, Packet) and x.verdict == "lost")]
            if not prev or not isinstance(prev[-1], Action) or \
                    prev[-1].kind != "kill-holdfast":
                raise ScenarioError(f"{path}:{s.line}: 'lost' packets follow a crash "
                                    "kill-holdfast directly")
    return sc
