// SPDX-License-Identifier: MIT
// libFuzzer target: a coring TLS client (coring::tls, StreamWriter::start_tls) whose server is
// the fuzzer (issue 12). The input's bytes are what the "server" sends over a socketpair, in
// chunks, followed by EOF; the client must end with an SslError or a ConnectionError (or,
// were a handshake ever to succeed, read to EOF), never crash, leak, hang, or throw anything
// else.
//
// Input: byte 0, options: bit 0 TLS 1.3 only, bit 1 offer ALPN, bit 2 no certificate
// verification (lets a forged chain through to the key exchange); byte 1, the chunk size
// (1 + byte, 0 = all at once); then the server's bytes (at most max_wire).
#include <coring/errors.hpp>
#include <coring/net/socket.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/tls.hpp>
#include <coring/wait.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_wire = 16 * 1024; // far below the socketpair's buffer

[[noreturn]] void fail(const char* what, const char* detail) {
    std::fprintf(stderr, "fuzz_tls_client: %s: %s\n", what, detail);
    std::abort();
}

// One client context per option set, made once: making them per input would only measure
// OpenSSL's context set-up.
coring::tls::SslContext& context(unsigned options) {
    static std::optional<coring::tls::SslContext> contexts[8];
    std::optional<coring::tls::SslContext>& ctx = contexts[options & 7];
    if (!ctx) {
        ctx = coring::tls::SslContext::client();
        if ((options & 1) != 0) {
            ctx->set_minimum_version(coring::tls::TlsVersion::tls1_3);
        }
        if ((options & 2) != 0) {
            ctx->set_alpn_protocols({"h2", "http/1.1"});
        }
        if ((options & 4) != 0) {
            ctx->set_check_hostname(false);
            ctx->set_verify_mode(coring::tls::VerifyMode::none);
        }
    }
    return *ctx;
}

// The fuzzer's server: sends wire in chunks, one per loop iteration, then EOF.
coring::Task<> serve(int fd, std::string_view wire, std::size_t chunk) {
    std::size_t sent = 0;
    while (sent < wire.size()) {
        std::size_t n = std::min(chunk, wire.size() - sent);
        ssize_t k = ::send(fd, wire.data() + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k <= 0) {
            break; // the client closed (or, impossibly here, a full buffer): stop sending
        }
        sent += static_cast<std::size_t>(k);
        co_await coring::sleep(0s);
    }
    ::shutdown(fd, SHUT_WR);
}

coring::Task<> run_client(const std::uint8_t* data, std::size_t size) {
    unsigned options = size > 0 ? data[0] : 0;
    std::size_t chunk = size > 1 && data[1] != 0 ? std::size_t{data[1]} : max_wire;
    std::string_view wire;
    if (size > 2) {
        wire = std::string_view(reinterpret_cast<const char*>(data + 2),
                                std::min(size - 2, max_wire));
    }
    auto [client, server] = coring::socketpair();
    auto [reader, writer] = co_await coring::open_connection(std::move(client));
    auto peer = coring::create_task(serve(server.fd(), wire, chunk));
    try {
        // The handshake timeout is a hang detector: the peer's EOF always ends the handshake
        // long before it.
        co_await writer.start_tls(context(options),
                                  {.server_hostname = "localhost", .ssl_handshake_timeout = 5s});
        // A handshake that succeeded: read what follows, to EOF or the error.
        co_await coring::wait_for(reader.read(), 5s);
    } catch (const coring::tls::SslError&) {
        // A protocol error, an alert, a failed verification, an EOF without close_notify.
    } catch (const coring::ConnectionError&) {
        // The peer closed during the handshake.
    } catch (const coring::TimeoutError& e) {
        fail("hang", e.what());
    } catch (const std::exception& e) {
        fail("unexpected exception", e.what());
    }
    co_await peer;
    writer.close();
    try {
        co_await writer.wait_closed();
    } catch (const std::exception&) {
        // The connection's error, already seen.
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    coring::run(run_client(data, size)); // a fresh loop per input, closed at the end
    return 0;
}
