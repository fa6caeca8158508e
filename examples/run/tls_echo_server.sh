#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tls_echo_server on a free port with throwaway certificates (make_certs.sh): idle without busy
# polling, then tls_echo_client against it, then SIGTERM to the server.
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
certs="$(mktemp -d)"
bash "$(dirname "$0")/make_certs.sh" "$certs"
start_server "$bin/tls_echo_server" "$certs/server.pem" "$certs/server.key"
trap 'kill -KILL "$SERVER_PID" 2>/dev/null || true; rm -rf "$SERVER_OUT" "$certs"' EXIT
expect_idle_server 1
timeout 30 "$bin/tls_echo_client" "$PORT" "$certs/ca.pem" localhost
stop_server
rm -rf "$certs"
