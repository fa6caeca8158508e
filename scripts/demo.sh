#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds coring (dev preset) and runs the main demo: three workers
# that sleep concurrently, so the total time is the slowest worker's, not the sum.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
cmake --preset dev >/dev/null
cmake --build --preset dev --target workers
./build/dev/examples/workers
