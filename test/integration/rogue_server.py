# SPDX-License-Identifier: BSD-3-Clause
"""A server that does not know the secret: it challenges, ignores the client's answer and
welcomes it with a made-up proof. A client must refuse it. Usage: rogue_server.py PORT."""
import os
import socket
import struct
import sys


def frame(msg_type, body, status=0):
    # u32 body length, u16 type, u16 version, u32 seq, i32 status (proto.h)
    return struct.pack("<IHHIi", len(body), msg_type, 1, 0, status) + body


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
conn.sendall(frame(1, os.urandom(32)))  # CHALLENGE
length = struct.unpack("<I", recv_exact(conn, 16)[:4])[0]
recv_exact(conn, length)  # HELLO, not checked: this server has no secret
ep = b"\x02\x00\x30\x39\x7f\x00\x00\x01" + bytes(8)  # a sockaddr_in
conn.sendall(frame(3, os.urandom(32) + struct.pack("<II", len(ep), 0) + ep))  # WELCOME
try:
    conn.recv(1)  # until the client hangs up
except OSError:
    pass
print("client hung up", flush=True)
