// SPDX-License-Identifier: MIT
// TLS streams (coring::tls) between coring peers on loopback: handshake, data both ways,
// verification errors, ALPN, start_tls, extra info, close_notify and its absence, timeouts,
// cancellation.
#include <coring/coring.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/tls.hpp>

#include <catch2/catch.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <any>
#include <chrono>
#include <string>

#include "net/net_helpers.hpp"
#include "support/test_support.hpp"
#include "tls/tls_certs.hpp"

using namespace std::chrono_literals;
using coring::StreamReader;
using coring::StreamWriter;
using coring::Task;
using coring::tls::SslContext;

namespace {

using coring::test::client_ctx;
using coring::test::localhost;
using coring::test::server_ctx;

Task<> tls_echo(StreamReader reader, StreamWriter writer) {
    char buf[4096];
    for (;;) {
        std::size_t n = co_await reader.read_into(buf);
        if (n == 0) {
            break;
        }
        writer.write(std::string_view(buf, n));
        co_await writer.drain();
    }
    writer.close();
    try {
        co_await writer.wait_closed();
    } catch (const coring::ConnectionError&) {
        // A TLS 1.3 client that closes without reading the session tickets resets the
        // connection: the echo's close_notify then meets ECONNRESET.
    }
}

} // namespace

CORING_TEST_CASE("TLS: a coring client and server exchange lines over TLS 1.3", "[tls]") {
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(tls_echo, "127.0.0.1", 0, {.ssl = sctx});
    SslContext cctx = client_ctx();
    auto [reader, writer] = co_await coring::open_connection(
            "127.0.0.1", coring::test::port_of(server), {.ssl = cctx});
    for (int i = 0; i < 10; ++i) {
        std::string line = "line " + std::to_string(i) + "\n";
        writer.write(line);
        std::string back = co_await reader.readline();
        CHECK(back == line);
    }
    auto obj = std::any_cast<coring::tls::SslObject>(writer.get_extra_info("ssl_object"));
    CHECK(obj.version() == "TLSv1.3");
    CHECK_FALSE(obj.server_side());
    auto cipher = std::any_cast<coring::tls::CipherInfo>(writer.get_extra_info("cipher"));
    CHECK(cipher.protocol == "TLSv1.3");
    CHECK(cipher.secret_bits >= 128);
    auto cert = std::any_cast<coring::tls::PeerCertificate>(writer.get_extra_info("peercert"));
    CHECK(cert.subject.find("CN=localhost") != std::string::npos);
    CHECK(cert.issuer.find("CN=coring test CA") != std::string::npos);
    CHECK(std::find(cert.subject_alt_names.begin(),
                    cert.subject_alt_names.end(),
                    "IP Address:127.0.0.1") != cert.subject_alt_names.end());
    CHECK(writer.get_extra_info("peername").has_value());
    CHECK_FALSE(writer.can_write_eof());
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: connections work with and without released record buffers", "[tls]") {
    SslContext sctx = server_ctx();
    CHECK(sctx.release_buffers()); // Python's default
    sctx.set_release_buffers(false);
    CHECK_FALSE(sctx.release_buffers());
    CHECK((SSL_CTX_get_mode(sctx.native()) & SSL_MODE_RELEASE_BUFFERS) == 0);
    auto server = co_await coring::start_server(tls_echo, "127.0.0.1", 0, {.ssl = sctx});
    SslContext cctx = client_ctx();
    CHECK(cctx.release_buffers());
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1",
                                             coring::test::port_of(server),
                                             {.ssl = cctx, .server_hostname = localhost});
    std::string big(100'000, 'x'); // several records each way
    for (int i = 0; i < 3; ++i) {
        big[static_cast<std::size_t>(i)] = static_cast<char>('a' + i);
        writer.write(big);
        std::string back = co_await reader.readexactly(big.size());
        CHECK(back == big);
    }
    sctx.set_release_buffers(true);
    CHECK(sctx.release_buffers());
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: the server's close_notify is a clean EOF for the client", "[tls]") {
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(
            [](StreamReader, StreamWriter w) -> Task<> {
                w.write("bye\n");
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1",
            0,
            {.ssl = sctx});
    SslContext cctx = client_ctx();
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1",
                                             coring::test::port_of(server),
                                             {.ssl = cctx, .server_hostname = localhost});
    std::string all = co_await reader.read();
    CHECK(all == "bye\n");
    CHECK(reader.at_eof());
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

TEST_CASE("TLS: verification failures raise SslCertVerificationError with the reason", "[tls]") {
    const auto& f = coring::test::tls_files();

    struct Case {
        std::string cert, key, host, message;
    };

    Case cases[] = {
            {f.untrusted_cert,
             f.untrusted_key,
             "localhost",
             "unable to get local issuer certificate"},
            {f.expired_cert, f.expired_key, "localhost", "certificate has expired"},
            {f.wrong_host_cert,
             f.wrong_host_key,
             "localhost",
             "Hostname mismatch, certificate is not valid for 'localhost'."},
    };
    for (const Case& c : cases) {
        DYNAMIC_SECTION(c.message) {
            coring::test::run_test([&]() -> Task<> {
                SslContext sctx = SslContext::server(c.cert, c.key);
                auto server =
                        co_await coring::start_server(tls_echo, "127.0.0.1", 0, {.ssl = sctx});
                SslContext cctx = client_ctx();
                std::string what = "no exception";
                long code = 0;
                try {
                    auto streams = co_await coring::open_connection(
                            "127.0.0.1",
                            coring::test::port_of(server),
                            {.ssl = cctx, .server_hostname = coring::HostName(c.host)});
                } catch (const coring::tls::SslCertVerificationError& e) {
                    what = e.verify_message();
                    code = e.verify_code();
                    CHECK(std::string(e.what()).find("CERTIFICATE_VERIFY_FAILED") !=
                          std::string::npos);
                }
                CHECK(what == c.message);
                CHECK(code != 0);
                server.close();
                co_await server.wait_closed();
            });
        }
    }
}

CORING_TEST_CASE("TLS: ALPN picks the server's first protocol the client offers", "[tls]") {
    SslContext sctx = server_ctx();
    sctx.set_alpn_protocols({"h2", "http/1.1"});
    auto server = co_await coring::start_server(tls_echo, "127.0.0.1", 0, {.ssl = sctx});
    SslContext cctx = client_ctx();
    cctx.set_alpn_protocols({"http/1.1", "h2"});
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1",
                                             coring::test::port_of(server),
                                             {.ssl = cctx, .server_hostname = localhost});
    auto obj = std::any_cast<coring::tls::SslObject>(writer.get_extra_info("ssl_object"));
    CHECK(obj.selected_alpn_protocol() == "h2");
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: start_tls upgrades an open plain connection on both sides", "[tls]") {
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(
            [&sctx](StreamReader r, StreamWriter w) -> Task<> {
                std::string hello = co_await r.readline(); // plaintext: "STARTTLS\n"
                if (hello != "STARTTLS\n") {
                    co_return;
                }
                w.write("GO\n");
                co_await w.start_tls(sctx);
                std::string secret = co_await r.readline();
                w.write("secure " + secret);
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1",
            0);
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1", coring::test::port_of(server));
    writer.write("STARTTLS\n");
    std::string go = co_await reader.readline();
    CHECK(go == "GO\n");
    SslContext cctx = client_ctx();
    co_await writer.start_tls(cctx, {.server_hostname = "localhost"});
    CHECK(writer.get_extra_info("ssl_object").has_value());
    writer.write("hello\n");
    std::string back = co_await reader.readline();
    CHECK(back == "secure hello\n");
    CO_CHECK_THROWS_AS(writer.start_tls(cctx), coring::RuntimeError);
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: a silent server hits the handshake timeout as TimeoutError", "[tls]") {
    // A plain server that never answers the ClientHello.
    auto server = co_await coring::start_server(
            [](StreamReader r, StreamWriter w) -> Task<> {
                static_cast<void>(co_await r.read()); // until the client gives up
                w.close();
            },
            "127.0.0.1",
            0);
    SslContext cctx = client_ctx();
    CO_CHECK_THROWS_WITH(
            coring::open_connection(
                    "127.0.0.1",
                    coring::test::port_of(server),
                    {.ssl = cctx, .server_hostname = localhost, .ssl_handshake_timeout = 200ms}),
            "SSL handshake is taking longer than 0.2 seconds: aborting the connection");
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: a server that closes during the handshake fails the connection", "[tls]") {
    auto server = co_await coring::start_server(
            [](StreamReader r, StreamWriter w) -> Task<> {
                static_cast<void>(co_await r.read(10)); // part of the ClientHello
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1",
            0);
    SslContext cctx = client_ctx();
    CO_CHECK_THROWS_AS(coring::open_connection("127.0.0.1",
                                               coring::test::port_of(server),
                                               {.ssl = cctx, .server_hostname = localhost}),
                       coring::ConnectionResetError);
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: a plain-text peer gets an SslError naming OpenSSL's reason", "[tls]") {
    auto server = co_await coring::start_server(
            [](StreamReader r, StreamWriter w) -> Task<> {
                static_cast<void>(co_await r.read(10));
                w.write("HTTP/1.1 400 Bad Request\r\n\r\n");
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1",
            0);
    SslContext cctx = client_ctx();
    std::string reason = "no exception";
    try {
        auto s = co_await coring::open_connection("127.0.0.1",
                                                  coring::test::port_of(server),
                                                  {.ssl = cctx, .server_hostname = localhost});
    } catch (const coring::tls::SslError& e) {
        reason = e.reason();
        CHECK(std::string(e.what()).find("[SSL: ") == 0);
    }
    CHECK(reason == "WRONG_VERSION_NUMBER");
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: cancelling a task in the handshake closes its socket", "[tls]") {
    auto server = co_await coring::start_server(
            [](StreamReader r, StreamWriter w) -> Task<> {
                static_cast<void>(co_await r.read());
                w.close();
            },
            "127.0.0.1",
            0);
    SslContext cctx = client_ctx();
    std::uint16_t port = coring::test::port_of(server);
    // Named: a coroutine lambda's captures live in its closure, which must outlive the task
    // (a temporary closure dies at the end of the create_task statement: docs/pitfalls.md).
    auto connect = [&]() -> Task<> {
        auto s = co_await coring::open_connection(
                "127.0.0.1", port, {.ssl = cctx, .server_hostname = localhost});
    };
    auto task = coring::create_task(connect());
    co_await coring::sleep(50ms);
    task.cancel();
    CO_CHECK_THROWS_AS(task, coring::CancelledError);
    server.close();
    co_await server.wait_closed(); // the leak check sees no socket left open
}

CORING_TEST_CASE("TLS: a cancelled read loses nothing, the next read gets the bytes", "[tls]") {
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(tls_echo, "127.0.0.1", 0, {.ssl = sctx});
    SslContext cctx = client_ctx();
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1",
                                             coring::test::port_of(server),
                                             {.ssl = cctx, .server_hostname = localhost});
    for (int i = 0; i < 20; ++i) {
        auto t = coring::create_task(reader.readline());
        co_await coring::sleep(0s);
        writer.write("x" + std::to_string(i) + "\n");
        co_await coring::sleep(i % 3 == 0 ? 0ms : 1ms);
        t.cancel();
        std::string line;
        bool cancelled = false;
        try {
            line = co_await t;
        } catch (const coring::CancelledError&) {
            cancelled = true;
        }
        if (cancelled) {
            line = co_await reader.readline();
        }
        CHECK(line == "x" + std::to_string(i) + "\n");
    }
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS: 8 MiB each way with drain back-pressure", "[tls]") {
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(tls_echo, "127.0.0.1", 0, {.ssl = sctx});
    SslContext cctx = client_ctx();
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1",
                                             coring::test::port_of(server),
                                             {.ssl = cctx, .server_hostname = localhost});
    constexpr std::size_t total = 8 << 20;
    auto sender = coring::create_task([](StreamWriter w) -> Task<> {
        std::string chunk(64 * 1024, '\0');
        for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
            for (std::size_t i = 0; i < chunk.size(); ++i) {
                chunk[i] = static_cast<char>((sent + i) * 7 % 251);
            }
            w.write(chunk);
            co_await w.drain();
        }
    }(writer));
    std::size_t got = 0;
    bool same = true;
    while (got < total) {
        std::string part = co_await reader.read(256 * 1024);
        REQUIRE_FALSE(part.empty());
        for (std::size_t i = 0; i < part.size() && same; ++i) {
            same = part[i] == static_cast<char>((got + i) * 7 % 251);
        }
        got += part.size();
    }
    co_await sender;
    CHECK(same);
    CHECK(got == total);
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}
