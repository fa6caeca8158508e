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

import asyncio
import sys

from support import LAPS, Region, main, new_loop

CASES = [
    "lock_uncontended",
    "lock_scoped",
    "queue_nowait",
    "queue_pingpong",
    "semaphore_1000_tasks",
    "event_broadcast_10k",
]

LAPS = 50


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


if __name__ == "__main__":
    sys.exit(main(__doc__, __file__, CASES, run_case))
