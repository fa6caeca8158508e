# SPDX-License-Identifier: MIT
"""Turns raw benchmark output into the markdown tables of benchmarks/RESULTS.md.

    aggregate.py timings RAW       RAW: lines "<area> <impl> <round> BENCH <case> <value> <unit>"
    aggregate.py callgrind DIR     DIR: callgrind dumps <area>.<case>.<pid>.out.<n> and the
                                   programs' stderr <area>.<case>.err (ITERATIONS lines)

timings prints, per area, one row per case: the median over rounds of coring and of each peer
present (asyncio, uvloop, asio), and how many times better coring is (peer/coring, or coring/peer for ops/s), plus the
spread of coring's rounds. callgrind prints instructions per operation: the Ir total of the dump
named after a case divided by the operations that case says its measured part ran.
"""

import collections
import glob
import os
import re
import statistics
import sys

PEERS = ["asyncio", "uvloop", "asio"]  # columns, in this order, when present
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
        peers = [p for p in PEERS if any(p in v for v in values[area].values())]
        header = ["case", "coring"] + peers + [f"{p}/coring" for p in peers] + ["coring min–max"]
        out.append("| " + " | ".join(header) + " |")
        out.append("| --- |" + " ---: |" * (len(header) - 1))
        for case in order[area]:
            unit = units[area][case]
            med = {impl: statistics.median(v) for impl, v in values[area][case].items()}
            core = med.get("coring")
            cells = [case]
            for impl in ["coring"] + peers:
                cells.append(fmt_value(med[impl], unit) if impl in med else "n/a")
            for impl in peers:
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
    # counts[area][case][impl] = (instructions, operations); cases in the order they ran
    counts = collections.defaultdict(lambda: collections.defaultdict(dict))
    order = collections.defaultdict(list)
    errs = sorted(glob.glob(os.path.join(directory, "*.err")))
    order_file = os.path.join(directory, "order.txt")
    if os.path.exists(order_file):  # the order the cases ran in, which is the programs' order
        with open(order_file) as f:
            errs = [os.path.join(directory, line.strip() + ".err") for line in f if line.strip()]
    for err in errs:
        area, impl, case = os.path.basename(err)[: -len(".err")].split(".", 2)
        iterations = {}
        with open(err, errors="replace") as f:
            for line in f:
                m = re.match(r"ITERATIONS (\S+) (\d+)", line)
                if m:
                    iterations[m.group(1)] = int(m.group(2))
        for dump in sorted(glob.glob(os.path.join(directory, f"{area}.{impl}.{case}.*.out.*"))):
            name, total = read_dump(dump)
            if name is None or total is None or name not in iterations:
                continue
            counts[area][name][impl] = (total, iterations[name])
            if name not in order[area]:
                order[area].append(name)
    out = []
    for area in order:
        peers = [p for p in PEERS if any(p in v for v in counts[area].values())]
        header = ["case", "coring"] + peers + [f"{p}/coring" for p in peers]
        header += ["operations measured (coring)"]
        out.append(f"### {area}\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("| --- |" + " ---: |" * (len(header) - 1))
        for case in order[area]:
            per_op = {impl: total / n for impl, (total, n) in counts[area][case].items()}
            cells = [case]
            for impl in ["coring"] + peers:
                cells.append(fmt_value(per_op[impl], "instr/op") if impl in per_op else "n/a")
            for impl in peers:
                cells.append(fmt_ratio(per_op.get("coring"), per_op.get(impl), "instr/op"))
            n = counts[area][case].get("coring", (0, 0))[1]
            cells.append(f"{n:,}")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
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
