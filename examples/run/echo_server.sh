#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# echo_server on a free port: idle without busy polling, then echo_client against it, then
# SIGTERM to the server.
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
start_server "$bin/echo_server"
expect_idle_server 1
timeout 30 "$bin/echo_client" "$PORT" 8 500 100
stop_server
