// SPDX-License-Identifier: MIT
// The HTTP server benchmark's coring server (issue 14; run by http_server_run.sh): a
// coring::http::App with the TechEmpower-style routes GET /plaintext ("Hello, World!",
// text/plain) and GET /json ({"Hello":"World"}, a handler returning nlohmann::json), served on
// 127.0.0.1:<port> until SIGINT or SIGTERM (graceful shutdown, as serve()).
// Usage: bench_http_server <port>   (0 picks a free port)
//
// The FastAPI peer (http_server_fastapi.py) is the same two routes:
//
//     @app.get("/plaintext", response_class=PlainTextResponse)
//     async def plaintext(): return "Hello, World!"
//     @app.get("/json")
//     async def json_(): return {"Hello": "World"}
#include <coring/coring.hpp>
#include <coring/http/server.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace http = coring::http;
using coring::Task;
using nlohmann::json;

static Task<int> amain(std::uint16_t port) {
    http::App app;
    app.get("/plaintext",
            [](http::Request&) -> Task<std::string> { co_return std::string("Hello, World!"); });
    app.get("/json", [](http::Request&) -> Task<json> { co_return json{{"Hello", "World"}}; });
    // As nginx's config in http_server_run.sh: idle keep-alive connections stay 300 s (the
    // memory measurement holds 10,000 of them), and no cap below that count.
    http::ServeOptions options;
    options.keepalive_timeout = std::chrono::seconds(300);
    options.max_connections = 0;
    auto server = co_await http::HttpServer::start(app, "127.0.0.1", port, options);
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    coring::Event stop; // serve()'s shutdown, with the port printed once bound
    coring::add_signal_handler(coring::get_running_loop(), SIGINT, [&stop] { stop.set(); });
    coring::add_signal_handler(coring::get_running_loop(), SIGTERM, [&stop] { stop.set(); });
    static_cast<void>(co_await stop.wait());
    co_await server.shutdown();
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc == 2 && std::string_view(argv[1]) == "--list") {
        return 0; // a helper, not an area: no cases for benchmarks/run.sh
    }
    char* end = nullptr;
    long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }
    return coring::run(amain(static_cast<std::uint16_t>(port)));
}
