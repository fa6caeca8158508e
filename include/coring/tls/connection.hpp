// SPDX-License-Identifier: MIT
// What get_extra_info tells about a TLS connection: "ssl_object", "peercert", "cipher".
#pragma once

#include <string>
#include <vector>

struct ssl_st; // OpenSSL's SSL

namespace coring::tls {

/// The TLS side of a connection (get_extra_info("ssl_object"), Python's SSLObject). Valid while
/// the connection's transport lives.
class SslObject {
public:
    explicit SslObject(ssl_st* ssl) noexcept : ssl_(ssl) {}

    /// "TLSv1.3", "TLSv1.2".
    std::string version() const;

    /// The negotiated cipher suite's name.
    std::string cipher() const;

    /// The protocol ALPN selected, empty when none was.
    std::string selected_alpn_protocol() const;

    /// The name sent in SNI (client) or received (server), empty when none.
    std::string server_hostname() const;

    /// Whether this end is the server.
    bool server_side() const noexcept;

    /// The OpenSSL object, for what this class does not cover.
    ssl_st* native() const noexcept { return ssl_; }

private:
    ssl_st* ssl_;
};

/// The peer's certificate (get_extra_info("peercert"), Python's getpeercert()), present when
/// the peer sent one.
struct PeerCertificate {
    std::string subject;                        // "CN=localhost, O=coring tests"
    std::string issuer;                         // the same form
    std::string not_before;                     // "Jan  1 00:00:00 2026 GMT", as Python's notBefore
    std::string not_after;                      // as Python's notAfter
    std::string serial_number;                  // upper-case hex
    std::vector<std::string> subject_alt_names; // "DNS:localhost", "IP Address:127.0.0.1"
};

/// get_extra_info("cipher"): Python's (name, protocol, secret bits).
struct CipherInfo {
    std::string name;
    std::string protocol;
    int secret_bits = 0;
};

} // namespace coring::tls
