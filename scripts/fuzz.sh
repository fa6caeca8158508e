#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (fuzz preset: Clang, ASan+UBSan) and runs each one for a bounded
# time, starting from its corpus in fuzz/corpus/<target>/ (regression inputs are kept there).
# Crashing inputs are copied to build/fuzz/crashes/.
# Usage: fuzz.sh [SECONDS_PER_TARGET=60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bash scripts/deps.sh build sanitize
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for exe in build/fuzz/fuzz/fuzz_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    corpus=fuzz/corpus/$name
    work=$(mktemp -d)
    mkdir -p "$corpus"
    echo "fuzz.sh: $name for ${seconds}s"
    if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work" "$corpus" >"$work/log" 2>&1; then
        tail -40 "$work/log"
        mkdir -p build/fuzz/crashes
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* build/fuzz/crashes/ 2>/dev/null || true
        echo "fuzz.sh: $name FAILED; crashing input(s) kept in build/fuzz/crashes/:" \
            "$(cd "$work" && ls crash-* leak-* timeout-* 2>/dev/null | tr '\n' ' ')"
        echo "fuzz.sh: replay one with $exe build/fuzz/crashes/<file>, then make it a test"
        status=1
    else
        grep -E 'stat::number_of_executed_units|cov:' "$work/log" | tail -2
    fi
    rm -rf "$work"
done
exit $status
