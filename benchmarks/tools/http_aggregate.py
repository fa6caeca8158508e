# SPDX-License-Identifier: MIT
"""Turns the HTTP client benchmark's raw output (benchmarks/http_client_run.sh) into markdown
tables.

    http_aggregate.py tables RAW        RAW: lines "<client> <row> <round> BENCH <metric> <v> <unit>"
    http_aggregate.py callgrind DIR     DIR: dumps <client>.<row>.<pid>.out.<n> (trigger
                                        "Client Request: http_get") and the client's stderr
                                        <client>.<row>.err (ITERATIONS http_get N)
    http_aggregate.py targets RAW [DIR] issue 13's targets for coring

Values are medians over rounds. A round whose window the rest of the machine disturbed (its
others_cpu_util above MAX_OTHERS, 10% of a core, or $HTTP_BENCH_MAX_OTHERS) is left out of the
median when the same client and row has at least one undisturbed round; the "rounds" column
says how many rounds were used of how many ran. Ratios are coring ÷ peer: for costs lower is
better for coring, for throughputs higher is better.
"""

import collections
import glob
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tls_aggregate import fmt, ratio, read_dump  # noqa: E402

MAX_OTHERS = float(os.environ.get("HTTP_BENCH_MAX_OTHERS", "10"))

CLIENTS = ["coring", "floor", "aiohttp"]
LABELS = {"coring": "coring ClientSession", "floor": "floor (curl_multi + epoll, C)",
          "aiohttp": "aiohttp ClientSession, uvloop"}
ROWS = ["http", "https", "h2"]
ROW_LABELS = {"http": "HTTP/1.1", "https": "HTTPS (HTTP/1.1 over TLS)", "h2": "HTTP/2 over TLS"}
# (metric, column title, scale, digits)
COLUMNS = [
    ("req_per_s", "req/s", 1, 0),
    ("client_cpu_per_req", "client CPU/req (µs)", 1e-3, 2),
    ("client_cpu_per_req_best", "best round's (µs)", 1e-3, 2),
    ("client_cpu_util", "client CPU %", 1, 0),
    ("server_cpu_per_req", "nginx CPU/req (µs)", 1e-3, 2),
    ("server_cpu_util", "nginx CPU %", 1, 0),
    ("others_cpu_util", "others' CPU %", 1, 0),
]
# aiohttp has no HTTP/2: its HTTPS (HTTP/1.1 over TLS) row stands in for the h2 row's ratios.
AIOHTTP_STANDIN = {"h2": "https"}


def read(raw_path):
    """({(client, row, metric): median}, {(client, row, metric): [values used]},
    {(client, row): (rounds used, rounds run)})."""
    rounds = collections.defaultdict(dict)  # (client, row, round) -> {metric: value}
    with open(raw_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 7 or parts[3] != "BENCH":
                continue
            rounds[(parts[0], parts[1], parts[2])][parts[4]] = float(parts[5])
    by_cell = collections.defaultdict(list)
    for (client, row, _), metrics in rounds.items():
        by_cell[(client, row)].append(metrics)
    med, values, used = {}, {}, {}
    for (client, row), runs in by_cell.items():
        clean = [m for m in runs if m.get("others_cpu_util", 0) <= MAX_OTHERS]
        chosen = clean or runs
        used[(client, row)] = (len(chosen), len(runs))
        for metric in {k for m in chosen for k in m}:
            v = [m[metric] for m in chosen if metric in m]
            values[(client, row, metric)] = v
            med[(client, row, metric)] = statistics.median(v)
        # The cheapest round: interference (other tenants, the host) only ever adds CPU time.
        if (client, row, "client_cpu_per_req") in values:
            med[(client, row, "client_cpu_per_req_best")] = min(
                values[(client, row, "client_cpu_per_req")])
    return med, values, used


def present(med, index, order):
    seen = {k[index] for k in med}
    return [x for x in order if x in seen] + sorted(seen - set(order))


def peer_value(med, peer, row, metric):
    v = med.get((peer, row, metric))
    if v is None and peer == "aiohttp" and row in AIOHTTP_STANDIN:
        v = med.get((peer, AIOHTTP_STANDIN[row], metric))
    return v


def tables(raw_path):
    med, values, used = read(raw_path)
    clients = present(med, 0, CLIENTS)
    rows = present(med, 1, ROWS)
    out = ["### Medians", ""]
    head = ["row", "client"] + [c[1] for c in COLUMNS] + ["rounds used"]
    out.append("| " + " | ".join(head) + " |")
    out.append("| --- | --- |" + " ---: |" * (len(head) - 2))
    for r in rows:
        for c in clients:
            if (c, r, "req_per_s") not in med:
                continue
            line = [ROW_LABELS.get(r, r), LABELS.get(c, c)]
            for metric, _, scale, digits in COLUMNS:
                v = med.get((c, r, metric))
                line.append(fmt(v * scale if v is not None else None, digits))
            line.append("%d of %d" % used[(c, r)])
            out.append("| " + " | ".join(line) + " |")
    out.append("")
    peers = [p for p in clients if p != "coring"]
    if "coring" in clients and peers:
        out += ["### coring ÷ peer (medians)", ""]
        head = ["row", "metric"] + [f"÷ {p}" for p in peers]
        out.append("| " + " | ".join(head) + " |")
        out.append("| --- | --- |" + " ---: |" * len(peers))
        for r in rows:
            for metric, title, higher in [
                    ("req_per_s", "req/s (higher is better)", True),
                    ("client_cpu_per_req", "client CPU/req (lower is better)", False),
                    ("client_cpu_per_req_best", "best round's client CPU/req", False)]:
                line = [ROW_LABELS.get(r, r), title]
                for p in peers:
                    x = ratio(med.get(("coring", r, metric)), peer_value(med, p, r, metric))
                    star = "*" if p == "aiohttp" and (p, r, metric) not in med and x else ""
                    line.append(f"{x:.2f}×{star}" if x is not None else "–")
                out.append("| " + " | ".join(line) + " |")
        out.append("")
        if "aiohttp" in peers and any(("aiohttp", r, "req_per_s") not in med and
                                      r in AIOHTTP_STANDIN for r in rows):
            out.append("\\* aiohttp has no HTTP/2 client: against its HTTPS (HTTP/1.1 over TLS) "
                       "row.")
            out.append("")
    spread = []
    for r in rows:
        for metric, title, _, _ in COLUMNS[:2]:
            v = values.get(("coring", r, metric))
            if v and len(v) > 1 and statistics.median(v):
                spread.append(f"{r} {title} {(max(v) - min(v)) / statistics.median(v) * 100:.0f}%")
    if spread:
        out.append("coring's spread over rounds ((max − min) ÷ median): " + ", ".join(spread) + ".")
        out.append("")
    print("\n".join(out))


def callgrind_counts(directory):
    """{(client, row): (instructions, requests)}."""
    counts = {}
    if not directory or not os.path.isdir(directory):
        return counts
    for err in glob.glob(os.path.join(directory, "*.err")):
        client, row = os.path.basename(err)[:-len(".err")].split(".", 1)
        requests = None
        with open(err, errors="replace") as f:
            for line in f:
                m = re.match(r"ITERATIONS http_get (\d+)", line)
                if m:
                    requests = int(m.group(1))
        if requests is None:
            continue
        for dump in glob.glob(os.path.join(directory, f"{client}.{row}.*.out.*")):
            if dump.endswith(".txt"):
                continue
            total, trigger = read_dump(dump)
            if trigger and "http_get" in trigger and total is not None:
                counts[(client, row)] = (total, requests)
    return counts


def callgrind(directory):
    counts = callgrind_counts(directory)
    per = {k: t / n for k, (t, n) in counts.items()}
    rows = present(per, 1, ROWS)
    out = ["| row | coring instr/req | floor instr/req | coring ÷ floor | requests counted |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        a, b = per.get(("coring", r)), per.get(("floor", r))
        n = counts.get(("coring", r), counts.get(("floor", r), (0, None)))[1]
        out.append(f"| {ROW_LABELS.get(r, r)} | {fmt(a, 0)} | {fmt(b, 0)} | "
                   + (f"{a / b:.2f}×" if a and b else "–") + f" | {fmt(n, 0)} |")
    print("\n".join(out))


def targets(raw_path, directory):
    med, _, _ = read(raw_path)
    instr = callgrind_counts(directory)
    rows = present(med, 1, ROWS)
    out = ["| row | target | coring ÷ reference | verdict |", "| --- | --- | ---: | --- |"]

    def target(row, what, r, limit, higher, note=""):
        if r is None:
            out.append(f"| {ROW_LABELS.get(row, row)} | {what} | n/a | n/a |")
            return
        met = r >= limit if higher else r <= limit
        by = (r / limit - 1) * 100
        verdict = ("met" if met else "**not met**") + f" ({by:+.0f}% against the limit){note}"
        out.append(f"| {ROW_LABELS.get(row, row)} | {what} | {r:.2f}× | {verdict} |")

    for r in rows:
        c = lambda metric, peer: ratio(med.get(("coring", r, metric)),  # noqa: E731
                                       peer_value(med, peer, r, metric))
        target(r, "client CPU/req ≤ 1.15× floor", c("client_cpu_per_req", "floor"), 1.15, False)
        standin = ("aiohttp", r, "client_cpu_per_req") not in med and r in AIOHTTP_STANDIN
        target(r, "client CPU/req ≤ 0.1× aiohttp", c("client_cpu_per_req", "aiohttp"), 0.1, False,
               "; aiohttp's HTTPS row (it has no HTTP/2)" if standin else "")
        target(r, "req/s ≥ 0.95× floor", c("req_per_s", "floor"), 0.95, True)
        if ("coring", r) in instr and ("floor", r) in instr:
            a = instr[("coring", r)][0] / instr[("coring", r)][1]
            b = instr[("floor", r)][0] / instr[("floor", r)][1]
            out.append(f"| {ROW_LABELS.get(r, r)} | (callgrind) user-space instructions/req "
                       f"÷ floor | {a / b:.2f}× | {a:,.0f} vs {b:,.0f} |")
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
