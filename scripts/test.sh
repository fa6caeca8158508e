#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds coring with its tests, examples and benchmarks (dev preset:
# GCC 12, -O2, warnings as errors) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build services
cmake --preset dev
cmake --build --preset dev
ctest --preset dev
