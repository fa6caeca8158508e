// SPDX-License-Identifier: MIT
// Tests of http/server.hpp's defences: size limits, malformed and smuggling requests, timeouts,
// max_connections, slowloris, 10,000 idle connections and graceful shutdown, over raw loopback
// sockets (after uvicorn's tests/protocols/test_http.py).
#include <coring/errors.hpp>
#include <coring/gather.hpp>
#include <coring/http/server.hpp>
#include <coring/net/socket.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>
#include <coring/task_group.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/server_helpers.hpp"
#include "net/net_helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::http::App;
using coring::http::HttpServer;
using coring::http::Request;
using coring::http::Response;
using coring::http::ServeOptions;
using coring::test::raw_exchange;
using coring::test::ReadAll;
using coring::test::split_responses;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

void add_routes(App& app) {
    app.get("/", [](Request&) -> Task<std::string> { co_return "hello"; });
    app.post("/echo", [](Request& req) -> Task<std::string> {
        std::string b = co_await req.body();
        co_return b;
    });
    app.get("/sleep/{ms}", [](Request& req) -> Task<std::string> {
        co_await coring::sleep(std::chrono::milliseconds(std::stoi(req.param("ms"))));
        co_return "slept " + req.param("ms");
    });
}

Task<HttpServer> start(const App& app, ServeOptions o = {}) {
    o.handle_signals = false;
    co_return co_await HttpServer::start(app, "127.0.0.1", 0, std::move(o));
}

/// Sends request; expects exactly one response with `status` (or `alt`), then the close.
Task<> expect_rejected(std::uint16_t port, std::string request, int status, int alt = 0) {
    ReadAll r = co_await raw_exchange(port, request, 5s);
    auto rs = split_responses(r.data);
    INFO("request: " << json(request).dump() << "\nresponse: " << json(r.data).dump());
    CHECK(r.eof);
    REQUIRE(rs.size() == 1);
    CHECK((rs[0].status == status || (alt != 0 && rs[0].status == alt)));
    CHECK(rs[0].has_header("Connection: close"));
    CHECK(json::parse(rs[0].body).contains("detail"));
}

std::size_t vm_rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stoul(line.substr(6));
        }
    }
    return 0;
}

// Sockets this process holds (clients and server alike), from /proc/self/fd.
std::size_t open_sockets() {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        auto target = std::filesystem::read_symlink(e.path(), ec);
        if (!ec && target.native().rfind("socket:", 0) == 0) {
            ++n;
        }
    }
    return n;
}

} // namespace

CORING_TEST_CASE("HttpServer: an over-long request line is a 414 and closes", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    co_await expect_rejected(
            server.port(), "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414);
    // Just under the limit is served (404: no such route).
    ReadAll r = co_await raw_exchange(server.port(),
                                      "GET /" + std::string(8000, 'a') +
                                              " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 404);
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: an over-large head or too many fields is a 431 and closes",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::string big = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 20; ++i) {
        big += "X-Big-" + std::to_string(i) + ": " + std::string(1000, 'v') + "\r\n";
    }
    co_await expect_rejected(server.port(), big + "\r\n", 431);

    std::string many = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 100; ++i) {
        many += "X-H" + std::to_string(i) + ": v\r\n";
    }
    co_await expect_rejected(server.port(), many + "\r\n", 431); // 101 fields

    // 100 fields exactly are fine.
    std::string ok = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    for (int i = 0; i < 98; ++i) {
        ok += "X-H" + std::to_string(i) + ": v\r\n";
    }
    ReadAll r = co_await raw_exchange(server.port(), ok + "\r\n");
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 200);
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a body over max_body is a 413, by Content-Length or chunked",
                 "[http][server]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.max_body = 1000;
    HttpServer server = co_await start(app, std::move(o));
    // Refused from the head alone (no body sent).
    co_await expect_rejected(
            server.port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413);
    std::string chunk = "1f4\r\n" + std::string(500, 'c') + "\r\n";
    co_await expect_rejected(
            server.port(),
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk +
                    chunk + "0\r\n\r\n",
            413);
    // At the limit it is accepted.
    ReadAll r = co_await raw_exchange(server.port(),
                                      "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                      "Content-Length: 1000\r\n\r\n" +
                                              std::string(1000, 'b'));
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 200);
    CHECK(rs[0].body == std::string(1000, 'b'));
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: malformed requests are a 400 (505 for a version) and close",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::uint16_t port = server.port();
    co_await expect_rejected(port, "GARBAGE\r\n\r\n", 400);
    co_await expect_rejected(port, "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400); // no Host
    co_await expect_rejected(port, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    co_await expect_rejected(port, "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400);
    co_await expect_rejected(port, "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    co_await expect_rejected(port, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400);
    co_await expect_rejected(port, "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", 400);
    co_await expect_rejected(port, "GET / HTTP/1.1\r\n: empty\r\n\r\n", 400);
    co_await expect_rejected(port, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, 400);
    co_await expect_rejected(port, "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
    co_await expect_rejected(port, "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    co_await expect_rejected(
            port, "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, 413);
    // A malformed chunked body: the handler's read fails with 400.
    co_await expect_rejected(port,
                             "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                             "chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                             400);
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: request smuggling attempts are refused and close the connection",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::uint16_t port = server.port();
    // Each carries a second request that must never be answered.
    const std::string smuggled = "GET /sleep/1 HTTP/1.1\r\nHost: x\r\n\r\n";
    const char* heads[] = {
            // CL + TE
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 5\r\n\r\n0\r\n\r\n",
            // duplicate CL, different and equal values
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: "
            "6\r\n\r\n12345",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n12345",
            // chunked followed by another coding, or not last
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
            "gzip\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
            "chunked\r\n\r\n0\r\n\r\n",
            // TE in HTTP/1.0 (RFC 9112 6.1: treat the framing as faulty and close)
            "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            // bare LF
            "GET / HTTP/1.1\nHost: x\n\n",
            "GET / HTTP/1.1\r\nHost: x\n\r\n",
            // obs-fold
            "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
            // space (or tab) before the colon
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length\t: 3\r\n\r\nabc",
            // a bare CR
            "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",
    };
    int i = 0;
    for (const char* head : heads) {
        INFO("case " << i++);
        co_await expect_rejected(port, std::string(head) + smuggled, 400, 501);
    }
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a head that stops arriving is a 408 after header_timeout",
                 "[http][server]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.header_timeout = 300ms;
    HttpServer server = co_await start(app, std::move(o));
    auto t0 = Clock::now();
    co_await expect_rejected(server.port(), "GET / HTTP/1.1\r\nHost: x\r\nX-Half", 408);
    auto took = Clock::now() - t0;
    CHECK(took >= 280ms);
    CHECK(took < 2s);
    CHECK(server.connection_count() == 0);
    co_await server.shutdown();
}

CORING_TEST_CASE(
        "HttpServer: an idle keep-alive connection closes silently after keepalive_timeout",
        "[http][server]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.keepalive_timeout = 300ms;
    HttpServer server = co_await start(app, std::move(o));
    auto t0 = Clock::now();
    // One request, then nothing: the response, then the close without another byte.
    ReadAll r = co_await raw_exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
    auto took = Clock::now() - t0;
    CHECK(r.eof);
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].body == "hello");
    CHECK(took >= 280ms);
    CHECK(took < 2s);
    // A connection that never sends anything, too.
    r = co_await raw_exchange(server.port(), "", 5s);
    CHECK(r.eof);
    CHECK(r.data.empty());
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a body that stops arriving is a 408 after body_timeout",
                 "[http][server]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.body_timeout = 300ms;
    HttpServer server = co_await start(app, std::move(o));
    auto t0 = Clock::now();
    co_await expect_rejected(
            server.port(),
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
            408);
    co_await expect_rejected(server.port(),
                             "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "a\r\n0123456789\r\n",
                             408);
    CHECK(Clock::now() - t0 < 4s);
    // A slow but steady body is fine: each piece restarts the timer.
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
    writer.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n");
    for (int i = 0; i < 6; ++i) {
        writer.write("x");
        co_await writer.drain();
        co_await coring::sleep(150ms);
    }
    auto resp = co_await coring::test::read_one_response(reader);
    CHECK(resp.status == 200);
    CHECK(resp.body == "xxxxxx");
    writer.close();
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: at max_connections accepting pauses until a connection closes",
                 "[http][server]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.max_connections = 5;
    o.keepalive_timeout = 30s;
    HttpServer server = co_await start(app, std::move(o));
    std::size_t base = open_sockets(); // the listener and whatever the test harness holds
    std::vector<std::pair<coring::StreamReader, coring::StreamWriter>> conns;
    for (int i = 0; i < 5; ++i) {
        auto c = co_await coring::open_connection("127.0.0.1", server.port());
        c.second.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        auto r = co_await coring::test::read_one_response(c.first);
        CHECK(r.body == "hello");
        conns.push_back(std::move(c));
    }
    CHECK(open_sockets() == base + 5 + 5); // 5 clients, 5 accepted
    // The 6th to 8th: connected in the kernel's backlog, neither accepted nor served.
    std::vector<std::pair<coring::StreamReader, coring::StreamWriter>> waiting;
    for (int i = 0; i < 3; ++i) {
        auto c = co_await coring::open_connection("127.0.0.1", server.port());
        c.second.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        co_await c.second.drain();
        waiting.push_back(std::move(c));
    }
    ReadAll none = co_await coring::test::read_to_eof(waiting[0].first, 300ms);
    CHECK(none.data.empty());
    CHECK(!none.eof);
    // The server never holds more than 5 accepted sockets: 8 clients + 5.
    CHECK(open_sockets() == base + 8 + 5);
    CHECK(server.connection_count() == 5);
    // One closes: exactly one waiter is accepted and served.
    conns[0].second.close();
    auto r6 = co_await coring::wait_for(coring::test::read_one_response(waiting[0].first), 5s);
    CHECK(r6.body == "hello");
    ReadAll still = co_await coring::test::read_to_eof(waiting[1].first, 300ms);
    CHECK(still.data.empty());
    CHECK(open_sockets() == base + 7 + 5); // one client closed, one accepted in its place
    CHECK(server.connection_count() == 5);
    // Two more close: the other two are served.
    conns[1].second.close();
    conns[2].second.close();
    auto r7 = co_await coring::wait_for(coring::test::read_one_response(waiting[1].first), 5s);
    CHECK(r7.body == "hello");
    auto r8 = co_await coring::wait_for(coring::test::read_one_response(waiting[2].first), 5s);
    CHECK(r8.body == "hello");
    CHECK(server.connection_count() == 5);
    CHECK(open_sockets() == base + 5 + 5);
    for (auto& c : conns) {
        c.second.close();
    }
    for (auto& c : waiting) {
        c.second.close();
    }
    co_await server.shutdown();
    CHECK(server.connection_count() == 0);
}

CORING_TEST_CASE("HttpServer: a client that stops reading is cut after send_timeout",
                 "[http][server]") {
    App app;
    app.get("/big", [](Request&) -> Task<Response> {
        co_return Response::text(std::string(8 << 20, 'x'));
    });
    app.get("/stream", [](Request&) -> Task<Response> {
        co_return Response::stream([](coring::http::BodyWriter& out) -> Task<> {
            std::string piece(256 * 1024, 'y');
            for (int i = 0; i < 32; ++i) {
                co_await out.write(piece);
            }
        });
    });
    ServeOptions o;
    o.send_timeout = 500ms;
    o.keepalive_timeout = 30s;
    HttpServer server = co_await start(app, std::move(o));

    // A client that reads keeps its response going however long it takes.
    ReadAll all = co_await raw_exchange(
            server.port(), "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 20s);
    auto rs = split_responses(all.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].body.size() == std::size_t{8} << 20);

    // Slow-read attackers: a tiny receive window, a request for a big body, never a read.
    const std::array<const char*, 2> paths{"/big", "/stream"};
    for (const char* path : paths) {
        INFO(path);
        coring::Socket sock(AF_INET, SOCK_STREAM);
        sock.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096);
        co_await coring::sock_connect(sock, coring::SocketAddress::ip("127.0.0.1", server.port()));
        std::string request = std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
        co_await coring::sock_sendall(sock, request);
        auto t0 = Clock::now();
        while (server.connection_count() > 0 && Clock::now() - t0 < 15s) {
            co_await coring::sleep(50ms);
        }
        CHECK(server.connection_count() == 0); // aborted: the fd is not held either
        CHECK(Clock::now() - t0 >= 400ms);     // not before send_timeout
    }
    co_await server.shutdown();
}

CORING_TEST_CASE(
        "HttpServer: a small unread body is skipped after the answer, the connection goes on",
        "[http][server]") {
    App app;
    add_routes(app);
    app.post("/ignore", [](Request&) -> Task<std::string> { co_return "ignored"; });
    ServeOptions o;
    o.max_discard = 64 * 1024;
    HttpServer server = co_await start(app, std::move(o));
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
    const std::array<std::string_view, 2> framings{"length", "chunked"};
    for (std::string_view te : framings) {
        INFO(te);
        // The head and 100 bytes of a 20,000-byte body: the answer comes before the rest.
        std::string part(100, 'a');
        if (te == "length") {
            writer.write("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" +
                         part);
        } else {
            writer.write("POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "64\r\n" +
                         part + "\r\n");
        }
        auto r = co_await coring::wait_for(coring::test::read_one_response(reader), 5s);
        CHECK(r.status == 200);
        CHECK(r.body == "ignored");
        CHECK(!r.has_header("Connection: close"));
        // The rest of the body, then the next request on the same connection.
        std::string rest(19900, 'b');
        if (te == "length") {
            writer.write(rest);
        } else {
            writer.write("4dbc\r\n" + rest + "\r\n0\r\n\r\n");
        }
        writer.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        r = co_await coring::wait_for(coring::test::read_one_response(reader), 5s);
        CHECK(r.status == 200);
        CHECK(r.body == "hello");
    }
    writer.close();
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a large or slow unread body closes the connection after the answer",
                 "[http][server]") {
    App app;
    add_routes(app);
    app.post("/ignore", [](Request&) -> Task<std::string> { co_return "ignored"; });
    ServeOptions o;
    o.max_discard = 64 * 1024;
    o.max_body = 64 << 20;
    o.body_timeout = 300ms;
    o.linger_timeout = 500ms;
    HttpServer server = co_await start(app, std::move(o));
    {
        // 10 MiB announced, 64 KiB sent, then nothing: answered at once with
        // Connection: close, and closed without waiting for the body.
        auto t0 = Clock::now();
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
        writer.write("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n" +
                     std::string(64 * 1024, 'a'));
        co_await writer.drain();
        ReadAll r = co_await coring::test::read_to_eof(reader, 5s);
        auto rs = split_responses(r.data);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].status == 200);
        CHECK(rs[0].body == "ignored");
        CHECK(rs[0].has_header("Connection: close"));
        CHECK(r.eof);
        CHECK(Clock::now() - t0 < 4s);
        writer.close();
    }
    {
        // A small body that stops arriving: answered (keep-alive), then closed once
        // body_timeout has passed, not held open by the missing bytes.
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
        writer.write("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
        co_await writer.drain();
        auto resp = co_await coring::wait_for(coring::test::read_one_response(reader), 5s);
        CHECK(resp.status == 200);
        CHECK(resp.body == "ignored");
        ReadAll rest = co_await coring::test::read_to_eof(reader, 5s);
        CHECK(rest.data.empty());
        CHECK(rest.eof);
        writer.close();
    }
    {
        // A client that waits for 100 Continue gets the answer and the close instead.
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
        writer.write("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                     "Expect: 100-continue\r\n\r\n");
        co_await writer.drain();
        ReadAll r = co_await coring::test::read_to_eof(reader, 5s);
        auto rs = split_responses(r.data);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].status == 200);
        CHECK(rs[0].has_header("Connection: close"));
        CHECK(r.eof);
        writer.close();
    }
    co_await server.shutdown();
    CHECK(server.connection_count() == 0);
}

CORING_TEST_CASE("HttpServer: graceful shutdown finishes requests in flight and closes idle ones",
                 "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::uint16_t port = server.port();
    auto idle = co_await coring::open_connection("127.0.0.1", port);
    idle.second.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = co_await coring::test::read_one_response(idle.first);
    CHECK(r.body == "hello");
    auto busy = co_await coring::open_connection("127.0.0.1", port);
    busy.second.write("GET /sleep/300 HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await busy.second.drain();
    co_await coring::sleep(50ms);
    auto t0 = Clock::now();
    auto stopping = coring::create_task(server.shutdown());
    co_await coring::sleep(20ms);
    // New connections are refused.
    bool refused = false;
    try {
        auto c = co_await coring::open_connection("127.0.0.1", port);
        c.second.close();
    } catch (const std::system_error&) {
        refused = true;
    }
    CHECK(refused);
    // The idle one is closed at once, without a response.
    ReadAll idle_rest = co_await coring::test::read_to_eof(idle.first, 1s);
    CHECK(idle_rest.eof);
    CHECK(idle_rest.data.empty());
    // The slow one gets its whole response, then the close.
    ReadAll busy_rest = co_await coring::test::read_to_eof(busy.first, 5s);
    CHECK(busy_rest.eof);
    auto rs = split_responses(busy_rest.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].body == "slept 300");
    CHECK(rs[0].has_header("Connection: close"));
    co_await stopping;
    CHECK(Clock::now() - t0 >= 200ms);
    CHECK(server.connection_count() == 0);
    idle.second.close();
    busy.second.close();
}

CORING_TEST_CASE_REAL_TIME("HttpServer: shutdown_timeout aborts a handler that takes too long",
                           "[http][server]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.shutdown_timeout = 200ms;
    HttpServer server = co_await start(app, std::move(o));
    auto busy = co_await coring::open_connection("127.0.0.1", server.port());
    busy.second.write("GET /sleep/10000 HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await busy.second.drain();
    co_await coring::sleep(50ms);
    auto t0 = Clock::now();
    co_await server.shutdown();
    auto took = Clock::now() - t0;
    CHECK(took >= 180ms);
    CHECK(took < 2s);
    ReadAll rest = co_await coring::test::read_to_eof(busy.first, 2s);
    CHECK(rest.eof);
    CHECK(rest.data.empty());
    CHECK(server.connection_count() == 0);
    busy.second.close();
}

CORING_TEST_CASE("HttpServer: 500 slowloris clients do not delay a normal client",
                 "[http][server][slow]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.header_timeout = 2s;
    HttpServer server = co_await start(app, std::move(o));
    std::uint16_t port = server.port();
    int cut = 0;
    // Each slow client sends one byte per second: a read with a 1 s timeout paces it.
    auto paced = [port, &cut]() -> Task<> {
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
        const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(64, 'z');
        auto end = Clock::now() + 3500ms;
        std::size_t i = 0;
        bool done = false;
        while (!done && Clock::now() < end && i < head.size()) {
            try {
                writer.write(head.substr(i++, 1));
                co_await writer.drain();
                std::string got = co_await coring::wait_for(reader.read(1024), 1s);
                if (got.find(" 408 ") != std::string::npos || got.empty()) {
                    ++cut;
                }
                done = true;
            } catch (const coring::TimeoutError&) {
            } catch (const std::system_error&) {
                ++cut;
                done = true;
            }
        }
        writer.close();
    };
    std::vector<double> probes;
    auto prober = [port, &probes]() -> Task<> {
        co_await coring::sleep(500ms); // the slow clients are connected
        for (int i = 0; i < 12; ++i) {
            auto t0 = Clock::now();
            ReadAll r = co_await raw_exchange(
                    port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5s);
            double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            auto rs = split_responses(r.data);
            CHECK(rs.size() == 1);
            CHECK((!rs.empty() && rs[0].body == "hello"));
            probes.push_back(ms);
            co_await coring::sleep(200ms);
        }
    };
    co_await coring::task_group([&](coring::TaskGroup& tg) -> Task<> {
        for (int i = 0; i < 500; ++i) {
            tg.create_task(paced());
        }
        tg.create_task(prober());
        co_return;
    });
    std::sort(probes.begin(), probes.end());
    REQUIRE(probes.size() == 12);
    double median = probes[probes.size() / 2];
    WARN("slowloris probes: median " << median << " ms, max " << probes.back() << " ms; " << cut
                                     << " of 500 slow clients cut off with 408");
    CHECK(median < 100);
    CHECK(probes.back() < 1000);
    CHECK(cut == 500); // header_timeout (2 s) cut every slow client before its head completed
    co_await coring::sleep(300ms);
    CHECK(server.connection_count() == 0);
    co_await server.shutdown();
}

TEST_CASE("HttpServer: 10,000 idle keep-alive connections are held, and one more is served",
          "[http][server][slow]") {
    constexpr int n = 10'000;
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < n + 500) {
        if (lim.rlim_max < n + 500) {
            CORING_SKIP("RLIMIT_NOFILE's hard limit " << lim.rlim_max << " is below " << n + 500);
        }
        rlimit raised = lim;
        raised.rlim_cur = std::min<rlim_t>(lim.rlim_max, 25'000);
        ::setrlimit(RLIMIT_NOFILE, &raised);
    }
    std::size_t rss_before = 0;
    std::size_t rss_after = 0;
    std::size_t heap_before = 0;
    std::size_t heap_after = 0;
    coring::test::run_test([&]() -> Task<> {
        App app;
        add_routes(app);
        ServeOptions o;
        o.keepalive_timeout = 60s;
        o.max_connections = 0;
        HttpServer server = co_await start(app, std::move(o));
        // The clients live in a python process, so this one's memory is the server's.
        const char* script = R"PY(
import resource, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 200), hard))
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
for s in socks:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
ok = 0
for s in socks:
    data = b""
    while not data.endswith(b"hello"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    ok += data.startswith(b"HTTP/1.1 200")
print("ready", ok, flush=True)
sys.stdin.readline()
for s in socks:
    s.close()
)PY";
        std::vector<std::string> args{
                "-c", script, std::to_string(server.port()), std::to_string(n)};
        coring::SubprocessOptions so;
        so.stdin_ = coring::PIPE;
        so.stdout_ = coring::PIPE;
        rss_before = vm_rss_kib();
        heap_before = ::mallinfo2().uordblks;
        coring::Process py = co_await coring::create_subprocess_exec("/usr/bin/python3", args, so);
        std::string line = co_await coring::wait_for(py.stdout_->readline(), 40s);
        CHECK(line == "ready " + std::to_string(n) + "\n");
        co_await coring::sleep(600ms); // idle a while: the server's sweep trims idle connections
        rss_after = vm_rss_kib();
        heap_after = ::mallinfo2().uordblks;
        CHECK(server.connection_count() == static_cast<std::size_t>(n));
        // One more is served while they idle.
        auto t0 = Clock::now();
        ReadAll r = co_await raw_exchange(server.port(),
                                          "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        auto rs = split_responses(r.data);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].body == "hello");
        CHECK(Clock::now() - t0 < 1s);
        py.stdin_->write("done\n");
        co_await py.stdin_->drain();
        py.stdin_->close();
        int code = co_await py.wait();
        CHECK(code == 0);
        co_await server.shutdown();
        CHECK(server.connection_count() == 0);
    });
    double per_conn =
            (static_cast<double>(rss_after) - static_cast<double>(rss_before)) * 1024.0 / n;
    double heap_per_conn = (static_cast<double>(heap_after) - static_cast<double>(heap_before)) / n;
    WARN("10,000 idle connections: VmRSS " << rss_before << " KiB -> " << rss_after << " KiB, "
                                           << per_conn << " bytes per idle connection; heap in use "
                                           << heap_per_conn << " bytes per idle connection");
    CHECK(per_conn < 64 * 1024); // generous; the issue's target is 4 KiB (see the report)
}

CORING_TEST_CASE("HttpServer: a client still sending a refused body gets to read the 413",
                 "[http][server]") {
    App app;
    add_routes(app);
    ServeOptions o;
    o.max_body = 1000;
    HttpServer server = co_await start(app, std::move(o));
    coring::test::TempDir dir;
    { std::ofstream(dir.file("big.bin"), std::ios::binary) << std::string(4 << 20, 'q'); }
    // curl without Expect: the whole body is on its way when the 413 comes.
    auto r = co_await coring::test::run_program("curl",
                                                {"-sS",
                                                 "-o",
                                                 "/dev/null",
                                                 "-w",
                                                 "%{http_code}",
                                                 "-H",
                                                 "Expect:",
                                                 "--data-binary",
                                                 "@" + dir.file("big.bin"),
                                                 coring::test::url(server.port(), "/echo")});
    INFO(r.err);
    CHECK(r.out == "413");
    // Raw: head and 300 KB of body in one write.
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", server.port());
    writer.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" +
                 std::string(300000, 'b'));
    try {
        co_await writer.drain();
    } catch (const std::system_error&) {
    }
    ReadAll rest = co_await coring::test::read_to_eof(reader, 5s);
    auto rs = split_responses(rest.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 413);
    writer.close();
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: a handler that catches a body error is not cut by the body deadline",
                 "[http][server]") {
    App app;
    app.post("/careful", [](Request& req) -> Task<Response> {
        int status = 0;
        try {
            static_cast<void>(co_await req.body());
        } catch (const coring::http::HttpError& e) {
            status = e.status();
        }
        co_await coring::sleep(700ms); // longer than body_timeout, and than a sweep period
        co_return Response::text("recovered from " + std::to_string(status), 422);
    });
    ServeOptions o;
    o.body_timeout = 200ms;
    o.max_body = 10;
    HttpServer server = co_await start(app, std::move(o));
    // A body that stops arriving (408 inside the handler), and one over max_body (413).
    ReadAll r = co_await raw_exchange(
            server.port(), "POST /careful HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab", 5s);
    auto rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 422);
    CHECK(rs[0].body == "recovered from 408");
    r = co_await raw_exchange(
            server.port(),
            "POST /careful HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "14\r\n01234567890123456789\r\n0\r\n\r\n",
            5s);
    rs = split_responses(r.data);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 422);
    CHECK(rs[0].body == "recovered from 413");
    co_await server.shutdown();
}
