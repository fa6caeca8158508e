# SPDX-License-Identifier: MIT
"""One measured window of the HTTP server benchmark (http_server_run.sh): runs Debian's wrk
against URL (pinned with taskset), reads the server's CPU time (/proc/PID/stat) and the whole
machine's busy time (/proc/stat) at the window's edges, and prints

    BENCH req_per_s, latency_p99 (ns), server_cpu_per_req (ns/op), server_cpu_util (%),
    wrk_cpu_util (%), others_cpu_util (% of a core: the rest of the machine), errors

Usage: http_server_wrk.py --server-pid PID [--cpu N] [--duration S] [--connections C]
                          [--script LUA] URL
wrk's raw output goes to stderr.
"""

import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import machine_busy_seconds, process_cpu_seconds  # noqa: E402

UNITS = {"us": 1e3, "ms": 1e6, "s": 1e9}


def parse(out):
    """(requests per second, p99 latency in ns, completed requests, errors) from wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p99 = None
    m = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
    if m:
        p99 = float(m.group(1)) * UNITS[m.group(2)]
    done = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, p99, done, errors


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--cpu", default="0")
    p.add_argument("--duration", type=float, default=3)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--script")
    p.add_argument("url")
    a = p.parse_args()
    cmd = ["taskset", "-c", a.cpu, "wrk", "-t1", f"-c{a.connections}",
           f"-d{a.duration:g}s", "--latency"]
    if a.script:
        cmd += ["-s", a.script]
    cmd.append(a.url)
    srv0, busy0, t0 = process_cpu_seconds(a.server_pid), machine_busy_seconds(), time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # wrk's own CPU time (taskset execs it)
    srv1, busy1, t1 = process_cpu_seconds(a.server_pid), machine_busy_seconds(), time.monotonic()
    sys.stderr.write(out)
    if status != 0 or srv0 < 0 or srv1 < 0:
        print(f"http_server_wrk.py: wrk failed or the server {a.server_pid} is gone",
              file=sys.stderr)
        return 1
    rps, p99, done, errors = parse(out)
    wall = t1 - t0
    srv = srv1 - srv0
    wrk = usage.ru_utime + usage.ru_stime
    others = max(0.0, (busy1 - busy0) - srv - wrk)
    print(f"BENCH req_per_s {rps:.0f} ops/s")
    if p99:  # wrk 4.1 prints a 99th percentile of 0 with 16 pipelined requests per write
        print(f"BENCH latency_p99 {p99:.0f} ns")
    print(f"BENCH server_cpu_per_req {srv / max(done, 1) * 1e9:.1f} ns/op")
    print(f"BENCH server_cpu_util {srv / wall * 100:.1f} %")
    print(f"BENCH wrk_cpu_util {wrk / wall * 100:.1f} %")
    print(f"BENCH others_cpu_util {others / wall * 100:.1f} %")
    print(f"BENCH errors {errors} ops", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
