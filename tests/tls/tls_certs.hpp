// SPDX-License-Identifier: MIT
// Throwaway certificates for the TLS tests, made with the OpenSSL API (EC P-256, SHA-256): a
// CA, a server certificate for localhost / 127.0.0.1 / ::1, an expired one, one for another
// host, a client certificate, and an untrusted CA's server certificate. Written once per
// process as PEM files in a temporary directory (removed at exit).
#pragma once

#include <coring/tls.hpp>

#include <string>

namespace coring::test {

struct TlsFiles {
    std::string dir;
    std::string ca;          // the CA certificate tests trust
    std::string server_cert; // CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1
    std::string server_key;
    std::string expired_cert; // as server_cert, valid until yesterday
    std::string expired_key;
    std::string wrong_host_cert; // SAN DNS:wrong.example only
    std::string wrong_host_key;
    std::string client_cert; // CN=coring test client, for client authentication
    std::string client_key;
    std::string untrusted_cert; // for localhost, signed by a CA nobody trusts
    std::string untrusted_key;
};

/// The files, made on first use. Thread safety: call from one thread.
const TlsFiles& tls_files();

/// A server context with server_cert and server_key.
coring::tls::SslContext server_ctx();

/// SslContext::client() that also trusts the test CA.
coring::tls::SslContext client_ctx();

/// The tests connect to 127.0.0.1 and name "localhost" for SNI and verification: a minimal
/// system (a fresh debootstrap chroot) has no /etc/hosts, so "localhost" may not resolve.
inline const coring::HostName localhost("localhost");

} // namespace coring::test
