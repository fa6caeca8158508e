# SPDX-License-Identifier: MIT
"""Peer of micro.cpp: the same cases with asyncio, or uvloop with --loop uvloop.

Usage: /usr/bin/python3 micro_asyncio.py [--loop asyncio|uvloop] [--case NAME]... [--list]

Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md), notes on stderr. Each
case does the work its C++ twin does, with fewer operations where Python is slow (the unit is
per operation; a lap lasts a few milliseconds, as in C++), and times it the same way: after a
warm-up, LAPS timed laps, of which the fastest is reported (other tenants of a shared machine
only ever add time to a lap; the median lap goes to stderr). Without --case every case runs in
a fresh interpreter of its own, so that peak RSS is per case.
"""

import asyncio
import sys
import time

from support import LAPS, Region, main, new_loop, peak_rss_mib

CASES = [
    "spawn_complete",
    "spawn_complete_batch",
    "sleep0_switch",
    "call_soon",
    "call_soon_batch",
    "sleepers_1m",
]


# ---- spawn_complete, spawn_complete_batch ----


async def trivial():
    return None


async def spawn_one_at_a_time(n):
    create_task = asyncio.create_task
    for _ in range(n):
        t = create_task(trivial())
        await t


async def spawn_batches(batches, batch):
    create_task = asyncio.create_task
    for _ in range(batches):
        tasks = [create_task(trivial()) for _ in range(batch)]
        for t in tasks:
            await t


async def bench_spawn_complete():
    n = 500 * LAPS
    await spawn_one_at_a_time(n // 5)
    r = Region("spawn_complete", n)
    for _ in range(LAPS):
        r.lap_start()
        await spawn_one_at_a_time(n // LAPS)
        r.lap_end(n // LAPS)
    r.report_ns_per_op()


async def bench_spawn_complete_batch():
    batch, batches = 1000, LAPS
    await spawn_batches(batches // 5, batch)
    r = Region("spawn_complete_batch", batches * batch)
    for _ in range(LAPS):
        r.lap_start()
        await spawn_batches(batches // LAPS, batch)
        r.lap_end(batches // LAPS * batch)
    r.report_ns_per_op()


# ---- sleep0_switch ----


async def yielder(n):
    sleep = asyncio.sleep
    for _ in range(n):
        await sleep(0)


async def ping_pong(n):
    a = asyncio.create_task(yielder(n))
    b = asyncio.create_task(yielder(n))
    await a
    await b


async def bench_sleep0_switch():
    n = 1000 * LAPS  # per task: 2n switches in all
    await ping_pong(n // 5)
    r = Region("sleep0_switch", 2 * n)
    for _ in range(LAPS):
        r.lap_start()
        await ping_pong(n // LAPS)
        r.lap_end(2 * n // LAPS)
    r.report_ns_per_op()


# ---- call_soon, call_soon_batch ----


def run_chain(loop, n):
    left = n

    def step():
        nonlocal left
        left -= 1
        if left == 0:
            loop.stop()
            return
        loop.call_soon(step)

    loop.call_soon(step)
    loop.run_forever()


def bench_call_soon(kind):
    n = 2000 * LAPS
    loop = new_loop(kind)
    try:
        run_chain(loop, n // 5)
        r = Region("call_soon", n)
        for _ in range(LAPS):
            r.lap_start()
            run_chain(loop, n // LAPS)
            r.lap_end(n // LAPS)
        r.report_ns_per_op()
    finally:
        loop.close()


async def call_soon_batches(batches, batch, counter):
    loop = asyncio.get_running_loop()
    call_soon = loop.call_soon

    def bump():
        counter[0] += 1

    for _ in range(batches):
        for _ in range(batch):
            call_soon(bump)
        await asyncio.sleep(0)  # runs after the batch: the loop is FIFO


async def bench_call_soon_batch():
    batch, batches = 1000, 4 * LAPS
    counter = [0]
    await call_soon_batches(batches // 5, batch, counter)
    r = Region("call_soon_batch", batches * batch)
    for _ in range(LAPS):
        r.lap_start()
        await call_soon_batches(batches // LAPS, batch, counter)
        r.lap_end(batches // LAPS * batch)
    r.report_ns_per_op()
    assert counter[0] == (batches + batches // 5) * batch


# ---- sleepers_1m ----


async def sleeper():
    await asyncio.sleep(1)


async def bench_sleepers_1m():
    n = 1_000_000
    create_task = asyncio.create_task
    cpu0 = time.process_time()
    t0 = time.perf_counter_ns()
    tasks = [create_task(sleeper()) for _ in range(n)]
    created = time.perf_counter_ns()
    for t in tasks:
        await t
    ns = time.perf_counter_ns() - t0
    cpu = time.process_time() - cpu0
    print(f"ITERATIONS sleepers_1m {n}", file=sys.stderr)
    print(f"sleepers_1m: created in {(created - t0) / 1e9:.3f} s", file=sys.stderr)
    print(f"BENCH sleepers_1m_wall {ns / 1e9:.3f} s")
    print(f"BENCH sleepers_1m_cpu {cpu:.3f} s")
    print(f"BENCH sleepers_1m_peak_rss {peak_rss_mib():.1f} MiB", flush=True)


# ---- driver ----


def run_case(name, kind):
    if name == "call_soon":
        bench_call_soon(kind)
        return
    coro = globals()["bench_" + name]()
    loop = new_loop(kind)
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main(__doc__, __file__, CASES, run_case))
