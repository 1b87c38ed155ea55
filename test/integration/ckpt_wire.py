# SPDX-License-Identifier: BSD-3-Clause
"""The ckptsrv control protocol (lib/ckpt/proto.h) spoken by hand, for peers that misbehave
on purpose: frames, the HMAC handshake from either side, and region descriptions."""
import hashlib
import hmac
import os
import socket
import struct

VERSION = 3
CHALLENGE, HELLO, WELCOME = 1, 2, 3
CREATE, OPEN, CLOSE, DELETE, LIST, STAT, PERSIST, LEASE, PING, TAKE, BIND, WATCH = range(16, 28)
REPLY = 0x8000
NAME_MAX = 64


def frame(msg_type, body=b"", seq=0, status=0, length=None):
    """u32 body length, u16 type, u16 version, u32 seq, i32 status, then the body."""
    n = len(body) if length is None else length
    return struct.pack("<IHHIi", n, msg_type, VERSION, seq, status) + body


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def recv_frame(conn):
    """(type, seq, status, body) of the next frame; EOFError when the peer hung up."""
    hdr = recv_exact(conn, 16)
    length, msg_type, _, seq, status = struct.unpack("<IHHIi", hdr)
    return msg_type, seq, status, recv_exact(conn, length)


def name(s):
    b = s.encode()
    return b + bytes(NAME_MAX - len(b))


def load_secret(path, tenant):
    for line in open(path):
        tok = line.split("#")[0].split()
        if len(tok) == 2 and tok[0] == tenant:
            return tok[1].encode()
    raise KeyError(tenant)


def client_mac(secret, srv_nonce, cli_nonce, tenant):
    return hmac.new(secret, b"hf-ckpt-auth-v1" + srv_nonce + cli_nonce + tenant.encode(),
                    hashlib.sha256).digest()


def server_mac(secret, cli_nonce, srv_nonce):
    return hmac.new(secret, b"hf-ckpt-srv-v1" + cli_nonce + srv_nonce, hashlib.sha256).digest()


def client_login(conn, secret, tenant):
    """Authenticate as a client; returns the WELCOME body."""
    t, _, _, body = recv_frame(conn)
    assert t == CHALLENGE, t
    cli_nonce = os.urandom(32)
    conn.sendall(frame(HELLO, name(tenant) + cli_nonce +
                       client_mac(secret, body, cli_nonce, tenant)))
    t, _, status, welcome = recv_frame(conn)
    assert t == WELCOME and status == 0, (t, status)
    return welcome


def server_login(conn, secret, endpoint):
    """Authenticate a client as a server that knows the secret; returns the tenant."""
    srv_nonce = os.urandom(32)
    conn.sendall(frame(CHALLENGE, srv_nonce))
    t, _, _, body = recv_frame(conn)
    assert t == HELLO, t
    tenant = body[:NAME_MAX].rstrip(b"\0").decode()
    cli_nonce = body[NAME_MAX:NAME_MAX + 32]
    conn.sendall(frame(WELCOME, server_mac(secret, cli_nonce, srv_nonce) +
                       struct.pack("<II", len(endpoint), 0) + endpoint))  # rxm size: not said
    return tenant


def sockaddr_in(port, addr="127.0.0.1"):
    """A libfabric tcp endpoint name: struct sockaddr_in."""
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + \
        socket.inet_aton(addr) + bytes(8)


def region(rname, owner, mode=1, size=1 << 20, slot_size=256, nslots=None, ring_off=None,
           ring_size=65536, index=0, offset=1 << 20, epoch=0):
    """A region description (208 bytes); geometry as lib/pmu lays it out unless overridden."""
    if mode == 2:
        ring_off = 4096 if ring_off is None else ring_off
        ring_size = size - 4096 if ring_size is None else ring_size
        slot_size, nslots = 0, 0 if nslots is None else nslots
    else:
        ring_off = size - ring_size if ring_off is None else ring_off
        if nslots is None:
            nslots = ((size - 4096 - ring_size) // slot_size) & ~1
    return name(rname) + name(owner) + struct.pack(
        "<IIQQIIQQQQQQ", mode, index, offset, size, slot_size, 0, nslots, ring_off,
        ring_size, 0, 0, epoch)


def opened(region_bytes, handle=1, rkey=7, base=0):
    """Body of a CREATE or OPEN reply."""
    return struct.pack("<Q", handle) + region_bytes + b"\x00" * 8 + struct.pack("<QQ", rkey,
                                                                               base)


def info(region_bytes, head=0, tail=0):
    """A region's info (232 bytes): region, is_pmem, lease_alive, 6 zero bytes, head, tail."""
    return region_bytes + bytes(8) + struct.pack("<QQ", head, tail)


def create_body(rname, mode=1, size=1 << 20, slot_size=256, ring_size=0):
    """Body of a CREATE request: name, u32 mode, u32 slot_size, u64 size, u64 ring_size."""
    return name(rname) + struct.pack("<IIQQ", mode, slot_size, size, ring_size)


def request(conn, msg_type, body=b"", seq=1):
    """Send a request and wait for its reply: (type, seq, status, body)."""
    conn.sendall(frame(msg_type, body, seq=seq))
    return recv_frame(conn)
