#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Draws the concurrency models comparison (bench_models --csv, benchmarks/models.cpp) as PNGs for
# docs/comparisons.md: wall time, memory and CPU time per model (threads, pools, processes, coring).
#
# Usage: /usr/bin/python3 benchmarks/plot_models.py RESULTS.csv [--out docs/img]
# Needs matplotlib (Debian: python3-matplotlib; scripts/deps.sh bench installs it).
"""Plots bench_models' per-run CSV rows (medians over the rounds) into PNG files."""

import argparse
import csv
import os
import statistics
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def load(path):
    """Returns {scenario: OrderedDict{model: {column: median}}} and the raw rows."""
    rows = list(csv.DictReader(open(path, newline="")))
    if not rows:
        sys.exit(f"plot_models: no rows in {path}")
    grouped = OrderedDict()
    for row in rows:
        grouped.setdefault(row["scenario"], OrderedDict()).setdefault(row["model"], []).append(row)
    medians = OrderedDict()
    for scenario, models in grouped.items():
        medians[scenario] = OrderedDict()
        for model, runs in models.items():
            m = {}
            for column in runs[0]:
                if column in ("scenario", "model"):
                    continue
                m[column] = statistics.median(float(r[column]) for r in runs)
            m["rounds"] = len(runs)
            medians[scenario][model] = m
    return medians


COLOURS = {"thread": "#d62728", "process": "#9467bd", "coring": "#2ca02c"}


def colour(model):
    if model.startswith("coring"):
        return COLOURS["coring"]
    if model.startswith("process"):
        return COLOURS["process"]
    return COLOURS["thread"] if model.startswith("thread_per") else "#ff7f0e"


def label(model, m, projected):
    text = model.replace("_", " ")
    if projected and m.get("capped"):
        text += "\n(projected)"
    return text


def bars(ax, scenario_models, value, title, unit, log=False, annotate="{:.2f}", projected=False):
    names = list(scenario_models)
    values = [value(scenario_models[n]) for n in names]
    ax.bar(range(len(names)), values, color=[colour(n) for n in names])
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([label(n, scenario_models[n], projected) for n in names], rotation=30,
                       ha="right",
                       fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.15)
    for i, v in enumerate(values):
        ax.annotate(annotate.format(v), (i, v), ha="center", va="bottom", fontsize=7)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv")
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args()
    data = load(args.csv)
    os.makedirs(args.out, exist_ok=True)
    written = []

    io = [s for s in ("connections", "fanout") if s in data]
    if io:
        fig, axes = plt.subplots(1, len(io), figsize=(6 * len(io), 4.5), squeeze=False)
        for ax, scenario in zip(axes[0], io):
            n = int(max(m["requests"] for m in data[scenario].values()))
            bars(ax, data[scenario], lambda m: m["projected_wall_s"],
                 f"{scenario}: wall time for all {n:,} requests (log)", "seconds", log=True,
                 projected=True)
        fig.tight_layout()
        path = os.path.join(args.out, "models-wall.png")
        fig.savefig(path, dpi=110)
        written.append(path)
        plt.close(fig)

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        scenario = "connections" if "connections" in data else io[0]
        models = data[scenario]
        names = list(models)
        user = [models[n]["peak_mib"] for n in names]
        kernel = [models[n].get("kernel_mib", 0) if n.startswith("thread_per") else 0 for n in names]
        axes[0].bar(range(len(names)), user, color=[colour(n) for n in names],
                    label="peak RSS (VmHWM, summed over processes)")
        axes[0].bar(range(len(names)), kernel, bottom=user, color="#7f7f7f",
                    label="kernel stacks + page tables (threads)")
        axes[0].set_xticks(range(len(names)))
        axes[0].set_xticklabels([n.replace("_", " ") for n in names], rotation=30, ha="right",
                                fontsize=8)
        axes[0].set_ylabel("MiB")
        axes[0].set_title(f"{scenario}: client peak memory (a pool holds N requests at a time)", fontsize=10)
        axes[0].legend(fontsize=7, loc="upper left")
        axes[0].margins(y=0.15)
        for i, (u, k) in enumerate(zip(user, kernel)):
            axes[0].annotate(f"{u + k:.0f}", (i, u + k), ha="center", va="bottom", fontsize=7)
        bars(axes[1], models, lambda m: m["cpu_s"] * 1000.0 / max(1.0, m["requests"]),
             f"{scenario}: client CPU time per request", "ms (user + sys)", annotate="{:.3f}")
        fig.tight_layout()
        path = os.path.join(args.out, "models-memory-cpu.png")
        fig.savefig(path, dpi=110)
        written.append(path)
        plt.close(fig)

    if "cpu" in data or "startup" in data:
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.5),
                                 gridspec_kw={"width_ratios": [5, 2, 8]})
        if "cpu" in data:
            bars(axes[0], data["cpu"], lambda m: m["wall_s"],
                 "CPU-bound (hashing): wall time\n(CPU time is the same for all)", "seconds")
            loop = OrderedDict((n, m) for n, m in data["cpu"].items()
                               if m.get("max_lag_ms", -1) >= 0)
            if loop:
                bars(axes[1], loop, lambda m: max(m["max_lag_ms"], 0.01),
                     "CPU-bound: the loop's\nlongest stall (log)", "ms", log=True,
                     annotate="{:.0f}")
        if "startup" in data:
            bars(axes[2], data["startup"], lambda m: m["wall_s"] * 1000.0,
                 "startup: start, one no-op job per worker, stop", "ms", annotate="{:.1f}")
        fig.tight_layout()
        path = os.path.join(args.out, "models-cpu-startup.png")
        fig.savefig(path, dpi=110)
        written.append(path)
        plt.close(fig)

    for path in written:
        print(path)


if __name__ == "__main__":
    main()
