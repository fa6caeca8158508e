# SPDX-License-Identifier: MIT
"""Turns the TLS benchmark's raw output (benchmarks/tls_run.sh) into markdown tables.

    tls_aggregate.py tables RAW       RAW: lines "<server> <mode> <round> BENCH <metric> <v> <unit>"
    tls_aggregate.py callgrind DIR    DIR: dumps <server>.<pid>.out.<n> (trigger "dump <mode>")
                                      and the load generator's stderr <server>.<mode>.err
                                      (ITERATIONS tls_<mode> N)
    tls_aggregate.py targets RAW [DIR]  issue 12's targets for coring

Values are medians over rounds. Ratios are coring ÷ peer for costs (lower is better for
coring) and for throughputs (higher is better for coring).
"""

import collections
import glob
import os
import re
import statistics
import sys

SERVERS = ["coring", "floor", "asio", "asyncio", "uvloop"]
LABELS = {"coring": "coring (examples/tls_echo_server)", "floor": "floor (OpenSSL + epoll, C)",
          "asio": "Asio ssl::stream, io_uring", "asyncio": "asyncio ssl streams",
          "uvloop": "uvloop ssl streams"}
# (mode, metric, column title, scale, digits, higher is better)
COLUMNS = [
    ("echo", "req_per_s", "echo req/s", 1, 0, True),
    ("echo", "server_cpu_per_req", "echo CPU/req (µs)", 1e-3, 2, False),
    ("echo", "latency_p99", "echo p99 (ms)", 1e-6, 2, False),
    ("bulk", "mib_per_s", "bulk MiB/s", 1, 1, True),
    ("bulk", "server_cpu_per_mib", "bulk CPU/MiB (ms)", 1e-6, 2, False),
    ("handshake", "req_per_s", "handshakes/s", 1, 0, True),
    ("handshake", "server_cpu_per_req", "CPU/handshake (µs)", 1e-3, 0, False),
]


def read(raw_path):
    values = collections.defaultdict(list)  # (server, mode, metric) -> [v per round]
    with open(raw_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 7 or parts[3] != "BENCH":
                continue
            values[(parts[0], parts[1], parts[4])].append(float(parts[5]))
    return {k: statistics.median(v) for k, v in values.items()}, values


def servers_in(keys):
    present = {k[0] for k in keys}
    return [s for s in SERVERS if s in present] + sorted(present - set(SERVERS))


def fmt(v, digits):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def tables(raw_path):
    med, values = read(raw_path)
    servers = servers_in(med)
    out = ["### Medians", ""]
    head = ["server"] + [c[2] for c in COLUMNS] + ["others' CPU %"]
    out.append("| " + " | ".join(head) + " |")
    out.append("| --- |" + " ---: |" * (len(head) - 1))
    for s in servers:
        row = [LABELS.get(s, s)]
        for mode, metric, _, scale, digits, _ in COLUMNS:
            v = med.get((s, mode, metric))
            row.append(fmt(v * scale if v is not None else None, digits))
        others = [med[k] for k in med if k[0] == s and k[2] == "others_cpu_util"]
        row.append(fmt(statistics.median(others), 0) if others else "–")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Server CPU utilisation (% of its core, medians): " + "; ".join(
        f"{s} " + "/".join(fmt(med.get((s, m, "server_cpu_util")), 0) for m in
                           ("echo", "bulk", "handshake")) for s in servers) +
        " (echo/bulk/handshake); load generator: " + "; ".join(
        f"{s} " + "/".join(fmt(med.get((s, m, "loadgen_cpu_util")), 0) for m in
                           ("echo", "bulk", "handshake")) for s in servers) + ".")
    out.append("")
    out.append("### coring ÷ peer (medians)")
    out.append("")
    peers = [p for p in servers if p != "coring"]
    head = ["metric"] + [f"÷ {p}" for p in peers]
    out.append("| " + " | ".join(head) + " |")
    out.append("| --- |" + " ---: |" * len(peers))
    for mode, metric, title, _, _, higher in COLUMNS:
        row = [title + (" (higher is better)" if higher else " (lower is better)")]
        for p in peers:
            r = ratio(med.get(("coring", mode, metric)), med.get((p, mode, metric)))
            row.append(f"{r:.2f}×" if r is not None else "–")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    spread = []
    for mode, metric, title, _, _, _ in COLUMNS:
        v = values.get(("coring", mode, metric))
        if v and len(v) > 1 and statistics.median(v):
            spread.append(f"{title} {(max(v) - min(v)) / statistics.median(v) * 100:.0f}%")
    if spread:
        out.append("coring's spread over rounds ((max − min) ÷ median): " + ", ".join(spread) + ".")
        out.append("")
    print("\n".join(out))


def read_dump(path):
    """A callgrind dump's (total instructions, trigger); either None when absent."""
    total, trigger = None, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("desc: Trigger:"):
                trigger = line.split(":", 2)[2].strip()
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    return total, trigger


def callgrind_counts(directory):
    """{(server, mode): (instructions, requests)}."""
    counts = {}
    if not directory or not os.path.isdir(directory):
        return counts
    for err in glob.glob(os.path.join(directory, "*.err")):
        server, mode = os.path.basename(err)[:-len(".err")].split(".", 1)
        requests = None
        with open(err, errors="replace") as f:
            for line in f:
                m = re.match(r"ITERATIONS tls_(\w+) (\d+)", line)
                if m:
                    requests = int(m.group(2))
        if requests is None:
            continue
        for dump in glob.glob(os.path.join(directory, f"{server}.*.out.*")):
            if dump.endswith(".txt"):
                continue
            total, trigger = read_dump(dump)
            if trigger == f"dump {mode}" and total is not None:
                counts[(server, mode)] = (total, requests)
    return counts


def callgrind(directory):
    counts = callgrind_counts(directory)
    per = {k: t / n for k, (t, n) in counts.items()}
    servers = servers_in(per)
    out = []
    for mode, title in [("echo", "instructions per echo request (64 connections, 64 B)"),
                        ("handshake", "instructions per handshake (+ one 64 B request)")]:
        refs = [r for r in ("floor", "asio", "asyncio", "uvloop") if (r, mode) in per]
        out.append(f"{title}:")
        out.append("")
        head = ["server", "instr"] + [f"÷ {r}" for r in refs]
        head.append("counted")
        out.append("| " + " | ".join(head) + " |")
        out.append("| --- |" + " ---: |" * (len(head) - 1))
        for s in servers:
            if (s, mode) not in per:
                continue
            row = [s, fmt(per[(s, mode)], 0)]
            row += [f"{per[(s, mode)] / per[(r, mode)]:.2f}×" for r in refs]
            row.append(fmt(counts[(s, mode)][1], 0))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    print("\n".join(out))


def targets(raw_path, directory):
    med, _ = read(raw_path)
    instr = callgrind_counts(directory)
    rows = []

    def target(what, r, limit, higher):
        if r is None:
            rows.append([what, "n/a", "n/a"])
            return
        met = r >= limit if higher else r <= limit
        by = (r / limit - 1) * 100
        rows.append([what, f"{r:.2f}×",
                     ("met" if met else "**not met**") + f" ({by:+.0f}% against the limit)"])

    def c(mode, metric, peer):
        return ratio(med.get(("coring", mode, metric)), med.get((peer, mode, metric)))

    target("echo server CPU/req ≤ 1.15× floor", c("echo", "server_cpu_per_req", "floor"), 1.15,
           False)
    target("echo server CPU/req ≤ 0.8× Asio", c("echo", "server_cpu_per_req", "asio"), 0.8, False)
    target("bulk MiB/s ≥ 0.95× floor", c("bulk", "mib_per_s", "floor"), 0.95, True)
    target("handshakes/s ≥ 0.9× floor", c("handshake", "req_per_s", "floor"), 0.9, True)
    for peer in ("asyncio", "uvloop"):
        for mode, metric, title, higher in [
                ("echo", "req_per_s", "echo req/s", True),
                ("echo", "server_cpu_per_req", "echo CPU/req", False),
                ("bulk", "mib_per_s", "bulk MiB/s", True),
                ("bulk", "server_cpu_per_mib", "bulk CPU/MiB", False),
                ("handshake", "req_per_s", "handshakes/s", True),
                ("handshake", "server_cpu_per_req", "CPU/handshake", False)]:
            r = c(mode, metric, peer)
            # "3× better": throughput ≥ 3× the peer's, cost ≤ 1/3 of the peer's.
            target(f"{title} 3× better than {peer}" + (" (≥ 3×)" if higher else " (≤ 0.33×)"),
                   r, 3.0 if higher else 1 / 3, higher)
    for mode, label in [("echo", "per echo request"), ("handshake", "per handshake")]:
        for peer in ("floor", "asio"):
            if ("coring", mode) in instr and (peer, mode) in instr:
                a = instr[("coring", mode)][0] / instr[("coring", mode)][1]
                b = instr[(peer, mode)][0] / instr[(peer, mode)][1]
                rows.append([f"(callgrind) instructions {label} ÷ {peer}", f"{a / b:.2f}×",
                             f"{a:,.0f} vs {b:,.0f}"])
    out = ["| target | coring ÷ reference | verdict |", "| --- | ---: | --- |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    print("\n".join(out))


def main(argv):
    if len(argv) < 3 or argv[1] not in ("tables", "callgrind", "targets"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "tables":
        tables(argv[2])
    elif argv[1] == "callgrind":
        callgrind(argv[2])
    else:
        targets(argv[2], argv[3] if len(argv) > 3 and argv[3] else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
