# SPDX-License-Identifier: MIT
"""Turns raw benchmark output into the markdown tables of benchmarks/RESULTS.md.

    aggregate.py timings RAW       RAW: lines "<area> <impl> <round> BENCH <case> <value> <unit>"
    aggregate.py callgrind DIR     DIR: callgrind dumps <area>.<case>.<pid>.out.<n> and the
                                   programs' stderr <area>.<case>.err (ITERATIONS lines)

timings prints, per area, one row per case: the median over rounds of coring, asyncio and
uvloop, and how many times better coring is (peer/coring, or coring/peer for ops/s), plus the
spread of coring's rounds. callgrind prints instructions per operation: the Ir total of the dump
named after a case divided by the operations that case says its measured part ran.
"""

import collections
import glob
import os
import re
import statistics
import sys

PEERS = ["asyncio", "uvloop"]
HIGHER_IS_BETTER = {"ops/s"}


def fmt_value(v, unit):
    if unit in ("s",):
        return f"{v:.3f} {unit}"
    if unit in ("MiB",):
        return f"{v:.1f} {unit}"
    if unit in ("instr/op",):
        return f"{v:.0f} {unit}"
    if v >= 1000:
        return f"{v:,.0f} {unit}"
    return f"{v:.1f} {unit}"


def fmt_ratio(coring, peer, unit):
    if coring is None or peer is None or coring <= 0 or peer <= 0:
        return "n/a"
    r = coring / peer if unit in HIGHER_IS_BETTER else peer / coring
    return f"{r:.0f}×" if r >= 10 else f"{r:.1f}×"


def timings(raw_path):
    # values[area][case][impl] = [values over rounds]; units[area][case] = unit
    values = collections.defaultdict(
        lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
    units = collections.defaultdict(dict)
    order = collections.defaultdict(list)
    rounds = set()
    with open(raw_path) as raw:
        for line in raw:
            parts = line.split()
            if len(parts) != 7 or parts[3] != "BENCH":
                continue
            area, impl, rnd, _, case, value, unit = parts
            rounds.add(rnd)
            values[area][case][impl].append(float(value))
            units[area][case] = unit
            if case not in order[area]:
                order[area].append(case)
    out = []
    for area in order:
        out.append(f"### {area}\n")
        out.append(f"Median of {len(rounds)} round(s); ratio = how many times better coring is "
                   "(lower time or memory).\n")
        out.append("| case | coring | asyncio | uvloop | asyncio/coring | uvloop/coring "
                   "| coring min–max |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for case in order[area]:
            unit = units[area][case]
            med = {impl: statistics.median(v) for impl, v in values[area][case].items()}
            core = med.get("coring")
            cells = [case]
            for impl in ["coring"] + PEERS:
                cells.append(fmt_value(med[impl], unit) if impl in med else "n/a")
            for impl in PEERS:
                cells.append(fmt_ratio(core, med.get(impl), unit))
            cv = values[area][case].get("coring")
            if cv:
                cells.append(f"{fmt_value(min(cv), unit)} – {fmt_value(max(cv), unit)}")
            else:
                cells.append("n/a")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    print("\n".join(out))


def read_dump(path):
    """Returns (trigger name, total Ir) of one callgrind dump file."""
    name, total = None, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("desc: Trigger: Client Request: "):
                name = line[len("desc: Trigger: Client Request: "):].strip()
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
                if line.startswith("totals:"):
                    break
    return name, total


def callgrind(directory):
    rows = []
    errs = sorted(glob.glob(os.path.join(directory, "*.err")))
    order_file = os.path.join(directory, "order.txt")
    if os.path.exists(order_file):  # the order the cases ran in, which is the programs' order
        with open(order_file) as f:
            errs = [os.path.join(directory, line.strip() + ".err") for line in f if line.strip()]
    for err in errs:
        area, case = os.path.basename(err)[: -len(".err")].split(".", 1)
        iterations = {}
        with open(err, errors="replace") as f:
            for line in f:
                m = re.match(r"ITERATIONS (\S+) (\d+)", line)
                if m:
                    iterations[m.group(1)] = int(m.group(2))
        for dump in sorted(glob.glob(os.path.join(directory, f"{area}.{case}.*.out.*"))):
            name, total = read_dump(dump)
            if name is None or total is None or name not in iterations:
                continue
            rows.append((area, name, total / iterations[name], iterations[name], total))
    out = ["| area | case | instr/op | operations measured | instructions |",
           "| --- | --- | ---: | ---: | ---: |"]
    for area, name, per_op, n, total in rows:
        out.append(f"| {area} | {name} | {per_op:.0f} | {n:,} | {total:,} |")
    print("\n".join(out))


def main(argv):
    if len(argv) != 3 or argv[1] not in ("timings", "callgrind"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "timings":
        timings(argv[2])
    else:
        callgrind(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
