#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""One FTP download in two steps, for a crash between them: announce the data connection
(PORT, EPRT, PASV or EPSV; EPRT and EPSV over IPv6 too), print 'announced PORT' (the data
port) and wait for a line on stdin, then open the data connection and RETR. Prints the
sha256 of what arrived.

  ftp_step.py SERVER CLIENT_IP PORT|EPRT|PASV|EPSV FILE"""
import ftplib
import hashlib
import socket
import sys

srv, me, mode, name = sys.argv[1:5]
ftp = ftplib.FTP()
ftp.connect(srv, 21, timeout=20)
ftp.login()
ftp.voidcmd("TYPE I")
listener = None
if mode in ("PORT", "EPRT"):
    v6 = ":" in me
    listener = socket.create_server((me, 0), family=socket.AF_INET6 if v6 else socket.AF_INET)
    port = listener.getsockname()[1]
    if mode == "PORT":
        ftp.voidcmd("PORT " + ",".join(me.split(".") + [str(port >> 8), str(port & 255)]))
    else:
        ftp.voidcmd(f"EPRT |{2 if v6 else 1}|{me}|{port}|")
elif mode == "PASV":
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))
else:
    host, port = srv, ftplib.parse229(ftp.sendcmd("EPSV"), srv)[1]
print("announced", port, flush=True)
sys.stdin.readline()   # the test kills and restarts holdfast here
if listener is None:
    data = socket.create_connection((host, port), timeout=20)
    ftp.sendcmd("RETR " + name)
else:
    ftp.sendcmd("RETR " + name)
    listener.settimeout(20)
    data, _ = listener.accept()
h = hashlib.sha256()
while True:
    b = data.recv(1 << 16)
    if not b:
        break
    h.update(b)
data.close()
ftp.voidresp()
ftp.quit()
print(h.hexdigest(), flush=True)
