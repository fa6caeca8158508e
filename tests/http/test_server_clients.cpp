// SPDX-License-Identifier: MIT
// Tests of http/server.hpp against real clients run as child processes on loopback: curl
// (HTTP/1.1 and 1.0), python's http.client and aiohttp, node's http module and wrk.
#include <coring/http/server.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "http/server_helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::http::App;
using coring::http::HttpServer;
using coring::http::Request;
using coring::http::Response;
using coring::http::ServeOptions;
using coring::test::run_program;
using coring::test::url;
using nlohmann::json;

namespace {

void add_routes(App& app) {
    app.get("/", [](Request&) -> Task<json> { co_return json{{"Hello", "World"}}; });
    app.get("/items/{id}", [](Request& req) -> Task<json> {
        co_return json{{"id", req.param("id")}, {"q", req.query("q").value_or("")}};
    });
    app.post("/echo", [](Request& req) -> Task<std::string> {
        std::string b = co_await req.body();
        co_return b;
    });
    app.get("/slow", [](Request&) -> Task<std::string> {
        co_await coring::sleep(20ms);
        co_return "slow";
    });
    app.get("/stream", [](Request&) -> Task<Response> {
        co_return Response::stream([](coring::http::BodyWriter& out) -> Task<> {
            for (int i = 0; i < 3; ++i) {
                co_await out.write("part" + std::to_string(i));
            }
        });
    });
}

Task<HttpServer> start(const App& app) {
    ServeOptions o;
    o.handle_signals = false;
    co_return co_await HttpServer::start(app, "127.0.0.1", 0, std::move(o));
}

} // namespace

CORING_TEST_CASE("HttpServer: curl talks HTTP/1.1 and HTTP/1.0 to it", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    std::uint16_t port = server.port();
    // Several URLs on one curl: one connection reused (keep-alive).
    auto r = co_await run_program(
            "curl",
            {"-sS", "-v", url(port, "/"), url(port, "/items/a%20b?q=1+2"), url(port, "/stream")});
    CHECK(r.code == 0);
    CHECK(r.out == R"({"Hello":"World"}{"id":"a b","q":"1 2"}part0part1part2)");
    CHECK(r.err.find("Re-using existing") != std::string::npos); // curl 7 and 8 word it differently

    r = co_await run_program("curl",
                             {"-sS", "--http1.0", "-i", url(port, "/"), url(port, "/stream")});
    CHECK(r.code == 0);
    CHECK(r.out.find(R"({"Hello":"World"})") != std::string::npos);
    CHECK(r.out.find("part0part1part2") != std::string::npos);
    CHECK(r.out.find("Transfer-Encoding") == std::string::npos);

    r = co_await run_program("curl", {"-sS", "-w", " %{http_code}", "-X", "PATCH", url(port, "/")});
    CHECK(r.out == R"({"detail":"Method Not Allowed"} 405)");
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: python's http.client reuses one connection", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    const char* script = R"PY(
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
out = []
for i in range(5):
    c.request("GET", "/items/%d?q=x" % i)
    r = c.getresponse()
    out.append([r.status, json.loads(r.read())])
c.request("POST", "/echo", body=b"z" * 100000)
r = c.getresponse()
out.append([r.status, len(r.read())])
c.request("HEAD", "/")
r = c.getresponse()
out.append([r.status, r.getheader("Content-Length"), len(r.read())])
c.request("GET", "/stream")
r = c.getresponse()
out.append([r.status, r.read().decode()])
c.request("GET", "/missing")
r = c.getresponse()
out.append([r.status, json.loads(r.read())])
print(json.dumps(out))
)PY";
    auto r =
            co_await run_program("/usr/bin/python3", {"-c", script, std::to_string(server.port())});
    INFO(r.err);
    CHECK(r.code == 0);
    json out = json::parse(r.out);
    REQUIRE(out.size() == 9);
    for (int i = 0; i < 5; ++i) {
        CHECK(out[i] == json{200, {{"id", std::to_string(i)}, {"q", "x"}}});
    }
    CHECK(out[5] == json{200, 100000});
    CHECK(out[6] == json{200, "17", 0});
    CHECK(out[7] == json{200, "part0part1part2"});
    CHECK(out[8] == json{404, {{"detail", "Not Found"}}});
    co_await server.shutdown();
}

CORING_TEST_CASE("HttpServer: aiohttp's client sends 10 requests at once", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    const char* script = R"PY(
import asyncio, json, sys
import aiohttp
async def main(port):
    async with aiohttp.ClientSession() as s:
        async def one(i):
            if i % 2:
                async with s.post("http://127.0.0.1:%d/echo" % port, data=b"%d" % i * 1000) as r:
                    return [r.status, len(await r.read())]
            async with s.get("http://127.0.0.1:%d/slow" % port) as r:
                return [r.status, await r.text()]
        return await asyncio.gather(*(one(i) for i in range(10)))
print(json.dumps(asyncio.run(main(int(sys.argv[1])))))
)PY";
    auto r =
            co_await run_program("/usr/bin/python3", {"-c", script, std::to_string(server.port())});
    INFO(r.err);
    CHECK(r.code == 0);
    json out = json::parse(r.out);
    REQUIRE(out.size() == 10);
    for (int i = 0; i < 10; ++i) {
        if (i % 2) {
            CHECK(out[i] == json{200, 1000});
        } else {
            CHECK(out[i] == json{200, "slow"});
        }
    }
    co_await server.shutdown();
}

TEST_CASE("HttpServer: node's http.get reads a response", "[http][server]") {
    coring::test::run_test([]() -> Task<> {
        App app;
        add_routes(app);
        HttpServer server = co_await start(app);
        const char* script = R"JS(
const http = require("http");
const port = Number(process.argv[1]);
const get = (path) => new Promise((resolve, reject) => {
  http.get({host: "127.0.0.1", port, path}, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (c) => body += c);
    res.on("end", () => resolve([res.statusCode, body]));
  }).on("error", reject);
});
(async () => {
  const out = [];
  for (const p of ["/", "/items/n%C3%A9?q=%E2%82%AC", "/stream", "/nowhere"]) out.push(await get(p));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
)JS";
        auto r = co_await run_program("node", {"-e", script, std::to_string(server.port())});
        INFO(r.err);
        CHECK(r.code == 0);
        json out = json::parse(r.out);
        REQUIRE(out.size() == 4);
        CHECK(out[0] == json{200, R"({"Hello":"World"})"});
        CHECK(json::parse(out[1][1].get<std::string>()) ==
              json{{"id", "n\xC3\xA9"}, {"q", "\xE2\x82\xAC"}});
        CHECK(out[2] == json{200, "part0part1part2"});
        CHECK(out[3][0] == 404);
        co_await server.shutdown();
    });
}

CORING_TEST_CASE("HttpServer: wrk for 1 s with 16 connections sees no errors", "[http][server]") {
    App app;
    add_routes(app);
    HttpServer server = co_await start(app);
    auto r = co_await run_program("wrk", {"-t1", "-c16", "-d1s", url(server.port(), "/")});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("Requests/sec:") != std::string::npos);
    CHECK(r.out.find("Non-2xx") == std::string::npos);
    CHECK(r.out.find("Socket errors") == std::string::npos);
    std::size_t p = r.out.find("requests in");
    REQUIRE(p != std::string::npos);
    std::size_t start = r.out.rfind('\n', p) + 1;
    long requests = std::stol(r.out.substr(start));
    WARN("wrk -t1 -c16 -d1s: " << requests << " requests");
    CHECK(requests > 1000);
    co_await server.shutdown();
}
