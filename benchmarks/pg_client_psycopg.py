# SPDX-License-Identifier: MIT
"""psycopg 3 (AsyncConnection, Debian's pure-Python build on libpq) peer of bench_pg_client
(benchmarks/pg_client.cpp): the issue 15 cases, same output lines (queries or rows per second,
client CPU per query or row).

Usage: /usr/bin/python3 pg_client_psycopg.py DSN [case...]
  cases: select1 param executemany fetch pool pipeline; all by default. The pool case is 64 tasks
  over 8 connections handed out by an asyncio.Queue (psycopg_pool is not installed);
  CORING_PG_POOL_QUERIES sets its queries per task (2,000). Runs on the default asyncio loop.
"""

import asyncio
import os
import sys
import time

import psycopg

CASES = ["select1", "param", "executemany", "fetch", "pool", "pipeline"]


def report(name, n, unit, wall, cpu):
    rate, per = n / wall, cpu * 1e6 / n
    print(f"{name:<12} {n:8d} {unit}  {rate:10.0f} {unit}/s  {per:7.2f} us CPU/{unit}", flush=True)


async def timed(coro_fn):
    t0, c0 = time.perf_counter(), time.process_time()
    await coro_fn()
    return time.perf_counter() - t0, time.process_time() - c0


async def main(dsn, cases):
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    cur = conn.cursor()
    if "select1" in cases:
        n = 20000

        async def body():
            for _ in range(n):
                await cur.execute("SELECT 1")
                await cur.fetchone()

        report("select1", n, "query", *await timed(body))
    if "param" in cases:
        n = 20000

        async def body():
            for i in range(n):
                await cur.execute("SELECT %s::int + 1", (i,))
                await cur.fetchone()

        report("param", n, "query", *await timed(body))
    if "executemany" in cases:
        n = 50000
        await cur.execute("CREATE TEMP TABLE em (a int, b text)")
        rows = [(i, f"row {i}") for i in range(n)]

        async def body():
            await cur.executemany("INSERT INTO em VALUES (%s, %s)", rows)  # pipeline mode

        report("executemany", n, "row", *await timed(body))
    if "fetch" in cases:
        n = 100000

        async def body():
            await cur.execute("SELECT g AS a, 'row ' || g AS b FROM generate_series(1, 100000) g")
            rows = await cur.fetchall()
            total = 0
            for r in rows:
                total += r[0] + len(r[1])
            assert total != 0

        report("fetch", n, "row", *await timed(body))
    if "pool" in cases:
        tasks, per = 64, int(os.environ.get("CORING_PG_POOL_QUERIES", "2000"))
        idle = asyncio.Queue()
        conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(8)]
        for c in conns:
            idle.put_nowait(c)

        async def worker():
            for _ in range(per):
                c = await idle.get()
                try:
                    cu = await c.execute("SELECT 1")
                    await cu.fetchone()
                finally:
                    idle.put_nowait(c)

        async def body():
            await asyncio.gather(*(worker() for _ in range(tasks)))

        report("pool", tasks * per, "query", *await timed(body))
        for c in conns:
            await c.close()
    if "pipeline" in cases:
        batches, per = 100, 256  # a quarter of bench_pg_client's 400: the rate is per query

        async def body():
            for _ in range(batches):
                async with conn.pipeline():
                    curs = []
                    for _ in range(per):
                        c = conn.cursor()
                        await c.execute("SELECT 1")
                        curs.append(c)
                for c in curs:
                    await c.fetchone()

        report("pipeline", batches * per, "query", *await timed(body))
    await conn.close()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], sys.argv[2:] or CASES))
