#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak: CLIENTS connections for SECONDS against examples/echo_server, with mixed echo/readline
# traffic, reads cancelled by short wait_for deadlines and random disconnects (soak_client.cpp).
# Passes when the client saw no byte lost, duplicated or reordered, the server's descriptor count
# is back to its idle value afterwards, and its RSS stayed flat over the second half of the run
# (growth under 10% + 4 MiB over the sample taken at mid-run).
# Usage: soak.sh BUILD_DIR [CLIENTS=1000] [SECONDS=60]
set -euo pipefail
build=$1
clients=${2:-1000}
seconds=${3:-60}
server_bin=$build/examples/echo_server
client_bin=$build/tests/coring_soak_client
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

out=$(mktemp)
"$server_bin" 0 >"$out" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do
    grep -q listening "$out" && break
    sleep 0.05
done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out" | head -1)
[ -n "$port" ] || { echo "soak: the echo server did not start"; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
fds() { ls "/proc/$server/fd" | wc -l; }
idle_fds=$(fds)
idle_rss=$(rss)

# A client stuck on a lost byte would wait forever: give it the run plus a minute.
timeout --signal=KILL $((seconds + 60)) "$client_bin" "$port" "$clients" "$seconds" &
client=$!
samples=()
for ((t = 5; t <= seconds; t += 5)); do
    sleep 5
    samples+=("$t s: rss $(rss) KiB, fds $(fds)")
done
client_rc=0
wait "$client" || client_rc=$?
sleep 1
end_fds=$(fds)
end_rss=$(rss)
printf 'soak: server %s\n' "idle: rss $idle_rss KiB, fds $idle_fds" "${samples[@]}" \
    "after: rss $end_rss KiB, fds $end_fds"

mid=${samples[$(( ${#samples[@]} / 2 ))]:-"0 s: rss $idle_rss KiB"}
mid_rss=$(echo "$mid" | awk '{print $4}')
status=0
[ "$client_rc" -eq 0 ] || { echo "soak: FAILED: the client found lost or corrupted data (exit $client_rc)"; status=1; }
[ "$end_fds" -eq "$idle_fds" ] || { echo "soak: FAILED: server descriptors $idle_fds idle, $end_fds after"; status=1; }
limit=$((mid_rss + mid_rss / 10 + 4096))
[ "$end_rss" -le "$limit" ] || { echo "soak: FAILED: server RSS grew from $mid_rss KiB at mid-run to $end_rss KiB"; status=1; }
kill -TERM "$server"
wait "$server" || { echo "soak: FAILED: the echo server did not stop cleanly on SIGTERM"; status=1; }
trap 'rm -f "$out"' EXIT
[ $status -eq 0 ] && echo "soak: passed"
exit $status
