#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages coring needs that are missing. Usage: deps.sh PROFILE...
#   build     compiler, CMake, Ninja, liburing, fmt, Catch2, OpenSSL (libssl-dev, and the openssl
#             CLI the TLS tests talk to), libpq and the PostgreSQL 15 server the postgres tests
#             start themselves: enough to build and test
#   http      the http component: libcurl (OpenSSL flavour) and nlohmann-json (part of build)
#   services  the peers the tests start themselves on loopback: nginx (nginx-light), Python
#             (http.server, aiohttp), Node.js, curl and wrk; installed without starting their
#             system services
#   sanitize  Clang and its sanitizer runtimes (asan and tsan presets)
#   format    clang-format
#   bench     the peers benchmarks compare against: Python asyncio + uvloop, Asio, valgrind,
#             Debian's http-parser (beside the HTTP request parser), matplotlib (plot_models.py)
set -euo pipefail

packages=()
for profile in "${@:-build}"; do
    case "$profile" in
    build) packages+=(g++-12 cmake ninja-build pkg-config liburing-dev libfmt-dev catch2 libssl-dev openssl ca-certificates
        libcurl4-openssl-dev nlohmann-json3-dev libpq-dev postgresql-15) ;;
    http) packages+=(libcurl4-openssl-dev nlohmann-json3-dev) ;;
    services) packages+=(nginx-light python3 python3-aiohttp nodejs curl wrk) ;;
    sanitize) packages+=(clang libclang-rt-14-dev) ;;
    format) packages+=(clang-format) ;;
    bench) packages+=(python3 python3-uvloop libasio-dev valgrind util-linux libhttp-parser-dev python3-matplotlib) ;;
    *)
        echo "deps.sh: unknown profile '$profile'" >&2
        exit 2
        ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# The tests start nginx themselves on loopback ports: keep the packages' system services from
# starting (and taking port 80) while installing, through Debian's policy-rc.d hook.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
fi
status=0
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
if [ "$own_policy" = 1 ]; then
    "${sudo[@]}" rm -f "$policy"
fi
exit "$status"
