#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes throwaway certificates with the openssl CLI for the TLS examples and benchmarks: a CA
# and a server certificate it signs, for DNS:localhost and IP:127.0.0.1 (EC P-256, SHA-256,
# valid 7 days).
#
# Usage: make_certs.sh DIR    writes DIR/ca.pem, DIR/server.pem and DIR/server.key
set -euo pipefail
dir="${1:?usage: make_certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" 2>/dev/null || { echo "make_certs.sh: '$*' failed" >&2; "$@"; exit 1; }; }

quiet openssl ecparam -name prime256v1 -genkey -noout -out ca.key
quiet openssl req -new -x509 -sha256 -days 7 -key ca.key -out ca.pem \
    -subj "/O=coring examples/CN=coring example CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

quiet openssl ecparam -name prime256v1 -genkey -noout -out server.key
quiet openssl req -new -sha256 -key server.key -out server.csr -subj "/O=coring examples/CN=localhost"
cat >server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
quiet openssl x509 -req -sha256 -days 7 -in server.csr -CA ca.pem -CAkey ca.key \
    -CAcreateserial -extfile server.ext -out server.pem
rm -f server.csr server.ext ca.srl
chmod 600 ca.key server.key
