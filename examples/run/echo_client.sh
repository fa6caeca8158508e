#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# echo_client against an echo_server on a free port (many connections, large messages).
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
start_server "$bin/echo_server"
timeout 30 "$bin/echo_client" "$PORT" 50 20 20000
stop_server
