# SPDX-License-Identifier: MIT
"""Peer of subprocess.cpp: the same cases with asyncio, or uvloop with --loop uvloop.

Usage: /usr/bin/python3 subprocess_asyncio.py [--loop asyncio|uvloop] [--case NAME]... [--list]

Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md), notes on stderr. Without
--case every case runs in a fresh interpreter of its own. asyncio on Python 3.11 uses its
default child watcher (ThreadedChildWatcher: one thread per child doing waitpid); uvloop uses
libuv's SIGCHLD handling.
"""

import argparse
import asyncio
import subprocess
import sys
import time

CASES = ["spawn_wait_seq", "spawn_wait_batch50"]

CHILDREN = 1000
BATCH = 50


def new_loop(kind):
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def report_ns_per_op(name, ns, ops):
    print(f"ITERATIONS {name} {ops}", file=sys.stderr)
    print(f"BENCH {name} {ns / ops:.2f} ns/op", flush=True)


async def run_one():
    p = await asyncio.create_subprocess_exec("/bin/true")
    code = await p.wait()
    if code != 0:
        raise SystemExit(f"true exited with {code}")
    return code


async def spawn_wait_seq():
    t0 = time.perf_counter_ns()
    for _ in range(CHILDREN):
        await run_one()
    report_ns_per_op("spawn_wait_seq", time.perf_counter_ns() - t0, CHILDREN)


async def spawn_wait_batch50():
    t0 = time.perf_counter_ns()
    for _ in range(0, CHILDREN, BATCH):
        await asyncio.gather(*(run_one() for _ in range(BATCH)))
    report_ns_per_op("spawn_wait_batch50", time.perf_counter_ns() - t0, CHILDREN)


def run_case(name, kind):
    loop = new_loop(kind)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(globals()[name]())
    finally:
        loop.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--case", action="append")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if not args.case:
        rc = 0
        for name in CASES:
            sys.stdout.flush()
            rc |= subprocess.call(
                [sys.executable, __file__, "--loop", args.loop, "--case", name])
        return rc
    for name in args.case:
        if name not in CASES:
            print(f"unknown case {name!r}", file=sys.stderr)
            return 2
        run_case(name, args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
