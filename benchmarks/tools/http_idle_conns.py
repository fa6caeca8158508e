# SPDX-License-Identifier: MIT
"""User-space memory per idle keep-alive connection of an HTTP server (http_server_run.sh):
reads the server's VmRSS (/proc/PID/status), opens N connections to HOST:PORT, sends one
keep-alive GET PATH on each and reads its whole answer, waits --settle seconds, reads VmRSS
again, checks how many connections the server still holds open, and prints

    BENCH idle_conn_rss <(VmRSS after - before) / N> B/op
    BENCH idle_conns_open <connections still open> ops

then closes them. Needs RLIMIT_NOFILE above N (http_server_run.sh: ulimit -n 65536).

Usage: http_idle_conns.py --server-pid PID [--connections N] [--path P] [--settle S] HOST PORT
"""

import argparse
import socket
import sys
import time


def vm_rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmRSS")


def one_request(s, host, path):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("closed before the answer")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("answer: " + head.split(b"\r\n")[0].decode(errors="replace"))
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("closed in the body")
        body += chunk


def still_open(s):
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True  # nothing to read, not closed: idle and open
    except OSError:
        return False  # reset


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--path", default="/plaintext")
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("host")
    p.add_argument("port", type=int)
    a = p.parse_args()
    before = vm_rss_bytes(a.server_pid)
    socks = []
    t0 = time.monotonic()
    for i in range(a.connections):
        s = socket.create_connection((a.host, a.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        one_request(s, a.host, a.path)
        socks.append(s)
    opened = time.monotonic() - t0
    time.sleep(a.settle)
    after = vm_rss_bytes(a.server_pid)
    alive = sum(1 for s in socks if still_open(s))
    print(f"http_idle_conns.py: {len(socks)} connections opened in {opened:.1f} s; VmRSS "
          f"{before / 1024:.0f} -> {after / 1024:.0f} KiB; {alive} still open", file=sys.stderr)
    print(f"BENCH idle_conn_rss {(after - before) / a.connections:.0f} B/op")
    print(f"BENCH idle_conns_open {alive} ops", flush=True)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
