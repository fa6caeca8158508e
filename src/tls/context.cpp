// SPDX-License-Identifier: MIT
// SslContext: OpenSSL's SSL_CTX with Python's defaults.
#include <coring/tls/context.hpp>
#include <coring/tls/errors.hpp>

#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include "tls_internal.hpp"

namespace coring::tls {

namespace {

std::shared_ptr<SslContext::State> new_state(const SSL_METHOD* method, bool server) {
    auto state = std::make_shared<SslContext::State>();
    ERR_clear_error();
    state->ctx = SSL_CTX_new(method);
    if (state->ctx == nullptr) {
        detail::throw_ssl_error("SSL_CTX_new");
    }
    state->server = server;
    SSL_CTX_set_min_proto_version(state->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(state->ctx,
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Writes of any size through memory BIOs; the buffer may move between SSL_write retries.
    SSL_CTX_set_mode(state->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    return state;
}

void check_readable(const std::string& path, const char* what) {
    struct stat st {};

    if (::stat(path.c_str(), &st) != 0) {
        throw std::system_error(errno, std::generic_category(), fmt::format("{} {}", what, path));
    }
}

// The server's ALPN choice: the first of its own protocols that the client offers.
int select_alpn(SSL*,
                const unsigned char** out,
                unsigned char* outlen,
                const unsigned char* in,
                unsigned int inlen,
                void* arg) {
    const auto* state = static_cast<const SslContext::State*>(arg);
    const auto* mine = reinterpret_cast<const unsigned char*>(state->alpn_wire.data());
    auto mine_len = static_cast<unsigned>(state->alpn_wire.size());
    for (unsigned i = 0; i < mine_len; i += 1u + mine[i]) {
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (mine[i] == in[j] && std::equal(mine + i + 1, mine + i + 1 + mine[i], in + j + 1)) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; // RFC 7301: no_application_protocol
}

} // namespace

SslContext SslContext::client() {
    auto state = new_state(TLS_client_method(), false);
    if (SSL_CTX_set_default_verify_paths(state->ctx) != 1) {
        detail::throw_ssl_error("loading the system's CA certificates");
    }
    SSL_CTX_set_verify(state->ctx, SSL_VERIFY_PEER, nullptr);
    state->check_hostname = true;
    return SslContext(std::move(state));
}

SslContext SslContext::server(const std::string& certfile, const std::string& keyfile) {
    auto state = new_state(TLS_server_method(), true);
    SslContext ctx(std::move(state));
    ctx.load_cert_chain(certfile, keyfile);
    return ctx;
}

void SslContext::load_verify_locations(const std::string& cafile) {
    struct stat st {};

    check_readable(cafile, "load_verify_locations:");
    ::stat(cafile.c_str(), &st);
    bool dir = S_ISDIR(st.st_mode);
    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(
                state_->ctx, dir ? nullptr : cafile.c_str(), dir ? cafile.c_str() : nullptr) != 1) {
        detail::throw_ssl_error(fmt::format("load_verify_locations {}", cafile));
    }
}

void SslContext::load_cert_chain(const std::string& certfile, const std::string& keyfile) {
    check_readable(certfile, "load_cert_chain: certificate");
    check_readable(keyfile, "load_cert_chain: key");
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(state_->ctx, certfile.c_str()) != 1) {
        detail::throw_ssl_error(fmt::format("load_cert_chain: certificate {}", certfile));
    }
    if (SSL_CTX_use_PrivateKey_file(state_->ctx, keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
        detail::throw_ssl_error(fmt::format("load_cert_chain: key {}", keyfile));
    }
    if (SSL_CTX_check_private_key(state_->ctx) != 1) {
        ERR_clear_error();
        throw ValueError(
                fmt::format("load_cert_chain: the key {} does not match the certificate {}",
                            keyfile,
                            certfile));
    }
}

void SslContext::set_alpn_protocols(const std::vector<std::string>& protocols) {
    std::string wire;
    for (const std::string& p : protocols) {
        if (p.empty() || p.size() > 255) {
            throw ValueError(
                    fmt::format("ALPN protocol names are 1 to 255 bytes, not {}", p.size()));
        }
        wire += static_cast<char>(p.size());
        wire += p;
    }
    state_->alpn_wire = std::move(wire);
    if (state_->server) {
        SSL_CTX_set_alpn_select_cb(state_->ctx, &select_alpn, state_.get());
    } else if (SSL_CTX_set_alpn_protos(
                       state_->ctx,
                       reinterpret_cast<const unsigned char*>(state_->alpn_wire.data()),
                       static_cast<unsigned>(state_->alpn_wire.size())) != 0) {
        detail::throw_ssl_error("set_alpn_protocols");
    }
}

void SslContext::set_verify_mode(VerifyMode mode) {
    if (mode == VerifyMode::none && state_->check_hostname) {
        throw ValueError("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
    }
    int flags = SSL_VERIFY_NONE;
    if (mode != VerifyMode::none) {
        flags = SSL_VERIFY_PEER;
        if (mode == VerifyMode::required && state_->server) {
            flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        }
    }
    SSL_CTX_set_verify(state_->ctx, flags, nullptr);
}

VerifyMode SslContext::verify_mode() const noexcept {
    int flags = SSL_CTX_get_verify_mode(state_->ctx);
    if ((flags & SSL_VERIFY_PEER) == 0) {
        return VerifyMode::none;
    }
    if (state_->server && (flags & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) == 0) {
        return VerifyMode::optional;
    }
    return VerifyMode::required;
}

void SslContext::set_check_hostname(bool check) {
    if (check && verify_mode() == VerifyMode::none) {
        set_verify_mode(VerifyMode::required);
    }
    state_->check_hostname = check;
}

bool SslContext::check_hostname() const noexcept {
    return state_->check_hostname;
}

void SslContext::set_minimum_version(TlsVersion version) {
    SSL_CTX_set_min_proto_version(state_->ctx,
                                  version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
}

void SslContext::set_release_buffers(bool release) {
    if (release) {
        SSL_CTX_set_mode(state_->ctx, SSL_MODE_RELEASE_BUFFERS);
    } else {
        SSL_CTX_clear_mode(state_->ctx, SSL_MODE_RELEASE_BUFFERS);
    }
}

bool SslContext::release_buffers() const noexcept {
    return (SSL_CTX_get_mode(state_->ctx) & SSL_MODE_RELEASE_BUFFERS) != 0;
}

bool SslContext::server_side() const noexcept {
    return state_->server;
}

ssl_ctx_st* SslContext::native() const noexcept {
    return state_->ctx;
}

Task<> SslContext::wrap(StreamReader& reader,
                        StreamWriter& writer,
                        coring::detail::TlsRole role,
                        std::string_view server_hostname,
                        std::chrono::milliseconds handshake_timeout,
                        std::chrono::milliseconds shutdown_timeout) const {
    return detail::tls_wrap(
            state_, reader, writer, role, server_hostname, handshake_timeout, shutdown_timeout);
}

std::shared_ptr<const coring::detail::TlsProvider> SslContext::retain() const {
    return std::make_shared<SslContext>(*this);
}

} // namespace coring::tls
