#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every benchmark area beside its peers (asyncio, uvloop, Asio) for several rounds and prints the
# markdown tables of benchmarks/RESULTS.md: medians and ratios, and instructions per operation.
#
# Usage: bash benchmarks/run.sh [--rounds N] [--callgrind] [--area NAME]... [--cpu N] [--no-build]
#   --rounds N    rounds of every program (default 5; 0 skips the timed runs)
#   --callgrind   also run each C++ case once under valgrind --tool=callgrind: instr/op
#   --area NAME   only this area (default: every benchmarks/<area>.cpp)
#   --cpu N       core to pin every run to with taskset (default 1, or 0 on a 1-core machine)
#   --no-build    use the existing build/release binaries
#
# An area is a benchmarks/<area>.cpp (built as bench_<area>) with optional peers: the Python
# benchmarks/<area>_asyncio.py (run with asyncio and with uvloop) and the C++ <area>_asio.cpp
# (bench_<area>_asio, built when libasio-dev is found). Peers are not areas themselves, nor are
# the echo and TLS benchmarks' servers and load generators (echo_*.cpp, tls_*.cpp), which
# echo_run.sh and tls_run.sh run, nor the HTTP client benchmark's clients (http_client.cpp,
# http_curl_epoll.cpp), which http_client_run.sh runs.
# Each case runs in a fresh process per round (`--case NAME`), so peak RSS is the case's own;
# rounds interleave the implementations so that slow drift of a shared machine hits all alike.
set -euo pipefail

rounds=5
callgrind=0
build=1
cpu=""
areas=()
command_line="bash benchmarks/run.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --callgrind) callgrind=1; shift ;;
    --area) areas+=("$2"); shift 2 ;;
    --cpu) cpu="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python=/usr/bin/python3
bindir="$root/build/release/benchmarks"

if [ "$build" -eq 1 ]; then
    bash scripts/deps.sh build bench
fi

if [ ${#areas[@]} -eq 0 ]; then
    for source in benchmarks/*.cpp; do
        area="$(basename "$source" .cpp)"
        case "$area" in
        *_asio | *_liburing) continue ;; # C++ peers of an area, not areas
        echo | echo_*) continue ;;       # the echo benchmark's programs: benchmarks/echo_run.sh
        tls | tls_*) continue ;;         # the TLS benchmark's programs: benchmarks/tls_run.sh
        http_client | http_curl_epoll) continue ;; # the HTTP client benchmark's: http_client_run.sh
        http_server) continue ;;                  # the HTTP server benchmark's: http_server_run.sh
        http_parser_bench) continue ;;            # standalone: run bench_http_parser_bench
        pg_client) continue ;;                    # needs a server: bench_pg_client DSN
        per_core_*) continue ;;                   # the per-core benchmark: per_core_run.sh
        models) continue ;; # runs its models itself, on every core: bench_models (docs/comparisons.md)
        esac
        areas+=("$area")
    done
fi
if [ ${#areas[@]} -eq 0 ]; then
    echo "run.sh: no benchmarks/<area>.cpp found" >&2
    exit 1
fi

if [ "$build" -eq 1 ]; then
    cmake --preset release >/dev/null
    targets=()
    for area in "${areas[@]}"; do
        targets+=("bench_$area")
        if [ -f "benchmarks/${area}_asio.cpp" ] &&
            grep -q '^CORING_ASIO_INCLUDE_DIR:PATH=/' build/release/CMakeCache.txt; then
            targets+=("bench_${area}_asio")
        fi
    done
    echo "run.sh: building ${targets[*]} (release preset)" >&2
    cmake --build --preset release --target "${targets[@]}" >/dev/null
fi

pin=()
if command -v taskset >/dev/null; then
    if [ -z "$cpu" ]; then
        cpu=$([ "$(nproc)" -gt 1 ] && echo 1 || echo 0)
    fi
    pin=(taskset -c "$cpu")
fi

has_uvloop=0
if "$python" -c "import uvloop" 2>/dev/null; then
    has_uvloop=1
fi

out="$root/build/release/bench-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
raw="$out/raw.txt"
log="$out/stderr.log"
: >"$raw"

# Prints the command line of implementation impl for area (nothing when it does not exist).
impl_command() {
    local area="$1" impl="$2"
    case "$impl" in
    coring) echo "$bindir/bench_$area" ;;
    asio)
        if [ -x "$bindir/bench_${area}_asio" ]; then
            echo "$bindir/bench_${area}_asio"
        fi
        ;;
    asyncio | uvloop)
        if [ -f "benchmarks/${area}_asyncio.py" ] && { [ "$impl" = asyncio ] || [ "$has_uvloop" -eq 1 ]; }; then
            echo "$python benchmarks/${area}_asyncio.py --loop $impl"
        fi
        ;;
    esac
}

impls="coring asyncio uvloop asio"

# The cases each implementation of each area has (its --list), asked once.
declare -A case_lists
for area in "${areas[@]}"; do
    for impl in $impls; do
        cmd="$(impl_command "$area" "$impl")"
        if [ -n "$cmd" ]; then
            case_lists["$area $impl"]=" $($cmd --list | tr '\n' ' ') "
        fi
    done
done

# Whether impl of area has case.
has_case() {
    [[ "${case_lists["$1 $2"]:-}" == *" $3 "* ]]
}

{
    echo "## Machine"
    echo
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
    echo "- Kernel: $(uname -r)"
    echo "- Compiler: $(g++-12 --version | head -1)"
    echo "- liburing: $(pkg-config --modversion liburing 2>/dev/null || echo unknown)"
    echo "- Asio: $(sed -n 's|^#define ASIO_VERSION \([0-9]*\).*|\1|p' /usr/include/asio/version.hpp 2>/dev/null |
        awk '{ if ($1) printf "%d.%d.%d (io_uring backend)", $1 / 100000, $1 / 100 % 1000, $1 % 100; else printf "not installed" }')"
    echo "- Python: $("$python" -c 'import sys; print(sys.version.split()[0])'), uvloop $(
        "$python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo 'not installed')"
    echo "- valgrind: $(valgrind --version 2>/dev/null || echo 'not installed')"
    echo "- Pinned: ${pin[*]:-no}"
    echo
    echo "Command: \`$command_line\`"
    echo
} | tee "$out/results.md"

if [ "$rounds" -gt 0 ]; then
    for ((round = 1; round <= rounds; round++)); do
        for area in "${areas[@]}"; do
            for case in ${case_lists["$area coring"]}; do
                for impl in $impls; do
                    has_case "$area" "$impl" "$case" || continue
                    echo "run.sh: round $round/$rounds $area $case $impl" >&2
                    # shellcheck disable=SC2046
                    "${pin[@]}" $(impl_command "$area" "$impl") --case "$case" 2>>"$log" |
                        sed -n "s/^BENCH /$area $impl $round BENCH /p" >>"$raw"
                done
            done
        done
    done
    echo "## Timings" | tee -a "$out/results.md"
    echo | tee -a "$out/results.md"
    "$python" benchmarks/tools/aggregate.py timings "$raw" | tee -a "$out/results.md"
fi

# Cases whose cost is in other threads or processes: callgrind serialises threads (a producer
# thread and the loop then take turns at valgrind's pace) and does not follow children, so an
# instruction count per operation would mean nothing there.
callgrind_skip='^(call_soon_threadsafe|to_thread|spawn_wait_.*)$'

if [ "$callgrind" -eq 1 ]; then
    cg="$out/callgrind"
    mkdir -p "$cg"
    for area in "${areas[@]}"; do
        for case in ${case_lists["$area coring"]}; do
            for impl in coring asio; do # the C++ programs
                has_case "$area" "$impl" "$case" || continue
                name="$area.$impl.$case"
                if [[ "$case" =~ $callgrind_skip ]]; then
                    echo "run.sh: callgrind $area $case $impl skipped (crosses threads or processes)" >&2
                    continue
                fi
                echo "run.sh: callgrind $area $case $impl" >&2
                # shellcheck disable=SC2046
                if "${pin[@]}" timeout 600 valgrind --tool=callgrind \
                    --callgrind-out-file="$cg/$name.%p.out" \
                    $(impl_command "$area" "$impl") --case "$case" >/dev/null 2>"$cg/$name.err"; then
                    echo "$name" >>"$cg/order.txt"
                else
                    echo "run.sh: callgrind $area $case $impl failed or timed out (see $name.err)" >&2
                    rm -f "$cg/$name".*.out
                fi
            done
        done
    done
    {
        echo "## Instructions per operation (callgrind, user space)"
        echo
    } | tee -a "$out/results.md"
    "$python" benchmarks/tools/aggregate.py callgrind "$cg" | tee -a "$out/results.md"
fi

echo >&2
echo "run.sh: raw data and tables in ${out#"$root"/}" >&2
