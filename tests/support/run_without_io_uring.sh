#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a test executable under no_io_uring (a seccomp filter refusing io_uring, CORING_BACKEND
# unset): it must pass, and coring's fallback warning must appear exactly once.
# Usage: run_without_io_uring.sh NO_IO_URING_LAUNCHER TEST_EXECUTABLE [ARGS...]
set -u
launcher=$1
shift
unset CORING_BACKEND
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$launcher" "$@" >"$out" 2>&1
rc=$?
tail -n 5 "$out"
warnings=$(grep -c "io_uring_setup: Operation not permitted (seccomp or kernel.io_uring_disabled); using the epoll backend" "$out")
echo "fallback warnings: $warnings"
if [[ $rc -ne 0 ]]; then
    grep -n "FAILED\|failed" "$out" | head -n 40
    echo "FAIL: the tests failed without io_uring (exit status $rc)"
    exit 1
fi
if [[ $warnings -ne 1 ]]; then
    echo "FAIL: expected the fallback warning exactly once, saw it $warnings times"
    exit 1
fi
echo "PASS"
