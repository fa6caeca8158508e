# SPDX-License-Identifier: MIT
"""asyncpg (with uvloop) peer of bench_pg_client (benchmarks/pg_client.cpp): the issue 15 cases,
same output lines (queries or rows per second, client CPU per query or row).

Usage: /usr/bin/python3 pg_client_asyncpg.py DSN [case...]
  cases: select1 param executemany fetch pool pipeline (asyncpg has no pipeline mode: printed
  as n/a); all by default. CORING_PG_POOL_QUERIES sets the pool case's queries per task (2,000).
"""

import asyncio
import os
import sys
import time

import asyncpg
import uvloop

CASES = ["select1", "param", "executemany", "fetch", "pool", "pipeline"]


def report(name, n, unit, wall, cpu):
    rate, per = n / wall, cpu * 1e6 / n
    print(f"{name:<12} {n:8d} {unit}  {rate:10.0f} {unit}/s  {per:7.2f} us CPU/{unit}", flush=True)


async def timed(coro_fn):
    t0, c0 = time.perf_counter(), time.process_time()
    await coro_fn()
    return time.perf_counter() - t0, time.process_time() - c0


def connect_args(dsn):
    """asyncpg takes URIs only: a libpq key=value DSN (pg_server.sh's Unix socket one) becomes
    keyword arguments."""
    if "://" in dsn:
        return {"dsn": dsn}
    kv = dict(part.split("=", 1) for part in dsn.split())
    if "dbname" in kv:
        kv["database"] = kv.pop("dbname")
    return kv


async def main(dsn, cases):
    args = connect_args(dsn)
    conn = await asyncpg.connect(**args)
    if "select1" in cases:
        n = 20000

        async def body():
            for _ in range(n):
                await conn.fetchval("SELECT 1")

        report("select1", n, "query", *await timed(body))
    if "param" in cases:
        n = 20000

        async def body():
            for i in range(n):
                await conn.fetchval("SELECT $1::int + 1", i)

        report("param", n, "query", *await timed(body))
    if "executemany" in cases:
        n = 50000
        await conn.execute("CREATE TEMP TABLE em (a int, b text)")
        rows = [(i, f"row {i}") for i in range(n)]

        async def body():
            await conn.executemany("INSERT INTO em VALUES ($1, $2)", rows)

        report("executemany", n, "row", *await timed(body))
    if "fetch" in cases:
        n = 100000

        async def body():
            rows = await conn.fetch(
                "SELECT g AS a, 'row ' || g AS b FROM generate_series(1, 100000) g"
            )
            total = 0
            for r in rows:
                total += r[0] + len(r[1])
            assert total != 0

        report("fetch", n, "row", *await timed(body))
    if "pool" in cases:
        tasks, per = 64, int(os.environ.get("CORING_PG_POOL_QUERIES", "2000"))
        pool = await asyncpg.create_pool(**args, min_size=8, max_size=8)

        async def worker():
            for _ in range(per):
                await pool.fetchval("SELECT 1")

        async def body():
            await asyncio.gather(*(worker() for _ in range(tasks)))

        report("pool", tasks * per, "query", *await timed(body))
        await pool.close()
    if "pipeline" in cases:
        print(f"{'pipeline':<12}      n/a (asyncpg has no pipeline mode)", flush=True)
    await conn.close()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    uvloop.install()
    asyncio.run(main(sys.argv[1], sys.argv[2:] or CASES))
