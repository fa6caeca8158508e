#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The issue 15 PostgreSQL client benchmark: coring (bench_pg_client) against asyncpg+uvloop and
# psycopg 3 async (pg_client_asyncpg.py, pg_client_psycopg.py) on a throwaway PostgreSQL 15
# (tests/postgres/pg_server.sh), server pinned to core 1, each client to core 0, over the Unix
# socket and loopback TCP, ROUNDS rounds; prints every round, then medians and ratios vs asyncpg.
# Stops its server however it ends.
#
# Usage: benchmarks/pg_run.sh [BUILD_DIR]   (default build/dev; needs bench_pg_client built)
#   ROUNDS=3                  rounds (each runs the three clients over both transports)
#   CORING_PG_POOL_QUERIES=N  queries per task of the pool case (default 2,000: 64 x 2,000)
#   PG_CASES="select1 ..."    cases (default: select1 param executemany fetch pool pipeline)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build/dev}"
bench="$build/benchmarks/bench_pg_client"
rounds="${ROUNDS:-3}"
cases="${PG_CASES:-select1 param executemany fetch pool pipeline}"
py=/usr/bin/python3
if [ ! -x "$bench" ]; then
    echo "pg_run.sh: $bench not built (cmake --build $build --target bench_pg_client)" >&2
    exit 1
fi

info="$(mktemp -d /tmp/coring-pgbench.XXXXXX)"
out="$info/results.txt"
cleanup() {
    bash "$root/tests/postgres/pg_server.sh" stop "$info" || true
    rm -rf "$info"
}
trap cleanup EXIT
bash "$root/tests/postgres/pg_server.sh" start "$info"

# The server on core 1: the postmaster and the processes it has started (the connections made
# later are forked from it and inherit the mask).
postmaster="$(head -1 "$(cat "$info/datadir")/data/postmaster.pid")"
taskset -a -p -c 1 "$postmaster" >/dev/null
for child in $(pgrep -P "$postmaster"); do
    taskset -a -p -c 1 "$child" >/dev/null
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    for transport in unix tcp; do
        dsn_file="$info/dsn"
        [ "$transport" = unix ] || dsn_file="$info/dsn_tcp"
        dsn="$(cat "$dsn_file")"
        for client in coring asyncpg psycopg; do
            case "$client" in
            coring) cmd=("$bench" "$dsn") ;;
            asyncpg) cmd=("$py" "$here/pg_client_asyncpg.py" "$dsn") ;;
            psycopg) cmd=("$py" "$here/pg_client_psycopg.py" "$dsn") ;;
            esac
            echo "== round $round $transport $client"
            # shellcheck disable=SC2086 # the cases are words
            taskset -c 0 timeout 600 "${cmd[@]}" $cases | while IFS= read -r line; do
                printf '%s\n' "$line"
                printf '%s %s %s %s\n' "$round" "$transport" "$client" "$line" >>"$out"
            done
        done
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Medians over the rounds and ratios vs asyncpg (rate: higher is better; CPU: lower is better).
"$py" - "$out" <<'PY'
import statistics, sys
data = {}
for line in open(sys.argv[1]):
    f = line.split()
    # round transport client case n unit rate unit/s cpu us CPU/unit
    if len(f) < 11 or f[3 + 3] == "n/a":
        continue
    key = (f[1], f[3], f[2])
    data.setdefault(key, []).append((float(f[6]), float(f[8]), f[5]))
print(f"\n{'transport':<9} {'case':<12} {'client':<8} {'median rate':>14} {'CPU/op us':>10} "
      f"{'rate/asyncpg':>12} {'CPU/asyncpg':>11}")
for (transport, case, client) in sorted(data, key=lambda k: (k[0] != "unix", k[1], k[2])):
    v = data[(transport, case, client)]
    rate = statistics.median(x[0] for x in v)
    cpu = statistics.median(x[1] for x in v)
    unit = v[0][2]
    anchor = data.get((transport, case, "asyncpg"))
    if anchor:
        ar = statistics.median(x[0] for x in anchor)
        ac = statistics.median(x[1] for x in anchor)
        r1, r2 = f"{rate / ar:.2f}x", f"{cpu / ac:.2f}x"
    else:
        r1 = r2 = "n/a"
    print(f"{transport:<9} {case:<12} {client:<8} {rate:>10.0f} {unit + '/s':<5}"
          f"{cpu:>8.2f} {r1:>12} {r2:>11}")
PY
