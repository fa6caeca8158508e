#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Peer of combinators.cpp: gather of 100,000 trivial tasks and a TaskGroup of 100,000 tasks.
# Run with /usr/bin/python3 (Debian's, which has python3-uvloop): --loop asyncio|uvloop.
# Output: BENCH <case> <value> <unit>, the median of --rounds rounds, in ns per task.
import argparse
import asyncio
import statistics
import sys
import time


async def child():
    return 1


async def gather_case(n):
    t0 = time.perf_counter()
    results = await asyncio.gather(*[child() for _ in range(n)])
    t1 = time.perf_counter()
    assert sum(results) == n
    return t1 - t0


async def task_group_case(n):
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(child())
    return time.perf_counter() - t0


CASES = {"gather_100k": gather_case, "task_group_100k": task_group_case}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    p.add_argument("--case", choices=sorted(CASES))
    p.add_argument("--n", type=int, default=100000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--list", action="store_true", help="print the case names and exit")
    args = p.parse_args()
    if args.list:
        print("\n".join(sorted(CASES)))
        return
    factory = None
    if args.loop == "uvloop":
        import uvloop
        factory = uvloop.new_event_loop
    for name, case in CASES.items():
        if args.case and args.case != name:
            continue
        times = []
        with asyncio.Runner(loop_factory=factory) as runner:
            for i in range(args.rounds + 1):
                t = runner.run(case(args.n))
                if i > 0:  # the first round warms up, as in the C++ program
                    times.append(t)
        median = statistics.median(times)
        print(f"BENCH {name} {median * 1e9 / args.n:.1f} ns/op")
        print(f"{args.loop} {name}: n={args.n} median {median * 1e3:.3f} ms, "
              f"min {min(times) * 1e3:.3f} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
