// SPDX-License-Identifier: MIT
// TLS errors (Python's ssl.SSLError family), thrown by the streams of coring::tls.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace coring::tls {

/// A TLS protocol error (ssl.SSLError). Like Python's, it is an OS error: catching
/// std::system_error catches it. what() is "[SSL: REASON] reason", as Python prints it.
class SslError : public std::system_error {
public:
    /// message: the whole message; reason: OpenSSL's reason code ("WRONG_VERSION_NUMBER").
    explicit SslError(std::string message, std::string reason = {}, std::string library = "SSL")
        : std::system_error(EPROTO, std::generic_category()), message_(std::move(message)),
          reason_(std::move(reason)), library_(std::move(library)) {}

    const char* what() const noexcept override { return message_.c_str(); }

    /// OpenSSL's reason code, upper case ("WRONG_VERSION_NUMBER"); empty when there is none.
    const std::string& reason() const noexcept { return reason_; }

    /// The library that raised it ("SSL", "X509" ...).
    const std::string& library() const noexcept { return library_; }

private:
    std::string message_;
    std::string reason_;
    std::string library_;
};

/// The peer's certificate failed verification (ssl.SSLCertVerificationError): untrusted,
/// expired, or not valid for the host name.
class SslCertVerificationError : public SslError {
public:
    SslCertVerificationError(std::string message, long verify_code, std::string verify_message)
        : SslError(std::move(message), "CERTIFICATE_VERIFY_FAILED"), verify_code_(verify_code),
          verify_message_(std::move(verify_message)) {}

    /// OpenSSL's X509_V_ERR_* code.
    long verify_code() const noexcept { return verify_code_; }

    /// "certificate has expired", "Hostname mismatch, certificate is not valid for 'x'." ...
    const std::string& verify_message() const noexcept { return verify_message_; }

private:
    long verify_code_;
    std::string verify_message_;
};

/// The peer closed the connection without TLS's close_notify (ssl.SSLEOFError): the data may
/// have been cut short, so it is not taken as a clean end of stream.
class SslEofError : public SslError {
public:
    explicit SslEofError(std::string message) : SslError(std::move(message), "UNEXPECTED_EOF") {}
};

} // namespace coring::tls
