#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# http_server on a free port, http_client fetching from it concurrently, then SIGTERM.
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
start_server "$bin/http_server"
timeout 30 "$bin/http_client" "$PORT" 20
stop_server
