#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# http_client fetching 50 URLs at once from http_hello_api on a free port.
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
start_server "$bin/http_hello_api"
timeout 30 "$bin/http_client" "$PORT" 50
stop_server
