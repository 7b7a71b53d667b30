#!/usr/bin/env python3
"""Waits until an SMTP server on HOST:PORT sends its 220 greeting; prints the
seconds since T0 (a Unix time in ns from `date +%s%N`). Exits 1 after 600 s."""
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
t0 = int(sys.argv[2]) / 1e9
while time.time() - t0 < 600:
    try:
        s = socket.create_connection((host, int(port)), timeout=5)
        if s.recv(512).startswith(b"220"):
            print(f"{time.time() - t0:.3f}")
            s.sendall(b"QUIT\r\n"); s.close()
            sys.exit(0)
        s.close()
    except OSError:
        pass
    time.sleep(0.002)
sys.exit(1)
