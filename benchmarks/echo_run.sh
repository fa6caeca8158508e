#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the echo benchmark (issue 5): coring's streams echo server beside a raw liburing loop,
# Asio (io_uring and epoll), asyncio and uvloop, driven by bench_echo_loadgen on loopback, and
# prints the markdown tables of benchmarks/RESULTS.md (medians, ratios, instructions/request).
#
# Usage: bash benchmarks/echo_run.sh [options]
#   --rounds N            rounds of the whole matrix (default 5; 0 skips the timed runs)
#   --quick               1 round, 0.3 s warm-up, 1 s windows, fewer callgrind requests
#   --callgrind           also count user-space instructions per request (valgrind callgrind,
#                         64 B, 64 connections and 1, an exact number of requests)
#   --coring-server PATH  coring's echo server (default build/release/examples/echo_server)
#   --servers LIST        comma-separated subset of: coring liburing liburing_defer asio_uring
#                         asio_epoll asyncio uvloop uvloop_protocol asyncio_protocol
#                         coring_epoll (coring's server on its epoll backend, CORING_BACKEND=epoll)
#                         (default: all but asyncio_protocol)
#   --connections LIST    default 1,64,512
#   --sizes LIST          message sizes in bytes, default 64,4096
#   --warmup SEC          per measurement (default 0.5)
#   --duration SEC        measured window per measurement (default 1.5)
#   --max-others PCT      a window during which the rest of the machine (other tenants, steal)
#                         used more than PCT% of a core is measured again (default 10)
#   --retries N           at most N more attempts per measurement (default 2), only while the
#                         run is within its time budget; the least disturbed attempt is kept
#   --budget MIN          time budget of the timed runs for retries (default 13 minutes)
#   --server-cpu N        core the servers are pinned to (default 1)
#   --loadgen-cpu N       core the load generator is pinned to (default 0)
#   --no-build            use the existing build/release binaries
#
# Each round starts every server in turn (the order rotates between rounds, so that slow drift
# of a shared machine hits all alike), runs the load generator against it for every
# connections × size cell, then stops it. The load generator reads the server's utime + stime
# from /proc/PID/stat at the edges of each window: server CPU per request. Raw data and tables
# stay in build/release/bench-results/echo-<time>/.
set -euo pipefail

rounds=""
quick=0
callgrind=0
build=1
coring_server=""
servers_arg=""
connections_arg="1,64,512"
sizes_arg="64,4096"
warmup=0.5
duration=1.5
max_others=10
retries=2
budget_min=13
server_cpu=1
loadgen_cpu=0
command_line="bash benchmarks/echo_run.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --callgrind) callgrind=1; shift ;;
    --coring-server) coring_server="$2"; shift 2 ;;
    --servers) servers_arg="$2"; shift 2 ;;
    --connections) connections_arg="$2"; shift 2 ;;
    --sizes) sizes_arg="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --max-others) max_others="$2"; shift 2 ;;
    --retries) retries="$2"; shift 2 ;;
    --budget) budget_min="$2"; shift 2 ;;
    --server-cpu) server_cpu="$2"; shift 2 ;;
    --loadgen-cpu) loadgen_cpu="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '3,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "echo_run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$quick" -eq 1 ]; then
    rounds=${rounds:-1}
    warmup=0.3
    duration=1
fi
rounds=${rounds:-5}
cg_requests_cpp=$([ "$quick" -eq 1 ] && echo 5000 || echo 20000)
cg_requests_py=$([ "$quick" -eq 1 ] && echo 1000 || echo 5000)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python=/usr/bin/python3
bindir="$root/build/release/benchmarks"
coring_server="${coring_server:-$root/build/release/examples/echo_server}"
IFS=, read -r -a connections <<<"$connections_arg"
IFS=, read -r -a sizes <<<"$sizes_arg"
if [ -n "$servers_arg" ]; then
    IFS=, read -r -a servers <<<"$servers_arg"
else
    servers=(coring coring_epoll liburing liburing_defer asio_uring asio_epoll asyncio uvloop
        uvloop_protocol)
fi

if [ "$build" -eq 1 ]; then
    bash scripts/deps.sh build bench
    cmake --preset release >/dev/null
    targets=(bench_echo_loadgen bench_echo_liburing)
    if grep -q '^CORING_ASIO_INCLUDE_DIR:PATH=/' build/release/CMakeCache.txt; then
        targets+=(bench_echo_asio bench_echo_asio_epoll)
    fi
    if [ "$coring_server" = "$root/build/release/examples/echo_server" ] &&
        [ -f examples/echo_server.cpp ]; then
        targets+=(echo_server)
    fi
    echo "echo_run.sh: building ${targets[*]} (release preset)" >&2
    cmake --build --preset release --target "${targets[@]}" >/dev/null
fi

has_uvloop=0
if "$python" -c "import uvloop" 2>/dev/null; then
    has_uvloop=1
fi

# Prints the command line of a server (it takes the port as its last argument), or nothing
# when that server is not available here.
server_command() {
    case "$1" in
    coring) [ -x "$coring_server" ] && echo "$coring_server" ;;
    coring_epoll) [ -x "$coring_server" ] && echo "env CORING_BACKEND=epoll $coring_server" ;;
    liburing) [ -x "$bindir/bench_echo_liburing" ] && echo "$bindir/bench_echo_liburing" ;;
    liburing_defer)
        [ -x "$bindir/bench_echo_liburing" ] &&
            echo "env ECHO_LIBURING_FLAGS=defer $bindir/bench_echo_liburing"
        ;;
    asio_uring) [ -x "$bindir/bench_echo_asio" ] && echo "$bindir/bench_echo_asio" ;;
    asio_epoll) [ -x "$bindir/bench_echo_asio_epoll" ] && echo "$bindir/bench_echo_asio_epoll" ;;
    asyncio) echo "$python benchmarks/echo_asyncio.py --loop asyncio" ;;
    asyncio_protocol) echo "$python benchmarks/echo_asyncio.py --loop asyncio --variant protocol" ;;
    uvloop | uvloop_protocol)
        if [ "$has_uvloop" -eq 1 ]; then
            local variant=streams
            [ "$1" = uvloop_protocol ] && variant=protocol
            echo "$python benchmarks/echo_asyncio.py --loop uvloop --variant $variant"
        fi
        ;;
    *) echo "echo_run.sh: unknown server '$1'" >&2; exit 2 ;;
    esac
    return 0
}

available=()
for s in "${servers[@]}"; do
    if [ -n "$(server_command "$s")" ]; then
        available+=("$s")
    else
        echo "echo_run.sh: server '$s' is not available here, skipped" >&2
        if [ "$s" = coring ] || [ "$s" = coring_epoll ]; then
            echo "echo_run.sh: no coring echo server at $coring_server (--coring-server PATH)" >&2
        fi
    fi
done
servers=("${available[@]}")
[ ${#servers[@]} -gt 0 ] || { echo "echo_run.sh: no server to run" >&2; exit 1; }
loadgen="$bindir/bench_echo_loadgen"
[ -x "$loadgen" ] || { echo "echo_run.sh: $loadgen is missing (run without --no-build)" >&2; exit 1; }

out="$root/build/release/bench-results/echo-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
raw="$out/raw.txt"
log="$out/stderr.log"
: >"$raw"

# Starts a server (the words of its command line in the arguments, port 0 appended) in the
# background; sets server_pid and server_port. Fails after timeout seconds without the
# "listening on" line.
start_server() {
    local timeout="$1" listen_file="$2"
    shift 2
    : >"$listen_file"
    "$@" 0 >"$listen_file" 2>>"$log" &
    server_pid=$!
    local waited=0
    while ! grep -q '^listening on ' "$listen_file"; do
        if ! kill -0 "$server_pid" 2>/dev/null || [ "$waited" -ge $((timeout * 10)) ]; then
            echo "echo_run.sh: server '$*' did not start" >&2
            stop_server
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    server_port="$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$listen_file" | head -1)"
}

# Stops the server started last: SIGTERM, then SIGKILL after 5 s (a process under valgrind
# does not see signals while it sleeps in io_uring_enter).
stop_server() {
    [ -n "${server_pid:-}" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$server_pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
trap stop_server EXIT

{
    echo "## Machine"
    echo
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
    echo "- Kernel: $(uname -r)"
    echo "- Compiler: $(g++-12 --version | head -1)"
    echo "- liburing: $(pkg-config --modversion liburing 2>/dev/null || echo unknown)"
    echo "- Asio: $(sed -n 's|^#define ASIO_VERSION \([0-9]*\).*|\1|p' /usr/include/asio/version.hpp 2>/dev/null |
        awk '{ if ($1) printf "%d.%d.%d", $1 / 100000, $1 / 100 % 1000, $1 % 100; else printf "not installed" }')"
    echo "- Python: $("$python" -c 'import sys; print(sys.version.split()[0])'), uvloop $(
        "$python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo 'not installed')"
    echo "- valgrind: $(valgrind --version 2>/dev/null || echo 'not installed')"
    echo "- coring server: $coring_server"
    echo "- Servers pinned to CPU $server_cpu, load generator to CPU $loadgen_cpu"
    echo "- Load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "Command: \`$command_line\`"
    echo
} | tee "$out/results.md"

# Measures one cell against the running server and appends its lines to raw. A window that
# other processes disturbed (others_cpu_util above max_others) is measured again, up to
# retries times while the budget lasts; the least disturbed attempt is kept.
run_cell() {
    local server="$1" c="$2" s="$3" round="$4" attempt best="" best_others="" others
    for ((attempt = 0; attempt <= retries; attempt++)); do
        if ! taskset -c "$loadgen_cpu" "$loadgen" --port "$server_port" \
            --connections "$c" --size "$s" --warmup "$warmup" --duration "$duration" \
            --server-pid "$server_pid" --timeout "$lg_timeout" >"$out/attempt.txt" 2>>"$log"; then
            echo "echo_run.sh: $server $c×$s failed (see $log)" >&2
            continue
        fi
        others="$(sed -n 's/^BENCH others_cpu_util \([0-9.]*\).*/\1/p' "$out/attempt.txt")"
        others="${others:-0}"
        if [ -z "$best" ] || awk -v a="$others" -v b="$best_others" 'BEGIN { exit !(a < b) }'; then
            best="$(cat "$out/attempt.txt")"
            best_others="$others"
        fi
        if awk -v a="$others" -v m="$max_others" 'BEGIN { exit !(a <= m) }' ||
            [ $(($(date +%s) - timed_start)) -ge $((budget_min * 60)) ]; then
            break
        fi
        echo "echo_run.sh: others used ${others}% of a core during the window, again" >&2
        retried=$((retried + 1))
        sleep 1
    done
    if [ -n "$best" ]; then
        sed -n "s/^BENCH /$server $c $s $round BENCH /p" <<<"$best" >>"$raw"
    fi
}

if [ "$rounds" -gt 0 ]; then
    timed_start=$(date +%s)
    retried=0
    lg_timeout=$(awk -v w="$warmup" -v d="$duration" 'BEGIN { print w + d + 30 }')
    n=${#servers[@]}
    for ((round = 1; round <= rounds; round++)); do
        for ((k = 0; k < n; k++)); do
            server="${servers[$(((k + round - 1) % n))]}"
            # shellcheck disable=SC2046
            if ! start_server 20 "$out/listen.txt" taskset -c "$server_cpu" $(server_command "$server"); then
                continue
            fi
            for c in "${connections[@]}"; do
                for s in "${sizes[@]}"; do
                    echo "echo_run.sh: round $round/$rounds $server $c connections $s B" >&2
                    run_cell "$server" "$c" "$s" "$round"
                done
            done
            stop_server
        done
    done
    echo "## Timings" | tee -a "$out/results.md"
    echo | tee -a "$out/results.md"
    echo "Timed runs: $(($(date +%s) - timed_start)) s, $retried window(s) measured again for interference." |
        tee -a "$out/results.md"
    echo | tee -a "$out/results.md"
    "$python" benchmarks/tools/aggregate.py echo "$raw" | tee -a "$out/results.md"
fi

if [ "$callgrind" -eq 1 ]; then
    cg="$out/callgrind"
    mkdir -p "$cg"
    for server in "${servers[@]}"; do
        requests=$cg_requests_cpp
        start_timeout=30
        case "$server" in
        asyncio* | uvloop*) requests=$cg_requests_py; start_timeout=120 ;;
        esac
        echo "echo_run.sh: callgrind $server ($requests requests)" >&2
        # shellcheck disable=SC2046
        set -- $(server_command "$server")
        vg=(valgrind --tool=callgrind --callgrind-out-file="$cg/$server.%p.out")
        if [ "$1" = env ]; then # env VAR=value program: valgrind goes after the variables
            cmd=("$1" "$2" "${vg[@]}" "${@:3}")
        else
            cmd=("${vg[@]}" "$@")
        fi
        if ! start_server "$start_timeout" "$cg/listen.txt" taskset -c "$server_cpu" "${cmd[@]}"; then
            continue
        fi
        echo "$server" >>"$cg/order.txt"
        # For each cell: warm-up, then the connections go quiet, callgrind's counters are
        # zeroed, exactly $requests requests run, the connections go quiet again, and callgrind
        # dumps under the cell's name. 64 connections is the issue's setting (a loop iteration
        # then handles many completions, more of them under valgrind, which slows the server
        # down); 1 connection is one request per loop iteration, the runtime's whole cost.
        for c in 64 1; do
            taskset -c "$loadgen_cpu" "$loadgen" --port "$server_port" --connections "$c" \
                --size 64 --warmup 2 --requests "$requests" --timeout 600 \
                --at-start "callgrind_control --zero $server_pid >/dev/null" \
                --at-end "callgrind_control --dump=c$c $server_pid >/dev/null" \
                >/dev/null 2>"$cg/$server.c$c.err" ||
                echo "echo_run.sh: callgrind run of $server failed (see $cg/$server.c$c.err)" >&2
        done
        stop_server
    done
    {
        echo "## User-space instructions per request (callgrind, 64 B)"
        echo
    } | tee -a "$out/results.md"
    "$python" benchmarks/tools/aggregate.py echo-callgrind "$cg" | tee -a "$out/results.md"
fi

if [ "$rounds" -gt 0 ]; then
    {
        echo "## Targets (issue 5; 64 connections, 64 B)"
        echo
        "$python" benchmarks/tools/aggregate.py echo-targets "$raw" "${cg:-}"
        echo
        echo "Load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee -a "$out/results.md"
fi

echo >&2
echo "echo_run.sh: raw data and tables in ${out#"$root"/}" >&2
