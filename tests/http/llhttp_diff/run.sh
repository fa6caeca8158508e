#!/bin/sh
# SPDX-License-Identifier: MIT
# Differential test of coring's HTTP/1.1 request parser against Node's llhttp: builds driver.cpp
# with the parser's source, runs both over corpus.txt and compares (compare.js). Exits 77
# (skipped) without node or a C++ compiler; 1 on a disagreement corpus.txt does not explain.
# Usage: run.sh [c++ compiler]   (default: $CXX, else g++-12, else c++)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cxx=${1:-${CXX:-$(command -v g++-12 || command -v c++ || true)}}
if ! command -v node >/dev/null 2>&1 || [ -z "$cxx" ]; then
    echo "CORING-SKIP: node or a C++ compiler is missing"
    exit 77
fi
# The corpus's reasons were written against Node 20's llhttp; older ones differ elsewhere.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "CORING-SKIP: Node $node_major's llhttp is older than the one the corpus describes (20)"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cxx" -std=c++20 -O1 -I"$root/include" "$here/driver.cpp" "$root/src/http/parser.cpp" \
    -o "$work/driver"
node "$here/dump.js" "$here/corpus.txt" | "$work/driver" >"$work/coring.txt"
node "$here/llhttp.js" "$here/corpus.txt" >"$work/llhttp.txt"
node "$here/compare.js" "$here/corpus.txt" "$work/coring.txt" "$work/llhttp.txt"
