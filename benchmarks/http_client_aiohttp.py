# SPDX-License-Identifier: MIT
"""aiohttp's ClientSession peer of the HTTP client benchmark (benchmarks/http_client_run.sh).

Usage: http_client_aiohttp.py --url URL [--loop uvloop|asyncio] [--http 1.1] [--cafile PEM]
                              [--requests N] [--concurrency C] [--warmup N]
                              [--expect-bytes B] [--server-pid PID]

The same command line and output as the C++ clients (benchmarks/http_bench.hpp): C worker tasks
share one ClientSession (one TCPConnector, limit 100, keep-alive), each looping
`async with session.get(url) as r: await r.read()` until N GETs are done; a warm-up of the same
shape opens the connections first. No Accept-Encoding, no decompression; TLS verified against
--cafile. aiohttp speaks HTTP/1.1 only: `--http 2` is refused (exit status 3).

Prints BENCH req_per_s, client_cpu_per_req (this process's user + system time over the window
÷ N), client_sys_per_req (its system part), client_cpu_util, server_cpu_per_req, server_cpu_util, others_cpu_util.
"""

import argparse
import asyncio
import os
import resource
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

import aiohttp  # noqa: E402


async def run_phase(session, url, total, concurrency, expect_bytes):
    """GETs url until total are done, `concurrency` at a time; returns the failures."""
    state = {"issued": 0, "failed": 0}

    async def worker():
        while state["issued"] < total:
            state["issued"] += 1
            try:
                async with session.get(url) as r:
                    body = await r.read()
                    if r.status != 200 or (expect_bytes >= 0 and len(body) != expect_bytes):
                        raise RuntimeError(f"status {r.status}, {len(body)} B")
            except Exception as e:  # noqa: BLE001 - counted and reported
                state["failed"] += 1
                if state["failed"] <= 5:
                    print(f"http_client_aiohttp: request failed: {e!r}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, total))))
    return state["failed"]


async def amain(args):
    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    connector = aiohttp.TCPConnector(limit=100, ssl=ctx)  # None: the default context (http)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     skip_auto_headers=["Accept-Encoding"]) as session:
        failed = 0
        if args.warmup:
            failed += await run_phase(session, args.url, args.warmup, args.concurrency,
                                      args.expect_bytes)
        server = args.server_pid
        busy0 = support.machine_busy_seconds()
        srv0 = support.process_cpu_seconds(server) if server else -1
        cpu0, sys0 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
        t0 = time.perf_counter()
        failed += await run_phase(session, args.url, args.requests, args.concurrency,
                                  args.expect_bytes)
        t1 = time.perf_counter()
        cpu1, sys1 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
        srv1 = support.process_cpu_seconds(server) if server else -1
        busy1 = support.machine_busy_seconds()
    n, seconds, cpu = args.requests, t1 - t0, cpu1 - cpu0
    print(f"ITERATIONS http_get {n}", file=sys.stderr)
    print(f"BENCH req_per_s {n / seconds:.0f} ops/s")
    print(f"BENCH client_cpu_per_req {cpu * 1e9 / n:.0f} ns/op")
    print(f"BENCH client_sys_per_req {(sys1 - sys0) * 1e9 / n:.0f} ns/op")
    print(f"BENCH client_cpu_util {100 * cpu / seconds:.1f} %")
    srv = 0.0
    if srv0 >= 0 and srv1 >= 0:
        srv = srv1 - srv0
        print(f"BENCH server_cpu_per_req {srv * 1e9 / n:.0f} ns/op")
        print(f"BENCH server_cpu_util {100 * srv / seconds:.1f} %")
    if busy0 >= 0 and busy1 >= 0:
        print(f"BENCH others_cpu_util {100 * max(0.0, busy1 - busy0 - cpu - srv) / seconds:.1f} %")
    print(f"http_client_aiohttp: {args.warmup} + {n} requests, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    p.add_argument("--http", choices=["1.1", "2"], default="1.1")
    p.add_argument("--cafile")
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--expect-bytes", type=int, default=-1)
    p.add_argument("--server-pid", type=int, default=0)
    args = p.parse_args()
    if args.http == "2":
        print("http_client_aiohttp: aiohttp has no HTTP/2 client", file=sys.stderr)
        return 3
    loop = support.new_loop(args.loop)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(amain(args))
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
