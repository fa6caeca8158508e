#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# microservice --self-test against the test suite's throwaway PostgreSQL (the coring_pg CTest
# fixture, which writes its DSN to $CORING_PG_INFO/dsn): it serves on a free port, makes its own
# requests with a ClientSession, checks the answers and exits.
set -euo pipefail
bin="$1"
dsn_file="${CORING_PG_INFO:?CORING_PG_INFO is not set: run through ctest}/dsn"
[ -s "$dsn_file" ] || { echo "microservice.sh: $dsn_file is missing: the test server is not running" >&2; exit 1; }
timeout 30 "$bin/microservice" --self-test "$(cat "$dsn_file")"
