# SPDX-License-Identifier: BSD-3-Clause
"""Messages out of place, sent to ckptsrv before and after authenticating: each must make the
server hang up on that connection (and on nobody else), and a well-behaved client must be
served afterwards. Usage: hostile_client.py PORT SECRET_FILE TENANT. Exit 0 when it held."""
import socket
import struct
import sys

import ckpt_wire as w

port, secret_file, tenant = int(sys.argv[1]), sys.argv[2], sys.argv[3]
secret = w.load_secret(secret_file, tenant)

# The frame that crashed ckptsrv before authentication: a LIST reply, total = n = 1.
LIST_REPLY = w.frame(w.LIST | w.REPLY, struct.pack("<II", 1, 1) + bytes(232))
ATTACKS = [
    # (name, log in first?, bytes to send)
    ("LIST reply instead of HELLO", False, LIST_REPLY),
    ("CHALLENGE instead of HELLO", False, w.frame(w.CHALLENGE, bytes(32))),
    ("a request before authenticating", False, w.frame(w.LIST)),
    ("a HELLO header claiming a 57 KB body", False, w.frame(w.HELLO, length=57352)),
    ("LIST reply as a request", True, LIST_REPLY),
    ("WELCOME as a request", True, w.frame(w.WELCOME, bytes(32) + struct.pack("<II", 16, 0) +
                                          bytes(16))),
    ("CHALLENGE as a request", True, w.frame(w.CHALLENGE, bytes(32))),
    ("HELLO as a request", True, w.frame(w.HELLO, w.name(tenant) + bytes(64))),
    ("a PERSIST header claiming a 57 KB body", True, w.frame(w.PERSIST, length=57352)),
]


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def hung_up(s):
    try:
        while s.recv(4096):
            pass  # a server may answer first; it must close right after
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


failed = 0
for what, login, data in ATTACKS:
    s = connect()
    if login:
        w.client_login(s, secret, tenant)
    else:
        w.recv_frame(s)  # the CHALLENGE
    try:
        s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass
    ok = hung_up(s)
    s.close()
    print(("hung up on: " if ok else "STILL OPEN after: ") + what, flush=True)
    failed += 0 if ok else 1

# A good client on a fresh connection: LIST answers with status 0.
s = connect()
w.client_login(s, secret, tenant)
s.sendall(w.frame(w.LIST, seq=7))
t, seq, status, body = w.recv_frame(s)
s.close()
if t != w.LIST | w.REPLY or seq != 7 or status != 0:
    print("good client not served: type %#x seq %d status %d" % (t, seq, status))
    failed += 1
else:
    print("good client served: %d region(s)" % struct.unpack("<I", body[:4])[0])
sys.exit(1 if failed else 0)
