# SPDX-License-Identifier: MIT
"""Peer of sync.cpp: the same cases with asyncio, or uvloop with --loop uvloop.

Usage: /usr/bin/python3 sync_asyncio.py [--loop asyncio|uvloop] [--case NAME]... [--list]

Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md), notes on stderr. Each
case does the work its C++ twin does (sync.cpp lists one operation of each), with fewer
operations where Python is slow (the unit is per operation), and times it the same way: after a
warm-up, timed laps of which the fastest is reported (other tenants of a shared machine only
ever add time to a lap; the median lap goes to stderr). Without --case every case runs in a
fresh interpreter of its own.
"""

import argparse
import asyncio
import subprocess
import sys
import time

CASES = [
    "lock_uncontended",
    "lock_scoped",
    "queue_nowait",
    "queue_pingpong",
    "semaphore_1000_tasks",
    "event_broadcast_10k",
]

LAPS = 50


def new_loop(kind):
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


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


# ---- lock_uncontended, lock_scoped ----


async def lock_loop(lock, n):
    for _ in range(n):
        await lock.acquire()
        lock.release()


async def lock_scoped_loop(lock, n):
    for _ in range(n):
        async with lock:
            pass


async def bench_lock(name, loop_fn):
    n = 5000 * LAPS
    lock = asyncio.Lock()
    await loop_fn(lock, n // 10)
    r = Region(name, n)
    for _ in range(LAPS):
        r.lap_start()
        await loop_fn(lock, n // LAPS)
        r.lap_end(n // LAPS)
    r.report_ns_per_op()


async def bench_lock_uncontended():
    await bench_lock("lock_uncontended", lock_loop)


async def bench_lock_scoped():
    await bench_lock("lock_scoped", lock_scoped_loop)


# ---- queue_nowait ----


async def nowait_loop(q, n):
    total = 0
    for i in range(n):
        q.put_nowait(i)
        total += q.get_nowait()
        q.task_done()
    return total


async def bench_queue_nowait():
    n = 5000 * LAPS
    q = asyncio.Queue()
    await nowait_loop(q, n // 10)
    r = Region("queue_nowait", n)
    for _ in range(LAPS):
        r.lap_start()
        await nowait_loop(q, n // LAPS)
        r.lap_end(n // LAPS)
    r.report_ns_per_op()


# ---- queue_pingpong ----


async def producer(q, n):
    for i in range(n):
        await q.put(i)


async def consumer(q, n):
    total = 0
    for _ in range(n):
        total += await q.get()
    return total


async def pingpong(q, n):
    c = asyncio.create_task(consumer(q, n))
    p = asyncio.create_task(producer(q, n))
    await p
    total = await c
    assert total == n * (n - 1) // 2


async def bench_queue_pingpong():
    n = 500 * LAPS
    q = asyncio.Queue(1)
    await pingpong(q, n // 10)
    r = Region("queue_pingpong", n)
    for _ in range(LAPS):
        r.lap_start()
        await pingpong(q, n // LAPS)
        r.lap_end(n // LAPS)
    r.report_ns_per_op()


# ---- semaphore_1000_tasks ----

SEM_TASKS = 1000
SEM_ROUNDS = 10
SEM_LAPS = 10  # a lap is 10,000 acquisitions: about 50 ms in Python


async def sem_worker(sem, done):
    sleep = asyncio.sleep
    for _ in range(SEM_ROUNDS):
        async with sem:
            await sleep(0)
            done[0] += 1


async def sem_round(sem):
    done = [0]
    tasks = [asyncio.create_task(sem_worker(sem, done)) for _ in range(SEM_TASKS)]
    for t in tasks:
        await t
    assert done[0] == SEM_TASKS * SEM_ROUNDS


async def bench_semaphore_1000_tasks():
    per_lap = SEM_TASKS * SEM_ROUNDS
    sem = asyncio.Semaphore(10)
    await sem_round(sem)
    r = Region("semaphore_1000_tasks", per_lap * SEM_LAPS)
    for _ in range(SEM_LAPS):
        r.lap_start()
        await sem_round(sem)
        r.lap_end(per_lap)
    r.report_ns_per_op()


# ---- event_broadcast_10k ----

EVENT_WAITERS = 10_000
EVENT_LAPS = 10


async def event_waiter(ev, left, all_done):
    await ev.wait()
    left[0] -= 1
    if left[0] == 0:
        all_done.set()


async def bench_event_broadcast_10k():
    r = None
    for lap in range(-2, EVENT_LAPS):  # two warm-up rounds
        ev, all_done, left = asyncio.Event(), asyncio.Event(), [EVENT_WAITERS]
        tasks = [
            asyncio.create_task(event_waiter(ev, left, all_done)) for _ in range(EVENT_WAITERS)
        ]
        await asyncio.sleep(0)  # every waiter is now suspended in ev.wait()
        if lap == 0:
            r = Region("event_broadcast_10k", EVENT_WAITERS * EVENT_LAPS)
        if r is not None:
            r.lap_start()
        ev.set()
        await all_done.wait()
        if r is not None:
            r.lap_end(EVENT_WAITERS)
        del tasks
    r.report_ns_per_op()


# ---- driver ----


def run_case(name, kind):
    coro = globals()["bench_" + name]()
    loop = new_loop(kind)
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--case", action="append", choices=CASES, default=[])
    parser.add_argument("--list", action="store_true", help="print the case names")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if not args.case:
        rc = 0
        for name in CASES:
            sys.stdout.flush()
            cmd = [sys.executable, __file__, "--loop", args.loop, "--case", name]
            rc |= subprocess.call(cmd)
        return rc
    for name in args.case:
        run_case(name, args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
