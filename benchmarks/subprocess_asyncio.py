# SPDX-License-Identifier: MIT
"""Peer of subprocess.cpp: the same cases with asyncio, or uvloop with --loop uvloop.

Usage: /usr/bin/python3 subprocess_asyncio.py [--loop asyncio|uvloop] [--case NAME]... [--list]

Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md), notes on stderr. Without
--case every case runs in a fresh interpreter of its own. asyncio on Python 3.11 uses its
default child watcher (ThreadedChildWatcher: one thread per child doing waitpid); uvloop uses
libuv's SIGCHLD handling.
"""

import asyncio
import sys
import time

from support import main, new_loop, report_ns_per_op

CASES = ["spawn_wait_seq", "spawn_wait_batch50"]

CHILDREN = 1000
BATCH = 50


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


if __name__ == "__main__":
    sys.exit(main(__doc__, __file__, CASES, run_case))
