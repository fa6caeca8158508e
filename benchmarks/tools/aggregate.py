# SPDX-License-Identifier: MIT
"""Turns raw benchmark output into the markdown tables of benchmarks/RESULTS.md.

    aggregate.py timings RAW       RAW: lines "<area> <impl> <round> BENCH <case> <value> <unit>"
    aggregate.py callgrind DIR     DIR: callgrind dumps <area>.<case>.<pid>.out.<n> and the
                                   programs' stderr <area>.<case>.err (ITERATIONS lines)
    aggregate.py echo RAW          the echo benchmark (echo_run.sh), RAW: lines
                                   "<server> <connections> <size> <round> BENCH <metric> <v> <unit>"
    aggregate.py echo-callgrind DIR  DIR: dumps <server>.<pid>.out.<n> (trigger "dump echo") and
                                   the load generator's stderr <server>.err (ITERATIONS echo N)
    aggregate.py echo-targets RAW [DIR]  issue 5's targets for coring at 64 connections, 64 B

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


# ---- the echo benchmark (echo_run.sh) ----

# Servers in table order; the references the ratios are taken against.
ECHO_SERVERS = ["coring", "liburing", "liburing_defer", "asio_uring", "asio_epoll", "asyncio",
                "uvloop", "uvloop_protocol", "asyncio_protocol", "coring_epoll"]
ECHO_REFS = [("liburing", "liburing"), ("asio_uring", "asio io_uring"), ("asyncio", "asyncio")]


def fmt_num(v, digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def fmt_x(r):
    return "n/a" if r is None else f"{r:.2f}×"


def div(a, b):
    return None if a is None or b is None or b == 0 else a / b


def echo_read(raw_path):
    """Returns (values[(connections, size)][server][metric] = [values], rounds)."""
    values = collections.defaultdict(
        lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
    rounds = set()
    with open(raw_path) as raw:
        for line in raw:
            parts = line.split()
            if len(parts) != 8 or parts[4] != "BENCH":
                continue
            server, conns, size, rnd, _, metric, value, _unit = parts
            rounds.add(rnd)
            values[(int(conns), int(size))][server][metric].append(float(value))
    return values, rounds


def echo_medians(cell):
    return {server: {m: statistics.median(v) for m, v in metrics.items()}
            for server, metrics in cell.items()}


def fmt_size(size):
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def echo(raw_path):
    values, rounds = echo_read(raw_path)
    out = [f"Median of {len(rounds)} round(s). Ratios are server ÷ reference: above 1 is more "
           "requests per second, or more CPU per request. CPU µs/req is the server's utime + "
           "stime over the window divided by the requests; server, load generator and others' CPU "
           "(the rest of the machine: other tenants, steal) are percentages of one core; CPU min–max "
           "is the spread of CPU µs/req over the rounds.\n"]
    for conns, size in sorted(values):
        med = echo_medians(values[(conns, size)])
        servers = [s for s in ECHO_SERVERS if s in med] + sorted(set(med) - set(ECHO_SERVERS))
        refs = [(r, label) for r, label in ECHO_REFS if r in med]
        out.append(f"### {conns} connection{'s' if conns > 1 else ''}, {fmt_size(size)}\n")
        header = ["server", "req/s"] + [f"÷ {label}" for _, label in refs]
        header += ["CPU µs/req"] + [f"÷ {label}" for _, label in refs] + ["CPU min–max"]
        header += ["p50 µs", "p99 µs", "p99 ÷ liburing", "server CPU", "loadgen CPU",
                   "others CPU"]
        out.append("| " + " | ".join(header) + " |")
        out.append("| --- |" + " ---: |" * (len(header) - 1))
        for server in servers:
            m = med[server]
            rps = m.get("req_per_s")
            cpu = m.get("server_cpu_per_req")
            cpu_us = None if cpu is None else cpu / 1000
            cells = [server, fmt_num(rps)]
            cells += [fmt_x(div(rps, med[r].get("req_per_s"))) for r, _ in refs]
            cells += [fmt_num(cpu_us, 2)]
            cells += [fmt_x(div(cpu, med[r].get("server_cpu_per_req"))) for r, _ in refs]
            rounds_cpu = values[(conns, size)][server].get("server_cpu_per_req")
            cells += [f"{min(rounds_cpu) / 1000:.2f}–{max(rounds_cpu) / 1000:.2f}"
                      if rounds_cpu else "n/a"]
            p50, p99 = m.get("latency_p50"), m.get("latency_p99")
            cells += [fmt_num(None if p50 is None else p50 / 1000, 1),
                      fmt_num(None if p99 is None else p99 / 1000, 1),
                      fmt_x(div(p99, med.get("liburing", {}).get("latency_p99")))]
            cells += [f"{m['server_cpu_util']:.0f}%" if "server_cpu_util" in m else "n/a",
                      f"{m['loadgen_cpu_util']:.0f}%" if "loadgen_cpu_util" in m else "n/a",
                      f"{m['others_cpu_util']:.0f}%" if "others_cpu_util" in m else "n/a"]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    print("\n".join(out))


def echo_callgrind_counts(directory):
    """Returns {(server, cell): (instructions, requests)} from an echo_run.sh --callgrind
    directory: the load generator's stderr <server>.<cell>.err says how many requests it made
    (ITERATIONS echo N), the dump <server>.<pid>.out.<n> triggered by `--dump=<cell>` how many
    instructions the server ran for them."""
    counts = {}
    order_file = os.path.join(directory, "order.txt")
    servers = []
    if os.path.exists(order_file):
        with open(order_file) as f:
            servers = [line.strip() for line in f if line.strip()]
    for err in glob.glob(os.path.join(directory, "*.err")):
        server = os.path.basename(err).split(".")[0]
        if server not in servers:
            servers.append(server)
    for server in servers:
        requests = {}
        for err in glob.glob(os.path.join(directory, f"{server}.*.err")):
            cell = os.path.basename(err)[len(server) + 1: -len(".err")]
            with open(err, errors="replace") as f:
                for line in f:
                    m = re.match(r"ITERATIONS echo (\d+)", line)
                    if m:
                        requests[cell] = int(m.group(1))
        for dump in sorted(glob.glob(os.path.join(directory, f"{server}.*.out.*"))):
            total, trigger = None, None
            with open(dump, errors="replace") as f:
                for line in f:
                    if line.startswith("desc: Trigger:"):
                        trigger = line.split(":", 2)[2].strip()
                    elif line.startswith("summary:") or line.startswith("totals:"):
                        total = int(line.split()[1])
            cell = trigger[len("dump "):] if trigger and trigger.startswith("dump ") else None
            if cell in requests and total is not None:
                counts[(server, cell)] = (total, requests[cell])
    return counts


CELL_LABELS = {"c64": "64 connections", "c1": "1 connection"}


def echo_callgrind(directory):
    counts = echo_callgrind_counts(directory)
    cells = sorted({c for _, c in counts}, key=lambda c: -int(c[1:]) if c[1:].isdigit() else 0)
    per = {k: t / n for k, (t, n) in counts.items()}
    servers = {s for s, _ in counts}
    servers = [s for s in ECHO_SERVERS if s in servers] + sorted(servers - set(ECHO_SERVERS))
    out = []
    for cell in cells:
        refs = [(r, label) for r, label in ECHO_REFS if (r, cell) in per]
        out.append(f"### {CELL_LABELS.get(cell, cell)}, 64 B\n")
        header = ["server", "instr/req"] + [f"÷ {label}" for _, label in refs]
        header.append("requests counted")
        out.append("| " + " | ".join(header) + " |")
        out.append("| --- |" + " ---: |" * (len(header) - 1))
        for server in servers:
            if (server, cell) not in per:
                continue
            row = [server, fmt_num(per[(server, cell)])]
            row += [fmt_x(div(per[(server, cell)], per[(r, cell)])) for r, _ in refs]
            row.append(fmt_num(counts[(server, cell)][1]))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    print("\n".join(out))


def echo_targets(raw_path, directory):
    values, _ = echo_read(raw_path)
    med = echo_medians(values.get((64, 64), {}))
    core = med.get("coring", {})
    instr = echo_callgrind_counts(directory) if directory else {}

    def metric(server, name):
        return med.get(server, {}).get(name)

    rows = []

    def target(what, ratio, limit, higher_is_better):
        if ratio is None:
            rows.append([what, "n/a", "n/a"])
            return
        met = ratio >= limit if higher_is_better else ratio <= limit
        by = (ratio / limit - 1) * 100
        rows.append([what, f"{ratio:.2f}×",
                     ("met" if met else "**not met**") + f" ({by:+.0f}% against the limit)"])

    for ref, label in [("liburing", "raw liburing"), ("liburing_defer", "raw liburing, DEFER")]:
        target(f"CPU/req ≤ 1.05× {label}",
               div(core.get("server_cpu_per_req"), metric(ref, "server_cpu_per_req")), 1.05, False)
    target("CPU/req ≤ 0.85× asio io_uring",
           div(core.get("server_cpu_per_req"), metric("asio_uring", "server_cpu_per_req")), 0.85,
           False)
    for ref, label in [("liburing", "raw liburing"), ("liburing_defer", "raw liburing, DEFER")]:
        target(f"req/s ≥ 0.95× {label}",
               div(core.get("req_per_s"), metric(ref, "req_per_s")), 0.95, True)
    target("req/s ≥ 1.8× asyncio streams",
           div(core.get("req_per_s"), metric("asyncio", "req_per_s")), 1.8, True)
    for ref, label in [("liburing", "raw liburing"), ("liburing_defer", "raw liburing, DEFER")]:
        target(f"p99 ≤ 1.10× {label}",
               div(core.get("latency_p99"), metric(ref, "latency_p99")), 1.10, False)
    # Issue 16: coring on its epoll backend against Asio's epoll reactor.
    target("epoll: CPU/req ≤ 1.0× asio epoll",
           div(metric("coring_epoll", "server_cpu_per_req"), metric("asio_epoll", "server_cpu_per_req")),
           1.0, False)
    if ("coring", "c64") in instr:
        t, n = instr[("coring", "c64")]
        per = t / n
        rows.append(["instructions/req ≤ 600", f"{per:,.0f}",
                     ("met" if per <= 600 else "**not met**") + f" ({(per / 600 - 1) * 100:+.0f}%)"])
    out = ["| target | coring ÷ reference | verdict |", "| --- | ---: | --- |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    print("\n".join(out))


def main(argv):
    commands = {"timings": 3, "callgrind": 3, "echo": 3, "echo-callgrind": 3, "echo-targets": (3, 4)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) not in (
            commands[argv[1]] if isinstance(commands[argv[1]], tuple) else (commands[argv[1]],)):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "timings":
        timings(argv[2])
    elif argv[1] == "callgrind":
        callgrind(argv[2])
    elif argv[1] == "echo":
        echo(argv[2])
    elif argv[1] == "echo-callgrind":
        echo_callgrind(argv[2])
    else:
        echo_targets(argv[2], argv[3] if len(argv) > 3 and argv[3] else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
