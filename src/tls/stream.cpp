// SPDX-License-Identifier: MIT
// TLS over the stream layer: the handshake over an open reader/writer pair, then a TlsFilter on
// the transport, which decrypts and encrypts through memory BIOs. OpenSSL never touches the
// socket; every byte goes through the transport's io_uring operations.
#include <coring/errors.hpp>
#include <coring/streams.hpp>
#include <coring/timeout.hpp>
#include <coring/tls/connection.hpp>
#include <coring/tls/errors.hpp>

#include <coring/detail/byte_buffer.hpp>
#include <coring/detail/stream_transport.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <any>
#include <cctype>
#include <climits>
#include <memory>
#include <string>

#include "tls_internal.hpp"

namespace coring::tls {

namespace detail {

namespace {

using coring::detail::ByteBuffer;

// The most plaintext one encrypt() takes: larger writes go out in several sends, so a 64 MiB
// write does not hold 64 MiB of ciphertext besides it.
constexpr std::size_t max_encrypt = 256 * 1024;

// Room reserved in the reader's buffer for each SSL_read: one full record.
constexpr std::size_t record_room = 16 * 1024 + 256;

std::string reason_code(const char* reason) {
    std::string code = reason != nullptr ? reason : "UNKNOWN";
    for (char& c : code) {
        c = c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return code;
}

/// Empties this thread's OpenSSL error queue before an SSL call, so SSL_get_error sees only that
/// call's errors. The queue is almost always empty already, and looking costs a fraction of
/// ERR_clear_error's walk over all its slots.
inline void clear_errors() noexcept {
    if (ERR_peek_error() != 0) {
        ERR_clear_error();
    }
}

/// Moves what OpenSSL has written into bio to the end of out.
void drain_bio(BIO* bio, ByteBuffer& out) {
    std::size_t pending = BIO_ctrl_pending(bio);
    if (pending == 0) {
        return;
    }
    out.reserve_tail(pending);
    int n = BIO_read(bio, out.tail(), static_cast<int>(pending));
    if (n > 0) {
        out.commit(static_cast<std::size_t>(n));
    }
}

/// One TLS connection's OpenSSL state, between the transport and the streams.
class TlsFilter final : public coring::detail::StreamFilter {
public:
    TlsFilter(std::shared_ptr<SslContext::State> ctx, bool server, std::string_view hostname)
        : ctx_(std::move(ctx)) {
        ERR_clear_error();
        ssl_ = SSL_new(ctx_->ctx);
        if (ssl_ == nullptr) {
            throw_ssl_error("SSL_new");
        }
        rbio_ = BIO_new(BIO_s_mem());
        wbio_ = BIO_new(BIO_s_mem());
        if (rbio_ == nullptr || wbio_ == nullptr) {
            BIO_free(rbio_);
            BIO_free(wbio_);
            SSL_free(ssl_);
            throw_ssl_error("BIO_new");
        }
        // A read BIO that is empty asks for more rather than reporting EOF.
        BIO_set_mem_eof_return(rbio_, -1);
        BIO_set_mem_eof_return(wbio_, -1);
        SSL_set_bio(ssl_, rbio_, wbio_); // ssl_ owns both now
        if (server) {
            SSL_set_accept_state(ssl_);
            return;
        }
        SSL_set_connect_state(ssl_);
        if (!hostname.empty()) {
            hostname_ = std::string(hostname);
            // SNI is for names, not addresses (RFC 6066); the check covers both.
            bool is_ip = hostname_.find(':') != std::string::npos ||
                         hostname_.find_first_not_of("0123456789.") == std::string::npos;
            if (!is_ip) {
                // SSL_set_tlsext_host_name, without its C cast.
                SSL_ctrl(ssl_,
                         SSL_CTRL_SET_TLSEXT_HOSTNAME,
                         TLSEXT_NAMETYPE_host_name,
                         const_cast<char*>(hostname_.c_str()));
            }
            if (ctx_->check_hostname) {
                X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, hostname_.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, hostname_.c_str(), 0);
                if (ok != 1) {
                    throw ValueError(fmt::format("invalid server_hostname '{}'", hostname_));
                }
            }
        } else if (ctx_->check_hostname) {
            throw ValueError("check_hostname requires server_hostname");
        }
    }

    TlsFilter(const TlsFilter&) = delete;
    TlsFilter& operator=(const TlsFilter&) = delete;

    ~TlsFilter() override { SSL_free(ssl_); }

    SSL* ssl() const noexcept { return ssl_; }

    const std::string& hostname() const noexcept { return hostname_; }

    /// One step of the handshake: true when it is complete. Wire bytes to send are appended to
    /// out (an alert too, before the error is thrown).
    bool handshake_step(ByteBuffer& out) {
        clear_errors();
        int rc = SSL_do_handshake(ssl_);
        drain_bio(wbio_, out);
        if (rc == 1) {
            return true;
        }
        int err = SSL_get_error(ssl_, rc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            return false;
        }
        std::rethrow_exception(make_ssl_error(ssl_, err, "SSL handshake"));
    }

    /// Hands wire bytes received during the handshake to OpenSSL.
    void feed(std::string_view wire) {
        if (!wire.empty()) {
            BIO_write(rbio_, wire.data(), static_cast<int>(wire.size()));
        }
    }

    bool decrypt(ByteBuffer& in, ByteBuffer& out) override {
        if (!in.empty()) {
            BIO_write(rbio_, in.data(), static_cast<int>(in.size()));
            in.clear();
        }
        for (;;) {
            out.reserve_tail(record_room);
            clear_errors();
            int n = SSL_read(
                    ssl_, out.tail(), static_cast<int>(std::min<std::size_t>(out.room(), INT_MAX)));
            if (n > 0) {
                out.commit(static_cast<std::size_t>(n));
                continue;
            }
            int err = SSL_get_error(ssl_, n);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                return false;
            }
            if (err == SSL_ERROR_ZERO_RETURN) {
                return true; // close_notify
            }
            std::rethrow_exception(make_ssl_error(ssl_, err, "SSL read"));
        }
    }

    void encrypt(ByteBuffer& in, ByteBuffer& out) override {
        std::size_t budget = max_encrypt;
        while (!in.empty() && budget > 0) {
            std::size_t n = std::min(in.size(), budget);
            clear_errors();
            int rc = SSL_write(ssl_, in.data(), static_cast<int>(n));
            if (rc <= 0) {
                std::rethrow_exception(make_ssl_error(ssl_, SSL_get_error(ssl_, rc), "SSL write"));
            }
            in.consume(static_cast<std::size_t>(rc));
            budget -= static_cast<std::size_t>(rc);
        }
        drain_bio(wbio_, out);
    }

    bool wants_write() const noexcept override { return BIO_ctrl_pending(wbio_) > 0; }

    void close_notify(ByteBuffer& out) noexcept override {
        ERR_clear_error();
        SSL_shutdown(ssl_); // sends ours; the peer's is not waited for
        ERR_clear_error();
        try {
            drain_bio(wbio_, out);
        } catch (...) {
            // No memory for the alert: the connection closes without it.
        }
    }

    std::exception_ptr unexpected_eof() noexcept override {
        try {
            throw SslEofError("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of "
                              "protocol: the peer closed the connection without close_notify");
        } catch (...) {
            return std::current_exception();
        }
    }

    std::any extra_info(std::string_view name) const override;

private:
    std::shared_ptr<SslContext::State> ctx_; // keeps the SSL_CTX alive
    SSL* ssl_ = nullptr;
    BIO* rbio_ = nullptr; // owned by ssl_
    BIO* wbio_ = nullptr; // owned by ssl_
    std::string hostname_;
};

std::string name_oneline(X509_NAME* name) {
    if (name == nullptr) {
        return {};
    }
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n > 0 ? n : 0));
    BIO_free(bio);
    // XN_FLAG_ONELINE writes "CN = x, O = y": Python-like "CN=x, O=y".
    std::string compact;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out.compare(i, 3, " = ") == 0) {
            compact += '=';
            i += 2;
        } else {
            compact += out[i];
        }
    }
    return compact;
}

std::string time_string(const ASN1_TIME* t) {
    BIO* bio = BIO_new(BIO_s_mem());
    ASN1_TIME_print(bio, t);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n > 0 ? n : 0));
    BIO_free(bio);
    return out;
}

std::any TlsFilter::extra_info(std::string_view name) const {
    if (name == "ssl_object") {
        return SslObject(ssl_);
    }
    if (name == "cipher") {
        const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
        if (c == nullptr) {
            return {};
        }
        return CipherInfo{
                SSL_CIPHER_get_name(c), SSL_get_version(ssl_), SSL_CIPHER_get_bits(c, nullptr)};
    }
    if (name == "peercert") {
        X509* cert = SSL_get1_peer_certificate(ssl_);
        if (cert == nullptr) {
            return {};
        }
        PeerCertificate pc;
        pc.subject = name_oneline(X509_get_subject_name(cert));
        pc.issuer = name_oneline(X509_get_issuer_name(cert));
        pc.not_before = time_string(X509_get0_notBefore(cert));
        pc.not_after = time_string(X509_get0_notAfter(cert));
        if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
            char* hex = BN_bn2hex(bn);
            pc.serial_number = hex;
            OPENSSL_free(hex);
            BN_free(bn);
        }
        auto* sans = static_cast<GENERAL_NAMES*>(
                X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
        for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type == GEN_DNS) {
                const ASN1_STRING* s = gn->d.dNSName;
                pc.subject_alt_names.push_back(
                        "DNS:" +
                        std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                    static_cast<std::size_t>(ASN1_STRING_length(s))));
            } else if (gn->type == GEN_IPADD) {
                const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
                char text[INET6_ADDRSTRLEN] = {};
                int len = ASN1_STRING_length(ip);
                int family = len == 4 ? AF_INET : (len == 16 ? AF_INET6 : 0);
                if (family != 0 &&
                    ::inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr) {
                    pc.subject_alt_names.push_back(std::string("IP Address:") + text);
                }
            }
        }
        GENERAL_NAMES_free(sans);
        X509_free(cert);
        return pc;
    }
    return {};
}

/// Sends what is in out and waits until the kernel has all of it (the handshake's messages
/// must be out before the filter takes over the writer).
Task<> send_all(StreamWriter& writer, ByteBuffer& out) {
    if (out.empty()) {
        co_return;
    }
    writer.write(out.view());
    out.clear();
    auto [low, high] = writer.get_write_buffer_limits();
    writer.set_write_buffer_limits(0, 0);
    try {
        co_await writer.drain();
    } catch (...) {
        writer.set_write_buffer_limits(high, low);
        throw;
    }
    writer.set_write_buffer_limits(high, low);
}

Task<> handshake(TlsFilter& filter, StreamReader& reader, StreamWriter& writer) {
    ByteBuffer out;
    for (;;) {
        bool done = false;
        std::exception_ptr error;
        try {
            done = filter.handshake_step(out);
        } catch (...) {
            error = std::current_exception();
        }
        if (error) {
            // Send the alert OpenSSL wrote (the peer learns why), then fail.
            try {
                co_await send_all(writer, out);
            } catch (...) {
            }
            std::rethrow_exception(error);
        }
        co_await send_all(writer, out);
        if (done) {
            co_return;
        }
        std::string wire = co_await reader.read(64 * 1024);
        if (wire.empty()) {
            throw ConnectionResetError(
                    ECONNRESET,
                    "SSL handshake: the peer closed the connection during the handshake");
        }
        filter.feed(wire);
    }
}

} // namespace

std::exception_ptr make_ssl_error(SSL* ssl, int err, std::string_view what) {
    try {
        unsigned long e = ERR_peek_last_error();
        if (ssl != nullptr && err == SSL_ERROR_SSL &&
            ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            long vr = SSL_get_verify_result(ssl);
            std::string vmsg = X509_verify_cert_error_string(vr);
            if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
                const char* host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
                X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
                const char* peer = X509_VERIFY_PARAM_get0_host(param, 0);
                std::string name = peer != nullptr ? peer : (host != nullptr ? host : "");
                if (vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
                    vmsg = "IP address mismatch, certificate is not valid for the address.";
                } else {
                    vmsg = fmt::format("Hostname mismatch, certificate is not valid for '{}'.",
                                       name);
                }
            }
            ERR_clear_error();
            throw SslCertVerificationError(
                    fmt::format("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {}",
                                vmsg),
                    vr,
                    vmsg);
        }
        if (e != 0) {
            const char* reason = ERR_reason_error_string(e);
            const char* lib = ERR_lib_error_string(e);
            std::string code = reason_code(reason);
            std::string library = lib != nullptr && std::string_view(lib) == "SSL routines"
                                          ? "SSL"
                                          : (lib != nullptr ? lib : "SSL");
            if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                ERR_clear_error();
                throw SslEofError(fmt::format("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in "
                                              "violation of protocol ({})",
                                              what));
            }
            ERR_clear_error();
            throw SslError(fmt::format("[{}: {}] {} ({})",
                                       library == "SSL" ? "SSL" : library,
                                       code,
                                       reason != nullptr ? reason : "unknown error",
                                       what),
                           code,
                           library);
        }
        if (err == SSL_ERROR_SYSCALL) {
            throw SslEofError(fmt::format("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in "
                                          "violation of protocol ({})",
                                          what));
        }
        throw SslError(fmt::format("{}: SSL error {}", what, err));
    } catch (...) {
        return std::current_exception();
    }
}

void throw_ssl_error(std::string_view what) {
    std::rethrow_exception(make_ssl_error(nullptr, 0, what));
}

Task<> tls_wrap(std::shared_ptr<SslContext::State> ctx,
                StreamReader& reader,
                StreamWriter& writer,
                coring::detail::TlsRole role,
                std::string_view server_hostname,
                std::chrono::milliseconds handshake_timeout,
                std::chrono::milliseconds shutdown_timeout) {
    coring::detail::StreamTransport& t = writer.transport();
    if (t.filter() != nullptr) {
        throw RuntimeError("the connection already uses TLS");
    }
    bool server = role == coring::detail::TlsRole::server;
    if (server != ctx->server) {
        throw ValueError(server ? "a server connection needs a server SslContext"
                                : "a client connection needs a client SslContext");
    }
    auto filter = std::make_unique<TlsFilter>(std::move(ctx), server, server_hostname);
    bool timed_out = false;
    try {
        co_await coring::timeout(handshake_timeout).run([&](Timeout&) -> Task<> {
            co_await handshake(*filter, reader, writer);
        });
    } catch (const TimeoutError&) {
        timed_out = true;
    }
    if (timed_out) {
        throw TimeoutError(fmt::format(
                "SSL handshake is taking longer than {} seconds: aborting the connection",
                std::chrono::duration<double>(handshake_timeout).count()));
    }
    t.set_filter(std::move(filter), shutdown_timeout);
}

} // namespace detail

// ---- SslObject ----

std::string SslObject::version() const {
    return SSL_get_version(ssl_);
}

std::string SslObject::cipher() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    return c != nullptr ? SSL_CIPHER_get_name(c) : "";
}

std::string SslObject::selected_alpn_protocol() const {
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::string SslObject::server_hostname() const {
    const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    return name != nullptr ? name : "";
}

bool SslObject::server_side() const noexcept {
    return SSL_is_server(ssl_) == 1;
}

} // namespace coring::tls
