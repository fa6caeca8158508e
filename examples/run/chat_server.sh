#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# chat_server on a free port; two members talk through bash's /dev/tcp connections.
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
start_server "$bin/chat_server"

expect() { # expect <fd> <line>: the next line on fd must be <line> (5 s at most)
    local got=""
    IFS= read -r -t 5 -u "$1" got || true
    echo "fd $1 got: $got"
    [ "$got" = "$2" ] || { echo "expected: $2" >&2; exit 1; }
}

exec 3<>"/dev/tcp/127.0.0.1/$PORT"
echo alice >&3
expect 3 "* welcome alice (1 online)"
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
echo bob >&4
expect 4 "* welcome bob (2 online)"
expect 3 "* bob joined"
echo "hi bob" >&3
expect 4 "alice: hi bob"
echo "hi alice" >&4
expect 3 "bob: hi alice"
exec 4>&-
expect 3 "* bob left"
exec 3>&-
stop_server
