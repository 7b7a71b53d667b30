#!/usr/bin/env python3
"""Inbound subscribe requests per second against a running `utskick serve`.

Each request is a real SMTP transaction to L-subscribe@D from a distinct
address, so each one creates a pending record and queues a confirmation mail,
and each 250 comes after the store's flush. Usage:

    scripts/bench-inbound.py [HOST:PORT] [CONNECTIONS] [MESSAGES]
"""
import socket, sys, threading, time

addr = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2525").rsplit(":", 1)
conns = int(sys.argv[2]) if len(sys.argv) > 2 else 8
total = int(sys.argv[3]) if len(sys.argv) > 3 else 4000
domain = sys.argv[4] if len(sys.argv) > 4 else "localhost"
per = total // conns

def reply(f):
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            return line

def worker(n, out):
    s = socket.create_connection((addr[0], int(addr[1])))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO bench\r\n"); reply(f)
    ok = 0
    for i in range(per):
        who = f"b{n}x{i}.{time.time_ns()}@example.org"
        rcpt = f"lokal-finansiering-subscribe@{domain}"
        msg = (f"From: {who}\r\nTo: {rcpt}\r\nSubject: subscribe\r\n"
               f"Message-ID: <{who}>\r\n\r\nprenumerera\r\n.\r\n")
        # Pipelined: MAIL, RCPT, DATA in one write, then the body.
        s.sendall(f"MAIL FROM:<{who}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        reply(f); reply(f); reply(f)
        s.sendall(msg.encode())
        if reply(f).startswith(b"250"):
            ok += 1
    s.sendall(b"QUIT\r\n"); reply(f)
    out.append(ok)

out = []
threads = [threading.Thread(target=worker, args=(n, out)) for n in range(conns)]
t0 = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
dt = time.perf_counter() - t0
n = sum(out)
print(f"{n} subscribe requests accepted in {dt:.2f} s over {conns} connections: {n/dt:.0f}/s")
