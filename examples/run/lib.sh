# SPDX-License-Identifier: MIT
# Shared by the examples/run/*.sh scripts: start a server example on a free port, stop it.
# Every wait is bounded so a broken example fails instead of hanging.

# start_server <binary> [args...]: runs "<binary> 0 args..." in the background, waits for its
# "listening on HOST:PORT" line, sets SERVER_PID and PORT.
start_server() {
    local bin="$1"
    shift
    SERVER_OUT="$(mktemp)"
    "$bin" 0 "$@" >"$SERVER_OUT" &
    SERVER_PID=$!
    trap 'kill -KILL "$SERVER_PID" 2>/dev/null || true; rm -f "$SERVER_OUT"' EXIT
    PORT=""
    for _ in $(seq 200); do
        PORT="$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$SERVER_OUT")"
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited early" >&2; exit 1; }
        sleep 0.05
    done
    [ -n "$PORT" ] || { echo "server did not start" >&2; exit 1; }
    echo "server $(basename "$bin") listening on port $PORT"
}

# server_cpu_ticks: the server's user + system CPU time so far, in clock ticks (/proc/PID/stat).
server_cpu_ticks() {
    # Fields 14 and 15 after the ")" that ends the command name (which may contain spaces).
    sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
}

# expect_idle_server SECONDS: fails when the server burns CPU while nobody talks to it (busy
# polling). A server asleep in io_uring_enter uses nothing; the bound is 10% of the span.
expect_idle_server() {
    local before after limit
    before="$(server_cpu_ticks)"
    sleep "$1"
    after="$(server_cpu_ticks)"
    limit="$(awk -v s="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print int(s * hz / 10) }')"
    echo "idle server used $((after - before)) clock ticks in $1 s (limit $limit)"
    if [ $((after - before)) -gt "$limit" ]; then
        echo "the idle server is busy polling" >&2
        exit 1
    fi
}

# stop_server: SIGTERM, then wait (at most 10 s) and require a clean exit.
stop_server() {
    kill -TERM "$SERVER_PID"
    for _ in $(seq 200); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    local status=0
    wait "$SERVER_PID" || status=$?
    cat "$SERVER_OUT"
    rm -f "$SERVER_OUT"
    trap - EXIT
    if [ "$status" -ne 0 ]; then
        echo "server exited with status $status" >&2
        exit 1
    fi
}
