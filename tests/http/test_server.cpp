// SPDX-License-Identifier: MIT
// Tests of http/server.hpp: routing, handlers, middleware, lifespan and the HTTP/1.1 protocol
// (keep-alive, pipelining, HTTP/1.0, chunked bodies, 100-continue, streams, files), over raw
// loopback sockets and curl (after aiohttp's tests/test_web_functional.py).
#include <coring/gather.hpp>
#include <coring/http/client.hpp>
#include <coring/http/server.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "http/server_helpers.hpp"
#include "net/net_helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::http::App;
using coring::http::HttpError;
using coring::http::HttpServer;
using coring::http::Request;
using coring::http::Response;
using coring::http::ServeOptions;
using coring::test::raw_exchange;
using coring::test::ReadAll;
using coring::test::split_responses;
using nlohmann::json;

namespace {

/// The routes most tests use.
void add_routes(App& app) {
    app.get("/", [](Request&) -> Task<json> { co_return json{{"Hello", "World"}}; });
    app.get("/text", [](Request&) -> Task<std::string> { co_return std::string("plain text"); });
    app.get("/resp", [](Request&) -> Task<Response> {
        Response r = Response::text("created", 201, "text/x-test");
        r.headers.add("X-Extra", "1");
        co_return r;
    });
    app.get("/items/{id}", [](Request& req) -> Task<json> {
        co_return json{{"id", req.param("id")}, {"q", req.query("q").value_or("<none>")}};
    });
    app.get("/items/special", [](Request&) -> Task<std::string> { co_return "static wins"; });
    app.get("/users/{user}/posts/{post}", [](Request& req) -> Task<json> {
        co_return json{{"user", req.param("user")}, {"post", req.param("post")}};
    });
    app.post("/items", [](Request& req) -> Task<Response> {
        json j = co_await req.json();
        co_return Response::json(j, 201);
    });
    app.post("/echo", [](Request& req) -> Task<std::string> {
        std::string b = co_await req.body();
        co_return b;
    });
    app.delete_("/items/{id}",
                [](Request&) -> Task<Response> { co_return Response::text("", 204); });
    app.get("/teapot", [](Request&) -> Task<std::string> {
        throw HttpError(418, "short and stout");
        co_return "";
    });
    app.get("/boom", [](Request&) -> Task<std::string> {
        throw std::runtime_error("boom");
        co_return "";
    });
    app.get("/stream", [](Request&) -> Task<Response> {
        co_return Response::stream([](coring::http::BodyWriter& out) -> Task<> {
            for (int i = 0; i < 5; ++i) {
                co_await out.write("piece" + std::to_string(i) + ";");
            }
        });
    });
}

Task<HttpServer> start(const App& app, ServeOptions o = {}) {
    o.handle_signals = false;
    co_return co_await HttpServer::start(app, "127.0.0.1", 0, std::move(o));
}

/// One request on its own connection ("Connection: close"), its response.
Task<coring::test::RawResponse>
get1(std::uint16_t port, std::string method, std::string target, std::string extra = {}) {
    ReadAll r = co_await raw_exchange(port,
                                      method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + extra +
                                              "Connection: close\r\n\r\n");
    auto rs = split_responses(r.data, method == "HEAD");
    CHECK(r.eof);
    REQUIRE(rs.size() == 1);
    co_return rs.front();
}

} // namespace

CORING_TEST_CASE("HttpServer: static and parameter routes answer, with percent-decoded values",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::uint16_t port = server.port();

    auto r = co_await get1(port, "GET", "/");
    CHECK(r.status == 200);
    CHECK(json::parse(r.body) == json{{"Hello", "World"}});
    CHECK(r.has_header("Content-Type: application/json"));

    r = co_await get1(port, "GET", "/items/a%20b%2Fc?q=x+y%26z&other=1");
    CHECK(r.status == 200);
    CHECK(json::parse(r.body) == json{{"id", "a b/c"}, {"q", "x y&z"}});

    r = co_await get1(port, "GET", "/items/7");
    CHECK(json::parse(r.body) == json{{"id", "7"}, {"q", "<none>"}});

    r = co_await get1(port, "GET", "/items/special");
    CHECK(r.body == "static wins");

    r = co_await get1(port, "GET", "/users/ann/posts/42");
    CHECK(json::parse(r.body) == json{{"user", "ann"}, {"post", "42"}});

    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: an unknown path is a 404 and a wrong method a 405 with Allow",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::uint16_t port = server.port();

    auto r = co_await get1(port, "GET", "/nowhere");
    CHECK(r.status == 404);
    CHECK(json::parse(r.body) == json{{"detail", "Not Found"}});
    r = co_await get1(port, "GET", "/items/1/2");
    CHECK(r.status == 404);

    r = co_await get1(port, "PUT", "/items/3", "Content-Length: 0\r\n");
    CHECK(r.status == 405);
    CHECK(json::parse(r.body) == json{{"detail", "Method Not Allowed"}});
    CHECK(r.has_header("Allow: DELETE, GET, HEAD"));

    r = co_await get1(port, "DELETE", "/");
    CHECK(r.status == 405);
    CHECK(r.has_header("Allow: GET, HEAD"));

    r = co_await get1(port, "DELETE", "/items/3");
    CHECK(r.status == 204);
    CHECK(r.head.find("Content-Length") == std::string::npos);
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: HEAD is answered by the GET route without the body",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    // Two HEADs then a GET on one connection: a body after a HEAD would shift the framing.
    ReadAll r = co_await raw_exchange(server.port(),
                                      "HEAD /text HTTP/1.1\r\nHost: x\r\n\r\n"
                                      "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                      "GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto heads = split_responses(r.data, true);
    REQUIRE(heads.size() >= 2);
    CHECK(heads[0].status == 200);
    CHECK(heads[0].has_header("Content-Length: 10"));
    CHECK(heads[1].has_header("Content-Length: 17"));
    // What follows the second head is exactly the GET's response.
    std::size_t second = r.data.find("HTTP/1.1", 1);
    std::size_t third = r.data.find("HTTP/1.1", second + 1);
    REQUIRE(third != std::string::npos);
    CHECK(r.data.substr(second, third - second).find("Hello") == std::string::npos);
    auto last = split_responses(r.data.substr(third));
    REQUIRE(last.size() == 1);
    CHECK(last[0].body == "plain text");

    auto curl = co_await coring::test::run_program(
            "curl", {"-sS", "-I", coring::test::url(server.port(), "/text")});
    CHECK(curl.code == 0);
    INFO(curl.out);
    CHECK((curl.out.find("content-length: 10") != std::string::npos ||
           curl.out.find("Content-Length: 10") != std::string::npos));
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: handlers may return a string, JSON or a Response", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    auto r = co_await get1(server.port(), "GET", "/text");
    CHECK(r.status == 200);
    CHECK(r.body == "plain text");
    CHECK(r.has_header("Content-Type: text/plain; charset=utf-8"));
    r = co_await get1(server.port(), "GET", "/resp");
    CHECK(r.status == 201);
    CHECK(r.body == "created");
    CHECK(r.has_header("Content-Type: text/x-test"));
    CHECK(r.has_header("X-Extra: 1"));
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: HttpError and exceptions become JSON errors and the server goes on",
                 "[http][server]") {
    coring::test::LogCapture logs;
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    ReadAll r = co_await raw_exchange(server.port(),
                                      "GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n"
                                      "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"
                                      "GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 3);
    CHECK(rs[0].status == 418);
    CHECK(json::parse(rs[0].body) == json{{"detail", "short and stout"}});
    CHECK(rs[1].status == 500);
    CHECK(json::parse(rs[1].body) == json{{"detail", "Internal Server Error"}});
    CHECK(rs[2].status == 200);
    CHECK(rs[2].body == "plain text");
    CHECK(logs.contains("boom"));
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: middleware runs outermost first around the handler",
                 "[http][server]") {
    std::vector<std::string> trace;
    App app;
    app.use([&trace](Request& req, const coring::http::Next& next) -> Task<Response> {
        trace.push_back("outer in");
        auto t0 = std::chrono::steady_clock::now();
        Response r = co_await next(req);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - t0);
        r.headers.add("X-Time-Ms", std::to_string(ms.count()));
        trace.push_back("outer out");
        co_return r;
    });
    app.use([&trace](Request& req, const coring::http::Next& next) -> Task<Response> {
        trace.push_back("inner in");
        if (req.path == "/blocked") {
            co_return Response::text("blocked", 403);
        }
        Response r = co_await next(req);
        trace.push_back("inner out");
        co_return r;
    });
    app.get("/slow", [&trace](Request&) -> Task<std::string> {
        trace.push_back("handler");
        co_await coring::sleep(50ms);
        co_return "ok";
    });
    HttpServer server = co_await start(app);
    auto r = co_await get1(server.port(), "GET", "/slow");
    CHECK(r.body == "ok");
    CHECK(trace ==
          std::vector<std::string>{"outer in", "inner in", "handler", "inner out", "outer out"});
    std::size_t p = r.head.find("X-Time-Ms: ");
    REQUIRE(p != std::string::npos);
    CHECK(std::stoi(r.head.substr(p + 11)) >= 45);
    trace.clear();
    r = co_await get1(server.port(), "GET", "/blocked");
    CHECK(r.status == 403);
    CHECK(trace == std::vector<std::string>{"outer in", "inner in", "outer out"});
    // Middleware sees 404s too.
    trace.clear();
    r = co_await get1(server.port(), "GET", "/none");
    CHECK(r.status == 404);
    CHECK(trace.size() == 4);
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: startup and shutdown hooks run once, in order", "[http][server]") {
    std::vector<std::string> trace;
    App app;
    app.on_startup([&trace]() -> Task<> {
        trace.push_back("start 1");
        co_return;
    });
    app.on_startup([&trace]() -> Task<> {
        co_await coring::sleep(1ms);
        trace.push_back("start 2");
    });
    app.on_shutdown([&trace]() -> Task<> {
        trace.push_back("stop 1");
        co_return;
    });
    app.on_shutdown([&trace]() -> Task<> {
        trace.push_back("stop 2");
        co_return;
    });
    app.get("/", [&trace](Request&) -> Task<std::string> {
        trace.push_back("request");
        co_return "x";
    });
    HttpServer server = co_await start(app);
    CHECK(trace == std::vector<std::string>{"start 1", "start 2"});
    auto r = co_await get1(server.port(), "GET", "/");
    CHECK(r.status == 200);
    co_await server.shutdown();
    co_await server.shutdown(); // idempotent
    co_await server.wait_closed();
    CHECK(trace == std::vector<std::string>{"start 1", "start 2", "request", "stop 2", "stop 1"});
}

CORING_TEST_CASE("HttpServer: a failed startup releases what succeeded and rethrows",
                 "[http][server]") {
    coring::test::LogCapture logs;
    std::vector<std::string> trace;
    App app;
    add_routes(app);
    app.lifespan(
            [&trace]() -> Task<> {
                trace.push_back("open A");
                co_return;
            },
            [&trace]() -> Task<> {
                trace.push_back("close A");
                co_return;
            });
    app.on_startup([&trace]() -> Task<> {
        trace.push_back("start B");
        co_await coring::sleep(1ms);
        throw std::runtime_error("B failed");
    });
    app.lifespan(
            [&trace]() -> Task<> {
                trace.push_back("open C");
                co_return;
            },
            [&trace]() -> Task<> {
                trace.push_back("close C");
                co_return;
            });
    app.on_shutdown([&trace]() -> Task<> {
        trace.push_back("stop D");
        throw std::runtime_error("D failed too");
    });
    std::uint16_t port = coring::test::unused_port();
    ServeOptions o;
    o.handle_signals = false;
    // serve() (and HttpServer::start) rethrow the startup error after the shutdown hooks
    // that release what succeeded: the plain one (D) and A's pair, not C's (never opened).
    std::string what;
    try {
        Task<> serving = coring::http::serve(app, "127.0.0.1", port, o);
        co_await std::move(serving);
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    CHECK(what == "B failed");
    CHECK(trace == std::vector<std::string>{"open A", "start B", "stop D", "close A"});
    CHECK(logs.contains("D failed too"));
    // Nothing listens.
    CO_CHECK_THROWS_AS(coring::open_connection("127.0.0.1", port), std::system_error);
}

CORING_TEST_CASE("HttpServer: a server that cannot listen runs the shutdown hooks",
                 "[http][server]") {
    std::vector<std::string> trace;
    App app;
    add_routes(app);
    app.lifespan(
            [&trace]() -> Task<> {
                trace.push_back("open");
                co_return;
            },
            [&trace]() -> Task<> {
                trace.push_back("close");
                co_return;
            });
    HttpServer first = co_await start(app);
    CHECK(trace == std::vector<std::string>{"open"});
    ServeOptions o;
    o.handle_signals = false;
    Task<HttpServer> second = HttpServer::start(app, "127.0.0.1", first.port(), o);
    CO_CHECK_THROWS_AS(std::move(second), std::system_error); // EADDRINUSE
    CHECK(trace == std::vector<std::string>{"open", "open", "close"});
    co_await first.shutdown();
    CHECK(trace == std::vector<std::string>{"open", "open", "close", "close"});
}

CORING_TEST_CASE("HttpServer: keep-alive serves many requests on one connection",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
    for (int i = 0; i < 100; ++i) {
        writer.write("GET /items/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        auto r = co_await coring::test::read_one_response(reader);
        CHECK(r.status == 200);
        CHECK(json::parse(r.body)["id"] == std::to_string(i));
        CHECK(r.head.find("Connection: close") == std::string::npos);
    }
    CHECK(server.connection_count() == 1);
    writer.close();
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: 16 pipelined requests in one write are answered in order",
                 "[http][server]") {
    App app;
    add_routes(app);
    app.get("/sleep/{ms}", [](Request& req) -> Task<std::string> {
        co_await coring::sleep(std::chrono::milliseconds(std::stoi(req.param("ms"))));
        co_return req.param("ms");
    });
    HttpServer server = co_await start(app);
    std::string all;
    for (int i = 0; i < 16; ++i) {
        // Alternate slow and fast handlers, GETs and POSTs with bodies.
        if (i % 3 == 0) {
            all += "GET /sleep/" + std::to_string(20 - i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
        } else if (i % 3 == 1) {
            std::string b = "body" + std::to_string(i);
            all += "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(b.size()) +
                   "\r\n\r\n" + b;
        } else {
            all += "GET /items/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
        }
    }
    all += "GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ReadAll r = co_await raw_exchange(server.port(), all);
    CHECK(r.eof);
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 17);
    for (int i = 0; i < 16; ++i) {
        INFO("response " << i);
        CHECK(rs[i].status == 200);
        if (i % 3 == 0) {
            CHECK(rs[i].body == std::to_string(20 - i));
        } else if (i % 3 == 1) {
            CHECK(rs[i].body == "body" + std::to_string(i));
        } else {
            CHECK(json::parse(rs[i].body)["id"] == std::to_string(i));
        }
    }
    CHECK(rs[16].body == "plain text");
    CHECK(rs[16].has_header("Connection: close"));
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: Connection: close ends the connection after the response",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    // The second request after "close" is never answered.
    ReadAll r = co_await raw_exchange(server.port(),
                                      "GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                      "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(r.eof);
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].has_header("Connection: close"));
    co_await server.shutdown();
}

CORING_TEST_CASE(
        "HttpServer: HTTP/1.0 closes unless asked to keep alive, and streams without chunks",
        "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::uint16_t port = server.port();
    ReadAll r = co_await raw_exchange(port, "GET /text HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    CHECK(r.eof);
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].body == "plain text");
    CHECK(rs[0].head.rfind("HTTP/1.1 200", 0) == 0);

    r = co_await raw_exchange(port,
                              "GET /text HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                              "GET / HTTP/1.0\r\n\r\n");
    rs = split_responses(r.data);
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].has_header("Connection: keep-alive"));
    CHECK(rs[1].body == R"({"Hello":"World"})");

    // A streamed body to an HTTP/1.0 client: no chunked coding, ends with the connection.
    r = co_await raw_exchange(port, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(r.eof);
    CHECK(r.data.find("Transfer-Encoding") == std::string::npos);
    CHECK(r.data.find("Content-Length") == std::string::npos);
    std::size_t body = r.data.find("\r\n\r\n");
    REQUIRE(body != std::string::npos);
    CHECK(r.data.substr(body + 4) == "piece0;piece1;piece2;piece3;piece4;");

    auto curl = co_await coring::test::run_program(
            "curl", {"-sS", "--http1.0", coring::test::url(port, "/stream")});
    CHECK(curl.code == 0);
    CHECK(curl.out == "piece0;piece1;piece2;piece3;piece4;");
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a streamed response is chunked and a Date header is always there",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    ReadAll r =
            co_await raw_exchange(server.port(),
                                  "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].has_header("Transfer-Encoding: chunked"));
    CHECK(rs[0].body == "piece0;piece1;piece2;piece3;piece4;");
    for (const auto& x : rs) {
        std::size_t p = x.head.find("\r\nDate: ");
        REQUIRE(p != std::string::npos);
        CHECK(x.head.substr(p + 8 + 3, 2) == ", "); // "Sun, 06 Dec 2026 ..."
        CHECK(x.head.find(" GMT", p) != std::string::npos);
    }
    auto curl = co_await coring::test::run_program(
            "curl", {"-sS", coring::test::url(server.port(), "/stream")});
    CHECK(curl.out == "piece0;piece1;piece2;piece3;piece4;");
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a chunked request body is decoded", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
    // Sent in pieces, with an extension and a trailer, then a second request on the
    // connection.
    writer.write("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n5;ext=1\r\nhel");
    co_await writer.drain();
    co_await coring::sleep(20ms);
    writer.write("lo\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n");
    writer.write("GET /text HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await writer.drain();
    auto r = co_await coring::test::read_one_response(reader);
    CHECK(r.status == 200);
    CHECK(r.body == "hello world");
    r = co_await coring::test::read_one_response(reader);
    CHECK(r.body == "plain text");
    // A large chunked body (curl streams stdin chunked).
    std::string big(300 * 1000, 'x');
    for (std::size_t i = 0; i < big.size(); i += 97) {
        big[i] = static_cast<char>('a' + i % 26);
    }
    auto curl = co_await coring::test::run_program("curl",
                                                   {"-sS",
                                                    "-H",
                                                    "Transfer-Encoding: chunked",
                                                    "--data-binary",
                                                    "@-",
                                                    coring::test::url(server.port(), "/echo")},
                                                   big);
    CHECK(curl.code == 0);
    CHECK(curl.out.size() == big.size());
    CHECK(curl.out == big);
    writer.close();
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: Expect: 100-continue gets a 100 before the body (curl)",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    coring::test::TempDir dir;
    std::string big(500 * 1000, 'y');
    { std::ofstream(dir.file("body.bin"), std::ios::binary) << big; }
    auto curl = co_await coring::test::run_program("curl",
                                                   {"-sS",
                                                    "-v",
                                                    "-H",
                                                    "Expect: 100-continue",
                                                    "--expect100-timeout",
                                                    "10",
                                                    "--data-binary",
                                                    "@" + dir.file("body.bin"),
                                                    coring::test::url(server.port(), "/echo")});
    CHECK(curl.code == 0);
    CHECK(curl.out == big);
    CHECK(curl.err.find("HTTP/1.1 100 Continue") != std::string::npos);

    // Raw: the 100 comes only once the handler asks for the body.
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
    writer.write("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 "Content-Length: 4\r\n\r\n");
    co_await writer.drain();
    std::string cont = co_await reader.readuntil("\r\n\r\n");
    CHECK(cont == "HTTP/1.1 100 Continue\r\n\r\n");
    writer.write("abcd");
    auto r = co_await coring::test::read_one_response(reader);
    CHECK(r.body == "abcd");
    // A handler that does not read the body: no 100, and the connection closes.
    writer.write("GET /text HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 "Content-Length: 100000\r\n\r\n");
    co_await writer.drain();
    ReadAll rest = co_await coring::test::read_to_eof(reader, 5s);
    CHECK(rest.eof);
    auto rs = split_responses(rest.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 200);
    CHECK(rs[0].has_header("Connection: close"));
    writer.close();
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: Response::file sends the file, or a 404 when it is missing",
                 "[http][server]") {
    coring::test::TempDir dir;
    std::string content;
    for (int i = 0; i < 20000; ++i) {
        content += "line " + std::to_string(i) + "\n";
    }
    { std::ofstream(dir.file("page.txt"), std::ios::binary) << content; }
    App app;
    std::string base = dir.file("");
    app.get("/files/{name}", [base](Request& req) -> Task<Response> {
        co_return Response::file(base + req.param("name"));
    });
    HttpServer server = co_await start(app);
    ReadAll r = co_await raw_exchange(
            server.port(),
            "GET /files/page.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            "HEAD /files/page.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /files/missing.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /files/page.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(r.eof);
    // Split by hand: the HEAD's response has no body.
    auto first = split_responses(r.data.substr(0, r.data.find("HTTP/1.1", 10)));
    REQUIRE(first.size() == 1);
    CHECK(first[0].status == 200);
    CHECK(first[0].body == content);
    CHECK(first[0].has_header("Content-Type: text/plain; charset=utf-8"));
    std::size_t head_at = r.data.find("HTTP/1.1", 10);
    std::size_t missing_at = r.data.find("HTTP/1.1", head_at + 10);
    auto head = split_responses(r.data.substr(head_at, missing_at - head_at), true);
    REQUIRE(head.size() == 1);
    CHECK(head[0].has_header("Content-Length: " + std::to_string(content.size())));
    auto rest = split_responses(r.data.substr(missing_at));
    REQUIRE(rest.size() == 2);
    CHECK(rest[0].status == 404);
    CHECK(json::parse(rest[0].body) == json{{"detail", "Not Found"}});
    CHECK(rest[1].body == content);
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a malformed JSON body is a 400, a good one is parsed",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    auto bad = co_await coring::test::run_program("curl",
                                                  {"-sS",
                                                   "-w",
                                                   "\n%{http_code}",
                                                   "-H",
                                                   "Content-Type: application/json",
                                                   "-d",
                                                   "{\"a\": 1,",
                                                   coring::test::url(server.port(), "/items")});
    CHECK(bad.out.substr(bad.out.size() - 3) == "400");
    json detail = json::parse(bad.out.substr(0, bad.out.size() - 4));
    CHECK(detail["detail"].get<std::string>().find("invalid JSON") != std::string::npos);
    auto good = co_await coring::test::run_program("curl",
                                                   {"-sS",
                                                    "-w",
                                                    "\n%{http_code}",
                                                    "-d",
                                                    R"({"a": [1, 2]})",
                                                    coring::test::url(server.port(), "/items")});
    CHECK(good.out == "{\"a\":[1,2]}\n201");
    co_await server.shutdown();
}

CORING_TEST_CASE(
        "HttpServer: an unread body that arrives late is skipped, not taken from the next request",
        "[http][server]") {
    App app;
    add_routes(app);
    app.post("/ignore", [](Request&) -> Task<std::string> { co_return "ignored"; });
    HttpServer server = co_await start(app);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
    // Half the body with the head, the rest (and the next request) later.
    writer.write("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
    co_await writer.drain();
    co_await coring::sleep(50ms);
    writer.write("56789GET /text HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await writer.drain();
    auto r = co_await coring::wait_for(coring::test::read_one_response(reader), 5s);
    CHECK(r.status == 200);
    CHECK(r.body == "ignored");
    r = co_await coring::wait_for(coring::test::read_one_response(reader), 5s);
    CHECK(r.status == 200);
    CHECK(r.body == "plain text");
    // A second request whose head arrives in two pieces after a pipelined one.
    writer.write("GET /text HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo");
    co_await writer.drain();
    r = co_await coring::wait_for(coring::test::read_one_response(reader), 5s);
    CHECK(r.body == "plain text");
    co_await coring::sleep(30ms);
    writer.write("st: x\r\n\r\n");
    r = co_await coring::wait_for(coring::test::read_one_response(reader), 5s);
    CHECK(r.body == R"({"Hello":"World"})");
    writer.close();
    co_await server.shutdown();
}

CORING_TEST_CASE(
        "HttpServer: the body can be read more than once, as middleware and handler both do",
        "[http][server]") {
    App app;
    std::string seen;
    app.use([&seen](Request& req, const coring::http::Next& next) -> Task<Response> {
        seen = co_await req.body(); // a logging middleware
        co_return co_await next(req);
    });
    app.post("/items", [](Request& req) -> Task<Response> {
        json j = co_await req.json();
        std::string again = co_await req.body();
        j["again"] = again.size();
        co_return Response::json(j, 201);
    });
    HttpServer server = co_await start(app);
    ReadAll r = co_await raw_exchange(server.port(),
                                      "POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n"
                                      "Connection: close\r\n\r\n{\"a\":1}\n");
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 201);
    CHECK(rs[0].body == R"({"a":1,"again":8})");
    CHECK(seen == "{\"a\":1}\n");
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: Response::file of a directory is a 404", "[http][server]") {
    coring::test::TempDir dir;
    App app;
    std::string base = dir.file("");
    app.get("/dir", [base](Request&) -> Task<Response> { co_return Response::file(base); });
    HttpServer server = co_await start(app);
    auto r = co_await get1(server.port(), "GET", "/dir");
    CHECK(r.status == 404);
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a stream that fails midway cuts its response and the server goes on",
                 "[http][server]") {
    coring::test::LogCapture logs;
    App app;
    add_routes(app);
    app.get("/broken", [](Request&) -> Task<Response> {
        co_return Response::stream([](coring::http::BodyWriter& out) -> Task<> {
            co_await out.write("first");
            throw std::runtime_error("producer failed");
        });
    });
    HttpServer server = co_await start(app);
    ReadAll r = co_await raw_exchange(
            server.port(),
            "GET /broken HTTP/1.1\r\nHost: x\r\n\r\nGET /text HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(r.eof);
    CHECK(r.data.find("5\r\nfirst\r\n") != std::string::npos);
    CHECK(r.data.find("0\r\n\r\n") == std::string::npos); // no clean end: the client sees the cut
    CHECK(r.data.find("plain text") == std::string::npos);
    auto after = co_await get1(server.port(), "GET", "/text");
    CHECK(after.body == "plain text");
    co_await server.shutdown();
    // Said once, by the server (CORING_TEST_CASE fails on a "never retrieved" from the loop).
    CHECK(logs.contains("http: GET /broken: the streamed body raised an exception (producer "
                        "failed); the response is cut and the connection closed"));
}

CORING_TEST_CASE("HttpServer: serve() shuts down gracefully when cancelled, and logs access",
                 "[http][server]") {
    coring::test::LogCapture logs;
    std::vector<std::string> trace;
    App app;
    add_routes(app);
    app.on_startup([&trace]() -> Task<> {
        trace.push_back("start");
        co_return;
    });
    app.on_shutdown([&trace]() -> Task<> {
        trace.push_back("stop");
        co_return;
    });
    std::uint16_t port = coring::test::unused_port();
    ServeOptions o;
    o.handle_signals = false;
    o.access_log = true;
    auto serving = coring::create_task(coring::http::serve(app, "127.0.0.1", port, std::move(o)));
    co_await coring::sleep(50ms);
    auto r = co_await get1(port, "GET", "/items/5?q=1");
    CHECK(r.status == 200);
    CHECK(logs.contains("\"GET /items/5?q=1 HTTP/1.1\" 200"));
    serving.cancel();
    CO_CHECK_THROWS_AS(serving, coring::CancelledError);
    CHECK(trace == std::vector<std::string>{"start", "stop"});
}

CORING_TEST_CASE("HttpServer: an absolute-form target is routed on its path", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    auto r = co_await get1(server.port(), "GET", "http://example.com/items/9?q=abs");
    CHECK(r.status == 200);
    CHECK(json::parse(r.body) == json{{"id", "9"}, {"q", "abs"}});
    r = co_await get1(server.port(), "GET", "http://example.com");
    CHECK(r.status == 200);
    CHECK(r.body == R"({"Hello":"World"})");
    // HEAD of a streamed response: the head only, and the connection goes on.
    ReadAll raw =
            co_await raw_exchange(server.port(),
                                  "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::size_t second = raw.data.find("HTTP/1.1", 5);
    REQUIRE(second != std::string::npos);
    CHECK(raw.data.substr(0, second).find("piece") == std::string::npos);
    auto rs = split_responses(raw.data.substr(second));
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].body == "plain text");
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a large file body is spliced intact, and the connection goes on",
                 "[http][server]") {
    coring::test::TempDir dir;
    std::string content;
    content.reserve((4u << 20) + 7);
    for (std::size_t i = 0; content.size() < (4u << 20) + 7; ++i) {
        content += static_cast<char>('a' + i * 7919 % 26); // no period of the pipe's size
    }
    content.resize((4u << 20) + 7);
    { std::ofstream(dir.file("big.bin"), std::ios::binary) << content; }
    App app;
    std::string path = dir.file("big.bin");
    app.get("/big", [path](Request&) -> Task<Response> { co_return Response::file(path); });
    app.get("/after", [](Request&) -> Task<std::string> { co_return "after"; });
    HttpServer server = co_await start(app);
    coring::http::ClientSession session;
    std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    for (int round = 0; round < 2; ++round) {
        auto resp = co_await session.get(base + "/big");
        CHECK(resp.status == 200);
        CHECK(resp.headers.get("Content-Type") ==
              std::optional<std::string_view>("application/octet-stream"));
        std::string body = co_await resp.read();
        CHECK(body.size() == content.size());
        CHECK(body == content);
        auto after = co_await session.get(base + "/after"); // the same kept-alive connection
        std::string text = co_await after.text(); // (not inside CHECK: GCC 12, pitfalls.md)
        CHECK(text == "after");
    }
    CHECK(server.connection_count() == 1);
    co_await session.close();
    co_await server.shutdown();
}
