#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# http_hello_api on a free port: the FastAPI example and the CRUD routes through curl, then
# concurrent requests from http_client, then SIGTERM (graceful shutdown).
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
start_server "$bin/http_hello_api"
base="http://127.0.0.1:$PORT"
expect() { # expect WANTED COMMAND...: runs a curl command, compares its output
    local got
    got="$("${@:2}")"
    if [ "$got" != "$1" ]; then
        echo "expected: $1" >&2
        echo "got:      $got" >&2
        exit 1
    fi
    echo "ok: $got"
}
expect '{"Hello":"World"}' curl -sS --max-time 5 "$base/"
expect '{"id":1,"name":"coring"} 201' curl -sS --max-time 5 -w ' %{http_code}' \
    -H 'Content-Type: application/json' -d '{"name":"coring"}' "$base/items"
expect '{"id":1,"name":"coring"}' curl -sS --max-time 5 "$base/items/1"
expect '{"detail":"Item not found"} 404' curl -sS --max-time 5 -w ' %{http_code}' "$base/items/9"
expect '405 GET, HEAD, POST' sh -c "curl -sS --max-time 5 -X PATCH -o /dev/null -D - '$base/items' \
    | tr -d '\r' | awk '/^HTTP/ { s = \$2 } /^Allow:/ { sub(/^Allow: /, \"\"); a = \$0 } END { print s, a }'"
expect '204' curl -sS --max-time 5 -X DELETE -o /dev/null -w '%{http_code}' "$base/items/1"
timeout 30 "$bin/http_client" "$PORT" 20 | tail -1
stop_server
