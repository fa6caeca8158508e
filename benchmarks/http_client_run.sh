#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the HTTP client benchmark (issue 13): coring's ClientSession (bench_http_client) beside
# the floor, a C-style curl_multi + epoll program (bench_http_curl_epoll), and aiohttp's
# ClientSession on uvloop (http_client_aiohttp.py), each doing 20,000 GETs of a small page, 64 in
# flight, from a local nginx; prints the markdown tables of benchmarks/RESULTS.md (medians of
# rounds, ratios, targets, and with --callgrind user-space instructions per request).
#
# Usage: bash benchmarks/http_client_run.sh [options]
#   --rounds N          rounds of the whole matrix (default 3; 0 skips the timed runs)
#   --requests N        measured GETs per run (default 20000)
#   --warmup N          GETs before the window, which open the connections (default 2000)
#   --concurrency C     requests in flight (default 64)
#   --rows LIST         comma-separated subset of: http https h2 (default all)
#   --clients LIST      comma-separated subset of: coring floor aiohttp (default all)
#   --callgrind         also count the C++ clients' user-space instructions per request
#                       (valgrind callgrind, a tenth of the requests, after the warm-up)
#   --max-others PCT    a window during which the rest of the machine (other tenants, steal)
#                       used more than PCT% of a core is measured again (default 10)
#   --retries N         at most N more attempts per run (default 2), only while the timed runs
#                       are within --budget seconds (default 120); the least disturbed is kept
#   --client-cpu N      core the clients are pinned to (default 0)
#   --server-cpu N      core nginx (master and its one worker) is pinned to (default 1)
#   --build-dir DIR     the CMake build directory (default build/release)
#   --no-build          use the binaries already in the build directory
#
# Rows: http = HTTP/1.1 on plain TCP (64 keep-alive connections); https = HTTP/1.1 over TLS
# (64 connections, TLS verified against a throwaway CA); h2 = HTTP/2 over TLS (ALPN; the 64
# requests multiplexed on one connection; aiohttp has no HTTP/2 and sits this row out). nginx
# 1.22 runs from a temporary directory (its config, pid, logs, temp paths and certificates made
# by examples/run/make_certs.sh): one worker, keepalive_requests 1000000, access_log off.
# Each round runs every row with every client (the client order rotates between rounds); each
# run is a fresh client process. Client CPU is the client's own user + system time over the
# measured window (getrusage); nginx's worker CPU and the rest of the machine's are read from
# /proc at the window's edges. Raw data and tables stay in <build-dir>/bench-results/http-<time>/.
set -euo pipefail

rounds=3
requests=20000
warmup=2000
concurrency=64
rows_arg="http,https,h2"
clients_arg="coring,floor,aiohttp"
callgrind=0
max_others=10
retries=2
budget=120
client_cpu=0
server_cpu=1
build_dir=""
build=1
command_line="bash benchmarks/http_client_run.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --rows) rows_arg="$2"; shift 2 ;;
    --clients) clients_arg="$2"; shift 2 ;;
    --callgrind) callgrind=1; shift ;;
    --max-others) max_others="$2"; shift 2 ;;
    --retries) retries="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    --client-cpu) client_cpu="$2"; shift 2 ;;
    --server-cpu) server_cpu="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '3,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "http_client_run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python=/usr/bin/python3
build_dir="$(cd "$root" && mkdir -p "${build_dir:-build/release}" && cd "${build_dir:-build/release}" && pwd)"
bindir="$build_dir/benchmarks"
IFS=, read -r -a rows <<<"$rows_arg"
IFS=, read -r -a clients <<<"$clients_arg"

if [ "$build" -eq 1 ]; then
    bash scripts/deps.sh build http services bench
    "$python" -c "import aiohttp" 2>/dev/null || {
        apt-get install -y -qq --no-install-recommends python3-aiohttp >/dev/null ||
            echo "http_client_run.sh: python3-aiohttp could not be installed" >&2
    }
    cmake --preset release -B "$build_dir" >/dev/null
    echo "http_client_run.sh: building bench_http_curl_epoll bench_http_client in $build_dir" >&2
    cmake --build "$build_dir" --target bench_http_curl_epoll >/dev/null
    cmake --build "$build_dir" --target bench_http_client >/dev/null ||
        echo "http_client_run.sh: bench_http_client (coring::http) did not build; coring skipped" >&2
fi

# Prints the command line of a client, or nothing when it is not available here.
client_command() {
    case "$1" in
    coring) [ -x "$bindir/bench_http_client" ] && echo "$bindir/bench_http_client" ;;
    floor) [ -x "$bindir/bench_http_curl_epoll" ] && echo "$bindir/bench_http_curl_epoll" ;;
    aiohttp)
        "$python" -c "import aiohttp, uvloop" 2>/dev/null &&
            echo "$python $root/benchmarks/http_client_aiohttp.py --loop uvloop"
        ;;
    *) echo "http_client_run.sh: unknown client '$1'" >&2; exit 2 ;;
    esac
    return 0
}

available=()
for c in "${clients[@]}"; do
    if [ -n "$(client_command "$c")" ]; then
        available+=("$c")
    else
        echo "http_client_run.sh: client '$c' is not available here, skipped" >&2
    fi
done
clients=("${available[@]}")
[ ${#clients[@]} -gt 0 ] || { echo "http_client_run.sh: no client to run" >&2; exit 1; }
command -v nginx >/dev/null || { echo "http_client_run.sh: nginx is missing (scripts/deps.sh services)" >&2; exit 1; }

out="$build_dir/bench-results/http-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
raw="$out/raw.txt"
log="$out/stderr.log"
: >"$raw"

# nginx's directory: config, certificates, the page, pid, logs and temp paths. Loopback only.
srv="$(mktemp -d /tmp/coring-http-bench.XXXXXX)"
nginx_pid=""
stop_nginx() {
    if [ -n "$nginx_pid" ]; then
        kill -QUIT "$nginx_pid" 2>/dev/null || true # graceful: the worker exits, then the master
        local waited=0
        while kill -0 "$nginx_pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
        nginx_pid=""
    fi
    rm -rf "$srv"
}
trap stop_nginx EXIT

bash examples/run/make_certs.sh "$srv/certs"
mkdir -p "$srv/www" "$srv/tmp" "$srv/logs"
# The small page: 600 bytes of HTML.
{
    printf '<!DOCTYPE html>\n<html><head><title>coring http client benchmark</title></head>\n<body>\n'
    for i in $(seq 1 7); do
        printf '<p>Line %d of a small page served by nginx to the client benchmark.</p>\n' "$i"
    done
    printf '</body></html>\n'
} | head -c 600 >"$srv/www/index.html"
page_bytes=$(stat -c %s "$srv/www/index.html")

# Two free loopback ports (bound and released; nginx takes them right after).
read -r http_port https_port < <("$python" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
mask="1$(printf '0%.0s' $(seq 1 "$server_cpu"))" # CPU N as a binary mask: 1 and N zeros
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;" # the files live under /tmp, mode 700
cat >"$srv/nginx.conf" <<EOF
$user_line
worker_processes 1;
worker_cpu_affinity $mask;
pid $srv/nginx.pid;
error_log $srv/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type text/html;
    sendfile on;
    tcp_nopush off;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    gzip off;
    client_body_temp_path $srv/tmp/body;
    proxy_temp_path $srv/tmp/proxy;
    fastcgi_temp_path $srv/tmp/fastcgi;
    uwsgi_temp_path $srv/tmp/uwsgi;
    scgi_temp_path $srv/tmp/scgi;
    ssl_certificate $srv/certs/server.pem;
    ssl_certificate_key $srv/certs/server.key;
    http2_max_concurrent_streams 128;
    server {
        listen 127.0.0.1:$http_port;
        listen 127.0.0.1:$https_port ssl http2;
        root $srv/www;
        location / { index index.html; }
    }
}
EOF
taskset -c "$server_cpu" nginx -p "$srv" -c "$srv/nginx.conf" -e "$srv/logs/error.log" \
    -g 'daemon off; master_process on;' 2>>"$log" &
nginx_pid=$!
worker_pid=""
for _ in $(seq 1 100); do
    worker_pid="$(pgrep -P "$nginx_pid" | head -1 || true)"
    if [ -n "$worker_pid" ] && curl -sf -o /dev/null "http://127.0.0.1:$http_port/" &&
        curl -sf -o /dev/null --cacert "$srv/certs/ca.pem" "https://127.0.0.1:$https_port/"; then
        break
    fi
    worker_pid=""
    sleep 0.1
done
[ -n "$worker_pid" ] || { echo "http_client_run.sh: nginx did not start (see $srv/logs/error.log)" >&2; cat "$srv/logs/error.log" >&2; exit 1; }
h2_check="$(curl -s -o /dev/null -w '%{http_version}' --http2 --cacert "$srv/certs/ca.pem" "https://127.0.0.1:$https_port/")"
[ "$h2_check" = 2 ] || echo "http_client_run.sh: nginx does not answer HTTP/2 (curl saw HTTP/$h2_check)" >&2

# The client arguments of a row.
row_args() {
    case "$1" in
    http) echo "--url http://127.0.0.1:$http_port/index.html --http 1.1" ;;
    https) echo "--url https://127.0.0.1:$https_port/index.html --http 1.1 --cafile $srv/certs/ca.pem" ;;
    h2) echo "--url https://127.0.0.1:$https_port/index.html --http 2 --cafile $srv/certs/ca.pem" ;;
    *) echo "http_client_run.sh: unknown row '$1'" >&2; exit 2 ;;
    esac
}
common_args=(--concurrency "$concurrency" --expect-bytes "$page_bytes" --server-pid "$worker_pid")

{
    echo "## Machine"
    echo
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
    echo "- Kernel: $(uname -r)"
    echo "- Compiler: $(g++-12 --version | head -1)"
    echo "- libcurl: $(curl-config --version 2>/dev/null | sed 's/^libcurl //'), $(curl --version | head -1 | grep -o 'OpenSSL/[^ ]*\|nghttp2/[^ ]*' | tr '\n' ' ')"
    echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), one worker on CPU $server_cpu; page $page_bytes B"
    echo "- Python: $("$python" -c 'import sys; print(sys.version.split()[0])'), aiohttp $(
        "$python" -c 'import aiohttp; print(aiohttp.__version__)' 2>/dev/null || echo 'not installed'), uvloop $(
        "$python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo 'not installed')"
    echo "- coring: commit $(git log -1 --format=%h 2>/dev/null || echo unknown)$(
        [ -n "$(git status --porcelain -- src include 2>/dev/null)" ] && echo ' (with uncommitted changes in src/ or include/)')"
    echo "- Clients pinned to CPU $client_cpu; $requests GETs measured after $warmup, $concurrency in flight"
    echo "- Load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "Command: \`$command_line\`"
    echo
} | tee "$out/results.md"

# Runs one client on one row and appends its lines to raw. A window during which the rest of the
# machine (other tenants, steal) used more than max_others % of a core is measured again, up to
# retries times while the budget lasts; the least disturbed attempt is kept (echo_run.sh's rule).
run_client() {
    local client="$1" row="$2" round="$3" attempt best="" best_others="" others
    for ((attempt = 0; attempt <= retries; attempt++)); do
        echo "== round $round $row $client attempt $attempt" >>"$log"
        # shellcheck disable=SC2046
        if ! timeout 120 taskset -c "$client_cpu" $(client_command "$client") $(row_args "$row") \
            "${common_args[@]}" --requests "$requests" --warmup "$warmup" >"$out/attempt.txt" 2>>"$log"; then
            echo "http_client_run.sh: $client $row failed (see $log)" >&2
            continue
        fi
        others="$(sed -n 's/^BENCH others_cpu_util \([0-9.]*\).*/\1/p' "$out/attempt.txt")"
        others="${others:-0}"
        if [ -z "$best" ] || awk -v a="$others" -v b="$best_others" 'BEGIN { exit !(a < b) }'; then
            best="$(cat "$out/attempt.txt")"
            best_others="$others"
        fi
        if awk -v a="$others" -v m="$max_others" 'BEGIN { exit !(a <= m) }' ||
            [ $(($(date +%s) - timed_start)) -ge "$budget" ]; then
            break
        fi
        echo "http_client_run.sh: others used ${others}% of a core during the window, again" >&2
        retried=$((retried + 1))
        sleep 1
    done
    if [ -n "$best" ]; then
        sed -n "s/^BENCH /$client $row $round BENCH /p" <<<"$best" >>"$raw"
    fi
}

if [ "$rounds" -gt 0 ]; then
    timed_start=$(date +%s)
    retried=0
    n=${#clients[@]}
    for ((round = 1; round <= rounds; round++)); do
        for row in "${rows[@]}"; do
            for ((k = 0; k < n; k++)); do
                client="${clients[$(((k + round - 1) % n))]}"
                [ "$client" = aiohttp ] && [ "$row" = h2 ] && continue # HTTP/1.1 only
                echo "http_client_run.sh: round $round/$rounds $row $client" >&2
                run_client "$client" "$row" "$round"
            done
        done
    done
    {
        echo "Timed runs: $(($(date +%s) - timed_start)) s, $retried window(s) measured again for interference."
        echo
        "$python" benchmarks/tools/http_aggregate.py tables "$raw"
    } | tee -a "$out/results.md"
fi

cg=""
if [ "$callgrind" -eq 1 ]; then
    cg="$out/callgrind"
    mkdir -p "$cg"
    for client in "${clients[@]}"; do
        [ "$client" = aiohttp ] && continue # C++ clients only
        for row in "${rows[@]}"; do
            echo "http_client_run.sh: callgrind $client $row" >&2
            # The program zeroes the counters after its warm-up and dumps them after the
            # measured GETs (a tenth of --requests under valgrind): bench::Region's markers.
            # shellcheck disable=SC2046
            timeout 600 taskset -c "$client_cpu" valgrind --tool=callgrind \
                --callgrind-out-file="$cg/$client.$row.%p.out" \
                $(client_command "$client") $(row_args "$row") "${common_args[@]}" \
                --requests "$requests" --warmup 200 >/dev/null 2>"$cg/$client.$row.err" ||
                echo "http_client_run.sh: callgrind run of $client $row failed (see $cg/$client.$row.err)" >&2
        done
    done
    {
        echo "### User-space instructions of the client (callgrind)"
        echo
        "$python" benchmarks/tools/http_aggregate.py callgrind "$cg"
    } | tee -a "$out/results.md"
    # The profile behind each count, in <dump>.top.txt: self cost per shared object, then the
    # 30 most expensive functions.
    bash benchmarks/tools/callgrind_top.sh "$cg"
fi

if [ "$rounds" -gt 0 ]; then
    {
        echo "### Targets (issue 13)"
        echo
        "$python" benchmarks/tools/http_aggregate.py targets "$raw" "$cg"
        echo
        echo "Load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee -a "$out/results.md"
fi

echo >&2
echo "http_client_run.sh: raw data and tables in ${out#"$root"/}" >&2
