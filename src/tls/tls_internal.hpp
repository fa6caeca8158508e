// SPDX-License-Identifier: MIT
// Internals of coring::tls shared by its source files: the context's state, OpenSSL errors as
// exceptions, and the handshake that puts a TlsFilter on a transport.
#pragma once

#include <coring/tls/context.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <exception>
#include <string>
#include <string_view>

namespace coring::tls {

struct SslContext::State {
    SSL_CTX* ctx = nullptr;
    bool server = false;
    bool check_hostname = false;
    std::string alpn_wire; // the client's ALPN list in wire format; the server's choices

    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    ~State() { SSL_CTX_free(ctx); }
};

namespace detail {

/// The exception for OpenSSL's error queue (and SSL_get_error's code err, when ssl is given):
/// SslCertVerificationError for a failed verification, SslEofError for an EOF without
/// close_notify, else SslError "[SSL: REASON] reason". what: the operation, for errors without
/// a queue entry. Clears the queue.
std::exception_ptr make_ssl_error(SSL* ssl, int err, std::string_view what);

/// Throws make_ssl_error(nullptr, 0, what).
[[noreturn]] void throw_ssl_error(std::string_view what);

/// Runs the handshake over the pair and puts the TLS filter on its transport.
Task<> tls_wrap(std::shared_ptr<SslContext::State> ctx,
                StreamReader& reader,
                StreamWriter& writer,
                coring::detail::TlsRole role,
                std::string_view server_hostname,
                std::chrono::milliseconds handshake_timeout,
                std::chrono::milliseconds shutdown_timeout);

} // namespace detail

} // namespace coring::tls
