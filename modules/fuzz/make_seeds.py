#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Seed corpus for fuzz_modules: real handshakes, data, teardown, FTP dialogues and
checkpoint payloads, so the fuzzer starts deep in the state machines instead of having to
guess matching sequence numbers. Usage: make_seeds.py DIR"""
import os
import struct
import sys

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def tcp(direction, seq, ack, flags, win=65535, opts=b"", data=b"", op=0):
    opts += b"\x01" * (-len(opts) % 4)
    hdr = struct.pack(">HHIIBBHHH", 4135, 5376, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (20 + len(opts)) // 4 << 4, flags, win, 0, 0) + opts
    body = bytes([direction << 7]) + hdr + data
    return bytes([op, len(body)]) + body


def udp(direction, data=b"q"):
    body = bytes([direction]) + struct.pack(">HHHH", 4135, 53, 8 + len(data), 0) + data
    return bytes([1, len(body)]) + body


def ftp_session(lines):
    c, s = 1000, 0xFFFFFF00
    out = tcp(0, c, 0, SYN, opts=b"\x03\x03\x07\x04\x02", op=2)
    out += tcp(1, s, c + 1, SYN | ACK, opts=b"\x03\x03\x07\x04\x02", op=2)
    c += 1
    s += 1
    out += tcp(0, c, s, ACK, win=512, op=2)
    for direction, text in lines:
        if direction == 0:
            out += tcp(0, c, s, ACK | PSH, win=512, data=text, op=2)
            c += len(text)
        else:
            out += tcp(1, s, c, ACK | PSH, win=512, data=text, op=2)
            s += len(text)
    out += tcp(0, c, s, FIN | ACK, win=512, op=2)
    out += tcp(1, s, c + 1, FIN | ACK, win=512, op=2)
    out += tcp(0, c + 1, s + 1, ACK, win=512, op=2)
    return out


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    seeds = {
        "ftp_active": ftp_session([(1, b"220 ready\r\n"), (0, b"PORT 192,0,2,1,195,80\r\n"),
                                   (1, b"200 ok\r\n"), (0, b"EPRT |1|192.0.2.1|6000|\r\n")]),
        "ftp_passive": ftp_session([(0, b"PASV\r\n"),
                                    (1, b"227 Entering Passive Mode (198,51,100,2,117,48).\r\n"),
                                    (0, b"EPSV\r\n"), (1, b"229 Extended (|||40000|)\r\n")]),
        "ftp_split": ftp_session([(0, b"PORT 192,0,"), (0, b"2,1,4,1\r\nNO"), (0, b"OP\r\n")]),
        "tcp_rst": tcp(0, 5, 0, SYN) + tcp(1, 9, 6, SYN | ACK) + tcp(0, 6, 10, ACK)
        + tcp(1, 10, 6, RST),
        "tcp_simopen": tcp(0, 5, 0, SYN) + tcp(1, 9, 0, SYN) + tcp(0, 5, 10, SYN | ACK)
        + tcp(1, 9, 6, SYN | ACK) + tcp(0, 6, 10, ACK, data=b"x" * 100),
        "udp": udp(0) + udp(1) + udp(0),
        "decode": bytes([3, 38, 0, 1]) + bytes([3, 1, 0, 0]) + struct.pack(
            "<IIIBBH", 100, 200, 100, 0, 0, 0) + struct.pack("<IIIBBH", 50, 150, 100, 0, 0, 0)
        + bytes([3, 26, 2, 1]) + bytes([3, 0, 0, 0]) + struct.pack("<IIHHQ", 100, 50, 2000, 0,
                                                                   10**9)
        + tcp(0, 100, 50, ACK, data=b"PORT 192,0,2,1,8,8\r\n", op=2),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
