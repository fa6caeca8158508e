# SPDX-License-Identifier: MIT
"""Turns the HTTP server benchmark's raw output (benchmarks/http_server_run.sh) into markdown
tables.

    http_server_aggregate.py tables RAW         RAW: lines "<server> <case> <round> BENCH <metric>
                                                <v> <unit>"; case plaintext, json, plaintext_p16,
                                                json_p16 (16 requests per write) or idle
    http_server_aggregate.py callgrind DIR      DIR: <server>.<path>.out.1 (callgrind dumps) and
                                                requests.txt ("<server> <path> <requests>")
    http_server_aggregate.py targets RAW [DIR]  issue 14's targets for coring

Values are medians over rounds; a round during which the rest of the machine used more than
MAX_OTHERS (10% of a core, or $HTTP_BENCH_MAX_OTHERS) is left out when the same server and case
has an undisturbed one (http_aggregate.py's rule). Ratios are coring ÷ peer.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_aggregate import read  # noqa: E402  (same raw layout: name, row, round, BENCH ...)
from tls_aggregate import fmt, ratio, read_dump  # noqa: E402

SERVERS = ["coring", "nginx", "node", "aiohttp", "fastapi"]
LABELS = {"coring": "coring http::App", "nginx": "nginx (return 200)", "node": "Node http",
          "aiohttp": "aiohttp.web, uvloop", "fastapi": "FastAPI, uvicorn + uvloop + httptools"}
CASES = ["plaintext", "json", "plaintext_p16", "json_p16"]
CASE_LABELS = {"plaintext": "/plaintext", "json": "/json",
               "plaintext_p16": "/plaintext, 16 pipelined", "json_p16": "/json, 16 pipelined"}
COLUMNS = [
    ("req_per_s", "req/s", 1, 0),
    ("latency_p99", "p99 (ms)", 1e-6, 2),
    ("server_cpu_per_req", "server CPU/req (µs)", 1e-3, 2),
    ("server_cpu_util", "server CPU %", 1, 0),
    ("wrk_cpu_util", "wrk CPU %", 1, 0),
    ("others_cpu_util", "others' CPU %", 1, 0),
    ("errors", "errors", 1, 0),
]


def best(raw_path):
    """{(server, case, metric): the best value over every round}: the highest req/s, the lowest
    CPU per request and p99. Interference (other tenants of the machine) only ever lowers the
    throughput and adds CPU time and latency, so on a busy machine each server's best round is
    the estimate least disturbed; comparing two servers' medians compares how disturbed their
    windows happened to be."""
    out = {}
    with open(raw_path) as f:
        for line in f:
            p = line.split()
            if len(p) < 7 or p[3] != "BENCH":
                continue
            key, v = (p[0], p[1], p[4]), float(p[5])
            if p[4] == "req_per_s":
                out[key] = max(out.get(key, v), v)
            elif p[4] in ("server_cpu_per_req", "latency_p99"):
                out[key] = min(out.get(key, v), v)
    return out


def present(med, index, order):
    seen = {k[index] for k in med}
    return [x for x in order if x in seen] + sorted(seen - set(order))


def tables(raw_path):
    med, values, used = read(raw_path)
    servers = present(med, 0, SERVERS)
    cases = [c for c in present(med, 1, CASES) if c != "idle"]
    out = ["### Medians", ""]
    head = ["path", "server"] + [c[1] for c in COLUMNS] + ["rounds used"]
    out.append("| " + " | ".join(head) + " |")
    out.append("| --- | --- |" + " ---: |" * (len(head) - 2))
    for c in cases:
        for s in servers:
            if (s, c, "req_per_s") not in med:
                continue
            line = [CASE_LABELS.get(c, c), LABELS.get(s, s)]
            for metric, _, scale, digits in COLUMNS:
                v = med.get((s, c, metric))
                line.append(fmt(v * scale if v is not None else None, digits))
            line.append("%d of %d" % used[(s, c)])
            out.append("| " + " | ".join(line) + " |")
    out.append("")
    top = best(raw_path)
    out += ["### Best round of each server (highest req/s, lowest CPU/req and p99, any round)", "",
            "| path | server | req/s | p99 (ms) | server CPU/req (µs) |",
            "| --- | --- | ---: | ---: | ---: |"]
    for c in cases:
        for s_ in servers:
            if (s_, c, "req_per_s") in top:
                p99 = top.get((s_, c, "latency_p99"))
                out.append(f"| {CASE_LABELS.get(c, c)} | {LABELS.get(s_, s_)} | "
                           f"{fmt(top[(s_, c, 'req_per_s')], 0)} | "
                           f"{fmt(p99 * 1e-6 if p99 is not None else None, 2)} | "
                           f"{fmt(top[(s_, c, 'server_cpu_per_req')] * 1e-3, 2)} |")
    out.append("")
    peers = [p for p in servers if p != "coring"]
    if "coring" in servers and peers:
        out += ["### coring ÷ peer (medians)", ""]
        head = ["path", "metric"] + [f"÷ {p}" for p in peers]
        out.append("| " + " | ".join(head) + " |")
        out.append("| --- | --- |" + " ---: |" * len(peers))
        top = best(raw_path)
        for c in cases:
            for metric, title, src in [
                    ("req_per_s", "req/s, median (higher is better)", med),
                    ("req_per_s", "req/s, best round", top),
                    ("server_cpu_per_req", "server CPU/req, median (lower is better)", med),
                    ("server_cpu_per_req", "server CPU/req, best round", top),
                    ("latency_p99", "p99 latency, median (lower is better)", med),
                    ("latency_p99", "p99 latency, best round", top)]:
                if ("coring", c, metric) not in src:
                    continue
                line = [CASE_LABELS.get(c, c), title]
                for p in peers:
                    x = ratio(src.get(("coring", c, metric)), src.get((p, c, metric)))
                    line.append(f"{x:.2f}×" if x is not None else "–")
                out.append("| " + " | ".join(line) + " |")
        out.append("")
    spread = []
    for c in cases:
        for metric, title, _, _ in COLUMNS[:3]:
            v = values.get(("coring", c, metric))
            if v and len(v) > 1 and sorted(v)[len(v) // 2]:
                m = sorted(v)[len(v) // 2]
                spread.append(f"{c} {title} {(max(v) - min(v)) / m * 100:.0f}%")
    if spread:
        out.append("coring's spread over rounds ((max − min) ÷ median): " + ", ".join(spread) + ".")
        out.append("")
    idle = [s for s in servers if (s, "idle", "idle_conn_rss") in med]
    if idle:
        out += ["### User-space memory per idle keep-alive connection", "",
                "| server | VmRSS growth per connection (B) | connections still open |",
                "| --- | ---: | ---: |"]
        for s in idle:
            out.append(f"| {LABELS.get(s, s)} | {fmt(med[(s, 'idle', 'idle_conn_rss')], 0)} | "
                       f"{fmt(med.get((s, 'idle', 'idle_conns_open')), 0)} |")
        out.append("")
    print("\n".join(out))


def callgrind_counts(directory):
    """{(server, path): (instructions, requests)}."""
    counts = {}
    if not directory or not os.path.isfile(os.path.join(directory, "requests.txt")):
        return counts
    with open(os.path.join(directory, "requests.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            server, path, requests = parts[0], parts[1], int(parts[2])
            dump = os.path.join(directory, f"{server}.{path}.out.1")
            if not os.path.isfile(dump):
                continue
            total, _ = read_dump(dump)
            if total is not None and requests:
                counts[(server, path)] = (total, requests)
    return counts


def top_coring(path, n=10):
    """The n most expensive (inclusive) functions of coring's own code in callgrind_annotate's
    --inclusive=yes output, leaving out those at or above 99% (the loop's run frames)."""
    rows = []
    if not os.path.isfile(path):
        return rows
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"^\s*([0-9,]+) \(\s*([0-9.]+)%\)\s+(\S.*)$", line)
            if not m or "coring::" not in m.group(3) or float(m.group(2)) >= 99.0:
                continue
            rows.append((int(m.group(1).replace(",", "")), float(m.group(2)), m.group(3)))
            if len(rows) == n:
                break
    return rows


def shorten(name):
    """A function's name without its file, parameters and template arguments:
    "???:coring::http::detail::Connection::run(...) [clone .actor]" -> "Connection::run [actor]"."""
    name = re.sub(r"^[^:]*\?\?\?:|^\S+?:(?=coring::|amain)", "", name)
    clone = re.search(r"\[clone \.(\w+)\]", name)
    depth, cut = 0, []
    for ch in name:  # drop what is inside () and <>
        if ch in "(<":
            depth += 1
        elif ch in ")>":
            depth -= 1
        elif depth == 0:
            cut.append(ch)
    base = "".join(cut).split(" [")[0].strip()
    return base + (f" [{clone.group(1)}]" if clone else "")


def callgrind(directory):
    counts = callgrind_counts(directory)
    out = ["| path | coring instr/req | nginx instr/req | coring ÷ nginx | requests counted |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for p in ["plaintext", "json"]:
        a, b = counts.get(("coring", p)), counts.get(("nginx", p))
        pa = a[0] / a[1] if a else None
        pb = b[0] / b[1] if b else None
        out.append(f"| /{p} | {fmt(pa, 0)} | {fmt(pb, 0)} | "
                   + (f"{pa / pb:.2f}×" if pa and pb else "–")
                   + f" | {a[1] if a else '–'} / {b[1] if b else '–'} |")
    out.append("")
    inc = os.path.join(directory, "coring.plaintext.inclusive.txt")
    rows = top_coring(inc)
    req = counts.get(("coring", "plaintext"), (0, 0))[1]
    if rows:
        out += ["Top 10 inclusive functions of coring's code, /plaintext (instructions per request; "
                "frames at ≥ 99% left out):", "", "| instr/req | % | function |",
                "| ---: | ---: | --- |"]
        for total, pct, name in rows:
            short = shorten(name)
            out.append(f"| {fmt(total / req if req else None, 0)} | {pct:.1f} | "
                       f"`{short.replace('|', '∣')}` |")
        out.append("")
    print("\n".join(out))


def targets(raw_path, directory):
    med, _, _ = read(raw_path)
    out = ["| target | coring ÷ reference | verdict |", "| --- | ---: | --- |"]

    def target(what, r, limit, higher):
        if r is None:
            out.append(f"| {what} | n/a | n/a |")
            return
        met = r >= limit if higher else r <= limit
        by = (r / limit - 1) * 100
        out.append(f"| {what} | {r:.2f}× | " + ("met" if met else "**not met**")
                   + f" ({by:+.0f}% against the limit) |")

    top = best(raw_path)
    for src, kind in [(med, "median"), (top, "best round")]:
        c = lambda case, metric, peer: ratio(src.get(("coring", case, metric)),  # noqa: E731
                                             src.get((peer, case, metric)))
        for case in ["plaintext", "json"]:
            label = f"{CASE_LABELS[case]} ({kind})"
            target(f"{label}: server CPU/req ≤ 0.7× nginx",
                   c(case, "server_cpu_per_req", "nginx"), 0.7, False)
            target(f"{label}: req/s ≥ 1.5× nginx", c(case, "req_per_s", "nginx"), 1.5, True)
            target(f"{label}: server CPU/req ≤ 1/6 FastAPI",
                   c(case, "server_cpu_per_req", "fastapi"), 1 / 6, False)
            target(f"{label}: p99 ≤ nginx's", c(case, "latency_p99", "nginx"), 1.0, False)
    rss = med.get(("coring", "idle", "idle_conn_rss"))
    if rss is not None:
        met = rss <= 4096
        out.append(f"| user-space memory per idle keep-alive connection ≤ 4 KiB | {rss:,.0f} B | "
                   + ("met" if met else "**not met**") + " |")
    instr = callgrind_counts(directory)
    for p in ["plaintext", "json"]:
        if ("coring", p) in instr and ("nginx", p) in instr:
            a = instr[("coring", p)][0] / instr[("coring", p)][1]
            b = instr[("nginx", p)][0] / instr[("nginx", p)][1]
            out.append(f"| /{p}: (callgrind) user-space instructions/req ÷ nginx | {a / b:.2f}× "
                       f"| {a:,.0f} vs {b:,.0f} |")
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
