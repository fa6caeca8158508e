#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Per-core loops benchmark (issue 16): bench_per_core_server with 1 loop, 2 loops on one
# SO_REUSEPORT port, and 2 loops fed round robin by loop 0's acceptor, each driven by the echo
# benchmark's load generator (bench_echo_loadgen: ping-pong connections on loopback, server CPU
# from /proc/PID/stat). Prints one markdown row per run and the medians per layout.
#
# Usage: bash benchmarks/per_core_run.sh [BUILD_DIR] [ROUNDS] [CONNECTIONS] [SIZE]
#   defaults: build/release 3 64 64. Nothing is pinned: on a 2-core machine the load generator
#   needs a core too, so "2 loops" shares the cores with it (see RESULTS.md).
set -euo pipefail
build="${1:-build/release}"
rounds="${2:-3}"
conns="${3:-64}"
size="${4:-64}"
bindir="$build/benchmarks"
port=19100
declare -A rps cpu
configs=("1 reuseport" "2 reuseport" "2 roundrobin")
echo "| round | loops | layout | req/s | server CPU ns/req | server CPU % | loadgen CPU % | others CPU % |"
echo "|---|---|---|---|---|---|---|---|"
for ((r = 1; r <= rounds; r++)); do
    for cfg in "${configs[@]}"; do
        set -- $cfg
        loops=$1
        layout=$2
        port=$((port + 1))
        "$bindir/bench_per_core_server" --port "$port" --loops "$loops" --layout "$layout" >/dev/null &
        spid=$!
        sleep 0.4
        out=$("$bindir/bench_echo_loadgen" --port "$port" --connections "$conns" --size "$size" \
            --warmup 0.5 --duration 2 --server-pid "$spid" 2>/dev/null)
        kill -TERM "$spid"
        wait "$spid" || true
        get() { echo "$out" | awk -v m="$1" '$2 == m { print $3 }'; }
        echo "| $r | $loops | $layout | $(get req_per_s) | $(get server_cpu_per_req) | $(get server_cpu_util) | $(get loadgen_cpu_util) | $(get others_cpu_util) |"
        rps["$cfg"]+="$(get req_per_s) "
        cpu["$cfg"]+="$(get server_cpu_per_req) "
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo
echo "| loops | layout | median req/s | median server CPU ns/req |"
echo "|---|---|---|---|"
for cfg in "${configs[@]}"; do
    set -- $cfg
    echo "| $1 | $2 | $(echo "${rps[$cfg]}" | median) | $(echo "${cpu[$cfg]}" | median) |"
done
