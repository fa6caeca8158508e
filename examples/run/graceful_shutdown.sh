#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs graceful_shutdown, sends it SIGTERM once its workers are running, and checks that it
# shut down cleanly (exit 0, every worker cleaned up). Usage: graceful_shutdown.sh BUILD_DIR
set -euo pipefail
bin="$1/graceful_shutdown"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

"$bin" >"$out" 2>&1 &
pid=$!
# Wait for the banner (the signal handlers are installed before it is printed).
for _ in $(seq 1 100); do
    grep -q "workers running" "$out" && break
    sleep 0.05
done
sleep 0.3 # let the workers finish a few jobs
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
cat "$out"
if [[ $status -ne 0 ]]; then
    echo "graceful_shutdown exited with $status" >&2
    exit 1
fi
grep -q "received SIGTERM: shutting down" "$out"
grep -q "3 of 3 workers stopped cleanly" "$out"
