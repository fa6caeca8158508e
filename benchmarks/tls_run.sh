#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the TLS benchmark (issue 12): coring's TLS echo server (examples/tls_echo_server) beside
# a C-style OpenSSL + epoll loop (the floor), Asio ssl::stream on io_uring, asyncio ssl streams
# and uvloop, driven by bench_tls_loadgen on loopback, and prints the markdown tables of
# benchmarks/RESULTS.md (medians of rounds, ratios, targets, instructions per request).
#
# Usage: bash benchmarks/tls_run.sh [options]
#   --rounds N            rounds of the whole matrix (default 3; 0 skips the timed runs)
#   --duration SEC        measured window of echo and handshake (default 2)
#   --warmup SEC          before each window (default 0.5)
#   --bulk-mib M          size of the bulk transfer (default 256)
#   --callgrind           also count the servers' user-space instructions per echo request and
#                         per handshake (valgrind callgrind, an exact number of requests)
#   --servers LIST        comma-separated subset of: coring floor asio asyncio uvloop
#   --modes LIST          comma-separated subset of: echo bulk handshake
#   --server-cpu N        core the servers are pinned to (default 1)
#   --loadgen-cpu N       core the load generator is pinned to (default 0)
#   --no-build            use the existing build/release binaries
#
# The three measurements, TLS 1.3 with X25519 (the load generator offers nothing else), an
# EC P-256 server certificate from examples/run/make_certs.sh:
#   echo       64 connections, handshaken first, each sending 64 B and waiting for the echo
#   bulk       one connection echoing 256 MiB (sent in 16 KiB writes while the echo is read)
#   handshake  16 connections at a time, each a new TCP + TLS connection for one 64 B request
# Each round starts every server in turn (the order rotates), runs the three against it, stops
# it. Server CPU is utime + stime from /proc/PID/stat at the window's edges. Raw data and
# tables stay in build/release/bench-results/tls-<time>/.
set -euo pipefail

rounds=3
duration=2
warmup=0.5
bulk_mib=256
callgrind=0
build=1
servers_arg="coring,floor,asio,asyncio,uvloop"
modes_arg="echo,bulk,handshake"
server_cpu=1
loadgen_cpu=0
echo_connections=64
handshake_connections=16
size=64
command_line="bash benchmarks/tls_run.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --bulk-mib) bulk_mib="$2"; shift 2 ;;
    --callgrind) callgrind=1; shift ;;
    --servers) servers_arg="$2"; shift 2 ;;
    --modes) modes_arg="$2"; shift 2 ;;
    --server-cpu) server_cpu="$2"; shift 2 ;;
    --loadgen-cpu) loadgen_cpu="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '3,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tls_run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python=/usr/bin/python3
bindir="$root/build/release/benchmarks"
IFS=, read -r -a servers <<<"$servers_arg"
IFS=, read -r -a modes <<<"$modes_arg"

if [ "$build" -eq 1 ]; then
    bash scripts/deps.sh build bench
    cmake --preset release >/dev/null
    targets=(bench_tls_loadgen bench_tls_epoll tls_echo_server)
    if grep -q '^CORING_ASIO_INCLUDE_DIR:PATH=/' build/release/CMakeCache.txt; then
        targets+=(bench_tls_asio)
    fi
    echo "tls_run.sh: building ${targets[*]} (release preset)" >&2
    cmake --build --preset release --target "${targets[@]}" >/dev/null
fi

has_uvloop=0
if "$python" -c "import uvloop" 2>/dev/null; then
    has_uvloop=1
fi

# Prints the command line of a server (it takes <port> <cert> <key>; the port is added at
# start), or nothing when that server is not available here.
server_command() {
    case "$1" in
    coring) [ -x build/release/examples/tls_echo_server ] && echo "$root/build/release/examples/tls_echo_server" ;;
    floor) [ -x "$bindir/bench_tls_epoll" ] && echo "$bindir/bench_tls_epoll" ;;
    asio) [ -x "$bindir/bench_tls_asio" ] && echo "$bindir/bench_tls_asio" ;;
    asyncio) echo "$python benchmarks/tls_asyncio.py --loop asyncio" ;;
    uvloop) [ "$has_uvloop" -eq 1 ] && echo "$python benchmarks/tls_asyncio.py --loop uvloop" ;;
    *) echo "tls_run.sh: unknown server '$1'" >&2; exit 2 ;;
    esac
    return 0
}

available=()
for s in "${servers[@]}"; do
    if [ -n "$(server_command "$s")" ]; then
        available+=("$s")
    else
        echo "tls_run.sh: server '$s' is not available here, skipped" >&2
    fi
done
servers=("${available[@]}")
[ ${#servers[@]} -gt 0 ] || { echo "tls_run.sh: no server to run" >&2; exit 1; }
loadgen="$bindir/bench_tls_loadgen"
[ -x "$loadgen" ] || { echo "tls_run.sh: $loadgen is missing (run without --no-build)" >&2; exit 1; }

out="$root/build/release/bench-results/tls-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
raw="$out/raw.txt"
log="$out/stderr.log"
: >"$raw"
certs="$out/certs"
bash examples/run/make_certs.sh "$certs"

# Starts a server (the words of its command line in the arguments; port 0, the certificate and
# the key appended) in the background; sets server_pid and server_port.
start_server() {
    local timeout="$1" listen_file="$2"
    shift 2
    : >"$listen_file"
    "$@" 0 "$certs/server.pem" "$certs/server.key" >"$listen_file" 2>>"$log" &
    server_pid=$!
    local waited=0
    while ! grep -q '^listening on ' "$listen_file"; do
        if ! kill -0 "$server_pid" 2>/dev/null || [ "$waited" -ge $((timeout * 10)) ]; then
            echo "tls_run.sh: server '$*' did not start" >&2
            stop_server
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    server_port="$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$listen_file" | head -1)"
}

# Stops the server started last: SIGTERM, then SIGKILL after 5 s.
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

# The load generator's arguments for a mode.
mode_args() {
    case "$1" in
    echo) echo "--mode echo --connections $echo_connections --size $size" ;;
    bulk) echo "--mode bulk --bulk-mib $bulk_mib" ;;
    handshake) echo "--mode handshake --connections $handshake_connections --size $size" ;;
    esac
}

{
    echo "## Machine"
    echo
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
    echo "- Kernel: $(uname -r)"
    echo "- Compiler: $(g++-12 --version | head -1)"
    echo "- OpenSSL: $(openssl version)"
    echo "- Asio: $(sed -n 's|^#define ASIO_VERSION \([0-9]*\).*|\1|p' /usr/include/asio/version.hpp 2>/dev/null |
        awk '{ if ($1) printf "%d.%d.%d", $1 / 100000, $1 / 100 % 1000, $1 % 100; else printf "not installed" }')"
    echo "- Python: $("$python" -c 'import sys; print(sys.version.split()[0])'), uvloop $(
        "$python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo 'not installed')"
    echo "- Servers pinned to CPU $server_cpu, load generator to CPU $loadgen_cpu"
    echo "- Load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "Command: \`$command_line\`"
    echo
} | tee "$out/results.md"

if [ "$rounds" -gt 0 ]; then
    timed_start=$(date +%s)
    n=${#servers[@]}
    for ((round = 1; round <= rounds; round++)); do
        for ((k = 0; k < n; k++)); do
            server="${servers[$(((k + round - 1) % n))]}"
            # shellcheck disable=SC2046
            if ! start_server 20 "$out/listen.txt" taskset -c "$server_cpu" $(server_command "$server"); then
                continue
            fi
            for mode in "${modes[@]}"; do
                echo "tls_run.sh: round $round/$rounds $server $mode" >&2
                # shellcheck disable=SC2046
                if taskset -c "$loadgen_cpu" "$loadgen" --port "$server_port" $(mode_args "$mode") \
                    --warmup "$warmup" --duration "$duration" --server-pid "$server_pid" \
                    --timeout 300 >"$out/attempt.txt" 2>>"$log"; then
                    sed -n "s/^BENCH /$server $mode $round BENCH /p" "$out/attempt.txt" >>"$raw"
                else
                    echo "tls_run.sh: $server $mode failed (see $log)" >&2
                fi
            done
            stop_server
        done
    done
    {
        echo "Timed runs: $(($(date +%s) - timed_start)) s."
        echo
        "$python" benchmarks/tools/tls_aggregate.py tables "$raw"
    } | tee -a "$out/results.md"
fi

cg=""
if [ "$callgrind" -eq 1 ]; then
    cg="$out/callgrind"
    mkdir -p "$cg"
    for server in "${servers[@]}"; do
        echo_requests=10000 handshakes=400 start_timeout=30
        case "$server" in
        asyncio | uvloop) echo_requests=2000 handshakes=100 start_timeout=120 ;;
        esac
        echo "tls_run.sh: callgrind $server" >&2
        # shellcheck disable=SC2046
        if ! start_server "$start_timeout" "$cg/listen.txt" taskset -c "$server_cpu" \
            valgrind --tool=callgrind --callgrind-out-file="$cg/$server.%p.out" \
            $(server_command "$server"); then
            continue
        fi
        echo "$server" >>"$cg/order.txt"
        # Warm-up, then the connections go quiet, the counters are zeroed, exactly N requests
        # (handshakes) run, the connections go quiet again and callgrind dumps under the
        # mode's name.
        for mode in echo handshake; do
            requests=$echo_requests
            [ "$mode" = handshake ] && requests=$handshakes
            # shellcheck disable=SC2046
            taskset -c "$loadgen_cpu" "$loadgen" --port "$server_port" $(mode_args "$mode") \
                --warmup 2 --requests "$requests" --timeout 600 \
                --at-start "callgrind_control --zero $server_pid >/dev/null" \
                --at-end "callgrind_control --dump=$mode $server_pid >/dev/null" \
                >/dev/null 2>"$cg/$server.$mode.err" ||
                echo "tls_run.sh: callgrind run of $server $mode failed (see $cg/$server.$mode.err)" >&2
        done
        stop_server
    done
    {
        echo "### User-space instructions of the server (callgrind)"
        echo
        "$python" benchmarks/tools/tls_aggregate.py callgrind "$cg"
    } | tee -a "$out/results.md"
    # The profile behind the counts, in <dump>.top.txt: self cost per shared object (the
    # program, libssl, libcrypto, libc, python), then the 30 most expensive functions. The
    # entries at 100% are the call chain above main (inclusive), left out.
    for dump in "$cg"/*.out.[0-9]*; do
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
fi

if [ "$rounds" -gt 0 ]; then
    {
        echo "### Targets (issue 12)"
        echo
        "$python" benchmarks/tools/tls_aggregate.py targets "$raw" "$cg"
        echo
        echo "Load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee -a "$out/results.md"
fi

echo >&2
echo "tls_run.sh: raw data and tables in ${out#"$root"/}" >&2
