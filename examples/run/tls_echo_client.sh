#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tls_echo_client against a tls_echo_server on a free port: verified by name (localhost) and by
# address (127.0.0.1), both in the certificate; a name the certificate does not list and a CA
# that did not sign it are refused.
set -euo pipefail
bin="$1"
source "$(dirname "$0")/lib.sh"
certs="$(mktemp -d)"
bash "$(dirname "$0")/make_certs.sh" "$certs"
bash "$(dirname "$0")/make_certs.sh" "$certs/other"
start_server "$bin/tls_echo_server" "$certs/server.pem" "$certs/server.key"
trap 'kill -KILL "$SERVER_PID" 2>/dev/null || true; rm -rf "$SERVER_OUT" "$certs"' EXIT
client() { timeout 30 "$bin/tls_echo_client" "$PORT" "$@"; }
client "$certs/ca.pem" localhost "one line" "and another"
client "$certs/ca.pem" 127.0.0.1 "by address"
for bad in "$certs/ca.pem wrong.example" "$certs/other/ca.pem localhost"; do
    # shellcheck disable=SC2086
    if client $bad "must not arrive" 2>"$certs/err.txt"; then
        echo "tls_echo_client accepted a server it must refuse ($bad)" >&2
        exit 1
    fi
    grep -q 'untrusted server' "$certs/err.txt" || { cat "$certs/err.txt" >&2; exit 1; }
    echo "refused as expected: $(cat "$certs/err.txt")"
done
stop_server
rm -rf "$certs"
