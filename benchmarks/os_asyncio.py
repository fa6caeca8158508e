# SPDX-License-Identifier: MIT
"""Peer of os.cpp: the same cases with asyncio, or uvloop with --loop uvloop.

Usage: /usr/bin/python3 os_asyncio.py [--loop asyncio|uvloop] [--case NAME]... [--list]

Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md), notes on stderr. Each
case does the work its C++ twin does, with fewer operations where Python is slow (the unit is
per operation). Without --case every case runs in a fresh interpreter of its own.

asyncio has no asynchronous file API (aiofiles is not installed here, and it is a thread pool
underneath), so file_read_seq_* read each 1 MiB chunk with loop.run_in_executor(None,
f.readinto, buf), which is what aiofiles does; file_read_blocking_* is a plain readinto loop.
"""

import asyncio
import os
import sys
import threading
import time

from support import main, new_loop, report_ns_per_op

CASES = [
    "call_soon_threadsafe",
    "to_thread",
    "file_read_seq_warm",
    "file_read_blocking_warm",
    "file_read_seq_cold",
    "file_read_blocking_cold",
    "add_reader_eventfd_ping",
]

CHUNK = 1 << 20
FILE_CHUNKS = 256


# ---- call_soon_threadsafe ----


def bench_call_soon_threadsafe(kind):
    n = 200_000
    loop = new_loop(kind)
    done = loop.create_future()
    count = [0]

    def callback():
        count[0] += 1
        if count[0] == n:
            done.set_result(None)

    def produce():
        post = loop.call_soon_threadsafe
        for _ in range(n):
            post(callback)

    # Warm-up: the self-pipe and the ready queue.
    warm = threading.Thread(target=lambda: [loop.call_soon_threadsafe(lambda: None) for _ in range(1000)])
    warm.start()
    warm.join()
    loop.run_until_complete(asyncio.sleep(0.001))

    t0 = time.perf_counter_ns()
    producer = threading.Thread(target=produce)
    producer.start()
    loop.run_until_complete(done)
    report_ns_per_op("call_soon_threadsafe", time.perf_counter_ns() - t0, n)
    producer.join()
    loop.close()


# ---- to_thread ----


def noop():
    return None


async def to_thread_loop(n):
    for _ in range(n):
        await asyncio.to_thread(noop)


def bench_to_thread(kind):
    n = 20_000
    loop = new_loop(kind)
    loop.run_until_complete(to_thread_loop(1000))
    t0 = time.perf_counter_ns()
    loop.run_until_complete(to_thread_loop(n))
    report_ns_per_op("to_thread", time.perf_counter_ns() - t0, n)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


# ---- add_reader ----


def bench_add_reader_eventfd_ping(kind):
    n = 100_000
    loop = new_loop(kind)
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    state = {"rounds": 0, "target": 0, "done": None}

    def on_readable():
        os.eventfd_read(efd)
        state["rounds"] += 1
        if state["rounds"] == state["target"]:
            state["done"].set_result(None)
        else:
            os.eventfd_write(efd, 1)

    loop.add_reader(efd, on_readable)

    def phase(count):
        state["rounds"] = 0
        state["target"] = count
        state["done"] = loop.create_future()
        os.eventfd_write(efd, 1)
        loop.run_until_complete(state["done"])

    phase(1000)
    t0 = time.perf_counter_ns()
    phase(n)
    report_ns_per_op("add_reader_eventfd_ping", time.perf_counter_ns() - t0, n)
    loop.remove_reader(efd)
    os.close(efd)
    loop.close()


# ---- sequential file reads ----


def make_file():
    """A 256 MiB file of this process in /tmp, fsync'd so its pages can be dropped."""
    path = f"/tmp/coring-bench-os-py-{os.getpid()}"
    with open(path, "wb", buffering=0) as f:
        for i in range(FILE_CHUNKS):
            f.write(bytes([ord("a") + i % 26]) * CHUNK)
        os.fsync(f.fileno())
    return path


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def read_blocking(path):
    buf = bytearray(CHUNK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return total


async def read_executor(path):
    loop = asyncio.get_running_loop()
    buf = bytearray(CHUNK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := await loop.run_in_executor(None, f.readinto, buf):
            total += n
    return total


def bench_file_read(kind, name, use_loop, warm):
    path = make_file()
    try:
        passes = 4 if warm else 1
        if warm:
            read_blocking(path)
        else:
            evict(path)
        loop = new_loop(kind)
        loop.run_until_complete(loop.run_in_executor(None, noop))  # the pool's thread exists
        t0 = time.perf_counter_ns()
        for _ in range(passes):
            total = loop.run_until_complete(read_executor(path)) if use_loop else read_blocking(path)
            assert total == CHUNK * FILE_CHUNKS, total
        report_ns_per_op(name, time.perf_counter_ns() - t0, FILE_CHUNKS * passes)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    finally:
        os.unlink(path)


RUNNERS = {
    "call_soon_threadsafe": bench_call_soon_threadsafe,
    "to_thread": bench_to_thread,
    "file_read_seq_warm": lambda k: bench_file_read(k, "file_read_seq_warm", True, True),
    "file_read_blocking_warm": lambda k: bench_file_read(k, "file_read_blocking_warm", False, True),
    "file_read_seq_cold": lambda k: bench_file_read(k, "file_read_seq_cold", True, False),
    "file_read_blocking_cold": lambda k: bench_file_read(k, "file_read_blocking_cold", False, False),
    "add_reader_eventfd_ping": bench_add_reader_eventfd_ping,
}


def run_case(name, kind):
    RUNNERS[name](kind)


if __name__ == "__main__":
    sys.exit(main(__doc__, __file__, CASES, run_case))
