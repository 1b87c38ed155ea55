# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed corpus of fuzz_proto: one well-formed frame of every layout, each behind the
byte that picks its receiver (low 3 bits: hello, request, challenge, welcome, reply, any;
high 4 bits: LIST room). Usage: seeds_proto.py DIR"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import ckpt_wire as w  # noqa: E402

HELLO_RX, REQUEST_RX, CHALLENGE_RX, WELCOME_RX, REPLY_RX = range(5)
reg = w.region("fw1.0", "holdfast", epoch=3)
app = w.region("fw1.0.log", "holdfast", mode=2, ring_size=None)
seeds = {
    "challenge": (CHALLENGE_RX, w.frame(w.CHALLENGE, bytes(range(32)))),
    "hello": (HELLO_RX, w.frame(w.HELLO, w.name("holdfast") + bytes(64))),
    "welcome": (WELCOME_RX, w.frame(w.WELCOME, bytes(32) + struct.pack("<II", 16, 0) +
                                    w.sockaddr_in(7411))),
    "welcome-refused": (WELCOME_RX, w.frame(w.WELCOME, status=-13)),
    "create": (REQUEST_RX, w.frame(w.CREATE, w.name("fw1.0") + struct.pack(
        "<IIQQ", 1, 128, 1 << 20, 65536), seq=1)),
    "open": (REQUEST_RX, w.frame(w.OPEN, w.name("fw1.0"), seq=2)),
    "close": (REQUEST_RX, w.frame(w.CLOSE, struct.pack("<Q", 1), seq=3)),
    "list": (REQUEST_RX, w.frame(w.LIST, seq=4)),
    "persist": (REQUEST_RX, w.frame(w.PERSIST, struct.pack("<QQQQ", 1, 4096, 512, 8192), seq=5)),
    "lease": (REQUEST_RX, w.frame(w.LEASE, struct.pack("<QII", 1, 500, 0), seq=6)),
    "open-reply": (REPLY_RX, w.frame(w.OPEN | w.REPLY, w.opened(reg), seq=2)),
    "create-reply-append": (REPLY_RX, w.frame(w.CREATE | w.REPLY, w.opened(app), seq=1)),
    "stat-reply": (REPLY_RX, w.frame(w.STAT | w.REPLY, w.info(reg, head=640, tail=128), seq=7)),
    "list-reply": (REPLY_RX | 0x20, w.frame(w.LIST | w.REPLY, struct.pack("<II", 2, 2) +
                                            w.info(reg) + w.info(app), seq=4)),
    "list-reply-no-room": (REPLY_RX, w.frame(w.LIST | w.REPLY, struct.pack("<II", 1, 1) +
                                             w.info(reg), seq=4)),
    "error-reply": (REPLY_RX, w.frame(w.OPEN | w.REPLY, seq=2, status=-2)),
    "list-reply-as-hello": (HELLO_RX, w.frame(w.LIST | w.REPLY, struct.pack("<II", 1, 1) +
                                              bytes(232))),
    "take": (REQUEST_RX, w.frame(w.TAKE, struct.pack("<QQ", 1, 3), seq=8)),
    "bind": (REQUEST_RX, w.frame(w.BIND, w.name("fw1.0") + struct.pack("<Q", 4), seq=9)),
    "watch": (REQUEST_RX, w.frame(w.WATCH, struct.pack("<QII", 1, 250, 0), seq=10)),
    "take-reply": (REPLY_RX, w.frame(w.TAKE | w.REPLY, struct.pack("<Q", 4), seq=8)),
    "take-reply-stale": (REPLY_RX, w.frame(w.TAKE | w.REPLY, seq=8, status=-116)),
    "bind-reply": (REPLY_RX, w.frame(w.BIND | w.REPLY, seq=9)),
    "watch-reply-timeout": (REPLY_RX, w.frame(w.WATCH | w.REPLY, seq=10, status=-110)),
}
os.makedirs(sys.argv[1], exist_ok=True)
for n, (rx, f) in seeds.items():
    with open(os.path.join(sys.argv[1], n), "wb") as out:
        out.write(bytes([rx]) + f)
