#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the HTTP server benchmark (issue 14): coring's http::App (bench_http_server) beside nginx
# (one worker, `return 200`), Node's http, aiohttp.web on uvloop and FastAPI on uvicorn
# (uvloop + httptools), each serving GET /plaintext ("Hello, World!") and GET /json
# ({"Hello":"World"}) on loopback, pinned to one core, under Debian's wrk (-t1 -c64 --latency)
# pinned to the other; prints the markdown tables of benchmarks/RESULTS.md (medians of rounds,
# ratios against nginx, issue 14's targets).
#
# Usage: bash benchmarks/http_server_run.sh [options]
#   --rounds N          rounds (default 3; 0 skips the timed runs); the server order rotates
#   --duration S        seconds per wrk window (default 3)
#   --servers LIST      comma-separated subset of: coring nginx node aiohttp fastapi (all)
#   --idle-conns N      idle keep-alive connections for the memory row (default 10000; 0 skips)
#   --callgrind         also count user-space instructions per request of coring and nginx
#                       (valgrind callgrind, nginx as one process; counters zeroed after 1 s of
#                       wrk -c16, dumped after --cg-duration seconds more, default 8, divided by
#                       the requests wrk completed) and list coring's top functions
#   --max-others PCT    a window during which the rest of the machine used more than PCT% of
#                       a core is left out of the medians when the same server and case has an
#                       undisturbed one (default 10)
#   --client-cpu N      core wrk and the memory client run on (default 0)
#   --server-cpu N      core the servers are pinned to (default 1)
#   --build-dir DIR     the CMake build directory (default build/release)
#   --no-build          use the binaries already in the build directory
#
# Each round starts every server afresh, warms it (1 s of wrk on /plaintext), then measures
# /plaintext and /json, and for coring and nginx both again with 16 requests per write
# (tools/pipeline.lua). Server CPU is the server process's utime + stime (/proc/PID/stat; nginx's
# worker) over the wrk run, divided by the requests wrk completed; the rest of the machine's
# (others') from /proc/stat. The memory row starts coring and nginx afresh, opens --idle-conns
# keep-alive connections after one request each (tools/http_idle_conns.py) and divides the
# server's VmRSS growth by their number. Raw data and tables stay in
# <build-dir>/bench-results/http-server-<time>/. Loopback only; every server stops at exit.
set -euo pipefail

rounds=3
duration=3
servers_arg="coring,nginx,node,aiohttp,fastapi"
idle_conns=10000
callgrind=0
cg_duration=8
max_others=10
client_cpu=0
server_cpu=1
build_dir=""
build=1
command_line="bash benchmarks/http_server_run.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --servers) servers_arg="$2"; shift 2 ;;
    --idle-conns) idle_conns="$2"; shift 2 ;;
    --callgrind) callgrind=1; shift ;;
    --cg-duration) cg_duration="$2"; shift 2 ;;
    --max-others) max_others="$2"; shift 2 ;;
    --client-cpu) client_cpu="$2"; shift 2 ;;
    --server-cpu) server_cpu="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '3,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "http_server_run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python=/usr/bin/python3
build_dir="$(mkdir -p "${build_dir:-build/release}" && cd "${build_dir:-build/release}" && pwd)"
bindir="$build_dir/benchmarks"
IFS=, read -r -a servers <<<"$servers_arg"
export HTTP_BENCH_MAX_OTHERS="$max_others"
# 10,000 idle connections, in the servers and in the memory client: 65536 open files, or the
# hard limit where that is lower (a container without CAP_SYS_RESOURCE).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nofile="$(ulimit -n)"
if [ "$idle_conns" -gt 0 ] && [ "$nofile" != unlimited ] && [ "$nofile" -lt $((idle_conns + 100)) ]; then
    echo "http_server_run.sh: open files limited to $nofile, too few for $idle_conns connections" >&2
    exit 1
fi

if [ "$build" -eq 1 ]; then
    bash scripts/deps.sh build http services bench
    missing=()
    for m in fastapi:python3-fastapi uvicorn:python3-uvicorn httptools:python3-httptools \
        uvloop:python3-uvloop aiohttp:python3-aiohttp; do
        "$python" -c "import ${m%%:*}" 2>/dev/null || missing+=("${m#*:}")
    done
    command -v wrk >/dev/null || missing+=(wrk)
    command -v node >/dev/null || missing+=(nodejs)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
            echo "http_server_run.sh: could not install ${missing[*]}" >&2
    fi
    cmake --preset release -B "$build_dir" >/dev/null
    echo "http_server_run.sh: building bench_http_server in $build_dir" >&2
    cmake --build "$build_dir" --target bench_http_server >/dev/null
fi
command -v wrk >/dev/null || { echo "http_server_run.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }

# Whether a server can run here.
available() {
    case "$1" in
    coring) [ -x "$bindir/bench_http_server" ] ;;
    nginx) command -v nginx >/dev/null ;;
    node) command -v node >/dev/null ;;
    aiohttp) "$python" -c "import aiohttp, uvloop" 2>/dev/null ;;
    fastapi) "$python" -c "import fastapi, uvicorn, uvloop, httptools" 2>/dev/null ;;
    *) echo "http_server_run.sh: unknown server '$1'" >&2; exit 2 ;;
    esac
}
kept=()
for s in "${servers[@]}"; do
    if available "$s"; then kept+=("$s"); else echo "http_server_run.sh: '$s' is not available here, skipped" >&2; fi
done
servers=("${kept[@]}")
[ ${#servers[@]} -gt 0 ] || { echo "http_server_run.sh: no server to run" >&2; exit 1; }

out="$build_dir/bench-results/http-server-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
raw="$out/raw.txt"
log="$out/stderr.log"
: >"$raw"
srv="$(mktemp -d /tmp/coring-http-server-bench.XXXXXX)" # nginx's config, pid, logs, temp paths
mkdir -p "$srv/tmp" "$srv/logs"

server_pid=""  # the process started (nginx's master)
measure_pid="" # the process that serves (nginx's worker)
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true # nginx: fast shutdown of master and worker
        local waited=0
        while kill -0 "$server_pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        measure_pid=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$srv"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nginx's config: one worker, return 200 from the config, as the other servers' routes.
nginx_conf() {
    local port="$1" master="$2" user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$srv/nginx.conf" <<CONF
$user_line
worker_processes 1;
worker_rlimit_nofile $nofile;
master_process $master;
daemon off;
pid $srv/nginx.pid;
error_log $srv/logs/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    tcp_nodelay on;
    client_body_temp_path $srv/tmp/body;
    proxy_temp_path $srv/tmp/proxy;
    fastcgi_temp_path $srv/tmp/fastcgi;
    uwsgi_temp_path $srv/tmp/uwsgi;
    scgi_temp_path $srv/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location /plaintext { default_type text/plain; return 200 "Hello, World!"; }
        location /json { default_type application/json; return 200 '{"Hello":"World"}'; }
    }
}
CONF
}

# Starts server $1 on port $2 pinned to server_cpu ($3: a command prefix such as valgrind's);
# sets server_pid and measure_pid; fails when it does not answer both paths within 20 s.
start_server() {
    local name="$1" port="$2" prefix="${3:-}"
    # shellcheck disable=SC2086
    case "$name" in
    coring) taskset -c "$server_cpu" $prefix "$bindir/bench_http_server" "$port" >>"$log" 2>&1 & ;;
    nginx)
        nginx_conf "$port" "$([ -n "$prefix" ] && echo off || echo on)"
        taskset -c "$server_cpu" $prefix nginx -p "$srv" -c "$srv/nginx.conf" -e "$srv/logs/error.log" >>"$log" 2>&1 &
        ;;
    node) taskset -c "$server_cpu" node "$root/benchmarks/http_server_node.js" "$port" >>"$log" 2>&1 & ;;
    aiohttp) taskset -c "$server_cpu" "$python" "$root/benchmarks/http_server_aiohttp.py" "$port" >>"$log" 2>&1 & ;;
    fastapi) taskset -c "$server_cpu" "$python" "$root/benchmarks/http_server_fastapi.py" "$port" >>"$log" 2>&1 & ;;
    esac
    server_pid=$!
    local _
    for _ in $(seq 1 200); do
        if [ "$(curl -s "http://127.0.0.1:$port/plaintext" 2>/dev/null)" = "Hello, World!" ] &&
            [ "$(curl -s "http://127.0.0.1:$port/json" 2>/dev/null | tr -d ' ')" = '{"Hello":"World"}' ]; then
            measure_pid="$server_pid"
            if [ "$name" = nginx ] && [ -z "$prefix" ]; then
                measure_pid="$(pgrep -P "$server_pid" | head -1)"
            fi
            return 0
        fi
        sleep 0.1
    done
    echo "http_server_run.sh: $name did not answer on port $port (see $log)" >&2
    stop_server
    return 1
}

pipelined() { [ "$1" = coring ] || [ "$1" = nginx ]; }

{
    echo "## Machine"
    echo
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
    echo "- Kernel: $(uname -r)"
    echo "- Compiler: $(g++-12 --version | head -1)"
    echo "- wrk: $(dpkg-query -W -f '${Version}' wrk 2>/dev/null), -t1 -c64 --latency, ${duration} s windows, on CPU $client_cpu; servers on CPU $server_cpu"
    echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //') ($(dpkg-query -W -f '${Package}' nginx-light 2>/dev/null || echo nginx)), one worker"
    echo "- Node: $(node --version 2>/dev/null || echo 'not installed')"
    echo "- Python: $("$python" -c 'import sys; print(sys.version.split()[0])'), aiohttp $(
        "$python" -c 'import aiohttp; print(aiohttp.__version__)' 2>/dev/null || echo '–'), uvloop $(
        "$python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo '–'), FastAPI $(
        "$python" -c 'import fastapi; print(fastapi.__version__)' 2>/dev/null || echo '–'), uvicorn $(
        "$python" -c 'import uvicorn; print(uvicorn.__version__)' 2>/dev/null || echo '–'), httptools $(
        "$python" -c 'import httptools; print(httptools.__version__)' 2>/dev/null || echo '–')"
    echo "- coring: commit $(git log -1 --format=%h 2>/dev/null || echo unknown)$(
        [ -n "$(git status --porcelain -- src include 2>/dev/null)" ] && echo ' (with uncommitted changes in src/ or include/)')"
    echo "- Load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "Command: \`$command_line\`"
    echo
} | tee "$out/results.md"

# One wrk window: server $1, case $2 (path, _p16 for pipelined), round $3, port $4.
measure() {
    local name="$1" case="$2" round="$3" port="$4" path="${2%_p16}" script=()
    [ "$case" != "$path" ] && script=(--script "$root/benchmarks/tools/pipeline.lua")
    echo "== round $round $name $case" >>"$log"
    if "$python" benchmarks/tools/http_server_wrk.py --server-pid "$measure_pid" --cpu "$client_cpu" \
        --duration "$duration" "${script[@]}" "http://127.0.0.1:$port/$path" >"$out/window.txt" 2>>"$log"; then
        sed -n "s/^BENCH /$name $case $round BENCH /p" "$out/window.txt" >>"$raw"
    else
        echo "http_server_run.sh: $name $case failed (see $log)" >&2
    fi
}

if [ "$rounds" -gt 0 ]; then
    timed_start=$(date +%s)
    n=${#servers[@]}
    for ((round = 1; round <= rounds; round++)); do
        for ((k = 0; k < n; k++)); do
            name="${servers[$(((k + round - 1) % n))]}"
            echo "http_server_run.sh: round $round/$rounds $name" >&2
            port="$(free_port)"
            start_server "$name" "$port" || continue
            timeout 30 taskset -c "$client_cpu" wrk -t1 -c64 -d1s "http://127.0.0.1:$port/plaintext" >>"$log" 2>&1 || true
            cases=(plaintext json)
            pipelined "$name" && cases+=(plaintext_p16 json_p16)
            for case in "${cases[@]}"; do
                measure "$name" "$case" "$round" "$port"
            done
            stop_server
        done
    done
    echo "Timed runs: $(($(date +%s) - timed_start)) s; load average after them: $(cut -d' ' -f1-3 /proc/loadavg)." |
        tee -a "$out/results.md"
    echo | tee -a "$out/results.md"
fi

if [ "$idle_conns" -gt 0 ]; then
    for name in coring nginx; do
        [[ " ${servers[*]} " == *" $name "* ]] || continue
        echo "http_server_run.sh: $idle_conns idle keep-alive connections to $name" >&2
        port="$(free_port)"
        start_server "$name" "$port" || continue
        if timeout 120 taskset -c "$client_cpu" "$python" benchmarks/tools/http_idle_conns.py \
            --server-pid "$measure_pid" --connections "$idle_conns" 127.0.0.1 "$port" \
            >"$out/window.txt" 2>>"$log"; then
            sed -n "s/^BENCH /$name idle 1 BENCH /p" "$out/window.txt" >>"$raw"
        else
            echo "http_server_run.sh: idle connections to $name failed (see $log)" >&2
        fi
        stop_server
    done
fi

if [ -s "$raw" ]; then
    "$python" benchmarks/tools/http_server_aggregate.py tables "$raw" | tee -a "$out/results.md"
fi

cg=""
if [ "$callgrind" -eq 1 ]; then
    cg="$out/callgrind"
    mkdir -p "$cg"
    for name in coring nginx; do
        [[ " ${servers[*]} " == *" $name "* ]] || continue
        echo "http_server_run.sh: callgrind $name" >&2
        port="$(free_port)"
        # nginx runs as one process (master_process off) so that valgrind sees the worker's code.
        start_server "$name" "$port" "valgrind --tool=callgrind --callgrind-out-file=$cg/$name.%p.out" || continue
        for path in plaintext json; do
            timeout 60 taskset -c "$client_cpu" wrk -t1 -c16 -d1s "http://127.0.0.1:$port/$path" >>"$log" 2>&1 || true
            callgrind_control --zero "$measure_pid" >/dev/null
            timeout 120 taskset -c "$client_cpu" wrk -t1 -c16 -d"${cg_duration}s" "http://127.0.0.1:$port/$path" >"$cg/$name.$path.wrk" 2>&1
            callgrind_control --dump="$path" "$measure_pid" >/dev/null
            sleep 1
            # shellcheck disable=SC2012 # the newest dump; the names are ours
            dump="$(ls -t "$cg/$name.$measure_pid.out".* 2>/dev/null | head -1)"
            [ -n "$dump" ] && mv "$dump" "$cg/$name.$path.out.1"
            echo "$name $path $(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$cg/$name.$path.wrk")" >>"$cg/requests.txt"
        done
        stop_server
    done
    rm -f "$cg"/*.[0-9]*.out # the final dumps at exit (shutdown), not measured
    # The profile behind each count: <dump>.top.txt (self cost per shared object, top functions)
    # and, for coring, every function's inclusive cost (<dump>.inclusive.txt).
    bash benchmarks/tools/callgrind_top.sh "$cg"
    for dump in "$cg"/coring.*.out.1; do
        [ -f "$dump" ] || continue
        callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"${dump%.out.1}.inclusive.txt" 2>/dev/null || true
    done
    {
        echo "### User-space instructions of the server (callgrind)"
        echo
        "$python" benchmarks/tools/http_server_aggregate.py callgrind "$cg"
    } | tee -a "$out/results.md"
fi

if [ -s "$raw" ]; then
    {
        echo "### Targets (issue 14)"
        echo
        "$python" benchmarks/tools/http_server_aggregate.py targets "$raw" "$cg"
        echo
        echo "Load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee -a "$out/results.md"
fi

echo >&2
echo "http_server_run.sh: raw data and tables in ${out#"$root"/}" >&2
