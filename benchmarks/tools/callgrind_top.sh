#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Writes the profile behind each callgrind dump in DIR (the *.out.<n> files valgrind
# --tool=callgrind writes on CALLGRIND_DUMP_STATS / callgrind_control --dump) to <dump>.top.txt:
# self instructions per shared object (the program, libcurl, libssl, libcrypto, libc, python),
# then the 30 most expensive functions (self). The entries at 100% are the call chain above
# main (inclusive), left out.
#
# Usage: bash benchmarks/tools/callgrind_top.sh DIR
set -euo pipefail
dir="${1:?usage: callgrind_top.sh DIR}"
for dump in "$dir"/*.out.[0-9]*; do
    case "$dump" in *.txt) continue ;; esac
    [ -f "$dump" ] || continue
    callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null |
        grep -E '^ *[0-9,]+ \( *[0-9.]+%\)  ' | grep -v '(100.0%)' >"$dump.fns.txt" || true
    {
        echo "self instructions per object:"
        sed 's/,//g' "$dump.fns.txt" | awk '{ obj = $NF; sum[obj] += $1; total += $1 }
            END { for (o in sum) printf "%14d %5.1f%% %s\n", sum[o], 100 * sum[o] / total, o }' |
            sort -rn
        echo
        echo "top functions (self):"
        head -30 "$dump.fns.txt"
    } >"$dump.top.txt"
    rm -f "$dump.fns.txt"
done
