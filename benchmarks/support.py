# SPDX-License-Identifier: MIT
"""Harness shared by the Python peers (<area>_asyncio.py), as support.hpp is for the C++ ones:
the event loop to measure, timed laps, peak RSS, and the `--loop/--case/--list` driver
(benchmarks/README.md)."""

import argparse
import asyncio
import os
import subprocess
import sys
import time

LAPS = 50


def new_loop(kind):
    """A new event loop of the kind asked for: "asyncio" or "uvloop"."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def peak_rss_mib():
    """The process's peak resident set size in MiB (VmHWM from /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # the value is in kB
    return -1.0


def process_cpu_seconds(pid):
    """CPU seconds (utime + stime, all threads) process pid has used so far, from
    /proc/PID/stat; -1 if unreadable (support.hpp's bench::process_cpu_seconds)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15


def machine_busy_seconds():
    """Busy CPU seconds of all cores (user, nice, system, irq, softirq, steal) from /proc/stat;
    -1 if unreadable (support.hpp's bench::machine_busy_seconds)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return -1.0
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def report_ns_per_op(name, ns, ops):
    """Prints a case measured as one region: `ns` nanoseconds for `ops` operations."""
    print(f"ITERATIONS {name} {ops}", file=sys.stderr)
    print(f"BENCH {name} {ns / ops:.2f} ns/op", flush=True)


class Region:
    """Times laps of a case's measured part; reports the fastest lap in ns per operation."""

    def __init__(self, name, ops):
        self.name, self.ops, self.laps = name, ops, []
        self.t0 = time.perf_counter_ns()

    def lap_start(self):
        self.lap_t0 = time.perf_counter_ns()

    def lap_end(self, ops):
        self.laps.append((time.perf_counter_ns() - self.lap_t0) / ops)

    def report_ns_per_op(self):
        whole = (time.perf_counter_ns() - self.t0) / self.ops
        laps = sorted(self.laps)
        print(f"ITERATIONS {self.name} {self.ops}", file=sys.stderr)
        print(
            f"{self.name}: {len(laps)} laps, fastest {laps[0]:.2f}, "
            f"median {laps[len(laps) // 2]:.2f}, whole region {whole:.2f} ns/op",
            file=sys.stderr,
        )
        print(f"BENCH {self.name} {laps[0]:.2f} ns/op", flush=True)


def main(doc, script, cases, run_case):
    """The driver of a peer: `--list` prints the cases, `--case NAME` (repeatable) runs
    run_case(name, loop_kind) for each, and no --case runs every case in a fresh interpreter of
    its own (so that peak RSS belongs to that case alone). Returns the exit status."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--case", action="append", choices=list(cases), default=[])
    parser.add_argument("--list", action="store_true", help="print the case names")
    args = parser.parse_args()
    if args.list:
        print("\n".join(cases))
        return 0
    if not args.case:
        rc = 0
        for name in cases:
            sys.stdout.flush()
            rc |= subprocess.call([sys.executable, script, "--loop", args.loop, "--case", name])
        return rc
    for name in args.case:
        run_case(name, args.loop)
    return 0
