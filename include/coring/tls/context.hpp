// SPDX-License-Identifier: MIT
// SslContext (Python's ssl.SSLContext): the TLS settings open_connection, start_server and
// StreamWriter::start_tls take as their `ssl` argument.
#pragma once

#include <coring/streams.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct ssl_ctx_st; // OpenSSL's SSL_CTX

namespace coring::tls {

/// Whether and how the peer's certificate is verified (ssl.CERT_NONE / CERT_OPTIONAL /
/// CERT_REQUIRED).
enum class VerifyMode : std::uint8_t { none, optional, required };

/// Protocol versions for minimum_version (ssl.TLSVersion).
enum class TlsVersion : std::uint8_t { tls1_2, tls1_3 };

/// TLS settings shared by many connections. Copies share one OpenSSL SSL_CTX; a context may be
/// changed until its first connection and must then be left alone (as Python's). Loop thread
/// or any thread, but not concurrently with a connection using it.
class SslContext final : public detail::TlsProvider {
public:
    /// A client context as ssl.create_default_context(): verifies the server against the
    /// system's CA store and checks its host name; TLS 1.2 or newer; no renegotiation, no
    /// compression. Throws: SslError.
    static SslContext client();

    /// A server context with the certificate chain and private key from PEM files; TLS 1.2 or
    /// newer; clients are not asked for a certificate unless verify_mode says so.
    /// Throws: SslError (a missing or unreadable file names it), ValueError for a key that
    /// does not match the certificate.
    static SslContext server(const std::string& certfile, const std::string& keyfile);

    /// Trusts the CA certificates in a PEM file (or a directory of hashed ones) for verifying
    /// the peer, in addition to what is loaded already (load_verify_locations).
    void load_verify_locations(const std::string& cafile);

    /// Uses this certificate chain and key: a server's own, or a client certificate
    /// (load_cert_chain).
    void load_cert_chain(const std::string& certfile, const std::string& keyfile);

    /// ALPN protocols in order of preference ("h2", "http/1.1"). A server picks the first of
    /// its own list that the client offers.
    void set_alpn_protocols(const std::vector<std::string>& protocols);

    /// ssl.SSLContext.verify_mode. A server with `required` asks clients for a certificate
    /// and rejects those without a trusted one.
    void set_verify_mode(VerifyMode mode);

    VerifyMode verify_mode() const noexcept;

    /// ssl.SSLContext.check_hostname: a client checks the server's certificate against
    /// server_hostname. Turning it on sets verify_mode to required if it was none.
    void set_check_hostname(bool check);

    bool check_hostname() const noexcept;

    /// ssl.SSLContext.minimum_version (TLS 1.2 by default).
    void set_minimum_version(TlsVersion version);

    /// Whether OpenSSL frees a connection's record buffers while it waits (on by default, as
    /// in Python's ssl module): about 34 KiB less per idle connection, at three allocations
    /// per record exchanged. A server with few, busy connections may turn it off.
    void set_release_buffers(bool release);

    bool release_buffers() const noexcept;

    /// Whether this is a server context.
    bool server_side() const noexcept;

    /// The OpenSSL context, for settings this class does not cover.
    ssl_ctx_st* native() const noexcept;

    [[nodiscard]] Task<> wrap(StreamReader& reader,
                              StreamWriter& writer,
                              detail::TlsRole role,
                              std::string_view server_hostname,
                              std::chrono::milliseconds handshake_timeout,
                              std::chrono::milliseconds shutdown_timeout) const override;

    std::shared_ptr<const TlsProvider> retain() const override;

    struct State;

private:
    explicit SslContext(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

    std::shared_ptr<State> state_;
};

} // namespace coring::tls
