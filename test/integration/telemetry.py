#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Query a DPDK telemetry socket: telemetry.py SOCKET COMMAND -> prints the JSON reply."""
import json
import socket
import sys


def query(path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    json.loads(s.recv(16384).decode())  # greeting
    s.send(cmd.encode())
    reply = json.loads(s.recv(65536).decode())
    s.close()
    return reply


if __name__ == "__main__":
    print(json.dumps(query(sys.argv[1], sys.argv[2])))
