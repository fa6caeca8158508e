// SPDX-License-Identifier: MIT
// TLS streams (coring::tls) against OpenSSL's own command-line peers on loopback (issue 12): a
// coring client with `openssl s_server` (TLS 1.3 and 1.2, ALPN, a client certificate) and
// `openssl s_client` with a coring server (verification, data both ways, required client
// certificates).
#include <coring/coring.hpp>
#include <coring/tls.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <any>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// Bounds every wait on an openssl child: never reached when all goes well, it turns a peer that
// hangs into a failure instead of a CTest timeout.
constexpr auto guard = 20s;

// Whether an `openssl` program is on PATH (scripts/deps.sh installs it with the build deps).
bool have_openssl() {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (!dir.empty() && ::access((dir + "/openssl").c_str(), X_OK) == 0) {
            return true;
        }
    }
    return false;
}

#define CORING_REQUIRE_OPENSSL()                                                                   \
    do {                                                                                           \
        if (!have_openssl()) {                                                                     \
            CORING_SKIP("the openssl command is not on PATH");                                     \
        }                                                                                          \
    } while (false)

/// An `openssl` child with its stdout and stderr merged into one pipe, and what it has printed.
struct OpensslPeer {
    coring::Process proc;
    std::string output; // everything read from the child so far

    /// Reads lines until one contains text and returns it.
    /// Throws: RuntimeError when the child closes its output first.
    Task<std::string> line_containing(std::string text) {
        for (;;) {
            std::string line = co_await proc.stdout_->readline();
            if (line.empty()) {
                throw coring::RuntimeError("openssl ended without printing '" + text + "':\n" +
                                           output);
            }
            output += line;
            if (line.find(text) != std::string::npos) {
                co_return line;
            }
        }
    }

    /// Sends text to the child's standard input.
    Task<> send(std::string text) {
        proc.stdin_->write(text);
        co_await proc.stdin_->drain();
    }

    /// Reads the rest of the output (the child ends by itself; killed if it has not within the
    /// guard) and returns the exit status.
    Task<int> finish() {
        std::optional<std::string> rest;
        try {
            rest = co_await coring::wait_for(proc.stdout_->read(), guard);
        } catch (const coring::TimeoutError&) {
            proc.kill();
        }
        if (!rest) {
            rest = co_await proc.stdout_->read();
        }
        output += *rest;
        co_return co_await proc.wait();
    }
};

Task<OpensslPeer> spawn_openssl(std::vector<std::string> args) {
    coring::Process p = co_await coring::create_subprocess_exec(
            "openssl",
            args,
            {.stdin_ = coring::PIPE, .stdout_ = coring::PIPE, .stderr_ = coring::STDOUT});
    co_return OpensslPeer{std::move(p), {}};
}

/// `openssl s_server` for one connection (-naccept 1) with the test server certificate, on an
/// ephemeral loopback port: it listens on 127.0.0.1:0 and prints "ACCEPT 127.0.0.1:<port>"
/// once it listens, so there is no port to guess and no connect polling. Returns the port.
Task<std::uint16_t> start_s_server(OpensslPeer& peer) {
    std::string line = co_await coring::wait_for(peer.line_containing("ACCEPT"), guard);
    std::size_t colon = line.rfind(':');
    if (colon == std::string::npos) {
        throw coring::RuntimeError("s_server printed no port: " + line);
    }
    co_return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

std::vector<std::string> s_server_args(std::vector<std::string> extra) {
    const auto& f = coring::test::tls_files();
    std::vector<std::string> args{"s_server",
                                  "-accept",
                                  "127.0.0.1:0",
                                  "-naccept",
                                  "1",
                                  "-cert",
                                  f.server_cert,
                                  "-key",
                                  f.server_key};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

std::vector<std::string> s_client_args(std::uint16_t port, std::vector<std::string> extra) {
    std::vector<std::string> args{"s_client",
                                  "-connect",
                                  "127.0.0.1:" + std::to_string(port),
                                  "-servername",
                                  "localhost",
                                  "-verify_hostname",
                                  "localhost",
                                  "-CAfile",
                                  coring::test::tls_files().ca,
                                  "-verify_return_error",
                                  "-ign_eof"}; // stay until the server closes
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

/// Closes a writer whose peer may already have gone (its close_notify then meets a reset).
Task<> close_quietly(StreamWriter& writer) {
    writer.close();
    try {
        co_await writer.wait_closed();
    } catch (const coring::ConnectionError&) {
    }
}

std::string reversed(std::string s) {
    return std::string(s.rbegin(), s.rend());
}

} // namespace

TEST_CASE("TLS peers: a coring client verifies openssl s_server and exchanges lines",
          "[tls][openssl]") {
    CORING_REQUIRE_OPENSSL();

    struct Version {
        const char* flag;
        const char* name;
    };

    for (Version v : {Version{"-tls1_3", "TLSv1.3"}, Version{"-tls1_2", "TLSv1.2"}}) {
        DYNAMIC_SECTION(v.name) {
            coring::test::run_test([&]() -> Task<> {
                // -rev: s_server answers each line reversed, and "CLOSE" makes it close.
                std::vector<std::string> args = s_server_args({"-rev", v.flag});
                OpensslPeer peer = co_await spawn_openssl(std::move(args));
                std::uint16_t port = co_await start_s_server(peer);
                SslContext cctx = client_ctx();
                auto [reader, writer] = co_await coring::open_connection(
                        "127.0.0.1", port, {.ssl = cctx, .server_hostname = localhost});
                auto obj =
                        std::any_cast<coring::tls::SslObject>(writer.get_extra_info("ssl_object"));
                CHECK(obj.version() == v.name);
                auto cert = std::any_cast<coring::tls::PeerCertificate>(
                        writer.get_extra_info("peercert"));
                CHECK(cert.subject.find("CN=localhost") != std::string::npos);
                CHECK(cert.issuer.find("CN=coring test CA") != std::string::npos);

                // 200 lines written at once, then read back: several records each way.
                std::string batch;
                for (int i = 0; i < 200; ++i) {
                    batch += "line number " + std::to_string(i) + " from coring\n";
                }
                writer.write(batch);
                co_await writer.drain();
                bool all_same = true;
                for (int i = 0; i < 200; ++i) {
                    std::string line = co_await reader.readline();
                    std::string want =
                            reversed("line number " + std::to_string(i) + " from coring") + "\n";
                    if (line != want) {
                        all_same = false;
                        INFO("line " << i << ": got '" << line << "'");
                        CHECK(line == want);
                        break;
                    }
                }
                CHECK(all_same);

                // CLOSE: s_server sends close_notify, a clean EOF (no SslEofError).
                writer.write("CLOSE\n");
                std::string rest = co_await reader.read();
                CHECK(rest.empty());
                CHECK(reader.at_eof());
                co_await close_quietly(writer);
                int rc = co_await peer.finish();
                INFO(peer.output);
                CHECK(rc == 0);
            });
        }
    }
}

TEST_CASE("TLS peers: openssl s_client verifies a coring server and exchanges data both ways",
          "[tls][openssl]") {
    CORING_REQUIRE_OPENSSL();
    for (const char* flag : {"-tls1_3", "-tls1_2"}) {
        DYNAMIC_SECTION(flag) {
            coring::test::run_test([&]() -> Task<> {
                SslContext sctx = server_ctx();
                std::string received;
                std::string version;
                auto server = co_await coring::start_server(
                        [&](StreamReader r, StreamWriter w) -> Task<> {
                            version = std::any_cast<coring::tls::SslObject>(
                                              w.get_extra_info("ssl_object"))
                                              .version();
                            received = co_await r.readline();
                            w.write("coring got: " + received);
                            w.write("bye from coring\n");
                            co_await close_quietly(w);
                        },
                        "127.0.0.1",
                        0,
                        {.ssl = sctx});
                std::vector<std::string> args =
                        s_client_args(coring::test::port_of(server), {flag});
                OpensslPeer peer = co_await spawn_openssl(std::move(args));
                co_await peer.send("hello from s_client\n");
                co_await coring::wait_for(peer.line_containing("bye from coring"), guard);
                int rc = co_await peer.finish(); // s_client leaves at the server's close_notify
                INFO(peer.output);
                CHECK(received == "hello from s_client\n");
                CHECK(version == (std::string_view(flag) == "-tls1_3" ? "TLSv1.3" : "TLSv1.2"));
                CHECK(peer.output.find("coring got: hello from s_client\n") != std::string::npos);
                CHECK(peer.output.find("Verify return code: 0 (ok)") != std::string::npos);
                CHECK(peer.output.find("CN = localhost") != std::string::npos);
                CHECK(rc == 0);
                server.close();
                co_await server.wait_closed();
            });
        }
    }
}

TEST_CASE("TLS peers: ALPN with openssl s_server picks its protocol, or fails without overlap",
          "[tls][openssl]") {
    CORING_REQUIRE_OPENSSL();
    SECTION("overlap") {
        coring::test::run_test([]() -> Task<> {
            std::vector<std::string> args = s_server_args({"-rev", "-alpn", "h2"});
            OpensslPeer peer = co_await spawn_openssl(std::move(args));
            std::uint16_t port = co_await start_s_server(peer);
            SslContext cctx = client_ctx();
            cctx.set_alpn_protocols({"http/1.1", "h2"});
            auto [reader, writer] = co_await coring::open_connection(
                    "127.0.0.1", port, {.ssl = cctx, .server_hostname = localhost});
            auto obj = std::any_cast<coring::tls::SslObject>(writer.get_extra_info("ssl_object"));
            CHECK(obj.selected_alpn_protocol() == "h2");
            writer.write("abc\n");
            std::string back = co_await reader.readline();
            CHECK(back == "cba\n");
            writer.write("CLOSE\n");
            std::string rest = co_await reader.read();
            CHECK(rest.empty());
            co_await close_quietly(writer);
            int rc = co_await peer.finish();
            INFO(peer.output);
            CHECK(peer.output.find("ALPN protocols advertised by the client: http/1.1, h2") !=
                  std::string::npos);
            CHECK(rc == 0);
        });
    }
    SECTION("no overlap") {
        coring::test::run_test([]() -> Task<> {
            std::vector<std::string> args = s_server_args({"-rev", "-alpn", "spdy/3"});
            OpensslPeer peer = co_await spawn_openssl(std::move(args));
            std::uint16_t port = co_await start_s_server(peer);
            SslContext cctx = client_ctx();
            cctx.set_alpn_protocols({"h2"});
            std::string reason = "no exception";
            std::string what;
            try {
                auto streams = co_await coring::open_connection(
                        "127.0.0.1", port, {.ssl = cctx, .server_hostname = localhost});
            } catch (const coring::tls::SslError& e) {
                reason = e.reason();
                what = e.what();
            }
            // s_server's ALPN callback refuses with a fatal no_application_protocol alert (120).
            CHECK(reason == "TLSV1_ALERT_NO_APPLICATION_PROTOCOL");
            CHECK(what.find("[SSL: TLSV1_ALERT_NO_APPLICATION_PROTOCOL]") == 0);
            co_await peer.finish();
            INFO(peer.output);
            CHECK(peer.output.find("no application protocol") != std::string::npos);
        });
    }
}

TEST_CASE("TLS peers: a coring server that requires a client certificate takes s_client's and "
          "refuses s_client without one",
          "[tls][openssl]") {
    CORING_REQUIRE_OPENSSL();
    const auto& f = coring::test::tls_files();
    SECTION("with a certificate") {
        coring::test::run_test([&]() -> Task<> {
            SslContext sctx = server_ctx();
            sctx.load_verify_locations(f.ca);
            sctx.set_verify_mode(coring::tls::VerifyMode::required);
            std::string subject;
            auto server = co_await coring::start_server(
                    [&](StreamReader r, StreamWriter w) -> Task<> {
                        auto cert = w.get_extra_info("peercert");
                        if (cert.has_value()) {
                            subject = std::any_cast<coring::tls::PeerCertificate>(cert).subject;
                        }
                        std::string line = co_await r.readline();
                        w.write("welcome, " + line);
                        co_await close_quietly(w);
                    },
                    "127.0.0.1",
                    0,
                    {.ssl = sctx});
            std::vector<std::string> args = s_client_args(
                    coring::test::port_of(server), {"-cert", f.client_cert, "-key", f.client_key});
            OpensslPeer peer = co_await spawn_openssl(std::move(args));
            co_await peer.send("client\n");
            co_await coring::wait_for(peer.line_containing("welcome, client"), guard);
            int rc = co_await peer.finish();
            INFO(peer.output);
            CHECK(subject.find("CN=coring test client") != std::string::npos);
            CHECK(rc == 0);
            server.close();
            co_await server.wait_closed();
        });
    }
    SECTION("without a certificate") {
        coring::test::run_test([&]() -> Task<> {
            SslContext sctx = server_ctx();
            sctx.load_verify_locations(f.ca);
            sctx.set_verify_mode(coring::tls::VerifyMode::required);
            int served = 0;
            auto server = co_await coring::start_server(
                    [&](StreamReader, StreamWriter w) -> Task<> {
                        ++served;
                        w.write("should not be sent\n");
                        co_await close_quietly(w);
                    },
                    "127.0.0.1",
                    0,
                    {.ssl = sctx});
            std::vector<std::string> args = s_client_args(coring::test::port_of(server), {});
            OpensslPeer peer = co_await spawn_openssl(std::move(args));
            co_await peer.send("anonymous\n");
            int rc = co_await peer.finish(); // ends at the server's alert
            INFO(peer.output);
            CHECK(served == 0);
            // TLS 1.3: s_client's handshake is done when it sends Finished; the server's
            // certificate_required alert (116) comes with its first read.
            CHECK(peer.output.find("alert certificate required") != std::string::npos);
            CHECK(peer.output.find("should not be sent") == std::string::npos);
            CHECK(rc != 0);
            server.close();
            co_await server.wait_closed();
        });
    }
}

TEST_CASE("TLS peers: a coring client presents its certificate to openssl s_server -Verify",
          "[tls][openssl]") {
    CORING_REQUIRE_OPENSSL();
    const auto& f = coring::test::tls_files();
    std::vector<std::string> verify{"-Verify", "1", "-CAfile", f.ca, "-verify_return_error"};
    SECTION("with a certificate") {
        coring::test::run_test([&]() -> Task<> {
            // Without -rev, s_server prints what it receives and sends what its stdin gives.
            std::vector<std::string> args = s_server_args(verify);
            OpensslPeer peer = co_await spawn_openssl(std::move(args));
            std::uint16_t port = co_await start_s_server(peer);
            co_await peer.send("greetings from s_server\n");
            SslContext cctx = client_ctx();
            cctx.load_cert_chain(f.client_cert, f.client_key);
            auto [reader, writer] = co_await coring::open_connection(
                    "127.0.0.1", port, {.ssl = cctx, .server_hostname = localhost});
            std::string line = co_await reader.readline();
            CHECK(line == "greetings from s_server\n");
            writer.write("hello from coring\n");
            co_await coring::wait_for(peer.line_containing("hello from coring"), guard);
            co_await close_quietly(writer);
            co_await peer.finish();
            INFO(peer.output);
            // s_server's verify callback reports the client certificate it checked, and OK.
            CHECK(peer.output.find("depth=0 O = coring tests, CN = coring test client\n"
                                   "verify return:1") != std::string::npos);
        });
    }
    SECTION("without a certificate") {
        coring::test::run_test([&]() -> Task<> {
            std::vector<std::string> args = s_server_args(verify);
            OpensslPeer peer = co_await spawn_openssl(std::move(args));
            std::uint16_t port = co_await start_s_server(peer);
            SslContext cctx = client_ctx();
            std::string reason = "no exception";
            try {
                // TLS 1.3: the handshake may finish on the client before the server's alert.
                auto [reader, writer] = co_await coring::open_connection(
                        "127.0.0.1", port, {.ssl = cctx, .server_hostname = localhost});
                std::string line = co_await reader.readline();
                reason = "read '" + line + "'";
            } catch (const coring::tls::SslError& e) {
                reason = e.reason();
            }
            CHECK(reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED");
            co_await peer.finish();
            INFO(peer.output);
            CHECK(peer.output.find("peer did not return a certificate") != std::string::npos);
        });
    }
}
