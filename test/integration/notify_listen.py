#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Stand in for systemd's notify socket: bind SOCKET (AF_UNIX datagrams) and append each
message to LOG as one line, its newlines shown as '|'. Runs until killed.

    notify_listen.py SOCKET LOG
"""
import os
import socket
import sys

path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(log, "a", buffering=1) as out:
    print("listening", file=out)
    while True:
        msg = s.recv(4096).decode(errors="replace")
        print(msg.strip().replace("\n", "|"), file=out)
        out.flush()
        os.fsync(out.fileno())
