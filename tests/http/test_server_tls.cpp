// SPDX-License-Identifier: MIT
// The HTTP server over TLS (ServeOptions::ssl, the tls component), with coring's client and curl.
#include <coring/http/client.hpp>
#include <coring/http/server.hpp>
#include <coring/subprocess.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "net/net_helpers.hpp"
#include "support/test_support.hpp"
#include "tls/tls_certs.hpp"

using coring::Task;
using coring::http::App;
using coring::http::HttpServer;
using coring::http::Request;
using coring::http::Response;

CORING_TEST_CASE("HttpServer: over TLS, keep-alive requests and a spliced-or-copied file answer",
                 "[http][server][tls]") {
    coring::test::TempDir dir;
    std::string big(300'000, 'q');
    big[12'345] = '!';
    { std::ofstream(dir.file("big.txt"), std::ios::binary) << big; }
    std::string path = dir.file("big.txt");
    App app;
    app.get("/hello", [](Request&) -> Task<std::string> { co_return "hello over tls"; });
    app.get("/big", [path](Request&) -> Task<Response> { co_return Response::file(path); });
    auto ctx = coring::test::server_ctx();
    coring::http::ServeOptions options;
    options.ssl = ctx;
    Task<HttpServer> starting = HttpServer::start(app, "127.0.0.1", 0, options);
    HttpServer server = co_await std::move(starting);
    std::string base = "https://127.0.0.1:" + std::to_string(server.port());

    coring::http::ClientOptions co;
    co.ssl.cafile = coring::test::tls_files().ca;
    coring::http::ClientSession session(std::move(co));
    for (int i = 0; i < 3; ++i) {
        auto r = co_await session.get(base + "/hello");
        std::string text = co_await r.text();
        CHECK(r.status == 200);
        CHECK(text == "hello over tls");
        CHECK(r.version == "HTTP/1.1"); // no ALPN h2 offered by the server
    }
    auto r = co_await session.get(base + "/big");
    std::string body = co_await r.read();
    CHECK(body == big); // over TLS the file is read and encrypted, not spliced
    CHECK(server.connection_count() == 1);

    // curl verifies the certificate against the test CA, for the name the client uses.
    std::string url = base + "/hello"; // named: no std::string temporary in the co_await
    auto curl = co_await coring::create_subprocess_exec(
            "curl",
            {"-sS", "--max-time", "10", "--cacert", coring::test::tls_files().ca, url},
            {.stdout_ = coring::PIPE});
    std::string out = co_await curl.stdout_->read();
    int status = co_await curl.wait();
    CHECK(status == 0);
    CHECK(out == "hello over tls");
    co_await session.close();
    co_await server.shutdown();
}
